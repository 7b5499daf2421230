"""Where should the assembly miss handler get the host page frame from, and how big a pfn cache
is enough?

The study ``pfn_cache_sizing`` (``emu/study/studies/pfn_cache_sizing.py``), run with the emu that
is installed: the same as ``emu study pfn_cache_sizing [--out DIR] [--quick]``.
"""

import sys

from _launch import launch

if __name__ == "__main__":
    sys.exit(launch("pfn_cache_sizing"))

"""What does each step of the TLB miss handler cost, and what does each design choice buy?

The study ``fastpath_profile`` (``emu/study/studies/fastpath_profile.py``), run with the emu that
is installed: the same as ``emu study fastpath_profile [--out DIR] [--quick]``.
"""

import sys

from _launch import launch

if __name__ == "__main__":
    sys.exit(launch("fastpath_profile"))

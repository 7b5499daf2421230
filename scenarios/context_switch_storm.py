"""What does a storm of guest and host context switches cost each TLB design?

The study ``context_switch_storm`` (``emu/study/studies/context_switch_storm.py``), run with the emu that
is installed: the same as ``emu study context_switch_storm [--out DIR] [--quick]``.
"""

import sys

from _launch import launch

if __name__ == "__main__":
    sys.exit(launch("context_switch_storm"))

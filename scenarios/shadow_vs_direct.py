"""When does inserting guest mappings directly into the hardware TLB stop paying?

The study ``shadow_vs_direct`` (``emu/study/studies/shadow_vs_direct.py``), run with the emu that
is installed: the same as ``emu study shadow_vs_direct [--out DIR] [--quick]``.
"""

import sys

from _launch import launch

if __name__ == "__main__":
    sys.exit(launch("shadow_vs_direct"))

"""How many TLB misses does a guest take after each host context switch, and why?

The study ``repopulation_lesson`` (``emu/study/studies/repopulation_lesson.py``), run with the emu that
is installed: the same as ``emu study repopulation_lesson [--out DIR] [--quick]``.
"""

import sys

from _launch import launch

if __name__ == "__main__":
    sys.exit(launch("repopulation_lesson"))

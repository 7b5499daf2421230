"""Can a shadow TLB be laid on a core whose TLB software cannot index, and what does it
cost there?

The study ``nonindexable_tlb`` (``emu/study/studies/nonindexable_tlb.py``), run with the emu that
is installed: the same as ``emu study nonindexable_tlb [--out DIR] [--quick]``.
"""

import sys

from _launch import launch

if __name__ == "__main__":
    sys.exit(launch("nonindexable_tlb"))

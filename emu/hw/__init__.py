"""The core's TLBs: PowerPC 440 UTLB, e500 TLB0/TLB1, and a generic TLB.

* :class:`~emu.hw.ppc440.PPC440UTLB` — 64 entries, fully associative, written
  word by word with ``tlbwe`` (reference/kvm440.md §1).
* :class:`~emu.hw.e500.E500MMU` — TLB0 (512 entries, 4-way, 4 KB, hardware
  next victim) and TLB1 (16 entries, fully associative, variable sizes)
  (reference/kvm440.md §4.1).
* :func:`~emu.hw.tlb.make_plain_tlb` — any sets x ways with one page size, for
  trace-driven studies (``emu tlb``) and comparison with other simulators.
"""

from emu.hw.tlb import (PAGE_SIZES_440, PAGE_SIZES_E500, POLICIES, SUPPORTED_PAGE_SIZES,
                        make_plain_tlb, page_shift)

__all__ = ["PAGE_SIZES_440", "PAGE_SIZES_E500", "POLICIES", "SUPPORTED_PAGE_SIZES",
           "make_plain_tlb", "page_shift"]

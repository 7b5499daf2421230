"""The hardware the machine runs on: the cores' TLBs and the physical CPU.

* :mod:`emu.hw.cpu` — :func:`~emu.hw.cpu.build_core` builds the translation
  hardware of one core as the machine runs it, and
  :class:`~emu.hw.cpu.PhysicalCPU` holds it with the CPU's cycle breakdown.
* :mod:`emu.hw.ppc440` — the PowerPC 440 UTLB: 64 entries, fully associative,
  hwater and the pinned entries above it, the micro-TLBs; builders of the
  arrays, and :class:`~emu.hw.ppc440.PPC440UTLB`, the UTLB written word by
  word with ``tlbwe`` (docs/kvm440.md §1).
* :mod:`emu.hw.e500` — TLB0 (v2 512 entries 4-way, v1 256 entries 2-way, 4 KB,
  the way from MAS0[ESEL] or the hardware next victim) and TLB1 (16 entries,
  fully associative, variable sizes); KVM e500's guest TLB; builders,
  ``_tlbil_all``, and :class:`~emu.hw.e500.E500MMU` (docs/kvm440.md §4.1, §4.3).
* :mod:`emu.hw.tlb` — geometry, page sizes and policies shared by every core,
  and :func:`~emu.hw.tlb.make_plain_tlb`: any sets x ways with one page size,
  for trace-driven studies (``emu tlb``) and comparison with other simulators.
"""

from emu.hw.tlb import (PAGE_SIZES_440, PAGE_SIZES_E500, POLICIES, SUPPORTED_PAGE_SIZES,
                        make_plain_tlb, page_shift)

__all__ = ["PAGE_SIZES_440", "PAGE_SIZES_E500", "POLICIES", "SUPPORTED_PAGE_SIZES",
           "make_plain_tlb", "page_shift"]

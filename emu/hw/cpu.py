"""A physical CPU core: its translation hardware and its cycle breakdown.

:func:`build_core` builds what the machine really runs on, through the
builders of :mod:`emu.hw.ppc440` and :mod:`emu.hw.e500`:

* ``440``: the 64-entry UTLB with Linux's round robin over 0..hwater and
  its pinned kernel lowmem entries above hwater, optionally the 4-entry I-side
  and 8-entry D-side micro-TLBs (docs/kvm440.md §1);
* ``e500``: TLB0 (v2: 512 entries, 4-way; v1: 256 entries, 2-way; next
  victim) and TLB1 (16 entries, the kernel's IPROT entry in slot 0)
  (docs/kvm440.md §4.1).

The fast path's ``VirtCPU`` holds the arrays and does the lookups;
:class:`PhysicalCPU` wraps it with the CPU's cycle breakdown, which every
part of the machine charges.
"""

from __future__ import annotations

import numpy as np

from emu.codes import CYCLE_CATEGORIES, CYCLES
from emu.hw.e500 import build_host_mmu
from emu.hw.ppc440 import build_host_utlb

CORES = ("440", "e500")


def build_core(impl, core: str, hwater: int, micro_tlb: bool, seed: int, cycles: np.ndarray,
               ctx_host: np.ndarray, e500_version: str = "v2"):
    """The fast path's ``VirtCPU`` of one ``core`` as the host kernel leaves it at boot.

    ``impl`` is a backend module; ``hwater`` applies to the 440 only;
    ``micro_tlb`` puts the micro-TLBs in front of the main array; ``cycles``
    is the breakdown the fast path charges and ``ctx_host[c]`` is 1 for host
    contexts; ``e500_version`` picks the e500's TLB0 (v1 256 x 2-way, v2 512 x 4-way).
    """
    if core == "440":
        tlb, tlb1 = build_host_utlb(impl, hwater, seed), None
    elif core == "e500":
        tlb, tlb1 = build_host_mmu(impl, seed, e500_version)
    else:
        raise ValueError(f"unknown core {core!r} (choose from: {', '.join(CORES)})")
    return impl.VirtCPU(tlb, tlb1, micro_tlb, cycles, ctx_host)


class PhysicalCPU:
    """One physical CPU: its translation hardware (``virt``) and cycle breakdown.

    Every cycle the CPU spends is charged to one category of ``cycles``
    (emu.codes.CYCLE_CATEGORIES), by the fast path or by :meth:`charge`; so
    the total is the CPU's clock.
    """

    def __init__(self, index: int, virt, cycles: np.ndarray):
        self.index = index
        self.virt, self.cycles = virt, cycles
        self.tlb = virt.tlb

    @classmethod
    def build(cls, impl, index: int, core: str, hwater: int, micro_tlb: bool, seed: int,
              ctx_host: np.ndarray, e500_version: str = "v2", **kw):
        """A CPU of ``core`` with a zero breakdown (see :func:`build_core`)."""
        cycles = np.zeros(len(CYCLE_CATEGORIES), np.int64)
        virt = build_core(impl, core, hwater, micro_tlb, seed, cycles, ctx_host, e500_version)
        return cls(index, virt, cycles, **kw)

    def total(self) -> int:
        """Every cycle charged so far."""
        return int(self.cycles.sum())

    def charge(self, category: str, cycles: int) -> int:
        """Charge ``cycles`` to ``category``; returns them."""
        self.cycles[CYCLES[category]] += cycles
        return cycles

    # what the strategies use
    def write(self, idx, ea, shift, tid, ts, rpn, owner, writer, attr=0):
        """Write hardware entry ``idx`` on behalf of context ``writer``
        (``attr``: its permissions)."""
        self.virt.write(idx, ea, shift, tid, ts, rpn, owner, writer, attr)

    def invalidate(self, idx, writer, reason=-1):
        """Invalidate hardware entry ``idx`` on behalf of ``writer`` (``reason``: a miss cause)."""
        self.virt.invalidate(idx, writer, reason)

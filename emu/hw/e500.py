"""The e500v2 MMU's second-level TLBs (docs/kvm440.md §4.1).

* TLB0: 512 entries, 4-way set associative, 4 KB pages only.  The set is
  fixed by the EA (bits 45–51 in 64-bit numbering, i.e. ``(EA >> 12) % 128``);
  hardware picks the way from its next-victim counter (MAS0[NV]), which a
  TLB miss loads and a ``tlbwe`` to TLB0 advances.  Software cannot name a
  flat index, so it cannot lay out a shadow array as it can on the 440.
* TLB1: 16 entries, fully associative, 4 KB–4 GB pages (CAM), written at an
  index software chooses.

A translation searches both arrays.
"""

from __future__ import annotations

from emu import engine
from emu.errors import ConfigError
from emu.hw.tlb import PAGE_OFFSET, PAGE_SIZES_E500

TLB0_ENTRIES, TLB0_WAYS = 512, 4
TLB1_ENTRIES = 16
KERNEL_TLB1_SHIFT = 28            # the kernel's IPROT entry in TLB1 maps 256 MB


def build_tlb0(impl, seed: int = 0):
    """TLB0: 512 entries, 4-way, 4 KB pages, the hardware next-victim counter."""
    return impl.BookeTLB(TLB0_ENTRIES, TLB0_WAYS, "nv", -1, 12, seed)


def build_tlb1(impl, seed: int = 0):
    """TLB1: 16 entries, fully associative, written at the index software names."""
    return impl.BookeTLB(TLB1_ENTRIES, TLB1_ENTRIES, "none", -1, 12, seed)


def build_host_mmu(impl, seed: int = 0):
    """(TLB0, TLB1) as a running host kernel leaves them: TLB0 empty, TLB1 entry 0
    the IPROT mapping of kernel lowmem at PAGE_OFFSET (docs/kvm440.md §4.1)."""
    tlb0, tlb1 = build_tlb0(impl, seed), build_tlb1(impl, seed)
    tlb1.write(0, PAGE_OFFSET, KERNEL_TLB1_SHIFT, 0, 0, 0, 0, -1)
    return tlb0, tlb1


class E500MMU:
    """TLB0 and TLB1 of one e500v2 core."""

    def __init__(self, backend: str = "cython", seed: int = 0):
        impl = engine.get(backend)
        self.tlb0, self.tlb1 = build_tlb0(impl, seed), build_tlb1(impl, seed)

    def tlb0_write(self, ea: int, tid: int, ts: int, real_address: int = 0, attr: int = 0,
                   owner: int = -1, way: int | None = None) -> int:
        """``tlbwe`` to TLB0 with ESEL from the hardware next victim (or ``way``).

        The set comes from ``ea``; returns the flat index written.
        """
        set_ = (ea >> 12) % self.tlb0.sets
        if way is None:
            index = self.tlb0.choose_victim(ea)
        else:
            if not 0 <= way < TLB0_WAYS:
                raise IndexError(f"TLB0 way {way} outside 0..{TLB0_WAYS - 1}")
            index = set_ * TLB0_WAYS + way
        self.tlb0.write(index, ea, 12, tid, ts, real_address >> 12 << 12, attr, owner)
        return index

    def tlb1_write(self, esel: int, ea: int, page_size: int, tid: int, ts: int,
                   real_address: int = 0, attr: int = 0, owner: int = -1) -> None:
        """``tlbwe`` to TLB1 entry ``esel`` with a variable page size."""
        if page_size not in PAGE_SIZES_E500:
            raise ConfigError(f"e500 TLB1 has no {page_size}-byte page size")
        shift = page_size.bit_length() - 1
        self.tlb1.write(esel, ea, shift, tid, ts, real_address >> shift << shift, attr, owner)

    def find(self, ea: int, pid: int, as_: int):
        """``tlbsx``: ('tlb0' | 'tlb1', index) of the matching entry, or None."""
        i = self.tlb1.find(ea, pid, as_)
        if i >= 0:
            return ("tlb1", i)
        i = self.tlb0.find(ea, pid, as_)
        return ("tlb0", i) if i >= 0 else None

    def flash_invalidate(self) -> int:
        """MMUCSR0 flash invalidate of both arrays (reference §4.1)."""
        return self.tlb0.invalidate_all() + self.tlb1.invalidate_all()

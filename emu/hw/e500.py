"""The e500 MMU's second-level TLBs (docs/kvm440.md §4.1), and the guest's.

The host's own arrays, by core version (``machine.e500_version``):

* TLB0: e500v1 256 entries 2-way, e500v2 512 entries 4-way; 128 sets either
  way, 4 KB pages only.  The set is fixed by the EA (``(EA >> 12) % 128``);
  the way is MAS0[ESEL] when software writes it (KVM e500 @0164c0f0 does),
  else the hardware next-victim counter (MAS0[NV]) that a TLB miss loads
  (@46f43c6e leaves MAS0 as the miss left it).  So an entry can be put back
  at its (set, way), one ``tlbwe`` at a time.
* TLB1: 16 entries, fully associative, 4 KB–4 GB pages (CAM), written at an
  index software chooses; the host's own CAMs are IPROT and survive a flash
  invalidate.

A translation searches both arrays.  ``machine.tlb_index = "hardware"`` is a
hypothetical core whose ``tlbwe`` to TLB0 ignores ESEL: hardware always picks
the way, and no entry can be put back where it was.

The guest's TLB under KVM e500 is KVM's own geometry, whatever the host
core (``KVM_E500_TLB0_WAY_SIZE`` x ``KVM_E500_TLB0_WAY_NUM``, e500_tlb.h):
TLB0 256 entries 2-way (esel = set * 2 + way), TLB1 16 entries; the model
keeps it as one 272-entry array, TLB0 at 0..255 and TLB1 at 256..271 — the
order ``kvmppc_e500_tlb_search`` scans them in @46f43c6e.
"""

from __future__ import annotations

import numpy as np

from emu import engine
from emu.errors import ConfigError
from emu.hw.tlb import PAGE_OFFSET, PAGE_SIZES_E500

TLB0_ENTRIES, TLB0_WAYS = 512, 4
TLB1_ENTRIES = 16
KERNEL_TLB1_SHIFT = 28            # the kernel's IPROT entry in TLB1 maps 256 MB
#: The host's TLB0 per core version: (entries, ways) (docs/kvm440.md §4.1).
VERSIONS = {"v1": (256, 2), "v2": (TLB0_ENTRIES, TLB0_WAYS)}
#: The host kernel's IPROT CAMs at the bottom of TLB1 (tlbcam_index): the one
#: lowmem mapping build_host_mmu writes.
HOST_CAMS = 1
#: KVM's guest TLB geometry (e500_tlb.h: KVM_E500_TLB0_WAY_SIZE_BIT 7,
#: KVM_E500_TLB0_WAY_NUM_BIT 1, KVM_E500_TLB1_SIZE 16).
GUEST_TLB0_SETS, GUEST_TLB0_WAYS = 128, 2
GUEST_TLB0_ENTRIES = GUEST_TLB0_SETS * GUEST_TLB0_WAYS
GUEST_TLB1_ENTRIES = 16
GUEST_TLB_ENTRIES = GUEST_TLB0_ENTRIES + GUEST_TLB1_ENTRIES
TLB_INDEX = ("software", "hardware")


def build_tlb0(impl, seed: int = 0, version: str = "v2"):
    """TLB0 of an e500 ``version``: 256 x 2-way (v1) or 512 x 4-way (v2), 4 KB pages,
    the hardware next-victim counter."""
    entries, ways = VERSIONS[version]
    return impl.BookeTLB(entries, ways, "nv", -1, 12, seed)


def build_tlb1(impl, seed: int = 0):
    """TLB1: 16 entries, fully associative, written at the index software names."""
    return impl.BookeTLB(TLB1_ENTRIES, TLB1_ENTRIES, "none", -1, 12, seed)


def build_host_mmu(impl, seed: int = 0, version: str = "v2"):
    """(TLB0, TLB1) as a running host kernel leaves them: TLB0 empty, TLB1 entry 0
    the IPROT mapping of kernel lowmem at PAGE_OFFSET (docs/kvm440.md §4.1)."""
    tlb0, tlb1 = build_tlb0(impl, seed, version), build_tlb1(impl, seed)
    tlb1.write(0, PAGE_OFFSET, KERNEL_TLB1_SHIFT, 0, 0, 0, 0, -1)
    return tlb0, tlb1


def build_guest_tlb(impl):
    """The TLB KVM e500 emulates for a guest: TLB0 (256, 2-way) at 0..255 and TLB1
    (16) at 256..271, each index named by the guest (no replacement policy)."""
    return impl.BookeTLB(GUEST_TLB_ENTRIES, GUEST_TLB_ENTRIES, "none")


def guest_tlb0_index(ea: int, way: int) -> int:
    """The guest TLB0 index of ``ea`` in ``way``: set ``(EA >> 12) & 127``, esel
    ``set * 2 + way`` (get_tlb_esel, gtlb0_set_base @0164c0f0)."""
    return ((ea >> 12) % GUEST_TLB0_SETS) * GUEST_TLB0_WAYS + way


def tlb1_pool_size(tlb1_entries: int, reserved: int = 0) -> int:
    """KVM's TLB1 shadow pool: ``tlb1_max_shadow_size()`` = TLB1 entries minus the
    host's CAMs (@46f43c6e), minus ``reserved`` more (@0164c0f0 keeps one for the
    magic page)."""
    return tlb1_entries - HOST_CAMS - reserved


def tlbil_all(cpu, writer: int, reason: int) -> int:
    """FSL Book E ``_tlbil_all``: MMUCSR0 flash invalidate of TLB0 and of every
    TLB1 entry but the host's IPROT CAMs, whoever wrote them (host entries
    included).  Returns the entries invalidated."""
    virt = cpu.virt
    n0 = virt.tlb.entries
    gone = [int(i) for i in np.flatnonzero(virt.tlb.valid_arr)]
    gone += [n0 + int(j) for j in np.flatnonzero(virt.tlb1.valid_arr[HOST_CAMS:]) + HOST_CAMS]
    for i in gone:
        virt.invalidate(i, writer, reason)
    return len(gone)


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

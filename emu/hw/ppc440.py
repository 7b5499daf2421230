"""The PowerPC 440 unified TLB, as software sees it (docs/kvm440.md §1).

64 entries, fully associative, each written one 32-bit word at a time by
``tlbwe`` and read by ``tlbre``; ``tlbsx`` searches with MMUCR[STID, STS].
IBM bit numbering (bit 0 is the most significant):

* word 0: EPN 0:21, V 22, TS 23, SIZE 24:27 — the TID travels through
  MMUCR[STID] (PPC440x5 UM p.135, p.435);
* word 1: RPN 0:21, ERPN 28:31 (p.136);
* word 2: U0–U3, W I M G E, UX UW UR SX SW SR (p.435; masks in
  arch/powerpc/include/asm/mmu-44x.h).

Linux fills indices 0..hwater round robin and pins entries above hwater
(slot 63 holds the 256 MB kernel lowmem mapping; hwater starts at 62;
docs/kvm440.md §1.5).
"""

from __future__ import annotations

from emu import engine
from emu.errors import ConfigError
from emu.hw.tlb import PAGE_OFFSET

TLB_SIZE = 64                     # PPC44x_TLB_SIZE (reference §0)
HWATER = 62                       # 64 - 1 - PPC44x_EARLY_TLBS (reference §1.5)
LOWMEM_PIN_SHIFT = 28             # each pinned entry maps 256 MB of kernel lowmem (reference §1.5)
#: The shadow (micro) TLBs in front of the UTLB: 4 I-side, 8 D-side entries,
#: emptied by every interrupt, rfi and sc (PPC440x5 UM p.152; reference §0, §1).
#: The fast path implements them (VirtCPU); the machine switches them on.
MICRO_ITLB_ENTRIES, MICRO_DTLB_ENTRIES = 4, 8

# tlbwe/tlbre word select (mmu-44x.h: PPC44x_TLB_PAGEID, _XLAT, _ATTRIB)
PAGEID, XLAT, ATTRIB = 0, 1, 2
# Word 0
EPN_MASK = 0xFFFFFC00
VALID = 0x200
TS = 0x100
SIZE_MASK = 0xF0
# SIZE codes (mmu-44x.h: PPC44x_TLB_1K .. PPC44x_TLB_256M)
SIZE_CODES = {10: 0x0, 12: 0x1, 14: 0x2, 16: 0x3, 18: 0x4, 20: 0x5, 24: 0x7, 28: 0x9}
SHIFT_OF_CODE = {code: shift for shift, code in SIZE_CODES.items()}
# Word 1
RPN_MASK = 0xFFFFFC00
ERPN_MASK = 0xF
# Word 2
U0, U1, U2, U3 = 0x8000, 0x4000, 0x2000, 0x1000
W, I, M, G, E = 0x800, 0x400, 0x200, 0x100, 0x80
UX, UW, UR, SX, SW, SR = 0x20, 0x10, 0x08, 0x04, 0x02, 0x01
ATTR_MASK = 0xFFBF                # bits 16:31 less the reserved bit 25


def word0(ea: int, shift: int, valid: bool = True, ts: int = 0) -> int:
    """Encode word 0 for a page of 2**shift bytes holding ``ea``."""
    if shift not in SIZE_CODES:
        raise ConfigError(f"the 440 has no {1 << shift}-byte page size")
    epn = (ea >> shift << shift) & EPN_MASK
    return epn | (VALID if valid else 0) | (TS if ts else 0) | (SIZE_CODES[shift] << 4)


def word1(real_address: int) -> int:
    """Encode word 1: RPN and the 4-bit ERPN of a 36-bit real address."""
    return (real_address & RPN_MASK) | ((real_address >> 32) & ERPN_MASK)


def build_utlb(impl, hwater: int = HWATER, seed: int = 0):
    """The UTLB array: 64 entries, fully associative, Linux's round robin over 0..hwater.

    ``impl`` is a backend module (:func:`emu.engine.get`); the array is empty.
    """
    return impl.BookeTLB(TLB_SIZE, TLB_SIZE, "round-robin", hwater, 12, seed)


def build_guest_utlb(impl):
    """The UTLB KVM emulates for a guest: 64 entries, each index named by the guest
    (no replacement policy; docs/kvm440.md §2.7)."""
    return impl.BookeTLB(TLB_SIZE, TLB_SIZE, "none")


def pin_kernel_lowmem(tlb, hwater: int = HWATER) -> None:
    """Write Linux's pinned entries above ``hwater``: 256 MB of kernel lowmem each.

    Slot 63 maps PAGE_OFFSET, slot 62 the next 256 MB, and so on down to
    hwater + 1 (ppc44x_pin_tlb, docs/kvm440.md §1.5).  The entries belong
    to the host kernel (owner -1, TID 0, TS 0).
    """
    for n, slot in enumerate(range(TLB_SIZE - 1, hwater, -1)):
        tlb.write(slot, PAGE_OFFSET + (n << LOWMEM_PIN_SHIFT), LOWMEM_PIN_SHIFT, 0, 0,
                  n << LOWMEM_PIN_SHIFT, 0, -1)


def build_host_utlb(impl, hwater: int = HWATER, seed: int = 0):
    """The UTLB as a running host kernel leaves it: empty below hwater, pinned above."""
    tlb = build_utlb(impl, hwater, seed)
    pin_kernel_lowmem(tlb, hwater)
    return tlb


class PPC440UTLB:
    """The 440 UTLB with its MMUCR, on a fast-path :class:`BookeTLB` array.

    The three words of every entry are kept as software wrote them; the
    array underneath always holds the entry those words describe (or nothing
    when V is clear or SIZE is an unsupported code).
    """

    def __init__(self, backend: str = "cython", hwater: int = HWATER, seed: int = 0):
        self.array = build_utlb(engine.get(backend), hwater, seed)
        self.words = [[0, 0, 0] for _ in range(TLB_SIZE)]
        self.tids = [0] * TLB_SIZE
        self.mmucr_stid = 0
        self.mmucr_sts = 0

    @property
    def hwater(self) -> int:
        return self.array.hwater

    def _check_index(self, index: int) -> None:
        if not 0 <= index < TLB_SIZE:
            raise IndexError(f"TLB index {index} outside 0..{TLB_SIZE - 1}")

    def tlbwe(self, index: int, ws: int, word: int) -> None:
        """Write word ``ws`` of entry ``index``; word 0 also takes MMUCR[STID]."""
        self._check_index(index)
        if ws not in (0, 1, 2):
            raise ValueError(f"tlbwe word select {ws} is not 0, 1 or 2")
        self.words[index][ws] = word & 0xFFFFFFFF
        if ws == 0:
            self.tids[index] = self.mmucr_stid & 0xFF
        self._sync(index)

    def _sync(self, index: int) -> None:
        w0, w1, w2 = self.words[index]
        code = (w0 & SIZE_MASK) >> 4
        if not w0 & VALID or code not in SHIFT_OF_CODE:
            self.array.invalidate(index)
            return
        shift = SHIFT_OF_CODE[code]
        rpn = ((w1 & ERPN_MASK) << 32) | (w1 & RPN_MASK)
        self.array.write(index, w0 & EPN_MASK, shift, self.tids[index],
                         1 if w0 & TS else 0, rpn >> shift << shift, w2 & ATTR_MASK,
                         self.array.read(index)[7])

    def tlbre(self, index: int, ws: int) -> int:
        """Read word ``ws``; reading word 0 loads MMUCR[STID] with the entry's TID."""
        self._check_index(index)
        if ws == 0:
            self.mmucr_stid = self.tids[index]
        return self.words[index][ws]

    def tlbsx(self, ea: int):
        """Search for ``ea`` with MMUCR[STID, STS]: the index, or None (CR0[EQ] clear)."""
        i = self.array.find(ea, self.mmucr_stid, self.mmucr_sts)
        return None if i < 0 else i

    def write_entry(self, index: int, ea: int, shift: int, tid: int = 0, ts: int = 0,
                    real_address: int = 0, attr: int = SR | SW | SX | UR | UW | UX) -> None:
        """Write a whole entry the way Linux does: three tlbwe with MMUCR[STID] = tid."""
        self.mmucr_stid = tid
        self.tlbwe(index, 1, word1(real_address))
        self.tlbwe(index, 2, attr)
        self.tlbwe(index, 0, word0(ea, shift, True, ts))

    def invalidate(self, index: int) -> None:
        """KVM's idiom: write the index itself as word 0 (V clear)."""
        self.tlbwe(index, 0, index)

    def translate(self, ea: int, pid: int, as_: int):
        """The real address of ``ea`` for (PID, AS), or None on a TLB miss."""
        i = self.array.find(ea, pid, as_)
        if i < 0:
            return None
        shift = self.array.read(i)[2]
        rpn = int(self.array.rpn_arr[i])
        return rpn | (ea & ((1 << shift) - 1))

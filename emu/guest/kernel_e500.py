"""The guest kernel of an e500 VM: Linux e500's TLB miss handler over KVM e500's guest TLB.

Everything but the TLB is the 44x guest's (:class:`~emu.guest.kernel.GuestKernel`:
system calls, ticks, switches and idle run the same head_booke.h /
entry_32.S code).  What differs (docs/kvm440.md §4):

* the guest TLB is KVM's geometry, whatever the host core: TLB0 256 entries
  2-way at guest indices 0..255 (esel = set * 2 + way), TLB1 16 entries at
  256..271, where the kernel's lowmem and device mappings live
  (:data:`PINNED_TLB1`);
* the miss handler fills with MAS ``mtspr``\\ s and ONE ``tlbwe``
  (:mod:`emu.guest.traps_e500`), at the way KVM handed it in MAS0[ESEL]
  when it delivered the miss (the port's :meth:`tlb0_victim`);
* a flush of the guest TLB (``flush_tlb_mm``) is one ``mtspr MMUCSR0`` and
  one ``mfspr MMUCSR0`` that polls it (``_tlbil_all``), not a loop of ``tlbwe``;
* an external interrupt reaches the MPIC by loads and stores (MMIO exits to
  QEMU), not the UIC's DCRs.
"""

from __future__ import annotations

from emu.guest import traps_e500 as T
from emu.guest.kernel import FILL_ATTR, GuestKernel
from emu.guest.os import PINNED_ENTRIES, GuestProcess
from emu.hw.e500 import GUEST_TLB0_ENTRIES, guest_tlb0_index
from emu.hw.ppc440 import SW, UW

#: The permissions the e500 guest's finish_tlb_load (head_fsl_booke.S
#: @ac98695d) writes for a user page: the PTE's USER, HWWRITE and HWEXEC as
#: UR, UW and UX, copied into SR, SW and SX.  Before the first store has set
#: HWWRITE the fill writes neither UW nor SW, and before the exec fault has set
#: HWEXEC neither UX nor SX (:meth:`GuestKernel.exec_mask`).
FILL_ATTR_WRITTEN = FILL_ATTR | UW
FILL_ATTR_CLEAN = FILL_ATTR & ~(SW | UW)

#: The guest kernel's TLB1 entries: (guest index, EA, page shift, GPA), TID 0,
#: TS 0 -- the 44x guest's pinned kernel and device mappings, as Linux e500's
#: CAMs from TLB1 entry 0 up (``tlbcam_index`` of them).
PINNED_TLB1 = tuple((GUEST_TLB0_ENTRIES + n, ea, shift, gpa)
                    for n, (_gi, ea, shift, gpa) in enumerate(PINNED_ENTRIES))


class GuestKernelE500(GuestKernel):
    """The guest kernel on one vCPU of an e500 VM (see the module docstring).

    The port must also answer :meth:`tlb0_victim` (the way KVM put in
    MAS0[ESEL] at the last delivered miss) and :meth:`flash_invalidate`
    (the guest's trapping ``mtspr MMUCSR0``).
    """

    MISS_ENTRY = (T.DTLB_MISS_ENTRY, T.ITLB_MISS_ENTRY)
    DSI_ENTRY = T.DSI_ENTRY
    #: the e500 has no DCRs: do_IRQ reaches its MPIC by loads and stores
    EXTINT_ENTRY = (T.EXTINT_ENTRY_FROM_KERNEL, T.EXTINT_ENTRY_FROM_USER)

    def fill_attr(self, proc: GuestProcess, ea: int):
        """The permissions of the fill of ``ea``'s page: UW and SW once its PTE has
        _PAGE_HWWRITE (:data:`FILL_ATTR_WRITTEN`), else neither
        (:data:`FILL_ATTR_CLEAN`); SX and UX once it has _PAGE_HWEXEC, as on the
        440: the fault.c of this head's era has the same exec branch under
        CONFIG_BOOKE, so the first fetch from each page is an ISI here as well,
        its _tlbie FSL Book-E's (:meth:`tlbie`; docs/kvm440.md §2.10)."""
        attr = FILL_ATTR_WRITTEN if self.os.written(proc, ea) else FILL_ATTR_CLEAN
        return attr & self.exec_mask(proc, ea)

    def make_writable(self, cpu, proc: GuestProcess, ea: int, gi: int) -> None:
        """DataStorage (head_fsl_booke.S @ac98695d): a user store through a TLB
        entry without UW.  finish_tlb_load takes UW from _PAGE_HWWRITE, which no
        PTE is made with, so the first store to each page of an address space
        lands here (:meth:`GuestKernel.data_storage`: the prefix with the PID
        into MAS6, then tlbsx): the PTE is USER and RW without HWWRITE, so the
        handler marks it DIRTY|ACCESSED|HWWRITE, rewrites MAS3's permissions
        with UW and SW and writes the entry back (tlbwe) -- 17 traps and the DSI
        exit; every later fill of the page writes UW (docs/kvm440.md §2.10)."""
        self.os.set_written(proc, ea)
        self.port.traps(cpu, T.DSI_MAS3)
        self.port.tlbwe(cpu, gi, None, self.port.tlb_entry(gi), self.fill_attr(proc, ea))

    def tlbie(self, cpu, ea: int) -> None:
        """_tlbie of ``ea``'s page on FSL Book-E (``__tlbil_va``): interrupts
        off, the PID into MAS6, tlbsx, MAS1 read; if the entry was found, V
        cleared in MAS1 and a tlbwe that invalidates it; interrupts back on
        (6 traps, 8 when found)."""
        port = self.port
        port.traps(cpu, T.TLBIE_ENTER)
        gi = port.tlbsx(cpu, ea)
        port.traps(cpu, T.TLBIE_CHECK)
        if gi >= 0:
            port.traps(cpu, T.TLBIE_CLEAR)
            port.tlbwe(cpu, gi, None, None)
        port.traps(cpu, T.TLBIE_LEAVE)

    def fill(self, cpu, entry: tuple, attr=None) -> None:
        """finish_tlb_load (head_fsl_booke.S @ac98695d): mfspr MAS2, mtspr MAS2, MAS3,
        then ONE tlbwe at the guest TLB0 way KVM put in MAS0[ESEL]; with the
        delivering exit and the restore, 15 exits.  ``attr`` as for the 440."""
        self.port.traps(cpu, T.FILL)
        gi = guest_tlb0_index(entry[0], self.port.tlb0_victim())
        self.port.tlbwe(cpu, gi, None, entry, attr)

    def flush_tlb_mm(self, cpu) -> None:
        """flush_tlb_mm (an exit, a fork, an exec, a stolen context):
        _tlbil_all, a trapping mtspr MMUCSR0, then one trapping mfspr MMUCSR0
        (the poll, which reads 0 under KVM)."""
        self.port.guest_work(cpu, self.costs["guest_tlb_flush"])
        self.port.flash_invalidate(cpu, T.FLASH_INVALIDATE)
        self.port.traps(cpu, T.FLASH_POLL)


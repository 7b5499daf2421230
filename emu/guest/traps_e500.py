"""What a Linux e500 guest traps on in its TLB miss handler: the trap sequences as data.

Under KVM e500 the guest kernel runs with MSR[PR] = 1 as on the 440, so
each privileged instruction traps and is emulated, counted in the category
:func:`emu.guest.traps44x.category` gives it (the MAS registers are
core-specific SPRs: ``EMUL_MTSPR``/``EMUL_MFSPR``).  Source: the Linux e500
miss handler, ``arch/powerpc/kernel/head_fsl_booke.S`` @ac98695d
(``DataTLBError``, ``InstructionTLBError``, ``finish_tlb_load``): user
address, PTE present, no CONFIG_PTE_64BIT.

KVM fills MAS0 (ESEL = its guest TLB0 victim), MAS1 (V, TS, TID) and MAS2
(EPN) when it delivers the miss (``kvmppc_e500_deliver_tlb_miss``), so the
handler writes only MAS2's WIMGE and MAS3, then one ``tlbwe`` (through the
port: it maps eagerly) and the ``rfi`` (the port's).  A delivered data miss
is 14 emulated instructions and the DTLBREAL exit that delivered it: 15
exits, one ``EMUL_TLBWE`` (the 440's handler makes 17 with three).  The
bail-out to the page fault, the system call, the tick, the context switch
and idle run the same head_booke.h / entry_32.S code as the 44x guest
(:mod:`emu.guest.traps44x`).  Known answers: ``tests/test_e500.py``.
"""

from __future__ import annotations

from emu.guest import traps44x as T44
from emu.guest.traps44x import TrapSeq

#: DataTLBError, user address, up to the branch to finish_tlb_load: the same
#: seven trapping instructions as head_44x.S's, which then goes on to MMUCR and
#: PID (``mfcr``, ``lwz`` and FIND_PTE do not trap):  mtspr SPRG0, SPRG1,
#: SPRG4W, SPRG5W, SPRG7W; mfspr DEAR; ``3:`` mfspr SPRG3.
DTLB_MISS_ENTRY = TrapSeq("DataTLBError (e500)", T44.DTLB_MISS_ENTRY.rows[:7])

#: InstructionTLBError: as DataTLBError with mfspr SRR0 for DEAR.
ITLB_MISS_ENTRY = TrapSeq("InstructionTLBError (e500)", T44.ITLB_MISS_ENTRY.rows[:7])

#: finish_tlb_load up to its one tlbwe: WIMGE into MAS2, RPN and permissions into MAS3.
FILL = TrapSeq("finish_tlb_load (e500)", [
    ("mfspr MAS2", "finish_tlb_load"),          # mfspr r12, SPRN_MAS2
    ("mtspr MAS2", "finish_tlb_load"),          # rlwimi ...; mtspr SPRN_MAS2, r12
    ("mtspr MAS3", "2:"),                       # rlwimi r11,r12,...; mtspr SPRN_MAS3, r11
])

#: After the tlbwe: SPRG7R/5R/4R are user-readable (no trap), SPRG1 and SPRG0
#: are not; then the rfi (the port's).
MISS_RESTORE = TrapSeq("finish_tlb_load restore (e500)", [
    ("mfspr SPRG1", "finish_tlb_load"),         # mfspr r11, SPRN_SPRG1
    ("mfspr SPRG0", "finish_tlb_load"),         # mfspr r10, SPRN_SPRG0
])

#: _tlbil_all on FSL Book E (the guest's local_flush_tlb_mm: an exit, a fork, an exec):
#: one mtspr MMUCSR0 with TLB0FI | TLB1FI, which KVM emulates by invalidating
#: the guest entries (kvmppc_e500_emul_mt_mmucsr0).
FLASH_INVALIDATE = TrapSeq("_tlbil_all (e500)", [("mtspr MMUCSR0", "_tlbil_all")])
#: ... then its loop reads MMUCSR0 until the flash invalidate bits clear
#: (arch/powerpc/mm/nohash/tlb_low.S @550d14e3, _tlbil_all, as moved from
#: misc_32.S): a trapping mfspr, which KVM's e500 emulation answers with 0
#: (e500_emulate.c, SPRN_MMUCSR0), so the loop ends after one read.
FLASH_POLL = TrapSeq("_tlbil_all poll (e500)", [("mfspr MMUCSR0", "_tlbil_all 1:")])

#: DataStorage, a user store through an entry without UW (head_fsl_booke.S
#: @ac98695d): the five saves, ESR (a store?), DEAR, the thread's PGD, then the
#: search PID into MAS6 (mfspr PID0, mtspr MAS6) for its tlbsx (the port's).
DSI_ENTRY = TrapSeq("DataStorage (e500)", T44.DSI_ENTRY.rows[:8] + (
    ("mfspr PID", "DataStorage"),               # mfspr r12, SPRN_PID0
    ("mtspr MAS6", "DataStorage"),              # slwi r12,r12,16; mtspr SPRN_MAS6, r12
))
#: ... after the tlbsx: only the permission bits of MAS3 change, then the
#: tlbwe (the port's), then MISS_RESTORE and the rfi.
DSI_MAS3 = TrapSeq("DataStorage MAS3 (e500)", [
    ("mfspr MAS3", "DataStorage"),              # mfspr r12, SPRN_MAS3
    ("mtspr MAS3", "DataStorage"),              # rlwimi ...; mtspr SPRN_MAS3, r12
])

#: do_page_fault's exec branch, e500: ``_tlbie`` of the page is FSL Book-E's
#: ``__tlbil_va`` (arch/powerpc/mm/nohash/tlb_low.S @550d14e3, moved there from
#: misc_32.S): interrupts off, the PID into MAS6, then its tlbsx (the port's).
TLBIE_ENTER = TrapSeq("_tlbie (e500)", [
    ("mfmsr", "__tlbil_va"),                    # mfmsr r10
    ("wrteei", "__tlbil_va"),                   # wrteei 0
    ("mtspr MAS6", "__tlbil_va"),               # slwi r4,r4,16; ori ...; mtspr SPRN_MAS6,r4
])
#: ... after the tlbsx: MAS1 read to check V, whether it found the entry or not.
TLBIE_CHECK = TrapSeq("_tlbie check (e500)", [("mfspr MAS1", "__tlbil_va")])
#: ... found: V cleared in MAS1, then the tlbwe (the port's: an invalidation).
TLBIE_CLEAR = TrapSeq("_tlbie clear (e500)", [("mtspr MAS1", "__tlbil_va")])
#: ... and interrupts back on.
TLBIE_LEAVE = TrapSeq("_tlbie (e500, done)", [("wrtee", "__tlbil_va 1:")])

#: do_IRQ on the e500's interrupt controller, the MPIC, which QEMU emulates
#: (hw/ppce500_mpc8544ds.c: mpic_init at CCSRBAR + 0x40000) and the kernel
#: reaches by loads and stores (arch/powerpc/sysdev/mpic.c of the 2.6.2x era):
#: ppc_md.get_irq = mpic_get_irq reads CPU_INTACK; handle_fasteoi_irq runs the
#: action between handle_IRQ_event's local_irq_enable_in_hardirq and
#: local_irq_disable (its desc->lock is a plain spin_lock: nothing traps on
#: UP), then chip->eoi = mpic_end_irq -> mpic_eoi writes CPU_EOI and reads
#: CPU_WHOAMI back.  Each MPIC access is a heavyweight exit (KVM_EXIT_MMIO), as
#: is the device's own ISR read in the action (traps44x.VIRTIO_ISR).
DO_IRQ = TrapSeq("do_IRQ (e500)", [
    ("lwz MPIC", "_mpic_get_one_irq"),         # mpic_cpu_read(CPU_INTACK)
    ("wrteei", "handle_IRQ_event"),             # local_irq_enable_in_hardirq()
    T44.VIRTIO_ISR,                             # the action: vp_interrupt's ISR read
    ("wrteei", "handle_IRQ_event"),             # local_irq_disable()
    ("stw MPIC", "mpic_eoi"),                   # mpic_cpu_write(CPU_EOI, 0)
    ("lwz MPIC", "mpic_eoi"),                   # (void)mpic_cpu_read(CPU_WHOAMI)
])
#: ExternalInput: head_booke.h's prolog and transfer, as on the 440, then
#: the MPIC's do_IRQ; the return is ret_from_except's.
EXTINT_ENTRY_FROM_USER = TrapSeq("ExternalInput (e500)", T44.PROLOG_FROM_USER.rows
                                 + T44.TRANSFER_TO_HANDLER.rows + DO_IRQ.rows)
EXTINT_ENTRY_FROM_KERNEL = TrapSeq("ExternalInput (e500, kernel)", T44.PROLOG_FROM_KERNEL.rows
                                   + T44.TRANSFER_TO_HANDLER.rows + DO_IRQ.rows)

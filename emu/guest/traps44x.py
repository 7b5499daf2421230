"""What a Linux 44x guest traps on, event by event: the trap sequences as data.

Under KVM-440 the guest kernel runs with MSR[PR] = 1, so every privileged
instruction it executes traps to KVM and is emulated there, each in the
exit-timing category KVM counts it in (docs/kvm440.md §2.9).  The rows
below are those instructions, in execution order, for each event the guest
model handles; each row names the instruction as head_44x.S writes it and the
label it is found under.  Sources (the 2008 guest, the kernel KVM-440 ran):

* ``arch/powerpc/kernel/head_44x.S`` @026477c1 — ``DataTLBError``,
  ``InstructionTLBError``, ``finish_tlb_load``, ``data_access``,
  ``SystemCall``, ``set_context``;
* ``arch/powerpc/kernel/head_booke.h``, pre-2.6.32 form —
  ``NORMAL_EXCEPTION_PROLOG``, ``EXC_XFER_LITE`` / ``EXC_XFER_EE_LITE``,
  ``INSTRUCTION_STORAGE_EXCEPTION``, ``DECREMENTER_EXCEPTION``;
* ``arch/powerpc/kernel/entry_32.S`` @026477c1 — ``transfer_to_handler``,
  ``ret_from_syscall``, ``syscall_exit_cont``, ``ret_from_except``,
  ``restore``, ``exc_exit_restart``, ``do_resched``, ``recheck``, ``_switch``;
* ``arch/powerpc/platforms/44x/idle.c`` (``ppc44x_idle``),
  ``kernel/sched.c`` (the run-queue lock around a switch; general 2.6.2x
  knowledge) and ``arch/powerpc/kernel/process.c`` (``__switch_to``'s
  ``local_irq_save`` / ``local_irq_restore`` around ``_switch``);
* ``arch/powerpc/sysdev/uic.c`` of 2008 (``uic_get_irq``,
  ``uic_mask_ack_irq``, ``uic_unmask_irq``) and the generic ``do_IRQ``,
  ``handle_level_irq`` and ``handle_IRQ_event`` (kernel/irq; general 2.6.2x
  knowledge) for an external interrupt.

The category of each instruction follows KVM at 73e75b41, the first commit
with exit timing: ``mfspr``/``mtspr`` of the SPRs that the generic
``kvmppc_emulate_instruction`` handles (SRR0/1, SPRG0-3, DEC) stay
``EMULINST``; those of ``kvmppc_core_emulate_mtspr``/``_mfspr`` (PID, MMUCR,
DEAR, ESR, TSR, SPRG4-7 ...) are ``EMUL_MTSPR``/``EMUL_MFSPR``; ``rfi``,
``mtmsr``, ``mfmsr``, ``wrtee(i)`` and ``tlbwe`` have their own; ``mfdcr`` and
``mtdcr`` of a device's DCRs are emulated in QEMU (``EMULATE_DO_DCR``:
``KVM_EXIT_DCR``, a heavyweight exit counted DCR).  The one
place that knows this is :func:`category`.  ``mfspr SPRG4R-7R`` read the
user-readable SPRG copies and never trap, nor do ``mfcr``/``mtcr``, loads and
stores: they are not listed.

What the rows leave to the guest model (:mod:`emu.guest.kernel`): the
``tlbwe`` of a fill and ``mtspr PID`` have effects on KVM and go through the
trap port one by one; the final ``rfi`` to user mode changes MSR[PR] and goes
through the port's ``rfi``; the rest of a sequence is one run of emulation
exits (:class:`TrapSeq`).  Known answers (a delivered data TLB miss is 17
exits, a system call 18) are in ``tests/test_traps44x.py``.
"""

from __future__ import annotations

from collections import Counter

from emu.codes import EXIT

#: SPRs whose mfspr/mtspr the generic emulator handles at 73e75b41 (emulate.c):
#: counted EMULINST.  Every other privileged SPR goes through 44x_emulate.c.
GENERIC_SPRS = frozenset({"SRR0", "SRR1", "SPRG0", "SPRG1", "SPRG2", "SPRG3", "DEC",
                          "TBWL", "TBWU", "PVR"})

#: The category of each privileged opcode besides mfspr/mtspr.
OPCODE_CATEGORY = {"rfi": "EMUL_RFI", "mtmsr": "EMUL_MTMSR", "mfmsr": "EMUL_MFMSR",
                   "wrtee": "EMUL_WRTEE", "wrteei": "EMUL_WRTEE", "tlbwe": "EMUL_TLBWE",
                   "tlbsx": "EMUL_TLBSX", "mfdcr": "DCR", "mtdcr": "DCR",
                   "lbz": "MMIO", "lwz": "MMIO", "stw": "MMIO"}


def category(instruction: str) -> str:
    """The exit-timing category KVM (73e75b41) counts ``instruction`` in.

    ``instruction`` is an opcode and, for mfspr/mtspr, the SPR:
    ``"mtspr SPRG0"``, ``"mfspr DEAR"``, ``"rfi"``.

    >>> category("mtspr SPRG0"), category("mtspr SPRG4W"), category("mfspr PID")
    ('EMULINST', 'EMUL_MTSPR', 'EMUL_MFSPR')

    A load or store (``lbz``, ``lwz``, ``stw``) is listed only where it
    reaches a device register QEMU emulates (a virtio device's ISR, the e500's
    MPIC): a heavyweight exit counted MMIO.
    """
    op, _, spr = instruction.partition(" ")
    if op in ("mtspr", "mfspr"):
        if spr in GENERIC_SPRS:
            return "EMULINST"
        return "EMUL_MTSPR" if op == "mtspr" else "EMUL_MFSPR"
    return OPCODE_CATEGORY[op]


class TrapSeq:
    """A run of trapping instructions: what the guest executes, in order.

    ``rows`` are ``(instruction, label)`` pairs; ``cats`` is the exit
    category number (``emu.codes.EXIT``) of each, and ``counts`` the number
    of exits per category name.  Sequences concatenate with ``+``.
    """

    __slots__ = ("name", "rows", "cats", "counts")

    def __init__(self, name: str, rows):
        self.name = name
        self.rows = tuple(rows)
        self.cats = tuple(EXIT[category(insn)] for insn, _ in self.rows)
        self.counts = Counter(category(insn) for insn, _ in self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __add__(self, other: "TrapSeq") -> "TrapSeq":
        return TrapSeq(f"{self.name} + {other.name}", self.rows + other.rows)

    def __repr__(self) -> str:
        return f"TrapSeq({self.name!r}, {len(self)} traps)"


def repeat(name: str, instruction: str, label: str, n: int) -> TrapSeq:
    """``n`` times the same trapping instruction."""
    return TrapSeq(name, [(instruction, label)] * n)


NONE = TrapSeq("nothing", ())

# -- the TLB miss handlers (head_44x.S @026477c1) ------------------------------------------
#
# Delivered by KVM after a DTLBREAL / ITLBREAL exit; the prefix up to
# ``mtspr MMUCR`` is common to the fill and to the bail-out to the page fault.

def _saves(label: str) -> list:
    """The five saves that open each of head_44x.S's TLB and storage handlers."""
    return [
        ("mtspr SPRG0", label),                 # mtspr SPRN_SPRG0, r10
        ("mtspr SPRG1", label),                 # mtspr SPRN_SPRG1, r11
        ("mtspr SPRG4W", label),                # mtspr SPRN_SPRG4W, r12
        ("mtspr SPRG5W", label),                # mtspr SPRN_SPRG5W, r13
        ("mtspr SPRG7W", label),                # mfcr r11; mtspr SPRN_SPRG7W, r11
    ]


#: A user address: the thread's PGD, and its PID into MMUCR[TID].
_USER_PGD = [
    ("mfspr SPRG3", "3:"),                      # EA < TASK_SIZE: mfspr r11,SPRN_SPRG3
    ("mfspr MMUCR", "3:"),                      # mfspr r12,SPRN_MMUCR
    ("mfspr PID", "3:"),                        # mfspr r13,SPRN_PID
    ("mtspr MMUCR", "4:"),                      # mtspr SPRN_MMUCR,r12
]

#: DataTLBError, user address: save, DEAR, PGD and PID into MMUCR (traps44x A #1-10).
DTLB_MISS_ENTRY = TrapSeq("DataTLBError", _saves("DataTLBError") + [
    ("mfspr DEAR", "DataTLBError"),             # mfspr r10, SPRN_DEAR
] + _USER_PGD)

#: InstructionTLBError: as DataTLBError with SRR0 for DEAR (traps44x B #1-10).
ITLB_MISS_ENTRY = TrapSeq("InstructionTLBError", _saves("InstructionTLBError") + [
    ("mfspr SRR0", "InstructionTLBError"),      # mfspr r10, SPRN_SRR0
] + _USER_PGD)

#: DataStorage, a user store through an entry without UW (head_44x.S
#: @026477c1): save, ESR (a store?), DEAR, PGD and PID into MMUCR; its tlbsx
#: (which finds the entry) and tlbwe ATTRIB go through the port, and it
#: leaves as finish_tlb_load does (:data:`MISS_RESTORE`, rfi): 16 traps.
DSI_ENTRY = TrapSeq("DataStorage", _saves("DataStorage") + [
    ("mfspr ESR", "DataStorage"),               # mfspr r10, SPRN_ESR; andis. ESR_ST
    ("mfspr DEAR", "DataStorage"),              # mfspr r10, SPRN_DEAR
] + _USER_PGD)

#: finish_tlb_load, between its three tlbwe (through the port) and the rfi
#: (traps44x A #14-15; SPRG7R/5R/4R are user-readable and do not trap).
MISS_RESTORE = TrapSeq("finish_tlb_load restore", [
    ("mfspr SPRG1", "finish_tlb_load"),         # mfspr r11, SPRN_SPRG1
    ("mfspr SPRG0", "finish_tlb_load"),         # mfspr r10, SPRN_SPRG0
])

# -- the exception prolog and the transfer to C (head_booke.h, entry_32.S) ----------------

#: NORMAL_EXCEPTION_PROLOG from user mode (traps44x D #1-9).
PROLOG_FROM_USER = TrapSeq("NORMAL_EXCEPTION_PROLOG", [
    ("mtspr SPRG0", "NORMAL_EXCEPTION_PROLOG"),  # mtspr SPRN_SPRG0,r10
    ("mtspr SPRG1", "NORMAL_EXCEPTION_PROLOG"),  # mtspr SPRN_SPRG1,r11
    ("mtspr SPRG4W", "NORMAL_EXCEPTION_PROLOG"),  # mtspr SPRN_SPRG4W,r1
    ("mfspr SRR1", "NORMAL_EXCEPTION_PROLOG"),  # user or kernel?
    ("mfspr SPRG3", "NORMAL_EXCEPTION_PROLOG"),  # from user only: the thread's stack
    ("mfspr SPRG0", "NORMAL_EXCEPTION_PROLOG"),
    ("mfspr SPRG1", "NORMAL_EXCEPTION_PROLOG"),
    ("mfspr SRR0", "NORMAL_EXCEPTION_PROLOG"),  # after mfspr SPRG4R (no trap)
    ("mfspr SRR1", "NORMAL_EXCEPTION_PROLOG"),
])

#: NORMAL_EXCEPTION_PROLOG from kernel mode: no mfspr SPRG3 (traps44x E, from kernel).
PROLOG_FROM_KERNEL = TrapSeq("NORMAL_EXCEPTION_PROLOG (kernel)",
                             PROLOG_FROM_USER.rows[:4] + PROLOG_FROM_USER.rows[5:])

#: transfer_to_handler and its rfi into the C handler, MSR_KERNEL: PR stays 0
#: (traps44x D #10-13).
TRANSFER_TO_HANDLER = TrapSeq("transfer_to_handler", [
    ("mfspr SPRG3", "transfer_to_handler"),     # mfspr XER, mfctr do not trap
    ("mtspr SRR0", "transfer_to_handler_cont"),  # 3:
    ("mtspr SRR1", "transfer_to_handler_cont"),
    ("rfi", "transfer_to_handler_cont"),        # RFI to the handler
])

#: ret_from_except / ret_from_syscall up to the final rfi (which is the port's):
#: MTMSRD to disable EE, then SRR0/SRR1 (traps44x C #28-30, D #14-16, E #17-19).
RET_DISABLE_EE = TrapSeq("ret_from_except", [("mtmsr", "ret_from_except")])   # MTMSRD(r10)
RET_RESTORE = TrapSeq("restore", [
    ("mtspr SRR0", "exc_exit_restart"),
    ("mtspr SRR1", "exc_exit_restart"),
])
#: The same tail on the system call's own path (ret_from_syscall, syscall_exit_cont).
SYSCALL_EXIT = TrapSeq("ret_from_syscall", [
    ("mtmsr", "ret_from_syscall"),              # MTMSRD(r10): disable EE
    ("mtspr SRR0", "syscall_exit_cont"),
    ("mtspr SRR1", "syscall_exit_cont"),
])
#: The rfi that ends an interrupt taken in kernel mode: PR stays 0.
KERNEL_RFI = TrapSeq("restore (kernel)", [("rfi", "restore")])

# -- events -----------------------------------------------------------------------------

#: SystemCall: the prolog and the transfer to DoSyscall (traps44x D #1-13).
SYSCALL_ENTRY = TrapSeq("SystemCall", PROLOG_FROM_USER.rows + TRANSFER_TO_HANDLER.rows)

#: The bail-out of DataTLBError to data_access and the transfer to
#: handle_page_fault (traps44x C #11-27).
DATA_FAULT_ENTRY = TrapSeq("data_access", [
    ("mfspr SPRG1", "DataTLBError 2:"),         # the bail-out restores r11, r10
    ("mfspr SPRG0", "DataTLBError 2:"),
    *PROLOG_FROM_USER.rows,                     # data_access: NORMAL_EXCEPTION_PROLOG
    ("mfspr ESR", "data_access"),               # mfspr r5,SPRN_ESR
    ("mfspr DEAR", "data_access"),              # mfspr r4,SPRN_DEAR
    *TRANSFER_TO_HANDLER.rows,                  # EXC_XFER_EE_LITE(0x0300, handle_page_fault)
])

#: The bail-out of InstructionTLBError to InstructionStorage
#: (INSTRUCTION_STORAGE_EXCEPTION: the prolog, mfspr ESR, EXC_XFER_EE_LITE).
INST_FAULT_ENTRY = TrapSeq("InstructionStorage", [
    ("mfspr SPRG1", "InstructionTLBError 2:"),
    ("mfspr SPRG0", "InstructionTLBError 2:"),
    *PROLOG_FROM_USER.rows,
    ("mfspr ESR", "InstructionStorage"),        # mfspr r5,SPRN_ESR; SRR0 is already in r12
    *TRANSFER_TO_HANDLER.rows,
])

#: InstructionStorage taken directly: a user fetch through an entry without UX
#: (head_booke.h INSTRUCTION_STORAGE_EXCEPTION: the prolog, mfspr ESR,
#: EXC_XFER_EE_LITE to handle_page_fault); 14 traps.
ISI_ENTRY = TrapSeq("InstructionStorage (no UX)", [
    *PROLOG_FROM_USER.rows,
    ("mfspr ESR", "InstructionStorage"),        # mfspr r5,SPRN_ESR
    *TRANSFER_TO_HANDLER.rows,
])

#: _tlbie of one user page, around its tlbsx and tlbwe PAGEID (which go through
#: the port): the MMUCR's TID, and interrupts off across the search
#: (arch/powerpc/mm/nohash/tlb_low.S @550d14e3 __tlbil_va, 440, moved there from
#: misc_32.S; sync and isync do not trap).
TLBIE_ENTER = TrapSeq("_tlbie", [
    ("mfspr MMUCR", "_tlbie"),                  # mfspr r5,SPRN_MMUCR
    ("mfmsr", "_tlbie"),                        # mfmsr r10
    ("wrteei", "_tlbie"),                       # wrteei 0
    ("mtspr MMUCR", "_tlbie"),                  # mtspr SPRN_MMUCR,r5
])
TLBIE_LEAVE = TrapSeq("_tlbie (done)", [("wrtee", "_tlbie")])   # 10: wrtee r10

#: DECREMENTER_EXCEPTION from user mode up to timer_interrupt's two
#: set_dec (traps44x E #1-16): prolog, clear TSR[DIS], transfer, mtspr DEC x 2.
TIMER_DEC = TrapSeq("timer_interrupt", [
    ("mtspr DEC", "timer_interrupt"),           # set_dec(DECREMENTER_MAX)
    ("mtspr DEC", "timer_interrupt"),           # clockevent set_next_event: set_dec(next)
])
_TSR = [("mtspr TSR", "DECREMENTER_EXCEPTION")]    # lis r0,TSR_DIS@h; mtspr SPRN_TSR,r0
TICK_ENTRY_FROM_USER = TrapSeq("Decrementer", PROLOG_FROM_USER.rows + tuple(_TSR)
                               + TRANSFER_TO_HANDLER.rows + TIMER_DEC.rows)
TICK_ENTRY_FROM_KERNEL = TrapSeq("Decrementer (kernel)", PROLOG_FROM_KERNEL.rows + tuple(_TSR)
                                 + TRANSFER_TO_HANDLER.rows + TIMER_DEC.rows)

#: The action of a device's interrupt: the guest's devices are virtio devices on
#: PCI (QEMU's bamboo board, hw/ppc440_bamboo.c: virtio_blk_init and virtio NICs
#: on the 440's PCI bus; the e500's, hw/ppce500_mpc8544ds.c: virtio NICs), and
#: virtio_pci's vp_interrupt first reads the device's ISR (ioread8 of an I/O BAR,
#: through the PCI I/O window: an MMIO load QEMU serves), which clears it; the
#: virtqueue's callback then reads the ring in guest memory.
VIRTIO_ISR = ("lbz ISR", "vp_interrupt")     # isr = ioread8(ioaddr + VIRTIO_PCI_ISR)

#: do_IRQ for a level interrupt of the primary UIC (uic.c of 2008; irq_enter and
#: irq_exit with no softirq pending trap nothing): uic_get_irq reads UIC_MSR;
#: handle_level_irq masks and acks (uic_mask_ack_irq: ER under the UIC's lock,
#: whose spin_lock_irqsave is mfmsr + wrteei 0 and whose restore is wrtee; a level
#: source is acked after its handler), runs the handler with interrupts enabled
#: (handle_IRQ_event: local_irq_enable_in_hardirq, the device's action
#: (:data:`VIRTIO_ISR`), local_irq_disable) and unmasks (uic_unmask_irq: SR then
#: ER).  6 DCR, 1 MMIO, 2 mfmsr, 6 wrtee(i).
DO_IRQ = TrapSeq("do_IRQ", [
    ("mfdcr", "uic_get_irq"),                   # mfdcr(dcrbase + UIC_MSR)
    ("mfmsr", "uic_mask_ack_irq"),              # spin_lock_irqsave(&uic->lock)
    ("wrteei", "uic_mask_ack_irq"),
    ("mfdcr", "uic_mask_ack_irq"),              # er = mfdcr(UIC_ER)
    ("mtdcr", "uic_mask_ack_irq"),              # mtdcr(UIC_ER, er & ~sr); level: no SR
    ("wrtee", "uic_mask_ack_irq"),              # spin_unlock_irqrestore
    ("wrteei", "handle_IRQ_event"),             # local_irq_enable_in_hardirq()
    VIRTIO_ISR,                                 # the action: the device's interrupt
    ("wrteei", "handle_IRQ_event"),             # local_irq_disable()
    ("mfmsr", "uic_unmask_irq"),                # spin_lock_irqsave(&uic->lock)
    ("wrteei", "uic_unmask_irq"),
    ("mtdcr", "uic_unmask_irq"),                # level: ack, mtdcr(UIC_SR, sr)
    ("mfdcr", "uic_unmask_irq"),                # er = mfdcr(UIC_ER)
    ("mtdcr", "uic_unmask_irq"),                # mtdcr(UIC_ER, er | sr)
    ("wrtee", "uic_unmask_irq"),                # spin_unlock_irqrestore
])
#: ExternalInput (head_44x.S @026477c1: ``EXCEPTION(0x0500, ExternalInput, do_IRQ,
#: EXC_XFER_LITE)``): the prolog, the transfer to do_IRQ and its traps; the return
#: is ret_from_except's (RET_DISABLE_EE, RET_RESTORE, then the rfi).
EXTINT_ENTRY_FROM_USER = TrapSeq("ExternalInput", PROLOG_FROM_USER.rows
                                 + TRANSFER_TO_HANDLER.rows + DO_IRQ.rows)
EXTINT_ENTRY_FROM_KERNEL = TrapSeq("ExternalInput (kernel)", PROLOG_FROM_KERNEL.rows
                                   + TRANSFER_TO_HANDLER.rows + DO_IRQ.rows)

#: user_exc_return -> do_work -> do_resched: EE on, schedule(), recheck: EE off
#: (traps44x E, "with a reschedule").
RESCHED_ENTER = TrapSeq("do_resched", [("mtmsr", "do_resched")])   # ori r10,MSR_EE; MTMSRD
RESCHED_LEAVE = TrapSeq("recheck", [("mtmsr", "recheck")])         # MTMSRD: EE off again

#: schedule() -> context_switch(): the run-queue lock, switch_mm's set_context
#: (the port's mtspr PID), __switch_to's local_irq_save / local_irq_restore
#: around _switch (process.c: mfmsr and wrteei 0, then wrtee), _switch
#: (traps44x F).
SWITCH_LOCK = TrapSeq("schedule", [("wrteei", "schedule")])        # spin_lock_irq(&rq->lock)
SWITCH_TAIL = TrapSeq("_switch", [
    ("mfmsr", "__switch_to"),                   # local_irq_save(flags): flags = mfmsr()
    ("wrteei", "__switch_to"),                  # ... and wrteei 0
    ("mfmsr", "_switch"),                       # mfmsr r11
    ("mtspr SPRG3", "_switch"),                 # "Update current THREAD phys addr"
    ("wrtee", "__switch_to"),                   # local_irq_restore(flags)
    ("wrteei", "finish_task_switch"),           # spin_unlock_irq(&rq->lock)
])

#: cpu_idle -> ppc44x_idle (traps44x G): the mtmsr with MSR[WE] is the port's wait.
IDLE_ENTER = TrapSeq("ppc44x_idle", [
    ("wrteei", "cpu_idle"),                     # local_irq_disable()
    ("mfmsr", "ppc44x_idle"),                   # msr_save = mfmsr()
])
IDLE_LEAVE = TrapSeq("ppc44x_idle (woken)", [
    ("mtmsr", "ppc44x_idle"),                   # mtmsr(msr_save)
    ("wrteei", "cpu_idle"),                     # local_irq_enable()
])


def c_traps(name: str, mfmsr: int, wrtee: int) -> TrapSeq:
    """The traps of C code that the assembly does not fix: ``mfmsr`` and
    ``wrtee`` of ``local_irq_save``/``restore`` and spin_lock_irq* (counts from
    the cost table's ``guest_c_traps_*`` rows)."""
    return TrapSeq(name, [("mfmsr", name)] * mfmsr + [("wrtee", name)] * wrtee)

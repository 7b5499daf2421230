"""The guest kernel's handlers on one vCPU, trapping to the host through a port.

Linux 44x as KVM-440 sees it: the guest kernel runs with MSR[PR] = 1, so each
privileged instruction it executes traps and is emulated, one lightweight
exit each (:mod:`emu.guest.traps44x` lists them per event, from head_44x.S).
The guest never talks to KVM directly: the vCPU hands itself in as a
:class:`TrapPort`, and the handlers call it.  What the host does at each
trap (exit accounting, instruction emulation, shadow mappings, the
privilege switch) is the port's business.

The guest is in user mode while a process runs its accesses, and in its
kernel from the delivery of an interrupt (a TLB miss, a system call, the
decrementer) to the ``rfi`` that returns to user mode; in between it runs
trap sequences, native work and kernel accesses (:mod:`emu.guest.footprint`).
The handlers:

* :meth:`GuestKernel.tlb_miss` — DataTLBError / InstructionTLBError: walk
  the page table and fill the guest TLB with three trapping ``tlbwe``
  (one, batched, when the scenario enables ``kvm.batch_tlbwe``), 17 exits
  with the delivering one; when the PTE is absent, bail out to the page
  fault (data_access / InstructionStorage, do_page_fault), return to user
  mode, and let the access miss again;
* :meth:`GuestKernel.data_storage` — DataStorage: a user store through an
  entry without UW (finish_tlb_load never writes it): the PTE made dirty,
  ``tlbsx``, ``tlbwe`` ATTRIB with UW (16 traps);
* :meth:`GuestKernel.inst_storage` — InstructionStorage: a user fetch through
  an entry without UX (the PTE has no _PAGE_HWEXEC yet): do_page_fault's exec
  branch sets it and ``_tlbie`` invalidates the entry (25 traps);
* :meth:`GuestKernel.syscall` — sc, SystemCall, the service, the return (18
  exits); :meth:`GuestKernel.sleep` is a blocking one (I/O): the process
  sleeps in the kernel and the guest schedules;
* :meth:`GuestKernel.timer_tick` — the decrementer, which KVM delivers at a
  host tick (the guest decrementer is a host timer): the tick, maybe a
  preemption (``do_resched``: another process with less virtual runtime),
  the return;
* :meth:`GuestKernel.external_interrupt` — ExternalInput: an I/O
  completion (a QEMU block request done, or the end of a process's I/O wait
  while the guest idles), do_IRQ and the UIC's DCR accesses, the return;
* :meth:`GuestKernel.switch_process` — schedule() and switch_mm: the
  run-queue lock, ``mtspr PID`` (a context another live process used last,
  as a stolen one, first invalidates the guest TLB: one trapping ``tlbwe``
  per index 0..hwater), ``_switch``;
* :meth:`GuestKernel.process_exit` — a process with a ``lifetime_accesses``
  has made them: ``exit_group`` (exit_mmap's ``flush_tlb_mm``, which is
  ``_tlbia`` on 44x), then the fork and exec of a fresh process in its place
  (fork's ``dup_mmap`` flushes the parent's TLB, a second ``_tlbia``; new
  PID, empty page table, a third ``_tlbia`` at exec);
* :meth:`GuestKernel.halt` — nothing runnable: the idle loop, whose
  ``mtmsr`` with MSR[WE] blocks the vCPU (EMUL_WAIT) until the guest
  decrementer's host tick or an I/O completion.

Every handler takes ``cpu``, the physical CPU the vCPU runs on, only to hand
it back to the port: the guest never looks inside it.  The handlers are
observable (:mod:`emu.observe`) through the port's observer.
"""

from __future__ import annotations

from typing import Any, Protocol

from emu.errors import EmuError
from emu.guest import traps44x as T
from emu.guest.footprint import Footprint
from emu.guest.os import GUEST_HWATER, KERNEL_BASE, GuestCPU, GuestOS, GuestProcess
from emu.hw.ppc440 import ATTRIB, PAGEID, SR, SW, SX, UR, UW, UX, XLAT
from emu.observe import observed

#: The order in which Linux's fill writes the three words (head_44x.S
#: finish_tlb_load; docs/kvm440.md §2.7).
FILL_WORDS = (XLAT, PAGEID, ATTRIB)
#: The permissions finish_tlb_load (@026477c1) writes for a user page: SR, SW
#: (= _PAGE_RW), SX (= _PAGE_HWEXEC), UR (= _PAGE_USER), UX (= HWEXEC & USER);
#: never UW, which only the DataStorage handler sets (the model's user pages
#: are writable).  Before the exec fault has set the PTE's HWEXEC, the fill
#: writes neither SX nor UX (:data:`FILL_ATTR_NO_EXEC`).
FILL_ATTR = SR | SW | SX | UR | UX
FILL_ATTR_NO_EXEC = FILL_ATTR & ~(SX | UX)


class TrapPort(Protocol):
    """The vCPU as the guest kernel sees it: what the guest does that the host sees.

    Every method is called inside the vCPU's run, with ``cpu`` the physical
    CPU running it; each charges its cycles to that CPU.
    """

    #: The observer of the guest's handlers (emu.observe), or None.
    observer: Any

    def now(self, cpu) -> int:
        """The current time, in cycles."""

    def guest_work(self, cpu, cycles: int) -> None:
        """The guest's own code runs for ``cycles``, without an exit."""

    def run_kernel(self, cpu, ea, kind) -> None:
        """The guest kernel makes the accesses ``ea``/``kind`` (supervisor mode)."""

    def fault(self) -> tuple[int, bool]:
        """(EA, instruction fetch?) of the TLB miss just delivered: what the trapping
        ``mfspr DEAR`` (or ``SRR0``) of the handler reads."""

    def deliver(self, cpu, category: str) -> None:
        """KVM delivers an interrupt to the guest: MSR[PR] goes 1 -> 0.  For
        ``SYSCALL``, ``DSI`` and ``ISI`` the exit is made here; for ``DTLBREAL``/``ITLBREAL``
        the exit that found the miss was the fast path's."""

    def traps(self, cpu, seq: T.TrapSeq) -> None:
        """The guest executes ``seq``: one lightweight exit per instruction, each
        emulated and counted in its category."""

    def rfi(self, cpu, usermode: bool) -> None:
        """The final ``rfi`` traps; MSR[PR] becomes 1 (``usermode``) inside its exit."""

    def priv_switch(self, cpu, usermode: bool) -> None:
        """The guest's MSR[PR] becomes ``usermode`` inside the current trap: at
        every interrupt delivered from user mode and every rfi to user mode
        (KVM's kvmppc_mmu_priv_switch; nothing happens when PR stays)."""

    def tlbwe(self, cpu, index: int, word: int | None, entry: tuple | None,
              attr: int | None = None) -> None:
        """tlbwe traps: the guest writes ``word`` (PAGEID, XLAT or ATTRIB; None
        for the whole entry in one batched trap) of guest TLB entry ``index``.

        ``entry`` is the entry the guest is writing, (ea, shift, tid, ts, gpa),
        or None for a PAGEID with V clear (an invalidation); ``attr`` its
        permissions (word 2, UX..SR), None for those its fill writes.
        """

    def tlbsx(self, cpu, ea: int) -> int:
        """tlbsx traps: the index of the guest TLB entry that maps ``ea`` in
        the current PID and AS (-1: none)."""

    def tlb_entry(self, index: int) -> tuple:
        """Guest TLB entry ``index`` as (ea, shift, tid, ts, gpa) (read without a trap)."""

    def tlb_valid(self, index: int) -> bool:
        """Whether guest TLB entry ``index`` is valid (read without a trap)."""

    def mtspr_pid(self, cpu, pid: int) -> None:
        """mtspr PID traps: the guest's current PID becomes ``pid``."""

    def set_dec(self, cpu, cycles: int) -> None:
        """What the trapped ``mtspr DEC`` does: the guest decrementer (a host
        timer) fires in ``cycles``."""

    def wait(self, cpu, until: int):
        """``mtmsr`` with MSR[WE] traps (EMUL_WAIT): the vCPU blocks until the
        guest decrementer fires or, if ``until`` >= 0, an I/O completes at
        cycle ``until``.  Returns what the vCPU's run returns: (blocked, after).
        """


class GuestKernel:
    """The guest kernel as it runs on one vCPU: its handlers and its timer.

    ``os`` is the VM's :class:`GuestOS`, ``cpu_state`` the :class:`GuestCPU`
    of this vCPU, ``costs`` the cost table (its ``guest_*`` rows and
    ``access``), ``us`` the conversion of microseconds to cycles, and
    ``batch_tlbwe`` whether a fill writes its three words in one trap;
    ``footprint`` the kernel's memory layout (built from ``costs`` if not
    given).  :meth:`attach` takes the port.
    """

    #: The miss handler's trapping prefix: (data, instruction fetch).
    MISS_ENTRY = (T.DTLB_MISS_ENTRY, T.ITLB_MISS_ENTRY)
    #: DataStorage's trapping prefix, up to its tlbsx.
    DSI_ENTRY = T.DSI_ENTRY
    #: ExternalInput up to the return: (from the kernel, from user mode); do_IRQ
    #: on the 440's UIC, through DCRs.
    EXTINT_ENTRY = (T.EXTINT_ENTRY_FROM_KERNEL, T.EXTINT_ENTRY_FROM_USER)

    def __init__(self, os: GuestOS, cpu_state: GuestCPU, costs, us, batch_tlbwe: bool = False,
                 footprint: Footprint | None = None):
        self.os, self.gcpu = os, cpu_state
        self.costs = costs
        self.us = us
        self.batch_tlbwe = batch_tlbwe
        self.fp = footprint if footprint is not None else Footprint(costs)
        self.access = costs["access"]
        self.port: TrapPort | None = None
        self.timer_period = us(costs["guest_timer_period_us"])
        self.timeslice = us(costs["guest_timeslice_us"])
        self.next_timer = self.timer_period        # the guest's next tick, as it counts
        self.slice_start = 0                       # when the current process got the CPU
        self.user = cpu_state.current is not None  # a process runs in user mode
        self.idle = False                          # in the idle loop
        self.pid = cpu_state.current.pid if cpu_state.current is not None else 0
        self.c_tick = T.c_traps("timer softirq", costs["guest_c_traps_tick_mfmsr"],
                                costs["guest_c_traps_tick_wrtee"])
        self.c_syscall = T.c_traps("system call", costs["guest_c_traps_syscall_mfmsr"],
                                   costs["guest_c_traps_syscall_wrtee"])
        self.c_fault = T.c_traps("page allocation", costs["guest_c_traps_fault_mfmsr"],
                                 costs["guest_c_traps_fault_wrtee"])

    def attach(self, port: TrapPort) -> None:
        """Run on ``port`` from now on (the vCPU hands itself in)."""
        self.port = port

    @property
    def observer(self):
        """The observer of these handlers: the port's."""
        return self.port.observer

    @property
    def thread(self):
        """The thread an observer is told about: the vCPU behind the port."""
        return self.port

    def user_process(self):
        """The process running in user mode, or None when the guest is in its kernel."""
        return self.gcpu.current if self.user else None

    # -- helpers ---------------------------------------------------------------------------

    def kernel_work(self, cpu, cycles: int, touches) -> None:
        """Native kernel work of ``cycles``, of which the accesses ``touches``
        (an (ea, kind) pair) are part."""
        ea, kind = touches
        self.port.guest_work(cpu, max(0, cycles - len(ea) * self.access))
        if len(ea):
            self.port.run_kernel(cpu, ea, kind)

    def return_to_user(self, cpu, tail: T.TrapSeq) -> None:
        """The exception return: ``tail`` (e.g. MTMSRD, SRR0, SRR1), then the rfi
        that puts the guest back in user mode."""
        self.port.traps(cpu, tail)
        self.port.rfi(cpu, usermode=True)
        self.user = True

    # -- the handlers ---------------------------------------------------------------------

    @observed("guest_tlb_miss")
    def tlb_miss(self, cpu, proc: GuestProcess) -> None:
        """DataTLBError / InstructionTLBError (head_44x.S @026477c1) for ``proc``."""
        port, c = self.port, self.costs
        ea, fetch = port.fault()
        if ea >= KERNEL_BASE:
            raise EmuError(f"internal: guest TLB miss on kernel address {ea:#x}")
        port.deliver(cpu, "ITLBREAL" if fetch else "DTLBREAL")
        self.user = False
        proc.guest_tlb_misses += 1
        port.traps(cpu, self.MISS_ENTRY[fetch])
        gfn, table = self.os.walk(proc, ea)
        if gfn is None:
            self.page_fault(cpu, proc, ea, fetch, table)
            return
        self.kernel_work(cpu, c["guest_miss_handler"], self.fp.miss(proc, ea))
        self.fill(cpu, (ea >> 12 << 12, 12, proc.pid, 0, gfn << 12), self.fill_attr(proc, ea))
        port.traps(cpu, T.MISS_RESTORE)
        port.rfi(cpu, usermode=True)
        self.user = True

    @observed("data_storage")
    def data_storage(self, cpu, proc: GuestProcess) -> None:
        """DataStorage (head_44x.S @026477c1): a user store through a TLB entry
        without UW.  finish_tlb_load never writes UW, so the first store through
        each entry it filled lands here: the PTE is writable, so the handler
        marks it DIRTY|ACCESSED|HWWRITE, finds the entry (tlbsx) and rewrites
        its word 2 with UW = RW & USER (tlbwe ATTRIB), then returns to retry
        the store -- 16 traps and the DSI exit (docs/kvm440.md §2.10).  The
        entry's rewrite is :meth:`make_writable`'s."""
        port = self.port
        ea, _ = port.fault()
        port.deliver(cpu, "DSI")
        self.user = False
        port.traps(cpu, self.DSI_ENTRY)
        self.kernel_work(cpu, self.costs["guest_dsi_handler"], self.fp.miss(proc, ea))
        gi = port.tlbsx(cpu, ea)
        if gi < 0:
            raise EmuError(f"internal: a DSI at {ea:#x} with no guest TLB entry for it")
        self.make_writable(cpu, proc, ea, gi)
        port.traps(cpu, T.MISS_RESTORE)
        port.rfi(cpu, usermode=True)
        self.user = True

    def make_writable(self, cpu, proc: GuestProcess, ea: int, gi: int) -> None:
        """DataStorage's rewrite of guest TLB entry ``gi``, which tlbsx found for
        ``ea``: word 2 with UW = RW & USER, and SX and UX from _PAGE_HWEXEC
        as finish_tlb_load writes them (tlbwe ATTRIB)."""
        self.port.tlbwe(cpu, gi, ATTRIB, self.port.tlb_entry(gi),
                        (FILL_ATTR | UW) & self.exec_mask(proc, ea))

    @observed("inst_storage")
    def inst_storage(self, cpu, proc: GuestProcess) -> None:
        """InstructionStorage (head_booke.h INSTRUCTION_STORAGE_EXCEPTION): a user
        fetch through a TLB entry without UX.  A user PTE is made without
        _PAGE_HWEXEC, so the fill of a page never executed before writes no UX
        and its first fetch lands here: do_page_fault's exec branch
        (arch/powerpc/mm/fault.c, CONFIG_4xx || CONFIG_BOOKE) finds the PTE
        present, flushes the page's data cache to the instruction cache, sets
        HWEXEC and invalidates the entry (_tlbie: tlbsx, tlbwe PAGEID); the
        fetch misses again and the fill writes UX -- 14 + 7 + 4 traps (the
        entry, _tlbie, the return) and the ISI exit (docs/kvm440.md §2.10)."""
        port, c = self.port, self.costs
        ea, _ = port.fault()
        port.deliver(cpu, "ISI")
        self.user = False
        port.traps(cpu, T.ISI_ENTRY)
        gfn, _table = self.os.walk(proc, ea)
        if gfn is None:
            raise EmuError(f"internal: an ISI at {ea:#x} with no PTE for it")
        self.kernel_work(cpu, c["guest_exec_fault"], self.fp.fault(proc, ea, gfn))
        self.os.set_executable(proc, ea)
        self.tlbie(cpu, ea)
        self.return_to_user(cpu, T.RET_DISABLE_EE + T.RET_RESTORE)

    def tlbie(self, cpu, ea: int) -> None:
        """_tlbie of ``ea``'s page on 44x: the PID into MMUCR with interrupts
        off, tlbsx, and a tlbwe PAGEID with V clear at the index found."""
        port = self.port
        port.traps(cpu, T.TLBIE_ENTER)
        gi = port.tlbsx(cpu, ea)
        if gi >= 0:
            port.tlbwe(cpu, gi, PAGEID, None)
        port.traps(cpu, T.TLBIE_LEAVE)

    def page_fault(self, cpu, proc: GuestProcess, ea: int, fetch: bool, table: bool) -> None:
        """The miss handler bails out to the page fault: the first pass of a demand
        fault (traps44x C).  The access misses again on return and is filled."""
        port, c = self.port, self.costs
        self.kernel_work(cpu, 0, self.fp.miss_bail(proc, ea, table))
        port.traps(cpu, T.INST_FAULT_ENTRY if fetch else T.DATA_FAULT_ENTRY)
        gfn = self.os.fault(proc, ea)
        self.kernel_work(cpu, c["guest_page_fault"], self.fp.fault(proc, ea, gfn))
        port.traps(cpu, self.c_fault)
        self.return_to_user(cpu, T.RET_DISABLE_EE + T.RET_RESTORE)

    def exec_mask(self, proc: GuestProcess, ea: int) -> int:
        """The permission bits a TLB write for ``ea``'s page keeps: all, once
        its PTE has _PAGE_HWEXEC, else all but SX and UX (finish_tlb_load and
        DataStorage both write SX = HWEXEC and UX = HWEXEC & USER, on both
        cores), so that the first user fetch from each page takes the exec
        fault (:meth:`inst_storage`)."""
        if self.os.executable(proc, ea):
            return ~0
        return ~(SX | UX)

    def fill_attr(self, proc: GuestProcess, ea: int):
        """The permissions finish_tlb_load writes for ``ea``'s page: None (the
        vCPU's, :data:`FILL_ATTR`) once its PTE has _PAGE_HWEXEC, else neither SX
        nor UX (:data:`FILL_ATTR_NO_EXEC`)."""
        mask = self.exec_mask(proc, ea)
        return None if mask == ~0 else FILL_ATTR & mask

    def fill(self, cpu, entry: tuple, attr=None) -> None:
        """finish_tlb_load: write ``entry`` at the guest's round-robin index, with
        the permissions ``attr`` (None: the vCPU's fill permissions)."""
        self.write_tlb_entry(cpu, self.gcpu.tlb_victim(), entry, attr)

    def write_tlb_entry(self, cpu, gi: int, entry: tuple, attr=None) -> None:
        """Write guest TLB entry ``gi``: XLAT, PAGEID, ATTRIB, each trapping (one
        batched trap with ``batch_tlbwe``)."""
        if self.batch_tlbwe:
            self.port.tlbwe(cpu, gi, None, entry, attr)
            return
        for word in FILL_WORDS:
            self.port.tlbwe(cpu, gi, word, entry, attr)

    @observed("timer_tick")
    def timer_tick(self, cpu, now: int) -> None:
        """The guest decrementer's interrupt, already delivered by KVM (inside the
        host's DEC exit, or at entry): the tick, maybe a preemption, the return.

        From user mode: traps44x E, 20 traps (+ 2 mtmsr and a switch when it
        preempts); from the kernel (idle, or a process blocked in it): 19, no
        return to user mode.
        """
        port, c = self.port, self.costs
        user = self.user
        self.user = False
        port.traps(cpu, T.TICK_ENTRY_FROM_USER if user else T.TICK_ENTRY_FROM_KERNEL)
        t = port.now(cpu)
        while self.next_timer <= t:
            self.next_timer += self.timer_period
        port.set_dec(cpu, self.next_timer - t)         # the second mtspr DEC
        self.kernel_work(cpu, c["guest_timer_handler"], self.fp.tick(self.gcpu.current))
        port.traps(cpu, self.c_tick + T.RET_DISABLE_EE)
        if not user:
            port.traps(cpu, T.RET_RESTORE + T.KERNEL_RFI)
            return
        nxt = self.gcpu.preempt(now, self.slice_start, self.timeslice)
        if nxt is not None:
            port.traps(cpu, T.RESCHED_ENTER)
            self.switch_process(cpu, nxt, now)
            port.traps(cpu, T.RESCHED_LEAVE)
        elif now - self.slice_start >= self.timeslice:
            self.slice_start = now                     # a new slice for the same process
        self.return_to_user(cpu, T.RET_RESTORE)

    def external_interrupt(self, cpu) -> None:
        """ExternalInput: a device's interrupt (an I/O completion), delivered by KVM
        at an entry -- from user mode (PR 1 -> 0) or in the kernel (the idle loop):
        the prolog, do_IRQ with the interrupt controller's register accesses
        (heavyweight exits to QEMU: the UIC's DCRs, the e500's MPIC),
        ret_from_except, and the rfi back to where it came from.  From user mode
        32 traps on the 440 (:data:`~emu.guest.traps44x.DO_IRQ`, the virtio ISR
        read among them), 23 on the e500; from the kernel one fewer.  A
        reschedule on the way out is left to the next scheduling point.
        """
        port = self.port
        user = self.user
        if user:
            port.deliver(cpu, "EXTINT")
        self.user = False
        port.traps(cpu, self.EXTINT_ENTRY[user])
        port.guest_work(cpu, self.costs["guest_irq_handler"])
        if user:
            self.return_to_user(cpu, T.RET_DISABLE_EE + T.RET_RESTORE)
        else:
            port.traps(cpu, T.RET_DISABLE_EE + T.RET_RESTORE + T.KERNEL_RFI)

    def enter_syscall(self, cpu, proc: GuestProcess) -> None:
        """sc is delivered; SystemCall's prolog and transfer; the service runs."""
        port = self.port
        port.deliver(cpu, "SYSCALL")
        self.user = False
        proc.syscalls += 1
        port.traps(cpu, T.SYSCALL_ENTRY)
        self.kernel_work(cpu, self.costs["guest_syscall"], self.fp.syscall(proc))
        port.traps(cpu, self.c_syscall)

    @observed("syscall")
    def syscall(self, cpu, proc: GuestProcess) -> None:
        """A system call: sc, the kernel, ret_from_syscall, rfi to user mode (traps44x D)."""
        self.enter_syscall(cpu, proc)
        self.return_to_user(cpu, T.SYSCALL_EXIT)

    def sleep(self, cpu, proc: GuestProcess, now: int) -> None:
        """``proc`` makes a blocking system call (an I/O wait of its stream's
        ``sleep_us``, at least a cycle); the guest stays in its kernel."""
        self.enter_syscall(cpu, proc)
        proc.sleep_until = max(now + self.us(proc.stream.sleep_us), now + 1)

    @observed("switch_process")
    def switch_process(self, cpu, proc: GuestProcess, now: int) -> None:
        """schedule() switches to ``proc``: the run-queue lock, switch_mm (a
        context another process used last flushes first, as a stolen one
        does; mtspr PID traps), _switch (traps44x F)."""
        self.context_switch(cpu, proc, now)

    def context_switch(self, cpu, proc: GuestProcess | None, now: int) -> None:
        """Switch to ``proc`` (None: the idle task, no switch_mm: lazy TLB).

        ``mtspr PID`` is written when ``proc``'s address space is not the one
        loaded: a switch back to the process that ran before the idle task
        keeps its context.
        """
        port, gcpu = self.port, self.gcpu
        prev = gcpu.current
        gcpu.switch_to(proc, now)
        port.traps(cpu, T.SWITCH_LOCK)
        self.kernel_work(cpu, self.costs["guest_context_switch"], self.fp.switch(prev, proc))
        if proc is not None:
            owner = gcpu.pid_owner.get(proc.pid)
            if owner is not None and owner != proc.index:
                self.flush_tlb_mm(cpu)
            if owner != proc.index or proc.pid != self.pid:
                gcpu.pid_owner[proc.pid] = proc.index
                port.mtspr_pid(cpu, proc.pid)
                self.pid = proc.pid
        port.traps(cpu, T.SWITCH_TAIL)
        self.slice_start = now

    def process_exit(self, cpu, proc: GuestProcess, now: int) -> None:
        """``proc`` has made its ``lifetime_accesses``: it exits and a fresh process
        takes its place, as a boot's short-lived programs do.

        ``exit_group`` (a system call): exit_mmap frees its pages and
        ``flush_tlb_mm``, which on 44x is ``_tlbia`` (include/asm-ppc/tlbflush.h
        of the 2.6.2x era: ``flush_tlb_mm(mm) { __tlbia(); }``, ``__tlbia`` =
        ``_tlbia`` for CONFIG_44x), invalidates the guest TLB; schedule()
        switches to the new process (its new PID); it returns to user mode and
        makes the two system calls that create it: fork, whose ``dup_mmap``
        ends with ``flush_tlb_mm(oldmm)`` (kernel/fork.c: the parent's PTEs
        were write-protected for copy-on-write), a second ``_tlbia``; and
        exec, with the ``guest_process_spawn`` work (copying, loading the
        program) and a third ``_tlbia`` (the old mm is dropped).  A
        simplification: the parent's fork is charged to the child, and the new
        process reuses the old one's slot (:meth:`emu.guest.os.GuestOS.replace`).
        """
        port = self.port
        self.enter_syscall(cpu, proc)                       # exit_group
        self.flush_tlb_mm(cpu)                              # exit_mmap
        self.os.replace(proc)
        self.context_switch(cpu, proc, port.now(cpu))
        self.return_to_user(cpu, T.RET_DISABLE_EE + T.RET_RESTORE)
        self.enter_syscall(cpu, proc)                       # fork
        self.flush_tlb_mm(cpu)                              # dup_mmap: oldmm's
        self.return_to_user(cpu, T.SYSCALL_EXIT)
        self.enter_syscall(cpu, proc)                       # exec
        port.guest_work(cpu, self.costs["guest_process_spawn"])
        self.flush_tlb_mm(cpu)                              # the old mm dropped at exec
        self.return_to_user(cpu, T.SYSCALL_EXIT)

    def flush_tlb_mm(self, cpu) -> None:
        """flush_tlb_mm, which on 44x is _tlbia (an exit, a fork, an exec, a
        stolen context): one trapping tlbwe (PAGEID, V clear) for every index
        0..GUEST_HWATER, valid or not."""
        port = self.port
        port.guest_work(cpu, self.costs["guest_tlb_flush"])
        for gi in range(GUEST_HWATER + 1):
            port.tlbwe(cpu, gi, PAGEID, None)

    @observed("halt")
    def halt(self, cpu, now: int):
        """Nothing runnable: the idle loop's wait (traps44x G), ``mtmsr`` with
        MSR[WE], until the guest decrementer or an I/O completion wakes the vCPU.

        Returns what the vCPU's run returns: (blocked, after).
        """
        self.port.traps(cpu, T.IDLE_ENTER)
        self.idle = True
        return self.port.wait(cpu, self.gcpu.next_wake())

    # -- what the vCPU's run asks of the guest ---------------------------------------------

    def schedule(self, cpu, now: int):
        """The guest is in its kernel with no process to return to: leave the idle
        loop if in it, pick the process with the least virtual runtime, switch to
        it and return to user mode; or switch to the idle task and wait.

        Returns None once a process runs in user mode, or halt's (blocked, after).
        """
        port = self.port
        if self.idle:
            port.traps(cpu, T.IDLE_LEAVE)
            self.idle = False
        now = port.now(cpu)
        nxt = self.gcpu.pick_next(now)
        if nxt is None:
            if self.gcpu.current is not None:
                self.context_switch(cpu, None, now)
            return self.halt(cpu, now)
        if nxt is not self.gcpu.current:
            self.switch_process(cpu, nxt, now)
        self.return_to_user(cpu, T.RET_DISABLE_EE + T.RET_RESTORE)
        return None

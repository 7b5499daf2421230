"""The guest kernel's handlers on one vCPU, trapping to the host through a port.

Linux 44x as KVM sees it: every privileged instruction the guest runs traps,
so each handler below is a sequence of guest work and traps.  The guest never
talks to KVM directly: the vCPU hands itself in as a :class:`TrapPort`, and
the handlers call it.  What the host does at each trap (exit accounting,
instruction emulation, shadow mappings) is the port's business.

The handlers (docs/kvm440.md §1.5–§1.6 for Linux, §2.7 for the traps):

* :meth:`GuestKernel.tlb_miss` — the guest's own TLB miss handler: read the
  faulting address (mfspr traps), walk the page table (a guest page fault
  takes a new frame), pick the round-robin victim, write XLAT, PAGEID and
  ATTRIB with three trapping ``tlbwe`` (one, batched, when the scenario
  enables ``kvm.batch_tlbwe``), rfi (traps);
* :meth:`GuestKernel.timer_tick` — the decrementer: the guest's tick, maybe a
  process switch when the slice is used up, rfi;
* :meth:`GuestKernel.syscall` — sc is delivered, the kernel runs (its data
  accesses in supervisor mode), rfi back to user mode;
* :meth:`GuestKernel.switch_process` — mtspr PID traps; when PIDs roll over,
  the guest first invalidates its whole TLB, one trapping ``tlbwe`` per valid
  entry (:meth:`GuestKernel.pid_rollover_flush`);
* :meth:`GuestKernel.halt` — nothing runnable: mtmsr WE traps and the vCPU
  blocks until the next timer event.

Every handler takes ``cpu``, the physical CPU the vCPU runs on, only to hand
it back to the port: the guest never looks inside it.  The handlers are
observable (:mod:`emu.observe`) through the port's observer.
"""

from __future__ import annotations

from typing import Any, Protocol

from emu.errors import EmuError
from emu.guest.os import GUEST_HWATER, KERNEL_BASE, GuestCPU, GuestOS, GuestProcess
from emu.hw.ppc440 import ATTRIB, PAGEID, XLAT
from emu.observe import observed

#: The order in which Linux's fill writes the three words (head_44x.S
#: finish_tlb_load; docs/kvm440.md §2.7).
FILL_WORDS = (XLAT, PAGEID, ATTRIB)


class TrapPort(Protocol):
    """The vCPU as the guest kernel sees it: what the guest does that the host sees.

    Every method is called inside the vCPU's run, with ``cpu`` the physical
    CPU running it; each charges its cycles to that CPU.
    """

    #: The observer of the guest's handlers (emu.observe), or None.
    observer: Any

    def guest_work(self, cpu, cycles: int) -> None:
        """The guest's own code runs for ``cycles``, without an exit."""

    def run_kernel(self, cpu, ea, kind) -> None:
        """The guest kernel makes the accesses ``ea``/``kind`` in its current mode."""

    def fault_address(self, cpu) -> int:
        """mfspr DEAR (or SRR0) traps; returns the address the last TLB miss was for."""

    def deliver_interrupt(self, cpu, category: str, supervisor: bool = False) -> None:
        """The host delivers interrupt ``category`` (an exit category: ``DEC``,
        ``SYSCALL``) and the guest's handler starts, in supervisor mode when
        ``supervisor``."""

    def rfi(self, cpu, user: bool | None = None) -> None:
        """rfi traps; with ``user`` set, the guest returns to user (True) or
        supervisor (False) mode."""

    def priv_switch(self, cpu, usermode: bool) -> None:
        """The guest's MSR[PR] becomes ``usermode`` inside the current trap: at
        every interrupt delivered from user mode and every rfi to user mode
        (KVM's kvmppc_mmu_priv_switch; nothing happens when PR stays)."""

    def tlbwe(self, cpu, index: int, word: int | None, entry: tuple | None) -> None:
        """tlbwe traps: the guest writes ``word`` (PAGEID, XLAT or ATTRIB; None
        for the whole entry in one batched trap) of guest TLB entry ``index``.

        ``entry`` is the entry the guest is writing, (ea, shift, tid, ts, gpa),
        or None for a PAGEID with V clear (an invalidation).
        """

    def tlb_valid(self, index: int) -> bool:
        """Whether guest TLB entry ``index`` is valid (read without a trap)."""

    def mtspr_pid(self, cpu, pid: int) -> None:
        """mtspr PID traps: the guest's current PID becomes ``pid``."""

    def wait(self, cpu, until: int):
        """mtmsr WE traps: the vCPU blocks until cycle ``until``.

        Returns what the vCPU's run returns to its CPU: (blocked, after).
        """


class GuestKernel:
    """The guest kernel as it runs on one vCPU: its handlers and its timer.

    ``os`` is the VM's :class:`GuestOS`, ``cpu_state`` the :class:`GuestCPU`
    of this vCPU, ``costs`` the cost table (its ``guest_*`` rows), ``us`` the
    conversion of microseconds to cycles, and ``batch_tlbwe`` whether a fill
    writes its three words in one trap.  :meth:`attach` takes the port.
    """

    def __init__(self, os: GuestOS, cpu_state: GuestCPU, costs, us, batch_tlbwe: bool = False):
        self.os, self.gcpu = os, cpu_state
        self.costs = costs
        self.us = us
        self.batch_tlbwe = batch_tlbwe
        self.port: TrapPort | None = None
        self.timer_period = us(costs["guest_timer_period_us"])
        self.timeslice = us(costs["guest_timeslice_us"])
        self.next_timer = self.timer_period        # when the decrementer fires next
        self.slice_start = 0                       # when the current process got the CPU

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

    # -- the handlers ---------------------------------------------------------------------

    @observed("guest_tlb_miss")
    def tlb_miss(self, cpu, proc: GuestProcess) -> None:
        """The guest's own TLB miss handler (Linux 44x, docs/kvm440.md §1.6)."""
        port, c = self.port, self.costs
        port.guest_work(cpu, c["guest_miss_handler"])
        ea = port.fault_address(cpu)
        if ea >= KERNEL_BASE:
            raise EmuError(f"internal: guest TLB miss on kernel address {ea:#x}")
        gfn, faulted = self.os.translate(proc, ea)
        if faulted:
            port.guest_work(cpu, c["guest_page_fault"])
        gi = self.gcpu.tlb_victim()
        self.write_tlb_entry(cpu, gi, (ea >> 12 << 12, 12, proc.pid, 0, gfn << 12))
        port.rfi(cpu)

    def write_tlb_entry(self, cpu, gi: int, entry: tuple) -> None:
        """Write guest TLB entry ``gi``: XLAT, PAGEID, ATTRIB, each trapping (one
        batched trap with ``batch_tlbwe``)."""
        if self.batch_tlbwe:
            self.port.tlbwe(cpu, gi, None, entry)
            return
        for word in FILL_WORDS:
            self.port.tlbwe(cpu, gi, word, entry)

    @observed("timer_tick")
    def timer_tick(self, cpu, now: int) -> None:
        """The decrementer fired at ``now``: the tick, maybe a process switch, rfi."""
        port = self.port
        port.deliver_interrupt(cpu, "DEC")
        port.guest_work(cpu, self.costs["guest_timer_handler"])
        while self.next_timer <= now:
            self.next_timer += self.timer_period
        cur = self.gcpu.current
        if cur is None or cur.sleep_until >= 0 or now - self.slice_start >= self.timeslice:
            nxt = self.gcpu.pick_next(now)
            if nxt is not None and nxt is not cur:
                self.switch_process(cpu, nxt, now)
            else:
                self.slice_start = now
        port.rfi(cpu)

    @observed("syscall")
    def syscall(self, cpu, proc: GuestProcess) -> None:
        """sc is delivered; the guest kernel runs in supervisor mode; rfi to user mode."""
        port = self.port
        port.deliver_interrupt(cpu, "SYSCALL", supervisor=True)
        port.guest_work(cpu, self.costs["guest_syscall"])
        ea, kind = self.gcpu.kernel_accesses()
        port.run_kernel(cpu, ea, kind)
        port.rfi(cpu, user=True)

    @observed("switch_process")
    def switch_process(self, cpu, proc: GuestProcess, now: int) -> None:
        """Switch to ``proc``: flush on a PID roll-over, then mtspr PID (traps)."""
        self.port.guest_work(cpu, self.costs["guest_context_switch"])
        owner = self.gcpu.pid_owner.get(proc.pid)
        if owner is not None and owner != proc.index:
            self.pid_rollover_flush(cpu)
        self.gcpu.pid_owner[proc.pid] = proc.index
        self.port.mtspr_pid(cpu, proc.pid)
        self.gcpu.current = proc
        self.slice_start = now

    def pid_rollover_flush(self, cpu) -> None:
        """PIDs rolled over: invalidate the whole guest TLB below the pinned entries.

        One trapping tlbwe (PAGEID, V clear) per valid entry; the model skips
        the entries already invalid, which Linux's _tlbia writes too.
        """
        port = self.port
        port.guest_work(cpu, self.costs["guest_tlb_flush"])
        for gi in range(GUEST_HWATER + 1):
            if port.tlb_valid(gi):
                port.tlbwe(cpu, gi, PAGEID, None)

    @observed("halt")
    def halt(self, cpu, now: int):
        """Nothing runnable: wait (mtmsr WE traps) until the next timer or wake-up.

        Returns what the vCPU's run returns: (blocked, after).
        """
        self.gcpu.current = None
        wake = self.next_timer
        w = self.gcpu.next_wake()
        if w >= 0:
            wake = min(wake, w)
        return self.port.wait(cpu, wake)

    # -- what the vCPU's run asks of the guest ---------------------------------------------

    def schedule(self, cpu, now: int):
        """The current process cannot run: switch to the next runnable one, or halt.

        Returns None after a switch, or halt's (blocked, after).
        """
        nxt = self.gcpu.pick_next(now)
        if nxt is None:
            return self.halt(cpu, now)
        self.switch_process(cpu, nxt, now)
        return None

    def sleep(self, proc: GuestProcess, now: int) -> None:
        """``proc`` sleeps from ``now`` for its stream's ``sleep_us`` (at least a cycle)."""
        proc.sleep_until = max(now + self.us(proc.stream.sleep_us), now + 1)

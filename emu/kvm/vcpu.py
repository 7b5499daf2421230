"""A vCPU thread: the guest running on a physical CPU, and KVM's exit handling.

``VcpuThread.run`` is called by the CPU's scheduler loop with a cycle budget.
It runs the guest's accesses in the fast path and handles, in Python, what
the fast path stops for: the deferred C path (``gfn_to_pfn``) and MMIO (the
vCPU blocks until QEMU answers) here; guest TLB misses, system calls, sleeps,
guest timer ticks and halt in the guest kernel (:mod:`emu.guest.kernel`),
whose privileged instructions trap back here: the vCPU is the guest's
:class:`~emu.guest.kernel.TrapPort` (instruction emulation, emulated
``tlbwe`` and ``mtspr PID``, interrupt delivery, rfi, the privilege switch,
wait).  An instruction fetch from a device page comes back as a machine
check (:meth:`VcpuThread.machine_check`).  Every cycle is
charged to a category of the CPU's breakdown, so the cycles a call used are
the growth of that breakdown.

The handlers an observer can watch (``VcpuThread.observer``) are marked
``@observed``; :mod:`emu.observe` lists the events and their arguments.
"""

from __future__ import annotations

from emu.codes import CAUSE, EXIT, STEP, STOP, TID_SCHEME
from emu.errors import EmuError
from emu.guest.os import PINNED_ENTRIES
from emu.host.sched import Thread
from emu.hw.ppc440 import XLAT, build_guest_utlb
from emu.kvm.shadow import release_guest_entry
from emu.observe import observed
from emu.stats.counters import ctx_arrays, zero_counters

S = STOP


class VcpuThread(Thread):
    """One vCPU: a host thread running the guest through KVM.

    ``kernel`` is the guest kernel's side of this vCPU
    (:class:`~emu.guest.kernel.GuestKernel`); the vCPU hands itself in to it
    as its trap port.
    """

    kind = "vcpu"
    #: Watches the handlers marked @observed (emu.observe); None: nobody watches.
    observer = None

    @property
    def thread(self):
        """The thread an observer is told about: this vCPU."""
        return self

    def __init__(self, machine, kvm, kernel, vm_index: int, index: int, tid: int,
                 cpu: int, ctx_id: int):
        super().__init__(f"vm{vm_index}.vcpu{index}", tid, cpu)
        self.machine, self.kvm, self.kernel = machine, kvm, kernel
        self.host = machine.host
        self.qemu = None                   # the VM's QEMU I/O thread (wired by the machine)
        self.guest, self.gcpu = kernel.os, kernel.gcpu
        self.vm_index, self.index = vm_index, index
        cfg = machine.scenario.kvm
        be = machine.backend
        self.strategy = machine.strategy
        self.costs = machine.costs
        self.gtlb = build_guest_utlb(be)
        self.shadow = self.strategy.new_shadow_array(be)
        arrays = ctx_arrays(machine.hw_entries, machine.scenario.sim.repopulation_window, kvm,
                            shadow_pos=self.strategy.shadow_pos)
        self.ctx = be.Ctx(ctx_id, arrays, self.gtlb, self.shadow, kvm.pfn.pcache,
                          self.strategy.code, 0 if cfg.handler == "asm" else 1,
                          1 if cfg.guest_tlb_walk == "hashed" else 0,
                          kvm.pfn.code, 0, 0)
        # how a fill tags its shadow, and how far the entry loop writes
        self.ctx.tid_scheme = TID_SCHEME[self.strategy.tid_scheme or "tid01"]
        if self.strategy.loop_len is not None:
            self.ctx.loop_len = self.strategy.loop_len
        costs = dict(self.costs.to_dict())
        costs["entry_base"] = self.strategy.entry_base()
        costs["entry_per_mod"] = self.strategy.entry_per_mod()
        self.ctx.set_costs(costs)
        self.asm = cfg.handler == "asm"
        # The guest kernel's pinned entries (docs/kvm440.md §2.2 and §1.5).
        for gi, ea, shift, gpa in PINNED_ENTRIES:
            self.gtlb.write(gi, ea, shift, 0, 0, gpa, 0, -1)
        self.ctx.guest_pr = 1
        if self.gcpu.current is not None:
            self.ctx.guest_pid = self.gcpu.current.pid
        self.resume_mmio = None
        self.resumes = 0
        self.machine_checks = 0            # machine checks KVM queued to the guest
        self.blocked_on = None
        kernel.attach(self)

    def restart_counters(self) -> None:
        """Zero what this vCPU counts (the end of a warm-up)."""
        zero_counters(self.ctx.arrays)
        self.resumes = 0
        self.machine_checks = 0

    # -- accounting helpers ----------------------------------------------------

    def profile(self, step: str, cycles: int) -> None:
        prof = self.ctx.arrays["profile"]
        prof[2 * STEP[step]] += 1
        prof[2 * STEP[step] + 1] += cycles

    def begin_exit(self, cpu) -> int:
        """Leave the guest: TIMEINGUEST closes, the micro-TLBs empty."""
        self.ctx.end_guest_run()
        cpu.virt.micro_flush()
        t0 = cpu.total()
        cpu.charge("exit_entry", self.costs["exit_light"])
        return t0

    def end_exit(self, cpu, category: str, t0: int) -> None:
        """Re-enter the guest (the strategy's entry work) and record the exit."""
        self.ctx.guest_entry(cpu.virt)
        self.ctx.record_exit(EXIT[category], cpu.total() - t0)

    def emulate(self, cpu, category: str) -> None:
        """A lightweight exit whose handler emulates one instruction."""
        t0 = self.begin_exit(cpu)
        cpu.charge("c_path", self.costs["emulate_instruction"])
        self.end_exit(cpu, category, t0)

    # -- host scheduler hooks ----------------------------------------------------

    @observed("vcpu_load")
    def vcpu_load(self, cpu) -> None:
        """Scheduled in: the strategy's load hook, then the first guest entry."""
        cpu.charge("host_switch", self.costs["vcpu_load"])
        cpu.charge("save_restore", self.strategy.vcpu_load(cpu, self))
        cpu.charge("save_restore", self.strategy.set_shadow_pids(cpu, self))
        self.ctx.guest_entry(cpu.virt)          # e.g. shadow: rewrite the whole array
        cpu.virt.micro_flush()
        self.ctx.since_load = 0
        self.resumes += 1

    def host_interrupt(self, cpu, category: str, handler_cycles: int) -> None:
        """A host interrupt while the guest runs (timer tick, wake-up IPI): an exit
        to the host's handler and back."""
        t0 = self.begin_exit(cpu)
        cpu.charge("host_switch", handler_cycles)
        self.end_exit(cpu, category, t0)

    @observed("vcpu_put")
    def vcpu_put(self, cpu) -> None:
        """Scheduled out: the strategy's put hook."""
        cpu.charge("host_switch", self.costs["vcpu_put"])
        cpu.charge("save_restore", self.strategy.vcpu_put(cpu, self))

    # -- the run loop ------------------------------------------------------------------

    def run(self, cpu, budget: int):
        """Run up to ``budget`` cycles; returns (blocked, after) for the CPU loop.

        ``after`` (or None) is called once the simulated clock has reached the
        end of what ran: it hands work to other processes at the right time.
        """
        start = cpu.total()
        now0 = self.host.env.now
        ctx, kernel = self.ctx, self.kernel
        if self.resume_mmio is not None:          # QEMU answered: finish the access
            proc = self.resume_mmio
            self.resume_mmio = None
            proc.pos += 1
            cpu.charge("exit_entry", self.costs["c_restore"])
            ctx.guest_entry(cpu.virt)
        while True:
            spent = cpu.total() - start
            if spent >= budget:
                return False, None
            now = now0 + spent
            if now >= kernel.next_timer:          # the decrementer fires
                kernel.timer_tick(cpu, now)
                continue
            proc = self.gcpu.current
            if proc is None or proc.sleep_until >= 0:
                blocked = kernel.schedule(cpu, now)
                if blocked is not None:
                    return blocked
                continue
            if proc.pos >= len(proc.ea):
                proc.refill()
            b = min(budget - spent, kernel.next_timer - now)
            stop, pos, _ = ctx.run_virt(cpu.virt, proc.ea, proc.kind, proc.pos, b)
            proc.pos = pos
            if stop == S["budget"] or stop == S["end"]:
                continue
            if stop == S["guest_miss"]:           # KVM delivered the miss to the guest
                kernel.tlb_miss(cpu, proc)
            elif stop == S["deferred"]:
                self.c_path(cpu)
            elif stop == S["mmio"]:
                return self.mmio_exit(cpu, proc)
            elif stop == S["syscall"]:
                proc.pos += 1
                kernel.syscall(cpu, proc)
            elif stop == S["sleep"]:
                proc.pos += 1
                kernel.sleep(proc, now0 + cpu.total() - start)
            elif stop == S["machine_check"]:
                self.machine_check(proc)

    # -- KVM's exits -----------------------------------------------------------------------

    @observed("c_path")
    def c_path(self, cpu) -> None:
        """gfn_to_pfn in C: from the asm handler (deferred) or inline in the C handler."""
        ctx = self.ctx
        t0 = cpu.total() - ctx.pending
        if self.asm:
            cpu.charge("c_path", self.costs["deferred_c_path"])
            self.profile("deferred_c_path", self.costs["deferred_c_path"])
        gi = int(ctx.stop_gi)
        pfn = self.kvm.pfn.lookup(cpu, self, int(ctx.stop_gpa) >> 12, gi)
        ctx.map_shadow(cpu.virt, int(ctx.stop_ea), gi, pfn)
        cpu.charge("c_path", self.costs["c_hw_write"])
        self.profile("hw_write", self.costs["c_hw_write"])
        cpu.charge("exit_entry", self.costs["c_restore"])
        self.profile("restore", self.costs["c_restore"])
        ctx.guest_entry(cpu.virt)
        ctx.record_exit(EXIT["ITLBVIRT" if ctx.stop_kind == 0 else "DTLBVIRT"],
                        cpu.total() - t0)

    def machine_check(self, proc) -> None:
        """An instruction fetch from a device page: the fast path counted the
        exit ITLBVIRT and KVM queued a machine check to the guest (booke.c
        @73e75b41).  Linux's machine_check_exception sends a user process
        SIGBUS; the model counts the machine check and skips the fetch."""
        self.machine_checks += 1
        proc.pos += 1

    @observed("mmio_exit")
    def mmio_exit(self, cpu, proc):
        """A heavyweight exit to QEMU; the vCPU blocks until the device answers."""
        ctx = self.ctx
        t0 = cpu.total() - ctx.pending
        cpu.charge("exit_entry", self.costs["exit_heavy_extra"])
        cpu.charge("c_path", self.costs["emulate_instruction"])
        ctx.record_exit(EXIT["MMIO"], cpu.total() - t0)
        gpa = int(ctx.stop_gpa)
        self.resume_mmio = proc
        self.blocked_on = "mmio"
        qemu = self.qemu
        return True, lambda: qemu.submit(self, gpa)

    # -- the trap port: what the guest kernel's privileged instructions do ------------------

    def guest_work(self, cpu, cycles: int) -> None:
        """Cycles the guest itself runs (in guest context)."""
        cpu.charge("guest", cycles)
        self.ctx.guest_run += cycles

    def run_kernel(self, cpu, ea, kind) -> None:
        """Guest kernel accesses (supervisor mode) until all are done."""
        pos = 0
        while pos < len(ea):
            stop, pos, _ = self.ctx.run_virt(cpu.virt, ea, kind, pos, 1 << 62)
            if stop == S["deferred"]:
                self.c_path(cpu)
            elif stop != S["end"]:
                raise EmuError(f"internal: guest kernel access stopped with {stop}")

    def fault_address(self, cpu) -> int:
        """mfspr DEAR/SRR0 traps and is emulated; the EA of the miss just delivered."""
        self.emulate(cpu, "EMUL_MFSPR")
        return int(self.ctx.stop_ea)

    def deliver_interrupt(self, cpu, category: str, supervisor: bool = False) -> None:
        """An exit in which KVM delivers interrupt ``category`` to the guest
        (``supervisor``: the guest's MSR[PR] goes to 0, a privilege switch)."""
        t0 = self.begin_exit(cpu)
        cpu.charge("exit_entry", self.costs["deliver_interrupt"])
        if supervisor:
            self.priv_switch(cpu, usermode=False)
        self.end_exit(cpu, category, t0)

    def rfi(self, cpu, user: bool | None = None) -> None:
        """The guest's rfi traps and is emulated (MSR[PR] from SRR1 when ``user`` is set)."""
        t0 = self.begin_exit(cpu)
        cpu.charge("c_path", self.costs["emulate_instruction"])
        if user is not None:
            self.priv_switch(cpu, user)
        self.end_exit(cpu, "EMUL_RFI", t0)

    def priv_switch(self, cpu, usermode: bool) -> None:
        """The guest's MSR[PR] becomes ``usermode`` (kvmppc_set_msr): called inside
        the exit that changes it -- an interrupt delivered from user mode, an
        rfi back to user mode.  When PR changes, the strategy's
        kvmppc_mmu_priv_switch runs (in the guest-tid era it releases every
        shadow slot) and loads the shadow PID(s); nothing happens otherwise."""
        if (1 if usermode else 0) != self.ctx.guest_pr:
            cpu.charge("save_restore", self.strategy.priv_switch(cpu, self, usermode))

    def tlbwe(self, cpu, gi: int, word, entry) -> None:
        """The guest's tlbwe of ``word`` of entry ``gi`` traps to KVM.

        kvmppc_44x_emul_tlbwe (docs/kvm440.md §2.7): release the shadows of
        the old entry, store the word, and map the entry eagerly when it is
        host-safe.  The model keeps guest entries decoded: XLAT gives the old
        entry the new real address (an invalid entry stays invalid), PAGEID and
        ATTRIB give the guest's whole ``entry`` (its XLAT came first), and
        ``word`` None (batched) writes the whole entry in one exit.  A PAGEID
        with V clear (``entry`` None) is an invalidation: the released shadows
        count as flushed.
        """
        gtlb = self.gtlb
        if word == XLAT and entry is not None:
            old = gtlb.read(gi)
            entry = (old[1], old[2], old[3], old[4], entry[4]) if old[0] else None
            cause = CAUSE["self-eviction"]
        else:
            cause = CAUSE["self-eviction" if entry is not None else "flush"]
        t0 = self.begin_exit(cpu)
        cpu.charge("c_path", self.costs["emul_tlbwe"])
        if gtlb.valid_arr[gi]:
            release_guest_entry(cpu, self, gi, cause)
        if entry is None:
            gtlb.invalidate(gi)
        else:
            ea, shift, tid, ts, gpa = entry
            gtlb.write(gi, ea, shift, tid, ts, gpa, 0, -1)
            gfn = gpa >> 12
            if ts == self.ctx.guest_as and self.kvm.is_visible(gfn):
                pfn = self.kvm.pfn.lookup(cpu, self, gfn, gi)
                self.ctx.map_shadow(cpu.virt, ea, gi, pfn)
                cpu.charge("c_path", self.costs["c_hw_write"])
        self.end_exit(cpu, "EMUL_TLBWE", t0)

    def tlb_valid(self, gi: int) -> bool:
        """Whether guest TLB entry ``gi`` is valid."""
        return bool(self.gtlb.valid_arr[gi])

    def mtspr_pid(self, cpu, pid: int) -> None:
        """The guest's mtspr PID traps: kvmppc_set_pid, as the TID era does it."""
        t0 = self.begin_exit(cpu)
        cpu.charge("c_path", self.costs["emulate_instruction"])
        cpu.charge("save_restore", self.strategy.set_pid(cpu, self, pid))
        self.end_exit(cpu, "EMUL_MTSPR", t0)

    def wait(self, cpu, until: int):
        """The guest's wait (mtmsr WE) traps: the vCPU blocks until cycle ``until``."""
        self.emulate(cpu, "HALT")
        self.blocked_on = "halt"
        host = self.host
        return True, lambda: host.wake_at(self, until)

"""A vCPU thread: the guest running on a physical CPU, and KVM's exit handling.

``VcpuThread.run`` is called by the CPU's scheduler loop with a cycle budget.
It runs the guest's accesses in the fast path and handles, in Python, what
the fast path stops for: the deferred C path (``gfn_to_pfn``) and MMIO (the
vCPU blocks until QEMU answers) here; guest TLB misses, system calls, sleeps,
guest timer ticks and idle in the guest kernel (:mod:`emu.guest.kernel`),
whose privileged instructions trap back here: the vCPU is the guest's
:class:`~emu.guest.kernel.TrapPort` (instruction emulation, emulated
``tlbwe`` and ``mtspr PID``, interrupt delivery and the privilege switch,
rfi, the guest decrementer, wait).  An instruction fetch from a device page
comes back as a machine check (:meth:`VcpuThread.machine_check`).  Every
cycle is charged to a category of the CPU's breakdown, so the cycles a call
used are the growth of that breakdown.

The guest decrementer is a host timer (``kvmppc_emulate_dec``: ``mod_timer``
at jiffy granularity; docs/kvm440.md §2.10): it fires at a host tick,
and the guest's tick is delivered inside the host's DEC exit when the vCPU
is running then, at its next entry otherwise; a vCPU waiting in the guest's
idle loop is woken for it.  A guest tick makes no exit of its own.

The handlers an observer can watch (``VcpuThread.observer``) are marked
``@observed``; :mod:`emu.observe` lists the events and their arguments.
"""

from __future__ import annotations

from emu.codes import CAUSE, EXIT, STEP, STOP, TID_SCHEME, TLB
from emu.errors import EmuError
from emu.guest.kernel import FILL_ATTR
from emu.guest.os import PINNED_ENTRIES
from emu.guest.traps44x import TrapSeq, category
from emu.host.sched import Thread
from emu.hw.ppc440 import SR, SW, SX, XLAT, build_guest_utlb
from emu.kvm.shadow import drop_guest_ref
from emu.observe import observed
from emu.stats.counters import ctx_arrays, zero_counters

S = STOP
MISSES = TLB["misses"]
#: A decrementer that is not armed.
NEVER = 1 << 62


class VcpuThread(Thread):
    """One vCPU: a host thread running the guest through KVM.

    ``kernel`` is the guest kernel's side of this vCPU
    (:class:`~emu.guest.kernel.GuestKernel`); the vCPU hands itself in to it
    as its trap port.
    """

    kind = "vcpu"
    #: The guest kernel's pinned TLB entries: (index, EA, page shift, GPA).
    pinned_entries = PINNED_ENTRIES
    #: Their permissions: the kernel's (supervisor read, write, execute).
    KERNEL_ATTR = SR | SW | SX
    #: The permissions a guest fill writes for a user page: Linux 44x's
    #: finish_tlb_load (head_44x.S @026477c1) never writes UW.
    GUEST_FILL_ATTR = FILL_ATTR
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
        self.gtlb = self.build_guest_tlb(be)
        self.shadow = self.strategy.new_shadow_array(be)
        arrays = ctx_arrays(machine.hw_entries, machine.scenario.sim.repopulation_window, kvm,
                            shadow_pos=self.strategy.shadow_pos, guest_entries=self.gtlb.entries)
        #: the guest TLB is searched through a hash (hypothetical), by the miss
        #: handler's walk and by the emulated tlbsx alike
        self.hashed_walk = cfg.guest_tlb_walk == "hashed"
        self.ctx = be.Ctx(ctx_id, arrays, self.gtlb, self.shadow, kvm.pfn.pcache,
                          self.strategy.code, 0 if cfg.handler == "asm" else 1,
                          1 if self.hashed_walk else 0, kvm.pfn.code, 0, 0)
        # how a fill tags its shadow, and how far the entry loop writes
        self.ctx.tid_scheme = TID_SCHEME[self.strategy.tid_scheme or "tid01"]
        if self.strategy.loop_len is not None:
            self.ctx.loop_len = self.strategy.loop_len
        costs = dict(self.costs.to_dict())
        costs["entry_base"] = self.strategy.entry_base()
        costs["entry_per_mod"] = self.strategy.entry_per_mod()
        self.ctx.set_costs(costs)
        self.asm = cfg.handler == "asm"
        if machine.miss_log is not None:
            machine.miss_log.attach(self.ctx)
        # The guest kernel's pinned entries (docs/kvm440.md §2.2 and §1.5).
        for gi, ea, shift, gpa in self.pinned_entries:
            self.gtlb.write(gi, ea, shift, 0, 0, gpa, self.KERNEL_ATTR, -1)
        # a user store through an entry without UW takes a Data Storage
        # interrupt (the 440 guest's fills never write UW, the e500 guest's
        # only once the page's PTE has HWWRITE), and a user fetch through one
        # without UX an Instruction Storage interrupt (either core's fill writes
        # UX once the exec fault has set the PTE's HWEXEC)
        self.ctx.check_uw = True
        self.ctx.check_ux = True
        self.ctx.guest_pr = 1
        if self.gcpu.current is not None:
            self.ctx.guest_pid = self.gcpu.current.pid
        self.resume_mmio = None
        self.resumes = 0
        self.machine_checks = 0            # machine checks KVM queued to the guest
        self.blocked_on = None
        self.work = machine.work                 # sim.guest_accesses, or None
        self.tick = machine.host.tick
        # the guest decrementer, armed at boot for the guest's first tick
        self.dec_expiry = self.dec_fire_time(0, kernel.timer_period)
        self.dec_delivered = False               # delivered inside a DEC exit, not yet handled
        # An exit whose entry has not come yet: (category, when it began, counted?).
        # It ends at the vCPU's next entry, however long the vCPU is away.
        self.open_exit = None
        self.reloaded = False                    # vcpu_load made an entry since the exit opened
        self.io_wake = -1                        # the I/O completion that ends the wait
        self.extint_pending = False              # an external interrupt KVM will deliver
        kernel.attach(self)

    def build_guest_tlb(self, backend):
        """The guest TLB KVM emulates: the 440's 64-entry UTLB."""
        return build_guest_utlb(backend)

    def restart_counters(self) -> None:
        """Zero what this vCPU counts (the end of a warm-up), its processes' figures too."""
        zero_counters(self.ctx.arrays)
        if self.machine.miss_log is not None:
            self.machine.miss_log.restart(self.ctx)
        self.resumes = 0
        self.machine_checks = 0
        for proc in self.gcpu.processes:
            proc.restart()
        if self.open_exit is not None:
            # a reset skips the exit it cuts, as kvmppc_init_timing_stats does
            # (last_exit_type = 0xDEAD): its TIMEINGUEST sample is gone too
            self.open_exit = self.open_exit[:2] + (False,)

    # -- accounting helpers ----------------------------------------------------

    def profile(self, step: str, cycles: int) -> None:
        """A step of the miss handler run here, in the profile (the caller charges it)."""
        self.ctx.count_step(STEP[step], cycles)

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

    def leave_open(self, cpu, category: str, t0: int) -> None:
        """The exit begun at ``t0`` ends at the vCPU's next entry, whenever that
        comes (:meth:`finish_open_exit`): the vCPU may be scheduled out in it
        (cond_resched in the exit), wait (EMUL_WAIT) or wait for QEMU (MMIO).
        timing.c charges an exit from its timebase read to the next entry's
        (docs/kvm440.md §2.10)."""
        self.open_exit = (category, t0, True)
        self.reloaded = False

    def finish_open_exit(self, cpu) -> bool:
        """The entry that ends the open exit: vcpu_load made it if the vCPU was
        scheduled out (``self.reloaded``), else its entry work runs here.  An MMIO
        access QEMU answered is finished first.  Returns whether the access
        finished the work (sim.guest_accesses)."""
        category, t0, counted = self.open_exit
        self.open_exit = None
        ctx, done = self.ctx, False
        if category == "EMUL_WAIT":
            if 0 <= self.io_wake <= self.host.env.now:   # woken by the I/O completion's interrupt
                self.extint_pending = True
            self.io_wake = -1
        proc = self.resume_mmio
        if proc is not None:                      # QEMU answered: finish the access
            self.resume_mmio = None
            done = proc.advance(proc.pos + 1)
            cpu.charge("exit_entry", self.costs["c_restore"])
        if not self.reloaded:
            ctx.guest_entry(cpu.virt)
        if counted:
            ctx.record_exit(EXIT[category], cpu.total() - t0)
        return bool(done) and self.work is not None and self.work.retire(done, cpu.total())

    def dec_fire_time(self, now: int, dec: int) -> int:
        """The host tick at which a guest decrementer of ``dec`` cycles, set at
        ``now``, fires: ``mod_timer(jiffies + dec / tb_ticks_per_jiffy)`` runs at
        the first tick with jiffies >= that, and never at the current one."""
        jiffy = now // self.tick
        return max(jiffy + 1, jiffy + dec // self.tick) * self.tick

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
        self.reloaded = True

    def host_interrupt(self, cpu, category: str, handler_cycles: int) -> None:
        """A host interrupt while the guest runs (timer tick, wake-up IPI): an exit
        to the host's handler, left open until the next entry, as the host may
        schedule the vCPU out inside it (``cond_resched`` in the exit, booke.c
        @73e75b41).  At a host tick (``DEC``) the guest decrementer's timer may
        run: its interrupt is delivered to the guest before the entry
        (kvmppc_core_deliver_interrupts), inside this exit."""
        t0 = self.begin_exit(cpu)
        cpu.charge("host_switch", handler_cycles)
        if category == "DEC" and cpu.total() >= self.dec_expiry and not self.extint_pending:
            # one interrupt per entry, EXTERNAL's priority first (BOOKE_IRQPRIO
            # order): with one pending the decrementer waits for MSR[EE]
            self.dec_expiry = NEVER
            self.dec_delivered = True
            if self.ctx.guest_pr:
                self.priv_switch(cpu, False)
        self.leave_open(cpu, category, t0)

    def external_interrupt(self) -> None:
        """QEMU raises a device's interrupt line (kvm_vcpu_ioctl_interrupt): KVM
        queues an external interrupt, delivered to the guest at its next entry."""
        self.extint_pending = True

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
        With ``sim.guest_accesses`` set, no call runs past the last guest
        access of the work: the run returns when it is done.
        """
        start = cpu.total()
        now0 = self.host.env.now
        ctx, kernel, work = self.ctx, self.kernel, self.work
        ctx.log_clock = now0 - start               # a logged miss's time: this + cpu.total()
        tlb = ctx.arrays["tlb"]
        if self.open_exit is not None and self.finish_open_exit(cpu):
            return False, None
        while True:
            spent = cpu.total() - start
            if spent >= budget or (work is not None and work.left == 0):
                return False, None
            now = now0 + spent
            if self.dec_delivered:                # delivered in a DEC exit: its handler runs
                self.take_dec(cpu)
                kernel.timer_tick(cpu, now)
                continue
            if self.extint_pending:               # BOOKE_IRQPRIO_EXTERNAL, before the DEC
                self.extint_pending = False
                kernel.external_interrupt(cpu)
                continue
            if now >= self.dec_expiry:
                self.take_dec(cpu)
                kernel.timer_tick(cpu, now)
                continue
            proc = kernel.user_process()
            if proc is None or proc.sleep_until >= 0:
                blocked = kernel.schedule(cpu, now)
                if blocked is not None:
                    return blocked
                continue
            if proc.pos >= len(proc.ea):
                proc.refill()
            ea, kind = proc.ea, proc.kind
            if work is not None or proc.lifetime:
                lim = proc.limit(work.left if work is not None else len(kind))
                if lim < len(kind):
                    ea, kind = ea[:lim], kind[:lim]
            misses = tlb[MISSES]
            stop, pos, _ = ctx.run_virt(cpu.virt, ea, kind, proc.pos, budget - spent)
            proc.tlb_misses += int(tlb[MISSES] - misses)
            done = proc.advance(pos)
            finished = work is not None and work.retire(done, cpu.total())
            if stop == S["guest_miss"] and (finished or proc.exiting):
                # the miss's exit ends, but the guest will not take it
                self.end_delivery(cpu, "ITLBREAL" if ctx.stop_kind == 0 else "DTLBREAL",
                                  switch=False)
            if finished:
                return False, None
            if proc.exiting:                       # its lifetime is over: exit, replaced
                kernel.process_exit(cpu, proc, now)
                continue
            if stop == S["budget"] or stop == S["end"]:
                continue
            if stop == S["guest_miss"]:           # KVM delivered the miss to the guest
                kernel.tlb_miss(cpu, proc)
            elif stop == S["dsi"]:                # a user store without UW
                kernel.data_storage(cpu, proc)
            elif stop == S["isi"]:                # a user fetch without UX
                kernel.inst_storage(cpu, proc)
            elif stop == S["deferred"]:
                self.c_path(cpu)
            elif stop == S["mmio"]:
                return self.mmio_exit(cpu, proc)
            elif stop == S["syscall"]:
                proc.skip_marker()
                kernel.syscall(cpu, proc)
            elif stop == S["sleep"]:
                proc.skip_marker()
                kernel.sleep(cpu, proc, cpu.total())
            elif stop == S["machine_check"]:
                self.machine_check(proc)

    def take_dec(self, cpu) -> None:
        """The guest decrementer's interrupt is taken: delivered at this entry
        (MSR[PR] 1 -> 0 from user mode) unless a DEC exit already delivered it."""
        if not self.dec_delivered and self.ctx.guest_pr:
            self.priv_switch(cpu, False)
        self.dec_delivered = False
        self.dec_expiry = NEVER

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
        ctx.close_miss()

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
        self.leave_open(cpu, "MMIO", t0)
        ctx.close_miss()
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
        """Guest kernel accesses until all are done; the guest is in supervisor mode."""
        if self.ctx.guest_pr:
            raise EmuError("internal: guest kernel accesses with the guest in user mode")
        pos = 0
        while pos < len(ea):
            stop, pos, _ = self.ctx.run_virt(cpu.virt, ea, kind, pos, 1 << 62)
            if stop == S["deferred"]:
                self.c_path(cpu)
            elif stop != S["end"]:
                raise EmuError(f"internal: guest kernel access stopped with {stop}")

    def now(self, cpu) -> int:
        """The current time in cycles (the CPU's clock)."""
        return cpu.total()

    def fault(self) -> tuple[int, bool]:
        """(EA, instruction fetch?) of the miss the fast path just delivered."""
        return int(self.ctx.stop_ea), self.ctx.stop_kind == 0

    def deliver(self, cpu, category: str) -> None:
        """KVM delivers an interrupt (kvmppc_booke_irqprio_deliver): MSR[PR] 1 -> 0.

        ``SYSCALL``, ``DSI``, ``ISI``: the sc exit, or the Data or Instruction
        Storage interrupt's (kvmppc_handle_exit queues it to the guest: a
        lightweight exit), whose delivery switches the privilege before the entry.
        ``DTLBREAL``/``ITLBREAL``: the fast path stopped after delivering the
        miss; its exit ends here (:meth:`end_delivery`).
        """
        if category in ("ITLBREAL", "DTLBREAL"):
            self.end_delivery(cpu, category)
            return
        if category not in ("SYSCALL", "DSI", "ISI"):
            self.priv_switch(cpu, False)
            return
        t0 = self.begin_exit(cpu)
        cpu.charge("exit_entry", self.costs["deliver_interrupt"])
        self.priv_switch(cpu, False)
        self.end_exit(cpu, category, t0)

    def end_delivery(self, cpu, category: str, switch: bool = True) -> None:
        """The exit of a miss the fast path delivered to the guest ends: the
        delivery's MSR change (the strategy's priv switch, unless ``switch`` is
        false: the guest will not take it), then the handler's way back to the
        guest, its entry work included, and the exit is recorded
        (kvmppc_core_deliver_interrupts runs before the entry)."""
        ctx = self.ctx
        t0 = cpu.total() - ctx.pending
        if switch:
            self.priv_switch(cpu, False)
        ctx.leave_handler(cpu.virt)
        ctx.record_exit(EXIT[category], cpu.total() - t0)
        ctx.close_miss()

    def traps(self, cpu, seq) -> None:
        """The guest executes the trapping instructions of ``seq``: one lightweight
        exit each (exit, emulation, the strategy's entry work), recorded in its
        category -- an access to a device register is a heavyweight one
        (:meth:`device_exit`).  Nothing runs in the guest between them: each
        trap after the first adds a TIMEINGUEST run of no time (docs/kvm440.md
        §2.10)."""
        if seq.counts["DCR"] or seq.counts["MMIO"]:
            for row in seq.rows:
                cat = category(row[0])
                if cat in ("DCR", "MMIO"):
                    self.device_exit(cpu, cat)
                else:
                    self.traps(cpu, TrapSeq(seq.name, [row]))
            return
        n = len(seq)
        if not n:
            return
        ctx, virt = self.ctx, cpu.virt
        ctx.end_guest_run(n)
        virt.micro_flush()
        light, emulate = self.costs["exit_light"], self.costs["emulate_instruction"]
        cpu.charge("exit_entry", n * light)
        cpu.charge("c_path", n * emulate)
        # NOTE: two calls into the fast path per trap (the entry work, which may
        # differ from one entry to the next, and the record); a run is at most
        # ~20 traps and comes once per event, which keeps tools/bench.py's
        # system section above 3x pycachesim.  A C loop over the run would take
        # its place if that stopped holding.
        for cat in seq.cats:
            ctx.record_exit(cat, light + emulate + ctx.guest_entry(virt))

    def device_exit(self, cpu, category: str) -> None:
        """The guest kernel's access to a register of the interrupt path, which
        KVM does not emulate: an mfdcr/mtdcr of the 440's UIC (EMULATE_DO_DCR,
        KVM_EXIT_DCR; booke.c @73e75b41), or a load or store of the e500's MPIC
        or of a virtio device's ISR, which QEMU emulates (KVM_EXIT_MMIO).
        KVM_RUN returns to QEMU (vcpu_put), QEMU's device model answers in the
        vCPU's own thread, and the next KVM_RUN loads the vCPU again;
        ``category`` is DCR or MMIO (docs/kvm440.md §2.10)."""
        t0 = self.begin_exit(cpu)
        cpu.charge("exit_entry", self.costs["exit_heavy_extra"])
        cpu.charge("c_path", self.costs["emulate_instruction"])
        self.vcpu_put(cpu)
        cpu.charge("qemu", self.costs["qemu_dcr"])
        self.vcpu_load(cpu)
        self.ctx.record_exit(EXIT[category], cpu.total() - t0)

    def rfi(self, cpu, usermode: bool) -> None:
        """The guest's final rfi traps and is emulated; MSR[PR] comes from SRR1."""
        t0 = self.begin_exit(cpu)
        cpu.charge("c_path", self.costs["emulate_instruction"])
        self.priv_switch(cpu, usermode)
        self.end_exit(cpu, "EMUL_RFI", t0)

    def priv_switch(self, cpu, usermode: bool) -> None:
        """The guest's MSR[PR] becomes ``usermode`` (kvmppc_set_msr): called inside
        the exit that changes it -- an interrupt delivered from user mode, an
        rfi back to user mode.  When PR changes, the strategy's
        kvmppc_mmu_priv_switch runs (in the guest-tid era it releases every
        shadow slot) and loads the shadow PID(s); nothing happens otherwise."""
        if (1 if usermode else 0) != self.ctx.guest_pr:
            cpu.charge("save_restore", self.strategy.priv_switch(cpu, self, usermode))

    def tlbsx(self, cpu, ea: int) -> int:
        """The guest's tlbsx traps: kvmppc_44x_emul_tlbsx searches the guest TLB
        (kvmppc_44x_tlb_index, entry by entry) for ``ea`` in the guest's PID and
        AS and returns the index (-1: none), as RT gets it; KVM e500's
        (kvmppc_e500_emul_tlbsx) reads TLB0 then TLB1, or from 0164c0f0 the set's
        ways then TLB1: the entries the miss handler's walk reads too
        (``ctx.searched_entries``).  With a hashed guest TLB
        (``kvm.guest_tlb_walk = "hashed"``, hypothetical) the search is the C
        handler's hashed lookup, as the miss handler's walk is."""
        ctx = self.ctx
        gi = int(self.gtlb.find(ea, ctx.guest_pid, ctx.guest_as))
        t0 = self.begin_exit(cpu)
        c = self.costs
        if self.hashed_walk:
            search = c["c_walk_hashed"]
        else:
            search = ctx.searched_entries(gi) * c["c_walk_per_entry"]
        cpu.charge("c_path", c["emulate_instruction"] + c["emul_tlbsx"] + search)
        self.end_exit(cpu, "EMUL_TLBSX", t0)
        return gi

    def tlb_entry(self, gi: int) -> tuple:
        """Guest TLB entry ``gi`` as the guest wrote it: (ea, shift, tid, ts, gpa)."""
        _valid, ea, shift, tid, ts, gpa, _attr, _owner = self.gtlb.read(gi)
        return ea, shift, tid, ts, gpa

    def tlbwe(self, cpu, gi: int, word, entry, attr=None) -> None:
        """The guest's tlbwe of ``word`` of entry ``gi`` traps to KVM.

        kvmppc_44x_emul_tlbwe (docs/kvm440.md §2.7): release the shadows of
        the old entry as the design does (by guest index; by address range
        and TID in the shadow designs and for e500-flush-on-put's TLB1; by a
        hardware search under each of the entry's shadow IDs in
        e500-shadow-ids), store the word, and map the entry eagerly when it is
        host-safe.  The model keeps guest entries decoded: XLAT gives the old
        entry the new real address (an invalid entry stays invalid), PAGEID and
        ATTRIB give the guest's whole ``entry`` (its XLAT came first), and
        ``word`` None (batched) writes the whole entry in one exit.  A PAGEID
        with V clear (``entry`` None) is an invalidation: the released shadows
        count as flushed.
        """
        gtlb = self.gtlb
        if attr is None:
            attr = self.GUEST_FILL_ATTR
        if word == XLAT and entry is not None:
            old = gtlb.read(gi)
            entry = (old[1], old[2], old[3], old[4], entry[4]) if old[0] else None
            attr = old[6]
            cause = CAUSE["self-eviction"]
        else:
            cause = CAUSE["self-eviction" if entry is not None else "flush"]
        t0 = self.begin_exit(cpu)
        cpu.charge("c_path", self.costs["emul_tlbwe"])
        if gtlb.valid_arr[gi]:
            self.strategy.release_guest_entry(cpu, self, gi, cause)
            cpu.charge("save_restore", self.strategy.guest_entry_replaced(cpu, self, gi))
        if entry is None:
            gtlb.invalidate(gi)
        else:
            ea, shift, tid, ts, gpa = entry
            gtlb.write(gi, ea, shift, tid, ts, gpa, attr, -1)
            gfn = gpa >> 12
            if ts == self.ctx.guest_as and self.kvm.is_visible(gfn):
                # a page the entry still holds from before (KVM e500 keeps it past
                # a tlbwe with V clear, and e500-shadow-ids past the guest's flash
                # invalidate) is dropped as the new one is taken
                # (kvmppc_e500_shadow_map @46f43c6e and @0164c0f0)
                drop_guest_ref(cpu, self, gi)
                pfn = self.kvm.pfn.lookup(cpu, self, gfn, gi, profile=False)
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

    def set_dec(self, cpu, cycles: int) -> None:
        """The guest's mtspr DEC (kvmppc_emulate_dec): its host timer fires at the
        host tick ``cycles`` from now rounds down to, and at the next one at the
        earliest."""
        self.dec_expiry = self.dec_fire_time(cpu.total(), cycles)

    def wait(self, cpu, until: int):
        """The guest's ``mtmsr`` with MSR[WE] traps (kvm_vcpu_block): the vCPU blocks
        until its decrementer fires or, with ``until`` >= 0, until cycle ``until``
        (an I/O completion).  The EMUL_WAIT exit lasts until the vCPU is entered
        again, and is recorded then."""
        self.leave_open(cpu, "EMUL_WAIT", self.begin_exit(cpu))
        cpu.charge("c_path", self.costs["emulate_instruction"])
        self.blocked_on = "wait"
        self.io_wake = until if 0 <= until < self.dec_expiry else -1
        wake = self.dec_expiry if until < 0 else min(until, self.dec_expiry)
        host = self.host
        return True, lambda: host.wake_at(self, wake)

"""The whole machine as SimPy processes over integer cycles (DESIGN.md §2, §3).

A :class:`Machine` is built from a resolved :class:`~emu.config.Scenario`:
physical CPUs (each with its hardware TLB and a CFS-like run queue), one
vCPU thread per guest vCPU, one QEMU I/O thread per VM, and the host tasks.
Each CPU is a SimPy process that picks a thread, charges the context switch
and KVM's vcpu_load/vcpu_put, and lets the thread run for a quantum.  A
thread's run is synchronous Python over the fast path; the CPU's cycle
breakdown grows by exactly the cycles it ran, and the CPU's clock advances by
that much.  So every CPU's breakdown adds up to the simulated time.
"""

from __future__ import annotations

import heapq

import numpy as np
import simpy

from emu import engine
from emu.costs import CostTable
from emu.errors import ConfigError, EmuError
from emu.guest.kernel import GuestKernel
from emu.guest.os import BLOCK_GPA, GuestOS, GuestProcess
from emu.host.sched import RunQueue, SchedParams
from emu.host.threads import HostTask, QemuThread
from emu.hw.cpu import PhysicalCPU
from emu.kvm.strategies import make_strategy
from emu.kvm.vcpu import VcpuThread
from emu.kvm.vm import KvmVM
from emu.workload.streams import AccessStream

FIRST_HOST_PFN = 0x1_0000          # host frames below 256 MB hold the host kernel
QUANTUM_US = 100                   # longest run between two scheduler checks


class PCPU(PhysicalCPU):
    """One physical CPU as the host kernel runs it: the core, its run queue and
    the scheduling state of the CPU loop."""

    def __init__(self, index: int, virt, cycles: np.ndarray, rq: RunQueue):
        super().__init__(index, virt, cycles)
        self.rq = rq
        self.idle_event = None
        self.preempt = False
        self.loaded = None             # the vCPU loaded on this CPU (vcpu_load done)
        self.last = None               # the thread that ran last
        self.finished_at = 0
        self.wakes: list[int] = []     # times at which a thread of this CPU is due to wake
        self.next_tick = 0             # the host's next timer tick on this CPU
        # the warm-up (Sim.warmup_ms): when this CPU restarted its counters, and
        # its cycle breakdown then (the summary reports cycles - base)
        self.measured_from = 0
        self.base: np.ndarray | None = None

    def next_wake(self, now: int) -> int:
        """The next known wake-up time after ``now`` on this CPU (or -1)."""
        while self.wakes and self.wakes[0] <= now:
            heapq.heappop(self.wakes)
        return self.wakes[0] if self.wakes else -1


class Machine:
    """Build and run one scenario."""

    def __init__(self, scenario, progress=None):
        self.scenario = scenario
        self.progress = progress
        m, k = scenario.machine, scenario.kvm
        self.costs = CostTable(dict(scenario.costs, clock_mhz=m.clock_mhz))
        self.backend = engine.get(scenario.sim.backend)
        self.clock_mhz = m.clock_mhz
        self.hwater = m.hwater if m.core == "440" else 0
        self.strategy = make_strategy(k.strategy, m.core, self.costs, self.hwater)
        self.env = simpy.Environment()
        self.end = self.us(scenario.duration_ms * 1000)
        self.warmup = self.us(scenario.sim.warmup_ms * 1000)
        self.next_pfn = FIRST_HOST_PFN
        self.native_costs = dict(self.costs.to_dict(), entry_base=0, entry_per_mod=0)
        sched = SchedParams.from_costs(self.costs)
        # A running thread yields to the scheduler at least this often, so that a
        # wake-up from another CPU (QEMU answering) can preempt it; wake-ups whose
        # time is known (sleeps, timers) end the quantum exactly on time.
        self.quantum = max(1, min(sched.wakeup_granularity, self.us(QUANTUM_US)))
        self.tick = max(1, self.us(self.costs["host_timer_period_us"]))
        n_ctx = sum(vm.vcpus for vm in scenario.vms) + len(scenario.vms) + len(scenario.host_tasks)
        self.ctx_host = np.zeros(max(n_ctx, 1), np.uint8)
        self.cpus = [self._make_cpu(i, sched) for i in range(m.cpus)]
        self.hw_entries = self.cpus[0].tlb.entries
        self.vcpus, self.kvms, self.guests, self.qemu, self.host_tasks = [], [], [], [], []
        self._build_threads()
        self.timeline = [] if scenario.sim.timeline else None
        if self.warmup:
            self.call_at(self.warmup, self._restart_vm_counters)

    def contexts(self) -> list:
        """Every context that can own a TLB entry: id, name and kind."""
        out = [{"id": v.ctx.ctx, "name": v.name, "kind": "vcpu"} for v in self.vcpus]
        out += [{"id": q.ctx.ctx, "name": q.name, "kind": "qemu"} for q in self.qemu]
        out += [{"id": h.ctx.ctx, "name": h.name, "kind": "host_task"} for h in self.host_tasks]
        return sorted(out, key=lambda c: c["id"])

    def record_occupancy(self, cpu) -> None:
        """One sample of who owns each hardware TLB entry (-1: free or the host kernel)."""
        owner = np.where(cpu.tlb.valid_arr == 1, cpu.tlb.owner_arr >> 8, -1).astype(np.int32)
        self.timeline.append((int(self.env.now), cpu.index, owner))

    # -- helpers -------------------------------------------------------------------

    def us(self, us) -> int:
        """Microseconds to cycles at the core clock."""
        return int(round(float(us) * self.clock_mhz))

    def seed_seq(self, *key) -> np.random.SeedSequence:
        """The random stream of one part, spawned from the root seed (DESIGN.md §7)."""
        return np.random.SeedSequence(self.scenario.seed, spawn_key=tuple(key))

    def seed_int(self, label: str, *key) -> int:
        tag = {"pcache": 90, "tlb": 91}[label]
        return int(self.seed_seq(tag, *key).generate_state(1, np.uint64)[0])

    def alloc_host_pfn(self) -> int:
        pfn = self.next_pfn
        self.next_pfn += 1
        return pfn

    def _make_cpu(self, index: int, sched: SchedParams) -> PCPU:
        m = self.scenario.machine
        return PCPU.build(self.backend, index, m.core, m.hwater, m.micro_tlb,
                          self.seed_int("tlb", index), self.ctx_host, rq=RunQueue(index, sched))

    def _build_threads(self) -> None:
        sc = self.scenario
        ncpu = len(self.cpus)
        ctx_id = tid = 0
        host_pid = 1
        chunk = sc.sim.chunk
        next_cpu = 0
        for v, vmc in enumerate(sc.vms):
            pages = vmc.memory_mb * 256
            if BLOCK_GPA >> 12 < pages:
                raise ConfigError(f"vm.{v}.memory_mb: {vmc.memory_mb} MB reaches the device "
                                  "pages at 0xEF600000; at most 3830 MB")
            kvm = KvmVM(self, v, pages, sc.kvm)
            procs, i = [], 0
            for p, spec in enumerate(vmc.processes):
                for _ in range(spec.count):
                    stream = AccessStream(spec.workload, self.seed_seq(1, v, i))
                    procs.append(GuestProcess(i, stream, chunk))
                    i += 1
            # A trace's footprint is known only by reading all of it: demand paging
            # reports exhaustion instead (GuestOS.alloc_gfn).
            need = sum(pr.stream.pages_touched() for pr in procs
                       if pr.stream.spec.kind != "trace") + 1024
            if need > pages:
                raise ConfigError(f"vm.{v}.memory_mb: the processes touch up to {need} pages, "
                                  f"more than the {pages} of {vmc.memory_mb} MB")
            seeds = [self.seed_seq(4, v, c) for c in range(vmc.vcpus)]
            guest = GuestOS(pages, procs, vmc.vcpus, seeds)
            self.kvms.append(kvm)
            self.guests.append(guest)
            for c in range(vmc.vcpus):
                cpu = next_cpu % ncpu if vmc.vcpu_cpus is None else vmc.vcpu_cpus[c]
                next_cpu += 1
                kernel = GuestKernel(guest, guest.cpus[c], self.costs, self.us,
                                     sc.kvm.batch_tlbwe)
                t = VcpuThread(self, kvm, kernel, v, c, tid, cpu, ctx_id)
                self.vcpus.append(t)
                kvm.vcpus.append(t)
                self.cpus[cpu].rq.add(t)
                ctx_id += 1
                tid += 1
        for v, vmc in enumerate(sc.vms):
            cpu = v % ncpu if vmc.qemu_cpu is None else vmc.qemu_cpu
            stream = AccessStream({"kind": "working-set", "pages": 32, "inst_fraction": 0.3,
                                   "code_pages": 16}, self.seed_seq(3, v))
            q = QemuThread(self, name=f"qemu{v}", tid=tid, cpu=cpu, ctx_id=ctx_id,
                           host_pid=host_pid, stream=stream)
            self.ctx_host[ctx_id] = 1
            self.qemu.append(q)
            self.cpus[cpu].rq.add(q, runnable=False)
            ctx_id, tid, host_pid = ctx_id + 1, tid + 1, host_pid + 1
        for h, spec in enumerate(sc.host_tasks):
            cpu = spec.cpu if spec.cpu is not None else h % ncpu
            stream = AccessStream(spec.workload, self.seed_seq(2, h))
            t = HostTask(self, spec, name=spec.name, tid=tid, cpu=cpu, ctx_id=ctx_id,
                         host_pid=host_pid % 255 + 1, stream=stream)
            self.ctx_host[ctx_id] = 1
            self.host_tasks.append(t)
            self.cpus[cpu].rq.add(t)
            ctx_id, tid, host_pid = ctx_id + 1, tid + 1, host_pid + 1

    # -- waking ---------------------------------------------------------------------

    def wake(self, thread) -> None:
        """Make ``thread`` runnable on its CPU (idle CPUs wake; may preempt)."""
        if thread.runnable:
            return
        cpu = self.cpus[thread.cpu]
        preempt = cpu.rq.wake(thread)
        if cpu.idle_event is not None and not cpu.idle_event.triggered:
            cpu.idle_event.succeed()
        elif preempt:
            cpu.preempt = True

    def call_at(self, when: int, fn) -> None:
        delay = max(0, int(when) - int(self.env.now))
        self.env.timeout(delay).callbacks.append(lambda _ev: fn())

    def wake_at(self, thread, when: int) -> None:
        """Wake ``thread`` at cycle ``when`` (its CPU stops its quantum on time)."""
        heapq.heappush(self.cpus[thread.cpu].wakes, int(when))
        self.call_at(when, lambda: self.wake(thread))

    # -- the warm-up ----------------------------------------------------------------------

    def _warming(self, cpu: PCPU) -> bool:
        return self.warmup > 0 and cpu.base is None

    def _maybe_end_warmup(self, cpu: PCPU, accounted: int) -> None:
        """End ``cpu``'s warm-up if it is over and everything charged is accounted."""
        now = self.env.now
        if self._warming(cpu) and now >= self.warmup and accounted == cpu.total() == now:
            self._end_warmup(cpu)

    def _end_warmup(self, cpu: PCPU) -> None:
        """Restart the counters of ``cpu`` and of the threads pinned to it.

        Called at a scheduling point, where everything charged so far has been
        accounted: from here on the CPU's counters cover exactly [now, end).
        """
        cpu.base = cpu.cycles.copy()
        cpu.measured_from = int(self.env.now)
        for t in self.vcpus + self.qemu + self.host_tasks:
            if t.cpu == cpu.index:
                t.restart_counters()

    def _restart_vm_counters(self) -> None:
        for kvm in self.kvms:
            kvm.host_faults = 0
            kvm.gfn_to_pfn_calls = 0
        for guest in self.guests:
            guest.page_faults = 0

    # -- the CPU process ------------------------------------------------------------------

    def cpu_loop(self, cpu: PCPU):
        env, end, rq = self.env, self.end, cpu.rq
        accounted = 0
        while env.now < end:
            self._maybe_end_warmup(cpu, accounted)
            t = rq.pick_next()
            if cpu.loaded is not None and cpu.loaded is not t:
                if cpu.loaded.runnable:           # preempted: an interrupt took it out
                    cpu.loaded.host_interrupt(cpu, "EXTINT", 0)
                cpu.loaded.vcpu_put(cpu)
                cpu.loaded = None
            if t is None:
                d = cpu.total() - accounted
                if d:
                    accounted += d
                    yield env.timeout(d)
                if env.now >= end:
                    break
                t0 = env.now
                cpu.idle_event = env.event()
                until = self.warmup if self._warming(cpu) and env.now < self.warmup else end
                yield cpu.idle_event | env.timeout(until - env.now)
                cpu.idle_event = None
                cpu.charge("idle", env.now - t0)
                accounted += env.now - t0
                continue
            if t is not cpu.last:
                if cpu.last is not None:
                    cpu.charge("host_switch", self.costs["context_switch"])
                cpu.last = t
                t.switches_in += 1
            rq.set_current(t)
            if t.kind == "vcpu" and cpu.loaded is not t:
                t.vcpu_load(cpu)
                cpu.loaded = t
            slice_ = rq.timeslice(t)
            ran = 0
            d = cpu.total() - accounted
            if d:
                accounted += d
                yield env.timeout(d)
            while env.now < end:
                self._maybe_end_warmup(cpu, accounted)
                q = min(slice_ - ran, self.quantum, end - env.now)
                if self._warming(cpu) and env.now < self.warmup:
                    q = min(q, self.warmup - env.now)   # a quantum ends at the warm-up
                w = cpu.next_wake(env.now)
                if w > 0:
                    q = min(q, w - env.now)
                if cpu.next_tick <= env.now:
                    cpu.next_tick = (env.now // self.tick + 1) * self.tick
                q = min(q, cpu.next_tick - env.now)
                if q <= 0:
                    break
                before = cpu.total()
                blocked, after = t.run(cpu, q)
                used = cpu.total() - before
                accounted += used
                if used:
                    yield env.timeout(used)
                rq.charge(t, used)
                ran += used
                if self.timeline is not None:
                    self.record_occupancy(cpu)
                if after is not None:
                    after()
                if env.now >= cpu.next_tick:
                    self.host_tick(cpu, t)
                    d = cpu.total() - accounted
                    accounted += d
                    yield env.timeout(d)
                if blocked:
                    rq.sleep(t)
                    if t.kind == "vcpu":
                        t.vcpu_put(cpu)
                        cpu.loaded = None
                    break
                if cpu.preempt or used == 0:
                    break
                if self.progress is not None:
                    self.progress(env.now, end)
            cpu.preempt = False
            rq.set_current(None)
            d = cpu.total() - accounted
            if d:
                accounted += d
                yield env.timeout(d)
        if cpu.loaded is not None:
            cpu.loaded.vcpu_put(cpu)
            cpu.loaded = None
            d = cpu.total() - accounted
            accounted += d
            yield env.timeout(d)
        cpu.finished_at = env.now
        if accounted != env.now or cpu.total() != env.now:
            raise EmuError(f"internal: CPU {cpu.index} accounted {accounted} cycles "
                           f"by time {env.now}")

    def host_tick(self, cpu: PCPU, t) -> None:
        """The host's timer interrupt (HZ): an exit when it lands in a running guest."""
        handler = self.costs["host_timer_handler"]
        if t.kind == "vcpu" and t.runnable:
            t.host_interrupt(cpu, "DEC", handler)
        else:
            cpu.charge("host_switch", handler)
        cpu.next_tick = (self.env.now // self.tick + 1) * self.tick

    def run(self) -> int:
        """Simulate until the scenario's duration; returns the simulated cycles."""
        procs = [self.env.process(self.cpu_loop(cpu)) for cpu in self.cpus]
        self.env.run(until=self.env.all_of(procs))
        sim_end = max(cpu.finished_at for cpu in self.cpus)
        for cpu in self.cpus:
            cpu.charge("idle", sim_end - cpu.finished_at)
            if self._warming(cpu):                # never reached a scheduling point after it
                self._end_warmup(cpu)
        self.simulated_cycles = sim_end
        return sim_end

"""The host's CPU loop: threads scheduled on the physical CPUs, as SimPy processes.

Each CPU is a SimPy process (:meth:`Host.cpu_loop`) that picks a thread from
its run queue (:mod:`emu.host.sched`), charges the context switch and KVM's
vcpu_load/vcpu_put, and lets the thread run for a quantum.  A thread's run is
synchronous Python over the fast path; the CPU's cycle breakdown grows by
exactly the cycles it ran, and the process then advances the CPU's clock by
that much, so every CPU's breakdown adds up to the simulated time
(docs/design.md §2, §3).  The host's timer tick interrupts a running guest; a
warm-up restarts each CPU's counters at its first scheduling point after it.

Threads reach the host through :meth:`Host.wake`, :meth:`Host.wake_at` and
:meth:`Host.call_at`, and take host page frames from :meth:`Host.alloc_host_pfn`.
:meth:`Host.finish` ends the run early (the guests' work is done).
"""

from __future__ import annotations

import heapq

import numpy as np
import simpy

from emu.errors import EmuError
from emu.host.cpu import HostCPU
from emu.host.sched import SchedParams
from emu.run import stop

FIRST_HOST_PFN = 0x1_0000          # host frames below 256 MB hold the host kernel
QUANTUM_US = 100                   # longest run between two scheduler checks


class Host:
    """The host kernel's scheduling of threads on ``cpus`` for ``end`` cycles.

    ``costs`` is the cost table, ``us`` converts microseconds to cycles,
    ``warmup`` is the warm-up in cycles (0: none), ``progress`` is called as
    ``progress(now, end)`` while it runs (``now`` at most ``end``), and ``timeline`` asks for a sample
    of each CPU's TLB owners after every quantum (:attr:`timeline`).
    """

    def __init__(self, cpus: list, costs, us, end: int, warmup: int, sched: SchedParams,
                 progress=None, timeline: bool = False):
        self.env = simpy.Environment()
        self.cpus = cpus
        self.costs = costs
        self.end, self.warmup = end, warmup
        self.progress = progress
        # A running thread yields to the scheduler at least this often, so that a
        # wake-up from another CPU (QEMU answering) can preempt it; wake-ups whose
        # time is known (sleeps, timers) end the quantum exactly on time.
        self.quantum = max(1, min(sched.wakeup_granularity, us(QUANTUM_US)))
        self.tick = max(1, us(costs["host_timer_period_us"]))
        self.threads: list = []        # every thread, in the order added
        self.next_pfn = FIRST_HOST_PFN
        self.timeline: list | None = [] if timeline else None

    def add(self, thread, runnable: bool = True) -> None:
        """Put ``thread`` on the run queue of its CPU (asleep unless ``runnable``)."""
        self.cpus[thread.cpu].rq.add(thread, runnable=runnable)
        self.threads.append(thread)

    def alloc_host_pfn(self) -> int:
        """The next free host page frame."""
        pfn = self.next_pfn
        self.next_pfn += 1
        return pfn

    def alloc_host_pfns(self, n: int) -> np.ndarray:
        """The next ``n`` free host page frames, in order (``n`` calls of
        :meth:`alloc_host_pfn`)."""
        pfns = np.arange(self.next_pfn, self.next_pfn + n, dtype=np.int64)
        self.next_pfn += n
        return pfns

    def record_occupancy(self, cpu) -> None:
        """One sample of who owns each hardware TLB entry (-1: free or the host kernel)."""
        owner = np.where(cpu.tlb.valid_arr == 1, cpu.tlb.owner_arr >> 8, -1).astype(np.int32)
        self.timeline.append((int(self.env.now), cpu.index, owner))

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
        """Call ``fn()`` at cycle ``when`` (now, if that is past)."""
        delay = max(0, int(when) - int(self.env.now))
        self.env.timeout(delay).callbacks.append(lambda _ev: fn())

    def wake_at(self, thread, when: int) -> None:
        """Wake ``thread`` at cycle ``when`` (its CPU stops its quantum on time)."""
        heapq.heappush(self.cpus[thread.cpu].wakes, int(when))
        self.call_at(when, lambda: self.wake(thread))

    def finish(self, at: int) -> None:
        """End the run at cycle ``at`` (not later than planned): every CPU stops at
        its first scheduling point from then on; idle CPUs wake to see it."""
        self.end = min(self.end, int(at))
        for cpu in self.cpus:
            if cpu.idle_event is not None and not cpu.idle_event.triggered:
                cpu.idle_event.succeed()

    # -- the warm-up ----------------------------------------------------------------------

    def _warming(self, cpu: HostCPU) -> bool:
        return self.warmup > 0 and cpu.base is None

    def _maybe_end_warmup(self, cpu: HostCPU, accounted: int) -> None:
        """End ``cpu``'s warm-up if it is over and everything charged is accounted."""
        now = self.env.now
        if self._warming(cpu) and now >= self.warmup and accounted == cpu.total() == now:
            self._end_warmup(cpu)

    def _end_warmup(self, cpu: HostCPU) -> None:
        """Restart the counters of ``cpu`` and of the threads pinned to it.

        Called at a scheduling point, where everything charged so far has been
        accounted: from here on the CPU's counters cover exactly [now, end).
        """
        cpu.base = cpu.cycles.copy()
        cpu.measured_from = int(self.env.now)
        for t in self.threads:
            if t.cpu == cpu.index:
                t.restart_counters()

    # -- the CPU process ------------------------------------------------------------------

    def cpu_loop(self, cpu: HostCPU):
        """The SimPy process of one CPU: pick, switch, run a quantum, account; until the end."""
        env, rq = self.env, cpu.rq
        accounted = 0
        while env.now < self.end:
            stop.check()            # its raise may have been lost
            self._maybe_end_warmup(cpu, accounted)
            t = rq.pick_next()
            if cpu.loaded is not None and cpu.loaded is not t:
                if cpu.loaded.runnable and cpu.loaded.open_exit is None:
                    # preempted: an interrupt took it out (an open exit, a
                    # host tick's say, is the one it leaves in)
                    cpu.loaded.host_interrupt(cpu, "EXTINT", 0)
                cpu.loaded.vcpu_put(cpu)
                cpu.loaded = None
            if t is None:
                d = cpu.total() - accounted
                if d:
                    accounted += d
                    yield env.timeout(d)
                if env.now >= self.end:
                    break
                t0 = env.now
                cpu.idle_event = env.event()
                until = (self.warmup if self._warming(cpu) and env.now < self.warmup
                         else self.end)
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
            while env.now < self.end:
                self._maybe_end_warmup(cpu, accounted)
                q = min(slice_ - ran, self.quantum, self.end - env.now)
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
                if blocked:                       # before anything can wake it: none is lost
                    rq.sleep(t)
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
                    if t.kind == "vcpu":
                        t.vcpu_put(cpu)
                        cpu.loaded = None
                    break
                if cpu.preempt or used == 0:
                    break
                if self.progress is not None:     # a quantum can end past the run's end
                    self.progress(min(env.now, self.end), self.end)
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

    def host_tick(self, cpu: HostCPU, t) -> None:
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
        return sim_end

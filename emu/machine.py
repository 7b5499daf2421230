"""The whole machine: the composition root (docs/design.md §2).

A :class:`Machine` is built from a resolved :class:`~emu.params.Scenario` and
wires the parts, each of which lives where a reader who knows KVM looks:

* the physical CPUs (:mod:`emu.hw` builds each core's TLBs; :mod:`emu.host.cpu`
  adds the run queue), and the host's CPU loop (:mod:`emu.host.loop`);
* per VM: KVM's VM (:mod:`emu.kvm.vm`), the guest OS (:mod:`emu.guest`) with
  one guest kernel per vCPU, one vCPU thread per guest vCPU
  (:mod:`emu.kvm.vcpu`) and QEMU's I/O thread (:mod:`emu.qemu`);
* the host tasks (:mod:`emu.host.threads`) and KVM's TLB strategy
  (:mod:`emu.kvm.strategies`).

:meth:`Machine.run` runs the host's CPU loop to the scenario's duration, or
until the guests have made ``sim.guest_accesses`` accesses (:class:`Work`).
"""

from __future__ import annotations

import numpy as np

from emu import engine
from emu.costs import CostTable
from emu.errors import ConfigError, EmuError
from emu.guest.footprint import Footprint
from emu.guest.kernel import GuestKernel
from emu.guest.kernel_e500 import GuestKernelE500
from emu.guest.os import (GUEST_TLB_SIZE, KERNEL_RESERVED_GFNS, PROCESS_KERNEL_PAGES, GuestOS,
                          GuestProcess)
from emu.host.cpu import HostCPU
from emu.host.loop import Host
from emu.host.sched import RunQueue, SchedParams
from emu.host.threads import HostTask
from emu.kvm.strategies import make_strategy
from emu.kvm.vcpu import VcpuThread
from emu.kvm.vcpu_e500 import E500VcpuThread
from emu.kvm.vm import KvmVM
from emu.params import resolved
from emu.qemu.devices import DEVICES
from emu.qemu.iothread import QemuThread
from emu.stats.counters import COUNTERS
from emu.stats.misslog import MissLog
from emu.stats.snapshot import ContextCounters, CpuCycles, ProcessFigures, Snapshot, VmFigures
from emu.workload.streams import AccessStream, synthetic_pages

#: QEMU's own accesses while it serves a request (an estimate: its dispatch
#: loop and device model).
QEMU_WORKLOAD = {"kind": "working-set", "pages": 32, "inst_fraction": 0.3, "code_pages": 16}

# Tags of the root seed's streams (docs/design.md §7): spawn keys start with one.
SEED_GUEST_PROCESS, SEED_HOST_TASK, SEED_QEMU = 1, 2, 3
SEED_PFN_CACHE, SEED_TLB = 90, 91


class Work:
    """``sim.guest_accesses``: the guest accesses left before the run ends.

    The vCPUs never run past the last access left (they cap each fast-path
    call there) and :meth:`retire` what they complete; the access that makes
    the count ends the run (``host.finish``), and ``done_at`` is its cycle.
    """

    def __init__(self, total: int, host: Host):
        self.total = self.left = total
        self.host = host
        self.done_at: int | None = None

    def retire(self, n: int, now: int) -> bool:
        """``n`` more accesses completed by cycle ``now``; True once the work is done."""
        if not n:
            return False
        self.left -= n
        if self.left < 0:
            raise EmuError(f"internal: {-self.left} guest accesses past sim.guest_accesses")
        if self.left:
            return False
        self.done_at = now
        self.host.finish(now)
        return True


def _check_memory(v: int, vmc) -> None:
    """ConfigError if the processes of VM ``v`` (its config ``vmc``) can touch
    more pages than its memory holds.  A trace's footprint is known only by
    reading all of it: demand paging reports exhaustion instead
    (GuestOS.alloc_gfn)."""
    pages = vmc.memory_mb * 256
    need = sum(spec.count * (synthetic_pages(spec.workload) + PROCESS_KERNEL_PAGES + 1)
               for spec in vmc.processes if spec.workload.kind != "trace") + KERNEL_RESERVED_GFNS
    if need > pages:
        raise ConfigError(f"vm.{v}.memory_mb: the processes touch up to {need:,} pages, "
                          f"more than the {pages:,} of {vmc.memory_mb:,} MB")


def check_guest_memory(scenario) -> None:
    """ConfigError if a VM of ``scenario`` has too little memory for its
    processes, as building its machine would find: for a comparison's or a
    sweep's points, checked before any of them runs."""
    for v, vmc in enumerate(scenario.vms):
        _check_memory(v, vmc)


class Machine:
    """Build one scenario's machine; :meth:`run` runs it.

    The parts, for whoever reads them after the run: ``cpus`` (host CPUs),
    ``vcpus``, ``kvms``, ``guests``, ``qemu`` (one I/O thread per VM),
    ``host_tasks``, ``strategy`` and ``host`` (the CPU loop).
    """

    def __init__(self, scenario, progress=None):
        # the keys the design leaves unset take its own era and handler
        self.scenario = scenario = resolved(scenario)
        m, k = scenario.machine, scenario.kvm
        self.costs = CostTable(dict(scenario.costs, clock_mhz=m.clock_mhz))
        self.backend = engine.get(scenario.sim.backend)
        self.clock_mhz = m.clock_mhz
        self.hwater = m.hwater if m.core == "440" else 0
        self.strategy = make_strategy(k.strategy, m.core, self.costs, self.hwater, k.tid_scheme)
        self.warmup = self.us(scenario.sim.warmup_ms * 1000)
        self.simulated_cycles = 0          # until run(): a snapshot before it counts nothing
        self.native_costs = dict(self.costs.to_dict(), entry_base=0, entry_per_mod=0)
        sched = SchedParams.from_costs(self.costs)
        n_ctx = sum(vm.vcpus for vm in scenario.vms) + len(scenario.vms) + len(scenario.host_tasks)
        self.ctx_host = np.zeros(max(n_ctx, 1), np.uint8)
        self.cpus = [HostCPU.build(self.backend, i, m.core, m.hwater, m.micro_tlb,
                                   self.seed_int(SEED_TLB, i), self.ctx_host,
                                   m.e500_version, rq=RunQueue(i, sched))
                     for i in range(m.cpus)]
        virt = self.cpus[0].virt
        # flat hardware indices: the e500's TLB1 follows TLB0
        self.hw_entries = virt.tlb.entries + (virt.tlb1.entries if virt.e500 else 0)
        self.strategy.hw_entries = self.hw_entries
        self.host = Host(self.cpus, self.costs, self.us, self.us(scenario.duration_ms * 1000),
                         self.warmup, sched, progress, scenario.sim.timeline)
        self.env = self.host.env
        n = scenario.sim.guest_accesses
        self.work = Work(n, self.host) if n is not None else None
        # the guest accesses made by the middle of the counted window, to tell
        # whether the run settled (a run of equal work has no middle known ahead)
        self.half = None
        if self.work is None:
            end = self.us(scenario.duration_ms * 1000)
            self.host.call_at(self.warmup + (end - self.warmup) // 2, self._note_half)
        self.miss_log = (MissLog(self.backend, scenario.sim.miss_log_max)
                         if scenario.sim.miss_log else None)
        self.alloc_host_pfn = self.host.alloc_host_pfn     # KVM's VMs fault pages in
        self.alloc_host_pfns = self.host.alloc_host_pfns
        self.vcpus, self.kvms, self.guests, self.qemu, self.host_tasks = [], [], [], [], []
        self._ids = {"ctx": 0, "tid": 0, "host_pid": 1}
        self._next_cpu = 0
        for v, vmc in enumerate(scenario.vms):
            self._build_vm(v, vmc)
        for v, vmc in enumerate(scenario.vms):
            self._build_qemu(v, vmc)
        for h, spec in enumerate(scenario.host_tasks):
            self._build_host_task(h, spec)
        if self.warmup:
            self.host.call_at(self.warmup, self._restart_vm_counters)

    # -- parameters ----------------------------------------------------------------

    def us(self, us) -> int:
        """Microseconds to cycles at the core clock."""
        return int(round(float(us) * self.clock_mhz))

    def seed_seq(self, *key) -> np.random.SeedSequence:
        """The random stream of one part, spawned from the root seed (docs/design.md §7)."""
        return np.random.SeedSequence(self.scenario.seed, spawn_key=tuple(key))

    def seed_int(self, label, *key) -> int:
        """One 64-bit seed of a part's stream (``label``: a tag, or 'pcache' / 'tlb')."""
        tag = {"pcache": SEED_PFN_CACHE, "tlb": SEED_TLB}.get(label, label)
        return int(self.seed_seq(tag, *key).generate_state(1, np.uint64)[0])

    # -- wiring ----------------------------------------------------------------------

    def _new_ids(self, host: bool = False) -> tuple[int, int]:
        """The next (context id, thread id); a host context is marked for the fast path."""
        ids = self._ids
        ctx, tid = ids["ctx"], ids["tid"]
        ids["ctx"], ids["tid"] = ctx + 1, tid + 1
        if host:
            self.ctx_host[ctx] = 1
        return ctx, tid

    def _new_host_pid(self) -> int:
        pid = self._ids["host_pid"]
        self._ids["host_pid"] = pid + 1
        return pid

    def _build_vm(self, v: int, vmc) -> None:
        """KVM's VM, the guest OS and one vCPU thread (with its guest kernel) per vCPU."""
        sc = self.scenario
        pages = vmc.memory_mb * 256
        first = min(d.gpa for d in DEVICES)
        if first >> 12 < pages:         # a guard: the key's range keeps RAM below them
            raise ConfigError(f"vm.{v}.memory_mb: {vmc.memory_mb} MB reaches the device "
                              f"pages at 0x{first:08X}; at most {first >> 20} MB")
        kvm = KvmVM(self, v, pages, sc.kvm)
        procs, i = [], 0
        for spec in vmc.processes:
            for _ in range(spec.count):
                stream = AccessStream(spec.workload, self.seed_seq(SEED_GUEST_PROCESS, v, i))
                procs.append(GuestProcess(i, stream, sc.sim.chunk,
                                          spec.workload.lifetime_accesses))
                i += 1
        _check_memory(v, vmc)
        footprint = Footprint(self.costs)
        guest = GuestOS(pages, procs, vmc.vcpus, footprint.static_gfns,
                        self.us(self.costs["sched_latency_us"]))
        self.kvms.append(kvm)
        self.guests.append(guest)
        for c in range(vmc.vcpus):
            cpu = self._next_cpu % len(self.cpus) if vmc.vcpu_cpus is None else vmc.vcpu_cpus[c]
            self._next_cpu += 1
            e500 = sc.machine.core == "e500"        # an e500 guest (emu.kvm.vcpu_e500)
            kernel = (GuestKernelE500 if e500 else GuestKernel)(
                guest, guest.cpus[c], self.costs, self.us, sc.kvm.batch_tlbwe, footprint)
            ctx_id, tid = self._new_ids()
            t = (E500VcpuThread if e500 else VcpuThread)(self, kvm, kernel, v, c, tid, cpu,
                                                         ctx_id)
            self.vcpus.append(t)
            kvm.vcpus.append(t)
            self.host.add(t)

    def _build_qemu(self, v: int, vmc) -> None:
        """QEMU's I/O thread of VM ``v``, and its vCPUs' way to it."""
        cpu = v % len(self.cpus) if vmc.qemu_cpu is None else vmc.qemu_cpu
        stream = AccessStream(QEMU_WORKLOAD, self.seed_seq(SEED_QEMU, v))
        ctx_id, tid = self._new_ids(host=True)
        q = QemuThread(self, name=f"qemu{v}", tid=tid, cpu=cpu, ctx_id=ctx_id,
                       host_pid=self._new_host_pid(), stream=stream)
        self.qemu.append(q)
        for t in self.kvms[v].vcpus:
            t.qemu = q
        self.host.add(q, runnable=False)

    def _build_host_task(self, h: int, spec) -> None:
        cpu = spec.cpu if spec.cpu is not None else h % len(self.cpus)
        stream = AccessStream(spec.workload, self.seed_seq(SEED_HOST_TASK, h))
        ctx_id, tid = self._new_ids(host=True)
        t = HostTask(self, spec, name=spec.name, tid=tid, cpu=cpu, ctx_id=ctx_id,
                     host_pid=self._new_host_pid() % 255 + 1, stream=stream)
        self.host_tasks.append(t)
        self.host.add(t)

    def _note_half(self) -> None:
        """The middle of the counted window: the guest accesses made so far.

        Each CPU runs a quantum's accesses when the quantum starts, so the count
        includes the quanta under way (at most QUANTUM_US each).  Left unset
        when a CPU has not restarted its counters after the warm-up yet.
        """
        if not self.warmup or all(cpu.base is not None for cpu in self.cpus):
            self.half = (int(self.env.now),
                         sum(p.accesses for guest in self.guests for p in guest.processes))

    def _restart_vm_counters(self) -> None:
        """The end of the warm-up: the VMs' page counters restart."""
        for kvm in self.kvms:
            kvm.host_faults = 0
            kvm.gfn_to_pfn_calls = 0
        for guest in self.guests:
            guest.page_faults = guest.exec_faults = 0

    # -- running -----------------------------------------------------------------------

    def run(self) -> int:
        """Simulate until the scenario's duration, or until the guests have made
        ``sim.guest_accesses`` accesses; returns the simulated cycles.

        With ``sim.guest_accesses`` set, a run that reaches ``duration_ms``
        first raises :class:`ConfigError`.
        """
        self.simulated_cycles = self.host.run()
        work = self.work
        if work is not None and work.left:
            sc = self.scenario
            raise ConfigError(
                f"duration_ms = {sc.duration_ms} ended the run after "
                f"{work.total - work.left:,} of sim.guest_accesses = {work.total:,} guest "
                "accesses: raise duration_ms")
        return self.simulated_cycles

    @property
    def timeline(self):
        """The TLB occupancy samples (time, cpu, owners), or None when not asked for."""
        return self.host.timeline

    def contexts(self) -> list:
        """Every context that can own a TLB entry: id, name and kind."""
        return [{"id": t.ctx.ctx, "name": t.name, "kind": kind}
                for kind, t in sorted(self._threads_by_kind(), key=lambda kt: kt[1].ctx.ctx)]

    def _threads_by_kind(self) -> list:
        return ([("vcpu", t) for t in self.vcpus] + [("qemu", t) for t in self.qemu]
                + [("host_task", t) for t in self.host_tasks])

    def snapshot(self) -> Snapshot:
        """Everything the run counted, handed over once after :meth:`run` (before
        it: every counter at 0, :func:`emu.run.scenario.summary_shape`)."""
        contexts = [ContextCounters(t.ctx.ctx, t.name, kind,
                                    {name: t.ctx.arrays[name].copy() for name in COUNTERS},
                                    resumes=t.resumes if kind == "vcpu" else 0,
                                    page_faults=t.page_faults if kind != "vcpu" else 0,
                                    machine_checks=t.machine_checks if kind == "vcpu" else 0)
                    for kind, t in sorted(self._threads_by_kind(), key=lambda kt: kt[1].ctx.ctx)]
        cpus = [CpuCycles(c.index, c.measured_cycles(), c.measured_from) for c in self.cpus]
        vms = [VmFigures(kvm.index, len(kvm.vcpus), int(kvm.startup_cycles), int(kvm.host_faults),
                         int(kvm.gfn_to_pfn_calls), int(guest.page_faults), kvm.memory_bytes())
               for kvm, guest in zip(self.kvms, self.guests)]
        per_vcpu = dict(self.strategy.memory_bytes(),
                        guest_tlb=(self.vcpus[0].gtlb.entries if self.vcpus else GUEST_TLB_SIZE)
                        * self.costs["guest_tlb_entry_bytes"])
        processes = [ProcessFigures(v, p.index, p.pid, p.accesses, p.tlb_misses,
                                    p.guest_tlb_misses, p.page_faults)
                     for v, guest in enumerate(self.guests) for p in guest.processes]
        return Snapshot(self.clock_mhz, self.simulated_cycles, self.warmup,
                        self.scenario.sim.repopulation_window, contexts, cpus, vms, per_vcpu,
                        self.timeline, processes,
                        self.work.done_at if self.work is not None else None,
                        self.miss_log.written() if self.miss_log is not None else None,
                        self.half)

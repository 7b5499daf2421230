"""The sections of a scenario, each key declared once.

A scenario says which machine to build (``[machine]``: core, CPUs), which KVM
design to run on it (``[kvm]``: strategy, miss handler, pfn source), which
costs to override (``[costs]``), which VMs and processes run as guests
(``[[vm]]``, ``[[vm.process]]``, their workloads in :mod:`emu.params.workload`),
which ordinary host tasks compete with them (``[[host_task]]``) and how to
simulate (``[sim]``).  Every key has a default, so an empty file is a valid
scenario.

Each dataclass field below is a key, declared with
:func:`~emu.params.fields.param` (default, kind, one-line doc); the loader
(:mod:`emu.params.load`), :func:`~emu.params.load.scenario_to_dict` and the reference
(``python -m emu.params``) all read these declarations.  What a single key
cannot say — a strategy that needs another core, a pin to a CPU that does not
exist — is checked by :func:`validate_combination`.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Mapping, Optional, Union

from emu.costs import COSTS_BY_NAME, MAX_COST, unknown_cost
from emu.errors import ConfigError
from emu.hw.e500 import TLB_INDEX, VERSIONS
from emu.kvm import pfn, strategies
from emu.params.fields import (
    Array,
    Bool,
    Choice,
    Int,
    Kind,
    Name,
    Number,
    Str,
    Table,
    UnusedKey,
    dump,
    is_int,
    join,
    param,
    read_table,
    show,
)
from emu.params.workload import MAX_SPAN_US, Workload, WorkloadTable, check_host_workload

__all__ = [
    "CORES",
    "STRATEGIES",
    "HANDLERS",
    "TID_SCHEMES",
    "PFN_SOURCES",
    "PFN_CACHE_POLICIES",
    "GUEST_TLB_WALKS",
    "BACKENDS",
    "CostRange",
    "Process",
    "VM",
    "HostTask",
    "Machine",
    "KVM",
    "Sim",
    "Scenario",
    "UnusedKey",
    "check_core_constraints",
    "check_keys_apply",
    "design",
    "resolved",
    "validate_combination",
]

# ---------------------------------------------------------------------------
# The allowed names
# ---------------------------------------------------------------------------

CORES = ("440", "e500")
E500_VERSIONS = tuple(VERSIONS)
STRATEGIES = strategies.NAMES
HANDLERS = ("asm", "c")
TID_SCHEMES = strategies.TID_SCHEMES
PFN_SOURCES = pfn.NAMES
PFN_CACHE_POLICIES = ("fifo", "lru", "random")
GUEST_TLB_WALKS = ("linear", "hashed")
BACKENDS = ("cython", "reference")

# Limits (inclusive).
MAX_CPUS = 64
MAX_VMS = 16
MAX_VCPUS = 16
MIN_MEMORY_MB = 16
#: guest RAM ends below the 440's first device page (the UART at 0xEF600000, 3830 MB)
MAX_MEMORY_MB = 0xEF60_0000 >> 20
MAX_PROCESSES = 1000  # per VM, counting each spec's ``count``
MAX_HOST_TASKS = 64
MAX_CHUNK = 2**24
MAX_REPOPULATION_WINDOW = 65536
MAX_HWATER = 63  # the 440 UTLB has 64 entries (docs/kvm440.md §1.1)
MAX_SEED = 2**64 - 1
MAX_PFN_CACHE_ENTRIES = 2**20  # one per 4 KiB page of the largest VM (4 GiB)
MAX_DURATION_MS = 3_600_000  # one simulated hour: cycles stay far inside int64
MAX_GUEST_ACCESSES = 2**48
MAX_MISS_LOG = 10_000_000  # rows of the per-miss log (136 bytes each while the run lasts)

# ---------------------------------------------------------------------------
# Kinds of the values particular to a scenario
# ---------------------------------------------------------------------------


class _CpuList(Kind):
    """One CPU number per vCPU (each below ``machine.cpus``: checked by
    validate_combination)."""

    def read(self, value, where, ctx, default):
        count = ctx.values["vcpus"]
        if not isinstance(value, list) or len(value) != count:
            got = f"a list of {len(value)}" if isinstance(value, list) else show(value)
            raise ConfigError(f"{where}: expected a list of {count} CPU number(s), one per "
                              f"vCPU, got {got}")
        for i, cpu in enumerate(value):
            if not is_int(cpu) or not 0 <= cpu < MAX_CPUS:
                raise ConfigError(f"{where}.{i}: expected a CPU number in 0..{MAX_CPUS - 1}, "
                                  f"got {show(cpu)}")
        return tuple(int(c) for c in value)

    def dump(self, value):
        return list(value)

    def text(self):
        return "list of integers", f"one per vCPU, each 0..{MAX_CPUS - 1}"


@dataclass(frozen=True)
class CostRange:
    """A cost given as a table: its value and the ends of its plausible range,
    each optional (``exit_light = {value = 300, low = 150, high = 900}``, or
    ``{low = 150, high = 900}`` to keep the default value)."""

    value: Optional[int] = param(None, Int(0, MAX_COST), "the cost's value", optional=True)
    low: Optional[int] = param(None, Int(0, MAX_COST), "the low end of its range",
                               optional=True)
    high: Optional[int] = param(None, Int(0, MAX_COST), "the high end of its range",
                                optional=True)


class _Costs(Kind):
    """A table of cost name = cycles, or name = :class:`CostRange` (kept as a
    dict of the keys given).  Only the shape is checked here (string names,
    non-negative integers, a range's low at most its high), each name
    checked first to be a cost's (:data:`emu.costs.COSTS_BY_NAME`)."""

    def read(self, value, where, ctx, default):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a table of name = cycles, got {show(value)}")
        out: dict[str, Union[int, dict]] = {}
        for name, cycles in value.items():
            if not isinstance(name, str):
                raise ConfigError(f"{where}: cost names must be strings, got {show(name)}")
            key = join(where, name)
            if name == "clock_mhz":
                raise ConfigError(f"{key}: the clock is machine.clock_mhz, not a cost")
            if name not in COSTS_BY_NAME:         # the name first: its value is no cost's
                raise unknown_cost(name)
            if isinstance(cycles, Mapping):
                out[name] = self._range(cycles, key, ctx)
                continue
            if is_int(cycles):
                cycles = int(cycles)
            elif isinstance(cycles, float) and cycles.is_integer():
                cycles = int(cycles)
            else:
                raise ConfigError(f"{key}: expected a non-negative integer, got {show(cycles)}")
            if cycles < 0:
                raise ConfigError(f"{key}: expected a non-negative integer, got {show(cycles)}")
            if cycles > MAX_COST:
                raise ConfigError(f"{key}: expected an integer in 0..{MAX_COST:,} (2**40), "
                                  f"got {show(cycles)}")
            out[name] = cycles
        return out

    @staticmethod
    def _range(table: Mapping, key: str, ctx) -> dict:
        given = dump(read_table(CostRange, table, key, ctx.base_dir))
        if not given:
            raise ConfigError(f"{key}: expected value, low or high in the table, got none")
        if given.get("low", 0) > given.get("high", MAX_COST):
            raise ConfigError(f"{key}: range low {given['low']} > high {given['high']}")
        return given

    def dump(self, value):
        return {name: dict(v) if isinstance(v, Mapping) else v for name, v in value.items()}

    def text(self):
        return "table", "cost name = cycles, or {value, low, high} (names: emu.costs)"


class _Processes(Array):
    """The process specs of a VM: at most MAX_PROCESSES processes once each
    spec's ``count`` is counted."""

    def read(self, value, where, ctx, default):
        processes = super().read(value, where, ctx, default)
        total = sum(p.count for p in processes)
        if total > MAX_PROCESSES:
            raise ConfigError(f"{where}: at most {MAX_PROCESSES} processes per VM "
                              f"(counting each spec's count), got {total}")
        return processes


class _TaskName(Name):
    """A host task's name; absent, ``host<i>`` for the task at index i."""

    def missing(self, default, where, ctx):
        return f"host{ctx.index}"

    def show_default(self, default):
        return '"host<N>"'


# ---------------------------------------------------------------------------
# The sections
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Process:
    """A guest process spec, replicated ``count`` times when the VM is built."""

    count: int = param(1, Int(1, MAX_PROCESSES), "processes built from this spec")
    workload: Workload = param(Workload(), WorkloadTable(), "what each of them runs")


@dataclass(frozen=True)
class VM:
    """One guest: its vCPUs, its RAM and its process specs.

    ``vcpu_cpus`` pins vCPU i to CPU ``vcpu_cpus[i]`` and ``qemu_cpu`` pins the
    VM's QEMU I/O thread (``None``: vCPUs spread round robin over the CPUs,
    QEMU of VM v on CPU v mod cpus).
    """

    vcpus: int = param(1, Int(1, MAX_VCPUS), "virtual CPUs of the guest")
    memory_mb: int = param(64, Int(MIN_MEMORY_MB, MAX_MEMORY_MB), "guest RAM in MB")
    vcpu_cpus: Optional[tuple[int, ...]] = param(
        None, _CpuList(), "pin vCPU i to CPU vcpu_cpus[i] (default: round robin)",
        optional=True)
    qemu_cpu: Optional[int] = param(
        None, Int(0, MAX_CPUS - 1), "pin the VM's QEMU I/O thread (default: VM index mod cpus)",
        optional=True)
    processes: list[Process] = param(
        [Process()], _Processes(Process, 1, MAX_PROCESSES, "process specs"),
        "the guest's process specs ([[vm.process]])", key="process")

    @property
    def process_count(self) -> int:
        """The number of processes once every spec is replicated."""
        return sum(p.count for p in self.processes)


@dataclass(frozen=True)
class HostTask:
    """An ordinary host thread (AS=0) that competes for CPUs and the TLB.

    ``cpu`` pins it to one CPU (``None``: spread round robin over the CPUs).
    ``run_us = 0`` makes it always runnable (a CPU hog); otherwise it runs
    ``run_us`` µs, then sleeps ``sleep_us`` µs.
    """

    name: str = param("host0", _TaskName(), "its name in reports")
    cpu: Optional[int] = param(
        None, Int(0, MAX_CPUS - 1), "pin it to this CPU (default: round robin)", optional=True)
    run_us: float = param(0.0, Number(0.0, at_most=MAX_SPAN_US, why="one simulated hour"),
                          "µs it runs before it sleeps (0: always runnable)")
    sleep_us: float = param(0.0, Number(0.0, at_most=MAX_SPAN_US, why="one simulated hour"),
                            "µs it sleeps after each run")
    workload: Workload = param(Workload(pages=128), WorkloadTable(host=True), "what it runs")


@dataclass(frozen=True)
class Machine:
    """The core and its CPUs."""

    core: str = param("440", Choice(CORES, aliases=((440, "440"),)),
                      "the core: PPC440 or e500 (440 may be written unquoted)")
    cpus: int = param(1, Int(1, MAX_CPUS), "physical CPUs")
    clock_mhz: int = param(667, Int(1, 100_000),
                           "core clock (docs/kvm440.md §0: 440SP/440EPx class)")
    micro_tlb: bool = param(False, Bool(), "model the 440's 4-entry I / 8-entry D shadow "
                                           "arrays (docs/kvm440.md §1.1)")
    hwater: int = param(62, Int(0, MAX_HWATER),
                        "the 440 round-robin high-water mark (62 in Linux 44x, "
                        "docs/kvm440.md §0, §1.5; 440 only)")
    e500_version: str = param("v2", Choice(E500_VERSIONS),
                              "the e500's TLB0: v1 256 x 2-way, v2 512 x 4-way "
                              "(docs/kvm440.md §4.1, §4.3; e500 only)")
    tlb_index: str = param("software", Choice(TLB_INDEX),
                           "hardware: a hypothetical core whose tlbwe always writes the "
                           "hardware's victim (docs/kvm440.md §4.3)")


@dataclass(frozen=True)
class KVM:
    """The hypervisor design under test (docs/design.md §4)."""

    strategy: str = param("direct", Choice(STRATEGIES), "how shadow TLB entries reach the "
                                                        "hardware (docs/design.md §4); "
                                                        "direct-noflush is hypothetical")
    tid_scheme: Optional[str] = param(
        None, Choice(TID_SCHEMES), "the KVM-440 TID era (default: the design's own: shadow "
        "guest-tid, shadow-modified and the direct designs tid01)", optional=True)
    handler: Optional[str] = param(
        None, Choice(HANDLERS), "the miss handler: a full exit to C (default: every shipped "
        "design) or the proposed assembly fast path", optional=True)
    hypothetical: bool = param(False, Bool(), "allow a TID era the design never ran with, or "
                                              "any on the e500; refused only for a design as "
                                              "it shipped or the proposal")
    pfn_source: str = param("pfn-cache", Choice(PFN_SOURCES),
                            "where a fill finds the host page frame (every KVM-440 had gup: "
                            "another makes a shipped design hypothetical)")
    pfn_cache_entries: int = param(256, Int(1, MAX_PFN_CACHE_ENTRIES),
                                   "entries of the pfn cache (pfn_source = 'pfn-cache')")
    pfn_cache_policy: str = param("lru", Choice(PFN_CACHE_POLICIES),
                                  "replacement policy of the pfn cache (pfn_source = "
                                  "'pfn-cache')")
    guest_tlb_walk: str = param("linear", Choice(GUEST_TLB_WALKS),
                                "how the handler searches the guest TLB")
    batch_tlbwe: bool = param(False, Bool(), "the guest's three tlbwe words cost one exit "
                                             "instead of three")


@dataclass(frozen=True)
class Sim:
    """How to simulate: the fast path's chunk, its backend, the repopulation
    window, whether to record a TLB occupancy timeline, and the warm-up.

    ``guest_accesses``: equal work.  The run ends once the guest processes
    have made exactly this many accesses in all (records of their streams; an
    MMIO access counts once QEMU answered), whatever the chunk size and the
    backend; ``duration_ms`` is then an upper bound, and reaching it first is
    an error.  The summary reports the cycle the work was done at
    (``time_to_work_cycles``).  Unset: the run lasts ``duration_ms``.

    ``timeline``: after every quantum a CPU ran (so at every context switch),
    the owner of each of its hardware TLB entries (a context, or free / the host kernel) is sampled;
    the run's results gain ``timeline.npz`` and ``emu report`` draws the
    occupancy timeline from it (the ``repopulation_lesson`` study turns it on).

    ``warmup_ms``: the counters (exits, TLB hits and misses, the cycle
    breakdown, the fast-path profile, the repopulation curve, page faults)
    start from zero after this much simulated time, so that the summary
    describes the steady state and not the first fill.  Each CPU restarts its
    counters at its first scheduling point at or after the warm-up (its quanta
    end there, so at most one exit late); VM-wide counters (page faults,
    ``gfn_to_pfn`` calls) at the warm-up itself.  0: no warm-up.

    ``miss_log``: log every guest TLB miss after the warm-up (when it began,
    the vCPU, EA and access kind, its cause, the entries the guest TLB walk
    scanned, how the handler ended, the cycles of each step): the run folder
    gets ``misses.parquet`` (``misses.csv`` without pyarrow).  At most
    ``miss_log_max`` rows are kept; the summary's ``miss_log`` says how many
    misses were dropped after that.
    """

    chunk: int = param(65536, Int(1, MAX_CHUNK),
                       "accesses per fast-path call (changes no result)")
    backend: str = param("cython", Choice(BACKENDS),
                         "the compiled fast path or the pure-Python reference")
    repopulation_window: int = param(256, Int(1, MAX_REPOPULATION_WINDOW),
                                     "accesses after each vcpu_load in the repopulation curve")
    timeline: bool = param(False, Bool(), "sample which context owns each hardware TLB entry "
                                          "after every quantum (timeline.npz)")
    miss_log: bool = param(False, Bool(), "log every guest TLB miss (misses.parquet or "
                                          "misses.csv in the run folder)")
    miss_log_max: int = param(100_000, Int(1, MAX_MISS_LOG),
                              "rows of the per-miss log (miss_log = true); later misses are "
                              "dropped and counted")
    warmup_ms: Union[int, float] = param(0, Number(0.0, as_float=False),
                                         "counters start from zero after this much "
                                         "simulated time")
    guest_accesses: Optional[int] = param(
        None, Int(1, MAX_GUEST_ACCESSES), "end the run after exactly this many guest accesses "
        "(equal work; duration_ms becomes an upper bound)", optional=True)


@dataclass(frozen=True)
class Scenario:
    """A whole resolved scenario.  ``base_dir`` is the directory relative trace
    paths were resolved against; it is not part of equality (the paths are
    already absolute)."""

    seed: int = param(1, Int(0, MAX_SEED), "the root seed of every random choice")
    duration_ms: Union[int, float] = param(
        20, Number(0.0, open_lo=True, as_float=False, at_most=MAX_DURATION_MS,
                   why="one simulated hour"),
        "simulated time (each CPU ends the time slice it is in then: simulated_us says how long)")
    name: str = param("", Name(), "a short name for reports")
    question: str = param("", Str(), "the question the scenario answers")
    machine: Machine = param(Machine(), Table(Machine), "the machine: core and CPUs")
    kvm: KVM = param(KVM(), Table(KVM), "the KVM design under test")
    costs: dict[str, Union[int, dict]] = param({}, _Costs(), "cycle costs (and their "
                                               "ranges) overriding emu.costs")
    vms: list[VM] = param([VM()], Array(VM, 1, MAX_VMS, "VMs"), "the guests ([[vm]])", key="vm")
    host_tasks: list[HostTask] = param([], Array(HostTask, 0, MAX_HOST_TASKS, "host tasks"),
                                       "ordinary host threads ([[host_task]])", key="host_task")
    sim: Sim = param(Sim(), Table(Sim), "how to simulate")
    base_dir: str = field(default_factory=os.getcwd, compare=False)


# ---------------------------------------------------------------------------
# Combinations
# ---------------------------------------------------------------------------


def check_core_constraints(machine: Machine, kvm: KVM) -> None:
    """Refuse a KVM design the core cannot run, saying why.

    - the strategy must be one the core can run (:func:`emu.kvm.strategies.check_core`
      says which run where, and why not), in a TID era it ran with or
      ``hypothetical`` (:func:`emu.kvm.strategies.resolve`);
    - ``machine.micro_tlb`` is a 440 feature;
    - a shadow design's entry loop needs ``machine.hwater`` >= 1, and a core
      whose ``tlbwe`` software can point at an index (``machine.tlb_index``);
    - ``machine.e500_version`` other than the default names an e500, and
      ``machine.hwater`` other than the default a 440 (the e500 has no flat
      index range to bound: TLB0's set comes from the address).
    """
    core = machine.core
    design(machine, kvm)
    if core == "440" and machine.hwater < 1 and strategies.get(kvm.strategy).entry_loop:
        raise ConfigError(f"machine.hwater: the entry loop of kvm.strategy '{kvm.strategy}' "
                          f"writes indices 0..hwater-1, and hwater 0 leaves it none "
                          f"(expected 1..{MAX_HWATER})")
    if core != "e500" and machine.e500_version != "v2":
        raise ConfigError(f"machine.e500_version: '{machine.e500_version}' is the e500's TLB0 "
                          f"and machine.core is '{core}'; set core = 'e500' or leave it 'v2'")
    if machine.tlb_index == "hardware" and strategies.get(kvm.strategy).needs_index:
        others = [n for n in strategies.allowed_on(core) if not strategies.get(n).needs_index]
        raise ConfigError(strategies.HARDWARE_INDEX_REFUSAL.format(
            strategy=kvm.strategy, alternatives=", ".join(others)))
    if core != "440" and machine.hwater != Machine().hwater:
        raise UnusedKey("machine.hwater", f"it bounds the 440's round robin, and machine.core "
                        f"is '{core}', whose TLB0 set comes from the address",
                        f"set core = '440' or leave it {Machine().hwater}")
    if core == "e500" and machine.micro_tlb:
        raise ConfigError("machine.micro_tlb: the 4-entry I / 8-entry D micro-TLBs are a "
                          "PPC440 feature (docs/kvm440.md §1.1); the e500's L1 TLBs "
                          "are invisible to software; set micro_tlb = false or core = '440'")


#: Why ``kvm.hypothetical = true`` is refused where the design needs none of it.
_NOT_HYPOTHETICAL = ("it allows only a TID era a design never ran with, or any on the e500: "
                     "a design as it shipped, or the proposal, is not hypothetical")


def host_no_kernel_ran(machine: Machine) -> str:
    """What of the host no KVM of the era ran on, or '' (docs/kvm440.md §2.10):
    a core whose tlbwe ignores the index; an e500v1
    (kvmppc_core_check_processor_compat accepts only e500v2); a 440 with more
    than one CPU (no 44x kernel could be SMP before the 47x)."""
    if machine.tlb_index == "hardware":
        return "tlb_index=hardware"
    if machine.core == "e500" and machine.e500_version == "v1":
        return "e500v1"
    if machine.core == "440" and machine.cpus > 1:
        return f"{machine.cpus} CPUs"
    return ""


def design(machine: Machine, kvm: KVM) -> strategies.Design:
    """The KVM design as the run uses it: the strategy in its resolved TID era
    with its resolved handler (:func:`emu.kvm.strategies.resolve`); on a core
    whose tlbwe ignores the index (``machine.tlb_index = "hardware"``, a core
    that never existed), or on a host no KVM of the era ran on
    (:func:`host_no_kernel_ran`), or with a guest or a walk no kernel of the era
    had (:func:`guest_no_kernel_had`), it is labelled hypothetical, the label
    saying why.

    ``kvm.hypothetical = true`` where the design resolves without it to a
    machine that existed (or to the proposal) would only relabel it: refused
    (:class:`UnusedKey`).  Where the design is hypothetical anyway, it changes
    nothing and is accepted (the e500 default comparison marks its shadow row so).
    """
    args = (kvm.strategy, machine.core, kvm.tid_scheme, kvm.handler, kvm.pfn_source)
    d = strategies.resolve(*args, kvm.hypothetical)
    if kvm.hypothetical:
        try:
            plain = strategies.resolve(*args)
        except ConfigError:             # an era the design never ran with: it needs the key
            plain = None
        if plain is not None and not plain.hypothetical:
            raise UnusedKey("kvm.hypothetical", _NOT_HYPOTHETICAL,
                            f"{plain.row_label} runs as set without it: leave it false")
    proposal = d.label.startswith("proposal: ")
    if kvm.guest_tlb_walk == "hashed" and proposal:
        # the proposal's handler may search the guest TLB either way (docs/design.md §3)
        d = dataclasses.replace(d, label=d.label + " + hashed walk")
    host = host_no_kernel_ran(machine)
    without = guest_no_kernel_had(kvm, proposal)
    if host or without:
        text = d.label.removeprefix("hypothetical: ")
        text += "".join(f" with {w}" for w in without) + (f" on {host}" if host else "")
        return dataclasses.replace(d, hypothetical=True, label="hypothetical: " + text)
    return d


def guest_no_kernel_had(kvm: KVM, proposal: bool) -> list:
    """What of the run no kernel of the era had: a guest whose three tlbwe words
    trap once (``kvm.batch_tlbwe``: no Linux 44x guest batched them), a hashed
    search of the guest TLB in a shipped design's handler (every KVM-440 and
    KVM-e500 scanned it entry by entry; the proposal's handler may hash)."""
    what = []
    if kvm.batch_tlbwe:
        what.append("batched tlbwe")
    if kvm.guest_tlb_walk == "hashed" and not proposal:
        what.append("hashed walk")
    return what


def resolved(cfg: Scenario) -> Scenario:
    """``cfg`` with the keys its design leaves unset filled in (``kvm.tid_scheme``,
    ``kvm.handler``): what the run's summary records."""
    d = design(cfg.machine, cfg.kvm)
    kvm = dataclasses.replace(cfg.kvm, tid_scheme=d.tid_scheme, handler=d.handler)
    return dataclasses.replace(cfg, kvm=kvm)


def check_keys_apply(cfg: Scenario) -> None:
    """Refuse a key set where it does nothing (:class:`UnusedKey`): the pfn cache's
    size and policy without ``kvm.pfn_source = 'pfn-cache'``, the per-miss log's
    bound without ``sim.miss_log``.  A key left at its default is never refused."""
    kvm, default = cfg.kvm, KVM()
    if kvm.pfn_source != "pfn-cache":
        for key, what in (("pfn_cache_entries", "sizes the pfn cache"),
                          ("pfn_cache_policy", "picks the pfn cache's victims")):
            if getattr(kvm, key) != getattr(default, key):
                raise UnusedKey(f"kvm.{key}", f"it {what}, and kvm.pfn_source "
                                f"is '{kvm.pfn_source}'", f"set pfn_source = 'pfn-cache' or "
                                f"leave it {show(getattr(default, key))}")
    if not cfg.sim.miss_log and cfg.sim.miss_log_max != Sim().miss_log_max:
        raise UnusedKey("sim.miss_log_max", "it bounds the per-miss log, and sim.miss_log is "
                        "false", f"set miss_log = true or leave it {Sim().miss_log_max}")


def _no_such_cpu(where: str, cpu: int, cpus: int) -> ConfigError:
    return ConfigError(f"{where}: CPU {cpu} does not exist: machine.cpus = {cpus} "
                       f"(expected 0..{cpus - 1})")


def validate_combination(cfg: Scenario) -> None:
    """Refuse combinations that cannot be modelled, saying why.

    - the KVM design must suit the core (:func:`check_core_constraints`);
    - every key set must do something (:func:`check_keys_apply`);
    - a host task's ``cpu``, a VM's ``vcpu_cpus`` and ``qemu_cpu`` must be
      among the machine's CPUs;
    - a host task's workload sets no key only a guest process's takes
      (:data:`~emu.params.workload.HOST_REFUSED`);
    - a host task sleeps only if it runs (``run_us > 0``);
    - the run lasts one cycle at least, and the warm-up ends before it does;
    - equal work (``sim.guest_accesses``) counts from the start: no warm-up.
    """
    check_core_constraints(cfg.machine, cfg.kvm)
    check_keys_apply(cfg)
    cpus = cfg.machine.cpus
    for i, task in enumerate(cfg.host_tasks):
        if task.cpu is not None and task.cpu >= cpus:
            raise _no_such_cpu(f"host_task.{i}.cpu", task.cpu, cpus)
        if task.run_us == 0 and task.sleep_us:
            raise ConfigError(f"host_task.{i}.sleep_us: a task with run_us = 0 is always "
                              f"runnable and never sleeps: set run_us, or leave sleep_us 0")
        check_host_workload(task.workload, f"host_task.{i}.workload")
    for v, vm in enumerate(cfg.vms):
        pins = [(f"vm.{v}.vcpu_cpus.{i}", c) for i, c in enumerate(vm.vcpu_cpus or ())]
        if vm.qemu_cpu is not None:
            pins.append((f"vm.{v}.qemu_cpu", vm.qemu_cpu))
        for where, cpu in pins:
            if cpu >= cpus:
                raise _no_such_cpu(where, cpu, cpus)
    if cfg.sim.guest_accesses is not None and cfg.sim.warmup_ms:
        raise ConfigError(f"sim.guest_accesses counts from the start of the run: it cannot be "
                          f"combined with sim.warmup_ms = {show(cfg.sim.warmup_ms)}")
    if cfg.duration_ms * 1000 * cfg.machine.clock_mhz < 1:
        raise ConfigError(f"duration_ms: {show(cfg.duration_ms)} ms is shorter than one cycle "
                          f"at machine.clock_mhz = {cfg.machine.clock_mhz}")
    if cfg.sim.warmup_ms >= cfg.duration_ms:
        raise ConfigError(f"sim.warmup_ms: the warm-up ({show(cfg.sim.warmup_ms)} ms) must end "
                          f"before the run does (duration_ms = {show(cfg.duration_ms)})")

"""Scenario configuration: dataclasses with defaults, a strict TOML loader and
dotted-path overrides.

A scenario file says which machine to build (core, CPUs), which KVM design to
run on it (strategy, miss handler, pfn source), which costs to override, which
VMs and processes run as guests, which ordinary host tasks compete with them,
and how to simulate (chunk size, backend).  Every key has a default, so an
empty file is a valid scenario; :func:`default_scenario` is the built-in one.

Promises
--------
- **One exception type.**  Every problem (a TOML syntax error, a missing file,
  an unknown key, a wrong type, a value out of range, an impossible
  combination, a malformed override) is raised as
  :class:`~emu.errors.ConfigError` with a one-line message that names the
  offending key by its dotted path, list items by index::

      vm.0.process.1.workload.pages: expected a positive integer, got -3
      unknown key 'kvm.stratgy' (did you mean 'kvm.strategy'?)

  Nothing else escapes: no ``KeyError``, ``TypeError`` or traceback of ours.
- **Strict types.**  Integer fields take integers only: ``true`` is not 1 and
  ``2.0`` is not 2.  Number fields (``duration_ms``, fractions, ``zipf_s``,
  ``run_us`` / ``sleep_us``) take integers or floats, finite only.  The one
  convenience: ``machine.core`` accepts the integer ``440`` for ``"440"`` (so
  ``--set machine.core=440`` works unquoted).
- **Overrides** (``--set key=value``) edit the raw TOML data *before*
  validation, so a bad override gets the same message as the same mistake in
  the file.  See :func:`apply_overrides`.
- **Round trip.**  ``scenario_from_dict(scenario_to_dict(s)) == s`` for every
  scenario this module builds; :func:`scenario_to_dict` is JSON-serialisable
  and has the TOML file's shape (``vm`` / ``process`` / ``host_task`` lists).
- **Trace paths** (workload kind ``trace``) are resolved against the directory
  of the TOML file (:attr:`Scenario.base_dir`) and stored absolute.  Whether
  the file exists is checked later, by :mod:`emu.workload`.
- Costs are only checked for shape here (string name, non-negative integer);
  :class:`emu.costs.CostTable` checks the names.

Example::

    >>> s = scenario_from_dict({"kvm": {"strategy": "shadow"}},
    ...                        overrides=["vm.0.process.0.workload.pages=60"])
    >>> s.kvm.strategy, s.vms[0].processes[0].workload.pages
    ('shadow', 60)
    >>> scenario_from_dict({"kvm": {"stratgy": "shadow"}})
    Traceback (most recent call last):
    ...
    emu.errors.ConfigError: unknown key 'kvm.stratgy' (did you mean 'kvm.strategy'?)
"""

from __future__ import annotations

import copy
import difflib
import math
import numbers
import os
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Optional, Union

try:  # Python >= 3.11
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10 and older
    import tomli as tomllib  # type: ignore[no-redef]

from emu.errors import ConfigError

__all__ = [
    "CORES",
    "STRATEGIES",
    "E500_STRATEGIES",
    "INDEXED_STRATEGIES",
    "HANDLERS",
    "PFN_SOURCES",
    "PFN_CACHE_POLICIES",
    "GUEST_TLB_WALKS",
    "BACKENDS",
    "WORKLOAD_KINDS",
    "DISTRIBUTIONS",
    "MMIO_DEVICES",
    "Workload",
    "Process",
    "VM",
    "HostTask",
    "Machine",
    "KVM",
    "Sim",
    "Scenario",
    "load_scenario",
    "scenario_from_dict",
    "scenario_to_dict",
    "apply_overrides",
    "validate_combination",
    "default_scenario",
]

# ---------------------------------------------------------------------------
# The allowed names
# ---------------------------------------------------------------------------

CORES = ("440", "e500")
STRATEGIES = (
    "shadow",
    "shadow-modified",
    "direct",
    "direct-save-on-switch",
    "e500-flush-on-put",
    "e500-shadow-ids",
)
#: Strategies written for the e500's MMU (MAS registers, TLB0/TLB1, shadow IDs).
E500_STRATEGIES = ("e500-flush-on-put", "e500-shadow-ids")
#: Strategies that must write an entry back into a hardware index of their
#: choosing, which the e500's TLB0 does not allow (reference/kvm440.md §4.1).
INDEXED_STRATEGIES = ("shadow", "shadow-modified", "direct-save-on-switch")
HANDLERS = ("asm", "c")
PFN_SOURCES = ("gup", "pin-all", "pfn-cache", "guest-tlb-refs")
PFN_CACHE_POLICIES = ("fifo", "lru", "random")
GUEST_TLB_WALKS = ("linear", "hashed")
BACKENDS = ("cython", "reference")
WORKLOAD_KINDS = ("working-set", "sweep", "trace")
DISTRIBUTIONS = ("uniform", "zipf")
MMIO_DEVICES = ("uart", "block")

# Limits (inclusive).
MAX_CPUS = 64
MAX_VMS = 16
MAX_VCPUS = 16
MIN_MEMORY_MB, MAX_MEMORY_MB = 16, 4096
MAX_PROCESSES = 1000  # per VM, counting each spec's ``count``
MAX_HOST_TASKS = 64
MAX_PAGES = 262144  # 1 GiB of 4 KiB pages
MAX_CHUNK = 2**24
MAX_REPOPULATION_WINDOW = 65536
MAX_HWATER = 63  # the 440 UTLB has 64 entries (reference/kvm440.md §1.1)
MAX_SEED = 2**64 - 1
MAX_PFN_CACHE_ENTRIES = 2**20  # one per 4 KiB page of the largest VM (4 GiB)
MAX_STRIDE = 2**30  # bytes
MAX_EVERY = 2**32  # accesses between syscalls / MMIO accesses / sleeps
MAX_COST = 2**63 - 1

_E500_REASON = (
    "software cannot choose a TLB0 index (the set comes from the address and "
    "hardware picks the way), so a shadow array cannot be laid into hardware "
    "index by index (reference/kvm440.md §4.1)"
)

# ---------------------------------------------------------------------------
# The dataclasses
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Workload:
    """One access stream.  ``kind`` decides which fields mean anything.

    - ``working-set``: ``pages`` pages touched with a ``uniform`` or ``zipf``
      (exponent ``zipf_s``) distribution;
    - ``sweep``: ``pages`` pages walked in order, ``stride`` bytes apart;
    - ``trace``: replay the trace at ``path`` (absolute once loaded);
      ``pages`` is ``None``.

    Common to every kind: ``inst_fraction`` of the accesses are instruction
    fetches from ``code_pages`` code pages; ``write_fraction`` of the data
    accesses are stores; a system call every ``syscall_every`` accesses, an
    MMIO access to ``mmio_device`` every ``mmio_every`` accesses and a sleep of
    ``sleep_us`` µs every ``sleep_every`` accesses, on average (0 = never).
    Fields that do not apply to the kind keep their defaults.
    """

    kind: str = "working-set"
    pages: Optional[int] = 40
    distribution: str = "uniform"
    zipf_s: float = 1.0
    stride: int = 4096
    path: Optional[str] = None
    inst_fraction: float = 0.25
    code_pages: int = 4
    write_fraction: float = 0.3
    syscall_every: int = 0
    mmio_every: int = 0
    mmio_device: str = "uart"
    sleep_every: int = 0
    sleep_us: float = 0.0

    def __post_init__(self) -> None:
        if self.kind == "trace" and self.pages is not None:
            object.__setattr__(self, "pages", None)  # a trace has no page count


@dataclass(frozen=True)
class Process:
    """A guest process spec, replicated ``count`` times when the VM is built."""

    count: int = 1
    workload: Workload = field(default_factory=Workload)


@dataclass(frozen=True)
class VM:
    """One guest: its vCPUs, its RAM and its process specs.

    ``vcpu_cpus`` pins vCPU i to CPU ``vcpu_cpus[i]`` and ``qemu_cpu`` pins the
    VM's QEMU I/O thread (``None``: vCPUs spread round robin over the CPUs,
    QEMU of VM v on CPU v mod cpus).
    """

    vcpus: int = 1
    memory_mb: int = 64
    processes: list[Process] = field(default_factory=lambda: [Process()])
    vcpu_cpus: Optional[tuple[int, ...]] = None
    qemu_cpu: Optional[int] = None

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

    name: str = "host0"
    cpu: Optional[int] = None
    run_us: float = 0.0
    sleep_us: float = 0.0
    workload: Workload = field(default_factory=lambda: Workload(pages=128))


@dataclass(frozen=True)
class Machine:
    """The core and its CPUs.  ``hwater`` is the 440 round-robin high-water
    mark (62 in Linux 44x, reference/kvm440.md §0, §1.5; ignored on the e500);
    ``micro_tlb`` models the 440's 4-entry I / 8-entry D shadow arrays
    (reference/kvm440.md §1.1)."""

    core: str = "440"
    cpus: int = 1
    clock_mhz: int = 667  # reference/kvm440.md §0 (440SP/440EPx class)
    micro_tlb: bool = False
    hwater: int = 62


@dataclass(frozen=True)
class KVM:
    """The hypervisor design under test (DESIGN.md §4)."""

    strategy: str = "direct"
    handler: str = "asm"
    pfn_source: str = "pfn-cache"
    pfn_cache_entries: int = 256
    pfn_cache_policy: str = "lru"
    guest_tlb_walk: str = "linear"
    batch_tlbwe: bool = False


@dataclass(frozen=True)
class Sim:
    """How to simulate: the fast path's chunk, its backend, the repopulation
    window, whether to record a TLB occupancy timeline, and the warm-up.

    ``warmup_ms``: the counters (exits, TLB hits and misses, the cycle
    breakdown, the fast-path profile, the repopulation curve, page faults)
    start from zero after this much simulated time, so that the summary
    describes the steady state and not the first fill.  Each CPU restarts its
    counters at its first scheduling point at or after the warm-up (its quanta
    end there, so at most one exit late); VM-wide counters (page faults,
    ``gfn_to_pfn`` calls) at the warm-up itself.  0: no warm-up.
    """

    chunk: int = 65536
    backend: str = "cython"
    repopulation_window: int = 256
    timeline: bool = False
    warmup_ms: Union[int, float] = 0


@dataclass(frozen=True)
class Scenario:
    """A whole resolved scenario.  ``base_dir`` is the directory relative trace
    paths were resolved against; it is not part of equality (the paths are
    already absolute)."""

    seed: int = 1
    duration_ms: Union[int, float] = 20
    name: str = ""
    question: str = ""
    machine: Machine = field(default_factory=Machine)
    kvm: KVM = field(default_factory=KVM)
    costs: dict[str, int] = field(default_factory=dict)
    vms: list[VM] = field(default_factory=lambda: [VM()])
    host_tasks: list[HostTask] = field(default_factory=list)
    sim: Sim = field(default_factory=Sim)
    base_dir: str = field(default_factory=os.getcwd, compare=False)


# ---------------------------------------------------------------------------
# Messages
# ---------------------------------------------------------------------------


def _join(path: str, key: object) -> str:
    return f"{path}.{key}" if path else str(key)


def _show(value: object) -> str:
    """A short, one-line, TOML-flavoured rendering of a user's value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        text = repr(value)
        return text if len(text) <= 60 else text[:56] + "...'"
    if isinstance(value, numbers.Integral):
        value = int(value)
        if abs(value) >= 10**30:
            return f"an integer of {value.bit_length()} bits"
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, Mapping):
        return "a table"
    if isinstance(value, (list, tuple)):
        return "an array"
    if value is None:
        return "nothing (null)"
    text = str(value)
    if len(text) > 40:
        text = text[:37] + "..."
    return f"a {type(value).__name__} ({text})"


def _choices(names: Iterable[str]) -> str:
    return ", ".join(f"'{n}'" for n in names)


def _suggest(word: object, candidates: Iterable[str]) -> Optional[str]:
    matches = difflib.get_close_matches(str(word), list(candidates), n=1, cutoff=0.6)
    return matches[0] if matches else None


def _unknown_key(path: str, key: object, allowed: Iterable[str]) -> ConfigError:
    allowed = list(allowed)
    full = _join(path, key)
    guess = _suggest(key, allowed)
    if guess is not None:
        return ConfigError(f"unknown key '{full}' (did you mean '{_join(path, guess)}'?)")
    where = f"in '{path}'" if path else "at the top level"
    return ConfigError(f"unknown key '{full}' (known keys {where}: {', '.join(allowed)})")


# ---------------------------------------------------------------------------
# Field readers: each takes the raw table, its dotted path and the key
# ---------------------------------------------------------------------------

_MISSING = object()


def _is_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _table(raw: object, path: str, allowed: Iterable[str]) -> Mapping:
    """Check that ``raw`` is a table whose keys are all in ``allowed``."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{path or 'scenario'}: expected a table, got {_show(raw)}")
    allowed = tuple(allowed)
    for key in raw:
        if not isinstance(key, str) or key not in allowed:
            raise _unknown_key(path, key, allowed)
    return raw


def _int(t: Mapping, path: str, key: str, default: int, lo: int,
         hi: Optional[int] = None) -> int:
    value = t.get(key, _MISSING)
    if value is _MISSING:
        return default
    where = _join(path, key)
    if not _is_int(value):
        raise ConfigError(f"{where}: expected an integer, got {_show(value)}")
    value = int(value)
    if value < lo:
        if lo == 1:
            raise ConfigError(f"{where}: expected a positive integer, got {_show(value)}")
        if lo == 0:
            raise ConfigError(f"{where}: expected a non-negative integer, got {_show(value)}")
    if value < lo or (hi is not None and value > hi):
        raise ConfigError(f"{where}: expected an integer in {lo}..{hi}, got {_show(value)}")
    return value


def _number(t: Mapping, path: str, key: str, default: Union[int, float],
            lo: float, hi: Optional[float] = None, *, open_lo: bool = False,
            as_float: bool = True) -> Union[int, float]:
    value = t.get(key, _MISSING)
    if value is _MISSING:
        return default
    where = _join(path, key)
    if not _is_number(value):
        raise ConfigError(f"{where}: expected a number, got {_show(value)}")
    try:
        finite = math.isfinite(value)
    except (OverflowError, ValueError):  # an integer too large for a float
        finite = False
    if not finite:
        raise ConfigError(f"{where}: expected a finite number, got {_show(value)}")
    if hi is not None:
        if not lo <= value <= hi:
            raise ConfigError(f"{where}: expected a number in {lo:g}..{hi:g}, got {_show(value)}")
    elif open_lo and value <= lo:
        raise ConfigError(f"{where}: expected a positive number, got {_show(value)}")
    elif value < lo:
        raise ConfigError(f"{where}: expected a non-negative number, got {_show(value)}")
    if as_float:
        return float(value)
    return int(value) if _is_int(value) else float(value)


def _bool(t: Mapping, path: str, key: str, default: bool) -> bool:
    value = t.get(key, _MISSING)
    if value is _MISSING:
        return default
    if not isinstance(value, bool):
        raise ConfigError(f"{_join(path, key)}: expected true or false, got {_show(value)}")
    return value


def _str(t: Mapping, path: str, key: str, default: str) -> str:
    value = t.get(key, _MISSING)
    if value is _MISSING:
        return default
    if not isinstance(value, str):
        raise ConfigError(f"{_join(path, key)}: expected a string, got {_show(value)}")
    return value


def _enum(t: Mapping, path: str, key: str, default: str, choices: tuple[str, ...]) -> str:
    value = t.get(key, _MISSING)
    if value is _MISSING:
        return default
    if isinstance(value, str) and value in choices:
        return value
    where = _join(path, key)
    hint = ""
    if isinstance(value, str):
        guess = _suggest(value, choices)
        if guess is not None:
            hint = f" (did you mean '{guess}'?)"
    raise ConfigError(f"{where}: expected one of {_choices(choices)}, got {_show(value)}{hint}")


def _array(t: Mapping, path: str, key: str, lo: int, hi: int, what: str) -> Optional[list]:
    """The raw array of tables under ``key`` (``None`` if absent)."""
    value = t.get(key, _MISSING)
    if value is _MISSING:
        return None
    where = _join(path, key)
    if isinstance(value, Mapping):
        header = re.sub(r"\.\d+", "", where)
        raise ConfigError(f"{where}: expected an array of tables ([[{header}]]), got a table")
    if not isinstance(value, (list, tuple)):
        raise ConfigError(f"{where}: expected an array of tables, got {_show(value)}")
    if not lo <= len(value) <= hi:
        raise ConfigError(f"{where}: expected {lo}..{hi} {what}, got {len(value)}")
    return list(value)


# ---------------------------------------------------------------------------
# The sections
# ---------------------------------------------------------------------------

_COMMON_WORKLOAD_KEYS = (
    "inst_fraction", "code_pages", "write_fraction", "syscall_every",
    "mmio_every", "mmio_device", "sleep_every", "sleep_us",
)
_KIND_KEYS = {
    "working-set": ("kind", "pages", "distribution", "zipf_s") + _COMMON_WORKLOAD_KEYS,
    "sweep": ("kind", "pages", "stride") + _COMMON_WORKLOAD_KEYS,
    "trace": ("kind", "path") + _COMMON_WORKLOAD_KEYS,
}
_WORKLOAD_FIELDS = tuple(dict.fromkeys(k for keys in _KIND_KEYS.values() for k in keys))


def _workload(raw: object, path: str, base_dir: str, defaults: Workload) -> Workload:
    if not isinstance(raw, Mapping):
        raise ConfigError(
            f"{path}: expected a table such as {{kind = \"working-set\", pages = 40}}, "
            f"got {_show(raw)}")
    kind = raw.get("kind", defaults.kind)
    if not isinstance(kind, str) or kind not in WORKLOAD_KINDS:
        guess = _suggest(kind, WORKLOAD_KINDS) if isinstance(kind, str) else None
        hint = f" (did you mean '{guess}'?)" if guess else ""
        raise ConfigError(f"{_join(path, 'kind')}: unknown workload kind {_show(kind)}"
                          f"{hint}; known kinds: {', '.join(WORKLOAD_KINDS)}")
    allowed = _KIND_KEYS[kind]
    for key in raw:
        if isinstance(key, str) and key in allowed:
            continue
        full = _join(path, key)
        guess = _suggest(key, allowed)
        owners = [k for k in WORKLOAD_KINDS if isinstance(key, str) and key in _KIND_KEYS[k]]
        if owners:
            hint = f"'{key}' belongs to kind {' or '.join(repr(o) for o in owners)}; "
        elif guess is not None:
            hint = f"did you mean '{_join(path, guess)}'? "
        else:
            hint = ""
        raise ConfigError(f"unknown key '{full}' for workload kind '{kind}' "
                          f"({hint}allowed keys: {', '.join(allowed)})")
    d = defaults
    values: dict[str, Any] = {"kind": kind}
    if kind in ("working-set", "sweep"):
        values["pages"] = _int(raw, path, "pages", d.pages if d.pages is not None else 40,
                               1, MAX_PAGES)
    else:
        values["pages"] = None
    if kind == "working-set":
        values["distribution"] = _enum(raw, path, "distribution", d.distribution, DISTRIBUTIONS)
        values["zipf_s"] = _number(raw, path, "zipf_s", d.zipf_s, 0.0, open_lo=True)
    if kind == "sweep":
        values["stride"] = _int(raw, path, "stride", d.stride, 1, MAX_STRIDE)
    if kind == "trace":
        trace = raw.get("path", _MISSING)
        where = _join(path, "path")
        if trace is _MISSING:
            raise ConfigError(f"{where}: required for workload kind 'trace' (the trace file)")
        if not isinstance(trace, str):
            raise ConfigError(f"{where}: expected a string, got {_show(trace)}")
        if not trace.strip() or "\0" in trace:
            raise ConfigError(f"{where}: expected a file name, got {_show(trace)}")
        values["path"] = os.path.normpath(
            os.path.join(base_dir, os.path.expanduser(trace)))
    values["inst_fraction"] = _number(raw, path, "inst_fraction", d.inst_fraction, 0.0, 1.0)
    values["code_pages"] = _int(raw, path, "code_pages", d.code_pages, 1, MAX_PAGES)
    values["write_fraction"] = _number(raw, path, "write_fraction", d.write_fraction, 0.0, 1.0)
    values["syscall_every"] = _int(raw, path, "syscall_every", d.syscall_every, 0, MAX_EVERY)
    values["mmio_every"] = _int(raw, path, "mmio_every", d.mmio_every, 0, MAX_EVERY)
    values["mmio_device"] = _enum(raw, path, "mmio_device", d.mmio_device, MMIO_DEVICES)
    values["sleep_every"] = _int(raw, path, "sleep_every", d.sleep_every, 0, MAX_EVERY)
    values["sleep_us"] = _number(raw, path, "sleep_us", d.sleep_us, 0.0)
    return Workload(**values)


_DEFAULT_PROCESS_WORKLOAD = Workload()
_DEFAULT_HOST_WORKLOAD = Workload(pages=128)


def _process(raw: object, path: str, base_dir: str) -> Process:
    t = _table(raw, path, ("count", "workload"))
    count = _int(t, path, "count", 1, 1, MAX_PROCESSES)
    if "workload" in t:
        workload = _workload(t["workload"], _join(path, "workload"), base_dir,
                             _DEFAULT_PROCESS_WORKLOAD)
    else:
        workload = _DEFAULT_PROCESS_WORKLOAD
    return Process(count=count, workload=workload)


def _vm(raw: object, path: str, base_dir: str) -> VM:
    t = _table(raw, path, ("vcpus", "memory_mb", "process", "vcpu_cpus", "qemu_cpu"))
    vcpus = _int(t, path, "vcpus", 1, 1, MAX_VCPUS)
    memory_mb = _int(t, path, "memory_mb", 64, MIN_MEMORY_MB, MAX_MEMORY_MB)
    vcpu_cpus = _cpu_list(t, path, "vcpu_cpus", vcpus)
    qemu_cpu = t.get("qemu_cpu", None)
    if qemu_cpu is not None:  # None only from a Python/JSON dict: TOML has no null
        qemu_cpu = _int(t, path, "qemu_cpu", 0, 0, MAX_CPUS - 1)  # < machine.cpus: see below
    raw_processes = _array(t, path, "process", 1, MAX_PROCESSES, "process specs")
    if raw_processes is None:
        processes = [Process()]
    else:
        processes = [_process(p, _join(path, f"process.{i}"), base_dir)
                     for i, p in enumerate(raw_processes)]
    total = sum(p.count for p in processes)
    if total > MAX_PROCESSES:
        raise ConfigError(f"{_join(path, 'process')}: at most {MAX_PROCESSES} processes "
                          f"per VM (counting each spec's count), got {total}")
    return VM(vcpus=vcpus, memory_mb=memory_mb, processes=processes, vcpu_cpus=vcpu_cpus,
              qemu_cpu=qemu_cpu)


def _cpu_list(t: Mapping, path: str, key: str, count: int) -> Optional[tuple[int, ...]]:
    """A list of ``count`` CPU numbers, or None when absent (each < machine.cpus is
    checked by validate_combination)."""
    raw = t.get(key, None)
    if raw is None:
        return None
    where = _join(path, key)
    if not isinstance(raw, list) or len(raw) != count:
        got = f"a list of {len(raw)}" if isinstance(raw, list) else _show(raw)
        raise ConfigError(f"{where}: expected a list of {count} CPU number(s), one per vCPU, "
                          f"got {got}")
    for i, cpu in enumerate(raw):
        if not _is_int(cpu) or not 0 <= cpu < MAX_CPUS:
            raise ConfigError(f"{where}.{i}: expected a CPU number in 0..{MAX_CPUS - 1}, "
                              f"got {_show(cpu)}")
    return tuple(int(c) for c in raw)


def _host_task(raw: object, path: str, index: int, base_dir: str) -> HostTask:
    t = _table(raw, path, ("name", "cpu", "run_us", "sleep_us", "workload"))
    name = _str(t, path, "name", f"host{index}")
    cpu = t.get("cpu", None)
    if cpu is not None:  # None only from a Python/JSON dict: TOML has no null
        cpu = _int(t, path, "cpu", 0, 0, MAX_CPUS - 1)  # < machine.cpus: validate_combination
    run_us = _number(t, path, "run_us", 0.0, 0.0)
    sleep_us = _number(t, path, "sleep_us", 0.0, 0.0)
    if "workload" in t:
        workload = _workload(t["workload"], _join(path, "workload"), base_dir,
                             _DEFAULT_HOST_WORKLOAD)
    else:
        workload = _DEFAULT_HOST_WORKLOAD
    return HostTask(name=name, cpu=cpu, run_us=run_us, sleep_us=sleep_us, workload=workload)


def _machine(raw: object, path: str) -> Machine:
    t = _table(raw, path, ("core", "cpus", "clock_mhz", "micro_tlb", "hwater"))
    if _is_int(t.get("core")) and int(t["core"]) == 440:
        t = {**t, "core": "440"}  # the one convenience: core = 440 unquoted
    return Machine(
        core=_enum(t, path, "core", "440", CORES),
        cpus=_int(t, path, "cpus", 1, 1, MAX_CPUS),
        clock_mhz=_int(t, path, "clock_mhz", 667, 1, 100_000),
        micro_tlb=_bool(t, path, "micro_tlb", False),
        hwater=_int(t, path, "hwater", 62, 0, MAX_HWATER),
    )


def _kvm(raw: object, path: str) -> KVM:
    t = _table(raw, path, ("strategy", "handler", "pfn_source", "pfn_cache_entries",
                           "pfn_cache_policy", "guest_tlb_walk", "batch_tlbwe"))
    return KVM(
        strategy=_enum(t, path, "strategy", "direct", STRATEGIES),
        handler=_enum(t, path, "handler", "asm", HANDLERS),
        pfn_source=_enum(t, path, "pfn_source", "pfn-cache", PFN_SOURCES),
        pfn_cache_entries=_int(t, path, "pfn_cache_entries", 256, 1, MAX_PFN_CACHE_ENTRIES),
        pfn_cache_policy=_enum(t, path, "pfn_cache_policy", "lru", PFN_CACHE_POLICIES),
        guest_tlb_walk=_enum(t, path, "guest_tlb_walk", "linear", GUEST_TLB_WALKS),
        batch_tlbwe=_bool(t, path, "batch_tlbwe", False),
    )


def _sim(raw: object, path: str) -> Sim:
    t = _table(raw, path, ("chunk", "backend", "repopulation_window", "timeline",
                           "warmup_ms"))
    return Sim(
        chunk=_int(t, path, "chunk", 65536, 1, MAX_CHUNK),
        backend=_enum(t, path, "backend", "cython", BACKENDS),
        repopulation_window=_int(t, path, "repopulation_window", 256, 1,
                                 MAX_REPOPULATION_WINDOW),
        timeline=_bool(t, path, "timeline", False),
        warmup_ms=_number(t, path, "warmup_ms", 0, 0.0, as_float=False),
    )


MAX_DURATION_MS = 3_600_000          # one simulated hour: cycles stay far inside int64


def _duration(t: Mapping) -> Union[int, float]:
    value = _number(t, "", "duration_ms", 20, 0.0, open_lo=True, as_float=False)
    if value > MAX_DURATION_MS:
        raise ConfigError(f"duration_ms: expected at most {MAX_DURATION_MS:,} "
                          f"(one simulated hour), got {_show(value)}")
    return value


def _costs(raw: object, path: str) -> dict[str, int]:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{path}: expected a table of name = cycles, got {_show(raw)}")
    out: dict[str, int] = {}
    for name, value in raw.items():
        if not isinstance(name, str):
            raise ConfigError(f"{path}: cost names must be strings, got {_show(name)}")
        where = _join(path, name)
        if name == "clock_mhz":
            raise ConfigError(f"{where}: the clock is machine.clock_mhz, not a cost")
        if _is_int(value):
            value = int(value)
        elif isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise ConfigError(f"{where}: expected a non-negative integer, got {_show(value)}")
        if value < 0:
            raise ConfigError(f"{where}: expected a non-negative integer, got {_show(value)}")
        if value > MAX_COST:
            raise ConfigError(f"{where}: expected an integer in 0..{MAX_COST}, got {_show(value)}")
        out[name] = value
    return out


def _vms(t: Mapping, base_dir: str) -> list[VM]:
    raw = _array(t, "", "vm", 1, MAX_VMS, "VMs")
    if raw is None:
        return [VM()]
    return [_vm(v, f"vm.{i}", base_dir) for i, v in enumerate(raw)]


def _host_tasks(t: Mapping, base_dir: str) -> list[HostTask]:
    raw = _array(t, "", "host_task", 0, MAX_HOST_TASKS, "host tasks")
    if raw is None:
        return []
    return [_host_task(h, f"host_task.{i}", i, base_dir) for i, h in enumerate(raw)]


_TOP_KEYS = ("seed", "duration_ms", "name", "question", "machine", "kvm", "costs",
             "vm", "host_task", "sim")


def _scenario(data: object, base_dir: str) -> Scenario:
    t = _table(data, "", _TOP_KEYS)
    # Keyword arguments are evaluated in order, so the first error reported is
    # the first one in the file's natural order.
    scenario = Scenario(
        seed=_int(t, "", "seed", 1, 0, MAX_SEED),
        duration_ms=_duration(t),
        name=_str(t, "", "name", ""),
        question=_str(t, "", "question", ""),
        machine=_machine(t.get("machine", {}), "machine"),
        kvm=_kvm(t.get("kvm", {}), "kvm"),
        costs=_costs(t.get("costs", {}), "costs"),
        vms=_vms(t, base_dir),
        host_tasks=_host_tasks(t, base_dir),
        sim=_sim(t.get("sim", {}), "sim"),
        base_dir=base_dir,
    )
    validate_combination(scenario)
    return scenario


# ---------------------------------------------------------------------------
# Combinations
# ---------------------------------------------------------------------------


def validate_combination(cfg: Scenario) -> None:
    """Refuse combinations that cannot be modelled, saying why.

    - an ``e500-*`` strategy needs ``machine.core = 'e500'``;
    - ``shadow``, ``shadow-modified`` and ``direct-save-on-switch`` cannot run
      on the e500: they write entries back into indices of their choosing,
      and the e500's TLB0 set comes from the address (reference/kvm440.md
      §4.1).  ``direct`` is allowed: it inserts through the hardware victim;
    - ``machine.micro_tlb`` is a 440 feature;
    - a host task's ``cpu``, a VM's ``vcpu_cpus`` and ``qemu_cpu`` must be
      among the machine's CPUs;
    - the warm-up must end before the run does.

    ``machine.hwater`` is ignored on the e500 (no flat index range there).
    """
    core = cfg.machine.core
    strategy = cfg.kvm.strategy
    if strategy in E500_STRATEGIES and core != "e500":
        raise ConfigError(f"kvm.strategy: '{strategy}' needs machine.core = 'e500' "
                          f"(machine.core is '{core}')")
    if core == "e500" and strategy in INDEXED_STRATEGIES:
        raise ConfigError(f"kvm.strategy: '{strategy}' cannot be modelled on the e500: "
                          f"{_E500_REASON}; use 'direct', 'e500-flush-on-put' or "
                          f"'e500-shadow-ids'")
    if core == "e500" and cfg.machine.micro_tlb:
        raise ConfigError("machine.micro_tlb: the 4-entry I / 8-entry D micro-TLBs are a "
                          "PPC440 feature (reference/kvm440.md §1.1); the e500's L1 TLBs "
                          "are invisible to software; set micro_tlb = false or core = '440'")
    for i, task in enumerate(cfg.host_tasks):
        if task.cpu is not None and task.cpu >= cfg.machine.cpus:
            raise ConfigError(f"host_task.{i}.cpu: CPU {task.cpu} does not exist: "
                              f"machine.cpus = {cfg.machine.cpus} "
                              f"(expected 0..{cfg.machine.cpus - 1})")
    for v, vm in enumerate(cfg.vms):
        pins = [(f"vm.{v}.vcpu_cpus.{i}", c) for i, c in enumerate(vm.vcpu_cpus or ())]
        if vm.qemu_cpu is not None:
            pins.append((f"vm.{v}.qemu_cpu", vm.qemu_cpu))
        for where, cpu in pins:
            if cpu >= cfg.machine.cpus:
                raise ConfigError(f"{where}: CPU {cpu} does not exist: machine.cpus = "
                                  f"{cfg.machine.cpus} (expected 0..{cfg.machine.cpus - 1})")
    if cfg.sim.warmup_ms >= cfg.duration_ms:
        raise ConfigError(f"sim.warmup_ms: the warm-up ({_show(cfg.sim.warmup_ms)} ms) must end "
                          f"before the run does (duration_ms = {_show(cfg.duration_ms)})")


# ---------------------------------------------------------------------------
# Overrides
# ---------------------------------------------------------------------------

_VM_PATH = re.compile(r"vm\.\d+\Z")


def _parse_value(text: str) -> Any:
    """A TOML value if ``text`` is one, else ``text`` itself (a bare string)."""
    try:
        parsed = tomllib.loads("v = " + text)
    except Exception:  # TOMLDecodeError, or RecursionError on absurd nesting
        return text
    if list(parsed) != ["v"]:  # e.g. "1\nw = 2" smuggles in a second key
        return text
    return parsed["v"]


def _missing_container(parent: str, key: str) -> Any:
    """What an absent key holds by default, when an override walks through it."""
    if parent == "" and key == "vm":
        return [{}]  # the default: one VM with defaults
    if key == "process" and _VM_PATH.match(parent):
        return [{}]  # the default: one process with the default workload
    if parent == "" and key == "host_task":
        return []
    return {}


def _apply_one(data: dict, override: object) -> None:
    if not isinstance(override, str):
        raise ConfigError(f"override {_show(override)}: expected a string key=value")
    key, sep, text = override.partition("=")
    key = key.strip()
    if not sep:
        raise ConfigError(f"override {_show(override)}: expected key=value "
                          f"(e.g. kvm.strategy=shadow)")
    if not key:
        raise ConfigError(f"override {_show(override)}: the key before '=' is empty")
    parts = [p.strip() for p in key.split(".")]
    if not all(parts):
        raise ConfigError(f"{key}: empty component in the override key "
                          f"(expected a dotted path such as vm.0.vcpus)")
    value = _parse_value(text.strip())
    node: Any = data
    path = ""
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        here = _join(path, part)
        if isinstance(node, dict):
            if last:
                node[part] = value
                return
            if part not in node:
                node[part] = _missing_container(path, part)
            elif isinstance(node[part], tuple):
                node[part] = list(node[part])
            node = node[part]
        elif isinstance(node, list):
            if not (part.isascii() and part.isdigit()):
                raise ConfigError(f"{here}: '{path}' is an array; expected an item index "
                                  f"0..{len(node)}, got '{part}'")
            index = int(part) if len(part) <= 18 else len(node) + 1
            if index > len(node):
                raise ConfigError(f"{here}: index {_show(part)[1:-1]} is out of range: '{path}' "
                                  f"has {len(node)} item(s) (use index {len(node)} to append one)")
            if index == len(node):
                node.append(value if last else {})
                if last:
                    return
            elif last:
                node[index] = value
                return
            elif isinstance(node[index], tuple):
                node[index] = list(node[index])
            node = node[index]
        else:
            raise ConfigError(f"{here}: cannot set a key inside '{path}', which is "
                              f"{_show(node)}, not a table")
        path = here


def apply_overrides(data: Mapping, overrides: Iterable[str]) -> dict:
    """Return a copy of the raw scenario ``data`` with ``--set`` overrides applied.

    Each override is ``dotted.key=value``; list items are addressed by index
    (``vm.0.process.1.workload.pages=60``).  The value is parsed as a TOML
    value (``true``, ``1.5``, ``"x"``, ``{kind = "sweep"}``), or taken as a
    bare string if it is not one (``kvm.strategy=shadow``).  A missing table
    on the way is created; an absent ``vm`` / ``vm.N.process`` list stands for
    its default (one item with defaults) and an absent ``host_task`` for an
    empty list; index ``len(list)`` appends a new item (defaults apply to the
    keys not set), a larger one is an error.  ``data`` is not modified.
    Values are not checked here: :func:`scenario_from_dict` does that.
    """
    if isinstance(overrides, str):
        overrides = [overrides]
    if not isinstance(data, Mapping):
        raise ConfigError(f"scenario: expected a table, got {_show(data)}")
    try:
        out = copy.deepcopy(dict(data))
    except Exception as exc:  # pragma: no cover - only for exotic Python objects
        raise ConfigError(f"scenario: cannot copy the data to override it ({exc})") from None
    for override in overrides:
        _apply_one(out, override)
    return out


# ---------------------------------------------------------------------------
# Entry points
# ---------------------------------------------------------------------------


def scenario_from_dict(data: Mapping, overrides: Iterable[str] = (),
                       base_dir: Union[str, os.PathLike] = ".") -> Scenario:
    """Validate raw scenario data (the TOML shape) into a :class:`Scenario`.

    ``overrides`` are applied first (:func:`apply_overrides`); relative trace
    paths are resolved against ``base_dir``.  Raises :class:`ConfigError`.
    """
    if isinstance(overrides, str):
        overrides = [overrides]
    overrides = list(overrides)
    if overrides:
        data = apply_overrides(data, overrides)
    return _scenario(data, os.path.abspath(os.fspath(base_dir)))


def load_scenario(path: Union[str, os.PathLike], overrides: Iterable[str] = ()) -> Scenario:
    """Read a scenario TOML file, apply ``overrides`` and validate it.

    Relative trace paths are resolved against the file's directory.  A
    missing or unreadable file, or a TOML syntax error, is a
    :class:`ConfigError` naming the file.
    """
    try:
        name = os.fspath(path)
    except TypeError:
        raise ConfigError(f"scenario file: expected a path, got {_show(path)}") from None
    try:
        with open(name, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"{name}: scenario file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{name}: is a directory, not a scenario file") from None
    except OSError as exc:
        raise ConfigError(f"{name}: cannot read scenario file: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{name}: invalid TOML: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{name}: invalid TOML: values nested too deeply") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{name}: invalid TOML: not UTF-8 text "
                          f"(byte {exc.start}: {exc.reason})") from None
    base_dir = os.path.dirname(os.path.abspath(name))
    return scenario_from_dict(data, overrides, base_dir=base_dir)


def _workload_to_dict(w: Workload) -> dict[str, Any]:
    return {key: getattr(w, key) for key in _KIND_KEYS[w.kind]}


def scenario_to_dict(s: Scenario) -> dict[str, Any]:
    """The full resolved scenario in the TOML file's shape, JSON-serialisable.

    Workloads carry only the keys their kind allows; a host task's ``cpu`` is
    left out when it is ``None``.  ``scenario_from_dict`` of the result equals
    ``s``.
    """

    def vm(v: VM) -> dict[str, Any]:
        out: dict[str, Any] = {"vcpus": v.vcpus, "memory_mb": v.memory_mb}
        if v.vcpu_cpus is not None:
            out["vcpu_cpus"] = list(v.vcpu_cpus)
        if v.qemu_cpu is not None:
            out["qemu_cpu"] = v.qemu_cpu
        out["process"] = [{"count": p.count, "workload": _workload_to_dict(p.workload)}
                          for p in v.processes]
        return out

    def host_task(t: HostTask) -> dict[str, Any]:
        out: dict[str, Any] = {"name": t.name}
        if t.cpu is not None:
            out["cpu"] = t.cpu
        out.update(run_us=t.run_us, sleep_us=t.sleep_us, workload=_workload_to_dict(t.workload))
        return out

    m, k, sim = s.machine, s.kvm, s.sim
    return {
        "seed": s.seed,
        "duration_ms": s.duration_ms,
        "name": s.name,
        "question": s.question,
        "machine": {"core": m.core, "cpus": m.cpus, "clock_mhz": m.clock_mhz,
                    "micro_tlb": m.micro_tlb, "hwater": m.hwater},
        "kvm": {"strategy": k.strategy, "handler": k.handler, "pfn_source": k.pfn_source,
                "pfn_cache_entries": k.pfn_cache_entries,
                "pfn_cache_policy": k.pfn_cache_policy,
                "guest_tlb_walk": k.guest_tlb_walk, "batch_tlbwe": k.batch_tlbwe},
        "costs": dict(s.costs),
        "vm": [vm(v) for v in s.vms],
        "host_task": [host_task(t) for t in s.host_tasks],
        "sim": {"chunk": sim.chunk, "backend": sim.backend,
                "repopulation_window": sim.repopulation_window, "timeline": sim.timeline,
                "warmup_ms": sim.warmup_ms},
    }


#: The raw data behind :func:`default_scenario`.
DEFAULT_SCENARIO_DATA: Mapping[str, Any] = {
    "name": "default",
    "question": "How does the default design (direct insertion, assembly miss handler, "
                "pfn cache) fare with one guest process and one host task on one 440 CPU?",
    "host_task": [{"name": "noise", "run_us": 200, "sleep_us": 800}],
}


def default_scenario() -> Scenario:
    """The built-in scenario: a 440 with one CPU, ``direct`` / ``asm`` /
    ``pfn-cache``, one VM with one 40-page uniform process, and one host task
    ``noise`` (128 pages) that runs 200 µs and sleeps 800 µs; 20 ms."""
    return scenario_from_dict(copy.deepcopy(dict(DEFAULT_SCENARIO_DATA)))

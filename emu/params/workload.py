"""The one workload schema: what a guest process or host task runs.

A workload table appears under ``vm.N.process.N.workload`` and
``host_task.N.workload``; :class:`emu.workload.streams.AccessStream` turns a
:class:`Workload` into its access stream.  Its ``kind`` decides which keys
the table may hold (each key's ``applies_to``); the other keys keep their
defaults.  Example::

    >>> w = read_workload({"kind": "sweep", "pages": 8}, "workload", ".", Workload())
    >>> w.kind, w.pages, w.stride, w.inst_fraction
    ('sweep', 8, 4096, 0.25)
    >>> workload_to_dict(w)["stride"]
    4096
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Mapping, Optional

from emu.errors import ConfigError
from emu.params.fields import (
    Ctx,
    Choice,
    Int,
    Kind,
    KeyUse,
    Number,
    UnusedKey,
    declared,
    describe,
    dump,
    join,
    param,
    read_value,
    show,
    suggest,
)

__all__ = [
    "WORKLOAD_KINDS",
    "DISTRIBUTIONS",
    "MMIO_DEVICES",
    "KIND_KEYS",
    "WORKLOAD_KEYS",
    "Workload",
    "WorkloadTable",
    "read_workload",
    "workload_to_dict",
    "as_workload",
]

WORKLOAD_KINDS = ("working-set", "sweep", "trace")
DISTRIBUTIONS = ("uniform", "zipf")
MMIO_DEVICES = ("uart", "block")

#: The longest span of simulated time a key may give: one simulated hour (a
#: scenario's longest run), in µs.
MAX_SPAN_US = 3_600_000_000
MAX_PAGES = 262144  # 1 GiB of 4 KiB pages
MAX_STRIDE = 2**30  # bytes
MAX_EVERY = 2**32  # accesses between syscalls / MMIO accesses / sleeps


class _TracePath(Kind):
    """A trace file name, required; stored absolute (resolved against the
    directory of the scenario file).  Whether it exists is checked when the
    stream opens it."""

    def read(self, value, where, ctx, default):
        if isinstance(value, os.PathLike):      # a dict of the Python API's: Path("t.npz")
            value = os.fspath(value)
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {show(value)}")
        if not value.strip() or "\0" in value:
            raise ConfigError(f"{where}: expected a file name, got {show(value)}")
        return os.path.normpath(os.path.join(ctx.base_dir, os.path.expanduser(value)))

    def missing(self, default, where, ctx):
        raise ConfigError(f"{where}: required for workload kind 'trace' (the trace file)")

    def text(self):
        return "path", "relative to the scenario file (given with --set: to the current folder)"


_SYNTHETIC = ("working-set", "sweep")


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
    A guest process with ``lifetime_accesses`` exits after that many accesses
    and a fresh process takes its place (:meth:`emu.guest.kernel.GuestKernel.process_exit`).
    Fields that do not apply to the kind keep their defaults.  A table that
    sets a key where it does nothing (:data:`_NEEDS`: ``zipf_s`` of a uniform
    distribution, ``code_pages`` without fetches, ``stride`` where every
    access is a fetch) is refused; a comparison or a sweep takes it if it
    does something at one of its runs (:class:`~emu.params.fields.KeyUse`).
    """

    # read first (read_workload): it decides the keys allowed beside it
    kind: str = param("working-set", Choice(WORKLOAD_KINDS), "the access pattern")
    pages: Optional[int] = param(
        40, Int(1, MAX_PAGES), "data pages of the working set or the sweep",
        applies_to=_SYNTHETIC)
    distribution: str = param(
        "uniform", Choice(DISTRIBUTIONS),
        "how a working-set data access picks its page (with inst_fraction < 1)",
        applies_to=("working-set",))
    zipf_s: float = param(
        1.0, Number(0.0, open_lo=True),
        "Zipf exponent: page rank r has weight (r + 1) ** -zipf_s (with distribution zipf "
        "and inst_fraction < 1)",
        applies_to=("working-set",))
    stride: int = param(
        4096, Int(1, MAX_STRIDE),
        "bytes between consecutive sweep data accesses (with inst_fraction < 1)",
        applies_to=("sweep",))
    path: Optional[str] = param(
        None, _TracePath(), "the trace file (.npz, .npy, valgrind lackey text or .gz)",
        applies_to=("trace",))
    # a trace carries its own fetches: these two are refused with it
    inst_fraction: float = param(
        0.25, Number(0.0, 1.0), "share of the accesses that are instruction fetches",
        applies_to=("working-set", "sweep"))
    code_pages: int = param(4, Int(1, MAX_PAGES),
                            "pages of the code loop the fetches walk (with inst_fraction > 0)",
                            applies_to=("working-set", "sweep"))
    write_fraction: float = param(
        0.3, Number(0.0, 1.0),
        "share of stores among data and MMIO accesses (of a trace, or with inst_fraction 1: "
        "among MMIO accesses)")
    syscall_every: int = param(
        0, Int(0, MAX_EVERY), "mean accesses between system calls (0: never)")
    mmio_every: int = param(
        0, Int(0, MAX_EVERY), "mean accesses between MMIO accesses (0: never)")
    mmio_device: str = param(
        "uart", Choice(MMIO_DEVICES), "the device the MMIO accesses touch (with mmio_every)")
    sleep_every: int = param(
        0, Int(0, MAX_EVERY), "mean accesses between sleeps (0: never)")
    sleep_us: float = param(0.0, Number(0.0, at_most=MAX_SPAN_US, why="one simulated hour"),
                            "how long each sleep lasts, in µs (with sleep_every)")
    lifetime_accesses: int = param(
        0, Int(0, MAX_EVERY),
        "accesses before a guest process exits and a fresh one takes its place (0: never)")

    def __post_init__(self) -> None:
        if self.kind == "trace" and self.pages is not None:
            object.__setattr__(self, "pages", None)  # a trace has no page count

    def event_rates(self) -> tuple[float, float, float]:
        """``(p_syscall, p_mmio, p_sleep)``: the per-access probabilities."""
        return tuple(0.0 if not v else 1.0 / float(v)
                     for v in (self.syscall_every, self.mmio_every, self.sleep_every))


#: the keys a workload table of each kind may hold, in declaration order
KIND_KEYS: dict[str, tuple[str, ...]] = {
    kind: tuple(p.key for p, _ in declared(Workload) if not p.applies_to or kind in p.applies_to)
    for kind in WORKLOAD_KINDS
}
#: every workload key
WORKLOAD_KEYS: tuple[str, ...] = tuple(p.key for p, _ in declared(Workload))


def _check_keys(raw: Mapping, path: str, kind: str) -> None:
    allowed = KIND_KEYS[kind]
    for key in raw:
        if isinstance(key, str) and key in allowed:
            continue
        full = join(path, key)
        guess = suggest(key, allowed)
        owners = [k for k in WORKLOAD_KINDS if isinstance(key, str) and key in KIND_KEYS[k]]
        if owners:
            hint = f"'{key}' belongs to kind {' or '.join(repr(o) for o in owners)}; "
        elif guess is not None:
            hint = f"did you mean '{join(path, guess)}'? "
        else:
            hint = ""
        raise ConfigError(f"unknown key '{full}' for workload kind '{kind}' "
                          f"({hint}allowed keys: {', '.join(allowed)})")


def read_workload(raw: object, path: str, base_dir: str, defaults: Workload,
                  key_use: Optional[KeyUse] = None) -> Workload:
    """The :class:`Workload` of the raw table ``raw`` at dotted ``path``.

    Absent keys take their values from ``defaults`` (a host task's workload
    has 128 pages by default); keys that do not apply to the kind keep the
    declared defaults.  Relative trace paths are resolved against
    ``base_dir``.  Refuses event rates that add up to more than one event
    per access, and a key set where it does nothing (:data:`_NEEDS`), unless
    ``key_use`` collects it (:class:`~emu.params.fields.KeyUse`: a plan of
    several runs refuses such a key only if it does nothing at any of them).
    Raises :class:`ConfigError` naming the key.
    """
    if not isinstance(raw, Mapping):
        raise ConfigError(
            f"{path}: expected a table such as {{kind = \"working-set\", pages = 40}}, "
            f"got {show(raw)}")
    ctx = Ctx(base_dir)
    params = [p for p, _ in declared(Workload)]
    kind_param = next(p for p in params if p.key == "kind")
    kind = read_value(kind_param, raw, path, ctx, defaults.kind)  # first: it decides the keys
    _check_keys(raw, path, kind)
    ctx.values["kind"] = kind
    for p in params:
        if p is not kind_param and p.key in KIND_KEYS[kind]:
            ctx.values[p.name] = read_value(p, raw, path, ctx, getattr(defaults, p.name))
    workload = Workload(**ctx.values)
    _check_keys_apply(raw, path, workload, key_use)
    rates = workload.event_rates()
    if sum(rates) > 1.0 + 1e-12:
        named = ", ".join(f"{k} = {getattr(workload, k)}" for k, r in
                          zip(("syscall_every", "mmio_every", "sleep_every"), rates) if r)
        raise ConfigError(f"{path}: the events come more often than once per access: "
                          f"1/syscall_every + 1/mmio_every + 1/sleep_every = {sum(rates):g} "
                          f"> 1 ({named})")
    return workload


#: Why a data key does nothing where every access is a fetch.
_ALL_FETCHES = "inst_fraction is 1 (every access is an instruction fetch, none a data access)"

#: Keys that do nothing unless another is set: (key, whether it applies to
#: the workload, why it does nothing otherwise, what to do).
_NEEDS = (
    ("zipf_s", lambda w: w.distribution == "zipf",
     "it is the Zipf exponent, and distribution is 'uniform'", "set distribution = 'zipf'"),
    ("sleep_us", lambda w: w.sleep_every > 0,
     "it is how long each sleep lasts, and sleep_every is 0 (never)", "set sleep_every"),
    ("mmio_device", lambda w: w.mmio_every > 0,
     "it is the device MMIO accesses touch, and mmio_every is 0 (never)", "set mmio_every"),
    ("write_fraction", lambda w: w.kind != "trace" or w.mmio_every > 0,
     "a trace's records are loads and stores of their own, so of a trace it is the share of "
     "stores among the MMIO accesses alone, and mmio_every is 0 (never)", "set mmio_every"),
    ("code_pages", lambda w: w.inst_fraction > 0,
     "it sizes the code loop the instruction fetches walk, and inst_fraction is 0 (no fetch)",
     "set inst_fraction"),
    # (not pages: with inst_fraction 1 it still sizes the memory a VM must hold for
    # its processes, emu.machine.check_guest_memory)
    ("distribution", lambda w: w.inst_fraction < 1,
     f"it is how a data access picks its page, and {_ALL_FETCHES}", "lower inst_fraction"),
    ("zipf_s", lambda w: w.inst_fraction < 1,
     f"it is the Zipf exponent of the data accesses, and {_ALL_FETCHES}",
     "lower inst_fraction"),
    ("stride", lambda w: w.inst_fraction < 1,
     f"it is the bytes between consecutive data accesses of the sweep, and {_ALL_FETCHES}",
     "lower inst_fraction"),
    ("write_fraction", lambda w: w.inst_fraction < 1 or w.mmio_every > 0,
     f"it is the share of stores among the data and MMIO accesses, {_ALL_FETCHES} and "
     "mmio_every is 0 (never)", "lower inst_fraction, set mmio_every"),
)


def _check_keys_apply(raw: Mapping, path: str, w: Workload,
                      key_use: Optional[KeyUse]) -> None:
    """Refuse a key the table sets, to another value than its default, where
    it does nothing (no key is silently ignored); with ``key_use``, collect it
    there instead, with the keys of :data:`_NEEDS` that do something."""
    for key in dict.fromkeys(key for key, *_ in _NEEDS):
        idle = next(((why, advice) for k, applies, why, advice in _NEEDS
                     if k == key and not applies(w)), None)
        default = getattr(Workload(), key)
        if idle is None:
            if key_use is not None and key in KIND_KEYS[w.kind]:
                key_use.used.add(join(path, key))
        elif key in raw and getattr(w, key) != default:
            why, advice = idle
            err = UnusedKey(join(path, key), why, f"{advice} or leave it {show(default)}")
            if key_use is None:
                raise err
            key_use.unused.append(err)


def workload_to_dict(w: Workload) -> dict[str, Any]:
    """``w`` in the TOML shape: only the keys its kind allows."""
    allowed = KIND_KEYS[w.kind]
    return {k: v for k, v in dump(w).items() if k in allowed}


def as_workload(spec: Any, path: str = "stream") -> Workload:
    """``spec`` — a :class:`Workload`, a table in the TOML shape or ``None``
    (every default) — validated as the scenario loader validates a workload
    table at dotted ``path``.  Raises :class:`ConfigError`.

    Of a table, a key set where it does nothing is refused; a Workload holds
    every key, set or not, and the loader that built it from a table judged
    its keys there (over every run of a comparison or a sweep: a run of one
    may hold a key that does something only at another)."""
    key_use = None
    if spec is None:
        spec = {}
    elif isinstance(spec, Workload):
        spec, key_use = workload_to_dict(spec), KeyUse()
    elif not isinstance(spec, Mapping):
        raise ConfigError(f"{path}: expected a Workload or a table, got {show(spec)}")
    return read_workload(spec, path, os.getcwd(), Workload(), key_use)


#: The workload keys a host task refuses, and why: what only a guest process
#: does.  (A host task runs natively: its system calls and exits are not
#: modelled, it touches no emulated device, and every page of its own is
#: writable, so that a store costs it what a load does.)
HOST_REFUSED = (
    ("lifetime_accesses", "only guest processes exit and are replaced; a host task runs for "
                          "the whole run"),
    ("syscall_every", "a host task's system calls are not modelled (only a guest's trap to "
                      "its kernel, and KVM's exits around it, are)"),
    ("mmio_every", "a host task touches no emulated device (only a guest's MMIO access exits "
                   "to QEMU)"),
    ("mmio_device", "a host task touches no emulated device (only a guest's MMIO access "
                    "exits to QEMU)"),
    ("write_fraction", "a host task's store costs what its load does (every page of its own "
                       "is writable, and it makes no MMIO access)"),
)


def check_host_workload(w: Workload, path: str) -> None:
    """Refuse a host task's workload ``w`` (at dotted ``path``) that sets a
    key of :data:`HOST_REFUSED` to another value than its default."""
    for key, why in HOST_REFUSED:
        if getattr(w, key) != getattr(Workload(), key):
            raise _host_refusal(path, key, why)


def _host_refusal(path: str, key: str, why: str) -> ConfigError:
    return ConfigError(f"{join(path, key)}: {why}; leave it {show(getattr(Workload(), key))}")


class WorkloadTable(Kind):
    """The kind of a ``workload`` key: a :class:`Workload` table whose absent
    keys take the field's default workload; a host task's (``host``) refuses
    the keys only a guest process's takes (:data:`HOST_REFUSED`), before it
    judges the others."""

    def __init__(self, host: bool = False):
        self.host = host

    def read(self, value, where, ctx, default):
        if self.host and isinstance(value, Mapping):
            for key, why in HOST_REFUSED:
                if key in value and value[key] != getattr(Workload(), key):
                    raise _host_refusal(where, key, why)
        return read_workload(value, where, ctx.base_dir, default, ctx.key_use)

    def dump(self, value):
        return workload_to_dict(value)

    def describe(self, key, default):
        return describe(Workload, key, default)

"""What the files of a result folder must hold for a report to be made of them.

A report reads files that may come from another version of emu, another
tool, a disk that filled up or a hand that edited them.  Each file is checked
here against a declaration of the keys the report reads, before anything is
drawn: the first key that is missing or of the wrong type or range is named
in one line, ``report: FILE: KEY: expected ..., got ...`` (an
:class:`~emu.errors.EmuError`), and a file that passes can be reported
without a surprise.  Keys the report does not read are not checked.

>>> check({"a": {"b": -1}}, Fields({"a": Fields({"b": COUNT})}), "x.json")
Traceback (most recent call last):
...
emu.errors.EmuError: report: x.json: a.b: expected a count (an integer >= 0), got -1
>>> shorten("x" * 100_000, 12)
'xxxxxx…xxxxx'
"""

from __future__ import annotations

import math
from typing import Any, Optional

import numpy as np

from emu.codes import MISS_CAUSES, PROFILE_STEPS
from emu.errors import EmuError

#: The longest label a report shows (longer ones are shortened in the middle).
LABEL_MAX = 48
#: The most entries a plot's legend lists.
LEGEND_MAX = 24
#: Numbers beyond this size are refused: no counter of a run comes near, and
#: anything larger overflows what a plot can place on an axis.
NUMBER_MAX = 1e18
#: How deep a configuration may nest (a scenario nests four levels).
DEPTH_MAX = 24


def shorten(text, limit: int = LABEL_MAX) -> str:
    """``text`` as a string of at most ``limit`` characters, ``…`` in its middle."""
    text = str(text) if not isinstance(text, str) else text
    if len(text) <= limit:
        return text
    tail = (limit - 1) // 2
    return text[:limit - 1 - tail] + "…" + text[len(text) - tail:]


def short_labels(labels) -> list[str]:
    """Each label shortened (:func:`shorten`) and made unique by a ``#n`` suffix."""
    out: list[str] = []
    seen: set = set()
    for label in labels:
        text = " ".join(shorten(label, 4 * LABEL_MAX).split())   # one line
        text = shorten(text) or "(empty)"
        unique, n = text, 1
        while unique in seen:
            n += 1
            unique = f"{shorten(text, LABEL_MAX - 4)} #{n}"
        seen.add(unique)
        out.append(unique)
    return out


def _shown(v) -> str:
    """A value as an error message shows it: its repr, shortened."""
    if isinstance(v, dict):
        return "an object"
    if isinstance(v, list):
        return "a list"
    return shorten(repr(v), 40)


# -- the declarations ---------------------------------------------------------------------

class Spec:
    """One value's declaration: :meth:`problem` says what is wrong with a value."""

    what = "a value"

    def problem(self, v, path: str) -> Optional[tuple]:
        """None if ``v`` is right, else ``(path, message)`` of the first wrong key."""
        return None if self.accepts(v) else (path, f"expected {self.what}, got {_shown(v)}")

    def accepts(self, v) -> bool:
        return True


class Number(Spec):
    """A finite number (not a boolean) within ``lo`` .. :data:`NUMBER_MAX`;
    ``integer``: an int."""

    def __init__(self, lo: Optional[float] = None, integer: bool = False, hi: float = NUMBER_MAX,
                 what: str = ""):
        self.lo, self.integer, self.hi = lo, integer, hi
        kind = "an integer" if integer else "a number"
        self.what = what or (f"{kind} >= {lo:g}" if lo is not None else kind)

    def accepts(self, v) -> bool:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return False
        if self.integer and not isinstance(v, int):
            return False
        if isinstance(v, float) and not math.isfinite(v):
            return False
        return abs(v) <= self.hi and (self.lo is None or v >= self.lo)


class Text(Spec):
    """A string."""

    what = "a string"

    def accepts(self, v) -> bool:
        return isinstance(v, str)


class Scalar(Spec):
    """A string, a number or a boolean (a label, a seed, a version)."""

    what = "a string or a number"

    def accepts(self, v) -> bool:
        return isinstance(v, (str, bool, int)) or (isinstance(v, float) and math.isfinite(v))


class Nested(Spec):
    """Any JSON value nested at most :data:`DEPTH_MAX` deep (a configuration)."""

    what = f"a value nested at most {DEPTH_MAX} levels deep"

    def accepts(self, v) -> bool:
        stack = [(v, 0)]
        while stack:
            x, depth = stack.pop()
            if depth > DEPTH_MAX:
                return False
            if isinstance(x, dict):
                stack += [(y, depth + 1) for y in x.values()]
            elif isinstance(x, list):
                stack += [(y, depth + 1) for y in x]
        return True


class Null(Spec):
    """``spec`` or null."""

    def __init__(self, spec: Spec):
        self.spec = spec
        self.what = f"{spec.what} or null"

    def problem(self, v, path):
        return None if v is None else self.spec.problem(v, path)


class Opt(Spec):
    """A key of :class:`Fields` that may be missing; when there, ``spec``."""

    def __init__(self, spec: Spec):
        self.spec = spec
        self.what = spec.what

    def problem(self, v, path):
        return self.spec.problem(v, path)


class Fields(Spec):
    """An object with these keys (:func:`Opt` ones may be missing; others are not
    read); ``rest``: what every other key's value must be, if anything."""

    what = "an object"

    def __init__(self, fields: dict, rest: Optional[Spec] = None):
        self.fields, self.rest = fields, rest

    def problem(self, v, path):
        if not isinstance(v, dict):
            return path, f"expected {self.what}, got {_shown(v)}"
        for key, spec in self.fields.items():
            where = f"{path}.{key}" if path else key
            if key not in v:
                if isinstance(spec, Opt):
                    continue
                return where, "missing"
            bad = spec.problem(v[key], where)
            if bad:
                return bad
        if self.rest is not None:
            for key, value in v.items():
                if key not in self.fields:
                    bad = self.rest.problem(value, f"{path}.{key}" if path else str(key))
                    if bad:
                        return bad
        return None


class Each(Fields):
    """An object whose every value is ``spec`` (any keys)."""

    def __init__(self, spec: Spec):
        super().__init__({}, spec)


class List(Spec):
    """A list of ``spec``, at least ``min_len`` long (exactly, with ``exact``)."""

    def __init__(self, spec: Spec, min_len: int = 0, exact: bool = False):
        self.spec, self.min_len, self.exact = spec, min_len, exact
        self.what = ("a list" if not min_len else
                     f"a list of {'' if exact else 'at least '}{min_len}")

    def problem(self, v, path):
        if not isinstance(v, list) or len(v) < self.min_len or (self.exact and
                                                                len(v) != self.min_len):
            return path, f"expected {self.what}, got {_shown(v)}"
        for i, item in enumerate(v):
            bad = self.spec.problem(item, f"{path}[{i}]")
            if bad:
                return bad
        return None


COUNT = Number(0, integer=True, what="a count (an integer >= 0)")
NUMBER = Number()
NONNEG = Number(0)
POSITIVE = Number(1e-9, what="a number > 0")
TEXT = Text()

#: The keys of a run's summary (``summary.json``) that a report reads.
SUMMARY = Fields({
    "config": Fields({
        "name": Opt(Null(TEXT)), "question": Opt(Null(TEXT)),
        "machine": Opt(Fields({"core": Opt(Null(TEXT)), "clock_mhz": Opt(POSITIVE),
                               "hwater": Opt(Null(Number(integer=True)))})),
        "kvm": Opt(Fields({"strategy": Opt(Null(TEXT))})),
    }, rest=Nested()),
    "costs": Fields({"clock_mhz": POSITIVE}, rest=NUMBER),
    "simulated_cycles": COUNT,
    "simulated_us": Opt(NONNEG),
    "measured_cpu_cycles": Opt(COUNT),
    "warmup_cycles": Opt(COUNT),
    "startup_cycles": Opt(COUNT),
    "gfn_to_pfn_calls": Opt(COUNT),
    "cpus": Number(1, integer=True, hi=1 << 16, what="a number of CPUs (an integer >= 1)"),
    "seed": Opt(Null(Scalar())), "backend": Opt(Null(Scalar())),
    "emu_version": Opt(Null(Scalar())),
    "guest_accesses": COUNT,
    "cycles_per_guest_access": Null(NONNEG),
    "cycles": Each(COUNT),
    "exits": Each(Fields({"count": COUNT, "mean_us": Opt(NONNEG), "max_us": Opt(NONNEG),
                          "sum": Opt(COUNT)})),
    "tlb": Fields({
        "guest": Fields({"hits": COUNT, "misses": COUNT, "miss_rate": Opt(Number(0, hi=1)),
                         "misses_by_cause": Fields({c: COUNT for c in MISS_CAUSES})}),
        "host": Fields({"hits": COUNT, "misses": COUNT}),
        "isolation_violations": COUNT,
    }),
    "memory_bytes": Each(COUNT),
    "fastpath_profile": Fields({step: Fields({"count": COUNT, "cycles": COUNT,
                                              "mean": Opt(NONNEG), "hist": Opt(Each(COUNT)),
                                              "entries_hist": Opt(Each(COUNT))})
                                for step in PROFILE_STEPS}),
    "repopulation": Fields({"window": Opt(COUNT), "resumes": COUNT,
                            "misses_per_resume": NONNEG, "misses": List(NONNEG)}),
    "contexts": Opt(List(Fields({"id": Number(integer=True), "name": Scalar(),
                                 "kind": Opt(TEXT)}))),
    # written by emu 0.1 since the settling check; older summaries lack it
    "halves": Opt(Null(Fields({"at_cycles": COUNT, "guest_accesses": List(COUNT, 2, True),
                               "cycles_per_guest_access": List(Null(NONNEG), 2, True)}))),
})

#: ``comparison.json``: the varied key(s) and, per run, its label and summary.
COMPARISON = Fields({
    "key": Opt(Null(TEXT)),
    "runs": List(Fields({"value": Opt(Nested()), "dir": Opt(Null(TEXT)), "summary": SUMMARY}),
                 min_len=1),
})

#: ``sweep.json``: the scenario, the grid and the seeds of a sweep.
SWEEP = Fields({
    "scenario": Opt(Fields({"path": Opt(Null(TEXT)), "config": Opt(Fields({
        "name": Opt(Null(TEXT)), "question": Opt(Null(TEXT))}, rest=Nested()))})),
    "grid": List(Fields({"key": TEXT, "values": List(Nested())})),
    "seeds": Opt(Fields({"count": Opt(Null(COUNT))})),
})

#: ``results.json`` of a study (:mod:`emu.study`).
STUDY = Fields({
    "study": TEXT, "question": Opt(Null(TEXT)), "quick": Opt(Null(Scalar())),
    "numbers": Fields({}, rest=Nested()), "runs": Each(Nested()),
})


def check(value: Any, spec: Spec, file: str) -> Any:
    """``value`` if it fits ``spec``; else EmuError naming ``file`` and the key."""
    bad = spec.problem(value, "")
    if bad:
        path, message = bad
        raise EmuError(f"report: {file}: {path + ': ' if path else ''}{message}")
    return value


# -- the occupancy timeline -----------------------------------------------------------------

def check_timeline(arrays: dict, cpus: int, file: str) -> dict:
    """The arrays of ``timeline.npz`` if they are a TLB occupancy timeline of a
    run on ``cpus`` CPUs: ``time`` (cycles, never decreasing) and ``cpu``, one
    per sample, and ``owner`` [samples, entries] of context ids.  Other members
    are ignored."""
    missing = [k for k in ("time", "cpu", "owner") if k not in arrays]
    if missing:
        raise EmuError(f"report: {file}: not a TLB timeline (no {missing[0]!r}; "
                       "needs time, cpu, owner)")
    time, cpu, owner = arrays["time"], arrays["cpu"], arrays["owner"]
    for name, a, ndim in (("time", time, 1), ("cpu", cpu, 1), ("owner", owner, 2)):
        if a.dtype.kind not in "iu" or a.ndim != ndim:
            raise EmuError(f"report: {file}: {name}: expected {ndim}-D integers, got "
                           f"{a.ndim}-D {a.dtype}")
    n = len(time)
    if len(cpu) != n or owner.shape[0] != n:
        raise EmuError(f"report: {file}: time, cpu and owner differ in length "
                       f"({n}, {len(cpu)}, {owner.shape[0]})")
    if n and owner.shape[1] == 0:
        raise EmuError(f"report: {file}: owner: no TLB entries")
    if n and (time.min() < 0 or np.any(np.diff(time.astype(np.int64)) < 0)):
        raise EmuError(f"report: {file}: time: expected cycles that never decrease")
    if n and (cpu.min() < 0 or cpu.max() >= cpus):
        raise EmuError(f"report: {file}: cpu: expected CPU numbers below {cpus}, "
                       f"got {int(cpu.max() if cpu.max() >= cpus else cpu.min())}")
    return {"time": time, "cpu": cpu, "owner": owner}

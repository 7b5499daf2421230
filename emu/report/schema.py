"""What the files of a result folder must hold for a report to be made of them.

A report reads files that may come from another version of emu, another
tool, a disk that filled up or a hand that edited them.  Each file is checked
here against a declaration of what emu writes, before anything is drawn:
every key emu always writes is required, with its type and range (a key it
writes only sometimes may be missing), and the figures that depend on each
other must agree (:class:`Agrees`: the repopulation curve is as long as its
window, the cycle components add up to the CPU cycles, ...).  The first key
that is missing, of the wrong type or range, or at odds with the others is
named in one line, ``report: FILE: KEY: expected ..., got ...`` (an
:class:`~emu.errors.EmuError`), and a file that passes can be reported
without a surprise.

>>> check({"a": {"b": -1}}, Fields({"a": Fields({"b": COUNT})}), "x.json")
Traceback (most recent call last):
...
emu.errors.EmuError: report: x.json: a.b: expected a count (an integer >= 0), got -1
>>> shorten("x" * 100_000, 12)
'xxxxxx…xxxxx'
>>> join_labels(["shadow", "direct", "direct-save-on-switch"], 30)
'shadow, direct, … (1 more)'
"""

from __future__ import annotations

import math
from typing import Any, Optional

import numpy as np

from emu.codes import CYCLE_CATEGORIES, EXIT_CATEGORIES, MISS_CAUSES, PROFILE_STEPS
from emu.errors import EmuError
from emu.report.columns import clip

#: The longest label a report shows (longer ones are shortened in the middle).
LABEL_MAX = 96
#: The most entries a plot's legend lists.
LEGEND_MAX = 24
#: Numbers beyond this size are refused: no counter of a run comes near, and
#: anything larger overflows what a plot can place on an axis.
NUMBER_MAX = 1e18
#: How deep a configuration may nest (a scenario nests four levels).
DEPTH_MAX = 24


def shorten(text, limit: int = LABEL_MAX) -> str:
    """``text`` as a string of at most ``limit`` columns, ``…`` in its middle."""
    return clip(text if isinstance(text, str) else str(text), limit, "…")


def join_labels(labels, limit: int = 4 * LABEL_MAX) -> str:
    """``labels`` joined by commas, as many whole labels as fit in ``limit``
    characters, then ``… (N more)`` if some are left out: never cut in a label."""
    labels = [str(label) for label in labels]
    shown: list = []
    for n, label in enumerate(labels):
        rest = len(labels) - n - 1
        tail = f", … ({rest} more)" if rest else ""
        if len(", ".join(shown + [label]) + tail) > limit and shown:
            return ", ".join(shown) + f", … ({len(labels) - n} more)"
        shown.append(label)
    return ", ".join(shown)


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


def shown(v) -> str:
    """A value as an error message shows it: its repr, shortened."""
    if isinstance(v, dict):
        return "an object"
    if isinstance(v, list):
        return f"a list of {len(v):,}" if v else "an empty list"
    return shorten(repr(v), 40)


# -- the declarations ---------------------------------------------------------------------

class Spec:
    """One value's declaration: :meth:`problem` says what is wrong with a value."""

    what = "a value"

    def problem(self, v, path: str) -> Optional[tuple]:
        """None if ``v`` is right, else ``(path, message)`` of the first wrong key."""
        return None if self.accepts(v) else (path, f"expected {self.what}, got {shown(v)}")

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


class Bool(Spec):
    """True or false."""

    what = "true or false"

    def accepts(self, v) -> bool:
        return isinstance(v, bool)


class Choice(Spec):
    """One of ``values`` (strings)."""

    def __init__(self, *values: str):
        self.values = values
        self.what = "one of " + ", ".join(values)

    def accepts(self, v) -> bool:
        return isinstance(v, str) and v in self.values


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
            return path, f"expected {self.what}, got {shown(v)}"
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
            return path, f"expected {self.what}, got {shown(v)}"
        for i, item in enumerate(v):
            bad = self.spec.problem(item, f"{path}[{i}]")
            if bad:
                return bad
        return None


class Agrees(Spec):
    """``spec``, and then each of ``rules`` holds: a rule is a function of the
    value that gives ``(key, message)`` when figures that depend on each other
    disagree, else None.  The rules run only on a value that fits ``spec``."""

    def __init__(self, spec: Spec, *rules):
        self.spec, self.rules = spec, rules
        self.what = spec.what

    def problem(self, v, path):
        bad = self.spec.problem(v, path)
        if bad:
            return bad
        for rule in self.rules:
            found = rule(v)
            if found:
                key, message = found
                return (f"{path}.{key}" if path else key), message
        return None


COUNT = Number(0, integer=True, what="a count (an integer >= 0)")
NUMBER = Number()
NONNEG = Number(0)
POSITIVE = Number(1e-9, what="a number > 0")
TEXT = Text()
BOOL = Bool()
#: A seed: what ``seed`` of a scenario accepts.
SEED = Number(0, integer=True, hi=2 ** 64 - 1, what="a seed (an integer >= 0)")
#: A sum of squared exit times: an hour's run of long exits passes NUMBER_MAX.
SUMSQ = Number(0, integer=True, hi=1e300, what="a sum of squares (an integer >= 0)")
SUMSQ_US = Number(0, hi=1e300, what="a sum of squares (a number >= 0)")


# -- the figures of a summary that depend on each other ------------------------------------

def _ratio_agrees(s: dict) -> Optional[tuple]:
    """``cycles_per_guest_access`` is null exactly when there was no guest access."""
    if (s["cycles_per_guest_access"] is None) != (s["guest_accesses"] == 0):
        return ("cycles_per_guest_access",
                f"expected {'null' if s['guest_accesses'] == 0 else 'a number'} with "
                f"guest_accesses = {s['guest_accesses']:,}, got "
                f"{shown(s['cycles_per_guest_access'])}")
    return None


def _cycles_agree(s: dict) -> Optional[tuple]:
    """The cycle components add up to the CPU cycles they break down."""
    total = sum(s["cycles"].values())
    if total != s["measured_cpu_cycles"]:
        return ("cycles", f"the components add up to {total:,}, not to "
                          f"measured_cpu_cycles = {s['measured_cpu_cycles']:,}")
    return None


def _cpus_agree(s: dict) -> Optional[tuple]:
    """One start of the count per CPU; one idle count per CPU, within its
    counted window, and together the idle cycles of the breakdown."""
    n = len(s["cpu_measured_from"])
    if n != s["cpus"]:
        return "cpu_measured_from", f"expected one per CPU ({s['cpus']:,}), got {n:,}"
    idle = s.get("cpu_idle_cycles")
    if idle is None:
        return None
    if len(idle) != n:
        return "cpu_idle_cycles", f"expected one per CPU ({n:,}), got {len(idle):,}"
    for i, (x, start) in enumerate(zip(idle, s["cpu_measured_from"])):
        if x > s["simulated_cycles"] - start:
            return (f"cpu_idle_cycles.{i}", f"{x:,} idle cycles in a counted window of "
                                            f"{s['simulated_cycles'] - start:,}")
    if sum(idle) != s["cycles"].get("idle", 0):
        return ("cpu_idle_cycles", f"they add up to {sum(idle):,}, not to cycles.idle = "
                                   f"{s['cycles'].get('idle', 0):,}")
    return None


def _halves_agree(s: dict) -> Optional[tuple]:
    """The two halves hold every guest access, and each half's cost is null
    exactly when it made none."""
    h = s["halves"]
    if h is None:
        return None
    if sum(h["guest_accesses"]) != s["guest_accesses"]:
        return ("halves.guest_accesses", f"the halves add up to {sum(h['guest_accesses']):,}, "
                f"not to guest_accesses = {s['guest_accesses']:,}")
    for i, (n, x) in enumerate(zip(h["guest_accesses"], h["cycles_per_guest_access"])):
        if (x is None) != (n == 0):
            return (f"halves.cycles_per_guest_access[{i}]",
                    f"expected {'null' if n == 0 else 'a number'} with {n:,} guest accesses "
                    f"in that half, got {shown(x)}")
    return None


def _curve_agrees(rep: dict) -> Optional[tuple]:
    """The repopulation curve has one position per access of its window, and
    misses per resume is a number when a resume was counted (null when none
    was; 0 in a summary of an earlier emu)."""
    if rep["misses_per_resume"] is None and rep["resumes"]:
        return "misses_per_resume", (f"null, though {rep['resumes']:,} resumes were counted")
    for key in ("misses", "accesses"):
        if len(rep[key]) != rep["window"]:
            return key, (f"expected {rep['window']:,} positions (the window), "
                         f"got {len(rep[key]):,}")
    return None


def _causes_agree(tlb: dict) -> Optional[tuple]:
    """Each miss has exactly one cause; each access is a hit or a miss."""
    for side in ("guest", "host"):
        t = tlb[side]
        if sum(t["misses_by_cause"].values()) != t["misses"]:
            return (f"{side}.misses_by_cause", f"the causes add up to "
                    f"{sum(t['misses_by_cause'].values()):,}, not to misses = {t['misses']:,}")
        if t["hits"] + t["misses"] != t["accesses"]:
            return (f"{side}.accesses", f"expected hits + misses = "
                    f"{t['hits'] + t['misses']:,}, got {t['accesses']:,}")
    return None


# -- the files ---------------------------------------------------------------------------

#: A TLB's counters (``tlb.guest``, ``tlb.host``).
_TLB = Fields({
    "accesses": COUNT, "hits": COUNT, "misses": COUNT, "miss_rate": Number(0, hi=1),
    "micro_hits": COUNT, "micro_misses": COUNT, "host_mappings_killed": COUNT,
    "isolation_violations": COUNT, "misses_by_cause": Fields({c: COUNT for c in MISS_CAUSES}),
})
#: One exit category: exact cycles, their µs, and the kernel's whole-µs figures.
_EXIT = Fields({
    **{k: COUNT for k in ("count", "sum", "min", "max")},
    "sumsq": SUMSQ,
    **{k: NONNEG for k in ("sum_us", "min_us", "max_us", "mean_us")},
    "sumsq_us": SUMSQ_US,
    "kernel_us": Fields({**{k: COUNT for k in ("sum", "min", "max")}, "sumsq": SUMSQ}),
})

#: A run's summary (``summary.json``).
SUMMARY = Agrees(Fields({
    "emu_version": TEXT, "versions": Each(Scalar()), "seed": SEED, "backend": TEXT,
    "config": Fields({
        "name": Null(TEXT), "question": Null(TEXT),
        "machine": Fields({"core": TEXT, "clock_mhz": POSITIVE,
                           "hwater": Null(Number(integer=True))}, rest=Nested()),
        "kvm": Fields({"strategy": TEXT, "handler": TEXT, "pfn_source": TEXT},
                      rest=Nested()),
    }, rest=Nested()),
    "design": Fields({"label": TEXT, "hypothetical": BOOL, "commit": Null(TEXT)}),
    "costs": Fields({"clock_mhz": POSITIVE}, rest=NUMBER),
    "simulated_cycles": COUNT,
    "simulated_us": NONNEG,
    "cpus": Number(1, integer=True, hi=1 << 16, what="a number of CPUs (an integer >= 1)"),
    "warmup_cycles": COUNT,
    "cpu_measured_from": List(COUNT),
    "cpu_idle_cycles": Opt(List(COUNT)),     # absent from summaries before it was kept
    "measured_cpu_cycles": COUNT,
    "startup_cycles": COUNT,
    "gfn_to_pfn_calls": COUNT,
    "host_page_faults": COUNT, "guest_page_faults": COUNT, "guest_machine_checks": COUNT,
    "time_to_work_cycles": Null(COUNT), "time_to_work_us": Null(NONNEG),
    "guest_accesses": COUNT,
    "cycles_per_guest_access": Null(NONNEG),
    "cycles": Fields({c: COUNT for c in CYCLE_CATEGORIES}, rest=COUNT),
    "exits": Fields({c: _EXIT for c in EXIT_CATEGORIES}, rest=_EXIT),
    "tlb": Agrees(Fields({"guest": _TLB, "host": _TLB, "isolation_violations": COUNT,
                          "misses_by_cause": Fields({c: COUNT for c in MISS_CAUSES})}),
                  _causes_agree),
    "memory_bytes": Each(COUNT),
    "fastpath_profile": Fields({step: Fields({"count": COUNT, "cycles": COUNT, "mean": NONNEG,
                                              "hist": Each(COUNT),
                                              **({"entries_hist": Each(COUNT)}
                                                 if step == "walk" else {})})
                                for step in PROFILE_STEPS}),
    "repopulation": Agrees(Fields({"window": COUNT, "resumes": COUNT,
                                   "misses_per_resume": Null(NONNEG),
                                   "misses": List(COUNT), "accesses": List(COUNT)}),
                           _curve_agrees),
    "processes": List(Each(Scalar())),
    "contexts": List(Fields({"id": Number(integer=True), "name": TEXT, "kind": TEXT})),
    "miss_log": Opt(Fields({"rows": COUNT, "dropped": Number(integer=True)})),
    # null for a run of equal work (sim.guest_accesses)
    "halves": Null(Fields({"at_cycles": COUNT, "guest_accesses": List(COUNT, 2, True),
                           "cycles_per_guest_access": List(Null(NONNEG), 2, True)})),
}), _ratio_agrees, _cycles_agree, _cpus_agree, _halves_agree)

#: ``comparison.json``: what the labels name, the keys varied and, per run,
#: its label, the values it set, its folder and its summary.
COMPARISON = Fields({
    "key": TEXT, "keys": List(TEXT),
    "runs": List(Fields({"value": TEXT, "values": Each(Scalar()), "dir": TEXT,
                         "summary": SUMMARY}), min_len=1),
})

#: ``sweep.json``: the scenario, the grid, the seeds, the runs and the results table.
SWEEP = Fields({
    "emu_version": TEXT,
    "scenario": Fields({"path": Null(TEXT), "sha256": TEXT, "config": Fields({
        "name": Null(TEXT), "question": Null(TEXT)}, rest=Nested())}),
    "overrides": List(TEXT),
    "grid": List(Fields({"key": TEXT, "values": List(Nested())})),
    "seeds": Fields({"count": Null(COUNT), "root": SEED, "values": List(SEED)}),
    "runs": List(Fields({"index": COUNT, "id": TEXT, "dir": TEXT, "grid": Each(Nested()),
                         "replicate": COUNT, "seed": SEED, "overrides": List(TEXT)})),
    "results": Choice("results.parquet", "results.csv"),
})

#: ``results.json`` of a study (:mod:`emu.study`).
STUDY = Agrees(Fields({
    "study": TEXT, "question": TEXT, "quick": BOOL, "runs_count": COUNT,
    "numbers": Fields({}, rest=Nested()), "runs": Each(Nested()),
}), lambda r: ("runs_count", f"expected at least the {len(r['runs']):,} runs listed, got "
                             f"{r['runs_count']:,}") if r["runs_count"] < len(r["runs"]) else None)


def check(value: Any, spec: Spec, file: str, who: str = "report") -> Any:
    """``value`` if it fits ``spec``; else EmuError naming ``file`` and the key
    (after ``who: ``, the reader's name, when ``who`` is given)."""
    bad = spec.problem(value, "")
    if bad:
        path, message = bad
        raise EmuError(f"{who + ': ' if who else ''}{file}: {path + ': ' if path else ''}"
                       f"{message}")
    return value


def first_difference(a, b, path: str = "") -> Optional[str]:
    """The first key at which two JSON values differ (``""``: at the top), or None."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in list(a) + [k for k in b if k not in a]:
            where = f"{path}.{key}" if path else str(key)
            if key not in a or key not in b:
                return where
            found = first_difference(a[key], b[key], where)
            if found is not None:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return path
        for i, (x, y) in enumerate(zip(a, b)):
            found = first_difference(x, y, f"{path}[{i}]")
            if found is not None:
                return found
        return None
    return None if type(a) is type(b) and a == b else path


def copy_differs(summary: dict, copy: dict, file: str, where: str) -> Optional[str]:
    """None if ``copy`` (``where`` in another file) equals the summary read
    from ``file``; else one line naming the file and the first key that differs."""
    key = first_difference(summary, copy)
    if key is None:
        return None
    return f"{file}: {key or 'the summary'}: differs from its copy in {where}"


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

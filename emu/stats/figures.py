"""The derived figures of a run, written once as formulas over its summary.

Every figure a report, a sweep or a study shows besides the raw counters is
one function here of a summary (the dict :func:`emu.run.run` returns and
``summary.json`` holds), so that the text tables, the HTML page, the plots,
the reading and the studies agree by construction.  A figure whose
denominator is zero is None: the caller says how to show "no figure".

>>> s = {"simulated_cycles": 1000, "cpus": 2, "guest_accesses": 400,
...      "cycles": {"save_restore": 150, "fastpath": 0}}
>>> cycles_per_guest_access(s), share(s, "save_restore"), percent(s, "save_restore")
(5.0, 0.075, 7.5)
>>> per_guest_access(s, "save_restore"), percent(dict(s, cpus=0), "fastpath")
(0.375, None)
"""

from __future__ import annotations

from typing import Optional

from emu.codes import CYCLE_BUCKETS, EXIT_CATEGORIES, MISS_CAUSES, SCAN_BUCKETS
from emu.stats.summary import cpu_cycles

__all__ = [
    "commonest_cause", "commonest_exit", "cpu_cycles", "cycles_per_guest_access",
    "deferral_share", "profile_quantile", "exit_count", "exit_counts", "exit_cycles", "exits",
    "measured_ms", "memory_bytes_kvm", "memory_bytes_total", "miss_path_cycles_per_miss", "miss_percent",
    "misses_per_resume", "misses_per_resume_by_cause", "per_guest_access", "percent",
    "pinned_bytes", "profile_cycles_per_miss", "repopulation_rate", "settled", "share",
    "startup_us",
    "virt_fills",
]

#: The exit-timing pseudo-category that counts time in the guest, not exits.
TIMEINGUEST = "TIMEINGUEST"


def _ratio(part, whole) -> Optional[float]:
    return part / whole if whole else None


# -- CPU time ------------------------------------------------------------------------

def cycles_per_guest_access(s: dict) -> Optional[float]:
    """All CPU cycles (after any warm-up) over the guest accesses: the cost of
    one guest access, every overhead included.  The summary stores it."""
    return _ratio(cpu_cycles(s), s["guest_accesses"])


def share(s: dict, component: str) -> Optional[float]:
    """The fraction of CPU cycles that went to one cycle component."""
    return _ratio(s["cycles"].get(component, 0), cpu_cycles(s))


def percent(s: dict, component: str) -> Optional[float]:
    """:func:`share` in per cent, as 100 × cycles / CPU cycles (which may round
    differently from 100 × share)."""
    return _ratio(100 * s["cycles"].get(component, 0), cpu_cycles(s))


def per_guest_access(s: dict, component: str) -> Optional[float]:
    """One cycle component's cycles per guest access."""
    return _ratio(s["cycles"].get(component, 0), s.get("guest_accesses") or 0)


#: How far apart the two halves' cycles per guest access may be in a run that
#: settled: 10 %.  Runs of the default scenario that count from after the
#: guest's first fill come within 3 %; counting it, they differ by 20 % to 10**4×.
SETTLED_WITHIN = 0.10


def settled(s: dict) -> Optional[bool]:
    """Whether the run settled: the two halves of its counted window cost the
    same per guest access, within SETTLED_WITHIN.  False when a half made no
    guest access; None when the summary cannot tell (a run of equal work, or
    no guest accesses at all).

    >>> settled({"halves": {"cycles_per_guest_access": [1.31, 1.30]}})
    True
    >>> settled({"halves": {"cycles_per_guest_access": [111166.7, 6.0]}})
    False
    """
    halves = s.get("halves")
    if not halves or halves["cycles_per_guest_access"] == [None, None]:
        return None
    first, second = halves["cycles_per_guest_access"]
    if first is None or second is None:
        return False
    return abs(first - second) <= SETTLED_WITHIN * max(first, second)


def startup_us(s: dict) -> float:
    """The start-up work before the guest runs (e.g. pinning guest memory), in µs."""
    return s["startup_cycles"] / s["costs"]["clock_mhz"]


def measured_ms(s: dict, cpu: int = 0) -> float:
    """The simulated time the counters cover on CPU ``cpu``, in ms: the run
    after its warm-up (``sim.warmup_ms``), which the counts are of.

    >>> measured_ms({"simulated_cycles": 3_000_000, "cpu_measured_from": [1_000_000],
    ...              "costs": {"clock_mhz": 400}})
    5.0
    """
    return (s["simulated_cycles"] - s["cpu_measured_from"][cpu]) / s["costs"]["clock_mhz"] / 1e3


# -- exits ----------------------------------------------------------------------------

def exit_counts(s: dict) -> dict:
    """{category: exits} in the kernel's order, TIMEINGUEST left out."""
    return {c: s["exits"][c]["count"] for c in EXIT_CATEGORIES
            if c != TIMEINGUEST and c in s["exits"]}


def exits(s: dict) -> int:
    """Every exit, TIMEINGUEST left out."""
    return sum(exit_counts(s).values())


def commonest_exit(s: dict) -> Optional[tuple]:
    """(category, exits) of the commonest exit (the first in the kernel's order
    on a tie), or None when the summary has no exit categories."""
    counts = exit_counts(s)
    return max(counts.items(), key=lambda cn: cn[1]) if counts else None


def exit_count(s: dict, *categories: str) -> int:
    """Exits of the given categories."""
    return sum(s["exits"][c]["count"] for c in categories)


def exit_cycles(s: dict, *categories: str) -> int:
    """Cycles of the exits of the given categories."""
    return sum(s["exits"][c]["sum"] for c in categories)


def virt_fills(s: dict) -> int:
    """Guest TLB misses KVM filled from the guest TLB (ITLBVIRT + DTLBVIRT exits)."""
    return exit_count(s, "ITLBVIRT", "DTLBVIRT")


# -- TLB misses ------------------------------------------------------------------------

def misses_per_resume(s: dict) -> Optional[float]:
    """Guest TLB misses in the repopulation window after each vcpu_load (None
    when no resume was counted)."""
    return s["repopulation"]["misses_per_resume"]


def repopulation_rate(s: dict) -> Optional[list]:
    """[misses at the k-th guest access after a vcpu_load, per resume] for each k
    of the repopulation window; its sum is :func:`misses_per_resume` (up to rounding)."""
    rep = s["repopulation"]
    return [m / rep["resumes"] for m in rep["misses"]] if rep["resumes"] else None


def misses_per_resume_by_cause(s: dict, cause: str) -> Optional[float]:
    """Guest TLB misses of one cause per resume (e.g. entries lost to the host)."""
    return _ratio(s["tlb"]["guest"]["misses_by_cause"][cause], s["repopulation"]["resumes"])


def commonest_cause(s: dict) -> tuple:
    """(cause, misses) of the commonest cause of guest TLB misses (the first in
    ``MISS_CAUSES`` order on a tie)."""
    causes = s["tlb"]["guest"]["misses_by_cause"]
    top = max(MISS_CAUSES, key=lambda c: (causes.get(c, 0), -MISS_CAUSES.index(c)))
    return top, causes.get(top, 0)


def miss_percent(s: dict, cause: str) -> Optional[float]:
    """The per cent of guest TLB misses that had one cause."""
    return _ratio(100 * s["tlb"]["guest"]["misses_by_cause"].get(cause, 0),
                  s["tlb"]["guest"]["misses"])


def profile_cycles_per_miss(s: dict, step: str) -> Optional[float]:
    """One miss-handler step's cycles over the guest TLB misses: what the step
    adds to the average miss."""
    return _ratio(s["fastpath_profile"][step]["cycles"], s["tlb"]["guest"]["misses"])


def profile_quantile(s: dict, step: str, q: float, entries: bool = False) -> Optional[str]:
    """The bucket of the step profile's histogram that holds its ``q`` quantile
    (0 < q <= 1), as ``"low-high"`` (inclusive; ``"low+"`` for the last, open
    bucket): of the step's cycles, or with ``entries`` of the walk's guest TLB
    entries scanned.  None when the step never ran.

    >>> s = {"fastpath_profile": {"walk": {"hist": {"8": 3, "512": 1}}}}
    >>> profile_quantile(s, "walk", 0.5), profile_quantile(s, "walk", 1.0)
    ('8-15', '512-1023')
    """
    p = s["fastpath_profile"][step]
    hist = p.get("entries_hist" if entries else "hist") or {}
    names = SCAN_BUCKETS if entries else CYCLE_BUCKETS
    total = sum(hist.values())
    if not total:
        return None
    seen = 0
    for i, name in enumerate(names):
        seen += hist.get(name, 0)
        if seen >= q * total:
            break
    if i + 1 == len(names):
        return f"{name}+"
    high = int(names[i + 1]) - 1
    return name if high == int(name) else f"{name}-{high}"


def miss_path_cycles_per_miss(s: dict) -> Optional[float]:
    """Cycles of the miss path (fast path, C path, gfn_to_pfn) per guest TLB miss."""
    c = s["cycles"]
    return _ratio(c["fastpath"] + c["c_path"] + c["gfn_to_pfn"], s["tlb"]["guest"]["misses"])


def deferral_share(s: dict) -> Optional[float]:
    """The fraction of KVM's fills that the assembly handler deferred to C."""
    return _ratio(s["fastpath_profile"]["deferred_c_path"]["count"], virt_fills(s))


# -- memory ------------------------------------------------------------------------------

def memory_bytes_total(s: dict) -> int:
    """Every byte of ``memory_bytes``, the pinned guest pages included."""
    return sum(s["memory_bytes"].values())


def memory_bytes_kvm(s: dict) -> int:
    """KVM's TLB state and pfn bookkeeping: ``memory_bytes`` less the pinned pages."""
    return sum(v for k, v in s["memory_bytes"].items() if k != "pinned_pages")


def pinned_bytes(s: dict) -> int:
    """Bytes of guest pages the pfn source keeps pinned."""
    return s["memory_bytes"].get("pinned_pages", 0)

"""What the studies share: their scenarios, running and recording them, tables.

A study (one module of :mod:`emu.study.studies`) builds its scenarios with
:func:`scenario` (plain dicts in the TOML shape, so that the module shows its
whole experiment), runs them through a :class:`Recorder` -- which keeps each
run's summary and, given an output directory, writes each run's results
(:meth:`emu.run.Result.write`) to ``DIR/runs/<label>/`` as it finishes and
``DIR/results.json`` at the end -- and prints its numbers with :func:`table`,
its sentences and tables fitted to the terminal by
:func:`emu.report.columns.fit_lines`.
:func:`figures` gives the derived figures the studies compare, from one
summary through :mod:`emu.stats.figures` (nothing the summary does not
already hold).

Shared settings (:data:`FAST`): the scheduler tunables are scaled down 10x
(CFS latency 600 us instead of 6 ms) so that a run of a few milliseconds holds
many host context switches, and host and guest page faults cost 50 cycles
instead of 2,500 so that the start-up (first touch of every page) is short:
a study that leaves it out of its counters (``warmup_ms`` of :func:`scenario`,
which sets ``sim.warmup_ms``) needs a shorter warm-up, and a
study that counts from the start holds little of it.  Studies that study
something these settings would hide override them.
"""

from __future__ import annotations

import copy
import json
import os
import sys
import time
from typing import Optional

from emu.kvm import strategies
from emu.report import columns
from emu.report.text import proposal
from emu.run import run
from emu.run.files import write_text
from emu.stats.figures import (deferral_share, miss_path_cycles_per_miss, share,
                               virt_fills)

#: Scheduler tunables scaled 10x down, cheap page faults (see the module docstring).
FAST = {
    "sched_latency_us": 600,
    "sched_min_granularity_us": 75,
    "sched_wakeup_granularity_us": 100,
    "host_page_fault": 50,
    "guest_page_fault": 50,
}

#: Accesses per fast-path call.  It changes no result (docs/design.md §3); a small
#: chunk only avoids generating stream records that a short run never uses.
CHUNK = 4096


def as_ran(design: str) -> dict:
    """The ``kvm`` keys of ``design``: a strategy as its kernel ran it, with
    the C miss handler and the pfn source that kernel had (get_user_pages on
    the 440; a page reference per guest TLB0 entry on the e500), or
    ``STRATEGY + asm``, the strategy with the proposal's assembly handler and
    pfn cache (``direct + asm`` is the proposal).

    >>> as_ran("e500-shadow-ids")
    {'strategy': 'e500-shadow-ids', 'handler': 'c', 'pfn_source': 'guest-tlb-refs'}
    >>> as_ran("direct + asm")
    {'strategy': 'direct', 'handler': 'asm', 'pfn_source': 'pfn-cache'}
    """
    strategy, _, handler = design.partition(" + ")
    if handler:
        return {"strategy": strategy, "handler": handler, "pfn_source": strategies.PROPOSAL[2]}
    pfn = strategies.get(strategy).historical_pfn_source or "gup"
    return {"strategy": strategy, "handler": strategies.HISTORICAL_HANDLER, "pfn_source": pfn}


def scenario(warmup_ms: float = 0.0, **parts) -> dict:
    """A scenario dict (the TOML shape) with FAST costs and CHUNK unless given.

    ``warmup_ms``: that much cold start (the guest faulting its pages in) runs
    before ``duration_ms`` and is left out of the counters."""
    sc = copy.deepcopy(parts)
    sc.setdefault("costs", {})
    sc["costs"] = dict(FAST, **sc["costs"])
    sc.setdefault("sim", {})
    sc["sim"].setdefault("chunk", CHUNK)
    if warmup_ms:
        sc["duration_ms"] = warmup_ms + sc["duration_ms"]
        sc["sim"]["warmup_ms"] = warmup_ms
    return sc


def marked(label: str, numbers: dict) -> str:
    """A run's ``label`` as a study's tables and plots show it: marked
    ``(hypothetical)`` for a machine no kernel shipped, ``(proposal)`` for
    the proposal, by the runs its ``numbers`` name so (``hypothetical_runs``,
    ``proposal_runs``: :meth:`emu.study.Study.run_into` adds them, or a
    :class:`Recorder`'s lists while the study runs)."""
    if label in (numbers.get("hypothetical_runs") or ()):
        return f"{label} (hypothetical)"
    if label in (numbers.get("proposal_runs") or ()):
        return f"{label} (proposal)"
    return label


def safe_label(label: str) -> str:
    """A label usable as a directory name."""
    return "".join(c if c.isalnum() or c in "-_.=" else "_" for c in str(label))


class Recorder:
    """Run scenarios, keep their summaries, and write them if ``out`` is set."""

    def __init__(self, out: str | None = None, verbose: bool = False):
        self.out = out
        self.verbose = verbose
        self.figures: dict[str, dict] = {}
        self.wall = 0.0
        self.runs = 0
        self.last = None                # the last run's Result (summary, tables)
        self.hypothetical: list[str] = []   # the runs of machines no kernel shipped
        self.proposal: list[str] = []       # the runs of the proposal
        #: the runs of designs as a kernel shipped them: label -> the design's
        #: label, which names the commit ("7924bd41 (tid01, C)")
        self.shipped: dict[str, str] = {}

    def run(self, label: str, sc: dict, overrides=()) -> dict:
        """Run one scenario; returns its summary (its Result is written if ``out``)."""
        t0 = time.perf_counter()
        result = run(sc, list(overrides))
        dt = time.perf_counter() - t0
        self.wall += dt
        self.runs += 1
        self.last = result
        if self.out:
            result.write(os.path.join(self.out, "runs", safe_label(label)))
        s = result.summary
        self.figures[label] = figures(s)
        if s["design"]["hypothetical"] and label not in self.hypothetical:
            self.hypothetical.append(label)
        elif proposal(s) and label not in self.proposal:
            self.proposal.append(label)
        elif not s["design"]["hypothetical"] and not proposal(s):
            self.shipped.setdefault(label, s["design"]["label"])
        if self.verbose:
            print(f"  ran {label} in {dt:.2f} s", file=sys.stderr)
        return s

    def finish(self, name: str, question: str, quick: bool, numbers: dict) -> None:
        """Write ``results.json``: the study's numbers and every run's key figures."""
        if not self.out:
            return
        # NOTE: in the order the study made them, not sorted: its runs and the
        # rows and columns of its tables read in that order (cache sizes in
        # increasing order, causes in emu.codes's), in the report and emu.load
        write_text(os.path.join(self.out, "results.json"),
                   json.dumps({"study": name, "question": question, "quick": quick,
                               "runs_count": self.runs, "numbers": numbers,
                               "runs": self.figures}, indent=2) + "\n")


def figures(s: dict) -> dict:
    """The figures the studies compare, derived from one summary."""
    g = s["tlb"]["guest"]
    return {
        "cycles_per_guest_access": s["cycles_per_guest_access"],
        "guest_accesses": s["guest_accesses"],
        "simulated_us": s["simulated_us"],
        "cpus": s["cpus"],
        "guest_misses": g["misses"],
        "miss_rate": g["miss_rate"],
        "misses_by_cause": dict(g["misses_by_cause"]),
        "resumes": s["repopulation"]["resumes"],
        "misses_per_resume": s["repopulation"]["misses_per_resume"],
        "save_restore_share": share(s, "save_restore") or 0.0,
        "cycles_share": {k: share(s, k) or 0.0 for k in s["cycles"]},
        "isolation_violations": s["tlb"]["isolation_violations"],
        "virt_fills": virt_fills(s),
        "deferred_c_paths": s["fastpath_profile"]["deferred_c_path"]["count"],
        "deferral_share": deferral_share(s) or 0.0,
        "miss_path_cycles_per_miss": miss_path_cycles_per_miss(s) or 0.0,
        "memory_bytes": dict(s["memory_bytes"]),
        "exits": {k: v["count"] for k, v in s["exits"].items() if v["count"]},
    }


def table(header: list, rows: list, width: Optional[int] = None, keys: int = 1) -> str:
    """A plain-text table: its first ``keys`` columns (what names a row)
    left-aligned, the others right-aligned, fitted to ``width`` columns if
    given, each block repeating the keys (:func:`emu.report.columns.table`)."""
    return columns.table(header, [[_cell(c) for c in r] for r in rows], width, keys)


def _cell(c) -> str:
    if isinstance(c, float):
        if c != c:                      # NaN
            return "-"
        if abs(c) >= 1000:
            return f"{c:,.0f}"
        if abs(c) >= 10:
            return f"{c:.1f}"
        return f"{c:.3f}"
    if isinstance(c, int) and not isinstance(c, bool):
        return f"{c:,}"
    return "-" if c is None else str(c)


def pct(x: float) -> str:
    return f"{100 * x:.1f}%"

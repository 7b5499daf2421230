"""What the scripts in ``scenarios/`` share: arguments, running, saving, tables.

Every study script is runnable and importable::

    python scenarios/NAME.py [--out DIR] [--quick]      # or EMU_QUICK=1

and has ``study(quick: bool) -> dict`` (the numbers its test checks) and
``main(argv=None)``.  This module keeps them short and alike:

* :func:`parse_args` -- ``--out`` / ``--quick`` (``EMU_QUICK=1`` means quick);
* :class:`Recorder` -- runs scenarios (plain dicts in the TOML shape, so the
  script shows its whole experiment), keeps each run's summary, and, given an
  output directory, writes each run's results (:meth:`emu.run.Result.write`)
  to ``DIR/<label>/`` as it finishes and ``DIR/results.json`` at the end;
* :func:`figures` -- the derived figures the studies compare, from one summary
  through :mod:`emu.stats.figures` (nothing the summary does not already hold);
* :func:`table` -- a plain-text table.

Shared settings (:data:`FAST`): the scheduler tunables are scaled down 10x
(CFS latency 600 us instead of 6 ms) so that a run of a few milliseconds holds
many host context switches, and host and guest page faults cost 50 cycles
instead of 2,500 so that the warm-up (first touch of every page) is short and
the runs measure the steady state.  The model has no way to reset its
counters after a warm-up, so a cheap warm-up is the workaround.  Scripts that
study something these settings would hide override them.
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import time

_HERE = os.path.dirname(os.path.abspath(__file__))
_ROOT = os.path.dirname(_HERE)
if _ROOT not in sys.path:               # run from a checkout without `pip install -e .`
    sys.path.insert(0, _ROOT)

from emu.run import run  # noqa: E402
from emu.run.files import write_json  # noqa: E402
from emu.stats.figures import (deferral_share, exit_count, exit_cycles,  # noqa: E402,F401
                               miss_path_cycles_per_miss, share, virt_fills)

#: Scheduler tunables scaled 10x down, cheap page faults (see the module docstring).
FAST = {
    "sched_latency_us": 600,
    "sched_min_granularity_us": 75,
    "sched_wakeup_granularity_us": 100,
    "host_page_fault": 50,
    "guest_page_fault": 50,
}

#: Accesses per fast-path call.  It changes no result (DESIGN.md §3); a small
#: chunk only avoids generating stream records that a short run never uses.
CHUNK = 4096


def is_quick(flag: bool = False) -> bool:
    """``--quick`` or ``EMU_QUICK`` set to anything but '', '0', 'false', 'no'."""
    env = os.environ.get("EMU_QUICK", "").strip().lower()
    return bool(flag) or env not in ("", "0", "false", "no")


def parse_args(argv, doc: str) -> argparse.Namespace:
    """``--out DIR`` and ``--quick``, with the script's docstring as its help."""
    first = (doc or "").strip().splitlines()[0] if doc else None
    p = argparse.ArgumentParser(description=first,
                                epilog="EMU_QUICK=1 in the environment is the same as --quick.")
    p.add_argument("--out", metavar="DIR", help="write each run's results and results.json here")
    p.add_argument("--quick", action="store_true",
                   help="a short version (a few seconds): fewer points, shorter runs")
    args = p.parse_args(argv)
    args.quick = is_quick(args.quick)
    return args


def scenario(**parts) -> dict:
    """A scenario dict (the TOML shape) with FAST costs and CHUNK unless given."""
    sc = copy.deepcopy(parts)
    sc.setdefault("costs", {})
    sc["costs"] = dict(FAST, **sc["costs"])
    sc.setdefault("sim", {})
    sc["sim"].setdefault("chunk", CHUNK)
    return sc


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
        if self.verbose:
            print(f"  ran {label} in {dt:.2f} s", file=sys.stderr)
        return s

    def finish(self, name: str, doc: str, quick: bool, numbers: dict) -> None:
        """Write ``results.json``: the study's numbers and every run's key figures."""
        if not self.out:
            return
        question = (doc or "").strip().split("\n\n")[0]
        write_json(os.path.join(self.out, "results.json"),
                   {"study": name, "question": question, "quick": quick,
                    "runs_count": self.runs, "numbers": numbers, "runs": self.figures})


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


def table(header: list, rows: list) -> str:
    """A plain-text table: first column left-aligned, the others right-aligned."""
    cells = [[str(h) for h in header]] + [[_cell(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    out = []
    for n, r in enumerate(cells):
        out.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                             for i, (c, w) in enumerate(zip(r, widths))))
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


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


def header(name: str, doc: str, quick: bool) -> str:
    """The script's question (the first paragraph of its docstring) as a banner."""
    question = " ".join((doc or "").strip().split("\n\n")[0].split())
    mode = "quick" if quick else "full"
    return f"== {name} ({mode}) ==\n{question}\n"


def run_study(name: str, doc: str, study, report, argv=None, **study_kw) -> int:
    """What every script's ``main`` does: parse --quick/--out, run the study, print
    its report, write the results.  ``study_kw`` maps study keywords to argument
    names (e.g. ``png_dir="out"``)."""
    args = parse_args(argv, doc)
    print(header(name, doc, args.quick))
    rec = Recorder(args.out)
    t0 = time.perf_counter()
    r = study(args.quick, rec, **{k: getattr(args, v) for k, v in study_kw.items()})
    print(report(r))
    rec.finish(name, doc, args.quick, r)
    print(f"\n{rec.runs} runs in {time.perf_counter() - t0:.1f} s"
          + (f"; results in {args.out}" if args.out else ""))
    return 0

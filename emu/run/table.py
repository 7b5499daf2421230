"""The results table of a sweep: one row per run, the key figures of its summary.

``DIR/results.parquet`` (``results.csv`` without pyarrow) holds, in grid
order, each run's id, grid values, replicate index and seed, its design's
label, whether no kernel shipped it and whether it settled (``design``,
``hypothetical``, ``settled``: :func:`emu.stats.figures.settled`, null for a
run of equal work), and the key figures (:data:`METRICS`).  It is rewritten
atomically from the run directories, so it never depends on the order in
which runs finished.

:func:`format_grid` is what ``emu sweep`` prints at the end: each grid point's
headline figures as the mean and 95 % t-interval over its seeds.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
from typing import Any, Optional

from emu.codes import CYCLE_CATEGORIES, EXIT_CATEGORIES, MISS_CAUSES
from emu.params.fields import toml_text
from emu.report import columns
from emu.report.text import hypothetical
from emu.run.files import atomic_path, write_text
from emu.run.plan import Run, SweepPlan
from emu.stats import figures
from emu.stats.interval import mean_interval


def _cause_column(cause: str) -> str:
    return "misses_" + cause.replace("-", "_")


def _exit_column(category: str) -> str:
    return "exits_" + category.lower()


def _metrics() -> list:
    m = [
        ("cycles_per_guest_access", "float", figures.cycles_per_guest_access),
        ("guest_accesses", "int", lambda s: s["guest_accesses"]),
        ("simulated_cycles", "int", lambda s: s["simulated_cycles"]),
        ("cpus", "int", lambda s: s["cpus"]),
        ("guest_misses", "int", lambda s: s["tlb"]["guest"]["misses"]),
        ("miss_rate", "float", lambda s: s["tlb"]["guest"]["miss_rate"]),
        ("resumes", "int", lambda s: s["repopulation"]["resumes"]),
        ("misses_per_resume", "float", figures.misses_per_resume),
    ]
    m += [(_cause_column(c), "int",
           (lambda c: lambda s: s["tlb"]["guest"]["misses_by_cause"].get(c, 0))(c))
          for c in MISS_CAUSES]
    m += [("exits", "int", figures.exits)]
    m += [(_exit_column(c), "int", (lambda c: lambda s: figures.exit_counts(s).get(c, 0))(c))
          for c in EXIT_CATEGORIES if c != figures.TIMEINGUEST]
    m += [("isolation_violations", "int", lambda s: s["tlb"]["isolation_violations"])]
    m += [(f"{c}_share", "float", (lambda c: lambda s: figures.share(s, c))(c))
          for c in CYCLE_CATEGORIES]
    m += [
        ("miss_path_cycles_per_miss", "float", figures.miss_path_cycles_per_miss),
        ("memory_bytes_total", "int", figures.memory_bytes_total),
        ("memory_bytes_kvm", "int", figures.memory_bytes_kvm),
        ("memory_bytes_pinned", "int", figures.pinned_bytes),
    ]
    return m


#: The key figures of a row: (column, type, function of the summary), each
#: through :mod:`emu.stats.figures`.  ``misses_<cause>``: guest TLB misses by
#: cause; ``exits`` counts every exit but the TIMEINGUEST pseudo-category,
#: ``exits_<category>`` each category's; ``<component>_share``: a cycle
#: component's cycles over the CPU cycles (simulated cycles x CPUs, less any
#: warm-up), so ``fastpath_share`` and ``save_restore_share`` are the
#: fast-path and save/restore shares and the ten add up to 1;
#: ``memory_bytes_total`` sums ``memory_bytes``, ``memory_bytes_kvm`` leaves
#: out the pinned guest pages (the ``memory B`` of ``emu compare``),
#: ``memory_bytes_pinned`` is those pages.
METRICS = _metrics()


def _cast(kind: str, v):
    if v is None:
        return None
    return {"int": int, "float": float, "bool": bool, "str": str}[kind](v)


def summary_row(plan: SweepPlan, run: Run, summary: dict) -> dict:
    """One row of the results table from a run's summary."""
    row: dict[str, Any] = {"run_id": run.id}
    for k, v in run.grid:
        row[k] = plan.columns[k][1][v]
    row["replicate"] = run.replicate
    row["seed"] = int(summary["seed"])
    row["design"] = (summary.get("design") or {}).get("label")
    row["hypothetical"] = hypothetical(summary)
    row["settled"] = figures.settled(summary)        # None: the run cannot tell
    for name, kind, fn in METRICS:
        row[name] = _cast(kind, fn(summary))
    return row


def missing_column(columns, keys) -> Optional[str]:
    """The first column a results table of the grid ``keys`` has whatever
    its runs (its run ids, replicates, seeds and grid values) that
    ``columns`` lacks; None if it lacks none.  A table with no row, as a
    sweep stopped before its first run leaves, still names them."""
    return next((c for c in ["run_id", "replicate", "seed", *keys] if c not in columns), None)


def _columns(plan: SweepPlan) -> list[tuple[str, str]]:
    cols = [("run_id", "str")] + [(k, plan.columns[k][0]) for k, _ in plan.grid]
    cols += [("replicate", "int"), ("seed", "uint"), ("design", "str"), ("hypothetical", "bool"),
             ("settled", "bool")]
    cols += [(name, kind) for name, kind, _ in METRICS]
    out: dict = {}
    for name, kind in cols:      # a grid key "seed" is the seed column
        out.setdefault(name, "uint" if name == "seed" else kind)
    return list(out.items())


def _have_pyarrow() -> bool:
    try:
        import pyarrow  # noqa: F401
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        return False
    return True


#: The grid key whose value names a point's design.
STRATEGY_KEY = "kvm.strategy"
#: The results table's two forms: Parquet (with pyarrow), CSV (without).
TABLE_NAMES = ("results.parquet", "results.csv")


def table_name() -> str:
    """The results table's file name: Parquet if pyarrow is there, else CSV."""
    return TABLE_NAMES[0] if _have_pyarrow() else TABLE_NAMES[1]


def table_path(out_dir: str, named=None) -> Optional[str]:
    """The sweep's results table in ``out_dir``: the file its ``sweep.json``
    names (``named``) if it is there; else (no name: an earlier emu's
    sweep.json; or the named one gone) the newer of the two forms that is
    there; None when neither is.

    NOTE: a sweep written with pyarrow and extended without it (or the other
    way round) by an earlier emu holds both forms, one of them stale."""
    if named in TABLE_NAMES and os.path.isfile(os.path.join(out_dir, named)):
        return os.path.join(out_dir, named)
    there = [p for p in (os.path.join(out_dir, n) for n in TABLE_NAMES) if os.path.isfile(p)]
    return max(there, key=os.path.getmtime) if there else None


def write_table(plan: SweepPlan, out_dir: str, rows: list) -> str:
    """Write ``rows`` (grid order) to DIR/results.parquet (or .csv), atomically."""
    cols = _columns(plan)
    path = os.path.join(out_dir, table_name())
    if path.endswith(".parquet"):
        import pyarrow as pa
        import pyarrow.parquet as pq
        types = {"str": pa.string(), "int": pa.int64(), "uint": pa.uint64(),
                 "float": pa.float64(), "bool": pa.bool_()}
        schema = pa.schema([(name, types[kind]) for name, kind in cols])
        table = pa.Table.from_pylist([{n: r.get(n) for n, _ in cols} for r in rows],
                                     schema=schema)
        with atomic_path(path, suffix=".parquet") as tmp:
            pq.write_table(table, tmp)
    else:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow([n for n, _ in cols])
        for r in rows:
            w.writerow(["" if r.get(n) is None else
                        ("true" if r[n] else "false") if isinstance(r[n], bool) else
                        repr(r[n]) if isinstance(r[n], float) else r[n] for n, _ in cols])
        write_text(path, buf.getvalue())
    for other in TABLE_NAMES:       # the other form, an earlier table: not left beside it
        if other != os.path.basename(path):
            with contextlib.suppress(FileNotFoundError):
                os.remove(os.path.join(out_dir, other))
    return path


def read_table(out_dir: str, named=None) -> list[dict]:
    """The rows of DIR's results table (parquet, or CSV as strings): the one
    its sweep.json names (``named``; see :func:`table_path`)."""
    p = table_path(out_dir, named) or os.path.join(out_dir, TABLE_NAMES[1])
    if p.endswith(".parquet"):
        import pyarrow.parquet as pq
        return pq.read_table(p).to_pylist()
    with open(p, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))




# -- the grid's table: mean and 95 % interval over the seeds of each point -------------

#: What ``emu sweep`` prints of each grid point: (column, header, scale, format).
PRINTED = (
    ("cycles_per_guest_access", "cycles/access", 1, "{:,.3f}"),
    ("misses_per_resume", "misses/resume", 1, "{:.1f}"),
    ("guest_misses", "guest misses", 1, "{:,.0f}"),
    ("exits", "exits", 1, "{:,.0f}"),
    ("save_restore_share", "save/restore %", 100, "{:.2f}"),
    ("fastpath_share", "fast path %", 100, "{:.2f}"),
    ("memory_bytes_kvm", "memory B", 1, "{:,.0f}"),
)


def grid_text(value) -> str:
    """A grid value as --grid and TOML write it (``false``, not ``False``)."""
    return toml_text(value) if isinstance(value, bool) else str(value)


def grid_points(rows: list, keys: list, columns: list) -> list[dict]:
    """One dict per grid point, in the order the rows first reach it: the
    values of ``keys``, ``n`` (the point's runs) and, for each of ``columns``,
    ``(mean, half-width of the 95 % t-interval)`` over the point's runs
    (:func:`emu.stats.interval.mean_interval`; no interval for one run);
    ``counts``: {column: the runs that have a value of it}, fewer than ``n``
    where a run has none (misses per resume, of a run with no resume)."""
    groups: dict = {}
    for r in rows:
        groups.setdefault(tuple(r[k] for k in keys), []).append(r)
    points = []
    for values, runs in groups.items():
        point = dict(zip(keys, values), n=len(runs), counts={})
        for c in columns:
            m, mean, half = mean_interval(r.get(c) for r in runs)
            point[c] = (mean, half)
            point["counts"][c] = m
        points.append(point)
    return points


def format_grid(rows: list, keys: list, width=None) -> str:
    """The grid's table as text (what ``emu sweep`` prints at the end): one
    line per point, its grid values, ``n`` and the :data:`PRINTED` figures as
    mean ± half-width of the 95 % t-interval over the point's seeds; with one
    run per point, the values alone and a note that n=1 has no interval.
    Fitted to ``width`` columns if given, each block of columns repeating
    the grid values."""
    points = grid_points(rows, keys, [c for c, _, _, _ in PRINTED])
    header = (list(keys) or ["grid"]) + ["n"] + [h for _, h, _, _ in PRINTED]
    marked = {tuple(r[k] for k in keys) for r in rows if r.get("hypothetical") in (True, "true")}
    proposed = {tuple(r[k] for k in keys) for r in rows
                if str(r.get("design") or "").startswith("proposal: ")}
    lines, fewer = [], False
    for p in points:
        cells = [grid_text(p[k]) for k in keys] or ["(no grid)"]
        # the mark goes on the design's cell, the strategy's where it is a grid key
        at = keys.index(STRATEGY_KEY) if STRATEGY_KEY in keys else -1
        if tuple(p[k] for k in keys) in marked and len(marked) < len(points):
            cells[at] += " (hypothetical)"        # a machine no kernel shipped
        elif tuple(p[k] for k in keys) in proposed and len(proposed) < len(points):
            cells[at] += " (proposal)"            # which no kernel shipped either
        cells.append(str(p["n"]))
        for col, _, scale, fmt in PRINTED:
            mean, half = p[col]
            cell = ("-" if mean is None else fmt.format(scale * mean) if half is None
                    else f"{fmt.format(scale * mean)} ± {fmt.format(scale * half)}")
            m = p["counts"][col]
            if mean is not None and m < p["n"]:     # over fewer runs than the point's n
                cell += f" (n={m})"
                fewer = True
            cells.append(cell)
        lines.append(cells)
    ns = sorted({p["n"] for p in points})
    if ns == [1]:
        title = "grid points (n=1: one run per point, no interval)"
    else:
        over = f"{ns[0]} seeds" if len(ns) == 1 else "the runs of each point (n)"
        title = f"grid points: mean ± 95 % t-interval over {over}"
    if marked and len(marked) == len(points):
        title += "; every point a hypothetical machine, which no kernel shipped"
    elif proposed and len(proposed) == len(points):
        title += "; every point the proposal (direct + asm + pfn-cache), which no kernel shipped"
    parts = [title, columns.table(header, lines, width, max(len(keys), 1))]
    if fewer:
        parts.append("(n=K after a figure: only K of the point's runs have it, e.g. misses per "
                     "resume of a run with no resume; its interval is over those K)")
    return columns.fit_lines(parts, width)

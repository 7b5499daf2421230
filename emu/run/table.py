"""The results table of a sweep: one row per run, the key figures of its summary.

``DIR/results.parquet`` (``results.csv`` without pyarrow) holds, in grid
order, each run's id, grid values, replicate index and seed, and the key
figures (:data:`METRICS`).  It is rewritten atomically from the run
directories, so it never depends on the order in which runs finished.
"""

from __future__ import annotations

import csv
import io
import os
from typing import Any

from emu.codes import MISS_CAUSES
from emu.run.files import atomic_path, write_text
from emu.run.plan import Run, SweepPlan
from emu.stats.summary import cpu_cycles


def _cause_column(cause: str) -> str:
    return "misses_" + cause.replace("-", "_")


def _share(part, whole):
    return part / whole if whole else None


def _metrics() -> list:
    m = [
        ("cycles_per_guest_access", "float", lambda s: s["cycles_per_guest_access"]),
        ("guest_accesses", "int", lambda s: s["guest_accesses"]),
        ("simulated_cycles", "int", lambda s: s["simulated_cycles"]),
        ("cpus", "int", lambda s: s["cpus"]),
        ("guest_misses", "int", lambda s: s["tlb"]["guest"]["misses"]),
        ("miss_rate", "float", lambda s: s["tlb"]["guest"]["miss_rate"]),
        ("misses_per_resume", "float", lambda s: s["repopulation"]["misses_per_resume"]),
    ]
    m += [(_cause_column(c), "int",
           (lambda c: lambda s: s["tlb"]["guest"]["misses_by_cause"].get(c, 0))(c))
          for c in MISS_CAUSES]
    m += [
        ("exits", "int",
         lambda s: sum(e["count"] for k, e in s["exits"].items() if k != "TIMEINGUEST")),
        ("isolation_violations", "int", lambda s: s["tlb"]["isolation_violations"]),
        ("save_restore_share", "float",
         lambda s: _share(s["cycles"]["save_restore"], cpu_cycles(s))),
        ("memory_bytes_total", "int", lambda s: sum(s["memory_bytes"].values())),
        ("memory_bytes_kvm", "int",
         lambda s: sum(v for k, v in s["memory_bytes"].items() if k != "pinned_pages")),
    ]
    return m


#: The key figures of a row: (column, type, function of the summary).
#: ``exits`` counts every exit but the TIMEINGUEST pseudo-category;
#: ``save_restore_share`` is the save/restore cycles over simulated cycles x
#: CPUs; ``memory_bytes_total`` sums ``memory_bytes``, ``memory_bytes_kvm``
#: leaves out the pinned guest pages (the ``memory B`` of ``emu compare``).
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
    for name, kind, fn in METRICS:
        row[name] = _cast(kind, fn(summary))
    return row


def _columns(plan: SweepPlan) -> list[tuple[str, str]]:
    cols = [("run_id", "str")] + [(k, plan.columns[k][0]) for k, _ in plan.grid]
    cols += [("replicate", "int"), ("seed", "uint")]
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


def table_name() -> str:
    """The results table's file name: Parquet if pyarrow is there, else CSV."""
    return "results.parquet" if _have_pyarrow() else "results.csv"


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
    return path


def read_table(out_dir: str) -> list[dict]:
    """The rows of DIR's results table (parquet, or CSV as strings)."""
    p = os.path.join(out_dir, "results.parquet")
    if os.path.exists(p) and _have_pyarrow():
        import pyarrow.parquet as pq
        return pq.read_table(p).to_pylist()
    with open(os.path.join(out_dir, "results.csv"), encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))



"""Run a scenario over a grid of values and seeds (``emu sweep``).

::

    emu sweep FILE.toml --grid kvm.strategy=shadow,direct \\
                        --grid vm.0.process.0.workload.pages=40,80 --seeds 3 --out DIR

runs the factorial product of the grids (2 x 2 points here), each point
``--seeds`` times (12 runs), on a process pool (``--executor local``, the
default, ``--workers`` processes; ``--workers 1`` runs in this process) or on a
Dask cluster (``--executor dask --scheduler ADDRESS``; without ``--scheduler``
a ``LocalCluster`` of ``--workers`` processes on 127.0.0.1).

What it writes into DIR
-----------------------
- ``runs/<id>/``: each run's ``summary.json``, tidy CSVs and ``run.json``
  (:meth:`emu.scenario.Result.write`, every file atomic, ``summary.json``
  last: its presence marks the run done).  ``<id>`` is a stable hash of the
  scenario file's bytes and the run's overrides (``--set`` ones, then the
  grid's, then ``seed=``), so a run's directory never depends on the order
  or the executor, and an extended grid reuses the runs it already has.
- ``results.parquet`` (``results.csv`` without pyarrow): one row per run in
  grid order (the first ``--grid`` varies slowest, the seed fastest) with the
  run id, the grid values, the replicate index, the seed and the key figures
  (:data:`METRICS`); rewritten atomically from the run directories every
  :data:`TABLE_EVERY` seconds and at the end, whatever the completion order.
- ``sweep.json``: the scenario, the grid, the seeds and the run list.

Seeds
-----
Without ``--seeds`` every run keeps the scenario's seed (a one-point sweep is
``emu run``).  With ``--seeds N``, replicate ``i`` of every point gets the seed
``SeedSequence(root, spawn_key=(i,)).generate_state(1)[0]``, ``root`` being the
scenario's seed after ``--set``: the same N seeds at every point (common
random numbers), stable whatever N is.

Resuming
--------
Re-running the same command after an interruption (Ctrl-C, a killed worker, a
killed ``emu sweep``) skips the runs whose ``summary.json`` is there and runs
the others; leftover temporary files (``.NAME.XXXXXXXX.tmp``) are removed
first.  A lock (``DIR/.sweep.lock``) keeps two sweeps out of one DIR at once.

Exit status: 0 done; 2 bad input (one line on stderr, nothing written: every
run's configuration is validated before anything starts, and a Dask
scheduler is connected to before DIR is touched); 1 a worker process died;
130 interrupted.  A run that fails (e.g. a trace file that is missing) stops
the sweep: nothing more is submitted, the runs in flight finish, and the
error names the run (exit 2 for an EmuError).  With Dask, ``--out`` must be on
a filesystem the workers share (true of a LocalCluster): the workers write
the run directories, and the sweep says so if it cannot see them.

Python API
----------
>>> rows = run_sweep("s.toml", ["kvm.strategy=shadow,direct"], seeds=2,
...                  out_dir="out", workers=2)               # doctest: +SKIP
>>> sweep_throughput("s.toml", ["kvm.strategy=shadow,direct"], seeds=4,
...                  executor="dask", workers=2)             # doctest: +SKIP
{'runs': 8, 'seconds': ..., 'runs_per_minute': ..., ...}

``tools/bench.py`` can measure runs per minute with :func:`sweep_throughput`:
``workers=1`` (serial, in process), ``workers=2`` (a 2-process pool) and
``executor="dask", workers=2`` (a 2-worker ``LocalCluster`` started before the
clock starts, or ``scheduler=ADDRESS`` for an existing one); each call runs
into a fresh temporary directory, so nothing is skipped.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import hashlib
import io
import itertools
import json
import math
import os
import queue
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Iterable, Optional, Sequence

from emu.atomic import atomic_path, write_json, write_text
from emu.cliargs import int_arg
from emu.errors import ConfigError, EmuError

__all__ = [
    "METRICS", "Run", "SweepPlan", "SweepInterrupted", "SweepError",
    "add_sweep_parser", "cmd_sweep", "main", "parse_grid", "plan_sweep", "run_sweep",
    "execute_run", "derive_seed", "run_id", "read_table", "sweep_throughput",
]

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

#: Seconds between two rewrites of the results table during a sweep.
TABLE_EVERY = 30.0
#: Seconds between two progress lines (also one line per 10 % of the runs).
LINE_EVERY = 10.0

_ID_VERSION = 1
_TMP_FILE = re.compile(r"\A\..+\.[A-Za-z0-9_]{8}\.tmp(\.[A-Za-z0-9]+)?\Z")


class SweepInterrupted(KeyboardInterrupt):
    """Ctrl-C during a sweep: ``done`` of ``total`` runs are in ``out_dir``."""

    def __init__(self, done: int, total: int, out_dir: str):
        super().__init__(f"{done} of {total} runs done")
        self.done, self.total, self.out_dir = done, total, out_dir


class SweepError(RuntimeError):
    """A sweep that could not finish (a worker died, a run failed); one line."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))
        self.done = self.total = 0      # set by run_sweep once the sweep has stopped


# ---------------------------------------------------------------------------
# The plan: grid x seeds -> runs
# ---------------------------------------------------------------------------


def _split_values(text: str) -> list[str]:
    """Split ``v1,v2,...`` at top-level commas (not inside [], {} or quotes)."""
    out, cur, depth, quote, escape = [], [], 0, None, False
    for ch in text:
        if quote:
            if escape:
                escape = False
            elif ch == "\\" and quote == '"':
                escape = True
            elif ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            out.append("".join(cur).strip())
            cur = []
            continue
        cur.append(ch)
    out.append("".join(cur).strip())
    return out


def parse_grid(spec) -> tuple[str, list[str]]:
    """``"key=v1,v2,..."`` (or ``(key, [values])``) -> ``(key, [value texts])``.

    Values are split at commas outside brackets and quotes, so
    ``costs.x=[1,2],[3,4]`` has two values.  Raises :class:`ConfigError`.
    """
    if isinstance(spec, str):
        key, sep, values = spec.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--grid expects KEY=V1,V2,... (e.g. kvm.strategy=shadow,direct), "
                              f"got {spec!r}")
        vals = _split_values(values)
    else:
        try:
            key, vals = spec
        except (TypeError, ValueError):
            raise ConfigError(f"grid: expected 'KEY=V1,V2,...' or (key, values), got {spec!r}") \
                from None
        key = str(key).strip()
        if isinstance(vals, (str, bytes)) or not isinstance(vals, Iterable):
            vals = [vals]
        vals = [_value_text(v) for v in vals]
        if not key:
            raise ConfigError(f"grid: empty key in {spec!r}")
    if not vals or any(v == "" for v in vals):
        raise ConfigError(f"--grid {key}: empty value in {spec if isinstance(spec, str) else vals!r}"
                          f" (expected KEY=V1,V2,...)")
    seen = set()
    for v in vals:
        if v in seen:
            raise ConfigError(f"--grid {key}: value {v!r} given twice")
        seen.add(v)
    return key, vals


def _value_text(v) -> str:
    """A Python value as the text ``--set`` takes (TOML-ish)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    return str(v).strip()


def _parse_value(text: str):
    """The TOML value of ``text`` if it is a scalar one, else the text itself."""
    from emu.params.load import tomllib     # tomllib, or tomli before Python 3.11
    try:
        parsed = tomllib.loads("v = " + text)
    except Exception:
        return text
    v = parsed.get("v") if list(parsed) == ["v"] else None
    if isinstance(v, (bool, int, float, str)):
        return v
    return text


def _typed_column(texts: list[str]) -> tuple[str, list]:
    """(arrow-ish type name, values) for one grid column: bool, int, float or str."""
    vals = [_parse_value(t) for t in texts]
    if all(isinstance(v, bool) for v in vals):
        return "bool", vals
    if all(isinstance(v, int) and not isinstance(v, bool) for v in vals):
        if all(-2**63 <= v < 2**63 for v in vals):
            return "int", vals
        return "str", list(texts)
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vals):
        return "float", [float(v) for v in vals]
    return "str", [v if isinstance(v, str) else t for v, t in zip(vals, texts)]


def derive_seed(root: int, index: int) -> int:
    """Replicate ``index``'s seed, spawned from ``root`` (stable for any N)."""
    import numpy as np
    return int(np.random.SeedSequence(int(root), spawn_key=(int(index),)).generate_state(1)[0])


def run_id(scenario_sha256: str, overrides: Sequence[str]) -> str:
    """The stable id of a run: a hash of the scenario's bytes and its overrides."""
    text = json.dumps({"v": _ID_VERSION, "scenario": scenario_sha256,
                       "overrides": list(overrides)}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class Run:
    """One run of a sweep, in grid order (``index``)."""

    index: int
    id: str
    overrides: tuple           # --set, then the grid's, then seed= (when --seeds)
    grid: tuple                # ((key, value text), ...) in --grid order
    replicate: int
    seed: int

    @property
    def label(self) -> str:
        point = ", ".join(f"{k}={v}" for k, v in self.grid)
        return f"run {self.id} ({point + ', ' if point else ''}seed {self.seed})"


@dataclass
class SweepPlan:
    """A validated sweep: the scenario, the grid, the seeds and the runs."""

    scenario_path: Optional[str]
    scenario_sha256: str
    scenario_data: dict        # the raw TOML data, as the workers get it
    base_dir: str
    overrides: list
    grid: list                 # [(key, [value texts])]
    seeds: Optional[int]
    root_seed: int
    runs: list
    columns: dict = field(default_factory=dict)   # grid key -> (type, {text: value})

    def to_json(self) -> dict:
        from emu import __version__
        from emu.params import scenario_from_dict, scenario_to_dict
        base = scenario_to_dict(scenario_from_dict(self.scenario_data, self.overrides,
                                                   base_dir=self.base_dir))
        return {
            "emu_version": __version__,
            "scenario": {"path": self.scenario_path, "sha256": self.scenario_sha256,
                         "config": base},
            "overrides": list(self.overrides),
            "grid": [{"key": k, "values": list(v)} for k, v in self.grid],
            "seeds": {"count": self.seeds, "root": self.root_seed,
                      "values": list(dict.fromkeys(r.seed for r in self.runs))},
            "results": _table_name(),
            "runs": [{"index": r.index, "id": r.id, "dir": f"runs/{r.id}",
                      "grid": {k: v for k, v in r.grid}, "replicate": r.replicate,
                      "seed": r.seed, "overrides": list(r.overrides)} for r in self.runs],
        }


def _load_scenario_source(scenario) -> tuple[Optional[str], bytes, dict, str]:
    """(path, bytes hashed for run ids, raw data, base_dir) of a path, dict or Scenario."""
    from emu.params import Scenario, load_scenario, scenario_to_dict
    if isinstance(scenario, (Scenario, dict)):
        data = scenario_to_dict(scenario) if isinstance(scenario, Scenario) else dict(scenario)
        base_dir = scenario.base_dir if isinstance(scenario, Scenario) else os.getcwd()
        try:
            content = json.dumps(data, sort_keys=True).encode("utf-8")
        except (TypeError, ValueError):
            raise ConfigError("scenario: expected JSON-like data") from None
        return None, content, data, base_dir
    try:
        path = os.fspath(scenario)
    except TypeError:
        raise ConfigError(f"scenario file: expected a path, got {scenario!r}") from None
    try:
        with open(path, "rb") as f:
            content = f.read()
        from emu.params.load import tomllib
        data = tomllib.loads(content.decode("utf-8"))
    except Exception:
        load_scenario(path)      # raises the ConfigError `emu run` would (one line)
        raise
    return os.path.abspath(path), content, data, os.path.dirname(os.path.abspath(path))


def plan_sweep(scenario, grids=(), seeds: Optional[int] = None, overrides=()) -> SweepPlan:
    """Validate a sweep and list its runs in grid order; writes nothing.

    ``grids``: ``"key=v1,v2"`` strings, ``(key, values)`` pairs or a dict
    ``{key: values}``.  Every run's configuration is validated here; the first
    bad one raises :class:`ConfigError` naming the key (and the grid point).
    """
    from emu.params import scenario_from_dict

    if isinstance(grids, dict):
        grids = list(grids.items())
    elif isinstance(grids, str):
        grids = [grids]
    grid = [parse_grid(g) for g in grids]
    overrides = [overrides] if isinstance(overrides, str) else [str(o) for o in overrides]
    keys = [k for k, _ in grid]
    for k in keys:
        if keys.count(k) > 1:
            raise ConfigError(f"--grid {k}: the key is given twice")
    set_keys = {o.partition("=")[0].strip() for o in overrides}
    for k in keys:
        if k in set_keys:
            raise ConfigError(f"--grid {k}: the key is also given with --set")
    if seeds is not None:
        if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
            raise ConfigError(f"--seeds: expected a positive integer, got {seeds!r}")
        if "seed" in keys:
            raise ConfigError("--grid seed: cannot vary the seed with --seeds too "
                              "(--seeds N spawns the seeds from the scenario's seed)")

    path, content, data, base_dir = _load_scenario_source(scenario)
    base = scenario_from_dict(data, overrides, base_dir=base_dir)   # --set alone
    root = base.seed
    sha = hashlib.sha256(content).hexdigest()
    replicate_seeds = [derive_seed(root, i) for i in range(seeds)] if seeds else [None]

    runs = []
    for point in itertools.product(*[[(k, v) for v in vals] for k, vals in grid]):
        point_overrides = [f"{k}={v}" for k, v in point]
        try:
            point_cfg = scenario_from_dict(data, overrides + point_overrides, base_dir=base_dir)
        except ConfigError as err:
            where = ", ".join(point_overrides)
            raise ConfigError(f"--grid {where}: {err}") from None
        for i, seed in enumerate(replicate_seeds):
            ov = overrides + point_overrides + ([f"seed={seed}"] if seed is not None else [])
            if seed is not None:     # the seed is always valid, but say so if it is not
                scenario_from_dict(data, ov, base_dir=base_dir)
            runs.append(Run(index=len(runs), id=run_id(sha, ov), overrides=tuple(ov),
                            grid=tuple(point), replicate=i,
                            seed=point_cfg.seed if seed is None else seed))
    columns = {}
    for k, vals in grid:
        kind, typed = _typed_column(vals)
        columns[k] = (kind, dict(zip(vals, typed)))
    return SweepPlan(path, sha, data, base_dir, overrides, grid, seeds, root, runs, columns)


# ---------------------------------------------------------------------------
# One run (what the workers execute)
# ---------------------------------------------------------------------------


def execute_run(scenario_data: dict, base_dir: str, overrides, run_dir: str,
                meta: Optional[dict] = None) -> dict:
    """Run the scenario ``scenario_data`` (raw TOML data) with ``overrides``,
    write the results into ``run_dir`` (summary.json last) and return the
    summary.  Pure: same arguments, same files and summary, on any executor.
    """
    from emu.params import scenario_from_dict
    from emu.scenario import run

    result = run(scenario_from_dict(scenario_data, list(overrides), base_dir=base_dir))
    if meta:
        result.execution = dict(result.execution, sweep=meta)
    result.write(run_dir)
    return result.summary


def _read_summary(run_dir: str) -> Optional[dict]:
    """The run's summary if it is complete, else None."""
    try:
        with open(os.path.join(run_dir, "summary.json"), encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


# ---------------------------------------------------------------------------
# The results table
# ---------------------------------------------------------------------------


def _cause_column(cause: str) -> str:
    return "misses_" + cause.replace("-", "_")


def _share(part, whole):
    return part / whole if whole else None


def _metrics() -> list:
    from emu.codes import MISS_CAUSES

    from emu.stats.summary import cpu_cycles as total_cycles

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
         lambda s: _share(s["cycles"]["save_restore"], total_cycles(s))),
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


def _table_name() -> str:
    return "results.parquet" if _have_pyarrow() else "results.csv"


def write_table(plan: SweepPlan, out_dir: str, rows: list) -> str:
    """Write ``rows`` (grid order) to DIR/results.parquet (or .csv), atomically."""
    cols = _columns(plan)
    path = os.path.join(out_dir, _table_name())
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


# ---------------------------------------------------------------------------
# Progress
# ---------------------------------------------------------------------------


def _fmt_s(seconds: float) -> str:
    if seconds < 10:
        return f"{max(0.0, seconds):.1f} s"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    m, s = divmod(seconds, 60)
    if m < 60:
        return f"{m} min {s:02d} s"
    h, m = divmod(m, 60)
    return f"{h} h {m:02d} min"


class _Progress:
    """Runs done: a tqdm bar, plain lines (every LINE_EVERY s or 10 %) or nothing."""

    def __init__(self, mode: Optional[str], total: int, done: int, what: str, stream=None):
        self.stream = stream or sys.stderr
        if mode in (None, "none"):
            mode = "none"
        elif mode == "auto":
            mode = "bar" if getattr(self.stream, "isatty", lambda: False)() else "lines"
        elif mode not in ("bar", "lines"):
            raise ConfigError(f"--progress: expected auto, bar, lines or none, got {mode!r}")
        self.mode, self.total, self.done, self.start_done = mode, total, done, done
        self.t0 = self.last = time.monotonic()
        self.last_decile = (10 * done) // total if total else 10
        self.bar = None
        if mode == "bar":
            from tqdm import tqdm
            self.bar = tqdm(total=total, initial=done, unit="run", desc="sweep",
                            file=self.stream, dynamic_ncols=True, smoothing=0.1)
        elif mode == "lines":
            self._line(f"{total} runs, {done} already done; {what}")

    def _line(self, text: str) -> None:
        print(f"emu: sweep: {text}", file=self.stream, flush=True)

    def _status(self) -> str:
        t = time.monotonic() - self.t0
        pct = 100.0 * self.done / self.total if self.total else 100.0
        text = f"{self.done}/{self.total} runs done ({pct:.0f}%), {_fmt_s(t)} elapsed"
        new = self.done - self.start_done
        if 0 < new and self.done < self.total:
            text += f", ETA {_fmt_s(t / new * (self.total - self.done))}"
        return text

    def advance(self) -> None:
        self.done += 1
        if self.bar is not None:
            self.bar.update(1)
        elif self.mode == "lines":
            decile = (10 * self.done) // self.total
            now = time.monotonic()
            if decile > self.last_decile or now - self.last >= LINE_EVERY:
                self.last_decile, self.last = decile, now
                self._line(self._status())

    def tick(self) -> None:
        if self.mode == "lines" and time.monotonic() - self.last >= LINE_EVERY:
            self.last = time.monotonic()
            self._line(self._status())

    def close(self, finished: bool = False) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        elif self.mode == "lines" and finished and self.last_decile < 10:
            self._line(self._status())


# ---------------------------------------------------------------------------
# Executors
# ---------------------------------------------------------------------------


def _worker_init() -> None:
    """In each pool process: leave Ctrl-C to the sweep, and exit once orphaned
    (the sweep, or the fork server between, was killed)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent_pid = os.getppid()

    def watch():
        while True:
            time.sleep(1.0)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch, name="emu-sweep-orphan-watch", daemon=True).start()


def _kill_pool(ex) -> None:
    """Stop a ProcessPoolExecutor now: cancel what is queued, kill what runs."""
    terminate = getattr(ex, "terminate_workers", None)      # Python >= 3.14
    if terminate is not None:
        with contextlib.suppress(Exception):
            terminate()
        return
    for p in list((getattr(ex, "_processes", None) or {}).values()):
        with contextlib.suppress(Exception):
            p.terminate()
    with contextlib.suppress(Exception):
        ex.shutdown(wait=False, cancel_futures=True)


class _Sweeper:
    """Runs a plan's pending runs on an executor, tracking progress and the table."""

    def __init__(self, plan: SweepPlan, out_dir: str, progress: Optional[_Progress], done: set):
        self.plan, self.out_dir, self.progress, self.done = plan, out_dir, progress, done
        self.last_table = time.monotonic()
        self.rows: dict = {}         # run id -> its table row, read once from its run dir

    def run_dir(self, run: Run) -> str:
        return os.path.join(self.out_dir, "runs", run.id)

    def args(self, run: Run) -> tuple:
        meta = {"id": run.id, "index": run.index, "grid": dict(run.grid),
                "replicate": run.replicate, "seed": run.seed, "overrides": list(run.overrides)}
        return (self.plan.scenario_data, self.plan.base_dir, list(run.overrides),
                self.run_dir(run), meta)

    def row(self, run: Run) -> Optional[dict]:
        """The run's row, from its run directory; None while it is not done."""
        if run.id not in self.rows:
            s = _read_summary(self.run_dir(run))
            if s is None:
                return None
            self.rows[run.id] = summary_row(self.plan, run, s)
        return self.rows[run.id]

    def finished(self, run: Run) -> None:
        if self.row(run) is None:
            raise SweepError(f"{run.label} finished but {self.run_dir(run)}/summary.json is "
                             f"missing: with Dask, --out must be on a filesystem the workers "
                             f"share")
        self.done.add(run.id)
        self.progress.advance()
        self.tick()

    def tick(self) -> None:
        self.progress.tick()
        if time.monotonic() - self.last_table >= TABLE_EVERY:
            self.write_table()

    def write_table(self) -> list:
        self.last_table = time.monotonic()
        rows = [r for r in (self.row(run) for run in self.plan.runs if run.id in self.done)
                if r is not None]
        write_table(self.plan, self.out_dir, rows)
        return rows

    def failed(self, run: Run, err: BaseException) -> BaseException:
        """The exception to raise for ``run`` failing with ``err``."""
        from concurrent.futures.process import BrokenProcessPool
        if isinstance(err, BrokenProcessPool):
            return SweepError("a local worker process died (killed?), which stopped the pool")
        if isinstance(err, EmuError):
            return EmuError(f"{run.label}: {err}")
        if type(err).__name__ == "KilledWorker":
            return SweepError(f"dask workers kept dying during {run.label}: {err}")
        with contextlib.suppress(Exception):
            err.add_note(f"in emu sweep, {run.label}")
        return err

    # -- executors -------------------------------------------------------------

    def serial(self, todo: list) -> None:
        for run in todo:
            try:
                execute_run(*self.args(run))
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException as err:
                raise self.failed(run, err) from (None if isinstance(err, EmuError) else err)
            self.finished(run)

    def _loop(self, todo: list, submit, window: int, cancel_all) -> None:
        """Keep ``window`` runs in flight; handle completions in the main thread."""
        q: queue.Queue = queue.Queue()
        pending = iter(todo)
        inflight: dict = {}

        def fill():
            while len(inflight) < window:
                run = next(pending, None)
                if run is None:
                    return
                try:
                    fut = submit(run)
                except (KeyboardInterrupt, SystemExit):
                    raise
                except BaseException as err:        # e.g. the pool broke meanwhile
                    raise self.failed(run, err) from (None if isinstance(err, EmuError) else err)
                inflight[fut] = run
                fut.add_done_callback(q.put)

        try:
            fill()
            while inflight:
                try:
                    fut = q.get(timeout=0.5)
                except queue.Empty:
                    self.tick()
                    continue
                run = inflight.pop(fut, None)
                if run is None:
                    continue
                try:
                    fut.result()
                except (KeyboardInterrupt, SystemExit):
                    raise
                except BaseException as err:
                    raise self.failed(run, err) from (None if isinstance(err, EmuError) else err)
                self.finished(run)
                fill()
        except BaseException as err:
            cancel_all(list(inflight), isinstance(err, KeyboardInterrupt))
            raise

    def local(self, todo: list, workers: int) -> None:
        from concurrent.futures import ProcessPoolExecutor
        ex = ProcessPoolExecutor(max_workers=workers, initializer=_worker_init)

        def cancel_all(futs, interrupted):
            for f in futs:
                f.cancel()
            if interrupted:
                _kill_pool(ex)
            else:                   # let the running runs finish: their results count
                ex.shutdown(wait=True, cancel_futures=True)

        try:
            self._loop(todo, lambda run: ex.submit(execute_run, *self.args(run)),
                       2 * workers, cancel_all)
        finally:
            ex.shutdown(wait=True, cancel_futures=True)
            self._collect_finished()

    def dask(self, todo: list, client) -> None:
        token = os.urandom(4).hex()

        def submit(run):
            return client.submit(execute_run, *self.args(run), key=f"emu-run-{run.id}-{token}",
                                 pure=False, priority=-run.index)

        def cancel_all(futs, interrupted):
            with contextlib.suppress(Exception):
                client.cancel(futs)

        try:
            self._loop(todo, submit, len(todo), cancel_all)
        finally:
            self._collect_finished()

    def _collect_finished(self) -> None:
        """Count runs that finished while the sweep was stopping."""
        for run in self.plan.runs:
            if run.id not in self.done and self.row(run) is not None:
                self.done.add(run.id)


def _clean_tmp(out_dir: str) -> None:
    """Remove temporary files left by an interrupted atomic write."""
    dirs = [out_dir]
    runs = os.path.join(out_dir, "runs")
    if os.path.isdir(runs):
        dirs += [os.path.join(runs, d) for d in os.listdir(runs)]
    for d in dirs:
        with contextlib.suppress(OSError):
            for name in os.listdir(d):
                if _TMP_FILE.match(name):
                    with contextlib.suppress(OSError):
                        os.unlink(os.path.join(d, name))


@contextlib.contextmanager
def _locked(out_dir: str):
    """Hold DIR/.sweep.lock: one sweep at a time in a directory."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    fd = os.open(os.path.join(out_dir, ".sweep.lock"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise ConfigError(f"{out_dir}: another emu sweep is writing into this directory") \
                from None
        yield
    finally:
        os.close(fd)


@contextlib.contextmanager
def _dask_client(scheduler: Optional[str], workers: Optional[int]):
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise ConfigError("--executor dask needs dask[distributed] (pip install "
                          "'dask[distributed]')") from None
    import logging
    cluster = None
    try:
        if scheduler:
            client = Client(scheduler, timeout="10s", set_as_default=False)
        else:
            cluster = LocalCluster(n_workers=workers or os.cpu_count() or 1, threads_per_worker=1,
                                   processes=True, host="127.0.0.1", dashboard_address=None,
                                   silence_logs=logging.ERROR)
            client = Client(cluster, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as err:
        if cluster is not None:
            cluster.close()
        raise ConfigError(f"--scheduler {scheduler}: cannot connect to the dask scheduler "
                          f"({type(err).__name__}: {err})") from None
    try:
        yield client
    finally:
        with contextlib.suppress(Exception):
            client.close()
        if cluster is not None:
            with contextlib.suppress(Exception):
                cluster.close()


# ---------------------------------------------------------------------------
# The API
# ---------------------------------------------------------------------------


def run_sweep(scenario_path, grids=(), seeds: Optional[int] = None, out_dir=None,
              executor: str = "local", workers: Optional[int] = None,
              scheduler: Optional[str] = None, progress: Optional[str] = None,
              overrides=(), *, client=None, stream=None) -> list[dict]:
    """Run a sweep into ``out_dir`` and return its table's rows, in grid order.

    ``grids``: ``"key=v1,v2"`` strings (or ``(key, values)`` pairs, or a
    dict); ``seeds``: None (the scenario's seed) or N replicates; ``executor``:
    ``"local"`` (``workers`` processes, default ``os.cpu_count()``; 1 runs in
    this process) or ``"dask"`` (``scheduler`` address, or a ``LocalCluster``
    of ``workers`` processes on 127.0.0.1; or pass a ``client``);
    ``progress``: None/"none", "auto", "bar" or "lines" (on ``stream``,
    default stderr).  Runs already done in ``out_dir`` are skipped.

    Raises :class:`ConfigError` (bad input, before anything is written),
    :class:`SweepInterrupted` (Ctrl-C; a KeyboardInterrupt),
    :class:`SweepError` (a worker died) or the failing run's exception.
    """
    if out_dir is None:
        raise ConfigError("--out: a directory for the results is required")
    if executor not in ("local", "dask"):
        raise ConfigError(f"--executor: expected local or dask, got {executor!r}")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int)
                                or workers < 1):
        raise ConfigError(f"--workers: expected a positive integer, got {workers!r}")
    if executor == "local" and (scheduler or client is not None):
        raise ConfigError("--scheduler needs --executor dask")
    if executor == "dask" and scheduler and workers is not None:
        raise ConfigError("--workers sets the size of a local Dask cluster; "
                          "a --scheduler has its own workers")
    out_dir = os.path.abspath(os.fspath(out_dir))
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise ConfigError(f"--out {out_dir}: exists and is not a directory")
    plan = plan_sweep(scenario_path, grids, seeds, overrides)
    if progress is not None and progress not in ("auto", "bar", "lines", "none"):
        raise ConfigError(f"--progress: expected auto, bar, lines or none, got {progress!r}")

    with contextlib.ExitStack() as stack:
        if executor == "dask" and client is None and any(
                _read_summary(os.path.join(out_dir, "runs", r.id)) is None for r in plan.runs):
            # connect (or start the local cluster) before writing anything
            client = stack.enter_context(_dask_client(scheduler, workers))
        return _run_plan(plan, out_dir, executor, workers, scheduler, progress, client, stream)


def _run_plan(plan, out_dir, executor, workers, scheduler, progress, client, stream) -> list:
    try:
        os.makedirs(os.path.join(out_dir, "runs"), exist_ok=True)
    except OSError as err:
        raise ConfigError(f"--out {out_dir}: cannot create the directory "
                          f"({err.strerror or err})") from None
    with _locked(out_dir):
        _clean_tmp(out_dir)
        write_json(os.path.join(out_dir, "sweep.json"), plan.to_json())
        total = len(plan.runs)
        sweeper = _Sweeper(plan, out_dir, None, set())
        done = sweeper.done
        sweeper._collect_finished()                  # the runs already done
        todo = [r for r in plan.runs if r.id not in done]

        if executor == "local":
            n = workers or os.cpu_count() or 1
            n = max(1, min(n, len(todo)))
            what = ("in this process" if n == 1 else f"on {n} local worker processes")
        else:
            try:
                nw = len(client.scheduler_info()["workers"]) if client is not None else 0
            except Exception:
                nw = 0
            what = f"on the Dask cluster at {scheduler or client.scheduler.address}" \
                if client is not None else "on Dask"
            what += f" ({nw} workers)" if nw else ""
        bar = sweeper.progress = _Progress(progress, total, len(done),
                                           f"running {len(todo)} {what}", stream)
        finished = False
        try:
            if not todo:
                pass
            elif executor == "local" and n == 1:
                sweeper.serial(todo)
            elif executor == "local":
                sweeper.local(todo, n)
            else:
                sweeper.dask(todo, client)
            finished = True
        except BaseException as err:
            bar.close()
            with contextlib.suppress(BaseException):
                sweeper._collect_finished()          # runs that finished while stopping
                sweeper.write_table()
            if isinstance(err, KeyboardInterrupt):
                raise SweepInterrupted(len(done), total, out_dir) from None
            if isinstance(err, SweepError):
                err.done, err.total = len(done), total
            raise
        finally:
            bar.close(finished)
        rows = sweeper.write_table()
    return rows


def sweep_throughput(scenario_path, grids=(), seeds: Optional[int] = None,
                     executor: str = "local", workers: Optional[int] = None,
                     scheduler: Optional[str] = None, overrides=()) -> dict:
    """Runs per minute of a whole sweep into a fresh temporary directory.

    For ``executor="dask"`` without ``scheduler``, a ``LocalCluster`` of
    ``workers`` processes is started before the clock starts (and closed
    after); a local process pool's start-up is part of the measured time.
    Returns ``{"runs", "seconds", "runs_per_minute", "executor", "workers"}``.
    """
    tmp = tempfile.mkdtemp(prefix="emu-sweep-bench-")
    try:
        with contextlib.ExitStack() as stack:
            client = None
            if executor == "dask":
                client = stack.enter_context(_dask_client(scheduler, workers))
                client.run(lambda: __import__("emu.scenario"))   # warm the workers' imports
            t0 = time.perf_counter()
            rows = run_sweep(scenario_path, grids, seeds, os.path.join(tmp, "out"),
                             executor=executor,
                             workers=None if executor == "dask" else workers,
                             overrides=overrides, client=client)
            seconds = time.perf_counter() - t0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"runs": len(rows), "seconds": seconds,
            "runs_per_minute": 60.0 * len(rows) / seconds if seconds else math.inf,
            "executor": executor, "workers": workers}


# ---------------------------------------------------------------------------
# The command line
# ---------------------------------------------------------------------------


def add_sweep_parser(sub) -> argparse.ArgumentParser:
    """Add ``emu sweep`` to the ``add_subparsers()`` action ``sub``."""
    p = sub.add_parser(
        "sweep", help="run a scenario over a grid of values and seeds",
        description="Run FILE over the factorial product of the --grid values, each point "
                    "--seeds times, in parallel, into DIR/runs/<id>/ plus one results table "
                    "(DIR/results.parquet). Re-running the same command resumes an "
                    "interrupted sweep.")
    p.add_argument("scenario", metavar="FILE", help="scenario file (.toml)")
    p.add_argument("--grid", dest="grids", action="append", default=[], metavar="KEY=V1,V2,...",
                   help="a key (dotted path, as --set takes) and its values (repeatable; "
                        "the sweep is the product of the grids)")
    p.add_argument("--seeds", type=int_arg, default=None, metavar="N",
                   help="replicate each point with N seeds spawned from the scenario's seed "
                        "(default: one run with the scenario's seed)")
    p.add_argument("--out", required=True, metavar="DIR", help="directory for the results")
    p.add_argument("--executor", choices=["local", "dask"], default="local",
                   help="local: a process pool (default); dask: a Dask cluster")
    p.add_argument("--workers", type=int_arg, default=None, metavar="N",
                   help="local worker processes (default: the CPU count; 1 runs in this "
                        "process), or the size of the local Dask cluster without --scheduler")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="a Dask scheduler's address, e.g. tcp://10.0.0.5:8786 (with "
                        "--executor dask; default: a LocalCluster on 127.0.0.1)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a scenario key for every run (repeatable)")
    p.add_argument("--progress", choices=["auto", "bar", "lines", "none"], default="auto",
                   help="progress on stderr (default: a bar on a terminal, lines otherwise)")
    p.set_defaults(func=cmd_sweep)
    return p


def cmd_sweep(args) -> int:
    """``emu sweep``: raises EmuError on bad input (the CLI prints it, exit 2)."""
    t0 = time.perf_counter()
    out = args.out
    try:
        rows = run_sweep(args.scenario, args.grids, args.seeds, out, executor=args.executor,
                         workers=args.workers, scheduler=args.scheduler,
                         progress=args.progress, overrides=args.overrides)
    except SweepInterrupted as stop:
        print(f"emu: sweep interrupted: {stop.done} of {stop.total} runs done in {out}; "
              f"re-run the same command to resume", file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        print("emu: sweep interrupted before any run started", file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED
    except SweepError as err:
        print(f"emu: error: {err}; {err.done} of {err.total} runs done in {out}; "
              f"re-run the same command to resume", file=sys.stderr, flush=True)
        return EXIT_FAILED
    print(f"emu sweep: {len(rows)} runs in {time.perf_counter() - t0:.1f} s; results in "
          f"{os.path.join(out, _table_name())}")
    return 0


def main(argv=None) -> int:
    """``emu sweep ...`` on its own: ``main(["sweep", "FILE.toml", "--grid", ...])``."""
    from emu.cli import main as emu_main
    return emu_main(argv)


if __name__ == "__main__":
    sys.exit(main())

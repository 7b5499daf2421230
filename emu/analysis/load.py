"""Read a result folder back: ``emu.load(DIR)``.

- a run (``summary.json``; ``emu run --out``, :meth:`emu.run.Result.write`):
  a :class:`~emu.run.Result` -- the summary, the tables (typed), the arrays
  and the execution record of ``run.json``;
- a comparison (``comparison.json``; ``emu compare --out``): a
  :class:`~emu.analysis.results.Comparison` of those Results;
- a sweep (``sweep.json``; ``emu sweep --out``): its results table as a pandas
  DataFrame, one row per run;
- a study (``results.json``; ``emu study NAME --out``): a
  :class:`~emu.analysis.results.Study`, its ``results.json`` and each run
  under ``runs/`` as a Result (a run whose folder is gone is left out);
- a sensitivity study (``sensitivity.json``; ``emu sensitivity --out``): its
  result, the dict ``sensitivity.json`` holds, checked as ``emu report``
  checks it (``load(DIR / "runs" / label)`` reads one of its runs).

A sweep's DataFrame carries in ``attrs`` the grid keys (``"grid"``), the
seeds per point (``"seeds"``) and the folder (``"path"``);
:func:`emu.analysis.results.points` turns it into mean and 95 % interval per
grid point, and ``load(DIR / "runs" / run_id)`` reads one of its runs.

What a folder held is what ``load`` gives back: writing a Result and loading
it gives an equal summary, equal tables, equal arrays and execution record.
"""

from __future__ import annotations

import csv
import os
import warnings

import numpy as np

from emu.analysis.frames import RUN_TABLE_COLUMNS, pandas
from emu.analysis.results import Comparison, Study
from emu.errors import EmuError
from emu.params.load import override_value
from emu.report.folders import folder_problem, plain_name
from emu.report.schema import (STUDY, SUMMARY, SWEEP, TEXT, Each, Fields, List, Opt, Scalar,
                               check, copy_differs)
from emu.report.sensitivity import read_sensitivity
from emu.run.files import load_json
from emu.run.misses import FILES as MISS_LOG_FILES, read_misses
from emu.run.outdir import no_result, unfinished
from emu.run.table import missing_column, table_path
from emu.run.scenario import Result
from emu.study.lib import safe_label

__all__ = ["IncompleteSweep", "load", "read_comparison", "read_run", "read_study", "read_sweep"]

#: ``comparison.json`` as emu.load reads it: as ``emu report`` checks it
#: (:data:`emu.report.schema.COMPARISON`), but a run's ``dir``, ``values``
#: and the ``keys`` may be missing (written before they were kept).
_COMPARISON = Fields({
    "key": TEXT, "keys": Opt(List(TEXT)),
    "runs": List(Fields({"value": Scalar(), "values": Opt(Each(Scalar())), "dir": Opt(TEXT),
                         "summary": SUMMARY}), min_len=1),
})

#: Table columns that hold names, kept as text even when they look like numbers.
_TEXT_COLUMNS = frozenset({"vcpu", "context", "kind", "category", "step", "component",
                           "cause", "name"})


def _cell(column: str, text: str):
    """A CSV cell as the value the table held: int, float, None ('') or text."""
    if column in _TEXT_COLUMNS:
        return text
    if text == "":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _read_csv(path: str, needs=()) -> list:
    """The rows of a CSV table; EmuError if it lacks one of the columns ``needs``
    (an empty file is a table without rows)."""
    try:
        with open(path, encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f)
            raw = list(reader)
            columns = reader.fieldnames
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise EmuError(f"cannot read {path}: {err}") from None
    if columns:
        missing = [c for c in needs if c not in columns]
        if missing:
            raise EmuError(f"{path}: no column {missing[0]!r}: not the table a run writes "
                           f"(damaged, or another file)")
    for n, row in enumerate(raw):
        if None in row or None in row.values():
            raise EmuError(f"{path}: row {n + 1}: {'more' if None in row else 'fewer'} cells "
                           f"than the header has columns (damaged, or another file)")
    return [{k: _cell(k, v) for k, v in row.items()} for row in raw]


def _read_npz(path: str) -> dict:
    try:
        with np.load(path) as z:
            return {k: z[k] for k in z.files}
    except Exception as err:  # a truncated or foreign file: numpy raises many kinds
        raise EmuError(f"{path}: cannot read the arrays ({err})") from None


def read_run(path) -> Result:
    """The :class:`~emu.run.Result` a run directory holds (``summary.json``,
    ``run.json``, one CSV per table, one ``.npz`` per set of arrays, the
    per-miss log ``misses.parquet`` or ``misses.csv`` as ``miss_log``)."""
    path = os.fspath(path)
    summary_json = os.path.join(path, "summary.json")
    summary = check(load_json(summary_json), SUMMARY, summary_json, who="")
    run_json = os.path.join(path, "run.json")
    execution = load_json(run_json) if os.path.isfile(run_json) else {}
    if not isinstance(execution, dict):
        raise EmuError(f"{run_json}: expected an object, got {type(execution).__name__}")
    wall = execution.pop("wall_seconds", 0.0)
    tables, arrays = {}, {}
    for name in sorted(os.listdir(path)):
        stem, ext = os.path.splitext(name)
        if name.startswith(".") or name in MISS_LOG_FILES:
            continue
        if ext == ".csv":
            tables[stem] = _read_csv(os.path.join(path, name), RUN_TABLE_COLUMNS.get(stem, ()))
        elif ext == ".npz":
            arrays[stem] = _read_npz(os.path.join(path, name))
    return Result(summary, tables, wall, execution, arrays, read_misses(path))


def _run_folder(entry: dict, label: str) -> str:
    """The folder of one run of a comparison: its ``dir`` when that is a plain
    name, else the name emu gave run folders before ``dir`` was written."""
    d = entry.get("dir")
    if plain_name(d):
        return d
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in label)


def read_comparison(path) -> Comparison:
    """The :class:`~emu.analysis.results.Comparison` a comparison directory
    holds: each run from its sub-directory (from ``comparison.json`` alone,
    without tables, when the sub-directory is gone).  A run's ``summary.json``
    that differs from its copy in ``comparison.json`` is an EmuError naming
    the first key that differs, as ``emu report`` refuses it."""
    path = os.fspath(path)
    data = check(load_json(os.path.join(path, "comparison.json")), _COMPARISON,
                 os.path.join(path, "comparison.json"), who="")
    runs = []
    for entry in data["runs"]:
        label = str(entry["value"])
        run_dir = os.path.join(path, _run_folder(entry, label))
        if os.path.isfile(os.path.join(run_dir, "summary.json")):
            result = read_run(run_dir)
            mismatch = copy_differs(result.summary, entry["summary"],
                                    os.path.join(run_dir, "summary.json"),
                                    f"{os.path.join(path, 'comparison.json')} "
                                    f"(runs[{len(runs)}].summary)")
            if mismatch:
                raise EmuError(mismatch)
            runs.append((label, result))
        else:
            runs.append((label, Result(entry["summary"], {})))
    keys = data.get("keys") or []
    values = None
    if len(keys) > 1:               # several keys: a column of each, its values typed
        values = [{k: override_value(str((entry.get("values") or {}).get(k, "")))
                   for k in keys} for entry in data.get("runs", [])]
    return Comparison(data.get("key"), runs, path, values)


class IncompleteSweep(UserWarning):
    """A sweep folder whose table holds fewer runs than its plan: it stopped
    before its end (interrupted, terminated, or extended and stopped)."""


def read_sweep(path):
    """A sweep directory's results table as a DataFrame, one row per run in
    grid order; ``attrs`` holds ``grid`` (the keys), ``seeds``, ``path``,
    ``runs`` (the runs of its plan) and ``complete`` (whether the table holds
    them all; an :class:`IncompleteSweep` warning says when it does not).
    Needs pandas (and pyarrow for ``results.parquet``)."""
    pd = pandas()
    path = os.fspath(path)
    meta = check(load_json(os.path.join(path, "sweep.json")), SWEEP,
                 os.path.join(path, "sweep.json"), who="")
    table = table_path(path, meta.get("results"))     # the one its sweep.json names
    if table is None:
        raise EmuError(f"{path}: the sweep has no results table yet (results.parquet or "
                       f"results.csv)")
    if table.endswith(".parquet"):
        try:
            df = pd.read_parquet(table)
        except ImportError:
            raise EmuError(f"{table}: reading Parquet needs pyarrow: pip install pyarrow") \
                from None
    else:
        try:
            df = pd.read_csv(table, dtype={"run_id": str})
        except (ValueError, UnicodeDecodeError) as err:     # pandas' EmptyDataError, ParserError
            raise EmuError(f"{table}: cannot read the results table ({err})") from None
    grid = [g["key"] for g in meta.get("grid", [])]
    column = missing_column(df.columns, grid)
    if column is not None:
        raise EmuError(f"{table}: no column {column!r}: not the results table of this sweep "
                       f"(damaged, or another file)")
    planned = len(meta.get("runs") or [])
    df.attrs.update(kind="sweep", path=path, grid=grid,
                    seeds=meta.get("seeds", {}).get("count"), runs=planned,
                    complete=len(df) >= planned)
    if len(df) < planned:
        warnings.warn(f"{path}: {len(df)} of the sweep's {planned} runs are in its table: it "
                      f"stopped before its end (emu sweep with the same arguments finishes it)",
                      IncompleteSweep, stacklevel=3)
    return df



def read_study(path) -> Study:
    """The :class:`~emu.analysis.results.Study` a study directory holds:
    ``results.json`` and the Result of each of its runs still in ``runs/``."""
    path = os.fspath(path)
    results = load_json(os.path.join(path, "results.json"))
    if not isinstance(results, dict) or not isinstance(results.get("runs"), dict) \
            or "study" not in results:
        raise EmuError(f"{path}: results.json is not a study's (no study or runs)")
    check(results, STUDY, os.path.join(path, "results.json"), who="")
    runs = []
    for label in results["runs"]:
        run_dir = os.path.join(path, "runs", safe_label(label))
        if os.path.isfile(os.path.join(run_dir, "summary.json")):
            runs.append((label, read_run(run_dir)))
    return Study(results, runs, path)


def load(path):
    """Read an emu result folder: a run (a Result), a comparison (a
    Comparison), a sweep (its results table as a DataFrame), a study (a
    Study) or a sensitivity study (its result, a dict); see the module
    docstring.  Raises :class:`~emu.errors.EmuError` (one line) when the
    folder holds none of them or a file is corrupt."""
    if not isinstance(path, (str, bytes, os.PathLike)):
        raise EmuError(f"load: expected the path of an emu result folder, got "
                       f"{type(path).__name__} {path!r}")
    path = os.fsdecode(path)
    if not os.path.isdir(path):
        raise EmuError(folder_problem(path))
    if os.path.isfile(os.path.join(path, "summary.json")):
        return read_run(path)
    if os.path.isfile(os.path.join(path, "comparison.json")):
        return read_comparison(path)
    if os.path.isfile(os.path.join(path, "sweep.json")):
        return read_sweep(path)
    if os.path.isfile(os.path.join(path, "results.json")):
        return read_study(path)
    study = read_sensitivity(path)
    if study is not None:
        return study
    stopped = unfinished(path)
    if stopped:
        raise EmuError(f"{path}: holds {stopped}: nothing to load before it ends (emu "
                       f"sensitivity with the same arguments finishes it)")
    raise EmuError(f"{path}: not an emu result folder ({no_result()})")

"""Read any folder emu writes, checked, for a report.

:func:`load_results` tells the kind of a folder by the file that marks it
and reads it whole:

- a run (``emu run --out``): ``summary.json``, and ``timeline.npz`` if the
  run recorded one;
- a comparison (``emu compare --out``): ``comparison.json`` and each run's
  folder: its ``summary.json`` (which must equal its copy in
  ``comparison.json``) and its timeline;
- a sweep (``emu sweep --out``): ``sweep.json``, the results table
  (``results.parquet`` or ``results.csv``) and each listed run's
  ``runs/<id>/summary.json``;
- a study (``emu study NAME --out``): ``results.json`` and each run's
  ``runs/<label>/summary.json``.

Every file is checked against :mod:`emu.report.schema` as it is read; the
first thing wrong ends in one line naming the file and the key
(:class:`~emu.errors.EmuError`).  Labels are shortened and made unique
(:func:`~emu.report.schema.short_labels`) here, once, so that nothing
downstream lays out a label of unbounded length.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
from typing import Optional

import numpy as np

from emu.errors import EmuError
from emu.report.schema import (COMPARISON, STUDY, SUMMARY, SWEEP, shown, check,
                               check_timeline, copy_differs, short_labels, shorten)
from emu.report.text import labelled
from emu.run.outdir import no_result, unfinished
from emu.run.table import missing_column, table_path
from emu.study.lib import safe_label

#: A JSON result file larger than this is not one emu wrote.
JSON_MAX_BYTES = 256 << 20
#: A run id of a sweep: a plain folder name.
_RUN_ID = re.compile(r"\A[0-9A-Za-z_.-]{1,64}\Z")


def read_json(path: str):
    """The JSON in ``path``; EmuError (one line) if it cannot be read as JSON."""
    try:
        size = os.path.getsize(path)
        if size > JSON_MAX_BYTES:
            raise EmuError(f"report: {path}: larger than {JSON_MAX_BYTES >> 20} MiB, "
                           "not an emu result")
        if not size:
            raise EmuError(f"report: {path}: an empty file (a write cut short?)")
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as err:
        raise EmuError(f"report: {path}: corrupt JSON ({err.msg} at line {err.lineno})") from None
    except RecursionError:
        raise EmuError(f"report: {path}: corrupt JSON (nested too deeply)") from None
    except ValueError as err:            # e.g. an integer of more than 4,300 digits
        raise EmuError(f"report: {path}: corrupt JSON ({shorten(err, 80)})") from None
    except (OSError, UnicodeDecodeError) as err:
        raise EmuError(f"report: cannot read {path}: {shorten(err, 120)}") from None


def plain_name(name) -> bool:
    """``name`` is a folder's name alone: no path, not ``.`` or ``..``."""
    return isinstance(name, str) and name not in ("", ".", "..") and "/" not in name \
        and os.sep not in name and "\0" not in name


def load_timeline(path: str, cpus: int) -> Optional[dict]:
    """The checked arrays of the timeline at ``path`` (None if there is none)."""
    if not os.path.isfile(path):
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in ("time", "cpu", "owner") if k in z.files}
    except Exception as err:  # a truncated or foreign file: numpy and zipfile raise many kinds
        raise EmuError(f"report: {path}: cannot read the timeline "
                       f"({type(err).__name__}: {shorten(err, 80)})") from None
    return check_timeline(arrays, cpus, path)


def _summary(path: str) -> dict:
    return check(read_json(path), SUMMARY, path)


def _strategy(s: dict) -> str:
    return labelled((s["config"].get("kvm") or {}).get("strategy") or "run", s)


# -- a run and a comparison -------------------------------------------------------------

def _run(src: str) -> dict:
    path = os.path.join(src, "summary.json")
    s = _summary(path)
    (label,) = short_labels([_strategy(s)])
    return {"kind": "run", "key": None, "runs": [(label, s)],
            "timelines": {label: load_timeline(os.path.join(src, "timeline.npz"), s["cpus"])}}


def _run_folder(src: str, name: str, where: str) -> str:
    """The folder ``name`` beside ``comparison.json`` (``where``: the key that
    names it); EmuError (one line) unless it is a plain name of a folder there."""
    if not plain_name(name):
        raise EmuError(f"report: {where}: expected the name of a folder beside it, got "
                       f"{shown(name)}")
    folder = os.path.join(src, name)
    if not os.path.isdir(folder):
        raise EmuError(f"report: {where}: no folder {shown(name)} beside it")
    return folder


def _comparison(src: str) -> dict:
    """A comparison: each run's summary read from its own folder (what
    ``emu.load`` reads), refused if it differs from its copy in
    ``comparison.json``."""
    path = os.path.join(src, "comparison.json")
    data = check(read_json(path), COMPARISON, path)
    runs, timelines = [], {}
    for i, (r, label) in enumerate(zip(data["runs"],
                                       short_labels(r["value"] for r in data["runs"]))):
        folder = _run_folder(src, r["dir"], f"{path}: runs[{i}].dir")
        summary = os.path.join(folder, "summary.json")
        s = _summary(summary)
        mismatch = copy_differs(s, r["summary"], summary, f"{path} (runs[{i}].summary)")
        if mismatch:
            raise EmuError(f"report: {mismatch}")
        label = labelled(label, s)
        runs.append((label, s))
        timelines[label] = load_timeline(os.path.join(folder, "timeline.npz"), s["cpus"])
    return {"kind": "comparison", "key": shorten(data["key"]), "runs": runs,
            "timelines": timelines}


# -- a sweep -----------------------------------------------------------------------------

def _cell(value, csv_text: bool):
    """A grid value of the results table: a CSV cell's text typed as the table
    wrote it (int, float, true/false), a Parquet value as it is."""
    if not csv_text or not isinstance(value, str):
        return value
    if value in ("true", "false"):
        return value == "true"
    for kind in (int, float):
        try:
            v = kind(value)
        except ValueError:
            continue
        return v if kind is int or math.isfinite(v) else value
    return value


def _index(value, csv_text: bool) -> Optional[int]:
    """A replicate or seed: an integer >= 0 below 2**64, else None."""
    if csv_text and isinstance(value, str) and value.isascii() and value.isdigit() \
            and len(value) <= 20:
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 1 << 64:
        return None
    return value


def read_table(src: str, named=None) -> tuple[str, list, list]:
    """(path, column names, rows) of a sweep's results table, the one its
    sweep.json names (``named``; :func:`emu.run.table.table_path`):
    Parquet, or CSV (its cells as text)."""
    path = table_path(src, named)
    parquet = text = path
    if path is not None and path.endswith(".parquet"):
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise EmuError(f"report: {parquet}: reading it needs pyarrow "
                           "(pip install pyarrow)") from None
        else:
            try:
                table = pq.read_table(parquet)
                return parquet, table.column_names, table.to_pylist()
            except Exception as err:   # pyarrow raises many kinds on a damaged file
                raise EmuError(f"report: {parquet}: cannot read the results table "
                               f"({type(err).__name__}: {shorten(err, 80)})") from None
    if text is None or not os.path.isfile(text):
        raise EmuError(f"report: {src}: a sweep without its results table (results.parquet "
                       "or results.csv): no run is done yet, or the table was removed")
    try:
        with open(text, encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f)
            rows = list(reader)
            return text, list(reader.fieldnames or ()), rows
    except (csv.Error, OSError, UnicodeDecodeError) as err:
        raise EmuError(f"report: {text}: cannot read the results table "
                       f"({shorten(err, 80)})") from None


def _table_rows(path: str, columns: list, rows: list, keys: list) -> list:
    """Each row of the results table, checked: its run id, grid point,
    replicate, seed; and first its columns (a table with no row, as a sweep
    stopped before its first run leaves, still names them)."""
    csv_text = path.endswith(".csv")
    column = missing_column(columns, keys)
    if column is not None:
        raise EmuError(f"report: {path}: no column {shorten(repr(column), 40)}: not the "
                       f"results table of this sweep (damaged, or another file)")
    out = []
    for n, row in enumerate(rows):
        where = f"report: {path}: row {n + 1}"
        if not isinstance(row, dict):
            raise EmuError(f"{where}: not a row")
        for column in ["run_id", "replicate", "seed"] + keys:
            if column not in row or (column in ("run_id", "replicate", "seed")
                                     and row[column] in (None, "")):
                raise EmuError(f"{where}: {shorten(column)}: missing")
        if not isinstance(row["run_id"], str) or not _RUN_ID.match(row["run_id"]):
            raise EmuError(f"{where}: run_id: expected a run folder's name, got "
                           f"{shorten(repr(row['run_id']), 40)}")
        replicate, seed = _index(row["replicate"], csv_text), _index(row["seed"], csv_text)
        if replicate is None or seed is None:
            column = "replicate" if replicate is None else "seed"
            raise EmuError(f"{where}: {column}: expected an integer >= 0, got "
                           f"{shorten(repr(row[column]), 40)}")
        point = {}
        for k in keys:
            v = _cell(row[k], csv_text)
            if not (v is None or isinstance(v, (str, bool, int))
                    or (isinstance(v, float) and math.isfinite(v))):
                raise EmuError(f"{where}: {shorten(k)}: expected a string or a number, got "
                               f"{shorten(repr(v), 40)}")
            point[k] = v
        out.append({"run_id": row["run_id"], "point": point, "replicate": replicate,
                    "seed": seed})
    return out


def _sweep(src: str) -> dict:
    path = os.path.join(src, "sweep.json")
    plan = check(read_json(path), SWEEP, path)
    keys = list(dict.fromkeys(g["key"] for g in plan["grid"]))
    table, columns, raw_rows = read_table(src, plan.get("results"))
    rows = _table_rows(table, columns, raw_rows, keys)
    missing = 0
    for row in rows:
        summary = os.path.join(src, "runs", row["run_id"], "summary.json")
        row["summary"] = _summary(summary) if os.path.isfile(summary) else None
        missing += row["summary"] is None
    return {"kind": "sweep", "key": None, "plan": plan, "keys": keys, "table": table,
            "rows": rows, "missing": missing,
            "runs": [(_strategy(r["summary"]), r["summary"]) for r in rows if r["summary"]][:1]}


# -- a study -----------------------------------------------------------------------------

def _study(src: str) -> dict:
    path = os.path.join(src, "results.json")
    data = check(read_json(path), STUDY, path)
    raw = list(data["runs"])
    runs, missing = [], []
    for full, label in zip(raw, short_labels(raw)):
        summary = os.path.join(src, "runs", safe_label(full), "summary.json")
        if os.path.isfile(summary):
            s = _summary(summary)
            runs.append((labelled(label, s), s))
        else:
            missing.append(label)
    return {"kind": "study", "key": None, "study": data, "path": path, "runs": runs,
            "missing": missing}


#: The file that marks each kind of folder, in the order they are looked for.
KINDS = (("comparison.json", _comparison), ("summary.json", _run), ("sweep.json", _sweep),
         ("results.json", _study))


def folder_problem(path: str) -> str:
    """``path`` and why, being no folder, it cannot be read as one."""
    if not path:
        return "'': an empty path names no folder"
    return f"{path}: {'is not a folder' if os.path.exists(path) else 'no such directory'}"


def load_results(src_dir) -> dict:
    """Read a run, comparison, sweep or study folder, every file checked.

    Returns ``{"kind": "run" | "comparison" | "sweep" | "study", "key": the
    varied key or None, "runs": [(label, summary)], ...}``: a run and a
    comparison add ``"timelines": {label: arrays or None}``; a sweep adds
    ``"plan"`` (``sweep.json``), ``"keys"`` (the grid keys), ``"rows"`` (one
    per row of the results table: ``run_id``, ``point``, ``replicate``,
    ``seed``, ``summary`` or None when the run's summary is not there) and
    ``"missing"``; a study adds ``"study"`` (``results.json``) and
    ``"missing"`` (labels of runs without a summary).  Raises
    :class:`EmuError` (one line) when the folder is missing, holds none of
    the files, or a file is damaged.
    """
    src = os.fspath(src_dir)
    if not os.path.isdir(src):
        raise EmuError(f"report: {folder_problem(src)}")
    for name, load in KINDS:
        if os.path.isfile(os.path.join(src, name)):
            return load(src)
    stopped = unfinished(src)
    if stopped:
        raise EmuError(f"report: {src} holds {stopped}: nothing to report before it ends (emu "
                       f"sensitivity with the same arguments finishes it)")
    raise EmuError(f"report: {src} holds no emu result ({no_result()})")

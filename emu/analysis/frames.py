"""Tidy pandas DataFrames of a run: one row per observation, one column per variable.

:func:`run_frames` turns a run's summary and tables (what
:class:`emu.run.Result` holds, and ``emu run --out`` writes) into
DataFrames at the finest grain the run recorded, so that every figure of the
summary is a ``groupby`` and a ``sum`` away:

``exits``
    one row per vCPU and exit category that occurred: ``count``,
    ``sum_cycles``, ``min_cycles``, ``max_cycles``, ``sumsq_cycles``,
    ``mean_us``.  The TIMEINGUEST row counts time spent in the guest, not
    exits.
``tlb``
    one row per TLB owner (each vCPU, QEMU thread and host task): its
    ``kind``, its ``side`` (``guest`` for a vCPU, else ``host``: the two
    halves of ``summary["tlb"]``) and its TLB counters.
``misses``
    one row per owner and miss cause (every cause, zeros included):
    ``misses``.
``cycles``
    one row per CPU and cycle component: ``cycles``.
``profile``
    one row per vCPU and miss-handler step that ran: ``count``, ``cycles``.
``profile_hist``
    one row per non-empty bucket of the profile's histograms (all vCPUs):
    ``step``, ``measure`` (``cycles``: the step's occurrences by cycles;
    ``entries``: the walks by guest TLB entries scanned), the bucket's
    ``low`` and ``high`` values (inclusive; ``high`` is None for the last,
    open, bucket) and ``count``.  A step's counts sum to its ``count`` in
    the summary.
``miss_log``
    the per-miss log (``sim.miss_log``), one row per guest TLB miss
    (:mod:`emu.stats.misslog`), when the run kept one.
``repopulation``
    one row per guest access ``k`` after a vcpu_load, up to the window:
    ``misses`` and ``accesses`` at ``k``, summed over the resumes.

Any other table the run wrote (a per-process table, say) is a frame of its
own, its rows as they are.  The category, cause, component and step columns
are ordered categoricals in the model's order (:mod:`emu.codes`).

pandas is imported when a frame is made; without it :func:`pandas` raises
:class:`PandasMissing`, one line saying how to install it.
"""

from __future__ import annotations

from emu.codes import (CYCLE_BUCKETS, CYCLE_CATEGORIES, EXIT_CATEGORIES, MISS_CAUSES,
                       MISS_OUTCOMES, PROFILE_STEPS, SCAN_BUCKETS, TLB_COUNTERS)
from emu.errors import EmuError

__all__ = ["PandasMissing", "concat_frames", "pandas", "run_frames"]

#: What a missing pandas says.
INSTALL_PANDAS = ("DataFrames need pandas: pip install 'emu[analysis]' "
                  "(or pip install pandas)")

#: The tables every run writes (:func:`emu.stats.collect`), each with the
#: columns it holds (the TLB table's counters after its two names).
RUN_TABLE_COLUMNS = {
    "exits": ("vcpu", "category", "count", "sum_cycles", "min_cycles", "max_cycles",
              "sumsq_cycles", "mean_us"),
    "tlb": ("context", "kind") + TLB_COUNTERS,
    "cycles": ("cpu", "component", "cycles"),
    "profile": ("vcpu", "step", "count", "cycles"),
}
_RUN_TABLES = tuple(RUN_TABLE_COLUMNS)

#: Ordered categories of the label columns.
_ORDER = {"category": EXIT_CATEGORIES, "cause": MISS_CAUSES, "component": CYCLE_CATEGORIES,
          "step": PROFILE_STEPS, "outcome": MISS_OUTCOMES}

_TLB_COUNTERS_PREFIX = "cause_"


class PandasMissing(EmuError, ImportError):
    """pandas is not installed; the message says how to install it."""


def pandas():
    """The pandas module, or :class:`PandasMissing` when it is not installed."""
    try:
        import pandas as pd
    except ImportError:
        raise PandasMissing(INSTALL_PANDAS) from None
    return pd


def _frame(pd, rows: list, columns: list):
    """A DataFrame of ``rows`` with ``columns`` in order; label columns categorical."""
    df = pd.DataFrame(rows, columns=columns)
    for col, order in _ORDER.items():
        if col in df.columns:
            df[col] = pd.Categorical(df[col], categories=list(order), ordered=True)
    return df


def _side(kind: str) -> str:
    return "guest" if kind == "vcpu" else "host"


def _table(tables: dict, name: str) -> list:
    try:
        return tables[name]
    except KeyError:
        raise EmuError(f"this result has no {name!r} table (a run writes exits, tlb, cycles "
                       f"and profile; a summary alone has none)") from None


def _hist_rows(profile: dict) -> list:
    """The rows of the ``profile_hist`` frame from the summary's profile."""
    rows = []
    for step in PROFILE_STEPS:
        hists = [("cycles", profile[step].get("hist", {}), CYCLE_BUCKETS)]
        if "entries_hist" in profile[step]:
            hists.append(("entries", profile[step]["entries_hist"], SCAN_BUCKETS))
        for measure, hist, names in hists:
            for i, name in enumerate(names):
                if name in hist:
                    high = int(names[i + 1]) - 1 if i + 1 < len(names) else None
                    rows.append({"step": step, "measure": measure, "low": int(name),
                                 "high": high, "count": hist[name]})
    return rows


def run_frames(summary: dict, tables: dict, miss_log=None) -> dict:
    """{name: DataFrame} of one run (the module docstring lists them).

    ``tables`` is ``Result.tables`` (lists of row dicts, as the CSVs hold
    them); ``miss_log`` the per-miss log's columns, or None.  Raises :class:`PandasMissing` without pandas, and
    :class:`~emu.errors.EmuError` when one of the run's tables is missing.
    """
    pd = pandas()
    exits = _table(tables, "exits")
    tlb = _table(tables, "tlb")
    owners, misses = [], []
    for row in tlb:
        counters = {k: v for k, v in row.items()
                    if k not in ("context", "kind") and not k.startswith(_TLB_COUNTERS_PREFIX)}
        owner = {"context": row["context"], "kind": row["kind"], "side": _side(row["kind"])}
        owners.append({**owner, **counters})
        misses += [{**owner, "cause": c, "misses": row.get(_TLB_COUNTERS_PREFIX + c, 0)}
                   for c in MISS_CAUSES]
    rep = summary["repopulation"]
    frames = {
        "exits": _frame(pd, exits, list(RUN_TABLE_COLUMNS["exits"])),
        "tlb": _frame(pd, owners, list(owners[0]) if owners else ["context", "kind", "side"]),
        "misses": _frame(pd, misses, ["context", "kind", "side", "cause", "misses"]),
        "cycles": _frame(pd, _table(tables, "cycles"), list(RUN_TABLE_COLUMNS["cycles"])),
        "profile": _frame(pd, _table(tables, "profile"), list(RUN_TABLE_COLUMNS["profile"])),
        "profile_hist": _frame(pd, _hist_rows(summary["fastpath_profile"]),
                               ["step", "measure", "low", "high", "count"]),
        "repopulation": pd.DataFrame({"k": range(len(rep["misses"])), "misses": rep["misses"],
                                      "accesses": rep["accesses"]}),
    }
    for name, rows in tables.items():
        if name not in _RUN_TABLES:
            frames[name] = _frame(pd, rows, list(rows[0]) if rows else [])
    if miss_log is not None:
        log = pd.DataFrame(miss_log)
        for col in ("cause", "outcome"):
            log[col] = pd.Categorical(log[col], categories=list(_ORDER[col]), ordered=True)
        frames["miss_log"] = log
    return frames


def concat_frames(labelled: list) -> dict:
    """Several runs' frames stacked: ``labelled`` is ``[(labels, frames)]``,
    ``labels`` a dict of columns (e.g. ``{"kvm.strategy": "shadow"}``) put
    first in every row of that run's frames.  A frame only some runs have is
    stacked over those."""
    pd = pandas()
    names: list = []
    for _, frames in labelled:
        names += [n for n in frames if n not in names]
    out = {}
    for name in names:
        parts = []
        for labels, frames in labelled:
            if name in frames:
                df = frames[name].copy()
                for i, (col, value) in enumerate(labels.items()):
                    df.insert(i, col, value)
                parts.append(df)
        out[name] = pd.concat(parts, ignore_index=True)
    return out

"""The per-miss event log (``sim.miss_log``): one row per guest TLB miss.

A machine with the log on keeps one record array (the backend's
``MISS_DTYPE``) of ``sim.miss_log_max`` rows that every vCPU's fast path
writes into (``Ctx.set_miss_log``): when the miss began, which vCPU, the EA
and its access kind, the miss's cause, the guest TLB entries the walk
scanned, how the handler ended and the cycles of each of its steps (the
steps the profile counts, ``emu.codes.PROFILE_STEPS``; the C path's steps
are added to the row of the miss that deferred to it).  Once the array is
full later misses are not logged: the summary's ``miss_log`` says how many
rows were kept and how many misses were dropped.

:func:`miss_columns` turns the rows into named columns, the shape
``Result.miss_log`` holds and ``misses.parquet`` (or ``misses.csv``) stores.
"""

from __future__ import annotations

import numpy as np

from emu.codes import KINDS, MISS_CAUSES, MISS_OUTCOMES, PROFILE_STEPS

#: The columns of the log, in order (one ``<step>_cycles`` per profile step).
MISS_COLUMNS = (("time", "time_us", "vcpu", "ea", "kind", "cause", "walk_entries", "outcome")
                + tuple(f"{step}_cycles" for step in PROFILE_STEPS))
#: The columns that hold names.
TEXT_COLUMNS = ("vcpu", "kind", "cause", "outcome")


class MissLog:
    """The rows a machine's vCPUs log into, and how many are written."""

    def __init__(self, backend, rows: int):
        self.rows = np.zeros(rows, backend.MISS_DTYPE)
        self.count = np.zeros(1, np.int64)

    def attach(self, ctx) -> None:
        """Log the misses of the fast-path context ``ctx``."""
        ctx.set_miss_log(self.rows, self.count)

    def restart(self, ctx) -> None:
        """Forget the rows of ``ctx`` (the end of its warm-up); nothing may be
        open in the log then (a scheduling point: every miss has ended)."""
        ctx.close_miss()
        n = int(self.count[0])
        keep = self.rows[:n][self.rows["ctx"][:n] != ctx.ctx]
        self.rows[:len(keep)] = keep
        self.count[0] = len(keep)

    def written(self) -> np.ndarray:
        """A copy of the rows written, in the order the misses began."""
        return self.rows[:int(self.count[0])].copy()


def miss_columns(rows: np.ndarray, names: dict, clock_mhz: int) -> dict:
    """{column: numpy array} of logged rows (MISS_COLUMNS, in order);
    ``names``: context id -> vCPU name."""
    outcome = rows["outcome"]
    if len(rows) and (outcome < 0).any():
        raise AssertionError("internal: a logged miss without its outcome")
    cols = {
        "time": rows["time"].astype(np.int64),
        "time_us": rows["time"] / clock_mhz,
        "vcpu": np.array([names[int(c)] for c in rows["ctx"]], dtype=object),
        "ea": rows["ea"].astype(np.int64),
        "kind": np.array(KINDS, dtype=object)[rows["kind"]],
        "cause": np.array(MISS_CAUSES, dtype=object)[rows["cause"]],
        "walk_entries": rows["scanned"].astype(np.int64),
        "outcome": np.array(MISS_OUTCOMES, dtype=object)[outcome],
    }
    for i, step in enumerate(PROFILE_STEPS):
        cols[f"{step}_cycles"] = rows["steps"][:, i].astype(np.int64)
    return cols

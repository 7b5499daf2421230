"""A sweep's output directory, and resuming into it.

A run is done when its ``runs/<id>/summary.json`` is there (it is written
last, atomically), so a sweep started again after an interruption skips the
runs it finds done and runs the others.  Before, it takes the directory's
lock (``DIR/.sweep.lock``: one sweep at a time) and removes the temporary
files and folders interrupted writes left.
"""

from __future__ import annotations

import contextlib
import os
import time
from typing import Optional

from emu.errors import ConfigError, spelled
from emu.run import outdir
from emu.run.executors import SweepError
from emu.run.files import read_json, read_summary
from emu.run.plan import Run, SweepPlan
from emu.run.table import summary_row, write_table

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None

#: Seconds between two rewrites of the results table during a sweep.
TABLE_EVERY = 30.0


@contextlib.contextmanager
def locked(out_dir: str, what: str = "sweep"):
    """Hold DIR/.sweep.lock: one sweep (or sensitivity study, ``what``) at a
    time in a directory; the lock file names the one holding it, for the
    one refused to say."""
    if fcntl is None:  # pragma: no cover - not POSIX
        yield
        return
    # taken with the folder's parent held, as a stage's commit holds it
    # (outdir.Stage.commit): a commit into the folder then comes before the
    # lock (the caller checks the folder again, under the lock) or sees it
    with outdir.held(os.path.dirname(os.path.abspath(out_dir))):
        fd = os.open(os.path.join(out_dir, outdir.LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            taken = True
        except OSError:
            taken = False
    try:
        if not taken:
            raise ConfigError(f"{out_dir}: another emu {outdir.lock_holder(fd)} is writing "
                              f"into this directory")
        os.ftruncate(fd, 0)
        os.pwrite(fd, what.encode("ascii") + b"\n", 0)
        yield
    finally:
        os.close(fd)


def check_sweep_dir(out_dir: str, plan: SweepPlan, force: bool = False) -> Optional[str]:
    """Refuse (ConfigError, one line) a DIR holding files emu did not write
    (even with ``force``), or another result, unless ``force``: a run, a
    comparison, a study, a sensitivity study, or a sweep
    with runs that ``plan`` leaves out (another scenario, ``--set``, grid or
    ``--seeds``; a sweep that extends the one in DIR resumes into it).
    Returns the kind of result that ``force`` lets the sweep replace, if any.
    """
    # files emu did not write (even with --force), or another kind of result
    h = outdir.check_replaceable(out_dir, "sweep", force, where=f"{spelled('--out')} {out_dir}")
    if h.kind not in (None, "sweep"):
        return h.kind
    if h.kind == "sweep":
        before = read_json(os.path.join(out_dir, "sweep.json"))
        runs = before.get("runs") if isinstance(before, dict) else None
        ids = {r.get("id") for r in runs if isinstance(r, dict)} if isinstance(runs, list) else None
        left_out = None if ids is None else len(ids - {r.id for r in plan.runs})
        if (ids is None or left_out) and not force:
            what = ("its sweep.json cannot be read" if ids is None else
                    f"this sweep leaves out {left_out} of its runs (another scenario, "
                    f"{spelled('--set')}, grid, {spelled('--seeds')} or a trace file rewritten "
                    "since)")
            raise ConfigError(f"{spelled('--out')} {out_dir}: holds {h.text}; {what}: pass "
                              f"{spelled('--force')} to replace its results table, or choose "
                              "another folder")
    return None


def remove_leftovers(out_dir: str) -> None:
    """Remove what killed writes left in DIR, DIR/runs and its run folders."""
    outdir.remove_leftovers(out_dir)
    runs = os.path.join(out_dir, "runs")
    if os.path.isdir(runs):
        outdir.remove_leftovers(runs)
        for d in os.listdir(runs):
            outdir.remove_leftovers(os.path.join(runs, d))


class SweepDir:
    """The runs of ``plan`` done in ``out_dir``, their table rows, and the table.

    ``done`` holds the ids of the runs known to be done; :meth:`collect`
    adds those found done on disk, :meth:`finished` one that just completed.
    """

    def __init__(self, plan: SweepPlan, out_dir: str):
        self.plan, self.out_dir = plan, out_dir
        self.done: set = set()
        self.last_table = time.monotonic()
        self.rows: dict = {}         # run id -> its table row, read once from its run dir

    def run_dir(self, run: Run) -> str:
        return os.path.join(self.out_dir, "runs", run.id)

    def args(self, run: Run) -> tuple:
        """The arguments of :func:`~emu.run.executors.execute_run` for ``run``."""
        meta = {"id": run.id, "index": run.index, "grid": dict(run.grid),
                "replicate": run.replicate, "seed": run.seed, "overrides": list(run.overrides)}
        return (self.plan.scenario_data, self.plan.base_dir, list(run.overrides),
                self.run_dir(run), meta)

    def row(self, run: Run) -> Optional[dict]:
        """The run's row, from its run directory; None while it is not done."""
        if run.id not in self.rows:
            s = read_summary(self.run_dir(run))
            if s is None:
                return None
            self.rows[run.id] = summary_row(self.plan, run, s)
        return self.rows[run.id]

    def collect(self) -> None:
        """Count the runs found done on disk (before a sweep, or while it stops)."""
        for run in self.plan.runs:
            if run.id not in self.done and self.row(run) is not None:
                self.done.add(run.id)

    def finished(self, run: Run) -> None:
        """``run`` completed: count it (its summary must be there)."""
        if self.row(run) is None:
            raise SweepError(f"{run.label} finished but {self.run_dir(run)}/summary.json is "
                             f"missing: with Dask, {spelled('--out')} must be on a filesystem the "
                             "workers share")
        self.done.add(run.id)

    def tick(self) -> None:
        """Rewrite the table if it is TABLE_EVERY seconds old."""
        if time.monotonic() - self.last_table >= TABLE_EVERY:
            self.write_table()

    def write_table(self) -> list:
        """Rewrite the results table from the runs done; return its rows."""
        self.last_table = time.monotonic()
        rows = [r for r in (self.row(run) for run in self.plan.runs if run.id in self.done)
                if r is not None]
        write_table(self.plan, self.out_dir, rows)
        return rows

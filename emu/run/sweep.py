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
  (:meth:`emu.run.Result.write`: the folder is put in place whole, so a
  ``runs/<id>/summary.json`` marks a run done).  ``<id>`` is a stable hash of the
  scenario file's bytes and the run's overrides (``--set`` ones, then the
  grid's, then ``seed=``), so a run's directory never depends on the order
  or the executor, and an extended grid reuses the runs it already has.
- ``results.parquet`` (``results.csv`` without pyarrow): one row per run in
  grid order (the first ``--grid`` varies slowest, the seed fastest) with the
  run id, the grid values, the replicate index, the seed, the design's label
  and whether no kernel shipped it (``design``, ``hypothetical``) and the key
  figures (:data:`emu.run.table.METRICS`); rewritten atomically from the run
  directories every :data:`emu.run.resume.TABLE_EVERY` seconds and at the
  end, whatever the completion order.
- ``sweep.json``: the scenario, the grid, the seeds and the run list.

The table's figures are a run's headline figures, each through
:mod:`emu.stats.figures`: cost per guest access, the share of every cycle
component (fast path and save/restore among them), exits by category, guest
TLB misses by cause, misses per resume, memory.  ``emu sweep`` ends by
printing each grid point's headline figures as the mean and 95 % t-interval
over its seeds (:func:`emu.run.table.format_grid`); ``emu.load(DIR)`` gives
the table as a pandas DataFrame.

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
the others; leftover temporary files (``.NAME.XXXXXXXX.tmp``) and the
temporary folders of killed runs (``runs/.ID.emu-new-XXXXXXXX``) are removed
first.  A lock (``DIR/.sweep.lock``) keeps two sweeps out of one DIR at once.

DIR may hold this sweep (interrupted) or one that this sweep extends (more
values, more seeds): the runs it has are reused.  A DIR holding a run, a
comparison, or a sweep with runs this one leaves out is refused unless
``--force`` (which replaces the results table and removes the files of a
run, a comparison, a study or a sensitivity study, their run folders
included; the run folders of another sweep stay in ``runs/``).

Exit status: 0 done; 2 bad input (one line on stderr, nothing written: every
run's configuration is validated before anything starts, and a Dask
scheduler's address is checked and connected to before DIR is touched); 1 a
worker process died;
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

The parts: :mod:`emu.run.plan` (grid x seeds -> runs), :mod:`emu.run.table`
(the results table), :mod:`emu.run.executors` (one loop, three backends),
:mod:`emu.run.resume` (the output directory), :mod:`emu.run.progress`.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import tempfile
import time
from typing import Optional

from emu.errors import ConfigError, check_flag, spelled
from emu.run.executors import (SweepError, check_executor, check_scheduler_address,
                               dask_client, make_backend, run_all)
from emu.run.files import read_summary, write_json
from emu.run.plan import SweepPlan, plan_sweep
from emu.run.progress import SweepProgress, check_progress_options
from emu.run.outdir import check_path, check_room, remove_result
from emu.run.resume import SweepDir, check_sweep_dir, locked, remove_leftovers
from emu.run.table import table_name


class SweepInterrupted(KeyboardInterrupt):
    """Ctrl-C during a sweep: ``done`` of ``total`` runs are in ``out_dir``.

    ``at_least``: runs were still running on the workers of a Dask cluster
    the command did not start when the sweep stopped, which finish them into
    ``out_dir`` after it (:data:`AT_LEAST`):
    ``done`` counts the runs done at the stop, and a resume counts those too.
    """

    #: Why a count of runs done is only a lower bound, for the line that gives it.
    AT_LEAST = "the Dask workers finish the runs they had started"

    def __init__(self, done: int, total: int, out_dir: str, at_least: bool = False):
        super().__init__(f"{'at least ' if at_least else ''}{done} of {total} runs done")
        self.done, self.total, self.out_dir = done, total, out_dir
        self.at_least = at_least


def run_sweep(scenario_path, grids=(), seeds: Optional[int] = None, out_dir=None,
              executor: str = "local", workers: Optional[int] = None,
              scheduler: Optional[str] = None, progress: Optional[str] = None,
              overrides=(), *, client=None, stream=None, force: bool = False) -> list[dict]:
    """Run a sweep into ``out_dir`` and return its table's rows, in grid order.

    ``scenario_path``: a scenario (as :func:`~emu.run.plan.plan_sweep`
    takes it) or the :class:`~emu.run.plan.SweepPlan` that function made
    (which holds its grids, seeds and overrides);
    ``grids``: ``"key=v1,v2"`` strings (or ``(key, values)`` pairs, or a
    dict); ``seeds``: None (the scenario's seed) or N replicates; ``executor``:
    ``"local"`` (``workers`` processes, default ``os.cpu_count()``; 1 runs in
    this process) or ``"dask"`` (``scheduler`` address, or a ``LocalCluster``
    of ``workers`` processes on 127.0.0.1; or pass a ``client``);
    ``progress``: None/"none", "auto", "bar" or "lines" (on ``stream``,
    default stderr).  Runs already done in ``out_dir`` are skipped.  An
    ``out_dir`` holding another result (a run, a comparison, a sweep with runs
    this one leaves out) is refused unless ``force``
    (:func:`emu.run.resume.check_sweep_dir`).

    Raises :class:`ConfigError` (bad input, before anything is written),
    :class:`SweepInterrupted` (Ctrl-C; a KeyboardInterrupt),
    :class:`SweepError` (a worker died) or the failing run's exception.
    """
    if out_dir is None:
        raise ConfigError(f"{spelled('--out')}: a directory for the results is required")
    check_flag("force", force)
    check_progress_options(progress, stream)
    check_executor(executor, workers, scheduler, client)
    if scheduler is not None:
        check_scheduler_address(scheduler)
    out_dir = check_path(out_dir)
    if isinstance(scenario_path, SweepPlan):
        given = [name for name, value in (("grids", grids), ("seeds", seeds),
                                          ("overrides", overrides)) if value]
        if given:
            raise ConfigError(f"{', '.join(given)}: a SweepPlan holds its own; give them to "
                              f"plan_sweep")
        plan = scenario_path
    else:
        plan = plan_sweep(scenario_path, grids, seeds, overrides)
    check_room(os.path.join(out_dir, "runs", plan.runs[0].id),
               where=f"{spelled('--out')} {out_dir}")
    check_sweep_dir(out_dir, plan, force)      # before anything runs; again once locked

    with contextlib.ExitStack() as stack:
        if executor == "dask" and client is None and any(
                read_summary(os.path.join(out_dir, "runs", r.id)) is None for r in plan.runs):
            # connect (or start the local cluster) before writing anything
            client = stack.enter_context(dask_client(scheduler, workers))
        return _run_plan(plan, out_dir, executor, workers, scheduler, progress, client, stream,
                         force)


def _run_plan(plan: SweepPlan, out_dir: str, executor, workers, scheduler, progress, client,
              stream, force: bool = False) -> list:
    """Run what ``out_dir`` does not hold yet of ``plan``; the table's rows.
    The folder is checked again once it is locked (:func:`check_sweep_dir`:
    another command may have written into it since), and the result that
    ``force`` lets the sweep replace (a run, a comparison, a study, ...)
    is removed first."""
    def made(folder: str) -> None:
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as err:
            raise ConfigError(f"{spelled('--out')} {out_dir}: cannot create the directory "
                              f"({err.strerror or err})") from None
    made(out_dir)
    with locked(out_dir):
        try:
            replaced = check_sweep_dir(out_dir, plan, force)
        except ConfigError as err:
            raise ConfigError(f"{err} (the folder changed since the sweep began)") from None
        made(os.path.join(out_dir, "runs"))     # not while another command holds the folder
        remove_leftovers(out_dir)
        if replaced:
            remove_result(out_dir, keep_runs={r.id for r in plan.runs})
        write_json(os.path.join(out_dir, "sweep.json"), dict(plan.to_json(), results=table_name()))
        total = len(plan.runs)
        sweep_dir = SweepDir(plan, out_dir)
        done = sweep_dir.done
        sweep_dir.collect()                          # the runs already done
        todo = [r for r in plan.runs if r.id not in done]
        if todo:
            # a report of the sweep as it was would describe fewer runs than the table
            with contextlib.suppress(FileNotFoundError):
                os.remove(os.path.join(out_dir, "report.html"))
        backend = make_backend(executor, workers, len(todo), client, scheduler)
        bar = SweepProgress(progress, total, len(done), f"running {len(todo)} {backend.where}",
                            stream)
        finished = False

        def idle():
            bar.tick()
            sweep_dir.tick()

        def one_done(run):
            sweep_dir.finished(run)
            bar.advance()
            idle()

        try:
            if todo:
                with backend:
                    run_all(backend, todo, sweep_dir.args, one_done, idle)
            finished = True
        except BaseException as err:
            bar.close()
            with contextlib.suppress(BaseException):
                sweep_dir.collect()                  # runs that finished while stopping
                sweep_dir.write_table()
            if isinstance(err, KeyboardInterrupt):
                raise SweepInterrupted(len(done), total, out_dir,
                                       backend.finishes_started and len(done) < total) from None
            if isinstance(err, SweepError):
                err.done, err.total = len(done), total
            raise
        finally:
            bar.close(finished)
        rows = sweep_dir.write_table()
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
                client = stack.enter_context(dask_client(scheduler, workers))
                client.run(lambda: __import__("emu.run"))   # warm the workers' imports
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

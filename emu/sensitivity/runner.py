"""How a study's runs are executed: jobs in, summaries out.

A study hands its runner a list of :class:`Job` ``(label, scenario,
overrides)`` and gets their summaries back, either as a list in job order or
as a mapping ``label -> summary`` (an executor that finishes runs out of order
returns the mapping).  The study reads nothing else from a run, so any
executor that runs ``emu.run.run(scenario, overrides)`` somewhere (a
process pool, a Dask cluster, a sweep directory that is resumed) can stand in
for :func:`local_runner`.

A job's label is a stable hash of its overrides (the scenario is the same for
every job of a study), so it names the same run whatever the order of the jobs
or the executor, and can name the run's directory for a resume.

:func:`local_runner` runs the jobs in this process and writes nothing.
:class:`StudyRunner` runs them on the executors of ``emu sweep``
(:mod:`emu.run.executors`: in this process, a pool of local processes, or a
Dask cluster), each into ``DIR/runs/<label>/``; a run whose ``summary.json``
is there is not run again, so a study started again into the same directory
after an interruption resumes where it stopped.

The run API (``run``, ``resolve``, ``default_scenario``, the executors) is
imported here and nowhere else in this package: repoint these names when it
moves.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from typing import Any, Callable, NamedTuple, Optional, Union

from emu.params import default_scenario   # the scenario API (see the module docstring)
from emu.errors import ConfigError, spelled
from emu.run import (SweepError, SweepInterrupted, plan_sweep, resolve, run,  # the run API
                     summary_shape)
from emu.run.executors import check_executor, dask_client, make_backend, run_all
from emu.run import outdir
from emu.run.files import read_json, read_summary
from emu.run.progress import SweepProgress, check_progress_options
from emu.run.resume import locked, remove_leftovers

from emu.sensitivity.spec import SensitivityError

__all__ = ["Job", "Runner", "StudyRunner", "check_study_dir", "default_scenario", "job_label",
           "local_runner", "resolve_scenario", "run_jobs", "scenario_costs", "summary_shape"]

_LABEL_VERSION = 1


class Job(NamedTuple):
    """One run of a study: the scenario with ``overrides`` (``KEY=VALUE`` texts) applied."""

    label: str
    scenario: Any
    overrides: tuple


#: A runner: jobs in, their summaries out (a list in job order, or label -> summary).
Runner = Callable[[Sequence[Job]], Union[Sequence[Mapping], Mapping[str, Mapping]]]


def job_label(overrides: Sequence[str]) -> str:
    """The stable label of the run with ``overrides``."""
    text = json.dumps({"v": _LABEL_VERSION, "overrides": list(overrides)},
                      separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def local_runner(jobs: Sequence[Job]) -> list[dict]:
    """Run every job in this process, in order; their summaries in job order."""
    return [run(job.scenario, list(job.overrides)).summary for job in jobs]


def resolve_scenario(scenario: Any, overrides: Sequence[str] = (), where: str = ""):
    """The scenario with ``overrides`` applied; a bad key or value is one line."""
    try:
        return resolve(scenario, list(overrides))
    except ConfigError as err:
        if not where:
            raise
        raise SensitivityError(f"{where}: {err}") from None


def scenario_costs(scenario) -> tuple[dict, int]:
    """A resolved scenario's cost overrides and its clock (MHz)."""
    return dict(scenario.costs), scenario.machine.clock_mhz


def run_jobs(runner: Runner, jobs: Sequence[Job]) -> dict[str, Mapping]:
    """``label -> summary`` for ``jobs`` through ``runner``, whatever shape it returns."""
    if not jobs:
        return {}
    got = runner(list(jobs))
    if isinstance(got, Mapping):
        missing = [j.label for j in jobs if j.label not in got]
        if missing:
            raise RuntimeError(f"the runner returned no summary for run {missing[0]} "
                               f"({len(missing)} of {len(jobs)} missing)")
        return {j.label: got[j.label] for j in jobs}
    got = list(got)
    if len(got) != len(jobs):
        raise RuntimeError(f"the runner returned {len(got)} summaries for {len(jobs)} runs")
    return {j.label: s for j, s in zip(jobs, got)}


def check_study_dir(out_dir: str, labels, metric: str, better: str,
                    force: bool = False) -> None:
    """Make ``out_dir`` ready for a study of the runs ``labels`` on ``metric``
    (``better``), before anything runs: refuse (ConfigError, one line) a
    folder holding files emu did not write; refuse, unless ``force``, one
    holding another kind of result (a run, a comparison, a sweep, a study)
    or another sensitivity study: one with runs this study leaves out
    (another scenario, --set, --compare, method, costs or break-even) or
    another metric.  The same study, finished or interrupted, is resumed;
    with ``force`` another result is removed (the runs this study reuses
    stay), so that the folder holds one result."""
    h = outdir.check_replaceable(out_dir, "sensitivity", force, f"{spelled('--out')} {out_dir}")
    if h.kind is None:
        return
    if h.kind == "sensitivity":
        runs = os.path.join(out_dir, "runs")
        done = {r for r in (os.listdir(runs) if os.path.isdir(runs) else ()) if r[:1] != "."}
        left_out = len(done - set(labels))          # (".": a killed run's temporaries)
        before = read_json(os.path.join(out_dir, "sensitivity.json"))
        asked = (before.get("metric"), before.get("better")) if isinstance(before, dict) else None
        if left_out:
            why = (f"this study leaves out {left_out} of its runs (another scenario, "
                   f"{spelled('--set')}, {spelled('--compare')}, method, costs or break-even)")
        elif asked not in (None, (metric, better)):
            why = f"this study is on {metric} ({better} is better)"
        else:
            return
        if not force:
            raise ConfigError(f"{spelled('--out')} {out_dir}: holds {h.text}; {why}: pass "
                              f"{spelled('--force')} to replace it, or choose another folder")
    with locked(out_dir, "sensitivity study"):
        outdir.remove_result(out_dir, keep_runs=set(labels))


#: A call with this many runs to do or fewer reports no progress: the study's
#: baseline pair, run first to check the metric, is not worth a report.
_QUIET_RUNS = 2


class _StudyRun(NamedTuple):
    """A job as :func:`emu.run.executors.run_all` takes a run."""

    index: int
    id: str                  # the job's label: its directory under DIR/runs/
    overrides: tuple

    @property
    def label(self) -> str:
        return f"run {self.id} ({', '.join(self.overrides)})"


class StudyRunner:
    """Run a study's jobs on the executors of ``emu sweep``, each into ``DIR/runs/<label>/``.

    ``executor``, ``workers``, ``scheduler`` and ``client`` are those of
    :func:`emu.run.run_sweep` (local processes by default, ``workers=1`` in
    this process; ``"dask"`` on ``scheduler`` or on a ``LocalCluster`` of
    ``workers`` processes); ``progress`` is ``None``, ``"auto"``, ``"bar"`` or
    ``"lines"`` (on ``stream``).  ``out_dir`` None: a temporary directory,
    removed on exit.  Use it as a context manager: the directory's lock, the
    Dask client and the temporary directory are held until exit.

    A run whose ``summary.json`` is in its directory is read, not run again.
    Each run directory's ``run.json`` records the hash of the scenario it ran
    (``study.scenario_sha256``): a directory holding runs of another scenario
    is refused.  A run that fails stops the study (its exception names the
    run); Ctrl-C raises :class:`~emu.run.SweepInterrupted` and a dead worker
    :class:`~emu.run.SweepError`, each with ``done`` and ``total``.
    """

    def __init__(self, out_dir=None, executor: str = "local", workers: Optional[int] = None,
                 scheduler: Optional[str] = None, progress: Optional[str] = None, *,
                 client=None, stream=None):
        check_executor(executor, workers, scheduler, client)
        self.out_dir = os.path.abspath(os.fspath(out_dir)) if out_dir is not None else None
        self._kept = out_dir is not None        # else a temporary directory, removed on exit
        if self.out_dir and os.path.exists(self.out_dir) and not os.path.isdir(self.out_dir):
            raise ConfigError(f"{spelled('--out')} {self.out_dir}: exists and is not a directory")
        self.executor, self.workers, self.scheduler = executor, workers, scheduler
        self.client, self.progress, self.stream = client, progress, stream
        check_progress_options(progress, stream)
        # over all calls: the runs found done, the runs run, the jobs asked for
        self.runs_done = self.runs_run = self.jobs_seen = 0
        self._ran: set = set()          # the runs this runner ran (not found done before it)
        self._before = 0                # runs found done, not by this runner
        self._stack = contextlib.ExitStack()
        self._ready = False
        self._sources: dict = {}
        #: called once the folder is locked, before the first run: the check
        #: of what the folder holds, again (:func:`check_study_dir`)
        self.recheck: Optional[Callable[[], None]] = None

    def __enter__(self) -> "StudyRunner":
        return self

    def __exit__(self, *exc) -> None:
        self._stack.close()

    def run_dir(self, label: str) -> str:
        return os.path.join(self.out_dir, "runs", label)

    def _directory(self) -> None:
        """Create and lock the output directory (once), remove leftover temporary files."""
        if self._ready:
            return
        if self.out_dir is None:
            self.out_dir = self._stack.enter_context(
                tempfile.TemporaryDirectory(prefix="emu-sensitivity-"))
        runs = os.path.join(self.out_dir, "runs")
        try:
            os.makedirs(self.out_dir, exist_ok=True)
            self._stack.enter_context(locked(self.out_dir, "sensitivity study"))
            if self.recheck is not None:
                try:
                    self.recheck()
                except ConfigError as err:
                    raise ConfigError(f"{err} (the folder changed since the study began)") \
                        from None
            os.makedirs(runs, exist_ok=True)    # not while another command holds the folder
        except OSError as err:
            raise ConfigError(f"{spelled('--out')} {self.out_dir}: cannot create the directory "
                              f"({err.strerror or err})") from None
        remove_leftovers(self.out_dir)
        self._ready = True

    def _source(self, scenario) -> tuple:
        """``(sha256, raw data, base_dir)`` of a job's scenario, as the workers get it."""
        key = id(scenario)
        if key not in self._sources:
            plan = plan_sweep(scenario)
            self._sources[key] = (plan.scenario_sha256, plan.scenario_data, plan.base_dir,
                                  scenario)          # keeps the object (and so its id) alive
        return self._sources[key][:3]

    def _finished(self, run: _StudyRun, sha: str) -> Optional[dict]:
        """The summary of ``run`` if its directory holds it (of this scenario), else None."""
        if self.out_dir is None:
            return None
        run_dir = self.run_dir(run.id)
        summary = read_summary(run_dir)
        if summary is None:
            return None
        try:
            with open(os.path.join(run_dir, "run.json"), encoding="utf-8") as f:
                ran = json.load(f).get("sweep", {}).get("study", {}).get("scenario_sha256")
        except (OSError, ValueError, AttributeError):
            ran = None
        if ran != sha:
            raise ConfigError(f"{spelled('--out')} {self.out_dir}: runs/{run.id} holds a run of "
                              "another scenario; give this study another directory")
        return summary

    def __call__(self, jobs: Sequence[Job]) -> dict[str, dict]:
        """``label -> summary`` of every job, running those not done yet."""
        runs, args, summaries = [], {}, {}
        for i, job in enumerate(jobs):
            sha, data, base_dir = self._source(job.scenario)
            run_ = _StudyRun(i, job.label, tuple(job.overrides))
            summary = self._finished(run_, sha)
            if summary is not None:
                summaries[job.label] = summary
                continue
            runs.append(run_)
            args[job.label] = (data, base_dir, list(job.overrides), sha)
        self.runs_done += len(summaries)
        self.jobs_seen += len(jobs)
        self._before += len(set(summaries) - self._ran)
        if not runs:
            return summaries
        if self.executor == "dask" and self.client is None:
            # connect (or start the local cluster) before writing anything
            self.client = self._stack.enter_context(dask_client(self.scheduler, self.workers))
        self._directory()

        def args_of(r: _StudyRun) -> tuple:
            data, base_dir, overrides, sha = args[r.id]
            meta = {"study": {"label": r.id, "scenario_sha256": sha, "overrides": overrides}}
            return data, base_dir, overrides, self.run_dir(r.id), meta

        def finished(r: _StudyRun) -> None:
            summary = read_summary(self.run_dir(r.id))
            if summary is None:
                raise SweepError(f"{r.label} finished but its summary.json is missing: with Dask, "
                                 f"{spelled('--out')} must be on a filesystem the workers share")
            summaries[r.id] = summary
            self.runs_run += 1
            self._ran.add(r.id)
            bar.advance()

        total = self.jobs_seen                       # the study's runs so far, all calls
        backend = make_backend(self.executor, self.workers, len(runs), self.client,
                               self.scheduler)
        quiet = len(runs) <= _QUIET_RUNS
        bar = SweepProgress(None if quiet else self.progress, total, total - len(runs),
                            f"running {len(runs)} {backend.where}", self.stream,
                            name="sensitivity", before=self._before)
        done = False
        try:
            with backend:
                run_all(backend, runs, args_of, finished, bar.tick)
            done = True
        except KeyboardInterrupt:
            raise SweepInterrupted(self.runs_done + self.runs_run, self.jobs_seen, self.out_dir,
                                   self._kept and backend.finishes_started
                                   and len(summaries) < len(jobs)) from None
        except SweepError as err:
            err.done, err.total = self.runs_done + self.runs_run, self.jobs_seen
            raise
        finally:
            bar.close(done)
        return summaries

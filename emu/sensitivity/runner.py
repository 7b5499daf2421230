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

The run API (``run``, ``resolve``, ``default_scenario``) is imported here and
nowhere else in this package: repoint these names when it moves.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any, Callable, NamedTuple, Union

from emu.params import default_scenario   # the scenario API (see the module docstring)
from emu.errors import ConfigError
from emu.run import resolve, run    # the run API (see the module docstring)

from emu.sensitivity.spec import SensitivityError

__all__ = ["Job", "Runner", "default_scenario", "job_label", "local_runner",
           "resolve_scenario", "run_jobs", "scenario_costs"]

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

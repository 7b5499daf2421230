"""Run one scenario and hold what it produced: the Python API behind ``emu run``.

A scenario is built from a :class:`~emu.params.Scenario` (or a dict in the
TOML shape, or a TOML file), run on a :class:`~emu.machine.Machine`, and its
counters read into a :class:`Result`: one JSON summary plus tidy tables.
"""

from __future__ import annotations

import os
import platform
import time
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import simpy

from emu import __version__
from emu.analysis.display import describe, design_name, headline_html, result_repr
from emu.analysis.frames import run_frames
from emu.errors import ConfigError, check_working_folder
from emu.params import (KeyUse, Scenario, design, load_scenario, scenario_from_dict,
                        scenario_to_dict)
from emu.machine import Machine
from emu.run.files import atomic_path, dumps_json, rows_to_csv, write_json, write_text
from emu.run.misses import write_misses
from emu.run.outdir import Stage
from emu.run.plan import override_list
from emu.run.progress import progress_of
from emu.workload.traces.source import check_pipe_traces
from emu.stats import collect
from emu.stats.figures import cycles_per_guest_access
from emu.stats.misslog import miss_columns


def resolve(scenario, overrides=(), key_use: Optional[KeyUse] = None) -> Scenario:
    """A Scenario from a Scenario, a dict or a TOML path, with ``--set``
    overrides (:func:`override_list`).  ``key_use``: None, or what collects
    each workload key set where it does nothing instead of refusing it, at a
    point of a plan of several runs (:class:`~emu.params.fields.KeyUse`)."""
    check_working_folder()
    overrides = override_list(overrides)
    if isinstance(scenario, Scenario):
        # read again as a file's table would be, even without overrides: one built
        # by hand has its keys judged, and a numpy integer in it is held as an int
        # (the summary is JSON)
        return scenario_from_dict(scenario_to_dict(scenario), overrides,
                                  base_dir=scenario.base_dir, key_use=key_use)
    if isinstance(scenario, dict):
        return scenario_from_dict(scenario, overrides, key_use=key_use)
    if not isinstance(scenario, (str, os.PathLike)):
        raise ConfigError(f"scenario: expected a TOML file's path, a dict or a Scenario, got "
                          f"{type(scenario).__name__} {scenario!r}")
    return load_scenario(os.fspath(scenario), overrides, key_use)


def _design(sc: Scenario) -> dict:
    """What the summary says of the design: its label, the kernel that shipped
    it, whether it is hypothetical."""
    d = design(sc.machine, sc.kvm)
    return {"label": d.label, "commit": d.commit, "hypothetical": d.hypothetical}


def _versions() -> dict:
    return {"emu": __version__, "python": platform.python_version(),
            "numpy": np.__version__, "simpy": simpy.__version__}


@dataclass(repr=False)
class Result:
    """What a run produced: the summary (JSON-ready) and tidy tables (lists of rows).

    In a notebook it shows as a small table of its headline figures; its
    ``repr`` is two lines; :meth:`frames` gives its tables as pandas
    DataFrames.  ``miss_log``: the per-miss log's columns (``sim.miss_log``;
    :mod:`emu.stats.misslog`), None when the run kept none.
    """

    summary: dict
    tables: dict
    wall_seconds: float = 0.0
    execution: dict = field(default_factory=dict)
    arrays: dict = field(default_factory=dict)     # name -> {array name: ndarray} (.npz)
    miss_log: Optional[dict] = None                # column -> ndarray (misses.parquet)

    def write(self, out_dir, force: bool = False, tidy: bool = True,
              inside: bool = False) -> None:
        """Put this run's files in ``out_dir``, replacing what was there as one set.

        The files go to a temporary folder beside ``out_dir`` that then takes
        its place (:class:`~emu.run.outdir.Stage`): a failure or a kill leaves
        the old set or the new one, never a mix.  Refused (EmuError) when
        ``out_dir`` holds files emu did not write, or, unless ``force``,
        another kind of result.  ``tidy``: first remove what killed writers
        left beside ``out_dir`` (:func:`~emu.run.outdir.remove_leftovers`).
        ``inside``: ``out_dir`` is a run folder of a result being written (a
        sweep's runs/ID); any other folder inside a result is refused.
        """
        with Stage(out_dir, "run", force, option="", tidy=tidy, inside=inside) as stage:
            self.write_files(stage.path)
            stage.commit()

    def write_files(self, folder) -> None:
        """Write one CSV per table, the arrays, the per-miss log, run.json
        and, last, summary.json into ``folder`` (each file atomically)."""
        os.makedirs(folder, exist_ok=True)
        for name, rows in self.tables.items():
            write_text(os.path.join(folder, f"{name}.csv"), rows_to_csv(rows))
        for name, arrays in self.arrays.items():
            with atomic_path(os.path.join(folder, f"{name}.npz"), suffix=".npz") as tmp:
                np.savez_compressed(tmp, **arrays)
        if self.miss_log is not None:
            write_misses(folder, self.miss_log)
        write_json(os.path.join(folder, "run.json"),
                   dict(self.execution, wall_seconds=round(self.wall_seconds, 3)))
        write_json(os.path.join(folder, "summary.json"), self.summary)

    def json(self) -> str:
        """The summary as canonical JSON text (what ``summary.json`` holds)."""
        return dumps_json(self.summary)

    def frames(self) -> dict:
        """Tidy pandas DataFrames of the run, by name: exits, tlb, misses (by
        owner and cause), cycles, profile, profile_hist, repopulation, the
        per-miss log (``miss_log``, when the run kept one) and any other
        table the run wrote (:mod:`emu.analysis.frames`).  Needs pandas."""
        return run_frames(self.summary, self.tables, self.miss_log)

    def __repr__(self) -> str:
        return result_repr(self.summary)

    def _repr_html_(self) -> str:
        return headline_html([(design_name(self.summary), self.summary)],
                             describe(self.summary), "design")


def _summary(machine: Machine, snap) -> tuple[dict, dict, dict]:
    """(summary, tidy tables, execution settings) of ``machine`` from its snapshot ``snap``."""
    sc = machine.scenario                  # the design's unset keys resolved
    sections, tables = collect(snap)
    config = scenario_to_dict(sc)
    execution = {"chunk": config["sim"].pop("chunk"), "backend": config["sim"].pop("backend")}
    summary = {
        "emu_version": __version__,
        "versions": _versions(),
        "seed": sc.seed,
        "backend": execution["backend"],
        "config": config,
        "design": _design(sc),
        "costs": machine.costs.to_dict(),
        "simulated_cycles": snap.simulated_cycles,
        "simulated_us": snap.simulated_cycles / machine.clock_mhz,
        "cpus": len(machine.cpus),
        **sections,
    }
    summary["contexts"] = machine.contexts()
    summary["cycles_per_guest_access"] = cycles_per_guest_access(summary)
    return summary, tables, execution


def summary_shape(scenario, overrides=()) -> dict:
    """The summary of ``scenario``'s machine before it runs: every key a run's
    summary has, each counter at 0, a figure of no accesses None and a
    histogram (it holds only the buckets a run filled) empty.  Cheap: nothing
    runs; what a run's summary will hold is checked against it (``--metric``)."""
    machine = Machine(resolve(scenario, overrides))
    return _summary(machine, machine.snapshot())[0]


def run(scenario, overrides=(), progress=None) -> Result:
    """Run one scenario to completion; deterministic for a given config and seed.

    The summary depends on neither the chunk size nor the backend (beyond its
    ``backend`` field): those two execution settings are kept out of its
    ``config`` and reported in ``Result.execution``.  Its ``config`` records
    the keys the design resolved (``kvm.tid_scheme``, ``kvm.handler``) and its
    ``design`` the label, commit and whether it is hypothetical.

    ``progress``: None, ``"auto"``, ``"bar"``, ``"lines"`` or a callable
    ``progress(now_cycles, end_cycles)`` (:func:`emu.run.progress.progress_of`).
    """
    t0 = time.perf_counter()
    return run_resolved(resolve(scenario, overrides), progress, t0)


def run_resolved(sc: Scenario, progress=None, t0: Optional[float] = None) -> Result:
    """Run the Scenario ``sc`` as it is, as :func:`run` does once it has
    resolved its scenario: for a run of a comparison or a sweep, whose keys
    its plan judged over all its runs (a key may do nothing in this one).
    ``t0``: when the run began (its ``wall_seconds`` count from there)."""
    t0 = time.perf_counter() if t0 is None else t0
    check_pipe_traces([sc])
    with progress_of(progress) as progress:
        machine = Machine(sc, progress=progress)
        machine.run()
    snap = machine.snapshot()
    summary, tables, execution = _summary(machine, snap)
    arrays = {}
    if machine.timeline:
        arrays["timeline"] = {
            "time": np.array([t for t, _, _ in machine.timeline], np.int64),
            "cpu": np.array([c for _, c, _ in machine.timeline], np.int16),
            "owner": np.stack([o for _, _, o in machine.timeline]),
        }
    misses = None
    if snap.miss_log is not None:
        names = {c["id"]: c["name"] for c in summary["contexts"]}
        misses = miss_columns(snap.miss_log, names, machine.clock_mhz)
    return Result(summary, tables, time.perf_counter() - t0, execution, arrays, misses)

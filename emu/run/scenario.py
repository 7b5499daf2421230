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

import numpy as np
import simpy

from emu import __version__
from emu.params import Scenario, design, load_scenario, scenario_from_dict, scenario_to_dict
from emu.machine import Machine
from emu.run.files import (atomic_path, check_output_dir, dumps_json, rows_to_csv, write_json,
                           write_text)
from emu.stats import collect
from emu.stats.figures import cycles_per_guest_access


def resolve(scenario, overrides=()) -> Scenario:
    """A Scenario from a Scenario, a dict or a TOML path, with ``--set`` overrides."""
    if isinstance(scenario, Scenario):
        if not overrides:
            return scenario
        return scenario_from_dict(scenario_to_dict(scenario), list(overrides),
                                  base_dir=scenario.base_dir)
    if isinstance(scenario, dict):
        return scenario_from_dict(scenario, list(overrides))
    return load_scenario(os.fspath(scenario), list(overrides))


def _design(sc: Scenario) -> dict:
    """What the summary says of the design: its label, the kernel that shipped
    it, whether it is hypothetical."""
    d = design(sc.machine, sc.kvm)
    return {"label": d.label, "commit": d.commit, "hypothetical": d.hypothetical}


def _versions() -> dict:
    return {"emu": __version__, "python": platform.python_version(),
            "numpy": np.__version__, "simpy": simpy.__version__}


@dataclass
class Result:
    """What a run produced: the summary (JSON-ready) and tidy tables (lists of rows)."""

    summary: dict
    tables: dict
    wall_seconds: float = 0.0
    execution: dict = field(default_factory=dict)
    arrays: dict = field(default_factory=dict)     # name -> {array name: ndarray} (.npz)

    def files(self) -> list:
        """The names ``write`` creates in its directory."""
        return ([f"{name}.csv" for name in self.tables] + [f"{name}.npz" for name in self.arrays]
                + ["run.json", "summary.json"])

    def write(self, out_dir) -> None:
        """Write one CSV per table, the arrays, run.json and, last, summary.json.

        Each file is written atomically, and every target is checked first, so
        a failure leaves the directory as it was.  summary.json is last: its
        presence marks a complete result.
        """
        check_output_dir(out_dir, self.files())
        os.makedirs(out_dir, exist_ok=True)
        for name, rows in self.tables.items():
            write_text(os.path.join(out_dir, f"{name}.csv"), rows_to_csv(rows))
        for name, arrays in self.arrays.items():
            with atomic_path(os.path.join(out_dir, f"{name}.npz"), suffix=".npz") as tmp:
                np.savez_compressed(tmp, **arrays)
        write_json(os.path.join(out_dir, "run.json"),
                   dict(self.execution, wall_seconds=round(self.wall_seconds, 3)))
        write_json(os.path.join(out_dir, "summary.json"), self.summary)

    def json(self) -> str:
        """The summary as canonical JSON text (what ``summary.json`` holds)."""
        return dumps_json(self.summary)


def run(scenario, overrides=(), progress=None) -> Result:
    """Run one scenario to completion; deterministic for a given config and seed.

    The summary depends on neither the chunk size nor the backend (beyond its
    ``backend`` field): those two execution settings are kept out of its
    ``config`` and reported in ``Result.execution``.  Its ``config`` records
    the keys the design resolved (``kvm.tid_scheme``, ``kvm.handler``) and its
    ``design`` the label, commit and whether it is hypothetical.
    """
    t0 = time.perf_counter()
    machine = Machine(resolve(scenario, overrides), progress=progress)
    sc = machine.scenario                  # the design's unset keys resolved
    cycles = machine.run()
    sections, tables = collect(machine.snapshot())
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
        "simulated_cycles": cycles,
        "simulated_us": cycles / machine.clock_mhz,
        "cpus": len(machine.cpus),
        **sections,
    }
    summary["contexts"] = machine.contexts()
    summary["cycles_per_guest_access"] = cycles_per_guest_access(summary)
    arrays = {}
    if machine.timeline:
        arrays["timeline"] = {
            "time": np.array([t for t, _, _ in machine.timeline], np.int64),
            "cpu": np.array([c for _, c, _ in machine.timeline], np.int16),
            "owner": np.stack([o for _, _, o in machine.timeline]),
        }
    return Result(summary, tables, time.perf_counter() - t0, execution, arrays)

"""Values as a notebook passes them to the Python API: numpy scalars, numbers
where a label is text.  Each is read as the Python value it holds, or refused
in one line; none crashes after a simulation ran."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

import emu
from emu.digits import plain
from emu.params import default_scenario
from emu.run import compare, plan_sweep, run, write_comparison
from emu.run.tlb import TLBSimConfig, simulate_arrays

SHORT = ["duration_ms=0.5"]


def test_plain_holds_numpy_scalars_as_python_values():
    for given, want in [(np.int64(5), 5), (np.uint64(2**64 - 1), 2**64 - 1),
                        (np.float64(0.5), 0.5), (np.bool_(True), True), (np.str_("a"), "a")]:
        got = plain(given)
        assert got == want and type(got) is type(want)
    for kept in (5, 0.5, "a", None, [np.int64(1)], np.array([1, 2])):
        assert plain(kept) is kept


def test_a_scenario_built_by_hand_with_numpy_integers_writes_its_json(tmp_path):
    """The summary held np.int64: json() and write() raised TypeError after the run."""
    base = dataclasses.replace(default_scenario(), duration_ms=0.5, seed=5)
    by_hand = dataclasses.replace(base, duration_ms=np.float64(0.5), seed=np.int64(5))
    r = run(by_hand)
    assert type(r.summary["seed"]) is int
    r.write(tmp_path / "run")
    written = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert written["seed"] == 5
    assert json.loads(r.json())["cycles"] == json.loads(run(base).json())["cycles"]


def test_numpy_values_of_a_comparison_name_their_runs_as_numbers_do():
    runs = compare(default_scenario(), "duration_ms", np.linspace(0.25, 0.5, 2))
    assert [label for label, _ in runs] == ["0.25", "0.5"]
    runs = compare(default_scenario(), "seed", [np.int64(3)], overrides=SHORT)
    assert [(label, r.summary["seed"]) for label, r in runs] == [("3", 3)]


def test_a_sweep_plan_takes_numpy_values_and_seeds():
    plan = plan_sweep(default_scenario(), {"duration_ms": np.linspace(1, 2, 2)},
                      seeds=np.int64(2))
    assert plan.grid == [("duration_ms", ["1.0", "2.0"])] and plan.seeds == 2
    assert len(plan.runs) == 4


def test_write_comparison_of_numeric_values(tmp_path):
    """The labels were checked as text, and the folders named from the raw
    numbers: TypeError (str.join of an int)."""
    runs = [(v, run(default_scenario(), overrides=[f"duration_ms={v}"]))
            for v in (0.25, np.float64(0.5))]
    write_comparison(tmp_path / "c", "duration_ms", runs)
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == \
        ["0.25", "0.5", "comparison.json"]
    assert [label for label, _ in emu.load(tmp_path / "c")] == ["0.25", "0.5"]


def test_a_tlb_config_of_numpy_integers_runs_and_writes_python_numbers():
    cfg = TLBSimConfig(entries=np.int64(32), page_size=np.int64(65536), seed=np.uint64(1))
    r = simulate_arrays(np.arange(0, 1 << 22, 4096), config=cfg)
    assert r["config"]["entries"] == 32 and r["config"]["page_size"] == 65536
    assert all(type(v) in (int, str, bool, type(None)) for v in r["config"].values())
    json.dumps(r)
    # 4 MiB in 64 KiB pages: 64 pages, 32 entries, cycled once: every one a miss
    assert (r["misses"], r["hits"]) == (64, 1024 - 64)

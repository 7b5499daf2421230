"""Values as a notebook passes them to the Python API: numpy scalars, numbers
where a label is text.  Each is read as the Python value it holds, or refused
in one line; none crashes after a simulation ran."""

from __future__ import annotations

import dataclasses
import json
import re

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


# -- keywords that were taken and did nothing -------------------------------------------------


@pytest.fixture(scope="module")
def short_run():
    return run(default_scenario(), overrides=SHORT)


def test_a_plot_refuses_formats_and_dpi_without_out(short_run):
    from emu.report import plots
    runs = [("a", short_run.summary)]
    for kw, named in [(dict(formats=("pdf",), dpi=600), "formats and dpi"),
                      (dict(dpi=100), "dpi")]:
        with pytest.raises(emu.errors.ConfigError,
                           match=rf"^{named}: given without out, where the figure would be saved"):
            plots.cycle_breakdown(runs, **kw)
    plots.cycle_breakdown(runs)                 # drawn, not saved: nothing else given


@pytest.mark.parametrize("kw, message", [
    (dict(stream="io"), "stream: it is where the progress goes, and progress is None"),
    (dict(stream="io", progress="none"), "and progress is 'none'"),
    (dict(client=object()), "client needs executor dask"),
    (dict(client=object(), executor="dask", workers=8),
     "workers sets the size of a local Dask cluster; a client has its own workers"),
    (dict(client=object(), executor="dask", scheduler="tcp://127.0.0.1:1"),
     "scheduler and client: give one"),
    (dict(force="no"), "force: expected True or False, got str 'no'"),
])
def test_sweep_options_that_would_do_nothing_are_refused(tmp_path, kw, message):
    import io
    from emu.run import run_sweep
    if kw.get("stream") == "io":
        kw = dict(kw, stream=io.StringIO())
    with pytest.raises(emu.errors.ConfigError, match=re.escape(message)):
        run_sweep(default_scenario(), ["seed=1,2"], out_dir=tmp_path / "s", workers=None
                  if "workers" not in kw else kw.pop("workers"), overrides=SHORT, **kw)
    assert not (tmp_path / "s").exists()


def test_flags_that_are_not_bools_are_refused(short_run, tmp_path):
    from emu.report.html import write_report
    for kw in (dict(tidy="no"), dict(force="yes"), dict(inside=1)):
        name, value = next(iter(kw.items()))
        with pytest.raises(emu.errors.ConfigError,
                           match=rf"^{name}: expected True or False, got {type(value).__name__}"):
            short_run.write(tmp_path / "r", **kw)
    short_run.write(tmp_path / "r")
    with pytest.raises(emu.EmuError, match=r"^plots: expected True or False, got str 'no'"):
        write_report(tmp_path / "r", plots="no")
    assert not (tmp_path / "r" / "report.html").exists()


def test_a_trace_path_in_a_dict_may_be_a_path_and_a_seed_a_numpy_integer(tmp_path):
    from pathlib import Path

    from emu.run import compare, plan_sweep
    trace = tmp_path / "g.npy"
    np.save(trace, np.arange(0, 40960, 64, dtype=np.uint64))
    as_text = {"duration_ms": 0.2, "seed": 3,
               "vm": [{"process": [{"workload": {"kind": "trace", "path": str(trace)}}]}]}
    as_path = {"duration_ms": 0.2, "seed": np.int64(3),
               "vm": [{"process": [{"workload": {"kind": "trace", "path": Path(trace)}}]}]}
    assert run(as_path).summary["cycles"] == run(as_text).summary["cycles"]
    # the same scenario: the same run ids
    assert [r.id for r in plan_sweep(as_path, ["machine.cpus=1,2"]).runs] == \
        [r.id for r in plan_sweep(as_text, ["machine.cpus=1,2"]).runs]
    assert [label for label, _ in compare(as_path, "kvm.strategy", ["direct"])] == ["direct"]

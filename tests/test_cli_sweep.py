"""``emu sweep`` end to end (``emu/cli/sweep.py``): a bad ``--scheduler``
fails in one line within seconds; a folder holding another result (a run, a
comparison, a sweep with runs this one leaves out) is refused unless
``--force``, while a sweep that extends the one there resumes into it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from clirun import EMU, assert_usage_error, cli_env, run_cli
from emu.errors import ConfigError
from emu.run import read_table
from emu.run.executors import check_scheduler_address


@pytest.fixture
def scenario(tmp_path):
    p = tmp_path / "s.toml"
    p.write_text("duration_ms = 0.05\n")
    return p


#: malformed addresses, then two well-formed ones where nothing listens
GARBAGE = ["garbage!!", "", "tcp://", "tcp://:8786", "http://10.0.0.5:8786", "tcp://host",
           "tcp://host:0", "tcp://host:99999", "tcp://host:port", "tcp://bad_host:1",
           "tcp://a b:1", "tcp://127.0.0.1:1", "[::1]:1"]


def _timed(*args):
    t = time.monotonic()
    p = run_cli(*args, timeout=60)
    return p, time.monotonic() - t


def _start_up() -> float:
    """Seconds to start Python and import emu's command line and Dask."""
    t = time.monotonic()
    subprocess.run([sys.executable, "-c", "import emu.cli, distributed"], env=cli_env(),
                   check=True, timeout=60)
    return time.monotonic() - t


@pytest.mark.parametrize("address", GARBAGE)
def test_a_bad_scheduler_address_fails_in_one_line_within_seconds(scenario, tmp_path, address):
    """Within 5 s, less what starting Python and importing emu and Dask took
    (measured beside it: a loaded machine may take seconds for that alone)."""
    out = tmp_path / "out"
    start_up = _start_up()
    p, took = _timed("sweep", scenario, "--grid", "seed=1,2", "--out", out, "--executor", "dask",
                     "--scheduler", address)
    assert_usage_error(p, "--scheduler")
    assert took - start_up < 5, f"{took:.1f} s, {start_up:.1f} s of it starting up"
    assert not out.exists()


def test_scheduler_address_forms():
    assert check_scheduler_address("tcp://10.0.0.5:8786") == ("tcp", "10.0.0.5", 8786)
    assert check_scheduler_address(" sched.example.org:8786 ") == ("tcp", "sched.example.org",
                                                                    8786)
    assert check_scheduler_address("tls://[::1]:8786") == ("tls", "::1", 8786)
    for bad in GARBAGE[:-2]:
        with pytest.raises(ConfigError, match="^scheduler "):
            check_scheduler_address(bad)


def sweep(scenario, out, *extra):
    return run_cli("sweep", scenario, "--workers", "1", "--progress", "none", "--out", out,
                   *extra)


def test_a_sweep_with_runs_this_one_leaves_out_is_refused_unless_force(scenario, tmp_path):
    out = tmp_path / "out"
    assert sweep(scenario, out, "--grid", "seed=1,2").returncode == 0
    table = sorted(p.name for p in out.iterdir())
    # more values: an extension, which reuses the runs there
    p = sweep(scenario, out, "--grid", "seed=1,2,3")
    assert p.returncode == 0, p.stderr
    assert len(json.loads((out / "sweep.json").read_text())["runs"]) == 3
    # another grid leaves those runs out: refused, then replaced with --force
    before = (out / "sweep.json").read_bytes()
    assert_usage_error(sweep(scenario, out, "--grid", "kvm.strategy=shadow,direct"),
                       "a sweep of s.toml over seed (3 runs)", "leaves out 3", "--force")
    assert (out / "sweep.json").read_bytes() == before
    p = sweep(scenario, out, "--grid", "kvm.strategy=shadow,direct", "--force")
    assert p.returncode == 0, p.stderr
    assert [g["key"] for g in json.loads((out / "sweep.json").read_text())["grid"]] == \
        ["kvm.strategy"]
    assert sorted(p.name for p in out.iterdir()) == table


def test_a_run_or_comparison_folder_is_refused_unless_force(scenario, tmp_path):
    out = tmp_path / "out"
    assert run_cli("compare", scenario, "--vary", "kvm.strategy=shadow,direct",
                   "--out", out).returncode == 0
    assert_usage_error(sweep(scenario, out, "--grid", "seed=1,2"),
                       "a comparison of kvm.strategy over 2 runs", "--force")
    assert not (out / "sweep.json").exists()
    p = sweep(scenario, out, "--grid", "seed=1,2", "--force")
    assert p.returncode == 0, p.stderr
    names = {p.name for p in out.iterdir()}
    assert "comparison.json" not in names and not names & {"shadow", "direct"}
    assert {"sweep.json", "runs"} <= names


def test_a_study_folder_is_refused_unless_force_and_its_runs_go(scenario, tmp_path):
    out = tmp_path / "out"
    assert run_cli("study", "pfn_cache_sizing", "--quick", "--out", out).returncode == 0
    assert_usage_error(sweep(scenario, out, "--grid", "seed=1,2"),
                       "holds the study 'pfn_cache_sizing' (quick, 6 runs), not a sweep",
                       "--force")
    assert not (out / "sweep.json").exists()
    p = sweep(scenario, out, "--grid", "seed=1,2", "--force")
    assert p.returncode == 0, p.stderr
    ids = [r["id"] for r in json.loads((out / "sweep.json").read_text())["runs"]]
    assert sorted(p.name for p in (out / "runs").iterdir()) == sorted(ids)   # the study's went
    assert "results.json" not in {p.name for p in out.iterdir()}


def test_an_empty_out_is_refused(scenario, tmp_path):
    assert_usage_error(run_cli("sweep", scenario, "--grid", "seed=1,2", "--out", "",
                               cwd=tmp_path), "--out", "empty")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.toml"]


def test_an_endless_scenario_file_is_refused_as_emu_run_refuses_it(tmp_path):
    # the sweep reads its scenario through the same bounded reader as emu run
    out = tmp_path / "sw"
    assert_usage_error(run_cli("sweep", "/dev/zero", "--grid", "seed=1,2", "--out", out,
                               timeout=60), "/dev/zero: not a scenario file")
    assert not out.exists()


def test_a_sweep_whose_progress_reader_went_away_runs_to_its_end(tmp_path):
    """The first progress line to a stderr nobody reads (emu sweep 2>&1 |
    head -1) raised a broken pipe that ended the sweep part-way, exit 0."""
    scenario = tmp_path / "s.toml"
    scenario.write_text("duration_ms = 0.2\n")
    read, write = os.pipe()
    os.close(read)                              # the reader is gone before the first line
    try:
        p = subprocess.run(EMU + ["sweep", str(scenario), "--grid", "seed=1,2,3,4",
                                  "--workers", "1", "--progress", "lines",
                                  "--out", str(tmp_path / "out")],
                           stdout=subprocess.PIPE, stderr=write, text=True, env=cli_env(),
                           stdin=subprocess.DEVNULL, timeout=300)
    finally:
        os.close(write)
    assert p.returncode == 0 and p.stdout.startswith("emu sweep: 4 runs in ")
    assert len(read_table(str(tmp_path / "out"))) == 4


def test_a_sweep_into_a_folder_of_files_emu_did_not_write_is_refused_even_with_force(tmp_path):
    """The sweep took a folder holding a note and another result, as no other
    command does."""
    scenario = tmp_path / "s.toml"
    scenario.write_text("duration_ms = 0.1\n")
    out = tmp_path / "out"
    (out / "inner").mkdir(parents=True)
    (out / "notes.txt").write_text("mine")
    for force in ([], ["--force"]):
        p = run_cli("sweep", scenario, "--grid", "seed=1,2", "--out", out, *force)
        assert assert_usage_error(p) == (
            f"emu: error: --out {out}: holds 'inner'/, 'notes.txt', which emu did not write; "
            f"emu replaces a result folder as a whole: choose a new or empty folder\n")
    assert sorted(os.listdir(out)) == ["inner", "notes.txt"]


def test_a_trace_rewritten_since_its_runs_is_no_run_done(tmp_path):
    # the runs read the trace, not its name: a sweep after the file changed
    # would otherwise show the old figures as done
    trace = tmp_path / "t.txt"
    lines = (Path(__file__).parent / "data" / "lackey_small.txt").read_text().splitlines(True)
    trace.write_text("".join(lines))
    scenario = tmp_path / "t.toml"
    scenario.write_text('duration_ms = 0.2\n[[vm]]\n[[vm.process]]\n'
                        'workload = { kind = "trace", path = "t.txt" }\n')
    out = tmp_path / "out"
    assert sweep(scenario, out, "--grid", "seed=1,2").returncode == 0
    ids = {r["id"] for r in json.loads((out / "sweep.json").read_text())["runs"]}
    p = sweep(scenario, out, "--grid", "seed=1,2")            # unchanged: resumed as done
    assert p.returncode == 0 and "2 runs" in p.stdout
    assert {r["id"] for r in json.loads((out / "sweep.json").read_text())["runs"]} == ids
    trace.write_text("".join(lines[:len(lines) // 2]))
    assert_usage_error(sweep(scenario, out, "--grid", "seed=1,2"),
                       "leaves out 2 of its runs", "a trace file rewritten since", "--force")
    assert sweep(scenario, out, "--grid", "seed=1,2", "--force").returncode == 0
    assert not ids & {r["id"] for r in json.loads((out / "sweep.json").read_text())["runs"]}


def test_seeds_and_runs_past_the_bound_are_refused_before_planning(scenario, tmp_path):
    t = time.monotonic()
    assert_usage_error(sweep(scenario, tmp_path / "a", "--seeds", "100000000"),
                       "--seeds: at most 100,000 replicates a point, got 100,000,000")
    grid = ",".join(str(i) for i in range(1, 1101))
    assert_usage_error(sweep(scenario, tmp_path / "b", "--grid", f"sim.repopulation_window={grid}",
                             "--grid", f"machine.hwater={','.join(map(str, range(1, 61)))}",
                             "--seeds", "20"),
                       "the sweep has 1,320,000 runs")
    assert time.monotonic() - t < 60
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_a_sweep_that_runs_more_removes_the_report_of_the_sweep_as_it_was(scenario, tmp_path):
    out = tmp_path / "out"
    assert sweep(scenario, out, "--grid", "seed=1,2").returncode == 0
    assert run_cli("report", out).returncode == 0 and (out / "report.html").is_file()
    # nothing to run: the report still describes the folder, and stays
    assert sweep(scenario, out, "--grid", "seed=1,2").returncode == 0
    assert (out / "report.html").is_file()
    # an extension: the old report would describe 2 of its 3 runs
    assert sweep(scenario, out, "--grid", "seed=1,2,3").returncode == 0
    assert not (out / "report.html").exists()

"""A sensitivity study's runs on the executors of ``emu sweep``, and resuming one.

Every run is the default scenario for 1 ms, with three costs varied, so a
study is a few dozen runs.  The study run in this process (``--workers 1``)
is the reference: a pool of local processes, a Dask cluster and an
interrupted-then-resumed study must write the same ``sensitivity.json``, byte
for byte.
"""

from __future__ import annotations

import json
import os

import pytest

import emu
import emu.run.executors as executors
from clirun import assert_usage_error, run_cli
from emu.cli import main
from emu.errors import EmuError
from emu.params import default_scenario
from emu.sensitivity import plan_sensitivity

pytestmark = pytest.mark.slow

PAGES = "vm.0.process.0.workload.pages"
STUDY = ["sensitivity", "--set", "duration_ms=1", "--compare", "kvm.strategy=shadow,direct",
         "--costs", "shadow_restore_per_entry,exit_light,guest_miss_handler",
         "--method", "morris", "--samples", "2", "--seed", "5",
         "--break-even", f"{PAGES}=20,60", "--progress", "none"]
PLAN = dict(overrides=["duration_ms=1"],
            costs=["shadow_restore_per_entry", "exit_light", "guest_miss_handler"],
            method="morris", samples=2, seed=5, break_even=f"{PAGES}=20,60")


def given(base: list, extra: list) -> list:
    """``base`` (options, each with one value) without those ``extra`` gives
    again, then ``extra``: an option is given once (--set, which repeats, is kept)."""
    again = {str(a) for a in extra if str(a).startswith("--")} - {"--set"}
    out, i = [], 0
    while i < len(base):
        if base[i] in again:
            i += 2
            continue
        out.append(base[i])
        i += 1
    return out + [str(a) for a in extra]


def study(out, *options) -> int:
    return main(given(STUDY, ["--out", out, *options]))


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The study run in this process: its directory and its sensitivity.json."""
    pytest.importorskip("SALib")
    out = tmp_path_factory.mktemp("serial") / "out"
    assert study(out, "--workers", 1) == 0
    return out, (out / "sensitivity.json").read_bytes()


def test_each_run_has_the_directory_its_label_names(reference):
    out, _ = reference
    plan = plan_sensitivity(default_scenario(), "kvm.strategy=shadow,direct", **PLAN)
    labels = {j.label for j in plan.jobs}
    assert sorted(os.listdir(out / "runs")) == sorted(labels)
    for job in plan.jobs[:3]:
        ran = json.loads((out / "runs" / job.label / "run.json").read_text())["sweep"]["study"]
        assert ran["overrides"] == list(job.overrides)
        assert (out / "runs" / job.label / "summary.json").is_file()


def test_local_processes_write_the_same_file(reference, tmp_path):
    _, expected = reference
    assert study(tmp_path / "pool", "--workers", 2) == 0
    assert (tmp_path / "pool" / "sensitivity.json").read_bytes() == expected


def test_a_dask_cluster_writes_the_same_file(reference, tmp_path):
    distributed = pytest.importorskip("dask.distributed")
    _, expected = reference
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       host="127.0.0.1", dashboard_address=None)
    try:
        assert cluster.scheduler_address.startswith("tcp://127.0.0.1:")
        assert study(tmp_path / "dask", "--executor", "dask",
                     "--scheduler", cluster.scheduler_address) == 0
    finally:
        cluster.close()
    assert (tmp_path / "dask" / "sensitivity.json").read_bytes() == expected


def test_an_interrupted_study_resumes_to_the_same_file(reference, tmp_path, monkeypatch, capsys):
    _, expected = reference
    total = len(os.listdir(reference[0] / "runs"))
    real, calls = executors.execute_run, []

    def interrupted_after(n):
        def execute_run(*args):
            if len(calls) == n:
                raise KeyboardInterrupt
            calls.append(args[3])
            return real(*args)
        return execute_run

    out = tmp_path / "out"
    monkeypatch.setattr(executors, "execute_run", interrupted_after(7))
    assert study(out, "--workers", 1) == 130
    err = capsys.readouterr().err
    assert err == (f"emu: sensitivity interrupted: 7 of {total} runs done in {out}; "
                   f"re-run the same command to resume\n")
    assert not (out / "sensitivity.json").exists()
    first = set(calls)
    assert len(first) == 7
    # read before its end: named as what it is, not as a folder of no result
    assert main(["report", str(out)]) == 2
    assert capsys.readouterr().err == (
        f"emu: error: report: {out} holds an unfinished sensitivity study (7 runs done): nothing "
        f"to report before it ends (emu sensitivity with the same arguments finishes it)\n")
    with pytest.raises(EmuError, match=r"holds an unfinished sensitivity study \(7 runs done\): "
                                       r"nothing to load"):
        emu.load(out)

    calls.clear()
    monkeypatch.setattr(executors, "execute_run", interrupted_after(10**6))
    assert study(out, "--workers", 1, "--progress", "lines") == 0
    assert len(calls) == total - 7 and not first & set(calls)      # nothing ran twice
    assert capsys.readouterr().err.splitlines()[0] == (
        f"emu: sensitivity: {total} runs, 7 already done; running {total - 7} in this process")
    assert (out / "sensitivity.json").read_bytes() == expected

    calls.clear()
    assert study(out, "--workers", 1) == 0                           # all done: nothing runs
    assert calls == [] and (out / "sensitivity.json").read_bytes() == expected


def test_runs_of_another_scenario_are_refused(reference, tmp_path, capsys):
    out = tmp_path / "out"
    assert study(out, "--workers", 1) == 0
    scenario = tmp_path / "other.toml"
    scenario.write_text('name = "other"\n', encoding="utf-8")
    capsys.readouterr()
    assert main(["sensitivity", str(scenario)] + STUDY[1:] + ["--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "holds a run of another scenario" in err


@pytest.mark.parametrize("options,message", [
    (["--scheduler", "tcp://127.0.0.1:1"], "--scheduler needs --executor dask"),
    (["--workers", "0"], "--workers: expected a positive integer, got 0"),
    (["--executor", "dask", "--scheduler", "tcp://127.0.0.1:1", "--workers", "2"],
     "--workers sets the size of a local Dask cluster"),
    (["--executor", "spark"], "invalid choice: 'spark'"),
])
def test_bad_executor_options_are_one_line(options, message, tmp_path, capsys):
    assert main(STUDY + ["--out", str(tmp_path / "out")] + options) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and message in err
    assert not (tmp_path / "out").exists()



#: A study of four runs of 1 ms (one cost at its two ends), through the command line.
SMALL = ["--set", "duration_ms=1", "--costs", "exit_light", "--workers", "1",
         "--progress", "none"]


def small(scenario, out, *extra, cwd=None):
    """``emu sensitivity`` of shadow against direct (unless ``extra`` gives its
    own --compare)."""
    return run_cli("sensitivity", scenario,
                   *given(["--compare", "kvm.strategy=shadow,direct", *SMALL], list(extra)),
                   "--out", out, cwd=cwd)


@pytest.fixture
def short(tmp_path):
    p = tmp_path / "s.toml"
    p.write_text("duration_ms = 0.05\n")
    return p


def _names(folder) -> list:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_an_empty_out_is_refused_and_nothing_is_written(short, tmp_path):
    assert_usage_error(small(short, "", cwd=tmp_path),
                       "emu: error: --out '': an empty path names no folder")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.toml"]


def test_out_holding_another_result_is_refused_unless_force(short, tmp_path):
    run, sweep, sens = tmp_path / "run", tmp_path / "sweep", tmp_path / "sens"
    assert run_cli("run", short, "--out", run).returncode == 0
    assert run_cli("sweep", short, "--grid", "seed=1,2", "--workers", "1", "--progress", "none",
                   "--out", sweep).returncode == 0
    p = small(short, sens)
    assert p.returncode == 0, p.stderr
    first = _names(sens)
    assert [n for n in first if "/" not in n] == [".sweep.lock", "runs", "sensitivity.json",
                                                  "tornado.png", "tornado.svg"]
    again = small(short, sens)                       # the same study: all its runs are there
    assert again.returncode == 0, again.stderr
    assert _names(sens) == first
    other = "kvm.strategy=shadow,direct-save-on-switch"
    for out, argv, held in (
            (run, [], "holds a run (strategy direct, seed 1), not a sensitivity study"),
            (sweep, [], "holds a sweep of s.toml over seed (2 runs), not a sensitivity study"),
            (sens, ["--metric", "simulated_cycles"],
             "holds a sensitivity study of kvm.strategy=shadow,direct (cycles_per_guest_access, "
             "oat, 4 runs); this study is on simulated_cycles (lower is better)"),
            (sens, ["--compare", other],
             "holds a sensitivity study of kvm.strategy=shadow,direct (cycles_per_guest_access, "
             "oat, 4 runs); this study leaves out 2 of its runs")):
        before = _names(out)
        assert_usage_error(small(short, out, *argv),
                           f"emu: error: --out {out}: {held}", "pass --force")
        assert _names(out) == before
    # --force: one result is left, the other's files and runs gone
    for out in (run, sweep):
        p = small(short, out, "--force")
        assert p.returncode == 0, p.stderr
        assert _names(out) == first
    p = small(short, sens, "--compare", other, "--force")
    assert p.returncode == 0, p.stderr
    assert len(os.listdir(sens / "runs")) == 4
    assert json.loads((sens / "sensitivity.json").read_text())["compare"]["b"] == \
        "direct-save-on-switch"


def test_a_result_written_as_the_study_began_is_not_mixed_into_it(tmp_path, monkeypatch,
                                                                  capsys):
    """A run committed into the folder between the study's first check and
    its lock: the study wrote its runs beside the run's files."""
    import emu.sensitivity.runner as runner_module
    from clirun import committed_first
    pytest.importorskip("SALib")
    out = tmp_path / "out"
    monkeypatch.setattr(runner_module, "locked", committed_first(runner_module.locked))
    assert study(out, "--workers", 1) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"emu: error: --out {out}: holds a run") and err.endswith(
        "(the folder changed since the study began)\n"), err
    assert sorted(os.listdir(out)) == [".sweep.lock", "summary.json"]


def test_runs_this_study_ran_are_not_said_to_have_been_done_already(tmp_path, capsys):
    """Its runs at the default costs, made by this command a moment before, were
    counted as 'already done', as if the study had resumed an earlier one."""
    import re
    pytest.importorskip("SALib")
    assert main(given(STUDY, ["--out", tmp_path / "out", "--progress", "lines",
                              "--workers", "1"])) == 0
    first = [line for line in capsys.readouterr().err.splitlines()
             if line.startswith("emu: sensitivity: ") and "already done" in line][0]
    assert re.match(r"emu: sensitivity: \d+ runs, 0 already done, \d+ done by this command "
                    r"so far; running \d+ in this process$", first), first

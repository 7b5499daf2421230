"""``emu sweep``: grid x seeds, executors, the results table, resuming, bad input.

Every run is tiny (the default scenario, 0.5 ms simulated; 2-3 ms where a
subprocess has to be caught mid-sweep).  The serial sweep (``--workers 1``,
in process) is the reference the other executors must equal run for run: the
simulation is deterministic, so summaries are compared whole.

The subprocess tests call ``emu sweep`` through ``python -m emu.cli``.
"""

from __future__ import annotations

import contextlib
import doctest
import importlib
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

import emu
from emu.analysis.load import IncompleteSweep
from emu.codes import MISS_CAUSES
from emu.params import default_scenario, load_scenario, scenario_to_dict
from emu.errors import ConfigError
from emu.cli import main as emu_cli_main
from emu.run import parse_grid, plan_sweep, read_table, run_sweep, sweep_throughput
from emu.run import table as results_table

ROOT = Path(__file__).resolve().parents[1]
GRIDS = ["kvm.strategy=shadow,direct", "vm.0.process.0.workload.pages=20,40"]
SEEDS = 2
#: a temporary file of an atomic write, or the temporary folder of a run being written
TMP_NAME = re.compile(r"\A\..*(\.tmp(\.\w+)?|\.emu-(new|old)-\w{8})\Z")


# -- helpers ---------------------------------------------------------------------


def _toml(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k} = {_toml(x)}" for k, x in v.items()) + "}"
    return "[" + ", ".join(_toml(x) for x in v) + "]"


def write_default_toml(path: Path, duration_ms=0.5) -> Path:
    """The built-in default scenario as a TOML file (inline tables), shortened."""
    data = scenario_to_dict(default_scenario())
    data["duration_ms"] = duration_ms
    path.write_text("".join(f"{k} = {_toml(v)}\n" for k, v in data.items()), encoding="utf-8")
    return path


EMU = [sys.executable, "-m", "emu.cli"]


def emu_main(argv) -> int:
    return emu_cli_main(list(argv))


def _default_sigint():
    signal.signal(signal.SIGINT, signal.SIG_DFL)   # a background shell may have ignored it


def popen(args) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(ROOT)] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])))
    return subprocess.Popen(EMU + [str(a) for a in args], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=_default_sigint)


def summaries(out: Path) -> dict:
    return {d.name: json.loads((d / "summary.json").read_text())
            for d in (out / "runs").iterdir()
            if not TMP_NAME.match(d.name) and (d / "summary.json").exists()}


def done_runs(out: Path) -> list:
    runs = out / "runs"
    if not runs.is_dir():
        return []
    return [d.name for d in runs.iterdir()
            if not TMP_NAME.match(d.name) and (d / "summary.json").exists()]


def wait_for(pred, timeout=60.0):
    t = time.monotonic()
    while not pred():
        if time.monotonic() - t > timeout:
            raise AssertionError("timed out")
        time.sleep(0.01)


def snapshot(d: Path) -> dict:
    if not d.exists():
        return {}
    return {str(p.relative_to(d)): (p.stat().st_mtime_ns, p.stat().st_size)
            for p in d.rglob("*")}


def tmp_files(d: Path) -> list:
    return [p for p in d.rglob("*") if TMP_NAME.match(p.name)]


def check_no_partial_files(out: Path) -> None:
    """Every result file present is complete: JSON parses, CSVs end with a newline."""
    for p in out.rglob("*"):
        if p.is_dir() or TMP_NAME.match(p.name):
            continue
        if p.suffix == ".json":
            json.loads(p.read_text())
        elif p.suffix == ".csv":
            text = p.read_text()
            assert text == "" or text.endswith("\n"), p


# -- fixtures ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def scenario(tmp_path_factory) -> Path:
    path = write_default_toml(tmp_path_factory.mktemp("scenario") / "default.toml")
    ref = load_scenario(path)
    assert scenario_to_dict(ref) == dict(scenario_to_dict(default_scenario()), duration_ms=0.5)
    return path


@pytest.fixture(scope="module")
def serial(scenario, tmp_path_factory):
    """The reference: the 2 x 2 x 2 sweep with --workers 1 (in process)."""
    out = tmp_path_factory.mktemp("serial") / "out"
    t = time.perf_counter()
    rows = run_sweep(scenario, GRIDS, SEEDS, out, workers=1)
    return out, rows, time.perf_counter() - t


# -- the plan: grid product and seeds -------------------------------------------------


def test_grid_product_and_seeds(scenario, serial):
    out, rows, _ = serial
    plan = plan_sweep(scenario, GRIDS, SEEDS)
    seeds = [int(np.random.SeedSequence(1, spawn_key=(i,)).generate_state(1)[0])
             for i in range(SEEDS)]
    assert len(set(seeds)) == SEEDS and 1 not in seeds
    expected = [(f"kvm.strategy={s}", f"vm.0.process.0.workload.pages={p}", f"seed={seed}")
                for s, p, seed in itertools.product(["shadow", "direct"], [20, 40], seeds)]
    assert len(plan.runs) == 8
    assert [r.overrides for r in plan.runs] == expected          # grid order, seed fastest
    assert [r.seed for r in plan.runs] == seeds * 4
    assert [r.replicate for r in plan.runs] == [0, 1] * 4
    ids = [r.id for r in plan.runs]
    assert len(set(ids)) == 8 and all(re.fullmatch(r"[0-9a-f]{16}", i) for i in ids)
    # stable ids: the same plan again; another file content gives other ids
    assert [r.id for r in plan_sweep(scenario, GRIDS, SEEDS).runs] == ids
    other = write_default_toml(scenario.parent / "other.toml", duration_ms=0.25)
    assert not set(ids) & {r.id for r in plan_sweep(other, GRIDS, SEEDS).runs}
    # --seeds N: the first seeds do not depend on N
    assert [r.seed for r in plan_sweep(scenario, [], 3).runs][:2] == seeds
    # no --seeds: the scenario's own seed, no seed override
    plain = plan_sweep(scenario, GRIDS[:1])
    assert [r.overrides for r in plain.runs] == [("kvm.strategy=shadow",), ("kvm.strategy=direct",)]
    assert [r.seed for r in plain.runs] == [1, 1]

    # what was written: sweep.json's run list, one run dir per run
    meta = json.loads((out / "sweep.json").read_text())
    assert [r["id"] for r in meta["runs"]] == ids
    assert [tuple(r["overrides"]) for r in meta["runs"]] == expected
    assert meta["grid"] == [{"key": "kvm.strategy", "values": ["shadow", "direct"]},
                            {"key": "vm.0.process.0.workload.pages", "values": ["20", "40"]}]
    assert meta["seeds"] == {"count": 2, "root": 1, "values": seeds}
    assert meta["scenario"]["config"]["duration_ms"] == 0.5
    assert sorted(done_runs(out)) == sorted(ids)
    for rid in ids:
        assert {"summary.json", "run.json", "tlb.csv", "exits.csv", "cycles.csv"} <= \
            {p.name for p in (out / "runs" / rid).iterdir()}


def test_table_rows_in_grid_order_equal_each_summary(scenario, serial):
    out, rows, _ = serial
    plan = plan_sweep(scenario, GRIDS, SEEDS)
    table = read_table(out)
    assert (out / "results.parquet").exists()
    assert table == rows
    assert [r["run_id"] for r in table] == [r.id for r in plan.runs]
    sums = summaries(out)
    for run, row in zip(plan.runs, table):
        s = sums[run.id]
        cfg = s["config"]
        g = s["tlb"]["guest"]
        assert row["kvm.strategy"] == cfg["kvm"]["strategy"] == dict(run.grid)["kvm.strategy"]
        assert row["vm.0.process.0.workload.pages"] == cfg["vm"][0]["process"][0]["workload"]["pages"]
        assert row["seed"] == s["seed"] == run.seed
        assert row["replicate"] == run.replicate
        assert (row["design"], row["hypothetical"]) == (s["design"]["label"],
                                                        s["design"]["hypothetical"])
        assert row["cycles_per_guest_access"] == s["cycles_per_guest_access"]
        assert row["guest_accesses"] == s["guest_accesses"]
        assert row["guest_misses"] == g["misses"]
        assert row["miss_rate"] == g["miss_rate"]
        assert row["misses_per_resume"] == s["repopulation"]["misses_per_resume"]
        for cause in MISS_CAUSES:
            assert row["misses_" + cause.replace("-", "_")] == g["misses_by_cause"][cause]
        assert row["exits"] == sum(e["count"] for k, e in s["exits"].items() if k != "TIMEINGUEST")
        assert row["isolation_violations"] == s["tlb"]["isolation_violations"]
        assert row["save_restore_share"] == \
            s["cycles"]["save_restore"] / (s["simulated_cycles"] * s["cpus"])
        assert row["memory_bytes_total"] == sum(s["memory_bytes"].values())
    # the grid matters: the designs differ
    assert len({r["cycles_per_guest_access"] for r in table}) > 1


def test_a_plan_runs_as_its_scenario_and_grid_do(scenario, serial, tmp_path):
    """run_sweep takes the plan plan_sweep made (emu sweep plans once, to name
    what it will read before it runs); the grids, seeds or overrides a plan
    holds are refused beside it, not run instead of it or ignored."""
    plan = plan_sweep(scenario, GRIDS, SEEDS)
    assert run_sweep(plan, out_dir=tmp_path / "p", workers=1) == serial[1]
    for kw, named in ((dict(grids=GRIDS), "grids"), (dict(seeds=3), "seeds"),
                      (dict(overrides=["seed=2"], seeds=2), "seeds, overrides")):
        with pytest.raises(ConfigError, match=rf"^{named}: a SweepPlan holds its own; give them "
                                              rf"to plan_sweep$"):
            run_sweep(plan, out_dir=tmp_path / "q", **kw)
    assert not (tmp_path / "q").exists()


def test_rerun_of_a_finished_sweep_runs_nothing(scenario, serial, tmp_path):
    out, rows, _ = serial
    before = {rid: (out / "runs" / rid / "summary.json").stat().st_mtime_ns for rid in done_runs(out)}
    assert run_sweep(scenario, GRIDS, SEEDS, out, workers=2) == rows
    after = {rid: (out / "runs" / rid / "summary.json").stat().st_mtime_ns for rid in done_runs(out)}
    assert after == before


def test_csv_table_without_pyarrow(scenario, serial, tmp_path, monkeypatch):
    out, rows, _ = serial
    monkeypatch.setattr(results_table, "_have_pyarrow", lambda: False)
    csv_out = tmp_path / "csv"
    run_sweep(scenario, GRIDS, SEEDS, csv_out, workers=1)
    assert (csv_out / "results.csv").exists() and not (csv_out / "results.parquet").exists()
    table = read_table(csv_out)
    assert [r["run_id"] for r in table] == [r["run_id"] for r in rows]
    for got, want in zip(table, rows):
        for k, v in want.items():
            assert got[k] == ("" if v is None else repr(v) if isinstance(v, float) else
                              str(v).lower() if isinstance(v, bool) else str(v)), k


def test_a_sweep_extended_in_the_other_form_keeps_one_table(scenario, tmp_path, monkeypatch):
    """A sweep written with pyarrow and extended without it (or the other way
    round) kept both tables, one of them stale, and emu report and emu.load
    read the Parquet one whatever sweep.json named: 4 runs of a sweep of 8,
    called unfinished, or another grid's columns called a damaged table."""
    import emu
    from emu.report.folders import load_results
    out = tmp_path / "sw"
    grid = ["kvm.strategy=shadow,direct"]
    run_sweep(scenario, grid, 2, out, workers=1)                    # with pyarrow: 4 runs
    assert sorted(p.name for p in out.glob("results.*")) == ["results.parquet"]
    monkeypatch.setattr(results_table, "_have_pyarrow", lambda: False)
    rows = run_sweep(scenario, grid, 4, out, workers=1)             # without: 8 runs, CSV
    assert sorted(p.name for p in out.glob("results.*")) == ["results.csv"]
    monkeypatch.undo()                                              # read where pyarrow is
    assert len(read_table(out, "results.csv")) == len(rows) == 8
    results = load_results(str(out))
    assert results["table"].endswith("results.csv") and len(results["rows"]) == 8
    assert len(emu.load(out)) == 8
    # a folder an earlier emu left with both: the newer table is read
    os.utime(out / "results.csv", (1, 1))
    (out / "results.parquet").write_bytes(b"stale")
    assert results_table.table_path(str(out)) == str(out / "results.parquet")
    assert results_table.table_path(str(out), "results.csv") == str(out / "results.csv")


# -- executors ---------------------------------------------------------------------------


def test_local_two_workers_equals_serial(scenario, serial, tmp_path):
    out, rows, _ = serial
    par = tmp_path / "par"
    assert run_sweep(scenario, GRIDS, SEEDS, par, executor="local", workers=2) == rows
    assert summaries(par) == summaries(out)


def test_ctrl_c_while_the_local_cluster_starts_leaves_no_traceback_at_exit(monkeypatch):
    """Ctrl-C while LocalCluster started left Dask's exit hook to close a
    cluster that never finished starting: a traceback after emu's one line.
    The half-started clusters are closed then and there, and the hook taken back."""
    pytest.importorskip("dask.distributed")
    import atexit
    import weakref

    import dask.distributed
    from distributed.deploy import spec

    from emu.run import executors
    closed, unregistered = [], []

    class Starting:
        def close(self, timeout=None):
            closed.append(timeout)

    def interrupted(*args, **kw):
        spec.SpecCluster._instances.add(starting)
        raise KeyboardInterrupt
    starting = Starting()
    monkeypatch.setattr(spec.SpecCluster, "_instances", weakref.WeakSet())
    monkeypatch.setattr(dask.distributed, "LocalCluster", interrupted)
    monkeypatch.setattr(atexit, "unregister", unregistered.append)
    with pytest.raises(KeyboardInterrupt):
        with executors.dask_client(None, 1):
            pass
    assert closed == [5] and unregistered == [spec.close_clusters]


def _sleep(seconds):
    time.sleep(seconds)


def _running(pid: int) -> bool:
    """Whether process ``pid`` exists and has not exited (is no zombie)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_ctrl_c_leaves_no_worker_behind_nor_a_traceback_of_the_pool(tmp_path, monkeypatch):
    """Ctrl-C kills a local pool's workers and waits for them: a forked worker
    holds the files the sweep had open, and the sweep run again at once was
    refused as though another held its folder's lock.  The runs queued are not
    cancelled first: before Python 3.12 the pool's own thread then raised (a
    traceback on stderr) at each cancelled one it failed."""
    import fcntl
    import threading

    from emu.run import executors
    thread_errors = []
    monkeypatch.setattr(threading, "excepthook", lambda a: thread_errors.append(a.exc_type))
    lock_file = tmp_path / ".sweep.lock"
    for i in range(12):
        fd = os.open(lock_file, os.O_RDWR | os.O_CREAT)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with executors.LocalProcesses(2) as backend:
            futures = [backend.pool.submit(_sleep, 30) for _ in range(4)]
            time.sleep(0.05 + 0.005 * i)            # the workers started, or starting
            workers = list(backend.pool._processes.values())
            backend.cancel(futures, interrupted=True)
            # ended (a zombie at most, which holds no file): is_alive() may say
            # otherwise where the pool's own thread reaped the process first
            assert workers and not any(_running(p.pid) for p in workers)
        os.close(fd)
        again = os.open(lock_file, os.O_RDWR)
        try:
            fcntl.flock(again, fcntl.LOCK_EX | fcntl.LOCK_NB)     # no worker holds it
        finally:
            os.close(again)
    assert thread_errors == []


@pytest.fixture
def dask_cluster():
    """A LocalCluster of two worker processes on 127.0.0.1, closed after the test."""
    distributed = pytest.importorskip("dask.distributed")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       host="127.0.0.1", dashboard_address=None)
    try:
        assert cluster.scheduler_address.startswith("tcp://127.0.0.1:")
        yield cluster
    finally:
        cluster.close()


def test_dask_equals_local(scenario, serial, tmp_path, dask_cluster):
    out, rows, _ = serial
    dask_out = tmp_path / "dask"
    argv = ["sweep", scenario, "--grid", GRIDS[0], "--grid", GRIDS[1], "--seeds", SEEDS,
            "--out", dask_out, "--executor", "dask",
            "--scheduler", dask_cluster.scheduler_address, "--progress", "none"]
    assert emu_main([str(a) for a in argv]) == 0
    assert read_table(dask_out) == rows
    assert summaries(dask_out) == summaries(out)


def test_ctrl_c_of_a_dask_sweep_counts_at_least_the_runs_done(scenario, tmp_path,
                                                              dask_cluster):
    """Dask cannot stop a task that runs: the workers finish the runs they had
    started after the sweep stopped, into its folder.  The count the sweep
    gave as it stopped was said as the runs done, and a resume found more;
    it is said to be a lower bound, and why."""
    out = tmp_path / "out"
    args = ["sweep", scenario, "--set", "duration_ms=60", "--grid", "kvm.strategy=shadow,direct",
            "--seeds", 6, "--out", out, "--executor", "dask",
            "--scheduler", dask_cluster.scheduler_address, "--progress", "none"]
    with started_sweep(args, lambda p: done_runs(out)) as p:
        p.send_signal(signal.SIGINT)
        _, stderr = p.communicate(timeout=30)
    assert p.returncode == 130, stderr
    m = re.fullmatch(r"emu: sweep interrupted: at least (\d+) of 12 runs done in .*/out "
                     r"\(the Dask workers finish the runs they had started\); re-run the same "
                     r"command to resume", stderr.strip().splitlines()[-1])
    assert m, stderr
    n = int(m.group(1))
    assert 1 <= n < 12 and len(read_table(out)) == n        # the table has the runs counted
    assert len(done_runs(out)) >= n


def test_ctrl_c_of_a_sweep_on_its_own_dask_cluster_counts_the_runs_done(scenario, tmp_path):
    """The local cluster a sweep starts ends with it, and the runs its workers
    ran with them: the stop said "at least N runs done (the Dask workers
    finish the runs they had started)", and none did.  The cluster is closed
    before the runs are counted, so the count is the runs in the folder."""
    pytest.importorskip("dask.distributed")
    out = tmp_path / "out"
    args = ["sweep", scenario, "--set", "duration_ms=60", "--grid", "kvm.strategy=shadow,direct",
            "--seeds", 6, "--out", out, "--executor", "dask", "--workers", 2,
            "--progress", "none"]
    with started_sweep(args, lambda p: done_runs(out)) as p:
        p.send_signal(signal.SIGINT)
        _, stderr = p.communicate(timeout=60)
    assert p.returncode == 130, stderr
    m = re.fullmatch(r"emu: sweep interrupted: (\d+) of 12 runs done in .*/out; re-run the same "
                     r"command to resume", stderr.strip().splitlines()[-1])
    assert m, stderr
    n = int(m.group(1))
    time.sleep(1)                   # a worker left running would write its run by now
    assert 1 <= n < 12 and len(read_table(out)) == n == len(done_runs(out))


# -- resuming ------------------------------------------------------------------------------


#: runs of the sweeps stopped mid-way: long enough that the sweep cannot end
#: between its first finished run and the stop, on a machine the suite's
#: other workers keep busy (at 2 ms the twelve runs took about a second)
RESUME_MS = 20


def _resume_args(scenario, out, workers):
    return ["sweep", scenario, "--set", f"duration_ms={RESUME_MS}",
            "--grid", "kvm.strategy=shadow,direct",
            "--seeds", 6, "--out", out, "--workers", workers, "--progress", "lines"]


@contextlib.contextmanager
def started_sweep(args, ready):
    """A sweep process, handed over once ``ready(p)`` holds (or it has ended);
    killed on the way out whatever happens."""
    p = popen(args)
    try:
        wait_for(lambda: ready(p) or p.poll() is not None)
        yield p
    finally:
        with contextlib.suppress(OSError):
            p.kill()


def test_resume_after_the_sweep_is_killed(scenario, tmp_path):
    out = tmp_path / "out"
    args = _resume_args(scenario, out, 1)
    with started_sweep(args, lambda p: done_runs(out)) as p:
        p.kill()                                            # SIGKILL
        p.communicate(timeout=30)
    done = done_runs(out)
    assert 1 <= len(done) < 12, "the sweep should have been killed mid-way"
    check_no_partial_files(out)
    mtimes = {rid: (out / "runs" / rid / "summary.json").stat().st_mtime_ns for rid in done}

    p = popen(args)
    stdout, stderr = p.communicate(timeout=120)
    assert p.returncode == 0, stderr
    assert f"12 runs, {len(done)} already done" in stderr
    assert len(done_runs(out)) == 12
    assert tmp_files(out) == []                              # cleaned at start
    check_no_partial_files(out)
    for rid, m in mtimes.items():                             # not redone
        assert (out / "runs" / rid / "summary.json").stat().st_mtime_ns == m

    clean = tmp_path / "clean"
    rows = run_sweep(scenario, ["kvm.strategy=shadow,direct"], 6, clean, workers=2,
                     overrides=[f"duration_ms={RESUME_MS}"])
    assert read_table(out) == rows
    assert summaries(out) == summaries(clean)


@pytest.mark.parametrize("signum, how, status", [(signal.SIGINT, "interrupted", 130),
                                                   (signal.SIGTERM, "terminated", 143)])
def test_ctrl_c_stops_and_rerun_resumes(scenario, tmp_path, signum, how, status):
    """Ctrl-C, and SIGTERM alike (it had ended the process with the table
    as it was and the temporaries left)."""
    out = tmp_path / "out"
    args = _resume_args(scenario, out, 2)
    with started_sweep(args, lambda p: done_runs(out)) as p:
        p.send_signal(signum)
        t = time.monotonic()
        stdout, stderr = p.communicate(timeout=30)
        assert time.monotonic() - t < 10                     # running runs are not waited for
    assert p.returncode == status, stderr
    last = stderr.strip().splitlines()[-1]
    m = re.fullmatch(rf"emu: sweep {how}: (\d+) of 12 runs done in .*; "
                     r"re-run the same command to resume", last)
    assert m, stderr
    assert "Traceback" not in stderr
    n = int(m.group(1))
    assert n == len(done_runs(out)) and 1 <= n < 12
    assert len(read_table(out)) == n                          # the table has the runs done
    with pytest.warns(IncompleteSweep, match=f"{n} of the sweep's 12 runs are in its table"):
        df = emu.load(out)
    assert (len(df), df.attrs["runs"], df.attrs["complete"]) == (n, 12, False)

    p = popen(args)
    _, stderr = p.communicate(timeout=120)
    assert p.returncode == 0, stderr
    assert len(done_runs(out)) == 12 and len(read_table(out)) == 12
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert emu.load(out).attrs["complete"] is True


@pytest.mark.skipif(not os.path.exists(f"/proc/{os.getpid()}/task/{os.getpid()}/children"),
                    reason="needs /proc/PID/task/PID/children")
def test_a_killed_worker_stops_the_sweep_and_rerun_resumes(scenario, tmp_path):
    out = tmp_path / "out"
    args = _resume_args(scenario, out, 2)

    def workers(p):
        with contextlib.suppress(OSError):
            return [int(x) for x in
                    Path(f"/proc/{p.pid}/task/{p.pid}/children").read_text().split()]
        return []

    with started_sweep(args, lambda p: done_runs(out) and workers(p)) as p:
        os.kill(workers(p)[0], signal.SIGKILL)
        _, stderr = p.communicate(timeout=30)
    assert p.returncode == 1, stderr
    lines = stderr.strip().splitlines()
    assert "worker process died" in lines[-1] and "re-run the same command" in lines[-1]
    assert "Traceback" not in stderr
    check_no_partial_files(out)

    p = popen(args)
    _, stderr = p.communicate(timeout=120)
    assert p.returncode == 0, stderr
    assert len(done_runs(out)) == 12


# -- bad input ------------------------------------------------------------------------------


BAD = [
    (["--grid", "kvm.stratgy=shadow,direct"], "kvm.stratgy"),
    (["--grid", "kvm.strategy=shadow,bogus"], "kvm.strategy"),
    (["--grid", "vm.0.process.0.workload.pages=20,-3"], "vm.0.process.0.workload.pages"),
    (["--grid", "kvm.strategy"], "--grid"),
    (["--grid", "kvm.strategy=shadow,,direct"], "--grid"),
    (["--grid", "kvm.strategy=shadow,shadow"], "twice"),
    # one value written two ways: one seed run twice, folded into "2 seeds" of a point
    (["--grid", "seed=1,+1"], "--grid seed: '1' and '+1' are the same value"),
    (["--grid", "duration_ms=1,1.0"], "--grid duration_ms: '1' and '1.0' are the same"),
    (["--grid", "duration_ms=nan,2"], "expected a finite number, got nan"),
    (["--grid", "vm.0.process.0.workload={kind='sweep', pages=8},{pages=8, kind='sweep'}"],
     "are the same value"),
    (["--seeds", "0"], "--seeds"),
    (["--seeds", "two"], "--seeds"),
    (["--grid", "kvm.strategy=shadow", "--set", "kvm.strategy=direct"], "kvm.strategy"),
    (["--grid", "seed=1,2", "--seeds", "2"], "seed"),
    (["--scheduler", "tcp://127.0.0.1:1"], "--scheduler"),
    (["--executor", "dask", "--scheduler", "tcp://127.0.0.1:1", "--workers", "2"], "--workers"),
    (["--executor", "threads"], "--executor"),
]


@pytest.mark.parametrize("extra,names", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_input_is_one_line_and_writes_nothing(scenario, tmp_path, capsys, extra, names):
    out = tmp_path / "out"
    argv = ["sweep", str(scenario), "--grid", "vm.0.vcpus=1", "--out", str(out), *extra]
    assert emu_main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("emu"), err
    assert names in err
    assert not out.exists()


@pytest.mark.parametrize("holder", ["sweep", "sensitivity study"])
def test_a_folder_another_command_writes_into_is_refused_naming_it(scenario, tmp_path, capsys,
                                                                   holder):
    """A sweep refused by a sensitivity study's lock said another sweep held it."""
    from emu.run.resume import locked
    out = tmp_path / "out"
    out.mkdir()
    with locked(str(out), holder):
        assert emu_main(["sweep", str(scenario), "--grid", "seed=1,2", "--out", str(out)]) == 2
    assert capsys.readouterr().err == (f"emu: error: {out}: another emu {holder} is writing "
                                       f"into this directory\n")
    assert os.listdir(out) == [".sweep.lock"]


def test_a_result_written_as_the_sweep_began_is_not_mixed_into_it(scenario, tmp_path,
                                                                  monkeypatch, capsys):
    """A run committed into the folder between the sweep's first check and
    its lock: the sweep wrote its table and runs beside the run's files."""
    import emu.run.sweep as sweep_module
    from clirun import committed_first
    out = tmp_path / "out"
    monkeypatch.setattr(sweep_module, "locked", committed_first(sweep_module.locked))
    assert emu_main(["sweep", str(scenario), "--grid", "seed=1,2", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"emu: error: --out {out}: holds a run") and err.endswith(
        "not a sweep: pass --force to replace it, or choose another folder (the folder changed "
        "since the sweep began)\n"), err
    assert sorted(os.listdir(out)) == [".sweep.lock", "summary.json"]


def test_the_grid_options_in_another_order_are_the_same_sweep(scenario, tmp_path, capsys):
    """A run's id hashed its overrides in the order of the --grid options: the
    same sweep with two options swapped was refused as one that 'leaves out'
    every run, and with --force ran them all again beside the first."""
    a, b = "kvm.strategy=shadow,direct", "vm.0.process.0.workload.pages=20,40"
    out = tmp_path / "out"
    assert emu_main(["sweep", str(scenario), "--grid", a, "--grid", b, "--out", str(out),
                     "--workers", "1", "--progress", "none"]) == 0
    capsys.readouterr()
    assert emu_main(["sweep", str(scenario), "--grid", b, "--grid", a, "--out", str(out),
                     "--workers", "1", "--progress", "lines"]) == 0
    assert "4 runs, 4 already done" in capsys.readouterr().err
    assert len(os.listdir(out / "runs")) == 4


def test_bad_input_leaves_an_existing_dir_as_it_was(scenario, serial, tmp_path):
    out, _, _ = serial
    before = snapshot(out)
    p = popen(["sweep", scenario, "--grid", "kvm.strategy=shadow,bogus", "--grid", GRIDS[1],
               "--seeds", SEEDS, "--out", out])
    stdout, stderr = p.communicate(timeout=60)
    assert p.returncode == 2
    assert stderr.count("\n") == 1 and "kvm.strategy" in stderr and stdout == ""
    assert snapshot(out) == before
    missing = popen(["sweep", scenario.parent / "missing.toml", "--out", out])
    _, stderr = missing.communicate(timeout=60)
    assert missing.returncode == 2 and stderr.count("\n") == 1 and "not found" in stderr
    assert snapshot(out) == before


def test_one_sweep_at_a_time_in_a_dir(scenario, tmp_path):
    fcntl = pytest.importorskip("fcntl")
    out = tmp_path / "out"
    out.mkdir()
    with open(out / ".sweep.lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        with pytest.raises(ConfigError, match="another emu sweep"):
            run_sweep(scenario, GRIDS[:1], None, out, workers=1)
    assert not (out / "runs").exists() or not any((out / "runs").iterdir())


def test_parse_grid():
    assert parse_grid("a.b=1, 2 ,x") == ("a.b", ["1", "2", "x"])
    assert parse_grid('k=[1,2],[3, 4],"a,b"') == ("k", ["[1,2]", "[3, 4]", '"a,b"'])
    assert parse_grid(("k", [1, 2.5, True, "s"])) == ("k", ["1", "2.5", "true", "s"])
    for bad in ("k", "=1,2", "k=", "k=1,", "k=1,1"):
        with pytest.raises(ConfigError):
            parse_grid(bad)


# -- progress ----------------------------------------------------------------------------------


def test_progress_lines_when_not_a_terminal(scenario, tmp_path, capsys):
    argv = ["sweep", str(scenario), "--grid", GRIDS[0], "--seeds", "2", "--workers", "1"]
    assert emu_main(argv + ["--out", str(tmp_path / "a"), "--progress", "lines"]) == 0
    cap = capsys.readouterr()
    lines = cap.err.splitlines()
    assert lines[0].startswith("emu: sweep: 4 runs, 0 already done")
    assert any(re.match(r"emu: sweep: 4/4 runs done \(100%\)", ln) for ln in lines)
    assert sum("runs done" in ln for ln in lines) >= 2
    assert "results.parquet" in cap.out
    # auto, not on a terminal: lines too; none: nothing
    assert emu_main(argv + ["--out", str(tmp_path / "b")]) == 0
    assert "runs done" in capsys.readouterr().err
    assert emu_main(argv + ["--out", str(tmp_path / "c"), "--progress", "none"]) == 0
    err = capsys.readouterr().err               # no progress; only the note of the start-up
    assert all(ln.startswith(("emu: note: Not settled", "  ")) for ln in err.splitlines()), err


def test_throughput_api(scenario):
    res = sweep_throughput(scenario, GRIDS[:1], 2, workers=1)
    assert res["runs"] == 4 and res["runs_per_minute"] > 0 and res["executor"] == "local"


@pytest.mark.parametrize("module", ["emu.run", "emu.run.plan", "emu.run.comparison"])
def test_doctests(module):
    failures, tried = doctest.testmod(importlib.import_module(module))
    assert tried and not failures


def test_run_sweep_refuses_bad_arguments_before_writing_anything(tmp_path):
    """force="no" was taken as true, grids=None raised TypeError, and a
    stream without write raised AttributeError after sweep.json, .sweep.lock
    and runs/ were made."""
    scenario = tmp_path / "s.toml"
    scenario.write_text("duration_ms = 0.05\n")
    out = tmp_path / "out"
    for kw, says in (
            ({"force": "no"}, "force: expected True or False, got str 'no'"),
            ({"grids": None}, "grids: expected 'key=v1,v2' texts, (key, values) pairs or a "
                              "dict, got NoneType None"),
            ({"stream": 3, "progress": "lines"}, "stream: expected a text stream (with a write "
                                                 "method) for the progress, got int 3")):
        args = {"grids": ["seed=1,2"], **kw}
        with pytest.raises(ConfigError) as err:
            run_sweep(scenario, args.pop("grids"), out_dir=out, workers=1, **args)
        assert str(err.value) == says
        assert not out.exists()

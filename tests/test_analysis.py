"""Results read as data (emu.analysis): frames, notebook views, emu.load.

The frames are checked against the summary they come from: row counts and
sums equal its counters, on short real runs (one CPU and a host task; two
CPUs, two vCPUs, MMIO and a warm-up).  Each folder kind is written and read
back with ``emu.load``.
"""

from __future__ import annotations

import doctest
import importlib
import sys

import numpy as np
import pandas as pd
import pytest

import emu
from emu.analysis.frames import PandasMissing
from emu.analysis.results import Comparison, points
from emu.codes import CYCLE_CATEGORIES, EXIT_CATEGORIES, MISS_CAUSES, PROFILE_STEPS
from emu.errors import EmuError
from emu.params import default_scenario
from emu.report import plots
from emu.run import METRICS, compare, run, run_sweep, write_comparison
from emu.run import table as results_table
from emu.stats.interval import mean_interval
from emu.stats.summary import cpu_cycles

DESIGNS = ["shadow", "direct"]

#: Two CPUs, two vCPUs, three processes, MMIO, syscalls, sleeps and a warm-up.
TWO_CPUS = ["duration_ms=2", "sim.warmup_ms=0.5", "machine.cpus=2", "vm.0.vcpus=2",
            "vm.0.process.0.workload.mmio_every=3000", "vm.0.process.0.workload.syscall_every=2000",
            "vm.0.process.0.workload.sleep_every=5000", "vm.0.process.0.workload.sleep_us=30",
            "vm.0.process.0.count=3"]


@pytest.fixture(scope="module")
def results():
    """[(label, Result)]: 2 ms of the default scenario under shadow and direct."""
    return compare(default_scenario(), "kvm.strategy", DESIGNS,
                   ["duration_ms=2", "sim.timeline=true"])


@pytest.fixture(scope="module")
def two_cpus():
    return run(default_scenario(), TWO_CPUS + ["kvm.strategy=shadow"])


@pytest.fixture(params=["shadow", "direct", "two_cpus"])
def result(request, results, two_cpus):
    return two_cpus if request.param == "two_cpus" else dict(results)[request.param]


# -- frames ------------------------------------------------------------------------------

def test_frames_are_the_run_tables_by_name(result):
    assert list(result.frames()) == ["exits", "tlb", "misses", "cycles", "profile",
                                     "profile_hist", "repopulation"]


def test_exit_frame_rows_and_sums_equal_the_summary(result):
    s, df = result.summary, result.frames()["exits"]
    vcpus = [c["name"] for c in s["contexts"] if c["kind"] == "vcpu"]
    assert set(df["vcpu"]) <= set(vcpus)
    assert not df.duplicated(["vcpu", "category"]).any() and (df["count"] > 0).all()
    by = df.groupby("category", observed=True)
    for cat, e in s["exits"].items():
        if not e["count"]:
            assert cat not in set(df["category"])
            continue
        assert by["count"].sum()[cat] == e["count"]
        assert by["sum_cycles"].sum()[cat] == e["sum"]
        assert by["sumsq_cycles"].sum()[cat] == e["sumsq"]
        assert by["min_cycles"].min()[cat] == e["min"] and by["max_cycles"].max()[cat] == e["max"]
    assert list(df["category"].cat.categories) == list(EXIT_CATEGORIES)


def test_tlb_frames_by_owner_and_cause_equal_the_summary(result):
    s, f = result.summary, result.frames()
    tlb, misses = f["tlb"], f["misses"]
    assert len(tlb) == len(s["contexts"])
    assert set(tlb["context"]) == {c["name"] for c in s["contexts"]}
    assert len(misses) == len(s["contexts"]) * len(MISS_CAUSES)
    for side in ("guest", "host"):
        sums = tlb[tlb["side"] == side].sum(numeric_only=True)
        for counter in ("hits", "misses", "micro_hits", "micro_misses", "isolation_violations",
                        "host_mappings_killed"):
            assert sums[counter] == s["tlb"][side][counter], (side, counter)
        causes = misses[misses["side"] == side].groupby("cause", observed=False)["misses"].sum()
        assert causes.to_dict() == s["tlb"][side]["misses_by_cause"]
    assert misses.groupby("cause", observed=False)["misses"].sum().to_dict() == \
        s["tlb"]["misses_by_cause"]
    # every miss has exactly one cause
    per_owner = misses.groupby("context")["misses"].sum()
    assert per_owner.to_dict() == dict(zip(tlb["context"], tlb["misses"]))
    assert (tlb.loc[tlb["kind"] == "vcpu", "side"] == "guest").all()


def test_cycle_frame_rows_and_sums_equal_the_summary(result):
    s, df = result.summary, result.frames()["cycles"]
    assert len(df) == s["cpus"] * len(CYCLE_CATEGORIES)
    assert sorted(set(df["cpu"])) == list(range(s["cpus"]))
    assert df.groupby("component", observed=False)["cycles"].sum().to_dict() == s["cycles"]
    assert df["cycles"].sum() == cpu_cycles(s)


def test_profile_frame_sums_equal_the_summary(result):
    s, df = result.summary, result.frames()["profile"]
    assert (df["count"] > 0).all()
    by = df.groupby("step", observed=False)[["count", "cycles"]].sum()
    for step in PROFILE_STEPS:
        p = s["fastpath_profile"][step]
        assert (by.loc[step, "count"], by.loc[step, "cycles"]) == (p["count"], p["cycles"])


def test_repopulation_frame_equals_the_summary(result):
    rep, df = result.summary["repopulation"], result.frames()["repopulation"]
    assert len(df) == rep["window"] and list(df["k"]) == list(range(rep["window"]))
    assert list(df["misses"]) == rep["misses"] and list(df["accesses"]) == rep["accesses"]
    if rep["resumes"]:
        assert df["misses"].sum() / rep["resumes"] == pytest.approx(rep["misses_per_resume"])


def test_a_table_the_run_wrote_besides_becomes_a_frame(results):
    r = dict(results)["direct"]
    extra = emu.run.Result(r.summary, dict(r.tables, processes=[
        {"vm": 0, "process": 0, "accesses": 10}, {"vm": 0, "process": 1, "accesses": 5}]))
    df = extra.frames()["processes"]
    assert list(df.columns) == ["vm", "process", "accesses"] and df["accesses"].sum() == 15


def test_a_summary_without_tables_says_which_is_missing(results):
    bare = emu.run.Result(dict(results)["direct"].summary, {})
    with pytest.raises(EmuError, match="no 'exits' table"):
        bare.frames()


def test_without_pandas_one_line_says_how_to_install(results, monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)        # import pandas fails
    with pytest.raises(PandasMissing) as err:
        dict(results)["direct"].frames()
    assert isinstance(err.value, ImportError) and isinstance(err.value, EmuError)
    msg = str(err.value)
    assert "\n" not in msg and "pip install 'emu[analysis]'" in msg


# -- notebook views ------------------------------------------------------------------------

def test_repr_is_two_short_lines(result):
    text = repr(result)
    assert len(text.splitlines()) <= 2 and len(text) < 400
    assert text.startswith("<emu Result ") and text.endswith(">")
    assert f"{result.summary['cycles_per_guest_access']:,.3f} cycles/guest access" in text


def test_html_summary_holds_the_headline_figures(result):
    s = result.summary
    page = result._repr_html_()
    assert page.startswith("<table>") and page.count("<tr>") == 2
    assert f"<td style=\"text-align:right\">{s['cycles_per_guest_access']:,.3f}</td>" in page
    assert f"{s['tlb']['guest']['misses']:,}" in page and "cycles/access" in page
    assert s["config"]["kvm"]["strategy"] in page


def test_comparison_stacks_frames_under_the_key_and_tables_the_figures(results):
    cmp = Comparison("kvm.strategy", results)
    cycles = cmp.frames()["cycles"]
    assert list(cycles.columns)[0] == "kvm.strategy"
    assert list(cycles["kvm.strategy"].unique()) == DESIGNS
    for label, r in results:
        mine = cycles[cycles["kvm.strategy"] == label].drop(columns=["kvm.strategy",
                                                                     "hypothetical"])
        pd.testing.assert_frame_equal(mine.reset_index(drop=True), r.frames()["cycles"])
    table = cmp.table()
    assert list(table["kvm.strategy"]) == DESIGNS
    assert list(table.columns[1:]) == ["design", "hypothetical"] + [n for n, _, _ in METRICS]
    assert list(table["design"]) == [r.summary["design"]["label"] for _, r in results]
    for (label, r), (_, row) in zip(results, table.iterrows()):
        assert row["cycles_per_guest_access"] == r.summary["cycles_per_guest_access"]
        assert row["guest_misses"] == r.summary["tlb"]["guest"]["misses"]
    page = cmp._repr_html_()
    assert page.count("<tr>") == 1 + len(DESIGNS) and all(d in page for d in DESIGNS)
    # the default scenario's pfn cache: neither ran so in a kernel
    assert list(table["hypothetical"]) == [True, True]
    assert repr(cmp) == ("<emu Comparison of kvm.strategy = shadow (hypothetical), "
                         "direct (hypothetical) (2 runs)>")


def test_a_comparison_marks_only_the_machines_no_kernel_shipped():
    """Tables, frames and plots of a comparison mark the run no kernel shipped
    (direct without 7924bd41's flush) and only that one."""
    cmp = Comparison("kvm.strategy", compare(default_scenario(), "kvm.strategy",
                                             ["direct", "direct-noflush"],
                                             ["duration_ms=0.3", "kvm.pfn_source=gup"]))
    assert list(cmp.table()["hypothetical"]) == [False, True]
    tlb = cmp.frames()["tlb"]
    assert set(map(tuple, tlb[["kvm.strategy", "hypothetical"]].drop_duplicates().values)) \
        == {("direct", False), ("direct-noflush", True)}
    assert repr(cmp).endswith("= direct, direct-noflush (hypothetical) (2 runs)>")
    # the default comparison's labels are its designs: one design column, not two
    assert list(Comparison("design", list(cmp)).table().columns[:3]) == [
        "design", "hypothetical", "cycles_per_guest_access"]
    for plot in (plots.miss_causes, plots.cycle_breakdown, plots.exits_by_category,
                 plots.repopulation_curve):
        fig = plot(cmp)
        names = [t.get_text() for ax in fig.axes
                 for t in ax.get_yticklabels() + ax.get_xticklabels()
                 + (ax.get_legend().get_texts() if ax.get_legend() else [])] \
            + [t.get_text() for legend in fig.legends for t in legend.get_texts()]
        assert sum(n.startswith("direct-noflush (hypothetical)") for n in names) == 1, names
        assert not any(n.startswith("direct (hypothetical)") for n in names), names


# -- emu.load ------------------------------------------------------------------------------

def assert_same_result(got, want):
    assert got.summary == want.summary
    assert got.tables == want.tables
    assert got.execution == want.execution
    assert got.wall_seconds == pytest.approx(want.wall_seconds, abs=1e-3)
    assert set(got.arrays) == set(want.arrays)
    for name, arrays in want.arrays.items():
        assert set(got.arrays[name]) == set(arrays)
        for k, a in arrays.items():
            np.testing.assert_array_equal(got.arrays[name][k], a)


def test_load_round_trips_a_run(result, tmp_path):
    result.write(tmp_path / "run")
    back = emu.load(tmp_path / "run")
    assert isinstance(back, emu.run.Result)
    assert_same_result(back, result)
    for name, df in result.frames().items():
        pd.testing.assert_frame_equal(back.frames()[name], df)


def test_load_round_trips_a_comparison(results, tmp_path):
    write_comparison(tmp_path / "cmp", "kvm.strategy", results)
    back = emu.load(tmp_path / "cmp")
    assert isinstance(back, Comparison) and back.key == "kvm.strategy"
    assert [label for label, _ in back] == DESIGNS
    for (_, got), (_, want) in zip(back, results):
        assert_same_result(got, want)
    pd.testing.assert_frame_equal(back.table(), Comparison("kvm.strategy", results).table())


@pytest.mark.parametrize("parquet", [True, False])
def test_load_round_trips_a_sweep(tmp_path, monkeypatch, parquet):
    if not parquet:
        monkeypatch.setattr(results_table, "_have_pyarrow", lambda: False)
    scenario = tmp_path / "s.toml"
    scenario.write_text("duration_ms = 0.5\n")
    rows = run_sweep(scenario, ["kvm.strategy=shadow,direct"], 3, tmp_path / "sweep", workers=1)
    df = emu.load(tmp_path / "sweep")
    assert (tmp_path / "sweep" / ("results.parquet" if parquet else "results.csv")).exists()
    assert df.attrs["grid"] == ["kvm.strategy"] and df.attrs["seeds"] == 3
    pd.testing.assert_frame_equal(df, pd.DataFrame(rows), check_dtype=False)
    # one row per grid point and figure: the mean and 95 % interval over the seeds
    pts = points(df)
    assert len(pts) == 2 * len(METRICS) and set(pts["n"]) == {3}
    cpa = pts[pts["figure"] == "cycles_per_guest_access"].set_index("kvm.strategy")
    for design in ("shadow", "direct"):
        n, mean, half = mean_interval(r["cycles_per_guest_access"] for r in rows
                                      if r["kvm.strategy"] == design)
        assert (cpa.loc[design, "mean"], cpa.loc[design, "ci95"]) == \
            (pytest.approx(mean), pytest.approx(half))
    # a run of the sweep is a run folder
    one = emu.load(tmp_path / "sweep" / "runs" / rows[0]["run_id"])
    assert one.summary["seed"] == rows[0]["seed"]


def test_load_refuses_what_is_not_a_result(tmp_path):
    with pytest.raises(EmuError, match="not an emu result folder"):
        emu.load(tmp_path)
    with pytest.raises(EmuError, match="no such directory"):
        emu.load(tmp_path / "absent")
    (tmp_path / "a-file").write_text("")
    with pytest.raises(EmuError, match="a-file: is not a folder$"):
        emu.load(tmp_path / "a-file")
    with pytest.raises(EmuError, match="^'': an empty path names no folder$"):
        emu.load("")                         # where it said ': no such directory'
    (tmp_path / "summary.json").write_text("{")
    with pytest.raises(EmuError, match="corrupt JSON"):
        emu.load(tmp_path)


def test_import_emu_stays_light():
    code = ("import sys, emu; assert 'emu.run' not in sys.modules; "
            "emu.load; assert 'emu.run' in sys.modules; assert 'pandas' not in sys.modules")
    import subprocess
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("module", ["emu.analysis.display", "emu.stats.interval"])
def test_doctests(module):
    failures, tried = doctest.testmod(importlib.import_module(module),
                                      optionflags=doctest.ELLIPSIS)
    assert tried and not failures


def test_load_round_trips_a_study(tmp_path):
    import json
    import shutil

    import emu.study
    from emu.analysis.results import Study
    out = tmp_path / "study"
    numbers = emu.study.run("pfn_cache_sizing", quick=True, out=str(out))
    back = emu.load(out)
    results = json.loads((out / "results.json").read_text())
    assert isinstance(back, Study) and back.name == "pfn_cache_sizing"
    assert back.results == results and back.numbers == json.loads(json.dumps(numbers))
    # every run as a Result, in the order the study made them, equal to its folder
    assert [label for label, _ in back] == list(results["runs"]) and len(back) > 1
    for label, r in back:
        assert r.summary["cycles_per_guest_access"] == \
            results["runs"][label]["cycles_per_guest_access"]
    frames = back.frames()
    assert list(frames["exits"].columns[:1]) == ["run"]
    assert set(frames["exits"]["run"]) == set(results["runs"])
    table = back.table()
    assert list(table["run"]) == list(results["runs"])
    assert repr(back) == f"<emu Study pfn_cache_sizing (quick): {len(back)} runs>"
    # in the order the study ran them, cache sizes increasing (not sorted as text)
    assert [label for label, _ in back] == ["gup/c", "gup/asm", "pfn-cache-8/asm",
                                            "pfn-cache-32/asm", "pfn-cache-128/asm",
                                            "pin-all/asm"]
    # its notebook caption names the study, not one run's scenario
    assert "<caption>study pfn_cache_sizing (quick), 6 runs: " in back._repr_html_()
    # the proposal's runs say so, as the hypothetical ones do
    assert all(label.endswith("(proposal)") for label, _ in back.summaries()[2:5])
    # a run folder removed: left out; a results.json that is not a study's: one line
    first = next(iter(results["runs"]))
    shutil.rmtree(out / "runs" / emu.study.lib.safe_label(first))
    assert [label for label, _ in emu.load(out)] == list(results["runs"])[1:]
    (out / "results.json").write_text("[]")
    with pytest.raises(EmuError, match="results.json is not a study's"):
        emu.load(out)


def test_compare_takes_numbers_and_refuses_what_it_would_split():
    """compare(..., "duration_ms", [1, 2]) crashed in a join, a string of
    values was taken letter by letter, no value ran nothing, and an empty
    value ran a run named by nothing (which write_comparison then refused)."""
    runs = compare(default_scenario(), "duration_ms", [0.1, 0.2], "kvm.strategy=direct")
    assert [label for label, _ in runs] == ["0.1", "0.2"]
    assert [r.summary["config"]["duration_ms"] for _, r in runs] == [0.1, 0.2]
    for key, values, message in [
            ("kvm.strategy", "shadow,direct", "values: expected a list of values such as "
                                              "['shadow', 'direct'], got 'shadow,direct'"),
            ("kvm.strategy", [], "values: no value to compare"),
            ("name", ["x", " "], "values: value 2 is empty (' '): it names no run"),
            ("seed", ["1", 1], "values: '1' given twice"),
            ("seed", [1, 1.0], "values: '1' and '1.0' are the same value"),
            ("duration_ms", [float("nan"), 1], "key duration_ms=nan: duration_ms: expected a "
                                               "finite number, got nan"),
            ("kvm.strategy", [object()], "values: expected strings or numbers"),
            ("", ["a"], "key: expected a scenario key such as 'kvm.strategy', got ''")]:
        with pytest.raises(EmuError) as info:
            compare(default_scenario(), key, values)
        assert str(info.value).startswith(message)
    with pytest.raises(EmuError, match="runs: no run to write"):
        write_comparison("unused", "kvm.strategy", [])
    with pytest.raises(EmuError, match="runs: '0.1' given twice"):
        write_comparison("unused", "duration_ms", [("0.1", runs[0][1]), ("0.1", runs[1][1])])
    # (key, values) pairs take what compare() takes, and refuse what it refuses
    from emu.run import run_comparison
    got = run_comparison(default_scenario(), [("duration_ms", [0.1, 0.2])], "kvm.strategy=direct")
    assert got.labels == ["0.1", "0.2"]
    with pytest.raises(EmuError, match=r"^varies duration_ms: values: '0.1' and '1e-1' are the "
                                       r"same value$"):
        run_comparison(default_scenario(), [("duration_ms", ["0.1", "1e-1"])])
    with pytest.raises(EmuError, match=r"^varies name: values: value 1 is empty \(''\)"):
        run_comparison(default_scenario(), [("name", ["", "x"])])
    # one override as a string is one override, not one per letter
    assert run(default_scenario(), "duration_ms=0.1").summary["config"]["duration_ms"] == 0.1


def test_the_api_refuses_what_it_cannot_take_in_one_line():
    from emu.errors import ConfigError
    from emu.run import run, run_comparison, write_comparison
    for call, error, says in (
            (lambda: run(5), ConfigError, "scenario: expected a TOML file's path, a dict or a "
                                          "Scenario, got int 5"),
            (lambda: emu.load(None), EmuError, "load: expected the path of an emu result "
                                               "folder, got NoneType None"),
            (lambda: write_comparison("x", "k", [1, 2]), ConfigError,
             "runs: expected [(value, Result)]"),
            (lambda: run_comparison(default_scenario(), [5]), ConfigError,
             "varies: expected (key, values) pairs or 'key=v1,v2' texts")):
        with pytest.raises(error) as err:
            call()
        assert str(err.value).startswith(says) and "\n" not in str(err.value)
    # --vary's texts are taken as they are on the command line
    c = run_comparison(default_scenario(), ["kvm.strategy=shadow,direct", "seed=1,2"],
                       ["duration_ms=0.05"])
    assert len(c.runs) == 4


def test_a_comparison_of_several_keys_loads_a_column_per_key(tmp_path):
    from emu.run import run_comparison
    c = run_comparison(default_scenario(), ["kvm.strategy=shadow,direct", "seed=1,2"],
                       ["duration_ms=0.05"])
    c.write(str(tmp_path / "cmp"))
    back = emu.load(tmp_path / "cmp")
    table = back.table()
    assert list(table.columns[:3]) == ["kvm.strategy, seed", "kvm.strategy", "seed"]
    assert list(zip(table["kvm.strategy"], table["seed"])) == [
        ("shadow", 1), ("shadow", 2), ("direct", 1), ("direct", 2)]
    exits = back.frames()["exits"]
    assert exits.groupby("kvm.strategy")["count"].sum().to_dict() == {
        s: int(exits[exits["kvm.strategy"] == s]["count"].sum()) for s in ("shadow", "direct")}
    # one key: its label column alone, as before
    one = run_comparison(default_scenario(), ["seed=1,2"], ["duration_ms=0.05"])
    one.write(str(tmp_path / "one"))
    assert list(emu.load(tmp_path / "one").table().columns[:2]) == ["seed", "design"]


def test_run_comparison_gives_what_emu_load_gives_back(tmp_path):
    """emu.run.run_comparison returned a dataclass a notebook showed as its
    fields, with no frames() or table, which no plot took."""
    from emu.run import run_comparison
    c = run_comparison(default_scenario(), ["kvm.strategy=shadow,direct", "seed=1,2"],
                       ["duration_ms=0.1"])
    c.write_files(str(tmp_path / "cmp"))
    back = emu.load(tmp_path / "cmp")
    pd.testing.assert_frame_equal(c.table(), back.table())
    for name, frame in c.frames().items():
        pd.testing.assert_frame_equal(frame, back.frames()[name])
    assert c._repr_html_() == back._repr_html_() and repr(c) == repr(back)
    assert plots.cycle_breakdown(c) is not None


def test_load_checks_each_file_as_emu_report_does(results, tmp_path):
    """A summary.json of {"x": 1} loaded, then repr, the notebook view and
    frames() raised KeyError; a comparison.json or sweep.json of the wrong
    shape raised TypeError; a tlb.csv of anything loaded as an empty table."""
    import json
    import shutil
    dict(results)["shadow"].write(tmp_path / "run")
    write_comparison(tmp_path / "cmp", "kvm.strategy", results)
    cases = []

    def case(folder, file, text, says):
        where = tmp_path / f"case{len(cases)}"
        shutil.copytree(tmp_path / folder, where)
        (where / file).write_text(text)
        cases.append((where, f"{where / file}: {says}"))

    case("run", "summary.json", '{"x": 1}', "emu_version: missing")
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    case("run", "summary.json", json.dumps({**summary, "tlb": 5}),
         "tlb: expected an object, got 5")
    case("run", "tlb.csv", "garbage\n", "no column 'context'")
    case("run", "cycles.csv", "cpu,component,cycles\n0,idle\n", "row 1: fewer cells")
    case("run", "cycles.csv", "cpu,component,cycles\n0,idle,1,2\n", "row 1: more cells")
    case("cmp", "comparison.json", '{"runs": 3}', "key: missing")
    case("cmp", "comparison.json", '{"key": "k", "runs": 3}', "runs: expected a list")
    (tmp_path / "sw").mkdir()
    (tmp_path / "sw" / "results.csv").write_text("run_id\n")
    case("sw", "sweep.json", '{"grid": 5}', "emu_version: missing")
    for folder, says in cases:
        with pytest.raises(EmuError) as err:
            emu.load(folder)
        assert str(err.value).startswith(says) and "\n" not in str(err.value)
    # what emu wrote loads as before, an empty table (no rows) included
    (tmp_path / "run" / "profile.csv").write_text("")
    assert emu.load(tmp_path / "run").tables["profile"] == []


def test_points_refuses_what_the_table_has_not_in_one_line():
    """A typo'd column gave rows of mean None, a typo'd key a KeyError, a
    column of text a ValueError, a list for the table an AttributeError, and
    one name as a string was taken letter by letter."""
    rows = [{"run_id": f"r{i}", "kvm.strategy": s, "design": f"d {s}",
             "cycles_per_guest_access": float(i), "exits": i}
            for i, s in enumerate(["shadow", "shadow", "direct"])]
    df = pd.DataFrame(rows)
    df.attrs["grid"] = ["kvm.strategy"]
    one = points(df, columns="exits")
    assert list(one["figure"]) == ["exits", "exits"] and list(one["n"]) == [2, 1]
    assert points(df, keys="kvm.strategy", columns=["exits"]).equals(one)
    # a point of one run has no interval: None, NaN in a column with numbers
    assert one["ci95"].isna().tolist() == [False, True]
    assert points(df.iloc[2:], columns="exits")["ci95"].tolist() == [None]
    for call, says in (
            (lambda: points(df, columns=["cycles_per_guest_acess"]),
             "points: columns: the table has no column 'cycles_per_guest_acess' (did you mean "
             "'cycles_per_guest_access'?); its columns: run_id, kvm.strategy, design, "),
            (lambda: points(df, keys=["kvm.stratgy"], columns="exits"),
             "points: keys: the table has no column 'kvm.stratgy' (did you mean "
             "'kvm.strategy'?)"),
            (lambda: points(df, columns="design"),
             "points: columns: 'design' is not a figure: its values are not numbers "
             "(e.g. 'd shadow')"),
            (lambda: points(df, columns=5), "points: columns: expected a figure's name or a "
                                            "list of them, got int 5"),
            (lambda: points([1, 2]), "points: table: expected a sweep's results table")):
        with pytest.raises(EmuError) as err:
            call()
        assert str(err.value).startswith(says) and "\n" not in str(err.value)


def test_an_empty_comparison_or_study_shows_as_an_empty_table(tmp_path):
    """Comparison("k", [])._repr_html_() raised IndexError, and so did a
    loaded study whose runs/ was removed."""
    from emu.analysis.results import Study
    html = Comparison("k", [])._repr_html_()
    assert html == ("<table><thead><tr><th>k</th></tr></thead>"
                    "<tbody><tr><td>(no runs)</td></tr></tbody></table>")
    study = Study({"study": "s", "question": "q?", "quick": True, "runs_count": 0,
                   "numbers": {}, "runs": {}})
    assert "<caption>study s (quick), 0 runs: q?</caption>" in study._repr_html_()
    assert "(no runs)" in study._repr_html_()


def test_import_emu_gives_its_subpackages_on_first_use():
    """emu.run, emu.study, emu.report, ... were AttributeError after a bare
    import emu until emu.load had been touched; dir(emu) had no load and
    emu had no __all__."""
    import subprocess
    code = ("import sys, emu\n"
            "assert 'emu.run' not in sys.modules and 'emu.report' not in sys.modules\n"
            "assert 'load' in dir(emu) and set(emu.__all__) <= set(dir(emu))\n"
            "for name in ('run', 'study', 'sensitivity', 'report', 'params', 'analysis'):\n"
            "    assert getattr(emu, name) is sys.modules['emu.' + name], name\n"
            "assert callable(emu.run.run) and callable(emu.load)\n"
            "try:\n"
            "    emu.nothing\n"
            "except AttributeError as err:\n"
            "    assert str(err) == \"module 'emu' has no attribute 'nothing'\"\n"
            "else:\n"
            "    raise AssertionError('emu.nothing')\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_run_api_refuses_what_it_would_misread_in_one_line(results, tmp_path):
    """run_comparison(s, []) ran once, a dict of values ran its keys, an
    empty label was written, and None for the varies, the key or the runs,
    or a number for Result.write's folder, raised TypeError."""
    from emu.errors import ConfigError
    from emu.run import run_comparison
    runs = list(results)
    for call, says in (
            (lambda: run_comparison(default_scenario(), []), "varies: no key to vary"),
            (lambda: run_comparison(default_scenario(), None),
             "varies: expected (key, values) pairs or 'key=v1,v2' texts, got nothing (null)"),
            (lambda: compare(default_scenario(), "kvm.strategy", {"shadow": 1, "direct": 2}),
             "values: expected a list of values such as ['shadow', 'direct'], got a dict"),
            (lambda: write_comparison(tmp_path / "c", "kvm.strategy", [("", runs[0][1])]),
             "runs: run 1 has an empty label"),
            (lambda: write_comparison(tmp_path / "c", None, runs),
             "key: expected what the runs' labels name, such as 'kvm.strategy', got nothing (null)"),
            (lambda: write_comparison(tmp_path / "c", "kvm.strategy", None),
             "runs: expected [(value, Result)], as compare gives them, got nothing (null)"),
            (lambda: runs[0][1].write(3), "out_dir: expected the path of a folder (a string "
                                          "or a Path), got int 3")):
        with pytest.raises(ConfigError) as err:
            call()
        assert str(err.value).startswith(says) and "\n" not in str(err.value)
    assert list(tmp_path.iterdir()) == []

"""Tests of emu.sensitivity: cost ranges turned into conclusions with their uncertainty.

Most tests use a toy runner whose metric depends on the costs by a formula
known by hand, so every figure the study reports can be checked by
arithmetic; one test runs the real model for a few 1 ms runs.
"""

from __future__ import annotations

import doctest
import json
import random
import re
import sys

import pytest

from emu.params import default_scenario, load_scenario, scenario_from_dict, scenario_to_dict
from emu.costs import COSTS, COSTS_BY_NAME
from emu.sensitivity import (
    SensitivityError, analyse, format_sensitivity, local_runner, plan_sensitivity,
    run_sensitivity, write_sensitivity)
import emu.sensitivity.spec as spec_module
from emu.cli import build_parser, main
from emu.cli.sensitivity import main_sensitivity
from emu.report.columns import columns
from emu.sensitivity.report import TOP, format_sensitivity

X = "gfn_to_pfn"                      # pinned at 600 in 300..3000 by the toys' scenario
X_DEFAULT, X_LOW, X_HIGH = 600, 300, 3000
Y = "exit_light"
Y_DEFAULT = COSTS_BY_NAME[Y].default
PAGES = "vm.0.process.0.workload.pages"
SHADOW_VS_DIRECT = "kvm.strategy=shadow,direct"


@pytest.fixture(scope="module")
def scenario():
    """The default scenario with X pinned at 600 in 300..3000, so that the toys'
    arithmetic stays put when the table's (fitted) default of X moves."""
    data = scenario_to_dict(default_scenario())
    data["costs"] = {X: {"value": X_DEFAULT, "low": X_LOW, "high": X_HIGH}}
    return scenario_from_dict(data)


def toy_runner(metric_a, metric_b, order_seed=None):
    """A runner whose metric is ``metric_a(costs, pages)`` for shadow and
    ``metric_b(...)`` for direct; ``costs`` has every cost at its value.

    With ``order_seed`` it runs the jobs in a shuffled order and returns the
    summaries by label, as an executor finishing out of order would.
    """
    def summary(job):
        given = dict(o.split("=", 1) for o in job.overrides)
        sc = job.scenario if hasattr(job.scenario, "costs") else load_scenario(job.scenario)
        pinned = {name: v["value"] if isinstance(v, dict) else v
                  for name, v in sc.costs.items() if not isinstance(v, dict) or "value" in v}
        costs = {c.name: int(given.get(f"costs.{c.name}", pinned.get(c.name, c.default)))
                 for c in COSTS}
        pages = float(given.get(PAGES, 40))
        f = metric_a if given["kvm.strategy"] == "shadow" else metric_b
        return {"cycles_per_guest_access": f(costs, pages), "tlb": {"guest": {"miss_rate": 1.0}}}

    def runner(jobs):
        assert all(len(j) == 3 for j in jobs)          # (label, scenario, overrides)
        if order_seed is None:
            return [summary(j) for j in jobs]
        shuffled = list(jobs)
        random.Random(order_seed).shuffle(shuffled)
        return {j.label: summary(j) for j in shuffled}
    return runner


def linear_a(costs, pages):
    return 100 + 0.1 * costs[X]


def entry(result, name):
    return next(c for c in result["costs"] if c["name"] == name)


# --------------------------------------------------------------------------
# oat on a toy whose ratio depends on one cost
# --------------------------------------------------------------------------

@pytest.mark.parametrize("b,r0,flips,flip_at", [
    # metric(A) = 100 + 0.1 x; x = 300, 600, 3000 -> 130, 160, 400.
    (200, 0.8, True, [1000.0]),       # A wins at default, loses at x = 3000: 100 + 0.1x = 200
    (1000, 0.16, False, []),          # A wins over the whole range
    (150, 160 / 150, True, [500.0]),  # B wins at default, A at x = 300: 100 + 0.1x = 150
])
def test_oat_finds_the_one_cost_that_moves_the_ratio(scenario, b, r0, flips, flip_at):
    result = run_sensitivity(scenario, SHADOW_VS_DIRECT,
                             runner=toy_runner(linear_a, lambda c, p: b))
    assert result["default"]["ratio"] == pytest.approx(r0)
    assert result["default"]["a_wins"] == (r0 < 1)
    x = entry(result, X)
    assert (x["default"], x["low"], x["high"]) == (X_DEFAULT, X_LOW, X_HIGH)
    assert x["ratio_low"] == pytest.approx(130 / b)
    assert x["ratio_high"] == pytest.approx(400 / b)
    assert x["ratio_low"] < result["default"]["ratio"] < x["ratio_high"]   # dearer x, worse A
    assert x["flips"] is flips and x["flip_at"] == pytest.approx(flip_at)
    assert result["ranking"][0] == X and x["rank"] == 1
    assert result["flipping"] == ([X] if flips else [])
    for c in result["costs"]:
        if c["name"] != X:
            assert c["ratio_low"] == c["ratio_high"] == pytest.approx(r0), c["name"]
            assert c["flips"] is False and c["swing"] == 0
    assert "win_share" not in result and "break_even" not in result


def test_a_side_no_kernel_shipped_is_named_so(scenario):
    """The side whose run at the default costs is of a machine no kernel
    shipped is recorded, and the text names it so wherever it names the side."""
    toy = toy_runner(linear_a, lambda c, p: 200)

    def runner(jobs):
        return [dict(s, design={"hypothetical": "kvm.strategy=direct" in j.overrides})
                for j, s in zip(jobs, toy(jobs))]
    result = run_sensitivity(scenario, SHADOW_VS_DIRECT, runner=runner)
    assert result["compare"]["hypothetical"] == ["direct"]
    text = format_sensitivity(result, width=200)
    assert "kvm.strategy=shadow vs direct (hypothetical)," in text
    assert "at the default costs: shadow 160, direct (hypothetical) 200, ratio 0.8: shadow wins" \
        in text
    plain = format_sensitivity(run_sensitivity(scenario, SHADOW_VS_DIRECT, runner=toy), 200)
    assert "hypothetical" not in plain


def test_a_side_that_had_not_settled_is_named(scenario, tmp_path):
    """The ratios of runs mostly start-up were given without a word, where
    emu run, emu compare and emu sweep note them."""
    from emu.report.sensitivity import sensitivity_section
    from emu.sensitivity.report import unsettled_text
    toy = toy_runner(linear_a, lambda c, p: 200)

    def runner(jobs):
        return [dict(s, halves={"cycles_per_guest_access": [900.0, 1.0] if
                                "kvm.strategy=direct" in j.overrides else [1.0, 1.0]})
                for j, s in zip(jobs, toy(jobs))]
    result = run_sensitivity(scenario, SHADOW_VS_DIRECT, costs=[X], runner=runner)
    assert result["default"]["settled"] == [True, False]
    text = unsettled_text(result)
    assert text.startswith("Not settled at the default costs: direct (the two halves")
    write_sensitivity(tmp_path, result)
    assert text.replace("'", "&#x27;") in sensitivity_section(result, str(tmp_path))
    plain = run_sensitivity(scenario, SHADOW_VS_DIRECT, costs=[X], runner=toy)
    assert plain["default"]["settled"] == [None, None] and unsettled_text(plain) == ""


def test_a_file_without_a_name_is_named_by_its_stem(tmp_path):
    """It was named '' in the text, the JSON and the plots' titles."""
    path = tmp_path / "my-study.toml"
    path.write_text("duration_ms = 1\n")
    result = run_sensitivity(str(path), SHADOW_VS_DIRECT, costs=[X],
                             runner=toy_runner(linear_a, lambda c, p: 200))
    assert result["scenario"] == "my-study"
    assert format_sensitivity(result, width=200).startswith("scenario my-study: ")


def test_oat_varies_every_cost_with_a_range_but_the_clock(scenario):
    plan = plan_sensitivity(scenario, SHADOW_VS_DIRECT)
    expected = [c.name for c in COSTS if c.low < c.high and c.name != "clock_mhz"]
    assert list(plan.space.names) == expected
    assert "shadow_entry_bytes" not in expected           # exact: a struct layout
    # baseline A and B, then two ends per cost, each with A and B; no run twice
    assert len(plan.jobs) == len({j.overrides for j in plan.jobs})
    # an end at the baseline is the baseline run (e.g. a fitted range ending at its default)
    ends_at_baseline = sum((plan.space.ranges[n][0] == plan.space.baseline[n])
                           + (plan.space.ranges[n][1] == plan.space.baseline[n])
                           for n in plan.space.names)
    assert len(plan.jobs) == 2 + 2 * (2 * len(expected) - ends_at_baseline)
    assert plan.jobs[0].overrides == ("kvm.strategy=shadow",)
    assert plan.jobs[1].overrides == ("kvm.strategy=direct",)


def test_a_scenario_override_outside_the_range_becomes_the_baseline(scenario):
    result = run_sensitivity(scenario, SHADOW_VS_DIRECT, overrides=[f"costs.{X}=5000"],
                             costs=[X], runner=toy_runner(linear_a, lambda c, p: 200))
    x = entry(result, X)
    # the plain value replaces the scenario's pinned table: the cost table's range
    # (fitted, 600..2400) stretched to the value
    low = COSTS_BY_NAME[X].low
    assert low == 600
    assert (x["default"], x["low"], x["high"], x["overridden"]) == (5000, low, 5000, True)
    assert result["default"]["ratio"] == pytest.approx(600 / 200)
    assert x["ratio_high"] == pytest.approx(3.0)
    assert x["ratio_low"] == pytest.approx((100 + 0.1 * low) / 200)
    assert x["flip_at"] == pytest.approx([1000.0])


def test_a_range_override_is_used(scenario):
    result = run_sensitivity(scenario, SHADOW_VS_DIRECT, ranges=[f"{X}=500,900"],
                             costs=[X], runner=toy_runner(linear_a, lambda c, p: 200))
    x = entry(result, X)
    assert (x["low"], x["high"], x["flips"]) == (500, 900, False)
    result = run_sensitivity(scenario, SHADOW_VS_DIRECT, ranges=[f"{Y}=100,{Y_DEFAULT + 50}"],
                             costs=[Y], runner=toy_runner(linear_a, lambda c, p: 200))
    y = entry(result, Y)
    assert (y["low"], y["high"], y["overridden"], y["range_overridden"]) == \
        (100, Y_DEFAULT + 50, False, True)
    assert entry(result, "tlbwe")["range_overridden"] is False
    assert x["ratio_high"] == pytest.approx(190 / 200)


def test_a_cost_as_the_compared_key_is_not_varied(scenario):
    plan = plan_sensitivity(scenario, f"costs.{X}=300,900")
    assert X not in plan.space.names and Y in plan.space.names
    with pytest.raises(SensitivityError, match=f"^costs {X}: the study sets it"):
        plan_sensitivity(scenario, f"costs.{X}=300,900", costs=[X, Y])


# --------------------------------------------------------------------------
# Global methods
# --------------------------------------------------------------------------

def two_cost_a(costs, pages):
    return 100 + 0.1 * costs[X] + 0.001 * costs[Y]


def test_morris_ranks_the_cost_that_matters_first(scenario):
    pytest.importorskip("SALib")
    runner = toy_runner(two_cost_a, lambda c, p: 200)
    result = run_sensitivity(scenario, SHADOW_VS_DIRECT, method="morris", samples=4,
                             runner=runner)
    assert result["ranking"][:2] == [X, Y]
    assert result["rank_by"] == "mu_star"
    mu_x, mu_y = entry(result, X)["indices"]["mu_star"], entry(result, Y)["indices"]["mu_star"]
    assert mu_x > 50 * mu_y > 0
    # Morris' elementary effect of X: the change of the ratio over X's whole
    # range, 0.1 x (3000 - 300) / 200 (SALib divides each step by its share of
    # the range); the same on every trajectory, the ratio being linear in X.
    assert mu_x == pytest.approx(0.1 * 2700 / 200)
    assert entry(result, X)["indices"]["sigma"] == pytest.approx(0, abs=1e-9)
    others = [c for c in result["costs"] if c["varied"] and c["name"] not in (X, Y)]
    assert others and all(c["indices"]["mu_star"] == 0 for c in others)
    # win_share: A wins where 100 + 0.1 x + 0.001 y < 200.
    plan = plan_sensitivity(scenario, SHADOW_VS_DIRECT, method="morris", samples=4)
    wins = [100 + 0.1 * v[X] + 0.001 * v[Y] < 200 for v in plan.sampled]
    assert result["win_share"] == pytest.approx(sum(wins) / len(wins))
    assert result["sampled_vectors"] == 4 * (len(plan.space.names) + 1)
    assert 0 < result["win_share"] < 1


def test_sobol_puts_the_variance_on_the_cost_that_matters(scenario):
    pytest.importorskip("SALib")
    result = run_sensitivity(scenario, SHADOW_VS_DIRECT, method="sobol", samples=16,
                             costs=[X, Y, "tlbwe"],
                             runner=toy_runner(linear_a, lambda c, p: 200))
    assert result["ranking"][0] == X and result["rank_by"] == "ST"
    assert entry(result, X)["indices"]["ST"] > 0.9
    assert abs(entry(result, "tlbwe")["indices"]["ST"]) < 1e-9
    assert result["sampled_vectors"] == 16 * (3 + 2)


def test_without_salib_the_global_methods_say_how_to_get_it(scenario, monkeypatch):
    monkeypatch.setitem(sys.modules, "SALib", None)
    monkeypatch.setitem(sys.modules, "SALib.sample", None)
    with pytest.raises(SensitivityError, match=r"^method morris needs SALib: pip install"):
        plan_sensitivity(scenario, SHADOW_VS_DIRECT, method="morris")


# --------------------------------------------------------------------------
# Break-even
# --------------------------------------------------------------------------

def paged_a(costs, pages):
    return 0.5 * pages + 0.001 * costs[X] + 9.4


def test_break_even_falls_where_the_hand_calculation_puts_it(scenario):
    """A toy: metric(A) = 0.5 p + 0.001 x + 9.4 along the pages p, metric(B) = 30.

    At the default x = 600, A's metric is 0.5 p + 10, equal to B's 30 at
    p = 40; below 40 A wins.  The ratio (0.5 p + 10) / 30 is linear in p, so
    interpolating between the values 25 and 55 that bracket it is exact.  The
    band is over the OAT ends of x and y (y moves nothing): x = 300 gives
    0.5 p + 9.7 = 30 at p = 40.6, x = 3000 gives 0.5 p + 12.4 = 30 at p = 35.2.
    """
    result = run_sensitivity(scenario, SHADOW_VS_DIRECT, costs=[X, Y],
                             break_even=f"{PAGES}=70,10,55,25",
                             runner=toy_runner(paged_a, lambda c, p: 30))
    be = result["break_even"]
    assert be["key"] == PAGES and be["values"] == [10, 25, 55, 70]
    d = be["default"]
    assert d["ratios"] == pytest.approx([15 / 30, 22.5 / 30, 37.5 / 30, 45 / 30])
    assert d["a_wins"] == [True, True, False, False]
    assert d["at"] == pytest.approx(40) and d["direction"] == "A stops winning"
    band = be["band"]
    assert band["low"] == pytest.approx(35.2) and band["high"] == pytest.approx(40.6)
    assert (band["vectors"], band["crossed"]) == (4, 4)
    assert band["a_wins_throughout"] == band["b_wins_throughout"] == 0
    # the ratio's range at each value: x = 300 lowest, x = 3000 highest
    assert band["ratios_min"] == pytest.approx([(0.5 * p + 9.7) / 30 for p in (10, 25, 55, 70)])
    assert band["ratios_max"] == pytest.approx([(0.5 * p + 12.4) / 30
                                                for p in (10, 25, 55, 70)])


def test_break_even_outside_the_values_is_counted_not_invented(scenario):
    result = run_sensitivity(scenario, SHADOW_VS_DIRECT, costs=[X],
                             break_even=f"{PAGES}=10,25",
                             runner=toy_runner(paged_a, lambda c, p: 30))
    d, band = result["break_even"]["default"], result["break_even"]["band"]
    assert d["at"] is None and d["direction"] == "A wins throughout"
    assert band["crossed"] == 0 and band["a_wins_throughout"] == 2


# --------------------------------------------------------------------------
# Determinism and output
# --------------------------------------------------------------------------

def _written(tmp_path, name, result):
    out = tmp_path / name
    write_sensitivity(out, result, plots=False)
    return (out / "sensitivity.json").read_bytes()


def test_one_seed_one_file_whatever_the_job_order(scenario, tmp_path):
    pytest.importorskip("SALib")
    options = dict(method="morris", samples=3, seed=7, break_even=f"{PAGES}=10,25,55,70")
    first = _written(tmp_path, "a", run_sensitivity(
        scenario, SHADOW_VS_DIRECT, runner=toy_runner(two_cost_a, lambda c, p: 200 + p),
        **options))
    again = _written(tmp_path, "b", run_sensitivity(
        scenario, SHADOW_VS_DIRECT, runner=toy_runner(two_cost_a, lambda c, p: 200 + p),
        **options))
    shuffled = _written(tmp_path, "c", run_sensitivity(
        scenario, SHADOW_VS_DIRECT,
        runner=toy_runner(two_cost_a, lambda c, p: 200 + p, order_seed=3), **options))
    assert first == again == shuffled
    other = _written(tmp_path, "d", run_sensitivity(
        scenario, SHADOW_VS_DIRECT, runner=toy_runner(two_cost_a, lambda c, p: 200 + p),
        **dict(options, seed=8)))
    assert other != first
    result = json.loads(first)
    for key in ("metric", "compare", "method", "costs", "win_share", "break_even"):
        assert key in result
    for c in result["costs"]:
        assert {"name", "default", "low", "high", "unit", "ratio_low", "ratio_high", "flips",
                "indices"} <= set(c)


def test_plan_then_analyse_is_what_run_does(scenario):
    plan = plan_sensitivity(scenario, SHADOW_VS_DIRECT, costs=[X, Y])
    runner = toy_runner(linear_a, lambda c, p: 200)
    summaries = dict(zip([j.label for j in plan.jobs], runner(plan.jobs)))
    assert analyse(plan, summaries) == run_sensitivity(
        scenario, SHADOW_VS_DIRECT, costs=[X, Y], runner=runner)


def test_a_nested_metric_and_a_higher_is_better_metric(scenario):
    result = run_sensitivity(scenario, SHADOW_VS_DIRECT, costs=[X], metric="tlb.guest.miss_rate",
                             better="higher", runner=toy_runner(linear_a, lambda c, p: 1))
    assert result["default"]["ratio"] == 1.0 and result["default"]["a_wins"] is False
    assert result["metric"] == "tlb.guest.miss_rate" and result["better"] == "higher"
    # a tie is no win: neither side is said to win
    assert "at the default costs: shadow 1, direct 1, ratio 1: a tie\n" in \
        format_sensitivity(result)


def test_the_tornado_is_drawn(scenario, tmp_path):
    result = run_sensitivity(scenario, SHADOW_VS_DIRECT, costs=[X, Y],
                             runner=toy_runner(two_cost_a, lambda c, p: 200))
    paths = write_sensitivity(tmp_path, result)
    assert [p.rsplit("/", 1)[-1] for p in paths] == ["sensitivity.json", "tornado.png",
                                                     "tornado.svg"]
    png = (tmp_path / "tornado.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 5000
    svg = (tmp_path / "tornado.svg").read_text()
    for text in ("kvm.strategy", "gfn_to_pfn", "default costs", "ratio, no unit", "cycles"):
        assert text in svg
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]   # no temp file left
    assert not (tmp_path / "break_even.png").exists()          # no break-even asked for


def test_the_tornado_is_a_plot_as_the_others_are(scenario, tmp_path):
    """tornado_plot took a folder and returned the paths it wrote there, where
    every other plot takes its data and ``out``, a path without extension,
    ``formats`` and ``dpi``, and returns the Figure (shown by a notebook)."""
    from emu.errors import ConfigError
    from emu.report import plots
    from emu.sensitivity import break_even_plot, tornado_plot
    result = run_sensitivity(scenario, SHADOW_VS_DIRECT, costs=[X, Y],
                             break_even=f"{PAGES}=10,25,55,70",
                             runner=toy_runner(paged_a, lambda c, p: 30))
    fig = tornado_plot(result)
    assert isinstance(fig, plots.ShownFigure) and fig._repr_png_().startswith(b"\x89PNG")
    assert list(tmp_path.iterdir()) == []                      # nothing written without out
    assert isinstance(tornado_plot(result, tmp_path / "t", formats="pdf", dpi=50),
                      plots.ShownFigure)
    assert (tmp_path / "t.pdf").read_bytes().startswith(b"%PDF")
    fig = break_even_plot(result, tmp_path / "b.png", formats=("png",))
    assert isinstance(fig, plots.ShownFigure) and (tmp_path / "b.png").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.png", "t.pdf"]
    with pytest.raises(ConfigError, match="formats: expected some of png, svg, pdf, got 'gif'"):
        tornado_plot(result, tmp_path / "t", formats="gif")
    # the call of before, into a folder, is refused rather than writing beside it
    with pytest.raises(ConfigError, match=r"is a folder; give the path of the file"):
        tornado_plot(result, tmp_path)
    assert not tmp_path.with_name(tmp_path.name + ".png").exists()


def test_emu_load_reads_a_sensitivity_folder(scenario, tmp_path):
    """It said the folder was "not an emu result folder"."""
    import emu
    result = run_sensitivity(scenario, SHADOW_VS_DIRECT, costs=[X],
                             runner=toy_runner(linear_a, lambda c, p: 200))
    write_sensitivity(tmp_path, result)
    assert emu.load(tmp_path) == json.loads(json.dumps(result))


def test_the_break_even_line_crosses_1_where_the_break_even_is_on_log_axes(scenario, tmp_path,
                                                                         monkeypatch):
    """Along values spanning more than 20 x the plot's x axis is logarithmic:
    a segment drawn between two values alone is then another curve than the
    linear interpolation the break-even is read from, and crossed 1 away from
    the red line (at 21.5 pages of 4..200 against the break-even's 40).  The
    line drawn crosses 1 where the break-even is."""
    import emu.sensitivity.report as report_module
    result = run_sensitivity(scenario, SHADOW_VS_DIRECT, costs=[X, Y],
                             break_even=f"{PAGES}=4,10,100,200",
                             runner=toy_runner(paged_a, lambda c, p: 30))
    at = result["break_even"]["default"]["at"]
    assert at == pytest.approx(40.0)                       # 0.5 p + 10 = 30 (x at 600)
    ax = report_module.break_even_plot(result).axes[0]
    assert ax.get_xscale() == "log"
    line = max(ax.get_lines(), key=lambda ln: len(ln.get_xdata()))
    xy = ax.transData.transform(list(zip(line.get_xdata(), line.get_ydata())))
    one = ax.transData.transform([(at, 1.0)])[0][1]        # y = 1 on the screen
    i = next(i for i in range(len(xy) - 1) if (xy[i][1] - one) * (xy[i + 1][1] - one) <= 0)
    (x0, y0), (x1, y1) = xy[i], xy[i + 1]
    crossed = ax.transData.inverted().transform([(x0 + (x1 - x0) * (one - y0) / (y1 - y0),
                                                  one)])[0][0]
    assert crossed == pytest.approx(at, rel=0.01)


def test_the_break_even_band_is_drawn(scenario, tmp_path):
    result = run_sensitivity(scenario, SHADOW_VS_DIRECT, costs=[X, Y],
                             break_even=f"{PAGES}=10,25,55,70",
                             runner=toy_runner(paged_a, lambda c, p: 30))
    paths = write_sensitivity(tmp_path, result)
    assert [p.rsplit("/", 1)[-1] for p in paths] == [
        "sensitivity.json", "tornado.png", "tornado.svg", "break_even.png", "break_even.svg"]
    assert (tmp_path / "break_even.png").read_bytes().startswith(b"\x89PNG")
    svg = (tmp_path / "break_even.svg").read_text()
    for text in (f"kvm.strategy = shadow vs direct along {PAGES}",      # the title
                 f"{PAGES}: data pages of the working set",              # x: the key, its unit
                 "cycles_per_guest_access:", "shadow / direct", "ratio, no unit",   # y
                 "ratio at the default costs", "break-even band: 35.2..40.6",    # the legend
                 "break-even at the default costs: 40"):
        assert text in svg, text
    again = tmp_path.parent / f"{tmp_path.name}-again"      # beside it: not inside a result
    write_sensitivity(again, result)
    assert (again / "break_even.png").read_bytes() == (tmp_path / "break_even.png").read_bytes()
    assert (again / "break_even.svg").read_bytes() == svg.encode()


# --------------------------------------------------------------------------
# Bad input: one line, exit status 2
# --------------------------------------------------------------------------

BASE = ["sensitivity", "--set", "duration_ms=1", "--costs", "shadow_restore_per_entry"]


@pytest.mark.parametrize("args,message", [
    (["--compare", "kvm.strategi=shadow,direct"], "unknown key 'kvm.strategi'"),
    (["--compare", "costs.exit_lite=100,200"],
     "--compare costs.exit_lite: not a cost or scenario key (unknown cost 'exit_lite'"),
    (["--compare", SHADOW_VS_DIRECT, "--break-even", "costs.exit_lite=1,2"],
     "--break-even costs.exit_lite: not a cost or scenario key"),
    (["--compare", "kvm.strategy=shadow"], "needs exactly two values"),
    (["--compare", "kvm.strategy=shadow,shadow"], "the two values are the same"),
    (["--compare", "host_task.0.sleep_us=800,8e2"], "'800' and '8e2' are the same value"),
    (["--compare", SHADOW_VS_DIRECT, "--break-even", f"{PAGES}=40"],
     "needs at least two values, got 1"),
    (["--compare", SHADOW_VS_DIRECT, "--break-even", f"{PAGES}=10,x"], "must be numbers"),
    (["--compare", SHADOW_VS_DIRECT, "--break-even", "vm.0.process.0.workload.pagez=1,2"],
     "unknown key"),
    # the cost table's words named no option
    (["--compare", SHADOW_VS_DIRECT, "--range", "shadow_restore_per_entry=40,20"],
     "emu: error: --range shadow_restore_per_entry=40,20: LOW must be below HIGH\n"),
    (["--compare", SHADOW_VS_DIRECT, "--samples", "0"],
     "--samples: expected a positive integer, got 0"),
    (["--compare", SHADOW_VS_DIRECT, "--metric", "cycles_per_guest_acess"],
     "--metric cycles_per_guest_acess: no 'cycles_per_guest_acess' in the summary"),
    (["--compare", SHADOW_VS_DIRECT, "--metric", "config"], "not a number"),
    (["--compare", SHADOW_VS_DIRECT, "--costs", "exit_lite"], "unknown cost 'exit_lite'"),
])
def test_bad_input_is_one_line_and_exit_2(args, message, capsys):
    base = BASE[:-2] if "--costs" in args else BASE      # --costs is given once
    assert main(base + args) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("emu: error: ")
    assert message in err


METRIC_IS = ("a metric is a numeric figure of a run's summary, dotted for nested ones "
             "(e.g. cycles_per_guest_access, tlb.guest.misses)")


@pytest.mark.parametrize("args,line", [
    # a range is used as given, or refused: never stretched to the default, never dropped
    (["--range", f"{Y}={Y_DEFAULT + 24},{Y_DEFAULT + 124}"],
     f"emu: error: --range {Y}={Y_DEFAULT + 24},{Y_DEFAULT + 124}: the range must contain "
     f"{Y_DEFAULT}, the value the runs use at their baseline"),
    (["--range", f"{Y}=10,10"],
     f"emu: error: --range {Y}=10,10: LOW must be below HIGH (one value varies nothing)"),
    (["--range", f"{Y}=10,{Y_DEFAULT}", "--costs", "tlbwe"],
     f"emu: error: --range {Y}=10,{Y_DEFAULT}: {Y} is not varied (--costs tlbwe)"),
    (["--range", f"{Y}=10,{Y_DEFAULT}", "--range", f"{Y}=20,{Y_DEFAULT + 1}"],
     f"emu: error: --range {Y}: given twice (10,{Y_DEFAULT} and 20,{Y_DEFAULT + 1}); "
     f"give each cost once"),
    (["--range", "clock_mhz=500,1000"],
     "emu: error: --range clock_mhz=500,1000: the clock is the scenario's machine.clock_mhz, "
     "not a cost to vary"),
    (["--samples", "5"],
     "emu: error: --samples 5: oat samples nothing (its runs are each cost at each end); "
     "--samples is for --method morris or sobol"),
    (["--seed", "5"],
     "emu: error: --seed 5: oat samples nothing (its runs are each cost at each end); "
     "--seed is for --method morris or sobol"),
    (["--costs", "tlbwe,tlbwe"], "emu: error: --costs: tlbwe is named twice"),
    # a stray comma was dropped without a word: a name left out, or a typo
    (["--costs", "tlbwe,,exit_light"],
     "emu: error: --costs: empty cost name in 'tlbwe,,exit_light' (expected A,B,...)"),
    (["--costs", ",tlbwe"], "emu: error: --costs: empty cost name in ',tlbwe' (expected A,B,...)"),
    (["--break-even", f"{PAGES}=10,,20"],
     f"emu: error: --break-even {PAGES}: empty value in '10,,20' (expected KEY=V1,V2,...)"),
    (["--range", f"{Y}=10,{Y_DEFAULT},"],
     f"emu: error: --range {Y}: empty value in '10,{Y_DEFAULT},' (expected NAME=LOW,HIGH)"),
    (["--break-even", f"{PAGES}=10,20", "--break-even", "duration_ms=1,2"],
     f"emu sensitivity: argument --break-even: given twice ({PAGES}=10,20 and "
     f"duration_ms=1,2); it takes one"),
    (["--metric", "tlb"],
     "emu: error: --metric tlb: a table of 4 keys (guest, host, isolation_violations, "
     f"misses_by_cause), not a number; {METRIC_IS}"),
    (["--metric", "config.kvm.strategy"],
     f"emu: error: --metric config.kvm.strategy: str 'shadow', not a number; {METRIC_IS}"),
])
def test_an_option_the_study_would_not_apply_as_given_is_refused(args, line, capsys):
    assert main(["sensitivity", "--compare", SHADOW_VS_DIRECT, "--set", "duration_ms=1"]
                + args) == 2
    assert capsys.readouterr() == ("", line + "\n")


@pytest.mark.parametrize("compare", ["kvm.strategy=shadow,,direct", "kvm.strategy=shadow,direct,"])
def test_a_compare_with_a_stray_comma_is_refused(compare, capsys):
    """The empty value was dropped: the study ran as if the comma were not there."""
    assert main(["sensitivity", "--compare", compare, "--set", "duration_ms=1"]) == 2
    rest = compare.partition("=")[2]
    assert capsys.readouterr() == ("", f"emu: error: --compare kvm.strategy: empty value in "
                                       f"{rest!r} (expected KEY=A,B)\n")


def test_a_range_of_the_compared_cost_is_refused(capsys):
    assert main(["sensitivity", "--compare", f"costs.{Y}=100,200",
                 "--range", f"{Y}=50,300"]) == 2
    assert capsys.readouterr().err == (f"emu: error: --range {Y}=50,300: the study sets it "
                                       f"through costs.{Y}, it cannot vary it too\n")


def test_a_metric_that_is_no_number_is_refused_before_anything_runs():
    """The plan runs nothing: the metric is checked against the summary's shape."""
    with pytest.raises(SensitivityError, match=r"^metric tlb\.guest: a table of \d+ keys"):
        plan_sensitivity(default_scenario(), SHADOW_VS_DIRECT, metric="tlb.guest")
    # a figure that is None before a run (no access yet) is a number after it
    plan_sensitivity(default_scenario(), SHADOW_VS_DIRECT, metric="cycles_per_guest_access")
    # and inside a table that is None before a run: the second half of the window
    # (it was refused as "no 'cycles_per_guest_access' in halves (keys: none)")
    plan_sensitivity(default_scenario(), SHADOW_VS_DIRECT,
                     metric="halves.cycles_per_guest_access.1")


def test_a_metric_index_in_other_than_ascii_digits_is_refused():
    """int() reads '１' as 1: the metric took the second half's figure."""
    from emu.sensitivity.spec import metric_value
    summary = {"halves": {"cycles_per_guest_access": [900.0, 1.0]}}
    assert metric_value(summary, "halves.cycles_per_guest_access.1", "run a") == 1.0
    with pytest.raises(SensitivityError, match="no '１' in halves.cycles_per_guest_access"):
        metric_value(summary, "halves.cycles_per_guest_access.１", "run a")


def test_a_run_without_a_value_of_the_metric_says_so(scenario):
    """A run too short to make a guest access has cycles_per_guest_access None:
    it was said to be "not a number ... a metric is a numeric figure of a run's
    summary", as if the metric were the wrong one."""
    with pytest.raises(SensitivityError, match=r"^metric cycles_per_guest_access: run \w+ "
                                               r"\(kvm\.strategy=shadow\) has no value of it "
                                               r"\(None: .*\); lengthen duration_ms$"):
        run_sensitivity(scenario, SHADOW_VS_DIRECT, costs=[X],
                        runner=toy_runner(lambda c, p: None, lambda c, p: 1))


def test_a_scenario_file_carries_cost_ranges(tmp_path):
    path = tmp_path / "ranges.toml"
    path.write_text(f"[costs]\n{X} = {{value = {X_DEFAULT}, low = 500, high = 900}}\n"
                    f"{Y} = {{value = 400, low = 100, high = 2000}}\n", encoding="utf-8")
    plan = plan_sensitivity(str(path), SHADOW_VS_DIRECT, costs=[X, Y])
    assert plan.space.ranges[X] == (500, 900) and plan.space.baseline[X] == X_DEFAULT
    assert plan.space.ranges[Y] == (100, 2000) and plan.space.baseline[Y] == 400
    assert plan.space.overridden == {X, Y}
    # a range alone keeps the table's value, and stretches to reach it
    path.write_text(f"[costs]\n{X} = {{low = 500, high = 900}}\n", encoding="utf-8")
    plan = plan_sensitivity(str(path), SHADOW_VS_DIRECT, costs=[X])
    assert plan.space.baseline[X] == COSTS_BY_NAME[X].default
    assert plan.space.ranges[X] == (500, max(900, COSTS_BY_NAME[X].default))
    path.write_text(f"[costs]\n{X} = {{value = {X_DEFAULT}, low = 500, high = 900}}\n"
                    f"{Y} = {{value = 400, low = 100, high = 2000}}\n", encoding="utf-8")
    # a --range given on the command line replaces the file's
    plan = plan_sensitivity(str(path), SHADOW_VS_DIRECT, costs=[X], ranges=[f"{X}=550,700"])
    assert plan.space.ranges[X] == (550, 700)
    result = run_sensitivity(str(path), SHADOW_VS_DIRECT, costs=[X, Y],
                             runner=toy_runner(linear_a, lambda c, p: 200))
    assert (entry(result, X)["low"], entry(result, X)["high"]) == (500, 900)
    assert entry(result, X)["ratio_high"] == pytest.approx(190 / 200)


def test_a_range_given_with_set_keeps_its_ends_in_every_run(scenario):
    """--set costs.NAME.low/high, then the study's costs.NAME=VALUE: 'set as a
    whole after costs.NAME.low', refused at the first run.  The runs set the
    value inside the table, and resolve to the range given."""
    from emu.run import resolve
    sets = [f"costs.{Y}.low=100", f"costs.{Y}.high=2000"]
    plan = plan_sensitivity(scenario, SHADOW_VS_DIRECT, overrides=sets, costs=[Y])
    assert plan.space.ranges[Y] == (100, 2000) and plan.space.tables == {Y}
    values = set()
    for job in plan.jobs:
        costs = resolve(job.scenario, job.overrides).costs[Y]
        assert (costs["low"], costs["high"]) == (100, 2000)
        values.add(costs.get("value", Y_DEFAULT))
    assert values == {100, Y_DEFAULT, 2000}
    # a cost whose range the --set leaves alone is still set as a whole
    plan = plan_sensitivity(scenario, SHADOW_VS_DIRECT, overrides=sets, costs=[X])
    assert plan.space.tables == frozenset()
    assert any(o == f"costs.{X}={X_LOW}" for job in plan.jobs for o in job.overrides)


def test_a_value_outside_the_range_given_with_it_is_refused(tmp_path, capsys):
    """{value = 3, low = 5, high = 9}: the range was stretched to 3..9, the
    low end given dropped without a word."""
    path = tmp_path / "bad.toml"
    path.write_text(f"[costs]\n{Y} = {{value = 3, low = 5, high = 9}}\n", encoding="utf-8")
    assert main(["sensitivity", str(path), "--compare", SHADOW_VS_DIRECT]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err == (f"emu: error: cost '{Y}': value 3 lies outside the range 5..9 "
                                 f"given with it; give a range that holds it\n")


def test_a_scenario_range_with_low_above_high_is_one_line_and_exit_2(tmp_path, capsys):
    path = tmp_path / "bad.toml"
    path.write_text(f"[costs]\n{X} = {{value = 600, low = 900, high = 100}}\n",
                    encoding="utf-8")
    assert main(["sensitivity", str(path), "--compare", SHADOW_VS_DIRECT]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == f"emu: error: costs.{X}: range low 900 > high 100\n"
    assert main(["run", str(path)]) == 2
    assert f"costs.{X}: range low 900 > high 100" in capsys.readouterr().err


def test_a_bad_range_in_the_api_is_refused():
    with pytest.raises(SensitivityError, match=r"range low 900 > high 100"):
        plan_sensitivity(default_scenario(), SHADOW_VS_DIRECT, ranges={Y: (900, 100)})


# --------------------------------------------------------------------------
# emu costs
# --------------------------------------------------------------------------

def test_emu_costs_lists_every_cost_with_its_range(capsys):
    assert main(["costs", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["costs"]
    assert [r["name"] for r in rows] == [c.name for c in COSTS]
    row = rows[[r["name"] for r in rows].index(X)]
    # the cost table's own figures: gfn_to_pfn is fitted (docs/calibration.md)
    assert {"name": X, "default": 2400, "low": 600, "high": 2400, "unit": "cycles"}.items() \
        <= row.items()
    assert main(["costs"]) == 0
    text = capsys.readouterr().out
    assert "gfn_to_pfn" in text and "600..2,400" in text and "fitted" in text
    assert main(["costs", "--long"]) == 0
    assert COSTS_BY_NAME[X].spread.why[:40] in " ".join(capsys.readouterr().out.split())


def _widest(text: str) -> int:
    return max(columns(line) for line in text.splitlines())


def test_emu_costs_fits_the_terminal_and_wide_prints_a_line_per_cost(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    for long in ([], ["--long"]):
        assert main(["costs", *long]) == 0
        fitted = capsys.readouterr().out
        assert main(["costs", *long, "--wide"]) == 0
        wide = capsys.readouterr().out
        assert _widest(fitted) <= 80 < _widest(wide)
        words = " ".join(fitted.split())
        for c in COSTS:                                   # its numbers, then its source
            line = next(ln for ln in wide.splitlines() if ln.startswith(c.name + " "))
            *numbers, source = re.split(r"  +", line, maxsplit=5)
            assert " ".join(numbers) in words, c.name
            assert fitted.count(f"\n{c.name} ") == 2                # in both blocks
            assert " ".join(source.split()) in words, c.name
            assert (c.source if long else c.source.split(":")[0]) in source


def test_the_sensitivity_table_fits_the_terminal_and_wide_prints_it_whole(scenario, capsys,
                                                                           monkeypatch):
    result = run_sensitivity(scenario, SHADOW_VS_DIRECT,
                             runner=toy_runner(linear_a, lambda c, p: 200))
    wide, fitted = format_sensitivity(result), format_sensitivity(result, width=80)
    assert _widest(fitted) <= 80 < _widest(wide)
    assert re.search(rf"\n{X} \(range and value given\) +[0-9. ]+ +1,000\n", fitted), \
        fitted                                                          # where X flips
    header = next(ln for ln in wide.splitlines() if ln.startswith("cost "))
    assert all(name in fitted for name in re.split(r"  +", header))
    for c in result["ranking"][:TOP]:
        assert fitted.count(f"\n{c} ") == fitted.count("\ncost ") == 2, c
    monkeypatch.setenv("COLUMNS", "80")
    argv = ["sensitivity", "--compare", SHADOW_VS_DIRECT]
    printed = []
    for extra in ([], ["--wide"]):
        args = build_parser("sensitivity").parse_args(argv + extra)
        assert main_sensitivity(args, toy_runner(linear_a, lambda c, p: 200)) == 0
        printed.append(capsys.readouterr().out)
    assert _widest(printed[0]) <= 80 < _widest(printed[1])
    assert re.search(r"\ncost  .*  flips at \(interpolated\)\n", printed[1])   # one block


# --------------------------------------------------------------------------
# The real model (a few 1 ms runs)
# --------------------------------------------------------------------------

def test_a_cost_only_shadow_pays_moves_only_the_comparison_with_shadow():
    scenario = default_scenario()                  # the real model: the table's defaults
    costs = ["shadow_restore_per_entry", "c_full_exit"]
    shadow = run_sensitivity(scenario, SHADOW_VS_DIRECT, overrides=["duration_ms=5"],
                             costs=costs)
    restore = entry(shadow, "shadow_restore_per_entry")
    assert restore["ratio_low"] < shadow["default"]["ratio"] < restore["ratio_high"]
    handlers = run_sensitivity(scenario, "kvm.handler=c,asm", overrides=["duration_ms=5"],
                               costs=costs)
    restore = entry(handlers, "shadow_restore_per_entry")
    r0 = handlers["default"]["ratio"]
    assert restore["ratio_low"] == restore["ratio_high"] == r0 and not restore["flips"]
    full_exit = entry(handlers, "c_full_exit")        # the control: only C pays it
    # its fitted range ends at the default, the fit at the plausibility band's edge
    # (docs/calibration.md): only the cheap end moves
    assert COSTS_BY_NAME["c_full_exit"].high == COSTS_BY_NAME["c_full_exit"].default
    assert full_exit["ratio_low"] < r0 == full_exit["ratio_high"]
    assert handlers["ranking"][0] == "c_full_exit"


#: The axis: the cost per index of shadow-modified's scan of its modified flags
#: at every guest entry (2.6.28); direct has no such loop.
SCAN = "shadow_mod_scan_per_entry"
#: The cost the band varies: direct pays it on every refill after a host switch
#: (the C handler's walk of the guest TLB), shadow-modified only on its rarer misses.
WALK = "c_walk_per_entry"
SHADOW_VS_DIRECT_2628 = "kvm.strategy=shadow-modified,direct"


def test_the_real_model_breaks_even_where_the_cycle_accounting_puts_it():
    """shadow-modified against direct along the cost c of one index of the
    entry loop's scan.

    Every CPU cycle of a run is charged to one component, and a guest access
    costs ``access`` = 1 cycle.  A run lasts T cycles on one CPU whatever the
    design.  Past the cold start (10 ms of the default scenario), shadow-modified
    scans the same N indices at its guest entries whatever c is (the guest's
    traps and the host's switches fix them), so its scans take N c cycles and
    the guest gets exactly those cycles fewer for its accesses: A_shadow(c) =
    A_shadow(0) - N c.  direct scans nothing: A_direct.  Comparing the accesses
    done (higher is better), shadow-modified wins while A_shadow(c) > A_direct,
    that is below

        c* = (A_shadow(0) - A_direct) / N

    and the ratio A_shadow(c) / A_direct is linear in c, so the study's
    interpolation between the values that bracket c* is exact.  The same holds
    for each cost vector of the band (c_walk_per_entry at each end of its
    range), so the band is the interval of their c*.
    """
    seen = {}

    def runner(jobs):
        summaries = local_runner(jobs)
        seen.update((j.overrides, s) for j, s in zip(jobs, summaries))
        return summaries

    base = ("duration_ms=10",)
    result = run_sensitivity(default_scenario(), SHADOW_VS_DIRECT_2628, overrides=list(base),
                             metric="guest_accesses", better="higher", costs=[WALK],
                             break_even=f"costs.{SCAN}=0,1,2", runner=runner)

    def c_star(vector: tuple) -> float:
        def run_of(strategy, c):
            return seen[base + (f"kvm.strategy={strategy}", f"costs.{SCAN}={c}") + vector]
        fixed = run_of("shadow-modified", 0)["cycles"]["save_restore"]
        n = run_of("shadow-modified", 1)["cycles"]["save_restore"] - fixed   # N x 1 cycle
        for c in (0, 1, 2):                        # the premises: N fixed, A linear in c
            assert run_of("shadow-modified", c)["cycles"]["save_restore"] == fixed + n * c
            assert run_of("shadow-modified", c)["guest_accesses"] == \
                run_of("shadow-modified", 0)["guest_accesses"] - n * c
        assert n > 0 and all(run_of("direct", c)[k] == run_of("direct", 0)[k]
                             for c in (1, 2) for k in ("guest_accesses", "cycles"))
        return (run_of("shadow-modified", 0)["guest_accesses"]
                - run_of("direct", 0)["guest_accesses"]) / n

    be = result["break_even"]
    expected = c_star(())
    assert 0 < expected < 2
    assert be["default"]["at"] == pytest.approx(expected, abs=1e-6)
    assert be["default"]["direction"] == "A stops winning"
    ends = [c_star((f"costs.{WALK}={v}",))
            for v in (COSTS_BY_NAME[WALK].low, COSTS_BY_NAME[WALK].high)]
    assert (be["band"]["crossed"], be["band"]["vectors"]) == (2, 2)
    assert be["band"]["low"] == pytest.approx(min(ends), abs=1e-6)
    assert be["band"]["high"] == pytest.approx(max(ends), abs=1e-6)
    assert min(ends) < max(ends)                   # the walk moves the break-even


def test_module_doctests_run():
    result = doctest.testmod(spec_module)
    assert result.attempted >= 3 and result.failed == 0


def test_write_sensitivity_writes_no_study_over_another_result(scenario, tmp_path):
    """It wrote into any folder: beside the user's own files, into a run's
    folder (which a run then refused to replace), and wrote a dict that is
    no study's before failing on it.  Now each is refused in one line and
    nothing is written; over a study of its own kind it writes."""
    import emu
    from emu.errors import ConfigError
    from emu.run import run
    result = run_sensitivity(scenario, SHADOW_VS_DIRECT, costs=[X],
                             runner=toy_runner(linear_a, lambda c, p: 200))
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    ran = tmp_path / "ran"
    run(scenario, ["duration_ms=0.2"]).write(ran)
    before = sorted(p.name for p in ran.iterdir())
    for folder, says in ((mine, "'notes.txt', which emu did not write"),
                         (ran, "holds a run")):
        with pytest.raises(ConfigError, match=says):
            write_sensitivity(folder, result, plots=False)
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]
    assert sorted(p.name for p in ran.iterdir()) == before
    with pytest.raises(ConfigError, match="not a sensitivity study's .it has no 'compare'"):
        write_sensitivity(tmp_path / "new", {"x": 1})
    assert not (tmp_path / "new").exists()
    study = tmp_path / "study"
    write_sensitivity(study, result, plots=False)
    write_sensitivity(study, result, plots=False)          # over its own kind: replaced
    assert emu.load(study) == json.loads(json.dumps(result))


def test_write_sensitivity_offers_no_force_it_does_not_take(scenario, tmp_path):
    """write_sensitivity takes no force: its refusal of a folder holding
    another result said 'pass force=True to replace it', which it refused
    as an unexpected keyword; it says to choose another folder."""
    from emu.errors import ConfigError
    from emu.run import run
    result = run_sensitivity(scenario, SHADOW_VS_DIRECT, costs=[X],
                             runner=toy_runner(linear_a, lambda c, p: 200))
    ran = tmp_path / "ran"
    run(scenario, ["duration_ms=0.2"]).write(ran)
    with pytest.raises(ConfigError) as refused:
        write_sensitivity(ran, result, plots=False)
    assert str(refused.value).endswith("not a sensitivity study: choose another folder")
    assert "force" not in str(refused.value)

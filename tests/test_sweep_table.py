"""The sweep's results table carries a run's headline figures, and ``emu sweep``
ends with the grid's table: mean and 95 % t-interval over the seeds."""

from __future__ import annotations

import re

import pytest

from emu.cli import main as emu_main
from emu.codes import CYCLE_CATEGORIES, EXIT_CATEGORIES, MISS_CAUSES
from emu.params import default_scenario
from emu.report.columns import columns
from emu.run import METRICS, read_table, run
from emu.run.table import PRINTED, format_grid, grid_points
from emu.stats import figures
from emu.stats.interval import mean_interval, t_quantile


@pytest.fixture(scope="module")
def summary():
    return run(default_scenario(), ["duration_ms=2", "kvm.strategy=shadow"]).summary


def row_of(s) -> dict:
    return {name: fn(s) for name, _, fn in METRICS}


def test_the_table_has_a_column_for_every_headline_figure():
    names = [name for name, _, _ in METRICS]
    assert len(names) == len(set(names))
    expected = ({f"{c}_share" for c in CYCLE_CATEGORIES}
                | {"exits_" + c.lower() for c in EXIT_CATEGORIES if c != "TIMEINGUEST"}
                | {"misses_" + c.replace("-", "_") for c in MISS_CAUSES}
                | {"cycles_per_guest_access", "guest_misses", "misses_per_resume", "resumes",
                   "exits", "fastpath_share", "save_restore_share", "miss_path_cycles_per_miss",
                   "memory_bytes_total", "memory_bytes_kvm", "memory_bytes_pinned"})
    assert expected <= set(names)
    assert {p[0] for p in PRINTED} <= set(names)


def test_the_figures_of_a_row_are_those_of_the_summary(summary):
    row = row_of(summary)
    assert sum(row[f"{c}_share"] for c in CYCLE_CATEGORIES) == pytest.approx(1.0)
    for c in CYCLE_CATEGORIES:
        assert row[f"{c}_share"] == figures.share(summary, c)
    assert row["save_restore_share"] > 0                      # shadow restores at each entry
    counts = figures.exit_counts(summary)
    assert sum(row["exits_" + c.lower()] for c in counts) == row["exits"] == figures.exits(summary)
    assert row["exits_dtlbvirt"] == summary["exits"]["DTLBVIRT"]["count"]
    assert row["memory_bytes_kvm"] + row["memory_bytes_pinned"] == row["memory_bytes_total"]
    assert row["resumes"] == summary["repopulation"]["resumes"]
    assert row["miss_path_cycles_per_miss"] == figures.miss_path_cycles_per_miss(summary)


def rows(values_by_point: dict, column="cycles_per_guest_access") -> list:
    out = []
    for point, values in values_by_point.items():
        for v in values:
            r = {c: 1.0 for c, _, _, _ in PRINTED}
            out.append(dict(r, **{"kvm.strategy": point, column: v}))
    return out


def test_grid_points_take_the_mean_and_t_interval_over_seeds():
    pts = grid_points(rows({"shadow": [1.0, 2.0, 3.0], "direct": [4.0, 4.0, 4.0]}),
                      ["kvm.strategy"], ["cycles_per_guest_access"])
    assert [p["kvm.strategy"] for p in pts] == ["shadow", "direct"]
    mean, half = pts[0]["cycles_per_guest_access"]
    assert mean == 2.0 and half == pytest.approx(t_quantile(0.975, 2) / 3 ** 0.5)
    assert half == pytest.approx(2.4841377, rel=1e-6)
    assert pts[1]["cycles_per_guest_access"] == (4.0, 0.0)
    assert grid_points(rows({"x": [5.0]}), ["kvm.strategy"],
                       ["cycles_per_guest_access"])[0]["cycles_per_guest_access"] == (5.0, None)


def test_a_figure_some_runs_lack_says_over_how_many_runs_it_is():
    """Misses per resume of runs with no resume is None: the table said
    "mean ± 95 % t-interval over 4 seeds", n 4, of a figure over 2 runs (or
    over 1, with no interval).  Each such figure now says its own n; so does
    points()."""
    rs = rows({"direct": [1.0, 2.0, 3.0, 4.0]})
    for r, v in zip(rs, (6.0, None, 11.0, None)):
        r["misses_per_resume"] = v
    p = grid_points(rs, ["kvm.strategy"], ["misses_per_resume", "cycles_per_guest_access"])[0]
    assert p["n"] == 4 and p["counts"] == {"misses_per_resume": 2, "cycles_per_guest_access": 4}
    text = format_grid(rs, ["kvm.strategy"], width=None)
    half = t_quantile(0.975, 1) * (12.5 ** 0.5) / 2 ** 0.5          # sd of 6, 11: 3.5355
    assert f"8.5 ± {half:.1f} (n=2)" in text
    assert "2.500 ± " in text and "2.500 ± 2.054 (n=" not in text     # every run has it
    assert "(n=K after a figure: only K of the point's runs have it" in text
    rs[2]["misses_per_resume"] = None                             # one run left: no interval
    assert "6.0 (n=1)" in format_grid(rs, ["kvm.strategy"], width=None)


def test_t_quantiles_are_the_known_ones():
    known = {1: 12.7062, 2: 4.3027, 3: 3.1824, 4: 2.7764, 9: 2.2622, 29: 2.0452, 120: 1.9799}
    for df, t in known.items():
        assert t_quantile(0.975, df) == pytest.approx(t, abs=1e-4)
    assert mean_interval([None, float("nan"), 2.0]) == (1, 2.0, None)


def test_the_printed_table_shows_mean_and_interval():
    text = format_grid(rows({"shadow": [1.0, 2.0, 3.0], "direct": [4.0, 4.0, 4.0]}),
                       ["kvm.strategy"])
    lines = text.splitlines()
    assert lines[0] == "grid points: mean ± 95 % t-interval over 3 seeds"
    assert lines[1].split()[:3] == ["kvm.strategy", "n", "cycles/access"]
    assert re.match(r"shadow\s+3\s+2\.000 ± 2\.484\s", lines[3])
    assert re.match(r"direct\s+3\s+4\.000 ± 0\.000\s", lines[4])
    one = format_grid(rows({"shadow": [1.5]}), ["kvm.strategy"])
    assert "n=1" in one.splitlines()[0] and "±" not in one
    assert re.search(r"shadow\s+1\s+1\.500\s", one)


def test_the_printed_table_marks_the_points_no_kernel_shipped():
    """A point whose runs ran a machine no kernel shipped is marked in its row;
    when every point is, the title says so once."""
    grid = rows({"direct": [1.0, 2.0], "direct-noflush": [1.0, 2.0]})
    for r in grid:
        r["hypothetical"] = r["kvm.strategy"] == "direct-noflush"
    lines = format_grid(grid, ["kvm.strategy"], 200).splitlines()
    assert lines[0] == "grid points: mean ± 95 % t-interval over 2 seeds"
    assert re.match(r"direct\s+2\s", lines[3])
    assert re.match(r"direct-noflush \(hypothetical\)\s+2\s", lines[4])
    for r in grid:
        r["hypothetical"] = "true"                    # as the CSV table holds it
    lines = format_grid(grid, ["kvm.strategy"], 200).splitlines()
    assert lines[0] == ("grid points: mean ± 95 % t-interval over 2 seeds; every point a "
                        "hypothetical machine, which no kernel shipped")
    assert "(hypothetical)" not in "\n".join(lines[1:])
    # with another grid key after it, the mark is on the design's cell, not
    # on the last key's ("direct-noflush  20 (hypothetical)")
    for r in grid:
        r["hypothetical"] = r["kvm.strategy"] == "direct-noflush"
        r["vm.0.process.0.workload.pages"] = 20
    lines = format_grid(grid, ["kvm.strategy", "vm.0.process.0.workload.pages"],
                        200).splitlines()
    assert re.match(r"direct-noflush \(hypothetical\)\s+20\s+2\s", lines[4]), lines[4]


def test_the_printed_table_marks_the_points_of_the_proposal():
    """The proposal, which no kernel shipped either, was marked only in the
    report, never in the table emu sweep prints."""
    grid = rows({"c": [1.0, 2.0], "asm": [1.0, 2.0]})
    for r in grid:
        r["hypothetical"] = r["kvm.strategy"] == "c"
        r["design"] = ("hypothetical: 7924bd41 (tid01, C) + pfn-cache" if r["hypothetical"]
                       else "proposal: direct + asm + pfn-cache")
    lines = format_grid(grid, ["kvm.strategy"], 200).splitlines()
    assert re.match(r"c \(hypothetical\)\s+2\s", lines[3])
    assert re.match(r"asm \(proposal\)\s+2\s", lines[4])
    only = [r for r in grid if r["kvm.strategy"] == "asm"]
    lines = format_grid(only, ["kvm.strategy"], 200).splitlines()
    assert lines[0] == ("grid points: mean ± 95 % t-interval over 2 seeds; every point the "
                        "proposal (direct + asm + pfn-cache), which no kernel shipped")
    assert "(proposal)" not in "\n".join(lines[1:])


def test_the_printed_table_fits_the_width_each_block_repeating_the_grid_values():
    grid = [dict(r, **{"kvm.handler": "c"}) for r in
            rows({"影子 shadow": [1.0, 2.0, 3.0], "direct": [4.0, 4.0, 4.0]})]
    keys = ["kvm.strategy", "kvm.handler"]
    wide = format_grid(grid, keys)
    assert max(map(columns, wide.splitlines())) > 80
    fitted = format_grid(grid, keys, 80)
    lines = fitted.splitlines()
    assert lines[0] == wide.splitlines()[0] and max(map(columns, lines)) <= 80
    blocks = fitted.split("\n\n")
    assert len(blocks) > 1
    cells = []
    for block in blocks:
        table = block.splitlines()[-4:]
        assert table[0].split()[:2] == keys and len({columns(line) for line in table}) == 1
        assert [line.split()[:2] for line in table[2:]] == [["影子", "shadow"], ["direct", "c"]]
        cells += [c for c in re.split(r"  +", table[0])[2:]]
    assert cells == re.split(r"  +", wide.splitlines()[1])[2:]     # every column, in order


def test_grid_keys_too_wide_together_are_shortened_to_fit_the_width():
    """Three long grid keys (the dotted paths of workload keys) made every line
    of the table 100 columns wide or more on an 80-column terminal: only the
    first key column was shortened, and only when it alone was too wide."""
    keys = ["vm.0.process.0.workload.pages", "host_task.0.workload.pages",
            "vm.0.process.0.workload.write_fraction"]
    grid = [dict(r, **{k: v for k in keys}) for v in (10, 20)
            for r in rows({"direct": [1.0, 2.0]})]
    for width in (60, 80, 100):
        lines = format_grid(grid, keys, width).splitlines()
        assert max(map(columns, lines)) <= width, width
        header = lines[1]
        assert header.count("...") == 3 and header.split()[3:5] == ["n", "cycles/access"]
    assert keys == format_grid(grid, keys).splitlines()[1].split()[:3]   # --wide: whole


def test_emu_sweep_ends_with_the_grid_table(tmp_path, capsys):
    scenario = tmp_path / "s.toml"
    # 1 ms: in 0.5 ms one seed of shadow makes no guest access at all (a start-up),
    # and its cycles per access has no interval
    scenario.write_text("duration_ms = 1\n")
    argv = ["sweep", str(scenario), "--grid", "kvm.strategy=shadow,direct", "--workers", "1",
            "--progress", "none", "--wide", "--set", "kvm.pfn_source=gup"]   # as they shipped
    assert emu_main(argv + ["--seeds", "2", "--out", str(tmp_path / "a")]) == 0
    out = capsys.readouterr().out.splitlines()
    at = out.index("grid points: mean ± 95 % t-interval over 2 seeds")
    assert out[at + 1].split()[:2] == ["kvm.strategy", "n"]
    assert [ln.split()[:2] for ln in out[at + 3:]] == [["shadow", "2"], ["direct", "2"]]
    assert all(ln.count("±") == len(PRINTED) for ln in out[at + 3:])
    assert out[0].startswith("emu sweep: 4 runs in ")
    # one seed: the values alone, and n=1 said
    assert emu_main(argv + ["--out", str(tmp_path / "b")]) == 0
    out = capsys.readouterr().out
    assert "grid points (n=1: one run per point, no interval)" in out and "±" not in out
    # one run: "1 run", where it said "1 runs"
    argv[argv.index("kvm.strategy=shadow,direct")] = "kvm.strategy=shadow"
    argv[argv.index("none")] = "lines"
    assert emu_main(argv + ["--out", str(tmp_path / "c")]) == 0
    cap = capsys.readouterr()
    assert cap.out.startswith("emu sweep: 1 run in ")
    assert cap.err.startswith("emu: sweep: 1 run, 0 already done; ")


def test_a_sweep_names_the_points_that_had_not_settled(tmp_path, capsys):
    """A sweep said nothing of runs whose figures were mostly a start-up, where
    emu run and emu compare note them."""
    from emu.report.reading import unsettled_note
    rows = [{"kvm.strategy": "shadow", "settled": False}, {"kvm.strategy": "shadow",
                                                          "settled": "false"},
            {"kvm.strategy": "direct", "settled": True}, {"kvm.strategy": "x", "settled": None}]
    assert unsettled_note(rows, ["kvm.strategy"]).startswith(
        "Not settled: 2 of 4 runs (the two halves of their counted window cost more than 10% "
        "apart per guest access), at kvm.strategy=shadow. A start-up")
    assert unsettled_note(rows[2:], ["kvm.strategy"]) == ""
    scenario = tmp_path / "s.toml"
    scenario.write_text('duration_ms = 4\n[kvm]\npfn_source = "gup"\n')   # mostly start-up
    argv = ["sweep", str(scenario), "--grid", "kvm.strategy=shadow", "--workers", "1",
            "--progress", "none", "--wide", "--out", str(tmp_path / "a")]
    assert emu_main(argv) == 0
    err = capsys.readouterr().err
    assert err.startswith("emu: note: Not settled: 1 of 1 runs") and "kvm.strategy=shadow" in err
    assert read_table(str(tmp_path / "a"))[0]["settled"] is False


def test_a_bool_grid_value_prints_as_grid_and_toml_write_it():
    table = [dict(r, **{"kvm.batch_tlbwe": r["kvm.strategy"] == "on"})
             for r in rows({"off": [1.0], "on": [2.0]})]
    lines = format_grid(table, ["kvm.batch_tlbwe"]).splitlines()
    assert [line.split()[0] for line in lines[3:5]] == ["false", "true"]
    # the report's table of grid points writes them so too
    from emu.run.table import grid_text
    assert [grid_text(v) for v in (False, True, 3, "shadow")] == ["false", "true", "3", "shadow"]

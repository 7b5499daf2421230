"""Plots, the generated reading and the HTML report (emu.report).

The plots and the report are made from real short runs of the default
scenario (2 ms under shadow and direct, with the TLB occupancy timeline
recorded, and a small sweep); the reading has known-answer cases on
hand-made summaries; the reports of a comparison and of a sweep are opened
in headless Chromium when one is installed.  Damaged input is fuzzed in
``test_report_fuzz.py``; a study's folder is reported in ``test_study.py``.
"""

from __future__ import annotations

import argparse
import base64
import csv
import html
import io
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from matplotlib.figure import Figure

from clirun import assert_usage_error, cli_env, run_cli
from emu.cli.report import add_report_parser, cmd_report
from emu.params import default_scenario
from emu.report.schema import LABEL_MAX
from emu.costs import COSTS_BY_NAME
from emu.errors import EmuError
from emu.report import plots
from emu.report.html import load_results, write_report
from emu.report.reading import generate_reading
from emu.report.sweep import HEADLINE, grid_points, interval, numeric_keys
from emu.run import compare, run_sweep, write_comparison
from emu.run.table import format_grid, read_table
from emu.teach.glossary import link_terms
from emu.stats import figures

DESIGNS = ["shadow", "direct"]


# -- fixtures: real runs ----------------------------------------------------------------

@pytest.fixture(scope="module")
def results():
    """[(label, Result)] of 2 ms of the default scenario under shadow and direct,
    as they shipped (get_user_pages)."""
    return compare(default_scenario(), "kvm.strategy", DESIGNS,
                   ["duration_ms=2", "sim.timeline=true", "kvm.pfn_source=gup"])


@pytest.fixture(scope="module")
def runs(results):
    return [(label, r.summary) for label, r in results]


@pytest.fixture(scope="module")
def comparison_dir(results, tmp_path_factory):
    d = tmp_path_factory.mktemp("cmp")
    write_comparison(str(d), "kvm.strategy", results)
    return d


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory):
    """A sweep of 1 ms runs: 2 strategies x 2 working sets x 2 seeds."""
    d = tmp_path_factory.mktemp("sweep")
    run_sweep(default_scenario(), ["kvm.strategy=shadow,direct",
                                   "vm.0.process.0.workload.pages=16,48"],
              seeds=2, out_dir=str(d), workers=1,
              overrides=["duration_ms=1", "kvm.pfn_source=gup"])
    return d


@pytest.fixture(scope="module")
def sweep_html(sweep_dir):
    path = write_report(str(sweep_dir))
    with open(path, encoding="utf-8") as f:
        return path, f.read()


@pytest.fixture(scope="module")
def comparison_html(comparison_dir):
    path = write_report(str(comparison_dir))
    assert path == os.path.join(str(comparison_dir), "report.html")
    with open(path, encoding="utf-8") as f:
        return path, f.read()


# -- plots -----------------------------------------------------------------------------

def svg_texts(path) -> str:
    """Every text of an SVG, one per line (the plots keep text as text)."""
    root = ET.parse(path).getroot()
    return "\n".join(e.text.strip() for e in root.iter() if e.text and e.text.strip())


def check_files(paths, *texts):
    png, svg = paths
    assert png.endswith(".png") and svg.endswith(".svg")
    with open(png, "rb") as f:
        data = f.read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    assert os.path.getsize(svg) > 5000
    found = svg_texts(svg)
    for t in texts:
        assert t in found, f"{t!r} not in the SVG text of {svg}"


#: Title, x label, y label and legend title of each multi-run plot.
EXPECTED = {
    "repopulation": ["TLB misses after vcpu_load, per resume", "Cumulative misses per resume",
                     "accesses after vcpu_load, the guest kernel's too (k)", "misses per resume at access k",
                     "misses per resume in the first k accesses", "design"],
    "cycles": ["CPU time by component", "Design overhead per guest access",
               "share of CPU time (%)", "CPU cycles per guest access (overhead components only)",
               "design", "cycle component", "guest work"],
    "exits": ["Exits by category (TIMEINGUEST excluded)", "exit category (KVM exit timing)",
              "design"],
    "miss_causes": ["Guest TLB misses by cause", "hardware TLB misses taken by guests (count)",
                    "design", "cause", "compulsory"],
    "fastpath_profile": ["Miss handler cost per guest TLB miss, by step",
                         "Handler steps, per guest TLB miss",
                         "CPU cycles per guest TLB miss (step cycles / misses)",
                         "TLB restore at guest entry, per entry", "CPU cycles per guest entry",
                         "gfn_to_pfn, per call", "CPU cycles per call",
                         "design", "handler step (in the order it runs)", "walk"],
}


@pytest.mark.parametrize("stem", sorted(plots.COMPARISON_PLOTS))
def test_each_plot_writes_png_and_svg_with_title_labels_and_legend(stem, runs, tmp_path):
    fig = plots.COMPARISON_PLOTS[stem](runs, tmp_path / stem)
    assert isinstance(fig, Figure) and fig.axes and fig._repr_png_()[:4] == b"\x89PNG"
    paths = (str(tmp_path / f"{stem}.png"), str(tmp_path / f"{stem}.svg"))
    assert all(os.path.isfile(p) for p in paths)
    check_files(paths, *EXPECTED[stem], *DESIGNS)
    if stem in ("cycles", "miss_causes", "fastpath_profile"):    # bars in run order, top down
        ys = {e.text: float(e.get("y")) for e in ET.parse(paths[1]).getroot().iter()
              if e.tag.endswith("text") and e.text in DESIGNS}
        assert ys["shadow"] < ys["direct"]
    if stem == "exits":           # y label names its unit, and the scale when it is log
        assert re.search(r"exits \(count(, log scale)?\)", svg_texts(paths[1]))
    if stem == "fastpath_profile":   # entry restore per entry, gfn_to_pfn per call, counted
        texts = svg_texts(paths[1])
        for _, s in runs:
            for step, units in (("entry_restore", "entries"), ("gfn_to_pfn", "calls")):
                p = s["fastpath_profile"][step]
                if p["count"]:
                    assert f"{p['cycles'] / p['count']:,.0f} × {p['count']:,} {units}" in texts


def test_the_profile_palette_tells_neighbouring_steps_apart():
    """Every step has a colour; two steps that can sit side by side in a bar
    differ by a clear distance in RGB (no near-identical neighbours): steps
    next to each other in the handler's order, or with one between them that
    a run may never take (the other handler's entry, deliver, the C path)."""
    from emu.codes import PROFILE_STEPS
    assert set(plots.HANDLER_STEPS) | {"entry_restore", "gfn_to_pfn"} == set(PROFILE_STEPS)
    rgb = {k: np.array([int(c[i:i + 2], 16) for i in (1, 3, 5)])
           for k, c in plots._STEP_COLOURS.items()}
    steps, optional = plots.HANDLER_STEPS, {"full_exit", "save", "deliver", "deferred_c_path"}
    pairs = [(a, b) for a, b in zip(steps, steps[1:])]
    pairs += [(a, c) for a, b, c in zip(steps, steps[1:], steps[2:]) if b in optional]
    assert ("pfn_lookup", "hw_write") in pairs and ("walk", "gpa") in pairs
    for a, b in pairs:
        if {a, b} != {"full_exit", "save"}:    # one handler has one, the other the other
            assert np.linalg.norm(rgb[a] - rgb[b]) > 90, (a, b)


def test_occupancy_timeline_names_owners_from_the_contexts(results, tmp_path):
    r = dict(results)["direct"]
    tl = r.arrays["timeline"]
    assert tl["owner"].shape[1] == 64 and len(tl["time"]) > 0
    paths = plots.save_figure(plots.occupancy_timeline(r.summary, tl), tmp_path / "occ.png")
    assert paths == (str(tmp_path / "occ.png"), str(tmp_path / "occ.svg"))
    vcpu = next(c["name"] for c in r.summary["contexts"] if c["kind"] == "vcpu")
    check_files(paths, "Hardware TLB occupancy on CPU 0: direct", "TLB entry (index)",
                "simulated time (µs); a sample at each context switch", "owner",
                "free / host kernel", f"{vcpu} (vCPU)")
    with pytest.raises(EmuError, match=r"^no TLB occupancy samples for CPU 3 \(the timeline "
                                        r"holds CPU 0\)$"):
        plots.occupancy_timeline(r.summary, tl, tmp_path / "none", cpu=3)
    # a CPU given as text or True was looked for as it was ("no samples for CPU True"),
    # and 0.0 drew CPU 0
    for cpu in ("0", True, 0.0):
        with pytest.raises(EmuError, match=r"^cpu: expected a CPU's number \(an integer\), "
                                            r"got "):
            plots.occupancy_timeline(r.summary, tl, tmp_path / "none", cpu=cpu)
    assert not os.path.exists(tmp_path / "none.png")
    plots.occupancy_timeline(r.summary, tl, cpu=np.int64(0))


def test_plot_set_functions_write_every_plot(results, runs, tmp_path):
    out = plots.comparison_plots(tmp_path / "cmp", runs, formats=("png",), dpi=40)
    assert set(out) == set(plots.COMPARISON_PLOTS)
    r = dict(results)["direct"]
    one = plots.run_plots(tmp_path / "run", r.summary, r.arrays, formats=("png",), dpi=40)
    assert set(one) == set(plots.COMPARISON_PLOTS) | {"occupancy"}
    for paths in list(out.values()) + list(one.values()):
        assert all(os.path.getsize(p) > 0 for p in paths)
    # PNG only, as the README figures are written
    (png,) = plots.save_figure(plots.cycle_breakdown(runs), tmp_path / "only", ("png",), 60)
    assert png.endswith("only.png") and not os.path.exists(tmp_path / "only.svg")


def test_an_overhead_ten_times_the_rest_runs_off_the_scale(runs):
    """One design's start-up (2.6.26 spends its first 20 ms there) would flatten
    every other bar of the overhead panel: past ten times the next, the axis
    ends past the others and that bar is written at the edge, off scale."""
    import copy

    def scaled(label, accesses_times):
        out = copy.deepcopy(runs[-1])
        out[1]["guest_accesses"] = max(1, int(out[1]["guest_accesses"] * accesses_times))
        return (label, out[1])

    base, half = scaled("a", 1), scaled("b", 2)           # overheads 2:1
    for rows, clipped in (([base, half], False), ([scaled("c", 0.001), base, half], True)):
        ov = plots.cycle_breakdown(rows).axes[1]
        texts = [t.get_text() for t in ov.texts]
        totals = [sum(plots.figures.per_guest_access(s, c) or 0.0 for c in plots.CYCLE_CATEGORIES
                      if c not in plots._NOT_OVERHEAD) for _, s in rows]
        assert any("off scale" in t for t in texts) is clipped
        assert bool(ov.get_xlim()[1] < max(totals)) is clipped
        if clipped:
            assert ov.get_xlim()[1] > sorted(totals)[-2]
            assert f"{max(totals):,.3f}, off scale \u2192" in texts


def test_svg_is_deterministic(runs, tmp_path):
    a = plots.save_figure(plots.miss_causes(runs), tmp_path / "a")[1]
    b = plots.save_figure(plots.miss_causes(runs), tmp_path / "b")[1]
    with open(a, "rb") as fa, open(b, "rb") as fb:
        assert fa.read() == fb.read()


def test_plots_return_figures_and_write_nothing_without_a_path(results, tmp_path,
                                                                monkeypatch):
    monkeypatch.chdir(tmp_path)
    import matplotlib.pyplot as plt
    before = plt.get_fignums()
    figs = [fn(results) for fn in plots.COMPARISON_PLOTS.values()]   # Results stand for summaries
    figs.append(plots.occupancy_timeline(dict(results)["direct"]))    # its own timeline
    assert all(isinstance(f, Figure) and f.axes for f in figs)
    assert os.listdir(tmp_path) == []
    assert plt.get_fignums() == before            # nothing registered with pyplot
    (png,) = plots.save_figure(figs[1], tmp_path / "cycles", ("png",), 40)
    with open(png, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(EmuError, match="sim.timeline = true"):
        plots.occupancy_timeline(compare(default_scenario(), "kvm.strategy", ["direct"],
                                         ["duration_ms=0.2"])[0][1])


def test_a_run_without_misses_or_exits_draws_no_empty_legend(runs, tmp_path):
    # a legend over nothing made matplotlib warn on stderr; the plot says why it is empty
    import copy
    import warnings
    quiet = copy.deepcopy(runs[0][1])
    quiet["tlb"]["guest"]["misses_by_cause"] = {c: 0 for c in quiet["tlb"]["guest"]
                                                ["misses_by_cause"]}
    for e in quiet["exits"].values():
        e["count"] = 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig = plots.miss_causes([("quiet", quiet)], tmp_path / "m")
        assert fig.axes[0].get_legend() is None
        assert "no guest TLB misses" in [t.get_text() for t in fig.axes[0].texts]
        plots.exits_by_category([("quiet", quiet)], tmp_path / "e")
    # with misses, the legend names each cause drawn
    fig = plots.miss_causes(runs)
    assert fig.axes[0].get_legend().get_title().get_text() == "cause"


def test_plots_refuse_no_runs(tmp_path):
    with pytest.raises(EmuError):
        plots.repopulation_curve([], tmp_path / "x")


def test_plots_take_one_format_as_a_string_and_refuse_bad_ones_before_drawing(runs, tmp_path,
                                                                              monkeypatch):
    """formats="png" was split into letters ("Format 'p' is not supported"),
    and an unknown format or a dpi of text leaked matplotlib's errors."""
    (png,) = plots.save_figure(plots.cycle_breakdown(runs), tmp_path / "one", "png", 40)
    assert png.endswith("one.png") and not os.path.exists(tmp_path / "one.svg")
    plots.cycle_breakdown(runs, out=tmp_path / "p", formats="svg", dpi=30)
    assert sorted(os.listdir(tmp_path)) == ["one.png", "p.svg"]
    monkeypatch.setattr(plots, "_figure", lambda **kw: pytest.fail("drew"))
    for kw, says in (
            ({"formats": "bmpx"}, "formats: expected some of png, svg, pdf, got 'bmpx'"),
            ({"formats": ["png", 5]}, "formats: expected some of png, svg, pdf, got 5"),
            ({"formats": ()}, "formats: no format"),
            ({"formats": 3}, "formats: expected a format's name or a list of them"),
            ({"dpi": "x"}, "dpi: expected a number of dots per inch above 0 and at most 2400, "
                           "got str 'x'"),
            ({"dpi": 0}, "dpi: expected a number of dots per inch above 0"),
            ({"dpi": float("nan")}, "dpi: expected a number of dots per inch above 0")):
        for plot in (plots.cycle_breakdown, plots.miss_causes):
            with pytest.raises(EmuError) as err:
                plot(runs, out=tmp_path / "bad", **kw)
            assert str(err.value).startswith(says) and "\n" not in str(err.value)
        with pytest.raises(EmuError, match="^" + says.split(":")[0]):
            plots.comparison_plots(tmp_path / "set", runs, **kw)
    assert sorted(os.listdir(tmp_path)) == ["one.png", "p.svg"]


def test_plots_refuse_an_empty_name_or_no_path_before_drawing(runs, tmp_path, monkeypatch):
    """out="" wrote the hidden files .png and .svg into the current folder, and
    out=5 leaked os.fspath's TypeError."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(plots, "_figure", lambda **kw: pytest.fail("drew"))
    for out, says in (("", "out '': an empty name names no file"),
                      ("  ", "out '  ': an empty name names no file"),
                      ("sub/ ", "out 'sub/ ': an empty name names no file"),
                      (".png", "out '.png': an empty name names no file"),   # wrote .png.png
                      ("sub/.SVG", "out 'sub/.SVG': an empty name names no file"),
                      (5, "out: expected the path of the file without its extension (a string "
                          "or a Path), got int 5")):
        for plot in (plots.cycle_breakdown, plots.miss_causes):
            with pytest.raises(EmuError) as err:
                plot(runs, out=out)
            assert str(err.value).startswith(says) and "\n" not in str(err.value)
    assert os.listdir(tmp_path) == []
    monkeypatch.undo()
    fig = plots.cycle_breakdown(runs)
    with pytest.raises(EmuError, match="^out '.png': an empty name names no file"):
        plots.save_figure(fig, ".png")          # save_figure itself, as the plots call it
    assert os.listdir(tmp_path) == []
    plots.cycle_breakdown(runs, out=os.fsencode(tmp_path / "b"), formats="svg")   # bytes: a path
    assert os.listdir(tmp_path) == ["b.svg"]


def test_plots_into_a_folder_refuse_a_bad_folder_in_one_line(runs, tmp_path, monkeypatch):
    """comparison_plots and run_plots leaked FileNotFoundError for out_dir="",
    FileExistsError for a file and TypeError for None."""
    (tmp_path / "afile").write_text("x")
    monkeypatch.setattr(plots, "_figure", lambda **kw: pytest.fail("drew"))
    for out_dir, says in (("", "out_dir '': an empty path names no folder"),
                          (tmp_path / "afile", f"out_dir {str(tmp_path / 'afile')!r}: exists "
                                               f"and is not a folder"),
                          (None, "out_dir: expected the path of a folder (a string or a Path), "
                                 "got NoneType None")):
        for call in (lambda: plots.comparison_plots(out_dir, runs),
                     lambda: plots.run_plots(out_dir, runs[0][1])):
            with pytest.raises(EmuError) as err:
                call()
            assert str(err.value) == says
    assert os.listdir(tmp_path) == ["afile"]


# -- the reading --------------------------------------------------------------------------

def hand_summary(cpa=None, strategy="direct", resumes=0, host_eviction=0, save_restore=0,
                 violations=0, simulated_cycles=1000):
    """A summary with just the sections the reading looks at."""
    causes = {c: 0 for c in ("compulsory", "host-eviction", "other-guest-eviction",
                             "self-eviction", "guest-context-switch", "flush",
                             "shadow-not-restored")}
    causes["host-eviction"] = host_eviction
    return {
        "config": {"kvm": {"strategy": strategy}},
        "cycles_per_guest_access": cpa,
        "simulated_cycles": simulated_cycles, "cpus": 1,
        "cycles": {"save_restore": save_restore},
        "repopulation": {"window": 256, "resumes": resumes, "misses_per_resume": 0.0},
        "tlb": {"guest": {"misses_by_cause": causes, "misses": host_eviction},
                "isolation_violations": violations},
    }


def test_reading_known_answer_cost_per_access():
    lines = generate_reading([("shadow", hand_summary(2.0, "shadow")),
                              ("direct", hand_summary(1.0))])
    assert lines[0] == ("Per guest access, direct costs 1.0 vs 2.0 CPU cycles under shadow: "
                        "direct is 2.0× cheaper than shadow.")
    same = generate_reading([("a", hand_summary(1.5)), ("b", hand_summary(1.5))])
    assert same[0] == "Every design costs the same per guest access: 1.5 CPU cycles."


def test_reading_known_answer_host_eviction_save_restore_and_isolation():
    shadow = hand_summary(1.2, "shadow", resumes=10, save_restore=20)
    direct = hand_summary(1.0, "direct-noflush", resumes=10, host_eviction=417,
                          violations=1234)
    lines = generate_reading([("direct", direct), ("shadow", shadow)])
    assert ("direct loses 41.7 entries per resume to the host (host-eviction misses / resumes), "
            "shadow 0.0.") in lines
    assert ("shadow spends 2.0 % of CPU time restoring the shadow TLB on every guest entry "
            "(20 cycles); direct spends none.") in lines
    assert ("Isolation violations (TLB hits on an entry owned by another context): "
            "direct 1,234, shadow 0 (direct-noflush has no vcpu_put flush).") in lines
    assert generate_reading([("direct", direct), ("shadow", shadow)]) == lines  # deterministic
    clean = generate_reading([("shadow", shadow)])
    assert "No isolation violations: no TLB hit was on an entry owned by another context." in clean
    assert not any("loses" in line for line in clean)      # nothing lost: nothing said
    assert generate_reading([]) == []


def test_reading_of_real_runs_states_their_numbers(runs):
    lines = generate_reading(runs)
    assert lines == generate_reading(runs)
    s = dict(runs)
    cpa = {k: v["cycles_per_guest_access"] for k, v in s.items()}
    best, worst = sorted(cpa, key=cpa.get)
    assert lines[0].startswith(f"Per guest access, {best} costs {cpa[best]:,.3f}".rstrip("0"))
    text = "\n".join(lines)
    for label, summ in runs:
        assert f"{label} {summ['repopulation']['misses_per_resume']:.1f}" in text
        pct = 100 * summ["cycles"]["fastpath"] / summ["simulated_cycles"]
        assert f"{label} {pct:.1f} %" in text or f"{label} {pct:.2g} %" in text


# -- the HTML report ------------------------------------------------------------------------

_KILLED_REPORT = """
import sys, time
from emu.report import html

def drawing(runs, timelines, tmp):
    open(tmp + "/cycles.png", "wb").write(b"half a plot")
    print("drawing", flush=True)
    time.sleep(120)

html._plots_section = drawing
html.write_report(sys.argv[1], sys.argv[2])
"""


def test_a_report_killed_while_drawing_leaves_no_scratch_after_the_next(comparison_dir,
                                                                       tmp_path, monkeypatch):
    """The plots of a report are drawn into a scratch folder before they go
    into the page: one a report killed while drawing left is removed by the
    next report, as the temporaries of a killed write are."""
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    p = subprocess.Popen([sys.executable, "-c", _KILLED_REPORT, str(comparison_dir),
                          str(tmp_path / "killed.html")], stdout=subprocess.PIPE, text=True,
                         env=cli_env(TMPDIR=scratch))
    try:
        assert p.stdout.readline() == "drawing\n"
    finally:
        p.kill()
        p.wait()
    assert len(os.listdir(scratch)) == 1
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    write_report(comparison_dir, tmp_path / "report.html")
    assert os.listdir(scratch) == []
    assert sorted(os.listdir(tmp_path)) == ["report.html", "scratch"]


def test_report_of_a_comparison_is_self_contained(comparison_html, runs):
    _, text = comparison_html
    assert text.startswith("<!DOCTYPE html>")
    assert "<script" not in text.lower()
    # every image is embedded; nothing refers to another file
    srcs = re.findall(r'src="([^"]*)"', text)
    assert len(srcs) == len(plots.COMPARISON_PLOTS) + len(runs)    # + one occupancy per run
    assert all(s.startswith("data:image/png;base64,") for s in srcs)
    assert not re.search(r'(href|src)="(?!data:|#)', text)
    # links inside the page (the glossary's terms) point at anchors it has
    anchors = set(re.findall(r'id="([^"]+)"', text))
    links = set(re.findall(r'href="#([^"]+)"', text))
    assert "glossary" in links and links <= anchors, links - anchors
    for s in srcs:                                                   # each decodes as a PNG
        import matplotlib.image
        img = matplotlib.image.imread(io.BytesIO(base64.b64decode(s.split(",", 1)[1])), "png")
        assert img.shape[0] > 100 and img.shape[1] > 100


def test_report_has_question_config_costs_tables_and_reading(comparison_html, runs):
    _, text = comparison_html
    s = runs[0][1]
    assert html.escape(s["config"]["question"]) in text
    assert "emu report: default, comparing kvm.strategy = shadow, direct" in text
    for heading in ("Reading", "Key figures", "Plots", "Exits by category", "Guest TLB misses by cause",
                    "Memory", "Fast-path profile", "Configuration", "Cost table"):
        assert f">{heading}</h2>" in text
    # the cost table: every cost, with its value, unit, description and source
    g2p = COSTS_BY_NAME["gfn_to_pfn"]
    assert "<td>gfn_to_pfn</td>" in text
    assert html.escape(g2p.description) in text and html.escape(g2p.source) in text
    assert f'<td class="n">{s["costs"]["gfn_to_pfn"]:,}</td>' in text
    assert all(f"<td>{name}</td>" in text for name in s["costs"])
    # the reading, sentence by sentence
    for line in generate_reading(runs):
        assert f"<li>{link_terms(html.escape(line))}</li>" in text
    # exits with their counts and mean µs; the varied key in the configuration
    for label, summ in runs:
        e = summ["exits"]["EMUL_TLBWE"]
        assert f'{e["count"]:,}' in text and f'{e["mean_us"]:.3f}' in text
    assert "the varied key is <code>kvm.strategy</code>" in text
    assert "<td>kvm.strategy</td>" in text


def test_report_of_a_single_run(results, tmp_path):
    r = dict(results)["shadow"]
    r.write(tmp_path / "run")
    os.remove(tmp_path / "run" / "timeline.npz")           # a run without a timeline
    out = write_report(tmp_path / "run", tmp_path / "elsewhere" / "r.html")
    assert out == str(tmp_path / "elsewhere" / "r.html")
    with open(out, encoding="utf-8") as f:
        text = f.read()
    assert "emu report: default (shadow)" in text
    assert text.count("data:image/png;base64,") == len(plots.COMPARISON_PLOTS)
    assert "<td>gfn_to_pfn</td>" in text
    # its exits with the columns its text prints: the longest, and the kernel's whole µs
    e = r.summary["exits"]["EMUL_TLBWE"]
    for cell in (f'{e["max_us"]:,.3f}', f'{e["kernel_us"]["sum"]:,}', f'{e["kernel_us"]["max"]:,}'):
        assert f'<td class="n">{cell}</td>' in text, cell
    assert ": kernel sum µs</th>" in text


def test_report_cli_entry_points(comparison_dir, tmp_path, capsys):
    parser = argparse.ArgumentParser(prog="emu")
    sub = parser.add_subparsers(dest="command")
    add_report_parser(sub)
    out = tmp_path / "cli.html"
    args = parser.parse_args(["report", str(comparison_dir), "-o", str(out)])
    assert args.func is cmd_report
    assert args.func(args) == 0
    assert capsys.readouterr().out.strip() == str(out)
    assert out.stat().st_size > 10000


@pytest.mark.parametrize("case", ["missing", "empty", "corrupt-summary", "corrupt-comparison",
                                  "not-a-summary", "comparison-without-runs", "corrupt-timeline"])
def test_report_refuses_bad_directories_in_one_line(case, comparison_dir, tmp_path):
    d = tmp_path / "d"
    if case != "missing":
        d.mkdir()
    if case == "corrupt-summary":
        (d / "summary.json").write_text('{"config": {', encoding="utf-8")
    elif case == "corrupt-comparison":
        (d / "comparison.json").write_text("not json", encoding="utf-8")
    elif case == "not-a-summary":
        (d / "summary.json").write_text('{"hello": 1}', encoding="utf-8")
    elif case == "comparison-without-runs":
        (d / "comparison.json").write_text('{"key": "x", "keys": ["x"], "runs": []}',
                                          encoding="utf-8")
    elif case == "corrupt-timeline":
        shutil.copy(comparison_dir / "direct" / "summary.json", d / "summary.json")
        (d / "timeline.npz").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(EmuError) as err:
        write_report(d)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith("report: ")
    expected = {"missing": "no such directory", "empty": "holds no emu result",
                "corrupt-summary": "corrupt JSON", "corrupt-comparison": "corrupt JSON",
                "not-a-summary": "summary.json: emu_version: missing",
                "comparison-without-runs": "comparison.json: runs: expected a list of at "
                                           "least 1, got an empty list",
                "corrupt-timeline": "cannot read the timeline"}[case]
    assert expected in msg
    assert not (d / "report.html").exists()


def test_report_cli_refuses_a_file_and_an_empty_output_in_one_line(comparison_dir, tmp_path):
    (tmp_path / "afile").write_text("x")
    before = sorted(os.listdir(comparison_dir))
    assert_usage_error(run_cli("report", tmp_path / "afile"),
                       f"emu: error: report: {tmp_path / 'afile'}: is not a folder\n")
    assert_usage_error(run_cli("report", ""),
                       "emu: error: report: '': an empty path names no folder\n")
    assert_usage_error(run_cli("report", comparison_dir, "-o", ""),
                       "emu: error: --output '': an empty path names no file\n")
    assert_usage_error(run_cli("report", comparison_dir, "-o", "-", cwd=tmp_path),
                       "emu: error: --output '-': emu writes a file it can replace as a whole, "
                       "not standard output: give the file's name (./- for a file called '-')\n")
    assert sorted(os.listdir(comparison_dir)) == before and os.listdir(tmp_path) == ["afile"]


def test_a_report_into_a_result_other_than_its_own_page_is_refused(comparison_dir, tmp_path):
    """-o over a file of a result (its summary.json) destroyed the result, and
    a page inside another result mixed into it: both refused; the folder's
    own report.html is its report's place."""
    run = next(p for p in comparison_dir.iterdir() if (p / "summary.json").is_file())
    before = {p: p.read_bytes() for p in sorted(comparison_dir.rglob("*")) if p.is_file()}
    for target in (run / "summary.json", comparison_dir / "report.html", run / "x.html"):
        p = run_cli("report", run, "-o", target)
        assert assert_usage_error(p) == (
            f"emu: error: report: -o {target}: inside {target.parent}, which holds "
            f"{'a run' if target.parent == run else 'a comparison'}; write outside it "
            f"(emu replaces a result folder as a whole)\n")
    assert {p: p.read_bytes() for p in sorted(comparison_dir.rglob("*")) if p.is_file()} == before
    assert run_cli("report", run, "-o", run / "report.html").returncode == 0


def test_an_output_emu_cannot_replace_is_refused_before_the_page_is_built(comparison_dir,
                                                                          tmp_path, monkeypatch):
    import emu.report.html as page

    def build(*args, **kw):
        raise AssertionError("the page was built")
    monkeypatch.setattr(page, "render_report", build)
    os.mkfifo(tmp_path / "fifo")
    for target, line in ((tmp_path, f"{tmp_path}: is a folder; give the name of the file to write"),
                         (tmp_path / "fifo", f"{tmp_path / 'fifo'}: is a FIFO, not a regular "
                                             "file; emu writes only to a file it can replace as "
                                             "a whole")):
        with pytest.raises(EmuError, match=f"^{re.escape(line)}$"):
            page.write_report(comparison_dir, target)


def test_load_results_finds_the_timelines(comparison_dir):
    res = load_results(comparison_dir)
    assert res["kind"] == "comparison" and res["key"] == "kvm.strategy"
    assert [label for label, _ in res["runs"]] == DESIGNS
    assert all(isinstance(res["timelines"][d]["owner"], np.ndarray) for d in DESIGNS)


def _edit_json(path, edit) -> None:
    """Apply ``edit`` to the JSON document at ``path`` and write it back."""
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    edit(doc)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(doc, f)


def _refused(folder) -> str:
    """The one line the report of ``folder`` is refused with (nothing written)."""
    page = os.path.join(folder, "report.html")
    if os.path.exists(page):                # copied along from a folder reported before
        os.remove(page)
    with pytest.raises(EmuError) as err:
        write_report(folder, plots=False)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith("report: ")
    assert not os.path.exists(os.path.join(folder, "report.html"))
    return msg


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory):
    """A quick study's folder."""
    import emu.study
    d = tmp_path_factory.mktemp("study") / "pfn"
    emu.study.run("pfn_cache_sizing", quick=True, out=str(d))
    return d


def _drop(*path):
    """An edit that removes the key at ``path``."""
    def edit(doc):
        for key in path[:-1]:
            doc = doc[key]
        del doc[path[-1]]
    return edit


def _put(value, *path):
    """An edit that sets the key at ``path`` to ``value``."""
    def edit(doc):
        for key in path[:-1]:
            doc = doc[key]
        doc[path[-1]] = value
    return edit


#: Damage to a run's summary.json and the key and message that refuse it.
SUMMARY_DAMAGE = {
    "null ratio": (_put(None, "cycles_per_guest_access"),
                   "cycles_per_guest_access: expected a number with guest_accesses = {acc:,}, "
                   "got None"),
    "ratio without accesses": (_put(0, "guest_accesses"),
                               "cycles_per_guest_access: expected null with guest_accesses = 0, "
                               "got {cpa!r}"),
    "no design": (_drop("design"), "design: missing"),
    "no contexts": (_drop("contexts"), "contexts: missing"),
    "no simulated_us": (_drop("simulated_us"), "simulated_us: missing"),
    "no seed": (_drop("seed"), "seed: missing"),
    "seed one": (_put("one", "seed"), "seed: expected a seed (an integer >= 0), got 'one'"),
    "no guest cycles": (_drop("cycles", "guest"), "cycles.guest: missing"),
    "cycles off": (lambda s: s["cycles"].update(guest=s["cycles"]["guest"] + 1),
                   "cycles: the components add up to {total1:,}, not to measured_cpu_cycles = "
                   "{total:,}"),
    "short curve": (lambda s: s["repopulation"].update(misses=[0, 1]),
                    "repopulation.misses: expected {window:,} positions (the window), got 2"),
    "idle of no cpu": (_put([], "cpu_idle_cycles"),
                       "cpu_idle_cycles: expected one per CPU (1), got 0"),
    "idle past the window": (_put([10 ** 12], "cpu_idle_cycles"),
                             "cpu_idle_cycles.0: 1,000,000,000,000 idle cycles in a counted "
                             "window of {window_cycles:,}"),
    "idle off": (lambda s: s["cpu_idle_cycles"].__setitem__(0, s["cpu_idle_cycles"][0] + 1),
                 "cpu_idle_cycles: they add up to {idle1:,}, not to cycles.idle = {idle:,}"),
    "causes off": (lambda s: s["tlb"]["guest"]["misses_by_cause"].update(
        compulsory=s["tlb"]["guest"]["misses_by_cause"]["compulsory"] + 1),
        "tlb.guest.misses_by_cause: the causes add up to {causes1:,}, not to misses = "
        "{misses:,}"),
}


@pytest.mark.parametrize("case", list(SUMMARY_DAMAGE))
def test_a_damaged_run_summary_is_refused_naming_the_key(case, comparison_dir, tmp_path):
    d = tmp_path / "run"
    shutil.copytree(comparison_dir / "direct", d)
    s = json.loads((d / "summary.json").read_text(encoding="utf-8"))
    g = s["tlb"]["guest"]
    words = {"acc": s["guest_accesses"], "cpa": s["cycles_per_guest_access"],
             "total": s["measured_cpu_cycles"], "total1": s["measured_cpu_cycles"] + 1,
             "window": s["repopulation"]["window"], "misses": g["misses"],
             "causes1": g["misses"] + 1, "idle": s["cycles"]["idle"],
             "idle1": s["cycles"]["idle"] + 1,
             "window_cycles": s["simulated_cycles"] - s["cpu_measured_from"][0]}
    edit, message = SUMMARY_DAMAGE[case]
    _edit_json(d / "summary.json", edit)
    assert _refused(d) == f"report: {d / 'summary.json'}: {message.format(**words)}"


def test_a_run_summary_kept_before_the_idle_cycles_is_reported(comparison_dir, tmp_path):
    d = tmp_path / "run"
    shutil.copytree(comparison_dir / "direct", d)
    _edit_json(d / "summary.json", _drop("cpu_idle_cycles"))
    page = d / "report.html"
    if page.exists():
        page.unlink()
    write_report(str(d), plots=False)
    assert page.exists()


#: Damage to sweep.json, results.json and comparison.json and the words that refuse it.
FOLDER_DAMAGE = {
    **{f"sweep without {k}": ("sweep", "sweep.json", _drop(k), f"sweep.json: {k}: missing")
       for k in ("runs", "results", "scenario", "seeds", "overrides", "emu_version")},
    **{f"study without {k}": ("study", "results.json", _drop(k), f"results.json: {k}: missing")
       for k in ("question", "quick", "runs_count")},
    "study runs_count x": ("study", "results.json", _put("x", "runs_count"),
                           "results.json: runs_count: expected a count (an integer >= 0), "
                           "got 'x'"),
    "comparison without key": ("cmp", "comparison.json", _drop("key"),
                               "comparison.json: key: missing"),
    "run without dir": ("cmp", "comparison.json", _drop("runs", 0, "dir"),
                        "comparison.json: runs[0].dir: missing"),
    "run without value": ("cmp", "comparison.json", _drop("runs", 0, "value"),
                          "comparison.json: runs[0].value: missing"),
    "dir gone": ("cmp", "comparison.json", _put("nope", "runs", 0, "dir"),
                 "comparison.json: runs[0].dir: no folder 'nope' beside it"),
    "dir a path": ("cmp", "comparison.json", _put("../direct", "runs", 0, "dir"),
                   "comparison.json: runs[0].dir: expected the name of a folder beside it, "
                   "got '../direct'"),
    "no runs": ("cmp", "comparison.json", _put([], "runs"),
                "comparison.json: runs: expected a list of at least 1, got an empty list"),
}


@pytest.mark.parametrize("case", list(FOLDER_DAMAGE))
def test_a_damaged_folder_file_is_refused_naming_the_key(case, comparison_dir, sweep_dir,
                                                         study_dir, tmp_path):
    kind, name, edit, words = FOLDER_DAMAGE[case]
    d = tmp_path / kind
    shutil.copytree({"sweep": sweep_dir, "study": study_dir, "cmp": comparison_dir}[kind], d)
    _edit_json(d / name, edit)
    assert _refused(d) == f"report: {d / words}"


@pytest.mark.parametrize("damage", ["empty", "truncated", "binary", "edited", "removed"])
def test_a_comparison_reads_and_checks_every_run_summary(damage, comparison_dir, tmp_path):
    """The report of a comparison reads each run's own summary.json, as emu.load
    does; one that is damaged, or differs from its copy in comparison.json, is
    refused in one line naming it (and emu.load refuses the difference too)."""
    import emu
    d = tmp_path / "cmp"
    shutil.copytree(comparison_dir, d)
    path = d / "direct" / "summary.json"
    data = path.read_bytes()
    if damage == "empty":
        path.write_bytes(b"")
        words = "an empty file (a write cut short?)"
    elif damage == "truncated":
        path.write_bytes(data[:len(data) // 2])
        words = "corrupt JSON ("
    elif damage == "binary":
        path.write_bytes(bytes(range(256)) * 4)
        words = "corrupt JSON ('utf-8' codec can't decode"
    elif damage == "edited":
        _edit_json(path, lambda s: s["tlb"]["guest"].update(hits=s["tlb"]["guest"]["hits"] + 1,
                                                             accesses=s["tlb"]["guest"]["accesses"]
                                                             + 1))
        words = (f"tlb.guest.accesses: differs from its copy in {d / 'comparison.json'} "
                 "(runs[1].summary)")
        with pytest.raises(EmuError, match=re.escape(f"{path}: {words}")):
            emu.load(d)
    else:
        os.remove(path)
        words = "cannot read"
    msg = _refused(d)
    assert str(path) in msg and words in msg, msg


def test_a_comparison_shows_what_its_run_folders_hold(comparison_dir, tmp_path):
    """comparison.json and the runs' summaries agree: the report and emu.load
    show the same numbers."""
    import emu
    res = load_results(comparison_dir)
    loaded = emu.load(comparison_dir)
    assert [s for _, s in res["runs"]] == [s for _, s in loaded.summaries()]


# -- the report of a sweep --------------------------------------------------------------------

def test_sweep_interval_known_answers():
    """The 95 % t-interval's half-width: t(0.975, n - 1) * sd / sqrt(n), with
    t(0.975, 1) = tan(0.475 pi) and t(0.975, 2) = 0.95 sqrt(2 / (1 - 0.95^2))."""
    mean, half, n = interval([1.0, 2.0, 3.0])
    t2 = 0.95 * math.sqrt(2 / (1 - 0.95 ** 2))
    assert (mean, n) == (2.0, 3) and half == pytest.approx(t2 * 1.0 / 3 ** 0.5, rel=1e-9)
    assert interval([5, None]) == (5.0, None, 1)
    assert interval([None]) == (None, None, 0)
    mean, half, n = interval([2.0, 4.0])
    assert (mean, n) == (3.0, 2) and half == pytest.approx(math.tan(math.pi * 0.475), rel=1e-9)


def test_sweep_report_marks_a_grid_value_no_kernel_shipped(tmp_path):
    """A design varied by the grid names the machine no kernel shipped (direct
    without 7924bd41's flush) in its grid cell, as it does in its own column."""
    run_sweep(default_scenario(), ["kvm.strategy=direct,direct-noflush"], out_dir=str(tmp_path),
              workers=1, overrides=["duration_ms=0.3", "kvm.pfn_source=gup"])
    with open(write_report(str(tmp_path)), encoding="utf-8") as f:
        points = f.read().split('id="points"')[1].split("</table>")[0]
    assert re.findall(r"<tr><td>([^<]*)</td>", points) == ["direct", "direct-noflush (hypothetical)"]


def test_sweep_report_has_one_row_per_grid_point_with_mean_and_spread(sweep_dir, sweep_html):
    _, text = sweep_html
    assert "emu report: sweep of default over kvm.strategy × vm.0.process.0.workload.pages" \
        in text
    res = load_results(sweep_dir)
    assert res["kind"] == "sweep" and res["missing"] == 0 and len(res["rows"]) == 8
    points = grid_points(res)
    assert [(p["point"]["kvm.strategy"], p["point"]["vm.0.process.0.workload.pages"])
            for p in points] == [("shadow", 16), ("shadow", 48), ("direct", 16), ("direct", 48)]
    rows = re.findall(r"<tr><td>(shadow|direct)</td>(.*?)</tr>",
                      text.split('id="points"')[1].split("</table>")[0])
    assert len(rows) == 4
    # each cell: the mean and the sample sd over the point's two seeds, from figures
    table = read_table(str(sweep_dir))
    for (strategy, cells), p in zip(rows, points):
        summaries = [json.load(open(sweep_dir / "runs" / r["run_id"] / "summary.json"))
                     for r in table if r["kvm.strategy"] == p["point"]["kvm.strategy"]
                     and r["vm.0.process.0.workload.pages"]
                     == p["point"]["vm.0.process.0.workload.pages"]]
        assert len(summaries) == 2 and strategy == p["strategy"]
        cpa = [figures.cycles_per_guest_access(s) for s in summaries]
        mean, sd = sum(cpa) / 2, abs(cpa[0] - cpa[1]) / 2 ** 0.5
        half = math.tan(math.pi * 0.475) * sd / 2 ** 0.5     # t(0.975, 1) sd / sqrt(2)
        assert f">{mean:,.3f} ± {half:,.3f}<" in cells       # as emu sweep prints it
        # the same interval as emu sweep prints for the point
        printed = [line for line in format_grid(table, ["kvm.strategy",
                                                        "vm.0.process.0.workload.pages"])
                   .splitlines() if line.startswith(f"{strategy} ")
                   and f" {p['point']['vm.0.process.0.workload.pages']} " in line]
        assert f"{mean:,.3f} ± {half:,.3f}" in printed[0]
        assert p["figures"]["exits"][0] == sum(map(figures.exits, summaries)) / 2
    for _, title, _, _ in HEADLINE:
        assert f"<th>{html.escape(title)} (mean ± 95 % t-interval)</th>" in text
    # one line plot, against the one numeric grid key, with a panel per headline figure
    assert numeric_keys(res, points) == ["vm.0.process.0.workload.pages"]
    assert text.count("data:image/png;base64,") == 1
    assert "Against vm.0.process.0.workload.pages." in text
    assert "<td>gfn_to_pfn</td>" in text and '<h2 id="config">' in text


def test_sweep_report_from_a_csv_table_and_with_runs_missing(sweep_dir, tmp_path):
    d = tmp_path / "sweep"
    shutil.copytree(sweep_dir, d)
    rows = read_table(str(d))
    os.remove(d / "results.parquet")
    with open(d / "results.csv", "w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    shutil.rmtree(d / "runs" / rows[0]["run_id"])
    res = load_results(d)
    assert res["table"].endswith("results.csv") and res["missing"] == 1
    assert [p["point"]["vm.0.process.0.workload.pages"] for p in grid_points(res)] == \
        [16, 48, 16, 48]                      # typed back from the CSV's text
    # a run with no resume has no misses per resume: its point's figure is over
    # the other run, and says so (the page gave "runs 2" beside a figure of 1)
    other = next(r for r in rows[1:] if (r["kvm.strategy"], r["vm.0.process.0.workload.pages"])
                 == (rows[2]["kvm.strategy"], rows[2]["vm.0.process.0.workload.pages"])
                 and r["run_id"] != rows[2]["run_id"])
    path = d / "runs" / other["run_id"] / "summary.json"
    summary = json.loads(path.read_text(encoding="utf-8"))
    summary["repopulation"].update(misses_per_resume=None, resumes=0)
    path.write_text(json.dumps(summary), encoding="utf-8")
    text = open(write_report(d, plots=False), encoding="utf-8").read()
    assert text.count(" (n=1)</td>") == 1, text.count(" (n=1)")
    assert "1 listed there have no runs/ID/summary.json" in text
    assert re.search(r"<td>shadow</td><td>16</td><td class=\"n\">1 of 2</td>", text)
    assert "the sweep plans 8 runs over 4 grid points: 1 of its runs and 0 of its grid " \
        "points are not in this report" in text
    # an interrupted sweep: the table holds the runs of one grid point only; the
    # page said "1 grid point, 2 seeds each; 2 runs reported" as if that were all
    pages = rows[1]["vm.0.process.0.workload.pages"]
    kept = [r for r in rows[1:] if (r["kvm.strategy"], r["vm.0.process.0.workload.pages"])
            == (rows[1]["kvm.strategy"], pages)]
    with open(d / "results.csv", "w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator="\n")
        w.writeheader()
        w.writerows(kept)
    text = open(write_report(d, plots=False), encoding="utf-8").read()
    runs = f"{len(kept)} run" + ("s" if len(kept) > 1 else "")
    assert f"1 grid point, 2 seeds each; {runs} reported" in text
    assert (f"the sweep plans 8 runs over 4 grid points: {8 - len(kept)} of its runs and 3 of "
            "its grid points are not in this report") in text
    with open(d / "results.csv", "w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    for r in rows[1:]:
        shutil.rmtree(d / "runs" / r["run_id"])
    text = open(write_report(d), encoding="utf-8").read()
    assert "No run of this sweep is done yet" in text


def test_a_sweep_table_of_other_columns_is_refused_not_reported_empty(sweep_dir, tmp_path):
    """A results.csv damaged to another header, or to nothing, was read as a
    table with no row: "nothing to report", exit 0, and emu.load gave an empty
    DataFrame.  A table with the sweep's columns and no row is a sweep stopped
    before its first run: reported as such."""
    import warnings

    import emu
    d = tmp_path / "sweep"
    shutil.copytree(sweep_dir, d)
    rows = read_table(str(d))
    os.remove(d / "results.parquet")
    header = ",".join(rows[0]) + "\n"
    no_grid_key = ",".join(c for c in rows[0] if c != "kvm.strategy") + "\n"
    for text, column in [("a,b\n", "run_id"), ("", "run_id"),
                         (no_grid_key, "kvm.strategy")]:
        (d / "results.csv").write_text(text, encoding="utf-8")
        with pytest.raises(EmuError) as info:
            write_report(d, plots=False)
        assert str(info.value) == (f"report: {d / 'results.csv'}: no column {column!r}: not the "
                                   f"results table of this sweep (damaged, or another file)")
        with pytest.raises(EmuError, match="results.csv: (no column|cannot read)"):
            emu.load(d)
    (d / "results.csv").write_text(header, encoding="utf-8")
    assert "No run of this sweep is done yet" in open(write_report(d, plots=False),
                                                      encoding="utf-8").read()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert len(emu.load(d)) == 0


def test_a_design_label_is_shown_whole():
    """The longest labels emu gives its designs (a hypothetical machine, its
    era, handler, pfn source and host) are not cut in a report."""
    from emu.report.schema import short_labels
    label = ("hypothetical: direct-save-on-switch 67577927 (tid01, asm) + pfn-cache "
             "on tlb_index=hardware")
    assert short_labels([label]) == [label]


def test_a_label_of_100000_characters_is_shortened_quickly(results, tmp_path):
    d = tmp_path / "cmp"
    write_comparison(str(d), "kvm.strategy", results)
    data = json.loads((d / "comparison.json").read_text(encoding="utf-8"))
    data["runs"][0]["value"] = "x" * 100_000
    (d / "comparison.json").write_text(json.dumps(data), encoding="utf-8")
    t0 = time.perf_counter()
    text = open(write_report(d), encoding="utf-8").read()
    assert time.perf_counter() - t0 < 30          # it took a minute, and all memory
    labels = [label for label, _ in load_results(d)["runs"]]
    assert labels[1] == "direct" and len(labels[0]) <= LABEL_MAX and "…" in labels[0]
    assert "x" * 100 not in text


def test_a_long_comparison_title_is_cut_between_labels(comparison_dir, tmp_path):
    """The title lists whole labels, up to 200 characters of them with
    "… (N more)"; the heading's title attribute holds them all."""
    from emu.report.schema import join_labels
    assert join_labels(["shadow", "direct", "direct-save-on-switch"], 30) == \
        "shadow, direct, … (1 more)"
    assert join_labels(["shadow", "direct"], 30) == "shadow, direct"
    assert join_labels(["x" * 40, "y"], 10) == "x" * 40 + ", … (1 more)"
    d = tmp_path / "cmp"
    shutil.copytree(comparison_dir, d)
    labels = [f"direct {i} (swap-pid, C) with a longer label" for i in range(8)]

    def many(doc):
        doc["runs"] = [dict(doc["runs"][1], value=label) for label in labels]
    _edit_json(d / "comparison.json", many)
    page = open(write_report(d, plots=False), encoding="utf-8").read()
    start = "emu report: default, comparing kvm.strategy = "
    shown = ", ".join(labels[:4]) + ", … (4 more)"
    assert len(shown) <= 200 < len(", ".join(labels[:5]) + ", … (3 more)")
    assert f'<h1 title="{start}{", ".join(labels)}">{start}{shown}</h1>' in page
    assert f"<title>{start}{shown}</title>" in page


def test_a_notebook_comparison_says_each_runs_time_and_separates_thousands(results):
    """The caption of a Comparison in a notebook gives each run's simulated
    time (and seed) where they differ; cycles/access has a thousands separator."""
    from emu.analysis.results import Comparison
    from emu.run.scenario import Result
    (a, ra), (b, rb) = results
    other = dict(rb.summary, simulated_us=1000.0, seed=7, cycles_per_guest_access=37479.118)
    page = Comparison("kvm.strategy", [(a, ra), (b, Result(other, {}))])._repr_html_()
    caption = re.search(r"<caption>(.*?)</caption>", page).group(1)
    assert caption.endswith(f"on 1 x 440 CPU; seeds {ra.summary['seed']} / 7; "
                            f"{ra.summary['simulated_us']:,.1f} / 1,000.0 us simulated")
    assert '<td style="text-align:right">37,479.118</td>' in page
    real = Comparison("kvm.strategy", results)._repr_html_()      # one seed, two times
    assert (f"CPU; seed {ra.summary['seed']}; {ra.summary['simulated_us']:,.1f} / "
            f"{rb.summary['simulated_us']:,.1f} us simulated</caption>") in real


# -- headless Chromium ----------------------------------------------------------------------

def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _browse(path, tmp_path, *args):
    """Run headless Chromium on a local file; (returncode, stdout, stderr)."""
    exe = _chromium()
    profile = tmp_path / f"profile{len(list(tmp_path.iterdir()))}"
    cmd = [exe, "--headless", "--disable-gpu", "--no-sandbox", "--disable-dev-shm-usage",
           "--no-first-run", f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
           *args, "file://" + os.path.abspath(path)]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    return p.returncode, p.stdout, p.stderr


def _console_lines(stderr: str) -> list:
    """What the page wrote to the JavaScript console, errors included."""
    return [line for line in stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]


@pytest.mark.skipif(_chromium() is None,
                    reason="no chromium, chromium-browser or google-chrome binary on PATH "
                           "(install one, e.g. apt-get install chromium, to run this test)")
def test_report_renders_in_headless_chromium(comparison_html, runs, tmp_path):
    path, _ = comparison_html
    rc, dom, err = _browse(path, tmp_path, "--dump-dom")
    assert rc == 0, err[-2000:]
    assert "<title>emu report: default, comparing kvm.strategy = shadow, direct</title>" in dom
    assert dom.count("<table") >= 8 and "<td>gfn_to_pfn</td>" in dom
    assert html.escape(generate_reading(runs)[0]) in dom
    assert _console_lines(err) == [], _console_lines(err)
    # the check above can fail: a page with a script error is caught
    bad = tmp_path / "bad.html"
    bad.write_text("<!DOCTYPE html><title>x</title><script>notDefined();</script>", encoding="utf-8")
    rc, _, err = _browse(bad, tmp_path, "--dump-dom")
    assert rc == 0 and any("notDefined" in line for line in _console_lines(err))
    # a screenshot of the page is not blank
    shot = tmp_path / "shot.png"
    rc, _, err = _browse(path, tmp_path, f"--screenshot={shot}", "--window-size=1200,2400")
    assert rc == 0, err[-2000:]
    import matplotlib.image
    img = matplotlib.image.imread(str(shot))
    assert img.shape[:2] == (2400, 1200) and float(img[..., :3].std()) > 0.05


@pytest.mark.skipif(_chromium() is None,
                    reason="no chromium, chromium-browser or google-chrome binary on PATH "
                           "(install one, e.g. apt-get install chromium, to run this test)")
def test_sweep_report_renders_in_headless_chromium(sweep_html, tmp_path):
    path, text = sweep_html
    rc, dom, err = _browse(path, tmp_path, "--dump-dom")
    assert rc == 0, err[-2000:]
    assert _console_lines(err) == [], _console_lines(err)
    assert "<title>emu report: sweep of default over kvm.strategy × " \
           "vm.0.process.0.workload.pages</title>" in dom
    assert dom.count("<table") >= 3 and "(mean ± 95 % t-interval)</th>" in dom
    assert dom.count('src="data:image/png;base64,') == 1
    shot = tmp_path / "shot.png"
    rc, _, err = _browse(path, tmp_path, f"--screenshot={shot}", "--window-size=1200,1600")
    assert rc == 0, err[-2000:]
    import matplotlib.image
    img = matplotlib.image.imread(str(shot))
    assert img.shape[:2] == (1600, 1200) and float(img[..., :3].std()) > 0.05


@pytest.mark.parametrize("module", ["emu.report.schema", "emu.report.sweep"])
def test_doctests(module):
    import doctest
    import importlib
    result = doctest.testmod(importlib.import_module(module))
    assert result.failed == 0 and result.attempted > 0


def test_a_machine_no_kernel_shipped_is_named_so_in_every_view(tmp_path):
    """direct with the pfn cache never shipped (7924bd41 used get_user_pages):
    the report of its run and of its comparison, the comparison's notebook
    table and the command line's table name it hypothetical, not only its JSON."""
    pairs = compare(default_scenario(), "kvm.strategy", ["direct"], ["duration_ms=1"])
    ((_, result),) = pairs
    assert result.summary["design"]["hypothetical"]
    result.write(str(tmp_path / "run"))
    write_comparison(str(tmp_path / "cmp"), "kvm.strategy", pairs)
    for folder in ("run", "cmp"):
        page = (tmp_path / folder / write_report(tmp_path / folder)).read_text(encoding="utf-8")
        assert "direct (hypothetical)" in page.split("</title>")[0], folder
        assert "<th>direct</th>" not in page and "<th>direct (hypothetical)</th>" in page
    from emu import load
    assert "<th style=\"text-align:left\">direct (hypothetical)</th>" in \
        load(tmp_path / "cmp")._repr_html_()
    scenario = tmp_path / "s.toml"
    scenario.write_text("duration_ms = 1\n")
    for extra, rows in (([], ["kvm.strategy=direct (hypothetical)",
                              "kvm.strategy=shadow (hypothetical)"]),
                        (["--set", "kvm.pfn_source=gup"], ["kvm.strategy=direct",
                                                           "kvm.strategy=shadow"])):
        p = run_cli("compare", scenario, "--vary", "kvm.strategy=direct,shadow", "--wide",
                    *extra)
        assert p.returncode == 0, p.stderr
        table = p.stdout.split("\n\n")[0].splitlines()[2:]
        assert [line.split("  ")[0] for line in table] == rows


def test_a_study_s_description_renders_its_markup():
    import emu.study
    """The study pages showed ``440`` and **hypothetical** as typed."""
    from emu.report.html import _about, _marked
    assert _marked("a ``440`` core, **hypothetical**, :mod:`emu.sensitivity` <b>") == (
        "a <code>440</code> core, <strong>hypothetical</strong>, "
        "<code>emu.sensitivity</code> &lt;b&gt;")
    page = _about(emu.study.get("nonindexable_tlb"))
    assert "``" not in page and "**" not in page and "<code>440</code>" in page


def test_plots_take_the_runs_as_a_notebook_has_them(results):
    # a Result alone, Results without labels, a mapping: each named; anything
    # else refused in one line
    (la, a), (lb, b) = results
    name = lambda f: [t.get_text() for t in f.axes[0].get_yticklabels()]  # noqa: E731
    assert len(name(plots.cycle_breakdown(a))) == 1
    assert name(plots.cycle_breakdown([a, b])) == name(plots.cycle_breakdown(
        [(a.summary["design"]["label"], a), (b.summary["design"]["label"], b)]))
    assert name(plots.cycle_breakdown({la: a, lb: b})) == name(plots.cycle_breakdown(results))
    for bad in (5, [1, 2], {"a": 1}, "shadow"):
        with pytest.raises(EmuError, match=r"^plots take \[\(label, Result or summary\)\]"):
            plots.cycle_breakdown(bad)
    with pytest.raises(EmuError, match="a summary alone does not hold the timeline"):
        plots.occupancy_timeline(a.summary)


def test_the_reading_compares_designs_within_a_seed():
    # the best of one seed against the worst of another says nothing of the designs
    runs = [("shadow, seed=1", hand_summary(cpa=2.0)), ("direct, seed=1", hand_summary(cpa=1.0)),
            ("shadow, seed=2", hand_summary(cpa=30.0)), ("direct, seed=2", hand_summary(cpa=1.5))]
    for i, (_, s) in enumerate(runs):
        s["seed"] = 1 + i // 2
    lines = [x for x in generate_reading(runs) if "cheaper" in x]
    assert lines == [
        "With seed 1: per guest access, direct, seed=1 costs 1.0 vs 2.0 CPU cycles under "
        "shadow, seed=1: direct, seed=1 is 2.0× cheaper than shadow, seed=1.",
        "With seed 2: per guest access, direct, seed=2 costs 1.5 vs 30.0 CPU cycles under "
        "shadow, seed=2: direct, seed=2 is 20.0× cheaper than shadow, seed=2."]

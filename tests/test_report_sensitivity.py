"""The sensitivity section of ``emu report`` (emu.report.sensitivity).

The study is made with a toy runner whose metric is known by hand (so the
figures the page must show are known), written as ``emu sensitivity --out``
writes it, and reported alone or beside a real run.
"""

from __future__ import annotations

import base64
import html
import json
import re

import pytest

from emu.cli import main
from emu.costs import COSTS
from emu.errors import EmuError
from emu.params import default_scenario, scenario_from_dict, scenario_to_dict
from emu.report.html import write_report
from emu.run import run
from emu.sensitivity import run_sensitivity, write_sensitivity
from emu.sensitivity.report import write_files

X, Y = "gfn_to_pfn", "exit_light"          # X: 600 in 300..3000; Y only pads the design
#: The toys' scenario pins X and Y (their table defaults are fitted and may move).
PINNED = {X: {"value": 600, "low": 300, "high": 3000}, Y: {"value": 204, "low": 153, "high": 1020}}


def pinned_scenario():
    """The default scenario with X and Y pinned as :data:`PINNED`."""
    data = scenario_to_dict(default_scenario())
    data["costs"] = PINNED
    return scenario_from_dict(data)
PAGES = "vm.0.process.0.workload.pages"


def toy_runner(jobs, direct=32.0):
    """shadow: 0.5 pages + 0.001 x + 9.4 + 0.0001 y cycles per access (40 pages
    unless the job sets them); direct: ``direct``."""
    out = []
    for job in jobs:
        given = dict(o.split("=", 1) for o in job.overrides)
        pinned = {name: v["value"] for name, v in PINNED.items()}
        costs = {c.name: int(given.get(f"costs.{c.name}", pinned.get(c.name, c.default)))
                 for c in COSTS}
        pages = float(given.get(PAGES, 40))
        value = (0.5 * pages + 0.001 * costs[X] + 9.4 + 0.0001 * costs[Y]
                 if given["kvm.strategy"] == "shadow" else direct)
        out.append({"cycles_per_guest_access": value})
    return out


@pytest.fixture(scope="module")
def study():
    pytest.importorskip("SALib")
    return run_sensitivity(pinned_scenario(), "kvm.strategy=shadow,direct", costs=[X, Y],
                           method="morris", samples=4, break_even=f"{PAGES}=10,25,55,70",
                           runner=toy_runner)


def text_of(page: str) -> str:
    """The page's text, tags dropped, whitespace collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def images(page: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r'src="data:image/png;base64,([^"]+)"',
                                                    page)]


def test_a_study_directory_gets_the_section_alone(study, tmp_path, capsys):
    """At 40 pages and the default costs (x = 600, y = 204), shadow costs
    20 + 0.6 + 9.4 + 0.0204 = 30.0204 against direct's 32: shadow wins.  With
    x at its high end, 3000, shadow costs 32.4204 and loses: x flips the
    winner where 0.001 x + 29.4204 = 32, at x = 2579.6.  Along the pages,
    0.5 p + 10.0204 = 32 at p = 43.9592 (the ratio is linear in p, so the
    interpolation between 25 and 55 is exact); over the sampled vectors the
    crossing moves between x = 3000, y = 1020 (0.5 p + 12.502 = 32: p = 38.996)
    and x = 300, y = 153 (0.5 p + 9.7153 = 32: p = 44.5694).
    """
    write_sensitivity(tmp_path, study)
    assert main(["report", str(tmp_path)]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "report.html")
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    text = text_of(page)
    assert '<h2 id="sensitivity">' in page and '<h2 id="key-figures">' not in page
    assert f"ratio {30.0204 / 32:.4g}: shadow wins" in text
    share = 100 * study["win_share"]
    assert 0 < share < 100
    assert f"shadow beats direct in {share:.1f} % of the 12 cost vectors" in text
    assert "Costs that can flip the winner (one at a time): gfn_to_pfn." in text
    # the scenario sets gfn_to_pfn's value and range: the row says so
    row = re.search(r'<tr class="overridden"><td[^>]*>1</td><td>gfn_to_pfn \(range and '
                    r'value given\)</td>.*?</tr>', page).group(0)
    cells = [html.unescape(c) for c in re.findall(r"<td[^>]*>([^<]*)</td>", row)]
    assert "sampled over the plausible ranges but 2 given (--range, or the scenario's " \
        "costs): exit_light, gfn_to_pfn." in text
    assert cells[1:9] == ["gfn_to_pfn (range and value given)", "cycles", "600", "300", "3,000",
                          f"{29.7204 / 32:.4g}", f"{32.4204 / 32:.4g}", "yes, at 2,579.6"]
    be = study["break_even"]
    assert be["default"]["at"] == pytest.approx(43.9592)
    assert 38.996 - 1e-6 <= be["band"]["low"] < 43.9592 < be["band"]["high"] <= 44.5694 + 1e-6
    assert ("break-even along vm.0.process.0.workload.pages: shadow stops winning at "
            "43.9592 (default costs); ") in text
    assert f"{be['band']['low']:,.6g}..{be['band']['high']:,.6g} over 12 of 12" in text
    pngs = images(page)
    assert len(pngs) == 2 and all(p.startswith(b"\x89PNG") for p in pngs)
    assert pngs[0] == (tmp_path / "tornado.png").read_bytes()
    assert pngs[1] == (tmp_path / "break_even.png").read_bytes()
    # --no-plots: no figure, said so, as for a sweep (the two were embedded)
    elsewhere = tmp_path.parent / f"{tmp_path.name}-np.html"    # not inside the result
    assert main(["report", str(tmp_path), "--no-plots", "-o", str(elsewhere)]) == 0
    page = elsewhere.read_text(encoding="utf-8")
    assert images(page) == [] and "Plots left out (--no-plots)." in page
    assert '<h3 id="break-even">' in page and "Costs that can flip the winner" in page


def test_an_oat_study_without_plots(tmp_path):
    result = run_sensitivity(pinned_scenario(), "kvm.strategy=shadow,direct", costs=[X],
                             runner=lambda jobs: toy_runner(jobs, direct=40.0))
    write_sensitivity(tmp_path, result, plots=False)
    page = (tmp_path / write_report(tmp_path)).read_text(encoding="utf-8")
    text = text_of(page)
    assert "win_share: not computed" in text
    assert "Costs that can flip the winner (one at a time): none." in text
    assert "Break-even" not in text
    assert len(images(page)) == 1                       # the tornado, drawn for the page


def test_a_run_directory_with_a_study_gets_both(study, tmp_path):
    """A folder an earlier emu's write_sensitivity wrote into a run's (it
    now refuses to): the page shows both."""
    run(default_scenario(), ["duration_ms=0.5"]).write(tmp_path)
    write_files(tmp_path, study, plots=False)
    page = (tmp_path / write_report(tmp_path)).read_text(encoding="utf-8")
    assert page.index('<h2 id="key-figures">') < page.index('<h2 id="sensitivity">') \
        < page.index('<h2 id="plots">')
    assert '<h3 id="break-even">' in page


def test_a_corrupt_study_is_one_line(tmp_path):
    (tmp_path / "sensitivity.json").write_text('{"compare": ', encoding="utf-8")
    with pytest.raises(EmuError, match=r"sensitivity.json: corrupt JSON"):
        write_report(tmp_path)
    (tmp_path / "sensitivity.json").write_text(json.dumps({"metric": "x"}), encoding="utf-8")
    with pytest.raises(EmuError, match=r"not an emu sensitivity result \(no 'compare'\)"):
        write_report(tmp_path)


# -- Sobol': the indices with their intervals, and a note when the sample is too small -----

def sobol_result(samples: int, indices: dict) -> dict:
    """A hand-made Sobol' result: ``indices`` {cost: (S1, S1_conf, ST, ST_conf)},
    ranked by ST."""
    costs = [{"name": n, "indices": dict(zip(("S1", "S1_conf", "ST", "ST_conf"), v))}
             for n, v in indices.items()]
    ranking = sorted(indices, key=lambda n: -indices[n][2])
    return {"method": "sobol", "samples": samples, "costs": costs, "ranking": ranking}


def test_sobol_caution_known_answers():
    from emu.errors import command_line
    from emu.sensitivity.analysis import sobol_caution
    with command_line():
        fine = sobol_result(64, {"a": (0.6, 0.1, 0.7, 0.1), "b": (0.3, 0.05, 0.3, 0.05)})
        assert sobol_caution(fine) is None
        assert sobol_caution(dict(fine, method="morris")) is None
        # S1 above ST beyond S1's interval; the S1 adding up to 1.6 beyond theirs
        bad = sobol_result(16, {"a": (0.95, 0.1, 0.8, 0.1), "b": (0.65, 0.1, 0.75, 0.1)})
        assert sobol_caution(bad) == (
            "--samples 16 is too small for Sobol' indices to be trusted: S1 of a (0.95 ± 0.1) is "
            "above its ST (0.8); the S1 add up to 1.6 ± 0.14, above 1; raise --samples (e.g. "
            "to 64)")
        # within the intervals, but too wide to rank the costs by
        wide = sobol_result(8, {"a": (0.5, 0.6, 0.8, 0.3), "b": (0.1, 0.05, 0.1, 0.05)})
        assert sobol_caution(wide) == (
            "--samples 8 is too small for Sobol' indices to be trusted: the intervals of a, the "
            "most influential cost, are wider than half its ST (ST 0.8 ± 0.3, S1 0.5 ± 0.6); "
            "raise --samples (e.g. to 32)")
        # a sample size that is no power of 2: SALib warned of it on stderr with its
        # own file and line, and the note's advice (4 x 20 = 80) was no power of 2
        assert sobol_caution(dict(fine, samples=48)) == (
            "--samples 48 is not a power of 2, which Sobol' points need to keep their balance "
            "(use 64)")
        assert sobol_caution(dict(wide, samples=20)) == (
            "--samples 20 is not a power of 2, which Sobol' points need to keep their balance "
            "(use 32); --samples 20 is too small for Sobol' indices to be trusted: the intervals "
            "of a, the most influential cost, are wider than half its ST (ST 0.8 ± 0.3, S1 0.5 ± "
            "0.6); raise --samples (e.g. to 128)")

    # from Python, the note names the keyword that sets the sample size
    assert sobol_caution(dict(wide, samples=20)) == (
        "samples=20 is not a power of 2, which Sobol' points need to keep their balance "
        "(use 32); samples=20 is too small for Sobol' indices to be trusted: the intervals "
        "of a, the most influential cost, are wider than half its ST (ST 0.8 ± 0.3, S1 0.5 ± "
        "0.6); raise samples (e.g. to 128)")


def test_sobol_shows_st_and_s1_with_intervals_and_a_note_when_too_small(tmp_path, capsys):
    """emu sensitivity --method sobol prints ST and S1 with SALib's 95 %
    intervals and, for a sample too small, one ``emu: note:``; the report
    shows the same columns and the note."""
    pytest.importorskip("SALib")
    from emu.cli import build_parser
    from emu.cli.sensitivity import main_sensitivity
    from emu.errors import command_line
    from emu.sensitivity.analysis import sobol_caution
    from emu.sensitivity.report import index_text
    args = build_parser("sensitivity").parse_args(
        ["sensitivity", "--compare", "kvm.strategy=shadow,direct", "--method", "sobol",
         "--samples", "4", "--costs", f"{X},{Y}", "--out", str(tmp_path), "--wide"])
    with command_line():
        assert main_sensitivity(args, runner=toy_runner) == 0
    out, err = capsys.readouterr()
    result = json.loads((tmp_path / "sensitivity.json").read_text(encoding="utf-8"))
    with command_line():
        note = sobol_caution(result)
    assert note and note.startswith("--samples 4 is too small for Sobol' indices")
    assert err == f"emu: note: {note}\n"
    # 5 samples: no SALib warning on stderr, emu's note says it instead
    out5 = tmp_path.parent / f"{tmp_path.name}-5"
    args = build_parser("sensitivity").parse_args(
        ["sensitivity", "--compare", "kvm.strategy=shadow,direct", "--method", "sobol",
         "--samples", "5", "--costs", f"{X},{Y}", "--out", str(out5), "--wide"])
    with command_line():
        assert main_sensitivity(args, runner=toy_runner) == 0
    err5 = capsys.readouterr().err
    assert err5.startswith("emu: note: --samples 5 is not a power of 2") and \
        err5.count("\n") == 1 and "UserWarning" not in err5
    header = next(line for line in out.splitlines() if line.startswith("cost "))
    assert "ST ± 95 % CI" in header and "S1 ± 95 % CI" in header
    x = next(c for c in result["costs"] if c["name"] == X)
    i = x["indices"]
    assert index_text(x, "ST") == f"{i['ST']:.3g} ± {i['ST_conf']:.2g}"
    assert index_text(x, "S1") == f"{i['S1']:.3g} ± {i['S1_conf']:.2g}"
    row = next(line for line in out.splitlines() if line.startswith(X))
    assert f"{index_text(x, 'ST')} {index_text(x, 'S1')}" in " ".join(row.split())
    page = (tmp_path / write_report(tmp_path, plots=False)).read_text(encoding="utf-8")
    # written from Python, the page names the keywords, not the options
    api_note = note.replace("--samples 4", "samples=4").replace("--samples", "samples")
    assert f'<p class="note"><strong>Note</strong>: {html.escape(api_note)}.</p>' in page
    assert "Plots left out (plots=False)." in page and "--" not in api_note
    assert "<th>ST ± 95 % CI</th><th>S1 ± 95 % CI</th>" in page
    assert (f'<td class="n">{html.escape(index_text(x, "ST"))}</td>'
            f'<td class="n">{html.escape(index_text(x, "S1"))}</td>') in page

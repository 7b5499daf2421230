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
    row = re.search(r'<tr class="overridden"><td[^>]*>1</td><td>gfn_to_pfn</td>.*?</tr>',
                    page).group(0)
    cells = [html.unescape(c) for c in re.findall(r"<td[^>]*>([^<]*)</td>", row)]
    assert cells[1:9] == ["gfn_to_pfn", "cycles", "600", "300", "3,000",
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
    run(default_scenario(), ["duration_ms=0.5"]).write(tmp_path)
    write_sensitivity(tmp_path, study, plots=False)
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

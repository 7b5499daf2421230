"""The calibration against the published effects (tools/calibrate.py).

``tools/calibrate.py`` runs ``scenarios/boot_like.toml`` under five historical
designs; its effects must fall in the published bands with the default costs
(docs/calibration.md).
"""

from __future__ import annotations

import importlib.util
import math
import subprocess
import sys
from pathlib import Path

import pytest

from emu.costs import COSTS_BY_NAME, EXIT_PATH_CPI

ROOT = Path(__file__).resolve().parent.parent
TOOL = ROOT / "tools" / "calibrate.py"
_spec = importlib.util.spec_from_file_location("calibrate", TOOL)
calibrate = importlib.util.module_from_spec(_spec)
sys.modules["calibrate"] = calibrate
_spec.loader.exec_module(calibrate)


# -- the effects, with the default costs ------------------------------------------------------

@pytest.fixture(scope="module")
def default_effects():
    return calibrate.measure(seed=1, k=1.0, accesses=400_000)


def test_the_published_effects_hold_with_the_default_costs(default_effects):
    # 83aae4a8 (write only the modified shadows) and 49dd2c49 (no flush at
    # every privilege switch) each cut the time of the same work by about what
    # their commit messages say; 7924bd41's direct insertion makes every
    # lightweight exit cheaper than 2.6.28's shadow-modified and takes more
    # hardware TLB misses per access; and direct stays within the band.  A
    # model without the entry loops' difference, the guest-tid flush, the
    # shadow array's loops or the fitted exit costs fails here.
    eff = default_effects
    assert 0.075 <= eff.e1 <= 0.30, eff
    assert 0.15 <= eff.e2 <= 0.60, eff
    assert eff.e3 and eff.dearer == [] and eff.misses_e > eff.misses_d, eff
    assert 1.5 <= eff.ratio <= 5.0, eff


def test_the_report_marks_each_effect_against_its_band():
    eff = calibrate.Effects(e1=0.16, e2=0.70, dearer=[], misses_d=0.001, misses_e=0.002,
                            ratio=3.0)
    text = calibrate.report(eff).splitlines()
    assert text[0].startswith("e1 (83aae4a8):  16.0 %") and text[0].endswith("PASS")
    assert text[1].startswith("e2 (49dd2c49):  70.0 %") and text[1].endswith("FAIL")
    assert text[2].endswith("PASS") and text[3].endswith("PASS") and text[-1] == "FAIL"
    assert not calibrate.Effects(0.16, 0.3, ["DEC"], 0.001, 0.002, 3.0).e3


# -- the fit's logic, on a synthetic function with a known optimum ------------------------------

def test_the_fit_finds_a_known_optimum():
    # e1 falls as s grows and e2 rises as g grows, with e1 = 0.15 at s = 3.7
    # and e2 = 0.30 at g = 1500 (whatever the other parameter is)
    def effects(s, g):
        return 0.15 * (3.7 / s) ** 0.8, 0.30 * (g / 1500) ** 0.6, True

    s, g, e1, e2, steps = calibrate.fit(effects)
    assert abs(math.log(e1 / 0.15)) < calibrate.TOLERANCE
    assert abs(math.log(e2 / 0.30)) < calibrate.TOLERANCE
    assert s == pytest.approx(3.7, rel=0.03) and g == pytest.approx(1500, rel=0.04)
    assert 0 < steps <= calibrate.MAX_STEPS


def test_the_fit_keeps_to_plausible_points():
    # the same effects, but direct leaves the band above s = 2.5: the best
    # plausible point has s just under 2.5 (e1 above its target), g still fitted
    def effects(s, g):
        return 0.15 * (3.7 / s) ** 0.8, 0.30 * (g / 1500) ** 0.6, s <= 2.5

    s, g, e1, e2, steps = calibrate.fit(effects)
    assert 2.3 < s <= 2.5 and e1 > 0.15
    assert g == pytest.approx(1500, rel=0.04) and steps == calibrate.MAX_STEPS
    assert calibrate.fit(lambda s, g: (0.15, 0.3, False)) == (None, None, None, None, 0)


def test_the_objective_is_zero_at_the_targets_and_infinite_without_an_effect():
    assert calibrate.objective(0.15, 0.30) == 0
    assert calibrate.objective(0.30, 0.30) == pytest.approx(math.log(2) ** 2)
    assert calibrate.objective(0.0, 0.3) == math.inf and calibrate.objective(0.1, -0.1) == math.inf


def test_intensities_are_spaced_geometrically():
    assert calibrate.intensities("0.5:2:3") == pytest.approx([0.5, 1.0, 2.0])
    assert calibrate.intensities("1:1:1") == [1.0]


@pytest.mark.parametrize("bad", ["0.5:2", "a:2:3", "2:1:3", "0:1:3", "0.5:2:0", "1:2:1",
                                 "0.5:2:3:4"])
def test_bad_intensity_is_one_line_and_status_2(bad):
    proc = subprocess.run([sys.executable, str(TOOL), "--intensity", bad],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("tools/calibrate.py: ")
    assert "--intensity" in proc.stderr


def test_the_fitted_defaults_are_the_instruction_counts_times_s():
    s = EXIT_PATH_CPI
    for name in calibrate.SCALED:
        assert COSTS_BY_NAME[name].default == max(1, round(calibrate.BASE[name] * s)), name
        assert COSTS_BY_NAME[name].spread.kind == "fitted"
        assert COSTS_BY_NAME[name].source.startswith(f"fitted: {calibrate.BASE[name]} instructions")
    assert calibrate.scaled_costs(s, 2400) == {
        **{n: COSTS_BY_NAME[n].default for n in calibrate.SCALED}, "gfn_to_pfn": 2400}
    assert COSTS_BY_NAME["gfn_to_pfn"].default == 2400
    assert COSTS_BY_NAME["gfn_to_pfn"].spread.kind == "fitted"


def test_the_table_names_the_widest_run_of_intensities_and_the_ones_that_failed(monkeypatch):
    """A gap in the intensities is not bridged: k = 1 fails its band, so the range
    that holds is 2 .. 4, and k = 1 is named."""
    def measure(seed, k, accesses):
        ratio = 5.2 if k == 1 else 3.0            # outside the 1.5-5x band at k = 1
        return calibrate.Effects(0.15, 0.30, [], 0.01, 0.02, ratio)
    monkeypatch.setattr(calibrate, "measure", measure)
    text, good = calibrate.table([1, 2], [0.5, 1, 2, 4], 1000)
    assert good == [0.5, 2, 4]
    assert "all effects and the band hold for k = 2 .. 4 (3 of 4 intensities" in text
    assert "not at k = 1 " in text
    assert text.count("FAIL (band)") == 2

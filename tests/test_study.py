"""The studies (emu.study): each runs in quick mode and finds what it should.

Every study has ``study(quick) -> dict``; these tests call it with
``quick=True`` (under half a minute each) and assert the *direction* of the
study's main finding, not exact numbers, so that a change of a cost
estimate does not break them while a change of behaviour does.  Then the
ways a user runs one: ``emu study``, the scripts in ``scenarios/`` (against
the emu that is installed, a non-editable install included, and with none),
and ``emu report`` on what a study wrote.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

import emu.study
from emu.study.lib import Recorder
from clirun import assert_usage_error, run_cli
from emu.cli import main as emu_main
from emu.errors import EmuError
from emu.report.html import write_report

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCENARIOS = os.path.join(ROOT, "scenarios")
STUDIES = ("shadow_vs_direct", "context_switch_storm", "pfn_cache_sizing", "nonindexable_tlb",
           "mmio_heavy", "fastpath_profile", "repopulation_lesson")

pytestmark = pytest.mark.slow

_cache: dict = {}


def quick(name: str, **kw) -> dict:
    """``study(quick=True)`` of a study, run once per test session, with the
    runs of machines no kernel shipped and of the proposal named as
    :meth:`emu.study.Study.run_into` names them."""
    if name not in _cache:
        rec = Recorder()
        numbers = emu.study.get(name).module.study(True, rec, **kw)
        _cache[name] = dict(numbers, hypothetical_runs=rec.hypothetical,
                            proposal_runs=rec.proposal)
    return _cache[name]


def test_the_studies_are_listed_in_order():
    assert [s.name for s in emu.study.studies()] == list(STUDIES)
    with pytest.raises(EmuError, match="no study called 'nope' .*shadow_vs_direct"):
        emu.study.get("nope")


@pytest.mark.parametrize("name", STUDIES)
def test_every_study_is_documented_and_has_a_thin_script(name):
    study = emu.study.get(name)
    assert callable(study.module.study) and callable(study.module.report)
    assert study.question.endswith("?"), "the docstring opens with the question"
    assert "\n" not in study.question and "What to look at" in study.description
    with open(os.path.join(SCENARIOS, f"{name}.py"), encoding="utf-8") as f:
        script = f.read()
    assert f'launch("{name}")' in script and "sys.path" not in script
    assert study.question.split()[0] in script.split("\n")[0]


def test_shadow_vs_direct(tmp_path):
    r = quick("shadow_vs_direct", plot_dir=str(tmp_path))
    m = r["matrix"]
    for h in ("asm", "c"):
        # direct refills after every host switch (its vcpu_put flushed them);
        # shadow-modified (2.6.28, tid01) finds its entries restored
        assert m[f"direct/{h}"]["misses_per_resume"] > \
            3 * m[f"shadow-modified/{h}"]["misses_per_resume"]
        assert m[f"direct/{h}"]["flush_misses"] > 0
        assert m[f"shadow-modified/{h}"]["host_eviction_misses"] == 0
        assert m[f"shadow-modified/{h}"]["flush_misses"] == 0
        # 2.6.26's shadow (guest-tid) releases everything at each privilege switch
        assert m[f"shadow/{h}"]["host_eviction_misses"] == 0 < m[f"shadow/{h}"]["flush_misses"]
        # the shadow designs pay on every entry instead
        for d in ("shadow", "shadow-modified"):
            assert m[f"{d}/{h}"]["save_restore_share"] > m[f"direct/{h}"]["save_restore_share"]
            assert m[f"{d}/{h}"]["save_restore_share"] > 0.05
    # the assembly handler makes direct's refills cheaper
    assert m["direct/asm"]["cpa"] < m["direct/c"]["cpa"]
    # the guest resumes once each time the host task has run: in the measured
    # window, as often as the host wakes (the warm-up's resumes counted over the
    # whole run had made 1.8/ms of 10)
    wakeups = 1000 / r["matrix_point"]["period_us"]
    for d in ("direct/asm", "shadow-modified/asm"):
        assert m[d]["switches_per_ms"] == pytest.approx(wakeups, rel=0.1), d
    # the break-even against shadow-modified (past the cold start): with a large working
    # set direct wins at a low host switch rate and loses at a high one; a small one
    # stands every rate of the range
    sweep, periods, ws = r["sweep"], r["plan"]["periods"], r["plan"]["ws"]
    slow, fast, big, small = max(periods), min(periods), max(ws), min(ws)
    assert sweep[f"direct/asm/ws{big}/period{slow}"]["cpa"] < \
        sweep[f"shadow-modified/asm/ws{big}/period{slow}"]["cpa"]
    assert sweep[f"direct/asm/ws{big}/period{fast}"]["cpa"] > \
        sweep[f"shadow-modified/asm/ws{big}/period{fast}"]["cpa"]
    be = r["break_even_rate"][f"asm/ws{big}"]["cpa"]
    assert be["how"] == "interpolated" and 1000 / slow < be["switches_per_ms"] < 1000 / fast
    for period in periods[:-1]:
        assert sweep[f"direct/asm/ws{small}/period{period}"]["cpa"] < \
            sweep[f"shadow-modified/asm/ws{small}/period{period}"]["cpa"]
    # a smaller working set costs direct less per flush: its break-even, if any,
    # comes at faster switching
    be_small = r["break_even_rate"][f"asm/ws{small}"]["cpa"]
    assert be_small["how"] == "none in range" or \
        be_small["switches_per_ms"] > be["switches_per_ms"]
    # without its vcpu_put flush, direct's refills would grow with the pages the host
    # touches; with it they do not, and neither does shadow-modified's cost
    hp = r["plan"]["host_pages"]
    pages = r["host_pages_sweep"]
    assert pages[f"direct-noflush/host{max(hp)}"]["misses_per_resume"] > \
        pages[f"direct-noflush/host{min(hp)}"]["misses_per_resume"]
    assert pages[f"direct/host{max(hp)}"]["misses_per_resume"] == \
        pytest.approx(pages[f"direct/host{min(hp)}"]["misses_per_resume"], rel=0.05)
    shadow = [pages[f"shadow-modified/host{h}"]["cpa"] for h in hp]
    assert max(shadow) - min(shadow) < 0.02 * min(shadow)
    # the seed's question, asked of direct without its flush through emu.sensitivity:
    # where it stops beating shadow-modified along the host's pages, with the band
    band = r["break_even_band"]
    assert band["values"] == sorted(hp)
    assert band["default"]["direction"] == "A stops winning"      # direct-noflush
    assert min(hp) < band["default"]["at"] < max(hp)
    assert band["band"]["vectors"] > 0 and band["band"]["crossed"] > 0
    assert band["band"]["low"] <= band["band"]["high"]
    assert "shadow_mod_scan_per_entry" in band["ranking"]
    assert sorted(band["plots"]) == [
        "break_even.png", "break_even.svg", "tornado.png", "tornado.svg"]
    assert band["dir"] == "break_even"
    assert all((tmp_path / "break_even" / p).stat().st_size > 1000 for p in band["plots"])


def test_shadow_vs_direct_without_a_folder_leaves_none(tmp_path, monkeypatch):
    """Its band was drawn into a temporary folder left behind at every run,
    and the study named it as where the plots were."""
    import tempfile
    from emu.study.studies import shadow_vs_direct as svd
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()

    def drawn(p, rec, plot_dir):            # the band's sampled runs stood in for
        Path(plot_dir).mkdir(parents=True, exist_ok=True)
        for name in ("tornado.png", "break_even.png"):
            (Path(plot_dir) / name).write_bytes(b"png")
        return {"plots": [os.path.join(plot_dir, n) for n in ("tornado.png", "break_even.png")]}
    monkeypatch.setattr(svd, "break_even_band", drawn)
    assert svd.band_in({}, None, None) == {"plots": [], "dir": None}
    assert os.listdir(tmp_path / "tmp") == []
    band = svd.band_in({}, None, str(tmp_path / "study"))
    assert band["dir"] == "break_even" and len(band["plots"]) == 2
    assert sorted(os.listdir(tmp_path / "study" / "break_even")) == ["break_even.png",
                                                                      "tornado.png"]


def test_context_switch_storm():
    r = quick("context_switch_storm")
    pts = r["points"]
    for d in ("shadow", "shadow-modified", "direct", "direct-save-on-switch"):
        v = pts[f"440/{d}"]
        assert v["guest_pid_switches"] > 10
        if d == "shadow":
            # guest-tid (2.6.26): a PID change releases nothing (the old process's
            # shadows stop matching); each privilege switch releases everything
            assert v["guest_context_switch_misses"] == 0 < v["misses_by_cause"]["flush"]
        else:
            assert v["guest_context_switch_misses"] > 0, d
    # no design KVM shipped lets two VMs on one CPU see each other; 7924bd41 without
    # the _tlbia of its vcpu_put (hypothetical) does
    assert pts["440/direct-noflush"]["isolation_violations"] > 0
    for d in ("shadow", "shadow-modified", "direct", "direct-save-on-switch"):
        assert pts[f"440/{d}"]["isolation_violations"] == 0
    # every system call is two full entries: the shadow designs pay for each
    assert pts["440/shadow"]["save_restore_share"] > pts["440/shadow-modified"]["save_restore_share"] \
        > pts["440/direct-save-on-switch"]["save_restore_share"]
    # 2.6.26 refills its guest kernel's pages after every privilege switch, and
    # rewrites its 62 entries at every trap: in a storm of 100 us ticks it barely
    # leaves the cold start
    assert 100 * pts["440/shadow"]["guest_accesses"] < \
        pts["440/direct-save-on-switch"]["guest_accesses"]
    # each design as it ran (C, get_user_pages), and with the proposal's handler
    # and pfn cache: hypothetical, but for direct, which is the proposal
    assert r["hypothetical_runs"] == [f"440/{d} + asm" for d in
                                      ("shadow", "shadow-modified", "direct-save-on-switch")] \
        + ["440/direct-noflush"]
    assert r["proposal_runs"] == ["440/direct + asm"]
    for d in ("shadow-modified", "direct", "direct-save-on-switch"):
        shipped, fast = pts[f"440/{d}"], pts[f"440/{d} + asm"]
        # out of the cold start: its first touches are done, or nearly
        assert shipped["guest_accesses"] > 0, d
        assert shipped["misses_by_cause"]["compulsory"] < 0.01 * shipped["guest_misses"], d
        # a fill in C with get_user_pages costs several times the assembly one
        assert shipped["cycles_per_guest_access"] > 2 * fast["cycles_per_guest_access"], d
        assert shipped["isolation_violations"] == fast["isolation_violations"] == 0


def test_pfn_cache_sizing():
    r = quick("pfn_cache_sizing")
    pts = r["points"]
    pin, gup = pts["pin-all/asm"], pts["gup/asm"]
    assert pin["deferred_c_paths"] == 0 and pin["gfn_to_pfn_calls"] == 0
    assert pin["pinned_bytes"] == max(v["pinned_bytes"] for v in pts.values())
    assert pin["pinned_bytes"] == r["plan"]["memory_mb"] << 20
    assert pin["pfn_table_bytes"] > 0 and pin["startup_cycles"] > 0
    assert gup["deferral_share"] > 0.99               # every fill leaves assembly
    # direct as 7924bd41 ran it, --quick too: every fill a full exit to C, which
    # calls gfn_to_pfn itself; nothing to leave assembly from
    shipped = pts["gup/c"]
    assert list(pts)[0] == "gup/c" and "gup/c" not in r["hypothetical_runs"]
    assert shipped["deferral_share"] is None and shipped["deferred_c_paths"] == 0
    assert shipped["gfn_to_pfn_calls"] > 0
    assert shipped["cycles_per_guest_access"] > 2 * pts["pfn-cache-32/asm"]["cycles_per_guest_access"]
    shares = [pts[f"pfn-cache-{n}/asm"]["deferral_share"] for n in r["plan"]["sizes"]]
    assert all(a >= b for a, b in zip(shares, shares[1:])), shares
    assert shares[0] > 2 * shares[-1]
    costs = [gup["cycles_per_miss"]] + [pts[f"pfn-cache-{n}/asm"]["cycles_per_miss"]
                                        for n in r["plan"]["sizes"]]
    assert costs[0] > costs[-1] > pin["cycles_per_miss"]
    big = pts[f"pfn-cache-{max(r['plan']['sizes'])}/asm"]
    assert big["pinned_bytes"] < pin["pinned_bytes"] / 50


def test_nonindexable_tlb():
    r = quick("nonindexable_tlb")
    for st, msg in r["refusals"].items():
        assert msg.startswith(f"kvm.strategy: '{st}' cannot run with machine.tlb_index = "
                              "'hardware'") and "hardware picks" in msg
    (period,) = r["plan"]["host_period_us"]
    pts = {k.rsplit("/", 1)[0]: v for k, v in r["points"].items()}
    assert all(v["guest_accesses"] == r["plan"]["guest_accesses"] for v in pts.values())
    assert all(v["isolation_violations"] == 0 for v in pts.values())
    # the shadow TLB on the e500 can be laid, and is labelled hypothetical ...
    for st in ("shadow", "shadow-modified"):
        assert pts[f"e500 + ESEL/{st}"]["label"].startswith("hypothetical: ")
    # ... and costs more than every e500 design that ran, and than the 440's shadow
    shipped = [v for k, v in pts.items() if k.startswith("e500 + ESEL/e500-")]
    e500_shadow = pts["e500 + ESEL/shadow"]["cycles_per_guest_access"]
    assert all(e500_shadow > v["cycles_per_guest_access"] for v in shipped)
    assert e500_shadow > pts["440/shadow"]["cycles_per_guest_access"]
    # 46f43c6e flushes at every return to user mode; shadow IDs never flush here
    assert pts["e500 + ESEL/e500-flush-on-put"]["flush_misses"] > 0
    # ... save the guest's own: the _tlbie of each exec fault drops one guest entry,
    # and with it its shadows (one per PR value at most)
    sids = pts["e500 + ESEL/e500-shadow-ids"]
    assert 0 < sids["exec_faults"] <= sids["flush_misses"] <= 2 * sids["exec_faults"]
    # a core that never existed: every design on it is labelled hypothetical
    assert all(v["label"].startswith("hypothetical: ") for k, v in pts.items()
               if k.startswith("hardware index/"))
    assert "refused" in emu.study.get("nonindexable_tlb").module.report(r)


def test_mmio_heavy():
    DEVICES = emu.study.get("mmio_heavy").module.DEVICES
    r = quick("mmio_heavy")
    pts = r["points"]
    for v in pts.values():
        assert v["mmio_exits"] > 0 and v["qemu_cycles"] > 0
    for lab, v in pts.items():
        if lab.startswith("block/"):
            uart = pts["uart/" + lab.split("/", 1)[1]]
            assert v["round_trip_overhead_cycles"] > uart["round_trip_overhead_cycles"]
            assert v["qemu_cycles_per_mmio"] > uart["qemu_cycles_per_mmio"]
    # QEMU on a CPU of its own: no host switches on the vCPU's CPU, no QEMU evictions;
    # direct loses its entries at every heavyweight exit anyway (_tlbia at vcpu_put)
    one, two = pts["uart/1cpu/direct/every2000"], pts["uart/2cpu/direct/every2000"]
    assert two["mmio_per_ms"] > one["mmio_per_ms"]
    assert one["host_evicted_misses"] == 0 == two["host_evicted_misses"]
    assert one["flushed_misses"] > 0 and two["flushed_misses"] > 0
    # 2.6.26's shadow keeps its array across the exit to QEMU: it refills only after
    # the guest's privilege switches (guest-tid), far less than direct after each put
    assert 0 < 10 * pts["uart/2cpu/shadow/every2000"]["flushed_misses"] < two["flushed_misses"]
    assert pts["uart/2cpu/shadow/every2000"]["flushed_misses"] == \
        pts["uart/1cpu/shadow/every2000"]["flushed_misses"]
    assert one["cpu0_host_switch_cycles"] > two["cpu0_host_switch_cycles"]
    # each design as its kernel ran it (C, get_user_pages), on one CPU as the 440
    # is; the proposal beside them; every 2-CPU run hypothetical
    assert r["proposal_runs"] == [f"{d}/1cpu/direct + asm/every2000" for d in DEVICES]
    assert sorted(r["hypothetical_runs"]) == sorted(lab for lab in pts if "/2cpu/" in lab)
    # after each exit to QEMU, 7924bd41 refills the working set it flushed, a
    # get_user_pages at every fill: the round trip costs it several times what it
    # costs 2.6.26, which keeps its array, and the proposal, whose fills hit
    # the pfn cache
    shipped = pts["uart/1cpu/direct/every2000"]
    for other in ("uart/1cpu/shadow/every2000", "uart/1cpu/direct + asm/every2000"):
        assert shipped["round_trip_overhead_cycles"] > 4 * pts[other]["round_trip_overhead_cycles"]
    assert shipped["flushed_misses"] > 10 * pts["uart/1cpu/shadow/every2000"]["flushed_misses"]


def test_each_design_that_ran_is_named_by_its_commit():
    """A study's rows named a design as it shipped by its strategy alone
    ("gup/c", "440/direct"): every report now says which commit each is,
    where its label does not."""
    study = emu.study.get("pfn_cache_sizing")
    numbers = study.run_into(None, quick=True)
    assert numbers["shipped_runs"] == {"gup/c": "7924bd41 (tid01, C)"}
    assert set(numbers["shipped_runs"]).isdisjoint(numbers["hypothetical_runs"]
                                                   + numbers["proposal_runs"])
    text = study.report(numbers, None)
    assert "\n\nAs KVM shipped them: 7924bd41 (tid01, C): gup/c.\n\nHypothetical, " in text
    # a run whose label says its design already is not named twice
    said = dict(numbers, shipped_runs={"7924bd41 (tid01, C)/again": "7924bd41 (tid01, C)"})
    assert "As KVM shipped them" not in study.report(said, None)
    # a study written before the key was there reports as it did
    old = {k: v for k, v in numbers.items() if k != "shipped_runs"}
    assert "As KVM shipped them" not in study.report(old, None)


def test_fastpath_profile(tmp_path):
    r = quick("fastpath_profile", png_dir=str(tmp_path))
    pts = r["points"]
    for walk in ("linear", "hashed"):
        assert pts[f"c/{walk}/pfn-cache"]["cycles_per_miss"] > \
            pts[f"asm/{walk}/pfn-cache"]["cycles_per_miss"]
    for h in ("asm", "c"):
        # the guest TLB is full: a linear walk scans half of it or all of it
        assert pts[f"{h}/hashed/pfn-cache"]["walk_mean"] < \
            pts[f"{h}/linear/pfn-cache"]["walk_mean"] / 4
    assert pts["asm/linear/gup"]["per_miss"]["deferred_c_path"] > 0
    assert pts["asm/linear/pin-all"]["per_miss"]["deferred_c_path"] == 0
    assert pts["asm/linear/pin-all"]["per_miss"]["gfn_to_pfn"] == 0
    assert pts["asm/linear/gup"]["cycles_per_miss"] > pts["asm/linear/pin-all"]["cycles_per_miss"]
    # direct as 7924bd41 shipped it, --quick too: a full exit to C, which
    # calls gfn_to_pfn itself (nothing deferred), at every miss KVM fixes
    shipped = pts["c/linear/gup"]
    assert r["plan"]["configs"][0] == "c/linear/gup"
    assert "c/linear/gup" not in r["hypothetical_runs"] + r["proposal_runs"]
    assert shipped["per_miss"]["full_exit"] > 0 and shipped["per_miss"]["save"] == 0
    assert shipped["per_miss"]["deferred_c_path"] == 0 < shipped["per_miss"]["gfn_to_pfn"]
    assert shipped["step_counts"]["gfn_to_pfn"] == shipped["step_counts"]["hw_write"]
    assert shipped["cycles_per_miss"] > 2 * pts["asm/linear/pfn-cache"]["cycles_per_miss"]
    assert os.path.getsize(r["png"]) > 1000


def test_repopulation_lesson(tmp_path_factory):
    figures = tmp_path_factory.mktemp("lesson")
    r = quick("repopulation_lesson", plot_dir=str(figures))
    # the lesson records the occupancy timeline and draws its figures
    lesson = emu.study.get("repopulation_lesson").module
    assert lesson.make("direct", 8, 1.0)["sim"]["timeline"] is True
    assert r["figures"] == ["repopulation.png"] + [f"occupancy_{d}.png"
                                                   for d in lesson.OCCUPANCY_DESIGNS]
    import matplotlib.image
    for name in r["figures"]:
        img = matplotlib.image.imread(str(figures / name))
        assert img.shape[0] > 300 and img.shape[1] > 800, (name, img.shape)
    hp = r["plan"]["host_pages"]
    pts = r["points"]
    # without the vcpu_put flush the refills grow with the host's pages ...
    noflush = [pts["direct-noflush"][str(h)]["misses_after_resume"] for h in hp]
    assert noflush[-1] > noflush[0] + 5
    assert all(a <= b + 0.5 for a, b in zip(noflush, noflush[1:])), noflush
    # ... with it (7924bd41) the whole working set is refilled after every resume
    direct = [pts["direct"][str(h)]["misses_after_resume"] for h in hp]
    assert min(direct) >= r["plan"]["guest_pages"] and max(direct) - min(direct) < 1.0
    assert all(pts["direct"][str(h)]["host_eviction_per_resume"] == 0 for h in hp)
    # ... every one of its non-compulsory misses its flush's, which the cause
    # table shows (it had no flush column: every cause it showed was 0)
    for h in hp:
        assert pts["direct"][str(h)]["flush_per_resume"] == \
            pytest.approx(pts["direct"][str(h)]["non_compulsory_per_resume"])
    assert pts["direct-noflush"][str(max(hp))]["host_eviction_per_resume"] > 5
    text = lesson.report(r, width=200)
    assert "non-compulsory  flushed  host-evicted" in text
    for d in ("shadow", "shadow-modified", "direct-save-on-switch"):
        assert r["growth"][d] < 1.0, (d, r["growth"][d])      # no growth with the host's pages
        assert all(pts[d][str(h)]["host_eviction_per_resume"] == 0 for h in hp)
    # the refills come at once: the first positions after a resume miss most
    buckets = r["curves"]["direct"][str(max(hp))]
    assert buckets[0] > max(b for b in buckets[1:] if b is not None)
    # a bucket of positions no resume reached has no rate (None), never 0
    for d in lesson.DESIGNS:
        for h in hp:
            raw = r["_raw_curves"][d][h]
            for (lo, hi), rate in zip(lesson.BUCKETS, r["curves"][d][str(h)]):
                assert (rate is None) == (sum(raw["accesses"][lo:hi]) == 0)
    # direct-noflush never shipped: every table names it so, wherever it appears
    ran = emu.study.get("repopulation_lesson").run_into(None, quick=True)
    # every design runs with the asm handler and the pfn cache: only direct is then
    # a machine that was proposed (the proposal); the others never existed
    assert ran["hypothetical_runs"] == [f"{d}/host{h}" for h in hp for d in lesson.DESIGNS
                                        if d != "direct"]
    # the proposal's runs (direct + asm + pfn-cache) are named too: no kernel shipped it
    assert ran["proposal_runs"] == [f"direct/host{h}" for h in hp]
    assert emu.study.get("repopulation_lesson").report(ran, None).endswith(
        "Hypothetical, machines no kernel shipped: "
        + ", ".join(ran["hypothetical_runs"]) + ".\n"
        + "The proposal (direct + asm + pfn-cache), which no kernel shipped either: "
        + ", ".join(ran["proposal_runs"]) + ".")
    text = lesson.report(r, None)
    # (the first table's column, the cause table's rows, the curve's row, the growth)
    assert text.count("direct-noflush (hypothetical)") == 3 + len(hp)
    assert text.count("direct-noflush") == 3 + len(hp)


def test_the_lesson_shows_positions_without_accesses_as_no_rate(monkeypatch):
    """Positions no resume reached (0 misses over 0 accesses) are "-" in the
    lesson's table and a gap in its figure, not a miss rate of 0."""
    lesson = emu.study.get("repopulation_lesson").module
    window = lesson.WINDOW
    misses = [1] * 16 + [0] * (window - 16)
    accesses = [2] * 100 + [0] * (window - 100)        # every resume ran 100 accesses
    s = {"repopulation": {"misses": misses, "accesses": accesses}}
    assert lesson.curve(s) == [0.5, 0.0, 0.0, None, None]
    point = {"misses_after_resume": 16.0, "host_misses_per_resume": 1.0,
             "non_compulsory_per_resume": 0.0, "host_eviction_per_resume": 0.0,
             "self_eviction_per_resume": 0.0, "cycles_per_guest_access": 2.0}
    r = {"plan": {"host_pages": [8], "guest_pages": 24, "window": window},
         "points": {d: {"8": point} for d in lesson.DESIGNS},
         "curves": {d: {"8": lesson.curve(s)} for d in lesson.DESIGNS},
         "growth": {d: 0.0 for d in lesson.DESIGNS},
         "_raw_curves": {d: {8: {"misses": misses, "accesses": accesses}}
                         for d in lesson.DESIGNS}}
    text = lesson.report(r)
    assert "direct (the proposal: asm + pfn cache) 50.00% 0.00% 0.00% - -" in [
        " ".join(line.split()) for line in text.split("\n")]
    assert "(-: no resume ran that many guest accesses, so no rate)" in text
    drawn = []
    monkeypatch.setattr(lesson, "save_figure", lambda fig, *a: drawn.append(fig))
    lesson.plot(r, "unused")
    (_, curves) = drawn[0].axes
    ys = curves.get_lines()[0].get_ydata()
    assert list(ys[:7]) == [50.0, 0.0, 0.0, 0.0, 0.0, 0.0, 100 * 0 / 8]
    assert all(y != y for y in ys[7:])          # NaN from position 112 on: a gap


@pytest.mark.parametrize("name", ["context_switch_storm", "pfn_cache_sizing", "mmio_heavy",
                                  "fastpath_profile"])
def test_every_row_of_a_machine_no_kernel_shipped_is_marked(name):
    """Four studies named such runs only in a footnote under their tables."""
    numbers = quick(name)
    text = emu.study.get(name).module.report(numbers)
    rows = [line.split("  ")[0] for line in text.splitlines()]
    assert numbers["hypothetical_runs"]
    for label in numbers["hypothetical_runs"]:
        assert f"{label} (hypothetical)" in rows, label
        assert label not in rows
    for label in numbers["proposal_runs"]:
        assert f"{label} (proposal)" in rows and label not in rows, label


@pytest.mark.parametrize("value, quick", [("1", True), ("Yes", True), ("on", True),
                                          ("0", False), ("off", False), ("", False),
                                          ("abc", None), ("2", None)])
def test_emu_quick_is_on_off_or_refused(value, quick, monkeypatch):
    """EMU_QUICK=abc ran the quick version without a word: any value but a
    few meant on.  Now on, off, or one line, with --quick given or not."""
    from emu.cli.study import quick_from_env
    monkeypatch.setenv("EMU_QUICK", value)
    if quick is None:
        with pytest.raises(EmuError, match=rf"^EMU_QUICK='{value}': expected 1, true"):
            quick_from_env()
        assert emu_main(["study", "pfn_cache_sizing", "--quick"]) == 2
    else:
        assert quick_from_env() is quick


def test_a_script_runs_as_a_command(tmp_path):
    out = tmp_path / "out"
    env = dict(os.environ, EMU_QUICK="1")
    proc = subprocess.run([sys.executable, os.path.join(SCENARIOS, "pfn_cache_sizing.py"),
                           "--out", str(out)], cwd=str(tmp_path), env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "pin-all/asm" in proc.stdout
    results = json.loads((out / "results.json").read_text())
    assert results["quick"] is True and results["study"] == "pfn_cache_sizing"
    assert results["numbers"]["points"]["pin-all/asm"]["deferred_c_paths"] == 0
    runs = sorted(p.name for p in (out / "runs").iterdir())
    assert len(runs) == results["runs_count"] and runs
    assert (out / "runs" / runs[0] / "summary.json").exists()


def test_quick_flag_and_help(tmp_path):
    proc = subprocess.run([sys.executable, os.path.join(SCENARIOS, "mmio_heavy.py"), "--help"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "--quick" in proc.stdout and "--out" in proc.stdout
    # the script's usage is its own: it takes no NAME (emu study's usage said it did)
    assert proc.stdout.startswith("usage: mmio_heavy.py [-h] [--out DIR] [--force] [--quick] "
                                  "[--wide]\n")
    proc = subprocess.run([sys.executable, os.path.join(SCENARIOS, "mmio_heavy.py"),
                           "shadow_vs_direct"], capture_output=True, text=True, timeout=60)
    assert (proc.returncode, proc.stdout, proc.stderr) == (
        2, "", "emu: error: mmio_heavy.py: unrecognized arguments: shadow_vs_direct\n")


@pytest.mark.parametrize("args, line", [
    (["--quick"], "emu: error: --quick needs a study's NAME (emu study alone lists the studies)"),
    (["--out", "zz"],
     "emu: error: --out needs a study's NAME (emu study alone lists the studies)"),
    (["--force", "--quick"],
     "emu: error: --force and --quick need a study's NAME (emu study alone lists the studies)"),
])
def test_emu_study_refuses_the_options_of_a_run_without_a_name(args, line, capsys):
    """They were ignored, and the list printed."""
    assert emu_main(["study"] + args) == 2
    assert capsys.readouterr() == ("", line + "\n")


def test_emu_study_lists_the_studies_and_runs_one(tmp_path, capsys, monkeypatch):
    assert emu_main(["study", "--wide"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == list(STUDIES)
    assert all(line.endswith("?") for line in lines)
    monkeypatch.setenv("COLUMNS", "80")
    assert emu_main(["study"]) == 0
    fitted = capsys.readouterr().out
    assert max(map(len, fitted.splitlines())) <= 80 < max(map(len, lines))
    names = [line.split()[0] for line in fitted.splitlines() if not line.startswith(" ")]
    assert names == list(STUDIES)
    assert " ".join(fitted.split()) == " ".join(" ".join(lines).split())   # every question
    out = tmp_path / "out"
    assert emu_main(["study", "pfn_cache_sizing", "--quick", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("== pfn_cache_sizing (quick) ==") and "pin-all/asm" in printed
    assert json.loads((out / "results.json").read_text())["study"] == "pfn_cache_sizing"
    assert emu_main(["study", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no study called 'nope'" in err
    # --list lists them, as emu study alone does; with a NAME it is refused
    assert emu_main(["study", "--list", "--wide"]) == 0
    assert capsys.readouterr().out.splitlines() == lines
    assert emu_main(["study", "--list", "mmio_heavy"]) == 2
    assert "--list lists the studies; it takes no NAME" in capsys.readouterr().err


def test_a_study_fits_its_tables_to_the_terminal_and_wide_prints_them_whole(capsys,
                                                                           monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    assert emu_main(["study", "mmio_heavy", "--quick"]) == 0
    fitted = capsys.readouterr().out
    assert emu_main(["study", "mmio_heavy", "--quick", "--wide"]) == 0
    wide = capsys.readouterr().out
    assert max(map(len, fitted.splitlines())) <= 80 < max(map(len, wide.splitlines()))
    header = next(line for line in wide.splitlines() if line.startswith("device/cpus/design"))
    rows = wide.split(header)[1].splitlines()[2:10]
    for name in header.split("  "):
        assert name.strip() in fitted, name          # every column, in some block
    blocks = fitted.count("\ndevice/cpus/design ")
    assert blocks > 1
    for row in rows:                                  # every row, in every block, its
        label, *values = re.split(r"  +", row.strip())   # values in the same order
        assert fitted.count(f"\n{label}  ") == blocks
        got = [v for line in fitted.splitlines() if line.startswith(label + "  ")
               for v in re.split(r"  +", line.strip())[1:]]
        assert got == values, (label, got, values)


def test_emu_study_refuses_a_bad_out_before_running(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    assert emu_main(["study", "pfn_cache_sizing", "--quick", "--out",
                     str(tmp_path / "file")]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1
    assert emu_main(["study", "pfn_cache_sizing", "--quick", "--out", ""]) == 2
    assert capsys.readouterr().err == "emu: error: --out '': an empty path names no folder\n"


def test_a_study_that_needs_salib_says_so_before_its_first_run(tmp_path, capsys, monkeypatch):
    """shadow_vs_direct's last step samples through SALib: without it, the study
    ran every other step (3.5 s quick, minutes in full) and then lost them."""
    from emu.study import lib
    monkeypatch.setitem(sys.modules, "SALib", None)          # import SALib fails
    monkeypatch.setitem(sys.modules, "SALib.sample", None)
    ran = []
    monkeypatch.setattr(lib.Recorder, "run", lambda self, label, *a, **k: ran.append(label))
    out = tmp_path / "svd"
    assert emu_main(["study", "shadow_vs_direct", "--quick", "--out", str(out)]) == 2
    assert capsys.readouterr().err == ("emu: error: study shadow_vs_direct: its break-even band "
                                       "(Morris) needs SALib: pip install "
                                       "'emu[analysis]' (or pip install SALib)\n")
    assert ran == [] and not out.exists()


def _names(folder) -> list:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_emu_study_out_holding_another_result_is_refused_unless_force(tmp_path):
    scenario = tmp_path / "s.toml"
    scenario.write_text("duration_ms = 0.05\n")
    made = {"run": ["run", scenario], "comparison": ["compare", scenario, "--vary", "seed=1,2"],
            "lesson": ["study", "repopulation_lesson", "--quick"]}
    for name, argv in made.items():
        p = run_cli(*argv, "--out", tmp_path / name)
        assert p.returncode == 0, p.stderr
    lesson = _names(tmp_path / "lesson")
    assert "repopulation.png" in lesson and "runs" in lesson
    for name, held in (("run", "a run (strategy direct"), ("comparison", "a comparison of seed"),
                       ("lesson", "the study 'repopulation_lesson' (quick, ")):
        before = _names(tmp_path / name)
        assert_usage_error(run_cli("study", "pfn_cache_sizing", "--quick", "--out",
                                   tmp_path / name),
                           f"--out {tmp_path / name}: holds {held}",
                           "not the study 'pfn_cache_sizing': pass --force")
        assert _names(tmp_path / name) == before
    # the same study is replaced without --force; another one with it, as one set
    again = run_cli("study", "repopulation_lesson", "--quick", "--out", tmp_path / "lesson")
    assert again.returncode == 0, again.stderr
    p = run_cli("study", "pfn_cache_sizing", "--quick", "--out", tmp_path / "lesson", "--force")
    assert p.returncode == 0, p.stderr
    runs = json.loads((tmp_path / "lesson" / "results.json").read_text())["runs"]
    assert _names(tmp_path / "lesson") == sorted(
        ["results.json", "runs"] + [f"runs/{emu.study.lib.safe_label(r)}" for r in runs]
        + [f"runs/{emu.study.lib.safe_label(r)}/{f}" for r in runs
           for f in os.listdir(tmp_path / "lesson" / "runs" / emu.study.lib.safe_label(r))])
    assert not [n for n in os.listdir(tmp_path) if ".emu-" in n]


def test_force_and_quick_that_are_not_bools_are_refused(tmp_path):
    """force="no" is true: it replaced another kind of result, and quick="no"
    ran the quick version."""
    from emu.params import default_scenario
    from emu.run import run, write_comparison
    scenario = tmp_path / "s.toml"
    scenario.write_text("duration_ms = 0.05\n")
    p = run_cli("compare", scenario, "--vary", "seed=1,2", "--out", tmp_path / "cmp")
    assert p.returncode == 0, p.stderr
    before = _names(tmp_path / "cmp")
    result = run(default_scenario(), ["duration_ms=0.05"])
    calls = (lambda: result.write(tmp_path / "cmp", force="no"),
             lambda: emu.study.run("pfn_cache_sizing", quick=True, out=str(tmp_path / "cmp"),
                                   force="no"),
             lambda: write_comparison(tmp_path / "cmp", "seed", [("1", result)], force="no"))
    for call in calls:
        with pytest.raises(emu.EmuError, match=r"^force: expected True or False, got str 'no'$"):
            call()
    assert _names(tmp_path / "cmp") == before
    for quick in ("no", 1, None):
        with pytest.raises(emu.EmuError, match=r"^quick: expected True or False, got "):
            emu.study.run("pfn_cache_sizing", quick=quick, out=str(tmp_path / "new"))
    assert not (tmp_path / "new").exists()


def test_report_of_a_study_folder(tmp_path):
    out = tmp_path / "study"
    numbers = emu.study.run("pfn_cache_sizing", quick=True, out=str(out))
    text = open(write_report(out, plots=False), encoding="utf-8").read()
    assert "<title>emu report: study pfn_cache_sizing (quick)</title>" in text
    assert emu.study.get("pfn_cache_sizing").question.split(",")[0] in text
    # the study's own tables as HTML tables, and the key figures of every run
    report = emu.study.get("pfn_cache_sizing").report(numbers)
    header, rule, first = report.splitlines()[1:4]
    assert set(rule) == {"-", " "}
    assert "<thead><tr>" + "".join(f"<th>{h}</th>" for h in header.split("  ") if h.strip()) \
        in text.replace("&amp;", "&")
    assert f"<tr><td>{first.split('  ')[0].strip()}</td>" in text
    # its numbers folded, lists of numbers on one line
    assert "<details><summary>Every number the study found, as results.json holds it (JSON)" \
           "</summary>" in text
    runs = json.loads((out / "results.json").read_text())["runs"]
    for label in runs:                  # a machine no kernel shipped marked, as every table has it
        assert f"<td>{emu.study.lib.marked(label, numbers)}</td>" in text
    # a run folder removed: named, left out; numbers that do not fit: one line
    shutil.rmtree(out / "runs" / "gup_asm")
    text = open(write_report(out, plots=False), encoding="utf-8").read()
    assert "1 of them without a summary.json (left out below): gup/asm" in text
    data = json.loads((out / "results.json").read_text())
    data["numbers"] = {"points": {"x": 1}}
    (out / "results.json").write_text(json.dumps(data))
    with pytest.raises(EmuError, match=r"results.json: numbers: not what the study "
                                       r"pfn_cache_sizing writes"):
        write_report(out)


def test_report_of_the_lesson_embeds_its_figures_and_shows_no_rate_as_a_dash(tmp_path):
    """The lesson's figures are embedded (each byte for byte); its tables are
    HTML tables, a bucket without accesses a "-" cell; a file posing as a
    figure is refused in one line."""
    import base64
    import re
    out = tmp_path / "lesson"
    numbers = emu.study.run("repopulation_lesson", quick=True, out=str(out))
    page = open(write_report(out), encoding="utf-8").read()
    images = [base64.b64decode(m) for m in
              re.findall(r'src="data:image/png;base64,([^"]+)"', page)]
    assert sorted(images) == sorted((out / name).read_bytes() for name in numbers["figures"])
    for name in numbers["figures"]:
        assert f"<strong>{name}.</strong>" in page
    lesson = emu.study.get("repopulation_lesson").module
    big = str(max(numbers["plan"]["host_pages"]))
    for d in lesson.DESIGNS:
        cells = ["-" if x is None else f"{100 * x:.2f}%" for x in numbers["curves"][d][big]]
        assert f"<tr><td>{lesson.shown(d)}</td>" + "".join(f'<td class="n">{c}</td>'
                                                          for c in cells) \
            + "</tr>" in page
    assert "About this study" in page and "\n14,\n" not in page
    (out / "fake.png").write_text("not an image")
    with pytest.raises(EmuError, match=re.escape(f"report: {out / 'fake.png'}: not a PNG image")):
        write_report(out)


def test_a_script_without_emu_installed_says_how_to_install(tmp_path):
    # -S: no site-packages, so no emu; the script does not reach into the checkout
    proc = subprocess.run([sys.executable, "-S", os.path.join(SCENARIOS, "mmio_heavy.py"),
                           "--quick"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert "emu is not installed" in proc.stderr and "pip install ." in proc.stderr


def _source_copy(dest: str) -> None:
    """The checkout's source files (tracked and new, not ignored) copied into
    ``dest``: no build products, no compiled extension; the generated C file
    too, if there is one, so that the build need not run Cython again."""
    try:
        listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others",
                                 "--exclude-standard"], cwd=ROOT, capture_output=True,
                                timeout=60, check=True).stdout.decode().split("\0")
    except (OSError, subprocess.SubprocessError):
        listed = None
    if listed is None:
        shutil.copytree(ROOT, dest, ignore=shutil.ignore_patterns(
            ".git", "build", "dist", "*.egg-info", "*.so", "__pycache__", ".pytest_cache"))
    else:
        for name in filter(None, listed + ["emu/_fastpath.c"]):
            src = os.path.join(ROOT, name)
            if os.path.isfile(src):
                os.makedirs(os.path.dirname(os.path.join(dest, name)), exist_ok=True)
                shutil.copy2(src, os.path.join(dest, name))


def _run(cmd, **kw):
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)


def test_scripts_run_from_a_checkout_against_a_non_editable_install(tmp_path):
    """A wheel of the checkout, installed (not editable) in a fresh venv; a script
    of the checkout, whose own emu/ has no compiled extension, runs on it."""
    src, wheels, venv = tmp_path / "src", tmp_path / "wheels", tmp_path / "venv"
    _source_copy(str(src))
    assert not [n for n in os.listdir(src / "emu") if n.endswith(".so")]
    build = _run([sys.executable, "-m", "pip", "wheel", src, "--no-deps", "--no-build-isolation",
                  "-q", "-w", wheels], cwd=src, timeout=600)
    if build.returncode != 0:
        pytest.skip("cannot build a wheel here: "
                    + (build.stderr.strip().splitlines() or ["pip wheel failed"])[-1])
    (wheel,) = wheels.iterdir()
    made = _run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", venv],
                timeout=120)
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    if _run([python, "-m", "pip", "--version"], timeout=60).returncode != 0:
        assert _run([python, "-m", "ensurepip"], timeout=300).returncode == 0
    installed = _run([python, "-m", "pip", "install", "-q", "--no-deps", wheel], timeout=300)
    assert installed.returncode == 0, installed.stderr
    where = _run([python, "-c", "import emu; print(emu.__file__)"], cwd=tmp_path, timeout=60)
    assert where.stdout.strip().startswith(str(venv)), where
    out = tmp_path / "out"
    proc = _run([python, src / "scenarios" / "pfn_cache_sizing.py", "--quick", "--out", out],
                cwd=src, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "== pfn_cache_sizing (quick) ==" in proc.stdout and "pin-all/asm" in proc.stdout
    assert json.loads((out / "results.json").read_text())["quick"] is True


def test_the_source_distribution_holds_what_the_extensions_are_built_from(tmp_path):
    """``setup.py sdist`` of a clean copy of the checkout (what a package index
    serves, and what pip builds a wheel from) holds every source and
    dependency of each extension."""
    src = tmp_path / "src"
    _source_copy(str(src))
    made = _run([sys.executable, "setup.py", "-q", "sdist", "-d", tmp_path / "dist"],
                cwd=src, timeout=300)
    assert made.returncode == 0, made.stderr[-2000:]
    (archive,) = (tmp_path / "dist").glob("emu-*.tar.gz")
    with tarfile.open(archive) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    needed = {"emu/_fastpath.pyx", "emu/_fastpath.pxd", "emu/_streamgen.pxi", "emu/_hitscan.h",
              "emu/_cpu.h", "emu/_codes.pxi", "emu/codes.py", "emu/workload/traces/_lackey.pyx",
              "emu/workload/traces/_records.pyx", "emu/workload/traces/_records.h",
              "emu/data/ls.npz", "README.md"}
    assert needed <= names, sorted(needed - names)


def test_doctests():
    import doctest
    result = doctest.testmod(emu.study)
    assert result.failed == 0 and result.attempted > 0


def test_nonindexable_tlb_runs_the_shipped_designs_as_they_shipped():
    """Every run had the pfn cache, so the rows it called "as they ran" were
    hypothetical: each design now has its kernel's pfn source, the proposal
    the pfn cache, and only the machines no kernel shipped are hypothetical."""
    from emu.params import design
    from emu.run import resolve
    from emu.study.studies import nonindexable_tlb as ni
    shipped = {"440": {"shadow", "shadow-modified", "direct", "direct-save-on-switch"},
               "e500 + ESEL": {"e500-flush-on-put", "e500-shadow-ids"}}
    for core, machine, designs in ni.CORES:
        for name in designs:
            sc = resolve(ni.make(name, machine, 250, 1))
            d = design(sc.machine, sc.kvm)
            proposal = name == "direct + asm"
            assert d.hypothetical is not (name in shipped.get(core, ()) or
                                          (proposal and core == "440")), (core, name, d.label)
            # both e500 kernels kept a page reference per guest TLB0 entry
            assert sc.kvm.pfn_source == ("pfn-cache" if proposal else
                                         "guest-tlb-refs" if name.startswith("e500-") else "gup")


def test_fastpath_profile_names_its_chart_where_it_ends_up(tmp_path, capsys, monkeypatch):
    """It printed the chart's path in the temporary folder a study is written
    in before it takes its place (gone once it did), and without --out it
    left a temporary folder behind at every run."""
    import tempfile
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    out = tmp_path / "fp"
    assert emu_main(["study", "fastpath_profile", "--quick", "--out", str(out), "--wide"]) == 0
    text = capsys.readouterr().out
    assert "stacked bars: fastpath_profile.png in the study's folder" in text
    assert (out / "fastpath_profile.png").stat().st_size > 1000
    assert emu_main(["study", "fastpath_profile", "--quick", "--wide"]) == 0
    assert "stacked bars: none drawn (--out DIR draws fastpath_profile.png there)" in \
        capsys.readouterr().out
    assert os.listdir(tmp_path / "tmp") == []
    # its report embeds the chart; without it, says the chart is missing (it
    # said "The study drew no figure.")
    page = open(write_report(out), encoding="utf-8").read()
    assert page.count("<img") == 1 and "Not in the study's folder" not in page
    (out / "fastpath_profile.png").unlink()
    (out / "report.html").unlink()
    page = open(write_report(out), encoding="utf-8").read()
    assert "<img" not in page and "drew no figure" not in page
    assert "Not in the study's folder, though the study drew it: fastpath_profile.png." in page


def test_shadow_vs_direct_runs_the_c_handler_as_shipped_and_names_each_machine():
    """Every run had the pfn cache, so its C-handler rows, the designs as they
    shipped, were machines no kernel shipped, shown unmarked."""
    from emu.params import design
    from emu.run import resolve
    from emu.study.studies import shadow_vs_direct as svd
    for strategy in svd.STRATEGIES:
        for handler in svd.HANDLERS:
            sc = resolve(svd.make(strategy, handler, 8, 100, 1))
            d = design(sc.machine, sc.kvm)
            assert d.hypothetical is (handler == "asm" and strategy != "direct"), d.label
            assert svd._shown(strategy, handler).endswith(
                "" if handler == "c" else "(proposal)" if strategy == "direct"
                else "(hypothetical)")

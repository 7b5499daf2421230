"""Tests of emu.stats.figures: the derived figures, on hand-made and recorded summaries."""

from __future__ import annotations

import doctest
import json
from pathlib import Path

import pytest

import emu.stats.figures as figures
from emu.codes import CYCLE_CATEGORIES, EXIT_CATEGORIES, MISS_CAUSES, PROFILE_STEPS

GOLDEN = sorted((Path(__file__).parent / "data" / "golden").glob("*.json"))


def summary(**over) -> dict:
    """A small summary: 2 CPUs x 1,000 cycles, 400 guest accesses, 10 guest misses."""
    s = {
        "simulated_cycles": 1000, "cpus": 2, "guest_accesses": 400, "startup_cycles": 1334,
        "costs": {"clock_mhz": 667},
        "cycles": dict.fromkeys(CYCLE_CATEGORIES, 0) | {"guest": 1500, "save_restore": 300,
                                                         "fastpath": 120, "c_path": 60,
                                                         "gfn_to_pfn": 20},
        "exits": {c: {"count": 0, "sum": 0} for c in EXIT_CATEGORIES},
        "tlb": {"guest": {"misses": 10, "misses_by_cause": dict.fromkeys(MISS_CAUSES, 0)}},
        "repopulation": {"resumes": 4, "misses": [2, 1, 0, 1], "misses_per_resume": 1.0},
        "fastpath_profile": {st: {"count": 0, "cycles": 0} for st in PROFILE_STEPS},
        "memory_bytes": {"guest_tlb": 1024, "shadow_refs": 512, "pinned_pages": 8192},
    }
    s["exits"]["DTLBVIRT"] = {"count": 6, "sum": 600}
    s["exits"]["ITLBVIRT"] = {"count": 2, "sum": 150}
    s["exits"]["EMUL_TLBWE"] = {"count": 6, "sum": 900}
    s["exits"]["TIMEINGUEST"] = {"count": 99, "sum": 1}
    s["tlb"]["guest"]["misses_by_cause"].update({"compulsory": 3, "host-eviction": 7})
    s["fastpath_profile"]["deferred_c_path"] = {"count": 2, "cycles": 50}
    s.update(over)
    return s


def test_cpu_time():
    s = summary()
    assert figures.cpu_cycles(s) == 2000
    assert figures.cycles_per_guest_access(s) == 5.0
    assert figures.share(s, "save_restore") == 0.15
    assert figures.percent(s, "save_restore") == 15.0
    assert figures.per_guest_access(s, "save_restore") == 0.75
    assert figures.startup_us(s) == 2.0
    # after a warm-up the measured cycles are the denominator
    assert figures.share(summary(measured_cpu_cycles=600), "save_restore") == 0.5
    # nothing to divide by: no figure
    empty = summary(guest_accesses=0, cpus=0)
    assert figures.cycles_per_guest_access(empty) is None
    assert figures.share(empty, "guest") is None and figures.percent(empty, "guest") is None
    assert figures.per_guest_access(empty, "guest") is None


def test_exits():
    s = summary()
    assert list(figures.exit_counts(s)) == [c for c in EXIT_CATEGORIES if c != "TIMEINGUEST"]
    assert figures.exits(s) == 14                        # TIMEINGUEST is not an exit
    assert figures.commonest_exit(s) == ("DTLBVIRT", 6)  # the first of a tie, kernel order
    assert figures.virt_fills(s) == 8
    assert figures.exit_cycles(s, "DTLBVIRT", "ITLBVIRT") == 750
    assert figures.deferral_share(s) == 0.25


def test_misses():
    s = summary()
    assert figures.misses_per_resume(s) == 1.0
    assert figures.repopulation_rate(s) == [0.5, 0.25, 0.0, 0.25]
    assert figures.misses_per_resume_by_cause(s, "host-eviction") == 1.75
    assert figures.commonest_cause(s) == ("host-eviction", 7)
    assert figures.miss_percent(s, "compulsory") == 30.0
    assert figures.miss_path_cycles_per_miss(s) == 20.0
    assert figures.profile_cycles_per_miss(s, "deferred_c_path") == 5.0
    none = summary(repopulation={"resumes": 0, "misses": [0], "misses_per_resume": 0.0})
    assert figures.repopulation_rate(none) is None
    assert figures.misses_per_resume_by_cause(none, "flush") is None
    # no miss at all: the first cause in MISS_CAUSES order
    s["tlb"]["guest"]["misses_by_cause"] = dict.fromkeys(MISS_CAUSES, 0)
    assert figures.commonest_cause(s) == (MISS_CAUSES[0], 0)


def test_memory():
    s = summary()
    assert figures.memory_bytes_total(s) == 9728
    assert figures.memory_bytes_kvm(s) == 1536
    assert figures.pinned_bytes(s) == 8192
    assert figures.pinned_bytes(summary(memory_bytes={"guest_tlb": 1})) == 0


@pytest.mark.parametrize("path", GOLDEN, ids=[p.stem for p in GOLDEN])
def test_recorded_summaries_agree_with_their_figures(path):
    s = json.loads(path.read_text())
    assert figures.cycles_per_guest_access(s) == s["cycles_per_guest_access"]
    assert sum(figures.share(s, c) for c in CYCLE_CATEGORIES) == pytest.approx(1.0)
    assert sum(figures.repopulation_rate(s)) == pytest.approx(figures.misses_per_resume(s))
    assert figures.memory_bytes_kvm(s) + figures.pinned_bytes(s) == figures.memory_bytes_total(s)


def test_doctests():
    assert doctest.testmod(figures).failed == 0

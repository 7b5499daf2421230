"""emu.stats: the summary and tables come from a snapshot, and from nothing else.

The snapshots here are written by hand, so each figure below is derived in
the comments from the counters given.
"""

from __future__ import annotations

import numpy as np

from emu.codes import CAUSE, CYCLE_BUCKETS, CYCLES, EXIT, STEP, TLB
from emu.engine import counter_arrays
from emu.stats import ContextCounters, CpuCycles, ProcessFigures, Snapshot, VmFigures, collect
from emu.stats.counters import COUNTERS, ctx_arrays

WINDOW = 4


def counters(*parts: dict) -> dict:
    """Zero counters, with (array name, index) -> value set from ``parts``."""
    arrays = dict(ctx_arrays(64, WINDOW), **counter_arrays())
    out = {name: arrays[name] for name in COUNTERS}
    for (name, index), value in (kv for part in parts for kv in part.items()):
        out[name][index] = value
    return out


def exit_counts(category: str, count: int, total: int, lo: int, hi: int) -> dict:
    b = 4 * EXIT[category]
    return {("exits", b): count, ("exits", b + 1): total, ("exits", b + 2): lo,
            ("exits", b + 3): hi}


def snapshot() -> Snapshot:
    v0 = counters(exit_counts("DTLBVIRT", 2, 300, 100, 200),
                  {("tlb", TLB["hits"]): 90, ("tlb", TLB["misses"]): 10,
                     ("causes", CAUSE["compulsory"]): 10, ("exit_sumsq", EXIT["DTLBVIRT"]): 50_000,
                     ("profile", 2 * STEP["hw_write"]): 2,
                     ("profile", 2 * STEP["hw_write"] + 1): 60,
                     ("profile_hist", STEP["hw_write"] * len(CYCLE_BUCKETS) + 5): 2,
                     ("walk_scan", 64): 7, ("walk_scan", 66): 3,
                     ("repop_miss", 0): 3, ("repop_access", 0): 4})
    v1 = counters(exit_counts("DTLBVIRT", 1, 80, 80, 80),
                  {("tlb", TLB["hits"]): 30, ("tlb", TLB["misses"]): 10,
                     ("causes", CAUSE["host-eviction"]): 10, ("repop_miss", 0): 1,
                     ("repop_access", 0): 4})
    host = counters({("tlb", TLB["hits"]): 5, ("tlb", TLB["misses"]): 5,
                       ("causes", CAUSE["compulsory"]): 5})
    cycles = np.zeros(len(CYCLES), np.int64)
    cycles[CYCLES["guest"]], cycles[CYCLES["idle"]] = 700, 300
    return Snapshot(
        clock_mhz=100, simulated_cycles=1000, warmup_cycles=0, repopulation_window=WINDOW,
        contexts=[ContextCounters(0, "vm0.vcpu0", "vcpu", v0, resumes=2),
                  ContextCounters(1, "vm0.vcpu1", "vcpu", v1, resumes=2),
                  ContextCounters(2, "noise", "host_task", host, page_faults=7)],
        cpus=[CpuCycles(0, cycles)],
        vms=[VmFigures(0, 2, 40, 3, 11, 9, {"pfn_cache": 256})],
        vcpu_memory_bytes={"shadow_refs": 512, "guest_tlb": 1024},
        processes=[ProcessFigures(0, 0, 1, 80, 12, 3, 5), ProcessFigures(0, 1, 2, 40, 8, 2, 4)])


def test_the_summary_is_formulas_over_the_snapshot():
    s, tables = collect(snapshot())
    g = s["tlb"]["guest"]
    # the two vCPUs: 120 hits + 20 misses = 140 accesses
    assert (g["hits"], g["misses"], g["accesses"]) == (120, 20, 140)
    # the guest accesses are the processes' (80 + 40), not the TLB's hits (which
    # count the guest kernel's accesses too)
    assert g["miss_rate"] == 20 / 140 and s["guest_accesses"] == 120
    assert [p["guest_accesses"] for p in s["processes"]] == [80, 40]
    assert s["processes"][1] == {"vm": 0, "process": 1, "pid": 2, "guest_accesses": 40,
                                 "tlb_misses": 8, "guest_tlb_misses": 2, "page_faults": 4}
    assert s["time_to_work_cycles"] is None and s["time_to_work_us"] is None
    assert s["tlb"]["misses_by_cause"]["compulsory"] == 15        # 10 guest + 5 host
    # exits merge: count 3, sum 380, the smallest min and the largest max
    d = s["exits"]["DTLBVIRT"]
    assert (d["count"], d["sum"], d["min"], d["max"]) == (3, 380, 80, 200)
    assert d["mean_us"] == 380 / 3 / 100
    # repopulation: 4 misses over 4 resumes
    assert s["repopulation"]["misses"][0] == 4 and s["repopulation"]["misses_per_resume"] == 1.0
    # memory: per-vCPU state x 2 vCPUs, plus the VM's
    assert s["memory_bytes"] == {"guest_tlb": 2048, "pfn_cache": 256, "shadow_refs": 1024}
    assert s["host_page_faults"] == 3 + 7 and s["guest_page_faults"] == 9
    assert s["cycles"]["guest"] == 700 and s["measured_cpu_cycles"] == 1000
    # 2 writes of 16..31 cycles (bucket 5); 7 walks of 64 entries, 3 of 129..256
    assert s["fastpath_profile"]["hw_write"] == {"count": 2, "cycles": 60, "mean": 30.0,
                                                 "hist": {"16": 2}}
    assert s["fastpath_profile"]["walk"]["entries_hist"] == {"64": 7, "129": 3}
    assert "miss_log" not in s
    assert [r["context"] for r in tables["tlb"]] == ["vm0.vcpu0", "vm0.vcpu1", "noise"]
    assert [r["kind"] for r in tables["tlb"]] == ["vcpu", "vcpu", "host_tasks"]
    assert [(r["vcpu"], r["count"]) for r in tables["exits"]] == [("vm0.vcpu0", 2),
                                                                  ("vm0.vcpu1", 1)]


def test_time_to_work_is_the_cycle_the_work_was_done():
    snap = snapshot()
    snap.work_done_at = 900                       # at 100 MHz: 9 us
    s, _ = collect(snap)
    assert (s["time_to_work_cycles"], s["time_to_work_us"]) == (900, 9.0)


def test_no_resume_counted_is_no_misses_per_resume_not_zero():
    """A run whose counted window holds no resume reported 0.0 misses per
    resume: printed as measured, and averaged into a sweep point's mean."""
    from emu.report.text import key_figures
    from emu.run import run
    from emu.run.table import format_grid
    s = run({"duration_ms": 2, "kvm": {"pfn_source": "gup"}}, ["sim.warmup_ms=1"]).summary
    assert s["repopulation"]["resumes"] == 0 and s["repopulation"]["misses_per_resume"] is None
    assert key_figures(s)["misses/resume"] == "-"
    t = run({"duration_ms": 2, "kvm": {"pfn_source": "gup"}}).summary
    assert t["repopulation"]["resumes"] > 0
    rows = [{"w": "a", "misses_per_resume": v} for v in (None, t["repopulation"]["misses_per_resume"])]
    table = format_grid(rows, ["w"], 200).splitlines()
    assert f"{t['repopulation']['misses_per_resume']:.1f} ± " not in table[3]     # n = 1: no interval
    assert f" {t['repopulation']['misses_per_resume']:.1f} " in table[3]

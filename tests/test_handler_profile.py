"""The miss handler's profile as a distribution, and the per-miss log.

The histograms count each step's occurrences by cycles (log2 buckets) and
the walks by guest TLB entries scanned; the log keeps one row per guest TLB
miss.  Both backends keep them alike (tests/test_engine.py runs them over
random streams); here, hand-derived cases and a whole run.
"""

from __future__ import annotations

import numpy as np
import pytest

import emu
from emu import codes, engine
from emu.codes import CYCLE_BUCKETS, SCAN_BUCKETS, STEP, cycle_bucket, scan_bucket
from emu.costs import CostTable
from emu.run import run
from emu.run import table as results_table

FP, REF = engine.get("cython"), engine.get("reference")
IMPLS = pytest.mark.parametrize("impl", [FP, REF], ids=["cython", "reference"])
EA = 0x2000_0000


def test_the_buckets_are_named_by_their_smallest_value():
    for value in (0, 1, 2, 3, 4, 7, 8, 1197, 3100, 1 << 22, 1 << 40):
        i = cycle_bucket(value)
        low = int(CYCLE_BUCKETS[i])
        assert low <= value and (i + 1 == len(CYCLE_BUCKETS) or value < int(CYCLE_BUCKETS[i + 1]))
    # one bucket per count up to the 440's 64 entries, then 65..128, 129..256, ...
    assert [SCAN_BUCKETS[scan_bucket(n)] for n in (0, 1, 10, 64, 65, 128, 129, 528, 99_999)] == \
        ["0", "1", "10", "64", "65", "65", "129", "513", "2049"]
    assert cycle_bucket(1197) == 11 and CYCLE_BUCKETS[11] == "1024"


def one_miss(impl, gi: int, hashed: int = 0, log: bool = True):
    """A vCPU context whose guest TLB holds EA's page at entry ``gi`` (-1: nowhere),
    asm handler, pin-all: one access, one miss.  Returns (arrays, log rows)."""
    tlb = impl.BookeTLB(64, 64, "round-robin", 62)
    cpu = impl.VirtCPU(tlb, None, False, np.zeros(len(codes.CYCLE_CATEGORIES), np.int64),
                       np.zeros(2, np.uint8))
    gtlb = impl.BookeTLB(64, 64, "none")
    if gi >= 0:
        gtlb.write(gi, EA, 12, 1, 0, 0x401 << 12, 0, -1)
    arrays = {"slot_base": np.array([0x400], np.int64), "slot_npages": np.array([256], np.int64),
              "pin": 0x10000 + np.arange(256, dtype=np.int64), "gref": np.full(64, -1, np.int64),
              "hwref_gi": np.full(64, -1, np.int32), "host_pt": np.full(1, -1, np.int32),
              "mod": np.zeros(64, np.uint8), "repop_miss": np.zeros(4, np.int64),
              "repop_access": np.zeros(4, np.int64)}
    ctx = impl.Ctx(1, arrays, gtlb, None, None, codes.STRATEGY["direct"], codes.HANDLER["asm"],
                   hashed, codes.PFN_SOURCE["pin-all"])
    ctx.set_costs(dict(CostTable({}).to_dict(), entry_base=0, entry_per_mod=0))
    ctx.guest_pr, ctx.guest_pid = 1, 1
    rows, count = np.zeros(4, impl.MISS_DTYPE), np.zeros(1, np.int64)
    if log:
        ctx.set_miss_log(rows, count)
        ctx.log_clock = 5000
    cpu.cycles_arr[codes.CYCLES["guest"]] = 77
    ctx.run_virt(cpu, np.array([EA + 8], np.uint32), np.array([1], np.uint8), 0, 1 << 40)
    return arrays, rows[:int(count[0])]


@IMPLS
@pytest.mark.parametrize("gi, hashed, scanned", [(9, 0, 10), (63, 0, 64), (-1, 0, 64),
                                                 (9, 1, 0)])
def test_a_walk_lands_in_the_bucket_of_the_entries_it_scanned(impl, gi, hashed, scanned):
    arrays, rows = one_miss(impl, gi, hashed)
    c = CostTable({})
    assert arrays["walk_scan"].sum() == 1 and arrays["walk_scan"][scanned] == 1
    # a linear walk costs asm_walk_per_entry per entry scanned: its cycle bucket
    walk = c["asm_walk_hashed"] if hashed else c["asm_walk_per_entry"] * scanned
    hist = arrays["profile_hist"].reshape(len(codes.PROFILE_STEPS), len(CYCLE_BUCKETS))
    assert hist[STEP["walk"]].sum() == 1 and hist[STEP["walk"], cycle_bucket(walk)] == 1
    assert arrays["profile"][2 * STEP["walk"] + 1] == walk
    # the row: when (the clock plus the CPU's cycles), where, what the walk did, each step
    (row,) = rows
    assert (row["time"], row["ea"], row["ctx"], row["scanned"]) == (5000 + 77, EA + 8, 1, scanned)
    assert codes.MISS_OUTCOMES[row["outcome"]] == ("filled" if gi >= 0 else "guest_miss")
    assert codes.MISS_CAUSES[row["cause"]] == "compulsory"
    assert list(row["steps"]) == list(arrays["profile"][1::2])


@IMPLS
def test_every_step_is_in_its_histogram(impl):
    arrays, _ = one_miss(impl, 9, log=False)
    hist = arrays["profile_hist"].reshape(len(codes.PROFILE_STEPS), len(CYCLE_BUCKETS))
    assert list(hist.sum(axis=1)) == list(arrays["profile"][0::2])
    # an asm fill runs each of its seven steps once, each at its cost's bucket
    c = CostTable({})
    for step in ("save", "gpa", "memslot", "pfn_lookup", "hw_write", "restore"):
        assert hist[STEP[step], cycle_bucket(c["asm_" + step])] == 1, step
    assert hist.sum() == 7


# -- a whole run ------------------------------------------------------------------------------

RUN = ["duration_ms=3", "kvm.strategy=shadow", "kvm.handler=asm", "sim.miss_log=true"]
#: a design whose emulated tlbwe calls gfn_to_pfn too (it maps a host-safe
#: entry as the guest writes it): those calls are no miss's, and the
#: profile counted them (175 calls in the log, 297 in the profile)
GUP_RUN = ["duration_ms=3", "kvm.strategy=direct-save-on-switch", "kvm.handler=c",
           "kvm.pfn_source=gup", "sim.miss_log=true"]


@pytest.fixture(scope="module", params=[RUN, GUP_RUN], ids=["shadow-asm", "gup-c"])
def logged(request):
    return run({}, overrides=request.param)


def test_the_histograms_sum_to_the_step_counts(logged):
    prof = logged.summary["fastpath_profile"]
    for step, p in prof.items():
        assert sum(p["hist"].values()) == p["count"], step
        assert all(n > 0 for n in p["hist"].values())
    assert sum(prof["walk"]["entries_hist"].values()) == prof["walk"]["count"] > 0
    df = logged.frames()["profile_hist"]
    by = df[df["measure"] == "cycles"].groupby("step", observed=True)["count"].sum()
    assert {s: int(n) for s, n in by.items()} == {s: p["count"] for s, p in prof.items()
                                                  if p["count"]}
    # each occurrence lies in its bucket: the cycles lie between the bounds' sums
    for step, p in prof.items():
        rows = df[(df["step"] == step) & (df["measure"] == "cycles")]
        lo = (rows["low"] * rows["count"]).sum()
        hi = (rows["high"].fillna(np.inf) * rows["count"]).sum()
        assert lo <= p["cycles"] <= hi, step


def test_the_log_has_one_row_per_guest_miss(logged):
    s, log = logged.summary, logged.miss_log
    misses = s["tlb"]["guest"]["misses"]
    assert s["miss_log"] == {"rows": misses, "dropped": 0} and len(log["time"]) == misses
    prof = s["fastpath_profile"]
    # steps that run only inside a miss's handler add up to the profile
    for step in ("save", "walk", "gpa", "memslot", "pfn_lookup", "deliver", "deferred_c_path",
                 "gfn_to_pfn"):
        assert log[f"{step}_cycles"].sum() == prof[step]["cycles"], step
    outcomes = dict(zip(*np.unique(log["outcome"], return_counts=True)))
    ex = s["exits"]
    assert outcomes.get("guest_miss", 0) == ex["ITLBREAL"]["count"] + ex["DTLBREAL"]["count"]
    assert outcomes.get("filled", 0) + outcomes.get("deferred", 0) + \
        outcomes.get("machine_check", 0) == ex["ITLBVIRT"]["count"] + ex["DTLBVIRT"]["count"]
    # the asm handler defers to C what it cannot fill; the C handler's
    # "deferred" fills are those that went through gfn_to_pfn
    asm = s["config"]["kvm"]["handler"] == "asm"
    assert outcomes.get("deferred", 0) == prof["deferred_c_path" if asm else "gfn_to_pfn"]["count"]
    walks = log["walk_entries"]
    assert walks.min() >= 1 and walks.max() <= 64
    assert (np.diff(log["time"]) >= 0).all() and log["time"][-1] <= s["simulated_cycles"]
    assert np.allclose(log["time_us"], log["time"] / s["costs"]["clock_mhz"])
    assert set(log["vcpu"]) == {"vm0.vcpu0"}


def test_the_log_is_the_same_on_both_backends():
    ov = ["duration_ms=1", "kvm.strategy=shadow-modified", "sim.miss_log=true",
          "sim.miss_log_max=40"]
    a, b = (run({}, overrides=ov + [f"sim.backend={be}"]) for be in engine.BACKENDS)
    assert a.summary["miss_log"] == b.summary["miss_log"]
    assert a.summary["miss_log"]["dropped"] > 0
    for col in a.miss_log:
        assert list(a.miss_log[col]) == list(b.miss_log[col]), col
    assert a.summary["fastpath_profile"] == b.summary["fastpath_profile"]


@pytest.mark.parametrize("strategy, most", [("e500-shadow-ids", 2 + 16),
                                             ("e500-flush-on-put", 256 + 16)])
def test_the_walk_counts_the_entries_its_cost_counts(strategy, most):
    # the e500 @0164c0f0 walk reads the EA's TLB0 set (2 ways), then TLB1's 16;
    # @46f43c6e's reads TLB0 entry by entry, then TLB1.  The log's walk_entries and
    # the walk_scan histogram count those entries, as the walk's cycles do, on both
    # backends
    ov = ["duration_ms=2", "machine.core=e500", f"kvm.strategy={strategy}",
          "kvm.pfn_source=guest-tlb-refs", "sim.miss_log=true", "kvm.handler=c"]
    a, b = (run({}, overrides=ov + [f"sim.backend={be}"]) for be in engine.BACKENDS)
    walks = a.miss_log["walk_entries"]
    assert list(walks) == list(b.miss_log["walk_entries"])
    assert walks.min() >= 1 and walks.max() <= most
    assert (a.miss_log["walk_cycles"] == walks * a.summary["costs"]["c_walk_per_entry"]).all()
    if strategy == "e500-shadow-ids":
        assert walks.max() == most                    # a miss reads all it can: 18


def test_the_log_is_bounded_and_starts_after_the_warm_up():
    full = run({}, overrides=["duration_ms=3", "sim.warmup_ms=1", "sim.miss_log=true"])
    s = full.summary
    assert s["miss_log"]["rows"] == s["tlb"]["guest"]["misses"] > 0
    assert full.miss_log["time"].min() >= s["warmup_cycles"]
    capped = run({}, overrides=["duration_ms=3", "sim.warmup_ms=1", "sim.miss_log=true",
                                "sim.miss_log_max=25"])
    assert capped.summary["miss_log"] == {"rows": 25, "dropped": s["miss_log"]["rows"] - 25}
    for col in full.miss_log:          # the first 25 misses, as the full log has them
        assert list(capped.miss_log[col]) == list(full.miss_log[col][:25]), col


def test_without_the_log_nothing_is_kept(tmp_path):
    r = run({}, overrides=["duration_ms=1"])
    assert r.miss_log is None and "miss_log" not in r.summary
    r.write(tmp_path / "run")
    assert not [n for n in (tmp_path / "run").iterdir() if n.name.startswith("misses")]
    assert emu.load(tmp_path / "run").miss_log is None


@pytest.mark.parametrize("pyarrow", [True, False], ids=["parquet", "csv"])
def test_the_log_round_trips_through_the_run_folder(logged, tmp_path, monkeypatch, pyarrow):
    if not pyarrow:
        monkeypatch.setattr(results_table, "_have_pyarrow", lambda: False)
    logged.write(tmp_path / "run")
    name = "misses.parquet" if pyarrow else "misses.csv"
    assert (tmp_path / "run" / name).is_file()
    back = emu.load(tmp_path / "run")
    assert list(back.miss_log) == list(logged.miss_log)
    for col, values in logged.miss_log.items():
        assert back.miss_log[col].dtype == values.dtype and list(back.miss_log[col]) == \
            list(values), col
    assert "misses" not in back.tables
    df = back.frames()["miss_log"]
    assert len(df) == logged.summary["miss_log"]["rows"]
    assert str(df["outcome"].dtype) == "category"


def test_a_parquet_log_without_pyarrow_leaves_the_rest_of_the_run_readable(
        logged, tmp_path, monkeypatch):
    """emu.load of a run whose miss log is Parquet failed outright without
    pyarrow: its summary and tables could not be read either.  Now the run
    loads, and only reading the log says, in one line, what it needs."""
    import json
    import sys

    from emu.errors import EmuError
    logged.write(tmp_path / "run")
    assert (tmp_path / "run" / "misses.parquet").is_file()
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)    # as if not installed
    back = emu.load(tmp_path / "run")
    assert back.summary == json.loads(json.dumps(logged.summary))
    assert back.tables["tlb"] and "<table" in back._repr_html_()
    why = "misses.parquet: reading the per-miss log needs pyarrow: pip install pyarrow"
    for read in (lambda: back.miss_log["time"], lambda: list(back.miss_log),
                 lambda: back.frames()):
        with pytest.raises(EmuError, match=why):
            read()

"""The engine's contract: the C structs Python sees, and the same layout in both backends."""

from __future__ import annotations

import numpy as np
import pytest

from emu import codes, engine
from emu.costs import CostTable

FP, REF = engine.get("cython"), engine.get("reference")
IMPLS = pytest.mark.parametrize("impl", [FP, REF], ids=["cython", "reference"])


def tables(hw_entries: int = 64, window: int = 8) -> dict:
    """The tables a context reads: one memslot of 256 pages at gfn 0x400, no pins."""
    return {
        "slot_base": np.array([0x400], np.int64), "slot_npages": np.array([256], np.int64),
        "pin": np.full(256, -1, np.int64), "gref": np.full(64, -1, np.int64),
        "hwref_gi": np.full(hw_entries, -1, np.int32), "host_pt": np.full(1, -1, np.int32),
        "mod": np.zeros(hw_entries, np.uint8),
        "repop_miss": np.zeros(window, np.int64), "repop_access": np.zeros(window, np.int64),
    }


def cost_dict() -> dict:
    return dict(CostTable({}).to_dict(), entry_base=7, entry_per_mod=3)


# -- the TLB entry ------------------------------------------------------------------

def test_an_entry_is_one_record_and_the_field_arrays_are_views_of_it():
    t = FP.BookeTLB(8)
    assert t.entry_arr.dtype == FP.ENTRY_DTYPE and t.entry_arr.dtype.itemsize == 40
    t.write(3, 0x5000, 12, 1, 1, 0x9000, 0x3F, 7)
    rec = t.entry_arr[3]
    assert (rec["vpn"], rec["rpn"], rec["attr"], rec["owner"], rec["shift"], rec["tid"],
            rec["ts"], rec["valid"], rec["gen"]) == (5, 0x9000, 0x3F, 7, 12, 1, 1, 1, 1)
    for name in FP.ENTRY_DTYPE.names:
        view = getattr(t, name + "_arr")
        assert np.shares_memory(view, t.entry_arr), name
        assert view[3] == rec[name], name
    assert list(t.owner_arr) == [-1, -1, -1, 7, -1, -1, -1, -1]


@IMPLS
def test_entry_field_arrays_have_the_entry_types(impl):
    t = impl.BookeTLB(4)
    for name in FP.ENTRY_DTYPE.names:
        assert getattr(t, name + "_arr").dtype == FP.ENTRY_DTYPE[name], name


# -- the counters ---------------------------------------------------------------------

def test_the_counters_block_is_the_struct():
    block, views = FP.new_counters()
    assert block.shape == (1,) and block.dtype == FP.COUNTERS_DTYPE
    views["exits"][4 * codes.EXIT["MMIO"] + 1] = 99
    views["profile"][2 * codes.STEP["walk"]] = 5
    assert block["exits"][0][codes.EXIT["MMIO"]]["cycles"] == 99
    assert block["profile"][0][codes.STEP["walk"]]["count"] == 5


@IMPLS
def test_a_context_adds_its_counters_to_its_arrays(impl):
    arrays = tables()
    impl.Ctx(1, arrays)
    n_exits, n_steps = len(codes.EXIT_CATEGORIES), len(codes.PROFILE_STEPS)
    shapes = {"exits": 4 * n_exits, "exit_sumsq": n_exits, "exits_us": 4 * n_exits,
              "exit_sumsq_us": n_exits, "tlb": len(codes.TLB_COUNTERS),
              "causes": len(codes.MISS_CAUSES), "profile": 2 * n_steps}
    for name, size in shapes.items():
        # the sums of squares are doubles: a long exit's square, summed, passes 2**63
        dtype = np.float64 if "sumsq" in name else np.int64
        assert arrays[name].shape == (size,) and arrays[name].dtype == dtype, name
        assert not arrays[name].any(), name


@IMPLS
def test_record_exit_keeps_count_cycles_min_max_and_squares(impl):
    arrays = tables()
    ctx = impl.Ctx(1, arrays)
    for cycles in (30, 10, 20):
        ctx.record_exit(codes.EXIT["DEC"], cycles)
    b = 4 * codes.EXIT["DEC"]
    assert list(arrays["exits"][b:b + 4]) == [3, 60, 10, 30]
    assert arrays["exit_sumsq"][codes.EXIT["DEC"]] == 900 + 100 + 400


@IMPLS
def test_record_exit_keeps_whole_microseconds_as_the_kernel_did(impl):
    """timing.c @73e75b41 truncates each exit to whole µs before it counts it: at
    667 MHz exits of 666, 667 and 1333 cycles are 0, 1 and 1 µs (docs/kvm440.md §2.10)."""
    arrays = tables()
    ctx = impl.Ctx(1, arrays)
    ctx.set_costs(dict(cost_dict(), clock_mhz=667))
    for cycles in (666, 667, 1333):
        ctx.record_exit(codes.EXIT["EMULINST"], cycles)
    b = 4 * codes.EXIT["EMULINST"]
    assert list(arrays["exits_us"][b:b + 4]) == [3, 2, 0, 1]        # count, sum, min, max
    assert arrays["exit_sumsq_us"][codes.EXIT["EMULINST"]] == 0 + 1 + 1
    assert list(arrays["exits"][b:b + 4]) == [3, 2666, 666, 1333]   # the exact cycles beside


# -- the cost table --------------------------------------------------------------------

def test_the_reference_reads_the_fields_of_the_cost_struct():
    fast = FP.Ctx(1, tables())
    fast.set_costs(cost_dict())
    assert tuple(fast.costs) == REF.COST_FIELDS


@IMPLS
def test_costs_are_read_back_by_name(impl):
    ctx = impl.Ctx(1, tables())
    ctx.set_costs(cost_dict())
    table = CostTable({}).to_dict()
    assert ctx.costs["asm_save"] == table["asm_save"] and ctx.costs["entry_per_mod"] == 3
    assert set(ctx.costs) == set(REF.COST_FIELDS)


@IMPLS
def test_a_missing_cost_is_an_error(impl):
    ctx = impl.Ctx(1, tables())
    c = cost_dict()
    del c["asm_gpa"]
    with pytest.raises(ValueError, match="asm_gpa"):
        ctx.set_costs(c)


# -- the stop record -------------------------------------------------------------------

@IMPLS
def test_the_stop_record(impl):
    ctx = impl.Ctx(1, tables())
    assert ctx.stop == {"reason": 0, "ea": 0, "gpa": 0, "gi": 0, "kind": 0, "pending": 0}
    assert (ctx.stop_ea, ctx.stop_gpa, ctx.stop_gi, ctx.stop_kind, ctx.pending) == (0,) * 5


# -- one vCPU context, both backends, the same numbers (a differential property) -------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from emu.engine.tracer import EVENTS, OUTCOMES, Recorder, Tracer  # noqa: E402

GUEST_BASE = 0x2000_0000
DEVICE_PAGES = (6, 7)            # guest pages the test maps outside the memslot (MMIO)


def guest_gpa(page: int) -> int:
    return (0xE_0000 + page) << 12 if page in DEVICE_PAGES else (0x400 + page) << 12


class World:
    """One vCPU context on one CPU, on one backend, and the Python side of its stops."""

    def __init__(self, impl, cfg):
        self.impl = impl
        hw = 64
        self.tlb = impl.BookeTLB(hw, hw, cfg["policy"], 62)
        self.cpu = impl.VirtCPU(self.tlb, None, cfg["micro"], np.zeros(10, np.int64),
                                np.array([0, 0, 1], np.uint8))
        self.gtlb = impl.BookeTLB(64, 64, "none")
        shadow = cfg["strategy"] in ("shadow", "shadow-modified")
        self.shadow = impl.BookeTLB(hw, hw, "round-robin", 62) if shadow else None
        self.pcache = impl.BookeTLB(8, 8, "lru")
        self.arrays = tables(hw, 16)
        self.arrays["pin"][:] = 0x10000 + np.arange(256)
        self.ctx = impl.Ctx(1, self.arrays, self.gtlb, self.shadow, self.pcache,
                            codes.STRATEGY[cfg["strategy"]], codes.HANDLER[cfg["handler"]],
                            cfg["hashed"], codes.PFN_SOURCE[cfg["pfn_source"]])
        self.ctx.set_costs(cost_dict())
        self.ctx.guest_pr, self.ctx.guest_pid, self.ctx.since_load = 1, 1, 0
        self.ctx.tid_scheme = codes.TID_SCHEME[cfg["tid_scheme"]]
        if shadow:
            self.ctx.loop_len = 62                 # the entry loop writes 0..hwater-1
        self.next_gi = 0
        self.log = self.log_n = None
        if cfg.get("log"):                         # the per-miss log, cfg["log"] rows
            self.log = np.zeros(cfg["log"], impl.MISS_DTYPE)
            self.log_n = np.zeros(1, np.int64)
            self.ctx.set_miss_log(self.log, self.log_n)
            self.ctx.log_clock = 1000

    def handle(self, stop: int, pos: int) -> int:
        """What the vCPU thread would do for ``stop``; returns the next position."""
        ctx, name = self.ctx, codes.STOPS[stop]
        if name == "guest_miss":                  # the guest's handler fills its TLB
            ea = int(ctx.stop_ea)
            gi, self.next_gi = self.next_gi, (self.next_gi + 1) % 60
            page = (ea - GUEST_BASE) >> 12
            self.gtlb.write(gi, ea >> 12 << 12, 12, 1, 0, guest_gpa(page), 0, -1)
            self.arrays["gref"][gi] = 0x10000 + page
            return pos
        if name == "deferred":                    # the C path: gfn_to_pfn, then map it
            gfn = int(ctx.stop_gpa) >> 12
            j = self.pcache.choose_victim(0)
            self.pcache.write(j, gfn << 12, 12, 0, 0, (0x10000 + gfn) << 12, 0, -1)
            ctx.count_step(codes.STEP["gfn_to_pfn"], 3100)
            ctx.map_shadow(self.cpu, int(ctx.stop_ea), int(ctx.stop_gi), 0x10000 + gfn)
            ctx.guest_entry(self.cpu)
            ctx.close_miss()
            return pos
        if name == "mmio":
            ctx.close_miss()
        if name in ("mmio", "syscall", "sleep", "machine_check"):
            return pos + 1
        return pos

    def state(self) -> dict:
        return {
            "counters": {k: self.arrays[k].tolist() for k in
                         ("exits", "exit_sumsq", "exits_us", "exit_sumsq_us", "tlb", "causes",
                          "profile", "profile_hist", "walk_scan", "repop_miss",
                          "repop_access", "hwref_gi", "mod", "shadow_pos")},
            "log": None if self.log is None else
            {k: self.log[k][:int(self.log_n[0])].tolist() for k in self.log.dtype.names},
            "cycles": self.cpu.cycles_arr.tolist(),
            "tlb": [self.tlb.read(i) for i in range(self.tlb.entries)],
            "stop": self.ctx.stop, "n_modified": self.ctx.n_modified,
            "guest_run": self.ctx.guest_run,
        }


@st.composite
def contexts(draw):
    strategy = draw(st.sampled_from(["shadow", "shadow-modified", "direct",
                                     "direct-save-on-switch"]))
    return {"strategy": strategy, "handler": draw(st.sampled_from(codes.HANDLERS)),
            "tid_scheme": draw(st.sampled_from(codes.TID_SCHEMES)),
            "hashed": draw(st.integers(0, 1)), "micro": draw(st.booleans()),
            "pfn_source": draw(st.sampled_from(codes.PFN_SOURCES)),
            "log": draw(st.sampled_from([0, 3, 400])),
            "policy": "round-robin" if strategy.startswith("shadow")
            else draw(st.sampled_from(["round-robin", "lru"]))}


@st.composite
def streams(draw, max_len=160):
    n = draw(st.integers(1, max_len))
    pages = draw(st.lists(st.integers(0, 11), min_size=n, max_size=n))
    kinds = draw(st.lists(st.sampled_from([0, 1, 1, 2, 2, 3, 4, 5]), min_size=n, max_size=n))
    ea = np.array([GUEST_BASE + (p << 12) + 8 * (i % 512) for i, p in enumerate(pages)],
                  np.uint32)
    return ea, np.array(kinds, np.uint8)


@settings(derandomize=True, max_examples=60, deadline=None)
@given(cfg=contexts(), stream=streams(), budgets=st.lists(st.integers(1, 3000), min_size=1,
                                                          max_size=8),
       data=st.data())
def test_one_context_runs_alike_on_both_backends(cfg, stream, budgets, data):
    ea, kind = stream
    worlds = [World(FP, cfg), World(REF, cfg)]
    worlds[1].ctx.tracer = recorder = Recorder()
    pos, steps = 0, 0
    while pos < len(ea) and steps < 400:
        budget = budgets[steps % len(budgets)]
        results = [w.ctx.run_virt(w.cpu, ea, kind, pos, budget) for w in worlds]
        assert results[0] == results[1]
        stop, new_pos, _ = results[0]
        positions = {w.handle(stop, new_pos) for w in worlds}
        assert len(positions) == 1
        pos = positions.pop()
        if data.draw(st.integers(0, 9)) == 0:        # a host task evicts an entry
            victim = data.draw(st.integers(0, 61))
            for w in worlds:
                w.cpu.invalidate(victim, 2)
        assert worlds[0].state() == worlds[1].state()
        steps += 1
    assert pos == len(ea)
    check_grammar(recorder.events)


def check_grammar(events: list) -> set:
    """Every event is documented, has exactly its fields, and a virtualized miss tells
    its steps in the documented order (a ``hw_write`` outside a miss is map_shadow's)."""
    after = {"miss": {"walk"}, "walk": {"end", "gpa"}, "gpa": {"memslot"},
             "memslot": {"end", "pfn"}, "pfn": {"end", "hw_write"}, "hw_write": {"end"}}
    prev, in_miss, outcomes = None, False, set()
    for ev in events:
        name = ev["event"]
        assert set(ev) == {"event", "ctx", *EVENTS[name]}, ev
        if in_miss:
            assert name in after[prev], (prev, ev)
            if name == "end":
                assert ev["outcome"] in OUTCOMES
                outcomes.add(ev["outcome"])
                in_miss = False
        else:
            assert name in ("hit", "miss", "hw_write"), (prev, ev)
            in_miss = name == "miss"
        prev = name
    assert not in_miss or prev == "miss" or prev in after
    return outcomes


def test_the_null_tracer_ignores_events():
    assert Tracer().hit(1, 0, 0, 0, -1) is None
    assert isinstance(REF.Ctx(1, tables()).tracer, Tracer)


def test_the_events_are_the_tracer_methods():
    assert EVENTS == {"hit": ("ea", "kind", "index", "owner"), "dsi": ("ea", "kind", "index"),
                      "isi": ("ea", "kind", "index"),
                      "miss": ("ea", "kind", "cause"),
                      "walk": ("gi", "cycles"), "gpa": ("gpa",),
                      "memslot": ("gfn", "slot", "visible"), "pfn": ("source", "pfn"),
                      "hw_write": ("index", "evicted"), "end": ("outcome", "cycles")}
    rec = Recorder()
    rec.memslot(3, 0x401, 0, True)
    assert rec.events == [{"event": "memslot", "ctx": 3, "gfn": 0x401, "slot": 0, "visible": True}]


@pytest.mark.parametrize("pfn_source, outcomes", [
    ("pin-all", {"filled", "guest_miss", "mmio"}),
    ("gup", {"deferred", "guest_miss", "mmio"}),
])
def test_a_traced_stream_tells_every_outcome(pfn_source, outcomes):
    cfg = {"strategy": "direct", "handler": "asm", "hashed": 0, "micro": True,
           "pfn_source": pfn_source, "policy": "round-robin", "tid_scheme": "tid01",
           "log": 1000}
    ea = np.array([GUEST_BASE + ((i * 5 % 12) << 12) for i in range(200)], np.uint32)
    kind = np.ones(200, np.uint8)
    worlds = [World(FP, cfg), World(REF, cfg)]
    worlds[1].ctx.tracer = recorder = Recorder()
    pos = 0
    while pos < len(ea):
        results = [w.ctx.run_virt(w.cpu, ea, kind, pos, 1 << 40) for w in worlds]
        assert results[0] == results[1]
        pos = {w.handle(results[0][0], results[0][1]) for w in worlds}.pop()
    assert worlds[0].state() == worlds[1].state()
    assert check_grammar(recorder.events) == outcomes
    hits = sum(e["event"] == "hit" for e in recorder.events)
    assert hits == worlds[1].arrays["tlb"][codes.TLB["hits"]] > 0
    # every miss is logged, with the outcome the tracer saw, in order
    log = worlds[1].log[:int(worlds[1].log_n[0])]
    ends = [e["outcome"] for e in recorder.events if e["event"] == "end"]
    assert [codes.MISS_OUTCOMES[o] for o in log["outcome"]] == ends
    assert len(log) == worlds[1].arrays["tlb"][codes.TLB["misses"]]


def test_the_counter_layout_is_the_contexts():
    from emu.engine import counter_arrays
    layout = counter_arrays()
    for impl in (FP, REF):
        arrays = tables()
        impl.Ctx(1, arrays)
        assert {k: (v.shape, v.dtype) for k, v in layout.items()} == \
            {k: (arrays[k].shape, arrays[k].dtype) for k in layout}

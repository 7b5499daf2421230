"""The engine's contract: the C structs Python sees, and the same layout in both backends."""

from __future__ import annotations

import numpy as np
import pytest

from emu import backend, codes
from emu.costs import CostTable

FP, REF = backend.get("cython"), backend.get("reference")
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
    shapes = {"exits": 4 * n_exits, "exit_sumsq": n_exits, "tlb": len(codes.TLB_COUNTERS),
              "causes": len(codes.MISS_CAUSES), "profile": 2 * n_steps}
    for name, size in shapes.items():
        assert arrays[name].shape == (size,) and arrays[name].dtype == np.int64, name
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

"""Tests of emu.costs: the one table of every cost in the model."""

from __future__ import annotations

import copy
import dataclasses
import doctest
import json
import math
import pickle
import re

import pytest

import emu.costs as costs_module
from emu.costs import (
    COSTS,
    COSTS_BY_NAME,
    GROUPS,
    SPREADS,
    UNITS,
    Cost,
    CostTable,
    Spread,
    cost_named,
    cycles_to_us,
    us_to_cycles,
)
from emu.errors import ConfigError, EmuError
from test_docs import DOCS, headings

# The documents the sources cite, inside the repository.
REFERENCE = DOCS / "kvm440.md"
DESIGN = DOCS / "design.md"

# The rule every source must follow (see the module docstring of emu.costs).
# Both spellings of a citation are accepted while the citations move to docs/.
CITED = ("reference/kvm440.md §", "docs/kvm440.md §")
CITED_DESIGN = ("DESIGN.md §", "docs/design.md §")
SOURCE_PREFIXES = (*CITED, *CITED_DESIGN, "estimate:", "Linux default:", "fitted:")

# A citation: a design one, or else (a bare § included) one of the facts file.
CITATION = re.compile(r"(?:(DESIGN\.md|docs/design\.md) )?§(\d+(?:\.\d+)?)")

# Cycle costs the reference marks NOT FOUND (§1.6, §3.2): they must be estimates
# (or fitted to published effects, which is no measurement either).
MUST_BE_ESTIMATES = (
    "access",
    "tlbwe",
    "tlbre",
    "tlbsx",
    "native_miss_handler",
    "guest_miss_handler",
    "exit_light",
    "exit_heavy_extra",
    "emulate_instruction",
    "gfn_to_pfn",
    "pin_page",
    "host_page_fault",
    "context_switch",
)

NAMES = [c.name for c in COSTS]


def default(name: str) -> int:
    return COSTS_BY_NAME[name].default


# --------------------------------------------------------------------------
# The table itself
# --------------------------------------------------------------------------


def test_table_is_not_empty_and_names_are_unique():
    assert len(COSTS) >= 60
    assert len(set(NAMES)) == len(NAMES)
    assert list(COSTS_BY_NAME) == NAMES


@pytest.mark.parametrize("cost", COSTS, ids=NAMES)
def test_every_cost_is_documented(cost: Cost):
    assert cost.name.isidentifier() and not cost.name.startswith("_")
    assert cost.unit in UNITS
    assert cost.group in GROUPS
    for text in (cost.description, cost.source):
        assert text.strip() == text and len(text) >= 10
        assert "\n" not in text
    assert type(cost.default) is int and cost.default >= 0


@pytest.mark.parametrize("cost", COSTS, ids=NAMES)
def test_every_source_cites_or_reasons(cost: Cost):
    assert cost.source.startswith(SOURCE_PREFIXES), cost.source
    if cost.source.startswith("estimate:"):
        reasoning = cost.source[len("estimate:"):]
        # An estimate must say why: some text and at least one number.
        assert len(reasoning) >= 40 and re.search(r"\d", reasoning), cost.source
    if cost.source.startswith("Linux default:"):
        assert "general Linux knowledge" in cost.source
    if cost.source.startswith("fitted:"):
        # a fitted cost says to what, how, and with what residual; its range is
        # where the fitted-to effects hold
        assert "docs/calibration.md" in cost.source and "residual" in cost.source
        assert cost.spread.kind == "fitted"


def test_groups_and_order_follow_the_readable_layout():
    seen = [c.group for c in COSTS]
    # Each group is contiguous and groups appear in GROUPS order.
    order = [g for i, g in enumerate(seen) if i == 0 or seen[i - 1] != g]
    assert order == [g for g in GROUPS if g in seen]
    assert set(seen) == set(GROUPS)


def test_names_do_not_shadow_table_methods():
    # table.<name> must reach the cost, never a method or attribute of the class.
    clashes = {n for n in NAMES if hasattr(CostTable, n)}
    assert not clashes


@pytest.mark.parametrize("name", MUST_BE_ESTIMATES)
def test_not_found_figures_are_estimates(name):
    assert COSTS_BY_NAME[name].source.startswith(("estimate:", "fitted:"))


def test_cited_sections_exist():
    ref, design = headings(REFERENCE), headings(DESIGN)
    assert {"0", "1.1", "1.6", "2.3", "2.10", "3.2", "4.1", "5"} <= ref  # the parser works
    assert {"1", "2", "3", "4", "4.1", "5", "6", "7"} <= design
    checked = 0
    for cost in COSTS:
        for m in CITATION.finditer(cost.source):
            sections = design if m.group(1) else ref
            assert m.group(2) in sections, (cost.name, m.group(0))
            checked += 1
    assert checked > 50


@pytest.mark.parametrize(
    "source,ok",
    [
        ("reference/kvm440.md §2.10", True),
        ("docs/kvm440.md §2.10", True),
        ("DESIGN.md §4.1", True),
        ("docs/design.md §4.1", True),
        ("docs/kvm440.md §2.11", False),
        ("docs/design.md §4.2", False),
        ("DESIGN.md §8", False),
    ],
)
def test_both_citation_spellings_are_checked_against_docs(source, ok):
    assert source.startswith(SOURCE_PREFIXES)
    ref, design = headings(REFERENCE), headings(DESIGN)
    (m,) = CITATION.finditer(source)
    assert (m.group(2) in (design if m.group(1) else ref)) is ok


# --------------------------------------------------------------------------
# Values taken from the reference
# --------------------------------------------------------------------------

CITED_VALUES = {
    "clock_mhz": 667,  # §0, §3.1
    "micro_tlb_refill": 3,  # §1.1, PPC440x5 UM p.152
    "shadow_entry_bytes": 16,  # §1.2, §2.2
    "guest_tlb_entry_bytes": 16,  # §1.2, §2.2
    "shadow_ref_bytes": 8,  # §2.2
    "shadow_page_ptr_bytes": 4,  # §2.2
    "shadow_mod_flag_bytes": 1,  # §2.2
    "shadow_mod_scan_per_entry": 5,  # §2.3 @83aae4a8
    "shadow_mod_clear": 36,  # §2.3 @83aae4a8: li; mtctr; addi; li + 16 x (stwu; bdnz)
    "shadow_mod_write_per_entry": 10,  # §2.3 @83aae4a8: 10 instructions, 3 tlbwe among them
    "tlbia_per_entry": 4,  # §2.10: tlbwe; addi; cmpw; ble
    "tlbia_base": 13,  # §2.10: li; sync; lis; lwz; isync; blr + one pipeline refill
    "pfn_table_entry_bytes": 8,  # DESIGN §4
}


@pytest.mark.parametrize("name,value", sorted(CITED_VALUES.items()))
def test_cited_values_equal_the_reference(name, value):
    cost = COSTS_BY_NAME[name]
    assert cost.default == value
    assert cost.source.startswith((*CITED, *CITED_DESIGN))


def test_v1_shadow_restore_is_about_1180_instructions_per_entry():
    per_entry = default("shadow_restore_per_entry")
    assert COSTS_BY_NAME["shadow_restore_per_entry"].unit == "cycles/entry"
    assert abs(per_entry * 62 - 1180) <= 0.03 * 1180
    # 3 tlbre + 3 tlbwe inside it, at their own costs.
    assert per_entry >= 3 * default("tlbre") + 3 * default("tlbwe")


def test_memory_footprints_match_the_reference_arithmetic():
    guest, shadow = default("guest_tlb_entry_bytes"), default("shadow_entry_bytes")
    ptr, ref = default("shadow_page_ptr_bytes"), default("shadow_ref_bytes")
    # §2.2: v1 per-vCPU TLB state = guest + shadow + page ptrs + host copy = 3,328 B.
    assert 64 * guest + 64 * shadow + 64 * ptr + 64 * shadow == 3328
    # §2.4: the shadow TLB removed by 7924bd41 was 1,280 B; shadow_refs 512 B.
    assert 64 * shadow + 64 * ptr == 1280
    assert 64 * ref == 512 and 2 * 64 * ref < 1280


def test_estimates_are_plausible_and_consistent():
    d = {c.name: c.default for c in COSTS}
    # Linux's 44x handler is 55-60 instructions incl. 3 tlbwe (§1.6).
    # the 60 instructions of head_44x.S @026477c1's D-TLB path less the 16 that trap
    assert d["guest_miss_handler"] == 60 - 16
    assert d["guest_miss_handler"] < d["native_miss_handler"] < 200
    # The composite costs contain their tlbwe.
    assert d["asm_hw_write"] > 3 * d["tlbwe"]
    assert d["c_hw_write"] > d["asm_hw_write"]
    assert d["shadow_mod_write_per_entry"] == 7 + 3 * d["tlbwe"]
    # _tlbia at hwater 62 (docs/kvm440.md §2.10): 13 + 63 x 4 = 265 cycles.
    assert d["tlbia_base"] + 63 * d["tlbia_per_entry"] == 265
    # The point of the asm handler: a hashed fast-path fill beats a light exit.
    asm_fill = sum(
        d[n]
        for n in ("asm_save", "asm_walk_hashed", "asm_gpa", "asm_memslot",
                  "asm_pfn_lookup", "asm_hw_write", "asm_restore")
    )
    c_fill = sum(
        d[n]
        for n in ("c_full_exit", "c_walk_hashed", "c_gpa", "c_memslot",
                  "c_pfn_lookup", "c_hw_write", "c_restore")
    )
    assert asm_fill < d["exit_light"] < c_fill
    assert d["asm_walk_per_entry"] < d["c_walk_per_entry"]
    # Leaving asm for C costs less than a full exit but more than the asm save.
    assert d["asm_save"] < d["deferred_c_path"] < d["c_full_exit"]
    # get_user_pages dwarfs a table probe; a heavy exit dwarfs a light one.
    assert d["gfn_to_pfn"] > 10 * d["asm_pfn_lookup"]
    assert d["exit_heavy_extra"] > d["exit_light"]
    # µs-scale things, at 667 MHz: a light exit well under 1 µs, a page fault a few µs.
    assert cycles_to_us(d["exit_light"], d["clock_mhz"]) < 1.0
    assert 1.0 < cycles_to_us(d["host_page_fault"], d["clock_mhz"]) < 20.0
    # Linux defaults.
    assert (d["sched_min_granularity_us"], d["sched_latency_us"],
            d["sched_wakeup_granularity_us"]) == (750, 6000, 1000)
    assert d["guest_timer_period_us"] == 4000
    assert d["guest_timeslice_us"] % d["guest_timer_period_us"] == 0


# --------------------------------------------------------------------------
# CostTable
# --------------------------------------------------------------------------


def test_default_table_is_the_defaults():
    table = CostTable()
    assert table.overrides == {}
    assert dict(table) == {c.name: c.default for c in COSTS}
    assert list(table) == NAMES and len(table) == len(COSTS)
    assert table.exit_light == table["exit_light"] == default("exit_light")
    assert CostTable(None) == table


def test_overrides_apply_and_only_they_are_recorded():
    table = CostTable({"tlbwe": 2.0, "exit_light": 300, "clock_mhz": 533})
    assert table.exit_light == 300 and table["tlbwe"] == 2 and table.clock_mhz == 533
    assert type(table["tlbwe"]) is int
    # in table order, whatever order they came in
    assert list(table.overrides.items()) == [("clock_mhz", 533), ("tlbwe", 2), ("exit_light", 300)]
    for name in NAMES:
        if name not in ("tlbwe", "exit_light", "clock_mhz"):
            assert table[name] == default(name)
    # Overriding with the default value still counts as an override.
    assert CostTable({"access": default("access")}).overrides == {"access": default("access")}
    # The defaults and the caller's dict are untouched; .overrides is a copy.
    given = {"access": 5}
    other = CostTable(given)
    other.overrides["access"] = 99
    assert other.access == 5 and other.overrides == {"access": 5} and given == {"access": 5}
    assert CostTable().access == default("access")


def test_zero_is_allowed_where_it_makes_sense():
    assert CostTable({"exit_timing_overhead": 0}).exit_timing_overhead == 0


def test_numpy_numbers_are_accepted():
    np = pytest.importorskip("numpy")
    table = CostTable({"exit_light": np.int64(250), "tlbwe": np.float64(4.0)})
    assert table.exit_light == 250 and type(table.exit_light) is int
    assert table.tlbwe == 4 and type(table.tlbwe) is int


def test_mapping_and_attribute_misses():
    table = CostTable()
    assert "exit_light" in table and "nope" not in table
    with pytest.raises(KeyError):
        table["nope"]
    with pytest.raises(AttributeError):
        table.nope
    with pytest.raises(AttributeError):
        table._private
    assert table.get("nope", 7) == 7


@pytest.mark.parametrize("bad", ["exit_lite", "xyz", "EXIT_LIGHT", ""])
def test_unknown_name_is_a_config_error(bad):
    with pytest.raises(ConfigError) as info:
        CostTable({bad: 1})
    msg = str(info.value)
    assert msg.startswith(f"unknown cost {bad!r} (known: ")
    assert "\n" not in msg
    assert isinstance(info.value, EmuError)


def test_unknown_name_suggests_the_closest():
    with pytest.raises(ConfigError, match=r"known: exit_light\b"):
        CostTable({"exit_lite": 1})
    with pytest.raises(ConfigError, match="micro_tlb_refill"):
        CostTable({"micro_tlb_refil": 1})


def test_non_string_name_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown cost 3"):
        CostTable({3: 1})


@pytest.mark.parametrize(
    "value",
    [-1, -0.0 - 1.0, True, False, "300", "", None, 2.5, math.nan, math.inf, [1], {"a": 1}, 1j],
    ids=repr,
)
def test_bad_values_name_the_cost(value):
    with pytest.raises(ConfigError) as info:
        CostTable({"exit_light": value})
    assert "'exit_light'" in str(info.value)


@pytest.mark.parametrize("name", ["clock_mhz", "guest_timer_period_us", "guest_timeslice_us"])
def test_zero_clock_tick_or_slice_is_rejected(name):
    with pytest.raises(ConfigError, match=repr(name)):
        CostTable({name: 0})


def test_overrides_must_be_a_mapping():
    with pytest.raises(ConfigError, match="mapping"):
        CostTable([("exit_light", 1)])  # type: ignore[arg-type]


def test_rows_describe_every_cost():
    table = CostTable({"gfn_to_pfn": 1000})
    rows = table.rows()
    assert [r["name"] for r in rows] == NAMES
    keys = {"name", "value", "default", "low", "high", "unit", "group", "description",
            "source", "spread", "why", "overridden"}
    for row in rows:
        assert set(row) == keys
        cost = COSTS_BY_NAME[row["name"]]
        assert (row["default"], row["unit"], row["group"], row["source"]) == (
            cost.default, cost.unit, cost.group, cost.source)
        assert (row["low"], row["high"], row["spread"]) == (cost.low, cost.high,
                                                            cost.spread.kind)
        assert row["overridden"] == (row["name"] == "gfn_to_pfn")
        assert row["value"] == (1000 if row["overridden"] else cost.default)


def test_to_dict_round_trips_through_json():
    table = CostTable({"exit_light": 300, "block_latency_us": 5000})
    d = table.to_dict()
    assert list(d) == NAMES and all(type(v) is int for v in d.values())
    back = json.loads(json.dumps(d))
    assert back == d
    again = CostTable(back)
    assert again == table and again.to_dict() == d
    d["exit_light"] = 1  # a copy, not the table's own dict
    assert table.exit_light == 300


def test_pickle_and_copy_keep_the_overrides():
    table = CostTable({"exit_light": 300})
    for clone in (pickle.loads(pickle.dumps(table)), copy.copy(table), copy.deepcopy(table)):
        assert clone == table and clone.overrides == {"exit_light": 300}
    assert "exit_light" in repr(table)


def test_cost_rows_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        COSTS[0].default = 1  # type: ignore[misc]


# --------------------------------------------------------------------------
# Ranges
# --------------------------------------------------------------------------


@pytest.mark.parametrize("cost", COSTS, ids=NAMES)
def test_every_default_lies_in_its_range_with_a_reason(cost: Cost):
    assert type(cost.low) is int and type(cost.high) is int
    assert 0 <= cost.low <= cost.default <= cost.high
    assert cost.spread.kind in SPREADS
    assert cost.spread.why.strip() == cost.spread.why and len(cost.spread.why) >= 20
    assert "\n" not in cost.spread.why
    if cost.spread.kind == "exact":
        assert cost.low == cost.default == cost.high
    else:
        assert cost.low < cost.high


def test_range_widths_follow_the_kind_of_figure():
    # Hardware figures and counted paths are narrower than guesses.
    def width(c):
        return c.high / max(c.low, 1)
    by_kind = {}
    for c in COSTS:
        by_kind.setdefault(c.spread.kind, []).append(width(c))
    assert max(by_kind["hardware"]) < min(by_kind["estimate"] + [8])
    assert max(by_kind["counted"]) <= 7 and min(by_kind["estimate"]) >= 2
    # Every struct size the reference gives is exact.
    for name in ("shadow_entry_bytes", "guest_tlb_entry_bytes", "shadow_ref_bytes"):
        assert COSTS_BY_NAME[name].spread.kind == "exact"
    # The figures the reference says nobody published are at least counted-wide,
    # unless fitted: then the range is where the fitted-to effects hold.
    for name in ("exit_light", "gfn_to_pfn", "tlbwe", "native_miss_handler"):
        cost = COSTS_BY_NAME[name]
        assert cost.high >= 2 * cost.default or cost.spread.kind == "fitted"
    for name in ("exit_light", "gfn_to_pfn"):
        assert COSTS_BY_NAME[name].spread.kind == "fitted"
        assert COSTS_BY_NAME[name].high / COSTS_BY_NAME[name].low >= 1.5


def test_relative_spreads_follow_a_refitted_default():
    spread = COSTS_BY_NAME["host_page_fault"].spread
    assert spread.relative and spread.bounds(600) == (300, 2400)
    assert spread.bounds(1000) == (500, 4000)
    fitted = Spread("fitted", 400, 900, "the range over which the effects hold", relative=False)
    assert fitted.bounds(600) == (400, 900)


def test_a_table_default_outside_its_range_is_refused_at_import(monkeypatch):
    # An absolute range does not follow its default: a refit must move it too.
    bad = dataclasses.replace(COSTS_BY_NAME["block_latency_us"], default=20000)
    monkeypatch.setattr(costs_module, "COSTS", (bad,))
    with pytest.raises(ValueError, match="block_latency_us.*outside its range"):
        costs_module._check_ranges()


def test_ranges_do_not_change_values():
    assert CostTable().to_dict() == {c.name: c.default for c in COSTS}
    table = CostTable(ranges={"exit_light": (100, 2000)})
    assert table.to_dict() == CostTable().to_dict() and table.overrides == {}
    assert table.ranges["exit_light"] == (100, 2000)
    assert table.range_overrides == {"exit_light": {"low": 100, "high": 2000}}
    assert CostTable().ranges == {c.name: (c.low, c.high) for c in COSTS}


def test_a_range_table_in_the_overrides():
    table = CostTable({"exit_light": {"value": 300, "high": 5000}, "tlbwe": {"low": 2}})
    assert table.exit_light == 300 and table.overrides == {"exit_light": 300}
    assert table.ranges["exit_light"] == (COSTS_BY_NAME["exit_light"].low, 5000)
    # A low end above the default stretches the range down to the value.
    assert table.ranges["tlbwe"] == (1, COSTS_BY_NAME["tlbwe"].high)
    clone = pickle.loads(pickle.dumps(table))
    assert clone.ranges == table.ranges and clone.overrides == table.overrides


@pytest.mark.parametrize("table, span", [({"value": 3, "low": 5, "high": 9}, "5..9"),
                                         ({"value": 10, "high": 9}, "..9"),
                                         ({"value": 1, "low": 2}, "2..")])
def test_a_value_outside_the_range_given_with_it_is_refused(table, span):
    with pytest.raises(ConfigError, match=rf"^cost 'tlbwe': value {table['value']} lies outside "
                                          rf"the range {re.escape(span)} given with it; give a "
                                          rf"range that holds it$"):
        CostTable({"tlbwe": table})


def test_a_value_outside_its_range_stretches_the_range():
    low, high = COSTS_BY_NAME["exit_light"].low, COSTS_BY_NAME["exit_light"].high
    assert CostTable({"exit_light": 5000}).ranges["exit_light"] == (low, 5000)
    assert CostTable({"exit_light": 10}).ranges["exit_light"] == (10, high)
    assert CostTable({"exit_light": 300}, ranges={"exit_light": (400, 900)}).ranges[
        "exit_light"] == (300, 900)


@pytest.mark.parametrize("given", [
    {"ranges": {"exit_light": (900, 150)}},
    {"ranges": {"exit_light": {"low": 900, "high": 150}}},
    {"overrides": {"exit_light": {"low": 900, "high": 150}}},
    {"overrides": {"exit_light": {"low": 5000}}},          # above the table's high
])
def test_low_above_high_is_refused_in_one_line(given):
    with pytest.raises(ConfigError) as info:
        CostTable(**given)
    msg = str(info.value)
    assert msg.startswith("cost 'exit_light': range low ") and " > high " in msg
    assert "\n" not in msg


@pytest.mark.parametrize("ranges,match", [
    ({"exit_lite": (1, 2)}, "unknown cost 'exit_lite'"),
    ({"exit_light": (1, 2, 3)}, "a range is"),
    ({"exit_light": "1,2"}, "a range is"),
    ({"exit_light": (-1, 2)}, "must not be negative"),
    ({"exit_light": {"lo": 1}}, "unknown key 'lo'"),
    ({"clock_mhz": (0, 667)}, "must be positive"),
    ([("exit_light", (1, 2))], "mapping"),
])
def test_bad_ranges_name_the_cost(ranges, match):
    with pytest.raises(ConfigError, match=match):
        CostTable(ranges=ranges)


def test_listing_has_the_columns_emu_costs_prints():
    rows = CostTable({"gfn_to_pfn": 1000}).listing()
    assert [r["name"] for r in rows] == NAMES
    for row in rows:
        cost = COSTS_BY_NAME[row["name"]]
        assert {"name", "default", "low", "high", "unit", "source"} <= set(row)
        assert row["default"] == cost.default and row["source"] == cost.source
        assert row["why"] == cost.spread.why
    g = rows[NAMES.index("gfn_to_pfn")]
    # fitted: an absolute range (docs/calibration.md) that an override inside it keeps
    assert (g["value"], g["default"], g["low"], g["high"]) == (1000, 2400, 600, 2400)


def test_cost_named():
    assert cost_named("exit_light") is COSTS_BY_NAME["exit_light"]
    with pytest.raises(ConfigError, match="unknown cost 'exit_lite'.*exit_light"):
        cost_named("exit_lite")


# --------------------------------------------------------------------------
# Conversions
# --------------------------------------------------------------------------


def test_cycles_to_us():
    assert cycles_to_us(667, 667) == 1.0
    assert cycles_to_us(1334, 667) == 2.0
    assert cycles_to_us(0, 533) == 0.0
    assert cycles_to_us(300, 667) == pytest.approx(0.4498, abs=1e-4)
    for bad in (0, -667, False):
        with pytest.raises(ConfigError, match="clock_mhz"):
            cycles_to_us(100, bad)


def test_us_to_cycles():
    assert us_to_cycles(4000, 667) == 2_668_000
    assert us_to_cycles(0.75, 667) == 500  # 500.25 rounds to 500
    assert type(us_to_cycles(1.5, 667)) is int
    assert cycles_to_us(us_to_cycles(6000, 667), 667) == 6000.0
    with pytest.raises(ConfigError, match="clock_mhz"):
        us_to_cycles(1, 0)


def test_module_docstring_examples_run():
    result = doctest.testmod(costs_module, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 5 and result.failed == 0

"""``emu explain``: known-answer narrations, the exercise, bad input, and the tracer.

1. Known answers.  The narrations in ``tests/data/golden/explain_*.txt`` were generated
   once (``python tests/test_explain.py --regenerate``) and checked by hand:

   * ``explain_default.txt`` is ``emu explain`` on the default scenario (seed 1,
     vcpu_load #5, 20 accesses) with a shorter schedule (CFS latency 800 us,
     granularity 200 us, the host task sleeping 300 us instead of 800 us), so
     that the reference backend reaches the fifth resume in about a second.
     The default is ``direct`` as 7924bd41 shipped it: the C handler, and
     ``_tlbia()`` at vcpu_put; the exit-path costs are the calibrated ones
     (s = 1: full exit 125, deliver 60, restore 113; docs/calibration.md).
     The vCPU was put at 3,439.2 us holding 54 entries (its process's pages
     and its guest kernel's); the flush invalidated all of them, so the host
     task 'noise' (4,572 accesses, 1,780 misses of which 1 host page fault,
     1,779 tlbwe) overwrote none of them and the vCPU resumed holding 0.
     Every miss of the window is a flush (16 on 16 distinct pages), refilled
     in consecutive slots from where the shared round-robin pointer stopped
     after the host's writes: hw[62], then hw[0] on.  Access #0: guest TLB
     entry 29 matches, 30 entries scanned x 12 = 360 cycles, and 125 full
     exit + 360 + 10 GPA + 25 memslot + 15 pfn + 48 tlbwe + 113 restore =
     696, the total the model charged.  Access #5 fetches from the code page
     of #3 again and hits the slot #3 filled (hw[2]).  Every page the
     process stores to already had its DSI before the resume: its guest
     entry has UW, so the window holds none.
   * ``explain_first_load.txt``: vcpu_load #1, nothing is mapped: the first
     access misses (compulsory), the walk scans all 64 guest entries (768
     cycles) and the miss is delivered to the guest (125 + 768 + 60 deliver
     = 953 so far; the privilege switch, the restore and the entry belong to
     the delivering exit).  The rest of the window is the guest kernel's own
     accesses in its miss handler, each through its pinned 256 MB TID-0
     entry (guest entry 63), which KVM shadows in 4 KB pieces with shadow
     PID 1: the vectors' text (0xc0000000, frame 0), the task struct
     (0xc0019000) and the page directory (0xc001c400); the PTE is absent, so
     the handler bails out to the page fault, whose prolog fetches the
     vectors again (a hit: #4) and entry_32.S (0xc0001000), then
     do_page_fault's text (0xc0009000, 0xc000a000).  Each kernel page is a
     compulsory miss that the pfn cache cannot answer: gfn_to_pfn with a host
     page fault, into the hardware's free entries 0, 1, 2 ... in turn.
   * ``explain_gup.txt``: the exercise's scenario (vcpu_load #5) with pfn
     source ``gup``: 7924bd41's vcpu_put invalidated the 29 entries held;
     all 5 misses of the window are flush misses, and every fill calls
     gfn_to_pfn from the C handler, 125 + 12 x scanned + 10 + 25 + 15, then
     2,400 gfn_to_pfn (fitted, docs/calibration.md) + 48 tlbwe + 113 restore
     + 40 = 2,601 cycles in C: a slot that still held the reference of a
     page mapped before the put (_tlbia leaves the shadow_refs alone) has
     the new map put the old page, 40; a slot that held none, 2,561.

   Besides the exact comparison, every "cycles in the ... handler (a + b + ...)"
   line is checked to add up, and every walk to cost its handler's cycles per entry
   scanned.
2. The exercise (:func:`emu.teach.solve_exercise`): the computed answer equals
   the hand-derived one.
3. Bad input: an EmuError with one line; through the CLI, exit status 2.
4. The tracer changes nothing: a run with a tracer on every context gives
   the summary of a run without.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import pytest

from emu.codes import CYCLE_LABELS, PROFILE_STEPS
from emu.engine.tracer import Recorder
from emu.errors import EmuError
from emu.teach import (EXERCISE_ACCESSES, add_explain_parser, exercise_scenario, exercise_text,
                       explain, solve_exercise)
from emu.teach.exercise import EXERCISE_RESUME

DATA = Path(__file__).parent / "data" / "golden"

CASES = {
    "default": dict(scenario=None, overrides=("costs.sched_latency_us=800",
                                              "costs.sched_min_granularity_us=200",
                                              "host_task.0.sleep_us=300"),
                    resume=5, accesses=20),
    "first_load": dict(scenario=None, overrides=(), resume=1, accesses=8),
    "gup": dict(scenario="exercise", overrides=("kvm.pfn_source=gup",), resume=EXERCISE_RESUME,
                accesses=6),
}


def narrate(case: str) -> str:
    kw = dict(CASES[case])
    if kw["scenario"] == "exercise":
        kw["scenario"] = exercise_scenario()
    return explain(**kw).text


@pytest.fixture(scope="module")
def texts():
    return {case: narrate(case) for case in CASES}


@pytest.fixture(scope="module")
def answer():
    return solve_exercise()


# -- 1. known answers -------------------------------------------------------------------

@pytest.mark.parametrize("case", list(CASES))
def test_narration_is_the_known_answer(texts, case):
    expected = (DATA / f"explain_{case}.txt").read_text()
    assert texts[case] == expected


#: each step a miss's line names, as the fast-path profile names it, and the cost
#: table's row that charges it
ROWS = {
    "asm": {"save": "asm_save", "gpa": "asm_gpa", "memslot": "asm_memslot",
            "pfn_lookup": "asm_pfn_lookup", "hw_write": "asm_hw_write", "restore": "asm_restore",
            "deliver": "deliver_interrupt", "walk": "asm_walk_per_entry"},
    "C": {"full_exit": "c_full_exit", "gpa": "c_gpa", "memslot": "c_memslot",
          "pfn_lookup": "c_pfn_lookup", "hw_write": "c_hw_write", "restore": "c_restore",
          "deliver": "deliver_interrupt", "walk": "c_walk_per_entry"},
}


@pytest.mark.parametrize("case", list(CASES))
def test_handler_cycles_add_up_to_the_cost_table(texts, case):
    """save (asm) or full_exit (C) + walk per entry x scanned + gpa + memslot + pfn_lookup
    + hw_write + restore, each at its handler's cost and named as the fast-path
    profile names its step (it said "full exit", "GPA", "pfn" and "tlbwe")."""
    from emu.costs import CostTable
    c = CostTable({}).to_dict()
    checked, scanned = 0, None
    for line in texts[case].splitlines():
        w = re.search(r"(\d+) entr(?:y|ies) scanned, (\d+) cycles", line)
        if w:
            scanned, walk = int(w.group(1)), int(w.group(2))
        m = re.search(r"— ([\d,]+) cycles in the (asm|C) handler \((.*)\)", line)
        if m:
            total, rows = int(m.group(1).replace(",", "")), ROWS[m.group(2)]
            assert walk == c[rows["walk"]] * scanned, line
            steps = [p.rsplit(" ", 1) for p in m.group(3).split(" + ")]
            assert sum(int(v) for _, v in steps) == total, line
            for name, v in steps:
                assert name in PROFILE_STEPS, line      # as the profile's plot names it
                assert int(v) == (walk if name == "walk" else c[rows[name]]), line
            checked += 1
    assert checked > 0


def test_the_glossary_says_what_each_step_a_miss_is_charged_is():
    from emu.teach.glossary import glossary_text
    said = glossary_text(10_000)
    for name in [*ROWS["asm"], *ROWS["C"], "entry_restore"]:
        assert re.search(rf"\b{name}\b", said), name


def test_the_c_paths_cycles_add_up_and_reach_the_summary(texts):
    """A C path's line said only its total, a shadow design's entry loop
    hidden in it, and the window's summary left every C path out.  Its parts,
    named as the plots name the cycle categories, add up to its total, gfn_to_pfn is the cost table's (a host page fault's
    more where it faulted), and the summary holds the C paths' sum."""
    from emu.costs import CostTable
    c = CostTable({}).to_dict()
    text = texts["gup"]
    totals = []
    for line in text.splitlines():
        m = re.search(r"C path: (gfn_to_pfn( \(a host page fault\))?).* — ([\d,]+) cycles in C "
                      r"\((.*)\)$", line)
        if m:
            total = int(m.group(3).replace(",", ""))
            parts = dict(p.rsplit(" ", 1) for p in m.group(4).split(", "))
            parts = {k: int(v.replace(",", "")) for k, v in parts.items()}
            assert set(parts) <= set(CYCLE_LABELS.values()), line    # as the plots name them
            assert sum(parts.values()) == total, line
            assert parts["gfn_to_pfn"] == c["gfn_to_pfn"] + (c["host_page_fault"]
                                                              if m.group(2) else 0), line
            totals.append(total)
    assert totals
    assert f" and {sum(totals):,} in the C path after it." in text
    # vcpu_load's line too: its own work and the entry that follows (the loop
    # that writes a shadow design's entries back)
    loads = re.findall(r"vcpu_load cost ([\d,]+) cycles \((.*)\)", text)
    assert loads
    for total, parts in loads:
        assert sum(int(p.rsplit(" ", 1)[1].replace(",", "")) for p in parts.split(", ")) == \
            int(total.replace(",", ""))
        assert f"vcpu_load {c['vcpu_load']:,}" in parts, parts


def test_default_narration_tells_the_story(texts):
    text = texts["default"]
    assert "vm0.vcpu0 resumed on CPU0 (vcpu_load #5 at " in text
    assert "host task 'noise'" in text
    # 7924bd41's vcpu_put (_tlbia) left nothing for the host task to evict
    assert "it now holds 0 hardware TLB entries" in text
    assert "overwrote 0 of vm0.vcpu0's entries" in text
    assert "[cause: flush]" in text and "[cause: host-eviction]" not in text
    assert "[cause: compulsory]" not in text
    assert "#19 " in text and "#20 " not in text


def test_a_store_without_uw_is_narrated_as_a_data_storage_interrupt():
    """2.6.26's shadow TLB (guest-tid), the first resume: a user store through
    the shadow its fill made in user mode (no UW, as head_44x.S @026477c1's
    finish_tlb_load wrote the guest entry) takes a DSI; the guest's DataStorage
    handler runs its own kernel accesses, rewrites word 2 with UW through a
    trapping tlbwe, which KVM maps at once in supervisor mode (UW from SW); the
    rfi to user mode releases every shadow (guest-tid), so the retry misses as
    a flush, is refilled with UW, and hits."""
    r = explain(None, ["kvm.strategy=shadow", "kvm.tid_scheme=guest-tid"], resume=1,
                accesses=100, quiet=False)
    lines = r.text.splitlines()
    at = next(i for i, ln in enumerate(lines) if "a Data Storage interrupt (DSI exit)" in ln)
    # the access it retries: the last one of the process (user mode) told before it
    # (the guest's own miss handler for it came in between, with its kernel accesses)
    store = next(ln for ln in reversed(lines[:at + 1])
                 if ln.startswith("  #") and "user;" in ln)
    assert " store 0x2" in store or " modify 0x2" in store, store
    handler = next(i for i, ln in enumerate(lines) if i > at and "DataStorage" in ln)
    assert all(ln.startswith("  #") or ln.startswith("      ") for ln in lines[at + 1:handler])
    assert "tlbsx" in lines[handler] and "tlbwe ATTRIB" in lines[handler]
    assert "UW from SW" in lines[handler + 1]
    assert "16 trapping instructions" in lines[handler + 2]
    assert lines[handler + 3].strip() == "retry: UTLB miss [cause: flush]"
    retry = next(ln for ln in lines[handler + 3:] if ln.strip().startswith("retry: hit"))
    assert retry


def test_a_first_fetch_is_narrated_as_an_instruction_storage_interrupt():
    """The first resume under direct: the process's first fetch from its code
    page misses, faults the page in, misses again and is filled -- without SX
    or UX, since the fresh PTE has no _PAGE_HWEXEC -- so the retry hits an
    entry without UX: an ISI.  do_page_fault's exec branch sets HWEXEC and its
    _tlbie invalidates the guest entry (25 traps), so the fetch misses as a
    flush, is filled again, now with UX, and hits."""
    r = explain(None, ["kvm.strategy=direct"], resume=1, accesses=400, quiet=False)
    lines = r.text.splitlines()
    at = next(i for i, ln in enumerate(lines) if "an Instruction Storage interrupt (ISI" in ln)
    assert lines[at].strip().startswith("retry: hw[")
    fetch = next(ln for ln in reversed(lines[:at + 1]) if ln.startswith("  #") and "user;" in ln)
    assert " ifetch 0x1" in fetch, fetch
    handler = next(i for i, ln in enumerate(lines) if i > at and "InstructionStorage" in ln)
    assert "HWEXEC" in lines[handler] and "tlbwe PAGEID with V clear" in lines[handler]
    assert "25 trapping instructions" in lines[handler + 1]
    assert lines[handler + 2].strip() == "retry: UTLB miss [cause: flush]"
    rest = lines[handler + 2:]
    assert next(ln for ln in rest if "writes guest TLB entry" in ln)
    assert next(ln.strip() for ln in rest if ln.strip().startswith("retry: hit"))
    assert sum("without UX" in ln for ln in lines) == 1


def test_the_e500_exec_fault_is_narrated_with_its_own_tlbie():
    """The same fault on the e500 (its fill takes SX and UX from HWEXEC too):
    FSL Book-E's _tlbie clears V in MAS1 and writes the entry back, 26 traps
    (14 + 8 + 4)."""
    r = explain(None, ["machine.core=e500", "kvm.strategy=e500-shadow-ids",
                       "kvm.pfn_source=guest-tlb-refs"], resume=1, accesses=400, quiet=False)
    lines = r.text.splitlines()
    handler = next(i for i, ln in enumerate(lines) if "InstructionStorage" in ln)
    assert "mtspr MAS1 and a tlbwe with V clear" in lines[handler]
    assert "26 trapping instructions" in lines[handler + 1]


E500_IDS = ("machine.core=e500", "kvm.strategy=e500-shadow-ids")


def told_under(lines) -> list:
    """Each line of a narration with the access it is told under: (number, EA)
    of the last access label above it ("  #N kind EA ..."), None above the first."""
    out, under = [], None
    for line in lines:
        m = re.match(r"  #(\d+)\s+\w+ (0x[0-9a-f]{8})", line)
        if m:
            under = (int(m.group(1)), int(m.group(2), 16))
        out.append((line, under))
    return out


def test_a_guest_handler_and_the_retries_are_told_under_the_access_they_serve():
    """e500-shadow-ids, the first load: the user store #307 (0x20027578) misses
    in the guest TLB, and the guest's handlers for it run their own kernel
    accesses: the miss handler bails out to the page fault, which takes frame
    0x405 and clears it (#308 to #372, #372 the store to 0xc0405000); the
    store misses again and the miss handler (#373 to #382) writes gtlb[78] =
    EA 0x20027000 -> GPA 0x00405000; the retry is filled without UW, a DSI,
    whose handler (#383 to #392) makes the entry writable; the last retry
    hits.  The store's lines were told where the handler returned, under its
    last kernel access: gtlb[78] and the store's retries under '#382 store
    0xc000b000'.  Now every handler's lines and every retry of the store are
    told under its label, told again as continued; and the narration agrees
    with the counters: the guest's miss handler ran once per delivery told,
    the DSI exits are the DSIs told, and the hardware misses told are the
    context's."""
    from emu.codes import EXIT, TLB
    from emu.guest.os import KERNEL_BASE
    from emu.teach.narrator import build_machine, narrate as narrate_window, pick_vcpu
    machine = build_machine(None, E500_IDS)
    nar = narrate_window(machine, pick_vcpu(machine, None), 1, 400)
    lines = nar.lines
    deliveries = handlers = dsi = dsi_handlers = 0
    pending = {}                           # access -> deliveries whose handler is not told yet
    for line, under in told_under(lines):
        text = line.strip()
        if text.startswith("2. not in the guest TLB"):
            deliveries += 1
            pending[under] = pending.get(under, 0) + 1
        if "a Data Storage interrupt (DSI exit)" in text:
            dsi += 1
        if text.startswith(("guest handler:", "gtlb[")):
            number, ea = under
            assert ea < KERNEL_BASE, f"{text[:60]} told under #{number} {ea:#x}"
        if re.match(r"guest handler: (page-table walk|no PTE)", text):
            handlers += 1
            assert pending.get(under), f"a handler under #{under[0]}, which was not delivered"
            pending[under] -= 1
        if text.startswith("guest handler: DataStorage"):
            dsi_handlers += 1
        if text.startswith("gtlb["):
            page = int(re.search(r"= EA (0x[0-9a-f]+)", text).group(1), 16) >> 12
            assert page == under[1] >> 12, f"{text} told under #{under[0]} {under[1]:#x}"
    for first, last in ((308, 372), (373, 382), (383, 392)):
        assert (f"  #307 store 0x20027578 (continued: #{first} to #{last} were its guest "
                "handler's own accesses)") in lines
    # the window ends in the guest's handler for #393's miss
    assert nar.cur.number == 393 and {k[0]: v for k, v in pending.items() if v} == {393: 1}
    assert handlers == deliveries - 1 == 9
    assert deliveries == sum(p.guest_tlb_misses for p in nar.v.guest.processes)
    exits = nar.v.ctx.arrays["exits"]
    assert dsi == dsi_handlers == int(exits[4 * EXIT["DSI"]]) == 2
    assert sum(len(a.causes) for a in nar.accesses) == int(nar.v.ctx.arrays["tlb"][TLB["misses"]])


@pytest.mark.parametrize("core, overrides, pending, first, last", [
    ("e500", E500_IDS + ("kvm.pfn_source=guest-tlb-refs",), "#16850 ifetch 0x10005ca8", 16986,
     17046),
    ("440", (), "#4025 store 0x2000b570", 4091, 4151),
])
def test_a_tick_taken_before_a_retry_is_no_part_of_the_access(core, overrides, pending, first,
                                                              last):
    """scenarios/boot_like.toml, vcpu_load #3: a user access's guest handler
    returns to user mode, and the guest timer tick is taken before the access
    runs again; the tick's kernel accesses are its own, and the retry is the
    user access's, told under its label again.  The tick's first kernel
    access (ifetch 0xc0000000) was told as the user access's 'retry: hit',
    and the real retry as a new access.  Every event of the fast path is told
    under the access it is, and the hardware misses told are the context's."""
    from emu.codes import TLB
    from emu.teach.narrator import Narrator, _WindowDone, build_machine, pick_vcpu

    class Checked(Narrator):
        """Checks each hit, miss and refusal against the access it was told under."""

        def __init__(self, *args):
            super().__init__(*args)
            self.wrong, self.misses0 = [], None

        def on_vcpu_load(self, call, cpu):
            result = super().on_vcpu_load(call, cpu)
            if self.active and self.misses0 is None:
                self.misses0 = int(self.v.ctx.arrays["tlb"][TLB["misses"]])
            return result

        def check(self, ea, kind):
            told = self.accesses[self.tags[-1]] if self.tags[-1] is not None else None
            if told is None or (told.ea, told.kind) != (ea, kind):
                self.wrong.append((hex(ea), told and (told.number, hex(told.ea))))

        def hit(self, ctx, ea, kind, index, owner):
            try:
                super().hit(ctx, ea, kind, index, owner)
            finally:
                self.check(ea, kind)

        def miss(self, ctx, ea, kind, cause):
            super().miss(ctx, ea, kind, cause)
            self.check(ea, kind)

        def refused(self, ea, kind, index, why):
            super().refused(ea, kind, index, why)
            self.check(ea, kind)

    machine = build_machine(Path(__file__).parents[1] / "scenarios" / "boot_like.toml",
                            overrides)
    nar = Checked(machine, pick_vcpu(machine, None), 3, last + 20)
    try:
        machine.run()
    except _WindowDone:
        pass
    assert not nar.wrong
    assert (f"  {pending} (continued: #{first} to #{last} were the guest timer tick's own "
            "accesses)") in nar.lines
    at = nar.lines.index(f"  {pending} (continued: #{first} to #{last} were the guest timer "
                         "tick's own accesses)")
    assert nar.lines[at - 1].startswith("  -- guest timer tick")
    assert nar.lines[at + 1].strip().startswith("retry: ")
    assert f"#{first} ifetch 0xc0000000" in nar.lines[next(
        i for i, line in enumerate(nar.lines) if line.startswith(f"  #{first} "))]
    misses = int(nar.v.ctx.arrays["tlb"][TLB["misses"]]) - nar.misses0
    assert sum(len(a.causes) for a in nar.accesses) == misses


@pytest.mark.parametrize("strategy", ["shadow", "direct", "shadow-modified"])
def test_a_guest_context_switch_tells_what_it_released_and_what_it_wrote(strategy):
    """scenarios/boot_like.toml, vcpu_load #3: a guest context switch told
    "-2 of its hardware entries released" under shadow, where the switch
    released none and its guest entry's restore wrote two (and "-5" under
    direct, written by the switch's own fills).  The line now tells both, and
    they add up to the change of the vCPU's entries in the hardware TLB."""
    from emu.teach.narrator import Narrator, _WindowDone, build_machine, pick_vcpu

    class Counted(Narrator):
        def __init__(self, *args):
            super().__init__(*args)
            self.held_around = []

        def on_switch_process(self, call, cpu, proc, now):
            before = self.held()
            result = super().on_switch_process(call, cpu, proc, now)
            self.held_around.append((before, self.held()))
            return result

    machine = build_machine(Path(__file__).parents[1] / "scenarios" / "boot_like.toml",
                            [f"kvm.strategy={strategy}"])
    nar = Counted(machine, pick_vcpu(machine, None), 3, 1000)
    try:
        machine.run()
    except _WindowDone:
        pass
    told = [re.fullmatch(r"  -- guest context switch to PID \d+ \(mtspr PID traps\): "
                         r"(\d+) of its hardware entries released, (\d+) written", line)
            for line in nar.lines if "guest context switch" in line]
    assert told and all(told) and len(told) == len(nar.held_around)
    for m, (before, after) in zip(told, nar.held_around):
        released, written = int(m[1]), int(m[2])
        assert before - released + written == after
    assert any(int(m[2]) > 0 for m in told)     # the switches that wrote entries


def test_narration_is_deterministic(texts):
    assert narrate("gup") == texts["gup"]


# -- 2. the exercise ---------------------------------------------------------------------

def test_exercise_answer_is_the_hand_derived_one(answer):
    text = exercise_text()
    assert "24 data pages" in text and "100 pages" in text and "hwater 62" in text
    ans = answer
    # the premises of the hand derivation hold in the model
    assert ans.host_writes >= 63               # the round robin went over all of 0..62
    # at vcpu_put the vCPU held at least the pages the window touches; the set
    # direct-save-on-switch saves holds its 24 pages and pages of its guest
    # kernel (the miss and fault paths' text and data, clear_page's aliases)
    assert all(held >= ans.distinct_pages for held in ans.held_at_put.values())
    assert ans.held_at_put["direct-save-on-switch"] > 24
    # direct: every page misses once, on its first touch after the resume
    assert ans.expected["direct"] == ans.distinct_pages
    assert 1 <= ans.distinct_pages <= 24
    assert ans.computed == ans.expected == {"direct": ans.distinct_pages,
                                            "direct-save-on-switch": 0}
    assert "they agree" in ans.text
    # the text tells the entries direct held as they were: its pages, and the
    # guest kernel's only when there were some
    held = ans.held_at_put["direct"]
    rest = f" and {held - 24} of its guest kernel's" if held > 24 else ""
    assert f"the vCPU held\n{held} hardware TLB entries: its 24 pages{rest}." in ans.text


def test_exercise_distinct_pages_counted_from_the_stream(answer):
    r = explain(exercise_scenario(), ["kvm.strategy=direct"], resume=EXERCISE_RESUME,
                accesses=EXERCISE_ACCESSES, quiet=True)
    pages = {a.ea >> 12 for a in r.accesses}
    assert len(r.accesses) == EXERCISE_ACCESSES
    assert all(0x2000_0000 <= a.ea < 0x2000_0000 + 24 * 4096 for a in r.accesses)
    # each page's first access in the window misses (flushed at vcpu_put), no other does
    first = {}
    for a in r.accesses:
        first.setdefault(a.page, a.number)
    for a in r.accesses:
        assert a.causes == (["flush"] if first[a.page] == a.number else []), a
    assert r.misses == len(pages) == answer.computed["direct"] == answer.distinct_pages


# -- 3. bad input -------------------------------------------------------------------------

def run_cli(argv, capsys):
    """``emu explain`` through the CLI's main, wired as the lead will wire it."""
    from emu import cli
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    if "explain" not in sub.choices:
        add_explain_parser(sub)
    orig = cli.build_parser
    cli.build_parser = lambda command=None: parser
    try:
        code = cli.main(["explain"] + argv)
    finally:
        cli.build_parser = orig
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("argv, message", [
    (["--vcpu", "vm7.vcpu0"], "unknown vCPU 'vm7.vcpu0' (choose from: vm0.vcpu0)"),
    (["--vcpu", ""], "unknown vCPU '' (choose from: vm0.vcpu0)"),      # not the first one
    (["--set", "duration_ms=0.2", "--resume", "9"], "--resume 9: vm0.vcpu0 is loaded only"),
    (["--resume", "0"], "must be at least 1"),
    (["--accesses", "-3"], "must be at least 1"),
    (["--resume", "two"], "invalid integer 'two'"),
    (["no/such/file.toml"], "no/such/file.toml"),
    (["--set", "kvm.stratgy=direct"], "did you mean 'kvm.strategy'"),
])
def test_bad_input_is_one_line_and_exit_2(argv, message, capsys):
    code, out, err = run_cli(argv, capsys)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("emu") and message in err, err


@pytest.mark.parametrize("kw", [dict(vcpu="nope"), dict(resume=0), dict(accesses=0),
                                dict(resume=True)])
def test_bad_input_through_the_api(kw):
    with pytest.raises(EmuError):
        explain(exercise_scenario(), **kw)


@pytest.mark.parametrize("seed", [-1, 1.5, "3", None, True, 1 << 32])
def test_an_exercise_seed_is_checked_through_the_api(seed):
    """The API took any seed: -1, 1.5 or "x" drew an exercise "seed x", and
    solving one failed in its TOML; it is refused as emu explain --seed
    refuses it, for every kind of exercise."""
    from emu.teach.arrays import e500_sets_problem, pfn_cache_problem
    from emu.teach.resume_cost import problem as resume_cost_problem
    for make in (lambda: exercise_text(seed=seed), lambda: solve_exercise(seed=seed),
                 lambda: pfn_cache_problem(seed), lambda: e500_sets_problem(seed),
                 lambda: resume_cost_problem(seed)):
        with pytest.raises(EmuError, match=r"^seed: must be an integer in 0\.\.2\*\*32-1, got "):
            make()


def test_cli_prints_exercise_and_solution(capsys, answer, monkeypatch):
    code, out, _ = run_cli(["--exercise", "--wide"], capsys)
    assert code == 0 and out == exercise_text()
    monkeypatch.setattr("emu.teach.exercise.solve_exercise",
                        lambda *posed, seed=1: answer)                # computed once above
    code, out, _ = run_cli(["--solve", "--wide"], capsys)
    assert code == 0 and out.startswith(exercise_text())
    assert "Computed by the model: direct" in out and "they agree" in out


def test_a_window_the_run_cuts_short_says_so_with_its_counts_grouped():
    """The counts were printed bare (after 65 of the 5000 accesses asked for),
    where every other count is grouped by thousands."""
    text = explain(None, ("duration_ms=0.05",), resume=1, accesses=5000).text
    assert re.search(r" \(the run ended after \d+ of the 5,000 accesses asked for\)\.\n?$",
                     text), text[-300:]


def test_a_trace_from_a_pipe_is_refused_as_it_is_read_more_than_once():
    """The window is found on the compiled backend, then told on the reference
    one: the second run of a piped trace found the pipe empty ("empty trace
    (nothing was read from the pipe)"), and the exercise, whose window that hid,
    said its window was not reached."""
    import os
    r, w = os.pipe()
    try:
        os.write(w, b" L 7ff000,8\n S 7ff008,4\n" * 200)
        os.close(w)
        trace = {"kind": "trace", "path": f"/dev/fd/{r}"}
        scenario = {"duration_ms": 20, "vm": [{"process": [{"workload": trace}]}]}
        for call, reads in ((lambda: explain(scenario, resume=1, accesses=2), 2),
                            (lambda: solve_exercise(scenario), 4)):
            with pytest.raises(EmuError, match=rf"^/dev/fd/{r}: a pipe is read once, and it "
                                               rf"would be read {reads} times "):
                call()
        assert os.read(r, 12) == b" L 7ff000,8\n"          # refused before any read
    finally:
        os.close(r)


def test_cli_narrates(capsys):
    code, out, _ = run_cli(["--resume", "1", "--accesses", "8", "--wide"], capsys)
    assert code == 0
    assert out == (DATA / "explain_first_load.txt").read_text()


# -- 4. the hook changes nothing ----------------------------------------------------------

def test_a_tracer_on_every_context_changes_no_number():
    from emu.params import default_scenario
    from emu.machine import Machine
    from emu.run import resolve
    from emu.stats import collect

    over = ["sim.backend=reference", "duration_ms=0.6", "kvm.pfn_source=gup",
            "vm.0.process.0.workload.mmio_every=300", "costs.sched_latency_us=200",
            "costs.sched_min_granularity_us=50", "host_task.0.sleep_us=100"]
    sums, recorder = [], Recorder()
    for traced in (False, True):
        m = Machine(resolve(default_scenario(), over))
        if traced:
            for t in m.vcpus + m.qemu + m.host_tasks:
                t.ctx.tracer = recorder
        m.run()
        sums.append(json.dumps(collect(m.snapshot())[0], sort_keys=True, default=str))
    assert sums[0] == sums[1]
    events = recorder.events
    kinds = {e["event"] for e in events}
    assert {"hit", "miss", "walk", "gpa", "memslot", "pfn", "hw_write", "end"} <= kinds
    outcomes = {e["outcome"] for e in events if e["event"] == "end"}
    assert {"filled", "guest_miss", "mmio", "deferred", "host_fault"} <= outcomes


def test_the_narrator_replaces_no_method():
    """It listens through the documented interfaces: the vCPU's observer and the
    context's tracer; no handler is replaced on any thread."""
    from emu.teach.narrator import Narrator, build_machine, narrate
    machine = build_machine(None, [])
    threads = machine.vcpus + machine.qemu + machine.host_tasks
    narrate(machine, machine.vcpus[0], 1, 8)
    for t in threads:
        assert not [name for name in vars(t) if callable(getattr(type(t), name, None))], t.name
    assert isinstance(machine.vcpus[0].observer, Narrator)
    assert machine.vcpus[0].ctx.tracer is machine.vcpus[0].observer


def test_a_c_path_fill_into_slot_hwater_is_told():
    """A shadow design's C path that maps into slot hwater writes no hardware
    entry (no entry loop writes that slot): told, where it once crashed."""
    text = explain(overrides=["kvm.strategy=shadow", "kvm.pfn_source=gup"], resume=4,
                   accesses=200).text
    assert "C path: gfn_to_pfn; shadow slot 62 (hwater): the entry loop never writes it" in text


def test_the_e500_is_told_as_it_is():
    """The e500's geometry per version, and its guest's one tlbwe at the way KVM
    named in MAS0[ESEL], 14 trapping instructions (docs/kvm440.md §4.3)."""
    head = explain(overrides=["machine.core=e500", "machine.e500_version=v1",
                              "kvm.strategy=e500-shadow-ids"], accesses=5).text.splitlines()[0]
    assert "e500 core (e500v1 TLB0 256 x 2-way + TLB1 16)" in head
    text = explain(overrides=["machine.core=e500", "kvm.strategy=e500-shadow-ids",
                              "kvm.pfn_source=guest-tlb-refs"], resume=1, accesses=200).text
    lines = text.splitlines()
    i = next(n for n, line in enumerate(lines) if "page-table walk; writes guest TLB entry" in line)
    gi = int(lines[i].split("guest TLB entry ")[1].split()[0])
    assert "(the way KVM named in MAS0[ESEL]) with 1 tlbwe" in lines[i]
    assert lines[i + 1].strip().startswith(f"gtlb[{gi}] = EA 0x2") and "4 KB" in lines[i + 1]
    told = next(line for line in lines[i:] if "trapping instructions)" in line)
    assert "its 14 trapping instructions" in told
    assert f"entry {gi} matches" in next(line for line in lines[i:] if "guest TLB walk" in line)


if __name__ == "__main__" and "--regenerate" in sys.argv:
    for name in CASES:
        (DATA / f"explain_{name}.txt").write_text(narrate(name))
        print(f"wrote tests/data/explain_{name}.txt")


@pytest.mark.parametrize("strategy", ["e500-flush-on-put", "e500-shadow-ids", "shadow-modified",
                                      "direct"])
@pytest.mark.parametrize("resume", [1, 3])
def test_the_e500_is_narrated_its_tlb1_entries_read_from_tlb1(strategy, resume):
    """The C path's pfn was read through TLB0's array for an entry of TLB1
    (index 512 and up): an IndexError on the e500's designs, shipped ones too."""
    text = explain(overrides=["machine.core=e500", f"kvm.strategy={strategy}"],
                   resume=resume, accesses=8).text
    assert f"strategy {strategy}," in text.splitlines()[0]
    assert "UTLB" not in text.split("\n", 1)[1]        # the e500 has TLB0 and TLB1


@pytest.mark.parametrize("overrides, design", [
    (["kvm.pfn_source=gup"], "design: 7924bd41 (tid01, C)"),
    ([], "design: hypothetical: 7924bd41 (tid01, C) + pfn-cache"),
    (["kvm.strategy=direct-noflush", "kvm.pfn_source=gup"],
     "design: hypothetical: 7924bd41 without _tlbia (tid01, C)"),
    (["kvm.handler=asm"], "design: proposal: direct + asm + pfn-cache"),
    (["machine.core=e500", "kvm.strategy=e500-flush-on-put",
      "kvm.pfn_source=guest-tlb-refs"],
     "design: 46f43c6e (C)"),
])
def test_the_header_names_the_design_and_a_machine_no_kernel_shipped(overrides, design):
    header = explain(overrides=overrides, resume=2, accesses=2).text.splitlines()[0]
    assert header.endswith(design), header

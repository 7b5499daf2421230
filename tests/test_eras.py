"""The KVM-440 designs as they shipped: each hook of each era on a hand-derived case.

The cases follow docs/kvm440.md §2.10 (the kernel code each row names); the costs
are the defaults of emu.costs (tlbwe = 1 cycle, hwater 62: slots 0..62).
"""

from __future__ import annotations

import numpy as np
import pytest

from emu.codes import CAUSE, CYCLES, EXIT, KIND_IFETCH, KIND_LOAD, STEP, STOP
from emu.guest.os import UART_EA
from emu.kvm.shadow import mark_modified, release_guest_entry
from emu.machine import Machine
from emu.params import scenario_from_dict
from emu.run import run
from emu.stats import collect

PIN = 63                      # Linux's pinned 256 MB kernel entry, above hwater


def _machine(strategy: str, tid_scheme: str | None = None, pfn_source: str = "gup"):
    kvm = {"strategy": strategy, "pfn_source": pfn_source}
    if tid_scheme:
        kvm["tid_scheme"] = tid_scheme
    m = Machine(scenario_from_dict({"kvm": kvm, "duration_ms": 1, "host_task": [{}]}))
    return m, m.strategy, m.cpus[0], m.vcpus[0]


def _fill(cpu, vcpu, gi: int, tid: int) -> int:
    """Guest entry ``gi`` (4 KB, TID ``tid``) and KVM's shadow of it; the slot."""
    ea = 0x1000_0000 + gi * 0x1000
    vcpu.gtlb.write(gi, ea, 12, tid, 0, 0x10_0000 + gi * 0x1000, 0, -1)
    return vcpu.ctx.map_shadow(cpu.virt, ea, gi, 0x800 + gi)


def _c_path(cpu) -> int:
    return int(cpu.cycles[CYCLES["c_path"]])


def _host_entries(cpu, m, indices):
    """Host entries (TS=0, a host task's context) at each index."""
    host = m.host_tasks[0].ctx.ctx
    for i in indices:
        cpu.write(i, 0x4000_0000 + i * 0x1000, 12, 5, 0, 0x3000_0000 + i * 0x1000, host << 8,
                  host)
    return host


def _flag_count(vcpu) -> int:
    return int(vcpu.ctx.arrays["mod"].sum())


# -- vcpu_put / vcpu_load (docs/kvm440.md §2.10) ------------------------------------------

def test_direct_put_is_tlbia_of_0_to_hwater():
    """7924bd41: _tlbia() at every put -- host entries included; the pinned 63 survives;
    13 + 63 x 4 = 265 cycles; a host entry missed again counts as flushed."""
    m, s, cpu, vcpu = _machine("direct")
    host = _host_entries(cpu, m, range(0, 63))
    assert cpu.tlb.valid_arr[PIN]
    assert s.vcpu_put(cpu, vcpu) == 265
    assert not cpu.tlb.valid_arr[:63].any() and cpu.tlb.valid_arr[PIN]
    assert cpu.virt.cause_of(host << 8, 0, 0x4000_0000 + 7 * 0x1000) == CAUSE["flush"]
    assert s.vcpu_load(cpu, vcpu) == 0


def test_direct_put_keeps_the_shadow_refs():
    """_tlbia does not touch shadow_refs: the pages stay referenced (docs/kvm440.md §2.10)."""
    m, s, cpu, vcpu = _machine("direct")
    slot = _fill(cpu, vcpu, 3, tid=7)
    s.vcpu_put(cpu, vcpu)
    assert not cpu.tlb.valid_arr[slot]
    assert vcpu.ctx.arrays["hwref_gi"][slot] == 3


def test_direct_noflush_put_does_nothing():
    m, s, cpu, vcpu = _machine("direct-noflush")
    _host_entries(cpu, m, range(0, 63))
    assert s.vcpu_put(cpu, vcpu) == 0
    assert cpu.tlb.valid_arr[:64].all()


def test_shadow_2_6_26_has_no_load_or_put_work():
    m, s, cpu, vcpu = _machine("shadow")
    _host_entries(cpu, m, range(10, 20))
    assert s.vcpu_put(cpu, vcpu) == 0
    assert cpu.tlb.valid_arr[10:20].all()


def test_shadow_modified_puts_with_tlbia_and_loads_every_index_modified():
    """2.6.28 44x.c: put = _tlbia(); load marks 0..hwater modified."""
    m, s, cpu, vcpu = _machine("shadow-modified")
    _host_entries(cpu, m, range(0, 63))
    assert s.vcpu_put(cpu, vcpu) == 265
    assert not cpu.tlb.valid_arr[:63].any() and cpu.tlb.valid_arr[PIN]
    vcpu.ctx.clear_modified()
    s.vcpu_load(cpu, vcpu)
    mod = vcpu.ctx.arrays["mod"]
    assert mod[:63].all() and not mod[63]


def test_direct_save_on_switch_rereads_every_index_ever_mapped():
    """67577927: a fill sets the flag, nothing clears it: 10 indices filled once, then
    3 puts -- each put scans 0..62 and re-reads the 10, each load writes the 10 back."""
    m, s, cpu, vcpu = _machine("direct-save-on-switch")
    c = m.costs
    slots = [_fill(cpu, vcpu, gi, tid=7) for gi in range(10)]
    entries = [cpu.tlb.read(i) for i in slots]
    for _ in range(3):
        put = s.vcpu_put(cpu, vcpu)
        assert put == (63 * c["put_scan_per_entry"] + 10 * c["save_on_put_per_entry"]
                       + 10 * c["invalidate_per_entry"])
        assert not any(cpu.tlb.valid_arr[i] for i in slots)
        assert s.vcpu_load(cpu, vcpu) == 10 * c["load_on_load_per_entry"]
        assert [cpu.tlb.read(i) for i in slots] == entries
        assert _flag_count(vcpu) == 10


def test_direct_save_on_switch_reads_back_a_host_entry_and_leaves_it():
    """A released slot is invalid at the next put; a host entry written there while the
    vCPU is out is read back at the following put (TS=0): neither invalidated nor
    restored (docs/kvm440.md §2.10)."""
    m, s, cpu, vcpu = _machine("direct-save-on-switch")
    slot = _fill(cpu, vcpu, 0, tid=7)
    release_guest_entry(cpu, vcpu, 0, CAUSE["self-eviction"])
    s.vcpu_put(cpu, vcpu)
    _host_entries(cpu, m, [slot])
    s.vcpu_load(cpu, vcpu)
    host_entry = cpu.tlb.read(slot)
    s.vcpu_put(cpu, vcpu)
    assert cpu.tlb.read(slot) == host_entry
    assert s.saved[vcpu.ctx.ctx][slot] == host_entry
    s.vcpu_load(cpu, vcpu)
    assert cpu.tlb.read(slot) == host_entry


# -- the privilege switch and the guest PID, by era (docs/kvm440.md §2.10) ----------------

def test_guest_tid_privilege_switch_releases_every_slot():
    """83aae4a8: a syscall (delivery: PR 1 -> 0, rfi: PR 0 -> 1) with k = 5 valid shadows:
    every slot 0..62 released and marked modified at each switch, put_page x 5 at the
    first; 63 x 6 + 40 = 418 cycles of loop each time."""
    m, s, cpu, vcpu = _machine("shadow-modified", "guest-tid")
    slots = [_fill(cpu, vcpu, gi, tid=7) for gi in range(5)]
    assert slots == [0, 1, 2, 3, 4]
    vcpu.ctx.clear_modified()
    before = _c_path(cpu)
    assert s.priv_switch(cpu, vcpu, usermode=False) == 418
    assert _c_path(cpu) - before == 5 * m.costs["put_page"]
    assert vcpu.shadow.valid_count() == 0
    assert not any(cpu.tlb.valid_arr[i] for i in slots)
    assert (vcpu.ctx.arrays["hwref_gi"] < 0).all()
    assert _flag_count(vcpu) == 63 and vcpu.ctx.n_modified == 62
    before = _c_path(cpu)
    assert s.priv_switch(cpu, vcpu, usermode=True) == 418
    assert _c_path(cpu) == before                       # nothing left to put
    assert vcpu.ctx.guest_pr == 1


def test_guest_tid_pid_change_does_nothing_to_the_shadows():
    m, s, cpu, vcpu = _machine("shadow-modified", "guest-tid")
    _fill(cpu, vcpu, 0, tid=7)
    vcpu.ctx.clear_modified()
    assert s.set_pid(cpu, vcpu, 8) == 0
    assert vcpu.ctx.guest_pid == 8
    assert vcpu.shadow.valid_count() == 1 and _flag_count(vcpu) == 0


def test_shadow_2_6_26_switch_sets_no_flags():
    """2.6.26: the same release loop, without modified flags."""
    m, s, cpu, vcpu = _machine("shadow")
    _fill(cpu, vcpu, 0, tid=7)
    vcpu.ctx.clear_modified()
    assert s.priv_switch(cpu, vcpu, usermode=False) == 418
    assert vcpu.shadow.valid_count() == 0 and _flag_count(vcpu) == 0


def test_swap_pid_flushes_once_after_a_pid_change():
    """49dd2c49: mtspr PID arms one flush, at the next privilege switch; none after."""
    m, s, cpu, vcpu = _machine("shadow-modified", "swap-pid")
    _fill(cpu, vcpu, 0, tid=7)
    _fill(cpu, vcpu, 1, tid=0)
    assert s.priv_switch(cpu, vcpu, usermode=False) == 0      # nothing armed
    assert vcpu.shadow.valid_count() == 2
    assert s.set_pid(cpu, vcpu, vcpu.ctx.guest_pid) == 0     # the same PID: nothing
    assert s.set_pid(cpu, vcpu, 9) == 0
    assert vcpu.shadow.valid_count() == 2                    # only armed
    assert s.priv_switch(cpu, vcpu, usermode=True) == 418
    assert vcpu.shadow.valid_count() == 0
    _fill(cpu, vcpu, 2, tid=9)
    assert s.priv_switch(cpu, vcpu, usermode=False) == 0     # a later syscall: no flush
    assert s.priv_switch(cpu, vcpu, usermode=True) == 0
    assert vcpu.shadow.valid_count() == 1
    assert (vcpu.ctx.shadow_pid, vcpu.ctx.guest_pr) == (0, 1)


def test_tid01_shadow_array_releases_the_process_shadows_only():
    """2.6.28 kvmppc_set_pid: 5 user (shadow TID 0) + 3 kernel (shadow TID 1) shadows:
    the 5 go, the 3 stay; every slot of the 64 with shadow TID 0 -- never used ones
    included -- is marked modified; 64 x 5 = 320 cycles of scan."""
    m, s, cpu, vcpu = _machine("shadow-modified", "tid01")
    user = [_fill(cpu, vcpu, gi, tid=7) for gi in range(5)]
    kernel = [_fill(cpu, vcpu, gi, tid=0) for gi in range(5, 8)]
    vcpu.ctx.clear_modified()
    before = _c_path(cpu)
    assert s.set_pid(cpu, vcpu, 8) == 64 * m.costs["set_pid_per_slot"] == 320
    assert _c_path(cpu) - before == 5 * m.costs["put_page"]
    valid = vcpu.shadow.valid_arr
    assert not any(valid[i] for i in user) and all(valid[i] for i in kernel)
    mod = vcpu.ctx.arrays["mod"]
    assert _flag_count(vcpu) == 61 and not any(mod[i] for i in kernel)
    assert vcpu.ctx.n_modified == 59          # the entry loop rewrites those below 62
    assert (vcpu.ctx.shadow_pid, vcpu.ctx.guest_pid) == (0, 8)


def test_tid01_direct_releases_with_tlbie():
    """7924bd41 kvmppc_set_pid: each shadow_ref with TID 0 and a page: tlbie + put_page."""
    m, s, cpu, vcpu = _machine("direct")
    user = _fill(cpu, vcpu, 0, tid=7)
    kernel = _fill(cpu, vcpu, 1, tid=0)
    assert s.set_pid(cpu, vcpu, 8) == 320
    assert not cpu.tlb.valid_arr[user] and cpu.tlb.valid_arr[kernel]
    assert vcpu.ctx.arrays["hwref_gi"][user] == -1 and vcpu.ctx.arrays["hwref_gi"][kernel] == 1


def test_tid01_privilege_switch_only_loads_the_shadow_pid():
    m, s, cpu, vcpu = _machine("direct")
    _fill(cpu, vcpu, 0, tid=7)
    assert s.priv_switch(cpu, vcpu, usermode=False) == 0
    assert (vcpu.ctx.shadow_pid, vcpu.ctx.guest_pr) == (1, 0)
    assert s.priv_switch(cpu, vcpu, usermode=True) == 0
    assert vcpu.ctx.shadow_pid == 0
    assert np.count_nonzero(vcpu.ctx.arrays["hwref_gi"] >= 0) == 1     # nothing released


@pytest.mark.parametrize("strategy, flags", [("shadow-modified", True), ("shadow", False),
                                             ("direct", False)])
def test_a_release_sets_the_modified_flag_where_the_entry_loop_reads_it(strategy, flags):
    """83aae4a8 on: kvmppc_mmu_invalidate marks the released slot modified."""
    m, s, cpu, vcpu = _machine(strategy)
    slot = _fill(cpu, vcpu, 0, tid=7)
    vcpu.ctx.clear_modified()
    assert s.release_guest_entry(cpu, vcpu, 0, CAUSE["self-eviction"]) == 1
    assert bool(vcpu.ctx.arrays["mod"][slot]) is flags
    assert np.count_nonzero(vcpu.ctx.arrays["hwref_gi"] >= 0) == 0


# -- a guest tlbwe over a valid entry: what each design releases (docs/kvm440.md §2.10) ------

A = 0x1000_0000               # a user page, mapped by two processes (TIDs 7 and 8)


def _shadows(cpu, vcpu) -> dict:
    """Guest entries and one shadow of each: gi 0 = (A, TID 7), gi 1 = (A, TID 8),
    gi 2 = (A + 4 KB, TID 7), gi 3 = (A, TID 0), gi 4 = 64 KB at 0x2000_0000 (TID 7)
    shadowed at its first and last 4 KB, gi 5 = (0x2001_0000, TID 7), just past it.
    Returns {name: slot}; the slots come out of the victim counter in order."""
    def entry(gi, ea, tid, shift=12):
        vcpu.gtlb.write(gi, ea, shift, tid, 0, 0x10_0000 + gi * 0x10_000, 0, -1)
    for gi, ea, tid in [(0, A, 7), (1, A, 8), (2, A + 0x1000, 7), (3, A, 0),
                        (5, 0x2001_0000, 7)]:
        entry(gi, ea, tid)
    entry(4, 0x2000_0000, 7, shift=16)
    maps = [("a7", A, 0), ("a8", A, 1), ("b7", A + 0x1000, 2), ("a0", A, 3),
            ("big_first", 0x2000_0000, 4), ("big_last", 0x2000_F000, 4), ("past", 0x2001_0000, 5)]
    return {name: vcpu.ctx.map_shadow(cpu.virt, ea, gi, 0x800 + n)
            for n, (name, ea, gi) in enumerate(maps)}


def _released(vcpu, slots: dict) -> set:
    return {name for name, i in slots.items() if not vcpu.shadow.valid_arr[i]}


# Hand-derived from kvmppc_mmu_invalidate (44x_tlb.c 2.6.26, @83aae4a8, @49dd2c49, 2.6.28):
# a valid slot 0..hwater is released when its page overlaps the old entry's range and its
# shadow TID is 0 or pid ("if (tid && tid != pid) continue").  guest-tid: shadow TID = guest
# TID, pid = the entry's TID; swap-pid / tid01: shadow TID = !guest TID, pid = !TID.
@pytest.mark.parametrize("strategy, era, gi, released", [
    # gi 0 (A, TID 7), pid 7: its own shadow and the TID-0 one at A; TID 8's survives
    ("shadow", "guest-tid", 0, {"a7", "a0"}),
    ("shadow-modified", "guest-tid", 0, {"a7", "a0"}),
    # pid 0: every shadow with TID 0 in range (both processes'); the kernel's (TID 1) survives
    ("shadow-modified", "swap-pid", 0, {"a7", "a8"}),
    ("shadow-modified", "tid01", 0, {"a7", "a8"}),
    # gi 3 (A, TID 0) under guest-tid, pid 0: only shadow TID 0 -- the process ones survive
    ("shadow-modified", "guest-tid", 3, {"a0"}),
    # ... under tid01, pid 1: TID 1 and TID 0 alike, all three at A
    ("shadow-modified", "tid01", 3, {"a7", "a8", "a0"}),
    # gi 4 (64 KB): both of its pieces, not the page just past its end
    ("shadow-modified", "guest-tid", 4, {"big_first", "big_last"}),
    ("shadow-modified", "tid01", 4, {"big_first", "big_last"}),
])
def test_a_shadow_design_releases_by_address_range_and_tid(strategy, era, gi, released):
    m, s, cpu, vcpu = _machine(strategy, era)
    slots = _shadows(cpu, vcpu)
    assert list(slots.values()) == list(range(7))
    vcpu.ctx.clear_modified()
    before = _c_path(cpu)
    assert s.release_guest_entry(cpu, vcpu, gi, CAUSE["self-eviction"]) == len(released)
    assert _released(vcpu, slots) == released
    # each released page's put_page, and before 0bd595fc the mmap_sem held around the loop
    lock = m.costs["mmap_sem_write"] if era in ("guest-tid", "swap-pid") else 0
    assert _c_path(cpu) - before == len(released) * m.costs["put_page"] + lock
    gone = sorted(slots[n] for n in released)
    assert not any(cpu.tlb.valid_arr[i] for i in gone)           # invalid at the next entry
    assert all(cpu.tlb.valid_arr[slots[n]] for n in slots if n not in released)
    assert list(np.flatnonzero(vcpu.ctx.arrays["mod"])) == (gone if s.flags_released else [])


def _fill_direct(cpu, vcpu):
    for gi, tid in [(0, 7), (1, 8), (3, 0)]:
        vcpu.gtlb.write(gi, A, 12, tid, 0, 0x10_0000 + gi * 0x10_000, 0, -1)
    return [(name, vcpu.ctx.map_shadow(cpu.virt, A, gi, 0x800 + gi))
            for name, gi in [("a7", 0), ("a8", 1), ("a0", 3)]]


def test_a_direct_design_releases_by_guest_index():
    """7924bd41 kvmppc_44x_invalidate: only the shadow_refs of the rewritten guest index."""
    m, s, cpu, vcpu = _machine("direct")
    slots = {name: i for name, i in _fill_direct(cpu, vcpu)}
    assert s.release_guest_entry(cpu, vcpu, 0, CAUSE["self-eviction"]) == 1
    hwref = vcpu.ctx.arrays["hwref_gi"]
    assert hwref[slots["a7"]] == -1 and hwref[slots["a8"]] == 1 and hwref[slots["a0"]] == 3


@pytest.mark.parametrize("backend", ["cython", "reference"])
def test_the_guest_tlbwe_trap_releases_by_range_in_the_shadow_eras(backend):
    """Through the EMUL_TLBWE exit: the guest invalidates entry 0 (A, TID 7) under
    83aae4a8; the shadows of TID 7 and TID 0 at A go, TID 8's stays."""
    m, vcpu, cpu = _loaded(backend, "shadow-modified", "kvm.tid_scheme=guest-tid")
    slots = _shadows(cpu, vcpu)
    vcpu.tlbwe(cpu, 0, None, None)
    assert _released(vcpu, slots) == {"a7", "a0"}
    assert not vcpu.gtlb.valid_arr[0] and _exits(vcpu, "EMUL_TLBWE") == 1


# -- the entry loop and the slot-hwater rule (docs/kvm440.md §2.10), both backends ---------------

def _loaded(backend: str, strategy: str, *overrides):
    m = Machine(scenario_from_dict({"kvm": {"strategy": strategy, "pfn_source": "pin-all"},
                                    "duration_ms": 1},
                                   [f"sim.backend={backend}", *overrides]))
    vcpu, cpu = m.vcpus[0], m.cpus[0]
    vcpu.vcpu_load(cpu)
    return m, vcpu, cpu


def _exits(vcpu, category: str) -> int:
    return int(vcpu.ctx.arrays["exits"][4 * EXIT[category]])


@pytest.mark.parametrize("backend", ["cython", "reference"])
def test_a_shadow_in_slot_hwater_never_reaches_hardware(backend):
    """kvmppc_mmu_map picks victims 0..hwater but the entry loop writes 0..hwater-1: a
    shadow placed in slot 62 is not in hardware, the access misses again and the next
    map puts it in slot 0 (one victim counter for the machine)."""
    m, vcpu, cpu = _loaded(backend, "shadow-modified")
    ea, gi = 0x2000_5000, 5
    vcpu.gtlb.write(gi, ea, 12, vcpu.ctx.guest_pid, 0, 0x40_5000, 0, -1)
    m.strategy.shadow_pos[0] = 62
    stop, pos, _ = vcpu.ctx.run_virt(cpu.virt, np.array([ea], np.uint32),
                                     np.array([KIND_LOAD], np.uint8), 0, 1 << 40)
    assert (stop, pos) == (STOP["end"], 1)
    assert _exits(vcpu, "DTLBVIRT") == 2
    assert vcpu.ctx.arrays["causes"][CAUSE["shadow-not-restored"]] == 1
    hwref = vcpu.ctx.arrays["hwref_gi"]
    assert hwref[62] == gi and hwref[0] == gi          # both shadows hold the page
    assert vcpu.shadow.valid_arr[62] and vcpu.shadow.valid_arr[0]
    assert cpu.tlb.read(62)[7] >> 8 != vcpu.ctx.ctx   # hardware 62: not the guest's
    assert cpu.tlb.read(0)[7] >> 8 == vcpu.ctx.ctx
    assert m.strategy.shadow_pos[0] == 1


@pytest.mark.parametrize("backend", ["cython", "reference"])
def test_the_shadow_modified_entry_loop_costs_what_its_code_counts(backend):
    """62 x 5 (scan) + 36 (clear) + m x (7 + 3 tlbwe) with m modified below 62; the
    flags of slots 62 and 63 are cleared but never written."""
    m, vcpu, cpu = _loaded(backend, "shadow-modified")
    vcpu.ctx.clear_modified()
    for i in (3, 9, 17, 40, 61, 62, 63):
        mark_modified(vcpu, i)
    assert vcpu.ctx.n_modified == 5
    assert vcpu.ctx.guest_entry(cpu.virt) == 62 * 5 + 36 + 5 * 10 == 396
    assert vcpu.ctx.n_modified == 0 and not vcpu.ctx.arrays["mod"].any()


@pytest.mark.parametrize("handler", ["asm", "c"])
def test_every_shadow_reentry_runs_the_entry_loop_whatever_the_handler(handler):
    """booke_interrupts.S: every re-entry of a shadow design runs lightweight_exit's loop;
    the assembly handler (the proposal) does not skip it."""
    m, vcpu, cpu = _loaded("cython", "shadow", f"kvm.handler={handler}")
    ea, gi = 0x2000_5000, 5
    vcpu.gtlb.write(gi, ea, 12, vcpu.ctx.guest_pid, 0, 0x40_5000, 0, -1)
    before = int(vcpu.ctx.arrays["profile"][2 * STEP["entry_restore"]])
    vcpu.ctx.run_virt(cpu.virt, np.array([ea], np.uint32), np.array([KIND_LOAD], np.uint8),
                      0, 1 << 40)
    prof = vcpu.ctx.arrays["profile"]
    assert prof[2 * STEP["entry_restore"]] == before + 1
    assert prof[2 * STEP["entry_restore"] + 1] >= 62 * m.costs["shadow_restore_per_entry"]


# -- the trap port: privilege switches and PID changes reach the era -----------------------

@pytest.mark.parametrize("backend", ["cython", "reference"])
def test_a_system_call_under_guest_tid_empties_the_shadows(backend):
    """83aae4a8: the syscall's delivery (PR 1 -> 0) releases every shadow slot, and so
    does its rfi back to user mode; the hardware PID is the guest PID throughout."""
    m, vcpu, cpu = _loaded(backend, "shadow-modified", "kvm.tid_scheme=guest-tid")
    pid = vcpu.ctx.guest_pid
    for gi in range(4):
        _fill(cpu, vcpu, gi, tid=pid)
    assert vcpu.shadow.valid_count() == 4
    assert cpu.tlb.read(0)[3] == pid                   # shadow TID = the guest's TID
    vcpu.deliver(cpu, "SYSCALL")
    assert vcpu.shadow.valid_count() == 0 and vcpu.ctx.guest_pr == 0
    assert vcpu.ctx.shadow_pid == pid
    _fill(cpu, vcpu, 10, tid=0)                        # the kernel's own access
    vcpu.rfi(cpu, usermode=True)
    assert vcpu.shadow.valid_count() == 0 and vcpu.ctx.shadow_pid == pid
    assert _exits(vcpu, "SYSCALL") == 1 and _exits(vcpu, "EMUL_RFI") == 1


@pytest.mark.parametrize("backend", ["cython", "reference"])
def test_swap_pid_flushes_once_through_the_port(backend):
    """49dd2c49: mtspr PID in the guest kernel, then the rfi to user flushes once; the
    next system call flushes nothing."""
    m, vcpu, cpu = _loaded(backend, "shadow-modified", "kvm.tid_scheme=swap-pid")
    vcpu.deliver(cpu, "SYSCALL")
    _fill(cpu, vcpu, 0, tid=vcpu.ctx.guest_pid)
    vcpu.mtspr_pid(cpu, vcpu.ctx.guest_pid + 1)
    assert vcpu.shadow.valid_count() == 1
    vcpu.rfi(cpu, usermode=True)
    assert vcpu.shadow.valid_count() == 0
    _fill(cpu, vcpu, 1, tid=vcpu.ctx.guest_pid)
    vcpu.deliver(cpu, "SYSCALL")
    vcpu.rfi(cpu, usermode=True)
    assert vcpu.shadow.valid_count() == 1


def test_a_mode_that_does_not_change_is_no_privilege_switch():
    m, vcpu, cpu = _loaded("cython", "shadow-modified", "kvm.tid_scheme=guest-tid")
    _fill(cpu, vcpu, 0, tid=vcpu.ctx.guest_pid)
    vcpu.priv_switch(cpu, usermode=True)               # already in user mode
    vcpu.rfi(cpu, usermode=True)                       # an rfi that stays in user mode
    assert vcpu.shadow.valid_count() == 1


# -- an instruction fetch from a device (docs/kvm440.md §2.10) ------------------------------------

@pytest.mark.parametrize("backend", ["cython", "reference"])
def test_an_itlb_miss_to_a_device_is_itlbvirt_and_a_machine_check(backend):
    """booke.c @73e75b41: the guest entry is found, ITLB_VIRT is counted before the gfn
    check, and a fetch from non-RAM queues a machine check; only data accesses are MMIO."""
    m, vcpu, cpu = _loaded(backend, "direct")
    stop, pos, _ = vcpu.ctx.run_virt(cpu.virt, np.array([UART_EA], np.uint32),
                                     np.array([KIND_IFETCH], np.uint8), 0, 1 << 40)
    assert (stop, pos) == (STOP["machine_check"], 0)
    assert _exits(vcpu, "ITLBVIRT") == 1 and _exits(vcpu, "MMIO") == 0

    class Proc:
        pos = 0
    proc = Proc()
    vcpu.machine_check(proc)
    assert (vcpu.machine_checks, proc.pos) == (1, 1)
    m.simulated_cycles = cpu.total()                   # where Machine.run would have ended
    assert collect(m.snapshot())[0]["guest_machine_checks"] == 1
    # the same page loaded: MMIO
    stop, _, _ = vcpu.ctx.run_virt(cpu.virt, np.array([UART_EA], np.uint32),
                                   np.array([KIND_LOAD], np.uint8), 0, 1 << 40)
    assert stop == STOP["mmio"]


# -- exit timing as the kernel kept it (timing.c @73e75b41) --------------------------------

def test_the_summary_gives_the_kernels_whole_microseconds_beside_the_cycles():
    """Each exit truncated to whole µs before it is counted: a category's kernel sum lies
    between its exact µs less one per exit and its exact µs; min and max are the
    truncated exact ones; the exits table carries the same figures."""
    r = run(scenario_from_dict({"duration_ms": 1, "kvm": {"strategy": "shadow"}}))
    s, clock = r.summary, r.summary["costs"]["clock_mhz"]
    seen = 0
    for name, e in s["exits"].items():
        k = e["kernel_us"]
        if not e["count"]:
            assert k == {"sum": 0, "min": 0, "max": 0, "sumsq": 0}
            continue
        seen += 1
        assert e["sum_us"] - e["count"] < k["sum"] <= e["sum_us"], name
        assert (k["min"], k["max"]) == (e["min"] // clock, e["max"] // clock), name
        assert k["max"] ** 2 <= k["sumsq"] <= e["count"] * k["max"] ** 2, name
    assert seen > 3
    rows = {row["category"]: row for row in r.tables["exits"]}
    for name, row in rows.items():
        assert row["kernel_sum_us"] == s["exits"][name]["kernel_us"]["sum"]

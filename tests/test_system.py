"""The full-system model: what a correct model of KVM's TLB designs must show.

Each behavioural check runs on both backends (the Cython fast path and the
pure-Python reference) through one base class; known answers are derived in
the comments.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from emu.params import default_scenario
from emu.machine import Machine
from emu.run import resolve, run
from emu.stats import collect, figures
from emu.report.reading import idle_cpus
from emu.hw.ppc440 import SR, SW, SX, UR, UW, UX

WS_PAGES = 20
CODE_PAGES = 4

# A dense schedule so that a short run has many resumes: the scheduler's
# tunables are scaled down 50x (latency 120 us), the host task runs 20 us out
# of every 100 us and touches 100 pages in that time (> 64 entries), so under
# `direct` it evicts every guest entry between two resumes.  Accesses cost 20
# cycles so that the pure-Python backend has fewer of them to run, and page
# faults are cheap so that the warm-up is short.
DENSE = [
    "duration_ms=2", "costs.access=20", "costs.sched_latency_us=120",
    "costs.sched_min_granularity_us=15", "costs.sched_wakeup_granularity_us=20",
    "costs.host_page_fault=50", "costs.guest_page_fault=50",
    f"vm.0.process.0.workload.pages={WS_PAGES}",
    f"vm.0.process.0.workload.code_pages={CODE_PAGES}",
    "host_task.0.run_us=20", "host_task.0.sleep_us=80",
    "host_task.0.workload.pages=100", "host_task.0.workload.inst_fraction=0",
]


def summary(backend, *overrides, base=DENSE):
    return run(default_scenario(), list(base) + list(overrides) + [f"sim.backend={backend}"]).summary


def machine_run(backend, *overrides, base=DENSE):
    """(the machine after its run, its summary)."""
    m = Machine(resolve(default_scenario(), list(base) + list(overrides) +
                        [f"sim.backend={backend}"]))
    m.run()
    return m, collect(m.snapshot())[0]


def kernel_pages(m) -> int:
    """The distinct pages the guest kernels touched: their footprints' pages and
    one page per demand fault (clear_page of the new frame, through the kernel's
    linear mapping)."""
    pages = set().union(*(v.kernel.fp.pages() for v in m.vcpus))
    return len(pages) + sum(g.page_faults for g in m.guests)


class Base:
    backend = "cython"

    def test_direct_repopulates_the_working_set_after_each_resume(self):
        m, s = machine_run(self.backend, "kvm.strategy=direct", "duration_ms=3")
        ws = WS_PAGES + CODE_PAGES
        resumes = s["repopulation"]["resumes"]
        causes = s["tlb"]["guest"]["misses_by_cause"]
        assert resumes >= 15
        # every vcpu_put runs _tlbia (7924bd41): every resume refills the whole working set
        assert 0.7 * ws * (resumes - 3) <= causes["flush"] <= 1.1 * (ws + kernel_pages(m)) * resumes
        assert causes["host-eviction"] == 0
        # a first touch misses twice (before the guest's page fault and at the
        # retry); each page the guest kernel touches misses once
        assert causes["compulsory"] == 2 * ws + kernel_pages(m)
        # without that flush the host evicts what it touches instead; the only
        # flushes left are the guest's own: each exec fault's _tlbie (one per
        # code page) invalidates the entry its fetch then misses on
        noflush = summary(self.backend, "kvm.strategy=direct-noflush", "duration_ms=3")
        causes = noflush["tlb"]["guest"]["misses_by_cause"]
        assert causes["flush"] == noflush["exits"]["ISI"]["count"] == CODE_PAGES
        assert causes["host-eviction"] > 0

    @pytest.mark.parametrize("strategy", ["shadow", "shadow-modified", "direct-save-on-switch"])
    def test_restoring_designs_lose_nothing_to_the_host(self, strategy):
        s = summary(self.backend, f"kvm.strategy={strategy}", "duration_ms=3")
        causes = s["tlb"]["guest"]["misses_by_cause"]
        assert causes["host-eviction"] == 0 and causes["other-guest-eviction"] == 0
        # every miss is a first touch or the guest's own doing (its TLB, its fills)...
        own = causes["compulsory"] + causes["self-eviction"]
        if strategy == "shadow":
            # ...or 2.6.26's own: every privilege switch (guest-tid) releases all the
            # shadows
            assert causes["flush"] > causes["compulsory"] > 0
        else:
            # ...or the guest's _tlbie at each exec fault, whose fetch then misses
            assert causes["flush"] == s["exits"]["ISI"]["count"] > 0
        own += causes["flush"]
        if strategy != "direct-save-on-switch":
            # ...or a shadow design's: a shadow mapped into slot hwater never reaches
            # hardware (KVM's victim counter runs over 0..hwater, the entry loop
            # writes 0..hwater-1)
            own += causes["shadow-not-restored"]
        else:
            assert causes["shadow-not-restored"] == 0
        assert s["tlb"]["guest"]["misses"] == own
        assert s["repopulation"]["resumes"] >= 10
        # the host task, on the other hand, lost its entries to the guest
        if strategy != "direct-save-on-switch":
            assert s["tlb"]["host"]["misses_by_cause"]["other-guest-eviction"] > 0

    def test_cycle_breakdown_adds_up_to_time_times_cpus(self):
        for extra in ([], ["machine.cpus=2", "vm.0.vcpus=2"]):
            s = summary(self.backend, *extra)
            assert sum(s["cycles"].values()) == s["simulated_cycles"] * s["cpus"]
            assert s["simulated_cycles"] >= 2 * 667_000

    def test_warmup_leaves_out_the_first_fill(self):
        # direct-save-on-switch loses nothing to the host, so once the 24 pages
        # are in (inside the first 2.5 ms: each first touch is a page fault of
        # 49 exits, and a first store a DSI of 17) no page is touched for the
        # first time: with a 2.5 ms warm-up there is no compulsory miss and no
        # page fault.
        over = ("kvm.strategy=direct-save-on-switch", "duration_ms=4")
        cold = summary(self.backend, *over)
        warm = summary(self.backend, *over, "sim.warmup_ms=2.5")
        assert cold["tlb"]["guest"]["misses_by_cause"]["compulsory"] > 0
        assert cold["guest_page_faults"] >= WS_PAGES
        assert warm["tlb"]["guest"]["misses_by_cause"]["compulsory"] == 0
        assert warm["guest_page_faults"] == 0 and warm["gfn_to_pfn_calls"] == 0
        # the same run, counted from later: the accesses of the last 1.5 ms, which
        # the start-up no longer slows, more than their share of the 4 ms (3/8) of
        # the whole run's, and fewer than all but the start-up's (24 page faults,
        # 20 DSIs, 4 exec faults: at least a quarter of the run's accesses are
        # not made in its first 2.5 ms)
        assert 0.375 * cold["guest_accesses"] < warm["guest_accesses"] \
            < 0.75 * cold["guest_accesses"]
        assert 0 < warm["repopulation"]["resumes"] < cold["repopulation"]["resumes"]
        # the breakdown covers exactly the CPU's window, which starts at the first
        # scheduling point at or after 2.5 ms (quanta end there: within one exit)
        (start,) = warm["cpu_measured_from"]
        assert warm["warmup_cycles"] == 2.5 * 667_000
        assert 2.5 * 667_000 <= start < 2.5 * 667_000 + 20 * 667
        assert sum(warm["cycles"].values()) == warm["measured_cpu_cycles"]
        assert warm["measured_cpu_cycles"] == warm["simulated_cycles"] - start
        assert cold["measured_cpu_cycles"] == cold["simulated_cycles"]

    def test_halves_tell_a_run_that_counts_the_first_fill(self):
        # the run of the test above, cut at the middle of its counted window:
        # from the start, the first half (0-2 ms) holds the whole first fill
        # (a page fault of 49 exits per page, a DSI per data page, an exec
        # fault per code page) and costs far more per guest access than the
        # second; after a 2.5 ms warm-up both halves are steady
        over = ("kvm.strategy=direct-save-on-switch", "duration_ms=4")
        for s, at, settled in ((summary(self.backend, *over), 2 * 667_000, False),
                               (summary(self.backend, *over, "sim.warmup_ms=2.5"),
                                int(2.5 * 667_000) + 3 * 667_000 // 4, True)):
            h = s["halves"]
            assert h["at_cycles"] == at
            assert sum(h["guest_accesses"]) == s["guest_accesses"] and min(h["guest_accesses"]) > 0
            (start,) = s["cpu_measured_from"]
            assert h["cycles_per_guest_access"] == [(at - start) / h["guest_accesses"][0],
                                                    (s["simulated_cycles"] - at)
                                                    / h["guest_accesses"][1]]
            assert figures.settled(s) is settled
        first, second = summary(self.backend, *over)["halves"]["cycles_per_guest_access"]
        assert first > 2 * second

    def test_warmup_breakdown_adds_up_on_each_cpu(self):
        s = summary(self.backend, "machine.cpus=2", "vm.0.vcpus=2", "sim.warmup_ms=0.7")
        starts, w = s["cpu_measured_from"], s["warmup_cycles"]
        assert w == 466_900                                  # 0.7 ms at 667 MHz
        # each CPU counts from its first scheduling point after the warm-up: a quantum
        # is cut at it, so only the guest handler then in progress (a demand fault's
        # dozens of exits, say) runs past it, well within one 100 us quantum
        assert len(starts) == 2 and all(w <= m < w + 100 * 667 for m in starts)
        assert sum(s["cycles"].values()) == s["measured_cpu_cycles"] \
            == sum(s["simulated_cycles"] - m for m in starts)
        cpu_rows = {}
        for row in run(default_scenario(), DENSE + ["machine.cpus=2", "vm.0.vcpus=2",
                                                    "sim.warmup_ms=0.7",
                                                    f"sim.backend={self.backend}"]).tables["cycles"]:
            cpu_rows[row["cpu"]] = cpu_rows.get(row["cpu"], 0) + row["cycles"]
        assert cpu_rows == {c: s["simulated_cycles"] - m for c, m in enumerate(starts)}

    def test_a_user_store_through_an_entry_without_uw_takes_a_dsi(self):
        """Linux 44x's finish_tlb_load (head_44x.S @026477c1) writes no UW, and a
        shadow made in the guest's user mode carries the guest's user permissions
        (kvmppc_44x_tlb_shadow_attrib): the first store through it is a DSI, whose
        handler (tlbsx, tlbwe ATTRIB) gives the guest entry UW for good.  One made
        in supervisor mode (the eager map of the fill's own tlbwe) gets UW from SW."""
        for design, exact in ((["kvm.strategy=shadow", "kvm.tid_scheme=guest-tid"], True),
                              (["kvm.strategy=direct"], True),
                              (["kvm.strategy=direct-save-on-switch"], False)):
            s = summary(self.backend, *design, "duration_ms=8")
            assert s["guest_page_faults"] >= WS_PAGES           # every data page is in
            dsi, tlbsx = s["exits"]["DSI"]["count"], s["exits"]["EMUL_TLBSX"]["count"]
            # one tlbsx per handler (the exec fault's _tlbie has one too)
            assert dsi + s["exits"]["ISI"]["count"] == tlbsx
            if exact:
                # guest-tid releases every shadow at the rfi to user mode, and 7924bd41's
                # vcpu_put flushes them: each data page is refilled in user mode, then
                # stored to -- one DSI each (its guest entry is never replaced)
                assert dsi == WS_PAGES, design
            else:
                # saved and restored, a page's supervisor-made shadow may never be lost
                assert 0 < dsi <= WS_PAGES, design
        # the e500 guest's fill takes UW from _PAGE_HWWRITE, which its DataStorage
        # fast path sets for good: one DSI per data page, whatever the design
        for design in ("e500-shadow-ids", "e500-flush-on-put"):
            s = summary(self.backend, "machine.core=e500", f"kvm.strategy={design}",
                        "kvm.pfn_source=guest-tlb-refs", "duration_ms=8")
            # (and each code page's exec fault searches once, in its _tlbie)
            assert s["exits"]["DSI"]["count"] == WS_PAGES
            assert WS_PAGES + s["exits"]["ISI"]["count"] == s["exits"]["EMUL_TLBSX"]["count"]

    def test_a_first_fetch_from_each_code_page_takes_an_exec_fault(self):
        """A user PTE is made without _PAGE_HWEXEC (_PAGE_EXEC is 0 on 44x), so
        the fill writes neither SX nor UX and the first fetch from each page is
        an ISI: do_page_fault's exec branch sets HWEXEC for good and its _tlbie
        invalidates the entry, which the fetch then misses on.  Once per page
        of each address space, whatever the design; a new process (exec) starts
        again: every life but the last has fetched from all its code pages."""
        for design in ("shadow-modified", "direct", "direct-save-on-switch"):
            s = summary(self.backend, f"kvm.strategy={design}", "duration_ms=8")
            assert s["exits"]["ISI"]["count"] == CODE_PAGES, design
        m, s = machine_run(self.backend, "kvm.strategy=direct-save-on-switch", "duration_ms=8",
                           "vm.0.process.0.workload.lifetime_accesses=20000")
        (proc,) = m.guests[0].processes
        assert proc.starts >= 2
        isi = s["exits"]["ISI"]["count"]
        assert CODE_PAGES * proc.starts <= isi <= CODE_PAGES * (proc.starts + 1)
        assert m.guests[0].exec_faults == isi
        # counted from the warm-up's end, as the exits are
        m, s = machine_run(self.backend, "kvm.strategy=direct-save-on-switch", "duration_ms=8",
                           "vm.0.process.0.workload.lifetime_accesses=20000",
                           "sim.warmup_ms=4")
        assert m.guests[0].exec_faults == s["exits"]["ISI"]["count"] < isi
        # the e500 guest's fill takes SX and UX from HWEXEC too, and its fault.c has
        # the same exec branch: one ISI per code page there as well, under both designs
        # (16 ms: flush-on-put starts slowly, and the code loop must reach every page)
        for design in ("e500-shadow-ids", "e500-flush-on-put"):
            s = summary(self.backend, "machine.core=e500", f"kvm.strategy={design}",
                        "kvm.pfn_source=guest-tlb-refs", "duration_ms=16")
            assert s["exits"]["ISI"]["count"] == CODE_PAGES, design

    def test_a_shadow_gets_the_guest_permissions_its_mode_sees(self):
        # kvmppc_44x_tlb_shadow_attrib: in user mode the guest's own; in supervisor
        # mode its supervisor permissions copied into the user ones; SX SR SW always
        v = Machine(resolve(default_scenario(), [f"sim.backend={self.backend}"])).vcpus[0]
        for attr, user, supervisor in (
                (SR | SW | SX | UR | UX, SR | SW | SX | UR | UX, 0x3F),    # a fill: no UW
                (SR | SW | SX | UR | UX | UW, 0x3F, 0x3F),                 # after the DSI
                (SR | SX | UR | UX, SR | SW | SX | UR | UX, SR | SW | SX | UR | UX),  # read-only
                (0, SR | SW | SX, SR | SW | SX)):     # the host's own, copied before they are
            v.gtlb.write(5, 0x2000_0000, 12, 1, 0, 0x40_0000, attr, -1)
            v.ctx.guest_pr = 1
            assert v.ctx.shadow_attrib(5) == user, hex(attr)
            v.ctx.guest_pr = 0
            assert v.ctx.shadow_attrib(5) == supervisor, hex(attr)

    def test_each_cpu_keeps_its_idle_cycles(self):
        # placement (emu/machine.py): the vCPU, QEMU and host task 0 each start on
        # CPU 0 and never migrate, so on two CPUs CPU 1 idles its whole window
        s = summary(self.backend, "machine.cpus=2")
        idle, starts = s["cpu_idle_cycles"], s["cpu_measured_from"]
        assert idle == [0, s["simulated_cycles"] - starts[1]]
        assert sum(idle) == s["cycles"]["idle"]
        assert idle_cpus(s) == [(1, 1.0)]
        # the host task pinned there runs 20 us of every 100 us: CPU 1 idles 4/5
        s = summary(self.backend, "machine.cpus=2", "host_task.0.cpu=1")
        assert sum(s["cpu_idle_cycles"]) == s["cycles"]["idle"]
        assert 0.75 < s["cpu_idle_cycles"][1] / s["simulated_cycles"] < 0.85
        assert idle_cpus(s) == []

    def test_pin_all_pins_every_page_and_never_defers(self):
        s = summary(self.backend, "kvm.pfn_source=pin-all", "vm.0.memory_mb=16",
                    "kvm.handler=asm")
        assert s["memory_bytes"]["pinned_pages"] == 16 << 20
        assert s["memory_bytes"]["pfn_table"] == (16 << 20) // 4096 * 8   # 8 bytes a page
        assert s["fastpath_profile"]["deferred_c_path"]["count"] == 0
        assert s["gfn_to_pfn_calls"] == 0
        assert s["startup_cycles"] > 0
        gup = summary(self.backend, "kvm.pfn_source=gup", "vm.0.memory_mb=16", "kvm.handler=asm")
        assert gup["fastpath_profile"]["deferred_c_path"]["count"] > 0
        assert gup["gfn_to_pfn_calls"] > 0

    def test_two_guests_on_one_cpu_never_see_each_other_in_a_shipped_design(self):
        # Two VMs, one vCPU each, one CPU: every shadow entry is TS=1 with shadow
        # TID 0/1, so without a flush at vcpu_put one guest hits the other's entries:
        # 7924bd41 has one (_tlbia); the hypothetical direct-noflush shows why.
        # (get_user_pages, as every KVM-440 had: the designs as they shipped)
        two = ["vm.1.vcpus=1", "vm.1.process.0.workload.pages=20", "kvm.pfn_source=gup"]
        noflush = summary(self.backend, "kvm.strategy=direct-noflush", *two)
        assert noflush["tlb"]["isolation_violations"] > 0
        assert noflush["design"]["label"].startswith("hypothetical: ")
        for strategy, scheme in (("shadow", "guest-tid"), ("shadow-modified", "guest-tid"),
                                 ("shadow-modified", "swap-pid"), ("shadow-modified", "tid01"),
                                 ("direct", "tid01"), ("direct-save-on-switch", "tid01")):
            s = summary(self.backend, f"kvm.strategy={strategy}", f"kvm.tid_scheme={scheme}",
                        *two)
            assert s["tlb"]["isolation_violations"] == 0, (strategy, scheme)
            assert not s["design"]["hypothetical"]

    def test_e500_designs_isolate(self):
        two = ["machine.core=e500", "vm.1.vcpus=1", "vm.1.process.0.workload.pages=20"]
        for strategy in ("e500-flush-on-put", "e500-shadow-ids"):
            s = summary(self.backend, f"kvm.strategy={strategy}", *two)
            assert s["tlb"]["isolation_violations"] == 0
            assert s["guest_accesses"] > 0
        # direct, which no e500 kernel shipped, and the proposal on the e500 flush
        # at vcpu_put as 7924bd41 does on the 440 (_tlbil_all there): both guests
        # run with TIDs 0/1 in AS1, and without the flush (direct-noflush) one
        # hits the other's entries.  They ran without it: the proposal was the
        # e500's cheapest design, with tens of thousands of violations in the
        # storm study's three VMs
        for extra in ([], ["kvm.handler=asm", "kvm.pfn_source=pfn-cache"]):
            s = summary(self.backend, "kvm.strategy=direct", *extra, *two)
            assert s["tlb"]["isolation_violations"] == 0, extra
            assert s["design"]["hypothetical"]
            # every vcpu_put flushes: the guest's entries are gone at each load
            assert s["tlb"]["guest"]["misses_by_cause"]["flush"] > 0
        noflush = summary(self.backend, "kvm.strategy=direct-noflush", *two)
        assert noflush["tlb"]["isolation_violations"] > 0
        assert noflush["tlb"]["guest"]["misses_by_cause"]["flush"] < \
            s["tlb"]["guest"]["misses_by_cause"]["flush"]

    def test_shadow_ids_survive_guest_context_switches(self):
        # Two guest processes switching every tick: 46f43c6e flushes at every return to
        # guest user mode (a PID change itself needs nothing: shadow TID = guest TID);
        # e500 shadow IDs keep every entry tagged instead.
        procs = ["vm.0.process.0.count=2", "costs.guest_timeslice_us=100",
                 "costs.guest_timer_period_us=100", "costs.host_timer_period_us=100"]
        flush = summary(self.backend, "machine.core=e500", "kvm.strategy=e500-flush-on-put", *procs)
        sids = summary(self.backend, "machine.core=e500", "kvm.strategy=e500-shadow-ids", *procs)
        assert flush["tlb"]["guest"]["misses_by_cause"]["guest-context-switch"] == 0
        assert flush["tlb"]["guest"]["misses_by_cause"]["flush"] > 0
        assert sids["tlb"]["guest"]["misses_by_cause"]["guest-context-switch"] == 0
        # ... its only flushes are the exec faults' _tlbie: one guest entry each, whose
        # shadows (one per PR value, shadow IDs being keyed by AS, TID and PR) it releases
        isi = sids["exits"]["ISI"]["count"]
        assert 0 < isi <= sids["tlb"]["guest"]["misses_by_cause"]["flush"] <= 2 * isi
        assert sids["tlb"]["guest"]["miss_rate"] < flush["tlb"]["guest"]["miss_rate"]


class TestCython(Base):
    backend = "cython"


class TestReference(Base):
    backend = "reference"


# -- backends, chunks and determinism -------------------------------------------------

COMBOS = [
    ["kvm.strategy=direct"],
    ["kvm.strategy=shadow", "kvm.handler=c", "duration_ms=12"],   # past its slow cold start
    ["kvm.strategy=shadow-modified", "vm.0.process.0.workload.syscall_every=200"],
    ["kvm.strategy=direct-save-on-switch", "kvm.pfn_source=gup", "machine.cpus=2",
     "vm.0.vcpus=2", "sim.warmup_ms=0.3"],
    ["kvm.pfn_source=guest-tlb-refs", "kvm.guest_tlb_walk=hashed", "kvm.batch_tlbwe=true"],
    ["machine.micro_tlb=true", "vm.0.process.0.workload.mmio_every=500"],
    ["machine.core=e500", "kvm.strategy=e500-shadow-ids", "vm.0.process.0.count=3"],
    ["machine.core=e500", "kvm.strategy=direct", "vm.0.process.0.workload.mmio_every=300",
     "vm.0.process.0.workload.mmio_device=block"],
]


@pytest.mark.parametrize("combo", COMBOS, ids=lambda c: ",".join(x.split("=")[1] for x in c))
def test_backends_give_the_same_summary(combo):
    base = DENSE[1:] + ["duration_ms=4"]         # past the cold start of the slowest design
    a = summary("cython", *combo, base=base)
    b = summary("reference", *combo, base=base)
    assert a.pop("backend") == "cython" and b.pop("backend") == "reference"
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    assert a["guest_accesses"] > 1000


@pytest.mark.parametrize("combo", COMBOS[:4] + COMBOS[6:], ids=lambda c: c[0].split("=")[1])
def test_chunk_size_changes_no_byte_of_the_summary(combo, tmp_path):
    texts = []
    for chunk in (97, 65536):
        out = tmp_path / str(chunk)
        r = run(default_scenario(), DENSE + ["duration_ms=3"] + combo + [f"sim.chunk={chunk}"])
        r.write(out)
        texts.append((out / "summary.json").read_bytes())
        assert json.loads((out / "run.json").read_text())["chunk"] == chunk
    assert texts[0] == texts[1]


def test_same_seed_same_result_other_seed_other_result():
    a, b = (summary("cython", "seed=5") for _ in range(2))
    c = summary("cython", "seed=6")
    assert a == b and a["guest_accesses"] != c["guest_accesses"]


def test_pinning_puts_vcpus_and_qemu_on_the_chosen_cpus():
    # An MMIO-heavy guest on a 2-CPU host.  By default QEMU (VM 0 -> CPU 0)
    # shares the vCPU's CPU; qemu_cpu = 1 moves its cycles to CPU 1 and gives
    # the guest more of CPU 0; vcpu_cpus = [1] moves the guest as well.
    def per_cpu(*extra):
        r = run(default_scenario(), ["duration_ms=3", "machine.cpus=2",
                                     "vm.0.process.0.workload.mmio_every=300", *extra])
        rows: dict = {}
        for row in r.tables["cycles"]:
            rows.setdefault(row["cpu"], {})[row["component"]] = row["cycles"]
        return {c: (v["guest"], v["qemu"]) for c, v in rows.items()}

    shared, apart, moved = (per_cpu(), per_cpu("vm.0.qemu_cpu=1"),
                            per_cpu("vm.0.vcpu_cpus=[1]", "vm.0.qemu_cpu=1"))
    assert shared[0][1] > 0 and shared[1] == (0, 0)
    assert apart[0][1] == 0 and apart[1][1] > 0 and apart[1][0] == 0
    assert apart[0][0] > shared[0][0]            # the guest no longer waits for QEMU's CPU time
    assert moved[0] == (0, 0) and moved[1][0] > 0 and moved[1][1] > 0


# -- single mechanisms, checked in place --------------------------------------------------

@pytest.mark.parametrize("backend", ["cython", "reference"])
def test_guest_pid_change_releases_exactly_the_process_entries(backend):
    # direct-noflush: direct's fills and releases, without the _tlbia of the final put
    sc = resolve(default_scenario(), DENSE + ["kvm.strategy=direct-noflush",
                                              "duration_ms=1.5", "host_task.0.run_us=1",
                                              "vm.0.process.0.count=2",
                                              "vm.0.process.0.workload.syscall_every=50",
                                              f"sim.backend={backend}"])
    m = Machine(sc)
    m.run()
    vcpu, cpu = m.vcpus[0], m.cpus[0]
    tlb = cpu.tlb
    mine = (tlb.owner_arr >> 8 == vcpu.ctx.ctx) & (tlb.valid_arr == 1) & (tlb.ts_arr == 1)
    process = mine & (tlb.tid_arr == 0)          # shadow TID 0: guest TID != 0
    kernel = mine & (tlb.tid_arr == 1)           # shadow TID 1: guest TID 0
    assert process.sum() > 0 and kernel.sum() > 0
    kernel_before = tlb.vpn_arr[kernel].copy()
    other = next(p for p in vcpu.gcpu.processes if p is not vcpu.gcpu.current)
    vcpu.deliver(cpu, "SYSCALL")                 # the guest switches inside its kernel
    vcpu.kernel.switch_process(cpu, other, int(m.env.now))
    still = (tlb.owner_arr >> 8 == vcpu.ctx.ctx) & (tlb.valid_arr == 1) & (tlb.ts_arr == 1)
    assert (still & (tlb.tid_arr == 0)).sum() == 0
    # every kernel shadow survives (the switch's own kernel accesses may add some)
    assert np.isin(kernel_before, tlb.vpn_arr[still & (tlb.tid_arr == 1)]).all()


def test_shadow_and_direct_cost_the_bytes_the_reference_gives():
    # docs/kvm440.md §2.2: v1 keeps guest 64x16 + shadow 64x16 + page
    # pointers 64x4 + host copy 64x16 = 3,328 bytes per vCPU; direct insert keeps
    # shadow_refs[64] of 8 bytes = 512 bytes beside the guest TLB.
    base = ["duration_ms=0.2"]
    shadow = summary("cython", "kvm.strategy=shadow", base=base)["memory_bytes"]
    direct = summary("cython", "kvm.strategy=direct", base=base)["memory_bytes"]
    tlb_state = ("guest_tlb", "shadow_tlb", "shadow_pages", "host_tlb_copy")
    assert sum(shadow[k] for k in tlb_state) == 3328
    assert shadow["shadow_tlb"] + shadow["shadow_pages"] == 1280     # commit 7924bd41 message
    assert direct["shadow_refs"] == 512 and "shadow_tlb" not in direct


def test_shadow_pays_its_entry_loop_on_every_miss_whatever_the_handler():
    # every re-entry of a shadow design runs lightweight_exit's loop (booke_interrupts.S
    # @bbf45ba5): the assembly handler (the proposal) saves the full exit, not the loop
    base = DENSE + ["kvm.strategy=shadow", "duration_ms=40", "sim.guest_accesses=20000"]
    asm = summary("cython", "kvm.handler=asm", base=base)
    c = summary("cython", "kvm.handler=c", base=base)
    for s in (asm, c):
        assert s["fastpath_profile"]["entry_restore"]["count"] >= s["tlb"]["guest"]["misses"] > 0
    assert c["fastpath_profile"]["full_exit"]["count"] > 0 == asm["fastpath_profile"]["full_exit"]["count"]


# -- the command line --------------------------------------------------------------------------

def emu(*args, **kw):
    return subprocess.run([sys.executable, "-m", "emu.cli", *args], capture_output=True,
                          text=True, **kw)


@pytest.mark.parametrize("text, key", [
    ("[kvm]\nstratgy = 'shadow'\n", "kvm.stratgy"),
    ("[kvm]\npfn_cache_entries = 'many'\n", "kvm.pfn_cache_entries"),
    ("[machine]\ncore = 'e500'\ntlb_index = 'hardware'\n[kvm]\nstrategy = 'shadow'\n",
     "index"),
    ("[machine]\ncore = '440'\n[kvm]\nstrategy = 'e500-shadow-ids'\n", "e500"),
    ("duration_ms = [\n", "invalid TOML"),
])
def test_bad_scenarios_get_one_line_and_status_2(tmp_path, text, key):
    f = tmp_path / "bad.toml"
    f.write_text(text)
    out = tmp_path / "out"
    p = emu("run", str(f), "--out", str(out))
    assert p.returncode == 2
    assert p.stderr.count("\n") == 1 and key in p.stderr and "Traceback" not in p.stderr
    assert not out.exists()


def test_run_writes_summary_and_tables(tmp_path):
    f = tmp_path / "s.toml"
    f.write_text("duration_ms = 1\n[kvm]\nstrategy = 'shadow'\n")
    p = emu("run", str(f), "--out", str(tmp_path / "o"), "--json", "--set", "seed=3")
    assert p.returncode == 0, p.stderr
    s = json.loads(p.stdout)
    assert s["seed"] == 3 and s["config"]["kvm"]["strategy"] == "shadow"
    assert json.loads((tmp_path / "o" / "summary.json").read_text()) == s
    for table in ("exits", "tlb", "cycles", "profile"):
        assert (tmp_path / "o" / f"{table}.csv").read_text().count("\n") > 1


def test_run_notes_a_run_that_had_not_settled(tmp_path):
    """4 ms of shadow in its guest-tid era is nearly all start-up: the guest
    faults its pages in, each first touch dozens of exits, each exit a restore
    of the whole shadow TLB.  stderr says so in one note; stdout is the table."""
    f = tmp_path / "s.toml"
    f.write_text("duration_ms = 4\n[kvm]\nstrategy = 'shadow'\n")
    p = emu("run", str(f), "--wide")
    assert p.returncode == 0, p.stderr
    (note,) = p.stderr.splitlines()
    assert note.startswith("emu: note: Not settled (CPU cycles per guest access in the first "
                           "half of the counted window, then in the second): shadow ")
    assert "--set sim.warmup_ms=MS" in note and "Not settled" not in p.stdout
    narrow = emu("run", str(f), env=dict(os.environ, COLUMNS="80")).stderr.splitlines()
    assert len(narrow) > 1 and max(map(len, narrow)) <= 80
    assert " ".join(line.strip() for line in narrow) == note
    # a run of equal work has no middle known ahead: nothing is said
    p = emu("run", str(f), "--set", "sim.guest_accesses=100", "--set", "duration_ms=20", "--json")
    assert p.returncode == 0 and p.stderr == ""
    assert json.loads(p.stdout)["halves"] is None


def test_run_names_a_cpu_that_idled_through_the_window(tmp_path):
    """Two CPUs and nothing placed on the second: cycles per guest access count
    its idle cycles, and one note on stderr says so (stdout is the table)."""
    f = tmp_path / "s.toml"
    f.write_text("duration_ms = 2\n[machine]\ncpus = 2\n[sim]\nwarmup_ms = 1\n")
    p = emu("run", str(f), "--wide", "--set", "duration_ms=4")
    assert p.returncode == 0, p.stderr
    notes = [ln for ln in p.stderr.splitlines() if ln.startswith("emu: note: CPU")]
    assert notes == ["emu: note: CPU 1 idled 100% of the counted window: cycles per guest "
                     "access count its idle cycles too. Nothing runs there: pin a vCPU or a "
                     "host task to it (vm.N.vcpu_cpus, host_task.N.cpu), or set "
                     "machine.cpus lower."]
    assert "idled" not in p.stdout
    busy = emu("run", str(f), "--set", "host_task.0.cpu=1", "--json")
    assert busy.returncode == 0 and "idled" not in busy.stderr


# -- progress from the Python API ------------------------------------------------------


def test_run_takes_a_progress_mode_a_callable_or_refuses_in_one_line(monkeypatch):
    """``run(progress=...)`` takes what ``run_sweep`` and the CLI take: a mode,
    a callable, or None; the bar never passes the run's end."""
    import emu.run.progress as progress
    from emu.errors import ConfigError

    seen, ends = [], set()
    short = DENSE[1:] + ["duration_ms=0.5"]
    plain = run(default_scenario(), short)
    called = run(default_scenario(), short, progress=lambda now, end: seen.append((now, end)))
    assert seen and called.json() == plain.json()
    assert all(e == seen[0][1] for _, e in seen)
    assert all(now <= end for now, end in seen)     # it went past the end: now > end

    class Bar(progress._Bar):          # records what the bar is told
        def __init__(self):
            super().__init__()
            self.updates = []

        def __call__(self, now, end):
            super().__call__(now, end)
            self.updates.append((self.bar.n, self.bar.total))
            ends.add(id(self))

    bars = []
    monkeypatch.setattr(progress, "_Bar", lambda: bars.append(Bar()) or bars[-1])
    assert run(default_scenario(), short, progress="bar").json() == plain.json()
    assert len(bars) == 1 and bars[0].updates
    assert all(n <= total for n, total in bars[0].updates)     # clamped at the end
    assert bars[0].updates[-1][0] == bars[0].updates[-1][1]    # and reaches it
    for bad in ("bra", 3):
        with pytest.raises(ConfigError, match="^progress: expected None, a callable"):
            run(default_scenario(), short, progress=bad)


def test_progress_over_several_runs_says_which_run_and_never_goes_back(monkeypatch, capsys):
    """A comparison's progress gave one run's percentage with no run named (lines
    fell from 88.8 % to 87.9 % as the next run began, 'of' one run's cycles), and
    its bar's total grew at each run, so its percentage jumped back."""
    import emu.run.progress as progress
    from emu.run import run_comparison

    short = DENSE[1:] + ["duration_ms=0.5"]
    lines = progress._Lines(every=0)
    run_comparison(default_scenario(), ["kvm.strategy=shadow,direct,direct-save-on-switch"],
                   short, progress=lines)
    said = [line for line in capsys.readouterr().err.splitlines() if line.startswith("emu: run")]
    runs = [int(line.split()[2]) for line in said]
    assert runs == sorted(runs) and set(runs) == {1, 2, 3}
    assert all(line.startswith(f"emu: run {r} of 3: simulated ") for r, line in zip(runs, said))
    for r in (1, 2, 3):                    # within a run, the percentage only grows
        pcts = [float(line.split("simulated")[1].split("%")[0]) for line, k in zip(said, runs)
                if k == r]
        assert pcts == sorted(pcts) and pcts[-1] == 100.0

    class Bar(progress._Bar):
        def __init__(self):
            super().__init__()
            self.seen = []

        def __call__(self, now, end):
            super().__call__(now, end)
            self.seen.append((self.bar.desc.rstrip(": "), self.bar.n, self.bar.total))

    bar = Bar()
    run_comparison(default_scenario(), ["kvm.strategy=shadow,direct"], short, progress=bar)
    bar.close()
    assert {d for d, _, _ in bar.seen} == {"run 1/2", "run 2/2"}
    for desc in ("run 1/2", "run 2/2"):
        mine = [(n, total) for d, n, total in bar.seen if d == desc]
        assert len({total for _, total in mine}) == 1               # a total known, not growing
        assert [n for n, _ in mine] == sorted(n for n, _ in mine) and mine[-1][0] == mine[-1][1]


def test_a_bar_names_its_run_once_before_and_after_its_total_is_known():
    """Between a run's start and its first progress, the bar read
    'run 2/7: : 0.00cyc' (its name, then tqdm's colon twice)."""
    import emu.run.progress as progress
    bar = progress._Bar()
    try:
        for i in (1, 2):
            bar.next_run(i, 7)
            assert str(bar.bar).startswith(f"run {i}/7: 0"), str(bar.bar)
            bar(500, 1000)
            assert re.match(rf"run {i}/7: +50%", str(bar.bar)), str(bar.bar)
        bar.next_run(1, 1)
        assert str(bar.bar).startswith("simulated: 0"), str(bar.bar)
    finally:
        bar.close()


def test_a_sweep_bar_is_drawn_on_a_terminal_that_says_it_has_no_width():
    """A terminal reporting 0 columns (some do) got no bar at all."""
    import fcntl
    import struct
    import termios
    from emu.run.progress import SweepProgress
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 0, 0, 0, 0))
    with open(slave, "w", closefd=True) as tty:
        bar = SweepProgress("bar", 3, 0, "", tty)
        for _ in range(3):
            bar.advance()
        bar.close(finished=True)
        tty.flush()
    drawn = b""
    while True:             # all the bar wrote: one read may give only its first part
        try:
            piece = os.read(master, 65536)
        except OSError:     # EIO: the terminal is closed and all it held was read
            break
        if not piece:
            break
        drawn += piece
    os.close(master)
    drawn = drawn.decode()
    assert "3/3" in drawn and "100%" in drawn, repr(drawn)

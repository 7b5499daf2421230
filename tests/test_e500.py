"""KVM e500 as it ran, against answers derived by hand from the kernel.

* The guest's miss (head_fsl_booke.S @ac98695d, DataTLBError and
  finish_tlb_load, user address, PTE present): the DTLBREAL exit that
  delivers it, mtspr SPRG0, SPRG1 (EMULINST), SPRG4W, SPRG5W, SPRG7W
  (EMUL_MTSPR), mfspr DEAR (EMUL_MFSPR), SPRG3 (EMULINST), mfspr MAS2
  (EMUL_MFSPR), mtspr MAS2, MAS3 (EMUL_MTSPR), ONE tlbwe, mfspr SPRG1, SPRG0
  (EMULINST), rfi: DTLBREAL 1, EMULINST 5, EMUL_MTSPR 5, EMUL_MFSPR 2,
  EMUL_TLBWE 1, EMUL_RFI 1 = 15 exits.
* The guest's TLB is KVM's (e500_tlb.h): TLB0 128 sets x 2 ways, TLB1 16,
  on a v1 host (TLB0 256 x 2) as on a v2 (512 x 4).
* 46f43c6e: ``kvmppc_mmu_priv_switch(1)`` releases the TLB1 shadows and runs
  ``_tlbil_all`` -- TLB0 empty, host entries included, only the IPROT CAM
  left in TLB1; one flush per return to user mode; vcpu_load writes back the
  vCPU's TLB1 pool (16 - 1 host CAM = 15 slots, top down), every shadow valid
  in software, those a guest flush took out of hardware too; a guest tlbwe over
  a TLB0 entry leaves its old shadow in hardware for that flush.
* 0164c0f0: guest TLB0 entry esel = set * 2 + way goes to host (set, esel &
  (ways - 1)); the 256th shadow ID flushes host entries too; replacing a
  guest TLB1 entry retires its TID's IDs, and a guest flash all the vCPU's,
  leaving their shadows in hardware, unreachable.
"""

from __future__ import annotations

import numpy as np
import pytest

from emu.codes import CAUSE, CYCLES, KIND_LOAD, STEP, STOP, TLB
from emu.guest import traps_e500 as T
from emu.guest.traps44x import TrapSeq
from emu.hw.e500 import GUEST_TLB0_ENTRIES, HOST_CAMS, guest_tlb0_index
from emu.machine import Machine
from emu.params import default_scenario
from emu.run import resolve, run
from test_guest_traps import delta, exit_counts

BACKENDS = ["cython", "reference"]
C_TRAPS_OFF = [f"costs.guest_c_traps_{e}_{i}=0" for e in ("tick", "syscall", "fault")
               for i in ("mfmsr", "wrtee")]


def loaded_vcpu(backend, strategy, *overrides):
    m = Machine(resolve(default_scenario(), [
        f"sim.backend={backend}", "machine.core=e500", f"kvm.strategy={strategy}",
        *C_TRAPS_OFF, *overrides]))
    vcpu, cpu = m.vcpus[0], m.cpus[0]
    vcpu.vcpu_load(cpu)
    return m, vcpu, cpu


def guest_miss(vcpu, cpu, ea):
    """A user access at ``ea`` misses the guest TLB and the guest fills it."""
    proc = vcpu.gcpu.current
    vcpu.guest.fault(proc, ea)                   # the PTE is present
    stop, _, _ = vcpu.ctx.run_virt(cpu.virt, np.array([ea], np.uint32),
                                   np.array([KIND_LOAD], np.uint8), 0, 1 << 40)
    assert stop == STOP["guest_miss"]
    vcpu.kernel.tlb_miss(cpu, proc)


def first_fault(backend, strategy, ea, kind, missing, stop_name: str, handler: str):
    """The guest fills ``ea``'s page, without the permission bits ``missing``;
    an access of ``kind`` there stops the fast path with ``stop_name`` and the
    guest's ``handler`` runs.  Returns (vcpu, cpu, the guest TLB index, the
    access, the exits the handler made): those of its own kernel accesses
    aside, which miss in hardware after 46f43c6e's flush at the switch to user
    mode (the delivery leaves it), and are not traps."""
    m, vcpu, cpu = loaded_vcpu(backend, strategy)
    guest_miss(vcpu, cpu, ea)
    gi = guest_tlb0_index(ea, vcpu.mas0_esel)
    assert not vcpu.gtlb.read(gi)[6] & missing
    access = (np.array([ea + 8], np.uint32), np.array([kind], np.uint8))
    stop, _, _ = vcpu.ctx.run_virt(cpu.virt, *access, 0, 1 << 40)
    assert stop == STOP[stop_name]
    before = exit_counts(vcpu)
    getattr(vcpu.kernel, handler)(cpu, vcpu.gcpu.current)
    d = delta(before, exit_counts(vcpu))
    d.pop("DTLBVIRT", None), d.pop("ITLBVIRT", None)
    return vcpu, cpu, gi, access, d


@pytest.mark.parametrize("strategy", ["e500-flush-on-put", "e500-shadow-ids"])
def test_a_tlbsx_that_finds_nothing_takes_the_next_tlb0_victim(strategy):
    """kvmppc_e500_emul_tlbsx's not-found branch calls tlb0_get_next_victim
    (46f43c6e, 0164c0f0): the way the next miss is handed moves on by one.
    The model's search left the victim where it was."""
    m, vcpu, cpu = loaded_vcpu("reference", strategy)
    start = vcpu.gtlb_nv
    assert vcpu.tlbsx(cpu, 0x1234_5000) == -1                  # nothing there
    assert vcpu.mas0_esel == start and vcpu.gtlb_nv == (start + 1) % 2
    guest_miss(vcpu, cpu, 0x1000_0000)
    assert vcpu.mas0_esel == (start + 1) % 2                    # the way after it
    gi = vcpu.tlbsx(cpu, 0x1000_0000)                           # found: nothing moves
    assert gi == guest_tlb0_index(0x1000_0000, (start + 1) % 2) and vcpu.gtlb_nv == start


def test_the_e500_miss_sequences_sum_to_15_exits():
    seq = T.DTLB_MISS_ENTRY + T.FILL + TrapSeq("tlbwe", [("tlbwe", "")]) + T.MISS_RESTORE
    c = dict(seq.counts)
    c["EMUL_RFI"] = 1                            # the rfi, made through the port
    assert c == {"EMULINST": 5, "EMUL_MTSPR": 5, "EMUL_MFSPR": 2, "EMUL_TLBWE": 1,
                 "EMUL_RFI": 1}
    assert sum(c.values()) + 1 == 15             # and the DTLBREAL exit
    assert dict(T.ITLB_MISS_ENTRY.counts) == {"EMULINST": 4, "EMUL_MTSPR": 3}   # SRR0
    assert dict(T.FLASH_INVALIDATE.counts) == {"EMUL_MTSPR": 1}
    assert dict(T.FLASH_POLL.counts) == {"EMUL_MFSPR": 1}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("strategy", ["e500-flush-on-put", "e500-shadow-ids"])
def test_a_guest_fill_is_15_exits_with_one_tlbwe(backend, strategy):
    m, vcpu, cpu = loaded_vcpu(backend, strategy)
    guest_miss(vcpu, cpu, 0x2000_1000)           # warms the kernel's shadows
    before = exit_counts(vcpu)
    guest_miss(vcpu, cpu, 0x2000_5000)
    d = delta(before, exit_counts(vcpu))
    kernel_misses = d.pop("DTLBVIRT", 0) + d.pop("ITLBVIRT", 0)
    assert d == {"DTLBREAL": 1, "EMULINST": 5, "EMUL_MTSPR": 5, "EMUL_MFSPR": 2,
                 "EMUL_TLBWE": 1, "EMUL_RFI": 1}
    # the handler's own kernel pages: lost at the last return to user mode under
    # 46f43c6e (the TLB1 pool is released), still there under shadow IDs
    assert (kernel_misses > 0) == (strategy == "e500-flush-on-put")
    # KVM's victim alternates over the two ways of the set: miss 1 way 0, miss 2 way 1
    assert vcpu.gtlb.read(guest_tlb0_index(0x2000_1000, 0))[1] == 0x2000_1000
    assert vcpu.gtlb.read(guest_tlb0_index(0x2000_5000, 1))[1] == 0x2000_5000


@pytest.mark.parametrize("version, host", [("v1", (256, 2)), ("v2", (512, 4))])
def test_the_guest_tlb_is_kvms_whatever_the_host(version, host):
    m, vcpu, cpu = loaded_vcpu("cython", "e500-shadow-ids", f"machine.e500_version={version}")
    assert (cpu.virt.tlb.entries, cpu.virt.tlb.ways, cpu.virt.tlb.sets) == (*host, 128)
    assert cpu.virt.tlb1.entries == 16
    assert vcpu.gtlb.entries == 256 + 16
    # the guest kernel's lowmem lives in guest TLB1: 256 MB at 0xC0000000 -> GPA 0
    assert vcpu.gtlb.read(GUEST_TLB0_ENTRIES)[:3] == (1, 0xC000_0000, 28)
    assert guest_tlb0_index(0x0007_F000, 1) == 127 * 2 + 1


@pytest.mark.parametrize("backend", BACKENDS)
def test_flush_on_put_empties_the_tlb_at_each_return_to_user_mode(backend):
    m, vcpu, cpu = loaded_vcpu(backend, "e500-flush-on-put")
    virt, proc = cpu.virt, vcpu.gcpu.current
    guest_miss(vcpu, cpu, 0x2000_1000)
    virt.tlb.write(3, 0x1000_0000, 12, 7, 0, 0x5000, 0, -1)          # a host entry, TS 0
    vcpu.kernel.enter_syscall(cpu, proc)         # in the guest kernel: its pages in TLB1
    pool = [j for j in range(HOST_CAMS, 16) if virt.tlb1.valid_arr[j]]
    assert pool and min(pool) > 16 - 1 - 15      # the pool, top down: slots 15, 14, ...
    assert virt.tlb.valid_count() > 0
    vcpu.kernel.return_to_user(cpu, T.MISS_RESTORE)
    assert virt.tlb.valid_count() == 0           # the host's entry too
    assert [j for j in range(16) if virt.tlb1.valid_arr[j]] == list(range(HOST_CAMS))


@pytest.mark.parametrize("backend", BACKENDS)
def test_flush_on_put_flushes_once_per_system_call(backend):
    m, vcpu, cpu = loaded_vcpu(backend, "e500-flush-on-put")
    proc, strategy = vcpu.gcpu.current, m.strategy
    calls = []
    plain = strategy.flush
    strategy.flush = lambda cpu, vcpu: calls.append(1) or plain(cpu, vcpu)
    for _ in range(7):
        vcpu.kernel.syscall(cpu, proc)
    assert len(calls) == 7 == proc.syscalls
    before = len(calls)
    vcpu.mtspr_pid(cpu, proc.pid + 1)            # shadow TID = guest TID: nothing
    assert len(calls) == before and vcpu.ctx.shadow_pid == proc.pid + 1


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("guest_flush", [False, True])
def test_flush_on_put_reloads_its_tlb1_pool_at_vcpu_load(backend, guest_flush):
    # kvmppc_e500_tlb_load @46f43c6e writes back every pool shadow valid in
    # shadow_tlb[1]; the guest's mtspr MMUCSR0 (kvmppc_e500_emul_mt_mmucsr0)
    # takes them out of hardware with _tlbil_all but leaves them valid, the
    # guest's TLB1 entries being IPROT, so they come back as well
    m, vcpu, cpu = loaded_vcpu(backend, "e500-flush-on-put")
    virt, proc = cpu.virt, vcpu.gcpu.current
    vcpu.kernel.enter_syscall(cpu, proc)         # kernel pages shadowed into the pool
    pool = {j: virt.tlb1.read(j) for j in range(HOST_CAMS, 16) if virt.tlb1.valid_arr[j]}
    assert len(pool) >= 2
    if guest_flush:
        vcpu.kernel.flush_tlb_mm(cpu)            # still in supervisor mode
    vcpu.vcpu_put(cpu)
    assert [j for j in range(16) if virt.tlb1.valid_arr[j]] == list(range(HOST_CAMS))
    before = cpu.cycles.copy()
    vcpu.vcpu_load(cpu)
    assert {j: virt.tlb1.read(j) for j in pool} == pool
    reload = len(pool) * m.costs["e500_tlb1_reload_per_entry"]
    sr = CYCLES["save_restore"]
    assert cpu.cycles[sr] - before[sr] == reload


@pytest.mark.parametrize("backend", BACKENDS)
def test_flush_on_put_leaves_a_rewritten_tlb0_entrys_shadow_to_the_next_flush(backend):
    # kvmppc_e500_emul_tlbwe @46f43c6e invalidates the shadows of a TLB1 entry
    # only: the old shadow of a TLB0 entry stays in hardware until the
    # _tlbil_all of the switch to user mode, which is what removes it
    m, vcpu, cpu = loaded_vcpu(backend, "e500-flush-on-put")
    virt, proc, ea = cpu.virt, vcpu.gcpu.current, 0x2000_1000
    guest_miss(vcpu, cpu, ea)
    stop, _, _ = vcpu.ctx.run_virt(virt, np.array([ea], np.uint32),
                                   np.array([KIND_LOAD], np.uint8), 0, 1 << 40)
    assert stop == STOP["end"]                   # the refill put the shadow back
    ctx = vcpu.ctx
    old = virt.lookup(ea, ctx.shadow_pid, 1, ctx.pid1)
    assert old >= 0
    vcpu.kernel.enter_syscall(cpu, proc)         # supervisor mode: no flush
    gi = guest_tlb0_index(ea, vcpu.mas0_esel)
    _ea, shift, tid, ts, gpa = vcpu.tlb_entry(gi)
    vcpu.tlbwe(cpu, gi, None, (ea + 128 * 0x1000, shift, tid, ts, gpa))   # same set
    assert virt.lookup(ea, ctx.shadow_pid, 1, ctx.pid1) == old
    vcpu.kernel.return_to_user(cpu, T.MISS_RESTORE)
    assert virt.lookup(ea, ctx.shadow_pid, 1, ctx.pid1) < 0
    assert virt.cause_of((ctx.ctx << 8) | tid, 1, ea) == CAUSE["flush"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_flush_on_put_invalidates_the_tlb1_shadows_in_a_rewritten_entrys_range(backend):
    # kvmppc_e500_tlb1_invalidate @46f43c6e walks shadow_tlb[1] and invalidates
    # every valid shadow that overlaps the old entry's range with TID 0 or the
    # entry's TID, whichever guest entry it shadows
    m, vcpu, cpu = loaded_vcpu(backend, "e500-flush-on-put")
    virt, ctx, gtlb, n0 = cpu.virt, vcpu.ctx, vcpu.gtlb, cpu.virt.tlb.entries
    big, small, other, outside = (GUEST_TLB0_ENTRIES + k for k in (8, 9, 10, 11))
    gtlb.write(big, 0x3000_0000, 14, 0, 0, 0x80_0000, 0, -1)       # 16 KB, TID 0
    gtlb.write(small, 0x3000_1000, 12, 0, 0, 0x90_0000, 0, -1)     # inside it, TID 0
    gtlb.write(other, 0x3000_2000, 12, 7, 0, 0xA0_0000, 0, -1)     # inside it, TID 7
    gtlb.write(outside, 0x3001_0000, 12, 0, 0, 0xB0_0000, 0, -1)   # beyond it
    slots = {gi: ctx.map_shadow(virt, int(gtlb.read(gi)[1]), gi, 0x100 + k)
             for k, gi in enumerate((big, small, other, outside))}
    assert all(virt.tlb1.valid_arr[i - n0] for i in slots.values())
    vcpu.tlbwe(cpu, big, None, None)
    valid = {gi for gi, i in slots.items() if virt.tlb1.valid_arr[i - n0]}
    assert valid == {other, outside}
    assert set(ctx.arrays["hwref_gi"][list(slots.values())]) == {-1, other, outside}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("version, ways", [("v1", 2), ("v2", 4)])
def test_shadow_ids_write_the_way_esel_names(backend, version, ways):
    m, vcpu, cpu = loaded_vcpu(backend, "e500-shadow-ids", f"machine.e500_version={version}")
    ea = 0x2000_3000                             # set 3
    for way in (0, 1):
        gi = guest_tlb0_index(ea, way)
        assert gi == 3 * 2 + way
        vcpu.gtlb.write(gi, ea, 12, vcpu.ctx.guest_pid, 0, 0x40_0000, 0, -1)
        i = vcpu.ctx.map_shadow(cpu.virt, ea, gi, 0x123)
        assert i == 3 * ways + (gi & (ways - 1))       # v2: ((set & 1) << 1) | way
    # a core that ignores ESEL: the hardware's next victim, whatever the guest way
    m, vcpu, cpu = loaded_vcpu(backend, "e500-shadow-ids", f"machine.e500_version={version}",
                               "machine.tlb_index=hardware")
    victims = [cpu.virt.tlb.ptr_arr[0]]
    gi = guest_tlb0_index(ea, 1)
    vcpu.gtlb.write(gi, ea, 12, vcpu.ctx.guest_pid, 0, 0x40_0000, 0, -1)
    assert vcpu.ctx.map_shadow(cpu.virt, ea, gi, 0x123) == 3 * ways + victims[0]


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_esel_write_starts_the_hardware_round_robin_again(backend):
    # 0164c0f0 writes MAS0 = TLBSEL(0) | ESEL: NV 0, and a tlbwe to TLB0 loads
    # TLB0[NV] from MAS0[NV] (e500 Core RM p.12-14): the host's next fill goes
    # to way 0.  46f43c6e's write keeps the miss's MAS0: the counter goes on.
    ea = 0x2000_3000
    for strategy, after in (("e500-shadow-ids", 0), ("e500-flush-on-put", 3)):
        m, vcpu, cpu = loaded_vcpu(backend, strategy)
        tlb = cpu.virt.tlb
        tlb.ptr_arr[0] = 2
        gi = guest_tlb0_index(ea, 1)
        vcpu.gtlb.write(gi, ea, 12, vcpu.ctx.guest_pid, 0, 0x40_0000, 0, -1)
        vcpu.ctx.map_shadow(cpu.virt, ea, gi, 0x123)
        assert tlb.ptr_arr[0] == after, strategy


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_tlb1_shadow_puts_its_own_page_when_its_pool_slot_is_taken(backend):
    # kvmppc_e500_tlb1_map takes a page for each TLB1 fill and drops the one the
    # pool slot held; a guest TLB0 entry's page is the entry's, not the slot's
    m, vcpu, cpu = loaded_vcpu(backend, "e500-flush-on-put", "kvm.pfn_source=guest-tlb-refs")
    pool = cpu.virt.tlb1.entries - HOST_CAMS
    gi = GUEST_TLB0_ENTRIES                      # the guest's first TLB1 entry, 256 MB
    vcpu.gtlb.write(gi, 0xC000_0000, 28, 0, 0, 0, 0, -1)
    c_path = lambda: int(cpu.cycles[CYCLES["c_path"]])    # noqa: E731
    before = c_path()
    for k in range(pool):                        # every slot of the pool, once
        vcpu.ctx.map_shadow(cpu.virt, 0xC000_0000 + k * 0x1000, gi, 0x100 + k)
    assert c_path() == before
    vcpu.ctx.map_shadow(cpu.virt, 0xC000_0000 + pool * 0x1000, gi, 0x200)
    assert c_path() - before == m.costs["put_page"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_shadow_id_exhaustion_flushes_host_entries(backend):
    m, vcpu, cpu = loaded_vcpu(backend, "e500-shadow-ids")
    strategy, virt = m.strategy, cpu.virt
    virt.tlb.write(5, 0x1000_0000, 12, 7, 0, 0x5000, 0, -1)          # a host entry, TS 0
    strategy.last[cpu.index] = 255               # every ID handed out on this CPU
    flushes = strategy.flushes
    vcpu.mtspr_pid(cpu, vcpu.ctx.guest_pid + 1)  # a new (TID, PR): no ID left
    assert strategy.flushes == flushes + 1
    assert virt.tlb.valid_count() == 0
    assert [j for j in range(16) if virt.tlb1.valid_arr[j]] == list(range(HOST_CAMS))
    assert sorted((vcpu.ctx.shadow_pid, vcpu.ctx.pid1)) == [1, 2]   # numbering restarts


@pytest.mark.parametrize("backend", BACKENDS)
def test_invalidating_a_guest_tlb1_entry_retires_its_shadow_id(backend):
    m, vcpu, cpu = loaded_vcpu(backend, "e500-shadow-ids")
    strategy = m.strategy
    old = vcpu.ctx.pid1                          # the ID of guest TID 0 in this mode
    last = strategy.last[cpu.index]
    vcpu.tlbwe(cpu, GUEST_TLB0_ENTRIES + 1, None, None)   # the UART's TLB1 entry, TID 0
    assert vcpu.ctx.pid1 == last + 1 != old
    assert old not in strategy.tables[cpu.index].values()
    assert vcpu.ctx.shadow_pid in strategy.tables[cpu.index].values()


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_guest_flash_retires_the_ids_and_leaves_the_shadows_in_hardware(backend):
    # kvmppc_e500_emul_mt_mmucsr0 @0164c0f0 clears the guest entries and calls
    # kvmppc_e500_id_table_reset_all: no tlbwe, no _tlbil_all, no page put.
    # The shadow stays in hardware under its retired ID; the guest entry's page
    # is put when a tlbwe maps that entry again (kvmppc_e500_shadow_map)
    put_page = 10 ** 7                           # to be seen in c_path at a glance
    m, vcpu, cpu = loaded_vcpu(backend, "e500-shadow-ids", "kvm.pfn_source=guest-tlb-refs",
                               f"costs.put_page={put_page}")
    virt, ctx, ea = cpu.virt, vcpu.ctx, 0x2000_5000
    guest_miss(vcpu, cpu, ea)
    gi = guest_tlb0_index(ea, vcpu.mas0_esel)
    (slot,) = np.flatnonzero(ctx.arrays["hwref_gi"] == gi)
    shadow = virt.tlb.read(int(slot))
    c_path = lambda: int(cpu.cycles[CYCLES["c_path"]])    # noqa: E731
    before = c_path()
    vcpu.kernel.flush_tlb_mm(cpu)
    assert c_path() - before < put_page
    assert virt.tlb.read(int(slot)) == shadow    # still valid, under its retired ID
    assert virt.lookup(ea, ctx.shadow_pid, 1, ctx.pid1) < 0
    assert virt.cause_of(shadow[7], 1, ea) == CAUSE["flush"]
    before = c_path()
    vcpu.tlbwe(cpu, gi, None, (ea, 12, ctx.guest_pid, 0, 0x40_0000))   # mapped again
    assert put_page <= c_path() - before < 2 * put_page


@pytest.mark.parametrize("backend", BACKENDS)
def test_shadow_ids_find_a_tlb0_entrys_shadow_by_tlbsx_under_each_valid_id(backend):
    # inval_gtlbe_on_host @0164c0f0: for each PR whose ID is valid on this CPU,
    # a tlbsx in AS1 at the entry's address with that ID, V cleared in what it
    # finds.  The host has since written its own entry at the shadow's index:
    # the search does not find it, so it stays
    m, vcpu, cpu = loaded_vcpu(backend, "e500-shadow-ids")
    virt, ctx, ea = cpu.virt, vcpu.ctx, 0x2000_5000
    guest_miss(vcpu, cpu, ea)
    gi = guest_tlb0_index(ea, vcpu.mas0_esel)
    (slot,) = np.flatnonzero(ctx.arrays["hwref_gi"] == gi)
    host_ea = ea + virt.tlb.sets * 0x1000    # the same set
    virt.tlb.write(int(slot), host_ea, 12, 7, 0, 0x5000, 0, -1)
    host = virt.tlb.read(int(slot))
    killed = int(ctx.arrays["tlb"][TLB["host_mappings_killed"]])
    vcpu.tlbwe(cpu, gi, None, None)              # _tlbie's write, V clear
    assert virt.tlb.read(int(slot)) == host
    assert int(ctx.arrays["tlb"][TLB["host_mappings_killed"]]) == killed
    # and a shadow still in hardware, refilled in user mode, is found and invalidated
    ea2 = 0x2000_6000
    guest_miss(vcpu, cpu, ea2)
    stop, _, _ = ctx.run_virt(virt, np.array([ea2], np.uint32),
                              np.array([KIND_LOAD], np.uint8), 0, 1 << 40)
    assert stop == STOP["end"]
    sids = [m.strategy.tables[cpu.index][(ctx.ctx, ctx.guest_pid, pr)] for pr in (0, 1)]
    assert virt.lookup(ea2, sids[1], 1) >= 0
    vcpu.tlbwe(cpu, guest_tlb0_index(ea2, vcpu.mas0_esel), None, None)
    assert all(virt.lookup(ea2, sid, 1) < 0 for sid in sids)


@pytest.mark.parametrize("backend", BACKENDS)
def test_shadow_ids_retire_a_tlb0_entrys_id_not_valid_on_this_cpu(backend):
    # inval_gtlbe_on_host @0164c0f0: where local_sid_lookup fails on this CPU
    # (the vCPU filled the entry on CPU 0 in supervisor mode and runs on CPU 1
    # in user mode now: the host model pins its threads, so the test moves it
    # by hand), kvmppc_e500_id_table_reset_one retires the ID: the shadow on
    # CPU 0 stays in hardware there, unreachable
    m, vcpu, cpu0 = loaded_vcpu(backend, "e500-shadow-ids", "machine.cpus=2")
    strategy, ctx, ea = m.strategy, vcpu.ctx, 0x2000_5000
    guest_miss(vcpu, cpu0, ea)                   # filled in supervisor mode
    gi = guest_tlb0_index(ea, vcpu.mas0_esel)
    (slot,) = np.flatnonzero(ctx.arrays["hwref_gi"] == gi)
    shadow = cpu0.virt.tlb.read(int(slot))
    key = (ctx.ctx, ctx.guest_pid, 0)
    assert shadow[3] == strategy.tables[cpu0.index][key]
    cpu1 = m.cpus[1]
    vcpu.vcpu_put(cpu0)
    vcpu.vcpu_load(cpu1)                         # user mode: IDs for PR 1 on CPU 1
    assert key not in strategy.tables[cpu1.index]
    vcpu.tlbwe(cpu1, gi, None, None)
    assert key not in strategy.tables[cpu0.index]
    assert cpu0.virt.tlb.read(int(slot)) == shadow
    assert cpu0.virt.cause_of(shadow[7], 1, ea) == CAUSE["flush"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_replaced_guest_tlb1_entry_leaves_its_pool_shadows_in_hardware(backend):
    # inval_gtlbe_on_host @0164c0f0, tlbsel 1: kvmppc_e500_id_table_reset_one for
    # PR 0 and 1, nothing more; the pool slot keeps its shadow and its page
    # until kvmppc_e500_tlb1_map takes the slot again
    put_page = 10 ** 7
    m, vcpu, cpu = loaded_vcpu(backend, "e500-shadow-ids", "kvm.pfn_source=guest-tlb-refs",
                               f"costs.put_page={put_page}")
    virt, ctx = cpu.virt, vcpu.ctx
    gi = GUEST_TLB0_ENTRIES + 1                  # the UART's TLB1 entry, TID 0
    ea = int(vcpu.gtlb.read(gi)[1])
    i = ctx.map_shadow(virt, ea, gi, 0x123)
    n0 = virt.tlb.entries
    assert i >= n0 and virt.lookup(ea, ctx.shadow_pid, 1, ctx.pid1) == i
    shadow = virt.tlb1.read(i - n0)
    before = int(cpu.cycles[CYCLES["c_path"]])
    vcpu.tlbwe(cpu, gi, None, None)
    assert int(cpu.cycles[CYCLES["c_path"]]) - before < put_page
    assert virt.tlb1.read(i - n0) == shadow      # still there, its ID retired
    assert virt.lookup(ea, ctx.shadow_pid, 1, ctx.pid1) < 0
    assert virt.cause_of(shadow[7], 1, ea) == CAUSE["flush"]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("fill, next_pid0", [(False, 2), (True, 3)])
def test_pid0_keeps_its_destroyed_id_when_pid1_runs_out(backend, fill, next_pid0):
    # kvmppc_e500_recalc_shadow_pid @0164c0f0 gets PID0's ID, then PID1's, with
    # avoid_recursion: PID0 takes 255, PID1 finds none left (_tlbil_all,
    # local_sid_destroy_all) and takes 1, and PID0 keeps 255, destroyed.  A fill
    # of a process entry (write_stlbe: kvmppc_e500_get_sid) allocates PID0 2, so
    # a new guest PID takes 3; with no fill in between, the new PID takes 2
    m, vcpu, cpu = loaded_vcpu(backend, "e500-shadow-ids")
    strategy, ctx, virt = m.strategy, vcpu.ctx, cpu.virt
    strategy.retire(vcpu)                        # PID1's (TID 0, PR) needs an ID again
    strategy.last[cpu.index] = 254
    vcpu.mtspr_pid(cpu, ctx.guest_pid + 1)
    assert (ctx.shadow_pid, ctx.pid1, strategy.last[cpu.index]) == (255, 1, 1)
    if fill:
        ea = 0x2000_3000
        gi = guest_tlb0_index(ea, 0)
        vcpu.gtlb.write(gi, ea, 12, ctx.guest_pid, 0, 0x40_0000, 0, -1)
        sr = CYCLES["save_restore"]
        before = int(cpu.cycles[sr])
        i = ctx.map_shadow(virt, ea, gi, 0x123)
        assert virt.tlb.read(i)[3] == ctx.shadow_pid == 2
        assert int(cpu.cycles[sr]) - before == m.costs["e500_sid_alloc"]
    vcpu.mtspr_pid(cpu, ctx.guest_pid + 1)
    assert ctx.shadow_pid == next_pid0


# -- a shadow TLB on the e500 (hypothetical: KVM e500 never shipped one) -------------------
#
# Each guest entry reads back and rewrites every TLB0 (set, way) and every
# TLB1 pool slot through the MAS registers: v2 512 + 15, v1 256 + 15 entries,
# e500_tlbre_per_entry (12) + e500_tlb1_reload_per_entry (13 + 7) = 32 each.

@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("version, restored", [("v1", 256 + 15), ("v2", 512 + 15)])
def test_shadow_on_the_e500_charges_every_entry_it_restores(backend, version, restored):
    m, vcpu, cpu = loaded_vcpu(backend, "shadow", f"machine.e500_version={version}")
    c = m.costs
    assert vcpu.ctx.guest_entry(cpu.virt) == restored * (
        c["e500_tlbre_per_entry"] + c["e500_tlb1_reload_per_entry"]) == restored * 32
    m, vcpu, cpu = loaded_vcpu(backend, "shadow-modified", f"machine.e500_version={version}")
    vcpu.ctx.clear_modified()
    guest_miss(vcpu, cpu, 0x2000_1000)           # marks what it maps
    vcpu.ctx.clear_modified()
    ea = 0x2000_5000
    gi = guest_tlb0_index(ea, 0)
    vcpu.gtlb.write(gi, ea, 12, vcpu.ctx.guest_pid, 0, 0x40_0000, 0, -1)
    vcpu.ctx.map_shadow(cpu.virt, ea, gi, 0x123)          # one entry modified
    assert vcpu.ctx.guest_entry(cpu.virt) == (restored * 5 + 36 * restored // 64 + 20)


@pytest.mark.parametrize("backend", BACKENDS)
def test_shadow_on_the_e500_puts_its_image_back_at_each_set_and_way(backend):
    m, vcpu, cpu = loaded_vcpu(backend, "shadow")
    virt = cpu.virt
    guest_miss(vcpu, cpu, 0x2000_1000)
    guest_miss(vcpu, cpu, 0x2000_5000)
    mine = {i: virt.tlb.read(i) for i in range(virt.tlb.entries) if virt.tlb.valid_arr[i]}
    # way from ESEL: guest (set 1, way 0) -> host (1, 2 | 0); (set 5, way 1) -> (5, 2 | 1)
    assert {i for i, e in mine.items() if e[1] >> 28 == 2} == {1 * 4 + 2, 5 * 4 + 3}
    vcpu.vcpu_put(cpu)
    virt.tlb.write(6, 0x1000_0000, 12, 7, 0, 0x5000, 0, -1)          # a host entry, TS 0
    for i in mine:
        virt.invalidate(i, 2)                    # another context (the host task) took them
    vcpu.vcpu_load(cpu)
    assert {i: virt.tlb.read(i) for i in range(virt.tlb.entries)
            if virt.tlb.valid_arr[i]} == mine     # the host's entry is overwritten too


DIFFERENTIAL = [
    ["kvm.strategy=e500-flush-on-put", "machine.e500_version=v1"],
    ["kvm.strategy=e500-flush-on-put", "kvm.pfn_source=guest-tlb-refs"],
    ["kvm.strategy=e500-shadow-ids", "machine.e500_version=v1"],
    ["kvm.strategy=e500-shadow-ids", "machine.tlb_index=hardware", "kvm.handler=asm"],
    ["kvm.strategy=shadow"],
    ["kvm.strategy=shadow-modified", "machine.e500_version=v1", "kvm.handler=asm"],
]


def _without_backend(s: dict) -> dict:
    s = dict(s, backend=None)
    cfg = dict(s["config"])
    cfg["sim"] = dict(cfg["sim"], backend=None)
    return dict(s, config=cfg)


@pytest.mark.parametrize("combo", DIFFERENTIAL, ids=lambda c: "+".join(c))
def test_cython_and_reference_agree_on_e500_runs(combo):
    over = ["machine.core=e500", "duration_ms=3", "vm.0.process.0.count=2",
            "vm.0.process.0.workload.syscall_every=700", *combo]
    a, b = (run(default_scenario(), over + [f"sim.backend={be}"]).summary for be in BACKENDS)
    assert a["guest_accesses"] > 0
    assert _without_backend(a) == _without_backend(b)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("strategy, searched", [
    ("e500-flush-on-put", 256 + 16),   # kvmppc_e500_tlb_index @46f43c6e: every entry
    ("e500-shadow-ids", 2 + 16)])      # @0164c0f0: the set's two ways, then TLB1
def test_a_guest_tlb_miss_searches_as_the_kernel_did(backend, strategy, searched):
    m, vcpu, cpu = loaded_vcpu(backend, strategy, "kvm.handler=c")
    profile, walk = vcpu.ctx.arrays["profile"], 2 * STEP["walk"] + 1
    before = int(profile[walk])
    stop, _, _ = vcpu.ctx.run_virt(cpu.virt, np.array([0x2000_7000], np.uint32),
                                   np.array([KIND_LOAD], np.uint8), 0, 1 << 40)
    assert stop == STOP["guest_miss"]
    assert int(profile[walk]) - before == searched * m.costs["c_walk_per_entry"]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("strategy", ["e500-flush-on-put", "e500-shadow-ids"])
def test_a_pid_rollover_is_one_mtspr_mmucsr0_and_one_poll(backend, strategy):
    # _tlbil_all: mtspr MMUCSR0, then mfspr MMUCSR0 until the bits clear, which
    # KVM's emulation reads as 0 at once: two traps
    m, vcpu, cpu = loaded_vcpu(backend, strategy)
    guest_miss(vcpu, cpu, 0x2000_1000)
    ids = (vcpu.ctx.shadow_pid, vcpu.ctx.pid1)
    before = exit_counts(vcpu)
    vcpu.kernel.flush_tlb_mm(cpu)
    assert delta(before, exit_counts(vcpu)) == {"EMUL_MTSPR": 1, "EMUL_MFSPR": 1}
    assert not vcpu.gtlb.valid_arr[:GUEST_TLB0_ENTRIES].any()    # TLB0 gone
    assert vcpu.gtlb.valid_arr[GUEST_TLB0_ENTRIES:].sum() == 3    # the kernel's CAMs stay
    if strategy == "e500-flush-on-put":          # kvmppc_e500_emul_mt_mmucsr0: _tlbil_all
        assert cpu.virt.tlb.valid_count() == 0
    else:                                        # id_table_reset_all: new IDs, no flush
        assert min(vcpu.ctx.shadow_pid, vcpu.ctx.pid1) > max(ids)


@pytest.mark.parametrize("backend", BACKENDS)
def test_guest_tlb_refs_live_as_long_as_the_guest_tlb0_entry(backend):
    # @0164c0f0: the guest's tlbwe takes the page reference (gfn_to_pfn); a later
    # miss on the same guest entry rebuilds the shadow from it, with no gfn_to_pfn
    m, vcpu, cpu = loaded_vcpu(backend, "e500-shadow-ids", "kvm.pfn_source=guest-tlb-refs")
    kvm, ea = vcpu.kvm, 0x2000_5000
    guest_miss(vcpu, cpu, ea)
    calls = kvm.gfn_to_pfn_calls
    gi = guest_tlb0_index(ea, vcpu.mas0_esel)
    for i in np.flatnonzero(vcpu.ctx.arrays["hwref_gi"] == gi):
        cpu.virt.invalidate(int(i), 2)           # the host evicts the shadow
    stop, _, _ = vcpu.ctx.run_virt(cpu.virt, np.array([ea], np.uint32),
                                   np.array([KIND_LOAD], np.uint8), 0, 1 << 40)
    assert stop == STOP["end"] and kvm.gfn_to_pfn_calls == calls
    vcpu.tlbwe(cpu, gi, None, (ea, 12, vcpu.ctx.guest_pid, 0, 0x40_0000))   # rewritten
    assert kvm.gfn_to_pfn_calls == calls + 1


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("strategy, flash_puts", [("e500-flush-on-put", 1),
                                                  ("e500-shadow-ids", 0)])
def test_a_tlbwe_with_v_clear_keeps_the_page_until_the_entry_is_mapped_again(
        backend, strategy, flash_puts):
    # kvmppc_e500_emul_tlbwe maps nothing for an entry with V clear, so nothing
    # puts the old page: kvmppc_e500_shadow_map drops it when a tlbwe maps the
    # entry again; at 46f43c6e the guest's mtspr MMUCSR0 releases it before
    # that (kvmppc_e500_gtlbe_invalidate of every TLB0 entry, the shadow still
    # valid), at 0164c0f0 it does not (only kvmppc_e500_id_table_reset_all)
    put_page = 10 ** 7                           # to be seen in c_path at a glance
    m, vcpu, cpu = loaded_vcpu(backend, strategy, "kvm.pfn_source=guest-tlb-refs",
                               f"costs.put_page={put_page}")
    ea = 0x2000_5000
    guest_miss(vcpu, cpu, ea)
    gi = guest_tlb0_index(ea, vcpu.mas0_esel)
    puts = lambda: int(cpu.cycles[CYCLES["c_path"]]) // put_page    # noqa: E731
    before = puts()
    vcpu.tlbwe(cpu, gi, None, None)              # _tlbie's write, V clear
    assert puts() == before
    vcpu.kernel.flush_tlb_mm(cpu)
    assert puts() == before + flash_puts
    vcpu.tlbwe(cpu, gi, None, (ea, 12, vcpu.ctx.guest_pid, 0, 0x40_0000))   # mapped again
    assert puts() == before + 1


@pytest.mark.parametrize("strategy,expected", [
    # shadow_tlb[2][] of struct tlbe (4 u32) and shadow_pages[2][] of struct page
    # pointers (4 bytes on ppc32) over 256 + 16 entries (e500_tlb.c @46f43c6e)
    ("e500-flush-on-put", {"shadow_tlb": 272 * 16, "shadow_refs": 272 * 4}),
    # the refs, and vcpu_id_table's id[2][256][2] of struct id {unsigned long;
    # struct id **}: 8 bytes each (e500_tlb.c @0164c0f0)
    ("e500-shadow-ids", {"shadow_refs": 272 * 8, "id_table": 8192}),
])
def test_what_each_e500_design_keeps_per_vcpu(strategy, expected):
    m = Machine(resolve(default_scenario(), [
        "machine.core=e500", f"kvm.strategy={strategy}", "kvm.handler=c",
        "kvm.pfn_source=guest-tlb-refs", "duration_ms=0.1"]))
    mem = m.snapshot().vcpu_memory_bytes
    assert {k: v for k, v in mem.items() if k in expected} == expected


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("strategy", ["e500-flush-on-put", "e500-shadow-ids"])
def test_a_first_store_to_a_page_takes_the_data_storage_fast_path(backend, strategy):
    """head_fsl_booke.S @ac98695d: finish_tlb_load takes UW (and SW) from
    _PAGE_HWWRITE, which no user PTE is made with, so a store through the fill
    is a DSI: the saves, ESR, DEAR, SPRG3, PID0 into MAS6 (mfspr PID, mtspr MAS6),
    tlbsx, mfspr MAS3, mtspr MAS3, tlbwe, mfspr SPRG1, SPRG0, rfi -- DSI 1,
    EMULINST 5 (SPRG0/1 x 2, SPRG3), EMUL_MTSPR 5 (SPRG4W/5W/7W, MAS6, MAS3),
    EMUL_MFSPR 4 (ESR, DEAR, PID, MAS3), EMUL_TLBSX 1, EMUL_TLBWE 1, EMUL_RFI 1:
    18 exits.  The PTE keeps HWWRITE: the next fill of the page writes UW, and
    the store goes through."""
    from emu.codes import KIND_STORE
    from emu.hw.ppc440 import SW, UW
    ea = 0x2000_3000                                      # the fill: no UW, no SW
    vcpu, cpu, gi, store, d = first_fault(backend, strategy, ea, KIND_STORE, UW | SW, "dsi",
                                          "data_storage")
    proc = vcpu.gcpu.current
    assert d == {"DSI": 1, "EMULINST": 5, "EMUL_MTSPR": 5, "EMUL_MFSPR": 4, "EMUL_TLBSX": 1,
                 "EMUL_TLBWE": 1, "EMUL_RFI": 1}
    assert vcpu.gtlb.read(gi)[6] & UW and vcpu.guest.written(proc, ea)
    stop, pos, _ = vcpu.ctx.run_virt(cpu.virt, *store, 0, 1 << 40)
    assert pos == 1                                       # the retry goes through
    # another process's fill of a page its PTE marks written carries UW at once
    assert vcpu.kernel.fill_attr(proc, ea) & UW
    assert not vcpu.kernel.fill_attr(proc, ea + 0x1000) & UW


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("strategy", ["e500-flush-on-put", "e500-shadow-ids"])
def test_a_first_fetch_from_a_page_takes_the_exec_fault(backend, strategy):
    """head_fsl_booke.S @ac98695d: finish_tlb_load takes SX and UX from
    _PAGE_HWEXEC, which no user PTE is made with, so the first fetch through
    the fill is an ISI: head_booke.h INSTRUCTION_STORAGE_EXCEPTION (the prolog,
    mfspr ESR, the transfer: 14), do_page_fault's exec branch (CONFIG_BOOKE)
    sets HWEXEC and calls FSL Book-E's _tlbie -- mfmsr, wrteei 0, mtspr MAS6,
    tlbsx, mfspr MAS1, mtspr MAS1 (V clear), tlbwe, wrtee (8) -- and returns
    (mtmsr, mtspr SRR0, SRR1, rfi: 4).  ISI 1, EMULINST 13, EMUL_MTSPR 3
    (SPRG4W, MAS6, MAS1), EMUL_MFSPR 2 (ESR, MAS1), EMUL_MFMSR 1, EMUL_WRTEE 2,
    EMUL_TLBSX 1, EMUL_TLBWE 1, EMUL_MTMSR 1, EMUL_RFI 2: 27 exits.  The fetch
    then misses (the entry is gone) and the next fill writes SX and UX."""
    from emu.codes import KIND_IFETCH
    from emu.hw.ppc440 import SX, UX
    ea = 0x2000_5000                                      # the fill: no SX, no UX
    vcpu, cpu, gi, fetch, d = first_fault(backend, strategy, ea, KIND_IFETCH, SX | UX, "isi",
                                          "inst_storage")
    proc = vcpu.gcpu.current
    assert d == {"ISI": 1, "EMULINST": 13, "EMUL_MTSPR": 3, "EMUL_MFSPR": 2, "EMUL_MFMSR": 1,
                 "EMUL_WRTEE": 2, "EMUL_TLBSX": 1, "EMUL_TLBWE": 1, "EMUL_MTMSR": 1,
                 "EMUL_RFI": 2}
    assert not vcpu.gtlb.valid_arr[gi] and vcpu.guest.executable(proc, ea)
    stop, _, _ = vcpu.ctx.run_virt(cpu.virt, *fetch, 0, 1 << 40)
    assert stop == STOP["guest_miss"]                     # _tlbie took the entry
    vcpu.kernel.tlb_miss(cpu, proc)
    gi = guest_tlb0_index(ea, vcpu.mas0_esel)
    assert vcpu.gtlb.read(gi)[6] & SX and vcpu.gtlb.read(gi)[6] & UX
    stop, pos, _ = vcpu.ctx.run_virt(cpu.virt, *fetch, 0, 1 << 40)
    assert pos == 1                                       # and the fetch goes through


def test_the_e500_tlbie_skips_the_write_when_tlbsx_finds_nothing():
    # __tlbil_va: mfspr MAS1, then `beq 1f` past mtspr MAS1 and tlbwe when V is clear
    from emu.guest.kernel_e500 import GuestKernelE500

    class Port:
        def __init__(self):
            self.seen = []

        def traps(self, cpu, seq):
            self.seen.extend(i for i, _ in seq.rows)

        def tlbsx(self, cpu, ea):
            self.seen.append("tlbsx")
            return self.found

        def tlbwe(self, cpu, gi, word, entry, attr=None):
            self.seen.append(("tlbwe", gi, word, entry))

    k = GuestKernelE500.__new__(GuestKernelE500)
    for found, tail in ((-1, []), (9, ["mtspr MAS1", ("tlbwe", 9, None, None)])):
        k.port = Port()
        k.port.found = found
        k.tlbie(None, 0x2000_5000)
        assert k.port.seen == ["mfmsr", "wrteei", "mtspr MAS6", "tlbsx", "mfspr MAS1",
                               *tail, "wrtee"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_tlbsx_reads_the_guest_tlb_as_the_walk_does(backend):
    """kvmppc_e500_emul_tlbsx: @46f43c6e TLB0's 256 entries in order, then TLB1;
    @0164c0f0 the two ways of the address's set, then TLB1's 16."""
    for strategy, set_search in (("e500-flush-on-put", False), ("e500-shadow-ids", True)):
        m, vcpu, cpu = loaded_vcpu(backend, strategy)
        c = m.costs
        ea = 0x2000_3000
        vcpu.guest.fault(vcpu.gcpu.current, ea)
        gi = guest_tlb0_index(ea, 1)                      # way 1 of the page's set
        vcpu.gtlb.write(gi, ea, 12, vcpu.ctx.guest_pid, vcpu.ctx.guest_as, 0x0050_0000,
                        0x3F, -1)
        for addr, scanned in ((ea, 2 if set_search else gi + 1),
                              (0x3000_0000, 2 + 16 if set_search else 256 + 16)):
            before = int(cpu.cycles[CYCLES["c_path"]])
            vcpu.tlbsx(cpu, addr)
            assert int(cpu.cycles[CYCLES["c_path"]]) - before == (
                c["emulate_instruction"] + c["emul_tlbsx"] + scanned * c["c_walk_per_entry"])


@pytest.mark.parametrize("core, dcr, mmio", [("440", 6, 1), ("e500", 0, 4)])
def test_a_booting_guest_reaches_its_interrupt_controller_as_its_core_has_it(
        core, dcr, mmio):
    """A boot-like guest's I/O completions: on the 440 each external interrupt
    reaches the UIC through six DCR exits; on the e500 (no DCRs) the MPIC through
    three MMIO exits; on both, the virtio device's ISR read is one more MMIO
    exit, besides the block requests' own MMIO exits."""
    from pathlib import Path
    from emu.stats import collect
    from emu.params import load_scenario
    scenario = Path(__file__).resolve().parent.parent / "scenarios" / "boot_like.toml"
    extra = ["kvm.strategy=e500-shadow-ids", "kvm.pfn_source=guest-tlb-refs"] \
        if core == "e500" else []
    m = Machine(resolve(load_scenario(str(scenario)),
                        [f"machine.core={core}", "sim.guest_accesses=200000", *extra]))
    counts = {"n": 0}
    kernel = m.vcpus[0].kernel
    plain = kernel.external_interrupt

    def external_interrupt(cpu):
        counts["n"] += 1
        plain(cpu)
    kernel.external_interrupt = external_interrupt
    m.run()
    e = collect(m.snapshot())[0]["exits"]
    requests = sum(q.served["block"] + q.served["uart"] for q in m.qemu)
    assert counts["n"] > 0
    assert e["DCR"]["count"] == dcr * counts["n"]
    assert e["MMIO"]["count"] == requests + mmio * counts["n"]

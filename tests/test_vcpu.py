"""KVM's side of the guest's traps: the vCPU as the guest kernel's TrapPort (emu.kvm.vcpu).

Each trap is driven by hand on a real vCPU, loaded on its CPU, on both
backends; the checks follow kvmppc_44x_emul_tlbwe and kvmppc_set_pid
(docs/kvm440.md §2.7, §2.8).
"""

from __future__ import annotations

import pytest

from emu.codes import CYCLES, EXIT
from emu.guest import traps44x as T
from emu.hw.ppc440 import ATTRIB, PAGEID, XLAT
from emu.machine import Machine
from emu.params import default_scenario
from emu.run import resolve

GI = 7
EA = 0x2000_3000


def loaded_vcpu(backend, *overrides):
    m = Machine(resolve(default_scenario(), [f"sim.backend={backend}", *overrides]))
    vcpu, cpu = m.vcpus[0], m.cpus[0]
    vcpu.vcpu_load(cpu)
    return m, vcpu, cpu


def exits(vcpu, category: str) -> int:
    return int(vcpu.ctx.arrays["exits"][4 * EXIT[category]])


def shadows_of(vcpu, gi: int) -> list:
    return [i for i, g in enumerate(vcpu.ctx.arrays["hwref_gi"]) if g == gi]


@pytest.mark.parametrize("backend", ["cython", "reference"])
def test_a_fill_traps_three_times_and_maps_the_entry_eagerly(backend):
    m, vcpu, cpu = loaded_vcpu(backend)
    gpa = 0x0050_0000
    entry = (EA, 12, 1, 0, gpa)             # TID 1, TS 0: the guest's address space
    vcpu.tlbwe(cpu, GI, XLAT, entry)
    # XLAT of an invalid entry leaves it invalid: nothing to map
    assert vcpu.gtlb.read(GI)[0] == 0 and shadows_of(vcpu, GI) == []
    vcpu.tlbwe(cpu, GI, PAGEID, entry)
    assert vcpu.gtlb.read(GI)[:6] == (1, EA, 12, 1, 0, gpa)
    (hw,) = shadows_of(vcpu, GI)            # host-safe: mapped at once (kvmppc_mmu_map)
    # the shadow: same page, shadow TID 0 for a guest TID != 0, AS 1 (reference §2.8)
    assert cpu.tlb.read(hw)[1:5] == (EA, 12, 0, 1)
    vcpu.tlbwe(cpu, GI, ATTRIB, entry)      # releases the shadow it made and maps again
    assert len(shadows_of(vcpu, GI)) == 1
    assert exits(vcpu, "EMUL_TLBWE") == 3
    # the guest's flush: PAGEID with V clear releases every shadow of the entry
    vcpu.tlbwe(cpu, GI, PAGEID, None)
    assert vcpu.gtlb.read(GI)[0] == 0 and shadows_of(vcpu, GI) == []
    assert exits(vcpu, "EMUL_TLBWE") == 4


@pytest.mark.parametrize("backend", ["cython", "reference"])
def test_xlat_moves_a_valid_entry_to_the_new_page(backend):
    m, vcpu, cpu = loaded_vcpu(backend)
    vcpu.tlbwe(cpu, GI, None, (EA, 12, 1, 0, 0x0050_0000))       # batched: one exit
    assert exits(vcpu, "EMUL_TLBWE") == 1
    vcpu.tlbwe(cpu, GI, XLAT, (0x3000_0000, 16, 2, 0, 0x0060_0000))
    # the old EA, size, TID and TS with the new real address
    assert vcpu.gtlb.read(GI)[:6] == (1, EA, 12, 1, 0, 0x0060_0000)


@pytest.mark.parametrize("backend", ["cython", "reference"])
def test_a_device_page_is_not_mapped_eagerly(backend):
    m, vcpu, cpu = loaded_vcpu(backend)
    vcpu.tlbwe(cpu, GI, None, (EA, 12, 1, 0, 0xEF60_0000))       # the UART: not RAM
    assert vcpu.gtlb.read(GI)[0] == 1 and shadows_of(vcpu, GI) == []


@pytest.mark.parametrize("backend", ["cython", "reference"])
def test_mtspr_pid_changes_the_pid_once(backend):
    m, vcpu, cpu = loaded_vcpu(backend)
    pid = vcpu.ctx.guest_pid
    before = cpu.total()
    vcpu.mtspr_pid(cpu, pid)                 # the same PID: only the emulation
    same = cpu.total() - before
    vcpu.mtspr_pid(cpu, pid + 1)
    assert vcpu.ctx.guest_pid == pid + 1 and exits(vcpu, "EMUL_MTSPR") == 2
    # direct releases on a PID change: 64 emulated PID writes more than no change
    assert cpu.total() - before - same >= same + 64 * m.costs["set_pid_per_slot"]


@pytest.mark.parametrize("backend", ["cython", "reference"])
def test_a_system_call_runs_the_kernel_in_supervisor_mode(backend):
    m, vcpu, cpu = loaded_vcpu(backend)
    assert vcpu.ctx.guest_pr == 1
    vcpu.deliver(cpu, "SYSCALL")             # the sc exit; PR 1 -> 0 inside it
    assert vcpu.ctx.guest_pr == 0 and vcpu.ctx.shadow_pid == 1      # reference §2.8
    vcpu.rfi(cpu, usermode=True)
    assert vcpu.ctx.guest_pr == 1 and vcpu.ctx.shadow_pid == 0
    assert exits(vcpu, "SYSCALL") == 1 and exits(vcpu, "EMUL_RFI") == 1


@pytest.mark.parametrize("backend", ["cython", "reference"])
def test_a_delivered_miss_switches_privilege_inside_its_exit(backend):
    # kvmppc_handle_exit queues the miss; kvmppc_core_deliver_interrupts sets the
    # MSR (kvmppc_mmu_priv_switch: in the guest-tid era every shadow is released
    # and flagged) before the entry, whose loop rewrites them: all one DTLBREAL
    # exit, from the exit to that entry (timing.c @73e75b41)
    import numpy as np
    from emu.codes import KIND_LOAD, STOP
    m, vcpu, cpu = loaded_vcpu(backend, "kvm.strategy=shadow-modified",
                               "kvm.tid_scheme=guest-tid", "kvm.pfn_source=gup")
    t0, e0, switches = cpu.total(), entries(vcpu), []
    plain = vcpu.strategy.priv_switch

    def priv_switch(cpu, vcpu_, usermode):
        switches.append(cpu.total())
        return plain(cpu, vcpu_, usermode)
    vcpu.strategy.priv_switch = priv_switch
    stop, _, _ = vcpu.ctx.run_virt(cpu.virt, np.array([0x2000_5000], np.uint32),
                                   np.array([KIND_LOAD], np.uint8), 0, 1 << 40)
    assert stop == STOP["guest_miss"] and exits(vcpu, "DTLBREAL") == 0    # open
    vcpu.deliver(cpu, "DTLBREAL")
    d = vcpu.ctx.arrays["exits"][4 * EXIT["DTLBREAL"]: 4 * EXIT["DTLBREAL"] + 4]
    assert vcpu.ctx.guest_pr == 0 and len(switches) == 1 and t0 < switches[0]
    assert d[0] == 1 and d[1] == cpu.total() - t0          # the switch and the entry inside
    assert entries(vcpu) - e0 == 1 and vcpu.ctx.n_modified == 0


@pytest.mark.parametrize("backend", ["cython", "reference"])
def test_a_trap_sequence_is_one_exit_per_instruction_in_its_category(backend):
    m, vcpu, cpu = loaded_vcpu(backend)
    seq = T.TrapSeq("t", [("mtspr SPRG0", "x"), ("mfspr PID", "x"), ("rfi", "x"),
                          ("mtspr SRR0", "x")])
    before = cpu.total()
    vcpu.traps(cpu, seq)
    assert [exits(vcpu, c) for c in ("EMULINST", "EMUL_MFSPR", "EMUL_RFI")] == [2, 1, 1]
    per = m.costs["exit_light"] + m.costs["emulate_instruction"]
    assert cpu.total() - before == 4 * per                  # direct: no entry work
    e = vcpu.ctx.arrays["exits"]
    assert e[4 * EXIT["EMULINST"] + 1] == 2 * per           # each exit lasts one emulation


@pytest.mark.parametrize("backend", ["cython", "reference"])
def test_the_guest_decrementer_fires_at_a_host_tick(backend):
    m, vcpu, cpu = loaded_vcpu(backend)
    tick = m.host.tick
    # kvmppc_emulate_dec: mod_timer(jiffies + dec / tb_ticks_per_jiffy)
    assert vcpu.dec_fire_time(0, tick) == tick              # the boot tick: jiffy 1
    assert vcpu.dec_fire_time(tick + 5, tick - 10) == 2 * tick   # rounds down: the next tick
    assert vcpu.dec_fire_time(tick + 5, 3 * tick) == 4 * tick
    # a host tick past the expiry delivers the guest tick inside its DEC exit
    vcpu.dec_expiry = cpu.total()
    vcpu.host_interrupt(cpu, "DEC", 100)
    assert vcpu.dec_delivered and vcpu.ctx.guest_pr == 0 and exits(vcpu, "DEC") == 0
    vcpu.finish_open_exit(cpu)              # the entry ends the exit
    assert exits(vcpu, "DEC") == 1 and vcpu.open_exit is None


@pytest.mark.parametrize("backend", ["cython", "reference"])
def test_wait_blocks_the_vcpu_until_an_io_or_its_decrementer(backend):
    m, vcpu, cpu = loaded_vcpu(backend)
    blocked, after = vcpu.wait(cpu, 5000)
    assert blocked and vcpu.blocked_on == "wait" and exits(vcpu, "HALT") == 0
    after()
    assert 5000 in m.cpus[vcpu.cpu].wakes
    blocked, after = vcpu.wait(cpu, -1)       # no I/O pending: the decrementer's tick
    after()
    assert vcpu.dec_expiry in m.cpus[vcpu.cpu].wakes


def entries(vcpu) -> int:
    """Guest entries that ran the design's entry work (the profile's entry_restore)."""
    from emu.codes import STEP
    return int(vcpu.ctx.arrays["profile"][2 * STEP["entry_restore"]])


@pytest.mark.parametrize("backend", ["cython", "reference"])
def test_a_vcpu_scheduled_out_in_a_tick_exit_makes_one_exit_and_one_entry(backend):
    # booke.c @73e75b41: the DEC exit's cond_resched schedules the vCPU out
    # (vcpu_put) and back (vcpu_load); the exit lasts until the entry after it,
    # and there is one entry -- the shadow design's 62-entry loop runs once.
    m, vcpu, cpu = loaded_vcpu(backend, "kvm.strategy=shadow", "kvm.handler=c")
    vcpu.dec_expiry = 1 << 60                     # the guest's own tick is not due
    e0, n0 = entries(vcpu), exits(vcpu, "TIMEINGUEST")
    t0 = cpu.total()
    vcpu.host_interrupt(cpu, "DEC", 100)
    vcpu.vcpu_put(cpu)
    cpu.charge("idle", 50_000)                    # another thread runs
    vcpu.vcpu_load(cpu)
    assert exits(vcpu, "DEC") == 0                # open until the entry
    assert vcpu.run(cpu, 0) == (False, None)      # the entry, and nothing after it
    d = vcpu.ctx.arrays["exits"][4 * EXIT["DEC"]: 4 * EXIT["DEC"] + 4]
    assert exits(vcpu, "DEC") == 1 and exits(vcpu, "EXTINT") == 0
    assert d[1] == cpu.total() - t0 > 50_000      # from the exit to the entry
    assert entries(vcpu) - e0 == 1 and exits(vcpu, "TIMEINGUEST") - n0 == 1
    # not scheduled out: the entry's work runs when the vCPU runs on
    vcpu.host_interrupt(cpu, "DEC", 100)
    vcpu.run(cpu, 0)
    assert exits(vcpu, "DEC") == 2 and entries(vcpu) - e0 == 2


@pytest.mark.parametrize("backend", ["cython", "reference"])
def test_an_external_interrupt_pending_at_a_tick_goes_first(backend):
    # kvmppc_core_deliver_interrupts delivers one interrupt per entry, the
    # lowest BOOKE_IRQPRIO first: EXTERNAL (13) before DECREMENTER (15); the
    # guest's decrementer waits until the external's handler has run.
    m, vcpu, cpu = loaded_vcpu(backend)
    seen = []
    kernel = vcpu.kernel
    for name in ("external_interrupt", "timer_tick"):
        plain = getattr(kernel, name)

        def spy(*a, plain=plain, name=name):
            seen.append((name, vcpu.ctx.guest_pr))
            return plain(*a)
        setattr(kernel, name, spy)
    vcpu.external_interrupt()
    vcpu.dec_expiry = cpu.total()
    vcpu.host_interrupt(cpu, "DEC", 100)
    assert not vcpu.dec_delivered and vcpu.ctx.guest_pr == 1
    vcpu.run(cpu, 200_000)
    assert [s[0] for s in seen[:2]] == ["external_interrupt", "timer_tick"]
    # delivered in the DEC exit, then QEMU raises the line: the tick's handler first
    m, vcpu, cpu = loaded_vcpu(backend)
    kernel, seen = vcpu.kernel, []
    for name in ("external_interrupt", "timer_tick"):
        plain = getattr(kernel, name)

        def spy(*a, plain=plain, name=name):
            seen.append(name)
            return plain(*a)
        setattr(kernel, name, spy)
    vcpu.dec_expiry = cpu.total()
    vcpu.host_interrupt(cpu, "DEC", 100)
    assert vcpu.dec_delivered and vcpu.ctx.guest_pr == 0
    vcpu.external_interrupt()
    vcpu.run(cpu, 200_000)                        # no guest kernel access in user mode
    assert seen[:2] == ["timer_tick", "external_interrupt"]


@pytest.mark.parametrize("backend", ["cython", "reference"])
def test_tlbsx_searches_the_guest_tlb_as_the_walk_does(backend):
    """kvmppc_44x_emul_tlbsx: the exit, the emulation, and kvmppc_44x_tlb_index's
    search entry by entry up to the match (or all 64); with the hypothetical
    hashed guest TLB, the C handler's hashed lookup instead, whatever the index."""
    for walk, gi in (("linear", GI), ("linear", 40), ("hashed", GI), ("hashed", 40)):
        m, vcpu, cpu = loaded_vcpu(backend, f"kvm.guest_tlb_walk={walk}")
        c = m.costs
        vcpu.gtlb.write(gi, EA, 12, vcpu.ctx.guest_pid, vcpu.ctx.guest_as, 0x0050_0000,
                        0x3F, -1)
        for ea, found in ((EA + 0x123, gi), (0x3000_0000, -1)):
            before = int(cpu.cycles[CYCLES["c_path"]])
            assert vcpu.tlbsx(cpu, ea) == found
            scanned = found + 1 if found >= 0 else vcpu.gtlb.entries
            search = (c["c_walk_hashed"] if walk == "hashed"
                      else scanned * c["c_walk_per_entry"])
            assert int(cpu.cycles[CYCLES["c_path"]]) - before == \
                c["emulate_instruction"] + c["emul_tlbsx"] + search, (walk, gi, ea)
        assert exits(vcpu, "EMUL_TLBSX") == 2

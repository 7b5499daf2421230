"""The machine as composition root: which parts it builds, and how it wires them."""

from __future__ import annotations

import pytest

from emu.errors import ConfigError
from emu.guest.os import PINNED_ENTRIES
from emu.machine import Machine
from emu.params import scenario_from_dict
from emu.run import resolve

TWO_VMS = {
    "duration_ms": 0.3,
    "machine": {"cpus": 2},
    "vm": [{"vcpus": 2}, {"vcpus": 1, "vcpu_cpus": [1], "qemu_cpu": 0}],
    "host_task": [{"name": "a"}, {"name": "b", "cpu": 0}],
}


def build(raw=TWO_VMS, *overrides) -> Machine:
    return Machine(resolve(scenario_from_dict(raw), list(overrides)))


def test_contexts_are_numbered_vcpus_then_qemu_then_host_tasks():
    m = build()
    assert [(c["id"], c["name"], c["kind"]) for c in m.contexts()] == [
        (0, "vm0.vcpu0", "vcpu"), (1, "vm0.vcpu1", "vcpu"), (2, "vm1.vcpu0", "vcpu"),
        (3, "qemu0", "qemu"), (4, "qemu1", "qemu"), (5, "a", "host_task"), (6, "b", "host_task")]
    # the fast path tells host contexts (which run natively) from vCPUs
    assert list(m.ctx_host) == [0, 0, 0, 1, 1, 1, 1]
    assert [t.tid for t in m.vcpus + m.qemu + m.host_tasks] == list(range(7))


def test_threads_are_placed_on_their_cpus():
    m = build()
    # vCPUs round robin over the CPUs unless pinned; QEMU on v % cpus unless pinned;
    # host tasks on h % cpus unless pinned
    assert [v.cpu for v in m.vcpus] == [0, 1, 1]
    assert [q.cpu for q in m.qemu] == [0, 0]
    assert [h.cpu for h in m.host_tasks] == [0, 0]
    for cpu in m.cpus:
        assert set(cpu.rq.threads) == {t for t in m.host.threads if t.cpu == cpu.index}
    # QEMU sleeps until a vCPU exits to it; everything else starts runnable
    assert [t.runnable for t in m.host.threads] == [True] * 3 + [False] * 2 + [True] * 2


def test_each_vcpu_is_wired_to_its_vm_guest_and_qemu():
    m = build()
    for v, vm in enumerate(m.kvms):
        vcpus = [t for t in m.vcpus if t.vm_index == v]
        assert vm.vcpus == vcpus
        for i, t in enumerate(vcpus):
            assert t.kvm is vm and t.qemu is m.qemu[v]
            assert t.kernel.port is t                        # the vCPU is the guest's port
            assert t.kernel.os is m.guests[v] and t.gcpu is m.guests[v].cpus[i]
            assert t.host is m.host and t.strategy is m.strategy
    # the guest kernel's pinned entries are in every guest TLB before the run
    for t in m.vcpus:
        for gi, ea, shift, gpa in PINNED_ENTRIES:
            assert t.gtlb.read(gi)[:6] == (1, ea, shift, 0, 0, gpa)
        assert t.gtlb.valid_count() == len(PINNED_ENTRIES)


def test_host_pids_differ_and_wrap_like_linux():
    m = build()
    pids = [int(t.ctx.host_pid) for t in m.qemu + m.host_tasks]
    assert pids == [1, 2, 4, 5]              # host tasks take pid % 255 + 1 of the counter


@pytest.mark.parametrize("core, tlb1, hwater", [("440", None, 62), ("e500", 16, 0)])
def test_the_cpus_are_the_core_the_scenario_names(core, tlb1, hwater):
    over = ["machine.core=e500", "kvm.strategy=e500-shadow-ids"] if core == "e500" else []
    m = build(TWO_VMS, *over)
    for cpu in m.cpus:
        assert (cpu.virt.tlb1.entries if cpu.virt.tlb1 is not None else None) == tlb1
    assert m.hwater == hwater and m.hw_entries == (64 if core == "440" else 512 + 16)
    # the host kernel's pinned lowmem entry: UTLB slot 63, or TLB1 entry 0 (IPROT)
    pinned = m.cpus[0].tlb.read(63) if core == "440" else m.cpus[0].virt.tlb1.read(0)
    assert pinned[:3] == (1, 0xC000_0000, 28) and pinned[7] == -1


def test_guest_memory_must_stay_below_the_device_pages():
    """The UART's page at 0xEF600000 is the first device page: 3830 MB of RAM
    end just below it, 3831 would reach it (the key's range said 4096)."""
    build(dict(TWO_VMS, vm=[{"memory_mb": 3830}]))
    for mb in (3831, 4096):
        with pytest.raises(ConfigError, match=f"vm.0.memory_mb: expected an integer in "
                                              f"16..3830, got {mb}"):
            build(dict(TWO_VMS, vm=[{"memory_mb": mb}]))


def test_every_cpu_accounts_for_the_whole_run():
    m = build()
    cycles = m.run()
    assert cycles >= m.us(300)
    assert [cpu.total() for cpu in m.cpus] == [cycles] * len(m.cpus)


# -- the snapshot the machine hands over ----------------------------------------------------

def test_the_snapshot_holds_every_context_cpu_and_vm():
    m = build()
    m.run()
    snap = m.snapshot()
    assert snap.context_identities() == m.contexts()
    assert [c.kind for c in snap.of_kind("host_task", "qemu")] == ["host_task"] * 2 + ["qemu"] * 2
    vcpus = snap.of_kind("vcpu")
    assert [c.resumes for c in vcpus] == [t.resumes for t in m.vcpus]
    assert all(c.resumes >= 1 for c in vcpus)
    assert [c.page_faults for c in snap.of_kind("qemu", "host_task")] == \
        [t.page_faults for t in m.qemu + m.host_tasks]
    assert snap.simulated_cycles == m.simulated_cycles and snap.clock_mhz == m.clock_mhz
    # without a warm-up every CPU's breakdown covers the whole run
    assert [int(c.cycles.sum()) for c in snap.cpus] == [snap.simulated_cycles] * 2
    assert [c.measured_from for c in snap.cpus] == [0, 0]
    assert [(vm.index, vm.vcpus) for vm in snap.vms] == [(0, 2), (1, 1)]
    assert sum(vm.guest_page_faults for vm in snap.vms) == sum(g.page_faults for g in m.guests)
    # direct: shadow_refs[64] of 8 bytes and guest_tlb[64] of 16 per vCPU (reference §2.2)
    assert snap.vcpu_memory_bytes == {"shadow_refs": 512, "guest_tlb": 1024}


def test_the_snapshot_is_a_copy():
    m = build()
    m.run()
    snap = m.snapshot()
    before = snap.contexts[0].counters["tlb"].copy()
    m.vcpus[0].ctx.arrays["tlb"][...] += 1000
    m.cpus[0].cycles[...] += 1000
    assert (snap.contexts[0].counters["tlb"] == before).all()
    assert int(snap.cpus[0].cycles.sum()) == snap.simulated_cycles


def test_after_a_warm_up_the_snapshot_counts_from_each_cpus_restart():
    m = build(TWO_VMS, "sim.warmup_ms=0.1")
    m.run()
    snap = m.snapshot()
    assert snap.warmup_cycles == m.us(100)
    for c in snap.cpus:
        assert c.measured_from >= snap.warmup_cycles
        assert int(c.cycles.sum()) == snap.simulated_cycles - c.measured_from


def test_guest_memory_too_small_is_said_with_grouped_counts():
    """It said 'touch up to 51024 pages, more than the 16384 of 64 MB'."""
    sc = scenario_from_dict({}, ["vm.0.process.0.count=1000"])
    with pytest.raises(ConfigError, match=r"^vm\.0\.memory_mb: the processes touch up to "
                                          r"\d{1,3}(,\d{3})+ pages, more than the 16,384 of "
                                          r"64 MB$"):
        Machine(sc)

"""Linux 44x as KVM-440 runs it, on real vCPUs and whole machines.

Known answers, each derived from the instructions of head_44x.S @026477c1
and entry_32.S @026477c1 (emu/guest/traps44x.py lists them, row by row):

* a delivered data TLB miss whose PTE is present: the DTLBREAL exit that
  delivers it, then DataTLBError's mtspr SPRG0, SPRG1 (EMULINST), SPRG4W,
  SPRG5W, SPRG7W (EMUL_MTSPR), mfspr DEAR (EMUL_MFSPR), SPRG3 (EMULINST),
  MMUCR, PID (EMUL_MFSPR), mtspr MMUCR (EMUL_MTSPR), finish_tlb_load's three
  tlbwe (EMUL_TLBWE), mfspr SPRG1, SPRG0 (EMULINST) and rfi (EMUL_RFI):
  DTLBREAL 1, EMULINST 5, EMUL_MTSPR 4, EMUL_MFSPR 3, EMUL_TLBWE 3,
  EMUL_RFI 1 = 17, and two privilege switches (delivery, rfi);
* a system call: SYSCALL, NORMAL_EXCEPTION_PROLOG (9), transfer_to_handler
  (4), ret_from_syscall's MTMSRD, syscall_exit_cont's SRR0, SRR1, rfi:
  SYSCALL 1, EMULINST 13, EMUL_MTSPR 1, EMUL_MTMSR 1, EMUL_RFI 2 = 18;
* a guest tick from user mode: no exit of its own (the guest decrementer is
  a host timer: the host's DEC exit delivers it), then 20 traps: EMULINST 15,
  EMUL_MTSPR 2 (SPRG4W, TSR), EMUL_MTMSR 1, EMUL_RFI 2;
* idle (cpu_idle, ppc44x_idle): wrteei 0, mfmsr, then mtmsr with MSR[WE],
  an EMUL_WAIT exit (never HALT) that lasts until the vCPU is entered again;
  woken by the guest tick, the tick from kernel mode (19 traps: the prolog
  without mfspr SPRG3, no privilege switch), mtmsr, wrteei 1;
* an external interrupt (ExternalInput, ``EXCEPTION(0x0500, ExternalInput,
  do_IRQ, EXC_XFER_LITE)``) from user mode -- QEMU completed a block request:
  no exit of its own (KVM delivers it at the next entry), the prolog (9:
  EMULINST 8, EMUL_MTSPR 1), transfer_to_handler (4: EMULINST 3, EMUL_RFI 1),
  do_IRQ on the UIC (uic.c of 2008: mfdcr UIC_MSR; uic_mask_ack_irq's
  mfmsr, wrteei 0, mfdcr ER, mtdcr ER, wrtee; handle_IRQ_event's wrteei 1,
  wrteei 0; uic_unmask_irq's mfmsr, wrteei 0, mtdcr SR, mfdcr ER, mtdcr ER,
  wrtee: DCR 6, EMUL_MFMSR 2, EMUL_WRTEE 6), ret_from_except's MTMSRD,
  SRR0, SRR1 and rfi: EMULINST 13, EMUL_MTSPR 1, DCR 6, EMUL_MFMSR 2,
  EMUL_WRTEE 6, EMUL_MTMSR 1, EMUL_RFI 2 = 31, two privilege switches, and
  each DCR access a heavyweight exit to QEMU (vcpu_put, vcpu_load); from the
  idle loop (a process's I/O wait ended), the prolog without mfspr SPRG3:
  30, no privilege switch.

The C-code traps (``guest_c_traps_*``) are set to 0 for the exact counts.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from emu.codes import CYCLES, EXIT_CATEGORIES, KIND_LOAD, STOP
from emu.machine import Machine
from emu.params import default_scenario
from emu.run import resolve, run

BACKENDS = ["cython", "reference"]
C_TRAPS_OFF = [f"costs.guest_c_traps_{e}_{i}=0" for e in ("tick", "syscall", "fault")
               for i in ("mfmsr", "wrtee")]


def loaded_vcpu(backend, *overrides):
    m = Machine(resolve(default_scenario(), [f"sim.backend={backend}", *C_TRAPS_OFF,
                                             *overrides]))
    vcpu, cpu = m.vcpus[0], m.cpus[0]
    vcpu.vcpu_load(cpu)
    return m, vcpu, cpu


def exit_counts(vcpu) -> dict:
    e = vcpu.ctx.arrays["exits"]
    return {c: int(e[4 * i]) for i, c in enumerate(EXIT_CATEGORIES)
            if c != "TIMEINGUEST" and e[4 * i]}


def delta(before: dict, after: dict) -> dict:
    return {c: n - before.get(c, 0) for c, n in after.items() if n != before.get(c, 0)}


def record_switches(vcpu) -> list:
    seen = []
    plain = vcpu.priv_switch

    def priv_switch(cpu, usermode):
        seen.append(usermode)
        plain(cpu, usermode)
    vcpu.priv_switch = priv_switch
    return seen


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_delivered_miss_makes_17_exits(backend):
    m, vcpu, cpu = loaded_vcpu(backend)
    proc, kernel = vcpu.gcpu.current, vcpu.kernel
    switches = record_switches(vcpu)
    for ea in (0x2000_1000, 0x2000_5000):        # the first warms the kernel's shadows
        vcpu.guest.fault(proc, ea)               # the PTE is present
        before = exit_counts(vcpu)
        switches.clear()
        stop, _, _ = vcpu.ctx.run_virt(cpu.virt, np.array([ea], np.uint32),
                                       np.array([KIND_LOAD], np.uint8), 0, 1 << 40)
        assert stop == STOP["guest_miss"]        # not in the guest TLB: delivered
        kernel.tlb_miss(cpu, proc)
    assert delta(before, exit_counts(vcpu)) == {
        "DTLBREAL": 1, "EMULINST": 5, "EMUL_MTSPR": 4, "EMUL_MFSPR": 3, "EMUL_TLBWE": 3,
        "EMUL_RFI": 1}
    assert switches == [False, True]              # delivery PR 1 -> 0, rfi PR 0 -> 1
    assert vcpu.ctx.guest_pr == 1 and proc.guest_tlb_misses == 2


def in_guest(vcpu) -> tuple:
    """TIMEINGUEST's (count, sum of cycles, least cycles)."""
    e = vcpu.ctx.arrays["exits"]
    b = 4 * EXIT_CATEGORIES.index("TIMEINGUEST")
    return int(e[b]), int(e[b + 1]), int(e[b + 2])


@pytest.mark.parametrize("backend", BACKENDS)
def test_each_of_the_17_exits_closes_a_run_in_the_guest(backend):
    """kvmppc_update_timing_stats (timing.c @73e75b41) adds one TIMEINGUEST
    sample at every exit: the 17 samples hold every cycle the guest ran (its
    own work, then the handler's accesses), and a trap right after an entry
    a run of no time."""
    m, vcpu, cpu = loaded_vcpu(backend)
    proc, kernel = vcpu.gcpu.current, vcpu.kernel
    for ea in (0x2000_1000, 0x2000_5000):        # the first warms the kernel's shadows
        vcpu.guest.fault(proc, ea)
        before, (n0, sum0, _) = exit_counts(vcpu), in_guest(vcpu)
        guest0 = int(cpu.cycles[CYCLES["guest"]])
        vcpu.guest_work(cpu, 1234)
        stop, _, _ = vcpu.ctx.run_virt(cpu.virt, np.array([ea], np.uint32),
                                       np.array([KIND_LOAD], np.uint8), 0, 1 << 40)
        assert stop == STOP["guest_miss"]
        kernel.tlb_miss(cpu, proc)
    n, total, least = in_guest(vcpu)
    assert sum(delta(before, exit_counts(vcpu)).values()) == 17
    ran = int(cpu.cycles[CYCLES["guest"]]) - guest0      # 1,234 and the handler's accesses
    assert n - n0 == 17 and total - sum0 == ran > 1234 and least == 0
    assert vcpu.ctx.guest_run == 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_system_call_makes_18_exits(backend):
    m, vcpu, cpu = loaded_vcpu(backend)
    proc, kernel = vcpu.gcpu.current, vcpu.kernel
    switches = record_switches(vcpu)
    kernel.syscall(cpu, proc)                     # warms the kernel's shadows
    before = exit_counts(vcpu)
    switches.clear()
    kernel.syscall(cpu, proc)
    assert delta(before, exit_counts(vcpu)) == {
        "SYSCALL": 1, "EMULINST": 13, "EMUL_MTSPR": 1, "EMUL_MTMSR": 1, "EMUL_RFI": 2}
    assert switches == [False, True]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_guest_tick_rides_the_host_tick(backend):
    m, vcpu, cpu = loaded_vcpu(backend)
    kernel = vcpu.kernel
    switches = record_switches(vcpu)
    for _ in range(2):                            # the first warms the kernel's shadows
        before = exit_counts(vcpu)
        switches.clear()
        vcpu.dec_expiry = cpu.total()             # the guest decrementer's timer is due
        vcpu.host_interrupt(cpu, "DEC", m.costs["host_timer_handler"])
        assert vcpu.open_exit[0] == "DEC"        # open until the entry
        vcpu.finish_open_exit(cpu)
        vcpu.take_dec(cpu)
        kernel.timer_tick(cpu, cpu.total())
    assert delta(before, exit_counts(vcpu)) == {
        "DEC": 1, "EMULINST": 15, "EMUL_MTSPR": 2, "EMUL_MTMSR": 1, "EMUL_RFI": 2}
    assert switches == [False, True]
    assert vcpu.dec_expiry > cpu.total() and vcpu.dec_expiry % m.host.tick == 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_idle_woken_by_the_guest_tick(backend):
    # ppc44x_idle: wrteei 0, mfmsr, mtmsr WE (the wait); woken by the
    # decrementer's host tick: the EMUL_WAIT exit ends at the entry, the tick
    # is taken in kernel mode (19 traps, no privilege switch), mtmsr, wrteei 1;
    # nothing runnable yet: wrteei 0, mfmsr and the next wait.
    m, vcpu, cpu = loaded_vcpu(backend)
    proc, kernel = vcpu.gcpu.current, vcpu.kernel
    kernel.sleep(cpu, proc, cpu.total())          # a blocking system call
    proc.sleep_until = 1 << 60                    # its I/O completes much later
    blocked, _ = kernel.schedule(cpu, cpu.total())     # to the idle task, then the wait
    assert blocked and kernel.idle and vcpu.open_exit[0] == "EMUL_WAIT"
    switches = record_switches(vcpu)
    before = exit_counts(vcpu)
    vcpu.dec_expiry = 0                           # the decrementer's tick has come
    blocked, _ = vcpu.run(cpu, 1 << 40)
    assert blocked and kernel.idle and switches == []
    d = delta(before, exit_counts(vcpu))
    # the tick's first touches of its kernel pages (its text, data and the idle
    # task's) are KVM fills of their 4 KB shadows, not traps
    fills = d.pop("ITLBVIRT", 0) + d.pop("DTLBVIRT", 0)
    assert 0 < fills <= len(np.unique(kernel.fp.tick(None)[0] >> 12))
    assert d == {"EMUL_WAIT": 1, "EMULINST": 14, "EMUL_MTSPR": 2, "EMUL_MTMSR": 2,
                 "EMUL_RFI": 2, "EMUL_WRTEE": 2, "EMUL_MFMSR": 1}
    assert "HALT" not in exit_counts(vcpu)


#: an external interrupt from user mode: the prolog and transfer, do_IRQ on the UIC
#: (six DCR exits, eight traps), the virtio device's ISR read (one MMIO exit), the return
EXTINT_FROM_USER = {"EMULINST": 13, "EMUL_MTSPR": 1, "DCR": 6, "MMIO": 1, "EMUL_MFMSR": 2,
                    "EMUL_WRTEE": 6, "EMUL_MTMSR": 1, "EMUL_RFI": 2}


def spy_external_interrupts(vcpu) -> list:
    """Record, per external interrupt the guest takes, its exits and privilege switches."""
    kernel, seen = vcpu.kernel, []
    switches = record_switches(vcpu)
    plain = kernel.external_interrupt

    def external_interrupt(cpu):
        before, resumes = exit_counts(vcpu), vcpu.resumes
        switches.clear()
        plain(cpu)
        seen.append((delta(before, exit_counts(vcpu)), list(switches), vcpu.resumes - resumes))
    kernel.external_interrupt = external_interrupt
    return seen


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_io_completion_in_user_mode_is_an_external_interrupt(backend):
    m, vcpu, cpu = loaded_vcpu(backend)
    seen = spy_external_interrupts(vcpu)
    vcpu.external_interrupt()                     # QEMU completed a block request
    assert vcpu.run(cpu, 1) == (False, None)      # taken at the entry, before anything
    (counts, switches, reloads), = seen
    assert counts == EXTINT_FROM_USER and sum(counts.values()) == 32
    assert switches == [False, True]              # delivery PR 1 -> 0, rfi PR 0 -> 1
    assert reloads == 7                           # each DCR and the ISR: vcpu_put, QEMU, vcpu_load
    assert vcpu.ctx.guest_pr == 1 and vcpu.kernel.user


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("strategy", ["e500-flush-on-put", "e500-shadow-ids"])
def test_the_e500_reaches_its_mpic_by_mmio_not_dcrs(backend, strategy):
    """The e500 has no DCRs.  do_IRQ reads the MPIC's CPU_INTACK (mpic_get_irq),
    handle_fasteoi_irq runs the action (the virtio device's ISR read) between
    two wrteei, and mpic_eoi writes CPU_EOI and reads CPU_WHOAMI back: three
    loads and stores to the MPIC QEMU emulates and the ISR read, each a
    heavyweight MMIO exit with its vcpu_put and vcpu_load.  With the prolog (9:
    EMULINST 8, EMUL_MTSPR 1), the transfer (4: EMULINST 3, EMUL_RFI 1) and the
    return (mtmsr, SRR0, SRR1, rfi): EMULINST 13, EMUL_MTSPR 1, MMIO 4, EMUL_WRTEE
    2, EMUL_MTMSR 1, EMUL_RFI 2 = 23 exits (the 440's 32, with six DCR exits for
    the ISR's one MMIO exit, and six more traps for the UIC's two locks).  KVM
    delivers the interrupt at the vCPU's entry: no exit of its own."""
    m, vcpu, cpu = loaded_vcpu(backend, "machine.core=e500", f"kvm.strategy={strategy}",
                               "kvm.pfn_source=guest-tlb-refs")
    seen = spy_external_interrupts(vcpu)
    vcpu.external_interrupt()
    assert vcpu.run(cpu, 1) == (False, None)
    (counts, switches, reloads), = seen
    counts.pop("DTLBVIRT", None), counts.pop("ITLBVIRT", None)   # the handler's own accesses
    assert counts == {"EMULINST": 13, "EMUL_MTSPR": 1, "MMIO": 4, "EMUL_WRTEE": 2,
                      "EMUL_MTMSR": 1, "EMUL_RFI": 2}
    assert switches == [False, True] and reloads == 4


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_io_completion_wakes_the_idle_guest_with_an_external_interrupt(backend):
    m, vcpu, cpu = loaded_vcpu(backend)
    proc, kernel = vcpu.gcpu.current, vcpu.kernel
    kernel.sleep(cpu, proc, cpu.total())          # a blocking system call: an I/O wait
    proc.sleep_until = 1 << 50                    # its I/O completes before the decrementer
    vcpu.dec_expiry = 1 << 60
    blocked, _ = kernel.schedule(cpu, cpu.total())
    assert blocked and kernel.idle and vcpu.io_wake == 1 << 50
    seen = spy_external_interrupts(vcpu)
    vcpu.io_wake = 0                              # the vCPU is entered at the completion
    assert vcpu.run(cpu, 1) == (False, None)
    (counts, switches, reloads), = seen
    assert counts == dict(EXTINT_FROM_USER, EMULINST=12) and sum(counts.values()) == 31
    assert switches == [] and reloads == 7 and kernel.idle
    assert vcpu.ctx.guest_pr == 0
    # woken by the decrementer instead: no external interrupt
    m, vcpu, cpu = loaded_vcpu(backend)
    proc, kernel = vcpu.gcpu.current, vcpu.kernel
    kernel.sleep(cpu, proc, cpu.total())
    proc.sleep_until = 1 << 60
    kernel.schedule(cpu, cpu.total())
    assert vcpu.io_wake == -1
    seen = spy_external_interrupts(vcpu)
    vcpu.dec_expiry = 0
    vcpu.run(cpu, 1)
    assert seen == []


GUEST_ONLY = ["host_task=[]", "duration_ms=20"]


def test_guest_ticks_make_no_dec_exits_of_their_own():
    # One busy process alone on the CPU: every host tick (HZ 250: 4, 8, 12, 16 ms)
    # lands in the guest, and each delivers one guest tick (guest HZ 250).
    ticks = []

    class Watch:
        def around(self, event, thread, call, *args):
            if event == "timer_tick":
                ticks.append(args[1])
            return call(*args)

    m = Machine(resolve(default_scenario(), GUEST_ONLY))
    m.vcpus[0].observer = Watch()
    m.run()
    dec = int(m.vcpus[0].ctx.arrays["exits"][4 * EXIT_CATEGORIES.index("DEC")])
    tick = m.host.tick
    # 4, 8, 12 and 16 ms; the exit at 20 ms, the end of the run, is still open
    # (recorded at the entry, as timing.c records it at the next exit)
    assert tick == 4000 * 667 and dec == 4 and m.vcpus[0].open_exit[0] == "DEC"
    # each host tick delivered a guest tick inside its DEC exit; the guest handled
    # it right after its entry
    assert len(ticks) == dec and all(0 <= t % tick < 20_000 for t in ticks)


def test_idle_waits_in_emul_wait_and_never_halts():
    # the process sleeps most of the time (I/O waits of 1 ms): the guest idles
    s = run(default_scenario(), GUEST_ONLY + [
        "vm.0.process.0.workload.sleep_every=2000", "vm.0.process.0.workload.sleep_us=1000"]
    ).summary
    ex = s["exits"]
    assert ex["HALT"]["count"] == 0 and ex["EMUL_WAIT"]["count"] > 5
    # each wait lasts until the vCPU is entered again: most of the run is waiting
    assert ex["EMUL_WAIT"]["sum"] > 0.5 * s["simulated_cycles"]
    # every wait is the idle loop's: wrteei 0, mfmsr before it, mtmsr, wrteei 1 after
    assert ex["EMUL_MFMSR"]["count"] >= ex["EMUL_WAIT"]["count"]
    assert s["cycles"]["idle"] > 0.5 * s["simulated_cycles"]


def test_six_sleeping_processes_share_the_cpu_fairly():
    # Six processes of 8 pages (all fit the guest TLB) that sleep (I/O) every
    # ~5,000 accesses for 20 us.  The scheduler that picked the first runnable
    # process when the current one slept ran the first ones only: accesses
    # [2491301, 2260035, 1847384, 1082523, 87282, 0] in 20 ms.  Least virtual
    # runtime first gives each its turn.
    s = run(default_scenario(), GUEST_ONLY + [
        "vm.0.process.0.count=6", "vm.0.process.0.workload.sleep_every=5000",
        "vm.0.process.0.workload.sleep_us=20", "vm.0.process.0.workload.pages=6",
        "vm.0.process.0.workload.code_pages=2"]).summary
    procs = s["processes"]
    assert [p["process"] for p in procs] == list(range(6))
    shares = [p["guest_accesses"] for p in procs]
    mean = sum(shares) / len(shares)
    assert all(abs(a - mean) <= 0.35 * mean for a in shares), shares
    assert sum(shares) == s["guest_accesses"]
    assert all(p["page_faults"] > 0 and p["guest_tlb_misses"] >= p["page_faults"]
               for p in procs)


N = 123_457


@pytest.fixture(scope="module")
def equal_work():
    out = {}
    for backend in BACKENDS:
        for chunk in (4096, 65536):
            r = run(default_scenario(), [f"sim.guest_accesses={N}", f"sim.chunk={chunk}",
                                         f"sim.backend={backend}"])
            out[backend, chunk] = r.summary
    return out


def test_equal_work_stops_at_exactly_n(equal_work):
    for s in equal_work.values():
        assert s["guest_accesses"] == N
        assert sum(p["guest_accesses"] for p in s["processes"]) == N
        assert 0 < s["time_to_work_cycles"] <= s["simulated_cycles"]
        assert s["time_to_work_us"] == s["time_to_work_cycles"] / 667
        assert s["simulated_cycles"] < 20_000 * 667       # before duration_ms


def test_equal_work_is_independent_of_chunk_and_backend(equal_work):
    texts = {k: json.dumps(dict(s, backend=None), sort_keys=True) for k, s in equal_work.items()}
    assert len(set(texts.values())) == 1


def test_without_equal_work_the_run_lasts_duration_ms():
    s = run(default_scenario(), ["duration_ms=1"]).summary
    assert s["time_to_work_cycles"] is None and s["simulated_cycles"] >= 667 * 1000


def test_equal_work_across_two_vms_and_cpus():
    s = run(default_scenario(), ["machine.cpus=2", "vm=[{}, {}]",
                                 f"sim.guest_accesses={N}"]).summary
    assert s["guest_accesses"] == N and len(s["processes"]) == 2
    assert {p["vm"] for p in s["processes"]} == {0, 1}

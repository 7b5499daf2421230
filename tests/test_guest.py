"""The guest OS and its handlers (emu.guest), trapping through a fake port.

Each handler is run against a port that records every call, so the trap
sequence a handler makes is checked exactly (docs/kvm440.md §1.6 for
the Linux 44x miss handler, §2.7 for the trapping tlbwe words).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from emu.errors import ConfigError, EmuError
from emu.guest.kernel import GuestKernel
from emu.guest.os import (GUEST_HWATER, KERNEL_ACCESSES_PER_SYSCALL, KERNEL_BASE,
                          KERNEL_DATA_EA, KERNEL_DATA_PAGES, KERNEL_RESERVED_GFNS, GuestOS,
                          GuestProcess)
from emu.hw.ppc440 import ATTRIB, PAGEID, XLAT

COSTS = {"guest_miss_handler": 55, "guest_page_fault": 2500, "guest_context_switch": 1500,
         "guest_timer_handler": 1400, "guest_syscall": 1000, "guest_tlb_flush": 292,
         "guest_timer_period_us": 40, "guest_timeslice_us": 80}
CYCLES_PER_US = 10
CPU = object()                         # the physical CPU: the guest only hands it back


def us(value) -> int:
    return int(round(float(value) * CYCLES_PER_US))


class Stream:
    sleep_us = 3.0


class FakePort:
    """Records every call the guest makes; answers what a vCPU would."""

    observer = None

    def __init__(self, fault_ea: int = 0x2000_1234, valid=()):
        self.calls: list[tuple] = []
        self.fault_ea = fault_ea
        self.valid = set(valid)

    def guest_work(self, cpu, cycles):
        assert cpu is CPU
        self.calls.append(("work", cycles))

    def run_kernel(self, cpu, ea, kind):
        self.calls.append(("run_kernel", ea, kind))

    def fault_address(self, cpu):
        self.calls.append(("fault_address",))
        return self.fault_ea

    def deliver_interrupt(self, cpu, category, supervisor=False):
        self.calls.append(("deliver", category, supervisor))

    def rfi(self, cpu, user=None):
        self.calls.append(("rfi", user))

    def tlbwe(self, cpu, index, word, entry):
        self.calls.append(("tlbwe", index, word, entry))

    def tlb_valid(self, index):
        return index in self.valid

    def mtspr_pid(self, cpu, pid):
        self.calls.append(("mtspr_pid", pid))

    def wait(self, cpu, until):
        self.calls.append(("wait", until))
        return True, "after"


def make_kernel(nproc: int = 2, batch: bool = False, port=None, memory_pages: int = 4096):
    procs = [GuestProcess(i, Stream(), 64) for i in range(nproc)]
    os = GuestOS(memory_pages, procs, 1, [np.random.SeedSequence(5)])
    kernel = GuestKernel(os, os.cpus[0], COSTS, us, batch)
    kernel.attach(port or FakePort())
    return kernel


# -- the TLB miss handler -------------------------------------------------------------------

def test_a_delivered_miss_makes_the_linux_44x_trap_sequence():
    k = make_kernel()
    proc = k.gcpu.current
    k.tlb_miss(CPU, proc)
    gfn = KERNEL_RESERVED_GFNS                     # the first free guest frame
    entry = (0x2000_1000, 12, proc.pid, 0, gfn << 12)
    assert k.port.calls == [
        ("work", 55), ("fault_address",),          # handler entry; mfspr DEAR traps
        ("work", 2500),                            # first touch: a guest page fault
        ("tlbwe", 0, XLAT, entry), ("tlbwe", 0, PAGEID, entry), ("tlbwe", 0, ATTRIB, entry),
        ("rfi", None),
    ]
    assert proc.page_table == {0x20001: gfn} and k.os.page_faults == 1


def test_a_second_miss_on_the_page_takes_no_fault_and_the_next_victim():
    k = make_kernel()
    proc = k.gcpu.current
    k.tlb_miss(CPU, proc)
    k.port.calls.clear()
    k.port.fault_ea = 0x2000_1FFC
    k.tlb_miss(CPU, proc)
    assert ("work", 2500) not in k.port.calls
    assert [c[1] for c in k.port.calls if c[0] == "tlbwe"] == [1, 1, 1]
    assert k.os.page_faults == 1


def test_batched_tlbwe_writes_the_entry_in_one_trap():
    k = make_kernel(batch=True)
    k.tlb_miss(CPU, k.gcpu.current)
    writes = [c for c in k.port.calls if c[0] == "tlbwe"]
    assert len(writes) == 1 and writes[0][2] is None


def test_the_round_robin_never_reaches_the_pinned_entries():
    # entries 61..63 are pinned (devices, kernel): the victim wraps after 60
    k = make_kernel()
    proc = k.gcpu.current
    victims = []
    for n in range(GUEST_HWATER + 3):
        k.port.fault_ea = 0x1000_0000 + n * 4096
        k.port.calls.clear()
        k.tlb_miss(CPU, proc)
        victims.append(k.port.calls[-2][1])
    assert victims == list(range(GUEST_HWATER + 1)) + [0, 1]


def test_a_miss_on_a_kernel_address_is_an_internal_error():
    k = make_kernel(port=FakePort(fault_ea=KERNEL_BASE + 0x40))
    with pytest.raises(EmuError, match="kernel address"):
        k.tlb_miss(CPU, k.gcpu.current)


def test_guest_memory_exhaustion_says_what_to_raise():
    k = make_kernel(memory_pages=KERNEL_RESERVED_GFNS + 1)
    proc = k.gcpu.current
    k.tlb_miss(CPU, proc)
    k.port.fault_ea += 4096
    with pytest.raises(ConfigError, match="memory_mb"):
        k.tlb_miss(CPU, proc)


# -- timer, system call, switch, halt --------------------------------------------------------

def test_timer_tick_within_the_slice_returns_to_the_same_process():
    k = make_kernel()
    now = 400                                      # the decrementer fired at 400 (period 400)
    k.timer_tick(CPU, now)
    assert k.port.calls == [("deliver", "DEC", False), ("work", 1400), ("rfi", None)]
    assert k.next_timer == 800


def test_timer_tick_after_the_slice_switches_before_the_rfi():
    k = make_kernel()
    first, second = k.gcpu.processes
    k.timer_tick(CPU, 850)                         # slice 800 cycles used up; two periods late
    assert k.port.calls == [("deliver", "DEC", False), ("work", 1400), ("work", 1500),
                            ("mtspr_pid", second.pid), ("rfi", None)]
    assert k.gcpu.current is second and k.slice_start == 850
    assert k.next_timer == 1200                    # the next period boundary after now


def test_a_system_call_runs_the_kernel_in_supervisor_mode():
    k = make_kernel()
    k.syscall(CPU, k.gcpu.current)
    names = [c[0] for c in k.port.calls]
    assert names == ["deliver", "work", "run_kernel", "rfi"]
    assert k.port.calls[0] == ("deliver", "SYSCALL", True)
    assert k.port.calls[-1] == ("rfi", True)
    _, ea, kind = k.port.calls[2]
    assert len(ea) == KERNEL_ACCESSES_PER_SYSCALL and set(kind) == {1}     # data loads
    assert ((ea >= KERNEL_DATA_EA) & (ea < KERNEL_DATA_EA + KERNEL_DATA_PAGES * 4096)).all()


def test_pid_rollover_flushes_only_the_valid_unpinned_entries():
    # processes 0 and 255 share PID 1 (PIDs 1..255): switching to the second
    # after the first used it invalidates the guest TLB below hwater
    port = FakePort(valid={0, 5, 60, 61, 62, 63})
    k = make_kernel(nproc=256, port=port)
    p0, p255 = k.gcpu.processes[0], k.gcpu.processes[255]
    assert p0.pid == p255.pid == 1
    k.switch_process(CPU, p255, 7)
    assert port.calls == [("work", 1500), ("work", 292),
                          ("tlbwe", 0, PAGEID, None), ("tlbwe", 5, PAGEID, None),
                          ("tlbwe", 60, PAGEID, None), ("mtspr_pid", 1)]
    assert k.gcpu.pid_owner[1] == 255 and k.gcpu.current is p255 and k.slice_start == 7
    port.calls.clear()
    k.switch_process(CPU, k.gcpu.processes[1], 9)      # PID 2, never used: no flush
    assert port.calls == [("work", 1500), ("mtspr_pid", 2)]


def test_halt_waits_for_the_earliest_of_the_timer_and_a_wake():
    k = make_kernel()
    a, b = k.gcpu.processes
    a.sleep_until, b.sleep_until = 300, 250
    assert k.schedule(CPU, 100) == (True, "after")
    assert k.port.calls == [("wait", 250)] and k.gcpu.current is None
    a.sleep_until = b.sleep_until = 5000
    k.port.calls.clear()
    k.halt(CPU, 100)
    assert k.port.calls == [("wait", k.next_timer)]


def test_schedule_switches_to_the_next_runnable_process():
    k = make_kernel()
    a, b = k.gcpu.processes
    k.sleep(a, 100)                                 # 3 us at 10 cycles/us
    assert a.sleep_until == 130
    assert k.schedule(CPU, 110) is None
    assert k.gcpu.current is b and k.port.calls == [("work", 1500), ("mtspr_pid", b.pid)]


def test_handlers_report_to_the_ports_observer():
    class Watch:
        def __init__(self):
            self.seen = []

        def around(self, event, thread, call, *args):
            self.seen.append((event, thread))
            return call(*args)

    port = FakePort()
    port.observer = Watch()
    k = make_kernel(port=port)
    k.timer_tick(CPU, 850)
    assert port.observer.seen == [("timer_tick", port), ("switch_process", port)]


def test_the_guest_never_imports_kvm():
    code = ("import sys, emu.guest; "
            "print(sorted(m for m in sys.modules if m.startswith('emu.kvm')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).parent.parent)
    assert out.stdout.strip() == "[]"

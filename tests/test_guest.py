"""The guest OS and its handlers (emu.guest), trapping through a recording port.

Each handler is run against a port that records every call and tallies the
exits they stand for, so the trap sequence a handler makes is checked
exactly.  The expected tallies are counted from head_44x.S @026477c1 and
entry_32.S (emu/guest/traps44x.py lists the instructions; tests/test_traps44x.py
sums them): a delivered miss is 17 exits with the delivering one, a system
call 18, a tick from user mode 20 traps and no exit of its own.  The C-code
traps (``guest_c_traps_*``) are 0 here unless a test sets them.
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from emu.costs import CostTable
from emu.errors import ConfigError, EmuError
from emu.guest.footprint import Footprint
from emu.guest.kernel import FILL_ATTR, FILL_ATTR_NO_EXEC, GuestKernel
from emu.guest.os import (GUEST_HWATER, KERNEL_BASE, KERNEL_RESERVED_GFNS, GuestCPU, GuestOS,
                          GuestProcess)
from emu.hw.ppc440 import ATTRIB, PAGEID, SR, SW, SX, UR, UW, UX, XLAT

C_TRAPS_OFF = {f"guest_c_traps_{e}_{i}": 0 for e in ("tick", "syscall", "fault")
               for i in ("mfmsr", "wrtee")}
COSTS = CostTable(dict(C_TRAPS_OFF, guest_timer_period_us=40, guest_timeslice_us=80))
CYCLES_PER_US = 10
CPU = object()                         # the physical CPU: the guest only hands it back


def us(value) -> int:
    return int(round(float(value) * CYCLES_PER_US))


class Stream:
    sleep_us = 3.0


class FakePort:
    """Records every call the guest makes, tallies the exits they stand for, and
    answers what a vCPU would.  ``clock`` is the time ``now`` returns."""

    observer = None

    def __init__(self, fault_ea: int = 0x2000_1234, fetch: bool = False):
        self.calls: list[tuple] = []
        self.exits: Counter = Counter()
        self.fault_ea, self.fetch = fault_ea, fetch
        self.clock = 0
        self.dec = None

    def now(self, cpu):
        return self.clock

    def guest_work(self, cpu, cycles):
        assert cpu is CPU
        self.calls.append(("work", cycles))

    def run_kernel(self, cpu, ea, kind):
        assert (ea >= KERNEL_BASE).all() and len(ea) == len(kind)
        self.calls.append(("run_kernel", len(ea)))

    def fault(self):
        return self.fault_ea, self.fetch

    def deliver(self, cpu, category):
        self.calls.append(("deliver", category))
        self.exits[category] += 1

    def priv_switch(self, cpu, usermode):
        raise AssertionError("the guest switches privilege through deliver and rfi")

    def traps(self, cpu, seq):
        self.calls.append(("traps", seq.name))
        self.exits.update(seq.counts)

    def rfi(self, cpu, usermode):
        self.calls.append(("rfi", usermode))
        self.exits["EMUL_RFI"] += 1

    def tlbwe(self, cpu, index, word, entry, attr=None):
        self.calls.append(("tlbwe", index, word, entry) + (() if attr is None else (attr,)))
        self.exits["EMUL_TLBWE"] += 1

    def tlbsx(self, cpu, ea):
        self.calls.append(("tlbsx", ea))
        self.exits["EMUL_TLBSX"] += 1
        return 7

    def tlb_entry(self, index):
        return (self.fault_ea >> 12 << 12, 12, 1, 0, 0x40_5000)

    def tlb_valid(self, index):
        return False

    def mtspr_pid(self, cpu, pid):
        self.calls.append(("mtspr_pid", pid))
        self.exits["EMUL_MTSPR"] += 1

    def set_dec(self, cpu, cycles):
        self.dec = cycles

    def wait(self, cpu, until):
        self.calls.append(("wait", until))
        self.exits["EMUL_WAIT"] += 1
        return True, "after"


def make_kernel(nproc: int = 2, batch: bool = False, port=None, memory_pages: int = 4096,
                costs=COSTS):
    procs = [GuestProcess(i, Stream(), 64) for i in range(nproc)]
    fp = Footprint(costs)
    os = GuestOS(memory_pages, procs, 1, fp.static_gfns, latency=us(600))
    kernel = GuestKernel(os, os.cpus[0], costs, us, batch, fp)
    kernel.attach(port or FakePort())
    return kernel


def names(port) -> list:
    return [c[0] if c[0] not in ("traps", "deliver", "rfi") else c for c in port.calls]


# -- the TLB miss handler -------------------------------------------------------------------

def test_a_store_without_uw_makes_the_linux_44x_data_storage_sequence():
    # head_44x.S @026477c1, DataStorage for a store to a user page whose PTE is
    # writable: the saves, ESR, DEAR, the PGD and PID into MMUCR, the PTE made
    # dirty, tlbsx, tlbwe ATTRIB with UW = RW & USER (and SX = HWEXEC, UX =
    # HWEXEC & USER, clear for a page never executed), the restores, rfi
    k = make_kernel()
    proc = k.gcpu.current
    k.os.fault(proc, 0x2000_1234)
    k.data_storage(CPU, proc)
    entry = (0x2000_1000, 12, 1, 0, 0x40_5000)
    assert k.port.calls == [
        ("deliver", "DSI"),                       # KVM queues the DSI; PR 1 -> 0
        ("traps", "DataStorage"),                 # SPRG saves, ESR, DEAR, SPRG3, MMUCR, PID, MMUCR
        ("work", 33 - 10), ("run_kernel", 10),    # native part; 1 fetch + 9 data accesses
        ("tlbsx", 0x2000_1234),
        ("tlbwe", 7, ATTRIB, entry, SR | SW | UR | UW),
        ("traps", "finish_tlb_load restore"),     # mfspr SPRG1, SPRG0
        ("rfi", True),                            # PR 0 -> 1
    ]
    # the rewrite of a page the exec fault has made executable keeps SX and UX
    k2 = make_kernel()
    k2.os.fault(k2.gcpu.current, 0x2000_1234)
    k2.os.set_executable(k2.gcpu.current, 0x2000_1234)
    k2.data_storage(CPU, k2.gcpu.current)
    assert ("tlbwe", 7, ATTRIB, entry, SR | SW | SX | UR | UX | UW) in k2.port.calls
    # 16 emulated instructions + the DSI exit = 17
    assert k.port.exits == {"DSI": 1, "EMULINST": 5, "EMUL_MTSPR": 4, "EMUL_MFSPR": 4,
                            "EMUL_TLBSX": 1, "EMUL_TLBWE": 1, "EMUL_RFI": 1}
    assert sum(k.port.exits.values()) == 17 and k.user
    # finish_tlb_load's permissions have no UW: the store that follows a fill lands here
    assert FILL_ATTR == SR | SW | SX | UR | UX


def test_a_delivered_miss_makes_the_linux_44x_trap_sequence():
    k = make_kernel()
    proc = k.gcpu.current
    gfn = k.os.fault(proc, 0x2000_1234)          # the page is present
    k.tlb_miss(CPU, proc)
    entry = (0x2000_1000, 12, proc.pid, 0, gfn << 12)
    # a PTE fresh from the fault has no _PAGE_HWEXEC: SX and UX stay clear
    no_x = FILL_ATTR_NO_EXEC
    assert k.port.calls == [
        ("deliver", "DTLBREAL"),                  # the fast path's exit; PR 1 -> 0
        ("traps", "DataTLBError"),                # SPRG saves, DEAR, SPRG3, MMUCR, PID, MMUCR
        ("work", 44 - 10), ("run_kernel", 10),    # native part; 1 fetch + 9 data accesses
        ("tlbwe", 0, XLAT, entry, no_x), ("tlbwe", 0, PAGEID, entry, no_x),
        ("tlbwe", 0, ATTRIB, entry, no_x),
        ("traps", "finish_tlb_load restore"),     # mfspr SPRG1, SPRG0
        ("rfi", True),                            # PR 0 -> 1
    ]
    assert no_x == SR | SW | UR                   # finish_tlb_load: SX, UX = HWEXEC (& USER)
    # head_44x.S @026477c1: 16 emulated + the delivering exit = 17
    assert k.port.exits == {"DTLBREAL": 1, "EMULINST": 5, "EMUL_MTSPR": 4, "EMUL_MFSPR": 3,
                            "EMUL_TLBWE": 3, "EMUL_RFI": 1}
    assert proc.guest_tlb_misses == 1 and k.user


def test_a_fetch_without_ux_makes_the_exec_fault_sequence():
    # head_booke.h INSTRUCTION_STORAGE_EXCEPTION (prolog, ESR, transfer), then
    # do_page_fault's exec branch: the PTE is present, so it sets HWEXEC and
    # invalidates the entry with _tlbie (mfspr MMUCR, mfmsr, wrteei 0, mtspr
    # MMUCR, tlbsx, tlbwe PAGEID, wrtee), then ret_from_except
    k = make_kernel(port=FakePort(fetch=True))
    proc = k.gcpu.current
    k.os.fault(proc, 0x2000_1234)
    assert not k.os.executable(proc, 0x2000_1234)
    k.inst_storage(CPU, proc)
    assert names(k.port)[:4] == [("deliver", "ISI"), ("traps", "InstructionStorage (no UX)"),
                                 "work", "run_kernel"]
    assert k.port.calls[4:] == [
        ("traps", "_tlbie"),
        ("tlbsx", 0x2000_1234),
        ("tlbwe", 7, PAGEID, None),               # V clear: the entry goes
        ("traps", "_tlbie (done)"),
        ("traps", "ret_from_except + restore"),   # MTMSRD, SRR0, SRR1
        ("rfi", True),
    ]
    # 14 + 4 + tlbsx + tlbwe + 1 + 3 + rfi = 25 emulated instructions, and the ISI
    # exit.  EMULINST: the SPRG0-3/SRR0-1 moves, 8 in the prolog, 3 in the
    # transfer, 2 in the restore; MTSPR: SPRG4W, MMUCR; MFSPR: ESR, MMUCR
    assert k.port.exits == {"ISI": 1, "EMULINST": 13, "EMUL_MTSPR": 2, "EMUL_MFSPR": 2,
                            "EMUL_MFMSR": 1, "EMUL_WRTEE": 2, "EMUL_MTMSR": 1,
                            "EMUL_TLBSX": 1, "EMUL_TLBWE": 1, "EMUL_RFI": 2}
    assert sum(k.port.exits.values()) == 26 and k.user
    assert k.os.executable(proc, 0x2000_1234) and k.os.exec_faults == 1
    # the fetch misses again, and now the fill writes SX and UX
    k.port.calls.clear()
    k.tlb_miss(CPU, proc)
    assert [c[4:] for c in k.port.calls if c[0] == "tlbwe"] == [()] * 3     # FILL_ATTR
    # a new address space starts with no HWEXEC anywhere
    k.os.replace(proc)
    assert not proc.hwexec


def test_an_instruction_miss_reads_srr0():
    k = make_kernel(port=FakePort(fetch=True))
    proc = k.gcpu.current
    k.os.fault(proc, 0x2000_1234)
    k.tlb_miss(CPU, proc)
    assert k.port.exits == {"ITLBREAL": 1, "EMULINST": 6, "EMUL_MTSPR": 4, "EMUL_MFSPR": 2,
                            "EMUL_TLBWE": 3, "EMUL_RFI": 1}


def test_a_demand_fault_bails_out_and_the_retry_fills():
    k = make_kernel()
    proc = k.gcpu.current
    k.tlb_miss(CPU, proc)                         # PTE absent: first pass, no fill
    assert not any(c[0] == "tlbwe" for c in k.port.calls)
    gfn = KERNEL_RESERVED_GFNS + 1                # its PTE page took the first free frame
    assert proc.page_table == {0x20001: gfn} and proc.page_faults == k.os.page_faults == 1
    assert proc.pte_pages == {0x2000_1234 >> 21: KERNEL_RESERVED_GFNS}
    assert k.port.exits == {"DTLBREAL": 1, "EMULINST": 18, "EMUL_MTSPR": 5, "EMUL_MFSPR": 5,
                            "EMUL_MTMSR": 1, "EMUL_RFI": 2}    # 32 (traps44x C)
    k.tlb_miss(CPU, proc)                         # the access misses again: 17 more
    assert sum(k.port.exits.values()) == 32 + 17 and proc.guest_tlb_misses == 2
    assert k.os.page_faults == 1


def test_the_default_c_traps_of_a_fault():
    k = make_kernel(costs=CostTable())            # guest_c_traps_fault_*: 1 mfmsr, 2 wrtee
    k.tlb_miss(CPU, k.gcpu.current)
    assert k.port.exits["EMUL_MFMSR"] == 1 and k.port.exits["EMUL_WRTEE"] == 2


def test_batched_tlbwe_writes_the_entry_in_one_trap():
    k = make_kernel(batch=True)
    k.os.fault(k.gcpu.current, 0x2000_1234)
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
        k.os.fault(proc, k.port.fault_ea)
        k.port.calls.clear()
        k.tlb_miss(CPU, proc)
        victims.append([c[1] for c in k.port.calls if c[0] == "tlbwe"][0])
    assert victims == list(range(GUEST_HWATER + 1)) + [0, 1]


def test_a_miss_on_a_kernel_address_is_an_internal_error():
    k = make_kernel(port=FakePort(fault_ea=KERNEL_BASE + 0x40))
    with pytest.raises(EmuError, match="kernel address"):
        k.tlb_miss(CPU, k.gcpu.current)


def test_guest_memory_exhaustion_says_what_to_raise():
    k = make_kernel(memory_pages=KERNEL_RESERVED_GFNS + 2)     # a PTE page and one frame
    proc = k.gcpu.current
    k.tlb_miss(CPU, proc)
    k.port.fault_ea += 4096
    with pytest.raises(ConfigError, match="memory_mb"):
        k.tlb_miss(CPU, proc)


# -- timer, system call, switch, idle --------------------------------------------------------

def test_timer_tick_within_the_slice_returns_to_the_same_process():
    k = make_kernel()
    k.port.clock = 430                             # the tick handler runs at 430
    k.timer_tick(CPU, 400)                         # delivered at 400 (period 400)
    assert names(k.port) == [("traps", "Decrementer"), "work", "run_kernel",
                             ("traps", "timer softirq + ret_from_except"),
                             ("traps", "restore"), ("rfi", True)]
    # traps44x E from user: 20 traps, no exit of its own (the host tick's DEC carries it)
    assert k.port.exits == {"EMULINST": 15, "EMUL_MTSPR": 2, "EMUL_MTMSR": 1, "EMUL_RFI": 2}
    assert k.next_timer == 800 and k.port.dec == 800 - 430    # mtspr DEC: to the next tick


def test_timer_tick_after_the_slice_preempts_for_the_process_that_ran_less():
    k = make_kernel()
    first, second = k.gcpu.processes
    k.gcpu.account(0)
    k.timer_tick(CPU, 850)                         # slice 800 cycles used up
    assert ("traps", "do_resched") in k.port.calls and ("traps", "recheck") in k.port.calls
    assert ("mtspr_pid", second.pid) in k.port.calls
    assert k.gcpu.current is second and k.slice_start == 850
    # 20 + 2 mtmsr + the switch's 8 (wrteei, mtspr PID, mfmsr, wrteei, mfmsr,
    # mtspr SPRG3, wrtee, wrteei)
    assert sum(k.port.exits.values()) == 30
    assert first.vruntime == 850


def test_a_tick_in_the_kernel_does_not_return_to_user_mode():
    k = make_kernel()
    k.user = False                                 # e.g. idle
    k.timer_tick(CPU, 400)
    assert ("rfi", True) not in k.port.calls
    assert k.port.exits == {"EMULINST": 14, "EMUL_MTSPR": 2, "EMUL_MTMSR": 1, "EMUL_RFI": 2}


def test_a_system_call_runs_the_kernel_in_supervisor_mode():
    k = make_kernel()
    k.syscall(CPU, k.gcpu.current)
    assert names(k.port) == [("deliver", "SYSCALL"), ("traps", "SystemCall"), "work",
                             "run_kernel", ("traps", "system call"),
                             ("traps", "ret_from_syscall"), ("rfi", True)]
    assert k.port.exits == {"SYSCALL": 1, "EMULINST": 13, "EMUL_MTSPR": 1, "EMUL_MTMSR": 1,
                            "EMUL_RFI": 2}        # 18 (traps44x D)
    k2 = make_kernel(costs=CostTable())            # the default C traps: + mfmsr + 2 wrtee
    k2.syscall(CPU, k2.gcpu.current)
    assert sum(k2.port.exits.values()) == 21


def test_pid_rollover_flushes_every_index_to_hwater():
    # processes 0 and 255 share PID 1 (PIDs 1..255): switching to the second
    # after the first used it runs _tlbia: one trapping tlbwe per index 0..hwater
    k = make_kernel(nproc=256)
    p0, p255 = k.gcpu.processes[0], k.gcpu.processes[255]
    assert p0.pid == p255.pid == 1
    k.switch_process(CPU, p255, 7)
    flush = [c for c in k.port.calls if c[0] == "tlbwe"]
    assert [c[1] for c in flush] == list(range(GUEST_HWATER + 1))
    assert all(c[2] == PAGEID and c[3] is None for c in flush)
    assert ("mtspr_pid", 1) in k.port.calls
    assert k.gcpu.pid_owner[1] == 255 and k.gcpu.current is p255 and k.slice_start == 7
    k.port.calls.clear()
    k.switch_process(CPU, k.gcpu.processes[1], 9)      # PID 2, never used: no flush
    assert [c for c in k.port.calls if c[0] in ("tlbwe", "mtspr_pid")] == [("mtspr_pid", 2)]


def test_nothing_runnable_switches_to_idle_and_waits_for_the_first_wake():
    k = make_kernel()
    a, b = k.gcpu.processes
    a.sleep_until, b.sleep_until = 300, 250
    k.user = False                                 # a blocks in the kernel
    assert k.schedule(CPU, 100) == (True, "after")
    # the switch to the idle task (no switch_mm), then cpu_idle / ppc44x_idle
    assert names(k.port)[-2:] == [("traps", "ppc44x_idle"), "wait"]
    assert k.port.calls[-1] == ("wait", 250) and k.gcpu.current is None and k.idle
    assert k.port.exits == {"EMUL_WRTEE": 5, "EMUL_MFMSR": 3, "EMULINST": 1, "EMUL_WAIT": 1}
    # woken: leave the idle loop, switch to b (its PID), return to user mode
    k.port.clock = 260
    assert k.schedule(CPU, 260) is None
    assert ("traps", "ppc44x_idle (woken)") in k.port.calls and k.port.calls[-1] == ("rfi", True)
    assert k.gcpu.current is b and k.user and not k.idle


def test_a_sleep_is_a_blocking_system_call():
    k = make_kernel()
    a, b = k.gcpu.processes
    k.sleep(CPU, a, 100)                           # 3 us at 10 cycles/us
    assert a.sleep_until == 130 and not k.user and k.port.exits["SYSCALL"] == 1
    assert k.user_process() is None
    assert k.schedule(CPU, 110) is None
    assert k.gcpu.current is b and ("mtspr_pid", b.pid) in k.port.calls


def test_the_scheduler_runs_the_least_virtual_runtime_first():
    procs = [GuestProcess(i, Stream(), 64) for i in range(3)]
    g = GuestCPU(0, procs, latency=600)
    procs[0].vruntime, procs[1].vruntime, procs[2].vruntime = 500, 100, 100
    g.exec_start = 0
    assert g.pick_next(0) is procs[1]              # the least; the lower index on a tie
    # a long sleeper is placed at min_vruntime - latency / 2, not at its old vruntime
    procs[2].vruntime, procs[2].sleep_until = 0, 50
    procs[1].vruntime = 1000
    g.current = procs[0]
    g.min_vruntime = 500
    assert g.pick_next(60) is procs[2] and procs[2].vruntime == 500 - 300


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


def test_footprint_accesses_stay_in_the_kernel_mapping():
    k = make_kernel()
    proc = k.gcpu.current
    gfn = k.os.fault(proc, 0x2000_1234)
    for ea, kind in (k.fp.miss(proc, 0x2000_1234), k.fp.syscall(proc), k.fp.tick(None),
                     k.fp.switch(proc, None), k.fp.fault(proc, 0x2000_1234, gfn)):
        assert (ea >= KERNEL_BASE).all() and ea.dtype == np.uint32 and kind.dtype == np.uint8
    # the miss handler's 9 data accesses (head_44x.S) and one fetch of the vectors
    assert len(k.fp.miss(proc, 0x2000_1234)[0]) == 10
    # a system call: vectors + entry_32.S + 3 service pages fetched, 40 frame
    # accesses on the kernel stack, 24 over the service's data and the task
    assert len(k.fp.syscall(proc)[0]) == 1 + 1 + 3 + 40 + 24

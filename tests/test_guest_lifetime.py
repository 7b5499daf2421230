"""Process lifetimes: a guest process that exits and is replaced, as a boot's programs do.

The workload key ``lifetime_accesses``: after that many accesses the process
exits (``exit_group``, ``flush_tlb_mm``), and a fresh one (new PID, empty
page table) takes its place through fork and exec and demand-faults its
pages again.  Also the host loop's handling of a vCPU whose wait ends as it
blocks, which the boot-like guest's I/O waits brought out.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

from emu.costs import CostTable
from emu.errors import ConfigError
from emu.guest import traps44x as T
from emu.guest.footprint import Footprint
from emu.guest.kernel import GuestKernel
from emu.guest.os import GUEST_HWATER, GuestOS, GuestProcess
from emu.params import scenario_from_dict
from emu.run.scenario import run

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_guest import CPU, FakePort, Stream, us  # noqa: E402


def lifetime_kernel(kernel_cls=GuestKernel):
    """A guest kernel of class ``kernel_cls`` on a FakePort, over two processes
    that live 100 accesses: (kernel, its GuestOS, the cost table)."""
    costs = CostTable()
    procs = [GuestProcess(i, Stream(), 64, lifetime=100) for i in range(2)]
    fp = Footprint(costs)
    guest = GuestOS(4096, procs, 1, fp.static_gfns, latency=us(600))
    k = kernel_cls(guest, guest.cpus[0], costs, us, False, fp)
    k.attach(FakePort())
    return k, guest, costs


def test_process_exit_flushes_and_a_fresh_process_takes_the_slot():
    k, guest, costs = lifetime_kernel()
    p = guest.processes[0]
    for ea in (0x1000_0000, 0x1000_1000, 0x1040_0000):   # two PTE pages, three frames
        guest.fault(p, ea)
    frames = sorted(list(p.page_table.values()) + list(p.pte_pages.values()))
    p.advance(p.pos + 100)
    assert p.exiting
    k.process_exit(CPU, p, 0)
    # exit_group, the switch to the new process, fork, exec
    assert p.pid == 3 and guest.next_pid == 4 and p.starts == 1
    assert p.page_table == {} and p.pte_pages == {} and p.life_left == 100 and not p.exiting
    assert ("mtspr_pid", 3) in k.port.calls and k.user
    # three _tlbia (flush_tlb_mm at exit, at the end of fork's dup_mmap, the old mm
    # at exec): every index 0..hwater, three times
    flush = [c[1] for c in k.port.calls if c[0] == "tlbwe"]
    assert flush == 3 * list(range(GUEST_HWATER + 1))
    # the order: exit_group and its flush, the switch; fork and its flush; exec and its
    seq = [c if c[0] != "tlbwe" else ("tlbwe",) for c in k.port.calls
           if c[0] in ("deliver", "tlbwe", "mtspr_pid", "rfi")]
    seq = [c for i, c in enumerate(seq) if c != ("tlbwe",) or seq[i - 1] != ("tlbwe",)]
    assert seq == [("deliver", "SYSCALL"), ("tlbwe",), ("mtspr_pid", 3), ("rfi", True),
                   ("deliver", "SYSCALL"), ("tlbwe",), ("rfi", True),      # fork
                   ("deliver", "SYSCALL"), ("tlbwe",), ("rfi", True)]      # exec
    assert k.port.exits["SYSCALL"] == 3
    assert ("work", costs["guest_process_spawn"]) in k.port.calls
    # the freed frames are reused, the most recently freed first
    assert sorted(guest.alloc_frame() for _ in frames) == frames
    # a system call: sc, SystemCall, the default C traps (mfmsr, 2 wrtee), the return and rfi;
    # exit_group never returns
    entry = 1 + len(T.SYSCALL_ENTRY.cats) + 3
    syscall = entry + len(T.SYSCALL_EXIT.cats) + 1
    assert syscall == 21
    assert sum(k.port.exits.values()) == (
        entry + 2 * syscall + 3 * (GUEST_HWATER + 1)             # 3 system calls, 3 flushes
        + len(T.SWITCH_LOCK.cats) + 1 + len(T.SWITCH_TAIL.cats)
        + len((T.RET_DISABLE_EE + T.RET_RESTORE).cats) + 1)   # the switch's return


def test_a_new_address_space_takes_the_next_context_no_live_process_holds():
    # get_mmu_context (include/asm-ppc/mmu_context.h, 4xx): from next_mmu_context on,
    # the first context not in use; one process lives on with PID 5 while the
    # other's successors count up to 255 and wrap past it
    costs = CostTable()
    procs = [GuestProcess(i, Stream(), 64, lifetime=100) for i in range(2)]
    guest = GuestOS(4096, procs, 1, Footprint(costs).static_gfns, latency=us(600))
    long_lived, short = procs
    long_lived.pid = 5
    seen = []
    for _ in range(256):
        guest.replace(short)
        seen.append(short.pid)
    assert seen[:3] == [3, 4, 6]                      # 5 is held: skipped
    assert 5 not in seen and seen[251:254] == [255, 1, 2]
    assert seen[254:] == [3, 4]
    assert len(set(seen[:254])) == 254                # every other context, once each round


def test_with_every_context_held_a_switch_flushes_as_a_steal_does():
    # 256 live processes, 255 contexts: two share PID 1, and a switch between them
    # flushes (steal_context: flush_tlb_mm of the owner); a replacement finds no
    # free context and takes next_pid
    costs = CostTable()
    procs = [GuestProcess(i, Stream(), 64, lifetime=100) for i in range(256)]
    guest = GuestOS(8192, procs, 1, Footprint(costs).static_gfns, latency=us(600))
    assert procs[0].pid == procs[255].pid == 1
    nxt = guest.next_pid
    assert guest.free_pid(procs[7]) == procs[7].pid   # its own context is free to it
    procs[7].pid = 1                                   # ... unless it has none
    assert guest.free_pid(procs[7]) == 8 and nxt == 2


def _sweep_run(chunk: int, backend: str) -> dict:
    # one process sweeping 8 data pages from 1 code page: each life faults 9 pages
    return run({
        "seed": 3, "duration_ms": 1000,
        "vm": [{"process": [{"workload": {"kind": "sweep", "pages": 8, "code_pages": 1,
                                          "lifetime_accesses": 5000}}]}],
        "sim": {"guest_accesses": 22_000, "chunk": chunk, "backend": backend},
    }).summary


def test_each_life_demand_faults_its_pages_again_whatever_the_chunk_and_backend():
    lives = math.ceil(22_000 / 5000)
    s = _sweep_run(4096, "cython")
    assert s["guest_page_faults"] == 9 * lives
    assert s["processes"][0]["pid"] == lives            # PIDs 1, 2, ... one per life
    for chunk, backend in ((1000, "cython"), (65536, "reference")):
        other = _sweep_run(chunk, backend)
        assert other["time_to_work_cycles"] == s["time_to_work_cycles"]
        assert other["exits"] == s["exits"]


def test_a_host_task_cannot_have_a_lifetime():
    with pytest.raises(ConfigError,
                       match=r"^host_task\.0\.workload\.lifetime_accesses: only guest"):
        scenario_from_dict({"vm": [{"process": [{}]}],
                            "host_task": [{"workload": {"lifetime_accesses": 10}}]})


def test_a_wait_that_ends_as_the_vcpu_blocks_is_not_lost():
    # Three processes waiting for I/O in turn: the guest's wait sometimes ends
    # (its decrementer's tick is already due) at the very cycle the vCPU
    # blocks, and a host tick lands there too.  The wake-up must not be lost:
    # the host loop marks the vCPU asleep before anything can wake it, so no
    # EMUL_WAIT outlasts a sleep plus a host tick.  (It was lost after 144,112
    # accesses of this run, which then idled until duration_ms.)
    s = run({
        "seed": 1, "duration_ms": 1000,
        "kvm": {"strategy": "shadow-modified", "tid_scheme": "swap-pid", "handler": "c",
                "pfn_source": "gup"},
        "vm": [{"process": [{"count": 3, "workload": {
            "kind": "working-set", "pages": 12, "distribution": "zipf", "zipf_s": 1.2,
            "code_pages": 6, "inst_fraction": 0.35, "syscall_every": 2000,
            "sleep_every": 5000, "sleep_us": 3000, "mmio_every": 40000}}]}],
        "sim": {"guest_accesses": 150_000},
    }).summary
    wait = s["exits"]["EMUL_WAIT"]
    assert wait["count"] > 0
    assert wait["max_us"] <= 3000 + s["costs"]["host_timer_period_us"]

"""Host threads that run natively on the core: the base of host tasks and QEMU's I/O thread.

A native thread runs Linux's TLB miss handler on the hardware TLB it shares
with KVM (AS=0, its own host PID), so every page it touches can evict a
guest entry.  A host page is allocated on first touch (a host page fault).
QEMU's I/O thread is in :mod:`emu.qemu.iothread`.
"""

from __future__ import annotations

from emu.codes import CYCLES, STOP
from emu.host.sched import Thread
from emu.stats.counters import ctx_arrays, zero_counters

S = STOP


class HostThread(Thread):
    """A thread with its own address space and access stream, run natively."""

    kind = "host"
    category = "host_tasks"

    def __init__(self, machine, name: str, tid: int, cpu: int, ctx_id: int, host_pid: int,
                 stream):
        super().__init__(name, tid, cpu)
        self.machine = machine
        self.host = machine.host
        self.stream = stream
        self.chunk = machine.scenario.sim.chunk
        self.arrays = ctx_arrays(machine.hw_entries, 1, None, host_pt=True)
        self.ctx = machine.backend.Ctx(ctx_id, self.arrays, None, None, None, 0, 0, 0, 0, 1,
                                       host_pid)
        self.ctx.set_costs(machine.native_costs)
        self.ea = self.kind_arr = None
        self.pos = 0
        self.page_faults = 0

    def restart_counters(self) -> None:
        """Zero what this thread counts (the end of a warm-up)."""
        zero_counters(self.arrays)
        self.page_faults = 0

    def run_accesses(self, cpu, budget: int, limit: int | None = None):
        """Run the stream natively for up to ``budget`` cycles (or ``limit`` accesses).

        Returns the stop that ended it: 'budget', 'sleep' or 'done' (limit reached).
        """
        start = cpu.total()
        left = limit
        cat = CYCLES[self.category]
        while True:
            spent = cpu.total() - start
            if spent >= budget:
                return "budget"
            if self.ea is None or self.pos >= len(self.ea):
                self.ea, self.kind_arr = self.stream.take(self.chunk)
                self.pos = 0
            end = len(self.ea) if left is None else min(len(self.ea), self.pos + left)
            before = self.pos
            stop, pos, _ = self.ctx.run_native(cpu.virt, self.ea[:end], self.kind_arr[:end],
                                               self.pos, budget - spent, cat)
            self.pos = pos
            if left is not None:
                left -= pos - before
            if stop == S["host_fault"]:
                vpn = (int(self.ctx.stop_ea) >> 12) & 0xFFFFF
                self.arrays["host_pt"][vpn] = self.host.alloc_host_pfn()
                self.page_faults += 1
                cpu.charge(self.category, self.machine.costs["host_page_fault"])
            elif stop == S["sleep"]:
                self.pos += 1
                return "sleep"
            elif left is not None and left <= 0:
                return "done"


class HostTask(HostThread):
    """An ordinary host task: a CPU hog, or ``run_us`` on / ``sleep_us`` off."""

    def __init__(self, machine, spec, **kw):
        super().__init__(machine, **kw)
        self.run_cycles = machine.us(spec.run_us)
        self.sleep_cycles = machine.us(spec.sleep_us)
        self.ran_in_period = 0

    def run(self, cpu, budget: int):
        if self.run_cycles > 0:
            budget = min(budget, self.run_cycles - self.ran_in_period)
        start = cpu.total()
        stop = self.run_accesses(cpu, budget)
        used = cpu.total() - start
        self.ran_in_period += used
        sleep = 0
        if stop == "sleep":
            sleep = self.machine.us(self.stream.sleep_us)
        elif self.run_cycles > 0 and self.ran_in_period >= self.run_cycles:
            sleep = self.sleep_cycles
            self.ran_in_period = 0
        if sleep > 0 or stop == "sleep":
            host = self.host
            # ``after`` runs once the clock reaches the end of this run
            return True, lambda: host.wake_at(self, host.env.now + max(sleep, 1))
        return False, None

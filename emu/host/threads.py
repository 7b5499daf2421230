"""Host threads that run natively on the 440: ordinary host tasks and QEMU's I/O thread.

Both run Linux's 44x TLB miss handler on the hardware TLB they share with KVM
(AS=0, their own host PID), so every page they touch can evict a guest entry.
A host page is allocated on first touch (a host page fault).
"""

from __future__ import annotations

from emu.codes import CYCLES, STOP
from emu.host.sched import Thread

S = STOP


class HostThread(Thread):
    """A thread with its own address space and access stream, run natively."""

    kind = "host"
    category = "host_tasks"

    def __init__(self, machine, name: str, tid: int, cpu: int, ctx_id: int, host_pid: int,
                 stream):
        super().__init__(name, tid, cpu)
        from emu.kvm.vcpu import ctx_arrays
        self.machine = machine
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
        from emu.kvm.vcpu import zero_counters
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
                self.arrays["host_pt"][vpn] = self.machine.alloc_host_pfn()
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
            machine = self.machine
            # ``after`` runs once the clock reaches the end of this run
            return True, lambda: machine.wake_at(self, machine.env.now + max(sleep, 1))
        return False, None


class QemuThread(HostThread):
    """Userspace QEMU's I/O thread for one VM: serves MMIO exits (DESIGN.md §2 ``qemu``).

    * ``uart``: a register access — QEMU's handler runs and answers at once;
    * ``block``: QEMU submits the request, the device answers after
      ``block_latency_us``, QEMU completes it and wakes the vCPU.

    Serving a request runs QEMU's own accesses (its code and data) natively,
    so it pollutes the TLB like any host thread.
    """

    category = "qemu"
    ACCESSES_PER_REQUEST = 64     # estimate: QEMU's dispatch loop and device model

    def __init__(self, machine, **kw):
        super().__init__(machine, **kw)
        self.queue: list = []
        self.served = {"uart": 0, "block": 0}

    def submit(self, vcpu, device: str) -> None:
        """Called (at the exit's time) when a vCPU exits to QEMU."""
        self.queue.append([vcpu, device, "new"])
        self.machine.wake(self)

    def run(self, cpu, budget: int):
        c = self.machine.costs
        work = [r for r in self.queue if r[2] in ("new", "done")]
        if not work:
            return True, None                   # sleep until the next request or completion
        req = work[0]
        vcpu, device, stage = req
        machine = self.machine
        if stage == "new":
            cpu.charge("qemu", c["qemu_mmio_block" if device == "block" else "qemu_mmio_register"])
            self.run_accesses(cpu, 1 << 62, limit=self.ACCESSES_PER_REQUEST)
            self.served[device] += 1
            if device == "block":
                req[2] = "in-flight"
                latency = machine.us(c["block_latency_us"])

                def complete(req=req):
                    req[2] = "done"
                    machine.wake(self)
                return False, lambda: machine.call_at(machine.env.now + latency, complete)
        self.queue.remove(req)
        cpu.charge("qemu", c["qemu_wakeup"])
        return False, lambda: machine.wake(vcpu)

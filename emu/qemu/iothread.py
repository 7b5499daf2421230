"""Userspace QEMU's I/O thread: one per VM, run natively on the host.

A vCPU's MMIO exit blocks it and queues a request here; the thread wakes,
runs QEMU's device model (its own accesses pollute the hardware TLB like any
host thread's) and wakes the vCPU when the device has answered.
"""

from __future__ import annotations

from emu.host.threads import HostThread
from emu.qemu.devices import DEVICES, device_at


class QemuThread(HostThread):
    """Userspace QEMU's I/O thread for one VM: serves MMIO exits (docs/design.md §2 ``qemu``).

    Requests are served in order (:mod:`emu.qemu.devices`):

    * ``uart``: a register access — QEMU's handler runs and answers at once;
    * ``block``: QEMU submits the request, the device answers after
      ``block_latency_us``, QEMU completes it, raises the device's interrupt
      (KVM queues an external interrupt, delivered to the guest at its next
      entry: :meth:`emu.guest.kernel.GuestKernel.external_interrupt`) and
      wakes the vCPU.

    Serving a request runs QEMU's own accesses (its code and data) natively,
    so it pollutes the TLB like any host thread.
    """

    category = "qemu"
    ACCESSES_PER_REQUEST = 64     # estimate: QEMU's dispatch loop and device model

    def __init__(self, machine, **kw):
        super().__init__(machine, **kw)
        self.queue: list = []
        self.served = {d.name: 0 for d in DEVICES}

    def submit(self, vcpu, gpa: int) -> None:
        """Called (at the exit's time) when a vCPU exits to QEMU for an access to ``gpa``."""
        self.queue.append([vcpu, device_at(gpa), "new"])
        self.host.wake(self)

    def run(self, cpu, budget: int):
        c = self.machine.costs
        work = [r for r in self.queue if r[2] in ("new", "done")]
        if not work:
            return True, None                   # sleep until the next request or completion
        req = work[0]
        vcpu, device, stage = req
        host = self.host
        if stage == "new":
            cpu.charge("qemu", c[device.handler_cost])
            self.run_accesses(cpu, 1 << 62, limit=self.ACCESSES_PER_REQUEST)
            self.served[device.name] += 1
            if device.latency is not None:
                req[2] = "in-flight"
                latency = self.machine.us(c[device.latency])

                def complete(req=req):
                    req[2] = "done"
                    host.wake(self)
                return False, lambda: host.call_at(host.env.now + latency, complete)
        self.queue.remove(req)
        cpu.charge("qemu", c["qemu_wakeup"])
        if stage == "done":               # the device raises its interrupt line
            vcpu.external_interrupt()
        return False, lambda: host.wake(vcpu)

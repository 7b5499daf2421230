"""QEMU's I/O thread and its devices (emu.qemu), on a stand-in for the machine."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from emu import engine
from emu.codes import CYCLES
from emu.costs import CostTable
from emu.hw.cpu import PhysicalCPU
from emu.qemu.devices import BLOCK, BLOCK_GPA, UART, UART_GPA, device_at
from emu.qemu.iothread import QemuThread
from emu.workload.streams import AccessStream

CLOCK_MHZ = 100
QEMU_CTX = 1


class StandIn:
    """What the I/O thread asks of the machine: costs, the clock, waking, timers."""

    def __init__(self, impl):
        self.costs = CostTable({"block_latency_us": 50})
        self.native_costs = dict(self.costs.to_dict(), entry_base=0, entry_per_mod=0)
        self.backend = impl
        self.scenario = SimpleNamespace(sim=SimpleNamespace(chunk=256))
        self.hw_entries = 64
        self.env = SimpleNamespace(now=1000)
        self.woken: list = []
        self.timers: list = []
        self.next_pfn = 0x1_0000
        self.host = self                   # the host's services: waking, timers, frames

    def us(self, us) -> int:
        return int(round(float(us) * CLOCK_MHZ))

    def wake(self, thread) -> None:
        self.woken.append(thread)

    def call_at(self, when, fn) -> None:
        self.timers.append((when, fn))

    def alloc_host_pfn(self) -> int:
        self.next_pfn += 1
        return self.next_pfn


def qemu_on_a_cpu(name):
    impl = engine.get(name)
    m = StandIn(impl)
    ctx_host = np.zeros(2, np.uint8)
    ctx_host[QEMU_CTX] = 1
    cpu = PhysicalCPU.build(impl, 0, "440", 62, False, 3, ctx_host)
    stream = AccessStream({"kind": "working-set", "pages": 32, "inst_fraction": 0.3,
                           "code_pages": 16}, np.random.SeedSequence(7))
    q = QemuThread(m, name="qemu0", tid=1, cpu=0, ctx_id=QEMU_CTX, host_pid=1, stream=stream)
    return m, cpu, q


def qemu_cycles(cpu) -> int:
    return int(cpu.cycles[CYCLES["qemu"]])


def test_devices_sit_at_their_pages():
    assert device_at(UART_GPA + 0x300) is UART and device_at(BLOCK_GPA + 8) is BLOCK
    assert device_at(0x8000_0000) is UART          # any other non-RAM page: the UART
    assert UART.latency is None and BLOCK.latency == "block_latency_us"


class _Vcpu:
    """A vCPU as QEMU sees it: it can be woken and interrupted."""

    interrupts = 0

    def external_interrupt(self) -> None:
        self.interrupts += 1


@pytest.mark.parametrize("name", ["cython", "reference"])
def test_the_uart_answers_at_once_and_the_block_device_after_its_latency(name):
    vcpu = _Vcpu()
    # the UART: one run serves the access and wakes the vCPU
    m, cpu, q = qemu_on_a_cpu(name)
    q.submit(vcpu, UART_GPA)
    assert m.woken == [q]
    blocked, after = q.run(cpu, 10_000)
    uart = qemu_cycles(cpu)
    assert not blocked and q.queue == [] and q.served == {"uart": 1, "block": 0}
    after()
    assert m.woken == [q, vcpu]
    assert q.run(cpu, 10_000) == (True, None)       # nothing left: sleep
    # the block device: QEMU submits, the device answers later, QEMU wakes the vCPU
    m, cpu, q = qemu_on_a_cpu(name)
    q.submit(vcpu, BLOCK_GPA)
    blocked, after = q.run(cpu, 10_000)
    block = qemu_cycles(cpu)
    assert not blocked and m.woken == [q]
    c = m.costs
    # same accesses (same stream, fresh TLB): only the handler rows differ, and
    # the wake-up is not charged yet
    assert block - uart == c["qemu_mmio_block"] - c["qemu_mmio_register"] - c["qemu_wakeup"]
    after()
    (when, complete), = m.timers
    assert when == 1000 + 50 * CLOCK_MHZ
    assert q.run(cpu, 10_000) == (True, None)       # in flight: nothing to do
    complete()
    assert m.woken == [q, q]
    blocked, after = q.run(cpu, 10_000)
    assert qemu_cycles(cpu) - block == c["qemu_wakeup"] and q.queue == []
    after()
    assert m.woken[-1] is vcpu
    # the block device's completion raised its interrupt; the UART's answer did not
    assert vcpu.interrupts == 1


@pytest.mark.parametrize("device,cpus", [("uart", 1), ("uart", 2), ("block", 1)])
def test_an_mmio_exit_lasts_until_the_entry_and_has_one_entry(device, cpus):
    """timing.c @73e75b41 charges an exit from its timebase read to the next
    entry's: an MMIO exit holds QEMU's handling (and, in emu's QEMU, the wait
    for the device).  KVM_RUN enters the guest once after QEMU answered, so a
    shadow design's entry work runs once per exit: every entry that ran it
    ended an exit, but the first entry of each vCPU and the one a vCPU still
    in an exit at the end never made."""
    from emu.run import run
    from emu.study.studies.mmio_heavy import make
    r = run(make(device, cpus, "shadow", 2000, 4), overrides=["kvm.handler=c"])
    s = r.summary
    costs = s["costs"]
    exits = s["exits"]
    begun = exits["TIMEINGUEST"]["count"]
    ended = sum(e["count"] for c, e in exits.items() if c != "TIMEINGUEST")
    assert exits["MMIO"]["count"] > 0 and 0 <= begun - ended <= 1
    assert s["fastpath_profile"]["entry_restore"]["count"] == ended + 1
    if device == "uart":                        # QEMU answers at once; no interrupt
        assert exits["MMIO"]["min"] > costs["qemu_mmio_register"]
    else:
        # a request's exit waits for the device; the completion's interrupt reads the
        # virtio ISR, an MMIO exit of QEMU's register handling alone
        assert exits["MMIO"]["max"] > costs["block_latency_us"] * costs["clock_mhz"]
        assert exits["MMIO"]["min"] > costs["qemu_dcr"]

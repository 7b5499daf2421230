"""The observation hooks (emu.observe): what an observer is told, and that it changes nothing."""

from __future__ import annotations

import json

import pytest

from emu.machine import Machine
from emu.observe import EVENTS, observed
from emu.params import default_scenario
from emu.run import resolve
from emu.stats import collect

BUSY = ["duration_ms=12", "vm.0.process.0.count=2", "costs.access=20",
        "vm.0.process.0.workload.syscall_every=300", "vm.0.process.0.workload.mmio_every=300",
        "vm.0.process.0.workload.sleep_every=300", "vm.0.process.0.workload.sleep_us=600",
        "costs.guest_timeslice_us=100", "costs.guest_timer_period_us=100",
        "kvm.handler=asm",       # fast enough for both processes to sleep at once (halt),
                                 # with sleeps of 600 us at the calibrated exit costs
        "costs.host_timer_period_us=100"]


class Recorder:
    """Records (depth, event, thread name, result) and counts its own calls."""

    def __init__(self):
        self.events: list[tuple] = []
        self.depth = 0

    def around(self, event, thread, call, *args):
        self.events.append((self.depth, event, thread.name))
        self.depth += 1
        try:
            return call(*args)
        finally:
            self.depth -= 1


def _summary(machine) -> str:
    machine.run()
    return json.dumps(collect(machine.snapshot())[0], sort_keys=True, default=str)


def test_an_observer_sees_every_event_and_changes_no_number():
    plain = _summary(Machine(resolve(default_scenario(), BUSY)))
    m = Machine(resolve(default_scenario(), BUSY))
    rec = Recorder()
    m.vcpus[0].observer = rec
    assert _summary(m) == plain
    seen = {e for _, e, _ in rec.events}
    assert seen == set(EVENTS)
    assert {name for _, _, name in rec.events} == {"vm0.vcpu0"}
    # handlers nest: a timer tick switches processes; a system call's kernel
    # accesses take the C path
    nested = {(outer[1], inner[1]) for outer, inner in zip(rec.events, rec.events[1:])
              if inner[0] == outer[0] + 1}
    assert ("timer_tick", "switch_process") in nested
    # vcpu_load and vcpu_put alternate, starting with a load
    sched = [e for d, e, _ in rec.events if e in ("vcpu_load", "vcpu_put")]
    assert sched[0] == "vcpu_load"
    assert all(a != b for a, b in zip(sched, sched[1:]))


def test_observer_result_is_the_handlers_result():
    class Box:
        observer = None
        thread = "t"

        @observed("halt")
        def halt(self, cpu, now):
            return (True, now + cpu)

    box = Box()
    assert box.halt(1, 2) == (True, 3)

    class Watch:
        def around(self, event, thread, call, *args):
            assert (event, thread, args) == ("halt", "t", (1, 2))
            return call(*args)

    box.observer = Watch()
    assert box.halt(1, 2) == (True, 3)


def test_only_documented_events_can_be_observed():
    with pytest.raises(ValueError, match="unknown observation event"):
        observed("tlb_hit")

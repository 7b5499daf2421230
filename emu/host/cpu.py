"""A physical CPU as the host kernel runs it: the core, its run queue, its scheduling state."""

from __future__ import annotations

import heapq

import numpy as np

from emu.host.sched import RunQueue
from emu.hw.cpu import PhysicalCPU


class HostCPU(PhysicalCPU):
    """One physical CPU as the host kernel runs it: the core (:class:`PhysicalCPU`),
    its run queue and the state of its CPU loop (:mod:`emu.host.loop`)."""

    def __init__(self, index: int, virt, cycles: np.ndarray, rq: RunQueue):
        super().__init__(index, virt, cycles)
        self.rq = rq
        self.idle_event = None
        self.preempt = False
        self.loaded = None             # the vCPU loaded on this CPU (vcpu_load done)
        self.last = None               # the thread that ran last
        self.finished_at = 0
        self.wakes: list[int] = []     # times at which a thread of this CPU is due to wake
        self.next_tick = 0             # the host's next timer tick on this CPU
        # the warm-up (Sim.warmup_ms): when this CPU restarted its counters, and
        # its cycle breakdown then (the summary reports cycles - base)
        self.measured_from = 0
        self.base: np.ndarray | None = None

    def next_wake(self, now: int) -> int:
        """The next known wake-up time after ``now`` on this CPU (or -1)."""
        while self.wakes and self.wakes[0] <= now:
            heapq.heappop(self.wakes)
        return self.wakes[0] if self.wakes else -1

    def measured_cycles(self) -> np.ndarray:
        """The cycle breakdown since the end of the warm-up (all of it without one)."""
        return self.cycles - self.base if self.base is not None else self.cycles.copy()

"""The host Linux: physical CPUs and the scheduler that runs threads on them.

:mod:`emu.host.sched` is the CFS-like run-queue policy (pure, deterministic,
no SimPy); the machine model's CPU processes call it.
"""

from emu.host.sched import NICE_0_LOAD, RunQueue, SchedParams, Thread

__all__ = ["NICE_0_LOAD", "RunQueue", "SchedParams", "Thread"]

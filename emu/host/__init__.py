"""The host Linux: its CPUs, the scheduler that runs threads on them, and its tasks.

* :mod:`emu.host.sched` — the CFS-like run-queue policy (pure, deterministic,
  no SimPy);
* :mod:`emu.host.cpu` — a physical CPU as the host runs it: the core, its run
  queue and the state of its CPU loop;
* :mod:`emu.host.loop` — the CPU loop: each CPU a SimPy process that picks,
  switches, runs and accounts; waking, timers, the host tick and the warm-up;
* :mod:`emu.host.threads` — native host threads and the host tasks.
"""

from emu.host.sched import NICE_0_LOAD, RunQueue, SchedParams, Thread

__all__ = ["NICE_0_LOAD", "RunQueue", "SchedParams", "Thread"]

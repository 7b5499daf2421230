"""The host's CFS-like run-queue policy: who runs next on one physical CPU, and for how long.

This module is the *policy* of the host scheduler and nothing else: plain,
deterministic Python over integer cycles, with no SimPy inside.  The machine
model (the SimPy process of each physical CPU) owns time and calls it:

1. ``thread = rq.pick_next()``; ``rq.set_current(thread)``; charge the
   context switch;
2. run ``thread`` for at most ``rq.timeslice(thread)`` cycles (or until a tick,
   a block or a wake-up pre-emption);
3. ``rq.charge(thread, ran)``; at a tick ask ``rq.should_preempt(thread, ran)``;
   when the thread blocks, ``rq.sleep(thread)``; when an event makes another
   thread runnable, ``rq.wake(other)`` and pre-empt if it returns True.

What it models of Linux's CFS (``kernel/sched/fair.c``; the tunables and their
defaults are the ``sched_*`` rows of :mod:`emu.costs`, "Linux default:", general
Linux knowledge, not in ``docs/kvm440.md``):

- **virtual runtime**: a thread's ``vruntime`` advances by the cycles it ran
  scaled by ``NICE_0_LOAD / weight`` (``update_curr`` / ``calc_delta_fair``), so a
  heavier thread ages more slowly and gets proportionally more CPU;
- **pick the leftmost**: the runnable thread with the smallest ``vruntime``
  runs next (``pick_next_entity``), ties broken by ``tid``;
- **slices**: in each ``latency`` period every runnable thread runs once, for a
  share proportional to its weight, but never less than ``min_granularity``
  (``sched_slice``);
- **min_vruntime**: a monotonic floor that follows the smallest runnable
  ``vruntime`` (``update_min_vruntime``); new threads start there, and waking
  sleepers are placed no lower than ``min_vruntime - latency // 2``
  (``place_entity`` with sleeper credit), so a long sleeper cannot starve the
  others for longer than half a latency period;
- **pre-emption**: at wake-up (``check_preempt_wakeup``) and at the tick
  (``check_preempt_tick``).

Where the model simplifies (each method's docstring says more):

- **No load balancing.**  Threads are pinned: a thread's ``cpu`` names the one
  run queue that holds it for its whole life; there is no migration, no idle
  balancing, no wake-affine placement.
- **Tunables are not scaled** by ``1 + log2(ncpus)`` as Linux does on SMP; the
  scenario passes the values it means.
- **Flat weights.**  No group scheduling (cgroups), no autogroup, no
  bandwidth control; one class of threads (no RT, no idle class).
- **Slice clamping** is per thread (``max(min_granularity, share)``) instead of
  Linux's stretching of the period to ``nr_running * min_granularity`` when more
  than ``latency / min_granularity`` threads are runnable; with equal weights
  both give ``min_granularity``.
- **New threads** start at ``min_vruntime`` (no ``START_DEBIT`` of one slice).
- **Wake-up pre-emption** uses ``wakeup_granularity`` unscaled by the waking
  thread's weight, is decided at wake time and *applied by the caller*; the
  tick's vruntime check compares against ``wakeup_granularity`` too (Linux uses
  the slice there).
- **Integer arithmetic.**  ``vruntime`` grows by ``cycles * 1024 // weight``
  per charge (Linux uses a fixed-point inverse weight); for weights other than
  powers of two up to 1024 each charge may lose under one cycle of vruntime.

Determinism: threads are kept in a list in the order they were added; every
choice is a minimum over ``(vruntime, tid)``, which is unique, so nothing
depends on dict or set order, and nothing is random.

Example (two equal threads share a CPU; a long sleeper comes back)::

    >>> from emu.host.sched import RunQueue, SchedParams, Thread
    >>> rq = RunQueue(0, SchedParams(min_granularity=750, latency=6000,
    ...                              wakeup_granularity=1000))
    >>> a, b = Thread("a", tid=1, cpu=0), Thread("b", tid=2, cpu=0)
    >>> rq.add(a); rq.add(b)
    >>> rq.pick_next().name, rq.timeslice(a)
    ('a', 3000)
    >>> rq.set_current(a); rq.charge(a, 3000)
    >>> rq.pick_next().name
    'b'
    >>> rq.sleep(a)
    >>> rq.set_current(b); rq.charge(b, 20000); rq.min_vruntime
    20000
    >>> rq.wake(a), a.vruntime      # placed at min_vruntime - latency // 2
    (True, 17000)
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Iterable, Optional

from emu.costs import CostTable, us_to_cycles
from emu.errors import ConfigError

__all__ = ["NICE_0_LOAD", "SchedParams", "Thread", "RunQueue"]

#: Weight of a nice-0 thread (Linux ``NICE_0_LOAD`` without the fixed-point
#: shift): ``vruntime`` advances one cycle per cycle run at this weight.
NICE_0_LOAD = 1024


def _check_int(owner: str, name: str, value: object, minimum: int) -> int:
    """Return ``value`` as an int >= ``minimum``, or raise ConfigError naming it."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ConfigError(f"{owner} {name} must be a whole number, got {value!r}")
    value = int(value)
    if value < minimum:
        raise ConfigError(f"{owner} {name} must be at least {minimum}, got {value}")
    return value


@dataclass(frozen=True)
class SchedParams:
    """The CFS tunables of one host, in core cycles.

    ``min_granularity`` and ``latency`` must be at least 1 cycle,
    ``wakeup_granularity`` at least 0; anything else raises
    :class:`~emu.errors.ConfigError`.  :meth:`from_costs` builds them from the
    ``sched_*_us`` rows of a :class:`~emu.costs.CostTable` (Linux defaults
    0.75 ms, 6 ms and 1 ms).
    """

    #: A thread runs at least this long before a tick may pre-empt it, and no
    #: slice is shorter (``sysctl_sched_min_granularity``, Linux default 0.75 ms).
    min_granularity: int
    #: The period in which every runnable thread runs once
    #: (``sysctl_sched_latency``, Linux default 6 ms).
    latency: int
    #: How far a thread's vruntime must trail the current thread's to pre-empt it
    #: (``sysctl_sched_wakeup_granularity``, Linux default 1 ms).
    wakeup_granularity: int

    def __post_init__(self) -> None:
        for name, minimum in (
            ("min_granularity", 1),
            ("latency", 1),
            ("wakeup_granularity", 0),
        ):
            value = _check_int("SchedParams", name, getattr(self, name), minimum)
            object.__setattr__(self, name, value)

    @classmethod
    def from_costs(cls, costs: CostTable) -> "SchedParams":
        """The tunables of ``costs`` (µs rows) converted to cycles at its clock."""
        clock = costs.clock_mhz
        return cls(
            min_granularity=us_to_cycles(costs.sched_min_granularity_us, clock),
            latency=us_to_cycles(costs.sched_latency_us, clock),
            wakeup_granularity=us_to_cycles(costs.sched_wakeup_granularity_us, clock),
        )


class Thread:
    """A schedulable host thread: the base class of vCPU threads, QEMU I/O threads
    and ordinary host tasks (subclasses add what they run).

    ``name`` is for reports; ``tid`` is unique among the threads of one run queue
    (the creator assigns it, like a host PID) and breaks ties between equal
    vruntimes; ``cpu`` is the affinity, the physical CPU whose run queue holds the
    thread (threads are pinned: see the module docstring); ``weight`` is the CFS
    load weight (1024 for nice 0, 2048 gets twice the CPU), a positive int.

    The run queue owns the scheduling state and updates it; other code reads it:

    - ``vruntime``: virtual runtime in weighted cycles;
    - ``runnable``: on its run queue's runnable set (False until added);
    - ``sum_exec``: cycles charged in total (``se.sum_exec_runtime``);
    - ``switches_in``: how many times it was switched in as the current thread.
    """

    def __init__(self, name: str, tid: int, cpu: int, weight: int = NICE_0_LOAD):
        self.name = name
        self.tid = _check_int(f"thread {name!r}", "tid", tid, 0)
        self.cpu = _check_int(f"thread {name!r}", "cpu", cpu, 0)
        self.weight = _check_int(f"thread {name!r}", "weight", weight, 1)
        self.vruntime = 0
        self.runnable = False
        self.sum_exec = 0
        self.switches_in = 0

    def __repr__(self) -> str:
        state = "R" if self.runnable else "S"
        return (
            f"<{type(self).__name__} {self.name!r} tid={self.tid} cpu={self.cpu} "
            f"{state} vruntime={self.vruntime} weight={self.weight}>"
        )


class RunQueue:
    """The CFS run queue of one physical CPU (``struct cfs_rq``), over pinned threads.

    Holds every thread whose ``cpu`` is this CPU, runnable or asleep, in the order
    they were added; ``current`` is the thread the CPU is running (set by the
    caller with :meth:`set_current`), which stays among the runnable threads
    while it runs, so ``pick_next`` may return it again.

    Every method that takes a thread requires it to be on this queue (else
    ``ValueError``).  The queue never advances time itself: the caller charges
    what ran with :meth:`charge`.
    """

    def __init__(self, cpu: int, params: SchedParams):
        if not isinstance(params, SchedParams):
            raise TypeError(f"params must be SchedParams, got {type(params).__name__}")
        self.cpu = _check_int("RunQueue", "cpu", cpu, 0)
        self.params = params
        self.current: Optional[Thread] = None
        self._min_vruntime = 0
        self._threads: list[Thread] = []
        self._by_tid: dict[int, Thread] = {}

    # -- state ---------------------------------------------------------------
    @property
    def min_vruntime(self) -> int:
        """The queue's monotonic vruntime floor (``cfs_rq->min_vruntime``); never decreases."""
        return self._min_vruntime

    @property
    def nr_running(self) -> int:
        """How many threads on this queue are runnable (the current one included)."""
        return sum(1 for t in self._threads if t.runnable)

    @property
    def load(self) -> int:
        """Total weight of the runnable threads (``cfs_rq->load.weight``)."""
        return sum(t.weight for t in self._threads if t.runnable)

    @property
    def threads(self) -> tuple[Thread, ...]:
        """Every thread on this queue, runnable or not, in the order added."""
        return tuple(self._threads)

    def _runnable(self) -> Iterable[Thread]:
        return (t for t in self._threads if t.runnable)

    def _check_member(self, thread: Thread) -> None:
        if self._by_tid.get(thread.tid) is not thread:
            raise ValueError(f"{thread!r} is not on the run queue of CPU {self.cpu}")

    def _update_min_vruntime(self) -> None:
        """``update_min_vruntime``: follow the smallest runnable vruntime, never back.

        The current thread counts only while it is runnable (Linux: ``curr->on_rq``);
        with nothing runnable the floor stays where it is.
        """
        smallest = min((t.vruntime for t in self._runnable()), default=None)
        if smallest is not None and smallest > self._min_vruntime:
            self._min_vruntime = smallest

    # -- membership ------------------------------------------------------------
    def add(self, thread: Thread, runnable: bool = True) -> None:
        """Put a new thread on this queue with ``vruntime = min_vruntime``.

        Starting at the floor (``place_entity`` for a new task, without Linux's
        ``START_DEBIT`` of one slice) means a newcomer neither starves the threads
        already here (as vruntime 0 would) nor waits behind them all.  ``thread.cpu``
        must be this CPU and its ``tid`` new to this queue.  With
        ``runnable=False`` it joins asleep and is placed again by :meth:`wake`.
        """
        if thread.cpu != self.cpu:
            raise ValueError(
                f"{thread!r} has affinity CPU {thread.cpu}, not CPU {self.cpu} "
                "(threads are pinned; there is no migration)"
            )
        if thread.tid in self._by_tid:
            raise ValueError(f"tid {thread.tid} is already on the run queue of CPU {self.cpu}")
        thread.vruntime = self._min_vruntime
        thread.runnable = bool(runnable)
        self._threads.append(thread)
        self._by_tid[thread.tid] = thread

    def remove(self, thread: Thread) -> None:
        """Take a thread off this queue for good (it exited); it may not be current."""
        self._check_member(thread)
        if thread is self.current:
            raise ValueError(f"{thread!r} is the current thread of CPU {self.cpu}")
        self._threads.remove(thread)
        del self._by_tid[thread.tid]
        thread.runnable = False
        self._update_min_vruntime()

    # -- choosing and running ----------------------------------------------------
    def pick_next(self) -> Optional[Thread]:
        """The runnable thread with the smallest ``vruntime``; ties go to the smaller tid.

        ``pick_next_entity``: the leftmost entity of the rbtree, where the current
        thread competes like any other (Linux puts it back with ``put_prev_entity``
        first).  ``None`` if nothing is runnable (the CPU idles).  Does not change
        ``current``: the caller switches with :meth:`set_current`.

        NOTE: a linear scan, not a tree: a host CPU holds a handful of threads and
        this runs once per slice, never per access.
        """
        return min(self._runnable(), key=lambda t: (t.vruntime, t.tid), default=None)

    def set_current(self, thread: Optional[Thread]) -> None:
        """Record the thread the CPU now runs (``None``: idle).

        The thread must be on this queue and runnable.  Switching to a thread other
        than the present current counts one ``switches_in`` for it; setting the
        same thread again (it was picked again after its slice) does not, as no
        context switch happens.
        """
        if thread is not None:
            self._check_member(thread)
            if not thread.runnable:
                raise ValueError(f"{thread!r} is asleep and cannot run")
            if thread is not self.current:
                thread.switches_in += 1
        self.current = thread

    def timeslice(self, thread: Thread) -> int:
        """``sched_slice``: the cycles ``thread`` may run this turn.

        ``max(min_granularity, latency * weight // load)``, where ``load`` is the
        total weight of the runnable threads, counting ``thread`` even if it is not
        runnable yet (Linux adds a not-yet-queued entity's weight the same way).
        So with ``n`` equal threads the slice is ``latency // n`` until that falls
        below ``min_granularity``, where it is clamped.
        """
        self._check_member(thread)
        load = self.load + (0 if thread.runnable else thread.weight)
        p = self.params
        return max(p.min_granularity, p.latency * thread.weight // load)

    def charge(self, thread: Thread, cycles: int) -> None:
        """``update_curr``: ``thread`` ran ``cycles`` (>= 0); age it and move the floor.

        ``vruntime += cycles * 1024 // weight`` and ``sum_exec += cycles``; then
        ``min_vruntime`` becomes ``max(min_vruntime, smallest runnable vruntime)``
        (the current thread included while it is runnable).  Charge a thread that
        blocks *before* calling :meth:`sleep`, as Linux accounts ``curr`` before
        dequeueing it.
        """
        self._check_member(thread)
        cycles = _check_int("charge", "cycles", cycles, 0)
        thread.vruntime += cycles * NICE_0_LOAD // thread.weight
        thread.sum_exec += cycles
        self._update_min_vruntime()

    # -- blocking and waking -------------------------------------------------------
    def sleep(self, thread: Thread) -> None:
        """``dequeue_entity`` on a block: ``thread`` is no longer runnable.

        The floor moves up if ``thread`` held it back (``update_min_vruntime``).
        If ``thread`` is the current one it stays ``current`` until the caller
        switches away (pick the next thread and :meth:`set_current` it).  Sleeping
        an already sleeping thread changes nothing.
        """
        self._check_member(thread)
        if not thread.runnable:
            return
        thread.runnable = False
        self._update_min_vruntime()

    def wake(self, thread: Thread) -> bool:
        """``try_to_wake_up`` + ``place_entity``: ``thread`` becomes runnable again.

        Sleeper credit: ``vruntime = max(vruntime, min_vruntime - latency // 2)``,
        so a thread back from a short sleep keeps its place, while one back from a
        long sleep is at most half a latency period ahead of the others instead of
        owning the CPU until its old, tiny vruntime catches up.

        Returns True if the woken thread should pre-empt ``current``
        (``check_preempt_wakeup``): ``woken.vruntime + wakeup_granularity <
        current.vruntime``.  The decision is taken here, at wake time, and the
        caller applies it (interrupts the running thread, charges it and picks
        again).  Returns False when the CPU is idle (``current`` is None: there is
        nothing to pre-empt; the caller starts the idle CPU because
        ``nr_running > 0``), when ``thread`` is the current one, and when it was
        already runnable (the wake-up is a no-op).
        """
        self._check_member(thread)
        if thread.runnable:
            return False
        floor = self._min_vruntime - self.params.latency // 2
        if thread.vruntime < floor:
            thread.vruntime = floor
        thread.runnable = True
        current = self.current
        if current is None or current is thread:
            return False
        return thread.vruntime + self.params.wakeup_granularity < current.vruntime

    def should_preempt(self, current: Thread, ran: int) -> bool:
        """``check_preempt_tick``: at a tick, should ``current`` (in its turn for ``ran``
        cycles, already charged) give up the CPU?

        True if ``ran >= timeslice(current)``; or, once ``ran >= min_granularity``,
        if another runnable thread's ``vruntime + wakeup_granularity <
        current.vruntime`` (Linux compares that lead with the slice; this model
        with the wake-up granularity).  Below ``min_granularity`` only the slice
        can end the turn.  A ``current`` that is no longer runnable (it blocked)
        always yields.
        """
        self._check_member(current)
        ran = _check_int("should_preempt", "ran", ran, 0)
        if not current.runnable or ran >= self.timeslice(current):
            return True
        if ran < self.params.min_granularity:
            return False
        limit = current.vruntime - self.params.wakeup_granularity
        return any(t.vruntime < limit for t in self._runnable() if t is not current)

    def __repr__(self) -> str:
        current = None if self.current is None else self.current.name
        return (
            f"<RunQueue cpu={self.cpu} nr_running={self.nr_running}/{len(self._threads)} "
            f"min_vruntime={self._min_vruntime} current={current!r}>"
        )

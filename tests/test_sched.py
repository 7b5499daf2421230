"""Tests of the host's CFS-like run-queue policy (emu.host.sched)."""

from __future__ import annotations

import doctest

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import emu.host.sched as sched_module
from emu.costs import CostTable, us_to_cycles
from emu.errors import ConfigError
from emu.host import NICE_0_LOAD, RunQueue, SchedParams, Thread

# Round numbers, in the Linux defaults' proportions (0.75 : 6 : 1 ms).
MIN_GRAN, LATENCY, WAKEUP_GRAN = 750, 6000, 1000
PARAMS = SchedParams(min_granularity=MIN_GRAN, latency=LATENCY, wakeup_granularity=WAKEUP_GRAN)


def make_rq(*specs, cpu=0, params=PARAMS):
    """A run queue on ``cpu`` holding one runnable thread per ``(name, tid[, weight])``."""
    rq = RunQueue(cpu, params)
    threads = []
    for spec in specs:
        name, tid, *weight = spec
        thread = Thread(name, tid=tid, cpu=cpu, weight=weight[0] if weight else NICE_0_LOAD)
        rq.add(thread)
        threads.append(thread)
    return rq, threads


def drive(rq, turns):
    """The machine's loop, reduced to the policy: pick, switch, run a whole slice, charge.

    Returns the thread picked at each turn (None turns are skipped).
    """
    picks = []
    for _ in range(turns):
        thread = rq.pick_next()
        if thread is None:
            break
        rq.set_current(thread)
        rq.charge(thread, rq.timeslice(thread))
        picks.append(thread)
    return picks


# --------------------------------------------------------------------- params


def test_params_from_costs_are_the_linux_defaults_in_cycles():
    costs = CostTable()
    params = SchedParams.from_costs(costs)
    assert params.min_granularity == us_to_cycles(750, costs.clock_mhz) == 750 * 667
    assert params.latency == 6000 * 667
    assert params.wakeup_granularity == 1000 * 667
    faster = SchedParams.from_costs(CostTable({"sched_latency_us": 3000, "clock_mhz": 500}))
    assert faster.latency == 3000 * 500 and faster.min_granularity == 750 * 500


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(min_granularity=0, latency=6000, wakeup_granularity=1000),
        dict(min_granularity=750, latency=0, wakeup_granularity=1000),
        dict(min_granularity=750, latency=6000, wakeup_granularity=-1),
        dict(min_granularity=750.5, latency=6000, wakeup_granularity=1000),
        dict(min_granularity=750, latency=True, wakeup_granularity=1000),
    ],
)
def test_bad_params_are_config_errors(kwargs):
    with pytest.raises(ConfigError):
        SchedParams(**kwargs)


def test_zero_wakeup_granularity_is_allowed():
    assert SchedParams(min_granularity=1, latency=1, wakeup_granularity=0).wakeup_granularity == 0


@pytest.mark.parametrize("weight", [0, -1024, 1.5, None])
def test_bad_weight_is_a_config_error(weight):
    with pytest.raises(ConfigError, match="weight"):
        Thread("t", tid=1, cpu=0, weight=weight)


# ----------------------------------------------------------------- membership


def test_new_thread_starts_at_min_vruntime_and_is_runnable():
    rq, (a,) = make_rq(("a", 1))
    rq.set_current(a)
    rq.charge(a, 50_000)
    assert rq.min_vruntime == 50_000
    late = Thread("late", tid=2, cpu=0)
    assert not late.runnable
    rq.add(late)
    assert late.runnable and late.vruntime == 50_000  # not 0: it must not starve `a`
    asleep = Thread("asleep", tid=3, cpu=0)
    rq.add(asleep, runnable=False)
    assert not asleep.runnable and asleep.vruntime == 50_000
    assert rq.nr_running == 2 and rq.threads == (a, late, asleep)


def test_threads_are_pinned_to_their_cpu():
    rq = RunQueue(1, PARAMS)
    with pytest.raises(ValueError, match="pinned"):
        rq.add(Thread("elsewhere", tid=1, cpu=0))


def test_duplicate_tid_and_foreign_threads_are_refused():
    rq, (a,) = make_rq(("a", 1))
    with pytest.raises(ValueError, match="tid 1"):
        rq.add(Thread("twin", tid=1, cpu=0))
    stranger = Thread("stranger", tid=2, cpu=0)
    for call in (rq.sleep, rq.wake, rq.set_current, rq.timeslice, rq.remove):
        with pytest.raises(ValueError, match="not on the run queue"):
            call(stranger)
    with pytest.raises(ValueError, match="not on the run queue"):
        rq.charge(stranger, 10)


def test_remove_takes_a_thread_off_for_good():
    rq, (a, b) = make_rq(("a", 1), ("b", 2))
    rq.set_current(a)
    with pytest.raises(ValueError, match="current"):
        rq.remove(a)
    rq.charge(a, 4000)
    rq.remove(b)  # b held the floor at 0; a is now the only runnable thread
    assert rq.threads == (a,) and rq.nr_running == 1 and rq.min_vruntime == 4000
    assert rq.pick_next() is a


# ------------------------------------------------------------ picking and slices


def test_two_equal_threads_alternate_and_share_the_cpu_evenly():
    rq, (a, b) = make_rq(("a", 1), ("b", 2))
    slice_ = rq.timeslice(a)
    assert slice_ == LATENCY // 2
    picks = []
    for _ in range(2000):
        thread = rq.pick_next()
        rq.set_current(thread)
        rq.charge(thread, rq.timeslice(thread))
        picks.append(thread)
        assert abs(a.sum_exec - b.sum_exec) <= slice_
    assert all(x is not y for x, y in zip(picks, picks[1:]))  # strict alternation
    assert a.sum_exec == b.sum_exec == 1000 * slice_
    assert a.switches_in == b.switches_in == 1000


def test_three_threads_get_a_third_of_the_latency():
    rq, (a, b, c) = make_rq(("a", 1), ("b", 2), ("c", 3))
    assert LATENCY // 3 > MIN_GRAN
    assert [rq.timeslice(t) for t in (a, b, c)] == [max(MIN_GRAN, LATENCY // 3)] * 3 == [2000] * 3
    rq.sleep(c)  # only runnable threads share the period ...
    assert rq.timeslice(a) == LATENCY // 2
    assert rq.timeslice(c) == LATENCY // 3  # ... but a sleeper's slice counts itself


def test_ten_threads_are_clamped_at_min_granularity():
    rq, threads = make_rq(*[(f"t{i}", i) for i in range(10)])
    assert LATENCY // 10 < MIN_GRAN
    assert {rq.timeslice(t) for t in threads} == {MIN_GRAN}
    # Over a long run every thread still gets its turn: one full round per 10 turns.
    picks = drive(rq, 1000)
    assert {t.sum_exec for t in threads} == {100 * MIN_GRAN}
    assert all(len(set(map(id, picks[i:i + 10]))) == 10 for i in range(0, 1000, 10))


def test_slice_rounds_down_in_integer_cycles():
    params = SchedParams(min_granularity=1, latency=1000, wakeup_granularity=0)
    rq, (a, _, _) = make_rq(("a", 1), ("b", 2), ("c", 3), params=params)
    assert rq.timeslice(a) == 333 and isinstance(rq.timeslice(a), int)


def test_ties_are_broken_by_tid_not_by_insertion_order():
    rq, (t7, t3, t5) = make_rq(("t7", 7), ("t3", 3), ("t5", 5))
    assert t7.vruntime == t3.vruntime == t5.vruntime
    assert rq.pick_next() is t3
    assert [t.tid for t in drive(rq, 6)] == [3, 5, 7, 3, 5, 7]


def test_pick_order_does_not_depend_on_the_order_threads_were_added():
    orders = [[1, 2, 3, 4], [4, 3, 2, 1], [2, 4, 1, 3]]
    runs = []
    for order in orders:
        rq, _ = make_rq(*[(f"t{tid}", tid, 1024 * (1 + tid % 2)) for tid in order])
        runs.append([t.tid for t in drive(rq, 200)])
    assert runs[0] == runs[1] == runs[2]


def test_pick_next_is_none_when_all_sleep():
    assert RunQueue(0, PARAMS).pick_next() is None
    rq, (a, b) = make_rq(("a", 1), ("b", 2))
    rq.sleep(a)
    assert rq.pick_next() is b
    rq.sleep(b)
    assert rq.pick_next() is None and rq.nr_running == 0
    rq.wake(a)
    assert rq.pick_next() is a


def test_weight_2048_gets_twice_the_cpu_of_weight_1024():
    rq, (heavy, light) = make_rq(("heavy", 1, 2048), ("light", 2, 1024))
    assert rq.timeslice(heavy) == 2 * LATENCY // 3
    assert rq.timeslice(light) == LATENCY // 3
    drive(rq, 3000)
    ratio = heavy.sum_exec / light.sum_exec
    assert 1.95 <= ratio <= 2.05, ratio
    # vruntime ages at 1024/weight per cycle: both end up close in virtual time.
    assert heavy.vruntime == heavy.sum_exec // 2
    assert abs(heavy.vruntime - light.vruntime) <= LATENCY


def test_charge_scales_vruntime_by_weight_in_integers():
    rq, (a, b) = make_rq(("a", 1, 3072), ("b", 2, 512))
    rq.charge(a, 1000)
    rq.charge(b, 1000)
    assert (a.vruntime, a.sum_exec) == (1000 * 1024 // 3072, 1000) == (333, 1000)
    assert (b.vruntime, b.sum_exec) == (2000, 1000)
    with pytest.raises(ConfigError):
        rq.charge(a, -1)


def test_set_current_counts_switches_in_and_refuses_sleepers():
    rq, (a, b) = make_rq(("a", 1), ("b", 2))
    rq.set_current(a)
    rq.set_current(a)  # picked again after its slice: no context switch
    rq.set_current(b)
    rq.set_current(None)
    rq.set_current(b)
    assert (a.switches_in, b.switches_in) == (1, 2)
    rq.sleep(a)
    with pytest.raises(ValueError, match="asleep"):
        rq.set_current(a)


# ----------------------------------------------------------- sleep and wake


def test_long_sleeper_is_placed_half_a_latency_behind_and_cannot_starve_others():
    rq, (a, b, c) = make_rq(("a", 1), ("b", 2), ("c", 3))
    rq.sleep(a)  # a sleeps with vruntime 0 while b and c run for a long time
    drive(rq, 400)
    missed = b.sum_exec  # what a would have had, running alongside b
    assert rq.min_vruntime >= 100 * LATENCY and a.sum_exec == 0
    assert rq.wake(a) is True  # b or c is current, far ahead of a
    assert a.vruntime == rq.min_vruntime - LATENCY // 2  # not its old vruntime 0
    # a now runs first, but only until it has used up its credit of latency // 2.
    slice_ = rq.timeslice(a)
    while rq.pick_next() is a:
        rq.set_current(a)
        rq.charge(a, slice_)
    assert 0 < a.sum_exec <= LATENCY // 2 + slice_
    before = [t.sum_exec for t in (a, b, c)]
    drive(rq, 300)  # afterwards the three share evenly again ...
    gained = [t.sum_exec - s for t, s in zip((a, b, c), before)]
    assert max(gained) - min(gained) <= slice_
    # ... and of the time a missed, it got back no more than latency // 2 + a slice.
    assert b.sum_exec - a.sum_exec >= missed - (LATENCY // 2 + slice_)


def test_short_sleeper_keeps_its_own_vruntime():
    rq, (a, b) = make_rq(("a", 1), ("b", 2))
    rq.set_current(a)
    rq.charge(a, 3000)
    rq.sleep(a)
    rq.set_current(b)
    rq.charge(b, 4000)
    assert rq.min_vruntime == 4000
    rq.wake(a)
    assert a.vruntime == 3000  # 3000 > 4000 - latency // 2: no credit needed


def test_sleep_moves_min_vruntime_up_but_never_down():
    rq, (a, b) = make_rq(("a", 1), ("b", 2))
    rq.charge(b, 9000)
    assert rq.min_vruntime == 0  # a still holds the floor
    rq.sleep(a)
    assert rq.min_vruntime == 9000
    rq.wake(a)  # woken below the floor: the floor stays
    assert a.vruntime == 9000 - LATENCY // 2 and rq.min_vruntime == 9000
    rq.charge(a, 1000)
    assert rq.min_vruntime == 9000


def _current_at(vruntime, params=PARAMS):
    """A queue whose current thread ``b`` sits at ``vruntime`` and the floor with it,
    and a sleeping thread ``a``; returns ``(rq, a, b)``."""
    rq, (a, b) = make_rq(("a", 1), ("b", 2), params=params)
    rq.sleep(a)
    rq.set_current(b)
    rq.charge(b, vruntime)
    assert rq.min_vruntime == vruntime
    return rq, a, b


def test_wake_preempts_when_the_sleeper_trails_by_more_than_the_granularity():
    rq, a, b = _current_at(10_000)
    assert rq.wake(a) is True
    assert a.vruntime + WAKEUP_GRAN < b.vruntime  # 7000 + 1000 < 10000


def test_wake_does_not_preempt_at_exactly_the_granularity():
    params = SchedParams(min_granularity=MIN_GRAN, latency=LATENCY, wakeup_granularity=LATENCY // 2)
    rq, a, b = _current_at(10_000, params)
    assert rq.wake(a) is False
    assert a.vruntime + params.wakeup_granularity == b.vruntime


def test_wake_does_not_preempt_a_thread_it_barely_trails():
    rq, (a, b) = make_rq(("a", 1), ("b", 2))
    rq.set_current(a)
    rq.charge(a, 9500)
    rq.sleep(a)
    rq.set_current(b)
    rq.charge(b, 10_000)
    assert rq.wake(a) is False  # 9500 + 1000 >= 10000
    assert a.vruntime == 9500


def test_wake_on_an_idle_cpu_or_of_a_runnable_thread_does_not_preempt():
    rq, a, b = _current_at(10_000)
    rq.sleep(b)
    rq.set_current(None)
    assert rq.wake(a) is False and a.runnable and rq.nr_running == 1
    before = a.vruntime
    assert rq.wake(a) is False and a.vruntime == before  # already runnable: no-op
    rq.sleep(a)
    rq.sleep(a)  # already asleep: no-op
    assert rq.nr_running == 0


# ---------------------------------------------------------------- tick


def test_tick_preempts_when_the_slice_is_used_up():
    # A wake-up granularity wider than the slice: only the slice can end the turn.
    params = SchedParams(min_granularity=MIN_GRAN, latency=LATENCY, wakeup_granularity=LATENCY)
    rq, (a, b) = make_rq(("a", 1), ("b", 2), params=params)
    rq.set_current(a)
    rq.charge(a, LATENCY // 2 - 1)
    assert rq.should_preempt(a, LATENCY // 2 - 1) is False
    rq.charge(a, 1)
    assert rq.should_preempt(a, LATENCY // 2) is True


def test_tick_preempts_on_a_vruntime_lead_only_after_min_granularity():
    rq, (a, b) = make_rq(("a", 1), ("b", 2))
    rq.set_current(b)
    rq.charge(b, 5000)  # b ahead: a's vruntime 0 + 1000 < 5000
    assert rq.should_preempt(b, MIN_GRAN - 1) is False
    assert rq.should_preempt(b, MIN_GRAN) is True
    rq, (a, b) = make_rq(("a", 1), ("b", 2))
    rq.set_current(b)
    rq.charge(b, WAKEUP_GRAN)  # a's lead equals the granularity: not enough
    assert rq.should_preempt(b, WAKEUP_GRAN) is False
    rq.sleep(a)  # a sleeping thread's vruntime does not count
    rq.charge(b, 4000)
    assert rq.should_preempt(b, MIN_GRAN) is False


def test_tick_on_a_blocked_current_yields():
    rq, (a, b) = make_rq(("a", 1), ("b", 2))
    rq.set_current(a)
    rq.sleep(a)
    assert rq.should_preempt(a, 0) is True


# ---------------------------------------------------------- invariants


class _Model:
    """Random operations against one run queue, checking the invariants after each."""

    def __init__(self, params):
        self.rq = RunQueue(0, params)
        self.params = params
        self.threads = []
        self.last_min = 0

    def apply(self, op):
        kind, index, amount = op
        rq = self.rq
        target = self.threads[index % len(self.threads)] if self.threads else None
        if kind == "add" or target is None:
            thread = Thread(f"t{len(self.threads)}", tid=(len(self.threads) * 37) % 101, cpu=0,
                            weight=(512, 1024, 2048, 3000)[amount % 4])
            rq.add(thread, runnable=amount % 5 != 0)
            assert thread.vruntime == rq.min_vruntime
            self.threads.append(thread)
        elif kind == "sleep":
            rq.sleep(target)
            assert not target.runnable
        elif kind == "wake":
            was_runnable, old = target.runnable, target.vruntime
            floor = rq.min_vruntime - self.params.latency // 2
            current = rq.current
            preempt = rq.wake(target)
            assert target.runnable
            if was_runnable:
                assert preempt is False and target.vruntime == old
            else:
                assert target.vruntime == max(old, floor)
                expect = (current is not None and current is not target
                          and target.vruntime + self.params.wakeup_granularity < current.vruntime)
                assert preempt is expect
        elif kind == "charge":
            old_vr, old_sum = target.vruntime, target.sum_exec
            rq.charge(target, amount)
            assert target.vruntime == old_vr + amount * 1024 // target.weight
            assert target.sum_exec == old_sum + amount
        elif kind == "pick":
            rq.set_current(rq.pick_next())
        elif kind == "tick" and rq.current is not None:
            current, p = rq.current, self.params
            lead = any(t.vruntime + p.wakeup_granularity < current.vruntime
                       for t in self.threads if t.runnable and t is not current)
            expect = (not current.runnable or amount >= rq.timeslice(current)
                      or (amount >= p.min_granularity and lead))
            assert rq.should_preempt(current, amount) is expect
        self.check()

    def check(self):
        rq = self.rq
        assert rq.min_vruntime >= self.last_min  # monotonic
        self.last_min = rq.min_vruntime
        runnable = [t for t in self.threads if t.runnable]
        assert rq.nr_running == len(runnable)
        assert rq.load == sum(t.weight for t in runnable)
        expected = sorted(runnable, key=lambda t: (t.vruntime, t.tid))
        assert rq.pick_next() is (expected[0] if expected else None)
        # No runnable thread is more than half a latency behind the floor.
        assert all(t.vruntime >= rq.min_vruntime - self.params.latency // 2 for t in runnable)
        for t in runnable:
            slice_ = rq.timeslice(t)
            assert isinstance(slice_, int) and slice_ >= self.params.min_granularity


_ops = st.lists(
    st.tuples(
        st.sampled_from(["add", "sleep", "wake", "charge", "charge", "pick", "tick"]),
        st.integers(min_value=0, max_value=20),
        st.integers(min_value=0, max_value=20_000),
    ),
    min_size=10,
    max_size=100,
)


@settings(derandomize=True, max_examples=200, deadline=None)
@given(ops=_ops, wakeup_gran=st.integers(min_value=0, max_value=4000))
def test_invariants_hold_under_random_operations(ops, wakeup_gran):
    model = _Model(SchedParams(min_granularity=MIN_GRAN, latency=LATENCY,
                               wakeup_granularity=wakeup_gran))
    for op in ops:
        model.apply(op)


def test_docstring_examples_run():
    result = doctest.testmod(sched_module)
    assert result.attempted > 0 and result.failed == 0

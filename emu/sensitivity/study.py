"""A sensitivity study: plan it, run it through a runner, analyse it.

>>> result = run_sensitivity("s.toml", "kvm.strategy=shadow,direct",
...                          method="morris", samples=10, seed=0)      # doctest: +SKIP
>>> result["win_share"], result["ranking"][:3]                         # doctest: +SKIP

Three steps, so an executor can take over the middle one:

1. :func:`plan_sensitivity` checks everything and lists the runs
   (:attr:`SensitivityPlan.jobs`, unique, in a fixed order); it runs nothing.
2. A runner runs the jobs (:mod:`emu.sensitivity.runner`).
3. :func:`analyse` turns ``label -> summary`` into the result.

:func:`run_sensitivity` does the three (:func:`run_plan` the last two).  A
metric that is no number of a run's summary is refused in the first step
(against the summary each side's machine has before it runs); the two
baseline jobs run first, alone, so that one that a run leaves without a
number (or at 0 for B) is refused before the rest runs.

Every method also evaluates the one-at-a-time ends (they give each cost's
``ratio_low``, ``ratio_high`` and ``flips``); ``morris`` and ``sobol`` add
their samples, the cost indices and ``win_share``, the share of sampled cost
vectors in which A beats B.  The break-even band is taken over the same
vectors: the OAT ends for ``oat``, the samples otherwise.

The result depends only on the scenario, the options and the seed: not on
the order in which the runner runs the jobs, nor on the runner.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Optional, Union

import numpy as np

from emu import __version__
from emu.costs import COSTS_BY_NAME
from emu.errors import spelled
from emu.report.text import hypothetical
from emu.run.plan import override_list, overridden_keys
from emu.stats.figures import settled
from emu.workload.traces.source import check_pipe_traces
from emu.sensitivity import analysis
from emu.sensitivity.analysis import beats
from emu.sensitivity.design import (
    CostSpace, cost_space, oat_vectors, sampled_design, vector_overrides)
from emu.sensitivity.runner import (
    Job, Runner, job_label, local_runner, resolve_scenario, run_jobs, scenario_costs,
    summary_shape)
from emu.sensitivity.spec import (
    DEFAULT_METRIC, BreakEven, Compare, SensitivityError, check_better, check_method,
    check_metric, check_samples, check_seed, cost_of_key, metric_value, parse_break_even,
    parse_compare, parse_cost_names, parse_ranges)

__all__ = ["SensitivityPlan", "analyse", "plan_sensitivity", "run_plan", "run_sensitivity"]


@dataclass
class SensitivityPlan:
    """A checked study: what to compare, the cost vectors and the runs they need."""

    scenario: Any
    name: str
    overrides: tuple
    compare: Compare
    metric: str
    better: str
    method: str
    samples: Optional[int]
    seed: int
    space: CostSpace
    oat: list                         # [(cost, "low" | "high", vector)]
    sample_x: Optional[np.ndarray]    # the SALib sample matrix (global methods)
    sampled: list                     # its vectors, in sample order
    break_even: Optional[BreakEven]
    jobs: list = field(default_factory=list)   # unique, in a fixed order
    _labels: dict = field(default_factory=dict, repr=False)

    def job_overrides(self, vector: Optional[Mapping], value: str,
                      at: Optional[str] = None) -> tuple:
        """The overrides of the run of ``vector`` (None: baseline) with the
        compared key at ``value`` and the break-even key at ``at``."""
        out = list(self.overrides) + [f"{self.compare.key}={value}"]
        if at is not None:
            out.append(f"{self.break_even.key}={at}")
        if vector is not None:
            out += vector_overrides(self.space, vector)
        return tuple(out)

    def pair(self, vector: Optional[Mapping], at: Optional[str] = None) -> tuple[str, str]:
        """The labels of the A and B runs of ``vector`` (planned runs only)."""
        return tuple(self._labels[self.job_overrides(vector, value, at)]
                     for value in (self.compare.a, self.compare.b))

    def add_pair(self, vector: Optional[Mapping], at: Optional[str] = None) -> None:
        """Plan the A and B runs of ``vector``, each once."""
        for value in (self.compare.a, self.compare.b):
            overrides = self.job_overrides(vector, value, at)
            if overrides not in self._labels:
                self._labels[overrides] = label = job_label(overrides)
                self.jobs.append(Job(label, self.scenario, overrides))

    def band_vectors(self) -> list:
        """The cost vectors the break-even band is taken over."""
        return [v for _, _, v in self.oat] if self.method == "oat" else self.sampled


def plan_sensitivity(scenario: Any, compare: Union[str, Sequence, Compare], *,
                     metric: str = DEFAULT_METRIC, method: str = "oat",
                     samples: Optional[int] = None, seed: Optional[int] = None,
                     overrides: Sequence[str] = (), ranges: Any = None,
                     costs: Union[None, str, Sequence[str]] = None,
                     break_even: Union[None, str, Sequence, BreakEven] = None,
                     better: str = "lower") -> SensitivityPlan:
    """Check a study and list its runs; runs nothing, writes nothing.

    ``scenario``: a TOML path, a dict or a Scenario; ``compare``:
    ``"KEY=A,B"``; ``overrides``: ``KEY=VALUE`` texts for every run;
    ``ranges``: ``{cost: (low, high)}`` or ``["NAME=LOW,HIGH"]``; ``costs``: the
    costs to vary (default all with a range); ``break_even``:
    ``"KEY=v1,v2,..."``.  Bad input raises :class:`SensitivityError`.
    """
    method = check_method(method)
    samples = check_samples(method, samples)
    better = check_better(better)
    seed = check_seed(method, seed)
    if not isinstance(metric, str) or not metric.strip():
        raise SensitivityError(f"{spelled('--metric')}: expected a summary key, got {metric!r}")
    cmp = compare if isinstance(compare, Compare) else parse_compare(compare)
    be = (break_even if isinstance(break_even, BreakEven) or break_even is None
          else parse_break_even(break_even))
    overrides = tuple(map(str, override_list(overrides)))
    if be is not None and be.key == cmp.key:
        raise SensitivityError(f"{spelled('--break-even')} {be.key}: the key is also the compared "
                               "one")
    set_keys = overridden_keys(overrides)
    for option, key in ((spelled("--compare"), cmp.key),
                        (spelled("--break-even"), be.key if be else None)):
        if key in set_keys:
            raise SensitivityError(f"{option} {key}: the key is also given with {spelled('--set')}")

    base = resolve_scenario(scenario)             # the file's own errors, as emu run says them
    if overrides:
        base = resolve_scenario(scenario, overrides, spelled("--set"))
    check_pipe_traces([base, base])               # two runs at least: A and B
    for value in (cmp.a, cmp.b):
        check_metric(summary_shape(resolve_scenario(
            scenario, overrides + (f"{cmp.key}={value}",),
            f"{spelled('--compare')} {cmp.key}={value}")), metric.strip())
    for value in (be.values if be else ()):
        resolve_scenario(scenario, overrides + (f"{cmp.key}={cmp.a}", f"{be.key}={value}"),
                         f"{spelled('--break-even')} {be.key}={value}")
    fixed = [n for n in (cost_of_key(cmp.key), cost_of_key(be.key) if be else None) if n]
    scenario_cost_values, clock_mhz = scenario_costs(base)
    space = cost_space(scenario_cost_values, clock_mhz, ranges=parse_ranges(ranges),
                       costs=parse_cost_names(costs), fixed=fixed, set_keys=set_keys)
    sample_x, sampled = None, []
    if method != "oat":
        sample_x, sampled = sampled_design(space, method, samples, seed)
    # a file without a name is named by its stem, as the default scenario is 'default'
    name = base.name or (os.path.splitext(os.path.basename(os.fspath(scenario)))[0]
                         if isinstance(scenario, (str, os.PathLike)) else "scenario")
    plan = SensitivityPlan(scenario, name, overrides, cmp, metric.strip(), better,
                           method, samples, seed, space, oat_vectors(space), sample_x,
                           sampled, be)
    # List the runs in a fixed order: baseline, OAT ends, samples, break-even.
    plan.add_pair(None)
    for _, _, vector in plan.oat:
        plan.add_pair(vector)
    for vector in plan.sampled:
        plan.add_pair(vector)
    if be is not None:
        for at in be.values:
            plan.add_pair(None, at)
            for vector in plan.band_vectors():
                plan.add_pair(vector, at)
    return plan


class _Ratios:
    """metric(A) / metric(B) of the plan's runs, from their summaries."""

    def __init__(self, plan: SensitivityPlan, summaries: Mapping[str, Mapping]):
        self.plan, self.summaries = plan, summaries

    def metric(self, label: str, value: str) -> float:
        if label not in self.summaries:
            raise SensitivityError(f"no summary for run {label}")
        where = f"run {label} ({self.plan.compare.key}={value})"
        return metric_value(self.summaries[label], self.plan.metric, where)

    def __call__(self, vector: Optional[Mapping], at: Optional[str] = None) -> float:
        cmp = self.plan.compare
        la, lb = self.plan.pair(vector, at)
        a, b = self.metric(la, cmp.a), self.metric(lb, cmp.b)
        if b == 0:
            raise SensitivityError(f"{spelled('--metric')} {self.plan.metric} is 0 for "
                                   f"{cmp.key}={cmp.b} in run {lb}: the ratio is undefined")
        return a / b


def _number(x: float) -> Union[int, float]:
    return int(x) if float(x).is_integer() else float(x)


def analyse(plan: SensitivityPlan, summaries: Mapping[str, Mapping]) -> dict:
    """The result of the study (what ``sensitivity.json`` holds) from its runs' summaries."""
    ratio = _Ratios(plan, summaries)
    space, better, cmp = plan.space, plan.better, plan.compare
    r0 = ratio(None)
    la, lb = plan.pair(None)
    ends = {}
    for name, end, vector in plan.oat:
        ends[(name, end)] = ratio(vector)
    varied = {n: analysis.oat_entry(space, n, r0, ends[(n, "low")], ends[(n, "high")], better)
              for n in space.names}
    result: dict = {}
    if plan.method != "oat":
        y = [ratio(v) for v in plan.sampled]
        indices = analysis.global_indices(plan.method, space, plan.sample_x, y, plan.seed)
        for name, entry in varied.items():
            entry["indices"] = indices[name]
        result["win_share"] = sum(beats(r, better) for r in y) / len(y)
        result["sampled_vectors"] = len(y)
    ranking = analysis.rank_costs(plan.method, varied)
    rank = {n: i + 1 for i, n in enumerate(ranking)}
    entries = []
    for name, (low, high) in space.ranges.items():
        cost = COSTS_BY_NAME[name]
        entry = {"name": name, "default": space.baseline[name], "low": low, "high": high,
                 "unit": cost.unit, "spread": cost.spread.kind, "varied": name in varied,
                 "overridden": name in space.overridden,
                 "range_overridden": name in space.range_overridden}
        if name in varied:
            entry.update(varied[name], rank=rank[name])
        else:
            entry.update(ratio_low=r0, ratio_high=r0, flips=False, flip_at=[], swing=0.0,
                         rank=None)
            if plan.method != "oat":
                entry["indices"] = None
        entries.append(entry)
    result.update({
        "emu_version": __version__,
        "scenario": plan.name,
        "overrides": list(plan.overrides),
        "metric": plan.metric,
        "better": better,
        "compare": {"key": cmp.key, "a": cmp.a, "b": cmp.b,
                    # the sides whose machine no kernel shipped (their baseline runs')
                    "hypothetical": [v for v, label in ((cmp.a, la), (cmp.b, lb))
                                     if hypothetical(summaries[label])]},
        "method": plan.method,
        "rank_by": analysis.RANK_BY[plan.method],
        "seed": plan.seed,
        "samples": plan.samples,
        "runs": len(plan.jobs),
        "default": {"metric_a": ratio.metric(la, cmp.a), "metric_b": ratio.metric(lb, cmp.b),
                    "ratio": r0, "a_wins": beats(r0, better),
                    # whether each side's run at the default costs settled (None: cannot tell)
                    "settled": [settled(summaries[la]), settled(summaries[lb])]},
        "costs": entries,
        "ranking": ranking,
        "flipping": [n for n in ranking if varied[n]["flips"]],
    })
    be = plan.break_even
    if be is not None:
        rows = [[ratio(v, at) for at in be.values] for v in plan.band_vectors()]
        result["break_even"] = analysis.break_even(
            be.key, [_number(x) for x in be.numbers], [ratio(None, at) for at in be.values],
            rows, better)
    return result


def run_sensitivity(scenario: Any, compare: Union[str, Sequence, Compare], *,
                    runner: Optional[Runner] = None, **options: Any) -> dict:
    """Plan, run and analyse a study (``options``: those of :func:`plan_sensitivity`).

    ``runner`` runs the jobs (default :func:`~emu.sensitivity.runner.local_runner`).
    The two baseline runs go first, alone, so that a ``metric`` the runs leave
    without a number, or at 0 for B, is refused before the others run.
    """
    return run_plan(plan_sensitivity(scenario, compare, **options), runner)


def run_plan(plan: SensitivityPlan, runner: Optional[Runner] = None) -> dict:
    """Run and analyse a planned study (:func:`run_sensitivity`'s last two steps)."""
    runner = runner or local_runner
    first = plan.jobs[:2]
    summaries = run_jobs(runner, first)
    _Ratios(plan, summaries)(None)          # the metric exists and B's is not 0
    summaries.update(run_jobs(runner, plan.jobs[2:]))
    return analyse(plan, summaries)

"""The cost vectors a study evaluates.

The **cost space** is the scenario's cost table with its plausible ranges
(:attr:`emu.costs.CostTable.ranges`): the baseline of each cost is the value
the scenario runs at (its default, or the scenario's override), and a cost is
varied over ``[low, high]``.  A scenario value outside the table's range is
kept as the baseline and the range is stretched to reach it.  A range the
study is given (``ranges``: ``--range``) is used as given, or refused: it
must be a range (low below high) of a cost the study varies, around the value
the runs use.  Not varied: costs whose range is one value
(struct layouts), the clock (the scenario's ``machine.clock_mhz``) and a cost
that the compared or swept key sets itself.

The **designs**:

``oat``
    each varied cost at its low and at its high end, the others at baseline
    (two vectors per cost);
``morris``
    ``samples`` Morris trajectories on 4 levels (``samples x (k + 1)``
    vectors for ``k`` varied costs), through SALib;
``sobol``
    Saltelli's scheme over a scrambled Sobol' sequence of ``samples`` base
    points, first and total order (``samples x (k + 2)`` vectors), through
    SALib.

Values are rounded to whole units, as every cost is.  A vector is the full
``{name: value}`` of the varied costs; :func:`vector_overrides` turns it into
the ``costs.NAME=VALUE`` overrides of the costs that differ from the baseline,
so equal vectors give equal runs.  The samples depend only on the seed.
"""

from __future__ import annotations

import warnings

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from emu.costs import COSTS, CostTable
from emu.errors import ConfigError, spelled

from emu.sensitivity.spec import COST_PREFIX, SensitivityError

__all__ = ["CostSpace", "cost_space", "oat_vectors", "sampled_design", "salib_seed",
           "vector_overrides"]

# Never varied with the costs: the scenario sets it (machine.clock_mhz).
_MACHINE_COSTS = ("clock_mhz",)


@dataclass(frozen=True)
class CostSpace:
    """The costs a study varies, their baselines and their ranges."""

    names: tuple[str, ...]                   # the varied costs, in table order
    baseline: Mapping[str, int]              # every cost -> the value the scenario runs at
    ranges: Mapping[str, tuple[int, int]]    # every cost -> (low, high), baseline inside
    overridden: frozenset                    # costs whose value the scenario overrides
    range_overridden: frozenset              # costs whose range is not the table's
    #: costs a ``--set`` of the study gives an end of (``costs.NAME.low=1``): a
    #: run sets their value inside the table (``costs.NAME.value``), where
    #: ``costs.NAME=`` would set it again as a whole, and be refused
    tables: frozenset = frozenset()

    def problem(self) -> dict:
        """The SALib problem over the varied costs."""
        return {"num_vars": len(self.names), "names": list(self.names),
                "bounds": [[float(v) for v in self.ranges[n]] for n in self.names]}


def cost_space(scenario_costs: Mapping[str, Any], clock_mhz: int,
               ranges: Optional[Mapping[str, Any]] = None,
               costs: Optional[Sequence[str]] = None,
               fixed: Sequence[str] = (), set_keys=()) -> CostSpace:
    """The cost space of a scenario whose ``[costs]`` are ``scenario_costs``.

    ``ranges``: ``{name: (low, high)}`` overrides of the table's ranges;
    ``costs``: vary only these (default: every cost with a range);
    ``fixed``: costs the study sets itself (the compared or swept key);
    ``set_keys``: the keys its ``--set`` overrides set.
    """
    try:
        table = CostTable(dict(scenario_costs, clock_mhz=clock_mhz), ranges=ranges)
    except ConfigError as err:
        raise SensitivityError(str(err)) from None
    spans = table.ranges
    wanted = set(costs) if costs is not None else {c.name for c in COSTS}
    for name in costs or ():
        _refuse_fixed(f"{spelled('--costs')} {name}", name, fixed)
    names = tuple(c.name for c in COSTS
                  if c.name in wanted and c.name not in _MACHINE_COSTS
                  and c.name not in fixed and spans[c.name][0] < spans[c.name][1])
    if not names:
        raise SensitivityError(f"{spelled('--costs')}: none of the costs asked for has a range to "
                               "vary")
    for name, (low, high) in (ranges or {}).items():
        _check_range(f"{spelled('--range')} {name}={low},{high}", name, (low, high),
                     table[name], costs, fixed)
    return CostSpace(names=names, baseline=table.to_dict(), ranges=spans,
                     overridden=frozenset(n for n in table.overrides if n != "clock_mhz"),
                     range_overridden=frozenset(table.range_overrides),
                     tables=frozenset(n for n in names if any(
                         key.startswith(f"{COST_PREFIX}{n}.") for key in set_keys)))


def _refuse_fixed(where: str, name: str, fixed: Sequence[str]) -> None:
    """Refuse to vary ``name`` when the study sets it itself or it is the clock."""
    if name in fixed:
        raise SensitivityError(f"{where}: the study sets it through {COST_PREFIX}{name}, "
                               f"it cannot vary it too")
    if name in _MACHINE_COSTS:
        raise SensitivityError(f"{where}: the clock is the scenario's machine.clock_mhz, "
                               f"not a cost to vary")


def _check_range(where: str, name: str, given: tuple, value: int,
                 costs: Optional[Sequence[str]], fixed: Sequence[str]) -> None:
    """Refuse a range the study was given that it would not use as given: one
    of a cost it does not vary, one of a single value, one without the value
    the runs use (the cost table would stretch it to that value)."""
    low, high = given
    _refuse_fixed(where, name, fixed)
    if not low < high:
        raise SensitivityError(f"{where}: LOW must be below HIGH (one value varies nothing)")
    if costs is not None and name not in costs:
        raise SensitivityError(f"{where}: {name} is not varied ({spelled('--costs')} "
                               f"{','.join(costs)})")
    if not low <= value <= high:
        raise SensitivityError(f"{where}: the range must contain {value}, the value the runs "
                               f"use at their baseline")


def oat_vectors(space: CostSpace) -> list[tuple[str, str, dict]]:
    """``(cost, "low" | "high", vector)`` for each varied cost's two ends."""
    out = []
    base = {n: space.baseline[n] for n in space.names}
    for name in space.names:
        low, high = space.ranges[name]
        out.append((name, "low", dict(base, **{name: low})))
        out.append((name, "high", dict(base, **{name: high})))
    return out


def salib_seed(seed: int, stream: int) -> int:
    """A non-zero 32-bit seed for one SALib call, spawned from the study's ``seed``.

    (SALib treats a seed of 0 as none in places.)
    """
    state = np.random.SeedSequence(int(seed), spawn_key=(int(stream),)).generate_state(1)
    return int(state[0]) or 1


def salib_sampler(method: str, who: str = ""):
    """SALib's sampler for ``method`` (``morris`` or ``sobol``); a
    SensitivityError saying how to install SALib if it is not, naming ``who``
    needs it (default ``--method METHOD``): called before anything runs by
    whatever will need it at its end."""
    try:
        if method == "morris":
            from SALib.sample import morris as sampler
        else:
            from SALib.sample import sobol as sampler
    except ImportError:
        who = who or f"{spelled('--method')} {method}"
        raise SensitivityError(f"{who} needs SALib: pip install 'emu[analysis]' "
                               f"(or pip install SALib)") from None
    return sampler


#: The Morris grid: 4 levels, the usual choice.
MORRIS_LEVELS = 4


def sampled_design(space: CostSpace, method: str, samples: int,
                   seed: int) -> tuple[np.ndarray, list[dict]]:
    """The SALib sample matrix and its vectors (rounded to whole units), in sample order."""
    sampler = salib_sampler(method)
    problem = space.problem()
    if method == "morris":
        x = sampler.sample(problem, samples, num_levels=MORRIS_LEVELS,
                           seed=salib_seed(seed, 0))
    else:
        # NOTE: SALib warns, with its own file and line, of a sample size that is
        # no power of 2; emu says so in its note instead (sobol_caution)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*power of 2", category=UserWarning)
            x = sampler.sample(problem, samples, calc_second_order=False,
                               seed=salib_seed(seed, 0))
    vectors = [{n: int(round(float(v))) for n, v in zip(space.names, row)} for row in x]
    return x, vectors


def vector_overrides(space: CostSpace, vector: Mapping[str, int]) -> list[str]:
    """``costs.NAME=VALUE`` for each cost of ``vector`` off its baseline, in table
    order (``costs.NAME.value=VALUE`` of a cost an end of whose range the
    study's ``--set`` gives: :attr:`CostSpace.tables`)."""
    return [f"{COST_PREFIX}{n}{'.value' if n in space.tables else ''}={vector[n]}"
            for n in space.names if vector[n] != space.baseline[n]]

"""From ratios to conclusions: who wins, what flips it, what matters, where it breaks even.

The ratio is ``metric(A) / metric(B)``.  With a metric where lower is better
(the default, cycles per guest access) **A beats B when the ratio is below 1**,
strictly; with ``better="higher"``, when it is above 1.  A tie is no win.

- A cost **flips** the conclusion when A's winning at one end of its range
  (the other costs at baseline) differs from A's winning at the baseline;
  ``flip_at`` is the cost value where the ratio crosses 1, interpolated
  linearly between the baseline and that end.
- **Indices** (global methods) come from SALib on the ratio: Morris' ``mu``,
  ``mu_star``, ``sigma`` and ``mu_star_conf``; Sobol's ``S1``, ``ST`` and their
  confidence half-widths (SALib's 95 % intervals).  Costs are ranked by
  ``mu_star`` (Morris), ``ST`` (Sobol') or the OAT swing
  ``|ratio_high - ratio_low|``; Sobol' shows ``S1`` beside ``ST``.  A Sobol'
  sample too small to trust (:func:`sobol_caution`) gets a note.
- The **break-even** along a numeric key with values ``v1 < ... < vn`` is the
  first crossing of the ratio through 1, interpolated linearly between the two
  values that bracket it.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, Optional

import numpy as np

from emu.errors import spelled, spelled_value
from emu.sensitivity.design import MORRIS_LEVELS, CostSpace, salib_seed

__all__ = ["beats", "break_even", "crossings", "global_indices", "interpolate_crossing",
           "oat_entry", "rank_costs", "sobol_caution", "RANK_BY", "SHOWN"]

#: The index each method ranks costs by.
RANK_BY = {"oat": "swing", "morris": "mu_star", "sobol": "ST"}
#: The indices each method's tables show, the one costs are ranked by first.
SHOWN = {"oat": ("swing",), "morris": ("mu_star",), "sobol": ("ST", "S1")}


def beats(ratio: float, better: str = "lower") -> bool:
    """Whether A beats B at this ratio (strictly)."""
    return ratio < 1.0 if better == "lower" else ratio > 1.0


def interpolate_crossing(x0: float, r0: float, x1: float, r1: float) -> float:
    """The ``x`` between ``x0`` and ``x1`` where the straight line through
    ``(x0, r0)`` and ``(x1, r1)`` reaches a ratio of 1 (``r0 != r1``)."""
    return x0 + (1.0 - r0) * (x1 - x0) / (r1 - r0)


def clean(x: Any) -> Optional[float]:
    """A JSON-safe float: None for NaN or infinity."""
    x = float(x)
    return x if math.isfinite(x) else None


def oat_entry(space: CostSpace, name: str, r0: float, r_low: float, r_high: float,
              better: str) -> dict:
    """The one-at-a-time figures of the varied cost ``name``."""
    base = space.baseline[name]
    low, high = space.ranges[name]
    wins = beats(r0, better)
    flip_at = [round(interpolate_crossing(base, r0, end, r), 3)
               for end, r in ((low, r_low), (high, r_high)) if beats(r, better) != wins]
    return {"ratio_low": r_low, "ratio_high": r_high, "flips": bool(flip_at),
            "flip_at": flip_at, "swing": abs(r_high - r_low)}


def global_indices(method: str, space: CostSpace, x: np.ndarray, y: Sequence[float],
                   seed: int) -> dict[str, dict]:
    """``name -> {index: value}`` from SALib for the sampled ratios ``y``."""
    problem = space.problem()
    y = np.asarray(y, dtype=float)
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore")       # a flat ratio gives 0/0: reported as null
        if method == "morris":
            from SALib.analyze import morris
            res = morris.analyze(problem, x, y, num_levels=MORRIS_LEVELS,
                                 seed=salib_seed(seed, 1))
            keys = ("mu", "mu_star", "sigma", "mu_star_conf")
        else:
            from SALib.analyze import sobol
            res = sobol.analyze(problem, y, calc_second_order=False,
                                seed=salib_seed(seed, 1))
            keys = ("S1", "S1_conf", "ST", "ST_conf")
    return {n: {k: clean(res[k][i]) for k in keys} for i, n in enumerate(space.names)}


def rank_costs(method: str, entries: Mapping[str, dict]) -> list[str]:
    """The varied costs, most influential first (ties in table order)."""
    key = RANK_BY[method]

    def influence(item):
        entry = item[1]
        value = entry["swing"] if key == "swing" else (entry.get("indices") or {}).get(key)
        return -(value if value is not None else 0.0)

    ordered = sorted(enumerate(entries.items()), key=lambda e: (influence(e[1]), e[0]))
    return [name for _, (name, _) in ordered]


def sobol_caution(result: dict) -> Optional[str]:
    """Why a Sobol' study's indices are not to be trusted, or None.

    ``S1`` (a cost's effect alone) can never exceed ``ST`` (its effect with
    every interaction), and the ``S1`` of all costs add up to 1 at most; a
    sample too small breaks either beyond SALib's 95 % confidence intervals,
    or leaves the intervals of the most influential cost wider than half its
    ``ST`` (too wide to rank the costs by).  None for another method, or when
    the indices hold and their intervals are narrow enough."""
    if result["method"] != "sobol":
        return None
    n = result["samples"]
    # Sobol' points keep their balance only at a power of 2 (SALib warns of it)
    balance = (f"{spelled_value('--samples', n)} is not a power of 2, which Sobol' points "
               f"need to keep their balance (use {_power_of_2(n)})" if n & (n - 1) else None)
    by_name = {c["name"]: c.get("indices") or {} for c in result["costs"]}
    indices = [(n, by_name[n]) for n in result["ranking"]
               if None not in [by_name[n].get(k) for k in ("S1", "S1_conf", "ST", "ST_conf")]]
    if not indices:
        return balance
    reasons = [f"S1 of {n} ({i['S1']:.3g} ± {i['S1_conf']:.2g}) is above its ST "
               f"({i['ST']:.3g})" for n, i in indices if i["S1"] - i["S1_conf"] > i["ST"]][:1]
    total = math.fsum(i["S1"] for _, i in indices)
    conf = math.sqrt(math.fsum(i["S1_conf"] ** 2 for _, i in indices))
    if total - conf > 1:
        reasons.append(f"the S1 add up to {total:.3g} ± {conf:.2g}, above 1")
    top, first = indices[0]
    if max(first["ST_conf"], first["S1_conf"]) > first["ST"] / 2:
        reasons.append(f"the intervals of {top}, the most influential cost, are wider than "
                       f"half its ST (ST {first['ST']:.3g} ± {first['ST_conf']:.2g}, S1 "
                       f"{first['S1']:.3g} ± {first['S1_conf']:.2g})")
    if not reasons:
        return balance
    small = (f"{spelled_value('--samples', n)} is too small for Sobol' indices to be trusted: "
             f"{'; '.join(reasons)}; raise {spelled('--samples')} (e.g. to {_power_of_2(4 * n)})")
    return small if balance is None else f"{balance}; {small}"


def _power_of_2(n: int) -> int:
    """The smallest power of 2 at or above ``n``.

    >>> _power_of_2(5), _power_of_2(64), _power_of_2(20)
    (8, 64, 32)
    """
    return 1 << max(n - 1, 0).bit_length()


def crossings(numbers: Sequence[float], ratios: Sequence[float], better: str) -> list[dict]:
    """Every crossing of the ratio through 1 between consecutive values."""
    out = []
    for i in range(len(numbers) - 1):
        w0, w1 = beats(ratios[i], better), beats(ratios[i + 1], better)
        if w0 != w1:
            at = interpolate_crossing(numbers[i], ratios[i], numbers[i + 1], ratios[i + 1])
            out.append({"at": round(at, 6),
                        "direction": "A stops winning" if w0 else "A starts winning"})
    return out


def _outcome(numbers, ratios, better) -> dict:
    found = crossings(numbers, ratios, better)
    if found:
        return {"at": found[0]["at"], "direction": found[0]["direction"], "crossings": found}
    status = "A wins throughout" if beats(ratios[0], better) else "B wins throughout"
    return {"at": None, "direction": status, "crossings": []}


def break_even(key: str, numbers: Sequence[float], default_ratios: Sequence[float],
               sampled_ratios: Sequence[Sequence[float]], better: str) -> dict:
    """The break-even along ``key`` at default costs, and its band over the sampled vectors.

    ``sampled_ratios``: one row of ratios (one per value) per sampled cost
    vector.  The band is the interval of the first crossings; the vectors
    whose ratio never crosses 1 in ``[v1, vn]`` are counted by who wins;
    ``ratios_min`` and ``ratios_max`` are the lowest and highest ratio at each
    value over the vectors.
    """
    default = _outcome(numbers, default_ratios, better)
    default["ratios"] = list(default_ratios)
    default["a_wins"] = [beats(r, better) for r in default_ratios]
    firsts, a_throughout, b_throughout = [], 0, 0
    for row in sampled_ratios:
        outcome = _outcome(numbers, row, better)
        if outcome["at"] is not None:
            firsts.append(outcome["at"])
        elif outcome["direction"] == "A wins throughout":
            a_throughout += 1
        else:
            b_throughout += 1
    columns = list(zip(*sampled_ratios))
    band = {"low": min(firsts) if firsts else None, "high": max(firsts) if firsts else None,
            "vectors": len(sampled_ratios), "crossed": len(firsts),
            "a_wins_throughout": a_throughout, "b_wins_throughout": b_throughout,
            "ratios_min": [min(c) for c in columns], "ratios_max": [max(c) for c in columns]}
    return {"key": key, "values": list(numbers), "default": default, "band": band}

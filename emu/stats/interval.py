"""The mean of a few replicates and its Student t confidence interval.

A sweep repeats each point of its grid with several seeds; a figure is then
reported as its mean over the seeds and the half-width of the two-sided 95 %
t-interval, ``t(0.975, n - 1) * s / sqrt(n)`` (``s`` the sample standard
deviation).  One replicate has no interval.

>>> round(t_quantile(0.975, 4), 4)
2.7764
>>> mean_interval([1.0, 2.0, 3.0])        # doctest: +ELLIPSIS
(3, 2.0, 2.484...)
>>> mean_interval([5.0])
(1, 5.0, None)
"""

from __future__ import annotations

import math
from typing import Iterable, Optional

__all__ = ["mean_interval", "t_cdf_two_sided", "t_quantile"]


def t_cdf_two_sided(t: float, df: int) -> float:
    """P(|T| <= t) for Student's T with ``df`` degrees of freedom (``t >= 0``).

    The finite sums of Abramowitz and Stegun 26.7.3 (odd ``df``) and 26.7.4
    (even ``df``), exact for an integer ``df``.
    """
    theta = math.atan(t / math.sqrt(df))
    c2 = math.cos(theta) ** 2
    term, total = 1.0, 1.0
    if df % 2:
        for j in range(1, (df - 1) // 2):
            term *= c2 * (2 * j) / (2 * j + 1)
            total += term
        inner = math.sin(theta) * math.cos(theta) * total if df > 1 else 0.0
        return 2 / math.pi * (theta + inner)
    for j in range(1, df // 2):
        term *= c2 * (2 * j - 1) / (2 * j)
        total += term
    return math.sin(theta) * total


def t_quantile(p: float, df: int) -> float:
    """The ``p`` quantile (``0.5 < p < 1``) of Student's t with ``df >= 1``
    degrees of freedom, by bisection on :func:`t_cdf_two_sided`."""
    if not 0.5 < p < 1 or df < 1:
        raise ValueError(f"t_quantile: need 0.5 < p < 1 and df >= 1, got p={p}, df={df}")
    target = 2 * p - 1
    lo, hi = 0.0, 1.0
    while t_cdf_two_sided(hi, df) < target:
        lo, hi = hi, 2 * hi
    for _ in range(200):
        mid = (lo + hi) / 2
        if t_cdf_two_sided(mid, df) < target:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-12 * hi:
            break
    return (lo + hi) / 2


def mean_interval(values: Iterable[float], level: float = 0.95
                  ) -> tuple[int, Optional[float], Optional[float]]:
    """(n, mean, half-width of the two-sided ``level`` t-interval) of ``values``.

    Missing values (None, NaN) are left out of n.  The mean is None when no
    value is left; the half-width is None when fewer than two are.
    """
    xs = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    n = len(xs)
    if not n:
        return 0, None, None
    mean = math.fsum(xs) / n
    if n < 2:
        return n, mean, None
    var = math.fsum((x - mean) ** 2 for x in xs) / (n - 1)
    return n, mean, t_quantile(0.5 + level / 2, n - 1) * math.sqrt(var / n)

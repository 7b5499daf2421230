"""What a sensitivity study is asked, checked before anything runs.

Every problem is one line, a :class:`SensitivityError` (an
:class:`~emu.errors.EmuError`: the command line prints it and exits with
status 2):

>>> parse_compare("kvm.strategy=shadow,direct")
Compare(key='kvm.strategy', a='shadow', b='direct')
>>> parse_break_even("vm.0.process.0.workload.pages=80,20,40").numbers
(20.0, 40.0, 80.0)
>>> parse_break_even("duration_ms=20")
Traceback (most recent call last):
...
emu.sensitivity.spec.SensitivityError: break_even duration_ms: needs at least two values, got 1
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Optional, Union

from emu.costs import cost_named
from emu.digits import float_text, int_text
from emu.errors import ConfigError, spelled
from emu.run.plan import check_distinct

__all__ = [
    "BETTER", "DEFAULT_METRIC", "DEFAULT_SAMPLES", "METHODS",
    "BreakEven", "Compare", "SensitivityError",
    "check_better", "check_method", "check_metric", "check_samples", "cost_of_key",
    "metric_value",
    "parse_break_even", "parse_compare", "parse_cost_names", "parse_ranges",
]

#: The methods: one at a time, Morris' elementary effects, Sobol' indices.
METHODS = ("oat", "morris", "sobol")
#: Morris trajectories / Sobol' base sample size when ``samples`` is not given.
DEFAULT_SAMPLES = {"morris": 10, "sobol": 64}
#: The figure compared when none is named: what the designs exist to lower.
DEFAULT_METRIC = "cycles_per_guest_access"
#: Which way the metric is better.
BETTER = ("lower", "higher")

#: The prefix of a cost's scenario key (``costs.exit_light``).
COST_PREFIX = "costs."


class SensitivityError(ConfigError):
    """A sensitivity study asked for something it cannot do (one line)."""


@dataclass(frozen=True)
class Compare:
    """``KEY=A,B``: the ratio is metric(A) / metric(B)."""

    key: str
    a: str
    b: str


@dataclass(frozen=True)
class BreakEven:
    """``KEY=v1,v2,...``: numeric values of a scenario key, in increasing order."""

    key: str
    values: tuple[str, ...]      # as given (what ``--set`` receives), sorted by number
    numbers: tuple[float, ...]


def _key_values(spec: Any, option: str, example: str) -> tuple[str, list[str]]:
    """``"KEY=v1,v2"`` or ``(key, [values])`` -> (key, [value texts])."""
    if isinstance(spec, str):
        key, sep, rest = spec.partition("=")
        values = [v.strip() for v in rest.split(",")]
        if not sep or not key.strip():
            raise SensitivityError(f"{option} expects {example}, got {spec!r}")
        if "" in values and any(values):    # a stray comma, dropped, ran another study
            raise SensitivityError(f"{option} {key.strip()}: empty value in {rest!r} (expected "
                                   f"{example})")
        return key.strip(), [v for v in values if v]
    if (isinstance(spec, Sequence) and len(spec) == 2 and isinstance(spec[0], str)
            and isinstance(spec[1], Sequence) and not isinstance(spec[1], str)):
        return spec[0].strip(), [_text(v) for v in spec[1]]
    raise SensitivityError(f"{option} expects {example}, got {spec!r}")


def _text(value: Any) -> str:
    """A value as ``--set`` takes it (``20``, not ``20.0``, for a whole number)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def cost_of_key(key: str, option: str = "") -> Optional[str]:
    """The cost a scenario key sets (``costs.NAME``), or None; an unknown cost is refused."""
    if not key.startswith(COST_PREFIX):
        return None
    name = key[len(COST_PREFIX):]
    try:
        return cost_named(name).name
    except ConfigError as err:
        where = f"{option} {key}" if option else key
        raise SensitivityError(f"{where}: not a cost or scenario key ({err})") from None


def parse_compare(spec: Union[str, Sequence]) -> Compare:
    """``"KEY=A,B"`` or ``(key, [A, B])``: exactly two different values."""
    key, values = _key_values(spec, spelled("--compare"), "KEY=A,B")
    if len(values) != 2:
        raise SensitivityError(f"{spelled('--compare')} {key}: needs exactly two values A,B, got "
                               f"{len(values)}")
    if values[0] == values[1]:
        raise SensitivityError(f"{spelled('--compare')} {key}: the two values are the same "
                               f"({values[0]})")
    try:                # two spellings of one value (800 and 8e2): one run, compared with itself
        check_distinct(f"{spelled('--compare')} {key}: ", values)
    except ConfigError as err:
        raise SensitivityError(str(err)) from None
    cost_of_key(key, spelled("--compare"))
    return Compare(key, values[0], values[1])


def parse_break_even(spec: Union[str, Sequence]) -> BreakEven:
    """``"KEY=v1,v2,..."`` or ``(key, [v1, v2, ...])``: two or more distinct numbers."""
    key, values = _key_values(spec, spelled("--break-even"), "KEY=V1,V2,...")
    if len(values) < 2:
        raise SensitivityError(f"{spelled('--break-even')} {key}: needs at least two values, got "
                               f"{len(values)}")
    pairs = []
    for text in values:
        try:
            number = float_text(text)
        except ValueError:
            raise SensitivityError(f"{spelled('--break-even')} {key}: the values must be numbers, "
                                   f"got {text!r}") from None
        if not math.isfinite(number):
            raise SensitivityError(f"{spelled('--break-even')} {key}: the values must be finite, "
                                   f"got {text!r}")
        pairs.append((number, text))
    pairs.sort()
    for (x, tx), (y, ty) in zip(pairs, pairs[1:]):
        if x == y:
            raise SensitivityError(f"{spelled('--break-even')} {key}: the value {ty} is given "
                                   "twice")
    cost_of_key(key, spelled("--break-even"))
    return BreakEven(key, tuple(t for _, t in pairs), tuple(n for n, _ in pairs))


def parse_ranges(specs: Union[None, Mapping, Sequence[str]]) -> dict[str, tuple]:
    """``["NAME=LOW,HIGH", ...]`` or ``{name: (low, high)}`` -> ``{name: (low, high)}``.

    Only the syntax is checked here, and that no cost is given twice; the
    cost table checks names and numbers (:class:`~emu.costs.CostTable`), and
    :func:`~emu.sensitivity.design.cost_space` that each range is one the
    study can use as given.
    """
    if specs is None:
        return {}
    if isinstance(specs, Mapping):
        return dict(specs)
    if isinstance(specs, str):
        specs = [specs]
    out: dict[str, tuple] = {}
    for spec in specs:
        name, values = _key_values(spec, spelled("--range"), "NAME=LOW,HIGH")
        name = name[len(COST_PREFIX):] if name.startswith(COST_PREFIX) else name
        if len(values) != 2:
            raise SensitivityError(f"{spelled('--range')} {name}: expects LOW,HIGH, got {spec!r}")
        try:
            low, high = (int_text(v) for v in values)
        except ValueError:
            raise SensitivityError(f"{spelled('--range')} {name}: LOW and HIGH must be whole "
                                   f"numbers, got {spec!r}") from None
        if low > high:              # (the cost table would refuse it, naming no option)
            raise SensitivityError(f"{spelled('--range')} {name}={low},{high}: LOW must be "
                                   "below HIGH")
        if name in out:
            raise SensitivityError(f"{spelled('--range')} {name}: given twice "
                                   f"({out[name][0]},{out[name][1]} and {low},{high}); give each "
                                   "cost once")
        out[name] = (low, high)
    return out


def parse_cost_names(names: Union[None, str, Sequence[str]]) -> Optional[list[str]]:
    """``"a,b"`` or ``["a", "b"]`` -> the cost names (each checked), or None for all."""
    if names is None:
        return None
    if isinstance(names, str):
        given = [n.strip() for n in names.split(",")]
        if "" in given and any(given):          # a stray comma: a name left out, or a typo
            raise SensitivityError(f"{spelled('--costs')}: empty cost name in {names!r} "
                                   f"(expected A,B,...)")
        names = [n for n in given if n]
    if not names:
        raise SensitivityError(f"{spelled('--costs')}: expected at least one cost name")
    try:
        out = [cost_named(n).name for n in names]
    except ConfigError as err:
        raise SensitivityError(f"{spelled('--costs')}: {err}") from None
    for name in out:
        if out.count(name) > 1:
            raise SensitivityError(f"{spelled('--costs')}: {name} is named twice")
    return out


def check_method(method: str) -> str:
    if method not in METHODS:
        raise SensitivityError(f"{spelled('--method')}: expected one of {', '.join(METHODS)}, got "
                               f"{method!r}")
    return method


def check_better(better: str) -> str:
    if better not in BETTER:
        raise SensitivityError(f"{spelled('--better')}: expected lower or higher, got {better!r}")
    return better


def check_seed(method: str, seed: Any) -> int:
    """The seed of the samples (0 when not given); ``oat`` samples nothing and
    refuses one."""
    if seed is None:
        return 0
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise SensitivityError(f"{spelled('--seed')}: expected a non-negative integer, got "
                               f"{seed!r}")
    if method == "oat":
        raise SensitivityError(f"{spelled('--seed')} {seed}: oat samples nothing (its runs are "
                               f"each cost at each end); {spelled('--seed')} is for "
                               f"{spelled('--method')} morris or sobol")
    return int(seed)


def check_samples(method: str, samples: Any) -> Optional[int]:
    """The sample size the method uses (None for ``oat``, which samples nothing
    and refuses one)."""
    if samples is not None and (isinstance(samples, bool)
                                or not isinstance(samples, numbers.Integral)
                                or samples < 1):
        raise SensitivityError(f"{spelled('--samples')}: expected a positive integer, got "
                               f"{samples!r}")
    if method == "oat":
        if samples is not None:
            raise SensitivityError(f"{spelled('--samples')} {samples}: oat samples nothing (its "
                                   f"runs are each cost at each end); {spelled('--samples')} is "
                                   f"for {spelled('--method')} morris or sobol")
        return None
    return int(samples) if samples is not None else DEFAULT_SAMPLES[method]


#: What ``--metric`` must name, said when it names something else.
METRIC_IS = ("a metric is a numeric figure of a run's summary, dotted for nested ones "
             "(e.g. cycles_per_guest_access, tlb.guest.misses)")


def _at(summary: Mapping, path: str, shape: bool = False) -> Any:
    """The node at the dotted ``path`` of a summary; in a ``shape``
    (:func:`check_metric`), None past an empty table (a histogram, whose
    buckets are the ones a run fills) or past None (a table a run makes,
    such as the window's ``halves``)."""
    node: Any = summary
    for i, part in enumerate(path.split(".")):
        if shape and (node is None or isinstance(node, Mapping) and not node):
            return None
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isascii() and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            known = ", ".join(sorted(node)) if isinstance(node, Mapping) else "none"
            at = ".".join(path.split(".")[:i]) or "the summary"
            raise SensitivityError(f"{spelled('--metric')} {path}: no {part!r} in {at} (keys: "
                                   f"{known})")
    return node


def _not_a_number(node: Any) -> Optional[str]:
    """What ``node`` is when it is not a number ('a table of 4 keys', ...), else None."""
    if isinstance(node, Mapping):
        return f"a table of {len(node)} keys ({', '.join(sorted(node))})"
    if isinstance(node, list):
        return f"a list of {len(node)}"
    if isinstance(node, bool) or not isinstance(node, (numbers.Real, type(None))):
        return f"{type(node).__name__} {str(node)!r}"
    return None


def check_metric(shape: Mapping, path: str) -> None:
    """Refuse, before anything runs, a ``--metric`` that no run's summary holds
    as a number: ``shape`` is the summary of the scenario before it runs
    (:func:`~emu.run.scenario.summary_shape`), where a figure of no accesses
    is None, which a run makes a number."""
    what = _not_a_number(_at(shape, path, shape=True))
    if what is not None:
        raise SensitivityError(f"{spelled('--metric')} {path}: {what}, not a number; {METRIC_IS}")


def metric_value(summary: Mapping, path: str, where: str) -> float:
    """The number at the dotted ``path`` of a run summary (``tlb.misses``)."""
    node = _at(summary, path)
    if node is None:                    # a figure of no event: a number in a longer run
        raise SensitivityError(f"{spelled('--metric')} {path}: {where} has no value of it "
                               f"(None: the run saw nothing it counts, such as a guest access "
                               f"for cycles_per_guest_access); lengthen duration_ms")
    what = _not_a_number(node)
    if what is not None:
        raise SensitivityError(f"{spelled('--metric')} {path}: not a number in {where} ({what}); "
                               f"{METRIC_IS}")
    value = float(node)
    if not math.isfinite(value):
        raise SensitivityError(f"{spelled('--metric')} {path}: not finite in {where} ({value})")
    return value

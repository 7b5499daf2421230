"""Run one scenario under several values of one or more keys (``emu compare``),
or once per :class:`Variant` (a label and the keys it sets: ``emu run``'s
default comparison of designs, :mod:`emu.run.designs`).

>>> from emu.run import parse_vary
>>> parse_vary("kvm.strategy=shadow,direct")
('kvm.strategy', ['shadow', 'direct'])

Several keys make the product of their values, the first key varying
slowest (as the grid of ``emu sweep``).  Each run is written into a folder
of its own, named from its label by :func:`emu.run.outdir.folder_names`
(safe and unique whatever the values are); ``comparison.json`` keeps each
run's label, values, folder and summary.
"""

from __future__ import annotations

import functools
import itertools
import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Optional

from emu.digits import plain
from emu.errors import ConfigError, spelled
from emu.params import KeyUse
from emu.params.fields import show
from emu.params.load import override_value
from emu.report.text import labelled
from emu.machine import check_guest_memory
from emu.run.files import write_json
from emu.run.outdir import Stage, folder_names
from emu.run.plan import (check_distinct, check_keys, point_error, refuse_unused,
                           split_values, value_text)
from emu.run.progress import progress_of
from emu.run.scenario import override_list, resolve, run, run_resolved
from emu.workload.traces.source import check_pipe_traces


def parse_vary(text: str) -> tuple[str, list]:
    """``key=v1,v2,...`` -> (key, [values]); ConfigError when malformed.

    Values are split at commas outside brackets and quotes (as ``--grid``);
    an empty value or a value given twice is refused.
    """
    key, sep, values = str(text).partition("=")
    key = key.strip()
    vals = split_values(values) if sep else []
    if not sep or not key or not any(vals):
        raise ConfigError(f"{spelled('--vary')} expects key=v1,v2,..., got {text!r}")
    if "" in vals:
        raise ConfigError(f"{spelled('--vary')} {key}: empty value in {values!r} (expected "
                          "key=v1,v2,...)")
    check_distinct(f"{spelled('--vary')} {key}: ", vals)
    return key, vals


@dataclass(frozen=True)
class Variant:
    """One run of a comparison: the label tables give it, the keys it sets
    (key -> value text, applied after ``--set``) and the text its folder is
    named from (:func:`~emu.run.outdir.folder_names`)."""

    label: str
    values: dict
    folder: str

    @property
    def title(self) -> str:
        """``k1=v1, k2=v2``: the run named by the values it sets."""
        return ", ".join(f"{k}={v}" for k, v in self.values.items())

    def overrides(self, overrides=()) -> list:
        """``overrides`` followed by this variant's keys."""
        return list(overrides) + [f"{k}={v}" for k, v in self.values.items()]


def variant_folders(variants) -> list:
    """The folder name of each variant's run (:func:`~emu.run.outdir.folder_names`):
    known before the runs, so that ``--out`` is checked with them first."""
    return folder_names([v.folder for v in variants])


def point_variants(keys, points) -> list:
    """The variants of ``emu compare``: one per point of the product of the
    varied ``keys``' values, labelled by its value (one key) or ``k1=v1, k2=v2``."""
    variants = [Variant("", dict(zip(keys, point)), ",".join(point)) for point in points]
    return [Variant(v.folder if len(keys) == 1 else v.title, v.values, v.folder)
            for v in variants]


@dataclass
class Comparison:
    """Runs of one scenario, one per :class:`Variant`."""

    keys: list                  # every key a variant sets, in order
    variants: list              # one Variant per run
    results: list               # one Result per variant
    #: What the labels name (``comparison.json``'s ``key``; None: the keys).
    name: Optional[str] = None

    @property
    def key(self) -> str:
        """What the runs' labels name: ``name``, else the keys varied."""
        return self.name or ", ".join(self.keys)

    @property
    def labels(self) -> list:
        """Each run's label (its variant's)."""
        return [v.label for v in self.variants]

    @property
    def folders(self) -> list:
        """Each run's folder name (:func:`variant_folders`)."""
        return variant_folders(self.variants)

    @property
    def runs(self) -> list:
        """[(label, Result)] in order."""
        return list(zip(self.labels, self.results))

    def loaded(self):
        """These runs as :func:`emu.load` reads them back from the folder they
        are written to (:class:`emu.analysis.results.Comparison`): its
        tables, frames and plots, and how a notebook shows it."""
        from emu.analysis.results import Comparison as Loaded
        values = ([{k: override_value(str(v.values.get(k, ""))) for k in self.keys}
                   for v in self.variants] if len(self.keys) > 1 else None)
        return Loaded(self.key, self.runs, values=values)

    def frames(self) -> dict:
        """Every run's frames stacked (:meth:`loaded`'s)."""
        return self.loaded().frames()

    def table(self):
        """One row per run (:meth:`loaded`'s)."""
        return self.loaded().table()

    def __repr__(self) -> str:
        return repr(self.loaded())

    def _repr_html_(self) -> str:
        return self.loaded()._repr_html_()

    def summaries(self, titled: bool = False) -> list:
        """[(label, summary)] in order (``titled``: ``k1=v1, k2=v2`` as the label), a
        machine no kernel shipped marked so in its label."""
        labels = [v.title for v in self.variants] if titled else self.labels
        return [(labelled(label, r.summary), r.summary) for label, r in zip(labels, self.results)]

    def to_json(self) -> dict:
        """What ``comparison.json`` holds: what the labels name, the keys and,
        per run, its label, the values it set, its folder and summary."""
        return {"key": self.key, "keys": list(self.keys),
                "runs": [{"value": v.label, "values": dict(v.values), "dir": folder,
                          "summary": result.summary}
                         for v, folder, result in zip(self.variants, self.folders,
                                                      self.results)]}

    def write_files(self, folder) -> None:
        """Each run into ``folder``/<its folder>, then ``comparison.json``."""
        for name, result in zip(self.folders, self.results):
            result.write_files(os.path.join(folder, name))
        write_json(os.path.join(folder, "comparison.json"), self.to_json())

    def write(self, out_dir, force: bool = False) -> None:
        """Put the comparison in ``out_dir``, replacing what was there as one set
        (refused as :meth:`emu.run.Result.write` refuses)."""
        with Stage(out_dir, "comparison", force, option="") as stage:
            self.write_files(stage.path)
            stage.commit()


def vary_points(scenario, varies, overrides=(), option="--vary") -> list:
    """The points of the product of ``varies`` (``[(key, values)]``), each
    validated before anything runs; ConfigError for a bad value (naming its
    point, as ``emu sweep`` names a grid point), a key given twice, a key
    also given with ``--set`` or a workload key that does nothing at any
    point (:func:`~emu.run.plan.refuse_unused`: one that does something at
    one point is taken).  ``option`` names ``varies`` in the messages,
    as :func:`emu.errors.spelled` takes it."""
    keys = [k for k, _ in varies]
    check_keys(keys, overrides, option)
    points = list(itertools.product(*[values for _, values in varies]))
    several = len(points) > 1       # a key that does nothing at some is judged over all
    uses = []
    for point in points:
        point_overrides = [f"{k}={v}" for k, v in zip(keys, point)]
        uses.append(KeyUse() if several else None)
        try:
            check_guest_memory(resolve(scenario, list(overrides) + point_overrides, uses[-1]))
        except ConfigError as err:
            raise point_error(err, option, point_overrides, functools.partial(
                _check_base, scenario, overrides, KeyUse() if several else None)) from None
    if several:
        refuse_unused([", ".join(f"{k}={v}" for k, v in zip(keys, point)) for point in points],
                      uses, "comparison")
    return points


def _check_base(scenario, overrides, key_use) -> None:
    """Resolve and check the scenario with ``--set`` alone, as a point is."""
    check_guest_memory(resolve(scenario, list(overrides), key_use))


def run_variants(scenario, variants, overrides=(), progress=None,
                 name: Optional[str] = None) -> Comparison:
    """Run ``scenario`` once per variant (``--set`` ``overrides`` first, then
    the variant's keys); every variant is validated before anything runs.
    The variants are those of a validated plan (:func:`vary_points`,
    :func:`emu.run.designs.default_variants`): a key that does nothing in one
    of them is not refused here."""
    scenarios = [resolve(scenario, v.overrides(overrides), KeyUse()) for v in variants]
    check_pipe_traces(scenarios)
    keys = list(dict.fromkeys(k for v in variants for k in v.values))
    runs = []
    with progress_of(progress) as progress:     # one bar over all the runs
        for i, (v, sc) in enumerate(zip(variants, scenarios), 1):
            if hasattr(progress, "next_run"):   # emu's own: which run it is
                progress.next_run(i, len(variants))
            try:
                runs.append(run_resolved(sc, progress))
            except ConfigError as err:      # found as the machine is built: name the run
                raise ConfigError(f"{v.label if name else v.title}: {err}") from None
    return Comparison(keys, list(variants), runs, name)


def run_comparison(scenario, varies, overrides=(), progress=None) -> Comparison:
    """Run ``scenario`` at every point of the product of ``varies``: ``(key,
    values)`` pairs, or ``"key=v1,v2"`` texts as ``--vary`` takes them."""
    return _run_comparison(scenario, varies, overrides, progress, "--vary")


def _run_comparison(scenario, varies, overrides, progress, option) -> Comparison:
    """:func:`run_comparison`, its messages naming ``varies`` as ``option``
    (:func:`emu.errors.spelled`): ``compare``'s caller gave a key, not ``varies``."""
    if isinstance(varies, str):
        varies = [varies]
    if isinstance(varies, dict) or not isinstance(varies, Iterable):
        raise ConfigError(f"varies: expected (key, values) pairs or 'key=v1,v2' texts, got "
                          f"{show(varies)}")
    varies = list(varies)
    if not varies:
        raise ConfigError("varies: no key to vary (expected (key, values) pairs or "
                          "'key=v1,v2' texts)")
    overrides = override_list(overrides)        # one override as a string is one override
    varies = [parse_vary(v) if isinstance(v, str) else v for v in varies]
    if not all(isinstance(v, (tuple, list)) and len(v) == 2 and isinstance(v[0], str)
               for v in varies):
        raise ConfigError("varies: expected (key, values) pairs or 'key=v1,v2' texts")
    # a pair's values as --vary's texts, refused as it refuses them (compare())
    checked = []
    for k, values in varies:
        try:
            checked.append((k, value_texts(values)))
        except ConfigError as err:
            raise ConfigError(f"varies {k}: {err}") from None
    varies = checked
    keys = [k for k, _ in varies]
    points = vary_points(scenario, varies, overrides, option)
    return run_variants(scenario, point_variants(keys, points), overrides, progress)


def compare(scenario, key: str, values: list, overrides=(), progress=None) -> list:
    """[(value, Result)] for each value of ``key`` (every run validated first).

    ``values``: a list of values, each a string as ``--vary`` takes it or a
    number or bool (``[1, 2]`` is ``["1", "2"]``); ``overrides``: ``KEY=VALUE``
    strings, or one.  Anything else is refused (ConfigError, one line)."""
    if not isinstance(key, str) or not key.strip():
        raise ConfigError(f"key: expected a scenario key such as 'kvm.strategy', got {key!r}")
    return _run_comparison(scenario, [(key, value_texts(values))], override_list(overrides),
                           progress, ("--vary", "key")).runs


def value_texts(values) -> list:
    """``values`` as the texts of ``--vary``: a list of strings, numbers or
    bools, at least one; a string alone is refused (it is not split)."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise ConfigError(f"values: expected a list of values such as ['shadow', 'direct'], "
                          f"got {show(values)}")
    if isinstance(values, dict):
        raise ConfigError(f"values: expected a list of values such as ['shadow', 'direct'], "
                          f"got a dict {show(values)} (its keys would run, its values be "
                          f"ignored)")
    out = []
    for v in map(plain, values):
        if not isinstance(v, (str, int, float)):       # bool is an int
            raise ConfigError(f"values: expected strings or numbers, got {show(v)}")
        if isinstance(v, str) and not v.strip():
            raise ConfigError(f"values: value {len(out) + 1} is empty ({v!r}): it names no run")
        out.append(v if isinstance(v, str) else value_text(v))
    if not out:
        raise ConfigError("values: no value to compare")
    check_distinct("values: ", out, what="")       # as --vary refuses them: the same run twice
    return out


def write_comparison(out_dir, key: str, runs: list, force: bool = False) -> None:
    """Write ``runs`` ([(value, Result)] of ``key``, at least one) as a
    comparison into ``out_dir``."""
    if not isinstance(key, str) or not key.strip():
        raise ConfigError(f"key: expected what the runs' labels name, such as "
                          f"'kvm.strategy', got {show(key)}")
    if isinstance(runs, (str, bytes, dict)) or not isinstance(runs, Iterable):
        raise ConfigError(f"runs: expected [(value, Result)], as compare gives them, got "
                          f"{show(runs)}")
    runs = list(runs)
    if not runs:
        raise ConfigError("runs: no run to write")
    if not all(isinstance(r, (tuple, list)) and len(r) == 2 and hasattr(r[1], "summary")
               for r in runs):
        raise ConfigError("runs: expected [(value, Result)], as compare gives them")
    labels = [value_text(value) for value, _ in runs]
    if "" in labels:
        raise ConfigError(f"runs: run {labels.index('') + 1} has an empty label (each run "
                          f"needs a value to be named by)")
    check_distinct("runs: ", labels, what="")
    comparison_of(key, [(label, r) for label, (_, r) in zip(labels, runs)]).write(out_dir, force)


def comparison_of(key: str, runs: list) -> Comparison:
    """The :class:`Comparison` of ``runs`` ([(value, Result)]) of one ``key``."""
    return Comparison([key], point_variants([key], [(label,) for label, _ in runs]),
                      [r for _, r in runs])

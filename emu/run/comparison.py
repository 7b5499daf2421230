"""Run one scenario under several values of one or more keys (``emu compare``).

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

import itertools
import os
import re
from dataclasses import dataclass

from emu.params import default_scenario
from emu.errors import ConfigError
from emu.kvm import strategies
from emu.run.files import write_json
from emu.run.outdir import Stage, folder_names
from emu.run.plan import split_values
from emu.run.scenario import resolve, run


def parse_vary(text: str) -> tuple[str, list]:
    """``key=v1,v2,...`` -> (key, [values]); ConfigError when malformed.

    Values are split at commas outside brackets and quotes (as ``--grid``);
    an empty value or a value given twice is refused.
    """
    key, sep, values = str(text).partition("=")
    key = key.strip()
    vals = split_values(values) if sep else []
    if not sep or not key or not any(vals):
        raise ConfigError(f"--vary expects key=v1,v2,..., got {text!r}")
    if "" in vals:
        raise ConfigError(f"--vary {key}: empty value in {values!r} (expected key=v1,v2,...)")
    for v in vals:
        if vals.count(v) > 1:
            raise ConfigError(f"--vary {key}: value {v!r} given twice")
    return key, vals


@dataclass
class Comparison:
    """Runs of one scenario at each point of the product of ``keys``' values."""

    keys: list                  # the varied keys, in --vary order
    points: list                # one tuple of value texts per run, the first key slowest
    results: list               # one Result per point

    @property
    def labels(self) -> list:
        """Each run's label: its value (one key), or ``k1=v1, k2=v2``."""
        if len(self.keys) == 1:
            return [p[0] for p in self.points]
        return [self.title(p) for p in self.points]

    def title(self, point) -> str:
        """``k1=v1, k2=v2``: what a table calls the run at ``point``."""
        return ", ".join(f"{k}={v}" for k, v in zip(self.keys, point))

    @property
    def folders(self) -> list:
        """Each run's folder name (:func:`~emu.run.outdir.folder_names`)."""
        return folder_names(self.labels if len(self.keys) == 1
                            else [",".join(p) for p in self.points])

    @property
    def runs(self) -> list:
        """[(label, Result)] in order."""
        return list(zip(self.labels, self.results))

    def summaries(self, titled: bool = False) -> list:
        """[(label, summary)] in order (``titled``: ``k1=v1, k2=v2`` as the label)."""
        labels = [self.title(p) for p in self.points] if titled else self.labels
        return [(label, r.summary) for label, r in zip(labels, self.results)]

    def to_json(self) -> dict:
        """What ``comparison.json`` holds: the keys and, per run, its label,
        values, folder and summary."""
        return {"key": ", ".join(self.keys), "keys": list(self.keys),
                "runs": [{"value": label, "values": dict(zip(self.keys, point)), "dir": folder,
                          "summary": result.summary}
                         for label, point, folder, result in zip(self.labels, self.points,
                                                                 self.folders, self.results)]}

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


def vary_points(scenario, varies, overrides=()) -> list:
    """The points of the product of ``varies`` (``[(key, values)]``), each
    validated before anything runs; ConfigError for a bad value, a key given
    twice or a key also given with ``--set``."""
    keys = [k for k, _ in varies]
    set_keys = {str(o).partition("=")[0].strip() for o in overrides}
    for k in keys:
        if keys.count(k) > 1:
            raise ConfigError(f"--vary {k}: the key is given twice")
        if k in set_keys:
            raise ConfigError(f"--vary {k}: the key is also given with --set")
    points = list(itertools.product(*[values for _, values in varies]))
    for point in points:
        resolve(scenario, _overrides(keys, point, overrides))
    return points


def _overrides(keys, point, overrides) -> list:
    return list(overrides) + [f"{k}={v}" for k, v in zip(keys, point)]


def run_comparison(scenario, varies, overrides=(), progress=None) -> Comparison:
    """Run ``scenario`` at every point of the product of ``varies``."""
    keys = [k for k, _ in varies]
    points = vary_points(scenario, varies, overrides)
    return Comparison(keys, points, [run(scenario, _overrides(keys, p, overrides), progress)
                                     for p in points])


def compare(scenario, key: str, values: list, overrides=(), progress=None) -> list:
    """[(value, Result)] for each value of ``key`` (every run validated first)."""
    return run_comparison(scenario, [(key, list(values))], overrides, progress).runs


def write_comparison(out_dir, key: str, runs: list, force: bool = False) -> None:
    """Write ``runs`` ([(value, Result)] of ``key``) as a comparison into ``out_dir``."""
    comparison_of(key, runs).write(out_dir, force)


def comparison_of(key: str, runs: list) -> Comparison:
    """The :class:`Comparison` of ``runs`` ([(value, Result)]) of one ``key``."""
    return Comparison([key], [(label,) for label, _ in runs], [r for _, r in runs])



#: What ``emu run`` without FILE compares on the default scenario.
DEFAULT_DESIGNS = ("shadow", "direct", "direct-save-on-switch")


def _sets_strategy(override: str) -> bool:
    key, _, value = str(override).partition("=")
    key = key.strip()
    return key == "kvm.strategy" or (key == "kvm" and re.search(r"\bstrategy\s*=", value))


def default_designs(overrides=()) -> tuple[list, list, str]:
    """What ``emu run`` without FILE compares: ``(designs, overrides, note)``.

    Every override applies to every design (a bad key or value is refused
    here, naming the choices).  One that sets ``kvm.strategy`` narrows the
    comparison to that design (and is taken out of the overrides the
    comparison varies over).  Of :data:`DEFAULT_DESIGNS`, those the chosen core
    cannot run are left out; ``note`` says which and why ("" if none).
    """
    overrides = list(overrides)
    base = resolve(default_scenario(), overrides)
    if any(_sets_strategy(o) for o in overrides):
        return ([base.kvm.strategy],
                [o for o in overrides if str(o).partition("=")[0].strip() != "kvm.strategy"], "")
    core = base.machine.core
    # a core whose tlbwe ignores the index cannot run the designs that need one
    hardware = base.machine.tlb_index == "hardware"
    runnable = [d for d in strategies.allowed_on(core)
                if not (hardware and strategies.get(d).needs_index)]
    left_out = [d for d in DEFAULT_DESIGNS if d not in runnable]
    designs = [d for d in DEFAULT_DESIGNS if d not in left_out]
    if not designs:
        raise ConfigError(strategies.refusal(left_out[0], core))
    note = ""
    if left_out:
        where = f"the {core} core" + (" with machine.tlb_index = 'hardware'" if hardware else "")
        note = (f"{' and '.join(left_out)} left out: {where} cannot run "
                f"{'them' if len(left_out) > 1 else 'it'} (its designs: "
                f"{', '.join(runnable)}; --set kvm.strategy=NAME runs one)")
    return designs, overrides, note

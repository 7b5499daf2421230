"""The plan of a sweep: a scenario, a grid of values and seeds, listed as runs.

>>> from emu.run.plan import parse_grid
>>> parse_grid("kvm.strategy=shadow,direct")
('kvm.strategy', ['shadow', 'direct'])

:func:`plan_sweep` validates every run's configuration and lists the runs in
grid order (the first grid key varies slowest, the seed fastest); it writes
nothing.  A run's id (:func:`run_id`) is a stable hash of the scenario's bytes
and the run's overrides, and replicate ``i``'s seed (:func:`derive_seed`) is
spawned from the scenario's seed, the same at every point of the grid.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
from dataclasses import dataclass, field
from typing import Iterable, Optional, Sequence

import numpy as np

from emu import __version__
from emu.digits import plain
from emu.params import KeyUse, Scenario, scenario_from_dict, scenario_to_dict
from emu.params.fields import show
from emu.params.load import override_value, read_scenario_file, scenario_dir
from emu.errors import ConfigError, check_working_folder, spelled
from emu.machine import check_guest_memory
from emu.workload.traces.source import check_pipe_traces, trace_workloads

_ID_VERSION = 1
#: Replicates of one grid point (``--seeds``), and runs of one sweep, at most:
#: planning lists every run before the first starts.
MAX_SEEDS = 100_000
MAX_RUNS = 1_000_000


def split_values(text: str) -> list[str]:
    """Split ``v1,v2,...`` at top-level commas (not inside [], {} or quotes)."""
    out, cur, depth, quote, escape = [], [], 0, None, False
    for ch in text:
        if quote:
            if escape:
                escape = False
            elif ch == "\\" and quote == '"':
                escape = True
            elif ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            out.append("".join(cur).strip())
            cur = []
            continue
        cur.append(ch)
    out.append("".join(cur).strip())
    return out


def parse_grid(spec) -> tuple[str, list[str]]:
    """``"key=v1,v2,..."`` (or ``(key, [values])``) -> ``(key, [value texts])``.

    Values are split at commas outside brackets and quotes, so
    ``costs.x=[1,2],[3,4]`` has two values.  Raises :class:`ConfigError`.
    """
    if isinstance(spec, str):
        key, sep, values = spec.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"{spelled('--grid')} expects KEY=V1,V2,... (e.g. "
                              f"kvm.strategy=shadow,direct), got {spec!r}")
        vals = split_values(values)
    else:
        try:
            key, vals = spec
        except (TypeError, ValueError):
            raise ConfigError(f"grid: expected 'KEY=V1,V2,...' or (key, values), got {spec!r}") \
                from None
        key = str(key).strip()
        if isinstance(vals, (str, bytes)) or not isinstance(vals, Iterable):
            vals = [vals]
        vals = [value_text(v) for v in vals]
        if not key:
            raise ConfigError(f"grid: empty key in {spec!r}")
    if not vals or any(v == "" for v in vals):
        raise ConfigError(f"{spelled('--grid')} {key}: empty value in "
                          f"{spec if isinstance(spec, str) else vals!r} (expected KEY=V1,V2,...)")
    check_distinct(f"{spelled('--grid')} {key}: ", vals)
    return key, vals


def _value_key(text: str) -> tuple:
    """What a value text sets, as a key that two texts share when they set
    the same value (``1``, ``+1`` and ``1.0``; ``0.5`` and ``5e-1``; ``[]``
    and ``[ ]``; a table's keys in any order)."""
    return _canonical(override_value(text))


def _canonical(v) -> tuple:
    if isinstance(v, bool):
        return ("bool", v)
    if isinstance(v, (int, float)):
        return ("number", v)
    if isinstance(v, list):
        return ("list", tuple(_canonical(x) for x in v))
    if isinstance(v, dict):
        return ("table", tuple(sorted((str(k), _canonical(x)) for k, x in v.items())))
    return ("text", str(v))


def check_distinct(where: str, texts: list, what: str = "value ") -> None:
    """Refuse (ConfigError) two value texts that set the same value: their
    runs would be the same run, counted twice (a sweep's "2 seeds" of one)."""
    seen: dict = {}
    for i, t in enumerate(texts):
        j = seen.setdefault(_value_key(t), i)      # (a nan is no value twice: it is refused
        if j != i:                                  # later, as no finite number)
            first = texts[j]
            if first == t:
                raise ConfigError(f"{where}{what}{t!r} given twice")
            raise ConfigError(f"{where}{first!r} and {t!r} are the same value")


def value_text(v) -> str:
    """A Python value as the text ``--set`` takes (TOML-ish)."""
    v = plain(v)
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    return str(v).strip()


def _parse_value(text: str):
    """The TOML value of ``text`` if it is a scalar one (as an override reads
    it: :func:`~emu.params.load.override_value`), else the text itself."""
    v = override_value(text)
    return v if isinstance(v, (bool, int, float, str)) else text


def _typed_column(texts: list[str]) -> tuple[str, list]:
    """(arrow-ish type name, values) for one grid column: bool, int, float or str."""
    vals = [_parse_value(t) for t in texts]
    if all(isinstance(v, bool) for v in vals):
        return "bool", vals
    if all(isinstance(v, int) and not isinstance(v, bool) for v in vals):
        if all(-2**63 <= v < 2**63 for v in vals):
            return "int", vals
        return "str", list(texts)
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vals):
        return "float", [float(v) for v in vals]
    return "str", [v if isinstance(v, str) else t for v, t in zip(vals, texts)]


def derive_seed(root: int, index: int) -> int:
    """Replicate ``index``'s seed, spawned from ``root`` (stable for any N)."""
    return int(np.random.SeedSequence(int(root), spawn_key=(int(index),)).generate_state(1)[0])


def run_id(scenario_sha256: str, overrides: Sequence[str], traces: Sequence[str] = ()) -> str:
    """The stable id of a run: a hash of the scenario's bytes, its overrides and
    the identity of each trace file it reads (:func:`trace_files`), so that a
    run over a trace since rewritten is not taken for done."""
    fields = {"v": _ID_VERSION, "scenario": scenario_sha256, "overrides": list(overrides)}
    if traces:
        fields["traces"] = list(traces)
    text = json.dumps(fields, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def trace_files(sc: Scenario) -> list:
    """``size mtime`` of each trace file ``sc`` reads, in the order of their
    paths: what tells a trace rewritten since a run read it (the path itself is
    in the scenario, relative to it; a file that cannot be read is left to its
    reader, which says what is wrong with it)."""
    out = {}
    for w, _ in trace_workloads(sc):
        try:
            st = os.stat(w.path)
        except OSError:
            continue
        out[w.path] = f"{st.st_size} {st.st_mtime_ns}"
    return [out[p] for p in sorted(out)]


@dataclass(frozen=True)
class Run:
    """One run of a sweep, in grid order (``index``)."""

    index: int
    id: str
    overrides: tuple           # --set, then the grid's, then seed= (when --seeds)
    grid: tuple                # ((key, value text), ...) in --grid order
    replicate: int
    seed: int

    @property
    def label(self) -> str:
        point = ", ".join(f"{k}={v}" for k, v in self.grid)
        return f"run {self.id} ({point + ', ' if point else ''}seed {self.seed})"


@dataclass
class SweepPlan:
    """A validated sweep: the scenario, the grid, the seeds and the runs."""

    scenario_path: Optional[str]
    scenario_sha256: str
    scenario_data: dict        # the raw TOML data, as the workers get it
    base_dir: str
    overrides: list
    grid: list                 # [(key, [value texts])]
    seeds: Optional[int]
    root_seed: int
    runs: list
    columns: dict = field(default_factory=dict)   # grid key -> (type, {text: value})
    trace_paths: tuple = ()    # the trace files the runs read, each once

    def to_json(self) -> dict:
        """The plan as ``sweep.json`` holds it (the scenario's config after ``--set``)."""
        base = scenario_to_dict(scenario_from_dict(self.scenario_data, self.overrides,
                                                   base_dir=self.base_dir,
                                                   key_use=KeyUse()))  # as plan_sweep
        return {
            "emu_version": __version__,
            "scenario": {"path": self.scenario_path, "sha256": self.scenario_sha256,
                         "config": base},
            "overrides": list(self.overrides),
            "grid": [{"key": k, "values": list(v)} for k, v in self.grid],
            "seeds": {"count": self.seeds, "root": self.root_seed,
                      "values": list(dict.fromkeys(r.seed for r in self.runs))},
            "runs": [{"index": r.index, "id": r.id, "dir": f"runs/{r.id}",
                      "grid": {k: v for k, v in r.grid}, "replicate": r.replicate,
                      "seed": r.seed, "overrides": list(r.overrides)} for r in self.runs],
        }


def _as_json(value):
    """A value of a scenario's dict that JSON has no type for, as the scenario
    reads it: a path (``Path("t.npz")``) as its text, a numpy scalar as the
    Python number it holds; TypeError for any other."""
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    held = plain(value)
    if held is value:
        raise TypeError(f"{type(value).__name__} is not JSON")
    return held


def _load_scenario_source(scenario) -> tuple[Optional[str], bytes, dict, str]:
    """(path, bytes hashed for run ids, raw data, base_dir) of a path, dict or Scenario."""
    if isinstance(scenario, (Scenario, dict)):
        data = scenario_to_dict(scenario) if isinstance(scenario, Scenario) else dict(scenario)
        base_dir = scenario.base_dir if isinstance(scenario, Scenario) else os.getcwd()
        try:
            content = json.dumps(data, sort_keys=True, default=_as_json).encode("utf-8")
        except (TypeError, ValueError):
            raise ConfigError("scenario: expected JSON-like data") from None
        return None, content, data, base_dir
    path, content, data = read_scenario_file(scenario)
    return os.path.abspath(path), content, data, scenario_dir(path)


def overridden_keys(overrides) -> set:
    """The keys the ``KEY=VALUE`` texts ``overrides`` (``--set``) set."""
    return {str(o).partition("=")[0].strip() for o in overrides}


def check_keys(keys: list, overrides, option: str | tuple) -> None:
    """ConfigError (one line) for a key of a grid or a comparison (``keys``,
    given with ``option``, as :func:`emu.errors.spelled` takes it) given
    twice, or also set by ``overrides``: which value would hold is not known."""
    for k in keys:
        if keys.count(k) > 1:
            raise ConfigError(f"{spelled(option)} {k}: the key is given twice")
    set_keys = overridden_keys(overrides)
    for k in keys:
        if k in set_keys:
            raise ConfigError(f"{spelled(option)} {k}: the key is also given with "
                              f"{spelled('--set')}")


def point_error(err: ConfigError, option: str | tuple, point: Sequence,
                base) -> ConfigError:
    """The error ``err`` of a plan's point (``point``: its ``KEY=VALUE``
    texts, set by ``option``), named by the point; or as it is, if the
    scenario with ``--set`` alone has it too (``base()`` resolves that):
    then it is the scenario's error, whatever the point sets, and naming
    the point would blame its values."""
    try:
        base()
    except ConfigError as base_err:
        if str(base_err) == str(err):
            return ConfigError(str(err))
    return ConfigError(f"{spelled(option)} {', '.join(point)}: {err}")


def refuse_unused(points: list, uses: list, plan: str) -> None:
    """Refuse (ConfigError, one line) a workload key set where it does nothing
    at a point of a plan of several runs, and that does something at none of
    them: ``uses[i]`` is the :class:`~emu.params.KeyUse` of the point
    ``points[i]`` (the text of the values it sets), ``plan`` names the plan
    ("comparison", "sweep").  A key that does something at one point at
    least is part of what the plan compares (``zipf_s`` where
    ``distribution`` varies), and is accepted."""
    used = set().union(*(use.used for use in uses))
    for point, use in zip(points, uses):
        for err in use.unused:
            if err.key not in used:
                raise ConfigError(f"{err.key}: it does nothing at any point of the {plan} "
                                  f"(at {point}: {err.why}); {err.advice}")


def override_list(overrides) -> list:
    """``overrides``: KEY=VALUE strings, or one string (not split into letters)."""
    if isinstance(overrides, str):
        return [overrides]
    if not isinstance(overrides, Iterable):
        raise ConfigError(f"overrides: expected KEY=VALUE strings, got {show(overrides)}")
    return list(overrides)


def plan_sweep(scenario, grids=(), seeds: Optional[int] = None, overrides=()) -> SweepPlan:
    """Validate a sweep and list its runs in grid order; writes nothing.

    ``grids``: ``"key=v1,v2"`` strings, ``(key, values)`` pairs or a dict
    ``{key: values}``.  Every run's configuration is validated here; the first
    bad one raises :class:`ConfigError` naming the key (and the grid point).
    A workload key that does nothing at some points is taken if it does
    something at one (:func:`refuse_unused`).
    """
    check_working_folder()
    if isinstance(grids, dict):
        grids = list(grids.items())
    elif isinstance(grids, str):
        grids = [grids]
    elif not isinstance(grids, Iterable):
        raise ConfigError(f"grids: expected 'key=v1,v2' texts, (key, values) pairs or a dict, "
                          f"got {type(grids).__name__} {grids!r:.60}")
    grid = [parse_grid(g) for g in grids]
    overrides = [str(o) for o in override_list(overrides)]
    keys = [k for k, _ in grid]
    check_keys(keys, overrides, "--grid")
    if seeds is not None:
        seeds = plain(seeds)
        if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
            raise ConfigError(f"{spelled('--seeds')}: expected a positive integer, got {seeds!r}")
        if seeds > MAX_SEEDS:
            raise ConfigError(f"{spelled('--seeds')}: at most {MAX_SEEDS:,} replicates a point, "
                              f"got {seeds:,}")
        if "seed" in keys:
            raise ConfigError(f"{spelled('--grid')} seed: cannot vary the seed with "
                              f"{spelled('--seeds')} too ({spelled('--seeds')} N spawns the seeds "
                              "from the scenario's seed)")

    n_runs = math.prod(len(vals) for _, vals in grid) * (seeds or 1)
    if n_runs > MAX_RUNS:
        raise ConfigError(f"the sweep has {n_runs:,} runs (the product of the grid's "
                          f"values{' and ' + spelled('--seeds') if seeds else ''}), at most "
                          f"{MAX_RUNS:,}")
    path, content, data, base_dir = _load_scenario_source(scenario)
    points = list(itertools.product(*[[(k, v) for v in vals] for k, vals in grid]))
    # a key that does nothing at some runs of several is judged over them all
    several = len(points) > 1
    try:        # --set alone: sweep.json records it as the sweep's scenario
        base = scenario_from_dict(data, overrides, base_dir=base_dir,
                                  key_use=KeyUse() if several else None)
    except ConfigError as err:
        try:                    # the grid sets what is wrong: say why it is refused
            scenario_from_dict(data, overrides + [f"{k}={v}" for k, v in points[0]],
                               base_dir=base_dir, key_use=KeyUse() if several else None)
        except ConfigError:
            raise err from None
        raise ConfigError(f"{err} (the scenario with {spelled('--set')} alone must be valid "
                          f"too, whatever {spelled('--grid')} sets: the sweep records it as "
                          "its scenario)") from None
    root = base.seed
    sha = hashlib.sha256(content).hexdigest()
    replicate_seeds = [derive_seed(root, i) for i in range(seeds)] if seeds else [None]

    # a run's id is the same whatever the order of the --grid options (the
    # sweep that lists them otherwise is the same sweep, and resumes), unless
    # one key is inside another's value, where the order is part of the run
    independent = not any(a != b and b.startswith(a + ".") for a in keys for b in keys)
    runs, uses, paths = [], [], {}
    read_by = []                # each run's scenario, for the traces it reads
    for point in points:
        point_overrides = [f"{k}={v}" for k, v in point]
        named = [f"{k}={v}" for k, v in (sorted(point) if independent else point)]
        uses.append(KeyUse() if several else None)
        try:
            point_cfg = scenario_from_dict(data, overrides + point_overrides, base_dir=base_dir,
                                           key_use=uses[-1])
            check_guest_memory(point_cfg)       # found otherwise as its run starts
        except ConfigError as err:
            raise point_error(err, "--grid", point_overrides,
                              lambda: check_guest_memory(base)) from None
        traces = trace_files(point_cfg)
        read_by += [point_cfg] * len(replicate_seeds)
        paths.update((w.path, None) for w, _ in trace_workloads(point_cfg))
        for i, seed in enumerate(replicate_seeds):
            # (a spawned seed is a 64-bit integer, which every scenario takes)
            seeded = [f"seed={seed}"] if seed is not None else []
            ov = overrides + point_overrides + seeded
            runs.append(Run(index=len(runs), id=run_id(sha, overrides + named + seeded, traces),
                            overrides=tuple(ov),
                            grid=tuple(point), replicate=i,
                            seed=point_cfg.seed if seed is None else seed))
    if several:
        refuse_unused([", ".join(f"{k}={v}" for k, v in point) for point in points], uses,
                      "sweep")
    check_pipe_traces(read_by)                # every run reads its point's traces
    columns = {}
    for k, vals in grid:
        kind, typed = _typed_column(vals)
        columns[k] = (kind, dict(zip(vals, typed)))
    return SweepPlan(path, sha, data, base_dir, overrides, grid, seeds, root, runs, columns,
                     tuple(paths))



"""Run one scenario under several values of a key (``emu compare``).

>>> from emu.run import parse_vary
>>> parse_vary("kvm.strategy=shadow,direct")
('kvm.strategy', ['shadow', 'direct'])
"""

from __future__ import annotations

import os

from emu.errors import ConfigError
from emu.run.files import check_output_dir, write_json
from emu.run.scenario import resolve, run


def parse_vary(text: str) -> tuple[str, list]:
    """``key=v1,v2,...`` -> (key, [values]); ConfigError when malformed."""
    key, sep, values = str(text).partition("=")
    vals = [v.strip() for v in values.split(",") if v.strip()]
    if not sep or not key.strip() or not vals:
        raise ConfigError(f"--vary expects key=v1,v2,..., got {text!r}")
    return key.strip(), vals


def compare(scenario, key: str, values: list, overrides=(), progress=None) -> list:
    """[(label, Result)] for each value of ``key`` (every run validated first)."""
    for v in values:                  # refuse a bad value before anything runs
        resolve(scenario, list(overrides) + [f"{key}={v}"])
    return [(v, run(scenario, list(overrides) + [f"{key}={v}"], progress)) for v in values]


def write_comparison(out_dir, key: str, runs: list) -> None:
    """Each run under DIR/<value>/, and DIR/comparison.json with every summary."""
    check_output_dir(out_dir, ["comparison.json"])
    for label, result in runs:
        check_output_dir(os.path.join(out_dir, _safe(label)), result.files())
    for label, result in runs:
        result.write(os.path.join(out_dir, _safe(label)))
    write_json(os.path.join(out_dir, "comparison.json"), comparison_json(key, runs))


def comparison_json(key: str, runs: list) -> dict:
    """What ``comparison.json`` holds: the key and, per value, its summary."""
    return {"key": key, "runs": [{"value": label, "summary": r.summary} for label, r in runs]}


def _safe(label: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in str(label))

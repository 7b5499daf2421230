"""Running emu: one scenario, a comparison, a sweep, one TLB over a trace.

>>> from emu.run import run
>>> from emu.params import default_scenario
>>> result = run(default_scenario(), overrides=["duration_ms=1"])
>>> result.summary["cycles_per_guest_access"] > 1
True

The modules, one job each:

- :mod:`emu.run.scenario` -- :func:`run` one scenario into a :class:`Result`
  (``emu run``); :func:`resolve` a Scenario, dict or TOML path with ``--set``
  overrides; :func:`summary_shape`, the keys a run's summary will have;
- :mod:`emu.run.comparison` -- :func:`compare` one scenario under several
  values of a key, or :func:`run_comparison` under the product of several
  keys' values (``emu compare``), or once per :class:`~emu.run.comparison.Variant`;
- :mod:`emu.run.designs` -- what ``emu run`` without FILE compares: the 440
  designs as KVM shipped them, each labelled with its commit, and the proposal;
- a sweep (``emu sweep``): :mod:`emu.run.sweep` (:func:`run_sweep`),
  :mod:`emu.run.plan` (grid x seeds -> runs), :mod:`emu.run.table` (the
  results table), :mod:`emu.run.executors` (in process, local processes,
  Dask: one loop), :mod:`emu.run.resume` (the output directory);
- :mod:`emu.run.tlb` -- one TLB over a trace, no virtualization (``emu tlb``);
- :mod:`emu.run.progress`, :mod:`emu.run.files` (atomic result files) and
  :mod:`emu.run.outdir` (output folders: checked first, replaced as one set).
"""

import importlib

# NOTE: the names are loaded on first use (PEP 562): ``emu tlb`` needs only
# emu.run.tlb, and importing the machine, SimPy and the sweep machinery
# would be most of its start-up time.
#: every public name, and the module of this package that defines it
_EXPORTS = {
    "Result": "scenario", "resolve": "scenario", "run": "scenario",
    "summary_shape": "scenario",
    "Comparison": "comparison", "compare": "comparison", "parse_vary": "comparison",
    "run_comparison": "comparison", "write_comparison": "comparison",
    "METRICS": "table", "Run": "plan", "SweepPlan": "plan", "SweepError": "executors",
    "SweepInterrupted": "sweep", "derive_seed": "plan", "execute_run": "executors",
    "parse_grid": "plan", "plan_sweep": "plan", "read_table": "table", "run_id": "plan",
    "run_sweep": "sweep", "sweep_throughput": "sweep",
    "TLBSimConfig": "tlb", "simulate_arrays": "tlb", "simulate_trace": "tlb",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'emu.run' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"emu.run.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list:
    return sorted(set(globals()) | set(__all__))

"""Running emu: one scenario, a comparison, a sweep, one TLB over a trace.

>>> from emu.run import run
>>> from emu.params import default_scenario
>>> result = run(default_scenario(), overrides=["duration_ms=1"])
>>> result.summary["cycles_per_guest_access"] > 1
True

The modules, one job each:

- :mod:`emu.run.scenario` -- :func:`run` one scenario into a :class:`Result`
  (``emu run``); :func:`resolve` a Scenario, dict or TOML path with ``--set``
  overrides;
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

from emu.run.scenario import Result, resolve, run
from emu.run.comparison import (Comparison, compare, parse_vary, run_comparison,
                                write_comparison)
from emu.run.executors import SweepError, execute_run
from emu.run.plan import Run, SweepPlan, derive_seed, parse_grid, plan_sweep, run_id
from emu.run.sweep import SweepInterrupted, run_sweep, sweep_throughput
from emu.run.table import METRICS, read_table
from emu.run.tlb import TLBSimConfig, simulate_arrays, simulate_trace

__all__ = [
    "Result", "resolve", "run",
    "Comparison", "compare", "parse_vary", "run_comparison", "write_comparison",
    "METRICS", "Run", "SweepPlan", "SweepError", "SweepInterrupted", "derive_seed",
    "execute_run", "parse_grid", "plan_sweep", "read_table", "run_id", "run_sweep",
    "sweep_throughput",
    "TLBSimConfig", "simulate_arrays", "simulate_trace",
]

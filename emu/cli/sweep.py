"""``emu sweep``: a scenario over a grid of values and seeds (:mod:`emu.run.sweep`)."""

from __future__ import annotations

import os
import sys
import time

from emu.cli.args import (EXIT_FAILED, add_executor_options,
                          add_force_option, add_progress_option, add_set_option, add_wide_option,
                          int_arg, note_ignored_members, print_note, runs_done, stopped,
                          terminal_width)
from emu.report.columns import wrap
from emu.run.executors import SweepError
from emu.run.plan import parse_grid, plan_sweep
from emu.run.sweep import SweepInterrupted, run_sweep
from emu.report.reading import unsettled_note
from emu.run.table import format_grid, table_name


def add_sweep_parser(sub) -> None:
    """Add ``emu sweep`` to the ``add_subparsers()`` action ``sub``."""
    p = sub.add_parser(
        "sweep", help="run a scenario over a grid of values and seeds",
        description="Run FILE over the factorial product of the --grid values, each point "
                    "--seeds times, in parallel, into DIR/runs/<id>/ plus one results table "
                    "(DIR/results.parquet, or DIR/results.csv without pyarrow). Re-running the "
                    "same command resumes an interrupted sweep, and a sweep that extends the "
                    "one in DIR (more values, more seeds) reuses its runs. A workload key that "
                    "does nothing at some points (code_pages where --grid sets "
                    "inst_fraction=0,0.5) is taken if it does something at one; at none, it is "
                    "refused.")
    p.add_argument("scenario", metavar="FILE", help="scenario file (.toml)")
    p.add_argument("--grid", dest="grids", action="append", default=[], metavar="KEY=V1,V2,...",
                   help="a key (dotted path, as --set takes) and its values (repeatable; "
                        "the sweep is the product of the grids)")
    p.add_argument("--seeds", type=int_arg, default=None, metavar="N",
                   help="replicate each point with N seeds spawned from the scenario's seed "
                        "(default: one run with the scenario's seed)")
    p.add_argument("--out", required=True, metavar="DIR", help="directory for the results")
    add_force_option(p, "write into DIR although it holds another result: a run, a "
                        "comparison, a study or a sensitivity study (their files are removed) "
                        "or a sweep with runs this one leaves out (its results table is "
                        "replaced)")
    add_executor_options(p)
    add_set_option(p, "override a scenario key for every run (repeatable, each KEY once)")
    add_progress_option(p, "progress on stderr (default: a bar on a terminal, lines otherwise)")
    add_wide_option(p)
    p.set_defaults(func=cmd_sweep)


def cmd_sweep(args) -> int:
    """Run ``emu sweep`` and print the grid's table (mean and 95 % interval over
    the seeds of each point); raises EmuError on bad input (the CLI prints it, exit 2)."""
    t0 = time.perf_counter()
    out, width = args.out, terminal_width(args)
    try:
        plan = plan_sweep(args.scenario, args.grids, args.seeds, args.overrides)
        note_ignored_members(plan.trace_paths, width)
        rows = run_sweep(plan, out_dir=out, executor=args.executor, workers=args.workers,
                         scheduler=args.scheduler, progress=args.progress, force=args.force)
    except SweepInterrupted as stop:
        how, status = stopped(stop)
        print(f"emu: sweep {how}: {runs_done(stop, f'in {out}')}; "
              f"re-run the same command to resume", file=sys.stderr, flush=True)
        return status
    except KeyboardInterrupt as stop:
        how, status = stopped(stop)
        print(f"emu: sweep {how} before any run started", file=sys.stderr, flush=True)
        return status
    except SweepError as err:
        print(f"emu: error: {err}; {err.done} of {err.total} runs done in {out}; "
              f"re-run the same command to resume", file=sys.stderr, flush=True)
        return EXIT_FAILED
    print(wrap(f"emu sweep: {len(rows)} run{'s' * (len(rows) != 1)} in "
               f"{time.perf_counter() - t0:.1f} s; results in "
               f"{os.path.join(out, table_name())}", width) + "\n")
    keys = [parse_grid(g)[0] for g in args.grids]
    print(format_grid(rows, keys, width))
    note = unsettled_note(rows, keys)
    if note:
        print_note(note, width)
    return 0

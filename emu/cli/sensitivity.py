"""``emu sensitivity`` and ``emu costs``: their parsers and what they do.

The ``emu`` command line adds them with :func:`add_sensitivity_parser` and
:func:`add_costs_parser` (each takes the ``add_subparsers()`` action).  Bad
input raises an :class:`~emu.errors.EmuError` whose message is one line; the
command line prints it and exits with status 2.  ``emu sensitivity`` runs its
runs as ``emu sweep`` does (:class:`~emu.sensitivity.runner.StudyRunner`):
exit status 1 if a worker process died, 130 if interrupted; with ``--out``,
re-running the same command resumes.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import sys
from typing import Optional

from emu.run import SweepError, SweepInterrupted
from emu.run.files import dumps_json
from emu.run.outdir import check_output_dir, check_room
from emu.cli.args import (EXIT_FAILED, add_executor_options,
                          add_out_options, add_progress_option, add_set_option, add_wide_option,
                          int_arg, print_note, runs_done, stopped, terminal_width)

from emu.sensitivity.analysis import sobol_caution
from emu.sensitivity.report import (
    SENSITIVITY_FILES, costs_listing, format_sensitivity, unsettled_text, write_files)
from emu.sensitivity.runner import Runner, StudyRunner, check_study_dir, default_scenario
from emu.sensitivity.spec import BETTER, DEFAULT_METRIC, METHODS, DEFAULT_SAMPLES
from emu.sensitivity.study import plan_sensitivity, run_plan

__all__ = ["add_costs_parser", "add_sensitivity_parser", "main_costs", "main_sensitivity"]


def add_sensitivity_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``emu sensitivity`` to the ``add_subparsers()`` action ``subparsers``."""
    p = subparsers.add_parser(
        "sensitivity", help="how far a comparison holds over the plausible cost ranges",
        description="Compare two values of a scenario key (metric(A) / metric(B)) while the "
                    "costs move over their plausible ranges: each cost at its low and high "
                    "end (oat), plus Morris or Sobol' samples through SALib. With --out, "
                    "writes DIR/sensitivity.json, a tornado plot and each run into "
                    "DIR/runs/<id>/ (named by a hash of its settings); re-running the same "
                    "command resumes an interrupted study.")
    p.add_argument("scenario", nargs="?", metavar="FILE",
                   help="scenario file (.toml; default: the built-in default scenario)")
    p.add_argument("--compare", required=True, metavar="KEY=A,B",
                   help="the key and its two values, e.g. kvm.strategy=shadow,direct")
    p.add_argument("--metric", default=DEFAULT_METRIC, metavar="NAME",
                   help=f"a numeric summary key, dotted for nested ones (default "
                        f"{DEFAULT_METRIC})")
    p.add_argument("--better", choices=BETTER, default="lower",
                   help="which way the metric is better (default lower)")
    p.add_argument("--method", choices=METHODS, default="oat",
                   help="oat: each cost at each end; morris, sobol: global, through SALib")
    p.add_argument("--samples", type=int_arg, default=None, metavar="N",
                   help=f"Morris trajectories or Sobol' base samples (default "
                        f"{DEFAULT_SAMPLES['morris']}, {DEFAULT_SAMPLES['sobol']}); "
                        f"oat takes none and refuses one")
    p.add_argument("--seed", type=int_arg, default=None,
                   help="seed of the samples (default 0): one seed, one result; oat samples "
                        "nothing and refuses one")
    p.add_argument("--break-even", dest="break_even", metavar="KEY=V1,V2,...",
                   help="also find where A stops beating B along a numeric key (one key)")
    p.add_argument("--range", dest="ranges", action="append", default=[],
                   metavar="COST=LOW,HIGH",
                   help="vary a cost over LOW..HIGH instead of its plausible range: a cost "
                        "the study varies, LOW < HIGH around the value the runs use "
                        "(repeatable, once per cost)")
    p.add_argument("--costs", metavar="A,B,...",
                   help="vary only these costs (default: every cost with a range)")
    add_set_option(p, "override a scenario key in every run (repeatable, each KEY once)")
    add_out_options(p, "directory for sensitivity.json, the plots and the runs (default: the "
                       "runs go to a temporary directory and only the result is printed)")
    add_executor_options(p)
    add_progress_option(p, "progress on stderr (default: a bar on a terminal, lines otherwise)")
    p.add_argument("--json", action="store_true", help="print sensitivity.json")
    add_wide_option(p)
    p.set_defaults(func=main_sensitivity)
    return p


def main_sensitivity(args: argparse.Namespace, runner: Optional[Runner] = None) -> int:
    """``emu sensitivity``: run the study (through ``runner``, default a
    :class:`~emu.sensitivity.runner.StudyRunner` on the chosen executor), write
    ``--out``, print the result.  Bad input raises EmuError."""
    scenario = args.scenario
    if scenario is None:
        scenario = default_scenario()
    plan = plan_sensitivity(
        scenario, args.compare, metric=args.metric, method=args.method, samples=args.samples,
        seed=args.seed, overrides=args.overrides, ranges=args.ranges, costs=args.costs,
        break_even=args.break_even, better=args.better)
    if args.out is not None:
        # checked before anything runs: room for the run folders it will
        # hold, and what it holds already
        out = check_output_dir(args.out, SENSITIVITY_FILES)
        check_room(os.path.join(out, "runs", plan.jobs[0].label), where=f"--out {args.out}")
        check_study_dir(args.out, [j.label for j in plan.jobs], plan.metric, plan.better,
                        args.force)
    if runner is None:
        jobs = StudyRunner(args.out, args.executor, args.workers, args.scheduler, args.progress)
        if args.out is not None:
            # checked again once locked, for what another command wrote into the folder
            # meanwhile (without --force: what it let this study replace is gone by then)
            jobs.recheck = functools.partial(check_study_dir, args.out,
                                             [j.label for j in plan.jobs], plan.metric,
                                             plan.better)
    else:
        jobs = contextlib.nullcontext(runner)
    where = f"in {args.out}" if args.out else "(nothing is kept without --out)"
    resume = "; re-run the same command to resume" if args.out else ""
    try:
        with jobs as run_jobs:
            result = run_plan(plan, run_jobs)
            if args.out:
                write_files(args.out, result)
    except SweepInterrupted as stop:
        how, status = stopped(stop)
        print(f"emu: sensitivity {how}: {runs_done(stop, where)}{resume}",
              file=sys.stderr, flush=True)
        return status
    except SweepError as err:
        print(f"emu: error: {err}; {err.done} of {err.total} runs done {where}{resume}",
              file=sys.stderr, flush=True)
        return EXIT_FAILED
    print(dumps_json(result) if args.json
          else format_sensitivity(result, width=terminal_width(args)),
          end="" if args.json else "\n")
    for note in (sobol_caution(result), unsettled_text(result)):
        if note:
            print_note(note, terminal_width(args))
    return 0


def add_costs_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``emu costs`` to the ``add_subparsers()`` action ``subparsers``."""
    p = subparsers.add_parser(
        "costs", help="list every cost: default, plausible range, unit, source",
        description="List the cost table: each cost's default, its plausible range (and "
                    "the kind of range: exact, hardware, setting, counted, fitted, "
                    "estimate), its unit and its source.")
    p.add_argument("--json", action="store_true", help="print the table as JSON")
    p.add_argument("--long", action="store_true",
                   help="print each source and the range's reasoning in full")
    add_wide_option(p, notes=False)
    p.set_defaults(func=main_costs)
    return p


def main_costs(args: argparse.Namespace) -> int:
    """``emu costs``: print the cost table."""
    print(costs_listing(fmt="json" if args.json else "text", long=args.long,
                        width=terminal_width(args)), end="")
    return 0

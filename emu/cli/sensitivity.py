"""``emu sensitivity`` and ``emu costs``: their parsers and what they do.

The ``emu`` command line adds them with :func:`add_sensitivity_parser` and
:func:`add_costs_parser` (each takes the ``add_subparsers()`` action).  Bad
input raises an :class:`~emu.errors.EmuError` whose message is one line; the
command line prints it and exits with status 2.
"""

from __future__ import annotations

import argparse
from typing import Optional

from emu.run.files import check_output_dir, dumps_json
from emu.cli.args import int_arg

from emu.sensitivity.report import (
    SENSITIVITY_FILES, costs_listing, format_sensitivity, write_sensitivity)
from emu.sensitivity.runner import Runner, default_scenario
from emu.sensitivity.spec import BETTER, DEFAULT_METRIC, METHODS, DEFAULT_SAMPLES
from emu.sensitivity.study import run_sensitivity

__all__ = ["add_costs_parser", "add_sensitivity_parser", "main_costs", "main_sensitivity"]



def add_sensitivity_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``emu sensitivity`` to the ``add_subparsers()`` action ``subparsers``."""
    p = subparsers.add_parser(
        "sensitivity", help="how far a comparison holds over the plausible cost ranges",
        description="Compare two values of a scenario key (metric(A) / metric(B)) while the "
                    "costs move over their plausible ranges: each cost at its low and high "
                    "end (oat), plus Morris or Sobol' samples through SALib. Writes "
                    "DIR/sensitivity.json and a tornado plot with --out.")
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
                        f"oat takes none")
    p.add_argument("--seed", type=int_arg, default=0,
                   help="seed of the samples (default 0): one seed, one result")
    p.add_argument("--break-even", dest="break_even", metavar="KEY=V1,V2,...",
                   help="also find where A stops beating B along a numeric key")
    p.add_argument("--range", dest="ranges", action="append", default=[],
                   metavar="COST=LOW,HIGH", help="override a cost's range (repeatable)")
    p.add_argument("--costs", metavar="A,B,...",
                   help="vary only these costs (default: every cost with a range)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a scenario key in every run (repeatable)")
    p.add_argument("--out", metavar="DIR",
                   help="directory for sensitivity.json, tornado.png and tornado.svg")
    p.add_argument("--json", action="store_true", help="print sensitivity.json")
    p.set_defaults(func=main_sensitivity)
    return p


def main_sensitivity(args: argparse.Namespace, runner: Optional[Runner] = None) -> int:
    """``emu sensitivity``: run the study through ``runner`` (default: in this
    process), write ``--out``, print the result.  Bad input raises EmuError."""
    if args.out:
        check_output_dir(args.out, SENSITIVITY_FILES)
    scenario = args.scenario
    if scenario is None:
        scenario = default_scenario()
    result = run_sensitivity(
        scenario, args.compare, runner=runner, metric=args.metric, method=args.method,
        samples=args.samples, seed=args.seed, overrides=args.overrides,
        ranges=args.ranges, costs=args.costs, break_even=args.break_even,
        better=args.better)
    if args.out:
        write_sensitivity(args.out, result)
    print(dumps_json(result) if args.json else format_sensitivity(result),
          end="" if args.json else "\n")
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
    p.set_defaults(func=main_costs)
    return p


def main_costs(args: argparse.Namespace) -> int:
    """``emu costs``: print the cost table."""
    print(costs_listing(fmt="json" if args.json else "text", long=args.long), end="")
    return 0

"""The ``emu`` command line: argparse, one module per group of subcommands.

Every problem with the user's input ends in one line on stderr,
``emu: error: ...``, and exit status 2; results are written atomically.
The work is done by the library (:mod:`emu.run`, :mod:`emu.report`,
:mod:`emu.teach`); nothing outside this package imports it.
"""

from __future__ import annotations

import argparse
import sys

from emu import __version__
from emu.cli.args import EXIT_INTERRUPTED, EXIT_USAGE, Parser
from emu.cli.report import add_report_parser
from emu.cli.run import add_compare_parser, add_run_parser
from emu.cli.sensitivity import add_costs_parser, add_sensitivity_parser
from emu.cli.sweep import add_sweep_parser
from emu.cli.tlb import add_tlb_parser
from emu.cli.trace import add_trace_parser
from emu.errors import EmuError
from emu.teach import add_explain_parser

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The ``emu`` parser with every subcommand."""
    parser = Parser(prog="emu", description="Emulate KVM virtualizing a software-managed TLB "
                                             "(PowerPC 440, e500).")
    parser.add_argument("--version", action="version", version=f"emu {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    add_tlb_parser(sub)
    add_trace_parser(sub)
    add_run_parser(sub)
    add_compare_parser(sub)
    add_report_parser(sub)
    add_sweep_parser(sub)
    add_explain_parser(sub)
    add_sensitivity_parser(sub)
    add_costs_parser(sub)
    return parser


def main(argv=None) -> int:
    """Run ``emu ARGV`` (default: ``sys.argv[1:]``); the exit status."""
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        return args.func(args)
    except EmuError as err:
        msg = str(err)
        print(msg if msg.startswith("emu") else f"emu: error: {msg}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("emu: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return 0

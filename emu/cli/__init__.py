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
from emu.cli.config import add_config_parser
from emu.cli.report import add_report_parser
from emu.cli.run import add_compare_parser, add_run_parser
from emu.cli.sensitivity import add_costs_parser, add_sensitivity_parser
from emu.cli.study import add_study_parser
from emu.cli.sweep import add_sweep_parser
from emu.cli.tlb import add_tlb_parser
from emu.cli.trace import add_trace_parser
from emu.errors import EmuError
from emu.teach import add_explain_parser

__all__ = ["build_parser", "main"]


class _Commands:
    """The ``add_subparsers()`` action, noting each command's one-line summary."""

    def __init__(self, sub):
        self.sub, self.summaries = sub, {}

    def add_parser(self, name, **kwargs):
        self.summaries[name] = kwargs.get("help", "")
        return self.sub.add_parser(name, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    """The ``emu`` parser with every subcommand (``parser.commands``: each
    command's one-line summary, in order)."""
    parser = Parser(prog="emu", description="Emulate KVM virtualizing a software-managed TLB "
                                             "(PowerPC 440, e500).")
    parser.add_argument("--version", action="version", version=f"emu {__version__}")
    sub = parser.add_subparsers(title="commands", dest="command", metavar="COMMAND",
                                parser_class=Parser)
    sub.required = True
    commands = _Commands(sub)
    for add in (add_tlb_parser, add_trace_parser, add_run_parser, add_compare_parser,
                add_report_parser, add_sweep_parser, add_explain_parser, add_sensitivity_parser,
                add_costs_parser, add_study_parser, add_config_parser):
        add(commands)
    parser.commands = commands.summaries
    return parser


def command_list(parser) -> str:
    """What ``emu`` alone prints: the usage, then each command and its summary."""
    width = max(map(len, parser.commands))
    lines = [parser.format_usage().rstrip(), "", parser.description, "", "commands:"]
    lines += [f"  {name:<{width}}  {summary}" for name, summary in parser.commands.items()]
    return "\n".join(lines + ["", "'emu COMMAND --help' describes a command's options."])


def main(argv=None) -> int:
    """Run ``emu ARGV`` (default: ``sys.argv[1:]``); the exit status.

    ``emu`` alone prints the commands, one line each, on stdout and exits
    with 2, the status of every other usage error: no command ran.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        parser = build_parser()
        if not argv:
            print(command_list(parser))
            return EXIT_USAGE
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

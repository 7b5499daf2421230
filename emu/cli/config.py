"""``emu config dump``: the resolved scenario written back as TOML.

As gem5 writes ``config.ini``, ``emu config dump FILE --set ...`` writes the
scenario a run would use -- the file, the overrides and every default filled
in -- as a TOML file that ``emu run`` loads to the same scenario
(:func:`emu.params.scenario_to_toml`).
"""

from __future__ import annotations

import os
import sys

from emu import __version__
from emu.cli.args import Parser, add_set_option
from emu.errors import EmuError
from emu.params import default_scenario, scenario_to_toml
from emu.run.files import write_text
from emu.run.outdir import check_name, check_outside_results
from emu.run.scenario import resolve


def add_config_parser(sub) -> None:
    """Add ``emu config dump [FILE] [--set ...] [-o OUT]`` to the CLI's sub-parsers."""
    p = sub.add_parser("config", help="show the resolved scenario",
                       description="Show the scenario a run would use.")
    commands = p.add_subparsers(dest="config_command", metavar="COMMAND", parser_class=Parser)
    commands.required = True
    d = commands.add_parser(
        "dump", help="write the resolved scenario as TOML",
        description="Write FILE (default: the built-in scenario) with the --set overrides "
                    "applied, as TOML: every key that has a value, defaults included (a key "
                    "with no default that is not set, such as kvm.handler, and the keys of "
                    "other workload kinds are left out). Loading the dump gives the same "
                    "scenario: emu run DUMP runs what emu run FILE --set ... runs. Without "
                    "FILE, emu run DUMP runs the built-in scenario once, as its keys say, "
                    "where emu run without FILE runs the comparison of designs.")
    d.add_argument("scenario", nargs="?", metavar="FILE", help="scenario file (.toml)")
    add_set_option(d, "override a scenario key by its dotted path (repeatable, each KEY once)")
    d.add_argument("-o", "--output", metavar="OUT.toml",
                   help="write the TOML here (atomically) instead of to stdout (- is "
                        "stdout)")
    d.set_defaults(func=cmd_config_dump)


def cmd_config_dump(args) -> int:
    """Run ``emu config dump``: the TOML on stdout, or in OUT (its path printed)."""
    if args.output == "-":
        args.output = None                          # stdout, as without -o
    if args.output is not None:
        check_name(args.output, "--output", names="file")
        # a file of its own inside a result folder: that folder could no longer be replaced
        check_outside_results(os.path.abspath(args.output), f"--output {args.output}")
    scenario = resolve(default_scenario() if args.scenario is None else args.scenario,
                       args.overrides)
    source = " ".join([args.scenario or "the built-in scenario"]
                      + [f"--set {o}" for o in args.overrides])
    source = source.replace("\r", "\\r").replace("\n", "\\n")      # one comment line
    text = (f"# emu config dump (emu {__version__}): every key of the resolved scenario "
            f"that has a value, defaults included\n# from: {source}\n\n" + scenario_to_toml(scenario))
    if args.output:
        try:
            write_text(args.output, text)
        except OSError as err:
            raise EmuError(f"--output {args.output}: cannot write ({err.strerror or err})") \
                from None
        print(args.output)
    else:
        try:
            text.encode(getattr(sys.stdout, "encoding", None) or "utf-8")
        except (UnicodeEncodeError, LookupError):
            text = _escaped(text)       # a stdout of another encoding still gets TOML
        print(text, end="")
    return 0


def _escaped(toml: str) -> str:
    """``toml`` in ASCII: each other character as TOML's escape of it, the
    same text once loaded (the dump has them only in its quoted strings, and
    in its comment, where an escape is as good)."""
    return "".join(c if c.isascii() else f"\\u{ord(c):04x}" if ord(c) < 0x10000
                   else f"\\U{ord(c):08x}" for c in toml)

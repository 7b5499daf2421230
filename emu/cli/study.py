"""``emu study``: list the studies, or run one (:mod:`emu.study`)."""

from __future__ import annotations

import os

from emu import study
from emu.cli.args import add_wide_option, terminal_width
from emu.report.columns import table


def add_study_parser(sub) -> None:
    """Add ``emu study [NAME] [--out DIR] [--quick]`` to the CLI's sub-parsers."""
    p = sub.add_parser("study", help="list the studies, or run one",
                       description="Without NAME: list the studies and the question each "
                                   "answers. With NAME: "
                                   "run that study and print its tables (emu report DIR makes "
                                   "a page of what --out DIR holds).")
    p.add_argument("name", nargs="?", metavar="NAME", help="the study to run")
    p.add_argument("--out", metavar="DIR",
                   help="write each run's results and results.json into DIR")
    p.add_argument("--quick", action="store_true",
                   help="a short version (a few seconds): fewer points, shorter runs; "
                        "EMU_QUICK=1 in the environment means the same")
    add_wide_option(p)
    p.set_defaults(func=cmd_study)


def quick_from_env() -> bool:
    """``EMU_QUICK`` set to anything but '', '0', 'false' or 'no'."""
    return os.environ.get("EMU_QUICK", "").strip().lower() not in ("", "0", "false", "no")


def cmd_study(args) -> int:
    """Run ``emu study``: list the studies, or run the one named."""
    width = terminal_width(args)
    if args.name is None:
        print(table(None, [[s.name, s.question] for s in study.studies()], width, text=[1]))
        return 0
    return study.run_and_print(study.get(args.name), args.quick or quick_from_env(), args.out,
                               width=width)

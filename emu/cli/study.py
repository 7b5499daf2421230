"""``emu study``: list the studies, or run one (:mod:`emu.study`)."""

from __future__ import annotations

import os

from emu import study
from emu.cli.args import add_out_options


def add_study_parser(sub) -> None:
    """Add ``emu study [NAME] [--out DIR] [--quick]`` to the CLI's sub-parsers."""
    p = sub.add_parser("study", help="list the studies, or run one",
                       description="Without NAME: list the studies, one line each. With NAME: "
                                   "run that study and print its tables (emu report DIR makes "
                                   "a page of what --out DIR holds).")
    p.add_argument("name", nargs="?", metavar="NAME", help="the study to run")
    add_out_options(p, "write each run's results, the plots and results.json into DIR; its "
                       "files are replaced as one set")
    p.add_argument("--quick", action="store_true",
                   help="a short version (a few seconds): fewer points, shorter runs; "
                        "EMU_QUICK=1 in the environment means the same")
    p.set_defaults(func=cmd_study)


def quick_from_env() -> bool:
    """``EMU_QUICK`` set to anything but '', '0', 'false' or 'no'."""
    return os.environ.get("EMU_QUICK", "").strip().lower() not in ("", "0", "false", "no")


def cmd_study(args) -> int:
    """Run ``emu study``: list the studies, or run the one named."""
    if args.name is None:
        studies = study.studies()
        width = max(len(s.name) for s in studies)
        for s in studies:
            print(f"{s.name:<{width}}  {s.question}")
        return 0
    return study.run_and_print(study.get(args.name), args.quick or quick_from_env(), args.out,
                               force=args.force)

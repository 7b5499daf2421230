"""``emu study``: list the studies, or run one (:mod:`emu.study`)."""

from __future__ import annotations

import os

from emu import study
from emu.cli.args import Parser, add_out_options, add_wide_option, terminal_width
from emu.errors import EmuError
from emu.report.columns import table


def add_study_parser(sub) -> None:
    """Add ``emu study [NAME] [--out DIR] [--quick]`` to the CLI's sub-parsers."""
    p = sub.add_parser("study", help="list the studies, or run one",
                       description="Without NAME: list the studies and the question each "
                                   "answers. With NAME: "
                                   "run that study and print its tables (emu report DIR makes "
                                   "a page of what --out DIR holds).")
    p.add_argument("name", nargs="?", metavar="NAME", help="the study to run")
    p.add_argument("--list", action="store_true",
                   help="list the studies (as emu study alone does)")
    _add_run_options(p)


def script_parser(name: str) -> Parser:
    """The parser of the study ``name``'s script (``scenarios/NAME.py``): the
    options of ``emu study NAME``, without NAME."""
    s = study.get(name)
    p = Parser(description=f"{s.question} The study {name}: the same as emu study {name}.")
    _add_run_options(p)
    p.set_defaults(name=name)
    return p


def _add_run_options(p) -> None:
    """``--out DIR`` (and ``--force``) and ``--quick``: how a study runs."""
    add_out_options(p, "write each run's results, the plots and results.json into DIR; its "
                       "files are replaced as one set")
    p.add_argument("--quick", action="store_true",
                   help="a short version (under half a minute, most in a few seconds): fewer "
                        "points, shorter runs; "
                        "EMU_QUICK=1 in the environment means the same")
    add_wide_option(p)
    p.set_defaults(func=cmd_study)


#: what ``EMU_QUICK`` may be set to: on, and off (unset or empty is off too)
_QUICK_ON, _QUICK_OFF = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def quick_from_env() -> bool:
    """Whether ``EMU_QUICK`` asks for the quick version: '1', 'true', 'yes' or
    'on' does, '0', 'false', 'no', 'off', empty or unset does not (any case);
    anything else is refused in one line, not taken as one or the other."""
    value = os.environ.get("EMU_QUICK", "").strip().lower()
    if value in _QUICK_ON:
        return True
    if value in _QUICK_OFF or not value:
        return False
    raise EmuError(f"EMU_QUICK={os.environ['EMU_QUICK']!r}: expected 1, true, yes or on (the "
                   f"quick version), or 0, false, no, off or nothing (the whole study)")


def cmd_study(args) -> int:
    """Run ``emu study``: list the studies, or run the one named."""
    width = terminal_width(args)
    if getattr(args, "list", False) and args.name is not None:
        raise EmuError(f"--list lists the studies; it takes no NAME (emu study {args.name} "
                       f"runs that one)")
    if args.name is None:
        given = [option for option, on in (("--out", args.out is not None),
                                           ("--force", args.force),
                                           ("--quick", args.quick)) if on]
        if given:
            raise EmuError(f"{' and '.join(given)} {'need' if len(given) > 1 else 'needs'} "
                           f"a study's NAME (emu study alone lists the studies)")
        print(table(None, [[s.name, s.question] for s in study.studies()], width, text=[1]))
        return 0
    from_env = quick_from_env()             # checked, --quick or not
    return study.run_and_print(study.get(args.name), args.quick or from_env, args.out,
                               width=width, force=args.force)

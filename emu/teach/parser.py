"""``emu explain`` on the command line: its argparse parser and what it runs."""

from __future__ import annotations

import argparse

from emu.errors import EmuError
from emu.teach import exercise
from emu.teach.narrator import DEFAULT_ACCESSES, DEFAULT_RESUME, explain

def _positive(text: str) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid integer {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def add_explain_parser(sub) -> None:
    """Add ``emu explain`` to the CLI's subparsers."""
    p = sub.add_parser(
        "explain", help="narrate the TLB miss handler, access by access, after a resume",
        description="Run a scenario (default: the built-in one) on the reference backend and "
                    "narrate the first N accesses of a vCPU after its K-th vcpu_load: each "
                    "hit, each hardware miss with its cause, and the four steps of the miss "
                    "handler (docs/design.md §3). --exercise prints a small exercise; --solve "
                    "answers it by running the model.")
    p.add_argument("scenario", nargs="?", help="scenario file (.toml)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a scenario key by its dotted path (repeatable)")
    p.add_argument("--resume", type=_positive, default=None, metavar="K",
                   help=f"narrate after the K-th vcpu_load (1 = the first; default "
                        f"{DEFAULT_RESUME})")
    p.add_argument("--accesses", type=_positive, default=None, metavar="N",
                   help=f"how many accesses to narrate (default {DEFAULT_ACCESSES})")
    p.add_argument("--vcpu", metavar="NAME", help="which vCPU, e.g. vm0.vcpu0 (default: the first)")
    p.add_argument("--exercise", action="store_true",
                   help="print the exercise (FILE and --set pose it on another scenario)")
    p.add_argument("--solve", action="store_true",
                   help="print the exercise and its answer (computed on FILE and --set if given)")
    p.set_defaults(func=cmd_explain)


def cmd_explain(args) -> int:
    """Run ``emu explain``: print the narration, or the exercise (and its answer)."""
    if args.exercise or args.solve:
        window = [f"--{o}" for o in ("resume", "accesses", "vcpu") if getattr(args, o) is not None]
        if window:
            raise EmuError(f"{', '.join(window)}: the exercise's window is fixed (the "
                           f"{exercise.EXERCISE_ACCESSES} accesses after vcpu_load "
                           f"#{exercise.EXERCISE_RESUME} of the first vCPU); FILE and --set pose "
                           f"it on another scenario")
        if any(o.partition("=")[0].strip() == "kvm.strategy" for o in args.overrides):
            raise EmuError(f"--set kvm.strategy: the exercise compares "
                           f"{' and '.join(exercise.EXERCISE_DESIGNS)}")
        posed = (args.scenario, args.overrides) if args.scenario or args.overrides else ()
        if posed:
            exercise.posed_scenario(*posed)                         # refuse a bad key or value
        answer = exercise.solve_exercise(*posed) if args.solve else None   # errors before text
        print(exercise.exercise_text(*posed), end="")
        if answer is not None:
            print()
            print(answer.text, end="")
        return 0
    resume = DEFAULT_RESUME if args.resume is None else args.resume
    accesses = DEFAULT_ACCESSES if args.accesses is None else args.accesses
    result = explain(args.scenario, args.overrides, resume, accesses, args.vcpu)
    print(result.text, end="")
    return 0

"""``emu explain`` on the command line: its argparse parser and what it runs, its
text fitted to the terminal (:func:`fit_narration`, :func:`refill`; ``--wide``
prints it as the API gives it)."""

from __future__ import annotations

import argparse
import os
import re
import sys
from typing import Optional

from emu.cli.args import add_set_option, add_wide_option, terminal_width
from emu.codes import MISS_CAUSES
from emu.digits import int_text
from emu.errors import EmuError
from emu.params.fields import suggest
from emu.report.columns import columns, fold
from emu.teach import exercise
from emu.teach.glossary import MEASURE, glossary_text
from emu.teach.kinds import DEFAULT_KIND, KINDS
from emu.teach.lessons import SEED_LIMIT
from emu.teach.narrator import DEFAULT_ACCESSES, DEFAULT_RESUME, explain

#: The narration's options, which an exercise (whose window is fixed) refuses.
WINDOW_OPTIONS = ("resume", "accesses", "vcpu", "only_misses", "cause")

#: Where a narration line too wide for the terminal is broken before it is broken
#: between words (outside brackets): after a clause's "; " (the setting line's, the
#: summary's), after an aside's " — " (a walk's cost, an eviction), after the
#: "): " that ends an access's label, and between the parts of step 3 ("3.1 GPA
#: ...   3.2 memslot ...").
PART_BREAK = re.compile(r"(?<=;) |(?<= —) |(?<=\):) |   (?=3\.\d )")

#: Where a part too wide for a line is broken before it is broken between words:
#: after a list's ", " and a sum's " + " (a miss's cycles: "full_exit 125 + walk 276").
PHRASE_BREAK = re.compile(r"(?<=,) |(?<= \+) ")

#: The gaps between words, kept as they are within a line.
WORD_GAP = re.compile(r" +")


def _positive(text: str) -> int:
    try:
        value = int_text(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid integer {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _seed(text: str) -> int:
    try:
        value = int_text(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid integer {text!r}") from None
    if not 0 <= value < SEED_LIMIT:
        raise argparse.ArgumentTypeError(f"must be in 0..2**32-1, got {value}")
    return value


class _Exercise(argparse.Action):
    """``--exercise [KIND]``: a value that is no KIND but a scenario file (it ends
    in .toml or exists) is FILE, so that ``--exercise FILE`` poses the default
    exercise on it as ``FILE --exercise`` does (kept apart: FILE given twice is
    refused by :func:`cmd_explain`)."""

    def __call__(self, parser, namespace, value, option_string=None):
        if value not in KINDS and (value.endswith(".toml") or os.path.exists(value)):
            namespace.exercise_file, value = value, self.const
        elif value not in KINDS:
            guess = suggest(value, KINDS)
            hint = "" if guess is None else f"did you mean '{guess}'? "
            parser.error(f"argument --exercise: invalid choice: {value!r} ({hint}choose KIND from "
                         f"{', '.join(map(repr, KINDS))}, or give FILE)")
        setattr(namespace, self.dest, value)


def add_explain_parser(sub) -> None:
    """Add ``emu explain`` to the CLI's subparsers."""
    kinds = "; ".join(f"{name}: {KINDS[name].SUMMARY}" for name in KINDS)
    p = sub.add_parser(
        "explain", help="narrate the TLB miss handler after a resume, access by access",
        description="Narrate the first N accesses of a vCPU after its K-th vcpu_load: each "
                    "hit, each hardware miss with its cause, and the four steps of the miss "
                    "handler (docs/design.md §3). The compiled backend finds the window "
                    "first; the narration then comes from the reference backend (progress on "
                    "stderr when it is a terminal). --glossary explains the words; "
                    f"--exercise KIND poses an exercise ({kinds}), a new one per --seed; "
                    "--solve answers it by hand and checks the answer against the model.")
    p.add_argument("scenario", nargs="?", help="scenario file (.toml)")
    add_set_option(p, "override a scenario key by its dotted path (repeatable, each KEY once)")
    p.add_argument("--resume", type=_positive, default=None, metavar="K",
                   help=f"narrate after the K-th vcpu_load (1 = the first; default "
                        f"{DEFAULT_RESUME})")
    p.add_argument("--accesses", type=_positive, default=None, metavar="N",
                   help=f"how many accesses to narrate (default {DEFAULT_ACCESSES})")
    p.add_argument("--vcpu", metavar="NAME", help="which vCPU, e.g. vm0.vcpu0 (default: the first)")
    p.add_argument("--only-misses", action="store_true",
                   help="tell only the accesses of the window that took a hardware miss (the "
                        "summary still counts them all)")
    p.add_argument("--cause", metavar="CAUSE",
                   help="tell only the accesses that took a miss of CAUSE "
                        f"({', '.join(MISS_CAUSES)}; docs/design.md §6)")
    p.add_argument("--glossary", action="store_true",
                   help="print the glossary of the words the narration uses")
    p.add_argument("--exercise", nargs="?", const=DEFAULT_KIND, action=_Exercise,
                   metavar="KIND",
                   help=f"print an exercise of KIND ({', '.join(KINDS)}; default "
                        f"{DEFAULT_KIND}); FILE (before or after --exercise) and --set pose "
                        f"{DEFAULT_KIND} on another scenario")
    p.set_defaults(exercise_file=None)
    p.add_argument("--seed", type=_seed, default=None, metavar="S",
                   help="the exercise's seed: each seed draws a new problem (default 1, "
                        f"for {DEFAULT_KIND} the exercise as first published)")
    p.add_argument("--solve", action="store_true",
                   help="print the exercise and its answer, by hand and by the model")
    add_wide_option(p)
    p.set_defaults(func=cmd_explain)


def _given(args, names) -> list:
    """The options among ``names`` given on the command line, as typed."""
    return ["--" + n.replace("_", "-") for n in names if getattr(args, n) not in (None, False)]


def cmd_explain(args) -> int:
    """Run ``emu explain``: the narration, the glossary, or an exercise (and its answer)."""
    if args.glossary:
        others = _given(args, WINDOW_OPTIONS + ("exercise", "seed", "solve"))
        if others or args.scenario or args.overrides:
            raise EmuError(f"--glossary prints the glossary alone; it takes no "
                           f"{', '.join(others) or 'FILE or --set'}")
        width = terminal_width(args)
        print(glossary_text() if width is None else glossary_text(min(width, MEASURE)), end="")
        return 0
    if args.exercise_file is not None:
        if args.scenario is not None:
            raise EmuError(f"FILE given twice: {args.exercise_file} and {args.scenario}; the "
                           f"exercise is posed on one scenario")
        args.scenario = args.exercise_file
    if args.exercise or args.solve:
        return _exercise(args)
    if args.seed is not None:
        raise EmuError("--seed numbers an exercise (with --exercise or --solve); the "
                       "scenario's own seed is --set seed=N")
    resume = DEFAULT_RESUME if args.resume is None else args.resume
    accesses = DEFAULT_ACCESSES if args.accesses is None else args.accesses
    result = explain(args.scenario, args.overrides, resume, accesses, args.vcpu,
                     only_misses=args.only_misses, cause=args.cause, progress=True)
    print(fit_narration(result.text, terminal_width(args)), end="")
    return 0


def _exercise(args) -> int:
    kind, width = args.exercise or DEFAULT_KIND, terminal_width(args)
    seed = 1 if args.seed is None else args.seed
    window = _given(args, WINDOW_OPTIONS)
    if window:
        raise EmuError(f"{', '.join(window)}: the exercise's window is fixed (for "
                       f"{DEFAULT_KIND}: the {exercise.EXERCISE_ACCESSES} accesses after "
                       f"vcpu_load #{exercise.EXERCISE_RESUME} of the first vCPU); FILE and "
                       f"--set pose it on another scenario")
    posed = (args.scenario, args.overrides) if args.scenario or args.overrides else ()
    if posed and kind != DEFAULT_KIND:
        what = "FILE" if args.scenario else "--set"
        raise EmuError(f"{what}: the {kind} exercise is drawn from --seed alone; only "
                       f"{DEFAULT_KIND} can be posed on another scenario")
    if kind != DEFAULT_KIND:
        lesson = KINDS[kind]
        p = lesson.problem(seed)
        answer = lesson.solve(p) if args.solve else None        # errors before text
        print(refill(lesson.question(p), width), end="")
        if answer is not None:
            print()
            print(refill(answer.text, width), end="")
        return _agreed(answer)
    if any(o.partition("=")[0].strip() == "kvm.strategy" for o in args.overrides):
        raise EmuError(f"--set kvm.strategy: the exercise compares "
                       f"{' and '.join(exercise.EXERCISE_DESIGNS)}")
    if posed:
        exercise.posed_scenario(*posed, seed=seed)                # refuse a bad key or value
    answer = exercise.solve_exercise(*posed, seed=seed) if args.solve else None
    prose, toml = exercise.exercise_parts(*posed, seed=seed)
    print(refill(prose, width) + ("\n" + toml if toml else ""), end="")
    if answer is not None:
        print()
        print(refill(answer.text, width), end="")
    return 0


def _agreed(answer) -> int:
    """0, or 1 with a line on stderr when the model disagrees with the hand derivation."""
    if answer is not None and not answer.agree:
        print("emu: the model disagrees with the hand-derived answer", file=sys.stderr)
        return 1
    return 0


# -- the text, fitted to the terminal ------------------------------------------------------

def fit_narration(text: str, width: Optional[int]) -> str:
    """The narration ``text`` with each line wrapped at ``width`` columns (None:
    as it is), keeping its indent so that an access's steps stay under it, and
    the spaces between its words.  A line too wide is broken first at its
    :data:`PART_BREAK`, as many whole parts on a line as fit, the lines after
    the first two columns further in; a part still too wide is broken at its
    :data:`PHRASE_BREAK`, then between words, its lines two columns further in
    again.  A line of one part has its lines after the first two columns further
    in, as :func:`emu.report.columns.wrap` has.  A word wider than a line is
    left whole."""
    return "\n".join(_fit_line(line, width) for line in text.split("\n"))


def _fit_line(line: str, width: Optional[int]) -> str:
    if width is None or columns(line) <= width:
        return line
    lead = line[:len(line) - len(line.lstrip(" "))]
    rows = _pack(_cut(line[len(lead):], PART_BREAK, outside=True), width, lead, lead + "  ")
    hang = lead + ("    " if len(rows) > 1 else "  ")
    out = []
    for indent, row in rows:
        for at, phrase in _pack(_cut(row, PHRASE_BREAK), width, indent, hang):
            out += [i + words for i, words in _pack(_cut(phrase, WORD_GAP), width, at, hang)]
    return "\n".join(out)


def _cut(text: str, where: re.Pattern, outside: bool = False) -> list:
    """``text`` cut at the matches of ``where`` (only those outside brackets if
    ``outside``): its pieces as (the gap before it, piece), the first gap ''."""
    cuts = [m for m in where.finditer(text) if not outside or _depth(text[:m.start()]) == 0]
    gaps, starts = [""] + [m.group() for m in cuts], [0] + [m.end() for m in cuts]
    ends = [m.start() for m in cuts] + [len(text)]
    return [(gap, text[a:b]) for gap, a, b in zip(gaps, starts, ends)]


def _pack(tokens, width: int, first: str, rest: str) -> list:
    """``tokens`` (gap, text) on lines of at most ``width`` columns, as many
    as fit on each, a gap kept within a line and dropped at its end: the
    lines as (indent, text), the first behind ``first``, the others ``rest``."""
    rows: list = []
    for gap, text in tokens:
        if rows and columns(rows[-1][0] + rows[-1][1] + gap + text) <= width:
            rows[-1][1] += gap + text
        else:
            rows.append([rest if rows else first, text])
    return rows


def _depth(text: str) -> int:
    """How many brackets are open at the end of ``text``."""
    return sum(text.count(c) for c in "([") - sum(text.count(c) for c in ")]")


def refill(text: str, width: Optional[int]) -> str:
    """The prose ``text`` (paragraphs between blank lines) with each paragraph
    that has a line wider than ``width`` columns filled anew at ``width``
    (None: as it is); a word longer than a line is left whole."""
    if width is None:
        return text
    body = text.rstrip("\n")
    paragraphs = [p if max(map(columns, p.split("\n"))) <= width
                  else "\n".join(fold(" ".join(p.split()), width, False))
                  for p in body.split("\n\n")]
    return "\n\n".join(paragraphs) + text[len(body):]

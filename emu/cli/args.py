"""What every ``emu`` subcommand's parser shares."""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import sys
from typing import Optional

from emu.digits import int_text
from emu.errors import EmuError
from emu.report.columns import wrap
from emu.run.stop import Terminated

#: Exit statuses: a worker process died (``emu sweep``), bad input, interrupted.
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143          # 128 + SIGTERM, as a shell reports a process it ended
EXIT_HUNG_UP = 129             # 128 + SIGHUP


def stopped(stop: BaseException) -> tuple[str, int]:
    """How a command was stopped, as its last line says it, and its exit
    status: ``("terminated", 143)`` when SIGTERM was (or led to) ``stop``,
    ``("hung up", 129)`` when SIGHUP was, else ``("interrupted", 130)``."""
    seen = stop
    while seen is not None:
        if isinstance(seen, Terminated):
            if seen.signum == signal.SIGHUP:
                return "hung up", EXIT_HUNG_UP
            return "terminated", EXIT_TERMINATED
        seen = seen.__cause__ or seen.__context__
    return "interrupted", EXIT_INTERRUPTED


def runs_done(stop, where: str) -> str:
    """What the last line of a sweep or a study that ``stop`` (a
    SweepInterrupted) ended says of its runs done ``where`` (``in DIR``):
    at least so many when Dask's workers finish the runs they had started."""
    why = f" ({stop.AT_LEAST})" if stop.at_least else ""
    return f"{stop} {where}{why}"


PROGRESS_CHOICES = ["auto", "bar", "lines", "none"]


class _HelpFormatter(argparse.HelpFormatter):
    """argparse's help, each command's summary on the command's line.

    argparse measures the commands' names without the indent it prints them
    with, so the longest (``sensitivity``) overran the summaries' column and
    had its summary put on a line of its own.
    """

    def add_argument(self, action):
        super().add_argument(action)
        if action.help is not argparse.SUPPRESS:
            for sub in self._iter_indented_subactions(action):
                self._action_max_length = max(self._action_max_length, self._current_indent
                                              + len(self._format_action_invocation(sub)))


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (an EmuError: exit status 2), an
    option is only ever its whole name (``--seed`` is not ``--seeds``), an
    option of one value given twice is refused (:class:`Once`), an argument
    the parser does not know is refused by the parser that met it (which
    knows the option it was maybe meant to be), and each command's summary in
    --help is on the command's line."""

    def __init__(self, *args, formatter_class=_HelpFormatter, **kwargs):
        # NOTE: argparse's abbreviations took ``--seed 3`` for ``--seeds 3``
        # without a word (and would change meaning once an option is added)
        super().__init__(*args, formatter_class=formatter_class, allow_abbrev=False, **kwargs)
        for name in (None, "store"):                # every option that stores one value
            self.register("action", name, Once)

    def parse_known_args(self, args=None, namespace=None):
        """argparse's, but an argument left over is an error here."""
        try:
            namespace, extras = super().parse_known_args(args, namespace)
        except EmuError:
            # NOTE: argparse names a missing required argument before an unknown
            # one (``emu -x`` said COMMAND is required, ``emu compare s.toml --var
            # a=1,2`` that --vary is): the unknown one, the likelier mistake, first
            self._refuse(self._unknown(args))
            raise
        self._refuse(extras)
        return namespace, extras

    def _unknown(self, args) -> list:
        """The arguments of ``args`` this parser leaves over when none is
        required ([] if they hold another error)."""
        required = [action for action in self._actions if action.required]
        for action in required:
            action.required = False
        try:
            return super().parse_known_args(args, argparse.Namespace())[1]
        except EmuError:
            return []
        finally:
            for action in required:
                action.required = True

    def _refuse(self, extras) -> None:
        """Refuse the arguments left over, if any, with the option the first
        unknown one is close to."""
        if not extras:
            return
        # NOTE: imported here, on the error's path: emu.params is most of the
        # start-up time of a command that does not otherwise need it
        from emu.params.fields import suggest
        guesses = (suggest(arg.partition("=")[0], self._option_string_actions)
                   for arg in extras if arg.startswith("-"))
        guess = next((g for g in guesses if g is not None), None)
        hint = "" if guess is None else f" (did you mean '{guess}'?)"
        self.error(f"unrecognized arguments: {' '.join(extras)}{hint}")

    def _check_value(self, action, value):
        """argparse's, with the choice a mistyped value is close to
        (``emu tlbb``: did you mean 'tlb'?)."""
        choices = action.choices
        if choices is None or value in choices or not isinstance(value, str):
            return super()._check_value(action, value)
        from emu.params.fields import suggest      # on the error's path only
        guess = suggest(value, [c for c in choices if isinstance(c, str)])
        hint = "" if guess is None else f"did you mean '{guess}'? "
        listed = ", ".join(repr(c) for c in choices)
        raise argparse.ArgumentError(
            action, f"invalid choice: {value!r} ({hint}choose from {listed})")

    def error(self, message):  # noqa: D401 - argparse's API
        raise EmuError(f"{self.prog}: {message}")


class Once(argparse._StoreAction):
    """Store an option's value, and refuse the option given again, which
    argparse would let override the first without a word (``--seed 1 --seed
    2`` ran seed 2).  What was given is remembered per parse (the namespace
    being filled), so that a default is no first value."""

    def __call__(self, parser, namespace, values, option_string=None):
        given = getattr(self, "_given", None)
        if given is not None and given[0] is namespace:
            raise argparse.ArgumentError(self, f"given twice ({given[1]} and {values}); "
                                               f"it takes one")
        self._given = (namespace, values)
        setattr(namespace, self.dest, values)


def int_arg(text: str) -> int:
    """An integer option in any base Python accepts (``4096``, ``0x1000``)."""
    try:
        return int_text(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid integer {text!r}") from None


_SIZE = re.compile(r"\s*([0-9]+)\s*([KMG])(?:I?B)?\s*", re.IGNORECASE)
_SCALE = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


def size_arg(text: str) -> int:
    """A size in bytes: an integer (``4096``, ``0x1000``) or one with a binary
    suffix, K, M or G (``4K`` = 4096, ``64K``, ``16M``; ``KB``/``KiB`` too)."""
    m = _SIZE.fullmatch(text)
    if m:
        return int(m[1]) * _SCALE[m[2].upper()]
    try:
        return int_text(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid size {text!r} (e.g. 4096, 4K, 64K, 16M)") \
            from None


def shell_path(text: str) -> str:
    """``KEY=VALUE`` with a relative file path for a ``path`` key (a trace's)
    made absolute from the current folder, where the shell that typed it is
    (in a scenario file a path is relative to the file's folder); other
    overrides as they are."""
    from emu.params.fields import toml_text
    from emu.params.load import key_parts, override_value
    key, eq, value = text.partition("=")
    last = key_parts(key)[-1]               # (a malformed key: its parser says so later)
    path = override_value(value.strip()) if eq else None
    if last != "path" or not isinstance(path, str) or not path.strip():
        return text
    path = os.path.expanduser(path)
    return text if os.path.isabs(path) else f"{key}={toml_text(os.path.abspath(path))}"


class _SetOnce(argparse._AppendAction):
    """``--set``: each KEY=VALUE appended (a trace's path relative to the current
    folder: :func:`shell_path`), a KEY set twice refused (the later value would
    replace the earlier without a word)."""

    def __call__(self, parser, namespace, values, option_string=None):
        from emu.params.load import key_parts
        values = shell_path(values)
        key = values.partition("=")[0].strip()
        for given in getattr(namespace, self.dest, None) or []:
            if key_parts(given.partition("=")[0].strip()) == key_parts(key):
                raise argparse.ArgumentError(self, f"{key} given twice ({given!r} and "
                                                   f"{values!r}); set it once")
        super().__call__(parser, namespace, values, option_string)


def add_set_option(p, help_text: str) -> None:
    """``--set KEY=VALUE`` (repeatable, each KEY once), collected in ``args.overrides``."""
    p.add_argument("--set", dest="overrides", action=_SetOnce, default=[], metavar="KEY=VALUE",
                   help=help_text)


def add_executor_options(p) -> None:
    """``--executor local|dask``, ``--workers N``, ``--scheduler ADDRESS``: where many
    runs execute (:mod:`emu.run.executors`)."""
    p.add_argument("--executor", choices=["local", "dask"], default="local",
                   help="local: a process pool (default); dask: a Dask cluster")
    p.add_argument("--workers", type=int_arg, default=None, metavar="N",
                   help="local worker processes (default: the CPU count; 1 runs in this "
                        "process), or the size of the local Dask cluster without --scheduler")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="a Dask scheduler's address, e.g. tcp://10.0.0.5:8786 (with "
                        "--executor dask; default: a LocalCluster on 127.0.0.1)")


def add_progress_option(p, help_text: str) -> None:
    """``--progress auto|bar|lines|none`` (default auto)."""
    p.add_argument("--progress", choices=PROGRESS_CHOICES, default="auto", help=help_text)


def add_out_options(p, help_text: str) -> None:
    """``--out DIR`` and ``--force`` (replace another kind of result in DIR)."""
    p.add_argument("--out", metavar="DIR", help=help_text)
    add_force_option(p, "replace the result DIR holds even if it is another kind (a run, a "
                        "comparison, a sweep, a study, a sensitivity study); files emu did not "
                        "write are never replaced")


def add_force_option(p, help_text: str) -> None:
    """``--force``: write into a folder that holds another result."""
    p.add_argument("--force", action="store_true", help=help_text)


def add_wide_option(p, notes: bool = True) -> None:
    """``--wide``: tables at their full width.  With ``--json`` it still widens
    the command's notes on stderr; a command that prints none (``notes``
    False) refuses the two together."""
    p.add_argument("--wide", action="store_true",
                   help="print tables at their full width (default: fitted to the terminal, "
                        "or to COLUMNS, 80 when not a terminal)")
    p.set_defaults(wide_widens_notes=notes)


def terminal_width(args) -> Optional[int]:
    """The columns the text output fits in: None with ``--wide``, else the
    terminal's width (COLUMNS if set; 80 when stdout is not a terminal)."""
    return None if getattr(args, "wide", False) else shutil.get_terminal_size((80, 24)).columns


def print_note(text: str, width: Optional[int]) -> None:
    """``emu: note: TEXT`` on stderr, wrapped at ``width`` columns (None: one line)."""
    print(wrap(f"emu: note: {text}", width), file=sys.stderr, flush=True)


def note_ignored_members(paths, width) -> None:
    """An ``emu: note:`` on stderr naming the members of each trace ``.npz``
    of ``paths`` (the trace files the runs read) that are no trace array, as
    ``emu tlb`` names them: the runs leave them out."""
    from emu.workload.traces import open_trace
    for path in dict.fromkeys(paths):
        if not os.path.isfile(path):
            continue                    # a pipe is read once, by the run
        try:
            with open_trace(path) as trace:
                members = trace.ignored_members
        except EmuError:
            continue                    # the run says what is wrong with it
        if members:
            print_note(f"{path}: ignored {', '.join(members)}: not trace arrays (a trace is "
                       f"addr, kind and size)", width)

"""The ``emu`` command line: argparse, one module per group of subcommands.

Every problem with the user's input ends in one line on stderr,
``emu: error: ...``, and exit status 2; results are written atomically.
The work is done by the library (:mod:`emu.run`, :mod:`emu.report`,
:mod:`emu.teach`); nothing outside this package imports it.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import gc
import importlib
import os
import signal
import sys
import threading

from emu import __version__
from emu.cli.args import EXIT_FAILED, EXIT_USAGE, Parser, Terminated, stopped
from emu.errors import FULL, EmuError, OutputError, check_working_folder, command_line
from emu.run import stop

__all__ = ["build_parser", "main", "run", "study_script"]

# NOTE: each command's parser is imported only when needed: ``emu tlb`` then
# starts without importing the machine, SimPy, matplotlib or the report
# (most of its start-up time otherwise).
#: the commands in --help order: (name, module, function adding its parser)
COMMANDS = [
    ("tlb", "emu.cli.tlb", "add_tlb_parser"),
    ("trace", "emu.cli.trace", "add_trace_parser"),
    ("run", "emu.cli.run", "add_run_parser"),
    ("compare", "emu.cli.run", "add_compare_parser"),
    ("report", "emu.cli.report", "add_report_parser"),
    ("sweep", "emu.cli.sweep", "add_sweep_parser"),
    ("explain", "emu.teach", "add_explain_parser"),
    ("sensitivity", "emu.cli.sensitivity", "add_sensitivity_parser"),
    ("costs", "emu.cli.sensitivity", "add_costs_parser"),
    ("study", "emu.cli.study", "add_study_parser"),
    ("config", "emu.cli.config", "add_config_parser"),
]


class _Commands:
    """The ``add_subparsers()`` action, noting each command's one-line summary."""

    def __init__(self, sub):
        self.sub, self.summaries = sub, {}

    def add_parser(self, name, **kwargs):
        self.summaries[name] = kwargs.get("help", "")
        return self.sub.add_parser(name, **kwargs)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The ``emu`` parser with every subcommand, or only ``command``'s (the
    parser a command line starting with that command needs).
    ``parser.commands``: each command's one-line summary, in order."""
    parser = Parser(prog="emu", description="Emulate KVM virtualizing a software-managed TLB "
                                             "(PowerPC 440, e500).")
    parser.add_argument("--version", action="version", version=f"emu {__version__}")
    sub = parser.add_subparsers(title="commands", dest="command", metavar="COMMAND",
                                parser_class=Parser)
    sub.required = True
    commands = _Commands(sub)
    for name, module, adder in COMMANDS:
        if command is None or name == command:
            getattr(importlib.import_module(module), adder)(commands)
    parser.commands = commands.summaries
    return parser


def command_list(parser) -> str:
    """What ``emu`` alone prints: the usage, then each command and its summary;
    and ``emu trace`` alone, of ``emu trace``'s parser, its own commands."""
    commands = getattr(parser, "commands", None)
    if commands is None:                # a command's parser: its sub-commands' summaries
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        commands = {a.dest: a.help for a in sub._choices_actions}
    width = max(map(len, commands))
    lines = [parser.format_usage().rstrip(), ""]
    lines += [parser.description, ""] if parser.description else []
    lines += ["commands:"]
    lines += [f"  {name:<{width}}  {summary}" for name, summary in commands.items()]
    return "\n".join(lines + ["", f"'{parser.prog} COMMAND --help' describes a command's "
                                   f"options."])


def _subcommands(parser, name: str):
    """The parser of the command ``name``, if it is a command of commands
    (``emu trace``, ``emu config``), else None."""
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    p = sub.choices.get(name)
    has = p is not None and any(isinstance(a, argparse._SubParsersAction) for a in p._actions)
    return p if has else None


#: whether the command runs as a process of its own (:func:`run`), which ends with it
_OWN_PROCESS = False


@contextlib.contextmanager
def collector_held_off():
    """Run the block with Python's cyclic garbage collector held off, and
    leave it as it was found.

    For work that makes many objects and no cycles of them: imports, whose
    modules make no garbage, and ``emu tlb``'s loop over a trace.  In the
    command's own process (:func:`run`) what the block made is then set
    aside from later passes (``gc.freeze``), as :func:`run` sets aside
    everything as the command ends.

    NOTE: else the collector's first pass, once back on, went over every
    object the block made: 3.4 ms after ``emu tlb``'s imports."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if _OWN_PROCESS:
            gc.freeze()
        if enabled:
            gc.enable()


def _parse_args(command: str | None, argv: list) -> argparse.Namespace:
    """``argv`` parsed by ``command``'s parser, built with the cyclic garbage
    collector held off."""
    # NOTE: building the parser imports the command's modules (numpy's among
    # them), which make many objects and no garbage: the collector's passes
    # over them were a few per cent of a short ``emu tlb``'s time
    with collector_held_off():
        args = build_parser(command).parse_args(argv)
    _refuse_idle_options(args)
    return args


def _refuse_idle_options(args: argparse.Namespace) -> None:
    """Refuse an option that the others leave nothing to do (EmuError, one
    line): ``--force`` without a folder to write, ``--long`` (the sources in
    full) with ``--json``, which holds them in full, and ``--wide`` with
    ``--json`` where the command prints no note (elsewhere it widens the
    notes on stderr)."""
    given = vars(args)
    # (emu study without NAME says what its options need itself)
    if given.get("force") and "out" in given and given["out"] is None \
            and given.get("name", "") is not None:
        raise EmuError("--force replaces the result in the --out folder, and there is no "
                       "--out: give --out DIR, or leave --force out")
    if given.get("json") and given.get("wide") and not given.get("wide_widens_notes", True):
        raise EmuError("--wide prints the tables at their full width, and --json prints no "
                       "table: give one of them")
    if given.get("json") and given.get("long"):
        raise EmuError("--long prints the table's sources in full, and --json holds them in "
                       "full: give one of them")


def main(argv=None) -> int:
    """Run ``emu ARGV`` (default: ``sys.argv[1:]``); the exit status.

    ``emu`` alone prints the commands, one line each, on stdout and exits
    with 2, the status of every other usage error: no command ran.
    """
    argv = sys.argv[1:] if argv is None else list(argv)

    def command() -> int:
        if argv == ["--version"]:       # needs no folder: said in a removed one too
            print(f"emu {__version__}")
            return 0
        check_working_folder()
        if not argv:
            print(command_list(build_parser()))
            return EXIT_USAGE
        name = argv[0] if argv[0] in {c[0] for c in COMMANDS} else None
        if name is not None and argv == [name]:
            group = _subcommands(build_parser(name), name)
            if group is not None:       # `emu trace` alone: its commands, as `emu` alone
                print(command_list(group))
                return EXIT_USAGE
        args = _parse_args(name, argv)
        return args.func(args)
    return _exit_status(command)


def study_script(name: str, argv=None) -> int:
    """``python scenarios/NAME.py [--out DIR] [--quick]`` (default ``argv``:
    ``sys.argv[1:]``): ``emu study NAME``, with a usage of its own, which
    takes no NAME; the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)

    def command() -> int:
        check_working_folder()
        from emu.cli.study import script_parser
        args = script_parser(name).parse_args(argv)
        return args.func(args)
    return _exit_status(command)


def _exit_status(command) -> int:
    """Run ``command()``: its exit status, or a one-line error and 2 (bad
    input), 130 (interrupted), 143 (terminated: SIGTERM), 129 (hung up:
    SIGHUP), 1 (stdout could not be written: a full disk), 0 (the reader of
    stdout went away)."""
    out, said = sys.stdout, sys.stderr
    # what emu says on stderr (progress, notes, the error line) is said if it
    # can be: a closed or full stderr does not fail the command
    sys.stderr = _Stderr(said if said is not None else _ClosedStdout())
    try:
        try:
            # NOTE: emu does no linear algebra; without this numpy's import starts
            # one OpenBLAS thread per core, a noticeable share of a short command's time
            os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
            # stdout closed (``>&-``): Python gives None, where print writes
            # nothing and says nothing; a result would be lost without a word
            sys.stdout = _Stdout(out if out is not None else _ClosedStdout())
            with command_line():        # messages name the options as the command line does
                status = command()
            if stop.asked():            # a stop the command took itself (a sweep says so)
                _take_stop()
            sys.stdout.flush()          # a full disk is said here, not at the exit
        except Exception:
            # a stop whose raise landed where it was turned into another
            # error (numpy's import says ImportError) is the stop
            if stop.asked():
                stop.check()
            raise
        return status
    except EmuError as err:
        msg = str(err)
        print(msg if msg.startswith(("emu:", "emu ")) else f"emu: error: {msg}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt as interrupt:
        _take_stop()
        how, status = stopped(interrupt)
        print(f"emu: {how}", file=sys.stderr)
        return status
    except BrokenPipeError:
        return 0
    except OSError as err:
        if err.errno not in FULL:
            raise
        # a full disk or a quota met past the folders a Stage writes (a sweep's
        # own files): one line, as a Stage's says it
        print(f"emu: error: cannot write the results ({err.strerror or err})", file=sys.stderr)
        return EXIT_USAGE
    except OutputError as err:
        print(f"emu: error: cannot write the output: {err}", file=sys.stderr)
        # what is left in the buffer goes nowhere, not to a second error at the exit
        if out is not None:
            with contextlib.suppress(OSError, ValueError):
                null = os.open(os.devnull, os.O_WRONLY)
                os.dup2(null, out.fileno())
                os.close(null)
        return EXIT_FAILED
    finally:
        sys.stdout, sys.stderr = out, said


class _ClosedStdout:
    """The stdout (or stderr) of a process started with it closed: a write
    is an error (for stdout: the result has nowhere to go, said as a full
    disk's is; for stderr, let go)."""

    encoding = "utf-8"

    def write(self, text):
        raise OSError(errno.EBADF, "stdout is closed")

    def flush(self):
        pass

    def isatty(self) -> bool:
        return False

    def fileno(self):
        raise OSError(errno.EBADF, "stdout is closed")


class _Stderr:
    """stderr, whose write errors (closed, a full disk, a reader gone) are
    let go: what emu says there is said if it can be."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, text):
        try:
            return self._stream.write(text)
        except (OSError, ValueError, UnicodeEncodeError):
            return len(text)

    def flush(self):
        with contextlib.suppress(OSError, ValueError):
            self._stream.flush()

    def __getattr__(self, name):
        return getattr(self._stream, name)


class _Stdout:
    """stdout, its write errors told apart from every other OSError (a broken
    pipe stays what it is: the reader went away)."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, text):
        try:
            return self._checked(self._stream.write, text)
        except UnicodeEncodeError:
            # a stdout that cannot encode every character (PYTHONIOENCODING=ascii,
            # a non-UTF-8 locale): the others escaped ('\xb5s'), as stderr has them
            enc = getattr(self._stream, "encoding", None) or "ascii"
            return self._checked(self._stream.write,
                                 text.encode(enc, "backslashreplace").decode(enc))

    def flush(self):
        return self._checked(self._stream.flush)

    @staticmethod
    def _checked(call, *args):
        try:
            return call(*args)
        except BrokenPipeError:
            raise
        except OSError as err:
            raise OutputError(err.strerror or str(err)) from None

    def __getattr__(self, name):
        return getattr(self._stream, name)


def _on_sigterm(main_pid: int):
    """The handler of SIGTERM, and of SIGHUP (a terminal closing)."""
    def handler(signum, frame):
        if os.getpid() != main_pid:         # a worker forked from this process: as before
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        if stop.taken.is_set():             # the command is saying it stopped
            return
        if not stop.requested.is_set():
            stop.requested_by = signum
        stop.requested.set()                # the long loops raise it again if this is lost
        if not stop.keep(Terminated(signum)):   # else raised at the held-off section's end
            raise Terminated(signum)
    handler.emu_stop = True
    return handler


def _on_sigint(main_pid: int):
    def handler(signum, frame):
        if os.getpid() == main_pid:
            if stop.taken.is_set():         # the command is saying it stopped
                return
            stop.interrupted.set()          # the long loops raise it again if this is lost
            if stop.keep(KeyboardInterrupt()):  # raised at the held-off section's end
                return
        raise KeyboardInterrupt()
    handler.emu_stop = True
    return handler


#: seconds after which a stop whose raise Python dropped is sent again
_RESEND_S = 0.01


def _on_lost_stop(main_pid: int):
    """``sys.unraisablehook``: a stop (:class:`Terminated`, Ctrl-C's
    ``KeyboardInterrupt``) raised where Python drops exceptions (a
    finalizer, a weakref callback of the import machinery) is neither
    printed nor lost: its signal is sent again a moment later, from another
    thread, so that its handler raises where the main thread runs then, not
    inside this hook (where the raise would be dropped once more).  Once a
    stop is asked, what objects half made by the interrupted code say as
    they are dropped is not printed either.  Anything else is reported as
    Python reports it."""
    def hook(unraisable):
        if os.getpid() == main_pid and stop.asked():
            if isinstance(unraisable.exc_value, KeyboardInterrupt):
                signum = (unraisable.exc_value.signum
                          if isinstance(unraisable.exc_value, Terminated) else signal.SIGINT)
                again = threading.Timer(_RESEND_S, _send_again, (main_pid, signum))
                again.daemon = True
                again.start()
            return
        sys.__unraisablehook__(unraisable)
    return hook


def _take_stop() -> None:
    """The command has taken its stop: it says so, or already has (a sweep
    says how many of its runs are done), and the process ends with the
    command's status, whatever else the stop left behind."""
    stop.taken.set()
    _let_go_of_stops()
    _forget_unhandled_interrupt()


def _let_go_of_stops() -> None:
    """Once the command has taken its stop, the stop handlers :func:`run`
    installed give way to ignoring the signals: one sent again, or sent
    twice, as the process says it stopped and ends would kill it there
    (Python gives a signal its default action as it exits)."""
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        if getattr(signal.getsignal(signum), "emu_stop", False):
            signal.signal(signum, signal.SIG_IGN)


def _forget_unhandled_interrupt() -> None:
    """The command has taken its Ctrl-C: let the process end with its status.

    CPython takes a ``KeyboardInterrupt`` raised inside code it runs from a
    string (``exec`` and ``eval``: a dataclass's or a namedtuple's methods,
    made as a module imports) as one the program left unhandled, even once
    the program has handled it; as the interpreter ends, it then kills
    itself with SIGINT, and the status the command returned is lost (4 of
    150 Ctrl-C sent in ``emu tlb``'s first 0.35 s, on a machine with its
    other core busy).  CPython forgets it whenever it runs code from a string
    again, as here."""
    exec("pass", {})


def _send_again(pid: int, signum: int) -> None:
    if not stop.taken.is_set():
        os.kill(pid, signum)


def run() -> int:
    """The ``emu`` command as a process (its console script, ``python -m emu``
    and ``python -m emu.cli``): :func:`main`, then every object left is set aside from the
    collection Python makes as it exits.

    NOTE: that last pass over numpy's and emu's objects, none of them
    garbage, was 10-15 ms of every command; the process ends just after,
    so nothing it could have freed is kept long.  :func:`main` itself,
    called in a process that goes on, leaves the collector as it was.
    """
    signal.signal(signal.SIGTERM, _on_sigterm(os.getpid()))
    if signal.getsignal(signal.SIGHUP) is signal.SIG_DFL:               # not under nohup
        signal.signal(signal.SIGHUP, _on_sigterm(os.getpid()))
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:   # not if ignored
        signal.signal(signal.SIGINT, _on_sigint(os.getpid()))
    sys.unraisablehook = _on_lost_stop(os.getpid())
    global _OWN_PROCESS
    _OWN_PROCESS = True
    status = main()
    gc.freeze()
    return status

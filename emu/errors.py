"""The one exception type that reaches the user.

Every problem with the user's input (a malformed trace, a wrong dtype, an
impossible configuration, an unknown key) is raised as an :class:`EmuError`
whose message is a single line naming the problem.  The CLI prints it and exits
with status 2; the Python API lets it propagate.  A message names an option
as its caller spells it (:func:`spelled`): ``--force`` on the command line,
``force=True`` in Python.
"""

import contextlib
import contextvars
import errno
import os
import re

#: a line break (any that str.splitlines breaks at) and the blanks around it
_BREAK = re.compile(r"\s*[\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]\s*")


#: The keyword of the Python API for each option of the command line whose
#: keyword is not the option's name with ``_`` for ``-`` (``--break-even``:
#: ``break_even``); a flag's is the keyword that sets it.
API_KEYWORDS = {"--force": "force=True", "--out": "out_dir", "--set": "overrides",
                "--grid": "grids", "--range": "ranges", "--vary": "varies", "-o": "out_html",
                "--no-plots": "plots=False"}

#: True while the command line runs a command (:func:`command_line`).
_COMMAND_LINE = contextvars.ContextVar("emu_command_line", default=False)


def spelled(option) -> str:
    """The command line's ``option`` (``--force``, ``--out``) as a message to
    the caller names it: as it is on the command line (in
    :func:`command_line`), else the keyword of the Python API that sets the
    same (``force=True``, ``out_dir``).  ``option`` may also be a pair
    ``(option, keyword)``, for a call whose keyword is not the usual one
    (``emu.study.run``'s folder is ``out``).  Every message that names an
    option names it through this, so that each caller reads the spelling it
    used.

    >>> spelled("--force"), spelled("--break-even"), spelled(("--out", "out"))
    ('force=True', 'break_even', 'out')
    >>> with command_line():
    ...     spelled("--force"), spelled(("--out", "out"))
    ('--force', '--out')
    """
    option, keyword = option if isinstance(option, tuple) else (option, None)
    if not option or _COMMAND_LINE.get():
        return option
    return keyword or API_KEYWORDS.get(option, option.lstrip("-").replace("-", "_"))


def on_command_line() -> bool:
    """Whether the caller is the command line (:func:`command_line`), for a
    message that names more than an option."""
    return _COMMAND_LINE.get()


def spelled_value(option: str, value) -> str:
    """``option`` given ``value``, as a message to the caller names it
    (:func:`spelled`): on the command line the option and its value, from
    Python the keyword and its value (``overrides`` a list of the same
    ``KEY=VALUE`` texts).

    >>> spelled_value("--samples", 16), spelled_value("--set", "sim.warmup_ms=MS")
    ('samples=16', "overrides=['sim.warmup_ms=MS']")
    >>> with command_line():
    ...     spelled_value("--samples", 16), spelled_value("--set", "sim.warmup_ms=MS")
    ('--samples 16', '--set sim.warmup_ms=MS')
    """
    if _COMMAND_LINE.get():
        return f"{option} {value}"
    if option == "--set":
        return f"{spelled(option)}={[str(value)]!r}"
    return f"{spelled(option)}={value}"


@contextlib.contextmanager
def command_line():
    """Within it, messages name the command line's options (:func:`spelled`)."""
    token = _COMMAND_LINE.set(True)
    try:
        yield
    finally:
        _COMMAND_LINE.reset(token)


#: what a write says when the disk (or the user's share of it) is full, or a
#: file is past the size the process may write: an error a simulation, which
#: reads and never writes, does not meet
FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


class OutputError(Exception):
    """Writing the command line's stdout failed (closed, a full disk, an I/O
    error): its reason.  Not an :class:`EmuError`: the input was good."""


class EmuError(Exception):
    """A problem with the user's input or configuration (one-line message)."""

    def __init__(self, message: str):
        # always one line: each break, with its indentation, becomes a space;
        # other runs of blanks are kept (a quoted line of a file shows as it is)
        message = _BREAK.sub(" ", str(message)).strip()
        super().__init__(message)


class ConfigError(EmuError, ValueError):
    """An impossible or malformed configuration (scenario, CLI options)."""


def check_flag(name: str, value, error: type = ConfigError) -> None:
    """Refuse (``error``, one line) a flag ``name`` that is not True or False:
    ``force="no"`` is true to Python, and would be taken as yes."""
    if not isinstance(value, bool):
        raise error(f"{name}: expected True or False, got {type(value).__name__} {value!r:.60}")


class TraceError(EmuError, ValueError):
    """A trace that cannot be read: missing, malformed, wrong dtype."""


def cannot_read(path: str, e: OSError) -> TraceError:
    """The one line for a trace path the system would not read."""
    return TraceError(f"{path}: cannot read: {e.strerror or e}")


def check_working_folder() -> None:
    """Refuse (ConfigError, one line) to run in a folder that was removed:
    every relative path would be relative to nothing (``os.getcwd`` fails),
    and a command would end in a traceback, a part of its result written."""
    try:
        os.getcwd()
    except FileNotFoundError:
        raise ConfigError("the current folder no longer exists (it was removed): cd to one "
                          "that does") from None

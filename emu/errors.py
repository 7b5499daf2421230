"""The one exception type that reaches the user.

Every problem with the user's input (a malformed trace, a wrong dtype, an
impossible configuration, an unknown key) is raised as an :class:`EmuError`
whose message is a single line naming the problem.  The CLI prints it and exits
with status 2; the Python API lets it propagate.
"""

import os
import re

#: a line break (any that str.splitlines breaks at) and the blanks around it
_BREAK = re.compile(r"\s*[\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]\s*")


class EmuError(Exception):
    """A problem with the user's input or configuration (one-line message)."""

    def __init__(self, message: str):
        # always one line: each break, with its indentation, becomes a space;
        # other runs of blanks are kept (a quoted line of a file shows as it is)
        message = _BREAK.sub(" ", str(message)).strip()
        super().__init__(message)


class ConfigError(EmuError, ValueError):
    """An impossible or malformed configuration (scenario, CLI options)."""


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

"""What every ``emu`` subcommand's parser shares."""

from __future__ import annotations

import argparse

from emu.errors import EmuError

#: Exit statuses: a worker process died (``emu sweep``), bad input, interrupted.
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

PROGRESS_CHOICES = ["auto", "bar", "lines", "none"]


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (an EmuError: exit status 2)."""

    def error(self, message):  # noqa: D401 - argparse's API
        raise EmuError(f"{self.prog}: {message}")


def int_arg(text: str) -> int:
    """An integer option in any base Python accepts (``4096``, ``0x1000``)."""
    try:
        return int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid integer {text!r}") from None


def add_set_option(p, help_text: str) -> None:
    """``--set KEY=VALUE`` (repeatable), collected in ``args.overrides``."""
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help=help_text)


def add_progress_option(p, help_text: str) -> None:
    """``--progress auto|bar|lines|none`` (default auto)."""
    p.add_argument("--progress", choices=PROGRESS_CHOICES, default="auto", help=help_text)

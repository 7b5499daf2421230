"""What every ``emu`` subcommand's parser shares."""

from __future__ import annotations

import argparse

from emu.errors import EmuError


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

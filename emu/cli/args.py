"""What every ``emu`` subcommand's parser shares."""

from __future__ import annotations

import argparse
import re
import shutil
from typing import Optional

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


_SIZE = re.compile(r"\s*(\d+)\s*([KMG])(?:I?B)?\s*", re.IGNORECASE)
_SCALE = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


def size_arg(text: str) -> int:
    """A size in bytes: an integer (``4096``, ``0x1000``) or one with a binary
    suffix, K, M or G (``4K`` = 4096, ``64K``, ``16M``; ``KB``/``KiB`` too)."""
    m = _SIZE.fullmatch(text)
    if m:
        return int(m[1]) * _SCALE[m[2].upper()]
    try:
        return int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid size {text!r} (e.g. 4096, 4K, 64K, 16M)") \
            from None


def add_set_option(p, help_text: str) -> None:
    """``--set KEY=VALUE`` (repeatable), collected in ``args.overrides``."""
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
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


def add_wide_option(p) -> None:
    """``--wide``: tables at their full width."""
    p.add_argument("--wide", action="store_true",
                   help="print tables at their full width (default: fitted to the terminal, "
                        "or to COLUMNS, 80 when not a terminal)")


def terminal_width(args) -> Optional[int]:
    """The columns the text output fits in: None with ``--wide``, else the
    terminal's width (COLUMNS if set; 80 when stdout is not a terminal)."""
    return None if getattr(args, "wide", False) else shutil.get_terminal_size((80, 24)).columns

"""``python -m emu``: the ``emu`` command."""

import sys

from emu.cli import run

sys.exit(run())

"""``python -m emu.cli``: the ``emu`` command."""

import sys

from emu.cli import run

sys.exit(run())

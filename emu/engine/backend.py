"""Choose the implementation of the fast path: ``cython`` or ``reference``.

The rest of the package gets the fast path only through :func:`get` (as
``emu.engine.get``), so a run can switch between the compiled extension
``emu._fastpath`` and the reference twin :mod:`emu.engine.reference` with one
setting and get the same numbers.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from emu.engine import build
from emu.errors import ConfigError

BACKENDS = ("cython", "reference")


def get(name: str = "cython") -> ModuleType:
    """The module implementing the fast path for backend ``name``.

    Raises ImportError, saying how to build it, when the extension is missing
    or was built from other codes than emu/codes.py's (a stale build).
    """
    if name == "cython":
        return build.fastpath()
    if name == "reference":
        # imported on first use: the compiled backend's users never load it
        return importlib.import_module("emu.engine.reference")
    raise ConfigError(f"unknown backend {name!r} (choose from: {', '.join(BACKENDS)})")

"""Choose the implementation of the fast path: ``cython`` or ``reference``.

The rest of the package imports the fast path only through :func:`get`, so a
run can switch between the compiled extension and the pure-Python reference
(``emu/_reference.py``) with one setting and get the same numbers.
"""

from __future__ import annotations

from types import ModuleType

from emu.errors import ConfigError

BACKENDS = ("cython", "reference")


def get(name: str = "cython") -> ModuleType:
    """The module implementing the fast path for backend ``name``."""
    if name == "cython":
        try:
            from emu import _fastpath
        except ImportError as err:  # pragma: no cover - depends on the build
            from emu._check_build import raise_build_error
            raise_build_error(err)
        return _fastpath
    if name == "reference":
        from emu import _reference
        return _reference
    raise ConfigError(f"unknown backend {name!r} (choose from: {', '.join(BACKENDS)})")

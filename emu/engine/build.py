"""Say clearly when the Cython extension has not been built, or is stale."""

from __future__ import annotations

import os
from types import ModuleType

from emu import codes
from emu.errors import EmuError

INSTRUCTIONS = """\
emu's compiled fast path (emu._fastpath) is not built.

It is built when the package is installed.  From the source tree run:

    pip install -e .

(or `python setup.py build_ext --inplace` for an in-place build).
The pure-Python reference backend is still available: pass backend="reference"
(`--set sim.backend=reference` for a run, `--backend reference` for `emu tlb`)."""

STALE = """\
emu's compiled fast path (emu._fastpath) was built from other codes than
emu/codes.py has now ({detail}).  Rebuild it: from the source tree run

    pip install -e ."""

_checked: list = []


class NotBuilt(EmuError, ImportError):
    """The compiled fast path is missing or stale: what to do, in one line
    on the command line (an EmuError), an ImportError to the API."""


def _shadowed() -> str:
    """Where this emu is a source tree imported before an installed emu (a
    command run from inside the checkout): a sentence saying so, else ''."""
    import importlib.metadata   # NOTE: here, not at the top: 15 ms of every command's start-up

    here = os.path.dirname(os.path.abspath(codes.__file__))
    try:
        installed = importlib.metadata.distribution("emu").locate_file("emu/__init__.py")
    except (importlib.metadata.PackageNotFoundError, OSError):
        return ""
    there = os.path.dirname(os.path.abspath(str(installed)))
    if there == here or not os.path.isfile(str(installed)):
        return ""
    return (f"\n\nThis emu is the source tree in {here}, imported before the emu installed "
            f"in {there} because the command runs from the checkout: run it from another "
            f"folder, or build this tree.")


def raise_build_error(err: Exception) -> None:
    """Raise NotBuilt for a missing extension: ``err`` and how to build it."""
    raise NotBuilt(f"{INSTRUCTIONS}{_shadowed()}\n\n({err})") from err


def stale_codes(fastpath: ModuleType) -> str:
    """The first tuple of emu.codes whose compiled enum differs, or ''."""
    compiled = fastpath.enum_values()
    for tuple_name in codes.C_ENUMS.values():
        want = {name: i for i, name in enumerate(getattr(codes, tuple_name))}
        if compiled.get(tuple_name) != want:
            return f"{tuple_name} differs"
    return ""


def fastpath() -> ModuleType:
    """The compiled extension, checked once against emu.codes."""
    if not _checked:
        try:
            from emu import _fastpath
        except ImportError as err:  # pragma: no cover - depends on the build
            raise_build_error(err)
        detail = stale_codes(_fastpath)
        if detail:
            raise NotBuilt(STALE.format(detail=detail))
        _checked.append(_fastpath)
    return _checked[0]

"""Say clearly when the Cython extension has not been built, or is stale."""

from __future__ import annotations

from types import ModuleType

from emu import codes

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


def raise_build_error(err: Exception) -> None:
    """Raise ImportError for a missing extension: ``err`` and how to build it."""
    raise ImportError(f"{err}\n\n{INSTRUCTIONS}") from err


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
            raise ImportError(STALE.format(detail=detail))
        _checked.append(_fastpath)
    return _checked[0]

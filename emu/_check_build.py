"""Say clearly when the Cython extension has not been built."""

INSTRUCTIONS = """\
emu's compiled fast path (emu._fastpath) is not built.

It is built when the package is installed.  From the source tree run:

    pip install -e .

(or `python setup.py build_ext --inplace` for an in-place build).
The pure-Python reference backend is still available: pass backend="reference"
(`--backend reference` on the command line)."""


def raise_build_error(err: Exception) -> None:
    raise ImportError(f"{err}\n\n{INSTRUCTIONS}") from err

"""Opening a trace: the format is decided by the file's content.

Three formats are read, detected by content first (magic bytes, peeked
from the one open file: :mod:`~emu.workload.traces.source`) and by
extension second: ``npz`` (:mod:`~emu.workload.traces.npz`), ``npy``
(:mod:`~emu.workload.traces.npy`) and valgrind ``lackey`` text, plain or
gzip (:mod:`~emu.workload.traces.lackey`).
"""
from __future__ import annotations

import importlib
import os

from emu.errors import TraceError
from emu.workload.traces.base import Trace
from emu.workload.traces.source import open_source

__all__ = ["open_trace"]

ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")  # local file header; empty archive
NPY_MAGIC = b"\x93NUMPY"
GZIP_MAGIC = b"\x1f\x8b"


# NOTE: a format's reader is imported when a trace of that format is opened:
# ``emu tlb`` on an .npy then starts without loading the zip, gzip and lackey
# readers (a few milliseconds of a short run)
def _reader(module: str, name: str) -> type:
    return getattr(importlib.import_module(f"emu.workload.traces.{module}"), name)


def open_trace(path) -> Trace:
    """Open the trace at ``path``, detecting its format, and return a
    :class:`Trace`.

    The path is opened once (:func:`~emu.workload.traces.source.open_source`),
    so a pipe, FIFO or ``/dev/stdin`` reads exactly like a file.  The format
    is decided by the first bytes (zip magic -> npz, ``\\x93NUMPY`` -> npy,
    gzip magic or anything else -> lackey text); a ``.npz`` / ``.npy`` path
    whose content is not a zip / npy is refused.  Headers (npz, npy) and the
    first block of lackey text are checked here; every value is checked as
    its part of the file is read.  Raises :class:`TraceError` naming the
    file and the problem.
    """
    source = open_source(path)
    path = source.path
    head = source.head
    ext = os.path.splitext(path)[1].lower()
    try:
        if head.startswith(ZIP_MAGICS):
            return _reader("npz", "_NpzTrace")(source)
        if head.startswith(NPY_MAGIC):
            return _reader("npy", "_NpyTrace")(source)
        if ext == ".npz":
            raise TraceError(f"{path}: not a valid npz file (no zip signature)")
        if ext == ".npy":
            raise TraceError(f"{path}: not a valid npy file (no NUMPY magic)")
        return _reader("lackey", "_LackeyTrace")(source, gz=head.startswith(GZIP_MAGIC))
    except BaseException:
        source.close()
        raise

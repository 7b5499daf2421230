"""Opening a trace: the format is decided by the file's content.

Three formats are read, detected by content first (magic bytes) and by
extension second: ``npz`` (:mod:`~emu.workload.traces.npz`), ``npy``
(:mod:`~emu.workload.traces.npy`) and valgrind ``lackey`` text, plain or
gzip (:mod:`~emu.workload.traces.lackey`).
"""
from __future__ import annotations

import os

from emu.errors import TraceError
from emu.workload.traces.base import Trace
from emu.workload.traces.lackey import GZIP_MAGIC, _LackeyTrace
from emu.workload.traces.npy import NPY_MAGIC, _NpyTrace
from emu.workload.traces.npz import ZIP_MAGICS, _NpzTrace

__all__ = ["open_trace"]


def _fspath(path) -> str:
    try:
        return os.fspath(path)
    except TypeError:
        raise TraceError(f"{path!r}: not a file path") from None


def open_trace(path) -> Trace:
    """Open the trace at ``path``, detecting its format, and return a
    :class:`Trace`.

    The format is decided by content (zip magic -> npz, ``\\x93NUMPY`` ->
    npy, gzip magic or anything else -> lackey text); a ``.npz`` / ``.npy``
    file whose content is not a zip / npy is refused.  npz traces are read
    and validated whole; npy headers and the first block of lackey text are
    checked.  Raises :class:`TraceError` naming the file and the problem.
    """
    path = _fspath(path)
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except FileNotFoundError:
        raise TraceError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise TraceError(f"{path}: is a directory, not a trace file") from None
    except OSError as e:
        raise TraceError(f"{path}: cannot read: {e.strerror or e}") from None
    if not head:
        raise TraceError(f"{path}: empty trace (the file is empty)")
    ext = os.path.splitext(path)[1].lower()
    if head.startswith(ZIP_MAGICS):
        return _NpzTrace(path)
    if head.startswith(NPY_MAGIC):
        return _NpyTrace(path)
    if ext == ".npz":
        raise TraceError(f"{path}: not a valid npz file (no zip signature)")
    if ext == ".npy":
        raise TraceError(f"{path}: not a valid npy file (no NUMPY magic)")
    return _LackeyTrace(path, gz=head.startswith(GZIP_MAGIC))

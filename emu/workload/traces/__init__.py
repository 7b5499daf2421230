"""Memory-access traces: readers, writers and a synthetic program-like trace.

A trace is a sequence of records ``(addr, kind, size)``
(:mod:`~emu.workload.traces.base`).  A trace path is opened once
(:mod:`~emu.workload.traces.source`), so a pipe (``-`` or ``/dev/stdin``), a process
substitution or a FIFO reads exactly as a file would; the format is decided
by the first bytes, magic bytes first and extension second
(:func:`open_trace`).  Three formats, one module each, every one read in
bounded memory, window by window:

``npz`` (:mod:`~emu.workload.traces.npz`)
    a zip of ``.npy`` arrays ``addr`` (required), ``kind`` (optional: absent
    means every record is a load) and ``size`` (optional); other members
    are ignored (and named).  Stored members are read where their data lies
    in the archive (CRC-32 checked), compressed ones decompressed a window at
    a time.  Must be a regular file.
``npy`` (:mod:`~emu.workload.traces.npy`)
    a structured array with fields ``addr`` / ``kind`` / ``size`` (the last
    two optional) or a plain 1-D integer array of addresses (all loads).
    Read window by window at its position in a file, as it arrives from a
    pipe.
``lackey`` (:mod:`~emu.workload.traces.lackey`)
    the text printed by ``valgrind --tool=lackey --trace-mem=yes``, plain or
    gzip-compressed (recognised by the gzip magic bytes), valgrind's own
    lines in it skipped (``==pid==``, ``--pid--`` and ``**pid**``: its
    output, warnings and errors share the stream).  Parsed streaming,
    block by block, by a compiled parser (tens of millions of lines a
    second) checked against a reference one.

Values are validated as they are read, so a bad value deep in a file raises
when its part of the file is reached.  Writers
(:mod:`~emu.workload.traces.writer`) write ``.npz`` and ``.npy``
atomically, and convert lackey text to either.

Every problem with a trace is raised as :class:`emu.errors.TraceError` whose
one-line message names the file and the problem.

:func:`read_ahead` reads the next chunk on a helper thread while the
consumer works on this one (``emu tlb`` and ``emu trace import`` do).

Chunks are produced identically whatever the chunk size: concatenating the
chunks of ``trace.chunks(7)`` gives the same arrays as ``trace.chunks(1000)``.
"""
import importlib

from emu.workload.traces.base import (
    KIND_INST,
    KIND_LOAD,
    KIND_MODIFY,
    KIND_STORE,
    MAX_SIZE,
    Trace,
    TraceChunk,
    read_ahead,
)
from emu.workload.traces.detect import open_trace
from emu.workload.traces.synthetic import default_trace_path, filter_kinds, synthetic_trace

_WRITERS = ("import_lackey", "import_trace", "write_trace_npy", "write_trace_npz")

__all__ = [
    "KIND_INST",
    "KIND_LOAD",
    "KIND_STORE",
    "KIND_MODIFY",
    "MAX_SIZE",
    "TraceChunk",
    "Trace",
    "open_trace",
    "read_ahead",
    "write_trace_npz",
    "write_trace_npy",
    "import_lackey",
    "import_trace",
    "default_trace_path",
    "synthetic_trace",
    "filter_kinds",
]


# NOTE: the writers are imported on first use, not with this package: reading
# a trace (``emu tlb``) then starts without loading them.
def __getattr__(name: str):
    if name in _WRITERS:
        return getattr(importlib.import_module("emu.workload.traces.writer"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

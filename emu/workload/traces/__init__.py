"""Memory-access traces: readers, writers and a synthetic program-like trace.

A trace is a sequence of records ``(addr, kind, size)``
(:mod:`~emu.workload.traces.base`).  Three on-disk formats are read, detected
by content first (magic bytes) and by extension second
(:func:`open_trace`), one module each:

``npz`` (:mod:`~emu.workload.traces.npz`)
    a zip of ``.npy`` arrays ``addr`` (required), ``kind`` (optional: absent
    means every record is a load) and ``size`` (optional).  Loaded whole, with
    ``allow_pickle=False``, and validated when opened.
``npy`` (:mod:`~emu.workload.traces.npy`)
    a structured array with fields ``addr`` / ``kind`` / ``size`` (the last
    two optional) or a plain 1-D integer array of addresses (all loads).
    Opened memory-mapped and read in windows, so a trace larger than RAM is
    processed in bounded memory; values are validated window by window, so a
    bad value deep in the file raises when its window is reached.
``lackey`` (:mod:`~emu.workload.traces.lackey`)
    the text printed by ``valgrind --tool=lackey --trace-mem=yes``, plain or
    gzip-compressed (recognised by the gzip magic bytes).  Parsed streaming,
    block by block, with vectorised numpy code (several million lines a
    second); an error deep in the file raises when its block is reached.

Writers (:mod:`~emu.workload.traces.writer`) write ``.npz`` and ``.npy``
atomically, and convert lackey text to ``.npz``.

Every problem with a trace is raised as :class:`emu.errors.TraceError` whose
one-line message names the file and the problem.

Chunks are produced identically whatever the chunk size: concatenating the
chunks of ``trace.chunks(7)`` gives the same arrays as ``trace.chunks(1000)``.
"""
from emu.workload.traces.base import (
    KIND_INST,
    KIND_LOAD,
    KIND_MODIFY,
    KIND_STORE,
    MAX_SIZE,
    Trace,
    TraceChunk,
)
from emu.workload.traces.detect import open_trace
from emu.workload.traces.synthetic import default_trace_path, filter_kinds, synthetic_trace
from emu.workload.traces.writer import import_lackey, write_trace_npy, write_trace_npz

__all__ = [
    "KIND_INST",
    "KIND_LOAD",
    "KIND_STORE",
    "KIND_MODIFY",
    "MAX_SIZE",
    "TraceChunk",
    "Trace",
    "open_trace",
    "write_trace_npz",
    "write_trace_npy",
    "import_lackey",
    "default_trace_path",
    "synthetic_trace",
    "filter_kinds",
]

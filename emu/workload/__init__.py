"""Access streams: trace readers and writers, synthetic traces.

See :mod:`emu.workload.traces` for the trace formats (valgrind lackey text,
``.npy`` / ``.npz``) and what each function promises.
"""
from emu.workload.traces import (  # noqa: F401
    KIND_INST,
    KIND_LOAD,
    KIND_MODIFY,
    KIND_STORE,
    MAX_SIZE,
    Trace,
    TraceChunk,
    default_trace_path,
    filter_kinds,
    import_lackey,
    open_trace,
    synthetic_trace,
    write_trace_npy,
    write_trace_npz,
)

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

"""What guests and host tasks run: access streams and traces.

:mod:`emu.workload.streams` generates a process's accesses from its workload
(:class:`emu.params.workload.Workload`); :mod:`emu.workload.traces` reads and
writes the trace formats (valgrind lackey text, ``.npy`` / ``.npz``).  The
trace API is re-exported here.
"""
from emu.workload import traces

__all__ = list(traces.__all__)


def __getattr__(name: str):
    # the trace API, taken from emu.workload.traces on first use (which
    # imports its writers only when they are asked for)
    if name in __all__:
        return getattr(traces, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""What guests and host tasks run: access streams and traces.

:mod:`emu.workload.streams` generates a process's accesses from its workload
(:class:`emu.params.workload.Workload`); :mod:`emu.workload.traces` reads and
writes the trace formats (valgrind lackey text, ``.npy`` / ``.npz``).  The
trace API is re-exported here.
"""
from emu.workload import traces
from emu.workload.traces import *  # noqa: F401,F403  (the trace API, listed in traces.__all__)

__all__ = list(traces.__all__)

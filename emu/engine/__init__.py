"""The Python/Cython boundary: the per-access engine and how to reach it.

The engine is the fast path of docs/design.md §3: the TLB arrays (``BookeTLB``,
``PlainTLB``), a CPU's translation hardware (``VirtCPU``) and a context's
per-access loops (``Ctx.run_virt``, ``Ctx.run_native``).  It exists twice,
with the same semantics:

* ``emu/_fastpath.pyx``, the compiled extension.  Its contract is
  ``emu/_fastpath.pxd``: the structs both sides agree on (a TLB entry, the
  cost table, the counters, the stop record) and the class layouts; its C
  enums are generated at build time from :mod:`emu.codes`; ``_fastpath.pyi``
  gives the API to editors and type checkers.
* :mod:`emu.engine.reference`, the readable twin in plain Python, which also
  reports each decision of its loops to a tracer (:mod:`emu.engine.tracer`).

The rest of the package reaches either one through :func:`get`
(:mod:`emu.engine.backend`); :mod:`emu.engine.build` says how to build a
missing or stale extension.  :func:`counter_arrays` gives the counters a
context adds to its arrays (the fields of the Counters struct), zeroed.
"""

import importlib

from emu.engine.backend import BACKENDS, get

__all__ = ["BACKENDS", "counter_arrays", "get"]


# NOTE: the reference twin is imported on first use, not with this package:
# ``emu tlb`` on the compiled extension then starts without loading it.
def __getattr__(name: str):
    if name == "counter_arrays":
        return importlib.import_module("emu.engine.reference.context").counter_arrays
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

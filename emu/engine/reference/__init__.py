"""The reference twin: the fast path's semantics in plain, readable Python.

This package is the oracle for the differential tests and the code a student
reads: every structure here behaves exactly like its counterpart in the
compiled extension ``emu/_fastpath.pyx`` (same counters, same TLB contents,
same random draws), only slower.  :mod:`~emu.engine.reference.tlb` holds the
TLB arrays, :mod:`~emu.engine.reference.context` the virtualized fast path;
this module gives the same names as the extension, so that
``emu.engine.get("reference")`` can stand in for it.

Unlike the extension, the reference reports every decision of its loops to a
tracer (:mod:`emu.engine.tracer`).
"""

from emu.codes import POLICIES
from emu.engine.reference.context import COST_FIELDS, MISS_DTYPE, Ctx, VirtCPU, cause_key_py
from emu.engine.reference.tlb import NO_PID, BookeTLB, PlainTLB, rng_next, rng_seed_state

__all__ = ["BookeTLB", "COST_FIELDS", "Ctx", "MISS_DTYPE", "NO_PID", "POLICIES", "PlainTLB", "VirtCPU",
           "cause_key_py", "rng_next", "rng_seed_state"]

"""Observation hooks on the Python-level handlers of a vCPU.

A vCPU thread has an ``observer`` attribute, None by default.  Every handler
listed below is decorated with :func:`observed`; when the observer of the
vCPU it runs for is set, the handler is called through it::

    observer.around(event, thread, call, *args)

``event`` is the handler's name from the table, ``thread`` the vCPU thread,
``args`` the handler's arguments and ``call`` the handler itself, bound:
``call(*args)`` runs it and returns its result.  ``around`` must call it
exactly once and return what it returned; what it does before and after is
its own business (narrate, count, time).  With no observer the handler runs
directly: the cost is one attribute read per call, and no handler of the
per-access loop is observed (that loop reports to the context's tracer,
:mod:`emu.engine.tracer`).

The events, their arguments and when they happen (names are stable; ``cpu``
is the physical CPU running the vCPU):

===================  ==================  ===========================================
event                arguments           when
===================  ==================  ===========================================
``vcpu_load``        cpu                 the vCPU's thread is scheduled in
``vcpu_put``         cpu                 the vCPU's thread is scheduled out
``guest_tlb_miss``   cpu, proc           the guest's own TLB miss handler runs for
                                         process ``proc`` (its trapping ``tlbwe``
                                         included)
``data_storage``     cpu, proc           a store of ``proc`` through an entry
                                         without UW: the guest's DataStorage
                                         handler runs (its tlbsx, tlbwe included)
``inst_storage``     cpu, proc           a fetch of ``proc`` through an entry
                                         without UX: the guest's exec fault runs
                                         (do_page_fault, its tlbsx, tlbwe included)
``c_path``           cpu                 KVM's C path maps the page the fast path
                                         stopped on (``gfn_to_pfn``)
``mmio_exit``        cpu, proc           an access of ``proc`` exits to QEMU;
                                         returns (blocked, after)
``syscall``          cpu, proc           ``proc`` makes a system call (sc, the
                                         guest kernel, rfi)
``timer_tick``       cpu, now            the guest's decrementer interrupt, delivered
                                         at a host tick at ``now``, is handled
``switch_process``   cpu, proc, now      the guest switches to ``proc`` (mtspr PID)
``halt``             cpu, now            nothing is runnable in the guest: its idle
                                         loop waits (EMUL_WAIT); returns
                                         (blocked, after)
===================  ==================  ===========================================

Handlers may nest: a timer tick can switch processes, a system call's kernel
accesses can take the C path.
"""

from __future__ import annotations

import functools

EVENTS = ("vcpu_load", "vcpu_put", "guest_tlb_miss", "data_storage", "inst_storage", "c_path",
          "mmio_exit", "syscall", "timer_tick", "switch_process", "halt")


def observed(event: str):
    """Decorate a handler method so that it reports ``event`` to its vCPU's observer.

    The method's object must have an ``observer`` attribute (the observer or
    None) and a ``thread`` attribute (the vCPU thread reported to the
    observer); both are read at each call, so an observer can be set or
    removed at any time.
    """
    if event not in EVENTS:
        raise ValueError(f"unknown observation event {event!r}")

    def decorate(handler):
        @functools.wraps(handler)
        def observable(self, *args):
            observer = self.observer
            if observer is None:
                return handler(self, *args)
            return observer.around(event, self.thread, functools.partial(handler, self), *args)
        observable.event = event
        return observable
    return decorate

"""The tracer protocol: the reference backend's per-access decisions, as named events.

Every context of the reference backend (:class:`emu.engine.reference.Ctx`)
has a ``tracer``, the null tracer :data:`NULL` unless one is set.  Its loops
(``run_virt``, ``run_native``) and ``map_shadow`` call one method of it per
decision, the event's name, with the context's id and the event's fields::

    ctx.tracer.miss(ctx.ctx, ea, kind, cause)

:class:`Tracer` lists the events: each method is one, and its parameters are
the event's fields.  It is also the null tracer: every method does nothing.
A tracer subclasses it and overrides the events it wants.  Tracing changes no
number: the loops do exactly the same with any tracer.

The compiled backend does not trace (its loops touch no Python object): a
run that wants the events runs on the reference backend, as ``emu explain``
does.

The order of the events: a hit is one ``hit``; a user store through an
entry without UW is one ``dsi``, a user fetch through one without UX one
``isi`` (the guest handles it, and the access runs again).  A virtualized miss is
``miss``, ``walk``, then either ``end`` (guest_miss) or ``gpa``, ``memslot``,
[``pfn``], [``hw_write``], ``end``; a shadow design's fill into slot hwater
(which never reaches hardware) has no ``hw_write``.  A native miss (a host thread's) is
``miss``, [``hw_write``], ``end``.  ``map_shadow`` called from Python (KVM's
C path, a trapping ``tlbwe``) reports its ``hw_write`` too.
"""

from __future__ import annotations

import inspect

#: how a miss ends in the loop (the ``outcome`` of ``end``)
OUTCOMES = ("filled", "guest_miss", "mmio", "deferred", "host_fault", "machine_check")


class Tracer:
    """The events of the loops, one method each; this base class ignores them all.

    ``ctx`` is the id of the context that decided; ``ea`` an effective
    address; ``kind`` an access kind (emu.codes.KINDS).
    """

    def hit(self, ctx: int, ea: int, kind: int, index: int, owner: int) -> None:
        """The access hit hardware entry ``index``, owned by ``owner``
        (context << 8 | guest TID, -1: the host kernel's pinned entry)."""

    def dsi(self, ctx: int, ea: int, kind: int, index: int) -> None:
        """The access, a user store, found hardware entry ``index`` without UW:
        a Data Storage interrupt, which KVM delivers to the guest."""

    def isi(self, ctx: int, ea: int, kind: int, index: int) -> None:
        """The access, a user fetch, found hardware entry ``index`` without UX:
        an Instruction Storage interrupt, which KVM delivers to the guest."""

    def miss(self, ctx: int, ea: int, kind: int, cause: str) -> None:
        """The access missed in hardware; ``cause`` is a name of emu.codes.MISS_CAUSES."""

    def walk(self, ctx: int, gi: int, cycles: int) -> None:
        """Step 1, the guest TLB walk: guest entry ``gi`` matched (-1: none)."""

    def gpa(self, ctx: int, gpa: int) -> None:
        """Step 3.1: the guest physical address."""

    def memslot(self, ctx: int, gfn: int, slot: int, visible: bool) -> None:
        """Step 3.2: is ``gfn`` in memslot ``slot``? (False: a device, MMIO)."""

    def pfn(self, ctx: int, source: str, pfn: int) -> None:
        """Step 3.3: what the pfn source (a name of emu.codes.PFN_SOURCES) knows
        (-1: not without the C path)."""

    def hw_write(self, ctx: int, index: int, evicted: tuple) -> None:
        """Hardware entry ``index`` is about to be written; ``evicted`` is
        ``tlb.read(index)`` before the write."""

    def end(self, ctx: int, outcome: str, cycles: int) -> None:
        """The miss is done in the loop: ``outcome`` (one of :data:`OUTCOMES`) and
        ``cycles``, all the cycles it was charged."""


#: The tracer a context has by default.
NULL = Tracer()

#: event -> its fields besides ``ctx`` (the parameters of the Tracer method)
EVENTS = {name: tuple(inspect.signature(getattr(Tracer, name)).parameters)[2:]
          for name in ("hit", "dsi", "isi", "miss", "walk", "gpa", "memslot", "pfn", "hw_write",
                       "end")}


class Recorder(Tracer):
    """Hands every event to :meth:`record` as one dict ``{"event": name, "ctx": ctx,
    **fields}``; by default keeps them, in order, in ``events``."""

    def __init__(self) -> None:
        self.events: list[dict] = []

    def record(self, event: dict) -> None:
        self.events.append(event)

    def _record(self, name: str, ctx: int, values: tuple) -> None:
        self.record({"event": name, "ctx": ctx, **dict(zip(EVENTS[name], values))})

    def hit(self, ctx, *fields):
        self._record("hit", ctx, fields)

    def dsi(self, ctx, *fields):
        self._record("dsi", ctx, fields)

    def isi(self, ctx, *fields):
        self._record("isi", ctx, fields)

    def miss(self, ctx, *fields):
        self._record("miss", ctx, fields)

    def walk(self, ctx, *fields):
        self._record("walk", ctx, fields)

    def gpa(self, ctx, *fields):
        self._record("gpa", ctx, fields)

    def memslot(self, ctx, *fields):
        self._record("memslot", ctx, fields)

    def pfn(self, ctx, *fields):
        self._record("pfn", ctx, fields)

    def hw_write(self, ctx, *fields):
        self._record("hw_write", ctx, fields)

    def end(self, ctx, *fields):
        self._record("end", ctx, fields)

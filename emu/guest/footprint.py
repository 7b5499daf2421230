"""What the guest kernel touches in memory while it handles an event: its footprint.

Linux 44x reaches its own memory through the pinned TID-0 lowmem mapping
(EA = KERNEL_BASE + guest physical address, one 256 MB entry in slot 63).
KVM shadows that entry in 4 KB pieces like any other guest entry
(docs/kvm440.md §2.5), so a kernel page whose shadow is not in the
hardware TLB costs a kernel-mode TLB miss (ITLBVIRT / DTLBVIRT) when the
guest touches it.  :class:`Footprint` lays the kernel's memory out and gives,
for each event, the accesses the guest kernel makes, as ``(ea, kind)``
arrays the vCPU runs in supervisor mode:

* text: one instruction fetch per text page of the event (the vectors and
  TLB handlers of head_44x.S, entry_32.S, the event's own C code);
* data: the event's accesses, spread in turn over its data pages — static
  kernel data and the process's own pages (task struct, the top page of its
  kernel stack, its page directory, a PTE page).

The miss handler's accesses are fixed by its code (head_44x.S @026477c1,
DataTLBError and finish_tlb_load): ``lwz PGDIR`` of the thread (task page),
``lwzx`` of the pgd entry (pgd page), four accesses to the 64-bit PTE
(``lwz``, ``stw`` of the ACCESSED bit, two ``lwz`` in finish_tlb_load) and
three of the globals (``lwz``/``stw`` of ``tlb_44x_index``, ``lwz
tlb_44x_hwater``): 9 data accesses to 4 pages.  The other counts are the cost
table's ``guest_fp_*`` rows.  Frames beyond the pinned 256 MB are not touched
(Linux would reach them through further pinned entries; the model pins one).

Kernel frames: text from frame 0, static data after it (:attr:`static_gfns`
frames in all); each process's kernel frames and its PTE pages are the guest
OS's (:class:`emu.guest.os.GuestOS`).
"""

from __future__ import annotations

import numpy as np

from emu.codes import KIND_IFETCH, KIND_LOAD, KIND_STORE
from emu.guest.os import KERNEL_BASE, KERNEL_MAPPED_GFNS, PTE_SPAN_SHIFT

#: Bytes between two accesses of an event to the same page (one cache line).
LINE = 32


def _ea(gfn: int, offset: int = 0) -> int:
    return KERNEL_BASE + (gfn << 12) + (offset & 0xFFF)


class Footprint:
    """The guest kernel's memory layout and the accesses of each event.

    ``costs`` is the cost table (its ``guest_fp_*`` rows).  The arrays it
    returns are cached and must not be written.
    """

    def __init__(self, costs):
        n = {k: int(costs[f"guest_fp_{k}"]) for k in (
            "vector_text_pages", "entry_text_pages", "interrupt_accesses",
            "syscall_text_pages", "syscall_data_pages", "syscall_accesses",
            "tick_text_pages", "tick_data_pages", "tick_accesses",
            "switch_text_pages", "switch_data_pages", "switch_accesses",
            "fault_text_pages", "fault_data_pages", "fault_accesses")}
        self.n = n
        self._next = 0
        self.vector_text = self._take(n["vector_text_pages"])
        self.entry_text = self._take(n["entry_text_pages"])
        self.syscall_text = self._take(n["syscall_text_pages"])
        self.tick_text = self._take(n["tick_text_pages"])
        self.switch_text = self._take(n["switch_text_pages"])
        self.fault_text = self._take(n["fault_text_pages"])
        self.globals = self._take(1)[0]        # tlb_44x_index, tlb_44x_hwater (.data)
        self.idle_task = self._take(1)[0]      # init_task
        self.idle_stack = self._take(1)[0]     # init_thread_union
        self.syscall_data = self._take(n["syscall_data_pages"])
        self.tick_data = self._take(n["tick_data_pages"])
        self.switch_data = self._take(n["switch_data_pages"])
        self.fault_data = self._take(n["fault_data_pages"])
        #: Frames the kernel's text and static data take from frame 0.
        self.static_gfns = self._next
        self._cache: dict = {}

    def _take(self, count: int) -> list:
        first = self._next
        self._next += count
        return list(range(first, first + count))

    # -- building ---------------------------------------------------------------------

    @staticmethod
    def _arrays(fetch_gfns, data_gfns, accesses: int, extra=()) -> tuple:
        """One fetch per text frame, ``accesses`` loads spread in turn over the
        data frames, then the ``extra`` (ea, kind) pairs; frames the kernel
        mapping does not reach are left out."""
        ea = [_ea(g) for g in fetch_gfns if g < KERNEL_MAPPED_GFNS]
        kind = [KIND_IFETCH] * len(ea)
        data = [g for g in data_gfns if g < KERNEL_MAPPED_GFNS]
        if data:
            for i in range(accesses):
                ea.append(_ea(data[i % len(data)], (i // len(data)) * LINE))
                kind.append(KIND_LOAD)
        for e, k in extra:
            ea.append(e)
            kind.append(k)
        return np.array(ea, np.uint32), np.array(kind, np.uint8)

    def _cached(self, key, build) -> tuple:
        out = self._cache.get(key)
        if out is None:
            out = self._cache[key] = build()
        return out

    def pages(self) -> set:
        """The guest virtual pages of every access list built so far: what the
        guest kernel has touched, besides clear_page's new frames."""
        return {int(p) for ea, _ in self._cache.values() for p in np.unique(ea >> 12)}

    def _stack(self, proc) -> int:
        """The top page of the kernel stack an interrupt saves its frame on."""
        return self.idle_stack if proc is None else proc.stack_gfn + 1

    def _task(self, proc) -> int:
        return self.idle_task if proc is None else proc.task_gfn

    def _interrupt(self, proc) -> tuple:
        """What every interrupt through the exception prolog touches: the vectors,
        entry_32.S and the exception frame on the kernel stack."""
        return (self.vector_text + self.entry_text, [self._stack(proc)],
                self.n["interrupt_accesses"])

    # -- the events ---------------------------------------------------------------------

    def miss(self, proc, ea: int) -> tuple:
        """A delivered TLB miss whose PTE is present (head_44x.S @026477c1)."""
        region = ea >> PTE_SPAN_SHIFT
        pgd = proc.pgd_gfn + ((ea >> PTE_SPAN_SHIFT) * 4 >> 12)
        pte = proc.pte_pages[region]
        off = ((ea >> 12) & 511) * 8

        def build():
            data = [(_ea(proc.task_gfn), KIND_LOAD),             # lwz r11,PGDIR(r11)
                    (_ea(pgd, region * 4), KIND_LOAD),           # lwzx r11,r12,r11
                    (_ea(pte, off + 4), KIND_LOAD),              # lwz r11,4(r12)
                    (_ea(pte, off + 4), KIND_STORE),             # stw r11,4(r12): ACCESSED
                    (_ea(pte, off), KIND_LOAD),                  # finish_tlb_load: MS word
                    (_ea(pte, off + 4), KIND_LOAD),              # LS word
                    (_ea(self.globals), KIND_LOAD),              # lwz tlb_44x_index
                    (_ea(self.globals, 4), KIND_LOAD),           # lwz tlb_44x_hwater
                    (_ea(self.globals), KIND_STORE)]             # stw tlb_44x_index
            return self._arrays(self.vector_text, [], 0, data)
        return self._cached(("miss", proc.index, region), build)

    def miss_bail(self, proc, ea: int, table: bool) -> tuple:
        """A delivered TLB miss whose PTE is absent: the walk up to the bail-out."""
        region = ea >> PTE_SPAN_SHIFT
        pgd = proc.pgd_gfn + ((ea >> PTE_SPAN_SHIFT) * 4 >> 12)

        def build():
            data = [(_ea(proc.task_gfn), KIND_LOAD), (_ea(pgd, region * 4), KIND_LOAD)]
            if table:                                           # lwz r11,4(r12): not present
                data.append((_ea(proc.pte_pages[region], ((ea >> 12) & 511) * 8 + 4),
                             KIND_LOAD))
            return self._arrays(self.vector_text, [], 0, data)
        return self._cached(("bail", proc.index, region, table), build)

    def fault(self, proc, ea: int, gfn: int) -> tuple:
        """do_page_fault for ``ea``, which got frame ``gfn``: the prolog's frame, the
        fault's own text and data, the PTE page, and clear_page of the new frame
        through the linear mapping (one touch)."""
        text, stack, acc = self._interrupt(proc)
        pte = proc.pte_pages[ea >> PTE_SPAN_SHIFT]
        body = self._cached(("fault", proc.index, pte), lambda: self._arrays(
            text + self.fault_text, self.fault_data + [pte],
            self.n["fault_accesses"], [(_ea(stack[0], i * LINE), KIND_STORE)
                                       for i in range(acc)]))
        if gfn >= KERNEL_MAPPED_GFNS:
            return body
        return (np.append(body[0], np.uint32(_ea(gfn))),
                np.append(body[1], np.uint8(KIND_STORE)))

    def syscall(self, proc) -> tuple:
        """A system call: the prolog's frame, the service's text and data, the task."""
        def build():
            text, stack, acc = self._interrupt(proc)
            frame = [(_ea(stack[0], i * LINE), KIND_STORE) for i in range(acc)]
            return self._arrays(text + self.syscall_text, self.syscall_data + [proc.task_gfn],
                                self.n["syscall_accesses"], frame)
        return self._cached(("syscall", proc.index), build)

    def tick(self, proc) -> tuple:
        """A guest timer tick while ``proc`` (None: the idle task) is current."""
        def build():
            text, stack, acc = self._interrupt(proc)
            frame = [(_ea(stack[0], i * LINE), KIND_STORE) for i in range(acc)]
            return self._arrays(text + self.tick_text, self.tick_data + [self._task(proc)],
                                self.n["tick_accesses"], frame)
        return self._cached(("tick", None if proc is None else proc.index), build)

    def switch(self, prev, nxt) -> tuple:
        """A context switch from ``prev`` to ``nxt`` (None: the idle task)."""
        def build():
            data = self.switch_data + [self._task(prev), self._task(nxt), self._stack(nxt)]
            return self._arrays(self.switch_text, data, self.n["switch_accesses"])
        key = ("switch", None if prev is None else prev.index, None if nxt is None else nxt.index)
        return self._cached(key, build)

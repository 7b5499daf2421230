"""``emu explain``: narrate, access by access, what the TLB miss handler does.

A student reads docs/design.md §3 (the four steps of the miss handler) and wants to
see them happen (the words are in :mod:`emu.teach.glossary`).  :func:`explain`
runs a scenario on the reference backend
(``emu/engine/reference/``, the code a student reads) with a tracer
(:mod:`emu.engine.tracer`) on one vCPU, and tells the story of the first N
accesses after that vCPU's K-th ``vcpu_load``::

    vm0.vcpu0 resumed on CPU0 (vcpu_load #3 at 4,212.7 us)
       descheduled at 4,005.9 us (vcpu_put) holding 44 hardware TLB entries; direct's
         vcpu_put invalidated 44 of them
       meanwhile host task 'noise' ran 187 accesses: 134 TLB misses (50 host page
         faults; a faulting access misses again once its page is in); its 84 tlbwe
         overwrote 0 of vm0.vcpu0's entries
       it now holds 0 hardware TLB entries; vcpu_load cost 100 cycles (vcpu_load 100)
      #0   ifetch 0x10000140 (guest PID 1 user; shadow PID 0, AS 1): UTLB miss
             [cause: flush]
          1. guest TLB walk: entry 2 matches (TID 1, 4 KB page 0x10000000) — 3 entries
             scanned, 36 cycles
          3.1 GPA 0x00402140   3.2 memslot 0: visible   3.3 pfn cache: hit (pfn 0x10002)
          tlbwe hw[38] — evicts host task 'noise' (TID 3, EA 0x20022000) — 372 cycles in
             the C handler (full_exit 125 + walk 36 + gpa 10 + memslot 25 +
             pfn_lookup 15 + hw_write 48 + restore 113)
          retry: hit hw[38]
      ...
      #5   ifetch 0x10000144: hit hw[38]

(some lines wrapped here).  Each hardware miss is tied to its cause (docs/design.md
§6), the guest TLB walk (step 1) to the entry it found, a miss the guest must
handle (step 2) to the guest's own handler and its trapping ``tlbwe``
(docs/kvm440.md §2.7), and a fill (step 3) to the GPA, the memslot
check, the pfn source and the hardware index the round robin chose, with the
entry it overwrote.  The cycles of every miss are printed as the total the
model charged and as the cost table's rows that make it up.

The guest's handler of a miss (or of a DSI or ISI) makes kernel accesses of
its own, told as accesses after the one it serves; when it returns, that
access runs again, and a guest timer tick may be taken first, on the way back
to user mode.  Every line of an access is told under its label: what its
handler did and its retries follow the label again, marked as continued::

      #382 store 0xc000b000: hit hw[527]
      #307 store 0x20027578 (continued: #373 to #382 were its guest handler's own accesses)
          guest handler: page-table walk; writes guest TLB entry 78 (...)
             gtlb[78] = EA 0x20027000, TID 1, 4 KB -> GPA 0x00405000
          ...
          retry: TLB miss [cause: compulsory]

A fast-path event is the retry of the access being told only when it has that
access's address, kind, mode and guest PID: another access's event (the
tick's, or a process's that preempted one with its retry pending) starts an
access of its own, and the one set aside is told again when it runs.

The :class:`Narrator` has two sources, both documented interfaces: it is the
tracer (:mod:`emu.engine.tracer`) of the vCPU's fast-path context, which
tells every hit, miss and step of the handler, and the observer
(:mod:`emu.observe`) of the vCPU's Python-level handlers: vcpu_load /
vcpu_put, the guest's TLB miss handler, the deferred C path, MMIO, system
calls, timer ticks, guest context switches and halt.  While the vCPU is
descheduled, an :class:`AwayCounter` on each other thread of its CPU counts
what that thread does to the hardware TLB.

The text depends only on the scenario, its seed and the options: no wall
time, no dict or set order.  Before the reference run, the compiled backend
finds the window (:mod:`emu.teach.locate`): a resume the run never reaches is
refused at once.  The reference run stops as soon as the window is told.
``only_misses`` and ``cause`` leave out the accesses that did not miss (of
that cause): each line is tagged with the access it tells, and the lines of
no access (a resume, a tick, a system call) stay.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from emu.codes import CYCLE_LABELS, CYCLES, EXIT_CATEGORIES, MISS_CAUSES, handler_name
from emu.engine.tracer import NULL, Tracer
from emu.errors import EmuError, spelled
from emu.hw.e500 import VERSIONS as E500_VERSIONS, guest_tlb0_index
from emu.params import default_scenario, design
from emu.qemu.devices import DEVICE_GPAS
from emu.run import resolve
from emu.teach.locate import ReplayProgress, build_machine, locate, pick_vcpu
from emu.workload.traces.source import check_pipe_traces

KIND_NAMES = ("ifetch", "load", "store", "modify")
SOURCE_NAMES = {"gup": "gup", "pin-all": "pin-all table", "pfn-cache": "pfn cache",
                "guest-tlb-refs": "guest TLB ref"}

DEFAULT_RESUME = 3
#: the observed events that tell no access of the window, and what they are: the
#: access being told is set aside while they run (its retry may follow them, as
#: a guest timer tick taken on the rfi of the guest's handler for it)
APART = {"vcpu_load": "the vCPU's resume", "vcpu_put": "the vCPU's deschedule",
         "syscall": "a system call", "timer_tick": "the guest timer tick",
         "switch_process": "a guest context switch", "halt": "the guest's idle loop"}
DEFAULT_ACCESSES = 20


class _WindowDone(Exception):
    """Raised from a hook when the window is told: it ends the run early."""


# -- small formatting helpers ------------------------------------------------------

def _hex(x: int) -> str:
    return f"0x{int(x):08x}"


def _size(shift: int) -> str:
    n = 1 << int(shift)
    for unit, k in (("GB", 30), ("MB", 20), ("KB", 10)):
        if n >= 1 << k:
            return f"{n >> k} {unit}"
    return f"{n} B"


def _us(machine, cycles: int) -> str:
    return f"{cycles / machine.clock_mhz:,.1f} us"


def _plural(n: int, word: str, plural: str | None = None) -> str:
    return f"{n:,} {word if n == 1 else (plural or word + 's')}"


def _spent(cpu, before, names: dict | None = None) -> str:
    """What ``cpu``'s cycles since ``before`` (a copy of its cycle counters)
    went to, by category (named as ``names`` says, else as the plots name it,
    :data:`~emu.codes.CYCLE_LABELS`): "exit/entry 113, gfn_to_pfn 2,400"."""
    names = {**CYCLE_LABELS, **(names or {})}
    return ", ".join(f"{names[name]} {int(cpu.cycles[i] - before[i]):,}"
                     for name, i in CYCLES.items() if cpu.cycles[i] != before[i])


# -- the result ------------------------------------------------------------------------

@dataclass
class Access:
    """One access of the window: where, what kind, and every miss it took."""

    number: int
    ea: int
    kind: int
    kernel: bool
    pid: int = 0                                   # the guest PID it ran under
    causes: list = field(default_factory=list)     # one cause name per hardware miss
    outcomes: list = field(default_factory=list)   # 'filled', 'guest_miss', 'mmio', 'deferred'
    handler_cycles: int = 0                        # cycles charged by the fast path's handler
    c_path_cycles: int = 0                         # cycles of the C path after the handler

    @property
    def page(self) -> int:
        return self.ea >> 12


@dataclass
class Explanation:
    """What :func:`explain` found: the narration and the accesses behind it."""

    vcpu: str
    resume: int
    requested: int
    lines: list
    accesses: list

    @property
    def text(self) -> str:
        return "\n".join(self.lines) + "\n"

    @property
    def misses(self) -> int:
        """Hardware TLB misses taken by the window's accesses (retries included)."""
        return sum(len(a.causes) for a in self.accesses)

    @property
    def distinct_pages(self) -> int:
        return len({a.page for a in self.accesses})


# -- what the other threads of the CPU do while the vCPU is away ------------------------------

class AwayCounter(Tracer):
    """The tracer of another thread of the vCPU's CPU while the vCPU is descheduled:
    counts its accesses, TLB misses, host page faults and hardware writes, and
    how many of those writes overwrote an entry of the vCPU (context ``mine``)."""

    def __init__(self, mine: int):
        self.mine = mine
        self.counts = {"accesses": 0, "misses": 0, "faults": 0, "writes": 0, "evicted_mine": 0}

    def hit(self, ctx, ea, kind, index, owner):
        self.counts["accesses"] += 1

    def miss(self, ctx, ea, kind, cause):
        self.counts["misses"] += 1

    def end(self, ctx, outcome, cycles):
        if outcome == "host_fault":
            self.counts["faults"] += 1

    def hw_write(self, ctx, index, evicted):
        self.counts["writes"] += 1
        valid, _ea, _sh, _tid, ts, _rpn, _attr, owner = evicted
        if valid and ts == 1 and owner >= 0 and owner >> 8 == self.mine:
            self.counts["evicted_mine"] += 1


# -- the narrator ---------------------------------------------------------------------------

class Narrator(Tracer):
    """Tells the window's story of one vCPU: the tracer of its fast-path context
    (the events of :class:`~emu.engine.tracer.Tracer`) and the observer of its
    handlers (``around``, :mod:`emu.observe`).  It installs itself as the vCPU's
    observer; it becomes the context's tracer at the ``resume``-th vcpu_load."""

    def __init__(self, machine, vcpu, resume: int, accesses: int, quiet: bool = False):
        self.m, self.v = machine, vcpu
        self.resume, self.n = resume, accesses
        self.quiet = quiet
        self.lines: list[str] = []
        self.tags: list = []                   # per line: the number of the access it tells
        self.accesses: list[Access] = []
        self.active = False
        self.cur: Access | None = None         # the access being told (a miss is open)
        self.aside: list[Access] = []          # accesses set aside until their retry runs
        self.last_tag = None                   # the access the last line told (None: none)
        self.told_upto: dict[int, int] = {}    # access -> accesses told at its last line
        # (what it was, the first access it told) of the event that ran since the last line
        self.between: tuple | None = None
        self.step3: list[str] = []             # 3.1 / 3.2 / 3.3, printed as one line
        self.writes: list[tuple] = []          # hw_write events not told yet
        self.names = {c["id"]: (c["name"], c["kind"]) for c in machine.contexts()}
        self.cpu = machine.cpus[vcpu.cpu]
        # the 440 misses in its UTLB; the e500 in TLB0 and TLB1 both
        self.e500 = machine.scenario.machine.core == "e500"
        self.miss_name = "TLB miss" if self.e500 else "UTLB miss"
        self.others = [t for t in machine.vcpus + machine.qemu + machine.host_tasks
                       if t is not vcpu and t.cpu == vcpu.cpu]
        self.away: dict[int, AwayCounter] = {}  # other ctx id -> what it did while we were away
        self.put = None                        # (time, entries held before, after) of the last put
        self.walk_gi = -1
        self.away_history: list[dict] = []     # per resume told: other ctx id -> its counts
        vcpu.observer = self

    # -- output ----------------------------------------------------------------------------

    def say(self, text: str, indent: int = 0) -> None:
        """Tell a line of the access being told (``cur``), or of none.  A line of
        an access whose last line was followed by others (another access's, a
        tick's) is preceded by the access's label, marked as continued."""
        if self.quiet:
            return
        a = self.cur
        tag = None if a is None else a.number
        if a is not None and tag in self.told_upto and self.last_tag != tag:
            self.lines.append("  " + self.continued(a))
            self.tags.append(tag)
        self.between = None
        self.lines.append(" " * indent + text)
        self.tags.append(tag)
        self.last_tag = tag
        if a is not None:
            self.told_upto[tag] = len(self.accesses)

    def continued(self, a: Access) -> str:
        """The label of access ``a``, told again after other lines: the accesses
        told in between, and what made them when they were all the last event's
        (:attr:`between`): "#308 to #372 were its guest handler's own accesses"."""
        first, last = self.told_upto[a.number], len(self.accesses) - 1
        what, start = self.between or ("", 0)
        if start > first:
            what = ""                  # some were told before that event: say only which
        if last < first:
            return f"{self.label(a)} (continued{' after ' + what if what else ''})"
        span = f"#{first}" if first == last else f"#{first} to #{last}"
        if what:
            verb = "was" if first == last else "were"
            noun = "access" if first == last else "accesses"
            return f"{self.label(a)} (continued: {span} {verb} {what}'s own {noun})"
        return f"{self.label(a)} (continued after {span})"

    def owner_name(self, owner: int) -> str:
        if owner < 0:
            return "the host kernel's pinned entry"
        name, kind = self.names.get(owner >> 8, (f"context {owner >> 8}", "?"))
        if owner >> 8 == self.v.ctx.ctx:
            return f"{name}'s own entry"
        if kind == "host_task":
            return f"host task '{name}'"
        if kind == "qemu":
            return f"QEMU thread '{name}'"
        return f"{name}'s entry"

    def evicted(self, entry) -> str:
        valid, ea, shift, tid, ts, _rpn, _attr, owner = entry
        if not valid:
            return "a free entry"
        where = f"TID {tid}, EA {_hex(ea)}" + (f", {_size(shift)}" if shift != 12 else "")
        if owner >= 0 and ts == 1:
            where = f"guest TID {owner & 0xFF}, shadow TID {tid}, EA {_hex(ea)}"
        return f"evicts {self.owner_name(owner)} ({where})"

    def hw_entry(self, i: int) -> tuple:
        """Hardware entry ``i`` of the CPU: the 440's UTLB, or on the e500
        TLB0 at 0..n0-1 and TLB1 after it (n0 + ESEL)."""
        tlb, tlb1 = self.cpu.tlb, self.cpu.virt.tlb1
        return tlb.read(i) if tlb1 is None or i < tlb.entries else tlb1.read(i - tlb.entries)

    def held(self) -> int:
        """Valid hardware entries (TS=1) owned by the vCPU on its CPU."""
        return len(self.held_entries())

    def held_entries(self) -> set:
        """The valid hardware entries (TS=1) the vCPU owns on its CPU, each as
        (index, page, TID, translation, writes to the slot): an entry
        written again is another entry."""
        tlb, me = self.cpu.tlb, self.v.ctx.ctx
        return {(i, int(tlb.vpn_arr[i]), int(tlb.tid_arr[i]), int(tlb.rpn_arr[i]),
                 int(tlb.gen_arr[i]))
                for i in range(tlb.entries)
                if tlb.valid_arr[i] and tlb.ts_arr[i] == 1 and int(tlb.owner_arr[i]) >> 8 == me}

    def thread_name(self, ctx: int) -> str:
        name, kind = self.names[ctx]
        return {"host_task": f"host task '{name}'", "qemu": f"QEMU thread '{name}'"}.get(kind, name)

    # -- the observer: the vCPU's handlers (emu.observe) -----------------------------------------

    def around(self, event, thread, call, *args):
        """The observer protocol: ``on_<event>`` runs the handler (``call``) and tells it.
        Before the window only vcpu_load and vcpu_put are watched (to open it)."""
        if not self.active and event not in ("vcpu_load", "vcpu_put"):
            return call(*args)
        handler = getattr(self, "on_" + event)
        if event not in APART:
            return handler(call, *args)
        if event == "vcpu_put" and self.active:
            self.flush_writes(6)               # the access's own writes, told as its own
        # a resume, a tick, a system call, a switch or the idle loop is no part of the
        # access being told (its retry may come after it): its lines and accesses are
        # its own
        pending, self.cur = self.cur, None
        start = len(self.accesses)
        try:
            return handler(call, *args)
        finally:
            self.cur = pending
            self.between = (APART[event], start)

    def on_vcpu_load(self, call, cpu):
        number = self.v.resumes + 1
        if number == self.resume and not self.active:
            self.active = True
            self.v.ctx.tracer = self
        if not self.active:
            return call(cpu)
        t0, before, cycles = cpu.total(), self.held(), cpu.cycles.copy()
        result = call(cpu)
        cost, after = cpu.total() - t0, self.held()
        first = number == self.resume
        ind = 0 if first else 2
        verb = "loaded" if number == 1 else "resumed"
        self.say(f"{'' if first else '-- '}{self.v.name} {verb} on CPU{cpu.index} "
                 f"(vcpu_load #{number} at {_us(self.m, t0)})", ind)
        for line in self.away_lines(before):
            self.say(line, ind + 3)
        text = f"it now holds {_plural(after, 'hardware TLB entry', 'hardware TLB entries')}"
        if after != before:
            text += f" ({self.m.strategy.name} wrote {after - before} entries back at vcpu_load)"
        # (with the entry that follows it: a shadow design's entry loop)
        # (vcpu_load's own work is charged as part of the host's switch)
        parts = f" ({_spent(cpu, cycles, {'host_switch': 'vcpu_load'})})" if cost else ""
        self.say(text + f"; vcpu_load cost {cost:,} cycles{parts}", ind + 3)
        return result

    def on_vcpu_put(self, call, cpu):
        if not self.active and self.v.resumes != self.resume - 1:
            return call(cpu)
        if self.active:
            self.flush_writes(6)
        t0, before = cpu.total(), self.held()
        result = call(cpu)
        self.put = (t0, before, self.held())
        for t in self.others:                  # watch the CPU's other threads until we resume
            self.away[t.ctx.ctx] = t.ctx.tracer = AwayCounter(self.v.ctx.ctx)
        return result

    def away_lines(self, held_at_load: int) -> list:
        """What happened while the vCPU was descheduled (since its last vcpu_put)."""
        if self.put is None:
            return []
        t, before, after = self.put
        text = (f"descheduled at {_us(self.m, t)} (vcpu_put) holding "
                f"{_plural(before, 'hardware TLB entry', 'hardware TLB entries')}")
        if after != before:
            text += f"; {self.m.strategy.name}'s vcpu_put invalidated {before - after} of them"
        lines = [text]
        record = {"held_at_put": before, "held_after_put": after, "held_at_load": held_at_load}
        for th in self.others:
            s = self.away[th.ctx.ctx].counts
            record[th.ctx.ctx] = dict(s)
            th.ctx.tracer = NULL
            if s["accesses"] or s["misses"]:
                # an access that faults misses again once its page is in: the
                # misses may outnumber the accesses
                faults = (f" ({_plural(s['faults'], 'host page fault', 'host page faults')}; "
                          f"a faulting access misses again once its page is in)"
                          if s["faults"] else "")
                lines.append(f"meanwhile {self.thread_name(th.ctx.ctx)} ran "
                             f"{_plural(s['accesses'], 'access', 'accesses')}: "
                             f"{_plural(s['misses'], 'TLB miss', 'TLB misses')}{faults}; its "
                             f"{_plural(s['writes'], 'tlbwe', 'tlbwe')} overwrote "
                             f"{s['evicted_mine']} of {self.v.name}'s entries")
        if len(lines) == 1:
            lines.append("meanwhile no other thread ran on its CPU")
        if after:
            lines.append(f"{held_at_load} of the {after} entries it left in hardware survived")
        self.away_history.append(record)
        self.put = None
        return lines

    def on_guest_tlb_miss(self, call, cpu, proc):
        v = self.v
        gi, pf, t0 = v.gcpu.tlb_rr, v.guest.page_faults, cpu.total()
        fault_ea, _ = v.fault()
        result, traps = self.run_guest_handler(call, cpu, proc)
        if self.e500:                   # the way KVM handed the guest in MAS0[ESEL]
            gi = guest_tlb0_index(fault_ea, v.tlb0_victim())
        if v.guest.page_faults != pf:
            self.flush_writes(6, "KVM maps a kernel page: tlbwe")
            self.say("guest handler: no PTE, a guest page fault: do_page_fault takes a new frame "
                     "and the guest returns to user mode, where the access misses again — "
                     f"{cpu.total() - t0:,} cycles (the delivery's entry, the handler and its "
                     "trapping instructions)", 6)
            return result
        _v, ea, shift, tid, _ts, gpa, _a, _o = v.gtlb.read(gi)
        if self.e500:
            words, how = "1 tlbwe, trapping to KVM", "the way KVM named in MAS0[ESEL]"
        else:
            words = "1 batched tlbwe" if v.kernel.batch_tlbwe else "3 tlbwe, each trapping to KVM"
            how = "round robin"
        self.say(f"guest handler: page-table walk; writes guest TLB entry {gi} "
                 f"({how}) with {words}:", 6)
        self.say(f"gtlb[{gi}] = EA {_hex(ea)}, TID {tid}, {_size(shift)} -> GPA {_hex(gpa)}", 9)
        for i, old in self.writes:
            self.say(f"KVM maps it (kvmppc_mmu_map): tlbwe hw[{i}] — {self.evicted(old)}", 9)
        if len(self.writes) > 1:
            self.say("(each trapping tlbwe word releases the shadow the previous word made "
                     "and maps the entry again)", 9)
        self.writes = []
        self.say(f"{cpu.total() - t0:,} cycles (the delivery's entry, the guest handler and its "
                 f"{traps} trapping instructions)", 9)
        return result

    def run_guest_handler(self, call, *args) -> tuple:
        """Run a guest handler for the access being told, which waits for its
        retry (the guest kernel's own accesses in the handler are accesses of
        their own): (its result, the trapping instructions it made)."""
        traps0 = self.traps_taken()
        pending, self.cur = self.cur, None
        start = len(self.accesses)
        try:
            result = call(*args)
        finally:
            self.cur = pending
        self.between = ("its guest handler", start)
        return result, self.traps_taken() - traps0

    def traps_taken(self) -> int:
        """The vCPU's exits for emulated instructions so far (EMULINST, EMUL_*)."""
        e = self.v.ctx.arrays["exits"]
        return sum(int(e[4 * i]) for i, c in enumerate(EXIT_CATEGORIES)
                   if c == "EMULINST" or c.startswith("EMUL_"))

    def on_data_storage(self, call, cpu, proc):
        v, t0 = self.v, cpu.total()
        ea, _ = v.fault()
        result, traps = self.run_guest_handler(call, cpu, proc)
        gi = v.gtlb.find(ea, v.ctx.guest_pid, v.ctx.guest_as)
        if self.e500:
            self.say(f"guest handler: DataStorage — the PTE is writable but not yet "
                     f"HWWRITE: it marks it dirty and HWWRITE, finds guest TLB entry {gi} "
                     "(its PID into MAS6, tlbsx) and rewrites MAS3 with UW and SW (tlbwe, "
                     "trapping to KVM); every later fill of the page writes UW:", 6)
        else:
            self.say(f"guest handler: DataStorage — the PTE is writable: it marks it dirty, "
                     f"finds guest TLB entry {gi} (tlbsx) and rewrites its word 2 with UW "
                     "(tlbwe ATTRIB, trapping to KVM):", 6)
        for i, old in self.writes:
            how = "" if self.e500 else " (kvmppc_mmu_map, in the guest's supervisor mode: UW from SW)"
            self.say(f"KVM maps it again{how}: tlbwe hw[{i}] — {self.evicted(old)}", 9)
        self.writes = []
        self.say(f"{cpu.total() - t0:,} cycles (the DSI exit, the guest handler and its "
                 f"{traps} trapping instructions)", 9)
        return result

    def on_inst_storage(self, call, cpu, proc):
        t0 = cpu.total()
        result, traps = self.run_guest_handler(call, cpu, proc)
        self.say("guest handler: InstructionStorage, do_page_fault — the PTE is present "
                 "without HWEXEC: it flushes the page's data to the instruction cache, sets "
                 "HWEXEC and invalidates the guest TLB entry (_tlbie: tlbsx, then "
                 f"{'mtspr MAS1 and a tlbwe' if self.e500 else 'a tlbwe PAGEID'} with V "
                 "clear, trapping to KVM); the fetch misses "
                 "again and the fill writes UX", 6)
        self.writes = []
        self.say(f"{cpu.total() - t0:,} cycles (the ISI exit, the guest handler and its "
                 f"{traps} trapping instructions)", 9)
        return result

    def on_c_path(self, call, cpu):
        kvm = self.m.kvms[self.v.vm_index]
        calls, faults, t0 = kvm.gfn_to_pfn_calls, kvm.host_faults, cpu.total()
        before = cpu.cycles.copy()
        result = call(cpu)
        self.cur.c_path_cycles += cpu.total() - t0
        # what the cycles in C went to: gfn_to_pfn, KVM's own code, and the
        # entry that follows (a shadow design's entry loop with it)
        spent = _spent(cpu, before)
        what = []
        if kvm.gfn_to_pfn_calls != calls:
            fault = " (a host page fault)" if kvm.host_faults != faults else ""
            what.append("gfn_to_pfn" + fault)
        else:
            what.append(f"{SOURCE_NAMES.get(kvm.pfn_source, kvm.pfn_source)} lookup")
        if not self.writes:
            # the shadow went to slot hwater, which no entry loop writes to hardware
            self.say(f"C path: {', '.join(what)}; shadow slot {self.m.hwater} (hwater): the "
                     "entry loop never writes it to hardware, the access misses again — "
                     f"{cpu.total() - t0:,} cycles in C ({spent})", 6)
            return result
        *earlier, (i, old) = self.writes
        self.writes = earlier
        self.flush_writes(6)
        pfn = self.hw_entry(i)[5] >> 12
        self.say(f"C path: {', '.join(what)} -> pfn {pfn:#x}; tlbwe hw[{i}] — {self.evicted(old)}"
                 f" — {cpu.total() - t0:,} cycles in C ({spent})", 6)
        return result

    def on_mmio_exit(self, call, cpu, proc):
        result = call(cpu, proc)
        device = DEVICE_GPAS.get(int(self.v.ctx.stop_gpa) >> 12, "uart")
        self.say(f"QEMU emulates the {device} access; the vCPU blocks until it answers", 6)
        self.complete()                # QEMU finishes the access: it never hits
        return result

    def on_syscall(self, call, cpu, proc):
        self.say("-- system call: sc traps to KVM, which delivers it; the guest kernel runs", 2)
        result = call(cpu, proc)
        self.say("-- rfi back to guest user mode", 2)
        return result

    def on_timer_tick(self, call, cpu, now):
        t0 = cpu.total()
        result = call(cpu, now)
        self.say(f"-- guest timer tick (delivered at a host tick; guest handler, trapping "
                 f"instructions, rfi): {cpu.total() - t0:,} cycles", 2)
        return result

    def on_switch_process(self, call, cpu, proc, now):
        before = self.held_entries()
        result = call(cpu, proc, now)
        after = self.held_entries()
        # (what it wrote: the switch's own misses' fills, a shadow design's entry loop)
        self.say(f"-- guest context switch to PID {proc.pid} (mtspr PID traps): "
                 f"{len(before - after)} of its hardware entries released, "
                 f"{len(after - before)} written", 2)
        return result

    def on_halt(self, call, cpu, now):
        self.say("-- nothing runnable in the guest: the idle loop waits (mtmsr WE, "
                 "EMUL_WAIT: the vCPU blocks)", 2)
        return call(cpu, now)

    # -- the tracer: the vCPU's fast path (emu.engine.tracer) --------------------------------------

    def new_access(self, ea: int, kind: int) -> Access:
        c = self.v.ctx
        a = Access(len(self.accesses), ea, kind, kernel=not c.guest_pr, pid=int(c.guest_pid))
        self.accesses.append(a)
        self.cur = a
        return a

    def retried(self, ea: int, kind: int) -> bool:
        """Whether the fast path's event at ``ea``/``kind`` is the retry of an access
        already told: the access being told, or one set aside before its retry and
        retried now (a process preempted by a tick on its way back from its guest
        handler, rescheduled later).  The event of another access sets the one
        being told aside, and is a new access.  An access set aside whose process
        has exited (which never retries the miss it had pending) is forgotten."""
        c = self.v.ctx
        key = (int(ea), int(kind), not c.guest_pr, int(c.guest_pid))
        a = self.cur
        if a is not None:
            if (a.ea, a.kind, a.kernel, a.pid) == key:
                return True
            self.aside.append(a)
            self.cur = None
        if not self.aside:
            return False
        live = {p.pid for p in self.v.guest.processes}
        self.aside = [a for a in self.aside if a.pid in live]
        for i in range(len(self.aside) - 1, -1, -1):
            a = self.aside[i]
            if (a.ea, a.kind, a.kernel, a.pid) == key:
                self.cur = self.aside.pop(i)
                return True
        return False

    def complete(self) -> None:
        self.cur = None
        if len(self.accesses) >= self.n:
            raise _WindowDone()

    def label(self, a: Access) -> str:
        return f"#{a.number:<3} {KIND_NAMES[a.kind]} {_hex(a.ea)}"

    def hit(self, ctx, ea, kind, index, owner):
        note = ""
        if owner >= 0 and owner >> 8 != ctx:
            note = f" — owned by {self.owner_name(owner)}: an isolation violation"
        if not self.retried(ea, kind):
            a = self.new_access(ea, kind)
            self.say(f"{self.label(a)}: hit hw[{index}]{note}", 2)
        else:
            self.say(f"retry: hit hw[{index}]{note}", 6)
        self.complete()

    def dsi(self, ctx, ea, kind, index):
        self.refused(ea, kind, index, "without UW — a Data Storage interrupt (DSI exit)")

    def isi(self, ctx, ea, kind, index):
        self.refused(ea, kind, index,
                     "without UX — an Instruction Storage interrupt (ISI exit)")

    def refused(self, ea, kind, index, why: str) -> None:
        """The access hit hw[``index``], whose permissions refuse it (``why``)."""
        if not self.retried(ea, kind):
            a = self.new_access(ea, kind)
            self.say(f"{self.label(a)} (guest PID {self.v.ctx.guest_pid} user): hw[{index}] "
                     f"translates it {why}", 2)
        else:
            self.say(f"retry: hw[{index}] translates it {why}", 6)

    def miss(self, ctx, ea, kind, cause):
        c = self.v.ctx
        if not self.retried(ea, kind):
            a = self.new_access(ea, kind)
            mode = "user" if c.guest_pr else "kernel"
            pids = f"shadow PID {c.shadow_pid}"
            if c.pid1 != 0xFFFF:
                pids += f"/{c.pid1}"
            self.say(f"{self.label(a)} (guest PID {c.guest_pid} {mode}; {pids}, AS 1): "
                     f"{self.miss_name} [cause: {cause}]", 2)
        else:
            self.say(f"retry: {self.miss_name} [cause: {cause}]", 6)
        self.cur.causes.append(cause)

    def walk(self, ctx, gi, cycles):
        self.walk_gi = gi
        self.say(self.walk_text(gi, cycles), 6)

    def gpa(self, ctx, gpa):
        self.step3 = [f"3.1 GPA {_hex(gpa)}"]

    def memslot(self, ctx, gfn, slot, visible):
        vis = "visible" if visible else f"not visible (gfn {gfn:#x} is a device)"
        self.step3.append(f"3.2 memslot {slot}: {vis}")

    def pfn(self, ctx, source, pfn):
        src = SOURCE_NAMES.get(source, source)
        if pfn >= 0:
            self.step3.append(f"3.3 {src}: hit (pfn {pfn:#x})")
        elif source == "gup":
            self.step3.append("3.3 gup: the pfn needs get_user_pages (C)")
        else:
            self.step3.append(f"3.3 {src}: miss")

    def hw_write(self, ctx, index, evicted):
        self.writes.append((index, evicted))

    def end(self, ctx, outcome, cycles):
        a = self.cur
        a.outcomes.append(outcome)
        a.handler_cycles += cycles
        where = "asm" if self.v.ctx.handler == 0 else "C"
        cost = f"{cycles:,} cycles in the {where} handler ({self.breakdown(outcome, cycles)})"
        if outcome == "guest_miss":
            self.say(f"2. not in the guest TLB: KVM delivers the TLB miss to the guest — {cost}"
                     " so far", 6)
            return
        if self.step3:
            self.say("   ".join(self.step3), 6)
            self.step3 = []
        if outcome == "filled" and not self.writes:
            self.say(f"shadow slot {self.m.hwater} (hwater): the entry loop never writes it "
                     f"to hardware, the access misses again — {cost}", 6)
        elif outcome == "filled":
            *earlier, (i, old) = self.writes
            self.writes = earlier
            self.flush_writes(6)
            self.say(f"tlbwe hw[{i}] — {self.evicted(old)} — {cost}", 6)
        elif outcome == "machine_check":
            self.say("-> an instruction fetch from a device: counted ITLBVIRT, and KVM queues a "
                     f"machine check to the guest — {cost}", 6)
            self.complete()            # the guest skips the fetch: it never runs again
        elif outcome == "mmio":
            self.say(f"-> not RAM: exit to QEMU to emulate the access (MMIO) — {cost} so far", 6)
        elif outcome == "deferred" and where == "asm":
            self.say(f"-> pfn not known without C: the asm handler stops and defers to the C path "
                     f"— {cost} so far", 6)
        elif outcome == "deferred":
            self.say("-> pfn not in the pfn source: the C handler calls gfn_to_pfn — "
                     f"{cost} so far", 6)

    def walk_text(self, gi: int, cycles: int) -> str:
        ctx = self.v.ctx
        if ctx.hashed_walk:
            how = f"hashed lookup, {cycles} cycles"
        else:
            per = ctx.costs["asm_walk_per_entry" if ctx.handler == 0 else "c_walk_per_entry"]
            # the walk's cost is per entry scanned (e500 @0164c0f0 scans one TLB0 set)
            scanned = cycles // per if per else (gi + 1 if gi >= 0 else self.v.gtlb.entries)
            how = f"{_plural(scanned, 'entry', 'entries')} scanned, {cycles} cycles"
        if gi < 0:
            return (f"1. guest TLB walk (PID {ctx.guest_pid}, AS {ctx.guest_as}): "
                    f"no entry matches — {how}")
        _v, ea, shift, tid, _ts, _rpn, _a, _o = self.v.gtlb.read(gi)
        return (f"1. guest TLB walk: entry {gi} matches (TID {tid}, {_size(shift)} page "
                f"{_hex(ea)}) — {how}")

    def breakdown(self, outcome: str, total: int) -> str:
        """The cost table's rows that make up a miss's cycles (docs/design.md §3),
        each named by the fast-path profile's step it is charged to, as the
        profile's plot and table name them (``pfn_lookup``: the row
        ``c_pfn_lookup`` of the C handler)."""
        c, ctx = self.v.ctx.costs, self.v.ctx
        asm = ctx.handler == 0
        walk = ctx.walk_cost(self.walk_gi)
        pre = "asm_" if asm else "c_"
        parts = [("save", c["asm_save"]) if asm else ("full_exit", c["c_full_exit"]),
                 ("walk", walk)]
        if outcome == "guest_miss":
            parts.append(("deliver", c["deliver_interrupt"]))
        else:
            parts += [("gpa", c[pre + "gpa"]), ("memslot", c[pre + "memslot"])]
            if outcome == "machine_check":
                parts.append(("deliver", c["deliver_interrupt"]))
            elif outcome != "mmio":
                parts.append(("pfn_lookup", c[pre + "pfn_lookup"]))
            if outcome == "filled":
                parts.append(("hw_write", c[pre + "hw_write"]))
        if outcome in ("filled", "machine_check"):
            parts.append(("restore", c["asm_restore" if asm else "c_restore"]))
        rest = total - sum(v for _, v in parts)
        if rest:
            parts.append(("entry_restore", rest))      # a shadow design's entry loop
        return " + ".join(f"{name} {v}" for name, v in parts)

    def flush_writes(self, indent: int, verb: str = "tlbwe") -> None:
        for i, old in self.writes:
            self.say(f"{verb} hw[{i}] — {self.evicted(old)}", indent)
        self.writes = []

    # -- the summary ---------------------------------------------------------------------------

    def summary(self) -> None:
        self.cur = None                # the summary tells no access
        acc = self.accesses
        misses = [c for a in acc for c in a.causes]
        by_cause: dict[str, int] = {}
        for c in misses:
            by_cause[c] = by_cause.get(c, 0) + 1
        causes = ", ".join(f"{by_cause[c]} {c}" for c in MISS_CAUSES if c in by_cause)
        outcomes = [o for a in acc for o in a.outcomes]
        pages = len({a.page for a in acc})
        text = (f"{_plural(len(acc), 'access', 'accesses')} on {pages} distinct pages: "
                f"{_plural(len(misses), 'hardware TLB miss', 'hardware TLB misses')}")
        if misses:
            asm = self.v.ctx.handler == 0
            text += f" ({causes})"
            text += (f"; {outcomes.count('filled')} filled "
                     f"{'by the fast path' if asm else 'in the C handler'}, "
                     f"{outcomes.count('guest_miss')} delivered to the guest, "
                     f"{outcomes.count('deferred')} "
                     f"{'deferred to C' if asm else 'through gfn_to_pfn'}, "
                     f"{outcomes.count('mmio')} MMIO")
            if "machine_check" in outcomes:
                text += f", {outcomes.count('machine_check')} machine check(s)"
            text += f"; {sum(a.handler_cycles for a in acc):,} cycles in the miss handler"
            c_path = sum(a.c_path_cycles for a in acc)
            if c_path:
                text += f" and {c_path:,} in the C path after it"
        if len(acc) < self.n:
            text += f" (the run ended after {len(acc):,} of the {self.n:,} accesses asked for)"
        if self.put is not None:
            self.say(f"-- {self.v.name} descheduled at {_us(self.m, self.put[0])} (vcpu_put); "
                     "the run ends", 2)
        self.say("")
        self.say(text + ".")


# -- the API -----------------------------------------------------------------------------------

def _setting_lines(machine) -> list:
    sc = machine.scenario
    m, k = sc.machine, sc.kvm
    pfn = k.pfn_source
    if pfn == "pfn-cache":
        pfn += f" ({k.pfn_cache_entries} entries, {k.pfn_cache_policy})"
    name = f"scenario '{sc.name}'" if sc.name else "scenario"
    if m.core == "440":
        tlb = f"64-entry UTLB, round robin over 0..{m.hwater}"
    else:
        entries, ways = E500_VERSIONS[m.e500_version]
        tlb = f"e500{m.e500_version} TLB0 {entries} x {ways}-way + TLB1 16"
    cpus = _plural(m.cpus, "CPU")
    return [f"emu explain: {name}, seed {sc.seed}; {m.core} core ({tlb}), {cpus}; "
            f"strategy {k.strategy}, {handler_name(k.handler)} handler, pfn source {pfn}, "
            f"{k.guest_tlb_walk} guest TLB walk; design: {design(m, k).label}", ""]


def narrate(machine, vcpu, resume: int, accesses: int, quiet: bool = False) -> Narrator:
    """Run ``machine`` with a Narrator on ``vcpu`` until the window is told (or
    the run ends) and return the Narrator; its ``summary`` is not told yet."""
    nar = Narrator(machine, vcpu, resume, accesses, quiet)
    try:
        machine.run()
    except _WindowDone:
        pass
    return nar


def explain(scenario=None, overrides=(), resume: int = DEFAULT_RESUME,
            accesses: int = DEFAULT_ACCESSES, vcpu: str | None = None,
            quiet: bool = False, only_misses: bool = False, cause: str | None = None,
            progress: bool = False) -> Explanation:
    """Narrate the first ``accesses`` accesses of ``vcpu`` after its ``resume``-th vcpu_load.

    ``scenario``: a Scenario, a dict or a TOML path (None: the default scenario);
    ``overrides``: ``key=value`` strings; the narration always comes from the
    reference backend, with no warm-up, after the compiled backend found the
    window (:func:`emu.teach.locate.locate`).  ``vcpu_load`` #1 is the vCPU's
    first load.  ``only_misses`` tells only the accesses of the window that
    took a hardware miss, ``cause`` only those that took one of that cause
    (a name of ``emu.codes.MISS_CAUSES``); the summary still counts them all.
    ``progress``: the replay's progress on stderr when it is a terminal.
    Raises :class:`EmuError` for an unknown vCPU or cause, a non-positive
    count, or a ``resume`` the run never reaches.
    """
    if isinstance(resume, bool) or not isinstance(resume, int) or resume < 1:
        raise EmuError(f"{spelled('--resume')} must be a whole number >= 1 (vcpu_load #1 is the "
                       f"first), got {resume!r}")
    if isinstance(accesses, bool) or not isinstance(accesses, int) or accesses < 1:
        raise EmuError(f"{spelled('--accesses')} must be a whole number >= 1, got {accesses!r}")
    if cause is not None and cause not in MISS_CAUSES:
        raise EmuError(f"{spelled('--cause')} {cause}: unknown miss cause (choose from: "
                       f"{', '.join(MISS_CAUSES)})")
    # the compiled backend finds the window, then the reference one tells it
    check_pipe_traces([resolve(default_scenario() if scenario is None else scenario,
                               overrides)] * 2)
    window = locate(scenario, overrides, resume, vcpu)
    shown = ReplayProgress(window) if progress else None
    machine = build_machine(scenario, overrides, progress=shown)
    target = pick_vcpu(machine, window.vcpu)
    try:
        nar = narrate(machine, target, resume, accesses, quiet)
    finally:
        if shown is not None:
            shown.close()
    if not nar.active:
        raise EmuError(f"internal: the reference backend never reached {window.vcpu}'s "
                       f"vcpu_load #{resume}, which the compiled one reached at "
                       f"{window.at_us:,.1f} us")
    nar.summary()
    lines = [] if quiet else _setting_lines(machine) + _shown(nar, only_misses, cause)
    return Explanation(window.vcpu, resume, accesses, lines, nar.accesses)


def _shown(nar: Narrator, only_misses: bool, cause: str | None) -> list:
    """The narration's lines, without the accesses the filter leaves out (lines
    that tell no access, such as a resume or a tick, are kept), and a last line
    saying what was left out."""
    if not only_misses and cause is None:
        return nar.lines
    keep = {a.number for a in nar.accesses if (cause in a.causes if cause else a.causes)}
    lines = [line for line, tag in zip(nar.lines, nar.tags) if tag is None or tag in keep]
    which = f"a miss of cause {cause} (--cause {cause})" if cause else \
        "a hardware miss (--only-misses)"
    return lines + [f"Shown: the {_plural(len(keep), 'access', 'accesses')} of "
                    f"{len(nar.accesses):,} that took {which}."]

"""The virtualized fast path of the reference twin: VirtCPU and Ctx, in readable Python.

Every step here is the step of ``emu/_fastpath.pyx`` with the same name, in
the same order, charging the same cycles to the same counters; the tests run
both over the same cases and demand identical counters.  The loops report
each decision to the context's tracer (:mod:`emu.engine.tracer`).
"""

from __future__ import annotations

import numpy as np

from emu.codes import (CAUSE, CYCLE_BUCKETS, CYCLES, EXIT, EXIT_CATEGORIES, KIND_IFETCH,
                       KIND_SLEEP, KIND_STORE, KIND_SYSCALL, MISS_CAUSES, OUTCOME, PFN_SOURCE,
                       PFN_SOURCES, PROFILE_STEPS, SCAN_BUCKETS, STEP, STOP, STRATEGY,
                       TID_SCHEME, TLB, TLB_COUNTERS, cycle_bucket, scan_bucket)
from emu.engine import tracer
from emu.engine.reference.tlb import NO_PID, BookeTLB
from emu.hw.ppc440 import SR, SW, SX, UR, UW, UX

#: A 440 TLB entry's permission bits (word 2): all, supervisor, user.
PERMS, SUPER_PERMS, USER_PERMS = UX | UW | UR | SX | SW | SR, SX | SW | SR, UX | UW | UR

#: The cost table the loops read (the Costs struct of emu/_fastpath.pxd): rows
#: of emu.costs, plus the strategy's guest-entry work, and the clock.
COST_FIELDS = (
    "clock_mhz", "access", "micro_tlb_refill", "tlbwe", "deliver_interrupt",
    "asm_save", "asm_walk_per_entry", "asm_walk_hashed", "asm_gpa", "asm_memslot",
    "asm_pfn_lookup", "asm_hw_write", "asm_restore",
    "c_full_exit", "c_walk_per_entry", "c_walk_hashed", "c_gpa", "c_memslot",
    "c_pfn_lookup", "c_hw_write", "c_restore",
    "native_miss_handler", "put_page", "e500_sid_alloc",
    "entry_base", "entry_per_mod",
)

#: One row of the per-miss log (the MissRecord struct of emu/_fastpath.pxd).
MISS_DTYPE = np.dtype([
    ("time", np.int64), ("ea", np.uint64), ("ctx", np.int32), ("kind", np.int32),
    ("cause", np.int32), ("scanned", np.int32), ("outcome", np.int32),
    ("steps", np.int64, (len(PROFILE_STEPS),)),
], align=True)


def counter_arrays() -> dict:
    """What one context counts, zeroed, by name (the Counters struct of
    emu/_fastpath.pxd, field by field as flat int64 arrays): ``exits`` holds
    (count, cycles, min, max) per exit category, ``exits_us`` the same in whole
    µs, ``profile`` (count, cycles) per step of the miss handler,
    ``profile_hist`` per step its occurrences by cycles (CYCLE_BUCKETS, row by
    row), ``walk_scan`` the walks by entries scanned (SCAN_BUCKETS)."""
    return {
        "exits": np.zeros(4 * len(EXIT_CATEGORIES), np.int64),
        "exit_sumsq": np.zeros(len(EXIT_CATEGORIES), np.float64),
        "exits_us": np.zeros(4 * len(EXIT_CATEGORIES), np.int64),
        "exit_sumsq_us": np.zeros(len(EXIT_CATEGORIES), np.float64),
        "tlb": np.zeros(len(TLB_COUNTERS), np.int64),
        "causes": np.zeros(len(MISS_CAUSES), np.int64),
        "profile": np.zeros(2 * len(PROFILE_STEPS), np.int64),
        "profile_hist": np.zeros(len(PROFILE_STEPS) * len(CYCLE_BUCKETS), np.int64),
        "walk_scan": np.zeros(len(SCAN_BUCKETS), np.int64),
    }


def cause_key_py(owner: int, ts: int, ea: int) -> int:
    """Who lost which page: (owner context and guest TID tag, TS, 4 KB page of a 32-bit EA)."""
    return (owner << 21) | (ts << 20) | ((ea >> 12) & 0xFFFFF)


class VirtCPU:
    """One physical CPU: hardware TLB(s), micro-TLBs and miss-cause bookkeeping."""

    def __init__(self, tlb: BookeTLB, tlb1, micro: bool, cycles, ctx_host):
        self.tlb, self.tlb1 = tlb, tlb1
        self.e500 = tlb1 is not None
        self.micro = micro
        self.cycles_arr = self.cycles = cycles
        self.ctx_host_arr = self.ctx_host = ctx_host
        self.reasons: dict[int, int] = {}
        self.micro_flush()

    def micro_flush(self) -> None:
        """Every interrupt, rfi, isync and sc empties the micro-TLBs (PPC440x5 UM p.152)."""
        self.islot, self.igen = [-1] * 4, [0] * 4
        self.dslot, self.dgen = [-1] * 8, [0] * 8
        self.iptr = self.dptr = 0

    def lookup(self, ea: int, pid: int, as_: int, pid1: int = NO_PID) -> int:
        if self.e500:
            i = self.tlb1.find(ea, pid, as_, pid1)
            if i >= 0:
                return self.tlb.entries + i
        return self.tlb.find(ea, pid, as_, pid1)

    def split(self, idx: int):
        if idx >= self.tlb.entries:
            return self.tlb1, idx - self.tlb.entries
        return self.tlb, idx

    def hit_owner(self, idx: int) -> int:
        t, i = self.split(idx)
        t.use(i)
        return int(t.owner_arr[i])

    def note_removal(self, t: BookeTLB, i: int, writer: int, reason: int) -> None:
        owner = int(t.owner_arr[i])
        if not t.valid_arr[i] or owner < 0:
            return
        if reason < 0:
            if owner >> 8 == writer:
                reason = CAUSE["self-eviction"]
            elif self.ctx_host[writer]:
                reason = CAUSE["host-eviction"]
            else:
                reason = CAUSE["other-guest-eviction"]
        page = int(t.vpn_arr[i]) << int(t.shift_arr[i])
        self.reasons[cause_key_py(owner, int(t.ts_arr[i]), page)] = reason

    def hw_write(self, t: BookeTLB, i: int, ea: int, shift: int, tid: int, ts: int, rpn: int,
                 attr: int, owner: int, writer: int) -> None:
        self.note_removal(t, i, writer, -1)
        t.write(i, ea, shift, tid, ts, rpn, attr, owner)

    def write(self, idx, ea, shift, tid, ts, rpn, owner, writer, attr: int = 0) -> None:
        t, i = self.split(idx)
        self.hw_write(t, i, ea, shift, tid, ts, rpn, attr, owner, writer)

    def invalidate(self, idx: int, writer: int, reason: int = -1) -> None:
        t, i = self.split(idx)
        self.note_removal(t, i, writer, reason)
        t.invalidate(i)

    def retire(self, idx: int, reason: int) -> None:
        """See the Cython docstring."""
        t, i = self.split(idx)
        self.note_removal(t, i, -1, reason)

    def cause_of(self, owner: int, ts: int, ea: int) -> int:
        """A page never removed since its first touch misses as compulsory."""
        return self.reasons.get(cause_key_py(owner, ts, ea), CAUSE["compulsory"])

    def micro_lookup(self, inst: bool, ea: int, pid: int, pid1: int, as_: int) -> int:
        slots, gens = (self.islot, self.igen) if inst else (self.dslot, self.dgen)
        t = self.tlb
        for idx, gen in zip(slots, gens):
            if idx >= 0 and int(t.gen_arr[idx]) == gen and t.matches(idx, ea, pid, as_, pid1):
                return idx
        return -1

    def micro_fill(self, inst: bool, idx: int) -> None:
        if inst:
            self.islot[self.iptr], self.igen[self.iptr] = idx, int(self.tlb.gen_arr[idx])
            self.iptr = (self.iptr + 1) % 4
        else:
            self.dslot[self.dptr], self.dgen[self.dptr] = idx, int(self.tlb.gen_arr[idx])
            self.dptr = (self.dptr + 1) % 8


class Ctx:
    """A vCPU (virtualized mode) or a host thread (native mode) and its counters.

    See ``emu._fastpath.Ctx`` for the contract (arrays, counters, costs, the
    stop record).  ``tracer`` is told every decision of the loops
    (:mod:`emu.engine.tracer`: the events and their fields); it is the null
    tracer unless one is set, and no tracer changes a number.
    """

    def __init__(self, ctx: int, arrays: dict, gtlb=None, shadow=None, pcache=None,
                 strategy: int = STRATEGY["direct"], handler: int = 0, hashed_walk: int = 0,
                 pfn_source: int = PFN_SOURCE["gup"], is_host: int = 0, host_pid: int = 0):
        self.ctx, self.arrays = ctx, arrays
        self.gtlb, self.shadow, self.pcache = gtlb, shadow, pcache
        self.strategy, self.handler, self.hashed_walk = strategy, handler, hashed_walk
        self.tid_scheme = TID_SCHEME["tid01"]
        self.pfn_source, self.is_host, self.host_pid = pfn_source, is_host, host_pid
        self.guest_pid = self.guest_pr = self.guest_as = 0
        self.shadow_pid, self.pid1 = 1, NO_PID
        self.sid_next = 0                       # e500 shadow IDs: see the Cython Ctx
        self.check_uw = False                   # a 440 guest: user stores need UW
        self.check_ux = False                   # ... and user fetches UX
        a = arrays
        a.update(counter_arrays())
        self.slot_base, self.slot_npages = a["slot_base"], a["slot_npages"]
        self.pin, self.gref, self.hwref_gi = a["pin"], a["gref"], a["hwref_gi"]
        self.host_pt, self.mod = a["host_pt"], a["mod"]
        self.shadow_pos = a.setdefault("shadow_pos", np.zeros(1, np.int32))
        self.e500_map = a.setdefault("e500_map", np.zeros(4, np.int32))
        self.loop_len = len(self.mod)
        self.exits, self.exit_sumsq, self.tlbc = a["exits"], a["exit_sumsq"], a["tlb"]
        self.exits_us, self.exit_sumsq_us = a["exits_us"], a["exit_sumsq_us"]
        self.causes, self.profile = a["causes"], a["profile"]
        self.profile_hist, self.walk_scan = a["profile_hist"], a["walk_scan"]
        self.repop_miss, self.repop_access = a["repop_miss"], a["repop_access"]
        self.guest_run, self.since_load, self.n_modified = 0, 1 << 62, 0
        # why and where the last loop returned (the Stop struct of emu/_fastpath.pxd)
        self.stop_reason = self.stop_ea = self.stop_gpa = 0
        self.stop_gi = self.stop_kind = self.pending = 0
        self.costs = dict.fromkeys(COST_FIELDS, 0)
        self.tracer = tracer.NULL
        # the per-miss log (set_miss_log): rows, their count [written], the
        # row of the miss being handled (-1: none), the clock less the CPU's cycles
        self.mlog_arr = self.mlog_n_arr = None
        self.mlog_row = -1
        self.log_clock = 0

    def set_miss_log(self, rows, counts) -> None:
        """Log every guest TLB miss into ``rows`` (see the Cython docstring)."""
        if rows.dtype != MISS_DTYPE or len(rows) == 0 or len(counts) != 1:
            raise ValueError("set_miss_log: a non-empty MISS_DTYPE array and its 1 count")
        self.mlog_arr, self.mlog_n_arr = rows, counts
        self.mlog_row = -1

    def open_miss(self, cpu, ea: int, kind: int) -> None:
        """A guest TLB miss begins: its row of the log, if the log has room."""
        n = self.mlog_n_arr
        if n[0] >= len(self.mlog_arr):
            self.mlog_row = -1
            return
        self.mlog_row = int(n[0])
        n[0] += 1
        row = self.mlog_arr[self.mlog_row]
        row["time"] = self.log_clock + int(cpu.cycles.sum())
        row["ea"], row["ctx"], row["kind"] = ea, self.ctx, kind
        row["cause"] = row["scanned"] = 0
        row["outcome"] = -1
        row["steps"] = 0

    def miss_outcome(self, outcome: str, close: bool) -> None:
        """How the logged miss's handler ended; ``close``: nothing follows in Python."""
        if self.mlog_row >= 0:
            self.mlog_arr[self.mlog_row]["outcome"] = OUTCOME[outcome]
            if close:
                self.mlog_row = -1

    def close_miss(self) -> None:
        """The miss being logged ends (see the Cython docstring)."""
        self.mlog_row = -1

    def set_costs(self, c: dict) -> None:
        """Fill the cost table from a dict holding (at least) every COST_FIELDS name."""
        missing = [name for name in COST_FIELDS if name not in c]
        if missing:
            raise ValueError(f"No value specified for struct attribute '{missing[0]}'")
        self.costs = {name: c[name] for name in COST_FIELDS}

    @property
    def stop(self) -> dict:
        return {"reason": self.stop_reason, "ea": self.stop_ea, "gpa": self.stop_gpa,
                "gi": self.stop_gi, "kind": self.stop_kind, "pending": self.pending}

    # -- exits ------------------------------------------------------------------

    def record_exit(self, cat: int, cycles: int) -> None:
        """One exit of ``cat``, in exact cycles and truncated to whole µs (see the
        Cython docstring)."""
        clock = self.costs["clock_mhz"]
        us = cycles // clock if clock > 0 else 0
        for e, sumsq, d in ((self.exits, self.exit_sumsq, cycles),
                            (self.exits_us, self.exit_sumsq_us, us)):
            b = cat * 4
            if e[b] == 0 or d < e[b + 2]:
                e[b + 2] = d
            if d > e[b + 3]:
                e[b + 3] = d
            e[b] += 1
            e[b + 1] += d
            sumsq[cat] += float(d) * float(d)      # a double, as the compiled one

    def end_guest_run(self, exits: int = 1) -> None:
        self.record_exit(EXIT["TIMEINGUEST"], self.guest_run)
        for _ in range(1, exits):
            self.record_exit(EXIT["TIMEINGUEST"], 0)
        self.guest_run = 0

    def count_step(self, step: int, cycles: int) -> None:
        """Profile one step of the miss handler: its count, cycles, histogram,
        and the logged miss's row."""
        self.profile[2 * step] += 1
        self.profile[2 * step + 1] += cycles
        self.profile_hist[step * len(CYCLE_BUCKETS) + cycle_bucket(cycles)] += 1
        if self.mlog_row >= 0:
            self.mlog_arr[self.mlog_row]["steps"][step] += cycles

    def charge_step(self, cpu, step: str, cycles: int, category: str) -> int:
        self.count_step(STEP[step], cycles)
        cpu.cycles[CYCLES[category]] += cycles
        return cycles

    def entry_work(self, cpu) -> int:
        """The strategy's TLB work on a full guest entry (shadow designs)."""
        step = self.costs["entry_base"] + self.costs["entry_per_mod"] * self.n_modified
        self.charge_step(cpu, "entry_restore", step, "save_restore")
        if self.strategy == STRATEGY["shadow-modified"]:
            self.clear_modified()
        return step

    guest_entry = entry_work

    def leave_handler(self, cpu) -> int:
        """See the Cython docstring."""
        return self.return_to_guest(cpu)

    def return_to_guest(self, cpu) -> int:
        """The restore, plus the entry loop of a shadow design (whatever the handler)."""
        if self.handler == 0:
            step = self.charge_step(cpu, "restore", self.costs["asm_restore"], "fastpath")
            if self.strategy in (STRATEGY["shadow"], STRATEGY["shadow-modified"]):
                step += self.entry_work(cpu)
            return step
        step = self.charge_step(cpu, "restore", self.costs["c_restore"], "exit_entry")
        return step + self.entry_work(cpu)


    def clear_modified(self) -> None:
        self.mod[:] = 0
        self.n_modified = 0

    # -- kvmppc_mmu_map ------------------------------------------------------------

    def map_shadow(self, cpu, ea: int, gi: int, pfn: int) -> int:
        """Put a 4 KB shadow of guest entry ``gi`` into hardware (see the Cython docstring)."""
        gtid = int(self.gtlb.tid_arr[gi])
        owner = (self.ctx << 8) | gtid
        page = ea >> 12 << 12
        attr = self.shadow_attrib(gi)
        if self.strategy == STRATEGY["e500-shadow-ids"]:
            if gtid != 0 and self.sid_next > 0:  # PID0's ID was destroyed: take the next
                self.shadow_pid, self.sid_next = self.sid_next, 0
                cpu.cycles[CYCLES["save_restore"]] += self.costs["e500_sid_alloc"]
            stid = self.pid1 if gtid == 0 else self.shadow_pid
        elif self.tid_scheme == TID_SCHEME["guest-tid"]:
            stid = gtid                        # docs/kvm440.md §2.10
        else:
            stid = 1 if gtid == 0 else 0       # docs/kvm440.md §2.8
        if self.e500_map[1] > 0:               # an e500 guest (see e500_slot)
            i = self.e500_slot(cpu, page, gi)
            if self.strategy in (STRATEGY["shadow"], STRATEGY["shadow-modified"]):
                self.shadow.write(i, page, 12, stid, 1, pfn << 12, attr, owner)
            t, j = cpu.split(i)
            self.tracer.hw_write(self.ctx, i, t.read(j))
            cpu.hw_write(t, j, page, 12, stid, 1, pfn << 12, attr, owner, self.ctx)
        elif self.strategy in (STRATEGY["shadow"], STRATEGY["shadow-modified"]):
            i = int(self.shadow_pos[0])        # KVM's victim, one for the machine
            self.shadow_pos[0] = 0 if i >= self.shadow.hwater else i + 1
            self.shadow.write(i, page, 12, stid, 1, pfn << 12, attr, owner)
            if i < self.loop_len:
                self.tracer.hw_write(self.ctx, i, cpu.tlb.read(i))
                cpu.hw_write(cpu.tlb, i, page, 12, stid, 1, pfn << 12, attr, owner, self.ctx)
            else:                              # slot hwater: the entry loop never writes it
                cpu.reasons[cause_key_py(owner, 1, page)] = CAUSE["shadow-not-restored"]
        else:
            i = cpu.tlb.choose_victim(page)    # the host's round robin / e500 NV
            self.tracer.hw_write(self.ctx, i, cpu.tlb.read(i))
            cpu.hw_write(cpu.tlb, i, page, 12, stid, 1, pfn << 12, attr, owner, self.ctx)
        if self.hwref_gi[i] >= 0 and self.slot_holds_page(int(self.hwref_gi[i])):
            # the slot's previous page reference is dropped (kvmppc_44x_shadow_release)
            cpu.cycles[CYCLES["c_path"]] += self.costs["put_page"]
        if not self.mod[i]:
            self.mod[i] = 1
            if i < self.loop_len:
                self.n_modified += 1
        self.hwref_gi[i] = gi
        return i

    def shadow_attrib(self, gi: int) -> int:
        """The permissions a shadow of guest entry ``gi`` gets now
        (kvmppc_44x_tlb_shadow_attrib; see the Cython docstring)."""
        a = int(self.gtlb.attr_arr[gi]) & PERMS
        if not self.guest_pr:
            a = (a & ~USER_PERMS) | ((a & SUPER_PERMS) << 3)
        return a | SX | SR | SW

    def e500_slot(self, cpu, page: int, gi: int) -> int:
        """The flat hardware index of a shadow of guest entry ``gi`` on the e500
        (see the Cython docstring)."""
        m = self.e500_map
        if gi >= 256:
            v = int(m[0])
            m[0] = 0 if v + 1 >= m[1] else v + 1
            return cpu.tlb.entries + cpu.tlb1.entries - 1 - v
        if m[2]:
            cpu.tlb.ptr_arr[0] = 0                # MAS0[NV] = 0 loads TLB0[NV]
            return ((page >> 12) % cpu.tlb.sets) * cpu.tlb.ways + (gi & (cpu.tlb.ways - 1))
        return cpu.tlb.choose_victim(page)

    def slot_holds_page(self, gi: int) -> bool:
        """See the Cython docstring."""
        if self.pfn_source == PFN_SOURCE["gup"]:
            return True
        return (self.pfn_source == PFN_SOURCE["guest-tlb-refs"]
                and int(self.gtlb.shift_arr[gi]) != 12)

    def pfn_known(self, gi: int, gfn: int) -> int:
        """The pfn of ``gfn`` if the pfn source knows it without calling C, else -1."""
        src = self.pfn_source
        if src == PFN_SOURCE["pin-all"]:
            off = gfn - int(self.slot_base[0])
            return int(self.pin[off]) if 0 <= off < len(self.pin) else -1
        if src == PFN_SOURCE["pfn-cache"]:
            j = self.pcache.find(gfn << 12, 0, 0)
            if j < 0:
                return -1
            self.pcache.use(j)
            return int(self.pcache.rpn_arr[j]) >> 12
        if src == PFN_SOURCE["guest-tlb-refs"]:
            return int(self.gref[gi]) if int(self.gtlb.shift_arr[gi]) == 12 else -1
        return -1

    def walk_entries(self, gi: int) -> int:
        """Guest TLB entries the walk scanned (:meth:`searched_entries`, which
        its cost counts too); 0 for a hashed lookup (it scans no list)."""
        if self.hashed_walk:
            return 0
        return self.searched_entries(gi)

    def searched_entries(self, gi: int) -> int:
        """Guest TLB entries a search (the miss handler's walk, KVM's tlbsx) reads
        to find entry ``gi`` (-1: not found), the hashed lookup aside: entry by
        entry from 0, or on the e500 @0164c0f0 the set's two ways, then TLB1's 16."""
        if self.e500_map[3]:
            return (gi & 1 if gi < 256 else gi - 256 + 2) + 1 if gi >= 0 else 2 + 16
        return gi + 1 if gi >= 0 else self.gtlb.entries

    def walk_cost(self, gi: int) -> int:
        c = self.costs
        if self.hashed_walk:
            return c["asm_walk_hashed"] if self.handler == 0 else c["c_walk_hashed"]
        per = c["asm_walk_per_entry"] if self.handler == 0 else c["c_walk_per_entry"]
        return per * self.searched_entries(gi)

    # -- the loops -------------------------------------------------------------------

    def _translate(self, cpu, inst: bool, a: int, pid: int, pid1: int, as_: int):
        """Micro-TLB then UTLB: (index or -1, access cycles)."""
        c = self.costs["access"]
        if cpu.micro:
            idx = cpu.micro_lookup(inst, a, pid, pid1, as_)
            if idx >= 0:
                self.tlbc[TLB["micro_hits"]] += 1
                return idx, c
            self.tlbc[TLB["micro_misses"]] += 1
            idx = cpu.lookup(a, pid, as_, pid1)
            if idx >= 0:
                cpu.micro_fill(inst, idx)
                c += self.costs["micro_tlb_refill"]
            return idx, c
        return cpu.lookup(a, pid, as_, pid1), c

    def run_virt(self, cpu, ea, kind, pos: int, budget: int):
        """Run guest accesses from ``pos`` (see the Cython docstring)."""
        n, used, stop = len(ea), 0, STOP["end"]
        asm = self.handler == 0
        cost = self.costs
        W = len(self.repop_miss)
        trace = self.tracer
        while pos < n:
            if used >= budget:
                stop = STOP["budget"]
                break
            k = int(kind[pos])
            if k == KIND_SYSCALL:
                stop = STOP["syscall"]
                break
            if k == KIND_SLEEP:
                stop = STOP["sleep"]
                break
            a = int(ea[pos])
            inst = k == KIND_IFETCH
            idx, c = self._translate(cpu, inst, a, self.shadow_pid, self.pid1, 1)
            if idx >= 0:                                    # hit
                owner = cpu.hit_owner(idx)
                need = (UW if k >= KIND_STORE and self.check_uw else
                        UX if k == KIND_IFETCH and self.check_ux else 0)
                if (need and self.guest_pr and not int(cpu.tlb.attr_arr[idx]) & need
                        and owner >> 8 == self.ctx):
                    # a user store through an entry without UW, or a user fetch
                    # through one without UX: a Data or Instruction Storage
                    # interrupt, which KVM delivers (Python); not through
                    # another VM's entry (see the Cython loop)
                    if k == KIND_IFETCH:
                        trace.isi(self.ctx, a, k, idx)
                        stop = STOP["isi"]
                    else:
                        trace.dsi(self.ctx, a, k, idx)
                        stop = STOP["dsi"]
                    self.stop_ea, self.stop_kind = a, k
                    break
                trace.hit(self.ctx, a, k, idx, owner)
                if owner >= 0 and owner >> 8 != self.ctx:
                    self.tlbc[TLB["isolation_violations"]] += 1
                self.tlbc[TLB["hits"]] += 1
                used += c
                cpu.cycles[CYCLES["guest"]] += c
                self.guest_run += c
                if self.since_load < W:
                    self.repop_access[self.since_load] += 1
                self.since_load += 1
                pos += 1
                continue
            # A hardware TLB miss: the interrupt empties the micro-TLBs.
            self.tlbc[TLB["misses"]] += 1
            if self.since_load < W:
                self.repop_miss[self.since_load] += 1
            if cpu.micro:
                cpu.micro_flush()
            self.end_guest_run()
            if self.mlog_arr is not None:
                self.open_miss(cpu, a, k)
            if asm:
                c = self.charge_step(cpu, "save", cost["asm_save"], "fastpath")
            else:
                c = self.charge_step(cpu, "full_exit", cost["c_full_exit"], "exit_entry")
            # 1. walk the guest TLB
            gi = self.gtlb.find(a, self.guest_pid, self.guest_as)
            c += self.charge_step(cpu, "walk", self.walk_cost(gi), "fastpath")
            if gi >= 0:
                gtag = int(self.gtlb.tid_arr[gi])
            else:
                gtag = self.guest_pid if self.guest_pr else 0
            cause = cpu.cause_of((self.ctx << 8) | gtag, 1, a)
            self.causes[cause] += 1
            scanned = self.walk_entries(gi)
            self.walk_scan[scan_bucket(scanned)] += 1
            if self.mlog_row >= 0:
                row = self.mlog_arr[self.mlog_row]
                row["cause"], row["scanned"] = cause, scanned
            trace.miss(self.ctx, a, k, MISS_CAUSES[cause])
            trace.walk(self.ctx, gi, self.walk_cost(gi))
            if gi < 0:
                # 2. not in the guest TLB: deliver the miss to the guest (the MSR
                # change and the entry follow in Python: see the Cython loop)
                c += self.charge_step(cpu, "deliver", cost["deliver_interrupt"], "exit_entry")
                used += c
                trace.end(self.ctx, "guest_miss", c)
                self.miss_outcome("guest_miss", False)
                self.pending = c
                self.stop_ea, self.stop_gpa, self.stop_gi, self.stop_kind = a, 0, -1, k
                stop = STOP["guest_miss"]
                break
            # 3.1 the guest physical address
            shift = int(self.gtlb.shift_arr[gi])
            gpa = (int(self.gtlb.rpn_arr[gi]) >> shift << shift) | (a & ((1 << shift) - 1))
            c += self.charge_step(cpu, "gpa", cost["asm_gpa" if asm else "c_gpa"], "fastpath")
            trace.gpa(self.ctx, gpa)
            # 3.2 memslot visibility (kvm_is_visible_gfn)
            gfn = gpa >> 12
            c += self.charge_step(cpu, "memslot", cost["asm_memslot" if asm else "c_memslot"],
                                  "fastpath")
            base, npages = int(self.slot_base[0]), int(self.slot_npages[0])
            trace.memslot(self.ctx, gfn, 0, base <= gfn < base + npages)
            if not base <= gfn < base + npages and inst:
                # an instruction fetch from a device: ITLBVIRT, and a machine check
                # queued to the guest (booke.c @73e75b41); only data is MMIO
                c += self.charge_step(cpu, "deliver", cost["deliver_interrupt"], "exit_entry")
                c += self.return_to_guest(cpu)
                used += c
                trace.end(self.ctx, "machine_check", c)
                self.record_exit(EXIT["ITLBVIRT"], c)
                self.miss_outcome("machine_check", True)
                self.stop_ea, self.stop_gpa, self.stop_gi, self.stop_kind = a, gpa, gi, k
                stop = STOP["machine_check"]
                break
            if not base <= gfn < base + npages:
                trace.end(self.ctx, "mmio", c)
                self.miss_outcome("mmio", False)
                used += c
                self.pending = c
                self.stop_ea, self.stop_gpa, self.stop_gi, self.stop_kind = a, gpa, gi, k
                stop = STOP["mmio"]
                break
            # 3.3 the host pfn, if known without C
            c += self.charge_step(cpu, "pfn_lookup",
                                  cost["asm_pfn_lookup" if asm else "c_pfn_lookup"], "fastpath")
            pfn = self.pfn_known(gi, gfn)
            trace.pfn(self.ctx, PFN_SOURCES[self.pfn_source], pfn)
            if pfn < 0:
                trace.end(self.ctx, "deferred", c)
                self.miss_outcome("deferred", False)
                used += c
                self.pending = c
                self.stop_ea, self.stop_gpa, self.stop_gi, self.stop_kind = a, gpa, gi, k
                stop = STOP["deferred"]
                break
            self.map_shadow(cpu, a, gi, pfn)
            c += self.charge_step(cpu, "hw_write", cost["asm_hw_write" if asm else "c_hw_write"],
                                  "fastpath")
            c += self.return_to_guest(cpu)
            used += c
            trace.end(self.ctx, "filled", c)
            self.record_exit(EXIT["ITLBVIRT" if inst else "DTLBVIRT"], c)
            self.miss_outcome("filled", True)
        self.stop_reason = stop
        return stop, pos, used

    def run_native(self, cpu, ea, kind, pos: int, budget: int, category: int):
        """Run a host thread's accesses natively (see the Cython docstring)."""
        n, used, stop = len(ea), 0, STOP["end"]
        pid = self.host_pid
        trace = self.tracer
        while pos < n:
            if used >= budget:
                stop = STOP["budget"]
                break
            k = int(kind[pos])
            if k == KIND_SLEEP:
                stop = STOP["sleep"]
                break
            if k == KIND_SYSCALL:
                pos += 1
                continue
            a = int(ea[pos])
            idx, c = self._translate(cpu, k == KIND_IFETCH, a, pid, NO_PID, 0)
            if idx >= 0:
                owner = cpu.hit_owner(idx)
                trace.hit(self.ctx, a, k, idx, owner)
                if owner >= 0 and owner >> 8 != self.ctx:
                    self.tlbc[TLB["isolation_violations"]] += 1
                self.tlbc[TLB["hits"]] += 1
                used += c
                cpu.cycles[category] += c
                pos += 1
                continue
            self.tlbc[TLB["misses"]] += 1
            if cpu.micro:
                cpu.micro_flush()
            cause = cpu.cause_of(self.ctx << 8, 0, a)
            self.causes[cause] += 1
            trace.miss(self.ctx, a, k, MISS_CAUSES[cause])
            pfn = int(self.host_pt[(a >> 12) & 0xFFFFF])
            c = self.costs["native_miss_handler"]
            if pfn < 0:
                trace.end(self.ctx, "host_fault", c)
                used += c
                cpu.cycles[category] += c
                self.stop_ea = a
                stop = STOP["host_fault"]
                break
            c += 3 * self.costs["tlbwe"]
            i = cpu.tlb.choose_victim(a)
            trace.hw_write(self.ctx, i, cpu.tlb.read(i))
            cpu.hw_write(cpu.tlb, i, a >> 12 << 12, 12, pid, 0, pfn << 12, PERMS,
                         self.ctx << 8, self.ctx)
            trace.end(self.ctx, "filled", c)
            used += c
            cpu.cycles[category] += c
        self.stop_reason = stop
        return stop, pos, used

"""The fast path's semantics in plain, readable Python.

This module is the oracle for the differential tests and the code a student
reads: every structure here behaves exactly like its counterpart in
``emu/_fastpath.pyx`` (same counters, same TLB contents, same random draws),
only slower.  Where the Cython code uses a hash index to find an entry, this
code scans the entries in order, which is what the hardware's match rule says.
"""

from __future__ import annotations

import numpy as np

from emu.codes import POLICIES

MASK64 = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15
EMPTY = MASK64

NO_PID = 0xFFFF          # a PID no 8-bit TID can equal


def splitmix64(x: int) -> int:
    x = (x + GOLDEN) & MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK64
    return x ^ (x >> 31)


def rng_seed_state(seed: int) -> int:
    """The non-zero xorshift64* state for a seed."""
    s = splitmix64(seed & MASK64)
    return s if s != 0 else GOLDEN


def rng_next(state: int) -> tuple[int, int]:
    """One xorshift64* step: (new state, output)."""
    x = state
    x ^= x >> 12
    x ^= (x << 25) & MASK64
    x ^= x >> 27
    return x, (x * 0x2545F4914F6CDD1D) & MASK64


class PlainTLB:
    """A TLB of ``sets`` x ``ways`` slots caching translations of one page size.

    See ``emu._fastpath.PlainTLB`` for the contract; this is the same thing
    written for reading.
    """

    def __init__(self, entries: int, ways: int, policy: str = "fifo", page_shift: int = 12,
                 hwater: int = -1, seed: int = 0):
        if entries <= 0 or ways <= 0 or entries % ways:
            raise ValueError(f"{entries} entries cannot be split into {ways}-way sets")
        if policy not in POLICIES or policy == "none":
            raise ValueError(f"unknown policy {policy!r}")
        if not 10 <= page_shift < 64:
            raise ValueError(f"page shift {page_shift} outside 10..63")
        self.entries, self.ways, self.sets = entries, ways, entries // ways
        self.policy = policy
        self.page_shift = page_shift
        self.hwater = ways - 1 if hwater < 0 else min(hwater, ways - 1)
        self.tag = [EMPTY] * entries
        self.valid = [False] * entries
        self.stamp = [0] * entries
        self.ptr = [0] * self.sets
        self.clock = 0
        self.rng = rng_seed_state(seed)
        self.seen: set[int] = set()
        self.records = self.translations = self.hits = self.misses = self.compulsory = 0

    def choose_victim(self, set_: int) -> int:
        if self.policy == "fifo":
            w = self.ptr[set_]
            self.ptr[set_] = (w + 1) % self.ways
            return w
        if self.policy == "round-robin":          # Linux 44x: wrap after hwater
            w = self.ptr[set_]
            self.ptr[set_] = 0 if w >= self.hwater else w + 1
            return w
        if self.policy == "nv":                   # one counter for all sets
            w = self.ptr[0]
            self.ptr[0] = (w + 1) % self.ways
            return w
        base = set_ * self.ways
        for w in range(self.ways):                # LRU and random fill holes first
            if not self.valid[base + w]:
                return w
        if self.policy == "random":
            self.rng, draw = rng_next(self.rng)
            return draw % self.ways
        stamps = self.stamp[base:base + self.ways]
        return stamps.index(min(stamps))

    def translate(self, vpn: int) -> None:
        self.translations += 1
        set_ = vpn % self.sets
        base = set_ * self.ways
        for slot in range(base, base + self.ways):
            if self.valid[slot] and self.tag[slot] == vpn:
                self.hits += 1
                if self.policy == "lru":
                    self.clock += 1
                    self.stamp[slot] = self.clock
                return
        self.misses += 1
        if vpn not in self.seen:
            self.seen.add(vpn)
            self.compulsory += 1
        slot = base + self.choose_victim(set_)
        self.tag[slot] = vpn
        self.valid[slot] = True
        self.clock += 1
        self.stamp[slot] = self.clock

    def run(self, addr, kind, size=None, kinds_mask: int = 0xF) -> int:
        """Translate a chunk of trace records (see the Cython docstring)."""
        if len(kind) != len(addr) or (size is not None and len(size) != len(addr)):
            raise ValueError("addr, kind and size must have equal lengths")
        sh = self.page_shift
        for r in range(len(addr)):
            k = int(kind[r])
            n = int(size[r]) if size is not None else 1
            if k > 3 or n == 0:
                return r                        # invalid: stop before it
            if not (kinds_mask >> k) & 1:
                continue
            self.records += 1
            a = int(addr[r])
            first = a >> sh
            last = min(a + n - 1, MASK64) >> sh
            for vpn in range(first, last + 1):
                self.translate(vpn)
        return -1

    def counters(self) -> dict:
        return {"records": self.records, "translations": self.translations,
                "hits": self.hits, "misses": self.misses,
                "compulsory_misses": self.compulsory}

    def contents(self) -> list:
        return [self.tag[i] if self.valid[i] else -1 for i in range(self.entries)]


class BookeTLB:
    """A PowerPC Book E TLB array; see ``emu._fastpath.BookeTLB`` for the contract."""

    def __init__(self, entries: int, ways: int = 0, policy: str = "round-robin",
                 hwater: int = -1, set_shift: int = 12, seed: int = 0):
        ways = ways if ways > 0 else entries
        if entries <= 0 or entries % ways:
            raise ValueError(f"{entries} entries cannot be split into {ways}-way sets")
        if policy not in POLICIES:
            raise ValueError(f"unknown policy {policy!r}")
        self.entries, self.ways, self.sets = entries, ways, entries // ways
        self.policy = policy
        self.hwater = ways - 1 if hwater < 0 else min(hwater, ways - 1)
        self.set_shift = set_shift
        self.vpn_arr = np.zeros(entries, dtype=np.uint64)
        self.shift_arr = np.zeros(entries, dtype=np.uint8)
        self.tid_arr = np.zeros(entries, dtype=np.uint8)
        self.ts_arr = np.zeros(entries, dtype=np.uint8)
        self.valid_arr = np.zeros(entries, dtype=np.uint8)
        self.rpn_arr = np.zeros(entries, dtype=np.uint64)
        self.attr_arr = np.zeros(entries, dtype=np.uint32)
        self.owner_arr = np.full(entries, -1, dtype=np.int32)
        self.stamp_arr = np.zeros(entries, dtype=np.uint64)
        self.ptr_arr = np.zeros(self.sets, dtype=np.int32)
        self.gen_arr = np.zeros(entries, dtype=np.uint32)
        self.wgen = 0                   # bumped on every write or invalidation
        self._rows, self._rows_wgen = [], -1
        self.clock = 0
        self.rng = rng_seed_state(seed)

    # The match rule: V, TS = AS, TID = 0 or PID, EA inside the page.
    def matches(self, i: int, ea: int, pid: int, as_: int, pid1: int = NO_PID) -> bool:
        return bool(self.valid_arr[i]) and int(self.ts_arr[i]) == as_ \
            and int(self.tid_arr[i]) in (0, pid, pid1) \
            and int(self.vpn_arr[i]) == ea >> int(self.shift_arr[i])

    def find(self, ea: int, pid: int, as_: int, pid1: int = NO_PID) -> int:
        """The lowest index whose entry matches: a scan in index order."""
        if self._rows_wgen != self.wgen:           # the entries changed: list them again
            self._rows = [(i, int(self.vpn_arr[i]), int(self.shift_arr[i]), int(self.tid_arr[i]),
                           int(self.ts_arr[i])) for i in range(self.entries) if self.valid_arr[i]]
            self._rows_wgen = self.wgen
        for i, vpn, shift, tid, ts in self._rows:
            if ts == as_ and (tid == 0 or tid == pid or tid == pid1) and vpn == ea >> shift:
                return i
        return -1

    def use(self, index: int) -> None:
        if self.policy == "lru":
            self.clock += 1
            self.stamp_arr[index] = self.clock

    def choose_victim(self, ea: int = 0) -> int:
        set_ = (ea >> self.set_shift) % self.sets if self.sets > 1 else 0
        base = set_ * self.ways
        ptr = self.ptr_arr
        if self.policy == "none":
            return -1
        if self.policy == "fifo":
            w = int(ptr[set_])
            ptr[set_] = (w + 1) % self.ways
            return base + w
        if self.policy == "round-robin":
            w = int(ptr[set_])
            ptr[set_] = 0 if w >= self.hwater else w + 1
            return base + w
        if self.policy == "nv":
            w = int(ptr[0])
            ptr[0] = (w + 1) % self.ways
            return base + w
        for w in range(self.ways):
            if not self.valid_arr[base + w]:
                return base + w
        if self.policy == "random":
            self.rng, draw = rng_next(self.rng)
            return base + draw % self.ways
        stamps = [int(s) for s in self.stamp_arr[base:base + self.ways]]
        return base + stamps.index(min(stamps))

    def write(self, index: int, ea: int, shift: int, tid: int, ts: int, rpn: int = 0,
              attr: int = 0, owner: int = -1) -> None:
        if not 0 <= index < self.entries:
            raise IndexError(f"TLB index {index} outside 0..{self.entries - 1}")
        if not 0 < shift < 64:
            raise ValueError(f"page shift {shift} out of range")
        if not 0 <= tid <= 255 or not 0 <= ts <= 1:
            raise ValueError(f"TID {tid} / TS {ts} outside 0..255 / 0..1")
        self.vpn_arr[index] = ea >> shift
        self.shift_arr[index] = shift
        self.tid_arr[index] = tid
        self.ts_arr[index] = ts
        self.rpn_arr[index] = rpn
        self.attr_arr[index] = attr
        self.owner_arr[index] = owner
        self.valid_arr[index] = 1
        self.gen_arr[index] += 1
        self.wgen += 1
        self.clock += 1
        self.stamp_arr[index] = self.clock

    def invalidate(self, index: int) -> None:
        if not 0 <= index < self.entries:
            raise IndexError(f"TLB index {index} outside 0..{self.entries - 1}")
        if self.valid_arr[index]:
            self.valid_arr[index] = 0
            self.gen_arr[index] += 1
            self.wgen += 1

    def invalidate_ea(self, ea: int, tid: int, ts: int) -> int:
        hit = [i for i in range(self.entries)
               if self.valid_arr[i] and self.ts_arr[i] == ts and self.tid_arr[i] == tid
               and int(self.vpn_arr[i]) == ea >> int(self.shift_arr[i])]
        for i in hit:
            self.invalidate(i)
        return len(hit)

    def invalidate_where(self, tid: int = -1, ts: int = -1, owner: int = -2) -> int:
        hit = [i for i in range(self.entries)
               if self.valid_arr[i] and (tid < 0 or self.tid_arr[i] == tid)
               and (ts < 0 or self.ts_arr[i] == ts)
               and (owner == -2 or self.owner_arr[i] == owner)]
        for i in hit:
            self.invalidate(i)
        return len(hit)

    def invalidate_all(self) -> int:
        return self.invalidate_where()

    def read(self, index: int) -> tuple:
        if not 0 <= index < self.entries:
            raise IndexError(f"TLB index {index} outside 0..{self.entries - 1}")
        sh = int(self.shift_arr[index])
        return (int(self.valid_arr[index]), int(self.vpn_arr[index]) << sh, sh,
                int(self.tid_arr[index]), int(self.ts_arr[index]), int(self.rpn_arr[index]),
                int(self.attr_arr[index]), int(self.owner_arr[index]))

    def valid_count(self) -> int:
        return int(self.valid_arr.sum())


# ==========================================================================
# The virtualized fast path (DESIGN.md §3), written for reading.

from emu.codes import (CAUSE, CYCLES, EXIT, EXIT_CATEGORIES, KIND_IFETCH, KIND_SLEEP,  # noqa: E402
                       KIND_SYSCALL, MISS_CAUSES, PFN_SOURCE, PFN_SOURCES, PROFILE_STEPS, STEP,
                       STOP, STRATEGY, TLB, TLB_COUNTERS)

#: The cost table the loops read (the Costs struct of emu/_fastpath.pxd): rows
#: of emu.costs, plus the strategy's guest-entry work.
COST_FIELDS = (
    "access", "micro_tlb_refill", "tlbwe", "deliver_interrupt",
    "asm_save", "asm_walk_per_entry", "asm_walk_hashed", "asm_gpa", "asm_memslot",
    "asm_pfn_lookup", "asm_hw_write", "asm_restore",
    "c_full_exit", "c_walk_per_entry", "c_walk_hashed", "c_gpa", "c_memslot",
    "c_pfn_lookup", "c_hw_write", "c_restore",
    "native_miss_handler", "put_page",
    "entry_base", "entry_per_mod",
)


def new_counters() -> dict:
    """What one context counts, zeroed, by name (the Counters struct of
    emu/_fastpath.pxd, field by field as flat int64 arrays): ``exits`` holds
    (count, cycles, min, max) per exit category, ``profile`` (count, cycles)
    per step of the miss handler."""
    return {
        "exits": np.zeros(4 * len(EXIT_CATEGORIES), np.int64),
        "exit_sumsq": np.zeros(len(EXIT_CATEGORIES), np.int64),
        "tlb": np.zeros(len(TLB_COUNTERS), np.int64),
        "causes": np.zeros(len(MISS_CAUSES), np.int64),
        "profile": np.zeros(2 * len(PROFILE_STEPS), np.int64),
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
                 owner: int, writer: int) -> None:
        self.note_removal(t, i, writer, -1)
        t.write(i, ea, shift, tid, ts, rpn, 0, owner)

    def write(self, idx, ea, shift, tid, ts, rpn, owner, writer) -> None:
        t, i = self.split(idx)
        self.hw_write(t, i, ea, shift, tid, ts, rpn, owner, writer)

    def invalidate(self, idx: int, writer: int, reason: int = -1) -> None:
        t, i = self.split(idx)
        self.note_removal(t, i, writer, reason)
        t.invalidate(i)

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

    ``log``: None, or a function called with one dict per decision of the
    loops below (``emu explain`` narrates them).  Every dict has ``event``
    and ``ctx``; the events, in the order one access can produce them:

    - ``hit``: ``ea``, ``kind``, ``index`` (hardware entry), ``owner``;
    - ``miss``: ``ea``, ``kind``, ``cause`` (a name of ``MISS_CAUSES``);
    - ``walk`` (step 1): ``gi`` (guest TLB index or -1), ``cycles``;
    - ``gpa`` (3.1): ``gpa``;  ``memslot`` (3.2): ``gfn``, ``slot``, ``visible``;
    - ``pfn`` (3.3): ``source`` (a name of ``PFN_SOURCES``), ``pfn`` (-1: unknown);
    - ``hw_write``: ``index``, ``evicted`` (``tlb.read(index)`` before the write);
    - ``end``: ``outcome`` (``filled``, ``guest_miss``, ``mmio``, ``deferred``,
      ``host_fault``) and ``cycles``, all the cycles the miss was charged so far.

    With ``log`` None the loops do exactly what they do without it.
    """

    def __init__(self, ctx: int, arrays: dict, gtlb=None, shadow=None, pcache=None,
                 strategy: int = STRATEGY["direct"], handler: int = 0, hashed_walk: int = 0,
                 pfn_source: int = PFN_SOURCE["gup"], is_host: int = 0, host_pid: int = 0):
        self.ctx, self.arrays = ctx, arrays
        self.gtlb, self.shadow, self.pcache = gtlb, shadow, pcache
        self.strategy, self.handler, self.hashed_walk = strategy, handler, hashed_walk
        self.pfn_source, self.is_host, self.host_pid = pfn_source, is_host, host_pid
        self.guest_pid = self.guest_pr = self.guest_as = 0
        self.shadow_pid, self.pid1 = 1, NO_PID
        a = arrays
        a.update(new_counters())
        self.slot_base, self.slot_npages = a["slot_base"], a["slot_npages"]
        self.pin, self.gref, self.hwref_gi = a["pin"], a["gref"], a["hwref_gi"]
        self.host_pt, self.mod = a["host_pt"], a["mod"]
        self.exits, self.exit_sumsq, self.tlbc = a["exits"], a["exit_sumsq"], a["tlb"]
        self.causes, self.profile = a["causes"], a["profile"]
        self.repop_miss, self.repop_access = a["repop_miss"], a["repop_access"]
        self.guest_run, self.since_load, self.n_modified = 0, 1 << 62, 0
        # why and where the last loop returned (the Stop struct of emu/_fastpath.pxd)
        self.stop_reason = self.stop_ea = self.stop_gpa = 0
        self.stop_gi = self.stop_kind = self.pending = 0
        self.costs = dict.fromkeys(COST_FIELDS, 0)
        self.log = None                  # optional per-event hook (see the class docstring)

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
        e = self.exits
        b = cat * 4
        if e[b] == 0 or cycles < e[b + 2]:
            e[b + 2] = cycles
        if cycles > e[b + 3]:
            e[b + 3] = cycles
        e[b] += 1
        e[b + 1] += cycles
        self.exit_sumsq[cat] += cycles * cycles

    def end_guest_run(self) -> None:
        if self.guest_run > 0:
            self.record_exit(EXIT["TIMEINGUEST"], self.guest_run)
        self.guest_run = 0

    def charge_step(self, cpu, step: str, cycles: int, category: str) -> int:
        self.profile[2 * STEP[step]] += 1
        self.profile[2 * STEP[step] + 1] += cycles
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

    def return_to_guest(self, cpu) -> int:
        if self.handler == 0:
            return self.charge_step(cpu, "restore", self.costs["asm_restore"], "fastpath")
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
        if self.strategy == STRATEGY["e500-shadow-ids"]:
            stid = self.pid1 if gtid == 0 else self.shadow_pid
        else:
            stid = 1 if gtid == 0 else 0       # reference/kvm440.md §2.8
        if self.strategy in (STRATEGY["shadow"], STRATEGY["shadow-modified"]):
            i = self.shadow.choose_victim(0)   # KVM's own round robin
            self.shadow.write(i, page, 12, stid, 1, pfn << 12, 0, owner)
        else:
            i = cpu.tlb.choose_victim(page)    # the host's round robin / e500 NV
        if self.log is not None:
            self.log({"event": "hw_write", "ctx": self.ctx, "index": i,
                      "evicted": cpu.tlb.read(i)})
        cpu.hw_write(cpu.tlb, i, page, 12, stid, 1, pfn << 12, owner, self.ctx)
        if self.hwref_gi[i] >= 0 and self.pfn_source == PFN_SOURCE["gup"]:
            # the slot's previous page reference is dropped (kvmppc_44x_shadow_release)
            cpu.cycles[CYCLES["c_path"]] += self.costs["put_page"]
        if not self.mod[i]:
            self.mod[i] = 1
            self.n_modified += 1
        self.hwref_gi[i] = gi
        return i

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

    def walk_cost(self, gi: int) -> int:
        c = self.costs
        if self.hashed_walk:
            return c["asm_walk_hashed"] if self.handler == 0 else c["c_walk_hashed"]
        per = c["asm_walk_per_entry"] if self.handler == 0 else c["c_walk_per_entry"]
        return per * (gi + 1 if gi >= 0 else self.gtlb.entries)

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
        log = self.log
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
                if log is not None:
                    log({"event": "hit", "ctx": self.ctx, "ea": a, "kind": k, "index": idx,
                         "owner": owner})
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
            if log is not None:
                log({"event": "miss", "ctx": self.ctx, "ea": a, "kind": k,
                     "cause": MISS_CAUSES[cause]})
                log({"event": "walk", "ctx": self.ctx, "gi": gi, "cycles": self.walk_cost(gi)})
            if gi < 0:
                # 2. not in the guest TLB: deliver the miss to the guest
                c += self.charge_step(cpu, "deliver", cost["deliver_interrupt"], "exit_entry")
                c += self.return_to_guest(cpu)
                used += c
                if log is not None:
                    log({"event": "end", "ctx": self.ctx, "outcome": "guest_miss", "cycles": c})
                self.record_exit(EXIT["ITLBREAL" if inst else "DTLBREAL"], c)
                self.stop_ea, self.stop_kind = a, k
                stop = STOP["guest_miss"]
                break
            # 3.1 the guest physical address
            shift = int(self.gtlb.shift_arr[gi])
            gpa = (int(self.gtlb.rpn_arr[gi]) >> shift << shift) | (a & ((1 << shift) - 1))
            c += self.charge_step(cpu, "gpa", cost["asm_gpa" if asm else "c_gpa"], "fastpath")
            if log is not None:
                log({"event": "gpa", "ctx": self.ctx, "gpa": gpa})
            # 3.2 memslot visibility (kvm_is_visible_gfn)
            gfn = gpa >> 12
            c += self.charge_step(cpu, "memslot", cost["asm_memslot" if asm else "c_memslot"],
                                  "fastpath")
            base, npages = int(self.slot_base[0]), int(self.slot_npages[0])
            if log is not None:
                log({"event": "memslot", "ctx": self.ctx, "gfn": gfn, "slot": 0,
                     "visible": base <= gfn < base + npages})
            if not base <= gfn < base + npages:
                if log is not None:
                    log({"event": "end", "ctx": self.ctx, "outcome": "mmio", "cycles": c})
                used += c
                self.pending = c
                self.stop_ea, self.stop_gpa, self.stop_gi, self.stop_kind = a, gpa, gi, k
                stop = STOP["mmio"]
                break
            # 3.3 the host pfn, if known without C
            c += self.charge_step(cpu, "pfn_lookup",
                                  cost["asm_pfn_lookup" if asm else "c_pfn_lookup"], "fastpath")
            pfn = self.pfn_known(gi, gfn)
            if log is not None:
                log({"event": "pfn", "ctx": self.ctx, "source": PFN_SOURCES[self.pfn_source],
                     "pfn": pfn})
            if pfn < 0:
                if log is not None:
                    log({"event": "end", "ctx": self.ctx, "outcome": "deferred", "cycles": c})
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
            if log is not None:
                log({"event": "end", "ctx": self.ctx, "outcome": "filled", "cycles": c})
            self.record_exit(EXIT["ITLBVIRT" if inst else "DTLBVIRT"], c)
        self.stop_reason = stop
        return stop, pos, used

    def run_native(self, cpu, ea, kind, pos: int, budget: int, category: int):
        """Run a host thread's accesses natively (see the Cython docstring)."""
        n, used, stop = len(ea), 0, STOP["end"]
        pid = self.host_pid
        log = self.log
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
                if log is not None:
                    log({"event": "hit", "ctx": self.ctx, "ea": a, "kind": k, "index": idx,
                         "owner": owner})
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
            if log is not None:
                log({"event": "miss", "ctx": self.ctx, "ea": a, "kind": k,
                     "cause": MISS_CAUSES[cause]})
            pfn = int(self.host_pt[(a >> 12) & 0xFFFFF])
            c = self.costs["native_miss_handler"]
            if pfn < 0:
                if log is not None:
                    log({"event": "end", "ctx": self.ctx, "outcome": "host_fault", "cycles": c})
                used += c
                cpu.cycles[category] += c
                self.stop_ea = a
                stop = STOP["host_fault"]
                break
            c += 3 * self.costs["tlbwe"]
            i = cpu.tlb.choose_victim(a)
            if log is not None:
                log({"event": "hw_write", "ctx": self.ctx, "index": i,
                     "evicted": cpu.tlb.read(i)})
            cpu.hw_write(cpu.tlb, i, a >> 12 << 12, 12, pid, 0, pfn << 12, self.ctx << 8,
                         self.ctx)
            if log is not None:
                log({"event": "end", "ctx": self.ctx, "outcome": "filled", "cycles": c})
            used += c
            cpu.cycles[category] += c
        self.stop_reason = stop
        return stop, pos, used

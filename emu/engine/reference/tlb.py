"""The TLB arrays of the reference twin: the seeded generator, PlainTLB, BookeTLB.

Each behaves exactly like its counterpart in ``emu/_fastpath.pyx`` (same
victims, same TLB contents, same random draws), only slower.  Where the
Cython code uses a hash index to find an entry, this code scans the entries
in order, which is what the hardware's match rule says.
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
        self._rows, self._rows_wgen = [], -1     # find's lists: [(shift, {vpn: [(i, tid, ts)]})]
        self.clock = 0
        self.rng = rng_seed_state(seed)

    # The match rule: V, TS = AS, TID = 0 or PID, EA inside the page.
    def matches(self, i: int, ea: int, pid: int, as_: int, pid1: int = NO_PID) -> bool:
        return bool(self.valid_arr[i]) and int(self.ts_arr[i]) == as_ \
            and int(self.tid_arr[i]) in (0, pid, pid1) \
            and int(self.vpn_arr[i]) == ea >> int(self.shift_arr[i])

    def find(self, ea: int, pid: int, as_: int, pid1: int = NO_PID) -> int:
        """The lowest index whose entry matches (:meth:`matches`), as a scan
        in index order finds it.

        The valid entries are listed again after each write or invalidation,
        by page size and then page number, each list in index order: a
        lookup reads the entries of its page under each page size present,
        not all of them (the teaching runs look up millions of accesses)."""
        if self._rows_wgen != self.wgen:           # the entries changed: list them again
            by_shift: dict = {}
            for i in range(self.entries):
                if self.valid_arr[i]:
                    by_vpn = by_shift.setdefault(int(self.shift_arr[i]), {})
                    by_vpn.setdefault(int(self.vpn_arr[i]), []).append(
                        (i, int(self.tid_arr[i]), int(self.ts_arr[i])))
            self._rows = list(by_shift.items())
            self._rows_wgen = self.wgen
        found = -1
        for shift, by_vpn in self._rows:
            for i, tid, ts in by_vpn.get(ea >> shift, ()):
                if ts == as_ and (tid == 0 or tid == pid or tid == pid1):
                    if found < 0 or i < found:
                        found = i
                    break                       # the lowest of this page size
        return found

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

"""Tests of ``emu.hw``: the Book E TLB arrays, the 440 UTLB, the e500 MMU.

Every known-answer check lives in a ``*Base`` class and runs once per backend
(Cython fast path and pure-Python reference), numpy.random style.  The
hypothesis tests at the bottom run random operation sequences through both
backends and demand identical results.  Known answers are derived by hand in
the comments (docs/kvm440.md §1 for the 440, §4 for the e500).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emu import engine
from emu.codes import CYCLES
from emu.errors import ConfigError, EmuError
from emu.hw import ppc440
from emu.hw.cpu import PhysicalCPU, build_core
from emu.hw.e500 import TLB0_ENTRIES, TLB0_WAYS, TLB1_ENTRIES, E500MMU, build_host_mmu
from emu.hw.ppc440 import (ATTR_MASK, HWATER, SHIFT_OF_CODE, SIZE_CODES, TLB_SIZE, TS, VALID,
                           PPC440UTLB, build_guest_utlb, build_host_utlb, word0, word1)
from emu.hw.tlb import (PAGE_SIZES_440, PAGE_SIZES_E500, POLICIES, check_geometry,
                        make_plain_tlb, page_shift)

DATA = Path(__file__).parent / "data"
BACKENDS = ("cython", "reference")
KB, MB, GB = 1 << 10, 1 << 20, 1 << 30
SHIFTS_440 = (10, 12, 14, 16, 18, 20, 24, 28)       # 1K 4K 16K 64K 256K 1M 16M 256M

# Field positions in BookeTLB.read(i)
VALID_F, EA_F, SHIFT_F, TID_F, TS_F, RPN_F, ATTR_F, OWNER_F = range(8)


# --------------------------------------------------------------------------
# An independent statement of the seeded generator both backends promise:
# SplitMix64 (Steele, Lea & Flood 2014) to seed, xorshift64* (Vigna 2016) to
# draw.  Written here from the published algorithms, not from emu's code.

M64 = (1 << 64) - 1


def _splitmix64_first(seed: int) -> int:
    z = (seed + 0x9E3779B97F4A7C15) & M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def _xorshift64star_draws(seed: int, n: int) -> list[int]:
    x = _splitmix64_first(seed) or 0x9E3779B97F4A7C15
    out = []
    for _ in range(n):
        x ^= x >> 12
        x ^= (x << 25) & M64
        x ^= x >> 27
        out.append((x * 0x2545F4914F6CDD1D) & M64)
    return out


def test_splitmix64_published_vector():
    # The first output of SplitMix64 seeded with 0 is 0xe220a8397b1dcdaf
    # (the vector every SplitMix64 port checks); both backends seed with it.
    assert _splitmix64_first(0) == 0xE220A8397B1DCDAF
    for name in BACKENDS:
        assert engine.get(name).rng_seed_state(0) == 0xE220A8397B1DCDAF


# ==========================================================================
# BookeTLB: the match rule, invalidation, replacement policies


@pytest.mark.parametrize("backend", BACKENDS)
@settings(max_examples=150, deadline=None)
@given(ops=st.lists(st.tuples(st.integers(0, 15), st.integers(0, 15),
                              st.sampled_from([12, 14, 16, 20]), st.integers(0, 3),
                              st.integers(0, 1), st.booleans()), max_size=40),
       probes=st.lists(st.tuples(st.integers(0, (1 << 16) - 1), st.integers(0, 3),
                                 st.integers(0, 1), st.sampled_from([0xFFFF, 0, 1, 2, 3])),
                       min_size=1, max_size=20))
def test_find_is_the_lowest_matching_index(backend, ops, probes):
    """Overlapping pages of four sizes, rewritten and invalidated: a lookup
    gives the lowest index whose entry matches, as a scan in index order does."""
    t = engine.get(backend).BookeTLB(16, 0, "round-robin", -1, 12, 0)
    held = {}
    for index, page, shift, tid, ts, drop in ops:
        if drop:
            t.invalidate(index)
            held.pop(index, None)
        else:
            t.write(index, page << 12, shift, tid, ts)
            held[index] = ((page << 12) >> shift, shift, tid, ts)
        for ea, pid, as_, pid1 in probes:
            want = min((i for i, (vpn, sh, tid_, ts_) in held.items()
                        if ts_ == as_ and tid_ in (0, pid, pid1) and ea >> sh == vpn),
                       default=-1)
            assert t.find(ea, pid, as_, pid1) == want


class BookeTLBBase:
    """The Book E array's promises; subclasses set ``backend``."""

    backend: str

    def tlb(self, entries=64, ways=0, policy="round-robin", hwater=-1, set_shift=12, seed=0):
        return engine.get(self.backend).BookeTLB(entries, ways, policy, hwater, set_shift, seed)

    # -- match rule: V and TS = AS and (TID = 0 or TID = PID) and EA in page --

    def test_tid0_is_global(self):
        t = self.tlb()
        t.write(4, 0x10000, 12, 0, 0)
        for pid in (0, 1, 5, 77, 255):
            assert t.find(0x10000, pid, 0) == 4

    def test_tid_matches_its_pid_only(self):
        t = self.tlb()
        t.write(4, 0x10000, 12, 5, 0)
        assert t.find(0x10abc, 5, 0) == 4
        for pid in (0, 4, 6, 255):      # PID 0 is not a wildcard on the access side
            assert t.find(0x10abc, pid, 0) == -1

    def test_second_pid_register(self):
        # e500 PID1: an entry matches when its TID is 0, PID or PID1.  Without
        # pid1 (NO_PID, 0xFFFF) no 8-bit TID can match it.
        t = self.tlb()
        t.write(2, 0x10000, 12, 7, 1)
        assert t.find(0x10000, 3, 1) == -1
        assert t.find(0x10000, 3, 1, 7) == 2
        assert t.find(0x10000, 7, 1, 3) == 2
        assert t.find(0x10000, 3, 0, 7) == -1          # TS still has to match
        assert t.find(0x10000, 3, 1, 0xFFFF) == -1

    def test_ts_mismatch_never_matches(self):
        t = self.tlb()
        t.write(0, 0x10000, 12, 0, 1)      # global, but TS=1 (a guest shadow entry)
        t.write(1, 0x20000, 12, 5, 0)      # TS=0 (a host entry)
        for pid in (0, 5, 9):
            assert t.find(0x10000, pid, 0) == -1
            assert t.find(0x10000, pid, 1) == 0
        assert t.find(0x20000, 5, 1) == -1
        assert t.find(0x20000, 5, 0) == 1

    def test_invalid_entry_never_matches(self):
        t = self.tlb()
        assert t.find(0, 0, 0) == -1       # an empty array holds all-zero, invalid entries
        t.write(0, 0, 12, 0, 0)
        assert t.find(0, 0, 0) == 0
        t.invalidate(0)
        assert t.find(0, 0, 0) == -1

    @pytest.mark.parametrize("shift", SHIFTS_440 + (32,))
    def test_page_bounds(self, shift):
        # A page of 2**shift bytes at 3 * 2**shift: its first and last byte hit,
        # the byte before it and the byte one past its end miss.
        size = 1 << shift
        base = 3 * size
        t = self.tlb()
        t.write(9, base + size // 2, shift, 0, 0)     # any EA inside names the page
        assert t.read(9)[EA_F] == base
        assert t.find(base, 0, 0) == 9
        assert t.find(base + size - 1, 0, 0) == 9
        assert t.find(base + size, 0, 0) == -1
        assert t.find(base - 1, 0, 0) == -1

    def test_lowest_index_wins(self):
        t = self.tlb()
        t.write(7, 0x5000, 12, 0, 0)
        t.write(3, 0x5000, 12, 0, 0)
        assert t.find(0x5000, 0, 0) == 3           # not the most recently written one
        t.write(1, 0, 20, 0, 0)                   # a 1M page covering 0x5000
        assert t.find(0x5000, 0, 0) == 1          # whatever the page size
        t.write(0, 0x5000, 12, 9, 0)              # TID 9: matches only for PID 9
        assert t.find(0x5000, 9, 0) == 0
        assert t.find(0x5000, 8, 0) == 1
        t.invalidate(1)
        t.invalidate(3)
        assert t.find(0x5000, 8, 0) == 7

    def test_read_reports_the_entry(self):
        t = self.tlb()
        t.write(2, 0x12345678, 12, 7, 1, 0x9_8765_4000, 0x3F, 11)
        assert t.read(2) == (1, 0x12345000, 12, 7, 1, 0x9_8765_4000, 0x3F, 11)
        assert t.read(3)[VALID_F] == 0
        assert t.valid_count() == 1

    def test_out_of_range_index(self):
        t = self.tlb(entries=16)
        for bad in (-1, 16, 64):
            with pytest.raises(IndexError):
                t.write(bad, 0, 12, 0, 0)
            with pytest.raises(IndexError):
                t.invalidate(bad)
            with pytest.raises(IndexError):
                t.read(bad)

    def test_bad_shift_rejected(self):
        t = self.tlb()
        for bad in (0, 64):
            with pytest.raises(ValueError):
                t.write(0, 0, bad, 0, 0)
        assert t.valid_count() == 0

    # -- invalidation --------------------------------------------------------

    def test_invalidate_by_index_bumps_generation_once(self):
        t = self.tlb(entries=8)
        t.write(5, 0x1000, 12, 0, 0)
        assert int(t.gen_arr[5]) == 1
        t.invalidate(5)
        assert int(t.gen_arr[5]) == 2 and t.read(5)[VALID_F] == 0
        t.invalidate(5)                          # already invalid: nothing changes
        assert int(t.gen_arr[5]) == 2
        assert list(t.gen_arr) == [0, 0, 0, 0, 0, 2, 0, 0]

    def test_invalidate_ea(self):
        t = self.tlb()
        t.write(0, 0x1000, 12, 5, 1)     # exact: TID 5, TS 1         -> invalidated
        t.write(1, 0x1000, 12, 0, 1)     # TID 0 is not TID 5          -> kept
        t.write(2, 0x1000, 12, 5, 0)     # TS 0                        -> kept
        t.write(3, 0x0, 20, 5, 1)        # 1M page holding 0x1234      -> invalidated
        t.write(4, 0x2000, 12, 5, 1)     # another 4K page             -> kept
        assert t.invalidate_ea(0x1234, 5, 1) == 2
        assert [t.read(i)[VALID_F] for i in range(6)] == [0, 1, 1, 0, 1, 0]
        assert t.invalidate_ea(0x1234, 5, 1) == 0

    def _populate(self, t):
        # index: (tid, ts, owner)
        layout = {0: (0, 0, -1), 1: (5, 1, 1), 2: (5, 1, 2), 3: (5, 0, 1),
                  4: (7, 1, 1), 5: (0, 1, 2), 6: (1, 1, 2)}
        for i, (tid, ts, owner) in layout.items():
            t.write(i, i << 12, 12, tid, ts, 0, 0, owner)
        return layout

    @pytest.mark.parametrize("kwargs, gone", [
        ({"tid": 5}, {1, 2, 3}),
        ({"ts": 1}, {1, 2, 4, 5, 6}),
        ({"ts": 0}, {0, 3}),
        ({"tid": 5, "ts": 1}, {1, 2}),
        ({"owner": 1}, {1, 3, 4}),
        ({"owner": -1}, {0}),               # -1 is an owner ("none"); -2 means "any"
        ({"owner": 2, "ts": 1}, {2, 5, 6}),
        ({"tid": 0}, {0, 5}),               # TID 0 is a value here, not a wildcard
        ({}, {0, 1, 2, 3, 4, 5, 6}),
    ])
    def test_invalidate_where(self, kwargs, gone):
        t = self.tlb()
        self._populate(t)
        assert t.invalidate_where(**kwargs) == len(gone)
        assert {i for i in range(7) if not t.read(i)[VALID_F]} == gone
        assert t.invalidate_where(**kwargs) == 0

    def test_invalidate_all(self):
        t = self.tlb()
        self._populate(t)
        assert t.invalidate_all() == 7
        assert t.valid_count() == 0
        assert t.find(0x1000, 5, 1) == -1
        assert t.invalidate_all() == 0

    def test_rewrite_moves_the_entry(self):
        # Overwriting a slot must forget the old page (a stale hash index would not).
        t = self.tlb()
        t.write(3, 0x1000, 12, 0, 0)
        t.write(3, 0x40000, 16, 0, 0)
        assert t.find(0x1000, 0, 0) == -1
        assert t.find(0x4ffff, 0, 0) == 3

    # -- replacement ---------------------------------------------------------

    def test_round_robin_cycles_to_hwater(self):
        # Linux 44x: the pointer wraps to 0 after hwater (62): 0,1,...,62,0,...
        t = self.tlb(entries=64, policy="round-robin", hwater=62)
        assert [t.choose_victim() for _ in range(200)] == [i % 63 for i in range(200)]

    @pytest.mark.parametrize("hwater", [0, 1, 61])
    def test_round_robin_pinned_entries_survive(self, hwater):
        t = self.tlb(entries=64, policy="round-robin", hwater=hwater)
        pinned = range(hwater + 1, 64)
        for i in pinned:
            t.write(i, 0xC000_0000 + ((i - hwater - 1) << 28), 28, 0, 0, owner=99)
        seen = set()
        for n in range(1000):
            v = t.choose_victim(n << 12)
            seen.add(v)
            t.write(v, (n + 1) << 12, 12, 0, 0)
        assert seen == set(range(hwater + 1))     # every index up to hwater, none above
        for i in pinned:
            assert t.read(i)[VALID_F] == 1 and t.read(i)[OWNER_F] == 99

    def test_round_robin_hwater_clipped_to_ways(self):
        # hwater above the last way means no pinned entries: a plain cycle of 8.
        t = self.tlb(entries=8, policy="round-robin", hwater=100)
        assert t.hwater == 7
        assert [t.choose_victim() for _ in range(10)] == [0, 1, 2, 3, 4, 5, 6, 7, 0, 1]

    def test_fifo_ignores_holes(self):
        # FIFO is a pointer: an invalidated slot does not jump the queue.
        t = self.tlb(entries=4, policy="fifo")
        out = []
        for n in range(6):
            v = t.choose_victim()
            out.append(v)
            t.write(v, n << 12, 12, 0, 0)
        assert out == [0, 1, 2, 3, 0, 1]
        t.invalidate(3)
        assert t.choose_victim() == 2

    def test_fifo_pointer_per_set(self):
        # 8 entries, 2 ways -> 4 sets; set = (EA >> 12) % 4.  Each set has its
        # own pointer: set 0 gives 0,1,0; set 1 gives 2,3,2; set 3 gives 6.
        t = self.tlb(entries=8, ways=2, policy="fifo")
        assert [t.choose_victim(0x0000) for _ in range(3)] == [0, 1, 0]
        assert [t.choose_victim(0x1000) for _ in range(3)] == [2, 3, 2]
        assert t.choose_victim(0x3000) == 6
        assert t.choose_victim(0x4000) == 1        # 0x4000 is in set 0 again
        assert list(t.ptr_arr) == [0, 1, 0, 1]

    def test_set_shift_picks_the_set(self):
        # set_shift 20 (1M granules): EAs 0x1000 and 0x2000 share set 0.
        t = self.tlb(entries=8, ways=2, policy="fifo", set_shift=20)
        assert [t.choose_victim(0x1000), t.choose_victim(0x2000)] == [0, 1]
        assert t.choose_victim(0x100000) == 2

    def test_lru_sequence(self):
        t = self.tlb(entries=4, policy="lru")
        # Empty: the lowest invalid way, and asking does not change anything.
        assert [t.choose_victim(), t.choose_victim()] == [0, 0]
        for i in range(4):
            t.write(i, i << 12, 12, 0, 0)            # ages: 0 oldest ... 3 newest
        assert t.choose_victim() == 0
        t.use(0)                                     # 1 is now the oldest
        assert t.choose_victim() == 1
        t.use(1)
        assert t.choose_victim() == 2
        t.write(2, 0x9000, 12, 0, 0)                # a write counts as a use
        assert t.choose_victim() == 3
        t.use(3)
        assert t.choose_victim() == 0
        t.invalidate(2)                              # a hole beats the oldest way
        assert t.choose_victim() == 2

    def test_lru_per_set(self):
        t = self.tlb(entries=8, ways=2, policy="lru")
        for i in range(8):
            t.write(i, 0, 12, 0, 0)
        t.use(0)
        t.use(5)
        # set 0: way 1 older; set 1: way 0 (slot 2) older; set 2: way 1 newer -> slot 4
        assert t.choose_victim(0x0000) == 1
        assert t.choose_victim(0x1000) == 2
        assert t.choose_victim(0x2000) == 4

    def test_use_is_a_no_op_outside_lru(self):
        t = self.tlb(entries=4, policy="fifo")
        for i in range(4):
            t.write(i, i << 12, 12, 0, 0)
        stamps = t.stamp_arr.copy()
        t.use(0)
        assert list(t.stamp_arr) == list(stamps)
        assert t.choose_victim() == 0

    def test_random_known_draws(self):
        # With every way valid, the victim is draw % ways, the draws being
        # xorshift64* from the SplitMix64-seeded state (see the top of the file).
        for seed in (0, 1, 12345):
            t = self.tlb(entries=8, policy="random", seed=seed)
            for i in range(8):
                t.write(i, i << 12, 12, 0, 0)
            got = [t.choose_victim() for _ in range(40)]
            assert got == [d % 8 for d in _xorshift64star_draws(seed, 40)]

    def test_random_fills_holes_first_and_is_seeded(self):
        a, b, c = (self.tlb(entries=8, policy="random", seed=s) for s in (7, 7, 8))
        for t in (a, b, c):
            assert t.choose_victim() == 0              # a hole: no draw needed
            for i in range(8):
                t.write(i, i << 12, 12, 0, 0)
        sa, sb, sc = ([t.choose_victim() for _ in range(60)] for t in (a, b, c))
        assert sa == sb
        assert sa != sc        # 60 draws over 8 ways: equal with probability 8**-60
        assert set(sa) <= set(range(8)) and len(set(sa)) > 1

    def test_random_in_its_set(self):
        t = self.tlb(entries=16, ways=4, policy="random", seed=3)
        for i in range(16):
            t.write(i, 0, 12, 0, 0)
        draws = _xorshift64star_draws(3, 20)
        got = [t.choose_victim(0x2000) for _ in range(20)]     # set 2: slots 8..11
        assert got == [8 + d % 4 for d in draws]

    def test_nv_counter_shared_by_all_sets(self):
        # 16 entries, 4 ways, 4 sets.  One counter: set 0 gets way 0, set 1 way 1,
        # set 2 way 2, set 0 way 3, then set 0 way 0 again (wrap).
        t = self.tlb(entries=16, ways=4, policy="nv")
        got = [t.choose_victim(ea) for ea in (0x0000, 0x1000, 0x2000, 0x0000, 0x0000, 0x3000)]
        assert got == [0, 4 + 1, 8 + 2, 3, 0, 12 + 1]
        assert list(t.ptr_arr) == [2, 0, 0, 0]

    def test_policy_none_never_chooses(self):
        t = self.tlb(entries=16, policy="none")
        assert t.choose_victim(0x1000) == -1

    def test_bad_geometry_and_policy(self):
        impl = engine.get(self.backend)
        with pytest.raises(ValueError):
            impl.BookeTLB(10, 4)
        with pytest.raises(ValueError):
            impl.BookeTLB(0, 0)
        with pytest.raises(ValueError):
            impl.BookeTLB(8, 8, "mru")


class TestBookeTLBCython(BookeTLBBase):
    backend = "cython"


class TestBookeTLBReference(BookeTLBBase):
    backend = "reference"


# ==========================================================================
# PlainTLB: a few policy answers by hand (the bulk is in test_tlbsim.py)


class PlainTLBBase:
    backend: str

    def run(self, vpns, entries, ways, policy, hwater=-1, seed=0):
        t = engine.get(self.backend).PlainTLB(entries, ways, policy, 12, hwater, seed)
        addr = np.asarray(vpns, dtype=np.uint64) << np.uint64(12)
        t.run(addr, np.ones(len(addr), np.uint8))
        return t

    @pytest.mark.parametrize("policy, misses, contents", [
        # 2-entry FA, trace A B A C A (A=1, B=2, C=3).
        # FIFO: A B miss, A hit, C evicts A (pointer at 0), A evicts B -> 4 misses, [C, A]
        ("fifo", 4, [3, 1]),
        ("round-robin", 4, [3, 1]),
        ("nv", 4, [3, 1]),
        # LRU: A B miss, A hit (B now oldest), C evicts B, A hits -> 3 misses, [A, C]
        ("lru", 3, [1, 3]),
    ])
    def test_fifo_versus_lru(self, policy, misses, contents):
        t = self.run([1, 2, 1, 3, 1], 2, 2, policy)
        c = t.counters()
        assert (c["misses"], c["hits"], c["compulsory_misses"]) == (misses, 5 - misses, 3)
        assert t.contents() == contents

    def test_nv_shares_one_counter(self):
        # 4 entries, 2 ways, 2 sets.  vpn 0 -> set 0 way 0 (slot 0); vpn 1 -> set 1
        # way 1 (slot 3); vpn 2 -> set 0 way 0 (slot 0, evicts 0); vpn 3 -> set 1
        # way 1 (slot 3, evicts 1).  A per-set pointer would have kept all four.
        t = self.run([0, 1, 2, 3], 4, 2, "nv")
        assert t.contents() == [2, -1, -1, 3]
        # The counter is back at way 0: vpn 0 (set 0) misses and evicts 2.
        t = self.run([0, 1, 2, 3, 0], 4, 2, "nv")
        assert t.counters()["misses"] == 5
        assert t.contents() == [0, -1, -1, 3]

    def test_round_robin_never_fills_above_hwater(self):
        # 4-way FA, hwater 1: victims 0,1,0,1 ...; slots 2 and 3 stay empty.
        t = self.run([0, 1, 2, 1, 0], 4, 4, "round-robin", hwater=1)
        # 0 -> slot 0, 1 -> slot 1, 2 -> slot 0 (evicts 0), 1 hits, 0 -> slot 1 (evicts 1)
        assert t.contents() == [2, 0, -1, -1]
        assert t.counters()["misses"] == 4

    def test_random_known_victim(self):
        # 4 distinct pages fill the 4 ways in order; page 5 then replaces way
        # draw % 4, draw being the first xorshift64* output for the seed.
        for seed in (0, 5, 99):
            t = self.run([1, 2, 3, 4, 5], 4, 4, "random", seed=seed)
            expect = [1, 2, 3, 4]
            expect[_xorshift64star_draws(seed, 1)[0] % 4] = 5
            assert t.contents() == expect

    @pytest.mark.parametrize("entries, ways, policy, hwater", [
        (1, 1, "fifo", -1), (1, 1, "lru", -1), (4, 4, "round-robin", 0)])
    def test_page_before_last_can_be_evicted_by_the_last(self, entries, ways, policy, hwater):
        # One usable way: 1 misses, 2 misses and evicts 1, so 1 misses again (a
        # shortcut remembering "the page before the last" must forget it), and
        # so on: 1 2 1 2 1 -> 5 misses, and 1 is the one left.
        t = self.run([1, 2, 1, 2, 1], entries, ways, policy, hwater=hwater)
        assert (t.counters()["misses"], t.counters()["hits"]) == (5, 0)
        assert t.contents() == [1] + [-1] * (entries - 1)

    def test_ping_pong_then_third_page_lru(self):
        # 2-entry LRU, trace A B A B B A C B (A=1, B=2, C=3).  A B miss; A B B A
        # hit, A last used -> B is LRU; C evicts B; B then evicts A (LRU).
        # 4 misses, 4 hits; slots: A was 0, B 1; C takes 1, B takes 0.
        t = self.run([1, 2, 1, 2, 2, 1, 3, 2], 2, 2, "lru")
        assert (t.counters()["misses"], t.counters()["hits"]) == (4, 4)
        assert t.contents() == [2, 3]

    def test_set_index_is_vpn_mod_sets(self):
        # 8 entries, 2 ways, 4 sets; vpn 6 is in set 2 -> slot 4 (first fill).
        t = self.run([6, 10], 8, 2, "fifo")
        assert t.contents() == [-1, -1, -1, -1, 6, 10, -1, -1]


class TestPlainTLBCython(PlainTLBBase):
    backend = "cython"


class TestPlainTLBReference(PlainTLBBase):
    backend = "reference"


# ==========================================================================
# PowerPC 440 UTLB, word level


def _hex(s):
    return int(s, 16)


KNOWN = json.loads((DATA / "hw_440_words.json").read_text())


class PPC440Base:
    backend: str

    def utlb(self, **kw):
        return PPC440UTLB(backend=self.backend, **kw)

    def test_geometry(self):
        u = self.utlb()
        assert (u.array.entries, u.array.ways, u.hwater) == (64, 64, 62)
        assert TLB_SIZE == 64 and HWATER == 62

    @pytest.mark.parametrize("shift", SHIFTS_440)
    def test_every_page_size_translates(self, shift):
        # The EA base and the real base are aligned for every size up to 256M;
        # the real address has ERPN 2 (a 36-bit address).  Real = RPN | offset.
        size = 1 << shift
        ea, real = 0x1000_0000, 0x2_2000_0000
        u = self.utlb()
        u.write_entry(5, ea, shift, tid=3, ts=1, real_address=real)
        for off in (0, 1, size // 2 + 3, size - 1):
            assert u.translate(ea + off, 3, 1) == real + off
        assert u.translate(ea + size, 3, 1) is None
        assert u.translate(ea - 1, 3, 1) is None
        assert u.translate(ea, 4, 1) is None          # TID 3 is not PID 4
        assert u.translate(ea, 3, 0) is None          # TS 1 is not AS 0
        assert u.tlbre(5, 0) == word0(ea, shift, True, 1)
        assert u.tlbre(5, 1) == word1(real)

    def test_rpn_low_bits_ignored(self):
        # RPN bits below the page size are not part of the translation.
        u = self.utlb()
        u.write_entry(0, 0x4000, 14, real_address=0x8000_0000 + 0x2C00)   # 16K page
        assert u.translate(0x4000 + 0x123, 0, 0) == 0x8000_0123

    def test_tlbwe_word0_takes_stid(self):
        u = self.utlb()
        u.mmucr_stid = 42
        u.tlbwe(7, 1, word1(0x100000))
        u.tlbwe(7, 2, ppc440.SR | ppc440.SW)
        u.mmucr_stid = 9                      # words 1 and 2 do not carry the TID
        u.tlbwe(7, 0, word0(0x3000, 12))
        assert u.array.read(7)[TID_F] == 9
        u.mmucr_stid = 42
        u.tlbwe(7, 1, word1(0x200000))        # rewriting word 1 keeps TID 9
        assert u.array.read(7)[TID_F] == 9
        assert u.translate(0x3010, 9, 0) == 0x200010
        assert u.translate(0x3010, 42, 0) is None

    def test_tlbre_word0_loads_stid(self):
        u = self.utlb()
        u.write_entry(3, 0x5000, 12, tid=17)
        u.write_entry(4, 0x6000, 12, tid=0)
        u.mmucr_stid = 99
        assert u.tlbre(3, 1) == word1(0)     # words 1 and 2 leave STID alone
        assert u.tlbre(3, 2) == ppc440.SR | ppc440.SW | ppc440.SX | ppc440.UR | ppc440.UW \
            | ppc440.UX
        assert u.mmucr_stid == 99
        assert u.tlbre(3, 0) == word0(0x5000, 12)
        assert u.mmucr_stid == 17
        u.tlbre(4, 0)
        assert u.mmucr_stid == 0

    def test_tlbsx_uses_stid_and_sts(self):
        u = self.utlb()
        u.write_entry(10, 0x7000, 12, tid=5, ts=1)
        u.write_entry(11, 0x8000, 12, tid=0, ts=0)
        u.mmucr_stid, u.mmucr_sts = 5, 1
        assert u.tlbsx(0x7abc) == 10
        assert u.tlbsx(0x8000) is None         # global entry, but TS 0 != STS 1
        u.mmucr_sts = 0
        assert u.tlbsx(0x7abc) is None
        assert u.tlbsx(0x8000) == 11
        u.mmucr_stid, u.mmucr_sts = 6, 1
        assert u.tlbsx(0x7abc) is None
        assert u.tlbsx(0x9000) is None

    def test_tlbre_then_tlbsx_idiom(self):
        # Reading word 0 of an entry and searching finds that entry again.
        u = self.utlb()
        u.write_entry(20, 0xA000, 12, tid=8, ts=0)
        u.mmucr_stid = 0
        u.tlbre(20, 0)
        assert u.tlbsx(0xA000) == 20

    def test_kvm_invalidate_idiom(self):
        # KVM writes the index itself as word 0; an index < 64 has V (0x200) clear.
        u = self.utlb()
        for i in (0, 31, 63):
            u.write_entry(i, i << 12, 12)
        for i in (0, 31, 63):
            assert u.translate(i << 12, 0, 0) == 0
            u.invalidate(i)
            assert u.tlbre(i, 0) == i
            assert u.translate(i << 12, 0, 0) is None
            assert u.array.read(i)[VALID_F] == 0

    def test_writing_v_clear_invalidates(self):
        u = self.utlb()
        u.write_entry(2, 0x2000, 12)
        u.tlbwe(2, 0, word0(0x2000, 12, valid=False))
        assert u.translate(0x2000, 0, 0) is None
        u.tlbwe(2, 0, word0(0x2000, 12, valid=True))
        assert u.translate(0x2000, 0, 0) == 0

    @pytest.mark.parametrize("code", [0x6, 0x8, 0xA, 0xB, 0xC, 0xD, 0xE, 0xF])
    def test_unsupported_size_code_does_not_match(self, code):
        u = self.utlb()
        u.write_entry(1, 0x0, 12)
        assert u.translate(0x0, 0, 0) == 0
        u.tlbwe(1, 0, 0x0 | VALID | (code << 4))
        assert u.translate(0x0, 0, 0) is None
        assert u.array.valid_count() == 0
        assert u.tlbre(1, 0) == VALID | (code << 4)      # the word reads back as written

    def test_attributes_through_word2(self):
        u = self.utlb()
        u.write_entry(0, 0x1000, 12, attr=0xFFFF)
        # bit 25 (0x40) is reserved: the array keeps U0-U3, WIMGE and the permissions
        assert u.array.read(0)[ATTR_F] == 0xFFFF & ATTR_MASK == 0xFFBF
        assert u.tlbre(0, 2) == 0xFFFF

    def test_round_robin_spares_pinned_slot(self):
        # Linux: the 256M kernel lowmem mapping is pinned in slot 63, hwater 62.
        u = self.utlb()
        u.write_entry(63, 0xC000_0000, 28, real_address=0)
        victims = set()
        for n in range(500):
            v = u.array.choose_victim()
            victims.add(v)
            u.write_entry(v, 0x1000_0000 + (n << 12), 12, tid=1, real_address=n << 12)
        assert victims == set(range(63))
        assert u.translate(0xC123_4567, 7, 0) == 0x0123_4567

    def test_index_out_of_range(self):
        u = self.utlb()
        for bad in (-1, 64, 100):
            with pytest.raises(IndexError):
                u.tlbwe(bad, 0, 0)
            with pytest.raises(IndexError):
                u.tlbre(bad, 0)
        with pytest.raises(IndexError):
            u.write_entry(64, 0, 12)
        with pytest.raises(ValueError):
            u.tlbwe(0, 3, 0)


class TestPPC440Cython(PPC440Base):
    backend = "cython"


class TestPPC440Reference(PPC440Base):
    backend = "reference"


# -- encoding helpers (backend-free) ----------------------------------------


@pytest.mark.parametrize("case", KNOWN["word0"], ids=lambda c: c["note"])
def test_word0_known(case):
    ea, w = _hex(case["ea"]), _hex(case["word0"])
    assert word0(ea, case["shift"], case["valid"], case["ts"]) == w


@pytest.mark.parametrize("case", KNOWN["word1"], ids=lambda c: c["note"])
def test_word1_known(case):
    assert word1(_hex(case["real_address"])) == _hex(case["word1"])


@pytest.mark.parametrize("shift", SHIFTS_440)
@pytest.mark.parametrize("ts", [0, 1])
@pytest.mark.parametrize("valid", [True, False])
def test_word0_round_trip(shift, ts, valid):
    ea = 0xDEAD_BEEF
    w = word0(ea, shift, valid, ts)
    assert w & ppc440.EPN_MASK == ea >> shift << shift & 0xFFFF_FFFF
    assert bool(w & VALID) == valid
    assert bool(w & TS) == bool(ts)
    assert SHIFT_OF_CODE[(w & ppc440.SIZE_MASK) >> 4] == shift


def test_size_codes_are_linux_constants():
    # mmu-44x.h: PPC44x_TLB_1K 0x00, _4K 0x10, _16K 0x20, _64K 0x30, _256K 0x40,
    # _1M 0x50, _16M 0x70, _256M 0x90
    assert {s: c << 4 for s, c in SIZE_CODES.items()} == {
        10: 0x00, 12: 0x10, 14: 0x20, 16: 0x30, 18: 0x40, 20: 0x50, 24: 0x70, 28: 0x90}
    assert tuple(1 << s for s in sorted(SIZE_CODES)) == PAGE_SIZES_440


@pytest.mark.parametrize("real", [0x0, 0x1234_5C00, 0x9_8765_4000, 0xF_FFFF_FC00])
def test_word1_round_trip_36_bit(real):
    w = word1(real)
    rpn = w & ppc440.RPN_MASK
    erpn = w & ppc440.ERPN_MASK
    assert (erpn << 32) | rpn == real


@pytest.mark.parametrize("shift", [11, 13, 22, 26, 30, 32])
def test_word0_rejects_sizes_the_440_lacks(shift):
    with pytest.raises(ConfigError):
        word0(0, shift)


# ==========================================================================
# e500: TLB0 set-associative with the hardware next victim, TLB1 variable sizes


class E500Base:
    backend: str

    def mmu(self, **kw):
        return E500MMU(backend=self.backend, **kw)

    def test_geometry(self):
        m = self.mmu()
        assert (m.tlb0.entries, m.tlb0.ways, m.tlb0.sets) == (512, 4, 128)
        assert (m.tlb1.entries, m.tlb1.ways, m.tlb1.sets) == (16, 16, 1)
        assert (TLB0_ENTRIES, TLB0_WAYS, TLB1_ENTRIES) == (512, 4, 16)

    def test_fifth_page_in_a_set_evicts_the_first(self):
        # EAs 128 x 4K apart share a set (set = (EA >> 12) % 128).  The NV
        # counter hands out ways 0,1,2,3 then wraps to 0: the 5th write lands on
        # the 1st page's way.
        m = self.mmu()
        base = 0x0003_7000                     # set 0x37
        eas = [base + k * 128 * 4096 for k in range(5)]
        idx = [m.tlb0_write(ea, 0, 0, real_address=0x10_0000 * (k + 1))
               for k, ea in enumerate(eas)]
        assert idx == [0x37 * 4 + w for w in (0, 1, 2, 3, 0)]
        assert m.find(eas[0], 0, 0) is None
        for k in range(1, 5):
            assert m.find(eas[k], 0, 0) == ("tlb0", idx[k])
        assert m.tlb0.read(idx[4])[RPN_F] == 0x50_0000

    def test_different_sets_do_not_conflict(self):
        # Pages in consecutive sets never evict each other: 8 pages, 8 sets, and
        # the shared NV counter gives page k way k % 4.
        m = self.mmu()
        idx = [m.tlb0_write(k << 12, 0, 0) for k in range(8)]
        assert idx == [k * 4 + k % 4 for k in range(8)]
        assert all(m.find(k << 12, 0, 0) == ("tlb0", idx[k]) for k in range(8))

    def test_sequential_sweep_keeps_one_way_per_set(self):
        # A known consequence of one NV counter for all sets: page k goes to set
        # k % 128, way k % 4, so pages k and k + 128 share a way (128 % 4 == 0).
        # 512 sequential pages leave only the last 128 resident; a per-set
        # counter would have kept all 512.
        m = self.mmu()
        for k in range(512):
            m.tlb0_write(k << 12, 0, 0)
        assert m.tlb0.valid_count() == 128
        assert all(m.find(k << 12, 0, 0) is not None for k in range(384, 512))
        assert all(m.find(k << 12, 0, 0) is None for k in range(384))

    def test_explicit_way(self):
        m = self.mmu()
        assert m.tlb0_write(0x5000, 0, 0, way=2) == 5 * 4 + 2
        with pytest.raises(IndexError):
            m.tlb0_write(0x5000, 0, 0, way=4)

    def test_tlb0_match_rule(self):
        m = self.mmu()
        m.tlb0_write(0x1000, 7, 1)
        assert m.find(0x1fff, 7, 1) == ("tlb0", 4)
        assert m.find(0x1fff, 8, 1) is None
        assert m.find(0x1fff, 7, 0) is None
        assert m.find(0x2000, 7, 1) is None

    @pytest.mark.parametrize("page_size", PAGE_SIZES_E500)
    def test_tlb1_variable_page_sizes(self, page_size):
        m = self.mmu()
        ea = 0 if page_size == 4 * GB else page_size   # aligned, inside 32 bits
        real = 0x1_0000_0000 if page_size <= GB else 0
        m.tlb1_write(3, ea, page_size, 0, 0, real_address=real)
        assert m.find(ea, 1, 0) == ("tlb1", 3)
        assert m.find(ea + page_size - 1, 1, 0) == ("tlb1", 3)
        assert m.find(ea + page_size, 1, 0) is None
        if ea:
            assert m.find(ea - 1, 1, 0) is None
        assert m.tlb1.read(3)[SHIFT_F] == page_size.bit_length() - 1
        assert m.tlb1.read(3)[RPN_F] == real

    @pytest.mark.parametrize("page_size", [1 * KB, 8 * KB, 2 * MB, 0, 3 * 4096])
    def test_tlb1_rejects_other_sizes(self, page_size):
        m = self.mmu()
        with pytest.raises(ConfigError):
            m.tlb1_write(0, 0, page_size, 0, 0)

    def test_find_searches_both_arrays(self):
        m = self.mmu()
        i0 = m.tlb0_write(0x0000_5000, 3, 1)
        m.tlb1_write(15, 0x1000_0000, 16 * MB, 0, 1)
        assert m.find(0x0000_5123, 3, 1) == ("tlb0", i0)
        assert m.find(0x10AB_CDEF, 3, 1) == ("tlb1", 15)
        assert m.find(0x10AB_CDEF, 3, 0) is None
        assert m.find(0x0000_6000, 3, 1) is None

    def test_tlb1_policy_is_software_only(self):
        assert self.mmu().tlb1.choose_victim(0) == -1

    def test_flash_invalidate(self):
        m = self.mmu()
        for k in range(10):
            m.tlb0_write(k << 12, 0, 0)
        m.tlb1_write(0, 0x4000_0000, 256 * MB, 0, 0)
        m.tlb1_write(1, 0x8000_0000, 1 * GB, 0, 0)
        assert m.flash_invalidate() == 12
        assert m.find(0x0, 0, 0) is None and m.find(0x4000_0000, 0, 0) is None
        assert m.tlb0.valid_count() == m.tlb1.valid_count() == 0
        assert m.flash_invalidate() == 0


class TestE500Cython(E500Base):
    backend = "cython"


class TestE500Reference(E500Base):
    backend = "reference"


# ==========================================================================
# Configuration errors (emu.hw.tlb)


@pytest.mark.parametrize("entries, ways", [(64, 3), (10, 4), (6, 4)])
def test_entries_not_divisible_by_ways(entries, ways):
    with pytest.raises(ConfigError, match="divisible"):
        check_geometry(entries, ways, "fifo")
    with pytest.raises(ConfigError):
        make_plain_tlb(entries, ways)


@pytest.mark.parametrize("entries, ways", [(0, None), (-4, None), (8, 0), (8, -2),
                                           (True, None), (8.0, None), (8, 2.0)])
def test_non_positive_geometry(entries, ways):
    with pytest.raises(ConfigError):
        check_geometry(entries, ways, "fifo")


def test_check_geometry_returns_ways():
    assert check_geometry(64, None, "lru") == 64       # None: fully associative
    assert check_geometry(512, 4, "nv") == 4


@pytest.mark.parametrize("policy", ["mru", "FIFO", "none", "", "round_robin"])
def test_unknown_policy(policy):
    # "none" is the guest TLB's internal mode, not a replacement policy.
    with pytest.raises(ConfigError, match="policy"):
        check_geometry(64, None, policy)
    with pytest.raises(ConfigError):
        make_plain_tlb(64, policy=policy)


@pytest.mark.parametrize("size", [0, 1, 512, 2048, 8192, 3 * 4096, 1 << 33, -4096,
                                  4096.0, True, "4096"])
def test_bad_page_size(size):
    with pytest.raises(ConfigError, match="page size"):
        page_shift(size)
    with pytest.raises(ConfigError):
        make_plain_tlb(64, page_size=size)


def test_page_shift_known():
    assert [page_shift(s) for s in PAGE_SIZES_440] == list(SHIFTS_440)
    assert page_shift(4 * GB) == 32                  # e500v2 TLB1's largest page
    assert POLICIES == ("fifo", "lru", "random", "round-robin", "nv")


def test_config_errors_are_one_line_emu_errors():
    with pytest.raises(ConfigError) as err:
        make_plain_tlb(64, 3)
    assert isinstance(err.value, EmuError) and isinstance(err.value, ValueError)
    assert "\n" not in str(err.value)


def test_unknown_backend():
    with pytest.raises(ConfigError, match="backend"):
        make_plain_tlb(64, backend="fortran")


@pytest.mark.parametrize("name", BACKENDS)
def test_make_plain_tlb_shape(name):
    t = make_plain_tlb(64, 4, "lru", 65536, seed=3, backend=name)
    assert (t.entries, t.ways, t.sets, t.page_shift) == (64, 4, 16, 16)
    assert t.counters() == {"records": 0, "translations": 0, "hits": 0, "misses": 0,
                            "compulsory_misses": 0}
    assert t.contents() == [-1] * 64


# ==========================================================================
# Differential: Cython vs reference on random operation sequences

FP, REF = engine.get("cython"), engine.get("reference")

_PAGES_1K = [0, 1, 2, 3, 4, 5, 8, 12, 16, 64, 512, 513, 1024, 4096, 4100]
_pool_ea = st.builds(lambda p, o: p * 1024 + o, st.sampled_from(_PAGES_1K), st.integers(0, 1023))
_shift = st.one_of(st.sampled_from(SHIFTS_440), st.sampled_from([12, 12, 12, 32, 40]))
_tid = st.sampled_from([0, 0, 1, 2, 5, 255])
_ts = st.integers(0, 1)
_owner = st.sampled_from([-1, 0, 1, 2])
# Operation mix: lookups and writes dominate; a full flush is rare.
_TAGS = (["write"] * 3 + ["victim_write"] * 4 + ["find"] * 6 + ["invalidate", "invalidate_ea",
         "invalidate_where", "use", "use", "victim"] + ["invalidate_all"])


@st.composite
def booke_ops(draw, max_ops=60):
    """A sequence of operations whose lookups mostly aim at EAs already written."""
    written = [0x1000]
    ops = []
    for _ in range(draw(st.integers(0, max_ops), label="n_ops")):
        near = st.builds(lambda e, d: max(e + d, 0), st.sampled_from(written),
                         st.sampled_from([0, 0, 1, 0x3FF, 0xFFF, 0x1000, -1, 0x10000]))
        ea = draw(st.one_of(near, near, _pool_ea, st.integers(0, (1 << 32) - 1)))
        tag = draw(st.sampled_from(_TAGS))
        idx = draw(st.integers(0, 1 << 16))
        tid, ts = draw(_tid), draw(_ts)
        if tag in ("write", "victim_write"):
            written.append(ea)
            entry = (ea, draw(_shift), tid, ts, draw(st.integers(0, (1 << 36) - 1)),
                     draw(st.integers(0, (1 << 32) - 1)), draw(_owner))
            ops.append((tag, idx, entry))
        elif tag == "find":
            ops.append((tag, ea, tid, ts, draw(st.sampled_from([0xFFFF, 0xFFFF, 1, 5]))))
        elif tag == "invalidate_ea":
            ops.append((tag, ea, tid, ts))
        elif tag == "invalidate_where":
            ops.append((tag, draw(st.sampled_from([-1, -1, 0, 5])),
                        draw(st.sampled_from([-1, -1, 0, 1])), draw(st.sampled_from([-2, -2, -1, 1]))))
        elif tag == "victim":
            ops.append((tag, ea))
        elif tag == "invalidate_all":
            ops.append((tag,))
        else:
            ops.append((tag, idx))
    return ops


def _apply(t, op):
    tag = op[0]
    if tag == "write":
        ea, sh, tid, ts, rpn, attr, owner = op[2]
        return t.write(op[1] % t.entries, ea, sh, tid, ts, rpn, attr, owner)
    if tag == "victim_write":
        ea, sh, tid, ts, rpn, attr, owner = op[2]
        v = t.choose_victim(ea)
        if v >= 0:
            t.write(v, ea, sh, tid, ts, rpn, attr, owner)
        return v
    if tag == "find":
        return t.find(*op[1:])
    if tag == "invalidate":
        return t.invalidate(op[1] % t.entries)
    if tag == "invalidate_ea":
        return t.invalidate_ea(*op[1:])
    if tag == "invalidate_where":
        return t.invalidate_where(tid=op[1], ts=op[2], owner=op[3])
    if tag == "invalidate_all":
        return t.invalidate_all()
    if tag == "use":
        return t.use(op[1] % t.entries)
    if tag == "victim":
        return t.choose_victim(op[1])
    raise AssertionError(tag)


def _state(t):
    return ([t.read(i) for i in range(t.entries)], t.valid_arr.tolist(), t.ptr_arr.tolist(),
            t.gen_arr.tolist(), t.stamp_arr.tolist(), int(t.rng))


BOOKE_POLICIES = ("fifo", "lru", "random", "round-robin", "nv", "none")
SHAPES = {"fa": [(8, 8), (16, 16)], "set": [(16, 4), (16, 2), (32, 4)]}


@pytest.mark.parametrize("shape", sorted(SHAPES))
@pytest.mark.parametrize("policy", BOOKE_POLICIES)
@settings(derandomize=True, max_examples=50, deadline=None)
@given(data=st.data())
def test_booke_differential(policy, shape, data):
    entries, ways = data.draw(st.sampled_from(SHAPES[shape]), label="shape")
    hwater = data.draw(st.integers(-1, ways), label="hwater")
    seed = data.draw(st.integers(0, M64), label="seed")
    set_shift = data.draw(st.sampled_from([12, 12, 10, 16]), label="set_shift")
    ops = data.draw(booke_ops(), label="ops")
    a = FP.BookeTLB(entries, ways, policy, hwater, set_shift, seed)
    b = REF.BookeTLB(entries, ways, policy, hwater, set_shift, seed)
    for n, op in enumerate(ops):
        ra, rb = _apply(a, op), _apply(b, op)
        assert ra == rb, f"op {n} {op}: cython {ra} != reference {rb}"
        if op[0] in ("victim", "victim_write") and policy == "round-robin" and ra >= 0:
            assert ra % ways <= a.hwater           # never a pinned way
    assert _state(a) == _state(b)
    # Independent of either backend: find agrees with the match rule over read().
    entries_read = _state(b)[0]
    for probe in ([0, 0x1000, 0x400, 0x100400, 0xFFFF_FFFF] + [op[1] for op in ops
                                                               if op[0] == "find"][:10]):
        for pid in (0, 5):
            for as_ in (0, 1):
                want = next((i for i, e in enumerate(entries_read)
                             if e[VALID_F] and e[TS_F] == as_ and e[TID_F] in (0, pid)
                             and e[EA_F] <= probe < e[EA_F] + (1 << e[SHIFT_F])), -1)
                assert a.find(probe, pid, as_) == want == b.find(probe, pid, as_)


# -- PlainTLB ---------------------------------------------------------------


@st.composite
def plain_configs(draw):
    entries = draw(st.sampled_from([1, 2, 4, 8, 16, 64, 256]))
    ways = draw(st.sampled_from([w for w in (1, 2, 4, 8, 16, 64, 256) if entries % w == 0]))
    policy = draw(st.sampled_from(POLICIES))
    shift = draw(st.integers(10, 16))
    hwater = draw(st.one_of(st.just(-1), st.integers(0, ways)))
    seed = draw(st.integers(0, M64))
    mask = draw(st.one_of(st.sampled_from([0xF, 0b1110, 0b0001]), st.integers(0, 0xFF)))
    return entries, ways, policy, shift, hwater, seed, mask


@st.composite
def plain_traces(draw, max_records=150):
    n = draw(st.integers(0, max_records))
    pool = draw(st.lists(st.integers(0, 1 << 20), min_size=1, max_size=24))
    top = M64 - 20000
    addr = draw(st.lists(st.one_of(
        st.builds(lambda p, o: p * 1024 + o, st.sampled_from(pool), st.integers(0, 5000)),
        st.integers(top, M64),                   # near 2**64: an access may wrap
        st.integers(0, M64)), min_size=n, max_size=n))
    # now and then an invalid kind (4..255) or size (0): the run stops there
    kind = draw(st.lists(st.one_of(st.integers(0, 3), st.integers(0, 3), st.integers(0, 3),
                                   st.integers(0, 3), st.integers(4, 255)),
                         min_size=n, max_size=n))
    sized = draw(st.booleans())
    size = (draw(st.lists(st.one_of(st.integers(1, 8), st.integers(1, 9000), st.just(0)),
                          min_size=n, max_size=n)) if sized else None)
    cuts = sorted(draw(st.lists(st.integers(0, n), max_size=6)))
    return (np.array(addr, np.uint64), np.array(kind, np.uint8),
            None if size is None else np.array(size, np.uint32), cuts)


def _run_plain(impl, cfg, trace, cuts):
    """The TLB after the trace, fed in chunks cut at ``cuts``, and the first
    invalid record (where the run stopped) or -1."""
    entries, ways, policy, shift, hwater, seed, mask = cfg
    addr, kind, size, _ = trace
    t = impl.PlainTLB(entries, ways, policy, shift, hwater, seed)
    bounds = [0] + list(cuts) + [len(addr)]
    for lo, hi in zip(bounds, bounds[1:]):
        bad = t.run(addr[lo:hi], kind[lo:hi], None if size is None else size[lo:hi], mask)
        if bad >= 0:
            return t, lo + bad
    return t, -1


def _first_invalid(trace) -> int:
    addr, kind, size, _ = trace
    for r in range(len(addr)):
        if kind[r] > 3 or (size is not None and size[r] == 0):
            return r
    return -1


def _expected_pages(cfg, trace):
    """The vpns the trace translates, in order: an oracle written from the spec."""
    shift, mask = cfg[3], cfg[6]
    addr, kind, size, _ = trace
    out = []
    stop = _first_invalid(trace)
    for r in range(len(addr) if stop < 0 else stop):
        if (mask >> int(kind[r])) & 1:
            a = int(addr[r])
            n = 1 if size is None else max(int(size[r]), 1)
            out.extend(range(a >> shift, (min(a + n - 1, M64) >> shift) + 1))
    return out


@settings(derandomize=True, max_examples=200, deadline=None)
@given(cfg=plain_configs(), trace=plain_traces())
def test_plain_differential(cfg, trace):
    a, a_bad = _run_plain(FP, cfg, trace, trace[3])
    b, b_bad = _run_plain(REF, cfg, trace, [])       # reference in one call
    assert a.counters() == b.counters()
    assert a.contents() == b.contents()
    assert a_bad == b_bad == _first_invalid(trace)
    # Counters against the oracle: every translated page is a hit or a miss,
    # and the compulsory misses are exactly the distinct pages.
    pages = _expected_pages(cfg, trace)
    c = a.counters()
    kinds = trace[1][:len(trace[1]) if a_bad < 0 else a_bad]
    assert c["records"] == sum(1 for k in kinds if (cfg[6] >> int(k)) & 1)
    assert c["translations"] == len(pages) == c["hits"] + c["misses"]
    assert c["compulsory_misses"] == len(set(pages))
    # Contents: distinct pages, each in its own set, never above hwater.
    entries, ways = cfg[0], cfg[1]
    sets = entries // ways
    held = [v for v in a.contents() if v >= 0]
    assert len(held) == len(set(held)) and set(held) <= set(pages)
    hw = ways - 1 if cfg[4] < 0 else min(cfg[4], ways - 1)
    for slot, v in enumerate(a.contents()):
        if v >= 0:
            assert slot // ways == v % sets
            if cfg[2] == "round-robin":
                assert slot % ways <= hw
    if pages:
        assert pages[-1] in held                    # the last page is always resident


@settings(derandomize=True, max_examples=80, deadline=None)
@given(cfg=plain_configs(), trace=plain_traces(max_records=300))
def test_plain_chunk_split_invariance(cfg, trace):
    # One call versus the random split versus one record per call, per backend.
    n = len(trace[0])
    for impl in (FP, REF):
        (whole, w_bad), (split, s_bad), (ones, o_bad) = (
            _run_plain(impl, cfg, trace, cuts) for cuts in ([], trace[3], list(range(1, n))))
        assert whole.counters() == split.counters() == ones.counters()
        assert whole.contents() == split.contents() == ones.contents()
        assert w_bad == s_bad == o_bad


@pytest.mark.parametrize("entries,ways", [(64, 64), (48, 12), (96, 32), (24, 8)])
def test_plain_lru_victims_match_reference_on_long_traces(entries, ways):
    # The Cython LRU picks victims from a short list of each set's oldest
    # slots; the reference scans the whole set on every miss.  A long skewed
    # trace over more pages than entries (hits keep touching listed slots,
    # misses use them up) must give identical counters and contents.
    rng = np.random.default_rng(entries * 1000 + ways)
    pages = np.minimum(rng.zipf(1.3, 30_000), 3 * entries).astype(np.uint64)
    addr = (pages * np.uint64(7919)) << np.uint64(12)      # spread over sets
    kind = np.ones(len(addr), np.uint8)
    got = []
    for impl in (FP, REF):
        t = impl.PlainTLB(entries, ways, "lru", 12)
        assert t.run(addr, kind) == -1
        got.append((t.counters(), t.contents()))
    assert got[0] == got[1]
    assert got[0][0]["misses"] > 1000 and got[0][0]["hits"] > 10_000


@pytest.mark.parametrize("impl", [FP, REF], ids=["cython", "reference"])
@pytest.mark.parametrize("mask", [0xF, 0x1, 0xE])
def test_plain_stops_at_first_invalid_record(impl, mask):
    # Records 0-2 are valid; record 3 has kind 9: the run returns 3, having
    # applied exactly records 0-2 (whatever the kinds filter), and nothing after.
    addr = np.array([0x1000, 0x2000, 0x1000, 0x3000, 0x4000], np.uint64)
    kind = np.array([0, 1, 0, 9, 1], np.uint8)
    t = impl.PlainTLB(4, 4, "fifo", 12)
    assert t.run(addr, kind, None, mask) == 3
    selected = [k for k in kind[:3] if (mask >> int(k)) & 1]
    assert t.counters()["records"] == len(selected)
    assert 0x3 not in t.contents() and 0x4 not in t.contents()
    # a size of 0 stops the run the same way; a clean chunk returns -1
    t = impl.PlainTLB(4, 4, "lru", 12)
    size = np.array([1, 8, 0, 4, 4], np.uint32)
    assert t.run(addr, np.ones(5, np.uint8), size, mask) == 2
    assert t.run(addr[:2], np.ones(2, np.uint8), size[:2], mask) == -1


def test_plain_page_shift_zero_top_address():
    got = []
    for impl in (FP, REF):
        try:
            t = impl.PlainTLB(4, 4, "fifo", 0)
        except ValueError:
            got.append("refused")
            continue
        t.run(np.array([M64, M64], np.uint64), np.ones(2, np.uint8))
        got.append((t.counters(), t.contents()))
    assert got[0] == got[1] == "refused"     # shifts below 10 (1 KB) are refused


# --------------------------------------------------------------------------
# The cores the machine builds (emu.hw.cpu, the builders of ppc440 and e500)

@pytest.mark.parametrize("name", BACKENDS)
@pytest.mark.parametrize("hwater", [62, 60])
def test_host_utlb_pins_256_mb_of_lowmem_per_slot_above_hwater(name, hwater):
    # reference §1.5: slot 63 maps PAGE_OFFSET, each further slot the next 256 MB
    t = build_host_utlb(engine.get(name), hwater)
    pinned = [t.read(i) for i in range(hwater + 1, 64)]
    assert [e[:7] for e in pinned] == [
        (1, 0xC000_0000 + (n << 28), 28, 0, 0, n << 28, 0) for n in range(63 - hwater)][::-1]
    assert all(e[7] == -1 for e in pinned)
    assert not any(t.valid_arr[:hwater + 1])
    # the round robin never reaches a pinned slot
    assert {t.choose_victim() for _ in range(200)} == set(range(hwater + 1))


@pytest.mark.parametrize("name", BACKENDS)
def test_guest_utlb_has_no_replacement_of_its_own(name):
    t = build_guest_utlb(engine.get(name))
    assert (t.entries, t.sets) == (64, 1)
    assert {t.choose_victim() for _ in range(5)} == {-1}      # the guest names every index


@pytest.mark.parametrize("name", BACKENDS)
def test_host_e500_mmu_holds_the_iprot_kernel_entry_in_tlb1(name):
    tlb0, tlb1 = build_host_mmu(engine.get(name))
    assert (tlb0.entries, tlb0.sets) == (512, 128)                 # 4-way
    assert (tlb1.entries, tlb1.sets) == (16, 1)
    assert tlb1.read(0)[:7] == (1, 0xC000_0000, 28, 0, 0, 0, 0)
    assert tlb0.valid_count() == 0 and tlb1.valid_count() == 1


@pytest.mark.parametrize("name", BACKENDS)
def test_physical_cpu_of_each_core(name):
    impl = engine.get(name)
    ctx_host = np.zeros(4, np.uint8)
    c440 = PhysicalCPU.build(impl, 0, "440", 61, True, 7, ctx_host)
    assert c440.tlb.entries == 64 and c440.virt.tlb1 is None and c440.virt.micro
    assert c440.tlb.valid_count() == 2               # slots 62 and 63 pinned
    e500 = PhysicalCPU.build(impl, 1, "e500", 61, False, 7, ctx_host)
    assert e500.index == 1 and e500.tlb.entries == 512 and e500.virt.tlb1.entries == 16
    # the breakdown is the CPU's clock: what is charged is what the total shows
    assert e500.charge("guest", 30) == 30 and e500.charge("idle", 12) == 12
    assert e500.total() == 42 and e500.cycles[CYCLES["guest"]] == 30
    assert e500.virt.cycles_arr is e500.cycles
    with pytest.raises(ValueError, match="unknown core"):
        build_core(impl, "476", 62, False, 0, np.zeros(len(CYCLES), np.int64), ctx_host)


def test_the_fast_path_knows_the_permission_bits_of_the_440():
    from emu import _fastpath
    from emu.hw.ppc440 import SR, SW, SX, UR, UW, UX
    assert _fastpath.tlb_perm_bits() == (UX, UW, UR, SX, SW, SR) == (0x20, 0x10, 8, 4, 2, 1)

"""Tests of ``emu.run.tlb``: trace-driven simulation of one TLB (``emu tlb``).

Every known answer lives in :class:`TLBSimBase` and runs on both backends
(``TLBSimConfig(backend=...)``), numpy.random style; the answers are derived
by hand in the comments.  Cross-backend equality and chunk-size invariance
are checked at the bottom.
"""

from __future__ import annotations

import dataclasses
import doctest
from types import SimpleNamespace

import numpy as np
import pytest

import emu.engine
import emu.errors
import emu.run.tlb
from emu.errors import ConfigError
from emu.hw.tlb import POLICIES, make_plain_tlb
from emu.run.tlb import TLBSimConfig, format_table, simulate_arrays, simulate_chunks

BACKENDS = ("cython", "reference")
PAGE = 4096
DETERMINISTIC = ("fifo", "lru", "round-robin", "nv")   # no random draws


def cyclic(n_pages, rounds, page=PAGE):
    """Byte addresses of a cyclic sweep: page 0, 1, ..., n-1, 0, 1, ... (`rounds` times)."""
    return (np.arange(n_pages * rounds, dtype=np.uint64) % n_pages) * np.uint64(page)


def numbers(result):
    """The result without its config (which names the chunk size and backend)."""
    return {k: v for k, v in result.items() if k != "config"}


class TLBSimBase:
    """What ``simulate_arrays`` promises; subclasses set ``backend``."""

    backend: str

    def sim(self, addr, kind=None, size=None, **config):
        return simulate_arrays(addr, kind, size,
                               config=TLBSimConfig(backend=self.backend, **config))

    # -- sweeps --------------------------------------------------------------

    @pytest.mark.parametrize("policy", ["fifo", "lru", "round-robin", "nv"])
    def test_cyclic_sweep_one_page_too_many_always_misses(self, policy):
        # 65 pages cycled through a 64-entry fully associative TLB: under FIFO,
        # LRU and round robin (hwater = 63, i.e. FIFO) the page about to be
        # needed is always the one just evicted.  10 rounds: 650 misses, 0 hits,
        # 65 of them compulsory.
        r = self.sim(cyclic(65, 10), entries=64, policy=policy)
        assert (r["misses"], r["hits"], r["compulsory_misses"]) == (650, 0, 65)
        assert r["translations"] == r["records"] == r["records_read"] == 650
        assert r["miss_rate"] == 1.0

    def test_cyclic_sweep_random_is_not_pathological(self):
        # Random replacement sometimes keeps the next page: some hits, and never
        # fewer than the 65 compulsory misses.
        r = self.sim(cyclic(65, 10), entries=64, policy="random", seed=1)
        assert r["hits"] > 0 and r["misses"] >= 65
        assert r["hits"] + r["misses"] == 650 and r["compulsory_misses"] == 65

    @pytest.mark.parametrize("policy", POLICIES)
    def test_cyclic_sweep_that_fits(self, policy):
        # 64 pages in 64 entries: only the first round misses (64 compulsory),
        # then 9 rounds of hits, whatever the policy.
        r = self.sim(cyclic(64, 10), entries=64, policy=policy)
        assert (r["misses"], r["hits"], r["compulsory_misses"]) == (64, 576, 64)
        assert r["miss_rate"] == 64 / 640

    @pytest.mark.parametrize("policy, ways", [
        (p, w) for p in POLICIES for w in (None, 8, 4)
        # Not NV in a set-associative TLB: its one counter for all sets can pick
        # a filled way while the set still has an empty one (test_nv_... below).
        if not (p == "nv" and w is not None)])
    def test_working_set_that_fits(self, policy, ways):
        # 24 distinct pages (vpn 0..23) in random order through 64 entries.  Set
        # associative: set = vpn % sets; with 8 ways (8 sets) each set gets 3
        # pages, with 4 ways (16 sets) at most 2: it always fits, so the misses
        # are exactly the distinct pages, all compulsory.
        rng = np.random.default_rng(2008)
        vpns = rng.integers(0, 24, size=3000)
        vpns[:24] = np.arange(24)                       # make sure all 24 appear
        r = self.sim(vpns.astype(np.uint64) * PAGE + 17, entries=64, ways=ways, policy=policy)
        assert r["misses"] == r["compulsory_misses"] == 24
        assert r["hits"] == 3000 - 24

    # -- accesses of several bytes -----------------------------------------

    def test_access_straddling_a_page_boundary(self):
        # 2 bytes at the last byte of page 5: bytes 0x5fff and 0x6000 -> 2 pages.
        r = self.sim(np.array([6 * PAGE - 1]), size=np.array([2]))
        assert (r["records"], r["translations"], r["misses"]) == (1, 2, 2)
        # 2 bytes ending on the last byte of page 5: one page.
        r = self.sim(np.array([6 * PAGE - 2]), size=np.array([2]))
        assert (r["records"], r["translations"], r["misses"]) == (1, 1, 1)

    @pytest.mark.parametrize("offset, pages", [
        (100, 3),      # bytes 100 .. 9099: 9099 // 4096 = 2 -> pages 0, 1, 2
        (0, 3),        # bytes 0 .. 8999: last page 2
        (4095, 4),     # bytes 4095 .. 13094: 13094 // 4096 = 3 -> pages 0..3
    ])
    def test_size_9000(self, offset, pages):
        base = 7 * PAGE
        r = self.sim(np.array([base + offset]), size=np.array([9000]))
        assert (r["records"], r["translations"], r["misses"]) == (1, pages, pages)
        assert r["compulsory_misses"] == pages

    def test_size_one_and_no_size_agree(self):
        addr = cyclic(70, 3) + np.uint64(4095)
        a = self.sim(addr, entries=64)
        b = self.sim(addr, size=np.ones(len(addr), np.uint32), entries=64)
        assert numbers(a) == numbers(b)

    def test_sized_accesses_share_pages(self):
        # Record 1 touches pages 0 and 1, record 2 pages 1 and 2: 4 translations,
        # 3 misses (page 1 hits the second time).
        r = self.sim(np.array([PAGE - 8, 2 * PAGE - 8]), size=np.array([16, 16]))
        assert (r["translations"], r["misses"], r["hits"]) == (4, 3, 1)

    # -- kinds ------------------------------------------------------------------

    def test_kinds_filter(self):
        # kinds: 0 = instruction fetch, 1 load, 2 store, 3 modify; each record on
        # its own page so every counted record is one compulsory miss.
        kind = np.array([0, 1, 2, 3, 0, 1], np.uint8)
        addr = np.arange(6, dtype=np.uint64) * PAGE
        expect = {"all": 6, "data": 4, "inst": 2}
        for kinds, n in expect.items():
            r = self.sim(addr, kind=kind, kinds=kinds)
            assert r["records"] == r["translations"] == r["misses"] == n
            assert r["records_read"] == 6

    def test_inst_filter_drops_the_default_loads(self):
        # Without a kind array every record is a load (kind 1): "inst" sees none.
        r = self.sim(cyclic(8, 2), kinds="inst")
        assert (r["records"], r["translations"], r["records_read"]) == (0, 0, 16)
        assert r["miss_rate"] is None             # of no translation: no rate, not 0 %
        assert "miss rate     - (no translation)" in format_table(r)
        assert self.sim(cyclic(8, 2), kinds="data")["records"] == 16

    def test_filtered_records_do_not_touch_the_tlb(self):
        # Data records cycle over 65 pages (all misses in FIFO 64); interleaved
        # instruction fetches to other pages would change nothing under "data".
        data = cyclic(65, 4)
        inst = np.uint64(1 << 30) + cyclic(65, 4)
        addr = np.ravel(np.column_stack([data, inst]))
        kind = np.tile(np.array([1, 0], np.uint8), len(data))
        r = self.sim(addr, kind=kind, kinds="data", entries=64)
        assert (r["records"], r["misses"], r["hits"]) == (260, 260, 0)
        # Unfiltered, the same 64 entries see a cycle over 130 pages: all miss;
        # 256 entries hold all 130 (130 compulsory misses only).
        r = self.sim(addr, kind=kind, kinds="all", entries=64)
        assert (r["records"], r["misses"], r["hits"]) == (520, 520, 0)
        r = self.sim(addr, kind=kind, kinds="all", entries=256)
        assert (r["records"], r["misses"], r["hits"]) == (520, 130, 390)

    # -- page size ------------------------------------------------------------

    def test_large_pages_fold_small_ones(self):
        # 16 consecutive 4K pages starting at 0x10000 are one 64K page.
        addr = np.uint64(0x10000) + np.arange(16, dtype=np.uint64) * PAGE
        r4 = self.sim(addr, page_size=4096)
        r64 = self.sim(addr, page_size=65536)
        assert (r4["misses"], r4["hits"]) == (16, 0)
        assert (r64["misses"], r64["hits"], r64["compulsory_misses"]) == (1, 15, 1)
        # Shifted by 32K they straddle two 64K pages.
        r = self.sim(addr + np.uint64(0x8000), page_size=65536)
        assert (r["misses"], r["hits"]) == (2, 14)

    def test_page_size_1k(self):
        # One 4K page holds four 1K pages.
        r = self.sim(np.arange(0, PAGE, 256, dtype=np.uint64), page_size=1024)
        assert (r["misses"], r["hits"]) == (4, 12)

    # -- set associativity ------------------------------------------------------

    @pytest.mark.parametrize("policy", DETERMINISTIC)
    def test_two_way_set_thrashes(self, policy):
        # 8 entries, 2 ways -> 4 sets, set = vpn % 4.  Trace vpns 0 4 8 1 5, ten
        # times.  Set 0 holds 2 of the 3 pages 0, 4, 8 cycled in order: FIFO/LRU
        # (and round robin, = FIFO here) always evict the page needed next, so
        # those 30 accesses all miss.  NV, though shared, only advances on set-0
        # misses after round 1 and behaves like FIFO there: same count.  Set 1
        # holds pages 1 and 5: 2 compulsory misses then 18 hits.
        r = self.sim(np.tile(np.array([0, 4, 8, 1, 5], np.uint64), 10) * PAGE,
                     entries=8, ways=2, policy=policy)
        assert (r["misses"], r["hits"], r["compulsory_misses"]) == (32, 18, 5)

    @pytest.mark.parametrize("policy, misses", [("fifo", 3), ("nv", 4)])
    def test_nv_counter_is_shared_by_sets(self, policy, misses):
        # 8 entries, 2 ways, 4 sets; trace vpns 0 1 4 0 4 1 0.  Per-set FIFO:
        # 0, 1, 4 miss into empty ways, the rest hit: 3 misses.  NV, one counter:
        # 0 -> set 0 way 0 (NV 1); 1 -> set 1 way 1 (NV 0); 4 -> set 0 way 0,
        # evicting 0 although way 1 is empty (NV 1); 0 -> set 0 way 1 (NV 0);
        # then 4, 1, 0 hit: 4 misses, 3 of them compulsory.
        r = self.sim(np.array([0, 1, 4, 0, 4, 1, 0], np.uint64) * PAGE,
                     entries=8, ways=2, policy=policy)
        assert (r["misses"], r["hits"], r["compulsory_misses"]) == (misses, 7 - misses, 3)

    @pytest.mark.parametrize("policy", POLICIES)
    def test_fully_associative_same_trace_fits(self, policy):
        # The same 5 pages in 8 fully associative entries: 5 compulsory misses.
        r = self.sim(np.tile(np.array([0, 4, 8, 1, 5], np.uint64), 10) * PAGE,
                     entries=8, policy=policy)
        assert (r["misses"], r["hits"]) == (5, 45)

    def test_pages_in_different_sets_do_not_conflict(self):
        # vpns 0 1 2 3 are in 4 different sets of a 4-set direct-mapped TLB.
        r = self.sim(cyclic(4, 10), entries=4, ways=1)
        assert (r["misses"], r["hits"]) == (4, 36)
        # vpns 0 and 4 share set 0 of that TLB: every access misses.
        r = self.sim(np.tile(np.array([0, 4], np.uint64), 10) * PAGE, entries=4, ways=1)
        assert (r["misses"], r["hits"]) == (20, 0)

    # -- random policy --------------------------------------------------------

    def test_random_seeded(self):
        # 3 pages cycled through 2 fully associative entries: each miss evicts
        # one of the two at random, so the hit count depends on the draws.
        addr = cyclic(3, 1000)
        a = self.sim(addr, entries=2, policy="random", seed=0)
        b = self.sim(addr, entries=2, policy="random", seed=0)
        c = self.sim(addr, entries=2, policy="random", seed=1)
        assert numbers(a) == numbers(b)
        assert a["hits"] != c["hits"]
        # About a third of the accesses hit (the next page survives a random
        # eviction of one of two entries half the time, FIFO would give none).
        assert 800 < a["hits"] < 1200 and 800 < c["hits"] < 1200

    # -- derived figures and the result record ----------------------------------

    def test_miss_rate_is_misses_over_translations(self):
        r = self.sim(cyclic(40, 5), size=np.full(200, 5000, np.uint32), entries=16,
                     policy="lru")
        assert r["miss_rate"] == r["misses"] / r["translations"]
        assert r["hits"] + r["misses"] == r["translations"]
        assert r["translations"] > r["records"]

    def test_empty_trace(self):
        r = self.sim(np.array([], np.uint64))
        assert (r["records"], r["records_read"], r["translations"], r["misses"],
                r["miss_rate"]) == (0, 0, 0, 0, None)

    def test_result_carries_config(self):
        r = self.sim(cyclic(3, 1), entries=16, ways=None, policy="lru", page_size=16384)
        cfg = r["config"]
        assert cfg["backend"] == self.backend
        assert (cfg["entries"], cfg["ways"], cfg["policy"], cfg["page_size"]) == \
            (16, 16, "lru", 16384)
        assert r["trace"] == {"source": "arrays"}

    def test_format_table(self):
        r = self.sim(cyclic(65, 10), entries=8, ways=2)
        text = format_table(r)
        assert "4 sets x 2 ways" in text and "650" in text and "100.0000 %" in text

    @pytest.mark.parametrize("chunk", [1, 3, 1000, None])
    def test_chunk_size_changes_nothing(self, chunk):
        # A mixed trace: a pool of pages, sizes that straddle, every kind.
        rng = np.random.default_rng(440)
        n = 2500
        addr = rng.integers(0, 90, n).astype(np.uint64) * np.uint64(3000) \
            + rng.integers(0, 3000, n).astype(np.uint64)
        kind = rng.integers(0, 4, n).astype(np.uint8)
        size = rng.integers(1, 9000, n).astype(np.uint32)
        for policy in POLICIES:
            cfg = dict(entries=32, ways=4, policy=policy, seed=5, kinds="data")
            whole = self.sim(addr, kind, size, chunk=n, **cfg)
            split = self.sim(addr, kind, size, chunk=chunk or n, **cfg)
            assert numbers(split) == numbers(whole)
            assert whole["misses"] > whole["compulsory_misses"] > 0   # capacity misses

    def test_simulate_chunks_with_any_chunk_objects(self):
        # simulate_chunks needs only .addr, .kind, .size; uneven chunks as a
        # reader might produce them give the same answer as simulate_arrays.
        addr = cyclic(65, 10)
        kind = np.ones(len(addr), np.uint8)
        cuts = [0, 1, 2, 100, 101, 499, 650]
        chunks = [SimpleNamespace(addr=addr[a:b], kind=kind[a:b], size=None)
                  for a, b in zip(cuts, cuts[1:])]
        seen = []
        cfg = TLBSimConfig(backend=self.backend, entries=64, policy="lru")
        r = simulate_chunks(chunks, cfg, progress=seen.append)
        assert seen == [1, 1, 98, 1, 398, 151]
        assert (r["misses"], r["hits"], r["records_read"]) == (650, 0, 650)

    # -- input errors -----------------------------------------------------------

    @pytest.mark.parametrize("kind, size, match", [
        ([1, 4, 1], None, "kind 4 at record 1"),         # kinds are I, L, S, M = 0..3
        ([1, 1, 255], None, "kind 255 at record 2"),
        ([1, 1, 1], [3, 0, 3], "size 0 at record 1"),
    ])
    def test_bad_records_refused_by_the_kernel(self, kind, size, match):
        addr = np.arange(3, dtype=np.uint64) * np.uint64(PAGE)
        chunk = SimpleNamespace(addr=addr, kind=np.array(kind, np.uint8),
                                size=None if size is None else np.array(size, np.uint32))
        with pytest.raises(emu.errors.TraceError, match=match):
            simulate_chunks([chunk], TLBSimConfig(backend=self.backend))

    @pytest.mark.parametrize("kind, size, match", [
        ([1, 4, 1], None, r"^kind: the array has value 4 at record 1, expected 0\.\.3"),
        ([1, -1, 1], None, "kind: the array has value -1 at record 1"),   # not wrapped to 255
        ([1, 257, 1], None, "kind: the array has value 257 at record 1"),  # not cut to 1
        ([1, 1.7, 1], None, "kind: the array has dtype float64"),          # not cut to 1
        (["L", "S", "L"], None, "kind: the array has dtype <U1"),
        ([1, 1, 1], [3, 0, 3], r"^size: the array has value 0 at record 1, expected 1\.\.65536"),
        ([1, 1, 1], [3, -1, 3], "size: the array has value -1 at record 1"),
        ([1, 1, 1], [3, 2**32 + 4, 3], "size: the array has value 4294967300 at record 1"),
        ([1, 1, 1], [3, 70000, 3], "size: the array has value 70000 at record 1"),
        ([[1, 1, 1]], None, r"kind: expected a 1-D array, got an array of shape \(1, 3\)"),
        ([1, 1], None, "equal lengths"),
        ([1, 1, 1], [3, 3], "equal lengths"),
    ])
    def test_bad_records_refused_as_given(self, kind, size, match):
        """As a trace file's reader refuses them: not wrapped or cut to the
        kernel's dtypes first (a size of -1 ran as 4 GiB, 2**32 + 4 as 4)."""
        addr = np.arange(3, dtype=np.uint64) * np.uint64(PAGE)
        with pytest.raises(emu.errors.TraceError, match=match):
            self.sim(addr, kind, size)

    def test_a_list_of_python_integers_past_int64_is_addresses(self):
        r = self.sim([2**64 - PAGE, 0, 2**64 - 1])
        assert (r["misses"], r["hits"]) == (2, 1)

    # -- configuration errors ---------------------------------------------------

    @pytest.mark.parametrize("bad", [
        dict(entries=64, ways=3),
        dict(policy="mru"),
        dict(page_size=8192),
        dict(kinds="loads"),
        dict(chunk=0),
        dict(chunk=True),
        dict(seed=-1),
    ])
    def test_config_errors(self, bad):
        with pytest.raises(ConfigError):
            self.sim(cyclic(2, 1), **bad)


class TestTLBSimCython(TLBSimBase):
    backend = "cython"


class TestTLBSimReference(TLBSimBase):
    backend = "reference"


# ==========================================================================
# Across backends


def test_unknown_backend():
    with pytest.raises(ConfigError, match="backend"):
        simulate_arrays(cyclic(2, 1), config=TLBSimConfig(backend="fortran"))


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("ways", [None, 2, 1])
def test_backends_agree(policy, ways):
    rng = np.random.default_rng(7)
    n = 3000
    addr = (rng.zipf(1.3, n) % 200).astype(np.uint64) * np.uint64(PAGE) \
        + rng.integers(0, PAGE, n).astype(np.uint64)
    kind = rng.integers(0, 4, n).astype(np.uint8)
    size = rng.integers(1, 6000, n).astype(np.uint32)
    res = [numbers(simulate_arrays(addr, kind, size, config=TLBSimConfig(
        entries=16, ways=ways, policy=policy, seed=11, backend=b, chunk=977)))
        for b in BACKENDS]
    assert res[0] == res[1]
    assert res[0]["hits"] > 0 and res[0]["misses"] > res[0]["compulsory_misses"]


@pytest.mark.parametrize("policy", POLICIES)
def test_backends_agree_while_pages_keep_coming(policy):
    """Thousands of distinct pages, new ones all along: the compiled TLB's index of
    every page seen grows several times with pages resident, and counters
    and contents still match the reference's after every chunk."""
    rng = np.random.default_rng(3)
    n = 20_000
    hot = rng.integers(0, 40, n)
    fresh = np.arange(n) // 4 + 1000                  # a new page every 4 records
    vpn = np.where(rng.random(n) < 0.5, hot, fresh).astype(np.uint64)
    addr = vpn * np.uint64(PAGE) + rng.integers(0, PAGE, n).astype(np.uint64)
    kind = np.ones(n, np.uint8)
    size = rng.integers(1, 200, n).astype(np.uint32)
    tlbs = [make_plain_tlb(16, 4, policy, PAGE, 5, b) for b in BACKENDS]
    for i in range(0, n, 4096):
        seen = []
        for t in tlbs:
            assert t.run(addr[i:i + 4096], kind[i:i + 4096], size[i:i + 4096], 0xF) == -1
            seen.append((t.counters(), t.contents()))
        assert seen[0] == seen[1]
    assert seen[0][0]["compulsory_misses"] > 4000


def test_out_of_range_kinds_are_refused_on_both_backends():
    addr = np.arange(4, dtype=np.uint64) * np.uint64(PAGE)
    kind = np.array([1, 64, 96, 1], np.uint8)
    for b in BACKENDS:
        chunk = SimpleNamespace(addr=addr, kind=kind, size=None)
        with pytest.raises(emu.errors.TraceError, match="kind 64 at record 1"):
            simulate_chunks([chunk], TLBSimConfig(kinds="inst", backend=b))


def test_backends_stop_at_kinds_above_31_in_the_kernel():
    # The kernels refuse a kind above 3 before any shift by it (C shifts stay
    # defined): both stop at record 0 and translate nothing.
    addr = np.arange(4, dtype=np.uint64) * np.uint64(PAGE)
    kind = np.array([32, 64, 96, 0], np.uint8)
    got = []
    for impl in (emu.engine.get("cython"), emu.engine.get("reference")):
        t = impl.PlainTLB(4, 4, "fifo", 12)
        got.append((t.run(addr, kind, None, 0x1), t.counters()))
    assert got[0] == got[1] and got[0][0] == 0 and got[0][1]["records"] == 0


def test_config_is_frozen_and_reports_ways():
    cfg = TLBSimConfig(entries=128, ways=None)
    assert cfg.as_dict()["ways"] == 128
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.entries = 3


def test_module_doctest():
    failures, tried = doctest.testmod(emu.run.tlb)
    assert tried > 0 and failures == 0


# --------------------------------------------------------------------------
# a trace's sizes are dropped where every access lies on one page
# --------------------------------------------------------------------------

records = pytest.importorskip("emu.workload.traces._records")


@pytest.mark.parametrize("addr,size,shift,expected", [
    ([0, 4095], [4096, 1], 12, True),           # a whole page; the last byte of one
    ([4095], [2], 12, False),                   # one byte over the boundary
    ([8], [0], 12, False),                      # size 0 is never on a page
    ([0], [0], 12, False),
    ([0], [65536], 12, False),                  # larger than a 4K page ...
    ([0], [65536], 16, True),                   # ... one 64K page exactly
    ([2**64 - 1], [1], 12, True),               # the very last byte
    ([2**64 - 1], [2], 12, False),              # wraps past 2**64
    ([4096 * 7 + 4000] * 9 + [4096 * 7 + 4090], [96] * 9 + [7], 12, False),
])
def test_one_page_each_known_answers(addr, size, shift, expected):
    for n in (1, 17, 100):                      # the odd one out at each end of a run
        a = np.array((addr * n)[:max(n, len(addr))], np.uint64)
        s = np.array((size * n)[:max(n, len(size))], np.uint32)
        assert records.one_page_each(a, s, shift) is expected
        if not expected and len(addr) == 1:
            # one bad record among many good ones, at every place
            good_a, good_s = np.zeros(40, np.uint64), np.ones(40, np.uint32)
            for i in (0, 1, 7, 8, 31, 39):
                a2, s2 = good_a.copy(), good_s.copy()
                a2[i], s2[i] = addr[0], size[0]
                assert records.one_page_each(a2, s2, shift) is False


def test_a_trace_whose_sizes_are_dropped_counts_as_with_them(tmp_path, monkeypatch):
    # chunks of 1000 records: the first half stays on its pages, the second
    # half holds accesses that straddle two; the counts must be those the
    # sizes give, and those of the reference backend
    from emu.workload.traces import write_trace_npy
    rng = np.random.default_rng(3)
    n = 6000
    addr = rng.integers(0, 300, n).astype(np.uint64) * np.uint64(PAGE) \
        + rng.integers(0, 4000, n).astype(np.uint64)
    size = rng.integers(1, 97, n).astype(np.uint32)
    straddle = addr[3000:] | np.uint64(PAGE - 8)
    addr[3000::50] = straddle[::50]
    kind = rng.integers(0, 4, n).astype(np.uint8)
    p = tmp_path / "t.npy"
    write_trace_npy(p, addr, kind, size)
    seen = []
    real = records.one_page_each
    monkeypatch.setattr(emu.run.tlb, "one_page_each",
                        lambda a, s, sh: seen.append(real(a, s, sh)) or seen[-1])
    for policy in ("fifo", "lru"):
        cfg = dict(entries=32, policy=policy, chunk=1000)
        seen.clear()
        dropped = emu.run.tlb.simulate_trace(p, TLBSimConfig(**cfg))
        assert seen == [True] * 3 + [False] * 3
        ref = emu.run.tlb.simulate_trace(p, TLBSimConfig(backend="reference", **cfg))
        kept = simulate_arrays(addr, kind, size, TLBSimConfig(**cfg))
        assert numbers(dropped)["translations"] > n
        for k in ("records", "translations", "hits", "misses", "compulsory_misses"):
            assert dropped[k] == ref[k] == kept[k], k


def test_addresses_that_are_no_byte_address_and_a_dict_config_are_refused(tmp_path):
    """Negative and fractional addresses were wrapped or truncated to uint64
    and counted; a dict config raised AttributeError (no validate)."""
    from emu.errors import TraceError
    from emu.run.tlb import simulate_trace
    for addr, says in ((np.array([-1, 2]), "addr: record 0 is -1: "),
                       (np.array([0.0, 1.5, 4096.7]), "addr: record 1 is 1.5: "),
                       (np.array([4096.0, np.nan]), "addr: record 1 is nan: "),
                       ([4096, -4096], "addr: record 1 is -4096: "),
                       (np.array(["a"]), "addr: expected byte addresses (integers >= 0), got "
                                         "an array of <U1"),
                       (np.zeros((2, 2), np.uint64), "addr: expected a 1-D array")):
        with pytest.raises(TraceError) as err:
            simulate_arrays(addr)
        assert str(err.value).startswith(says) and "\n" not in str(err.value)
    # whole numbers are addresses, in any numeric type
    assert simulate_arrays(np.array([4096.0, 8192.0]))["misses"] == 2
    assert simulate_arrays(np.array([2 ** 64 - 1], np.uint64))["misses"] == 1
    says = "config: expected a TLBSimConfig (e.g. TLBSimConfig(entries=32)), got dict"
    for call in (lambda: simulate_arrays(np.arange(4), config={"entries": 32}),
                 lambda: simulate_trace(tmp_path / "absent.npy", {"entries": 32}),
                 lambda: simulate_chunks([], {"entries": 32})):
        with pytest.raises(ConfigError) as err:
            call()
        assert str(err.value).startswith(says)

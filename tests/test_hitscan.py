"""The vector hit scan of ``emu tlb`` (emu/_hitscan.h) against the record-by-record one.

On a CPU with AVX2 the compiled PlainTLB consumes hits sixteen records at a
time; ``set_vector_scan(False)`` turns that off.  Where misses come every few
dozen records it switches to the record-by-record scan and back
(``set_scalar_below``).  Every way must take exactly the same records, store
the same LRU times and stop at the same record as the reference twin, whatever
lane of a group the record that ends a run of hits falls in.  The traces here are long runs of hits on a resident set (where the
vector scan works) broken by every kind of record that ends one: a miss, an
access straddling a page, a kind above 3, a size of 0, an access wrapping past
2**64, and pages that collide in the resident filter.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import emu._fastpath as fastpath
import emu.engine
from emu.hw.tlb import POLICIES

GROUP = 16                                  # EMU_HITSCAN_GROUP
VECTOR = fastpath.vector_scan_available()
SCALAR_BELOW = 48.0                         # the compiled default
# the scans: vector only, switching by the records between misses, record by record
PATHS = ["vector", "switching", "scalar"] if VECTOR else ["scalar"]


def use(path):
    fastpath.set_vector_scan(path != "scalar")
    fastpath.set_scalar_below(0 if path == "vector" else SCALAR_BELOW)


@pytest.fixture
def scan_path():
    """Yields ``use``, which selects a scan; the settings are restored after."""
    was, below = fastpath.set_vector_scan(True), fastpath.set_scalar_below(SCALAR_BELOW)
    assert below == SCALAR_BELOW
    yield use
    fastpath.set_vector_scan(was)
    fastpath.set_scalar_below(below)


def runs_of_hits(rng, n, hot_pages, shift, breaks=0.01, spread=1):
    """Records on ``hot_pages`` pages (offsets within the page, sizes that stay
    on it), with a fraction ``breaks`` replaced by accesses that straddle a
    page or touch a page outside the hot set."""
    page = 1 << shift
    vpn = rng.integers(0, hot_pages, n).astype(np.uint64) * np.uint64(spread) + np.uint64(7)
    off = rng.integers(0, page // 2, n).astype(np.uint64)
    size = rng.integers(1, page // 2, n).astype(np.uint32)
    brk = rng.random(n) < breaks
    straddle = brk & (rng.random(n) < 0.5)
    off[straddle] = np.uint64(page - 2)               # 2 bytes left on the page
    size[straddle] = 5
    outside = brk & ~straddle
    vpn[outside] = rng.integers(10_000, 10_050, outside.sum()).astype(np.uint64)
    addr = (vpn << np.uint64(shift)) | off
    kind = rng.integers(0, 4, n).astype(np.uint8)
    return addr, kind, size


def run_all(addr, kind, size, entries, ways, policy, shift, mask, scan_path, chunk=None):
    """(bad index, counters, contents) of the compiled TLB on each scan path
    and of the reference twin, running the trace in chunks."""
    chunk = chunk or len(addr)
    out = []
    for backend, path in [("cython", p) for p in PATHS] + [("reference", "scalar")]:
        scan_path(path)
        impl = emu.engine.get(backend)
        t = impl.PlainTLB(entries, ways, policy, shift, -1, 3)
        bad = -1
        for i in range(0, len(addr), chunk):
            bad = t.run(addr[i:i + chunk], kind[i:i + chunk],
                        None if size is None else size[i:i + chunk], mask)
            if bad >= 0:
                bad += i
                break
        out.append((bad, t.counters(), t.contents()))
    return out


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("sized", [True, False])
@pytest.mark.parametrize("shift", [10, 12, 21, 40])
def test_paths_agree_on_runs_of_hits(policy, sized, shift, scan_path):
    rng = np.random.default_rng(shift + 7 * sized)
    addr, kind, size = runs_of_hits(rng, 6000, 12, shift)
    got = run_all(addr, kind, size if sized else None, 16, 16, policy, shift, 0xF,
                  scan_path, chunk=1777)
    assert got[0] == got[-1] and all(g == got[0] for g in got)
    bad, c, _ = got[0]
    assert bad == -1 and c["records"] == 6000
    assert c["hits"] > 5000 and c["misses"] > 20       # runs of hits, broken


@pytest.mark.parametrize("mask", [0x1, 0x6, 0xE])
def test_paths_agree_with_a_kinds_filter(mask, scan_path):
    rng = np.random.default_rng(mask)
    addr, kind, size = runs_of_hits(rng, 4000, 10, 12)
    got = run_all(addr, kind, size, 16, 16, "lru", 12, mask, scan_path)
    assert all(g == got[0] for g in got)
    assert got[0][1]["records"] < 4000                  # some kinds were left out


@pytest.mark.parametrize("lane", range(GROUP + 1))
@pytest.mark.parametrize("what", ["kind 4", "size 0", "wraps", "straddles", "misses"])
@pytest.mark.parametrize("policy", ["fifo", "lru"])
def test_the_record_that_ends_a_run_in_every_lane(lane, what, policy, scan_path):
    """Two groups of hits on one page, then a record that is not a one-page hit
    in lane ``lane`` of the third group: every path stops at it, or (for a miss
    or a straddle, which are translated) goes on to the same counters."""
    n = 3 * GROUP + 5
    addr = np.full(n, 0x5000, np.uint64) + np.arange(n, dtype=np.uint64)
    kind = np.ones(n, np.uint8)
    size = np.full(n, 4, np.uint32)
    r = 2 * GROUP + lane
    if what == "kind 4":
        kind[r] = 4
    elif what == "size 0":
        size[r] = 0
    elif what == "wraps":
        addr[r] = np.uint64(2**64 - 2)
    elif what == "straddles":
        addr[r] = np.uint64(0x5FFE)
    else:
        addr[r] = np.uint64(0x9000)
    got = run_all(addr, kind, size, 4, 4, policy, 12, 0xF, scan_path)
    assert all(g == got[0] for g in got)
    bad, c, _ = got[0]
    if what in ("kind 4", "size 0"):
        assert bad == r and c["records"] == r
    else:
        assert bad == -1 and c["records"] == n
        # a straddle translates two pages; an access wrapping past 2**64
        # stops at the last page (one translation)
        assert c["translations"] == n + (what == "straddles")
        assert c["misses"] == 2


@pytest.mark.parametrize("ways", [4, 8, 12, 16, 24, 64, 65, 128])
def test_lru_victims_whatever_the_ways(ways, scan_path):
    """A hot set one page larger than the TLB, touched in a shuffled order:
    every miss chooses a victim by last use, over sets of 8 (the vector
    minimum) or not, 16 to 64 (the queue of the ways used longest ago) or
    not, up to 64 ways and past it."""
    rng = np.random.default_rng(ways)
    pages = ways + 1
    vpn = np.concatenate([rng.permutation(pages) for _ in range(40)]).astype(np.uint64)
    vpn = np.repeat(vpn, rng.integers(1, 40, len(vpn)))           # runs of hits
    addr = (vpn << np.uint64(12)) + np.uint64(8)
    kind = np.zeros(len(addr), np.uint8)
    got = run_all(addr, kind, None, ways, ways, "lru", 12, 0xF, scan_path)
    assert all(g == got[0] for g in got)
    assert got[0][1]["misses"] >= 40       # each round touches more pages than fit


def test_pages_that_share_a_filter_place(scan_path):
    """Resident pages whose numbers differ by a multiple of the filter's size
    take turns in one filter place; under LRU a page's last use moves to its
    slot's own place when it leaves the filter, and victims stay exact."""
    rng = np.random.default_rng(5)
    base = rng.integers(0, 6, 8000).astype(np.uint64)
    vpn = base * np.uint64(4096) + np.uint64(3)      # six pages, one filter place
    vpn[rng.random(8000) < 0.3] += np.uint64(1)      # and a neighbour each
    addr = vpn << np.uint64(12)
    for policy in ("lru", "fifo"):
        got = run_all(addr, np.zeros(len(addr), np.uint8), None, 8, 8, policy, 12, 0xF,
                      scan_path, chunk=999)
        assert all(g == got[0] for g in got)


def test_set_vector_scan_reports_and_restores(scan_path):
    assert fastpath.set_vector_scan(False) is VECTOR
    assert fastpath.set_vector_scan(True) is False
    # on a CPU without AVX2 the vector scan cannot be turned on
    assert fastpath.set_vector_scan(True) is VECTOR


def test_set_scalar_below_reports_and_refuses(scan_path):
    assert fastpath.set_scalar_below(10) == SCALAR_BELOW
    assert fastpath.set_scalar_below(0) == 10
    for bad in (-1, float("nan")):
        with pytest.raises(ValueError, match="records must be >= 0"):
            fastpath.set_scalar_below(bad)
    assert fastpath.set_scalar_below(SCALAR_BELOW) == 0


def scans(addr, policy="fifo", entries=64, chunk=None, size=None):
    """(vector scans, scalar scans, counters) of a compiled TLB on ``addr``."""
    t = fastpath.PlainTLB(entries, entries, policy, 12)
    chunk = chunk or len(addr)
    for i in range(0, len(addr), chunk):
        assert t.run(addr[i:i + chunk], np.zeros(min(chunk, len(addr) - i), np.uint8),
                     None if size is None else size[i:i + chunk]) == -1
    return t.vector_scans, t.scalar_scans, t.counters()


@pytest.mark.skipif(not VECTOR, reason="no vector scan on this CPU")
def test_which_scan_runs_known_answers(scan_path):
    """A scan stops at every miss; the mean of the records scans took starts
    at SCALAR_BELOW and moves 1/8 of the way to each new one."""
    scan_path("switching")
    # all hits after one compulsory miss: the first scan (vector) stops at
    # record 0 having taken none; the mean falls to 42, so the scan that takes
    # the other 999, to the end, is record by record
    hot = np.full(1000, 0x7000, np.uint64)
    assert scans(hot)[:2] == (1, 1)
    # every record misses (65 pages cycled through a 64-entry FIFO): 1,300
    # scans that stop at a miss, and one after the last that finds the end;
    # only the first is a vector one
    cyc = (np.arange(1300, dtype=np.uint64) % np.uint64(65)) << np.uint64(12)
    v, s, c = scans(cyc)
    assert (v, s, c["misses"]) == (1, 1300, 1300)
    # 200 hits between misses: the mean climbs back past 48 after a few scans
    # (42 -> 61.6 after the scan that takes 199), and the rest are vector scans
    pages = np.repeat(np.arange(100, dtype=np.uint64) << np.uint64(12), 200)
    v, s, c = scans(pages)
    assert c["misses"] == 100 and s == 1 and v == 100
    # with the switch off, every scan is a vector one
    scan_path("vector")
    assert scans(cyc)[:2] == (1301, 0)
    scan_path("scalar")
    assert scans(cyc)[:2] == (0, 1301)


@pytest.mark.skipif(not VECTOR, reason="no vector scan on this CPU")
@pytest.mark.parametrize("policy", ["fifo", "lru"])
@pytest.mark.parametrize("chunk", [None, 777])
def test_switching_between_scans_changes_no_result(policy, chunk, scan_path):
    """Phases of a miss every few records and of long runs of hits, in turn:
    the switching scan goes both ways many times (within chunks and across
    them) and every counter and the contents equal the reference's."""
    rng = np.random.default_rng(11)
    parts = []
    for phase in range(40):
        if phase % 2:
            parts.append(rng.integers(0, 400, 300).astype(np.uint64))     # mostly misses
        else:
            parts.append(np.repeat(rng.integers(0, 30, 12).astype(np.uint64),
                                   rng.integers(20, 300, 12)))             # runs of hits
    vpn = np.concatenate(parts)
    addr = (vpn << np.uint64(12)) + rng.integers(0, 4000, len(vpn)).astype(np.uint64)
    size = rng.integers(1, 200, len(addr)).astype(np.uint32)         # some straddle
    kind = rng.integers(0, 4, len(addr)).astype(np.uint8)
    got = run_all(addr, kind, size, 32, 32, policy, 12, 0xF, scan_path, chunk=chunk)
    assert all(g == got[0] for g in got)
    scan_path("switching")
    v, s, c = scans(addr, policy, 32, chunk, size)
    assert v > 100 and s > 1000                   # both scans, many times each
    assert c == got[0][1]


def test_emu_tlb_results_do_not_depend_on_the_path(scan_path):
    """The shipped trace through simulate_arrays on both paths: same numbers."""
    from emu.run.tlb import TLBSimConfig, simulate_arrays
    from emu.workload.traces import default_trace_path, open_trace
    with open_trace(default_trace_path()) as t:
        ch = next(iter(t.chunks(200_000)))
    res = []
    for path in PATHS:
        scan_path(path)
        for policy in ("fifo", "lru"):
            r = simulate_arrays(ch.addr, ch.kind, ch.size,
                                config=TLBSimConfig(entries=64, policy=policy))
            res.append((policy, r["hits"], r["misses"], r["compulsory_misses"]))
    assert res[:2] == res[-2:]
    assert res[0][1] > 190_000 and res[1][2] < res[0][2]     # LRU misses less here


def lru_tlb(ways, entries=None):
    return fastpath.PlainTLB(entries or ways, ways, "lru", 12)


def touch(t, *pages):
    """Translate ``pages`` (page numbers, one record each) in order."""
    addr = np.array(pages, np.uint64) << np.uint64(12)
    assert t.run(addr, np.zeros(len(addr), np.uint8)) == -1


@pytest.mark.parametrize("path", PATHS)
def test_lru_victims_after_the_oldest_were_used_again(path, scan_path):
    """Known answers, 16 ways: pages 0..15 fill the TLB in order; page 16
    replaces 0, the least recently used.  Pages 1 and 3 are used again, so
    the next misses replace 2, then 4, then 5: the ways found longest ago at
    the first miss that have been used since are passed over."""
    scan_path(path)
    t = lru_tlb(16)
    touch(t, *range(16))
    touch(t, 16)
    assert 0 not in t.contents() and 16 in t.contents()
    touch(t, 1, 3)
    for new, gone in ((17, 2), (18, 4), (19, 5)):
        touch(t, new)
        assert gone not in t.contents(), (new, gone)
    assert sorted(t.contents()) == [1, 3] + list(range(6, 20))
    assert t.counters()["misses"] == 20


@pytest.mark.parametrize("path", PATHS)
def test_lru_victims_when_every_way_found_was_used_again(path, scan_path):
    """16 ways: after page 16 replaces 0, pages 1..8 (the eight found
    longest ago, then) are used again; the next miss must search again and
    replace 9, and the ones after it 10 and 11."""
    scan_path(path)
    t = lru_tlb(16)
    touch(t, *range(16))
    touch(t, 16)
    touch(t, *range(1, 9))
    for new, gone in ((17, 9), (18, 10), (19, 11)):
        touch(t, new)
        assert gone not in t.contents(), (new, gone)
    assert sorted(t.contents()) == list(range(1, 9)) + list(range(12, 20))


@pytest.mark.parametrize("path", PATHS)
def test_lru_victims_after_a_long_run_on_one_page(path, scan_path):
    """16 ways: pages 0..15 fill the TLB, then page 0 is used for over 2**25
    records, past the last uses that the search's 32-bit keys can hold, and
    pages 2 and 3 again.  The misses replace 1, then 4..15 in order (found
    among times that far apart), then 0, 2 and 3 (all recent again)."""
    scan_path(path)
    t = lru_tlb(16)
    touch(t, *range(16))
    run = np.zeros(1 << 20, np.uint64)                  # page 0, 2**20 records
    kind = np.zeros(len(run), np.uint8)
    for _ in range(33):
        assert t.run(run, kind) == -1
    touch(t, 2, 3)
    replaced = [1] + list(range(4, 16)) + [0, 2, 3]
    for new, gone in zip(range(16, 32), replaced):
        touch(t, new)
        assert gone not in t.contents(), (new, gone)
    assert sorted(t.contents()) == list(range(16, 32))
    assert t.counters()["misses"] == 32


def test_lru_victims_when_the_vector_scan_is_turned_off_and_on(scan_path):
    """One TLB whose run goes on with the vector scan off, then on again:
    the ways found longest ago while it was on are checked again, not
    trusted, and every counter and the contents equal the reference's."""
    rng = np.random.default_rng(3)
    vpn = np.concatenate([rng.permutation(40) for _ in range(60)]).astype(np.uint64)
    vpn = np.repeat(vpn, rng.integers(1, 6, len(vpn)))
    addr = vpn << np.uint64(12)
    kind = np.zeros(len(addr), np.uint8)
    ref = emu.engine.get("reference").PlainTLB(32, 32, "lru", 12, -1, 0)
    ref.run(addr, kind)
    t = fastpath.PlainTLB(32, 32, "lru", 12)
    thirds = np.array_split(np.arange(len(addr)), 3)
    for part, path in zip(thirds, ["switching", "scalar", "switching"]):
        scan_path(path)
        t.run(addr[part], kind[part])
    assert t.counters() == ref.counters() and t.contents() == ref.contents()
    assert t.counters()["misses"] > 500


def test_lru_queues_are_per_set(scan_path):
    """128 entries in 8 sets of 16 ways: pages of one set do not disturb the
    order of another's; against the reference on a trace over every set."""
    rng = np.random.default_rng(8)
    vpn = rng.integers(0, 200, 20_000).astype(np.uint64)
    vpn = np.repeat(vpn, rng.integers(1, 30, len(vpn)))
    addr = vpn << np.uint64(12)
    kind = np.zeros(len(addr), np.uint8)
    got = run_all(addr, kind, None, 128, 16, "lru", 12, 0xF, scan_path, chunk=4096)
    assert all(g == got[0] for g in got)
    assert got[0][1]["misses"] > 5000


@settings(derandomize=True, max_examples=150, deadline=None)
@given(geometry=st.sampled_from([(16, 16), (24, 24), (40, 40), (64, 64), (48, 16),
                                 (128, 32), (192, 64), (64, 8), (30, 10)]),
       policy=st.sampled_from(["lru", "fifo"]),
       hot=st.integers(4, 120), runs=st.integers(1, 40), seed=st.integers(0, 2**32 - 1),
       chunk=st.integers(1, 3000), below=st.sampled_from([0.0, 8.0, 48.0, 500.0]),
       vector=st.booleans())
def test_any_geometry_and_scan_setting_gives_the_references_counts(
        geometry, policy, hot, runs, seed, chunk, below, vector):
    """Random set counts and ways (the queue of oldest ways over 16 to 64,
    the search over all otherwise), traces mixing runs of hits with misses,
    any chunking, any threshold for switching scans: every counter and the
    contents equal the reference's."""
    entries, ways = geometry
    rng = np.random.default_rng(seed)
    vpn = rng.integers(0, hot, 600).astype(np.uint64)
    vpn = np.repeat(vpn, rng.integers(1, runs + 1, len(vpn)))[:6000]
    addr = (vpn << np.uint64(12)) + rng.integers(0, 4096, len(vpn)).astype(np.uint64)
    size = rng.integers(1, 64, len(addr)).astype(np.uint32)
    kind = rng.integers(0, 4, len(addr)).astype(np.uint8)
    was = fastpath.set_vector_scan(vector), fastpath.set_scalar_below(below)
    try:
        tlbs = [impl.PlainTLB(entries, ways, policy, 12, -1, 0)
                for impl in (fastpath, emu.engine.get("reference"))]
        for t in tlbs:
            for i in range(0, len(addr), chunk):
                assert t.run(addr[i:i + chunk], kind[i:i + chunk], size[i:i + chunk]) == -1
    finally:
        fastpath.set_vector_scan(was[0])
        fastpath.set_scalar_below(was[1])
    assert tlbs[0].counters() == tlbs[1].counters()
    assert tlbs[0].contents() == tlbs[1].contents()

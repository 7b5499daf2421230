"""Two exercises on one array of the model, driven alone: the pfn cache and e500 TLB0.

* ``pfn-cache``: a vCPU touches the same P pages in the same order in each of R
  time slices, and ``direct``'s ``_tlbia()`` at vcpu_put empties the hardware
  TLB in between, so each page's first touch in a slice is a fill that asks
  the pfn cache (docs/design.md §4).  How many fills does the cache answer?
  The model's answer comes from KVM's own pfn cache (:mod:`emu.kvm.pfn`),
  probed and filled as the C path does.
* ``e500-sets``: a guest process touches n pages spaced a stride apart, R
  times over, on an e500 (TLB0: 128 sets of 4 ways, the set fixed by the
  address, one next-victim counter; docs/kvm440.md §4.1).  How many TLB0
  misses, against the 440's 64-entry fully associative UTLB?  The model's
  answer comes from the hardware arrays of :mod:`emu.hw.e500` and
  :mod:`emu.hw.ppc440`.

Neither runs a scenario, so FILE and ``--set`` have nothing to apply to.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

from emu import engine
from emu.hw.e500 import TLB0_ENTRIES, TLB0_WAYS, E500MMU
from emu.hw.ppc440 import HWATER, build_utlb
from emu.kvm.pfn import cache_insert, cache_probe, new_pfn_cache
from emu.teach.lessons import Answer, draw, fill, verdict

#: The first guest frame of the pfn-cache exercise's pages (an arbitrary RAM frame).
FIRST_GFN = 0x400
#: Where the e500-sets exercise's pages start (a guest user address).
E500_BASE = 0x1000_0000
SETS = TLB0_ENTRIES // TLB0_WAYS


# -- pfn-cache --------------------------------------------------------------------------------

@dataclass(frozen=True)
class PfnCacheProblem:
    """``pages`` frames touched in order in each of ``slices`` slices, through a pfn
    cache of ``entries`` entries under ``policy``."""

    seed: int
    entries: int
    pages: int
    slices: int
    policy: str


def pfn_cache_problem(seed: int) -> PfnCacheProblem:
    """The problem of ``seed``: half the seeds fit the cache, half do not."""
    r = draw("pfn-cache", seed)
    entries = r.choice((8, 16, 32, 64))
    pages = r.randint(entries // 2, entries) if r.random() < 0.5 else \
        r.randint(entries + 1, 2 * entries)
    return PfnCacheProblem(seed, entries, pages, r.randint(3, 8), r.choice(("lru", "fifo")))


def pfn_cache_question(p: PfnCacheProblem) -> str:
    return fill(
        f"Exercise (pfn-cache, seed {p.seed}). A vCPU runs under `direct` as 7924bd41 has it, "
        f"whose vcpu_put runs _tlbia(): every time slice starts with an empty TLB; with a pfn "
        f"cache, which 7924bd41 did not have (a hypothetical machine). In each "
        f"of {p.slices} time slices the guest touches the same {p.pages} pages, in the same "
        f"order, and each page's first touch in a slice is a hardware miss that the guest "
        f"TLB answers (step 1) and whose fill asks KVM's pfn cache for the host page (step "
        f"3.3). The pfn cache has {p.entries} entries and replaces by {p.policy.upper()}; a "
        f"fill it cannot answer calls gfn_to_pfn and inserts the page, evicting one if the "
        f"cache is full. The cache starts empty.\n\n"
        f"Over the {p.slices} slices, how many fills does the pfn cache answer, how many call "
        f"gfn_to_pfn, and what is its hit rate?")


def pfn_cache_solve(p: PfnCacheProblem) -> Answer:
    fills = p.pages * p.slices
    fits = p.pages <= p.entries
    hits = fills - p.pages if fits else 0
    expected = {"hits": hits, "gfn_to_pfn": fills - hits}
    pcache = new_pfn_cache(engine.get("cython"), p.entries, p.policy, 0)
    computed = {"hits": 0, "gfn_to_pfn": 0}
    for _ in range(p.slices):
        for gfn in range(FIRST_GFN, FIRST_GFN + p.pages):
            if cache_probe(pcache, gfn) >= 0:
                computed["hits"] += 1
            else:
                computed["gfn_to_pfn"] += 1
                cache_insert(pcache, gfn, 0x10000 + gfn)
    if fits:
        why = (f"The {p.pages} pages fit in the {p.entries} entries: the first slice's "
               f"{p.pages} fills miss (the cache is empty) and insert every page, which "
               f"nothing evicts afterwards; every later fill hits. Hits = ({p.slices} - 1) x "
               f"{p.pages} = {hits}; gfn_to_pfn = {p.pages}.")
    else:
        why = (f"The {p.pages} pages do not fit in the {p.entries} entries. Under "
               f"{p.policy.upper()} the page evicted is the one inserted (and, as the order "
               f"never changes, used) longest ago, and in a cyclic order that is always the "
               f"page needed soonest: at the first miss after the cache fills, page "
               f"{p.entries} evicts page 0, which is needed {p.pages - p.entries} fills "
               f"later, by when it has been evicted again. Every fill misses: hits = 0; "
               f"gfn_to_pfn = {p.pages} x {p.slices} = {fills}.")
    rate = hits / fills
    text = fill(
        f"Answer (by hand). Fills = pages x slices = {p.pages} x {p.slices} = {fills}. {why} "
        f"Hit rate = {hits} / {fills} = {100 * rate:.1f} %.\n\n"
        f"Computed by the model (KVM's pfn cache, probed and filled as the C path does): hits "
        f"{computed['hits']}, gfn_to_pfn {computed['gfn_to_pfn']} -> "
        f"{verdict(expected, computed)}.")
    return Answer(expected, computed, text)


PFN_CACHE = SimpleNamespace(
    SUMMARY="the hit rate of KVM's pfn cache when the pages come round in a cycle",
    problem=pfn_cache_problem, question=pfn_cache_question, solve=pfn_cache_solve)


# -- e500-sets -------------------------------------------------------------------------------

@dataclass(frozen=True)
class E500SetsProblem:
    """``pages`` pages ``stride`` pages apart from EA ``base``, touched in order,
    ``rounds`` times over."""

    seed: int
    pages: int
    stride: int
    rounds: int
    base: int


def e500_sets_problem(seed: int) -> E500SetsProblem:
    """The problem of ``seed``: a stride of whole multiples of the 128 sets (every
    page in one set) or an odd one (every page in a set of its own)."""
    r = draw("e500-sets", seed)
    if r.random() < 0.6:
        stride = SETS * r.choice((1, 2, 4, 8))
    else:
        stride = r.choice((1, 3, 5, 7, 9))
    return E500SetsProblem(seed, r.randint(3, 8), stride, r.randint(3, 10),
                           E500_BASE + r.randrange(SETS) * 4096)


def _sets(p: E500SetsProblem) -> list:
    return [((p.base >> 12) + i * p.stride) % SETS for i in range(p.pages)]


def e500_sets_question(p: E500SetsProblem) -> str:
    kb = p.stride * 4
    return fill(
        f"Exercise (e500-sets, seed {p.seed}). A guest process touches {p.pages} pages, "
        f"{kb:,} KB apart ({p.stride} pages), the first at EA {p.base:#010x}, one after "
        f"the other, {p.rounds} times over; nothing else runs. On an e500, TLB0 has "
        f"{TLB0_ENTRIES} entries in {SETS} sets of {TLB0_WAYS} ways: a page can only go in "
        f"set (EA >> 12) mod {SETS}, in the way the one next-victim counter (MAS0[NV], "
        f"shared by all sets) names, which each write advances. On a PowerPC 440 the UTLB is "
        f"fully associative: any page in any of the entries 0..{HWATER} the round robin "
        f"replaces.\n\n"
        f"How many TLB misses do the {p.pages * p.rounds} accesses take in the e500's TLB0, "
        f"and in the 440's UTLB? (Both start empty.)")


def e500_sets_solve(p: E500SetsProblem) -> Answer:
    sets = _sets(p)
    accesses = p.pages * p.rounds
    one_set = len(set(sets)) == 1
    if one_set and p.pages > TLB0_WAYS:
        e500 = accesses
        why = (f"{p.stride} pages is a multiple of {SETS}: every page falls in set "
               f"{sets[0]}. Only that set is written, so the next-victim counter walks its "
               f"{TLB0_WAYS} ways in turn, first in first out; {p.pages} pages in a cycle "
               f"through {TLB0_WAYS} ways always evict the page needed soonest: every "
               f"access misses, {p.pages} x {p.rounds} = {e500}.")
    elif one_set:
        e500 = p.pages
        why = (f"{p.stride} pages is a multiple of {SETS}: every page falls in set "
               f"{sets[0]}, but {p.pages} pages fit its {TLB0_WAYS} ways: {p.pages} "
               f"compulsory misses, then hits.")
    else:
        e500 = p.pages
        why = (f"{p.stride} is odd, so the {p.pages} pages fall in {p.pages} different "
               f"sets ({', '.join(map(str, sets))}): one page per set, none evicts another "
               f"(the counter may pick any way of a set that holds nothing else): {p.pages} "
               f"compulsory misses, then hits.")
    expected = {"e500": e500, "440": p.pages}
    computed = {"e500": _e500_misses(p), "440": _utlb_misses(p)}
    text = fill(
        f"Answer (by hand). e500 TLB0: {why} 440 UTLB: {p.pages} pages fit in its "
        f"{HWATER + 1} round-robin entries whatever their addresses: {p.pages} compulsory "
        f"misses.\n\n"
        f"Hand-derived: e500 {e500}, 440 {p.pages}. Computed by the model (the e500's TLB0 "
        f"and the 440's UTLB arrays): e500 {computed['e500']}, 440 {computed['440']} -> "
        f"{verdict(expected, computed)}.")
    return Answer(expected, computed, text)


def _eas(p: E500SetsProblem):
    for _ in range(p.rounds):
        for i in range(p.pages):
            yield p.base + i * p.stride * 4096


def _e500_misses(p: E500SetsProblem) -> int:
    mmu, misses = E500MMU("cython"), 0
    for ea in _eas(p):
        if mmu.find(ea, 1, 1) is None:
            misses += 1
            mmu.tlb0_write(ea, 1, 1, 0x1000_0000 + (ea & 0x0FFF_F000))
    return misses


def _utlb_misses(p: E500SetsProblem) -> int:
    tlb, misses = build_utlb(engine.get("cython"), HWATER), 0
    for ea in _eas(p):
        if tlb.find(ea, 1, 1) < 0:
            misses += 1
            tlb.write(tlb.choose_victim(ea), ea, 12, 1, 1, 0x1000_0000 + (ea & 0x0FFF_F000))
    return misses


E500_SETS = SimpleNamespace(
    SUMMARY="the misses of pages that share a set of the e500's 4-way TLB0, against the 440",
    problem=e500_sets_problem, question=e500_sets_question, solve=e500_sets_solve)

# emu's fast path: the per-access TLB loops, in C.
#
# Semantics are defined by emu/engine/reference/, which implements the same
# structures in plain Python; tests run both over the same cases and demand
# identical counters and identical TLB contents.  Nothing in the per-access
# loops touches a Python object.
#
# Compiler directives (boundscheck, wraparound, cdivision) are set once, in
# setup.py; EMU_DEBUG_BUILD=1 builds this file with every check on.

from libc.stdint cimport int32_t, int64_t, uint8_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free
from libc.string cimport memset

cimport cython

import numpy as np

cdef uint64_t EMPTY = 0xFFFFFFFFFFFFFFFFULL
cdef uint64_t GOLDEN = 0x9E3779B97F4A7C15ULL
NO_PID = 0xFFFF     # a PID no 8-bit TID can equal

POLICIES = compiled_codes()["POLICIES"]


def enum_values():
    """The C enums as compiled (emu/_codes.pxi): {tuple of emu.codes: {name: value}}."""
    return compiled_codes()


# --------------------------------------------------------------------------
# Seeded pseudo-random numbers (the same generator as emu.engine.reference.tlb)

cdef inline uint64_t splitmix64(uint64_t x) noexcept nogil:
    x += GOLDEN
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL
    return x ^ (x >> 31)


cdef inline uint64_t rng_next(uint64_t *state) noexcept nogil:
    """xorshift64*: state must be non-zero."""
    cdef uint64_t x = state[0]
    x ^= x >> 12
    x ^= x << 25
    x ^= x >> 27
    state[0] = x
    return x * 0x2545F4914F6CDD1DULL


def rng_seed_state(uint64_t seed):
    """The non-zero xorshift state for a seed (shared with the reference)."""
    cdef uint64_t s = splitmix64(seed)
    return s if s != 0 else GOLDEN


# --------------------------------------------------------------------------
# PageIndex: every page a PlainTLB translated, with its slot; grows at half load.

cdef int pages_init(PageIndex *pi, uint64_t capacity) except -1:
    cdef uint64_t n = 1024
    while n < 2 * capacity:
        n <<= 1
    pi.keys = <uint64_t *> calloc(n, sizeof(uint64_t))
    pi.slots = <int32_t *> calloc(n, sizeof(int32_t))
    if pi.keys == NULL or pi.slots == NULL:
        raise MemoryError()
    pi.mask = n - 1
    pi.used = 0
    return 0


cdef inline uint64_t mix(uint64_t k) noexcept nogil:
    k *= GOLDEN
    return k ^ (k >> 29)


cdef inline uint64_t pages_lookup(PageIndex *pi, uint64_t vpn) noexcept nogil:
    """Where ``vpn`` is in the table, or the empty entry where it would go."""
    cdef uint64_t k = vpn + 1
    cdef uint64_t h = mix(k) & pi.mask
    while pi.keys[h] != 0 and pi.keys[h] != k:
        h = (h + 1) & pi.mask
    return h


# --------------------------------------------------------------------------
# PlainTLB: the TLB of ``emu tlb``.

cdef extern from "_hitscan.h" nogil:
    enum: EMU_HITSCAN_GROUP
    int emu_cpu_has_avx2()
    ctypedef int64_t (*HitScan)(const uint64_t *addr, const uint8_t *kind,
                                const uint32_t *size, int64_t r, int64_t n, int shift,
                                const uint64_t *fvpn, uint64_t fmask, uint64_t *fstamp,
                                uint64_t *clock)
    HitScan emu_hitscan, emu_hitscan_sized, emu_hitscan_lru, emu_hitscan_lru_sized
    int emu_argmin_at(const uint64_t *t, const int32_t *at, int n, int vector)
    void emu_least_at_avx2(const uint64_t *t, const int32_t *at, int n, int k, uint64_t *out)
    int emu_least_near_avx2(const uint64_t *t, const int32_t *at, int n, int k, uint64_t now,
                            uint64_t *out)

# Whether the scans of all kinds take whole steps of EMU_HITSCAN_GROUP records
# with AVX2 (emu/_hitscan.h) before the record-by-record loop, and LRU takes its
# victim's minimum four lanes at a time: the CPU's answer, which
# set_vector_scan can turn off (so that tests compare the two paths).
cdef bint VECTOR_SCAN = emu_cpu_has_avx2() != 0


def vector_scan_available():
    """Whether this CPU and build can run the vector hit scan (AVX2)."""
    return emu_cpu_has_avx2() != 0


def set_vector_scan(bint on):
    """Use the vector hit scan where available (True) or never; returns the
    previous setting.  Results are the same either way."""
    global VECTOR_SCAN
    cdef bint was = VECTOR_SCAN
    VECTOR_SCAN = on and emu_cpu_has_avx2() != 0
    return was


cdef struct Scan:
    const uint64_t *addr
    const uint8_t *kind
    const uint32_t *size         # NULL: every access is 1 byte
    Py_ssize_t n
    unsigned int kinds_mask
    int shift
    const uint64_t *fvpn
    uint64_t fmask
    uint64_t *fstamp             # LRU: where a hit stores its time; NULL otherwise
    uint64_t skipped             # records whose kind is not selected
    bint vector                  # the vector scan first (emu/_hitscan.h)


cdef inline bint on_its_page(uint64_t a, uint64_t s, uint64_t pmask) noexcept nogil:
    """Whether an access of ``s`` bytes at ``a`` stays on its page (of
    ``pmask + 1`` bytes): ``s - 1 > pmask - offset`` exactly when it runs past
    the page or has size 0 (``s - 1`` wraps)."""
    return s - 1 <= pmask - (a & pmask)


cdef inline Py_ssize_t scan_hits(Scan *sc, Py_ssize_t r, uint64_t *clock_, bint lru,
                                 bint sized, bint all_kinds) noexcept nogil:
    """Consume records from ``r`` while each is a one-page hit in the resident
    filter (or of a kind not selected); return the first that is not, or n.

    NOTE: the hot loop of ``emu tlb``.  With every kind selected and the
    vector scan on, emu/_hitscan.h takes all but a short tail.  The loop
    below calls nothing, so every value it needs stays in a register; the
    rare record (a miss, a filter collision, a page straddle, an invalid kind
    or size) ends it and is handled by the caller (``on_its_page`` is inlined).
    The flags are constants in each of the SCANS variants below, so
    each compiles to its own loop.
    """
    cdef const uint64_t *addr = sc.addr
    cdef const uint8_t *kind = sc.kind
    cdef const uint32_t *size = sc.size
    cdef const uint64_t *fvpn = sc.fvpn
    cdef uint64_t *fstamp = sc.fstamp
    cdef Py_ssize_t n = sc.n
    cdef unsigned int mask = sc.kinds_mask, k
    cdef int sh = sc.shift
    cdef uint64_t fm = sc.fmask, pmask = ((<uint64_t> 1) << sh) - 1
    cdef uint64_t clock = clock_[0], skipped = 0, a, v, i, s
    cdef uint64_t vclock = clock         # NOTE: not clock's address, which would keep
    if all_kinds and sc.vector:          # clock in memory through the loop below
        # whole groups of EMU_HITSCAN_GROUP records; it stops at the first
        # record that is not a one-page hit, or leaves a shorter tail to the loop below
        if lru and sized:
            r = emu_hitscan_lru_sized(addr, kind, size, r, n, sh, fvpn, fm, fstamp, &vclock)
        elif lru:
            r = emu_hitscan_lru(addr, kind, size, r, n, sh, fvpn, fm, fstamp, &vclock)
        elif sized:
            r = emu_hitscan_sized(addr, kind, size, r, n, sh, fvpn, fm, fstamp, &vclock)
        else:
            r = emu_hitscan(addr, kind, size, r, n, sh, fvpn, fm, fstamp, &vclock)
        clock = vclock
        if r + EMU_HITSCAN_GROUP <= n:
            clock_[0] = clock
            return r
    while r < n:
        k = kind[r]
        if k > 3:
            break
        if not all_kinds and not (mask >> k) & 1:
            if sized and size[r] == 0:
                break                           # invalid even when not selected
            skipped += 1
            r += 1
            continue
        a = addr[r]
        v = a >> sh
        if sized:
            s = size[r]
            if not on_its_page(a, s, pmask):
                break
        i = v & fm
        if fvpn[i] != v:
            break
        if lru:
            clock += 1
            fstamp[i] = clock
        r += 1
    clock_[0] = clock
    sc.skipped += skipped
    return r


ctypedef Py_ssize_t (*ScanFn)(Scan *, Py_ssize_t, uint64_t *) noexcept nogil

# One variant per (lru, sized, all kinds), called through SCANS[lru*4 + sized*2 + all].
# NOTE: through a table, so that no variant is inlined into PlainTLB.run: inlined
# there, its loop shared registers with the slow path, spilled to the stack and
# ran at less than half the speed.
cdef Py_ssize_t scan_0(Scan *sc, Py_ssize_t r, uint64_t *c) noexcept nogil:
    return scan_hits(sc, r, c, False, False, False)
cdef Py_ssize_t scan_1(Scan *sc, Py_ssize_t r, uint64_t *c) noexcept nogil:
    return scan_hits(sc, r, c, False, False, True)
cdef Py_ssize_t scan_2(Scan *sc, Py_ssize_t r, uint64_t *c) noexcept nogil:
    return scan_hits(sc, r, c, False, True, False)
cdef Py_ssize_t scan_3(Scan *sc, Py_ssize_t r, uint64_t *c) noexcept nogil:
    return scan_hits(sc, r, c, False, True, True)
cdef Py_ssize_t scan_4(Scan *sc, Py_ssize_t r, uint64_t *c) noexcept nogil:
    return scan_hits(sc, r, c, True, False, False)
cdef Py_ssize_t scan_5(Scan *sc, Py_ssize_t r, uint64_t *c) noexcept nogil:
    return scan_hits(sc, r, c, True, False, True)
cdef Py_ssize_t scan_6(Scan *sc, Py_ssize_t r, uint64_t *c) noexcept nogil:
    return scan_hits(sc, r, c, True, True, False)
cdef Py_ssize_t scan_7(Scan *sc, Py_ssize_t r, uint64_t *c) noexcept nogil:
    return scan_hits(sc, r, c, True, True, True)

cdef ScanFn SCANS[8]
SCANS[:] = [scan_0, scan_1, scan_2, scan_3, scan_4, scan_5, scan_6, scan_7]

# NOTE: where misses come every few dozen records, a vector step that a miss
# ends costs more than the records it saves.  A miss costs the vector scan
# about 7 ns more than the record-by-record loop (on the benchmark's synthetic
# trace) and a hit about 0.14 ns less (the hit loops on the shipped trace):
# they break even near 50 records between misses.  PlainTLB.run keeps the
# mean of the records its last scans took (a moving average, weight 1/8) and
# scans record by record while it is below SCALAR_BELOW.  Thresholds from 32
# to 128 measured within a few per cent of each other on that trace and on
# the shipped one.  Both scans take the same records and store the same
# times: only the speed depends on the choice.
cdef double SCALAR_BELOW = 48.0

# The permission bits of a 440 TLB entry's word 2 (PPC440x5 UM p.435;
# emu.hw.ppc440 UX..SR): user and supervisor execute, write, read.
cdef enum:
    TLB_SR = 0x01
    TLB_SW = 0x02
    TLB_SX = 0x04
    TLB_UR = 0x08
    TLB_UW = 0x10
    TLB_UX = 0x20
    TLB_SUPER_PERMS = 0x07
    TLB_USER_PERMS = 0x38
    TLB_PERMS = 0x3F


def tlb_perm_bits():
    """(UX, UW, UR, SX, SW, SR) as the fast path knows them (a test compares
    them with emu.hw.ppc440's)."""
    return (TLB_UX, TLB_UW, TLB_UR, TLB_SX, TLB_SW, TLB_SR)


# LRU's victims over 16 to 64 ways: how many of the ways used longest ago one
# search finds (PlainTLB.lru_victim), and the clock below which a time fits in
# the search's keys (time << 6 | way, a positive 64-bit integer)
cdef enum:
    LRU_QUEUE = 8
cdef uint64_t LRU_QUEUE_CLOCK = (<uint64_t> 1) << 57


def set_scalar_below(double records):
    """Scan record by record while the mean records a scan took (over the
    last ones) is below ``records``; 0: never.  Returns the previous value.
    Results are the same whatever it is."""
    global SCALAR_BELOW
    cdef double was = SCALAR_BELOW
    if not records >= 0:
        raise ValueError(f"records must be >= 0, got {records}")
    SCALAR_BELOW = records
    return was


@cython.final
cdef class PlainTLB:
    """A TLB of ``sets`` x ``ways`` slots caching translations of one page size.

    No TID, no address space: every entry matches any context.  The set of a
    page is ``vpn % sets``.  Replacement follows ``policy``:

    * ``fifo``: a per-set pointer cycling over the ways;
    * ``round-robin``: the Linux 44x pointer, cycling over ways 0..hwater
      (slots above hwater are pinned and never filled); with hwater = ways - 1
      it is FIFO;
    * ``lru``: an invalid way if any, else the least recently used;
    * ``random``: an invalid way if any, else a seeded xorshift64* draw;
    * ``nv``: one hardware next-victim counter shared by all sets (e500).

    A translation that finds its page counts a hit; otherwise a miss, which
    is compulsory when the page was never translated before.

    ``vector_scans`` and ``scalar_scans`` count the scans for hits that ran
    sixteen records a step and record by record (see SCALAR_BELOW); they
    tell how a run went, never what it computed.
    """

    def __cinit__(self, int entries, int ways, str policy="fifo", int page_shift=12,
                  int hwater=-1, uint64_t seed=0):
        cdef uint64_t f = 4096
        self.where = NULL
        self.fvpn = NULL
        self.fslot = NULL
        self.fstamp = NULL
        self.tloc = NULL
        self.lq = NULL
        self.lq_next = NULL
        self.lq_len = NULL
        self.pages.keys = NULL
        self.pages.slots = NULL
        self.out_of_memory = False
        if entries <= 0 or ways <= 0 or entries % ways:
            raise ValueError(f"{entries} entries cannot be split into {ways}-way sets")
        if policy not in POLICIES or policy == "none":
            raise ValueError(f"unknown policy {policy!r}")
        if not 10 <= page_shift < 64:
            raise ValueError(f"page shift {page_shift} outside 10..63")
        self.entries = entries
        self.ways = ways
        self.sets = entries // ways
        self.set_mask = self.sets - 1 if self.sets & (self.sets - 1) == 0 else -1
        self.policy = POLICIES[policy]
        self.page_shift = page_shift
        self.hwater = ways - 1 if hwater < 0 else min(hwater, ways - 1)
        self.tag_arr = np.full(entries, EMPTY, dtype=np.uint64)
        self.valid_arr = np.zeros(entries, dtype=np.uint8)
        self.ptr_arr = np.zeros(self.sets, dtype=np.int32)
        self.tag = self.tag_arr
        self.valid = self.valid_arr
        self.ptr = self.ptr_arr
        self.nfill = np.zeros(self.sets, dtype=np.int32)
        self.clock = 0
        self.rng = rng_seed_state(seed)
        self.where = <uint64_t *> calloc(entries, sizeof(uint64_t))
        while f < <uint64_t> (16 * entries):
            f <<= 1
        self.fmask = f - 1
        self.fvpn = <uint64_t *> calloc(f, sizeof(uint64_t))
        self.fslot = <int32_t *> calloc(f, sizeof(int32_t))
        self.fstamp = <uint64_t *> calloc(f + entries, sizeof(uint64_t))
        self.tloc = <int32_t *> calloc(entries, sizeof(int32_t))
        if self.policy == POLICY_LRU and 16 <= ways <= 64 and ways % 8 == 0:
            self.lq = <uint64_t *> calloc(self.sets * LRU_QUEUE, sizeof(uint64_t))
            self.lq_next = <int32_t *> calloc(self.sets, sizeof(int32_t))
            self.lq_len = <int32_t *> calloc(self.sets, sizeof(int32_t))
            if self.lq == NULL or self.lq_next == NULL or self.lq_len == NULL:
                raise MemoryError()
        if (self.where == NULL or self.fvpn == NULL or self.fslot == NULL
                or self.fstamp == NULL or self.tloc == NULL):
            raise MemoryError()
        memset(self.fvpn, 0xFF, f * sizeof(uint64_t))      # EMPTY: no page >> 10 is
        pages_init(&self.pages, 4 * entries)
        self.records = self.translations = self.hits = self.misses = self.compulsory = 0
        self.vector_scans = self.scalar_scans = 0
        self.scan_gap = SCALAR_BELOW

    def __dealloc__(self):
        free(self.where)
        free(self.fvpn)
        free(self.fslot)
        free(self.fstamp)
        free(self.tloc)
        free(self.lq)
        free(self.lq_next)
        free(self.lq_len)
        free(self.pages.keys)
        free(self.pages.slots)

    cdef inline int set_of(self, uint64_t vpn) noexcept nogil:
        # NOTE: a mask instead of a 64-bit division when the set count allows
        if self.set_mask >= 0:
            return <int> (vpn & <uint64_t> self.set_mask)
        return <int> (vpn % <uint64_t> self.sets)

    cdef int grow_pages(self) noexcept nogil:
        """Double the page index (at half load), and re-point ``where`` at
        the new places of the resident pages; -1 if out of memory (the old
        table is kept)."""
        cdef uint64_t n = (self.pages.mask + 1) * 2, oldn = self.pages.mask + 1, i, h
        cdef uint64_t *keys = <uint64_t *> calloc(n, sizeof(uint64_t))
        cdef int32_t *slots = <int32_t *> calloc(n, sizeof(int32_t))
        cdef int s
        if keys == NULL or slots == NULL:
            free(keys)
            free(slots)
            return -1
        for i in range(oldn):
            if self.pages.keys[i] != 0:
                h = mix(self.pages.keys[i]) & (n - 1)
                while keys[h] != 0:
                    h = (h + 1) & (n - 1)
                keys[h] = self.pages.keys[i]
                slots[h] = self.pages.slots[i]
        free(self.pages.keys)
        free(self.pages.slots)
        self.pages.keys = keys
        self.pages.slots = slots
        self.pages.mask = n - 1
        for s in range(self.entries):
            if self.valid[s]:
                self.where[s] = pages_lookup(&self.pages, self.tag[s])
        return 0

    cdef int choose_victim(self, int set_) noexcept nogil:
        cdef int w
        if self.policy == POLICY_FIFO:
            w = self.ptr[set_]
            self.ptr[set_] = w + 1 if w + 1 < self.ways else 0
            return w
        if self.policy == POLICY_ROUND_ROBIN:
            w = self.ptr[set_]
            self.ptr[set_] = 0 if w >= self.hwater else w + 1
            return w
        if self.policy == POLICY_NV:
            w = self.ptr[0]
            self.ptr[0] = w + 1 if w + 1 < self.ways else 0
            return w
        # LRU and random fill the lowest invalid way first.
        if self.nfill[set_] < self.ways:
            w = self.nfill[set_]
            self.nfill[set_] += 1
            return w
        if self.policy == POLICY_RANDOM:
            return <int> (rng_next(&self.rng) % <uint64_t> self.ways)
        return self.lru_victim(set_)

    cdef int lru_victim(self, int set_) noexcept nogil:
        """The way of ``set_`` used longest ago: the least time (times are unique).

        Over 16 to 64 ways with AVX2, the LRU_QUEUE ways used longest ago are
        found at once and kept in order (with keys of 32 bits while every
        way's time is recent, else of 64); a later miss takes the first of them
        whose time is still the one found.  That way is the least: a time
        only grows (a use or a new page stores the clock, past every time
        found), the ways before it in the queue have been used or replaced
        since, and every way outside the queue had a greater time already.
        When none is left, they are found again.
        """
        cdef int32_t *at = &self.tloc[set_ * self.ways]
        cdef uint64_t *q
        cdef uint64_t key
        if self.lq == NULL or not VECTOR_SCAN or self.clock >= LRU_QUEUE_CLOCK:
            return emu_argmin_at(self.fstamp, at, self.ways, VECTOR_SCAN)
        q = &self.lq[set_ * LRU_QUEUE]
        while self.lq_next[set_] < self.lq_len[set_]:
            key = q[self.lq_next[set_]]
            self.lq_next[set_] += 1
            if self.fstamp[at[key & 63]] == key >> 6:
                return <int> (key & 63)
        if not emu_least_near_avx2(self.fstamp, at, self.ways, LRU_QUEUE, self.clock, q):
            emu_least_at_avx2(self.fstamp, at, self.ways, LRU_QUEUE, q)
        self.lq_len[set_] = LRU_QUEUE
        self.lq_next[set_] = 1
        return <int> (q[0] & 63)

    cdef void translate(self, uint64_t vpn) noexcept nogil:
        """Translate a page the resident filter does not hold, and file it there.

        Counts a miss (hits are counted by the caller: translations - misses).
        """
        cdef int slot, set_, held
        cdef uint64_t old, h, home, i = vpn & self.fmask
        if self.fvpn[i] != EMPTY:
            # the page filed at i leaves the filter: its last use goes to its
            # slot's own place, past the filter's
            held = self.fslot[i]
            home = self.fmask + 1 + <uint64_t> held
            self.fstamp[home] = self.fstamp[i]
            self.tloc[held] = <int32_t> home
        h = pages_lookup(&self.pages, vpn)
        slot = self.pages.slots[h] if self.pages.keys[h] != 0 else -1
        if slot < 0:
            self.misses += 1
            if self.pages.keys[h] == 0:             # never translated before
                self.compulsory += 1
                self.pages.keys[h] = vpn + 1
                self.pages.slots[h] = -1
                self.pages.used += 1
                if 2 * self.pages.used > self.pages.mask:
                    if self.grow_pages() < 0:
                        self.out_of_memory = True   # run() raises MemoryError
                    h = pages_lookup(&self.pages, vpn)
            set_ = self.set_of(vpn)
            slot = set_ * self.ways + self.choose_victim(set_)
            if self.valid[slot]:
                old = self.tag[slot]
                self.pages.slots[self.where[slot]] = -1
                if self.fvpn[old & self.fmask] == old:
                    self.fvpn[old & self.fmask] = EMPTY
            self.tag[slot] = vpn
            self.valid[slot] = 1
            self.where[slot] = h
            self.pages.slots[h] = slot
        self.clock += 1
        self.fvpn[i] = vpn
        self.fslot[i] = slot
        self.fstamp[i] = self.clock
        self.tloc[slot] = <int32_t> i

    cdef inline void page(self, uint64_t vpn) noexcept nogil:
        """Translate one page: the resident filter first, then the page index."""
        cdef uint64_t i = vpn & self.fmask
        if self.fvpn[i] != vpn:
            self.translate(vpn)
        elif self.policy == POLICY_LRU:
            self.clock += 1
            self.fstamp[i] = self.clock

    cdef int straddle(self, uint64_t a, uint64_t size) noexcept nogil:
        """Translate every page ``[a, a + size)`` touches, in order.

        Returns how many pages that was, or 0 for size 0 (an invalid record).
        """
        cdef uint64_t end = a + size - 1, v = a >> self.page_shift, last
        if size == 0:
            return 0
        if end < a:                             # wraps past 2**64
            end = EMPTY
        last = end >> self.page_shift
        while True:
            self.page(v)
            if v == last:
                return <int> (last - (a >> self.page_shift) + 1)
            v += 1

    def run(self, const uint64_t[::1] addr, const uint8_t[::1] kind,
            const uint32_t[::1] size=None, unsigned int kinds_mask=0xF):
        """Translate a chunk of trace records; counters accumulate.

        Each record whose kind bit is set in ``kinds_mask`` translates every
        page that ``[addr, addr + size)`` touches, in order (size 1 when
        ``size`` is None).  Returns -1 when every record was valid, else the
        index of the first record whose kind is not 0..3 or whose size is 0:
        the records before it have been applied, it and the rest have not.
        """
        cdef Py_ssize_t n = addr.shape[0], r = 0, r0, bad = -1
        cdef bint has_size = size is not None
        cdef double gap = self.scan_gap
        cdef uint64_t scans = 0, vector_scans = 0
        cdef bint vector_ok
        cdef uint64_t extra = 0, skipped = 0, misses = self.misses, clock = self.clock, a
        cdef uint64_t pmask = ((<uint64_t> 1) << self.page_shift) - 1
        cdef Scan sc
        cdef ScanFn scan
        cdef int m
        if kind.shape[0] != n or (has_size and size.shape[0] != n):
            raise ValueError("addr, kind and size must have equal lengths")
        if n == 0:
            return -1
        sc.addr = &addr[0]
        sc.kind = &kind[0]
        sc.size = &size[0] if has_size else NULL
        sc.n = n
        sc.kinds_mask = kinds_mask & 0xF
        sc.shift = self.page_shift
        sc.fvpn = self.fvpn
        sc.fmask = self.fmask
        sc.fstamp = self.fstamp if self.policy == POLICY_LRU else NULL
        sc.skipped = 0
        scan = SCANS[4 * (self.policy == POLICY_LRU) + 2 * has_size + (sc.kinds_mask == 0xF)]
        vector_ok = VECTOR_SCAN and sc.kinds_mask == 0xF
        with nogil:
            while True:
                sc.vector = vector_ok and gap >= SCALAR_BELOW
                if sc.vector:
                    vector_scans += 1
                r0 = r
                r = scan(&sc, r, &clock)
                gap += (<double> (r - r0) - gap) * 0.125
                scans += 1
                if r == n:
                    break
                # record r is not a single-page hit in the filter: the slow path
                if sc.kind[r] > 3:
                    bad = r
                    break
                self.clock = clock
                a = sc.addr[r]
                if not has_size or on_its_page(a, sc.size[r], pmask):
                    # one page (the most common case by far): the filter missed it
                    self.translate(a >> sc.shift)
                    clock = self.clock
                    r += 1
                    continue
                m = self.straddle(a, sc.size[r])
                clock = self.clock
                if m == 0:
                    bad = r
                    break
                if self.out_of_memory:
                    break
                extra += <uint64_t> m - 1
                r += 1
        self.clock = clock
        self.scan_gap = gap
        self.vector_scans += vector_scans
        self.scalar_scans += scans - vector_scans
        self.records += <uint64_t> r - sc.skipped
        self.translations += <uint64_t> r - sc.skipped + extra
        self.hits += <uint64_t> r - sc.skipped + extra - (self.misses - misses)
        if self.out_of_memory:
            raise MemoryError("out of memory for the page index of emu tlb")
        return bad

    def counters(self):
        return {"records": self.records, "translations": self.translations,
                "hits": self.hits, "misses": self.misses,
                "compulsory_misses": self.compulsory}

    def contents(self):
        """Per slot: the vpn held, or -1 when invalid (for differential tests)."""
        return [int(self.tag[i]) if self.valid[i] else -1 for i in range(self.entries)]


# --------------------------------------------------------------------------
# The numpy dtypes of the C structs Python sees (TLBEntry, Counters), built from
# the structs themselves: the compiler gives the offsets and the size (and
# Cython checks the field types whenever a buffer of TLBEntry is taken).

cdef TLBEntry _entry
cdef ExitTiming _exit
cdef StepCount _step
cdef Counters _counters
cdef MissRecord _miss


cdef Py_ssize_t offset(void *field, void *struct_) noexcept:
    return <char *> field - <char *> struct_


def struct_dtype(fields, Py_ssize_t itemsize):
    """The numpy dtype of a C struct given as (name, format, offset) fields and its size."""
    return np.dtype({"names": [f[0] for f in fields], "formats": [f[1] for f in fields],
                     "offsets": [f[2] for f in fields], "itemsize": itemsize})


ENTRY_DTYPE = struct_dtype([
    ("vpn", np.uint64, offset(&_entry.vpn, &_entry)),
    ("rpn", np.uint64, offset(&_entry.rpn, &_entry)),
    ("stamp", np.uint64, offset(&_entry.stamp, &_entry)),
    ("attr", np.uint32, offset(&_entry.attr, &_entry)),
    ("owner", np.int32, offset(&_entry.owner, &_entry)),
    ("gen", np.uint32, offset(&_entry.gen, &_entry)),
    ("shift", np.uint8, offset(&_entry.shift, &_entry)),
    ("tid", np.uint8, offset(&_entry.tid, &_entry)),
    ("ts", np.uint8, offset(&_entry.ts, &_entry)),
    ("valid", np.uint8, offset(&_entry.valid, &_entry)),
], sizeof(TLBEntry))

EXIT_DTYPE = struct_dtype([
    ("count", np.int64, offset(&_exit.count, &_exit)),
    ("cycles", np.int64, offset(&_exit.cycles, &_exit)),
    ("min", np.int64, offset(&_exit.min, &_exit)),
    ("max", np.int64, offset(&_exit.max, &_exit)),
], sizeof(ExitTiming))

STEP_DTYPE = struct_dtype([
    ("count", np.int64, offset(&_step.count, &_step)),
    ("cycles", np.int64, offset(&_step.cycles, &_step)),
], sizeof(StepCount))

COUNTERS_DTYPE = struct_dtype([
    ("exits", (EXIT_DTYPE, N_EXIT_CATEGORIES), offset(&_counters.exits[0], &_counters)),
    ("exit_sumsq", (np.float64, N_EXIT_CATEGORIES), offset(&_counters.exit_sumsq[0], &_counters)),
    ("exits_us", (EXIT_DTYPE, N_EXIT_CATEGORIES), offset(&_counters.exits_us[0], &_counters)),
    ("exit_sumsq_us", (np.float64, N_EXIT_CATEGORIES),
     offset(&_counters.exit_sumsq_us[0], &_counters)),
    ("tlb", (np.int64, N_TLB_COUNTERS), offset(&_counters.tlb[0], &_counters)),
    ("causes", (np.int64, N_MISS_CAUSES), offset(&_counters.causes[0], &_counters)),
    ("profile", (STEP_DTYPE, N_PROFILE_STEPS), offset(&_counters.profile[0], &_counters)),
    ("profile_hist", (np.int64, N_PROFILE_STEPS * N_CYCLE_BUCKETS),
     offset(&_counters.profile_hist[0][0], &_counters)),
    ("walk_scan", (np.int64, N_SCAN_BUCKETS), offset(&_counters.walk_scan[0], &_counters)),
], sizeof(Counters))

MISS_DTYPE = struct_dtype([
    ("time", np.int64, offset(&_miss.time, &_miss)),
    ("ea", np.uint64, offset(&_miss.ea, &_miss)),
    ("ctx", np.int32, offset(&_miss.ctx, &_miss)),
    ("kind", np.int32, offset(&_miss.kind, &_miss)),
    ("cause", np.int32, offset(&_miss.cause, &_miss)),
    ("scanned", np.int32, offset(&_miss.scanned, &_miss)),
    ("outcome", np.int32, offset(&_miss.outcome, &_miss)),
    ("steps", (np.int64, N_PROFILE_STEPS), offset(&_miss.steps[0], &_miss)),
], sizeof(MissRecord))


cdef extern from *:
    int __builtin_clzll(unsigned long long) nogil


cdef inline int cycle_bucket(int64_t cycles) noexcept nogil:
    """emu.codes.cycle_bucket: 0, else the bit length of ``cycles``, capped."""
    cdef int b
    if cycles <= 0:
        return 0
    b = 64 - __builtin_clzll(<unsigned long long> cycles)
    return b if b < N_CYCLE_BUCKETS else N_CYCLE_BUCKETS - 1


cdef inline int scan_bucket(int entries) noexcept nogil:
    """emu.codes.scan_bucket: one bucket per count to 64, then log2 buckets, capped."""
    cdef int b
    if entries <= 64:
        return entries if entries > 0 else 0
    b = 58 + 64 - __builtin_clzll(<unsigned long long> (entries - 1))
    return b if b < N_SCAN_BUCKETS else N_SCAN_BUCKETS - 1


def new_counters():
    """A zeroed Counters block and a flat view of each of its fields, by name:
    int64, but float64 for the sums of squares (``exit_sumsq``, ``exit_sumsq_us``).

    The views are the counter layout emu.stats reads: ``exits`` holds
    (count, cycles, min, max) per exit category, ``exits_us`` the same in
    whole µs (each exit truncated before it is counted), ``profile`` (count,
    cycles) per step of the miss handler, ``profile_hist`` per step its
    occurrences by cycles (emu.codes.CYCLE_BUCKETS), ``walk_scan`` the walks by
    entries scanned (emu.codes.SCAN_BUCKETS).
    """
    block = np.zeros(1, dtype=COUNTERS_DTYPE)
    flat = {name: block[name][0].reshape(-1) for name in COUNTERS_DTYPE.names}
    return block, {name: a if a.dtype == np.float64 else a.view(np.int64)
                   for name, a in flat.items()}


# --------------------------------------------------------------------------
# BookeTLB: one Book E TLB array with TID, TS, page sizes and owners.

cdef inline uint64_t bucket_of(uint64_t vpn, int shift, uint64_t mask) noexcept nogil:
    return mix(vpn ^ (<uint64_t> shift << 58)) & mask


@cython.final
cdef class BookeTLB:
    """A PowerPC Book E TLB array (440 UTLB, e500 TLB0/TLB1, guest TLB).

    An entry matches an access (EA, PID, AS) when it is valid, its TS equals
    AS, its TID is 0 or equals PID, and EA lies in its page.  When several
    entries match, the lowest index wins (the 440 leaves multiple hits
    undefined; KVM and Linux never create them on purpose).

    ``sets`` > 1 makes the array set-associative: an entry for EA lives in set
    ``(EA >> set_shift) % sets`` and only its way is software's choice (e500
    TLB0, docs/kvm440.md §4.1).  ``victim(ea)`` applies the replacement
    policy; ``round-robin`` cycles over ways 0..hwater (Linux 44x), ``nv`` is
    the e500 hardware next-victim counter shared by all sets.
    """

    def __cinit__(self, int entries, int ways=0, str policy="round-robin", int hwater=-1,
                  int set_shift=12, uint64_t seed=0):
        cdef uint64_t n = 16
        self.hhead = NULL
        self.hnext = NULL
        if ways <= 0:
            ways = entries
        if entries <= 0 or entries % ways:
            raise ValueError(f"{entries} entries cannot be split into {ways}-way sets")
        if policy not in POLICIES:
            raise ValueError(f"unknown policy {policy!r}")
        self.entries = entries
        self.ways = ways
        self.sets = entries // ways
        self.policy = POLICIES[policy]
        self.hwater = ways - 1 if hwater < 0 else min(hwater, ways - 1)
        self.set_shift = set_shift
        self.entry_arr = np.zeros(entries, dtype=ENTRY_DTYPE)
        self.entry_arr["owner"] = -1
        self.e = self.entry_arr
        self.vpn_arr, self.rpn_arr = self.entry_arr["vpn"], self.entry_arr["rpn"]
        self.stamp_arr, self.attr_arr = self.entry_arr["stamp"], self.entry_arr["attr"]
        self.owner_arr, self.gen_arr = self.entry_arr["owner"], self.entry_arr["gen"]
        self.shift_arr, self.tid_arr = self.entry_arr["shift"], self.entry_arr["tid"]
        self.ts_arr, self.valid_arr = self.entry_arr["ts"], self.entry_arr["valid"]
        self.ptr_arr = np.zeros(self.sets, dtype=np.int32)
        self.ptr = self.ptr_arr
        self.clock = 0
        self.wgen = 0
        self.rng = rng_seed_state(seed)
        while n < <uint64_t> (4 * entries):
            n <<= 1
        self.hmask = n - 1
        self.hhead = <int32_t *> calloc(n, sizeof(int32_t))
        self.hnext = <int32_t *> calloc(entries, sizeof(int32_t))
        if self.hhead == NULL or self.hnext == NULL:
            raise MemoryError()
        memset(self.hhead, 0xFF, n * sizeof(int32_t))     # -1: empty chain
        memset(self.shift_count, 0, sizeof(self.shift_count))
        self.shifts_in_use = 0

    def __dealloc__(self):
        free(self.hhead)
        free(self.hnext)

    # -- the hash index over valid entries ---------------------------------

    cdef inline void link(self, int i) noexcept nogil:
        cdef uint64_t b = bucket_of(self.e[i].vpn, self.e[i].shift, self.hmask)
        self.hnext[i] = self.hhead[b]
        self.hhead[b] = i
        self.shift_count[self.e[i].shift] += 1
        self.shifts_in_use |= (<uint64_t> 1) << self.e[i].shift

    cdef inline void unlink(self, int i) noexcept nogil:
        cdef uint64_t b = bucket_of(self.e[i].vpn, self.e[i].shift, self.hmask)
        cdef int32_t j = self.hhead[b]
        if j == i:
            self.hhead[b] = self.hnext[i]
        else:
            while self.hnext[j] != i:
                j = self.hnext[j]
            self.hnext[j] = self.hnext[i]
        self.shift_count[self.e[i].shift] -= 1
        if self.shift_count[self.e[i].shift] == 0:
            self.shifts_in_use &= ~((<uint64_t> 1) << self.e[i].shift)

    # -- C-level operations used by the fast path ---------------------------

    cdef int lookup(self, uint64_t ea, uint32_t pid, uint32_t pid1, uint32_t as_) noexcept nogil:
        cdef uint64_t used = self.shifts_in_use, v
        cdef int s, best = -1
        cdef int32_t i
        cdef TLBEntry *x
        while used:
            s = 0
            while not (used >> s) & 1:
                s += 1
            used &= ~((<uint64_t> 1) << s)
            v = ea >> s
            i = self.hhead[bucket_of(v, s, self.hmask)]
            while i >= 0:
                x = &self.e[i]
                if (x.vpn == v and x.shift == s and x.ts == as_
                        and (x.tid == 0 or x.tid == pid or x.tid == pid1)
                        and (best < 0 or i < best)):
                    best = i
                i = self.hnext[i]
        return best

    cdef void touch(self, int i) noexcept nogil:
        if self.policy == POLICY_LRU:
            self.clock += 1
            self.e[i].stamp = self.clock

    cdef int victim(self, uint64_t ea) noexcept nogil:
        cdef int set_ = 0, w, base, best
        cdef uint64_t oldest
        if self.sets > 1:
            set_ = <int> ((ea >> self.set_shift) % <uint64_t> self.sets)
        base = set_ * self.ways
        if self.policy == POLICY_NONE:
            return -1
        if self.policy == POLICY_FIFO:
            w = self.ptr[set_]
            self.ptr[set_] = (w + 1) % self.ways
            return base + w
        if self.policy == POLICY_ROUND_ROBIN:
            w = self.ptr[set_]
            self.ptr[set_] = 0 if w >= self.hwater else w + 1
            return base + w
        if self.policy == POLICY_NV:
            w = self.ptr[0]
            self.ptr[0] = (w + 1) % self.ways
            return base + w
        for w in range(self.ways):
            if not self.e[base + w].valid:
                return base + w
        if self.policy == POLICY_RANDOM:
            return base + <int> (rng_next(&self.rng) % <uint64_t> self.ways)
        best = 0
        oldest = self.e[base].stamp
        for w in range(1, self.ways):
            if self.e[base + w].stamp < oldest:
                oldest = self.e[base + w].stamp
                best = w
        return base + best

    cdef void set_entry(self, int i, uint64_t ea, int shift_, int tid_, int ts_,
                        uint64_t rpn_, uint32_t attr_, int owner_) noexcept nogil:
        cdef TLBEntry *x = &self.e[i]
        if x.valid:
            self.unlink(i)
        x.vpn = ea >> shift_
        x.shift = <uint8_t> shift_
        x.tid = <uint8_t> tid_
        x.ts = <uint8_t> ts_
        x.rpn = rpn_
        x.attr = attr_
        x.owner = owner_
        x.valid = 1
        x.gen += 1
        self.wgen += 1
        self.clock += 1
        x.stamp = self.clock
        self.link(i)

    cdef void clear_entry(self, int i) noexcept nogil:
        if self.e[i].valid:
            self.unlink(i)
            self.e[i].valid = 0
            self.e[i].gen += 1
            self.wgen += 1

    # -- Python API ---------------------------------------------------------

    def write(self, int index, uint64_t ea, int shift, int tid, int ts, uint64_t rpn=0,
              uint32_t attr=0, int owner=-1):
        """Write a valid entry at ``index`` mapping the page of ``ea`` (2**shift bytes)."""
        if not 0 <= index < self.entries:
            raise IndexError(f"TLB index {index} outside 0..{self.entries - 1}")
        if not 0 < shift < 64:
            raise ValueError(f"page shift {shift} out of range")
        if not 0 <= tid <= 255 or not 0 <= ts <= 1:
            raise ValueError(f"TID {tid} / TS {ts} outside 0..255 / 0..1")
        self.set_entry(index, ea, shift, tid, ts, rpn, attr, owner)

    def invalidate(self, int index):
        if not 0 <= index < self.entries:
            raise IndexError(f"TLB index {index} outside 0..{self.entries - 1}")
        self.clear_entry(index)

    def find(self, uint64_t ea, uint32_t pid, uint32_t as_, uint32_t pid1=NO_PID):
        """Index of the entry that translates (EA, PID, AS), or -1 (tlbsx).

        ``pid1`` is a second PID register (e500 PID1); NO_PID when absent.
        """
        return self.lookup(ea, pid, pid1, as_)

    def choose_victim(self, uint64_t ea=0):
        """Apply the replacement policy: the index to write next for ``ea``."""
        return self.victim(ea)

    def use(self, int index):
        """Record a use of ``index`` (LRU)."""
        self.touch(index)

    def invalidate_ea(self, uint64_t ea, int tid, int ts):
        """Invalidate every entry that translates ``ea`` for this TID and TS."""
        cdef int i, n = 0
        for i in range(self.entries):
            if (self.e[i].valid and self.e[i].ts == ts and self.e[i].tid == tid
                    and self.e[i].vpn == ea >> self.e[i].shift):
                self.clear_entry(i)
                n += 1
        return n

    def invalidate_where(self, int tid=-1, int ts=-1, int owner=-2):
        """Invalidate the valid entries matching every given field; return the count."""
        cdef int i, n = 0
        for i in range(self.entries):
            if (self.e[i].valid and (tid < 0 or self.e[i].tid == tid)
                    and (ts < 0 or self.e[i].ts == ts)
                    and (owner == -2 or self.e[i].owner == owner)):
                self.clear_entry(i)
                n += 1
        return n

    def invalidate_all(self):
        cdef int i, n = 0
        for i in range(self.entries):
            if self.e[i].valid:
                self.clear_entry(i)
                n += 1
        return n

    def read(self, int index):
        """The entry at ``index`` as a tuple (valid, ea, shift, tid, ts, rpn, attr, owner)."""
        if not 0 <= index < self.entries:
            raise IndexError(f"TLB index {index} outside 0..{self.entries - 1}")
        cdef TLBEntry x = self.e[index]
        return (int(x.valid), int(x.vpn << x.shift), int(x.shift), int(x.tid), int(x.ts),
                int(x.rpn), int(x.attr), int(x.owner))

    def valid_count(self):
        cdef int i, n = 0
        for i in range(self.entries):
            n += self.e[i].valid
        return n


# ==========================================================================
# The virtualized fast path (docs/design.md §3).  Codes mirror emu/codes.py.

cdef uint32_t NOPID = 0xFFFF


cdef int reasons_init(ReasonMap *m) except -1:
    m.keys = <uint64_t *> calloc(1024, sizeof(uint64_t))
    m.vals = <uint8_t *> calloc(1024, sizeof(uint8_t))
    if m.keys == NULL or m.vals == NULL:
        raise MemoryError()
    m.mask = 1023
    m.used = 0
    return 0


cdef void reasons_grow(ReasonMap *m) noexcept nogil:
    cdef uint64_t n = (m.mask + 1) * 2, i, h
    cdef uint64_t *keys = <uint64_t *> calloc(n, sizeof(uint64_t))
    cdef uint8_t *vals = <uint8_t *> calloc(n, sizeof(uint8_t))
    if keys == NULL or vals == NULL:
        free(keys)
        free(vals)
        return                       # keep the old table; it only gets slower
    for i in range(m.mask + 1):
        if m.keys[i] != 0:
            h = mix(m.keys[i]) & (n - 1)
            while keys[h] != 0:
                h = (h + 1) & (n - 1)
            keys[h] = m.keys[i]
            vals[h] = m.vals[i]
    free(m.keys)
    free(m.vals)
    m.keys = keys
    m.vals = vals
    m.mask = n - 1


cdef void reasons_put(ReasonMap *m, uint64_t key, uint8_t val) noexcept nogil:
    cdef uint64_t k = key + 1
    cdef uint64_t h = mix(k) & m.mask
    while m.keys[h] != 0:
        if m.keys[h] == k:
            m.vals[h] = val
            return
        h = (h + 1) & m.mask
    m.keys[h] = k
    m.vals[h] = val
    m.used += 1
    if 2 * m.used > m.mask:
        reasons_grow(m)


cdef int reasons_get(ReasonMap *m, uint64_t key, int default) noexcept nogil:
    cdef uint64_t k = key + 1
    cdef uint64_t h = mix(k) & m.mask
    while m.keys[h] != 0:
        if m.keys[h] == k:
            return m.vals[h]
        h = (h + 1) & m.mask
    return default


cdef inline uint64_t context_key(uint32_t pid, uint32_t pid1, uint32_t as_) noexcept nogil:
    """The (PID, PID1, AS) part of a translation-cache key; the EA's block fills bits 0..21."""
    return ((<uint64_t> (pid & 0xFFFF) << 22) | (<uint64_t> (pid1 & 0xFFFF) << 38)
            | (<uint64_t> (as_ & 1) << 54))


cdef inline uint64_t cause_key(int owner, int ts, uint64_t ea) noexcept nogil:
    """Who lost which page: (owner context and guest TID tag, TS, 4 KB page of a 32-bit EA)."""
    return (<uint64_t> owner << 21) | (<uint64_t> ts << 20) | ((ea >> 12) & 0xFFFFF)


def cause_key_py(int owner, int ts, uint64_t ea):
    return cause_key(owner, ts, ea)


@cython.final
cdef class VirtCPU:
    """One physical CPU: its hardware TLB(s), micro-TLBs and miss-cause bookkeeping.

    ``cycles`` is the CPU's cycle breakdown, indexed by emu.codes.CYCLES.
    ``ctx_host[c]`` is 1 when context ``c`` is a host task or QEMU thread.
    """

    def __cinit__(self, BookeTLB tlb, BookeTLB tlb1, bint micro, cycles, ctx_host):
        self.tlb = tlb
        self.tlb1 = tlb1
        self.e500 = tlb1 is not None
        self.micro = micro
        self.lru = tlb.policy == POLICY_LRU or (tlb1 is not None and tlb1.policy == POLICY_LRU)
        self.cycles_arr = cycles
        self.ctx_host_arr = ctx_host
        self.cycles = cycles
        self.ctx_host = ctx_host
        self.reasons.keys = NULL
        self.reasons.vals = NULL
        reasons_init(&self.reasons)
        memset(self.tc_key, 0, sizeof(self.tc_key))
        memset(self.tc_owner, 0, sizeof(self.tc_owner))
        self.micro_flush()

    def __dealloc__(self):
        free(self.reasons.keys)
        free(self.reasons.vals)

    def micro_flush(self):
        """Every interrupt, rfi, isync and sc empties the micro-TLBs (PPC440x5 UM p.152)."""
        self.micro_flush_c()

    cdef void micro_flush_c(self) noexcept nogil:
        cdef int j
        for j in range(4):
            self.islot[j] = -1
        for j in range(8):
            self.dslot[j] = -1
        self.iptr = 0
        self.dptr = 0

    cdef int hw_lookup(self, uint64_t ea, uint32_t pid, uint32_t pid1, uint32_t as_) noexcept nogil:
        """Index of the matching entry; e500 TLB1 indices follow TLB0's (offset by its size)."""
        cdef int i
        if self.e500:
            i = self.tlb1.lookup(ea, pid, pid1, as_)
            if i >= 0:
                return self.tlb.entries + i
        return self.tlb.lookup(ea, pid, pid1, as_)

    cdef int hit_owner(self, int idx) noexcept nogil:
        """The owner of the entry at ``idx`` (a hit), after an LRU touch."""
        if idx >= self.tlb.entries:
            self.tlb1.touch(idx - self.tlb.entries)
            return self.tlb1.e[idx - self.tlb.entries].owner
        self.tlb.touch(idx)
        return self.tlb.e[idx].owner

    cdef inline uint64_t write_gen(self) noexcept nogil:
        """Grows whenever any entry of this CPU's TLB(s) is written or invalidated."""
        if self.e500:
            return self.tlb.wgen + self.tlb1.wgen
        return self.tlb.wgen

    cdef inline int min_shift(self) noexcept nogil:
        """The smallest page shift of any valid entry (10 when none): two EAs in one
        block of that size always translate alike, so the cache keys on it."""
        cdef uint64_t used = self.tlb.shifts_in_use
        cdef int sh = 10
        if self.e500:
            used |= self.tlb1.shifts_in_use
        if used == 0:
            return sh
        while not (used >> sh) & 1:
            sh += 1
        return sh

    cdef inline int probe(self, uint64_t key, uint64_t w, uint64_t ea, uint32_t pid,
                          uint32_t pid1, uint32_t as_, int *owner) noexcept nogil:
        """hw_lookup through the translation cache; ``owner`` gets the entry's owner.

        ``key`` = context_key(pid, pid1, as_) | (ea >> min_shift()), ``w`` = write_gen()
        (the cache is only valid for one write generation, and min_shift changes
        only when an entry is written).
        A hit is touched (LRU) as a lookup by the hardware would be.
        """
        # NOTE: the slot is the top 10 bits of (key + 1) * GOLDEN (Fibonacci
        # hashing), not mix() & 1023: consecutive pages of one context then
        # take slots spread evenly round the cache and do not collide (the low
        # bits that mix() kept let the default e500 guest and host task
        # collide on 2-4 % of their accesses, each a hw_lookup).
        cdef uint64_t h = ((key + 1) * 0x9E3779B97F4A7C15ULL) >> 54
        cdef int idx
        if self.tc_key[h] == key + 1 and self.tc_wgen[h] == w:
            idx = self.tc_idx[h]
            owner[0] = self.tc_owner[h]
            if self.lru:
                self.hit_owner(idx)
            return idx
        idx = self.hw_lookup(ea, pid, pid1, as_)
        if idx >= 0:
            owner[0] = self.hit_owner(idx)
            self.tc_key[h] = key + 1
            self.tc_wgen[h] = w
            self.tc_idx[h] = idx
            self.tc_owner[h] = owner[0]
        return idx

    cdef BookeTLB array_of(self, int idx):
        return self.tlb1 if idx >= self.tlb.entries else self.tlb

    cdef void note_removal(self, BookeTLB t, int i, int writer, int reason) noexcept nogil:
        """Remember why the entry at ``t[i]`` leaves the TLB, for its owner's next miss."""
        cdef int owner = t.e[i].owner
        if not t.e[i].valid or owner < 0:
            return
        if reason < 0:
            if (owner >> 8) == writer:
                reason = CAUSE_SELF_EVICTION
            elif self.ctx_host[writer]:
                reason = CAUSE_HOST_EVICTION
            else:
                reason = CAUSE_OTHER_GUEST_EVICTION
        reasons_put(&self.reasons, cause_key(owner, t.e[i].ts, t.e[i].vpn << t.e[i].shift),
                    <uint8_t> reason)

    cdef void hw_write(self, BookeTLB t, int i, uint64_t ea, int shift, int tid, int ts,
                       uint64_t rpn, uint32_t attr, int owner, int writer) noexcept nogil:
        self.note_removal(t, i, writer, -1)
        t.set_entry(i, ea, shift, tid, ts, rpn, attr, owner)

    cdef int miss_cause(self, int owner, int ts, uint64_t ea) noexcept nogil:
        """A page never removed since its first touch misses as compulsory."""
        return reasons_get(&self.reasons, cause_key(owner, ts, ea), CAUSE_COMPULSORY)

    cdef int micro_lookup(self, bint inst, uint64_t ea, uint32_t pid, uint32_t pid1,
                          uint32_t as_) noexcept nogil:
        cdef int j, n = 4 if inst else 8, idx
        cdef int32_t *slot
        cdef uint32_t *gen
        cdef TLBEntry *x
        if inst:
            slot = &self.islot[0]
            gen = &self.igen[0]
        else:
            slot = &self.dslot[0]
            gen = &self.dgen[0]
        for j in range(n):
            idx = slot[j]
            if idx < 0:
                continue
            x = &self.tlb.e[idx]
            if (x.gen == gen[j] and x.valid and x.ts == as_
                    and (x.tid == 0 or x.tid == pid or x.tid == pid1)
                    and x.vpn == ea >> x.shift):
                return idx
        return -1

    cdef void micro_fill(self, bint inst, int idx) noexcept nogil:
        if inst:
            self.islot[self.iptr] = idx
            self.igen[self.iptr] = self.tlb.e[idx].gen
            self.iptr = (self.iptr + 1) % 4
        else:
            self.dslot[self.dptr] = idx
            self.dgen[self.dptr] = self.tlb.e[idx].gen
            self.dptr = (self.dptr + 1) % 8

    # -- Python API used by the slow path -------------------------------------

    def lookup(self, uint64_t ea, uint32_t pid, uint32_t as_, uint32_t pid1=NOPID):
        return self.hw_lookup(ea, pid, pid1, as_)

    def write(self, int idx, uint64_t ea, int shift, int tid, int ts, uint64_t rpn, int owner,
              int writer, uint32_t attr=0):
        """Write a hardware entry on behalf of context ``writer`` (eviction is
        noted); ``attr``: its permissions (word 2, UX..SR)."""
        cdef BookeTLB t = self.array_of(idx)
        cdef int i = idx - self.tlb.entries if t is self.tlb1 else idx
        self.hw_write(t, i, ea, shift, tid, ts, rpn, attr, owner, writer)

    def invalidate(self, int idx, int writer, int reason=-1):
        """Invalidate a hardware entry; ``reason`` (emu.codes.CAUSE) or -1 to infer it."""
        cdef BookeTLB t = self.array_of(idx)
        cdef int i = idx - self.tlb.entries if t is self.tlb1 else idx
        self.note_removal(t, i, writer, reason)
        t.clear_entry(i)

    def retire(self, int idx, int reason):
        """The hardware entry at ``idx`` stays valid, but nothing can match it any
        more (its shadow ID was retired): its owner's next miss of its page
        counts under ``reason``."""
        cdef BookeTLB t = self.array_of(idx)
        cdef int i = idx - self.tlb.entries if t is self.tlb1 else idx
        self.note_removal(t, i, -1, reason)

    def cause_of(self, int owner, int ts, uint64_t ea):
        return self.miss_cause(owner, ts, ea)


cdef inline void add_timing(ExitTiming *x, double *sumsq, int64_t d) noexcept nogil:
    """One exit of duration ``d`` into its category's count, sum, min, max and sumsq."""
    if x.count == 0 or d < x.min:
        x.min = d
    if d > x.max:
        x.max = d
    x.count += 1
    x.cycles += d
    sumsq[0] += <double> d * <double> d


cdef inline int searched_entries(Ctx v, int gi, int entries) noexcept nogil:
    """Guest TLB entries a search reads to find entry ``gi`` (-1: not found)
    among ``entries``: entry by entry from 0, or on the e500 @0164c0f0 the two
    ways of the EA's TLB0 set, then TLB1's 16."""
    if v.e500_map[3]:
        entries = 2 + 16
        gi = -1 if gi < 0 else ((gi & 1) if gi < 256 else gi - 256 + 2)
    return gi + 1 if gi >= 0 else entries


cdef inline int walk_cost(Ctx v, int gi, int entries) noexcept nogil:
    if v.hashed_walk:
        return v.costs.asm_walk_hashed if v.handler == HANDLER_ASM else v.costs.c_walk_hashed
    return (v.costs.asm_walk_per_entry if v.handler == HANDLER_ASM else v.costs.c_walk_per_entry) * \
        searched_entries(v, gi, entries)


@cython.final
cdef class Ctx:
    """A vCPU (virtualized mode) or a host thread (native mode) and its counters.

    ``arrays`` is a dict of the numpy arrays this object reads (memslots, pfn
    tables) or writes (``mod``, ``hwref_gi``, the repopulation windows); the
    context adds to it a flat view of each field of its Counters block
    (``exits``, ``exit_sumsq``, ``tlb``, ``causes``, ``profile``: see
    new_counters).  Both backends share that layout.

    ``set_costs`` must be called before the loops run.  ``stop`` (a dict
    here) says why and where the last loop returned; ``stop_ea``, ``stop_gpa``,
    ``stop_gi``, ``stop_kind`` and ``pending`` are its fields.
    """

    def __cinit__(self, int ctx, dict arrays, BookeTLB gtlb=None, BookeTLB shadow=None,
                  BookeTLB pcache=None, int strategy=STRATEGY_DIRECT, int handler=HANDLER_ASM,
                  int hashed_walk=0, int pfn_source=PFN_SOURCE_GUP, int is_host=0, int host_pid=0):
        self.ctx = ctx
        self.arrays = arrays
        self.gtlb = gtlb
        self.shadow = shadow
        self.pcache = pcache
        self.strategy = strategy
        self.tid_scheme = TID_SCHEME_TID01
        self.handler = handler
        self.hashed_walk = hashed_walk
        self.pfn_source = pfn_source
        self.is_host = is_host
        self.host_pid = host_pid
        self.guest_pid = 0
        self.guest_pr = 0
        self.guest_as = 0
        self.shadow_pid = 1
        self.pid1 = NOPID
        self.sid_next = 0
        self.check_uw = False
        self.check_ux = False
        self.slot_base = arrays["slot_base"]
        self.slot_npages = arrays["slot_npages"]
        self.pin = arrays["pin"]
        self.gref = arrays["gref"]
        self.hwref_gi = arrays["hwref_gi"]
        self.host_pt = arrays["host_pt"]
        self.mod = arrays["mod"]
        self.shadow_pos = arrays.setdefault("shadow_pos", np.zeros(1, np.int32))
        self.e500_map = arrays.setdefault("e500_map", np.zeros(4, np.int32))
        self.loop_len = self.mod.shape[0]
        self.repop_miss = arrays["repop_miss"]
        self.repop_access = arrays["repop_access"]
        self.counters, views = new_counters()
        arrays.update(views)
        # NOTE: through bytes: Cython cannot type a buffer of a struct holding
        # arrays of structs.  The block's dtype is built from Counters itself.
        cdef uint8_t[::1] raw = self.counters.view(np.uint8)
        self.n = <Counters *> &raw[0]
        self.guest_run = 0
        self.since_load = 1 << 62
        self.n_modified = 0
        memset(&self.stop, 0, sizeof(Stop))
        memset(&self.costs, 0, sizeof(Costs))
        self.mlog = NULL
        self.mlog_n = NULL
        self.mlog_cap = 0
        self.mlog_row = -1
        self.log_clock = 0

    def set_miss_log(self, rows, counts):
        """Log every guest TLB miss into ``rows`` (a MISS_DTYPE array shared by
        the machine's vCPUs; ``counts``: int64 [rows written]; a miss once it
        is full is not logged).  A row's ``time`` is ``log_clock`` plus the CPU's
        cycles at the miss; its ``steps`` get the cycles of each step of that
        miss's handler until the miss is closed (close_miss)."""
        cdef uint8_t[::1] raw = rows.view(np.uint8)
        cdef int64_t[::1] n = counts
        if rows.dtype != MISS_DTYPE or rows.shape[0] == 0 or counts.shape[0] != 1:
            raise ValueError("set_miss_log: a non-empty MISS_DTYPE array and its 1 count")
        self.mlog_arr, self.mlog_n_arr = rows, counts
        self.mlog = <MissRecord *> &raw[0]
        self.mlog_n = &n[0]
        self.mlog_cap = rows.shape[0]
        self.mlog_row = -1

    cdef void open_miss(self, VirtCPU cpu, uint64_t ea, int kind) noexcept nogil:
        """A guest TLB miss begins: its row of the log, if the log has room."""
        cdef MissRecord *r
        cdef int i
        cdef int64_t t = self.log_clock
        if self.mlog_n[0] >= self.mlog_cap:
            self.mlog_row = -1
            return
        self.mlog_row = self.mlog_n[0]
        self.mlog_n[0] += 1
        r = &self.mlog[self.mlog_row]
        memset(r, 0, sizeof(MissRecord))
        for i in range(N_CYCLE_CATEGORIES):
            t += cpu.cycles[i]
        r.time = t
        r.ea = ea
        r.ctx = self.ctx
        r.kind = kind
        r.outcome = -1

    def close_miss(self):
        """The miss being logged ends (its handler's C path or MMIO exit is
        done): the steps profiled after this are not its own."""
        self.mlog_row = -1

    cdef inline void miss_outcome(self, int outcome, bint close) noexcept nogil:
        """How the logged miss's handler ended; ``close``: nothing follows in Python."""
        if self.mlog_row >= 0:
            self.mlog[self.mlog_row].outcome = outcome
            if close:
                self.mlog_row = -1

    cdef inline void count_step_c(self, int step, int64_t cycles) noexcept nogil:
        """Profile one step of the miss handler: its count, cycles, histogram,
        and the logged miss's row."""
        self.n.profile[step].count += 1
        self.n.profile[step].cycles += cycles
        self.n.profile_hist[step][cycle_bucket(cycles)] += 1
        if self.mlog_row >= 0:
            self.mlog[self.mlog_row].steps[step] += cycles

    def count_step(self, int step, int64_t cycles):
        """Profile a step the miss handler ran in Python (not charged: the caller charges)."""
        self.count_step_c(step, cycles)

    @property
    def stop_ea(self):
        return self.stop.ea

    @property
    def stop_gpa(self):
        return self.stop.gpa

    @property
    def stop_gi(self):
        return self.stop.gi

    @property
    def stop_kind(self):
        return self.stop.kind

    @property
    def pending(self):
        return self.stop.pending

    def set_costs(self, dict c):
        """Fill the cost table from a dict of cycle counts holding (at least) a
        value for every field of Costs; ``costs`` reads it back as a dict."""
        self.costs = c

    cdef void record_exit_c(self, int cat, int64_t cycles) noexcept nogil:
        """Count one exit of ``cat``: in exact cycles, and as KVM's timing.c
        kept it, truncated to whole µs before count/sum/sumsq/min/max
        (add_exit_timing @73e75b41; docs/kvm440.md §2.10)."""
        cdef int64_t us = cycles // self.costs.clock_mhz if self.costs.clock_mhz > 0 else 0
        add_timing(&self.n.exits[cat], &self.n.exit_sumsq[cat], cycles)
        add_timing(&self.n.exits_us[cat], &self.n.exit_sumsq_us[cat], us)

    cdef void stop_in_handler(self, uint64_t ea, int kind, uint64_t gpa, int gi,
                              int64_t pending) noexcept nogil:
        """The loop stops inside the miss handler, for Python to go on (MMIO, C path)."""
        self.stop.ea = ea
        self.stop.kind = kind
        self.stop.gpa = gpa
        self.stop.gi = gi
        self.stop.pending = pending

    cdef inline void charge(self, VirtCPU cpu, int step, int64_t cycles,
                            int category) noexcept nogil:
        """One step of the miss handler: profiled, and charged to the CPU's ``category``."""
        self.count_step_c(step, cycles)
        cpu.cycles[category] += cycles

    def record_exit(self, int cat, int64_t cycles):
        self.record_exit_c(cat, cycles)

    def end_guest_run(self, int exits=1):
        """``exits`` exits in a row: the time since the last entry goes to
        TIMEINGUEST, and each later exit adds a run of no time, as
        kvmppc_update_timing_stats adds one at every exit (docs/kvm440.md §2.10)."""
        cdef int i
        self.record_exit_c(EXIT_TIMEINGUEST, self.guest_run)
        for i in range(1, exits):
            self.record_exit_c(EXIT_TIMEINGUEST, 0)
        self.guest_run = 0

    cdef int map_shadow_c(self, VirtCPU cpu, uint64_t ea, int gi, int64_t pfn) noexcept nogil:
        """kvmppc_mmu_map: put a 4 KB shadow of guest entry ``gi`` into hardware.

        The shadow TID follows the TID era (docs/kvm440.md §2.10): the
        guest entry's TID under guest-tid, else guest TID 0 -> 1 and any other
        -> 0 (§2.8); for e500 shadow IDs, the IDs in PID0/PID1.  Shadow
        designs place it at KVM's victim, one counter for the whole machine
        over 0..hwater (``kvmppc_tlb_44x_pos``), in the shadow array and, below
        hwater, at the same hardware index; a shadow in slot hwater never
        reaches hardware (the entry loop stops below it): the access misses
        again.  The others let the hardware TLB's policy choose (the host's
        round robin on the 440, the next-victim counter on e500).
        """
        cdef int gtid = self.gtlb.e[gi].tid
        cdef int stid, i
        cdef int owner = (self.ctx << 8) | gtid
        cdef uint64_t page = ea >> 12 << 12
        cdef uint32_t attr = self.shadow_attr(gi)
        if self.strategy == STRATEGY_E500_SHADOW_IDS:
            if gtid != 0 and self.sid_next > 0:
                # PID0's ID was destroyed: write_stlbe's kvmppc_e500_get_sid
                # allocates the next one, and PID0 takes it (@0164c0f0)
                self.shadow_pid = self.sid_next
                self.sid_next = 0
                cpu.cycles[CYCLES_SAVE_RESTORE] += self.costs.e500_sid_alloc
            stid = <int> self.pid1 if gtid == 0 else self.shadow_pid
        elif self.tid_scheme == TID_SCHEME_GUEST_TID:
            stid = gtid
        else:
            stid = 1 if gtid == 0 else 0
        if self.e500_map[1] > 0:
            # an e500 guest: TLB1 pool, ESEL or the hardware victim (e500_slot)
            i = self.e500_slot(cpu, page, gi)
            if self.strategy == STRATEGY_SHADOW or self.strategy == STRATEGY_SHADOW_MODIFIED:
                self.shadow.set_entry(i, page, 12, stid, 1, <uint64_t> pfn << 12, attr, owner)
            if i >= cpu.tlb.entries:
                cpu.hw_write(cpu.tlb1, i - cpu.tlb.entries, page, 12, stid, 1,
                             <uint64_t> pfn << 12, attr, owner, self.ctx)
            else:
                cpu.hw_write(cpu.tlb, i, page, 12, stid, 1, <uint64_t> pfn << 12, attr,
                             owner, self.ctx)
        elif self.strategy == STRATEGY_SHADOW or self.strategy == STRATEGY_SHADOW_MODIFIED:
            i = self.shadow_pos[0]
            self.shadow_pos[0] = 0 if i >= self.shadow.hwater else i + 1
            self.shadow.set_entry(i, page, 12, stid, 1, <uint64_t> pfn << 12, attr, owner)
            if i < self.loop_len:
                cpu.hw_write(cpu.tlb, i, page, 12, stid, 1, <uint64_t> pfn << 12, attr,
                             owner, self.ctx)
            else:
                reasons_put(&cpu.reasons, cause_key(owner, 1, page),
                            <uint8_t> CAUSE_SHADOW_NOT_RESTORED)
        else:
            i = cpu.tlb.victim(page)
            cpu.hw_write(cpu.tlb, i, page, 12, stid, 1, <uint64_t> pfn << 12, attr, owner,
                         self.ctx)
        if self.hwref_gi[i] >= 0 and self.slot_holds_page(self.hwref_gi[i]):
            # the slot's previous page reference is dropped (kvmppc_44x_shadow_release)
            cpu.cycles[CYCLES_C_PATH] += self.costs.put_page
        if not self.mod[i]:
            self.mod[i] = 1
            if i < self.loop_len:
                self.n_modified += 1
        self.hwref_gi[i] = gi
        return i

    def map_shadow(self, VirtCPU cpu, uint64_t ea, int gi, int64_t pfn):
        return self.map_shadow_c(cpu, ea, gi, pfn)

    cdef uint32_t shadow_attr(self, int gi) noexcept nogil:
        """The permissions of a shadow of guest entry ``gi``
        (kvmppc_44x_tlb_shadow_attrib, 44x_tlb.c of every era): the guest's
        own in user mode; in supervisor mode its supervisor permissions copied
        into the user ones (the guest runs in the host's user mode); the
        host's SX, SR, SW always."""
        cdef uint32_t a = self.gtlb.e[gi].attr & TLB_PERMS
        if not self.guest_pr:
            a = (a & ~TLB_USER_PERMS) | ((a & TLB_SUPER_PERMS) << 3)
        return a | TLB_SX | TLB_SR | TLB_SW

    def searched_entries(self, int gi):
        """Guest TLB entries a search (the miss handler's walk, KVM's tlbsx) reads
        to find entry ``gi`` (-1: not found), the hashed lookup aside."""
        return searched_entries(self, gi, self.gtlb.entries)

    def shadow_attrib(self, int gi):
        """The permissions a shadow of guest entry ``gi`` gets now (see shadow_attr)."""
        return self.shadow_attr(gi)

    cdef int e500_slot(self, VirtCPU cpu, uint64_t page, int gi) noexcept nogil:
        """The flat hardware index KVM e500 writes a shadow of guest entry ``gi`` to.

        A guest TLB1 entry (``gi`` >= 256) takes the next slot of the vCPU's
        TLB1 pool, KVM's own round robin placed top-down
        (``kvmppc_e500_tlb1_map``, ``to_htlb1_esel``); a guest TLB0 entry takes
        the set of its EA and, with ESEL (``e500_map[2]``: @0164c0f0's
        ``MAS0_ESEL(esel & (ways - 1))``), the way software names, else the
        hardware next victim (@46f43c6e leaves MAS0 as the last miss set it,
        its NV the counter's next value).
        """
        cdef int v
        if gi >= 256:
            v = self.e500_map[0]
            self.e500_map[0] = 0 if v + 1 >= self.e500_map[1] else v + 1
            return cpu.tlb.entries + cpu.tlb1.entries - 1 - v
        if self.e500_map[2]:
            # the tlbwe's MAS0 is TLBSEL(0) | ESEL, NV 0: TLB0[NV] is loaded
            # with MAS0[NV] (e500 Core RM p.12-14), so the hardware's round
            # robin starts again at way 0
            cpu.tlb.ptr[0] = 0
            return (<int> ((page >> 12) % <uint64_t> cpu.tlb.sets) * cpu.tlb.ways
                    + (gi & (cpu.tlb.ways - 1)))
        return cpu.tlb.victim(page)

    cdef bint slot_holds_page(self, int gi) noexcept nogil:
        """Whether a shadow slot of guest entry ``gi`` holds a page reference of its
        own: every slot under gup; under guest-tlb-refs, one of an entry larger
        than 4 KB (a TLB1 shadow keeps its own ref; a 4 KB entry's is the entry's)."""
        if self.pfn_source == PFN_SOURCE_GUP:
            return True
        return self.pfn_source == PFN_SOURCE_GUEST_TLB_REFS and self.gtlb.e[gi].shift != 12

    cdef inline int64_t pfn_known(self, int gi, uint64_t gfn) noexcept nogil:
        """The pfn of ``gfn`` if the pfn source knows it without calling C, else -1."""
        cdef int64_t off
        cdef int j
        if self.pfn_source == PFN_SOURCE_PIN_ALL:
            off = <int64_t> gfn - self.slot_base[0]
            return self.pin[off] if 0 <= off < self.pin.shape[0] else -1
        if self.pfn_source == PFN_SOURCE_PFN_CACHE:
            j = self.pcache.lookup(gfn << 12, 0, NOPID, 0)
            if j < 0:
                return -1
            self.pcache.touch(j)
            return <int64_t> (self.pcache.e[j].rpn >> 12)
        if self.pfn_source == PFN_SOURCE_GUEST_TLB_REFS:
            if self.gtlb.e[gi].shift == 12:
                return self.gref[gi]
            return -1
        return -1

    def run_virt(self, VirtCPU cpu, const uint32_t[::1] ea, const uint8_t[::1] kind,
                 Py_ssize_t pos, int64_t budget):
        """Run guest accesses from ``pos`` until the budget is spent or Python is needed.

        Returns (stop, pos, cycles).  On a stop other than budget/end the
        access at ``pos`` has not completed: Python handles the stop and calls
        again from the same ``pos``.  ``self.stop`` says where; its ``pending``
        holds the cycles the interrupted exit has cost so far.  Called with
        the vCPU loaded on ``cpu``.
        """
        cdef Py_ssize_t n = ea.shape[0]
        cdef int64_t used = 0, c, step, W = self.repop_miss.shape[0]
        cdef int k, idx, gi, stop = STOP_END, cause, gtag, shift_, scanned
        cdef bint inst, asm = self.handler == HANDLER_ASM
        cdef uint64_t a, gpa, gfn, off
        cdef int64_t pfn
        cdef int owner = -1
        cdef int64_t hits = 0, gcyc = 0
        cdef uint64_t kbase = context_key(self.shadow_pid, self.pid1, 1), w
        cdef int gsh
        cdef bint micro = cpu.micro
        # a user store needs UW and a user fetch UX: the 440 guest in user
        # mode (neither changes inside this call).  ``need`` holds, in byte k,
        # the permission an access of kind k needs (0: none checked); the
        # hit's entry is then read through ``hwe``
        cdef int perm_ctx = self.ctx if (self.check_uw or self.check_ux) and self.guest_pr else -1
        cdef uint64_t need = 0
        if perm_ctx >= 0:
            if self.check_ux:
                need |= (<uint64_t> TLB_UX) << (8 * KIND_IFETCH)
            if self.check_uw:
                need |= ((<uint64_t> TLB_UW) << (8 * KIND_STORE)
                         | (<uint64_t> TLB_UW) << (8 * KIND_MODIFY))
        cdef TLBEntry *hwe = &cpu.tlb.e[0]
        # NOTE: kept in a register, written back before anything reads it.  The
        # counters are reached through self.n, not a local copy of the pointer:
        # one more value live across the loop made the LRU hit path 5 % slower.
        cdef int64_t since = self.since_load
        with nogil:
            w = cpu.write_gen()
            gsh = cpu.min_shift()
            while pos < n:
                if used >= budget:
                    stop = STOP_BUDGET
                    break
                k = kind[pos]
                if k == KIND_SYSCALL:
                    stop = STOP_SYSCALL
                    break
                if k == KIND_SLEEP:
                    stop = STOP_SLEEP
                    break
                a = ea[pos]
                inst = k == KIND_IFETCH
                c = self.costs.access
                # NOTE: the same translate step is written out again in run_native;
                # shared through a function taking pointers (owner, c), both loops
                # ran 30 % slower (the compiler kept those variables in memory).
                if micro:
                    idx = cpu.micro_lookup(inst, a, self.shadow_pid, self.pid1, 1)
                    if idx >= 0:
                        self.n.tlb[TLB_MICRO_HITS] += 1
                        owner = cpu.hit_owner(idx)
                    else:
                        self.n.tlb[TLB_MICRO_MISSES] += 1
                        idx = cpu.probe(kbase | (a >> gsh), w, a, self.shadow_pid, self.pid1,
                                        1, &owner)
                        if idx >= 0:
                            c += self.costs.micro_tlb_refill
                            cpu.micro_fill(inst, idx)
                else:
                    idx = cpu.probe(kbase | (a >> gsh), w, a, self.shadow_pid, self.pid1, 1,
                                    &owner)
                if idx >= 0:
                    # NOTE: one branch on (the permission this kind needs) and
                    # (the entry lacks it), computed without branches: whether an
                    # access is a store or a fetch, and whether its entry has UW
                    # (a text page has none), are coin tosses, and a branch on
                    # each mispredicted enough to slow every access by half.
                    # Byte k of ``need`` is the permission kind k needs (k is
                    # 0..3 here: the markers stopped above)
                    if ((~hwe[idx].attr & <uint32_t> (need >> (k << 3)) & 0x3F)
                            and (owner >> 8) == perm_ctx):
                        # a user store through an entry without UW, or a user
                        # fetch through one without UX: a Data or Instruction
                        # Storage interrupt, which KVM delivers (Python).  NOTE:
                        # not through another VM's entry (the hypothetical
                        # direct-noflush): that access counts as an isolation
                        # violation and goes through
                        stop = STOP_ISI if k == KIND_IFETCH else STOP_DSI
                        self.stop.ea = a
                        self.stop.kind = k
                        break
                    if owner >= 0 and (owner >> 8) != self.ctx:
                        self.n.tlb[TLB_ISOLATION_VIOLATIONS] += 1
                    hits += 1
                    used += c
                    gcyc += c
                    if since < W:
                        self.repop_access[since] += 1
                    since += 1
                    pos += 1
                    continue
                self.n.tlb[TLB_HITS] += hits
                cpu.cycles[CYCLES_GUEST] += gcyc
                self.guest_run += gcyc
                hits = gcyc = 0
                # A hardware TLB miss: the interrupt empties the micro-TLBs.
                self.n.tlb[TLB_MISSES] += 1
                if since < W:
                    self.repop_miss[since] += 1
                if cpu.micro:
                    cpu.micro_flush_c()
                self.record_exit_c(EXIT_TIMEINGUEST, self.guest_run)
                self.guest_run = 0
                if self.mlog != NULL:
                    self.open_miss(cpu, a, k)
                if asm:
                    c = self.costs.asm_save
                    self.charge(cpu, STEP_SAVE, c, CYCLES_FASTPATH)
                else:
                    c = self.costs.c_full_exit
                    self.charge(cpu, STEP_FULL_EXIT, c, CYCLES_EXIT_ENTRY)
                # 1. walk the guest TLB
                gi = self.gtlb.lookup(a, self.guest_pid, NOPID, self.guest_as)
                step = walk_cost(self, gi, self.gtlb.entries)
                self.charge(cpu, STEP_WALK, step, CYCLES_FASTPATH)
                c += step
                scanned = 0 if self.hashed_walk else searched_entries(self, gi, self.gtlb.entries)
                self.n.walk_scan[scan_bucket(scanned)] += 1
                gtag = self.gtlb.e[gi].tid if gi >= 0 else (self.guest_pid if self.guest_pr else 0)
                cause = cpu.miss_cause((self.ctx << 8) | gtag, 1, a)
                self.n.causes[cause] += 1
                if self.mlog_row >= 0:
                    self.mlog[self.mlog_row].cause = cause
                    self.mlog[self.mlog_row].scanned = scanned
                if gi < 0:
                    # 2. not in the guest TLB: deliver the miss to the guest.  The
                    # delivery's MSR change (the strategy's priv switch) and the
                    # entry come after, in Python (VcpuThread.deliver), as
                    # kvmppc_core_deliver_interrupts runs before the entry
                    step = self.costs.deliver_interrupt
                    self.charge(cpu, STEP_DELIVER, step, CYCLES_EXIT_ENTRY)
                    c += step
                    used += c
                    self.stop_in_handler(a, k, 0, -1, c)
                    self.miss_outcome(OUTCOME_GUEST_MISS, False)
                    stop = STOP_GUEST_MISS
                    break
                # 3.1 the guest physical address
                shift_ = self.gtlb.e[gi].shift
                gpa = (self.gtlb.e[gi].rpn >> shift_ << shift_) | (a & ((1ULL << shift_) - 1))
                step = self.costs.asm_gpa if asm else self.costs.c_gpa
                self.charge(cpu, STEP_GPA, step, CYCLES_FASTPATH)
                c += step
                # 3.2 memslot visibility (kvm_is_visible_gfn)
                gfn = gpa >> 12
                step = self.costs.asm_memslot if asm else self.costs.c_memslot
                self.charge(cpu, STEP_MEMSLOT, step, CYCLES_FASTPATH)
                c += step
                off = gfn - <uint64_t> self.slot_base[0]
                if not (gfn >= <uint64_t> self.slot_base[0]
                        and off < <uint64_t> self.slot_npages[0]) and inst:
                    # an instruction fetch from a device: ITLBVIRT is counted before
                    # the gfn check, and KVM queues a machine check to the guest
                    # (booke.c @73e75b41); only a data access is MMIO
                    step = self.costs.deliver_interrupt
                    self.charge(cpu, STEP_DELIVER, step, CYCLES_EXIT_ENTRY)
                    c += step + self.return_to_guest(cpu)
                    used += c
                    self.record_exit_c(EXIT_ITLBVIRT, c)
                    self.miss_outcome(OUTCOME_MACHINE_CHECK, True)
                    stop = STOP_MACHINE_CHECK
                    self.stop.ea = a
                    self.stop.kind = k
                    self.stop.gpa = gpa
                    self.stop.gi = gi
                    break
                if not (gfn >= <uint64_t> self.slot_base[0]
                        and off < <uint64_t> self.slot_npages[0]):
                    used += c
                    self.stop_in_handler(a, k, gpa, gi, c)
                    self.miss_outcome(OUTCOME_MMIO, False)
                    stop = STOP_MMIO
                    break
                # 3.3 the host pfn, if known without C
                step = self.costs.asm_pfn_lookup if asm else self.costs.c_pfn_lookup
                self.charge(cpu, STEP_PFN_LOOKUP, step, CYCLES_FASTPATH)
                c += step
                pfn = self.pfn_known(gi, gfn)
                if pfn < 0:
                    used += c
                    self.stop_in_handler(a, k, gpa, gi, c)
                    self.miss_outcome(OUTCOME_DEFERRED, False)
                    stop = STOP_DEFERRED
                    break
                self.map_shadow_c(cpu, a, gi, pfn)
                kbase = context_key(self.shadow_pid, self.pid1, 1)   # PID0 may take an ID
                w = cpu.write_gen()
                gsh = cpu.min_shift()
                step = self.costs.asm_hw_write if asm else self.costs.c_hw_write
                self.charge(cpu, STEP_HW_WRITE, step, CYCLES_FASTPATH)
                c += step
                c += self.return_to_guest(cpu)
                used += c
                self.record_exit_c(EXIT_ITLBVIRT if inst else EXIT_DTLBVIRT, c)
                self.miss_outcome(OUTCOME_FILLED, True)
            self.n.tlb[TLB_HITS] += hits
            cpu.cycles[CYCLES_GUEST] += gcyc
            self.guest_run += gcyc
            self.since_load = since
        self.stop.reason = stop
        return stop, pos, used

    cdef int64_t return_to_guest(self, VirtCPU cpu) noexcept nogil:
        """Cycles to leave the handler: the asm restore and rfi, or the C path's
        register restore, plus the strategy's guest-entry TLB work (a shadow
        design runs its entry loop at every re-entry, whatever the handler)."""
        cdef int64_t step
        if self.handler == HANDLER_ASM:
            step = self.costs.asm_restore
            self.charge(cpu, STEP_RESTORE, step, CYCLES_FASTPATH)
            if self.strategy == STRATEGY_SHADOW or self.strategy == STRATEGY_SHADOW_MODIFIED:
                return step + self.entry_work(cpu)
            return step
        step = self.costs.c_restore
        self.charge(cpu, STEP_RESTORE, step, CYCLES_EXIT_ENTRY)
        return step + self.entry_work(cpu)

    cdef int64_t entry_work(self, VirtCPU cpu) noexcept nogil:
        """The strategy's TLB work on a full guest entry (shadow designs)."""
        cdef int64_t step = self.costs.entry_base + self.costs.entry_per_mod * self.n_modified
        self.charge(cpu, STEP_ENTRY_RESTORE, step, CYCLES_SAVE_RESTORE)
        if self.strategy == STRATEGY_SHADOW_MODIFIED:
            self.clear_modified_c()
        return step

    def guest_entry(self, VirtCPU cpu):
        """A full entry from Python-handled exits: charge and return the entry work."""
        return self.entry_work(cpu)

    def leave_handler(self, VirtCPU cpu):
        """The miss handler's way back to the guest, after a delivery finished in
        Python: the restore, plus a shadow design's entry loop; charged and
        profiled, the cycles returned."""
        return self.return_to_guest(cpu)

    cdef void clear_modified_c(self) noexcept nogil:
        cdef int i
        for i in range(self.mod.shape[0]):
            self.mod[i] = 0
        self.n_modified = 0

    def clear_modified(self):
        self.clear_modified_c()

    def run_native(self, VirtCPU cpu, const uint32_t[::1] ea, const uint8_t[::1] kind,
                   Py_ssize_t pos, int64_t budget, int category):
        """Run a host thread's accesses natively (AS 0, its own PID).

        A miss runs Linux's 44x handler: walk the host page table; a present
        page is written at the hardware TLB's victim (the round robin shared
        with KVM), an absent one stops for the host page-fault path.  Every
        cycle goes to ``category`` (host_tasks or qemu).  SYSCALL events are
        skipped; SLEEP stops.  Returns (stop, pos, cycles).
        """
        cdef Py_ssize_t n = ea.shape[0]
        cdef int64_t used = 0, c
        cdef int k, idx, stop = STOP_END, i
        cdef bint inst
        cdef uint64_t a
        cdef int32_t pfn
        cdef uint32_t pid = <uint32_t> self.host_pid
        cdef uint64_t kbase = context_key(pid, NOPID, 0), w
        cdef int owner = -1, gsh
        # NOTE: hits and their cycles are summed in locals and added to the
        # counters at a miss and at the end, as in run_virt: an add to memory
        # on every hit chained each access to the previous one's store.
        cdef int64_t hits = 0, hcyc = 0
        with nogil:
            w = cpu.write_gen()
            gsh = cpu.min_shift()
            while pos < n:
                if used >= budget:
                    stop = STOP_BUDGET
                    break
                k = kind[pos]
                if k == KIND_SLEEP:
                    stop = STOP_SLEEP
                    break
                if k == KIND_SYSCALL:
                    pos += 1
                    continue
                a = ea[pos]
                inst = k == KIND_IFETCH
                c = self.costs.access
                if cpu.micro:
                    idx = cpu.micro_lookup(inst, a, pid, NOPID, 0)
                    if idx >= 0:
                        self.n.tlb[TLB_MICRO_HITS] += 1
                        owner = cpu.hit_owner(idx)
                    else:
                        self.n.tlb[TLB_MICRO_MISSES] += 1
                        idx = cpu.probe(kbase | (a >> gsh), w, a, pid, NOPID, 0, &owner)
                        if idx >= 0:
                            c += self.costs.micro_tlb_refill
                            cpu.micro_fill(inst, idx)
                else:
                    idx = cpu.probe(kbase | (a >> gsh), w, a, pid, NOPID, 0, &owner)
                if idx >= 0:
                    if owner >= 0 and (owner >> 8) != self.ctx:
                        self.n.tlb[TLB_ISOLATION_VIOLATIONS] += 1
                    hits += 1
                    used += c
                    hcyc += c
                    pos += 1
                    continue
                self.n.tlb[TLB_HITS] += hits
                cpu.cycles[category] += hcyc
                hits = hcyc = 0
                self.n.tlb[TLB_MISSES] += 1
                if cpu.micro:
                    cpu.micro_flush_c()
                self.n.causes[cpu.miss_cause(self.ctx << 8, 0, a)] += 1
                pfn = self.host_pt[(a >> 12) & 0xFFFFF]
                c = self.costs.native_miss_handler
                if pfn < 0:
                    used += c
                    cpu.cycles[category] += c
                    self.stop.ea = a
                    stop = STOP_HOST_FAULT
                    break
                c += 3 * self.costs.tlbwe
                i = cpu.tlb.victim(a)
                cpu.hw_write(cpu.tlb, i, a >> 12 << 12, 12, pid, 0, <uint64_t> pfn << 12,
                             TLB_PERMS, self.ctx << 8, self.ctx)
                w = cpu.write_gen()
                gsh = cpu.min_shift()
                used += c
                cpu.cycles[category] += c
            self.n.tlb[TLB_HITS] += hits
            cpu.cycles[category] += hcyc
        self.stop.reason = stop
        return stop, pos, used

include "_streamgen.pxi"

# Access-stream generation in C (emu.workload.streams), compiled as part of
# emu._fastpath: `_fastpath.pyx` ends with `include "_streamgen.pxi"`, so this
# file uses its cimports (libc.stdint), `np` and `splitmix64`.
#
# The generator (the semantics are in the docstring of emu/workload/streams.py;
# `_np_fill` there is the same function in numpy, record for record: the
# tests' oracle, and the fallback when this extension is missing):
#
# * Random numbers are counter based.  Record p (0 <= p < block) of block b
#   takes the fixed number `draws` (cfg SG_DRAWS, 0..3 per stream) of 64-bit
#   numbers, draw k being
#       r_k = wymix(S_b + (p * draws + k + 1) * WYP0)
#   (wyrand: wymix(x) = hi ^ lo of the 128-bit product x * (x ^ WYP1)), where
#   the block's start S_b = splitmix64(seed ^ splitmix64(b)) and `seed` is the
#   stream's 64-bit base seed (from its SeedSequence).  A record's draws thus
#   depend on (seed, b, p) only: the kernel can start anywhere, and blocks are
#   independent of each other and of how `take()` splits the stream.
# * Draw roles, in order: r0 (only when the stream has events) picks the
#   event with one 64-bit comparison chain against cumulative thresholds
#   (probability x 2**64); r1 (working set, sweep; traces with events) holds
#   two 32-bit coins: low half < SG_INST_THR (probability x 2**32) makes an
#   instruction fetch, high half < SG_WRITE_THR a store (data and MMIO); r2
#   (working set) is the address: page = floor(r2 * pages / 2**64) (the high
#   word of a 64x64 multiply), offset = 8 * (r2 & (page_size/8 - 1)).  Zipf
#   uses a Walker/Vose alias table: the low word of the same multiply,
#   r2 * pages mod 2**64, is a second uniform variate, and the page stays
#   `idx` when that is below zthr[idx], else becomes zalias[idx].
# * Sequential state, carried from record to record and call to call in the
#   caller's `st` array: the position (block, record in block), the code-loop
#   word, the sweep byte offset and the read position in the trace arrays.
#   Events do not advance it (they are inserted, not substituted).

cdef extern from *:
    """
    #include <stdint.h>
    /* wyrand's increment and mixing constant (Wang Yi, wyhash v4) */
    #define SG_WYP0 0xa0761d6478bd642fULL
    #define SG_WYP1 0xe7037ed1a0b428dbULL
    /* the 128-bit product a * b as (hi, lo) */
    static inline void sg_mul128(uint64_t a, uint64_t b, uint64_t *hi, uint64_t *lo) {
    #if defined(__SIZEOF_INT128__)
        unsigned __int128 t = (unsigned __int128)a * b;
        *hi = (uint64_t)(t >> 64);
        *lo = (uint64_t)t;
    #else
        uint64_t a0 = a & 0xFFFFFFFFull, a1 = a >> 32, b0 = b & 0xFFFFFFFFull, b1 = b >> 32;
        uint64_t p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1;
        uint64_t mid = (p00 >> 32) + (p01 & 0xFFFFFFFFull) + (p10 & 0xFFFFFFFFull);
        *hi = p11 + (p01 >> 32) + (p10 >> 32) + (mid >> 32);
        *lo = a * b;
    #endif
    }
    /* floor(a * b / 2**64) */
    static inline uint64_t sg_mulhi64(uint64_t a, uint64_t b) {
        uint64_t hi, lo;
        sg_mul128(a, b, &hi, &lo);
        return hi;
    }
    /* wyrand's output for the (already incremented) counter c */
    static inline uint64_t sg_wymix(uint64_t c) {
        uint64_t hi, lo;
        sg_mul128(c, c ^ SG_WYP1, &hi, &lo);
        return hi ^ lo;
    }
    """
    uint64_t SG_WYP0
    uint64_t sg_mulhi64(uint64_t a, uint64_t b) noexcept nogil
    uint64_t sg_wymix(uint64_t c) noexcept nogil


# Patterns (cfg[SG_PATTERN]).
cdef enum:
    SG_WS_UNIFORM = 0
    SG_WS_ZIPF = 1
    SG_SWEEP = 2
    SG_TRACE = 3

# Record kinds: KIND_* of emu/codes.py (emu/_codes.pxi).  The kernel relies on
# KIND_IFETCH = 0 and KIND_STORE = KIND_LOAD + 1.
if not (KIND_IFETCH == 0 and KIND_STORE == KIND_LOAD + 1):
    raise ImportError("emu.codes.KINDS must start ifetch, load, store (the stream kernel's order)")

# Layout of the cfg array (uint64, built by streams.py from SG_CFG_FIELDS).
cdef enum:
    SG_PATTERN = 0
    SG_BLOCK = 1
    SG_SEED = 2
    SG_DRAWS = 3
    SG_PAGES = 4
    SG_PAGE_SHIFT = 5
    SG_OFF_MASK = 6
    SG_DATA_BASE = 7
    SG_CODE_BASE = 8
    SG_CODE_WORDS = 9
    SG_SWEEP_BYTES = 10
    SG_STRIDE = 11
    SG_INST_THR = 12
    SG_WRITE_THR = 13
    SG_EV_SYSCALL = 14
    SG_EV_MMIO = 15
    SG_EV_SLEEP = 16
    SG_MMIO_EA = 17
    SG_NCFG = 18

# Layout of the state array (uint64, read and updated by sg_fill).
cdef enum:
    SG_ST_BLOCK = 0
    SG_ST_POS = 1
    SG_ST_CODE = 2
    SG_ST_SWEEP = 3
    SG_ST_TRACE = 4
    SG_NST = 5

SG_CFG_FIELDS = ("pattern", "block", "seed", "draws", "pages", "page_shift", "off_mask",
                 "data_base", "code_base", "code_words", "sweep_bytes", "stride",
                 "inst_thr", "write_thr", "ev_syscall", "ev_mmio", "ev_sleep", "mmio_ea")
SG_STATE_FIELDS = ("block", "pos", "code", "sweep", "trace")
SG_PATTERNS = {"working-set/uniform": SG_WS_UNIFORM, "working-set/zipf": SG_WS_ZIPF,
               "sweep": SG_SWEEP, "trace": SG_TRACE}
SG_KINDS = {"KIND_IFETCH": KIND_IFETCH, "KIND_LOAD": KIND_LOAD, "KIND_STORE": KIND_STORE,
            "KIND_SYSCALL": KIND_SYSCALL, "KIND_SLEEP": KIND_SLEEP}


cdef struct sg_params:
    uint64_t pattern, block, seed, draws, pages, page_shift, off_mask
    uint64_t data_base, code_base, code_words, sweep_bytes, stride
    uint64_t inst_thr, write_thr, ev1, ev2, ev3, mmio_ea
    bint events
    const uint64_t *zthr
    const uint32_t *zalias
    const uint64_t *taddr
    const uint8_t *tkind
    uint64_t tlen


cdef struct sg_state:
    uint64_t block, pos, code, sweep, trace


cdef inline uint64_t sg_block_start(uint64_t seed, uint64_t b) noexcept nogil:
    """Counter of block b before its first draw (S_b above)."""
    return splitmix64(seed ^ splitmix64(b))


cdef inline void sg_event(const sg_params *P, uint64_t r0, uint64_t r1,
                          uint32_t *ea, uint8_t *kind) noexcept nogil:
    """Write the event r0 (< P.ev3) picks; r1's high half is the MMIO store coin."""
    if r0 < P.ev1:
        ea[0] = 0
        kind[0] = KIND_SYSCALL
    elif r0 < P.ev2:
        ea[0] = <uint32_t> P.mmio_ea
        kind[0] = KIND_LOAD + ((r1 >> 32) < P.write_thr)
    else:
        ea[0] = 0
        kind[0] = KIND_SLEEP


# NOTE: the loops below copy every parameter they use into a local first:
# the uint8_t stores to `kind` may alias anything as far as C is concerned,
# so fields read through P or S would be reloaded on every record, and the
# tests of `events` and `zipf` would not be loop invariant (the compiler can
# hoist invariant tests out of the loop).  Random outcomes select with masks,
# x ^ ((x ^ y) & mask), not with `if` or a ternary, which gcc compiled to a
# branch that mispredicts on a quarter of the records.

cdef Py_ssize_t sg_loop_ws(const sg_params *P, sg_state *S, uint64_t c,
                           uint32_t *ea, uint8_t *kind, Py_ssize_t m) noexcept nogil:
    """m records of a working set (uniform or Zipf) from draw counter c."""
    cdef Py_ssize_t i
    cdef uint64_t r0 = 0, r1, r2, idx, alt, code = S.code, inst
    cdef uint64_t pages = P.pages, shift = P.page_shift, omask = P.off_mask
    cdef uint64_t dbase = P.data_base, cbase = P.code_base, cwords = P.code_words
    cdef uint64_t ithr = P.inst_thr, wthr = P.write_thr
    cdef bint events = P.events, zipf = P.pattern == SG_WS_ZIPF
    cdef uint64_t ev3 = P.ev3 if events else 0
    cdef const uint64_t *zthr = P.zthr
    cdef const uint32_t *zalias = P.zalias
    cdef uint32_t data_ea, fetch_ea, mask
    for i in range(m):
        if events:
            c += SG_WYP0
            r0 = sg_wymix(c)
        c += SG_WYP0
        r1 = sg_wymix(c)
        c += SG_WYP0
        r2 = sg_wymix(c)
        if r0 < ev3:
            sg_event(P, r0, r1, ea + i, kind + i)
            continue
        idx = sg_mulhi64(r2, pages)
        if zipf:
            alt = zalias[idx]
            idx ^= (idx ^ alt) & (<uint64_t> 0 - <uint64_t> (r2 * pages >= zthr[idx]))
        data_ea = <uint32_t> (dbase + (idx << shift) + ((r2 & omask) << 3))
        fetch_ea = <uint32_t> (cbase + (code << 2))
        inst = (r1 & 0xFFFFFFFFULL) < ithr
        mask = <uint32_t> 0 - <uint32_t> inst
        ea[i] = data_ea ^ ((data_ea ^ fetch_ea) & mask)
        kind[i] = <uint8_t> ((KIND_LOAD + ((r1 >> 32) < wthr)) & ~mask)   # KIND_IFETCH is 0
        code += inst
        code = 0 if code == cwords else code
    S.code = code
    return m


# NOTE: the common stream, a uniform working set without events (every
# default guest process and host task), has a loop of its own that writes the
# same records as sg_loop_ws in about three quarters of the time: no event or
# Zipf test in the loop; each coin is the borrow of a subtraction,
# (x - thr) >> 63 with both below 2**33 (x < thr), which gcc cannot turn into
# a branch; and the fetch EA is kept as a running address whose wrap to the
# start of the code region is tested once per segment, not per record: a
# segment has at most as many records as code words are left before the wrap,
# so the fetch counter can reach the end only on its last record.
cdef Py_ssize_t sg_loop_uniform(const sg_params *P, sg_state *S, uint64_t c,
                                uint32_t *ea, uint8_t *kind, Py_ssize_t m) noexcept nogil:
    """m records of a uniform working set without events from draw counter c
    (what sg_loop_ws writes; inst_thr and write_thr at most 2**32)."""
    cdef Py_ssize_t i = 0, j, end
    cdef uint64_t r1, r2, inst, store
    cdef uint64_t pages = P.pages, shift = P.page_shift, omask = P.off_mask
    cdef uint64_t ithr = P.inst_thr, wthr = P.write_thr
    cdef uint64_t cbase = P.code_base, cend = P.code_base + (P.code_words << 2)
    cdef uint64_t fetch = cbase + (S.code << 2)
    cdef uint32_t dbase = <uint32_t> P.data_base, data_ea, fetch_ea, mask
    while i < m:
        end = m
        if ithr != 0 and <uint64_t> (m - i) > (cend - fetch) >> 2:
            end = i + <Py_ssize_t> ((cend - fetch) >> 2)
        for j in range(i, end):
            r1 = sg_wymix(c + SG_WYP0)
            c += 2 * SG_WYP0
            r2 = sg_wymix(c)
            data_ea = dbase + (<uint32_t> sg_mulhi64(r2, pages) << shift) \
                + ((<uint32_t> r2 & <uint32_t> omask) << 3)
            fetch_ea = <uint32_t> fetch
            inst = ((r1 & 0xFFFFFFFFULL) - ithr) >> 63
            store = ((r1 >> 32) - wthr) >> 63
            mask = <uint32_t> 0 - <uint32_t> inst
            ea[j] = data_ea ^ ((data_ea ^ fetch_ea) & mask)
            kind[j] = <uint8_t> ((KIND_LOAD + store) & (inst - 1))     # KIND_IFETCH is 0
            fetch += inst << 2
        i = end
        if fetch == cend:
            fetch = cbase
    S.code = (fetch - cbase) >> 2
    return m


cdef Py_ssize_t sg_loop_sweep(const sg_params *P, sg_state *S, uint64_t c,
                              uint32_t *ea, uint8_t *kind, Py_ssize_t m) noexcept nogil:
    """m records of a sweep from draw counter c."""
    cdef Py_ssize_t i
    cdef uint64_t r0 = 0, r1, code = S.code, off = S.sweep, inst
    cdef uint64_t dbase = P.data_base, cbase = P.code_base, cwords = P.code_words
    cdef uint64_t sbytes = P.sweep_bytes, stride = P.stride
    cdef uint64_t ithr = P.inst_thr, wthr = P.write_thr
    cdef bint events = P.events
    cdef uint64_t ev3 = P.ev3 if events else 0
    cdef uint32_t data_ea, fetch_ea, mask
    for i in range(m):
        if events:
            c += SG_WYP0
            r0 = sg_wymix(c)
        c += SG_WYP0
        r1 = sg_wymix(c)
        if r0 < ev3:
            sg_event(P, r0, r1, ea + i, kind + i)
            continue
        data_ea = <uint32_t> (dbase + off)
        fetch_ea = <uint32_t> (cbase + (code << 2))
        inst = (r1 & 0xFFFFFFFFULL) < ithr
        mask = <uint32_t> 0 - <uint32_t> inst
        ea[i] = data_ea ^ ((data_ea ^ fetch_ea) & mask)
        kind[i] = <uint8_t> ((KIND_LOAD + ((r1 >> 32) < wthr)) & ~mask)
        code += inst
        code = 0 if code == cwords else code
        # NOTE: the stride is pre-reduced modulo the sweep (< sbytes), so
        # one conditional subtraction wraps the offset.
        off += stride & (<uint64_t> inst - 1)
        off = off - sbytes if off >= sbytes else off
    S.code = code
    S.sweep = off
    return m


cdef Py_ssize_t sg_loop_trace(const sg_params *P, sg_state *S, uint64_t c,
                              uint32_t *ea, uint8_t *kind, Py_ssize_t m) noexcept nogil:
    """Up to m records of a trace from draw counter c: fewer when the trace
    arrays run out (at a record that needs a trace record)."""
    cdef Py_ssize_t i
    cdef uint64_t r0, r1, t = S.trace, tlen = P.tlen
    cdef bint events = P.events
    cdef uint64_t ev3 = P.ev3
    cdef const uint64_t *taddr = P.taddr
    cdef const uint8_t *tkind = P.tkind
    cdef uint32_t a
    if not events:
        # NOTE: a plain copy-and-fold loop, which the C compiler vectorises
        if m > <Py_ssize_t> (tlen - t):
            m = <Py_ssize_t> (tlen - t)
        for i in range(m):
            a = <uint32_t> taddr[t + i]
            ea[i] = a ^ (<uint32_t> (a >= 0xC0000000U) << 31)
            kind[i] = tkind[t + i]
        S.trace = t + <uint64_t> m
        return m
    for i in range(m):
        if events:
            r0 = sg_wymix(c + SG_WYP0)
            if r0 < ev3:
                r1 = sg_wymix(c + 2 * SG_WYP0)
                sg_event(P, r0, r1, ea + i, kind + i)
                c += 2 * SG_WYP0
                continue
        if t == tlen:       # out of trace: stop before this record
            S.trace = t
            return i
        if events:
            c += 2 * SG_WYP0
        # fold: the low 32 bits; at or above 0xC0000000 (bits 31 and 30 set)
        # clear bit 31.  NOTE: as an xor of the comparison, without a branch.
        a = <uint32_t> taddr[t]
        ea[i] = a ^ (<uint32_t> (a >= 0xC0000000U) << 31)
        kind[i] = tkind[t]
        t += 1
    S.trace = t
    return m


cdef Py_ssize_t sg_run(const sg_params *P, sg_state *S, uint32_t *ea, uint8_t *kind,
                       Py_ssize_t n) noexcept nogil:
    """Generate up to n records block segment by block segment."""
    cdef Py_ssize_t done = 0, m, got
    cdef uint64_t c
    while done < n:
        if S.pos >= P.block:
            S.block += 1
            S.pos = 0
        m = <Py_ssize_t> (P.block - S.pos)
        if m > n - done:
            m = n - done
        c = sg_block_start(P.seed, S.block) + S.pos * P.draws * SG_WYP0
        if P.pattern == SG_SWEEP:
            got = sg_loop_sweep(P, S, c, ea + done, kind + done, m)
        elif P.pattern == SG_TRACE:
            got = sg_loop_trace(P, S, c, ea + done, kind + done, m)
        elif P.pattern == SG_WS_UNIFORM and not P.events and P.inst_thr <= 1ULL << 32 \
                and P.write_thr <= 1ULL << 32:
            got = sg_loop_uniform(P, S, c, ea + done, kind + done, m)
        else:
            got = sg_loop_ws(P, S, c, ea + done, kind + done, m)
        S.pos += <uint64_t> got
        done += got
        if got < m:
            break
    return done


def sg_fill(const uint64_t[::1] cfg, const uint64_t[::1] zthr, const uint32_t[::1] zalias,
            uint64_t[::1] st, uint32_t[::1] ea, uint8_t[::1] kind, Py_ssize_t off, Py_ssize_t n,
            const uint64_t[::1] taddr, const uint8_t[::1] tkind):
    """Write the next records of a stream into ``ea[off:off+n]``,
    ``kind[off:off+n]`` and return how many were written: ``n``, or fewer for
    a trace whose arrays ``taddr``/``tkind`` (raw trace addresses and kinds,
    read from ``st[trace]``) ran out.  ``cfg`` is laid out as
    ``SG_CFG_FIELDS``, ``st`` as ``SG_STATE_FIELDS`` (updated in place);
    ``zthr``/``zalias`` are the Zipf alias table (:func:`sg_alias_build`) or
    unused.  See the comment at the top of ``emu/_streamgen.pxi``."""
    cdef sg_params P
    cdef sg_state S
    cdef Py_ssize_t done
    if cfg.shape[0] != SG_NCFG or st.shape[0] != SG_NST:
        raise ValueError(f"sg_fill: cfg must have {SG_NCFG} and st {SG_NST} entries")
    if off < 0 or n < 0 or off + n > ea.shape[0] or off + n > kind.shape[0]:
        raise ValueError(f"sg_fill: records {off}..{off + n} do not fit the output arrays")
    P.pattern = cfg[SG_PATTERN]
    P.block = cfg[SG_BLOCK]
    P.seed = cfg[SG_SEED]
    P.draws = cfg[SG_DRAWS]
    P.pages = cfg[SG_PAGES]
    P.page_shift = cfg[SG_PAGE_SHIFT]
    P.off_mask = cfg[SG_OFF_MASK]
    P.data_base = cfg[SG_DATA_BASE]
    P.code_base = cfg[SG_CODE_BASE]
    P.code_words = cfg[SG_CODE_WORDS]
    P.sweep_bytes = cfg[SG_SWEEP_BYTES]
    P.stride = cfg[SG_STRIDE]
    P.inst_thr = cfg[SG_INST_THR]
    P.write_thr = cfg[SG_WRITE_THR]
    P.ev1 = cfg[SG_EV_SYSCALL]
    P.ev2 = cfg[SG_EV_MMIO]
    P.ev3 = cfg[SG_EV_SLEEP]
    P.mmio_ea = cfg[SG_MMIO_EA]
    P.events = P.ev3 != 0
    if P.pattern > SG_TRACE or P.block == 0 or P.pages == 0 or P.code_words == 0 \
            or P.sweep_bytes == 0 or P.stride >= P.sweep_bytes or not P.ev1 <= P.ev2 <= P.ev3 \
            or P.draws != <uint64_t> P.events + (2 if P.pattern <= SG_WS_ZIPF else
                                                 1 if P.pattern == SG_SWEEP else P.events):
        raise ValueError("sg_fill: inconsistent cfg")
    P.zthr = NULL
    P.zalias = NULL
    P.taddr = NULL
    P.tkind = NULL
    P.tlen = 0
    if P.pattern == SG_WS_ZIPF:
        if zthr.shape[0] != <Py_ssize_t> P.pages or zalias.shape[0] != <Py_ssize_t> P.pages:
            raise ValueError("sg_fill: the Zipf table must have one entry per page")
        P.zthr = &zthr[0]
        P.zalias = &zalias[0]
    S.block = st[SG_ST_BLOCK]
    S.pos = st[SG_ST_POS]
    S.code = st[SG_ST_CODE]
    S.sweep = st[SG_ST_SWEEP]
    S.trace = st[SG_ST_TRACE]
    if P.pattern == SG_TRACE:
        if taddr.shape[0] != tkind.shape[0] or S.trace > <uint64_t> taddr.shape[0]:
            raise ValueError("sg_fill: bad trace arrays or trace position")
        P.tlen = <uint64_t> taddr.shape[0]
        if P.tlen:
            P.taddr = &taddr[0]
            P.tkind = &tkind[0]
    if S.code >= P.code_words or S.sweep >= P.sweep_bytes or S.pos > P.block:
        raise ValueError("sg_fill: state out of range")
    if n == 0:
        return 0
    cdef uint32_t *ea_p = &ea[off]
    cdef uint8_t *kind_p = &kind[off]
    with nogil:
        done = sg_run(&P, &S, ea_p, kind_p, n)
    st[SG_ST_BLOCK] = S.block
    st[SG_ST_POS] = S.pos
    st[SG_ST_CODE] = S.code
    st[SG_ST_SWEEP] = S.sweep
    st[SG_ST_TRACE] = S.trace
    return done


def sg_alias_build(const double[::1] q, uint64_t[::1] thr, uint32_t[::1] alias):
    """Vose's alias table for the weights ``q`` scaled to mean 1
    (``q = w * len(w) / sum(w)``): ``thr[i]`` (the probability of keeping
    ``i``, x 2**64, 2**64-1 for 1) and ``alias[i]``.  Same float operations in
    the same order as ``streams._alias_build_py``, so the tables are equal."""
    cdef Py_ssize_t n = q.shape[0], ns = 0, nl = 0, i, l, g
    cdef double p
    if thr.shape[0] != n or alias.shape[0] != n or n == 0:
        raise ValueError("sg_alias_build: q, thr and alias must have the same non-zero length")
    work_arr = np.array(q, dtype=np.float64)
    small_arr = np.empty(n, dtype=np.int64)
    large_arr = np.empty(n, dtype=np.int64)
    cdef double[::1] w = work_arr
    cdef int64_t[::1] small = small_arr
    cdef int64_t[::1] large = large_arr
    with nogil:
        for i in range(n):
            alias[i] = <uint32_t> i
            thr[i] = 0xFFFFFFFFFFFFFFFFULL
            if w[i] < 1.0:
                small[ns] = i
                ns += 1
            else:
                large[nl] = i
                nl += 1
        while ns > 0 and nl > 0:
            ns -= 1
            l = small[ns]
            nl -= 1
            g = large[nl]
            p = w[l]
            thr[l] = 0 if p <= 0.0 else <uint64_t> (p * 18446744073709551616.0)
            alias[l] = <uint32_t> g
            w[g] = (w[g] + w[l]) - 1.0
            if w[g] < 1.0:
                small[ns] = g
                ns += 1
            else:
                large[nl] = g
                nl += 1
    # entries left on either list keep themselves (thr 2**64-1): set above

/* The hit scan of emu tlb, sixteen records a step, on x86-64 CPUs with AVX2.
 *
 * emu_hitscan consumes records from r while each is one that PlainTLB's
 * scalar scan (scan_hits in _fastpath.pyx) would consume: a kind of 0..3, an
 * access that stays on its page (size 1..2**32-1, not wrapping past 2**64),
 * and a page the resident filter holds.  It returns the first record that is
 * not, or, when fewer than EMU_HITSCAN_GROUP records are left, the first of
 * those (the scalar scan takes them).  For LRU it stores exactly the times
 * the scalar scan would: the k-th record consumed stores clock + k at its
 * filter place, in record order.
 *
 * The checks are those of the scalar scan, vectorized: an access of size s at
 * a stays on its page exactly when s != 0 and (a + s - 1) >> shift equals
 * a >> shift (a wrap past 2**64 lands on another page, so it is caught too).
 * One branch decides whether a step's kinds and sizes are all good.  The
 * filter is then read with one scalar load per record, which on the CPUs
 * measured is faster than a vector gather, each record a branch that is
 * taken only at the record the filter does not hold (a miss, mostly), where
 * the scan ends.  In a step that holds a record of a bad kind or size, every
 * record is checked at once and the first that fails ends the scan.
 *
 * The CPU is asked once (emu_cpu_has_avx2, _cpu.h); elsewhere, or with another
 * compiler, the scans consume nothing and the scalar scan does all.
 *
 * emu_argmin_at finds LRU's victim: the way whose last use is least;
 * emu_least_at_avx2 the few ways used longest ago, in order, and
 * emu_least_near_avx2 the same, faster, while their last uses are recent.
 */
#ifndef EMU_HITSCAN_H
#define EMU_HITSCAN_H

#define EMU_HITSCAN_GROUP 16     /* records per step of the vector scan */

#include <stdint.h>

#include "_cpu.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

/* Records i..i+3: their page numbers stored at vv, and a mask whose lane is
 * all ones where the access stays on its page: a size not 0, and its last
 * byte, a + s - 1, on the page of its first (a wrap past 2**64 lands on
 * another page).  Without sizes every access is one byte.  Used both by a
 * step and by the search for the record that ended it. */
__attribute__((target("avx2"), always_inline)) static inline __m256i
emu_pages4(const uint64_t *addr, const uint32_t *size, int64_t i, __m128i sh, uint64_t *vv,
           const int sized)
{
    const __m256i a = _mm256_loadu_si256((const __m256i *) (addr + i)),
                  p = _mm256_srl_epi64(a, sh);
    __m256i s, e;
    _mm256_store_si256((__m256i *) vv, p);
    if (!sized)
        return _mm256_set1_epi64x(-1);
    s = _mm256_cvtepu32_epi64(_mm_loadu_si128((const __m128i *) (size + i)));
    e = _mm256_srl_epi64(_mm256_add_epi64(a, _mm256_sub_epi64(s, _mm256_set1_epi64x(1))), sh);
    return _mm256_andnot_si256(_mm256_cmpeq_epi64(s, _mm256_setzero_si256()),
                               _mm256_cmpeq_epi64(e, p));
}

__attribute__((target("avx2"), always_inline)) static inline int64_t
emu_hitscan_body(const uint64_t *addr, const uint8_t *kind, const uint32_t *size,
                 int64_t r, int64_t n, int shift, const uint64_t *fvpn, uint64_t fmask,
                 uint64_t *fstamp, uint64_t *clock_, const int lru, const int sized)
{
    const __m256i ones = _mm256_set1_epi64x(-1);
    const __m128i sh = _mm_cvtsi32_si128(shift), kinds_bad = _mm_set1_epi8((char) 0xFC);
    uint64_t vv[EMU_HITSCAN_GROUP] __attribute__((aligned(32)));
    uint64_t clock = *clock_, bad, v;
    __m256i on;
    int j, q;
    while (r + EMU_HITSCAN_GROUP <= n) {
        if (!_mm_testz_si128(_mm_loadu_si128((const __m128i *) (kind + r)), kinds_bad))
            goto lanes;
        on = ones;
        for (q = 0; q < EMU_HITSCAN_GROUP; q += 4)
            on = _mm256_and_si256(on, emu_pages4(addr, size, r + q, sh, vv + q, sized));
        if (sized && !_mm256_testc_si256(on, ones))
            goto lanes;
        /* NOTE: every kind and size is good: record by record, a hit stores
         * its time at once, while its filter place is in a register, and the
         * first record the filter does not hold ends the scan.  Stores after a
         * check of the whole step would take the places again (from the stack,
         * or out of the vectors), and cost LRU a third of its speed. */
        for (j = 0; j < EMU_HITSCAN_GROUP; j++) {
            v = vv[j];
            if (fvpn[v & fmask] != v)
                goto missed;
            if (lru)
                fstamp[v & fmask] = clock + 1 + (uint64_t) j;
        }
        if (lru)
            clock += EMU_HITSCAN_GROUP;
        r += EMU_HITSCAN_GROUP;
    }
    *clock_ = clock;
    return r;
missed:
    /* record r + j is not in the filter; those before it were hits and have
     * stored their times */
    if (lru)
        clock += (uint64_t) j;
    *clock_ = clock;
    return r + j;
lanes:
    /* the step holds a record that is not a one-page hit: the first such,
     * found for all its records at once (a loop that stopped at it would
     * mispredict its exit at every miss) */
    bad = (uint64_t) (_mm_movemask_epi8(_mm_cmpeq_epi8(
              _mm_and_si128(_mm_loadu_si128((const __m128i *) (kind + r)), kinds_bad),
              _mm_setzero_si128())) ^ 0xFFFF);
    for (q = 0; q < EMU_HITSCAN_GROUP; q += 4) {
        on = emu_pages4(addr, size, r + q, sh, vv + q, sized);
        bad |= (uint64_t) (_mm256_movemask_pd(_mm256_castsi256_pd(on)) ^ 0xF) << q;
    }
    for (j = 0; j < EMU_HITSCAN_GROUP; j++) {
        v = vv[j];
        bad |= (uint64_t) (fvpn[v & fmask] != v) << j;
    }
    j = __builtin_ctzll(bad);
    if (lru) {
        for (q = 0; q < j; q++)
            fstamp[vv[q] & fmask] = clock + 1 + (uint64_t) q;
        clock += (uint64_t) j;
    }
    *clock_ = clock;
    return r + j;
}

#define EMU_HITSCAN(NAME, LRU, SIZED)                                                   \
    __attribute__((target("avx2"))) static int64_t NAME(                                \
        const uint64_t *addr, const uint8_t *kind, const uint32_t *size, int64_t r,      \
        int64_t n, int shift, const uint64_t *fvpn, uint64_t fmask, uint64_t *fstamp,    \
        uint64_t *clock)                                                                  \
    {                                                                                     \
        return emu_hitscan_body(addr, kind, size, r, n, shift, fvpn, fmask, fstamp,     \
                                 clock, LRU, SIZED);                                      \
    }

#else

#define EMU_HITSCAN(NAME, LRU, SIZED)                                                   \
    static int64_t NAME(const uint64_t *addr, const uint8_t *kind, const uint32_t *size, \
                        int64_t r, int64_t n, int shift, const uint64_t *fvpn,           \
                        uint64_t fmask, uint64_t *fstamp, uint64_t *clock)               \
    {                                                                                     \
        return r;                                                                         \
    }

#endif

EMU_HITSCAN(emu_hitscan, 0, 0)
EMU_HITSCAN(emu_hitscan_sized, 0, 1)
EMU_HITSCAN(emu_hitscan_lru, 1, 0)
EMU_HITSCAN(emu_hitscan_lru_sized, 1, 1)

/* The index i in 0..n-1 (n >= 1) of the least t[at[i]]: the first if several
 * are least.  With vector set (AVX2 known present), n a multiple of 8 and at
 * most 64: the n values gathered into one buffer, their minimum taken four
 * lanes at a time (unsigned, by flipping the sign bit), then its first place. */
static int emu_argmin_at_scalar(const uint64_t *t, const int32_t *at, int n)
{
    uint64_t m = t[at[0]], x;
    int i, best = 0;
    for (i = 1; i < n; i++) {
        x = t[at[i]];
        if (x < m) {
            m = x;
            best = i;
        }
    }
    return best;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
/* The lane-wise least of two vectors of signed 64-bit integers. */
__attribute__((target("avx2"), always_inline)) static inline __m256i
emu_min_epi64(__m256i a, __m256i b)
{
    return _mm256_blendv_epi8(a, b, _mm256_cmpgt_epi64(a, b));
}

/* The least of the four lanes of m, in every lane. */
__attribute__((target("avx2"), always_inline)) static inline __m256i
emu_hmin_epi64(__m256i m)
{
    m = emu_min_epi64(m, _mm256_permute4x64_epi64(m, 0x4E));
    return emu_min_epi64(m, _mm256_permute4x64_epi64(m, 0xB1));
}

__attribute__((target("avx2"))) static int emu_argmin_at_avx2(const uint64_t *t,
                                                               const int32_t *at, int n)
{
    const uint64_t flip = 0x8000000000000000ULL;
    uint64_t x[64] __attribute__((aligned(32)));
    __m256i m0, m1;
    uint64_t places = 0;
    int i;
    for (i = 0; i < n; i++)
        x[i] = t[at[i]] ^ flip;
    m0 = _mm256_load_si256((const __m256i *) x);
    m1 = _mm256_load_si256((const __m256i *) (x + 4));
    for (i = 8; i < n; i += 8) {
        m0 = emu_min_epi64(m0, _mm256_load_si256((const __m256i *) (x + i)));
        m1 = emu_min_epi64(m1, _mm256_load_si256((const __m256i *) (x + i + 4)));
    }
    m0 = emu_hmin_epi64(emu_min_epi64(m0, m1));
    /* NOTE: every place of the minimum in one mask, then its first: a loop
     * that stopped at the first would mispredict its exit at every call */
    for (i = 0; i < n; i += 4)
        places |= (uint64_t) _mm256_movemask_pd(_mm256_castsi256_pd(
                      _mm256_cmpeq_epi64(_mm256_load_si256((const __m256i *) (x + i)), m0)))
                  << i;
    return __builtin_ctzll(places);
}
#else
static int emu_argmin_at_avx2(const uint64_t *t, const int32_t *at, int n)
{
    return emu_argmin_at_scalar(t, at, n);
}
#endif

static int emu_argmin_at(const uint64_t *t, const int32_t *at, int n, int vector)
{
    if (vector && n % 8 == 0 && n <= 64)
        return emu_argmin_at_avx2(t, at, n);
    return emu_argmin_at_scalar(t, at, n);
}

/* The k least of the n values t[at[i]], in increasing order, each given as
 * t[at[i]] << 6 | i (so its place comes with it) in out[0..k-1].  Requires
 * AVX2, n a multiple of 8 and at most 64, k <= n, and every value below
 * 2**57 (the keys are then distinct, positive as signed 64-bit integers, and
 * ordered as the values).  The keys are held in registers; each of the k
 * rounds takes their minimum four lanes at a time, then sets the lanes equal
 * to it past every other. */
#define EMU_KEY_MAX 0x7FFFFFFFFFFFFFFFLL
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
__attribute__((target("avx2"))) static void emu_least_at_avx2(const uint64_t *t,
                                                              const int32_t *at, int n,
                                                              int k, uint64_t *out)
{
    uint64_t x[64] __attribute__((aligned(32)));
    __m256i v[16], m, top = _mm256_set1_epi64x(EMU_KEY_MAX);
    int i, j, q = n / 4;
    for (i = 0; i < n; i++)
        x[i] = t[at[i]] << 6 | (uint64_t) i;
    for (; i < 64; i++)
        x[i] = (uint64_t) EMU_KEY_MAX;
    for (i = 0; i < 16; i++)
        v[i] = _mm256_load_si256((const __m256i *) (x + 4 * i));
    for (j = 0; j < k; j++) {
        __m256i a[8];
        for (i = 0; i < 8; i++)
            a[i] = emu_min_epi64(v[i], v[i + 8]);
        for (i = 0; i < 4; i++)
            a[i] = emu_min_epi64(a[i], a[i + 4]);
        for (i = 0; i < 2; i++)
            a[i] = emu_min_epi64(a[i], a[i + 2]);
        m = emu_hmin_epi64(emu_min_epi64(a[0], a[1]));
        out[j] = (uint64_t) _mm256_extract_epi64(m, 0);
        for (i = 0; i < q; i++)
            v[i] = _mm256_blendv_epi8(v[i], top, _mm256_cmpeq_epi64(v[i], m));
    }
}

/* emu_least_at_avx2's answer, when every value lies within 2**25 below
 * ``now`` (at least each of them): keys in 32 bits, (value - base) << 6 | i
 * with base = now - (2**25 - 1), all below 2**31, so that a way found is set
 * to all ones, above every key, and eight keys are compared in one step
 * (against four of 64 bits, each a compare and a blend).  Returns 0 and
 * writes nothing when some value lies farther below ``now``. */
#define EMU_NEAR_BITS 25
__attribute__((target("avx2"))) static int emu_least_near_avx2(const uint64_t *t,
                                                               const int32_t *at, int n,
                                                               int k, uint64_t now,
                                                               uint64_t *out)
{
    const uint64_t span = UINT64_C(1) << EMU_NEAR_BITS;
    const uint64_t base = now >= span ? now - (span - 1) : 0;
    const __m256i four = _mm256_set1_epi64x(4), found = _mm256_set1_epi32(-1),
                  low = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
    uint64_t x[64] __attribute__((aligned(32))), far = 0;
    __m256i v[8], m, a, b, way = _mm256_setr_epi64x(0, 1, 2, 3);
    uint32_t key;
    int i, j, q = n / 8;
    for (i = 0; i < n; i++) {
        x[i] = t[at[i]] - base;         /* a time below base wraps, far past 2**25 */
        far |= x[i];
    }
    if (far >> EMU_NEAR_BITS)
        return 0;
    for (i = 0; i < 8; i++) {
        if (i >= q) {
            v[i] = found;               /* no ways here */
            continue;
        }
        a = _mm256_slli_epi64(_mm256_load_si256((const __m256i *) (x + 8 * i)), 6);
        a = _mm256_or_si256(a, way);
        way = _mm256_add_epi64(way, four);
        b = _mm256_slli_epi64(_mm256_load_si256((const __m256i *) (x + 8 * i + 4)), 6);
        b = _mm256_or_si256(b, way);
        way = _mm256_add_epi64(way, four);
        /* the low halves of a's lanes then of b's: keys 8i..8i+7 in order */
        v[i] = _mm256_permute2x128_si256(_mm256_permutevar8x32_epi32(a, low),
                                         _mm256_permutevar8x32_epi32(b, low), 0x20);
    }
    for (j = 0; j < k; j++) {
        m = _mm256_min_epu32(_mm256_min_epu32(_mm256_min_epu32(v[0], v[1]),
                                              _mm256_min_epu32(v[2], v[3])),
                             _mm256_min_epu32(_mm256_min_epu32(v[4], v[5]),
                                              _mm256_min_epu32(v[6], v[7])));
        m = _mm256_min_epu32(m, _mm256_permute2x128_si256(m, m, 1));
        m = _mm256_min_epu32(m, _mm256_shuffle_epi32(m, 0x4E));
        m = _mm256_min_epu32(m, _mm256_shuffle_epi32(m, 0xB1));      /* in every lane */
        key = (uint32_t) _mm256_cvtsi256_si32(m);
        out[j] = (base + (key >> 6)) << 6 | (key & 63);
        for (i = 0; i < q; i++)
            v[i] = _mm256_or_si256(v[i], _mm256_cmpeq_epi32(v[i], m));
    }
    return 1;
}
#else
/* never called: without AVX2 the vector paths are off (emu_cpu_has_avx2) */
static void emu_least_at_avx2(const uint64_t *t, const int32_t *at, int n, int k,
                              uint64_t *out)
{
}
static int emu_least_near_avx2(const uint64_t *t, const int32_t *at, int n, int k,
                               uint64_t now, uint64_t *out)
{
    return 0;
}
#endif

#endif

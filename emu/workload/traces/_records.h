/* The split of packed trace records, eight at a time, on x86-64 CPUs with AVX2.
 *
 * A packed record is 13 bytes: addr (8, little-endian) at byte 0, kind (1) at
 * byte 8, size (4) at byte 9, what emu writes and numpy's packed dtype gives.
 * emu_split13 copies the fields of the first n8 records (n8 a multiple of 8)
 * into the three arrays, and folds their largest kind and least and largest
 * size into *kmax, *smin and *smax, as the scalar loop of _records.pyx does
 * record by record.
 *
 * Each record is read with one 16-byte load at its start (its 13 bytes and 3
 * of the next), so the caller guarantees 13 * n8 + 3 bytes.  Two records make
 * one 256-bit vector, one per 128-bit lane; byte shuffles within the lanes
 * and one permutation across them gather each field of eight records into
 * one store: two of addr, one of size, 8 bytes of kind.
 *
 * The CPU is asked once (emu_cpu_has_avx2, _cpu.h); elsewhere, or with another
 * compiler, emu_split13 copies nothing and the scalar loop does all.
 */
#ifndef EMU_RECORDS_H
#define EMU_RECORDS_H

#include <stdint.h>

#include "_cpu.h"

/* Whether every access [a, a + s) of the n records lies within one page of
 * pmask + 1 bytes (a size of 0 never does): with x = s - 1 (all ones for s =
 * 0), the access stays on its page exactly when neither x nor (a & pmask) + x
 * has a bit above pmask.  Adds, ands and ors only, so the compiler takes
 * several records a step; built twice, for AVX2 and for any x86-64 (or any
 * CPU), and chosen once by emu_cpu_has_avx2. */
__attribute__((always_inline)) static inline int
emu_one_page_each_body(const uint64_t *a, const uint32_t *s, int64_t n, uint64_t pmask)
{
    uint64_t bad = 0, x;
    int64_t i;
    for (i = 0; i < n; i++) {
        x = (uint64_t) s[i] - 1;
        bad |= x | ((a[i] & pmask) + x);
    }
    return (bad & ~pmask) == 0;
}

static int emu_one_page_each(const uint64_t *a, const uint32_t *s, int64_t n, uint64_t pmask)
{
    return emu_one_page_each_body(a, s, n, pmask);
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

/* a shuffle mask taking the 4 bytes at 9..12 of each lane to bytes 4*d .. 4*d+3 */
#define EMU_SIZE_TO(d) _mm256_setr_epi8(                                               \
    d == 0 ? 9 : -1, d == 0 ? 10 : -1, d == 0 ? 11 : -1, d == 0 ? 12 : -1,              \
    d == 1 ? 9 : -1, d == 1 ? 10 : -1, d == 1 ? 11 : -1, d == 1 ? 12 : -1,              \
    d == 2 ? 9 : -1, d == 2 ? 10 : -1, d == 2 ? 11 : -1, d == 2 ? 12 : -1,              \
    d == 3 ? 9 : -1, d == 3 ? 10 : -1, d == 3 ? 11 : -1, d == 3 ? 12 : -1,              \
    d == 0 ? 9 : -1, d == 0 ? 10 : -1, d == 0 ? 11 : -1, d == 0 ? 12 : -1,              \
    d == 1 ? 9 : -1, d == 1 ? 10 : -1, d == 1 ? 11 : -1, d == 1 ? 12 : -1,              \
    d == 2 ? 9 : -1, d == 2 ? 10 : -1, d == 2 ? 11 : -1, d == 2 ? 12 : -1,              \
    d == 3 ? 9 : -1, d == 3 ? 10 : -1, d == 3 ? 11 : -1, d == 3 ? 12 : -1)

/* a shuffle mask taking byte 8 of each lane to byte b */
#define EMU_KIND_TO(b) _mm256_setr_epi8(                                               \
    b == 0 ? 8 : -1, b == 1 ? 8 : -1, b == 2 ? 8 : -1, b == 3 ? 8 : -1,                 \
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,                                     \
    b == 0 ? 8 : -1, b == 1 ? 8 : -1, b == 2 ? 8 : -1, b == 3 ? 8 : -1,                 \
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1)

__attribute__((target("avx2"))) static int
emu_one_page_each_avx2(const uint64_t *a, const uint32_t *s, int64_t n, uint64_t pmask)
{
    return emu_one_page_each_body(a, s, n, pmask);
}

__attribute__((target("avx2"))) static void
emu_split13(const uint8_t *p, int64_t n8, uint64_t *addr, uint8_t *kind, uint32_t *size,
            uint8_t *kmax, uint32_t *smin, uint32_t *smax)
{
    const __m256i s0 = EMU_SIZE_TO(0), s1 = EMU_SIZE_TO(1), s2 = EMU_SIZE_TO(2),
                  s3 = EMU_SIZE_TO(3), k0 = EMU_KIND_TO(0), k1 = EMU_KIND_TO(1),
                  k2 = EMU_KIND_TO(2), k3 = EMU_KIND_TO(3);
    /* lane order (i, i+2, i+4, i+6 | i+1, i+3, i+5, i+7) to record order */
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    __m256i y01, y23, y45, y67, sz, kd, vsmin = _mm256_set1_epi32(-1), vsmax = _mm256_setzero_si256();
    __m128i k8, vkmax = _mm_setzero_si128();
    uint32_t lo[8] __attribute__((aligned(32))), hi[8] __attribute__((aligned(32)));
    uint8_t kk[16] __attribute__((aligned(16)));
    int64_t i;
    int j;
    for (i = 0; i < n8; i += 8, p += 8 * 13) {
        /* records i and i+1 in the two lanes of y01, and so on */
        y01 = _mm256_loadu2_m128i((const __m128i *) (p + 13), (const __m128i *) p);
        y23 = _mm256_loadu2_m128i((const __m128i *) (p + 39), (const __m128i *) (p + 26));
        y45 = _mm256_loadu2_m128i((const __m128i *) (p + 65), (const __m128i *) (p + 52));
        y67 = _mm256_loadu2_m128i((const __m128i *) (p + 91), (const __m128i *) (p + 78));
        _mm256_storeu_si256((__m256i *) (addr + i),
                            _mm256_permute4x64_epi64(_mm256_unpacklo_epi64(y01, y23), 0xD8));
        _mm256_storeu_si256((__m256i *) (addr + i + 4),
                            _mm256_permute4x64_epi64(_mm256_unpacklo_epi64(y45, y67), 0xD8));
        sz = _mm256_or_si256(
            _mm256_or_si256(_mm256_shuffle_epi8(y01, s0), _mm256_shuffle_epi8(y23, s1)),
            _mm256_or_si256(_mm256_shuffle_epi8(y45, s2), _mm256_shuffle_epi8(y67, s3)));
        sz = _mm256_permutevar8x32_epi32(sz, order);
        _mm256_storeu_si256((__m256i *) (size + i), sz);
        vsmin = _mm256_min_epu32(vsmin, sz);
        vsmax = _mm256_max_epu32(vsmax, sz);
        kd = _mm256_or_si256(
            _mm256_or_si256(_mm256_shuffle_epi8(y01, k0), _mm256_shuffle_epi8(y23, k1)),
            _mm256_or_si256(_mm256_shuffle_epi8(y45, k2), _mm256_shuffle_epi8(y67, k3)));
        k8 = _mm_unpacklo_epi8(_mm256_castsi256_si128(kd), _mm256_extracti128_si256(kd, 1));
        _mm_storel_epi64((__m128i *) (kind + i), k8);
        vkmax = _mm_max_epu8(vkmax, k8);
    }
    _mm256_store_si256((__m256i *) lo, vsmin);
    _mm256_store_si256((__m256i *) hi, vsmax);
    _mm_store_si128((__m128i *) kk, vkmax);
    for (j = 0; j < 8; j++) {
        *smin = lo[j] < *smin ? lo[j] : *smin;
        *smax = hi[j] > *smax ? hi[j] : *smax;
        *kmax = kk[j] > *kmax ? kk[j] : *kmax;
    }
}

#else

static int emu_one_page_each_avx2(const uint64_t *a, const uint32_t *s, int64_t n,
                                  uint64_t pmask)
{
    return emu_one_page_each(a, s, n, pmask);
}

static void emu_split13(const uint8_t *p, int64_t n8, uint64_t *addr, uint8_t *kind,
                        uint32_t *size, uint8_t *kmax, uint32_t *smin, uint32_t *smax)
{
}

#endif

#endif

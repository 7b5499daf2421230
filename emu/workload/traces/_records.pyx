# cython: language_level=3
"""The fields of a structured ``.npy`` window, split in one pass, compiled.

numpy copies a field of a structured array out one field at a time, each
a pass over the whole window; here the three fields of every record are
copied in one pass over it (:mod:`emu.workload.traces.npy` uses it when the
fields already have the trace's dtypes, and numpy's copies otherwise).
Packed 13-byte records (what emu writes) are split eight at a time with
AVX2 where the CPU has it (``_records.h``), the rest record by record.
"""

from libc.stdint cimport int64_t, uint8_t, uint32_t, uint64_t
from libc.string cimport memcpy

cdef extern from "_records.h" nogil:
    int emu_cpu_has_avx2()
    void emu_split13(const uint8_t *p, int64_t n8, uint64_t *addr, uint8_t *kind,
                     uint32_t *size, uint8_t *kmax, uint32_t *smin, uint32_t *smax)
    int emu_one_page_each(const uint64_t *a, const uint32_t *s, int64_t n, uint64_t pmask)
    int emu_one_page_each_avx2(const uint64_t *a, const uint32_t *s, int64_t n, uint64_t pmask)

cdef bint HAVE_AVX2 = emu_cpu_has_avx2() != 0

# whether packed records are split eight at a time (the CPU's answer, which
# set_vector_split can turn off, so that tests compare the two paths)
cdef bint VECTOR_SPLIT = HAVE_AVX2


def set_vector_split(bint on):
    """Split packed records eight at a time where the CPU can (True) or
    never; returns the previous setting.  The arrays are the same either way."""
    global VECTOR_SPLIT
    cdef bint was = VECTOR_SPLIT
    VECTOR_SPLIT = on and HAVE_AVX2
    return was


def split_fields(const uint8_t[::1] records, Py_ssize_t itemsize, Py_ssize_t addr_at,
                 uint64_t[::1] addr, Py_ssize_t kind_at=-1, uint8_t[::1] kind=None,
                 Py_ssize_t size_at=-1, uint32_t[::1] size=None, uint8_t kind_max=3,
                 uint32_t size_max=65536):
    """Copy field ``addr`` (8 bytes at byte ``addr_at`` of each record of
    ``itemsize`` bytes, in the machine's byte order), and ``kind`` (1 byte
    at ``kind_at``) and ``size`` (4 bytes at ``size_at``) unless ``None``,
    of the first ``len(addr)`` records of ``records`` into the arrays.
    Returns whether every kind copied is at most ``kind_max`` and every size
    in ``1..size_max`` (true when the field is absent)."""
    cdef Py_ssize_t n = addr.shape[0], i = 0, n8 = 0
    cdef uint8_t kmax = 0, kv
    cdef uint32_t smin = 0xFFFFFFFF, smax = 0, sv
    cdef const uint8_t *p
    if n * itemsize > records.shape[0] or (kind is not None and kind.shape[0] < n) \
            or (size is not None and size.shape[0] < n):
        raise ValueError("split_fields: arrays shorter than the records")
    if n == 0:
        return True
    p = &records[0]
    cdef uint64_t *a = &addr[0]
    cdef uint8_t *k = &kind[0] if kind is not None else NULL
    cdef uint32_t *s = &size[0] if size is not None else NULL
    if (VECTOR_SPLIT and k != NULL and s != NULL and itemsize == 13 and addr_at == 0
            and kind_at == 8 and size_at == 9):
        # whole groups of eight whose last 16-byte load stays in the buffer
        n8 = max(0, min(n, (records.shape[0] - 3) // 13)) // 8 * 8
    with nogil:
        if n8 > 0:
            emu_split13(p, n8, a, k, s, &kmax, &smin, &smax)
            p += n8 * 13
        for i in range(n8, n):
            memcpy(&a[i], p + addr_at, 8)
            if k != NULL:
                kv = p[kind_at]
                k[i] = kv
                kmax = kv if kv > kmax else kmax
            if s != NULL:
                memcpy(&sv, p + size_at, 4)
                s[i] = sv
                smin = sv if sv < smin else smin
                smax = sv if sv > smax else smax
            p += itemsize
    return kmax <= kind_max and (s == NULL or (smin >= 1 and smax <= size_max))


def one_page_each(const uint64_t[::1] addr, const uint32_t[::1] size, int shift):
    """Whether every access ``[addr, addr + size)`` lies within one page of
    ``2**shift`` bytes (a size of 0 never does): then each record translates
    exactly the page of its first byte, as an access of one byte would."""
    cdef Py_ssize_t n = addr.shape[0]
    cdef uint64_t pmask
    cdef int ok
    if size.shape[0] != n:
        raise ValueError("one_page_each: addr and size must have equal lengths")
    if not 0 <= shift < 64:
        raise ValueError(f"one_page_each: page shift {shift} outside 0..63")
    if n == 0:
        return True
    pmask = ((<uint64_t> 1) << shift) - 1
    with nogil:
        if HAVE_AVX2:
            ok = emu_one_page_each_avx2(&addr[0], &size[0], n, pmask)
        else:
            ok = emu_one_page_each(&addr[0], &size[0], n, pmask)
    return ok != 0

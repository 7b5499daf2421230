# cython: language_level=3
"""The fields of a structured ``.npy`` window, split in one pass, compiled.

numpy copies a field of a structured array out one field at a time, each
a pass over the whole window; here the three fields of every record are
copied in one pass over it (:mod:`emu.workload.traces.npy` uses it when the
fields already have the trace's dtypes, and numpy's copies otherwise).
"""

from libc.stdint cimport uint8_t, uint32_t, uint64_t
from libc.string cimport memcpy


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
    cdef Py_ssize_t n = addr.shape[0], i
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
    with nogil:
        for i in range(n):
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

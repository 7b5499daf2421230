# cython: language_level=3
"""The lackey line parser, compiled: one pass over a block of text.

It accepts exactly the lines of the grammar in
:mod:`emu.workload.traces.lackey` (``_LACKEY_BLOCK_RE``, whose regular
expression is the reference) and nothing else: on the first line it does
not accept, or a size out of 1..65536, it gives up and the caller parses
the block with the reference parser, which says what is wrong and where.
"""

from libc.stdint cimport uint8_t, uint32_t, uint64_t
from libc.string cimport memchr

cdef enum:
    WS_RUN = 64                 # longest run of blanks inside a record line
    MAX_COMMENT_LINE = 1 << 20  # longest valgrind message or blank line
    MAX_SIZE = 65536

#: shortest record line: letter, blank, one hex digit, comma, one digit, newline
MIN_RECORD_BYTES = 6

cdef uint8_t HEX[256]
cdef uint8_t KIND[256]
cdef int _c
for _c in range(256):
    HEX[_c] = 0xFF
    KIND[_c] = 0xFF
for _c in range(10):
    HEX[48 + _c] = _c
for _c in range(6):
    HEX[97 + _c] = 10 + _c
    HEX[65 + _c] = 10 + _c
KIND[73] = 0    # I
KIND[76] = 1    # L
KIND[83] = 2    # S
KIND[77] = 3    # M


cdef inline bint _blank(uint8_t c) noexcept nogil:
    return c == 32 or c == 9


cdef Py_ssize_t _parse(const uint8_t *p, Py_ssize_t n, uint64_t *addr, uint8_t *kind,
                       uint32_t *size, Py_ssize_t *lines) noexcept nogil:
    """The records of ``p[:n]`` (ending with a newline) into the arrays; the
    count of records, or -1 at the first line not accepted."""
    cdef Py_ssize_t i = 0, j, start, rec = 0
    cdef uint64_t a, s
    cdef uint8_t k, v
    lines[0] = 0
    while i < n:
        j = i
        while _blank(p[j]):
            j += 1
        k = KIND[p[j]]
        if k != 0xFF and j - i <= WS_RUN:
            # a record: [ \t]{0,64} LETTER [ \t]{1,64} HEX{1,16} , DEC{1,10} [ \t\r]{0,64} \n
            j += 1
            start = j
            while _blank(p[j]) and j - start <= WS_RUN:
                j += 1
            if j == start or j - start > WS_RUN:
                return -1
            start = j
            a = 0
            v = HEX[p[j]]
            while v != 0xFF and j - start < 16:
                a = (a << 4) | v
                j += 1
                v = HEX[p[j]]
            if j == start or p[j] != 44:           # no digit, or a 17th, or no comma
                return -1
            j += 1
            start = j
            s = 0
            while 48 <= p[j] <= 57 and j - start < 10:
                s = s * 10 + (p[j] - 48)
                j += 1
            if j == start or s < 1 or s > MAX_SIZE:
                return -1
            start = j
            while (_blank(p[j]) or p[j] == 13) and j - start <= WS_RUN:
                j += 1
            if p[j] != 10 or j - start > WS_RUN:   # an 11th digit, another field, blanks
                return -1
            addr[rec] = a
            kind[rec] = k
            size[rec] = <uint32_t>s
            rec += 1
        elif (p[i] == 61 or p[i] == 45 or p[i] == 42) and p[i + 1] == p[i]:
            # a valgrind message: (==|--|**) [^\n]{0,MAX_COMMENT_LINE-2} \n
            j = <const uint8_t *>memchr(p + i, 10, n - i) - p
            if j - i > MAX_COMMENT_LINE:
                return -1
        else:
            # a blank line: [ \t\r]{0,MAX_COMMENT_LINE} \n
            while _blank(p[j]) or p[j] == 13:
                j += 1
            if p[j] != 10 or j - i > MAX_COMMENT_LINE:
                return -1
        i = j + 1
        lines[0] += 1
    return rec


def parse_lines(const uint8_t[::1] data, uint64_t[::1] addr, uint8_t[::1] kind,
                uint32_t[::1] size):
    """Parse ``data``, complete lackey lines ending with a newline, into the
    arrays (each at least ``len(data) // MIN_RECORD_BYTES + 1`` long).

    Returns ``(records, lines)``, or ``None`` if a line is not one the
    grammar accepts or a size is out of range (nothing is said about
    which: the reference parser is then to be asked)."""
    cdef Py_ssize_t n = data.shape[0], rec, lines = 0
    if n == 0:
        return 0, 0
    if data[n - 1] != 10 or min(addr.shape[0], kind.shape[0], size.shape[0]) <= n // MIN_RECORD_BYTES:
        raise ValueError("parse_lines: the data must end with a newline, the arrays be long enough")
    with nogil:
        rec = _parse(&data[0], n, &addr[0], &kind[0], &size[0], &lines)
    if rec < 0:
        return None
    return rec, lines

"""Valgrind lackey text traces, plain or gzip-compressed.

The text printed by ``valgrind --tool=lackey --trace-mem=yes``.  Parsed
streaming, block by block: by the compiled parser
(:mod:`emu.workload.traces._lackey`, tens of millions of lines a second)
and, for a block it does not accept, by the reference parser here (one
regular expression and vectorised numpy code), which says which line is
wrong and why; an error deep in the file raises when its block is reached.
"""
from __future__ import annotations

import gzip
import re
import zlib
from typing import BinaryIO, Iterator, Optional

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from emu.errors import TraceError
from emu.workload.traces.base import MAX_SIZE, Trace, _first_bad, read_ahead
from emu.workload.traces.source import Source

try:
    from emu.workload.traces import _lackey as _compiled
except ImportError:  # pragma: no cover - not built: the reference parser gives the same records
    _compiled = None


try:    # ISA-L's inflate (``pip install emu[fast]``): the same bytes, twice as fast as zlib
    from isal.igzip import IGzipFile as _FastGzipFile
    from isal.isal_zlib import error as _FastGzipError
    _FAST_GZIP_ERRORS: tuple = (_FastGzipError,)
except ImportError:
    _FastGzipFile, _FAST_GZIP_ERRORS = None, ()

#: bytes of lackey text parsed per block
_LACKEY_BLOCK = 1 << 22
#: a partial lackey line longer than this can only become a valgrind message
#: or a blank line (the grammar bounds a record line to ~220 bytes), so the
#: reader refuses it early instead of buffering an endless "line" of garbage
_MAX_RECORD_LINE = 4096
#: a valgrind message (``==pid==``, ``--pid--`` or ``**pid**``) or blank line
#: longer than this is malformed
_MAX_COMMENT_LINE = 1 << 20


# The lackey line grammar, as one regular expression matched over a whole
# block of lines at once.  A record line is
#     [ws]{0,64} LETTER [ws]{1,64} HEX{1,16} , DEC{1,10} [ws/CR]{0,64}
# with LETTER one of I, L, S, M; valgrind's message lines, which start with
# its three prefixes ("==pid== ..." for its own output, "--pid-- ..." for its
# warnings and verbose output, "**pid** ..." for its internal errors), and
# blank lines are accepted and skipped.  Every quantifier is possessive
# (Python >= 3.11), so the engine never backtracks and keeps no per-line
# state: it checks several million lines a second, and when it stops early
# the match ends exactly at the start of the first malformed line.
_WS_RUN = 64
_LACKEY_BLOCK_RE = re.compile(
    rb"(?:(?:"
    rb"[ \t]{0,%d}+[ILSM][ \t]{1,%d}+[0-9a-fA-F]{1,16}+,[0-9]{1,10}+[ \t\r]{0,%d}+"
    rb"|(?:==|--|\*\*)[^\n]{0,%d}+"
    rb"|[ \t\r]{0,%d}+"
    rb")\n)*+" % (_WS_RUN, _WS_RUN, _WS_RUN, _MAX_COMMENT_LINE - 2, _MAX_COMMENT_LINE)
)
_COMMENT_LINE_RE = re.compile(rb"^(?:==|--|\*\*)[^\n]*\n", re.M)
#: how valgrind's message lines start (a record line never does)
_MESSAGE_STARTS = (b"==", b"--", b"**")
_WS = b" \t\r"
_KIND_OF_LETTER = np.zeros(256, np.uint8)
for _i, _c in enumerate(b"ILSM"):
    _KIND_OF_LETTER[_c] = _i            # I=0, L=1, S=2, M=3
del _i, _c
_EMPTY = (np.empty(0, np.uint64), np.empty(0, np.uint8), np.empty(0, np.uint32))


def _parse_lackey_block(data: bytes):
    """Parse complete lackey lines (``data`` ends with ``\\n``).

    Returns ``(addr, kind, size, n_lines, bad)``: the records of the block
    (uint64, uint8, uint32), the number of lines it holds, and ``bad`` =
    ``None`` or ``(line index in block, reason)`` for the first bad line
    (the arrays are then ``None``).  See ``_LACKEY_BLOCK_RE`` for the
    grammar; sizes must also lie in 1..MAX_SIZE.
    """
    # NOTE: contorted for speed.  A regex per line with int(x, 16) runs at
    # ~1 M lines/s.  Here one possessive regex validates the whole block in
    # C; then, with the syntax known to be right, the fields are cut out with
    # whole-block bytes/numpy operations: drop valgrind's lines, delete every
    # whitespace byte (a record becomes "I0401ab70,3"), find newlines and
    # commas, and convert the hex digits with bytes.fromhex, grouped by width.
    text = data
    n_lines = data.count(b"\n")
    end = _LACKEY_BLOCK_RE.match(data).end()
    if end != len(data):
        # report the first error in file order: a bad size before this line?
        bad = _parse_lackey_block(data[:end])[4] if end else None
        return None, None, None, n_lines, bad or (data.count(b"\n", 0, end), "malformed")
    if data.startswith(_MESSAGE_STARTS) or any(b"\n" + m in data for m in _MESSAGE_STARTS):
        data = _COMMENT_LINE_RE.sub(b"", data)
    q = data.translate(None, _WS)
    Q = np.frombuffer(q, np.uint8)
    e = np.flatnonzero(Q == 10)              # line ends (records and blank lines)
    s = np.empty_like(e)                     # line starts
    if len(e):
        s[0] = 0
        s[1:] = e[:-1] + 1
    if len(e) and (e == s).any():            # blank lines
        keep = e != s
        s, e = s[keep], e[keep]
    m = len(s)
    if m == 0:
        return (*_EMPTY, n_lines, None)
    c = np.flatnonzero(Q == 44)              # one comma per record, in order
    kind = _KIND_OF_LETTER[Q[s]]

    addr = np.empty(m, np.uint64)
    width = c - s - 1                        # hex digits: 1..16
    counts = np.bincount(width, minlength=17)
    for w in np.flatnonzero(counts):
        rows = slice(None) if counts[w] == m else np.flatnonzero(width == w)
        digits = sliding_window_view(Q, w)[c[rows] - w]       # (k, w) ASCII hex
        txt = np.full((len(digits), 16), ord("0"), np.uint8)  # left-pad with '0'
        txt[:, 16 - w:] = digits
        addr[rows] = np.frombuffer(bytes.fromhex(txt.tobytes().decode("ascii")), ">u8")

    nd = e - c - 1                           # decimal digits: 1..10
    size = Q[c + 1].astype(np.int64) - 48
    for col in range(1, int(nd.max())):
        rows = np.flatnonzero(nd > col)
        size[rows] = size[rows] * 10 + (Q[c[rows] + 1 + col].astype(np.int64) - 48)
    bad_size = (size < 1) | (size > MAX_SIZE)
    if bad_size.any():
        i = _first_bad(bad_size)
        reason = f"size {int(size[i])} out of range 1..{MAX_SIZE}"
        return None, None, None, n_lines, (_record_line_index(text, i), reason)
    return addr, kind, size.astype(np.uint32), n_lines, None


def _parse_block(data):
    """:func:`_parse_lackey_block`'s result for ``data`` (bytes, or a
    memoryview of bytes), from the compiled parser when it
    accepts the whole block (the reference then says nothing else), from
    the reference itself otherwise (an error, or no compiled parser)."""
    if _compiled is not None:
        cap = len(data) // _compiled.MIN_RECORD_BYTES + 1
        addr, kind, size = np.empty(cap, np.uint64), np.empty(cap, np.uint8), np.empty(cap, np.uint32)
        got = _compiled.parse_lines(data, addr, kind, size)
        if got is not None:
            m, n_lines = got
            return addr[:m], kind[:m], size[:m], n_lines, None
    return _parse_lackey_block(bytes(data))


def gzip_reader(raw: BinaryIO, fast: bool = True) -> BinaryIO:
    """A reader of the bytes the gzip stream ``raw`` holds: ISA-L's
    ``IGzipFile`` when ``fast`` and the ``isal`` package is installed, else
    the standard library's ``GzipFile``.  Both give the same bytes and
    refuse the same damaged streams (in their own words)."""
    if fast and _FastGzipFile is not None:
        return _FastGzipFile(fileobj=raw, mode="rb")
    return gzip.GzipFile(fileobj=raw, mode="rb")


def _record_line_index(text: bytes, i: int) -> int:
    """Index of the line of ``text`` that holds record number ``i`` (slow:
    for error messages only)."""
    for lineno, line in enumerate(text.split(b"\n")):
        if not line.startswith(_MESSAGE_STARTS) and line.strip(_WS):
            if i == 0:
                return lineno
            i -= 1
    raise AssertionError("record index out of range")  # pragma: no cover


def _show_line(line: bytes) -> str:
    """A line for an error message: its first 60 bytes, quoted, with
    non-printable bytes escaped (``'foo\\xff'``)."""
    return repr(line[:60])[1:]


class _LackeyTrace(Trace):
    """A valgrind lackey ``--trace-mem=yes`` text trace, plain or gzip."""

    def __init__(self, source: Source, gz: bool):
        self._gz = gz
        super().__init__(source, "lackey", None)
        # Parse up to the first block holding a record now, so that a file
        # that is not lackey text at all (or a corrupt gzip stream), and one
        # holding no record (only valgrind messages and blank lines, as an
        # empty file holds none), is refused by open_trace itself; the first
        # reading of the trace goes on from there (a pipe is read once).
        self._pending = self._parsed(first_block=1 << 16)
        self._first = next((block for block in self._pending if len(block[0])), None)
        if self._first is None:
            raise TraceError(f"{source.path}: empty trace (it holds no records, only valgrind "
                             "messages or blank lines)")

    def _open(self) -> BinaryIO:
        raw = self.source.reader()
        return gzip_reader(raw) if self._gz else raw

    def _read(self, f: BinaryIO, n: int) -> bytes:
        try:
            return f.read(n)
        except (OSError, EOFError, zlib.error, *_FAST_GZIP_ERRORS) as e:
            # gzip.BadGzipFile is an OSError
            what = "corrupt or truncated gzip data" if self._gz else "cannot read"
            raise TraceError(f"{self.path}: {what} ({type(e).__name__}: {e})") from None

    def _text(self, f: BinaryIO, first_block: Optional[int]) -> Iterator[bytes]:
        """The stream's bytes: ``first_block`` of them, then _LACKEY_BLOCK at
        a time, then one empty block at its end."""
        buf = self._read(f, first_block or _LACKEY_BLOCK)
        while buf:
            yield buf
            buf = self._read(f, _LACKEY_BLOCK)
        yield b""

    def _parsed(self, first_block: Optional[int] = None) -> Iterator[tuple]:
        """Yield ``(addr, kind, size)`` per block of text, even for a block
        holding no records, so that only an empty stream yields nothing.  The
        first read is of ``first_block`` bytes, the others of _LACKEY_BLOCK;
        the next block is read (and decompressed) while this one is parsed."""
        path = self.path
        f = self._open()
        text = read_ahead(self._text(f, first_block))
        try:
            lineno = 0      # lines before the current block
            carry = b""     # incomplete last line of the previous read
            for buf in text:
                if buf:
                    whole = carry + buf if carry else buf
                    cut = whole.rfind(b"\n") + 1
                    # the complete lines, as a view: a block is not copied twice
                    data, carry = memoryview(whole)[:cut], whole[cut:]
                    if len(carry) > _MAX_RECORD_LINE:
                        self._check_long_line(carry, lineno + whole.count(b"\n") + 1)
                elif carry:
                    data, carry = carry + b"\n", b""
                else:
                    break       # end of stream (nothing yielded if it was empty)
                if not data:
                    continue
                addr, kind, size, n_lines, bad = _parse_block(data)
                if bad is not None:
                    idx, reason = bad
                    line = _show_line(bytes(data).split(b"\n", idx + 1)[idx])
                    if reason == "malformed":
                        reason = "malformed lackey line"
                    raise TraceError(f"{path}:{lineno + idx + 1}: {reason}: {line}")
                lineno += n_lines
                yield addr, kind, size
        finally:
            self.source.stop()      # a read waiting on a quiet pipe ends, and so can the
            text.close()            # read-ahead and f close (it had waited for the writer)
            f.close()

    def _check_long_line(self, line: bytes, lineno: int) -> None:
        """A line still without its newline after _MAX_RECORD_LINE bytes must
        be a valgrind message or blank (up to _MAX_COMMENT_LINE bytes)."""
        comment = line.startswith(_MESSAGE_STARTS) or not line.translate(None, b" \t\r")
        if comment and len(line) <= _MAX_COMMENT_LINE:
            return
        raise TraceError(f"{self.path}:{lineno}: malformed lackey line: {_show_line(line)}")

    def _blocks(self, chunk: int) -> Iterator[tuple]:
        parsed, first = self._pending, self._first
        self._pending = self._first = None
        if parsed is None:                  # read again from the start
            parsed, first = self._parsed(), None
        try:
            if first is not None:
                yield first
            for addr, kind, size in parsed:
                if len(addr):
                    yield addr, kind, size
        finally:
            parsed.close()

    def close(self) -> None:
        if self._pending is not None:
            self._pending.close()
            self._pending = self._first = None
        super().close()

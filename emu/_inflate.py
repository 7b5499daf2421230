"""Deflated ``.npz`` members, inflated on threads of their own, ahead of
their reader, and for ``emu tlb FILE`` from before the rest of emu loads.

A member that ``np.savez_compressed`` writes is one deflate stream: it
inflates in order, on one core.  The ``addr`` member of a 30 M-record
trace takes about a quarter of a second with ISA-L, more than the rest of
``emu tlb``'s work on it, so it sets the time of the whole command.

- :class:`Inflater` inflates one member from the archive's bytes, in
  pieces, and checks its CRC-32 at its end.
- :class:`InflateAhead` runs an Inflater on a thread of its own, at most a
  set number of bytes ahead of its reader: the largest member of an archive
  inflates there, beside the reader, which converts and simulates what it
  gave.  :class:`InflateHere` reads the others on the reader's own thread:
  on two cores, a thread for each made the command slower, not faster.
- :func:`head_start` starts the largest for a path before numpy and the
  trace readers are imported (a tenth of a second or more of the
  command's start-up); the ``.npz`` reader takes it up (:func:`take`) when
  it opens the same file, unchanged, and starts its own otherwise.

This module imports nothing of numpy or of the rest of emu but its errors:
the command line imports it first.
"""
from __future__ import annotations

import functools
import io
import os
import stat
import struct
import threading
import zipfile
import zlib
from collections import deque
from typing import Callable, Optional

from emu.errors import cannot_read

try:    # ISA-L (``pip install emu[fast]``): the same bytes and CRC-32 values as zlib's,
    # inflated twice as fast, summed several times faster
    from isal import igzip_lib as _igzip
    from isal import isal_zlib as _zlib
except ImportError:
    _igzip = None
    _zlib = zlib
crc32 = _zlib.crc32

#: compressed bytes read from the file at a time: few enough reads and
#: calls that their cost, above all the interpreter lock each takes again
#: (which may wait for another thread's turn), is small.  The ``addr``
#: member of 30 M records takes about 50 of them.
_PIECE = 1 << 20
#: most bytes one call inflates.  NOTE: its output is a new block of memory
#: each time, freed on the reader's thread; the larger the block, the more
#: often the allocator gives it back to the kernel and has it zeroed again.
#: ``emu tlb`` on the benchmark's deflated .npz of 30 M records: 30,000 page
#: faults with 1 MiB, 50,000-58,000 with 4 MiB (0.07 s more CPU); with 8 MiB
#: every call's output is mapped afresh (inflating its ``addr`` member
#: alone took 0.39 s against 0.25 s)
_INFLATE = 1 << 20

#: bytes an :class:`InflateAhead` holds that its reader has not taken: enough
#: to cover the start-up its inflating is started before (:func:`head_start`)
AHEAD = 64 << 20

#: the members a trace is read from, as np.load names them (``addr`` for ``addr.npy``)
TRACE_KEYS = ("addr", "kind", "size")

_LOCAL_HEADER = struct.Struct("<4s22xHH")    # signature ... name length, extra length


def check_crc(info: zipfile.ZipInfo, crc: int) -> None:
    """``BadZipFile`` unless ``crc`` is the member's CRC-32."""
    if crc != info.CRC:
        raise zipfile.BadZipFile(f"bad CRC-32 for member {info.filename!r}")


def data_offset(pread: Callable[[int, int], bytes], info: zipfile.ZipInfo, size: int) -> int:
    """Where the member's bytes start in the file (after its local header);
    ``BadZipFile`` if the header is not one, or the bytes run past ``size``."""
    sig, name_len, extra_len = _LOCAL_HEADER.unpack(pread(30, info.header_offset))
    if sig != b"PK\x03\x04":
        raise zipfile.BadZipFile("bad local file header")
    offset = info.header_offset + 30 + name_len + extra_len
    if offset + info.compress_size > size:
        raise zipfile.BadZipFile("member data runs past the end of the file")
    return offset


class Inflater:
    """A deflated member, inflated from the archive's bytes (at ``offset``,
    read with ``pread(n, offset)``) in pieces, in order.

    With ISA-L installed, its inflater sums the CRC-32 as it writes each
    byte and keeps the input it has not used; otherwise zlib's inflates,
    and the CRC-32 is summed over what it gives.

    The same bytes as :mod:`zipfile` gives, and the same end: at most the
    member's declared size; the end comes there, where the deflate stream
    ends, or where its compressed bytes run out; there the CRC-32 of the
    bytes given is checked against the member's (``BadZipFile``, raised in
    place of the last piece).  A damaged deflate stream raises the
    inflater's error."""

    def __init__(self, pread: Callable[[int, int], bytes], offset: int, info: zipfile.ZipInfo):
        self._pread = pread
        self._info = info
        self._pos = offset
        self._end = offset + info.compress_size
        self._left = info.file_size         # bytes still to give
        if _igzip is not None:
            self._isal = _igzip.IgzipDecompressor(flag=_igzip.DECOMP_GZIP_NO_HDR)
        else:
            self._isal = None
            self._zlib = _zlib.decompressobj(-15)
        self._tail = b""                    # compressed bytes read, not yet inflated (zlib)
        self._crc = 0
        self.done = False

    def _finish(self) -> None:
        self.done = True
        check_crc(self._info, self._isal.crc if self._isal is not None else self._crc)

    def _read(self) -> bytes:
        """The member's next compressed bytes from the file."""
        piece = self._pread(min(_PIECE, self._end - self._pos), self._pos)
        if not piece:
            raise EOFError("the file ends inside the member")
        self._pos += len(piece)
        return piece

    def _inflate_isal(self, limit: int) -> tuple:
        """(ISA-L's next bytes, up to ``limit``; whether the stream ended)."""
        d = self._isal
        data = b""
        if d.needs_input:
            if self._pos >= self._end:      # the compressed bytes ran out
                return b"", True
            data = self._read()
        out = d.decompress(data, limit)
        if not (out or d.eof or d.needs_input):
            raise zlib.error("the deflate stream makes no progress")
        return out, d.eof

    def _inflate_zlib(self, limit: int) -> tuple:
        """(zlib's next bytes, up to ``limit``; whether the stream ended)."""
        if not self._tail and self._pos < self._end:
            self._tail = self._read()
        before = len(self._tail)
        out = self._zlib.decompress(self._tail, limit)
        self._tail = self._zlib.unconsumed_tail
        if out:
            self._crc = crc32(out, self._crc)
        ended = self._zlib.eof or not (out or self._tail or self._pos < self._end)
        if not (out or ended) and len(self._tail) == before and before:
            raise zlib.error("the deflate stream makes no progress")
        return out, ended

    def piece(self, limit: int = 0) -> bytes:
        """The member's next bytes, at most ``limit`` (default
        :data:`_INFLATE`); ``b""`` at its end."""
        step = self._inflate_isal if self._isal is not None else self._inflate_zlib
        limit = limit or _INFLATE
        while not self.done:
            if self._left <= 0:             # an empty member
                self._finish()
                break
            out, ended = step(min(limit, self._left))
            self._left -= len(out)
            if ended or self._left <= 0:
                self._finish()
            if out:
                return out
        return b""


class _Pieces(io.RawIOBase):
    """A member's bytes, given to its reader (:meth:`readinto`) from the
    pieces :meth:`_next_piece` gives (``b""`` at its end)."""

    def __init__(self):
        super().__init__()
        self._current = memoryview(b"")     # what the reader has not taken of its piece

    def _next_piece(self) -> bytes:
        raise NotImplementedError

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        """Give the member's next bytes, up to ``len(b)``; 0 at its end."""
        view = memoryview(b).cast("B")
        if not len(view):
            return 0
        if not len(self._current):
            self._current = memoryview(self._next_piece())
        n = min(len(view), len(self._current))
        view[:n] = self._current[:n]
        self._current = self._current[n:]
        return n


class InflateHere(_Pieces):
    """An :class:`Inflater` read on the reader's own thread, piece by piece:
    for a member small enough that a thread of its own would cost more, in
    switches between threads on few cores, than it gives."""

    def __init__(self, inflater: Inflater):
        super().__init__()
        self._inflater = inflater

    def _next_piece(self) -> bytes:
        return self._inflater.piece()


class InflateAhead(_Pieces):
    """An :class:`Inflater` run on a thread of its own, at most ``budget``
    bytes ahead of the reader (:meth:`readinto`).  An error the inflater
    raises is raised to the reader where it reaches it, after the bytes
    before it.  :meth:`close` stops the thread and waits for it (for the
    piece it is inflating), then calls ``on_close``."""

    def __init__(self, inflater: Inflater, budget: int,
                 on_close: Optional[Callable[[], None]] = None):
        super().__init__()
        self._inflater = inflater
        self._budget = budget
        self._on_close = on_close
        self._pieces: deque = deque()
        self._held = 0                      # bytes in _pieces
        self._ended = False
        self._error: Optional[BaseException] = None
        self._stop = False
        self._cv = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="emu-inflate", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        cv = self._cv
        try:
            while True:
                with cv:
                    while self._held >= self._budget and not self._stop:
                        cv.wait()
                    if self._stop:
                        return
                piece = self._inflater.piece()
                with cv:
                    if piece:
                        self._pieces.append(piece)
                        self._held += len(piece)
                    else:
                        self._ended = True
                    cv.notify_all()
                if not piece:
                    return
        except BaseException as e:          # handed to the reader, which raises it
            with cv:
                self._error = e
                cv.notify_all()

    def _next_piece(self) -> bytes:
        """The next piece the thread inflated (waiting for it), or its error."""
        cv = self._cv
        with cv:
            while not (self._pieces or self._ended or self._error is not None):
                cv.wait()
            if not self._pieces:
                if self._error is not None:
                    raise self._error
                return b""
            piece = self._pieces.popleft()
            self._held -= len(piece)
            cv.notify_all()
        return piece

    def close(self) -> None:
        if not self.closed:
            with self._cv:
                self._stop = True
                self._cv.notify_all()
            self._thread.join()
            self._pieces.clear()
            self._current = memoryview(b"")
            if self._on_close is not None:
                self._on_close()
        super().close()


def _file(st: os.stat_result) -> tuple:
    """The same file, unchanged: what a member started for one open file
    must be of to be taken up by another."""
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _file_key(st: os.stat_result, info: zipfile.ZipInfo) -> tuple:
    """The same file, unchanged, and the same member of its directory."""
    return (_file(st), (info.filename, info.header_offset, info.compress_size,
                        info.file_size, info.CRC))


#: members started by :func:`head_start`, not yet taken: {_file_key: InflateAhead}
_started: dict = {}
_started_lock = threading.Lock()


def member_key(name: str) -> str:
    """A zip member's key, as np.load names it: ``addr`` for ``addr.npy``."""
    return name[:-4] if name.endswith(".npy") else name


def trace_members(infos) -> list:
    """The deflated trace members among the zip entries ``infos``."""
    return [i for i in infos
            if i.compress_type == zipfile.ZIP_DEFLATED and member_key(i.filename) in TRACE_KEYS]


def largest(info: zipfile.ZipInfo, infos: list) -> bool:
    """Whether the member ``info`` is the largest of the deflated trace
    members ``infos`` (or as large): the one whose inflating sets the pace."""
    return all(info.file_size >= i.file_size for i in infos)


def _reader(path: str, fd: int) -> Callable[[int, int], bytes]:
    """``pread`` on ``fd``, an error said as the trace's reader says it."""
    def pread(n: int, offset: int) -> bytes:
        try:
            return os.pread(fd, n, offset)
        except OSError as e:
            raise cannot_read(path, e) from None
    return pread


def head_start(path) -> None:
    """Start inflating the largest deflated trace member of ``path``, if it
    is an ``.npz`` in a regular file, on a thread of its own, for the reader
    that opens ``path`` next to take up (:func:`take`).

    Anything else is left alone, and nothing is raised: the reader says
    what is wrong with the path when it opens it."""
    try:
        path = os.fspath(path)
        if not isinstance(path, str) or path in ("", "-"):
            return
        if not stat.S_ISREG(os.stat(path).st_mode):
            return                          # never opened: a FIFO would lose its bytes
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except (OSError, TypeError, ValueError):
        return
    started = []
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or os.pread(fd, 4, 0) != b"PK\x03\x04":
            return
        with open(fd, "rb", closefd=False) as f:
            infos = trace_members(zipfile.ZipFile(f).infolist())
        # NOTE: the largest member only: it sets the pace.  The others,
        # started too, took the imports' core: `emu tlb` on a 30 M-record
        # trace took 0.465 s (median of 15, in process), against 0.435 s
        # with the largest alone and 0.481 s with none
        for info in [i for i in infos if largest(i, infos)][-1:]:
            member_fd = os.dup(fd)
            try:
                pread = _reader(path, member_fd)
                ahead = InflateAhead(Inflater(pread, data_offset(pread, info, st.st_size), info),
                                     AHEAD, functools.partial(os.close, member_fd))
            except BaseException:
                os.close(member_fd)
                raise
            started.append((_file_key(st, info), ahead))
    except Exception:
        for _, ahead in started:
            ahead.close()
        return
    finally:
        os.close(fd)
    with _started_lock:
        for key, ahead in started:
            old = _started.pop(key, None)
            if old is not None:
                old.close()
            _started[key] = ahead


def take(st: os.stat_result, info: zipfile.ZipInfo) -> Optional[InflateAhead]:
    """The member ``info`` of the open file ``st`` as :func:`head_start`
    started it, if it did and the file is unchanged since (it is then no
    longer kept here), else ``None``.  What was started for another file,
    or for this one as it was before it changed, is stopped and let go: no
    reader will take it up."""
    with _started_lock:
        ahead = _started.pop(_file_key(st, info), None)
    discard(keep=_file(st))
    return ahead


def discard(keep: Optional[tuple] = None) -> None:
    """Stop the members :func:`head_start` started that no reader took up,
    but those of the file ``keep`` (:func:`_file`), and let go of what they
    inflated.  ``emu tlb`` discards them all as it ends, however it ends."""
    with _started_lock:
        left = [key for key in _started if key[0] != keep]
        stopping = [_started.pop(key) for key in left]
    for ahead in stopping:
        ahead.close()

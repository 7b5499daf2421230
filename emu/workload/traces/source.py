"""Where a trace's bytes come from: the path, opened once.

:func:`open_source` opens a trace path exactly once and keeps that one open
file for the trace's lifetime, so a pipe (``cat t | emu tlb /dev/stdin``),
a process substitution (``<(zcat t.gz)``), a named FIFO or a socket gives
the readers exactly the bytes a regular file holding the same data would.
The first bytes are peeked (:attr:`Source.head`) to decide the format.
The path ``-`` is standard input, opened as ``/dev/stdin`` is (and named
``-`` in messages).

A regular file is read by position (``pread``), so it can be read any
number of times, and by several readers at once.  A stream (pipe,
FIFO, socket) is read once, from its start: the peeked bytes are replayed
in front of the rest (:meth:`Source.reader`).

Refused, in one line naming the path (:class:`TraceError`): ``''``, a
directory, a terminal, a character or block device (``/dev/zero``,
``/dev/null``), and a named FIFO that no program opens for writing within
:data:`FIFO_WAIT_S` seconds (one whose writer has connected is waited for,
however long it takes to write).
"""
from __future__ import annotations

import io
import os
import select
import stat
import weakref
from typing import Optional

import numpy as np

from emu.errors import TraceError, cannot_read

__all__ = ["Source", "open_source", "FIFO_WAIT_S", "STDIN"]

#: seconds to wait for a writer of a named FIFO to connect before refusing it
#: (nothing may ever write to it); one that has connected is waited for without
#: limit, as an anonymous pipe (which always has its writer) is
FIFO_WAIT_S = 10.0

#: bytes peeked to decide the format (the longest magic is 6 bytes)
PEEK = 8

#: the trace path that names standard input, as for most commands
STDIN = "-"


def _fspath(path) -> str:
    try:
        return os.fspath(path)
    except TypeError:
        raise TraceError(f"{path!r}: not a file path") from None


#: Seconds a read of a stream waits for data before it looks whether it was stopped.
_WAIT_STEP = 0.1


class Source:
    """One open trace path.  Create it with :func:`open_source`.

    Attributes: ``path``; ``seekable`` (a regular file: read by position,
    any number of times); ``size`` (its length in bytes, ``None`` for a
    stream); ``head`` (its first :data:`PEEK` bytes, fewer if it is shorter;
    never empty).  :meth:`close` (or garbage collection) closes the file.
    """

    def __init__(self, path: str, fd: int, seekable: bool, size: Optional[int], head: bytes):
        self.path = path
        self.seekable = seekable
        self.size = size
        self.head = head
        self._fd = fd
        self._streamed = False
        self.stopping = False
        self._close = weakref.finalize(self, os.close, fd)

    def stop(self) -> None:
        """Make a read of the stream that waits for data end at once, as at
        its end (its reader is done with it: an interrupt, or it read what it
        needed).  A read of a pipe whose writer has gone quiet had kept the
        reader's lock, so that closing it waited for the writer."""
        self.stopping = True

    def close(self) -> None:
        """Close the file (idempotent)."""
        self._close()

    @property
    def closed(self) -> bool:
        return not self._close.alive

    def _check_open(self) -> None:
        if self.closed:
            raise TraceError(f"{self.path}: the trace was closed")

    def check_unread(self) -> None:
        """Raise :class:`TraceError` if this is a stream already read."""
        if self._streamed:
            raise TraceError(f"{self.path}: a pipe, FIFO or socket can be read only once, and "
                             "this trace is read again here; save it to a file first")

    def reader(self) -> io.BufferedReader:
        """A buffered binary reader from the start of the file.

        For a regular file each call gives an independent, seekable reader
        (closing it leaves the file open).  For a stream the first call gives
        the peeked bytes followed by the rest of the stream; a second call
        raises :class:`TraceError` (a stream can be read only once)."""
        self._check_open()
        if self.seekable:
            return io.BufferedReader(_PositionalReader(self), 1 << 16)
        self.check_unread()
        self._streamed = True
        return io.BufferedReader(_StreamReader(self), 1 << 16)

    def stat(self) -> os.stat_result:
        """The open file's ``os.fstat``."""
        self._check_open()
        return os.fstat(self._fd)

    def pread(self, n: int, offset: int) -> bytes:
        """Up to ``n`` bytes at ``offset`` of a regular file."""
        self._check_open()
        try:
            return os.pread(self._fd, n, offset)
        except OSError as e:
            raise cannot_read(self.path, e) from None

    def read_into(self, array: np.ndarray, offset: int) -> None:
        """Fill the C-contiguous ``array`` with the bytes at ``offset`` of a
        regular file.  Raises :class:`TraceError` if the file ends first.

        NOTE: positional reads, not memory maps: one copy from the page cache
        into the array that becomes the chunk's (a map and a copy out of it
        cost a third more, measured), no page of the file counted in RSS, and
        a file truncated while it is read is a one-line error where touching
        a map of it would kill the process (SIGBUS)."""
        self._check_open()
        view = memoryview(array).cast("B")
        done = 0
        try:
            while done < len(view):
                n = os.preadv(self._fd, [view[done:]], offset + done)
                if n == 0:
                    raise TraceError(f"{self.path}: truncated file (it ends at byte "
                                     f"{offset + done:,}, {len(view) - done:,} bytes short)")
                done += n
        except OSError as e:
            raise cannot_read(self.path, e) from None


class _PositionalReader(io.RawIOBase):
    """A regular file read with ``pread`` from a position of its own."""

    def __init__(self, source: Source):
        self._source = source
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        try:
            n = os.preadv(self._source._fd, [b], self._pos)
        except OSError as e:
            raise cannot_read(self._source.path, e) from None
        self._pos += n
        return n

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos,
                io.SEEK_END: os.fstat(self._source._fd).st_size}[whence]
        if base + offset < 0:
            raise OSError(22, "negative seek position")
        self._pos = base + offset
        return self._pos

    def tell(self) -> int:
        return self._pos


class _StreamReader(io.RawIOBase):
    """A stream read once: the peeked bytes, then the rest of the stream."""

    def __init__(self, source: Source):
        self._source = source
        self._head = memoryview(source.head)
        self._poll = None

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        if len(self._head):
            n = min(len(b), len(self._head))
            b[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        source = self._source
        try:
            if self._poll is None:
                self._poll = select.poll()
                self._poll.register(source._fd, select.POLLIN)
            while not source.stopping:      # waits in steps, to see a stop
                if self._poll.poll(_WAIT_STEP * 1000):
                    return os.readv(source._fd, [b])
            return 0
        except OSError as e:
            raise cannot_read(source.path, e) from None


def _kind(path: str, mode: int) -> str:
    """'file' or 'stream', or raise for what cannot be a trace."""
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
        return "stream"
    if stat.S_ISDIR(mode):
        raise TraceError(f"{path}: is a directory, not a trace file")
    if stat.S_ISCHR(mode):
        raise TraceError(f"{path}: is a character device (a terminal, /dev/zero ...), "
                         "not a trace file or a pipe")
    if stat.S_ISBLK(mode):
        raise TraceError(f"{path}: is a block device, not a trace file or a pipe")
    raise TraceError(f"{path}: is not a regular file or a pipe")


def _is_named_fifo(fd: int, mode: int) -> bool:
    """A FIFO in the file system (an anonymous pipe, ``pipe:[N]`` in /proc,
    always has its writer: it is never waited for)."""
    if not stat.S_ISFIFO(mode):
        return False
    try:
        return not os.readlink(f"/proc/self/fd/{fd}").startswith("pipe:")
    except OSError:
        return True


def _wait_for_writer(path: str, fd: int) -> bytes:
    """Wait for a writer of the named FIFO ``fd`` (opened non-blocking);
    return the first bytes read while waiting (perhaps none).

    Data, or a writer that came and went, ends the wait at once.  Past
    FIFO_WAIT_S, a writer that has connected but written nothing yet (a
    program still starting, a slow decompressor) is waited for without
    limit; a FIFO no program has opened for writing is refused, so that
    ``emu tlb FIFO`` never hangs on a FIFO nothing will write to."""
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    if poller.poll(FIFO_WAIT_S * 1000):
        return b""
    # NOTE: on Linux a non-blocking read of a FIFO gives EOF when no writer
    # is connected, and EAGAIN when one is but has written nothing yet
    try:
        first = os.read(fd, PEEK)
    except BlockingIOError:
        return b""                                  # a writer: the blocking read waits for it
    except OSError as e:
        raise cannot_read(path, e) from None
    if not first:
        raise TraceError(f"{path}: no program opened this FIFO for writing within "
                         f"{FIFO_WAIT_S:g} s (start the program that writes to it)")
    return first


def _peek(path: str, fd: int, head: bytes = b"") -> bytes:
    """``head`` and what follows it, up to PEEK bytes in all."""
    try:
        while len(head) < PEEK:
            more = os.read(fd, PEEK - len(head))
            if not more:
                break
            head += more
    except OSError as e:
        raise cannot_read(path, e) from None
    return head


def open_source(path) -> Source:
    """Open the trace path ``path`` once and peek at its first bytes;
    ``-`` (:data:`STDIN`) is standard input.

    Raises :class:`TraceError` naming the path for an empty path, a missing
    or unreadable file, a directory, a terminal or device, a FIFO no program
    opens for writing (within :data:`FIFO_WAIT_S`), and an empty file or stream.
    """
    path = _fspath(path)
    if path == "":
        raise TraceError("'': an empty path is not a trace file")
    # NOTE: through /dev/stdin, not fd 0 itself: a pipe, a file or a terminal
    # there is checked and read exactly as `emu tlb /dev/stdin` does
    opened = "/dev/stdin" if path == STDIN else path
    try:
        _kind(path, os.stat(opened).st_mode)    # refuse a device before opening it
    except FileNotFoundError:
        raise TraceError(f"{path}: no such file") from None
    except OSError as e:
        raise cannot_read(path, e) from None
    try:
        # NOTE: O_NONBLOCK so that opening a FIFO with no writer returns at once
        fd = os.open(opened, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_BINARY", 0))
    except FileNotFoundError:
        raise TraceError(f"{path}: no such file") from None
    except OSError as e:
        raise cannot_read(path, e) from None
    try:
        st = os.fstat(fd)
        seekable = _kind(path, st.st_mode) == "file"
        first = _wait_for_writer(path, fd) if _is_named_fifo(fd, st.st_mode) else b""
        os.set_blocking(fd, True)
        head = os.pread(fd, PEEK, 0) if seekable else _peek(path, fd, first)
    except OSError as e:
        os.close(fd)
        raise cannot_read(path, e) from None
    except BaseException:
        os.close(fd)
        raise
    if not head:
        os.close(fd)
        what = "the file is empty: it holds no records" if seekable else \
            "nothing was read from the pipe"
        raise TraceError(f"{path}: empty trace ({what})")
    return Source(path, fd, seekable, st.st_size if seekable else None, head)


def trace_workloads(sc) -> list:
    """``(workload, readers)`` of each trace workload of scenario ``sc``: a
    guest process's (read by each of its ``count`` processes) or a host task's."""
    workloads = [(p.workload, p.count) for vm in sc.vms for p in vm.processes]
    workloads += [(t.workload, 1) for t in sc.host_tasks]
    return [(w, n) for w, n in workloads if w.kind == "trace"]


def check_pipe_traces(scenarios) -> None:
    """Refuse (TraceError, one line) a trace that is no regular file (a pipe,
    a FIFO, /dev/stdin) where ``scenarios`` would read it more than once:
    several runs, or several processes of one run, under one name or several
    (/dev/stdin and /dev/fd/0 are one pipe).  A pipe is read once: the second
    reader found it empty and blamed the trace."""
    reads: dict = {}                    # (device, inode) -> [paths, reads]
    for sc in scenarios:
        for w, count in trace_workloads(sc):
            try:
                st = os.stat(w.path)
            except OSError:
                continue                # the trace's own reader says what is wrong with it
            if stat.S_ISREG(st.st_mode):
                continue
            seen = reads.setdefault((st.st_dev, st.st_ino), [[], 0])
            if w.path not in seen[0]:
                seen[0].append(w.path)
            seen[1] += count
    for paths, n in reads.values():
        if n > 1:
            named = " and ".join(paths) + (" (one pipe)" if len(paths) > 1 else "")
            raise TraceError(f"{named}: a pipe is read once, and it would be read {n} times "
                             f"(each run, each process reads its trace): save the trace to "
                             f"a file and give that")

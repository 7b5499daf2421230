"""``.npz`` traces: a zip of ``.npy`` arrays, read window by window.

The trace arrays are ``addr`` (required), ``kind`` (optional: absent means
every record is a load) and ``size`` (optional).  Any other member (a
``meta`` array kept for provenance, a README) is ignored and named, by its
key as ``np.load`` gives it (``meta``, not ``meta.npy``), in
:attr:`Trace.ignored_members`.

Every member is read in bounded memory, window by window: a stored
(uncompressed) member is read where its data lies in the archive, like an
``.npy``; a deflated member (``np.savez_compressed``) is inflated from its
bytes in the archive (:mod:`emu._inflate`): the largest, whose inflating
sets the pace, on a thread of its own a bounded number of bytes ahead of
the reader (``emu tlb`` starts it before the rest of emu loads, and the
reader takes it up), the others on the reader's thread.  Either way the member's
CRC-32 is computed as the windows go by and checked at its end.  A member
compressed otherwise (bzip2, lzma) is read through :mod:`zipfile`.  A zip
keeps its directory at its end, so an ``.npz`` must be a regular file: from
a pipe it is refused.
"""
from __future__ import annotations

import struct
import zipfile
from dataclasses import dataclass
from typing import Iterator, Optional

import numpy as np

from emu._inflate import (
    AHEAD,
    Inflater,
    InflateAhead,
    InflateHere,
    check_crc,
    crc32,
    data_offset,
    largest,
    member_key,
    take,
    trace_members,
)
from emu.errors import TraceError
from emu.workload.traces.base import (
    _FIELDS,
    Trace,
    _check_dtype_kind,
    _check_shapes,
    _conv_block,
    _window,
    read_ahead,
)
from emu.workload.traces.npy import (
    _check_data_length,
    _file_windows,
    _Recycler,
    _parse_npy_header,
    _streamed_windows,
)
from emu.workload.traces.source import Source


@dataclass(frozen=True)
class _Member:
    """One trace array of the archive: its zip entry, npy dtype and shape,
    the length of its npy header, and where its bytes (stored or deflated)
    start in the file (``None`` when compressed otherwise)."""

    key: str
    info: zipfile.ZipInfo
    dtype: np.dtype
    shape: tuple
    offset: Optional[int]
    header_len: int


class _NpzTrace(Trace):
    """An ``.npz`` trace, read window by window (see the module docstring)."""

    def __init__(self, source: Source):
        path = source.path
        if not source.seekable:
            raise TraceError(f"{path}: an .npz cannot be read from a pipe or FIFO (a zip keeps its "
                             "directory at its end): save it to a file, or stream .npy or lackey text")
        self._zip = _open_zip(source)
        members, ignored = _trace_members(path, self._zip)
        self.ignored_members = tuple(sorted(ignored))
        self._members = {key: _read_member_header(source, self._zip, key, info)
                         for key, info in members.items()}
        n = _check_shapes(path, "array", self._members)
        super().__init__(source, "npz", n)

    def _blocks(self, chunk: int) -> Iterator[tuple]:
        path = self.path
        n = self.n_records
        w = _window(chunk)
        readers = {}
        deflated = trace_members(m.info for m in self._members.values())
        for key, m in self._members.items():
            r = _member_windows(self.source, self._zip, m, n, w, deflated)
            # a member compressed otherwise than by deflate (read by zipfile)
            # is read on a thread of its own, a window ahead, beside the
            # others; a deflated one is inflated as _inflated says
            readers[key] = r if m.offset is not None else read_ahead(r)
        try:
            for start in range(0, n, w):
                win = {key: _next_window(path, key, r) for key, r in readers.items()}
                block = _conv_block(path, "array", win["addr"], win.get("kind"),
                                    win.get("size"), start, owned=True)
                del win
                yield block
            for key, r in readers.items():          # the members' checks at their end
                _next_window(path, key, r, last=True)
        finally:
            for r in readers.values():
                r.close()


def _open_zip(source: Source) -> zipfile.ZipFile:
    path = source.path
    try:
        return zipfile.ZipFile(source.reader())
    except (zipfile.BadZipFile, NotImplementedError, UnicodeDecodeError, ValueError,
            EOFError, struct.error) as e:
        # NOTE: a corrupt central directory can also claim an unsupported zip
        # version (NotImplementedError) or a non-UTF-8 name (UnicodeDecodeError)
        raise TraceError(f"{path}: not a valid npz file (corrupt or truncated zip: {e})") from None
    except OSError as e:
        raise TraceError(f"{path}: cannot read: {e.strerror or e}") from None


def _trace_members(path: str, zf: zipfile.ZipFile) -> tuple:
    """``({key: ZipInfo} of the trace arrays, [keys of the other members])``:
    members are named by their keys, as ``np.load`` names them (``meta``
    for ``meta.npy``)."""
    members, ignored = {}, []
    for info in zf.infolist():
        name = info.filename
        key = member_key(name)
        if key in _FIELDS:
            if key in members:          # np.load would take the last, and say nothing
                raise TraceError(f"{path}: npz holds array {key!r} twice (members "
                                 f"{members[key].filename!r} and {name!r}): which one is the "
                                 f"trace is not known")
            members[key] = info
        else:
            ignored.append(key)
    if "addr" not in members:
        found = ", ".join(sorted([*members, *ignored])) or "none"
        raise TraceError(f"{path}: npz has no array 'addr' (arrays found: {found})")
    return members, ignored


def _corrupt(path: str, key: str, e: BaseException) -> TraceError:
    # NOTE: a corrupt archive member can surface as BadZipFile, zlib.error,
    # EOFError, ValueError, OSError, SyntaxError (npy header) and more; all of
    # them mean "cannot read it".
    return TraceError(f"{path}: cannot read array {key!r}: corrupt or truncated npz "
                      f"({type(e).__name__}: {e})")


def _read_member_header(source: Source, zf: zipfile.ZipFile, key: str,
                        info: zipfile.ZipInfo) -> _Member:
    """Read and check a trace member's npy header, and find its data."""
    path = source.path
    try:
        with zf.open(info) as f:
            dtype, shape = _parse_npy_header(f)
            header_len = f.tell()
        offset = None
        if info.compress_type in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            offset = data_offset(source.pread, info, source.size)
    except TraceError:
        raise
    except Exception as e:
        raise _corrupt(path, key, e) from None
    _check_dtype_kind(path, "array", key, dtype)
    if len(shape) == 1:
        _check_data_length(path, f"npz member {key!r}", shape[0], dtype,
                           info.file_size - header_len)
    return _Member(key, info, dtype, shape, offset, header_len)


def _next_window(path: str, key: str, reader: Iterator, last: bool = False):
    """The next window of a member's reader (its end check when ``last``)."""
    try:
        if last:
            return next(reader, None)
        return next(reader)
    except TraceError:
        raise
    except Exception as e:
        raise _corrupt(path, key, e) from None


def _member_windows(source: Source, zf: zipfile.ZipFile, m: _Member, n: int,
                    w: int, deflated: list) -> Iterator:
    """Yield the member's record windows, then its end check (a last ``next``
    that raises if the member is corrupt)."""
    if m.info.compress_type == zipfile.ZIP_STORED:
        yield from _stored_windows(source, m, n, w)
        return
    with (_inflated(source, m, deflated) if m.offset is not None
          else zf.open(m.info)) as f:
        f.read(m.header_len)
        for _, win in _streamed_windows(source.path, f, m.dtype, n, w, f"npz member {m.key!r}",
                                        _Recycler()):
            yield win
        while f.read(1 << 20):             # to the end, where the CRC-32 is checked
            pass
    yield None


def _inflated(source: Source, m: _Member, deflated: list):
    """The deflated member ``m`` (of the trace's ``deflated`` members) as a
    stream of its bytes: the largest inflating on a thread of its own (the
    one ``emu tlb`` started for this file before emu loaded, if it did),
    any other on the reader's thread.

    NOTE: ``emu tlb`` on the benchmark's deflated .npz of 30 M records, on
    two cores, with a thread for each member: median 0.545 s of wall time
    and 0.865 s of CPU, against 0.485 s and 0.79 s with the two smaller
    members inflated on the reader's thread (8 runs each, interleaved)."""
    ahead = take(source.stat(), m.info)
    if ahead is not None:
        return ahead
    inflater = Inflater(source.pread, m.offset, m.info)
    if largest(m.info, deflated):
        return InflateAhead(inflater, AHEAD)
    return InflateHere(inflater)


def _stored_windows(source: Source, m: _Member, n: int, w: int) -> Iterator:
    """The windows of a stored member, read where its data lies in the file;
    the CRC-32 of the member's bytes is checked at its end."""
    info = m.info
    crc = crc32(source.pread(m.header_len, m.offset))
    data_offset = m.offset + m.header_len
    for _, win in _file_windows(source, data_offset, m.dtype, n, w, empty=_Recycler()):
        crc = crc32(win, crc)              # before anyone else sees the array
        yield win
    tail = data_offset + n * m.dtype.itemsize
    end = m.offset + info.file_size
    while tail < end:                       # bytes after the array, if any
        piece = source.pread(min(1 << 20, end - tail), tail)
        if not piece:
            break
        crc = crc32(piece, crc)
        tail += len(piece)
    check_crc(info, crc)
    yield None

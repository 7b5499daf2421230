"""``.npz`` traces: a zip of ``.npy`` arrays, read window by window.

The trace arrays are ``addr`` (required), ``kind`` (optional: absent means
every record is a load) and ``size`` (optional).  Any other member (a
``meta`` array kept for provenance, a README) is ignored and named in
:attr:`Trace.ignored_members`.

Every member is read in bounded memory, window by window: a stored
(uncompressed) member is read where its data lies in the archive, like an
``.npy``, its CRC-32 computed as the windows go by and checked at its end;
a compressed member is decompressed and converted a window at a time.  A zip keeps its directory at its end, so an ``.npz`` must be a
regular file: from a pipe it is refused.
"""
from __future__ import annotations

import struct
import zipfile
import zlib
from dataclasses import dataclass
from typing import Iterator, Optional

import numpy as np

from emu.errors import TraceError
from emu.workload.traces.base import (
    _FIELDS,
    Trace,
    _check_dtype_kind,
    _check_shapes,
    _conv_block,
    _window,
)
from emu.workload.traces.npy import (
    _check_data_length,
    _file_windows,
    _parse_npy_header,
    _streamed_windows,
)
from emu.workload.traces.source import Source

ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")  # local file header; empty archive

_LOCAL_HEADER = struct.Struct("<4s22xHH")    # signature ... name length, extra length

try:    # ISA-L's CRC-32 (``pip install emu[fast]``): the same values, several times faster
    from isal.isal_zlib import crc32 as _crc32
except ImportError:
    _crc32 = zlib.crc32


@dataclass(frozen=True)
class _Member:
    """One trace array of the archive: its zip entry, npy dtype and shape,
    and where its array data starts in the file when it is stored (``None``
    when compressed)."""

    key: str
    info: zipfile.ZipInfo
    dtype: np.dtype
    shape: tuple
    data_offset: Optional[int]
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
        readers = {key: _member_windows(self.source, self._zip, m, n, w)
                   for key, m in self._members.items()}
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
    """``({key: ZipInfo} of the trace arrays, [names of the other members])``."""
    members, ignored = {}, []
    for info in zf.infolist():
        name = info.filename
        key = name[:-4] if name.endswith(".npy") else name
        if key in _FIELDS:
            members[key] = info
        else:
            ignored.append(name)
    if "addr" not in members:
        found = ", ".join(sorted(zf.namelist())) or "none"
        raise TraceError(f"{path}: npz has no array 'addr' (members found: {found})")
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
        data_offset = None
        if info.compress_type == zipfile.ZIP_STORED:
            sig, name_len, extra_len = _LOCAL_HEADER.unpack(source.pread(30, info.header_offset))
            if sig != b"PK\x03\x04":
                raise zipfile.BadZipFile("bad local file header")
            data_offset = info.header_offset + 30 + name_len + extra_len + header_len
            if data_offset - header_len + info.file_size > source.size:
                raise zipfile.BadZipFile("member data runs past the end of the file")
    except TraceError:
        raise
    except Exception as e:
        raise _corrupt(path, key, e) from None
    _check_dtype_kind(path, "array", key, dtype)
    if len(shape) == 1:
        _check_data_length(path, f"npz member {key!r}", shape[0], dtype,
                           info.file_size - header_len)
    return _Member(key, info, dtype, shape, data_offset, header_len)


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
                    w: int) -> Iterator:
    """Yield the member's record windows, then its end check (a last ``next``
    that raises if the member is corrupt)."""
    if m.data_offset is not None:
        yield from _stored_windows(source, m, n, w)
        return
    with zf.open(m.info) as f:
        f.read(m.header_len)
        for _, win in _streamed_windows(source.path, f, m.dtype, n, w, f"npz member {m.key!r}"):
            yield win
        while f.read(1 << 20):             # to the end, where zipfile checks the CRC-32
            pass
    yield None


def _stored_windows(source: Source, m: _Member, n: int, w: int) -> Iterator:
    """The windows of a stored member, read where its data lies in the file;
    the CRC-32 of the member's bytes is checked at its end."""
    info = m.info
    start_of_member = m.data_offset - m.header_len
    crc = _crc32(source.pread(m.header_len, start_of_member))
    for _, win in _file_windows(source, m.data_offset, m.dtype, n, w):
        crc = _crc32(win, crc)              # before anyone else sees the array
        yield win
    tail = m.data_offset + n * m.dtype.itemsize
    end = start_of_member + info.file_size
    while tail < end:                       # bytes after the array, if any
        piece = source.pread(min(1 << 20, end - tail), tail)
        if not piece:
            break
        crc = _crc32(piece, crc)
        tail += len(piece)
    if crc != info.CRC:
        raise zipfile.BadZipFile(f"bad CRC-32 for member {info.filename!r}")
    yield None

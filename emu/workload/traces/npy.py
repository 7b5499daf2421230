"""``.npy`` traces, read window by window in bounded memory.

A structured array with fields ``addr`` / ``kind`` / ``size`` (the last two
optional) or a plain 1-D integer array of addresses (all loads).  From a
regular file each window is read at its position
(:meth:`~emu.workload.traces.source.Source.read_into`); from a pipe or FIFO
window after window as the data arrives.  Either way a trace larger than RAM is processed in
bounded memory, and values are validated window by window, so a bad value
deep in the file raises when its window is reached.  The fields of a
structured window that already have the trace's dtypes are copied out and
checked in one compiled pass (:mod:`emu.workload.traces._records`), the
others by numpy, field by field.

The npy header reader and the two window readers here also serve the
members of an ``.npz`` archive (:mod:`~emu.workload.traces.npz`).
"""
from __future__ import annotations

import sys
import warnings
from typing import BinaryIO, Callable, Iterator, Optional

import numpy as np

from emu.errors import TraceError
from emu.workload.traces.base import (
    _FIELDS,
    _FIELD_DTYPES,
    KIND_MODIFY,
    MAX_SIZE,
    Trace,
    _check_dtype_kind,
    _conv_block,
    _window,
)
from emu.workload.traces.source import Source

try:
    from emu.workload.traces._records import split_fields as _split_fields
except ImportError:  # pragma: no cover - not built: numpy's field copies give the same arrays
    _split_fields = None


def _parse_npy_header(f: BinaryIO) -> tuple:
    """``(dtype, shape)`` from the npy header at the start of ``f`` (left just
    after it).  Raises what numpy raises for a corrupt header, ValueError
    for a format version other than 1.0 and 2.0 or a negative dimension."""
    # NOTE: a header whose shape overflows makes numpy warn before it raises
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        version = np.lib.format.read_magic(f)
        if version not in ((1, 0), (2, 0)):
            raise ValueError(f"npy format version {version[0]}.{version[1]} is not supported "
                             "(1.0 and 2.0 are)")
        read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                else np.lib.format.read_array_header_2_0)
        try:
            shape, _, dtype = read(f)
        except ValueError as e:
            if "malformed node or string" in str(e):
                # ast.literal_eval names the node by its address, which changes from run to run
                raise ValueError("the header is not a Python literal (an expression, a name or "
                                 "a call in it)") from None
            raise
    if any(d < 0 for d in shape):
        raise ValueError(f"negative dimension in shape {shape}")
    return dtype, tuple(shape)


def _check_npy_layout(path: str, dt: np.dtype, shape: tuple) -> Optional[tuple]:
    """Check an npy trace's dtype and shape; return the fields present
    (``None`` for a plain array of addresses)."""
    if dt.names is not None:
        for name in dt.names:
            if name not in _FIELDS:
                raise TraceError(
                    f"{path}: unexpected field {name!r} in npy (expected addr, optional kind, size)"
                )
        if "addr" not in dt.names:
            raise TraceError(
                f"{path}: structured npy has no field 'addr' (fields: {', '.join(dt.names)})"
            )
        if len(shape) != 1:
            raise TraceError(f"{path}: structured npy must be 1-D, has shape {shape}")
        fields = tuple(f for f in _FIELDS if f in dt.names)
        for name in fields:
            sub = dt.fields[name][0]
            if sub.shape != ():
                raise TraceError(
                    f"{path}: field '{name}' must be 1-D, has shape {tuple(shape) + sub.shape}"
                )
            _check_dtype_kind(path, "field", name, sub)
        return fields
    if len(shape) != 1:
        raise TraceError(f"{path}: array 'addr' must be 1-D, has shape {shape}")
    _check_dtype_kind(path, "array", "addr", dt)
    return None


def _check_data_length(path: str, what: str, n: int, dtype: np.dtype, have: int) -> None:
    """Refuse an array whose header promises more bytes than are there."""
    if n * dtype.itemsize > have:
        raise TraceError(f"{path}: truncated or corrupt {what} (the header declares {n:,} "
                         f"records of {dtype.itemsize} bytes, the file holds {have:,} bytes of data)")


class _Recycler:
    """``np.empty`` that hands out again an array it made before, once
    nothing else refers to it (the chunks cut from it are gone), so that the
    windows of a member are not fresh pages each time, which the kernel
    zeroes as they are first written.  Keeps at most ``keep`` arrays."""

    def __init__(self, keep: int = 4):
        self._kept: list = []
        self._keep = keep

    def __call__(self, n: int, dtype: np.dtype) -> np.ndarray:
        for a in self._kept:
            # NOTE: three references: the list's, the loop's and getrefcount's own
            if sys.getrefcount(a) == 3 and len(a) == n and a.dtype == dtype:
                return a
        a = np.empty(n, dtype)
        if len(self._kept) < self._keep:
            self._kept.append(a)
        return a


def _file_windows(source: Source, offset: int, dtype: np.dtype, n: int,
                  w: int, reuse: bool = False, empty: Callable = np.empty) -> Iterator[tuple]:
    """Yield ``(start, array)`` for records ``start .. start + w`` of the ``n``
    records of ``dtype`` at byte ``offset`` of a regular file, each window
    read into an array of its own, from ``empty(records, dtype)`` (resident
    memory is bounded by the window), or with ``reuse`` all into one (the
    caller copies what it keeps of a window before it asks for the next)."""
    buf = None
    for start in range(0, n, w):
        m = min(w, n - start)
        # NOTE: one buffer for every window spares the kernel mapping and
        # zeroing fresh pages for each (a few per cent of emu tlb's time on a .npy)
        win = buf[:m] if buf is not None else empty(m, dtype)
        if reuse and buf is None:
            buf = win
        source.read_into(win, offset + start * dtype.itemsize)
        yield start, win


def _streamed_windows(path: str, f: BinaryIO, dtype: np.dtype, n: int, w: int,
                      what: str, empty: Callable = np.empty) -> Iterator[tuple]:
    """Yield ``(start, array)`` for records ``start .. start + w`` of the ``n``
    records of ``dtype`` read in order from the binary stream ``f``, each
    window into an array of its own, from ``empty(records, dtype)``."""
    for start in range(0, n, w):
        win = empty(min(w, n - start), dtype)
        view = memoryview(win).cast("B")
        done = 0
        while done < len(view):
            got = f.readinto(view[done:])
            if not got:
                raise TraceError(f"{path}: truncated {what} (the header declares {n:,} records, "
                                 f"the data ends after {start + done // dtype.itemsize:,})")
            done += got
        yield start, win


class _NpyTrace(Trace):
    """An ``.npy`` trace, read window by window from a file or a pipe."""

    def __init__(self, source: Source):
        path = source.path
        f = source.reader()
        try:
            dtype, shape = _parse_npy_header(f)
            offset = f.tell() if source.seekable else None
        except Exception as e:
            f.close()
            raise TraceError(
                f"{path}: truncated or corrupt npy file ({type(e).__name__}: {e})"
            ) from None
        fields = _check_npy_layout(path, dtype, shape)
        if source.seekable:
            f.close()
            _check_data_length(path, "npy file", shape[0], dtype, source.size - offset)
            self._stream = None
        else:
            self._stream = f                # read once, from just after the header
        self._layout = (dtype, shape[0], fields, offset)
        super().__init__(source, "npy", shape[0])

    def _blocks(self, chunk: int) -> Iterator[tuple]:
        path = self.path
        dtype, n, fields, offset = self._layout
        w = _window(chunk, dtype.itemsize)
        if self.source.seekable:
            # a structured window is copied out field by field (_conv_block,
            # not owned), so the next one may be read into the same array
            windows = _file_windows(self.source, offset, dtype, n, w, reuse=fields is not None)
        else:
            windows = _streamed_windows(path, self._stream, dtype, n, w, "npy stream")
        split = _splitter(dtype, fields)
        for start, win in windows:
            if fields is None:
                yield _conv_block(path, "array", win, None, None, start, owned=True)
            elif split is not None:
                valid, block = split(win)
                # a block with a value out of range is checked again to say where
                yield block if valid else _conv_block(path, "field", *block, start, owned=True)
            else:
                yield _conv_block(path, "field", win["addr"],
                                  win["kind"] if "kind" in fields else None,
                                  win["size"] if "size" in fields else None, start)


def _splitter(dtype: np.dtype, fields: Optional[tuple]) -> Optional[Callable]:
    """A function giving ``(valid, (addr, kind | None, size | None))`` for a
    structured window: its fields copied out in one compiled pass, into
    arrays recycled from window to window, their values checked on the way
    (``valid``: every kind and size in range; a block with ``kind`` absent
    gets all loads); when every field already has the trace's dtype
    (``None`` otherwise: numpy then copies each field out, converting it)."""
    if (fields is None or _split_fields is None
            or any(dtype.fields[name][0] != _FIELD_DTYPES[name] for name in fields)):
        return None
    at = {name: dtype.fields[name][1] if name in fields else -1 for name in _FIELDS}
    empty = {name: _Recycler() for name in fields}

    def split(win: np.ndarray) -> tuple:
        n = len(win)
        out = {name: empty[name](n, _FIELD_DTYPES[name]) for name in fields}
        valid = _split_fields(win.view(np.uint8), dtype.itemsize, at["addr"], out["addr"],
                              at["kind"], out.get("kind"), at["size"], out.get("size"),
                              KIND_MODIFY, MAX_SIZE)
        kind = out.get("kind")
        return valid, (out["addr"], np.ones(n, np.uint8) if kind is None else kind,
                       out.get("size"))

    return split

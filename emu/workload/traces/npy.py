"""``.npy`` traces: memory-mapped and read window by window.

A structured array with fields ``addr`` / ``kind`` / ``size`` (the last two
optional) or a plain 1-D integer array of addresses (all loads).  Opened
memory-mapped and read in windows, so a trace larger than RAM is processed in
bounded memory; values are validated window by window, so a bad value deep
in the file raises when its window is reached.  The npy header reader here
also serves the members of an ``.npz`` archive.
"""
from __future__ import annotations

import warnings
from typing import Iterator

import numpy as np

from emu.errors import TraceError
from emu.workload.traces.base import (
    _FIELDS,
    Trace,
    _check_dtype_kind,
    _conv_block,
    _window,
)

NPY_MAGIC = b"\x93NUMPY"


def _load_npy_mmap(path: str) -> np.ndarray:
    try:
        # NOTE: a header whose shape overflows makes numpy warn before it raises
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.load(path, mmap_mode="r", allow_pickle=False)
    except OSError as e:
        raise TraceError(f"{path}: cannot read: {e.strerror or e}") from None
    except Exception as e:
        # ValueError "mmap length is greater than file size" for a truncated
        # file; ValueError/SyntaxError for a corrupt header.
        raise TraceError(
            f"{path}: truncated or corrupt npy file ({type(e).__name__}: {e})"
        ) from None


def _read_npy_header(f):
    """``(dtype, shape)`` from the npy header at the start of file object ``f``,
    or ``None`` for a format version other than 1.0 and 2.0.  Raises what
    numpy raises for a corrupt header."""
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(f)
    elif version == (2, 0):
        shape, _, dtype = np.lib.format.read_array_header_2_0(f)
    else:
        return None
    return dtype, shape


def _peek_npy_header(path: str):
    """``(dtype, shape)`` from an npy header, or ``None`` if it cannot be
    parsed here (np.load then reports the problem)."""
    try:
        with open(path, "rb") as f:
            return _read_npy_header(f)
    except Exception:
        return None


class _NpyTrace(Trace):
    """An ``.npy`` trace, memory-mapped and read window by window."""

    def __init__(self, path: str):
        peek = _peek_npy_header(path)
        if peek is not None:
            # dtype and shape errors first, in the reader's own words (np.load
            # would refuse an object dtype with a less useful message)
            self._check_header(path, *peek)
        mm = _load_npy_mmap(path)
        try:
            if not isinstance(mm, np.memmap):
                raise TraceError(f"{path}: npy file could not be memory-mapped")
            self._layout = self._check_header(path, mm.dtype, mm.shape) + (mm.offset,)
        finally:
            del mm
        super().__init__(path, "npy", self._layout[1][0])

    @staticmethod
    def _check_header(path: str, dt: np.dtype, shape: tuple) -> tuple:
        """Check dtype and shape; return (dtype, shape, fields) where fields
        is None for a plain array of addresses."""
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
            fields = tuple(f for f in _FIELDS if f in dt.names)
            if len(shape) != 1:
                raise TraceError(f"{path}: structured npy must be 1-D, has shape {shape}")
            for name in fields:
                sub = dt.fields[name][0]
                if sub.shape != ():
                    raise TraceError(
                        f"{path}: field '{name}' must be 1-D, has shape {tuple(shape) + sub.shape}"
                    )
                _check_dtype_kind(path, "field", name, sub)
        else:
            fields = None
            if len(shape) != 1:
                raise TraceError(f"{path}: array 'addr' must be 1-D, has shape {shape}")
            _check_dtype_kind(path, "array", "addr", dt)
        return dt, tuple(shape), fields

    def _blocks(self, chunk: int) -> Iterator[tuple]:
        path = self.path
        # Re-open through np.load so a file changed since open_trace is noticed.
        mm = _load_npy_mmap(path)
        try:
            if self._check_header(path, mm.dtype, mm.shape) + (mm.offset,) != self._layout:
                raise TraceError(f"{path}: npy file changed since it was opened")
        finally:
            del mm
        dtype, shape, fields, offset = self._layout
        n = shape[0]
        w = _window(chunk)
        for start in range(0, n, w):
            count = min(w, n - start)
            # NOTE: each window is its own short-lived memory map.  Slicing
            # one map of the whole file would leave every page read mapped
            # (and counted in RSS) until the iteration ends; unmapping each
            # window keeps resident memory bounded by the window size.
            try:
                win = np.memmap(path, dtype=dtype, mode="r",
                                offset=offset + start * dtype.itemsize, shape=(count,))
            except OSError as e:
                raise TraceError(f"{path}: cannot read: {e.strerror or e}") from None
            except ValueError as e:
                raise TraceError(f"{path}: truncated npy file ({e})") from None
            try:
                if fields is None:
                    block = _conv_block(path, "array", win, None, None, start)
                else:
                    block = _conv_block(
                        path, "field", win["addr"],
                        win["kind"] if "kind" in fields else None,
                        win["size"] if "size" in fields else None, start)
            finally:
                del win
            yield block

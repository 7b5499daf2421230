"""``.npz`` traces: a zip of ``.npy`` arrays, validated and held in memory.

The arrays are ``addr`` (required), ``kind`` (optional: absent means every
record is a load) and ``size`` (optional).  Loaded whole, with
``allow_pickle=False``, and validated when opened.
"""
from __future__ import annotations

import zipfile
from typing import Iterator

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
from emu.workload.traces.npy import _read_npy_header

ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")  # local file header; empty archive


class _NpzTrace(Trace):
    """An ``.npz`` trace: validated and held in memory once opened (a
    compressed archive cannot be memory-mapped; use ``.npy`` for traces
    larger than RAM)."""

    def __init__(self, path: str):
        arrays = _read_npz(path)
        n = _check_shapes(path, "array", arrays)
        # Validate the whole file now (errors belong to open_trace); the
        # converted arrays are kept read-only and copied out window by window.
        a, k, s = _conv_block(path, "array", arrays["addr"], arrays.get("kind"),
                              arrays.get("size"), 0)
        for x in (a, k, s):
            if x is not None:
                x.setflags(write=False)
        self._data = (a, k, s)
        super().__init__(path, "npz", n)

    def _blocks(self, chunk: int) -> Iterator[tuple]:
        a, k, s = self._data
        w = _window(chunk)
        for i in range(0, len(a), w):
            yield (a[i:i + w].copy(), k[i:i + w].copy(), None if s is None else s[i:i + w].copy())


def _read_npz(path: str) -> dict:
    """Read the arrays of an npz trace (allow_pickle=False).  Checks the
    member names and, from each member's header, its dtype before reading it."""
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, NotImplementedError, UnicodeDecodeError, ValueError,
            EOFError) as e:
        # NOTE: a corrupt central directory can also claim an unsupported zip
        # version (NotImplementedError) or a non-UTF-8 name (UnicodeDecodeError)
        raise TraceError(f"{path}: not a valid npz file (corrupt or truncated zip: {e})") from None
    except OSError as e:
        raise TraceError(f"{path}: cannot read: {e.strerror or e}") from None
    with zf:
        members = {}
        for name in zf.namelist():
            key = name[:-4] if name.endswith(".npy") else name
            if key not in _FIELDS:
                raise TraceError(
                    f"{path}: unexpected array {key!r} in npz (expected addr, optional kind, size)"
                )
            members[key] = name
        if "addr" not in members:
            found = ", ".join(sorted(members)) or "none"
            raise TraceError(f"{path}: npz has no array 'addr' (arrays found: {found})")
        arrays = {}
        for key in _FIELDS:
            if key not in members:
                continue
            try:
                with zf.open(members[key]) as f:
                    header = _read_npy_header(f)
                if header is not None:
                    _check_dtype_kind(path, "array", key, header[0])
                with zf.open(members[key]) as f:
                    arrays[key] = np.lib.format.read_array(f, allow_pickle=False)
            except TraceError:
                raise
            except Exception as e:
                # NOTE: a corrupt archive member can surface as BadZipFile,
                # zlib.error, EOFError, ValueError, OSError, SyntaxError (npy
                # header) and more; all of them mean "cannot read it".
                raise TraceError(
                    f"{path}: cannot read array {key!r}: corrupt or truncated npz "
                    f"({type(e).__name__}: {e})"
                ) from None
            _check_dtype_kind(path, "array", key, arrays[key].dtype)
        return arrays

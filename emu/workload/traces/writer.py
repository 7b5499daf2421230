"""Writing traces, atomically: ``.npz``, structured ``.npy``, and a trace
of any format emu reads converted to either.

Every writer goes through :func:`_atomic_write`, as every other file emu
writes does (:func:`emu.run.files.atomic_path`): the file is written to a
temporary file beside its destination and moved over it once complete (a
symlink's file is written, the link stays; a destination that is not a
regular file, ``/dev/null``, a FIFO or a folder, is refused before anything
is written), so on any error the destination is left as it was and no
temporary file remains.  A process killed while writing cannot remove its
temporaries; the next write of the same destination removes them.  Inputs
are validated as the readers validate them.

:func:`import_trace` (and :func:`import_lackey`, its lackey form) writes
what reads back fastest, from lackey text, a compressed ``.npz`` or an
``.npy`` of another layout: a structured ``.npy`` when the destination's
name ends in ``.npy`` (in one pass, with no temporary but the output
itself), otherwise an ``.npz`` of stored, uncompressed members (through raw
temporaries, one per array).  Both are read back window by window, without
decompressing anything.
"""
from __future__ import annotations

import os
import shutil
import struct
import zipfile
import contextlib
from contextlib import closing
from typing import BinaryIO, Callable

import numpy as np

from emu.errors import TraceError
from emu.run.files import atomic_path, replaceable_path, temporary_folder
from emu.run.outdir import check_outside_results
from emu.workload.traces.base import (
    _FIELDS,
    KIND_LOAD,
    _check_chunk_arg,
    _check_shapes,
    _conv_block,
    read_ahead,
)
from emu.workload.traces.detect import open_trace
from emu.workload.traces.source import _fspath

__all__ = ["write_trace_npz", "write_trace_npy", "import_lackey", "import_trace"]


def _make_folder(path: str, folder: str) -> None:
    """Make the folder ``path`` is to be written in if it is not there, as every
    other output of emu's is made; TraceError (one line) if it cannot be."""
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as e:
        raise TraceError(f"{path}: cannot write: {e.strerror or e}") from None


def _atomic_write(path: str, write: Callable[[BinaryIO], None]) -> None:
    """Call ``write(f)`` on a temporary file beside the file ``path`` names,
    then move it over that file (:func:`~emu.run.files.atomic_path`).  On any
    error the temporary file is removed and the file is left as it was; an
    error of the system's is TraceError, in one line."""
    target = os.path.abspath(path)
    _make_folder(path, os.path.dirname(target))
    try:
        with atomic_path(path, error=TraceError) as tmp:
            with open(tmp, "w+b") as f:
                write(f)
                f.flush()
                os.fsync(f.fileno())
    except OSError as e:
        raise TraceError(f"{path}: cannot write: {e.strerror or e}") from None


def _as_array(x, dtype) -> np.ndarray:
    a = np.asarray(x)
    # an empty list is a float64 array to numpy, but holds no wrong value
    return a.astype(dtype) if a.size == 0 and a.dtype.kind == "f" else a


def _prepare(path: str, addr, kind, size) -> tuple:
    """Validate writer inputs exactly like the reader; return
    (uint64 addr, uint8 kind | None, uint32 size | None)."""
    arrays = {"addr": _as_array(addr, np.uint64)}
    if kind is not None:
        arrays["kind"] = _as_array(kind, np.uint8)
    if size is not None:
        arrays["size"] = _as_array(size, np.uint32)
    _check_shapes(path, "array", arrays)
    a, k, s = _conv_block(path, "array", arrays["addr"], arrays.get("kind"), arrays.get("size"), 0)
    return a, (k if kind is not None else None), s


def write_trace_npz(path, addr, kind=None, size=None, compress: bool = True) -> None:
    """Write a trace as ``.npz`` (arrays ``addr`` uint64, ``kind`` uint8 and
    ``size`` uint32, the last two only if given), atomically.

    Inputs are validated like the reader validates them (raising
    :class:`TraceError`).  The file is written exactly at ``path`` (no
    extension is added), compressed with deflate unless ``compress`` is false.
    """
    path = _fspath(path)
    a, k, s = _prepare(path, addr, kind, size)
    arrays = {"addr": a}
    if k is not None:
        arrays["kind"] = k
    if s is not None:
        arrays["size"] = s
    save = np.savez_compressed if compress else np.savez
    _atomic_write(path, lambda f: save(f, **arrays))


def write_trace_npy(path, addr, kind=None, size=None) -> None:
    """Write a trace as a structured ``.npy``, atomically.

    The dtype is ``[('addr','<u8'), ('kind','u1'), ('size','<u4')]`` (the
    ``size`` field only when ``size`` is given; ``kind`` defaults to all
    loads).  Inputs are validated like the reader validates them.
    """
    path = _fspath(path)
    a, k, s = _prepare(path, addr, kind, size)
    fields = [("addr", "<u8"), ("kind", "u1")] + ([("size", "<u4")] if s is not None else [])
    rec = np.empty(len(a), dtype=fields)
    rec["addr"] = a
    rec["kind"] = k if k is not None else KIND_LOAD
    if s is not None:
        rec["size"] = s
    _atomic_write(path, lambda f: np.save(f, rec, allow_pickle=False))


#: the structured dtype of an imported ``.npy``
_RECORD = np.dtype([("addr", "<u8"), ("kind", "u1"), ("size", "<u4")])


def _npy_header(dtype: np.dtype, n: int) -> bytes:
    """An npy 1.0 header for ``n`` records of ``dtype``, of the same length
    whatever ``n`` (< 10**20), so that it can be rewritten in place once the
    count is known."""
    def text(count: str) -> str:
        return (f"{{'descr': {np.lib.format.dtype_to_descr(dtype)!r}, "
                f"'fortran_order': False, 'shape': ({count},), }}")
    size = -(-(10 + len(text("9" * 20)) + 1) // 64) * 64       # a multiple of 64 bytes
    body = text(str(n)).ljust(size - 10 - 1) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(body)) + body.encode("latin1")


#: the formats :func:`import_trace` reads, as :attr:`Trace.format` names them,
#: and how a message names each
IMPORT_FORMATS = {"lackey": "lackey text", "npz": ".npz", "npy": ".npy"}


def import_lackey(src, dst, chunk: int = 1 << 20) -> int:
    """Convert the lackey text trace ``src`` (plain or gzip; a file, a pipe or
    a FIFO) to a trace at ``dst``; return the number of records
    (:func:`import_trace` with ``fmt="lackey"``)."""
    return import_trace(src, dst, "lackey", chunk)


def import_trace(src, dst, fmt: str, chunk: int = 1 << 20) -> int:
    """Convert the trace ``src``, of format ``fmt`` (:data:`IMPORT_FORMATS`:
    lackey text, plain or gzip; an ``.npz``, compressed or not, with members
    other than the trace's left out; an ``.npy``, of addresses or of
    records), to a trace at ``dst``; return the number of records.  A
    trace without sizes gets sizes of 1, without kinds, loads: what a
    reader gives for it.

    ``dst`` ending in ``.npy``: a structured ``.npy`` of fields ``addr``
    uint64, ``kind`` uint8, ``size`` uint32, written in one pass.  Any other
    name: an ``.npz`` of stored (uncompressed) arrays ``addr``, ``kind`` and
    ``size``.  Both are read back window by window, where their data lies.

    Streaming, in bounded memory.  Atomic: on any error nothing is left at
    ``dst`` (a pre-existing ``dst`` is untouched) and no temporary file
    remains; temporaries a killed import left beside ``dst`` are removed.
    """
    if fmt not in IMPORT_FORMATS:
        raise TraceError(f"unknown trace format {fmt!r} (choose from: "
                         f"{', '.join(IMPORT_FORMATS)})")
    src = _fspath(src)
    dst = _fspath(dst)
    chunk = _check_chunk_arg(chunk)
    # the output first: an input from a pipe or a FIFO is used up once opened
    # (its format is read from its first bytes), and a FIFO waits for its writer
    replaceable_path(dst, TraceError)
    check_outside_results(os.path.abspath(dst), dst, error=TraceError)
    with contextlib.suppress(OSError):      # an output or input that is not there
        there = os.stat(dst)
        here = os.fstat(0) if src == "-" else os.stat(src)       # "-": standard input
        if os.path.samestat(here, there):
            raise TraceError(f"{dst}: is the trace being imported; write it to another file")
    with open_trace(src) as trace:
        if trace.format != fmt:
            raise TraceError(f"{src}: not a {IMPORT_FORMATS[fmt]} trace (it is "
                             f"{IMPORT_FORMATS.get(trace.format, trace.format)})")
        if dst.lower().endswith(".npy"):
            return _import_npy(trace, dst, chunk)
        return _import_npz(trace, dst, chunk)


def _sizes(c) -> np.ndarray:
    """A chunk's sizes: 1 (an access of one byte) where the trace has none."""
    return c.size if c.size is not None else np.ones(len(c), np.uint32)


def _import_npy(trace, dst: str, chunk: int) -> int:
    n = 0

    def write(f: BinaryIO) -> None:
        nonlocal n
        f.write(_npy_header(_RECORD, 0))
        with closing(read_ahead(trace.chunks(chunk))) as chunks:   # parsing beside writing
            for c in chunks:
                rec = np.empty(len(c), _RECORD)
                rec["addr"], rec["kind"], rec["size"] = c.addr, c.kind, _sizes(c)
                f.write(rec.data)
                n += len(c)
        f.seek(0)
        f.write(_npy_header(_RECORD, n))

    _atomic_write(dst, write)
    return n


def _import_npz(trace, dst: str, chunk: int) -> int:
    _make_folder(dst, os.path.dirname(os.path.abspath(dst)))
    try:
        with temporary_folder(dst) as tmpdir:   # the raw arrays, then the archive of them
            return _spool_npz(trace, dst, chunk, tmpdir)
    except OSError as e:                    # the scratch folder cannot be made
        raise TraceError(f"{dst}: cannot write: {e.strerror or e}") from None


def _spool_npz(trace, dst: str, chunk: int, tmpdir: str) -> int:
    """Write the trace's arrays raw into ``tmpdir``, then the stored
    ``.npz`` of them at ``dst``; the records written."""
    raw = {name: os.path.join(tmpdir, name) for name in _FIELDS}
    n = 0
    try:
        files = {name: open(p, "wb") for name, p in raw.items()}
        try:
            with closing(read_ahead(trace.chunks(chunk))) as chunks:   # parsing beside writing
                for c in chunks:
                    files["addr"].write(c.addr.astype("<u8", copy=False).data)
                    files["kind"].write(c.kind.data)
                    files["size"].write(_sizes(c).astype("<u4", copy=False).data)
                    n += len(c)
        finally:
            for f in files.values():
                f.close()
    except OSError as e:
        raise TraceError(f"{dst}: cannot write: {e.strerror or e}") from None

    def write(f: BinaryIO) -> None:
        with zipfile.ZipFile(f, "w", zipfile.ZIP_STORED) as zf:
            for name in _FIELDS:
                with zf.open(name + ".npy", "w", force_zip64=True) as member:
                    member.write(_npy_header(_RECORD[name], n))
                    with open(raw[name], "rb") as r:
                        shutil.copyfileobj(r, member, 1 << 22)

    _atomic_write(dst, write)
    return n

"""Writing traces, atomically: ``.npz``, structured ``.npy``, and lackey
text converted to ``.npz``.

Every writer goes through :func:`_atomic_write`: the file is written to a
temporary file beside its destination and moved over it once complete, so
on any error the destination is left as it was and no temporary file
remains.  Inputs are validated as the readers validate them.
"""
from __future__ import annotations

import os
import secrets
import shutil
import tempfile
import zipfile
from typing import BinaryIO, Callable

import numpy as np

from emu.errors import TraceError
from emu.workload.traces.base import (
    _FIELDS,
    KIND_LOAD,
    _check_chunk_arg,
    _check_shapes,
    _conv_block,
)
from emu.workload.traces.detect import _fspath, open_trace

__all__ = ["write_trace_npz", "write_trace_npy", "import_lackey"]


def _atomic_write(path: str, write: Callable[[BinaryIO], None]) -> None:
    """Call ``write(f)`` on a temporary file in ``path``'s directory, then
    move it over ``path`` with ``os.replace``.  On any error the temporary
    file is removed and ``path`` is left as it was."""
    d = os.path.dirname(os.path.abspath(path))
    base = os.path.basename(path)
    for _ in range(100):
        tmp = os.path.join(d, f".{base}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        try:
            # O_EXCL: never clobber; mode 0o666 so the umask applies as usual
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
            break
        except FileExistsError:
            continue
        except OSError as e:
            raise TraceError(f"{path}: cannot write: {e.strerror or e}") from None
    else:  # pragma: no cover
        raise TraceError(f"{path}: cannot write: no free temporary name")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(e, OSError):
            raise TraceError(f"{path}: cannot write: {e.strerror or e}") from None
        raise


def _prepare(path: str, addr, kind, size) -> tuple:
    """Validate writer inputs exactly like the reader; return
    (uint64 addr, uint8 kind | None, uint32 size | None)."""
    arrays = {"addr": np.asarray(addr)}
    if kind is not None:
        arrays["kind"] = np.asarray(kind)
    if size is not None:
        arrays["size"] = np.asarray(size)
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


def import_lackey(src, dst, chunk: int = 1 << 20) -> int:
    """Convert the lackey text trace ``src`` (plain or gzip) to an ``.npz``
    at ``dst`` with arrays ``addr`` uint64, ``kind`` uint8 and ``size``
    uint32; return the number of records.

    Streaming, in bounded memory: the records go, ``chunk`` at a time, to raw
    temporary files beside ``dst``, which are then deflated into the archive.
    Atomic: on any error nothing is left at ``dst`` (a pre-existing ``dst``
    is untouched) and no temporary file remains.
    """
    src = _fspath(src)
    dst = _fspath(dst)
    chunk = _check_chunk_arg(chunk)
    trace = open_trace(src)
    if trace.format != "lackey":
        raise TraceError(f"{src}: not a lackey text trace (it is {trace.format})")
    d = os.path.dirname(os.path.abspath(dst))
    try:
        tmpdir = tempfile.mkdtemp(prefix="." + os.path.basename(dst) + ".", suffix=".tmp", dir=d)
    except OSError as e:
        raise TraceError(f"{dst}: cannot write: {e.strerror or e}") from None
    try:
        raw = {name: os.path.join(tmpdir, name) for name in _FIELDS}
        n = 0
        try:
            files = {name: open(p, "wb") for name, p in raw.items()}
            try:
                for c in trace.chunks(chunk):
                    files["addr"].write(c.addr.astype("<u8", copy=False).tobytes())
                    files["kind"].write(c.kind.tobytes())
                    files["size"].write(c.size.astype("<u4", copy=False).tobytes())
                    n += len(c)
            finally:
                for f in files.values():
                    f.close()
        except OSError as e:
            raise TraceError(f"{dst}: cannot write: {e.strerror or e}") from None
        dtypes = {"addr": np.dtype("<u8"), "kind": np.dtype("u1"), "size": np.dtype("<u4")}

        def write(f: BinaryIO) -> None:
            with zipfile.ZipFile(f, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
                for name in _FIELDS:
                    with zf.open(name + ".npy", "w", force_zip64=True) as member:
                        header = {"descr": np.lib.format.dtype_to_descr(dtypes[name]),
                                  "fortran_order": False, "shape": (n,)}
                        np.lib.format.write_array_header_1_0(member, header)
                        with open(raw[name], "rb") as r:
                            shutil.copyfileobj(r, member, 1 << 22)

        _atomic_write(dst, write)
        return n
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)

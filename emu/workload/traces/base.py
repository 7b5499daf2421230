"""What every trace format shares: the record, its checks, the chunk, and
the reader interface.

A trace is a sequence of records, each a byte address, a kind and a size:

=====  ==================  ===========================================
field  dtype               meaning
=====  ==================  ===========================================
addr   uint64              byte address of the access
kind   uint8               0 = instruction fetch, 1 = load, 2 = store,
                           3 = modify (load + store, valgrind's ``M``)
size   uint32 (optional)   bytes accessed, 1..65536; absent means 1
=====  ==================  ===========================================

A reader is a :class:`Trace` subclass that yields the file's records as
blocks of any length (``_blocks``); :meth:`Trace.chunks` cuts them into
chunks of exactly the size asked for, so the chunks a trace produces do not
depend on how its format reads the file.  The writers validate their input
with the same checks the readers apply (:func:`_conv_block`).
"""
from __future__ import annotations

import numbers
import threading
from dataclasses import dataclass
from typing import Iterable, Iterator, Optional

import numpy as np

from emu.codes import KIND_IFETCH as KIND_INST
from emu.codes import KIND_LOAD, KIND_MODIFY, KIND_STORE
from emu.errors import ConfigError, TraceError
from emu.workload.traces.source import Source

__all__ = [
    "KIND_INST",
    "KIND_LOAD",
    "KIND_STORE",
    "KIND_MODIFY",
    "MAX_SIZE",
    "TraceChunk",
    "Trace",
    "read_ahead",
]

#: largest access size accepted, in bytes
MAX_SIZE = 65536

_FIELDS = ("addr", "kind", "size")

#: the dtype each field of a trace has in a chunk
_FIELD_DTYPES = {"addr": np.dtype(np.uint64), "kind": np.dtype(np.uint8),
                 "size": np.dtype(np.uint32)}

#: records read per window from .npy / .npz traces (rounded to a multiple of
#: the chunk size, and never fewer than one chunk)
_WINDOW_RECORDS = 1 << 18
#: the most bytes of a record a window is sized for: addr, kind and size,
#: 13 bytes, aligned (:func:`_window`)
_RECORD_BYTES = 16


# --------------------------------------------------------------------------
# chunks
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class TraceChunk:
    """A run of consecutive trace records, as three parallel arrays.

    ``addr`` is uint64, ``kind`` uint8, ``size`` uint32 or ``None`` when the
    trace carries no sizes (every access is 1 byte).  All are 1-D,
    C-contiguous and of equal length; the constructor checks this and raises
    :class:`TraceError` otherwise.  Chunks produced by a :class:`Trace` own
    their arrays (writeable; changing them does not change the trace).
    """

    addr: np.ndarray
    kind: np.ndarray
    size: Optional[np.ndarray] = None

    def __post_init__(self) -> None:
        n = None
        for name, dtype in _FIELD_DTYPES.items():
            a = getattr(self, name)
            if a is None and name == "size":
                continue
            if not isinstance(a, np.ndarray):
                raise TraceError(f"TraceChunk: {name} must be a numpy array, got {type(a).__name__}")
            if a.dtype != dtype or a.ndim != 1 or not a.flags.c_contiguous:
                raise TraceError(
                    f"TraceChunk: {name} must be a 1-D C-contiguous {np.dtype(dtype)} array, "
                    f"got {a.dtype} with shape {a.shape}"
                )
            if n is None:
                n = len(a)
            elif len(a) != n:
                raise TraceError(f"TraceChunk: {name} has {len(a)} records, addr has {n}")

    def __len__(self) -> int:
        return len(self.addr)


def _rechunk(blocks: Iterable[tuple], chunk: int) -> Iterator[TraceChunk]:
    """Cut a stream of ``(addr, kind, size)`` blocks into chunks of exactly
    ``chunk`` records (the last may be shorter).  Blocks of any length are
    accepted; a block whose length is a multiple of ``chunk`` (with nothing
    pending) is cut into views without copying."""
    pending: list = []
    n_pending = 0
    for addr, kind, size in blocks:
        n = len(addr)
        i = 0
        if n_pending:
            take = min(chunk - n_pending, n)
            pending.append((addr[:take], kind[:take], None if size is None else size[:take]))
            n_pending += take
            i = take
            if n_pending < chunk:
                continue
            yield _concat(pending)
            pending, n_pending = [], 0
        while n - i >= chunk:
            yield TraceChunk(
                addr[i:i + chunk], kind[i:i + chunk], None if size is None else size[i:i + chunk]
            )
            i += chunk
        if i < n:
            pending.append((addr[i:], kind[i:], None if size is None else size[i:]))
            n_pending = n - i
    if n_pending:
        yield _concat(pending)


def _cut(blocks: Iterable[tuple], chunk: int) -> Iterator[TraceChunk]:
    """Cut a stream of ``(addr, kind, size)`` blocks into chunks of at most
    ``chunk`` records, as views, without copying (and without joining
    blocks: a chunk may be shorter than ``chunk`` anywhere)."""
    for addr, kind, size in blocks:
        for i in range(0, len(addr), chunk):
            yield TraceChunk(addr[i:i + chunk], kind[i:i + chunk],
                             None if size is None else size[i:i + chunk])


def _concat(parts: list) -> TraceChunk:
    if len(parts) == 1:
        a, k, s = parts[0]
        return TraceChunk(a, k, s)
    addr = np.concatenate([p[0] for p in parts])
    kind = np.concatenate([p[1] for p in parts])
    size = None if parts[0][2] is None else np.concatenate([p[2] for p in parts])
    return TraceChunk(addr, kind, size)


def _check_chunk_arg(chunk) -> int:
    if isinstance(chunk, bool) or not isinstance(chunk, numbers.Integral) or chunk < 1:
        raise ConfigError(f"chunk must be an integer >= 1, got {chunk!r}")
    return int(chunk)


# --------------------------------------------------------------------------
# validation shared by readers and writers
# --------------------------------------------------------------------------


def _first_bad(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def _owned(a: np.ndarray, dtype, owned: bool) -> np.ndarray:
    """``a`` as a C-contiguous ``dtype`` array of its own: ``a`` itself when
    ``owned`` (nothing else refers to it) and already so, else a copy."""
    if owned and a.dtype == dtype and a.flags.c_contiguous and a.flags.writeable:
        return a
    return np.array(a, dtype=dtype, order="C", copy=True)


def _conv_addr(path: str, what: str, a: np.ndarray, base: int = 0,
               owned: bool = False) -> np.ndarray:
    """Return ``a`` as a C-contiguous uint64 array of its own (:func:`_owned`),
    or raise.

    Unsigned integer dtypes are accepted as they are; signed integer dtypes
    only when every value is >= 0.  ``base`` is the record index of ``a[0]``
    (for messages); ``what`` is e.g. ``"array 'addr'"``.
    """
    k = a.dtype.kind
    if k == "i":
        if a.size and a.min() < 0:
            i = _first_bad(a < 0)
            raise TraceError(
                f"{path}: {what} has negative value {int(a[i])} at record {base + i}, "
                f"expected uint64 addresses"
            )
    elif k != "u":
        raise TraceError(f"{path}: {what} has dtype {a.dtype}, expected uint64")
    return _owned(a, np.uint64, owned)


def _conv_ranged(path: str, what: str, a: np.ndarray, lo: int, hi: int, dtype,
                 base: int = 0, hint: str = "", owned: bool = False) -> np.ndarray:
    """Return integer array ``a`` as a C-contiguous ``dtype`` array of its own
    (:func:`_owned`) after checking that every value lies in ``lo..hi``;
    raise otherwise."""
    if a.dtype.kind not in "ui":
        raise TraceError(f"{path}: {what} has dtype {a.dtype}, expected {np.dtype(dtype)}")
    same = a.dtype == dtype
    if same:
        # NOTE: the values are checked on the contiguous result: a strided
        # view (a field of a structured window) is slower to scan twice
        a = _owned(a, dtype, owned)
    may_be_below = lo > 0 or a.dtype.kind == "i"
    if a.size and ((may_be_below and a.min() < lo) or a.max() > hi):
        i = _first_bad((a < lo) | (a > hi))
        raise TraceError(
            f"{path}: {what} has value {int(a[i])} at record {base + i}, expected {lo}..{hi}{hint}"
        )
    return a if same else np.array(a, dtype=dtype, order="C", copy=True)


_KIND_HINT = " (0=instruction, 1=load, 2=store, 3=modify)"


def _conv_block(path: str, label: str, addr, kind, size, base: int, owned: bool = False):
    """Validate and convert one block of raw field arrays.  ``kind`` None
    means all loads; ``size`` None means no sizes.  Returns ``(uint64, uint8,
    uint32|None)`` arrays of their own: the arrays given when ``owned`` (they
    are fresh and nothing else refers to them) and of those dtypes, else
    copies."""
    a = _conv_addr(path, f"{label} 'addr'", addr, base, owned)
    if kind is None:
        k = np.ones(len(a), np.uint8)
    else:
        k = _conv_ranged(path, f"{label} 'kind'", kind, 0, 3, np.uint8, base, _KIND_HINT, owned)
    s = None
    if size is not None:
        s = _conv_ranged(path, f"{label} 'size'", size, 1, MAX_SIZE, np.uint32, base, owned=owned)
    return a, k, s


def _check_shapes(path: str, label: str, arrays: dict) -> int:
    """Check that every array in ``arrays`` (name -> array or (dtype, shape))
    is 1-D and that all have the same length; return that length."""
    n = None
    for name in _FIELDS:
        if name not in arrays:
            continue
        shape = arrays[name].shape
        if len(shape) != 1:
            raise TraceError(f"{path}: {label} '{name}' must be 1-D, has shape {shape}")
        if n is None:
            n = shape[0]
        elif shape[0] != n:
            lens = ", ".join(f"{k} {arrays[k].shape[0]}" for k in _FIELDS if k in arrays)
            raise TraceError(f"{path}: arrays have unequal lengths: {lens}")
    return n or 0


def _check_dtype_kind(path: str, label: str, name: str, dtype: np.dtype) -> None:
    """Header-level dtype check (before any value is read)."""
    if dtype.kind not in "ui":
        raise TraceError(f"{path}: {label} '{name}' has dtype {dtype}, "
                         f"expected {_FIELD_DTYPES[name]}")



# --------------------------------------------------------------------------
# the reader interface
# --------------------------------------------------------------------------


class Trace:
    """An opened trace.  Create it with :func:`open_trace`.

    Attributes: ``path`` (str), ``format`` (``'npz'``, ``'npy'`` or
    ``'lackey'``), ``n_records`` (the record count, or ``None`` for lackey
    text, whose length is only known once it has been read) and
    ``ignored_members`` (the keys of the members of an ``.npz`` that are
    not trace arrays, as ``np.load`` names them, sorted; empty for other
    formats).

    The trace keeps its one open file (:class:`~emu.workload.traces.source.Source`)
    until :meth:`close`, the end of a ``with`` block, or garbage collection.
    """

    path: str
    format: str
    n_records: Optional[int]
    ignored_members: tuple = ()

    def __init__(self, source: Source, format: str, n_records: Optional[int]):
        self.source = source
        self.path = source.path
        self.format = format
        self.n_records = n_records
        self._iterated = False

    def chunks(self, chunk: int = 1 << 20, exact: bool = True) -> Iterator[TraceChunk]:
        """Iterate over the trace as :class:`TraceChunk` s of ``chunk`` records
        (the last may be shorter).  With ``exact`` false a chunk may be
        shorter anywhere (never longer): the reader's blocks are then cut
        without being joined, which saves a copy where a format's blocks do
        not fall on chunk boundaries (lackey text).

        Re-iterable when the trace is a regular file: each call reads it again
        from the start.  A pipe, FIFO or socket is read once: a second call
        raises :class:`TraceError`.  The arrays produced do not depend on
        ``chunk``.  A malformed record raises :class:`TraceError` when the part
        of the file holding it is reached.  ``chunk`` must be an integer >= 1
        (:class:`ConfigError` otherwise).
        """
        chunk = _check_chunk_arg(chunk)
        if self._iterated:
            self.source.check_unread()      # a stream is read once
        self._iterated = True
        if exact:
            return _rechunk(self._blocks(chunk), chunk)
        # NOTE: windows of at most _WINDOW_RECORDS whatever the chunk: a window
        # is then still in the CPU's cache when its chunk is simulated
        # (``emu tlb`` on a .npy of 30 M records, at its default chunk of 1 M
        # records: about a tenth faster)
        return _cut(self._blocks(min(chunk, _WINDOW_RECORDS)), chunk)

    def _blocks(self, chunk: int) -> Iterator[tuple]:  # pragma: no cover - abstract
        """The reader interface, one per format: yield the file's records, from
        the start, as validated ``(addr uint64, kind uint8, size uint32 | None)``
        arrays of any length, freshly allocated; ``chunk`` is a hint (a block
        whose length is a multiple of it is cut into chunks without copying).
        Raise :class:`TraceError` naming the file for a bad record."""
        raise NotImplementedError

    def close(self) -> None:
        """Close the trace's file (idempotent); reading it then raises."""
        self.source.close()

    def __enter__(self) -> "Trace":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Trace {self.format} {self.path!r} n_records={self.n_records}>"


_END = object()


def read_ahead(items: Iterable) -> Iterator:
    """Yield the items of ``items`` in order, each produced on a helper
    thread while the consumer works on the one before: the reading, checks
    and conversion of a trace's next chunk run beside the simulation of this
    one (the system calls, zlib, numpy and the simulation kernel release
    the GIL).  Memory holds at most two items at a time.

    An exception raised producing an item is raised here, in its turn.
    Closing this iterator waits for the item in production, then closes
    ``items``; an interruption (Ctrl-C) does not wait for it."""
    # NOTE: one helper for all the items, told when to go on: starting a
    # thread per item cost 50-60 us each, about 5 ms of a .npy's 115 windows
    it = iter(items)
    box: list = []
    go = threading.Semaphore(1)         # the helper may produce one item
    done = threading.Semaphore(0)       # an item (or the end, or an error) is in box
    stop = False

    def produce() -> None:
        while True:
            go.acquire()
            if stop:
                return
            try:
                item = (True, next(it, _END))
            except BaseException as e:     # handed to the consumer, which raises it
                item = (False, e)
            box.append(item)
            done.release()
            if item[1] is _END or not item[0]:
                return

    helper = threading.Thread(target=produce, name="emu-read-ahead", daemon=True)
    helper.start()
    producing = True                    # the helper is at work on the item awaited
    abandoned = False
    try:
        while True:
            done.acquire()
            producing = False
            ok, value = box.pop()
            if not ok:
                raise value
            if value is _END:
                return
            go.release()                # the next item, while this one is used
            producing = True
            yield value
    except GeneratorExit:
        raise
    except BaseException:
        abandoned = producing           # interrupted while the helper waits, on a pipe say
        raise
    finally:
        stop = True
        go.release()                    # the helper ends after the item it is on
        if not abandoned:
            helper.join()
            close = getattr(it, "close", None)
            if close is not None:
                close()


def _window(chunk: int, itemsize: int = 8) -> int:
    """Records per read window: a multiple of ``chunk`` near _WINDOW_RECORDS,
    so that chunks are cut from windows as views, without copying; fewer
    for records of more than _RECORD_BYTES bytes (a structured ``.npy`` may
    pad its records with fields emu does not read, of any size), so that a
    window never takes more memory than one of such records would."""
    w = chunk * max(1, _WINDOW_RECORDS // chunk)
    if itemsize > _RECORD_BYTES:
        w = max(1, w * _RECORD_BYTES // itemsize)
    return w


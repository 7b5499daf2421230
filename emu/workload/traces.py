"""Memory-access traces: readers, writers and a synthetic program-like trace.

A trace is a sequence of records, each a byte address, a kind and a size:

=====  ==================  ===========================================
field  dtype               meaning
=====  ==================  ===========================================
addr   uint64              byte address of the access
kind   uint8               0 = instruction fetch, 1 = load, 2 = store,
                           3 = modify (load + store, valgrind's ``M``)
size   uint32 (optional)   bytes accessed, 1..65536; absent means 1
=====  ==================  ===========================================

Three on-disk formats are read, detected by content first (magic bytes) and
by extension second:

``npz``
    a zip of ``.npy`` arrays ``addr`` (required), ``kind`` (optional: absent
    means every record is a load) and ``size`` (optional).  Loaded whole, with
    ``allow_pickle=False``, and validated when opened.
``npy``
    a structured array with fields ``addr`` / ``kind`` / ``size`` (the last
    two optional) or a plain 1-D integer array of addresses (all loads).
    Opened memory-mapped and read in windows, so a trace larger than RAM is
    processed in bounded memory; values are validated window by window, so a
    bad value deep in the file raises when its window is reached.
``lackey``
    the text printed by ``valgrind --tool=lackey --trace-mem=yes``, plain or
    gzip-compressed (recognised by the gzip magic bytes).  Parsed streaming,
    block by block, with vectorised numpy code (several million lines a
    second); an error deep in the file raises when its block is reached.

Every problem with a trace is raised as :class:`emu.errors.TraceError` whose
one-line message names the file and the problem.

Chunks are produced identically whatever the chunk size: concatenating the
chunks of ``trace.chunks(7)`` gives the same arrays as ``trace.chunks(1000)``.
"""
from __future__ import annotations

import gzip
import numbers
import os
import re
import secrets
import shutil
import tempfile
import warnings
import zipfile
import zlib
from dataclasses import dataclass
from typing import BinaryIO, Callable, Iterable, Iterator, Optional

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from emu.errors import ConfigError, TraceError

__all__ = [
    "KIND_INST",
    "KIND_LOAD",
    "KIND_STORE",
    "KIND_MODIFY",
    "MAX_SIZE",
    "TraceChunk",
    "Trace",
    "open_trace",
    "write_trace_npz",
    "write_trace_npy",
    "import_lackey",
    "default_trace_path",
    "synthetic_trace",
    "filter_kinds",
]

KIND_INST = 0
KIND_LOAD = 1
KIND_STORE = 2
KIND_MODIFY = 3
#: largest access size accepted, in bytes
MAX_SIZE = 65536

_FIELDS = ("addr", "kind", "size")
_NPY_MAGIC = b"\x93NUMPY"
_GZIP_MAGIC = b"\x1f\x8b"
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")  # local file header; empty archive

#: records read per window from .npy / .npz traces (rounded to a multiple of
#: the chunk size, and never fewer than one chunk)
_WINDOW_RECORDS = 1 << 18
#: bytes of lackey text parsed per block
_LACKEY_BLOCK = 1 << 22
#: a partial lackey line longer than this can only become a valgrind message
#: or a blank line (the grammar bounds a record line to ~220 bytes), so the
#: reader refuses it early instead of buffering an endless "line" of garbage
_MAX_RECORD_LINE = 4096
#: a valgrind ``==pid==`` message or blank line longer than this is malformed
_MAX_COMMENT_LINE = 1 << 20


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
        for name, dtype in (("addr", np.uint64), ("kind", np.uint8), ("size", np.uint32)):
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


def _conv_addr(path: str, what: str, a: np.ndarray, base: int = 0) -> np.ndarray:
    """Return ``a`` as a new C-contiguous uint64 array, or raise.

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
    return np.array(a, dtype=np.uint64, order="C", copy=True)


def _conv_ranged(path: str, what: str, a: np.ndarray, lo: int, hi: int, dtype,
                 base: int = 0, hint: str = "") -> np.ndarray:
    """Return integer array ``a`` as a new C-contiguous ``dtype`` array after
    checking that every value lies in ``lo..hi``; raise otherwise."""
    if a.dtype.kind not in "ui":
        raise TraceError(f"{path}: {what} has dtype {a.dtype}, expected {np.dtype(dtype)}")
    if a.size and (a.min() < lo or a.max() > hi):
        i = _first_bad((a < lo) | (a > hi))
        raise TraceError(
            f"{path}: {what} has value {int(a[i])} at record {base + i}, expected {lo}..{hi}{hint}"
        )
    return np.array(a, dtype=dtype, order="C", copy=True)


_KIND_HINT = " (0=instruction, 1=load, 2=store, 3=modify)"


def _conv_block(path: str, label: str, addr, kind, size, base: int):
    """Validate and convert one block of raw field arrays (any may be a view
    of a memory map).  ``kind`` None means all loads; ``size`` None means no
    sizes.  Returns fresh ``(uint64, uint8, uint32|None)`` arrays."""
    a = _conv_addr(path, f"{label} 'addr'", addr, base)
    if kind is None:
        k = np.ones(len(a), np.uint8)
    else:
        k = _conv_ranged(path, f"{label} 'kind'", kind, 0, 3, np.uint8, base, _KIND_HINT)
    s = None
    if size is not None:
        s = _conv_ranged(path, f"{label} 'size'", size, 1, MAX_SIZE, np.uint32, base)
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
        expected = {"addr": "uint64", "kind": "uint8", "size": "uint32"}[name]
        raise TraceError(f"{path}: {label} '{name}' has dtype {dtype}, expected {expected}")


# --------------------------------------------------------------------------
# traces
# --------------------------------------------------------------------------


class Trace:
    """An opened trace file.  Create it with :func:`open_trace`.

    Attributes: ``path`` (str), ``format`` (``'npz'``, ``'npy'`` or
    ``'lackey'``) and ``n_records`` (the record count, or ``None`` for lackey
    text, whose length is only known once it has been read).
    """

    path: str
    format: str
    n_records: Optional[int]

    def __init__(self, path: str, format: str, n_records: Optional[int]):
        self.path = path
        self.format = format
        self.n_records = n_records

    def chunks(self, chunk: int = 1 << 20) -> Iterator[TraceChunk]:
        """Iterate over the trace as :class:`TraceChunk` s of ``chunk`` records
        (the last may be shorter).

        Re-iterable: each call reads the file again from the start.  The
        arrays produced do not depend on ``chunk``.  A malformed record raises
        :class:`TraceError` when the part of the file holding it is reached.
        ``chunk`` must be an integer >= 1 (:class:`ConfigError` otherwise).
        """
        chunk = _check_chunk_arg(chunk)
        return _rechunk(self._blocks(chunk), chunk)

    def _blocks(self, chunk: int) -> Iterator[tuple]:  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<Trace {self.format} {self.path!r} n_records={self.n_records}>"


def _window(chunk: int) -> int:
    """Records per read window: a multiple of ``chunk`` near _WINDOW_RECORDS,
    so that chunks are cut from windows as views, without copying."""
    return chunk * max(1, _WINDOW_RECORDS // chunk)


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


# --------------------------------------------------------------------------
# lackey text
# --------------------------------------------------------------------------

# The lackey line grammar, as one regular expression matched over a whole
# block of lines at once.  A record line is
#     [ws]{0,64} LETTER [ws]{1,64} HEX{1,16} , DEC{1,10} [ws/CR]{0,64}
# with LETTER one of I, L, S, M; valgrind's "==pid== ..." message lines and
# blank lines are accepted and skipped.  Every quantifier is possessive
# (Python >= 3.11), so the engine never backtracks and keeps no per-line
# state: it checks several million lines a second, and when it stops early
# the match ends exactly at the start of the first malformed line.
_WS_RUN = 64
_LACKEY_BLOCK_RE = re.compile(
    rb"(?:(?:"
    rb"[ \t]{0,%d}+[ILSM][ \t]{1,%d}+[0-9a-fA-F]{1,16}+,[0-9]{1,10}+[ \t\r]{0,%d}+"
    rb"|==[^\n]{0,%d}+"
    rb"|[ \t\r]{0,%d}+"
    rb")\n)*+" % (_WS_RUN, _WS_RUN, _WS_RUN, _MAX_COMMENT_LINE - 2, _MAX_COMMENT_LINE)
)
_COMMENT_LINE_RE = re.compile(rb"^==[^\n]*\n", re.M)
_WS = b" \t\r"
_KIND_OF_LETTER = np.zeros(256, np.uint8)
for _i, _c in enumerate(b"ILSM"):
    _KIND_OF_LETTER[_c] = _i            # I=0, L=1, S=2, M=3
del _i, _c
_EMPTY = (np.empty(0, np.uint64), np.empty(0, np.uint8), np.empty(0, np.uint32))


def _parse_lackey_block(data: bytes):
    """Parse complete lackey lines (``data`` ends with ``\\n``).

    Returns ``(addr, kind, size, n_lines, bad)``: the records of the block
    (uint64, uint8, uint32), the number of lines it holds, and ``bad`` =
    ``None`` or ``(line index in block, reason)`` for the first bad line
    (the arrays are then ``None``).  See ``_LACKEY_BLOCK_RE`` for the
    grammar; sizes must also lie in 1..MAX_SIZE.
    """
    # NOTE: contorted for speed.  A regex per line with int(x, 16) runs at
    # ~1 M lines/s.  Here one possessive regex validates the whole block in
    # C; then, with the syntax known to be right, the fields are cut out with
    # whole-block bytes/numpy operations: drop "==" lines, delete every
    # whitespace byte (a record becomes "I0401ab70,3"), find newlines and
    # commas, and convert the hex digits with bytes.fromhex, grouped by width.
    text = data
    n_lines = data.count(b"\n")
    end = _LACKEY_BLOCK_RE.match(data).end()
    if end != len(data):
        # report the first error in file order: a bad size before this line?
        bad = _parse_lackey_block(data[:end])[4] if end else None
        return None, None, None, n_lines, bad or (data.count(b"\n", 0, end), "malformed")
    if data.startswith(b"==") or b"\n==" in data:
        data = _COMMENT_LINE_RE.sub(b"", data)
    q = data.translate(None, _WS)
    Q = np.frombuffer(q, np.uint8)
    e = np.flatnonzero(Q == 10)              # line ends (records and blank lines)
    s = np.empty_like(e)                     # line starts
    if len(e):
        s[0] = 0
        s[1:] = e[:-1] + 1
    if len(e) and (e == s).any():            # blank lines
        keep = e != s
        s, e = s[keep], e[keep]
    m = len(s)
    if m == 0:
        return (*_EMPTY, n_lines, None)
    c = np.flatnonzero(Q == 44)              # one comma per record, in order
    kind = _KIND_OF_LETTER[Q[s]]

    addr = np.empty(m, np.uint64)
    width = c - s - 1                        # hex digits: 1..16
    counts = np.bincount(width, minlength=17)
    for w in np.flatnonzero(counts):
        rows = slice(None) if counts[w] == m else np.flatnonzero(width == w)
        digits = sliding_window_view(Q, w)[c[rows] - w]       # (k, w) ASCII hex
        txt = np.full((len(digits), 16), ord("0"), np.uint8)  # left-pad with '0'
        txt[:, 16 - w:] = digits
        addr[rows] = np.frombuffer(bytes.fromhex(txt.tobytes().decode("ascii")), ">u8")

    nd = e - c - 1                           # decimal digits: 1..10
    size = Q[c + 1].astype(np.int64) - 48
    for col in range(1, int(nd.max())):
        rows = np.flatnonzero(nd > col)
        size[rows] = size[rows] * 10 + (Q[c[rows] + 1 + col].astype(np.int64) - 48)
    bad_size = (size < 1) | (size > MAX_SIZE)
    if bad_size.any():
        i = _first_bad(bad_size)
        reason = f"size {int(size[i])} out of range 1..{MAX_SIZE}"
        return None, None, None, n_lines, (_record_line_index(text, i), reason)
    return addr, kind, size.astype(np.uint32), n_lines, None


def _record_line_index(text: bytes, i: int) -> int:
    """Index of the line of ``text`` that holds record number ``i`` (slow:
    for error messages only)."""
    for lineno, line in enumerate(text.split(b"\n")):
        if not line.startswith(b"==") and line.strip(_WS):
            if i == 0:
                return lineno
            i -= 1
    raise AssertionError("record index out of range")  # pragma: no cover


def _show_line(line: bytes) -> str:
    """A line for an error message: its first 60 bytes, quoted, with
    non-printable bytes escaped (``'foo\\xff'``)."""
    return repr(line[:60])[1:]


class _LackeyTrace(Trace):
    """A valgrind lackey ``--trace-mem=yes`` text trace, plain or gzip."""

    def __init__(self, path: str, gz: bool):
        self._gz = gz
        super().__init__(path, "lackey", None)
        # Probe the first block so that a file that is not lackey text at all
        # (or a corrupt gzip stream) is refused by open_trace itself.
        probe = self._parsed(1 << 16)
        try:
            first = next(probe, None)
        finally:
            probe.close()
        if first is None:
            raise TraceError(f"{path}: empty trace (the gzip stream holds no data)")

    def _open(self) -> BinaryIO:
        try:
            raw = open(self.path, "rb")
        except OSError as e:
            raise TraceError(f"{self.path}: cannot read: {e.strerror or e}") from None
        return gzip.GzipFile(fileobj=raw, mode="rb") if self._gz else raw

    def _read(self, f: BinaryIO, n: int) -> bytes:
        try:
            return f.read(n)
        except (OSError, EOFError, zlib.error) as e:  # gzip.BadGzipFile is an OSError
            what = "corrupt or truncated gzip data" if self._gz else "cannot read"
            raise TraceError(f"{self.path}: {what} ({type(e).__name__}: {e})") from None

    def _parsed(self, block_bytes: Optional[int] = None) -> Iterator[tuple]:
        """Yield ``(addr, kind, size)`` per block of text, even for a block
        holding no records, so that only an empty stream yields nothing."""
        path = self.path
        block_bytes = block_bytes or _LACKEY_BLOCK
        f = self._open()
        try:
            lineno = 0      # lines before the current block
            carry = b""     # incomplete last line of the previous read
            while True:
                buf = self._read(f, block_bytes)
                if buf:
                    data = carry + buf if carry else buf
                    cut = data.rfind(b"\n") + 1
                    data, carry = data[:cut], data[cut:]
                    if len(carry) > _MAX_RECORD_LINE:
                        self._check_long_line(carry, lineno + data.count(b"\n") + 1)
                elif carry:
                    data, carry = carry + b"\n", b""
                else:
                    break           # end of stream (nothing yielded if it was empty)
                if not data:
                    continue
                addr, kind, size, n_lines, bad = _parse_lackey_block(data)
                if bad is not None:
                    idx, reason = bad
                    line = _show_line(data.split(b"\n", idx + 1)[idx])
                    if reason == "malformed":
                        reason = "malformed lackey line"
                    raise TraceError(f"{path}:{lineno + idx + 1}: {reason}: {line}")
                lineno += n_lines
                yield addr, kind, size
        finally:
            f.close()

    def _check_long_line(self, line: bytes, lineno: int) -> None:
        """A line still without its newline after _MAX_RECORD_LINE bytes must
        be a valgrind message or blank (up to _MAX_COMMENT_LINE bytes)."""
        comment = line.startswith(b"==") or not line.translate(None, b" \t\r")
        if comment and len(line) <= _MAX_COMMENT_LINE:
            return
        raise TraceError(f"{self.path}:{lineno}: malformed lackey line: {_show_line(line)}")

    def _blocks(self, chunk: int) -> Iterator[tuple]:
        for addr, kind, size in self._parsed():
            if len(addr):
                yield addr, kind, size


# --------------------------------------------------------------------------
# opening
# --------------------------------------------------------------------------


def _fspath(path) -> str:
    try:
        return os.fspath(path)
    except TypeError:
        raise TraceError(f"{path!r}: not a file path") from None


def open_trace(path) -> Trace:
    """Open the trace at ``path``, detecting its format, and return a
    :class:`Trace`.

    The format is decided by content (zip magic -> npz, ``\\x93NUMPY`` ->
    npy, gzip magic or anything else -> lackey text); a ``.npz`` / ``.npy``
    file whose content is not a zip / npy is refused.  npz traces are read
    and validated whole; npy headers and the first block of lackey text are
    checked.  Raises :class:`TraceError` naming the file and the problem.
    """
    path = _fspath(path)
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except FileNotFoundError:
        raise TraceError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise TraceError(f"{path}: is a directory, not a trace file") from None
    except OSError as e:
        raise TraceError(f"{path}: cannot read: {e.strerror or e}") from None
    if not head:
        raise TraceError(f"{path}: empty trace (the file is empty)")
    ext = os.path.splitext(path)[1].lower()
    if head.startswith(_ZIP_MAGICS):
        return _NpzTrace(path)
    if head.startswith(_NPY_MAGIC):
        return _NpyTrace(path)
    if ext == ".npz":
        raise TraceError(f"{path}: not a valid npz file (no zip signature)")
    if ext == ".npy":
        raise TraceError(f"{path}: not a valid npy file (no NUMPY magic)")
    return _LackeyTrace(path, gz=head.startswith(_GZIP_MAGIC))


# --------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------


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


# --------------------------------------------------------------------------
# shipped and synthetic traces, filtering
# --------------------------------------------------------------------------


def default_trace_path() -> str:
    """Path of the real-program trace shipped with emu (``emu/data/ls.npz``:
    valgrind lackey of ``ls -l /etc``; see ``emu/data/README.md``)."""
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data", "ls.npz")
    if not os.path.isfile(path):
        raise TraceError(f"{path}: no such file (the shipped trace is missing; reinstall emu)")
    return path


def synthetic_trace(n: int, seed: int = 0, pages: int = 256, *, page_size: int = 4096,
                    code_pages: int = 16, stack_pages: int = 4, sweep_pages: int = 64,
                    stride: int = 64, zipf_a: float = 1.1, loop_len: int = 48,
                    loop_iters: int = 20,
                    mix: tuple = (0.55, 0.15, 0.20, 0.10)) -> TraceChunk:
    """A deterministic, program-like synthetic trace of ``n`` records.

    Every record comes from one of four streams, picked independently with
    probabilities ``mix`` = (code, stack, heap, sweep):

    * **code** (kind 0, size 4): a loop of ``loop_len`` consecutive 4-byte
      instructions run ``loop_iters`` times, then another loop starting at a
      random instruction of a ``code_pages``-page code region at 0x10000000;
    * **stack** (loads/stores/modifies 6:3:1, size 4 or 8): a stack pointer
      doing a +-8-byte random walk inside ``stack_pages`` pages below
      0x7fff0000, accessed at small offsets above it;
    * **heap** (same kind mix, sizes 1, 2, 4, 8): a Zipf(``zipf_a``) working
      set over ``pages`` pages at 0x20000000 (page rank -> page through a
      fixed random permutation), random aligned offset within the page;
    * **sweep** (same kind mix, size 8): an array of ``sweep_pages`` pages at
      0x30000000 swept with ``stride`` bytes, wrapping around.

    Addresses stay below 2**32.  Same arguments -> same arrays (numpy
    ``default_rng(seed)``).  Bad arguments raise :class:`ConfigError`.
    """
    for name, v in (("n", n), ("pages", pages), ("page_size", page_size), ("code_pages", code_pages),
                    ("stack_pages", stack_pages), ("sweep_pages", sweep_pages), ("stride", stride),
                    ("loop_len", loop_len), ("loop_iters", loop_iters)):
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < (0 if name == "n" else 1):
            raise ConfigError(f"synthetic_trace: {name} must be an integer >= {0 if name == 'n' else 1}, got {v!r}")
    p = np.asarray(mix, dtype=float)
    if p.shape != (4,) or (p < 0).any() or p.sum() <= 0:
        raise ConfigError(f"synthetic_trace: mix must be 4 non-negative weights, got {mix!r}")
    if not zipf_a > 0:
        raise ConfigError(f"synthetic_trace: zipf_a must be > 0, got {zipf_a!r}")
    if page_size & (page_size - 1) or page_size < 8:
        raise ConfigError(f"synthetic_trace: page_size must be a power of two >= 8, got {page_size}")
    rng = np.random.default_rng(seed)
    n = int(n)
    stream = rng.choice(4, size=n, p=p / p.sum())
    addr = np.zeros(n, np.int64)          # all addresses < 2**32: int64 arithmetic is exact
    kind = np.zeros(n, np.uint8)
    size = np.zeros(n, np.uint32)
    data_kinds = np.array([KIND_LOAD] * 6 + [KIND_STORE] * 3 + [KIND_MODIFY], np.uint8)

    # code: loops of loop_len instructions, each run loop_iters times
    idx = np.flatnonzero(stream == 0)
    j = np.arange(len(idx))
    per_loop = loop_len * loop_iters
    code_insns = code_pages * page_size // 4
    start = rng.integers(0, max(1, code_insns - loop_len), size=len(idx) // per_loop + 1)
    addr[idx] = 0x1000_0000 + 4 * (start[j // per_loop] + j % loop_len)
    kind[idx] = KIND_INST
    size[idx] = 4

    # stack: +-8-byte random walk of the stack pointer, small offsets above it
    idx = np.flatnonzero(stream == 1)
    stack_bytes = stack_pages * page_size
    sp = np.cumsum(rng.choice(np.array([-8, 8]), size=len(idx))) % max(8, stack_bytes - 64)
    off = rng.integers(0, 8, size=len(idx)) * 8
    addr[idx] = 0x7FFF_0000 - stack_bytes + sp + off
    kind[idx] = data_kinds[rng.integers(0, 10, size=len(idx))]
    size[idx] = rng.choice(np.array([4, 8]), size=len(idx))

    # heap: Zipf over pages, rank -> page through a fixed permutation
    idx = np.flatnonzero(stream == 2)
    w = 1.0 / np.arange(1, pages + 1) ** zipf_a
    rank = rng.choice(pages, size=len(idx), p=w / w.sum())
    page = rng.permutation(pages)[rank]
    off = rng.integers(0, page_size // 8, size=len(idx)) * 8
    addr[idx] = 0x2000_0000 + page * page_size + off
    kind[idx] = data_kinds[rng.integers(0, 10, size=len(idx))]
    size[idx] = rng.choice(np.array([1, 2, 4, 8]), size=len(idx))

    # sweep: strided pass over an array, wrapping, 8-byte aligned
    idx = np.flatnonzero(stream == 3)
    sweep_bytes = sweep_pages * page_size
    addr[idx] = 0x3000_0000 + ((np.arange(len(idx)) * stride) % sweep_bytes & ~7)
    kind[idx] = data_kinds[rng.integers(0, 10, size=len(idx))]
    size[idx] = 8
    return TraceChunk(addr.astype(np.uint64), kind, size)


_KIND_FILTERS = {"all", "data", "inst"}


def filter_kinds(chunk: TraceChunk, kinds: str) -> TraceChunk:
    """Keep the records of ``chunk`` of the given kinds: ``'all'`` (returns
    ``chunk`` itself), ``'data'`` (loads, stores, modifies: kinds 1..3) or
    ``'inst'`` (instruction fetches: kind 0).  Other values raise
    :class:`ConfigError`."""
    if kinds not in _KIND_FILTERS:
        raise ConfigError(f"kinds must be one of 'all', 'data', 'inst', got {kinds!r}")
    if kinds == "all":
        return chunk
    keep = chunk.kind != KIND_INST if kinds == "data" else chunk.kind == KIND_INST
    return TraceChunk(chunk.addr[keep], chunk.kind[keep],
                      None if chunk.size is None else chunk.size[keep])

"""Trace-driven simulation of one TLB, no virtualization (``emu tlb``).

>>> import numpy as np
>>> from emu.run.tlb import TLBSimConfig, simulate_arrays
>>> pages = np.arange(65 * 10) % 65                 # a cyclic sweep over 65 pages
>>> result = simulate_arrays(pages * 4096, config=TLBSimConfig(entries=64, policy="fifo"))
>>> result["misses"], result["hits"]                  # a 64-entry FIFO misses every time
(650, 0)
"""

from __future__ import annotations

import dataclasses
from contextlib import closing
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from emu.digits import plain
from emu.errors import ConfigError, TraceError
from emu.report.columns import table
from emu.hw.tlb import check_geometry, make_plain_tlb, page_shift
from emu.run import stop
from emu.workload.traces import TraceChunk, open_trace, read_ahead
from emu.workload.traces.base import _KIND_HINT, MAX_SIZE, _conv_ranged

try:
    from emu.workload.traces._records import one_page_each
except ImportError:  # pragma: no cover - not built: the sizes always go to the kernel
    one_page_each = None

KINDS = {"all": 0b1111, "data": 0b1110, "inst": 0b0001}


@dataclass(frozen=True)
class TLBSimConfig:
    """What ``emu tlb`` simulates: one TLB and which records feed it."""

    entries: int = 64
    ways: Optional[int] = None          # None: fully associative
    policy: str = "fifo"
    page_size: int = 4096
    kinds: str = "all"                  # all | data (L, S, M) | inst (I)
    seed: int = 0
    backend: str = "cython"
    chunk: int = 1 << 20                # records per fast-path call

    def validate(self) -> "TLBSimConfig":
        check_geometry(self.entries, self.ways, self.policy)
        page_shift(self.page_size)
        if self.kinds not in KINDS:
            raise ConfigError(f"unknown kinds {self.kinds!r} (choose from: all, data, inst)")
        if (isinstance(self.chunk, bool) or not isinstance(self.chunk, int)
                or not 1 <= self.chunk <= 1 << 26):
            raise ConfigError(f"chunk must be an integer in 1..2**26, got {self.chunk!r}")
        if (isinstance(self.seed, bool) or not isinstance(self.seed, int)
                or not 0 <= self.seed < 1 << 64):
            raise ConfigError(f"seed must be an integer in 0..2**64-1, got {self.seed!r}")
        return self

    def as_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["ways"] = self.entries if self.ways is None else self.ways
        return d


def _summary(tlb, config: TLBSimConfig, records_read: int, trace: dict) -> dict:
    c = tlb.counters()
    translations = c["translations"]
    return {
        "records": c["records"],
        "records_read": records_read,
        "translations": translations,
        "hits": c["hits"],
        "misses": c["misses"],
        # (None, not 0: of no translation, no share missed, nor hit)
        "miss_rate": c["misses"] / translations if translations else None,
        "compulsory_misses": c["compulsory_misses"],
        "config": config.as_dict(),
        "trace": trace,
    }


def simulate_chunks(chunks, config: TLBSimConfig, trace_info: dict | None = None,
                    progress: Callable[[int], None] | None = None) -> dict:
    """Run an iterable of trace chunks (objects with addr, kind, size) through one TLB."""
    config = _checked_config(config)
    tlb = make_plain_tlb(config.entries, config.ways, config.policy, config.page_size,
                         config.seed, config.backend)
    mask = KINDS[config.kinds]
    read = 0
    for ch in chunks:
        stop.check()                # SIGTERM or Ctrl-C whose raise was lost
        bad = tlb.run(ch.addr, ch.kind, ch.size, mask)
        if bad >= 0:
            raise TraceError(_invalid_record(ch, bad, read + bad))
        read += len(ch.addr)
        if progress is not None:
            progress(len(ch.addr))
    return _summary(tlb, config, read, trace_info or {})


def _invalid_record(chunk, i: int, record: int) -> str:
    """Why record ``i`` of ``chunk`` (``record`` of the trace) was refused."""
    k = int(chunk.kind[i])
    if k > 3:
        return f"kind {k} at record {record} is not 0..3 (I, L, S, M)"
    return f"size 0 at record {record}"


def _checked_config(config) -> TLBSimConfig:
    """``config`` if it is a :class:`TLBSimConfig`, validated; else ConfigError."""
    if not isinstance(config, TLBSimConfig):
        raise ConfigError(f"config: expected a TLBSimConfig (e.g. TLBSimConfig(entries=32)), "
                          f"got {type(config).__name__} {config!r:.60}")
    # numpy scalars (TLBSimConfig(entries=np.int64(32))) as the Python numbers they hold
    held = {f.name: plain(getattr(config, f.name)) for f in dataclasses.fields(config)}
    return dataclasses.replace(config, **held).validate()


def _addresses(addr) -> np.ndarray:
    """``addr`` as uint64 byte addresses; TraceError (one line) naming the first
    record that is no address: negative, fractional, not finite or >= 2**64."""
    a = np.asarray(addr)
    if a.ndim != 1:
        raise TraceError(f"addr: expected a 1-D array of byte addresses, got an array of "
                         f"shape {a.shape}")
    if a.dtype.kind == "f" and not isinstance(addr, np.ndarray):
        # a list of Python integers one of which is past int64 (2**64 - 1): numpy
        # makes floats of them all, which cannot hold such an address
        exact = np.asarray(addr, dtype=object)
        if all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in exact):
            a = exact
    kind = a.dtype.kind
    if kind == "u":                     # every value is an address: nothing to look at
        return np.ascontiguousarray(a, dtype=np.uint64)
    if kind == "i":
        bad = a < 0
    elif kind == "f":
        with np.errstate(invalid="ignore"):
            bad = ~np.isfinite(a) | (a < 0) | (a >= 2.0 ** 64) | (a != np.floor(a))
    elif kind == "O":
        bad = np.array([isinstance(v, bool) or not isinstance(v, (int, np.integer))
                        or not 0 <= v < 1 << 64 for v in a], bool)
    else:
        raise TraceError(f"addr: expected byte addresses (integers >= 0), got an array of "
                         f"{a.dtype}")
    if bad.any():
        i = int(np.argmax(bad))
        v = a[i].item() if isinstance(a[i], np.generic) else a[i]
        raise TraceError(f"addr: record {i} is {v!r}: expected byte addresses, integers "
                         f"in 0..2**64-1")
    return np.ascontiguousarray(a, dtype=np.uint64)


def _field(name: str, values, lo: int, hi: int, dtype, hint: str = "") -> np.ndarray:
    """``values`` as a contiguous ``dtype`` array, every one an integer in
    ``lo..hi``; TraceError (one line) naming the first that is not, as a
    trace file's reader says it (not wrapped or cut to the dtype first)."""
    a = np.asarray(values)
    if a.size == 0 and a.dtype.kind == "f":     # an empty list: no wrong value
        a = a.astype(dtype)
    if a.ndim != 1:
        raise TraceError(f"{name}: expected a 1-D array, got an array of shape {a.shape}")
    return _conv_ranged(name, "the array", a, lo, hi, dtype, hint=hint)


def simulate_arrays(addr, kind=None, size=None, config: TLBSimConfig = TLBSimConfig()) -> dict:
    """Simulate in-memory arrays (addr bytes; kind defaults to loads).  An
    address that is negative or not a whole number is refused (TraceError)."""
    config = _checked_config(config)
    addr = _addresses(addr)
    kind = (np.ones(len(addr), np.uint8) if kind is None
            else _field("kind", kind, 0, 3, np.uint8, _KIND_HINT))
    size = None if size is None else _field("size", size, 1, MAX_SIZE, np.uint32)
    if len(kind) != len(addr) or (size is not None and len(size) != len(addr)):
        raise TraceError("addr, kind and size must have equal lengths")
    step = config.validate().chunk
    chunks = (TraceChunk(addr[i:i + step], kind[i:i + step],
                         None if size is None else size[i:i + step])
              for i in range(0, len(addr), step))
    return simulate_chunks(chunks, config, {"source": "arrays"})


def simulate_trace(path, config: TLBSimConfig = TLBSimConfig(),
                   progress: Callable[[int], None] | None = None) -> dict:
    """Simulate a trace file (.npz, .npy, or lackey text/gzip), read once
    from its start in bounded memory (a pipe or FIFO as well as a file), the
    next chunk read while this one is simulated (:func:`read_ahead`).
    ``trace.ignored_members`` names the members of an ``.npz`` that are not
    trace arrays."""
    config = _checked_config(config)
    with open_trace(path) as trace:
        if trace.n_records == 0:          # as a lackey text of no record is refused
            raise TraceError(f"{path}: empty trace (it holds no records)")
        with closing(read_ahead(_sizes_kept_where_they_count(
                trace.chunks(config.chunk, exact=False), config))) as chunks:
            info = {"path": str(path), "format": trace.format,
                    "ignored_members": list(trace.ignored_members)}
            return simulate_chunks(chunks, config, info, progress)


def _sizes_kept_where_they_count(chunks, config: TLBSimConfig):
    """The chunks, each without its sizes when every access in it lies within
    one page: each record then translates the page of its first byte, as an
    access of one byte would, and the Cython kernel takes its loop without
    the page-straddle checks, to the same counts.

    NOTE: run on the read-ahead thread, beside the simulation: the check costs
    about 0.13 ns a record there and saves about 0.25 in the kernel (``emu
    tlb`` on the benchmark's .npy of 30 M records: 7 ms of 75).  The
    reference backend always gets the sizes, so it stays the independent
    oracle."""
    if config.backend != "cython" or one_page_each is None:
        yield from chunks
        return
    shift = page_shift(config.page_size)
    with closing(chunks):
        for ch in chunks:
            if ch.size is not None and one_page_each(ch.addr, ch.size, shift):
                ch = TraceChunk(ch.addr, ch.kind, None)
            yield ch


def format_table(result: dict, width: Optional[int] = None) -> str:
    """The readable table ``emu tlb`` prints (values wrapped to fit ``width``
    columns if given, see :func:`emu.report.columns.table`)."""
    cfg = result["config"]
    assoc = ("fully associative" if cfg["ways"] == cfg["entries"]
             else f"{cfg['entries'] // cfg['ways']} sets x {cfg['ways']} ways")
    trace = result["trace"]
    rows = [("trace", trace.get("path", trace.get("source", "-")))]
    if trace.get("ignored_members"):
        rows.append(("  ignored", ", ".join(trace["ignored_members"])))
    rows += [
        ("TLB", f"{cfg['entries']} entries, {assoc}, {cfg['policy']}, "
                f"{cfg['page_size']}-byte pages"),
        ("records", f"{result['records']:,} of {result['records_read']:,} ({cfg['kinds']})"),
        ("translations", f"{result['translations']:,}"),
        ("hits", f"{result['hits']:,}"),
        ("misses", f"{result['misses']:,}"),
        ("  compulsory", f"{result['compulsory_misses']:,}"),
        ("miss rate", "- (no translation)" if result["miss_rate"] is None
                      else f"{100 * result['miss_rate']:.4f} %"),
    ]
    return table(None, rows, width, text=[1])

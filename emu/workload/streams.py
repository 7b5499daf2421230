"""Access streams: the memory accesses and events a guest process or host task runs.

A stream is an endless sequence of records ``(ea, kind)``: ``ea`` a 32-bit
effective address (uint32), ``kind`` (uint8) one of

====  ================  =====================================================
kind  name              meaning
====  ================  =====================================================
0     ``KIND_IFETCH``   instruction fetch from ``ea``
1     ``KIND_LOAD``     data load from ``ea``
2     ``KIND_STORE``    data store to ``ea``
3     ``KIND_MODIFY``   load + store (only produced by traces: valgrind ``M``)
4     ``KIND_SYSCALL``  the process makes a system call here (``ea`` is 0)
5     ``KIND_SLEEP``    the process sleeps now for ``sleep_us`` µs (``ea`` is 0)
====  ================  =====================================================

MMIO is not a kind of its own: an MMIO access is an ordinary load or store
whose ``ea`` is a device page (the board's UART at 0xef600000, initial guest
TLB entry 1, ``docs/kvm440.md`` §2.2; or the block device's page).  The
memslot check of the miss handler is what turns it into an exit to QEMU.

A stream's ``spec`` is a :class:`~emu.params.workload.Workload`: the one
workload schema of a scenario file, whose keys, defaults and ranges are
declared in :mod:`emu.params.workload`.  Patterns (``spec.kind``):

``working-set``
    each data access picks one of ``pages`` pages at ``layout.data_base`` —
    uniformly, or Zipf(``zipf_s``) over page ranks (rank r is page r, with
    probability proportional to ``(r + 1) ** -zipf_s`` over the finite page
    count) — and a random 8-byte-aligned offset in it.
``sweep``
    data accesses walk the ``pages`` pages at ``data_base`` sequentially,
    ``stride`` bytes apart, wrapping at the end (stride 4096 touches a new
    page on each access; stride 1024 touches each page 4 times in a row).
``trace``
    the records of the trace file ``path`` (:func:`emu.workload.traces.open_trace`),
    looping back to its start at its end.  Kinds 0..3 are kept; sizes are
    ignored (one access per record); ``inst_fraction`` is ignored (the trace
    carries its own fetches).  **Address folding**: a trace address ``addr``
    (uint64) becomes ``ea = addr & 0xFFFFFFFF``, and if that ``ea >=
    0xC0000000`` (the guest kernel mapping and the device pages) bit 31 is
    cleared, i.e. ``ea -= 0x80000000``, so a user-space trace never aliases
    the kernel or a device (0xC0000000..0xFFFFFFFF fold onto
    0x40000000..0x7FFFFFFF).

For ``working-set`` and ``sweep`` each record is, with probability
``inst_fraction``, an instruction fetch from the code region (``code_pages``
pages at ``layout.code_base``, fetched sequentially 4 bytes at a time and
wrapping: a loop, so code has real locality), otherwise a data access: a
store with probability ``write_fraction``, else a load.

Events: independently of the pattern, each record is an event instead with
probability ``1/syscall_every`` (SYSCALL), ``1/mmio_every`` (an MMIO load or
store — store with probability ``write_fraction`` — to the page of
``mmio_device``) or ``1/sleep_every`` (SLEEP); ``0`` disables an event.  One
uniform draw per record picks among them, so each rate is exact (to 2**-64);
the three rates must add up to at most 1.  An event is *inserted*: it does
not consume the pattern, so the code loop, a sweep and a trace continue
undisturbed after it.

Generation.  A stream is a pure function of its spec, ``seed_seq``, layout
and ``block``, computed record by record by a C kernel (``sg_fill`` in
``emu/_streamgen.pxi``, compiled into :mod:`emu._fastpath`).  ``_np_fill``
below is the same function in numpy, record for record: the tests' oracle,
and the (slow) fallback when the extension lacks the kernel.

* Random numbers are *counter based*.  The records are grouped in blocks of
  ``block`` records; block ``b`` starts at the 64-bit counter
  ``S_b = splitmix64(seed ^ splitmix64(b))``, where ``seed`` is the stream's
  base seed (``seed_seq.generate_state``, which does not mutate
  ``seed_seq``), and record ``p`` of the block takes a fixed number
  ``draws`` (0..3, per stream) of 64-bit numbers, draw ``k`` being wyrand's
  ``wymix(S_b + (p * draws + k + 1) * WYP0)``.  A record's randomness
  therefore depends on (seed, b, p) only: blocks are independent of each
  other, and ``take(a)`` then ``take(b)`` returns exactly what
  ``take(a + b)`` returns, for any split.
* The draws, in order: ``r0`` (only when events are enabled) is compared with
  the cumulative event probabilities scaled to 2**64 — one draw decides.
  ``r1`` holds two 32-bit coins: its low half below ``inst_fraction * 2**32``
  makes an instruction fetch, its high half below ``write_fraction * 2**32``
  a store (for data and MMIO accesses alike).  ``r2`` (working set) is the
  address: page ``floor(r2 * pages / 2**64)`` and offset ``8 * (r2 mod
  page_size/8)``.  Zipf is sampled with an alias table (Walker/Vose) built
  from the exact probabilities, with ``r2 * pages mod 2**64`` as its second
  uniform.  (Traces use ``r0`` and ``r1`` only with events, sweeps no ``r2``.)
* The rest is sequential state carried from record to record: the code-loop
  position, the sweep offset and the trace read position (events leave it
  alone).  Trace records are read in chunks with numpy
  (:meth:`~emu.workload.traces.Trace.chunks`) and folded by the kernel as
  they are copied.

The block size is part of the stream's identity (a different ``block`` gives
a different, equally valid stream); :func:`make_stream` uses the default 4096.
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np

from emu.codes import (  # noqa: F401  (re-exported)
    KIND_IFETCH,
    KIND_LOAD,
    KIND_MODIFY,
    KIND_STORE,
    KIND_SLEEP,
    KIND_SYSCALL,
)
from emu.errors import ConfigError, TraceError
from emu.params.workload import MMIO_DEVICES, Workload, as_workload
from emu.workload.traces import open_trace

__all__ = [
    "KIND_IFETCH",
    "KIND_LOAD",
    "KIND_STORE",
    "KIND_MODIFY",
    "KIND_SYSCALL",
    "KIND_SLEEP",
    "KERNEL_BASE",
    "Layout",
    "AccessStream",
    "make_stream",
    "fold_trace_addr",
]

#: first EA of the guest kernel / device range; user regions stay below it and
#: trace addresses at or above it are folded down (see the module docstring)
KERNEL_BASE = 0xC000_0000

@dataclass(frozen=True)
class Layout:
    """Where a process's regions live in its 32-bit effective address space.

    ``uart_ea`` is the 440 board's UART page, mapped by initial guest TLB
    entry 1 (``docs/kvm440.md`` §2.2); ``block_ea`` is the block
    device's register page (an emu choice, next to the UART).  ``stack_top``
    is recorded for users of the layout; no synthetic pattern uses it yet.
    """

    code_base: int = 0x1000_0000
    data_base: int = 0x2000_0000
    stack_top: int = 0x7FF0_0000
    uart_ea: int = 0xEF60_0000
    block_ea: int = 0xEF70_0000
    page_size: int = 4096

    def device_ea(self, device: str) -> int:
        """EA of the register page of ``device`` (``'uart'`` or ``'block'``)."""
        if device == "uart":
            return self.uart_ea
        if device == "block":
            return self.block_ea
        raise ConfigError(f"mmio_device must be one of {', '.join(MMIO_DEVICES)}, got {device!r}")


def _check_int(name: str, v: Any, lo: int) -> None:
    if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < lo:
        raise ConfigError(f"stream {name} must be an integer >= {lo}, got {v!r}")


def fold_trace_addr(addr: np.ndarray) -> np.ndarray:
    """Fold trace addresses (any unsigned integers) into user EAs (uint32):
    keep the low 32 bits, then clear bit 31 of any EA >= :data:`KERNEL_BASE`
    (0xC0000000..0xFFFFFFFF → 0x40000000..0x7FFFFFFF)."""
    ea = np.asarray(addr).astype(np.uint64) & np.uint64(0xFFFF_FFFF)
    ea = ea.astype(np.uint32)
    high = ea >= np.uint32(KERNEL_BASE)
    ea[high] &= np.uint32(0x7FFF_FFFF)
    return ea


# ---------------------------------------------------------------------------
# The generator kernel: emu._fastpath.sg_fill (C), or _np_fill (numpy, same
# output record for record).  See the module docstring and _streamgen.pxi.

#: layout of the kernel's cfg and state arrays (checked against the extension)
_CFG_FIELDS = ("pattern", "block", "seed", "draws", "pages", "page_shift", "off_mask",
               "data_base", "code_base", "code_words", "sweep_bytes", "stride",
               "inst_thr", "write_thr", "ev_syscall", "ev_mmio", "ev_sleep", "mmio_ea")
_STATE_FIELDS = ("block", "pos", "code", "sweep", "trace")
_CFG = {name: i for i, name in enumerate(_CFG_FIELDS)}
_ST_BLOCK, _ST_POS, _ST_CODE, _ST_SWEEP, _ST_TRACE = range(5)
_PATTERN_CODES = {"working-set/uniform": 0, "working-set/zipf": 1, "sweep": 2, "trace": 3}
_WS_UNIFORM, _WS_ZIPF, _SWEEP, _TRACE = 0, 1, 2, 3

_U64_MAX = (1 << 64) - 1
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_M32 = np.uint64(0xFFFF_FFFF)
_WYP0 = np.uint64(0xA0761D6478BD642F)        # wyrand's increment ...
_WYP1 = np.uint64(0xE7037ED1A0B428DB)        # ... and mixing constant
_EMPTY_U64 = np.zeros(0, np.uint64)
_EMPTY_U32 = np.zeros(0, np.uint32)
_EMPTY_U8 = np.zeros(0, np.uint8)

_kernel_cache: list = []


def _kernel() -> tuple:
    """``(name, fill, alias_build)``: the compiled kernel when the extension
    has it, else the numpy implementation (``name`` ``'cython'`` or
    ``'numpy'``).  A compiled kernel whose layout disagrees with this module
    (a stale build) is an error."""
    if not _kernel_cache:
        try:
            from emu import _fastpath
        except ImportError:
            _fastpath = None
        if _fastpath is None or not hasattr(_fastpath, "sg_fill"):
            _kernel_cache.append(("numpy", _np_fill, _alias_build_py))
        else:
            want_kinds = {"KIND_IFETCH": KIND_IFETCH, "KIND_LOAD": KIND_LOAD, "KIND_STORE": KIND_STORE,
                          "KIND_SYSCALL": KIND_SYSCALL, "KIND_SLEEP": KIND_SLEEP}
            if (tuple(_fastpath.SG_CFG_FIELDS) != _CFG_FIELDS
                    or tuple(_fastpath.SG_STATE_FIELDS) != _STATE_FIELDS
                    or dict(_fastpath.SG_PATTERNS) != _PATTERN_CODES
                    or dict(_fastpath.SG_KINDS) != want_kinds):
                raise ImportError("emu._fastpath's stream kernel does not match emu.workload.streams "
                                  "(a stale build?): rebuild with `pip install -e .`")
            _kernel_cache.append(("cython", _fastpath.sg_fill, _fastpath.sg_alias_build))
    return _kernel_cache[0]


def _np_splitmix64(x: np.ndarray) -> np.ndarray:
    """splitmix64 of each element of a uint64 array (wrapping arithmetic)."""
    z = x + _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


def _np_mul128(a: np.ndarray, b) -> tuple:
    """The 128-bit products ``a * b`` of uint64 arrays as ``(hi, lo)``."""
    s32 = np.uint64(32)
    a0, a1 = a & _M32, a >> s32
    b0, b1 = b & _M32, b >> s32
    p00, p01, p10 = a0 * b0, a0 * b1, a1 * b0
    mid = (p00 >> s32) + (p01 & _M32) + (p10 & _M32)
    return a1 * b1 + (p01 >> s32) + (p10 >> s32) + (mid >> s32), a * b


def _np_wymix(c: np.ndarray) -> np.ndarray:
    """wyrand's output for each (incremented) counter of a uint64 array."""
    hi, lo = _np_mul128(c, c ^ _WYP1)
    return hi ^ lo


def _np_fill(cfg, zthr, zalias, st, ea, kind, off, n, taddr, tkind) -> int:
    """numpy twin of ``emu._fastpath.sg_fill``: the same arguments, the same
    records, the same state updates (slowly: it is the oracle and fallback)."""
    c = {name: int(v) for name, v in zip(_CFG_FIELDS, cfg)}
    done = 0
    while done < n:
        m = min(n - done, 1 << 16)
        if c["pattern"] == _TRACE:          # a window not much longer than the trace left
            m = min(m, 2 * (len(taddr) - int(st[_ST_TRACE])) + 64)
        got = _np_window(c, zthr, zalias, st, ea[off + done:off + done + m],
                         kind[off + done:off + done + m], taddr, tkind)
        done += got
        if got < m:
            break
    return done


def _np_window(c, zthr, zalias, st, ea, kind, taddr, tkind) -> int:
    m = len(ea)
    B, D, pattern = c["block"], c["draws"], c["pattern"]
    blk, pos = int(st[_ST_BLOCK]), int(st[_ST_POS])
    if pos >= B:                                    # as the kernel: normalise lazily
        blk, pos = blk + 1, 0
    q = pos + np.arange(m, dtype=np.int64)         # records from the start of block blk
    b, p = q // B, q % B
    starts = _np_splitmix64(np.uint64(c["seed"])
                            ^ _np_splitmix64(np.arange(blk, blk + int(b[-1]) + 1, dtype=np.uint64)))
    start = starts[b]
    k = iter(range(D))

    def draw():
        return _np_wymix(start + (p * D + next(k) + 1).astype(np.uint64) * _WYP0)

    events = c["ev_sleep"] != 0
    r0 = draw() if events else None
    r1 = draw() if pattern != _TRACE or events else None
    r2 = draw() if pattern in (_WS_UNIFORM, _WS_ZIPF) else None
    if events:
        ev = r0 < np.uint64(c["ev_sleep"])
        sys_ = ev & (r0 < np.uint64(c["ev_syscall"]))
        mmio = ev & ~sys_ & (r0 < np.uint64(c["ev_mmio"]))
        sleep = ev & ~sys_ & ~mmio
    else:
        ev = sys_ = mmio = sleep = np.zeros(m, bool)
    regular = ~ev
    store = (r1 >> np.uint64(32)) < np.uint64(c["write_thr"]) if r1 is not None else None
    out_ea = np.zeros(m, np.uint64)
    out_kind = np.zeros(m, np.uint8)
    got = m
    if pattern == _TRACE:
        t = int(st[_ST_TRACE])
        need = np.cumsum(regular)                   # trace records needed up to each record
        short = np.flatnonzero(regular & (need > len(taddr) - t))
        if len(short):
            got = int(short[0])
        idx = np.flatnonzero(regular[:got])
        a = (taddr[t:t + len(idx)] & np.uint64(0xFFFF_FFFF))
        a[a >= np.uint64(KERNEL_BASE)] &= np.uint64(0x7FFF_FFFF)
        out_ea[idx] = a
        out_kind[idx] = tkind[t:t + len(idx)]
        st[_ST_TRACE] = t + len(idx)
    else:
        inst = regular & ((r1 & _M32) < np.uint64(c["inst_thr"]))
        data = regular & ~inst
        fetch = np.flatnonzero(inst)
        code = int(st[_ST_CODE])
        cp = (code + np.arange(len(fetch), dtype=np.int64)) % c["code_words"]
        out_ea[fetch] = c["code_base"] + 4 * cp.astype(np.uint64)
        out_kind[fetch] = KIND_IFETCH
        st[_ST_CODE] = (code + len(fetch)) % c["code_words"]
        di = np.flatnonzero(data)
        if pattern == _SWEEP:
            sw = int(st[_ST_SWEEP])
            offs = (sw + np.arange(len(di), dtype=np.int64) * c["stride"]) % c["sweep_bytes"]
            out_ea[di] = c["data_base"] + offs.astype(np.uint64)
            st[_ST_SWEEP] = (sw + len(di) * c["stride"]) % c["sweep_bytes"]
        else:
            r = r2[di]
            page, frac = _np_mul128(r, np.uint64(c["pages"]))
            if pattern == _WS_ZIPF:
                keep = frac < zthr[page]
                page = np.where(keep, page, zalias[page].astype(np.uint64))
            out_ea[di] = (np.uint64(c["data_base"]) + (page << np.uint64(c["page_shift"]))
                          + ((r & np.uint64(c["off_mask"])) << np.uint64(3)))
        out_kind[di] = np.where(store[di], KIND_STORE, KIND_LOAD)
    if events:
        out_ea[ev] = 0
        out_kind[sys_] = KIND_SYSCALL
        out_kind[sleep] = KIND_SLEEP
        out_ea[mmio] = c["mmio_ea"]
        out_kind[mmio] = np.where(store[mmio], KIND_STORE, KIND_LOAD)
    ea[:got] = out_ea[:got]
    kind[:got] = out_kind[:got]
    if got:
        end = blk * B + pos + got                   # the kernel stops inside (0, B] of a block
        st[_ST_BLOCK] = (end - 1) // B
        st[_ST_POS] = end - (end - 1) // B * B
    else:
        st[_ST_BLOCK], st[_ST_POS] = blk, pos
    return got


def _alias_build_py(q, thr, alias) -> None:
    """Python twin of ``emu._fastpath.sg_alias_build`` (Vose's alias method;
    identical float operations, so identical tables)."""
    w = [float(x) for x in q]
    n = len(w)
    small = [i for i in range(n) if w[i] < 1.0]
    large = [i for i in range(n) if not w[i] < 1.0]
    alias[:] = np.arange(n, dtype=np.uint32)
    thr[:] = np.uint64(_U64_MAX)
    while small and large:
        lo = small.pop()
        g = large.pop()
        p = w[lo]
        thr[lo] = 0 if p <= 0.0 else int(p * 18446744073709551616.0)
        alias[lo] = g
        w[g] = (w[g] + w[lo]) - 1.0
        if w[g] < 1.0:
            small.append(g)
        else:
            large.append(g)


def _zipf_table(pages: int, s: float, build) -> tuple:
    """Alias table ``(thr, alias)`` of Zipf(s) over ``pages`` ranks."""
    w = np.arange(1, pages + 1, dtype=np.float64) ** -float(s)
    q = np.ascontiguousarray(w * (pages / np.sum(w)))
    thr = np.empty(pages, np.uint64)
    alias = np.empty(pages, np.uint32)
    build(q, thr, alias)
    return thr, alias



def synthetic_pages(spec) -> int:
    """Upper bound on the distinct code + data pages a synthetic workload
    ``spec`` touches (device pages excluded): its data pages, and its code
    pages if it fetches instructions."""
    code = spec.code_pages if spec.inst_fraction > 0 else 0
    return int(spec.pages + code)

class AccessStream:
    """An endless, deterministic stream of ``(ea, kind)`` records (see the
    module docstring for the semantics).

    ``spec`` is a :class:`~emu.params.workload.Workload`, a workload table in
    the scenario file's shape (validated as the scenario loader validates
    one, its keys named ``stream.<key>`` in errors) or ``None`` (every
    default); ``seed_seq`` a
    :class:`numpy.random.SeedSequence` (an int is accepted as its entropy);
    ``block`` the generation block size in records.  Bad input raises
    :class:`ConfigError` (a missing or malformed trace: ``TraceError``).

    Attributes: ``spec`` (the validated :class:`~emu.params.workload.Workload`), ``layout``,
    ``block``, ``sleep_us`` and ``position`` (records produced so far).
    """

    def __init__(self, spec: Any, seed_seq: np.random.SeedSequence,
                 layout: Layout = Layout(), block: int = 4096):
        self.spec: Workload = as_workload(spec)
        if not isinstance(layout, Layout):
            raise ConfigError(f"stream layout must be a Layout, got {type(layout).__name__}")
        self.layout = layout
        _check_int("block", block, 1)
        self.block = int(block)
        if isinstance(seed_seq, numbers.Integral) and not isinstance(seed_seq, bool):
            seed_seq = np.random.SeedSequence(int(seed_seq))
        if not isinstance(seed_seq, np.random.SeedSequence):
            raise ConfigError(f"stream seed_seq must be a numpy SeedSequence, got {type(seed_seq).__name__}")
        self.seed_seq = seed_seq
        self._check_layout()
        s = self.spec
        self._kernel_name, self._fill, alias_build = _kernel()
        self._cfg = self._make_cfg()
        self._st = np.zeros(len(_STATE_FIELDS), np.uint64)     # the kernel's state
        self._zthr, self._zalias = _EMPTY_U64, _EMPTY_U32
        if self._cfg[_CFG["pattern"]] == _WS_ZIPF:
            self._zthr, self._zalias = _zipf_table(s.pages, s.zipf_s, alias_build)
        self._trace = None
        self._trace_iter = None
        self._trace_loop = None                             # a short trace, repeated in memory
        self._trace_read = False                            # whether a chunk was asked for yet
        self._taddr, self._tkind = _EMPTY_U64, _EMPTY_U8    # the current trace chunk
        self._trace_pages = None
        if s.kind == "trace":
            self._trace = open_trace(s.path)
            if self._trace.n_records == 0:
                raise TraceError(f"{s.path}: trace is empty, a stream cannot loop over it")
        self.position = 0

    # ------------------------------------------------------------------ API

    @property
    def sleep_us(self) -> float:
        """How long each SLEEP event sleeps, in µs."""
        return float(self.spec.sleep_us)

    def take(self, n: int) -> tuple:
        """The next ``n`` records as ``(ea, kind)``: new, C-contiguous uint32
        and uint8 arrays of length exactly ``n`` (owned by the caller)."""
        _check_int("take n", n, 0)
        n = int(n)
        ea = np.empty(n, np.uint32)
        kind = np.empty(n, np.uint8)
        done = self._fill(self._cfg, self._zthr, self._zalias, self._st, ea, kind, 0, n,
                          self._taddr, self._tkind)
        while done < n:                 # only a trace stops early: its chunk ran out
            self._taddr, self._tkind = self._trace_next_chunk()
            self._st[_ST_TRACE] = 0
            done += self._fill(self._cfg, self._zthr, self._zalias, self._st, ea, kind, done,
                               n - done, self._taddr, self._tkind)
        self.position += n
        return ea, kind

    def pages_touched(self) -> int:
        """Upper bound on the distinct code + data pages the stream can touch
        (device pages excluded), for sizing guest memory.  For a trace, the
        exact number of distinct folded pages (the whole trace is read once)."""
        s = self.spec
        if s.kind == "trace":
            if self._trace_pages is None:
                shift = self.layout.page_size.bit_length() - 1
                seen = np.empty(0, np.uint32)
                for c in self._trace.chunks(1 << 20):
                    pages = np.unique(fold_trace_addr(c.addr) >> np.uint32(shift))
                    seen = np.union1d(seen, pages)
                self._trace_pages = int(len(seen))
            return self._trace_pages
        return synthetic_pages(s)

    def __repr__(self) -> str:
        return f"<AccessStream {self.spec.kind} position={self.position}>"

    # ------------------------------------------------------------ internals

    def _check_layout(self) -> None:
        lay, s = self.layout, self.spec
        ps = lay.page_size
        if isinstance(ps, bool) or not isinstance(ps, numbers.Integral) or ps < 8 or ps & (ps - 1):
            raise ConfigError(f"layout page_size must be a power of two >= 8, got {ps!r}")
        for name in ("code_base", "data_base", "uart_ea", "block_ea"):
            v = getattr(lay, name)
            if isinstance(v, bool) or not isinstance(v, numbers.Integral) or not 0 <= v < 1 << 32 or v % ps:
                raise ConfigError(f"layout {name} must be a page-aligned 32-bit address, got {v!r}")
        if s.kind == "trace":
            return
        regions = [("data", lay.data_base, s.pages * ps, "pages")]
        if s.inst_fraction > 0:
            regions.append(("code", lay.code_base, s.code_pages * ps, "code_pages"))
        for what, base, size, field in regions:
            if base + size > KERNEL_BASE:
                raise ConfigError(
                    f"stream {field}: the {what} region {base:#x}+{size:#x} reaches the kernel range at {KERNEL_BASE:#x}"
                )
        if len(regions) == 2:
            (_, b0, n0, _), (_, b1, n1, _) = regions
            if b0 < b1 + n1 and b1 < b0 + n0:
                raise ConfigError(
                    f"stream pages / code_pages: the data region {b0:#x}+{n0:#x} overlaps "
                    f"the code region {b1:#x}+{n1:#x}"
                )

    def _make_cfg(self) -> np.ndarray:
        """The kernel's parameters (``_CFG_FIELDS``) for this stream."""
        s, lay = self.spec, self.layout
        ps = lay.page_size
        if s.kind == "trace":
            pattern = _TRACE
        elif s.kind == "sweep":
            pattern = _SWEEP
        else:
            pattern = _WS_ZIPF if s.distribution == "zipf" else _WS_UNIFORM
        p_sys, p_mmio, p_sleep = s.event_rates()
        # cumulative event thresholds: probability x 2**64 (float scaling by a
        # power of two is exact; int() floors), saturated at 2**64 - 1
        cum = (p_sys, p_sys + p_mmio, p_sys + p_mmio + p_sleep)
        ev = [min(int(t * 2.0 ** 64), _U64_MAX) for t in cum]
        events = ev[2] > 0
        draws = int(events) + {_WS_UNIFORM: 2, _WS_ZIPF: 2, _SWEEP: 1, _TRACE: int(events)}[pattern]
        # regions a stream does not use get harmless sizes (their spec values
        # are unchecked and may not fit the kernel's 64-bit fields)
        sweep_bytes = s.pages * ps if pattern != _TRACE else ps
        code_words = s.code_pages * ps // 4 if pattern != _TRACE and s.inst_fraction > 0 else 1
        values = dict(
            pattern=pattern, block=self.block,
            seed=int(self.seed_seq.generate_state(1, np.uint64)[0]),
            draws=draws, pages=s.pages if pattern != _TRACE else 1,
            page_shift=ps.bit_length() - 1, off_mask=ps // 8 - 1,
            data_base=lay.data_base, code_base=lay.code_base,
            code_words=code_words, sweep_bytes=sweep_bytes,
            stride=int(s.stride) % sweep_bytes,
            # 32-bit coins: probability x 2**32 (1.0 -> 2**32: always)
            inst_thr=int(float(s.inst_fraction) * 2.0 ** 32) if pattern != _TRACE else 0,
            write_thr=int(float(s.write_fraction) * 2.0 ** 32),
            ev_syscall=ev[0], ev_mmio=ev[1], ev_sleep=ev[2],
            mmio_ea=lay.device_ea(s.mmio_device),
        )
        return np.array([values[f] for f in _CFG_FIELDS], dtype=np.uint64)

    def _trace_next_chunk(self) -> tuple:
        """The next chunk's raw ``(addr, kind)`` arrays, looping over the file.

        A trace shorter than a chunk is read once and kept in memory, repeated
        to at least a chunk's length: the kernel then copies long runs instead
        of returning every few records (the records are the same)."""
        if self._trace_loop is not None:
            return self._trace_loop
        chunk = max(self.block, 1 << 16)
        n = self._trace.n_records
        first = not self._trace_read
        self._trace_read = True
        if first and (n is None or 0 < n < chunk):
            # the first read: a trace found shorter than a chunk (by its count, or,
            # for text, by reaching its end) is kept; one whose end is not reached
            # within a chunk goes on from where this read stopped
            self._trace_iter = iter(self._trace.chunks(chunk))
            parts, total = [], 0
            for c in self._trace_iter:
                if len(c):
                    parts.append(c)
                    total += len(c)
                if total >= chunk:
                    break
            else:
                self._trace_iter = None             # its end: the whole trace is in parts
            if parts:
                addr = np.concatenate([c.addr for c in parts])
                kind = np.concatenate([c.kind for c in parts])
                if self._trace_iter is None:
                    reps = -(-chunk // len(addr))
                    self._trace_loop = (np.tile(addr, reps), np.tile(kind, reps))
                    return self._trace_loop
                return addr, kind
        for attempt in range(2):
            if self._trace_iter is None:
                self._trace_iter = iter(self._trace.chunks(chunk))
            for c in self._trace_iter:
                if len(c):
                    return c.addr, c.kind
            self._trace_iter = None         # end of the trace: loop to its start
        raise TraceError(f"{self.spec.path}: trace has no records, a stream cannot loop over it")


def make_stream(spec: Any, seed_seq: np.random.SeedSequence, layout: Layout = Layout()) -> AccessStream:
    """Build the :class:`AccessStream` for ``spec`` (default block size)."""
    return AccessStream(spec, seed_seq, layout)

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
TLB entry 1, ``reference/kvm440.md`` §2.2; or the block device's page).  The
memslot check of the miss handler is what turns it into an exit to QEMU.

Patterns (``spec.kind``):

``working-set``
    each data access picks one of ``pages`` pages at ``layout.data_base`` —
    uniformly, or Zipf(``zipf_s``) over page ranks (rank r is page r; the
    distribution is a CDF over the finite page count, sampled with
    ``searchsorted``) — and a random 8-byte-aligned offset in it.
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
uniform draw per record picks among them, so each rate is exact; the three
rates must add up to at most 1.  An event is *inserted*: it does not consume
the pattern, so the code loop, a sweep and a trace continue undisturbed
after it.

Determinism: a stream is a pure function of its spec, ``seed_seq``, layout and
``block``.  It is generated in blocks of ``block`` records, each from
dedicated ``numpy.random.Generator(PCG64(...))`` streams derived from
``seed_seq`` (one per purpose: events, instruction/data mix, load/store,
addresses; derived without mutating ``seed_seq``), and served from a buffer.
So ``take(a)`` then ``take(b)`` returns exactly what ``take(a + b)`` returns,
for any split.  The block size is part of the stream's identity (a different
``block`` gives a different, equally valid stream); :func:`make_stream` uses
the default 4096.
"""
from __future__ import annotations

import math
import numbers
import os
from dataclasses import dataclass, fields
from typing import Any, Optional

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

__all__ = [
    "KIND_IFETCH",
    "KIND_LOAD",
    "KIND_STORE",
    "KIND_MODIFY",
    "KIND_SYSCALL",
    "KIND_SLEEP",
    "KERNEL_BASE",
    "Layout",
    "StreamSpec",
    "AccessStream",
    "make_stream",
    "fold_trace_addr",
]

#: first EA of the guest kernel / device range; user regions stay below it and
#: trace addresses at or above it are folded down (see the module docstring)
KERNEL_BASE = 0xC000_0000

_PATTERNS = ("working-set", "sweep", "trace")
_DISTRIBUTIONS = ("uniform", "zipf")
_DEVICES = ("uart", "block")

# purposes of the per-block generators (index into the derived seed sequences)
_P_EVENTS, _P_MIX, _P_WRITE, _P_ADDR = range(4)


@dataclass(frozen=True)
class Layout:
    """Where a process's regions live in its 32-bit effective address space.

    ``uart_ea`` is the 440 board's UART page, mapped by initial guest TLB
    entry 1 (``reference/kvm440.md`` §2.2); ``block_ea`` is the block
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
        raise ConfigError(f"mmio_device must be one of {', '.join(_DEVICES)}, got {device!r}")


@dataclass(frozen=True)
class StreamSpec:
    """A validated stream specification (build it with :meth:`from_spec`).

    Fields and defaults:

    - ``kind``: ``'working-set'``, ``'sweep'`` or ``'trace'``;
    - ``pages``: data pages of the working set or sweep (>= 1);
    - ``distribution``: ``'uniform'`` or ``'zipf'`` (working set);
    - ``zipf_s``: Zipf exponent (>= 0; 0 is uniform);
    - ``stride``: bytes between consecutive sweep accesses (>= 1);
    - ``path``: the trace file (``kind='trace'``);
    - ``inst_fraction``: share of instruction fetches (0..1; not for traces);
    - ``code_pages``: pages of the code loop (>= 1);
    - ``write_fraction``: share of stores among data and MMIO accesses (0..1);
    - ``syscall_every``, ``mmio_every``, ``sleep_every``: mean records between
      events of that type (0 = never; otherwise >= 1);
    - ``mmio_device``: ``'uart'`` or ``'block'``;
    - ``sleep_us``: how long a SLEEP event sleeps, in µs (>= 0).
    """

    kind: str = "working-set"
    pages: int = 64
    distribution: str = "uniform"
    zipf_s: float = 1.0
    stride: int = 64
    path: Optional[str] = None
    inst_fraction: float = 0.0
    code_pages: int = 4
    write_fraction: float = 0.3
    syscall_every: float = 0
    mmio_every: float = 0
    mmio_device: str = "uart"
    sleep_every: float = 0
    sleep_us: float = 0.0

    @classmethod
    def from_spec(cls, spec: Any) -> "StreamSpec":
        """Normalise ``spec`` — a :class:`StreamSpec`, a dict (unknown keys are
        an error) or any object with some of the fields as attributes (others
        are ignored; missing ones take the defaults) — and validate it.
        Raises :class:`ConfigError` with a one-line message naming the field."""
        names = [f.name for f in fields(cls)]
        if isinstance(spec, cls):
            values = {n: getattr(spec, n) for n in names}
        elif isinstance(spec, dict):
            unknown = sorted(str(k) for k in spec if k not in names)
            if unknown:
                raise ConfigError(
                    f"stream spec: unknown key(s) {', '.join(unknown)} (known: {', '.join(names)})"
                )
            values = dict(spec)
        elif spec is None:
            values = {}
        else:
            values = {n: getattr(spec, n) for n in names if hasattr(spec, n)}
        values = {k: v for k, v in values.items() if v is not None or k == "path"}
        s = cls(**values)
        s._validate()
        return s

    def _validate(self) -> None:
        if self.kind not in _PATTERNS:
            raise ConfigError(f"stream kind must be one of {', '.join(_PATTERNS)}, got {self.kind!r}")
        if self.distribution not in _DISTRIBUTIONS:
            raise ConfigError(
                f"stream distribution must be one of {', '.join(_DISTRIBUTIONS)}, got {self.distribution!r}"
            )
        if self.mmio_device not in _DEVICES:
            raise ConfigError(f"stream mmio_device must be one of {', '.join(_DEVICES)}, got {self.mmio_device!r}")
        for name in ("pages", "stride", "code_pages"):
            _check_int(name, getattr(self, name), 1)
        _check_real("zipf_s", self.zipf_s, 0.0, math.inf)
        for name in ("inst_fraction", "write_fraction"):
            _check_real(name, getattr(self, name), 0.0, 1.0)
        _check_real("sleep_us", self.sleep_us, 0.0, math.inf)
        for name in ("syscall_every", "mmio_every", "sleep_every"):
            v = getattr(self, name)
            _check_real(name, v, 0.0, math.inf)
            if 0 < v < 1:
                raise ConfigError(f"stream {name} must be 0 (never) or >= 1, got {v!r}")
        if sum(self.event_rates()) > 1.0 + 1e-12:
            raise ConfigError(
                "stream syscall_every, mmio_every, sleep_every: the event probabilities "
                f"add up to {sum(self.event_rates()):g} > 1 (syscall_every={self.syscall_every!r}, "
                f"mmio_every={self.mmio_every!r}, sleep_every={self.sleep_every!r})"
            )
        if self.kind == "trace":
            if self.path is None or not isinstance(self.path, (str, os.PathLike)):
                raise ConfigError(f"stream path must name a trace file for kind 'trace', got {self.path!r}")

    def event_rates(self) -> tuple:
        """(p_syscall, p_mmio, p_sleep): per-record probabilities."""
        return tuple(0.0 if not v else 1.0 / float(v)
                     for v in (self.syscall_every, self.mmio_every, self.sleep_every))


def _check_int(name: str, v: Any, lo: int) -> None:
    if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < lo:
        raise ConfigError(f"stream {name} must be an integer >= {lo}, got {v!r}")


def _check_real(name: str, v: Any, lo: float, hi: float) -> None:
    if isinstance(v, bool) or not isinstance(v, numbers.Real) or not (lo <= float(v) <= hi) \
            or math.isnan(float(v)):
        rng = f"in {lo:g}..{hi:g}" if math.isfinite(hi) else f">= {lo:g}"
        raise ConfigError(f"stream {name} must be a number {rng}, got {v!r}")


def fold_trace_addr(addr: np.ndarray) -> np.ndarray:
    """Fold trace addresses (any unsigned integers) into user EAs (uint32):
    keep the low 32 bits, then clear bit 31 of any EA >= :data:`KERNEL_BASE`
    (0xC0000000..0xFFFFFFFF → 0x40000000..0x7FFFFFFF)."""
    ea = np.asarray(addr).astype(np.uint64) & np.uint64(0xFFFF_FFFF)
    ea = ea.astype(np.uint32)
    high = ea >= np.uint32(KERNEL_BASE)
    ea[high] &= np.uint32(0x7FFF_FFFF)
    return ea


def _child_seeds(seed_seq: np.random.SeedSequence, n: int) -> list:
    """``n`` independent children of ``seed_seq``, as ``seed_seq.spawn(n)``
    would make them from a fresh sequence, but without mutating ``seed_seq``
    (so two streams built from the same object are identical)."""
    return [
        np.random.SeedSequence(
            seed_seq.entropy,
            spawn_key=tuple(seed_seq.spawn_key) + (i,),
            pool_size=seed_seq.pool_size,
        )
        for i in range(n)
    ]


class AccessStream:
    """An endless, deterministic stream of ``(ea, kind)`` records (see the
    module docstring for the semantics).

    ``spec`` is anything :meth:`StreamSpec.from_spec` accepts; ``seed_seq`` a
    :class:`numpy.random.SeedSequence` (an int is accepted as its entropy);
    ``block`` the generation block size in records.  Bad input raises
    :class:`ConfigError` (a missing or malformed trace: ``TraceError``).

    Attributes: ``spec`` (the validated :class:`StreamSpec`), ``layout``,
    ``block``, ``sleep_us`` and ``position`` (records produced so far).
    """

    def __init__(self, spec: Any, seed_seq: np.random.SeedSequence,
                 layout: Layout = Layout(), block: int = 4096):
        self.spec = StreamSpec.from_spec(spec)
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
        self._rng = [np.random.Generator(np.random.PCG64(s)) for s in _child_seeds(seed_seq, 4)]
        s = self.spec
        ps = layout.page_size
        self._p_sys, self._p_mmio, self._p_sleep = s.event_rates()
        self._has_events = (self._p_sys + self._p_mmio + self._p_sleep) > 0
        self._mmio_ea = layout.device_ea(s.mmio_device)
        # pattern state, carried from block to block (Python ints: exact)
        self._code_words = s.code_pages * ps // 4
        self._code_pos = 0                      # next fetch, in 4-byte words into the code loop
        self._sweep_bytes = s.pages * ps
        self._sweep_off = 0                     # byte offset of the next sweep access
        self._zipf_cdf = None
        if s.kind == "working-set" and s.distribution == "zipf":
            w = np.arange(1, s.pages + 1, dtype=np.float64) ** -float(s.zipf_s)
            cdf = np.cumsum(w)
            self._zipf_cdf = cdf / cdf[-1]
        self._trace = None
        self._trace_iter = None
        self._trace_buf = (np.empty(0, np.uint32), np.empty(0, np.uint8))
        self._trace_pages = None
        if s.kind == "trace":
            from emu.workload.traces import open_trace  # lazy: traces is optional for synthetic streams
            self._trace = open_trace(s.path)
            if self._trace.n_records == 0:
                raise TraceError(f"{s.path}: trace is empty, a stream cannot loop over it")
        # output buffer: generated records not yet taken
        self._buf_ea = np.empty(0, np.uint32)
        self._buf_kind = np.empty(0, np.uint8)
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
        parts_ea, parts_kind = [], []
        have = 0
        if len(self._buf_ea):
            k = min(n, len(self._buf_ea))
            parts_ea.append(self._buf_ea[:k])
            parts_kind.append(self._buf_kind[:k])
            self._buf_ea, self._buf_kind = self._buf_ea[k:], self._buf_kind[k:]
            have = k
        while have < n:
            ea, kind = self._gen_block()
            k = min(n - have, len(ea))
            parts_ea.append(ea[:k])
            parts_kind.append(kind[:k])
            self._buf_ea, self._buf_kind = ea[k:], kind[k:]
            have += k
        if parts_ea:
            ea = np.concatenate(parts_ea)
            kind = np.concatenate(parts_kind)
        else:
            ea, kind = np.empty(0, np.uint32), np.empty(0, np.uint8)
        self.position += n
        return np.ascontiguousarray(ea, np.uint32), np.ascontiguousarray(kind, np.uint8)

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
        code = s.code_pages if s.inst_fraction > 0 else 0
        return int(s.pages + code)

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

    def _gen_block(self) -> tuple:
        """Generate the next ``block`` records.  Every generator draws a fixed
        number of values per block (whatever the outcome), so block b's
        records depend only on the spec, the seeds and b."""
        B = self.block
        s, lay = self.spec, self.layout
        ea = np.zeros(B, np.int64)          # < 2**32: int64 arithmetic is exact
        kind = np.zeros(B, np.uint8)

        # --- events (inserted: they do not consume the pattern)
        if self._has_events:
            g = self._rng[_P_EVENTS]
            u = g.random(B)
            wr = g.random(B) < s.write_fraction
            t1 = self._p_sys
            t2 = t1 + self._p_mmio
            t3 = t2 + self._p_sleep
            sys_ = u < t1
            mmio = (u >= t1) & (u < t2)
            sleep = (u >= t2) & (u < t3)
            kind[sys_] = KIND_SYSCALL
            kind[sleep] = KIND_SLEEP
            ea[mmio] = self._mmio_ea
            kind[mmio] = np.where(wr[mmio], KIND_STORE, KIND_LOAD)
            regular = ~(sys_ | mmio | sleep)
        else:
            regular = np.ones(B, bool)

        if s.kind == "trace":
            idx = np.flatnonzero(regular)
            t_ea, t_kind = self._trace_take(len(idx))
            ea[idx] = t_ea
            kind[idx] = t_kind
            return ea.astype(np.uint32), kind

        # --- instruction / data mix
        is_inst = self._rng[_P_MIX].random(B) < s.inst_fraction
        fetch = np.flatnonzero(regular & is_inst)
        data = np.flatnonzero(regular & ~is_inst)
        store = self._rng[_P_WRITE].random(B) < s.write_fraction

        # code loop: sequential 4-byte fetches, wrapping
        nf = len(fetch)
        if nf:
            w = (self._code_pos + np.arange(nf, dtype=np.int64)) % self._code_words
            ea[fetch] = lay.code_base + 4 * w
            kind[fetch] = KIND_IFETCH
            self._code_pos = (self._code_pos + nf) % self._code_words

        # data pattern
        ps = lay.page_size
        if s.kind == "working-set":
            g = self._rng[_P_ADDR]
            if self._zipf_cdf is None:
                page = g.integers(0, s.pages, size=B, dtype=np.int64)
            else:
                page = np.searchsorted(self._zipf_cdf, g.random(B), side="right")
                np.minimum(page, s.pages - 1, out=page)
            off = g.integers(0, ps // 8, size=B, dtype=np.int64) * 8
            ea[data] = lay.data_base + page[data] * ps + off[data]
        else:  # sweep
            nd = len(data)
            if nd:
                off = (self._sweep_off + np.arange(nd, dtype=np.int64) * s.stride) % self._sweep_bytes
                ea[data] = lay.data_base + off
                self._sweep_off = (self._sweep_off + nd * s.stride) % self._sweep_bytes
        kind[data] = np.where(store[data], KIND_STORE, KIND_LOAD)
        return ea.astype(np.uint32), kind

    def _trace_take(self, n: int) -> tuple:
        """The next ``n`` folded trace records, looping over the file."""
        parts_ea, parts_kind = [], []
        have = 0
        while have < n:
            b_ea, b_kind = self._trace_buf
            if len(b_ea) == 0:
                b_ea, b_kind = self._trace_next_chunk()
            k = min(n - have, len(b_ea))
            parts_ea.append(b_ea[:k])
            parts_kind.append(b_kind[:k])
            self._trace_buf = (b_ea[k:], b_kind[k:])
            have += k
        if not parts_ea:
            return np.empty(0, np.uint32), np.empty(0, np.uint8)
        return np.concatenate(parts_ea), np.concatenate(parts_kind)

    def _trace_next_chunk(self) -> tuple:
        for attempt in range(2):
            if self._trace_iter is None:
                self._trace_iter = iter(self._trace.chunks(max(self.block, 1 << 16)))
            for c in self._trace_iter:
                if len(c):
                    return fold_trace_addr(c.addr), np.ascontiguousarray(c.kind, np.uint8)
            self._trace_iter = None         # end of the trace: loop to its start
        raise TraceError(f"{self.spec.path}: trace has no records, a stream cannot loop over it")


def make_stream(spec: Any, seed_seq: np.random.SeedSequence, layout: Layout = Layout()) -> AccessStream:
    """Build the :class:`AccessStream` for ``spec`` (default block size)."""
    return AccessStream(spec, seed_seq, layout)

"""The trace shipped with emu, a synthetic program-like trace, and a
filter by kind."""
from __future__ import annotations

import numbers
import os

import numpy as np

from emu.errors import ConfigError, TraceError
from emu.workload.traces.base import KIND_INST, KIND_LOAD, KIND_MODIFY, KIND_STORE, TraceChunk

__all__ = ["default_trace_path", "synthetic_trace", "filter_kinds"]


def default_trace_path() -> str:
    """Path of the real-program trace shipped with emu (``emu/data/ls.npz``:
    valgrind lackey of ``ls -l /etc``; see ``emu/data/README.md``)."""
    emu_dir = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    path = os.path.join(emu_dir, "data", "ls.npz")
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

"""Tests of emu.workload.streams: access streams for guest processes and host tasks."""
import hashlib
import math
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emu.errors import ConfigError
from emu.params.workload import Workload
from emu.workload import streams as streams_mod
from emu.workload.streams import (
    KIND_IFETCH,
    KIND_LOAD,
    KIND_MODIFY,
    KIND_SLEEP,
    KIND_STORE,
    KIND_SYSCALL,
    AccessStream,
    Layout,
    fold_trace_addr,
    make_stream,
)

try:
    from emu.workload.traces import write_trace_npz
except ImportError:  # pragma: no cover - depends on the other module
    write_trace_npz = None

needs_traces = pytest.mark.skipif(
    write_trace_npz is None, reason="emu.workload.traces.write_trace_npz is not available"
)

L = Layout()
PS = L.page_size
N = 200_000


def seed(n=0):
    return np.random.SeedSequence(n)


def within_sigmas(count, n, p, k=4.0):
    """True when ``count`` is within ``k`` binomial standard deviations of n*p."""
    return abs(count - n * p) <= k * math.sqrt(n * p * (1 - p))


# ---------------------------------------------------------------- fixtures

# a small trace whose addresses exercise every folding case
TRACE_ADDR = np.array([
    0x1000_0000,            # plain user code
    0x2000_0008,            # plain user data
    0xBFFF_FFF8,            # just below the kernel range: kept
    0xC000_1000,            # kernel range: bit 31 cleared -> 0x4000_1000
    0xEF60_0000,            # the UART page: -> 0x6F60_0000 (never a device)
    0xFFFF_FFF8,            # -> 0x7FFF_FFF8
    0x1_2000_0010,          # above 4 GiB: low 32 bits -> 0x2000_0010
    0x7FFF_C000_0040,       # low 32 bits 0xC000_0040 -> 0x4000_0040
], dtype=np.uint64)
TRACE_FOLDED = np.array([
    0x1000_0000, 0x2000_0008, 0xBFFF_FFF8, 0x4000_1000,
    0x6F60_0000, 0x7FFF_FFF8, 0x2000_0010, 0x4000_0040,
], dtype=np.uint32)
TRACE_KIND = np.array([0, 1, 2, 3, 1, 2, 3, 0], dtype=np.uint8)


@pytest.fixture(scope="module")
def trace_path(tmp_path_factory):
    if write_trace_npz is None:
        pytest.skip("emu.workload.traces.write_trace_npz is not available")
    p = tmp_path_factory.mktemp("streams") / "small.npz"
    write_trace_npz(str(p), TRACE_ADDR, TRACE_KIND, np.full(len(TRACE_ADDR), 4, np.uint32))
    return str(p)


SYNTH_SPECS = {
    "ws-uniform": dict(kind="working-set", pages=37, inst_fraction=0.3, code_pages=3,
                       write_fraction=0.4, syscall_every=50, mmio_every=70, sleep_every=90,
                       sleep_us=10),
    "ws-zipf": dict(kind="working-set", pages=100, distribution="zipf", zipf_s=1.2,
                    inst_fraction=0.1, syscall_every=200),
    "sweep": dict(kind="sweep", pages=9, stride=1000, inst_fraction=0.5, code_pages=1,
                  mmio_every=30, mmio_device="block", write_fraction=0.5),
    "sweep-plain": dict(kind="sweep", pages=3, stride=4096),
}


def all_specs(trace_path=None):
    specs = dict(SYNTH_SPECS)
    if trace_path is not None:
        specs["trace"] = dict(kind="trace", path=trace_path, syscall_every=7, mmio_every=11,
                              sleep_every=13)
    return specs


# ------------------------------------------------------ chunk independence


@pytest.mark.parametrize("name", sorted(SYNTH_SPECS) + ["trace"])
@pytest.mark.parametrize("block", [61, 4096])
def test_chunk_independence(name, block, request):
    if name == "trace":
        spec = all_specs(request.getfixturevalue("trace_path"))["trace"]
    else:
        spec = SYNTH_SPECS[name]

    @settings(derandomize=True, max_examples=25, deadline=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(st.integers(min_value=0, max_value=3 * block + 7), min_size=1, max_size=8))
    def check(splits):
        whole = AccessStream(spec, seed(5), block=block)
        ea_all, kind_all = whole.take(sum(splits))
        s = AccessStream(spec, seed(5), block=block)
        parts = [s.take(n) for n in splits]
        for (ea, kind), n in zip(parts, splits):
            assert len(ea) == n and len(kind) == n
        assert s.position == sum(splits) == whole.position
        np.testing.assert_array_equal(np.concatenate([p[0] for p in parts]), ea_all)
        np.testing.assert_array_equal(np.concatenate([p[1] for p in parts]), kind_all)

    check()


def test_take_zero_and_position():
    s = make_stream(SYNTH_SPECS["ws-uniform"], seed())
    ea, kind = s.take(0)
    assert ea.dtype == np.uint32 and kind.dtype == np.uint8 and len(ea) == 0
    assert s.position == 0
    s.take(5)
    s.take(0)
    s.take(4095)
    assert s.position == 5 + 4095


@pytest.mark.parametrize("bad", [-1, 1.5, True, "3"])
def test_take_rejects_bad_n(bad):
    with pytest.raises(ConfigError, match="n"):
        make_stream(SYNTH_SPECS["sweep"], seed()).take(bad)


# ----------------------------------------------------------- determinism


@pytest.mark.parametrize("name", sorted(SYNTH_SPECS) + ["trace"])
def test_determinism(name, request):
    if name == "trace":
        spec = all_specs(request.getfixturevalue("trace_path"))["trace"]
    else:
        spec = SYNTH_SPECS[name]
    ss = seed(42)
    a = make_stream(spec, ss).take(20_000)
    b = make_stream(spec, ss).take(20_000)                       # same object, reused
    c = make_stream(spec, np.random.SeedSequence(42)).take(20_000)  # equal seed, new object
    d = make_stream(spec, np.random.SeedSequence(43)).take(20_000)
    for x in (b, c):
        np.testing.assert_array_equal(a[0], x[0])
        np.testing.assert_array_equal(a[1], x[1])
    assert not (np.array_equal(a[0], d[0]) and np.array_equal(a[1], d[1]))


def test_spawned_children_differ():
    kids = np.random.SeedSequence(7).spawn(2)
    a = make_stream(SYNTH_SPECS["ws-uniform"], kids[0]).take(5000)
    b = make_stream(SYNTH_SPECS["ws-uniform"], kids[1]).take(5000)
    assert not np.array_equal(a[0], b[0])


# ------------------------------------------------------------- dtypes


@pytest.mark.parametrize("name", sorted(SYNTH_SPECS) + ["trace"])
def test_dtypes_and_layout_of_arrays(name, request):
    if name == "trace":
        spec = all_specs(request.getfixturevalue("trace_path"))["trace"]
    else:
        spec = SYNTH_SPECS[name]
    s = make_stream(spec, seed())
    s.take(123)                     # leave part of a block buffered
    ea, kind = s.take(10_000)
    assert ea.dtype == np.uint32 and kind.dtype == np.uint8
    assert ea.ndim == 1 and kind.ndim == 1
    assert ea.flags.c_contiguous and kind.flags.c_contiguous
    assert ea.flags.writeable and kind.flags.writeable
    assert set(np.unique(kind)) <= {0, 1, 2, 3, 4, 5}
    # events carry ea 0
    ev = (kind == KIND_SYSCALL) | (kind == KIND_SLEEP)
    assert (ea[ev] == 0).all()
    # the caller owns the arrays: changing them does not change the stream
    ea[:] = 1
    s2 = make_stream(spec, seed())
    s2.take(123)
    assert not (s2.take(10_000)[0] == 1).all()


# --------------------------------------------------- instruction fetches


def test_inst_fraction_and_code_region():
    spec = dict(kind="working-set", pages=16, inst_fraction=0.25, code_pages=5)
    ea, kind = make_stream(spec, seed(1)).take(N)
    fetch = kind == KIND_IFETCH
    assert within_sigmas(int(fetch.sum()), N, 0.25)
    lo, hi = L.code_base, L.code_base + 5 * PS
    assert ((ea[fetch] >= lo) & (ea[fetch] < hi)).all()
    assert (ea[fetch] % 4 == 0).all()
    # a loop: sequential 4-byte words through the code pages, wrapping
    words = 5 * PS // 4
    expect = L.code_base + 4 * (np.arange(fetch.sum()) % words)
    np.testing.assert_array_equal(ea[fetch], expect.astype(np.uint32))
    # data accesses stay out of the code region
    assert ((ea[~fetch] < lo) | (ea[~fetch] >= hi)).all()


def test_no_fetches_when_inst_fraction_zero():
    ea, kind = make_stream(dict(kind="working-set", pages=4, inst_fraction=0.0), seed()).take(50_000)
    assert not (kind == KIND_IFETCH).any()
    ea, kind = make_stream(dict(kind="sweep", pages=4, inst_fraction=1.0), seed()).take(50_000)
    assert (kind == KIND_IFETCH).all()


def test_write_fraction():
    spec = dict(kind="working-set", pages=8, inst_fraction=0.5, write_fraction=0.3)
    ea, kind = make_stream(spec, seed(2)).take(N)
    data = (kind == KIND_LOAD) | (kind == KIND_STORE)
    n_data = int(data.sum())
    assert within_sigmas(n_data, N, 0.5)
    assert within_sigmas(int((kind == KIND_STORE).sum()), n_data, 0.3)
    assert not (kind == KIND_MODIFY).any()


# ---------------------------------------------------------- working set


@pytest.mark.parametrize("distribution", ["uniform", "zipf"])
def test_working_set_touches_exactly_its_pages(distribution):
    pages = 50
    spec = dict(kind="working-set", pages=pages, distribution=distribution, inst_fraction=0.0,
                **({"zipf_s": 0.8} if distribution == "zipf" else {}))
    s = make_stream(spec, seed(3))
    ea, kind = s.take(N)
    assert ((kind == KIND_LOAD) | (kind == KIND_STORE)).all()
    assert ((ea >= L.data_base) & (ea < L.data_base + pages * PS)).all()
    assert (ea % 8 == 0).all()
    touched = np.unique((ea - L.data_base) // PS)
    np.testing.assert_array_equal(touched, np.arange(pages))
    assert s.pages_touched() == pages
    # offsets within a page are spread out, not one fixed offset
    assert len(np.unique(ea % PS)) > PS // 8 // 2


def test_uniform_page_frequencies_are_flat():
    pages = 20
    ea, _ = make_stream(dict(kind="working-set", pages=pages, inst_fraction=0.0), seed(4)).take(N)
    counts = np.bincount((ea - L.data_base) // PS, minlength=pages)
    for c in counts:
        assert within_sigmas(int(c), N, 1 / pages)


@pytest.mark.parametrize("s_exp", [0.8, 1.0, 1.5])
def test_zipf_rank_frequencies(s_exp):
    pages = 64
    spec = dict(kind="working-set", pages=pages, distribution="zipf", zipf_s=s_exp,
                inst_fraction=0.0)
    ea, _ = make_stream(spec, seed(5)).take(400_000)
    counts = np.bincount((ea - L.data_base) // PS, minlength=pages)
    assert counts.argmax() == 0
    assert (np.diff(counts[:6]) < 0).all()            # strictly decreasing at the head
    ratio = counts[0] / counts[1]
    assert abs(ratio - 2 ** s_exp) < 0.06 * 2 ** s_exp
    # exact expected head probability p(0) = 1 / H(pages, s)
    p0 = 1 / np.sum(np.arange(1, pages + 1, dtype=float) ** -s_exp)
    assert within_sigmas(int(counts[0]), 400_000, p0)
    # the tail is much rarer than the head
    assert counts[pages // 2:].mean() < counts[:4].mean() / 8


# --------------------------------------------------------------- sweeps


def test_sweep_stride_page_cycles_in_order():
    pages = 65
    s = make_stream(dict(kind="sweep", pages=pages, stride=4096, inst_fraction=0.0), seed(6))
    n = 3 * pages + 17
    ea, kind = s.take(n)
    expect = L.data_base + (np.arange(n) % pages) * PS
    np.testing.assert_array_equal(ea, expect.astype(np.uint32))
    assert ((kind == KIND_LOAD) | (kind == KIND_STORE)).all()
    assert s.pages_touched() == pages


def test_sweep_stride_1024_visits_each_page_four_times():
    pages = 65
    ea, _ = make_stream(dict(kind="sweep", pages=pages, stride=1024, inst_fraction=0.0),
                        seed(7)).take(4 * pages * 2 + 9)
    i = np.arange(len(ea))
    np.testing.assert_array_equal(ea, (L.data_base + (i * 1024) % (pages * PS)).astype(np.uint32))
    page = (ea - L.data_base) // PS
    np.testing.assert_array_equal(page, (i // 4) % pages)


def test_sweep_unaligned_stride_wraps_in_bytes():
    pages, stride = 3, 1000
    ea, _ = make_stream(dict(kind="sweep", pages=pages, stride=stride, inst_fraction=0.0),
                        seed()).take(100)
    i = np.arange(100)
    np.testing.assert_array_equal(ea, (L.data_base + (i * stride) % (pages * PS)).astype(np.uint32))


def test_events_and_fetches_do_not_disturb_the_sweep():
    pages = 7
    spec = dict(kind="sweep", pages=pages, stride=4096, inst_fraction=0.3, code_pages=2,
                syscall_every=20, sleep_every=40, mmio_every=25)
    ea, kind = make_stream(spec, seed(8)).take(50_000)
    data = ((kind == KIND_LOAD) | (kind == KIND_STORE)) & (ea != L.uart_ea)
    nd = int(data.sum())
    expect = L.data_base + (np.arange(nd) % pages) * PS
    np.testing.assert_array_equal(ea[data], expect.astype(np.uint32))
    fetch = kind == KIND_IFETCH
    words = 2 * PS // 4
    np.testing.assert_array_equal(
        ea[fetch], (L.code_base + 4 * (np.arange(fetch.sum()) % words)).astype(np.uint32))


# --------------------------------------------------------------- events


def test_syscall_events():
    spec = dict(kind="working-set", pages=8, inst_fraction=0.2, syscall_every=100)
    ea, kind = make_stream(spec, seed(9)).take(N)
    sc = kind == KIND_SYSCALL
    assert within_sigmas(int(sc.sum()), N, 0.01)
    assert (ea[sc] == 0).all()
    assert not (kind == KIND_SLEEP).any()


def test_no_events_by_default():
    ea, kind = make_stream(dict(kind="working-set", pages=8, inst_fraction=0.0), seed()).take(N)
    assert not np.isin(kind, [KIND_SYSCALL, KIND_SLEEP]).any()
    assert ((ea >= L.data_base) & (ea < L.data_base + 8 * PS)).all()


@pytest.mark.parametrize("device", ["uart", "block"])
def test_mmio_events_use_exactly_the_device_page(device):
    dev = L.uart_ea if device == "uart" else L.block_ea
    spec = dict(kind="working-set", pages=8, inst_fraction=0.2, mmio_every=50,
                mmio_device=device, write_fraction=0.25)
    ea, kind = make_stream(spec, seed(10)).take(N)
    in_data = (ea >= L.data_base) & (ea < L.data_base + 8 * PS)
    in_code = (ea >= L.code_base) & (ea < L.code_base + 4 * PS)
    mmio = ~in_data & ~in_code
    assert within_sigmas(int(mmio.sum()), N, 1 / 50)
    assert (ea[mmio] & ~np.uint32(PS - 1) == dev).all()
    assert np.isin(kind[mmio], [KIND_LOAD, KIND_STORE]).all()
    assert within_sigmas(int((kind[mmio] == KIND_STORE).sum()), int(mmio.sum()), 0.25)
    other = L.block_ea if device == "uart" else L.uart_ea
    assert not ((ea & ~np.uint32(PS - 1)) == other).any()


def test_sleep_events():
    spec = dict(kind="sweep", pages=4, sleep_every=1000, sleep_us=250)
    s = make_stream(spec, seed(11))
    ea, kind = s.take(N)
    sl = kind == KIND_SLEEP
    assert within_sigmas(int(sl.sum()), N, 0.001)
    assert (ea[sl] == 0).all()
    assert s.sleep_us == 250


def test_event_rates_combine_exactly():
    spec = dict(kind="working-set", pages=4, syscall_every=10, mmio_every=5, sleep_every=4)
    ea, kind = make_stream(spec, seed(12)).take(N)
    assert within_sigmas(int((kind == KIND_SYSCALL).sum()), N, 0.1)
    assert within_sigmas(int((kind == KIND_SLEEP).sum()), N, 0.25)
    assert within_sigmas(int((ea == L.uart_ea).sum()), N, 0.2)


# ---------------------------------------------------------------- traces


def test_fold_trace_addr():
    np.testing.assert_array_equal(fold_trace_addr(TRACE_ADDR), TRACE_FOLDED)
    assert fold_trace_addr(TRACE_ADDR).dtype == np.uint32


@needs_traces
def test_trace_loops_and_folds(trace_path):
    n = len(TRACE_ADDR)
    s = make_stream(dict(kind="trace", path=trace_path), seed())
    ea, kind = s.take(3 * n + 5)
    reps = 4
    np.testing.assert_array_equal(ea, np.tile(TRACE_FOLDED, reps)[:3 * n + 5])
    np.testing.assert_array_equal(kind, np.tile(TRACE_KIND, reps)[:3 * n + 5])
    assert (ea < 0xC000_0000).all()
    assert (kind == KIND_MODIFY).any()
    assert s.pages_touched() == len(np.unique(TRACE_FOLDED // PS))


@pytest.mark.parametrize("records", [2, 70_000])
def test_a_text_trace_is_read_once_when_short_and_looped_in_order(tmp_path, monkeypatch,
                                                                    records):
    """Lackey text has no record count before it is read: a trace of two
    records was read again from its file every two records (a millisecond
    took 50 s).  A short one is now read once; a long one goes on from where
    its first read stopped.  The records come in order, looped."""
    import emu.workload.traces.base as base
    addr = (np.arange(records, dtype=np.uint64) % 300) * PS + 0x1000_0000 + 8
    path = tmp_path / "t.lackey"
    path.write_text("".join(f" L {a:08x},4\n" for a in addr.tolist()))
    reads = []
    chunks = base.Trace.chunks
    monkeypatch.setattr(base.Trace, "chunks",
                        lambda self, *a, **k: reads.append(1) or chunks(self, *a, **k))
    n = 3 * records + 7 if records < 1000 else 2 * records + 7
    ea, kind = make_stream(dict(kind="trace", path=str(path)), seed()).take(n)
    np.testing.assert_array_equal(ea, np.resize(fold_trace_addr(addr), n))
    assert (kind == KIND_LOAD).all()
    assert len(reads) == (1 if records < 1000 else 3)      # the long one: one read a pass


@needs_traces
def test_trace_with_events_keeps_every_record(trace_path):
    n = len(TRACE_ADDR)
    spec = dict(kind="trace", path=trace_path, syscall_every=5, sleep_every=9, mmio_every=7)
    ea, kind = make_stream(spec, seed(13)).take(20_000)
    ev = np.isin(kind, [KIND_SYSCALL, KIND_SLEEP]) | (ea == L.uart_ea)
    assert 0.3 < ev.mean() < 0.5       # 1/5 + 1/9 + 1/7 ≈ 0.454
    rest = np.flatnonzero(~ev)
    np.testing.assert_array_equal(ea[rest], np.resize(TRACE_FOLDED, len(rest)))
    np.testing.assert_array_equal(kind[rest], np.resize(TRACE_KIND, len(rest)))
    assert n  # the trace is non-trivial


@needs_traces
def test_trace_missing_file(tmp_path):
    from emu.errors import EmuError
    with pytest.raises(EmuError):
        make_stream(dict(kind="trace", path=str(tmp_path / "nope.npz")), seed())


# ----------------------------------------------------------- validation


@pytest.mark.parametrize("spec, field", [
    (dict(pages=0), "pages"),
    (dict(pages=-3), "pages"),
    (dict(pages=2.5), "pages"),
    (dict(kind="random"), "kind"),
    (dict(distribution="pareto"), "distribution"),
    (dict(inst_fraction=1.5), "inst_fraction"),
    (dict(inst_fraction=-0.1), "inst_fraction"),
    (dict(write_fraction=2), "write_fraction"),
    (dict(write_fraction=float("nan")), "write_fraction"),
    (dict(zipf_s=-1), "zipf_s"),
    (dict(stride=0), "stride"),
    (dict(code_pages=0), "code_pages"),
    (dict(syscall_every=0.5), "syscall_every"),
    (dict(mmio_every=-1), "mmio_every"),
    (dict(mmio_device="disk"), "mmio_device"),
    (dict(sleep_us=-5), "sleep_us"),
    (dict(syscall_every=1, sleep_every=2), "syscall_every"),
    (dict(kind="trace"), "path"),
    (dict(pagez=3), "pagez"),
    (dict(pages=0xA000_0000 // 4096 + 1), "pages"),
])
def test_bad_spec_raises_config_error(spec, field):
    with pytest.raises(ConfigError) as e:
        make_stream(spec, seed())
    msg = str(e.value)
    assert field in msg and "\n" not in msg


def test_code_data_overlap_rejected():
    lay = Layout(code_base=0x2000_0000, data_base=0x2000_2000)    # 2 pages past the code
    with pytest.raises(ConfigError, match="overlap"):
        make_stream(dict(pages=2, inst_fraction=0.5), seed(), lay)  # 4 code pages
    make_stream(dict(pages=2, inst_fraction=0.0), seed(), lay)  # no code: fine


def test_spec_as_workload_or_table():
    a = make_stream(Workload(kind="sweep", pages=5, stride=4096), seed()).take(100)
    b = make_stream(dict(kind="sweep", pages=5, stride=4096), seed()).take(100)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    with pytest.raises(ConfigError, match="stream: expected a Workload or a table"):
        make_stream(["sweep"], seed())


def test_a_workload_built_by_hand_is_validated():
    with pytest.raises(ConfigError, match="stream.pages: expected a positive integer"):
        make_stream(Workload(pages=0), seed())


def test_the_defaults_are_the_scenario_schema():
    s = make_stream(None, seed())
    assert s.spec == Workload()
    assert (s.spec.pages, s.spec.inst_fraction, s.spec.stride) == (40, 0.25, 4096)


def test_custom_layout_is_used():
    lay = Layout(code_base=0x0040_0000, data_base=0x0100_0000, uart_ea=0xE000_0000)
    spec = dict(kind="working-set", pages=3, inst_fraction=0.5, code_pages=1, mmio_every=10)
    ea, kind = make_stream(spec, seed(), lay).take(20_000)
    fetch = kind == KIND_IFETCH
    assert ((ea[fetch] >= 0x0040_0000) & (ea[fetch] < 0x0040_1000)).all()
    data = ~fetch & (ea != 0xE000_0000)
    assert ((ea[data] >= 0x0100_0000) & (ea[data] < 0x0100_3000)).all()
    assert (ea == 0xE000_0000).sum() > 1000


def test_pages_touched_counts_code():
    assert make_stream(dict(pages=10, inst_fraction=0.2, code_pages=3), seed()).pages_touched() == 13
    assert make_stream(dict(pages=10, inst_fraction=0.0), seed()).pages_touched() == 10


# ------------------------------------------------- events: one draw decides


def test_event_rates_adding_up_to_one_leave_no_regular_record():
    spec = dict(kind="sweep", pages=4, syscall_every=2, sleep_every=2)
    ea, kind = make_stream(spec, seed(14)).take(N)
    assert np.isin(kind, [KIND_SYSCALL, KIND_SLEEP]).all()
    assert within_sigmas(int((kind == KIND_SYSCALL).sum()), N, 0.5)


def test_working_set_offsets_are_flat():
    ea, _ = make_stream(dict(kind="working-set", pages=3, inst_fraction=0.0), seed(15)).take(N)
    slots = PS // 8
    counts = np.bincount((ea % PS) // 8, minlength=slots)
    assert len(counts) == slots
    for c in counts:
        assert within_sigmas(int(c), N, 1 / slots, k=4.5)


LONG_TRACE_N = 70_001          # > one 65536-record chunk, not a multiple of the block


@pytest.fixture(scope="module")
def long_trace(tmp_path_factory):
    if write_trace_npz is None:
        pytest.skip("emu.workload.traces.write_trace_npz is not available")
    rng = np.random.default_rng(3)
    addr = rng.integers(0, 1 << 40, LONG_TRACE_N, dtype=np.uint64)
    kinds = rng.integers(0, 4, LONG_TRACE_N).astype(np.uint8)
    path = str(tmp_path_factory.mktemp("streams") / "long.npz")
    write_trace_npz(path, addr, kinds, np.full(LONG_TRACE_N, 4, np.uint32))
    return path, addr, kinds


def test_trace_longer_than_a_chunk_with_events(long_trace):
    path, addr, kinds = long_trace
    n = LONG_TRACE_N
    spec = dict(kind="trace", path=path, syscall_every=9, mmio_every=17)
    s = make_stream(spec, seed(16))
    ea, kind = s.take(100)
    ea2, kind2 = s.take(2 * n)
    ea, kind = np.concatenate([ea, ea2]), np.concatenate([kind, kind2])
    ev = (kind == KIND_SYSCALL) | (ea == L.uart_ea)
    rest = np.flatnonzero(~ev)
    np.testing.assert_array_equal(ea[rest], np.resize(fold_trace_addr(addr), len(rest)))
    np.testing.assert_array_equal(kind[rest], np.resize(kinds, len(rest)))


# ------------------------------------------------------- the C kernel


def compiled_kernel():
    """emu._fastpath, which must have the stream kernel."""
    from emu import _fastpath
    assert hasattr(_fastpath, "sg_fill"), (
        "emu._fastpath has no stream kernel: _fastpath.pyx must end with "
        "include \"_streamgen.pxi\", then rebuild (pip install -e .)")
    return _fastpath


def test_compiled_kernel_is_used():
    compiled_kernel()
    assert make_stream(SYNTH_SPECS["sweep"], seed())._kernel_name == "cython"


KERNEL_SPECS = dict(
    SYNTH_SPECS,
    **{
        "ws-zipf-big": dict(kind="working-set", pages=5000, distribution="zipf", zipf_s=0.9,
                            inst_fraction=0.25, write_fraction=1.0, sleep_every=3),
        "ws-all-fetch": dict(kind="working-set", pages=2, inst_fraction=1.0, code_pages=1),
        "sweep-big-stride": dict(kind="sweep", pages=5, stride=3 * 5 * PS + 24, inst_fraction=0.1,
                                 syscall_every=4),
        # uniform without events: the kernel's own loop (the fetch counter wraps
        # every 1024 fetches of one code page; no fetch at all; no store at all)
        "ws-plain": dict(kind="working-set", pages=128, inst_fraction=0.25, code_pages=1,
                         write_fraction=0.3),
        "ws-plain-no-fetch": dict(kind="working-set", pages=3, inst_fraction=0.0,
                                  write_fraction=1.0),
        "ws-plain-loads": dict(kind="working-set", pages=1, inst_fraction=0.9, code_pages=1,
                               write_fraction=0.0),
    },
)


def kernel_spec(name, request):
    if name == "trace":
        return all_specs(request.getfixturevalue("trace_path"))["trace"]
    if name == "trace-plain":
        return dict(kind="trace", path=request.getfixturevalue("trace_path"))
    if name == "trace-long":
        return dict(kind="trace", path=request.getfixturevalue("long_trace")[0], sleep_every=3)
    return KERNEL_SPECS[name]


@pytest.mark.parametrize("name", sorted(KERNEL_SPECS) + ["trace", "trace-plain", "trace-long"])
@pytest.mark.parametrize("block", [61, 4096])
def test_kernel_matches_numpy_twin(name, block, request):
    """The C kernel and its numpy twin produce the same records and state
    (splits cross blocks, the numpy twin's 65536-record windows and, for
    traces, the ends of the trace chunks)."""
    spec = kernel_spec(name, request)
    a = AccessStream(spec, seed(21), block=block)
    b = AccessStream(spec, seed(21), block=block)
    b._fill = streams_mod._np_fill
    if a._zthr.size:
        thr, alias = streams_mod._zipf_table(spec["pages"], spec["zipf_s"],
                                             streams_mod._alias_build_py)
        np.testing.assert_array_equal(a._zthr, thr)
        np.testing.assert_array_equal(a._zalias, alias)
    for n in (1, block - 1, 3, 5000, 70_000, 7, 40_000):
        x, y = a.take(n), b.take(n)
        np.testing.assert_array_equal(x[0], y[0])
        np.testing.assert_array_equal(x[1], y[1])
        np.testing.assert_array_equal(a._st, b._st)


def test_a_short_trace_is_read_once_however_the_stream_starts(trace_path):
    """A trace shorter than a chunk is read once and repeated in memory, also
    when the stream's first records come before its first trace record (an
    event): the file is not opened again at each pass over its 8 records."""
    s = AccessStream(all_specs(trace_path)["trace"], seed(21), block=4096)
    reads = []
    chunks = s._trace.chunks
    s._trace.chunks = lambda *a, **k: reads.append(a) or chunks(*a, **k)
    ea, _ = s.take(1)
    assert not reads                     # the first record is not the trace's
    twin = AccessStream(all_specs(trace_path)["trace"], seed(21), block=4096)
    twin.take(1)
    more, _ = s.take(100_000)
    assert len(reads) == 1
    np.testing.assert_array_equal(more, twin.take(100_000)[0])


@pytest.mark.parametrize("pages, s_exp", [(1, 1.0), (7, 0.0), (64, 1.0), (1000, 3.0), (5000, 0.8)])
def test_zipf_alias_table_is_exact(pages, s_exp):
    thr, alias = streams_mod._zipf_table(pages, s_exp, streams_mod._kernel()[2])
    keep = thr.astype(np.float64) / 2.0 ** 64
    keep[thr == np.uint64(2 ** 64 - 1)] = 1.0
    p = keep.copy()
    np.add.at(p, alias.astype(np.int64), 1.0 - keep)
    p /= pages
    w = np.arange(1, pages + 1, dtype=np.float64) ** -s_exp
    np.testing.assert_allclose(p, w / w.sum(), rtol=1e-9, atol=1e-15)
    assert (alias < pages).all()


def test_kernel_rejects_bad_arguments():
    fill = compiled_kernel().sg_fill
    s = make_stream(SYNTH_SPECS["ws-uniform"], seed())
    ea, kind = np.zeros(10, np.uint32), np.zeros(10, np.uint8)
    e64, e8 = np.zeros(0, np.uint64), np.zeros(0, np.uint8)
    with pytest.raises(ValueError):
        fill(s._cfg, s._zthr, s._zalias, s._st, ea, kind, 5, 6, e64, e8)      # past the end
    with pytest.raises(ValueError):
        fill(s._cfg[:-1], s._zthr, s._zalias, s._st, ea, kind, 0, 10, e64, e8)
    bad = s._cfg.copy()
    bad[streams_mod._CFG["draws"]] = 1
    with pytest.raises(ValueError):
        fill(bad, s._zthr, s._zalias, s._st, ea, kind, 0, 10, e64, e8)
    assert fill(s._cfg, s._zthr, s._zalias, s._st, ea, kind, 10, 0, e64, e8) == 0


_DIGEST_SCRIPT = r"""
import hashlib, sys
import numpy as np
from emu.workload import streams
from emu.workload.streams import AccessStream
specs = eval(sys.argv[1])
out = [streams._kernel()[0]]
for spec in specs:
    s = AccessStream(spec, np.random.SeedSequence(99), block=61)
    h = hashlib.sha256()
    for n in (5, 61, 200):
        ea, kind = s.take(n)
        h.update(ea.tobytes()); h.update(kind.tobytes())
    out.append(h.hexdigest())
# one small block straight from the kernel
s = AccessStream(specs[0], np.random.SeedSequence(7), block=16)
ea, kind = np.zeros(16, np.uint32), np.zeros(16, np.uint8)
streams._kernel()[1](s._cfg, s._zthr, s._zalias, s._st, ea, kind, 0, 16, s._taddr, s._tkind)
out.append(hashlib.sha256(ea.tobytes() + kind.tobytes()).hexdigest())
print(" ".join(out))
"""


def test_kernel_output_is_reproducible_across_processes(trace_path):
    specs = [KERNEL_SPECS[k] for k in sorted(KERNEL_SPECS)] + [all_specs(trace_path)["trace"]]
    root = os.path.dirname(os.path.dirname(os.path.abspath(streams_mod.__file__)))
    root = os.path.dirname(root)
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    runs = [subprocess.run([sys.executable, "-c", _DIGEST_SCRIPT, repr(specs)], env=env,
                           capture_output=True, text=True, check=True).stdout.split()
            for _ in range(2)]
    assert runs[0] == runs[1]
    assert runs[0][0] == "cython"
    # and this process agrees
    here = []
    for spec in specs:
        s = AccessStream(spec, np.random.SeedSequence(99), block=61)
        h = hashlib.sha256()
        for n in (5, 61, 200):
            ea, kind = s.take(n)
            h.update(ea.tobytes())
            h.update(kind.tobytes())
        here.append(h.hexdigest())
    assert runs[0][1:-1] == here
    assert len(set(here)) == len(here)

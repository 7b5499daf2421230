"""The compiled split of structured ``.npy`` windows (emu/workload/traces/_records.pyx)
against numpy's field copies: the same records, the same refusals, word for word."""
import os
import subprocess
import sys

import numpy as np
import pytest

from emu.errors import TraceError
from emu.workload.traces import base as trace_base
from emu.workload.traces import npy as trace_npy
from emu.workload.traces import open_trace

pytestmark = pytest.mark.skipif(trace_npy._split_fields is None,
                                reason="the compiled split is not built")

#: the layouts a structured trace .npy may have: packed, aligned (padding
#: between fields), fields in another order, kind or size absent
LAYOUTS = {
    "packed": np.dtype([("addr", "<u8"), ("kind", "u1"), ("size", "<u4")]),
    "aligned": np.dtype([("addr", "<u8"), ("kind", "u1"), ("size", "<u4")], align=True),
    "reordered": np.dtype([("size", "<u4"), ("kind", "u1"), ("addr", "<u8")]),
    "no-size": np.dtype([("addr", "<u8"), ("kind", "u1")]),
    "no-kind": np.dtype([("size", "<u4"), ("addr", "<u8")]),
    "addr-only": np.dtype([("addr", "<u8")]),
}


def write_npy(path, dt, n=3000, seed=0, bad=None):
    """A structured .npy of ``n`` random records of layout ``dt``; ``bad``:
    (field, record, value) written over one record."""
    rng = np.random.default_rng(seed)
    rec = np.zeros(n, dt)
    rec["addr"] = rng.integers(0, 2**64, n, dtype=np.uint64)
    if "kind" in dt.names:
        rec["kind"] = rng.integers(0, 4, n)
    if "size" in dt.names:
        rec["size"] = rng.integers(1, 65537, n)
    if bad is not None:
        field, i, value = bad
        rec[field][i] = value
    np.save(path, rec)
    return rec


def chunks_and_error(path, chunk):
    """The trace's chunks as (addr, kind, size) lists, and the message it
    was refused with (``None`` if it was not)."""
    got = []
    try:
        with open_trace(path) as t:
            for c in t.chunks(chunk):
                got.append((c.addr.copy(), c.kind.copy(), None if c.size is None else c.size.copy()))
    except TraceError as e:
        return got, str(e)
    return got, None


def both_ways(path, chunk, monkeypatch):
    """(compiled, numpy) readings of ``path``, read in windows of 700 records."""
    monkeypatch.setattr(trace_base, "_WINDOW_RECORDS", 700)
    compiled = chunks_and_error(path, chunk)
    with monkeypatch.context() as m:
        m.setattr(trace_npy, "_split_fields", None)
        reference = chunks_and_error(path, chunk)
    return compiled, reference


def assert_same(compiled, reference):
    (got, err), (ref, ref_err) = compiled, reference
    assert err == ref_err
    assert len(got) == len(ref)
    for g, r in zip(got, ref):
        for a, b in zip(g, r):
            if b is None:
                assert a is None
            else:
                assert a.dtype == b.dtype
                np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize("chunk", [1, 333, 700, 5000])
def test_split_gives_numpys_records_for_every_layout_and_chunk(tmp_path, monkeypatch,
                                                               layout, chunk):
    dt = LAYOUTS[layout]
    assert trace_npy._splitter(dt, tuple(f for f in ("addr", "kind", "size") if f in dt.names))
    p = str(tmp_path / "t.npy")
    rec = write_npy(p, dt)
    compiled, reference = both_ways(p, chunk, monkeypatch)
    assert compiled[1] is None
    assert_same(compiled, reference)
    addr = np.concatenate([c[0] for c in compiled[0]])
    np.testing.assert_array_equal(addr, rec["addr"])


@pytest.mark.parametrize("bad,message", [
    (("kind", 2500, 7), "field 'kind' has value 7 at record 2500, expected 0..3"),
    (("kind", 0, 255), "field 'kind' has value 255 at record 0, expected 0..3"),
    (("size", 1999, 0), "field 'size' has value 0 at record 1999, expected 1..65536"),
    (("size", 2999, 65537), "field 'size' has value 65537 at record 2999, expected 1..65536"),
])
@pytest.mark.parametrize("layout", ["packed", "aligned", "reordered"])
def test_split_refuses_a_bad_value_in_numpys_words(tmp_path, monkeypatch, bad, message, layout):
    p = str(tmp_path / "t.npy")
    write_npy(p, LAYOUTS[layout], bad=bad)
    compiled, reference = both_ways(p, 1000, monkeypatch)
    assert compiled[1].startswith(f"{p}: {message}")
    assert_same(compiled, reference)
    # every record before the window (of 1000 records) holding the bad one was delivered
    assert sum(len(c[0]) for c in compiled[0]) == bad[1] // 1000 * 1000


def test_fields_of_another_dtype_are_converted_by_numpy_not_split(tmp_path):
    # a big-endian addr or a uint16 size is not the trace's dtype: numpy converts it
    dt = np.dtype([("addr", ">u8"), ("kind", "u1"), ("size", "<u2")])
    assert trace_npy._splitter(dt, ("addr", "kind", "size")) is None
    p = str(tmp_path / "t.npy")
    rec = write_npy(p, dt)
    with open_trace(p) as t:
        c = next(t.chunks(10_000))
    np.testing.assert_array_equal(c.addr, rec["addr"].astype(np.uint64))
    np.testing.assert_array_equal(c.size, rec["size"].astype(np.uint32))


def test_a_piped_npy_is_split_the_same(tmp_path):
    # a stream's windows go through the same split: the records a pipe gives
    # are those the file gives
    p = str(tmp_path / "t.npy")
    rec = write_npy(p, LAYOUTS["aligned"], n=5000)
    script = ("import sys, numpy as np\n"
              "from emu.workload.traces import open_trace\n"
              "with open_trace('/dev/stdin') as t:\n"
              "    c = list(t.chunks(1 << 20))\n"
              "a = np.concatenate([x.addr for x in c]); k = np.concatenate([x.kind for x in c])\n"
              "s = np.concatenate([x.size for x in c])\n"
              "print(int(a.sum(dtype=np.uint64)), int(k.sum()), int(s.sum()))\n")
    with open(p, "rb") as f:
        out = subprocess.run([sys.executable, "-c", script], stdin=f, capture_output=True,
                             text=True, check=True, cwd=os.path.dirname(os.path.dirname(
                                 os.path.abspath(__file__)))).stdout.split()
    assert [int(x) for x in out] == [int(rec["addr"].sum(dtype=np.uint64)),
                                     int(rec["kind"].astype(np.int64).sum()),
                                     int(rec["size"].astype(np.int64).sum())]


# --------------------------------------------------------------------------
# packed records, eight at a time (_records.h) against record by record
# --------------------------------------------------------------------------

records_mod = pytest.importorskip("emu.workload.traces._records")
PACKED = LAYOUTS["packed"]


def split_both_paths(raw: np.ndarray, n: int) -> list:
    """split_fields of the first ``n`` packed records of the bytes ``raw``,
    with the eight-at-a-time path allowed and forbidden: [(valid, addr,
    kind, size)] for each."""
    out = []
    for vector in (True, False):
        was = records_mod.set_vector_split(vector)
        try:
            a, k, s = np.full(n, 7, np.uint64), np.full(n, 9, np.uint8), np.full(n, 5, np.uint32)
            valid = records_mod.split_fields(raw, 13, 0, a, 8, k, 9, s, 3, 65536)
            out.append((valid, a, k, s))
        finally:
            records_mod.set_vector_split(was)
    return out


def packed(n: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rec = np.zeros(n, PACKED)
    rec["addr"] = rng.integers(0, 2**64, n, dtype=np.uint64)
    rec["kind"] = rng.integers(0, 4, n)
    rec["size"] = rng.integers(1, 65537, n)
    return rec


@pytest.mark.parametrize("n", [0, 1, 7, 8, 9, 15, 16, 17, 24, 31, 33, 64, 1000, 4099])
@pytest.mark.parametrize("slack", [0, 2, 3, 40])
def test_packed_records_split_eight_at_a_time_are_the_fields(n, slack):
    # slack: bytes after the last record (the vector path reads 3 past a
    # record, so the last ones are left to the scalar loop when there are none)
    rec = packed(n)
    raw = np.concatenate([rec.view(np.uint8), np.full(slack, 0xEE, np.uint8)])
    (vv, va, vk, vs), (sv, sa, sk, ss) = split_both_paths(raw, n)
    assert vv is True and sv is True
    for got, want in ((va, rec["addr"]), (vk, rec["kind"]), (vs, rec["size"])):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(va, sa)
    np.testing.assert_array_equal(vk, sk)
    np.testing.assert_array_equal(vs, ss)


@pytest.mark.parametrize("field,value", [("kind", 4), ("kind", 255), ("size", 0),
                                         ("size", 65537), ("size", 2**32 - 1)])
@pytest.mark.parametrize("at", list(range(17)) + [40, 41])
def test_a_bad_value_in_any_lane_of_a_group_of_eight_is_seen(field, value, at):
    rec = packed(42)
    rec[field][at] = value
    raw = rec.view(np.uint8)
    (vv, va, vk, vs), (sv, _, _, _) = split_both_paths(raw, 42)
    assert vv is False and sv is False
    np.testing.assert_array_equal(vk, rec["kind"])
    np.testing.assert_array_equal(vs, rec["size"])


def test_the_extreme_good_values_are_accepted_in_every_lane():
    rec = packed(48)
    rec["kind"][::3] = 3
    rec["size"][::2] = 1
    rec["size"][1::2] = 65536
    (vv, _, vk, vs), (sv, _, _, _) = split_both_paths(rec.view(np.uint8), 48)
    assert vv is True and sv is True
    np.testing.assert_array_equal(vs, rec["size"])

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

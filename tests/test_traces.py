"""Tests of emu.workload.traces: trace readers, writers, import, synthetic."""
import gzip
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import textwrap

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from emu.errors import ConfigError, TraceError
from emu.workload.traces import base as trace_base
from emu.workload.traces import lackey as trace_lackey
from emu.workload import (
    Trace,
    TraceChunk,
    default_trace_path,
    filter_kinds,
    import_lackey,
    open_trace,
    synthetic_trace,
    write_trace_npy,
    write_trace_npz,
)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SMALL = os.path.join(HERE, "data", "lackey_small.txt")
SMALL_GZ = SMALL + ".gz"


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------


def read_all(path, chunk=1 << 20):
    """Concatenate every chunk of the trace at ``path``."""
    chunks = list(open_trace(path).chunks(chunk))
    if not chunks:
        return np.empty(0, np.uint64), np.empty(0, np.uint8), None
    size = None if chunks[0].size is None else np.concatenate([c.size for c in chunks])
    return (np.concatenate([c.addr for c in chunks]),
            np.concatenate([c.kind for c in chunks]), size)


def sample_records(n=5000, seed=1, sizes=True):
    rng = np.random.default_rng(seed)
    addr = rng.integers(0, 2**64, size=n, dtype=np.uint64)
    kind = rng.integers(0, 4, size=n).astype(np.uint8)
    size = rng.integers(1, 65537, size=n).astype(np.uint32) if sizes else None
    return addr, kind, size


def ref_parse_lackey(text: bytes):
    """Independent, line-by-line reference parser of the lackey grammar.
    Returns (addr, kind, size) lists, or ("error", lineno)."""
    rec = re.compile(rb"[ \t]{0,64}([ILSM])[ \t]{1,64}([0-9a-fA-F]{1,16}),([0-9]{1,10})[ \t\r]{0,64}")
    lines = text.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    out = ([], [], [])
    for i, line in enumerate(lines, 1):
        # valgrind's messages: ==pid== its output, --pid-- its warnings, **pid** its errors
        if line.startswith((b"==", b"--", b"**")) or line.strip(b" \t\r") == b"":
            continue
        m = rec.fullmatch(line)
        if not m:
            return ("error", i)
        sz = int(m.group(3))
        if not 1 <= sz <= 65536:
            return ("error", i)
        out[0].append(int(m.group(2), 16))
        out[1].append(b"ILSM".index(m.group(1)))
        out[2].append(sz)
    return out


def write_bytes(path, data):
    with open(path, "wb") as f:
        f.write(data)
    return str(path)


# --------------------------------------------------------------------------
# round trips and chunking
# --------------------------------------------------------------------------


def test_npz_round_trip(tmp_path):
    addr, kind, size = sample_records()
    p = str(tmp_path / "t.npz")
    write_trace_npz(p, addr, kind, size)
    t = open_trace(p)
    assert isinstance(t, Trace) and t.format == "npz" and t.n_records == len(addr)
    a, k, s = read_all(p)
    assert a.dtype == np.uint64 and k.dtype == np.uint8 and s.dtype == np.uint32
    np.testing.assert_array_equal(a, addr)
    np.testing.assert_array_equal(k, kind)
    np.testing.assert_array_equal(s, size)


def test_npz_without_kind_and_size_means_loads_of_one_byte(tmp_path):
    p = str(tmp_path / "t.npz")
    write_trace_npz(p, np.arange(10, dtype=np.uint32), compress=False)
    a, k, s = read_all(p)
    np.testing.assert_array_equal(a, np.arange(10, dtype=np.uint64))
    assert (k == 1).all() and s is None


def test_npy_structured_round_trip(tmp_path):
    addr, kind, size = sample_records(seed=2)
    p = str(tmp_path / "t.npy")
    write_trace_npy(p, addr, kind, size)
    raw = np.load(p)
    assert raw.dtype == np.dtype([("addr", "<u8"), ("kind", "u1"), ("size", "<u4")])
    t = open_trace(p)
    assert t.format == "npy" and t.n_records == len(addr)
    a, k, s = read_all(p)
    np.testing.assert_array_equal(a, addr)
    np.testing.assert_array_equal(k, kind)
    np.testing.assert_array_equal(s, size)
    # without sizes: no size field, and chunks carry size None
    write_trace_npy(p, addr, kind)
    assert np.load(p).dtype.names == ("addr", "kind")
    a, k, s = read_all(p)
    np.testing.assert_array_equal(a, addr)
    assert s is None


def test_plain_uint64_npy_is_all_loads(tmp_path):
    p = str(tmp_path / "plain.npy")
    addr = np.array([0, 5, 2**64 - 1, 4096], np.uint64)
    np.save(p, addr)
    t = open_trace(p)
    assert t.format == "npy" and t.n_records == 4
    a, k, s = read_all(p)
    np.testing.assert_array_equal(a, addr)
    np.testing.assert_array_equal(k, np.ones(4, np.uint8))
    assert s is None


def test_small_unsigned_and_nonnegative_signed_addr_accepted(tmp_path):
    p = str(tmp_path / "t.npz")
    np.savez(p, addr=np.array([1, 2, 300], np.uint16))
    np.testing.assert_array_equal(read_all(p)[0], [1, 2, 300])
    np.savez(p, addr=np.array([0, 7], np.int64), kind=np.array([0, 3], np.int64),
             size=np.array([1, 65536], np.int64))
    a, k, s = read_all(p)
    assert a.dtype == np.uint64 and k.dtype == np.uint8 and s.dtype == np.uint32
    np.testing.assert_array_equal(s, [1, 65536])


@pytest.mark.parametrize("fmt", ["npz", "npy", "lackey", "lackey.gz"])
def test_chunks_identical_whatever_the_chunk_size(tmp_path, fmt):
    if fmt.startswith("lackey"):
        p = SMALL if fmt == "lackey" else SMALL_GZ
        n = None
    else:
        addr, kind, size = sample_records(n=2345, seed=3)
        p = str(tmp_path / f"t.{fmt}")
        (write_trace_npz if fmt == "npz" else write_trace_npy)(p, addr, kind, size)
        n = len(addr)
    t = open_trace(p)
    whole = list(t.chunks(10**9))
    assert len(whole) == 1
    ref = whole[0]
    if n is not None:
        assert len(ref) == n
    for chunk in (1, 7, 1000, len(ref)):
        chunks = list(t.chunks(chunk))  # re-iterable: the same Trace again
        assert [len(c) for c in chunks[:-1]] == [chunk] * (len(chunks) - 1)
        assert 1 <= len(chunks[-1]) <= chunk
        for c in chunks:
            assert c.addr.dtype == np.uint64 and c.addr.flags.c_contiguous
            assert c.kind.dtype == np.uint8 and c.kind.flags.c_contiguous
            assert c.size.dtype == np.uint32 and c.size.flags.c_contiguous
        np.testing.assert_array_equal(np.concatenate([c.addr for c in chunks]), ref.addr)
        np.testing.assert_array_equal(np.concatenate([c.kind for c in chunks]), ref.kind)
        np.testing.assert_array_equal(np.concatenate([c.size for c in chunks]), ref.size)


def test_npy_windows_cut_chunks_identically(tmp_path, monkeypatch):
    # tiny read windows: chunks must not depend on where windows end
    addr, kind, size = sample_records(n=1000, seed=4)
    p = str(tmp_path / "t.npy")
    write_trace_npy(p, addr, kind, size)
    monkeypatch.setattr(trace_base, "_WINDOW_RECORDS", 13)
    for chunk in (1, 5, 13, 64, 999, 1000, 5000):
        a, k, s = read_all(p, chunk)
        np.testing.assert_array_equal(a, addr)
        np.testing.assert_array_equal(k, kind)
        np.testing.assert_array_equal(s, size)


def test_chunk_arrays_are_owned_and_writeable(tmp_path):
    p = str(tmp_path / "t.npz")
    write_trace_npz(p, np.arange(10, dtype=np.uint64))
    t = open_trace(p)
    c = next(t.chunks())
    assert c.addr.flags.writeable
    c.addr[:] = 99                       # must not change the trace
    assert next(t.chunks()).addr[3] == 3


def test_chunk_argument_is_checked(tmp_path):
    t = open_trace(SMALL)
    for bad in (0, -1, 1.5, "3", True):
        with pytest.raises(ConfigError, match="chunk"):
            t.chunks(bad)


# --------------------------------------------------------------------------
# lackey
# --------------------------------------------------------------------------


def count_small():
    counts = {"I": 0, "L": 0, "S": 0, "M": 0}
    headers = 0
    addrs, sizes = [], []
    with open(SMALL) as f:
        for line in f:
            if line.startswith("=="):
                headers += 1
                continue
            if line.startswith("I"):
                counts["I"] += 1
            elif line.startswith(" L"):
                counts["L"] += 1
            elif line.startswith(" S"):
                counts["S"] += 1
            elif line.startswith(" M"):
                counts["M"] += 1
            else:
                raise AssertionError(f"unexpected line {line!r}")
            a, s = line[3:].strip().split(",")
            addrs.append(int(a, 16))
            sizes.append(int(s))
    return counts, headers, addrs, sizes


def test_lackey_small_counts_and_values():
    counts, headers, addrs, sizes = count_small()
    assert headers >= 5                     # the ==pid== header is there
    assert all(counts.values())             # all four kinds occur
    t = open_trace(pathlib.Path(SMALL))        # any os.PathLike
    assert t.format == "lackey" and t.n_records is None and t.path == SMALL
    a, k, s = read_all(SMALL)
    assert len(a) == sum(counts.values())
    assert np.bincount(k, minlength=4).tolist() == [counts["I"], counts["L"], counts["S"], counts["M"]]
    np.testing.assert_array_equal(a, np.array(addrs, np.uint64))
    np.testing.assert_array_equal(s, np.array(sizes, np.uint32))
    assert a.max() > 2**32                  # 10-digit stack addresses parsed whole


def test_lackey_gz_gives_same_arrays():
    with open(SMALL_GZ, "rb") as f:
        assert f.read(2) == b"\x1f\x8b"
    plain = read_all(SMALL)
    gz = read_all(SMALL_GZ)
    assert open_trace(SMALL_GZ).format == "lackey"
    for x, y in zip(plain, gz):
        np.testing.assert_array_equal(x, y)


def test_gzip_detected_by_content_not_extension(tmp_path):
    p = write_bytes(tmp_path / "trace.txt", gzip.compress(b"I  0401ab70,3\n L 10,8\n"))
    a, k, s = read_all(p)
    assert a.tolist() == [0x0401AB70, 0x10] and k.tolist() == [0, 1] and s.tolist() == [3, 8]


def test_lackey_whitespace_tolerance(tmp_path):
    text = (b"==1== header\n"
            b"I  0401ab70,3\n"
            b"--1-- WARNING: unhandled amd64-linux syscall: 435\n"   # valgrind's warnings
            b"**1** valgrind: m_mallocfree.c: internal error\n"     # and its own errors
            b"I 0401ab73,5\n"            # one space after I
            b" L 04221cb0,8\r\n"         # CRLF
            b"\n"                        # blank
            b"   \t\n"                   # blank with whitespace
            b"\tS\t1fff000758,16  \n"    # tabs, trailing spaces
            b"M 0,1\n"                   # data letter in column 0
            b"  M    FFFFFFFFFFFFFFFF,65536")  # no final newline; 16 digits
    p = write_bytes(tmp_path / "ws.txt", text)
    a, k, s = read_all(p)
    assert a.tolist() == [0x0401AB70, 0x0401AB73, 0x04221CB0, 0x1FFF000758, 0, 2**64 - 1]
    assert k.tolist() == [0, 0, 1, 2, 3, 3]
    assert s.tolist() == [3, 5, 8, 16, 1, 65536]


@pytest.mark.parametrize("bad", [
    b"I0401ab70,3",           # no space between letter and address
    b"X  0401ab70,3",         # unknown letter
    b"i  0401ab70,3",         # lower-case letter
    b"I  0x0401ab70,3",       # 0x prefix
    b"I  0401ab70",           # no size
    b"I  0401ab70,",          # empty size
    b"I  ,3",                 # empty address
    b"I  0401ab70,3,4",       # two sizes
    b"I  0401 ab70,3",        # space inside the address
    b"I  0401ab70, 3",        # space after the comma
    b"I  0401ab70,3 x",       # trailing junk
    b"I  0401ab7g,3",         # not hex
    b"I  11112222333344445,3",  # 17 hex digits
    b"I  0401ab70,12345678901",  # 11 size digits
    b" =",                    # not a valgrind message
    b"-123- message",         # not a valgrind message: one dash
    b" --1-- x",              # nor one that does not start its line
    b"*1* x",
    b"I  0401ab70,3\x00",     # NUL
])
def test_lackey_malformed_line_reports_file_and_line(tmp_path, bad):
    good = b"==9== hi\nI  0401ab70,3\n L 1fff000758,8\n\n"
    p = write_bytes(tmp_path / "bad.txt", good + bad + b"\nI  10,4\n")
    with pytest.raises(TraceError) as ei:
        read_all(p)
    msg = str(ei.value)
    assert msg.startswith(f"{p}:5: malformed lackey line: ")
    assert "\n" not in msg
    assert msg.endswith(": " + repr(bad[:60])[1:])      # the line as it is, blanks kept


def test_lackey_size_out_of_range(tmp_path):
    for size, word in ((b"0", "size 0"), (b"65537", "size 65537")):
        p = write_bytes(tmp_path / "s.txt", b"I  10,4\n\n L 20," + size + b"\n")
        with pytest.raises(TraceError, match=re.escape(f"{p}:3: {word} out of range")):
            read_all(p)


def test_lackey_malformed_line_number_deep_in_a_large_file(tmp_path):
    with open(SMALL, "rb") as f:
        body = f.read()
    n_lines = body.count(b"\n")
    reps = 5 * trace_lackey._LACKEY_BLOCK // len(body) + 1      # several parse blocks
    bad_at = reps * n_lines + 1
    p = write_bytes(tmp_path / "big.txt", body * reps + b"I  12,3\nbroken line\n")
    t = open_trace(p)                                # the first block is fine
    with pytest.raises(TraceError, match=re.escape(f"{p}:{bad_at + 1}: malformed lackey line: 'broken line'")):
        for _ in t.chunks():
            pass


@pytest.mark.parametrize("block", [1, 7, 64, 4096])
def test_lackey_block_size_does_not_change_result(tmp_path, monkeypatch, block):
    ref = read_all(SMALL)
    monkeypatch.setattr(trace_lackey, "_LACKEY_BLOCK", block)
    got = read_all(SMALL, 333)
    for x, y in zip(ref, got):
        np.testing.assert_array_equal(x, y)
    p = write_bytes(tmp_path / "b.txt", b"I  10,4\n" * 50 + b"I  zz,4\n")
    with pytest.raises(TraceError, match=re.escape(f"{p}:51: malformed")):
        read_all(p)


def test_lackey_overlong_line_refused_in_bounded_memory(tmp_path):
    p = write_bytes(tmp_path / "long.txt", b"I  10,4\n" + b"x" * (3 * trace_lackey._LACKEY_BLOCK))
    with pytest.raises(TraceError, match=re.escape(f"{p}:2: malformed lackey line: 'xxx")):
        read_all(p)
    # a long valgrind message line is fine
    p = write_bytes(tmp_path / "msg.txt", b"==1== " + b"y" * 100_000 + b"\nI  10,4\n")
    assert read_all(p)[0].tolist() == [0x10]


@pytest.mark.parametrize("text,gz", [(b"==1== Lackey\n==1== \n\n", False),
                                     (b"\n \t\n", False), (b"", True),
                                     (b"==1== Lackey\n" * 100_000, True)],
                         ids=["messages", "blank lines", "empty gzip", "long, in gzip"])
def test_lackey_holding_no_records_is_refused_like_an_empty_file(tmp_path, text, gz):
    p = write_bytes(tmp_path / "hdr.txt", gzip.compress(text) if gz else text)
    with pytest.raises(TraceError) as refused:
        open_trace(p)
    assert str(refused.value) == \
        f"{p}: empty trace (it holds no records, only valgrind messages or blank lines)"
    empty = write_bytes(tmp_path / "empty.txt", b"")
    with pytest.raises(TraceError) as refused:
        open_trace(empty)
    assert str(refused.value) == f"{empty}: empty trace (the file is empty: it holds no records)"


def test_corrupt_gzip(tmp_path):
    data = gzip.compress(b"I  0401ab70,3\n" * 1000)
    for name, bad in (("trunc.gz", data[: len(data) // 2]), ("head.gz", data[:6]),
                      ("crc.gz", data[:-8] + b"\0" * 8)):
        p = write_bytes(tmp_path / name, bad)
        with pytest.raises(TraceError, match=re.escape(p) + ": corrupt or truncated gzip"):
            read_all(p)
    p = write_bytes(tmp_path / "empty.gz", gzip.compress(b""))
    with pytest.raises(TraceError, match=re.escape(p) + ": empty trace"):
        open_trace(p)


@pytest.fixture(params=["isal", "stdlib"])
def gzip_inflate(request, monkeypatch):
    """Each gzip test once with ISA-L's inflate (when installed) and once with
    the standard library's (forced)."""
    if request.param == "isal":
        pytest.importorskip("isal")
        assert trace_lackey._FastGzipFile is not None      # installed, so it is used
    else:
        monkeypatch.setattr(trace_lackey, "_FastGzipFile", None)
    return request.param


def test_gzip_inflate_libraries_give_the_same_records_and_refusals(tmp_path, gzip_inflate):
    """Whichever inflate is installed, a gzip trace gives the records of its
    text: two members and trailing zeros as well, across block boundaries;
    damaged streams are refused the same way."""
    text = b"".join(b" L %x,%d\n" % (0x10000 * (i % 97) + i, 1 + i % 8) for i in range(40_000))
    data = gzip.compress(text[:300_000], mtime=0) + gzip.compress(text[300_000:], mtime=0)
    plain = write_bytes(tmp_path / "t.txt", text)
    for name, blob in (("two.gz", data), ("zeros.gz", data + b"\0" * 16)):
        got = read_all(write_bytes(tmp_path / name, blob), chunk=7_777)
        for a, b in zip(got, read_all(plain)):
            np.testing.assert_array_equal(a, b)
    for name, bad in (("trunc.gz", data[:len(data) // 2]), ("crc.gz", data[:-8] + b"\0" * 8),
                      ("flip.gz", data[:200] + bytes([data[200] ^ 0xFF]) + data[201:]),
                      ("garbage.gz", data + b"garbage")):
        p = write_bytes(tmp_path / name, bad)
        with pytest.raises(TraceError, match=re.escape(p) + ": corrupt or truncated gzip"):
            read_all(p)


# --------------------------------------------------------------------------
# bad inputs
# --------------------------------------------------------------------------


def expect_error(path, *fragments, iterate=True):
    with pytest.raises(TraceError) as ei:
        t = open_trace(path)
        if iterate:
            for _ in t.chunks():
                pass
    msg = str(ei.value)
    assert str(path) in msg, msg
    for frag in fragments:
        assert frag in msg, msg
    assert "\n" not in msg
    return msg


def test_missing_file(tmp_path):
    expect_error(str(tmp_path / "nope.npz"), "no such file")


def test_directory(tmp_path):
    expect_error(str(tmp_path), "directory")


def test_empty_file(tmp_path):
    for name in ("e.npz", "e.npy", "e.txt"):
        expect_error(write_bytes(tmp_path / name, b""), "empty trace")


def test_npz_without_addr(tmp_path):
    p = str(tmp_path / "t.npz")
    np.savez(p, kind=np.zeros(3, np.uint8))
    expect_error(p, "no array 'addr'")


def test_npz_extra_members_are_ignored_and_named(tmp_path):
    p = str(tmp_path / "t.npz")
    addr, kind, size = sample_records(n=1000)
    for compress in (False, True):
        (np.savez_compressed if compress else np.savez)(
            p, addr=addr, kind=kind, size=size, meta=np.array(["recorded by valgrind 3.22"]),
            sizes=np.ones(3), obj=np.array([{"a": 1}], dtype=object))
        t = open_trace(p)
        assert t.ignored_members == ("meta", "obj", "sizes")
        for x, y in zip(read_all(p, 97), (addr, kind, size)):
            np.testing.assert_array_equal(x, y)


def test_npz_without_addr_names_what_it_found(tmp_path):
    p = str(tmp_path / "t.npz")
    np.savez(p, address=np.zeros(3, np.uint64), kind=np.ones(3, np.uint8))
    expect_error(p, "no array 'addr'", "(arrays found: address, kind)")


@pytest.mark.parametrize("arr,dtype", [
    (np.zeros(3), "float64"),
    (np.zeros(3, np.float32), "float32"),
    (np.array([True, False]), "bool"),
    (np.array(["a", "b"]), "<U1"),
    (np.array([1, None], dtype=object), "object"),
])
def test_bad_addr_dtype(tmp_path, arr, dtype):
    p = str(tmp_path / "t.npz")
    np.savez(p, addr=arr, allow_pickle=True)
    msg = expect_error(p)
    assert msg == f"{p}: array 'addr' has dtype {dtype}, expected uint64"
    q = str(tmp_path / "t.npy")
    np.save(q, arr, allow_pickle=True)
    assert str(pytest.raises(TraceError, open_trace, q).value) == \
        f"{q}: array 'addr' has dtype {dtype}, expected uint64"


def test_float_addr_in_structured_npy(tmp_path):
    p = str(tmp_path / "t.npy")
    np.save(p, np.zeros(3, [("addr", "<f8"), ("kind", "u1")]))
    expect_error(p, "field 'addr' has dtype float64, expected uint64")


def test_kind_7(tmp_path):
    p = str(tmp_path / "t.npz")
    np.savez(p, addr=np.arange(5, dtype=np.uint64), kind=np.array([0, 1, 2, 7, 1], np.uint8))
    expect_error(p, "'kind' has value 7 at record 3", "0..3")


def test_kind_negative_and_float(tmp_path):
    p = str(tmp_path / "t.npz")
    np.savez(p, addr=np.arange(2, dtype=np.uint64), kind=np.array([0, -1]))
    expect_error(p, "'kind' has value -1 at record 1")
    np.savez(p, addr=np.arange(2, dtype=np.uint64), kind=np.array([0.0, 1.0]))
    expect_error(p, "'kind' has dtype float64")


@pytest.mark.parametrize("value,where", [(0, 2), (70000, 4), (-5, 0)])
def test_bad_size(tmp_path, value, where):
    size = np.ones(6, np.int64)
    size[where] = value
    p = str(tmp_path / "t.npz")
    np.savez(p, addr=np.arange(6, dtype=np.uint64), size=size)
    expect_error(p, f"'size' has value {value} at record {where}", "1..65536")


def test_negative_signed_addr(tmp_path):
    p = str(tmp_path / "t.npz")
    np.savez(p, addr=np.array([5, 6, -3, 7], np.int32))
    expect_error(p, "'addr' has negative value -3 at record 2")
    q = str(tmp_path / "t.npy")
    np.save(q, np.array([5, -1], np.int64))
    expect_error(q, "'addr' has negative value -1 at record 1")


def test_unequal_lengths(tmp_path):
    p = str(tmp_path / "t.npz")
    np.savez(p, addr=np.arange(5, dtype=np.uint64), kind=np.ones(4, np.uint8))
    expect_error(p, "unequal lengths", "addr 5", "kind 4")
    np.savez(p, addr=np.arange(5, dtype=np.uint64), size=np.ones(6, np.uint32))
    expect_error(p, "unequal lengths", "size 6")


def test_2d_addr(tmp_path):
    p = str(tmp_path / "t.npz")
    np.savez(p, addr=np.zeros((2, 3), np.uint64))
    expect_error(p, "'addr' must be 1-D", "(2, 3)")
    q = str(tmp_path / "t.npy")
    np.save(q, np.zeros((4, 2), np.uint64))
    expect_error(q, "'addr' must be 1-D", "(4, 2)")
    np.save(q, np.zeros(3, [("addr", "<u8", (2,))]))
    expect_error(q, "'addr' must be 1-D")


def test_truncated_npz(tmp_path):
    p = str(tmp_path / "ok.npz")
    write_trace_npz(p, *sample_records(n=20000))
    with open(p, "rb") as f:
        data = f.read()
    for cut in (len(data) // 3, len(data) - 10, 100):
        q = write_bytes(tmp_path / f"cut{cut}.npz", data[:cut])
        expect_error(q, "not a valid npz file")
    flipped = bytearray(data)
    flipped[300] ^= 0xFF                      # inside the deflated addr member
    expect_error(write_bytes(tmp_path / "flip.npz", bytes(flipped)), "cannot read array")


def test_truncated_npy(tmp_path):
    p = str(tmp_path / "ok.npy")
    write_trace_npy(p, *sample_records(n=1000))
    with open(p, "rb") as f:
        data = f.read()
    expect_error(write_bytes(tmp_path / "cut.npy", data[: len(data) - 100]), "truncated")
    expect_error(write_bytes(tmp_path / "hdr.npy", data[:40]), "truncated or corrupt npy")


def test_wrong_content_for_extension(tmp_path):
    expect_error(write_bytes(tmp_path / "x.npz", b"I  10,4\n"), "not a valid npz file")
    expect_error(write_bytes(tmp_path / "x.npy", b"PK"), "not a valid npy file")


def test_random_bytes(tmp_path):
    rng = np.random.default_rng(0)
    p = write_bytes(tmp_path / "rand.bin", rng.integers(0, 256, 10000, dtype=np.uint8).tobytes())
    expect_error(p, f"{p}:1: malformed lackey line")


def test_bad_value_deep_in_npy_raises_when_reached(tmp_path, monkeypatch):
    monkeypatch.setattr(trace_base, "_WINDOW_RECORDS", 100)
    addr = np.arange(1000, dtype=np.int64)
    addr[950] = -1
    p = str(tmp_path / "t.npy")
    np.save(p, addr)
    t = open_trace(p)                        # the header is fine
    it = t.chunks(100)
    for _ in range(9):                       # records 0..899 are fine
        next(it)
    with pytest.raises(TraceError, match="negative value -1 at record 950"):
        next(it)


def test_writers_validate_like_the_reader(tmp_path):
    p = str(tmp_path / "w.npz")
    cases = [
        ((np.zeros(3),), "dtype float64"),
        ((np.arange(3), [0, 1, 9]), "'kind' has value 9 at record 2"),
        ((np.arange(3), None, [1, 0, 1]), "'size' has value 0 at record 1"),
        ((np.arange(3), [0, 1]), "unequal lengths"),
        ((np.array([-1, 2]),), "negative value -1"),
        ((np.zeros((2, 2), np.uint64),), "must be 1-D"),
    ]
    for writer in (write_trace_npz, write_trace_npy):
        for args, frag in cases:
            with pytest.raises(TraceError, match=re.escape(frag)):
                writer(p, *args)
            assert not os.path.exists(p)
    assert os.listdir(tmp_path) == []


def test_writer_is_atomic_and_leaves_no_temp_files(tmp_path):
    p = str(tmp_path / "w.npz")
    write_trace_npz(p, np.arange(5, dtype=np.uint64))
    before = open(p, "rb").read()
    with pytest.raises(TraceError):
        write_trace_npz(p, np.zeros(5))
    assert open(p, "rb").read() == before
    with pytest.raises(TraceError, match="cannot write"):
        write_trace_npz(str(tmp_path / "w.npz" / "under" / "w.npz"), np.arange(5, dtype=np.uint64))
    assert sorted(os.listdir(tmp_path)) == ["w.npz"]
    # a folder not there yet is made, and holds the file alone
    write_trace_npz(str(tmp_path / "new" / "w.npz"), np.arange(5, dtype=np.uint64))
    assert sorted(os.listdir(tmp_path / "new")) == ["w.npz"]


def test_trace_chunk_checks_its_arrays():
    a = np.zeros(3, np.uint64)
    k = np.zeros(3, np.uint8)
    TraceChunk(a, k)
    TraceChunk(a, k, np.ones(3, np.uint32))
    with pytest.raises(TraceError):
        TraceChunk(a.astype(np.int64), k)
    with pytest.raises(TraceError):
        TraceChunk(a, k[:2])
    with pytest.raises(TraceError):
        TraceChunk(a, k, np.ones(3, np.uint16))
    with pytest.raises(TraceError):
        TraceChunk(np.zeros(6, np.uint64)[::2], k)


# --------------------------------------------------------------------------
# import_lackey
# --------------------------------------------------------------------------


def test_import_lackey_round_trip(tmp_path):
    dst = str(tmp_path / "small.npz")
    n = import_lackey(SMALL_GZ, dst, chunk=100)
    ref = read_all(SMALL)
    assert n == len(ref[0])
    with np.load(dst) as z:
        assert sorted(z.files) == ["addr", "kind", "size"]
        assert z["addr"].dtype == np.uint64 and z["kind"].dtype == np.uint8
        assert z["size"].dtype == np.uint32
    got = read_all(dst)
    for x, y in zip(ref, got):
        np.testing.assert_array_equal(x, y)
    assert sorted(os.listdir(tmp_path)) == ["small.npz"]


def test_import_lackey_malformed_leaves_destination_untouched(tmp_path):
    dst = tmp_path / "out.npz"
    dst.write_bytes(b"precious bytes")
    with open(SMALL, "rb") as f:
        body = f.read()
    src = write_bytes(tmp_path / "bad.txt", body + b"I  zz,3\n")
    with pytest.raises(TraceError, match=re.escape(f"{src}:2001: malformed lackey line")):
        import_lackey(src, str(dst), chunk=64)    # fails after some chunks were written
    assert dst.read_bytes() == b"precious bytes"
    assert sorted(os.listdir(tmp_path)) == ["bad.txt", "out.npz"]
    # and with no pre-existing destination nothing appears
    dst.unlink()
    with pytest.raises(TraceError):
        import_lackey(src, str(dst))
    assert sorted(os.listdir(tmp_path)) == ["bad.txt"]


def test_import_lackey_refuses_non_lackey(tmp_path):
    p = str(tmp_path / "t.npz")
    write_trace_npz(p, np.arange(3, dtype=np.uint64))
    with pytest.raises(TraceError, match="not a lackey"):
        import_lackey(p, str(tmp_path / "o.npz"))
    assert not os.path.exists(tmp_path / "o.npz")


# --------------------------------------------------------------------------
# shipped trace, synthetic trace, filters
# --------------------------------------------------------------------------


def test_default_trace_is_the_shipped_real_trace():
    p = default_trace_path()
    assert os.path.basename(p) == "ls.npz" and os.path.getsize(p) < 4_000_000
    t = open_trace(p)
    assert t.format == "npz"
    readme = open(os.path.join(os.path.dirname(p), "README.md")).read()
    assert f"{t.n_records:,}" in readme
    assert 1_000_000 <= t.n_records <= 5_000_000
    c = next(t.chunks(t.n_records))
    assert np.bincount(c.kind, minlength=4).min() > 0
    assert c.size is not None and c.size.min() >= 1


def test_synthetic_trace_is_deterministic_and_program_like():
    a = synthetic_trace(50_000, seed=7)
    b = synthetic_trace(50_000, seed=7)
    c = synthetic_trace(50_000, seed=8)
    assert isinstance(a, TraceChunk) and len(a) == 50_000
    for x, y in ((a.addr, b.addr), (a.kind, b.kind), (a.size, b.size)):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a.addr, c.addr)
    assert set(np.unique(a.kind)) == {0, 1, 2, 3}
    assert a.size.min() >= 1 and a.size.max() <= 8
    inst = a.addr[a.kind == 0]
    assert (inst % 4 == 0).all() and (np.diff(inst.astype(np.int64)) == 4).mean() > 0.9  # loops
    assert a.addr.max() < 2**32
    heap = a.addr[(a.addr >= 0x2000_0000) & (a.addr < 0x3000_0000)] >> 12
    _, counts = np.unique(heap, return_counts=True)
    assert counts.max() > 10 * np.median(counts)          # Zipf-ish: hot pages
    assert len(synthetic_trace(0)) == 0
    with pytest.raises(ConfigError):
        synthetic_trace(-1)


def test_filter_kinds():
    c = TraceChunk(np.arange(8, dtype=np.uint64), np.array([0, 1, 2, 3, 0, 1, 0, 3], np.uint8),
                   np.arange(1, 9, dtype=np.uint32))
    assert filter_kinds(c, "all") is c
    d = filter_kinds(c, "data")
    assert d.addr.tolist() == [1, 2, 3, 5, 7] and d.size.tolist() == [2, 3, 4, 6, 8]
    i = filter_kinds(c, "inst")
    assert i.addr.tolist() == [0, 4, 6] and (i.kind == 0).all()
    n = filter_kinds(TraceChunk(c.addr, c.kind), "inst")
    assert n.size is None
    with pytest.raises(ConfigError):
        filter_kinds(c, "loads")


# --------------------------------------------------------------------------
# property tests
# --------------------------------------------------------------------------

records = st.integers(0, 300).flatmap(lambda n: st.tuples(
    st.lists(st.integers(0, 2**64 - 1), min_size=n, max_size=n),
    st.one_of(st.none(), st.lists(st.integers(0, 3), min_size=n, max_size=n)),
    st.one_of(st.none(), st.lists(st.integers(1, 65536), min_size=n, max_size=n)),
    st.sampled_from([1, 3, 64, 1000]),
))


@settings(derandomize=True, max_examples=100, deadline=None)
@given(records)
def test_property_write_read_round_trip(rec):
    addr, kind, size, chunk = rec
    addr = np.array(addr, np.uint64)
    with tempfile.TemporaryDirectory() as d:
        for ext, writer in (("npz", write_trace_npz), ("npy", write_trace_npy)):
            p = os.path.join(d, "t." + ext)
            writer(p, addr, kind, size)
            t = open_trace(p)
            assert t.n_records == len(addr)
            a, k, s = read_all(p, chunk)
            np.testing.assert_array_equal(a, addr)
            np.testing.assert_array_equal(k, np.ones(len(addr)) if kind is None else kind)
            if size is None:
                assert s is None
            else:
                np.testing.assert_array_equal(s, size)


def _valid_bytes(suffix, writer):
    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "t" + suffix)
        writer(p, *sample_records(n=300))
        with open(p, "rb") as f:
            return f.read()


VALID = {"npz": _valid_bytes(".npz", write_trace_npz), "npy": _valid_bytes(".npy", write_trace_npy),
         "gz": gzip.compress(open(SMALL, "rb").read()[:3000])}


@st.composite
def garbage(draw):
    """Random bytes, often behind a format's magic, or a valid file with some
    bytes changed or cut off."""
    how = draw(st.sampled_from(["raw", "magic", "mutate", "cut"]))
    if how == "raw":
        return draw(st.binary(max_size=600))
    if how == "magic":
        magic = draw(st.sampled_from([b"PK\x03\x04", b"PK\x05\x06", b"\x93NUMPY\x01\x00",
                                      b"\x93NUMPY", b"\x1f\x8b", b"\x1f\x8b\x08\x00"]))
        return magic + draw(st.binary(max_size=600))
    base = VALID[draw(st.sampled_from(sorted(VALID)))]
    if how == "cut":
        return base[: draw(st.integers(0, len(base)))]
    data = bytearray(base)
    for _ in range(draw(st.integers(1, 5))):
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    return bytes(data)


@settings(derandomize=True, max_examples=400, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(garbage(), st.sampled_from(["t.bin", "t.npz", "t.npy", "t.txt"]))
def test_property_garbage_parses_or_raises_trace_error(data, name):
    with tempfile.TemporaryDirectory() as d:
        p = write_bytes(os.path.join(d, name), data)
        try:
            t = open_trace(p)
            for c in t.chunks(97):
                assert c.addr.dtype == np.uint64 and len(c.kind) == len(c.addr)
        except TraceError as e:
            assert p in str(e) and "\n" not in str(e)


lackey_line = st.one_of(
    st.builds(lambda pre, letter, mid, addr, size, post: pre + letter + mid + addr + b"," + size + post,
              st.sampled_from([b"", b" ", b"\t", b"  "]),
              st.sampled_from([b"I", b"L", b"S", b"M", b"X", b"i"]),
              st.sampled_from([b" ", b"  ", b"\t", b""]),
              st.text("0123456789abcdefABCDEFxg", min_size=0, max_size=18).map(str.encode),
              st.text("0123456789 ", min_size=0, max_size=12).map(str.encode),
              st.sampled_from([b"", b" ", b"\r", b" x", b","])),
    st.sampled_from([b"==12== Lackey", b"==", b"=", b"", b"  ", b"\r", b"--1-- x", b"-",
                     b"**1** x", b"*", b" --1-- x"]),
    st.binary(max_size=20).filter(lambda b: b"\n" not in b),
)


@settings(derandomize=True, max_examples=80, deadline=None)
@given(st.lists(lackey_line, max_size=40), st.booleans(), st.sampled_from([None, 1, 5, 64]))
def test_property_lackey_parser_matches_reference(lines, final_newline, block):
    text = b"\n".join(lines) + (b"\n" if final_newline and lines else b"")
    # text that starts with another format's magic bytes is that format
    assume(not text.startswith((b"PK\x03\x04", b"PK\x05\x06", b"\x93NUMPY", b"\x1f\x8b")))
    ref = ref_parse_lackey(text)
    saved = trace_lackey._LACKEY_BLOCK
    if block:
        trace_lackey._LACKEY_BLOCK = block
    try:
        with tempfile.TemporaryDirectory() as d:
            p = write_bytes(os.path.join(d, "t.txt"), text)
            if not text or (ref[0] != "error" and not ref[0]):     # no record in it
                with pytest.raises(TraceError, match="empty trace"):
                    open_trace(p)
                return
            if ref[0] == "error":
                with pytest.raises(TraceError, match=re.escape(f"{p}:{ref[1]}: ")):
                    read_all(p, 3)
            else:
                a, k, s = read_all(p, 3)
                assert a.tolist() == ref[0] and k.tolist() == ref[1]
                assert (s.tolist() if s is not None else []) == ref[2]
    finally:
        trace_lackey._LACKEY_BLOCK = saved


# --------------------------------------------------------------------------
# memory
# --------------------------------------------------------------------------


@pytest.mark.slow
def test_npy_is_read_memory_mapped_in_bounded_memory(tmp_path):
    n = 25_000_000
    dt = np.dtype([("addr", "<u8"), ("kind", "u1")])   # 9 bytes a record: 225 MB
    p = str(tmp_path / "big.npy")
    with open(p, "wb") as f:
        np.lib.format.write_array_header_1_0(
            f, {"descr": np.lib.format.dtype_to_descr(dt), "fortran_order": False, "shape": (n,)})
        step = 1 << 21
        for start in range(0, n, step):
            i = np.arange(start, min(n, start + step), dtype=np.uint64)
            r = np.empty(len(i), dt)
            r["addr"] = i
            r["kind"] = i % 4
            f.write(r.tobytes())
    file_mb = os.path.getsize(p) / 2**20
    assert file_mb > 200
    script = textwrap.dedent(f"""
        import resource, sys
        sys.path.insert(0, {ROOT!r})
        import numpy as np
        from emu.workload.traces import open_trace
        t = open_trace({p!r})
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        total = 0
        kinds = np.zeros(4, np.int64)
        for c in t.chunks():
            total += int(c.addr.sum(dtype=np.uint64))
            kinds += np.bincount(c.kind, minlength=4)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(base, peak, total, kinds.min())
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=120, check=True).stdout.split()
    base_kb, peak_kb, total, kmin = (int(x) for x in out)
    assert total == n * (n - 1) // 2                   # every record was read
    assert kmin == n // 4
    grown_mb = (peak_kb - base_kb) / 1024               # ru_maxrss is in KiB on Linux
    assert grown_mb < 100, f"peak RSS grew by {grown_mb:.0f} MB reading a {file_mb:.0f} MB trace"

"""Deflated ``.npz`` members (``np.savez_compressed``), inflated from the
archive's bytes a window at a time, each member on a thread of its own.

Every test runs with ISA-L's inflate (when installed) and with zlib's, with
windows of 1000 records and compressed pieces of a few hundred bytes, so
that every boundary of the reader falls many times inside each member.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import subprocess
import sys
import threading
import types
import zipfile
import zlib

import numpy as np
import pytest

from emu.errors import TraceError
from emu.workload.traces import open_trace, synthetic_trace
from emu.workload.traces import base as trace_base
from emu import _inflate

N = 60_000
WINDOW = 1000


@pytest.fixture(params=["isal", "zlib"])
def inflate(request, monkeypatch):
    """Small windows and pieces; ISA-L's inflate or zlib's."""
    monkeypatch.setattr(trace_base, "_WINDOW_RECORDS", WINDOW)
    monkeypatch.setattr(_inflate, "_PIECE", 300)
    monkeypatch.setattr(_inflate, "_INFLATE", 5000)
    if request.param == "isal":
        igzip = pytest.importorskip("isal.igzip_lib")
        assert _inflate._igzip is igzip                    # installed, so it is used
    else:
        monkeypatch.setattr(_inflate, "_igzip", None)
        monkeypatch.setattr(_inflate, "_zlib", zlib)
        monkeypatch.setattr(_inflate, "crc32", zlib.crc32)
    return request.param


@pytest.fixture(scope="module")
def arrays() -> dict:
    c = synthetic_trace(N, seed=5)
    return {"addr": c.addr, "kind": c.kind, "size": c.size}


@pytest.fixture
def deflated(tmp_path, arrays):
    p = tmp_path / "t.npz"
    np.savez_compressed(p, **arrays)
    return p


def read_all(path, chunk: int = 700) -> tuple:
    """(chunks read, the TraceError raised or None)."""
    got = []
    try:
        with open_trace(path) as t:
            for c in t.chunks(chunk):
                got.append(c)
    except TraceError as e:
        return got, e
    return got, None


def central_entry(data: bytes, name: str) -> int:
    """Offset of ``name``'s entry in the zip's central directory."""
    i, = struct.unpack_from("<I", data, data.rindex(b"PK\x05\x06") + 16)
    while True:
        name_len, extra_len, comment_len = struct.unpack_from("<HHH", data, i + 28)
        if data[i + 46:i + 46 + name_len] == name.encode():
            return i
        i += 46 + name_len + extra_len + comment_len


def member_data(path, name: str) -> tuple:
    """(offset, length) of the member's compressed bytes in the file."""
    data = path.read_bytes()
    e = central_entry(data, name)
    size, = struct.unpack_from("<I", data, e + 20)
    local, = struct.unpack_from("<I", data, e + 42)
    name_len, extra_len = struct.unpack_from("<HH", data, local + 26)
    return local + 30 + name_len + extra_len, size


def test_the_records_are_numpys_whichever_inflate(deflated, arrays, inflate):
    """Every chunk kept (their arrays are not written again by a later
    window) and joined: the arrays numpy reads."""
    got, err = read_all(deflated)
    assert err is None
    for key in ("addr", "kind", "size"):
        np.testing.assert_array_equal(np.concatenate([getattr(c, key) for c in got]), arrays[key])
    with open_trace(deflated) as t:                     # read again: the same
        assert sum(len(c) for c in t.chunks(997, exact=False)) == N


def test_output_many_times_its_input_reads_the_same(tmp_path, inflate):
    """Members that deflate a hundredfold and more: each piece of input gives
    many calls' worth of output, the input left over carried from call to call."""
    i = np.arange(N, dtype=np.uint64)
    arrays = {"addr": (i % np.uint64(64)) << np.uint64(12), "kind": np.ones(N, np.uint8),
              "size": np.full(N, 4, np.uint32)}
    p = tmp_path / "flat.npz"
    np.savez_compressed(p, **arrays)
    assert p.stat().st_size * 100 < 13 * N               # 13 bytes a record
    got, err = read_all(p)
    assert err is None
    for key in ("addr", "kind", "size"):
        np.testing.assert_array_equal(np.concatenate([getattr(c, key) for c in got]), arrays[key])


@pytest.mark.parametrize("backend", ["isal", "zlib"])
def test_the_largest_member_inflates_on_a_thread_of_its_own_the_others_on_the_readers(
        deflated, monkeypatch, backend):
    """One inflater per member, not zipfile's: the largest (``addr``, whose
    inflating sets the pace) beside the reader's thread, the others on it."""
    made = []

    class Counting:
        def __init__(self, *args, **kwargs):
            self._d = real(*args, **kwargs)
            self.args, self.threads, self.given = args or kwargs, set(), 0
            made.append(self)

        def decompress(self, data, max_length):
            self.threads.add(threading.get_ident())
            out = self._d.decompress(data, max_length)
            self.given += len(out)
            return out

        def __getattr__(self, name):
            return getattr(self._d, name)

    if backend == "isal":
        igzip = pytest.importorskip("isal.igzip_lib")
        real = igzip.IgzipDecompressor
        monkeypatch.setattr(_inflate, "_igzip", types.SimpleNamespace(
            IgzipDecompressor=Counting, DECOMP_GZIP_NO_HDR=igzip.DECOMP_GZIP_NO_HDR))
        expect = {"flag": igzip.DECOMP_GZIP_NO_HDR}     # raw deflate, its CRC-32 summed
    else:
        real = zlib.decompressobj
        monkeypatch.setattr(_inflate, "_igzip", None)
        monkeypatch.setattr(_inflate, "_zlib", types.SimpleNamespace(decompressobj=Counting))
        monkeypatch.setattr(_inflate, "crc32", zlib.crc32)
        expect = (-15,)                                 # raw deflate, no zlib header
    before = threading.active_count()
    got, err = read_all(deflated)
    assert err is None and sum(map(len, got)) == N
    assert [m.args for m in made] == [expect] * 3
    largest = max(made, key=lambda m: m.given)
    assert largest.given == 8 * N + 128                 # addr: its npy header and 8 bytes a record
    here = threading.get_ident()
    assert here not in largest.threads and len(largest.threads) == 1
    assert all(m.threads == {here} for m in made if m is not largest)
    assert threading.active_count() == before           # the helper thread ended


def test_a_trace_left_part_read_ends_its_threads(deflated, inflate):
    before = threading.active_count()
    with open_trace(deflated) as t:
        it = t.chunks(700)
        next(it)
        next(it)
        it.close()
    assert threading.active_count() == before


def test_a_bad_crc_is_refused_at_the_members_end(deflated, inflate):
    """An intact deflate stream whose bytes do not have the CRC-32 the
    directory gives: refused once the member has been inflated."""
    data = bytearray(deflated.read_bytes())
    e = central_entry(bytes(data), "addr.npy")
    data[e + 16] ^= 0x01
    deflated.write_bytes(bytes(data))
    got, err = read_all(deflated)
    assert err is not None and str(err) == (f"{deflated}: cannot read array 'addr': corrupt or "
                                            "truncated npz (BadZipFile: bad CRC-32 for member "
                                            "'addr.npy')")
    assert N - WINDOW <= sum(map(len, got)) < N


def test_a_damaged_deflate_stream_is_refused_where_it_is_reached(deflated, inflate):
    """Garbage in the middle of the addr member's deflate stream: the
    records before it are read, then the inflater's error, in one line."""
    offset, length = member_data(deflated, "addr.npy")
    data = bytearray(deflated.read_bytes())
    middle = offset + length // 2
    data[middle:middle + 64] = b"\xff" * 64
    deflated.write_bytes(bytes(data))
    got, err = read_all(deflated)
    assert err is not None
    msg = str(err)
    assert msg.startswith(f"{deflated}: cannot read array 'addr': corrupt or truncated npz (")
    assert "Error -" in msg and "CRC" not in msg and "\n" not in msg   # the inflater's
    assert N // 4 < sum(map(len, got)) < 3 * N // 4


def test_a_member_running_past_the_end_of_the_file_is_refused_on_opening(deflated):
    data = bytearray(deflated.read_bytes())
    e = central_entry(bytes(data), "size.npy")
    struct.pack_into("<I", data, e + 20, len(data))      # compressed size: the whole file
    deflated.write_bytes(bytes(data))
    with pytest.raises(TraceError) as ei:
        open_trace(deflated)
    assert str(ei.value) == (f"{deflated}: cannot read array 'size': corrupt or truncated npz "
                             "(BadZipFile: member data runs past the end of the file)")


def test_an_empty_deflated_trace_reads_no_record(tmp_path, inflate):
    p = tmp_path / "e.npz"
    np.savez_compressed(p, addr=np.zeros(0, np.uint64), kind=np.zeros(0, np.uint8))
    got, err = read_all(p)
    assert err is None and got == []


WITHOUT_ISAL = """\
import hashlib, sys, zlib
sys.modules["isal"] = None                              # as if it were not installed
from emu import _inflate
from emu.workload.traces import open_trace
assert _inflate._igzip is None and _inflate._zlib is zlib and _inflate.crc32 is zlib.crc32
h = hashlib.sha256()
with open_trace(sys.argv[1]) as t:
    for c in t.chunks(1000):
        h.update(c.addr.tobytes() + c.kind.tobytes() + c.size.tobytes())
print(h.hexdigest())
"""


def test_without_isal_zlib_inflates_the_same_records(deflated, arrays):
    proc = subprocess.run([sys.executable, "-c", WITHOUT_ISAL, str(deflated)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    h = hashlib.sha256()
    for i in range(0, N, 1000):
        h.update(b"".join(arrays[k][i:i + 1000].tobytes() for k in ("addr", "kind", "size")))
    assert proc.stdout.strip() == h.hexdigest()


# --------------------------------------------------------------------------
# the head start: ``emu tlb FILE`` starts the largest member before emu loads
# --------------------------------------------------------------------------


@pytest.fixture
def no_head_start():
    """No member started here is left for another test to take up."""
    yield
    while _inflate._started:
        _inflate._started.popitem()[1].close()


def records(path) -> dict:
    with open_trace(path) as t:
        got = list(t.chunks(4096))
    return {key: np.concatenate([getattr(c, key) for c in got]) for key in ("addr", "kind", "size")
            if getattr(got[0], key) is not None}


def test_a_head_start_is_taken_up_by_the_reader(deflated, arrays, inflate, no_head_start):
    """The largest member (``addr``) starts; the reader opening the file takes
    it up (nothing is left started) and reads numpy's arrays."""
    _inflate.head_start(str(deflated))
    assert [key[1][0] for key in _inflate._started] == ["addr.npy"]
    got = records(deflated)
    assert not _inflate._started
    for key in ("addr", "kind", "size"):
        np.testing.assert_array_equal(got[key], arrays[key])


def test_a_head_start_goes_no_further_ahead_than_its_budget(deflated, monkeypatch, no_head_start):
    """Unread, the head start inflates its budget (and at most one piece
    more), then waits for its reader."""
    monkeypatch.setattr(_inflate, "AHEAD", 20_000)
    monkeypatch.setattr(_inflate, "_INFLATE", 5000)
    _inflate.head_start(str(deflated))
    (ahead,) = _inflate._started.values()
    for _ in range(200):
        if ahead._held >= 20_000:
            break
        threading.Event().wait(0.01)
    threading.Event().wait(0.05)
    assert 20_000 <= ahead._held <= 25_000 and not ahead._ended
    assert N * 8 > 10 * ahead._held                     # far from the whole member


def test_a_file_rewritten_after_its_head_start_is_read_as_it_is_now(tmp_path, arrays,
                                                                    no_head_start):
    """The head start is of the file as it was: a reader opening it after it
    was rewritten does not take it up, and reads the new records."""
    p = tmp_path / "t.npz"
    np.savez_compressed(p, **arrays)
    _inflate.head_start(str(p))
    new = {key: a[::-1].copy() for key, a in arrays.items()}
    np.savez_compressed(tmp_path / "new.npz", **new)
    (tmp_path / "new.npz").replace(p)
    (ahead,) = _inflate._started.values()
    got = records(p)
    for key in ("addr", "kind", "size"):
        np.testing.assert_array_equal(got[key], new[key])
    assert not _inflate._started and ahead.closed       # the old file's: stopped, let go


def test_a_head_start_is_kept_for_its_file_whatever_the_members_order(tmp_path, arrays,
                                                                      no_head_start):
    """``kind`` first in the archive: its reader, finding nothing started for
    it, leaves the ``addr`` started for the same file to be taken up."""
    p = tmp_path / "t.npz"
    with zipfile.ZipFile(p, "w", zipfile.ZIP_DEFLATED) as z:
        for key in ("kind", "size", "addr"):
            with z.open(key + ".npy", "w") as m:
                np.lib.format.write_array(m, arrays[key])
    _inflate.head_start(str(p))
    (ahead,) = _inflate._started.values()
    got = records(p)
    assert not _inflate._started and ahead.closed       # taken up, read, closed
    np.testing.assert_array_equal(got["addr"], arrays["addr"])


def test_members_named_without_npy_inflate_ahead_too(tmp_path, arrays, no_head_start):
    """``addr`` for ``addr.npy``, as np.load reads it: started and read."""
    p = tmp_path / "t.npz"
    with zipfile.ZipFile(p, "w", zipfile.ZIP_DEFLATED) as z:
        for key in ("addr", "kind"):
            with z.open(key, "w") as m:
                np.lib.format.write_array(m, arrays[key])
    _inflate.head_start(str(p))
    assert [key[1][0] for key in _inflate._started] == ["addr"]
    got = records(p)
    assert not _inflate._started
    np.testing.assert_array_equal(got["addr"], arrays["addr"])
    np.testing.assert_array_equal(got["kind"], arrays["kind"])


def test_emu_tlb_lets_go_of_its_head_start_however_it_ends(deflated, capsys):
    """A bad option, found after the head start: nothing is left inflating
    in a process that goes on (main() may be called in one)."""
    from emu.cli import main
    before = threading.active_count()
    assert main(["tlb", str(deflated), "--policy", "bogus"]) == 2
    assert "policy" in capsys.readouterr().err
    assert not _inflate._started and threading.active_count() == before
    assert main(["tlb", str(deflated), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["records"] == N
    assert not _inflate._started and threading.active_count() == before


def test_a_damaged_member_started_ahead_fails_where_its_reader_reaches_it(deflated, inflate,
                                                                          no_head_start):
    """The inflater's error, raised on the head start's thread, reaches the
    reader after the records before it, in the message it gives unstarted."""
    offset, length = member_data(deflated, "addr.npy")
    data = bytearray(deflated.read_bytes())
    data[offset + length // 2:offset + length // 2 + 64] = b"\xff" * 64
    deflated.write_bytes(bytes(data))
    unstarted = read_all(deflated)
    _inflate.head_start(str(deflated))
    assert _inflate._started
    started = read_all(deflated)
    assert not _inflate._started
    assert str(started[1]) == str(unstarted[1]) and "corrupt or truncated npz" in str(started[1])
    assert sum(map(len, started[0])) == sum(map(len, unstarted[0])) > N // 4


def test_a_head_start_leaves_alone_what_is_not_a_deflated_npz(tmp_path, arrays, no_head_start):
    """A FIFO is not opened (its writer's bytes stay for the reader), and a
    stored .npz, an .npy, a folder, a missing path, '' and '-' start nothing
    and raise nothing."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    stored = tmp_path / "s.npz"
    np.savez(stored, **arrays)
    npy = tmp_path / "a.npy"
    np.save(npy, arrays["addr"])
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"PK\x03\x04 not a zip at all")
    for path in (fifo, stored, npy, tmp_path, tmp_path / "missing.npz", junk, "", "-", None, 5):
        _inflate.head_start(path)
        assert not _inflate._started, path


def test_emu_tlb_loads_numpy_after_the_head_start():
    """The tlb command's module, and the head start, import no numpy: the
    command starts the inflating before numpy loads."""
    code = ("import sys, emu.cli.tlb, emu._inflate; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'numpy'))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip() == "[]", (proc.stdout, proc.stderr)

"""Trace input as users have it: pipes, FIFOs, /dev/stdin, devices, npz
members from other tools, and memory bounded whatever the size.

The pipe tests compare whole processes: ``emu tlb FILE --json`` against the
same command reading the same bytes through ``cat FILE | emu tlb /dev/stdin``,
a process with a pipe as stdin, process substitution, and a named FIFO.  The
traces are large enough (several MB) that every reader boundary (the peek,
the first lackey block, pipe buffers, gzip blocks, npy windows) falls inside
them, where a reader that opened the path twice would lose records.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emu.errors import TraceError
from emu.run import files
from emu.run.files import remove_stale_temporaries, remove_unheld, write_text
from emu.workload.traces import (import_lackey, open_trace, read_ahead, synthetic_trace,
                                 write_trace_npy, write_trace_npz)
from emu.workload.traces import lackey as trace_lackey
from emu.workload.traces import npz as trace_npz
from emu.workload.traces import source as trace_source

ROOT = Path(__file__).resolve().parents[1]
COUNTERS = ("records", "records_read", "translations", "hits", "misses", "compulsory_misses")


def emu_cmd(*args) -> list:
    return [sys.executable, "-m", "emu.cli", *map(str, args)]


def env() -> dict:
    e = dict(os.environ)
    e["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), e.get("PYTHONPATH")) if p)
    return e


def counters(stdout: str) -> dict:
    out = json.loads(stdout)
    return {k: out[k] for k in COUNTERS}


def run(cmd, **kw) -> subprocess.CompletedProcess:
    kw.setdefault("timeout", 120)
    return subprocess.run(cmd, capture_output=True, env=env(), cwd=ROOT, **kw)


def lackey_text(n: int, seed: int = 3) -> bytes:
    """Lackey text of ``n`` records, with valgrind messages and varied spacing."""
    c = synthetic_trace(n, seed=seed)
    letters = np.array(["I  ", " L ", " S ", " M "])[c.kind]
    lines = [f"{p}{a:x},{s}\n" for p, a, s in zip(letters, c.addr.tolist(), c.size.tolist())]
    lines[1000:1000] = ["==4242== Lackey, an example Valgrind tool\n", "\n",
                        "--4242-- WARNING: unhandled amd64-linux syscall: 435\n"]
    return "".join(lines).encode()


@pytest.fixture(scope="module")
def traces(tmp_path_factory) -> dict:
    """{format: path} of one trace, 400,000 records, in each streamable format."""
    d = tmp_path_factory.mktemp("traces")
    text = lackey_text(400_000)
    paths = {"lackey": d / "t.lackey", "lackey.gz": d / "t.lackey.gz", "npy": d / "t.npy"}
    paths["lackey"].write_bytes(text)
    paths["lackey.gz"].write_bytes(gzip.compress(text, 6))
    t = open_trace(paths["lackey"])
    c = next(t.chunks(1 << 30))
    write_trace_npy(paths["npy"], c.addr, c.kind, c.size)
    return paths


@pytest.fixture(scope="module")
def file_counters(traces) -> dict:
    out = {}
    for fmt, p in traces.items():
        proc = run(emu_cmd("tlb", p, "--json"))
        assert proc.returncode == 0, proc.stderr
        out[fmt] = counters(proc.stdout)
    assert len({tuple(c.values()) for c in out.values()}) == 1     # the same trace, three ways
    assert out["npy"]["records"] == 400_000
    return out


FORMATS = ["lackey", "lackey.gz", "npy"]


@pytest.mark.slow
@pytest.mark.parametrize("fmt", FORMATS)
def test_cat_into_dev_stdin_reads_what_the_file_holds(traces, file_counters, fmt):
    proc = run(["sh", "-c", 'cat "$1" | "$2" -m emu.cli tlb /dev/stdin --json', "sh",
                str(traces[fmt]), sys.executable])
    assert proc.returncode == 0, proc.stderr
    assert counters(proc.stdout) == file_counters[fmt]


@pytest.mark.slow
@pytest.mark.parametrize("fmt", FORMATS)
def test_a_pipe_as_stdin_reads_what_the_file_holds(traces, file_counters, fmt):
    proc = run(emu_cmd("tlb", "/dev/stdin", "--json"), input=traces[fmt].read_bytes())
    assert proc.returncode == 0, proc.stderr
    assert counters(proc.stdout) == file_counters[fmt]


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("bash") is None, reason="process substitution needs bash")
def test_process_substitution_reads_what_the_file_holds(traces, file_counters):
    proc = run(["bash", "-c", '"$2" -m emu.cli tlb <(zcat "$1") --json', "bash",
                str(traces["lackey.gz"]), sys.executable])
    assert proc.returncode == 0, proc.stderr
    assert counters(proc.stdout) == file_counters["lackey"]


def _feed_fifo(fifo: Path, data: bytes, delay: float = 0.0) -> threading.Thread:
    def write():
        time.sleep(delay)
        with open(fifo, "wb") as f:
            for i in range(0, len(data), 50_000):      # in small, uneven writes
                f.write(data[i:i + 50_000])
    t = threading.Thread(target=write, daemon=True)
    t.start()
    return t


@pytest.mark.slow
@pytest.mark.parametrize("fmt", FORMATS)
def test_a_fifo_reads_what_the_file_holds(traces, file_counters, fmt, tmp_path):
    fifo = tmp_path / "trace.fifo"
    os.mkfifo(fifo)
    writer = _feed_fifo(fifo, traces[fmt].read_bytes(), delay=0.5)   # emu opens it first
    proc = run(emu_cmd("tlb", fifo, "--json"))
    writer.join(10)
    assert proc.returncode == 0, proc.stderr
    assert counters(proc.stdout) == file_counters[fmt]


def test_a_fifo_nothing_writes_to_is_refused_in_time(tmp_path, monkeypatch):
    monkeypatch.setattr(trace_source, "FIFO_WAIT_S", 0.3)
    fifo = tmp_path / "idle.fifo"
    os.mkfifo(fifo)
    t = time.monotonic()
    with pytest.raises(TraceError) as refused:
        open_trace(fifo)
    assert time.monotonic() - t < 5
    assert str(refused.value) == (f"{fifo}: no program opened this FIFO for writing within "
                                  "0.3 s (start the program that writes to it)")


@pytest.mark.parametrize("data", [b"", b" L 1000,4\n S 2000,8\n"], ids=["nothing", "records"])
def test_a_fifo_whose_writer_connects_in_time_is_waited_for_past_the_limit(
        tmp_path, monkeypatch, data):
    """A writer that opens the FIFO at once but writes (or closes) only
    after the limit: its records are read, or its nothing is an empty trace."""
    monkeypatch.setattr(trace_source, "FIFO_WAIT_S", 0.3)
    fifo = tmp_path / "slow.fifo"
    os.mkfifo(fifo)

    def write():
        with open(fifo, "wb") as f:         # connected as soon as emu opens the FIFO
            time.sleep(1.0)
            f.write(data)

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    t = time.monotonic()
    try:
        if data:
            with open_trace(fifo) as trace:
                c = next(trace.chunks())
            assert c.addr.tolist() == [0x1000, 0x2000] and c.kind.tolist() == [1, 2]
        else:
            with pytest.raises(TraceError, match="empty trace"):
                open_trace(fifo)
    finally:
        writer.join(10)
    assert time.monotonic() - t >= 0.9


def test_a_fifo_whose_writer_closes_without_data_is_an_empty_trace(tmp_path):
    fifo = tmp_path / "empty.fifo"
    os.mkfifo(fifo)
    _feed_fifo(fifo, b"", delay=0.2)
    with pytest.raises(TraceError, match="empty trace"):
        open_trace(fifo)


def test_a_pipe_is_read_once(traces):
    r, w = os.pipe()
    with open(w, "wb") as f:
        f.write(b"I  1000,4\n L 2000,8\n")
    try:
        t = open_trace(f"/dev/fd/{r}")
        assert sum(len(c) for c in t.chunks()) == 2
        with pytest.raises(TraceError, match="can be read only once.*save it to a file"):
            t.chunks()
        t.close()
    finally:
        os.close(r)


def test_a_file_is_read_again_from_its_start(traces):
    for fmt in FORMATS:
        with open_trace(traces[fmt]) as t:
            a = np.concatenate([c.addr for c in t.chunks(100_000)])
            b = np.concatenate([c.addr for c in t.chunks(65_536)])
            np.testing.assert_array_equal(a, b)
            assert len(a) == 400_000


def test_an_endless_stream_of_garbage_is_refused_in_bounded_memory():
    r, w = os.pipe()
    stop = threading.Event()

    def write():
        block = b"\0" * 65536
        try:
            while not stop.is_set():
                os.write(w, block)
        except OSError:             # the reader closed its end
            pass
        finally:
            os.close(w)

    t = threading.Thread(target=write, daemon=True)
    t.start()
    try:
        with pytest.raises(TraceError, match="malformed lackey line"):
            open_trace(f"/dev/fd/{r}")
    finally:
        stop.set()
        os.close(r)
        t.join(5)


@pytest.mark.parametrize("path,needle", [
    ("", "empty path"),
    (".", "is a directory"),
    ("/dev/zero", "character device"),
    ("/dev/null", "character device"),
])
def test_what_cannot_be_a_trace_is_one_line_and_exit_2(path, needle):
    t = time.monotonic()
    proc = run(emu_cmd("tlb", path), timeout=30, text=True)
    assert time.monotonic() - t < 20
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and needle in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""


@pytest.mark.parametrize("fmt", ["npy", "npz", "plain-npy"])
def test_a_trace_of_no_record_is_refused_as_lackey_text_of_none_is(tmp_path, fmt):
    """An .npy or .npz of no record ran, printing a miss rate of 0 %, while a
    lackey text of none was refused: each is refused in one line."""
    path = tmp_path / f"e.{'npz' if fmt == 'npz' else 'npy'}"
    dt = np.dtype([("addr", "<u8"), ("kind", "u1"), ("size", "<u4")])
    if fmt == "npz":
        np.savez(path, addr=np.empty(0, np.uint64), kind=np.empty(0, np.uint8))
    else:
        np.save(path, np.empty(0, dt if fmt == "npy" else np.uint64))
    proc = run(emu_cmd("tlb", path), timeout=60, text=True)
    assert (proc.returncode, proc.stdout, proc.stderr) == (
        2, "", f"emu: error: {path}: empty trace (it holds no records)\n")


@pytest.mark.parametrize("argv", [
    ["compare", "{toml}", "--vary", "kvm.handler=c,asm"],
    ["run", "{toml}", "--set", "vm.0.process.0.count=2"],
    ["sweep", "{toml}", "--grid", "seed=1,2", "--out", "{tmp}/out"],
    ["run", "{toml}", "--set", "host_task.0.workload.kind=trace",
     "--set", "host_task.0.workload.path=/dev/fd/0"],
])
def test_a_pipe_read_by_several_runs_is_refused_before_any_runs(tmp_path, argv):
    """The first run used the pipe up and the second blamed the trace ("empty
    trace, nothing was read from the pipe"); one run of one process reads it."""
    toml = tmp_path / "t.toml"
    toml.write_text('duration_ms = 0.2\n[kvm]\nstrategy = "direct"\n[[vm]]\n[[vm.process]]\n'
                    'workload = { kind = "trace", path = "/dev/stdin" }\n')
    data = lackey_text(2000)
    argv = [a.format(toml=toml, tmp=tmp_path) for a in argv]
    p = run(emu_cmd(*argv), input=data, text=False)
    named = "/dev/stdin and /dev/fd/0 (one pipe)" if "/dev/fd/0" in " ".join(argv) \
        else "/dev/stdin"                         # one pipe under two names
    assert (p.returncode, p.stderr.decode()) == (
        2, f"emu: error: {named}: a pipe is read once, and it would be read 2 times (each "
           f"run, each process reads its trace): save the trace to a file and give that\n")
    assert not (tmp_path / "out").exists()
    assert run(emu_cmd("run", toml), input=data, text=False).returncode == 0


def test_a_pipe_a_sweep_point_sets_is_refused_if_several_runs_read_it(tmp_path):
    """A sweep checked the pipes of its scenario with --set alone, not of
    its points: a grid that put /dev/stdin at one point, replicated by
    --seeds 2, ran that point's first replicate and then failed on the
    second ("empty trace, nothing was read from the pipe"), blaming the
    trace, with half the sweep written."""
    (tmp_path / "t.lackey").write_bytes(lackey_text(2000))
    toml = tmp_path / "t.toml"
    toml.write_text('duration_ms = 0.2\n[kvm]\nstrategy = "direct"\n[[vm]]\n[[vm.process]]\n'
                    'workload = { kind = "trace", path = "t.lackey" }\n')
    grid = ["--grid", "vm.0.process.0.workload.path=t.lackey,/dev/stdin"]
    out = tmp_path / "out"
    p = run(emu_cmd("sweep", toml, *grid, "--seeds", "2", "--out", out),
            input=lackey_text(2000), text=False)
    assert (p.returncode, p.stderr.decode()) == (
        2, "emu: error: /dev/stdin: a pipe is read once, and it would be read 2 times (each "
           "run, each process reads its trace): save the trace to a file and give that\n")
    assert not out.exists()
    # one run reads it: the sweep runs, and the pipe's point counts what the file's does
    p = run(emu_cmd("sweep", toml, *grid, "--out", out), input=lackey_text(2000), text=False)
    assert p.returncode == 0, p.stderr.decode()
    import emu
    table = emu.load(out)
    assert len(table) == 2
    for column in ("guest_accesses", "guest_misses", "exits"):
        assert table[column].iloc[0] == table[column].iloc[1] > 0, column


@pytest.mark.parametrize("command", ["import", "tlb"])
def test_sigterm_while_a_pipe_has_gone_quiet_ends_at_once(tmp_path, command):
    """A read waiting on a pipe whose writer had gone quiet held the reader's
    lock: closing the reader after SIGTERM (or Ctrl-C) waited for the writer."""
    fifo = tmp_path / "f"
    os.mkfifo(fifo)
    argv = (["trace", "import", "lackey", fifo, "-o", tmp_path / "t.npz"]
            if command == "import" else ["tlb", fifo])
    p = subprocess.Popen(emu_cmd(*argv), env=env(), cwd=ROOT, stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    with open(fifo, "wb") as writer:                  # open, write, then fall quiet
        writer.write(lackey_text(3000))
        writer.flush()
        time.sleep(1.5)
        p.send_signal(signal.SIGTERM)
        t = time.monotonic()
        try:
            _, stderr = p.communicate(timeout=15)
        finally:
            p.kill()
        assert time.monotonic() - t < 5, "it waited for the writer"
    assert (p.returncode, stderr) == (143, "emu: terminated\n")
    assert [n for n in os.listdir(tmp_path) if n != "f"] == []


def test_emu_run_with_a_trace_workload_on_dev_zero_is_one_line(tmp_path):
    toml = tmp_path / "z.toml"
    toml.write_text('[[vm]]\n[[vm.process]]\nworkload = { kind = "trace", path = "/dev/zero" }\n')
    for scenario in (toml, "/dev/zero"):
        proc = run(emu_cmd("run", scenario), timeout=60, text=True)
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.count("\n") == 1 and "/dev/zero" in proc.stderr, proc.stderr


def test_an_npz_from_a_pipe_is_refused_saying_why(tmp_path):
    p = tmp_path / "t.npz"
    write_trace_npz(p, np.arange(10, dtype=np.uint64))
    proc = run(emu_cmd("tlb", "/dev/stdin"), input=p.read_bytes())
    err = proc.stderr.decode()
    assert proc.returncode == 2 and err.count("\n") == 1, err
    assert "an .npz cannot be read from a pipe" in err and "save it to a file" in err


@pytest.mark.parametrize("fmt", FORMATS)
def test_dash_is_standard_input_read_as_dev_stdin(tmp_path, fmt):
    text = lackey_text(20_000)
    p = tmp_path / f"t.{fmt}"
    (tmp_path / "src.lackey").write_bytes(text)
    if fmt == "npy":
        with open_trace(tmp_path / "src.lackey") as t:
            c = next(t.chunks(1 << 30))
        write_trace_npy(p, c.addr, c.kind, c.size)
    else:
        p.write_bytes(gzip.compress(text) if fmt == "lackey.gz" else text)
    ref = run(emu_cmd("tlb", "/dev/stdin", "--json"), input=p.read_bytes())
    dash = run(emu_cmd("tlb", "-", "--json"), input=p.read_bytes())
    assert dash.returncode == 0 and ref.returncode == 0, dash.stderr
    assert counters(dash.stdout) == counters(ref.stdout)
    assert counters(dash.stdout)["records"] == 20_000
    assert json.loads(dash.stdout)["trace"]["path"] == "-"


def test_dash_as_trace_import_input_is_standard_input(tmp_path):
    src = tmp_path / "t.lackey"
    src.write_bytes(lackey_text(5_000))
    proc = run(emu_cmd("trace", "import", "lackey", "-", "-o", tmp_path / "t.npy"),
               input=src.read_bytes())
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.decode() == f"{tmp_path / 't.npy'}: 5,000 records\n"
    with open_trace(tmp_path / "t.npy") as a, open_trace(src) as b:
        np.testing.assert_array_equal(next(a.chunks(1 << 30)).addr, next(b.chunks(1 << 30)).addr)


def test_an_npz_from_dash_is_refused_as_from_dev_stdin(tmp_path):
    p = tmp_path / "t.npz"
    write_trace_npz(p, np.arange(10, dtype=np.uint64))
    proc = run(emu_cmd("tlb", "-"), input=p.read_bytes())
    assert proc.returncode == 2 and proc.stdout == b"", proc.stderr
    assert proc.stderr.decode() == (
        "emu: error: -: an .npz cannot be read from a pipe or FIFO (a zip keeps its directory "
        "at its end): save it to a file, or stream .npy or lackey text\n")


@pytest.mark.parametrize("shape", ["(2**3,)", "(n,)", "(int(8),)"])
def test_an_npy_header_not_a_literal_is_said_the_same_each_time(tmp_path, shape):
    """numpy's parser named the node by its address (``<ast.BinOp object at
    0x7f...>``): a message that changed from run to run and said nothing."""
    h = ("{'descr': '<u8', 'fortran_order': False, 'shape': %s, }" % shape).encode()
    h += b" " * (118 - len(h)) + b"\n"
    p = tmp_path / "expr.npy"
    p.write_bytes(b"\x93NUMPY\x01\x00" + len(h).to_bytes(2, "little") + h + bytes(64))
    with pytest.raises(TraceError) as info:
        open_trace(p)
    assert str(info.value) == (f"{p}: truncated or corrupt npy file (ValueError: the header is "
                               f"not a Python literal (an expression, a name or a call in it))")


@pytest.mark.parametrize("names", [("addr.npy", "addr.npy"), ("addr.npy", "addr")])
def test_an_npz_holding_an_array_twice_is_refused(tmp_path, names):
    """The last of the two was read (as np.load reads it), and the other
    named nowhere: a trace of 10 records or of 100, depending on the order."""
    import io
    import warnings
    p = tmp_path / "dup.npz"
    with warnings.catch_warnings(), zipfile.ZipFile(p, "w") as z:
        warnings.simplefilter("ignore")                     # zipfile: "Duplicate name"
        for name, n in zip(names, (10, 100)):
            b = io.BytesIO()
            np.save(b, np.arange(n, dtype=np.uint64) * 4096)
            z.writestr(name, b.getvalue())
    with pytest.raises(TraceError) as info:
        open_trace(p)
    assert str(info.value) == (f"{p}: npz holds array 'addr' twice (members {names[0]!r} and "
                               f"{names[1]!r}): which one is the trace is not known")


@pytest.mark.parametrize("compress", [False, True])
def test_an_npz_with_a_meta_member_runs_and_names_it(tmp_path, compress):
    c = synthetic_trace(50_000, seed=5)
    plain, extra = tmp_path / "plain.npz", tmp_path / "meta.npz"
    save = np.savez_compressed if compress else np.savez
    save(plain, addr=c.addr, kind=c.kind, size=c.size)
    save(extra, addr=c.addr, meta=np.array(["valgrind 3.22, ls -l /etc"]), kind=c.kind,
         size=c.size)
    a = run(emu_cmd("tlb", plain, "--json"), text=True)
    b = run(emu_cmd("tlb", extra, "--json"), text=True)
    assert a.returncode == 0 and b.returncode == 0, b.stderr
    assert counters(a.stdout) == counters(b.stdout)
    assert json.loads(a.stdout)["trace"]["ignored_members"] == []
    assert json.loads(b.stdout)["trace"]["ignored_members"] == ["meta"]
    table = run(emu_cmd("tlb", extra), text=True).stdout
    assert "ignored     meta\n" in table, table


def test_an_npz_missing_addr_is_refused_in_one_line(tmp_path):
    p = tmp_path / "t.npz"
    np.savez(p, address=np.arange(5, dtype=np.uint64), meta=np.zeros(2))
    proc = run(emu_cmd("tlb", p), text=True)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "no array 'addr'" in proc.stderr and "(arrays found: address, meta)" in proc.stderr


@pytest.mark.parametrize("crc32", ["isal", "zlib"])
def test_a_stored_npz_member_is_checked_against_its_crc(tmp_path, monkeypatch, crc32):
    """With ISA-L's CRC-32 (when installed) and with zlib's: an intact member
    reads, one flipped bit is refused."""
    if crc32 == "isal":
        pytest.importorskip("isal")
        assert trace_npz.crc32 is not zlib.crc32            # installed, so it is used
    else:
        monkeypatch.setattr(trace_npz, "crc32", zlib.crc32)
    p = tmp_path / "t.npz"
    write_trace_npz(p, np.arange(300_000, dtype=np.uint64), compress=False)
    assert sum(len(c) for c in open_trace(p).chunks(1000)) == 300_000
    data = bytearray(p.read_bytes())
    data[len(data) // 2] ^= 0x01                 # one bit of an address: still a valid value
    p.write_bytes(bytes(data))
    t = open_trace(p)
    with pytest.raises(TraceError, match="cannot read array 'addr'.*bad CRC-32"):
        for _ in t.chunks(1000):
            pass


def test_closing_a_trace_closes_its_file(tmp_path):
    p = tmp_path / "t.npy"
    write_trace_npy(p, np.arange(10, dtype=np.uint64))
    before = len(os.listdir("/proc/self/fd"))
    with open_trace(p) as t:
        assert len(os.listdir("/proc/self/fd")) == before + 1
    assert len(os.listdir("/proc/self/fd")) == before
    with pytest.raises(TraceError, match="closed"):
        list(t.chunks())


# --------------------------------------------------------------------------
# emu trace import: the format written, pipes, killed imports
# --------------------------------------------------------------------------


@pytest.mark.parametrize("out", ["t.npz", "t.npy"])
def test_import_writes_a_trace_read_back_memory_mapped(traces, tmp_path, out):
    dst = tmp_path / out
    proc = run(emu_cmd("trace", "import", "lackey", traces["lackey.gz"], "-o", dst), text=True)
    assert proc.returncode == 0, proc.stderr
    assert "400,000 records" in proc.stdout
    if out.endswith(".npz"):
        with zipfile.ZipFile(dst) as zf:
            assert sorted(zf.namelist()) == ["addr.npy", "kind.npy", "size.npy"]
            assert {i.compress_type for i in zf.infolist()} == {zipfile.ZIP_STORED}
    else:
        rec = np.load(dst, mmap_mode="r")
        assert rec.dtype.names == ("addr", "kind", "size") and rec.shape == (400_000,)
    ref = next(open_trace(traces["lackey"]).chunks(1 << 30))
    got = next(open_trace(dst).chunks(1 << 30))
    for name in ("addr", "kind", "size"):
        np.testing.assert_array_equal(getattr(got, name), getattr(ref, name))
    assert sorted(os.listdir(tmp_path)) == [out]


def test_import_from_a_pipe_writes_what_the_file_gives(traces, tmp_path):
    a, b = tmp_path / "file.npy", tmp_path / "pipe.npy"
    import_lackey(traces["lackey.gz"], a)
    proc = run(emu_cmd("trace", "import", "lackey", "/dev/stdin", "-o", b),
               input=traces["lackey.gz"].read_bytes())
    assert proc.returncode == 0, proc.stderr
    assert a.read_bytes() == b.read_bytes()


_HOLD = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDONLY)
fcntl.flock(fd, fcntl.LOCK_EX)
print("held", flush=True)
time.sleep(120)
"""


def _holder(path) -> subprocess.Popen:
    """A process that holds ``path`` locked, as a writer holds its temporary."""
    p = subprocess.Popen([sys.executable, "-c", _HOLD, str(path)], stdout=subprocess.PIPE,
                         text=True)
    assert p.stdout.readline() == "held\n"
    return p


def test_stale_temporaries_are_removed_and_live_ones_kept(tmp_path):
    """A temporary no process holds is a killed writer's; one a live writer
    holds stays, whatever process wrote it."""
    names = {
        ".t.npz.0123abcd.tmp": True,                    # a killed writer's file
        ".t.npz.4242.0123abcd.tmp": True,               # an older emu's, named by its PID
        ".u.npy.89abcdef.tmp.npy": True,                # another destination's
        ".t.npz.live0123.tmp": False,                   # a running writer's
        ".t.npz.xyz.tmp": False,                        # not a temporary's name
        ".hidden": False, "t.npz": False,
    }
    for name in names:
        (tmp_path / name).write_bytes(b"x")
    spool = tmp_path / ".t.npz.fedcba98.tmp"            # a killed import's spool folder
    spool.mkdir()
    (spool / "addr").write_bytes(b"x" * 1000)
    live = _holder(tmp_path / ".t.npz.live0123.tmp")
    try:
        assert remove_stale_temporaries(str(tmp_path), "u.npy") == [".u.npy.89abcdef.tmp.npy"]
        removed = remove_stale_temporaries(str(tmp_path))
    finally:
        live.kill()
        live.wait()
    assert sorted(removed) == sorted([n for n, gone in names.items() if gone and n[1] != "u"]
                                     + [spool.name])
    assert sorted(os.listdir(tmp_path)) == sorted(n for n, gone in names.items() if not gone)
    assert remove_stale_temporaries(str(tmp_path)) == [".t.npz.live0123.tmp"]   # its writer gone


def test_a_temporary_taken_while_it_is_removed_is_not_removed_under_its_writer(tmp_path,
                                                                            lock_tried_at):
    """A writer that locks its new temporary in the moment the next write
    has found it unheld, before that write removes it: the removal either
    holds the writer off until the name is gone (the writer then makes
    another) or leaves the temporary to it, never removes what it holds."""
    tmp = tmp_path / ".t.npz.0123abcd.tmp"
    tmp.write_bytes(b"x")
    writer = lock_tried_at("unlink", tmp)      # [its fd]: holds it; [None]: waits
    remove_stale_temporaries(str(tmp_path))
    assert writer
    assert tmp.exists() or writer[0] is None


def test_a_leftover_renamed_over_before_its_lock_is_not_removed(tmp_path, monkeypatch):
    """A removal of a killed writer's folder opened it, tested its lock,
    then removed what its name named: a folder renamed to that name in the
    moment between (a result folder's old set, taking the name its writer
    had made and held for it) was removed in its place.  Holding the lock,
    the removal checks that the name still names what it locked."""
    left = tmp_path / ".out.emu-old-abcd1234"
    left.mkdir()
    old_set = tmp_path / "out"
    old_set.mkdir()
    (old_set / "summary.json").write_text("{}")
    lock, moved = files.lock, []

    def renamed_over_now(fd, blocking):
        if not moved:
            os.rmdir(left)
            os.rename(old_set, left)
            moved.append(True)
        return lock(fd, blocking)

    monkeypatch.setattr(files, "lock", renamed_over_now)
    assert remove_unheld(str(left)) is False
    assert moved and (left / "summary.json").read_text() == "{}"


def test_a_fifo_named_as_a_temporary_is_left_alone_without_waiting(tmp_path):
    """Opening a FIFO to try its lock waited for a writer that never came:
    the next write of the file beside it hung."""
    fifo = tmp_path / ".t.npz.0123abcd.tmp"
    os.mkfifo(fifo)
    done = []
    t = threading.Thread(target=lambda: done.append(remove_stale_temporaries(str(tmp_path))),
                         daemon=True)
    t.start()
    t.join(10)
    assert done == [[]] and fifo.exists()


_KILLED_WRITE = """
import sys, time
from emu.run.files import atomic_path
with atomic_path(sys.argv[1]) as tmp:
    open(tmp, "w").write("half")
    print("writing", flush=True)
    time.sleep(120)
"""


def test_a_killed_write_of_any_file_is_removed_by_the_next(tmp_path):
    """Every file emu writes goes through the same atomic write as a trace:
    a writer killed in the middle (of a report's page, say) left its
    temporary beside the file for good; the next write of it removes it,
    and a write of it in progress is left alone."""
    out = tmp_path / "report.html"
    p = subprocess.Popen([sys.executable, "-c", _KILLED_WRITE, str(out)], stdout=subprocess.PIPE,
                         text=True, env=env())
    try:
        assert p.stdout.readline() == "writing\n"
        (live,) = [n for n in os.listdir(tmp_path) if n.endswith(".tmp")]
        write_text(out, "one")                      # beside a write in progress
        assert sorted(os.listdir(tmp_path)) == sorted([live, "report.html"])
    finally:
        p.kill()
        p.wait()
    write_text(out, "two")
    assert os.listdir(tmp_path) == ["report.html"] and out.read_text() == "two"


@pytest.mark.slow
@pytest.mark.parametrize("out", ["t.npz", "t.npy"])
def test_a_killed_import_leaves_nothing_after_the_next_run(traces, tmp_path, out):
    """SIGKILL an import in the middle of its input (a FIFO that stops
    delivering), then import again into the same folder."""
    fifo, outdir = tmp_path / "in.fifo", tmp_path / "out"
    os.mkfifo(fifo)
    outdir.mkdir()
    data = traces["lackey"].read_bytes()
    release = threading.Event()

    def write():
        with open(fifo, "wb") as f:
            f.write(data[: len(data) // 2])
            release.wait(60)

    t = threading.Thread(target=write, daemon=True)
    t.start()
    proc = subprocess.Popen(emu_cmd("trace", "import", "lackey", fifo, "-o", outdir / out),
                            env=env(), cwd=ROOT, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not [n for n in os.listdir(outdir) if n.endswith(".tmp")]:
        assert proc.poll() is None and time.monotonic() < deadline, "no temporary appeared"
        time.sleep(0.05)
    time.sleep(0.3)
    proc.kill()
    proc.wait()
    release.set()
    t.join(10)
    assert [n for n in os.listdir(outdir) if n.endswith(".tmp")], "the kill left nothing to clean"
    again = run(emu_cmd("trace", "import", "lackey", traces["lackey"], "-o", outdir / out),
                text=True)
    assert again.returncode == 0, again.stderr
    assert os.listdir(outdir) == [out]


# --------------------------------------------------------------------------
# the compiled lackey parser against the reference
# --------------------------------------------------------------------------


def _both_parsers(text: bytes):
    """(compiled result or None, reference result) for complete lines."""
    ref = trace_lackey._parse_lackey_block(text)
    cap = len(text) // trace_lackey._compiled.MIN_RECORD_BYTES + 1
    arrays = np.empty(cap, np.uint64), np.empty(cap, np.uint8), np.empty(cap, np.uint32)
    got = trace_lackey._compiled.parse_lines(text, *arrays)
    if got is None:
        return None, ref
    m, lines = got
    return (arrays[0][:m], arrays[1][:m], arrays[2][:m], lines), ref


def assert_parsers_agree(text: bytes) -> bool:
    """The compiled parser accepts exactly the blocks the reference accepts,
    with the same records and line count; True if the block was accepted."""
    got, ref = _both_parsers(text)
    if ref[4] is not None:
        assert got is None, (text[:200], ref[4])
        return False
    assert got is not None, text[:200]
    for x, y in zip(got[:3], ref[:3]):
        np.testing.assert_array_equal(x, y)
    assert got[3] == ref[3]
    return True


def test_the_compiled_lackey_parser_is_built():
    assert trace_lackey._compiled is not None, \
        "emu/workload/traces/_lackey.pyx is not built: pip install -e ."


EDGES = [
    b"I 0,1", b"I\t0,1", b" " * 64 + b"I 0,1", b" " * 65 + b"I 0,1", b"I" + b" " * 64 + b"0,1",
    b"I" + b" " * 65 + b"0,1", b"I 0,1" + b" " * 64, b"I 0,1" + b" " * 65, b"I 0,1\r",
    b"I 0,1 \r \t", b"I 0\r,1", b"\rI 0,1", b"I " + b"f" * 16 + b",1", b"I " + b"f" * 17 + b",1",
    b"I FFFFFFFFFFFFFFFF,65536", b"I 0,65537", b"I 0,0", b"I 0,0000000001", b"I 0,00000000001",
    b"I 0,9999999999", b"I 0,", b"I ,4", b"I 0x10,4", b"X 0,1", b"i 0,1", b"I0,1", b"I 0,1,2",
    b"I 0,1 x", b"==", b"=", b" ==1== x", b"==1== ,,, \xff", b"", b"   ", b"\t\r", b"\r",
    b"== " + b"x" * ((1 << 20) - 3), b"== " + b"x" * ((1 << 20) - 2),
    b" " * (1 << 20), b" " * ((1 << 20) + 1), b"\xff", b"I 0,1\x00",
]


@pytest.mark.skipif(trace_lackey._compiled is None, reason="the compiled parser is not built")
@pytest.mark.parametrize("line", EDGES, ids=range(len(EDGES)))
def test_compiled_parser_edges(line):
    assert_parsers_agree(line + b"\n")
    assert_parsers_agree(b"I 10,4\n L 20,8\n" + line + b"\n S 30,2\n")


@pytest.mark.skipif(trace_lackey._compiled is None, reason="the compiled parser is not built")
@settings(derandomize=True, max_examples=3000, deadline=None, database=None)
@given(st.lists(st.one_of(
    st.builds(lambda pre, letter, mid, addr, comma, size, post: pre + letter + mid + addr + comma + size + post,
              st.sampled_from([b"", b" ", b"\t", b"  ", b" " * 64, b" " * 65, b"\r"]),
              st.sampled_from([b"I", b"L", b"S", b"M", b"X", b"i", b"="]),
              st.sampled_from([b" ", b"  ", b"\t", b"", b" " * 64, b" " * 65, b"\r"]),
              st.text("0123456789abcdefABCDEFxg", min_size=0, max_size=18).map(str.encode),
              st.sampled_from([b",", b"", b",,", b" ,"]),
              st.text("0123456789 -", min_size=0, max_size=12).map(str.encode),
              st.sampled_from([b"", b" ", b"\r", b" x", b",", b" " * 64, b" " * 65, b"\t\r"])),
    st.sampled_from([b"==12== Lackey", b"==", b"=", b"", b"  ", b"\r", b"--1-- x", b"== ,"]),
    st.binary(max_size=20).filter(lambda b: b"\n" not in b),
), min_size=1, max_size=30))
def test_property_compiled_parser_matches_the_reference(lines):
    assert_parsers_agree(b"\n".join(lines) + b"\n")


# --------------------------------------------------------------------------
# bounded memory: peak RSS of emu tlb on a 30 M-record .npz
# --------------------------------------------------------------------------

BIG = 30_000_000


@pytest.fixture(scope="session")
def big_npz(tmp_path_factory) -> dict:
    """{'stored': path, 'deflated': path}: one 30 M-record trace (390 MB of
    arrays), written once, block by block, as both kinds of .npz."""
    d = tmp_path_factory.mktemp("big")
    paths = {"stored": d / "stored.npz", "deflated": d / "deflated.npz"}
    zips = {"stored": zipfile.ZipFile(paths["stored"], "w", zipfile.ZIP_STORED),
            "deflated": zipfile.ZipFile(paths["deflated"], "w", zipfile.ZIP_DEFLATED,
                                        compresslevel=1)}
    step = 1 << 22
    for name, dtype in (("addr", "<u8"), ("kind", "u1"), ("size", "<u4")):
        members = [z.open(name + ".npy", "w", force_zip64=True) for z in zips.values()]
        for m in members:
            np.lib.format.write_array_header_1_0(
                m, {"descr": dtype, "fortran_order": False, "shape": (BIG,)})
        for start in range(0, BIG, step):
            i = np.arange(start, min(BIG, start + step), dtype=np.uint64)
            block = {"addr": i << np.uint64(6), "kind": (i & np.uint64(3)).astype(np.uint8),
                     "size": np.full(len(i), 4, np.uint32)}[name]
            for m in members:
                m.write(block.data)
        for m in members:
            m.close()
    for z in zips.values():
        z.close()
    return paths


# NOTE: the peak RSS is read by the process itself at exit (VmHWM), not from
# getrusage's ru_maxrss of children, which carries the parent's own peak.
PEAK_RSS = ("import sys\n"
            "from emu.cli import main\n"
            "rc = main(['tlb', sys.argv[1], '--json'])\n"
            "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0]\n"
            "print(int(hwm.split()[1]), file=sys.stderr)\n"
            "sys.exit(rc)\n")


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs /proc")
@pytest.mark.parametrize("kind", ["stored", "deflated"])
def test_emu_tlb_on_a_30m_record_npz_stays_under_200_mb(big_npz, kind):
    path = big_npz[kind]
    proc = run([sys.executable, "-c", PEAK_RSS, str(path)], text=True)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["records"] == BIG and out["misses"] == BIG * 64 // 4096     # every record read
    peak_mb = int(proc.stderr.split()[-1]) / 1024
    arrays_mb = BIG * 13 / 2**20
    assert peak_mb < 200, f"peak RSS {peak_mb:.0f} MB reading a {kind} .npz of {arrays_mb:.0f} MB"


def _padded_npy(path, n: int, itemsize: int, claimed: int = 0) -> np.ndarray:
    """An .npy of ``n`` records of ``itemsize`` bytes, ``addr`` and ``kind``
    then padding no field names (its header claiming ``claimed`` records if
    given, the data short of them); the addresses it holds."""
    dt = np.dtype({"names": ["addr", "kind"], "formats": ["<u8", "u1"], "offsets": [0, 8],
                   "itemsize": itemsize})
    a = np.zeros(n, dt)
    a["addr"] = (np.arange(n, dtype=np.uint64) * 7 % 97) * 4096
    a["kind"] = np.arange(n) % 3
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": np.lib.format.dtype_to_descr(dt),
                                                 "fortran_order": False,
                                                 "shape": (claimed or n,)})
        f.write(a.tobytes())
    return a


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs /proc")
def test_records_padded_to_any_size_are_read_in_windows_of_bounded_memory(tmp_path):
    """A window was 262,144 records whatever their size: records padded to
    1 MiB made a window of the whole file (RSS 339 MB for a file of 315 MB), and
    a header claiming a million of them asked for 256 GiB (a traceback)."""
    big = tmp_path / "big.npy"
    _padded_npy(big, 150, 1 << 20)
    proc = run([sys.executable, "-c", PEAK_RSS, str(big)], text=True)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["records"] == 150
    assert int(proc.stderr.split()[-1]) / 1024 < 100        # 36 MB, against 190 before
    # the same counters as the addresses alone, from a file and from a pipe, windows
    # of 64 records cut into chunks of 7
    small, plain = tmp_path / "small.npy", tmp_path / "plain.npy"
    a = _padded_npy(small, 1000, 1 << 16)
    np.save(plain, np.ascontiguousarray(a["addr"]))
    want = counters(run(emu_cmd("tlb", plain, "--kinds", "all", "--json"), text=True).stdout)
    for src in (small, "-"):
        proc = run(emu_cmd("tlb", src, "--kinds", "all", "--chunk", "7", "--json"),
                   input=small.read_bytes() if src == "-" else None)
        assert proc.returncode == 0, proc.stderr
        assert counters(proc.stdout) == want
    assert want["compulsory_misses"] == 97 and want["misses"] == 1000    # 97 pages in turn
    claims = tmp_path / "claims.npy"
    _padded_npy(claims, 3, 1 << 20, claimed=1_000_000)
    proc = run(emu_cmd("tlb", "-"), input=claims.read_bytes())
    assert proc.returncode == 2 and proc.stderr.decode() == (
        "emu: error: -: truncated npy stream (the header declares 1,000,000 records, the data "
        "ends after 3)\n")


# --------------------------------------------------------------------------
# read_ahead: the next chunk read while this one is simulated
# --------------------------------------------------------------------------


def test_read_ahead_yields_in_order_on_another_thread_and_raises_in_turn():
    threads = []

    def items():
        for i in range(5):
            threads.append(threading.current_thread())
            yield i
        raise TraceError("t: bad record 5")

    got = []
    with pytest.raises(TraceError, match="bad record 5"):
        for x in read_ahead(items()):
            got.append(x)
    assert got == [0, 1, 2, 3, 4]
    assert threading.current_thread() not in threads
    assert len(set(threads)) == 1           # one helper for every item, not one each


def test_read_ahead_produces_one_item_ahead_and_no_more():
    produced = []

    def items():
        for i in range(10):
            produced.append(i)
            yield i

    it = read_ahead(items())
    assert next(it) == 0
    deadline = time.monotonic() + 5
    while len(produced) < 2 and time.monotonic() < deadline:
        time.sleep(0.001)
    time.sleep(0.05)                        # time enough to run further ahead, if it would
    assert produced == [0, 1]               # the item in use and the next: memory holds two
    assert list(it) == list(range(1, 10))


def test_an_interrupted_read_ahead_leaves_no_helper_behind():
    # interrupted while the helper works on an item (on a pipe, say), the
    # consumer does not wait for it, and the helper ends once it is done
    release = threading.Event()

    def items():
        yield 0
        release.wait(10)
        yield 1
        yield 2

    others = set(threading.enumerate())    # helpers of iterators other tests left unread
    it = read_ahead(items())
    assert next(it) == 0
    with pytest.raises(KeyboardInterrupt):
        it.throw(KeyboardInterrupt)         # returns at once: the helper still waits
    helpers = [t for t in threading.enumerate() if t.name == "emu-read-ahead" and t not in others]
    assert len(helpers) == 1
    assert any(t.is_alive() for t in helpers)
    release.set()
    for t in helpers:
        t.join(10)
    assert not any(t.is_alive() for t in helpers)


def test_read_ahead_closes_what_it_reads_when_closed():
    closed = threading.Event()

    def items():
        try:
            yield from range(100)
        finally:
            closed.set()

    it = read_ahead(items())
    assert next(it) == 0 and next(it) == 1
    it.close()
    assert closed.is_set()


def run_on_small_trace(code: str) -> subprocess.CompletedProcess:
    """``python -c code SMALL`` (SMALL: the small lackey trace); it must exit 0."""
    proc = run([sys.executable, "-c", code, str(ROOT / "tests" / "data" / "lackey_small.txt")],
               text=True)
    assert proc.returncode == 0, proc.stderr
    return proc


def test_emu_tlb_starts_without_the_machine_simpy_or_matplotlib():
    code = ("import sys\n"
            "from emu.cli import main\n"
            "assert main(['tlb', sys.argv[1], '--json']) == 0\n"
            "heavy = ('simpy', 'matplotlib', 'emu.machine', 'emu.kvm', 'emu.report', 'tqdm')\n"
            # the table fitting (emu.report.columns, in a package whose __init__
            # imports nothing) is the one part of emu.report emu tlb needs
            "light = ('emu.report', 'emu.report.columns')\n"
            "print(sorted(m for m in sys.modules if m.startswith(heavy) and m not in light),\n"
            "      file=sys.stderr)\n")
    proc = run_on_small_trace(code)
    assert proc.stderr.strip() == "[]"
    assert json.loads(proc.stdout)["records"] > 0


def test_emu_help_still_lists_every_command():
    from emu.cli import COMMANDS
    out = run(emu_cmd("--help"), text=True).stdout
    for name, _, _ in COMMANDS:
        assert name in out


def test_inexact_chunks_of_a_binary_trace_come_in_windows_whatever_the_chunk(traces, tmp_path):
    # a window still in the CPU's cache when its chunk is simulated: a chunk
    # larger than the window is cut to it (the records are the same, above)
    from emu.workload.traces.base import _WINDOW_RECORDS
    assert _WINDOW_RECORDS < 400_000
    with open_trace(traces["npy"]) as t:
        exact = [len(c) for c in t.chunks(1 << 20)]
        loose = [len(c) for c in t.chunks(1 << 20, exact=False)]
    assert exact == [400_000]
    assert loose == [_WINDOW_RECORDS, 400_000 - _WINDOW_RECORDS]
    npz = tmp_path / "t.npz"
    with open_trace(traces["npy"]) as t:
        c = next(t.chunks(1 << 30))
    np.savez(npz, addr=c.addr, kind=c.kind, size=c.size)
    with open_trace(npz) as t:
        assert [len(c) for c in t.chunks(1 << 20, exact=False)] == loose


def test_the_command_sets_its_objects_aside_at_exit_and_main_leaves_the_collector():
    import gc
    from emu.cli import main
    before = gc.get_freeze_count()
    assert main(["tlb", str(ROOT / "tests" / "data" / "lackey_small.txt"), "--json"]) == 0
    assert gc.get_freeze_count() == before and gc.isenabled()
    code = ("import gc, sys\n"
            "from emu.cli import run\n"
            "sys.argv = ['emu', 'tlb', sys.argv[1], '--json']\n"
            "assert gc.get_freeze_count() == 0\n"
            "rc = run()\n"
            "print(rc, gc.get_freeze_count() > 0, file=sys.stderr)\n")
    proc = run_on_small_trace(code)
    assert proc.stderr.split() == ["0", "True"]
    assert json.loads(proc.stdout)["records"] > 0


def test_emu_tlb_in_a_process_of_its_own_makes_the_collector_pass_over_nothing():
    # the imports (numpy's) and the loop over the trace make no garbage: a
    # pass of the collector over them is time lost, in the thread that sets
    # the command's pace.  Before, this run made 30 passes or more once
    # numpy's import had begun (a pass before, over the few objects of the
    # command line's start, depends on where Python's modules lie)
    code = ("import gc, sys\n"
            "from emu.cli import run\n"
            "passes = []\n"
            "gc.callbacks.append(lambda phase, info: phase == 'stop'\n"
            "                    and passes.append('numpy' in sys.modules))\n"
            "sys.argv = ['emu', 'tlb', sys.argv[1], '--json']\n"
            "rc = run()\n"
            "print(rc, sum(passes), 'numpy' in sys.modules, gc.isenabled(), file=sys.stderr)\n")
    proc = run_on_small_trace(code)
    assert proc.stderr.split() == ["0", "0", "True", "True"]
    assert json.loads(proc.stdout)["records"] > 0


@pytest.mark.parametrize("fmt", FORMATS)
def test_inexact_chunks_are_the_same_records_never_longer(traces, fmt):
    with open_trace(traces[fmt]) as t:
        exact = list(t.chunks(70_000))
        loose = list(t.chunks(70_000, exact=False))
    assert all(len(c) == 70_000 for c in exact[:-1])
    assert max(len(c) for c in loose) <= 70_000
    for name in ("addr", "kind", "size"):
        np.testing.assert_array_equal(np.concatenate([getattr(c, name) for c in exact]),
                                      np.concatenate([getattr(c, name) for c in loose]))

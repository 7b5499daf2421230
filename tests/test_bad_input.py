"""Bad input, fed on purpose.

The rule: a malformed trace, a wrong dtype, an impossible configuration, an
unknown strategy, a negative or huge size, an unknown TOML key or a wrong TOML
type ends in ONE line on stderr naming the problem and exit status 2 from the
CLI; never a traceback, never a crash in C; and nothing already written is
lost or corrupted.

1. The CLI, each case in its own process: a table of cases (``CASES``), each
   asserting exit status 2, exactly one line on stderr, no "Traceback",
   nothing on stdout and the words that name the problem.  Some cases also
   pre-create the files a failing command must not touch (``--out
   DIR/summary.json``, ``trace import -o out.npz``) and check them byte for
   byte afterwards, and that no temporary file (``.*.tmp*``) is left.  The
   collected cases run in parallel (a module-scoped fixture); each test then
   checks its own result.  To fit ~170 cases in a few seconds, a case's
   process is forked from a server that has already imported numpy, simpy
   and emu, and runs ``emu.cli`` as ``python -m emu.cli`` does;
   ``test_forked_runner_matches_python_m`` checks on a sample that a fresh
   ``[sys.executable, "-m", "emu.cli", ...]`` gives the same exit status and
   output, and ``EMU_BAD_INPUT_EXEC=1`` runs every case that way (slower).
2. Property-based fuzz, in-process: the trace readers (``open_trace``, every
   chunk of ``chunks(997)``, ``simulate_trace``) and the scenario loader
   (``load_scenario`` with overrides) on random bytes, mutated valid files and
   schema-shaped TOML documents with random wrong values.  Each example either
   succeeds or raises ``EmuError`` with a one-line message; any other
   exception is a bug.

A case marked ``xfail(strict=True)`` is a known bug (the reason says which):
once it is fixed the case passes, strict xfail turns that into a failure, and
the mark is to be removed.
"""

from __future__ import annotations

import datetime
import functools
import gzip
import io
import json
import os
import queue
import random
import subprocess
import sys
import tempfile
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from emu.params import (BACKENDS, CORES, DISTRIBUTIONS, GUEST_TLB_WALKS, HANDLERS,
                        MMIO_DEVICES, PFN_CACHE_POLICIES, PFN_SOURCES, STRATEGIES, TID_SCHEMES,
                        WORKLOAD_KINDS, Scenario, load_scenario, scenario_from_dict,
                        scenario_to_dict)
from emu.costs import COSTS_BY_NAME
from emu.errors import EmuError, TraceError
from emu.run.tlb import TLBSimConfig, simulate_trace
from emu.workload.traces import TraceChunk, open_trace

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"

# ==========================================================================
# 1. The CLI
# ==========================================================================

#: cases run at once
WORKERS = max(2, min(4, os.cpu_count() or 2))


@dataclass(frozen=True)
class Case:
    """One bad command line.

    ``build(dir)`` writes the case's input files under ``dir`` (its own
    directory) and returns the arguments after ``emu``.  ``expect``: words
    the one-line message must contain (case-insensitive).  ``check(dir)``:
    extra checks after the run (files that must be untouched).  ``bug``: the
    case is a known bug (xfail, strict).
    """

    id: str
    build: Callable[[Path], list]
    expect: tuple = ()
    check: Optional[Callable[[Path], None]] = None
    bug: Optional[str] = None
    timeout: float = 120.0
    slow: bool = False                  # started first by the pool


@dataclass(frozen=True)
class Run:
    returncode: Optional[int]          # None: killed after the case's timeout
    stdout: str
    stderr: str


def _run_cli(argv: list, timeout: float) -> Run:
    """``python -m emu.cli ARGV`` in a fresh interpreter."""
    try:
        p = subprocess.run([sys.executable, "-m", "emu.cli", *map(str, argv)], cwd=ROOT,
                           env=_cli_env(), stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=timeout)
    except subprocess.TimeoutExpired as e:
        def text(b):
            return (b or b"").decode("utf-8", "replace")
        return Run(None, text(e.stdout), text(e.stderr))
    return Run(p.returncode, p.stdout.decode("utf-8", "replace"),
               p.stderr.decode("utf-8", "replace"))


# A fresh ``python -m emu.cli`` spends most of its ~0.5 s importing numpy,
# simpy and emu; the table has ~170 cases.  So by default each case runs in
# its own process FORKED from a server that has imported those modules once
# and then runs ``emu.cli`` exactly as ``python -m emu.cli`` does
# (runpy.run_module(..., run_name="__main__"), stdin from /dev/null, stdout
# and stderr to files at the fd level, the exit status of the process; a
# crash in C kills only that child).  test_forked_runner_matches_python_m
# checks on a sample that both give the same exit status and output.  Set
# EMU_BAD_INPUT_EXEC=1 to run every case as a real `python -m emu.cli`.
EXEC_EACH = os.environ.get("EMU_BAD_INPUT_EXEC", "") not in ("", "0") or not hasattr(os, "fork")

_SERVER = r"""
import importlib, json, os, runpy, signal, sys, time, traceback
for name in ("numpy", "simpy", "emu", "emu.errors", "emu.params", "emu.costs", "emu.machine",
             "emu.run", "emu.report.text", "emu.workload.traces", "emu.stats"):
    try:
        importlib.import_module(name)
    except ImportError:
        pass
sys.modules.pop("emu.cli", None)       # runpy runs it afresh as __main__


def child(argv, out, err):
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    os.dup2(os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), 1)
    os.dup2(os.open(err, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), 2)
    sys.argv = ["emu", *argv]
    try:
        runpy.run_module("emu.cli", run_name="__main__", alter_sys=True)
        code = 0
    except SystemExit as e:            # what the interpreter does with it
        code = e.code
        if code is None:
            code = 0
        elif not isinstance(code, int):
            print(code, file=sys.stderr)
            code = 1
    except BaseException:
        traceback.print_exc()
        code = 1
    for f in (sys.stdout, sys.stderr):
        try:
            f.flush()
        except Exception:
            pass
    os._exit(code & 0xFF)


for line in sys.stdin:
    req = json.loads(line)
    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:
        child(req["argv"], req["out"], req["err"])
    deadline = time.monotonic() + req["timeout"]
    timed_out = False
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if not timed_out and time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            timed_out = True
        time.sleep(0.002)
    print(json.dumps({"status": os.waitstatus_to_exitcode(status), "timed_out": timed_out}),
          flush=True)
"""


def _cli_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + ([env["PYTHONPATH"]]
                                                       if env.get("PYTHONPATH") else []))
    for var in ("PYTHONWARNINGS", "PYTHONDEVMODE"):
        env.pop(var, None)
    return env


class ForkRunner:
    """One server process; ``run`` forks a child per command line."""

    def __init__(self, scratch: Path):
        env = _cli_env()
        env["OPENBLAS_NUM_THREADS"] = "1"          # no BLAS threads across fork()
        self.scratch = scratch
        self.proc = subprocess.Popen([sys.executable, "-c", _SERVER], cwd=ROOT, env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def run(self, argv: list, timeout: float, name: str) -> Run:
        out, err = self.scratch / f"{name}.stdout", self.scratch / f"{name}.stderr"
        self.proc.stdin.write(json.dumps({"argv": [str(a) for a in argv], "timeout": timeout,
                                          "out": str(out), "err": str(err)}) + "\n")
        self.proc.stdin.flush()
        reply = self.proc.stdout.readline()
        assert reply, "the CLI fork server died"
        reply = json.loads(reply)
        text = [p.read_bytes().decode("utf-8", "replace") for p in (out, err)]
        return Run(None if reply["timed_out"] else reply["status"], *text)

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def run_cases(case_ids: list, base: Path, exec_each: bool = EXEC_EACH,
              workers: int = WORKERS) -> dict:
    """Build and run cases in parallel; {case id: (Run, its directory)}."""
    scratch = base / ".io"
    scratch.mkdir(parents=True, exist_ok=True)
    runners: queue.Queue = queue.Queue()
    if not exec_each:
        for _ in range(workers):
            runners.put(ForkRunner(scratch))

    def job(case_id):
        case = CASES_BY_ID[case_id]
        d = base / case_id
        d.mkdir()
        argv = case.build(d)
        if exec_each:
            return case_id, (_run_cli(argv, case.timeout), d)
        runner = runners.get()
        try:
            return case_id, (runner.run(argv, case.timeout, case_id), d)
        finally:
            runners.put(runner)

    # the slow cases first, so that they do not finish last on their own
    case_ids = sorted(case_ids, key=lambda c: not CASES_BY_ID[c].slow)
    try:
        with ThreadPoolExecutor(workers) as pool:
            return dict(pool.map(job, case_ids))
    finally:
        while not runners.empty():
            runners.get().close()


def assert_one_line_error(run: Run, expect=()) -> str:
    """Exit status 2, one line on stderr naming the problem, no traceback."""
    err = run.stderr
    assert run.returncode is not None, f"still running after its timeout; stderr: {err[-1500:]}"
    assert "Traceback" not in err, err[-3000:]
    assert run.returncode == 2, f"exit status {run.returncode}, stderr: {err[-3000:]}"
    lines = err.splitlines()
    assert len(lines) == 1 and err.endswith("\n"), f"expected one line on stderr, got {err!r}"
    msg = lines[0]
    assert msg.startswith("emu"), msg
    for word in expect:
        assert word.lower() in msg.lower(), f"{word!r} not in the message {msg!r}"
    assert run.stdout == "", f"a failing command printed on stdout: {run.stdout[:500]!r}"
    return msg


# -- inputs ----------------------------------------------------------------

N = 1000
ADDR = (np.arange(N, dtype=np.uint64) * 4096 + 0x1000_0000).astype(np.uint64)
KIND = (np.arange(N) % 4).astype(np.uint8)
SIZE = np.full(N, 4, np.uint32)
GOOD_LACKEY = "I  0401ab70,3\n S 1fff000758,8\n"


def _write(path: Path, data) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return str(path)


def npz_bytes(compress: bool = False, **arrays) -> bytes:
    buf = io.BytesIO()
    (np.savez_compressed if compress else np.savez)(buf, **arrays)
    return buf.getvalue()


def npy_bytes(arr, version=None) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.asanyarray(arr), version=version, allow_pickle=True)
    return buf.getvalue()


def npy_header(header: dict, version=(1, 0)) -> bytes:
    """An npy header (magic, version, length, dict text), padded to 64 bytes."""
    text = repr(header).encode("latin1" if version < (3, 0) else "utf8")
    size_len = 2 if version == (1, 0) else 4
    pad = -(6 + 2 + size_len + len(text) + 1) % 64
    text += b" " * pad + b"\n"
    return b"\x93NUMPY" + bytes(version) + len(text).to_bytes(size_len, "little") + text


def structured(n=N, fields=(("addr", "<u8"), ("kind", "u1"), ("size", "<u4"))):
    rec = np.zeros(n, list(fields))
    for name, _ in fields:
        rec[name] = {"addr": ADDR, "kind": KIND, "size": SIZE}.get(name, np.zeros(N))[:n]
    return rec


@functools.lru_cache(maxsize=None)
def good_npz(compress: bool = True) -> bytes:
    return npz_bytes(compress, addr=ADDR, kind=KIND, size=SIZE)


def _member_data_offset(data: bytes, name: str) -> tuple:
    """(offset, length) of a zip member's (compressed) data."""
    info = zipfile.ZipFile(io.BytesIO(data)).getinfo(name)
    h = info.header_offset
    name_len = int.from_bytes(data[h + 26:h + 28], "little")
    extra_len = int.from_bytes(data[h + 28:h + 30], "little")
    return h + 30 + name_len + extra_len, info.compress_size


def flipped(data: bytes, pos: int) -> bytes:
    b = bytearray(data)
    b[pos] ^= 0xFF
    return bytes(b)


def npz_flip_in_member(compress: bool, name: str) -> bytes:
    data = good_npz(compress)
    off, length = _member_data_offset(data, name)
    return flipped(data, off + length // 2)


def npz_cut(cut) -> bytes:
    data = good_npz(True)
    return data[:cut(len(data))]


def npz_renamed_member() -> bytes:
    data = good_npz(True)
    i = data.rfind(b"addr.npy")                  # the central directory's copy
    return data[:i] + b"addx.npy" + data[i + 8:]


def npz_broken_eocd() -> bytes:
    data = good_npz(True)
    i = data.rfind(b"PK\x05\x06")
    return data[:i] + b"PK\x05\x07" + data[i + 4:]


def npz_central_dir_edit(offset: int, value: int) -> bytes:
    """Set one byte of the first central directory record."""
    b = bytearray(good_npz(True))
    b[b.find(b"PK\x01\x02") + offset] = value
    return bytes(b)


def npz_name_not_utf8() -> bytes:
    """The first central directory name flagged UTF-8 (flag bit 11) but not UTF-8."""
    b = bytearray(good_npz(True))
    i = b.find(b"PK\x01\x02")
    b[i + 9] |= 0x08
    b[i + 46] = 0xFF
    return bytes(b)


def npy_lying_header() -> bytes:
    """Header says 2N records, the file holds N."""
    rec = structured()
    return npy_header({"descr": np.lib.format.dtype_to_descr(rec.dtype),
                       "fortran_order": False, "shape": (2 * N,)}) + rec.tobytes()


def lackey_with(bad: bytes, good_after: bool = True) -> bytes:
    good = GOOD_LACKEY.encode()
    return good + bad + (b"\n" + good if good_after else b"")


def big_lackey(records: int, tail: bytes = b"") -> bytes:
    """``records`` valid lines (several blocks of text), then ``tail``."""
    addr = (np.arange(records, dtype=np.uint64) * 64 + 0x1000_0000) % (1 << 40)
    hexes = np.char.mod("%x", addr).astype(bytes)
    lines = np.char.add(np.char.add(b" L ", hexes), b",4\n")
    return b"".join(lines.tolist()) + tail


def gz_lackey() -> bytes:
    return gzip.compress(big_lackey(5000), mtime=0)


# -- builders ----------------------------------------------------------------


def tlb(name: str, data: Callable[[], bytes], *opts) -> Callable[[Path], list]:
    return lambda d: ["tlb", _write(d / name, data()), *opts]


def tlb_opts(*opts) -> Callable[[Path], list]:
    return lambda d: ["tlb", _write(d / "t.txt", GOOD_LACKEY), *opts]


def imp(name: str, data: Callable[[], bytes]) -> Callable[[Path], list]:
    return lambda d: ["trace", "import", "lackey", _write(d / name, data()),
                      "-o", str(d / "out.npz")]


def toml(text, *extra, cmd: str = "run") -> Callable[[Path], list]:
    def build(d):
        t = text(d) if callable(text) else text
        return [cmd, _write(d / "s.toml", t), *extra]
    return build


def vary(spec: str) -> Callable[[Path], list]:
    return lambda d: ["compare", _write(d / "s.toml", "duration_ms = 0.05\n"), "--vary", spec]


def trace_workload(name: str, data: Callable[[], bytes]) -> Callable[[Path], str]:
    def text(d):
        p = _write(d / name, data())
        return ("duration_ms = 0.05\n[[vm]]\n[[vm.process]]\n"
                f"workload = {{ kind = 'trace', path = '{p}' }}\n")
    return text


# -- output protection ---------------------------------------------------------

SENTINEL_SUMMARY = b'{\n  "sentinel": "results of an earlier run"\n}\n'
SENTINEL_CSV = b"sentinel,earlier\n1,2\n"


#: output directory -> its snapshot before the command ran
_BEFORE: dict = {}


def _snapshot(directory: Path) -> dict:
    """{relative path: bytes (None for a directory)}, hidden files included."""
    out = {}
    for p in sorted(directory.rglob("*")):
        rel = str(p.relative_to(directory))
        out[rel] = None if p.is_dir() else p.read_bytes()
    return out


def with_results(build: Callable[[Path], list], out_flag: str = "--out",
                 files: Optional[dict] = None) -> Callable[[Path], list]:
    """Pre-create DIR/out with earlier results; pass --out DIR/out."""
    files = files if files is not None else {"summary.json": SENTINEL_SUMMARY,
                                             "exits.csv": SENTINEL_CSV}

    def wrapped(d):
        out = d / "out"
        out.mkdir()
        for name, data in files.items():
            if data is None:
                (out / name).mkdir()
            else:
                _write(out / name, data)
        _BEFORE[out] = _snapshot(out)
        return build(d) + [out_flag, str(out)]
    return wrapped


def results_untouched(d: Path) -> None:
    out = d / "out"
    before, after = _BEFORE[out], _snapshot(out)
    leftovers = [n for n in after if Path(n).name.startswith(".") and ".tmp" in n]
    assert not leftovers, f"temporary files left behind: {leftovers}"
    assert after == before, (f"the output directory changed: before {sorted(before)}, "
                             f"after {sorted(after)}")


def with_import_target(data: Callable[[], bytes]) -> Callable[[Path], list]:
    """trace import over a pre-existing out/t.npz (an earlier import)."""
    def build(d):
        out = d / "out"
        _write(out / "t.npz", good_npz(True))
        _write(out / "notes.txt", b"keep me\n")
        _BEFORE[out] = _snapshot(out)
        return ["trace", "import", "lackey", _write(d / "in.txt", data()),
                "-o", str(out / "t.npz")]
    return build


# -- the table ------------------------------------------------------------------


CASES = [
    # ---- lackey text: malformed lines of several kinds (line 3 of t.txt) -----------
    Case("lackey-unknown-letter", tlb("t.txt", lambda: lackey_with(b"X  0401ab70,3")),
         ("t.txt:3:", "malformed lackey line", "'X  0401ab70,3'")),
    Case("lackey-lowercase-letter", tlb("t.txt", lambda: lackey_with(b"i  0401ab70,3")),
         ("t.txt:3:", "malformed lackey line")),
    Case("lackey-missing-size", tlb("t.txt", lambda: lackey_with(b"I  0401ab70")),
         ("t.txt:3:", "malformed lackey line", "'I  0401ab70'")),
    Case("lackey-empty-size", tlb("t.txt", lambda: lackey_with(b"I  0401ab70,")),
         ("t.txt:3:", "malformed lackey line")),
    Case("lackey-non-hex-address", tlb("t.txt", lambda: lackey_with(b"I  zz01ab70,3")),
         ("t.txt:3:", "malformed lackey line", "zz01ab70")),
    Case("lackey-0x-address", tlb("t.txt", lambda: lackey_with(b" L 0x10,4")),
         ("t.txt:3:", "malformed lackey line")),
    Case("lackey-17-digit-address",
         tlb("t.txt", lambda: lackey_with(b"I  11112222333344445,4")),
         ("t.txt:3:", "malformed lackey line")),
    Case("lackey-extra-field", tlb("t.txt", lambda: lackey_with(b"I  0401ab70,3,4")),
         ("t.txt:3:", "malformed lackey line")),
    Case("lackey-no-space-after-letter", tlb("t.txt", lambda: lackey_with(b"I0401ab70,3")),
         ("t.txt:3:", "malformed lackey line")),
    Case("lackey-binary-garbage", tlb("t.txt", lambda: lackey_with(b"\xff\xfe\x00\x01")),
         ("t.txt:3:", "malformed lackey line", "\\xff")),
    Case("lackey-negative-size", tlb("t.txt", lambda: lackey_with(b"I  0401ab70,-3")),
         ("t.txt:3:", "malformed lackey line")),
    Case("lackey-size-0", tlb("t.txt", lambda: lackey_with(b" S 10,0")),
         ("t.txt:3:", "size 0 out of range 1..65536")),
    Case("lackey-size-70000", tlb("t.txt", lambda: lackey_with(b" S 10,70000")),
         ("t.txt:3:", "size 70000 out of range")),
    Case("lackey-size-2**31", tlb("t.txt", lambda: lackey_with(b" S 10,2147483648")),
         ("t.txt:3:", "size 2147483648 out of range")),
    Case("lackey-size-11-digits", tlb("t.txt", lambda: lackey_with(b" S 10,99999999999")),
         ("t.txt:3:", "malformed lackey line")),
    Case("lackey-overlong-line-no-newline",
         tlb("t.txt", lambda: lackey_with(b"I  " + b"0" * 20000, good_after=False)),
         ("t.txt:3:", "malformed lackey line")),
    Case("lackey-error-deep-in-the-file",
         tlb("t.txt", lambda: big_lackey(300_000, b" Q 10,4\n")),
         ("t.txt:300001:", "malformed lackey line", "Q 10,4"), slow=True),
    Case("lackey-empty-file", tlb("t.txt", lambda: b""), ("t.txt", "empty")),
    Case("lackey-gzip-truncated", tlb("t.gz", lambda: gz_lackey()[:len(gz_lackey()) // 2]),
         ("t.gz", "corrupt or truncated gzip")),
    Case("lackey-gzip-bad-crc", tlb("t.gz", lambda: flipped(gz_lackey(), len(gz_lackey()) - 7)),
         ("t.gz", "corrupt or truncated gzip", "crc")),
    Case("lackey-gzip-trailing-garbage", tlb("t.gz", lambda: gz_lackey() + b"garbage"),
         ("t.gz", "corrupt or truncated gzip")),
    Case("lackey-import-malformed", imp("t.txt", lambda: lackey_with(b"L 10;4")),
         ("t.txt:3:", "malformed lackey line")),
    Case("import-of-an-npz", imp("t.npz", lambda: good_npz(True)),
         ("t.npz", "not a lackey text trace")),
    # ---- .npz: truncated at several offsets, corrupted bytes --------------------------
    *[Case(f"npz-cut-{label}", tlb("t.npz", functools.partial(npz_cut, cut)),
           ("t.npz", "not a valid npz file"))
      for label, cut in (("4", lambda n: 4), ("30", lambda n: 30), ("half", lambda n: n // 2),
                         ("before-eocd", lambda n: n - 22), ("last-byte", lambda n: n - 1))],
    Case("npz-cut-3-no-signature", tlb("t.npz", lambda: good_npz(True)[:3]),
         ("t.npz", "not a valid npz file", "no zip signature")),
    Case("npz-flip-deflated-addr", tlb("t.npz", lambda: npz_flip_in_member(True, "addr.npy")),
         ("t.npz", "cannot read array 'addr'", "corrupt")),
    Case("npz-flip-deflated-size", tlb("t.npz", lambda: npz_flip_in_member(True, "size.npy")),
         ("t.npz", "cannot read array 'size'", "corrupt")),
    Case("npz-flip-stored-addr", tlb("t.npz", lambda: npz_flip_in_member(False, "addr.npy")),
         ("t.npz", "cannot read array 'addr'", "crc")),
    Case("npz-flip-member-name", tlb("t.npz", npz_renamed_member),
         ("t.npz", "no array 'addr'", "addx")),
    Case("npz-flip-end-of-central-directory", tlb("t.npz", npz_broken_eocd),
         ("t.npz", "not a valid npz file")),
    Case("npz-zip-version-12.8", tlb("t.npz", lambda: npz_central_dir_edit(6, 0x80)),
         ("t.npz", "npz")),
    Case("npz-name-not-utf8", tlb("t.npz", npz_name_not_utf8),
         ("t.npz", "npz")),
    # ---- .npy: truncated (the header promises more than the file holds) ----------------
    Case("npy-cut-in-magic", tlb("t.npy", lambda: npy_bytes(structured())[:5]),
         ("t.npy", "not a valid npy file")),
    Case("npy-cut-in-header", tlb("t.npy", lambda: npy_bytes(structured())[:60]),
         ("t.npy", "truncated or corrupt npy")),
    Case("npy-cut-in-data", tlb("t.npy", lambda: npy_bytes(structured())[:128 + 13 * 500]),
         ("t.npy", "truncated")),
    Case("npy-header-says-2x-records", tlb("t.npy", npy_lying_header), ("t.npy", "truncated")),
    Case("npy-header-shape-2**62", tlb("t.npy", lambda: npy_header(
        {"descr": "<u8", "fortran_order": False, "shape": (2**62,)}) + b"\0" * 64),
        ("t.npy", "truncated or corrupt npy")),
    Case("npy-header-negative-shape", tlb("t.npy", lambda: npy_header(
        {"descr": "<u8", "fortran_order": False, "shape": (-5,)}) + b"\0" * 64),
        ("t.npy", "corrupt npy")),
    Case("npy-header-bad-descr", tlb("t.npy", lambda: npy_header(
        {"descr": "zz", "fortran_order": False, "shape": (8,)}) + b"\0" * 64),
        ("t.npy", "corrupt npy", "descr")),
    # ---- wrong dtypes --------------------------------------------------------------
    Case("npz-float-addr", tlb("t.npz", lambda: npz_bytes(addr=ADDR.astype(float))),
         ("t.npz", "'addr'", "float64", "expected uint64")),
    Case("npz-int8-kind-negative", tlb("t.npz", lambda: npz_bytes(
        addr=ADDR, kind=np.where(np.arange(N) == 7, -1, 1).astype(np.int8))),
        ("t.npz", "'kind'", "value -1 at record 7", "0..3")),
    Case("npz-float-size", tlb("t.npz", lambda: npz_bytes(addr=ADDR, size=SIZE.astype(float))),
         ("t.npz", "'size'", "float64", "expected uint32")),
    Case("npz-bool-kind", tlb("t.npz", lambda: npz_bytes(addr=ADDR, kind=np.ones(N, bool))),
         ("t.npz", "'kind'", "bool")),
    Case("npz-object-addr", tlb("t.npz", lambda: npz_bytes(
        addr=np.array([1, "x", None] * 3, dtype=object))),
        ("t.npz", "'addr'", "object")),
    Case("npz-object-kind", tlb("t.npz", lambda: npz_bytes(
        addr=ADDR[:3], kind=np.array([1, 2, 3], dtype=object))),
        ("t.npz", "'kind'", "object")),
    Case("npz-2d-addr", tlb("t.npz", lambda: npz_bytes(addr=ADDR.reshape(10, -1))),
         ("t.npz", "'addr' must be 1-D", "(10, 100)")),
    Case("npz-2d-size", tlb("t.npz", lambda: npz_bytes(addr=ADDR, size=SIZE.reshape(-1, 2))),
         ("t.npz", "'size' must be 1-D")),
    Case("npz-unequal-lengths", tlb("t.npz", lambda: npz_bytes(addr=ADDR, kind=KIND[:5])),
         ("t.npz", "unequal lengths")),
    Case("npy-structured-float-addr", tlb("t.npy", lambda: npy_bytes(
        structured(fields=(("addr", "<f8"), ("kind", "u1"))))),
        ("t.npy", "field 'addr'", "float64")),
    Case("npy-structured-float-kind", tlb("t.npy", lambda: npy_bytes(
        structured(fields=(("addr", "<u8"), ("kind", "<f4"))))),
        ("t.npy", "field 'kind'", "float32")),
    Case("npy-structured-float-size", tlb("t.npy", lambda: npy_bytes(
        structured(fields=(("addr", "<u8"), ("kind", "u1"), ("size", "<f8"))))),
        ("t.npy", "field 'size'", "float64")),
    Case("npy-structured-object-kind", tlb("t.npy", lambda: npy_bytes(
        np.zeros(5, [("addr", "<u8"), ("kind", "O")]))),
        ("t.npy", "field 'kind'", "object")),
    Case("npy-structured-string-addr", tlb("t.npy", lambda: npy_bytes(
        np.zeros(5, [("addr", "S8")]))), ("t.npy", "field 'addr'", "S8")),
    Case("npy-structured-unknown-field", tlb("t.npy", lambda: npy_bytes(
        np.zeros(5, [("addr", "<u8"), ("len", "<u4")]))), ("t.npy", "unexpected field 'len'")),
    Case("npy-plain-float", tlb("t.npy", lambda: npy_bytes(ADDR.astype(np.float32))),
         ("t.npy", "float32", "expected uint64")),
    Case("npy-plain-object", tlb("t.npy", lambda: npy_bytes(np.array([1, 2], dtype=object))),
         ("t.npy", "object")),
    Case("npy-plain-2d", tlb("t.npy", lambda: npy_bytes(ADDR.reshape(-1, 4))),
         ("t.npy", "must be 1-D", "(250, 4)")),
    # ---- negative and huge values in traces --------------------------------------------
    Case("npz-size-int32-minus-1", tlb("t.npz", lambda: npz_bytes(
        addr=ADDR, size=np.where(np.arange(N) == 5, -1, 4).astype(np.int32))),
        ("t.npz", "'size'", "value -1 at record 5", "1..65536")),
    Case("npz-size-2**31", tlb("t.npz", lambda: npz_bytes(
        addr=ADDR, size=np.full(N, 2**31, np.uint32))),
        ("t.npz", "'size'", "2147483648", "1..65536")),
    Case("npz-size-int64-2**40", tlb("t.npz", lambda: npz_bytes(
        addr=ADDR, size=np.full(N, 2**40, np.int64))), ("t.npz", "'size'", "1099511627776")),
    Case("npz-size-zero", tlb("t.npz", lambda: npz_bytes(addr=ADDR, size=np.zeros(N, np.uint32))),
         ("t.npz", "'size'", "value 0")),
    Case("npz-negative-addr", tlb("t.npz", lambda: npz_bytes(
        addr=np.where(np.arange(N) == 9, -4096, 4096).astype(np.int64))),
        ("t.npz", "'addr'", "negative value -4096 at record 9")),
    Case("npz-kind-7", tlb("t.npz", lambda: npz_bytes(addr=ADDR, kind=np.full(N, 7, np.uint8))),
         ("t.npz", "'kind'", "value 7")),
    Case("npy-structured-size-minus-1", tlb("t.npy", lambda: npy_bytes(np.array(
        [(4096, 1, -1)] * 4, [("addr", "<u8"), ("kind", "u1"), ("size", "<i4")]))),
        ("t.npy", "field 'size'", "value -1")),
    # ---- emu tlb: negative, huge or impossible options ---------------------------------
    Case("tlb-entries-negative", tlb_opts("--entries", "-1"), ("entries", "-1")),
    Case("tlb-entries-huge", tlb_opts("--entries", str(2**40)), ("entries", "at most")),
    Case("tlb-entries-not-a-number", tlb_opts("--entries", "sixty"), ("--entries", "sixty")),
    Case("tlb-ways-not-dividing", tlb_opts("--ways", "3"), ("3-way",)),
    Case("tlb-page-size-3", tlb_opts("--page-size", "3"), ("page size 3",)),
    Case("tlb-page-size-2**64", tlb_opts("--page-size", str(2**64)), ("page size",)),
    Case("tlb-chunk-0", tlb_opts("--chunk", "0"), ("chunk", "0")),
    Case("tlb-chunk-huge", tlb_opts("--chunk", str(2**40)), ("chunk",)),
    Case("tlb-unknown-policy", tlb_opts("--policy", "lfu"), ("policy", "lfu")),
    Case("tlb-unknown-kinds", tlb_opts("--kinds", "stores"), ("kinds", "stores")),
    Case("tlb-seed-negative", tlb_opts("--seed", "-1"), ("seed",)),
    Case("tlb-unknown-backend", tlb_opts("--backend", "fortran"), ("backend", "fortran")),
    Case("tlb-missing-file", lambda d: ["tlb", str(d / "missing.npz")],
         ("missing.npz", "no such file")),
    # ---- TOML: unknown keys at several depths -------------------------------------
    Case("toml-unknown-top-key", toml("stratgy = 'shadow'\n"), ("unknown key 'stratgy'",)),
    Case("toml-unknown-kvm-key", toml("[kvm]\nstratgy = 'shadow'\n"),
         ("unknown key 'kvm.stratgy'", "kvm.strategy")),
    Case("toml-unknown-machine-subtable", toml("[machine.extra]\nx = 1\n"),
         ("unknown key 'machine.extra'",)),
    Case("toml-unknown-sim-key", toml("[sim]\nchunks = 4\n"), ("unknown key 'sim.chunks'",)),
    Case("toml-unknown-vm-key", toml("[[vm]]\nvcpu = 2\n"), ("unknown key 'vm.0.vcpu'",)),
    Case("toml-unknown-process-key", toml("[[vm]]\n[[vm]]\n[[vm.process]]\ncont = 2\n"),
         ("unknown key 'vm.1.process.0.cont'",)),
    Case("toml-unknown-workload-key", toml(
        "[[vm]]\n[[vm.process]]\nworkload = { kind = 'working-set', pagez = 3 }\n"),
        ("unknown key 'vm.0.process.0.workload.pagez'",)),
    Case("toml-workload-key-of-another-kind", toml(
        "[[vm]]\n[[vm.process]]\nworkload = { kind = 'working-set', stride = 64 }\n"),
        ("unknown key 'vm.0.process.0.workload.stride'", "sweep")),
    Case("toml-unknown-host-task-workload-key", toml(
        "[[host_task]]\nworkload = { kind = 'sweep', pages = 4, x = { y = 1 } }\n"),
        ("unknown key 'host_task.0.workload.x'",)),
    Case("toml-unknown-cost", toml("[costs]\ntlbwee = 3\n"), ("tlbwee",)),
    # ---- TOML: wrong types --------------------------------------------------------
    Case("toml-seed-string", toml("seed = '1'\n"), ("seed", "expected an integer", "'1'")),
    Case("toml-seed-float", toml("seed = 1.0\n"), ("seed", "expected an integer", "1.0")),
    Case("toml-seed-bool", toml("seed = true\n"), ("seed", "expected an integer", "true")),
    Case("toml-seed-date", toml("seed = 1979-05-27\n"), ("seed", "date")),
    Case("toml-duration-string", toml("duration_ms = '20'\n"), ("duration_ms", "number")),
    Case("toml-duration-inf", toml("duration_ms = inf\n"), ("duration_ms", "finite")),
    Case("toml-duration-nan", toml("duration_ms = nan\n"), ("duration_ms", "finite")),
    Case("toml-warmup-past-end", toml("duration_ms = 5\n[sim]\nwarmup_ms = 5\n"),
         ("sim.warmup_ms", "before the run does")),
    Case("toml-vcpu-cpus-missing-cpu", toml("[[vm]]\nvcpu_cpus = [1]\n"),
         ("vm.0.vcpu_cpus.0", "CPU 1 does not exist")),
    Case("toml-vcpu-cpus-too-short", toml("[[vm]]\nvcpus = 2\nvcpu_cpus = [0]\n"),
         ("vm.0.vcpu_cpus", "list of 2")),
    Case("toml-vcpu-cpus-string", toml("[[vm]]\nvcpu_cpus = ['0']\n"),
         ("vm.0.vcpu_cpus.0", "'0'")),
    Case("toml-qemu-cpu-missing-cpu", toml("[machine]\ncpus = 2\n[[vm]]\nqemu_cpu = 2\n"),
         ("vm.0.qemu_cpu", "CPU 2 does not exist")),
    Case("toml-warmup-negative", toml("[sim]\nwarmup_ms = -1\n"), ("sim.warmup_ms", "-1")),
    Case("toml-machine-not-a-table", toml("machine = [1, 2]\n"), ("machine", "table")),
    Case("toml-cpus-float", toml("[machine]\ncpus = 1.5\n"), ("machine.cpus", "1.5")),
    Case("toml-micro-tlb-int", toml("[machine]\nmicro_tlb = 1\n"),
         ("machine.micro_tlb", "true or false")),
    Case("toml-strategy-int", toml("[kvm]\nstrategy = 3\n"), ("kvm.strategy", "got 3")),
    Case("toml-vm-table-not-array", toml("[vm]\nvcpus = 1\n"), ("vm", "array of tables")),
    Case("toml-vm-item-not-table", toml("vm = [1]\n"), ("vm.0", "table")),
    Case("toml-workload-not-table", toml("[[vm]]\n[[vm.process]]\nworkload = 'ws'\n"),
         ("vm.0.process.0.workload", "table")),
    Case("toml-cost-string", toml("[costs]\ntlbwe = 'x'\n"), ("costs.tlbwe", "'x'")),
    Case("toml-run-us-string", toml("[[host_task]]\nrun_us = '200'\n"),
         ("host_task.0.run_us", "number")),
    Case("toml-chunk-bool", toml("[sim]\nchunk = true\n"), ("sim.chunk", "true")),
    # ---- TOML: negative and huge sizes ----------------------------------------------
    Case("toml-seed-negative", toml("seed = -1\n"), ("seed", "-1")),
    Case("toml-cpus-0", toml("[machine]\ncpus = 0\n"), ("machine.cpus", "positive")),
    Case("toml-cpus-int64-max", toml("[machine]\ncpus = 9223372036854775807\n"),
         ("machine.cpus", "1..64")),
    Case("toml-memory-huge", toml("[[vm]]\nmemory_mb = 100000\n"), ("vm.0.memory_mb", "100000")),
    Case("toml-pages-negative", toml("[[vm]]\n[[vm.process]]\nworkload = { pages = -3 }\n"),
         ("vm.0.process.0.workload.pages", "-3")),
    Case("toml-pages-exceed-memory", toml(
        "[[vm]]\nmemory_mb = 16\n[[vm.process]]\nworkload = { pages = 100000 }\n"),
        ("vm.0.memory_mb", "pages")),
    Case("toml-cost-negative", toml("[costs]\ntlbwe = -1\n"), ("costs.tlbwe", "-1")),
    Case("toml-cost-huge", toml("[costs]\ntlbwe = 9223372036854775807\n"),
         ("costs.tlbwe", "0..1,099,511,627,776 (2**40)")),
    Case("toml-pfn-cache-huge", toml("[kvm]\npfn_cache_entries = 4294967296\n"),
         ("kvm.pfn_cache_entries",)),
    Case("toml-duration-huge", toml("duration_ms = 1e300\n"), ("duration_ms",), timeout=8, slow=True),
    Case("toml-cost-clock-zero", toml("duration_ms = 0.05\n[costs]\nclock_mhz = 0\n"),
         ("clock_mhz",)),
    Case("toml-cost-positive-zero", toml("duration_ms = 0.05\n[costs]\nsched_latency_us = 0\n"),
         ("sched_latency_us", "positive")),
    # ---- unknown strategy and impossible combinations ----------------------------------
    Case("toml-unknown-strategy", toml("[kvm]\nstrategy = 'shadw'\n"),
         ("kvm.strategy", "'shadw'", "did you mean 'shadow'")),
    Case("toml-shadow-on-hardware-index", toml(
        "[machine]\ncore = 'e500'\ntlb_index = 'hardware'\n[kvm]\nstrategy = 'shadow'\n"),
        ("kvm.strategy", "'shadow'", "machine.tlb_index = 'hardware'", "hardware picks")),
    Case("toml-shadow-modified-on-hardware-index-440", toml(
        "[machine]\ntlb_index = 'hardware'\n[kvm]\nstrategy = 'shadow-modified'\n"),
        ("'shadow-modified'", "hardware", "direct, direct-noflush")),
    Case("toml-e500-version-on-440", toml("[machine]\ne500_version = 'v1'\n"),
         ("machine.e500_version", "'440'")),
    Case("toml-e500-version-unknown", toml("[machine]\ncore = 'e500'\ne500_version = 'v3'\n"),
         ("machine.e500_version", "v3")),
    Case("toml-tlb-index-unknown", toml("[machine]\ntlb_index = 'random'\n"),
         ("machine.tlb_index", "random")),
    Case("toml-save-on-switch-on-e500", toml(
        "[machine]\ncore = 'e500'\n[kvm]\nstrategy = 'direct-save-on-switch'\n"),
        ("'direct-save-on-switch'", "e500")),
    Case("toml-e500-shadow-ids-on-440", toml("[kvm]\nstrategy = 'e500-shadow-ids'\n"),
         ("'e500-shadow-ids'", "machine.core")),
    Case("toml-unknown-tid-scheme", toml("[kvm]\ntid_scheme = 'tid-01'\n"),
         ("kvm.tid_scheme", "'tid-01'", "'guest-tid', 'swap-pid', 'tid01'")),
    Case("toml-tid-scheme-never-ran", toml(
        "[kvm]\nstrategy = 'direct'\ntid_scheme = 'guest-tid'\n"),
        ("kvm.tid_scheme: 'guest-tid' never ran with kvm.strategy 'direct' (7924bd41 is tid01)",
         "kvm.hypothetical = true")),
    Case("toml-tid-scheme-on-e500", toml(
        "[machine]\ncore = 'e500'\n[kvm]\nstrategy = 'e500-shadow-ids'\n"
        "tid_scheme = 'tid01'\n"),
        ("kvm.tid_scheme: the 440 TID eras do not apply to machine.core = 'e500'",)),
    Case("set-tid-scheme-never-ran", toml("", "--set", "kvm.strategy=shadow",
                                          "--set", "kvm.tid_scheme=swap-pid"),
         ("kvm.tid_scheme: 'swap-pid' never ran with kvm.strategy 'shadow'",)),
    # the default comparison (emu run without FILE) refuses them too, before running
    Case("default-unknown-tid-scheme", lambda d: ["run", "--set", "kvm.tid_scheme=tid-01"],
         ("kvm.tid_scheme", "'tid-01'", "'guest-tid', 'swap-pid', 'tid01'")),
    Case("default-guest-accesses-zero", lambda d: ["run", "--set", "sim.guest_accesses=0"],
         ("sim.guest_accesses", "positive integer", "0")),
    Case("default-tid-scheme-on-e500", lambda d: ["run", "--set", "machine.core=e500",
                                                  "--set", "kvm.tid_scheme=tid01"],
         ("kvm.tid_scheme: the 440 TID eras do not apply to machine.core = 'e500'",)),
    Case("default-narrowed-tid-scheme-never-ran", lambda d: [
        "run", "--set", "kvm.strategy=direct", "--set", "kvm.tid_scheme=guest-tid"],
        ("kvm.tid_scheme: 'guest-tid' never ran with kvm.strategy 'direct' (7924bd41 is tid01)",)),
    Case("toml-micro-tlb-on-e500", toml("[machine]\ncore = 'e500'\nmicro_tlb = true\n"),
         ("machine.micro_tlb", "e500")),
    Case("toml-host-task-cpu-eq-cpus", toml("[machine]\ncpus = 2\n[[host_task]]\ncpu = 2\n"),
         ("host_task.0.cpu", "CPU 2 does not exist")),
    # a host task's stream skipped its syscall events and ran its MMIO ones as
    # ordinary accesses, whatever the device
    Case("toml-host-task-mmio", toml(
        "duration_ms = 0.05\n[[host_task]]\nworkload = { mmio_every = 3, mmio_device = 'block' }\n"),
        ("host_task.0.workload.mmio_every: a host task touches no emulated device",)),
    Case("toml-host-task-syscall", toml(
        "duration_ms = 0.05\n[[host_task]]\nworkload = { syscall_every = 30 }\n"),
        ("host_task.0.workload.syscall_every: a host task's system calls are not modelled",)),
    Case("toml-host-task-cpu-negative", toml("[[host_task]]\ncpu = -1\n"),
         ("host_task.0.cpu", "-1")),
    # ---- a scenario naming a bad trace ---------------------------------------------------
    Case("toml-trace-workload-malformed-lackey",
         toml(trace_workload("w.txt", lambda: lackey_with(b"garbage here"))),
         ("w.txt:3:", "malformed lackey line")),
    Case("toml-trace-workload-corrupt-npz",
         toml(trace_workload("w.npz", lambda: npz_cut(lambda n: n // 2))),
         ("w.npz", "not a valid npz file")),
    Case("toml-trace-workload-missing",
         toml("[[vm]]\n[[vm.process]]\nworkload = { kind = 'trace', path = 'nope.npz' }\n"),
         ("nope.npz", "no such file")),
    # ---- TOML that is not TOML -------------------------------------------------------------
    Case("toml-random-bytes", toml(lambda d: np.random.default_rng(7).integers(
        0, 256, 4000, dtype=np.uint8).tobytes()), ("s.toml", "invalid TOML")),
    Case("toml-random-ascii", toml(lambda d: bytes(np.random.default_rng(8).integers(
        32, 127, 4000, dtype=np.uint8))), ("s.toml", "invalid TOML")),
    Case("toml-syntax-error", toml("x = [\n"), ("s.toml", "invalid TOML")),
    Case("toml-duplicate-key", toml("seed = 1\nseed = 2\n"), ("s.toml", "invalid TOML")),
    Case("toml-deeply-nested", toml("x = " + "[" * 1000 + "\n"), ("s.toml", "invalid TOML")),
    Case("run-missing-file", lambda d: ["run", str(d / "nope.toml")], ("nope.toml", "not found")),
    Case("run-directory", lambda d: ["run", str(d)], ("directory",)),
    # ---- --set: malformed overrides --------------------------------------------------
    Case("set-no-equals", toml("", "--set", "kvm.strategy"), ("kvm.strategy", "key=value")),
    Case("set-empty-key", toml("", "--set", "=shadow"), ("empty",)),
    Case("set-empty-component", toml("", "--set", "vm..vcpus=2"),
         ("vm..vcpus", "empty component")),
    Case("set-index-out-of-range", toml("", "--set", "vm.5.vcpus=2"),
         ("vm.5", "out of range")),
    Case("set-index-huge", toml("", "--set", "vm.99999999999999999999999.vcpus=1"),
         ("out of range",)),
    Case("set-non-index-into-array", toml("", "--set", "vm.first.vcpus=2"),
         ("vm.first", "index")),
    Case("set-key-inside-scalar", toml("", "--set", "seed.x=1"), ("seed",)),
    Case("set-unknown-key", toml("", "--set", "kvm.stratgy=shadow"),
         ("unknown key 'kvm.stratgy'",)),
    Case("set-wrong-type", toml("", "--set", "machine.cpus=two"), ("machine.cpus", "'two'")),
    Case("set-unknown-strategy", toml("", "--set", "kvm.strategy=bogus"),
         ("kvm.strategy", "'bogus'")),
    Case("set-smuggled-second-key", toml("", "--set", "duration_ms=1\nseed=2"),
         ("duration_ms",)),
    Case("set-huge-int", toml("", "--set", "seed=0x" + "f" * 100), ("seed", "400 bits")),
    Case("set-missing-argument", toml("", "--set"), ("--set",)),
    # ---- equal work: sim.guest_accesses ------------------------------------------------
    Case("guest-accesses-zero", toml("", "--set", "sim.guest_accesses=0"),
         ("sim.guest_accesses", "positive integer", "0")),
    Case("guest-accesses-negative", toml("", "--set", "sim.guest_accesses=-5"),
         ("sim.guest_accesses", "-5")),
    Case("guest-accesses-fraction", toml("", "--set", "sim.guest_accesses=2.5"),
         ("sim.guest_accesses", "integer", "2.5")),
    Case("guest-accesses-with-warmup",
         toml("duration_ms = 0.2\n[sim]\nguest_accesses = 1000\nwarmup_ms = 0.1\n"),
         ("sim.guest_accesses", "sim.warmup_ms", "0.1")),
    Case("guest-accesses-past-duration",
         toml("duration_ms = 0.05\n[sim]\nguest_accesses = 100000000\n"),
         ("duration_ms = 0.05", "sim.guest_accesses = 100,000,000", "raise duration_ms")),
    # ---- emu compare --vary malformed ------------------------------------------------------
    Case("vary-no-equals", vary("kvm.strategy"), ("--vary", "key=v1,v2")),
    Case("vary-empty-key", vary("=shadow,direct"), ("--vary",)),
    Case("vary-no-values", vary("kvm.strategy="), ("--vary",)),
    Case("vary-only-commas", vary("kvm.strategy=,,"), ("--vary",)),
    Case("vary-unknown-value", vary("kvm.strategy=shadow,bogus"), ("kvm.strategy", "'bogus'")),
    Case("vary-unknown-key", vary("kvm.stratgy=shadow"), ("unknown key 'kvm.stratgy'",)),
    Case("vary-wrong-type", vary("machine.cpus=1,x"), ("machine.cpus", "'x'")),
    Case("compare-without-vary", lambda d: ["compare", _write(d / "s.toml", "")], ("--vary",)),
    # ---- output protection: failing commands leave earlier results alone ----------------
    Case("out-kept-on-bad-toml", with_results(toml("[kvm]\nstratgy = 'shadow'\n")),
         ("kvm.stratgy",), check=results_untouched),
    Case("out-kept-on-bad-override", with_results(toml("", "--set", "machine.cpus=0")),
         ("machine.cpus",), check=results_untouched),
    Case("out-kept-on-bad-trace-workload", with_results(
        toml(trace_workload("w.npz", lambda: npz_bytes(addr=ADDR.astype(float))))),
        ("w.npz", "float64"), check=results_untouched),
    Case("out-kept-on-compare-bad-value", with_results(
        vary("kvm.strategy=direct,bogus"),
        files={"comparison.json": SENTINEL_SUMMARY, "direct": None,
               "direct/summary.json": SENTINEL_SUMMARY}),
        ("'bogus'",), check=results_untouched),
    Case("out-summary-json-is-a-directory", with_results(
        toml("duration_ms = 0.05\n"), files={"summary.json": None}),
        ("summary.json",), check=results_untouched),
    Case("out-is-a-regular-file", lambda d: ["run", _write(d / "s.toml", "duration_ms = 0.05\n"),
                                             "--out", _write(d / "file", SENTINEL_CSV)],
         ("file",)),
    Case("compare-out-is-a-regular-file", lambda d: [
        "compare", _write(d / "s.toml", "duration_ms = 0.05\n"), "--vary", "kvm.strategy=direct",
        "--out", _write(d / "file", SENTINEL_CSV)], ("file",)),
    Case("import-target-kept-on-malformed-line",
         with_import_target(lambda: lackey_with(b"L 10;4")),
         ("in.txt:3:", "malformed lackey line"), check=results_untouched),
    Case("import-target-kept-on-error-after-a-chunk",
         # more than one 2**20-record chunk is written to the raw temporary files first
         with_import_target(lambda: big_lackey((1 << 20) + 400_000, b" L 10,0\n")),
         (f"in.txt:{(1 << 20) + 400_001}:", "size 0 out of range"), check=results_untouched,
         slow=True),
    Case("import-target-kept-on-truncated-gzip",
         with_import_target(lambda: gzip.compress(big_lackey(200_000), mtime=0)[:-4000]),
         ("in.txt", "corrupt or truncated gzip"), check=results_untouched, slow=True),
    Case("import-output-is-a-directory", lambda d: [
        "trace", "import", "lackey", _write(d / "in.txt", GOOD_LACKEY), "-o", str(d)],
        ("is a folder",)),
    # a folder not there is made (as emu report's); one under a file cannot be
    Case("import-output-dir-under-a-file", lambda d: [
        "trace", "import", "lackey", _write(d / "in.txt", GOOD_LACKEY),
        "-o", str(d / "in.txt" / "dir" / "t.npz")], ("t.npz", "cannot write")),
    # ---- usage errors --------------------------------------------------------------------
    Case("unknown-command", lambda d: ["simulate"], ("simulate",)),
    Case("mistyped-command", lambda d: ["tlbb"], ("'tlbb' (did you mean 'tlb'? choose from",)),
    Case("mistyped-choice", lambda d: ["run", "--progress", "lin"],
         ("--progress", "'lin' (did you mean 'lines'? choose from 'auto'",)),
    Case("mistyped-policy", tlb("t.txt", lambda: GOOD_LACKEY, "--policy", "lur"),
         ("'lur' (did you mean 'lru'? choose from: fifo, lru",)),
    Case("unknown-option", toml("", "--fast"), ("--fast",)),
    Case("import-unknown-format", lambda d: [
        "trace", "import", "pin", _write(d / "in.txt", GOOD_LACKEY), "-o", str(d / "o.npz")],
        ("pin",)),
    Case("import-input-before-its-format", lambda d: [
        "trace", "import", _write(d / "in.txt", GOOD_LACKEY), "-o", str(d / "o.npz")],
        ("in.txt' (choose from 'lackey', 'npz', 'npy'); the format comes first: emu trace "
         "import lackey ",)),
]

CASES_BY_ID = {c.id: c for c in CASES}
assert len(CASES_BY_ID) == len(CASES), "duplicate case ids"


def _case_param(case: Case):
    marks = [pytest.mark.xfail(strict=True, reason=case.bug)] if case.bug else []
    return pytest.param(case.id, id=case.id, marks=marks)


@pytest.fixture(scope="module")
def cli_runs(request, tmp_path_factory) -> dict:
    """Run every collected CLI case at once, in parallel; return
    {case id: (Run, its directory)}."""
    module = sys.modules[__name__]
    wanted = [item.callspec.params["case_id"] for item in request.session.items
              if getattr(item, "module", None) is module and hasattr(item, "callspec")
              and "case_id" in item.callspec.params]
    return run_cases(wanted, tmp_path_factory.mktemp("cli"))


@pytest.mark.parametrize("case_id", [_case_param(c) for c in CASES])
def test_cli_bad_input(case_id, cli_runs):
    case = CASES_BY_ID[case_id]
    run, d = cli_runs[case_id]
    assert_one_line_error(run, case.expect)
    if case.check is not None:
        case.check(d)


#: a sample of the table: a message, a warning, a traceback, argparse
SAME_AS_PYTHON_M = ["lackey-binary-garbage", "npz-flip-deflated-addr", "npy-header-shape-2**62",
                    "toml-unknown-workload-key", "set-index-out-of-range", "vary-unknown-value",
                    "tlb-entries-not-a-number", "toml-deeply-nested", "npz-name-not-utf8"]


@pytest.mark.skipif(EXEC_EACH, reason="every case already runs as python -m emu.cli")
def test_forked_runner_matches_python_m(tmp_path):
    """The forked runner and a fresh `python -m emu.cli` agree: same exit
    status, same stdout, same stderr (for a traceback: the same last line)."""
    forked = run_cases(SAME_AS_PYTHON_M, tmp_path / "forked", exec_each=False)
    real = run_cases(SAME_AS_PYTHON_M, tmp_path / "real", exec_each=True)
    for case_id in SAME_AS_PYTHON_M:
        (a, da), (b, db) = forked[case_id], real[case_id]
        err_a = a.stderr.replace(str(da), "DIR")
        err_b = b.stderr.replace(str(db), "DIR")
        assert (a.returncode, a.stdout) == (b.returncode, b.stdout), case_id
        if "Traceback" in err_b:
            assert "Traceback" in err_a and err_a.splitlines()[-1] == err_b.splitlines()[-1]
        else:
            assert err_a == err_b, case_id


# ==========================================================================
# 2. Property-based fuzz, in-process
# ==========================================================================

FUZZ_EXAMPLES = 1000


def fuzz(max_examples: int = FUZZ_EXAMPLES):
    return settings(derandomize=True, database=None, deadline=None, max_examples=max_examples,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.large_base_example,
                                           HealthCheck.filter_too_much])


@pytest.fixture(scope="module")
def fuzz_dir():
    with tempfile.TemporaryDirectory(prefix="emu-fuzz-") as d:
        yield Path(d)


def _check_error(e: EmuError, path: str) -> None:
    msg = str(e)
    assert msg and "\n" not in msg and "\r" not in msg, repr(msg)
    if isinstance(e, TraceError):
        assert path in msg, f"the message does not name the file: {msg!r}"


def exercise_trace(path: str) -> str:
    """open_trace, read every chunk of 997, then simulate_trace: each step
    either works or raises EmuError (anything else propagates: a bug)."""
    try:
        trace = open_trace(path)
    except EmuError as e:
        _check_error(e, path)
        return "refused"
    n = 0
    try:
        for c in trace.chunks(997):
            assert isinstance(c, TraceChunk)
            assert c.addr.dtype == np.uint64 and c.kind.dtype == np.uint8
            assert 1 <= len(c) <= 997 and len(c.kind) == len(c)
            assert c.size is None or (c.size.dtype == np.uint32 and len(c.size) == len(c))
            assert int(c.kind.max()) <= 3
            assert c.size is None or 1 <= int(c.size.min()) <= int(c.size.max()) <= 65536
            n += len(c)
    except EmuError as e:
        _check_error(e, path)
        return "refused while reading"
    if trace.n_records is not None:
        assert n == trace.n_records
    try:
        result = simulate_trace(path, TLBSimConfig())
    except EmuError as e:
        _check_error(e, path)
        return "refused by the simulation"
    assert result["records_read"] == n
    assert result["hits"] + result["misses"] == result["translations"]
    return "read"


def exercise_scenario(path: str, overrides=()) -> str:
    """load_scenario: a Scenario or a ConfigError; a loaded one round-trips."""
    try:
        s = load_scenario(path, list(overrides))
    except EmuError as e:
        _check_error(e, path)
        return "refused"
    assert isinstance(s, Scenario)
    again = scenario_from_dict(scenario_to_dict(s), base_dir=s.base_dir)
    assert again == s
    return "loaded"


# -- mutations -----------------------------------------------------------------


def mutate(base: bytes, seed: int) -> bytes:
    """``base`` with 1..4 random edits (byte flips, set bytes, cuts, insertions,
    deletions, duplicated runs) at positions biased to the head and the tail,
    where the headers and directories are.  One drawn seed drives them all
    (cheaper than a draw per edit; the seed reproduces a failing example)."""
    rng = random.Random(seed)
    data = bytearray(base)
    for _ in range(rng.randint(1, 4)):
        n = len(data)
        r = rng.random()
        pos = (rng.randint(0, min(n, 300)) if r < 0.4 else
               rng.randint(max(0, n - 200), n) if r < 0.7 else rng.randint(0, n))
        op = rng.choice(["flip", "flip", "flip", "set", "cut", "insert", "delete", "dup"])
        if op in ("flip", "set") and pos < n:
            data[pos] = data[pos] ^ (1 << rng.randint(0, 7)) if op == "flip" else rng.randint(0, 255)
        elif op == "cut":
            del data[pos:]
        elif op == "insert":
            data[pos:pos] = rng.randbytes(rng.randint(1, 16))
        elif op == "delete":
            del data[pos:pos + rng.randint(1, 64)]
        elif op == "dup":
            data[pos:pos] = data[pos:pos + rng.randint(1, 64)]
    return bytes(data)


def mutated(bases) -> st.SearchStrategy:
    return st.builds(mutate, st.sampled_from(list(bases)), st.integers(0, 2**32 - 1))


MAGICS = [b"PK\x03\x04", b"PK\x05\x06", b"\x93NUMPY\x01\x00", b"\x93NUMPY\x02\x00",
          b"\x93NUMPY\x03\x00", b"\x93NUMPY", b"\x1f\x8b", b"\x1f\x8b\x08\x00", b"==1== ",
          b"I  ", b" L 10,"]


@functools.lru_cache(maxsize=None)
def npz_bases() -> tuple:
    n = 300
    a, k, s = ADDR[:n], KIND[:n], SIZE[:n]
    return (npz_bytes(True, addr=a, kind=k, size=s), npz_bytes(False, addr=a, kind=k, size=s),
            npz_bytes(True, addr=a), npz_bytes(False, addr=a.astype(np.int64), kind=k),
            npz_bytes(False, addr=a[:3], kind=k[:3].astype(np.int16), size=s[:3]))


@functools.lru_cache(maxsize=None)
def npy_bases() -> tuple:
    n = 300
    return (npy_bytes(structured(n)), npy_bytes(structured(n), version=(2, 0)),
            npy_bytes(structured(n, (("addr", "<u8"), ("kind", "u1")))),
            npy_bytes(ADDR[:n]), npy_bytes(ADDR[:n].astype(">u8")),
            npy_bytes(ADDR[:20].astype(np.int32)), npy_bytes(structured(4)))


@functools.lru_cache(maxsize=None)
def lackey_bases() -> tuple:
    text = (DATA / "lackey_small.txt").read_bytes()[:3000]
    text = text[:text.rfind(b"\n") + 1]
    return (text, gzip.compress(text, mtime=0), GOOD_LACKEY.encode() * 3,
            gzip.compress(GOOD_LACKEY.encode(), mtime=0))


DESCRS = ["<u8", "<i8", "|u1", "<u4", "<i4", ">u8", "<u2", "<f8", "|b1", "|O", "|V8", "<U2",
          "|S4", "<M8[s]", "<c16", "|V0",
          [("addr", "<u8"), ("kind", "|u1"), ("size", "<u4")], [("addr", "<u8")],
          [("addr", "<i4"), ("size", "<i2")], [("addr", "<f8")], [("kind", "|u1")],
          [("addr", "<u8"), ("x", "|u1")], [("addr", "<u8", (2,))],
          [("addr", "|O"), ("kind", "|u1")], [("addr", [("a", "<u8")])], []]


@st.composite
def crafted_npy(draw):
    """An npy file whose header is drawn field by field (odd dtypes, shapes
    negative, huge or many-dimensional, missing or extra keys) and whose body
    is random bytes of random length."""
    dim = st.one_of(st.integers(0, 80), st.integers(-3, 3), st.sampled_from(
        [2**31 - 1, 2**31, 2**32 + 1, 2**61 + 1, 2**62, 2**63 - 1, 2**63, 2**64]))
    header = {"descr": draw(st.sampled_from(DESCRS)),
              "fortran_order": draw(st.booleans()),
              "shape": tuple(draw(st.lists(dim, max_size=3)))}
    edit = draw(st.sampled_from(["none"] * 6 + ["drop", "extra", "text"]))
    if edit == "drop":
        del header[draw(st.sampled_from(sorted(header)))]
    elif edit == "extra":
        header["extra"] = 1
    version = draw(st.sampled_from([(1, 0), (2, 0), (3, 0)]))
    if edit == "text":
        raw = draw(st.text(max_size=80)).encode("utf8")
        head = b"\x93NUMPY" + bytes(version) + len(raw).to_bytes(
            2 if version == (1, 0) else 4, "little") + raw
    else:
        head = npy_header(header, version)
    body_len = draw(st.one_of(st.integers(0, 64), st.integers(0, 3000)))
    body = draw(st.sampled_from([b"\0", b"\x01", b"\xff"])) * body_len
    if draw(st.booleans()):
        body = draw(st.binary(max_size=400))
    return head + body


def random_lackey(seed: int) -> bytes:
    """1..30 lackey-like lines: mostly well-formed records, with wrong letters,
    gaps, digits, sizes and trailers, valgrind messages, blank lines and
    binary junk mixed in; plain or gzip."""
    rng = random.Random(seed)

    def clean():
        return (rng.choice([b"", b" ", b"  "]) + rng.choice(b"ILSM").to_bytes(1, "big")
                + rng.choice([b" ", b"  "])
                + "".join(rng.choices("0123456789abcdefABCDEF", k=rng.randint(1, 16))).encode()
                + b"," + str(rng.choice([rng.randint(1, 16)] * 6 + [65536, rng.randint(1, 65536)])
                             ).encode()
                + rng.choice([b"", b" ", b"\r"]))

    p_bad = rng.choice([0.0, 0.02, 0.1, 0.4])     # some documents are all well-formed

    def record():
        if rng.random() >= p_bad:
            return clean()
        return (rng.choice([b"", b" ", b"\t", b"   "]) + rng.choice(b"ILSMILSMXl-").to_bytes(1, "big")
                + rng.choice([b" ", b"  ", b"\t", b""])
                + "".join(rng.choices("0123456789abcdefABCDEFx", k=rng.choice(
                    [rng.randint(1, 16)] * 4 + [0, 17, 18]))).encode()
                + rng.choice([b",", b",", b",", b";", b""])
                + "".join(rng.choices("0123456789" * 4 + "-+ ", k=rng.choice(
                    [rng.randint(1, 5)] * 4 + [0, 6, 10, 11, 12]))).encode()
                + rng.choice([b"", b"", b" ", b"\r", b" x", b","]))

    def line():
        r = rng.random()
        if r < 0.85:
            return record()
        if r < 0.95 or rng.random() >= p_bad:
            return rng.choice([b"==12== Lackey", b"==", b"", b"  ", b"\r"])
        return rng.choice([b"=", b"--1-- x", b" S 10,0", b" S 10,65537",
                           rng.randbytes(rng.randint(0, 20)).replace(b"\n", b"")])

    text = b"\n".join(line() for _ in range(rng.randint(1, 30)))
    text += rng.choice([b"", b"\n"])
    return gzip.compress(text, mtime=0) if rng.random() < 0.3 else text


def _write_fuzz(directory: Path, name: str, data: bytes) -> str:
    p = directory / name
    # a new file each time: truncating an existing one costs milliseconds on ext4
    p.unlink(missing_ok=True)
    p.write_bytes(data)
    return str(p)


# -- the trace readers ------------------------------------------------------------


@fuzz()
@given(data=st.one_of(st.binary(max_size=1500),
                      st.builds(bytes.__add__, st.sampled_from(MAGICS), st.binary(max_size=1500))),
       ext=st.sampled_from([".txt", ".gz", ".npz", ".npy", ".bin", ""]))
def test_fuzz_trace_random_bytes(fuzz_dir, data, ext):
    exercise_trace(_write_fuzz(fuzz_dir, "random" + ext, data))


@fuzz()
@given(data=mutated(npz_bases()), ext=st.sampled_from([".npz", ".bin"]))
def test_fuzz_trace_mutated_npz(fuzz_dir, data, ext):
    exercise_trace(_write_fuzz(fuzz_dir, "mutated" + ext, data))


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")  # the CLI case above
@fuzz()
@given(data=st.one_of(mutated(npy_bases()), crafted_npy()),
       ext=st.sampled_from([".npy", ".bin"]))
def test_fuzz_trace_mutated_npy(fuzz_dir, data, ext):
    exercise_trace(_write_fuzz(fuzz_dir, "mutated" + ext, data))


@fuzz()
@given(data=st.one_of(mutated(lackey_bases()),
                      st.builds(random_lackey, st.integers(0, 2**32 - 1))),
       ext=st.sampled_from([".txt", ".gz", ""]))
def test_fuzz_trace_mutated_lackey(fuzz_dir, data, ext):
    exercise_trace(_write_fuzz(fuzz_dir, "mutated" + ext, data))


# -- the scenario loader --------------------------------------------------------------

FULL_TOML = (DATA / "cfg_full.toml").read_bytes()
E500_TOML = (DATA / "cfg_e500.toml").read_bytes()
SMALL_TOML = (b"seed = 3\nduration_ms = 1.5\n[kvm]\nstrategy = 'shadow'\n"
              b"[[vm]]\n[[vm.process]]\nworkload = { kind = 'sweep', pages = 8 }\n"
              b"[[host_task]]\ncpu = 0\nrun_us = 10\n")


@fuzz()
@given(data=st.one_of(st.binary(max_size=800), st.text(max_size=400).map(str.encode),
                      mutated([FULL_TOML, E500_TOML, SMALL_TOML])))
def test_fuzz_scenario_bytes(fuzz_dir, data):
    exercise_scenario(_write_fuzz(fuzz_dir, "bytes.toml", data))


# The schema, as (kind, ...) per key, to build documents that are right in
# most places and wrong in a few.
_WORKLOAD = {
    "kind": ("enum", WORKLOAD_KINDS), "pages": ("int", 1, 262144),
    "distribution": ("enum", DISTRIBUTIONS), "zipf_s": ("num", 0.0, None),
    "stride": ("int", 1, 2**30), "path": ("str",), "inst_fraction": ("num", 0.0, 1.0),
    "code_pages": ("int", 1, 262144), "write_fraction": ("num", 0.0, 1.0),
    "syscall_every": ("int", 0, 2**32), "mmio_every": ("int", 0, 2**32),
    "mmio_device": ("enum", MMIO_DEVICES), "sleep_every": ("int", 0, 2**32),
    "sleep_us": ("num", 0.0, None), "lifetime_accesses": ("int", 0, 2**32),
}
_SCHEMA = {
    "seed": ("int", 0, 2**64 - 1), "duration_ms": ("num", 0.0, None),
    "name": ("str",), "question": ("str",),
    "machine": ("table", {"core": ("enum", CORES + (440,)), "cpus": ("int", 1, 64),
                          "clock_mhz": ("int", 1, 100_000), "micro_tlb": ("bool",),
                          "hwater": ("int", 0, 63)}),
    "kvm": ("table", {"strategy": ("enum", STRATEGIES), "handler": ("enum", HANDLERS),
                      "tid_scheme": ("enum", TID_SCHEMES), "hypothetical": ("bool",),
                      "pfn_source": ("enum", PFN_SOURCES),
                      "pfn_cache_entries": ("int", 1, 2**20),
                      "pfn_cache_policy": ("enum", PFN_CACHE_POLICIES),
                      "guest_tlb_walk": ("enum", GUEST_TLB_WALKS),
                      "batch_tlbwe": ("bool",)}),
    "costs": ("costs",),
    "vm": ("array", {"vcpus": ("int", 1, 16), "memory_mb": ("int", 16, 3830),
                     "process": ("array", {"count": ("int", 1, 1000),
                                           "workload": ("table", _WORKLOAD)})}),
    "host_task": ("array", {"name": ("str",), "cpu": ("int", 0, 63), "run_us": ("num", 0.0, None),
                            "sleep_us": ("num", 0.0, None), "workload": ("table", _WORKLOAD)}),
    "sim": ("table", {"chunk": ("int", 1, 2**24), "backend": ("enum", BACKENDS),
                      "repopulation_window": ("int", 1, 65536), "timeline": ("bool",),
                      "guest_accesses": ("int", 1, 2**48)}),
}
_COST_NAMES = sorted(COSTS_BY_NAME)

_EDGE_INTS = [-1, 0, 1, 2**31 - 1, 2**31, 2**32, 2**53 + 1, 2**63 - 1, 2**63, 2**64 - 1,
              2**64, -2**63, 10**30]
_ODD_TEXT = "aZ09 _-.'\"\\\t\x00\x7f\u00e9\u4e2d\U0001f600=[]{}#,"


def _scalar(rng: random.Random):
    r = rng.randrange(9)
    if r == 0:
        return rng.choice(_EDGE_INTS) * rng.choice([1, -1])
    if r == 1:
        return rng.randint(-2**70, 2**70)
    if r == 2:
        return rng.choice([float("inf"), float("-inf"), float("nan"), -0.0, 0.5, 1e300, 5e-324,
                           rng.uniform(-1e6, 1e6)])
    if r == 3:
        return rng.random() < 0.5
    if r == 4:
        return "".join(rng.choices(_ODD_TEXT, k=rng.randint(0, 8)))
    if r == 5:
        return rng.choice(STRATEGIES + CORES + WORKLOAD_KINDS + ("", "440 ", "Shadow"))
    if r == 6:
        return datetime.date(rng.randint(1, 9999), rng.randint(1, 12), rng.randint(1, 28))
    if r == 7:
        return datetime.time(rng.randint(0, 23), rng.randint(0, 59), rng.randint(0, 59))
    return datetime.datetime(rng.randint(1, 9999), rng.randint(1, 12), rng.randint(1, 28),
                             rng.randint(0, 23))


def _wrong(rng: random.Random):
    r = rng.random()
    if r < 0.75:
        return _scalar(rng)
    if r < 0.9:
        return [_scalar(rng) for _ in range(rng.randint(0, 3))]
    return {"".join(rng.choices(_ODD_TEXT, k=rng.randint(1, 5))): _scalar(rng)
            for _ in range(rng.randint(0, 2))}


def _valid(rng: random.Random, spec):
    kind = spec[0]
    if kind == "int":
        lo, hi = spec[1], spec[2]
        return rng.choice([lo, hi, rng.randint(lo, min(hi, lo + 64))])
    if kind == "num":
        lo, hi = spec[1], spec[2]
        top = hi if hi is not None else 1000
        return rng.choice([rng.uniform(lo, top), float(lo), float(top), rng.randint(int(lo), int(top))])
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "str":
        return "".join(rng.choices(_ODD_TEXT, k=rng.randint(0, 12)))
    if kind == "enum":
        return rng.choice(spec[1])
    if kind == "table":
        return _table(rng, spec[1])
    if kind == "array":
        return [_table(rng, spec[1]) for _ in range(rng.choice([0, 1, 1, 1, 2, 3]))]
    if kind == "costs":
        return {rng.choice(_COST_NAMES) if rng.random() < 0.8 else
                "".join(rng.choices(_ODD_TEXT, k=rng.randint(1, 8))):
                rng.choice([rng.randint(0, 10**6), 0, 2**62, 2**62 + 1, _wrong(rng)])
                for _ in range(rng.randint(0, 3))}
    raise AssertionError(kind)


def _value(rng: random.Random, spec):
    """Right most of the time; otherwise wrong (type, range, boundary)."""
    if rng.random() >= rng.p_wrong:
        return _valid(rng, spec)
    if rng.random() < 0.5 and spec[0] in ("int", "num"):
        lo, hi = spec[1], spec[2]
        return rng.choice([lo - 1, -lo - 1, (hi or 2**64) + 1, float(lo), float("inf"),
                           float("nan"), 2**64, 10**30, True])
    return _wrong(rng)


def _table(rng: random.Random, schema: dict) -> dict:
    out = {}
    for key, spec in schema.items():
        if rng.random() < 0.3:
            out[key] = _value(rng, spec)
    if rng.random() < rng.p_wrong / 3:                     # an unknown key
        key = rng.choice([rng.choice(sorted(schema)) + "s",
                          "".join(rng.choices(_ODD_TEXT, k=rng.randint(1, 10)))])
        out.setdefault(key, _wrong(rng))
    return out


def random_document(seed: int) -> dict:
    """A scenario document shaped like the schema, right in most places and
    wrong (type, range, unknown key, impossible combination) in a few."""
    rng = random.Random(seed)
    rng.p_wrong = rng.choice([0.0, 0.02, 0.1, 0.3])      # some documents are all right
    return _table(rng, _SCHEMA)


def _toml_str(s: str) -> str:
    out = []
    for ch in s:
        o = ord(ch)
        if ch in '"\\':
            out.append("\\" + ch)
        elif o < 0x20 or o == 0x7F:
            out.append(f"\\u{o:04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def to_toml(value) -> str:
    """A TOML value (inline) for a Python value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value:
            return "nan"
        if value in (float("inf"), float("-inf")):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return _toml_str(value)
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(to_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_toml_str(k)} = {to_toml(v)}" for k, v in value.items()) + "}"
    raise AssertionError(type(value))


def toml_document(doc: dict) -> str:
    return "".join(f"{_toml_str(k)} = {to_toml(v)}\n" for k, v in doc.items())


_OVERRIDE_KEYS = ["seed", "duration_ms", "machine.core", "machine.cpus", "machine.micro_tlb",
                  "kvm.strategy", "kvm.pfn_cache_entries", "costs.tlbwe", "sim.chunk",
                  "vm.0.vcpus", "vm.1.memory_mb", "vm.0.process.0.count",
                  "vm.0.process.0.workload.pages", "vm.0.process.0.workload.kind",
                  "vm.0.process.1.workload", "host_task.0.cpu", "host_task.0.run_us",
                  "host_task.1.name", "vm", "machine", "vm.0.process", "vm.x.vcpus",
                  "seed.x", "vm.7.vcpus", "vm..vcpus", ""]


def random_overrides(seed: int) -> list:
    rng = random.Random(seed)
    out = []
    for _ in range(rng.choice([0, 0, 1, 1, 2, 3])):
        if rng.random() < 0.15:
            out.append("".join(rng.choices(_ODD_TEXT, k=rng.randint(0, 20))))
            continue
        key = rng.choice(_OVERRIDE_KEYS)
        r = rng.random()
        value = (to_toml(_wrong(rng)) if r < 0.5 else
                 "".join(rng.choices(_ODD_TEXT, k=rng.randint(0, 10))) if r < 0.7 else
                 rng.choice(STRATEGIES + CORES + ("1", "0", "-1", "{}", "[]", "[{}]")))
        out.append(f"{key}={value}")
    return out


@fuzz()
@given(seed=st.integers(0, 2**32 - 1))
def test_fuzz_scenario_schema(fuzz_dir, seed):
    doc, sets = random_document(seed), random_overrides(seed ^ 0x5A5A5A5A)
    text = toml_document(doc)
    note(f"document:\n{text}overrides: {sets!r}")
    exercise_scenario(_write_fuzz(fuzz_dir, "schema.toml", text.encode()), sets)

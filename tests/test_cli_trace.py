"""``emu trace import`` end to end (``emu/cli/trace.py``): what a killed
import left beside its output is removed by the next import of that output."""

from __future__ import annotations

import os
import signal
import threading
import time

import numpy as np

from clirun import popen_cli, run_cli


def lackey(records: int) -> bytes:
    addr = np.arange(records, dtype=np.uint64) * 64 + 0x1000_0000
    lines = np.char.add(np.char.add(b" L ", np.char.mod("%x", addr).astype(bytes)), b",4\n")
    return b"".join(lines.tolist())


def temporaries(d, name="t.npz") -> list:
    return sorted(p.name for p in d.iterdir() if p.name.startswith(f".{name}."))


def test_leftovers_of_a_killed_import_are_removed_by_the_next_one(tmp_path):
    # the import reads a FIFO whose writer stays open: it has written part of its
    # output and waits for the rest when it is killed, however fast it reads
    src = tmp_path / "in.fifo"
    os.mkfifo(src)
    out = tmp_path / "t.npz"
    p = popen_cli("trace", "import", "lackey", src, "-o", out)
    writer = open(src, "wb")
    try:
        feed = threading.Thread(target=writer.write, args=(lackey(1_000_000),), daemon=True)
        feed.start()
        deadline = time.monotonic() + 120
        while not temporaries(tmp_path):           # the import is writing beside t.npz
            assert p.poll() is None, p.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.005)
        feed.join(timeout=120)
        p.send_signal(signal.SIGKILL)
        p.communicate()
    finally:
        try:
            writer.close()
        except BrokenPipeError:
            pass
    assert temporaries(tmp_path) and not out.exists()
    (tmp_path / ".t.npz.4242.deadbeef.tmp").write_bytes(b"x" * 100)    # an atomic write's
    (tmp_path / ".other.npz.abcd1234.tmp").write_bytes(b"not ours")
    small = tmp_path / "small.txt"
    small.write_bytes(lackey(1000))
    done = run_cli("trace", "import", "lackey", small, "-o", out)
    assert done.returncode == 0, done.stderr
    assert temporaries(tmp_path) == []
    assert (tmp_path / ".other.npz.abcd1234.tmp").exists()        # another output's: kept
    with np.load(out) as z:
        assert len(z["addr"]) == 1000

"""``emu trace import`` end to end (``emu/cli/trace.py``): what a killed
import left beside its output is removed by the next import of that output;
an output that is not a regular file (a device, a FIFO, a folder) is refused
before anything is written, and a symlink's file is written, the link kept."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from clirun import EMU, assert_usage_error, cli_env, popen_cli, run_cli
from emu.errors import EmuError
from emu.run.files import write_text


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


def _special_targets(d) -> dict:
    """{name: (target, what the refusal says)} of outputs no file may replace."""
    os.mkfifo(d / "out.fifo")
    (d / "to-fifo").symlink_to("out.fifo")
    (d / "folder").mkdir()
    (d / "held").write_bytes(b"kept")
    (d / "to-fd").symlink_to("/proc/self/fd/1")       # stdout, a file (run() gives it one)
    return {"fifo": (d / "out.fifo", "is a FIFO, not a regular file"),
            "symlink to a fifo": (d / "to-fifo", "is a symlink to out.fifo, a FIFO"),
            "folder": (d / "folder", "is a folder; give the name of the file to write"),
            "open file": (d / "to-fd", "names an open file"),
            "in /proc": (Path("/proc/version"), "is in /proc, the kernel's view of its "
                                                "processes, where emu writes no file")}


def _lstat_all(d) -> dict:
    return {p.name: (p.lstat().st_mode, p.lstat().st_ino) for p in d.iterdir()}


@pytest.mark.parametrize("target", ["fifo", "symlink to a fifo", "folder", "open file",
                                    "in /proc"])
def test_an_output_that_is_not_a_regular_file_is_refused_before_anything_is_written(
        tmp_path, target):
    src = tmp_path / "in.txt"
    src.write_bytes(lackey(10))
    out, needle = _special_targets(tmp_path)[target]
    before = _lstat_all(tmp_path)
    with open(tmp_path / "held", "r+b") as stdout:
        proc = subprocess.run(EMU + ["trace", "import", "lackey", str(src), "-o", str(out)],
                              stdout=stdout, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
                              env=cli_env(), stdin=subprocess.DEVNULL, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith(f"emu: error: {out}: {needle}"), proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert _lstat_all(tmp_path) == before                  # nothing replaced, nothing left
    assert (tmp_path / "held").read_bytes() == b"kept"


@pytest.mark.parametrize("out,tail", [("x.npy/", "/"), ("new/", "/"), (".", "."),
                                     ("sub/..", "..")])
def test_an_output_named_as_a_folder_is_refused(tmp_path, out, tail):
    """``-o x.npy/`` wrote a file ``x.npy``, and an .npz in it (the name with the
    slash has no .npy suffix); ``-o new/`` wrote a file ``new``."""
    src = tmp_path / "in.txt"
    src.write_bytes(lackey(10))
    (tmp_path / "sub").mkdir()
    before = _lstat_all(tmp_path)
    proc = subprocess.run(EMU + ["trace", "import", "lackey", str(src), "-o", out],
                          capture_output=True, text=True, cwd=tmp_path, env=cli_env(),
                          stdin=subprocess.DEVNULL, timeout=120)
    assert (proc.returncode, proc.stderr) == (2, f"emu: error: --output {out!r}: names a folder "
                                                 f"(it ends in {tail!r}); give the name of the "
                                                 f"file to write\n")
    assert _lstat_all(tmp_path) == before


def test_a_character_device_output_is_refused(tmp_path):
    dev = tmp_path / "null"
    try:
        os.mknod(dev, 0o600 | stat.S_IFCHR, os.makedev(1, 3))    # a /dev/null of its own
    except PermissionError:
        pytest.skip("making a device node needs root")
    src = tmp_path / "in.txt"
    src.write_bytes(lackey(10))
    proc = run_cli("trace", "import", "lackey", src, "-o", dev)
    assert_usage_error(proc, f"{dev}: is a character device, not a regular file; emu writes "
                             "only to a file it can replace as a whole")
    assert stat.S_ISCHR(dev.lstat().st_mode) and sorted(os.listdir(tmp_path)) == ["in.txt", "null"]


def test_an_output_symlink_keeps_its_link_and_gets_its_file_written(tmp_path):
    src = tmp_path / "in.txt"
    src.write_bytes(lackey(10))
    (tmp_path / "store").mkdir()
    (tmp_path / "store" / "t.npz").write_bytes(b"old")
    link = tmp_path / "t.npz"
    link.symlink_to("store/t.npz")
    done = run_cli("trace", "import", "lackey", src, "-o", link)
    assert done.returncode == 0, done.stderr
    assert os.readlink(link) == "store/t.npz"
    with np.load(tmp_path / "store" / "t.npz") as z:
        assert len(z["addr"]) == 10
    assert sorted(os.listdir(tmp_path)) == ["in.txt", "store", "t.npz"]
    assert os.listdir(tmp_path / "store") == ["t.npz"]


def test_the_shared_atomic_write_refuses_and_follows_links_alike(tmp_path):
    """What ``emu report -o``, ``emu config dump -o`` and the plots write
    through (:func:`emu.run.files.atomic_path`)."""
    targets = _special_targets(tmp_path)
    for out, needle in targets.values():
        with pytest.raises(EmuError, match=f"^{out}: {needle}"):
            write_text(out, "x")
    (tmp_path / "real.toml").write_text("old")
    (tmp_path / "link.toml").symlink_to("real.toml")
    write_text(tmp_path / "link.toml", "new")
    assert os.readlink(tmp_path / "link.toml") == "real.toml"
    assert (tmp_path / "real.toml").read_text() == "new"
    proc = run_cli("config", "dump", "-o", tmp_path / "out.fifo")
    assert_usage_error(proc, f"{tmp_path / 'out.fifo'}: is a FIFO, not a regular file")
    assert stat.S_ISFIFO((tmp_path / "out.fifo").lstat().st_mode)


def test_the_output_is_refused_before_the_input_is_opened(tmp_path):
    """A FIFO as input waits for its writer, and a pipe's bytes are used up once
    read: an output emu cannot write is refused first, at once (a FIFO output
    with an unfed FIFO input had waited for ever)."""
    fifo_in, fifo_out = tmp_path / "in", tmp_path / "out"
    os.mkfifo(fifo_in)
    os.mkfifo(fifo_out)
    t0 = time.monotonic()
    p = run_cli("trace", "import", "lackey", fifo_in, "-o", fifo_out, timeout=30)
    assert assert_usage_error(p) == (f"emu: error: {fifo_out}: is a FIFO, not a regular file; emu "
                                     "writes only to a file it can replace as a whole\n")
    assert time.monotonic() - t0 < 10          # the input's wait for a writer is 10 s
    p = run_cli("trace", "import", "lackey", fifo_in, "-o", "", timeout=30)
    assert assert_usage_error(p) == "emu: error: --output '': an empty path names no file\n"
    assert sorted(os.listdir(tmp_path)) == ["in", "out"]


def test_an_output_of_dash_is_refused_not_written_as_a_file_called_dash(tmp_path):
    """-o - wrote a file called '-' (where - as the input is standard input)."""
    src = tmp_path / "t.lackey"
    src.write_bytes(lackey(10))
    p = run_cli("trace", "import", "lackey", src, "-o", "-", cwd=tmp_path)
    assert assert_usage_error(p) == ("emu: error: --output '-': emu writes a file it can replace "
                                     "as a whole, not standard output: give the file's name "
                                     "(./- for a file called '-')\n")
    assert os.listdir(tmp_path) == ["t.lackey"]
    p = run_cli("trace", "import", "lackey", src, "-o", "./-", cwd=tmp_path)
    assert p.returncode == 0 and p.stdout == "./-: 10 records\n", p.stderr
    assert sorted(os.listdir(tmp_path)) == ["-", "t.lackey"]
    help_text = " ".join(run_cli("trace", "import", "--help").stdout.split())
    assert "a FIFO, a folder or - (standard output) is refused" in help_text


def test_an_output_over_its_input_or_inside_a_result_is_refused(tmp_path):
    """The import written over its own input replaced the trace, and one written
    into a result folder mixed into it: both refused before anything is read."""
    src = tmp_path / "t.lackey"
    src.write_bytes(lackey(10))
    link = tmp_path / "link.lackey"
    link.symlink_to(src)
    for out in (src, link):
        p = run_cli("trace", "import", "lackey", src, "-o", out)
        assert assert_usage_error(p) == (f"emu: error: {out}: is the trace being imported; "
                                         f"write it to another file\n")
    assert src.read_bytes() == lackey(10)
    with open(src, "rb") as stdin:                    # "-" is standard input: the same file
        p = subprocess.run(EMU + ["trace", "import", "lackey", "-", "-o", str(src)], stdin=stdin,
                           capture_output=True, text=True, env=cli_env(), timeout=60)
    assert (p.returncode, p.stderr) == (2, f"emu: error: {src}: is the trace being imported; "
                                           f"write it to another file\n")
    assert src.read_bytes() == lackey(10)
    res = tmp_path / "res"
    res.mkdir()
    (res / "summary.json").write_text('{"emu_version": "0", "config": {}}')
    p = run_cli("trace", "import", "lackey", src, "-o", res / "t.npz")
    assert assert_usage_error(p) == (f"emu: error: {res / 't.npz'}: inside {res}, which holds "
                                     f"a run; write outside it (emu replaces a result folder "
                                     f"as a whole)\n")
    # a summary.json another program wrote is no result of emu's
    (res / "summary.json").write_text('{"total": 3}')
    assert run_cli("trace", "import", "lackey", src, "-o", res / "t.npz").returncode == 0


@pytest.mark.parametrize("suffix", ["npz", "npy"])
def test_an_import_into_a_folder_not_there_yet_makes_it_as_report_does(tmp_path, suffix):
    src = tmp_path / "in.txt"
    src.write_bytes(lackey(10))
    out = tmp_path / "new" / "deeper" / f"t.{suffix}"
    p = subprocess.run(EMU + ["trace", "import", "lackey", str(src), "-o", str(out)],
                       capture_output=True, text=True, env=cli_env(), timeout=120)
    assert p.returncode == 0, p.stderr
    assert sorted(x.name for x in out.parent.iterdir()) == [out.name]
    # under a file, no folder can be made: one line
    p = subprocess.run(EMU + ["trace", "import", "lackey", str(src), "-o", str(src / "t.npz")],
                       capture_output=True, text=True, env=cli_env(), timeout=120)
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and "Traceback" not in p.stderr


# --------------------------------------------------------------------------
# emu trace import npz / npy: any trace emu reads, written as it reads fastest
# --------------------------------------------------------------------------


def counts(path) -> tuple:
    from emu.run.tlb import TLBSimConfig, simulate_trace
    r = simulate_trace(str(path), TLBSimConfig(entries=16, policy="lru"))
    return r["records"], r["hits"], r["misses"], r["compulsory_misses"]


@pytest.fixture
def records():
    rng = np.random.default_rng(7)
    n = 20_000
    addr = (rng.integers(0, 40, n).astype(np.uint64) << np.uint64(12)) + rng.integers(0, 4000, n)
    kind = rng.integers(0, 4, n).astype(np.uint8)
    size = rng.integers(1, 200, n).astype(np.uint32)           # some cross into the next page
    return addr.astype(np.uint64), kind, size


@pytest.mark.parametrize("out", ["t.npz", "t.npy"])
def test_a_compressed_npz_is_imported_stored_its_other_members_left_out(tmp_path, records, out):
    """np.savez_compressed's trace, with a provenance member, becomes a trace
    of stored addr, kind and size (nothing to inflate), the same records:
    the same counts, and a note names the member left out."""
    addr, kind, size = records
    src = tmp_path / "c.npz"
    np.savez_compressed(src, addr=addr, kind=kind, size=size, meta=np.array([1, 2]))
    p = run_cli("trace", "import", "npz", src, "-o", tmp_path / out)
    assert p.returncode == 0, p.stderr
    assert p.stdout == f"{tmp_path / out}: 20,000 records\n"
    assert " ".join(p.stderr.split()) == (f"emu: note: {src}: ignored meta: not trace arrays "
                                          f"(a trace is addr, kind and size)")
    got = np.load(tmp_path / out)
    if out.endswith(".npz"):
        import zipfile
        with zipfile.ZipFile(tmp_path / out) as z:
            assert {i.filename: i.compress_type for i in z.infolist()} == {
                f"{k}.npy": zipfile.ZIP_STORED for k in ("addr", "kind", "size")}
        got = {k: got[k] for k in got.files}
    for key, a in (("addr", addr), ("kind", kind), ("size", size)):
        np.testing.assert_array_equal(got[key], a)
    assert counts(tmp_path / out) == counts(src)
    assert counts(src)[1] > 0 and counts(src)[2] > 40          # hits and more than cold misses


def test_an_npy_of_addresses_is_imported_as_loads_of_one_byte(tmp_path, records):
    """A plain .npy of addresses (read as loads of one byte) becomes records
    with kind 1 (load) and size 1: the same counts; from a pipe too."""
    addr = records[0]
    src = tmp_path / "a.npy"
    np.save(src, addr)
    p = run_cli("trace", "import", "npy", src, "-o", tmp_path / "t.npz")
    assert p.returncode == 0, p.stderr
    got = np.load(tmp_path / "t.npz")
    np.testing.assert_array_equal(got["addr"], addr)
    assert (got["kind"] == 1).all() and (got["size"] == 1).all()
    assert got["size"].dtype == np.uint32 and got["kind"].dtype == np.uint8
    assert counts(tmp_path / "t.npz") == counts(src)
    with open(src, "rb") as f:                                  # standard input
        p = subprocess.run([*EMU, "trace", "import", "npy", "-", "-o", str(tmp_path / "p.npy")],
                           stdin=f, capture_output=True, text=True, env=cli_env())
    assert p.returncode == 0, p.stderr
    assert counts(tmp_path / "p.npy") == counts(src)


@pytest.mark.parametrize("fmt, name, it_is", [("npz", "a.npy", ".npy"),
                                              ("npy", "c.npz", ".npz"),
                                              ("lackey", "c.npz", ".npz"),
                                              ("npy", "t.lackey", "lackey text")])
def test_an_import_of_another_format_than_named_is_refused(tmp_path, records, fmt, name, it_is):
    np.save(tmp_path / "a.npy", records[0])
    np.savez_compressed(tmp_path / "c.npz", addr=records[0])
    (tmp_path / "t.lackey").write_bytes(lackey(10))
    p = run_cli("trace", "import", fmt, tmp_path / name, "-o", tmp_path / "o.npz")
    wanted = {"npz": ".npz", "npy": ".npy", "lackey": "lackey text"}[fmt]
    assert assert_usage_error(p) == (f"emu: error: {tmp_path / name}: not a {wanted} trace "
                                     f"(it is {it_is})\n")
    assert not (tmp_path / "o.npz").exists()


def test_an_npz_given_where_the_format_goes_is_told_its_format(tmp_path, records):
    np.savez_compressed(tmp_path / "c.npz", addr=records[0])
    p = run_cli("trace", "import", tmp_path / "c.npz", "-o", tmp_path / "o.npz")
    assert assert_usage_error(p).endswith(
        f"the format comes first: emu trace import npz {tmp_path / 'c.npz'} -o OUTPUT\n")


def test_the_command_line_names_the_formats_the_importer_reads():
    from emu.cli.trace import FORMATS
    from emu.workload.traces.writer import IMPORT_FORMATS
    assert FORMATS == tuple(IMPORT_FORMATS)

"""End-to-end tests of ``emu tlb`` and ``emu trace import lackey``.

1. Agreement with an independent cache simulator.  pycachesim is set up as a
   TLB: one fully associative level, one "cache line" per page, FIFO or LRU.
   It gets the same translations emu makes: every trace record
   ``[addr, addr + size)`` becomes the page-aligned addresses of each page it
   touches, in order (numpy, vectorised here, independently of emu).  Hits and
   misses must agree exactly, on two real program traces:

   * the first 300,000 records of the shipped trace ``emu/data/ls.npz``
     (valgrind lackey of ``ls -l /etc``; x86-64 addresses, some >= 2**32);
   * ``tests/data/cli_sort.npz``: the whole of
     ``valgrind --tool=lackey --trace-mem=yes --log-file=sort.lackey sort /etc/services``
     (valgrind 3.19.0, 1,326,945 records, 19 MB of text), converted with
     ``python -m emu.cli trace import lackey sort.lackey -o tests/data/cli_sort.npz``.

   pycachesim's scalar ``load(addr)`` truncates addresses to 32 bits, so the
   addresses go in as ONE Python list through its iterable API.

2. Bad input: one line on stderr, exit status 2, no traceback.
3. The default ``emu tlb`` (shipped trace): the table and the JSON.
4. ``--backend reference`` gives the numbers of the Cython backend.
"""

from __future__ import annotations

import functools
import gzip
import json
import os
import re
import resource
from pathlib import Path

import numpy as np
import pytest

from clirun import assert_usage_error, run_cli
from emu.report.columns import columns
from emu.run.tlb import TLBSimConfig, simulate_arrays, simulate_trace
from emu.workload.traces import default_trace_path, write_trace_npz

cachesim = pytest.importorskip("cachesim", reason="pycachesim is the independent oracle")
from cachesim import Cache, CacheSimulator, MainMemory  # noqa: E402

DATA = Path(__file__).resolve().parent / "data"
SORT_NPZ = DATA / "cli_sort.npz"
LACKEY_SMALL = DATA / "lackey_small.txt"
LS_PREFIX = 300_000                  # records of the shipped trace used by the matrix

KIND_SELECT = {"all": (0, 1, 2, 3), "data": (1, 2, 3), "inst": (0,)}
RESULT_KEYS = {"records", "translations", "hits", "misses", "miss_rate", "compulsory_misses",
               "config"}


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------


def run_json(*args):
    proc = run_cli("tlb", *args, "--json")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    return json.loads(proc.stdout)


@functools.lru_cache(maxsize=None)
def load_records(name):
    """(addr, kind, size) of a named real trace, read with numpy (not emu)."""
    if name == "ls":
        with np.load(default_trace_path()) as d:
            return d["addr"][:LS_PREFIX], d["kind"][:LS_PREFIX], d["size"][:LS_PREFIX]
    if name == "sort":
        with np.load(SORT_NPZ) as d:
            return d["addr"], d["kind"], d["size"]
    raise KeyError(name)


def expand_pages(addr, kind, size, kinds, page):
    """Page-aligned address of every page each selected record touches, in
    trace order: record [a, a + s) touches pages a // page .. (a + s - 1) // page."""
    keep = np.isin(kind, KIND_SELECT[kinds])
    a = addr[keep].astype(np.uint64)
    s = size[keep].astype(np.uint64)
    assert (s >= 1).all()
    top = np.uint64(2**64 - 1)
    end = np.where(a > top - (s - np.uint64(1)), top, a + (s - np.uint64(1)))  # last byte
    shift = np.uint64(page.bit_length() - 1)
    first, last = a >> shift, end >> shift
    n = (last - first + np.uint64(1)).astype(np.int64)
    starts = np.cumsum(n) - n
    offset = np.arange(int(n.sum()), dtype=np.int64) - np.repeat(starts, n)
    return (np.repeat(first, n) + offset.astype(np.uint64)) << shift


@functools.lru_cache(maxsize=None)
def page_list(name, kinds, page):
    """The expanded page addresses as one Python list (pycachesim's input)."""
    pages = expand_pages(*load_records(name), kinds, page)
    return pages.tolist(), len(np.unique(pages))


@functools.lru_cache(maxsize=None)
def oracle(name, kinds, page, entries, policy, sets=1):
    """(hits, misses, translations, distinct pages) from pycachesim."""
    lst, distinct = page_list(name, kinds, page)
    cache = Cache("TLB", sets=sets, ways=entries // sets, cl_size=page,
                  replacement_policy=policy.upper())
    mem = MainMemory()
    mem.load_to(cache)
    mem.store_from(cache)
    cs = CacheSimulator(cache, mem)
    cs.load(lst)                      # ONE iterable call: 64-bit addresses stay exact
    st = cache.stats()
    assert st["HIT_count"] + st["MISS_count"] == len(lst)
    return st["HIT_count"], st["MISS_count"], len(lst), distinct


def emu_sim(name, **config):
    addr, kind, size = load_records(name)
    return simulate_arrays(addr, kind, size, config=TLBSimConfig(**config))


# --------------------------------------------------------------------------
# the traces themselves
# --------------------------------------------------------------------------


def test_real_traces_are_what_the_matrix_needs():
    assert SORT_NPZ.stat().st_size < 1_500_000
    for name in ("ls", "sort"):
        addr, kind, size = load_records(name)
        assert addr.dtype == np.uint64 and kind.dtype == np.uint8 and size.dtype == np.uint32
        assert len(addr) >= LS_PREFIX
        assert (addr >= 2**32).sum() > 1000          # the 64-bit stack is exercised
        assert (addr < 2**32).sum() > 1000
        assert set(np.unique(kind)) <= {0, 1, 2, 3}
        assert (kind == 0).any() and (kind != 0).any()
        # some records cross a 4 KB page boundary (one record, two translations)
        assert ((addr % 4096) + size > 4096).any()
    # the sort trace is the whole lackey run of `sort /etc/services`
    assert len(load_records("sort")[0]) == 1_326_945


def test_expand_pages_on_hand_cases():
    addr = np.array([0, 4095, 8191, 2**40 + 5, 2**64 - 2], np.uint64)
    kind = np.array([1, 0, 2, 3, 1], np.uint8)
    size = np.array([1, 2, 4098, 8, 8], np.uint32)
    got = expand_pages(addr, kind, size, "all", 4096).tolist()
    assert got == [0, 0, 4096, 4096, 8192, 12288, 2**40, 2**64 - 4096]
    assert expand_pages(addr, kind, size, "inst", 4096).tolist() == [0, 4096]
    assert expand_pages(addr, kind, size, "data", 65536).tolist() == [0, 0, 2**40,
                                                                      2**64 - 65536]


# --------------------------------------------------------------------------
# 1. agreement with pycachesim
# --------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["cython", "reference"])
def test_record_at_the_top_of_the_address_space_does_not_wrap(backend):
    """pycachesim takes no address >= 2**63, so this edge is checked by hand:
    [2**64 - 2, +8) touches only the last page (clamped, as expand_pages does),
    never page 0."""
    addr = np.array([2**64 - 2, 0, 2**64 - 4096], np.uint64)
    size = np.array([8, 1, 1], np.uint32)
    kind = np.ones(3, np.uint8)
    assert expand_pages(addr, kind, size, "all", 4096).tolist() == [2**64 - 4096, 0,
                                                                     2**64 - 4096]
    r = simulate_arrays(addr, kind, size, TLBSimConfig(entries=2, policy="lru", backend=backend))
    assert (r["translations"], r["hits"], r["misses"], r["compulsory_misses"]) == (3, 1, 2, 2)


@pytest.mark.parametrize("kinds", ["all", "data", "inst"])
@pytest.mark.parametrize("page", [4096, 65536])
@pytest.mark.parametrize("entries", [16, 64, 256])
@pytest.mark.parametrize("policy", ["fifo", "lru"])
@pytest.mark.parametrize("trace", ["ls", "sort"])
def test_matches_pycachesim(trace, policy, entries, page, kinds):
    hits, misses, translations, distinct = oracle(trace, kinds, page, entries, policy)
    r = emu_sim(trace, entries=entries, policy=policy, page_size=page, kinds=kinds)
    assert (r["hits"], r["misses"]) == (hits, misses)
    assert r["translations"] == translations
    assert r["records"] == int(np.isin(load_records(trace)[1], KIND_SELECT[kinds]).sum())
    assert r["records_read"] == len(load_records(trace)[0])
    assert r["compulsory_misses"] == distinct        # every distinct page misses once
    assert r["miss_rate"] == misses / translations
    if policy == "fifo":
        # the 440's round-robin pointer over all ways is FIFO
        rr = emu_sim(trace, entries=entries, policy="round-robin", page_size=page, kinds=kinds)
        assert (rr["hits"], rr["misses"], rr["translations"]) == (hits, misses, translations)


def test_matrix_is_discriminating():
    """FIFO and LRU differ on these traces, so agreement is not vacuous."""
    for trace in ("ls", "sort"):
        fifo = oracle(trace, "all", 4096, 64, "fifo")
        lru = oracle(trace, "all", 4096, 64, "lru")
        assert fifo[1] != lru[1]
        assert oracle(trace, "all", 4096, 16, "lru")[1] > 10 * lru[1] > 0


@pytest.mark.parametrize("policy", ["fifo", "lru"])
@pytest.mark.parametrize("entries, ways", [(16, 2), (64, 4), (256, 8)])
def test_set_associative_matches_pycachesim(policy, entries, ways):
    hits, misses, translations, _ = oracle("sort", "all", 4096, entries, policy,
                                           sets=entries // ways)
    r = emu_sim("sort", entries=entries, ways=ways, policy=policy)
    assert (r["hits"], r["misses"], r["translations"]) == (hits, misses, translations)


def test_cli_json_on_sort_trace_matches_pycachesim():
    out = run_json(SORT_NPZ, "--entries", "16", "--policy", "lru", "--page-size", "65536",
                   "--kinds", "data")
    assert RESULT_KEYS <= set(out)
    hits, misses, translations, distinct = oracle("sort", "data", 65536, 16, "lru")
    assert (out["hits"], out["misses"], out["translations"]) == (hits, misses, translations)
    assert out["compulsory_misses"] == distinct
    assert out["records"] == int((load_records("sort")[1] != 0).sum())
    assert out["miss_rate"] == pytest.approx(misses / translations, rel=1e-15)
    assert out["config"] == {"entries": 16, "ways": 16, "policy": "lru", "page_size": 65536,
                             "kinds": "data", "seed": 0, "backend": "cython",
                             "chunk": 1 << 20}


@pytest.mark.parametrize("size, page", [("4K", 4096), ("4k", 4096), ("64K", 65536),
                                        ("64KiB", 65536), ("16M", 1 << 24), ("0x1000", 4096),
                                        ("1024", 1024)])
def test_page_size_takes_k_and_m_suffixes(size, page):
    out = run_json(LACKEY_SMALL, "--page-size", size)
    assert out["config"]["page_size"] == page
    assert out == run_json(LACKEY_SMALL, "--page-size", str(page))


def test_table_fits_the_terminal_and_wide_keeps_each_row_on_a_line(tmp_path):
    deep = tmp_path / ("d" * 60) / ("e" * 60) / ("跟踪" * 30)     # wide characters: 2 columns
    deep.mkdir(parents=True)
    trace = deep / "t.txt"
    trace.write_bytes(LACKEY_SMALL.read_bytes())
    fitted, wide = run_cli("tlb", trace), run_cli("tlb", trace, "--wide")
    assert fitted.returncode == wide.returncode == 0
    assert max(map(columns, fitted.stdout.splitlines())) <= 80
    assert f"trace         {trace}\n" in wide.stdout
    assert "".join(fitted.stdout.split()) == "".join(wide.stdout.split())


def test_cli_json_on_whole_shipped_trace_matches_pycachesim():
    """The default command, end to end, against the oracle on all 2.3 M records."""
    out = run_json("--policy", "fifo", "--entries", "64")
    with np.load(default_trace_path()) as d:
        pages = expand_pages(d["addr"], d["kind"], d["size"], "all", 4096)
    cache = Cache("TLB", sets=1, ways=64, cl_size=4096, replacement_policy="FIFO")
    mem = MainMemory()
    mem.load_to(cache)
    mem.store_from(cache)
    CacheSimulator(cache, mem).load(pages.tolist())
    st = cache.stats()
    assert out["records"] == 2_327_957
    assert (out["hits"], out["misses"]) == (st["HIT_count"], st["MISS_count"])
    assert out["translations"] == len(pages)
    assert out["compulsory_misses"] == len(np.unique(pages))


def test_lackey_text_gzip_npz_and_npy_agree_with_pycachesim(tmp_path):
    """The same records in every input format give the oracle's numbers."""
    text = LACKEY_SMALL.read_bytes()
    npz = tmp_path / "cli_small.npz"
    proc = run_cli("trace", "import", "lackey", LACKEY_SMALL, "-o", npz)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert re.fullmatch(r".*: [\d,]+ records\n", proc.stdout)
    with np.load(npz) as d:
        addr, kind, size = d["addr"], d["kind"], d["size"]
    assert len(addr) == sum(1 for ln in text.splitlines()
                            if ln.strip() and not ln.startswith(b"=="))
    npy = tmp_path / "cli_small.npy"
    rec = np.empty(len(addr), [("addr", "<u8"), ("kind", "u1"), ("size", "<u4")])
    rec["addr"], rec["kind"], rec["size"] = addr, kind, size
    np.save(npy, rec)
    for kinds, page in (("all", 4096), ("data", 1024), ("inst", 4096)):
        pages = expand_pages(addr, kind, size, kinds, page)
        cache = Cache("TLB", sets=1, ways=4, cl_size=page, replacement_policy="LRU")
        mem = MainMemory()
        mem.load_to(cache)
        mem.store_from(cache)
        CacheSimulator(cache, mem).load(pages.tolist())
        want = (cache.stats()["HIT_count"], cache.stats()["MISS_count"], len(pages))
        config = TLBSimConfig(entries=4, policy="lru", kinds=kinds, page_size=page)
        for path in (LACKEY_SMALL, Path(str(LACKEY_SMALL) + ".gz"), npz, npy):
            if kinds == "all":        # through the command line
                out = run_json(path, "--entries", "4", "--policy", "lru")
            else:
                out = simulate_trace(path, config)
            assert (out["hits"], out["misses"], out["translations"]) == want, (path, kinds)


# --------------------------------------------------------------------------
# 2. bad input
# --------------------------------------------------------------------------


def _lackey(tmp_path, name, text, gz=False):
    path = tmp_path / name
    data = text.encode()
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


GOOD = "==1== Lackey\nI  0401ab70,3\n S 1fff000758,8\n"


def _case(tmp_path, which):
    """(arguments after `emu`, fragments the message must contain)."""
    t = tmp_path
    if which == "missing":
        p = t / "nope.npz"
        return ["tlb", p], [str(p), "no such file"]
    if which == "directory":
        return ["tlb", t], [str(t), "directory"]
    if which == "empty-text":
        p = t / "empty.txt"
        p.write_bytes(b"")
        return ["tlb", p], [str(p), "empty"]
    if which == "empty-npz":
        p = t / "empty.npz"
        p.write_bytes(b"")
        return ["tlb", p], [str(p), "empty"]
    if which == "malformed-lackey":
        p = _lackey(t, "bad.txt", GOOD + "X garbage\nI  0401ab73,5\n")
        return ["tlb", p], [f"{p}:4", "malformed lackey line", "garbage"]
    if which == "malformed-lackey-gz":
        p = _lackey(t, "bad.txt.gz", GOOD + "L  zz,4\n", gz=True)
        return ["tlb", p], [f"{p}:4", "malformed lackey line"]
    if which == "malformed-lackey-deep":
        # past the reader's first 4 MB block: the line number must still be right
        lines = ["I  0401ab70,3"] * 400_000
        lines[350_000] = "I  0401ab70;3"
        p = _lackey(t, "deep.txt", "\n".join(lines) + "\n")
        return ["tlb", p], [f"{p}:350001", "malformed lackey line"]
    if which == "comments-only-lackey":
        p = _lackey(t, "comments.txt", "==4242== Lackey, an example Valgrind tool\n\n  \n")
        return ["tlb", p], [f"{p}: empty trace (it holds no records, only valgrind messages "
                            "or blank lines)"]
    if which == "npz-without-addr":
        p = t / "noaddr.npz"
        np.savez(p, kind=np.zeros(3, np.uint8))
        return ["tlb", p], [str(p), "'addr'"]
    if which == "float-addr":
        p = t / "float.npz"
        np.savez(p, addr=np.zeros(3, np.float64))
        return ["tlb", p], [str(p), "addr", "float64"]
    if which == "float32-addr-npy":
        p = t / "float.npy"
        np.save(p, np.zeros(3, np.float32))
        return ["tlb", p], [str(p), "float32"]
    if which == "kind-7":
        p = t / "kind7.npz"
        np.savez(p, addr=np.arange(3, dtype=np.uint64), kind=np.array([1, 7, 1], np.uint8))
        return ["tlb", p], [str(p), "kind", "7", "record 1"]
    if which == "size-0":
        p = t / "size0.npz"
        np.savez(p, addr=np.arange(3, dtype=np.uint64), kind=np.ones(3, np.uint8),
                 size=np.array([4, 4, 0], np.uint32))
        return ["tlb", p], [str(p), "size", "0", "record 2"]
    if which == "size-0-lackey":
        p = _lackey(t, "size0.txt", GOOD + " L 1fff000750,0\n")
        return ["tlb", p], [f"{p}:4", "size 0"]
    if which == "entries-not-divisible":
        return ["tlb", "--entries", "64", "--ways", "3"], ["64", "3", "entries"]
    if which == "page-size-3000":
        return ["tlb", "--page-size", "3000"], ["page size", "3000"]
    if which == "page-size-64X":
        return ["tlb", "--page-size", "64X"], ["--page-size", "invalid size", "'64X'"]
    if which == "unknown-policy":
        return ["tlb", "--policy", "bogus"], ["policy", "'bogus'"]
    if which == "unknown-kinds":
        return ["tlb", "--kinds", "code"], ["kinds", "'code'"]
    if which == "entries-0":
        return ["tlb", "--entries", "0"], ["entries", "0"]
    if which == "entries-abc":
        return ["tlb", "--entries", "abc"], ["--entries", "'abc'"]
    if which == "unknown-backend":
        return ["tlb", "--backend", "gpu"], ["backend", "'gpu'"]
    raise KeyError(which)


BAD_INPUTS = ["missing", "directory", "empty-text", "comments-only-lackey", "empty-npz",
              "malformed-lackey",
              "malformed-lackey-gz", "malformed-lackey-deep", "npz-without-addr", "float-addr",
              "float32-addr-npy", "kind-7", "size-0", "size-0-lackey", "entries-not-divisible",
              "page-size-3000", "page-size-64X", "unknown-policy", "unknown-kinds", "entries-0", "entries-abc",
              "unknown-backend"]


@pytest.mark.parametrize("which", BAD_INPUTS)
def test_bad_input_is_one_line_and_exit_2(tmp_path, which):
    args, needles = _case(tmp_path, which)
    assert_usage_error(run_cli(*args), *needles)


@pytest.mark.parametrize("which", ["missing", "empty-text", "comments-only-lackey",
                                   "malformed-lackey",
                                   "malformed-lackey-gz", "malformed-lackey-deep",
                                   "size-0-lackey"])
def test_trace_import_bad_input_leaves_destination_untouched(tmp_path, which):
    args, needles = _case(tmp_path, which)
    src = args[1]
    dst = tmp_path / "out" / "cli_dest.npz"
    dst.parent.mkdir()
    write_trace_npz(dst, np.arange(10, dtype=np.uint64) << np.uint64(33))
    before = dst.read_bytes()
    proc = run_cli("trace", "import", "lackey", src, "-o", dst)
    assert_usage_error(proc, *needles)
    assert dst.read_bytes() == before
    assert sorted(os.listdir(dst.parent)) == ["cli_dest.npz"]      # no temporary left
    # and with no destination yet, none is created
    fresh = dst.parent / "cli_fresh.npz"
    assert_usage_error(run_cli("trace", "import", "lackey", src, "-o", fresh), *needles)
    assert sorted(os.listdir(dst.parent)) == ["cli_dest.npz"]


def _limit_memory():
    resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))


def test_entries_too_large_for_the_fast_path(tmp_path):
    # memory-capped: a fix that accepts the value must not eat the machine
    proc = run_cli("tlb", "--entries", str(2**31), LACKEY_SMALL, preexec_fn=_limit_memory)
    assert_usage_error(proc, "entries")


def test_seed_too_large_for_the_fast_path():
    proc = run_cli("tlb", "--policy", "random", "--seed", str(2**64), LACKEY_SMALL)
    assert_usage_error(proc, "seed")


def test_entries_too_large_for_memory():
    proc = run_cli("tlb", "--entries", str(2**30), LACKEY_SMALL, preexec_fn=_limit_memory)
    assert_usage_error(proc, "entries")


def test_usage_errors_of_the_parser_are_one_line():
    for args, needle in ((["tlb", "--policy"], "--policy"),
                         (["tlb", "a", "b"], "unrecognized"),
                         (["trace", "import", "csv", "x", "-o", "y"], "csv"),
                         (["trace", "import", "lackey", LACKEY_SMALL], "-o")):
        assert_usage_error(run_cli(*args), needle)


# --------------------------------------------------------------------------
# 3. the default command
# --------------------------------------------------------------------------


def _number(text):
    return int(text.replace(",", ""))


def test_default_table():
    proc = run_cli("tlb")
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    rows = {}
    for line in proc.stdout.rstrip("\n").split("\n"):
        m = re.fullmatch(r"(\S(?:.*?\S)?)\s{2,}(\S.*)", line.strip())
        assert m, line
        rows[m.group(1)] = m.group(2)
    assert list(rows) == ["trace", "TLB", "records", "translations", "hits", "misses",
                          "compulsory", "miss rate"]
    assert rows["trace"] == default_trace_path()
    assert rows["TLB"] == "64 entries, fully associative, fifo, 4096-byte pages"
    m = re.fullmatch(r"([\d,]+) of ([\d,]+) \(all\)", rows["records"])
    assert m and _number(m.group(1)) == _number(m.group(2)) == 2_327_957
    translations, hits, misses = (_number(rows[k]) for k in ("translations", "hits", "misses"))
    assert hits + misses == translations
    assert 0 < _number(rows["compulsory"]) <= misses
    m = re.fullmatch(r"(\d+\.\d{4}) %", rows["miss rate"])
    assert m and float(m.group(1)) == round(100 * misses / translations, 4)
    # the same numbers as the API
    r = simulate_trace(default_trace_path())
    assert (translations, hits, misses, _number(rows["compulsory"])) == (
        r["translations"], r["hits"], r["misses"], r["compulsory_misses"])


def test_default_json_equals_simulate_trace():
    out = run_json()
    r = simulate_trace(default_trace_path())
    assert RESULT_KEYS <= set(out)
    assert out == json.loads(json.dumps(r))
    assert out["hits"] + out["misses"] == out["translations"]
    assert out["config"]["entries"] == 64 and out["config"]["policy"] == "fifo"


# --------------------------------------------------------------------------
# 4. the reference backend
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def prefix_npz(tmp_path_factory):
    with np.load(default_trace_path()) as d:
        addr, kind, size = d["addr"][:20_000], d["kind"][:20_000], d["size"][:20_000]
    assert (addr >= 2**32).any()
    path = tmp_path_factory.mktemp("cli") / "cli_prefix.npz"
    write_trace_npz(path, addr, kind, size)
    return path


CLI_OPTIONS = {
    "default": [],
    "lru-data": ["--policy", "lru", "--entries", "16", "--kinds", "data"],
    "random-4way-chunk": ["--policy", "random", "--seed", "7", "--entries", "32", "--ways", "4",
                          "--chunk", "777"],
}


@pytest.mark.parametrize("name", list(CLI_OPTIONS))
def test_reference_backend_cli_gives_the_same_json_numbers(prefix_npz, name):
    options = CLI_OPTIONS[name]
    ref = run_json(prefix_npz, *options, "--backend", "reference")
    cy = run_json(prefix_npz, *options)
    assert ref["config"].pop("backend") == "reference"
    assert cy["config"].pop("backend") == "cython"
    assert ref == cy
    assert cy["records_read"] == 20_000
    assert cy["misses"] > 0 and cy["hits"] > 0


@pytest.mark.parametrize("config", [
    dict(policy="round-robin", entries=16, page_size=1024, kinds="inst"),
    dict(policy="nv", entries=64, ways=8, page_size=65536),
    dict(policy="lru", entries=256, ways=2, kinds="data"),
    dict(policy="fifo", entries=8, chunk=1000),
    dict(policy="random", entries=16, seed=2**64 - 1),
], ids=["rr-1k-inst", "nv-8way-64k", "lru-2way-data", "fifo-chunk", "random-max-seed"])
def test_reference_backend_api_gives_the_same_numbers(prefix_npz, config):
    ref = simulate_trace(prefix_npz, TLBSimConfig(backend="reference", **config))
    cy = simulate_trace(prefix_npz, TLBSimConfig(**config))
    assert ref.pop("config")["backend"] == "reference"
    assert cy.pop("config")["backend"] == "cython"
    assert ref == cy
    assert cy["misses"] > 0


@pytest.mark.parametrize("policy", ["fifo", "lru", "round-robin", "nv"])
def test_a_seed_is_refused_by_a_policy_that_uses_none(policy):
    """Only the random policy draws: a --seed given to another was ignored."""
    proc = run_cli("tlb", "--policy", policy, "--seed", "5", LACKEY_SMALL)
    assert assert_usage_error(proc) == \
        f"emu: error: --seed seeds the random policy; --policy {policy} uses none\n"

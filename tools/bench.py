#!/usr/bin/env python3
"""emu's benchmarks: rates measured side by side in one run, reported as ratios.

    python tools/bench.py                 # tlb + system sections
    python tools/bench.py --section tlb --section memory --big 100000000

Sections:

* ``tlb``    — translations per second of ``emu tlb``'s Cython path, the
  pure-Python reference, pycachesim (one fully associative level, line size =
  page size, addresses as one list through its iterable API) and a numpy
  streaming floor ``(addr >> 12).sum()``, on the shipped trace of a real
  program (``ls -l /etc`` under valgrind lackey), 64 entries, FIFO and LRU,
  4 KB pages.  The hit and miss counts of emu and pycachesim must be equal.
  Also the hit loop alone (``cython_hit_loop_per_s``: the same records with
  their pages folded onto 48, so that nothing misses after the first 48):
  the ceiling of the Cython path on this machine, to set against
  ``needed_for_20x_pycachesim``; and the memory traffic each implies against
  the machine's plain read bandwidth (numpy ``sum`` over 64 MB).
  ``miss_ns``: what a miss adds to a hit, from the two rates.
  ``vector_scan`` says whether the kernel ran its AVX2 hit scan (the CPU's
  answer) and ``scans`` how often it did (``vector``) and how often it
  scanned record by record (``scalar``, where misses came close together);
  ``scalar`` repeats the Cython rates with the vector scan turned off.
  ``cython_vs_numpy_floor``, the kernel's own bar, is taken side by side:
  the floor, the kernel and its scalar scan called in turn, ``--repeat``
  rounds (each policy's ``numpy_floor_per_s``), as the floor alone moves by
  a third between runs minutes apart on a shared machine.
* ``e2e``    — ``emu tlb FILE`` as a whole process (start-up, reading and
  the kernel) against pycachesim as a whole process reading the same file
  the simplest way (``np.load`` for ``.npz`` / ``.npy``, a Python loop over
  ``gzip.open`` lines for lackey) and feeding its fastest API one list of
  page addresses; 64 entries, FIFO (and LRU on the ``.npy``: ``npy_lru``).
  For a stored ``.npz`` (what ``emu trace import`` writes), a compressed
  ``.npz``, a structured ``.npy`` (``--e2e-records`` records each) and gzip'd
  lackey text (``--e2e-lackey-records``).  The ratio is pycachesim's wall
  time over emu's, each the fastest of its runs (``_median``: of the
  medians, which a shared machine moves by a third from run to run; and,
  steadier on a loaded machine, its CPU time over emu's); hits and misses
  must be equal.  Where emu's CPU time goes: start-up (``emu tlb`` on a
  trace of one record: the interpreter, numpy and emu loaded), reading
  (every chunk of the trace as ``emu tlb``'s read-ahead thread cuts it, no
  kernel) and the rest (the kernel).  ``gzip_inflate`` says which inflate
  emu used (ISA-L's with ``pip install -e ".[fast]"``).  The files are made
  once and kept in ``--e2e-dir``; each run of either tool starts after its
  file has been read through, so both find it in the page cache.  emu's
  modules are compiled to bytecode first, as an install does (``bytecode``):
  a checkout run with ``PYTHONDONTWRITEBYTECODE`` set would otherwise compile
  them from source in every process, which pycachesim's installed modules
  never do.  For the compressed ``.npz``, ``bound_s``: the start-up of
  the command line (``emu tlb --help``, ``emu_cli_startup_s``: the
  interpreter and emu's command line, not numpy), where ``emu tlb`` starts
  inflating the largest member, plus inflating it in one stream
  (``largest_member_inflate_s``, in process, with the inflate emu uses),
  which no reader can split across cores; ``bound_vs_pycachesim`` is the
  best ratio such a reader could reach here.  ``all_members_inflate_s``:
  every member inflated once, one after another, on one thread: the CPU
  of emu's reading (``emu_cpu_reading_s``) beyond it is the reader's own.
* ``system`` — guest accesses per second of a full-system run (1 VM, 1 vCPU,
  direct/asm/pfn-cache, one host task; ``--set KEY=VALUE`` changes it, e.g.
  ``--set machine.core=e500``) against pycachesim's plain-TLB rate on the same
  number of accesses, and the share of the run's time spent outside the fast
  path's loops.
* ``memory`` — peak RSS of ``emu tlb`` on a memory-mapped ``.npy`` trace of
  ``--big`` records, against the file's size, and of ``emu run`` on a guest
  whose process replays that trace, for two trace lengths.
* ``sweep``  — runs per minute of one sweep (16 runs) with 1 and 2 local
  workers and with a 2-worker Dask LocalCluster on loopback.
* ``scaling`` — wall seconds per simulated guest access of ``emu run`` with
  1, 2, 4, 8 vCPUs (one CPU each) and 1, 2, 4 VMs: it should stay flat.

Every rate is best-of-``--repeat``; the machine is shared, so compare ratios
taken in one run, not absolute numbers across runs.
"""

from __future__ import annotations

import argparse
import compileall
import functools
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import emu._fastpath as fastpath  # noqa: E402
from emu.run import TLBSimConfig, simulate_arrays  # noqa: E402
from emu.workload.traces import default_trace_path, open_trace  # noqa: E402
from emu.workload.traces import lackey as trace_lackey  # noqa: E402


def best(fn, repeat: int) -> tuple[float, object]:
    """(fastest wall seconds, last result) of ``repeat`` calls."""
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def side_by_side(fns: list, repeat: int) -> list:
    """[(fastest wall seconds, last result)] of each of ``fns``, their calls
    taken in turn, ``repeat`` rounds: a ratio of two of them is of times
    taken in the same minutes, whatever else the machine did meanwhile."""
    times = [[] for _ in fns]
    outs = [None] * len(fns)
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            t = time.perf_counter()
            outs[i] = fn()
            times[i].append(time.perf_counter() - t)
    return [(min(t), o) for t, o in zip(times, outs)]


def scalar_scans(fn):
    """``fn`` called with the kernel's vector scan turned off."""
    def call():
        was = fastpath.set_vector_scan(False)
        try:
            return fn()
        finally:
            fastpath.set_vector_scan(was)
    return call


def load_trace(path: str):
    chunks = list(open_trace(path).chunks(1 << 22))
    addr = np.concatenate([c.addr for c in chunks])
    kind = np.concatenate([c.kind for c in chunks])
    sizes = [c.size for c in chunks]
    size = None if sizes[0] is None else np.concatenate(sizes)
    return addr, kind, size


def page_addresses(addr, size, shift: int = 12) -> np.ndarray:
    """The page-aligned address of every page each record touches, in order."""
    first = addr >> np.uint64(shift)
    if size is None:
        return first << np.uint64(shift)
    last = (addr + size.astype(np.uint64) - np.uint64(1)) >> np.uint64(shift)
    n = (last - first + np.uint64(1)).astype(np.int64)
    rep = np.repeat(first, n)
    offs = np.arange(len(rep)) - np.repeat(np.cumsum(n) - n, n)
    return (rep + offs.astype(np.uint64)) << np.uint64(shift)


def pycachesim_run(pages: list, entries: int, policy: str, page: int = 4096):
    from cachesim import Cache, CacheSimulator, MainMemory
    mem = MainMemory()
    cache = Cache("TLB", 1, entries, page, policy.upper())
    mem.load_to(cache)
    mem.store_from(cache)
    cs = CacheSimulator(cache, mem)
    cs.load(pages)                    # the iterable API: no aliasing above 2**32
    st = cache.stats()
    return st["HIT_count"], st["MISS_count"]


def section_tlb(args) -> dict:
    addr, kind, size = load_trace(args.trace)
    pages = page_addresses(addr, size)
    n = len(pages)
    page_list = pages.tolist()
    out = {"trace": args.trace, "records": int(len(addr)), "translations": n,
           "vector_scan": fastpath.vector_scan_available()}
    def floor() -> int:
        return int((addr >> np.uint64(12)).sum())
    floor_s, _ = best(floor, args.repeat)
    out["numpy_floor_per_s"] = len(addr) / floor_s
    block = np.ones(8 << 20, np.uint64)                 # 64 MB: well past the caches
    read_s, _ = best(lambda: int(block.sum()), args.repeat)
    out["read_bandwidth_gb_s"] = block.nbytes / read_s / 1e9
    per_record = addr.nbytes + kind.nbytes + (0 if size is None else size.nbytes)
    out["trace_bytes_per_record"] = per_record / len(addr)
    block = None                                        # the 64 MB freed
    ref_n = min(len(addr), 200_000)
    # the same records on 48 pages (same offsets, sizes and kinds): all hits after warm-up
    _, page_ids = np.unique(addr >> np.uint64(12), return_inverse=True)
    folded = ((page_ids.ravel() % 48).astype(np.uint64) * np.uint64(21) << np.uint64(12)) \
        | (addr & np.uint64(4095))
    for policy in ("fifo", "lru"):
        cfg = TLBSimConfig(entries=64, policy=policy, page_size=4096, chunk=1 << 22)
        # the floor beside the kernel, vector and scalar: their ratios are
        # what the kernel is held to, and the floor alone moved by a third
        # between runs minutes apart
        run_all = functools.partial(simulate_arrays, addr, kind, size, config=cfg)
        (fl_s, _), (cy_s, res), (sc_s, sc_res) = side_by_side(
            [floor, run_all, scalar_scans(run_all)], args.repeat)
        pcs_s, (hits, misses) = best(lambda: pycachesim_run(page_list, 64, policy), args.repeat)
        assert (res["hits"], res["misses"]) == (hits, misses), (policy, res, hits, misses)
        assert res["translations"] == n
        rcfg = TLBSimConfig(entries=64, policy=policy, page_size=4096, backend="reference")
        ref_s, ref = best(lambda: simulate_arrays(addr[:ref_n], kind[:ref_n],
                                                  None if size is None else size[:ref_n],
                                                  config=rcfg), 1)
        cy_small_s, cy_small = best(lambda: simulate_arrays(
            addr[:ref_n], kind[:ref_n], None if size is None else size[:ref_n],
            config=TLBSimConfig(entries=64, policy=policy)), args.repeat)
        assert {k: ref[k] for k in ("hits", "misses")} == {k: cy_small[k] for k in ("hits", "misses")}
        hit_s, hit_res = best(lambda: simulate_arrays(folded, kind, size, config=cfg), args.repeat)
        tlb = fastpath.PlainTLB(64, 64, policy, 12)
        tlb.run(addr, kind, size)
        scans = {"vector": tlb.vector_scans, "scalar": tlb.scalar_scans}
        sc_hit_s, _ = best(scalar_scans(lambda: simulate_arrays(folded, kind, size, config=cfg)),
                           args.repeat)
        assert (sc_res["hits"], sc_res["misses"]) == (hits, misses)
        cy_rate = n / cy_s
        out[policy] = {
            "hits": res["hits"], "misses": res["misses"],
            "cython_per_s": cy_rate, "pycachesim_per_s": n / pcs_s,
            "cython_hit_loop_per_s": hit_res["translations"] / hit_s,
            "hit_loop_misses": hit_res["misses"],
            "miss_ns": (cy_s - hit_s * n / hit_res["translations"]) / res["misses"] * 1e9,
            "scans": scans,
            "needed_for_20x_pycachesim": 20 * n / pcs_s,
            "cython_gb_s": out["trace_bytes_per_record"] * len(addr) / cy_s / 1e9,
            "needed_for_20x_gb_s": out["trace_bytes_per_record"] * 20 * n / pcs_s / 1e9,
            "reference_per_s": ref["translations"] / ref_s,
            "cython_vs_pycachesim": cy_rate / (n / pcs_s),
            "numpy_floor_per_s": len(addr) / fl_s,
            "cython_vs_numpy_floor": fl_s / cy_s,
            "cython_vs_reference": (cy_small["translations"] / cy_small_s)
            / (ref["translations"] / ref_s),
            "scalar": {"cython_per_s": n / sc_s, "cython_hit_loop_per_s": n / sc_hit_s,
                       "cython_vs_numpy_floor": fl_s / sc_s},
        }
    return out


# pycachesim reading a trace file the simplest way: np.load, then the pages
# every record touches (as emu counts translations), one list to its iterable API
PYCACHESIM_NP = """
import sys
import numpy as np
from cachesim import Cache, CacheSimulator, MainMemory
t = np.load(sys.argv[1])
addr, size = t["addr"], t["size"].astype(np.uint64)
first, last = addr >> np.uint64(12), (addr + size - np.uint64(1)) >> np.uint64(12)
n = (last - first + np.uint64(1)).astype(np.int64)
pages = np.repeat(first, n) + (np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)).astype(np.uint64)
mem, tlb = MainMemory(), Cache("TLB", 1, 64, 4096, sys.argv[2])
mem.load_to(tlb)
mem.store_from(tlb)
CacheSimulator(tlb, mem).load((pages << np.uint64(12)).tolist())
st = tlb.stats()
print(st["HIT_count"], st["MISS_count"])
"""

# ... and lackey text, line by line
PYCACHESIM_LACKEY = """
import gzip, sys
from cachesim import Cache, CacheSimulator, MainMemory
pages = []
with gzip.open(sys.argv[1], "rb") as f:
    for line in f:
        if line.startswith(b"=="):
            continue
        _, rec = line.split()
        a, s = rec.split(b",")
        a = int(a, 16)
        pages.extend(range(a >> 12 << 12, ((a + int(s) - 1) >> 12) + 1 << 12, 4096))
mem, tlb = MainMemory(), Cache("TLB", 1, 64, 4096, sys.argv[2])
mem.load_to(tlb)
mem.store_from(tlb)
CacheSimulator(tlb, mem).load(pages)
st = tlb.stats()
print(st["HIT_count"], st["MISS_count"])
"""

# emu reading a trace without simulating it
EMU_READ_ONLY = """
import os
import sys
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")     # as emu's command line sets it
import emu.cli.tlb
from emu.run.tlb import TLBSimConfig, _sizes_kept_where_they_count
from emu.workload.traces import open_trace
config = TLBSimConfig()
with open_trace(sys.argv[1]) as t:      # what emu tlb's read-ahead thread does, no kernel
    n = sum(len(c) for c in _sizes_kept_where_they_count(
        t.chunks(config.chunk, exact=False), config))
print(n)
"""


def e2e_files(d: str, n: int, n_lackey: int) -> dict:
    """The benchmark's traces in ``d`` (made once): {label: path}."""
    import gzip
    import zipfile
    from emu.workload.traces import synthetic_trace
    os.makedirs(d, exist_ok=True)
    paths = {"npz_stored": os.path.join(d, f"t{n}.npz"),
             "npz_deflated": os.path.join(d, f"t{n}.deflated.npz"),
             "npy": os.path.join(d, f"t{n}.npy"),
             "lackey_gz": os.path.join(d, f"t{n_lackey}.lackey.gz")}
    if all(os.path.exists(p) for p in paths.values()):
        return paths
    dt = np.dtype([("addr", "<u8"), ("kind", "u1"), ("size", "<u4")])
    step = 1 << 21
    with open(paths["npy"] + ".part", "wb") as f:
        np.lib.format.write_array_header_1_0(
            f, {"descr": np.lib.format.dtype_to_descr(dt), "fortran_order": False, "shape": (n,)})
        for i, start in enumerate(range(0, n, step)):
            c = synthetic_trace(min(step, n - start), seed=i)
            rec = np.empty(len(c), dt)
            rec["addr"], rec["kind"], rec["size"] = c.addr, c.kind, c.size
            f.write(rec.tobytes())
    os.replace(paths["npy"] + ".part", paths["npy"])
    rec = np.load(paths["npy"], mmap_mode="r")
    for label, method in (("npz_stored", zipfile.ZIP_STORED), ("npz_deflated", zipfile.ZIP_DEFLATED)):
        with zipfile.ZipFile(paths[label] + ".part", "w", method) as zf:
            for name in dt.names:
                with zf.open(name + ".npy", "w", force_zip64=True) as m:
                    np.lib.format.write_array_header_1_0(
                        m, {"descr": np.lib.format.dtype_to_descr(dt[name]),
                            "fortran_order": False, "shape": (n,)})
                    for start in range(0, n, step):
                        m.write(np.ascontiguousarray(rec[name][start:start + step]).tobytes())
        os.replace(paths[label] + ".part", paths[label])
    letters = np.array(["I  ", " L ", " S ", " M "])
    with gzip.open(paths["lackey_gz"] + ".part", "wt", compresslevel=6) as f:
        for start in range(0, n_lackey, step):
            r = rec[start:min(n_lackey, start + step)]
            f.write("".join(f"{p}{a:08x},{s}\n" for p, a, s in zip(
                letters[r["kind"]], r["addr"].tolist(), r["size"].tolist())))
    os.replace(paths["lackey_gz"] + ".part", paths["lackey_gz"])
    return paths


def warm(path: str) -> None:
    """Read ``path`` through once, so that a run starts with it in the page
    cache (this machine may evict pages of a file read a minute before)."""
    with open(path, "rb", buffering=0) as f:
        while f.read(1 << 24):
            pass


def process_time(cmd: list, repeat: int,
                 path: str | None = None) -> tuple[float, float, str, float]:
    """(fastest wall seconds, least CPU seconds, stdout, median wall seconds)
    of a whole process, over ``repeat`` runs, each after ``path`` (if given)
    is read through.
    The CPU time (user + system, from the rusage of reaped children) does
    not count the time spent waiting for a core, so it is the steadier
    figure on a loaded machine."""
    walls, cpus, out = [], [], ""
    for _ in range(repeat):
        if path is not None:
            warm(path)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        p = subprocess.run(cmd, capture_output=True, text=True, cwd=os.path.dirname(HERE))
        walls.append(time.perf_counter() - t)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        assert p.returncode == 0, p.stderr
        out = p.stdout
    return min(walls), min(cpus), out, statistics.median(walls)


def inflate_members(path: str, largest_only: bool = True) -> int:
    """Inflate the largest member of a deflated ``.npz`` (or all of them, one
    after another) as emu's reader does (one stream, piece by piece, its CRC
    checked), on this thread; the bytes inflated."""
    from emu._inflate import Inflater
    with open_trace(path) as t:
        members = sorted(t._members.values(), key=lambda m: m.info.file_size)
        out = 0
        for m in members[-1:] if largest_only else members:
            r = Inflater(t.source.pread, m.offset, m.info)
            out += sum(map(len, iter(r.piece, b"")))
        return out


def section_e2e(args) -> dict:
    d = args.e2e_dir or os.path.join(tempfile.gettempdir(), "emu-bench-e2e")
    paths = e2e_files(d, args.e2e_records, args.e2e_lackey_records)
    emu = [sys.executable, "-m", "emu.cli"]
    compiled = compileall.compile_dir(os.path.join(os.path.dirname(HERE), "emu"), quiet=1)
    one = os.path.join(d, "one-record.npy")
    np.save(one, np.array([4096], np.uint64))
    start_s, start_cpu, _, _ = process_time(emu + ["tlb", one], args.repeat)
    cli_s = process_time(emu + ["tlb", "--help"], args.repeat)[0]
    out = {"records": args.e2e_records, "lackey_records": args.e2e_lackey_records,
           "emu_startup_s": start_s, "emu_startup_cpu_s": start_cpu, "emu_cli_startup_s": cli_s,
           "bytecode": "compiled" if compiled else "compiling failed",
           "gzip_inflate": "isal" if trace_lackey._FastGzipFile is not None else "zlib"}
    runs = [(label, path, "fifo") for label, path in paths.items()]
    runs.append(("npy_lru", paths["npy"], "lru"))
    reads: dict = {}
    for label, path, policy in runs:
        if args.e2e_format and label not in args.e2e_format:
            continue
        emu_s, emu_cpu, text, emu_med = process_time(
            emu + ["tlb", path, "--json", "--policy", policy], args.repeat, path)
        res = json.loads(text)
        script = PYCACHESIM_LACKEY if label == "lackey_gz" else PYCACHESIM_NP
        pcs_s, pcs_cpu, pcs, pcs_med = process_time(
            [sys.executable, "-c", script, path, policy.upper()], args.pcs_repeat, path)
        assert tuple(map(int, pcs.split())) == (res["hits"], res["misses"]), (label, pcs, res)
        if path not in reads:                       # the same reading whatever the policy
            reads[path] = process_time([sys.executable, "-c", EMU_READ_ONLY, path],
                                       args.repeat, path)
        read_cpu = reads[path][1]
        if label == "npz_deflated":
            warm(path)
            inflate_s = best(lambda: inflate_members(path), args.repeat)[0]
            all_s = best(lambda: inflate_members(path, largest_only=False), args.repeat)[0]
            out["npz_deflated_bound"] = {
                "largest_member_inflate_s": inflate_s, "bound_s": cli_s + inflate_s,
                "bound_vs_pycachesim": pcs_s / (cli_s + inflate_s),
                "all_members_inflate_s": all_s}
        out[label] = {
            "file_bytes": os.path.getsize(path), "translations": res["translations"],
            "hits": res["hits"], "misses": res["misses"],
            "emu_s": emu_s, "pycachesim_s": pcs_s, "emu_vs_pycachesim": pcs_s / emu_s,
            "emu_s_median": emu_med, "pycachesim_s_median": pcs_med,
            "emu_vs_pycachesim_median": pcs_med / emu_med,
            "emu_cpu_s": emu_cpu, "pycachesim_cpu_s": pcs_cpu,
            "emu_vs_pycachesim_cpu": pcs_cpu / emu_cpu,
            "emu_translations_per_s": res["translations"] / emu_s,
            "emu_cpu_startup_s": start_cpu,
            "emu_cpu_reading_s": read_cpu - start_cpu,
            "emu_cpu_rest_s": emu_cpu - read_cpu,
        }
    return out


def section_system(args) -> dict:
    from emu.params import default_scenario
    from emu.run import run
    over = ["kvm.strategy=direct", "kvm.handler=asm", "kvm.pfn_source=pin-all",
            *args.set, f"duration_ms={args.system_ms}"]
    # warm the imports and the extension once
    run(default_scenario(), over[:-1] + ["duration_ms=1"])
    secs, res = best(lambda: run(default_scenario(), over), args.repeat)
    s = res.summary
    g = s["guest_accesses"]
    host = s["tlb"]["host"]["accesses"]
    # pycachesim on the same number of accesses: a plain 64-entry FIFO TLB
    rng = np.random.default_rng(1)
    pages = ((rng.integers(0, 48, g) << 12) + 0x1000_0000).tolist()
    pcs_s, _ = best(lambda: pycachesim_run(pages, 64, "fifo"), args.repeat)
    inside, prof_wall = fast_path_share(over)
    return {
        "scenario": over, "guest_accesses": g, "host_accesses": host,
        "wall_s": secs, "guest_accesses_per_s": g / secs,
        "pycachesim_per_s": g / pcs_s, "system_vs_pycachesim": (g / secs) / (g / pcs_s),
        "share_outside_fast_path": 1 - inside / prof_wall,
        "fast_path_guest_accesses_per_s": g / inside if inside else None,
    }


class _TimedCtx:
    """Forwards everything to a fast-path context, timing its run_virt/run_native calls."""

    def __init__(self, ctx, clock):
        object.__setattr__(self, "_ctx", ctx)
        object.__setattr__(self, "_clock", clock)

    def __getattr__(self, name):
        attr = getattr(self._ctx, name)
        if name in ("run_virt", "run_native"):
            clock = self._clock

            def timed(*a):
                t = time.perf_counter()
                try:
                    return attr(*a)
                finally:
                    clock[0] += time.perf_counter() - t
            return timed
        return attr

    def __setattr__(self, name, value):
        setattr(self._ctx, name, value)


def fast_path_share(overrides) -> tuple[float, float]:
    """(seconds inside the fast path's loops, wall seconds) of one run."""
    from emu.params import default_scenario
    from emu.machine import Machine
    from emu.run import resolve
    clock = [0.0]
    t = time.perf_counter()
    m = Machine(resolve(default_scenario(), overrides))
    for th in m.vcpus + m.host_tasks + m.qemu:
        th.ctx = _TimedCtx(th.ctx, clock)
    m.run()
    return clock[0], time.perf_counter() - t


# NOTE: the peak RSS is read from /proc/self/status (VmHWM), not getrusage's
# ru_maxrss, which Linux carries across execve from the parent that forked the
# child: it would report the benchmark's own peak, not emu's.
PEAK_RSS_CODE = (
    "import sys; from emu.cli import main; rc = main({args}); "
    "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0]; "
    "print(int(hwm.split()[1]), file=sys.stderr); sys.exit(rc)")


def emu_peak_rss(command: str, path: str) -> tuple[dict, int, float]:
    """Run ``emu COMMAND PATH --json`` in a fresh interpreter: its JSON output,
    its peak RSS in bytes and its wall seconds."""
    code = PEAK_RSS_CODE.format(args=f"[{command!r}, sys.argv[1], '--json']")
    t = time.perf_counter()
    p = subprocess.run([sys.executable, "-c", code, path], capture_output=True, text=True,
                       cwd=os.path.dirname(HERE))
    secs = time.perf_counter() - t
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout), int(p.stderr.strip().splitlines()[-1]) * 1024, secs


def section_memory(args) -> dict:
    n = args.big
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "big.npy")
        dt = np.dtype([("addr", "<u8"), ("kind", "u1")])
        with open(path, "wb") as f:
            np.lib.format.write_array_header_1_0(
                f, {"descr": np.lib.format.dtype_to_descr(dt), "fortran_order": False,
                    "shape": (n,)})
            rng = np.random.default_rng(0)
            step = 1 << 22
            for start in range(0, n, step):
                m = min(step, n - start)
                block = np.empty(m, dt)
                # 32 pages: a footprint the guest's own TLB holds (emu run replays it)
                block["addr"] = ((rng.integers(0, 32, m) << 12) + rng.integers(0, 4096, m)
                                 + 0x1000_0000)
                block["kind"] = 1
                f.write(block.tobytes())
        size = os.path.getsize(path)
        res, rss, secs = emu_peak_rss("tlb", path)
        assert res["records"] == n
        tlb = {"records": n, "file_bytes": size, "peak_rss_bytes": rss,
               "rss_vs_file": rss / size, "wall_s": secs,
               "translations_per_s": res["translations"] / secs}
        runs = [run_on_trace(path, n // 10, args), run_on_trace(path, n, args)]
    return {"emu_tlb": tlb, "emu_run": runs}


def run_on_trace(path: str, records: int, args) -> dict:
    """Peak RSS of ``emu run`` whose guest process replays ``records`` records of a trace."""
    d = os.path.dirname(path)
    sub = os.path.join(d, f"t{records}.npy")
    src = np.load(path, mmap_mode="r")
    if records != src.shape[0]:
        with open(sub, "wb") as f:
            np.lib.format.write_array_header_1_0(
                f, {"descr": np.lib.format.dtype_to_descr(src.dtype), "fortran_order": False,
                    "shape": (records,)})
            for start in range(0, records, 1 << 22):
                stop = min(records, start + (1 << 22))
                f.write(np.ascontiguousarray(src[start:stop]).tobytes())
    else:
        sub = path
    # enough simulated time for the guest to replay the whole trace (about 1 cycle an access)
    ms = records / 667_000 * 1.5
    toml = os.path.join(d, "trace.toml")
    with open(toml, "w") as f:
        f.write(f"duration_ms = {ms}\n[[vm]]\nmemory_mb = 1024\n[[vm.process]]\n"
                f"workload = {{ kind = 'trace', path = '{sub}' }}\n")
    s, rss, secs = emu_peak_rss("run", toml)
    return {"trace_records": records, "trace_bytes": os.path.getsize(sub),
            "guest_accesses": s["guest_accesses"], "peak_rss_bytes": rss, "wall_s": secs}


def section_sweep(args) -> dict:
    from emu.run import sweep_throughput
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "s.toml")
        with open(path, "w") as f:
            f.write("duration_ms = 20\n")
        grids = ["kvm.strategy=shadow,direct,direct-save-on-switch,shadow-modified",
                 "vm.0.process.0.workload.pages=20,40"]
        out = {}
        for label, kw in (("local_1", dict(executor="local", workers=1)),
                          ("local_2", dict(executor="local", workers=2)),
                          ("dask_2", dict(executor="dask", workers=2))):
            out[label] = sweep_throughput(path, grids, seeds=2, **kw)
    out["local_2_vs_local_1"] = out["local_2"]["runs_per_minute"] / out["local_1"]["runs_per_minute"]
    out["dask_2_vs_local_1"] = out["dask_2"]["runs_per_minute"] / out["local_1"]["runs_per_minute"]
    return out


def section_scaling(args) -> dict:
    from emu.params import default_scenario
    from emu.run import run
    rows = []
    for vms, vcpus in ((1, 1), (1, 2), (1, 4), (1, 8), (2, 1), (4, 1)):
        over = [f"duration_ms={args.system_ms}", f"machine.cpus={vms * vcpus}",
                "host_task.0.cpu=0"]
        for v in range(vms):
            over += [f"vm.{v}.vcpus={vcpus}", f"vm.{v}.process.0.count={vcpus}",
                     f"vm.{v}.memory_mb=64"]
        secs, res = best(lambda: run(default_scenario(), over), args.repeat)
        g = res.summary["guest_accesses"]
        rows.append({"vms": vms, "vcpus_per_vm": vcpus, "guest_accesses": g, "wall_s": secs,
                     "ns_per_guest_access": 1e9 * secs / g})
    base = rows[0]["ns_per_guest_access"]
    for r in rows:
        r["vs_1_vcpu"] = r["ns_per_guest_access"] / base
    return {"runs": rows}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    ap.add_argument("--section", action="append",
                    choices=["tlb", "e2e", "system", "memory", "sweep", "scaling"],
                    help="default: tlb and system")
    ap.add_argument("--trace", default=default_trace_path())
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--system-ms", type=float, default=20.0)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="--section system: a scenario override on top of direct/asm/pin-all "
                         "(e.g. machine.core=e500 kvm.strategy=e500-shadow-ids)")
    ap.add_argument("--big", type=int, default=100_000_000, help="records for --section memory")
    ap.add_argument("--e2e-records", type=int, default=30_000_000,
                    help="records of the .npz / .npy traces of --section e2e")
    ap.add_argument("--e2e-lackey-records", type=int, default=5_000_000,
                    help="records of the gzip'd lackey trace of --section e2e")
    ap.add_argument("--e2e-format", action="append",
                    choices=["npz_stored", "npz_deflated", "npy", "npy_lru", "lackey_gz"],
                    help="only these files in --section e2e (default: all)")
    ap.add_argument("--e2e-dir", help="where --section e2e keeps its traces "
                                      "(default: emu-bench-e2e in the temporary directory)")
    ap.add_argument("--pcs-repeat", type=int, default=3,
                    help="runs of pycachesim per file in --section e2e, the best kept (each "
                         "takes seconds; a single run can be twice as slow as its best)")
    ap.add_argument("--json", help="also write the figures to this file")
    args = ap.parse_args()
    sections = args.section or ["tlb", "system"]
    results = {}
    for name in sections:
        results[name] = globals()[f"section_{name}"](args)
        print(f"== {name}")
        print(json.dumps(results[name], indent=2, default=float))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())

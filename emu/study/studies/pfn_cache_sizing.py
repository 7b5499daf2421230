"""Where should the assembly miss handler get the host page frame from, and how big a pfn cache is enough?

Step 3.3 of the fast miss handler (docs/design.md §1) needs the host pfn of the
guest page.  It can stay in assembly only if the pfn is known without calling
C.  Three sources:

* ``gup`` -- nothing is known: every fill leaves assembly for the deferred
  C path, which calls ``gfn_to_pfn()`` (get_user_pages);
* ``pin-all`` -- every guest page is faulted in and pinned when the memslot is
  registered: no fill ever leaves assembly, at the price of pinning all guest
  memory, an 8-byte-per-page pfn table, and start-up time;
* ``pfn-cache`` -- an N-entry cache of pfns already gotten (pinned while cached):
  a fill leaves assembly only on a cache miss.

Each is set against ``gup/c``, direct as 7924bd41 ran it: no assembly at
all, every fill a full exit to the C handler, which calls ``gfn_to_pfn()``
itself ("leave asm" does not apply: ``-``).

The guest: 4 processes of 12 data + 2 code pages each (64 guest pages with the
guest kernel's 8 data pages, which fit the guest TLB), a guest time slice of
200 µs (each guest context switch drops the previous process's shadow
entries, so its pages are refilled next time) and a system call every 2,000
accesses; a host task wakes every 250 µs and evicts guest entries.  So the
hardware keeps refilling the same 64 guest pages, and the question is how
often a fill has to leave assembly.

What to look at: "leave asm" (deferred C paths / hardware fills fixed by
KVM, i.e. DTLBVIRT + ITLBVIRT), "cycles/miss" ((fast path + C path +
gfn_to_pfn cycles) / guest TLB misses; the C path includes the emulation of
the guest's tlbwe), "fill us" (mean time of a DTLBVIRT/ITLBVIRT exit) and the
memory columns (pinned bytes, pfn cache or pfn table bytes): a cache as big
as the set of pages the guest refills gets pin-all's speed for a fraction of
its pinned memory.
"""

from __future__ import annotations

from typing import Optional

from emu.report.columns import fit_lines
from emu.stats.figures import deferral_share, exit_count, exit_cycles
from emu.study.lib import marked, Recorder, scenario, table

NAME = "pfn_cache_sizing"
PROCESSES, PAGES, CODE_PAGES = 4, 12, 2
MEMORY_MB = 64


def plan(quick: bool) -> dict:
    if quick:
        return {"duration_ms": 4, "sizes": (8, 32, 128), "handlers": ("asm",),
                "policies": ()}
    return {"duration_ms": 15, "sizes": (4, 8, 16, 32, 48, 64, 96, 128, 512),
            "handlers": ("asm", "c"), "policies": ("fifo", "lru", "random")}


def make(source: str, entries: int, duration_ms: float, handler: str = "asm",
         policy: str = "lru") -> dict:
    return scenario(
        name=f"{NAME}: {source} {entries if source == 'pfn-cache' else ''} {handler} {policy}",
        question="cost of a TLB fill and pinned memory for each pfn source",
        duration_ms=duration_ms,
        machine={"core": "440", "cpus": 1},
        kvm={"strategy": "direct", "handler": handler, "pfn_source": source,
             # a size and policy without the cache would do nothing: refused
             **({"pfn_cache_entries": entries, "pfn_cache_policy": policy}
                if source == "pfn-cache" else {})},
        costs={"guest_timeslice_us": 200, "guest_timer_period_us": 200},
        vm=[{"vcpus": 1, "memory_mb": MEMORY_MB,
             "process": [{"count": PROCESSES,
                          "workload": {"kind": "working-set", "pages": PAGES,
                                       "code_pages": CODE_PAGES, "syscall_every": 2000}}]}],
        host_task=[{"name": "hostd", "run_us": 20, "sleep_us": 230,
                    "workload": {"kind": "working-set", "pages": 64}}],
    )


def point(s: dict) -> dict:
    fp = s["fastpath_profile"]
    virt = exit_count(s, "DTLBVIRT", "ITLBVIRT")
    misses = s["tlb"]["guest"]["misses"]
    c = s["cycles"]
    mem = s["memory_bytes"]
    return {
        "cycles_per_guest_access": s["cycles_per_guest_access"],
        "guest_misses": misses,
        "virt_fills": virt,
        "deferred_c_paths": fp["deferred_c_path"]["count"],
        # the C handler has no assembly to leave: every fill is a full exit (None)
        "deferral_share": (None if s["config"]["kvm"]["handler"] == "c"
                           else deferral_share(s) or 0.0),
        "cycles_per_miss": (c["fastpath"] + c["c_path"] + c["gfn_to_pfn"]) / misses
        if misses else 0.0,
        "fill_exit_us": (exit_cycles(s, "DTLBVIRT", "ITLBVIRT") / virt / s["costs"]["clock_mhz"]
                         if virt else 0.0),
        "gfn_to_pfn_calls": s["gfn_to_pfn_calls"],
        "pinned_bytes": mem.get("pinned_pages", 0),
        "pfn_cache_bytes": mem.get("pfn_cache", 0),
        "pfn_table_bytes": mem.get("pfn_table", 0),
        "startup_cycles": s["startup_cycles"],
    }


def configs(p: dict) -> list:
    """(label, source, entries, handler, policy) in the order of the tables;
    ``gup/c``, direct as 7924bd41 ran it, in every plan (first, when the plan
    has no C handler of its own)."""
    out = [] if "c" in p["handlers"] else [("gup/c", "gup", 1, "c", "lru")]
    for h in p["handlers"]:
        out.append((f"gup/{h}", "gup", 1, h, "lru"))
        out += [(f"pfn-cache-{n}/{h}", "pfn-cache", n, h, "lru") for n in p["sizes"]]
        out.append((f"pin-all/{h}", "pin-all", 1, h, "lru"))
    out += [(f"pfn-cache-32-{pol}/asm", "pfn-cache", 32, "asm", pol) for pol in p["policies"]]
    return out


def study(quick: bool, recorder: Recorder | None = None) -> dict:
    rec = recorder or Recorder()
    p = plan(quick)
    points = {}
    for label, src, n, h, pol in configs(p):
        points[label] = point(rec.run(label, make(src, n, p["duration_ms"], h, pol)))
    return {"plan": {"duration_ms": p["duration_ms"], "sizes": list(p["sizes"]),
                     "handlers": list(p["handlers"]), "policies": list(p["policies"]),
                     "guest_pages": PROCESSES * (PAGES + CODE_PAGES) + 8,
                     "memory_mb": MEMORY_MB},
            "points": points}


def report(r: dict, width: Optional[int] = None) -> str:
    rows = []
    for label, v in r["points"].items():
        rows.append([marked(label, r), v["cycles_per_guest_access"], v["guest_misses"], v["virt_fills"],
                     "-" if v["deferral_share"] is None else f"{100 * v['deferral_share']:.1f}%",
                     v["cycles_per_miss"],
                     v["fill_exit_us"], v["gfn_to_pfn_calls"], v["pinned_bytes"],
                     v["pfn_cache_bytes"] + v["pfn_table_bytes"], v["startup_cycles"]])
    return fit_lines([f"Guest refills about {r['plan']['guest_pages']} pages; guest RAM "
                      f"{r['plan']['memory_mb']} MB.",
                      table(["pfn source/handler", "cycles/access", "misses", "fills",
                             "leave asm", "cycles/miss", "fill us", "gfn_to_pfn", "pinned B",
                             "cache/table B", "startup cyc"], rows, width)], width)


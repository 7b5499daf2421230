"""Can a shadow TLB be laid on a core whose TLB software cannot index, and what does it cost there?

The seed's question, answered with one table: cycles per guest access of each
design, for the same guest work, on three cores, at two host context-switch
rates (one with ``--quick``):

* ``440`` -- the UTLB software indexes 0..63: KVM-440's designs as they ran
  (``shadow`` 2.6.26, ``shadow-modified`` 2.6.28, ``direct`` 7924bd41,
  ``direct-save-on-switch`` 67577927);
* ``e500 + ESEL`` -- TLB0's set comes from the address but MAS0[ESEL] names
  the way, so an entry can be put back at its (set, way): KVM e500's designs
  as they ran (``e500-flush-on-put`` @46f43c6e: a flush at every return to
  guest user mode; ``e500-shadow-ids`` @0164c0f0) and, **hypothetical**
  (never shipped), ``shadow`` and ``shadow-modified`` restoring 512 + 15
  entries through ESEL on every guest entry, and ``direct``;
* ``hardware index`` -- a **hypothetical** e500 whose ``tlbwe`` always writes
  the hardware's victim: no entry can be put back where it was, so the
  shadow designs are refused (their one-line messages are shown) and flush
  on put, shadow IDs (at the hardware's way) and direct remain.

Every design runs with the C miss handler and the pfn source its kernel
shipped (get_user_pages on the 440; on the e500, 46f43c6e's and 0164c0f0's
reference per guest TLB0 entry); the row ``direct + asm`` is the seed's
proposal, the assembly fast path with the pfn cache.  Equal work:
each run stops after the same number of guest accesses.  The guest: 4
processes of 10 data + 2 code pages, a 200 µs guest time slice, a system call
every 2,000 accesses; a host task of 64 pages wakes every ``host_period_us``
(the host context-switch rate).

What to look at: on the e500 a shadow TLB can be built, and costs what the
seed feared -- about 17,000 cycles of tlbre/tlbwe on every guest entry (527
entries), against about 1,200 for the 440's 62; the guest, which traps on
every privileged instruction, then barely gets through a time slice, and the
TLB0 KVM emulates for it (256 x 2-way) loses what the other processes
evicted: orders of magnitude over
the designs that ran.  Flush on put pays at every return to user mode;
shadow IDs win (their only flushes are the guest's own, the _tlbie of its
exec faults); the hardware-index core loses only the shadow designs.
"""

from __future__ import annotations

from typing import Optional

from emu.errors import ConfigError
from emu.report.columns import fit_lines
from emu.run import resolve
from emu.study.lib import as_ran, pct, Recorder, scenario, table

NAME = "nonindexable_tlb"
PROCESSES, PAGES, CODE_PAGES = 4, 10, 2
#: (label, machine keys, designs run there); "direct + asm" is the proposal.
CORES = (
    ("440", {"core": "440"},
     ("shadow", "shadow-modified", "direct", "direct-save-on-switch", "direct + asm")),
    ("e500 + ESEL", {"core": "e500"},
     ("e500-flush-on-put", "e500-shadow-ids", "shadow", "shadow-modified", "direct",
      "direct + asm")),
    ("hardware index", {"core": "e500", "tlb_index": "hardware"},
     ("e500-flush-on-put", "e500-shadow-ids", "direct", "direct + asm")),
)
#: Refused on the hardware-index core, with the reason the model gives.
REFUSED = ("shadow", "shadow-modified")


def plan(quick: bool) -> dict:
    if quick:
        return {"guest_accesses": 20_000, "host_period_us": (250,)}
    return {"guest_accesses": 100_000, "host_period_us": (1000, 250)}


def make(design: str, machine: dict, host_period_us: int, accesses: int) -> dict:
    return scenario(
        name=f"{NAME}: {design} on {machine}",
        question="TLB designs on a core whose TLB software cannot index",
        duration_ms=60_000,               # a cap: every run stops at its guest_accesses
        machine=dict(machine, cpus=1),
        kvm=as_ran(design),
        sim={"guest_accesses": accesses},
        costs={"guest_timeslice_us": 200, "guest_timer_period_us": 200},
        vm=[{"vcpus": 1, "memory_mb": 64,
             "process": [{"count": PROCESSES,
                          "workload": {"kind": "working-set", "pages": PAGES,
                                       "code_pages": CODE_PAGES, "syscall_every": 2000}}]}],
        host_task=[{"name": "hostd", "run_us": 20, "sleep_us": host_period_us - 20,
                    "workload": {"kind": "working-set", "pages": 64}}],
    )


def refusal(strategy: str) -> str:
    """The model's error text for ``strategy`` on the hardware-index core ('' if accepted)."""
    try:
        resolve(make(strategy, CORES[2][1], 250, 1))
    except ConfigError as exc:
        return str(exc)
    return ""


def point(s: dict) -> dict:
    causes = s["tlb"]["guest"]["misses_by_cause"]
    total = sum(s["cycles"].values())
    return {
        "label": s["design"]["label"],
        "hypothetical": s["design"]["hypothetical"],
        "cycles_per_guest_access": s["cycles_per_guest_access"],
        "guest_accesses": s["guest_accesses"],
        "guest_misses": s["tlb"]["guest"]["misses"],
        "flush_misses": causes["flush"],
        "exec_faults": s["exits"].get("ISI", {}).get("count", 0),
        "host_evicted": causes["host-eviction"],
        "full_entries": s["fastpath_profile"]["entry_restore"]["count"],
        "entry_restore_cycles": s["fastpath_profile"]["entry_restore"]["cycles"],
        "save_restore_share": s["cycles"]["save_restore"] / total if total else 0.0,
        "isolation_violations": s["tlb"]["isolation_violations"],
    }


def study(quick: bool, recorder: Recorder | None = None) -> dict:
    rec = recorder or Recorder()
    p = plan(quick)
    points = {}
    for period in p["host_period_us"]:
        for core, machine, designs in CORES:
            for design in designs:
                key = f"{core}/{design}/{period}"
                s = rec.run(key, make(design, machine, period, p["guest_accesses"]))
                points[key] = dict(point(s), core=core, design=design, host_period_us=period)
    return {"plan": {"guest_accesses": p["guest_accesses"],
                     "host_period_us": list(p["host_period_us"])},
            "refusals": {st: refusal(st) for st in REFUSED}, "points": points}


def report(r: dict, width: Optional[int] = None) -> str:
    periods = r["plan"]["host_period_us"]
    lines = [f"Cycles per guest access, {r['plan']['guest_accesses']:,} guest accesses per run "
             "(equal work), by core and host wake-up period:"]
    rows = []
    for core, _machine, designs in CORES:
        for design in designs:
            pts = [r["points"][f"{core}/{design}/{p}"] for p in periods]
            rows.append([core, pts[0]["label"]] + [v["cycles_per_guest_access"] for v in pts]
                        + [pts[-1]["guest_misses"], pts[-1]["flush_misses"],
                           pct(pts[-1]["save_restore_share"]),
                           pts[-1]["isolation_violations"]])
        if core == "hardware index":
            for st, msg in r["refusals"].items():
                rows.append([core, f"{st}: refused"] + ["-"] * (len(periods) + 4))
    last = f"@{periods[-1]} µs"
    lines.append(table(["core", "design"] + [f"every {p} µs" for p in periods]
                       + [f"misses {last}", f"flush misses {last}", f"save/restore {last}",
                          "violations"], rows, width, keys=2))
    lines.append("")
    lines.append("Refused where tlbwe always writes the hardware's victim:")
    for st, msg in r["refusals"].items():
        lines.append(f"  {st}: {msg or '(accepted!)'}")
    lines.append("")
    lines.append("'hypothetical:' rows never ran in any kernel; 'proposal:' is the assembly fast "
                 "path with the pfn cache, which no kernel shipped either; the others are as "
                 "they shipped (the C miss handler, their kernel's pfn source).")
    return fit_lines(lines, width)

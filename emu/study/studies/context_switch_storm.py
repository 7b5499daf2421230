"""What does a storm of guest and host context switches cost each TLB design?

A hackbench-like load: several VMs share one CPU, each running many small
guest processes (together they fit the guest's 61 TLB entries, so what the
guest loses is lost to the switches, not to its own TLB's capacity) that make
a system call every 400 accesses, with a 100 µs
guest time slice and timer tick (25 µs … 4 ms in a real guest: this is the
stormy end), while host tasks wake every 200 µs.  Three kinds of switch
hit the TLB at once:

* guest context switches (``mtspr PID``): from 2.6.28 on (tid01) KVM-440
  drops every shadow entry of the previous process (guest TID ≠ 0 maps to
  shadow TID 0, which any PID would match), so the next process refills;
  2.6.26's ``shadow`` (guest-tid) tags shadows with the guest TID and drops
  nothing, but releases every shadow at each privilege switch; e500 shadow IDs
  keep them, flush-on-put flushes everything;
* host context switches between the VMs' vCPUs and the host tasks (vcpu_put
  / vcpu_load);
* system calls (guest privilege switches), which cost the shadow designs a
  full entry each.

Each design runs as its kernel ran it: the C miss handler, and a
get_user_pages at every fill on the 440 (on the e500, a page reference per
guest TLB0 entry); then each with the proposal's assembly handler and pfn
cache (``+ asm``: hypothetical, but for ``direct + asm``, which is the
proposal), which separates what the TLB design costs from what the handler
and the pfn source cost.

The cold start (every process faulting its pages in) is left out as a
warm-up, long enough for the designs as they ran: at every fill they exit
to C and call get_user_pages, and under ``direct`` the whole working set is
refilled after every vcpu_put, so faulting the processes' pages in takes
them 20 to 60 ms of the quick run's storm (it warms up for 120 ms, the full
run for 200).  2.6.26's ``shadow`` never leaves it: it refills its
guest kernel's pages after every privilege switch and rewrites 62 entries at
every trap, so the storm's ticks alone keep the CPU busy; in the full run
(three VMs of twelve processes) 7924bd41's ``direct`` and 46f43c6e's flush on
put do no guest work either.

What to look at: cycles per guest access (what the storm costs), as shipped
against ``+ asm`` (the handler and the pfn source, at every fill of every
refill); the ``guest-context-switch`` misses (on every 440 design but
``shadow``); the save/restore share (the shadow designs pay on every entry);
and the isolation violations: none under any design, but the hypothetical
``direct-noflush`` (commit 7924bd41 without the ``_tlbia()`` of its vcpu_put),
which lets two VMs on one CPU hit each other's TS=1 entries -- the model shows
why that flush is there.  The full run adds the e500 designs.
"""

from __future__ import annotations

from typing import Optional

from emu.report.columns import fit_lines
from emu.stats.figures import exit_count
from emu.stats.summary import cpu_cycles
from emu.study.lib import as_ran, marked, pct, Recorder, scenario, table

NAME = "context_switch_storm"
#: each design as its kernel ran it (the C handler, and get_user_pages on the
#: 440 or a page reference per guest TLB0 entry on the e500), then each with
#: the proposal's handler and pfn cache (``+ asm``: hypothetical, but for
#: direct, which is the proposal), then 7924bd41 without its flush
DESIGNS_440 = ("shadow", "shadow-modified", "direct", "direct-save-on-switch",
               "shadow + asm", "shadow-modified + asm", "direct + asm",
               "direct-save-on-switch + asm", "direct-noflush")
DESIGNS_E500 = ("e500-flush-on-put", "e500-shadow-ids", "e500-flush-on-put + asm",
                "e500-shadow-ids + asm", "direct + asm")


def plan(quick: bool) -> dict:
    if quick:
        return {"duration_ms": 20, "warmup_ms": 120, "vms": 2, "processes": 6, "pages": 8,
                "code_pages": 2, "host_tasks": 1, "e500": False}
    return {"duration_ms": 25, "warmup_ms": 200, "vms": 3, "processes": 12, "pages": 4,
            "code_pages": 1, "host_tasks": 2, "e500": True}


def make(design: str, core: str, p: dict) -> dict:
    vm = {"vcpus": 1, "memory_mb": 32,
          "process": [{"count": p["processes"],
                       "workload": {"kind": "working-set", "pages": p["pages"],
                                    "code_pages": p["code_pages"], "syscall_every": 400}}]}
    hosts = [{"name": f"host{i}", "run_us": 20, "sleep_us": 180,
              "workload": {"kind": "working-set", "pages": 48}} for i in range(p["host_tasks"])]
    return scenario(
        name=f"{NAME}: {design} on {core}",
        question="cost of a storm of guest and host context switches",
        duration_ms=p["duration_ms"], warmup_ms=p["warmup_ms"],
        machine={"core": core, "cpus": 1},
        kvm=as_ran(design),
        # the guest decrementer is a host timer (it fires at host ticks): a 100 us
        # guest tick needs a 100 us host tick
        costs={"guest_timeslice_us": 100, "guest_timer_period_us": 100,
               "host_timer_period_us": 100},
        vm=[vm] * p["vms"],
        host_task=hosts,
        sim={"chunk": 2048},
    )


def point(s: dict) -> dict:
    total = cpu_cycles(s)
    causes = s["tlb"]["guest"]["misses_by_cause"]
    return {
        "cycles_per_guest_access": s["cycles_per_guest_access"],
        "guest_accesses": s["guest_accesses"],
        "guest_misses": s["tlb"]["guest"]["misses"],
        "misses_by_cause": dict(causes),
        "guest_context_switch_misses": causes["guest-context-switch"],
        "guest_pid_switches": exit_count(s, "EMUL_MTSPR"),
        "syscalls": exit_count(s, "SYSCALL"),
        "resumes": s["repopulation"]["resumes"],
        "save_restore_share": s["cycles"]["save_restore"] / total,
        "guest_share": s["cycles"]["guest"] / total,
        "isolation_violations": s["tlb"]["isolation_violations"],
    }


def study(quick: bool, recorder: Recorder | None = None) -> dict:
    rec = recorder or Recorder()
    p = plan(quick)
    points = {}
    runs = [(d, "440") for d in DESIGNS_440]
    if p["e500"]:
        runs += [(d, "e500") for d in DESIGNS_E500]
    for design, core in runs:
        lab = f"{core}/{design}"
        points[lab] = point(rec.run(lab, make(design, core, p)))
    return {"plan": p, "points": points}


def report(r: dict, width: Optional[int] = None) -> str:
    p = r["plan"]
    lines = [f"{p['vms']} VMs x {p['processes']} processes ({p['pages']} data + "
             f"{p['code_pages']} code pages each) on one CPU, {p['host_tasks']} host "
             f"task(s), {p['duration_ms']} ms measured after {p['warmup_ms']} ms of "
             "warm-up:"]
    rows = [[marked(lab, r), v["cycles_per_guest_access"], v["guest_accesses"],
             v["guest_pid_switches"],
             v["syscalls"], v["resumes"], v["guest_context_switch_misses"], v["guest_misses"],
             pct(v["save_restore_share"]), pct(v["guest_share"]), v["isolation_violations"]]
            for lab, v in r["points"].items()]
    lines.append(table(["design", "cycles/access", "accesses", "PID switches", "syscalls",
                        "resumes", "gcs misses", "misses", "save/restore", "guest work",
                        "violations"], rows, width))
    lines.append("")
    lines.append("guest TLB misses by cause")
    causes = list(next(iter(r["points"].values()))["misses_by_cause"])
    rows = [[marked(lab, r)] + [v["misses_by_cause"][c] for c in causes]
            for lab, v in r["points"].items()]
    lines.append(table(["design"] + causes, rows, width))
    return fit_lines(lines, width)


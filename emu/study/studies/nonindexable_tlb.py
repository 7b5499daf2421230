"""What can KVM do on a core whose TLB software cannot index (e500), and what would a shadow TLB cost there?

On the e500, TLB0 (512 entries, 4-way) takes the set from the address and the
way from a hardware next-victim counter: software cannot put an entry back at
an index of its choosing.  So the 440's ``shadow`` design (lay a 64-entry
array into indices 0..hwater on every entry) cannot be built, and the model
refuses it, saying why.  What KVM e500 did instead:

* ``e500-flush-on-put`` -- flush the whole TLB at vcpu_put and on every guest
  PID change (early KVM e500);
* ``e500-shadow-ids`` -- tag entries with per-CPU shadow IDs for (vCPU, guest
  TID, PR), so a guest context switch only reloads PID0/PID1; flush when the
  255 IDs run out (KVM e500, 2011);
* ``direct`` -- insert through the hardware victim, no isolation hook.

The nearest thing to a shadow TLB on the e500 would have to read every
(set, way) of TLB0 back on each guest entry to find what to restore (512 ×
``e500_tlbre_per_entry``) and then rewrite the guest's entries one by one
(``shadow_mod_write_per_entry`` each, into whatever way hardware picks).  This
script estimates that cost from the measured ``direct`` run on the e500: it
adds that entry cost for every full guest entry and resume, and subtracts the
misses a perfect shadow would have avoided (host, other-guest, flush
evictions) at the measured cost of a KVM-fixed miss.

What to look at: the refusal messages; the table of measured e500 designs
(``guest-context-switch`` misses: flush-on-put pays on every guest PID change,
shadow IDs do not); the estimate line for a shadow TLB on the e500 against
the measured designs and against the 440's ``shadow`` per-entry cost.

The guest: 4 processes of 10 data + 2 code pages (they fit the guest TLB together), a 200 µs guest time slice,
a system call every 2,000 accesses; a host task wakes every 250 µs.
"""

from __future__ import annotations

from emu.errors import ConfigError
from emu.run import resolve
from emu.stats.figures import exit_count, exit_cycles
from emu.stats.summary import cpu_cycles
from emu.study.lib import pct, Recorder, scenario, table

NAME = "nonindexable_tlb"
E500_DESIGNS = ("e500-flush-on-put", "e500-shadow-ids", "direct")
REFUSED = ("shadow", "shadow-modified", "direct-save-on-switch")
PROCESSES, PAGES, CODE_PAGES = 4, 10, 2
E500_TLB0_ENTRIES = 512


def plan(quick: bool) -> dict:
    if quick:
        return {"duration_ms": 5, "compare_440": ("shadow",)}
    return {"duration_ms": 20, "compare_440": ("shadow", "shadow-modified", "direct",
                                               "direct-save-on-switch")}


def make(strategy: str, core: str, duration_ms: float) -> dict:
    return scenario(
        name=f"{NAME}: {strategy} on {core}",
        question="TLB designs on a core whose TLB0 software cannot index",
        duration_ms=duration_ms,
        machine={"core": core, "cpus": 1},
        kvm={"strategy": strategy, "handler": "asm", "pfn_source": "pfn-cache"},
        costs={"guest_timeslice_us": 200, "guest_timer_period_us": 200},
        vm=[{"vcpus": 1, "memory_mb": 64,
             "process": [{"count": PROCESSES,
                          "workload": {"kind": "working-set", "pages": PAGES,
                                       "code_pages": CODE_PAGES, "syscall_every": 2000}}]}],
        host_task=[{"name": "hostd", "run_us": 20, "sleep_us": 230,
                    "workload": {"kind": "working-set", "pages": 64}}],
    )


def refusal(strategy: str) -> str:
    """The model's error text for ``strategy`` on the e500 ('' if it is accepted)."""
    try:
        resolve(make(strategy, "e500", 1))
    except ConfigError as exc:
        return str(exc)
    return ""


def point(s: dict) -> dict:
    total = cpu_cycles(s)
    causes = s["tlb"]["guest"]["misses_by_cause"]
    virt = exit_count(s, "DTLBVIRT", "ITLBVIRT")
    return {
        "cycles_per_guest_access": s["cycles_per_guest_access"],
        "total_cycles": total,
        "guest_accesses": s["guest_accesses"],
        "guest_misses": s["tlb"]["guest"]["misses"],
        "misses_by_cause": dict(causes),
        "guest_context_switch_misses": causes["guest-context-switch"],
        "misses_per_resume": s["repopulation"]["misses_per_resume"],
        "resumes": s["repopulation"]["resumes"],
        "full_entries": s["fastpath_profile"]["entry_restore"]["count"],
        "fill_cycles": exit_cycles(s, "DTLBVIRT", "ITLBVIRT") / virt if virt else 0.0,
        "save_restore_share": s["cycles"]["save_restore"] / total,
        "isolation_violations": s["tlb"]["isolation_violations"],
        "memory_bytes": sum(v for k, v in s["memory_bytes"].items() if k != "pinned_pages"),
    }


def shadow_estimate(direct: dict, costs: dict) -> dict:
    """A shadow TLB on the e500, estimated from the measured e500 ``direct`` run."""
    resident = min(PROCESSES * (PAGES + CODE_PAGES) + 8, E500_TLB0_ENTRIES)
    per_entry = (E500_TLB0_ENTRIES * costs["e500_tlbre_per_entry"]
                 + resident * costs["shadow_mod_write_per_entry"])
    entries = direct["full_entries"] + direct["resumes"]
    c = direct["misses_by_cause"]
    avoided = c["host-eviction"] + c["other-guest-eviction"] + c["flush"]
    total = direct["total_cycles"] + entries * per_entry - avoided * direct["fill_cycles"]
    return {"per_entry_cycles": per_entry, "resident_entries": resident,
            "tlbre_cycles": costs["e500_tlbre_per_entry"],
            "rewrite_cycles": costs["shadow_mod_write_per_entry"],
            "entries": entries, "avoided_misses": avoided,
            "cycles_per_guest_access": total / direct["guest_accesses"],
            "entry_share": entries * per_entry / total}


def study(quick: bool, recorder: Recorder | None = None) -> dict:
    rec = recorder or Recorder()
    p = plan(quick)
    refusals = {st: refusal(st) for st in REFUSED}
    points, costs = {}, None
    for st in E500_DESIGNS:
        s = rec.run(f"e500/{st}", make(st, "e500", p["duration_ms"]))
        costs = s["costs"]
        points[f"e500/{st}"] = point(s)
    for st in p["compare_440"]:
        s = rec.run(f"440/{st}", make(st, "440", p["duration_ms"]))
        points[f"440/{st}"] = point(s)
    est = shadow_estimate(points["e500/direct"], costs)
    shadow_440_per_entry = 63 * costs["shadow_restore_per_entry"]
    return {"plan": {"duration_ms": p["duration_ms"], "compare_440": list(p["compare_440"])},
            "refusals": refusals, "points": points, "shadow_estimate": est,
            "shadow_440_per_entry_cycles": shadow_440_per_entry}


def report(r: dict) -> str:
    lines = ["The model refuses the index-dependent designs on the e500:"]
    for st, msg in r["refusals"].items():
        lines.append(f"  {st}: {msg or '(accepted!)'}")
    lines.append("")
    rows = [[lab, v["cycles_per_guest_access"], v["guest_misses"],
             v["guest_context_switch_misses"], v["misses_by_cause"]["flush"],
             v["misses_by_cause"]["host-eviction"], v["misses_per_resume"],
             pct(v["save_restore_share"]), v["fill_cycles"], v["isolation_violations"],
             v["memory_bytes"]]
            for lab, v in r["points"].items()]
    lines.append(table(["design", "cycles/access", "misses", "gcs misses", "flush",
                        "host-evicted", "miss/resume", "save/restore", "fill cycles",
                        "violations", "memory B"], rows))
    e = r["shadow_estimate"]
    lines.append("")
    lines.append(f"Estimated shadow TLB on the e500: {e['per_entry_cycles']:,} cycles per guest "
                 f"entry ({E500_TLB0_ENTRIES} tlbre x {e['tlbre_cycles']} + "
                 f"{e['resident_entries']} rewrites x {e['rewrite_cycles']}), vs "
                 f"{r['shadow_440_per_entry_cycles']:,} for the 440's shadow;")
    lines.append(f"  over {e['entries']:,} full entries and resumes, avoiding "
                 f"{e['avoided_misses']:,} misses: {e['cycles_per_guest_access']:.3f} cycles per "
                 f"guest access ({pct(e['entry_share'])} of the time in the entry loop), against "
                 + ", ".join(f"{k} {v['cycles_per_guest_access']:.3f}"
                             for k, v in r["points"].items() if k.startswith("e500/")))
    return "\n".join(lines)


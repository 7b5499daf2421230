"""Make the summary and its tidy tables from a machine's snapshot after its run.

Derived figures (rates, means, µs) are formulas over the counters, computed
here once; nothing is stored twice.  The summary holds nothing that varies
from run to run: wall time goes to ``run.json`` beside it.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Optional

import numpy as np

from emu.codes import (CYCLE_BUCKETS, CYCLE_CATEGORIES, CYCLES, EXIT_CATEGORIES, MISS_CAUSES,
                       PROFILE_STEPS, SCAN_BUCKETS, TLB_COUNTERS)
from emu.stats.snapshot import Snapshot


def _exit_stats(exits: np.ndarray, sumsq: np.ndarray, kernel: tuple, clock_mhz: int) -> dict:
    """Per category: the exact cycles (and their µs), and ``kernel_us``: the
    figures as KVM's timing.c kept them, each exit truncated to whole µs
    before it was counted (sum, min, max, sumsq in µs)."""
    exits_us, sumsq_us = kernel
    out = {}
    for i, name in enumerate(EXIT_CATEGORIES):
        count, total, lo, hi = (int(x) for x in exits[4 * i:4 * i + 4])
        sq = int(sumsq[i])
        _, total_us, lo_us, hi_us = (int(x) for x in exits_us[4 * i:4 * i + 4])
        out[name] = {
            "count": count, "sum": total, "min": lo, "max": hi, "sumsq": sq,
            "sum_us": total / clock_mhz, "min_us": lo / clock_mhz, "max_us": hi / clock_mhz,
            "sumsq_us": sq / clock_mhz ** 2,
            "mean_us": total / count / clock_mhz if count else 0.0,
            "kernel_us": {"sum": total_us, "min": lo_us, "max": hi_us,
                          "sumsq": int(sumsq_us[i])},
        }
    return out


def _merge_exits(contexts, exits_key: str = "exits",
                 sumsq_key: str = "exit_sumsq") -> tuple[np.ndarray, np.ndarray]:
    n = len(EXIT_CATEGORIES)
    exits = np.zeros(4 * n, np.int64)
    sumsq = np.zeros(n, np.float64)
    for a in contexts:
        e = a[exits_key]
        for i in range(n):
            c = e[4 * i]
            if not c:
                continue
            b = 4 * i
            exits[b + 2] = e[b + 2] if exits[b] == 0 else min(exits[b + 2], e[b + 2])
            exits[b + 3] = max(exits[b + 3], e[b + 3])
            exits[b] += c
            exits[b + 1] += e[b + 1]
        sumsq += a[sumsq_key]
    return exits, sumsq


def _tlb(arrs) -> dict:
    t = sum((a["tlb"] for a in arrs), np.zeros(len(TLB_COUNTERS), np.int64))
    causes = sum((a["causes"] for a in arrs), np.zeros(len(MISS_CAUSES), np.int64))
    out = {name: int(t[i]) for i, name in enumerate(TLB_COUNTERS)}
    out["accesses"] = out["hits"] + out["misses"]
    out["miss_rate"] = out["misses"] / out["accesses"] if out["accesses"] else 0.0
    out["misses_by_cause"] = {name: int(causes[i]) for i, name in enumerate(MISS_CAUSES)}
    return out


def _hist(counts, names) -> dict:
    """A histogram's non-empty buckets, {bucket name (its smallest value): count}."""
    return {names[i]: int(n) for i, n in enumerate(counts) if n}


def _profile(varr) -> dict:
    """Per step of the miss handler: count, cycles, mean and ``hist``, the
    occurrences by cycles (log2 buckets named by their smallest value); the
    walk adds ``entries_hist``, the walks by guest TLB entries scanned."""
    nb = len(CYCLE_BUCKETS)
    prof = sum((a["profile"] for a in varr), np.zeros(2 * len(PROFILE_STEPS), np.int64))
    hist = sum((a["profile_hist"] for a in varr), np.zeros(len(PROFILE_STEPS) * nb, np.int64))
    scan = sum((a["walk_scan"] for a in varr), np.zeros(len(SCAN_BUCKETS), np.int64))
    profile = {}
    for i, step in enumerate(PROFILE_STEPS):
        n, cyc = int(prof[2 * i]), int(prof[2 * i + 1])
        profile[step] = {"count": n, "cycles": cyc, "mean": cyc / n if n else 0.0,
                         "hist": _hist(hist[i * nb:(i + 1) * nb], CYCLE_BUCKETS)}
    profile["walk"]["entries_hist"] = _hist(scan, SCAN_BUCKETS)
    return profile


def cpu_cycles(summary: dict) -> int:
    """The CPU cycles the breakdown covers: simulated cycles x CPUs, less the warm-up."""
    return summary.get("measured_cpu_cycles", summary["simulated_cycles"] * summary["cpus"])


def collect(snap: Snapshot) -> tuple[dict, dict]:
    """(summary sections, tidy tables) from a machine's :class:`Snapshot`."""
    clock = snap.clock_mhz
    vcpus = snap.of_kind("vcpu")
    hosts = snap.of_kind("host_task", "qemu")
    varr = [v.counters for v in vcpus]
    harr = [h.counters for h in hosts]
    exits, sumsq = _merge_exits(varr)
    kernel = _merge_exits(varr, "exits_us", "exit_sumsq_us")
    tlb = {"guest": _tlb(varr), "host": _tlb(harr)}
    tlb["misses_by_cause"] = {k: tlb["guest"]["misses_by_cause"][k] + tlb["host"]["misses_by_cause"][k]
                              for k in MISS_CAUSES}
    tlb["isolation_violations"] = tlb["guest"]["isolation_violations"] + \
        tlb["host"]["isolation_violations"]
    # after a warm-up, each CPU's breakdown counts from its own restart
    cycles = {name: int(sum(int(c.cycles[i]) for c in snap.cpus))
              for i, name in enumerate(CYCLE_CATEGORIES)}
    profile = _profile(varr)
    window = snap.repopulation_window
    rm = sum((a["repop_miss"] for a in varr), np.zeros(window, np.int64))
    ra = sum((a["repop_access"] for a in varr), np.zeros(window, np.int64))
    resumes = sum(v.resumes for v in vcpus)
    repop = {
        "window": window, "resumes": resumes,
        "misses": [int(x) for x in rm], "accesses": [int(x) for x in ra],
        # none counted: no figure (not 0.0, which a sweep's mean would average in)
        "misses_per_resume": float(rm.sum()) / resumes if resumes else None,
    }
    memory = {key: val * len(vcpus) for key, val in snap.vcpu_memory_bytes.items()}
    for vm in snap.vms:
        for key, val in vm.memory_bytes.items():
            memory[key] = memory.get(key, 0) + val
    # the work: records of the guest processes' streams (kernel accesses and
    # markers are not guest accesses; an MMIO access counts once QEMU answered)
    guest_accesses = sum(p.guest_accesses for p in snap.processes)
    done = snap.work_done_at
    sections = {
        "warmup_cycles": snap.warmup_cycles,
        "cpu_measured_from": [c.measured_from for c in snap.cpus],
        # each CPU's idle cycles in its counted window (no runnable thread)
        "cpu_idle_cycles": [int(c.cycles[CYCLES["idle"]]) for c in snap.cpus],
        "measured_cpu_cycles": sum(snap.simulated_cycles - c.measured_from for c in snap.cpus),
        "guest_accesses": guest_accesses,
        "exits": _exit_stats(exits, sumsq, kernel, clock),
        "tlb": tlb,
        "cycles": cycles,
        "memory_bytes": dict(sorted(memory.items())),
        "fastpath_profile": profile,
        "repopulation": repop,
        "startup_cycles": int(sum(vm.startup_cycles for vm in snap.vms)),
        "host_page_faults": int(sum(vm.host_faults for vm in snap.vms))
        + sum(h.page_faults for h in hosts),
        "guest_page_faults": int(sum(vm.guest_page_faults for vm in snap.vms)),
        "guest_machine_checks": sum(v.machine_checks for v in vcpus),
        "gfn_to_pfn_calls": int(sum(vm.gfn_to_pfn_calls for vm in snap.vms)),
        "time_to_work_cycles": done,
        "time_to_work_us": done / clock if done is not None else None,
        "halves": _halves(snap, guest_accesses),
        "processes": [asdict(p) for p in snap.processes],
    }
    if snap.miss_log is not None:
        rows = len(snap.miss_log)
        sections["miss_log"] = {"rows": rows, "dropped": tlb["guest"]["misses"] - rows}
    return sections, _tables(snap, vcpus, hosts)


def _halves(snap: Snapshot, guest_accesses: int) -> Optional[dict]:
    """The counted window cut in two at its middle: each half's guest accesses
    and CPU cycles per guest access (None for a half without accesses), so that
    a reader sees whether the run settled (:func:`emu.stats.figures.settled`).
    None for a run of equal work, whose end was not known ahead."""
    if snap.half is None:
        return None
    at, first = snap.half
    accesses = [first, guest_accesses - first]
    cycles = [sum(at - c.measured_from for c in snap.cpus),
              (snap.simulated_cycles - at) * len(snap.cpus)]
    return {"at_cycles": at, "guest_accesses": accesses,
            "cycles_per_guest_access": [c / a if a else None for c, a in zip(cycles, accesses)]}


#: The ``kind`` column of the TLB table: a vCPU, or the cycle category of a host thread.
_TLB_ROW_KIND = {"vcpu": "vcpu", "qemu": "qemu", "host_task": "host_tasks"}


def _tables(snap: Snapshot, vcpus, hosts) -> dict:
    clock = snap.clock_mhz
    exits_rows, tlb_rows, cyc_rows, prof_rows = [], [], [], []
    for v in vcpus:
        a = v.counters
        for i, name in enumerate(EXIT_CATEGORIES):
            count, total, lo, hi = (int(x) for x in a["exits"][4 * i:4 * i + 4])
            _, total_us, lo_us, hi_us = (int(x) for x in a["exits_us"][4 * i:4 * i + 4])
            if count:
                exits_rows.append({"vcpu": v.name, "category": name, "count": count,
                                   "sum_cycles": total, "min_cycles": lo, "max_cycles": hi,
                                   "sumsq_cycles": int(a["exit_sumsq"][i]),
                                   "mean_us": total / count / clock,
                                   "kernel_sum_us": total_us, "kernel_min_us": lo_us,
                                   "kernel_max_us": hi_us,
                                   "kernel_sumsq_us": int(a["exit_sumsq_us"][i])})
        for i, step in enumerate(PROFILE_STEPS):
            n = int(a["profile"][2 * i])
            if n:
                prof_rows.append({"vcpu": v.name, "step": step, "count": n,
                                  "cycles": int(a["profile"][2 * i + 1])})
    for t in list(vcpus) + list(hosts):
        a = t.counters
        row = {"context": t.name, "kind": _TLB_ROW_KIND[t.kind]}
        row.update({n: int(a["tlb"][i]) for i, n in enumerate(TLB_COUNTERS)})
        row.update({f"cause_{n}": int(a["causes"][i]) for i, n in enumerate(MISS_CAUSES)})
        tlb_rows.append(row)
    for c in snap.cpus:
        for i, name in enumerate(CYCLE_CATEGORIES):
            cyc_rows.append({"cpu": c.index, "component": name, "cycles": int(c.cycles[i])})
    return {"exits": exits_rows, "tlb": tlb_rows, "cycles": cyc_rows, "profile": prof_rows}

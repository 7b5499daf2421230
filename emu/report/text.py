"""Plain-text tables of a run and of a comparison (what ``emu run`` prints)."""

from __future__ import annotations

import os
from typing import Optional

from emu.codes import CYCLE_CATEGORIES, MISS_CAUSES, handler_name
from emu.report.columns import clip, fit_lines, table, wrap
from emu.stats import figures


def _pct(percent) -> str:
    return "-" if percent is None else f"{percent:.1f}%"


def hypothetical(s: dict) -> bool:
    """Whether no kernel shipped the machine of the run ``s`` (its summary's
    ``design.hypothetical``; False for an older summary without it)."""
    return bool((s.get("design") or {}).get("hypothetical"))


def proposal(s: dict) -> bool:
    """Whether the run ``s`` is of the proposal (direct insertion with the
    assembly handler and the pfn cache), which no kernel shipped either."""
    return str((s.get("design") or {}).get("label", "")).startswith("proposal: ")


def labelled(label: str, s: dict) -> str:
    """``label`` of the run ``s``, marked ``(hypothetical)`` when no kernel
    shipped its machine (:func:`hypothetical`), or ``(proposal)`` when it is
    the proposal, and the label does not say so already: every table and
    plot names such a run so."""
    for mark, test in (("hypothetical", hypothetical), ("proposal", proposal)):
        if test(s) and mark not in label:
            return f"{label} ({mark})"
    return label


def fixed(x: Optional[float], places: int) -> str:
    """``x`` with ``places`` decimals; ``-`` for no figure (None)."""
    return "-" if x is None else f"{x:.{places}f}"


def key_figures(s: dict) -> dict:
    """The figures a comparison puts side by side, derived from one summary."""
    g = s["tlb"]["guest"]
    return {
        "cycles/access": (f"{s['cycles_per_guest_access']:,.3f}"
                          if s["cycles_per_guest_access"] else "-"),
        "guest accesses": f"{s['guest_accesses']:,}",
        "guest misses": f"{g['misses']:,}",
        "misses/resume": fixed(figures.misses_per_resume(s), 1),
        "exits": f"{figures.exits(s):,}",
        "save/restore": _pct(figures.percent(s, "save_restore")),
        "fast path": _pct(figures.percent(s, "fastpath")),
        "memory B": f"{figures.memory_bytes_kvm(s):,}",
        "violations": f"{s['tlb']['isolation_violations']:,}",
    }


def shipped_as(s: dict) -> str:
    """The design's label: the commit that shipped it, its TID era and handler,
    or ``proposal: ...`` / ``hypothetical: ...`` (``-`` for an older summary)."""
    return s.get("design", {}).get("label", "-")


def _names_its_commit(label: str, s: dict) -> bool:
    """Whether the row ``label`` is the run's design's own, or names the
    commit that shipped it (and, for a machine no kernel shipped, says so)."""
    if shipped_as(s) in label:
        return True
    commit = (s.get("design") or {}).get("commit") or ""
    marked = "hypothetical" in label if hypothetical(s) else \
        "proposal" in label if proposal(s) else True
    return bool(commit) and commit in label and marked


def format_comparison(runs: list, width=None) -> str:
    """``runs``: (label, summary) pairs -> one table, one row per design
    (fitted to ``width`` columns if given, see :func:`~emu.report.columns.table`), the
    design of each row whose label does not name its commit (what shipped it, or
    hypothetical), and the misses by cause."""
    figs = [(label, key_figures(s)) for label, s in runs]
    header = ["design"] + list(figs[0][1])
    figures_table = table(header, [[label] + list(f.values()) for label, f in figs], width)
    shipped = "\n".join(wrap(f"{clip(str(label), width // 2) if width else label}: "
                             f"{shipped_as(s)}", width) for label, s in runs
                         if not _names_its_commit(str(label), s))
    causes = table(["design"] + list(MISS_CAUSES),
                    [[label] + [f"{s['tlb']['guest']['misses_by_cause'][c]:,}" for c in MISS_CAUSES]
                     for label, s in runs], width)
    title = wrap("each row's design (what shipped it, or hypothetical)", width)
    shipped = f"{title}\n{shipped}\n\n" if shipped else ""
    return f"{figures_table}\n\n{shipped}guest TLB misses by cause\n{causes}"


def kernel_us(e: dict) -> list:
    """The exit's sum and max in whole µs as the kernel kept them (``-``: an older summary)."""
    k = e.get("kernel_us")
    return [f"{k['sum']:,}", f"{k['max']:,}"] if k else ["-", "-"]


def format_run(s: dict, width=None) -> str:
    """A one-screen summary of one run: its sentences wrapped and its tables
    fitted to ``width`` columns if given."""
    cfg = s["config"]
    k = cfg["kvm"]
    clock = cfg["machine"]["clock_mhz"]
    lines = [
        f"{cfg.get('name') or 'scenario'}: core {cfg['machine']['core']}, {s['cpus']} CPU(s), "
        f"strategy {k['strategy']}, handler {k['handler']}, pfn source {k['pfn_source']}, "
        f"seed {s['seed']}",
        f"design: {shipped_as(s)}",
        f"simulated {s['simulated_us']:,.1f} us ({s['simulated_cycles']:,} cycles)"
        + (f", counted after a warm-up of {s['warmup_cycles'] / clock:,.1f} us"
           if s.get("warmup_cycles") else "")
        + f"; {s['guest_accesses']:,} guest accesses"
        + (f", {s['cycles_per_guest_access']:,.3f} CPU cycles per guest access"
           if s["cycles_per_guest_access"] else ""),
        "",
        table(["cycles", "share"], [[c, _pct(figures.percent(s, c))] for c in CYCLE_CATEGORIES
                                    if s["cycles"][c]], width),
        "",
        table(["exit", "count", "mean us", "max us", "kernel sum us", "kernel max us"],
              [[name, f"{e['count']:,}", f"{e['mean_us']:.3f}", f"{e['max_us']:.3f}",
                *kernel_us(e)] for name, e in s["exits"].items() if e["count"]], width),
        "(kernel: each exit truncated to whole µs before it is counted, as KVM's "
        "exit timing kept it)",
        "",
    ]
    g = s["tlb"]["guest"]
    lines.append(f"guest TLB: {g['hits']:,} hits, {g['misses']:,} misses "
                 f"({100 * g['miss_rate']:.3f}%), {s['tlb']['isolation_violations']} isolation "
                 f"violations; {fixed(s['repopulation']['misses_per_resume'], 1)} misses per "
                 f"resume in the first {s['repopulation']['window']:,} accesses after it, over "
                 f"{s['repopulation']['resumes']} resumes")
    causes = [f"{c} {n:,}" for c, n in s["tlb"]["guest"]["misses_by_cause"].items() if n]
    lines.append("misses by cause: " + (", ".join(causes) or "none"))
    lines.append("memory: " + ", ".join(f"{k} {v:,} B" for k, v in s["memory_bytes"].items()))
    return fit_lines(lines, width)


_NUMBERS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven",
            8: "eight", 9: "nine"}


def _count(n: int, noun: str, plural: str = "") -> str:
    return f"{_NUMBERS.get(n, n)} {noun if n == 1 else plural or noun + 's'}"


def _workload(w: dict) -> str:
    if w.get("kind") == "trace":
        return f"the trace {os.path.basename(str(w.get('path')))}"
    zipf = " zipf" if w.get("distribution") == "zipf" else ""
    shape = "sweep" if w.get("kind") == "sweep" else f"{zipf} working set".lstrip()
    return f"a {w.get('pages')}-page {shape}"


def _process(p: dict) -> str:
    w, n = _workload(p["workload"]), p.get("count", 1)
    return w if n == 1 else f"{_count(n, 'process', 'processes')} of {w}"


def _vm(vm: dict) -> str:
    return (f"{vm['vcpus']} vCPU{'s' if vm['vcpus'] != 1 else ''}, "
            + ", ".join(_process(p) for p in vm["process"]))


def _host_task(t: dict) -> str:
    w = t["workload"]
    what = f"{w['pages']} pages" if w.get("pages") else _workload(w)
    when = ("always runnable" if not t["run_us"] else
            f"runs {t['run_us']:g} us every {t['run_us'] + t['sleep_us']:g} us")
    pinned = f", on CPU {t['cpu']}" if t.get("cpu") is not None else ""
    return f"'{t['name']}' ({what}, {when}{pinned})"


def _kvm_settings(configs: list) -> str:
    """The miss handler and pfn source of the runs' ``configs``: the one they
    share, else each pair with the number of runs that use it."""
    pairs = [(handler_name(c["kvm"]["handler"]), c["kvm"]["pfn_source"]) for c in configs]
    kinds = list(dict.fromkeys(pairs))
    if len(kinds) == 1:
        return f"KVM with the {kinds[0][0]} miss handler and the {kinds[0][1]} pfn source"
    return "KVM with " + "; ".join(
        f"the {h} miss handler and the {p} pfn source in {_count(pairs.count((h, p)), 'run')}"
        for h, p in kinds)


def format_banner(cfg, width=None, overrides=()) -> str:
    """What ``emu run`` without FILE says of its scenario (the ``config`` of a
    summary, or the configs of every run) before the table: the machine, the
    VMs, the host tasks, the time simulated (or the work each run does), the
    seed and the KVM settings of the designs; then the ``--set``
    ``overrides`` it ran with, every one of them (a cost or a key the
    sentence does not describe changes the results as much)."""
    configs = list(cfg) if isinstance(cfg, (list, tuple)) else [cfg]
    cfg = configs[0]
    m = cfg["machine"]
    text = (f"Default scenario: {_count(m['cpus'], m['core'] + ' CPU')} at "
            f"{m['clock_mhz']} MHz, ")
    vms = [_vm(vm) for vm in cfg["vm"]]
    if len(vms) == 1:
        text += f"one VM ({vms[0]})"
    elif len(set(vms)) == 1:
        text += f"{_count(len(vms), 'VM')} (each {vms[0]})"
    else:
        text += f"{_count(len(vms), 'VM')} (" + "; ".join(
            f"vm{i}: {v}" for i, v in enumerate(vms)) + ")"
    tasks = cfg.get("host_task") or []
    if tasks:
        where = "the CPU" if m["cpus"] == 1 else "the CPUs"
        names = "host task" if len(tasks) == 1 else f"{_count(len(tasks), 'host task')}:"
        text += f" sharing {where} with {names} " + "; ".join(_host_task(t) for t in tasks)
    warmup = cfg["sim"].get("warmup_ms", 0)
    counted = f", counted after a {warmup:g} ms warm-up" if warmup else ""
    work = cfg["sim"].get("guest_accesses")
    simulated = (f"each run until the guest processes have made {work:,} accesses (at most "
                 f"{cfg['duration_ms']:g} ms)" if work is not None
                 else f"{cfg['duration_ms']:g} ms simulated")
    text += (f", {simulated}{counted}, seed {cfg['seed']}; "
             f"{_kvm_settings(configs)}.")
    if overrides:
        text += " Run with --set " + ", ".join(str(o) for o in overrides) + "."
    return wrap(text, width) + "\n"

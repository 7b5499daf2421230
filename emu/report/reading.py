"""A short reading of a result, generated from its numbers.

:func:`generate_reading` turns one or more summaries into plain sentences, the
kind a reader would otherwise work out from the tables: which design is
cheaper per guest access and by how much, how many TLB entries each loses to
the host per resume, what share of CPU time goes to saving and restoring,
isolation violations.  Every sentence is computed from the summaries alone
and only says what their numbers say; the same summaries give the same text.

>>> from emu.report.reading import generate_reading
>>> a = {"cycles_per_guest_access": 2.0}
>>> b = {"cycles_per_guest_access": 1.0}
>>> generate_reading([("shadow", a), ("direct", b)])[0]
'Per guest access, direct costs 1.0 vs 2.0 CPU cycles under shadow: direct is 2.0× cheaper than shadow.'
"""

from __future__ import annotations

from emu.errors import spelled_value
from emu.kvm import strategies
from emu.stats import figures


def _get(s: dict, *path, default=None):
    for key in path:
        if not isinstance(s, dict) or key not in s:
            return default
        s = s[key]
    return s


def _num(x: float, places: int = 3) -> str:
    """``x`` with at most ``places`` decimals, trailing zeros dropped but one kept."""
    text = f"{x:,.{places}f}"
    if "." in text:
        text = text.rstrip("0")
        if text.endswith("."):
            text += "0"
    return text


def _pct(x: float) -> str:
    """A percentage: one decimal, or two significant digits below 0.1."""
    if x == 0:
        return "0.0"
    if abs(x) >= 0.095:
        return f"{x:.1f}"
    return f"{x:.2g}"


def _has_cycles(s: dict) -> bool:
    """The summary says how many CPU cycles it covers."""
    return bool(s.get("simulated_cycles") and s.get("cpus"))


def _join(items: list) -> str:
    return ", ".join(items)


def _cost_per_access(runs) -> list:
    vals = [(label, s["cycles_per_guest_access"]) for label, s in runs
            if s.get("cycles_per_guest_access")]
    if not vals:
        return []
    if len(runs) == 1:
        label, x = vals[0]
        s = runs[0][1]
        extra = ""
        if s.get("guest_accesses") and s.get("simulated_us"):
            extra = (f" ({s['guest_accesses']:,} guest accesses in {_num(s['simulated_us'], 1)} µs "
                     f"on {s.get('cpus', 1)} CPU{'s' if s.get('cpus', 1) != 1 else ''})")
        return [f"{label} costs {_num(x)} CPU cycles per guest access{extra}."]
    seeds = list(dict.fromkeys(s.get("seed") for _, s in runs))
    if len(seeds) > 1:
        # runs of several seeds: each design against the others of its own seed,
        # not the best of one seed against the worst of another
        out = []
        for seed in seeds:
            group = [(label, s) for label, s in runs if s.get("seed") == seed]
            for line in _cost_per_access(group) if len(group) > 1 else []:
                out.append(f"With seed {seed}: {line[0].lower()}{line[1:]}")
        return out
    out = []
    best = min(vals, key=lambda v: v[1])      # min/max keep the first of equal values
    worst = max(vals, key=lambda v: v[1])
    if worst[1] == best[1]:
        out.append(f"Every design costs the same per guest access: {_num(best[1])} CPU cycles.")
    else:
        ratio = worst[1] / best[1]
        out.append(f"Per guest access, {best[0]} costs {_num(best[1])} vs {_num(worst[1])} CPU "
                   f"cycles under {worst[0]}: {best[0]} is {_num(ratio, 2)}× cheaper than "
                   f"{worst[0]}.")
    if len(vals) > 2:
        out.append("CPU cycles per guest access (all CPU time over guest accesses): "
                   + _join(f"{label} {_num(x)}" for label, x in vals) + ".")
    missing = [label for label, s in runs if not s.get("cycles_per_guest_access")
               and "cycles_per_guest_access" in s]
    if missing:
        out.append(f"No guest access completed under {_join(missing)}.")
    return out


def startup_sentence(where: str) -> str:
    """What to do about a start-up counted in ``where`` (``their figures``),
    the setting named as the caller spells it (:func:`emu.errors.spelled_value`).

    >>> print(startup_sentence("its figures"))
    A start-up, such as the guest's first fill of its pages, is in its figures: overrides=['sim.warmup_ms=MS'] counts from after it (lengthen duration_ms with it).
    """
    return (f"A start-up, such as the guest's first fill of its pages, is in {where}: "
            f"{spelled_value('--set', 'sim.warmup_ms=MS')} counts from after it (lengthen "
            "duration_ms with it).")


def settle_note(runs) -> str:
    """One sentence naming the runs of ``runs`` = [(label, summary)] that had not
    settled (:func:`emu.stats.figures.settled`), or "" when all had: a
    start-up, such as the guest's first fill of its pages, is in their figures.

    >>> print(settle_note([("shadow", {"halves": {"cycles_per_guest_access": [111166.7, 6.0]}}),
    ...                    ("direct", {"halves": {"cycles_per_guest_access": [1.31, 1.30]}})]))
    Not settled (CPU cycles per guest access in the first half of the counted window, then in the second): shadow 111,166.7 then 6.0. A start-up, such as the guest's first fill of its pages, is in its figures: overrides=['sim.warmup_ms=MS'] counts from after it (lengthen duration_ms with it).
    """
    parts = []
    for label, s in runs:
        if figures.settled(s) is False:
            first, second = (("no access" if x is None else _num(x, 1))
                             for x in s["halves"]["cycles_per_guest_access"])
            parts.append(f"{label} {first} then {second}")
    if not parts:
        return ""
    whose = "its" if len(parts) == 1 else "their"
    return ("Not settled (CPU cycles per guest access in the first half of the counted window, "
            f"then in the second): {'; '.join(parts)}. {startup_sentence(whose + ' figures')}")


#: The idle share of its counted window from which a CPU is named (idle_note).
IDLE_SHARE = 0.99


def idle_cpus(s: dict) -> list:
    """[(cpu, idle share of its counted window)] for the CPUs of summary
    ``s`` idle at least :data:`IDLE_SHARE` of it (none on one CPU, or for a
    summary that does not keep ``cpu_idle_cycles``)."""
    idle, starts = s.get("cpu_idle_cycles"), s.get("cpu_measured_from")
    if not idle or not starts or len(idle) < 2 or not s.get("simulated_cycles"):
        return []
    out = []
    for cpu, (x, start) in enumerate(zip(idle, starts)):
        window = s["simulated_cycles"] - start
        if window > 0 and x / window >= IDLE_SHARE:
            out.append((cpu, x / window))
    return out


def idle_note(runs) -> str:
    """One sentence naming the CPUs that idled through (nearly) all of their
    counted window in ``runs`` = [(label, summary)], or "": cycles per guest
    access count every CPU's cycles, theirs too.

    >>> s = {"simulated_cycles": 1000, "cpu_measured_from": [0, 0],
    ...      "cpu_idle_cycles": [10, 1000]}
    >>> print(idle_note([("direct", s), ("shadow", s)]))
    CPU 1 idled 100% of the counted window in every run: cycles per guest access count its idle cycles too. Nothing runs there: pin a vCPU or a host task to it (vm.N.vcpu_cpus, host_task.N.cpu), or set machine.cpus lower.
    """
    found = {label: idle_cpus(s) for label, s in runs}
    named = [label for label, cpus in found.items() if cpus]
    if not named:
        return ""
    cpus = sorted({cpu for label in named for cpu, _ in found[label]})
    least = min(share for label in named for _, share in found[label])
    which = ("CPU " if len(cpus) == 1 else "CPUs ") + _join(str(c) for c in cpus)
    where = ("in every run" if len(named) == len(runs) and len(runs) > 1
             else "" if len(runs) == 1 else "under " + _join(named))
    whose = "its" if len(cpus) == 1 else "their"
    it = "it" if len(cpus) == 1 else "them"
    share = "100" if least >= 1 else _pct(100 * least).rstrip("0").rstrip(".")
    return (f"{which} idled {share}% "
            f"of the counted window{' ' + where if where else ''}: cycles per guest access "
            f"count {whose} idle cycles too. Nothing runs there: pin a vCPU or a host task to "
            f"{it} (vm.N.vcpu_cpus, host_task.N.cpu), or set machine.cpus lower.")


def run_notes(runs) -> list[str]:
    """The notes on ``runs`` = [(label, summary)] a reader should see beside
    their figures: runs that had not settled (:func:`settle_note`), CPUs that
    idled through the window (:func:`idle_note`)."""
    return [note for note in (settle_note(runs), idle_note(runs)) if note]


def unsettled_note(rows: list, keys: list) -> str:
    """One sentence naming the grid points with runs that had not settled
    (``settled`` false: their halves differ by more than
    :data:`emu.stats.figures.SETTLED_WITHIN`), or "" if none."""
    bad = [r for r in rows if r.get("settled") in (False, "false")]
    if not bad:
        return ""
    points = list(dict.fromkeys(", ".join(f"{k}={r[k]}" for k in keys) or "the scenario"
                                for r in bad))
    shown = "; ".join(points[:6]) + (f"; and {len(points) - 6} more" if len(points) > 6 else "")
    return (f"Not settled: {len(bad)} of {len(rows)} runs (the two halves of their counted "
            f"window cost more than {figures.SETTLED_WITHIN:.0%} apart per guest access), at "
            f"{shown}. {startup_sentence('their figures')}")


def _repopulation(runs) -> list:
    reps = [(label, s["repopulation"]) for label, s in runs if _get(s, "repopulation", "resumes")]
    if not reps:
        return []
    window = reps[0][1].get("window")
    within = (f"in the first {window:,} accesses after each vcpu_load (the guest kernel's "
              f"too, as the TLB sees them; guest accesses count the processes' only)") \
        if window else \
        "after each vcpu_load"
    parts = [f"{label} {_num(r['misses_per_resume'], 1)}" for label, r in reps]
    resumes = sorted({r["resumes"] for _, r in reps})
    over = (f"over {resumes[0]:,} resumes" if len(resumes) == 1 else
            "over " + _join(f"{r['resumes']:,} ({label})" for label, r in reps) + " resumes")
    if len(reps) == 1:
        return [f"{reps[0][0]} takes {_num(reps[0][1]['misses_per_resume'], 1)} TLB misses per "
                f"resume {within} ({over})."]
    return [f"TLB misses per resume {within}: " + _join(parts) + f" ({over})."]


def _lost_per_resume(runs, cause: str, to_whom: str) -> list:
    vals = []
    for label, s in runs:
        resumes = _get(s, "repopulation", "resumes")
        n = _get(s, "tlb", "guest", "misses_by_cause", cause)
        if resumes and n is not None:
            vals.append((label, figures.misses_per_resume_by_cause(s, cause)))
    if not vals or not any(v for _, v in vals):
        return []
    first = max(vals, key=lambda v: v[1])
    rest = [f"{label} {_num(v, 1)}" for label, v in vals if label != first[0]]
    text = (f"{first[0]} loses {_num(first[1], 1)} entries per resume to {to_whom} "
            f"({cause} misses / resumes)")
    return [text + (", " + _join(rest) if rest else "") + "."]


def _causes(runs) -> list:
    parts = []
    for label, s in runs:
        causes = _get(s, "tlb", "guest", "misses_by_cause")
        total = _get(s, "tlb", "guest", "misses")
        if not causes or not total:
            continue
        top, n = figures.commonest_cause(s)
        parts.append(f"{label} {top} ({n:,} of {total:,}, {_pct(figures.miss_percent(s, top))} %)")
    if not parts:
        return []
    return ["Commonest cause of guest TLB misses: " + _join(parts) + "."]


def _share(runs, component: str) -> list:
    """[(label, % of CPU time, cycles)] for every run that has the component."""
    out = []
    for label, s in runs:
        cyc = _get(s, "cycles", component)
        if cyc is not None and _has_cycles(s) and figures.cpu_cycles(s):
            out.append((label, figures.percent(s, component), cyc))
    return out


def _save_restore(runs) -> list:
    shares = _share(runs, "save_restore")
    if not shares:
        return []
    out, none = [], []
    strategy = {label: _get(s, "config", "kvm", "strategy") for label, s in runs}
    for label, pct, cyc in shares:
        if cyc:
            design = strategies.lookup(strategy.get(label))
            work = design.save_restore_work if design else "on the strategy's TLB save/restore work"
            out.append(f"{label} spends {_pct(pct)} % of CPU time {work} ({cyc:,} cycles)")
        else:
            none.append(label)
    if not out:
        return ["No design spends any time saving or restoring TLB entries."
                if len(runs) > 1 else f"{runs[0][0]} spends no time saving or restoring TLB entries."]
    text = "; ".join(out)
    if none:
        text += f"; {_join(none)} {'spends' if len(none) == 1 else 'spend'} none"
    return [text + "."]


def _fast_path(runs) -> list:
    out = []
    fp = _share(runs, "fastpath")
    if fp and any(c for _, _, c in fp):
        out.append("Share of CPU time in the TLB miss handler's fast path: "
                   + _join(f"{label} {_pct(p)} %" for label, p, _ in fp) + ".")
    g2p = _share(runs, "gfn_to_pfn")
    if g2p and any(c for _, _, c in g2p):
        calls = {label: s.get("gfn_to_pfn_calls") for label, s in runs}
        parts = []
        for label, p, _ in g2p:
            n = calls.get(label)
            parts.append(f"{label} {_pct(p)} %" + (f" ({n:,} calls)" if n is not None else ""))
        out.append("Share of CPU time in gfn_to_pfn (get_user_pages and the host page faults "
                   "it takes): " + _join(parts) + ".")
    return out


def _exits(runs) -> list:
    parts = []
    for label, s in runs:
        if not s.get("exits"):
            continue
        total = figures.exits(s)
        if total:
            top, n = figures.commonest_exit(s)
            parts.append(f"{label} {total:,} (most: {top}, {n:,})")
        else:
            parts.append(f"{label} 0")
    if not parts:
        return []
    return ["Exits, TIMEINGUEST excluded: " + _join(parts) + "."]


def _memory(runs) -> list:
    parts, pinned = [], []
    for label, s in runs:
        mem = s.get("memory_bytes")
        if mem is None:
            continue
        parts.append(f"{label} {figures.memory_bytes_kvm(s):,} B")
        pinned.append((label, figures.pinned_bytes(s)))
    if not parts:
        return []
    text = "Memory for TLB state and pfn bookkeeping (pinned pages excluded): " + _join(parts)
    values = {v for _, v in pinned}
    if values == {0}:
        text += "; no pages pinned"
    elif len(pinned) == 1:
        text += f"; pinned guest pages {pinned[0][1]:,} B"
    elif len(values) == 1:
        text += f"; pinned guest pages {pinned[0][1]:,} B in every design"
    else:
        text += "; pinned guest pages: " + _join(f"{label} {v:,} B" for label, v in pinned)
    return [text + "."]


def _isolation(runs) -> list:
    vals = [(label, _get(s, "tlb", "isolation_violations"),
             _get(s, "config", "kvm", "strategy")) for label, s in runs]
    vals = [v for v in vals if v[1] is not None]
    if not vals:
        return []
    if not any(n for _, n, _ in vals):
        return ["No isolation violations: no TLB hit was on an entry owned by another context"
                + (" in any design." if len(vals) > 1 else ".")]
    text = ("Isolation violations (TLB hits on an entry owned by another context): "
            + _join(f"{label} {n:,}" for label, n, _ in vals))
    notes = []
    for _, n, name in vals:
        design = strategies.lookup(name)
        if n and design and design.violations_note and design.violations_note not in notes:
            notes.append(design.violations_note)
    if notes:
        text += f" ({'; '.join(notes)})"
    return [text + "."]


def _startup(runs) -> list:
    parts = []
    for label, s in runs:
        cyc = s.get("startup_cycles")
        clock = _get(s, "costs", "clock_mhz")
        if cyc and clock:
            parts.append(f"{label} {_num(figures.startup_us(s), 1)} µs ({cyc:,} cycles)")
    if not parts:
        return []
    return ["Start-up work before the guest runs (startup_cycles, e.g. pinning guest memory): "
            + _join(parts) + "."]


def generate_reading(runs) -> list[str]:
    """Sentences that read the result, from ``runs`` = [(label, summary)].

    Works on one run or on a comparison; a statement whose numbers a summary
    lacks is left out.  Deterministic: the same summaries give the same text.
    """
    runs = [(str(label), s) for label, s in runs]
    if not runs:
        return []
    out: list[str] = []
    out += _cost_per_access(runs)
    out += run_notes(runs)
    out += _repopulation(runs)
    out += _lost_per_resume(runs, "host-eviction", "the host")
    out += _lost_per_resume(runs, "other-guest-eviction", "other vCPUs")
    out += _causes(runs)
    out += _save_restore(runs)
    out += _fast_path(runs)
    out += _exits(runs)
    out += _memory(runs)
    out += _isolation(runs)
    out += _startup(runs)
    return out

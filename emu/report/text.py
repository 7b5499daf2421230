"""Plain-text tables of a run and of a comparison (what ``emu run`` prints)."""

from __future__ import annotations

from emu.codes import CYCLE_CATEGORIES, MISS_CAUSES
from emu.stats import figures


def _table(header: list, rows: list) -> str:
    cells = [header] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    out = []
    for n, r in enumerate(cells):
        out.append("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))))
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def _pct(percent) -> str:
    return "-" if percent is None else f"{percent:.1f}%"


def key_figures(s: dict) -> dict:
    """The figures a comparison puts side by side, derived from one summary."""
    g = s["tlb"]["guest"]
    return {
        "cycles/access": (f"{s['cycles_per_guest_access']:.3f}"
                          if s["cycles_per_guest_access"] else "-"),
        "guest accesses": f"{s['guest_accesses']:,}",
        "guest misses": f"{g['misses']:,}",
        "misses/resume": f"{figures.misses_per_resume(s):.1f}",
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


def format_comparison(runs: list) -> str:
    """``runs``: (label, summary) pairs -> one table, one row per design."""
    figs = [(label, shipped_as(s), key_figures(s)) for label, s in runs]
    header = ["design", "as shipped"] + list(figs[0][2])
    table = _table(header, [[label, shipped] + list(f.values()) for label, shipped, f in figs])
    causes = _table(["design"] + list(MISS_CAUSES),
                    [[label] + [f"{s['tlb']['guest']['misses_by_cause'][c]:,}" for c in MISS_CAUSES]
                     for label, s in runs])
    return f"{table}\n\nguest TLB misses by cause\n{causes}"


def _kernel_us(e: dict) -> list:
    """The exit's sum and max in whole µs as the kernel kept them (``-``: an older summary)."""
    k = e.get("kernel_us")
    return [f"{k['sum']:,}", f"{k['max']:,}"] if k else ["-", "-"]


def format_run(s: dict) -> str:
    """A one-screen summary of one run."""
    cfg = s["config"]
    k = cfg["kvm"]
    clock = cfg["machine"]["clock_mhz"]
    lines = [
        f"{cfg.get('name') or 'scenario'}: core {cfg['machine']['core']}, {s['cpus']} CPU(s), "
        f"strategy {k['strategy']}, handler {k['handler']}, pfn source {k['pfn_source']}, "
        f"seed {s['seed']}",
        f"design as shipped: {shipped_as(s)}",
        f"simulated {s['simulated_us']:,.1f} us ({s['simulated_cycles']:,} cycles)"
        + (f", counted after a warm-up of {s['warmup_cycles'] / clock:,.1f} us"
           if s.get("warmup_cycles") else "")
        + f"; {s['guest_accesses']:,} guest accesses"
        + (f", {s['cycles_per_guest_access']:.3f} CPU cycles per guest access"
           if s["cycles_per_guest_access"] else ""),
        "",
        _table(["cycles", "share"], [[c, _pct(figures.percent(s, c))] for c in CYCLE_CATEGORIES
                                     if s["cycles"][c]]),
        "",
        _table(["exit", "count", "mean us", "max us", "kernel sum us", "kernel max us"],
               [[name, f"{e['count']:,}", f"{e['mean_us']:.3f}", f"{e['max_us']:.3f}",
                 *_kernel_us(e)] for name, e in s["exits"].items() if e["count"]]),
        "(kernel: each exit truncated to whole µs before it is counted, as KVM's "
        "exit timing kept it)",
        "",
    ]
    g = s["tlb"]["guest"]
    lines.append(f"guest TLB: {g['hits']:,} hits, {g['misses']:,} misses "
                 f"({100 * g['miss_rate']:.3f}%), {s['tlb']['isolation_violations']} isolation "
                 f"violations; {s['repopulation']['misses_per_resume']:.1f} misses per resume "
                 f"over {s['repopulation']['resumes']} resumes")
    lines.append("misses by cause: " + ", ".join(f"{c} {n:,}" for c, n in
                                                 s["tlb"]["guest"]["misses_by_cause"].items() if n))
    lines.append("memory: " + ", ".join(f"{k} {v:,} B" for k, v in s["memory_bytes"].items()))
    return "\n".join(lines)

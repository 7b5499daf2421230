"""When does inserting guest mappings directly into the hardware TLB stop paying?

The seed's question (docs/design.md §1): KVM-440 first kept a per-vCPU shadow TLB
and rewrote it into hardware on every guest entry (``shadow``; only the
modified entries after commit 83aae4a8: ``shadow-modified``); commit 7924bd41
inserted guest mappings straight into the hardware TLB through the host's
round robin (``direct``), and later code saved and restored the guest's
entries at vcpu_put / vcpu_load (``direct-save-on-switch``).  Each runs with
the assembly miss handler (``asm``, with the pfn cache: the proposal's path,
so only ``direct`` is a machine proposed, the others **hypothetical**) and
with a full exit into C (``c``, with get_user_pages: each design as it
shipped).

``direct`` pays after every host context switch: its vcpu_put runs ``_tlbia()``
(7924bd41), and the guest refills its entries one miss at a time.  (Without
that flush -- the hypothetical ``direct-noflush`` -- only what the host task's
pages evict would be refilled.)  The shadow designs pay on every guest entry
instead, vcpu_load's included: ``shadow`` (2.6.26) rewrites 62 entries (≈62 ×
19 cycles) and, in its guest-tid era, releases every shadow at every guest
privilege switch (each system call: two); ``shadow-modified`` as 2.6.28
shipped it (tid01) rewrites only the modified entries.  The sweeps weigh
``direct`` against the design it replaced, 2.6.28's ``shadow-modified``.
This script sweeps the host's context-switch rate (a host task that runs 10 %
of each period, touching 128 pages) for several guest working sets, and then
the number of pages the host touches (a 40-page guest, a 50 µs period), and
reports the break-even point: the lowest rate (or host page count) at which
``direct``'s CPU cycles per guest access exceed ``shadow-modified``'s, or that
none was found in the range.  (Under the 440's round robin one host eviction
can cascade: the guest's refill overwrites the next index, which may hold
another of its own entries -- watch the self-evicted column.)

What the model shows (``--quick``, at the default costs):
``shadow`` in its guest-tid era costs several times any other design with
the asm handler (27 cycles per guest access at a 24-page working set and a
100 µs host period, against 2.8 to 4.0 for the others with it): every system
call empties its shadows twice.  With the assembly handler ``direct`` beats
``shadow-modified`` up to fast host switching; the break-even comes sooner the
larger the working set, since each flush costs ``direct`` a refill of the
whole set (48 pages: about 17 host wake-ups/ms, a 60 µs period; 8 pages:
none up to 29/ms, a 35 µs period, where ``direct`` is 3 % the cheaper).  As the
kernels shipped them (the C handler, get_user_pages) ``shadow-modified`` is far
the cheaper of the two at the matrix point (4.4 cycles per guest access
against 1,600): after every flush
``direct`` calls gfn_to_pfn again for each page it refills, and at 10 host
wake-ups/ms its guest barely runs.  Along the host's pages ``direct`` loses
to ``shadow-modified`` at every count (its refills after the flush do not
depend on the host's pages), while the hypothetical ``direct-noflush`` wins
only while the host touches few pages (about 15 at the default costs).
``direct-save-on-switch`` (67577927) is the cheapest throughout.

What to look at: the first table (every design at one point: misses per
resume, save/restore share, cycles per access); the sweep tables (cycles per
guest access of ``shadow-modified`` and ``direct`` against host wake-ups per
ms); the break-even lines (every resume of a shadow design, vcpu_load's
included, runs its entry loop in the model, so nothing is added to it).
Last, the break-even in host pages with its band (:mod:`emu.sensitivity`):
``direct``'s flush makes its refills independent of the host's pages, so the
band asks the seed's question of the hypothetical ``direct-noflush`` -- where
it stops beating ``shadow-modified`` at the default costs, and the interval
that moves over when the costs that a refill and a guest entry pay are
sampled (Morris) over their plausible ranges; the band is plotted
(``break_even.png`` / ``.svg``, in ``DIR/break_even/`` with ``--out``, which
``emu report`` reads).

Every run: one 440 CPU, one VM with one process (a uniform working set of
WS pages, a system call every 5,000 accesses: a guest that exits now and
then), and one host task.  Scheduler tunables are scaled 10× down and page
faults are cheap (``emu.study.lib.FAST``), so a few milliseconds hold tens of
host context switches in steady state.
"""

from __future__ import annotations

import os
import tempfile
from typing import Optional

from emu.report.columns import fit_lines
from emu.report.plots import save_figure
from emu.sensitivity import run_sensitivity, tornado_plot
from emu.sensitivity.design import salib_sampler
from emu.sensitivity.report import break_even_plot, write_files
from emu.stats.figures import measured_ms
from emu.stats.summary import cpu_cycles
from emu.study.lib import pct, Recorder, scenario, table

NAME = "shadow_vs_direct"
STRATEGIES = ("shadow", "shadow-modified", "direct", "direct-save-on-switch")
#: What the sweeps weigh direct against: the design 7924bd41 replaced (2.6.28).
BASELINE = "shadow-modified"
HANDLERS = ("asm", "c")
RUN_FRACTION = 0.1          # the host task runs 10 % of each period
HOST_PAGES = 128            # enough to evict the whole 64-entry TLB
SYSCALL_EVERY = 5000
CODE_PAGES = 4
MATRIX_POINT = {"ws": 24, "period_us": 100}
#: The costs a direct refill (the asm handler's path, the guest's miss handler)
#: and a shadow guest entry pay: the cost space of the break-even band.
BAND_COSTS = ("shadow_mod_scan_per_entry", "shadow_mod_write_per_entry", "exit_light",
              "guest_miss_handler", "asm_save", "asm_walk_per_entry", "asm_hw_write",
              "asm_restore", "asm_pfn_lookup")
#: The band's two designs: the insertion without its flush, against the shadow array.
BAND_DESIGNS = ("direct-noflush", BASELINE)
HOST_PAGES_KEY = "host_task.0.workload.pages"


def plan(quick: bool) -> dict:
    if quick:
        return {"duration_ms": 2.5, "warmup_ms": 10,
                "sweep_strategies": (BASELINE, "direct"), "sweep_handlers": ("asm",),
                "ws": (8, 48), "periods": (1000, 200, 100, 50, 35),
                "pages_ws": 40, "pages_period": 50, "host_pages": (8, 16, 64),
                "pages_strategies": (BASELINE, "direct", "direct-noflush"),
                "band_costs": ("shadow_mod_scan_per_entry", "asm_walk_per_entry", "exit_light"),
                "band_samples": 2}
    return {"duration_ms": 10, "warmup_ms": 20,
            "sweep_strategies": STRATEGIES, "sweep_handlers": HANDLERS,
            "ws": (8, 24, 40, 56), "periods": (4000, 2000, 1000, 500, 250, 150, 100, 75, 50, 35),
            "pages_ws": 40, "pages_period": 50, "host_pages": (4, 8, 12, 16, 24, 32, 64, 128, 256),
            "pages_strategies": STRATEGIES + ("direct-noflush",),
            "band_costs": BAND_COSTS, "band_samples": 8}


def make(strategy: str, handler: str, ws: int, period_us: float, duration_ms: float,
         host_pages: int = HOST_PAGES, warmup_ms: float = 0.0) -> dict:
    """One run: ``warmup_ms`` of cold start (the guest faulting its pages in, which
    takes the shadow designs the longest), then ``duration_ms`` measured."""
    run_us = max(2.0, period_us * RUN_FRACTION)
    return scenario(
        name=f"{NAME}: {strategy}/{handler} ws={ws} period={period_us}us host_pages={host_pages}",
        question="cycles per guest access of a KVM-440 TLB design under host context switches",
        duration_ms=duration_ms, warmup_ms=warmup_ms,
        machine={"core": "440", "cpus": 1},
        # the C handler as the kernels shipped it, with get_user_pages; the asm
        # handler with the pfn cache, as the proposal has it
        kvm={"strategy": strategy, "handler": handler,
             "pfn_source": "pfn-cache" if handler == "asm" else "gup"},
        vm=[{"vcpus": 1, "memory_mb": 64,
             "process": [{"workload": {"kind": "working-set", "pages": ws,
                                       "code_pages": CODE_PAGES,
                                       "syscall_every": SYSCALL_EVERY}}]}],
        host_task=[{"name": "hostd", "run_us": run_us, "sleep_us": period_us - run_us,
                    "workload": {"kind": "working-set", "pages": host_pages}}],
    )


def point(s: dict) -> dict:
    """The figures of one run that the study compares."""
    resumes = s["repopulation"]["resumes"]
    total = cpu_cycles(s)
    return {
        "cpa": s["cycles_per_guest_access"],
        "resumes": resumes,
        # the guest's resumes in the measured window (the warm-up's are not
        # counted): each follows a host task's turn on the CPU
        "switches_per_ms": resumes / measured_ms(s),
        "misses_per_resume": s["repopulation"]["misses_per_resume"],
        "save_restore_share": s["cycles"]["save_restore"] / total,
        "fastpath_share": s["cycles"]["fastpath"] / total,
        "host_eviction_misses": s["tlb"]["guest"]["misses_by_cause"]["host-eviction"],
        "flush_misses": s["tlb"]["guest"]["misses_by_cause"]["flush"],
        "self_eviction_misses": s["tlb"]["guest"]["misses_by_cause"]["self-eviction"],
        "guest_misses": s["tlb"]["guest"]["misses"],
        "isolation_violations": s["tlb"]["isolation_violations"],
        "label": s["design"]["label"],
        "hypothetical": s["design"]["hypothetical"],
    }


def break_even(xs: list, direct: list, shadow: list):
    """The smallest x at which direct > shadow, interpolated linearly between the
    last point where direct <= shadow and the first where it is not.

    ``xs`` ascending.  Returns (x or None, how): 'interpolated', 'at first point'
    (direct already loses at the smallest x) or 'none in range'.
    """
    prev = None
    for x, d, sh in zip(xs, direct, shadow):
        diff = d - sh
        if diff > 0:
            if prev is None:
                return x, "at first point"
            px, pd = prev
            if pd == diff:
                return x, "interpolated"
            return px + (x - px) * (0 - pd) / (diff - pd), "interpolated"
        prev = (x, diff)
    return None, "none in range"


def break_even_band(p: dict, rec: Recorder, plot_dir: str) -> dict:
    """Where ``direct-noflush`` stops beating ``shadow-modified`` along the pages the
    host touches, at the default costs and over the costs of ``p["band_costs"]``
    sampled by Morris over their ranges (one seed); the band plotted into ``plot_dir``
    (its files named in ``plots``)."""
    a, b = BAND_DESIGNS
    base = make(a, "asm", p["pages_ws"], p["pages_period"], p["duration_ms"],
                warmup_ms=p["warmup_ms"])
    base["name"] = (f"{NAME}: ws={p['pages_ws']} period={p['pages_period']}us, "
                    f"host pages varied")
    result = run_sensitivity(
        base, f"kvm.strategy={a},{b}", method="morris", samples=p["band_samples"],
        seed=0, costs=list(p["band_costs"]),
        break_even=(HOST_PAGES_KEY, list(p["host_pages"])),
        runner=lambda jobs: [rec.run(f"band/{j.label}", j.scenario, j.overrides)
                             for j in jobs])
    write_files(plot_dir, result, plots=False)
    plots = save_figure(tornado_plot(result), os.path.join(plot_dir, "tornado"))
    plots += save_figure(break_even_plot(result, xlabel=(
        f"pages the host task touches each time it runs ({HOST_PAGES_KEY}, pages)")),
        os.path.join(plot_dir, "break_even"))
    be = result["break_even"]
    return {"key": be["key"], "values": be["values"], "default": be["default"],
            "band": be["band"], "win_share_at_base": result["win_share"],
            "base_host_pages": HOST_PAGES, "vectors": result["sampled_vectors"],
            "costs": list(p["band_costs"]), "ranking": result["ranking"],
            "flipping_at_base": result["flipping"],
            "plots": [os.path.basename(f) for f in plots]}


def study(quick: bool, recorder: Recorder | None = None, plot_dir: str | None = None) -> dict:
    # the band, last, samples through SALib: said before the first run if it is not installed
    salib_sampler("morris", who=f"study {NAME}: its break-even band (Morris)")
    rec = recorder or Recorder()
    p = plan(quick)
    dur, wu = p["duration_ms"], p["warmup_ms"]
    out: dict = {"plan": {k: list(v) if isinstance(v, tuple) else v for k, v in p.items()}}

    # 1. every design at one point
    matrix = {}
    for strategy in STRATEGIES:
        for handler in HANDLERS:
            label = f"matrix/{strategy}/{handler}"
            s = rec.run(label, make(strategy, handler, MATRIX_POINT["ws"],
                                    MATRIX_POINT["period_us"], dur, warmup_ms=wu))
            matrix[f"{strategy}/{handler}"] = point(s)
    out["matrix_point"] = MATRIX_POINT
    out["matrix"] = matrix

    # 2. the host context-switch rate, for several working sets
    sweep = {}
    for handler in p["sweep_handlers"]:
        for ws in p["ws"]:
            for period in p["periods"]:
                for strategy in p["sweep_strategies"]:
                    label = f"rate/{strategy}/{handler}/ws{ws}/period{period}"
                    s = rec.run(label, make(strategy, handler, ws, period, dur, warmup_ms=wu))
                    sweep[f"{strategy}/{handler}/ws{ws}/period{period}"] = point(s)
    out["sweep"] = sweep

    be_rate = {}
    for handler in p["sweep_handlers"]:
        for ws in p["ws"]:
            periods = sorted(p["periods"], reverse=True)        # ascending rate
            rates = [1000.0 / per for per in periods]           # host wake-ups per ms
            d = [sweep[f"direct/{handler}/ws{ws}/period{per}"] for per in periods]
            sh = [sweep[f"{BASELINE}/{handler}/ws{ws}/period{per}"] for per in periods]
            x, how = break_even(rates, [r["cpa"] for r in d], [r["cpa"] for r in sh])
            be_rate[f"{handler}/ws{ws}"] = {"cpa": {"switches_per_ms": x, "how": how,
                                                    "period_us": 1000.0 / x if x else None}}
    out["break_even_rate"] = be_rate

    # 3. the pages the host touches, at one rate
    pages = {}
    for hp in p["host_pages"]:
        for strategy in p["pages_strategies"]:
            label = f"pages/{strategy}/asm/host{hp}"
            s = rec.run(label, make(strategy, "asm", p["pages_ws"], p["pages_period"], dur,
                                    host_pages=hp, warmup_ms=wu))
            pages[f"{strategy}/host{hp}"] = point(s)
    out["host_pages_sweep"] = pages
    hps = list(p["host_pages"])
    x, how = break_even(hps, [pages[f"direct/host{h}"]["cpa"] for h in hps],
                        [pages[f"{BASELINE}/host{h}"]["cpa"] for h in hps])
    out["break_even_host_pages"] = {"cpa": {"host_pages": x, "how": how}}

    # 4. the same break-even with its band over the costs; its folder named
    # relative to the study's, which is written elsewhere and then put in place
    out["break_even_band"] = band_in(p, rec, plot_dir)
    return out


def band_in(p: dict, rec: Recorder, plot_dir: Optional[str]) -> dict:
    """:func:`break_even_band`, its plots in ``plot_dir/break_even`` (``dir``:
    that folder, relative to the study's); without ``plot_dir`` drawn into a
    folder removed again (``dir`` None, no plots): the study leaves no folder
    behind."""
    if plot_dir:
        return dict(break_even_band(p, rec, os.path.join(plot_dir, "break_even")),
                    dir="break_even")
    with tempfile.TemporaryDirectory(prefix="emu-shadow-vs-direct-") as band_dir:
        return dict(break_even_band(p, rec, band_dir), plots=[], dir=None)


def report(r: dict, width: Optional[int] = None) -> str:
    lines = []
    mp = r["matrix_point"]
    lines.append(f"Every design at WS = {mp['ws']} pages, host period {mp['period_us']} us:")
    rows = []
    for key, v in r["matrix"].items():
        rows.append([v.get("label", key), v["cpa"], v["switches_per_ms"],
                     v["misses_per_resume"], pct(v["save_restore_share"]),
                     pct(v["fastpath_share"]), v["host_eviction_misses"], v["flush_misses"],
                     v["isolation_violations"]])
    lines.append(table(["design", "cycles/access", "resumes/ms",
                        "misses/resume", "save/restore", "fast path", "host-evicted",
                        "flushed", "violations"], rows, width))
    plan_ = r["plan"]
    for handler in plan_["sweep_handlers"]:
        for ws in plan_["ws"]:
            lines.append("")
            lines.append(f"handler {handler}, WS = {ws} pages: cycles per guest access "
                         f"against the host task's wake-ups (one each period)")
            rows = []
            for per in sorted(plan_["periods"], reverse=True):
                row = [f"{per} us", 1000.0 / per]
                for st in plan_["sweep_strategies"]:
                    row.append(r["sweep"][f"{st}/{handler}/ws{ws}/period{per}"]["cpa"])
                d = r["sweep"][f"direct/{handler}/ws{ws}/period{per}"]
                sh = r["sweep"][f"{BASELINE}/{handler}/ws{ws}/period{per}"]
                row += [d["misses_per_resume"], sh["misses_per_resume"],
                        "direct" if d["cpa"] <= sh["cpa"] else BASELINE]
                rows.append(row)
            lines.append(table(["period", "wake-ups/ms"]
                               + [_shown(st, handler) for st in plan_["sweep_strategies"]]
                               + ["direct miss/res", f"{BASELINE} miss/res", "cheaper"], rows,
                               width))
    lines.append("")
    lines.append(f"Break-even host wake-up rate (direct's cycles/access > {BASELINE}'s):")
    rows = []
    for key, e in r["break_even_rate"].items():
        x = e["cpa"]
        rows.append([key, f"{x['switches_per_ms']:.1f}/ms (period {x['period_us']:.0f} us, "
                          f"{x['how']})" if x["switches_per_ms"] else x["how"]])
    lines.append(table(["handler/WS", "break-even"], rows, width))
    lines.append("")
    lines.append(f"Pages the host touches (WS = {plan_['pages_ws']}, period "
                 f"{plan_['pages_period']} us, asm): cycles per guest access")
    rows = []
    # what the host evicts shows without direct's flush: direct-noflush's causes
    causes = "direct-noflush" if "direct-noflush" in plan_["pages_strategies"] else "direct"
    for hp in plan_["host_pages"]:
        rows.append([hp] + [r["host_pages_sweep"][f"{st}/host{hp}"]["cpa"]
                            for st in plan_["pages_strategies"]]
                    + [r["host_pages_sweep"][f"direct/host{hp}"]["misses_per_resume"]]
                    + [r["host_pages_sweep"][f"{causes}/host{hp}"][k]
                       for k in ("host_eviction_misses", "self_eviction_misses")])
    lines.append(table(["host pages"] + [_shown(st, "asm") for st in plan_["pages_strategies"]]
                       + ["direct miss/res", f"{causes} host-evicted",
                          f"{causes} self-evicted"], rows, width))
    e = r["break_even_host_pages"]["cpa"]
    x = e["host_pages"]
    lines.append(f"break-even host pages (direct's cycles/access > {BASELINE}'s): "
                 + _break_even_pages(x, e["how"]))
    lines.append("")
    lines += band_report(r["break_even_band"], plan_)
    return fit_lines(lines, width)


def _break_even_pages(x, how: str) -> str:
    """Where ``direct`` stops being the cheaper along the host's pages, said
    so that a break-even at the first point is not read as one found.

    >>> _break_even_pages(8, "at first point")
    'none: direct is the dearer from the first count (8 pages)'
    >>> _break_even_pages(14.7, "interpolated"), _break_even_pages(None, "none in range")
    ('15 (interpolated)', 'none in range')
    """
    if x is None:
        return how
    if how == "at first point":
        return f"none: direct is the dearer from the first count ({x:.0f} pages)"
    return f"{x:.0f} ({how})"


def _shown(strategy: str, handler: str) -> str:
    """A design's column: with the asm handler (and the pfn cache) only
    ``direct`` is a machine proposed, the proposal; the others none shipped."""
    if handler != "asm":
        return strategy
    return f"{strategy} (proposal)" if strategy == "direct" else f"{strategy} (hypothetical)"


def band_report(b: dict, plan_: dict) -> list:
    """The break-even with its band, in a few lines."""
    d, band = b["default"], b["band"]
    a, sh = BAND_DESIGNS
    lines = [f"Break-even with its band: {a} (hypothetical) against {sh} along the pages "
             f"the host "
             f"touches (WS = {plan_['pages_ws']}, period {plan_['pages_period']} us, asm), "
             f"{band['vectors']} cost vectors sampled by Morris over the ranges of "
             f"{', '.join(b['costs'])}:"]
    if d["at"] is not None:
        lines.append(f"  at the default costs: {a} {d['direction'][2:]} at "
                     f"{d['at']:.1f} host pages")
    else:
        lines.append(f"  at the default costs: no break-even in {b['values'][0]}.."
                     f"{b['values'][-1]} host pages ({d['direction'].replace('A', a)})")
    if band["crossed"]:
        lines.append(f"  over the sampled costs: {band['low']:.1f}..{band['high']:.1f} host "
                     f"pages ({band['crossed']} of {band['vectors']} vectors cross)")
    for who, n in ((a, band["a_wins_throughout"]), (sh, band["b_wins_throughout"])):
        if n:
            lines.append(f"  {n} of {band['vectors']} vectors never cross: {who} wins from "
                         f"{b['values'][0]} to {b['values'][-1]} host pages")
    lines.append(f"  at {b['base_host_pages']} host pages, {a} beats {sh} in "
                 f"{100 * b['win_share_at_base']:.0f}% of the sampled cost vectors; the costs "
                 f"that move the ratio most: {', '.join(b['ranking'][:3])}")
    if b["dir"] is None:
        lines.append("  plots: none drawn (--out DIR draws the tornado and the band there)")
    else:
        lines.append("  plots (PNG and SVG): " + ", ".join(os.path.basename(p) for p in b["plots"])
                     + f" in {b['dir']}")
    return lines


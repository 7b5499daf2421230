"""How many TLB misses does a guest take after each host context switch, and why?

The teaching scenario.  A guest process with a 24-page working set shares one
440 CPU with a host task that wakes every 200 µs, runs for 20 µs and touches
N pages of its own (N = 8 … 256).  Every time the vCPU is switched back in
(a *resume*), it finds in the hardware TLB whatever its design left there:

* ``direct`` (7924bd41's design, run here as the proposal: the assembly
  handler and the pfn cache) runs ``_tlbia()`` at vcpu_put: the guest
  refills its whole working set after every resume, whatever the host did;
* ``direct-noflush`` (hypothetical: 7924bd41 without that flush) leaves the
  guest's entries where they were, and the host's round robin overwrites one
  per host miss: the more pages the host touched, the more the guest must
  refill.  Because the round robin keeps going through the guest's own
  refills, one eviction can cascade into more;
* ``direct-save-on-switch`` saves the guest's entries at vcpu_put and writes
  them back at vcpu_load: nothing to refill once the pages are in, whatever
  the host did;
* ``shadow`` / ``shadow-modified`` rewrite their shadow array at entry: the
  same, paid on every entry instead.

What to look at: the first table, "misses after a resume" (the misses in the
first 512 accesses of the guest, its kernel's too, after each vcpu_load,
averaged over resumes) against the host's pages: it grows with N for
``direct-noflush``, stays at the working set for ``direct`` and near zero for
``direct-save-on-switch`` (about
2 in the full run; ``--quick`` has no warm-up, so the guest's first fill is
counted too: about 8); ``shadow`` (2.6.26, the guest-tid era) refills what
its guest's privilege switches flush (docs/kvm440.md §2.10), whatever the
host did, and ``shadow-modified`` (2.6.28, tid01) keeps its entries as
``direct-save-on-switch`` does.  The
cause columns say who evicted what; the curve table (miss rate
by position after the resume) shows that the misses come at once, in the
first few hundred accesses; a position no resume reached (its guest ran
fewer accesses before the next switch) has no rate: "-" in the table, a gap
in the figure.

With ``--out DIR`` the lesson draws its figures into DIR: ``repopulation.png``
(the misses after a resume against the host's pages, and the miss rate by
position after the resume) and ``occupancy_<design>.png``, who owns each
hardware TLB entry over the last millisecond of the run with the fewest host
pages.  Its runs record that timeline (``sim.timeline = true``, a sample of
a CPU's TLB owners after every quantum it runs, at most 100 µs each, not
only at context switches): under ``direct`` the guest's
entries vanish at every vcpu_put (the host task finds the TLB free), under
``direct-noflush`` the host task's few entries eat into them, under
``direct-save-on-switch`` they come back whole at every vcpu_load.
"""

from __future__ import annotations

import os
from typing import Optional

import numpy as np

from emu.report.columns import fit_lines
from emu.report.plots import (RUN_COLOURS, new_figure, occupancy_timeline, save_figure,
                              style)
from emu.stats.summary import cpu_cycles
from emu.study.lib import Recorder, scenario, table

NAME = "repopulation_lesson"
DESIGNS = ("direct", "direct-noflush", "direct-save-on-switch", "shadow", "shadow-modified")
GUEST_PAGES = 24
CODE_PAGES = 4
HOST_RUN_US, HOST_PERIOD_US = 20, 200
WINDOW = 512
BUCKETS = ((0, 16), (16, 64), (64, 128), (128, 256), (256, 512))
#: Every design runs with the asm handler and the pfn cache, which only the
#: proposal (direct) had: the others are machines no kernel shipped, and
#: direct-noflush never shipped in any form.
HYPOTHETICAL = tuple(d for d in DESIGNS if d != "direct")
#: Markers that tell the designs apart where their lines overlap.
MARKERS = ("o", "s", "^", "D", "v")
LINESTYLES = ("-", "--", "-", "-.", ":")
CURVE_STEP = 16
#: The designs whose occupancy timeline is drawn, and how much of the run.
OCCUPANCY_DESIGNS = ("direct", "direct-noflush", "direct-save-on-switch")
OCCUPANCY_US = 1000


def plan(quick: bool) -> dict:
    if quick:
        return {"duration_ms": 3, "host_pages": (8, 64, 256)}
    return {"duration_ms": 12, "host_pages": (8, 16, 32, 48, 64, 96, 128, 192, 256)}


def make(design: str, host_pages: int, duration_ms: float) -> dict:
    return scenario(
        name=f"{NAME}: {design}, host touches {host_pages} pages",
        question="TLB misses after each resume against the pages the host touched",
        duration_ms=duration_ms,
        machine={"core": "440", "cpus": 1},
        kvm={"strategy": design, "handler": "asm", "pfn_source": "pfn-cache"},
        vm=[{"vcpus": 1, "memory_mb": 64,
             "process": [{"workload": {"kind": "working-set", "pages": GUEST_PAGES,
                                       "code_pages": CODE_PAGES}}]}],
        host_task=[{"name": "hostd", "run_us": HOST_RUN_US,
                    "sleep_us": HOST_PERIOD_US - HOST_RUN_US,
                    "workload": {"kind": "working-set", "pages": host_pages,
                                 "inst_fraction": 0.1, "code_pages": 2}}],
        sim={"repopulation_window": WINDOW, "timeline": True},
    )


def miss_rate(misses: list, accesses: list):
    """Misses over accesses of some positions after a resume; None when no resume
    reached those positions (no access: no rate, which is not a rate of 0)."""
    acc = sum(accesses)
    return sum(misses) / acc if acc else None


def curve(s: dict) -> list:
    """Miss rate in each bucket of positions after a resume (None: no access there)."""
    m, a = s["repopulation"]["misses"], s["repopulation"]["accesses"]
    return [miss_rate(m[lo:hi], a[lo:hi]) for lo, hi in BUCKETS]


def study(quick: bool, recorder: Recorder | None = None, plot_dir: str | None = None) -> dict:
    """The lesson's numbers; its figures too (:func:`write_figures`) into ``plot_dir``,
    or else into the recorder's output folder if it has one."""
    rec = recorder or Recorder()
    plot_dir = plot_dir or rec.out
    p = plan(quick)
    points: dict = {d: {} for d in DESIGNS}
    curves: dict = {d: {} for d in DESIGNS}
    first: dict = {}                      # design -> the Result of the fewest host pages
    for hp in p["host_pages"]:
        for d in DESIGNS:
            s = rec.run(f"{d}/host{hp}", make(d, hp, p["duration_ms"]))
            if hp == min(p["host_pages"]):
                first[d] = rec.last
            resumes = s["repopulation"]["resumes"] or 1
            causes = s["tlb"]["guest"]["misses_by_cause"]
            host = s["tlb"]["host"]
            points[d][hp] = {
                "misses_after_resume": s["repopulation"]["misses_per_resume"],
                "resumes": s["repopulation"]["resumes"],
                "non_compulsory_per_resume":
                    (s["tlb"]["guest"]["misses"] - causes["compulsory"]) / resumes,
                "flush_per_resume": causes["flush"] / resumes,
                "host_eviction_per_resume": causes["host-eviction"] / resumes,
                "self_eviction_per_resume": causes["self-eviction"] / resumes,
                "host_misses_per_resume": host["misses"] / resumes,
                "cycles_per_guest_access": s["cycles_per_guest_access"],
                "save_restore_share": s["cycles"]["save_restore"]
                / cpu_cycles(s),
            }
            curves[d][hp] = {"buckets": curve(s),
                             "misses": s["repopulation"]["misses"],
                             "accesses": s["repopulation"]["accesses"]}
    growth = {d: points[d][max(p["host_pages"])]["misses_after_resume"]
              - points[d][min(p["host_pages"])]["misses_after_resume"] for d in DESIGNS}
    r = {"plan": {"duration_ms": p["duration_ms"], "host_pages": list(p["host_pages"]),
                  "guest_pages": GUEST_PAGES, "window": WINDOW},
         "points": {d: {str(k): v for k, v in points[d].items()} for d in DESIGNS},
         "curves": {d: {str(k): v["buckets"] for k, v in curves[d].items()} for d in DESIGNS},
         "growth": growth,
         "_raw_curves": curves}
    if plot_dir:
        r["figures"] = [os.path.basename(f) for f in write_figures(r, first, plot_dir)]
    return r


def shown(design: str) -> str:
    """A design as tables and plots name it: marked when no kernel shipped it,
    and ``direct`` named as what it runs here, the proposal (not 7924bd41)."""
    if design == "direct":
        return "direct (the proposal: asm + pfn cache)"
    return f"{design} (hypothetical)" if design in HYPOTHETICAL else design


def report(r: dict, width: Optional[int] = None) -> str:
    hps = r["plan"]["host_pages"]
    lines = [f"Misses in the first {r['plan']['window']} accesses of the guest (its kernel's "
             f"too, as the TLB sees them) after a resume "
             f"(guest working set {r['plan']['guest_pages']} pages + {CODE_PAGES} code pages):"]
    rows = []
    for hp in hps:
        host = r["points"]["direct"][str(hp)]["host_misses_per_resume"]
        rows.append([hp, host] + [r["points"][d][str(hp)]["misses_after_resume"]
                                  for d in DESIGNS])
    lines.append(table(["host pages", "host misses/run"] + [shown(d) for d in DESIGNS], rows,
                       width))
    lines.append("")
    # direct's misses are its flush's; without the flush, the host's evictions show
    lines.append("Misses per resume over the whole run, by cause, with and without "
                 "direct's flush at vcpu_put:")
    rows = [[hp, shown(d)] + [r["points"][d][str(hp)].get(k) for k in
                              ("non_compulsory_per_resume", "flush_per_resume",
                               "host_eviction_per_resume", "self_eviction_per_resume",
                               "cycles_per_guest_access")]
            for hp in hps for d in ("direct", "direct-noflush")]
    lines.append(table(["host pages", "design", "non-compulsory", "flushed", "host-evicted",
                        "self-evicted", "cycles/access"], rows, width, keys=2))
    lines.append("")
    big = max(hps)
    lines.append(f"Miss rate by position after the resume (host touches {big} pages):")
    rows = [[shown(d)] + ["-" if x is None else f"{100 * x:.2f}%"
                          for x in r["curves"][d][str(big)]] for d in DESIGNS]
    lines.append(table(["design"] + [f"{lo}-{hi - 1}" for lo, hi in BUCKETS], rows, width))
    lines.append("(-: no resume ran that many guest accesses, so no rate)")
    lines.append("")
    lines.append("growth of misses after a resume from the fewest to the most host pages: "
                 + ", ".join(f"{shown(d)} {g:+.1f}" for d, g in r["growth"].items()))
    return fit_lines(lines, width)


def plot(r: dict, path: str) -> None:
    """Misses after a resume against the host's pages, and the miss rate by position
    after the resume for the most pages: one PNG at ``path``."""
    hps = r["plan"]["host_pages"]
    big = max(hps)
    with style():
        fig = new_figure(figsize=(11, 4.4))
        a, b = fig.subplots(1, 2)
        for n, (d, colour, marker, ls) in enumerate(zip(DESIGNS, RUN_COLOURS, MARKERS,
                                                        LINESTYLES)):
            label = shown(d)
            # NOTE: equal values overlap; each later design is drawn thinner and smaller,
            # so the one underneath still shows around it
            look = dict(marker=marker, color=colour, linestyle=ls, label=label,
                        markersize=10 - 1.5 * n, linewidth=3.2 - 0.5 * n)
            a.plot(hps, [r["points"][d][str(h)]["misses_after_resume"] for h in hps], **look)
            raw = r["_raw_curves"][d][big]
            xs, ys = [], []
            for lo in range(0, len(raw["misses"]), CURVE_STEP):
                rate = miss_rate(raw["misses"][lo:lo + CURVE_STEP],
                                 raw["accesses"][lo:lo + CURVE_STEP])
                xs.append(lo + CURVE_STEP / 2)
                ys.append(np.nan if rate is None else 100 * rate)   # NaN: a gap in the line
            b.plot(xs, ys, markevery=4, **look)
        a.set_ylim(bottom=0)
        a.set_title("Misses after each resume")
        a.set_xlabel("pages the host task touches per run (its working set)")
        a.set_ylabel(f"guest TLB misses in the first {r['plan']['window']}\n"
                     "accesses after a vcpu_load (mean)")
        a.legend(title="design")
        b.set_title(f"Miss rate after a resume (host touches {big} pages)")
        b.set_xlabel(f"accesses of the guest, its kernel's too, since the vcpu_load (in "
                     f"groups of {CURVE_STEP})")
        b.set_ylabel("guest TLB miss rate (%)")
        b.legend(title="design", loc="upper right")
        fig.tight_layout()
        save_figure(fig, path, ("png",), 100)


def occupancy(result, design: str, host_pages: int, path: str) -> None:
    """The hardware TLB's owners over the last :data:`OCCUPANCY_US` µs of one run
    (made with ``sim.timeline = true``): one PNG at ``path``."""
    tl = result.arrays["timeline"]
    clock = result.summary["costs"]["clock_mhz"]
    keep = tl["time"] >= tl["time"][-1] - OCCUPANCY_US * clock
    window = {k: np.asarray(v)[keep] for k, v in tl.items()}
    label = f"{shown(design)}, host task touches {host_pages} pages; last {OCCUPANCY_US:,} µs"
    save_figure(occupancy_timeline(result, window, label=label), path, ("png",), 100)


def write_figures(r: dict, results: dict, out: str) -> list:
    """The lesson's PNGs in ``out``: ``repopulation.png`` and one occupancy timeline
    per design of :data:`OCCUPANCY_DESIGNS` (``results``: design -> the Result of
    the fewest host pages, where the designs differ most); their paths."""
    os.makedirs(out, exist_ok=True)
    plot(r, os.path.join(out, "repopulation"))
    paths = [os.path.join(out, "repopulation.png")]
    few = min(r["plan"]["host_pages"])
    for d in OCCUPANCY_DESIGNS:
        stem = os.path.join(out, f"occupancy_{d}")
        occupancy(results[d], d, few, stem)
        paths.append(stem + ".png")
    return paths

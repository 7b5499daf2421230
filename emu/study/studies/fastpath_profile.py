"""What does each step of the TLB miss handler cost, and what does each design choice buy?

The handler of docs/design.md §1/§3, step by step: save registers (``asm``: a few;
``c``: a full exit with the C ABI), walk the guest TLB (a linear scan, charged
per entry scanned, or a hashed lookup), deliver the miss to the guest if the
guest has no entry, else compute the GPA, check the memslot, look up the host
pfn (``pfn-cache``, ``gup`` = always the deferred C path and
``gfn_to_pfn()``, ``pin-all``), write the hardware entry, restore and return.

The guest keeps its own TLB full: a 120-page Zipf working set (the hot pages
hit, the tail keeps the guest's round robin busy).  A linear walk scans all
64 entries when it finds none, and nearly all when it finds one (about 53 on
average with ``--quick``): most misses KVM fixes are of the guest kernel's
pages, whose pinned entry is the last of the guest TLB.  A host task evicts guest entries every 100 µs so that most hardware
misses are fixed by KVM without the guest.

What to look at: the table of mean cycles per hardware miss by step (each
step's cycles divided by all guest misses, so the columns add up to the mean
cost of a miss), the ``walk`` column (linear vs hashed), the ``full_exit`` and
``restore`` columns (asm vs c), the ``deferred_c_path`` and ``gfn_to_pfn``
columns (pfn source); and the stacked bar chart ``fastpath_profile.png``
(drawn into ``--out``; without it, none).
"""

from __future__ import annotations

import os
from typing import Optional

from emu.report.columns import fit_lines
from emu.study.lib import marked, Recorder, scenario, table

NAME = "fastpath_profile"
PNG = "fastpath_profile.png"
STEPS = ("save", "full_exit", "walk", "deliver", "gpa", "memslot", "pfn_lookup", "hw_write",
         "restore", "entry_restore", "deferred_c_path", "gfn_to_pfn")


def plan(quick: bool) -> dict:
    # the first is direct as 7924bd41 shipped it (C, linear walk, gup): what
    # every other row is set against, --quick too
    base = [("c", "linear", "gup", 120),
            ("asm", "linear", "pfn-cache", 120), ("asm", "hashed", "pfn-cache", 120),
            ("c", "linear", "pfn-cache", 120), ("c", "hashed", "pfn-cache", 120),
            ("asm", "linear", "gup", 120), ("asm", "linear", "pin-all", 120)]
    if quick:
        return {"duration_ms": 3, "configs": base}
    more = [("c", "linear", "pin-all", 120),
            ("asm", "hashed", "gup", 120), ("asm", "hashed", "pin-all", 120),
            ("asm", "linear", "pfn-cache", 8), ("asm", "hashed", "pfn-cache", 8)]
    return {"duration_ms": 12, "configs": base + more}


def label(handler, walk, source, pages) -> str:
    return f"{handler}/{walk}/{source}" + ("" if pages == 120 else f"/ws{pages}")


def make(handler: str, walk: str, source: str, pages: int, duration_ms: float) -> dict:
    return scenario(
        name=f"{NAME}: {label(handler, walk, source, pages)}",
        question="per-step cycle profile of the TLB miss handler",
        duration_ms=duration_ms,
        machine={"core": "440", "cpus": 1},
        kvm={"strategy": "direct", "handler": handler, "guest_tlb_walk": walk,
             "pfn_source": source},
        vm=[{"vcpus": 1, "memory_mb": 64,
             "process": [{"workload": {"kind": "working-set", "pages": pages,
                                       "distribution": "zipf", "zipf_s": 1.0,
                                       "code_pages": 4}}]}],
        host_task=[{"name": "hostd", "run_us": 10, "sleep_us": 90,
                    "workload": {"kind": "working-set", "pages": 96}}],
    )


def study(quick: bool, recorder: Recorder | None = None, png_dir: str | None = None) -> dict:
    rec = recorder or Recorder()
    p = plan(quick)
    points = {}
    for cfg in p["configs"]:
        lab = label(*cfg)
        s = rec.run(lab, make(*cfg, p["duration_ms"]))
        prof = s["fastpath_profile"]
        misses = s["tlb"]["guest"]["misses"]
        per_miss = {st: prof[st]["cycles"] / misses if misses else 0.0 for st in STEPS}
        points[lab] = {
            "handler": cfg[0], "walk": cfg[1], "pfn_source": cfg[2], "pages": cfg[3],
            "guest_misses": misses,
            "per_miss": per_miss,
            "cycles_per_miss": sum(per_miss.values()),
            "walk_mean": prof["walk"]["mean"],
            "step_means": {st: prof[st]["mean"] for st in STEPS},
            "step_counts": {st: prof[st]["count"] for st in STEPS},
            "cycles_per_guest_access": s["cycles_per_guest_access"],
            "virt_share": ((s["exits"]["DTLBVIRT"]["count"] + s["exits"]["ITLBVIRT"]["count"])
                           / misses if misses else 0.0),
        }
    # the chart goes where asked: png_dir, or the study's own folder (named
    # relative to it: the folder is written beside its place, then moved there)
    png = None
    if png_dir or rec.out:
        plot(points, os.path.join(png_dir or rec.out, PNG),
             {"hypothetical_runs": rec.hypothetical, "proposal_runs": rec.proposal})
        png = os.path.join(png_dir, PNG) if png_dir else PNG
    return {"plan": {"duration_ms": p["duration_ms"],
                     "configs": [label(*c) for c in p["configs"]]},
            "points": points, "png": png}


def plot(points: dict, path: str, runs: Optional[dict] = None) -> None:
    """A stacked bar per configuration: mean cycles per miss, one segment per
    step; each bar named as the tables name it (``runs``: :func:`marked`)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = list(points)
    fig, ax = plt.subplots(figsize=(max(7, 1.3 * len(labels)), 5))
    bottom = [0.0] * len(labels)
    cmap = plt.get_cmap("tab20")
    for k, st in enumerate(STEPS):
        vals = [points[lab]["per_miss"][st] for lab in labels]
        if not any(vals):
            continue
        ax.bar(range(len(labels)), vals, bottom=bottom, label=st, color=cmap(k))
        bottom = [b + v for b, v in zip(bottom, vals)]
    ax.set_xticks(range(len(labels)), [marked(lab, runs or {}) for lab in labels])
    ax.set_ylabel("mean cycles per guest TLB miss")
    ax.set_title("TLB miss handler: cycles per miss by step (handler/walk/pfn source)")
    ax.legend(fontsize=8, ncol=2)
    plt.setp(ax.get_xticklabels(), rotation=30, ha="right")
    fig.tight_layout()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def report(r: dict, width: Optional[int] = None) -> str:
    shown = [st for st in STEPS if any(v["per_miss"][st] for v in r["points"].values())]
    rows = [[marked(lab, r), v["guest_misses"], f"{100 * v['virt_share']:.0f}%"]
            + [v["per_miss"][st] for st in shown] + [v["cycles_per_miss"], v["walk_mean"]]
            for lab, v in r["points"].items()]
    return fit_lines(["Mean cycles per guest TLB miss, by step (handler/walk/pfn source):",
                      table(["config", "misses", "KVM-fixed"] + shown + ["total", "walk mean"],
                            rows, width),
                      "", "stacked bars: " + (
                          "none drawn (--out DIR draws fastpath_profile.png there)"
                          if r["png"] is None else r["png"] if os.path.isabs(r["png"])
                          else f"{r['png']} in the study's folder")], width)


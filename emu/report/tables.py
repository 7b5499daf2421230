"""The tables of a report of runs, one row (or column) per run.

Each function takes ``runs``, a list of ``(label, summary)`` pairs whose
summaries passed :data:`emu.report.schema.SUMMARY` and whose labels are
short, and returns an HTML fragment (:mod:`emu.report.page`).
"""

from __future__ import annotations

import json

from emu.codes import CYCLE_CATEGORIES, EXIT_CATEGORIES, MISS_CAUSES, PROFILE_STEPS
from emu.costs import COSTS, COSTS_BY_NAME
from emu.report.page import esc, table
from emu.report.schema import shorten
from emu.report.text import fixed, kernel_us, key_figures
from emu.stats import figures


def _pct(percent) -> str:
    return "-" if percent is None else f"{percent:.2f} %"


def key_figures_table(runs) -> str:
    figs = [(label, key_figures(s)) for label, s in runs]
    header = ["design"] + list(figs[0][1])
    return table(header, [[label] + list(f.values()) for label, f in figs])


def cycles_table(runs) -> str:
    header = ["component"]
    for label, _ in runs:
        header += [f"{label}: % CPU", f"{label}: cycles/access"]
    rows = []
    for c in CYCLE_CATEGORIES:
        if not any(s["cycles"].get(c) for _, s in runs):
            continue
        row = [c]
        for _, s in runs:
            per_access = figures.per_guest_access(s, c)
            row += [_pct(figures.percent(s, c)),
                    "-" if per_access is None else f"{per_access:.4f}"]
        rows.append(row)
    return table(header, rows)


def _count_mean_table(runs, section: str, keys, first: str, mean: str, mean_key: str,
                      mean_fmt: str) -> tuple[list, list]:
    """Header and rows of a table with one row per key of ``s[section]`` that
    some run counted, and a count and a mean column per run."""
    header = [first]
    for label, _ in runs:
        header += [f"{label}: count", f"{label}: {mean}"]
    rows = []
    for key in keys:
        if not any(s[section].get(key, {}).get("count") for _, s in runs):
            continue
        row = [key]
        for _, s in runs:
            e = s[section].get(key, {})
            row += [f"{e.get('count', 0):,}", format(e.get(mean_key, 0.0), mean_fmt)]
        rows.append(row)
    return header, rows


def exits_table(runs) -> str:
    header, rows = _count_mean_table(runs, "exits", EXIT_CATEGORIES, "exit category",
                                     "mean µs", "mean_us", ".3f")
    if not rows:
        return "<p>No exits.</p>"
    if len(runs) == 1:
        # one run: the columns its text prints too, the longest exit and the
        # kernel's own whole-µs figures (timing.c; "-" in an older summary)
        label, s = runs[0]
        header += [f"{label}: {c}" for c in ("max µs", "kernel sum µs", "kernel max µs")]
        for row in rows:
            e = s["exits"][row[0]]
            row += [f"{e['max_us']:,.3f}", *kernel_us(e)]
    timeinguest = any(r[0] == "TIMEINGUEST" for r in rows)
    return table(header, rows) + ('<p class="note"><a class="term" href="#gl-timeinguest">'
                                   "TIMEINGUEST</a> is the time spent in the guest between "
                                   "exits, not an exit.</p>" if timeinguest else "")


def causes_table(runs) -> str:
    header = ["design"] + list(MISS_CAUSES) + ["total"]
    rows = []
    for label, s in runs:
        c = s["tlb"]["guest"]["misses_by_cause"]
        rows.append([label] + [f"{c.get(k, 0):,}" for k in MISS_CAUSES]
                    + [f"{s['tlb']['guest']['misses']:,}"])
    return table(header, rows)


def tlb_table(runs) -> str:
    header = ["design", "guest hits", "guest misses", "miss rate", "host hits", "host misses",
              "isolation violations", "resumes", "misses/resume (window)"]
    rows = []
    for label, s in runs:
        g, h, rep = s["tlb"]["guest"], s["tlb"]["host"], s["repopulation"]
        rows.append([label, f"{g['hits']:,}", f"{g['misses']:,}", f"{100 * g['miss_rate']:.4f} %",
                     f"{h['hits']:,}", f"{h['misses']:,}", f"{s['tlb']['isolation_violations']:,}",
                     f"{rep['resumes']:,}",
                     f"{fixed(rep['misses_per_resume'], 2)} ({rep['window']})"])
    return table(header, rows)


def memory_table(runs) -> str:
    keys = []
    for _, s in runs:
        keys += [k for k in s["memory_bytes"] if k not in keys]
    rows = [[shorten(k)] + [f"{s['memory_bytes'].get(k, 0):,}" for _, s in runs]
            for k in sorted(keys)]
    return table(["memory (bytes)"] + [label for label, _ in runs], rows)


def profile_table(runs) -> str:
    header, rows = _count_mean_table(runs, "fastpath_profile", PROFILE_STEPS, "step",
                                     "mean cycles", "mean", ",.1f")
    if not rows:
        return "<p>The miss handler never ran.</p>"
    return table(header, rows) + profile_spread_table(runs)


def profile_spread_table(runs) -> str:
    """The spread of each step's cycles (median and 90th percentile buckets of
    its histogram) and of the entries the guest TLB walk scanned."""
    header = ["step"]
    for label, _ in runs:
        header += [f"{label}: median", f"{label}: p90"]
    rows = []
    for step, entries in [(step, False) for step in PROFILE_STEPS] + [("walk", True)]:
        cells = [[figures.profile_quantile(s, step, q, entries) or "-" for q in (0.5, 0.9)]
                 for _, s in runs]
        if all(c == ["-", "-"] for c in cells):
            continue
        rows.append([f"{step} ({'entries scanned' if entries else 'cycles'})"]
                    + [c for pair in cells for c in pair])
    return ('<p class="note">The spread of each step: the log2 bucket of its histogram that '
            "holds the median and the 90th percentile occurrence (cycles; for the walk also "
            "the guest TLB entries scanned, exact up to 64).</p>"
            + table(header, rows, numeric_from=99))


def _flatten(obj, prefix="") -> dict:
    out = {}
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.update(_flatten(v, f"{prefix}{k}."))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out.update(_flatten(v, f"{prefix}{i}."))
    else:
        out[prefix[:-1]] = obj
    return out


def config_section(runs, key) -> str:
    parts = []
    if len(runs) > 1:
        flat = [_flatten(s["config"]) for _, s in runs]
        keys = sorted(set().union(*flat))
        differ = [k for k in keys if len({json.dumps(f.get(k), sort_keys=True) for f in flat}) > 1]
        if differ:
            parts.append("<p>What differs between the runs"
                         + (f" (the varied key is <code>{esc(key)}</code>)" if key else "") + ":</p>")
            parts.append(table(["key"] + [label for label, _ in runs],
                               [[shorten(k, 80)] + [shorten(json.dumps(f.get(k)), 80)
                                                    for f in flat] for k in differ],
                               numeric_from=99))
        parts.append(f"<p>The full configuration of the first run ({esc(runs[0][0])}):</p>")
    parts.append("<pre>" + esc(json.dumps(runs[0][1]["config"], indent=2, sort_keys=False)) + "</pre>")
    return "\n".join(parts)


def costs_section(runs) -> str:
    tables = [s["costs"] for _, s in runs]
    names = [c.name for c in COSTS if any(c.name in t for t in tables)]
    names += sorted({n for t in tables for n in t} - set(names))
    same = all(t == tables[0] for t in tables)
    value_cols = ["value"] if same else [f"value ({label})" for label, _ in runs]
    header = ["cost"] + value_cols + ["default", "unit", "group", "description", "source"]
    rows, classes = [], []
    for n in names:
        c = COSTS_BY_NAME.get(n)
        values = [tables[0].get(n, "-")] if same else [t.get(n, "-") for t in tables]
        default = c.default if c else "-"
        row = [shorten(n)] + [f"{v:,}" if isinstance(v, (int, float)) else str(v) for v in values]
        row += [f"{default:,}" if c else "-", (c.unit if c else "?", ""), (c.group if c else "?", ""),
                (c.description if c else "not in emu.costs", ""), (c.source if c else "", "src")]
        rows.append(row)
        classes.append("overridden" if c and any(v != c.default for v in values) else "")
    note = ('<p class="note">Every cost in core cycles unless its unit says otherwise; rows '
            "highlighted differ from the default (overridden by the scenario). Sources "
            "marked <em>estimate</em> have no published figure: treat them as lower bounds "
            "of the right order, not measurements.</p>")
    return note + table(header, rows, row_classes=classes)

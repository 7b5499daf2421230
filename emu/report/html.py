"""One self-contained HTML page for a run or a comparison (``emu report DIR``).

:func:`write_report` reads a run directory (``summary.json``, and
``timeline.npz`` when the run recorded one) or a comparison directory
(``comparison.json`` and one sub-directory per run, as ``emu compare --out``
writes them) and writes a single HTML file: the question, the generated
reading, the key figures, the plots (embedded as base64 PNG), the tables
(cycles, exits, misses by cause, repopulation, memory, fast-path profile), the
configuration and the cost table the run used with each cost's unit,
description and source.  The page needs no other file and no JavaScript.

The command line (:mod:`emu.cli.report`)::

    emu report results/ -o results/report.html
"""

from __future__ import annotations

import base64
import html
import json
import os
import tempfile

import numpy as np

from emu.run.files import write_text
from emu.codes import CYCLE_CATEGORIES, EXIT_CATEGORIES, MISS_CAUSES, PROFILE_STEPS
from emu.costs import COSTS, COSTS_BY_NAME
from emu.errors import EmuError
from emu.report.plots import comparison_plots, occupancy_timeline
from emu.report.reading import generate_reading
from emu.report.text import key_figures
from emu.stats import figures

#: Sections a file must have to be read as a summary.
_REQUIRED = ("config", "costs", "simulated_cycles", "cpus", "exits", "tlb", "cycles",
             "memory_bytes", "fastpath_profile", "repopulation")

_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em auto;
       max-width: 1200px; padding: 0 1em; color: #222; line-height: 1.4; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.25em; border-bottom: 1px solid #ccc; padding-bottom: 0.2em; margin-top: 1.8em; }
p.question { font-size: 1.1em; font-style: italic; }
p.meta, p.note { color: #555; font-size: 0.9em; }
table { border-collapse: collapse; margin: 0.6em 0 1em; font-size: 0.88em; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.55em; vertical-align: top; }
th { background: #f3f3f3; text-align: left; }
td.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.overridden td { background: #fff6d5; }
td.src { font-size: 0.85em; color: #444; max-width: 34em; }
figure { margin: 1em 0 1.6em; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: 0.9em; color: #444; }
pre { background: #f7f7f7; padding: 0.8em; overflow-x: auto; font-size: 0.82em; }
ul.reading li { margin: 0.25em 0; }
"""


# -- reading the directory -----------------------------------------------------------

def _read_json(path: str):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as err:
        raise EmuError(f"report: {path}: corrupt JSON ({err.msg} at line {err.lineno})") from None
    except (OSError, UnicodeDecodeError) as err:
        raise EmuError(f"report: cannot read {path}: {err}") from None


def _check_summary(s, path: str) -> dict:
    if not isinstance(s, dict):
        raise EmuError(f"report: {path}: not an emu summary (expected a JSON object)")
    for key in _REQUIRED:
        if key not in s:
            raise EmuError(f"report: {path}: not an emu summary (no {key!r})")
    return s


def _safe(label) -> str:
    # the directory name emu.run.write_comparison gives a run
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in str(label))


def _load_timeline(path: str):
    if not os.path.isfile(path):
        return None
    try:
        with np.load(path) as z:
            arrays = {k: z[k] for k in z.files}
    except Exception as err:  # a truncated or foreign file: numpy raises many kinds
        raise EmuError(f"report: {path}: cannot read the timeline ({err})") from None
    if not {"time", "cpu", "owner"} <= set(arrays):
        raise EmuError(f"report: {path}: not a TLB timeline (needs time, cpu, owner)")
    return arrays


def load_results(src_dir) -> dict:
    """Read a run or comparison directory.

    Returns ``{"kind": "run" | "comparison", "key": varied key or None,
    "runs": [(label, summary)], "timelines": {label: arrays or None}}``.
    Raises :class:`EmuError` (one line) when the directory is missing, holds
    neither file, or a file is corrupt.
    """
    src = os.fspath(src_dir)
    if not os.path.isdir(src):
        raise EmuError(f"report: {src}: no such directory")
    cmp_path = os.path.join(src, "comparison.json")
    run_path = os.path.join(src, "summary.json")
    if os.path.isfile(cmp_path):
        data = _read_json(cmp_path)
        runs_raw = data.get("runs") if isinstance(data, dict) else None
        if not isinstance(runs_raw, list) or not runs_raw:
            raise EmuError(f"report: {cmp_path}: not an emu comparison (no runs)")
        runs, timelines = [], {}
        for i, r in enumerate(runs_raw):
            if not isinstance(r, dict) or "summary" not in r:
                raise EmuError(f"report: {cmp_path}: run {i} has no summary")
            label = str(r.get("value", i))
            runs.append((label, _check_summary(r["summary"], f"{cmp_path} (run {label})")))
            timelines[label] = _load_timeline(os.path.join(src, _safe(label), "timeline.npz"))
        return {"kind": "comparison", "key": data.get("key"), "runs": runs, "timelines": timelines}
    if os.path.isfile(run_path):
        s = _check_summary(_read_json(run_path), run_path)
        label = str(s["config"].get("kvm", {}).get("strategy") or "run")
        return {"kind": "run", "key": None, "runs": [(label, s)],
                "timelines": {label: _load_timeline(os.path.join(src, "timeline.npz"))}}
    raise EmuError(f"report: {src} holds neither summary.json nor comparison.json "
                   "(write one with emu run --out DIR or emu compare --out DIR)")


# -- HTML pieces ---------------------------------------------------------------------

def _e(x) -> str:
    return html.escape(str(x), quote=True)


def _table(header: list, rows: list, numeric_from: int = 1, row_classes=None, caption=None) -> str:
    """An HTML table; cells from column ``numeric_from`` on are right-aligned."""
    out = ["<table>"]
    if caption:
        out.append(f"<caption>{_e(caption)}</caption>")
    out.append("<thead><tr>" + "".join(f"<th>{_e(h)}</th>" for h in header) + "</tr></thead>")
    out.append("<tbody>")
    for n, row in enumerate(rows):
        cls = f' class="{row_classes[n]}"' if row_classes and row_classes[n] else ""
        cells = []
        for i, c in enumerate(row):
            if isinstance(c, tuple):             # (text, css class)
                cells.append(f'<td class="{c[1]}">{_e(c[0])}</td>')
            elif i >= numeric_from:
                cells.append(f'<td class="n">{_e(c)}</td>')
            else:
                cells.append(f"<td>{_e(c)}</td>")
        out.append(f"<tr{cls}>" + "".join(cells) + "</tr>")
    out.append("</tbody></table>")
    return "\n".join(out)


def _pct(percent) -> str:
    return "-" if percent is None else f"{percent:.2f} %"


def _key_figures_table(runs) -> str:
    figs = [(label, key_figures(s)) for label, s in runs]
    header = ["design"] + list(figs[0][1])
    return _table(header, [[label] + list(f.values()) for label, f in figs])


def _cycles_table(runs) -> str:
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
    return _table(header, rows)


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


def _exits_table(runs) -> str:
    header, rows = _count_mean_table(runs, "exits", EXIT_CATEGORIES, "exit category",
                                     "mean µs", "mean_us", ".3f")
    if not rows:
        return "<p>No exits.</p>"
    timeinguest = any(r[0] == "TIMEINGUEST" for r in rows)
    return _table(header, rows) + ('<p class="note">TIMEINGUEST is the time spent in the guest '
                                   "between exits, not an exit.</p>" if timeinguest else "")


def _causes_table(runs) -> str:
    header = ["design"] + list(MISS_CAUSES) + ["total"]
    rows = []
    for label, s in runs:
        c = s["tlb"]["guest"]["misses_by_cause"]
        rows.append([label] + [f"{c.get(k, 0):,}" for k in MISS_CAUSES]
                    + [f"{s['tlb']['guest']['misses']:,}"])
    return _table(header, rows)


def _tlb_table(runs) -> str:
    header = ["design", "guest hits", "guest misses", "miss rate", "host hits", "host misses",
              "isolation violations", "resumes", "misses/resume (window)"]
    rows = []
    for label, s in runs:
        g, h, rep = s["tlb"]["guest"], s["tlb"]["host"], s["repopulation"]
        rows.append([label, f"{g['hits']:,}", f"{g['misses']:,}", f"{100 * g.get('miss_rate', 0):.4f} %",
                     f"{h['hits']:,}", f"{h['misses']:,}", f"{s['tlb']['isolation_violations']:,}",
                     f"{rep['resumes']:,}",
                     f"{rep['misses_per_resume']:.2f} ({rep.get('window', len(rep['misses']))})"])
    return _table(header, rows)


def _memory_table(runs) -> str:
    keys = []
    for _, s in runs:
        keys += [k for k in s["memory_bytes"] if k not in keys]
    rows = [[k] + [f"{s['memory_bytes'].get(k, 0):,}" for _, s in runs] for k in sorted(keys)]
    return _table(["memory (bytes)"] + [label for label, _ in runs], rows)


def _profile_table(runs) -> str:
    header, rows = _count_mean_table(runs, "fastpath_profile", PROFILE_STEPS, "step",
                                     "mean cycles", "mean", ",.1f")
    if not rows:
        return "<p>The miss handler never ran.</p>"
    return _table(header, rows)


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


def _config_section(runs, key) -> str:
    parts = []
    if len(runs) > 1:
        flat = [_flatten(s["config"]) for _, s in runs]
        keys = sorted(set().union(*flat))
        differ = [k for k in keys if len({json.dumps(f.get(k), sort_keys=True) for f in flat}) > 1]
        if differ:
            parts.append("<p>What differs between the runs"
                         + (f" (the varied key is <code>{_e(key)}</code>)" if key else "") + ":</p>")
            parts.append(_table(["key"] + [label for label, _ in runs],
                                [[k] + [json.dumps(f.get(k)) for f in flat] for k in differ],
                                numeric_from=99))
        parts.append(f"<p>The full configuration of the first run ({_e(runs[0][0])}):</p>")
    parts.append("<pre>" + _e(json.dumps(runs[0][1]["config"], indent=2, sort_keys=False)) + "</pre>")
    return "\n".join(parts)


def _costs_section(runs) -> str:
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
        row = [n] + [f"{v:,}" if isinstance(v, (int, float)) else str(v) for v in values]
        row += [f"{default:,}" if c else "-", (c.unit if c else "?", ""), (c.group if c else "?", ""),
                (c.description if c else "not in emu.costs", ""), (c.source if c else "", "src")]
        rows.append(row)
        classes.append("overridden" if c and any(v != c.default for v in values) else "")
    note = ('<p class="note">Every cost in core cycles unless its unit says otherwise; rows '
            "highlighted differ from the default (overridden by the scenario). Sources "
            "marked <em>estimate</em> have no published figure: treat them as lower bounds "
            "of the right order, not measurements.</p>")
    return note + _table(header, rows, row_classes=classes)


def _img(path: str, alt: str) -> str:
    with open(path, "rb") as f:
        data = base64.b64encode(f.read()).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{_e(alt)}">'


_PLOT_CAPTIONS = {
    "repopulation": ("Repopulation curve",
                     "TLB misses at each guest access after vcpu_load, averaged over resumes, "
                     "and their running sum."),
    "cycles": ("Cycle breakdown",
               "Where CPU time goes: every component as a share of CPU time, and the design's "
               "overheads in CPU cycles per guest access."),
    "exits": ("Exits by category", "Exit counts per KVM exit-timing category."),
    "miss_causes": ("Guest TLB misses by cause", "Each hardware TLB miss has exactly one cause."),
    "fastpath_profile": ("Miss handler profile",
                         "Each step's cycles divided by the guest TLB misses: the average cost "
                         "of a miss, step by step."),
}


def _plots_section(runs, timelines, tmp: str) -> str:
    out = []
    paths = comparison_plots(tmp, runs, formats=("png",), dpi=100)
    for stem, (png,) in paths.items():
        title, caption = _PLOT_CAPTIONS.get(stem, (stem, ""))
        out.append(f"<figure>{_img(png, title)}<figcaption><strong>{_e(title)}.</strong> "
                   f"{_e(caption)}</figcaption></figure>")
    for i, (label, s) in enumerate(runs):
        tl = timelines.get(label)
        if tl is None:
            continue
        for cpu in sorted(set(np.asarray(tl["cpu"]).tolist())):
            (png,) = occupancy_timeline(s, tl, os.path.join(tmp, f"occupancy_{i}_{cpu}"), cpu,
                                        formats=("png",), dpi=100, label=label)
            title = f"TLB occupancy: {label}, CPU {cpu}"
            out.append(f"<figure>{_img(png, title)}<figcaption><strong>{_e(title)}.</strong> "
                       "Who owns each hardware TLB entry, sampled at each context switch."
                       "</figcaption></figure>")
    return "\n".join(out)


def render_report(results: dict) -> str:
    """The HTML text of the report for :func:`load_results`' output."""
    runs, key = results["runs"], results["key"]
    first = runs[0][1]
    cfg = first["config"]
    name = cfg.get("name") or "scenario"
    if results["kind"] == "comparison":
        title = f"emu report: {name}, comparing {key or 'designs'} = " + ", ".join(l for l, _ in runs)
    else:
        title = f"emu report: {name} ({runs[0][0]})"
    question = cfg.get("question") or ""
    m = cfg.get("machine", {})
    meta = (f"core {m.get('core', '?')}, {first['cpus']} CPU(s) at {first['costs'].get('clock_mhz', '?')} MHz, "
            f"{first.get('simulated_us', 0):,.1f} µs simulated"
            + (f" (counted after a {first['warmup_cycles'] / first['costs']['clock_mhz']:,.1f} µs "
               "warm-up)" if first.get("warmup_cycles") else "")
            + f", seed {first.get('seed', '?')}, "
            f"backend {first.get('backend', '?')}, emu {first.get('emu_version', '?')}")
    with tempfile.TemporaryDirectory(prefix="emu-report-") as tmp:
        plots = _plots_section(runs, results["timelines"], tmp)
    reading = generate_reading(runs)
    body = [
        f"<h1>{_e(title)}</h1>",
        f'<p class="question">{_e(question)}</p>' if question else "",
        f'<p class="meta">{_e(meta)}</p>',
        '<h2 id="reading">Reading</h2>',
        '<ul class="reading">' + "".join(f"<li>{_e(r)}</li>" for r in reading) + "</ul>",
        '<p class="note">Generated from the numbers below; it says only what they say.</p>',
        '<h2 id="key-figures">Key figures</h2>',
        _key_figures_table(runs),
        '<h2 id="plots">Plots</h2>',
        plots,
        '<h2 id="cycles">Cycles by component</h2>',
        _cycles_table(runs),
        '<h2 id="tlb">TLB and repopulation</h2>',
        _tlb_table(runs),
        '<h2 id="misses-by-cause">Guest TLB misses by cause</h2>',
        _causes_table(runs),
        '<h2 id="exits">Exits by category</h2>',
        _exits_table(runs),
        '<h2 id="fastpath-profile">Fast-path profile</h2>',
        _profile_table(runs),
        '<h2 id="memory">Memory</h2>',
        _memory_table(runs),
        '<h2 id="config">Configuration</h2>',
        _config_section(runs, key),
        '<h2 id="costs">Cost table</h2>',
        _costs_section(runs),
    ]
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{_e(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
            + "\n".join(b for b in body if b) + "\n</body>\n</html>\n")


def write_report(src_dir, out_html=None) -> str:
    """Write the report of a run or comparison directory; return its path.

    ``out_html`` defaults to ``DIR/report.html``.  Written atomically.
    Raises :class:`EmuError` when ``src_dir`` cannot be read as a result.
    """
    results = load_results(src_dir)
    out = os.fspath(out_html) if out_html else os.path.join(os.fspath(src_dir), "report.html")
    text = render_report(results)
    try:
        write_text(out, text)
    except OSError as err:
        raise EmuError(f"report: cannot write {out}: {err.strerror or err}") from None
    return out

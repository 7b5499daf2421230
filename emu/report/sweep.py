"""The report of a sweep: each grid point's headline figures over its seeds.

A sweep (``emu sweep --out DIR``) runs a scenario at every point of a grid,
each point with one or more seeds.  Its page has one row per grid point with
the mean and the half-width of the 95 % t-interval over the point's runs of
each headline figure (:data:`HEADLINE`, computed from each run's summary by
:mod:`emu.stats.figures`): the same ``mean ± half-width`` that ``emu sweep``
prints (:func:`emu.stats.interval.mean_interval`).  For each grid key whose
values are numbers, a line plot of every headline figure against that key:
one line per strategy (and per value of the other grid keys), the interval
drawn as error bars.

>>> interval([1.0, 2.0, 3.0])                 # doctest: +ELLIPSIS
(2.0, 2.484..., 3)
>>> interval([4.0, None])
(4.0, None, 1)
"""

from __future__ import annotations

import json
import math
import os
from emu.errors import spelled
from emu.report.page import esc, figure, heading, table
from emu.report.plots import RUN_COLOURS, new_figure, save_figure, style
from emu.report.reading import unsettled_note
from emu.report.schema import LEGEND_MAX, shorten, short_labels
from emu.report.tables import costs_section
from emu.report.text import labelled
from emu.run.files import scratch_folder
from emu.run.table import STRATEGY_KEY as STRATEGY, grid_text
from emu.stats import figures
from emu.stats.interval import mean_interval

#: The figures a sweep's table and plots show: (name, title, function of a
#: summary, format of a value).
HEADLINE = (
    ("cycles_per_guest_access", "CPU cycles per guest access", figures.cycles_per_guest_access,
     ",.3f"),
    ("misses_per_resume", "guest TLB misses per resume", figures.misses_per_resume, ".1f"),
    ("guest_misses", "guest TLB misses", lambda s: s["tlb"]["guest"]["misses"], ",.0f"),
    ("exits", "exits (TIMEINGUEST excluded)", figures.exits, ",.0f"),
    ("save_restore_percent", "TLB save/restore (% of CPU time)",
     lambda s: figures.percent(s, "save_restore"), ".2f"),
    ("fastpath_percent", "fast path (% of CPU time)",
     lambda s: figures.percent(s, "fastpath"), ".2f"),
    ("memory_bytes_kvm", "KVM memory for TLB state (bytes)", figures.memory_bytes_kvm, ",.0f"),
)
#: Markers of the lines, in turn.
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "*")


def interval(values) -> tuple:
    """(mean, half-width of the 95 % t-interval or None, n) of the values that
    are not None: :func:`~emu.stats.interval.mean_interval`, as ``emu sweep`` prints it."""
    n, mean, half = mean_interval(values)
    return mean, half, n


def _strategy(s: dict) -> str:
    return labelled(str((s["config"].get("kvm") or {}).get("strategy") or "?"), s)


def grid_points(results: dict) -> list:
    """One dict per grid point, in the order of the results table: ``point``
    ({key: value}), ``strategy`` (of its runs), ``runs`` (rows), ``done``
    (runs with a summary) and ``figures`` ({name: (mean, half-width, n)})."""
    points: dict = {}
    for row in results["rows"]:
        key = tuple(row["point"][k] for k in results["keys"])
        p = points.setdefault(key, {"point": row["point"], "runs": 0, "summaries": []})
        p["runs"] += 1
        if row["summary"] is not None:
            p["summaries"].append(row["summary"])
    out = []
    for p in points.values():
        summaries = p.pop("summaries")
        p["done"] = len(summaries)
        p["strategy"] = ", ".join(dict.fromkeys(_strategy(s) for s in summaries)) or "?"
        p["figures"] = {name: interval([fn(s) for s in summaries])
                       for name, _, fn, _ in HEADLINE}
        out.append(p)
    return out


def _value(v, fmt: str) -> str:
    mean, half, _ = v
    if mean is None:
        return "-"
    return format(mean, fmt) + (f" ± {format(half, fmt)}" if half is not None else "")


def _points_table(results: dict, points: list) -> str:
    keys = results["keys"]
    with_strategy = STRATEGY not in keys
    header = short_labels(keys) + (["strategy"] if with_strategy else []) + ["runs"]
    header += [f"{title} (mean ± 95 % t-interval)" for _, title, _, _ in HEADLINE]
    rows = []
    for p in points:
        # the strategy's cell names a machine no kernel shipped so, as a grid value too
        row = [shorten(p["strategy"] if k == STRATEGY and p["done"] else
                       "" if p["point"][k] is None else grid_text(p["point"][k])) for k in keys]
        row += [shorten(p["strategy"])] if with_strategy else []
        row += [f"{p['done']:,}" + (f" of {p['runs']:,}" if p["done"] != p["runs"] else "")]
        # a figure over fewer runs than the point's (misses per resume of a run
        # with no resume) says over how many
        row += [_value(p["figures"][name], fmt)
                + (f" (n={p['figures'][name][2]})" if p["figures"][name][0] is not None
                   and p["figures"][name][2] < p["done"] else "")
                for name, _, _, fmt in HEADLINE]
        rows.append(row)
    return table(header, rows, numeric_from=len(keys) + with_strategy)


def numeric_keys(results: dict, points: list) -> list:
    """The grid keys whose values are all numbers, with at least two of them."""
    out = []
    for k in results["keys"]:
        values = [p["point"][k] for p in points]
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values) \
                and len(set(values)) > 1:
            out.append(k)
    return out


def _lines(results: dict, points: list, x: str) -> dict:
    """{line label: [(x, point)]} for a plot against ``x``: one line per strategy
    and value of every other grid key."""
    others = [k for k in results["keys"] if k not in (x, STRATEGY)]
    lines: dict = {}
    for p in points:
        parts = [p["strategy"]] + [f"{k}={p['point'][k]}" for k in others]
        lines.setdefault(", ".join(parts), []).append((p["point"][x], p))
    return {label: sorted(line, key=lambda xp: xp[0]) for label, line in lines.items()}


def line_plot(results: dict, points: list, x: str, out: str) -> tuple[str, str]:
    """Every headline figure against the grid key ``x``, one panel each; the
    PNG's path and a caption."""
    lines = _lines(results, points, x)
    shown = list(lines.items())[:LEGEND_MAX]
    labels = short_labels(label for label, _ in shown)
    xs = [xv for _, line in shown for xv, _ in line]
    log = min(xs) > 0 and max(xs) >= 100 * min(xs)
    with style():
        ncols = 3
        nrows = math.ceil(len(HEADLINE) / ncols)
        fig = new_figure(figsize=(4.2 * ncols, 3.3 * nrows))
        axes = fig.subplots(nrows, ncols, squeeze=False)
        flat = [ax for row in axes for ax in row]
        for ax, (name, title, _, _) in zip(flat, HEADLINE):
            for i, ((_, line), label) in enumerate(zip(shown, labels)):
                pts = [(xv, p["figures"][name]) for xv, p in line if p["figures"][name][0] is not None]
                if not pts:
                    continue
                # markers and dashes differ too, so that equal lines stay visible
                ax.errorbar([xv for xv, _ in pts], [v[0] for _, v in pts],
                            yerr=[v[1] or 0.0 for _, v in pts], marker=_MARKERS[i % len(_MARKERS)],
                            markersize=4, linewidth=1.4, capsize=2.5, label=label,
                            color=RUN_COLOURS[i % len(RUN_COLOURS)],
                            linestyle=("-", "--", "-.", ":")[i % 4], markerfacecolor="none")
            ys = [y for line in ax.get_lines() for y in line.get_ydata()]
            if ys and min(ys) > 0 and max(ys) > 100 * min(ys):     # no zero is lost
                ax.set_yscale("log")
            ax.set_title(title + (" (log scale)" if ax.get_yscale() == "log" else ""),
                         fontsize=9.5)
            ax.set_xlabel(shorten(x))
            if log:
                ax.set_xscale("log")
            if not ax.has_data():
                ax.text(0.5, 0.5, "no figure", transform=ax.transAxes, ha="center")
        for ax in flat[len(HEADLINE):]:
            ax.axis("off")
        handles, names = flat[0].get_legend_handles_labels()
        for ax in flat[1:len(HEADLINE)]:
            for h, n in zip(*ax.get_legend_handles_labels()):
                if n not in names:
                    handles.append(h)
                    names.append(n)
        if handles:
            spare = flat[-1] if len(flat) > len(HEADLINE) else None
            if spare is not None:
                spare.legend(handles, names, loc="center", title="strategy (other grid keys)")
            else:
                fig.legend(handles, names, loc="upper center", bbox_to_anchor=(0.5, 0.0),
                           ncol=3, title="strategy (other grid keys)")
        several = (results["plan"]["seeds"]["count"] or 1) > 1
        fig.suptitle(f"Headline figures against {shorten(x)} "
                     + ("(mean over seeds, ± 95 % t-interval)" if several else "(one seed)"),
                     fontweight="bold")
        fig.tight_layout()
        (png,) = save_figure(fig, out, ("png",), 100)
    caption = (f"Each panel: one headline figure against {shorten(x)}, one line per strategy"
               + (" and value of the other grid keys" if len(results["keys"]) > 1 else "")
               + "; a point is the mean over the seeds of that grid point, its bar the "
                 "half-width of the 95 % t-interval of that mean (none for one seed).")
    if len(lines) > len(shown):
        caption += f" The first {len(shown)} of {len(lines)} lines are drawn."
    return png, caption


def _plots(results: dict, points: list, plots: bool) -> str:
    if not plots:
        return f'<p class="note">Plots left out ({spelled("--no-plots")}).</p>'
    keys = numeric_keys(results, points)
    if not keys:
        return ('<p class="note">No grid key has two or more numeric values: there is nothing '
                "to draw a line against.</p>")
    out = []
    with scratch_folder("emu-report") as tmp:
        for i, x in enumerate(keys):
            png, caption = line_plot(results, points, x, os.path.join(tmp, f"sweep_{i}"))
            out.append(figure(png, f"Against {shorten(x)}", caption))
    return "\n".join(out)


def _name(results: dict) -> tuple[str, dict]:
    cfg = results["plan"]["scenario"]["config"]
    return shorten(cfg["name"] or "scenario"), cfg


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def page(results: dict, plots: bool = True) -> tuple[str, list]:
    """The title and body of a sweep's page (:func:`emu.report.html.render_report`)."""
    plan, keys = results["plan"], results["keys"]
    name, cfg = _name(results)
    title = f"emu report: sweep of {name}" + (
        " over " + shorten(" × ".join(keys), 200) if keys else "")
    points = grid_points(results) if results["rows"] else []
    seeds = plan["seeds"]["count"]
    done = sum(p["done"] for p in points)
    planned = plan["runs"]
    planned_points = len({tuple(repr(r["grid"].get(k)) for k in keys) for r in planned})
    meta = (f"{_count(len(points), 'grid point')}, {_count(seeds or 1, 'seed')} each; "
            f"{_count(done, 'run')} reported from {os.path.basename(results['table'])}")
    if done < len(planned):
        # an interrupted sweep, or one whose runs failed: not shown as complete
        meta += (f"; the sweep plans {_count(len(planned), 'run')} over "
                 f"{_count(planned_points, 'grid point')}: {len(planned) - done:,} of its runs "
                 f"and {max(planned_points - len(points), 0):,} of its grid points are not in "
                 f"this report (it stopped before its end, or runs failed; emu sweep with the "
                 f"same arguments runs what is left)")
    if results["missing"]:
        meta += (f"; {results['missing']:,} listed there have no runs/ID/summary.json and are "
                 "left out")
    body = heading(cfg, title) + [f'<p class="meta">{esc(meta)}</p>']
    if not done:
        body.append("<p>No run of this sweep is done yet: nothing to report.</p>")
    else:
        body += ['<h2 id="points">Grid points</h2>', _points_table(results, points),
                 '<p class="note">Each figure is computed from every run\'s summary: the mean '
                 "over the runs of a grid point (its seeds) ± the half-width of the 95 % "
                 "Student t-interval of that mean, as emu sweep prints it (no interval for "
                 "one run); (n=K) after a figure: over the K runs that have it (a run with "
                 "no resume has no misses per resume).</p>"]
        rows = [dict(row["point"], settled=figures.settled(row["summary"]))
                for row in results["rows"] if row["summary"] is not None]
        note = unsettled_note(rows, keys)
        if note:
            body.append(f'<p class="note"><strong>{esc(note)}</strong></p>')
        body += ['<h2 id="plots">Plots</h2>', _plots(results, points, plots)]
    body += ['<h2 id="grid">Grid</h2>',
             table(["key", "values"], [[shorten(g["key"]), shorten(", ".join(
                 json.dumps(v) if not isinstance(v, str) else v for v in g["values"]), 300)]
                 for g in plan["grid"]], numeric_from=99)]
    body += ['<h2 id="config">Configuration</h2>',
             "<p>The scenario every run starts from, before the grid's values:</p>",
             "<pre>" + esc(json.dumps(cfg, indent=2)) + "</pre>"]
    if results["runs"]:
        body += ['<h2 id="costs">Cost table</h2>', costs_section(results["runs"])]
    return title, body

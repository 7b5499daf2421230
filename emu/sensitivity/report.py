"""What a study shows: ``sensitivity.json``, the tornado and break-even plots, a
text summary; and the cost listing of ``emu costs``.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING, Optional

from emu.params import Scenario
from emu.report import columns
from emu.params.fields import describe
from emu.run.files import dumps_json, write_json
from emu.errors import ConfigError
from emu.report.reading import startup_sentence
from emu.report.plots import DPI, FORMATS, new_figure, output_checked, save_figure, saved, style
from emu.run import outdir
from emu.run.outdir import check_output_dir
from emu.costs import COSTS_BY_NAME, GROUPS, CostTable
from emu.sensitivity.analysis import SHOWN

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["SENSITIVITY_FILES", "break_even_plot", "break_even_text", "costs_listing",
           "format_sensitivity", "index_text", "key_label", "tornado_plot", "verdict",
           "write_sensitivity"]

#: What :func:`write_sensitivity` writes into its directory (the break-even
#: plot only for a study with a break-even).
SENSITIVITY_FILES = ("sensitivity.json", "tornado.png", "tornado.svg", "break_even.png",
                     "break_even.svg")
#: Costs shown in the tornado and the text summary, the most influential first.
TOP = 15


#: What a result must hold to be read, and written, as a study's.
REQUIRED = ("compare", "metric", "method", "default", "costs", "ranking", "better")


def missing_key(result) -> Optional[str]:
    """The first key of :data:`REQUIRED` that ``result`` lacks (or the first of
    them, if it is not a dict); None for a study's result."""
    return next((k for k in REQUIRED if not isinstance(result, dict) or k not in result), None)


def write_sensitivity(out_dir, result: dict, plots: bool = True) -> list[str]:
    """Write ``DIR/sensitivity.json`` (and the tornado and, with a break-even,
    the break-even plot, PNG and SVG), each atomically.

    Nothing is written, and ConfigError says why in one line, when
    ``result`` is not a study's (:func:`emu.sensitivity.run_sensitivity`'s)
    or ``out_dir`` holds files emu did not write or another kind of result
    (a run, a comparison, a sweep, a study): a sensitivity study is written
    into a new or empty folder, or over one.  The paths written are returned.
    """
    missing = missing_key(result)
    if missing is not None:
        raise ConfigError(f"write_sensitivity: the result is not a sensitivity study's (it has "
                          f"no {missing!r}): pass what run_sensitivity returned")
    out_dir = outdir.check_name(out_dir, option="")
    outdir.check_replaceable(out_dir, "sensitivity", force=None)     # it has no force
    return write_files(out_dir, result, plots)


def write_files(out_dir, result: dict, plots: bool = True) -> list[str]:
    """:func:`write_sensitivity`'s files, into a folder already checked (the
    ``emu sensitivity --out`` folder, or a study's own folder of plots)."""
    files = SENSITIVITY_FILES if plots else SENSITIVITY_FILES[:1]
    check_output_dir(out_dir, files)
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "sensitivity.json")
    write_json(path, result)
    written = [path]
    if plots:
        written += save_figure(tornado_plot(result), os.path.join(out_dir, "tornado"))
        if result.get("break_even"):
            written += save_figure(break_even_plot(result), os.path.join(out_dir, "break_even"))
    return written


def named(result: dict) -> dict:
    """The result's ``compare`` with each side named as tables and plots show
    it: marked ``(hypothetical)`` where no kernel shipped the machine of its
    run at the default costs (the ``hypothetical`` list)."""
    cmp = dict(result["compare"])
    for side in ("a", "b"):
        if cmp[side] in cmp.get("hypothetical", ()):
            cmp[side] = f"{cmp[side]} (hypothetical)"
    return cmp


def unsettled_text(result: dict) -> str:
    """One sentence naming the sides whose run at the default costs had not
    settled (:func:`emu.stats.figures.settled`), or "" (an older result: "")."""
    cmp = named(result)
    flags = result["default"].get("settled") or []
    sides = [cmp[side] for side, ok in zip(("a", "b"), flags) if ok is False]
    if not sides:
        return ""
    return (f"Not settled at the default costs: {' and '.join(sides)} (the two halves of "
            f"the counted window cost more than 10% apart per guest access). "
            f"{startup_sentence('the ratios')}")


def verdict(result: dict) -> str:
    """Who wins at the default costs: ``A wins``, ``B wins``, or at a ratio of
    exactly 1 ``a tie`` (a tie is no win: :func:`~emu.sensitivity.analysis.beats`)."""
    cmp, d = named(result), result["default"]
    if d["a_wins"]:
        return f"{cmp['a']} wins"
    return "a tie" if d["ratio"] == 1 else f"{cmp['b']} wins"


def _ratio_label(result: dict) -> str:
    cmp, metric = named(result), result["metric"]
    side = "below" if result["better"] == "lower" else "above"
    return (f"{metric}({cmp['a']}) / {metric}({cmp['b']})\n"
            f"(ratio, no unit; {side} 1: {cmp['a']} better)")


def _shown(result: dict, top: int) -> list[dict]:
    by_name = {c["name"]: c for c in result["costs"]}
    return [by_name[n] for n in result["ranking"][:top]]


@output_checked
def tornado_plot(result: dict, out=None, top: int = TOP, formats=FORMATS,
                 dpi=DPI) -> "Figure":
    """The tornado of ``result`` (a study's, as :func:`run_sensitivity` or
    :func:`emu.load` gives it), as a matplotlib Figure.

    One bar per cost (the ``top`` most influential): the ratio with the cost at
    its low end and at its high end, the others at baseline; the ratio at the
    default costs and the break-even ratio 1 are marked.  Given ``out``, a
    path without extension, the figure is also written as ``out.png`` and
    ``out.svg`` (``formats``, at ``dpi``), as the plots of
    :mod:`emu.report.plots` are; :func:`~emu.report.plots.save_figure` writes
    a figure and gives the paths of its files.
    """
    with style():
        fig = _tornado(result, top)
    return saved(fig, out, formats, dpi)


def _tornado(result: dict, top: int) -> "Figure":
    cmp = named(result)
    shown = list(reversed(_shown(result, top)))
    r0 = result["default"]["ratio"]
    fig = new_figure(figsize=(9, 2.2 + 0.38 * max(len(shown), 1)), layout="constrained")
    ax = fig.add_subplot()
    for i, c in enumerate(shown):
        for end, colour in (("low", "#4c72b0"), ("high", "#dd8452")):
            r = c[f"ratio_{end}"]
            ax.barh(i, r - r0, left=r0, height=0.6, color=colour,
                    label=f"cost at its {end} end" if i == 0 else None)
    ax.set_yticks(range(len(shown)))
    ax.set_yticklabels([f"{'* ' if c['flips'] else ''}{cost_shown(c)} "
                        f"({c['low']:,}-{c['high']:,} {c['unit']})"
                        for c in shown], fontsize=8)
    ax.axvline(r0, color="black", linewidth=1.2, label=f"default costs: {r0:.4g}")
    ax.axvline(1.0, color="grey", linestyle="--", linewidth=1, label="break-even: 1")
    ax.set_xlabel(_ratio_label(result))
    flips = "; * flips the winner" if any(c["flips"] for c in shown) else ""
    ax.set_title(f"{cmp['key']} = {cmp['a']} vs {cmp['b']} (scenario {result['scenario']})\n"
                 f"each cost at its low and high end; {result['method']}, ranked by "
                 f"{result['rank_by']}{flips}", fontsize=10)
    fig.legend(fontsize=8, loc="outside lower center", ncol=4)
    return fig


def key_label(key: str) -> str:
    """A scenario key with what it is and its unit, for an axis
    (``costs.NAME``: the cost's unit; other keys: their one-line doc)."""
    if key.startswith("costs.") and key[6:] in COSTS_BY_NAME:
        return f"{key} ({COSTS_BY_NAME[key[6:]].unit})"
    docs = {k: doc for k, _, _, _, doc in describe(Scenario)}
    doc = docs.get(re.sub(r"\.\d+(?=\.|$)", ".N", key))
    return f"{key}: {doc}" if doc else key


def _dense(xs) -> list:
    """``xs`` (ascending) with 32 points between each two: a line through them
    is straight in data units on any axes.

    >>> _dense([1, 2])[:3], len(_dense([1, 2, 4]))
    ([1.0, 1.03125, 1.0625], 65)
    """
    out = []
    for a, b in zip(xs, xs[1:]):
        out += [a + (b - a) * i / 32 for i in range(32)]
    return [float(x) for x in out] + [float(xs[-1])] if xs else []


def _along(dense, xs, ys) -> list:
    """``ys`` (at ``xs``) linearly interpolated at ``dense``; None where a y
    is missing (a gap, as matplotlib draws NaN)."""
    import numpy as np
    y = np.array([np.nan if v is None else float(v) for v in ys])
    return list(np.interp(dense, [float(x) for x in xs], y))


@output_checked
def break_even_plot(result: dict, out=None, xlabel: Optional[str] = None, formats=FORMATS,
                    dpi=DPI) -> "Figure":
    """The break-even of ``result`` (a study's with a break-even), as a
    matplotlib Figure, written as ``out.png`` and ``out.svg`` when ``out`` is
    given (as :func:`tornado_plot`).

    Along the break-even key (``xlabel``, default :func:`key_label`): the
    ratio at the default costs, the range of the ratio over the cost vectors,
    the ratio 1, the break-even at the default costs and its band (the
    interval of the vectors' first crossings).
    """
    with style():
        fig = _break_even(result, xlabel)
    return saved(fig, out, formats, dpi)


def _break_even(result: dict, xlabel: Optional[str]) -> "Figure":
    be, cmp = result["break_even"], named(result)
    xs, d, band = be["values"], be["default"], be["band"]
    fig = new_figure(figsize=(8, 6), layout="constrained")
    ax = fig.add_subplot()
    # NOTE: the lines are drawn as the break-even reads them, straight between
    # the values (linear interpolation), densified: on log axes a segment drawn
    # between two points alone is another curve, which crossed 1 elsewhere
    dense = _dense(xs)
    if band["vectors"]:
        ax.fill_between(dense, _along(dense, xs, band["ratios_min"]),
                        _along(dense, xs, band["ratios_max"]), color="#4c72b0",
                        alpha=0.25, linewidth=0,
                        label=f"ratio over {band['vectors']} cost vectors (lowest..highest)")
    ax.plot(dense, _along(dense, xs, d["ratios"]), "-", color="#4c72b0")
    ax.plot(xs, d["ratios"], "o", color="#4c72b0")
    ax.plot([], [], "o-", color="#4c72b0", label="ratio at the default costs")    # its legend
    ax.axhline(1.0, color="grey", linestyle="--", linewidth=1, label="ratio 1: break-even")
    if band["crossed"]:
        ax.axvspan(band["low"], band["high"], color="#dd8452", alpha=0.2,
                   label=f"break-even band: {band['low']:,.4g}..{band['high']:,.4g} "
                         f"({band['crossed']} of {band['vectors']} vectors cross)")
    if d["at"] is not None:
        ax.axvline(d["at"], color="#c44e52", linewidth=1.5,
                   label=f"break-even at the default costs: {d['at']:,.4g}")
    ratios = [r for r in list(d["ratios"]) + list(band.get("ratios_min") or [])
              + list(band.get("ratios_max") or []) if r > 0]
    if ratios and max(ratios) / min(ratios) > 20:
        ax.set_yscale("log")
    if xs and min(xs) > 0 and max(xs) / min(xs) > 20:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel or key_label(be["key"]))
    side = "below" if result["better"] == "lower" else "above"
    # one name a line: long names (a hypothetical side) stay within the axis' height
    ax.set_ylabel(f"{result['metric']}:\n{cmp['a']} / {cmp['b']}\n"
                  f"(ratio, no unit; {side} 1: {cmp['a']} better)", fontsize=9)
    ax.set_title(f"{cmp['key']} = {cmp['a']} vs {cmp['b']} along {be['key']}: where the "
                 f"winner changes\n(scenario {result['scenario']}; cost vectors "
                 f"{_vectors_text(result)})", fontsize=10)
    ax.grid(True, alpha=0.3)
    fig.legend(fontsize=8, loc="outside lower center", ncol=2)
    return fig


def _vectors_text(result: dict) -> str:
    """How the cost vectors of the band were drawn."""
    if result["method"] == "oat":
        return "one cost at a time at each end of its range"
    return f"sampled by {result['method']}, seed {result['seed']}"


def index_text(entry: dict, key: str) -> str:
    """One index of a cost as the tables show it: the value and, where SALib
    gives one, ``± the half-width of its 95 % confidence interval``; ``-`` for
    none (a cost not varied, or a flat ratio)."""
    if key == "swing":
        value, conf = entry.get("swing"), None
    else:
        indices = entry.get("indices") or {}
        value, conf = indices.get(key), indices.get(f"{key}_conf")
    if value is None:
        return "-"
    return f"{value:.3g}" + (f" ± {conf:.2g}" if conf is not None else "")


def index_header(key: str) -> str:
    """An index's column header, its interval named where it has one."""
    return key if key == "swing" else f"{key} ± 95 % CI"


def cost_shown(c: dict) -> str:
    """A cost's name as the tables show it: marked where the study's range
    or default value is not the one ``emu costs`` lists (given with
    ``--range`` or ``--set costs.NAME``, or in the scenario's costs).

    >>> cost_shown({"name": "asm_save", "range_overridden": True, "overridden": False})
    'asm_save (range given)'
    >>> cost_shown({"name": "tlbwe", "overridden": True, "range_overridden": True})
    'tlbwe (range and value given)'
    >>> cost_shown({"name": "x"})
    'x'
    """
    marks = [m for m, on in (("range", c.get("range_overridden")),
                             ("value", c.get("overridden"))) if on]
    return c["name"] + (f" ({' and '.join(marks)} given)" if marks else "")


def ranges_sampled(result: dict) -> str:
    """Over what ranges a study sampled its cost vectors, said for its text."""
    given = [c["name"] for c in result["costs"] if c.get("range_overridden") and c["varied"]]
    if not given:
        return "the plausible ranges"
    return (f"the plausible ranges but {len(given)} given (--range, or the scenario's costs): "
            f"{', '.join(given[:3])}{', ...' if len(given) > 3 else ''}")


def format_sensitivity(result: dict, top: int = TOP, width: Optional[int] = None) -> str:
    """A few lines for the terminal: the verdict, what moves it, the break-even
    (fitted to ``width`` columns if given)."""
    cmp, d = named(result), result["default"]
    keys = SHOWN[result["method"]]
    lines = [
        f"scenario {result['scenario']}: {cmp['key']}={cmp['a']} vs {cmp['b']}, "
        f"{result['metric']} ({result['better']} is better), method {result['method']}, "
        f"{result['runs']} runs",
        f"at the default costs: {cmp['a']} {d['metric_a']:.4g}, {cmp['b']} {d['metric_b']:.4g},"
        f" ratio {d['ratio']:.4g}: {verdict(result)}",
    ]
    if "win_share" in result:
        lines.append(f"{cmp['a']} beats {cmp['b']} in {100 * result['win_share']:.1f} % of "
                     f"{result['sampled_vectors']} cost vectors sampled over "
                     f"{ranges_sampled(result)}")
    shown = _shown(result, top)
    span, *spans = _spans((c["low"], c["high"]) for c in shown)
    rows = [[cost_shown(c), f"{c['default']:,}", cell, f"{c['ratio_low']:.4g}",
             f"{c['ratio_high']:.4g}", *(index_text(c, k) for k in keys),
             ", ".join(f"{x:,.6g}" for x in c["flip_at"]) or "-"]
            for c, cell in zip(shown, spans)]
    lines.append(columns.table(["cost", "default", span, "ratio@low", "ratio@high",
                                *(index_header(k) for k in keys), "flips at (interpolated)"],
                               rows, width, text=(5 + len(keys),)))
    rest = len([c for c in result["costs"] if c["varied"]]) - min(top, len(result["ranking"]))
    if rest > 0:
        lines.append(f"... and {rest} more varied costs (sensitivity.json has them all)")
    lines.append("costs that can flip the winner: "
                 + (", ".join(result["flipping"]) or "none"))
    if result.get("break_even"):
        lines.append(break_even_text(result))
    return columns.fit_lines(lines, width)


def _spans(ranges) -> list:
    """``(low, high)`` pairs as table cells, the header's first, their ``..``
    at the same place in every row."""
    cells = [("low", "high")] + [(f"{low:,}", f"{high:,}") for low, high in ranges]
    lows, highs = (max(len(c[i]) for c in cells) for i in (0, 1))
    return [f"{low:>{lows}}..{high:<{highs}}" for low, high in cells]


def break_even_text(result: dict) -> str:
    """One line: the break-even at the default costs and its band."""
    be = result["break_even"]
    cmp, d, band = named(result), be["default"], be["band"]
    name = {"A": cmp["a"], "B": cmp["b"]}
    if d["at"] is None:
        who, _, rest = d["direction"].partition(" ")
        text = (f"break-even along {be['key']}: none in {be['values'][0]}..{be['values'][-1]}"
                f" ({name[who]} {rest})")
    else:
        text = (f"break-even along {be['key']}: {cmp['a']} {d['direction'][2:]} at "
                f"{d['at']:,.6g} (default costs)")
    if band["crossed"]:
        text += (f"; {band['low']:,.6g}..{band['high']:,.6g} over {band['crossed']} of "
                 f"{band['vectors']} cost vectors")
    never = band["a_wins_throughout"] + band["b_wins_throughout"]
    if never:
        text += f" ({never} never cross)"
    return text


def costs_listing(table: Optional[CostTable] = None, fmt: str = "text",
                  long: bool = False, width: Optional[int] = None) -> str:
    """The cost table as text (by group: name, default, range, unit, kind of range,
    source; fitted to ``width`` columns if given, the sources wrapped) or as
    JSON (``{"costs": [...]}``, every field of
    :meth:`~emu.costs.CostTable.listing`).  ``long`` prints each source and the
    range's reasoning in full."""
    rows = (table or CostTable()).listing()
    if fmt == "json":
        return dumps_json({"costs": rows})
    span, *spans = _spans((r["low"], r["high"]) for r in rows)
    spans = dict(zip((r["name"] for r in rows), spans))
    lines = []
    for group in GROUPS:
        lines.append([f"[{group}]", "", "", "", "", ""])
        for r in (r for r in rows if r["group"] == group):
            source = (f"source: {r['source']}; range: {r['why']}" if long
                      else r["source"].split(":")[0])
            lines.append([r["name"], f"{r['value']:,}", spans[r["name"]], r["unit"],
                          r["spread"], source])
    return columns.table(["name", "default", span, "unit", "range", "source"], lines, width,
                         text=(3, 4, 5)) + "\n"

"""What a study shows: ``sensitivity.json``, the tornado plot, a text summary; and
the cost table listing of ``emu costs``.
"""

from __future__ import annotations

import os
import textwrap
from typing import Optional

from emu.run.files import atomic_path, check_output_dir, dumps_json, write_json
from emu.costs import GROUPS, CostTable

__all__ = ["SENSITIVITY_FILES", "costs_listing", "format_sensitivity", "tornado_plot",
           "write_sensitivity"]

#: What :func:`write_sensitivity` writes into its directory.
SENSITIVITY_FILES = ("sensitivity.json", "tornado.png", "tornado.svg")
#: Costs shown in the tornado and the text summary, the most influential first.
TOP = 15


def write_sensitivity(out_dir, result: dict, plots: bool = True) -> list[str]:
    """Write ``DIR/sensitivity.json`` (and the tornado, PNG and SVG), each atomically.

    Every target is checked first; the paths written are returned.
    """
    files = SENSITIVITY_FILES if plots else SENSITIVITY_FILES[:1]
    check_output_dir(out_dir, files)
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "sensitivity.json")
    write_json(path, result)
    written = [path]
    if plots:
        written += tornado_plot(result, out_dir)
    return written


def _who(result: dict, a_wins: bool) -> str:
    cmp = result["compare"]
    return cmp["a"] if a_wins else cmp["b"]


def _ratio_label(result: dict) -> str:
    cmp, metric = result["compare"], result["metric"]
    side = "below" if result["better"] == "lower" else "above"
    return (f"{metric}({cmp['a']}) / {metric}({cmp['b']})\n"
            f"(ratio, no unit; {side} 1: {cmp['a']} better)")


def _shown(result: dict, top: int) -> list[dict]:
    by_name = {c["name"]: c for c in result["costs"]}
    return [by_name[n] for n in result["ranking"][:top]]


def tornado_plot(result: dict, out_dir, top: int = TOP) -> list[str]:
    """The tornado of ``result`` as ``DIR/tornado.png`` and ``DIR/tornado.svg``.

    One bar per cost (the ``top`` most influential): the ratio with the cost at
    its low end and at its high end, the others at baseline; the ratio at the
    default costs and the break-even ratio 1 are marked.
    """
    import matplotlib
    from matplotlib.figure import Figure

    cmp = result["compare"]
    shown = list(reversed(_shown(result, top)))
    r0 = result["default"]["ratio"]
    fig = Figure(figsize=(9, 1.6 + 0.38 * max(len(shown), 1)))
    ax = fig.add_subplot()
    for i, c in enumerate(shown):
        for end, colour in (("low", "#4c72b0"), ("high", "#dd8452")):
            r = c[f"ratio_{end}"]
            ax.barh(i, r - r0, left=r0, height=0.6, color=colour,
                    label=f"cost at its {end} end" if i == 0 else None)
    ax.set_yticks(range(len(shown)))
    ax.set_yticklabels([f"{'* ' if c['flips'] else ''}{c['name']} "
                        f"({c['low']:,}-{c['high']:,} {c['unit']})"
                        for c in shown], fontsize=8)
    ax.axvline(r0, color="black", linewidth=1.2, label=f"default costs: {r0:.4g}")
    ax.axvline(1.0, color="grey", linestyle="--", linewidth=1, label="break-even: 1")
    ax.set_xlabel(_ratio_label(result))
    flips = "; * flips the winner" if any(c["flips"] for c in shown) else ""
    ax.set_title(f"{cmp['key']} = {cmp['a']} vs {cmp['b']} (scenario {result['scenario']})\n"
                 f"each cost at its low and high end; {result['method']}, ranked by "
                 f"{result['rank_by']}{flips}", fontsize=10)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=4)
    paths = []
    with matplotlib.rc_context({"svg.hashsalt": "emu-tornado"}):
        for fmt, meta in (("png", {"Software": None}), ("svg", {"Date": None})):
            path = os.path.join(out_dir, f"tornado.{fmt}")
            with atomic_path(path, suffix=f".{fmt}") as tmp:
                fig.savefig(tmp, format=fmt, dpi=120, metadata=meta, bbox_inches="tight")
            paths.append(path)
    return paths


def format_sensitivity(result: dict, top: int = TOP) -> str:
    """A few lines for the terminal: the verdict, what moves it, the break-even."""
    cmp, d, key = result["compare"], result["default"], result["rank_by"]
    lines = [
        f"scenario {result['scenario']}: {cmp['key']}={cmp['a']} vs {cmp['b']}, "
        f"{result['metric']} ({result['better']} is better), method {result['method']}, "
        f"{result['runs']} runs",
        f"at the default costs: {cmp['a']} {d['metric_a']:.4g}, {cmp['b']} {d['metric_b']:.4g},"
        f" ratio {d['ratio']:.4g}: {_who(result, d['a_wins'])} wins",
    ]
    if "win_share" in result:
        lines.append(f"{cmp['a']} beats {cmp['b']} in {100 * result['win_share']:.1f} % of "
                     f"{result['sampled_vectors']} sampled cost vectors")
    lines.append(f"{'cost':<28} {'default':>8} {'low':>7}..{'high':<7}{'ratio@low':>10} "
                 f"{'ratio@high':>10} {key:>9}  flips at")
    for c in _shown(result, top):
        flip = ", ".join(f"{x:,.6g}" for x in c["flip_at"]) or "-"
        index = c[key] if key == "swing" else (c.get("indices") or {}).get(key)
        lines.append(f"{c['name']:<28} {c['default']:>8,} {c['low']:>7,}..{c['high']:<7,}"
                     f"{c['ratio_low']:>10.4g} {c['ratio_high']:>10.4g} "
                     f"{'-' if index is None else format(index, '.3g'):>9}  {flip}")
    rest = len([c for c in result["costs"] if c["varied"]]) - min(top, len(result["ranking"]))
    if rest > 0:
        lines.append(f"... and {rest} more varied costs (sensitivity.json has them all)")
    lines.append("costs that can flip the winner: "
                 + (", ".join(result["flipping"]) or "none"))
    be = result.get("break_even")
    if be:
        lines.append(_format_break_even(result, be))
    return "\n".join(lines)


def _format_break_even(result: dict, be: dict) -> str:
    cmp, d, band = result["compare"], be["default"], be["band"]
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
                  long: bool = False) -> str:
    """The cost table as text (by group: name, default, range, unit, kind of range,
    source) or as JSON (``{"costs": [...]}``, every field of
    :meth:`~emu.costs.CostTable.listing`).  ``long`` prints each source and the
    range's reasoning in full."""
    rows = (table or CostTable()).listing()
    if fmt == "json":
        return dumps_json({"costs": rows})
    out = [f"{'name':<28} {'default':>8} {'low':>8}..{'high':<7} {'unit':<13} {'range':<9} "
           f"source"]
    for group in GROUPS:
        out.append(f"[{group}]")
        for r in (r for r in rows if r["group"] == group):
            lead = r["source"] if long else r["source"].split(":")[0]
            out.append(f"{r['name']:<28} {r['value']:>8,} {r['low']:>8,}..{r['high']:<7,} "
                       f"{r['unit']:<13} {r['spread']:<9} {lead if not long else ''}".rstrip())
            if long:
                for label, text in (("source", r["source"]), ("range", r["why"])):
                    out += textwrap.wrap(f"{label}: {text}", width=100,
                                         initial_indent="    ", subsequent_indent="      ")
    return "\n".join(out) + "\n"

"""The section of ``emu report`` on a sensitivity study (``DIR/sensitivity.json``).

``emu sensitivity --out DIR`` writes ``sensitivity.json`` and its plots; the
report of ``DIR`` (a study's directory, or a run's directory that also holds
one) then shows how far the comparison holds: the verdict at the default
costs, ``win_share`` (the share of sampled cost vectors in which A wins), the
tornado plot, one row per varied cost (default, range, the ratio with the cost
at each end, whether it flips the winner and where) and the break-even with
its band.  :func:`read_sensitivity` reads the file, :func:`sensitivity_section`
gives the HTML; :mod:`emu.report.html` places it in the page.
"""

from __future__ import annotations

import base64
import contextlib
import html
import json
import os
from typing import Optional

from emu.errors import EmuError, spelled
from emu.report.plots import save_figure
from emu.run.files import scratch_folder
from emu.sensitivity.analysis import SHOWN, sobol_caution
from emu.sensitivity.report import (
    break_even_plot, break_even_text, cost_shown, index_header, index_text, key_label,
    missing_key, named, ranges_sampled, tornado_plot, unsettled_text, verdict)

__all__ = ["SENSITIVITY_FILE", "read_sensitivity", "sensitivity_section", "sensitivity_title"]

#: The file a study writes into its directory.
SENSITIVITY_FILE = "sensitivity.json"


def read_sensitivity(src_dir) -> Optional[dict]:
    """The study in ``DIR/sensitivity.json``, or None if there is none.

    Raises :class:`EmuError` (one line) if the file is there but cannot be
    read as a study's result.
    """
    path = os.path.join(os.fspath(src_dir), SENSITIVITY_FILE)
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            result = json.load(f)
    except json.JSONDecodeError as err:
        raise EmuError(f"report: {path}: corrupt JSON ({err.msg} at line {err.lineno})") \
            from None
    except (OSError, UnicodeDecodeError) as err:
        raise EmuError(f"report: cannot read {path}: {err}") from None
    missing = missing_key(result)
    if missing is not None:
        raise EmuError(f"report: {path}: not an emu sensitivity result (no {missing!r})")
    return result


def sensitivity_title(result: dict) -> str:
    """``KEY = A vs B`` and the scenario, for a page's title."""
    cmp = named(result)
    return (f"how far {cmp['key']} = {cmp['a']} vs {cmp['b']} holds over the costs "
            f"(scenario {result.get('scenario', '?')})")


def _e(x) -> str:
    return html.escape(str(x), quote=True)


def _figure(png: str, title: str, caption: str) -> str:
    with open(png, "rb") as f:
        data = base64.b64encode(f.read()).decode("ascii")
    return (f'<figure><img src="data:image/png;base64,{data}" alt="{_e(title)}">'
            f"<figcaption><strong>{_e(title)}.</strong> {_e(caption)}</figcaption></figure>")


def _plot(src_dir: str, stem: str, draw, tmp: str) -> str:
    """``DIR/STEM.png`` if the study wrote it, else the figure ``draw()``
    gives, written now into ``tmp``."""
    path = os.path.join(src_dir, f"{stem}.png")
    if os.path.isfile(path):
        return path
    (png,) = save_figure(draw(), os.path.join(tmp, stem), ("png",))
    return png


def _ratio(x) -> str:
    return "-" if x is None else f"{x:.4g}"


def _costs_table(result: dict) -> str:
    """One row per varied cost, the most influential first."""
    cmp, keys = named(result), SHOWN.get(result["method"], ("swing",))
    by_name = {c["name"]: c for c in result["costs"]}
    head = ["rank", "cost", "unit", "default", "low", "high", "ratio, cost at low",
            "ratio, cost at high", "flips the winner (interpolated)"] + [index_header(k) for k in keys]
    rows = []
    for name in result["ranking"]:
        c = by_name[name]
        flips = ("yes, at " + ", ".join(f"{x:,.6g}" for x in c.get("flip_at", []))
                 if c["flips"] else "no")
        cells = [c.get("rank", "-"), cost_shown(c), c.get("unit", ""), f"{c['default']:,}",
                 f"{c['low']:,}", f"{c['high']:,}", _ratio(c["ratio_low"]),
                 _ratio(c["ratio_high"]), flips] + [index_text(c, k) for k in keys]
        cls = ' class="overridden"' if c["flips"] else ""
        rows.append(f"<tr{cls}>" + "".join(
            f'<td class="n">{_e(v)}</td>' if i not in (1, 2, 8) else f"<td>{_e(v)}</td>"
            for i, v in enumerate(cells)) + "</tr>")
    fixed = [c["name"] for c in result["costs"] if not c.get("varied", True)]
    note = (f'<p class="note">The ratio is {_e(result["metric"])}({_e(cmp["a"])}) / '
            f'{_e(result["metric"])}({_e(cmp["b"])}) with one cost at an end of its range '
            f'and the others at their defaults; highlighted rows flip the winner. '
            f'{len(fixed)} costs not varied (no range, not among --costs, or set by the study) are not listed.'
            f"</p>")
    return (note + "<table><thead><tr>" + "".join(f"<th>{_e(h)}</th>" for h in head)
            + "</tr></thead><tbody>" + "\n".join(rows) + "</tbody></table>")


def sensitivity_section(result: dict, src_dir, plots: bool = True) -> str:
    """The HTML section of the study ``result`` read from ``src_dir`` (its plots
    are taken from there, or drawn if missing; left out if not ``plots``)."""
    src_dir = os.fspath(src_dir)
    cmp, d = named(result), result["default"]
    better = "lower" if result["better"] == "lower" else "higher"
    parts = [
        '<h2 id="sensitivity">Sensitivity to the costs</h2>',
        f"<p>{_e(cmp['key'])} = {_e(cmp['a'])} against {_e(cmp['b'])}, compared by "
        f"{_e(result['metric'])} ({better} is better): method {_e(result['method'])}, "
        f"{_e(result.get('runs', '?'))} runs, seed {_e(result.get('seed', '?'))}.</p>",
        f"<p><strong>At the default costs</strong>: {_e(cmp['a'])} {d['metric_a']:.4g}, "
        f"{_e(cmp['b'])} {d['metric_b']:.4g}, ratio {d['ratio']:.4g}: "
        f"<strong>{_e(verdict(result))}</strong>.</p>",
    ]
    unsettled = unsettled_text(result)
    if unsettled:
        parts.append(f'<p class="note"><strong>{_e(unsettled)}</strong></p>')
    if "win_share" in result:
        parts.append(f"<p><strong>win_share</strong>: {_e(cmp['a'])} beats {_e(cmp['b'])} in "
                     f"{100 * result['win_share']:.1f} % of the "
                     f"{result.get('sampled_vectors', '?')} cost vectors sampled over "
                     f"{_e(ranges_sampled(result))}.</p>")
    else:
        parts.append('<p class="note">win_share: not computed (oat samples no cost space; '
                     "--method morris or sobol does).</p>")
    caution = sobol_caution(result)
    if caution:
        parts.append(f'<p class="note"><strong>Note</strong>: {_e(caution)}.</p>')
    flipping = result.get("flipping") or []
    parts.append("<p><strong>Costs that can flip the winner</strong> (one at a time): "
                 + (_e(", ".join(flipping)) if flipping else "none") + ".</p>")
    with scratch_folder("emu-report") if plots else contextlib.nullcontext() as tmp:
        if plots:
            png = _plot(src_dir, "tornado", lambda: tornado_plot(result), tmp)
            parts.append(_figure(png, "Tornado", "The ratio with each cost at the low and at "
                                                 "the high end of its range, the others at "
                                                 "default; the most influential costs."))
        else:
            parts.append(f'<p class="note">Plots left out ({spelled("--no-plots")}).</p>')
        parts.append(_costs_table(result))
        if result.get("break_even"):
            be = result["break_even"]
            parts.append(f'<h3 id="break-even">Break-even along {_e(be["key"])}</h3>')
            parts.append(f"<p>{_e(break_even_text(result))}.</p>")
            if plots:
                png = _plot(src_dir, "break_even", lambda: break_even_plot(result), tmp)
                parts.append(_figure(png, "Break-even band",
                                     f"Along {key_label(be['key'])}: the ratio at the default "
                                     f"costs, its range over the cost vectors, and the "
                                     f"interval where the vectors cross 1."))
    return "\n".join(parts)

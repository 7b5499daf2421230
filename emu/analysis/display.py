"""What a notebook shows of a result: a short ``repr`` and a small HTML table.

The headline figures are those ``emu compare`` prints
(:func:`emu.report.text.key_figures`), so the terminal, the report and the
notebook show the same numbers, formatted alike.

>>> s = {"seed": 1, "simulated_us": 2000.0, "cpus": 1,
...      "config": {"name": "default", "machine": {"core": "440"},
...                 "kvm": {"strategy": "direct", "handler": "asm", "pfn_source": "pfn-cache"}}}
>>> describe(s)
'default: direct, asm handler, pfn-cache, on 1 x 440 CPU; seed 1; 2,000.0 us simulated'
>>> describe(dict(s, design={"label": "hypothetical: 7924bd41 without _tlbia (tid01, C)",
...                          "hypothetical": True}))
'default: direct, hypothetical: 7924bd41 without _tlbia (tid01, C), on 1 x 440 CPU; seed 1; 2,000.0 us simulated'
>>> describe_comparison("kvm.strategy", [("shadow", s), ("direct", s)])
'default: kvm.strategy = shadow, direct, on 1 x 440 CPU; seed 1; 2,000.0 us simulated'
>>> describe_comparison("seed", [("1", s), ("2", dict(s, seed=2, simulated_us=1500.0))])
'default: seed = 1, 2, on 1 x 440 CPU; seeds 1 / 2; 2,000.0 / 1,500.0 us simulated'
"""

from __future__ import annotations

import html

from emu.codes import handler_name
from emu.report.text import key_figures, labelled

__all__ = ["describe", "describe_comparison", "design_name", "headline_html", "result_repr"]


def _setting(s: dict) -> str:
    return (f"on {s['cpus']} x {s['config']['machine']['core']} CPU; seed {s['seed']}; "
            f"{s['simulated_us']:,.1f} us simulated")


def design_name(s: dict) -> str:
    """The run's strategy, marked when no kernel shipped the design."""
    return labelled(s["config"]["kvm"]["strategy"], s)


def describe(s: dict) -> str:
    """One line naming the run: scenario, design (its label and commit when the
    summary has them), machine, seed, simulated time."""
    cfg = s["config"]
    k = cfg["kvm"]
    design = s.get("design")
    what = (f"{k['strategy']}, {design['label']}" if design else
            f"{k['strategy']}, {handler_name(k['handler'])} handler, {k['pfn_source']}")
    return f"{cfg.get('name') or 'scenario'}: {what}, {_setting(s)}"


def _each(texts) -> str:
    """The one text every run shares, else each run's in order, ``/`` between them."""
    texts = list(texts)
    return texts[0] if len(set(texts)) == 1 else " / ".join(texts)


def describe_comparison(key: str, runs: list) -> str:
    """One line naming a comparison: scenario, the key and its values, and the
    runs' machine, seed and simulated time (what every run shares said once,
    what differs said for each run in order)."""
    summaries = [s for _, s in runs]
    values = ", ".join(str(label) for label, _ in runs)
    machine = _each(f"{s['cpus']} x {s['config']['machine']['core']}" for s in summaries)
    seeds = [str(s["seed"]) for s in summaries]
    simulated = _each(f"{s['simulated_us']:,.1f}" for s in summaries)
    return (f"{summaries[0]['config'].get('name') or 'scenario'}: {key} = {values}, "
            f"on {machine} CPU; seed{'s' if len(set(seeds)) > 1 else ''} {_each(seeds)}; "
            f"{simulated} us simulated")


def result_repr(s: dict) -> str:
    """The ``repr`` of a run: two lines, what it is and its cost per guest access."""
    f = key_figures(s)
    return (f"<emu Result {describe(s)}\n"
            f"  {f['cycles/access']} cycles/guest access, {f['guest misses']} guest TLB misses, "
            f"{f['misses/resume']} misses/resume, {f['exits']} exits>")


def headline_html(runs: list, caption: str = "", label: str = "run") -> str:
    """An HTML table of the headline figures: one row per ``(label, summary)``
    of ``runs``, the figures as columns (as ``emu compare`` prints them);
    ``label`` names the first column, ``caption`` goes above the table; with
    no run, the table has that column alone and a row saying so."""
    figs = [(name, key_figures(s)) for name, s in runs]
    head = "".join(f"<th>{html.escape(h)}</th>"
                   for h in [label] + (list(figs[0][1]) if figs else []))
    body = "<tr><td>(no runs)</td></tr>" if not figs else "".join(
        "<tr>" + f"<th style=\"text-align:left\">{html.escape(str(name))}</th>"
        + "".join(f'<td style="text-align:right">{html.escape(v)}</td>' for v in f.values())
        + "</tr>" for name, f in figs)
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

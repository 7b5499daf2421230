"""One self-contained HTML page for any emu folder (``emu report DIR``).

:func:`write_report` reads a run, comparison, sweep or study folder
(:func:`emu.report.folders.load_results`, every file checked first) and
writes a single HTML file.  For a run or a comparison: the question, the
generated reading, the key figures, the plots (embedded as base64 PNG), the
tables (cycles, exits, misses by cause, repopulation, memory, fast-path
profile), the configuration and the cost table the run used with each
cost's unit, description and source.  A sweep's page is made by
:mod:`emu.report.sweep`; a study's shows its question, its own tables (as
HTML tables), the figures it drew into its folder, every run's key figures
and, folded, its numbers as JSON.  The page needs no other file and no
JavaScript.

The command line (:mod:`emu.cli.report`)::

    emu report results/ -o results/report.html
"""

from __future__ import annotations

import os
import re

import numpy as np

from emu.errors import EmuError, check_flag, spelled
from emu.report import sweep
from emu.report.folders import load_results
from emu.report.page import (PNG_SIGNATURE, collapsed, compact_json, document, esc, figure,
                             heading, text_tables)
from emu.report.plots import comparison_plots, occupancy_timeline, save_figure
from emu.report.reading import generate_reading
from emu.report.schema import join_labels, shorten
from emu.report.sensitivity import read_sensitivity, sensitivity_section, sensitivity_title
from emu.report.tables import (causes_table, config_section, costs_section, cycles_table,
                               exits_table, key_figures_table, memory_table, profile_table,
                               tlb_table)
from emu.run.files import replaceable_path, scratch_folder, write_text
from emu.run.outdir import check_outside_results
from emu.study import get as get_study
from emu.teach.glossary import GLOSSARY, anchor, link_terms

__all__ = ["load_results", "render_report", "write_report"]


# -- the page of a run or a comparison ----------------------------------------------

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
        out.append(figure(png, title, caption))
    for i, (label, s) in enumerate(runs):
        tl = timelines.get(label)
        if tl is None:
            continue
        for cpu in sorted(set(np.asarray(tl["cpu"]).tolist())):
            (png,) = save_figure(occupancy_timeline(s, tl, cpu=cpu, label=label),
                                 os.path.join(tmp, f"occupancy_{i}_{cpu}"), ("png",), 100)
            out.append(figure(png, f"TLB occupancy: {label}, CPU {cpu}",
                              "Who owns each hardware TLB entry, sampled at each context "
                              "switch."))
    return "\n".join(out)


def _meta(runs: list) -> str:
    """The line under the title: the machine, the time simulated, the seed, the
    versions, of every run (``[summary]``): each said once if the runs share it,
    else every value (seeds 1, 2) or their range (simulated time)."""
    def each(values) -> str:
        return ", ".join(str(v) for v in dict.fromkeys(values))

    s = runs[0]
    clock = s["costs"]["clock_mhz"]
    warmup = s["warmup_cycles"]
    sims = [r["simulated_us"] for r in runs]
    sim = (f"{sims[0]:,.1f}" if min(sims) == max(sims) else f"{min(sims):,.1f}–{max(sims):,.1f}")
    seeds = [r["seed"] for r in runs]
    return (f"core {shorten(each(r['config']['machine']['core'] for r in runs))}, "
            f"{each(r['cpus'] for r in runs)} CPU(s) at {clock:,} MHz, {sim} µs simulated"
            + (f" (counted after a {warmup / clock:,.1f} µs warm-up)" if warmup else "")
            + f", seed{'s' if len(set(seeds)) > 1 else ''} {shorten(each(seeds))}, backend "
            f"{shorten(each(r['backend'] for r in runs))}, emu {shorten(s['emu_version'])}")


def _runs_page(results: dict, plots: bool, extra: str = "") -> tuple[str, list]:
    """The title and body of the page of a run or a comparison (``extra``: more
    sections, placed after the key figures)."""
    runs, key = results["runs"], results["key"]
    first = runs[0][1]
    cfg = first["config"]
    name = shorten(cfg.get("name") or "scenario")
    labels = [label for label, _ in runs]
    if results["kind"] == "comparison":
        title = f"emu report: {name}, comparing {key or 'designs'} = "
        title, full = title + join_labels(labels, 200), title + ", ".join(labels)
    else:
        title = full = f"emu report: {name} ({runs[0][0]})"
    plot_part = f'<p class="note">Plots left out ({spelled("--no-plots")}).</p>'
    if plots:
        with scratch_folder("emu-report") as tmp:
            plot_part = _plots_section(runs, results["timelines"], tmp)
    reading = generate_reading(runs)
    body = heading(cfg, title, full) + [
        f'<p class="meta">{esc(_meta([r for _, r in runs]))}</p>',
        '<h2 id="reading">Reading</h2>',
        '<ul class="reading">' + "".join(f"<li>{link_terms(esc(r))}</li>" for r in reading)
        + "</ul>",
        '<p class="note">Generated from the numbers below; it says only what they say. '
        'The words of KVM and the 440 are explained in the <a href="#glossary">glossary</a>.'
        "</p>",
        '<h2 id="key-figures">Key figures</h2>',
        key_figures_table(runs),
        extra,
        '<h2 id="plots">Plots</h2>',
        plot_part,
        '<h2 id="cycles">Cycles by component</h2>',
        cycles_table(runs),
        '<h2 id="tlb">TLB and repopulation</h2>',
        tlb_table(runs),
        '<h2 id="misses-by-cause">Guest TLB misses by cause</h2>',
        causes_table(runs),
        '<h2 id="exits">Exits by category</h2>',
        exits_table(runs),
        '<h2 id="fastpath-profile">Fast-path profile</h2>',
        profile_table(runs),
        '<h2 id="memory">Memory</h2>',
        memory_table(runs),
        '<h2 id="config">Configuration</h2>',
        config_section(runs, key),
        '<h2 id="costs">Cost table</h2>',
        costs_section(runs),
        glossary_section(),
    ]
    return title, body


def glossary_section() -> str:
    """The glossary (emu.teach.glossary), one anchored entry per term, for the
    links of the page to point at."""
    entries = "".join(f'<dt id="{anchor(t)}">{esc(t.name)}</dt><dd>{esc(t.text)} '
                      f'<span class="src">[{esc(t.cite)}]</span></dd>' for t in GLOSSARY)
    return f'<h2 id="glossary">Glossary</h2>\n<dl class="glossary">{entries}</dl>'


# -- the page of a study ----------------------------------------------------------------

def _study_tables(study, numbers: dict, path: str) -> str:
    """The study's own tables of its numbers, as it printed them, made HTML tables."""
    try:
        text = study.report(numbers)
    except (LookupError, TypeError, ValueError, AttributeError, ArithmeticError) as err:
        raise EmuError(f"report: {path}: numbers: not what the study {study.name} writes "
                       f"({type(err).__name__}: {shorten(err, 60)})") from None
    return text_tables(text)


#: The docstrings' inline markup: ``code``, **strong**, :mod:`x` / :func:`x` roles.
_MARKUP = re.compile(r"``(.+?)``|\*\*(.+?)\*\*|:\w+:`~?(.+?)`")


def _marked(text: str) -> str:
    """``text`` of a docstring as HTML: escaped, its inline markup rendered."""
    out, at = [], 0
    for m in _MARKUP.finditer(text):
        out.append(esc(text[at:m.start()]))
        code, strong, role = m.groups()
        out.append(f"<strong>{esc(strong)}</strong>" if strong is not None
                   else f"<code>{esc(code if code is not None else role)}</code>")
        at = m.end()
    return "".join(out) + esc(text[at:])


def _about(study) -> str:
    """The study's description (its experiment and what to look at), folded."""
    parts = []
    for paragraph in study.description.split("\n\n")[1:]:
        items = [" ".join(item.split()) for item in ("\n" + paragraph).split("\n* ")]
        if items[0]:
            parts.append(f"<p>{_marked(items[0])}</p>")
        if items[1:]:                   # a list of "* " items
            parts.append("<ul>" + "".join(f"<li>{_marked(i)}</li>" for i in items[1:])
                         + "</ul>")
    return collapsed("About this study: the experiment, what to look at, its figures",
                     "".join(parts))


def _named_pngs(numbers) -> list:
    """The PNG files a study's numbers name (each a name in its folder, or
    a path), in the order they come.

    >>> _named_pngs({"png": "fastpath_profile.png", "band": {"plots": ["t.png", "t.svg"]}})
    ['fastpath_profile.png', 't.png']
    """
    if isinstance(numbers, str):
        return [numbers] if numbers.endswith(".png") else []
    items = numbers.values() if isinstance(numbers, dict) else \
        numbers if isinstance(numbers, list) else ()
    return [p for item in items for p in _named_pngs(item)]


def _study_figures(folder: str, plots: bool, numbers=None) -> str:
    """The figures the study drew into its folder (every PNG there but under
    ``runs/``), embedded; EmuError (one line) for a file that is no PNG.  A
    figure the study's ``numbers`` name that is not there is said missing."""
    if not plots:
        return f'<p class="note">Figures left out ({spelled("--no-plots")}).</p>'
    paths = []
    for where, dirs, files in os.walk(folder):
        if where == folder:
            dirs[:] = [d for d in dirs if d != "runs"]
        paths += [os.path.join(where, f) for f in files if f.endswith(".png")]
    out = []
    for path in sorted(paths):
        try:
            with open(path, "rb") as f:
                is_png = f.read(len(PNG_SIGNATURE)) == PNG_SIGNATURE
        except OSError as err:
            raise EmuError(f"report: cannot read {path}: {shorten(err, 120)}") from None
        if not is_png:
            raise EmuError(f"report: {path}: not a PNG image")
        out.append(figure(path, os.path.relpath(path, folder),
                          "Drawn by the study into its folder (About this study says what it "
                          "shows)."))
    found = {os.path.basename(p) for p in paths}
    gone = [n for n in dict.fromkeys(_named_pngs(numbers)) if os.path.basename(n) not in found]
    if gone:
        out.append(f'<p class="note">Not in the study\'s folder, though the study drew it: '
                   f'{esc(shorten(", ".join(gone), 200))}.</p>')
    return "\n".join(out) or "<p>The study drew no figure.</p>"


def _study_page(results: dict, plots: bool) -> tuple[str, list]:
    """The title and body of the page of a study's folder."""
    data, runs = results["study"], results["runs"]
    name = data["study"]
    try:
        study = get_study(name)
    except EmuError:
        study = None
    title = f"emu report: study {shorten(name)}" + (" (quick)" if data["quick"] else "")
    missing = results["missing"]
    body = heading({"question": data["question"]}, title) + [
        f'<p class="meta">{len(data["runs"]):,} runs'
        + (f"; {len(missing):,} of them without a summary.json (left out below): "
           f"{esc(shorten(', '.join(missing), 200))}" if missing else "") + "</p>",
        _about(study) if study else "",
        '<h2 id="tables">The study\'s tables</h2>',
        _study_tables(study, data["numbers"], results["path"]) if study else
        f'<p class="note">emu has no study called {esc(shorten(name))}: its own tables '
        "cannot be made; every run's figures follow.</p>",
        '<h2 id="figures">The study\'s figures</h2>',
        _study_figures(os.path.dirname(results["path"]), plots, data["numbers"]),
        '<h2 id="key-figures">Key figures of every run</h2>',
        key_figures_table(runs) if runs else "<p>No run's summary is there.</p>",
        '<h2 id="numbers">Numbers</h2>',
        collapsed(f"Every number the study found, as {os.path.basename(results['path'])} "
                  "holds it (JSON)",
                  '<pre class="wrap">' + esc(shorten(compact_json(data["numbers"]), 200_000))
                  + "</pre>"),
    ]
    if runs:
        body += ['<h2 id="costs">Cost table</h2>', costs_section(runs[:1])]
    return title, body + [glossary_section()]


def render_report(results: dict, plots: bool = True, extra: str = "") -> str:
    """The HTML text of the report of :func:`load_results`' output (without
    its plots if not ``plots``; ``extra``: more sections for a run or a
    comparison, after its key figures)."""
    if results["kind"] == "sweep":
        title, body = sweep.page(results, plots)
    elif results["kind"] == "study":
        title, body = _study_page(results, plots)
    else:
        title, body = _runs_page(results, plots, extra)
    return document(title, body)


def write_report(src_dir, out_html=None, plots: bool = True) -> str:
    """Write the report of a run, comparison, sweep or study folder; return its path.

    A folder holding a sensitivity study (``sensitivity.json``,
    :mod:`emu.report.sensitivity`) gets its section too, or only that
    section if it holds no run.  ``out_html`` defaults to
    ``DIR/report.html``.  Written atomically.  Raises :class:`EmuError` (one
    line) when ``src_dir`` cannot be read as a result, naming the file and
    the key that is wrong.
    """
    check_flag("plots", plots, EmuError)
    src = os.fspath(src_dir)
    study = read_sensitivity(src) if os.path.isdir(src) else None
    out = os.fspath(out_html) if out_html else os.path.join(src, "report.html")
    if out_html:                            # refused before the page is built, not after
        replaceable_path(out)
        check_outside_results(os.path.abspath(out), f"report: {spelled('-o')} {out}",
                              own=os.path.join(src, "report.html"), error=EmuError)
    if study is not None and not any(os.path.isfile(os.path.join(src, name))
                                     for name in ("summary.json", "comparison.json")):
        title = f"emu report: {sensitivity_title(study)}"
        text = document(title, [f"<h1>{esc(title)}</h1>",
                                sensitivity_section(study, src, plots)])
    else:
        text = render_report(load_results(src), plots,
                             sensitivity_section(study, src, plots) if study is not None
                             else "")
    try:
        write_text(out, text)
    except OSError as err:
        raise EmuError(f"report: cannot write {out}: {err.strerror or err}") from None
    return out

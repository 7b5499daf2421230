"""Plots of a run and of a comparison of designs (matplotlib figures, PNG and SVG files).

Every plot function takes ``runs``, a list of ``(label, summary)`` pairs (one
per design, in the order the reader should see them; a
:class:`~emu.run.Result` may stand for its summary), and returns the
matplotlib :class:`~matplotlib.figure.Figure`.  Given ``out``, a path without
extension (an extension, if given, is dropped), it also writes ``out.png``
and ``out.svg`` atomically (:func:`save_figure`, which returns their paths).
Each plot has a title, axis labels with units and a legend; SVG text is kept
as text (not paths), so a test or a search can find the title and labels in
it.

The figures are made without :mod:`matplotlib.pyplot`: nothing is registered
with a GUI or the notebook backend (a figure that is not kept is freed), and
the backend the user chose is left alone.  matplotlib is imported only when a
plot is drawn: ``import emu`` never pulls it in.

>>> from emu.report.plots import repopulation_curve, save_figure  # doctest: +SKIP
>>> fig = repopulation_curve([("shadow", s1), ("direct", s2)])      # doctest: +SKIP
>>> save_figure(fig, "out/repopulation")                            # doctest: +SKIP
('out/repopulation.png', 'out/repopulation.svg')
"""

from __future__ import annotations

import functools
import inspect
import io
import math
import os
from typing import TYPE_CHECKING

import numpy as np

from emu.digits import plain
from emu.run.files import atomic_path
from emu.codes import CYCLE_CATEGORIES, CYCLE_LABELS, EXIT_CATEGORIES, MISS_CAUSES
from emu.errors import ConfigError, EmuError
from emu.report.columns import fold
from emu.report.text import labelled
from emu.stats import figures

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: What each plot writes unless told otherwise.
FORMATS = ("png", "svg")
DPI = 110
#: The formats a figure can be saved in.
SAVED_FORMATS = ("png", "svg", "pdf")
#: The highest resolution a figure is saved at (dots per inch).
DPI_MAX = 2400

#: Deterministic output: no dates in the files, fixed SVG ids, text kept as text.
_RC = {
    "svg.fonttype": "none",
    "svg.hashsalt": "emu-report",
    "font.size": 9.5,
    "axes.titlesize": 11,
    "axes.titleweight": "bold",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "legend.fontsize": 8.5,
    "legend.framealpha": 0.9,
}
_METADATA = {"png": {"Software": None}, "svg": {"Date": None}}

#: Colours of the designs (one per run, in order): matplotlib's tab10.
RUN_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")

#: Colours of the cycle components, fixed so that every plot agrees.
_CYCLE_COLOURS = {
    "guest": "#a6cee3", "exit_entry": "#1f78b4", "fastpath": "#33a02c",
    "c_path": "#b2df8a", "gfn_to_pfn": "#ff7f00", "save_restore": "#e31a1c",
    "host_switch": "#6a3d9a", "host_tasks": "#cab2d6", "qemu": "#b15928", "idle": "#d9d9d9",
}
#: Components that are not overhead of the design (the right panel leaves them out).
_NOT_OVERHEAD = ("guest", "host_tasks", "idle")

_CAUSE_COLOURS = {
    "compulsory": "#9e9e9e", "host-eviction": "#d62728", "other-guest-eviction": "#9467bd",
    "self-eviction": "#1f77b4", "guest-context-switch": "#2ca02c", "flush": "#ff7f0e",
    "shadow-not-restored": "#8c564b",
}

#: The miss handler's own steps in the order they run (the C handler's full
#: exit takes the place of the asm save), and their colours: each differs
#: clearly in hue and lightness from the steps beside it in a bar.
HANDLER_STEPS = ("full_exit", "save", "walk", "deliver", "gpa", "memslot", "pfn_lookup",
                 "deferred_c_path", "hw_write", "restore")
_STEP_COLOURS = {
    "full_exit": "#332288", "save": "#0072b2", "walk": "#e69f00", "deliver": "#555555",
    "gpa": "#56b4e9", "memslot": "#009e73", "pfn_lookup": "#f0e442",
    "deferred_c_path": "#cc79a7", "hw_write": "#d55e00", "restore": "#44aa99",
    "entry_restore": "#b2182b", "gfn_to_pfn": "#7b3294",
}

#: Colours of the TLB owners in the occupancy image.
_FREE_COLOUR = "#f0f0f0"
_VCPU_COLOURS = ("#1f77b4", "#2ca02c", "#17becf", "#9467bd", "#08519c", "#006d2c",
                 "#6baed6", "#74c476")
_QEMU_COLOURS = ("#ff7f0e", "#fdae6b", "#e6550d")
_HOST_COLOURS = ("#d62728", "#8c564b", "#e377c2", "#bcbd22", "#7f7f7f", "#843c39")


# -- helpers -------------------------------------------------------------------

def _shown_figure_class() -> type:
    """:class:`ShownFigure`, made at first use so that importing this module
    does not import matplotlib."""
    global _SHOWN_FIGURE
    if _SHOWN_FIGURE is None:
        from matplotlib.figure import Figure

        class ShownFigure(Figure):
            """A Figure that a notebook shows as a PNG whatever its matplotlib
            backend: a bare Figure displays only once pyplot has started
            Jupyter's inline backend."""

            def _repr_png_(self) -> bytes:
                buf = io.BytesIO()
                with _rc():
                    self.savefig(buf, format="png", dpi=DPI, bbox_inches="tight",
                                 metadata=_METADATA.get("png"))
                return buf.getvalue()

        ShownFigure.__module__ = __name__       # pickled by name, found by __getattr__
        ShownFigure.__qualname__ = "ShownFigure"
        _SHOWN_FIGURE = ShownFigure
    return _SHOWN_FIGURE


_SHOWN_FIGURE = None


def __getattr__(name: str):
    if name == "ShownFigure":
        return _shown_figure_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _figure(**kw) -> "Figure":
    """A new :class:`ShownFigure` (no pyplot: nothing to close, nothing displayed twice)."""
    return _shown_figure_class()(**kw)


def _base(out) -> str:
    out = os.fspath(out)
    head, name = os.path.split(out)
    if name.lower() in _EXTENSIONS:         # an extension alone ('.png'): an empty name
        return os.path.join(head, "")
    root, ext = os.path.splitext(out)
    return root if ext.lower() in _EXTENSIONS else out


#: the extensions a plot's ``out`` may end in, dropped from it
_EXTENSIONS = (".png", ".svg", ".pdf")


def check_output(formats, dpi) -> tuple:
    """``(formats, dpi)`` as the plots take them: one format's name (a string)
    or several, each one of :data:`SAVED_FORMATS`, and a number of dots per
    inch above 0 and at most :data:`DPI_MAX`; else ConfigError (one line)."""
    if isinstance(formats, str):
        formats = (formats,)
    try:
        formats = tuple(formats)
    except TypeError:
        raise ConfigError(f"formats: expected a format's name or a list of them (e.g. "
                          f"('png', 'svg')), got {type(formats).__name__} {formats!r}") from None
    if not formats:
        raise ConfigError(f"formats: no format (expected some of {', '.join(SAVED_FORMATS)})")
    for fmt in formats:
        if fmt not in SAVED_FORMATS:
            raise ConfigError(f"formats: expected some of {', '.join(SAVED_FORMATS)}, got "
                              f"{fmt!r}")
    dpi = plain(dpi)
    if isinstance(dpi, bool) or not isinstance(dpi, (int, float)) or not math.isfinite(dpi) \
            or not 0 < dpi <= DPI_MAX:
        raise ConfigError(f"dpi: expected a number of dots per inch above 0 and at most "
                          f"{DPI_MAX}, got {type(dpi).__name__} {dpi!r}")
    return formats, dpi


def check_out(out) -> str:
    """``out``, a plot's path without extension, as text; ConfigError (one
    line) when it is no path or its name is empty (it would write a hidden
    ``.png``)."""
    if not isinstance(out, (str, bytes, os.PathLike)):
        raise ConfigError(f"out: expected the path of the file without its extension (a string "
                          f"or a Path), got {type(out).__name__} {out!r:.60}")
    out = os.fsdecode(out)
    base = _base(out)
    extension_alone = os.path.basename(out).lower() in _EXTENSIONS
    if extension_alone or not os.path.basename(base).strip() and not base.endswith(("/", os.sep)):
        raise ConfigError(f"out {out!r}: an empty name names no file; give the path of the "
                          f"file without its extension, e.g. 'figure'")
    return out


def check_out_dir(out_dir) -> str:
    """``out_dir``, the folder plots are written into, as text; ConfigError
    (one line) when it is no path, empty, or a file."""
    if not isinstance(out_dir, (str, bytes, os.PathLike)):
        raise ConfigError(f"out_dir: expected the path of a folder (a string or a Path), got "
                          f"{type(out_dir).__name__} {out_dir!r:.60}")
    out_dir = os.fsdecode(out_dir)
    if not out_dir.strip():
        raise ConfigError(f"out_dir {out_dir!r}: an empty path names no folder")
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise ConfigError(f"out_dir {out_dir!r}: exists and is not a folder")
    return out_dir


def output_checked(fn):
    """``fn`` with its ``formats``, ``dpi`` and ``out`` or ``out_dir`` checked
    (:func:`check_output`, :func:`check_out`, :func:`check_out_dir`) before it
    draws anything: the decorator of every plot function, here and in the
    modules that draw their own (a sensitivity study's tornado)."""
    sig = inspect.signature(fn)

    @functools.wraps(fn)
    def checked(*args, **kwargs):
        try:
            bound = sig.bind(*args, **kwargs)
        except TypeError as err:
            raise TypeError(f"{fn.__name__}(): {err}") from None
        given = bound.arguments
        if "out" in sig.parameters and given.get("out") is None:
            unsaved = [k for k in ("formats", "dpi") if k in given]
            if unsaved:     # they say how the figure is saved, and it is not
                raise ConfigError(f"{' and '.join(unsaved)}: given without out, where the "
                                  f"figure would be saved: give out=PATH, or leave "
                                  f"{'them' if len(unsaved) > 1 else 'it'} out")
        given["formats"], given["dpi"] = check_output(given.get("formats", FORMATS),
                                                      given.get("dpi", DPI))
        if "out" in sig.parameters and (given.get("out") is not None
                                        or sig.parameters["out"].default is sig.empty):
            given["out"] = check_out(given.get("out"))     # optional (None: not saved) or not
        if "out_dir" in sig.parameters:
            given["out_dir"] = check_out_dir(given.get("out_dir"))
        return fn(*bound.args, **bound.kwargs)
    return checked


@output_checked
def save_figure(fig: "Figure", out, formats=FORMATS, dpi=DPI) -> tuple:
    """Write ``fig`` as ``out.<fmt>`` for each format, atomically; their paths.

    ``out`` is a path without extension (a .png, .svg or .pdf one is dropped);
    a folder, an empty name or what is no path is refused (ConfigError, one
    line, :func:`check_out`): a plot is not written into a folder under a
    name of its choosing, nor as a hidden ``.png``.  The files carry no date,
    so the same figure gives the same bytes.
    """
    base = _base(out)
    if os.path.isdir(base) or base.endswith(("/", os.sep)):
        raise ConfigError(f"out {os.fspath(out)!r}: is a folder; give the path of the file "
                          f"without its extension, e.g. {os.path.join(base, 'figure')!r}")
    paths = []
    with _rc():
        for fmt in formats:
            path = f"{base}.{fmt}"
            with atomic_path(path, suffix="." + fmt) as tmp:
                fig.savefig(tmp, format=fmt, dpi=dpi, bbox_inches="tight",
                            metadata=_METADATA.get(fmt))
            paths.append(path)
    return tuple(paths)


def saved(fig: "Figure", out, formats, dpi) -> "Figure":
    """The figure, saved first when ``out`` is given: what every plot function returns."""
    if out is not None:
        save_figure(fig, out, formats, dpi)
    return fig


def new_figure(**kw) -> "Figure":
    """A new Figure in the plots' style (for plots built outside this module)."""
    return _figure(**kw)


def style():
    """The plots' style (deterministic output, text kept as text), as a context."""
    return _rc()


def _rc():
    import matplotlib
    return matplotlib.rc_context(_RC)


#: Plot labels longer than this are folded onto lines of at most this many characters.
PLOT_LABEL_WIDTH = 44


def _check_runs(runs) -> list:
    """``runs`` as ``[(label, summary)]``: a list of ``(label, Result or
    summary)`` pairs, a ``{label: Result or summary}`` mapping (a Comparison
    or Study is both), Results or summaries without labels (each then named
    by its design), or one alone; else EmuError, one line."""
    def one(x) -> bool:
        return hasattr(x, "summary") or (isinstance(x, dict) and "tlb" in x)

    if one(runs):
        runs = [(_run_label(runs), runs)]           # one run alone
    elif hasattr(runs, "runs") and hasattr(runs, "variants"):
        runs = runs.runs                            # emu.run.run_comparison's Comparison
    elif isinstance(runs, dict):
        runs = list(runs.items())
    elif isinstance(runs, (list, tuple)) and runs and all(one(x) for x in runs):
        runs = [(_run_label(x), x) for x in runs]   # runs without labels: their designs'
    try:
        runs = [(str(label), getattr(s, "summary", s)) for label, s in runs]
    except (TypeError, ValueError):
        raise EmuError("plots take [(label, Result or summary)], {label: Result or summary}, "
                       "or one Result") from None
    if not all(isinstance(s, dict) and "tlb" in s for _, s in runs):
        raise EmuError("plots take [(label, Result or summary)], {label: Result or summary}, "
                       "or one Result: a value is neither")
    # every plot marks a hypothetical run; a long label is folded, not cut
    runs = [(_fold(labelled(label, s)), s) for label, s in runs]
    if not runs:
        raise EmuError("nothing to plot: no runs")
    return runs


def _run_label(run) -> str:
    """The label of one run plotted alone: its design's."""
    s = getattr(run, "summary", run)
    return str((s.get("design") or {}).get("label") or "run")


def _fold(label: str) -> str:
    """``label`` on lines of at most PLOT_LABEL_WIDTH columns, broken at spaces."""
    if len(label) <= PLOT_LABEL_WIDTH:
        return label
    return "\n".join(fold(label, PLOT_LABEL_WIDTH))


def _design_axis(ax, labels, horizontal=True):
    """Design names along the bars' axis, the first design on top."""
    pos = list(range(len(labels)))
    if horizontal:
        ax.set_yticks(pos)
        ax.set_yticklabels(labels)
        if not ax.yaxis_inverted():     # a shared y axis must be inverted once only
            ax.invert_yaxis()
        ax.grid(axis="y", visible=False)
    else:
        ax.set_xticks(pos)
        ax.set_xticklabels(labels, rotation=20 if max(map(len, labels)) > 12 else 0,
                           ha="right" if max(map(len, labels)) > 12 else "center")
        ax.grid(axis="x", visible=False)
    return pos


def _bar_height(n: int) -> float:
    return 0.6 if n > 1 else 0.45


def _stacked_barh(ax, runs, parts, values, colours, names, annotate_fmt=None,
                  inside_fmt=None, off_scale=False):
    """Horizontal stacked bars: one per run, one segment per part with a non-zero value.
    ``inside_fmt``: write each segment's value inside it when it is wide enough.
    ``off_scale`` (with ``annotate_fmt``): when one bar is more than ten times the
    next longest, the axis ends past the others and that bar runs off it, its
    value written at the edge with an arrow (one start-up would flatten the rest)."""
    labels = [label for label, _ in runs]
    pos = _design_axis(ax, labels)
    left = [0.0] * len(runs)
    h = _bar_height(len(runs))
    segments = []
    for part in parts:
        vals = [values(s, part) for _, s in runs]
        if not any(vals):
            continue
        ax.barh(pos, vals, h, left=left, color=colours[part], label=names.get(part, part),
                edgecolor="white", linewidth=0.5)
        segments += [(p, x, v, colours[part]) for p, x, v in zip(pos, left, vals) if v]
        left = [a + b for a, b in zip(left, vals)]
    if inside_fmt:
        top = max(left) if left else 0
        for p, x, v, colour in segments:
            if top and v >= 0.07 * top:
                ax.text(x + v / 2, p, inside_fmt(v), ha="center", va="center", fontsize=7.5,
                        color=_ink_on(colour))
    if annotate_fmt:
        top = max(left) if left else 0
        rest = sorted(left, reverse=True)[1:2]
        if off_scale and rest and 0 < 10 * rest[0] < top:
            top = rest[0] * 1.3
        for p, v in zip(pos, left):
            if v > top:
                ax.text(0.99, p, annotate_fmt(v) + ", off scale \u2192", va="center", ha="right",
                        fontsize=8.5, transform=ax.get_yaxis_transform(),
                        bbox={"facecolor": "white", "edgecolor": "none", "pad": 1})
            else:
                ax.text(v + 0.01 * (top or 1), p, annotate_fmt(v), va="center", fontsize=8.5)
        ax.set_xlim(0, (top or 1) * 1.15)
    return left


# -- the plots -------------------------------------------------------------------

def _moving_mean(values: list, width: int) -> list:
    """Centred mean over ``width`` points (fewer at the ends)."""
    half = width // 2
    out = []
    for k in range(len(values)):
        lo, hi = max(0, k - half), min(len(values), k - half + width)
        out.append(sum(values[lo:hi]) / (hi - lo))
    return out


@output_checked
def repopulation_curve(runs, out=None, formats=FORMATS, dpi=DPI) -> "Figure":
    """Misses per resume at each position k after vcpu_load: ``misses[k] / resumes``.

    Left: the misses at the k-th guest access after a vcpu_load, per resume,
    one line per design; not a probability: an access whose page the guest TLB
    lacks misses twice (delivered to the guest, then again after its fill), so
    the curve can pass 1 (thin: each k; thick: its mean over a few neighbouring k).
    Right: its running sum, the misses per resume taken in the first k accesses
    (its last point is ``repopulation.misses_per_resume``).  One legend below
    both panels; a design whose curve equals an earlier one's says so in it
    (its line hides under the other); a design with no resume is listed as such.
    """
    runs = _check_runs(runs)
    with _rc():
        fig = _figure(figsize=(11, 4.2))
        ax, cum = fig.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2]})
        window = max((len(s["repopulation"]["misses"]) for _, s in runs), default=1)
        width = max(1, window // 32)
        seen, ends = {}, []             # ends: (value, x, colour) of each cumulative curve
        for i, (label, s) in enumerate(runs):
            rep = s["repopulation"]
            colour = RUN_COLOURS[i % len(RUN_COLOURS)]
            resumes = rep["resumes"]
            if not resumes:
                ax.plot([], [], color=colour, label=f"{label} (no resume)")
                continue
            key = (resumes, tuple(rep["misses"]))
            same = seen.setdefault(key, label)
            note = f", same as {same}" if same != label else ""
            rate = figures.repopulation_rate(s)
            style = dict(color=colour, linestyle=("-", "--", "-.", ":")[i % 4])
            ax.plot(range(len(rate)), rate, linewidth=0.6, alpha=0.35, drawstyle="steps-post",
                    color=colour)
            ax.plot(range(len(rate)), _moving_mean(rate, width), linewidth=1.8,
                    label=f"{label} ({resumes} resumes{note})", **style)
            running, acc = [], 0.0
            for r in rate:
                acc += r
                running.append(acc)
            cum.plot(range(1, len(running) + 1), running, linewidth=1.8, **style)
            if running and not note:
                ends.append((running[-1], len(running), colour))
        _end_labels(cum, ends)
        ax.set_title("TLB misses after vcpu_load, per resume")
        ax.set_xlabel("accesses after vcpu_load, the guest kernel's too (k)")
        ax.set_ylabel("misses per resume at access k\n(misses[k] / resumes; an access "
                      "can miss twice)")
        ax.set_ylim(bottom=0)
        ax.set_xlim(0, max(window, 1))
        cum.set_title("Cumulative misses per resume")
        cum.set_xlabel("accesses after vcpu_load, the guest kernel's too (k)")
        cum.set_ylabel("misses per resume in the first k accesses")
        cum.set_ylim(bottom=0)
        cum.set_xlim(0, max(window, 1) * 1.1)
        # one legend for both panels, below them: a comparison's labels are long
        fig.tight_layout()
        fig.legend(*ax.get_legend_handles_labels(), loc="upper center", ncol=2, frameon=False,
                   bbox_to_anchor=(0.5, -0.01), title=f"design (left: thin each k, thick the "
                   f"mean over {width} k)" if width > 1 else "design")
    return saved(fig, out, formats, dpi)


def _end_labels(ax, ends: list) -> None:
    """Each curve's last value at its end, the labels moved apart upwards so
    that close values (39.9, 40.0, 39.1) stay readable: at least 5 % of the
    largest value between two labels."""
    if not ends:
        return
    gap = 0.05 * max(max(v for v, _, _ in ends), 1e-9)
    last = None
    for value, x, colour in sorted(ends):
        y = value if last is None else max(value, last + gap)
        ax.annotate(f"{value:.1f}", (x, value), xytext=(x, y), textcoords="data",
                    va="center", ha="left", fontsize=8.5, color=colour)
        last = y


@output_checked
def cycle_breakdown(runs, out=None, formats=FORMATS, dpi=DPI) -> "Figure":
    """Where the CPU time goes, one stacked bar per design.

    Left: every cycle component as a share of CPU time (simulated cycles x
    CPUs; the components add up to it).  Right: the design's overheads only
    (all but guest work, host tasks and idle) in CPU cycles per guest access,
    so that small differences are visible.
    """
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    runs = _check_runs(runs)
    with _rc():
        fig = _figure(figsize=(11, 1.6 + 0.55 * len(runs)))
        ax, ov = fig.subplots(1, 2, sharey=True)
        _stacked_barh(ax, runs, CYCLE_CATEGORIES, lambda s, c: figures.percent(s, c) or 0.0,
                      _CYCLE_COLOURS, CYCLE_LABELS)
        ax.set_xlim(0, 100)
        ax.set_title("CPU time by component")
        ax.set_xlabel("share of CPU time (%)")
        ax.set_ylabel("design")

        overhead = [c for c in CYCLE_CATEGORIES if c not in _NOT_OVERHEAD]
        _stacked_barh(ov, runs, overhead, lambda s, c: figures.per_guest_access(s, c) or 0.0,
                      _CYCLE_COLOURS, CYCLE_LABELS, annotate_fmt=lambda v: f"{v:,.3f}",
                      off_scale=True)
        ov.xaxis.set_major_locator(MaxNLocator(nbins=4))      # long figures (start-up) stay apart
        ov.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.6g}"))
        ov.set_title("Design overhead per guest access")
        ov.set_xlabel("CPU cycles per guest access (overhead components only)")
        # one legend for both panels: every component that appears in either
        handles, labels = [], []
        for a in (ax, ov):
            for h, lab in zip(*a.get_legend_handles_labels()):
                if lab not in labels:
                    handles.append(h)
                    labels.append(lab)
        fig.tight_layout()
        fig.legend(handles, labels, loc="upper center", ncol=5, frameon=False,
                   bbox_to_anchor=(0.5, -0.03), title="cycle component")
    return saved(fig, out, formats, dpi)


@output_checked
def exits_by_category(runs, out=None, formats=FORMATS, dpi=DPI) -> "Figure":
    """Grouped bars of exit counts per category, for every category any design
    exited on (TIMEINGUEST, the time spent in the guest, left out).  A log
    scale is used when the counts span more than two decades."""
    runs = _check_runs(runs)
    counts_of = [(label, figures.exit_counts(s)) for label, s in runs]
    cats = [c for c in EXIT_CATEGORIES if any(counts.get(c) for _, counts in counts_of)]
    with _rc():
        # at most 13 inches: a page shows it whole (many designs make thinner bars)
        fig = _figure(figsize=(min(13.0, max(6.0, 1.0 + 0.9 * max(len(cats), 1)
                                             * (0.6 + 0.25 * len(runs)))), 4.2))
        ax = fig.subplots()
        n = len(runs)
        width = 0.8 / n
        counts_all = []
        for i, (label, by_category) in enumerate(counts_of):
            counts = [by_category.get(c, 0) for c in cats]
            counts_all += [c for c in counts if c]
            xs = [k - 0.4 + width * (i + 0.5) for k in range(len(cats))]
            bars = ax.bar(xs, counts, width, label=f"{label} ({sum(counts):,} exits)",
                          color=RUN_COLOURS[i % len(RUN_COLOURS)], edgecolor="white",
                          linewidth=0.5)
            if len(cats) * n <= 40:           # the counts themselves, small, above the bars
                ax.bar_label(bars, labels=[f"{c:,}" if c else "" for c in counts], fontsize=6.5,
                             padding=1, rotation=90 if n > 2 else 0)
        ax.set_xticks(range(len(cats)))
        ax.set_xticklabels(cats, rotation=30, ha="right")
        ax.grid(axis="x", visible=False)
        if counts_all and max(counts_all) > 100 * min(counts_all):
            from matplotlib.ticker import FuncFormatter
            ax.set_yscale("log")
            ax.set_ylim(0.7, 10 ** math.ceil(math.log10(max(counts_all)) + 0.3))
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 1 else ""))
            ax.set_ylabel("exits (count, log scale)")
        else:
            ax.set_ylabel("exits (count)")
            if counts_all:
                ax.set_ylim(0, max(counts_all) * 1.15)
        if not cats:
            ax.text(0.5, 0.5, "no exits", transform=ax.transAxes, ha="center", va="center")
        ax.set_xlabel("exit category (KVM exit timing)")
        ax.set_title("Exits by category (TIMEINGUEST excluded)")
        _side_legend(ax, "design")
        fig.tight_layout()
    return saved(fig, out, formats, dpi)


@output_checked
def miss_causes(runs, out=None, formats=FORMATS, dpi=DPI) -> "Figure":
    """Guest hardware TLB misses by cause (docs/design.md §6), one stacked bar per design."""
    runs = _check_runs(runs)
    with _rc():
        fig = _figure(figsize=(9, 1.5 + 0.55 * len(runs)))
        ax = fig.subplots()
        totals = _stacked_barh(ax, runs, MISS_CAUSES,
                               lambda s, c: s["tlb"]["guest"]["misses_by_cause"][c],
                               _CAUSE_COLOURS, {}, annotate_fmt=lambda v: f"{int(v):,}")
        if not any(totals):
            ax.text(0.5, 0.5, "no guest TLB misses", transform=ax.transAxes, ha="center",
                    va="center")
        ax.set_title("Guest TLB misses by cause")
        ax.set_xlabel("hardware TLB misses taken by guests (count)")
        ax.set_ylabel("design")
        _side_legend(ax, "cause")
        fig.tight_layout()
    return saved(fig, out, formats, dpi)


def _side_legend(ax, title: str) -> None:
    """The legend of ``ax`` at its right, titled ``title``; none when nothing
    was drawn (no exits, no misses), so no empty box."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), title=title)


def _ink_on(colour: str) -> str:
    """Black or white, whichever reads better on ``colour`` (#rrggbb)."""
    r, g, b = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    return "black" if 0.299 * r + 0.587 * g + 0.114 * b > 140 else "white"


def _per_call_bars(ax, runs, step: str, unit: str, units: str, title: str):
    """One bar per design: a step's mean cycles per occurrence (per ``unit``),
    annotated with the mean and how many times it ran (``units``)."""
    pos = _design_axis(ax, [label for label, _ in runs])
    prof = [s["fastpath_profile"][step] for _, s in runs]
    means = [p["cycles"] / p["count"] if p["count"] else 0.0 for p in prof]
    ax.barh(pos, means, _bar_height(len(runs)), color=_STEP_COLOURS[step],
            edgecolor="white", linewidth=0.5)
    top = max(means) or 1.0
    for p, m, e in zip(pos, means, prof):
        text = f"{m:,.0f} × {e['count']:,} {units}" if e["count"] else "never ran"
        ax.text(m + 0.02 * top, p, text, va="center", fontsize=8)
    ax.set_xlim(0, top * 1.9)
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(f"CPU cycles per {unit}")


@output_checked
def fastpath_profile(runs, out=None, formats=FORMATS, dpi=DPI) -> "Figure":
    """The miss handler's cost, one bar per design, in three panels, each with
    its own normalization (so that no step hides another):

    - the handler's own steps (``HANDLER_STEPS``), each step's cycles divided
      by the design's guest TLB misses: a stacked bar that adds up to what the
      handler itself costs an average miss (a step that runs on some misses
      only is weighted by how often it ran);
    - ``entry_restore``, the strategy's TLB work at every guest entry (the
      shadow designs rewrite their array), per entry: it runs at every entry,
      not per miss, so it is shown as its mean times the entries;
    - ``gfn_to_pfn`` per call, times the calls: the same calls spread over
      fewer misses would otherwise look like a dearer handler.
    """
    runs = _check_runs(runs)
    with _rc():
        fig = _figure(figsize=(14, 2.1 + 0.55 * len(runs)))
        axes = fig.subplots(1, 3, sharey=True, gridspec_kw={"width_ratios": [3.2, 1.2, 1.2]})
        _stacked_barh(axes[0], runs, HANDLER_STEPS,
                      lambda s, step: figures.profile_cycles_per_miss(s, step) or 0.0,
                      _STEP_COLOURS, {}, annotate_fmt=lambda v: f"{v:,.0f}",
                      inside_fmt=lambda v: f"{v:,.0f}")
        axes[0].set_title("Handler steps, per guest TLB miss", fontsize=10)
        axes[0].set_xlabel("CPU cycles per guest TLB miss (step cycles / misses)")
        axes[0].set_ylabel("design")
        _per_call_bars(axes[1], runs, "entry_restore", "guest entry", "entries",
                       "TLB restore at guest entry, per entry")
        _per_call_bars(axes[2], runs, "gfn_to_pfn", "call", "calls", "gfn_to_pfn, per call")
        for ax in axes[1:]:
            ax.tick_params(axis="y", left=False)
        handles, labels = axes[0].get_legend_handles_labels()
        fig.suptitle("Miss handler cost per guest TLB miss, by step")
        if handles:
            fig.legend(handles, labels, loc="lower center", ncol=min(len(handles), 10),
                       title="handler step (in the order it runs)", frameon=False)
        fig.tight_layout(rect=(0, 0.5 / (2.1 + 0.55 * len(runs)) if handles else 0, 1, 1))
    return saved(fig, out, formats, dpi)


def _owner_colours(contexts: list) -> list:
    """[(id, name, colour)] for every context, by kind."""
    out, n = [], {"vcpu": 0, "qemu": 0, "host_task": 0}
    palettes = {"vcpu": _VCPU_COLOURS, "qemu": _QEMU_COLOURS, "host_task": _HOST_COLOURS}
    for c in sorted(contexts, key=lambda c: c["id"]):
        kind = c.get("kind", "host_task")
        pal = palettes.get(kind, _HOST_COLOURS)
        i = n.get(kind, 0)
        n[kind] = i + 1
        suffix = {"vcpu": " (vCPU)", "qemu": " (QEMU)", "host_task": " (host task)"}.get(kind, "")
        out.append((int(c["id"]), f"{c['name']}{suffix}", pal[i % len(pal)]))
    return out


@output_checked
def occupancy_timeline(summary, timeline_arrays=None, out=None, cpu=0, formats=FORMATS,
                       dpi=DPI, label=None) -> "Figure":
    """Who owns each hardware TLB entry over time on one CPU.

    ``timeline_arrays``: ``time`` (cycles), ``cpu`` and ``owner`` [samples,
    entries] (context id, or -1 for a free entry or one of the host kernel's),
    as in ``Result.arrays["timeline"]`` or ``timeline.npz``; for a
    :class:`~emu.run.Result` passed as ``summary`` they default to its own
    (a run with ``sim.timeline = true``).  A sample is taken at each context
    switch and holds until the next one.  x: time in µs; y: the TLB entries;
    colour: the owner, named from ``summary["contexts"]``.
    """
    from matplotlib.colors import BoundaryNorm, ListedColormap
    from matplotlib.patches import Patch

    if isinstance(cpu, bool) or not isinstance(cpu, (int, np.integer)):
        raise EmuError(f"cpu: expected a CPU's number (an integer), got "
                       f"{type(cpu).__name__} {cpu!r:.60}")
    if timeline_arrays is None:
        timeline_arrays = _timeline_of(getattr(summary, "arrays", None))
        if timeline_arrays is None:
            raise EmuError("no TLB occupancy timeline: run with sim.timeline = true, and pass "
                           "its Result (a summary alone does not hold the timeline)"
                           if not hasattr(summary, "arrays") else
                           "no TLB occupancy timeline: run with sim.timeline = true")
    summary = getattr(summary, "summary", summary)
    try:
        time = np.asarray(timeline_arrays["time"], dtype=np.int64)
        cpus = np.asarray(timeline_arrays["cpu"])
        owner = np.asarray(timeline_arrays["owner"])
    except KeyError as err:
        raise EmuError(f"timeline arrays lack {err.args[0]!r} (need time, cpu, owner)") from None
    sel = cpus == cpu
    if owner.ndim != 2 or not sel.any():
        held = sorted(set(cpus.tolist())) if owner.ndim == 2 else []
        raise EmuError(f"no TLB occupancy samples for CPU {cpu}" + (
            f" (the timeline holds CPU {', '.join(map(str, held))})" if held else ""))
    time, owner = time[sel], owner[sel]
    clock = summary.get("costs", {}).get("clock_mhz") or summary["config"]["machine"]["clock_mhz"]
    owners = _owner_colours(summary.get("contexts", []))
    known = {i for i, _, _ in owners}
    present = set(np.unique(owner).tolist())
    other = sorted(present - known - {-1})
    # colour index: 0 free, 1.. the contexts, last: any id the summary does not name
    classes = [(-1, "free / host kernel", _FREE_COLOUR)] + owners
    if other:
        classes.append((None, "other owner", "#000000"))
    index = np.zeros(owner.shape, np.int16)
    for k, (cid, _, _) in enumerate(classes):
        if cid is None:
            index[np.isin(owner, other)] = k
        elif cid != -1:
            index[owner == cid] = k
    cmap = ListedColormap([c for _, _, c in classes])
    norm = BoundaryNorm(np.arange(len(classes) + 1) - 0.5, len(classes))
    t_us = time / clock
    step = float(np.median(np.diff(t_us))) if len(t_us) > 1 else 1.0
    edges = np.append(t_us, t_us[-1] + step)
    entries = owner.shape[1]
    with _rc():
        height = 4.2 if entries <= 64 else 6.0
        fig = _figure(figsize=(10, height))
        ax = fig.subplots()
        ax.pcolormesh(edges, np.arange(entries + 1) - 0.5, index.T, cmap=cmap, norm=norm,
                      shading="flat", rasterized=True)
        ax.set_ylim(entries - 0.5, -0.5)
        ax.grid(False)
        machine = summary.get("config", {}).get("machine", {})
        core = machine.get("core")
        hwater = machine.get("hwater")
        if core == "440" and hwater is not None and 0 < hwater < entries - 1:
            # entries above hwater are the host's pinned ones (Linux 44x)
            ax.axhline(hwater + 0.5, color="black", linewidth=0.8, linestyle="--")
            ax.text(edges[0], hwater + 0.5, f"hwater ({hwater}) ", va="center", ha="right",
                    fontsize=7.5)
        strategy = summary.get("config", {}).get("kvm", {}).get("strategy", "")
        what = labelled(label or strategy, summary) if (label or strategy) else ""
        ax.set_title(f"Hardware TLB occupancy on CPU {cpu}" + (f": {what}" if what else ""))
        ax.set_xlabel("simulated time (µs); a sample at each context switch")
        ax.set_ylabel(f"{core + ' ' if core else ''}TLB entry (index)")
        seen = set(np.unique(index).tolist())
        handles = [Patch(facecolor=c, edgecolor="#999999", label=name)
                   for k, (_, name, c) in enumerate(classes) if k in seen or k == 0]
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), title="owner")
        fig.tight_layout()
    return saved(fig, out, formats, dpi)


# -- sets of plots ----------------------------------------------------------------

#: The multi-run plots: file stem -> function.
COMPARISON_PLOTS = {
    "repopulation": repopulation_curve,
    "cycles": cycle_breakdown,
    "exits": exits_by_category,
    "miss_causes": miss_causes,
    "fastpath_profile": fastpath_profile,
}


@output_checked
def comparison_plots(out_dir, runs, formats=FORMATS, dpi=DPI) -> dict:
    """Write every multi-run plot into ``out_dir``; ``runs``: [(label, summary)].

    Returns {stem: (paths...)}.
    """
    runs = _check_runs(runs)
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"out_dir {out_dir!r}: cannot make the folder "
                          f"({err.strerror or err})") from None
    return {stem: save_figure(fn(runs), os.path.join(out_dir, stem), formats, dpi)
            for stem, fn in COMPARISON_PLOTS.items()}


def _timeline_of(arrays):
    if not arrays:
        return None
    if "timeline" in arrays and isinstance(arrays["timeline"], dict):
        return arrays["timeline"]
    if "owner" in arrays:
        return arrays
    return None


@output_checked
def run_plots(out_dir, summary, arrays=None, formats=FORMATS, dpi=DPI) -> dict:
    """The plots of one run into ``out_dir`` (the occupancy timeline of each CPU
    too when ``arrays`` holds one: ``Result.arrays`` or the arrays of
    ``timeline.npz``).  Returns {stem: (paths...)}."""
    label = summary.get("config", {}).get("kvm", {}).get("strategy") or "run"
    out = comparison_plots(out_dir, [(label, summary)], formats, dpi)
    timeline = _timeline_of(arrays)
    if timeline is not None:
        for cpu in sorted(set(np.asarray(timeline["cpu"]).tolist())):
            stem = "occupancy" if cpu == 0 else f"occupancy_cpu{cpu}"
            out[stem] = save_figure(occupancy_timeline(summary, timeline, cpu=cpu),
                                    os.path.join(out_dir, stem), formats, dpi)
    return out

"""A comparison read as data, and the grid points of a sweep's table.

A :class:`Comparison` is a list of ``(label, Result)`` pairs, as
:func:`emu.run.compare` returns them (``Comparison(key, compare(...))``),
with the key that was varied, its runs' frames stacked
(:meth:`Comparison.frames`), one row of headline figures per run
(:meth:`Comparison.table`) and, in a notebook, a small HTML table.
:func:`emu.load` gives one for a comparison's folder, and what
:func:`emu.run.run_comparison` returns gives its own (``loaded()``, which
its ``frames``, ``table`` and notebook display are).  Every plot of
:mod:`emu.report.plots` takes any of them as its ``runs``.

:func:`points` turns a sweep's table (one row per run, as :func:`emu.load`
gives it) into one row per grid point and figure: the mean over the point's
seeds and the half-width of its 95 % t-interval.
"""

from __future__ import annotations

from emu.analysis.display import describe_comparison, headline_html
from emu.report.text import hypothetical, labelled
from emu.analysis.frames import concat_frames, pandas
from emu.errors import ConfigError
from emu.params.fields import suggest
from emu.run.table import METRICS, grid_points

__all__ = ["Comparison", "points"]


class Comparison(list):
    """``[(label, Result)]``: one scenario run under each value of ``key``.

    ``Comparison(key, compare(scenario, key, values))`` wraps what
    :func:`emu.run.compare` returns; :func:`emu.load` gives one for a folder
    ``emu compare --out`` wrote (``path``).
    """

    def __init__(self, key, runs=(), path=None, values=None):
        super().__init__((str(label), result) for label, result in runs)
        self.key = key
        self.path = path
        #: With several keys varied: per run, ``{key: value}`` (values typed as
        #: TOML reads them), each key a column of :meth:`frames` and :meth:`table`.
        self.values = values

    def _key_columns(self, i: int) -> dict:
        """The columns of run ``i``'s keys, when several were varied."""
        return dict(self.values[i]) if self.values else {}

    @property
    def label_column(self) -> str:
        """The name of the column that holds each run's label: the key varied."""
        return self.key or "run"

    def summaries(self) -> list:
        """``[(label, summary)]``, as the text and HTML reports take them (a
        machine no kernel shipped marked so in its label)."""
        return [(labelled(label, r.summary), r.summary) for label, r in self]

    def frames(self) -> dict:
        """Every run's frames (:meth:`emu.run.Result.frames`) stacked, the
        label first in every row under the key's name, then ``hypothetical``
        (no kernel shipped the run's machine).  Needs pandas."""
        return concat_frames([({self.label_column: label, **self._key_columns(i),
                                 "hypothetical": hypothetical(r.summary)}, r.frames())
                              for i, (label, r) in enumerate(self)])

    def table(self):
        """One row per run: its label, its design's label and whether no kernel
        shipped it (``design``, ``hypothetical``, as in a sweep's table; the
        default comparison, whose labels are its designs, has one ``design``) and
        the sweep table's figures (:data:`emu.run.table.METRICS`).  Needs pandas."""
        pd = pandas()
        # the default comparison's labels are its designs already: one column of them
        named = self.label_column == "design"
        keys = list(self.values[0]) if self.values else []
        first = ([self.label_column] + keys + ([] if named else ["design"])
                 + ["hypothetical"])
        rows = [dict({self.label_column: label, **self._key_columns(i)},
                     **({} if named else {"design": _design_label(r)}),
                     hypothetical=hypothetical(r.summary),
                     **{name: fn(r.summary) for name, _, fn in METRICS})
                for i, (label, r) in enumerate(self)]
        return pd.DataFrame(rows, columns=first + [n for n, _, _ in METRICS])

    def __repr__(self) -> str:
        labels = ", ".join(labelled(label, r.summary) for label, r in self)
        return f"<emu Comparison of {self.label_column} = {labels} ({len(self)} runs)>"

    def _repr_html_(self) -> str:
        runs = self.summaries()
        caption = describe_comparison(self.label_column, runs) if runs else ""
        return headline_html(runs, caption, self.label_column)


def _design_label(result) -> str:
    """The label of the design of ``result``'s run (None for an older summary)."""
    return (result.summary.get("design") or {}).get("label")


class Study(Comparison):
    """``[(label, Result)]``: the runs a study made (:mod:`emu.study`), in the
    order it made them, and ``results``, what its ``results.json`` holds: the
    study's ``study`` (name), ``question``, ``quick``, ``numbers`` (what it
    printed its tables from) and ``runs`` (each run's key figures).
    :func:`emu.load` gives one for a folder ``emu study NAME --out`` wrote;
    :meth:`frames` and :meth:`table` label each run's rows under ``run``.
    """

    def __init__(self, results: dict, runs=(), path=None):
        super().__init__(None, runs, path)
        self.results = results

    @property
    def name(self) -> str:
        return self.results["study"]

    @property
    def numbers(self) -> dict:
        return self.results["numbers"]

    def __repr__(self) -> str:
        quick = " (quick)" if self.results.get("quick") else ""
        return f"<emu Study {self.name}{quick}: {len(self)} runs>"

    def _repr_html_(self) -> str:
        # the study's own name and question: its runs' scenarios are its parts
        quick = " (quick)" if self.results.get("quick") else ""
        caption = f"study {self.name}{quick}, {len(self)} runs: {self.results.get('question', '')}"
        return headline_html(self.summaries(), caption.rstrip(": "), self.label_column)


def _names(value, what: str, available, kind: str) -> list:
    """``value`` (one name, or names) as a list of names, each in ``available``;
    ConfigError (one line) naming the first that is not."""
    if isinstance(value, str):
        value = [value]
    try:
        names = list(value)
    except TypeError:
        raise ConfigError(f"points: {what}: expected a {kind}'s name or a list of them, got "
                          f"{type(value).__name__} {value!r}") from None
    available = [str(c) for c in available]
    for name in names:
        if not isinstance(name, str):
            raise ConfigError(f"points: {what}: expected a {kind}'s name, got "
                              f"{type(name).__name__} {name!r}")
        if name not in available:
            guess = suggest(name, available)
            hint = f" (did you mean '{guess}'?)" if guess else ""
            raise ConfigError(f"points: {what}: the table has no column {name!r}{hint}; "
                              f"its columns: {', '.join(available)}")
    return names


def _numeric(pd, column) -> bool:
    """Every value of ``column`` is a number (not a boolean) or missing."""
    if pd.api.types.is_bool_dtype(column):
        return False
    if pd.api.types.is_numeric_dtype(column):
        return True
    return all(isinstance(v, (int, float)) and not isinstance(v, bool)
               for v in column.dropna())


def points(table, keys=None, columns=None):
    """The grid points of a sweep table: one row per point and figure.

    ``table``: a sweep's results as a DataFrame (:func:`emu.load` of its
    folder); ``keys``: the grid keys (default: ``table.attrs["grid"]``);
    ``columns``: the figures, numeric columns of the table (default: every
    one of :data:`emu.run.table.METRICS`).  A single name is taken as one
    key or one figure.  Columns of the result: the keys, ``figure``, ``n``
    (the point's runs that have the figure: a run with no resume has no
    misses per resume), ``mean`` and ``ci95``, the half-width of the 95 %
    t-interval over those runs.  A point of one run has no interval: its
    ``ci95`` is None (NaN when other points of the result have one, as
    pandas keeps a missing number in a column of numbers); ``mean`` is None
    when none of the point's runs has the figure.  A key or column the table
    does not have, or a column of text, is a ConfigError (one line).
    """
    pd = pandas()
    if not isinstance(table, pd.DataFrame):
        raise ConfigError(f"points: table: expected a sweep's results table (a DataFrame: "
                          f"emu.load of a sweep folder), got {type(table).__name__}")
    keys = _names(table.attrs.get("grid", []) if keys is None else keys, "keys",
                  table.columns, "grid key")
    columns = _names([name for name, _, _ in METRICS if name in table.columns]
                     if columns is None else columns,
                     "columns", table.columns, "figure")
    for c in columns:
        if not _numeric(pd, table[c]):
            raise ConfigError(f"points: columns: {c!r} is not a figure: its values are not "
                              f"numbers (e.g. {table[c].dropna().iloc[0]!r})")
    rows = []
    for p in grid_points(table.to_dict("records"), keys, columns):
        for c in columns:
            mean, half = p[c]
            rows.append({**{k: p[k] for k in keys}, "figure": c, "n": p["counts"][c],
                         "mean": mean, "ci95": half})
    return pd.DataFrame(rows, columns=keys + ["figure", "n", "mean", "ci95"])

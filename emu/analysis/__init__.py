"""Results read as data: pandas DataFrames, notebook views and result folders.

- :mod:`emu.analysis.frames` -- tidy DataFrames of a run (``Result.frames()``),
  and several runs' frames side by side;
- :mod:`emu.analysis.display` -- the short ``repr`` and the HTML summary a
  notebook shows of a run or a comparison;
- :mod:`emu.analysis.results` -- a comparison and a study as objects
  (frames, a table of headline figures, plots), and the per-point table of a
  sweep;
- :mod:`emu.analysis.load` -- :func:`emu.load`: a run, comparison, sweep or
  study folder, read back.

pandas is an optional dependency (``pip install 'emu[analysis]'``); without
it, asking for a DataFrame raises :class:`~emu.analysis.frames.PandasMissing`
with a one-line message.  The package imports nothing from
:mod:`emu.run` in this file, so that :class:`emu.run.Result` can use
:mod:`emu.analysis.frames` and :mod:`emu.analysis.display`.
"""

"""Results for people: text tables, plots and the HTML report.

- :mod:`emu.report.text` -- the text tables ``emu run`` and ``emu compare`` print;
- :mod:`emu.report.columns` -- every text table and sentence emu prints, fitted
  to the terminal's columns (``--wide``: in full);
- :mod:`emu.report.folders` -- any folder emu writes (a run, a comparison, a
  sweep, a study), read and checked against :mod:`emu.report.schema`;
- :mod:`emu.report.html` -- ``emu report``: one self-contained page of such a
  folder, built from :mod:`emu.report.page` (HTML blocks),
  :mod:`emu.report.tables` (the tables of runs), :mod:`emu.report.sweep`
  (a sweep's grid points) and :mod:`emu.report.plots` (matplotlib);
- :mod:`emu.report.reading` -- the sentences that read a result.
"""

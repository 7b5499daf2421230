"""Conclusions with their uncertainty: how far a comparison holds over the costs' ranges.

Most of emu's costs are estimates (:mod:`emu.costs` gives each a plausible
range).  A study compares two values of a scenario key, ``metric(A) /
metric(B)``, while the costs move over their ranges, and says which costs
move the ratio, which can flip the winner, in what share of the plausible
cost space A wins, and where along a numeric key A stops winning.

- :mod:`~emu.sensitivity.spec`: the questions a study takes, checked (bad input
  is a one-line :class:`SensitivityError`);
- :mod:`~emu.sensitivity.design`: the cost space and the cost vectors (oat,
  Morris, Sobol');
- :mod:`~emu.sensitivity.runner`: jobs in, summaries out: in this process, or
  on the executors of ``emu sweep`` into a directory that a study resumes;
- :mod:`~emu.sensitivity.analysis`: ratios, flips, indices, break-even;
- :mod:`~emu.sensitivity.study`: plan, run, analyse;
- :mod:`~emu.sensitivity.report`: ``sensitivity.json``, the tornado and
  break-even plots, text, and the cost listing of ``emu costs``.

The ``emu sensitivity`` and ``emu costs`` commands are in
:mod:`emu.cli.sensitivity`; the section of ``emu report`` in
:mod:`emu.report.sensitivity`.
"""

from emu.sensitivity.report import (
    break_even_plot, costs_listing, format_sensitivity, tornado_plot, write_sensitivity)
from emu.sensitivity.runner import Job, StudyRunner, job_label, local_runner
from emu.sensitivity.spec import SensitivityError
from emu.sensitivity.study import SensitivityPlan, analyse, plan_sensitivity, run_sensitivity

__all__ = [
    "Job", "SensitivityError", "SensitivityPlan", "StudyRunner", "analyse", "break_even_plot",
    "costs_listing", "format_sensitivity", "job_label", "local_runner", "plan_sensitivity",
    "run_sensitivity", "tornado_plot", "write_sensitivity",
]

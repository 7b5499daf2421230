"""The kinds of exercise ``emu explain --exercise KIND`` poses (:mod:`emu.teach.lessons`)."""

from __future__ import annotations

from emu.teach import arrays, exercise, resume_cost

#: KIND -> what poses and solves it: ``problem(seed)``, ``question(problem)``,
#: ``solve(problem)`` (an :class:`emu.teach.lessons.Answer`), and ``SUMMARY``.
KINDS = {
    "repopulation": exercise,
    "resume-cost": resume_cost,
    "pfn-cache": arrays.PFN_CACHE,
    "e500-sets": arrays.E500_SETS,
}
DEFAULT_KIND = "repopulation"

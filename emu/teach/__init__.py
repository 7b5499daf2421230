"""Teaching: ``emu explain`` tells, access by access, what the TLB miss handler does.

* :mod:`~emu.teach.narrator`: :func:`explain` narrates the first N accesses of
  a vCPU after its K-th vcpu_load on the reference backend, from the fast
  path's tracer events (:mod:`emu.engine.tracer`) and the vCPU's observation
  hooks (:mod:`emu.observe`), optionally only the accesses that missed.
* :mod:`~emu.teach.locate`: the compiled backend finds the window first (an
  out-of-range K fails at once); the replay's progress on stderr.
* :mod:`~emu.teach.glossary`: the words of the narration and the reports.
* Exercises that vary with a seed (:mod:`~emu.teach.lessons`, the kinds in
  :mod:`~emu.teach.kinds`): :mod:`~emu.teach.exercise` (repopulation after a
  host burst, the default), :mod:`~emu.teach.resume_cost` (shadow against
  direct at one resume), :mod:`~emu.teach.arrays` (the pfn cache's hit rate,
  e500 set conflicts); each answer is derived by hand and checked against the
  model.
* :mod:`~emu.teach.parser`: the ``emu explain`` subcommand's parser, and its text
  fitted to the terminal (the API's text, :attr:`Explanation.text`, is never wrapped).
"""

from emu.teach.exercise import (EXERCISE_ACCESSES, ExerciseAnswer, exercise_scenario,
                                exercise_text, solve_exercise)
from emu.teach.glossary import GLOSSARY, glossary_text
from emu.teach.kinds import DEFAULT_KIND, KINDS
from emu.teach.lessons import Answer
from emu.teach.narrator import Access, Explanation, explain
from emu.teach.parser import add_explain_parser, cmd_explain

__all__ = ["DEFAULT_KIND", "EXERCISE_ACCESSES", "GLOSSARY", "KINDS", "Access", "Answer",
           "ExerciseAnswer", "Explanation", "add_explain_parser", "cmd_explain",
           "exercise_scenario", "exercise_text", "explain", "glossary_text", "solve_exercise"]

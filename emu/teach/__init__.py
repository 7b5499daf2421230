"""Teaching: ``emu explain`` tells, access by access, what the TLB miss handler does.

* :mod:`~emu.teach.narrator`: :func:`explain` runs a scenario on the reference
  backend and narrates the first N accesses of a vCPU after its K-th
  vcpu_load, from the fast path's tracer events (:mod:`emu.engine.tracer`) and
  the vCPU's observation hooks (:mod:`emu.observe`).
* :mod:`~emu.teach.exercise`: a small exercise whose answer is derived by hand
  and computed by the same machinery.
* :mod:`~emu.teach.parser`: the ``emu explain`` subcommand's parser.
"""

from emu.teach.exercise import (EXERCISE_ACCESSES, ExerciseAnswer, exercise_scenario,
                                exercise_text, solve_exercise)
from emu.teach.narrator import Access, Explanation, explain
from emu.teach.parser import add_explain_parser, cmd_explain

__all__ = ["EXERCISE_ACCESSES", "Access", "ExerciseAnswer", "Explanation", "add_explain_parser",
           "cmd_explain", "exercise_scenario", "exercise_text", "explain", "solve_exercise"]

"""What the exercises share: their answers, their random numbers, their text.

``emu explain --exercise KIND --seed S`` prints the problem of kind ``KIND``
that seed ``S`` draws; ``--solve`` prints it with its answer, derived by
arithmetic a student can do on paper and checked against the model.  As
OSTEP's homework simulators do with ``-s`` and ``-c``, the seed alone fixes
the problem: the same seed, the same numbers.

The kinds (:data:`emu.teach.kinds.KINDS`), each with ``problem(seed)``,
``question(problem)`` and ``solve(problem)``:

* ``repopulation`` (:mod:`emu.teach.exercise`, the default): the misses a vCPU
  takes after a host task ran while it was descheduled, under ``direct`` and
  ``direct-save-on-switch``; seed 1 is the exercise as it always was.  It is
  the one kind that FILE and ``--set`` can pose on another scenario;
* ``resume-cost`` (:mod:`emu.teach.resume_cost`): the TLB work of one resume
  under ``shadow`` and under ``direct``, and the working set at which they
  cost the same;
* ``pfn-cache`` (:mod:`emu.teach.arrays`): the hit rate of KVM's pfn cache
  under a cyclic sequence of fills;
* ``e500-sets`` (:mod:`emu.teach.arrays`): the misses of pages that share a
  set of the e500's 4-way TLB0, against the 440's fully associative TLB.
"""

from __future__ import annotations

import random
import textwrap
from dataclasses import dataclass

from emu.errors import EmuError


@dataclass
class Answer:
    """An exercise's answer: the hand-derived figures (``expected``), the model's
    (``computed``), and the text that derives them."""

    expected: dict
    computed: dict
    text: str

    @property
    def agree(self) -> bool:
        return self.expected == self.computed


#: Seeds of the exercises: 0 up to, not including, this (``emu explain --seed``'s range).
SEED_LIMIT = 1 << 32


def check_seed(seed) -> int:
    """``seed`` if it is an exercise's: an integer in 0..2**32-1, as ``emu
    explain --seed`` takes; else EmuError, one line (a float, a string or a
    negative number had drawn a problem of its own, or failed in its TOML).

    >>> check_seed(7)
    7
    >>> check_seed(-1)
    Traceback (most recent call last):
    ...
    emu.errors.EmuError: seed: must be an integer in 0..2**32-1, got -1
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < SEED_LIMIT:
        raise EmuError(f"seed: must be an integer in 0..2**32-1, got {seed!r}")
    return seed


def draw(kind: str, seed: int) -> random.Random:
    """The random numbers of the problem of ``kind`` with ``seed`` (one stream per
    kind, so that a seed gives unrelated problems of two kinds)."""
    return random.Random(f"emu-exercise/{kind}/{check_seed(seed)}")


def verdict(expected: dict, computed: dict) -> str:
    """'they agree' or 'THEY DISAGREE', as the answers end."""
    return "they agree" if expected == computed else "THEY DISAGREE"


def fill(text: str, width: int = 84) -> str:
    """``text``'s paragraphs (blank-line separated) wrapped to ``width``."""
    paras = [textwrap.fill(" ".join(p.split()), width, break_on_hyphens=False)
             for p in text.strip().split("\n\n")]
    return "\n\n".join(paras) + "\n"

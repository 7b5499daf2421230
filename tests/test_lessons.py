"""Exercises that vary with a seed (``emu explain --exercise KIND --seed S``).

1. Known answers, two seeds per kind, derived by hand here (the cost figures are
   the cost table's defaults today; the assertions read them from the table):

   * ``repopulation`` seed 1 is the exercise as first published: 24 pages, 200
     accesses; ``direct``'s _tlbia() at vcpu_put leaves none of them, so each of
     the 24 pages misses once (all 24 are touched: a page is left out of 200
     uniform accesses with probability (23/24)^200 = 0.02 %), and
     ``direct-save-on-switch`` writes them back at vcpu_load: 0.  Seed 2 draws 13
     pages and 150 accesses: 13 misses ((12/13)^150 = 6e-6 per page) and 0.
   * ``resume-cost`` seed 1: 6 pages, hwater 57.  shadow: vcpu_put 100 + vcpu_load
     100 + the entry loop 57 x 19 = 1,083 -> 1,283 cycles.  direct: vcpu_put 100 +
     _tlbia 13 + 58 x 4 = 345, vcpu_load 100, 6 fills x (125 full exit + 35 hashed
     walk + 10 GPA + 25 memslot + 15 pfn + 48 tlbwe + 113 restore = 371; the exit
     and restore are the fitted 125 and 113 instructions x s = 1) = 2,226 ->
     2,671.  Break-even: W x 371 = 1,083 - 245 = 838, W = 2.26: shadow is the
     cheaper per resume from 3 pages on.  Seed 4: 20 pages, hwater 62: shadow 200 +
     62 x 19 = 1,378; direct 100 + 13 + 63 x 4 + 100 + 20 x 371 = 7,885.
   * ``pfn-cache`` seed 1: 27 pages, 32 entries (LRU), 7 slices: the pages fit, so
     only the first slice misses: hits 6 x 27 = 162, gfn_to_pfn 27.  Seed 3: 75
     pages, 64 entries (LRU), 6 slices: a cycle longer than an LRU cache misses
     every time: hits 0, gfn_to_pfn 450.
   * ``e500-sets`` seed 1: 7 pages 256 pages (1 MB) apart, 9 rounds: 256 is a
     multiple of the 128 sets, so all 7 share one 4-way set and the next-victim
     counter evicts in FIFO order: every access misses, 63; the 440 holds all 7:
     7.  Seed 3: 4 pages 9 pages apart: 9 is odd, so 4 different sets: 4 and 4.
2. ``--solve`` agrees with the model on 50 random seeds of each cheap kind (the
   pfn cache and TLB0 alone, and resume-cost on the compiled backend), and on a
   few of ``repopulation``, whose model runs on the reference backend.
3. Seeds draw different problems, and the same seed the same one.
"""

from __future__ import annotations

import random

import pytest

from emu.costs import CostTable
from emu.teach.kinds import DEFAULT_KIND, KINDS
from emu.teach.resume_cost import FILL_ROWS

C = CostTable({}).to_dict()
FILL = sum(C[row] for row in FILL_ROWS)


def _direct(pages: int, hwater: int) -> int:
    return (C["vcpu_put"] + C["tlbia_base"] + (hwater + 1) * C["tlbia_per_entry"]
            + C["vcpu_load"] + pages * FILL)


def _shadow(hwater: int) -> int:
    return C["vcpu_put"] + C["vcpu_load"] + hwater * C["shadow_restore_per_entry"]


KNOWN = [
    ("repopulation", 1, dict(pages=24, accesses=200),
     {"direct": 24, "direct-save-on-switch": 0}),
    ("repopulation", 2, dict(pages=13, accesses=150),
     {"direct": 13, "direct-save-on-switch": 0}),
    ("resume-cost", 1, dict(pages=6, hwater=57), {"shadow": _shadow(57), "direct": _direct(6, 57)}),
    ("resume-cost", 4, dict(pages=20, hwater=62),
     {"shadow": _shadow(62), "direct": _direct(20, 62)}),
    ("pfn-cache", 1, dict(entries=32, pages=27, slices=7, policy="lru"),
     {"hits": 162, "gfn_to_pfn": 27}),
    ("pfn-cache", 3, dict(entries=64, pages=75, slices=6, policy="lru"),
     {"hits": 0, "gfn_to_pfn": 450}),
    ("e500-sets", 1, dict(pages=7, stride=256, rounds=9), {"e500": 63, "440": 7}),
    ("e500-sets", 3, dict(pages=4, stride=9, rounds=5), {"e500": 4, "440": 4}),
]


@pytest.mark.parametrize("kind, seed, numbers, answer", KNOWN,
                         ids=[f"{k}-{s}" for k, s, _, _ in KNOWN])
def test_a_seeded_exercise_is_a_known_answer(kind, seed, numbers, answer):
    lesson = KINDS[kind]
    p = lesson.problem(seed)
    assert {k: getattr(p, k) for k in numbers} == numbers
    a = lesson.solve(p)
    assert a.expected == answer and a.computed == answer, (a.expected, a.computed)
    assert "they agree" in " ".join(a.text.split())


def test_today_figures_of_the_known_answers():
    """The docstring's arithmetic, with today's cost table (when the table
    changes, the docstring's figures are redone, and this says so)."""
    assert (C["vcpu_put"], C["vcpu_load"], C["shadow_restore_per_entry"], C["tlbia_base"],
            C["tlbia_per_entry"], FILL) == (100, 100, 19, 13, 4, 371)
    assert (_shadow(57), _direct(6, 57), _shadow(62), _direct(20, 62)) == \
        (1283, 2671, 1378, 7885)


def _seeds(n: int, salt: str) -> list:
    r = random.Random(f"test_lessons/{salt}")
    return [r.randrange(2, 1 << 31) for _ in range(n)]


@pytest.mark.property
@pytest.mark.parametrize("kind", ["resume-cost", "pfn-cache", "e500-sets"])
def test_solve_agrees_with_the_model_on_50_random_seeds(kind):
    lesson = KINDS[kind]
    for seed in _seeds(50, kind):
        a = lesson.solve(lesson.problem(seed))
        assert a.agree, (seed, a.expected, a.computed)


@pytest.mark.property
def test_solve_agrees_with_the_model_on_random_seeds_of_repopulation():
    lesson = KINDS["repopulation"]
    for seed in _seeds(3, "repopulation"):
        a = lesson.solve(lesson.problem(seed))
        assert a.agree and None not in a.expected.values(), (seed, a.expected, a.computed)


@pytest.mark.parametrize("kind", list(KINDS))
def test_seeds_draw_different_problems_and_the_same_seed_the_same(kind):
    lesson = KINDS[kind]
    problems = {lesson.problem(seed) for seed in range(1, 21)}
    assert len(problems) == 20                       # the seed is part of each; and:
    assert len({tuple(vars(p).values())[1:] for p in problems}) >= 10
    assert lesson.problem(7) == lesson.problem(7)
    assert lesson.question(lesson.problem(7)) == lesson.question(lesson.problem(7))
    assert lesson.question(lesson.problem(7)) != lesson.question(lesson.problem(8))


def test_the_default_kind_is_the_first_published_exercise():
    from emu.teach.exercise import EXERCISE_TOML, exercise_text
    assert DEFAULT_KIND == "repopulation" and list(KINDS)[0] == DEFAULT_KIND
    assert KINDS[DEFAULT_KIND].question(KINDS[DEFAULT_KIND].problem(1)) == exercise_text()
    assert "pages = 24" in EXERCISE_TOML and "pages = 100" in EXERCISE_TOML
    assert "seed = 1\n" in EXERCISE_TOML

"""The studies, one module each, in the order ``emu study`` lists them.

Each module opens with its question (the first paragraph of its docstring,
ending in ``?``) and says what to look at; it has ``NAME``,
``study(quick, recorder=None) -> dict`` (the numbers it found, JSON-ready)
and ``report(numbers) -> str`` (those numbers as text tables).
"""

from emu.study.studies import (context_switch_storm, fastpath_profile, mmio_heavy,
                               nonindexable_tlb, pfn_cache_sizing, repopulation_lesson,
                               shadow_vs_direct)

#: Every study module, in the order they are listed.
MODULES = (shadow_vs_direct, context_switch_storm, pfn_cache_sizing, nonindexable_tlb,
           mmio_heavy, fastpath_profile, repopulation_lesson)

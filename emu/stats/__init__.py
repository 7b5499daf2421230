"""Counters in, tidy tables and one JSON summary out (docs/design.md §2 ``stats``).

* :mod:`emu.stats.counters` — the arrays each fast-path context counts into;
* :mod:`emu.stats.snapshot` — what the machine hands over after its run;
* :mod:`emu.stats.summary` — the summary and tables, from the snapshot only.
"""

from emu.stats.snapshot import ContextCounters, CpuCycles, ProcessFigures, Snapshot, VmFigures
from emu.stats.summary import collect, cpu_cycles

__all__ = ["ContextCounters", "CpuCycles", "ProcessFigures", "Snapshot", "VmFigures", "collect",
           "cpu_cycles"]

"""Counters in, tidy tables and one JSON summary out (DESIGN.md §2 ``stats``)."""

from emu.stats.summary import collect, cpu_cycles

__all__ = ["collect", "cpu_cycles"]

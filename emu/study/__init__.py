"""Studies: ready-made experiments, each answering one question about the designs.

A study runs a set of scenarios, compares their numbers and prints tables
that answer its question.  The studies live in :mod:`emu.study.studies`, one
module each; this package lists them, runs them and writes their results::

    emu study                         # the studies and their questions
    emu study shadow_vs_direct --quick --out sv/
    emu report sv/                    # an HTML page of what it wrote

>>> import emu.study
>>> [s.name for s in emu.study.studies()][:2]
['shadow_vs_direct', 'context_switch_storm']
>>> emu.study.get("mmio_heavy").question.endswith("?")
True
>>> numbers = emu.study.run("pfn_cache_sizing", quick=True)   # doctest: +SKIP

With ``out``, a study writes each run's results to ``out/runs/<label>/``, its
plots, and ``out/results.json`` (its numbers and every run's key figures), a
folder ``emu report`` reads; they replace what ``out`` held as one set
(:class:`emu.run.outdir.Stage`), and a folder holding another kind of result
or another study is refused unless ``force``.  ``quick`` is a short version
of a study (under half a minute, most in a few seconds): fewer points, shorter
runs; ``EMU_QUICK=1`` in the environment means the same to ``emu study``.  The
building blocks a study is written with are in :mod:`emu.study.lib`.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from inspect import signature
from types import ModuleType
from typing import Optional

from emu.errors import EmuError, OutputError, check_flag
from emu.report.columns import wrap
from emu.run.outdir import staged
from emu.study.lib import Recorder
from emu.study.studies import MODULES

__all__ = ["Study", "get", "run", "run_and_print", "studies"]


@dataclass(frozen=True)
class Study:
    """One study: its ``name``, its ``question`` (one line) and its module."""

    name: str
    question: str
    module: ModuleType

    @property
    def description(self) -> str:
        """The study's docstring: the question, the experiment, what to look at."""
        return (self.module.__doc__ or "").strip()

    def run(self, quick: bool = False, out: Optional[str] = None, force: bool = False) -> dict:
        """Run the study; its numbers.  With ``out``, every run's results, the
        plots and ``results.json`` are put there as one set (:meth:`folder`)."""
        _check_quick(quick)
        with self.folder(out, force) as stage:
            return self.run_into(stage, quick)

    def folder(self, out: Optional[str], force: bool = False):
        """The staged output folder of the study (a context manager yielding a
        :class:`~emu.run.outdir.Stage`, None without ``out``): checked before
        anything runs, refused (EmuError, one line) when it holds files emu
        did not write, or, unless ``force``, another kind of result or
        another study."""
        return staged(out, "study", force, option=("--out", "out"), what=self.name)

    def run_into(self, stage, quick: bool = False,
                 recorder: Optional[Recorder] = None) -> dict:
        """Run the study, writing into ``stage`` (from :meth:`folder`; None:
        nothing written), which then takes the output folder's place; its
        numbers.  ``recorder`` (default a new one) keeps the runs' summaries."""
        _check_quick(quick)
        rec = recorder or Recorder()
        rec.out = stage.path if stage else None
        takes_dir = "plot_dir" in signature(self.module.study).parameters
        extra = {"plot_dir": rec.out} if rec.out and takes_dir else {}
        numbers = self.module.study(quick, rec, **extra)
        # every report of the study names the runs of machines that never existed
        numbers = dict(numbers, hypothetical_runs=list(rec.hypothetical),
                       proposal_runs=list(rec.proposal), shipped_runs=dict(rec.shipped))
        rec.finish(self.name, self.question, quick, numbers)
        if stage:
            stage.commit()
        return numbers

    def report(self, numbers: dict, width: Optional[int] = None) -> str:
        """The study's numbers as its text tables (fitted to ``width`` columns
        if given, see :func:`emu.report.columns.fit_lines`), then the runs of
        machines no kernel shipped and of the proposal, named."""
        text = self.module.report(numbers, width)
        # the designs that ran, by the commit that shipped each, where a run's
        # own label does not say it ("440/direct": 7924bd41 (tid01, C))
        by_design: dict = {}
        for run, design in (numbers.get("shipped_runs") or {}).items():
            if design not in run:
                by_design.setdefault(design, []).append(run)
        if by_design:
            text += "\n\n" + wrap("As KVM shipped them: " + "; ".join(
                f"{design}: {', '.join(runs)}" for design, runs in by_design.items()) + ".", width)
        runs = numbers.get("hypothetical_runs")
        if runs:
            text += "\n\n" + wrap(f"Hypothetical, machines no kernel shipped: {', '.join(runs)}.",
                                   width)
        runs = numbers.get("proposal_runs")
        if runs:
            text += "\n" + wrap(f"The proposal (direct + asm + pfn-cache), which no kernel "
                                f"shipped either: {', '.join(runs)}.", width)
        return text


def _check_quick(quick) -> None:
    """Refuse (EmuError, one line) a ``quick`` that is not a bool: "no" is true."""
    check_flag("quick", quick, EmuError)


def _question(module: ModuleType) -> str:
    first = (module.__doc__ or "").strip().split("\n\n")[0]
    return " ".join(first.split())


_STUDIES = {m.NAME: Study(m.NAME, _question(m), m) for m in MODULES}


def studies() -> list[Study]:
    """Every study, in the order ``emu study`` lists them."""
    return list(_STUDIES.values())


def get(name: str) -> Study:
    """The study called ``name``; EmuError (one line, naming the studies) if none is."""
    try:
        return _STUDIES[name]
    except (KeyError, TypeError):
        raise EmuError(f"study: no study called {name!r} (the studies: "
                       f"{', '.join(_STUDIES)})") from None


def run(name: str, quick: bool = False, out: Optional[str] = None, force: bool = False) -> dict:
    """Run the study ``name`` (see :meth:`Study.run`); its numbers."""
    return get(name).run(quick, out, force)


def run_and_print(study: Study, quick: bool, out: Optional[str], stream=None,
                  width: Optional[int] = None, force: bool = False) -> int:
    """Run ``study`` as its command line does: its question, its tables
    (fitted to ``width`` columns if given), where the results went.  Returns 0."""
    stream = stream or sys.stdout
    rec = Recorder()
    with study.folder(out, force) as stage:
        try:
            print(f"== {study.name} ({'quick' if quick else 'full'}) ==\n"
                  f"{wrap(study.question, width)}\n", file=stream)
        except OutputError:
            if stage is None:           # the tables would have nowhere to go: stop now
                raise
            # the folder is the result: written first, as emu run writes
            # its own; the tables' print then says what is wrong with stdout
        t0 = time.perf_counter()
        numbers = study.run_into(stage, quick, rec)
    print(study.report(numbers, width), file=stream)
    print(f"\n{rec.runs} runs in {time.perf_counter() - t0:.1f} s"
          + (f"; results in {out}" if out else ""), file=stream)
    return 0


"""Find a narration's window fast, then show the slow replay's progress.

``emu explain`` narrates from the reference backend, the only one that traces,
and that backend takes seconds to reach a late ``vcpu_load``.  Before it
starts, :func:`locate` runs the same scenario on the compiled backend, which
gives the same numbers (docs/design.md §3), and stops at the K-th
``vcpu_load`` of the vCPU: it learns in a fraction of a second whether the
run reaches that resume at all, and at which simulated time.  The narration
then replays the run on the reference backend from the start, so that every
number it prints is exactly what the reference backend alone would print;
:class:`ReplayProgress` shows on stderr how far that replay has come towards
the window.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass

from emu.errors import EmuError, spelled
from emu.machine import Machine
from emu.params import default_scenario
from emu.run import resolve

#: Seconds between two updates of the progress line.
PROGRESS_EVERY = 0.1


class _Found(Exception):
    """Raised from the counter's hook at the vcpu_load sought: it ends the run."""


class _LoadCounter:
    """The observer (:mod:`emu.observe`) of one vCPU that stops the run at its
    ``resume``-th vcpu_load, noting the cycle it began at."""

    def __init__(self, vcpu, resume: int):
        self.v, self.resume = vcpu, resume
        self.at: int | None = None

    def around(self, event, thread, call, *args):
        if event == "vcpu_load" and self.v.resumes + 1 == self.resume:
            self.at = args[0].total()
            raise _Found()
        return call(*args)


@dataclass(frozen=True)
class Window:
    """Where a narration's window opens: the vCPU's ``resume``-th vcpu_load
    begins at cycle ``at`` (``clock_mhz`` converts it to µs)."""

    vcpu: str
    resume: int
    at: int
    clock_mhz: float

    @property
    def at_us(self) -> float:
        return self.at / self.clock_mhz


def build_machine(scenario, overrides, backend: str = "reference", progress=None) -> Machine:
    """The machine of ``scenario`` (None: the default) with ``overrides``, on
    ``backend`` and with no warm-up (vcpu_loads are numbered from the start of
    the run); ``progress(now, end)`` is called as it runs."""
    base = default_scenario() if scenario is None else scenario
    sc = resolve(base, list(overrides) + [f"sim.backend={backend}", "sim.warmup_ms=0"])
    return Machine(sc, progress)


def pick_vcpu(machine, name: str | None):
    """The vCPU called ``name`` (None: the first); EmuError naming the choices."""
    names = [v.name for v in machine.vcpus]
    if not names:
        raise EmuError("the scenario has no vCPU to explain")
    target = next((v for v in machine.vcpus if v.name == (names[0] if name is None else name)),
                  None)
    if target is None:
        raise EmuError(f"unknown vCPU {name!r} (choose from: {', '.join(names)})")
    return target


def locate(scenario, overrides, resume: int, vcpu: str | None = None) -> Window:
    """Run the scenario on the compiled backend up to ``vcpu``'s ``resume``-th
    vcpu_load.  Raises :class:`EmuError` (one line, saying how many loads the
    run has) when the run never gets there, or for an unknown vCPU."""
    machine = build_machine(scenario, overrides, backend="cython")
    target = pick_vcpu(machine, vcpu)
    counter = _LoadCounter(target, resume)
    target.observer = counter
    try:
        machine.run()
    except _Found:
        return Window(target.name, resume, counter.at, machine.clock_mhz)
    loads = target.resumes
    raise EmuError(f"{spelled('--resume')} {resume}: {target.name} is loaded only {loads} "
                   f"time{'' if loads == 1 else 's'} in the {machine.scenario.duration_ms:g} ms "
                   f"run (raise duration_ms or lower {spelled('--resume')})")


class ReplayProgress:
    """``progress(now, end)`` for the reference backend's replay: one line on
    stderr, rewritten in place, of the simulated time reached against the
    window's; nothing at all when stderr is not a terminal.  :meth:`close`
    erases the line."""

    def __init__(self, window: Window, stream=None):
        self.window, self.stream = window, stream or sys.stderr
        self.on = bool(getattr(self.stream, "isatty", lambda: False)())
        self.last = 0.0
        self.width = 0

    def __call__(self, now: int, end: int) -> None:
        t = time.monotonic()
        if not self.on or t - self.last < PROGRESS_EVERY:
            return
        self.last = t
        w = self.window
        pct = 100.0 * min(now, w.at) / w.at if w.at else 100.0
        self._write(f"emu explain: reference backend, {now / w.clock_mhz:,.1f} of "
                    f"{w.at_us:,.1f} us to {w.vcpu}'s vcpu_load #{w.resume} ({pct:.0f}%)")

    def _write(self, text: str) -> None:
        pad = max(0, self.width - len(text))
        self.stream.write("\r" + text + " " * pad)
        self.stream.flush()
        self.width = len(text)

    def close(self) -> None:
        if self.on and self.width:
            self.stream.write("\r" + " " * self.width + "\r")
            self.stream.flush()
            self.width = 0

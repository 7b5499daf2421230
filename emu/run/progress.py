"""Progress on stderr: a tqdm bar on a terminal, plain periodic lines otherwise.

Two kinds: :func:`make_progress` follows the simulated cycles of runs (``emu
run``, ``emu compare``); :class:`SweepProgress` counts the runs of a sweep.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from typing import Optional

from tqdm import tqdm

from emu.errors import ConfigError, spelled

#: Seconds between two progress lines of a sweep (also one line per 10 % of the runs).
LINE_EVERY = 10.0


class _Reader:
    """The stream progress goes to, until its reader goes away (``emu sweep
    2>&1 | head``): then progress stops, and the work goes on (a broken pipe
    had ended a sweep part-way, with exit status 0)."""

    def __init__(self, stream):
        self.stream, self.gone = stream, False

    def write(self, text: str) -> int:
        if not self.gone:
            try:
                return self.stream.write(text)
            except OSError:
                self.gone = True
        return len(text)

    def flush(self) -> None:
        if not self.gone:
            try:
                self.stream.flush()
            except OSError:
                self.gone = True

    def isatty(self) -> bool:
        return not self.gone and self.stream.isatty()

    def __getattr__(self, name):
        return getattr(self.stream, name)


def _reader(stream) -> _Reader:
    return stream if isinstance(stream, _Reader) else _Reader(stream or sys.stderr)


class _Lines:
    """Plain lines on stderr, at most one every ``every`` seconds."""

    def __init__(self, every: float = 5.0, stream=None):
        self.every, self.stream = every, _reader(stream)
        self.t0 = self.last = time.monotonic()     # the first line after ``every`` seconds
        self.run = ""                              # "run 2 of 7: " in a command of several

    def next_run(self, i: int, n: int) -> None:
        """The ``i``-th of ``n`` runs starts: its lines say so (their
        percentages are of that run's cycles)."""
        self.run = f"run {i} of {n}: " if n > 1 else ""

    def __call__(self, now: int, end: int) -> None:
        t = time.monotonic()
        if t - self.last >= self.every:
            self.last = t
            pct = 100.0 * min(now, end) / end if end else 100.0
            print(f"emu: {self.run}simulated {pct:5.1f}% ({now:,} of {end:,} cycles), "
                  f"{t - self.t0:.0f} s", file=self.stream, flush=True)

    def close(self) -> None:
        pass


class _Bar:
    """A tqdm bar over simulated cycles (shared by consecutive runs; in a
    command of several, told of each (:meth:`next_run`), it shows that run's
    cycles and which run it is)."""

    def __init__(self):
        self.bar = tqdm(total=0, unit="cyc", unit_scale=True, file=_reader(sys.stderr),
                        desc="simulated", leave=False)
        self.offset = self.base = 0

    def next_run(self, i: int, n: int) -> None:
        """The ``i``-th of ``n`` runs starts: the bar starts again from 0."""
        # NOTE: set_description adds its own ": ", which tqdm adds again
        # while the total is not known ("run 2/7: : 0.00cyc")
        self.bar.set_description_str(f"run {i}/{n}" if n > 1 else "simulated", refresh=False)
        self.bar.reset(total=0)
        self.offset = self.base = 0

    def __call__(self, now: int, end: int) -> None:
        if now < self.offset:                         # a new run started
            self.base += self.bar.n - self.base
        if self.bar.total != self.base + end:
            self.bar.total = self.base + end
        now = min(now, end)                           # a run's last quantum may pass its end
        self.bar.update(max(0, self.base + now - self.bar.n))
        self.offset = now

    def close(self) -> None:
        self.bar.close()


MODES = ("auto", "bar", "lines", "none")


def check_progress_options(progress, stream) -> None:
    """Refuse (ConfigError, one line) a ``progress`` mode that is none of
    auto, bar, lines or none, a ``stream`` that is no text stream, and a
    ``stream`` given with no progress to write on it."""
    if progress is not None and progress not in MODES:
        raise ConfigError(f"{spelled('--progress')}: expected auto, bar, lines or none, got "
                          f"{progress!r}")
    if stream is None:
        return
    if not callable(getattr(stream, "write", None)):
        raise ConfigError(f"stream: expected a text stream (with a write method) for the "
                          f"progress, got {type(stream).__name__} {stream!r:.60}")
    if progress in (None, "none"):
        raise ConfigError(f"stream: it is where the progress goes, and progress is "
                          f"{progress!r}: give progress='auto', 'bar' or 'lines', or leave "
                          f"stream out")


@contextlib.contextmanager
def progress_of(progress):
    """The callback for the ``progress`` argument of the Python API: None or
    ``"none"`` (no progress), a mode of :func:`make_progress`, or a callable
    ``progress(now_cycles, end_cycles)`` used as it is."""
    if progress is None or callable(progress):
        yield progress
        return
    if progress not in MODES:
        raise ConfigError(f"progress: expected None, a callable or one of "
                          f"{', '.join(MODES)}, got {progress!r}")
    with make_progress(progress) as reporter:
        yield reporter


@contextlib.contextmanager
def make_progress(mode: str = "auto"):
    """A callback ``progress(now_cycles, end_cycles)`` (or None), closed on exit.

    ``auto`` is a tqdm bar on a terminal and plain lines (one every 5 s of
    wall time, none for a short run) otherwise.
    """
    if mode == "auto":
        mode = "bar" if sys.stderr.isatty() else "lines"
    reporter = {"bar": _Bar, "lines": _Lines}.get(mode, lambda: None)()
    try:
        yield reporter
    finally:
        if reporter is not None:
            reporter.close()


def _columns(stream) -> int:
    """The width of the terminal ``stream`` is (0 if it says none, or is not one)."""
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, OSError, ValueError):
        return 0


def _fmt_s(seconds: float) -> str:
    if seconds < 10:
        return f"{max(0.0, seconds):.1f} s"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    m, s = divmod(seconds, 60)
    if m < 60:
        return f"{m} min {s:02d} s"
    h, m = divmod(m, 60)
    return f"{h} h {m:02d} min"


class SweepProgress:
    """Runs done: a tqdm bar, plain lines (every LINE_EVERY s or 10 %) or nothing."""

    def __init__(self, mode: Optional[str], total: int, done: int, what: str, stream=None,
                 name: str = "sweep", before: Optional[int] = None):
        """``done`` of the ``total`` runs are done; ``before`` of them were
        before the command began (default: all ``done``), the others by it."""
        self.stream, self.name = _reader(stream), name
        if mode in (None, "none"):
            mode = "none"
        elif mode == "auto":
            mode = "bar" if getattr(self.stream, "isatty", lambda: False)() else "lines"
        elif mode not in ("bar", "lines"):
            raise ConfigError(f"{spelled('--progress')}: expected auto, bar, lines or none, got "
                              f"{mode!r}")
        self.mode, self.total, self.done, self.start_done = mode, total, done, done
        self.t0 = self.last = time.monotonic()
        self.last_decile = (10 * done) // total if total else 10
        self.bar = None
        if mode == "bar":
            # a terminal that says it is 0 columns wide (some do) drew no bar at all
            sized = _columns(self.stream) > 0
            self.bar = tqdm(total=total, initial=done, unit="run", desc=name,
                            file=self.stream, dynamic_ncols=sized, ncols=None if sized else 80,
                            smoothing=0.1)
        elif mode == "lines":
            before = done if before is None else before
            earlier = f", {done - before} done by this command so far" if done > before else ""
            self._line(f"{total} run{'s' * (total != 1)}, {before} already done{earlier}; "
                       f"{what}")

    def _line(self, text: str) -> None:
        print(f"emu: {self.name}: {text}", file=self.stream, flush=True)

    def _status(self) -> str:
        t = time.monotonic() - self.t0
        pct = 100.0 * self.done / self.total if self.total else 100.0
        text = f"{self.done}/{self.total} runs done ({pct:.0f}%), {_fmt_s(t)} elapsed"
        new = self.done - self.start_done
        if 0 < new and self.done < self.total:
            text += f", ETA {_fmt_s(t / new * (self.total - self.done))}"
        return text

    def advance(self) -> None:
        """One more run done."""
        self.done += 1
        if self.bar is not None:
            self.bar.update(1)
        elif self.mode == "lines":
            decile = (10 * self.done) // self.total
            now = time.monotonic()
            if decile > self.last_decile or now - self.last >= LINE_EVERY:
                self.last_decile, self.last = decile, now
                self._line(self._status())

    def tick(self) -> None:
        """A status line if none was printed for LINE_EVERY seconds (lines mode)."""
        if self.mode == "lines" and time.monotonic() - self.last >= LINE_EVERY:
            self.last = time.monotonic()
            self._line(self._status())

    def close(self, finished: bool = False) -> None:
        """Close the bar; in lines mode, a last status line if the sweep ``finished``
        and the last one did not say so."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        elif self.mode == "lines" and finished and self.last_decile < 10:
            self._line(self._status())

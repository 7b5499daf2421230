"""Progress on long runs: a tqdm bar on a terminal, plain periodic lines otherwise."""

from __future__ import annotations

import contextlib
import sys
import time


class _Lines:
    """Plain lines on stderr, at most one every ``every`` seconds."""

    def __init__(self, every: float = 5.0, stream=None):
        self.every, self.stream = every, stream or sys.stderr
        self.t0 = self.last = time.monotonic()     # the first line after ``every`` seconds

    def __call__(self, now: int, end: int) -> None:
        t = time.monotonic()
        if t - self.last >= self.every:
            self.last = t
            pct = 100.0 * min(now, end) / end if end else 100.0
            print(f"emu: simulated {pct:5.1f}% ({now:,} of {end:,} cycles), "
                  f"{t - self.t0:.0f} s", file=self.stream, flush=True)

    def close(self) -> None:
        pass


class _Bar:
    """A tqdm bar over simulated cycles (shared by consecutive runs)."""

    def __init__(self):
        from tqdm import tqdm
        self.bar = tqdm(total=0, unit="cyc", unit_scale=True, file=sys.stderr,
                        desc="simulated", leave=False)
        self.offset = self.base = 0

    def __call__(self, now: int, end: int) -> None:
        if now < self.offset:                         # a new run started
            self.base += self.bar.n - self.base
        if self.bar.total != self.base + end:
            self.bar.total = self.base + end
        self.bar.update(max(0, self.base + now - self.bar.n))
        self.offset = now

    def close(self) -> None:
        self.bar.close()


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

"""A stop asked of the running command by SIGTERM, SIGHUP or Ctrl-C (SIGINT).

The signal's handler raises :class:`Terminated` (SIGTERM, SIGHUP) or
``KeyboardInterrupt`` (Ctrl-C) where the main thread is.  A raise that lands
where Python drops exceptions (a finalizer, a weakref callback, the import
machinery) would be lost: the command's ``sys.unraisablehook`` sends the
signal again a moment later (:mod:`emu.cli`), and the handler also sets
:data:`requested` or :data:`interrupted`, which the long loops read
(:func:`check`: a simulation at each quantum,
:meth:`emu.host.loop.HostLoop.cpu_loop`; ``emu tlb`` at each chunk) to
raise the stop again.
"""

from __future__ import annotations

import contextlib
import signal
import threading


class Terminated(KeyboardInterrupt):
    """SIGTERM (``kill``, ``timeout``, a container stopping) or SIGHUP (the
    terminal closing), taken as Ctrl-C is: a run's temporaries are removed
    and a sweep writes its table.  ``signum``: which of the two."""

    def __init__(self, signum: int = signal.SIGTERM):
        super().__init__()
        self.signum = signum


#: Set by the SIGTERM and SIGHUP handler of the ``emu`` command; never
#: cleared in its process.
requested = threading.Event()

#: The signal that set :data:`requested` (the first, if both came).
requested_by = signal.SIGTERM

#: Set by the Ctrl-C (SIGINT) handler of the ``emu`` command; never cleared in its process.
interrupted = threading.Event()

#: Set when the ``emu`` command has taken its stop and only says so: the
#: signal, sent again or sent twice, is then let go.
taken = threading.Event()


#: sections of the main thread a stop must not cut in two (:func:`held_off`)
_held = 0
#: the stop a handler kept for the end of the section it came in (:func:`keep`)
_kept = None


@contextlib.contextmanager
def held_off():
    """A section of the main thread that a stop must not cut in two: a
    temporary file or folder made, and not yet where the code that removes
    it on a stop knows of it.  A stop that comes inside it is raised at its
    end; elsewhere than on the main thread it holds nothing off."""
    global _held, _kept
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _held += 1
    try:
        yield
    finally:
        _held -= 1
    if not _held and _kept is not None:
        stopping, _kept = _kept, None
        raise stopping


def keep(stopping: BaseException) -> bool:
    """Keep the stop ``stopping`` (the handler's) for the end of the
    :func:`held_off` section the main thread is in, if it is in one."""
    global _kept
    if not _held:
        return False
    if _kept is None:
        _kept = stopping
    return True


def asked() -> bool:
    """Whether the command was asked to stop (SIGTERM, SIGHUP or Ctrl-C)."""
    return requested.is_set() or interrupted.is_set()


def check() -> None:
    """Raise the stop the command was asked for, if it was: its first raise
    may have been lost.  SIGTERM and SIGHUP come first, as the exit status says."""
    if requested.is_set():
        raise Terminated(requested_by)
    if interrupted.is_set():
        raise KeyboardInterrupt()

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

"""A stop asked of the running command by SIGTERM.

The signal's handler raises :class:`Terminated` where the main thread is; a
raise that lands where Python drops exceptions (a finalizer, a weakref
callback) would be lost: the command's ``sys.unraisablehook`` sends the signal
again (:mod:`emu.cli`), and the handler also sets :data:`requested`, which the
simulation's loop reads at each quantum
(:meth:`emu.host.loop.HostLoop.cpu_loop`) and raises again.
"""

from __future__ import annotations

import threading


class Terminated(KeyboardInterrupt):
    """SIGTERM (``kill``, ``timeout``, a container stopping), taken as Ctrl-C
    is: a run's temporaries are removed and a sweep writes its table."""


#: Set by the SIGTERM handler of the ``emu`` command; never cleared in its process.
requested = threading.Event()

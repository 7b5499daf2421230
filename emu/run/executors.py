"""Where a sweep's runs execute: in this process, on local processes, or on Dask.

One loop, :func:`run_all`, keeps a backend's window of runs in flight and
handles each completion in the calling thread.  A backend only submits a run
(:func:`execute_run` with its arguments), cancels what is in flight, and
closes; it is a context manager, entered for the time the runs execute:

* :class:`InProcess` executes each run when it is submitted (``--workers 1``);
* :class:`LocalProcesses` is a process pool whose workers leave Ctrl-C to the
  sweep and exit once orphaned;
* :class:`DaskCluster` submits to a ``dask.distributed`` client
  (:func:`dask_client` connects to a scheduler or starts a ``LocalCluster``).

A backend's ``finishes_started`` says whether the runs it had started when the
sweep stopped may still finish after it: Dask cannot stop a task that runs,
so the workers of a cluster that outlives the command finish it and write its
folder, where the other backends kill what runs (or have nothing running),
and the local cluster the command started is closed as the stop leaves it.
A stop's count of runs done is then only a lower bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import queue
import re
import signal
import socket
import threading
import time
import weakref
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Callable, Optional

from emu.digits import plain
from emu.params import KeyUse, scenario_from_dict
from emu.errors import ConfigError, EmuError, spelled
from emu.run.plan import Run
from emu.run.scenario import run_resolved

#: Seconds the loop waits for a completion before it calls ``idle``.
_IDLE_EVERY = 0.5


class SweepError(RuntimeError):
    """A sweep that could not finish (a worker died, a run failed); one line."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))
        self.done = self.total = 0      # set by run_sweep once the sweep has stopped


def execute_run(scenario_data: dict, base_dir: str, overrides, run_dir: str,
                meta: Optional[dict] = None) -> dict:
    """Run the scenario ``scenario_data`` (raw TOML data) with ``overrides``,
    write the results into ``run_dir`` (summary.json last) and return the
    summary.  Pure: same arguments, same files and summary, on any executor.
    A key that does nothing in this run is not refused here: its plan judged
    it over all its runs (:func:`~emu.run.plan.plan_sweep`).
    """
    result = run_resolved(scenario_from_dict(scenario_data, list(overrides), base_dir=base_dir,
                                             key_use=KeyUse()))
    if meta:
        result.execution = dict(result.execution, sweep=meta)
    # the sweep removed the leftovers before its runs; run_dir is its runs/ID
    result.write(run_dir, tidy=False, inside=True)
    return result.summary


def run_failure(run: Run, err: BaseException) -> BaseException:
    """The exception to raise for ``run`` failing with ``err``: one naming the run."""
    if isinstance(err, BrokenProcessPool):
        return SweepError("a local worker process died (killed?), which stopped the pool")
    if isinstance(err, EmuError):
        return EmuError(f"{run.label}: {err}")
    if type(err).__name__ == "KilledWorker":
        return SweepError(f"dask workers kept dying during {run.label}: {err}")
    with contextlib.suppress(Exception):
        err.add_note(f"in emu sweep, {run.label}")
    return err


def run_all(backend, todo: list, args_of: Callable[[Run], tuple],
            finished: Callable[[Run], None], idle: Callable[[], None]) -> None:
    """Execute every run of ``todo`` on ``backend`` (entered), ``backend.window`` at a time.

    ``args_of(run)`` gives :func:`execute_run`'s arguments; ``finished(run)``
    is called in this thread as each run completes, ``idle()`` whenever no run
    completed for a while.  A failing run stops the sweep: nothing more is
    submitted, and its exception (:func:`run_failure`) is raised once the
    backend has cancelled the rest (Ctrl-C: killed them; otherwise the runs
    in flight finish).
    """
    q: queue.Queue = queue.Queue()
    pending = iter(todo)
    inflight: dict = {}

    def fail(run: Run, err: BaseException):
        raise run_failure(run, err) from (None if isinstance(err, EmuError) else err)

    def fill():
        while len(inflight) < backend.window:
            run = next(pending, None)
            if run is None:
                return
            try:
                fut = backend.submit(run, args_of(run))
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException as err:        # e.g. the pool broke meanwhile
                fail(run, err)
            inflight[fut] = run
            fut.add_done_callback(q.put)

    try:
        fill()
        while inflight:
            try:
                fut = q.get(timeout=_IDLE_EVERY)
            except queue.Empty:
                idle()
                continue
            run = inflight.pop(fut, None)
            if run is None:
                continue
            try:
                fut.result()
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException as err:
                fail(run, err)
            finished(run)
            fill()
    except BaseException as err:
        backend.cancel(list(inflight), isinstance(err, KeyboardInterrupt))
        raise


class InProcess:
    """Each run executes in this process, when it is submitted."""

    window = 1
    where = "in this process"
    finishes_started = False

    def __enter__(self) -> "InProcess":
        return self

    def __exit__(self, *exc) -> None:
        pass

    def submit(self, run: Run, args: tuple) -> Future:
        """Execute ``run`` now; its future holds the summary or the exception."""
        fut: Future = Future()
        try:
            fut.set_result(execute_run(*args))
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as err:
            fut.set_exception(err)
        return fut

    def cancel(self, futures: list, interrupted: bool) -> None:
        pass


def _worker_init() -> None:
    """In each pool process: leave Ctrl-C to the sweep, and exit once orphaned
    (the sweep, or the fork server between, was killed)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent_pid = os.getppid()

    def watch():
        while True:
            time.sleep(1.0)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch, name="emu-sweep-orphan-watch", daemon=True).start()


def _kill_pool(ex: ProcessPoolExecutor) -> None:
    """Stop a ProcessPoolExecutor now: kill its workers and wait for them to
    end; what was queued fails with the pool."""
    terminate = getattr(ex, "terminate_workers", None)      # Python >= 3.14
    if terminate is not None:
        with contextlib.suppress(Exception):
            terminate()
        return
    processes = list((getattr(ex, "_processes", None) or {}).values())
    for p in processes:
        with contextlib.suppress(Exception):
            p.terminate()
    # waited for: a forked worker holds the files the sweep had open, its
    # lock among them, and the sweep run again at once was refused as though
    # another held its folder
    for p in processes:
        with contextlib.suppress(Exception):
            p.join(5.0)
            if p.is_alive():
                p.kill()
                p.join(5.0)
    # NOTE: the runs queued are not cancelled: the pool's own thread fails them
    # once it sees its workers gone, and before Python 3.12 it raised, and
    # printed a traceback, at each it found cancelled
    with contextlib.suppress(Exception):
        ex.shutdown(wait=False)


class LocalProcesses:
    """A pool of ``workers`` local processes, with twice as many runs in flight."""

    finishes_started = False

    def __init__(self, workers: int):
        self.workers, self.window = workers, 2 * workers
        self.where = f"on {workers} local worker processes"
        self.pool: Optional[ProcessPoolExecutor] = None

    def __enter__(self) -> "LocalProcesses":
        self.pool = ProcessPoolExecutor(max_workers=self.workers, initializer=_worker_init)
        return self

    def __exit__(self, *exc) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)

    def submit(self, run: Run, args: tuple) -> Future:
        return self.pool.submit(execute_run, *args)

    def cancel(self, futures: list, interrupted: bool) -> None:
        """Cancel what is queued; kill what runs on Ctrl-C, else let it finish
        (the results of the runs that finish count)."""
        if interrupted:
            _kill_pool(self.pool)
        else:
            for f in futures:
                f.cancel()
            self.pool.shutdown(wait=True, cancel_futures=True)


#: the local clusters :func:`dask_client` started, by their client: they end
#: with the command, and the runs their workers run with them
_OWN_CLUSTERS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


class DaskCluster:
    """A ``dask.distributed`` client, every run submitted at once (by grid order).

    Cancelling a future stops a task that has not started; one that runs goes
    on in its worker, which writes the run's folder after the sweep stopped
    (``finishes_started``), unless its cluster is the local one the command
    started: that one is closed as the stop leaves the backend, so that the
    runs done are counted once no worker can write any more."""

    def __init__(self, client, window: int, scheduler: Optional[str] = None):
        self.client, self.window = client, window
        self.token = os.urandom(4).hex()
        self.own_cluster = _OWN_CLUSTERS.get(client) if client is not None else None
        self.finishes_started = self.own_cluster is None
        if client is None:
            self.where = "on Dask"
            return
        try:
            nw = len(client.scheduler_info()["workers"])
        except Exception:
            nw = 0
        self.where = f"on the Dask cluster at {scheduler or client.scheduler.address}"
        self.where += f" ({nw} workers)" if nw else ""

    def __enter__(self) -> "DaskCluster":
        return self

    def __exit__(self, exc_type, *_) -> None:
        if self.own_cluster is not None and exc_type is not None and \
                issubclass(exc_type, KeyboardInterrupt):
            with contextlib.suppress(Exception):
                self.client.close()
            with contextlib.suppress(Exception):
                self.own_cluster.close()

    def submit(self, run: Run, args: tuple):
        return self.client.submit(execute_run, *args, key=f"emu-run-{run.id}-{self.token}",
                                  pure=False, priority=-run.index)

    def cancel(self, futures: list, interrupted: bool) -> None:
        with contextlib.suppress(Exception):
            self.client.cancel(futures)


def check_executor(executor: str, workers: Optional[int], scheduler: Optional[str],
                   client=None) -> None:
    """Refuse executor options that are wrong or do not go together (a one-line
    :class:`ConfigError` naming the option)."""
    if executor not in ("local", "dask"):
        raise ConfigError(f"{spelled('--executor')}: expected local or dask, got {executor!r}")
    workers = plain(workers)
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int)
                                or workers < 1):
        raise ConfigError(f"{spelled('--workers')}: expected a positive integer, got {workers!r}")
    if executor == "local" and scheduler:
        raise ConfigError(f"{spelled('--scheduler')} needs {spelled('--executor')} dask")
    if executor == "local" and client is not None:
        raise ConfigError(f"client needs {spelled('--executor')} dask")
    if scheduler and client is not None:
        raise ConfigError(f"{spelled('--scheduler')} and client: give one (a client is "
                          f"connected to its scheduler already)")
    if executor == "dask" and (scheduler or client is not None) and workers is not None:
        raise ConfigError(f"{spelled('--workers')} sets the size of a local Dask cluster; a "
                          f"{spelled('--scheduler') if scheduler else 'client'} has its own "
                          f"workers")


def make_backend(executor: str, workers: Optional[int], runs: int, client=None,
                 scheduler: Optional[str] = None):
    """The backend ``runs`` runs execute on: Dask (``client``), or a pool of at most
    ``workers`` local processes (default the CPU count), in this process for one."""
    if executor == "dask":
        return DaskCluster(client, runs, scheduler)
    n = max(1, min(workers or os.cpu_count() or 1, runs))
    return InProcess() if n == 1 else LocalProcesses(n)


#: The protocols of a Dask scheduler's address that emu can reach.
SCHEDULER_PROTOCOLS = ("tcp", "tls", "ws", "wss", "ucx")
#: Seconds to reach a scheduler's port, then for Dask's handshake.
CONNECT_TIMEOUT, HANDSHAKE_TIMEOUT = 3.0, 5.0
_ADDRESS = re.compile(r"(?:(?P<protocol>[A-Za-z][A-Za-z0-9+.-]*)://)?"
                      r"(?P<host>\[[0-9A-Fa-f:.]+\]|[^:/\[\]]*)(?::(?P<port>[^:/]*))?")
_HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")


def check_scheduler_address(address: str) -> tuple[str, str, int]:
    """``(protocol, host, port)`` of a Dask scheduler's address
    (``[PROTOCOL://]HOST:PORT``); ConfigError (one line) for any other text."""
    text = str(address).strip()
    example = "expected [tcp://]HOST:PORT, e.g. tcp://10.0.0.5:8786"
    m = _ADDRESS.fullmatch(text)
    if not text or m is None or not m["host"]:
        raise ConfigError(f"{spelled('--scheduler')} {address!r}: not a scheduler address "
                          f"({example})")
    protocol = (m["protocol"] or "tcp").lower()
    if protocol not in SCHEDULER_PROTOCOLS:
        raise ConfigError(f"{spelled('--scheduler')} {address!r}: unknown protocol {protocol!r} "
                          f"(choose from: {', '.join(SCHEDULER_PROTOCOLS)})")
    host = m["host"]
    if not host.startswith("[") and not all(_HOST_LABEL.fullmatch(x) for x in
                                            host.rstrip(".").split(".")):
        raise ConfigError(f"{spelled('--scheduler')} {address!r}: {host!r} is not a host name or "
                          f"IP address ({example})")
    if m["port"] is None:
        raise ConfigError(f"{spelled('--scheduler')} {address!r}: no port ({example}; a Dask "
                          "scheduler listens on 8786 by default)")
    if not (m["port"].isascii() and m["port"].isdigit()) or not 1 <= int(m["port"]) <= 65535:
        raise ConfigError(f"{spelled('--scheduler')} {address!r}: port {m['port']!r} is not in "
                          "1..65535")
    return protocol, host.strip("[]"), int(m["port"])


def _within(seconds: float, job: Callable[[], None]):
    """Run ``job`` in a thread for at most ``seconds``: None if it returned,
    else its exception (or a text saying it did not finish)."""
    failure: list = []

    def run():
        try:
            job()
        except BaseException as err:       # noqa: BLE001 - reported, in one line
            failure.append(err)

    thread = threading.Thread(target=run, name="emu-scheduler-probe", daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        return f"no answer within {seconds:g} s"
    return failure[0] if failure else None


def _why(failure) -> str:
    if isinstance(failure, str):
        return failure
    text = getattr(failure, "strerror", None) or str(failure).split("\n")[0][:120]
    return f"{type(failure).__name__}: {text}" if text else type(failure).__name__


def _reach(address: str, timeout: float = CONNECT_TIMEOUT) -> None:
    """Reach the scheduler at ``address`` within ``timeout`` seconds each for
    its TCP port (name resolution included) and for Dask's handshake (with
    the client's security settings); ConfigError (one line) otherwise."""
    protocol, host, port = check_scheduler_address(address)
    if protocol == "ucx":
        return                                     # not TCP: the client tells
    failure = _within(timeout, lambda: socket.create_connection((host, port), timeout).close())
    if failure is not None:
        raise ConfigError(f"{spelled('--scheduler')} {address}: cannot reach {host} port {port} "
                          f"({_why(failure)})")
    from distributed.comm import connect
    from distributed.security import Security
    args = Security().get_connection_args("client")     # what the client will use

    async def handshake():
        comm = await asyncio.wait_for(connect(address, timeout=timeout, **args), timeout)
        await comm.close()

    failure = _within(timeout + 1, lambda: asyncio.run(handshake()))
    if failure is not None:
        why = (_why(failure) if isinstance(failure, (str, OSError, asyncio.TimeoutError))
               else f"what answers does not speak Dask's protocol: {type(failure).__name__}")
        raise ConfigError(f"{spelled('--scheduler')} {address}: no Dask scheduler answers at "
                          f"{host} port {port} ({why})")


def _close_half_started_clusters() -> None:
    """Close the local clusters an interrupt caught while they started, and
    take back Dask's own closing of them at the exit: one that never finished
    starting fails its close with a traceback of its state (Status.init)."""
    import atexit

    from distributed.deploy import spec
    for cluster in list(spec.SpecCluster._instances):
        with contextlib.suppress(BaseException):
            cluster.close(timeout=5)
    atexit.unregister(spec.close_clusters)


@contextlib.contextmanager
def dask_client(scheduler: Optional[str], workers: Optional[int]):
    """A client of the scheduler at ``scheduler``, or of a LocalCluster of
    ``workers`` processes on 127.0.0.1 (closed on exit); ConfigError if neither.

    A scheduler's address is checked, its port reached and Dask's handshake
    exchanged before the client is made: a bad address fails in one line
    within a few seconds."""
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise ConfigError(f"{spelled('--executor')} dask needs dask[distributed] (pip install "
                          "'dask[distributed]')") from None
    if scheduler:
        _reach(scheduler)
    cluster = None
    try:
        if scheduler:
            client = Client(scheduler, timeout=f"{HANDSHAKE_TIMEOUT:g}s", set_as_default=False)
        else:
            cluster = LocalCluster(n_workers=workers or os.cpu_count() or 1, threads_per_worker=1,
                                   processes=True, host="127.0.0.1", dashboard_address=None,
                                   silence_logs=logging.ERROR)
            client = Client(cluster, set_as_default=False)
            _OWN_CLUSTERS[client] = cluster
    except Exception as err:         # noqa: BLE001 - Dask raises many kinds; say it in one line
        if cluster is not None:
            cluster.close()
        what = (f"{spelled('--scheduler')} {scheduler}: cannot connect to the dask scheduler"
                if scheduler else
                f"{spelled('--executor')} dask: cannot start a local Dask cluster")
        raise ConfigError(f"{what} ({type(err).__name__}: {err})") from None
    except KeyboardInterrupt:
        _close_half_started_clusters()
        raise
    try:
        yield client
    finally:
        with contextlib.suppress(Exception):
            client.close()
        if cluster is not None:
            with contextlib.suppress(Exception):
                cluster.close()

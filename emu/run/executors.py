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
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import signal
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Callable, Optional

from emu.params import scenario_from_dict
from emu.errors import ConfigError, EmuError
from emu.run.plan import Run
from emu.run.scenario import run as run_scenario

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
    """
    result = run_scenario(scenario_from_dict(scenario_data, list(overrides), base_dir=base_dir))
    if meta:
        result.execution = dict(result.execution, sweep=meta)
    result.write(run_dir)
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
    """Stop a ProcessPoolExecutor now: cancel what is queued, kill what runs."""
    terminate = getattr(ex, "terminate_workers", None)      # Python >= 3.14
    if terminate is not None:
        with contextlib.suppress(Exception):
            terminate()
        return
    for p in list((getattr(ex, "_processes", None) or {}).values()):
        with contextlib.suppress(Exception):
            p.terminate()
    with contextlib.suppress(Exception):
        ex.shutdown(wait=False, cancel_futures=True)


class LocalProcesses:
    """A pool of ``workers`` local processes, with twice as many runs in flight."""

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
        for f in futures:
            f.cancel()
        if interrupted:
            _kill_pool(self.pool)
        else:
            self.pool.shutdown(wait=True, cancel_futures=True)


class DaskCluster:
    """A ``dask.distributed`` client, every run submitted at once (by grid order)."""

    def __init__(self, client, window: int, scheduler: Optional[str] = None):
        self.client, self.window = client, window
        self.token = os.urandom(4).hex()
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

    def __exit__(self, *exc) -> None:
        pass

    def submit(self, run: Run, args: tuple):
        return self.client.submit(execute_run, *args, key=f"emu-run-{run.id}-{self.token}",
                                  pure=False, priority=-run.index)

    def cancel(self, futures: list, interrupted: bool) -> None:
        with contextlib.suppress(Exception):
            self.client.cancel(futures)


@contextlib.contextmanager
def dask_client(scheduler: Optional[str], workers: Optional[int]):
    """A client of the scheduler at ``scheduler``, or of a LocalCluster of
    ``workers`` processes on 127.0.0.1 (closed on exit); ConfigError if neither."""
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise ConfigError("--executor dask needs dask[distributed] (pip install "
                          "'dask[distributed]')") from None
    cluster = None
    try:
        if scheduler:
            client = Client(scheduler, timeout="10s", set_as_default=False)
        else:
            cluster = LocalCluster(n_workers=workers or os.cpu_count() or 1, threads_per_worker=1,
                                   processes=True, host="127.0.0.1", dashboard_address=None,
                                   silence_logs=logging.ERROR)
            client = Client(cluster, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as err:
        if cluster is not None:
            cluster.close()
        raise ConfigError(f"--scheduler {scheduler}: cannot connect to the dask scheduler "
                          f"({type(err).__name__}: {err})") from None
    try:
        yield client
    finally:
        with contextlib.suppress(Exception):
            client.close()
        if cluster is not None:
            with contextlib.suppress(Exception):
                cluster.close()

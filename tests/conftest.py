"""Shared fixtures and markers for emu's tests.

* ``backend``: a test that takes it runs once per engine backend, the compiled
  fast path (``cython``) and its readable twin (``reference``), so both face
  the same assertions.
* Every test drawn by hypothesis is marked ``property`` (``-m property`` runs
  only those, ``-m "not property"`` leaves them out); ``slow`` marks the longer
  end-to-end runs.  Both stay in the default suite.
* ``lock_tried_at``: another process's attempt at a file's lock, made at the
  moment emu calls ``os.unlink`` or ``os.rename`` on it (the gap between a
  test of a lock and the act, forced).
"""

from __future__ import annotations

import os

import pytest

from emu.engine import BACKENDS
from emu.run.files import lock


@pytest.fixture
def lock_tried_at(monkeypatch):
    """``at(call, path)``: from then on, the first ``os.<call>`` (``unlink``,
    ``rename``) of ``path`` first tries ``path``'s lock, as another process
    that opened it would, without waiting; returns the list that gets the
    lock's descriptor if it took it (held to the test's end) or None if it
    would have waited."""
    tried: list = []

    def at(call: str, path) -> list:
        real = getattr(os, call)

        def trying_first(src, *args, **kw):
            if os.fspath(src) == os.fspath(path) and not tried:
                fd = os.open(path, os.O_RDONLY)
                if lock(fd, blocking=False):
                    tried.append(fd)                # the other holds it
                else:
                    os.close(fd)
                    tried.append(None)              # the other waits for the act
            return real(src, *args, **kw)

        monkeypatch.setattr(os, call, trying_first)
        return tried

    yield at
    monkeypatch.undo()
    for fd in tried:
        if fd is not None:
            os.close(fd)


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    """The name of an engine backend: each test that asks runs on every one."""
    return request.param


def pytest_collection_modifyitems(items):
    for item in items:
        function = getattr(item, "function", None)
        if function is not None and getattr(function, "is_hypothesis_test", False):
            item.add_marker(pytest.mark.property)

"""Shared fixtures and markers for emu's tests.

* ``backend``: a test that takes it runs once per engine backend, the compiled
  fast path (``cython``) and its readable twin (``reference``), so both face
  the same assertions.
* Every test drawn by hypothesis is marked ``property`` (``-m property`` runs
  only those, ``-m "not property"`` leaves them out); ``slow`` marks the longer
  end-to-end runs.  Both stay in the default suite.
"""

from __future__ import annotations

import pytest

from emu.engine import BACKENDS


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    """The name of an engine backend: each test that asks runs on every one."""
    return request.param


def pytest_collection_modifyitems(items):
    for item in items:
        function = getattr(item, "function", None)
        if function is not None and getattr(function, "is_hypothesis_test", False):
            item.add_marker(pytest.mark.property)

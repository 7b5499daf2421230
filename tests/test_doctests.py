"""The examples in the package's docstrings run, so the docs cannot rot.

Every module of ``emu`` whose docstrings hold an example (``>>>``) is run
through :mod:`doctest` here; a module that gains one is picked up by itself.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil
from pathlib import Path

import pytest

import emu

#: Modules left out (none today): say why beside each name.
SKIP: set = set()


def modules_with_examples() -> list:
    names = []
    for info in pkgutil.walk_packages(emu.__path__, "emu."):
        spec = importlib.util.find_spec(info.name)
        origin = getattr(spec, "origin", None) or ""
        if origin.endswith(".py") and ">>> " in Path(origin).read_text():
            names.append(info.name)
    return sorted(set(names) - SKIP)


def test_the_package_has_examples():
    assert len(modules_with_examples()) >= 10


@pytest.mark.parametrize("name", modules_with_examples())
def test_module_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"

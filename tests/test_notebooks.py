"""The notebooks of docs/notebooks/ run, cell by cell, as a reader runs them.

Each code cell is executed in order in one namespace, in a fresh directory,
and the value of its last expression is displayed as Jupyter would display
it: a matplotlib figure drawn to PNG, anything with ``_repr_html_`` rendered
to HTML, anything else through ``repr``.  The cells run in this process,
without a Jupyter kernel: nothing to install beyond the test extra, no kernel
to start and no sockets, and a failing cell's traceback names the notebook,
the cell and the line.  The notebooks are kept without outputs, so what a
reader sees is what their code computes now.
"""

from __future__ import annotations

import ast
import io
import json
import time
from pathlib import Path

import pytest
from matplotlib.figure import Figure

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "docs" / "notebooks")
                   .glob("*.ipynb"))

#: CPU seconds a notebook may take (it is written to take about ten); CPU
#: time, not wall time, so that a loaded machine does not fail the test.
BUDGET = 30


def read_notebook(path: Path) -> dict:
    nb = json.loads(path.read_text(encoding="utf-8"))
    assert nb["nbformat"] == 4 and nb["metadata"]["kernelspec"]["language"] == "python"
    return nb


def run_cell(source: str, namespace: dict, name: str):
    """Execute one cell; the value of its last expression (None if it ends otherwise)."""
    tree = ast.parse(source, filename=name)
    last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    exec(compile(tree, name, "exec"), namespace)
    if last is None:
        return None
    return eval(compile(ast.Expression(last.value), name, "eval"), namespace)


def display(value) -> str:
    """Render ``value`` as Jupyter would show it; which kind of output it made."""
    if value is None:
        return "none"
    if isinstance(value, Figure):
        # Jupyter shows a bare Figure only once pyplot has started its inline
        # backend (here pandas' plotting does); emu's figures show themselves
        own = hasattr(value, "_repr_png_")
        if own:
            png = value._repr_png_()
        else:
            buf = io.BytesIO()
            value.savefig(buf, format="png")
            png = buf.getvalue()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and value.axes
        return "figure" if own else "bare figure"
    html = getattr(value, "_repr_html_", None)
    if callable(html):
        text = html()
        assert isinstance(text, str) and "<table" in text
        return "html"
    assert repr(value)
    return "text"


def test_there_is_a_notebook():
    assert [p.name for p in NOTEBOOKS] == ["compare.ipynb"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_stored_without_outputs(path):
    for cell in read_notebook(path)["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None, cell["id"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_from_a_comparison_to_a_frame_to_a_figure(path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__main__"}
    shown = []
    t0 = time.process_time()
    for cell in read_notebook(path)["cells"]:
        if cell["cell_type"] == "code":
            value = run_cell("".join(cell["source"]), namespace, f"{path.name}, cell {cell['id']}")
            shown.append(display(value))
    seconds = time.process_time() - t0
    assert seconds < BUDGET, f"{path.name} took {seconds:.1f} CPU s"
    assert shown.count("figure") >= 1 and shown.count("bare figure") >= 1
    assert shown.count("html") >= 4
    assert type(namespace["cmp"]).__name__ == "Comparison"
    assert type(namespace["frames"]["cycles"]).__name__ == "DataFrame"
    assert (tmp_path / "results" / "cycles.png").is_file()

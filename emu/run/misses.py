"""The per-miss log's file in a run folder: ``misses.parquet``, or ``misses.csv``.

Parquet when pyarrow is installed, CSV otherwise (floats written exactly, as
``repr`` gives them); either reads back as the same columns
(:data:`emu.stats.misslog.MISS_COLUMNS`, numpy arrays: int64, float64 for
``time_us``, text for the names).
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Mapping
from typing import Optional

import numpy as np

from emu.errors import EmuError
from emu.run import table
from emu.run.files import atomic_path, write_text
from emu.stats.misslog import MISS_COLUMNS, TEXT_COLUMNS

#: The file names, the one written first in order of preference.
FILES = ("misses.parquet", "misses.csv")


def write_misses(folder: str, cols: dict) -> str:
    """Write the log's columns into ``folder`` (atomically); returns the path."""
    if table._have_pyarrow():
        import pyarrow as pa
        import pyarrow.parquet as pq
        path = os.path.join(folder, FILES[0])
        data = pa.table({name: pa.array(list(cols[name]) if name in TEXT_COLUMNS
                                        else cols[name]) for name in MISS_COLUMNS})
        with atomic_path(path, suffix=".parquet") as tmp:
            pq.write_table(data, tmp)
        return path
    path = os.path.join(folder, FILES[1])
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(MISS_COLUMNS)
    w.writerows(zip(*[[repr(float(v)) for v in cols[name]] if name == "time_us" else cols[name]
                      for name in MISS_COLUMNS]))
    write_text(path, buf.getvalue())
    return path


def _typed(name: str, values) -> np.ndarray:
    if name in TEXT_COLUMNS:
        return np.array([str(v) for v in values], dtype=object)
    return np.array(values, dtype=np.float64 if name == "time_us" else np.int64)


class Unreadable(Mapping):
    """A per-miss log that cannot be read here (a Parquet file, and no
    pyarrow): the rest of its run loads, and reading the log's columns says
    why they cannot be read, in one line (EmuError)."""

    def __init__(self, why: str):
        self.why = why

    def __getitem__(self, name):
        raise EmuError(self.why)

    def __iter__(self):
        raise EmuError(self.why)

    def __len__(self):
        raise EmuError(self.why)

    def __repr__(self) -> str:
        return f"<per-miss log not read: {self.why}>"


def read_misses(folder: str) -> Optional[Mapping]:
    """The log's columns in ``folder``, or None when it holds no log; an
    :class:`Unreadable` for a Parquet log where pyarrow is not installed."""
    parquet, text = (os.path.join(folder, name) for name in FILES)
    try:
        if os.path.isfile(parquet):
            try:
                import pyarrow.parquet as pq
            except ImportError:
                return Unreadable(f"{parquet}: reading the per-miss log needs pyarrow: "
                                  f"pip install pyarrow")
            data = pq.read_table(parquet).to_pydict()
        elif os.path.isfile(text):
            with open(text, encoding="utf-8", newline="") as f:
                rows = list(csv.reader(f))
            data = {name: [r[i] for r in rows[1:]] for i, name in enumerate(rows[0])}
        else:
            return None
        return {name: _typed(name, data[name]) for name in MISS_COLUMNS}
    except EmuError:
        raise
    except Exception as err:    # a truncated or foreign file: pyarrow and csv raise many kinds
        raise EmuError(f"{folder}: cannot read the per-miss log ({err})") from None

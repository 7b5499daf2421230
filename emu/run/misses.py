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


def read_misses(folder: str) -> Optional[dict]:
    """The log's columns in ``folder``, or None when it holds no log."""
    parquet, text = (os.path.join(folder, name) for name in FILES)
    try:
        if os.path.isfile(parquet):
            try:
                import pyarrow.parquet as pq
            except ImportError:
                raise EmuError(f"{parquet}: reading it needs pyarrow: pip install pyarrow") \
                    from None
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

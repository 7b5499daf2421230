"""Result files: written atomically, into an output directory checked first.

Every result emu writes goes to a temporary file in the destination's
directory and is renamed over the destination with :func:`os.replace` once
complete, so an error or an interruption leaves what was there before (and
at worst a temporary file, ``.NAME.XXXXXXXX.tmp``, that
:func:`remove_tmp_files` recognises).  A run directory's ``summary.json`` is
written last: :func:`read_summary` finds it only once the run is complete.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
import tempfile
from typing import Iterator, Optional

from emu.errors import EmuError

#: The name of a temporary file :func:`atomic_path` makes (and leaves only if killed).
_TMP_FILE = re.compile(r"\A\..+\.[A-Za-z0-9_]{8}\.tmp(\.[A-Za-z0-9]+)?\Z")


@contextlib.contextmanager
def atomic_path(path, suffix: str = "") -> Iterator[str]:
    """Yield a temporary path beside ``path``; rename it over ``path`` on success."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".",
                               suffix=".tmp" + suffix, dir=directory)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())          # as open() would have made it
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def remove_tmp_files(directory: str) -> None:
    """Remove what interrupted atomic writes left in ``directory`` (if it can be read)."""
    with contextlib.suppress(OSError):
        for name in os.listdir(directory):
            if _TMP_FILE.match(name):
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(directory, name))


def check_output_dir(out_dir, files=()) -> None:
    """Refuse, before anything runs or is written, an output directory that cannot be.

    ``out_dir`` must be a directory or not exist yet (its parent then must be
    one); none of ``files`` inside it may be a directory.
    """
    out_dir = os.fspath(out_dir)
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise EmuError(f"--out {out_dir}: exists and is not a directory")
    probe = out_dir
    while not os.path.exists(probe):
        parent = os.path.dirname(os.path.abspath(probe))
        if parent == probe:
            break
        probe = parent
    if not os.path.isdir(probe):
        raise EmuError(f"--out {out_dir}: {probe} is not a directory")
    if not os.access(probe, os.W_OK):
        raise EmuError(f"--out {out_dir}: {probe} is not writable")
    for name in files:
        target = os.path.join(out_dir, name)
        if os.path.isdir(target):
            raise EmuError(f"--out {out_dir}: {name} exists and is a directory")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)


def dumps_json(obj) -> str:
    """The canonical JSON text of a summary (sorted keys, fixed indentation)."""
    return json.dumps(obj, indent=2, sort_keys=True) + "\n"


def write_json(path, obj) -> None:
    """Write ``obj`` as canonical JSON (:func:`dumps_json`) atomically."""
    write_text(path, dumps_json(obj))


def rows_to_csv(rows: list) -> str:
    """CSV text of a tidy table: the columns in order of first appearance."""
    if not rows:
        return ""
    buf = io.StringIO()
    cols = list(rows[0])
    for r in rows[1:]:
        cols.extend(k for k in r if k not in cols)
    w = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def read_summary(run_dir: str) -> Optional[dict]:
    """The summary in ``run_dir`` if the run is complete there, else None."""
    try:
        with open(os.path.join(run_dir, "summary.json"), encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None

"""Result files: each written atomically; the canonical JSON and CSV texts.

Every file emu writes goes to a temporary file in the destination's
directory and is renamed over the destination with :func:`os.replace` once
complete, so an error or an interruption leaves what was there before.  A
writer holds its temporary, ``.NAME.XXXXXXXX.tmp``, locked until the rename:
one that no process holds is a killed writer's, and the next write of the
same name removes it (:func:`remove_stale_temporaries`).  A run folder as a whole
is replaced by :class:`emu.run.outdir.Stage`; its ``summary.json`` is
written last: :func:`read_summary` finds it only once the run is complete.

Only a regular file is replaced so (:func:`replaceable_path`): a symlink
has the file it names written (the link stays, as a result folder's link
does), and a device (``/dev/null``), a FIFO, a socket or a folder is
refused before anything is written, since a rename would put a regular file
in its place.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import errno
import os
import re
import shutil
import stat
import tempfile
from typing import Iterator, Optional

from emu.errors import EmuError
from emu.run import stop

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None

#: The length of the random part of a temporary name (:mod:`tempfile`'s).
RANDOM_CHARS = 8
#: The name of a temporary of an atomic write (:func:`temporary_name`).
TEMPORARY = re.compile(r"\A\..+\.[A-Za-z0-9_]{8}\.tmp(\.[A-Za-z0-9]+)?\Z")


def temporary_name(name: str, suffix: str = "") -> str:
    """The name of the temporary file :func:`atomic_path` writes ``name``
    through, its random part as X's (to measure the room it needs)."""
    return f".{name}.{'X' * RANDOM_CHARS}.tmp{suffix}"


#: what a path that is not a regular file is, by the type bits of its mode
_NOT_REGULAR = {stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device",
                stat.S_IFIFO: "a FIFO", stat.S_IFSOCK: "a socket"}


def replaceable_path(path, error: type = EmuError) -> str:
    """The file an atomic write of ``path`` renames its temporary over:
    ``path`` itself when nothing is there yet or a regular file is; the
    file a symlink resolves to (the link stays, as a result folder's link
    does: :class:`emu.run.outdir.Stage`).

    Anything else is refused in one line (``error``, naming ``path``) before
    anything is written: renaming over a device (``/dev/null``), a FIFO or a
    socket would put a regular file in its place, a folder cannot be
    replaced by a file at all, and a file named by an open file descriptor
    (``/dev/stdout``, ``/dev/fd/N``) is another process's to replace."""
    path = os.fspath(path)
    try:
        mode = os.stat(path).st_mode            # what the path names, links followed
    except FileNotFoundError:
        mode = None                             # nothing there yet (or a dangling link)
    except OSError as err:
        reason = "a symlink loop" if err.errno == errno.ELOOP else (err.strerror or str(err))
        raise error(f"{path}: cannot write ({reason})") from None
    named = f"is a symlink to {os.readlink(path)}," if os.path.islink(path) else "is"
    if mode is not None and stat.S_ISDIR(mode):
        raise error(f"{path}: {named} a folder; give the name of the file to write")
    if mode is not None and not stat.S_ISREG(mode):
        what = _NOT_REGULAR.get(stat.S_IFMT(mode), "a special file")
        raise error(f"{path}: {named} {what}, not a regular file; emu writes only to a file "
                    "it can replace as a whole")
    proc = _proc_folder(path)
    if proc is not None:
        if os.path.basename(proc) != "fd":
            raise error(f"{path}: is in /proc, the kernel's view of its processes, where "
                        "emu writes no file; give a path elsewhere")
        raise error(f"{path}: names an open file (/proc/PID/fd/N), not a path emu can replace "
                    "as a whole; give the file's own path")
    return os.path.realpath(path)


def _proc_folder(path: str) -> Optional[str]:
    """The folder in ``/proc`` that ``path`` resolves through, or None.  Through
    ``/proc/PID/fd`` (``/dev/stdout``, ``/dev/fd/N``) the file is whatever a
    descriptor holds open, and its "path" (``pipe:[N]``, a deleted file's) may
    be no path at all; elsewhere in ``/proc`` no file can be written."""
    p = os.path.abspath(path)
    for _ in range(40):                         # the kernel's limit of links followed
        folder = os.path.realpath(os.path.dirname(p))
        if folder == "/proc" or folder.startswith("/proc/"):
            return folder
        if not os.path.islink(p):
            return None
        p = os.path.join(folder, os.readlink(p))
    return None


def lock(fd: int, blocking: bool) -> bool:
    """Take the exclusive lock of the file or folder open at ``fd``
    (released when the process ends, however it ends); False if another
    holds it and ``blocking`` is false."""
    if fcntl is None:  # pragma: no cover - not POSIX
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
    except OSError:
        return False
    return True


def remove_stale_temporaries(directory: str, name: Optional[str] = None) -> list:
    """Remove from ``directory`` the temporaries of atomic writes that no
    process holds, those writers killed while writing left (only those of
    the destination ``name`` if given); return their names.  A live
    writer's are left alone, and so is a directory that cannot be read."""
    try:
        entries = os.listdir(directory)
    except OSError:
        return []
    removed = []
    for e in entries:
        if not TEMPORARY.match(e) or (name is not None and not e.startswith(f".{name}.")):
            continue
        if remove_unheld(os.path.join(directory, e)):
            removed.append(e)
    return removed


@contextlib.contextmanager
def taken(path: str) -> Iterator[Optional[int]]:
    """Hold the lock of the file or folder ``path`` for the ``with`` block
    if no process holds it (its writer was killed): yields its mode (as
    :func:`os.lstat` gives it), or None when a process holds it, it is gone,
    or it is neither file nor folder (a link, a FIFO: nothing a writer of
    emu's makes).  Held, ``path`` is checked to name still what was locked:
    a writer that put another there in the moment before holds that one."""
    fd = mode = None
    try:
        mode = os.lstat(path).st_mode
        if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)    # a FIFO's would wait for good
    except OSError:
        pass
    try:
        mine = fd is not None and lock(fd, blocking=False) and \
            os.path.samestat(os.fstat(fd), os.lstat(path))
    except OSError:
        mine = False
    try:
        yield mode if mine else None
    finally:
        if fd is not None:
            os.close(fd)


def remove_unheld(path: str) -> bool:
    """Remove the file or folder ``path`` if no process holds it (its writer
    was killed); whether it did.  A link, a FIFO or anything else no writer
    of emu's makes is left alone."""
    # NOTE: the lock is held until the path is gone: a writer that made
    # it a moment ago waits for it, then finds its name gone (held_new),
    # where one that took it after a check let go would have written
    # into a file removed under it.
    with taken(path) as mode:
        if mode is None:
            return False
        try:
            if stat.S_ISDIR(mode):
                shutil.rmtree(path)
            else:
                os.unlink(path)
        except OSError:
            return False
        return True


def held_new(directory: str, prefix: str, suffix: str = "", folder: bool = False) -> tuple:
    """``(fd, path)``: a new file (or folder) in ``directory``, named
    ``prefix``, random characters, ``suffix``, open at ``fd`` and locked for
    as long as ``fd`` is open: what a remover of killed writers' leftovers
    (:func:`remove_unheld`) leaves alone."""
    while True:
        if folder:
            path = tempfile.mkdtemp(prefix=prefix, suffix=suffix, dir=directory)
            fd = os.open(path, os.O_RDONLY)
        else:
            fd, path = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=directory)
        lock(fd, blocking=True)     # a remover that took it first holds it until it is gone
        try:
            if os.path.samestat(os.fstat(fd), os.stat(path)):
                return fd, path
        except FileNotFoundError:
            pass            # removed as a leftover in the moment before the lock: make another
        os.close(fd)


def _held_temporary(path: str, suffix: str, folder: bool) -> tuple:
    """``(fd, temporary)``: :func:`held_new` beside ``path``, named as its
    temporaries are (:func:`temporary_name`), in a folder made if missing,
    once the temporaries killed writers of ``path`` left are removed."""
    directory, name = os.path.split(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    remove_stale_temporaries(directory, name)
    head, _, tail = temporary_name(name, suffix).rpartition("X" * RANDOM_CHARS)
    return held_new(directory, head, tail, folder)


@contextlib.contextmanager
def atomic_path(path, suffix: str = "", error: type = EmuError) -> Iterator[str]:
    """Yield a temporary path beside the file ``path`` names
    (:func:`temporary_name`), held until it is renamed over that file on
    success.  Raises ``error``, before anything is written, when ``path`` is
    not a file that can be replaced so (:func:`replaceable_path`).  The
    temporaries earlier writers of the same name were killed with are
    removed first."""
    path = replaceable_path(path, error)
    fd = tmp = None
    try:
        with stop.held_off():       # a stop is raised once tmp is known, and removes it
            fd, tmp = _held_temporary(path, suffix, folder=False)
        yield tmp
        os.chmod(tmp, 0o666 & ~current_umask())          # as open() would have made it
        os.replace(tmp, path)
    except BaseException:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        raise
    finally:
        if fd is not None:
            os.close(fd)


@contextlib.contextmanager
def temporary_folder(path) -> Iterator[str]:
    """Yield a new folder beside the file ``path`` (named as its temporary
    files are), held while in use and removed with what it holds after, for
    a writer's scratch files; a killed writer's is removed as its
    temporary files are."""
    fd = tmp = None
    try:
        with stop.held_off():       # a stop is raised once tmp is known, and removes it
            fd, tmp = _held_temporary(os.fspath(path), "", folder=True)
        yield tmp
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        if fd is not None:
            os.close(fd)


def scratch_folder(name: str):
    """:func:`temporary_folder` in the system's folder of temporary files
    (``.NAME.XXXXXXXX.tmp``), for scratch files that belong beside no file
    written (a report's plots before they go into its page): a killed
    writer's is removed by the next of the same ``name``."""
    return temporary_folder(os.path.join(tempfile.gettempdir(), name))


def current_umask() -> int:
    """The process's umask (read without changing it for long)."""
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


def load_json(path) -> object:
    """The JSON value in ``path``.  A file that cannot be read or is not JSON
    is an EmuError (one line, naming the file), unlike :func:`read_summary`,
    which takes it for a run not done yet."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as err:
        raise EmuError(f"{path}: corrupt JSON ({err.msg} at line {err.lineno})") from None
    except (OSError, UnicodeDecodeError) as err:
        raise EmuError(f"cannot read {path}: {err}") from None


def read_json(path):
    """The JSON in ``path``, or None if it cannot be read or parsed."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def read_summary(run_dir: str) -> Optional[dict]:
    """The summary in ``run_dir`` if the run is complete there, else None."""
    return read_json(os.path.join(run_dir, "summary.json"))

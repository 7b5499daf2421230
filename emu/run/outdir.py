"""Output folders: checked before anything runs, replaced as one set, never escaped.

A run's or a comparison's folder (``--out DIR``) is written as a whole:
:class:`Stage` makes a temporary folder beside DIR before the simulation
starts (so a DIR that cannot be written is refused in one line first), the
results are written into it, and :meth:`Stage.commit` puts it in DIR's place
with one atomic exchange of the two folders (``renameat2(RENAME_EXCHANGE)``;
two renames where the filesystem has no exchange).  A kill at any moment
leaves DIR holding the old complete set or the new complete set.

What a kill can leave is a hidden temporary folder beside DIR
(``.DIR.emu-new-XXXXXXXX``, or ``.DIR.emu-old-XXXXXXXX`` from the two-rename
path).  Each is locked (``flock``) while its process lives, so the next
:class:`Stage` for DIR removes those no process holds, and puts an old set
back in DIR's place if a kill came between the two renames.

A folder is only replaced when everything in it is emu's: a folder holding
files emu did not write is refused, whatever ``force`` says, and so is the
current folder.  A folder holding another kind of result (a comparison
where a run goes, a sweep, a study, a sensitivity study, ...) or another
study is refused unless ``force``, naming what is there (:func:`holding`).

A path is refused before anything runs when the names emu would make under
it do not fit the filesystem's limits (:func:`check_room`): the temporary
folder beside it, the temporary files of its atomic writes, a comparison's
run folders.

:func:`folder_names` gives the run folders of a comparison: a safe, unique
name per label, which can neither collide nor climb out of the folder.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import os
import re
import shutil
import stat
from dataclasses import dataclass
from typing import Optional

from emu.errors import FULL, ConfigError, check_flag, on_command_line, spelled
from emu.run import stop
from emu.run.files import (
    RANDOM_CHARS,
    TEMPORARY,
    current_umask,
    held_new,
    lock,
    read_json,
    remove_stale_temporaries,
    remove_unheld,
    taken,
    temporary_name,
)

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None

#: The suffixes of the files emu writes into a result folder (results, reports, plots).
EMU_SUFFIXES = (".json", ".csv", ".npz", ".parquet", ".html", ".png", ".svg")
#: Temporary folders of a Stage: ``.NAME.emu-new-XXXXXXXX`` and ``.NAME.emu-old-XXXXXXXX``.
_STAGE_DIR = re.compile(r"\A\.(?P<name>.+)\.emu-(?P<role>new|old)-[A-Za-z0-9_]{8}\Z")
#: How much of the target's name a temporary folder's name repeats (names stay < 255 bytes).
_NAME_KEPT = 64
#: Longest folder name :func:`folder_names` makes from a label (before its hash).
_SLUG_MAX = 64
#: The longest names of the files emu writes into a result folder (a run's per-miss
#: log, a comparison's plots), with the suffix of their temporary files: the room a
#: path must leave (:func:`check_room`).
_LONGEST_FILES = (("misses.parquet", ".parquet"), ("fastpath_profile.svg", ".svg"))
#: The file of a sweep's or a sensitivity study's lock (emu.run.resume).
LOCK_FILE = ".sweep.lock"


# -- what a folder holds ------------------------------------------------------------------------

@dataclass(frozen=True)
class Holding:
    """What an output folder holds: ``kind`` (None: nothing, or only emu's
    by-products), a phrase naming it, the entries emu did not write, and
    ``what`` a study's name (two studies are two results of one kind)."""

    kind: Optional[str]             # "run" | "comparison" | "sweep" | "study" | "sensitivity"
    text: str
    foreign: tuple = ()
    what: Optional[str] = None


def _is_temporary(name: str) -> bool:
    return bool(TEMPORARY.match(name) or _STAGE_DIR.match(name))


def _emu_file(path: str, name: str) -> bool:
    return os.path.isfile(path) and not os.path.islink(path) and \
        name.lower().endswith(EMU_SUFFIXES)


def _run_folder(path: str) -> bool:
    """A folder of one run's files (no sub-folders, nothing but emu's files;
    not empty: emu makes no empty folder, so an empty one is the user's)."""
    try:
        names = os.listdir(path)
    except OSError:
        return False
    return bool(names) and not os.path.islink(path) and all(
        _is_temporary(n) or _emu_file(os.path.join(path, n), n) for n in names)


def _runs_folder(path: str) -> bool:
    """The ``runs`` folder of a sweep, a study or a sensitivity study: run
    folders only (empty before the first run is done)."""
    try:
        names = os.listdir(path)
    except OSError:
        return False
    return not os.path.islink(path) and all(
        _is_temporary(n) or _run_folder(os.path.join(path, n)) for n in names)


def _describe_run(folder: str) -> str:
    s = read_json(os.path.join(folder, "summary.json"))
    if not isinstance(s, dict):
        return "an incomplete run (no readable summary.json)"
    cfg = s.get("config") if isinstance(s.get("config"), dict) else {}
    kvm = cfg.get("kvm") if isinstance(cfg.get("kvm"), dict) else {}
    name = f" of scenario {cfg['name']!r}" if cfg.get("name") else ""
    return f"a run{name} (strategy {kvm.get('strategy', '?')}, seed {s.get('seed', '?')})"


def _describe_comparison(folder: str) -> str:
    c = read_json(os.path.join(folder, "comparison.json"))
    if not isinstance(c, dict) or not isinstance(c.get("runs"), list):
        return "a comparison (comparison.json)"
    return f"a comparison of {c.get('key', '?')} over {len(c['runs'])} runs"


def _describe_sweep(folder: str) -> str:
    s = read_json(os.path.join(folder, "sweep.json"))
    if not isinstance(s, dict):
        return "a sweep (sweep.json)"
    grid = s.get("grid") if isinstance(s.get("grid"), list) else []
    keys = " x ".join(str(g.get("key")) for g in grid if isinstance(g, dict)) or "no grid"
    scenario = s.get("scenario") if isinstance(s.get("scenario"), dict) else {}
    path = scenario.get("path")
    of = f" of {os.path.basename(path)}" if isinstance(path, str) else ""
    runs = s.get("runs") if isinstance(s.get("runs"), list) else []
    return f"a sweep{of} over {keys} ({len(runs)} runs)"


def _describe_study(results: dict) -> str:
    mode = "quick" if results.get("quick") else "full"
    return f"the study {results['study']!r} ({mode}, {results.get('runs_count', '?')} runs)"


def _describe_sensitivity(folder: str, run_folders: list) -> str:
    s = read_json(os.path.join(folder, "sensitivity.json"))
    if not isinstance(s, dict):
        return f"an unfinished sensitivity study ({len(run_folders)} runs done)"
    cmp = s.get("compare") if isinstance(s.get("compare"), dict) else {}
    return (f"a sensitivity study of {cmp.get('key', '?')}={cmp.get('a', '?')},"
            f"{cmp.get('b', '?')} ({s.get('metric', '?')}, {s.get('method', '?')}, "
            f"{s.get('runs', '?')} runs)")


def holding(folder) -> Holding:
    """What ``folder`` holds (it may not exist: then nothing)."""
    folder = os.fspath(folder)
    try:
        names = sorted(os.listdir(folder))
    except FileNotFoundError:
        return Holding(None, "nothing")
    except OSError as err:
        raise ConfigError(f"{folder}: cannot list the folder ({err.strerror or err})") from None
    names = [n for n in names if not _is_temporary(n)]

    def path(n):
        return os.path.join(folder, n)

    def emus(n, runs=False, folders=False):
        """Whether emu wrote the entry ``n`` (a result file; runs/ or run
        folders where the kind of result has them).  The lock file is
        emu's in any folder: a sweep or a sensitivity study about to replace
        the result there holds it as it checks the folder again."""
        return (_emu_file(path(n), n) or n == LOCK_FILE
                or (runs and n == "runs" and _runs_folder(path(n)))
                or (folders and n != "runs" and _run_folder(path(n))))

    study = read_json(path("results.json")) if "results.json" in names else None
    runs = path("runs")
    run_folders = [r for r in os.listdir(runs) if not _is_temporary(r)] \
        if "runs" in names and os.path.isdir(runs) else []
    what = None
    if "sweep.json" in names:
        kind, text = "sweep", _describe_sweep(folder)
        foreign = [n for n in names if not emus(n, runs=True)]
    elif "comparison.json" in names:
        kind, text = "comparison", _describe_comparison(folder)
        foreign = [n for n in names if not emus(n, folders=True)]
    elif isinstance(study, dict) and isinstance(study.get("study"), str):
        # runs/ and, for some studies, a folder of plots (a run folder's shape)
        kind, text, what = "study", _describe_study(study), study["study"]
        foreign = [n for n in names if not emus(n, runs=True, folders=True)]
    elif "sensitivity.json" in names or (LOCK_FILE in names and run_folders):
        # an unfinished one has its lock and runs done, not yet its sensitivity.json
        kind, text = "sensitivity", _describe_sensitivity(folder, run_folders)
        foreign = [n for n in names if not emus(n, runs=True)]
    else:
        results = [n for n in names if n.endswith((".csv", ".npz")) or n in ("summary.json",
                                                                           "run.json")]
        kind = "run" if results else None
        text = _describe_run(folder) if results else "nothing but emu's reports and plots"
        # the lock and the empty runs/ a sweep or a sensitivity study makes first
        started = LOCK_FILE in names and not run_folders
        foreign = [n for n in names if not emus(n, runs=started)]
    if not names:
        text = "nothing"
    return Holding(kind, text, tuple(foreign), what)


def unfinished(folder: str) -> Optional[str]:
    """The phrase naming the result ``folder`` holds if it is one stopped
    before it wrote its main file (a sensitivity study's runs and lock, no
    sensitivity.json yet), else None: what reading the folder says in place
    of "no emu result"."""
    try:
        held = holding(folder)
    except ConfigError:
        return None
    if held.kind == "sensitivity" and not os.path.isfile(os.path.join(folder,
                                                                       "sensitivity.json")):
        return held.text
    return None


def no_result() -> str:
    """The files an emu result folder holds, and what writes one, named as
    the caller spells it (:func:`emu.errors.on_command_line`): what reading a
    folder without them says."""
    writers = ("emu run, compare, sweep, study or sensitivity --out DIR" if on_command_line()
               else "Result.write(out_dir), Comparison.write(out_dir), run_sweep(..., "
                    "out_dir=), emu.study.run(..., out=) or write_sensitivity(out_dir, ...)")
    return ("no summary.json, comparison.json, sweep.json, results.json or sensitivity.json: "
            f"write one with {writers}")


def remove_result(folder: str, keep_runs=None) -> None:
    """Remove a result's files from ``folder`` (emu's result files and run
    folders).  ``keep_runs``: the run folders of ``runs/`` to keep, the others
    are removed (None: ``runs/`` stays as it is).  The lock and anything else
    stay."""
    for n in os.listdir(folder):
        path = os.path.join(folder, n)
        if _emu_file(path, n):
            os.unlink(path)
        elif n != "runs" and os.path.isdir(path) and _run_folder(path):
            shutil.rmtree(path)
        elif n == "runs" and keep_runs is not None and _runs_folder(path):
            for r in os.listdir(path):
                if r not in keep_runs:
                    shutil.rmtree(os.path.join(path, r), ignore_errors=True)


def _article(kind: str, what: Optional[str] = None) -> str:
    """How a message names a ``kind`` of result (``what``: a study's name)."""
    if what is not None:
        return f"the {kind} {what!r}"
    return {"run": "a run", "comparison": "a comparison", "sweep": "a sweep",
            "study": "a study", "sensitivity": "a sensitivity study"}[kind]


def check_replaceable(folder: str, kind: str, force: Optional[bool] = False,
                      where: Optional[str] = None, what: Optional[str] = None) -> Holding:
    """Refuse (ConfigError, one line, starting with ``where``) to put a ``kind``
    result (``what``: the study's name) in ``folder`` when it holds files emu
    did not write, or (unless ``force``) another kind of result or another
    study.  ``force`` None: the caller has no ``force`` to offer, and the
    message names none."""
    h = holding(folder)
    where = where or folder
    if h.foreign:
        shown = ", ".join(f"'{n}'" + ("/" if os.path.isdir(os.path.join(folder, n)) else "")
                          for n in h.foreign[:3])
        more = f" and {len(h.foreign) - 3} more" if len(h.foreign) > 3 else ""
        raise ConfigError(f"{where}: holds {shown}{more}, which emu did not write; emu replaces a "
                       f"result folder as a whole: choose a new or empty folder")
    if h.kind is not None and (h.kind, h.what) != (kind, what) and not force:
        how = "" if force is None else f"pass {spelled('--force')} to replace it, or "
        raise ConfigError(f"{where}: holds {h.text}, not {_article(kind, what)}: {how}choose "
                          "another folder")
    return h


# -- the path itself ----------------------------------------------------------------------------

def check_name(out, option: str | tuple = "--out", names: str = "folder") -> str:
    """``out`` as text, refused in one line (ConfigError) when it cannot name
    a file or folder (``names``) at all: None, empty, or a NUL byte in it, or
    not a path (a string, bytes or an os.PathLike) at all; a file or folder
    given on the command line (``option``) as ``-``, which names standard
    output there."""
    if not isinstance(out, (str, bytes, os.PathLike)):
        raise ConfigError(f"{spelled(option) or 'out_dir'}: expected the path of a {names} (a "
                          f"string or a Path), got {type(out).__name__} {out!r:.60}")
    text = os.fspath(out)
    where = f"{spelled(option)} {text!r}" if option else repr(text)
    if not str(text).strip():
        raise ConfigError(f"{where}: an empty path names no {names}")
    if "\0" in str(text):
        raise ConfigError(f"{where}: a path cannot hold a NUL byte")
    if option and str(text) == "-":
        if names == "file":
            raise ConfigError(f"{where}: emu writes a file it can replace as a whole, not "
                              f"standard output: give the file's name (./- for a file called '-')")
        raise ConfigError(f"{where}: emu writes its results as files in a folder, not to standard "
                          f"output: give the folder's name (./- for a folder called '-')")
    tail = os.path.basename(str(text))
    if names == "file" and tail in ("", ".", ".."):
        raise ConfigError(f"{where}: names a folder (it ends in {tail or '/'!r}); give the "
                          f"name of the file to write")
    return text


def _limits(path: str) -> tuple[int, int]:
    """(NAME_MAX, PATH_MAX) of the filesystem ``path`` is, or would be, on."""
    try:
        probe = _existing_ancestor(path)
        return os.pathconf(probe, "PC_NAME_MAX"), os.pathconf(probe, "PC_PATH_MAX")
    except (OSError, ValueError):
        return 255, 4096


def _check_lengths(where: str, path: str, limits: tuple[int, int], made: str = "") -> None:
    """Refuse ``path`` (one line) when it or a name in it is longer than
    ``limits`` allow; ``made``: what emu makes in the folder the user gave,
    when ``path`` is that (the message names it)."""
    name_max, path_max = limits
    encoded = os.fsencode(path)
    if len(encoded) >= path_max:
        if made:
            raise ConfigError(f"{where}: the path is too long for what emu makes there "
                              f"('{made}' makes it {len(encoded)} bytes, the limit is "
                              f"{path_max - 1})")
        raise ConfigError(f"{where}: the path is too long ({len(encoded)} bytes, the limit is "
                          f"{path_max - 1})")
    for part in encoded.split(b"/"):
        if len(part) > name_max:
            named = f"name emu makes there, '{os.fsdecode(part)}'," if made else "name in the path"
            raise ConfigError(f"{where}: a {named} is too long ({len(part)} bytes, the limit "
                              f"is {name_max})")


def check_path(out, option: str | tuple = "--out", inside: bool = False) -> str:
    """The absolute path of ``out``, refused in one line (ConfigError) when it
    cannot name a folder: empty, a NUL byte, a name or path too long, a
    symlink loop, a file that is not a folder on the way, or (unless
    ``inside``: a run folder of the result being written, a sweep's
    runs/ID) a folder inside another result (:func:`check_outside_results`)."""
    text = check_name(out, option)
    path = os.path.abspath(text)
    where = f"{spelled(option)} {text}" if option else text
    _check_lengths(where, path, _limits(path))
    try:
        os.stat(path)
    except FileNotFoundError:
        pass
    except OSError as err:
        reason = "a symlink loop" if err.errno == errno.ELOOP else (err.strerror or str(err))
        raise ConfigError(f"{where}: cannot be used ({reason})") from None
    if os.path.exists(path) and not os.path.isdir(path):
        raise ConfigError(f"{where}: exists and is not a directory")
    probe = _existing_ancestor(path)
    if not os.path.isdir(probe):
        raise ConfigError(f"{where}: {probe} is not a directory")
    if not inside:
        check_outside_results(path, where)
    return path


def _result_at(folder: str) -> Optional[str]:
    """The kind of result emu wrote in ``folder`` by its main file (a run's
    summary.json, a comparison's, a sweep's, a study's results.json, a
    sensitivity study's), or by the lock and runs/ of a sensitivity study
    stopped before it wrote its file; else None: a file of that name another
    program wrote is not taken for one."""
    def emu_json(name: str, *keys: str) -> bool:
        path = os.path.join(folder, name)
        data = read_json(path) if os.path.isfile(path) else None
        return isinstance(data, dict) and all(k in data for k in keys)
    for kind, name, keys in (("run", "summary.json", ("emu_version", "config")),
                             ("comparison", "comparison.json", ("key", "runs")),
                             ("sweep", "sweep.json", ("emu_version", "grid")),
                             ("study", "results.json", ("study", "runs", "numbers")),
                             ("sensitivity", "sensitivity.json", ("emu_version", "compare"))):
        if emu_json(name, *keys):
            return kind
    if os.path.isfile(os.path.join(folder, LOCK_FILE)) and os.path.isdir(
            os.path.join(folder, "runs")):
        return "sensitivity"            # one stopped before its sensitivity.json
    return None


def check_outside_results(path: str, where: str, own: Optional[str] = None,
                          error: type = ConfigError) -> None:
    """Refuse (ConfigError, one line starting with ``where``) an output
    ``path`` (absolute) inside a folder that holds an emu result: it would
    be mixed into that result (or replace one of its files), and the result
    could no longer be replaced as a whole.  ``own``: the one file inside a
    result that may be written (``emu report``'s DIR/report.html);
    ``error``: the exception raised."""
    real = os.path.realpath(path)
    if own is not None and real == os.path.realpath(own):
        return
    folder = os.path.dirname(real)
    while True:
        kind = _result_at(folder)
        if kind is not None:
            raise error(f"{where}: inside {folder}, which holds {_article(kind)}; write "
                        f"outside it (emu replaces a result folder as a whole)")
        parent = os.path.dirname(folder)
        if parent == folder:
            return
        folder = parent


def _stage_name(name: str, role: str) -> str:
    """The prefix of a Stage's temporary folder for ``name`` (``role``: new or
    old); tempfile adds RANDOM_CHARS to it."""
    return f".{name[:_NAME_KEPT]}.emu-{role}-"


def check_room(target: str, folders=(), where: Optional[str] = None) -> None:
    """Refuse (ConfigError, one line) a result folder ``target`` (absolute)
    when what emu makes for it would not fit the filesystem's limits: the
    temporary folder beside it, the temporary files of the atomic writes in
    it and in each of its run ``folders`` (names relative to it)."""
    parent, name = os.path.split(target)
    stage = _stage_name(name, "new") + "X" * RANDOM_CHARS
    limits = _limits(target)
    for sub in [""] + list(folders):
        for file, suffix in _LONGEST_FILES:
            tmp = temporary_name(file, suffix)
            for made in (os.path.join(stage, sub, tmp), os.path.join(name, sub, tmp)):
                _check_lengths(where or target, os.path.join(parent, made), limits, made)


def check_output_dir(out_dir, files=(), option: str | tuple = "--out") -> str:
    """For a command that writes ``files`` into ``out_dir`` one by one (each
    atomically): :func:`check_path`, and none of ``files`` may be a folder there.
    Returns the absolute path."""
    path = check_path(out_dir, option)
    for name in files:
        if os.path.isdir(os.path.join(path, name)):
            raise ConfigError(f"{spelled(option)} {out_dir}: {name} exists and is a directory")
    return path


def _existing_ancestor(path: str) -> str:
    probe = path
    while not os.path.lexists(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    return probe


def _holds_cwd(path: str) -> bool:
    try:
        cwd = os.path.realpath(os.getcwd())
    except OSError:
        return False
    return cwd == path or cwd.startswith(path.rstrip(os.sep) + os.sep)


# -- leftovers ----------------------------------------------------------------------------------

@contextlib.contextmanager
def held(folder: str):
    """Hold ``folder`` (an exclusive lock on the folder itself) for a
    stage's last check and its swap: two commits into it are one after the
    other, each seeing what the other left."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        yield                       # the swap says what is wrong with the folder
        return
    try:
        lock(fd, blocking=True)
        yield
    finally:
        os.close(fd)


def _check_unlocked(folder: str, where: str) -> None:
    """Refuse (ConfigError) ``folder`` while a sweep or a sensitivity study
    writes into it (it holds the folder's lock file)."""
    path = os.path.join(folder, LOCK_FILE)
    if fcntl is None or not os.path.isfile(path):
        return
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            return
        except OSError:
            held = lock_holder(fd)
    finally:
        os.close(fd)
    raise ConfigError(f"{where}: another emu {held} is writing into this folder")


def lock_holder(fd: int) -> str:
    """What holds the lock file open at ``fd``, as the holder wrote it there
    (``sweep``, ``sensitivity study``; else both named)."""
    held = os.pread(fd, 64, 0).decode("ascii", "replace").strip()
    return held if held in ("sweep", "sensitivity study") else "sweep or sensitivity study"


def remove_leftovers(parent: str, name: Optional[str] = None) -> None:
    """Remove what killed writers left in ``parent`` (only what they left of
    ``name`` if given): the temporary folders of Stages and the temporaries
    of atomic writes that no process holds.  If ``name`` is
    missing and a killed Stage left its old set aside, put that set back
    first (:func:`_put_back`)."""
    try:
        entries = os.listdir(parent)
    except OSError:
        return
    kept = None if name is None else name[:_NAME_KEPT]
    stages = [(e, m) for e, m in ((e, _STAGE_DIR.match(e)) for e in entries) if m]
    if name is not None and not os.path.lexists(os.path.join(parent, name)):
        _put_back(parent, name, [e for e, m in stages if m["role"] == "old" and m["name"] == kept])
    for e, m in stages:
        if kept is not None and m["name"] != kept:
            continue
        remove_unheld(os.path.join(parent, e))
    remove_stale_temporaries(parent, name)


def _put_back(parent: str, name: str, aside: list) -> None:
    """Put in ``name``'s place the old set a Stage killed between the two
    renames of its swap left aside (the first of the folders ``aside`` that
    no process holds), if ``name`` is still missing.

    Done with ``parent`` held, as a commit holds it for its check and its
    swap (:meth:`Stage.commit`): a commit under way in the folder is waited
    for, and never finds what it checked changed before its swap.  The old
    set's lock is held across the rename (:func:`taken`), as a removal
    holds a leftover's until it is gone: none can take the folder in the
    moment between the test of its lock and the rename."""
    if not aside:
        return
    target = os.path.join(parent, name)
    with held(parent):
        if os.path.lexists(target):
            return                              # a commit put a set there meanwhile
        for e in aside:
            path = os.path.join(parent, e)
            with taken(path) as mode:
                if mode is None or not stat.S_ISDIR(mode):
                    continue
                with contextlib.suppress(OSError):
                    os.rename(path, target)
                return


# -- replacing a folder as one set ----------------------------------------------------------

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _renameat2():
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


_EXCHANGE = _renameat2()


def _exchange(a: str, b: str) -> bool:
    """Swap the folders ``a`` and ``b`` atomically; False if this system cannot."""
    if _EXCHANGE is None:
        return False
    if _EXCHANGE(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), b)


class CannotWrite(ConfigError):
    """The results for ``target`` could not be written (``reason``: a full
    disk, a quota): nothing was."""

    def __init__(self, message: str, reason: str, target: str):
        super().__init__(message)
        self.reason, self.target = reason, target


class Stage:
    """A temporary folder beside ``target`` that takes its place as a whole.

    Made at once (so a target that cannot be written is refused before any
    work is done), after the target is checked (:func:`check_path`,
    :func:`check_room` with the run ``folders`` it will hold,
    :func:`check_replaceable` for a ``kind`` result, ``what``: a study's
    name) and the leftovers of killed writers removed.  Write the results
    into :attr:`path`, then :meth:`commit`; leaving the ``with`` block
    without committing removes the temporary folder, and any parent folder
    the stage made.  ``tidy=False`` leaves the leftovers to the caller (a
    sweep removes them all once, before its runs); ``inside=True`` lets
    ``target`` be a run folder inside the result being written (a sweep's
    runs/ID).  ``option`` names ``target`` in the messages, as
    :func:`emu.errors.spelled` takes it ("": none).  Raises ConfigError (one
    line).
    """

    def __init__(self, target, kind: str, force: bool = False, option: str | tuple = "--out",
                 tidy: bool = True, what: Optional[str] = None, folders=(),
                 inside: bool = False):
        if force is not None:
            check_flag("force", force)
        check_flag("tidy", tidy)
        check_flag("inside", inside)
        self.option, self.target_text = option, check_name(target, option)
        path = check_path(target, option, inside)
        if os.path.islink(path):
            path = os.path.realpath(path)              # replace the folder the link names
        self.target = path
        self.parent, self.name = os.path.split(path)
        if not self.name:
            raise ConfigError(f"{self._where()}: the root folder cannot hold a result")
        if os.path.isdir(path) and _holds_cwd(path):
            raise ConfigError(f"{self._where()}: is the current folder (or holds it); emu "
                           f"replaces a result folder as a whole: give a folder of its own, "
                           f"such as results")
        if os.path.ismount(path):
            raise ConfigError(f"{self._where()}: is a mount point, which cannot be replaced "
                              f"as a whole: give a folder inside it")
        check_room(path, folders, self._where())
        if tidy:
            remove_leftovers(self.parent, self.name)
        self.kind, self.force, self.what = kind, force, what
        _check_unlocked(path, self._where())
        self.holding = check_replaceable(path, kind, force, self._where(), what)
        self.made: list = []
        self.fd: Optional[int] = None
        self.committed = False
        try:
            self._make_parents()
            # (a stop between the folder's making and its name kept here
            # would leave it behind: it is raised after, and removes it)
            with stop.held_off():
                self.fd, self.path = held_new(self.parent, _stage_name(self.name, "new"),
                                              folder=True)
        except OSError as err:
            self.discard()
            raise ConfigError(f"{self._where()}: cannot write into {self.parent} "
                           f"({err.strerror or err})") from None
        except BaseException:
            self.discard()
            raise

    def _where(self) -> str:
        return f"{spelled(self.option)} {self.target_text}" if self.option else self.target_text

    def _make_parents(self) -> None:
        missing, probe = [], self.parent
        while not os.path.isdir(probe):
            missing.append(probe)
            probe = os.path.dirname(probe)
        for d in reversed(missing):
            os.mkdir(d)
            self.made.append(d)

    def __enter__(self) -> "Stage":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if not self.committed:
            self.discard()
        # a full disk, a quota: one line, and nothing written (the old set stays),
        # said of this stage's target, not of a folder inside the one it was writing
        if isinstance(exc, CannotWrite) and self._holds(exc.target):
            raise self._cannot_write(exc.reason) from None
        if isinstance(exc, OSError) and (exc.errno in FULL or any(
                self._holds(name) for name in (exc.filename, exc.filename2))):
            raise self._cannot_write(exc.strerror or str(exc)) from None

    def _holds(self, name) -> bool:
        """Whether the file ``name`` is in the folder this stage was writing."""
        inside = getattr(self, "path", None)
        return bool(inside) and isinstance(name, str) and \
            os.path.abspath(name).startswith(inside + os.sep)

    def _cannot_write(self, reason: str) -> "CannotWrite":
        return CannotWrite(f"{self._where()}: cannot write the results ({reason}); nothing "
                           f"was written", reason, self.target)

    def commit(self) -> None:
        """Put the written folder in the target's place (the old set goes),
        once the target is checked again, with the commits of other stages
        in the same folder held off: what another command did to it while
        this one ran (a result of another kind, a sweep writing into it, a
        file emu did not write) is refused, as it would have been at the
        start, and nothing is written."""
        os.chmod(self.path, 0o777 & ~current_umask())         # as mkdir would have made it
        with held(self.parent):
            try:
                _check_unlocked(self.target, self._where())
                check_replaceable(self.target, self.kind, self.force, self._where(), self.what)
            except ConfigError as err:
                raise ConfigError(f"{err} (the folder changed while this command ran: nothing "
                                  f"was written)") from None
            # (a stop between the two renames of a swap would leave neither set
            # in the folder until the next command put the old one back)
            with stop.held_off():
                self._swap()

    def _swap(self) -> None:
        with contextlib.ExitStack() as holding:
            try:
                old = self._put_in_place(holding)
            except OSError as err:
                raise ConfigError(f"{self._where()}: cannot replace the folder "
                                  f"({err.strerror or err})") from None
            self.committed = True
            self._unlock()
            self.made = []
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)

    def _put_in_place(self, holding: contextlib.ExitStack) -> Optional[str]:
        """Rename the written folder to the target; the folder the old set
        is in after, if there was one, held until ``holding`` closes."""
        try:
            os.rename(self.path, self.target)      # no target yet (or an empty one)
            return None
        except OSError as err:
            if err.errno not in (errno.EEXIST, errno.ENOTEMPTY, errno.EISDIR):
                raise
        # NOTE: the old set is held from before it leaves the target's name
        # until it is removed, as the new set is while it is written: a
        # Stage killed with its old set aside leaves one no process holds,
        # which the next Stage puts back (remove_leftovers), where a live
        # one's was taken for it, put back between the two renames (the
        # second then failed) or removed (a kill then left neither set).
        fd = os.open(self.target, os.O_RDONLY)
        holding.callback(os.close, fd)
        lock(fd, blocking=True)
        if _exchange(self.path, self.target):
            return self.path
        # a name for the old set: held (no remover takes it) until the set has it
        name_fd, old = held_new(self.parent, _stage_name(self.name, "old"), folder=True)
        try:
            os.rmdir(old)
            os.rename(self.target, old)            # a kill here: the next Stage puts it back
        finally:
            os.close(name_fd)
        os.rename(self.path, self.target)
        return old

    def _unlock(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def discard(self) -> None:
        """Remove the temporary folder and the parents this stage made."""
        self._unlock()
        if getattr(self, "path", None):
            shutil.rmtree(self.path, ignore_errors=True)
        for d in reversed(self.made):
            with contextlib.suppress(OSError):
                os.rmdir(d)
        self.made = []


@contextlib.contextmanager
def staged(target, kind: str, force: bool = False, option: str | tuple = "--out",
           what: Optional[str] = None, folders=()):
    """A :class:`Stage` for ``target`` (None: no output folder, yields None)."""
    if target is None:
        yield None
        return
    with Stage(target, kind, force, option, what=what, folders=folders) as stage:
        yield stage


# -- the run folders of a comparison ---------------------------------------------------------

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def _hash(label: str) -> str:
    return hashlib.sha256(label.encode("utf-8", "surrogatepass")).hexdigest()[:8]


def _slug(label: str) -> tuple[str, bool]:
    """(a safe folder name for ``label``, whether it must carry the label's hash)."""
    slug = _UNSAFE.sub("_", label).lstrip(".-")
    clipped = len(slug) > _SLUG_MAX
    slug = slug[:_SLUG_MAX]
    reserved = not slug or slug.lower().endswith(EMU_SUFFIXES) or slug.lower() == "runs"
    return slug or "run", clipped or reserved


def folder_names(labels) -> list[str]:
    """One folder name per label: letters, digits, ``.``, ``_`` and ``-`` only,
    never hidden, never ``.``/``..``, at most 73 characters, and unique even on a
    case-insensitive filesystem.  A label that is already such a name (and
    collides with no other) is its own folder; the others get ``-`` and 8 hex
    digits of the label's hash, so the same labels always give the same names."""
    labels = [str(x) for x in labels]
    names = [f"{s}-{_hash(x)}" if must else s for x, (s, must) in zip(labels, map(_slug, labels))]
    # a clash: the names that differ from their labels take the hash, then, if
    # that is not enough, every name of the clash does
    for keep_own in (True, False):
        lower = [n.lower() for n in names]
        clash = {n for n in lower if lower.count(n) > 1}
        names = [f"{n}-{_hash(x)}" if n.lower() in clash and not (keep_own and n == x) else n
                 for x, n in zip(labels, names)]
    seen: set = set()
    out = []
    for n in names:                        # identical labels, or a clash of hashes
        unique, i = n, 2
        while unique.lower() in seen:
            unique, i = f"{n}-{i}", i + 1
        seen.add(unique.lower())
        out.append(unique)
    return out


"""What the ``tests/test_cli_*.py`` files share: ``python -m emu.cli`` in a
fresh interpreter, the check of a usage error (one line, exit status 2), and
another command committing into an output folder at a chosen moment."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EMU = [sys.executable, "-m", "emu.cli"]


def cli_env(**extra) -> dict:
    """The environment of a CLI process: this checkout first on PYTHONPATH."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    for var in ("COLUMNS", "LINES", "PYTHONWARNINGS", "PYTHONDEVMODE"):
        env.pop(var, None)
    env.update({k: str(v) for k, v in extra.items()})
    return env


def run_cli(*args, cwd=None, preexec_fn=None, timeout=300, env=None):
    """``python -m emu.cli ARGS``: the CompletedProcess (text)."""
    return subprocess.run(EMU + [str(a) for a in args], capture_output=True, text=True,
                          cwd=cwd or ROOT, env=env or cli_env(), timeout=timeout,
                          preexec_fn=preexec_fn, stdin=subprocess.DEVNULL)


def popen_cli(*args, cwd=None, env=None) -> subprocess.Popen:
    """``python -m emu.cli ARGS`` started in the background (text pipes)."""
    return subprocess.Popen(EMU + [str(a) for a in args], cwd=cwd or ROOT, env=env or cli_env(),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def assert_usage_error(proc, *needles) -> str:
    """One line on stderr naming the problem, exit status 2, no traceback."""
    err = proc.stderr
    assert "Traceback" not in err, err
    assert proc.returncode == 2, (proc.returncode, err)
    assert err.count("\n") == 1 and err.endswith("\n"), repr(err)
    assert err.startswith("emu"), err
    assert proc.stdout == "", proc.stdout
    for needle in needles:
        assert str(needle) in err, (needle, err)
    return err


def committed_first(locked):
    """``locked`` (the lock a sweep or a sensitivity study takes on its
    --out folder) with a run committed into the folder just before it is
    taken: another command finishing between the folder's first check and
    the lock."""
    from emu.run import outdir

    @contextlib.contextmanager
    def lock(out_dir, *args):
        stage = outdir.Stage(out_dir, "run", force=True)
        (Path(stage.path) / "summary.json").write_text('{"emu_version": "x", "config": {}}')
        stage.commit()
        with locked(out_dir, *args):
            yield
    return lock

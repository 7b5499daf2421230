"""``emu report`` on damaged input: success, or one line and exit status 2.

A property-based fuzz of every file a report reads: ``summary.json`` (of a
run, and of each run of a comparison, which must equal its copy in
``comparison.json``), ``comparison.json`` (its run folders named, there or
not), a sweep's ``sweep.json``, its results table (``results.parquet`` and
``results.csv``) and the runs' summaries under it, a study's
``results.json``, and ``timeline.npz``.
Each case takes a real folder, damages one file (a key removed, a value of
another type or out of range, the file truncated, bytes flipped, random
bytes) and makes the report in-process; it must either write the page or
raise :class:`~emu.errors.EmuError` with a one-line message that starts with
``report:``.  Any other exception is a bug.  The cases are drawn from a fixed
seed (hypothesis, derandomized), a few thousand in all, so that CI replays
the same ones.

The pages are made without their plots (``plots=False``, ``emu report
--no-plots``), which keeps a case to milliseconds; the plots see damaged
input in their own, smaller, tests here: a timeline that passes the checks
is drawn, and a sample of the damaged summaries that pass is reported with
every plot.  A few cases run through the command line (``python -m emu.cli
report``) for the exit status and the single line on stderr.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import random
import shutil
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import emu.study
from emu.errors import EmuError
from emu.params import default_scenario
from emu.report import plots
from emu.report.folders import load_results
from emu.report.html import write_report
from emu.run import compare, run_sweep, write_comparison
from emu.run.table import read_table

pytestmark = pytest.mark.property

#: Short runs with a short repopulation window: small files, fast cases.
SHORT = ["duration_ms=1", "sim.timeline=true", "sim.repopulation_window=32"]


def fuzz(max_examples: int):
    return settings(derandomize=True, database=None, deadline=None, max_examples=max_examples,
                    suppress_health_check=list(HealthCheck))


# -- the folders the cases damage ------------------------------------------------------------

@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A comparison folder (whose run folders are run folders), a sweep folder
    with a Parquet table, one with the same table as CSV, and a study's folder."""
    root = tmp_path_factory.mktemp("fuzz")
    results = compare(default_scenario(), "kvm.strategy", ["shadow", "direct"], SHORT)
    write_comparison(str(root / "cmp"), "kvm.strategy", results)
    run_sweep(default_scenario(), ["kvm.strategy=shadow,direct",
                                   "vm.0.process.0.workload.pages=16,32"],
              out_dir=str(root / "sweep"), workers=1, overrides=SHORT[::2])
    shutil.copytree(root / "sweep", root / "sweep_csv")
    rows = read_table(str(root / "sweep"))
    os.remove(root / "sweep_csv" / "results.parquet")
    with open(root / "sweep_csv" / "results.csv", "w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    emu.study.run("pfn_cache_sizing", quick=True, out=str(root / "study"))
    for d in ("cmp", "cmp/direct", "sweep", "sweep_csv", "study"):
        write_report(root / d, root / "out.html", plots=False)       # each is reportable
    return root


def report_or_one_line(folder, plots_too: bool = False) -> bool:
    """Make the report of ``folder``: True if written, False if refused in one
    line; anything else propagates."""
    try:
        write_report(folder, os.path.join(os.path.dirname(folder), "out.html"), plots=plots_too)
    except EmuError as err:
        msg = str(err)
        assert msg.startswith("report: ") and "\n" not in msg and len(msg) < 600, msg
        assert "Traceback" not in msg
        return False
    return True


class Damaged:
    """Write ``data`` over ``path`` for the duration of a ``with``; put the
    original bytes back after."""

    def __init__(self, path, data: bytes):
        self.path, self.data = str(path), data

    def __enter__(self):
        with open(self.path, "rb") as f:
            self.original = f.read()
        os.unlink(self.path)
        with open(self.path, "wb") as f:
            f.write(self.data)
        return self.path

    def __exit__(self, *exc):
        os.unlink(self.path)
        with open(self.path, "wb") as f:
            f.write(self.original)


# -- damaging bytes and JSON -----------------------------------------------------------------

def wrong_value(rng: random.Random):
    """A value of some type or range no key of a summary has."""
    return rng.choice([
        None, True, False, -1, -(2 ** 70), 2 ** 64, 10 ** 30, 0, 1.5, -0.5, math.nan, math.inf,
        -math.inf, 1e308, "", "text", "x" * rng.choice([100, 100_000]), [], [1, "a"], {},
        {"a": 1}, [[[[]]]], "1", "null", {"count": "many"},
    ])


def _children(node) -> list:
    if isinstance(node, dict):
        return list(node)
    if isinstance(node, list):
        return list(range(len(node)))
    return []


def damage_json(doc, rng: random.Random):
    """One random damage to a JSON document (in place when it is a container):
    a key removed, renamed, or given a wrong value, somewhere on a random descent."""
    parent, key, node = None, None, doc
    while _children(node) and (parent is None or rng.random() < 0.75):
        parent, key = node, rng.choice(_children(node))
        node = parent[key]
    if parent is None:
        return wrong_value(rng)
    r = rng.random()
    if r < 0.3 and isinstance(parent, dict):
        del parent[key]
    elif r < 0.4 and isinstance(parent, dict):
        parent[str(key) + rng.choice(["_", "s", " "])] = parent.pop(key)
    elif r < 0.5 and isinstance(parent, list):
        parent.clear() if rng.random() < 0.5 else parent.append(wrong_value(rng))
    elif r < 0.6 and isinstance(node, (int, float)) and not isinstance(node, bool):
        parent[key] = rng.choice([-node - 1, node * 10 ** rng.randint(3, 25), float(node) + 0.5,
                                  str(node)])
    else:
        parent[key] = wrong_value(rng)
    return doc


def damage_bytes(data: bytes, rng: random.Random) -> bytes:
    """Truncated, bytes flipped, a piece cut out, or random bytes."""
    r = rng.random()
    if r < 0.35:
        return data[:rng.randint(0, max(0, len(data) - 1))]
    if r < 0.7:
        b = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            if b:
                b[rng.randrange(len(b))] = rng.randrange(256)
        return bytes(b)
    if r < 0.85 and len(data) > 2:
        i = rng.randrange(len(data))
        return data[:i] + data[i + rng.randint(1, 64):]
    return rng.randbytes(rng.choice([0, 1, 8, 100, 5000]))


def damaged_json_file(path, rng: random.Random) -> bytes:
    """The bytes of ``path``'s JSON damaged: as a document (mostly) or as bytes."""
    with open(path, "rb") as f:
        data = f.read()
    if rng.random() < 0.75:
        doc = json.loads(data)
        for _ in range(rng.choice([1, 1, 1, 2, 3])):
            doc = damage_json(doc, rng)
        return json.dumps(doc).encode()
    return damage_bytes(data, rng)


# -- summary.json, comparison.json, a sweep's summaries ----------------------------------------

@fuzz(900)
@given(seed=st.integers(0, 2 ** 32 - 1))
def test_fuzz_damaged_summary(base, seed):
    rng = random.Random(seed)
    path = base / "cmp" / "direct" / "summary.json"
    with Damaged(path, damaged_json_file(path, rng)):
        report_or_one_line(str(base / "cmp" / "direct"))


@fuzz(600)
@given(seed=st.integers(0, 2 ** 32 - 1))
def test_fuzz_damaged_comparison(base, seed):
    rng = random.Random(seed)
    path = base / "cmp" / "comparison.json"
    with Damaged(path, damaged_json_file(path, rng)):
        report_or_one_line(str(base / "cmp"))


@fuzz(300)
@given(seed=st.integers(0, 2 ** 32 - 1))
def test_fuzz_damaged_run_summary_of_a_comparison(base, seed):
    """A run's own summary.json damaged (or only edited: it then differs from
    its copy in comparison.json), or its folder named wrongly in comparison.json."""
    rng = random.Random(seed)
    if rng.random() < 0.2:
        path = base / "cmp" / "comparison.json"
        doc = json.loads(path.read_bytes())
        doc["runs"][rng.randrange(2)]["dir"] = rng.choice(
            ["gone", "", ".", "..", "../cmp", "direct/", "shadow", "direct", 5, None])
        data = json.dumps(doc).encode()
    else:
        path = base / "cmp" / rng.choice(["direct", "shadow"]) / "summary.json"
        data = damaged_json_file(path, rng)
    with Damaged(path, data):
        report_or_one_line(str(base / "cmp"))


@fuzz(300)
@given(seed=st.integers(0, 2 ** 32 - 1))
def test_fuzz_damaged_study(base, seed):
    rng = random.Random(seed)
    folder = base / "study"
    if rng.random() < 0.3:
        path = folder / "runs" / rng.choice(os.listdir(folder / "runs")) / "summary.json"
    else:
        path = folder / "results.json"
    with Damaged(path, damaged_json_file(path, rng)):
        report_or_one_line(str(folder))


@fuzz(200)
@given(seed=st.integers(0, 2 ** 32 - 1))
def test_fuzz_damaged_sweep_plan_and_summaries(base, seed):
    rng = random.Random(seed)
    folder = base / rng.choice(["sweep", "sweep_csv"])
    if rng.random() < 0.3:
        path = folder / "sweep.json"
    else:
        path = folder / "runs" / rng.choice(os.listdir(folder / "runs")) / "summary.json"
    with Damaged(path, damaged_json_file(path, rng)):
        report_or_one_line(str(folder))


# -- the results table -----------------------------------------------------------------------

def damaged_parquet(path, rng: random.Random) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq
    with open(path, "rb") as f:
        data = f.read()
    if rng.random() < 0.4:
        return damage_bytes(data, rng)
    table = pq.read_table(path)
    name = rng.choice(table.column_names)
    r = rng.random()
    if r < 0.3:
        table = table.drop([name])
    else:
        n = table.num_rows
        column = rng.choice([
            pa.array([rng.choice(["x", "", "x" * 1000])] * n),
            pa.array([rng.choice([-1, 2 ** 62, 0])] * n, pa.int64()),
            pa.array([rng.choice([math.nan, -0.5, 1e300])] * n, pa.float64()),
            pa.array([None] * n, pa.null()),
            pa.array([[1, 2]] * n),
            pa.array([{"a": 1}] * n),
            pa.array([b"\x00\xff"] * n, pa.binary()),
            pa.array([rng.choice(["../..", "a/b", "", "ok_id"])] * n),
        ])
        table = table.set_column(table.column_names.index(name), name, column)
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def damaged_csv(path, rng: random.Random) -> bytes:
    with open(path, "rb") as f:
        data = f.read()
    if rng.random() < 0.4:
        return damage_bytes(data, rng)
    rows = list(csv.reader(io.StringIO(data.decode())))
    i = rng.randrange(len(rows))
    j = rng.randrange(len(rows[i]))
    r = rng.random()
    if r < 0.25:
        for row in rows:
            if len(row) > j:
                del row[j]
    elif r < 0.4:
        rows[i] = rows[i][:j]
    else:
        rows[i][j] = rng.choice(["", "-1", "1.5", "nan", "inf", "true", "x" * 200_000, "../x",
                                 "\x00", "9" * 30, "[1, 2]", '"'])
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue().encode("utf-8", "surrogatepass")


@fuzz(700)
@given(seed=st.integers(0, 2 ** 32 - 1))
def test_fuzz_damaged_results_table(base, seed):
    rng = random.Random(seed)
    if rng.random() < 0.5:
        path = base / "sweep" / "results.parquet"
        data = damaged_parquet(path, rng)
    else:
        path = base / "sweep_csv" / "results.csv"
        data = damaged_csv(path, rng)
    with Damaged(path, data):
        report_or_one_line(str(path.parent))


# -- timeline.npz -----------------------------------------------------------------------------

def damaged_timeline(path, rng: random.Random) -> bytes:
    """A timeline with a member missing, of another dtype, shape or length, or out
    of range; an extra member; or the file's bytes damaged."""
    with open(path, "rb") as f:
        data = f.read()
    if rng.random() < 0.3:
        return damage_bytes(data, rng)
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    name = rng.choice(sorted(arrays))
    a = arrays[name]
    r = rng.random()
    if r < 0.15:
        del arrays[name]
    elif r < 0.3:
        arrays[name] = a.astype(rng.choice([np.float64, np.bool_, np.uint8, np.int8, "U3"]))
    elif r < 0.45:
        arrays[name] = rng.choice([a[:len(a) // 2], a.reshape(-1), a[..., None], a[:0],
                                   np.zeros((0, 0), a.dtype)])
    elif r < 0.65 and a.size:
        b = a.copy()
        b.flat[rng.randrange(b.size)] = rng.choice([-5, 7, 2 ** 15 - 1, -1, 0])
        arrays[name] = b
    elif r < 0.75 and a.size:
        arrays[name] = a[::-1].copy()
    elif r < 0.85:
        arrays["meta"] = np.array(["recorded elsewhere"])
    else:
        arrays[name] = np.array([{"a": 1}], dtype=object)
    sink = io.BytesIO()
    np.savez(sink, **arrays) if rng.random() < 0.5 else np.savez_compressed(sink, **arrays)
    return sink.getvalue()


@fuzz(500)
@given(seed=st.integers(0, 2 ** 32 - 1))
def test_fuzz_damaged_timeline(base, seed):
    rng = random.Random(seed)
    folder = base / "cmp" / rng.choice(["direct", "shadow"])
    path = folder / "timeline.npz"
    with Damaged(path, damaged_timeline(path, rng)):
        if report_or_one_line(str(base / "cmp")) and rng.random() < 0.15:
            # a timeline that passed the checks is drawn, CPU by CPU
            res = load_results(folder)
            (label, s), = res["runs"]
            tl = res["timelines"][label]
            for cpu in sorted(set(tl["cpu"].tolist())):
                plots.occupancy_timeline(s, tl, folder.parent / "occ", cpu, formats=("png",),
                                         dpi=20)


# -- damaged but readable: every plot ---------------------------------------------------------

@fuzz(3)
@given(seed=st.integers(0, 2 ** 32 - 1))
def test_damaged_summaries_that_pass_are_plotted(base, seed):
    rng = random.Random(seed)
    path = base / "cmp" / "comparison.json"
    for _ in range(200):        # a damage the checks let through (a key the report does
        data = damaged_json_file(path, rng)        # not read, a value in range)
        with Damaged(path, data):
            try:
                load_results(base / "cmp")
            except EmuError:
                continue
            assert report_or_one_line(str(base / "cmp"), plots_too=True)
            return


# -- through the command line -----------------------------------------------------------------

@pytest.mark.parametrize("case", ["summary", "comparison", "run-summary", "table", "timeline",
                                  "label"])
def test_cli_exit_status_and_one_line(base, case, tmp_path):
    d = tmp_path / "d"
    if case in ("summary", "timeline"):
        shutil.copytree(base / "cmp" / "direct", d)
    elif case in ("comparison", "run-summary", "label"):
        shutil.copytree(base / "cmp", d)
    else:
        shutil.copytree(base / "sweep", d)
    if case == "summary":
        s = json.loads((d / "summary.json").read_text())
        s["tlb"]["guest"]["misses"] = "many"
        (d / "summary.json").write_text(json.dumps(s))
        words = "summary.json: tlb.guest.misses: expected a count"
    elif case == "comparison":
        c = json.loads((d / "comparison.json").read_text())
        del c["runs"][1]["summary"]["exits"]
        (d / "comparison.json").write_text(json.dumps(c))
        words = "comparison.json: runs[1].summary.exits: missing"
    elif case == "run-summary":
        (d / "shadow" / "summary.json").write_bytes(b"")
        words = "shadow/summary.json: an empty file"
    elif case == "table":
        (d / "results.parquet").write_bytes((d / "results.parquet").read_bytes()[:300])
        words = "results.parquet: cannot read the results table"
    elif case == "timeline":
        with zipfile.ZipFile(d / "timeline.npz", "w") as z:
            z.writestr("time.npy", b"\x93NUMPY garbage")
        words = "timeline.npz: cannot read the timeline"
    else:       # not damaged: a label of 100,000 characters, shortened
        c = json.loads((d / "comparison.json").read_text())
        c["runs"][0]["value"] = "x" * 100_000
        (d / "comparison.json").write_text(json.dumps(c))
        words = None
    p = subprocess.run([sys.executable, "-m", "emu.cli", "report", str(d)],
                       capture_output=True, text=True, timeout=120)
    if words is None:
        assert p.returncode == 0, p.stderr
        page = (d / "report.html").read_text(encoding="utf-8")
        assert "x" * 100 not in page.split('<h2 id="config">')[0]    # shortened
        assert "xxxx…xxxx" in page
        return
    assert p.returncode == 2 and p.stdout == "", (p.returncode, p.stdout, p.stderr)
    assert p.stderr.count("\n") == 1 and "Traceback" not in p.stderr, p.stderr
    assert p.stderr.startswith("emu: error: report: ") and words in p.stderr, p.stderr
    assert not (d / "report.html").exists()

"""``emu run`` and ``emu compare`` end to end (``emu/cli/run.py``).

1. Flags mean what they say: several ``--vary`` run the product of their
   values; ``--plots`` without ``--out`` is refused; every ``--set`` of the
   default ``emu run`` is applied or refused (its rows are the 440 designs as
   they ran, each labelled with its commit, and the proposal; ``kvm.strategy``
   narrows the comparison, a typo is refused naming the choices, rows the
   settings cannot run are left out with a note, rows that become one design
   run once).
2. Output folders cannot collide, escape or mix: run folders named by a safe,
   unique slug; a bad ``--out`` refused in one line before the simulation
   (a scenario of minutes shows it: the refusal comes within seconds); another
   kind of result refused unless ``--force``; a run killed at any moment
   while it replaces an older result leaves the old set or the new one, and
   the next run removes what the kill left.
3. First contact: the banner is the configuration's; tables fit the terminal
   (COLUMNS, 80 when not a terminal) and ``--wide`` restores them.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from clirun import EMU, ROOT, assert_usage_error, cli_env, popen_cli, run_cli
from emu.codes import EXIT_CATEGORIES
from emu.report.columns import columns
from emu.report.text import format_comparison, format_run
from emu.errors import ConfigError
from emu.run import outdir
from emu.run.files import remove_unheld
from emu.run.outdir import folder_names

SHORT = "duration_ms = 0.05\n"
#: a scenario of minutes: a refusal that comes in seconds came before the simulation
LONG = "duration_ms = 100000\n"
QUICK = 60                  # seconds a refusal may take, start-up of a loaded machine included
FAST_DEFAULT = ["--set", "duration_ms=0.05"]


@pytest.fixture
def short(tmp_path) -> Path:
    p = tmp_path / "s.toml"
    p.write_text(SHORT)
    return p


@pytest.fixture
def long(tmp_path) -> Path:
    p = tmp_path / "long.toml"
    p.write_text(LONG)
    return p


def json_of(proc) -> dict:
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def note_of(proc, width: int = 80) -> str:
    """The one note on stderr, wrapped as prose at ``width`` columns (its
    lines after the first indented), as one line."""
    lines = proc.stderr.rstrip("\n").split("\n")
    assert lines[0].startswith("emu: note: "), proc.stderr
    assert all(line.startswith("  ") for line in lines[1:]), proc.stderr
    assert all(len(line) <= width for line in lines), proc.stderr
    return " ".join(proc.stderr.split())


def snapshot(d: Path) -> dict:
    """{relative path: bytes, None for a folder, the target of a symlink}."""
    return {str(p.relative_to(d)): ("->", os.readlink(p)) if p.is_symlink() else
            None if p.is_dir() else p.read_bytes() for p in sorted(d.rglob("*"))}


def leftovers(parent: Path) -> list:
    return [p.name for p in parent.iterdir() if p.name.startswith(".") and
            (".emu-" in p.name or p.name.endswith(".tmp"))]


# -- 1. flags that mean what they say ---------------------------------------------------------

def test_repeated_vary_runs_the_product(short):
    c = json_of(run_cli("compare", short, "--vary", "kvm.strategy=shadow,direct",
                        "--vary", "seed=1,2", "--json"))
    assert c["keys"] == ["kvm.strategy", "seed"]
    got = [(r["values"]["kvm.strategy"], r["values"]["seed"]) for r in c["runs"]]
    assert got == [("shadow", "1"), ("shadow", "2"), ("direct", "1"), ("direct", "2")]
    for r in c["runs"]:
        assert r["summary"]["config"]["kvm"]["strategy"] == r["values"]["kvm.strategy"]
        assert str(r["summary"]["seed"]) == r["values"]["seed"]
        assert r["value"] == f"kvm.strategy={r['values']['kvm.strategy']}, seed={r['values']['seed']}"
    table = run_cli("compare", short, "--vary", "kvm.strategy=shadow,direct", "--vary", "seed=1,2")
    assert table.returncode == 0, table.stderr
    assert table.stdout.count("kvm.strategy=direct, seed=2") >= 1
    assert "product" in run_cli("compare", "--help").stdout


@pytest.mark.parametrize("argv,needles", [
    (["--vary", "seed=1,2", "--vary", "seed=3"], ("seed", "twice")),
    (["--vary", "seed=1,2", "--set", "seed=3"], ("seed", "--set")),
    (["--vary", "seed=1,1"], ("'1'", "twice")),
    (["--vary", "sim.warmup_ms=0.5,5e-1"], ("'0.5' and '5e-1' are the same value",)),
    (["--vary", "kvm.strategy=shadow,'shadow'"], ("'shadow' and \"'shadow'\" are the same",)),
    (["--vary", "machine.tlb_entries=64,true"], ("machine.tlb_entries",)),   # not the same value
    (["--vary", "host_task=[],[ ]"], ("'[]' and '[ ]' are the same value",)),
    (["--vary", "duration_ms=nan,1"], ("expected a finite number, got nan",)),   # a KeyError
    (["--vary", "seed=1,,2"], ("seed", "empty value")),
], ids=["key-twice", "key-also-set", "value-twice", "number-written-twice", "text-quoted-too",
        "bool-is-not-one", "list-written-twice", "nan", "empty-value"])
def test_vary_refuses_what_it_would_drop(long, argv, needles):
    assert_usage_error(run_cli("compare", long, *argv, timeout=QUICK), *needles)


def test_vary_names_the_point_it_cannot_run(short):
    """As emu sweep names its grid point: the product's bad point, not only the key."""
    p = run_cli("compare", short, "--vary", "kvm.strategy=direct,e500-flush-on-put",
                "--vary", "machine.core=440,e500", timeout=QUICK)
    assert assert_usage_error(p) == (
        "emu: error: --vary kvm.strategy=e500-flush-on-put, machine.core=440: kvm.strategy: "
        "'e500-flush-on-put' needs machine.core = 'e500' (machine.core is '440')\n")


def test_plots_without_out_is_refused_before_running(long):
    assert_usage_error(run_cli("compare", long, "--vary", "seed=1,2", "--plots", timeout=QUICK),
                       "--plots", "--out")


def test_default_run_refuses_a_strategy_typo_naming_the_choices():
    err = assert_usage_error(run_cli("run", "--set", "kvm.strategy=shadw", timeout=QUICK),
                             "'shadw'")
    for name in ("shadow", "direct-save-on-switch", "e500-shadow-ids"):
        assert f"'{name}'" in err


#: The default comparison: the 440 designs as KVM shipped them, then the proposal.
AS_THEY_RAN = ["shadow 2.6.26 (guest-tid, C)", "shadow-modified 83aae4a8 (guest-tid, C)",
               "shadow-modified 49dd2c49 (swap-pid, C)", "shadow-modified 2.6.28 (tid01, C)",
               "direct 7924bd41 (tid01, C)", "direct-save-on-switch 67577927 (tid01, C)",
               "proposal: direct + asm + pfn-cache"]


def test_default_run_shows_the_designs_as_they_ran_next_to_the_proposal(tmp_path):
    out = tmp_path / "cmp"
    c = json_of(run_cli("run", *FAST_DEFAULT, "--json", "--out", out))
    assert c["key"] == "design" and [r["value"] for r in c["runs"]] == AS_THEY_RAN
    kvm = [{k: r["summary"]["config"]["kvm"][k] for k in ("strategy", "tid_scheme", "handler",
                                                          "pfn_source")} for r in c["runs"]]
    assert [tuple(k.values()) for k in kvm] == [
        ("shadow", "guest-tid", "c", "gup"), ("shadow-modified", "guest-tid", "c", "gup"),
        ("shadow-modified", "swap-pid", "c", "gup"), ("shadow-modified", "tid01", "c", "gup"),
        ("direct", "tid01", "c", "gup"), ("direct-save-on-switch", "tid01", "c", "gup"),
        ("direct", "tid01", "asm", "pfn-cache")]
    for r in c["runs"]:                          # each row's label is its summary's design
        d = r["summary"]["design"]
        assert d["label"] in r["value"] and not d["hypothetical"]
        assert (out / r["dir"] / "summary.json").is_file()
    assert [r["summary"]["design"]["commit"] for r in c["runs"]] == [
        "2.6.26", "83aae4a8", "49dd2c49", "2.6.28", "7924bd41", "67577927", ""]
    text = run_cli("run", *FAST_DEFAULT, "--wide")
    assert text.returncode == 0, text.stderr
    banner = text.stdout.split("\n\n")[0]
    assert ("the C miss handler and the gup pfn source in six runs; the asm miss handler and "
            "the pfn-cache pfn source in one run" in banner), banner
    rows = [line.split("  ")[0] for line in text.stdout.split("\n\n")[1].splitlines()[2:]]
    assert rows == AS_THEY_RAN
    assert "as shipped" not in text.stdout       # every label already says it
    help_text = " ".join(run_cli("run", "--help").stdout.split())
    assert all(label in help_text for label in AS_THEY_RAN), help_text


def test_default_run_narrows_to_the_rows_of_the_strategy_set():
    """--set kvm.strategy=NAME runs that design's rows as they shipped (it had
    run the scenario's pfn cache: a machine no kernel shipped, unlike its row)."""
    c = json_of(run_cli("run", *FAST_DEFAULT, "--set", "kvm.strategy=shadow-modified", "--json"))
    assert [r["value"] for r in c["runs"]] == AS_THEY_RAN[1:4]
    for r in c["runs"]:
        assert r["summary"]["config"]["kvm"]["strategy"] == "shadow-modified"
        assert r["summary"]["design"]["hypothetical"] is False
    c = json_of(run_cli("run", *FAST_DEFAULT, "--set", "kvm.strategy=shadow", "--json"))
    assert [r["value"] for r in c["runs"]] == AS_THEY_RAN[:1]
    # a design of no row runs as the scenario sets it, and is named as it runs
    c = json_of(run_cli("run", *FAST_DEFAULT, "--set", "kvm.strategy=direct-noflush", "--json"))
    assert [r["value"] for r in c["runs"]] == [
        "hypothetical: direct-noflush 7924bd41 without _tlbia (tid01, C) + pfn-cache"]
    text = run_cli("run", *FAST_DEFAULT, "--set", "kvm.strategy=direct-noflush", "--wide").stdout
    assert "each row's design" not in text          # the label names its commit
    # the row's keys all set: its folder is named by its design, where it was
    # named by the hash of nothing, run-e3b0c442
    c = json_of(run_cli("run", *FAST_DEFAULT, "--set", "kvm.strategy=shadow", "--set",
                        "kvm.handler=c", "--set", "kvm.pfn_source=gup", "--json"))
    assert [(r["value"], r["dir"]) for r in c["runs"]] == [(AS_THEY_RAN[0], "shadow")]


def test_default_run_applies_every_set_and_labels_the_rows_as_they_ran():
    p = run_cli("run", *FAST_DEFAULT, "--set", "seed=7", "--set", "kvm.handler=asm", "--json")
    c = json_of(p)
    # a design run with a handler it never shipped with is a machine that never
    # existed: hypothetical, but for the proposal
    assert [r["value"] for r in c["runs"]] == [
        "hypothetical: shadow 2.6.26 (guest-tid, asm)",
        "hypothetical: shadow-modified 83aae4a8 (guest-tid, asm)",
        "hypothetical: shadow-modified 49dd2c49 (swap-pid, asm)",
        "hypothetical: shadow-modified 2.6.28 (tid01, asm)",
        "hypothetical: direct 7924bd41 (tid01, asm)",
        "hypothetical: direct-save-on-switch 67577927 (tid01, asm)",
        "proposal: direct + asm + pfn-cache"]
    assert [r["summary"]["design"]["hypothetical"] for r in c["runs"]] == [True] * 6 + [False]
    for r in c["runs"]:
        s = r["summary"]
        assert (s["seed"], s["config"]["kvm"]["handler"], s["config"]["duration_ms"]) == \
            (7, "asm", 0.05)
        assert "kvm.handler" not in r["values"]  # the --set's, not the row's
    assert p.stderr.strip() == ""


def test_default_run_appends_a_host_task_after_its_own_as_a_file_would():
    """The built-in scenario holds one host task: host_task.1 appends a second
    (it was refused as past an array of none), as emu config dump has it."""
    sets = ["--set", "host_task.1.run_us=100", "--set", "host_task.1.name=extra"]
    c = json_of(run_cli("run", *FAST_DEFAULT, *sets, "--json"))
    for r in c["runs"]:
        assert [(t["name"], t["run_us"]) for t in r["summary"]["config"]["host_task"]] == \
            [("noise", 200.0), ("extra", 100.0)]
    assert_usage_error(run_cli("run", *FAST_DEFAULT, "--set", "host_task.2.run_us=100"),
                       "host_task.2: index 2 is out of range: 'host_task' has 1 item(s) (use "
                       "index 1 to append one)")


def test_default_run_applies_a_pfn_cache_key_to_the_rows_with_the_cache_and_says_so():
    p = run_cli("run", *FAST_DEFAULT, "--set", "kvm.pfn_cache_entries=128", "--json")
    runs = json_of(p)["runs"]
    assert [r["value"] for r in runs] == AS_THEY_RAN          # no row left out
    assert [r["summary"]["config"]["kvm"]["pfn_cache_entries"] for r in runs] == [256] * 6 + [128]
    assert note_of(p) == (
        "emu: note: --set kvm.pfn_cache_entries does not apply to " + ", ".join(AS_THEY_RAN[:5])
        + " and " + AS_THEY_RAN[5] + " (it sizes the pfn cache, and kvm.pfn_source is 'gup'): "
        "they run without it")
    # where no row has the cache, it does nothing anywhere: refused as in a file
    assert_usage_error(run_cli("run", *FAST_DEFAULT, "--set", "kvm.pfn_cache_entries=128",
                               "--set", "kvm.pfn_source=gup", timeout=QUICK),
                       "emu: error: kvm.pfn_cache_entries: it sizes the pfn cache, and "
                       "kvm.pfn_source is 'gup'; set pfn_source = 'pfn-cache' or leave it 256")
    for key in ("machine.hwater=40", "sim.miss_log_max=5"):
        assert_usage_error(run_cli("run", *FAST_DEFAULT, "--set", "machine.core=e500", "--set",
                                   key, timeout=QUICK), key.partition("=")[0] + ": it bounds")


def test_default_run_runs_rows_that_became_one_design_once_with_a_note():
    p = run_cli("run", *FAST_DEFAULT, "--set", "kvm.tid_scheme=tid01", "--json")
    c = json_of(p)
    assert [r["value"] for r in c["runs"]] == [
        "shadow-modified 2.6.28 (tid01, C)", "direct 7924bd41 (tid01, C)",
        "direct-save-on-switch 67577927 (tid01, C)", "proposal: direct + asm + pfn-cache"]
    note = note_of(p)
    assert ("shadow 2.6.26 (guest-tid, C) left out: kvm.tid_scheme: 'tid01' never ran with "
            "kvm.strategy 'shadow'" in note), note
    assert ("shadow-modified 83aae4a8 (guest-tid, C), shadow-modified 49dd2c49 (swap-pid, C) and "
            "shadow-modified 2.6.28 (tid01, C) are one design" in note), note


def test_default_run_leaves_out_the_designs_an_era_never_ran_with():
    p = run_cli("run", *FAST_DEFAULT, "--set", "kvm.tid_scheme=guest-tid", "--json")
    c = json_of(p)
    assert [r["value"] for r in c["runs"]] == ["shadow 2.6.26 (guest-tid, C)",
                                               "shadow-modified 83aae4a8 (guest-tid, C)"]
    note = note_of(p)
    # every row left out is named, the proposal too (a direct row: it hid behind "direct")
    assert note.startswith(
        "emu: note: direct 7924bd41 (tid01, C) and proposal: direct + asm + pfn-cache left "
        "out: kvm.tid_scheme: 'guest-tid' never ran with kvm.strategy 'direct'"), note
    assert "; direct-save-on-switch 67577927 (tid01, C) left out: " in note, note
    wide = run_cli("run", *FAST_DEFAULT, "--set", "kvm.tid_scheme=guest-tid", "--json", "--wide")
    assert wide.stderr.count("\n") == 1 and " ".join(wide.stderr.split()) == note


def test_default_run_names_the_proposal_when_it_leaves_it_out():
    p = run_cli("run", *FAST_DEFAULT, "--set", "kvm.tid_scheme=swap-pid", "--json")
    assert [r["value"] for r in json_of(p)["runs"]] == ["shadow-modified 49dd2c49 (swap-pid, C)"]
    assert "direct 7924bd41 (tid01, C) and proposal: direct + asm + pfn-cache left out: " \
        "kvm.tid_scheme: 'swap-pid' never ran with kvm.strategy 'direct'" in note_of(p)


def test_default_run_on_the_e500_is_its_own_designs_then_the_hypothetical_ones():
    p = run_cli("run", *FAST_DEFAULT, "--set", "machine.core=e500", "--json")
    c = json_of(p)
    assert [r["values"]["kvm.strategy"] for r in c["runs"]] == [
        "e500-flush-on-put", "e500-shadow-ids", "shadow-modified", "direct", "direct"]
    assert [r["summary"]["config"]["kvm"]["handler"] for r in c["runs"]] == [
        "c", "c", "c", "c", "asm"]
    assert all(r["summary"]["config"]["machine"]["core"] == "e500" for r in c["runs"])
    # what shipped on the e500 is labelled with its commit; the rest is hypothetical
    assert c["runs"][0]["value"].startswith("e500-flush-on-put 46f43c6e")
    assert c["runs"][1]["value"].startswith("e500-shadow-ids 0164c0f0")
    assert all(r["value"].startswith("hypothetical: ") for r in c["runs"][2:])
    assert p.stderr == ""
    # a core whose tlbwe ignores the index leaves the shadow TLB out, saying why
    p = run_cli("run", *FAST_DEFAULT, "--set", "machine.core=e500", "--set",
                "machine.tlb_index=hardware", "--json")
    assert [r["values"]["kvm.strategy"] for r in json_of(p)["runs"]] == [
        "e500-flush-on-put", "e500-shadow-ids", "direct", "direct"]
    note = note_of(p)
    assert note.startswith("emu: note: hypothetical: shadow-modified (C) left out") and \
        "tlb_index = 'hardware'" in note, note
    # the designs e500 kernels shipped did not run on such a core: hypothetical, saying why
    assert [r["value"] for r in json_of(p)["runs"]] == [
        "hypothetical: e500-flush-on-put 46f43c6e (C) on tlb_index=hardware",
        "hypothetical: e500-shadow-ids 0164c0f0 (C) on tlb_index=hardware",
        "hypothetical: direct (C) on tlb_index=hardware",
        "hypothetical: proposal: direct + asm + pfn-cache on tlb_index=hardware"]


def test_default_run_never_labels_a_design_as_it_shipped_hypothetical():
    # on the 440 every row shipped or is the proposal: kvm.hypothetical does nothing
    assert_usage_error(run_cli("run", *FAST_DEFAULT, "--set", "kvm.hypothetical=true",
                               timeout=QUICK),
                       "emu: error: kvm.hypothetical: it allows only a TID era a design never "
                       "ran with, or any on the e500: a design as it shipped, or the proposal, "
                       "is not hypothetical; shadow 2.6.26 (guest-tid, C) runs as set without "
                       "it: leave it false")
    # on the e500 the designs KVM shipped run without it, and the note says so
    p = run_cli("run", *FAST_DEFAULT, "--set", "machine.core=e500", "--set",
                "kvm.hypothetical=true", "--json")
    runs = json_of(p)["runs"]
    assert [r["value"] for r in runs[:2]] == ["e500-flush-on-put 46f43c6e (C)",
                                               "e500-shadow-ids 0164c0f0 (C)"]
    assert [r["summary"]["design"]["hypothetical"] for r in runs] == [False] * 2 + [True] * 3
    assert note_of(p) == (
        "emu: note: --set kvm.hypothetical does not apply to e500-flush-on-put 46f43c6e (C) "
        "and e500-shadow-ids 0164c0f0 (C) (it allows only a TID era a design never ran with, "
        "or any on the e500: a design as it shipped, or the proposal, is not hypothetical): "
        "they run without it")


def test_default_run_refuses_a_design_the_core_cannot_run():
    assert_usage_error(run_cli("run", "--set", "machine.core=e500", "--set",
                               "kvm.strategy=direct-save-on-switch", timeout=QUICK),
                       "'direct-save-on-switch'", "e500")
    assert_usage_error(run_cli("run", "--set", "machine.tlb_index=hardware", "--set",
                               "kvm.strategy=shadow", timeout=QUICK),
                       "'shadow'", "tlb_index = 'hardware'")


# -- 2. output folders ---------------------------------------------------------------------

def test_run_folders_are_safe_unique_slugs(short, tmp_path):
    values = ["a/b", "a_b", "..", "A_B", ".hidden", "x/../../escape", "comparison.json", "-n"]
    out = tmp_path / "box" / "out"
    c = json_of(run_cli("compare", short, "--vary", "name=" + ",".join(values), "--out", out,
                        "--json"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["box", "s.toml"]   # nothing escaped
    assert [p.name for p in (tmp_path / "box").iterdir()] == ["out"]
    dirs = [r["dir"] for r in c["runs"]]
    assert [r["value"] for r in c["runs"]] == values              # the labels are kept
    assert len({d.lower() for d in dirs}) == len(values)
    on_disk = sorted(p.name for p in out.iterdir())
    assert on_disk == sorted(dirs + ["comparison.json"])
    for r in c["runs"]:
        assert not r["dir"].startswith((".", "-")) and "/" not in r["dir"]
        summary = json.loads((out / r["dir"] / "summary.json").read_text())
        assert summary["config"]["name"] == r["value"]


def test_folder_names():
    assert folder_names(["shadow", "direct"]) == ["shadow", "direct"]
    a, b = folder_names(["a/b", "a_b"])
    assert b == "a_b" and a.startswith("a_b-") and len(a) == len("a_b-") + 8
    assert folder_names(["a/b", "a_b"]) == [a, b]                 # stable
    for name in folder_names(["..", ".", "", "/", "x" * 5000, "A", "a", "runs", "s.json"]):
        assert name not in (".", "..", "", "runs", "s.json") and not name.startswith(".")
        assert len(name) <= 73 and all(c.isalnum() or c in "._-" for c in name)
    lower = [n.lower() for n in folder_names(["A", "a", "a-" + "0" * 8])]
    assert len(set(lower)) == 3
    assert len(set(folder_names(["x"] * 3))) == 3


def _symlink_loop(d: Path) -> str:
    (d / "loop").symlink_to(d / "loop")
    return str(d / "loop" / "out")


def _a_file(d: Path) -> str:
    (d / "file").write_text("x")
    return str(d / "file")


def _foreign_files(d: Path) -> str:
    (d / "mine").mkdir()
    (d / "mine" / "notes.txt").write_text("mine")
    return str(d / "mine")


def _inside_a_result(d: Path) -> str:
    (d / "res").mkdir()
    (d / "res" / "summary.json").write_text('{"emu_version": "0", "config": {}}')
    return str(d / "res" / "sub")


def _inside_a_stopped_sensitivity_study(d: Path) -> str:
    (d / "sens" / "runs" / "a1b2").mkdir(parents=True)        # its lock and a run done
    (d / "sens" / ".sweep.lock").write_text("")
    return str(d / "sens" / "runs" / "a1b2")


BAD_OUT = {
    "empty": (lambda d: "", ("--out", "empty")),
    "name-too-long": (lambda d: str(d / ("n" * 300)), ("too long",)),
    "path-too-long": (lambda d: str(d / "/".join(["p" * 200] * 25)), ("too long",)),
    "under-proc": (lambda d: "/proc/emu-out", ("/proc",)),
    "symlink-loop": (_symlink_loop, ("symlink loop",)),
    "a-file": (_a_file, ("not a directory",)),
    "foreign-files": (_foreign_files, ("notes.txt", "did not write")),
    "current-folder": (lambda d: ".", ("current folder",)),
    "mount-point": (lambda d: "/proc", ("mount point",)),
    "inside-a-result": (_inside_a_result,
                        ("res/sub: inside", "which holds a run; write outside it")),
    "inside-a-stopped-sensitivity-study": (_inside_a_stopped_sensitivity_study,
                                           ("which holds a sensitivity study",)),
}


@pytest.mark.parametrize("command", ["run", "compare"])
@pytest.mark.parametrize("case", list(BAD_OUT))
def test_bad_out_is_refused_in_one_line_before_the_simulation(long, tmp_path, case, command):
    make, needles = BAD_OUT[case]
    out = make(tmp_path)
    before = snapshot(tmp_path)
    argv = [command, long] + (["--vary", "seed=1,2"] if command == "compare" else [])
    p = run_cli(*argv, "--out", out, cwd=tmp_path, timeout=QUICK)
    assert_usage_error(p, *needles)
    assert snapshot(tmp_path) == before


def _deep(parent: Path, length: int) -> Path:
    """A folder path of ``length`` bytes below ``parent``, made of names of at
    most 200 bytes; nothing is created."""
    left = length - len(str(parent)) - 1
    parts = []
    while left > 0:
        parts.append("p" * min(200, left))
        left -= len(parts[-1]) + 1
    return parent.joinpath(*parts)


def test_out_with_no_room_for_what_emu_makes_there_is_refused_before_the_simulation(
        long, short, tmp_path):
    # the path itself fits, the temporary folder beside it and its files do not
    # (4,095 bytes at most): '.<name>.emu-new-XXXXXXXX/.<file>.XXXXXXXX.tmp.<ext>'
    before = snapshot(tmp_path)
    out = _deep(tmp_path, 4030) / ("m" * 39)
    assert len(str(out)) < 4095
    made = f".{'m' * 39}.emu-new-XXXXXXXX/.misses.parquet.XXXXXXXX.tmp.parquet"
    assert_usage_error(run_cli("run", long, "--out", out, timeout=QUICK),
                       "the path is too long for what emu makes there",
                       f"('{made}' makes it {len(str(out.parent / made))} bytes, the limit is "
                       f"4095)")
    assert snapshot(tmp_path) == before
    # a comparison: room for each run's folder (a slug of 64 characters and a hash) too
    out = _deep(tmp_path, 3960) / ("m" * 39)
    made = (f".{'m' * 39}.emu-new-XXXXXXXX/{folder_names(['n' * 100])[0]}/"
            f".misses.parquet.XXXXXXXX.tmp.parquet")
    assert_usage_error(run_cli("compare", long, "--vary", f"name={'n' * 100},b", "--out", out,
                               timeout=QUICK),
                       f"('{made}' makes it {len(str(out.parent / made))} bytes")
    assert snapshot(tmp_path) == before
    p = run_cli("compare", short, "--vary", "name=a,b", "--out", out)   # short names fit
    assert p.returncode == 0, p.stderr
    assert sorted(x.name for x in out.iterdir()) == ["a", "b", "comparison.json"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_unwritable_out_is_refused_before_the_simulation(long, tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        assert_usage_error(run_cli("run", long, "--out", ro / "out", timeout=QUICK),
                           "cannot write")
    finally:
        ro.chmod(0o755)


def test_another_kind_of_result_is_refused_unless_force(short, tmp_path):
    out = tmp_path / "out"
    assert run_cli("compare", short, "--vary", "seed=1,2", "--out", out).returncode == 0
    before = snapshot(out)
    assert_usage_error(run_cli("run", short, "--out", out), "a comparison of seed over 2 runs",
                       "--force")
    assert snapshot(out) == before
    p = run_cli("run", short, "--out", out, "--force")
    assert p.returncode == 0, p.stderr
    names = sorted(x.name for x in out.iterdir())
    assert "summary.json" in names and "comparison.json" not in names
    assert all(not (out / n).is_dir() for n in names)             # no run folder of the comparison
    assert_usage_error(run_cli("compare", short, "--vary", "seed=1,2", "--out", out),
                       "a run", "--force")
    again = run_cli("run", short, "--set", "seed=3", "--out", out)   # a run replaces a run
    assert again.returncode == 0, again.stderr
    assert json.loads((out / "summary.json").read_text())["seed"] == 3
    sweep = tmp_path / "sweep"
    assert run_cli("sweep", short, "--grid", "seed=1,2", "--workers", "1", "--progress", "none",
                   "--out", sweep).returncode == 0
    assert_usage_error(run_cli("run", short, "--out", sweep), "a sweep", "2 runs")
    assert leftovers(tmp_path) == []


def test_a_study_or_sensitivity_folder_is_named_and_replaced_with_force(short, tmp_path):
    study, sens = tmp_path / "study", tmp_path / "sens"
    for argv in (["study", "pfn_cache_sizing", "--quick", "--out", study],
                 ["sensitivity", short, "--set", "duration_ms=1", "--compare",
                  "kvm.strategy=shadow,direct", "--costs", "exit_light", "--workers", "1",
                  "--progress", "none", "--out", sens]):
        p = run_cli(*argv)
        assert p.returncode == 0, p.stderr
    assert {".sweep.lock", "runs", "sensitivity.json"} <= {p.name for p in sens.iterdir()}
    for out, held in ((study, "the study 'pfn_cache_sizing' (quick, 6 runs)"),
                      (sens, "a sensitivity study of kvm.strategy=shadow,direct "
                             "(cycles_per_guest_access, oat, 4 runs)")):
        before = snapshot(out)
        assert_usage_error(run_cli("run", short, "--out", out),
                           f"--out {out}: holds {held}, not a run: pass --force")
        assert snapshot(out) == before
        p = run_cli("run", short, "--out", out, "--force")
        assert p.returncode == 0, p.stderr
        names = sorted(x.name for x in out.iterdir())          # the run alone, as one set
        assert "summary.json" in names and ".sweep.lock" not in names
        assert not any(x.is_dir() for x in out.iterdir())
    assert leftovers(tmp_path) == []


def test_a_folder_emu_did_not_write_is_kept_even_empty(short, tmp_path):
    out = tmp_path / "out"
    assert run_cli("compare", short, "--vary", "seed=1,2", "--out", out).returncode == 0
    (out / "mine").mkdir()
    before = snapshot(out)
    assert_usage_error(run_cli("compare", short, "--vary", "seed=1,2", "--out", out, "--force"),
                       f"--out {out}: holds 'mine'/, which emu did not write")
    assert snapshot(out) == before


#: Slows every atomic file write of the CLI and logs it, so that a test can kill
#: the process after any chosen file of a result set (on PYTHONPATH as sitecustomize).
SLOW_WRITES = """
import os, time
_log = os.environ.get("EMU_TEST_WRITE_LOG")
if _log:
    _replace = os.replace
    def replace(src, dst, *args, **kwargs):
        _replace(src, dst, *args, **kwargs)
        with open(_log, "a") as f:
            f.write(os.fspath(dst) + "\\n")
        time.sleep(0.3)
    os.replace = replace
"""


def _result_set(folder: Path) -> dict:
    """{file: bytes} of a run folder; run.json (its wall time varies) as a marker."""
    return {p.name: b"run.json" if p.name == "run.json" else p.read_bytes()
            for p in sorted(folder.iterdir())}


def test_a_killed_run_leaves_the_old_set_or_the_new_one(tmp_path):
    scenario = tmp_path / "t.toml"
    scenario.write_text(   # every file of the set depends on the seed
        "duration_ms = 0.5\n[sim]\ntimeline = true\n[[vm]]\n[[vm.process]]\n"
        "workload = { kind = 'working-set', pages = 3000, distribution = 'zipf' }\n"
        "[[host_task]]\nname = 'n'\nrun_us = 50\nsleep_us = 50\n")
    ref = {}
    for seed in (1, 2):
        p = run_cli("run", scenario, "--set", f"seed={seed}", "--out", tmp_path / f"ref{seed}")
        assert p.returncode == 0, p.stderr
        ref[seed] = _result_set(tmp_path / f"ref{seed}")
    old, new = ref[1], ref[2]
    assert set(old) == set(new) and "timeline.npz" in old
    assert all(old[n] != new[n] for n in old if n != "run.json"), "the seeds must tell the sets apart"

    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(SLOW_WRITES)
    log = tmp_path / "writes.log"
    env = cli_env(EMU_TEST_WRITE_LOG=log)
    env["PYTHONPATH"] = os.pathsep.join([str(hook), env["PYTHONPATH"]])
    box = tmp_path / "box"
    box.mkdir()
    target = box / "out"
    seen = set()
    for writes in range(len(old) + 1):        # 0: during the simulation; k: after the k-th file
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(tmp_path / "ref1", target)
        log.write_text("")
        p = popen_cli("run", scenario, "--set", "seed=2", "--out", target, env=env)
        deadline = time.monotonic() + 120
        while True:
            done = log.read_text().count("\n")
            if writes == 0 and any(".emu-new-" in n for n in os.listdir(box)):
                break
            if writes and done >= writes:
                break
            assert p.poll() is None, p.communicate()
            assert time.monotonic() < deadline, "no write seen"
            time.sleep(0.005)
        p.send_signal(signal.SIGKILL)
        p.communicate()
        got = _result_set(target)
        assert got in (old, new), f"killed after {writes} files: a mix {sorted(got)}"
        seen.add("old" if got == old else "new")
    assert "old" in seen
    # the next run into that place removes what the kills left, and completes
    assert leftovers(box), "a kill during the writing leaves a temporary folder"
    p = run_cli("run", scenario, "--set", "seed=2", "--out", target)
    assert p.returncode == 0, p.stderr
    assert _result_set(target) == new and leftovers(box) == []


def _files_of_at_most(size: int):
    """A preexec_fn: the process may write files of at most ``size`` bytes
    (past it a write fails with EFBIG, as on a full disk it fails with
    ENOSPC; Python ignores the SIGXFSZ that comes with it)."""
    import resource
    return lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))


@pytest.mark.parametrize("command", [
    ["run", "{short}"], ["run", "--set", "duration_ms=0.5"],
    ["compare", "{short}", "--vary", "seed=1,2"],
    ["sweep", "{short}", "--grid", "seed=1,2", "--workers", "1"],
    ["study", "pfn_cache_sizing", "--quick"]])
def test_a_full_disk_is_one_line_and_leaves_the_old_set(short, tmp_path, command):
    """Writing the results failing (a full disk, a quota, a file too large)
    gave a traceback after the whole simulation ran."""
    argv = [str(short) if a == "{short}" else a for a in command]
    old = tmp_path / "old"
    p = run_cli("run", short, "--out", old)
    assert p.returncode == 0, p.stderr
    out = tmp_path / "out"
    if command[0] != "sweep":                   # a sweep's folder is kept for its resume
        shutil.copytree(old, out)
    before = snapshot(out) if out.exists() else None
    p = run_cli(*argv, "--out", out, "--force", preexec_fn=_files_of_at_most(256))
    err = p.stderr.strip().split("\n")[-1]
    assert "Traceback" not in p.stderr and p.returncode == 2, p.stderr
    assert err.startswith("emu: error: ") and "cannot write the results (File too large)" in err
    if command[0] != "sweep":                   # (its sweep.json is more than 256 bytes)
        assert err == (f"emu: error: --out {out}: cannot write the results (File too large); "
                       f"nothing was written")
        assert snapshot(out) == before and leftovers(tmp_path) == []


@pytest.mark.parametrize("key, file", [("sim.timeline", "timeline.npz"),
                                       ("sim.miss_log", "misses.parquet (or .csv)")])
@pytest.mark.parametrize("command", ["run-file", "run-default", "compare"])
def test_what_only_out_keeps_is_refused_without_out(short, key, file, command):
    """The occupancy timeline and the per-miss log were recorded, then dropped
    without a word when there was no --out to keep them."""
    argv = {"run-file": ["run", short], "run-default": ["run", *FAST_DEFAULT],
            "compare": ["compare", short, "--vary", "seed=1,2"]}[command]
    p = run_cli(*argv, "--set", f"{key}=true", timeout=QUICK)
    assert assert_usage_error(p) == (f"emu: error: {key}: it records into {file}, which only "
                                     f"--out keeps, and there is no --out: give --out DIR, or "
                                     f"set it false\n")


#: ``emu ARGS`` (sys.argv[2:]) in a process that sends itself SIGNAL (sys.argv[1])
#: the moment the temporary it names (a Stage's folder, a file's) is made
_STOP_AS_MADE = """
import os, signal, sys, tempfile
import emu.cli
signum, argv = int(sys.argv[1]), sys.argv[2:]
for name in ("mkdtemp", "mkstemp"):
    def made(*args, _real=getattr(tempfile, name), **kwargs):
        got = _real(*args, **kwargs)
        path = got if isinstance(got, str) else got[1]
        if ".emu-new-" in path or path.endswith(".tmp"):
            os.kill(os.getpid(), signum)     # its handler runs before this returns
        return got
    setattr(tempfile, name, made)
sys.argv = ["emu", *argv]
sys.exit(emu.cli.run())
"""


@pytest.mark.parametrize("signum, status, line", [
    (signal.SIGTERM, 143, "emu: terminated"), (signal.SIGINT, 130, "emu: interrupted")])
def test_a_stop_the_moment_a_temporary_is_made_leaves_it_not_behind(tmp_path, signum, status,
                                                                    line):
    """A stop that came between the making of a result's temporary folder
    (or of a file's temporary) and the moment its name was kept, where the
    code that removes it on a stop finds it, left it beside the result for
    good: under load, now and then, for a SIGTERM sent as the run began.  The
    stop is now held off across that moment and raised after it."""
    box = tmp_path / "box"
    box.mkdir()
    target, page = box / "out", box / "page.html"
    assert run_cli("run", "--set", "duration_ms=0.05", "--set", "kvm.strategy=direct",
                   "--out", target).returncode == 0
    assert run_cli("report", target, "-o", page, "--no-plots").returncode == 0
    before, page_before = snapshot(target), page.read_bytes()
    for argv in (["run", "--set", "duration_ms=0.05", "--set", "kvm.strategy=direct",
                  "--set", "seed=2", "--out", str(target)],
                 ["report", str(target), "-o", str(page), "--no-plots"]):
        p = subprocess.run([sys.executable, "-c", _STOP_AS_MADE, str(int(signum)), *argv],
                           capture_output=True, text=True, cwd=ROOT, env=cli_env(),
                           stdin=subprocess.DEVNULL, timeout=120)
        assert (p.returncode, p.stderr.splitlines()[-1:]) == (status, [line]), p.stderr
        assert leftovers(box) == [], argv
    assert snapshot(target) == before and page.read_bytes() == page_before


def test_a_stop_between_the_two_renames_of_a_swap_leaves_the_new_set(tmp_path):
    """Where the filesystem cannot exchange two folders, a commit renames the
    old set aside, then the new one in.  A stop between the two left neither
    in the folder, until the next command put the old one back; the swap now
    ends first, and the stop is raised after it."""
    target = tmp_path / "out"
    assert run_cli("run", "--set", "duration_ms=0.05", "--set", "kvm.strategy=direct",
                   "--out", target).returncode == 0
    old = snapshot(target)
    script = """
import os, signal, sys
import emu.cli
from emu.run import outdir
outdir._exchange = lambda a, b: False           # a filesystem without RENAME_EXCHANGE
rename = os.rename
def stopped_between(src, dst, *args, **kwargs):
    rename(src, dst, *args, **kwargs)
    if ".emu-old-" in os.fspath(dst):           # the old set is aside, the new one not in
        os.kill(os.getpid(), signal.SIGTERM)
os.rename = stopped_between
sys.argv = ["emu", *sys.argv[1:]]
sys.exit(emu.cli.run())
"""
    p = subprocess.run([sys.executable, "-c", script, "run", "--set", "duration_ms=0.05",
                        "--set", "kvm.strategy=direct", "--set", "seed=2", "--out", str(target)],
                       capture_output=True, text=True, cwd=ROOT, env=cli_env(),
                       stdin=subprocess.DEVNULL, timeout=120)
    assert (p.returncode, p.stderr.splitlines()[-1:]) == (143, ["emu: terminated"]), p.stderr
    assert leftovers(tmp_path) == []
    new = snapshot(target)
    assert set(new) == set(old) and new != old     # the new set, whole, in the folder


@pytest.mark.parametrize("signum, status, line", [
    (signal.SIGTERM, 143, "emu: terminated"),
    (signal.SIGHUP, 129, "emu: hung up")])          # the terminal closing
def test_sigterm_ends_a_run_as_ctrl_c_does(tmp_path, signum, status, line):
    """SIGTERM (kill, timeout) had ended the process where it stood, its
    temporary folder left beside --out; now it ends as Ctrl-C does: the old
    set kept, nothing left beside it, one line.  SIGHUP did the same until
    it was handled too."""
    box = tmp_path / "box"
    box.mkdir()
    target = box / "out"
    p = run_cli("run", "--set", "duration_ms=0.05", "--set", "kvm.strategy=direct",
                "--out", target)
    assert p.returncode == 0, p.stderr
    before = snapshot(target)
    p = popen_cli("run", "--set", "duration_ms=100000", "--set", "kvm.strategy=direct",
                  "--out", target)
    deadline = time.monotonic() + 120
    while not leftovers(box):                   # the new set's folder: the run is under way
        assert p.poll() is None, p.communicate()
        assert time.monotonic() < deadline, "no temporary folder seen"
        time.sleep(0.01)
    p.send_signal(signum)
    _, stderr = p.communicate(timeout=60)
    assert (p.returncode, stderr.splitlines()[-1]) == (status, line), stderr
    assert "Traceback" not in stderr
    assert leftovers(box) == [] and snapshot(target) == before


def test_a_hangup_ignored_as_nohup_ignores_it_stays_ignored(tmp_path):
    """Under nohup the command runs on when its terminal closes."""
    box = tmp_path / "box"
    box.mkdir()
    p = subprocess.Popen(EMU + ["run", "--set", "duration_ms=100000", "--set",
                                "kvm.strategy=direct", "--out", str(box / "out")],
                         cwd=ROOT, env=cli_env(), stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                         preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN))
    deadline = time.monotonic() + 120
    while not leftovers(box):       # the new set's folder: the run is under way, its
        assert p.poll() is None     # handlers in place (a SIGTERM before them kills it)
        assert time.monotonic() < deadline, "no temporary folder seen"
        time.sleep(0.01)
    p.send_signal(signal.SIGHUP)
    time.sleep(1)
    assert p.poll() is None
    p.send_signal(signal.SIGTERM)
    _, stderr = p.communicate(timeout=60)
    assert (p.returncode, stderr.splitlines()[-1]) == (143, "emu: terminated"), stderr


def _staged_run(target: Path, label: str, kind: str = "run", force: bool = False) -> outdir.Stage:
    """A stage of a ``kind`` result for ``target``, its files written, not committed."""
    stage = outdir.Stage(target, kind, force)
    name = {"run": "summary.json", "comparison": "comparison.json"}[kind]
    (Path(stage.path) / name).write_text(json.dumps(
        {"emu_version": "x", "config": {}, "key": "seed", "runs": [], "label": label}))
    return stage


def test_a_folder_that_changed_while_the_command_ran_is_not_replaced(tmp_path):
    """Checked only as a command began, a result folder was replaced at its
    end whatever had happened to it meanwhile: a file put into it was
    deleted, a comparison written into it by another command was replaced by
    a run (both exited 0), and a run replaced a sweep's folder while the
    sweep wrote into it.  Each is refused as it would have been at the start."""
    from emu.run.resume import locked
    target = tmp_path / "out"
    _staged_run(target, "first").commit()
    before = snapshot(target)

    stage = _staged_run(target, "second")                   # a file of the user's, meanwhile
    (target / "notes.txt").write_text("mine")
    with stage, pytest.raises(ConfigError) as info:
        stage.commit()
    assert str(info.value) == (
        f"out_dir {target}: holds 'notes.txt', which emu did not write; emu replaces a result "
        f"folder as a whole: choose a new or empty folder (the folder changed while this "
        f"command ran: nothing was written)")
    assert snapshot(target) == dict(before, **{"notes.txt": b"mine"})
    (target / "notes.txt").unlink()

    stage = _staged_run(target, "second")                   # another command's comparison
    _staged_run(target, "theirs", "comparison", force=True).commit()
    theirs = snapshot(target)
    with stage, pytest.raises(ConfigError, match=r"holds a comparison .*, not a run: pass "
                                                 r"force=True .* \(the folder changed"):
        stage.commit()
    assert snapshot(target) == theirs

    stage = _staged_run(target, "ours", "comparison")       # a sweep writing into it
    with stage, locked(str(target)), pytest.raises(ConfigError) as info:
        stage.commit()
    assert str(info.value) == (f"out_dir {target}: another emu sweep is writing into this folder "
                               f"(the folder changed while this command ran: nothing was "
                               f"written)")
    assert leftovers(tmp_path) == []
    (target / outdir.LOCK_FILE).unlink()                     # the sweep, gone
    _staged_run(target, "same kind, afterwards", "comparison").commit()
    assert json.loads((target / "comparison.json").read_text())["label"] == "same kind, afterwards"


def test_a_set_put_aside_by_a_killed_swap_is_put_back(short, tmp_path):
    out = tmp_path / "out"
    assert run_cli("run", short, "--out", out).returncode == 0
    before = snapshot(out)
    aside = tmp_path / ".out.emu-old-abcd1234"
    out.rename(aside)                            # killed between the two renames of a swap
    stale = tmp_path / ".out.emu-new-wxyz9876"
    stale.mkdir()
    (stale / "summary.json").write_text("{}")
    outdir.remove_leftovers(str(tmp_path), "out")
    assert snapshot(out) == before and leftovers(tmp_path) == []


def test_a_set_put_back_is_not_taken_from_under_its_holder(tmp_path, lock_tried_at):
    """The old set a killed swap left aside was put back after a test of its
    lock that let go before the rename: one that took the folder in that
    moment (a removal of leftovers) had it moved from under it.  The lock
    is held across the rename: the other waits for it, or the set stays."""
    target = tmp_path / "out"
    aside = tmp_path / ".out.emu-old-abcd1234"          # a swap killed between its renames
    aside.mkdir()
    (aside / "summary.json").write_text("{}")
    taker = lock_tried_at("rename", aside)      # [its fd]: holds the folder; [None]: waits
    outdir.remove_leftovers(str(tmp_path), "out")
    assert taker
    assert aside.exists() or taker[0] is None
    assert (target / "summary.json").read_text() == "{}" and leftovers(tmp_path) == []


def test_the_old_set_of_a_swap_under_way_is_left_to_it(tmp_path, monkeypatch):
    """Where the filesystem cannot exchange two folders, a commit renames
    the old set aside, then the new one in, and no process held the old set
    in between: another command starting then took it for a killed swap's,
    and removed it (a kill of the commit in that moment left neither set) or
    put it back (the commit's second rename failed, its results lost).  The
    old set is held from before it leaves the folder until it is gone."""
    target = tmp_path / "out"
    _staged_run(target, "first").commit()
    first = snapshot(target)
    monkeypatch.setattr(outdir, "_exchange", lambda a, b: False)
    stage = _staged_run(target, "second")
    rename = os.rename
    during = []

    def another_command_starts(src, dst, *args, **kw):
        rename(src, dst, *args, **kw)
        if os.fspath(src) == str(target) and not during:     # the old set, aside
            during.append(remove_unheld(os.fspath(dst)))
            during.append(snapshot(Path(dst)) == first)

    monkeypatch.setattr(os, "rename", another_command_starts)
    with stage:
        stage.commit()
    monkeypatch.undo()
    assert during == [False, True]
    assert json.loads((target / "summary.json").read_text())["label"] == "second"
    assert leftovers(tmp_path) == []


_ANOTHER_COMMAND = """
import sys
from emu.run.outdir import remove_leftovers
print("ready", flush=True)
sys.stdin.readline()
remove_leftovers(sys.argv[1], sys.argv[2])          # as a Stage for the folder begins
print("done", flush=True)
"""


def test_a_set_put_back_waits_for_a_commit_under_way(tmp_path, monkeypatch):
    """A killed swap's old set was put back by any command starting, a
    commit into the folder under way or not: between the commit's check of
    the folder (nothing there) and its swap, the folder took the old set
    back, which the commit then replaced unchecked (or, a second commit's
    swap under way, put back where that one's new set went).  Putting back
    waits for a commit under way, as commits wait for each other: the
    folder a commit checked is the folder it replaces."""
    target = tmp_path / "out"
    stage = _staged_run(target, "ours")
    aside = tmp_path / ".out.emu-old-abcd1234"          # a swap killed meanwhile
    aside.mkdir()
    (aside / "comparison.json").write_text(json.dumps({"key": "seed", "runs": []}))
    other = subprocess.Popen([sys.executable, "-c", _ANOTHER_COMMAND, str(tmp_path), "out"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                             env=cli_env())
    check = outdir.check_replaceable
    during = []

    def another_command_starts(folder, *args, **kw):
        held = check(folder, *args, **kw)
        other.stdin.write("go\n")
        other.stdin.flush()
        select.select([other.stdout], [], [], 3)        # its end, or 3 s of waiting
        during.append(os.path.lexists(target))
        return held

    try:
        assert other.stdout.readline() == "ready\n"
        monkeypatch.setattr(outdir, "check_replaceable", another_command_starts)
        with stage:
            stage.commit()
        monkeypatch.undo()
        assert other.stdout.readline() == "done\n"
    finally:
        other.kill()
        other.wait()
    assert during == [False]                 # as the commit checked it, until its swap
    assert json.loads((target / "summary.json").read_text())["label"] == "ours"
    assert leftovers(tmp_path) == []


# -- 3. first contact ----------------------------------------------------------------------

def test_banner_is_built_from_the_configuration():
    vms = "vm=[{vcpus=1},{vcpus=2, process=[{count=3, workload={pages=20}}]}]"
    p = run_cli("run", *FAST_DEFAULT, "--set", vms, "--set", "machine.cpus=2", "--wide")
    assert p.returncode == 0, p.stderr
    banner = p.stdout.split("\n\n")[0]
    for words in ("two 440 CPUs", "two VMs (vm0: 1 vCPU, a 40-page working set; vm1: 2 vCPUs, "
                  "three processes of a 20-page working set)", "sharing the CPUs with host task "
                  "'noise'", "0.05 ms simulated"):
        assert words in banner, banner
    alone = run_cli("run", *FAST_DEFAULT, "--set", "host_task=[]", "--set", "kvm.handler=c",
                    "--set", "seed=5")
    banner = alone.stdout.split("\n\n")[0]
    assert "one VM (1 vCPU" in banner and "host task" not in banner and "the C miss handler" \
        in banner, banner
    assert "simulated, seed 5;" in " ".join(banner.split()), banner
    assert " ".join(banner.split()).endswith(
        "Run with --set duration_ms=0.05, host_task=[], kvm.handler=c, seed=5."), banner


def test_banner_says_the_work_each_run_does_and_every_set_it_ran_with():
    """With sim.guest_accesses it said '50 ms simulated' of runs that lasted
    1.7-17.5 ms; a cost or the pfn cache's size set changed the results and the
    banner said nothing of it."""
    p = run_cli("run", "--set", "sim.guest_accesses=200", "--set", "duration_ms=50",
                "--set", "kvm.pfn_cache_entries=16", "--set", "costs.exit_light=102", "--wide")
    assert p.returncode == 0, p.stderr
    banner = " ".join(p.stdout.split("\n\n")[0].split())
    assert "each run until the guest processes have made 200 accesses (at most 50 ms), " \
           "seed 1;" in banner, banner
    assert "ms simulated" not in banner
    assert banner.endswith("Run with --set sim.guest_accesses=200, duration_ms=50, "
                           "kvm.pfn_cache_entries=16, costs.exit_light=102."), banner


def _widest(text: str) -> int:
    return max(len(line) for line in text.splitlines())


def test_tables_fit_the_terminal_and_wide_restores_them():
    fitted = run_cli("run", *FAST_DEFAULT, env=cli_env(COLUMNS=80))
    piped = run_cli("run", *FAST_DEFAULT)                       # not a terminal: 80 columns
    wide = run_cli("run", *FAST_DEFAULT, "--wide")
    roomy = run_cli("run", *FAST_DEFAULT, env=cli_env(COLUMNS=300))
    for p in (fitted, piped, wide, roomy):
        assert p.returncode == 0, p.stderr
    assert _widest(fitted.stdout) <= 80 and fitted.stdout == piped.stdout
    table = wide.stdout.split("\n\n", 1)[1]
    assert _widest(table) > 80
    assert table == roomy.stdout.split("\n\n", 1)[1]             # one block when it fits
    header = [line for line in table.splitlines() if line.startswith("design")][0]
    assert "cycles/access" in header and "violations" in header


GOLDEN = Path(__file__).parent / "data" / "golden" / "default.json"


def test_a_single_run_wraps_its_sentences_and_keeps_its_tables_whole(short):
    s = json.loads(GOLDEN.read_text())
    wide = format_run(s)
    lines = wide.splitlines()
    tables = "\n".join(lines[lines.index("") + 1:next(i for i, line in enumerate(lines)
                                                       if line.startswith("(kernel:"))])
    assert "\nexit " in tables and "\nTIMEINGUEST " in tables and _widest(tables) < 80
    for width in (80, 100, 120, 140):
        fitted = format_run(s, width)
        assert _widest(fitted) <= width and tables in fitted, fitted
        assert " ".join(fitted.split()) == " ".join(wide.split())
    assert format_run(s, 80) != wide                    # its sentences did wrap
    p = run_cli("run", short, env=cli_env(COLUMNS=80))
    assert p.returncode == 0, p.stderr
    assert _widest(p.stdout) <= 80 and "\nexit  " in p.stdout and "\ncycles  " in p.stdout
    exits = p.stdout.split("\nexit ")[1].splitlines()
    assert exits[1].startswith("-----") and exits[2].split()[0] in EXIT_CATEGORIES


def test_a_scenario_from_a_pipe_is_read_once_and_its_traces_are_found_from_here(tmp_path):
    """emu compare /dev/stdin resolves the scenario once per run: the second read
    found the pipe empty, and every run but the first ran the built-in scenario
    (20 ms where the pipe said 0.05) without a word.  And a trace path relative to
    a piped scenario was looked for in /dev or /dev/fd."""
    import numpy as np
    np.save(tmp_path / "t.npy", np.arange(0, 64 * 4096, 64, dtype=np.uint64))
    text = ('duration_ms = 0.05\n[[vm]]\n[[vm.process]]\n'
            'workload = { kind = "trace", path = "t.npy" }\n')
    p = subprocess.run(EMU + ["compare", "/dev/stdin", "--vary", "seed=1,2", "--json"],
                       input=text, capture_output=True, text=True, cwd=tmp_path, env=cli_env(),
                       timeout=300)
    assert p.returncode == 0, p.stderr
    runs = json.loads(p.stdout)["runs"]
    assert [r["summary"]["config"]["duration_ms"] for r in runs] == [0.05, 0.05]
    assert {r["summary"]["config"]["vm"][0]["process"][0]["workload"]["path"]
            for r in runs} == {str(tmp_path / "t.npy")}


def test_a_point_the_machine_refuses_is_named_before_any_point_runs(short, tmp_path):
    """A point whose guest memory is too small for its processes was refused
    as its machine was built, after the points before it had run (and a sweep
    had written their results): the message did not say which point it was.
    Now the point is named, and refused before anything runs or is written."""
    says = ("vm.0.process.0.count=1000, seed=1: vm.0.memory_mb: the processes touch up to "
            "51,024 pages, more than the 16,384 of 64 MB\n")
    out = tmp_path / "out"
    p = run_cli("compare", short, "--vary", "vm.0.process.0.count=1,1000", "--vary", "seed=1,2",
                "--out", out, "--progress", "lines")
    assert assert_usage_error(p) == "emu: error: --vary " + says      # no run's progress before
    p = run_cli("sweep", short, "--grid", "vm.0.process.0.count=1,1000", "--grid", "seed=1,2",
                "--out", out)
    assert assert_usage_error(p) == "emu: error: --grid " + says
    assert not out.exists()
    from emu.errors import ConfigError
    from emu.run import compare
    with pytest.raises(ConfigError, match="^key vm.0.process.0.count=1000: vm.0.memory_mb: "):
        compare(short, "vm.0.process.0.count", [1, 1000])


def test_an_error_of_the_scenario_itself_is_not_blamed_on_a_point(tmp_path):
    """A key the scenario file gets wrong, whatever the points set, was
    refused as the first point's: '--vary kvm.strategy=shadow: machine.micro_tlb:
    ...' told the user that shadow was the trouble.  It is now said as
    ``emu run`` says it; a point's own error still names the point."""
    bad = tmp_path / "bad.toml"
    bad.write_text(SHORT + "[machine]\nmicro_tlb = 3\n")
    says = "emu: error: machine.micro_tlb: expected true or false, got 3"
    assert assert_usage_error(run_cli("run", bad)) == says + "\n"
    p = run_cli("compare", bad, "--vary", "kvm.strategy=shadow,direct")
    assert assert_usage_error(p) == says + "\n"
    p = run_cli("sweep", bad, "--grid", "kvm.strategy=shadow,direct", "--out", tmp_path / "o")
    assert assert_usage_error(p) == says + "\n"
    from emu.run import compare
    with pytest.raises(ConfigError, match=r"^machine\.micro_tlb: expected true or false, got 3$"):
        compare(bad, "kvm.strategy", ["shadow", "direct"])
    # too little memory for the processes at every point, as --set made it
    big = ["--set", "vm.0.process.0.workload.pages=30000"]
    (tmp_path / "s.toml").write_text(SHORT)
    says = assert_usage_error(run_cli("run", tmp_path / "s.toml", *big))
    assert says.startswith("emu: error: vm.0.memory_mb: the processes touch up to "), says
    for argv in (["compare", tmp_path / "s.toml", "--vary", "kvm.strategy=shadow,direct"],
                 ["sweep", tmp_path / "s.toml", "--grid", "kvm.strategy=shadow,direct",
                  "--out", tmp_path / "o"]):
        (tmp_path / "s.toml").write_text(SHORT)
        assert assert_usage_error(run_cli(*argv, *big)) == says
    # an error only a point has is that point's
    p = run_cli("compare", tmp_path / "s.toml", "--vary", "vm.0.process.0.workload.pages=40,30000")
    assert assert_usage_error(p) == ("emu: error: --vary vm.0.process.0.workload.pages=30000: "
                                     + says[len("emu: error: "):])
    assert not (tmp_path / "o").exists()


def test_a_sweep_says_why_a_scenario_its_grid_would_mend_is_refused(tmp_path):
    """A sweep records its scenario with --set alone (sweep.json), so that
    scenario must be valid, though every point of the grid sets the key that
    is wrong in it: the refusal says so, where it read as a plain mistake
    in the file while ``emu compare`` ran the same plan."""
    toml = tmp_path / "h.toml"
    toml.write_text(SHORT + '[machine]\ntlb_index = "hardware"\n[kvm]\n'
                            'strategy = "shadow-modified"\n')
    grid = ["kvm.strategy=direct,direct-noflush", "--set", "kvm.hypothetical=true"]
    assert run_cli("compare", toml, "--vary", *grid).returncode == 0
    p = run_cli("sweep", toml, "--grid", *grid, "--out", tmp_path / "o")
    line = assert_usage_error(p)
    assert line.startswith("emu: error: kvm.strategy: 'shadow-modified' cannot run with "
                           "machine.tlb_index = 'hardware'"), line
    assert line.endswith("(the scenario with --set alone must be valid too, whatever --grid "
                         "sets: the sweep records it as its scenario)\n"), line
    assert not (tmp_path / "o").exists()
    # a scenario wrong whatever the grid sets is refused as it is
    p = run_cli("sweep", toml, "--grid", "seed=1,2", "--out", tmp_path / "o")
    assert assert_usage_error(p).endswith("use one of: direct, direct-noflush\n")


def test_a_run_names_the_npz_members_its_trace_leaves_out(tmp_path):
    """emu tlb names the members of an .npz that are no trace array; a run, a
    comparison and a sweep of a trace workload left them out without a word."""
    import numpy as np
    addr = np.arange(0, 64 * 4096, 64, dtype=np.uint64)
    np.savez(tmp_path / "t.npz", addr=addr, notes=np.arange(3))
    np.savez(tmp_path / "clean.npz", addr=addr)
    for name, said in (("t.npz", True), ("clean.npz", False)):
        scenario = tmp_path / f"{name}.toml"
        scenario.write_text(f'duration_ms = 0.05\n[[vm]]\n[[vm.process]]\n'
                            f'workload = {{ kind = "trace", path = "{name}" }}\n')
        for argv in (["run", scenario], ["compare", scenario, "--vary", "seed=1,2"],
                     ["sweep", scenario, "--grid", "seed=1,2", "--out", tmp_path / f"{name}.out"]):
            p = run_cli(*argv, env=cli_env(COLUMNS="300"))
            assert p.returncode == 0, p.stderr
            note = (f"emu: note: {tmp_path / name}: ignored notes: not trace arrays (a trace "
                    f"is addr, kind and size)\n")
            assert (p.stderr.count(note) == 1) == said, p.stderr


def test_writing_a_result_to_none_says_none_was_given():
    """r.write(None) said "'': an empty path names no folder", a path no one gave."""
    from emu.params import default_scenario
    from emu.run import run, write_comparison
    r = run(default_scenario(), ["duration_ms=0.05"])
    for call in (lambda: r.write(None), lambda: write_comparison(None, "seed", [("1", r)])):
        with pytest.raises(ConfigError, match=r"^out_dir: expected the path of a folder \(a "
                                              r"string or a Path\), got NoneType None$"):
            call()


def test_a_single_run_groups_its_cost_per_access_by_thousands():
    """It printed 121093.607 CPU cycles per guest access, where the tables
    print 28,753.362."""
    s = dict(json.loads(GOLDEN.read_text()), cycles_per_guest_access=121093.607)
    assert " guest accesses, 121,093.607 CPU cycles per guest access" in format_run(s)


def test_wide_characters_keep_the_columns_aligned():
    s = json.loads(GOLDEN.read_text())
    runs = [("直接 🚀 direct", s), ("shadow", s), ("影子表 shadow-modified", s)]
    for width in (None, 80):
        block = format_comparison(runs, width).split("\n\n")[0].splitlines()
        assert len({columns(line) for line in block}) == 1, block    # every row ends together
        assert len(block) == 5 and columns(block[0]) <= (width or 999)
    assert "直接 🚀 direct" in format_comparison(runs, 80)


def test_format_comparison_wraps_columns_and_shortens_long_labels():
    s = json.loads(GOLDEN.read_text())
    runs = [("x" * 500, s), ("direct", s)]
    full = format_comparison(runs)
    fitted = format_comparison(runs, width=60)
    assert _widest(fitted) <= 60 < _widest(format_comparison(runs[1:]))
    assert "x" * 500 in full and "x" * 500 not in fitted and "..." in fitted
    for cell in ("cycles/access", "violations", "shadow-not-restored"):
        assert cell in fitted
    # the title of the designs' lines is prose: wrapped as they are
    narrow = format_comparison(runs[1:], width=44).split("\n")
    at = narrow.index("each row's design (what shipped it, or")
    assert narrow[at + 1] == "  hypothetical)" and narrow[at + 2].startswith("direct: ")


def test_a_trace_path_given_with_set_is_relative_to_the_current_folder(tmp_path):
    # in the scenario file a path is relative to the file; typed in the shell,
    # to the folder the shell is in
    data = Path(__file__).parent / "data" / "lackey_small.txt"
    (tmp_path / "sub").mkdir()
    shutil.copy(data, tmp_path / "sub" / "here.txt")
    shutil.copy(data, tmp_path / "beside.txt")
    (tmp_path / "s.toml").write_text('duration_ms = 0.2\n[[vm]]\n[[vm.process]]\n'
                                     'workload = { kind = "trace", path = "beside.txt" }\n')
    key = "vm.0.process.0.workload.path"
    for value in ("here.txt", '"here.txt"', str(tmp_path / "sub" / "here.txt")):
        p = run_cli("run", "../s.toml", "--set", f"{key}={value}", "--json", "--progress",
                    "none", cwd=tmp_path / "sub")
        assert p.returncode == 0, p.stderr
        w = json.loads(p.stdout)["config"]["vm"][0]["process"][0]["workload"]
        assert w["path"] == str(tmp_path / "sub" / "here.txt")
    # not there: named where it was looked for
    assert_usage_error(run_cli("run", "s.toml", "--set", f"{key}=here.txt", cwd=tmp_path),
                       str(tmp_path / "here.txt"))
    # without --set, the file's own path, beside the scenario
    p = run_cli("run", "../s.toml", "--json", "--progress", "none", cwd=tmp_path / "sub")
    assert json.loads(p.stdout)["config"]["vm"][0]["process"][0]["workload"]["path"] == \
        str(tmp_path / "beside.txt")


def test_every_row_a_label_does_not_name_is_given_its_design(short):
    """The section listed a row only if its design's commit was not in its
    label, and a design with no commit of its own (one run with the asm handler,
    the proposal) has '' for it, which every label holds: those rows were left out."""
    p = run_cli("compare", short, "--vary", "kvm.strategy=shadow,direct", "--vary",
                "kvm.handler=c,asm", "--set", "kvm.pfn_source=pfn-cache", "--wide")
    assert p.returncode == 0, p.stderr
    section = p.stdout.split("each row's design (what shipped it, or hypothetical)\n")[1]
    section = section.split("\n\n")[0].splitlines()
    assert [line.split(": ", 1)[1] for line in section] == [
        "hypothetical: 2.6.26 (guest-tid, C) + pfn-cache",
        "hypothetical: 2.6.26 (guest-tid, asm) + pfn-cache",
        "hypothetical: 7924bd41 (tid01, C) + pfn-cache",
        "proposal: direct + asm + pfn-cache"]


@pytest.mark.parametrize("command", [("run", "{short}"), ("compare", "{short}", "--vary", "seed=1,2"),
                                     ("sweep", "{short}", "--grid", "seed=1,2"),
                                     ("study", "pfn_cache_sizing", "--quick")])
def test_an_out_of_dash_is_refused_not_written_as_a_folder_called_dash(command, short, tmp_path):
    """--out - wrote the results into a folder called '-' (where - as a trace
    is standard input, and as -o of a file is refused)."""
    argv = [a.format(short=short) for a in command]
    p = run_cli(*argv, "--out", "-", cwd=tmp_path)
    assert assert_usage_error(p) == ("emu: error: --out '-': emu writes its results as files in "
                                     "a folder, not to standard output: give the folder's name "
                                     "(./- for a folder called '-')\n")
    assert os.listdir(tmp_path) == ["s.toml"]
    if command[0] == "run":                     # spelled as a path, it is a folder's name
        p = run_cli(*argv, "--out", "./-", cwd=tmp_path)
        assert p.returncode == 0, p.stderr
        assert (tmp_path / "-" / "summary.json").is_file()

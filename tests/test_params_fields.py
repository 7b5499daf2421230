"""Tests of emu.params.fields: every key is declared once, with a doc, a
default inside its range, and the loader accepts exactly the declared keys."""

from __future__ import annotations

import dataclasses
import doctest
from dataclasses import dataclass
from pathlib import Path

import pytest

from emu.errors import ConfigError
from emu.params import load as params_load
from emu.params import workload as params_workload
from emu.params import (
    KVM,
    VM,
    HostTask,
    Machine,
    Process,
    Scenario,
    Sim,
    Workload,
    reference,
    scenario_from_dict,
    scenario_to_dict,
)
from emu.params.fields import (
    Array,
    Bool,
    Choice,
    Int,
    Number,
    Str,
    Table,
    declared,
    describe,
    dump,
    keys_of,
    param,
    read_table,
)
from emu.params.load import _missing_container
from emu.params.workload import KIND_KEYS, WORKLOAD_KINDS, read_workload

ROOT = Path(__file__).resolve().parents[1]
SECTIONS = (Scenario, Machine, KVM, Sim, VM, Process, HostTask, Workload)
CASES = [(cls, p, default) for cls in SECTIONS for p, default in declared(cls)]
IDS = [f"{cls.__name__}.{p.key}" for cls, p, _ in CASES]


def test_every_field_but_base_dir_is_declared():
    for cls in SECTIONS:
        names = {f.name for f in dataclasses.fields(cls)} - {"base_dir"}
        assert {p.name for p, _ in declared(cls)} == names, cls.__name__


@pytest.mark.parametrize("cls, p, default", CASES, ids=IDS)
def test_every_key_has_a_one_line_doc(cls, p, default):
    assert p.doc and "\n" not in p.doc and len(p.doc) < 120


@pytest.mark.parametrize("cls, p, default", CASES, ids=IDS)
def test_every_default_is_inside_its_range(cls, p, default):
    """The default, written in the TOML shape, reads back as itself."""
    if default is None:
        assert p.optional or p.applies_to, "only optional keys default to nothing"
        return
    if p.key == "path" and cls is Workload:
        return  # required for a trace: no default
    raw = p.kind.dump(default)
    if cls is Workload:
        kind = "working-set" if not p.applies_to else p.applies_to[0]
        table = {"kind": kind, p.key: raw} if p.key != "kind" else {"kind": raw}
        assert getattr(read_workload(table, "w", ".", Workload()), p.name) == default
        return
    ctx_values = {"vcpus": len(raw)} if p.key == "vcpu_cpus" else {}
    table = {**ctx_values, p.key: raw}
    value = getattr(read_table(cls, table, cls.__name__.lower(), "."), p.name)
    assert value == default


@pytest.mark.parametrize("cls", SECTIONS, ids=[c.__name__ for c in SECTIONS])
def test_the_loader_accepts_exactly_the_declared_keys(cls):
    keys = keys_of(cls)
    assert len(set(keys)) == len(keys)
    if cls is Workload:
        assert set().union(*KIND_KEYS.values()) == set(keys)
        for kind in WORKLOAD_KINDS:
            table = {"kind": kind, "path": "t.npz"} if kind == "trace" else {"kind": kind}
            read_workload(table, "w", ".", Workload())
            with pytest.raises(ConfigError, match="unknown key 'w.bogus'"):
                read_workload({**table, "bogus": 1}, "w", ".", Workload())
        return
    instance = read_table(cls, {}, "t", ".")
    assert set(dump(instance)) <= set(keys)
    with pytest.raises(ConfigError, match="unknown key 't.bogus'"):
        read_table(cls, {"bogus": 1}, "t", ".")


def test_every_described_key_can_be_set():
    """Each key of the reference is a path --set accepts (with its default)."""
    rows = list(describe(Scenario))
    assert len({r[0] for r in rows}) == len(rows)
    for key, _type, _range, shown, _doc in rows:
        if shown == "(none)" or key == "costs" or "host<N>" in shown:
            continue
        path = key.replace(".N.", ".0.")
        extra = []
        if path.startswith("host_task."):
            extra = ["host_task.0.name=h"]
        if path.endswith((".workload.stride",)):
            extra.append(path.rsplit(".", 1)[0] + ".kind=sweep")
        scenario_from_dict({}, extra + [f"{path}={shown}"])


def test_the_to_dict_shape_follows_the_declarations():
    d = scenario_to_dict(Scenario())
    assert tuple(d) == keys_of(Scenario)
    assert tuple(d["machine"]) == keys_of(Machine)
    assert tuple(d["vm"][0]) == ("vcpus", "memory_mb", "process")  # unset pins left out
    assert tuple(d["vm"][0]["process"][0]["workload"]) == KIND_KEYS["working-set"]


def test_absent_arrays_stand_for_their_defaults_in_overrides():
    assert _missing_container([], "vm") == [{}]
    assert _missing_container([], "host_task") == []
    assert _missing_container(["vm", "3"], "process") == [{}]
    assert _missing_container([], "machine") == {}
    assert _missing_container(["host_task", "0"], "process") == {}
    assert _missing_container(["machine", "0"], "process") == {}
    assert _missing_container(["vm", "0", "process", "0"], "workload") == {}


def test_reference_lists_every_key():
    text = reference()
    for key, *_ in describe(Scenario):
        assert f"`{key}`" in text
    assert "`vm.N.process.N.workload.pages` | integer | 1..262,144 | 40 |" in text
    assert "`host_task.N.workload.pages` | integer | 1..262,144 | 128 |" in text


def test_the_reference_in_docs_is_current():
    page = ROOT / "docs" / "scenario-keys.md"
    assert page.read_text(encoding="utf-8") == reference(), (
        "docs/scenario-keys.md is out of date: python -m emu.params > docs/scenario-keys.md")


def test_python_m_emu_params_prints_the_reference_and_refuses_arguments():
    """It printed the reference whatever it was given: --help, a typo, a file name."""
    import subprocess
    import sys

    def run(*args):
        return subprocess.run([sys.executable, "-m", "emu.params", *args], capture_output=True,
                              text=True, cwd=ROOT, timeout=120)
    p = run()
    assert p.returncode == 0 and p.stdout == reference() and p.stderr == ""
    p = run("--help")
    assert p.returncode == 0 and p.stdout.startswith("usage: python -m emu.params\n")
    p = run("--markdown", "out.md")
    assert (p.returncode, p.stdout) == (2, "")
    assert p.stderr == ("python -m emu.params: error: it takes no argument (it prints every "
                        "scenario key), got --markdown out.md\n")


# -- the declaration machinery on a section of its own ---------------------------------


@dataclass(frozen=True)
class _Part:
    size: int = param(4, Int(1, 8), "entries")
    ratio: float = param(0.5, Number(0.0, 1.0), "a share")
    mode: str = param("a", Choice(("a", "b"), aliases=((1, "a"),)), "a mode")
    on: bool = param(False, Bool(), "a switch")
    label: str = param("x", Str(), "a label")


@dataclass(frozen=True)
class _Whole:
    part: _Part = param(_Part(), Table(_Part), "one part")
    parts: list = param([], Array(_Part, 0, 2, "parts"), "more parts", key="part_list")


def test_read_table_reads_declared_keys_in_order():
    w = read_table(_Whole, {"part": {"size": 2, "mode": 1}, "part_list": [{}, {"on": True}]},
                   "", ".")
    assert w == _Whole(part=_Part(size=2), parts=[_Part(), _Part(on=True)])
    assert dump(w) == {"part": dump(_Part(size=2)), "part_list": [dump(_Part()),
                                                                   dump(_Part(on=True))]}
    with pytest.raises(ConfigError, match=r"^part.size: expected an integer in 1..8, got 9$"):
        read_table(_Whole, {"part": {"size": 9, "ratio": 2}}, "", ".")
    with pytest.raises(ConfigError, match=r"^part_list: expected 0..2 parts, got 3$"):
        read_table(_Whole, {"part_list": [{}, {}, {}]}, "", ".")
    with pytest.raises(ConfigError, match=r"did you mean 'b'"):
        read_table(_Part, {"mode": "bb"}, "", ".")


def test_a_mutable_default_is_not_shared():
    a, b = _Whole(), _Whole()
    assert a.parts == b.parts and a.parts is not b.parts


def test_describe_nests_tables_and_arrays():
    rows = {r[0]: r for r in describe(_Whole)}
    assert rows["part.size"][1:] == ("integer", "1..8", "4", "entries")
    assert rows["part_list.N.mode"][1:3] == ("choice", "a | b")
    assert rows["part.label"][3] == '"x"'


@pytest.mark.parametrize("module", [params_load, params_workload], ids=["load", "workload"])
def test_module_examples(module):
    failures, tried = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert tried and not failures

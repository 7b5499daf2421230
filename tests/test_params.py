"""Tests of emu.params: the scenario sections, the strict TOML loader, overrides."""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emu.params import (
    CORES,
    HANDLERS,
    KVM,
    PFN_SOURCES,
    STRATEGIES,
    TID_SCHEMES,
    VM,
    HostTask,
    Machine,
    Process,
    Scenario,
    Sim,
    WORKLOAD_KINDS,
    Workload,
    apply_overrides,
    default_scenario,
    design,
    load_scenario,
    resolved,
    scenario_from_dict,
    scenario_to_dict,
    validate_combination,
)
from emu.errors import ConfigError, EmuError
from emu.run import resolve
from emu.params.fields import keys_of
from emu.params.load import override_value
from emu.params.workload import WORKLOAD_KEYS

DATA = Path(__file__).parent / "data"
FULL = DATA / "cfg_full.toml"


def error_of(data, overrides=()) -> str:
    """The message of the ConfigError that ``data`` must raise (one line)."""
    with pytest.raises(ConfigError) as info:
        scenario_from_dict(data, overrides)
    message = str(info.value)
    assert message and "\n" not in message and "Traceback" not in message
    return message


# ---------------------------------------------------------------------------
# Defaults
# ---------------------------------------------------------------------------


def test_names():
    assert CORES == ("440", "e500")
    assert STRATEGIES == ("shadow", "shadow-modified", "direct", "direct-save-on-switch",
                          "e500-flush-on-put", "e500-shadow-ids", "direct-noflush")
    assert TID_SCHEMES == ("guest-tid", "swap-pid", "tid01")
    assert HANDLERS == ("asm", "c")
    assert PFN_SOURCES == ("gup", "pin-all", "pfn-cache", "guest-tlb-refs")


@pytest.mark.parametrize("data, message", [
    ({"name": "a\nb"}, "name: holds a line break ('\\n', character 2)"),
    ({"name": "tlb\u2028study"}, "name: holds a line break ('\\u2028', character 4)"),
    ({"name": "\x1b[2Jx"}, "name: holds a control character ('\\x1b', character 1)"),
    ({"host_task": [{"name": "a\tb"}]},
     "host_task.0.name: holds a control character ('\\t', character 2)"),
])
def test_a_name_is_one_line(data, message):
    """A scenario's name heads its table and a host task's names its lines:
    a line break split them, and an escape sequence reached the terminal."""
    assert error_of(data) == message + "; a name is printed on one line"
    assert scenario_from_dict({"name": "ok — ü 跟踪", "host_task": [{"name": "a b"}]}).name \
        == "ok — ü 跟踪"


def test_empty_dict_gives_every_default():
    s = scenario_from_dict({})
    assert s == Scenario()
    assert (s.seed, s.duration_ms, s.name, s.question) == (1, 20, "", "")
    assert s.machine == Machine(core="440", cpus=1, clock_mhz=667, micro_tlb=False, hwater=62)
    assert s.kvm == KVM(strategy="direct", tid_scheme=None, handler=None, hypothetical=False,
                        pfn_source="pfn-cache", pfn_cache_entries=256, pfn_cache_policy="lru",
                        guest_tlb_walk="linear", batch_tlbwe=False)
    assert s.costs == {}
    assert s.host_tasks == []
    assert s.sim == Sim(chunk=65536, backend="cython", repopulation_window=256, timeline=False)
    assert len(s.vms) == 1
    vm = s.vms[0]
    assert (vm.vcpus, vm.memory_mb, len(vm.processes)) == (1, 64, 1)
    assert vm.processes[0].count == 1
    w = vm.processes[0].workload
    assert w == Workload()
    assert (w.kind, w.pages, w.distribution, w.zipf_s) == ("working-set", 40, "uniform", 1.0)
    assert (w.inst_fraction, w.code_pages, w.write_fraction) == (0.25, 4, 0.3)
    assert (w.syscall_every, w.mmio_every, w.mmio_device, w.sleep_every, w.sleep_us) == (
        0, 0, "uart", 0, 0.0)
    assert w.path is None
    assert s.base_dir == os.getcwd()


def test_default_scenario():
    s = default_scenario()
    assert s.machine.core == "440" and s.machine.cpus == 1
    assert (s.kvm.strategy, s.kvm.handler, s.kvm.pfn_source) == ("direct", None, "pfn-cache")
    # unset keys resolve to the design as it shipped: 7924bd41, tid01, the C handler
    kvm = resolved(s).kvm
    assert (kvm.tid_scheme, kvm.handler, kvm.hypothetical) == ("tid01", "c", False)
    assert s.duration_ms == 20
    assert len(s.vms) == 1 and len(s.vms[0].processes) == 1
    w = s.vms[0].processes[0].workload
    assert (w.kind, w.pages, w.distribution) == ("working-set", 40, "uniform")
    assert len(s.host_tasks) == 1
    task = s.host_tasks[0]
    assert (task.name, task.cpu, task.run_us, task.sleep_us) == ("noise", None, 200, 800)
    assert (task.workload.kind, task.workload.pages) == ("working-set", 128)
    assert default_scenario() == s  # a fresh, equal object each time
    assert default_scenario() is not s


def test_host_task_defaults():
    s = scenario_from_dict({"host_task": [{}, {"name": "x", "workload": {"code_pages": 2}}]})
    first, second = s.host_tasks
    assert first == HostTask(name="host0", cpu=None, run_us=0.0, sleep_us=0.0,
                             workload=Workload(pages=128))
    assert second.name == "x"
    # a partial workload table for a host task keeps the host default of 128 pages
    assert (second.workload.pages, second.workload.code_pages) == (128, 2)
    assert scenario_from_dict({"host_task": [{}, {}]}).host_tasks[1].name == "host1"


def test_dataclasses_are_frozen():
    s = default_scenario()
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.kvm.strategy = "shadow"  # type: ignore[misc]
    assert dataclasses.replace(s.kvm, strategy="shadow").strategy == "shadow"
    assert VM().process_count == 1
    assert VM(processes=[Process(count=3), Process(count=2)]).process_count == 5


# ---------------------------------------------------------------------------
# The full example file
# ---------------------------------------------------------------------------


def test_full_example():
    s = load_scenario(FULL)
    assert s.base_dir == str(DATA.resolve())
    assert (s.seed, s.duration_ms, s.name, s.question) == (
        7, 12.5, "full example", "Does every key load?")
    assert s.machine == Machine(core="440", cpus=4, clock_mhz=533, micro_tlb=True, hwater=60)
    assert s.kvm == KVM(strategy="shadow-modified", tid_scheme="swap-pid", handler="c",
                        hypothetical=False, pfn_source="pfn-cache",
                        pfn_cache_entries=64, pfn_cache_policy="fifo",
                        guest_tlb_walk="hashed", batch_tlbwe=True)
    assert s.costs == {"gfn_to_pfn": 5000, "tlbwe": 2}
    assert s.sim == Sim(chunk=1024, backend="reference", repopulation_window=128, timeline=True,
                        miss_log=True, miss_log_max=5000, warmup_ms=0, guest_accesses=500_000)

    vm0, vm1 = s.vms
    assert (vm0.vcpus, vm0.memory_mb, vm1.vcpus, vm1.memory_mb) == (2, 128, 1, 32)
    assert (vm0.vcpu_cpus, vm0.qemu_cpu, vm1.vcpu_cpus, vm1.qemu_cpu) == ((2, 3), 1, None, None)
    p0, p1 = vm0.processes
    assert p0.count == 3 and vm0.process_count == 4
    assert p0.workload == Workload(
        kind="working-set", pages=100, distribution="zipf", zipf_s=1.2, inst_fraction=0.1,
        code_pages=8, write_fraction=0.5, syscall_every=1000, mmio_every=5000,
        mmio_device="block", sleep_every=20000, sleep_us=50.0, lifetime_accesses=40000)
    assert p1.count == 1
    assert (p1.workload.kind, p1.workload.pages, p1.workload.stride) == ("sweep", 64, 8192)
    (trace,) = vm1.processes
    assert trace.workload.kind == "trace"
    assert trace.workload.pages is None
    assert trace.workload.write_fraction == 0.0
    # relative to the TOML file's directory, not to the working directory
    assert trace.workload.path == str(DATA.resolve() / "traces" / "app.npy")

    noise, hog = s.host_tasks
    assert (noise.name, noise.cpu, noise.run_us, noise.sleep_us) == ("noise", 3, 100, 900.5)
    assert (noise.workload.kind, noise.workload.pages) == ("working-set", 16)
    assert hog == HostTask(name="hog", cpu=None, run_us=0.0, sleep_us=0.0,
                           workload=Workload(pages=128))


def test_full_example_sets_every_key():
    """cfg_full.toml must keep exercising the whole schema: every key appears."""
    import tomllib

    raw = tomllib.loads(FULL.read_text())
    assert set(raw) == set(keys_of(Scenario))
    for section, cls in (("machine", Machine), ("kvm", KVM), ("sim", Sim)):
        assert set(raw[section]) == {f.name for f in dataclasses.fields(cls)}
    keys = set()
    for vm in raw["vm"]:
        keys |= set(vm)
        for proc in vm["process"]:
            keys |= {"process." + k for k in proc}
            keys |= {"workload." + k for k in proc["workload"]}
    for task in raw["host_task"]:
        keys |= {"host_task." + k for k in task}
    assert {f.name if f.name != "processes" else "process"
            for f in dataclasses.fields(VM)} | {"process.count", "process.workload"} <= keys
    assert {"host_task." + f.name for f in dataclasses.fields(HostTask)} <= keys
    assert {"workload." + k for k in WORKLOAD_KEYS} <= keys


def test_e500_example():
    s = load_scenario(DATA / "cfg_e500.toml")
    assert (s.machine.core, s.kvm.strategy, s.kvm.pfn_source) == (
        "e500", "e500-shadow-ids", "guest-tlb-refs")


def test_guest_tlb_refs_allowed_on_440():
    assert scenario_from_dict({"kvm": {"pfn_source": "guest-tlb-refs"}}).kvm.pfn_source == (
        "guest-tlb-refs")


# ---------------------------------------------------------------------------
# Round trip
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("make", [
    default_scenario,
    Scenario,
    lambda: load_scenario(FULL),
    lambda: load_scenario(DATA / "cfg_e500.toml"),
], ids=["default", "bare", "full", "e500"])
def test_round_trip(make):
    s = make()
    d = scenario_to_dict(s)
    json.loads(json.dumps(d))  # JSON-serialisable
    assert scenario_from_dict(d) == s
    assert scenario_to_dict(scenario_from_dict(d)) == d


def test_to_dict_shape():
    d = scenario_to_dict(load_scenario(FULL))
    assert list(d) == ["seed", "duration_ms", "name", "question", "machine", "kvm", "costs",
                       "vm", "host_task", "sim"]
    assert isinstance(d["vm"], list) and isinstance(d["vm"][0]["process"], list)
    # workloads carry only the keys of their kind
    assert "path" not in d["vm"][0]["process"][0]["workload"]
    assert "stride" in d["vm"][0]["process"][1]["workload"]
    assert set(d["vm"][1]["process"][0]["workload"]) & {"pages", "stride", "zipf_s"} == set()
    assert "cpu" not in d["host_task"][1]  # None is left out: TOML has no null
    assert d["host_task"][0]["cpu"] == 3


def test_equality_sees_every_field_but_base_dir():
    s = default_scenario()
    assert dataclasses.replace(s, base_dir="/elsewhere") == s
    assert dataclasses.replace(s, seed=2) != s
    assert scenario_from_dict({}, ["vm.0.process.0.workload.write_fraction=0.5"]) \
        != scenario_from_dict({})


def test_from_dict_does_not_mutate_its_input():
    raw = {"kvm": {"strategy": "shadow"}, "vm": [{"process": [{"count": 2}]}]}
    before = copy.deepcopy(raw)
    scenario_from_dict(raw, ["vm.0.process.0.count=5", "vm.1.vcpus=2", "sim.chunk=8"])
    assert raw == before


# ---------------------------------------------------------------------------
# Overrides
# ---------------------------------------------------------------------------


def test_override_scalars():
    s = load_scenario(FULL, ["kvm.strategy=shadow", "kvm.tid_scheme=guest-tid", "seed=9",
                             "costs.gfn_to_pfn=7000",
                             "host_task.0.run_us=100", "machine.hwater=30"])
    assert (s.kvm.strategy, s.seed, s.costs["gfn_to_pfn"], s.costs["tlbwe"]) == (
        "shadow", 9, 7000, 2)
    assert s.host_tasks[0].run_us == 100 and s.machine.hwater == 30


def test_override_nested_list_items():
    s = load_scenario(FULL, ["vm.0.process.1.workload.pages=60", "vm.1.vcpus=3"])
    assert s.vms[0].processes[1].workload.pages == 60
    assert s.vms[0].processes[0].workload.pages == 100  # untouched
    assert s.vms[1].vcpus == 3


def test_override_appends_items_with_defaults():
    s = scenario_from_dict({}, ["vm.1.vcpus=2"])
    assert len(s.vms) == 2
    assert s.vms[0] == VM()  # the absent [[vm]] stood for one default VM
    assert s.vms[1] == VM(vcpus=2)
    s = scenario_from_dict({}, ["vm.0.process.1.count=4"])
    assert [p.count for p in s.vms[0].processes] == [1, 4]
    s = scenario_from_dict({}, ["host_task.0.name=hog", "host_task.1.cpu=0"])
    assert [t.name for t in s.host_tasks] == ["hog", "host1"]
    assert s.host_tasks[1].cpu == 0
    s = scenario_from_dict({"vm": [{}]}, ["vm.1={vcpus = 4}"])
    assert s.vms[1].vcpus == 4


def test_override_sets_the_items_of_an_absent_list_by_index():
    """--set vm.0.vcpu_cpus.0=1 on a scenario without vcpu_cpus made a table
    {"0": 1} and was refused as "expected a list ..., got a table"; a list the
    file gives took its items by index already."""
    s = scenario_from_dict({"machine": {"cpus": 2}},
                           ["vm.0.vcpus=2", "vm.0.vcpu_cpus.0=1", "vm.0.vcpu_cpus.1=0"])
    assert s.vms[0].vcpu_cpus == (1, 0)
    assert scenario_from_dict({}, ["vm.0.vcpu_cpus.0=0"]).vms[0].vcpu_cpus == (0,)
    assert error_of({}, ["vm.0.vcpu_cpus.1=0"]) == (
        "vm.0.vcpu_cpus.1: index 1 is out of range: 'vm.0.vcpu_cpus' has 0 item(s) (use "
        "index 0 to append one)")
    assert error_of({}, ["vm.0.vcpus=2", "vm.0.vcpu_cpus.0=0"]) == (
        "vm.0.vcpu_cpus: expected a list of 2 CPU number(s), one per vCPU, got a list of 1")


def test_override_index_beyond_the_end():
    message = error_of({}, ["vm.2.vcpus=2"])
    assert message.startswith("vm.2:") and "out of range" in message
    message = error_of({}, ["vm.0.process.5.count=2"])
    assert message.startswith("vm.0.process.5:")
    message = error_of({}, ["host_task.1.name=x"])
    assert message.startswith("host_task.1:")


def test_override_creates_missing_tables():
    s = scenario_from_dict({"seed": 3}, ["sim.chunk=1024", "machine.cpus=2"])
    assert s.sim.chunk == 1024 and s.machine.cpus == 2 and s.seed == 3


def test_override_values_are_toml_or_bare_strings():
    raw = apply_overrides({}, ["a=true", "b=1.5", 'c="x"', "d=shadow", "e=12",
                               "f=hello world", "g=[1, 2]", "h={k = 1}", "i=", " j = 3 ",
                               "k=1\nl = 2", "m=a=b"])
    assert raw == {"a": True, "b": 1.5, "c": "x", "d": "shadow", "e": 12,
                   "f": "hello world", "g": [1, 2], "h": {"k": 1}, "i": "", "j": 3,
                   "k": "1\nl = 2", "m": "a=b"}
    s = scenario_from_dict({}, ["sim.timeline=true", "duration_ms=1.5", 'name="x"',
                                "kvm.pfn_source=pin-all", "machine.core=e500"])
    assert (s.sim.timeline, s.duration_ms, s.name, s.kvm.pfn_source) == (
        True, 1.5, "x", "pin-all")
    assert s.machine.core == "e500"
    assert scenario_from_dict({}, ["machine.core=440"]).machine.core == "440"


def test_override_workload_kind_switch():
    s = scenario_from_dict({}, ['vm.0.process.0.workload={kind = "trace", path = "t.npy"}'])
    assert s.vms[0].processes[0].workload.path == os.path.abspath("t.npy")
    message = error_of({}, ["vm.0.process.0.workload.kind=trace"])
    assert message.startswith("vm.0.process.0.workload.path:") and "required" in message


def test_a_kind_switched_by_override_leaves_the_old_kind_s_defaults(tmp_path):
    """The default scenario spells out its working set's pages = 40: switching
    it to a trace with --set was refused for a key the user never gave.  A
    key of the old kind the user did set is still named."""
    trace = tmp_path / "t.npy"
    np.save(trace, np.arange(100, dtype=np.uint64) * 4096)
    where = "vm.0.process.0.workload."
    s = resolve(default_scenario(), [where + "kind=trace", where + f"path={trace}"])
    w = s.vms[0].processes[0].workload
    assert (w.kind, w.path, w.pages) == ("trace", str(trace), None)
    s = resolve(default_scenario(), ["host_task.0.workload.kind=sweep"])
    assert (s.host_tasks[0].workload.kind, s.host_tasks[0].workload.pages) == ("sweep", 128)
    assert error_of({"vm": [{"process": [{"workload": {"pages": 60}}]}]},
                    [where + "kind=trace", where + f"path={trace}"]).startswith(
        "unknown key 'vm.0.process.0.workload.pages' for workload kind 'trace'")


def test_apply_overrides_does_not_mutate():
    raw = {"kvm": {"strategy": "direct"}, "vm": [{"vcpus": 1}]}
    before = copy.deepcopy(raw)
    out = apply_overrides(raw, ["kvm.strategy=shadow", "vm.0.vcpus=2", "vm.1.vcpus=3"])
    assert raw == before
    assert out == {"kvm": {"strategy": "shadow"}, "vm": [{"vcpus": 2}, {"vcpus": 3}]}
    assert apply_overrides(raw, "kvm.handler=c")["kvm"]["handler"] == "c"  # one string


def test_bad_override_values_get_the_file_messages():
    assert error_of({}, ["kvm.pfn_cache_entries=abc"]) == (
        "kvm.pfn_cache_entries: expected an integer, got 'abc'")
    assert error_of({"kvm": {"pfn_cache_entries": "abc"}}) == (
        "kvm.pfn_cache_entries: expected an integer, got 'abc'")
    assert error_of({}, ["kvm.stratgy=shadow"]) == (
        "unknown key 'kvm.stratgy' (did you mean 'kvm.strategy'?)")


@pytest.mark.parametrize("override, line", [
    ("zipf_s=1.5", "zipf_s: it is the Zipf exponent, and distribution is 'uniform'; set "
                   "distribution = 'zipf' or leave it 1.0"),
    ("sleep_us=30", "sleep_us: it is how long each sleep lasts, and sleep_every is 0 (never); "
                    "set sleep_every or leave it 0.0"),
    ("mmio_device=block", "mmio_device: it is the device MMIO accesses touch, and mmio_every "
                          "is 0 (never); set mmio_every or leave it 'uart'"),
])
def test_a_workload_key_that_does_nothing_without_another_is_refused(override, line):
    where = "vm.0.process.0.workload."
    assert error_of({}, [where + override]) == where + line
    # with the key it needs, or at its default, it is taken
    needs = {"zipf_s": "distribution=zipf", "sleep_us": "sleep_every=100",
             "mmio_device": "mmio_every=100"}[override.partition("=")[0]]
    w = scenario_from_dict({}, [where + override, where + needs]).vms[0].processes[0].workload
    key, _, value = override.partition("=")
    assert str(getattr(w, key)) == (str(float(value)) if key != "mmio_device" else value)
    default = {"zipf_s": "1.0", "sleep_us": "0.0", "mmio_device": "uart"}[key]
    scenario_from_dict({}, [f"{where}{key}={default}"])


@pytest.mark.parametrize("side", ["vm.0.process.0"])
def test_write_fraction_of_a_trace_without_mmio_is_refused(side):
    """A trace's records are its loads and stores: write_fraction only picks the
    MMIO stores, so with mmio_every 0 a trace's runs came out the same for any
    write_fraction, without a word."""
    where = f"{side}.workload."
    trace = [f"{side}.workload={{kind = \"trace\", path = \"t.npy\"}}"]
    assert error_of({}, trace + [where + "write_fraction=0.9"]) == (
        where + "write_fraction: a trace's records are loads and stores of their own, so of a "
        "trace it is the share of stores among the MMIO accesses alone, and mmio_every is 0 "
        "(never); set mmio_every or leave it 0.3")
    s = scenario_from_dict({}, trace + [where + "write_fraction=0.9", where + "mmio_every=50"])
    w = (s.vms[0].processes[0] if side.startswith("vm") else s.host_tasks[0]).workload
    assert (w.write_fraction, w.mmio_every) == (0.9, 50)
    scenario_from_dict({}, trace + [where + "write_fraction=0.3"])      # its default
    scenario_from_dict({}, [where + "write_fraction=0.9"])              # a synthetic stream's


@pytest.mark.parametrize("key, value, why", [
    ("lifetime_accesses", "10", "only guest processes exit"),
    ("syscall_every", "30", "a host task's system calls are not modelled"),
    ("mmio_every", "3", "a host task touches no emulated device"),
    ("mmio_device", "'block'", "a host task touches no emulated device"),
    ("write_fraction", "0.9", "a host task's store costs what its load does"),
])
def test_a_host_task_refuses_what_only_a_guest_process_does(key, value, why):
    """Its stream skipped the system calls, ran MMIO accesses as its own at
    any device, and charged stores as loads: each of these keys changed
    nothing, or nothing it names, without a word."""
    where = "host_task.0.workload."
    for sets in ([where + f"{key}={value}"], [f"host_task.0.workload={{{key} = {value}}}"]):
        assert error_of({}, sets).startswith(where + key + ": " + why)
    default = {"mmio_device": "'uart'", "write_fraction": "0.3"}.get(key, "0")
    assert error_of({}, [where + f"{key}={value}"]).endswith(f"; leave it {default}")
    scenario_from_dict({}, [where + f"{key}={default}"])              # its default is taken
    scenario_from_dict({}, [f"vm.0.process.0.workload.{key}={value}"]
                       + (["vm.0.process.0.workload.mmio_every=3"] if key == "mmio_device" else []))
    by_hand = dataclasses.replace(default_scenario(), host_tasks=(HostTask(
        workload=dataclasses.replace(Workload(pages=128), **{key: override_value(value)})),))
    with pytest.raises(ConfigError, match=rf"^host_task\.0\.workload\.{key}: "):
        resolve(by_hand)


#: A working set whose Zipf exponent is set, run for half a millisecond.
ZIPF_SET = {"duration_ms": 0.5, "vm": [{"process": [{"workload": {
    "kind": "working-set", "pages": 40, "zipf_s": 1.5, "distribution": "zipf"}}]}]}
WORKLOAD = "vm.0.process.0.workload."


@pytest.mark.parametrize("overrides, line, taken", [
    (["inst_fraction=0", "code_pages=16"],
     "code_pages: it sizes the code loop the instruction fetches walk, and inst_fraction is 0 "
     "(no fetch); set inst_fraction or leave it 4",
     ["inst_fraction=0.5", "code_pages=16"]),
    (["inst_fraction=1", "distribution=zipf"],
     "distribution: it is how a data access picks its page, and inst_fraction is 1 (every "
     "access is an instruction fetch, none a data access); lower inst_fraction or leave it "
     "'uniform'",
     ["inst_fraction=0.99", "distribution=zipf"]),
    (["inst_fraction=1", "distribution=zipf", "zipf_s=1.5"],
     "zipf_s: it is the Zipf exponent of the data accesses, and inst_fraction is 1 (every "
     "access is an instruction fetch, none a data access); lower inst_fraction or leave it 1.0",
     ["inst_fraction=0.99", "distribution=zipf", "zipf_s=1.5"]),
    (["kind=sweep", "inst_fraction=1", "stride=1024"],
     "stride: it is the bytes between consecutive data accesses of the sweep, and "
     "inst_fraction is 1 (every access is an instruction fetch, none a data access); lower "
     "inst_fraction or leave it 4096",
     ["kind=sweep", "inst_fraction=0.5", "stride=1024"]),
    (["inst_fraction=1", "write_fraction=0.9"],
     "write_fraction: it is the share of stores among the data and MMIO accesses, "
     "inst_fraction is 1 (every access is an instruction fetch, none a data access) and "
     "mmio_every is 0 (never); lower inst_fraction, set mmio_every or leave it 0.3",
     ["inst_fraction=1", "write_fraction=0.9", "mmio_every=100"]),     # the MMIO stores
])
@pytest.mark.parametrize("side", ["vm.0.process.0", "host_task.0"])
def test_a_key_of_fetches_or_of_data_accesses_where_there_are_none_is_refused(
        side, overrides, line, taken):
    where = f"{side}.workload."
    if side.startswith("host_task") and line.startswith("write_fraction"):
        line = "write_fraction: a host task's store costs what its load does"  # any store
        taken = [o for o in taken if not o.startswith(("write_fraction", "mmio_every"))]
    assert error_of({}, [where + o for o in overrides]).startswith(where + line)
    # where it does something, or at its default, it is taken; the data pages
    # with no data access are still held in the VM's memory (check_guest_memory)
    scenario_from_dict({}, [where + o for o in taken + ["pages=100"]])


def test_a_sweep_over_inst_fraction_takes_the_code_pages_it_sets(tmp_path):
    from emu.run import plan_sweep, run_sweep
    data = {"duration_ms": 0.5, "vm": [{"process": [{"workload": {"code_pages": 16}}]}]}
    path = tmp_path / "code.toml"
    path.write_text('duration_ms = 0.5\n[[vm]]\n[[vm.process]]\nworkload = '
                    '{kind = "working-set", code_pages = 16}\n')
    rows = run_sweep(path, [WORKLOAD + "inst_fraction=0,0.5"], out_dir=tmp_path / "out",
                     workers=1)
    assert [row[WORKLOAD + "inst_fraction"] for row in rows] == [0.0, 0.5]
    with pytest.raises(ConfigError) as err:
        plan_sweep(data, [WORKLOAD + "pages=20,30"], overrides=[WORKLOAD + "inst_fraction=0"])
    assert str(err.value) == (WORKLOAD + "code_pages: it does nothing at any point of the sweep "
                              "(at " + WORKLOAD + "pages=20: it sizes the code loop the "
                              "instruction fetches walk, and inst_fraction is 0 (no fetch)); "
                              "set inst_fraction or leave it 4")


def test_a_comparison_takes_a_key_that_does_something_at_one_of_its_runs():
    """Uniform against Zipf with the exponent set: at the uniform run zipf_s
    does nothing, at the Zipf run it is what is compared."""
    from emu.run import compare
    runs = compare(ZIPF_SET, WORKLOAD + "distribution", ["uniform", "zipf"])
    assert [value for value, _ in runs] == ["uniform", "zipf"]
    used = [r.summary["config"]["vm"][0]["process"][0]["workload"] for _, r in runs]
    assert [(w["distribution"], w["zipf_s"]) for w in used] == [("uniform", 1.5),
                                                                ("zipf", 1.5)]


def test_a_sweep_takes_a_key_that_does_something_at_one_of_its_points():
    from emu.run import plan_sweep
    plan = plan_sweep(ZIPF_SET, [WORKLOAD + "distribution=zipf,uniform"])
    assert [r.grid for r in plan.runs] == [((WORKLOAD + "distribution", "zipf"),),
                                           ((WORKLOAD + "distribution", "uniform"),)]
    plan.to_json()                      # the scenario as --set leaves it: uniform


def test_a_key_that_does_nothing_at_any_point_of_a_plan_is_refused():
    from emu.run import plan_sweep, run_comparison
    uniform = [WORKLOAD + "distribution=uniform"]
    says = (WORKLOAD + "zipf_s: it does nothing at any point of the {} (at " + WORKLOAD
            + "pages=20: it is the Zipf exponent, and distribution is 'uniform'); set "
            "distribution = 'zipf' or leave it 1.0")
    with pytest.raises(ConfigError) as err:
        run_comparison(ZIPF_SET, [WORKLOAD + "pages=20,30"], uniform)
    assert str(err.value) == says.format("comparison")
    with pytest.raises(ConfigError) as err:
        plan_sweep(ZIPF_SET, [WORKLOAD + "pages=20,30"], overrides=uniform)
    assert str(err.value) == says.format("sweep")
    # its default at the other point does nothing there either
    with pytest.raises(ConfigError) as err:
        run_comparison(ZIPF_SET, [WORKLOAD + "zipf_s=1.0,1.5"], uniform)
    assert str(err.value).startswith(WORKLOAD + "zipf_s: it does nothing at any point of the "
                                     "comparison (at " + WORKLOAD + "zipf_s=1.5: it is the Zipf")
    # a plan of one run refuses it as a run does, and in the same words: the
    # scenario has it, whatever the point sets
    runs_says = ("the Zipf exponent, and distribution is 'uniform'; set distribution = 'zipf' "
                 "or leave it 1.0")
    with pytest.raises(ConfigError) as err:
        run_comparison(ZIPF_SET, [WORKLOAD + "pages=20"], uniform)
    assert str(err.value) == WORKLOAD + "zipf_s: it is " + runs_says
    # one the point's value makes is the point's
    with pytest.raises(ConfigError) as err:
        run_comparison(ZIPF_SET, [WORKLOAD + "distribution=uniform"])
    assert str(err.value) == ("varies " + WORKLOAD + "distribution=uniform: " + WORKLOAD
                              + "zipf_s: it is " + runs_says)


def test_a_scenario_built_by_hand_with_a_key_that_does_nothing_is_refused():
    """A Scenario a caller builds (dataclasses.replace) is judged as a file's
    keys are: it was refused as its streams were built ("stream.zipf_s"),
    until a run of a plan had to take it, and then it ran without a word."""
    import dataclasses
    from emu.run import run
    base = scenario_from_dict({"duration_ms": 0.2})
    vm = base.vms[0]
    p = vm.processes[0]
    odd = dataclasses.replace(base, vms=(dataclasses.replace(vm, processes=(
        dataclasses.replace(p, workload=dataclasses.replace(p.workload, zipf_s=2.0)),)),))
    with pytest.raises(ConfigError, match=r"^vm\.0\.process\.0\.workload\.zipf_s: it is the "
                                          r"Zipf exponent, and distribution is 'uniform'"):
        run(odd)


def test_emu_compare_refuses_a_key_that_does_nothing_at_any_point(tmp_path):
    from clirun import assert_usage_error, run_cli
    path = tmp_path / "zipf.toml"
    path.write_text('duration_ms = 0.5\n[[vm]]\n[[vm.process]]\nworkload = {kind = '
                    '"working-set", zipf_s = 1.5}\n')
    assert_usage_error(run_cli("compare", path, "--vary", WORKLOAD + "pages=20,30"),
                       "emu: error: " + WORKLOAD + "zipf_s: it does nothing at any point of "
                       "the comparison (at " + WORKLOAD + "pages=20: it is the Zipf exponent")


def test_a_table_set_after_a_key_inside_it_is_refused():
    """A table set after a key inside it dropped that key without a word.  A key
    inside a table set before is applied to it; a key set again takes its later
    value, as a list of settings read in order does."""
    assert apply_overrides({}, ['kvm={strategy = "shadow"}', "kvm.handler=asm"]) == {
        "kvm": {"strategy": "shadow", "handler": "asm"}}
    assert error_of({}, ["kvm.handler=asm", 'kvm={strategy = "shadow"}']) == (
        "kvm: set as a whole after kvm.handler (from 'kvm.handler=asm', then "
        "'kvm={strategy = \"shadow\"}'), which it would replace; set the keys inside "
        "the table instead")
    assert error_of({}, ["vm.0.process.0.count=2", "vm.00={vcpus = 2}"]).startswith(
        "vm.00: set as a whole after vm.0.process.0.count")
    assert error_of({}, ["vm.1.vcpus=2", "vm=[{}]"]).startswith("vm: set as a whole after")
    assert apply_overrides({}, ["seed=1", " seed = 2"]) == {"seed": 2}
    # neighbours and prefixes of a name are other keys
    assert apply_overrides({}, ["kvm.handler=c", "kvm.handler_x=1", "kv=1"]) == {
        "kvm": {"handler": "c", "handler_x": 1}, "kv": 1}


@pytest.mark.parametrize("override, key", [
    ("kvm.strategy", "kvm.strategy"),          # no '='
    ("=3", "=3"),                              # empty key
    ("kvm..strategy=x", "kvm..strategy"),      # empty component
    ("vm.x.vcpus=2", "vm.x"),                  # a name where an index belongs
    ("vm.-1.vcpus=2", "vm.-1"),
    ("seed.x=1", "seed"),                      # a table where an integer belongs
])
def test_malformed_overrides(override, key):
    message = error_of({"seed": 1} if override.startswith("seed") else {}, [override])
    assert key in message


def test_override_odd_inputs():
    # tomllib overflows the stack on deep nesting: still a bare string, not a crash
    assert apply_overrides({}, ["name=" + "[" * 5000]) == {"name": "[" * 5000}
    # '²' is a digit to str.isdigit() but not to int()
    assert error_of({}, ["vm.\u00b2.vcpus=1"]).startswith("vm.\u00b2:")
    assert error_of({}, [3]).startswith("override 3:")


def test_override_inside_a_scalar():
    message = error_of({"seed": 1}, ["seed.x=1"])
    assert message.startswith("seed.x:") and "not a table" in message


# ---------------------------------------------------------------------------
# Errors: every class names the dotted key on one line
# ---------------------------------------------------------------------------


def test_unknown_top_level_key():
    message = error_of({"sed": 3})
    assert message == "unknown key 'sed' (did you mean 'seed'?)"
    message = error_of({"zzz": 3})
    assert "'zzz'" in message and "duration_ms" in message  # lists the known keys


@pytest.mark.parametrize("data, message", [
    ({"kvm": {"stratgy": "shadow"}},
     "unknown key 'kvm.stratgy' (did you mean 'kvm.strategy'?)"),
    ({"machine": {"cpu": 2}}, "unknown key 'machine.cpu' (did you mean 'machine.cpus'?)"),
    ({"sim": {"chunks": 2}}, "unknown key 'sim.chunks' (did you mean 'sim.chunk'?)"),
    ({"vm": [{}, {"vcpu": 2}]}, "unknown key 'vm.1.vcpu' (did you mean 'vm.1.vcpus'?)"),
    ({"vm": [{"process": [{}, {"cont": 2}]}]},
     "unknown key 'vm.0.process.1.cont' (did you mean 'vm.0.process.1.count'?)"),
    ({"host_task": [{"nam": "x"}]},
     "unknown key 'host_task.0.nam' (did you mean 'host_task.0.name'?)"),
])
def test_unknown_nested_key_with_suggestion(data, message):
    assert error_of(data) == message


@pytest.mark.parametrize("data, key, fragment", [
    ({"kvm": {"pfn_cache_entries": "abc"}}, "kvm.pfn_cache_entries", "expected an integer, got 'abc'"),
    ({"kvm": {"pfn_cache_entries": True}}, "kvm.pfn_cache_entries", "expected an integer, got true"),
    ({"kvm": {"pfn_cache_entries": 2.0}}, "kvm.pfn_cache_entries", "expected an integer, got 2.0"),
    ({"seed": False}, "seed", "expected an integer"),
    ({"machine": {"cpus": 1.5}}, "machine.cpus", "expected an integer"),
    ({"vm": [{"process": [{"workload": {"pages": "40"}}]}]},
     "vm.0.process.0.workload.pages", "expected an integer"),
    ({"duration_ms": "20"}, "duration_ms", "expected a number"),
    ({"duration_ms": True}, "duration_ms", "expected a number"),
    ({"duration_ms": math.inf}, "duration_ms", "finite"),
    ({"host_task": [{"run_us": math.nan}]}, "host_task.0.run_us", "finite"),
    ({"machine": {"micro_tlb": 1}}, "machine.micro_tlb", "expected true or false"),
    ({"sim": {"timeline": "yes"}}, "sim.timeline", "expected true or false"),
    ({"name": 3}, "name", "expected a string"),
    ({"host_task": [{"name": 3}]}, "host_task.0.name", "expected a string"),
    ({"machine": 3}, "machine", "expected a table"),
    ({"vm": {"vcpus": 1}}, "vm", "array of tables ([[vm]])"),
    ({"vm": [{"process": {"count": 1}}]}, "vm.0.process", "array of tables ([[vm.process]])"),
    ({"vm": [3]}, "vm.0", "expected a table"),
    ({"vm": [{"process": [{"workload": "ws"}]}]}, "vm.0.process.0.workload", "expected a table"),
    ({"costs": {"tlbwe": "x"}}, "costs.tlbwe", "non-negative integer"),
    ({"costs": {"tlbwe": True}}, "costs.tlbwe", "non-negative integer"),
    ({"costs": {"tlbwe": 1.5}}, "costs.tlbwe", "non-negative integer"),
    ({"costs": []}, "costs", "expected a table"),
])
def test_wrong_type(data, key, fragment):
    message = error_of(data)
    assert message.startswith(key + ":")
    assert fragment in message


def test_a_cost_name_is_checked_before_its_value():
    """costs.exit=-5 said "expected a non-negative integer" when the problem
    was that exit is no cost."""
    for scenario in ({"costs": {"exit": -5}}, {"costs": {"exit": {"low": 9, "high": 1}}}):
        assert error_of(scenario).startswith("unknown cost 'exit' (known: ")
    assert error_of({}, ["costs.exit_lite=-5"]).startswith(
        "unknown cost 'exit_lite' (known: exit_light, ")
    assert error_of({}, ["costs.exit_light=-5"]).startswith("costs.exit_light: expected a "
                                                            "non-negative integer")


def test_huge_numbers_are_config_errors():
    message = error_of({"duration_ms": 10**400})
    assert message.startswith("duration_ms: expected a finite number")
    message = error_of({"seed": 10**5000})  # more digits than str(int) allows
    assert message.startswith("seed: expected an integer in 0..") and "bits" in message
    assert error_of({"costs": {"tlbwe": 2**64}}).startswith("costs.tlbwe:")
    assert error_of({}, ["vm." + "9" * 5000 + ".vcpus=1"]).startswith("vm.999")


def test_costs_accept_integral_floats():
    assert scenario_from_dict({"costs": {"tlbwe": 3.0}}).costs == {"tlbwe": 3}
    assert type(scenario_from_dict({"costs": {"tlbwe": 3.0}}).costs["tlbwe"]) is int


def test_a_cost_may_carry_its_range():
    costs = {"exit_light": {"value": 300, "low": 150, "high": 900},
             "gfn_to_pfn": {"low": 500, "high": 900}, "tlbwe": 2}
    s = scenario_from_dict({"costs": costs})
    assert s.costs == costs
    assert scenario_to_dict(s)["costs"] == costs
    assert scenario_from_dict(scenario_to_dict(s)) == s
    assert scenario_from_dict({}, ["costs.exit_light={low=100, high=500}"]).costs == \
        {"exit_light": {"low": 100, "high": 500}}


@pytest.mark.parametrize("table, message", [
    ({"low": 900, "high": 150}, "costs.exit_light: range low 900 > high 150"),
    ({"value": 300, "lo": 1}, "unknown key 'costs.exit_light.lo' (did you mean "
                              "'costs.exit_light.low'?)"),
    ({}, "costs.exit_light: expected value, low or high in the table, got none"),
    ({"low": -1}, "costs.exit_light.low: expected a non-negative integer, got -1"),
    ({"high": 1.5}, "costs.exit_light.high: expected an integer, got 1.5"),
    ({"value": "x"}, "costs.exit_light.value: expected an integer, got 'x'"),
])
def test_a_bad_cost_range_is_one_line_naming_the_key(table, message):
    assert error_of({"costs": {"exit_light": table}}) == message


@pytest.mark.parametrize("data, key, fragment", [
    ({"seed": -1}, "seed", "non-negative integer, got -1"),
    ({"duration_ms": 0}, "duration_ms", "positive number"),
    ({"machine": {"cpus": 0}}, "machine.cpus", "positive integer, got 0"),
    ({"machine": {"cpus": 65}}, "machine.cpus", "1..64, got 65"),
    ({"machine": {"hwater": 64}}, "machine.hwater", "0..63"),
    ({"kvm": {"pfn_cache_entries": 0}}, "kvm.pfn_cache_entries", "positive integer"),
    ({"sim": {"chunk": 2**24 + 1}}, "sim.chunk", "1..16777216"),
    ({"sim": {"repopulation_window": 65537}}, "sim.repopulation_window", "1..65536"),
    ({"vm": []}, "vm", "1..16 VMs, got 0"),
    ({"vm": [{}] * 17}, "vm", "1..16 VMs, got 17"),
    ({"vm": [{"vcpus": 17}]}, "vm.0.vcpus", "1..16"),
    ({"vm": [{"memory_mb": 8}]}, "vm.0.memory_mb", "16..3830, got 8"),
    ({"vm": [{"process": []}]}, "vm.0.process", "1..1000"),
    ({"vm": [{"process": [{"count": 0}]}]}, "vm.0.process.0.count", "positive integer"),
    ({"vm": [{"process": [{"count": 600}, {"count": 401}]}]}, "vm.0.process", "1001"),
    ({"vm": [{}, {"process": [{}, {"workload": {"pages": -3}}]}]},
     "vm.1.process.1.workload.pages", "expected a positive integer, got -3"),
    ({"vm": [{"process": [{"workload": {"pages": 262145}}]}]},
     "vm.0.process.0.workload.pages", "1..262144"),
    ({"vm": [{"process": [{"workload": {"inst_fraction": 1.5}}]}]},
     "vm.0.process.0.workload.inst_fraction", "0..1, got 1.5"),
    ({"vm": [{"process": [{"workload": {"write_fraction": -0.1}}]}]},
     "vm.0.process.0.workload.write_fraction", "0..1"),
    ({"vm": [{"process": [{"workload": {"zipf_s": 0}}]}]},
     "vm.0.process.0.workload.zipf_s", "positive number"),
    ({"vm": [{"process": [{"workload": {"syscall_every": -1}}]}]},
     "vm.0.process.0.workload.syscall_every", "non-negative integer"),
    ({"vm": [{"process": [{"workload": {"kind": "sweep", "stride": 0}}]}]},
     "vm.0.process.0.workload.stride", "positive integer"),
    ({"host_task": [{"sleep_us": -1}]}, "host_task.0.sleep_us", "non-negative number"),
    ({"host_task": [{"cpu": -1}]}, "host_task.0.cpu", "non-negative integer"),
    ({"host_task": [{}] * 65}, "host_task", "0..64 host tasks, got 65"),
    ({"costs": {"tlbwe": -1}}, "costs.tlbwe", "non-negative integer, got -1"),
])
def test_out_of_range(data, key, fragment):
    message = error_of(data)
    assert message.startswith(key + ":")
    assert fragment in message


@pytest.mark.parametrize("data, key, choices", [
    ({"kvm": {"strategy": "shadw"}}, "kvm.strategy", STRATEGIES),
    ({"kvm": {"handler": "python"}}, "kvm.handler", HANDLERS),
    ({"kvm": {"tid_scheme": "tid-01"}}, "kvm.tid_scheme", TID_SCHEMES),
    ({"kvm": {"pfn_source": "cache"}}, "kvm.pfn_source", PFN_SOURCES),
    ({"kvm": {"pfn_cache_policy": "lfu"}}, "kvm.pfn_cache_policy", ("fifo", "lru", "random")),
    ({"kvm": {"guest_tlb_walk": "tree"}}, "kvm.guest_tlb_walk", ("linear", "hashed")),
    ({"machine": {"core": "generic"}}, "machine.core", CORES),
    ({"machine": {"core": 500}}, "machine.core", CORES),
    ({"sim": {"backend": "numba"}}, "sim.backend", ("cython", "reference")),
    ({"vm": [{"process": [{"workload": {"distribution": "normal"}}]}]},
     "vm.0.process.0.workload.distribution", ("uniform", "zipf")),
    ({"vm": [{"process": [{"workload": {"mmio_device": "disk"}}]}]},
     "vm.0.process.0.workload.mmio_device", ("uart", "block")),
    # the workload's kind, read first, says it as every choice does: it said
    # 'unknown workload kind a table' of a table
    ({"vm": [{"process": [{"workload": {"kind": "mmio"}}]}]},
     "vm.0.process.0.workload.kind", ("working-set", "sweep", "trace")),
    ({"host_task": [{"workload": {"kind": {"x": 1}}}]},
     "host_task.0.workload.kind", ("working-set", "sweep", "trace")),
])
def test_bad_enum(data, key, choices):
    message = error_of(data)
    assert message.startswith(key + ": expected one of")
    for choice in choices:
        assert f"'{choice}'" in message


@pytest.mark.parametrize("data, message", [
    ({"kvm": {"strategy": "direct", "tid_scheme": "guest-tid"}},
     "kvm.tid_scheme: 'guest-tid' never ran with kvm.strategy 'direct' (7924bd41 is tid01); "
     "set kvm.hypothetical = true to run it anyway"),
    ({"kvm": {"strategy": "shadow", "tid_scheme": "tid01"}},
     "kvm.tid_scheme: 'tid01' never ran with kvm.strategy 'shadow' (2.6.26 is guest-tid); "
     "set kvm.hypothetical = true to run it anyway"),
    ({"kvm": {"strategy": "direct-save-on-switch", "tid_scheme": "swap-pid"}},
     "kvm.tid_scheme: 'swap-pid' never ran with kvm.strategy 'direct-save-on-switch' "
     "(67577927 is tid01); set kvm.hypothetical = true to run it anyway"),
    ({"machine": {"core": "e500"}, "kvm": {"strategy": "e500-shadow-ids",
                                           "tid_scheme": "tid01"}},
     "kvm.tid_scheme: the 440 TID eras do not apply to machine.core = 'e500'; "
     "set kvm.hypothetical = true to run it anyway"),
    ({"machine": {"core": "e500"}, "kvm": {"strategy": "direct", "tid_scheme": "guest-tid"}},
     "kvm.tid_scheme: the 440 TID eras do not apply to machine.core = 'e500'; "
     "set kvm.hypothetical = true to run it anyway"),
    ({"kvm": {"hypothetical": 1}}, "kvm.hypothetical: expected true or false, got 1"),
    ({"machine": {"hwater": 0}, "kvm": {"strategy": "shadow-modified"}},
     "machine.hwater: the entry loop of kvm.strategy 'shadow-modified' writes indices "
     "0..hwater-1, and hwater 0 leaves it none (expected 1..63)"),
])
def test_combinations_the_designs_never_ran_with(data, message):
    assert error_of(data) == message


@pytest.mark.parametrize("data", [
    {"kvm": {"strategy": "direct", "tid_scheme": "guest-tid", "hypothetical": True}},
    {"kvm": {"strategy": "shadow", "tid_scheme": "swap-pid", "hypothetical": True}},
    {"machine": {"core": "e500"},
     "kvm": {"strategy": "e500-flush-on-put", "tid_scheme": "tid01", "hypothetical": True}},
])
def test_hypothetical_runs_any_era_and_says_so(data):
    s = scenario_from_dict(data)
    kvm = resolved(s).kvm
    assert kvm.tid_scheme == data["kvm"]["tid_scheme"]
    assert design(s.machine, s.kvm).label.startswith("hypothetical: ")


NOT_HYPOTHETICAL = ("kvm.hypothetical: it allows only a TID era a design never ran with, or any "
                    "on the e500: a design as it shipped, or the proposal, is not hypothetical; ")


@pytest.mark.parametrize("data, label", [
    ({"kvm": {"strategy": "shadow", "pfn_source": "gup"}}, "shadow 2.6.26 (guest-tid, C)"),
    ({"kvm": {"strategy": "shadow-modified", "tid_scheme": "swap-pid", "pfn_source": "gup"}},
     "shadow-modified 49dd2c49 (swap-pid, C)"),
    ({"kvm": {"handler": "asm"}}, "proposal: direct + asm + pfn-cache"),
    ({"machine": {"core": "e500"}, "kvm": {"strategy": "e500-shadow-ids",
                                           "pfn_source": "guest-tlb-refs"}},
     "e500-shadow-ids 0164c0f0 (C)"),
])
def test_hypothetical_is_refused_for_a_design_as_it_shipped_and_the_proposal(data, label):
    data["kvm"]["hypothetical"] = True
    assert error_of(data) == NOT_HYPOTHETICAL + f"{label} runs as set without it: leave it false"


def test_hypothetical_is_accepted_where_the_design_is_hypothetical_anyway():
    # the e500 default comparison marks its shadow row so; a core whose tlbwe
    # ignores the index is a machine that never existed, whatever the design
    for data in ({"machine": {"core": "e500"}, "kvm": {"strategy": "shadow-modified"}},
                 {"kvm": {"strategy": "direct-noflush"}},
                 {"machine": {"core": "e500", "tlb_index": "hardware"},
                  "kvm": {"strategy": "e500-shadow-ids"}}):
        marked = scenario_from_dict(dict(data, kvm=dict(data["kvm"], hypothetical=True)))
        plain = scenario_from_dict(data)
        assert design(marked.machine, marked.kvm) == design(plain.machine, plain.kvm)
        assert design(plain.machine, plain.kvm).hypothetical


def test_a_core_whose_tlbwe_ignores_the_index_says_so_in_the_label():
    s = scenario_from_dict({"machine": {"core": "e500", "tlb_index": "hardware"},
                            "kvm": {"strategy": "e500-flush-on-put", "pfn_source": "guest-tlb-refs"}})
    d = design(s.machine, s.kvm)
    assert (d.row_label, d.commit, d.hypothetical) == (
        "hypothetical: e500-flush-on-put 46f43c6e (C) on tlb_index=hardware", "46f43c6e", True)


@pytest.mark.parametrize("machine, kvm, label", [
    # no 44x kernel could be SMP; KVM e500 loaded on an e500v2 only (docs/kvm440.md §2.10)
    ({"cpus": 2}, {"strategy": "direct", "pfn_source": "gup"},
     "hypothetical: direct 7924bd41 (tid01, C) on 2 CPUs"),
    ({"core": "e500", "e500_version": "v1"},
     {"strategy": "e500-shadow-ids", "pfn_source": "guest-tlb-refs"},
     "hypothetical: e500-shadow-ids 0164c0f0 (C) on e500v1"),
])
def test_a_host_no_kvm_of_the_era_ran_on_is_hypothetical(machine, kvm, label):
    s = scenario_from_dict({"machine": machine, "kvm": kvm})
    d = design(s.machine, s.kvm)
    assert (d.row_label, d.hypothetical) == (label, True)
    # kvm.hypothetical allows an era, not a host: there it does nothing, and is refused
    from emu.params.scenario import UnusedKey
    with pytest.raises(UnusedKey, match="kvm.hypothetical"):
        scenario_from_dict({"machine": machine, "kvm": dict(kvm, hypothetical=True)})
    # a machine that existed: a 440 with one CPU, an e500v2
    s = scenario_from_dict({"machine": dict(machine, cpus=1, e500_version="v2"), "kvm": kvm})
    assert not design(s.machine, s.kvm).hypothetical


@pytest.mark.parametrize("strategy, scheme", [
    ("shadow", "guest-tid"), ("shadow-modified", "guest-tid"), ("shadow-modified", "swap-pid"),
    ("shadow-modified", "tid01"), ("direct", "tid01"), ("direct-save-on-switch", "tid01"),
])
def test_every_era_a_design_ran_with_is_accepted(strategy, scheme):
    s = scenario_from_dict({"kvm": {"strategy": strategy, "tid_scheme": scheme}})
    assert resolved(s).kvm.tid_scheme == scheme


def test_bad_enum_suggests():
    assert "(did you mean 'shadow'?)" in error_of({"kvm": {"strategy": "shadw"}})


def test_unknown_workload_kind():
    message = error_of({"vm": [{"process": [{"workload": {"kind": "loop"}}]}]})
    assert message.startswith("vm.0.process.0.workload.kind:")
    assert "'loop'" in message
    for kind in ("working-set", "sweep", "trace"):
        assert kind in message


def test_key_not_allowed_for_the_kind():
    message = error_of({"vm": [{"process": [{"workload": {"path": "x.npy"}}]}]})
    assert "'vm.0.process.0.workload.path'" in message
    assert "'working-set'" in message and "belongs to kind 'trace'" in message
    assert "allowed keys: kind, pages, distribution, zipf_s" in message
    message = error_of({"host_task": [{"workload": {"kind": "trace", "path": "t",
                                                    "pages": 3}}]})
    assert "'host_task.0.workload.pages'" in message and "'trace'" in message
    # a trace carries its own instruction fetches: the fraction and code loop would do nothing
    for key in ("inst_fraction", "code_pages"):
        message = error_of({"vm": [{"process": [{"workload": {"kind": "trace", "path": "t",
                                                              key: 1}}]}]})
        assert f"'vm.0.process.0.workload.{key}'" in message and "'trace'" in message
    message = error_of({"vm": [{"process": [{"workload": {"kind": "sweep",
                                                          "distribution": "zipf"}}]}]})
    assert "'vm.0.process.0.workload.distribution'" in message
    message = error_of({"vm": [{"process": [{"workload": {"pagse": 3}}]}]})
    assert "did you mean 'vm.0.process.0.workload.pages'?" in message


def test_events_more_often_than_once_per_access():
    message = error_of({"vm": [{"process": [{"workload": {"syscall_every": 1,
                                                          "mmio_every": 2}}]}]})
    assert message.startswith("vm.0.process.0.workload: the events come more often than once "
                              "per access")
    assert "syscall_every = 1, mmio_every = 2" in message
    w = scenario_from_dict({"vm": [{"process": [{"workload": {"syscall_every": 2,
                                                              "sleep_every": 2}}]}]})
    assert w.vms[0].processes[0].workload.event_rates() == (0.5, 0.0, 0.5)


def test_trace_needs_a_path():
    message = error_of({"vm": [{"process": [{"workload": {"kind": "trace"}}]}]})
    assert message.startswith("vm.0.process.0.workload.path:") and "required" in message
    message = error_of({"vm": [{"process": [{"workload": {"kind": "trace", "path": 3}}]}]})
    assert message.startswith("vm.0.process.0.workload.path: expected a string")


def test_trace_path_resolution(tmp_path):
    s = scenario_from_dict({"vm": [{"process": [{"workload": {
        "kind": "trace", "path": "sub/t.npz"}}]}]}, base_dir=tmp_path)
    assert s.vms[0].processes[0].workload.path == str(tmp_path / "sub" / "t.npz")
    assert s.base_dir == str(tmp_path)
    s = scenario_from_dict({"vm": [{"process": [{"workload": {
        "kind": "trace", "path": "/abs/t.npz"}}]}]}, base_dir=tmp_path)
    assert s.vms[0].processes[0].workload.path == "/abs/t.npz"


# ---------------------------------------------------------------------------
# Impossible combinations
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", ["e500-flush-on-put", "e500-shadow-ids"])
def test_e500_strategy_on_440(strategy):
    message = error_of({"kvm": {"strategy": strategy}})
    assert message.startswith(f"kvm.strategy: '{strategy}' needs machine.core = 'e500'")


@pytest.mark.parametrize("core", ["440", "e500"])
@pytest.mark.parametrize("strategy", ["shadow", "shadow-modified", "direct-save-on-switch"])
def test_indexed_strategy_where_hardware_picks_the_index(strategy, core):
    if (strategy, core) == ("direct-save-on-switch", "e500"):
        return                          # not on the e500 at all (tests/test_strategies.py)
    message = error_of({"machine": {"core": core, "tlb_index": "hardware"},
                        "kvm": {"strategy": strategy}})
    assert message.startswith(f"kvm.strategy: '{strategy}' cannot run with "
                              "machine.tlb_index = 'hardware'")
    assert "hardware picks" in message and "docs/kvm440.md §4.3" in message


@pytest.mark.parametrize("strategy", ["direct", "e500-flush-on-put", "e500-shadow-ids",
                                      "shadow", "shadow-modified"])
def test_strategies_allowed_on_e500(strategy):
    s = scenario_from_dict({"machine": {"core": "e500"}, "kvm": {"strategy": strategy}})
    assert s.kvm.strategy == strategy


@pytest.mark.parametrize("data,message", [
    ({"machine": {"core": "e500", "hwater": 10}},
     "machine.hwater: it bounds the 440's round robin, and machine.core is 'e500', whose TLB0 "
     "set comes from the address; set core = '440' or leave it 62"),
    ({"kvm": {"pfn_source": "gup", "pfn_cache_entries": 128}},
     "kvm.pfn_cache_entries: it sizes the pfn cache, and kvm.pfn_source is 'gup'; set "
     "pfn_source = 'pfn-cache' or leave it 256"),
    ({"kvm": {"pfn_source": "pin-all", "pfn_cache_policy": "fifo"}},
     "kvm.pfn_cache_policy: it picks the pfn cache's victims, and kvm.pfn_source is 'pin-all'; "
     "set pfn_source = 'pfn-cache' or leave it 'lru'"),
    ({"sim": {"miss_log_max": 5}},
     "sim.miss_log_max: it bounds the per-miss log, and sim.miss_log is false; set miss_log = "
     "true or leave it 100000"),
], ids=["hwater-e500", "cache-entries-gup", "cache-policy-pin-all", "log-max-no-log"])
def test_a_key_that_does_nothing_where_it_is_set_is_refused(data, message):
    assert error_of(data) == message


def test_keys_that_do_nothing_are_accepted_at_their_defaults_and_where_they_apply():
    # a default never triggers the refusal (a dumped e500 scenario holds hwater = 62)
    s = scenario_from_dict({"machine": {"core": "e500", "hwater": 62},
                            "kvm": {"strategy": "e500-flush-on-put", "pfn_source": "gup",
                                    "pfn_cache_entries": 256, "pfn_cache_policy": "lru"},
                            "sim": {"miss_log_max": 100_000}})
    assert (s.machine.hwater, s.kvm.pfn_cache_entries) == (62, 256)
    s = scenario_from_dict({"machine": {"hwater": 40},
                            "kvm": {"pfn_cache_entries": 8, "pfn_cache_policy": "fifo"},
                            "sim": {"miss_log": True, "miss_log_max": 5}})
    assert (s.machine.hwater, s.kvm.pfn_cache_entries, s.kvm.pfn_cache_policy,
            s.sim.miss_log_max) == (40, 8, "fifo", 5)


def test_micro_tlb_on_e500():
    message = error_of({"machine": {"core": "e500", "micro_tlb": True}})
    assert message.startswith("machine.micro_tlb:") and "440" in message
    assert scenario_from_dict({"machine": {"core": "440", "micro_tlb": True}}).machine.micro_tlb


def test_host_task_cpu_out_of_range():
    message = error_of({"machine": {"cpus": 2}, "host_task": [{}, {"cpu": 2}]})
    assert message.startswith("host_task.1.cpu:") and "machine.cpus = 2" in message
    assert scenario_from_dict({"machine": {"cpus": 2},
                               "host_task": [{"cpu": 1}]}).host_tasks[0].cpu == 1
    message = error_of({}, ["host_task.0.cpu=1"])
    assert message.startswith("host_task.0.cpu:")


def test_validate_combination_on_dataclasses():
    validate_combination(default_scenario())
    bad = dataclasses.replace(default_scenario(), machine=Machine(core="e500", tlb_index="hardware"),
                              kvm=KVM(strategy="shadow"))
    with pytest.raises(ConfigError, match=r"^kvm\.strategy: 'shadow' cannot run"):
        validate_combination(bad)


# ---------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------


def test_toml_syntax_error():
    path = DATA / "cfg_bad_syntax.toml"
    with pytest.raises(ConfigError) as info:
        load_scenario(path)
    message = str(info.value)
    assert message.startswith(f"{path}: invalid TOML:")
    assert "line 3" in message and "\n" not in message


def test_missing_file(tmp_path):
    path = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as info:
        load_scenario(path)
    assert str(path) in str(info.value) and "not found" in str(info.value)
    with pytest.raises(ConfigError, match="directory"):
        load_scenario(tmp_path)


def test_not_utf8(tmp_path):
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'name = "caf\xe9"\n')
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_scenario(path)


def test_a_byte_order_mark_is_read_as_the_utf8_it_marks(tmp_path):
    """A file saved by an editor that starts UTF-8 with a BOM (Notepad) was
    refused as "invalid TOML: Invalid statement (at line 1, column 1)"."""
    path = tmp_path / "bom.toml"
    path.write_bytes(b'\xef\xbb\xbfduration_ms = 3\r\n[kvm]\r\nstrategy = "shadow"\r\n')
    s = load_scenario(path)
    assert (s.duration_ms, s.kvm.strategy) == (3, "shadow")


def test_file_errors_in_loaded_files_name_the_key(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text("[[vm]]\n[[vm.process]]\nworkload = { pages = -3 }\n")
    with pytest.raises(ConfigError) as info:
        load_scenario(path)
    assert str(info.value) == "vm.0.process.0.workload.pages: expected a positive integer, got -3"


def test_errors_are_emu_errors():
    with pytest.raises(EmuError):
        scenario_from_dict({"seed": "x"})
    with pytest.raises(ValueError):  # ConfigError is also a ValueError
        scenario_from_dict({"seed": "x"})


def test_top_level_not_a_table():
    assert error_of([1, 2]).startswith("scenario: expected a table")


# ---------------------------------------------------------------------------
# Property tests: only ConfigError ever escapes
# ---------------------------------------------------------------------------

VOCABULARY = list(keys_of(Scenario)) + [
    f.name for cls in (Machine, KVM, Sim, HostTask, VM, Process) for f in dataclasses.fields(cls)
] + list(WORKLOAD_KEYS) + ["process", "workload", "0", "1", "x"]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.integers(min_value=-3, max_value=70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(list(STRATEGIES) + list(CORES) + list(WORKLOAD_KINDS)
                    + ["uniform", "zipf", "uart", "block", "asm", "c", "t.npy"]),
)
keys = st.one_of(st.sampled_from(VOCABULARY), st.text(max_size=8))
values = st.recursive(
    scalars,
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(keys, children, max_size=5)),
    max_leaves=25,
)


def check_outcome(build):
    """Run ``build``; it may succeed or raise ConfigError (one line), nothing else."""
    try:
        s = build()
    except ConfigError as exc:
        message = str(exc)
        assert message and "\n" not in message
        return None
    assert isinstance(s, Scenario)
    d = scenario_to_dict(s)
    json.dumps(d, allow_nan=False)
    assert scenario_from_dict(d) == s
    return s


PROPERTY = settings(derandomize=True, max_examples=300, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(st.dictionaries(keys, values, max_size=6))
def test_random_dicts_raise_only_config_error(data):
    check_outcome(lambda: scenario_from_dict(data))


def _paths(node, prefix=()):
    """Every (path, value) in a scenario dict, tables and list items included."""
    yield prefix, node
    if isinstance(node, dict):
        for key, child in node.items():
            yield from _paths(child, prefix + (key,))
    elif isinstance(node, list):
        for i, child in enumerate(node):
            yield from _paths(child, prefix + (i,))


FULL_DICT = scenario_to_dict(load_scenario(FULL))
FULL_PATHS = [p for p, _ in _paths(FULL_DICT) if p]


@PROPERTY
@given(st.lists(st.tuples(st.sampled_from(FULL_PATHS), st.one_of(scalars, values),
                          st.integers(0, 3).map(lambda n: n == 0)),
                min_size=1, max_size=3))
def test_mutated_valid_scenarios_raise_only_config_error(edits):
    data = copy.deepcopy(FULL_DICT)
    for path, value, delete in edits:
        node = data
        try:
            for step in path[:-1]:
                node = node[step]
            if delete and isinstance(node, dict):
                del node[path[-1]]
            else:
                node[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue  # an earlier edit removed or replaced this path
    check_outcome(lambda: scenario_from_dict(data))


override_keys = st.lists(
    st.one_of(st.sampled_from(VOCABULARY + ["vm", "host_task", "process", "2", "-1"]),
              st.text(max_size=5)),
    min_size=0, max_size=6,
).map(".".join)
override_values = st.one_of(
    st.text(max_size=15),
    st.sampled_from(["true", "1.5", '"x"', "shadow", "e500", "440", "-3", "0", "{}",
                     "[]", "{kind = 'trace'}", "nan", "inf", "1979-05-27", "[[[", "'"]),
    st.integers(min_value=-5, max_value=300).map(str),
)
valid_keys = st.sampled_from(sorted({".".join(map(str, p)) for p in FULL_PATHS}))
overrides = st.lists(
    st.one_of(st.tuples(override_keys, override_values).map("=".join),
              st.tuples(valid_keys, override_values).map("=".join),
              st.tuples(valid_keys, override_values).map("=".join),
              st.text(max_size=20)),
    max_size=4,
)


@PROPERTY
@given(overrides)
def test_random_overrides_raise_only_config_error(strings):
    check_outcome(lambda: load_scenario(FULL, strings))
    check_outcome(lambda: scenario_from_dict({}, strings))


@pytest.mark.parametrize("kvm, label, hypothetical", [
    # no Linux 44x guest batched its three tlbwe words
    ({"strategy": "shadow", "pfn_source": "gup", "batch_tlbwe": True},
     "hypothetical: shadow 2.6.26 (guest-tid, C) with batched tlbwe", True),
    # every shipped handler scanned the guest TLB entry by entry
    ({"strategy": "shadow", "pfn_source": "gup", "guest_tlb_walk": "hashed"},
     "hypothetical: shadow 2.6.26 (guest-tid, C) with hashed walk", True),
    ({"strategy": "direct", "pfn_source": "gup", "guest_tlb_walk": "hashed",
      "batch_tlbwe": True},
     "hypothetical: direct 7924bd41 (tid01, C) with batched tlbwe with hashed walk", True),
    # the proposal's handler may hash: still the proposal, named so
    ({"handler": "asm", "guest_tlb_walk": "hashed"},
     "proposal: direct + asm + pfn-cache + hashed walk", False),
    ({"handler": "asm", "batch_tlbwe": True},
     "hypothetical: proposal: direct + asm + pfn-cache with batched tlbwe", True),
    # as shipped: nothing added
    ({"strategy": "shadow", "pfn_source": "gup"}, "shadow 2.6.26 (guest-tid, C)", False),
])
def test_a_guest_or_walk_no_kernel_had_is_labelled(kvm, label, hypothetical):
    s = scenario_from_dict({"kvm": kvm})
    d = design(s.machine, s.kvm)
    assert (d.row_label, d.hypothetical) == (label, hypothetical)


def test_the_e500_hashed_walk_is_hypothetical_too():
    s = scenario_from_dict({"machine": {"core": "e500"},
                            "kvm": {"strategy": "e500-shadow-ids",
                                    "pfn_source": "guest-tlb-refs",
                                    "guest_tlb_walk": "hashed"}})
    assert design(s.machine, s.kvm).row_label == \
        "hypothetical: e500-shadow-ids 0164c0f0 (C) with hashed walk"


@pytest.mark.parametrize("overrides, says", [
    # a cost no counter may hold (an exit's square summed over an hour)
    (["costs.exit_light=1099511627777"], "costs.exit_light: expected an integer in "
     "0..1,099,511,627,776 (2**40)"),
    # a span longer than the longest run: its cycles pass any counter
    (["host_task.0.sleep_us=1e306"], "host_task.0.sleep_us: expected at most 3,600,000,000"),
    (["host_task.0.run_us=1e308"], "host_task.0.run_us: expected at most 3,600,000,000"),
    (["vm.0.process.0.workload.sleep_us=1e308", "vm.0.process.0.workload.sleep_every=1"],
     "vm.0.process.0.workload.sleep_us: expected at most 3,600,000,000"),
    # a host task that never sleeps: its sleep would do nothing
    (["host_task.0.run_us=0", "host_task.0.sleep_us=5000"],
     "host_task.0.sleep_us: a task with run_us = 0 is always runnable"),
    # no cycle to simulate
    (["duration_ms=5e-324"], "duration_ms: 5e-324 ms is shorter than one cycle"),
])
def test_values_no_run_can_hold_are_refused_in_one_line(overrides, says):
    from emu.params import default_scenario
    from emu.run.scenario import resolve
    with pytest.raises(ConfigError) as err:
        resolve(default_scenario(), overrides)
    assert str(err.value).startswith(says), str(err.value)
    assert "\n" not in str(err.value)


def test_the_largest_cost_runs_and_its_exit_statistics_stay_exact_in_kind():
    # one exit of 2**40 cycles: its square (2**80) passes 64 bits; the sum of
    # squares is kept as a double, so it stays positive and within 1e-15 of exact
    from emu.params import default_scenario
    from emu.run.scenario import resolve, run
    big = 2**40
    r = run(resolve(default_scenario(), ["duration_ms=1", "kvm.pfn_source=gup",
                                         f"costs.c_full_exit={big}"]))
    e = r.summary["exits"]
    timed = [x for x in e.values() if x["count"] and x["max"] >= big]
    assert timed, "no exit took the C path"
    for x in timed:
        assert x["max"] ** 2 * (1 - 1e-15) <= x["sumsq"] <= x["count"] * x["max"] ** 2 * (1 + 1e-15)
        assert x["sumsq"] > 2**64


def test_the_resume_cost_exercise_says_its_machines_are_hypothetical():
    # it runs both designs with a pfn cache and a hashed lookup, which neither kernel had
    from emu.teach import resume_cost
    p = resume_cost.problem(3)
    for design_name in resume_cost.DESIGNS:
        sc = scenario_from_dict(resume_cost.scenario_for(p, design_name))
        assert design(sc.machine, sc.kvm).hypothetical
    assert "both are hypothetical machines" in " ".join(resume_cost.question(p).split())

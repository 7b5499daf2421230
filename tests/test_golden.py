"""Golden results: the regression net for the model.

Each case below is a short scenario; its ``summary.json`` (the text
``Result.json()`` gives, with the library versions and the checkout's path
taken out) is kept in ``tests/data/golden/<case>.json`` and must come out byte
for byte the same.  Together the cases cover every strategy, TID era, handler
and pfn source, both cores, the micro-TLBs, MMIO to both devices, two CPUs and
two VMs (on one CPU, and on two), a trace workload and a warm-up.  The ``emu explain`` known answers are
kept beside them (``explain_*.txt``) and checked in ``test_explain.py``.

A change that moves code changes none of these files.  A change of the model
updates them deliberately: ``python tests/test_golden.py --regenerate``, and
its commit says what changed and why.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"
GOLDEN = DATA / "golden"

_SHORT = ["duration_ms=3"]

#: case name -> overrides on the default scenario.
CASES = {
    "default": _SHORT,
    "shadow_c_gup": _SHORT + ["kvm.strategy=shadow", "kvm.handler=c", "kvm.pfn_source=gup"],
    "shadow_modified_asm_pin_all": _SHORT + [
        "kvm.strategy=shadow-modified", "kvm.handler=asm", "kvm.pfn_source=pin-all"],
    "shadow_modified_guest_tid": _SHORT + [
        "kvm.strategy=shadow-modified", "kvm.tid_scheme=guest-tid", "kvm.pfn_source=gup",
        "vm.0.process.0.workload.syscall_every=2000"],
    "shadow_modified_swap_pid": _SHORT + [
        "kvm.strategy=shadow-modified", "kvm.tid_scheme=swap-pid", "kvm.pfn_source=gup",
        "vm.0.process.0.count=2", "vm.0.process.0.workload.syscall_every=2000",
        "costs.guest_timer_period_us=500", "costs.guest_timeslice_us=500"],
    "direct_noflush_two_vms": _SHORT + [
        "kvm.strategy=direct-noflush", "vm.1.vcpus=1", "vm.1.process.0.workload.pages=20"],
    "save_on_switch_c_micro": _SHORT + [
        "kvm.strategy=direct-save-on-switch", "kvm.handler=c", "machine.micro_tlb=true",
        "kvm.guest_tlb_walk=hashed"],
    "direct_lru_cache": _SHORT + [
        "kvm.pfn_cache_entries=16", "kvm.pfn_cache_policy=lru", "kvm.batch_tlbwe=true"],
    "e500_flush_on_put_refs": _SHORT + [
        "machine.core=e500", "kvm.strategy=e500-flush-on-put", "kvm.pfn_source=guest-tlb-refs"],
    "e500_shadow_ids_cache": _SHORT + [
        "machine.core=e500", "kvm.strategy=e500-shadow-ids", "kvm.handler=c"],
    "e500_v1_shadow_modified": _SHORT + [
        "machine.core=e500", "machine.e500_version=v1", "kvm.strategy=shadow-modified",
        "kvm.handler=asm"],
    "two_cpus_mmio_warmup": [
        "duration_ms=4", "sim.warmup_ms=1", "machine.cpus=2",
        "vm.0.vcpus=2",
        "vm.0.process.0.workload.mmio_every=3000", "vm.0.process.0.workload.mmio_device=uart",
        "vm.0.process.0.workload.syscall_every=2000",
        "vm.0.process.0.workload.sleep_every=5000", "vm.0.process.0.workload.sleep_us=30",
        "vm.0.process.0.count=3",
    ],
    "trace_block_mmio": _SHORT + ["kvm.strategy=shadow"],
}

#: cases whose first process replays a trace instead of the default working set.
TRACE_WORKLOADS = {
    "trace_block_mmio": {"kind": "trace", "path": "@DATA@/cli_sort.npz",
                         "mmio_every": 4000, "mmio_device": "block"},
}


def _overrides(case: str) -> list:
    return [o.replace("@DATA@", str(DATA)) for o in CASES[case]]


def scenario_data(case: str) -> dict:
    """The default scenario as a dict, with the case's trace workload if it has one."""
    from emu.params import default_scenario, scenario_to_dict
    data = scenario_to_dict(default_scenario())
    if case in TRACE_WORKLOADS:
        workload = {k: (v.replace("@DATA@", str(DATA)) if isinstance(v, str) else v)
                    for k, v in TRACE_WORKLOADS[case].items()}
        data["vm"][0]["process"][0]["workload"] = workload
    return data


def golden_text(case: str, backend: str = "cython") -> str:
    """The case's summary as kept: versions and the checkout's path taken out."""
    from emu.run import run

    result = run(scenario_data(case), overrides=_overrides(case) + [f"sim.backend={backend}"])
    summary = dict(result.summary)
    summary.pop("versions")
    summary.pop("backend")
    text = json.dumps(summary, indent=1, sort_keys=True) + "\n"
    return text.replace(str(DATA), "@DATA@")


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden_summary(case):
    expected = (GOLDEN / f"{case}.json").read_text()
    assert golden_text(case) == expected, (
        f"{case}: the summary changed; if the model changed on purpose, regenerate "
        "with `python tests/test_golden.py --regenerate` and say why in the commit")


@pytest.mark.slow
@pytest.mark.parametrize("case", ["default", "shadow_c_gup", "e500_shadow_ids_cache",
                                  "shadow_modified_guest_tid", "shadow_modified_swap_pid"])
def test_golden_summary_on_each_backend(case, backend):
    """Both engine backends give the golden summary."""
    expected = (GOLDEN / f"{case}.json").read_text()
    assert golden_text(case, backend=backend) == expected


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_exit_closes_one_run_in_the_guest(case):
    """timing.c @73e75b41 adds a TIMEINGUEST sample and one of the exit's type
    together, at each exit: the counts are equal, but for the exits still open
    when a run ends (at most one per vCPU: their entry has not come)."""
    summary = json.loads((GOLDEN / f"{case}.json").read_text())
    exits = summary["exits"]
    vcpus = sum(vm["vcpus"] for vm in summary["config"]["vm"])
    ended = sum(e["count"] for c, e in exits.items() if c != "TIMEINGUEST")
    assert ended > 0 and 0 <= exits["TIMEINGUEST"]["count"] - ended <= vcpus


def test_every_strategy_era_handler_and_pfn_source_is_covered():
    from emu.params import resolved, scenario_to_dict
    from emu.run import resolve
    seen = {"strategy": set(), "tid_scheme": set(), "handler": set(), "pfn_source": set(),
            "core": set()}
    for case in CASES:
        cfg = scenario_to_dict(resolved(resolve(scenario_data(case), _overrides(case))))
        for key in ("strategy", "tid_scheme", "handler", "pfn_source"):
            seen[key].add(cfg["kvm"].get(key))
        seen["core"].add(cfg["machine"]["core"])
    from emu import codes
    from emu.kvm import strategies
    assert seen["strategy"] == set(strategies.NAMES)
    assert seen["tid_scheme"] == set(strategies.TID_SCHEMES) | {None}     # None: the e500
    assert seen["handler"] == set(codes.HANDLERS)
    assert seen["pfn_source"] == set(codes.PFN_SOURCES)
    assert seen["core"] == {"440", "e500"}


if __name__ == "__main__":
    if sys.argv[1:] != ["--regenerate"]:
        sys.exit("usage: python tests/test_golden.py --regenerate")
    GOLDEN.mkdir(parents=True, exist_ok=True)
    for name in sorted(CASES):
        (GOLDEN / f"{name}.json").write_text(golden_text(name))
        print("wrote", GOLDEN / f"{name}.json")

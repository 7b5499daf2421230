"""Every tunable of a scenario, declared once, and the loader that reads them.

- :mod:`emu.params.fields`: how a key is declared (type, default, range, doc)
  and the readers of the declarations (read, dump, describe);
- :mod:`emu.params.scenario`: the sections of a scenario (machine, kvm, vm,
  process, host_task, sim, costs) and the checks across keys;
- :mod:`emu.params.workload`: the one workload schema, which the access
  streams consume;
- :mod:`emu.params.load`: TOML files, ``--set`` overrides, the default
  scenario, back to the TOML shape (and to a TOML file), and the reference
  of every key.

``python -m emu.params`` prints every key with its type, range, default and
doc.
"""
from emu.params.fields import KeyUse
from emu.params.load import (
    DEFAULT_SCENARIO_DATA,
    reference,
    apply_overrides,
    default_scenario,
    load_scenario,
    scenario_from_dict,
    scenario_to_dict,
    scenario_to_toml,
)
from emu.params.scenario import (
    BACKENDS,
    CORES,
    GUEST_TLB_WALKS,
    HANDLERS,
    KVM,
    PFN_CACHE_POLICIES,
    PFN_SOURCES,
    STRATEGIES,
    TID_SCHEMES,
    VM,
    HostTask,
    Machine,
    Process,
    Scenario,
    Sim,
    UnusedKey,
    check_core_constraints,
    check_keys_apply,
    design,
    resolved,
    validate_combination,
)
from emu.params.workload import DISTRIBUTIONS, MMIO_DEVICES, WORKLOAD_KINDS, Workload

__all__ = [
    "CORES",
    "STRATEGIES",
    "HANDLERS",
    "TID_SCHEMES",
    "PFN_SOURCES",
    "PFN_CACHE_POLICIES",
    "GUEST_TLB_WALKS",
    "BACKENDS",
    "WORKLOAD_KINDS",
    "DISTRIBUTIONS",
    "MMIO_DEVICES",
    "Workload",
    "Process",
    "VM",
    "HostTask",
    "Machine",
    "KVM",
    "Sim",
    "Scenario",
    "load_scenario",
    "scenario_from_dict",
    "scenario_to_dict",
    "scenario_to_toml",
    "apply_overrides",
    "UnusedKey",
    "KeyUse",
    "check_core_constraints",
    "check_keys_apply",
    "design",
    "resolved",
    "validate_combination",
    "default_scenario",
    "DEFAULT_SCENARIO_DATA",
    "reference",
]

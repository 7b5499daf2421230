"""Every tunable of a scenario, declared once, and the loader that reads them.

The public names: the scenario dataclasses, the tuples of allowed names and
the entry points (:func:`load_scenario`, :func:`scenario_from_dict`,
:func:`scenario_to_dict`, :func:`apply_overrides`, :func:`default_scenario`).
"""
from emu.params.scenario import (  # noqa: F401
    BACKENDS,
    CORES,
    DISTRIBUTIONS,
    E500_STRATEGIES,
    GUEST_TLB_WALKS,
    HANDLERS,
    INDEXED_STRATEGIES,
    KVM,
    MMIO_DEVICES,
    PFN_CACHE_POLICIES,
    PFN_SOURCES,
    STRATEGIES,
    VM,
    WORKLOAD_KINDS,
    HostTask,
    Machine,
    Process,
    Scenario,
    Sim,
    Workload,
    apply_overrides,
    default_scenario,
    load_scenario,
    scenario_from_dict,
    scenario_to_dict,
    validate_combination,
)
from emu.params.scenario import __all__  # noqa: F401

"""What a machine hands over after its run: one plain snapshot of its counters.

The machine fills a :class:`Snapshot` once, after the run
(:meth:`emu.machine.Machine.snapshot`); :func:`emu.stats.collect` builds the
summary and the tables from it and from nothing else.  Every array is a copy,
so the snapshot does not change when the machine is used further.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: The kinds of context, in the order the machine numbers them.
CONTEXT_KINDS = ("vcpu", "qemu", "host_task")


@dataclass
class ContextCounters:
    """One fast-path context: its identity and what it counted.

    ``counters`` maps each name of :data:`emu.stats.counters.COUNTERS` to its
    array; ``resumes`` counts a vCPU's vcpu_loads, ``machine_checks`` the
    machine checks KVM queued to it, and ``page_faults`` a host thread's host
    page faults (0 for the other kind).
    """

    id: int
    name: str
    kind: str
    counters: dict[str, np.ndarray]
    resumes: int = 0
    page_faults: int = 0
    machine_checks: int = 0


@dataclass
class CpuCycles:
    """One physical CPU: its cycle breakdown since the warm-up (emu.codes.CYCLES)
    and the cycle at which that measurement started."""

    index: int
    cycles: np.ndarray
    measured_from: int = 0


@dataclass
class VmFigures:
    """One VM: KVM's page figures, the guest's page faults, and memory by use (bytes)."""

    index: int
    vcpus: int
    startup_cycles: int
    host_faults: int
    gfn_to_pfn_calls: int
    guest_page_faults: int
    memory_bytes: dict[str, int]


@dataclass
class ProcessFigures:
    """One guest process: which it is, and what it did (since the warm-up).

    ``guest_accesses`` are the records of its stream it completed,
    ``tlb_misses`` the hardware TLB misses its user-mode accesses took,
    ``guest_tlb_misses`` the misses KVM delivered to its guest kernel and
    ``page_faults`` its demand faults.
    """

    vm: int
    process: int
    pid: int
    guest_accesses: int
    tlb_misses: int
    guest_tlb_misses: int
    page_faults: int


@dataclass
class Snapshot:
    """A machine's counters after its run.

    ``vcpu_memory_bytes`` is the TLB state KVM keeps per vCPU, by use (the
    strategy's and the guest TLB); ``timeline`` holds the occupancy samples
    (time, cpu, owner per hardware entry), or None when they were not asked for;
    ``processes`` has one :class:`ProcessFigures` per guest process, and
    ``work_done_at`` is the cycle at which the guests completed
    ``sim.guest_accesses`` accesses (None without it); ``miss_log`` the rows
    of the per-miss log (:mod:`emu.stats.misslog`), None when it was off;
    ``half`` the middle of the counted window and the guest accesses made by
    then (None for a run of equal work).
    """

    clock_mhz: int
    simulated_cycles: int
    warmup_cycles: int
    repopulation_window: int
    contexts: list[ContextCounters]
    cpus: list[CpuCycles]
    vms: list[VmFigures]
    vcpu_memory_bytes: dict[str, int]
    timeline: list | None = field(default=None)
    processes: list[ProcessFigures] = field(default_factory=list)
    work_done_at: int | None = None
    miss_log: np.ndarray | None = None
    half: tuple[int, int] | None = None

    def of_kind(self, *kinds: str) -> list[ContextCounters]:
        """The contexts of ``kinds``, kind by kind in the order given, each in id order."""
        return [c for kind in kinds for c in self.contexts if c.kind == kind]

    def context_identities(self) -> list[dict]:
        """Every context: id, name and kind, in id order."""
        return [{"id": c.id, "name": c.name, "kind": c.kind}
                for c in sorted(self.contexts, key=lambda c: c.id)]

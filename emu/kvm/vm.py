"""KVM's per-VM state: its memslots, its pfn source, and gfn_to_pfn.

* the memslots (:mod:`emu.kvm.memslots`) say which guest frames are RAM;
  guest RAM is QEMU's anonymous memory, so the first ``gfn_to_pfn`` of a page
  takes a host page fault;
* the pfn source (:mod:`emu.kvm.pfn`) is where the C path gets a pfn, and
  what the assembly handler can know without calling C (docs/design.md §4).
"""

from __future__ import annotations

import numpy as np

from emu.kvm.memslots import NO_PFN, Memslots
from emu.kvm.pfn import make_pfn_source


class KvmVM:
    """One VM's memslots and pfn source, shared by its vCPUs."""

    def __init__(self, machine, index: int, memory_pages: int, kcfg):
        self.machine = machine
        self.index = index
        self.costs = machine.costs
        self.memslots = Memslots(memory_pages)
        self.pfn_source = kcfg.pfn_source            # the name
        self.pfn = make_pfn_source(self, kcfg)
        self.vcpus: list = []          # filled by the machine
        self.host_faults = 0
        self.gfn_to_pfn_calls = 0
        self.startup_cycles = self.pfn.register()

    # -- pages ----------------------------------------------------------------

    def is_visible(self, gfn: int) -> bool:
        """``gfn`` is guest RAM (kvm_is_visible_gfn); anything else is MMIO."""
        return self.memslots.is_visible(gfn)

    def fault_in(self, gfn: int) -> bool:
        """Make QEMU's page behind RAM frame ``gfn`` present; True when that
        took a host page fault (counted in ``host_faults``)."""
        slots = self.memslots
        if slots.is_present(gfn):
            return False
        slots.host_pfn[gfn] = self.machine.alloc_host_pfn()
        self.host_faults += 1
        return True

    def fault_in_all(self) -> None:
        """:meth:`fault_in` of every RAM frame, in frame order."""
        slots = self.memslots
        absent = np.flatnonzero(slots.host_pfn == NO_PFN)
        slots.host_pfn[absent] = self.machine.alloc_host_pfns(len(absent))
        self.host_faults += len(absent)

    def gfn_to_pfn(self, cpu, vcpu, gfn: int, profile: bool = True) -> int:
        """get_user_pages on QEMU's memory: the first touch is a host page fault.

        ``profile``: count it in the miss handler's step profile (the C path of
        a TLB miss), not when instruction emulation calls it.
        """
        c = self.costs
        cycles = c["gfn_to_pfn"]
        if self.fault_in(gfn):
            cycles += c["host_page_fault"]
        self.gfn_to_pfn_calls += 1
        cpu.charge("gfn_to_pfn", cycles)
        if profile:
            vcpu.profile("gfn_to_pfn", cycles)
        return int(self.memslots.host_pfn[gfn])

    # -- memory ---------------------------------------------------------------

    def memory_bytes(self) -> dict:
        """Bytes of the VM's pfn bookkeeping, and of the guest pages it pins."""
        return self.pfn.memory_bytes()

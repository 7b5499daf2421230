"""KVM's per-VM state: memslots, where host pfns come from, and the C paths.

* memslot 0 is guest RAM (gfn 0 .. memory); everything else (the UART and
  block device pages) is MMIO that exits to QEMU (``kvm_is_visible_gfn``);
* guest RAM is QEMU's anonymous memory: the first ``gfn_to_pfn`` of a page
  takes a host page fault;
* the pfn source decides what the assembly handler can know without calling
  C (DESIGN.md §4): ``gup`` nothing (every fill defers to C, which calls
  get_user_pages and keeps the reference in the shadow slot); ``pin-all``
  every page, pinned when the memslot was registered; ``pfn-cache`` the N
  most recently used pages, pinned while cached; ``guest-tlb-refs`` the page
  of each 4 KB guest TLB entry while that entry lives (KVM e500, reference
  §4.2).
"""

from __future__ import annotations

import numpy as np

NO_PFN = -1


class KvmVM:
    """One VM's memslots and pfn source, shared by its vCPUs."""

    def __init__(self, machine, index: int, memory_pages: int, kcfg):
        self.machine = machine
        self.index = index
        self.memory_pages = memory_pages
        self.costs = machine.costs
        self.pfn_source = kcfg.pfn_source
        self.slot_base = np.zeros(1, np.int64)
        self.slot_npages = np.array([memory_pages], np.int64)
        self.host_pfn = np.full(memory_pages, NO_PFN, np.int64)   # QEMU's RAM: gfn -> host pfn
        self.pin = np.full(memory_pages if kcfg.pfn_source == "pin-all" else 1, NO_PFN, np.int64)
        self.pcache = None
        if kcfg.pfn_source == "pfn-cache":
            be = machine.backend
            self.pcache = be.BookeTLB(kcfg.pfn_cache_entries, kcfg.pfn_cache_entries,
                                      kcfg.pfn_cache_policy, -1, 12, machine.seed_int("pcache", index))
        self.vcpus: list = []          # filled by the machine
        self.startup_cycles = 0
        self.host_faults = 0
        self.gfn_to_pfn_calls = 0
        if kcfg.pfn_source == "pin-all":
            self.pin_all()

    # -- pages ----------------------------------------------------------------

    def pin_all(self) -> None:
        """Fault in and pin every page when the memslot is registered (before the run)."""
        c = self.costs
        for gfn in range(self.memory_pages):
            self.host_pfn[gfn] = self.machine.alloc_host_pfn()
        self.pin[:] = self.host_pfn
        self.host_faults += self.memory_pages
        self.startup_cycles = self.memory_pages * (c["host_page_fault"] + c["pin_page"])

    def gfn_to_pfn(self, cpu, vcpu, gfn: int, profile: bool = True) -> int:
        """get_user_pages on QEMU's memory: the first touch is a host page fault.

        ``profile``: count it in the miss handler's step profile (the C path of
        a TLB miss), not when instruction emulation calls it.
        """
        c = self.costs
        cycles = c["gfn_to_pfn"]
        if self.host_pfn[gfn] == NO_PFN:
            self.host_pfn[gfn] = self.machine.alloc_host_pfn()
            self.host_faults += 1
            cycles += c["host_page_fault"]
        self.gfn_to_pfn_calls += 1
        cpu.charge("gfn_to_pfn", cycles)
        if profile:
            vcpu.profile("gfn_to_pfn", cycles)
        return int(self.host_pfn[gfn])

    def pfn_for(self, cpu, vcpu, gfn: int, gi: int, profile: bool = True) -> int:
        """The pfn of ``gfn`` for the C path, through the pfn source."""
        c = self.costs
        src = self.pfn_source
        if src == "pin-all":
            cpu.charge("c_path", c["c_pfn_lookup"])
            return int(self.pin[gfn])
        if src == "pfn-cache":
            j = self.pcache.find(gfn << 12, 0, 0)
            cpu.charge("c_path", c["c_pfn_lookup"])
            if j >= 0:
                self.pcache.use(j)
                return int(self.pcache.rpn_arr[j]) >> 12
            pfn = self.gfn_to_pfn(cpu, vcpu, gfn, profile)
            j = self.pcache.choose_victim(gfn << 12)
            cycles = c["pfn_cache_insert"]
            if self.pcache.valid_arr[j]:
                cycles += c["put_page"]              # the evicted page is unpinned
            self.pcache.write(j, gfn << 12, 12, 0, 0, pfn << 12, 0, -1)
            cpu.charge("c_path", cycles)
            return pfn
        if src == "guest-tlb-refs":
            gref = vcpu.ctx.arrays["gref"]
            if gi >= 0 and gref[gi] >= 0 and vcpu.gtlb.shift_arr[gi] == 12:
                cpu.charge("c_path", c["c_pfn_lookup"])
                return int(gref[gi])
            pfn = self.gfn_to_pfn(cpu, vcpu, gfn, profile)
            if gi >= 0 and vcpu.gtlb.shift_arr[gi] == 12:
                gref[gi] = pfn
            return pfn
        return self.gfn_to_pfn(cpu, vcpu, gfn, profile)    # gup: the shadow slot keeps the reference

    def drop_ref(self, cpu) -> None:
        """A gup shadow slot is released: put_page."""
        if self.pfn_source == "gup":
            cpu.charge("c_path", self.costs["put_page"])

    def is_visible(self, gfn: int) -> bool:
        return 0 <= gfn < self.memory_pages

    # -- memory ---------------------------------------------------------------

    def memory_bytes(self) -> dict:
        c = self.costs
        out = {}
        if self.pfn_source == "pin-all":
            out["pinned_pages"] = self.memory_pages * 4096
            out["pfn_table"] = self.memory_pages * c["pfn_table_entry_bytes"]
        elif self.pfn_source == "pfn-cache":
            n = self.pcache.entries
            out["pfn_cache"] = n * c["pfn_cache_entry_bytes"]
            out["pinned_pages"] = self.pcache.valid_count() * 4096
        elif self.pfn_source == "gup":
            # one page reference per shadow slot in use (reference/kvm440.md §2.5)
            held = sum(int((v.ctx.arrays["hwref_gi"] >= 0).sum()) for v in self.vcpus)
            out["pinned_pages"] = held * 4096
        return out


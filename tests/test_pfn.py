"""Tests of emu.kvm.pfn, emu.kvm.memslots and emu.kvm.vm: each pfn source on a
small case whose counts are derived by hand."""

from __future__ import annotations

from collections import Counter
from types import SimpleNamespace

import numpy as np
import pytest

from emu import codes, engine
from emu.params import KVM, PFN_SOURCES
from emu.costs import CostTable
from emu.errors import ConfigError
from emu.kvm import pfn
from emu.kvm.memslots import NO_PFN, Memslots
from emu.kvm.vm import KvmVM

FIRST_PFN = 0x100
BACKENDS = ("cython", "reference")


class FakeMachine:
    """What a VM asks of the machine: costs, the backend, host pages, seeds."""

    def __init__(self, backend: str):
        self.costs = CostTable({})
        self.backend = engine.get(backend)
        self.next_pfn = FIRST_PFN

    def alloc_host_pfn(self) -> int:
        self.next_pfn += 1
        return self.next_pfn - 1

    def alloc_host_pfns(self, n: int):
        return [self.alloc_host_pfn() for _ in range(n)]

    def seed_int(self, label: str, *key) -> int:
        return 7


class FakeCpu:
    """A CPU that only keeps its cycle breakdown."""

    def __init__(self):
        self.cycles = Counter()

    def charge(self, category: str, cycles: int) -> int:
        self.cycles[category] += cycles
        return cycles


class FakeVcpu:
    """A vCPU with a guest TLB, the shadow bookkeeping arrays and a step profile."""

    def __init__(self, backend: str):
        self.gtlb = engine.get(backend).BookeTLB(64, 64, "none")
        self.ctx = SimpleNamespace(arrays={"gref": np.full(64, -1, np.int64),
                                           "hwref_gi": np.full(64, -1, np.int32)})
        self.profiled = Counter()

    def profile(self, step: str, cycles: int) -> None:
        self.profiled[step] += cycles


def setup(source: str, backend: str, pages: int = 16, **kvm):
    machine = FakeMachine(backend)
    vm = KvmVM(machine, 0, pages, KVM(pfn_source=source, **kvm))
    vcpu = FakeVcpu(backend)
    vm.vcpus.append(vcpu)
    return vm, FakeCpu(), vcpu, machine.costs


# -- the registry and the memslots ---------------------------------------------------------

def test_the_registry_holds_the_numbered_sources_in_order():
    assert pfn.NAMES == codes.PFN_SOURCES == PFN_SOURCES
    for name, cls in pfn.CLASSES.items():
        assert cls.name == name and cls.does and issubclass(cls, pfn.PfnSource)
        vm, *_ = setup(name, "cython")
        assert vm.pfn.code == codes.PFN_SOURCE[name] and isinstance(vm.pfn, cls)


def test_unknown_source_is_refused():
    with pytest.raises(ConfigError) as info:
        pfn.make_pfn_source(None, SimpleNamespace(pfn_source="cache"))
    assert str(info.value) == ("kvm.pfn_source: unknown pfn source 'cache' "
                               "(choose from: gup, pin-all, pfn-cache, guest-tlb-refs)")


def test_memslots():
    slots = Memslots(4)
    assert [slots.is_visible(g) for g in (-1, 0, 3, 4)] == [False, True, True, False]
    assert list(slots.base) == [0] and list(slots.npages) == [4]
    assert not slots.is_present(2)
    slots.host_pfn[2] = 9
    assert slots.is_present(2) and not slots.is_present(1)


# -- each source on a hand-derived case ----------------------------------------------------

@pytest.mark.parametrize("backend", BACKENDS)
def test_gup(backend):
    vm, cpu, vcpu, c = setup("gup", backend)
    assert vm.startup_cycles == 0 and vm.host_faults == 0
    # gfn 5 twice: two get_user_pages calls, one host page fault, the same pfn
    assert vm.pfn.lookup(cpu, vcpu, 5, -1) == FIRST_PFN
    assert vm.pfn.lookup(cpu, vcpu, 5, -1) == FIRST_PFN
    assert (vm.gfn_to_pfn_calls, vm.host_faults) == (2, 1)
    assert cpu.cycles == {"gfn_to_pfn": 2 * c["gfn_to_pfn"] + c["host_page_fault"]}
    assert vcpu.profiled["gfn_to_pfn"] == cpu.cycles["gfn_to_pfn"]
    vm.pfn.put_shadow_ref(cpu, vcpu, 3)
    assert cpu.cycles["c_path"] == c["put_page"]
    # each shadow slot in use holds one page
    vcpu.ctx.arrays["hwref_gi"][[0, 4, 9]] = 3
    assert vm.memory_bytes() == {"pinned_pages": 3 * 4096}


@pytest.mark.parametrize("backend", BACKENDS)
def test_pin_all(backend):
    vm, cpu, vcpu, c = setup("pin-all", backend, pages=8)
    # every page faulted in and pinned at registration, in gfn order
    assert vm.host_faults == 8
    assert vm.startup_cycles == 8 * (c["host_page_fault"] + c["pin_page"])
    assert list(vm.pfn.pin) == list(range(FIRST_PFN, FIRST_PFN + 8))
    assert vm.pfn.lookup(cpu, vcpu, 6, -1) == FIRST_PFN + 6
    assert vm.gfn_to_pfn_calls == 0
    assert cpu.cycles == {"c_path": c["c_pfn_lookup"]}
    vm.pfn.put_shadow_ref(cpu, vcpu, 3)             # pinned pages are never put
    assert cpu.cycles == {"c_path": c["c_pfn_lookup"]}
    assert vm.memory_bytes() == {"pinned_pages": 8 * 4096,
                                 "pfn_table": 8 * c["pfn_table_entry_bytes"]}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("policy, hits, evictions, cached", [
    # gfns 1 2 1 3 1 through 2 entries.
    # fifo: miss miss hit miss(evicts 1) miss(evicts 2): 1 hit, 2 evictions
    ("fifo", 1, 2, {3, 1}),
    # lru: miss miss hit miss(evicts 2, least recently used) hit: 2 hits, 1 eviction
    ("lru", 2, 1, {1, 3}),
])
def test_pfn_cache_of_two_entries(backend, policy, hits, evictions, cached):
    vm, cpu, vcpu, c = setup("pfn-cache", backend, pfn_cache_entries=2, pfn_cache_policy=policy)
    pfns = [vm.pfn.lookup(cpu, vcpu, gfn, -1) for gfn in (1, 2, 1, 3, 1)]
    misses = 5 - hits
    # gfns 1, 2, 3 fault once each (a second miss on gfn 1 finds the page present)
    assert pfns == [FIRST_PFN, FIRST_PFN + 1, FIRST_PFN, FIRST_PFN + 2, FIRST_PFN]
    assert (vm.gfn_to_pfn_calls, vm.host_faults) == (misses, 3)
    assert cpu.cycles == {
        "c_path": 5 * c["c_pfn_lookup"] + misses * c["pfn_cache_insert"]
        + evictions * c["put_page"],
        "gfn_to_pfn": misses * c["gfn_to_pfn"] + 3 * c["host_page_fault"],
    }
    pcache = vm.pfn.pcache
    assert {int(pcache.read(j)[1]) >> 12 for j in range(2)} == cached
    assert vm.memory_bytes() == {"pfn_cache": 2 * c["pfn_cache_entry_bytes"],
                                 "pinned_pages": 2 * 4096}


@pytest.mark.parametrize("backend", BACKENDS)
def test_guest_tlb_refs(backend):
    vm, cpu, vcpu, c = setup("guest-tlb-refs", backend)
    vcpu.gtlb.write(3, 0x1000_0000, 12, 5, 0, 7 << 12, 0, -1)     # a 4 KB guest entry
    vcpu.gtlb.write(4, 0x2000_0000, 24, 5, 0, 0, 0, -1)           # a 16 MB one
    # entry 3: the first lookup calls gfn_to_pfn and keeps the pfn; the second reads it
    assert vm.pfn.lookup(cpu, vcpu, 7, 3) == FIRST_PFN
    assert vm.pfn.lookup(cpu, vcpu, 7, 3) == FIRST_PFN
    assert vcpu.ctx.arrays["gref"][3] == FIRST_PFN
    # a large entry, or no entry, keeps nothing: both call gfn_to_pfn
    vm.pfn.lookup(cpu, vcpu, 8, 4)
    vm.pfn.lookup(cpu, vcpu, 8, -1)
    assert vcpu.ctx.arrays["gref"][4] == -1
    assert (vm.gfn_to_pfn_calls, vm.host_faults) == (3, 2)
    assert cpu.cycles == {"c_path": c["c_pfn_lookup"],
                          "gfn_to_pfn": 3 * c["gfn_to_pfn"] + 2 * c["host_page_fault"]}
    # entry 3 holds its page: pinned while the entry lives (tlb_refs, 0164c0f0)
    assert vm.memory_bytes() == {"pinned_pages": 4096}
    # the guest rewrites entry 3: its reference is put (kvmppc_e500_priv_release)
    from emu.kvm.shadow import drop_guest_ref
    vcpu.costs = c
    drop_guest_ref(cpu, vcpu, 3)
    drop_guest_ref(cpu, vcpu, 3)                  # none left: nothing more to put
    assert vcpu.ctx.arrays["gref"][3] == -1 and cpu.cycles["c_path"] == (
        c["c_pfn_lookup"] + c["put_page"])
    assert vm.memory_bytes() == {"pinned_pages": 0}
    # a shadow of the 16 MB entry held a page of its own (a TLB1 fill's, on the
    # e500): its release puts it; a 4 KB entry's shadow holds none
    vm.pfn.put_shadow_ref(cpu, vcpu, 3)
    vm.pfn.put_shadow_ref(cpu, vcpu, 4)
    assert cpu.cycles["c_path"] == c["c_pfn_lookup"] + 2 * c["put_page"]


def test_fault_in_counts_a_host_fault_once():
    vm, *_ = setup("gup", "cython", pages=4)
    assert vm.fault_in(2) and not vm.fault_in(2)
    assert vm.host_faults == 1 and vm.memslots.host_pfn[2] == FIRST_PFN
    assert vm.memslots.host_pfn[1] == NO_PFN
    assert vm.is_visible(3) and not vm.is_visible(4)

"""Where KVM's C path gets the host pfn of a guest frame: one class per pfn source.

The pfn source decides what the assembly miss handler can know without
calling C (docs/design.md §4):

* ``gup``: nothing; every fill defers to C, which calls get_user_pages and
  keeps the page reference in the shadow slot (put when the slot is released);
* ``pin-all``: every page, faulted in and pinned when the memslot was registered;
* ``pfn-cache``: the N most recently used pages, pinned while cached;
* ``guest-tlb-refs``: the page of each 4 KB guest TLB entry while that entry
  lives, and past a ``tlbwe`` with V clear until one maps it again (KVM e500,
  reference §4.2).

The fast path reads the same tables (``pin``, ``pcache``) and charges the
same costs; the classes here are the C path and the memory accounting.  The
registry at the end is the only place that knows the names.
"""

from __future__ import annotations

import numpy as np

from emu.codes import PFN_SOURCE, PFN_SOURCES
from emu.errors import ConfigError
from emu.kvm.memslots import NO_PFN


class PfnSource:
    """A pfn source of one VM.  Defaults: nothing at memslot registration,
    nothing when a shadow slot is released, no memory."""

    #: The name a scenario gives (``kvm.pfn_source``).
    name = ""
    #: What it keeps, in one line.
    does = ""

    def __init__(self, vm, kcfg):
        self.vm = vm
        self.costs = vm.costs
        #: The pin-all table the fast path reads (one unused slot unless pin-all).
        self.pin = np.full(1, NO_PFN, np.int64)
        #: The pfn cache the fast path probes (a ``BookeTLB``), or None.
        self.pcache = None

    @property
    def code(self) -> int:
        """The source's number in the fast path (``emu.codes.PFN_SOURCE``)."""
        return PFN_SOURCE[self.name]

    def register(self) -> int:
        """Called once when the memslot is registered, before the run; returns cycles."""
        return 0

    def lookup(self, cpu, vcpu, gfn: int, gi: int, profile: bool = True) -> int:
        """The pfn of RAM frame ``gfn`` for the C path, which guest entry ``gi``
        maps (-1: none); charges what it costs.  ``profile``: see
        :meth:`emu.kvm.vm.KvmVM.gfn_to_pfn`."""
        raise NotImplementedError

    def put_shadow_ref(self, cpu, vcpu, gi: int) -> None:
        """A shadow slot that mapped a page of this VM (for guest entry ``gi``)
        is released."""

    def memory_bytes(self) -> dict:
        """Bytes of the VM's pfn bookkeeping, and of the guest pages it pins."""
        return {}


class Gup(PfnSource):
    """get_user_pages on every fill; the shadow slot holds the page reference
    until it is released (docs/kvm440.md §2.5)."""

    name = "gup"
    does = "nothing: every fill calls get_user_pages, and each shadow slot holds its page"

    def lookup(self, cpu, vcpu, gfn: int, gi: int, profile: bool = True) -> int:
        return self.vm.gfn_to_pfn(cpu, vcpu, gfn, profile)

    def put_shadow_ref(self, cpu, vcpu, gi: int) -> None:
        cpu.charge("c_path", self.costs["put_page"])

    def memory_bytes(self) -> dict:
        # one page reference per shadow slot in use (docs/kvm440.md §2.5)
        held = sum(int((v.ctx.arrays["hwref_gi"] >= 0).sum()) for v in self.vm.vcpus)
        return {"pinned_pages": held * 4096}


class PinAll(PfnSource):
    """Every guest page faulted in and pinned at memslot registration; a table
    gfn -> pfn the assembly handler reads."""

    name = "pin-all"
    does = "every page, faulted in and pinned when the memslot is registered"

    def __init__(self, vm, kcfg):
        super().__init__(vm, kcfg)
        self.pin = np.full(vm.memslots.memory_pages, NO_PFN, np.int64)

    def register(self) -> int:
        """Fault in and pin every page (before the run); returns the cycles."""
        vm, c = self.vm, self.costs
        pages = vm.memslots.memory_pages
        vm.fault_in_all()
        self.pin[:] = vm.memslots.host_pfn
        return pages * (c["host_page_fault"] + c["pin_page"])

    def lookup(self, cpu, vcpu, gfn: int, gi: int, profile: bool = True) -> int:
        cpu.charge("c_path", self.costs["c_pfn_lookup"])
        return int(self.pin[gfn])

    def memory_bytes(self) -> dict:
        pages = self.vm.memslots.memory_pages
        return {"pinned_pages": pages * 4096,
                "pfn_table": pages * self.costs["pfn_table_entry_bytes"]}


class PfnCache(PfnSource):
    """A cache of ``kvm.pfn_cache_entries`` pfns, replaced by ``kvm.pfn_cache_policy``;
    a cached page stays pinned, an evicted one is put."""

    name = "pfn-cache"
    does = "the N most recently used pages, pinned while cached"

    def __init__(self, vm, kcfg):
        super().__init__(vm, kcfg)
        self.pcache = new_pfn_cache(vm.machine.backend, kcfg.pfn_cache_entries,
                                    kcfg.pfn_cache_policy, vm.machine.seed_int("pcache", vm.index))

    def lookup(self, cpu, vcpu, gfn: int, gi: int, profile: bool = True) -> int:
        c, pcache = self.costs, self.pcache
        pfn = cache_probe(pcache, gfn)
        cpu.charge("c_path", c["c_pfn_lookup"])
        if pfn >= 0:
            return pfn
        pfn = self.vm.gfn_to_pfn(cpu, vcpu, gfn, profile)
        cycles = c["pfn_cache_insert"]
        if cache_insert(pcache, gfn, pfn):
            cycles += c["put_page"]              # the evicted page is unpinned
        cpu.charge("c_path", cycles)
        return pfn

    def memory_bytes(self) -> dict:
        return {"pfn_cache": self.pcache.entries * self.costs["pfn_cache_entry_bytes"],
                "pinned_pages": self.pcache.valid_count() * 4096}


def new_pfn_cache(backend, entries: int, policy: str, seed: int):
    """An empty pfn cache: a fully associative array of ``entries`` frames,
    replaced by ``policy``, on ``backend`` (a module of :func:`emu.engine.get`)."""
    return backend.BookeTLB(entries, entries, policy, -1, 12, seed)


def cache_probe(pcache, gfn: int) -> int:
    """The pfn the cache holds for ``gfn`` (marked used), or -1."""
    j = pcache.find(gfn << 12, 0, 0)
    if j < 0:
        return -1
    pcache.use(j)
    return int(pcache.rpn_arr[j]) >> 12


def cache_insert(pcache, gfn: int, pfn: int) -> bool:
    """Put ``gfn -> pfn`` in the cache, in the slot its policy picks; True if that
    evicted a page (which the caller unpins)."""
    j = pcache.choose_victim(gfn << 12)
    evicted = bool(pcache.valid_arr[j])
    pcache.write(j, gfn << 12, 12, 0, 0, pfn << 12, 0, -1)
    return evicted


class GuestTlbRefs(PfnSource):
    """Each 4 KB guest TLB entry keeps the pfn of its page while it lives
    (KVM e500's tlb_refs, docs/kvm440.md §4.2); a ``tlbwe`` with V clear leaves
    it held, for the next ``tlbwe`` that maps the entry to put (or, in the
    design of 46f43c6e, the guest's flash invalidate)."""

    name = "guest-tlb-refs"
    does = "the page of each 4 KB guest TLB entry while that entry lives"

    def lookup(self, cpu, vcpu, gfn: int, gi: int, profile: bool = True) -> int:
        gref = vcpu.ctx.arrays["gref"]
        small = gi >= 0 and vcpu.gtlb.shift_arr[gi] == 12
        if small and gref[gi] >= 0:
            cpu.charge("c_path", self.costs["c_pfn_lookup"])
            return int(gref[gi])
        pfn = self.vm.gfn_to_pfn(cpu, vcpu, gfn, profile)
        if small:
            gref[gi] = pfn
        return pfn

    def put_shadow_ref(self, cpu, vcpu, gi: int) -> None:
        # a shadow of an entry larger than 4 KB (a TLB1 page) held its own
        # reference (kvmppc_e500_tlb1_map); a 4 KB entry's is the entry's
        if gi >= 0 and int(vcpu.gtlb.shift_arr[gi]) != 12:
            cpu.charge("c_path", self.costs["put_page"])

    def memory_bytes(self) -> dict:
        # the page each 4 KB guest TLB entry holds a reference to
        held = sum(int((v.ctx.arrays["gref"] >= 0).sum()) for v in self.vm.vcpus)
        return {"pinned_pages": held * 4096}


def _registry(*classes) -> dict:
    by_name = {cls.name: cls for cls in classes}
    if set(by_name) != set(PFN_SOURCES) or len(by_name) != len(classes):
        raise ImportError(f"emu.kvm.pfn: the sources {sorted(by_name)} do not match the "
                          f"fast path's numbering {sorted(PFN_SOURCES)}")
    return {name: by_name[name] for name in PFN_SOURCES}


#: Every pfn source, by name, in the order the fast path numbers them.
CLASSES = _registry(Gup, PinAll, PfnCache, GuestTlbRefs)
#: Their names (the choices of ``kvm.pfn_source``).
NAMES = tuple(CLASSES)


def make_pfn_source(vm, kcfg) -> PfnSource:
    """The pfn source ``kcfg.pfn_source`` of ``vm``; ConfigError for an unknown name."""
    cls = CLASSES.get(kcfg.pfn_source)
    if cls is None:
        raise ConfigError(f"kvm.pfn_source: unknown pfn source {kcfg.pfn_source!r} "
                          f"(choose from: {', '.join(NAMES)})")
    return cls(vm, kcfg)

"""``e500-flush-on-put``: early KVM e500 (e500_tlb.c @46f43c6e) flushes the TLB on every
switch to guest user mode and at vcpu_put."""

from __future__ import annotations

import numpy as np

from emu.codes import CAUSE
from emu.hw.e500 import GUEST_TLB0_ENTRIES, tlb1_pool_size, tlbil_all
from emu.kvm.shadow import drop_guest_ref, release_guest_entry, release_slot
from emu.kvm.strategies.base import NEEDS_THE_E500, Strategy


class E500FlushOnPut(Strategy):
    """Early KVM e500 as 46f43c6e ran it (docs/kvm440.md §4.2).

    * A shadow carries the guest entry's TID and the hardware PID is the guest
      PID (``kvmppc_e500_shadow_map``): a guest PID change needs nothing.
    * ``kvmppc_mmu_priv_switch(usermode=1)``: on every switch to guest user
      mode (each rfi to user: a system call's return, a delivered miss's, a
      tick's) the TLB1 shadows are released and ``_tlbil_all`` flash-
      invalidates the whole TLB, host entries included (the shadows made in
      supervisor mode carry supervisor permissions in their user bits).
    * vcpu_put: ``_tlbil_all``; vcpu_load writes back every shadow of the
      vCPU's TLB1 pool that is valid in its ``shadow_tlb[1]``
      (``kvmppc_e500_tlb_load``), whether or not it was still in hardware at
      the put: a flush that leaves the shadows valid in software (the guest's
      ``mtspr MMUCSR0``, whose TLB1 entries are IPROT) takes them out of
      hardware only.
    * Guest TLB1 (kernel) pages are shadowed 4 KB at a time into the TLB1
      pool: TLB1 entries minus the host's CAMs, KVM's own round robin
      (``kvmppc_e500_tlb1_map``), each with a ``gfn_to_page``; guest TLB0
      pages into TLB0 at the way the hardware's next victim picks (MAS0 is
      left as the last miss set it), from the shadow saved at the guest's
      ``tlbwe``, whose page reference lives as long as the guest entry: the
      ``guest-tlb-refs`` pfn source.
    * The guest's ``tlbwe`` over a valid TLB0 entry drops the old page when it
      maps the new one (``kvmppc_e500_shadow_map``) but leaves the old shadow
      in hardware: nothing invalidates it before the next ``_tlbil_all``,
      which the switch to guest user mode after the guest's handler runs
      (``kvmppc_e500_emul_tlbwe`` invalidates only a TLB1 entry's shadows).
      A ``tlbwe`` with V clear maps nothing, so the old page stays held until
      a ``tlbwe`` maps the entry again or the guest's ``mtspr MMUCSR0``.
    * The guest's ``tlbwe`` over a valid TLB1 entry invalidates the pool
      shadows that overlap its address range with its TID or TID 0
      (``kvmppc_e500_tlb1_invalidate``), whichever guest entry they shadow.
    * The guest's ``mtspr MMUCSR0`` invalidates its TLB0 entries, putting
      every page they hold, and runs ``_tlbil_all``.
    * A miss searches the guest TLB linearly, TLB0's 256 entries then TLB1
      (``kvmppc_e500_tlb_index``).
    """

    name = "e500-flush-on-put"
    origin = "early KVM e500 (2009-2010, e500_tlb.c @46f43c6e; docs/kvm440.md §4.2)"
    does = ("flushes the whole TLB (host entries too) on every switch to guest user mode "
            "and at vcpu_put; reloads its TLB1 shadows at vcpu_load")
    isolation = "every vcpu_put flushes the whole TLB"
    save_restore_work = ("flushing the TLB on every return to guest user mode and at vcpu_put, "
                         "reloading TLB1 at vcpu_load")
    cores = ("e500",)
    refusal = NEEDS_THE_E500
    # shadow_pages[0][esel]: the page of each guest TLB0 entry, taken at its tlbwe
    # (kvmppc_e500_stlbe_map); a refill rewrites the saved shadow (kvmppc_mmu_map
    # case 0) without gfn_to_page; each TLB1 fill takes one (kvmppc_e500_tlb1_map)
    historical_pfn_source = "guest-tlb-refs"
    shipped = "46f43c6e"
    linear_search = True

    def __init__(self, costs, hwater: int, tid_scheme=None, core: str = "e500"):
        super().__init__(costs, hwater, tid_scheme, core)
        # shadow TID = guest TID, hardware PID = guest PID: the tagging of 2.6.26's 440
        self.tid_scheme = "guest-tid"
        #: per vCPU context id: its TLB1 pool shadows as its shadow_tlb[1] holds
        #: them, {flat index: entry}, kept when a flush takes them out of hardware
        self.pools: dict[int, dict] = {}

    def pool_indices(self, cpu) -> range:
        """Flat hardware indices of the TLB1 pool (``to_htlb1_esel``: top down)."""
        virt = cpu.virt
        n0, n1 = virt.tlb.entries, virt.tlb1.entries
        return range(n0 + n1 - tlb1_pool_size(n1), n0 + n1)

    def flush(self, cpu, vcpu) -> int:
        """``_tlbil_all``: TLB0 and every non-IPROT TLB1 entry; returns its cycles."""
        tlbil_all(cpu, vcpu.ctx.ctx, CAUSE["flush"])
        return self.costs["e500_flush"]

    def priv_switch(self, cpu, vcpu, usermode: bool) -> int:
        """kvmppc_mmu_priv_switch: to user mode, release every TLB1 shadow
        (kvmppc_e500_stlbe_invalidate over the pool) and ``_tlbil_all``; to
        supervisor mode, nothing."""
        vcpu.ctx.guest_pr = 1 if usermode else 0
        cycles = self.set_shadow_pids(cpu, vcpu)
        if usermode:
            pool = self.pool_indices(cpu)
            for i in pool:
                release_slot(cpu, vcpu, i, CAUSE["flush"])
            self.pools.pop(vcpu.ctx.ctx, None)
            cycles += len(pool) * self.costs["priv_switch_per_entry"] + self.flush(cpu, vcpu)
        return cycles

    def save_pool(self, cpu, vcpu) -> None:
        """Keep the vCPU's TLB1 pool shadows still in hardware (its ``shadow_tlb[1]``),
        before a ``_tlbil_all`` that leaves them valid in software."""
        pool = self.pools.setdefault(vcpu.ctx.ctx, {})
        pool.update(self.pool_shadows(cpu, vcpu))

    def vcpu_put(self, cpu, vcpu) -> int:
        """kvmppc_e500_tlb_put: ``_tlbil_all`` (the pool's shadows stay in the vCPU)."""
        self.save_pool(cpu, vcpu)
        return self.flush(cpu, vcpu)

    def vcpu_load(self, cpu, vcpu) -> int:
        """kvmppc_e500_tlb_load: write back each pool shadow valid in software
        (MAS0-3, 7, tlbwe): every slot the vCPU filled that no privilege switch
        or TLB1 invalidation has released since."""
        ctx = vcpu.ctx.ctx
        hwref = vcpu.ctx.arrays["hwref_gi"]
        pool = self.pools.get(ctx, {})
        for i in [i for i in pool if hwref[i] < 0]:       # released since it was kept
            del pool[i]
        for i, (_v, ea, shift, tid, ts, rpn, attr, owner) in sorted(pool.items()):
            cpu.write(i, ea, shift, tid, ts, rpn, owner, ctx, attr)
        return len(pool) * self.costs["e500_tlb1_reload_per_entry"]

    def release_guest_entry(self, cpu, vcpu, gi: int, reason: int) -> int:
        """kvmppc_e500_emul_tlbwe @46f43c6e: over a guest TLB1 entry, the pool
        shadows in its address range with its TID or TID 0 are invalidated
        (:meth:`tlb1_invalidate`); a guest TLB0 entry's old shadow stays in
        hardware for the next ``_tlbil_all`` to remove, and its page stays held
        in ``shadow_pages[0]`` until a ``tlbwe`` maps the entry again
        (kvmppc_e500_shadow_map drops it then) or the guest's ``mtspr MMUCSR0``
        releases it: a ``tlbwe`` with V clear maps nothing, so it puts nothing."""
        if gi < GUEST_TLB0_ENTRIES:
            return release_guest_entry(cpu, vcpu, gi, reason, in_hardware=True, put_page=False)
        return self.tlb1_invalidate(cpu, vcpu, gi, reason)

    def tlb1_invalidate(self, cpu, vcpu, gi: int, reason: int) -> int:
        """kvmppc_e500_tlb1_invalidate @46f43c6e for guest TLB1 entry ``gi``, about
        to be overwritten: every pool shadow valid in software whose page
        overlaps the entry's address range and whose TID is 0 or the entry's
        (``if (tid && (tid != pid)) continue``) is released, its page put, and
        written back invalid at its hardware index, whichever guest entry it
        shadows.  Returns the slots released."""
        gtlb = vcpu.gtlb
        shift = int(gtlb.shift_arr[gi])
        start = int(gtlb.vpn_arr[gi]) << shift
        end, pid = start + (1 << shift) - 1, int(gtlb.tid_arr[gi]) & 0xff
        released = 0
        for i, shadow in list(self.pool_shadows(cpu, vcpu)):
            _valid, ea, s_shift, tid, _ts, _rpn, _attr, _owner = shadow
            if end < ea or start > ea + (1 << s_shift) - 1 or (tid and tid != pid):
                continue
            release_slot(cpu, vcpu, i, reason)
            released += 1
        drop_guest_ref(cpu, vcpu, gi)
        return released

    def pool_shadows(self, cpu, vcpu):
        """``(flat index, entry)`` of each pool slot the vCPU filled and has not
        released since (:meth:`pool_shadow`)."""
        hwref = vcpu.ctx.arrays["hwref_gi"]
        for i in self.pool_indices(cpu):
            shadow = self.pool_shadow(cpu, vcpu, i) if hwref[i] >= 0 else None
            if shadow is not None:
                yield i, shadow

    def pool_shadow(self, cpu, vcpu, i: int):
        """The shadow in pool slot ``i`` (flat index) of the vCPU's ``shadow_tlb[1]``:
        the hardware entry while the vCPU's own write is there, else the one
        kept when a flush took it out of hardware (None if there is none)."""
        ctx, virt = vcpu.ctx.ctx, cpu.virt
        j = i - virt.tlb.entries
        if virt.tlb1.valid_arr[j] and virt.tlb1.owner_arr[j] >> 8 == ctx:
            return virt.tlb1.read(j)
        return self.pools.get(ctx, {}).get(i)

    def guest_flash_invalidate(self, cpu, vcpu) -> int:
        """kvmppc_e500_emul_mt_mmucsr0: kvmppc_e500_gtlbe_invalidate runs over every
        guest TLB0 entry, valid or not, and each page ``shadow_pages[0]`` still
        holds is put (kvmppc_e500_stlbe_invalidate: the shadow of an entry the
        guest invalidated by ``tlbwe`` is still valid), then ``_tlbil_all``; the
        pool's shadows of the guest's IPROT TLB1 entries stay valid in software."""
        super().guest_flash_invalidate(cpu, vcpu)
        for gi in np.flatnonzero(vcpu.ctx.arrays["gref"][:GUEST_TLB0_ENTRIES] >= 0):
            drop_guest_ref(cpu, vcpu, int(gi))
        self.save_pool(cpu, vcpu)
        return self.flush(cpu, vcpu)

    def memory_bytes(self) -> dict:
        # shadow_tlb[2][] and shadow_pages[2][] over the guest TLB's 256 + 16
        # entries; shadow_pages holds struct page pointers, 4 bytes on ppc32
        return {"shadow_tlb": 272 * self.costs["shadow_entry_bytes"], "shadow_refs": 272 * 4}

"""``shadow``: KVM-440 in Linux 2.6.26 lays its shadow array into hardware on every entry."""

from __future__ import annotations

import numpy as np

from emu.codes import CAUSE
from emu.hw.e500 import TLB1_ENTRIES, tlb1_pool_size
from emu.kvm.shadow import (invalidate_range, mark_modified, new_shadow_array, release_slot,
                             restore_shadow_array)
from emu.kvm.strategies.base import Strategy


class Shadow(Strategy):
    """KVM-440 2.6.26: rewrite the whole shadow array into hardware on every entry.

    The entry loop of ``lightweight_exit`` runs over indices 0..hwater-1
    (``cmpw r6,r8`` with r8 = hwater): 62 x (3 tlbre + 3 tlbwe + 13) ≈ 1,180
    instructions per entry (booke_interrupts.S @bbf45ba5; docs/kvm440.md
    §2.3, docs/kvm440.md §2.10).  Nothing at vcpu_load or vcpu_put (powerpc.c
    @bbf45ba5).  It only ran in the guest-tid era.

    **Hypothetical on the e500** (KVM e500 never shipped it): the shadow
    image holds every hardware (set, way) of TLB0 and the TLB1 pool; a
    guest TLB0 shadow goes to its set at the way MAS0[ESEL] names (as
    @0164c0f0 writes it), a guest TLB1 one to the pool; every guest entry
    reads back and rewrites each of them, one ``tlbre`` and one ``tlbwe``
    through the MAS registers per entry (``e500_tlbre_per_entry`` +
    ``e500_tlb1_reload_per_entry``): 527 entries on a v2 core, 271 on a v1.
    """

    name = "shadow"
    origin = "KVM-440 in Linux 2.6.26 (merge bbf45ba5; booke_interrupts.S @bbf45ba5)"
    does = "rewrites the whole shadow TLB into hardware indices 0..hwater-1 on every guest entry"
    isolation = ("each entry rewrites indices 0..hwater-1 from the vCPU's own shadow array, "
                 "so nothing of another vCPU survives")
    save_restore_work = "restoring the shadow TLB on every guest entry"
    cores = ("440", "e500")
    eras = {"guest-tid": "2.6.26"}
    default_era = "guest-tid"
    entry_loop = True
    needs_index = True
    esel = True

    @property
    def loop_len(self):
        """Hardware indices the entry loop writes: 0..hwater-1 on the 440, every
        flat index on the e500 (its restore skips the host's CAMs)."""
        return self.hw_entries if self.core == "e500" else self.hwater

    def e500_restored(self) -> int:
        """e500: the entries each full restore reads and writes (TLB0 and the pool)."""
        return self.hw_entries - TLB1_ENTRIES + tlb1_pool_size(TLB1_ENTRIES)

    def entry_base(self) -> int:
        c = self.costs
        if self.core == "e500":
            return self.e500_restored() * (c["e500_tlbre_per_entry"]
                                           + c["e500_tlb1_reload_per_entry"])
        return self.hwater * c["shadow_restore_per_entry"]

    def new_shadow_array(self, backend):
        if self.core == "e500":      # the image of every flat index, written at the index
            return backend.BookeTLB(self.hw_entries, self.hw_entries, "none")
        return new_shadow_array(backend, self.hwater)

    def restore(self, cpu, vcpu) -> None:
        """Lay the shadow image into hardware (what the next entry's loop does)."""
        if self.core == "e500":
            restore_e500(cpu, vcpu)
        else:
            restore_shadow_array(cpu, vcpu, self.loop_len)

    def vcpu_load(self, cpu, vcpu) -> int:
        self.restore(cpu, vcpu)
        return 0            # the restore is the entry work the next entry charges

    def release_guest_entry(self, cpu, vcpu, gi: int, reason: int) -> int:
        """kvmppc_mmu_invalidate(vcpu, eaddr, get_tlb_end, asid) of the old entry
        (emulate.c 2.6.26, 44x_tlb.c @83aae4a8, @49dd2c49, 2.6.28): the slots
        0..hwater in its address range whose shadow TID is 0 or ``pid``, with
        pid = the entry's TID in the guest-tid era and ``!TID`` after
        (:func:`~emu.kvm.shadow.invalidate_range`).  On the e500 (hypothetical)
        the shadows of the entry, by guest index."""
        if self.core == "e500":
            return super().release_guest_entry(cpu, vcpu, gi, reason)
        gtid = int(vcpu.gtlb.tid_arr[gi])
        pid = gtid if self.tid_scheme == "guest-tid" else int(gtid == 0)
        if self.tid_scheme in ("guest-tid", "swap-pid"):
            # until 0bd595fc the loop ran with current->mm->mmap_sem held for
            # writing (down_write ... up_write, as the privilege switch's)
            cpu.charge("c_path", self.costs["mmap_sem_write"])
        return invalidate_range(cpu, vcpu, gi, pid, self.hwater, reason)

    def release_process_shadows(self, cpu, vcpu) -> int:
        """tid01 with a shadow array (44x_tlb.c 2.6.28 kvmppc_set_pid): every one of
        the slots whose shadow TID is 0 is released and marked modified, the
        never-used and already released ones included (their TID stays 0)."""
        process = np.flatnonzero(vcpu.shadow.tid_arr == 0)
        held = vcpu.ctx.arrays["hwref_gi"]
        for i in process[held[process] >= 0]:      # the others hold nothing to release
            release_slot(cpu, vcpu, int(i), CAUSE["guest-context-switch"])
        if self.flags_released:
            for i in process:
                mark_modified(vcpu, int(i))
        return vcpu.shadow.entries * self.costs["set_pid_per_slot"]

    def memory_bytes(self) -> dict:
        c = self.costs
        n = self.hw_entries if self.core == "e500" else 64
        return {"shadow_tlb": n * c["shadow_entry_bytes"],
                "shadow_pages": n * c["shadow_page_ptr_bytes"],
                "host_tlb_copy": n * c["shadow_entry_bytes"]}


def restore_e500(cpu, vcpu) -> None:
    """Write the vCPU's shadow image over every TLB0 (set, way) and its TLB1
    pool, entry by entry through MAS0[ESEL]: an entry that already holds the
    shadow is left alone, an invalid shadow invalidates the hardware entry
    (a host entry too); the host's CAMs below the pool stay."""
    shadow, ctx, virt = vcpu.shadow, vcpu.ctx.ctx, cpu.virt
    n0, n1 = virt.tlb.entries, virt.tlb1.entries
    pool = range(n0 + n1 - tlb1_pool_size(n1), n0 + n1)
    for i in (*range(n0), *pool):
        t, j = (virt.tlb, i) if i < n0 else (virt.tlb1, i - n0)
        valid, ea, shift, tid, ts, rpn, attr, owner = shadow.read(i)
        if valid:
            if t.read(j) != (valid, ea, shift, tid, ts, rpn, attr, owner):
                cpu.write(i, ea, shift, tid, ts, rpn, owner, ctx, attr)
        elif t.valid_arr[j]:
            cpu.invalidate(i, ctx)

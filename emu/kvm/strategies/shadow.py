"""``shadow``: KVM-440 in Linux 2.6.26 lays its shadow array into hardware on every entry."""

from __future__ import annotations

import numpy as np

from emu.codes import CAUSE
from emu.kvm.shadow import mark_modified, new_shadow_array, release_slot, restore_shadow_array
from emu.kvm.strategies.base import CANNOT_CHOOSE_AN_INDEX, Strategy


class Shadow(Strategy):
    """KVM-440 2.6.26: rewrite the whole shadow array into hardware on every entry.

    The entry loop of ``lightweight_exit`` runs over indices 0..hwater-1
    (``cmpw r6,r8`` with r8 = hwater): 62 x (3 tlbre + 3 tlbwe + 13) ≈ 1,180
    instructions per entry (booke_interrupts.S @bbf45ba5; docs/kvm440.md
    §2.3, docs/kvm440.md §2.10).  Nothing at vcpu_load or vcpu_put (powerpc.c
    @bbf45ba5).  It only ran in the guest-tid era.
    """

    name = "shadow"
    origin = "KVM-440 in Linux 2.6.26 (merge bbf45ba5; booke_interrupts.S @bbf45ba5)"
    does = "rewrites the whole shadow TLB into hardware indices 0..hwater-1 on every guest entry"
    isolation = ("each entry rewrites indices 0..hwater-1 from the vCPU's own shadow array, "
                 "so nothing of another vCPU survives")
    save_restore_work = "restoring the shadow TLB on every guest entry"
    cores = ("440",)
    refusal = CANNOT_CHOOSE_AN_INDEX
    eras = {"guest-tid": "2.6.26"}
    default_era = "guest-tid"
    entry_loop = True
    needs_index = True

    def entry_base(self) -> int:
        return self.hwater * self.costs["shadow_restore_per_entry"]

    def new_shadow_array(self, backend):
        return new_shadow_array(backend, self.hwater)

    def vcpu_load(self, cpu, vcpu) -> int:
        restore_shadow_array(cpu, vcpu, self.loop_len)
        return 0            # the restore is the entry work the next entry charges

    def release_process_shadows(self, cpu, vcpu) -> int:
        """tid01 with a shadow array (44x_tlb.c 2.6.28 kvmppc_set_pid): every one of
        the 64 slots whose shadow TID is 0 is released and marked modified, the
        never-used and already released ones included (their TID stays 0)."""
        process = np.flatnonzero(vcpu.shadow.tid_arr == 0)
        held = vcpu.ctx.arrays["hwref_gi"]
        for i in process[held[process] >= 0]:      # the others hold nothing to release
            release_slot(cpu, vcpu, int(i), CAUSE["guest-context-switch"])
        if self.flags_released:
            for i in process:
                mark_modified(vcpu, int(i))
        return 64 * self.costs["set_pid_per_slot"]

    def memory_bytes(self) -> dict:
        c = self.costs
        return {"shadow_tlb": 64 * c["shadow_entry_bytes"],
                "shadow_pages": 64 * c["shadow_page_ptr_bytes"],
                "host_tlb_copy": 64 * c["shadow_entry_bytes"]}

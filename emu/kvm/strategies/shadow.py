"""``shadow``: KVM-440 in Linux 2.6.26 lays its shadow array into hardware on every entry."""

from __future__ import annotations

from emu.kvm.shadow import new_shadow_array, restore_shadow_array
from emu.kvm.strategies.base import CANNOT_CHOOSE_AN_INDEX, Strategy


class Shadow(Strategy):
    """KVM-440 2.6.26: rewrite the whole shadow array into hardware on every entry.

    ≈62 × (3 tlbre + 3 tlbwe + ~13) ≈ 1,180 instructions per entry
    (booke_interrupts.S @bbf45ba5; docs/kvm440.md §2.3).
    """

    name = "shadow"
    origin = "KVM-440 in Linux 2.6.26 (booke_interrupts.S @bbf45ba5)"
    does = "rewrites the whole shadow TLB into hardware indices 0..hwater on every guest entry"
    isolation = ("each entry rewrites indices 0..hwater from the vCPU's own shadow array, "
                 "so nothing of another vCPU survives")
    save_restore_work = "restoring the shadow TLB on every guest entry"
    cores = ("440",)
    refusal = CANNOT_CHOOSE_AN_INDEX

    def entry_base(self) -> int:
        return (self.hwater + 1) * self.costs["shadow_restore_per_entry"]

    def new_shadow_array(self, backend):
        return new_shadow_array(backend, self.hwater)

    def vcpu_load(self, cpu, vcpu) -> int:
        restore_shadow_array(cpu, vcpu, self.hwater)
        return 0            # the restore is the entry work the next entry charges

    def memory_bytes(self) -> dict:
        c = self.costs
        return {"shadow_tlb": 64 * c["shadow_entry_bytes"],
                "shadow_pages": 64 * c["shadow_page_ptr_bytes"],
                "host_tlb_copy": 64 * c["shadow_entry_bytes"]}

"""``shadow-modified``: commit 83aae4a8 rewrites only the shadow entries modified since the last entry."""

from __future__ import annotations

from emu.kvm.shadow import new_shadow_array, restore_shadow_array
from emu.kvm.strategies.base import CANNOT_CHOOSE_AN_INDEX, Strategy
from emu.kvm.strategies.shadow import Shadow


class ShadowModified(Strategy):
    """Commit 83aae4a8: on entry rewrite only the entries modified since the last one.

    A scan of one byte flag per index up to hwater, 16 word stores to clear the
    flags, and 3 tlbwe per modified entry (docs/kvm440.md §2.3).  At
    vcpu_load the host may have overwritten any index, so every valid
    shadow entry counts as modified.
    """

    name = "shadow-modified"
    origin = "commit 83aae4a8 (booke_interrupts.S, 44x_tlb.c)"
    does = ("rewrites only the shadow TLB entries modified since the last guest entry "
            "(a flag per index)")
    isolation = Shadow.isolation
    save_restore_work = "rewriting the modified shadow TLB entries on guest entry"
    cores = ("440",)
    refusal = CANNOT_CHOOSE_AN_INDEX

    def entry_base(self) -> int:
        c = self.costs
        return (self.hwater + 1) * c["shadow_mod_scan_per_entry"] + c["shadow_mod_clear"]

    def entry_per_mod(self) -> int:
        return self.costs["shadow_mod_write_per_entry"]

    def new_shadow_array(self, backend):
        return new_shadow_array(backend, self.hwater)

    def vcpu_load(self, cpu, vcpu) -> int:
        mod = vcpu.ctx.arrays["mod"]
        valid = vcpu.shadow.valid_arr
        for i in range(self.hwater + 1):
            if valid[i] and not mod[i]:
                mod[i] = 1
                vcpu.ctx.n_modified += 1
        restore_shadow_array(cpu, vcpu, self.hwater)
        return 0

    def memory_bytes(self) -> dict:
        c = self.costs
        return {"shadow_tlb": 64 * c["shadow_entry_bytes"],
                "shadow_pages": 64 * c["shadow_page_ptr_bytes"],
                "shadow_tlb_mod": 64 * c["shadow_mod_flag_bytes"]}

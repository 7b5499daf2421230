"""``shadow-modified``: commit 83aae4a8 rewrites only the shadow entries modified since the last entry."""

from __future__ import annotations

from emu.kvm.shadow import mark_all_modified, restore_shadow_array, tlbia
from emu.kvm.strategies.shadow import Shadow


class ShadowModified(Shadow):
    """Commit 83aae4a8: on entry rewrite only the entries modified since the last one.

    The entry loop scans one byte flag per index 0..hwater-1 (5 instructions
    each), rewrites each modified index (7 instructions and 3 tlbwe) and clears
    the 64 flags with 16 word stores (36 instructions; booke_interrupts.S
    @83aae4a8, docs/kvm440.md §2.10).  Every fill, release, privilege-switch flush
    and PID-change release sets a flag.  vcpu_put runs ``_tlbia()`` and
    vcpu_load marks 0..hwater modified "so that they will all be reloaded on the
    next vcpu run" (44x.c 2.6.28; 83aae4a8 and 49dd2c49 inferred the same,
    docs/kvm440.md §2.10).  It shipped in three TID eras.
    """

    name = "shadow-modified"
    origin = ("commit 83aae4a8 (booke_interrupts.S, 44x_tlb.c), then 49dd2c49 (swap-pid) "
              "and Linux 2.6.28 (tid01)")
    does = ("rewrites only the shadow TLB entries modified since the last guest entry "
            "(a flag per index); _tlbia at vcpu_put")
    save_restore_work = "rewriting the modified shadow TLB entries on guest entry"
    eras = {"guest-tid": "83aae4a8", "swap-pid": "49dd2c49", "tid01": "2.6.28"}
    default_era = "tid01"
    flags_released = True

    def entry_base(self) -> int:
        c = self.costs
        return self.hwater * c["shadow_mod_scan_per_entry"] + c["shadow_mod_clear"]

    def entry_per_mod(self) -> int:
        return self.costs["shadow_mod_write_per_entry"]

    def vcpu_load(self, cpu, vcpu) -> int:
        mark_all_modified(vcpu, self.hwater + 1)
        restore_shadow_array(cpu, vcpu, self.loop_len)
        return 0            # the rewrite is the entry work the next entry charges

    def vcpu_put(self, cpu, vcpu) -> int:
        return tlbia(cpu, vcpu.ctx.ctx, self.hwater, self.costs)

    def memory_bytes(self) -> dict:
        c = self.costs
        return {"shadow_tlb": 64 * c["shadow_entry_bytes"],
                "shadow_pages": 64 * c["shadow_page_ptr_bytes"],
                "shadow_tlb_mod": 64 * c["shadow_mod_flag_bytes"]}

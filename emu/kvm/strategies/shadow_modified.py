"""``shadow-modified``: commit 83aae4a8 rewrites only the shadow entries modified since the last entry."""

from __future__ import annotations

from emu.codes import CAUSE
from emu.hw.e500 import HOST_CAMS, TLB1_ENTRIES, tlbil_all
from emu.kvm.shadow import mark_all_modified, tlbia
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

    **Hypothetical on the e500**: as :class:`Shadow` there, with one flag per
    restored entry; each modified one is written through the MAS registers
    (``e500_tlb1_reload_per_entry``) and vcpu_put runs ``_tlbil_all``.
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
        if self.core == "e500":      # one flag per restored entry, cleared 4 to a word
            n = self.e500_restored()
            return n * c["shadow_mod_scan_per_entry"] + c["shadow_mod_clear"] * n // 64
        return self.hwater * c["shadow_mod_scan_per_entry"] + c["shadow_mod_clear"]

    def entry_per_mod(self) -> int:
        c = self.costs
        if self.core == "e500":      # one entry written through the MAS registers
            return c["e500_tlb1_reload_per_entry"]
        return c["shadow_mod_write_per_entry"]

    def vcpu_load(self, cpu, vcpu) -> int:
        if self.core == "e500":      # every restored entry: TLB0 and the pool, not the CAMs
            mark_all_modified(vcpu, self.loop_len)
            cams = slice(self.hw_entries - TLB1_ENTRIES, self.hw_entries - TLB1_ENTRIES + HOST_CAMS)
            vcpu.ctx.arrays["mod"][cams] = 0
            vcpu.ctx.n_modified -= HOST_CAMS
        else:
            mark_all_modified(vcpu, self.hwater + 1)
        self.restore(cpu, vcpu)
        return 0            # the rewrite is the entry work the next entry charges

    def vcpu_put(self, cpu, vcpu) -> int:
        if self.core == "e500":      # the e500's _tlbia: _tlbil_all
            tlbil_all(cpu, vcpu.ctx.ctx, CAUSE["flush"])
            return self.costs["e500_flush"]
        return tlbia(cpu, vcpu.ctx.ctx, self.hwater, self.costs)

    def memory_bytes(self) -> dict:
        c = self.costs
        n = self.hw_entries if self.core == "e500" else 64
        return {"shadow_tlb": n * c["shadow_entry_bytes"],
                "shadow_pages": n * c["shadow_page_ptr_bytes"],
                "shadow_tlb_mod": n * c["shadow_mod_flag_bytes"]}

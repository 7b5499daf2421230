"""``direct-save-on-switch``: later KVM-440 saves the vCPU's entries at vcpu_put and writes them back at vcpu_load."""

from __future__ import annotations

from emu.codes import CAUSE
from emu.kvm.strategies.base import CANNOT_CHOOSE_AN_INDEX, Strategy


class DirectSaveOnSwitch(Strategy):
    """Later KVM-440: ``direct`` plus save at vcpu_put and restore at vcpu_load.

    vcpu_put: tlbre each modified index up to hwater, then invalidate every
    valid TS=1 entry; vcpu_load: tlbwe every valid saved entry
    (kvmppc_44x_tlb_put / _load, 44x_tlb.c @67577927; reference §2.2).
    """

    name = "direct-save-on-switch"
    origin = "later KVM-440 (kvmppc_44x_tlb_put / _load, 44x_tlb.c @67577927)"
    does = ("inserts shadow mappings straight into the hardware TLB; saves the vCPU's entries "
            "at vcpu_put and writes them back at vcpu_load")
    isolation = ("vcpu_put invalidates every valid TS=1 entry (kvmppc_44x_tlb_put, "
                 "docs/kvm440.md §2.2)")
    save_restore_work = "saving guest entries at vcpu_put and writing them back at vcpu_load"
    cores = ("440",)
    refusal = CANNOT_CHOOSE_AN_INDEX

    def __init__(self, costs, hwater: int):
        super().__init__(costs, hwater)
        self.saved: dict[int, list] = {}       # vCPU context id -> saved entries

    def vcpu_put(self, cpu, vcpu) -> int:
        c, ctx = self.costs, vcpu.ctx.ctx
        mod = vcpu.ctx.arrays["mod"]
        saved, cycles = [], 0
        for i in range(self.hwater + 1):
            entry = cpu.tlb.read(i)
            valid, ts, owner = entry[0], entry[4], entry[7]
            if not (valid and ts == 1):
                continue
            if owner >> 8 == ctx:
                saved.append((i, entry))
                if mod[i]:
                    cycles += c["save_on_put_per_entry"]
                reason = CAUSE["shadow-not-restored"]
            else:
                reason = CAUSE["flush"]
            cpu.invalidate(i, ctx, reason)
            cycles += c["invalidate_per_entry"]
        self.saved[ctx] = saved
        return cycles

    def vcpu_load(self, cpu, vcpu) -> int:
        ctx = vcpu.ctx.ctx
        cycles = 0
        for i, (_, ea, shift, tid, ts, rpn, _attr, owner) in self.saved.pop(ctx, []):
            cpu.write(i, ea, shift, tid, ts, rpn, owner, ctx)
            cycles += self.costs["load_on_load_per_entry"]
        vcpu.ctx.clear_modified()
        return cycles

    def memory_bytes(self) -> dict:
        c = self.costs
        return {"shadow_refs": 64 * c["shadow_ref_bytes"],
                "shadow_tlb": 64 * c["shadow_entry_bytes"],
                "shadow_tlb_mod": 64 * c["shadow_mod_flag_bytes"]}

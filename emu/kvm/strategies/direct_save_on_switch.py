"""``direct-save-on-switch``: later KVM-440 saves the vCPU's entries at vcpu_put and writes them back at vcpu_load."""

from __future__ import annotations

from emu.codes import CAUSE
from emu.kvm.strategies.base import THE_440_INDICES, Strategy


class DirectSaveOnSwitch(Strategy):
    """Later KVM-440: ``direct`` plus save at vcpu_put and restore at vcpu_load.

    vcpu_put (kvmppc_44x_tlb_put, 44x_tlb.c @67577927): for every index
    0..hwater, tlbre the hardware entry into the saved copy if its modified
    flag is set, then tlbie the index if the saved copy is valid with TS=1.
    vcpu_load (kvmppc_44x_tlb_load): tlbwe every saved valid TS=1 copy.  A
    fill sets the flag and nothing clears it, so every later put re-reads
    every index ever mapped -- whatever it holds by then: a host entry read
    back has TS=0 and is neither invalidated nor restored (docs/kvm440.md §2.10).
    """

    name = "direct-save-on-switch"
    origin = "later KVM-440 (kvmppc_44x_tlb_put / _load, 44x_tlb.c @67577927)"
    does = ("inserts shadow mappings straight into the hardware TLB; saves the vCPU's entries "
            "at vcpu_put and writes them back at vcpu_load")
    isolation = ("vcpu_put invalidates every index whose saved copy is a valid TS=1 entry "
                 "(kvmppc_44x_tlb_put, docs/kvm440.md §2.2)")
    save_restore_work = "saving guest entries at vcpu_put and writing them back at vcpu_load"
    cores = ("440",)
    refusal = THE_440_INDICES
    eras = {"tid01": "67577927"}
    default_era = "tid01"
    needs_index = True

    def __init__(self, costs, hwater: int, tid_scheme=None, core: str = "440"):
        super().__init__(costs, hwater, tid_scheme, core)
        #: vCPU context id -> its shadow_tlb[64]: the entries read back at put
        self.saved: dict[int, list] = {}

    def vcpu_put(self, cpu, vcpu) -> int:
        c, ctx = self.costs, vcpu.ctx.ctx
        mod = vcpu.ctx.arrays["mod"]
        saved = self.saved.setdefault(ctx, [None] * 64)
        cycles = (self.hwater + 1) * c["put_scan_per_entry"]
        for i in range(self.hwater + 1):
            if mod[i]:
                saved[i] = cpu.tlb.read(i)
                cycles += c["save_on_put_per_entry"]
            entry = saved[i]
            if entry is None or not (entry[0] and entry[4] == 1):
                continue
            ours = cpu.tlb.valid_arr[i] and cpu.tlb.read(i)[7] >> 8 == ctx
            cpu.invalidate(i, ctx, CAUSE["shadow-not-restored" if ours else "flush"])
            cycles += c["invalidate_per_entry"]
        return cycles

    def vcpu_load(self, cpu, vcpu) -> int:
        ctx = vcpu.ctx.ctx
        cycles = 0
        for i, entry in enumerate(self.saved.get(ctx, ())):
            if entry is None or not (entry[0] and entry[4] == 1):
                continue
            _, ea, shift, tid, ts, rpn, attr, owner = entry
            cpu.write(i, ea, shift, tid, ts, rpn, owner, ctx, attr)
            cycles += self.costs["load_on_load_per_entry"]
        return cycles

    def memory_bytes(self) -> dict:
        c = self.costs
        return {"shadow_refs": 64 * c["shadow_ref_bytes"],
                "shadow_tlb": 64 * c["shadow_entry_bytes"],
                "shadow_tlb_mod": 64 * c["shadow_mod_flag_bytes"]}

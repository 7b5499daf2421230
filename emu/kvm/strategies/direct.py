"""``direct``: commit 7924bd41 inserts shadow mappings straight into the hardware TLB."""

from __future__ import annotations

from emu.kvm.shadow import tlbia
from emu.kvm.strategies.base import Strategy


class Direct(Strategy):
    """Commit 7924bd41: insert shadow mappings straight into the hardware TLB.

    No entry loop; per-vCPU state is shadow_refs[64] (8 bytes each;
    docs/kvm440.md §2.2, §2.4).  On the 440, ``kvmppc_core_vcpu_put``
    runs ``_tlbia()``: every index 0..hwater is invalidated, host entries
    included, at every vcpu_put; the pinned entries above hwater survive and
    the shadow_refs keep their pages (44x.c @7924bd41, docs/kvm440.md §2.10).  It
    inserts through the hardware's own victim choice, so it runs on the e500
    too (where no 440 vcpu_put applies).
    """

    name = "direct"
    origin = "commit 7924bd41 (\"directly insert shadow mappings into the hardware TLB\")"
    does = ("inserts shadow mappings straight into the hardware TLB; _tlbia of indices "
            "0..hwater at vcpu_put")
    isolation = ("vcpu_put invalidates every index 0..hwater (_tlbia, 44x.c @7924bd41): "
                 "no entry of one vCPU survives into another's run")
    save_restore_work = "invalidating the TLB (_tlbia) at vcpu_put"
    violations_note = "direct flushes only on the 440"
    cores = ("440", "e500")
    eras = {"tid01": "7924bd41"}
    default_era = "tid01"

    def vcpu_put(self, cpu, vcpu) -> int:
        if self.core != "440":
            return 0
        return tlbia(cpu, vcpu.ctx.ctx, self.hwater, self.costs)

    def memory_bytes(self) -> dict:
        return {"shadow_refs": 64 * self.costs["shadow_ref_bytes"]}

"""``direct``: commit 7924bd41 inserts shadow mappings straight into the hardware TLB."""

from __future__ import annotations

from emu.codes import CAUSE
from emu.hw.e500 import tlbil_all
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
    too (hypothetical: no e500 kernel shipped it), and there its vcpu_put is
    the e500's flush of the whole TLB, ``_tlbil_all`` (host entries too, the
    IPROT CAMs kept), as 46f43c6e's put is: every guest runs with the same
    TIDs, so without a flush one vCPU's entries translate the next one's
    accesses, on either core (docs/kvm440.md §2.10, §4.2).
    """

    name = "direct"
    origin = "commit 7924bd41 (\"directly insert shadow mappings into the hardware TLB\")"
    does = ("inserts shadow mappings straight into the hardware TLB; flushes it at vcpu_put "
            "(_tlbia of indices 0..hwater on the 440, _tlbil_all on the e500)")
    isolation = ("vcpu_put flushes the TLB (_tlbia, 44x.c @7924bd41; _tlbil_all on the "
                 "e500): no entry of one vCPU survives into another's run")
    save_restore_work = "flushing the TLB at vcpu_put (_tlbia; _tlbil_all on the e500)"
    cores = ("440", "e500")
    eras = {"tid01": "7924bd41"}
    default_era = "tid01"

    def vcpu_put(self, cpu, vcpu) -> int:
        if self.core == "440":
            return tlbia(cpu, vcpu.ctx.ctx, self.hwater, self.costs)
        tlbil_all(cpu, vcpu.ctx.ctx, CAUSE["flush"])
        return self.costs["e500_flush"]

    def memory_bytes(self) -> dict:
        return {"shadow_refs": 64 * self.costs["shadow_ref_bytes"]}

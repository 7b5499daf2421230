"""``e500-flush-on-put``: early KVM e500 flushes the whole TLB at vcpu_put."""

from __future__ import annotations

from emu.codes import CAUSE
from emu.kvm.strategies.base import NEEDS_THE_E500, Strategy


class E500FlushOnPut(Strategy):
    """Early KVM e500: flush the whole TLB at vcpu_put (docs/kvm440.md §4.2).

    Every guest PID change flushes the whole TLB too.  (The reload of shadow
    TLB1 entries at vcpu_load is not modelled: this model maps every guest
    page with a 4 KB shadow in TLB0.)
    """

    name = "e500-flush-on-put"
    origin = "early KVM e500 (2009-2010, e500_tlb.c; docs/kvm440.md §4.2)"
    does = "flushes the whole TLB at vcpu_put and at every guest PID change"
    isolation = "vcpu_put flushes the whole TLB"
    save_restore_work = "flushing the TLB at vcpu_put and reloading TLB1 at vcpu_load"
    cores = ("e500",)
    refusal = NEEDS_THE_E500
    historical_pfn_source = None
    shipped = "early KVM e500"

    def _flush(self, cpu, vcpu, reason: int) -> int:
        ctx = vcpu.ctx.ctx
        for i in range(cpu.tlb.entries):
            if cpu.tlb.valid_arr[i]:
                cpu.invalidate(i, ctx, reason)
        return self.costs["e500_flush"]

    def vcpu_put(self, cpu, vcpu) -> int:
        return self._flush(cpu, vcpu, CAUSE["flush"])

    def release_process_shadows(self, cpu, vcpu) -> int:
        return (64 * self.costs["set_pid_per_slot"]
                + self._flush(cpu, vcpu, CAUSE["guest-context-switch"]))

    def memory_bytes(self) -> dict:
        return {"shadow_refs": 512 * self.costs["shadow_ref_bytes"]}

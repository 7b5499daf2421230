"""``e500-shadow-ids``: KVM e500 (commit dd9ebf1f) tags entries with per-CPU shadow IDs."""

from __future__ import annotations

from emu.codes import CAUSE
from emu.kvm.strategies.base import NEEDS_THE_E500, Strategy


class E500ShadowIds(Strategy):
    """KVM e500 2011 (commit dd9ebf1f): per-CPU shadow IDs 1..255 (reference §4.2).

    Each (vCPU, guest TID, PR) gets an ID on the physical CPU; PID0 carries the
    ID of the current guest PID, PID1 the ID of guest TID 0.  A guest PID or
    mode change only reloads PID0/PID1.  When the IDs run out, the whole TLB is
    flushed and every mapping forgotten.
    """

    name = "e500-shadow-ids"
    origin = "KVM e500, 2011 (commit dd9ebf1f, \"KVM: PPC: e500: Add shadow PID support\")"
    does = ("tags entries with per-CPU shadow IDs; a guest PID or mode change only reloads "
            "PID0/PID1")
    isolation = ("entries are tagged with per-CPU shadow IDs that no other context shares; "
                 "a flush only when the 255 IDs run out")
    save_restore_work = "on shadow-ID work (allocation, and a flush when the IDs run out)"
    cores = ("e500",)
    refusal = NEEDS_THE_E500
    historical_pfn_source = None
    shipped = "dd9ebf1f"
    MAX_ID = 255

    def __init__(self, costs, hwater: int, tid_scheme=None, core: str = "e500"):
        super().__init__(costs, hwater, tid_scheme, core)
        self.tables: dict[int, dict] = {}        # cpu index -> {(ctx, tid, pr): sid}
        self.flushes = 0

    def _sid(self, cpu, vcpu, tid: int, pr: int) -> tuple[int, int]:
        table = self.tables.setdefault(cpu.index, {})
        key = (vcpu.ctx.ctx, tid, pr)
        if key in table:
            return table[key], 0
        cycles = self.costs["e500_sid_alloc"]
        if len(table) >= self.MAX_ID:
            for i in range(cpu.tlb.entries):
                if cpu.tlb.valid_arr[i] and cpu.tlb.ts_arr[i] == 1:
                    cpu.invalidate(i, vcpu.ctx.ctx, CAUSE["flush"])
            table.clear()
            self.flushes += 1
            cycles += self.costs["e500_sid_flush"]
        table[key] = len(table) + 1
        return table[key], cycles

    def release_process_shadows(self, cpu, vcpu) -> int:
        return 0            # set_shadow_pids reloads PID0/PID1; nothing is released

    def set_shadow_pids(self, cpu, vcpu) -> int:
        pr = vcpu.ctx.guest_pr
        pid0, c0 = self._sid(cpu, vcpu, vcpu.ctx.guest_pid, pr)
        pid1, c1 = self._sid(cpu, vcpu, 0, pr)
        vcpu.ctx.shadow_pid, vcpu.ctx.pid1 = pid0, pid1
        return c0 + c1

    def memory_bytes(self) -> dict:
        # vcpu_id_table[2][256][2] of u8 ids, plus the refs (e500_tlb.c @0164c0f0)
        return {"shadow_refs": 512 * self.costs["shadow_ref_bytes"], "id_table": 2 * 256 * 2}

"""KVM's TLB strategies (DESIGN.md §4): what happens at entry, vcpu_load and vcpu_put.

Each strategy is a small class.  The fast path charges the per-entry work
through two numbers a strategy provides (``entry_base`` and
``entry_per_mod``); the hooks below run in Python at vcpu_load, vcpu_put
and guest PID changes, doing their effect on the hardware TLB and returning
the cycles they cost.

Every strategy must say how it keeps one vCPU's TS=1 entries from
translating another's accesses (DESIGN.md §4, "Isolation"):

* ``shadow`` / ``shadow-modified``: each entry rewrites indices 0..hwater
  from the vCPU's own shadow array, so nothing of another vCPU survives;
* ``direct``: nothing (commit 7924bd41 had no vcpu_put hook): two vCPUs on
  one CPU see each other's entries, and the model counts those hits;
* ``direct-save-on-switch``: vcpu_put invalidates every valid TS=1 entry
  (kvmppc_44x_tlb_put, reference/kvm440.md §2.2);
* ``e500-flush-on-put``: vcpu_put flushes the whole TLB;
* ``e500-shadow-ids``: entries are tagged with per-CPU shadow IDs that no
  other context shares; a flush only when the 255 IDs run out.
"""

from __future__ import annotations

from emu.codes import CAUSE
from emu.errors import ConfigError

NO_PID = 0xFFFF


class Strategy:
    """Base class: no TLB work anywhere (subclasses override what they do)."""

    name = ""
    uses_shadow_array = False
    releases_on_pid_change = True       # 440: guest PID change drops shadow TID 0 entries

    def __init__(self, costs, hwater: int):
        self.costs = costs
        self.hwater = hwater

    # Per full guest entry, charged by the fast path and by Python exits.
    def entry_base(self) -> int:
        return 0

    def entry_per_mod(self) -> int:
        return 0

    def vcpu_load(self, cpu, vcpu) -> int:
        """Called when ``vcpu``'s thread is scheduled in on ``cpu``; returns cycles."""
        return 0

    def vcpu_put(self, cpu, vcpu) -> int:
        """Called when ``vcpu``'s thread is scheduled out of ``cpu``; returns cycles."""
        return 0

    def memory_bytes(self) -> dict:
        """Per-vCPU bytes of TLB state besides the guest TLB (reference §2.2)."""
        return {}

    def set_shadow_pids(self, cpu, vcpu) -> int:
        """Load the hardware PID(s) for the guest's mode and PID; returns cycles."""
        # reference/kvm440.md §2.8: shadow PID 1 in guest supervisor mode, 0 in user mode
        vcpu.ctx.shadow_pid = 0 if vcpu.ctx.guest_pr else 1
        vcpu.ctx.pid1 = NO_PID
        return 0


def _restore_shadow(cpu, vcpu, hwater: int) -> None:
    """Write the vCPU's shadow array over hardware indices 0..hwater."""
    shadow, ctx = vcpu.shadow, vcpu.ctx.ctx
    for i in range(hwater + 1):
        valid, ea, shift, tid, ts, rpn, _attr, owner = shadow.read(i)
        if valid:
            if cpu.tlb.read(i) != (valid, ea, shift, tid, ts, rpn, 0, owner):
                cpu.write(i, ea, shift, tid, ts, rpn, owner, ctx)
        elif cpu.tlb.valid_arr[i]:
            cpu.invalidate(i, ctx)


class Shadow(Strategy):
    """KVM-440 2.6.26: rewrite the whole shadow array into hardware on every entry.

    ≈62 × (3 tlbre + 3 tlbwe + ~13) ≈ 1,180 instructions per entry
    (booke_interrupts.S @bbf45ba5; reference/kvm440.md §2.3).
    """

    name = "shadow"
    uses_shadow_array = True

    def entry_base(self) -> int:
        return (self.hwater + 1) * self.costs["shadow_restore_per_entry"]

    def vcpu_load(self, cpu, vcpu) -> int:
        _restore_shadow(cpu, vcpu, self.hwater)
        return 0            # the restore is the entry work the next entry charges

    def memory_bytes(self) -> dict:
        c = self.costs
        return {"shadow_tlb": 64 * c["shadow_entry_bytes"],
                "shadow_pages": 64 * c["shadow_page_ptr_bytes"],
                "host_tlb_copy": 64 * c["shadow_entry_bytes"]}


class ShadowModified(Shadow):
    """Commit 83aae4a8: on entry rewrite only the entries modified since the last one.

    A scan of one byte flag per index up to hwater, 16 word stores to clear the
    flags, and 3 tlbwe per modified entry (reference/kvm440.md §2.3).  At
    vcpu_load the host may have overwritten any index, so every valid
    shadow entry counts as modified.
    """

    name = "shadow-modified"

    def entry_base(self) -> int:
        c = self.costs
        return (self.hwater + 1) * c["shadow_mod_scan_per_entry"] + c["shadow_mod_clear"]

    def entry_per_mod(self) -> int:
        return self.costs["shadow_mod_write_per_entry"]

    def vcpu_load(self, cpu, vcpu) -> int:
        mod = vcpu.ctx.arrays["mod"]
        valid = vcpu.shadow.valid_arr
        for i in range(self.hwater + 1):
            if valid[i] and not mod[i]:
                mod[i] = 1
                vcpu.ctx.n_modified += 1
        _restore_shadow(cpu, vcpu, self.hwater)
        return 0

    def memory_bytes(self) -> dict:
        c = self.costs
        return {"shadow_tlb": 64 * c["shadow_entry_bytes"],
                "shadow_pages": 64 * c["shadow_page_ptr_bytes"],
                "shadow_tlb_mod": 64 * c["shadow_mod_flag_bytes"]}


class Direct(Strategy):
    """Commit 7924bd41: insert shadow mappings straight into the hardware TLB.

    No entry loop, no vcpu_load/put hook; per-vCPU state is shadow_refs[64]
    (8 bytes each; reference/kvm440.md §2.2, §2.4).
    """

    name = "direct"

    def memory_bytes(self) -> dict:
        return {"shadow_refs": 64 * self.costs["shadow_ref_bytes"]}


class DirectSaveOnSwitch(Direct):
    """Later KVM-440: ``direct`` plus save at vcpu_put and restore at vcpu_load.

    vcpu_put: tlbre each modified index up to hwater, then invalidate every
    valid TS=1 entry; vcpu_load: tlbwe every valid saved entry
    (kvmppc_44x_tlb_put / _load, 44x_tlb.c @67577927; reference §2.2).
    """

    name = "direct-save-on-switch"

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


class E500FlushOnPut(Strategy):
    """Early KVM e500: flush the whole TLB at vcpu_put (reference/kvm440.md §4.2).

    Every guest PID change flushes the whole TLB too.  (The reload of shadow
    TLB1 entries at vcpu_load is not modelled: this model maps every guest
    page with a 4 KB shadow in TLB0.)
    """

    name = "e500-flush-on-put"

    def _flush(self, cpu, vcpu, reason: int) -> int:
        ctx = vcpu.ctx.ctx
        for i in range(cpu.tlb.entries):
            if cpu.tlb.valid_arr[i]:
                cpu.invalidate(i, ctx, reason)
        return self.costs["e500_flush"]

    def vcpu_put(self, cpu, vcpu) -> int:
        return self._flush(cpu, vcpu, CAUSE["flush"])

    def guest_pid_change(self, cpu, vcpu) -> int:
        return self._flush(cpu, vcpu, CAUSE["guest-context-switch"])

    def memory_bytes(self) -> dict:
        return {"shadow_refs": 512 * self.costs["shadow_ref_bytes"]}


class E500ShadowIds(Strategy):
    """KVM e500 2011 (commit dd9ebf1f): per-CPU shadow IDs 1..255 (reference §4.2).

    Each (vCPU, guest TID, PR) gets an ID on the physical CPU; PID0 carries the
    ID of the current guest PID, PID1 the ID of guest TID 0.  A guest PID or
    mode change only reloads PID0/PID1.  When the IDs run out, the whole TLB is
    flushed and every mapping forgotten.
    """

    name = "e500-shadow-ids"
    releases_on_pid_change = False
    MAX_ID = 255

    def __init__(self, costs, hwater: int):
        super().__init__(costs, hwater)
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

    def set_shadow_pids(self, cpu, vcpu) -> int:
        pr = vcpu.ctx.guest_pr
        pid0, c0 = self._sid(cpu, vcpu, vcpu.ctx.guest_pid, pr)
        pid1, c1 = self._sid(cpu, vcpu, 0, pr)
        vcpu.ctx.shadow_pid, vcpu.ctx.pid1 = pid0, pid1
        return c0 + c1

    def memory_bytes(self) -> dict:
        # vcpu_id_table[2][256][2] of u8 ids, plus the refs (e500_tlb.c @0164c0f0)
        return {"shadow_refs": 512 * self.costs["shadow_ref_bytes"], "id_table": 2 * 256 * 2}


STRATEGY_CLASSES = {cls.name: cls for cls in
                    (Shadow, ShadowModified, Direct, DirectSaveOnSwitch, E500FlushOnPut,
                     E500ShadowIds)}

E500_ONLY = ("e500-flush-on-put", "e500-shadow-ids")
INDEX_DEPENDENT = ("shadow", "shadow-modified", "direct-save-on-switch")


def make_strategy(name: str, core: str, costs, hwater: int) -> Strategy:
    """The strategy ``name`` for ``core``; ConfigError when it cannot be modelled."""
    if name not in STRATEGY_CLASSES:
        raise ConfigError(f"kvm.strategy: unknown strategy {name!r} "
                          f"(choose from: {', '.join(STRATEGY_CLASSES)})")
    if name in E500_ONLY and core != "e500":
        raise ConfigError(f"kvm.strategy: {name!r} needs machine.core = 'e500'")
    if name in INDEX_DEPENDENT and core == "e500":
        raise ConfigError(
            f"kvm.strategy: {name!r} cannot be modelled on the e500: software cannot choose "
            "a TLB0 index (the set comes from the address and hardware picks the way), so a "
            "shadow array cannot be laid into hardware index by index (reference/kvm440.md §4.1)")
    return STRATEGY_CLASSES[name](costs, hwater)

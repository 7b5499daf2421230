"""``e500-shadow-ids``: KVM e500 (e500_tlb.c @0164c0f0) tags entries with per-CPU shadow IDs."""

from __future__ import annotations

import numpy as np

from emu.codes import CAUSE
from emu.hw.e500 import GUEST_TLB0_ENTRIES, tlbil_all
from emu.kvm.shadow import release_slot
from emu.kvm.strategies.base import NEEDS_THE_E500, Strategy


class E500ShadowIds(Strategy):
    """KVM e500 2011 as 0164c0f0 ran it (docs/kvm440.md §4.2).

    * Each (vCPU, guest TID, PR) gets a shadow ID 1..255 on the physical CPU
      (``kvmppc_e500_get_sid``); PID0 carries the ID of the current guest PID,
      PID1 that of guest TID 0 (``kvmppc_e500_recalc_shadow_pid``).  The
      kernel's table is ``id[as][tid][pr]`` and ``write_stlbe`` tags a fill
      with the ID of the guest entry's (TS, TID); the model keys without the
      address space and tags with PID1's ID for TID 0, PID0's otherwise, which
      is the same here: the guest runs in AS 0 and writes TS 0 (``guest_as``
      is never set), and a shadow is made only of an entry the guest's search
      matched or its ``tlbwe`` wrote in the current AS, whose TID is 0 or the
      current guest PID.  A guest
      PID or mode change only reloads PID0/PID1; vcpu_put does nothing.
    * When the IDs run out, ``_tlbil_all`` flash-invalidates the whole TLB,
      the host's entries too, and every ID of every vCPU on that CPU is
      forgotten (``local_sid_destroy_all``).  When it is PID1's allocation
      that runs out, PID0 keeps the ID just destroyed (the recalculation does
      not look it up again): the next fill of a process entry allocates PID0
      its new ID (``write_stlbe``), or the next recalculation does, for the
      guest PID and mode of that moment.
    * A guest TLB0 shadow is written with ``MAS0_ESEL(esel & (ways - 1))``:
      the set comes from the address, the way is software's choice.  Guest
      TLB1 pages go to a TLB1 pool (TLB1 entries minus the host's CAMs minus
      one kept for the magic page), KVM's round robin.
    * Replacing or invalidating a guest TLB1 entry retires the IDs of its
      TID (``inval_gtlbe_on_host``: ``kvmppc_e500_id_table_reset_one``, PR 0
      and 1): its shadows, and every other hardware entry tagged with those
      IDs, stay in hardware, unreachable; a pool shadow's page is put when its
      slot is taken again (``kvmppc_e500_tlb1_map``).  Replacing or
      invalidating a guest TLB0 entry searches the hardware (``tlbsx`` in AS1)
      for its shadow under the ID of each PR valid on this CPU, and retires
      the IDs of the PRs not valid here, as for TLB1.  The guest's ``mtspr
      MMUCSR0`` retires all of the vCPU's IDs (``kvmppc_e500_id_table_reset_all``)
      and invalidates nothing in hardware: its TLB0 entries' shadows stay,
      unreachable, and their pages stay held until a ``tlbwe`` maps the entry
      again (``kvmppc_e500_shadow_map``), as after a ``tlbwe`` with V clear.
    """

    name = "e500-shadow-ids"
    origin = ("KVM e500, 2011 (shadow IDs from dd9ebf1f, \"KVM: PPC: e500: Add shadow PID "
              "support\"; the code as read at 0164c0f0)")
    does = ("tags entries with per-CPU shadow IDs; a guest PID or mode change only reloads "
            "PID0/PID1")
    isolation = ("entries are tagged with per-CPU shadow IDs that no other context shares; "
                 "a flush only when the 255 IDs run out")
    save_restore_work = "on shadow-ID work (allocation, and a flush when the IDs run out)"
    cores = ("e500",)
    refusal = NEEDS_THE_E500
    historical_pfn_source = "guest-tlb-refs"      # a reference per guest TLB0 entry
    # the code modelled (its two-way set search, its ESEL way) is 0164c0f0's;
    # dd9ebf1f, which brought the shadow IDs, searched the guest TLB linearly
    shipped = "0164c0f0"
    esel = True
    tlb1_reserved = 1
    MAX_ID = 255

    def __init__(self, costs, hwater: int, tid_scheme=None, core: str = "e500"):
        super().__init__(costs, hwater, tid_scheme, core)
        self.tables: dict[int, dict] = {}        # cpu index -> {(ctx, tid, pr): sid}
        self.last: dict[int, int] = {}           # cpu index -> pcpu_last_used_sid
        self.flushes = 0
        #: vCPU context id -> (cpu index, key, ID): the ID the next fill of a
        #: process entry allocates for PID0 (``ctx.sid_next``), PID1's
        #: allocation having destroyed PID0's
        self.offers: dict[int, tuple] = {}

    def _sid(self, cpu, vcpu, tid: int, pr: int) -> tuple[int, int]:
        """(ID, cycles) of (vCPU, ``tid``, ``pr``) on ``cpu``, allocating one."""
        table = self.tables.setdefault(cpu.index, {})
        key = (vcpu.ctx.ctx, tid, pr)
        if key in table:
            return table[key], 0
        c = self.costs
        cycles = c["e500_sid_alloc"]
        last = self.last.get(cpu.index, 0)
        if last >= self.MAX_ID:
            tlbil_all(cpu, vcpu.ctx.ctx, CAUSE["flush"])
            table.clear()
            last = 0
            self.flushes += 1
            cycles += c["e500_flush"] + c["e500_sid_flush"]
        table[key] = last = last + 1
        self.last[cpu.index] = last
        return last, cycles

    def release_process_shadows(self, cpu, vcpu) -> int:
        return 0            # set_shadow_pids reloads PID0/PID1; nothing is released

    def set_shadow_pids(self, cpu, vcpu) -> int:
        """kvmppc_e500_recalc_shadow_pid: PID0 the ID of (guest PID, PR), PID1 that
        of (TID 0, PR), each allocated if it has none (``avoid_recursion``: no
        second look).  If PID1's allocation runs out of IDs, PID0 keeps the ID
        the flush destroyed, and the next fill of a process entry allocates
        its new one (``ctx.sid_next``: the fast path takes it)."""
        self.settle(vcpu)
        ctx, pr = vcpu.ctx, vcpu.ctx.guest_pr
        pid0, c0 = self._sid(cpu, vcpu, ctx.guest_pid, pr)
        flushes = self.flushes
        pid1, c1 = self._sid(cpu, vcpu, 0, pr)
        if self.flushes != flushes:       # PID1's allocation destroyed PID0's ID
            key = (ctx.ctx, ctx.guest_pid, pr)
            ctx.sid_next = self.last[cpu.index] + 1
            self.offers[ctx.ctx] = (cpu.index, key, ctx.sid_next)
        ctx.shadow_pid, ctx.pid1 = pid0, pid1
        return c0 + c1

    def settle(self, vcpu) -> None:
        """Record the ID a fill has given PID0 since PID1's allocation destroyed
        its own (the fast path took ``ctx.sid_next``; its cycles are charged);
        if no fill has, PID0's next recalculation allocates as usual."""
        ctx = vcpu.ctx
        offer = self.offers.pop(ctx.ctx, None)
        if offer is not None and ctx.sid_next == 0:
            index, key, sid = offer
            self.tables[index][key] = sid
            self.last[index] = sid
        ctx.sid_next = 0

    def vcpu_put(self, cpu, vcpu) -> int:
        """kvmppc_e500_tlb_put does nothing; an ID a fill has taken is recorded,
        so that the next vCPU to run on ``cpu`` allocates after it."""
        self.settle(vcpu)
        return 0

    def retire(self, vcpu, keep=lambda key: False) -> None:
        """Forget the vCPU's IDs (on every CPU) except those ``keep`` names.  The
        hardware entries tagged with them stay, unreachable; their pages' next
        misses count as flushes."""
        self.settle(vcpu)
        ctx = vcpu.ctx.ctx
        cpus = {c.index: c for c in vcpu.machine.cpus}
        for index, table in self.tables.items():
            gone = {table.pop(k) for k in [k for k in table if k[0] == ctx and not keep(k)]}
            if gone:
                retire_entries(cpus[index].virt, ctx, gone)

    def release_guest_entry(self, cpu, vcpu, gi: int, reason: int) -> int:
        """inval_gtlbe_on_host @0164c0f0, its search: for a guest TLB0 entry, for
        each PR whose shadow ID for the entry's TID is valid on ``cpu``, a
        ``tlbsx`` in AS1 with that ID at the entry's address finds its shadow,
        if it is still in hardware, and invalidates it; a slot the search does
        not find (evicted, or written since by another context) is left alone.
        The IDs not valid on ``cpu`` are retired by :meth:`guest_entry_replaced`
        instead, as are a guest TLB1 entry's.  The page stays held in
        ``gtlb_priv[0]`` until a ``tlbwe`` maps the entry again
        (kvmppc_e500_shadow_map's kvmppc_e500_ref_release): a ``tlbwe`` with V
        clear puts nothing.  Returns the shadows invalidated."""
        if gi >= GUEST_TLB0_ENTRIES:
            return 0
        ctx, virt, hwref = vcpu.ctx.ctx, cpu.virt, vcpu.ctx.arrays["hwref_gi"]
        table = self.tables.get(cpu.index, {})
        tid, ea = int(vcpu.gtlb.tid_arr[gi]), int(vcpu.gtlb.read(gi)[1])
        found = 0
        for pr in (0, 1):
            sid = table.get((ctx, tid, pr))
            i = -1 if sid is None else virt.lookup(ea, sid, 1)
            if i < 0:
                continue
            found += 1
            if hwref[i] >= 0:
                release_slot(cpu, vcpu, i, reason)
            else:
                virt.invalidate(i, ctx, reason)
        return found

    def guest_entry_replaced(self, cpu, vcpu, gi: int) -> int:
        """inval_gtlbe_on_host @0164c0f0, its retirements:
        kvmppc_e500_id_table_reset_one(ts, tid, pr) for a guest TLB1 entry's
        TID in both PRs, and for a guest TLB0 entry's in each PR whose ID is
        not valid on ``cpu`` (``local_sid_lookup`` fails: never given, given on
        another CPU, or destroyed when the IDs ran out), each followed by
        kvmppc_e500_recalc_shadow_pid; a TLB0 entry whose IDs are both valid
        here retires nothing and recalculates nothing."""
        ctx, tid = vcpu.ctx.ctx, int(vcpu.gtlb.tid_arr[gi])
        table = self.tables.get(cpu.index, {})
        gone = {(ctx, tid, pr) for pr in (0, 1)
                if gi >= GUEST_TLB0_ENTRIES or (ctx, tid, pr) not in table}
        if not gone:
            return 0
        self.retire(vcpu, keep=lambda key: key not in gone)
        return self.set_shadow_pids(cpu, vcpu)

    def guest_flash_invalidate(self, cpu, vcpu) -> int:
        """kvmppc_e500_emul_mt_mmucsr0 @0164c0f0: the guest entries are cleared and
        kvmppc_e500_id_table_reset_all retires every ID of the vCPU; no shadow
        is released, no hardware entry invalidated, no page put."""
        self.retire(vcpu)
        return self.set_shadow_pids(cpu, vcpu)

    def memory_bytes(self) -> dict:
        # the refs, and vcpu_id_table's id[2][256][2] of struct id {unsigned long
        # val; struct id **pentry;}: 8 bytes each on ppc32 (e500_tlb.c @0164c0f0)
        return {"shadow_refs": 272 * self.costs["shadow_ref_bytes"],
                "id_table": 2 * 256 * 2 * 8}


def retire_entries(virt, ctx: int, sids: set) -> None:
    """The entries of context ``ctx`` tagged with the retired shadow IDs ``sids``
    stay in ``virt``'s TLB0 and TLB1, where nothing matches them any more: the
    next miss of each one's page counts as a flush."""
    n0 = virt.tlb.entries
    for base, t in ((0, virt.tlb), (n0, virt.tlb1)):
        mine = (t.valid_arr != 0) & (t.ts_arr == 1) & (t.owner_arr >> 8 == ctx) \
            & np.isin(t.tid_arr, list(sids))
        for i in np.flatnonzero(mine):
            virt.retire(base + int(i), CAUSE["flush"])

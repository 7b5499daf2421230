"""KVM's shadow bookkeeping: which hardware TLB slots shadow which guest entries.

Every hardware slot KVM fills for a vCPU remembers the guest TLB entry it
shadows (``hwref_gi``, the ``shadow_refs`` of 44x_tlb.c; docs/kvm440.md
§2.2).  When the guest overwrites or invalidates that entry, or changes its
PID, KVM releases the slots that shadow it (kvmppc_44x_shadow_release) -- the
direct designs by guest index, the shadow designs every slot in the old
entry's address range with a matching TID (:func:`invalidate_range`).  The
shadow designs also keep a per-vCPU shadow array whose slots 0..hwater-1
their entry loop lays into hardware (:func:`restore_shadow_array`), and one
modified flag per slot (``shadow_tlb_mod``, 83aae4a8) that the loop reads.
"""

from __future__ import annotations

import numpy as np

from emu.codes import CAUSE, TLB


def mark_modified(vcpu, i: int) -> None:
    """Set the modified flag of shadow slot ``i`` (kvmppc_tlbe_set_modified).

    ``n_modified`` counts the flags the entry loop will rewrite: those below
    its length (``ctx.loop_len``); the flags of slots hwater and 63 are set
    but only cleared (docs/kvm440.md §2.10).
    """
    ctx = vcpu.ctx
    mod = ctx.arrays["mod"]
    if not mod[i]:
        mod[i] = 1
        if i < ctx.loop_len:
            ctx.n_modified += 1


def mark_all_modified(vcpu, n: int) -> None:
    """Set the modified flags of shadow slots 0..n-1 (:func:`mark_modified` of each)."""
    ctx = vcpu.ctx
    mod = ctx.arrays["mod"]
    mod[:n] = 1
    ctx.n_modified = int(np.count_nonzero(mod[:ctx.loop_len]))


def release_slot(cpu, vcpu, i: int, reason: int, in_hardware: bool = False) -> bool:
    """Release shadow slot ``i`` of ``vcpu`` (kvmppc_44x_shadow_release).

    A slot that holds a page drops it (the pfn source's ``put_shadow_ref``)
    and its mapping leaves hardware index ``i``: the direct designs tlbie the
    index, the shadow designs write the invalid word at the next entry, which
    the model does now (nothing runs in between) -- below hwater, the only
    indices their entry loop writes.  The index is invalidated even when
    another context has written it since (the source notes this can kill a
    host mapping; counted in ``host_mappings_killed``).  The shadow entry
    itself is invalidated.  With ``in_hardware`` the slot is forgotten and its
    page dropped, but the hardware entry stays until something else removes
    it (46f43c6e leaves a guest TLB0 entry's old shadow to the next
    ``_tlbil_all``).  Returns whether the slot held a page.
    """
    ctx = vcpu.ctx
    hwref = ctx.arrays["hwref_gi"]
    if vcpu.shadow is not None:
        vcpu.shadow.invalidate(i)
    if hwref[i] < 0:
        return False
    gi, hwref[i] = int(hwref[i]), -1
    vcpu.kvm.pfn.put_shadow_ref(cpu, vcpu, gi)
    if in_hardware or (vcpu.shadow is not None and i >= ctx.loop_len):
        return True
    virt = cpu.virt
    if i < virt.tlb.entries:
        entry = virt.tlb.read(i)
        if entry[0] and entry[7] >> 8 != ctx.ctx:
            ctx.arrays["tlb"][TLB["host_mappings_killed"]] += 1
    virt.invalidate(i, ctx.ctx, reason)
    return True


def release_guest_entry(cpu, vcpu, gi: int, reason: int, in_hardware: bool = False,
                        put_page: bool = True) -> int:
    """Drop every shadow slot that maps guest entry ``gi`` (the guest rewrote
    it, or a direct design released the process entries): kvmppc_44x_invalidate
    of the direct designs (44x_tlb.c @7924bd41).

    The slots are released with :func:`release_slot` (``in_hardware``: their
    hardware entries stay); a design that keeps modified flags for its entry
    loop (``vcpu.strategy.flags_released``) sets them.  The page the entry
    holds is put, unless ``put_page`` is false: KVM e500 keeps a guest TLB0
    entry's page until a ``tlbwe`` maps the entry again.  Returns the number
    of slots released.
    """
    arrays = vcpu.ctx.arrays
    released = _release_slots(cpu, vcpu, np.flatnonzero(arrays["hwref_gi"] == gi), reason,
                              in_hardware)
    if gi >= 0 and put_page:
        drop_guest_ref(cpu, vcpu, gi)
    return released


def drop_guest_ref(cpu, vcpu, gi: int) -> None:
    """Guest entry ``gi`` goes: the page reference it held (the ``guest-tlb-refs``
    pfn source) is put (kvmppc_e500_priv_release, put_page)."""
    gref = vcpu.ctx.arrays["gref"]
    if gref[gi] >= 0:
        cpu.charge("c_path", vcpu.costs["put_page"])
        gref[gi] = -1


def _release_slots(cpu, vcpu, slots, reason: int, in_hardware: bool = False) -> int:
    """:func:`release_slot` each of ``slots``, setting its modified flag in a design
    that keeps them (``vcpu.strategy.flags_released``); returns how many."""
    flags = vcpu.strategy.flags_released
    for i in slots:
        release_slot(cpu, vcpu, int(i), reason, in_hardware)
        if flags:
            mark_modified(vcpu, int(i))
    return len(slots)


def invalidate_range(cpu, vcpu, gi: int, pid: int, hwater: int, reason: int) -> int:
    """kvmppc_mmu_invalidate: the guest rewrote entry ``gi`` of a shadow design.

    Every valid slot 0..hwater of the shadow array whose page overlaps the old
    guest entry's address range and whose shadow TID is 0 or ``pid`` is
    released with :func:`release_slot` (44x_tlb.c 2.6.26, @83aae4a8,
    @49dd2c49, 2.6.28: ``if (tid && tid != pid) continue``), whichever guest
    entry it shadows; a design that keeps modified flags
    (``vcpu.strategy.flags_released``) sets each one's.  Returns the number of
    slots released.
    """
    gtlb, shadow = vcpu.gtlb, vcpu.shadow
    shift = int(gtlb.shift_arr[gi])
    start = int(gtlb.vpn_arr[gi]) << shift
    end = start + (1 << shift) - 1
    n = hwater + 1
    s_shift = shadow.shift_arr[:n].astype(np.int64)
    s_start = shadow.vpn_arr[:n].astype(np.int64) << s_shift
    tid = shadow.tid_arr[:n]
    hit = (shadow.valid_arr[:n] != 0) & (s_start <= end) & (s_start + (1 << s_shift) - 1 >= start) \
        & ((tid == 0) | (tid == pid))
    drop_guest_ref(cpu, vcpu, gi)
    return _release_slots(cpu, vcpu, np.flatnonzero(hit), reason)


def release_process_entries(cpu, vcpu) -> int:
    """Guest PID change on the 440: drop every shadow of a guest entry with TID != 0."""
    hwref = vcpu.ctx.arrays["hwref_gi"]
    gis = sorted({int(g) for g in hwref[hwref >= 0] if vcpu.gtlb.tid_arr[int(g)] != 0})
    return sum(release_guest_entry(cpu, vcpu, gi, CAUSE["guest-context-switch"]) for gi in gis)


def tlbia(cpu, writer: int, hwater: int, costs) -> int:
    """Linux 44x ``_tlbia()``: write word 0 = index (V clear) into hardware
    indices 0..hwater, whoever owns them; pinned entries above hwater survive.

    Returns its cycles: ``tlbia_base + (hwater + 1) * tlbia_per_entry``
    (docs/kvm440.md §2.10: 13 + 63 x 4 = 265 at hwater 62 with tlbwe = 1).
    """
    tlb = cpu.tlb
    for i in range(hwater + 1):
        if tlb.valid_arr[i]:
            cpu.invalidate(i, writer, CAUSE["flush"])
    return costs["tlbia_base"] + (hwater + 1) * costs["tlbia_per_entry"]


def new_shadow_array(backend, hwater: int):
    """A vCPU's 64-entry shadow TLB (kvm_vcpu_arch.shadow_tlb; docs/kvm440.md §2.3)."""
    return backend.BookeTLB(64, 64, "round-robin", hwater)


def restore_shadow_array(cpu, vcpu, loop_len: int) -> None:
    """Write the vCPU's shadow array over hardware indices 0..loop_len-1, as
    the entry loop does (0..hwater-1: a shadow in slot hwater never reaches
    hardware, docs/kvm440.md §2.10).

    An index whose hardware entry already equals the shadow one is left alone;
    an invalid shadow index invalidates the hardware one.
    """
    shadow, ctx = vcpu.shadow, vcpu.ctx.ctx
    for i in range(loop_len):
        valid, ea, shift, tid, ts, rpn, attr, owner = shadow.read(i)
        if valid:
            if cpu.tlb.read(i) != (valid, ea, shift, tid, ts, rpn, attr, owner):
                cpu.write(i, ea, shift, tid, ts, rpn, owner, ctx, attr)
        elif cpu.tlb.valid_arr[i]:
            cpu.invalidate(i, ctx)

"""KVM's shadow bookkeeping: which hardware TLB slots shadow which guest entries.

Every hardware slot KVM fills for a vCPU remembers the guest TLB entry it
shadows (``hwref_gi``, the ``shadow_refs`` of 44x_tlb.c; docs/kvm440.md
§2.2).  When the guest overwrites or invalidates that entry, or changes its
PID, KVM releases the slots that shadow it (kvmppc_44x_shadow_release).  The
shadow designs also keep a per-vCPU shadow array that they lay into hardware
indices 0..hwater (:func:`restore_shadow_array`).
"""

from __future__ import annotations

import numpy as np

from emu.codes import CAUSE, TLB


def release_guest_entry(cpu, vcpu, gi: int, reason: int) -> int:
    """Drop every shadow slot that maps guest entry ``gi`` (kvmppc_44x_shadow_release).

    The hardware index is invalidated even when another context has written
    it since (the source notes this can kill a host mapping; counted in
    ``host_mappings_killed``).  Returns the number of slots released.
    """
    ctx = vcpu.ctx
    hwref = ctx.arrays["hwref_gi"]
    released = 0
    for i in np.flatnonzero(hwref == gi):
        i = int(i)
        hwref[i] = -1
        entry = cpu.virt.tlb.read(i) if i < cpu.virt.tlb.entries else None
        if entry is not None and entry[0] and entry[7] >> 8 != ctx.ctx:
            ctx.arrays["tlb"][TLB["host_mappings_killed"]] += 1
        cpu.virt.invalidate(i, ctx.ctx, reason)
        if vcpu.shadow is not None:
            vcpu.shadow.invalidate(i)
        vcpu.kvm.pfn.put_shadow_ref(cpu)
        released += 1
    if gi >= 0:
        ctx.arrays["gref"][gi] = -1
    return released


def release_process_entries(cpu, vcpu) -> int:
    """Guest PID change on the 440: drop every shadow of a guest entry with TID != 0."""
    hwref = vcpu.ctx.arrays["hwref_gi"]
    gis = sorted({int(g) for g in hwref[hwref >= 0] if vcpu.gtlb.tid_arr[int(g)] != 0})
    return sum(release_guest_entry(cpu, vcpu, gi, CAUSE["guest-context-switch"]) for gi in gis)


def new_shadow_array(backend, hwater: int):
    """A vCPU's 64-entry shadow TLB (kvm_vcpu_arch.shadow_tlb; docs/kvm440.md §2.3)."""
    return backend.BookeTLB(64, 64, "round-robin", hwater)


def restore_shadow_array(cpu, vcpu, hwater: int) -> None:
    """Write the vCPU's shadow array over hardware indices 0..hwater.

    An index whose hardware entry already equals the shadow one is left alone;
    an invalid shadow index invalidates the hardware one.
    """
    shadow, ctx = vcpu.shadow, vcpu.ctx.ctx
    for i in range(hwater + 1):
        valid, ea, shift, tid, ts, rpn, _attr, owner = shadow.read(i)
        if valid:
            if cpu.tlb.read(i) != (valid, ea, shift, tid, ts, rpn, 0, owner):
                cpu.write(i, ea, shift, tid, ts, rpn, owner, ctx)
        elif cpu.tlb.valid_arr[i]:
            cpu.invalidate(i, ctx)

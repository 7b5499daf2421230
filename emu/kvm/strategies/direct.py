"""``direct``: commit 7924bd41 inserts shadow mappings straight into the hardware TLB."""

from __future__ import annotations

from emu.kvm.strategies.base import Strategy


class Direct(Strategy):
    """Commit 7924bd41: insert shadow mappings straight into the hardware TLB.

    No entry loop, no vcpu_load/put hook; per-vCPU state is shadow_refs[64]
    (8 bytes each; docs/kvm440.md §2.2, §2.4).  It inserts through the
    hardware's own victim choice, so it runs on the e500 too.
    """

    name = "direct"
    origin = "commit 7924bd41 (\"directly insert shadow mappings into the hardware TLB\")"
    does = "inserts shadow mappings straight into the hardware TLB; no TLB work at entry or switch"
    isolation = ("nothing (commit 7924bd41 had no vcpu_put hook): two vCPUs on one CPU see "
                 "each other's entries, and the model counts those hits")
    save_restore_work = "invalidating guest entries"
    violations_note = "pure direct has no vcpu_put flush"
    cores = ("440", "e500")

    def memory_bytes(self) -> dict:
        return {"shadow_refs": 64 * self.costs["shadow_ref_bytes"]}

"""``direct-noflush``: hypothetical -- 7924bd41 without its vcpu_put ``_tlbia()``."""

from __future__ import annotations

from emu.kvm.strategies.direct import Direct


class DirectNoflush(Direct):
    """Hypothetical: ``direct`` (7924bd41) without the ``_tlbia()`` at vcpu_put.

    No kernel shipped it.  It shows why the flush is there: "every guest uses
    TS=1 TID=0/1 mappings", so without it one vCPU's entries translate the next
    one's accesses on the same CPU (44x.c @7924bd41, docs/kvm440.md §2.10); on
    the e500, ``direct`` without its ``_tlbil_all`` at vcpu_put.  The fast
    path runs it as ``direct``.
    """

    name = "direct-noflush"
    fastpath = "direct"
    origin = "hypothetical: commit 7924bd41 without the _tlbia() of its vcpu_put"
    does = ("inserts shadow mappings straight into the hardware TLB; no TLB work at entry "
            "or switch")
    isolation = ("nothing: two vCPUs on one CPU see each other's entries, and the model "
                 "counts those hits")
    save_restore_work = "releasing shadow entries"
    violations_note = "direct-noflush has no vcpu_put flush"
    cores = ("440", "e500")
    eras = {"tid01": "7924bd41 without _tlbia"}
    hypothetical = True

    def vcpu_put(self, cpu, vcpu) -> int:
        return 0

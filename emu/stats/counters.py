"""The arrays a fast-path context counts into, and the tables it reads.

Every context (a vCPU, a host task, a QEMU thread) owns one dict of numpy
arrays that the extension's ``Ctx`` reads and writes: tables (memslots, pin
table, guest TLB references, shadow bookkeeping, the host page table) and
counters (exits, TLB events, miss causes, the miss handler's step profile,
repopulation).  The context itself adds the views of its Counters block
(``exits``, ``exit_sumsq``, their whole-µs twins ``exits_us`` and
``exit_sumsq_us``, ``tlb``, ``causes``, ``profile``, its histograms
``profile_hist`` and ``walk_scan``: the struct in
``emu/_fastpath.pxd``) to the dict.  The counters' indices are the names of
:mod:`emu.codes`.
"""

from __future__ import annotations

import numpy as np

from emu.hw.ppc440 import TLB_SIZE

#: The arrays of a fast-path context that only count (the others are tables).
COUNTERS = ("exits", "exit_sumsq", "exits_us", "exit_sumsq_us", "tlb", "causes", "profile",
            "profile_hist", "walk_scan", "repop_miss", "repop_access")

HOST_PT_ENTRIES = 1 << 20          # one per 4 KB page of a 32-bit address space


def zero_counters(arrays: dict) -> None:
    """Restart the counting arrays of a context (the end of a warm-up)."""
    for name in COUNTERS:
        arrays[name][...] = 0


def ctx_arrays(hw_entries: int, window: int, vm=None, host_pt: bool = False,
               shadow_pos=None, guest_entries: int = TLB_SIZE) -> dict:
    """The table and repopulation arrays one fast-path context reads and writes
    (the context adds its other counters).

    ``hw_entries``: the hardware TLB's entries; ``window``: the accesses after
    a resume that repopulation counts; ``vm``: the KVM VM whose memslots and
    pin table a vCPU shares (None for a host thread); ``host_pt``: a host page
    table (host threads, which run natively); ``shadow_pos``: the shadow
    designs' victim counter, one int32 shared by every vCPU of a machine;
    ``guest_entries``: the guest TLB's entries (the 440's 64, or KVM e500's 272).
    """
    return {
        "slot_base": vm.memslots.base if vm else np.zeros(1, np.int64),
        "slot_npages": vm.memslots.npages if vm else np.zeros(1, np.int64),
        "pin": vm.pfn.pin if vm else np.zeros(1, np.int64),
        "gref": np.full(guest_entries, -1, np.int64),     # per guest TLB entry
        "hwref_gi": np.full(hw_entries, -1, np.int32),
        "host_pt": np.full(HOST_PT_ENTRIES if host_pt else 1, -1, np.int32),
        "mod": np.zeros(hw_entries, np.uint8),
        "shadow_pos": np.zeros(1, np.int32) if shadow_pos is None else shadow_pos,
        "repop_miss": np.zeros(window, np.int64),
        "repop_access": np.zeros(window, np.int64),
    }

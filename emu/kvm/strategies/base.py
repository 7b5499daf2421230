"""What a KVM TLB strategy is: the hooks KVM calls, and their defaults (docs/design.md §4).

A strategy is one class that holds everything about one design: its hooks,
its memory accounting, the cores it can be modelled on (and the one-line
reason when it cannot), the kernel versions it shipped in with their TID
eras, and the words the reports use for it.  One instance serves every vCPU
of a machine; the TID era (``tid_scheme``) is a constructor argument.

The TID eras of KVM-440 (docs/kvm440.md §2.10):

* ``guest-tid`` (2.6.26, 83aae4a8): a shadow carries the guest entry's TID,
  the hardware PID is the guest PID; every guest privilege switch releases
  every shadow slot 0..hwater (permissions differ by mode);
* ``swap-pid`` (49dd2c49): shadow TID 1 for guest TID 0, else 0; hardware PID
  ``!usermode``; a guest PID change arms one such flush at the next switch;
* ``tid01`` (2.6.28, 7924bd41, 67577927): the same tagging; a guest PID change
  releases the shadows of process entries (shadow TID 0) at once.

Hooks and who calls them (each returns the cycles of TLB work it did, which
the caller charges to ``save_restore``; the put_page of each page it releases
is charged by the pfn source):

* ``entry_base`` / ``entry_per_mod`` -- per guest entry, read once into the
  fast path's cost table (the fast path and the Python exits charge them);
  ``loop_len``: the hardware indices the entry loop writes;
* ``new_shadow_array`` -- when a vCPU is built: its shadow array, or None;
* ``vcpu_load`` / ``vcpu_put`` -- when the vCPU's thread is scheduled in /
  out of a CPU, and at every heavyweight exit;
* ``priv_switch`` -- the guest's MSR[PR] changed (interrupt delivery from
  user mode, rfi to user mode): kvmppc_mmu_priv_switch;
* ``set_pid`` -- the guest's ``mtspr PID`` trapped: kvmppc_set_pid;
* ``release_guest_entry`` -- the guest's ``tlbwe`` overwrites a valid entry:
  kvmppc_44x_invalidate (by guest index) or kvmppc_mmu_invalidate (by
  address range and TID, the shadow designs);
* ``set_shadow_pids`` -- after vcpu_load, a privilege switch or a PID change:
  load the hardware PID(s);
* ``memory_bytes`` -- per-vCPU bytes of TLB state besides the guest TLB.

Every strategy must say how it keeps one vCPU's TS=1 entries from
translating another's accesses (docs/design.md §4, the paragraph "Keeping
contexts apart is part of being correct"): its ``isolation``.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from emu.codes import CAUSE, STRATEGY
from emu.hw.e500 import GUEST_TLB0_ENTRIES
from emu.kvm.shadow import (mark_all_modified, release_guest_entry, release_process_entries,
                             release_slot)

NO_PID = 0xFFFF

#: Why a 440 design that saves and restores the UTLB's flat indices cannot run
#: on the e500 (formatted with the strategies that can).
THE_440_INDICES = (
    "cannot be modelled on the e500: it saves and restores the 440 UTLB's flat indices "
    "0..hwater (kvmppc_44x_tlb_put / _load), and KVM e500 never had that design "
    "(docs/kvm440.md §4.2); use {alternatives}")

#: Why a shadow design cannot run where tlbwe ignores the index software names
#: (formatted with the design and the designs that can).
HARDWARE_INDEX_REFUSAL = (
    "kvm.strategy: '{strategy}' cannot run with machine.tlb_index = 'hardware': every tlbwe "
    "goes to a victim the hardware picks, so no entry can be put back at the index it came from "
    "(docs/kvm440.md §4.3); use one of: {alternatives}")

#: Why an e500 design cannot run on another core (formatted with that core).
NEEDS_THE_E500 = "needs machine.core = 'e500' (machine.core is '{core}')"


class Strategy:
    """One KVM TLB design.  The defaults: no TLB work at entry, vcpu_load or
    vcpu_put, no shadow array, no memory; KVM-440's handling of a guest PID
    change, privilege switch and shadow PIDs in the design's TID era."""

    #: The name a scenario gives (``kvm.strategy``).
    name = ""
    #: The fast path's behaviour this design runs with (``emu.codes.STRATEGIES``);
    #: its own name unless it differs from a numbered design only in its hooks.
    fastpath = ""
    #: Where the design comes from (a kernel version or commit).
    origin = ""
    #: What it does, in one line.
    does = ""
    #: How it keeps one vCPU's entries from translating another's accesses.
    isolation = ""
    #: What its ``save_restore`` cycles pay for, as the reports phrase it.
    save_restore_work = ""
    #: A note the reports add when the design shows isolation violations.
    violations_note = ""
    #: The cores it can be modelled on.
    cores: tuple[str, ...] = ()
    #: The one-line reason it cannot run on another core (``{core}`` and
    #: ``{alternatives}`` are filled in by the registry).
    refusal = ""
    #: The TID eras it shipped in: scheme -> the kernel version or commit that
    #: ran it (docs/kvm440.md §2.10).  Empty: no 440 era applies (the e500 designs).
    eras: dict[str, str] = {}
    #: The era it runs in when ``kvm.tid_scheme`` is unset (None: no 440 era).
    default_era: Optional[str] = None
    #: What shipped it when no 440 era applies (the e500 designs), for its label.
    shipped = ""
    #: No kernel shipped it: every label and report says so.
    hypothetical = False
    #: The pfn source its kernel used (None: not recorded; docs/kvm440.md §2.5,
    #: §2.10, §4.2); another one is named in its label and makes the machine
    #: hypothetical.
    historical_pfn_source: Optional[str] = "gup"
    #: Every guest entry runs its loop over hardware indices 0..hwater-1.
    entry_loop = False
    #: Its entry loop reads modified flags, and every release sets one
    #: (kvmppc_mmu_invalidate / priv_switch / set_pid, 83aae4a8 on).
    flags_released = False
    #: It writes entries back at the hardware indices they came from (a shadow
    #: array, a save at put): refused where tlbwe ignores the index (machine.tlb_index).
    needs_index = False
    #: e500: it writes MAS0[ESEL], so a guest TLB0 shadow goes to the way it names
    #: (0164c0f0); else the hardware's next victim (46f43c6e).
    esel = False
    #: e500: KVM searches the guest TLB linearly, all 256 TLB0 entries then TLB1
    #: (46f43c6e); else the two ways of the address's set, then TLB1 (0164c0f0).
    linear_search = False
    #: e500: TLB1 entries it keeps out of its shadow pool besides the host's CAMs.
    tlb1_reserved = 0
    #: The core's flat hardware TLB indices (the e500's TLB1 after TLB0), set by
    #: the machine once the core is built.
    hw_entries = 0

    def __init__(self, costs, hwater: int, tid_scheme: Optional[str] = None,
                 core: str = "440"):
        self.costs = costs
        self.hwater = hwater
        self.core = core
        #: The TID era (None: no 440 era, as on the e500).
        self.tid_scheme = tid_scheme
        #: Per vCPU context id: a guest PID change armed the swap-pid flush.
        self.swap_pid: set[int] = set()
        #: KVM's victim counter of the shadow designs (kvmppc_tlb_44x_pos): one
        #: file-static counter, so one for every vCPU of the machine.
        self.shadow_pos = np.zeros(1, np.int32)

    @property
    def loop_len(self) -> Optional[int]:
        """Hardware indices 0..loop_len-1 the entry loop writes (None: no loop)."""
        return self.hwater if self.entry_loop else None

    @property
    def code(self) -> int:
        """The design's number in the fast path (``emu.codes.STRATEGY``)."""
        return STRATEGY[self.fastpath or self.name]

    # -- per full guest entry (charged by the fast path and by Python exits) --------

    def entry_base(self) -> int:
        """Cycles of TLB work on every full guest entry."""
        return 0

    def entry_per_mod(self) -> int:
        """Cycles more per shadow index modified since the last entry."""
        return 0

    # -- per vCPU ---------------------------------------------------------------

    def new_shadow_array(self, backend):
        """The vCPU's shadow array (a ``BookeTLB``), or None for designs without one."""
        return None

    def memory_bytes(self) -> dict:
        """Per-vCPU bytes of TLB state besides the guest TLB (reference §2.2)."""
        return {}

    # -- host scheduling ------------------------------------------------------------

    def vcpu_load(self, cpu, vcpu) -> int:
        """Called when ``vcpu``'s thread is scheduled in on ``cpu``; returns cycles."""
        return 0

    def vcpu_put(self, cpu, vcpu) -> int:
        """Called when ``vcpu``'s thread is scheduled out of ``cpu`` (and at every
        heavyweight exit); returns cycles."""
        return 0

    # -- the guest's TLB writes (e500) -------------------------------------------------

    def guest_entry_replaced(self, cpu, vcpu, gi: int) -> int:
        """The guest's ``tlbwe`` replaced (or invalidated) valid guest entry ``gi``,
        whose shadows are released; returns cycles of anything more."""
        return 0

    def guest_flash_invalidate(self, cpu, vcpu) -> int:
        """The guest's ``mtspr MMUCSR0`` is about to invalidate its TLB0 entries:
        the shadows of each valid one are released, its page put; returns
        cycles of anything more."""
        for gi in np.flatnonzero(vcpu.gtlb.valid_arr[:GUEST_TLB0_ENTRIES]):
            release_guest_entry(cpu, vcpu, int(gi), CAUSE["flush"])
        return 0

    # -- the guest's MSR[PR] and MMU context ------------------------------------------

    def priv_switch(self, cpu, vcpu, usermode: bool) -> int:
        """The guest's MSR[PR] changed to ``usermode`` (kvmppc_mmu_priv_switch).

        Called inside the exit that changes it (an interrupt delivered from
        user mode, an ``rfi`` to user mode), with the vCPU loaded on ``cpu``.
        ``guest-tid`` releases every shadow slot; ``swap-pid`` does so once
        after a PID change; every era then loads the shadow PID(s).  Returns
        the cycles of the release loop (docs/kvm440.md §2.10).
        """
        vcpu.ctx.guest_pr = 1 if usermode else 0
        cycles = 0
        armed = vcpu.ctx.ctx in self.swap_pid
        if self.tid_scheme == "guest-tid" or (self.tid_scheme == "swap-pid" and armed):
            self.swap_pid.discard(vcpu.ctx.ctx)
            cycles = self.release_all(cpu, vcpu)
        return cycles + self.set_shadow_pids(cpu, vcpu)

    def release_all(self, cpu, vcpu) -> int:
        """The privilege-switch flush: release every shadow slot 0..hwater under
        mmap_sem held for writing (44x_tlb.c @83aae4a8, @49dd2c49); returns
        its cycles besides the put_page of each page released.  (Off the 440,
        a hypothetical run, every slot of the hardware TLB.)"""
        hwref = vcpu.ctx.arrays["hwref_gi"]
        n = self.hwater + 1 if self.core == "440" else len(hwref)
        held = hwref[:n]
        for i in np.flatnonzero(held >= 0):          # the others hold nothing to release
            release_slot(cpu, vcpu, int(i), CAUSE["flush"])
        if self.flags_released:
            mark_all_modified(vcpu, n)
        c = self.costs
        return n * c["priv_switch_per_entry"] + c["mmap_sem_write"]

    def set_pid(self, cpu, vcpu, pid: int) -> int:
        """The guest wrote ``pid`` to its PID register (kvmppc_set_pid).

        Called inside the ``EMUL_MTSPR`` exit, with the vCPU loaded.  Nothing
        happens when the PID does not change.  ``guest-tid``: the hardware PID
        follows at the next entry; ``swap-pid``: one flush is armed for the
        next privilege switch; ``tid01``: the shadows of process entries are
        released now (:meth:`release_process_shadows`).  Returns cycles.
        """
        ctx = vcpu.ctx
        if pid == ctx.guest_pid:
            return 0
        ctx.guest_pid = pid
        cycles = 0
        if self.tid_scheme == "swap-pid":
            self.swap_pid.add(ctx.ctx)
        elif self.tid_scheme != "guest-tid":
            cycles = self.release_process_shadows(cpu, vcpu)
        return cycles + self.set_shadow_pids(cpu, vcpu)

    def release_guest_entry(self, cpu, vcpu, gi: int, reason: int) -> int:
        """The guest's ``tlbwe`` is about to overwrite valid entry ``gi``: release
        the shadows of the old entry, every shadow_ref whose guest index is
        ``gi`` (kvmppc_44x_invalidate, 44x_tlb.c @7924bd41).  Called inside the
        EMUL_TLBWE exit; returns the slots released."""
        return release_guest_entry(cpu, vcpu, gi, reason)

    def release_process_shadows(self, cpu, vcpu) -> int:
        """The tid01 release at a guest PID change: every shadow_ref of the 64
        with shadow TID 0 (a guest entry with TID != 0) is released, tlbie and
        put_page (44x_tlb.c @7924bd41); returns the cycles of the scan."""
        release_process_entries(cpu, vcpu)
        return 64 * self.costs["set_pid_per_slot"]

    def set_shadow_pids(self, cpu, vcpu) -> int:
        """Load the hardware PID(s) for the guest's mode and PID; returns cycles.

        guest-tid: the guest PID, in both modes (lightweight_exit loads
        VCPU_PID, @bbf45ba5); the later eras: 1 in guest supervisor mode, 0 in
        user mode (``shadow_pid = !usermode``, docs/kvm440.md §2.8).
        """
        ctx = vcpu.ctx
        if self.tid_scheme == "guest-tid":
            ctx.shadow_pid = ctx.guest_pid
        else:
            ctx.shadow_pid = 0 if ctx.guest_pr else 1
        ctx.pid1 = NO_PID
        return 0

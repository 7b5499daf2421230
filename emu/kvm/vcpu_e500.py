"""A vCPU of KVM e500: the e500 guest's TLB and what KVM e500 does at its traps.

The exits, the run loop and the host hooks are :class:`~emu.kvm.vcpu.VcpuThread`'s;
this class changes what is e500 (docs/kvm440.md §4):

* the guest TLB is KVM's own geometry, whatever the host core: TLB0 256
  entries 2-way, TLB1 16 (:func:`emu.hw.e500.build_guest_tlb`), with the
  guest kernel's mappings in TLB1 (:data:`emu.guest.kernel_e500.PINNED_TLB1`);
* KVM's guest TLB0 victim ``guest_tlb_nv[0]``: one counter cycling over the
  two ways, handed to the guest in MAS0[ESEL] at every delivered TLB miss
  (``kvmppc_e500_deliver_tlb_miss``);
* the guest's ``mtspr MMUCSR0`` (``kvmppc_e500_emul_mt_mmucsr0``): every
  guest TLB0 entry is invalidated (the kernel's TLB1 CAMs are IPROT), then
  the design's own step (a flash invalidate @46f43c6e; an ID reset @0164c0f0);
* how KVM searches the guest TLB: linearly over TLB0's 256 then TLB1
  (``kvmppc_e500_tlb_index`` @46f43c6e: the model's flat walk), or the two
  ways of the address's TLB0 set then TLB1 (@0164c0f0 on: ``e500_map[3]``);
* where a shadow goes in hardware (the fast path's ``e500_map``): a guest
  TLB1 entry into the vCPU's TLB1 pool (``tlb1_max_shadow_size()`` slots,
  KVM's round robin), a guest TLB0 entry into the set of its address, at the
  way ESEL names when the design writes ESEL and the core obeys it
  (``machine.tlb_index = "software"``), else at the hardware's victim.
"""

from __future__ import annotations

import numpy as np

from emu.guest.kernel_e500 import PINNED_TLB1
from emu.hw.e500 import GUEST_TLB0_ENTRIES, GUEST_TLB0_WAYS, build_guest_tlb, tlb1_pool_size
from emu.hw.ppc440 import UW
from emu.kvm.vcpu import VcpuThread


class E500VcpuThread(VcpuThread):
    """One vCPU of an e500 VM (see the module docstring)."""

    pinned_entries = PINNED_TLB1
    #: The permissions of a guest write that names none: the e500 guest's
    #: fills name theirs (its finish_tlb_load copies _PAGE_HWWRITE into UW,
    #: emu.guest.kernel_e500.GuestKernelE500.fill_attr).
    GUEST_FILL_ATTR = VcpuThread.GUEST_FILL_ATTR | UW

    def __init__(self, machine, kvm, kernel, vm_index: int, index: int, tid: int,
                 cpu: int, ctx_id: int):
        super().__init__(machine, kvm, kernel, vm_index, index, tid, cpu, ctx_id)
        strategy = self.strategy
        #: guest_tlb_nv[0], and the way the last delivered miss put in MAS0[ESEL]
        self.gtlb_nv, self.mas0_esel = 0, 0
        host_tlb1 = machine.cpus[0].virt.tlb1.entries
        esel = strategy.esel and machine.scenario.machine.tlb_index == "software"
        self.ctx.arrays["e500_map"][:] = (0, tlb1_pool_size(host_tlb1, strategy.tlb1_reserved),
                                          1 if esel else 0, 0 if strategy.linear_search else 1)

    def build_guest_tlb(self, backend):
        """KVM e500's guest TLB: TLB0 256 x 2-way at 0..255, TLB1 16 at 256..271."""
        return build_guest_tlb(backend)

    def deliver(self, cpu, category: str) -> None:
        """As the 440's; a delivered TLB miss also takes KVM's next guest TLB0 victim
        into MAS0[ESEL] (tlb0_get_next_victim)."""
        if category in ("DTLBREAL", "ITLBREAL"):
            self.mas0_esel = self.gtlb_nv
            self.gtlb_nv = (self.gtlb_nv + 1) % GUEST_TLB0_WAYS
        super().deliver(cpu, category)

    def tlbsx(self, cpu, ea: int) -> int:
        """As the 440's; a search that finds nothing also takes KVM's next
        guest TLB0 victim into MAS0[ESEL] (kvmppc_e500_emul_tlbsx's not-found
        branch, at 46f43c6e and 0164c0f0 alike: the guest's MAS4 names TLB0,
        whose tlb0_get_next_victim advances), so the next delivered miss gets
        the way after it."""
        gi = super().tlbsx(cpu, ea)
        if gi < 0:
            self.mas0_esel = self.gtlb_nv
            self.gtlb_nv = (self.gtlb_nv + 1) % GUEST_TLB0_WAYS
        return gi

    def tlb0_victim(self) -> int:
        """The way KVM put in MAS0[ESEL] when it delivered the current miss."""
        return self.mas0_esel

    def flash_invalidate(self, cpu, seq) -> None:
        """The guest's ``mtspr MMUCSR0`` (TLB0FI | TLB1FI) traps: the design's step
        (what becomes of the shadows), then every valid guest TLB0 entry is
        invalidated (the guest's TLB1 CAMs are IPROT and stay)."""
        gtlb = self.gtlb
        t0 = self.begin_exit(cpu)
        cpu.charge("c_path", self.costs["emulate_instruction"])
        cpu.charge("save_restore", self.strategy.guest_flash_invalidate(cpu, self))
        for gi in np.flatnonzero(gtlb.valid_arr[:GUEST_TLB0_ENTRIES]):
            gtlb.invalidate(int(gi))
        (category,) = seq.counts              # one instruction, one exit
        self.end_exit(cpu, category, t0)

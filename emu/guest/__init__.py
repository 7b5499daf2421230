"""The guest OS: processes, page tables, the guest scheduler, and its handlers.

* :mod:`emu.guest.os` — processes, page tables, the (CFS-like) scheduler of
  each vCPU and the guest's memory layout;
* :mod:`emu.guest.kernel` — the guest kernel's handlers (TLB miss and page
  fault, timer tick, system call, process switch, the TLB flush, idle),
  which trap to the host through the :class:`~emu.guest.kernel.TrapPort` the
  vCPU hands in;
* :mod:`emu.guest.traps44x` — what each event traps on, instruction by
  instruction, from Linux 44x's head_44x.S;
* :mod:`emu.guest.footprint` — what the guest kernel touches in memory per
  event.

The guest never imports :mod:`emu.kvm`.
"""

from emu.guest.kernel import GuestKernel, TrapPort
from emu.guest.os import GuestCPU, GuestOS, GuestProcess

__all__ = ["GuestCPU", "GuestKernel", "GuestOS", "GuestProcess", "TrapPort"]

"""The guest OS: processes, page tables, the guest scheduler, and its handlers.

* :mod:`emu.guest.os` — processes, page tables, the scheduler of each vCPU and
  the guest's memory layout;
* :mod:`emu.guest.kernel` — the guest kernel's handlers (TLB miss, timer tick,
  system call, process switch, PID roll-over flush, halt), which trap to the
  host through the :class:`~emu.guest.kernel.TrapPort` the vCPU hands in.

The guest never imports :mod:`emu.kvm`.
"""

from emu.guest.kernel import GuestKernel, TrapPort
from emu.guest.os import GuestCPU, GuestOS, GuestProcess

__all__ = ["GuestCPU", "GuestKernel", "GuestOS", "GuestProcess", "TrapPort"]

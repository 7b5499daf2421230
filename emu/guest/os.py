"""The guest operating system of one VM: a Linux 44x-like kernel, as KVM sees it.

This module holds the guest's state (processes, page tables, the scheduler
of each vCPU, the guest memory layout); its handlers are in
:mod:`emu.guest.kernel`.

What the guest does that matters to the TLB:

* processes with two-level page tables filled on demand (a guest page fault
  takes the next free guest frame);
* a kernel mapping with TID 0: the guest's pinned entry 63 maps EA
  0xC0000000 to guest physical 0 with a 16 MB page (the boot mapping of
  docs/kvm440.md §2.2, moved to PAGE_OFFSET); entries 62 and 61 map the
  UART (0xEF600000, reference §2.2) and the block device, cache-inhibited;
  the guest's round robin covers 0..60;
* a scheduler per vCPU with time slices, PIDs 1..255 and a TLB flush when
  PIDs roll over;
* its own TLB miss handler (Linux 44x style, docs/kvm440.md §1.6): walk
  the page table, pick the round-robin victim, write XLAT, PAGEID, ATTRIB
  with three ``tlbwe`` — each of which traps to KVM;
* timer ticks, system calls (kernel accesses with the guest in supervisor
  mode), sleeping processes and halt when nothing is runnable.

The guest model runs in Python at those events; the accesses between them
run in the fast path.
"""

from __future__ import annotations

import numpy as np

from emu.errors import ConfigError
from emu.qemu.devices import BLOCK_GPA, UART_GPA

KERNEL_BASE = 0xC000_0000
KERNEL_SHIFT = 24                     # 16 MB
UART_EA, BLOCK_EA = UART_GPA, BLOCK_GPA   # the guest maps its devices 1:1
GUEST_TLB_SIZE = 64
GUEST_HWATER = 60                     # 61..63 pinned (devices, kernel)
#: The guest kernel's pinned TLB entries: (index, EA, page shift, GPA), TID 0, TS 0.
PINNED_ENTRIES = ((63, KERNEL_BASE, KERNEL_SHIFT, 0), (62, UART_EA, 12, UART_GPA),
                  (61, BLOCK_EA, 12, BLOCK_GPA))
KERNEL_RESERVED_GFNS = 1024           # the first 4 MB of guest RAM hold the kernel
KERNEL_DATA_EA = KERNEL_BASE + 0x10_0000
KERNEL_DATA_PAGES = 8
KERNEL_ACCESSES_PER_SYSCALL = 24      # estimate: a short system call's data footprint
MAX_PID = 255


class GuestProcess:
    """A guest process: its PID, page table (vpn -> gfn) and access stream."""

    def __init__(self, index: int, stream, chunk: int):
        self.index = index
        self.pid = index % MAX_PID + 1
        self.page_table: dict[int, int] = {}
        self.stream = stream
        self.chunk = chunk
        self.ea = np.zeros(0, np.uint32)
        self.kind = np.zeros(0, np.uint8)
        self.pos = 0
        self.sleep_until = -1             # cycle time it wakes, -1 when runnable
        self.slice_used = 0

    def refill(self) -> None:
        """Fetch the next chunk of the stream (chunk boundaries change nothing)."""
        self.ea, self.kind = self.stream.take(self.chunk)
        self.pos = 0


class GuestCPU:
    """The guest kernel's view of one vCPU: run queue, current process, TLB round robin."""

    def __init__(self, index: int, processes: list, rng: np.random.Generator):
        self.index = index
        self.processes = processes
        self.current = processes[0] if processes else None
        self.tlb_rr = 0
        self.rng = rng
        self.pid_owner: dict[int, int] = {}   # PID -> index of the process that last used it
        if self.current is not None:
            self.pid_owner[self.current.pid] = self.current.index

    def runnable(self, now: int) -> list:
        for p in self.processes:
            if p.sleep_until >= 0 and p.sleep_until <= now:
                p.sleep_until = -1
        return [p for p in self.processes if p.sleep_until < 0]

    def next_wake(self) -> int:
        times = [p.sleep_until for p in self.processes if p.sleep_until >= 0]
        return min(times) if times else -1

    def pick_next(self, now: int):
        """Round robin: the next runnable process after the current one."""
        ready = self.runnable(now)
        if not ready:
            return None
        if self.current in ready:
            i = self.processes.index(self.current)
            for step in range(1, len(self.processes) + 1):
                p = self.processes[(i + step) % len(self.processes)]
                if p.sleep_until < 0:
                    return p
        return ready[0]

    def tlb_victim(self) -> int:
        """The guest's round-robin index over 0..GUEST_HWATER (tlb_44x_index)."""
        i = self.tlb_rr
        self.tlb_rr = 0 if i >= GUEST_HWATER else i + 1
        return i

    def kernel_accesses(self):
        """The data accesses of one system call in the guest kernel."""
        pages = self.rng.integers(0, KERNEL_DATA_PAGES, KERNEL_ACCESSES_PER_SYSCALL)
        offsets = self.rng.integers(0, 512, KERNEL_ACCESSES_PER_SYSCALL) * 8
        ea = (KERNEL_DATA_EA + pages * 4096 + offsets).astype(np.uint32)
        kind = np.ones(KERNEL_ACCESSES_PER_SYSCALL, np.uint8)
        return np.ascontiguousarray(ea), kind


class GuestOS:
    """The guest kernel of one VM: memory, processes and one GuestCPU per vCPU."""

    def __init__(self, memory_pages: int, processes: list, vcpus: int, seeds):
        self.memory_pages = memory_pages
        self.next_gfn = KERNEL_RESERVED_GFNS
        self.processes = processes
        self.cpus = [GuestCPU(v, processes[v::vcpus], np.random.default_rng(seeds[v]))
                     for v in range(vcpus)]
        self.page_faults = 0

    def alloc_gfn(self) -> int:
        """The next free guest frame (demand paging)."""
        if self.next_gfn >= self.memory_pages:
            raise ConfigError(f"vm: guest memory of {self.memory_pages * 4 // 1024} MB is "
                              "exhausted by its processes' pages (raise vm.N.memory_mb)")
        gfn = self.next_gfn
        self.next_gfn += 1
        self.page_faults += 1
        return gfn

    def translate(self, proc: GuestProcess, ea: int):
        """The guest page-table walk: (gfn, faulted) for a user EA."""
        vpn = ea >> 12
        gfn = proc.page_table.get(vpn)
        if gfn is not None:
            return gfn, False
        gfn = self.alloc_gfn()
        proc.page_table[vpn] = gfn
        return gfn, True

"""The guest operating system of one VM: a Linux 44x-like kernel, as KVM sees it.

This module holds the guest's state (processes, page tables, the scheduler
of each vCPU, the guest memory layout); its handlers are in
:mod:`emu.guest.kernel`, what they trap on in :mod:`emu.guest.traps44x` and
what they touch in memory in :mod:`emu.guest.footprint`.

What the guest does that matters to the TLB:

* processes with two-level page tables filled on demand: a page fault takes
  the next free guest frame, and a PTE page (512 PTEs, 2 MB of user space)
  when the region has none yet;
* a kernel mapping with TID 0: the guest's pinned entry 63 maps EA
  0xC0000000 to guest physical 0 with a 256 MB page, as head_44x.S @026477c1
  pins lowmem ("Configure and load pinned entry into TLB slot 63",
  PPC44x_TLB_256M; docs/kvm440.md §1.5).  A simplification: entries 62
  and 61 map the UART (0xEF600000, reference §2.2) and the block device,
  cache-inhibited, so the guest's round robin covers 0..60; Linux would map
  them with ioremap and fill them through the kernel-address path of its
  miss handler;
* the kernel's own frames: its text and static data from frame 0, then each
  process's task struct, kernel stack (2 pages, THREAD_SIZE 8 KB) and page
  directory (2 pages: the 44x pgdir is 8 KB, head_44x.S ``swapper_pg_dir``),
  inside the first 4 MB while they fit;
* a CFS-like scheduler per vCPU (:class:`GuestCPU`): the runnable process
  with the least virtual runtime runs, so every runnable process gets its
  turn; PIDs 1..255, a new address space taking the next one no live
  process holds, as ``get_mmu_context`` does.
"""

from __future__ import annotations

import numpy as np

from emu.errors import ConfigError
from emu.qemu.devices import BLOCK_GPA, UART_GPA

KERNEL_BASE = 0xC000_0000
KERNEL_SHIFT = 28                     # 256 MB: head_44x.S pins PPC44x_TLB_256M in slot 63
#: Guest frames the pinned kernel entry covers: the kernel reaches these only.
KERNEL_MAPPED_GFNS = 1 << (KERNEL_SHIFT - 12)
UART_EA, BLOCK_EA = UART_GPA, BLOCK_GPA   # the guest maps its devices 1:1
GUEST_TLB_SIZE = 64
GUEST_HWATER = 60                     # 61..63 pinned (devices, kernel): docs/design.md §2, guest OS
#: The guest kernel's pinned TLB entries: (index, EA, page shift, GPA), TID 0, TS 0.
PINNED_ENTRIES = ((63, KERNEL_BASE, KERNEL_SHIFT, 0), (62, UART_EA, 12, UART_GPA),
                  (61, BLOCK_EA, 12, BLOCK_GPA))
KERNEL_RESERVED_GFNS = 1024           # the first 4 MB of guest RAM hold the kernel
MAX_PID = 255
#: User space one PTE page maps: 512 PTEs of 8 bytes, 4 KB each (PGDIR_SHIFT 21).
PTE_SPAN_SHIFT = 21
#: Kernel frames each process owns from its creation: task struct, kernel
#: stack (2), page directory (2).
PROCESS_KERNEL_PAGES = 5


class GuestProcess:
    """A guest process: its PID, page table (vpn -> gfn), access stream and figures.

    With a ``lifetime`` (accesses, 0: never), the process exits after that many
    accesses and a fresh one takes its place (:meth:`GuestOS.replace`);
    ``starts`` counts the replacements.

    ``pos`` is the next record of the current chunk.  A record is a guest
    access unless it is a marker (a system call, a sleep); the fast path stops
    at every marker, so the records one call runs through are all accesses.
    The figures (``accesses``, ``tlb_misses``, ``guest_tlb_misses``,
    ``page_faults``, ``syscalls``) count since the start or the warm-up.
    """

    def __init__(self, index: int, stream, chunk: int, lifetime: int = 0):
        self.index = index
        self.pid = index % MAX_PID + 1
        self.page_table: dict[int, int] = {}
        self.pte_pages: dict[int, int] = {}   # 2 MB region -> gfn of its PTE page
        #: vpns whose PTE has _PAGE_HWEXEC: set by the exec fault, never at creation
        self.hwexec: set[int] = set()
        #: vpns whose PTE has _PAGE_HWWRITE (the e500 guest's): set by the
        #: DataStorage fast path at the first store, never at creation
        self.hwwrite: set[int] = set()
        self.task_gfn = self.stack_gfn = self.pgd_gfn = -1   # kernel frames (GuestOS)
        self.stream = stream
        self.chunk = chunk
        self.ea = np.zeros(0, np.uint32)
        self.kind = np.zeros(0, np.uint8)
        self.pos = 0
        self.sleep_until = -1             # cycle time it wakes, -1 when runnable
        self.vruntime = 0                 # cycles it has run (CFS)
        #: accesses a process makes before it exits and is replaced (0: never)
        self.lifetime = lifetime
        self.life_left = self.lifetime
        self.restart()

    def restart(self) -> None:
        """Zero the figures (the end of a warm-up)."""
        self.accesses = self.tlb_misses = self.guest_tlb_misses = 0
        self.page_faults = self.syscalls = self.starts = 0

    def refill(self) -> None:
        """Fetch the next chunk of the stream (chunk boundaries change nothing)."""
        self.ea, self.kind = self.stream.take(self.chunk)
        self.pos = 0

    def advance(self, pos: int) -> int:
        """The accesses up to record ``pos`` are done (no marker among them);
        returns how many."""
        done = pos - self.pos
        self.pos = pos
        self.accesses += done
        if self.lifetime:
            self.life_left -= done
        return done

    @property
    def exiting(self) -> bool:
        """Whether the process has made its ``lifetime_accesses`` and exits now."""
        return self.lifetime > 0 and self.life_left <= 0

    def skip_marker(self) -> None:
        """The marker at ``pos`` (a system call, a sleep) is handled."""
        self.pos += 1

    def limit(self, n: int) -> int:
        """The position just after the ``n``-th guest access from ``pos`` (at most
        the last access of the process's lifetime), or the chunk's end: a
        marker before it stops the fast path first."""
        if self.lifetime:
            n = min(n, self.life_left)
        return min(len(self.kind), self.pos + n)


class GuestCPU:
    """The guest kernel's view of one vCPU: run queue, current process, TLB round robin.

    The scheduler is CFS-like (Linux 2.6.23+, kernel/sched_fair.c; general
    knowledge): each process accrues virtual runtime while it runs, the
    runnable process with the least ``(vruntime, index)`` runs next, and a
    process that wakes up is placed at no less than ``min_vruntime -
    latency / 2`` (``place_entity``'s gentle sleepers), so a long sleep earns
    no unbounded credit.  ``latency`` is CFS's target latency in cycles.
    """

    def __init__(self, index: int, processes: list, latency: int = 0):
        self.index = index
        self.processes = processes
        self.current = processes[0] if processes else None
        self.exec_start = 0               # when the current process got the CPU
        self.min_vruntime = 0
        self.wake_credit = latency // 2
        self.tlb_rr = 0
        self.pid_owner: dict[int, int] = {}   # PID -> index of the process that last used it
        if self.current is not None:
            self.pid_owner[self.current.pid] = self.current.index

    def account(self, now: int) -> None:
        """Charge the current process the time since it last got the CPU."""
        cur = self.current
        if cur is not None:
            cur.vruntime += max(0, now - self.exec_start)
        self.exec_start = now

    def runnable(self, now: int) -> list:
        """The runnable processes at ``now``, waking (and placing) those whose sleep is over."""
        ready = []
        for p in self.processes:
            if p.sleep_until >= 0:
                if p.sleep_until > now:
                    continue
                p.sleep_until = -1
                p.vruntime = max(p.vruntime, self.min_vruntime - self.wake_credit)
            ready.append(p)
        if ready:
            self.min_vruntime = max(self.min_vruntime, min(p.vruntime for p in ready))
        return ready

    def next_wake(self) -> int:
        """When the first sleeping process wakes (its I/O completes), or -1."""
        times = [p.sleep_until for p in self.processes if p.sleep_until >= 0]
        return min(times) if times else -1

    def pick_next(self, now: int):
        """The runnable process with the least virtual runtime, or None."""
        self.account(now)
        ready = self.runnable(now)
        return min(ready, key=lambda p: (p.vruntime, p.index)) if ready else None

    def preempt(self, now: int, slice_start: int, timeslice: int):
        """At a tick: the process to switch to, once the current one has run its
        slice and another runnable one has run less; else None."""
        cur = self.current
        if cur is None or now - slice_start < timeslice:
            return None
        nxt = self.pick_next(now)
        return nxt if nxt is not None and nxt is not cur and nxt.vruntime < cur.vruntime else None

    def switch_to(self, proc, now: int) -> None:
        """``proc`` (None: the idle task) gets the CPU at ``now``."""
        self.account(now)
        self.current = proc

    def tlb_victim(self) -> int:
        """The guest's round-robin index over 0..GUEST_HWATER (tlb_44x_index)."""
        i = self.tlb_rr
        self.tlb_rr = 0 if i >= GUEST_HWATER else i + 1
        return i


class GuestOS:
    """The guest kernel of one VM: memory, processes and one GuestCPU per vCPU.

    ``static_gfns`` frames from frame 0 hold the kernel's text and static
    data (:class:`emu.guest.footprint.Footprint` lays them out); each
    process's own kernel frames follow; ``latency`` is the guest CFS's target
    latency in cycles.
    """

    def __init__(self, memory_pages: int, processes: list, vcpus: int, static_gfns: int = 0,
                 latency: int = 0):
        self.memory_pages = memory_pages
        self.next_gfn = KERNEL_RESERVED_GFNS
        self.free_gfns: list[int] = []        # frames freed by exited processes
        self.kernel_next = static_gfns
        self.processes = processes
        self.page_faults = 0
        self.exec_faults = 0                  # exec faults: ISIs that set _PAGE_HWEXEC
        self.next_pid = len(processes) % MAX_PID + 1   # the PID the next new process gets
        for p in processes:
            p.task_gfn = self.alloc_kernel(1)
            p.stack_gfn = self.alloc_kernel(2)
            p.pgd_gfn = self.alloc_kernel(2)
        self.cpus = [GuestCPU(v, processes[v::vcpus], latency) for v in range(vcpus)]

    def alloc_kernel(self, n: int) -> int:
        """``n`` contiguous kernel frames: in the kernel's reserved 4 MB while they
        last, else from the free pool.  Returns the first."""
        if self.kernel_next + n <= KERNEL_RESERVED_GFNS:
            gfn = self.kernel_next
            self.kernel_next += n
            return gfn
        gfn = self.alloc_frame()
        for _ in range(n - 1):
            self.alloc_frame()
        return gfn

    def alloc_frame(self) -> int:
        """The next free guest frame: one an exited process freed (the most
        recently freed first), else a never-used one."""
        if self.free_gfns:
            return self.free_gfns.pop()
        if self.next_gfn >= self.memory_pages:
            raise ConfigError(f"vm: guest memory of {self.memory_pages * 4 // 1024} MB is "
                              "exhausted by its processes' pages (raise vm.N.memory_mb)")
        gfn = self.next_gfn
        self.next_gfn += 1
        return gfn

    def walk(self, proc: GuestProcess, ea: int):
        """The guest page-table walk for a user EA: (gfn or None if the PTE is not
        present, whether the region has a PTE page)."""
        return proc.page_table.get(ea >> 12), (ea >> PTE_SPAN_SHIFT) in proc.pte_pages

    def fault(self, proc: GuestProcess, ea: int) -> int:
        """do_page_fault for a user EA: a PTE page if the region has none, then a
        new frame (demand paging); returns the frame."""
        region = ea >> PTE_SPAN_SHIFT
        if region not in proc.pte_pages:
            proc.pte_pages[region] = self.alloc_frame()
        gfn = self.alloc_frame()
        proc.page_table[ea >> 12] = gfn
        self.page_faults += 1
        proc.page_faults += 1
        return gfn

    def executable(self, proc: GuestProcess, ea: int) -> bool:
        """Whether the PTE of ``ea`` has _PAGE_HWEXEC, which the TLB fill turns
        into SX and UX.  A user PTE is made without it (_PAGE_EXEC is 0 on 44x,
        so PAGE_COPY_X is _PAGE_BASE | _PAGE_USER); only the exec fault sets it
        (:meth:`set_executable`)."""
        return ea >> 12 in proc.hwexec

    def set_executable(self, proc: GuestProcess, ea: int) -> None:
        """do_page_fault's exec branch: ``pte_update(ptep, 0, _PAGE_HWEXEC)``."""
        self.exec_faults += 1
        proc.hwexec.add(ea >> 12)

    def written(self, proc: GuestProcess, ea: int) -> bool:
        """Whether the PTE of ``ea`` has _PAGE_HWWRITE, which the e500 guest's fill
        turns into UW and SW.  A user PTE is made without it (pte_mkdirty and
        pte_mkwrite set _PAGE_DIRTY and _PAGE_RW only); the DataStorage fast path
        sets it (:meth:`set_written`)."""
        return ea >> 12 in proc.hwwrite

    def set_written(self, proc: GuestProcess, ea: int) -> None:
        """DataStorage: ``ori r11, r11, _PAGE_DIRTY|_PAGE_ACCESSED|_PAGE_HWWRITE``."""
        proc.hwwrite.add(ea >> 12)

    def free_pid(self, proc: GuestProcess) -> int:
        """The context a new address space in ``proc``'s slot gets, as
        ``get_mmu_context`` gives it (include/asm-ppc/mmu_context.h, 4xx:
        contexts 1..255): from ``next_pid`` on, the first no other live
        process holds.  When every one is held, the kernel steals the
        context at ``next_pid`` (``steal_context``: ``flush_tlb_mm`` of its
        owner); emu gives that one, and the switch that finds it used by
        another process flushes (:meth:`emu.guest.kernel.GuestKernel.context_switch`).
        """
        held = {p.pid for p in self.processes if p is not proc}
        pid = self.next_pid
        for _ in range(MAX_PID):
            if pid not in held:
                return pid
            pid = pid % MAX_PID + 1
        return self.next_pid

    def replace(self, proc: GuestProcess) -> None:
        """``proc`` exits and a fresh process takes its place (exit_mmap, then
        fork and exec): its user frames and PTE pages are freed, the new one
        has the next free PID (:meth:`free_pid`) and an empty page table, and
        demand-faults its pages again.  A simplification: the new process
        reuses the slot, the access stream and the kernel frames (task
        struct, stack, page directory) of the old one; its figures add up.
        """
        self.free_gfns.extend(sorted(proc.page_table.values(), reverse=True))
        self.free_gfns.extend(sorted(proc.pte_pages.values(), reverse=True))
        proc.page_table.clear()
        proc.pte_pages.clear()
        proc.hwexec.clear()
        proc.hwwrite.clear()
        proc.pid = self.free_pid(proc)
        self.next_pid = proc.pid % MAX_PID + 1
        proc.life_left = proc.lifetime
        proc.starts += 1

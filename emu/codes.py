"""Names and numbers shared by the fast path, the reference and the stats.

This module is the one source of these numbers.  The build turns the tuples
named in :data:`C_ENUMS` into the fast path's C enums (``setup.py`` runs this
file on its own, without importing the package, and writes
``emu/_codes.pxi``), so it must stay plain Python with no imports.
``tests/test_codes.py`` checks the compiled extension against it (a stale
build fails there).
"""

#: KVM's exit-timing categories (arch/powerpc/kvm/timing.c @73e75b41;
#: docs/kvm440.md §2.9), in the kernel's order, TIMEINGUEST last.
EXIT_CATEGORIES = (
    "MMIO", "DCR", "SIGNAL", "ITLBREAL", "ITLBVIRT", "DTLBREAL", "DTLBVIRT",
    "SYSCALL", "ISI", "DSI", "EMULINST", "EMUL_WAIT", "EMUL_WRTEE", "EMUL_MTSPR",
    "EMUL_MFSPR", "EMUL_MTMSR", "EMUL_MFMSR", "EMUL_TLBSX", "EMUL_TLBWE", "EMUL_RFI",
    "DEC", "EXTINT", "HALT", "USR_PR_INST", "FP_UNAVAIL", "DEBUG", "TIMEINGUEST",
)
EXIT = {name: i for i, name in enumerate(EXIT_CATEGORIES)}

#: Causes of a hardware TLB miss (docs/design.md §6): every miss has exactly one.
MISS_CAUSES = (
    "compulsory", "host-eviction", "other-guest-eviction", "self-eviction",
    "guest-context-switch", "flush", "shadow-not-restored",
)
CAUSE = {name: i for i, name in enumerate(MISS_CAUSES)}

#: Where every cycle of every CPU goes; they add up to simulated time x CPUs.
CYCLE_CATEGORIES = (
    "guest",          # guest work: accesses, micro-TLB refills, the guest kernel's own work
    "exit_entry",     # leaving the guest and entering it again, delivering interrupts
    "fastpath",       # the TLB miss handler's steps (asm or c)
    "c_path",         # KVM's C code: the deferred path, instruction emulation
    "gfn_to_pfn",     # get_user_pages and the host page faults it takes
    "save_restore",   # the strategy's TLB work at entry, vcpu_load and vcpu_put
    "host_switch",    # host context switches
    "host_tasks",     # ordinary host tasks, their TLB misses included
    "qemu",           # QEMU's I/O threads
    "idle",           # no runnable thread
)
CYCLES = {name: i for i, name in enumerate(CYCLE_CATEGORIES)}
#: How the plots' legends and ``emu explain``'s lines name each category.
CYCLE_LABELS = {
    "guest": "guest work", "exit_entry": "exit/entry", "fastpath": "miss handler (fast path)",
    "c_path": "KVM C path", "gfn_to_pfn": "gfn_to_pfn", "save_restore": "TLB save/restore",
    "host_switch": "host context switch", "host_tasks": "host tasks", "qemu": "QEMU",
    "idle": "idle",
}

#: Steps of the miss handler whose cycles the fast-path profile reports.
PROFILE_STEPS = (
    "save", "walk", "deliver", "gpa", "memslot", "pfn_lookup", "hw_write", "restore",
    "full_exit", "entry_restore", "deferred_c_path", "gfn_to_pfn",
)
STEP = {name: i for i, name in enumerate(PROFILE_STEPS)}

#: The buckets of the step profile's histogram of cycles per occurrence, each
#: named by the smallest value it holds: "0", then log2 buckets (bucket b >= 1
#: holds 2**(b-1) .. 2**b - 1 cycles); the last also holds everything above.
CYCLE_BUCKETS = ("0",) + tuple(str(1 << b) for b in range(23))
#: The buckets of the walk's histogram of guest TLB entries scanned, named the
#: same way: one per count 0..64 (a 440 guest TLB; 0 is a hashed lookup, which
#: scans no list), then log2 buckets 65..128, 129..256, ... for a larger guest
#: TLB (an e500's 256 x 2-way TLB0 and 16-entry TLB1: 528); the last holds
#: everything above.
SCAN_BUCKETS = tuple(str(n) for n in range(65)) + tuple(str((1 << b) + 1) for b in range(6, 12))


def cycle_bucket(cycles: int) -> int:
    """The CYCLE_BUCKETS index of a step that cost ``cycles``."""
    return 0 if cycles <= 0 else min(cycles.bit_length(), len(CYCLE_BUCKETS) - 1)


def scan_bucket(entries: int) -> int:
    """The SCAN_BUCKETS index of a walk that scanned ``entries`` guest TLB entries."""
    if entries <= 64:
        return max(entries, 0)
    return min(58 + (entries - 1).bit_length(), len(SCAN_BUCKETS) - 1)

#: Why the fast path returned to Python.
STOPS = ("budget", "end", "guest_miss", "mmio", "deferred", "syscall", "sleep", "host_fault",
         "machine_check", "dsi", "isi")
STOP = {name: i for i, name in enumerate(STOPS)}

#: How a guest TLB miss's handler ended (the per-miss log's ``outcome``):
#: filled from a pfn the fast path knew, deferred to C (gfn_to_pfn), delivered
#: to the guest (not in its TLB), an MMIO exit, or a machine check.
MISS_OUTCOMES = ("filled", "deferred", "guest_miss", "mmio", "machine_check")
OUTCOME = {name: i for i, name in enumerate(MISS_OUTCOMES)}

#: TLB counters.
TLB_COUNTERS = ("hits", "misses", "micro_hits", "micro_misses", "isolation_violations",
                "host_mappings_killed")
TLB = {name: i for i, name in enumerate(TLB_COUNTERS)}

STRATEGIES = ("shadow", "shadow-modified", "direct", "direct-save-on-switch",
              "e500-flush-on-put", "e500-shadow-ids")
STRATEGY = {name: i for i, name in enumerate(STRATEGIES)}
#: The TID eras of KVM-440 (docs/kvm440.md §2.10): what a shadow entry's TID
#: is and what the hardware PID holds while the guest runs.
TID_SCHEMES = ("guest-tid", "swap-pid", "tid01")
TID_SCHEME = {name: i for i, name in enumerate(TID_SCHEMES)}
HANDLERS = ("asm", "c")
HANDLER = {name: i for i, name in enumerate(HANDLERS)}
PFN_SOURCES = ("gup", "pin-all", "pfn-cache", "guest-tlb-refs")
PFN_SOURCE = {name: i for i, name in enumerate(PFN_SOURCES)}


def handler_name(handler: str) -> str:
    """A miss handler as labels and sentences name it: ``C`` for the
    kernels' own (``c``, the key's value), ``asm`` for the assembly one."""
    return "C" if handler == "c" else handler


#: Access kinds in a stream (0..3 are memory accesses, the others events).
KINDS = ("ifetch", "load", "store", "modify", "syscall", "sleep")
KIND = {name: i for i, name in enumerate(KINDS)}
KIND_IFETCH, KIND_LOAD, KIND_STORE = KIND["ifetch"], KIND["load"], KIND["store"]
KIND_MODIFY, KIND_SYSCALL, KIND_SLEEP = KIND["modify"], KIND["syscall"], KIND["sleep"]

#: Replacement policies of a TLB array ("none": software always names the index,
#: as in the guest TLB).
POLICIES = ("fifo", "lru", "random", "round-robin", "nv", "none")
POLICY = {name: i for i, name in enumerate(POLICIES)}

#: The tuples the build turns into C enums, by the prefix of their constants:
#: name number i of ``EXIT_CATEGORIES`` is ``EXIT_<NAME>`` = i in C (the name
#: upper-cased, '-' as '_'), and ``N_EXIT_CATEGORIES`` is the tuple's length.
C_ENUMS = {
    "EXIT": "EXIT_CATEGORIES",
    "CAUSE": "MISS_CAUSES",
    "CYCLES": "CYCLE_CATEGORIES",
    "STEP": "PROFILE_STEPS",
    "STOP": "STOPS",
    "TLB": "TLB_COUNTERS",
    "STRATEGY": "STRATEGIES",
    "TID_SCHEME": "TID_SCHEMES",
    "HANDLER": "HANDLERS",
    "PFN_SOURCE": "PFN_SOURCES",
    "KIND": "KINDS",
    "POLICY": "POLICIES",
    "HIST_CYCLES": "CYCLE_BUCKETS",
    "HIST_SCAN": "SCAN_BUCKETS",
    "OUTCOME": "MISS_OUTCOMES",
}

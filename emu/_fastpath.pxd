# C-level declarations of emu's fast path.
#
# The rest of the package never imports this module directly: it goes through
# emu.engine.get, which picks this extension or the pure-Python reference twin
# (emu/engine/reference/) with the same semantics.
#
# This file is the engine's contract: the structs both sides agree on (a TLB
# entry, the cost table, the counters, the stop record) and the cdef class
# layouts.  BookeTLB, VirtCPU and Ctx live in one extension module so that the
# hit path's calls to their cdef methods can be inlined.

cimport cython
from libc.stdint cimport int32_t, int64_t, uint8_t, uint32_t, uint64_t

# The codes shared with Python (EXIT_*, CAUSE_*, CYCLES_*, STEP_*, STOP_*, TLB_*,
# STRATEGY_*, TID_SCHEME_*, HANDLER_*, PFN_SOURCE_*, KIND_*, POLICY_* and N_<tuple>), generated
# by setup.py from emu/codes.py.
include "_codes.pxi"


# Every page a PlainTLB has translated, and the slot holding it: a growable
# open-addressing table (linear probing) that never deletes.
cdef struct PageIndex:
    uint64_t *keys           # 0 = empty; a page is stored as vpn + 1
    int32_t *slots           # the slot holding the page, or -1 when it is not resident
    uint64_t mask
    uint64_t used


@cython.final
cdef class PlainTLB:
    """One TLB array of sets x ways, one page size, no TID/TS (``emu tlb``)."""
    cdef public int entries, sets, ways, hwater, policy, page_shift
    cdef int set_mask                # sets - 1 when sets is a power of two, else -1
    cdef public object tag_arr, valid_arr, ptr_arr
    cdef uint64_t[::1] tag           # vpn held by each slot
    cdef uint8_t[::1] valid
    cdef int32_t[::1] ptr            # FIFO/round-robin: next victim way per set; NV: ptr[0]
    # LRU and random: the number of ways filled so far (slots fill lowest way
    # first; a PlainTLB is never invalidated, so the holes are exactly the
    # ways >= nfill)
    cdef int32_t[::1] nfill
    cdef uint64_t clock
    cdef uint64_t rng
    # vpn -> slot for every page ever translated (a miss on a page not in it
    # is compulsory); where[slot] is the index in it of the page the slot holds
    cdef PageIndex pages
    cdef uint64_t *where
    cdef bint out_of_memory
    # NOTE: the resident filter, a direct-mapped table indexed by vpn & fmask.
    # fvpn[i] == vpn implies vpn is in the TLB, in slot fslot[i]; a hit costs one
    # load and a compare.  Pages it does not hold go through the page index.
    # Under LRU a hit stores its time in fstamp[i], next to the filter entry
    # (a store whose address needs no second load).  A slot's last use is
    # fstamp[tloc[slot]]: its page's filter place while the filter holds it,
    # else a place of its own past the filter's (fstamp[fmask + 1 + slot]).
    cdef uint64_t *fvpn
    cdef int32_t *fslot
    cdef uint64_t *fstamp
    cdef int32_t *tloc
    cdef uint64_t fmask
    # LRU over 16 to 64 ways: per set, the LRU_QUEUE ways used longest ago as
    # last found (a time << 6 | way each, in order, lq_next[set] the next to
    # try); a way is the victim while its time is still the one found
    cdef uint64_t *lq
    cdef int32_t *lq_next
    cdef int32_t *lq_len
    # the records a scan took before it stopped (at a miss, mostly), averaged
    # over the last scans: below SCALAR_BELOW the next scan is record by record
    cdef double scan_gap
    # counters
    cdef public uint64_t records, translations, hits, misses, compulsory
    cdef public uint64_t vector_scans, scalar_scans

    cdef int set_of(self, uint64_t vpn) noexcept nogil
    cdef int grow_pages(self) noexcept nogil
    cdef int choose_victim(self, int set_) noexcept nogil
    cdef int lru_victim(self, int set_) noexcept nogil
    cdef void translate(self, uint64_t vpn) noexcept nogil
    cdef void page(self, uint64_t vpn) noexcept nogil
    cdef int straddle(self, uint64_t a, uint64_t size) noexcept nogil


# One slot of a Book E TLB array.  A BookeTLB keeps an array of them in one
# numpy record array (``entry_arr``, dtype ENTRY_DTYPE, built from this struct);
# its ``vpn_arr``, ``shift_arr``, ... attributes are views of the fields.
cdef struct TLBEntry:
    uint64_t vpn             # EPN >> page shift
    uint64_t rpn             # real page base address (bytes)
    uint64_t stamp           # LRU: the time of the slot's last use
    uint32_t attr            # permissions and WIMGE
    int32_t owner            # (context << 8) | guest TID of the writer's entry (-1: none)
    uint32_t gen             # bumped on every write/invalidate of the slot
    uint8_t shift            # log2(page size)
    uint8_t tid
    uint8_t ts
    uint8_t valid


@cython.final
cdef class BookeTLB:
    """One PowerPC Book E TLB array: 440 UTLB, e500 TLB0 or TLB1, a guest TLB."""
    cdef public int entries, sets, ways, hwater, policy
    cdef public object entry_arr     # the slots (ENTRY_DTYPE)
    cdef public object vpn_arr, shift_arr, tid_arr, ts_arr, valid_arr, rpn_arr
    cdef public object attr_arr, owner_arr, stamp_arr, gen_arr, ptr_arr
    cdef TLBEntry[::1] e             # entry_arr, seen from C
    cdef int32_t[::1] ptr            # FIFO/round-robin: next victim way per set; NV: ptr[0]
    cdef public uint64_t wgen        # bumped on every write/invalidate of any slot
    cdef uint64_t clock
    cdef public uint64_t rng
    cdef int set_shift               # set index = (ea >> set_shift) % sets
    # hash index over valid entries keyed by (vpn, shift)
    cdef int32_t *hhead
    cdef int32_t *hnext
    cdef uint64_t hmask
    cdef int32_t shift_count[64]
    cdef uint64_t shifts_in_use      # bit s set when some valid entry has shift s

    cdef void link(self, int i) noexcept nogil
    cdef void unlink(self, int i) noexcept nogil
    cdef int lookup(self, uint64_t ea, uint32_t pid, uint32_t pid1, uint32_t as_) noexcept nogil
    cdef int victim(self, uint64_t ea) noexcept nogil
    cdef void set_entry(self, int i, uint64_t ea, int shift_, int tid_, int ts_,
                        uint64_t rpn_, uint32_t attr_, int owner_) noexcept nogil
    cdef void clear_entry(self, int i) noexcept nogil
    cdef void touch(self, int i) noexcept nogil


# Growable open-addressing map uint64 -> uint8 (why a context's page left the TLB).
cdef struct ReasonMap:
    uint64_t *keys           # 0 = empty; stored keys are key + 1
    uint8_t *vals
    uint64_t mask
    uint64_t used


# The cost table the loops read: cycles per step, one field per row of
# emu.costs that the fast path charges (the names are the rows' names), plus
# the strategy's guest-entry work, and the clock (exit timing in whole µs).
# Ctx.set_costs fills it from a dict.
cdef struct Costs:
    int64_t clock_mhz
    int64_t access, micro_tlb_refill, tlbwe, deliver_interrupt
    int64_t asm_save, asm_walk_per_entry, asm_walk_hashed, asm_gpa, asm_memslot
    int64_t asm_pfn_lookup, asm_hw_write, asm_restore
    int64_t c_full_exit, c_walk_per_entry, c_walk_hashed, c_gpa, c_memslot
    int64_t c_pfn_lookup, c_hw_write, c_restore
    int64_t native_miss_handler, put_page, e500_sid_alloc
    int64_t entry_base, entry_per_mod


# What one context counts, in one block (emu.codes names every index).  Each
# Ctx owns one, in a numpy record (``Ctx.counters``, dtype COUNTERS_DTYPE);
# its ``arrays`` dict holds a flat view of each field (int64, the sums of
# squares float64) under the field's name, which is the layout emu.stats reads.
cdef struct ExitTiming:
    int64_t count, cycles, min, max
cdef struct StepCount:
    int64_t count, cycles
cdef struct Counters:
    ExitTiming exits[N_EXIT_CATEGORIES]     # per exit category (emu.codes.EXIT)
    # per exit category: sum of squared cycles, as a double: a square of a long
    # exit, summed over an hour's run, may pass 2**63; exact below 2**53
    double exit_sumsq[N_EXIT_CATEGORIES]
    # the same in whole µs, each exit truncated first, as KVM's timing.c kept them
    ExitTiming exits_us[N_EXIT_CATEGORIES]
    double exit_sumsq_us[N_EXIT_CATEGORIES]
    int64_t tlb[N_TLB_COUNTERS]             # emu.codes.TLB
    int64_t causes[N_MISS_CAUSES]           # hardware misses per cause (emu.codes.CAUSE)
    StepCount profile[N_PROFILE_STEPS]      # the miss handler's steps (emu.codes.STEP)
    # per step, occurrences by cycles (emu.codes.CYCLE_BUCKETS), and the
    # walks by guest TLB entries scanned (emu.codes.SCAN_BUCKETS)
    int64_t profile_hist[N_PROFILE_STEPS][N_CYCLE_BUCKETS]
    int64_t walk_scan[N_SCAN_BUCKETS]


# One row of the per-miss log (sim.miss_log), shared by a machine's vCPUs in
# one numpy record array (emu._fastpath.MISS_DTYPE, built from this struct).
cdef struct MissRecord:
    int64_t time             # the vCPU's clock at the miss (Ctx.log_clock + the CPU's cycles)
    uint64_t ea
    int32_t ctx
    int32_t kind             # emu.codes.KINDS
    int32_t cause            # emu.codes.MISS_CAUSES
    int32_t scanned          # guest TLB entries the walk scanned (0: a hashed lookup)
    int32_t outcome          # emu.codes.MISS_OUTCOMES
    int64_t steps[N_PROFILE_STEPS]          # cycles per step of the handler (emu.codes.STEP)


# Why and where the last run_virt / run_native call returned to Python.
cdef struct Stop:
    int reason               # emu.codes.STOP
    uint64_t ea              # the access that stopped (guest_miss, mmio, deferred, host_fault)
    uint64_t gpa             # its guest physical address (mmio, deferred)
    int gi                   # the guest TLB entry that translated it (mmio, deferred)
    int kind                 # its kind (guest_miss, mmio, deferred)
    int64_t pending          # cycles its exit has cost so far (mmio, deferred)


@cython.final
cdef class VirtCPU:
    """One physical CPU's translation hardware and miss bookkeeping."""
    cdef public BookeTLB tlb         # 440 UTLB, or e500 TLB0
    cdef public BookeTLB tlb1        # e500 TLB1, or None
    cdef public bint e500, micro
    cdef bint lru                    # a TLB array replaces by LRU: hits must touch
    cdef public object cycles_arr, ctx_host_arr
    cdef int64_t[::1] cycles         # the CPU's cycle breakdown (emu.codes.CYCLES)
    cdef uint8_t[::1] ctx_host       # per context id: 1 for host tasks and QEMU
    cdef int32_t islot[4]
    cdef int32_t dslot[8]
    cdef uint32_t igen[4]
    cdef uint32_t dgen[8]
    cdef int iptr, dptr
    cdef ReasonMap reasons
    # NOTE: a direct-mapped cache of lookups that hit, keyed by (1 KB block of
    # the EA, PID, PID1, AS) and valid while no TLB entry has been written
    # since (tlb.wgen + tlb1.wgen): a repeat lookup costs one probe.
    cdef uint64_t tc_key[1024]
    cdef uint64_t tc_wgen[1024]
    cdef int32_t tc_idx[1024]
    cdef int32_t tc_owner[1024]

    cdef int hw_lookup(self, uint64_t ea, uint32_t pid, uint32_t pid1, uint32_t as_) noexcept nogil
    cdef uint64_t write_gen(self) noexcept nogil
    cdef int min_shift(self) noexcept nogil
    # NOTE: inline here, not only in the .pyx: this declaration decides, and without
    # it every access of run_virt and run_native called probe (its register saves
    # and restores cost about a third of the loops' time).
    cdef inline int probe(self, uint64_t key, uint64_t w, uint64_t ea, uint32_t pid, uint32_t pid1, uint32_t as_, int *owner) noexcept nogil
    cdef int hit_owner(self, int idx) noexcept nogil
    cdef void micro_flush_c(self) noexcept nogil
    cdef BookeTLB array_of(self, int idx)
    cdef void note_removal(self, BookeTLB t, int i, int writer, int reason) noexcept nogil
    cdef void hw_write(self, BookeTLB t, int i, uint64_t ea, int shift, int tid, int ts,
                       uint64_t rpn, uint32_t attr, int owner, int writer) noexcept nogil
    cdef int miss_cause(self, int owner, int ts, uint64_t ea) noexcept nogil
    cdef int micro_lookup(self, bint inst, uint64_t ea, uint32_t pid, uint32_t pid1,
                          uint32_t as_) noexcept nogil
    cdef void micro_fill(self, bint inst, int idx) noexcept nogil


@cython.final
cdef class Ctx:
    """A context that runs on a CPU: a vCPU (virtualized mode) or a host thread (native)."""
    cdef public int ctx, strategy, handler, hashed_walk, pfn_source, is_host, host_pid
    # the TID era (emu.codes.TID_SCHEME): how a fill tags its shadow
    cdef public int tid_scheme
    # hardware indices the strategy's entry loop writes (0..loop_len-1); the
    # modified flags below it are the ones it rewrites
    cdef public int loop_len
    cdef public BookeTLB gtlb, shadow, pcache
    cdef public int guest_pid, guest_pr, guest_as, shadow_pid, pid1
    # e500 shadow IDs: PID0 holds an ID destroyed when PID1's allocation ran
    # out (0: it holds a valid one); the ID the next fill of a process entry
    # allocates for it (kvmppc_e500_get_sid in write_stlbe)
    cdef public int sid_next
    # a 440 guest: a user-mode store through an entry without UW takes a Data
    # Storage interrupt, a user-mode fetch through one without UX an
    # Instruction Storage interrupt (its guest entries carry the permissions
    # it wrote)
    cdef public bint check_uw, check_ux
    cdef public object arrays
    cdef readonly object counters    # the Counters block (a numpy record)
    cdef Counters *n                 # the same block, seen from C
    cdef int64_t[::1] slot_base, slot_npages, pin, gref
    cdef int32_t[::1] hwref_gi, host_pt
    cdef int32_t[::1] shadow_pos     # KVM's victim counter of the shadow designs (one per machine)
    # e500 guest: [TLB1 pool victim, pool size (0: none), ESEL, set-indexed guest TLB search]
    cdef int32_t[::1] e500_map
    cdef uint8_t[::1] mod
    cdef int64_t[::1] repop_miss, repop_access
    cdef public int64_t guest_run, since_load, n_modified
    cdef readonly Stop stop
    cdef readonly Costs costs
    # the per-miss log (set_miss_log): the machine's rows and their count
    # [written], the row of the miss being handled (-1: none), and
    # the clock of the vCPU less its CPU's cycles (set by Python)
    cdef MissRecord *mlog
    cdef int64_t *mlog_n
    cdef int64_t mlog_cap, mlog_row
    cdef readonly object mlog_arr, mlog_n_arr
    cdef public int64_t log_clock

    cdef void record_exit_c(self, int cat, int64_t cycles) noexcept nogil
    cdef void charge(self, VirtCPU cpu, int step, int64_t cycles, int category) noexcept nogil
    cdef void count_step_c(self, int step, int64_t cycles) noexcept nogil
    cdef void miss_outcome(self, int outcome, bint close) noexcept nogil
    cdef void open_miss(self, VirtCPU cpu, uint64_t ea, int kind) noexcept nogil
    cdef void stop_in_handler(self, uint64_t ea, int kind, uint64_t gpa, int gi,
                              int64_t pending) noexcept nogil
    cdef int map_shadow_c(self, VirtCPU cpu, uint64_t ea, int gi, int64_t pfn) noexcept nogil
    cdef uint32_t shadow_attr(self, int gi) noexcept nogil
    cdef int e500_slot(self, VirtCPU cpu, uint64_t page, int gi) noexcept nogil
    cdef bint slot_holds_page(self, int gi) noexcept nogil
    cdef int64_t pfn_known(self, int gi, uint64_t gfn) noexcept nogil
    cdef void clear_modified_c(self) noexcept nogil
    cdef int64_t return_to_guest(self, VirtCPU cpu) noexcept nogil
    cdef int64_t entry_work(self, VirtCPU cpu) noexcept nogil

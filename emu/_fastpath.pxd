# C-level declarations of emu's fast path.
#
# The rest of the package never imports this module directly: it goes through
# emu.backend, which picks this extension or the pure-Python reference
# (emu/_reference.py) with the same semantics.

cimport cython
from libc.stdint cimport int32_t, int64_t, uint8_t, uint32_t, uint64_t

# Replacement policies (emu.hw.policy names -> codes).
cdef enum Policy:
    POLICY_FIFO = 0
    POLICY_LRU = 1
    POLICY_RANDOM = 2
    POLICY_ROUND_ROBIN = 3
    POLICY_NV = 4
    POLICY_NONE = 5          # software always chooses the index (guest TLB)


# A growable open-addressing set of uint64 keys (compulsory-miss tracking).
cdef struct KeySet:
    uint64_t *keys           # 0 = empty slot; stored keys are key + 1
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
    # LRU: the time of each slot's last use (see fstamp), and the number of
    # ways filled so far (slots fill lowest way first; a PlainTLB is never
    # invalidated, so the holes are exactly the ways >= nfill)
    cdef uint64_t[::1] stamp
    cdef int32_t[::1] nfill
    cdef uint64_t clock
    cdef uint64_t rng
    # vpn -> slot hash index (linear probing, backward-shift deletion)
    cdef uint64_t *hkey              # vpn + 1, 0 = empty
    cdef int32_t *hslot
    cdef uint64_t hmask
    cdef int hbits
    cdef KeySet seen
    # NOTE: the resident filter, a direct-mapped table indexed by vpn & fmask.
    # fvpn[i] == vpn implies vpn is in the TLB, in slot fslot[i]; a hit costs one
    # load and a compare.  Pages it does not hold go through the hash index.
    # Under LRU a hit stores its time in fstamp[i], next to the filter entry
    # (a store whose address needs no second load); a slot's last use is then
    # fstamp[i] while the filter holds its page, stamp[slot] once it does not.
    cdef uint64_t *fvpn
    cdef int32_t *fslot
    cdef uint64_t *fstamp
    cdef uint64_t fmask
    # LRU victims: per set, up to LRU_CANDIDATES slots oldest first, with the
    # time each had when listed (see lru_victim)
    cdef int32_t *cslot
    cdef uint64_t *ctime
    cdef int32_t *cnum
    cdef int32_t *cnext
    # counters
    cdef public uint64_t records, translations, hits, misses, compulsory

    cdef int set_of(self, uint64_t vpn) noexcept nogil
    cdef uint64_t home(self, uint64_t vpn) noexcept nogil
    cdef int find(self, uint64_t vpn) noexcept nogil
    cdef void hash_insert(self, uint64_t vpn, int slot) noexcept nogil
    cdef void hash_delete(self, uint64_t vpn) noexcept nogil
    cdef int choose_victim(self, int set_) noexcept nogil
    cdef int lru_victim(self, int set_) noexcept nogil
    cdef void translate(self, uint64_t vpn) noexcept nogil
    cdef void page(self, uint64_t vpn) noexcept nogil
    cdef int straddle(self, uint64_t a, uint64_t size) noexcept nogil
    cdef uint64_t last_use(self, int slot) noexcept nogil


@cython.final
cdef class BookeTLB:
    """One PowerPC Book E TLB array: 440 UTLB, e500 TLB0 or TLB1, a guest TLB."""
    cdef public int entries, sets, ways, hwater, policy
    cdef public object vpn_arr, shift_arr, tid_arr, ts_arr, valid_arr, rpn_arr
    cdef public object attr_arr, owner_arr, stamp_arr, ptr_arr, gen_arr
    cdef uint64_t[::1] vpn           # EPN >> page shift
    cdef uint8_t[::1] shift          # log2(page size)
    cdef uint8_t[::1] tid
    cdef uint8_t[::1] ts
    cdef uint8_t[::1] valid
    cdef uint64_t[::1] rpn           # real page base address (bytes)
    cdef uint32_t[::1] attr          # permissions and WIMGE
    cdef int32_t[::1] owner          # context that wrote the entry (-1: none)
    cdef uint64_t[::1] stamp
    cdef int32_t[::1] ptr
    cdef uint32_t[::1] gen           # bumped on every write/invalidate of a slot
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


# Cycle costs the fast path charges (filled from emu.costs by Ctx.set_costs).
cdef struct Costs:
    int64_t access, micro_refill, tlbwe, deliver
    int64_t asm_save, asm_walk_per_entry, asm_walk_hashed, asm_gpa, asm_memslot
    int64_t asm_pfn_lookup, asm_hw_write, asm_restore
    int64_t c_full_exit, c_walk_per_entry, c_walk_hashed, c_gpa, c_memslot
    int64_t c_pfn_lookup, c_hw_write, c_restore
    int64_t native_miss_handler, put_page
    int64_t entry_base, entry_per_mod


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
    cdef int probe(self, uint64_t key, uint64_t w, uint64_t ea, uint32_t pid, uint32_t pid1, uint32_t as_, int *owner) noexcept nogil
    cdef int hit_owner(self, int idx) noexcept nogil
    cdef void micro_flush_c(self) noexcept nogil
    cdef BookeTLB array_of(self, int idx)
    cdef void note_removal(self, BookeTLB t, int i, int writer, int reason) noexcept nogil
    cdef void hw_write(self, BookeTLB t, int i, uint64_t ea, int shift, int tid, int ts,
                       uint64_t rpn, int owner, int writer) noexcept nogil
    cdef int miss_cause(self, int owner, int ts, uint64_t ea) noexcept nogil
    cdef int micro_lookup(self, bint inst, uint64_t ea, uint32_t pid, uint32_t pid1,
                          uint32_t as_) noexcept nogil
    cdef void micro_fill(self, bint inst, int idx) noexcept nogil


@cython.final
cdef class Ctx:
    """A context that runs on a CPU: a vCPU (virtualized mode) or a host thread (native)."""
    cdef public int ctx, strategy, handler, hashed_walk, pfn_source, is_host, host_pid
    cdef public BookeTLB gtlb, shadow, pcache
    cdef public int guest_pid, guest_pr, guest_as, shadow_pid, pid1
    cdef public object arrays
    cdef int64_t[::1] slot_base, slot_npages, pin, gref
    cdef int32_t[::1] hwref_gi, host_pt
    cdef uint8_t[::1] mod
    cdef int64_t[::1] exits, exit_sumsq, tlbc, causes, profile, repop_miss, repop_access
    cdef public int64_t guest_run, since_load, n_modified, pending
    cdef public uint64_t stop_ea, stop_gpa
    cdef public int stop_gi, stop_kind
    cdef Costs costs

    cdef void record_exit_c(self, int cat, int64_t cycles) noexcept nogil
    cdef int map_shadow_c(self, VirtCPU cpu, uint64_t ea, int gi, int64_t pfn) noexcept nogil
    cdef int64_t pfn_known(self, int gi, uint64_t gfn) noexcept nogil
    cdef void clear_modified_c(self) noexcept nogil
    cdef int64_t return_to_guest(self, VirtCPU cpu) noexcept nogil
    cdef int64_t entry_work(self, VirtCPU cpu) noexcept nogil

"""Type stubs for emu's compiled fast path (emu/_fastpath.pyx).

The same classes, with the same semantics, are in emu/engine/reference/ (the
reference twin); the rest of the package reaches either through emu.engine.get.
"""

from typing import Optional

import numpy as np
import numpy.typing as npt

NO_PID: int
POLICIES: dict[str, int]
#: numpy dtypes of the C structs TLBEntry, ExitTiming, StepCount and Counters
ENTRY_DTYPE: np.dtype
EXIT_DTYPE: np.dtype
STEP_DTYPE: np.dtype
COUNTERS_DTYPE: np.dtype
MISS_DTYPE: np.dtype
#: the stream generator's layouts (emu/_streamgen.pxi): the names of sg_fill's
#: cfg and st entries in order, the access patterns and the record kinds by name
SG_CFG_FIELDS: tuple[str, ...]
SG_STATE_FIELDS: tuple[str, ...]
SG_PATTERNS: dict[str, int]
SG_KINDS: dict[str, int]

def rng_seed_state(seed: int) -> int: ...
def cause_key_py(owner: int, ts: int, ea: int) -> int: ...
def enum_values() -> dict[str, dict[str, int]]:
    """The C enums as compiled, by the name of their tuple in emu.codes."""
    ...
def vector_scan_available() -> bool: ...
def set_vector_scan(on: bool) -> bool: ...
def set_scalar_below(records: float) -> float: ...
def struct_dtype(fields: list, itemsize: int) -> np.dtype: ...
def tlb_perm_bits() -> tuple[int, int, int, int, int, int]:
    """(UX, UW, UR, SX, SW, SR) as the fast path knows them."""
    ...
def sg_fill(cfg: npt.NDArray[np.uint64], zthr: npt.NDArray[np.uint64],
            zalias: npt.NDArray[np.uint32], st: npt.NDArray[np.uint64],
            ea: npt.NDArray[np.uint32], kind: npt.NDArray[np.uint8], off: int, n: int,
            taddr: npt.NDArray[np.uint64], tkind: npt.NDArray[np.uint8]) -> int:
    """Write the next records of a stream into ea[off:off+n], kind[off:off+n];
    how many were written (fewer than n when a trace ran out)."""
    ...
def sg_alias_build(q: npt.NDArray[np.float64], thr: npt.NDArray[np.uint64],
                   alias: npt.NDArray[np.uint32]) -> None:
    """Vose's alias table of the weights q (scaled to mean 1) into thr and alias."""
    ...
def new_counters() -> tuple[np.ndarray, dict[str, npt.NDArray[np.int64]]]:
    """A zeroed Counters block (one record) and flat int64 views of its fields."""
    ...

class PlainTLB:
    entries: int
    sets: int
    ways: int
    hwater: int
    policy: int
    page_shift: int
    records: int
    translations: int
    hits: int
    misses: int
    compulsory: int
    vector_scans: int
    scalar_scans: int
    tag_arr: npt.NDArray[np.uint64]
    valid_arr: npt.NDArray[np.uint8]
    ptr_arr: npt.NDArray[np.int32]
    def __init__(self, entries: int, ways: int, policy: str = ..., page_shift: int = ...,
                 hwater: int = ..., seed: int = ...) -> None: ...
    def run(self, addr: npt.NDArray[np.uint64], kind: npt.NDArray[np.uint8],
            size: Optional[npt.NDArray[np.uint32]] = ..., kinds_mask: int = ...) -> int:
        """-1, or the index of the first invalid record (kind > 3 or size 0)."""
        ...
    def counters(self) -> dict[str, int]: ...
    def contents(self) -> list[int]: ...

class BookeTLB:
    entries: int
    sets: int
    ways: int
    hwater: int
    policy: int
    rng: int
    wgen: int
    entry_arr: np.ndarray
    vpn_arr: npt.NDArray[np.uint64]
    shift_arr: npt.NDArray[np.uint8]
    tid_arr: npt.NDArray[np.uint8]
    ts_arr: npt.NDArray[np.uint8]
    valid_arr: npt.NDArray[np.uint8]
    rpn_arr: npt.NDArray[np.uint64]
    attr_arr: npt.NDArray[np.uint32]
    owner_arr: npt.NDArray[np.int32]
    stamp_arr: npt.NDArray[np.uint64]
    ptr_arr: npt.NDArray[np.int32]
    gen_arr: npt.NDArray[np.uint32]
    def __init__(self, entries: int, ways: int = ..., policy: str = ..., hwater: int = ...,
                 set_shift: int = ..., seed: int = ...) -> None: ...
    def write(self, index: int, ea: int, shift: int, tid: int, ts: int, rpn: int = ...,
              attr: int = ..., owner: int = ...) -> None: ...
    def invalidate(self, index: int) -> None: ...
    def find(self, ea: int, pid: int, as_: int, pid1: int = ...) -> int: ...
    def choose_victim(self, ea: int = ...) -> int: ...
    def use(self, index: int) -> None: ...
    def invalidate_ea(self, ea: int, tid: int, ts: int) -> int: ...
    def invalidate_where(self, tid: int = ..., ts: int = ..., owner: int = ...) -> int: ...
    def invalidate_all(self) -> int: ...
    def read(self, index: int) -> tuple[int, int, int, int, int, int, int, int]: ...
    def valid_count(self) -> int: ...

class VirtCPU:
    tlb: BookeTLB
    tlb1: Optional[BookeTLB]
    e500: bool
    micro: bool
    cycles_arr: npt.NDArray[np.int64]
    ctx_host_arr: npt.NDArray[np.uint8]
    def __init__(self, tlb: BookeTLB, tlb1: Optional[BookeTLB], micro: bool,
                 cycles: npt.NDArray[np.int64], ctx_host: npt.NDArray[np.uint8]) -> None: ...
    def micro_flush(self) -> None: ...
    def lookup(self, ea: int, pid: int, as_: int, pid1: int = ...) -> int: ...
    def write(self, idx: int, ea: int, shift: int, tid: int, ts: int, rpn: int, owner: int,
              writer: int) -> None: ...
    def invalidate(self, idx: int, writer: int, reason: int = ...) -> None: ...
    def retire(self, idx: int, reason: int) -> None: ...
    def cause_of(self, owner: int, ts: int, ea: int) -> int: ...

class Ctx:
    ctx: int
    strategy: int
    #: the TID era (emu.codes.TID_SCHEME): how a fill tags its shadow
    tid_scheme: int
    #: hardware indices 0..loop_len-1 the entry loop writes
    loop_len: int
    handler: int
    hashed_walk: int
    pfn_source: int
    is_host: int
    host_pid: int
    gtlb: Optional[BookeTLB]
    shadow: Optional[BookeTLB]
    pcache: Optional[BookeTLB]
    guest_pid: int
    guest_pr: int
    guest_as: int
    shadow_pid: int
    pid1: int
    #: e500 shadow IDs: the ID the next fill of a process entry allocates for
    #: PID0, whose ID was destroyed (0: PID0 holds a valid one)
    sid_next: int
    #: whether a user-mode access checks the UX / UW permission of its entry
    check_uw: bool
    check_ux: bool
    arrays: dict
    counters: np.ndarray
    guest_run: int
    since_load: int
    n_modified: int
    #: the Stop struct: reason, ea, gpa, gi, kind, pending
    stop: dict[str, int]
    #: the Costs struct
    costs: dict[str, int]
    pending: int
    stop_ea: int
    stop_gpa: int
    stop_gi: int
    stop_kind: int
    #: the vCPU's clock less its CPU's cycles: a logged miss's time is this plus them
    log_clock: int
    mlog_arr: Optional[np.ndarray]
    mlog_n_arr: Optional[np.ndarray]
    def __init__(self, ctx: int, arrays: dict, gtlb: Optional[BookeTLB] = ...,
                 shadow: Optional[BookeTLB] = ..., pcache: Optional[BookeTLB] = ...,
                 strategy: int = ..., handler: int = ..., hashed_walk: int = ...,
                 pfn_source: int = ..., is_host: int = ..., host_pid: int = ...) -> None: ...
    def set_costs(self, c: dict) -> None: ...
    def record_exit(self, cat: int, cycles: int) -> None: ...
    def end_guest_run(self, exits: int = 1) -> None: ...
    def guest_entry(self, cpu: VirtCPU) -> int: ...
    def leave_handler(self, cpu: VirtCPU) -> int: ...
    def count_step(self, step: int, cycles: int) -> None: ...
    def set_miss_log(self, rows: np.ndarray, counts: npt.NDArray[np.int64]) -> None: ...
    def close_miss(self) -> None: ...
    def clear_modified(self) -> None: ...
    def map_shadow(self, cpu: VirtCPU, ea: int, gi: int, pfn: int) -> int: ...
    def searched_entries(self, gi: int) -> int:
        """Guest TLB entries a search reads to find entry gi (-1: not found)."""
        ...
    def shadow_attrib(self, gi: int) -> int:
        """The permissions a shadow of guest entry gi gets now."""
        ...
    def run_virt(self, cpu: VirtCPU, ea: npt.NDArray[np.uint32], kind: npt.NDArray[np.uint8],
                 pos: int, budget: int) -> tuple[int, int, int]: ...
    def run_native(self, cpu: VirtCPU, ea: npt.NDArray[np.uint32], kind: npt.NDArray[np.uint8],
                   pos: int, budget: int, category: int) -> tuple[int, int, int]: ...

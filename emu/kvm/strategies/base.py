"""What a KVM TLB strategy is: the hooks KVM calls, and their defaults (docs/design.md §4).

A strategy is one class that holds everything about one design: its hooks,
its memory accounting, the cores it can be modelled on (and the one-line
reason when it cannot), and the words the reports use for it.  One instance
serves every vCPU of a machine.

Hooks and who calls them (each returns the cycles it costs; the caller
charges them):

* ``entry_base`` / ``entry_per_mod`` -- per full guest entry, read once into
  the fast path's cost table (the fast path and the Python exits charge them);
* ``new_shadow_array`` -- when a vCPU is built: its shadow array, or None;
* ``vcpu_load`` / ``vcpu_put`` -- when the vCPU's thread is scheduled in /
  out of a CPU (charged to ``save_restore``);
* ``guest_pid_change`` -- the guest's ``mtspr PID`` trapped with a new PID
  (the C work it charges itself; the cycles it returns go to ``save_restore``);
* ``set_shadow_pids`` -- after vcpu_load, a guest privilege switch or a guest
  PID change: load the hardware PID(s);
* ``memory_bytes`` -- per-vCPU bytes of TLB state besides the guest TLB.

Every strategy must say how it keeps one vCPU's TS=1 entries from
translating another's accesses (docs/design.md §4, "Isolation"): its ``isolation``.
"""

from __future__ import annotations

from emu.codes import STRATEGY
from emu.kvm.shadow import release_process_entries

NO_PID = 0xFFFF

#: Why a design that lays entries into hardware indices of its choosing
#: cannot run on the e500 (formatted with the strategies that can).
CANNOT_CHOOSE_AN_INDEX = (
    "cannot be modelled on the e500: software cannot choose a TLB0 index (the set comes "
    "from the address and hardware picks the way), so a shadow array cannot be laid into "
    "hardware index by index (docs/kvm440.md §4.1); use {alternatives}")

#: Why an e500 design cannot run on another core (formatted with that core).
NEEDS_THE_E500 = "needs machine.core = 'e500' (machine.core is '{core}')"


class Strategy:
    """One KVM TLB design.  The defaults: no TLB work at entry, vcpu_load or
    vcpu_put, no shadow array, no memory; KVM-440's handling of a guest PID
    change and its shadow PIDs (every design but the e500 ones keeps them)."""

    #: The name a scenario gives (``kvm.strategy``).
    name = ""
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

    def __init__(self, costs, hwater: int):
        self.costs = costs
        self.hwater = hwater

    @property
    def code(self) -> int:
        """The design's number in the fast path (``emu.codes.STRATEGY``)."""
        return STRATEGY[self.name]

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
        """Called when ``vcpu``'s thread is scheduled out of ``cpu``; returns cycles."""
        return 0

    # -- the guest's MMU context ------------------------------------------------------

    def guest_pid_change(self, cpu, vcpu) -> int:
        """The guest wrote a new PID (``vcpu.ctx.guest_pid`` already holds it).

        Called inside the ``EMUL_MTSPR`` exit, before :meth:`set_shadow_pids`.
        Charges the C work itself and returns the cycles of TLB save/restore
        work.  Default, KVM-440 (kvmppc_set_pid): walk the 64 shadow slots and
        release every shadow of a guest entry with TID != 0 (reference §2.8).
        """
        cpu.charge("c_path", self.costs["emul_mtspr_pid"] * 64)
        release_process_entries(cpu, vcpu)
        return 0

    def set_shadow_pids(self, cpu, vcpu) -> int:
        """Load the hardware PID(s) for the guest's mode and PID; returns cycles."""
        # docs/kvm440.md §2.8: shadow PID 1 in guest supervisor mode, 0 in user mode
        vcpu.ctx.shadow_pid = 0 if vcpu.ctx.guest_pr else 1
        vcpu.ctx.pid1 = NO_PID
        return 0

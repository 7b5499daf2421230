"""Every cost in the model, in one table, with its default, unit and source.

The model charges simulated time in core cycles.  Each thing that costs time or
memory has one :class:`Cost` row in :data:`COSTS`: a name, an integer default, a
unit, a group (which part of the model charges it), a one-line description and
a ``source`` saying where the default comes from.

Conventions
-----------
- **Units.**  ``cycles`` (core cycles), ``cycles/entry`` (charged once per entry
  scanned, saved, written ...), ``cycles/page``, ``bytes`` (memory per entry or
  per page, as the description says), ``us`` (microseconds, for scheduler and
  device times) and ``MHz`` (the clock).  The guest kernel's footprint and its
  C-code traps are counts, not cycles: ``pages`` (pages touched), ``accesses``
  (memory accesses made) and ``traps`` (trapping instructions executed); they
  live in this one table so that reports print them with the rest.  Every
  default is an integer.
- **Sources.**  Every ``source`` begins with one of five things:

  ``docs/kvm440.md §N``
      the figure or the instruction count is in the reference file, which is
      followed by the underlying source (manual page, commit);
  ``docs/design.md §N``
      the figure is fixed by the design of record;
  ``Linux default:``
      a stock Linux setting (scheduler tunables, HZ) that the reference does
      not cover; general Linux knowledge, marked as such;
  ``estimate:``
      no published figure exists (the reference says NOT FOUND for every cycle
      cost of the 440: tlbwe, the miss handler, an exit, get_user_pages).  The
      text gives the reasoning: an instruction count along the code path (often
      taken from the reference), priced at CPI 1;
  ``fitted:``
      no figure exists either, and the default was fitted so that the model
      reproduces published effects (docs/calibration.md): the text says to
      what, how, with what residual, and the reasoning it started from.

- **How estimates are priced.**  The PPC440 is an in-order, dual-issue core with
  a 7-stage pipeline (docs/kvm440.md §1.1).  Counted instructions are
  charged at CPI 1 (dual issue pays for the occasional stall); every interrupt
  and every ``rfi``/``isync`` adds :data:`PIPELINE_REFILL` cycles; cold kernel
  paths add a few L1 misses.  ``tlbwe`` and ``tlbre`` are charged one cycle each
  (:data:`TLBWE_CYCLES`, :data:`TLBRE_CYCLES`), which keeps the reference's own
  instruction counts (e.g. ≈1,180 instructions per guest entry for the 2.6.26
  shadow TLB) equal to the cycles charged.  Treat the estimates as lower bounds
  of the right order, not as measurements.
- **Independence.**  Composite costs (e.g. ``asm_hw_write``, which contains three
  ``tlbwe``) are computed from the building blocks when this module is loaded,
  but once in a :class:`CostTable` every cost is independent: overriding
  ``tlbwe`` does not change ``asm_hw_write``.  Override both if you mean both.
- **Overrides.**  A scenario passes ``{name: value}`` to :class:`CostTable`;
  unknown names, negative numbers, non-integral floats, bools and strings are
  rejected with a :class:`~emu.errors.ConfigError` naming the cost.
  ``table.overrides`` holds only what was overridden.
- **Ranges.**  Every cost also has a plausible range ``low <= default <= high``
  (:attr:`Cost.low`, :attr:`Cost.high`), held by its :class:`Spread`: a kind
  and the reasoning.  The kinds, from the narrowest:

  ``exact``
      a struct layout or a figure fixed by the design: ``low == high``;
  ``hardware``
      a figure from a manual, or a choice among the boards that exist;
  ``setting``
      a kernel tunable: the values stock kernels ship with;
  ``counted``
      an instruction count along a code path, priced at CPI 1: by default
      x0.8 to x2 of the default (the count may be a fifth off; cold L1 lines
      and stalls can double the cycles);
  ``fitted``
      a default that calibration fitted to published effects: the range over
      which those effects still hold (written as absolute values);
  ``estimate``
      no published figure, no code path to count: by default x0.5 to x4.

  Relative spreads (the factors of ``counted`` and ``estimate``) move with
  the default, so a refitted default carries its range along; a new absolute
  range is one ``Spread`` to edit.  The table checks at import that every
  default lies inside its range.
- **Range overrides.**  ``CostTable(overrides, ranges={name: (low, high)})``,
  or a table value in the overrides (``{"exit_light": {"low": 150, "high":
  900}}``, with an optional ``"value"``; in a scenario file ``[costs]
  exit_light = {low = 150, high = 900}``), replaces either end; a range whose
  low exceeds its high is refused with a one-line
  :class:`~emu.errors.ConfigError`.  A value outside its range (an override
  of the value, or of the range) is allowed: the range is stretched to reach
  it, so ``low <= value <= high`` holds in every table
  (:attr:`CostTable.ranges`); but one table that gives the value and an end
  that leaves it out (``{value = 3, low = 5}``) is refused, as the end given
  would be dropped without a word.
- **Reports** print the table they used (:meth:`CostTable.rows`,
  :meth:`CostTable.listing`) and the JSON summary carries
  :meth:`CostTable.to_dict`, so every result says which costs produced it.

Example::

    >>> from emu.costs import COSTS_BY_NAME, CostTable, cycles_to_us
    >>> table = CostTable({"exit_light": 300})
    >>> table.exit_light, table["micro_tlb_refill"]
    (300, 3)
    >>> table.overrides
    {'exit_light': 300}
    >>> round(cycles_to_us(table.exit_light, table.clock_mhz), 3)
    0.45
    >>> COSTS_BY_NAME["exit_light"].low, COSTS_BY_NAME["exit_light"].high
    (102, 204)
    >>> CostTable({"exit_light": 2000}).ranges["exit_light"]  # stretched to the value
    (102, 2000)
    >>> CostTable(ranges={"exit_light": (900, 150)})
    Traceback (most recent call last):
    ...
    emu.errors.ConfigError: cost 'exit_light': range low 900 > high 150 (cycles)
    >>> CostTable({"exit_lite": 300})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    emu.errors.ConfigError: unknown cost 'exit_lite' (known: exit_light, ...)
"""

from __future__ import annotations

import difflib
import math
import numbers
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Union

from emu.errors import ConfigError

__all__ = [
    "Cost",
    "Spread",
    "SPREADS",
    "COSTS",
    "COSTS_BY_NAME",
    "GROUPS",
    "UNITS",
    "CostTable",
    "cost_named",
    "cycles_to_us",
    "us_to_cycles",
]


#: The kinds of range, from the narrowest (see the module docstring).
SPREADS = ("exact", "hardware", "setting", "counted", "fitted", "estimate")


@dataclass(frozen=True)
class Spread:
    """How far a cost may plausibly lie from its default, and why.

    A relative spread (the default) gives ``low`` and ``high`` as factors of
    the default, rounded to whole units; an absolute one gives the values.
    """

    kind: str  #: one of :data:`SPREADS`
    low: float  #: factor of the default, or the value when not ``relative``
    high: float
    why: str  #: one line: the reasoning behind the range
    relative: bool = True

    def bounds(self, default: int) -> tuple[int, int]:
        """``(low, high)`` in whole units for a cost whose default is ``default``."""
        if self.relative:
            return round(default * self.low), round(default * self.high)
        return int(self.low), int(self.high)


@dataclass(frozen=True)
class Cost:
    """One row of the cost table."""

    name: str  #: e.g. ``"exit_light"``; a Python identifier
    default: int  #: in ``unit``
    unit: str  #: one of :data:`UNITS`
    group: str  #: one of :data:`GROUPS`: which part of the model charges it
    description: str  #: one line: what it is
    source: str  #: citation, ``Linux default: ...`` or ``estimate: <reasoning>``
    spread: Spread  #: the plausible range around ``default`` and its reasoning

    @property
    def low(self) -> int:
        """The low end of the plausible range (``low <= default``)."""
        return self.spread.bounds(self.default)[0]

    @property
    def high(self) -> int:
        """The high end of the plausible range (``default <= high``)."""
        return self.spread.bounds(self.default)[1]


#: The units a cost may have.
UNITS = ("cycles", "cycles/entry", "cycles/page", "bytes", "us", "MHz", "pages", "accesses",
         "traps")

#: The groups, in the order the table lists them.
GROUPS = (
    "core",
    "hw",
    "host",
    "kvm",
    "asm_handler",
    "c_handler",
    "pfn",
    "strategy",
    "guest",
    "qemu",
)

# --------------------------------------------------------------------------
# Building blocks of the estimates (see the module docstring).
# --------------------------------------------------------------------------

#: Cycles to refill the 7-stage pipeline after an interrupt, rfi or isync
#: (estimate: one cycle per stage; docs/kvm440.md §1.1, PPC440x5 UM p.27).
PIPELINE_REFILL = 7
#: tlbwe and tlbre: one issue slot each (estimate; no latency is published).
TLBWE_CYCLES = 1
TLBRE_CYCLES = 1
#: Instructions on Linux's 44x D-TLB miss path, 3 tlbwe included: 60 in the
#: older handler, 55 in the newer one (docs/kvm440.md §1.6, our midpoint).
LINUX_44X_HANDLER_INSNS = 57
#: The same path without its three tlbwe.
LINUX_44X_HANDLER_NO_TLBWE = LINUX_44X_HANDLER_INSNS - 3
#: The guest's own miss path as KVM-440 runs it: the 60 instructions of the
#: older handler (head_44x.S @026477c1) less the 16 that trap (docs/kvm440.md
#: §1.6, §2.10; emu/guest/traps44x.py lists them).
LINUX_44X_GUEST_MISS_NATIVE = 60 - 16
#: The guest's DataStorage fast path (head_44x.S @026477c1: a user store
#: through an entry without UW): 49 instructions, 16 of which trap.
LINUX_44X_GUEST_DSI_NATIVE = 49 - 16

_EXIT_LIGHT = 8 + 28 + 25 + 60 + 55 + 4 * PIPELINE_REFILL
_ASM_SAVE = 6 + 3 + PIPELINE_REFILL
_C_FULL_EXIT = 8 + 32 + 16 + 25 + 30 + 2 * PIPELINE_REFILL

#: The effective CPI of KVM's exit path (s): the instruction counts of the exit,
#: emulation and C-handler costs below are multiplied by it.  Fitted jointly
#: with gfn_to_pfn to the guest boot-time gains published with 83aae4a8 (15 %)
#: and 49dd2c49 (30 %) on scenarios/boot_like.toml (docs/calibration.md).
EXIT_PATH_CPI = 1.0
#: The range of s over which those effects, 7924bd41's and the plausibility band
#: still hold (scanned by tools/calibrate.py --ranges: 0.25 to 1.0), cut at
#: 0.5: the 440 issues at most two instructions a cycle (docs/kvm440.md §1.1).
EXIT_PATH_CPI_RANGE = (0.5, 1.0)
_FIT = ("s fitted jointly with gfn_to_pfn to the guest boot-time gains of 83aae4a8 (15 %) "
        "and 49dd2c49 (30 %) on scenarios/boot_like.toml (tools/calibrate.py --fit, seed 1, "
        "k = 1, 400,000 accesses; it ends at CPI 1, the lower bound of its grid, where "
        "direct meets the top of the plausibility band; residuals: e1 = 17.0 %, "
        "e2 = 35.6 %; docs/calibration.md)")


def _fit(insns: int) -> int:
    """Cycles of an exit-path cost counted as ``insns`` instructions at CPI 1."""
    return round(insns * EXIT_PATH_CPI)


def _fitted_source(insns: int, count: str) -> str:
    return f"fitted: {insns} instructions x s = {EXIT_PATH_CPI}, {_FIT}; the count: {count}"


def _fitted_spread(insns: int) -> "Spread":
    lo, hi = EXIT_PATH_CPI_RANGE
    return Spread("fitted", round(insns * lo), round(insns * hi),
                  f"the instruction count x s for s = {lo} to {hi}, where the published "
                  "effects and the plausibility band hold (docs/calibration.md)",
                  relative=False)

_R = "docs/kvm440.md"

# --------------------------------------------------------------------------
# The ranges (see the module docstring).
# --------------------------------------------------------------------------

_COUNTED = ("an instruction count along a listed code path at CPI 1: the count may be a "
            "fifth off, and cold L1 lines and stalls can double the cycles")
_WRITTEN_OUT = ("a written-out instruction sequence at CPI 1: a fifth fewer if tighter code "
                "is found, twice as many cycles with stalls and cold L1 lines")
_ESTIMATE = ("no published figure and no code path to count: from half to four times "
             "the estimate")
_STRUCT = "a struct layout in the kernel source: exact"
_SMP_SCALED = ("the base value times 1 + log2(ncpus) for 1 to 8 CPUs (the kernel stops "
               "scaling at 8); general Linux knowledge")
_HZ_CHOICES = "CONFIG_HZ from 1000 to 100, the choices of kernel/Kconfig.hz; general Linux knowledge"


def _exact(why: str) -> Spread:
    return Spread("exact", 1, 1, why)


def _hardware(low: int, high: int, why: str) -> Spread:
    return Spread("hardware", low, high, why, relative=False)


def _setting(low: int, high: int, why: str) -> Spread:
    return Spread("setting", low, high, why, relative=False)


def _counted(why: str = _COUNTED, low: float = 0.8, high: float = 2.0) -> Spread:
    return Spread("counted", low, high, why)


def _estimate(why: str = _ESTIMATE, low: float = 0.5, high: float = 4.0) -> Spread:
    return Spread("estimate", low, high, why)


COSTS: tuple[Cost, ...] = (
    # ---------------------------------------------------------------- core
    Cost(
        "clock_mhz", 667, "MHz", "core",
        "core clock: converts cycles to microseconds in reports and scheduler times",
        f"{_R} §0, §3.1: the PPC440 core runs at up to 667 MHz (440SP datasheet p.9); "
        "440EPx Sequoia-class boards run at 667 or 533 MHz (u-boot list); the clock "
        "of the original KVM-440 measurements is UNCONFIRMED",
        _hardware(533, 667, f"the two clocks of 440EPx boards ({_R} §3.1); which one the KVM-440 "
            "measurements used is UNCONFIRMED; the scenario sets it (machine.clock_mhz)"),
    ),
    Cost(
        "access", 1, "cycles", "core",
        "cycles charged per memory access (instruction fetch or load/store) that hits in the TLB",
        "estimate: each access stands for one instruction; an in-order dual-issue "
        f"core ({_R} §1.1, PPC440x5 UM p.27) sustains about CPI 1 on L1 hits; "
        "caches are not modelled, so no miss penalty is added",
        Spread("estimate", 1, 2, "one issue slot at least; up to CPI 2 for an in-order dual-issue "
            "core that stalls (caches are not modelled)", relative=False),
    ),
    # ------------------------------------------------------------------ hw
    Cost(
        "micro_tlb_refill", 3, "cycles", "hw",
        "penalty when the 4-entry I or 8-entry D micro-TLB misses but the 64-entry UTLB hits",
        f"{_R} §1.1: 3 cycles (PPC440x5 UM p.152)",
        _hardware(3, 4, "the manual's 3 cycles; one more if the refill meets another stall"),
    ),
    Cost(
        "tlbwe", TLBWE_CYCLES, "cycles", "hw",
        "one tlbwe (writes one of the three words of a UTLB entry), as the host kernel's "
        "own miss handler runs it for a host task; the costs of KVM's handlers and designs "
        "(asm_hw_write, c_hw_write, shadow_restore_per_entry ...) hold their tlbwe in their "
        "own figures",
        f"estimate: no latency is published ({_R} §1.6, §3.2 NOT FOUND); tlbwe is not "
        "context-synchronizing (it does not even update the micro-TLBs; software must "
        f"isync before relying on it, {_R} §1.1, PPC440x5 UM p.152), so it is charged "
        "one issue slot at CPI 1, as in the instruction counts of the reference (§2.3)",
        Spread("estimate", 1, 8, "no latency is published: one issue slot at least, at most about "
            "one pipeline refill (7) more if the UTLB write holds the pipe", relative=False),
    ),
    Cost(
        "tlbre", TLBRE_CYCLES, "cycles", "hw",
        "one tlbre (reads one word of a UTLB entry; word 0 also loads MMUCR.STID)",
        f"estimate: no latency is published ({_R} §1.6, §3.2 NOT FOUND); no synchronization "
        f"is needed between tlbre and tlbwe ({_R} §1.3, PPC440x5 UM p.437), so it is "
        "charged one issue slot at CPI 1, as in the per-index counts of the reference (§2.3)",
        Spread("estimate", 1, 4, "no latency is published: one issue slot at least, up to a "
            "load-use delay of 3 more for the array read", relative=False),
    ),
    Cost(
        "tlbsx", 3, "cycles", "hw",
        "one tlbsx (associative search of the 64-entry UTLB for EA, STID, STS)",
        "estimate: no latency is published; the manual asks for 3-5 instructions between "
        f"tlbsx. and a branch on CR0 ({_R} §1.6, PPC440x5 UM p.570), read as a search "
        "result ready after about 3 cycles; the low end is charged because the gap "
        "can be filled with useful work",
        Spread("estimate", 1, 5, "the manual's 3-5 instructions between tlbsx. and the branch bound "
            "the search at 5 cycles; 1 when the gap is filled with useful work", relative=False),
    ),
    # ---------------------------------------------------------------- host
    Cost(
        "native_miss_handler", LINUX_44X_HANDLER_NO_TLBWE + 2 * PIPELINE_REFILL, "cycles", "host",
        "host's Linux 44x TLB miss handler (AS=0) without its 3 tlbwe: SPRG save, "
        "page-table walk, round-robin pick, restore, rfi",
        f"estimate: about 57 instructions counted in Linux's 44x D-TLB miss path ({_R} §1.6: "
        "60 in head_44x.S @026477c1, 55 in @6c3ac113, 3 tlbwe included) minus the 3 tlbwe "
        "(charged at tlbwe) = 54 at CPI 1, plus 2 x 7 cycles of pipeline refill after the "
        f"interrupt and the rfi ({_R} §1.1); the host PTE walk is folded in; its cycle "
        f"count is NOT FOUND ({_R} §3.2)",
        _counted(f"55-60 instructions counted in Linux's handler ({_R} §1.6); its "
            "page-table loads may miss L1"),
    ),
    Cost(
        "host_page_fault", 2500, "cycles", "host",
        "first touch of a host page (e.g. QEMU's guest RAM): C page-fault path plus "
        "allocating and clearing a 4 KB page",
        "estimate: about 1,500 instructions through do_page_fault, handle_mm_fault, "
        "anonymous page allocation, rmap/LRU and the PTE set-up at CPI 1, plus about "
        "1,000 cycles to clear 4 KB (128 dcbz of 32-byte lines, with write-back of the "
        f"dirty lines they evict); no PowerPC figure exists ({_R} §3.2)",
        _estimate(),
    ),
    Cost(
        "context_switch", 1500, "cycles", "host",
        "host context switch between two threads (schedule, switch_mm, __switch_to)",
        "estimate: about 1,200 instructions through schedule(), pick_next_task, "
        "context_switch and __switch_to at CPI 1, plus about 300 cycles of L1 misses on "
        "the incoming thread's state; switch_mm on 44x is mtspr PID + isync with no TLB "
        f"flush ({_R} §1.5), so no TLB work is included: the misses that follow are "
        "charged by the TLB model",
        _estimate(),
    ),
    Cost(
        "host_timer_handler", 1500, "cycles", "host",
        "host timer tick (decrementer interrupt: jiffies, scheduler_tick, timer softirq); "
        "added so the host tick can be charged",
        "estimate: about 1,200 instructions for timer_interrupt, update_process_times, "
        "scheduler_tick and the timer softirq at CPI 1, plus about 300 cycles of L1 "
        "misses on cold kernel data",
        _estimate(),
    ),
    Cost(
        "sched_min_granularity_us", 750, "us", "host",
        "CFS minimum time a host thread runs before a tick may pre-empt it",
        "Linux default: sysctl_sched_min_granularity = 0.75 ms (kernel/sched/fair.c base "
        "value, scaled by 1 + log2(ncpus) on SMP); general Linux knowledge, not in "
        f"{_R}",
        _setting(750, 3000, _SMP_SCALED),
    ),
    Cost(
        "sched_latency_us", 6000, "us", "host",
        "CFS target latency: the period in which every runnable host thread runs once",
        "Linux default: sysctl_sched_latency = 6 ms (kernel/sched/fair.c base value, "
        "scaled by 1 + log2(ncpus) on SMP); general Linux knowledge, not in "
        f"{_R}",
        _setting(6000, 24000, _SMP_SCALED),
    ),
    Cost(
        "sched_wakeup_granularity_us", 1000, "us", "host",
        "CFS wake-up granularity: how far a waking thread's vruntime must lead to pre-empt",
        "Linux default: sysctl_sched_wakeup_granularity = 1 ms (kernel/sched/fair.c base "
        "value, scaled by 1 + log2(ncpus) on SMP); general Linux knowledge, not in "
        f"{_R}",
        _setting(1000, 4000, _SMP_SCALED),
    ),
    Cost(
        "host_timer_period_us", 4000, "us", "host",
        "host scheduler tick period (HZ=250); added so the host tick can be modelled",
        "Linux default: CONFIG_HZ=250 is the default choice in kernel/Kconfig.hz, a 4 ms "
        f"tick; general Linux knowledge, not in {_R}",
        _setting(1000, 10000, _HZ_CHOICES),
    ),
    # ----------------------------------------------------------------- kvm
    Cost(
        "exit_light", _fit(_EXIT_LIGHT), "cycles", "kvm",
        "lightweight exit: guest interrupt into KVM, volatile save, C dispatch "
        "(kvmppc_handle_exit) and re-entry by rfi, excluding the exit's own work",
        _fitted_source(_EXIT_LIGHT, (
            "about 176 instructions counted along the path of "
            f"{_R} §2.3 (booke_interrupts.S @7924bd41): exit stub 8 (SPRG0/SPRG1, r5, r6, CTR, "
            "exit number), common save 28 (volatile GPRs, CR, LR, XER, PC, MSR), switch to the "
            "host 25 (stack, PID, IVPR, SPRG4-7), kvmppc_handle_exit dispatch 60 (C prologue, "
            "switch, irq enable, stats, resume checks), re-entry 55 (guest PID, IVPR, SPRG4-7, "
            "volatile registers, rfi), at CPI 1, plus 4 x 7 cycles of pipeline refill "
            f"(interrupt, two PID isyncs, rfi; {_R} §1.1); a lower bound: the cost of an "
            f"exit on 440 is NOT FOUND ({_R} §3.2)")),
        _fitted_spread(_EXIT_LIGHT),
    ),
    Cost(
        "exit_heavy_extra", _fit(1200), "cycles", "kvm",
        "extra cost of an exit to QEMU user space over a light exit: full non-volatile "
        "save/restore, return from ioctl(KVM_RUN) and the next entry",
        _fitted_source(1200, (
            "2 x 18 non-volatile GPRs saved and reloaded, about 40 instructions "
            f"({_R} §2.3: a heavyweight exit saves and restores the full non-volatile set); "
            "unwinding kvm_arch_vcpu_ioctl_run, the signal-mask swaps, the syscall exit to "
            "QEMU and the next ioctl(KVM_RUN) entry and dispatch, about 1,000 instructions; "
            "at CPI 1 plus about 160 cycles of L1 misses; QEMU's own work is the qemu group's; "
            f"not measured ({_R} §3.2)")),
        _fitted_spread(1200),
    ),
    Cost(
        "emulate_instruction", _fit(70), "cycles", "kvm",
        "decode and emulate one privileged guest instruction in C "
        "(kvmppc_emulate_instruction, EMULINST), excluding the exit",
        _fitted_source(70, (
            "about 70 instructions at CPI 1: take the saved last_inst, switch on the "
            "primary and extended opcode, move one GPR/SPR in the vcpu, advance the PC, count "
            f"the exit type ({_R} §2.7, §2.9: the EMUL_* categories); not measured "
            f"({_R} §3.2)")),
        _fitted_spread(70),
    ),
    Cost(
        "deliver_interrupt", _fit(60), "cycles", "kvm",
        "queue an interrupt to the guest (ISI, DSI, TLB miss, syscall, DEC) and deliver it "
        "at the next entry",
        _fitted_source(60, (
            "about 10 instructions to set the pending bit plus about 50 in "
            "kvmppc_core_deliver_interrupts (pick the highest-priority pending bit, write the "
            "guest's SRR0/SRR1, DEAR/ESR, MSR and the vector address IVPR|IVOR) at CPI 1; the "
            f"mechanism is {_R} §2.6 (booke.c @73e75b41); not measured")),
        _fitted_spread(60),
    ),
    Cost(
        "exit_timing_overhead", 50, "cycles", "kvm",
        "CONFIG_KVM_EXIT_TIMING per exit: two timebase reads and the per-type "
        "count/min/max/sum/sum-of-squares update",
        "estimate: the asm reads TBU/TBL/TBU (retry loop) on exit and again before rfi "
        f"({_R} §2.3, booke_interrupts.S @17c885eb), 2 x about 5 instructions; the C update "
        f"({_R} §2.9, timing.c @73e75b41) about 40 instructions of 64-bit arithmetic on a "
        "32-bit core; 50 at CPI 1. The only anchor, 30-40 ns per exit on POWER8 "
        f"({_R} §3.1), is for a ~3.5 GHz out-of-order core: not comparable",
        _estimate(),
    ),
    Cost(
        "emul_tlbwe", _fit(64 * 4 + 44), "cycles", "kvm",
        "KVM's emulation of one guest tlbwe word besides the exit and the decode "
        "(kvmppc_44x_emul_tlbwe incl. the 64-entry shadow_refs scan; an eager map is extra)",
        _fitted_source(64 * 4 + 44, (
            "the scan of all 64 shadow_refs for slots that point at the old guest "
            f"entry ({_R} §2.7, 44x_tlb.c @67577927) at about 4 instructions per ref = 256, "
            "plus about 44 for the index check, storing the word, the TID from the emulated "
            "MMUCR and tlbe_is_host_safe, at CPI 1")),
        _fitted_spread(64 * 4 + 44),
    ),
    Cost(
        "emul_tlbsx", _fit(30), "cycles", "kvm",
        "KVM's emulation of a guest tlbsx besides the exit, the decode and the guest-TLB "
        "search (charged per entry at c_walk_per_entry): set RT and CR0[EQ]",
        _fitted_source(30, (
            "about 30 instructions at CPI 1: read the emulated MMUCR.STS/STID, call "
            f"the search, write RT and CR0 ({_R} §2.7, 44x_tlb.c @67577927)")),
        _fitted_spread(30),
    ),
    Cost(
        "set_pid_per_slot", 5, "cycles/entry", "kvm",
        "kvmppc_set_pid on a guest PID change (tid01 era), per shadow slot scanned for "
        "release (each release is charged at put_page)",
        "estimate: load the slot's tid, compare, branch, loop: about 5 instructions per "
        f"slot at CPI 1, over all 64 slots ({_R} §2.8; 44x_tlb.c 2.6.28 and @7924bd41 loop "
        "over ARRAY_SIZE(shadow_tlb) / ARRAY_SIZE(shadow_refs))",
        _counted(),
    ),
    Cost(
        "priv_switch_per_entry", 6, "cycles/entry", "kvm",
        "kvmppc_mmu_priv_switch of the guest-tid era (and swap-pid's armed flush), per "
        "shadow slot 0..hwater: release it, clear word 0, set its modified flag (each "
        "release of a valid slot is charged at put_page)",
        "estimate: about 6 instructions per slot at CPI 1 for the loop body: the release "
        "call's valid test, the store of word 0, the flag store and the loop (44x_tlb.c "
        "@83aae4a8, @49dd2c49: for (i = 0; i <= tlb_44x_hwater; i++))",
        _counted(),
    ),
    Cost(
        "mmap_sem_write", 40, "cycles", "kvm",
        "down_write/up_write of current->mm->mmap_sem around the privilege-switch flush "
        "and around kvmppc_mmu_invalidate's loop at a guest tlbwe (2.6.26, 83aae4a8, "
        "49dd2c49; 0bd595fc dropped it)",
        "estimate: two uncontended rw-semaphore calls with their atomic lwarx/stwcx. "
        "updates, about 20 instructions each at CPI 1",
        _estimate(),
    ),
    Cost(
        "guest_tlb_entry_bytes", 16, "bytes", "kvm",
        "memory per guest TLB entry as KVM stores it (guest_tlb[64] per vCPU)",
        f"{_R} §1.2, §2.2: struct tlbe = {{tid, word0, word1, word2}}, 4 x u32 = 16 bytes "
        "(include/asm-powerpc/kvm_host.h @7022b15e; kvm_44x.h @7924bd41)",
        _exact(_STRUCT),
    ),
    # --------------------------------------------------------- asm_handler
    Cost(
        "asm_save", _ASM_SAVE, "cycles", "asm_handler",
        "asm handler entry: take the interrupt, park r10-r13 and CR in SPRGs, load the vcpu "
        "pointer, the faulting EA and the guest PID/AS",
        "estimate: 6 instructions to save r10-r13 and CR into SPRGs as in Linux's 44x "
        f"handler ({_R} §1.6, head_44x.S @026477c1), plus about 3 to load the vcpu pointer "
        "(SPRG1), DEAR/SRR0 and the guest PID/MSR[DS], at CPI 1, plus 7 cycles of pipeline "
        f"refill after the interrupt ({_R} §1.1, PPC440x5 UM p.27)",
        _counted(_WRITTEN_OUT),
    ),
    Cost(
        "asm_walk_per_entry", 8, "cycles/entry", "asm_handler",
        "asm linear scan of the 64-entry guest TLB, per entry scanned",
        "estimate: about 8 instructions per entry at CPI 1: load word 0, test V and TS, "
        "load the page-size mask, mask and compare the EPN, load and test the TID (0 or the "
        f"guest PID), loop; the same linear search KVM does in C ({_R} §2.6)",
        _counted(_WRITTEN_OUT),
    ),
    Cost(
        "asm_walk_hashed", 24, "cycles", "asm_handler",
        "asm hashed guest-TLB lookup (one probe per page-size class) instead of the linear scan",
        "estimate: 2 probes (4 KB pages and the guest kernel's large pages) x about 12 "
        "instructions (hash the EPN, load the bucket, compare as in the linear scan) at "
        f"CPI 1; KVM itself only had the linear loop, with a TODO to replace it ({_R} §2.6)",
        _estimate(),
    ),
    Cost(
        "asm_gpa", 6, "cycles", "asm_handler",
        "asm: guest physical address from the matching guest entry (RPN/ERPN merged with the "
        "EA offset for its page size)",
        "estimate: about 6 instructions at CPI 1: load word 1, mask by the page size, merge "
        f"the offset, take the ERPN; entry format {_R} §1.2 (PPC440x5 UM p.136)",
        _counted(_WRITTEN_OUT),
    ),
    Cost(
        "asm_memslot", 8, "cycles", "asm_handler",
        "asm kvm_is_visible_gfn: compare the gfn against the guest-RAM memslot bounds",
        "estimate: about 8 instructions at CPI 1: shift to a gfn, load base_gfn and npages, "
        "two compares and a branch (about 4 more per extra slot); the check is step 3.2 of "
        f"docs/design.md §1 (kvm_is_visible_gfn, {_R} §2.6)",
        _counted(_WRITTEN_OUT),
    ),
    Cost(
        "asm_pfn_lookup", 8, "cycles", "asm_handler",
        "asm pfn source lookup: one pfn-cache probe or one pin-all table load",
        "estimate: about 8 instructions at CPI 1: index by gfn (hash, or subtract base_gfn), "
        "load the tag or entry, compare, load the pfn, branch on a miss; the pin-all table "
        "holds 8 bytes per page (docs/design.md §4)",
        _counted(_WRITTEN_OUT),
    ),
    Cost(
        "asm_hw_write", 22 + 3 * TLBWE_CYCLES, "cycles", "asm_handler",
        "asm hardware write: round-robin index pick and update, build the three words, "
        "MMUCR.STID, 3 x tlbwe, record the shadow_ref",
        "estimate: about 6 instructions for the round robin (load tlb_44x_index, increment, "
        f"compare with hwater as a patched immediate, wrap, store; {_R} §1.5, §2.5), about "
        f"10 to build the words (TS=1, 4 KB, RPN/ERPN, permissions; {_R} §2.5), 2 for "
        "MMUCR.STID, about 4 to record the shadow_ref, at CPI 1, plus 3 x tlbwe",
        _counted(_WRITTEN_OUT),
    ),
    Cost(
        "asm_restore", 6 + 1 + PIPELINE_REFILL, "cycles", "asm_handler",
        "asm handler exit: restore r10-r13 and CR from the SPRGs and rfi back to the guest",
        f"estimate: 6 instructions mirroring the save ({_R} §1.6) plus the rfi, at CPI 1, "
        f"plus 7 cycles of pipeline refill after the rfi ({_R} §1.1)",
        _counted(_WRITTEN_OUT),
    ),
    # ----------------------------------------------------------- c_handler
    Cost(
        "c_full_exit", _fit(_C_FULL_EXIT), "cycles", "c_handler",
        "c handler entry: full exit into KVM's C code (all 32 GPRs, the SPRs, host stack, "
        "PID, IVPR, the C ABI)",
        _fitted_source(_C_FULL_EXIT, (
            "exit stub 8, 32 GPR stores, about 16 for CR/LR/XER/CTR/SRR0/SRR1/DEAR/ESR, "
            f"about 25 for the host stack, PID, IVPR and SPRG4-7 ({_R} §2.3, booke_interrupts.S "
            "@7924bd41), about 30 of C prologue and dispatch, at CPI 1, plus 2 x 7 cycles of "
            f"pipeline refill (interrupt, PID isync; {_R} §1.1)")),
        _fitted_spread(_C_FULL_EXIT),
    ),
    Cost(
        "c_walk_per_entry", 12, "cycles/entry", "c_handler",
        "C linear scan of the guest TLB (kvmppc_44x_tlb_index), per entry scanned; also "
        "the search of an emulated tlbsx",
        "estimate: about 12 compiled instructions per entry at CPI 1: the entry's start and "
        "end from word 0 and its size, a range compare, TID and TS compares, the valid test, "
        f"loop ({_R} §2.6: a linear search over 64 entries)",
        _counted(),
    ),
    Cost(
        "c_walk_hashed", 35, "cycles", "c_handler",
        "C hashed guest-TLB lookup (one probe per page-size class)",
        "estimate: 2 probes x about 16 compiled instructions plus a call, at CPI 1; KVM "
        f"itself only had the linear loop ({_R} §2.6)",
        _estimate(),
    ),
    Cost(
        "c_gpa", 10, "cycles", "c_handler",
        "C: guest physical address from the matching guest entry (tlb_xlate)",
        "estimate: about 10 instructions at CPI 1: a call, the page-size mask and the "
        f"merge of the offset (entry format {_R} §1.2)",
        _counted(),
    ),
    Cost(
        "c_memslot", 25, "cycles", "c_handler",
        "C kvm_is_visible_gfn: find the memslot that holds the gfn",
        "estimate: about 25 instructions at CPI 1: two calls, a loop over the (1-2) "
        f"memslots comparing base_gfn and npages, a flags test ({_R} §2.6)",
        _counted(),
    ),
    Cost(
        "c_pfn_lookup", 15, "cycles", "c_handler",
        "C pfn source lookup (pfn-cache probe or pin-all table load); gfn_to_pfn for the "
        "gup source is charged separately",
        "estimate: the 8 instructions of asm_pfn_lookup plus about 7 for the call and "
        "the C ABI, at CPI 1",
        _counted(),
    ),
    Cost(
        "c_hw_write", 45 + 3 * TLBWE_CYCLES, "cycles", "c_handler",
        "kvmppc_mmu_map without gfn_to_page: release the victim slot, round robin with "
        "interrupts off, build the entry, MMUCR + 3 x tlbwe, record the shadow_ref",
        "estimate: about 45 instructions at CPI 1 (victim release test, local_irq_disable/"
        f"enable around tlb_44x_index, entry construction; {_R} §2.5, 44x_tlb.c @7924bd41) "
        "plus 3 x tlbwe; the old reference's put_page is charged separately",
        _counted(),
    ),
    Cost(
        "c_restore", _fit(25 + 25 + 32 + 16 + 1 + 2 * PIPELINE_REFILL), "cycles", "c_handler",
        "c handler exit: return from C, restore all GPRs and SPRs, guest PID/IVPR/SPRG4-7, rfi",
        _fitted_source(25 + 25 + 32 + 16 + 1 + 2 * PIPELINE_REFILL, (
            "about 25 of C epilogue and resume checks, about 25 to switch back to the "
            "guest PID, IVPR and SPRG4-7, 32 GPR loads, about 16 SPR restores, the rfi, at CPI 1, "
            f"plus 2 x 7 cycles of pipeline refill (PID isync, rfi; {_R} §1.1, §2.3)")),
        _fitted_spread(25 + 25 + 32 + 16 + 1 + 2 * PIPELINE_REFILL),
    ),
    # ----------------------------------------------------------------- pfn
    Cost(
        "gfn_to_pfn", 2400, "cycles", "pfn",
        "gfn_to_pfn on a present host page: memslot to hva, mmap_sem, get_user_pages, "
        "get_page (a host page fault is charged separately)",
        "fitted: jointly with s, the effective CPI of KVM's exit path (EXIT_PATH_CPI = "
        f"{EXIT_PATH_CPI}), to the guest boot-time gains of 83aae4a8 (15 %) and 49dd2c49 "
        "(30 %) on scenarios/boot_like.toml (tools/calibrate.py --fit, seed 1, k = 1, "
        "400,000 accesses; residuals at s = 1: e1 = 17.0 %, e2 = 35.6 %; "
        "docs/calibration.md): the guest-tid era's refills after every privilege switch "
        "each pay one, so e2 rests on it; about 4 x the first estimate, which was about 500 "
        "instructions along gfn_to_hva, "
        "down_read(mmap_sem), find_vma, get_user_pages/follow_page, get_page and up_read "
        f"at CPI 1 plus about 5 L1 misses x 20 cycles; NOT FOUND on PowerPC ({_R} §3.2); "
        f"the x86 hugetlb anchor of 3-21 ns per 4 KB subpage ({_R} §3.1) is not comparable",
        Spread("fitted", 600, 2400, "where the published effects and the plausibility band "
               "hold with s at its fit, scanned by tools/calibrate.py --ranges: 600..2,400 "
               "at 400,000 and at 1,000,000 accesses (docs/calibration.md)", relative=False),
    ),
    Cost(
        "deferred_c_path", _fit(_C_FULL_EXIT - _ASM_SAVE + 6), "cycles", "pfn",
        "leaving the asm handler for the C path when the pfn is unknown: the full exit minus "
        "what asm_save already did (the way back is c_restore)",
        _fitted_source(_C_FULL_EXIT - _ASM_SAVE + 6, (
            "c_full_exit minus asm_save plus 6 instructions to take r10-r13 and CR "
            f"back out of the SPRGs ({_R} §1.6, §2.3)")),
        _fitted_spread(_C_FULL_EXIT - _ASM_SAVE + 6),
    ),
    Cost(
        "pin_page", 145, "cycles/page", "pfn",
        "pin one page at memslot registration (pin-all), excluding the host page fault "
        "of a first touch",
        "estimate: per page of a batched get_user_pages loop, about 40 instructions for the "
        "follow_page walk, 10 for get_page, 30 of loop and vma checks, 5 to store the pfn "
        "in the table, at CPI 1, plus about 3 L1 misses x 20 cycles. The x86 hugetlb anchor "
        f"of 3-21 ns per 4 KB subpage ({_R} §3.1) skips the per-4 KB PTE walk that 4 KB "
        "pages need: not comparable",
        _estimate(),
    ),
    Cost(
        "pfn_table_entry_bytes", 8, "bytes", "pfn",
        "pin-all: memory per guest page in the gfn-to-pfn table",
        "docs/design.md §4: pin-all keeps an 8-byte-per-page table (room for the pfn of a "
        f"36-bit real address, {_R} §0, §1.2, plus flags)",
        _exact("fixed by the design (docs/design.md §4)"),
    ),
    Cost(
        "pfn_cache_entry_bytes", 16, "bytes", "pfn",
        "pfn-cache: memory per cache entry",
        "estimate: gfn tag 4 + pfn 4 + struct page * 4 (to put_page on eviction) + "
        "replacement state/link 4 = 16 bytes on ppc32",
        Spread("estimate", 12, 32, "12 bytes without replacement state, 32 with a "
            "list link and padding", relative=False),
    ),
    Cost(
        "pfn_cache_insert", 30, "cycles", "pfn",
        "pfn-cache: insert a gotten pfn (pick the victim by the cache's policy, write "
        "tag/pfn/page, update the policy state)",
        "estimate: about 30 instructions in C at CPI 1; the victim's put_page is charged "
        "separately",
        _estimate(),
    ),
    Cost(
        "put_page", 40, "cycles", "pfn",
        "drop one host page reference (kvm_release_page_clean/dirty)",
        "estimate: about 40 instructions at CPI 1: a call, SetPageDirty for a writeable "
        "mapping, atomic decrement by lwarx/stwcx., the zero test (the page is not freed: "
        "QEMU still maps it); references are dropped when a slot is reused or invalidated "
        f"({_R} §2.5, 44x_tlb.c @7924bd41)",
        _estimate(),
    ),
    # ------------------------------------------------------------ strategy
    Cost(
        "shadow_restore_per_entry", 13 + 3 * TLBRE_CYCLES + 3 * TLBWE_CYCLES, "cycles/entry",
        "strategy",
        "shadow (v1): per index 0..hwater-1 on every guest entry, 3 tlbre of the host entry "
        "and 3 tlbwe of the shadow entry",
        f"{_R} §2.3 (our count in booke_interrupts.S @bbf45ba5): 3 tlbre + 3 tlbwe + about "
        "13 other = 19 instructions per index, x 62 indices = about 1,180 instructions per "
        "guest entry; charged at CPI 1 with tlbre and tlbwe at their 1-cycle estimates",
        _counted(f"our count, 19 instructions per index ({_R} §2.3); the high end "
            "also covers its six TLB instructions at 3 cycles each"),
    ),
    Cost(
        "shadow_mod_scan_per_entry", 5, "cycles/entry", "strategy",
        "shadow-modified: per index 0..hwater-1 on every guest entry, test its modified flag",
        f"{_R} §0, §2.3 (our count in booke_interrupts.S @83aae4a8): lbzx; cmpwi; beq; "
        "addi; bdnz = 5 instructions per index, at CPI 1; the loop runs hwater times "
        "(mtctr hwater)",
        _counted(),
    ),
    Cost(
        "shadow_mod_clear", 36, "cycles", "strategy",
        "shadow-modified: clear the 64-byte modified-flag array on every guest entry",
        f"{_R} §2.3 (our count in lightweight_exit, booke_interrupts.S @83aae4a8): li; "
        "mtctr; addi; li, then 16 x (stwu; bdnz) = 36 instructions at CPI 1",
        _counted(),
    ),
    Cost(
        "shadow_mod_write_per_entry", 7 + 3 * TLBWE_CYCLES, "cycles/entry", "strategy",
        "shadow-modified: per modified index below hwater, rewrite the shadow entry (3 tlbwe)",
        f"{_R} §2.3 (our count in lightweight_exit, booke_interrupts.S @83aae4a8): mulli; "
        "add; lwz; mtspr MMUCR; lwz; tlbwe; lwz; tlbwe; lwz; tlbwe = 10 instructions, the "
        "7 others at CPI 1 and the 3 tlbwe at tlbwe",
        _counted(),
    ),
    Cost(
        "shadow_entry_bytes", 16, "bytes", "strategy",
        "memory per shadow TLB entry (shadow_tlb[64], and host_tlb[64] in v1)",
        f"{_R} §1.2, §2.2: struct tlbe, 4 x u32 = 16 bytes (include/asm-powerpc/kvm_host.h "
        "@7022b15e)",
        _exact(_STRUCT),
    ),
    Cost(
        "shadow_ref_bytes", 8, "bytes", "strategy",
        "memory per shadow_ref of the direct strategies (shadow_refs[64])",
        f"{_R} §2.2: {{struct page *page; u16 gtlb_index; u8 writeable; u8 tid}} = 8 bytes "
        "on ppc32 (arch/powerpc/include/asm/kvm_44x.h @7924bd41)",
        _exact(_STRUCT),
    ),
    Cost(
        "shadow_page_ptr_bytes", 4, "bytes", "strategy",
        "memory per shadow page pointer (shadow_pages[64])",
        f"{_R} §2.2: struct page * on ppc32 (include/asm-powerpc/kvm_host.h @7022b15e)",
        _exact(_STRUCT),
    ),
    Cost(
        "shadow_mod_flag_bytes", 1, "bytes", "strategy",
        "memory per modified flag (shadow_tlb_mod[64])",
        f"{_R} §2.2: one byte per entry (44x_tlb.c @83aae4a8)",
        _exact(_STRUCT),
    ),
    Cost(
        "save_on_put_per_entry", 9 + 3 * TLBRE_CYCLES, "cycles/entry", "strategy",
        "direct-save-on-switch at vcpu_put: per index 0..hwater whose modified flag was "
        "ever set (67577927 never clears them), 3 tlbre into the saved copy "
        "(kvmppc_44x_tlb_put)",
        "estimate: 3 tlbre plus about 9 instructions (MMUCR read for the TID, 4 stores into "
        f"shadow_tlb, the flag test, loop) at CPI 1; mechanism {_R} §2.2 (44x_tlb.c @67577927)",
        _counted(),
    ),
    Cost(
        "invalidate_per_entry", 4 + TLBWE_CYCLES, "cycles/entry", "strategy",
        "invalidate one hardware index: tlbwe of word 0 with the index value (V=0), plus "
        "its test and loop",
        "estimate: 1 tlbwe plus about 4 instructions (load the saved word 0, test V and TS, "
        f"branch, loop) at CPI 1; the idiom is {_R} §1.3 (kvmppc_44x_tlbie, 44x_tlb.c "
        "@7924bd41), used at vcpu_put in §2.2",
        _counted(),
    ),
    Cost(
        "put_scan_per_entry", 4, "cycles/entry", "strategy",
        "direct-save-on-switch at vcpu_put: per index 0..hwater, test its modified flag "
        "and the saved entry's V and TS (kvmppc_44x_tlb_put), besides any tlbre or tlbie",
        f"{_R} §2.10 (our count in kvmppc_44x_tlb_put, 44x_tlb.c @67577927): load the flag, "
        "branch, test V|TS of the saved word 0, loop = about 4 instructions at CPI 1",
        _counted(),
    ),
    Cost(
        "tlbia_per_entry", 3 + TLBWE_CYCLES, "cycles/entry", "strategy",
        "_tlbia() at vcpu_put (direct, shadow-modified): per index 0..hwater, tlbwe of "
        "word 0 = the index (V clear) and the loop",
        f"{_R} §2.10 (our count in Linux 44x _tlbia, misc_32.S of 2008; the same loop is "
        "_tlbil_all in tlb_nohash_low.S @1afc149d): tlbwe; addi; cmpw; ble = 3 instructions "
        "at CPI 1 and the tlbwe at tlbwe",
        _counted(),
    ),
    Cost(
        "tlbia_base", 6 + PIPELINE_REFILL, "cycles", "strategy",
        "_tlbia() at vcpu_put: the fixed part besides the per-index loop",
        f"{_R} §2.10 (our count in Linux 44x _tlbia, tlb_nohash_low.S @1afc149d): li; sync; "
        "lis; lwz; isync; blr = 6 instructions at CPI 1 plus one pipeline refill for the isync",
        _counted(),
    ),
    Cost(
        "load_on_load_per_entry", 8 + 3 * TLBWE_CYCLES, "cycles/entry", "strategy",
        "direct-save-on-switch at vcpu_load: per saved valid TS=1 entry, 3 tlbwe "
        "(kvmppc_44x_tlb_load)",
        "estimate: 3 tlbwe plus about 8 instructions (load the four saved words, test "
        f"valid and TS, MMUCR.STID, loop) at CPI 1; mechanism {_R} §2.2 (44x_tlb.c @67577927)",
        _counted(),
    ),
    Cost(
        "vcpu_load", 100, "cycles", "strategy",
        "vcpu_load base cost besides any TLB work (preempt notifier, kvm_arch_vcpu_load, "
        "the core hook)",
        "estimate: about 100 instructions at CPI 1 for the notifier call chain and the "
        f"per-vCPU state; the hook is {_R} §2.2 (44x.c @04421fe2)",
        _estimate(),
    ),
    Cost(
        "vcpu_put", 100, "cycles", "strategy",
        "vcpu_put base cost besides any TLB work (preempt notifier, kvm_arch_vcpu_put, "
        "the core hook)",
        "estimate: about 100 instructions at CPI 1, symmetric with vcpu_load; the hook is "
        f"{_R} §2.2 (44x.c @04421fe2)",
        _estimate(),
    ),
    Cost(
        "e500_flush", 40, "cycles", "strategy",
        "e500: flash-invalidate TLB0 and TLB1 through MMUCSR0 (IPROT entries survive), "
        "with the poll and isync",
        "estimate: one mtspr MMUCSR0 with the TLB0/TLB1 invalidate bits "
        f"({_R} §4.1, e500 RM p.2-36) and a poll until they clear, about 10 instructions, "
        "plus about 23 cycles of hardware invalidate and poll, plus 7 of pipeline refill "
        "for the isync",
        _estimate(),
    ),
    Cost(
        "e500_tlb1_reload_per_entry", 13 + PIPELINE_REFILL, "cycles/entry", "strategy",
        "e500: per valid shadow TLB1 entry written back at vcpu_load (early KVM e500)",
        "estimate: load the saved MAS values, 5 mtspr MAS0-MAS3/MAS7, tlbwe, loop: about "
        f"13 instructions at CPI 1 plus 7 of pipeline refill for the isync; mechanism {_R} "
        "§4.2 (e500_tlb.c @46f43c6e)",
        _counted(),
    ),
    Cost(
        "e500_sid_alloc", 40, "cycles", "strategy",
        "e500 shadow IDs: allocate a per-CPU shadow ID for (AS, guest TID, PR) "
        "(kvmppc_e500_get_sid)",
        "estimate: about 40 instructions at CPI 1: look up vcpu_id_table, check it against "
        f"pcpu_id_table, take the next ID, update both tables ({_R} §4.2, e500_tlb.c @0164c0f0)",
        _estimate(),
    ),
    Cost(
        "e500_sid_flush", 280, "cycles", "strategy",
        "e500 shadow IDs: when the 255 IDs run out, reset the per-CPU ID table "
        "(local_sid_destroy_all; the flash invalidate is e500_flush)",
        "estimate: the memset of pcpu_id_table's 256 entries at about one store per cycle, "
        "plus loop overhead; the vCPUs' tables are left as they are, their stale IDs caught "
        f"by local_sid_lookup's cross-check ({_R} §4.2, e500_tlb.c @0164c0f0)",
        _counted(f"the table sizes are known ({_R} §4.2); the stores per cycle are not"),
    ),
    Cost(
        "e500_tlbre_per_entry", 12, "cycles/entry", "strategy",
        "e500: read back one TLB0 (set, way) for a shadow save (select by MAS0/MAS2, tlbre, "
        "read MAS1-MAS3/MAS7, store)",
        "estimate: about 12 instructions at CPI 1 with tlbre at 1 cycle; a full TLB0 save "
        f"reads 512 (set, way) on e500v2 ({_R} §4.1, inference), about 6,100 cycles",
        _counted(),
    ),
    # --------------------------------------------------------------- guest
    Cost(
        "guest_miss_handler", LINUX_44X_GUEST_MISS_NATIVE, "cycles", "guest",
        "guest's own Linux 44x TLB miss handler (DataTLBError / InstructionTLBError and "
        "finish_tlb_load): the instructions that run natively, its page-table and index "
        "accesses included (its 16 trapping instructions are exits)",
        "estimate: the D-TLB path of head_44x.S @026477c1 for a user address is 60 "
        f"instructions (our count, {_R} §1.6), 16 of which trap under KVM-440 ({_R} §2.10: "
        "5 mtspr SPRG, mfspr DEAR, SPRG3, MMUCR, PID, mtspr MMUCR, 3 tlbwe, mfspr SPRG1, "
        "SPRG0, rfi); the 44 others run natively at CPI 1; the delivery and the trapping "
        "instructions are KVM's to charge (exits); its cycle count is NOT FOUND "
        f"({_R} §3.2)",
        _counted(f"60 instructions counted in head_44x.S @026477c1 ({_R} §1.6); its "
            "page-table loads may miss L1"),
    ),
    Cost(
        "guest_dsi_handler", LINUX_44X_GUEST_DSI_NATIVE, "cycles", "guest",
        "guest's own Linux 44x DataStorage fast path (a user store through a TLB entry "
        "without UW): the instructions that run natively, its page-table load and store "
        "included (its 16 trapping instructions are exits)",
        "estimate: the store path of head_44x.S @026477c1 for a user address is 49 "
        "instructions (our count: the saves, ESR, DEAR, the PGD and PTE loads, the "
        "DIRTY|ACCESSED|HWWRITE store, the permission arithmetic, tlbsx, tlbwe ATTRIB, the "
        f"restores, rfi; {_R} §2.10), 16 of which trap under KVM-440 (5 mtspr SPRG, mfspr "
        "ESR, DEAR, SPRG3, MMUCR, PID, mtspr MMUCR, tlbsx, tlbwe, mfspr SPRG1, SPRG0, rfi); "
        "the 33 others run natively at CPI 1",
        _counted(f"49 instructions counted in head_44x.S @026477c1 ({_R} §2.10); its "
                 "page-table loads may miss L1"),
    ),
    Cost(
        "guest_page_fault", 2500, "cycles", "guest",
        "guest demand paging: guest do_page_fault, allocate and clear a guest page, set the "
        "PTE (native work only; traps and host faults are charged separately)",
        "estimate: the same path as host_page_fault, about 1,500 instructions at CPI 1 plus "
        f"about 1,000 cycles to clear 4 KB; no figure exists ({_R} §3.2)",
        _estimate(),
    ),
    Cost(
        "guest_exec_fault", 1300, "cycles", "guest",
        "guest's exec fault: a user fetch through a TLB entry without UX; do_page_fault's "
        "exec branch finds the PTE present, flushes the page's data cache to the "
        "instruction cache, sets _PAGE_HWEXEC (native work only; its traps are exits)",
        "estimate: about 250 instructions of do_page_fault to its exec branch (find_vma, "
        "get_pteptr, the PTE update) and __flush_dcache_icache over 4 KB, 128 dcbst and 128 "
        "icbi in two counted loops (about 770 instructions), at CPI 1, plus about 300 "
        "cycles of lines written back; arch/powerpc/mm/fault.c under CONFIG_4xx || "
        f"CONFIG_BOOKE ({_R} §2.10)",
        _estimate(),
    ),
    Cost(
        "guest_context_switch", 1500, "cycles", "guest",
        "guest context switch (schedule, switch_mm, __switch_to), native work only; its "
        "wrteei, mtspr PID, mfmsr, wrtee and mtspr SPRG3 trap and are charged as exits",
        "estimate: as context_switch, about 1,200 instructions at CPI 1 plus about 300 "
        f"cycles of L1 misses; the guest's set_context is mtspr PID + isync ({_R} §1.5)",
        _estimate(),
    ),
    Cost(
        "guest_timer_handler", 1500, "cycles", "guest",
        "guest timer tick (decrementer interrupt: jiffies, scheduler_tick, timer softirq), "
        "native work only",
        "estimate: as host_timer_handler, about 1,200 instructions at CPI 1 plus about 300 "
        "cycles of L1 misses; its 20 trapping instructions (prolog, TSR, DEC, return) "
        "are exits",
        _estimate(),
    ),
    Cost(
        "guest_irq_handler", 1500, "cycles", "guest",
        "guest external interrupt (do_IRQ: the UIC's flow handler and a device's handler, "
        "e.g. a block request's completion waking its waiter), native work only; its 14 "
        "trapping instructions besides the prolog and return (the UIC's DCR accesses, the "
        "irq locks) are exits",
        "estimate: as guest_timer_handler, about 1,200 instructions of do_IRQ, "
        "handle_level_irq and a driver's completion handler at CPI 1 plus about 300 cycles "
        "of L1 misses",
        _estimate(),
    ),
    Cost(
        "guest_syscall", 1000, "cycles", "guest",
        "guest kernel work per system call (entry, dispatch, a short service routine, exit), "
        "native work only; the sc exit and the 17 trapping instructions are KVM's",
        "estimate: about 200 instructions of entry/exit and dispatch plus about 800 for a "
        "short service routine (a small read or write), at CPI 1",
        _estimate(),
    ),
    Cost(
        "guest_process_spawn", 200_000, "cycles", "guest",
        "guest fork + exec of a short-lived program that replaces an exited process "
        "(workload lifetime_accesses): copy the parent's mm, load the ELF and its libraries, "
        "native work only (the system calls' traps and the demand faults are charged apart)",
        "estimate: about 300 us of a 667 MHz 440 for fork, exec and dynamic loading of a "
        "small program (copy_mm, the binfmt_elf loader, ld.so's relocations), about "
        "200,000 instructions at CPI 1; no figure exists for the 440",
        _estimate(),
    ),
    Cost(
        "guest_tlb_flush", 64 * 3 + 100, "cycles", "guest",
        "guest PID roll-over: _tlbia over the guest's indices 0..tlb_44x_hwater and reset "
        "the context map, excluding the trapping tlbwe (one per index)",
        "estimate: 64 x about 3 loop instructions (each iteration's tlbwe traps and is "
        "charged as an exit; the model's guest loops over 61 indices) plus about 100 to "
        "reset the context bitmap, at CPI 1; the "
        f"8-bit PID space caps Linux at 255 contexts ({_R} §1.5)",
        _counted(),
    ),
    Cost(
        "guest_timer_period_us", 4000, "us", "guest",
        "guest timer tick period (HZ=250)",
        "Linux default: CONFIG_HZ=250 is the default choice in kernel/Kconfig.hz, a 4 ms "
        f"tick; general Linux knowledge, not in {_R}",
        _setting(1000, 10000, _HZ_CHOICES),
    ),
    Cost(
        "guest_timeslice_us", 4000, "us", "guest",
        "guest scheduler time slice of a CPU-bound task",
        "estimate: a CFS guest (Linux default 6 ms latency, 0.75 ms minimum granularity) "
        "with 2 or more CPU-bound tasks wants at most 3 ms per task, but pre-emption is "
        "checked at the tick, so each task runs one 4 ms tick at HZ=250",
        _setting(1000, 12000, "one tick at HZ=1000 to three ticks at HZ=250 (CFS "
            "stretches its latency on an SMP guest); general Linux knowledge"),
    ),
    # -------------------------------------------------- guest kernel footprint
    # What the guest kernel touches through its pinned TID-0 lowmem mapping
    # while it handles an event: KVM shadows it in 4 KB pieces, so these
    # pages take kernel-mode TLB misses like any other.  Each text page is
    # fetched once per event; the accesses are spread over the data pages in
    # turn.  They are part of the event's native work (its cycles above),
    # not added to it.
    Cost(
        "guest_fp_vector_text_pages", 1, "pages", "guest",
        "kernel text pages every delivered interrupt fetches from: the vectors and TLB "
        "miss handlers of head_44x.S",
        "estimate: the exception vectors and the two TLB miss handlers of head_44x.S "
        "@026477c1 are about 120 instructions spread over 16 vectors aligned on 32 bytes, "
        "well inside one 4 KB page",
        Spread("estimate", 1, 2, "one page, two if the vectors straddle a page boundary",
               relative=False),
    ),
    Cost(
        "guest_fp_entry_text_pages", 1, "pages", "guest",
        "kernel text pages of entry_32.S (transfer_to_handler ... ret_from_except) every "
        "interrupt through the exception prolog fetches from",
        "estimate: transfer_to_handler, ret_from_syscall, ret_from_except and restore of "
        "entry_32.S @026477c1 are about 300 instructions, 1.2 KB of one text page",
        Spread("estimate", 1, 2, "one page, two if the path straddles a page boundary",
               relative=False),
    ),
    Cost(
        "guest_fp_interrupt_accesses", 40, "accesses", "guest",
        "accesses to the process's kernel stack by an interrupt that goes through the "
        "exception prolog: the exception frame saved and reloaded",
        "estimate: NORMAL_EXCEPTION_PROLOG and transfer_to_handler store about 20 words "
        "of the exception frame (GPR0-12, CR, LR, CTR, XER, NIP, MSR, the marker) and "
        "restore reloads them, about 40 accesses to the top page of the kernel stack",
        _estimate(low=0.5, high=2.0),
    ),
    Cost(
        "guest_fp_syscall_text_pages", 3, "pages", "guest",
        "kernel text pages a short system call's service routine fetches from",
        "estimate: a short read or write through the VFS (sys_read, vfs_read, the file's "
        "read method) runs about 800 instructions over about three 4 KB text pages",
        _estimate(),
    ),
    Cost(
        "guest_fp_syscall_data_pages", 4, "pages", "guest",
        "kernel data pages a system call touches besides the process's kernel stack and "
        "task struct (sys_call_table, the file, its buffers)",
        "estimate: sys_call_table and about 3 pages of the service (struct file, inode, "
        "a page-cache page or a tty buffer) for a short read or write",
        _estimate(),
    ),
    Cost(
        "guest_fp_syscall_accesses", 24, "accesses", "guest",
        "data accesses of a system call's service routine, over its data pages and the "
        "process's task struct",
        "estimate: about one load or store in three of the 200 instructions of entry and "
        "dispatch and of the part of a short service routine that touches distinct lines; "
        "24 was the model's figure before the footprint was made configurable",
        _estimate(),
    ),
    Cost(
        "guest_fp_tick_text_pages", 3, "pages", "guest",
        "kernel text pages a guest timer tick fetches from (time.c, timer.c, sched.c)",
        "estimate: timer_interrupt, update_process_times, scheduler_tick and "
        "run_timer_softirq are about 1,200 instructions in three source files, one page "
        "each",
        _estimate(),
    ),
    Cost(
        "guest_fp_tick_data_pages", 3, "pages", "guest",
        "kernel data pages a guest tick touches (jiffies and xtime, the run queue, the "
        "timer base)",
        "estimate: jiffies/xtime, the per-CPU run queue and the per-CPU timer base, each "
        "on its own page in a 2.6.2x kernel without per-CPU page sharing",
        _estimate(),
    ),
    Cost(
        "guest_fp_tick_accesses", 16, "accesses", "guest",
        "data accesses of a guest tick over its data pages and the current task struct",
        "estimate: about 16 distinct words among the 1,200 instructions of a tick "
        "(jiffies, xtime, the run queue's clock and load, the current task's times, the "
        "timer wheel's head)",
        _estimate(),
    ),
    Cost(
        "guest_fp_switch_text_pages", 1, "pages", "guest",
        "kernel text pages a guest context switch fetches from (schedule, __switch_to)",
        "estimate: schedule, context_switch and _switch are about 1,200 instructions, "
        "mostly in sched.c; one page of it is hot",
        _estimate(),
    ),
    Cost(
        "guest_fp_switch_data_pages", 1, "pages", "guest",
        "kernel data pages a guest context switch touches besides the two task structs "
        "and the next kernel stack (the run queue)",
        "estimate: the per-CPU run queue on 1 page; the previous and the next task "
        "struct and the next kernel stack are each process's own pages (3 more)",
        Spread("estimate", 0, 4, "from none (the run queue shares a page already touched) "
               "to four (rq, cfs_rq, the sched entities' tree nodes)", relative=False),
    ),
    Cost(
        "guest_fp_switch_accesses", 12, "accesses", "guest",
        "data accesses of a guest context switch over the run queue, both task structs "
        "and the next kernel stack",
        "estimate: _switch saves and restores about 6 words of the switch frame per task "
        "(stack pointer, thread state), plus the run-queue updates, about 12 accesses",
        _estimate(),
    ),
    Cost(
        "guest_fp_fault_text_pages", 2, "pages", "guest",
        "kernel text pages a guest page fault fetches from (mm/memory.c, page_alloc.c)",
        "estimate: do_page_fault, handle_mm_fault, do_anonymous_page and the buddy "
        "allocator are about 1,500 instructions in two source files, one page each hot",
        _estimate(),
    ),
    Cost(
        "guest_fp_fault_data_pages", 3, "pages", "guest",
        "kernel data pages a guest page fault touches besides the page table and the new "
        "page (vma and mm, mem_map, the zone's free list)",
        "estimate: the vm_area_struct and mm_struct, the struct page in mem_map and the "
        "zone's free lists, 1 page each (3); the PTE page and the new page come on top",
        _estimate(),
    ),
    Cost(
        "guest_fp_fault_accesses", 16, "accesses", "guest",
        "data accesses of a guest page fault over its data pages and the PTE page, not "
        "counting the clearing of the new page (one touch of it)",
        "estimate: the vma lookup, the mm's counters, the struct page and the free-list "
        "unlink, about 16 distinct words of 1,500 instructions",
        _estimate(),
    ),
    # ---------------------------------------------------- guest C-code traps
    Cost(
        "guest_c_traps_tick_mfmsr", 1, "traps", "guest",
        "mfmsr the guest's C code executes per tick (local_irq_save in the softirq)",
        "estimate: irq_exit -> do_softirq saves the interrupt state once with "
        "local_irq_save = mfmsr + wrteei 0 (2.6.2x, every tick raises TIMER_SOFTIRQ); "
        "general knowledge of kernel/softirq.c, not read for this table",
        Spread("estimate", 0, 2, "none to two local_irq_save on the tick's C path",
               relative=False),
    ),
    Cost(
        "guest_c_traps_tick_wrtee", 6, "traps", "guest",
        "wrtee/wrteei the guest's C code executes per tick (irq save/restore, the timer "
        "base's spin_lock_irq)",
        "estimate: do_softirq's local_irq_save/restore (2), __do_softirq's enable and "
        "disable around the handlers (2), run_timer_softirq's spin_lock_irq/unlock_irq of "
        "the timer base (2): 6 wrtee(i) per tick in a 2.6.2x kernel; general knowledge",
        Spread("estimate", 2, 12, "from the softirq's own enable/disable only to twice the "
               "estimate when timers run", relative=False),
    ),
    Cost(
        "guest_c_traps_syscall_mfmsr", 1, "traps", "guest",
        "mfmsr the guest's C code executes per system call (a spin_lock_irqsave)",
        "estimate: a short read or write takes one lock with spin_lock_irqsave (a wait "
        "queue or the tty lock), 1 mfmsr; general knowledge of 2.6.2x",
        Spread("estimate", 0, 3, "from a lock-free call to three irqsave locks",
               relative=False),
    ),
    Cost(
        "guest_c_traps_syscall_wrtee", 2, "traps", "guest",
        "wrtee/wrteei the guest's C code executes per system call",
        "estimate: the wrteei 0 of one spin_lock_irqsave and the wrtee of its restore, "
        "2 per short read or write; general knowledge of 2.6.2x",
        Spread("estimate", 0, 6, "from a lock-free call to three irqsave locks",
               relative=False),
    ),
    Cost(
        "guest_c_traps_fault_mfmsr", 1, "traps", "guest",
        "mfmsr the guest's C code executes per page fault (the zone lock)",
        "estimate: the page allocator takes the zone lock with spin_lock_irqsave once, 1 "
        "mfmsr; general knowledge of mm/page_alloc.c in 2.6.2x",
        Spread("estimate", 0, 2, "none with a per-CPU page list hit, two with a refill",
               relative=False),
    ),
    Cost(
        "guest_c_traps_fault_wrtee", 2, "traps", "guest",
        "wrtee/wrteei the guest's C code executes per page fault",
        "estimate: the wrteei 0 and the wrtee restore of the zone lock's "
        "spin_lock_irqsave, 2 per fault; general knowledge of mm/page_alloc.c in 2.6.2x",
        Spread("estimate", 0, 4, "none with a per-CPU page list hit, four with a refill",
               relative=False),
    ),
    # ---------------------------------------------------------------- qemu
    Cost(
        "qemu_dcr", 2500, "cycles", "qemu",
        "QEMU CPU work to serve one guest access to a register of the interrupt path: "
        "an mfdcr/mtdcr of the 440's UIC (KVM_EXIT_DCR), a load/store of the e500's "
        "MPIC or a virtio device's ISR read (KVM_EXIT_MMIO), in the vCPU's own thread "
        "between two KVM_RUN",
        "estimate: about 2,500 instructions for the kvm_run exit dispatch and the register "
        f"handler of the emulated controller, at CPI 1, as qemu_mmio_register without its "
        f"chardev write; not measured ({_R} §3.2)",
        _estimate(),
    ),
    Cost(
        "qemu_mmio_register", 4000, "cycles", "qemu",
        "QEMU CPU work to serve one register-device access (e.g. the UART at 0xef600000)",
        "estimate: about 2,500 instructions for the kvm_run exit dispatch, the memory-region "
        "lookup, the serial register handler and the IRQ update, plus about 1,500 for a "
        f"write() to the chardev on a transmit, at CPI 1; not measured ({_R} §3.2); the "
        f"UART hole is {_R} §2.2",
        _estimate(),
    ),
    Cost(
        "qemu_mmio_block", 10000, "cycles", "qemu",
        "QEMU CPU work per block request (parse it, map the guest buffers, submit and "
        "complete the AIO, raise the IRQ)",
        "estimate: about 6,000 instructions of device emulation and request handling plus "
        "2 syscalls (submit, completion) of about 2,000 cycles each, at CPI 1",
        _estimate(),
    ),
    Cost(
        "block_latency_us", 100, "us", "qemu",
        "block device latency per request as QEMU sees it",
        "estimate: 100 us, a read that misses the host page cache on flash or a fast disk "
        "image; a 2008 spinning disk would be 5,000-10,000 us and a page-cache hit about "
        f"10-20 us; no figure in {_R}",
        Spread("estimate", 15, 10000, "a host page-cache hit (10-20 us) to a 2008 "
            "spinning disk (5,000-10,000 us)", relative=False),
    ),
    Cost(
        "qemu_wakeup", 800, "cycles", "qemu",
        "wake the waiting vCPU thread after QEMU completes its request (futex/signal wake, "
        "try_to_wake_up)",
        "estimate: about 300 instructions for the wake syscall plus about 400 in "
        "try_to_wake_up and the enqueue, at CPI 1, plus about 100 cycles of L1 misses",
        _estimate(),
    ),
)

#: Name -> :class:`Cost`, read-only, in table order.
COSTS_BY_NAME: Mapping[str, Cost] = MappingProxyType({c.name: c for c in COSTS})

# Costs that must be at least 1 (a zero clock, tick or slice would divide by
# zero or loop forever).
_POSITIVE = frozenset(
    {
        "clock_mhz",
        "sched_latency_us",
        "sched_min_granularity_us",
        "host_timer_period_us",
        "guest_timer_period_us",
        "guest_timeslice_us",
    }
)

#: The largest value a cost may take: 2**40 cycles, some 27 simulated minutes at
#: 667 MHz, longer than any one event.  Cycle counts travel through int64 in the
#: fast path, summed over a run of at most one simulated hour: far below.
MAX_COST = 2**40


def _check_ranges() -> None:
    """Refuse, at import, a table whose ranges do not hold their defaults."""
    for c in COSTS:
        if c.spread.kind not in SPREADS:
            raise ValueError(f"cost {c.name!r}: unknown spread kind {c.spread.kind!r}")
        if not 0 <= c.low <= c.default <= c.high <= MAX_COST:
            raise ValueError(f"cost {c.name!r}: default {c.default} outside its range "
                             f"{c.low}..{c.high} ({c.unit})")
        if c.name in _POSITIVE and c.low < 1:
            raise ValueError(f"cost {c.name!r}: its range must stay positive, low is {c.low}")


_check_ranges()


def unknown_cost(name: object) -> ConfigError:
    """The error of a cost name that is no cost's: the names closest to it."""
    names = list(COSTS_BY_NAME)
    close = difflib.get_close_matches(str(name), names, n=5, cutoff=0.6)
    if close:
        known = ", ".join(close) + f", ... ({len(names)} in all)"
    else:
        known = ", ".join(names)
    return ConfigError(f"unknown cost {name!r} (known: {known})")


def _check_value(name: str, value: Any) -> int:
    """Return ``value`` as a non-negative int, or raise ConfigError naming ``name``."""
    unit = COSTS_BY_NAME[name].unit
    if isinstance(value, bool):
        raise ConfigError(f"cost {name!r} must be a number ({unit}), not a bool ({value!r})")
    if isinstance(value, numbers.Integral):
        result = int(value)
    elif isinstance(value, numbers.Real):
        fvalue = float(value)
        if not math.isfinite(fvalue) or not fvalue.is_integer():
            raise ConfigError(
                f"cost {name!r} must be a whole number ({unit}), got {value!r}"
            )
        result = int(fvalue)
    else:
        raise ConfigError(
            f"cost {name!r} must be a number ({unit}), got {type(value).__name__} {value!r}"
        )
    if result < 0:
        raise ConfigError(f"cost {name!r} must not be negative, got {result} ({unit})")
    if result == 0 and name in _POSITIVE:
        raise ConfigError(f"cost {name!r} must be positive, got 0 ({unit})")
    if result > MAX_COST:
        raise ConfigError(f"cost {name!r} is too large: {result:,} ({unit}), "
                          f"at most {MAX_COST:,} (2**40)")
    return result


_RANGE_KEYS = ("value", "low", "high")
_LISTING_KEYS = ("name", "default", "low", "high", "unit", "source", "group", "spread", "why",
                 "value")


def _range_ends(name: str, given: Any) -> dict[str, int]:
    """``{"low": int, "high": int}`` (either may be missing) from a pair or a table."""
    if isinstance(given, Mapping):
        extra = [k for k in given if k not in _RANGE_KEYS]
        if extra:
            raise ConfigError(f"cost {name!r}: unknown key {extra[0]!r} in its table "
                              f"(known: {', '.join(_RANGE_KEYS)})")
        return {k: _check_value(name, given[k]) for k in ("low", "high") if k in given}
    if isinstance(given, (str, bytes)) or not isinstance(given, Sequence) or len(given) != 2:
        raise ConfigError(f"cost {name!r}: a range is (low, high), got {given!r}")
    return {"low": _check_value(name, given[0]), "high": _check_value(name, given[1])}


def _check_holds(name: str, value: int, ends: Mapping[str, int]) -> None:
    """Refuse a table that gives a cost's value and an end of its range that
    leaves the value out (``{value = 3, low = 5, high = 9}``): one of the two
    is a mistake, and stretching the range to the value would drop the end
    given without a word.  (A range given apart from the value, or a value
    apart from the range, still stretches the range.)"""
    low, high = ends.get("low"), ends.get("high")
    if (low is not None and value < low) or (high is not None and value > high):
        span = f"{'' if low is None else low}..{'' if high is None else high}"
        raise ConfigError(f"cost {name!r}: value {value} lies outside the range {span} given "
                          f"with it; give a range that holds it")


class CostTable(Mapping[str, int]):
    """The costs one run uses: the defaults of :data:`COSTS` with overrides applied.

    A read-only mapping ``name -> int``; every name is also an attribute
    (``table.exit_light``).  ``overrides`` maps a cost name to an ``int`` or an
    integral ``float``, or to a table ``{"value": v, "low": l, "high": h}``
    (every key optional) that also overrides the cost's range; ``ranges`` maps
    a cost name to ``(low, high)`` and is applied last.  Anything else, and a
    range whose low exceeds its high, raises :class:`~emu.errors.ConfigError`
    naming the cost.  Ranges never change a value: a value outside its range
    stretches the range (:attr:`ranges`).
    """

    __slots__ = ("_values", "_overrides", "_ranges", "_range_overrides")

    def __init__(self, overrides: Mapping[str, Any] | None = None,
                 ranges: Mapping[str, Any] | None = None):
        checked: dict[str, int] = {}
        ends: dict[str, dict[str, int]] = {}
        for name, value in _items(overrides, "cost overrides", "value"):
            if isinstance(value, Mapping):
                ends[name] = _range_ends(name, value)
                if "value" in value:
                    checked[name] = _check_value(name, value["value"])
                    _check_holds(name, checked[name], ends[name])
            else:
                checked[name] = _check_value(name, value)
        for name, given in _items(ranges, "cost ranges", "(low, high)"):
            ends.setdefault(name, {}).update(_range_ends(name, given))
        values = {c.name: c.default for c in COSTS}
        values.update(checked)
        # Keep overrides in table order, whatever order they came in.
        self._overrides = {n: checked[n] for n in values if n in checked}
        self._values = values
        self._range_overrides = {n: dict(ends[n]) for n in values if ends.get(n)}
        self._ranges = {}
        for c in COSTS:
            low, high = c.low, c.high
            given = ends.get(c.name, {})
            low, high = given.get("low", low), given.get("high", high)
            if low > high:
                raise ConfigError(f"cost {c.name!r}: range low {low} > high {high} ({c.unit})")
            value = values[c.name]
            self._ranges[c.name] = (min(low, value), max(high, value))

    # -- Mapping -----------------------------------------------------------
    def __getitem__(self, name: str) -> int:
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __getattr__(self, name: str) -> int:
        # Only called when normal lookup fails; never for private names, so
        # copy/pickle probing (__setstate__, __deepcopy__ ...) behaves.
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(
                f"{type(self).__name__!s} has no cost {name!r}"
            ) from None

    def __reduce__(self):
        return (type(self), (dict(self._overrides), self.range_overrides))

    def __repr__(self) -> str:
        if self._range_overrides:
            return (f"{type(self).__name__}(overrides={self._overrides!r}, "
                    f"ranges={self.range_overrides!r})")
        return f"{type(self).__name__}(overrides={self._overrides!r})"

    # -- reporting ---------------------------------------------------------
    @property
    def overrides(self) -> dict[str, int]:
        """Only the costs that were overridden, ``name -> value`` (a copy)."""
        return dict(self._overrides)

    @property
    def ranges(self) -> dict[str, tuple[int, int]]:
        """Every cost name -> ``(low, high)``, in table order, with
        ``low <= value <= high`` (a copy)."""
        return dict(self._ranges)

    @property
    def range_overrides(self) -> dict[str, dict[str, int]]:
        """Only the range ends that were overridden, ``name -> {"low"?, "high"?}``."""
        return {n: dict(e) for n, e in self._range_overrides.items()}

    def rows(self) -> list[dict[str, Any]]:
        """One dict per cost, in table order, for reports.

        Keys: ``name, value, default, low, high, unit, group, description,
        source, spread, why, overridden`` (``low``/``high``: this table's range;
        ``spread``: its kind, one of :data:`SPREADS`; ``why``: its reasoning).
        """
        return [
            {
                "name": c.name,
                "value": self._values[c.name],
                "default": c.default,
                "low": self._ranges[c.name][0],
                "high": self._ranges[c.name][1],
                "unit": c.unit,
                "group": c.group,
                "description": c.description,
                "source": c.source,
                "spread": c.spread.kind,
                "why": c.spread.why,
                "overridden": c.name in self._overrides,
            }
            for c in COSTS
        ]

    def listing(self) -> list[dict[str, Any]]:
        """One dict per cost, in table order, for ``emu costs``.

        Keys, in this order: ``name, default, low, high, unit, source``, then
        ``group, spread, why`` and ``value`` (this table's value).
        """
        return [{k: row[k] for k in _LISTING_KEYS} for row in self.rows()]

    def to_dict(self) -> dict[str, int]:
        """Every cost name -> value, in table order (for the JSON summary)."""
        return dict(self._values)


def _items(given: Mapping[str, Any] | None, what: str, shape: str):
    """The ``(name, value)`` pairs of a mapping keyed by cost names, names checked."""
    if given is None:
        return []
    if not isinstance(given, Mapping):
        raise ConfigError(f"{what} must be a mapping of cost name to {shape}, "
                          f"got {type(given).__name__}")
    for name in given:
        if not isinstance(name, str) or name not in COSTS_BY_NAME:
            raise unknown_cost(name)
    return list(given.items())


def cost_named(name: object) -> Cost:
    """The :class:`Cost` called ``name``; ConfigError (closest names) if none is."""
    if not isinstance(name, str) or name not in COSTS_BY_NAME:
        raise unknown_cost(name)
    return COSTS_BY_NAME[name]


def cycles_to_us(cycles: int, clock_mhz: int) -> float:
    """Convert core cycles to microseconds at ``clock_mhz`` (cycles per µs)."""
    if isinstance(clock_mhz, bool) or not clock_mhz > 0:
        raise ConfigError(f"clock_mhz must be positive, got {clock_mhz!r}")
    return cycles / clock_mhz


def us_to_cycles(us: Union[int, float], clock_mhz: int) -> int:
    """Convert microseconds to whole core cycles at ``clock_mhz`` (rounded to nearest).

    The scheduler and device costs are in µs; simulated time is in cycles.
    """
    if isinstance(clock_mhz, bool) or not clock_mhz > 0:
        raise ConfigError(f"clock_mhz must be positive, got {clock_mhz!r}")
    if isinstance(us, numbers.Integral):
        return int(us) * int(clock_mhz)
    return int(round(us * clock_mhz))

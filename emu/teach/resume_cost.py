"""The exercise ``resume-cost``: what one resume costs ``shadow`` and ``direct``.

A vCPU with a working set of W pages shares its CPU with a host task.  Each
time it resumes, ``direct`` (7924bd41) has already paid ``_tlbia()`` at
vcpu_put and must refill its W pages, one miss each; ``shadow`` (2.6.26)
writes its whole shadow array, indices 0..hwater-1, at the guest entry that
follows vcpu_load, and takes no miss (docs/kvm440.md §2.3, §2.10).  The
question asks for both bills in cycles, from the cost table, and for the
working set at which they are equal.

The model's answer comes from the compiled backend: an observer (:mod:`emu.observe`)
measures vcpu_put and vcpu_load on the CPU's clock, and the vCPU's counters
give the misses of the first A accesses after the load (the repopulation
window) and the miss handler's cycles.  The resume it reads is the first,
from the second on, at which the guest is warm (no page fault, no
gfn_to_pfn, no miss for the guest, no exit besides the refills and host
ticks between that vcpu_load and the next vcpu_put), so that the premises of
the hand derivation hold; it says which.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from emu.codes import EXIT, EXIT_CATEGORIES, STEP
from emu.costs import CostTable
from emu.errors import EmuError
from emu.teach.exercise import scenario_dict
from emu.teach.lessons import Answer, draw, fill, verdict
from emu.teach.locate import build_machine
from emu.workload.streams import Layout

DATA_BASE = Layout.data_base         # where the working set's pages are
SUMMARY = "the TLB work of one resume under shadow and under direct, and where they cross"
DESIGNS = ("shadow", "direct")
#: Exits allowed between the vcpu_load read and the next vcpu_put: the refills, the
#: host's timer ticks and wake-ups (a lightweight exit each); TIMEINGUEST is no exit.
QUIET_EXITS = ("DTLBVIRT", "ITLBVIRT", "DEC", "EXTINT", "TIMEINGUEST")
#: The fill the premises allow: the C handler, the hashed guest TLB lookup, a pfn-cache hit.
FILL_ROWS = ("c_full_exit", "c_walk_hashed", "c_gpa", "c_memslot", "c_pfn_lookup",
             "c_hw_write", "c_restore")


@dataclass(frozen=True)
class Problem:
    """A working set of ``pages``, ``hwater``, and the ``accesses`` the window counts."""

    seed: int
    pages: int
    hwater: int
    accesses: int


def problem(seed: int) -> Problem:
    r = draw("resume-cost", seed)
    return Problem(seed, r.randint(6, 20), r.randint(56, 62), r.randrange(250, 401, 10))


def _costs() -> dict:
    return CostTable({}).to_dict()


def question(p: Problem) -> str:
    return fill(
        f"Exercise (resume-cost, seed {p.seed}). A PowerPC 440 runs Linux with hwater "
        f"{p.hwater} (the round robin replaces entries 0..{p.hwater}). A vCPU's guest process "
        f"has a working set of {p.pages} data pages, all in its guest TLB and in KVM's pfn "
        f"cache; a host task runs while the vCPU is descheduled. KVM uses the C miss handler "
        f"with the hashed guest TLB lookup. Neither 2.6.26 nor 7924bd41 had a pfn cache or "
        f"a hashed lookup: both are hypothetical machines, each resuming as its kernel "
        f"did.\n\n"
        f"Under `shadow` (2.6.26), vcpu_put does nothing and the guest entry after "
        f"vcpu_load rewrites hardware indices 0..{p.hwater - 1} from the shadow array, which "
        f"holds the working set. Under `direct` (7924bd41), vcpu_put runs _tlbia() over "
        f"0..{p.hwater} and the guest refills its pages one miss at a time.\n\n"
        f"With the cost table's defaults (`emu costs`), how many cycles of TLB work does "
        f"one resume cost each design: the vcpu_put before it, the vcpu_load and the misses "
        f"of the first {p.accesses} accesses after it? From how many pages in the working "
        f"set is `shadow` the cheaper per resume?")


def scenario_for(p: Problem, design: str) -> dict:
    """The scenario the model runs for ``p`` under ``design``."""
    sc = scenario_dict(p.seed if p.seed else 1, p.pages, 100)
    sc["machine"] = {"hwater": p.hwater}
    sc["kvm"] = {"strategy": design, "handler": "c", "guest_tlb_walk": "hashed"}
    sc["sim"] = {"repopulation_window": p.accesses}
    return sc


class _Found(Exception):
    """Raised from the observer once a warm resume is read: it ends the run."""


class _Resumes:
    """The observer of one vCPU on the compiled backend: for each resume from the
    second on, the cycles of the vcpu_put before it and of its vcpu_load, and the
    vCPU's counters at the load and at the next put; it ends the run at the
    first resume whose premises hold (:attr:`found`)."""

    def __init__(self, machine, vcpu, p: Problem, design: str):
        self.m, self.v, self.p = machine, vcpu, p
        self.pages = set(range(DATA_BASE >> 12, (DATA_BASE >> 12) + p.pages))
        # shadow wrote the working set back at vcpu_load; direct's _tlbia left none
        self.held_at_load = p.pages if design == "shadow" else 0
        self.put_cycles = 0
        self.slices: list = []            # [put cycles, load cycles, counters at load, at put]
        self.found: dict | None = None

    def held(self, cpu) -> int:
        """The working set's pages the vCPU holds in ``cpu``'s hardware TLB."""
        tlb, me = cpu.tlb, self.v.ctx.ctx
        vpns = {int(tlb.vpn_arr[i]) << int(tlb.shift_arr[i]) >> 12 for i in range(tlb.entries)
                if tlb.valid_arr[i] and tlb.ts_arr[i] == 1 and int(tlb.owner_arr[i]) >> 8 == me}
        return len(vpns & self.pages)

    def counters(self) -> dict:
        a = self.v.ctx.arrays
        kvm, guest = self.m.kvms[0], self.m.guests[0]
        return {"repop_miss": a["repop_miss"].copy(), "repop_access": a["repop_access"].copy(),
                "misses": int(a["causes"].sum()), "profile": a["profile"].copy(),
                "exits": a["exits"][0::4].copy(), "gfn_to_pfn": int(kvm.gfn_to_pfn_calls),
                "faults": int(guest.page_faults)}

    def around(self, event, thread, call, *args):
        if event not in ("vcpu_load", "vcpu_put"):
            return call(*args)
        cpu = args[0]
        t0 = cpu.total()
        if event == "vcpu_put" and self.slices and self.slices[-1][3] is None:
            self.slices[-1][3] = self.counters()
            self.check(len(self.slices))
        result = call(*args)
        if event == "vcpu_put":
            self.put_cycles = cpu.total() - t0
        else:
            self.slices.append([self.put_cycles, cpu.total() - t0,
                                dict(self.counters(), held=self.held(cpu)), None])
        return result

    def check(self, k: int) -> None:
        """Stop at resume ``k`` (the last told) if it is warm, the first is not read."""
        put, load, before, after = self.slices[-1]
        warm = _warm(before, after, self.p.accesses) if before["held"] == self.held_at_load \
            else None
        if k >= 2 and warm is not None:
            self.found = dict(warm, resume=k, put=put, load=load)
            raise _Found()


def _warm(before: dict, after: dict, accesses: int) -> dict | None:
    """What the resume between counters ``before`` and ``after`` did, if the
    premises hold (None otherwise): the window's misses and the handler's cycles."""
    if after is None or after["gfn_to_pfn"] != before["gfn_to_pfn"] \
            or after["faults"] != before["faults"]:
        return None
    exits = after["exits"] - before["exits"]
    if any(exits[EXIT[c]] for c in EXIT_CATEGORIES if c not in QUIET_EXITS):
        return None
    window = int((after["repop_miss"] - before["repop_miss"]).sum())
    done = after["repop_access"][accesses - 1] - before["repop_access"][accesses - 1] == 1
    if not done or after["misses"] - before["misses"] != window:
        return None              # the window was cut short, or a miss came after it
    prof = after["profile"] - before["profile"]
    cycles = int(prof[1::2].sum() - prof[2 * STEP["entry_restore"] + 1])
    return {"misses": window, "handler": cycles}


def measure(p: Problem, design: str) -> dict:
    """The model's bill of the first warm resume (from the second on) of ``design``."""
    machine = build_machine(scenario_for(p, design), [], backend="cython")
    vcpu = machine.vcpus[0]
    obs = vcpu.observer = _Resumes(machine, vcpu, p, design)
    try:
        machine.run()
    except _Found:
        return obs.found
    raise EmuError(f"internal: resume-cost seed {p.seed}: {design}'s guest is never warm at a "
                   f"resume in the {machine.scenario.duration_ms:g} ms run")


def solve(p: Problem) -> Answer:
    c = _costs()
    fill_cost = sum(c[row] for row in FILL_ROWS)
    tlbia = c["tlbia_base"] + (p.hwater + 1) * c["tlbia_per_entry"]
    loop = p.hwater * c["shadow_restore_per_entry"]
    expected = {"shadow": c["vcpu_put"] + c["vcpu_load"] + loop,
                "direct": c["vcpu_put"] + tlbia + c["vcpu_load"] + p.pages * fill_cost}
    got = {d: measure(p, d) for d in DESIGNS}
    computed = {d: g["put"] + g["load"] + g["handler"] for d, g in got.items()}
    cross = int(np.floor((loop - tlbia) / fill_cost)) + 1
    fills = " + ".join(f"{c[row]}" for row in FILL_ROWS)
    cheaper = "shadow" if expected["shadow"] < expected["direct"] else "direct"
    text = fill(
        f"Answer (by hand). shadow: vcpu_put {c['vcpu_put']}, vcpu_load {c['vcpu_load']}, "
        f"and the entry loop over indices 0..{p.hwater - 1}: {p.hwater} x "
        f"{c['shadow_restore_per_entry']} (3 tlbre + 3 tlbwe and the loop's own "
        f"instructions) = {loop:,}; no miss, the shadow array holds the working set: "
        f"{expected['shadow']:,} cycles.\n\n"
        f"direct: vcpu_put {c['vcpu_put']} + _tlbia() {c['tlbia_base']} + {p.hwater + 1} x "
        f"{c['tlbia_per_entry']} = {c['vcpu_put'] + tlbia:,}; vcpu_load {c['vcpu_load']}; "
        f"then each of the {p.pages} pages misses once in the first {p.accesses} accesses "
        f"(a page is left out with probability ({p.pages - 1}/{p.pages})^{p.accesses}, "
        f"negligible), each a fill in the C handler: {fills} = {fill_cost} cycles; "
        f"{p.pages} x {fill_cost} = {p.pages * fill_cost:,}: {expected['direct']:,} cycles. "
        f"For this resume {cheaper} is the cheaper.\n\n"
        f"They are equal when W x {fill_cost} = {loop:,} - {tlbia:,}: shadow is the cheaper "
        f"per resume from W = {cross} pages on. But shadow pays its {loop:,}-cycle loop at "
        f"every guest entry, after every exit, not only at a resume.\n\n"
        f"Computed by the model (vcpu_put and vcpu_load on the CPU's clock, the miss "
        f"handler's cycles from its profile; shadow at resume #{got['shadow']['resume']}, "
        f"direct at #{got['direct']['resume']}, the first at which the guest is warm): shadow "
        f"{computed['shadow']:,} ({got['shadow']['misses']} misses), direct "
        f"{computed['direct']:,} ({got['direct']['misses']} misses) -> "
        f"{verdict(expected, computed)}.")
    return Answer(expected, computed, text)

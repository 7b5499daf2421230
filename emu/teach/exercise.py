"""A small exercise on the TLB miss handler, answered by hand and by the model.

:func:`exercise_text` asks how many hardware TLB misses a vCPU takes after a
host task swept the TLB while it was descheduled, under two KVM designs;
:func:`solve_exercise` derives the answer by hand from premises it checks in
the model, and counts it with the same machinery as ``emu explain``
(:mod:`emu.teach.narrator`).
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

from emu.params import scenario_from_dict
from emu.errors import EmuError
from emu.guest.os import KERNEL_BASE
from emu.run import resolve
from emu.teach.narrator import build_machine, narrate

try:
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10 and older
    import tomli as tomllib  # type: ignore[no-redef]

#: The exercise's scenario, as a TOML file (the default scenario's machine and KVM
#: design; a 24-page data-only guest working set and a host task that sweeps 100
#: pages).  The short scheduler periods only make the resumes come sooner, so that
#: the reference backend gets there quickly.
EXERCISE_TOML = """\
name = "exercise"
seed = 1

[costs]
sched_latency_us = 800
sched_min_granularity_us = 200

[[vm]]
[[vm.process]]
workload = { kind = "working-set", pages = 24, inst_fraction = 0.0 }

[[host_task]]
name = "sweeper"
run_us = 200
sleep_us = 300
workload = { kind = "sweep", pages = 100, inst_fraction = 0.0 }
"""
EXERCISE_PAGES = 24
EXERCISE_RESUME = 4
EXERCISE_ACCESSES = 200
EXERCISE_DESIGNS = ("direct", "direct-save-on-switch")


def exercise_scenario():
    """The exercise's scenario (a :class:`~emu.params.Scenario`)."""
    return scenario_from_dict(tomllib.loads(EXERCISE_TOML))


def exercise_text(scenario=None, overrides=()) -> str:
    """The exercise as printed by ``emu explain --exercise``: the question and its
    scenario.  Posed on ``scenario`` (a TOML path; default: the exercise's own)
    with ``overrides``, its last part says on what."""
    question = (
        "Exercise. A PowerPC 440 has a 64-entry TLB; Linux's round robin replaces entries\n"
        "0..62 (hwater 62) and keeps entry 63 pinned for the host kernel. A guest process\n"
        "uses a working set of 24 data pages (uniform, no instruction fetches); after\n"
        "warm-up its guest TLB and the pfn cache hold all 24, and so does the hardware\n"
        "TLB. While the vCPU is descheduled, a host task sweeps 100 pages (every access a\n"
        "new page, so every access misses and its handler writes the next round-robin\n"
        "slot). How many hardware TLB misses does the vCPU take in its first 200 accesses\n"
        f"after it resumes (vcpu_load #{EXERCISE_RESUME}) under `direct` (commit 7924bd41: nothing "
        "saved,\n_tlbia() at vcpu_put)? Under `direct-save-on-switch` (save the vCPU's entries "
        "at\nvcpu_put, write them back at vcpu_load)?\n")
    if scenario is None and not overrides:
        return question + (
            "\nThe scenario (save it as exercise.toml and explore with\n"
            f"`emu explain exercise.toml --resume {EXERCISE_RESUME} --accesses {EXERCISE_ACCESSES} "
            "--set kvm.strategy=direct`):\n\n" + EXERCISE_TOML)
    on = f"the scenario {scenario}" if scenario is not None else "the exercise's scenario below"
    sets = " with" + "".join(f" --set {o}" for o in overrides) if overrides else ""
    text = question + "\n" + textwrap.fill(
        f"Posed here on {on}{sets}: the numbers above are those of the exercise's own "
        f"scenario; --solve counts the misses of this one.", 84, break_on_hyphens=False) + "\n"
    return text + ("\n" + EXERCISE_TOML if scenario is None else "")


@dataclass
class ExerciseAnswer:
    """The exercise's answer, by hand and by the model, with the premises it checked."""

    computed: dict          # design -> hardware misses the model counted in the window
    expected: dict          # design -> the hand-derived answer (None: a premise failed)
    distinct_pages: int     # distinct pages among the window's accesses (the stream)
    host_writes: int        # the host task's tlbwe while the vCPU was away (direct)
    held_at_put: dict       # design -> the vCPU's hardware entries at that vcpu_put
    text: str


def solve_exercise(scenario=None, overrides=()) -> ExerciseAnswer:
    """Run the exercise under both designs; derive the answer from its premises.

    ``scenario`` (a Scenario, dict or TOML path; default: the exercise's own)
    and ``overrides`` pose it on another scenario: the model counts that
    one's misses, and the hand derivation is given where its premises hold.
    """
    posed = scenario is not None or bool(overrides)
    base = exercise_scenario() if scenario is None else scenario
    computed, held, writes, distinct, kernel = {}, {}, {}, 0, False
    for design in EXERCISE_DESIGNS:
        machine = build_machine(base, list(overrides) + [f"kvm.strategy={design}"])
        nar = narrate(machine, machine.vcpus[0], EXERCISE_RESUME, EXERCISE_ACCESSES, quiet=True)
        if len(nar.accesses) < EXERCISE_ACCESSES or not nar.away_history:
            raise EmuError(f"{'' if posed else 'internal: '}the exercise's window (the "
                           f"{EXERCISE_ACCESSES} accesses after vcpu_load #{EXERCISE_RESUME}, "
                           f"the vCPU descheduled before it) is not reached in the "
                           f"{machine.scenario.duration_ms:g} ms run")
        away = nar.away_history[0]
        computed[design] = sum(len(a.causes) for a in nar.accesses)
        held[design] = away["held_at_put"]
        tasks = machine.host_tasks
        writes[design] = away.get(tasks[0].ctx.ctx, {}).get("writes", 0) if tasks else 0
        kernel = kernel or any(a.ea >= KERNEL_BASE for a in nar.accesses)
        if kernel and not posed:
            raise EmuError("internal: the exercise's window holds guest kernel accesses")
        if design == "direct":
            distinct = len({a.page for a in nar.accesses})
    sc = machine.scenario
    slots = sc.machine.hwater + 1                # 0..hwater: 63 on the exercise's 440
    workload = sc.vms[0].processes[0].workload
    ws = (workload.pages if sc.machine.core == "440" and workload.kind == "working-set"
          and not kernel else None)
    # the hand derivation, valid when its premises hold (checked here, not assumed)
    expected = {
        # direct's vcpu_put runs _tlbia(): none of what the vCPU held survives the put
        "direct": distinct if ws is not None and held["direct"] >= ws else None,
        "direct-save-on-switch": 0 if ws is not None and held["direct-save-on-switch"] >= ws
        else None,
    }
    if posed:
        return ExerciseAnswer(computed, expected, distinct, writes["direct"], held,
                              _posed_answer(computed, expected, held, writes, ws, slots))
    agree = "they agree" if computed == expected else "THEY DISAGREE"
    text = (
        "Answer (by hand). The vCPU held its "
        f"{held['direct']} entries (its 24 pages and pages of its guest\nkernel) when it was "
        "put. Under `direct`, vcpu_put runs _tlbia(), which invalidates\nevery index 0..62, "
        "every slot a guest entry can occupy: none survives the put.\n(Without that flush none "
        "would survive either: the sweep misses on every access\nand each miss writes the "
        "round-robin slot after the previous one, so 63\nconsecutive writes cover 0..62; the host "
        f"task made {writes['direct']:,} writes before the vCPU\nresumed.) The guest TLB and the "
        "pfn cache still hold the 24 pages, so each page\nmisses exactly once, on its first touch "
        "after the resume: the miss handler refills\nit into the next round-robin slot, one the "
        "host used (24 fills never wrap round to\nthe vCPU's new entries); the window holds no "
        "guest kernel access (no interrupt).\nMisses = distinct pages among the 200 accesses; "
        f"counted from the access stream: {distinct}.\n(All 24 are likely: a given page is left "
        "out with probability (23/24)^200 = 0.02 %,\nsome page with about 0.5 %.)\n"
        "Under `direct-save-on-switch`, vcpu_put saved the vCPU's "
        f"{held['direct-save-on-switch']} entries "
        "and\nvcpu_load wrote them back at their indices, over the host's: 0 misses.\n"
        f"Hand-derived: direct {expected['direct']}, direct-save-on-switch "
        f"{expected['direct-save-on-switch']}.\n"
        f"Computed by the model: direct {computed['direct']}, direct-save-on-switch "
        f"{computed['direct-save-on-switch']} -> {agree}.\n")
    return ExerciseAnswer(computed, expected, distinct, writes["direct"], held, text)


def posed_scenario(scenario, overrides):
    """The exercise posed on ``scenario`` (None: its own) with ``overrides``."""
    return resolve(exercise_scenario() if scenario is None else scenario, overrides)


def _posed_answer(computed, expected, held, writes, ws, slots) -> str:
    """The answer to the exercise posed on another scenario."""
    d, s = EXERCISE_DESIGNS
    text = (f"Answer for this scenario, computed by the model: {d} {computed[d]}, {s} "
            f"{computed[s]} hardware misses in the {EXERCISE_ACCESSES} accesses after vcpu_load "
            f"#{EXERCISE_RESUME}.")
    if None in expected.values():
        pages = f" of its {ws}-page working set" if ws else ""
        text += (f" The hand derivation does not apply here: it needs a 440 whose vCPU holds "
                 f"its whole working set at vcpu_put (here {held[d]} entries{pages}) and a "
                 f"window of user accesses only (no guest kernel at work: its pages fault in, "
                 f"or an interrupt).")
    else:
        agree = "they agree" if computed == expected else "THEY DISAGREE"
        text += (f" The hand derivation applies (the vCPU held {held[d]} entries at vcpu_put, "
                 f"its {ws} pages and its guest kernel's, and {d}'s _tlbia() invalidated all "
                 f"{slots} round-robin slots; the host made {writes[d]:,} writes besides): "
                 f"{d} {expected[d]} (the distinct pages among the accesses), {s} 0 -> {agree}.")
    return textwrap.fill(text, 84, break_on_hyphens=False) + "\n"

"""The exercise ``repopulation``: the misses after a host burst, by hand and by the model.

:func:`exercise_text` asks how many hardware TLB misses a vCPU takes after a
host task swept the TLB while it was descheduled, under two KVM designs; the
seed chooses the working set, the host task's pages and the accesses counted
(:func:`problem`; seed 1 is the exercise as first published);
:func:`solve_exercise` derives the answer by hand from premises it checks in
the model, and counts it with the same machinery as ``emu explain``
(:mod:`emu.teach.narrator`).
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field

from emu.errors import EmuError
from emu.guest.os import KERNEL_BASE
from emu.params import apply_overrides, scenario_from_dict
from emu.params.load import data_to_toml
from emu.run import resolve
from emu.teach.lessons import Answer, check_seed, draw, verdict
from emu.teach.locate import locate
from emu.teach.narrator import build_machine, narrate
from emu.workload.traces.source import check_pipe_traces

try:
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10 and older
    import tomli as tomllib  # type: ignore[no-redef]

SUMMARY = "the misses after a host task ran, under direct and direct-save-on-switch"

#: The exercise's scenario, as a TOML file (the default scenario's machine and KVM
#: design; a data-only guest working set and a host task that sweeps pages).  The
#: short scheduler periods only make the resumes come sooner, so that the reference
#: backend gets there quickly.
EXERCISE_TEMPLATE = """\
name = "exercise"
seed = {seed}

[costs]
sched_latency_us = 800
sched_min_granularity_us = 200

[[vm]]
[[vm.process]]
workload = {{ kind = "working-set", pages = {pages}, inst_fraction = 0.0 }}

[[host_task]]
name = "sweeper"
run_us = 200
sleep_us = 300
workload = {{ kind = "sweep", pages = {host_pages}, inst_fraction = 0.0 }}
"""
EXERCISE_PAGES = 24
EXERCISE_RESUME = 5
EXERCISE_ACCESSES = 200
EXERCISE_DESIGNS = ("direct", "direct-save-on-switch")


@dataclass(frozen=True)
class Problem:
    """The exercise of ``seed``: a working set of ``pages``, a host task sweeping
    ``host_pages``, and the ``accesses`` counted after vcpu_load #5."""

    seed: int
    pages: int = EXERCISE_PAGES
    host_pages: int = 100
    accesses: int = EXERCISE_ACCESSES


def problem(seed: int) -> Problem:
    """Seed 1 is the exercise as first published (24 pages, 100 host pages, 200
    accesses); another seed draws its own numbers, and is the scenario's seed."""
    if check_seed(seed) == 1:
        return Problem(1)
    r = draw("repopulation", seed)
    return Problem(seed, r.randint(8, 24), r.randrange(64, 193, 4), r.randrange(150, 301, 10))


def exercise_toml(p: Problem) -> str:
    """The scenario of problem ``p``, as a TOML file."""
    return EXERCISE_TEMPLATE.format(seed=p.seed, pages=p.pages, host_pages=p.host_pages)


def scenario_dict(seed: int, pages: int, host_pages: int) -> dict:
    """The exercise's scenario (TOML shape) with these numbers."""
    return tomllib.loads(EXERCISE_TEMPLATE.format(seed=seed, pages=pages, host_pages=host_pages))


EXERCISE_TOML = exercise_toml(Problem(1))


def exercise_scenario(p: Problem | None = None):
    """The exercise's scenario (a :class:`~emu.params.Scenario`; default: seed 1's)."""
    return scenario_from_dict(tomllib.loads(exercise_toml(p or Problem(1))))


def question(p: Problem) -> str:
    """The exercise ``p`` as ``emu explain --exercise`` prints it."""
    return exercise_text(seed=p.seed)


def _posed(sc, p: Problem) -> tuple[Problem, int, list]:
    """The exercise ``p`` posed on scenario ``sc``: (its numbers there, its hwater,
    the premises of the question that ``sc`` does not have)."""
    work = sc.vms[0].processes[0].workload
    hosts = sc.host_tasks
    posed = Problem(p.seed, work.pages or 0, hosts[0].workload.pages or 0 if hosts else 0,
                    p.accesses)
    unlike = [what for what, differs in (
        (f"an {sc.machine.core} core", sc.machine.core != "440"),
        ("a first guest process other than a uniform working set of data pages",
         (work.kind, work.distribution, work.inst_fraction) != ("working-set", "uniform", 0)),
        ("a pfn source other than the pfn cache", sc.kvm.pfn_source != "pfn-cache"),
        ("no host task", not hosts),
        ("a host task that does not sweep", bool(hosts) and hosts[0].workload.kind != "sweep"),
    ) if differs]
    return posed, sc.machine.hwater, unlike


def exercise_text(scenario=None, overrides=(), seed: int = 1) -> str:
    """The exercise as printed by ``emu explain --exercise``: the question and its
    scenario.  Posed on ``scenario`` (a TOML path; default: the exercise's own)
    with ``overrides``, the question has that scenario's numbers (its working
    set, its host task's pages, its hwater), the scenario printed is the
    exercise's own with ``overrides`` applied, and its last part says on what,
    and which premises of the question that scenario does not have."""
    prose, toml = exercise_parts(scenario, overrides, seed)
    return prose + "\n" + toml if toml else prose


def exercise_parts(scenario=None, overrides=(), seed: int = 1) -> tuple:
    """:func:`exercise_text` in its two parts: the prose (paragraphs, which
    ``emu explain`` fits to the terminal) and the scenario's TOML ("" when it
    is posed on a file), which is printed as it is, to be saved."""
    p, hwater, unlike = problem(seed), 62, []
    posed = scenario is not None or bool(overrides)
    if posed:
        p, hwater, unlike = _posed(posed_scenario(scenario, overrides, seed), p)
    pinned = {62: "entry 63", 63: "no entry"}.get(hwater, f"entries {hwater + 1}..63")
    name = "Exercise." if seed == 1 else f"Exercise (repopulation, seed {seed}).\n"
    question = (
        f"{name}{' ' if seed == 1 else ''}A PowerPC 440 has a 64-entry TLB; Linux's round robin replaces entries\n"
        f"0..{hwater} (hwater {hwater}) and keeps {pinned} pinned for the host kernel. A guest process\n"
        f"uses a working set of {p.pages} data pages (uniform, no instruction fetches); after\n"
        f"warm-up its guest TLB and the pfn cache hold all {p.pages}, and so does the hardware\n"
        f"TLB (some of its guest kernel's entries too). While the vCPU is descheduled, a\n"
        f"host task sweeps {p.host_pages} pages (every access a new page, so every access misses and\n"
        "its handler writes the next round-robin slot). How many hardware TLB misses does\nthe "
        f"vCPU take in its first {p.accesses} accesses after it resumes (vcpu_load "
        f"#{EXERCISE_RESUME}) under\n`direct` (7924bd41's design: nothing saved, _tlbia() at "
        "vcpu_put)? Under\n`direct-save-on-switch` (save the vCPU's entries at vcpu_put, write "
        "them back at\nvcpu_load)? (Both here with the pfn cache, which neither kernel had: "
        "hypothetical\nmachines. The pfn source changes what a fill costs, not which accesses "
        "miss.)\n")
    if not posed:
        return question + (
            "\nThe scenario (save it as exercise.toml and explore with\n"
            f"`emu explain exercise.toml --resume {EXERCISE_RESUME} --accesses {p.accesses} "
            "--set kvm.strategy=direct`):\n"), exercise_toml(p)
    on = f"the scenario {scenario}" if scenario is not None else "the exercise's scenario below"
    sets = " with" + "".join(f" --set {o}" for o in overrides) if overrides else ""
    listed = ", ".join(unlike[:-1]) + " and " * (len(unlike) > 1) + "".join(unlike[-1:])
    premises = f", but it has {listed}, which the question does not describe" if unlike else ""
    if hwater != 62:                    # longer lines: the question is filled again
        first, _, rest = question.partition("\n") if seed != 1 else ("", "", question)
        question = first + "\n" * (seed != 1) + textwrap.fill(
            " ".join(rest.split()), 84, break_on_hyphens=False) + "\n"
    text = question + "\n" + textwrap.fill(
        f"Posed here on {on}{sets}: the numbers above are this scenario's{premises}; --solve "
        f"counts its misses.", 84, break_on_hyphens=False) + "\n"
    if scenario is not None:
        return text, ""
    own = problem(seed)
    data = scenario_dict(seed, own.pages, own.host_pages)
    return text, data_to_toml(apply_overrides(data, overrides))


@dataclass
class ExerciseAnswer(Answer):
    """The exercise's answer, by hand (``expected``: design -> misses, None where
    a premise failed) and by the model (``computed``), with the premises it checked."""

    distinct_pages: int = 0     # distinct pages among the window's accesses (the stream)
    host_writes: int = 0        # the host task's tlbwe while the vCPU was away (direct)
    held_at_put: dict = field(default_factory=dict)   # design -> the vCPU's entries then


def solve(p: Problem) -> ExerciseAnswer:
    """The answer to exercise ``p``."""
    return solve_exercise(seed=p.seed)


def solve_exercise(scenario=None, overrides=(), seed: int = 1) -> ExerciseAnswer:
    """Run the exercise of ``seed`` under both designs; derive the answer from its premises.

    ``scenario`` (a Scenario, dict or TOML path; default: the exercise's own)
    and ``overrides`` pose it on another scenario: the model counts that
    one's misses, and the hand derivation is given where its premises hold.
    """
    p = problem(seed)
    posed = scenario is not None or bool(overrides)
    base = exercise_scenario(p) if scenario is None else scenario
    # each design's run is located on the compiled backend, then told
    check_pipe_traces([resolve(base, list(overrides) + [f"kvm.strategy={design}"])
                       for design in EXERCISE_DESIGNS for _ in range(2)])
    computed, held, writes, distinct, kernel = {}, {}, {}, 0, False
    for design in EXERCISE_DESIGNS:
        over = list(overrides) + [f"kvm.strategy={design}"]
        machine = build_machine(base, over)
        try:                                   # the compiled backend says at once if not
            locate(base, over, EXERCISE_RESUME)
            nar = narrate(machine, machine.vcpus[0], EXERCISE_RESUME, p.accesses, quiet=True)
            reached = len(nar.accesses) == p.accesses and nar.away_history
        except EmuError:
            reached = False
        if not reached:
            raise EmuError(f"{'' if posed else 'internal: '}the exercise's window (the "
                           f"{p.accesses} accesses after vcpu_load #{EXERCISE_RESUME}, "
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
    facts = dict(distinct_pages=distinct, host_writes=writes["direct"], held_at_put=held)
    if posed:
        return ExerciseAnswer(expected, computed, _posed_answer(p, computed, expected, held,
                                                                writes, ws, slots), **facts)
    w, a = p.pages, p.accesses
    left_out = ((w - 1) / w) ** a
    text = (
        f"Answer (by hand). When it was put under `direct`, the vCPU held\n"
        f"{_held(held['direct'], w)}. Its vcpu_put runs _tlbia(), which invalidates\nevery "
        "index 0..62, "
        "every slot a guest entry can occupy: none survives the put.\n(Without that flush none "
        "would survive either: the sweep misses on every access\nand each miss writes the "
        "round-robin slot after the previous one, so 63\nconsecutive writes cover 0..62; the host "
        f"task made {writes['direct']:,} writes before the vCPU\nresumed.) The guest TLB and the "
        f"pfn cache still hold the {w} pages, so each page\nmisses exactly once, on its first "
        "touch after the resume: the miss handler refills\nit into the next round-robin slot, "
        f"one the host used ({w} fills never wrap round to\nthe vCPU's new entries); the window "
        "holds no guest kernel access (no interrupt).\nMisses = distinct pages among the "
        f"{a} accesses; counted from the access stream: {distinct}.\n(All {w} are likely: a "
        f"given page is left out with probability ({w - 1}/{w})^{a} = "
        f"{100 * left_out:.2f} %,\nsome page with about {100 * w * left_out:.1f} %.)\n"
        "Under `direct-save-on-switch`, vcpu_put saved the vCPU's\n"
        f"{_held(held['direct-save-on-switch'], w)}, and vcpu_load wrote\nthem back at their "
        "indices, over the host's: 0 misses.\n"
        f"Hand-derived: direct {expected['direct']}, direct-save-on-switch "
        f"{expected['direct-save-on-switch']}.\n"
        f"Computed by the model: direct {computed['direct']}, direct-save-on-switch "
        f"{computed['direct-save-on-switch']} -> {verdict(expected, computed)}.\n")
    return ExerciseAnswer(expected, computed, text, **facts)


def posed_scenario(scenario, overrides, seed: int = 1):
    """The exercise of ``seed`` posed on ``scenario`` (None: its own) with ``overrides``."""
    return resolve(exercise_scenario(problem(seed)) if scenario is None else scenario, overrides)


def _held(entries: int, pages: int) -> str:
    """The hardware TLB entries a vCPU held, ``pages`` of them its working set's
    (the premise: it held them all) and the rest its guest kernel's."""
    kernel = entries - pages
    rest = f" and {kernel} of its guest kernel's" if kernel else ""
    return f"{entries} hardware TLB entries: its {pages} pages{rest}"


def _posed_answer(p: Problem, computed, expected, held, writes, ws, slots) -> str:
    """The answer to the exercise ``p`` posed on another scenario."""
    d, s = EXERCISE_DESIGNS
    text = (f"Answer for this scenario, computed by the model: {d} {computed[d]}, {s} "
            f"{computed[s]} hardware misses in the {p.accesses} accesses after vcpu_load "
            f"#{EXERCISE_RESUME}.")
    if None in expected.values():
        pages = f" of its {ws}-page working set" if ws else ""
        text += (f" The hand derivation does not apply here: it needs a 440 whose vCPU holds "
                 f"its whole working set at vcpu_put (here {held[d]} entries{pages}) and a "
                 f"window of user accesses only (no guest kernel at work: its pages fault in, "
                 f"or an interrupt).")
    else:
        agree = verdict(expected, computed)
        text += (f" The hand derivation applies (the vCPU held {_held(held[d], ws)} at "
                 f"vcpu_put, and {d}'s _tlbia() invalidated all "
                 f"{slots} round-robin slots; the host made {writes[d]:,} writes besides): "
                 f"{d} {expected[d]} (the distinct pages among the accesses), {s} 0 -> {agree}.")
    return textwrap.fill(text, 84, break_on_hyphens=False) + "\n"

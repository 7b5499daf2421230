#!/usr/bin/env python3
"""Reproduce the published effects of the KVM-440 commits on a boot-like guest.

    python tools/calibrate.py                                 # default costs: PASS or FAIL
    python tools/calibrate.py --seeds 1 2 3 --intensity 0.5:2:5   # seeds x intensity table
    python tools/calibrate.py --fit                           # fit the two exit-path costs

Five runs of ``scenarios/boot_like.toml`` at equal work (``sim.guest_accesses``),
the historical C handler and get_user_pages (docs/calibration.md):

====  ================================  =====================
run   design / TID era                  kernel
====  ================================  =====================
A     shadow / guest-tid                2.6.26 (bbf45ba5)
B     shadow-modified / guest-tid       83aae4a8
C     shadow-modified / swap-pid        49dd2c49
D     shadow-modified / tid01           2.6.28
E     direct / tid01                    7924bd41
====  ================================  =====================

The effects, with T the time to complete the work (``time_to_work_cycles``):

* e1 = 1 - T_B / T_A, 83aae4a8's "about 15%" faster guest boot (accepted 7.5-30 %);
* e2 = 1 - T_C / T_B, 49dd2c49's "about 30%" (accepted 15-60 %);
* e3, 7924bd41's claim: every lightweight exit category present in both D and E
  is cheaper on average under E, and E takes more hardware TLB misses per
  guest access;
* plausibility: E's busy time over the guest's native work in [1.5, 5] (3-5x is
  what trap-and-emulate costs kernel-heavy work on embedded Power,
  docs/kvm440.md §3.1); native work = the guest's own cycles (its accesses,
  kernel and handler work) + one cycle per emulated instruction; busy time =
  T_E less the idle time (the I/O waits a native run waits too).

The intensity ``k`` divides the workload's ``syscall_every``, ``sleep_every``
and ``lifetime_accesses`` (more system calls, I/O waits and process starts per
access).  ``--fit`` fits s (the effective CPI of KVM's exit path: it
multiplies the instruction counts of the costs in :data:`SCALED`) and g
(``gfn_to_pfn``) to e1 and e2 at seed 1, k = 1, 400,000 accesses, among the
points where direct stays inside the band: a coarse grid, then alternating
bisection in log space (s on e1, g on e2); ``--ranges S G`` scans where the
effects hold.  Runs take seconds each; the fit, a few minutes on an idle
machine.  Bad input: one line, exit status 2.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from dataclasses import dataclass

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from emu.errors import EmuError  # noqa: E402
from emu.params import load_scenario  # noqa: E402
from emu.run.scenario import run  # noqa: E402

SCENARIO = os.path.join(os.path.dirname(HERE), "scenarios", "boot_like.toml")

#: The runs: name -> (kvm.strategy, kvm.tid_scheme, the kernel that shipped it).
RUNS = {
    "A": ("shadow", "guest-tid", "2.6.26"),
    "B": ("shadow-modified", "guest-tid", "83aae4a8"),
    "C": ("shadow-modified", "swap-pid", "49dd2c49"),
    "D": ("shadow-modified", "tid01", "2.6.28"),
    "E": ("direct", "tid01", "7924bd41"),
}
#: Published effects: name -> (target, accepted low, accepted high, commit).
TARGETS = {"e1": (0.15, 0.075, 0.30, "83aae4a8"), "e2": (0.30, 0.15, 0.60, "49dd2c49")}
#: The plausibility band of T_E over the guest's native work.
BAND = (1.5, 5.0)
#: Exit categories that are not lightweight: the heavyweight exit to QEMU, the
#: wait (its time is the blocked time) and the time in the guest.
NOT_LIGHT = ("MMIO", "EMUL_WAIT", "TIMEINGUEST")
#: The instruction-count estimates of KVM's exit path that s multiplies.
SCALED = ("exit_light", "c_full_exit", "c_restore", "deferred_c_path", "deliver_interrupt",
          "exit_heavy_extra", "emulate_instruction", "emul_tlbwe", "emul_tlbsx")
#: Their instruction counts at CPI 1 (the defaults before the fit).
BASE = {"exit_light": 204, "c_full_exit": 125, "c_restore": 113, "deferred_c_path": 115,
        "deliver_interrupt": 60, "exit_heavy_extra": 1200,
        "emulate_instruction": 70, "emul_tlbwe": 300, "emul_tlbsx": 30}
#: The workload keys the intensity divides.
INTENSITY_KEYS = ("syscall_every", "sleep_every", "lifetime_accesses")
#: The fit's coarse grid and its ranges (docs/calibration.md).
S_GRID = (1, 1.5, 2, 3, 4, 6, 8, 12)
G_GRID = (300, 600, 1200, 2400, 4800, 9600, 19200)
TOLERANCE = 0.02
MAX_STEPS = 20
DEFAULT_ACCESSES = 1_000_000
#: The fit's run length: the defaults of emu/costs.py are its result at this length.
FIT_ACCESSES = 400_000


def scaled_costs(s: float, g: int) -> dict:
    """The cost overrides of a fit point: each of :data:`SCALED` at its
    instruction count times ``s``, and ``gfn_to_pfn`` = ``g``."""
    costs = {name: max(1, round(BASE[name] * s)) for name in SCALED}
    costs["gfn_to_pfn"] = int(g)
    return costs


def scenario_overrides(run_name: str, seed: int, k: float, accesses: int) -> list:
    """The ``--set`` overrides of one run of the boot-like scenario."""
    strategy, scheme, _ = RUNS[run_name]
    base = load_scenario(SCENARIO)
    sets = [f"kvm.strategy={strategy}", f"kvm.tid_scheme={scheme}", "kvm.handler=c",
            "kvm.pfn_source=gup", f"seed={seed}", f"sim.guest_accesses={accesses}"]
    for v, vm in enumerate(base.vms):
        for p, proc in enumerate(vm.processes):
            for key in INTENSITY_KEYS:
                value = getattr(proc.workload, key)
                if value:
                    sets.append(f"vm.{v}.process.{p}.workload.{key}={max(1, round(value / k))}")
    return sets


def run_one(run_name: str, seed: int, k: float, accesses: int, costs: dict | None) -> dict:
    """The summary of one run (``costs``: overrides of the cost table, or None)."""
    sets = scenario_overrides(run_name, seed, k, accesses)
    sets += [f"costs.{name}={value}" for name, value in sorted((costs or {}).items())]
    return run(SCENARIO, sets).summary


def native_cycles(summary: dict) -> int:
    """The guest's native work: its own cycles plus one per emulated instruction."""
    emulated = sum(v["count"] for c, v in summary["exits"].items()
                   if c == "EMULINST" or (c.startswith("EMUL_") and c != "EMUL_WAIT"))
    return summary["cycles"]["guest"] + emulated


def light_means(summary: dict) -> dict:
    """Mean exact cycles of each lightweight exit category that occurred."""
    return {c: v["sum"] / v["count"] for c, v in summary["exits"].items()
            if c not in NOT_LIGHT and v["count"]}


@dataclass
class Effects:
    """The measured effects of one seed and intensity."""

    e1: float
    e2: float
    dearer: list            #: lightweight categories not cheaper under E than D
    misses_d: float         #: hardware TLB misses per guest access, D
    misses_e: float         #: ... and E
    ratio: float            #: E's busy time over the native work

    @property
    def e3(self) -> bool:
        return not self.dearer and self.misses_e > self.misses_d

    def holds(self) -> dict:
        """Which effects hold: e1, e2, e3, band."""
        return {"e1": TARGETS["e1"][1] <= self.e1 <= TARGETS["e1"][2],
                "e2": TARGETS["e2"][1] <= self.e2 <= TARGETS["e2"][2],
                "e3": self.e3, "band": BAND[0] <= self.ratio <= BAND[1]}

    @property
    def ok(self) -> bool:
        return all(self.holds().values())


def misses_per_access(summary: dict) -> float:
    return summary["tlb"]["guest"]["misses"] / summary["guest_accesses"]


def effects_of(runs: dict) -> Effects:
    """The effects from the summaries of runs A-E."""
    t = {name: s["time_to_work_cycles"] for name, s in runs.items()}
    d, e = runs["D"], runs["E"]
    md, me = light_means(d), light_means(e)
    dearer = sorted(c for c in md.keys() & me.keys() if not me[c] < md[c])
    return Effects(1 - t["B"] / t["A"], 1 - t["C"] / t["B"], dearer,
                   misses_per_access(d), misses_per_access(e), band_ratio(e))


def band_ratio(summary: dict) -> float:
    """The run's busy time (the time to the work less the idle time) over the
    guest's native work."""
    busy = summary["time_to_work_cycles"] - summary["cycles"]["idle"]
    return busy / native_cycles(summary)


def measure(seed: int = 1, k: float = 1.0, accesses: int = DEFAULT_ACCESSES,
            costs: dict | None = None) -> Effects:
    """Run A-E of the boot-like scenario and return their effects."""
    return effects_of({name: run_one(name, seed, k, accesses, costs) for name in RUNS})


def fit_point(seed: int, k: float, accesses: int, costs: dict) -> tuple[float, float, bool]:
    """(e1, e2, whether direct is inside the band): runs A, B, C and E."""
    runs = {name: run_one(name, seed, k, accesses, costs) for name in "ABCE"}
    t = {name: s["time_to_work_cycles"] for name, s in runs.items()}
    return 1 - t["B"] / t["A"], 1 - t["C"] / t["B"], BAND[0] <= band_ratio(runs["E"]) <= BAND[1]


# -- the fit ---------------------------------------------------------------------------------

def objective(e1: float, e2: float) -> float:
    """J = ln(e1/0.15)^2 + ln(e2/0.30)^2, infinite when an effect is not positive."""
    if e1 <= 0 or e2 <= 0:
        return math.inf
    return math.log(e1 / TARGETS["e1"][0]) ** 2 + math.log(e2 / TARGETS["e2"][0]) ** 2


def _off(effect: float, target: float) -> float:
    """|ln(effect / target)|, infinite when the effect is not positive."""
    return abs(math.log(effect / target)) if effect > 0 else math.inf


def _bracket(grid, value):
    i = grid.index(value)
    return grid[max(0, i - 1)], grid[min(len(grid) - 1, i + 1)]


def fit(effects, s_grid=S_GRID, g_grid=G_GRID, tolerance=TOLERANCE, max_steps=MAX_STEPS):
    """Fit (s, g) so that ``effects(s, g)`` = (e1, e2, plausible) meets the targets.

    ``effects`` must make e1 fall as s grows and e2 rise as g grows, and
    ``plausible`` (direct inside the band) hold below some s and g.  Only
    plausible points count: the workload must stay plausible, the costs are
    not bent to it.  First the plausible grid point of least
    :func:`objective`, then alternating bisection in log space inside the
    grid neighbours of that point: s on e1 (g fixed), then g on e2 (s fixed);
    an implausible midpoint lowers the upper end of its bracket.  It stops
    when both ``|ln(e/target)| < tolerance`` or after ``max_steps`` steps.
    Returns (s, g, e1, e2, steps) of the plausible point of least objective
    met; (None, None, None, None, 0) when no grid point is plausible.
    """
    grid = {(s, g): effects(s, g) for s in s_grid for g in g_grid}
    seen = {p: r[:2] for p, r in grid.items() if r[2]}
    if not seen:
        return None, None, None, None, 0
    point = list(min(seen, key=lambda p: (objective(*seen[p]), p)))
    e = list(seen[tuple(point)])
    # per parameter: its bracket, and whether its effect falls as it grows
    brackets = [list(_bracket(list(s_grid), point[0])), list(_bracket(list(g_grid), point[1]))]
    falls = (True, False)
    targets = (TARGETS["e1"][0], TARGETS["e2"][0])
    steps = 0
    while steps < max_steps and max(_off(e[i], targets[i]) for i in (0, 1)) >= tolerance:
        steps += 1
        for i in (0, 1):
            if _off(e[i], targets[i]) < tolerance:
                continue
            lo, hi = brackets[i]
            trial = list(point)
            trial[i] = math.sqrt(lo * hi)
            e1, e2, plausible = effects(*trial)
            if not plausible:
                brackets[i][1] = trial[i]
                continue
            point, e = trial, [e1, e2]
            seen[tuple(point)] = (e1, e2)
            brackets[i][0 if (e[i] > targets[i]) == falls[i] else 1] = point[i]
    s, g = min(seen, key=lambda p: (objective(*seen[p]), p))
    e1, e2 = seen[(s, g)]
    return s, g, e1, e2, steps


def holding_range(values, costs_of, accesses: int = DEFAULT_ACCESSES) -> tuple:
    """The smallest and largest of ``values`` (ascending, one of them the fitted
    value) over which every effect and the band hold at seed 1, k = 1, with the
    costs ``costs_of(value)``: the contiguous run of holding values around the
    middle one.  (None, None) when the middle one fails."""
    ok = [measure(1, 1.0, accesses, costs_of(v)).ok for v in values]
    mid = len(values) // 2
    if not ok[mid]:
        return None, None
    lo = hi = mid
    while lo > 0 and ok[lo - 1]:
        lo -= 1
    while hi < len(values) - 1 and ok[hi + 1]:
        hi += 1
    return values[lo], values[hi]


def ranges(s: float, g: float, accesses: int = DEFAULT_ACCESSES) -> tuple:
    """((s_lo, s_hi), (g_lo, g_hi)): how far s (g fixed) and g (s fixed) may move
    from the fit, in steps of 2**(1/4) up to 4x either way, with every effect
    and the band still holding."""
    steps = [2 ** (i / 4) for i in range(-8, 9)]
    s_values = [s * f for f in steps]
    g_values = [g * f for f in steps]
    return (holding_range(s_values, lambda v: scaled_costs(v, g), accesses),
            holding_range(g_values, lambda v: scaled_costs(s, v), accesses))


# -- reports ---------------------------------------------------------------------------------

def _mark(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def report(eff: Effects) -> str:
    """The three effects and the band, each with its bounds and PASS/FAIL."""
    h = eff.holds()
    lines = []
    for name in ("e1", "e2"):
        target, lo, hi, commit = TARGETS[name]
        lines.append(f"{name} ({commit}): {100 * getattr(eff, name):5.1f} %   published "
                     f"{100 * target:.0f} %, accepted {100 * lo:g}-{100 * hi:g} %   "
                     f"{_mark(h[name])}")
    why = "every lightweight exit category cheaper under direct" if not eff.dearer else \
        "not cheaper under direct: " + ", ".join(eff.dearer)
    lines.append(f"e3 (7924bd41): {why}; hardware TLB misses per guest access "
                 f"{eff.misses_d:.5f} (2.6.28) -> {eff.misses_e:.5f} (7924bd41)   "
                 f"{_mark(eff.e3)}")
    lines.append(f"plausibility: direct at {eff.ratio:.2f}x the guest's native work, "
                 f"accepted {BAND[0]:g}-{BAND[1]:g}x   {_mark(h['band'])}")
    lines.append(_mark(eff.ok))
    return "\n".join(lines)


def intensities(text: str) -> list:
    """``LO:HI:N`` as N intensities spaced geometrically from LO to HI."""
    parts = text.split(":")
    try:
        lo, hi, n = float(parts[0]), float(parts[1]), int(parts[2])
        if len(parts) != 3:
            raise ValueError
    except (ValueError, IndexError):
        raise argparse.ArgumentTypeError(
            f"expected LO:HI:N such as 0.5:2:5, got '{text}'") from None
    if not (0 < lo <= hi) or not math.isfinite(hi) or n < 1 or (n == 1 and lo != hi):
        raise argparse.ArgumentTypeError(
            f"expected 0 < LO <= HI and N >= 1 (N = 1 only when LO = HI), "
            f"got '{text}'")
    if n == 1:
        return [lo]
    return [lo * (hi / lo) ** (i / (n - 1)) for i in range(n)]


def table(seeds, ks, accesses) -> tuple:
    """The effects over seeds x intensities, as text, and the k range where all hold."""
    lines = [f"{'seed':>4} {'k':>6} {'e1 %':>6} {'e2 %':>6} {'e3':>4} {'ratio':>6}  all"]
    good = []
    for k in ks:
        all_ok = True
        for seed in seeds:
            eff = measure(seed, k, accesses)
            failed = [name for name, ok in eff.holds().items() if not ok]
            all_ok &= eff.ok
            verdict = "FAIL (" + ", ".join(failed) + ")" if failed else "PASS"
            lines.append(f"{seed:>4} {k:>6.3g} {100 * eff.e1:>6.1f} {100 * eff.e2:>6.1f} "
                         f"{'yes' if eff.e3 else 'no':>4} {eff.ratio:>6.2f}  {verdict}")
        if all_ok:
            good.append(k)
    if good:
        # the widest run of consecutive intensities at which everything held
        runs, run = [], []
        for k in ks:
            run = run + [k] if k in good else []
            runs.append(run)
        widest = max(runs, key=len)
        lines.append(f"all effects and the band hold for k = {widest[0]:.3g} .. {widest[-1]:.3g} "
                     f"({len(good)} of {len(ks)} intensities, seeds {' '.join(map(str, seeds))})")
        missed = [f"{k:.3g}" for k in ks if k not in good]
        if missed:
            lines.append(f"not at k = {', '.join(missed)} (see the rows marked FAIL)")
    else:
        lines.append("no intensity at which every effect and the band hold for every seed")
    return "\n".join(lines), good


def cost_sources(s: float, g: int, e1: float, e2: float) -> str:
    """The source texts of the fitted costs, to write into emu/costs.py."""
    fitted = (f"fitted jointly with gfn_to_pfn to 83aae4a8's 15 % and 49dd2c49's 30 % on "
              f"scenarios/boot_like.toml (seed 1, k = 1, tools/calibrate.py --fit); residuals "
              f"e1 = {100 * e1:.1f} %, e2 = {100 * e2:.1f} %")
    lines = [f"s = {s:.3f}, g = {round(g)}"]
    for name, value in scaled_costs(s, g).items():
        if name == "gfn_to_pfn":
            lines.append(f"{name} = {value}: fitted: get_user_pages on a present page, fitted "
                         f"jointly with s = {s:.2f} to 83aae4a8's 15 % and 49dd2c49's 30 % "
                         f"on scenarios/boot_like.toml (seed 1, k = 1); residuals e1 = "
                         f"{100 * e1:.1f} %, e2 = {100 * e2:.1f} %")
        else:
            lines.append(f"{name} = {value}: fitted: {BASE[name]} instructions x s = {s:.2f}, "
                         f"s {fitted}")
    return "\n".join(lines)


def _at_fit(s: float, g: float, accesses: int) -> int:
    """Print the effects at (s, g) and the ranges over which they hold."""
    eff = measure(1, 1.0, accesses, scaled_costs(s, g))
    print(report(eff))
    (s_lo, s_hi), (g_lo, g_hi) = ranges(s, g, accesses)
    if s_lo is None:
        print("the effects do not all hold at this point: no range")
        return 1
    print(f"they hold for s = {s_lo:.3f} .. {s_hi:.3f} (gfn_to_pfn = {round(g)}) and "
          f"gfn_to_pfn = {round(g_lo)} .. {round(g_hi)} (s = {s:.3f}); scanned 4x either way")
    for name in SCALED:
        print(f"  {name}: {max(1, round(BASE[name] * s_lo))} .. "
              f"{max(1, round(BASE[name] * s_hi))}")
    return 0 if eff.ok else 1


class _Parser(argparse.ArgumentParser):
    """Bad input is one line on stderr and exit status 2, without the usage."""

    def error(self, message):
        self.exit(2, f"tools/calibrate.py: {message}\n")


def main(argv=None) -> int:
    ap = _Parser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1], help="seeds (default: 1)")
    ap.add_argument("--intensity", type=intensities, default=None, metavar="LO:HI:N",
                    help="intensities k, N of them spaced geometrically from LO to HI")
    ap.add_argument("--accesses", type=int, default=None,
                    help=f"guest accesses per run (default {DEFAULT_ACCESSES:,}; "
                         f"{FIT_ACCESSES:,} for --fit)")
    ap.add_argument("--fit", action="store_true", help="fit s and gfn_to_pfn (seed 1, k = 1)")
    ap.add_argument("--ranges", type=float, nargs=2, metavar=("S", "G"), default=None,
                    help="the effects at s = S, gfn_to_pfn = G, and the ranges of s and of "
                         "gfn_to_pfn over which they hold")
    try:
        args = ap.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    if args.accesses is None:
        args.accesses = FIT_ACCESSES if args.fit else DEFAULT_ACCESSES
    if args.accesses < 1:
        print(f"tools/calibrate.py: --accesses: expected a whole number >= 1, got "
              f"{args.accesses}", file=sys.stderr)
        return 2
    if any(s < 0 for s in args.seeds):
        print("tools/calibrate.py: --seeds: expected seeds >= 0", file=sys.stderr)
        return 2
    try:
        if args.fit:
            s, g, e1, e2, steps = fit(
                lambda s, g: fit_point(1, 1.0, args.accesses, scaled_costs(s, g)))
            if s is None:
                print("no point of the grid keeps direct inside the band: adjust the workload")
                return 1
            print(f"fit after {steps} bisection steps: e1 = {100 * e1:.2f} %, "
                  f"e2 = {100 * e2:.2f} %")
            print(cost_sources(s, g, e1, e2))
            return _at_fit(s, g, args.accesses)
        if args.ranges is not None:
            return _at_fit(args.ranges[0], args.ranges[1], args.accesses)
        if args.intensity is None and args.seeds == [1]:
            eff = measure(1, 1.0, args.accesses)
            print(report(eff))
            return 0 if eff.ok else 1
        text, good = table(args.seeds, args.intensity or [1.0], args.accesses)
        print(text)
        return 0 if good else 1
    except EmuError as err:
        print(f"tools/calibrate.py: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

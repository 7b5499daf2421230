"""Make the README's figures: docs/figures/{repopulation,cycles,occupancy,fastpath_profile}.png.

Runs the built-in default scenario (one 440 CPU shared by a one-vCPU guest
and a host task) for 20 ms under the default comparison of ``emu run`` (the
440 designs as KVM shipped them, each labelled with its commit, next to the
proposal; emu/run/designs.py), the direct run of 7924bd41 with its TLB
occupancy timeline recorded, and writes four PNGs at about 100 dpi (small
enough to commit):

- ``repopulation.png``: TLB misses per resume at each guest access after
  vcpu_load, and their running sum;
- ``cycles.png``: where the CPU time goes, and each design's overhead per
  guest access;
- ``occupancy.png``: who owns each hardware TLB entry over time under direct
  (7924bd41);
- ``fastpath_profile.png``: the miss handler's steps per guest TLB miss, the
  TLB restore per guest entry and gfn_to_pfn per call.

Usage::

    python tools/make_readme_figures.py [--out-dir docs/figures] [--duration-ms 20]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: The row of the default comparison whose TLB occupancy is drawn.
TIMELINE_DESIGN = {"kvm.strategy": "direct", "kvm.handler": "c", "kvm.pfn_source": "gup"}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--out-dir", default=os.path.join(ROOT, "docs", "figures"))
    parser.add_argument("--duration-ms", type=float, default=20)
    parser.add_argument("--dpi", type=int, default=100)
    args = parser.parse_args(argv)

    sys.path.insert(0, ROOT)
    from emu.params import default_scenario
    from emu.report.plots import (cycle_breakdown, fastpath_profile, occupancy_timeline,
                                  repopulation_curve, save_figure)
    from emu.run import run
    from emu.run.designs import default_variants

    t0 = time.perf_counter()
    scenario = default_scenario()
    variants, overrides, _ = default_variants([f"duration_ms={args.duration_ms:g}"])
    results = []
    for v in variants:
        timeline = ["sim.timeline=true"] if v.values == TIMELINE_DESIGN else []
        results.append((v.label, run(scenario, v.overrides(overrides) + timeline)))
    runs = [(label, r.summary) for label, r in results]
    (direct,) = [r for v, (_, r) in zip(variants, results) if v.values == TIMELINE_DESIGN]

    png = ("png",)
    out = os.path.join(args.out_dir, "{}")
    paths = []
    paths += save_figure(repopulation_curve(runs), out.format("repopulation"), png, args.dpi)
    paths += save_figure(cycle_breakdown(runs), out.format("cycles"), png, args.dpi)
    paths += save_figure(occupancy_timeline(direct), out.format("occupancy"), png, args.dpi)
    paths += save_figure(fastpath_profile(runs), out.format("fastpath_profile"), png, args.dpi)
    for p in paths:
        print(f"{os.path.relpath(p, ROOT)}: {os.path.getsize(p):,} bytes")
    print(f"done in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

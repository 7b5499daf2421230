"""``emu run`` and ``emu compare``: one scenario, or one under several values of a key."""

from __future__ import annotations

from emu.cli.args import add_progress_option, add_set_option
from emu.params import default_scenario
from emu.report.plots import comparison_plots
from emu.report.text import format_comparison, format_run
from emu.run.comparison import compare, comparison_json, parse_vary, write_comparison
from emu.run.files import check_output_dir, dumps_json
from emu.run.progress import make_progress
from emu.run.scenario import run

#: What ``emu run`` without FILE compares on the default scenario.
DEFAULT_DESIGNS = ("shadow", "direct", "direct-save-on-switch")


def _scenario_args(p) -> None:
    add_set_option(p, "override a scenario key by its dotted path (repeatable), "
                      "e.g. kvm.strategy=shadow or vm.0.process.0.workload.pages=60")
    p.add_argument("--out", help="directory for summary.json and the tidy CSVs")
    p.add_argument("--json", action="store_true", help="print the JSON summary")
    add_progress_option(p, "progress on stderr (default: a bar on a terminal, a line every 5 s "
                           "otherwise)")


def add_run_parser(sub) -> None:
    """Add ``emu run [FILE]`` to the CLI's sub-parsers."""
    p = sub.add_parser("run", help="run a full-system scenario",
                       description="Run a scenario (TOML). Without FILE, runs the built-in "
                                   "default scenario under the shadow, direct and "
                                   "direct-save-on-switch designs and prints the comparison.")
    p.add_argument("scenario", nargs="?", help="scenario file (.toml)")
    _scenario_args(p)
    p.set_defaults(func=cmd_run)


def add_compare_parser(sub) -> None:
    """Add ``emu compare FILE --vary KEY=V1,V2,...`` to the CLI's sub-parsers."""
    p = sub.add_parser("compare", help="run a scenario under several values of a key",
                       description="Run FILE once per value of --vary and print the results "
                                   "side by side.")
    p.add_argument("scenario", help="scenario file (.toml)")
    p.add_argument("--vary", required=True, metavar="KEY=V1,V2,...",
                   help="e.g. kvm.strategy=shadow,direct,direct-save-on-switch")
    p.add_argument("--plots", action="store_true", help="also write the plots into --out")
    _scenario_args(p)
    p.set_defaults(func=cmd_compare)


def cmd_run(args) -> int:
    """Run ``emu run``: the scenario's summary (FILE), or the default comparison."""
    if args.out:
        check_output_dir(args.out, ["summary.json", "comparison.json"])
    if args.scenario is None:
        with make_progress(args.progress) as progress:
            runs = compare(default_scenario(), "kvm.strategy", list(DEFAULT_DESIGNS),
                           args.overrides, progress)
        if args.out:
            write_comparison(args.out, "kvm.strategy", runs)
        if args.json:
            print(dumps_json(comparison_json("kvm.strategy", runs)), end="")
        else:
            print(_default_banner(runs[0][1].summary))
            print(format_comparison([(v, r.summary) for v, r in runs]))
        return 0
    with make_progress(args.progress) as progress:
        result = run(args.scenario, args.overrides, progress)
    if args.out:
        result.write(args.out)
    print(result.json() if args.json else format_run(result.summary), end="" if args.json else "\n")
    return 0


def cmd_compare(args) -> int:
    """Run ``emu compare``: the runs side by side (or their JSON)."""
    key, values = parse_vary(args.vary)
    if args.out:
        check_output_dir(args.out, ["comparison.json"])
    with make_progress(args.progress) as progress:
        runs = compare(args.scenario, key, values, args.overrides, progress)
    if args.out:
        write_comparison(args.out, key, runs)
        if args.plots:
            comparison_plots(args.out, [(v, r.summary) for v, r in runs])
    if args.json:
        print(dumps_json(comparison_json(key, runs)), end="")
    else:
        print(format_comparison([(f"{key}={v}", r.summary) for v, r in runs]))
    return 0


def _default_banner(s) -> str:
    """What ``emu run`` without FILE says of the default scenario before its table."""
    cfg = s["config"]
    vm = cfg["vm"][0]
    wl = vm["process"][0]["workload"]
    host = cfg["host_task"][0] if cfg["host_task"] else None
    text = (f"Default scenario: one {cfg['machine']['core']} CPU at {cfg['machine']['clock_mhz']} MHz, "
            f"one VM (1 vCPU, a {wl['pages']}-page working set)")
    if host:
        text += (f" sharing the CPU with host task '{host['name']}' "
                 f"({host['workload']['pages']} pages, runs {host['run_us']:g} us every "
                 f"{host['run_us'] + host['sleep_us']:g} us)")
    warmup = cfg["sim"].get("warmup_ms", 0)
    counted = f", counted after a {warmup:g} ms warm-up" if warmup else ""
    return text + f", {cfg['duration_ms']:g} ms simulated{counted}.\n"

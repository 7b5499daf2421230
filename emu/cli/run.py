"""``emu run`` and ``emu compare``: one scenario, or one under several values of keys."""

from __future__ import annotations

from emu.cli.args import (add_out_options, add_progress_option, add_set_option, add_wide_option,
                          note_ignored_members, print_note, terminal_width)
from emu.errors import ConfigError
from emu.analysis.display import design_name
from emu.params import KeyUse, default_scenario
from emu.params.fields import dump
from emu.report.plots import comparison_plots
from emu.report.text import format_banner, format_comparison, format_run
from emu.report.reading import run_notes
from emu.run.comparison import (parse_vary, point_variants, run_variants, variant_folders,
                                vary_points)
from emu.run.designs import KEY, default_labels, default_table, default_variants
from emu.run.files import dumps_json
from emu.run.outdir import staged
from emu.run.progress import make_progress
from emu.run.scenario import resolve, run
from emu.workload.traces.source import trace_workloads


def _scenario_args(p, out_help: str) -> None:
    add_set_option(p, "override a scenario key by its dotted path (repeatable, each KEY once), "
                      "e.g. kvm.strategy=shadow or vm.0.process.0.workload.pages=60")
    add_out_options(p, out_help)
    p.add_argument("--json", action="store_true", help="print the JSON summary")
    add_wide_option(p)
    add_progress_option(p, "progress on stderr (default: a bar on a terminal, a line every 5 s "
                           "otherwise)")


def add_run_parser(sub) -> None:
    """Add ``emu run [FILE]`` to the CLI's sub-parsers."""
    p = sub.add_parser("run", help="run a full-system scenario",
                       description="Run a scenario (TOML). Without FILE, runs the built-in "
                                   "default scenario under the 440 designs as KVM shipped them "
                                   "(each with its commit, TID era and C miss handler) next to "
                                   "the proposal, and prints the comparison: "
                                   f"{'; '.join(default_labels())} (with --set "
                                   "machine.core=e500: the two e500 designs KVM shipped, "
                                   "then the hypothetical ones). Every --set applies to "
                                   "each row and the rows are labelled as they then run; "
                                   "--set kvm.strategy=NAME runs that design's rows alone; "
                                   "rows the "
                                   "settings cannot run (e.g. --set kvm.tid_scheme=guest-tid) are left "
                                   "out, rows in which a kvm key does nothing (e.g. --set "
                                   "kvm.pfn_cache_entries=N where the row's pfn source is gup) "
                                   "run without it, and rows that become the same design run "
                                   "once, with a note; a key that does nothing in any row is "
                                   "refused.")
    p.add_argument("scenario", nargs="?", help="scenario file (.toml)")
    _scenario_args(p, "folder for summary.json and the tidy CSVs (without FILE: the "
                      "comparison's folder); its files are replaced as one set")
    p.set_defaults(func=cmd_run)


def add_compare_parser(sub) -> None:
    """Add ``emu compare FILE --vary KEY=V1,V2,... [--vary ...]`` to the CLI's sub-parsers."""
    p = sub.add_parser("compare", help="run a scenario under several values of keys",
                       description="Run FILE once per value of --vary and print the results "
                                   "side by side. Several --vary run the product of their "
                                   "values (the first key varies slowest). A workload key "
                                   "that does nothing at some runs (zipf_s where --vary "
                                   "sets distribution=uniform,zipf) is taken if it does "
                                   "something at one; at none, it is refused.")
    p.add_argument("scenario", help="scenario file (.toml)")
    p.add_argument("--vary", dest="varies", action="append", required=True,
                   metavar="KEY=V1,V2,...",
                   help="a key and its values, e.g. kvm.strategy=shadow,direct (repeatable: "
                        "--vary a=1,2 --vary b=x,y runs the 4 points of the product)")
    p.add_argument("--plots", action="store_true", help="also write the plots into --out")
    _scenario_args(p, "folder for comparison.json and one folder per run (named from its "
                      "values); its files are replaced as one set")
    p.set_defaults(func=cmd_compare)


def _refuse_unkept(sim: dict, args) -> None:
    """Refuse what a run records only for its --out folder when there is none
    (``sim``: the scenario's sim table, or the keys of it set)."""
    if args.out is not None:
        return
    for key, where in (("timeline", "timeline.npz"), ("miss_log", "misses.parquet (or .csv)")):
        if sim.get(key) is True:
            raise ConfigError(f"sim.{key}: it records into {where}, which only --out keeps, "
                              f"and there is no --out: give --out DIR, or set it false")


def cmd_run(args) -> int:
    """Run ``emu run``: the scenario's summary (FILE), or the default comparison."""
    if args.scenario is None:
        # the rows' own settings may refuse the overrides on the default scenario alone
        sim = default_table(args.overrides).get("sim")
        _refuse_unkept(sim if isinstance(sim, dict) else {}, args)
        return _default_run(args)
    scenario = resolve(args.scenario, args.overrides)
    _refuse_unkept(dump(scenario.sim), args)
    note_ignored_members(trace_paths([scenario]), terminal_width(args))
    with staged(args.out, "run", args.force) as stage:
        with make_progress(args.progress) as progress:
            result = run(scenario, progress=progress)
        if stage:
            result.write_files(stage.path)
            stage.commit()
    width = terminal_width(args)
    if args.json:
        print(result.json(), end="")
    else:
        print(format_run(result.summary, width))
    _note_unsettled([(design_name(result.summary), result.summary)], width)
    return 0


def trace_paths(scenarios: list) -> list:
    """The trace files ``scenarios`` read."""
    return [w.path for sc in scenarios for w, _ in trace_workloads(sc)]


def _note_unsettled(runs: list, width) -> None:
    """An ``emu: note:`` on stderr naming the runs that had not settled, and
    one naming the CPUs that idled through their counted window."""
    for note in run_notes(runs):
        print_note(note, width)


def _default_run(args) -> int:
    """``emu run`` without FILE: the default scenario under the default designs."""
    variants, overrides, note = default_variants(args.overrides)
    width = terminal_width(args)
    with staged(args.out, "comparison", args.force, folders=variant_folders(variants)) as stage:
        if note:
            print_note(note, width)
        with make_progress(args.progress) as progress:
            comparison = run_variants(default_scenario(), variants, overrides, progress, KEY)
        if stage:
            comparison.write_files(stage.path)
            stage.commit()
    if args.json:
        print(dumps_json(comparison.to_json()), end="")
    else:
        print(format_banner([r.summary["config"] for r in comparison.results], width,
                            args.overrides))
        print(format_comparison(comparison.summaries(), width))
    _note_unsettled(comparison.summaries(), width)
    return 0


def cmd_compare(args) -> int:
    """Run ``emu compare``: the runs side by side (or their JSON)."""
    if args.plots and not args.out:
        raise ConfigError("--plots writes the plots into the --out folder: give --out DIR")
    varies = [parse_vary(v) for v in args.varies]
    points = vary_points(args.scenario, varies, args.overrides)  # a bad point refused before --out
    variants = point_variants([k for k, _ in varies], points)
    scenarios = [resolve(args.scenario, v.overrides(args.overrides), KeyUse())  # judged above
                 for v in variants]
    for sc in scenarios:
        _refuse_unkept(dump(sc.sim), args)
    note_ignored_members(trace_paths(scenarios), terminal_width(args))
    with staged(args.out, "comparison", args.force, folders=variant_folders(variants)) as stage:
        with make_progress(args.progress) as progress:
            comparison = run_variants(args.scenario, variants, args.overrides, progress)
        if stage:
            comparison.write_files(stage.path)
            if args.plots:
                comparison_plots(stage.path, comparison.summaries())
            stage.commit()
    runs, width = comparison.summaries(titled=True), terminal_width(args)
    if args.json:
        print(dumps_json(comparison.to_json()), end="")
    else:
        print(format_comparison(runs, width))
    _note_unsettled(runs, width)
    return 0

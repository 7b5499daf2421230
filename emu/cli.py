"""The ``emu`` command line.

Every problem with the user's input ends in one line on stderr,
``emu: error: ...``, and exit status 2; results are written atomically.
"""

from __future__ import annotations

import argparse
import sys

from emu import __version__
from emu.atomic import dumps_json
from emu.cliargs import Parser, int_arg
from emu.errors import EmuError

EXIT_USAGE = 2


# -- emu tlb -------------------------------------------------------------------

def _add_tlb(sub) -> None:
    p = sub.add_parser("tlb", help="trace-driven simulation of one TLB (no virtualization)",
                       description="Simulate one TLB over a trace (.npz, .npy, valgrind lackey "
                                   "text or gzip). Without TRACE, runs the shipped trace of a "
                                   "real program.")
    p.add_argument("trace", nargs="?", help="trace file (default: the shipped real trace)")
    p.add_argument("--entries", type=int_arg, default=64, help="TLB entries (default 64)")
    p.add_argument("--ways", type=int_arg, default=None,
                   help="ways per set (default: fully associative)")
    p.add_argument("--policy", default="fifo",
                   help="fifo | lru | random | round-robin (the 440 pointer) | nv")
    p.add_argument("--page-size", type=int_arg, default=4096, help="bytes (default 4096)")
    p.add_argument("--kinds", default="all", help="all | data (L, S, M) | inst (I)")
    p.add_argument("--seed", type=int_arg, default=0, help="seed of the random policy")
    p.add_argument("--backend", default="cython", help="cython | reference")
    p.add_argument("--chunk", type=int_arg, default=1 << 20, help="records per fast-path call")
    p.add_argument("--json", action="store_true", help="print the JSON summary")
    p.set_defaults(func=_cmd_tlb)


def _cmd_tlb(args) -> int:
    from emu.tlbsim import TLBSimConfig, format_table, simulate_trace
    from emu.workload.traces import default_trace_path

    if args.backend not in ("cython", "reference"):
        raise EmuError(f"unknown backend {args.backend!r} (choose from: cython, reference)")
    config = TLBSimConfig(entries=args.entries, ways=args.ways, policy=args.policy,
                          page_size=args.page_size, kinds=args.kinds, seed=args.seed,
                          backend=args.backend, chunk=args.chunk).validate()
    result = simulate_trace(args.trace or default_trace_path(), config)
    print(dumps_json(result) if args.json else format_table(result), end="" if args.json else "\n")
    return 0


# -- emu trace import ------------------------------------------------------------

def _add_trace(sub) -> None:
    p = sub.add_parser("trace", help="trace tools")
    tsub = p.add_subparsers(dest="trace_cmd", metavar="COMMAND", parser_class=Parser)
    tsub.required = True
    imp = tsub.add_parser("import", help="convert a trace to .npz")
    imp.add_argument("format", choices=["lackey"], help="input format")
    imp.add_argument("input", help="valgrind lackey --trace-mem=yes output (text or gzip)")
    imp.add_argument("-o", "--output", required=True, help="output .npz")
    imp.set_defaults(func=_cmd_trace_import)


def _cmd_trace_import(args) -> int:
    from emu.workload.traces import import_lackey

    n = import_lackey(args.input, args.output)
    print(f"{args.output}: {n:,} records")
    return 0


# -- emu run / emu compare -----------------------------------------------------------

DEFAULT_DESIGNS = ("shadow", "direct", "direct-save-on-switch")


def _scenario_args(p) -> None:
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a scenario key by its dotted path (repeatable), "
                        "e.g. kvm.strategy=shadow or vm.0.process.0.workload.pages=60")
    p.add_argument("--out", help="directory for summary.json and the tidy CSVs")
    p.add_argument("--json", action="store_true", help="print the JSON summary")
    p.add_argument("--progress", choices=["auto", "bar", "lines", "none"], default="auto",
                   help="progress on stderr (default: a bar on a terminal, a line every 5 s "
                        "otherwise)")


def _add_run(sub) -> None:
    p = sub.add_parser("run", help="run a full-system scenario",
                       description="Run a scenario (TOML). Without FILE, runs the built-in "
                                   "default scenario under the shadow, direct and "
                                   "direct-save-on-switch designs and prints the comparison.")
    p.add_argument("scenario", nargs="?", help="scenario file (.toml)")
    _scenario_args(p)
    p.set_defaults(func=_cmd_run)


def _progress(args):
    from emu.progress import make_progress
    return make_progress(args.progress)


def _cmd_run(args) -> int:
    from emu.compare import compare, write_comparison
    from emu.config import default_scenario
    from emu.report.text import format_comparison, format_run
    from emu.scenario import run

    if args.out:
        from emu.atomic import check_output_dir
        check_output_dir(args.out, ["summary.json", "comparison.json"])
    if args.scenario is None:
        scenario = default_scenario()
        with _progress(args) as progress:
            runs = compare(scenario, "kvm.strategy", list(DEFAULT_DESIGNS), args.overrides,
                           progress)
        if args.out:
            write_comparison(args.out, "kvm.strategy", runs)
        if args.json:
            print(dumps_json({"key": "kvm.strategy",
                              "runs": [{"value": v, "summary": r.summary} for v, r in runs]}),
                  end="")
        else:
            print(_default_banner(runs[0][1].summary))
            print(format_comparison([(v, r.summary) for v, r in runs]))
        return 0
    with _progress(args) as progress:
        result = run(args.scenario, args.overrides, progress)
    if args.out:
        result.write(args.out)
    print(result.json() if args.json else format_run(result.summary), end="" if args.json else "\n")
    return 0


def _default_banner(s) -> str:
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


def _add_compare(sub) -> None:
    p = sub.add_parser("compare", help="run a scenario under several values of a key",
                       description="Run FILE once per value of --vary and print the results "
                                   "side by side.")
    p.add_argument("scenario", help="scenario file (.toml)")
    p.add_argument("--vary", required=True, metavar="KEY=V1,V2,...",
                   help="e.g. kvm.strategy=shadow,direct,direct-save-on-switch")
    p.add_argument("--plots", action="store_true", help="also write the plots into --out")
    _scenario_args(p)
    p.set_defaults(func=_cmd_compare)


def _cmd_compare(args) -> int:
    from emu.compare import compare, parse_vary, write_comparison
    from emu.report.text import format_comparison

    key, values = parse_vary(args.vary)
    if args.out:
        from emu.atomic import check_output_dir
        check_output_dir(args.out, ["comparison.json"])
    with _progress(args) as progress:
        runs = compare(args.scenario, key, values, args.overrides, progress)
    if args.out:
        write_comparison(args.out, key, runs)
        if args.plots:
            from emu.report.plots import comparison_plots
            comparison_plots(args.out, [(v, r.summary) for v, r in runs])
    if args.json:
        print(dumps_json({"key": key, "runs": [{"value": v, "summary": r.summary}
                                               for v, r in runs]}), end="")
    else:
        print(format_comparison([(f"{key}={v}", r.summary) for v, r in runs]))
    return 0


# -- entry point -------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="emu", description="Emulate KVM virtualizing a software-managed TLB "
                                             "(PowerPC 440, e500).")
    parser.add_argument("--version", action="version", version=f"emu {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    _add_tlb(sub)
    _add_trace(sub)
    _add_run(sub)
    _add_compare(sub)
    from emu.teach import add_explain_parser
    from emu.report.html import add_report_parser
    from emu.sweep import add_sweep_parser
    add_report_parser(sub)
    add_sweep_parser(sub)
    add_explain_parser(sub)
    return parser


def main(argv=None) -> int:
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        return args.func(args)
    except EmuError as err:
        msg = str(err)
        print(msg if msg.startswith("emu") else f"emu: error: {msg}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("emu: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())

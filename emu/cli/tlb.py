"""``emu tlb``: one TLB over a trace (:mod:`emu.run.tlb`)."""

from __future__ import annotations

from emu.cli.args import add_wide_option, int_arg, size_arg, terminal_width
from emu.errors import EmuError

# NOTE: numpy, the trace readers and the simulation are imported by the
# command, after the members of a deflated .npz have begun to inflate
# (emu._inflate.head_start): the tenth of a second they take to load is
# then spent beside the inflating, not before it.


def add_tlb_parser(sub) -> None:
    """Add ``emu tlb [TRACE]`` to the CLI's sub-parsers."""
    p = sub.add_parser("tlb", help="trace-driven simulation of one TLB (no virtualization)",
                       description="Simulate one TLB over a trace (.npz, .npy, valgrind lackey "
                                   "text or gzip). Without TRACE, runs the shipped trace of a "
                                   "real program.")
    p.add_argument("trace", nargs="?",
                   help="trace file, or - for standard input (default: the shipped real trace)")
    p.add_argument("--entries", type=int_arg, default=64, help="TLB entries (default 64)")
    p.add_argument("--ways", type=int_arg, default=None,
                   help="ways per set (default: fully associative)")
    p.add_argument("--policy", default="fifo",
                   help="fifo | lru | random | round-robin (the 440 pointer) | nv")
    p.add_argument("--page-size", type=size_arg, default=4096,
                   help="bytes: 4096, 4K, 64K, 16M, ... (default 4K)")
    p.add_argument("--kinds", default="all", help="all | data (L, S, M) | inst (I)")
    p.add_argument("--seed", type=int_arg, default=None,
                   help="seed of the random policy (default 0); the other policies use none "
                        "and refuse one")
    p.add_argument("--backend", default="cython", help="cython | reference")
    p.add_argument("--chunk", type=int_arg, default=1 << 20, help="records per fast-path call")
    p.add_argument("--json", action="store_true", help="print the JSON summary")
    add_wide_option(p, notes=False)
    p.set_defaults(func=cmd_tlb)


def cmd_tlb(args) -> int:
    """Run ``emu tlb``: print the table (or the JSON summary)."""
    from emu.cli import collector_held_off
    # NOTE: the imports (numpy's) and the loop over the trace make no
    # cycles of objects: a run over 30,000 chunks left the same 500 or so
    # as one chunk.  On the benchmark's deflated .npz, the collector's 36
    # passes, over the imports' objects, took 5-7 ms of the thread that
    # sets the command's pace; none now
    with collector_held_off():
        from emu._inflate import discard, head_start
        if args.trace is not None:
            head_start(args.trace)
        try:
            return _run_tlb(args)
        finally:
            discard()               # what no reader took up (the run failed first)


def _run_tlb(args) -> int:
    from emu.run.files import dumps_json
    from emu.run.tlb import TLBSimConfig, format_table, simulate_trace
    from emu.workload.traces import default_trace_path
    if args.backend not in ("cython", "reference"):
        raise EmuError(f"unknown backend {args.backend!r} (choose from: cython, reference)")
    config = TLBSimConfig(entries=args.entries, ways=args.ways, policy=args.policy,
                          page_size=args.page_size, kinds=args.kinds,
                          seed=0 if args.seed is None else args.seed,
                          backend=args.backend, chunk=args.chunk).validate()
    if args.seed is not None and config.policy != "random":
        raise EmuError(f"--seed seeds the random policy; --policy {args.policy} uses none")
    result = simulate_trace(default_trace_path() if args.trace is None else args.trace, config)
    if args.json:
        print(dumps_json(result), end="")
    else:
        print(format_table(result, terminal_width(args)))
    return 0

"""The ``emu`` command line.

Every problem with the user's input ends in one line on stderr,
``emu: error: ...``, and exit status 2; results are written atomically.
"""

from __future__ import annotations

import argparse
import sys

from emu import __version__
from emu.atomic import dumps_json
from emu.errors import EmuError

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit status 2."""

    def error(self, message):  # noqa: D401 - argparse's API
        raise EmuError(f"{self.prog}: {message}")


def _int_arg(text: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid integer {text!r}") from None


# -- emu tlb -------------------------------------------------------------------

def _add_tlb(sub) -> None:
    p = sub.add_parser("tlb", help="trace-driven simulation of one TLB (no virtualization)",
                       description="Simulate one TLB over a trace (.npz, .npy, valgrind lackey "
                                   "text or gzip). Without TRACE, runs the shipped trace of a "
                                   "real program.")
    p.add_argument("trace", nargs="?", help="trace file (default: the shipped real trace)")
    p.add_argument("--entries", type=_int_arg, default=64, help="TLB entries (default 64)")
    p.add_argument("--ways", type=_int_arg, default=None,
                   help="ways per set (default: fully associative)")
    p.add_argument("--policy", default="fifo",
                   help="fifo | lru | random | round-robin (the 440 pointer) | nv")
    p.add_argument("--page-size", type=_int_arg, default=4096, help="bytes (default 4096)")
    p.add_argument("--kinds", default="all", help="all | data (L, S, M) | inst (I)")
    p.add_argument("--seed", type=_int_arg, default=0, help="seed of the random policy")
    p.add_argument("--backend", default="cython", help="cython | reference")
    p.add_argument("--chunk", type=_int_arg, default=1 << 20, help="records per fast-path call")
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
    tsub = p.add_subparsers(dest="trace_cmd", metavar="COMMAND", parser_class=_Parser)
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


# -- entry point -------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="emu", description="Emulate KVM virtualizing a software-managed TLB "
                                             "(PowerPC 440, e500).")
    parser.add_argument("--version", action="version", version=f"emu {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    _add_tlb(sub)
    _add_trace(sub)
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

"""``emu trace import``: convert a trace to ``.npz`` or ``.npy`` (:mod:`emu.workload.traces`)."""

from __future__ import annotations

import argparse
import os

from emu.cli.args import Parser, note_ignored_members, terminal_width
from emu.run.outdir import check_name
#: the formats ``emu trace import`` reads: those of
#: :data:`emu.workload.traces.writer.IMPORT_FORMATS`, named here so that the
#: command line is built without numpy
FORMATS = ("lackey", "npz", "npy")


def add_trace_parser(sub) -> None:
    """Add ``emu trace import FORMAT INPUT -o OUTPUT`` to the CLI's sub-parsers."""
    p = sub.add_parser("trace", help="trace tools",
                       description="Tools for the trace files emu tlb and trace workloads read.")
    tsub = p.add_subparsers(dest="trace_cmd", metavar="COMMAND", parser_class=Parser)
    tsub.required = True
    imp = tsub.add_parser("import", help="convert a trace to .npz or .npy",
                          description="Convert a trace to the format emu reads fastest: OUTPUT "
                                      "ending in .npy gets a structured .npy (written in one "
                                      "pass), any other name an .npz of uncompressed arrays "
                                      "addr, kind, size: nothing to decompress when read back "
                                      "(a compressed .npz, as np.savez_compressed writes it, "
                                      "reads at half the speed or less).")
    imp.add_argument("format", type=_format, metavar="FORMAT",
                     help=f"input format: {', '.join(FORMATS)} (an .npz's members other than "
                          f"addr, kind and size are left out; a trace without sizes gets "
                          f"sizes of 1, without kinds, loads)")
    imp.add_argument("input", help="the trace: valgrind lackey --trace-mem=yes output (text "
                                   "or gzip), an .npz or an .npy; a file, or, for lackey text "
                                   "and .npy, - for standard input, a pipe such as /dev/stdin, "
                                   "or a FIFO")
    imp.add_argument("-o", "--output", required=True,
                     help="output .npz or .npy, written atomically: a regular file or a new "
                          "one (a symlink's file is written; a device such as /dev/null, a "
                          "FIFO, a folder or - (standard output) is refused)")
    imp.set_defaults(func=cmd_trace_import)


def _format(text: str) -> str:
    """An input format; a file named in its place is told to come after it."""
    if text in FORMATS:
        return text
    hint = ""
    if os.path.exists(text) or "." in text or os.sep in text:
        fmt = next((f for f in FORMATS if text.lower().endswith("." + f)), "lackey")
        hint = f"; the format comes first: emu trace import {fmt} {text} -o OUTPUT"
    raise argparse.ArgumentTypeError(f"invalid choice: {text!r} (choose from "
                                     f"{', '.join(map(repr, FORMATS))}){hint}")


def cmd_trace_import(args) -> int:
    """Run ``emu trace import``: write the trace and say how many records it holds."""
    check_name(args.output, "--output", names="file")
    from emu.workload.traces.writer import import_trace
    if args.format == "npz":
        note_ignored_members([args.input], terminal_width(args))
    n = import_trace(args.input, args.output, args.format)
    print(f"{args.output}: {n:,} records")
    return 0

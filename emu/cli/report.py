"""``emu report``: one self-contained HTML page of any emu folder (:mod:`emu.report.html`)."""

from __future__ import annotations

from emu.report.html import write_report
from emu.run.outdir import check_name


def add_report_parser(sub) -> None:
    """Add ``emu report DIR [-o OUT.html] [--no-plots]`` to the CLI's sub-parsers."""
    p = sub.add_parser("report", help="write one self-contained HTML report of a result",
                       description="Write one self-contained HTML page (plots embedded) of a "
                                   "folder emu wrote: a run (emu run --out), a comparison "
                                   "(emu compare --out), a sweep (emu sweep --out: one row "
                                   "per grid point, plots against each numeric grid key) or "
                                   "a study (emu study NAME --out), with the section of a "
                                   "sensitivity study where the folder holds one (emu "
                                   "sensitivity --out). The page is made from the "
                                   "JSON files, the results table and timeline.npz (the "
                                   "CSVs hold the same tables for other tools); each is "
                                   "checked first, and a damaged one is named in one line.")
    p.add_argument("dir", metavar="DIR",
                   help="the folder: it holds summary.json, comparison.json, sweep.json, "
                        "results.json or sensitivity.json")
    p.add_argument("-o", "--output", metavar="OUT.html",
                   help="HTML file to write (default: DIR/report.html)")
    p.add_argument("--no-plots", dest="plots", action="store_false",
                   help="leave the plots out (tables only; much faster)")
    p.set_defaults(func=cmd_report)


def cmd_report(args) -> int:
    """Run ``emu report``: write the page and print its path."""
    if args.output is not None:
        check_name(args.output, "--output", names="file")
    print(write_report(args.dir, args.output, plots=args.plots))
    return 0

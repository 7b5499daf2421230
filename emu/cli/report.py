"""``emu report``: one self-contained HTML page of a result (:mod:`emu.report.html`)."""

from __future__ import annotations

from emu.report.html import write_report


def add_report_parser(sub) -> None:
    """Add ``emu report DIR [-o OUT.html]`` to the CLI's sub-parsers."""
    p = sub.add_parser("report", help="write one self-contained HTML report of a result",
                       description="Write one self-contained HTML page (plots embedded) for a "
                                   "run directory (emu run --out) or a comparison directory "
                                   "(emu compare --out).")
    p.add_argument("dir", help="directory holding summary.json or comparison.json")
    p.add_argument("-o", "--output", help="HTML file to write (default: DIR/report.html)")
    p.set_defaults(func=cmd_report)


def cmd_report(args) -> int:
    """Run ``emu report``: write the page and print its path."""
    print(write_report(args.dir, args.output))
    return 0

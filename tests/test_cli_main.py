"""``emu`` itself (``emu/cli/__init__.py``): alone, it lists the commands."""

from __future__ import annotations

import re

from clirun import cli_env, run_cli
from emu.cli import build_parser


def test_emu_alone_lists_the_commands_one_line_each():
    p = run_cli()
    assert p.returncode == 2, "no command ran: the status of a usage error"
    assert p.stderr == ""
    for command in ("tlb", "trace", "run", "compare", "report", "sweep", "explain", "sensitivity",
                    "costs"):
        lines = [line for line in p.stdout.splitlines() if line.split()[:1] == [command]]
        assert len(lines) == 1 and len(lines[0].split()) > 2, (command, p.stdout)
    assert "emu COMMAND --help" in p.stdout


def test_help_puts_each_command_and_its_summary_on_one_line():
    summaries = build_parser().commands
    for width in (80, 100):
        for argv in (["--help"], []):                 # emu --help, and emu alone
            p = run_cli(*argv, env=cli_env(COLUMNS=width))
            assert max(map(len, p.stdout.splitlines())) <= width, p.stdout
            for command, summary in summaries.items():
                assert re.search(rf"\n +{command} +{re.escape(summary)}\n", p.stdout), \
                    (command, p.stdout)

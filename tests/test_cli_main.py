"""``emu`` itself (``emu/cli/__init__.py``): alone, it lists the commands."""

from __future__ import annotations

from clirun import run_cli


def test_emu_alone_lists_the_commands_one_line_each():
    p = run_cli()
    assert p.returncode == 2, "no command ran: the status of a usage error"
    assert p.stderr == ""
    for command in ("tlb", "trace", "run", "compare", "report", "sweep", "explain", "sensitivity",
                    "costs"):
        lines = [line for line in p.stdout.splitlines() if line.split()[:1] == [command]]
        assert len(lines) == 1 and len(lines[0].split()) > 2, (command, p.stdout)
    assert "emu COMMAND --help" in p.stdout

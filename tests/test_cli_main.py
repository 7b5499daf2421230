"""``emu`` itself (``emu/cli/__init__.py``): alone, it lists the commands; its
parsers (``emu/cli/args.py``) take no abbreviation and name an unknown option."""

from __future__ import annotations

import ast
import os
import re
import signal
import subprocess
import sys

import pytest

from clirun import EMU, ROOT, assert_usage_error, cli_env, run_cli
import emu
from emu import cli
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


@pytest.mark.parametrize("command, subcommands", [("trace", ["import"]), ("config", ["dump"])])
def test_a_command_of_commands_alone_lists_its_commands(command, subcommands):
    """`emu trace` alone said "the following arguments are required: COMMAND",
    and not what the commands are, as `emu` alone did before it listed them."""
    p = run_cli(command)
    assert p.returncode == 2 and p.stderr == ""
    assert p.stdout.startswith(f"usage: emu {command} [-h] COMMAND ...\n")
    for sub in subcommands:
        assert re.search(rf"\n  {sub}  \w.*\n", p.stdout), p.stdout
    assert f"'emu {command} COMMAND --help' describes a command's options." in p.stdout
    assert assert_usage_error(run_cli(command, "--bogus"), "--bogus")


def test_help_puts_each_command_and_its_summary_on_one_line():
    summaries = build_parser().commands
    for width in (80, 100):
        for argv in (["--help"], []):                 # emu --help, and emu alone
            p = run_cli(*argv, env=cli_env(COLUMNS=width))
            assert max(map(len, p.stdout.splitlines())) <= width, p.stdout
            for command, summary in summaries.items():
                assert re.search(rf"\n +{command} +{re.escape(summary)}\n", p.stdout), \
                    (command, p.stdout)


def test_an_unknown_option_before_the_command_is_named():
    """argparse said COMMAND is required, and not what -x is."""
    p = run_cli("-x")
    assert assert_usage_error(p) == "emu: unrecognized arguments: -x\n"


@pytest.mark.parametrize("argv, line", [
    (["sweep", "s.toml", "--seed", "3", "--out", "swab"],
     "emu sweep: unrecognized arguments: --seed 3 (did you mean '--seeds'?)"),
    (["compare", "s.toml", "--var", "kvm.strategy=direct"],
     "emu compare: unrecognized arguments: --var kvm.strategy=direct (did you mean '--vary'?)"),
    (["sensitivity", "--comp", "kvm.strategy=shadow,direct"],
     "emu sensitivity: unrecognized arguments: --comp (did you mean '--compare'?)"),
    (["sensitivity", "--compare", "kvm.strategy=shadow,direct", "--cost", "tlbwe"],
     "emu sensitivity: unrecognized arguments: --cost (did you mean '--costs'?)"),
    (["run", "--wi"], "emu run: unrecognized arguments: --wi (did you mean '--wide'?)"),
    (["tlb", "--ent=8"], "emu tlb: unrecognized arguments: --ent=8 (did you mean '--entries'?)"),
    (["config", "dump", "--out", "{tmp}/x.toml"],
     "emu config dump: unrecognized arguments: --out (did you mean '--output'?)"),
    (["--vers"], "emu: unrecognized arguments: --vers (did you mean '--version'?)"),
])
def test_an_option_is_never_abbreviated(argv, line, tmp_path):
    """A prefix of an option is no option: it is refused, with the one it is close to
    (argparse took --seed 3 for --seeds 3 without a word)."""
    p = run_cli(*(a.format(tmp=tmp_path) for a in argv))
    assert assert_usage_error(p) == line + "\n"


@pytest.mark.parametrize("argv, line", [
    (["tlb", "--policy", "random", "--seed", "1", "--seed", "2"],
     "emu tlb: argument --seed: given twice (1 and 2); it takes one"),
    (["tlb", "--entries", "32", "--entries=16"],
     "emu tlb: argument --entries: given twice (32 and 16); it takes one"),
    (["sweep", "s.toml", "--seeds", "2", "--seeds", "3", "--out", "x"],
     "emu sweep: argument --seeds: given twice (2 and 3); it takes one"),
    (["run", "--set", "seed=1", "--set", "duration_ms=1", "--set", " seed =2"],
     "emu run: argument --set: seed given twice ('seed=1' and ' seed =2'); set it once"),
    (["config", "dump", "--set", "vm.0.vcpus=2", "--set", "vm.00.vcpus=3"],
     "emu config dump: argument --set: vm.00.vcpus given twice ('vm.0.vcpus=2' and "
     "'vm.00.vcpus=3'); set it once"),
])
def test_an_option_of_one_value_is_refused_twice(argv, line):
    """argparse let the second replace the first without a word (--seed 1 --seed 2
    ran seed 2)."""
    assert assert_usage_error(run_cli(*argv)) == line + "\n"


WIDE_JSON = ("emu: error: --wide prints the tables at their full width, and --json prints no "
             "table: give one of them")


@pytest.mark.parametrize("argv, line", [
    (["run", "--set", "duration_ms=0.05", "--force"],
     "emu: error: --force replaces the result in the --out folder, and there is no --out: "
     "give --out DIR, or leave --force out"),
    (["compare", "s.toml", "--vary", "seed=1,2", "--force"], None),
    (["sensitivity", "s.toml", "--compare", "kvm.strategy=shadow,direct", "--force"], None),
    (["study", "repopulation_lesson", "--force"], None),
    (["costs", "--json", "--long"],
     "emu: error: --long prints the table's sources in full, and --json holds them in full: "
     "give one of them"),
    (["costs", "--json", "--wide"], WIDE_JSON),
    (["tlb", "--json", "--wide"], WIDE_JSON),
])
def test_an_option_left_nothing_to_do_is_refused(argv, line):
    """--force without --out, --long with --json, and --wide with --json where the
    command prints no note, changed nothing (exit 0)."""
    got = assert_usage_error(run_cli(*argv))
    assert got == (line or "emu: error: --force replaces the result in the --out folder, and "
                   "there is no --out: give --out DIR, or leave --force out") + "\n"


COMPARE = ["--compare", "kvm.strategy=shadow,direct"]


@pytest.mark.parametrize("argv, needle", [
    (["tlb", "--entries", "６４"], "invalid integer '６４'"),
    (["tlb", "--page-size", "４K"], "invalid size '４K'"),
    (["tlb", "--page-size", "４０９６"], "invalid size '４０９６'"),
    (["sweep", "s.toml", "--seeds", "２"], "invalid integer '２'"),
    (["explain", "--resume", "٣"], "invalid integer '٣'"),
    (["explain", "--exercise", "--seed", "２"], "invalid integer '２'"),
    (["sensitivity", *COMPARE, "--range", "tlbwe=１,２"], "LOW and HIGH must be whole numbers"),
    (["sensitivity", *COMPARE, "--break-even", "costs.tlbwe=１,２"],
     "the values must be numbers, got '１'"),
    (["sweep", ROOT / "tests" / "data" / "cfg_full.toml", "--grid", "seed=1,2", "--out", "o",
      "--executor", "dask",
      "--scheduler", "tcp://localhost:８７８６"], "port '８７８６' is not in 1..65535"),
])
def test_a_number_in_other_than_ascii_digits_is_refused(argv, needle):
    """Python's int() and float() read any Unicode digit: --entries ６４ ran 64
    entries and --range tlbwe=１,２ studied 1..2, where --set refuses the same
    digits (a TOML number is ASCII)."""
    assert_usage_error(run_cli(*argv), needle)


def test_a_default_is_no_first_value_and_each_parse_starts_afresh():
    parser = build_parser()
    for seed in ("3", "4"):           # the same parser, parsed twice
        args = parser.parse_args(["tlb", "--policy", "random", "--seed", seed,
                                  "--entries", "32"])
        assert (args.seed, args.entries) == (int(seed), 32)
    args = parser.parse_args(["run", "--set", "seed=1", "--set", "duration_ms=2"])
    assert args.overrides == ["seed=1", "duration_ms=2"]


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full")
@pytest.mark.parametrize("argv", [["costs"], ["explain", "--glossary"],
                                  ["config", "dump"], ["tlb", "--json"]])
def test_a_full_disk_under_stdout_is_one_line_and_exit_1(argv):
    """A write to stdout that fails (a full disk: /dev/full) ended in a
    traceback; another OSError is not taken for it."""
    with open("/dev/full", "w") as full:
        p = subprocess.run(EMU + argv, stdout=full, stderr=subprocess.PIPE, text=True,
                           cwd=ROOT, env=cli_env(), stdin=subprocess.DEVNULL, timeout=120)
    assert (p.returncode, p.stderr) == (
        1, "emu: error: cannot write the output: No space left on device\n")


@pytest.mark.parametrize("argv", [["costs"], ["tlb", "--json"]])
def test_a_closed_stdout_is_one_line_and_exit_1(argv):
    """Started with stdout closed (``>&-``), Python's print wrote nothing and
    said nothing: ``emu tlb`` lost its result and exited 0."""
    p = subprocess.run(EMU + argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       text=True, cwd=ROOT, env=cli_env(), stdin=subprocess.DEVNULL,
                       timeout=120, preexec_fn=lambda: os.close(1))
    assert (p.returncode, p.stderr) == (1, "emu: error: cannot write the output: stdout is "
                                           "closed\n")


@pytest.mark.parametrize("command", [["run"], ["study", "fastpath_profile", "--quick"]])
def test_a_closed_stdout_loses_no_result_written_to_out(command, tmp_path):
    """With --out, the folder is the result: it is written, then the print
    of its tables fails in one line, exit 1.  emu study stopped at its first
    line, before it had run or written anything, where emu run wrote its folder;
    without --out it still stops there, with nothing run for nothing."""
    out = tmp_path / "out"
    closed = dict(stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                  env=cli_env(), stdin=subprocess.DEVNULL, timeout=300,
                  preexec_fn=lambda: os.close(1))
    p = subprocess.run(EMU + command + ["--out", str(out)], **closed)
    assert (p.returncode, p.stderr) == (1, "emu: error: cannot write the output: stdout is "
                                           "closed\n")
    assert (out / ("comparison.json" if command == ["run"] else "results.json")).is_file()
    assert run_cli("report", out, "-o", tmp_path / "page.html").returncode == 0


def test_an_oserror_of_the_command_is_not_called_an_output_error(monkeypatch, capsys):
    import emu.cli as cli

    def command():
        print("some output")
        raise OSError(5, "Input/output error")
    with pytest.raises(OSError):
        cli._exit_status(command)
    assert capsys.readouterr().out == "some output\n"


def test_a_stop_python_drops_is_sent_again_not_printed(monkeypatch, capsys):
    # the handler's raise can land in a finalizer or a weakref callback (the
    # import machinery's), where Python prints "Exception ignored" with a
    # traceback and goes on: the hook sends the signal again instead, a
    # moment later from another thread (sent from the hook itself, the
    # handler would raise inside the hook, and be dropped again)
    import threading
    import types

    from emu.cli import _on_lost_stop
    from emu.run import stop
    from emu.run.stop import Terminated
    monkeypatch.setattr(stop, "requested", threading.Event())
    monkeypatch.setattr(stop, "interrupted", threading.Event())
    monkeypatch.setattr(stop, "taken", threading.Event())
    sent, sending = [], threading.Event()

    def kill(pid, sig):
        sent.append((pid, sig, threading.current_thread() is threading.main_thread()))
        sending.set()
    monkeypatch.setattr("os.kill", kill)
    reported = []
    monkeypatch.setattr(sys, "__unraisablehook__", reported.append)
    hook = _on_lost_stop(os.getpid())
    other = types.SimpleNamespace(exc_type=ValueError, exc_value=ValueError("x"))
    hook(other)                                     # no stop asked: reported as Python does
    assert reported == [other]

    stop.requested.set()                            # SIGTERM
    hook(types.SimpleNamespace(exc_type=Terminated, exc_value=Terminated()))
    assert sent == [] and sending.wait(5)           # not from the hook: a moment later
    assert sent == [(os.getpid(), signal.SIGTERM, False)]
    hook(other)                                     # what the stopped code drops: not printed
    assert reported == [other] and capsys.readouterr().err == ""

    sending.clear()
    stop.requested.clear()
    stop.interrupted.set()                          # Ctrl-C
    hook(types.SimpleNamespace(exc_type=KeyboardInterrupt, exc_value=KeyboardInterrupt()))
    assert sending.wait(5) and sent[-1] == (os.getpid(), signal.SIGINT, False)

    lost = types.SimpleNamespace(exc_type=Terminated, exc_value=Terminated())
    _on_lost_stop(os.getpid() + 1)(lost)            # a forked worker: reported, nothing sent
    assert reported == [other, lost] and len(sent) == 2

    # once the command has taken its stop (it is saying so, and ending), the
    # signal sent again, or sent twice, is let go: it would kill the process
    # as it ends, or raise in the middle of its last line
    stop.taken.set()
    cli._send_again(os.getpid(), signal.SIGINT)
    assert len(sent) == 2
    assert cli._on_sigterm(os.getpid())(signal.SIGTERM, None) is None
    assert cli._on_sigint(os.getpid())(signal.SIGINT, None) is None


def test_an_error_raised_by_code_a_stop_interrupted_is_the_stop(monkeypatch, capsys):
    """numpy's import, interrupted by SIGTERM, says ImportError: once a stop
    is asked, the command ends as stopped, in one line, not with that error."""
    import threading

    from emu.run import stop
    monkeypatch.setattr(stop, "requested", threading.Event())
    monkeypatch.setattr(stop, "interrupted", threading.Event())
    monkeypatch.setattr(stop, "taken", threading.Event())

    def command():
        stop.requested.set()
        raise ImportError("PyCapsule_Import could not import module \"datetime\"")
    assert cli._exit_status(command) == 143
    assert capsys.readouterr().err == "emu: terminated\n"

    def command():
        stop.requested.clear()
        stop.interrupted.set()
        raise RuntimeError("Error calling __set_name__")
    assert cli._exit_status(command) == 130
    assert capsys.readouterr().err == "emu: interrupted\n"

    def command():
        stop.interrupted.clear()
        raise RuntimeError("a bug")                 # no stop asked: the error, as it is
    with pytest.raises(RuntimeError):
        cli._exit_status(command)


def test_a_ctrl_c_taken_inside_code_run_from_a_string_ends_with_the_commands_status(tmp_path):
    """A Ctrl-C that lands in code Python runs from a string (a dataclass's
    methods being made as a module imports): the command takes it and says
    so, and the process exits 130, not killed by SIGINT as Python's own exit
    would otherwise make it."""
    (tmp_path / "stopped_in_exec.py").write_text(
        "import sys\n"
        "from emu.cli import _exit_status\n"
        "def command():\n"
        "    exec('raise KeyboardInterrupt')\n"
        "sys.exit(_exit_status(command))\n")
    p = subprocess.run([sys.executable, "-m", "stopped_in_exec"], cwd=tmp_path, env=cli_env(),
                       capture_output=True, text=True, timeout=120)
    assert (p.returncode, p.stderr) == (130, "emu: interrupted\n")


def test_a_stop_the_command_takes_itself_ends_with_the_commands_status(tmp_path):
    """A command that takes its Ctrl-C itself and returns its status (a sweep
    says how many runs are done): the process ends with that status, even
    when the Ctrl-C landed in code Python ran from a string."""
    (tmp_path / "sweep_stopped_in_exec.py").write_text(
        "import sys\n"
        "from emu.cli import _exit_status\n"
        "from emu.run import stop\n"
        "def command():\n"
        "    try:\n"
        "        stop.interrupted.set()             # as the Ctrl-C handler does\n"
        "        exec('raise KeyboardInterrupt')\n"
        "    except KeyboardInterrupt:\n"
        "        print('emu: sweep interrupted: 3 of 12 runs done', file=sys.stderr)\n"
        "        return 130\n"
        "sys.exit(_exit_status(command))\n")
    p = subprocess.run([sys.executable, "-m", "sweep_stopped_in_exec"], cwd=tmp_path,
                       env=cli_env(), capture_output=True, text=True, timeout=120)
    assert (p.returncode, p.stderr) == (130, "emu: sweep interrupted: 3 of 12 runs done\n")


def test_an_error_is_one_line_with_its_quoted_text_as_it_is():
    """Every run of blanks was squeezed to one space, so a quoted line of a
    file ('i  0401ab70,3') showed as another ('i 0401ab70,3')."""
    from emu.errors import EmuError
    assert str(EmuError("t.txt:3: malformed lackey line: 'i  0401ab70,3'")) == \
        "t.txt:3: malformed lackey line: 'i  0401ab70,3'"
    assert str(EmuError("  a\n    b\r\nc\u2028d\x0be  \n")) == "a b c d e"
    assert len(str(EmuError("x\n" * 3)).splitlines()) == 1


def test_a_stdout_that_cannot_encode_every_character_gets_them_escaped(tmp_path):
    """With PYTHONIOENCODING=ascii (or a non-UTF-8 locale), a table's 'µs' or a
    name's 'é' ended the command in a UnicodeEncodeError traceback."""
    env = cli_env(PYTHONIOENCODING="ascii")
    p = subprocess.run(EMU + ["explain", "--glossary"], capture_output=True, cwd=ROOT, env=env,
                       stdin=subprocess.DEVNULL, timeout=120)
    assert (p.returncode, p.stderr) == (0, b"")
    assert b"\\xa7" in p.stdout and p.stdout.isascii()          # the section sign, escaped
    # a dump stays TOML: its strings' characters as TOML's escapes, loading to the same name
    p = subprocess.run(EMU + ["config", "dump", "--set", "name=caf\u00e9 \U0001f600"],
                       capture_output=True, cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                       timeout=120)
    assert p.returncode == 0 and p.stdout.isascii(), p.stderr
    assert b'\nname = "caf\\u00e9 \\U0001f600"\n' in p.stdout
    from emu.params.load import tomllib
    assert tomllib.loads(p.stdout.decode())["name"] == "caf\u00e9 \U0001f600"


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full")
def test_a_closed_or_full_stderr_does_not_fail_the_command(tmp_path):
    """Progress and notes go to stderr: closed, emu run wrote nothing and exited
    1 (an AttributeError there); full, a note ended it with exit 1 after the
    result was printed.  What emu says there is said if it can be."""
    scenario = tmp_path / "s.toml"
    scenario.write_text("duration_ms = 2\n")             # short: its figures have not settled
    said = subprocess.run(EMU + ["run", str(scenario)], capture_output=True, text=True,
                          cwd=ROOT, env=cli_env(), stdin=subprocess.DEVNULL, timeout=120)
    assert said.returncode == 0 and said.stderr.startswith("emu: note: Not settled")
    with open("/dev/full", "w") as full:
        for name, how in (("closed", {"preexec_fn": lambda: os.close(2)}),
                          ("full", {"stderr": full})):
            out = tmp_path / name
            p = subprocess.run(EMU + ["run", str(scenario), "--out", str(out)],
                               stdout=subprocess.PIPE, text=True, cwd=ROOT, env=cli_env(),
                               stdin=subprocess.DEVNULL, timeout=120, **how)
            assert (p.returncode, p.stdout) == (0, said.stdout), name
            assert (out / "summary.json").is_file()
    p = subprocess.run(EMU + ["tlb", str(tmp_path / "missing")], cwd=ROOT, env=cli_env(),
                       stdin=subprocess.DEVNULL, timeout=120, preexec_fn=lambda: os.close(2))
    assert p.returncode == 2                                 # bad input, said or not


def test_a_command_run_in_a_removed_folder_is_refused_in_one_line(tmp_path):
    """Every relative path is relative to nothing there: emu run --help ended in
    a traceback, and emu sweep did too, after it had made half a result."""
    gone = tmp_path / "gone"
    gone.mkdir()
    out = tmp_path / "out"
    scenario = tmp_path / "s.toml"
    scenario.write_text("duration_ms = 1\n")
    line = "emu: error: the current folder no longer exists (it was removed): cd to one that does\n"
    for argv in (["run", "--help"], ["sweep", str(scenario), "--grid", "seed=1,2", "--out",
                                     str(out)]):
        p = subprocess.run(EMU + argv, capture_output=True, text=True, env=cli_env(),
                           stdin=subprocess.DEVNULL, timeout=120,
                           preexec_fn=lambda: (os.chdir(gone), os.rmdir(gone)))
        assert (p.returncode, p.stderr, p.stdout) == (2, line, "")
        gone.mkdir()
    assert not out.exists()
    # what emu is needs no folder: it was refused there too
    p = subprocess.run(EMU + ["--version"], capture_output=True, text=True, env=cli_env(),
                       stdin=subprocess.DEVNULL, timeout=120,
                       preexec_fn=lambda: (os.chdir(gone), os.rmdir(gone)))
    assert (p.returncode, p.stderr) == (0, "") and re.fullmatch(r"emu \S+\n", p.stdout)
    assert p.stdout == run_cli("--version").stdout
    gone.mkdir()
    p = subprocess.run([sys.executable, "-c", "import os, sys\n"
                        "os.chdir(sys.argv[1]); os.rmdir(sys.argv[1])\n"
                        "from emu.run import run\n"
                        "try:\n    run(sys.argv[2])\n"
                        "except Exception as e:\n    print(type(e).__name__, e)\n",
                        str(gone), str(scenario)], capture_output=True, text=True,
                       env=cli_env(), timeout=120)
    assert p.stdout == "ConfigError " + line[len("emu: error: "):], p.stderr


def test_python_dash_m_emu_is_the_emu_command(tmp_path):
    """``python -m emu`` runs the command line, as the console script does:
    the same output and status, bad input included."""
    for argv in (["--version"], ["tlb", "--entries", "0"]):
        script = run_cli(*argv)
        module = subprocess.run([sys.executable, "-m", "emu", *argv], cwd=tmp_path,
                                capture_output=True, text=True, env=cli_env(), timeout=120)
        assert (module.returncode, module.stdout, module.stderr) == \
            (script.returncode, script.stdout, script.stderr), argv
    assert script.returncode == 2 and script.stderr.startswith("emu: error: entries ")


def test_a_missing_fast_path_is_one_line_and_says_what_shadows_the_installed_emu(
        tmp_path, monkeypatch):
    """Run from a checkout that is not built, with emu installed elsewhere
    (python -m emu in the source tree), every command ended in a traceback
    of some forty lines, status 1, not saying that the checkout was imported
    in place of the installed emu."""
    import importlib.metadata

    from emu.engine import build
    from emu.errors import EmuError
    # a fresh interpreter in which the extension cannot be imported
    code = ("import sys; sys.modules['emu._fastpath'] = None\n"
            "from emu.cli import main\nsys.exit(main(['tlb']))\n")
    p = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                       text=True, env=cli_env(), timeout=120)
    assert p.returncode == 2 and p.stdout == "", (p.returncode, p.stderr)
    assert p.stderr.count("\n") == 1 and p.stderr.startswith(
        "emu: error: emu's compiled fast path (emu._fastpath) is not built. ")
    assert "pip install -e ." in p.stderr and "source tree in" not in p.stderr
    # with an emu installed elsewhere, the message says which emu was imported
    installed = tmp_path / "site-packages" / "emu" / "__init__.py"
    installed.parent.mkdir(parents=True)
    installed.write_text("")

    class Installed:
        def locate_file(self, name):
            return tmp_path / "site-packages" / name
    monkeypatch.setattr(importlib.metadata, "distribution", lambda name: Installed())
    with pytest.raises(ImportError) as info:        # to the API, an ImportError still
        build.raise_build_error(ImportError("cannot import name '_fastpath'"))
    assert isinstance(info.value, EmuError)
    assert (f"This emu is the source tree in {os.path.dirname(build.codes.__file__)}, imported "
            f"before the emu installed in {installed.parent} because the command runs from "
            f"the checkout: run it from another folder, or build this tree.") in str(info.value)


def test_emu_tlb_loads_no_package_metadata(tmp_path):
    """``emu tlb``'s start-up is part of every figure it is timed by: the
    package metadata, which only the message for a missing fast path reads,
    took 15 ms of it when emu.engine.build imported it at its top."""
    code = ("import sys\nbefore = 'importlib.metadata' in sys.modules\n"
            "import emu.cli, emu.run.tlb\nfrom emu.engine.build import fastpath\nfastpath()\n"
            "print(before, 'importlib.metadata' in sys.modules)\n")
    p = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                       text=True, env=cli_env(), timeout=120)
    assert p.returncode == 0, p.stderr
    before, after = p.stdout.split()
    assert after == before, "emu's start-up imported importlib.metadata"


#: One refusal each, as the command line and the Python API meet it: the
#: command line's arguments, the API's call (given the folders and the scenario
#: file by name), and what each message says, the option named as each caller
#: spells it.
SPELLED = [
    (["sweep", "{toml}", "--grid", "seed=1,2", "--out", "{run}"],
     lambda f: emu.run.run_sweep(f["toml"], ["seed=1,2"], out_dir=f["run"]),
     "--out {run}: holds a run (strategy ?, seed ?), not a sweep: pass --force to replace it",
     "out_dir {run}: holds a run (strategy ?, seed ?), not a sweep: pass force=True to replace"),
    (["run", "{toml}", "--out", "{sweep}"],
     lambda f: emu.run.Result({}, {}).write(f["sweep"]),
     "--out {sweep}: holds a sweep (sweep.json), not a run: pass --force to replace it",
     "{sweep}: holds a sweep (sweep.json), not a run: pass force=True to replace it"),
    (["study", "fastpath_profile", "--quick", "--out", "{sweep}"],
     lambda f: emu.study.run("fastpath_profile", quick=True, out=f["sweep"]),
     "--out {sweep}: holds a sweep (sweep.json), not the study 'fastpath_profile': pass --force",
     "out {sweep}: holds a sweep (sweep.json), not the study 'fastpath_profile': pass force=True"),
    (["sweep", "{toml}", "--grid", "seed=1,2", "--out", "{run}", "--seeds", "0"],
     lambda f: emu.run.run_sweep(f["toml"], ["seed=1,2"], seeds=0, out_dir=f["run"]),
     "--seeds: expected a positive integer, got 0",
     "seeds: expected a positive integer, got 0"),
    (["sweep", "{toml}", "--grid", "seed=1,2", "--out", "{run}", "--scheduler", "tcp://h:1"],
     lambda f: emu.run.run_sweep(f["toml"], ["seed=1,2"], out_dir=f["run"],
                                 scheduler="tcp://h:1"),
     "--scheduler needs --executor dask", "scheduler needs executor dask"),
    (["sensitivity", "{toml}", "--compare", "kvm.strategy=shadow,direct", "--break-even",
      "duration_ms=1"],
     lambda f: emu.sensitivity.run_sensitivity(f["toml"], "kvm.strategy=shadow,direct",
                                               break_even="duration_ms=1"),
     "--break-even duration_ms: needs at least two values, got 1",
     "break_even duration_ms: needs at least two values, got 1"),
    (["compare", "{toml}", "--vary", "duration_ms=1,2", "--set", "duration_ms=3"],
     lambda f: emu.run.compare(f["toml"], "duration_ms", [1, 2], ["duration_ms=3"]),
     "--vary duration_ms: the key is also given with --set",
     "key duration_ms: the key is also given with overrides"),      # compare takes no varies
]


@pytest.mark.parametrize("argv, call, cli_says, api_says", SPELLED)
def test_a_message_names_the_option_as_its_caller_spells_it(argv, call, cli_says, api_says,
                                                            tmp_path, capsys):
    """The API's messages said "pass --force" and "--out DIR", where its
    keywords are force=True and out_dir: each now names the option as the
    command line spells it there, and as the API does to the API's caller."""
    import emu.run
    import emu.sensitivity
    import emu.study
    from emu.errors import EmuError
    run, sweep = tmp_path / "run", tmp_path / "sweep"
    run.mkdir()
    (run / "summary.json").write_text("{}")
    sweep.mkdir()
    (sweep / "sweep.json").write_text("[]")
    names = {"run": str(run), "sweep": str(sweep),
             "toml": str(ROOT / "scenarios" / "boot_like.toml")}
    assert cli.main([a.format(**names) for a in argv]) == 2
    assert capsys.readouterr().err.startswith(f"emu: error: {cli_says.format(**names)}")
    with pytest.raises(EmuError) as refused:
        call(names)
    assert str(refused.value).startswith(api_says.format(**names))
    assert "--" not in str(refused.value)


def test_a_note_and_a_refusal_that_name_more_than_an_option_are_spelled_for_their_caller(
        tmp_path, capsys):
    """The hints beside a result that had not settled, a Sobol' sample's note,
    a report page's "plots left out" and the refusal of a folder emu did not
    write named the command line's options (``--set sim.warmup_ms=MS``,
    ``--samples``, ``--no-plots``, ``emu run --out``) to a Python caller too."""
    import emu
    from emu.errors import EmuError, command_line
    from emu.report.reading import settle_note, unsettled_note
    unsettled = {"halves": {"cycles_per_guest_access": [200.0, 6.0]}}
    rows = [{"seed": 1, "settled": False}]
    with command_line():
        cli_notes = settle_note([("shadow", unsettled)]), unsettled_note(rows, ["seed"])
    api_notes = settle_note([("shadow", unsettled)]), unsettled_note(rows, ["seed"])
    for cli_note, api_note in zip(cli_notes, api_notes):
        assert "--set sim.warmup_ms=MS counts from after it" in cli_note
        assert "overrides=['sim.warmup_ms=MS'] counts from after it" in api_note
        assert "--" not in api_note
    # what the API's note says to pass is what the API takes
    from emu.params import default_scenario
    from emu.run.scenario import resolve
    taken = api_notes[0].split("overrides=")[1].split(" counts")[0].replace("MS", "7")
    assert resolve(default_scenario(), overrides=ast.literal_eval(taken)).sim.warmup_ms == 7
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli.main(["report", str(empty)]) == 2
    cli_says = capsys.readouterr().err
    assert "write one with emu run, compare, sweep, study or sensitivity --out DIR" in cli_says
    with pytest.raises(EmuError) as refused:
        emu.load(empty)
    assert "write one with Result.write(out_dir), Comparison.write(out_dir), run_sweep(" \
        in str(refused.value) and "emu run" not in str(refused.value)

"""``emu explain --exercise`` and ``--solve`` honour FILE and ``--set`` (the
exercise posed on another scenario), and refuse the options of a narration's
window, which the exercise fixes.  Its text fits the terminal (COLUMNS, 80 on
a pipe) as the other commands' does; ``--wide`` prints it as the API gives it."""

from __future__ import annotations

import re

import pytest

from clirun import assert_usage_error, cli_env, run_cli
from emu.params.load import tomllib
from emu.report.columns import columns
from emu.teach.exercise import EXERCISE_TOML, exercise_text


def answer(text: str) -> tuple:
    """The model's counts in an answer, its lines joined (they are wrapped at 80 columns)."""
    m = re.search(r"computed by the model: direct (\d+), direct-save-on-switch (\d+)",
                  " ".join(text.split()))
    assert m, text
    return int(m[1]), int(m[2])


def test_exercise_is_posed_on_the_set_keys():
    plain = run_cli("explain", "--exercise", "--wide")
    posed = run_cli("explain", "--exercise", "--wide", "--set", "kvm.handler=c")
    assert plain.returncode == posed.returncode == 0
    assert plain.stdout == exercise_text()
    assert posed.stdout != plain.stdout and "--set kvm.handler=c" in posed.stdout


def test_the_posed_question_and_scenario_show_the_values_used():
    p = run_cli("explain", "--exercise", "--set", "vm.0.process.0.workload.pages=20",
                "--set", "host_task.0.workload.pages=64")
    assert p.returncode == 0, p.stderr
    question, posed, toml = p.stdout.split("\n\n", 2)
    assert "working set of 20 data pages" in question and "hold all 20," in question
    assert "sweeps 64 pages" in question
    assert " 24 " not in question and " 100 " not in question      # the exercise's own
    assert " ".join(posed.split()).endswith("the numbers above are this scenario's; --solve "
                                            "counts its misses.")
    data = tomllib.loads(toml)
    assert data["vm"][0]["process"][0]["workload"]["pages"] == 20
    assert data["host_task"][0]["workload"]["pages"] == 64
    # a scenario unlike the question's says so; another hwater is in the question
    f = run_cli("explain", "--exercise", "--set", "machine.hwater=60", "--set",
                "kvm.pfn_source=gup")
    text = " ".join(f.stdout.split())
    assert "replaces entries 0..60 (hwater 60) and keeps entries 61..63 pinned" in text
    assert ("the numbers above are this scenario's, but it has a pfn source other than the "
            "pfn cache, which the question does not describe" in text), text


def test_file_may_come_before_or_after_exercise(tmp_path):
    f = tmp_path / "ex.toml"
    f.write_text(EXERCISE_TOML.replace("pages = 24", "pages = 16"))
    after, before = run_cli("explain", "--exercise", f), run_cli("explain", f, "--exercise")
    assert after.returncode == before.returncode == 0, after.stderr
    assert after.stdout == before.stdout and "working set of 16 data pages" in after.stdout
    assert_usage_error(run_cli("explain", f, "--exercise", f), "FILE given twice")


def test_solve_counts_the_misses_of_the_scenario_set():
    # 20 pages: faulted in before vcpu_load #5 (80 would still be faulting in, and
    # the guest kernel's accesses in the window void the hand derivation)
    p = run_cli("explain", "--solve", "--set", "vm.0.process.0.workload.pages=20")
    assert p.returncode == 0, p.stderr
    # every page the window touches misses once under direct: 19 of the 20 (the
    # 200 uniform accesses after vcpu_load #5 happen to miss one), as the hand
    # derivation counts them
    text = " ".join(p.stdout.split())
    assert answer(p.stdout) == (19, 0)
    assert "direct 19 (the distinct pages among the accesses)" in text and "they agree" in text
    p = run_cli("explain", "--solve", "--set", "vm.0.process.0.workload.pages=80")
    assert p.returncode == 0, p.stderr
    assert "does not apply here" in " ".join(p.stdout.split())


def test_solve_counts_the_misses_of_the_file(tmp_path):
    f = tmp_path / "ex.toml"
    f.write_text(EXERCISE_TOML.replace("pages = 24", "pages = 16"))
    p = run_cli("explain", f, "--solve")
    assert p.returncode == 0, p.stderr
    assert str(f) in p.stdout and answer(p.stdout) == (16, 0)


def test_solve_says_where_the_hand_derivation_does_not_apply():
    p = run_cli("explain", "--solve", "--set", "vm.0.process.0.workload.pages=70")
    assert p.returncode == 0, p.stderr       # 70 pages do not fit: the vCPU holds fewer at put
    assert "does not apply here" in " ".join(p.stdout.split())
    # direct's _tlbia empties the TLB at vcpu_put, whatever the host writes afterwards
    p = run_cli("explain", "--solve", "--set", "host_task.0.workload.pages=10")
    assert p.returncode == 0, p.stderr
    assert "they agree" in " ".join(p.stdout.split())


@pytest.mark.parametrize("argv,needles", [
    (["--exercise", "--resume", "4"], ("--resume", "fixed")),
    (["--solve", "--accesses", "5", "--vcpu", "vm0.vcpu0"], ("--accesses, --vcpu", "fixed")),
    (["--solve", "--set", "host_task=[]"], ("window", "not reached")),
    (["--exercise", "--set", "kvm.handler=bogus"], ("'bogus'",)),
    (["--solve", "--set", "kvm.strategy=shadow"], ("kvm.strategy", "direct-save-on-switch")),
], ids=["resume", "accesses-vcpu", "no-host-task", "bad-set", "strategy-set"])
def test_what_the_exercise_cannot_take_is_refused_in_one_line(argv, needles):
    assert_usage_error(run_cli("explain", *argv), *needles)


# -- the narration for a class: window found fast, filters, glossary, kinds ------------------

def test_an_out_of_range_resume_fails_in_under_two_seconds():
    """The compiled backend counts the vCPU's loads (18 in the default 20 ms run)
    before the reference backend starts: the one timed assertion of the suite."""
    import time
    t0 = time.perf_counter()
    p = run_cli("explain", "--resume", "10000")
    elapsed = time.perf_counter() - t0
    assert_usage_error(p, "--resume 10000", "loaded only 18 times", "20 ms run")
    assert elapsed < 2.0, f"{elapsed:.2f} s"


def test_the_window_found_fast_is_the_one_narrated():
    """locate() on the compiled backend finds vcpu_load #5 of the default golden case
    at the time the reference narration prints (tests/data/golden/explain_default.txt)."""
    from pathlib import Path
    from emu.teach.locate import locate
    golden = (Path(__file__).parent / "data" / "golden" / "explain_default.txt").read_text()
    from test_explain import CASES
    w = locate(None, list(CASES["default"]["overrides"]), 5)
    assert f"(vcpu_load #5 at {w.at_us:,.1f} us)" in golden


def test_a_narration_prints_nothing_on_stderr_off_a_terminal():
    p = run_cli("explain", "--resume", "1", "--accesses", "3")
    assert p.returncode == 0 and p.stderr == "" and "vcpu_load #1" in p.stdout


def test_progress_rewrites_one_line_on_a_terminal_and_erases_it():
    import io
    from emu.teach.locate import ReplayProgress, Window

    class Tty(io.StringIO):
        def isatty(self):
            return True

    for stream, shown in ((Tty(), True), (io.StringIO(), False)):
        prog = ReplayProgress(Window("vm0.vcpu0", 5, 667_000, 667.0), stream)
        prog(333_500, 10**9)
        prog.last = 0.0                                  # the next update is due
        prog(667_000, 10**9)
        prog.close()
        text = stream.getvalue()
        if not shown:
            assert text == ""
            continue
        assert "\n" not in text and text.count("\r") == 4      # two updates, then erased
        assert "500.0 of 1,000.0 us to vm0.vcpu0's vcpu_load #5 (50%)" in text
        assert "(100%)" in text and text.endswith("\r") and text.split("\r")[-2].strip() == ""


def test_filters_tell_a_subset_of_the_narration():
    """vcpu_load #1 (tests/data/golden/explain_first_load.txt): 7 of the 8 accesses miss,
    all compulsory; #4 hits."""
    from pathlib import Path
    from emu.teach import explain
    golden = (Path(__file__).parent / "data" / "golden" / "explain_first_load.txt").read_text()
    full = golden.splitlines()
    for kw, shown in ((dict(only_misses=True), 7), (dict(cause="compulsory"), 7),
                      (dict(cause="flush"), 0)):
        r = explain(None, (), 1, 8, **kw)
        lines = r.text.splitlines()
        assert all(line in full for line in lines[:-1]), kw
        assert lines[-2] == full[-1]                     # the summary counts them all
        assert lines[-1].startswith(f"Shown: the {shown} access")
        told = [line.split()[0] for line in lines if line.startswith("  #")]
        assert len(told) == shown and ("#4" not in told)


def test_glossary_names_the_terms_with_their_sources():
    p = run_cli("explain", "--glossary")
    assert p.returncode == 0, p.stderr
    for term in ("AS / TS", "TID", "shadow PID", "hwater", "TIMEINGUEST", "round robin",
                 "pfn cache", "gfn_to_pfn", "vcpu_load / vcpu_put", "_tlbia", "modified flags",
                 "eras", "DSI / ISI"):
        assert term in p.stdout, term
    assert "[docs/kvm440.md §1.5" in p.stdout and "[docs/design.md §6]" in p.stdout


@pytest.mark.parametrize("argv,needles", [
    (["--cause", "bogus"], ("--cause bogus", "compulsory", "shadow-not-restored")),
    (["--seed", "3"], ("--seed", "--exercise", "--set seed=N")),
    (["--glossary", "--resume", "3"], ("--glossary", "--resume")),
    (["--exercise", "nope"], ("invalid choice", "e500-sets")),
    (["--exercise", "e500set"], ("did you mean 'e500-sets'? choose KIND from",)),
    (["--exercise", "pfn-cache", "--set", "kvm.handler=c"], ("--set", "pfn-cache", "--seed")),
    (["--solve", "--exercise", "e500-sets", "x.toml"], ("FILE", "e500-sets")),
    (["--exercise", "resume-cost", "--only-misses"], ("--only-misses", "fixed")),
    (["--exercise", "--seed", "-1"], ("--seed", "-1")),
], ids=["cause", "seed-alone", "glossary-window", "kind", "mistyped-kind", "set-on-array-kind",
        "file-on-kind", "filter-on-exercise", "negative-seed"])
def test_what_explain_cannot_take_is_refused_in_one_line(argv, needles):
    assert_usage_error(run_cli("explain", *argv), *needles)


def test_solve_a_seeded_kind_on_the_command_line():
    p = run_cli("explain", "--exercise", "e500-sets", "--seed", "1", "--solve")
    assert p.returncode == 0, p.stderr
    text = " ".join(p.stdout.split())
    assert text.startswith("Exercise (e500-sets, seed 1).") and "e500 63, 440 7 -> they agree" in text
    assert run_cli("explain", "--exercise", "e500-sets", "--seed", "2").stdout != \
        run_cli("explain", "--exercise", "e500-sets", "--seed", "1").stdout


# -- the text fitted to the terminal, as the other commands' --------------------------------

def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def assert_fitted(fitted: str, wide: str, width: int) -> None:
    """``fitted`` is ``wide`` with each line wrapped at ``width`` columns (a
    single word may be wider): the line keeps its indent, its continuation
    lines are indented further, and joined back they hold its words."""
    rows = fitted.splitlines()
    assert all(columns(r) <= width or len(r.split()) == 1 for r in rows), fitted
    i = 0
    for line in wide.splitlines():
        assert _indent(rows[i]) == _indent(line), (rows[i], line)
        words = rows[i].split()
        i += 1
        while len(words) < len(line.split()):
            assert _indent(rows[i]) > _indent(line), (rows[i], line)
            words += rows[i].split()
            i += 1
        assert words == line.split(), line
    assert i == len(rows)


@pytest.mark.parametrize("width", [60, 80])
def test_a_narration_fits_the_terminal_and_wide_prints_it_as_the_api_gives_it(width):
    """Its setting line took about 250 columns and its steps up to 200; at 80
    columns (a pipe, no COLUMNS) or 60 each line is wrapped, the setting line at
    its clauses, step 3 between its parts."""
    from emu.teach import explain
    env = cli_env(COLUMNS=width) if width != 80 else cli_env()
    fitted = run_cli("explain", "--accesses", "6", env=env)
    wide = run_cli("explain", "--accesses", "6", "--wide", env=env)
    assert fitted.returncode == wide.returncode == 0, fitted.stderr + wide.stderr
    assert wide.stdout == explain(None, (), accesses=6).text
    header = wide.stdout.splitlines()[0]
    assert columns(header) > 200 and "; design: " in header
    assert_fitted(fitted.stdout, wide.stdout, width)
    assert fitted.stdout.startswith("emu explain: scenario 'default', seed 1;\n"
                                    "  440 core (64-entry UTLB, round robin over 0..62), 1 CPU;\n")
    assert re.search(r"\n      3\.1 GPA 0x[0-9a-f]{8}   3\.2 memslot 0: visible\n"
                     r"        3\.3 pfn cache: hit ", fitted.stdout), fitted.stdout


def test_a_narration_line_breaks_at_its_clauses_outside_brackets():
    from emu.teach.parser import fit_narration
    line = ("   meanwhile a task ran 9 accesses (3 faults; each misses again); its tlbwe "
            "overwrote /a/path/far/longer/than/the/line/of/thirty/columns")
    assert fit_narration(line, 30).splitlines() == [
        "   meanwhile a task ran 9",
        "       accesses (3 faults;",
        "       each misses again);",
        "     its tlbwe overwrote",
        "       /a/path/far/longer/than/the/line/of/thirty/columns"]
    assert fit_narration(line, None) == fit_narration(line, 200) == line


@pytest.mark.parametrize("argv", [["--exercise"], ["--exercise", "e500-sets", "--solve"],
                                  ["--glossary"]], ids=["exercise", "solve", "glossary"])
def test_an_exercise_its_answer_and_the_glossary_fit_the_terminal(argv):
    """Their paragraphs, filled at 84 columns, are filled anew at 60; the
    exercise's scenario is printed as it is, a TOML file to save."""
    from emu.teach import exercise_text, glossary_text
    from emu.teach.exercise import exercise_parts
    fitted = run_cli("explain", *argv, env=cli_env(COLUMNS=60))
    wide = run_cli("explain", *argv, "--wide", env=cli_env(COLUMNS=60))
    assert fitted.returncode == wide.returncode == 0, fitted.stderr + wide.stderr
    text = fitted.stdout
    if argv == ["--exercise"]:
        assert wide.stdout == exercise_text()
        toml = exercise_parts()[1]
        assert text.endswith("\n" + toml)
        text = text[:-len(toml)]
    elif argv == ["--glossary"]:
        assert wide.stdout == glossary_text()
    assert max(map(columns, text.splitlines())) <= 60 < max(map(columns, wide.stdout.splitlines()))
    assert fitted.stdout.count("\n\n") == wide.stdout.count("\n\n")
    assert fitted.stdout.split() == wide.stdout.split()
    if argv == ["--glossary"]:      # a term's name too (one is 56 columns)
        assert max(map(columns, glossary_text(44).splitlines())) <= 44

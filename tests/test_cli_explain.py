"""``emu explain --exercise`` and ``--solve`` honour FILE and ``--set`` (the
exercise posed on another scenario), and refuse the options of a narration's
window, which the exercise fixes."""

from __future__ import annotations

import re

import pytest

from clirun import assert_usage_error, run_cli
from emu.teach.exercise import EXERCISE_TOML, exercise_text


def answer(text: str) -> tuple:
    m = re.search(r"computed by the model: direct (\d+), direct-save-on-switch (\d+)", text)
    assert m, text
    return int(m[1]), int(m[2])


def test_exercise_is_posed_on_the_set_keys():
    plain = run_cli("explain", "--exercise")
    posed = run_cli("explain", "--exercise", "--set", "kvm.handler=c")
    assert plain.returncode == posed.returncode == 0
    assert plain.stdout == exercise_text()
    assert posed.stdout != plain.stdout and "--set kvm.handler=c" in posed.stdout


def test_solve_counts_the_misses_of_the_scenario_set():
    # 20 pages: faulted in before vcpu_load #4 (40 would still be faulting in, and
    # the guest kernel's accesses in the window void the hand derivation)
    p = run_cli("explain", "--solve", "--set", "vm.0.process.0.workload.pages=20")
    assert p.returncode == 0, p.stderr
    assert answer(p.stdout) == (20, 0)            # every one of the 20 pages misses once
    p = run_cli("explain", "--solve", "--set", "vm.0.process.0.workload.pages=40")
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

"""``emu config dump``: the resolved scenario as TOML, which loads back to it."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from emu.cli import main as emu_main
from emu.errors import ConfigError
from emu.params import (default_scenario, load_scenario, scenario_from_dict, scenario_to_dict,
                        scenario_to_toml)
from emu.params.load import tomllib
from emu.run import resolve, run

DATA = Path(__file__).resolve().parent / "data"

SCENARIOS = {
    "default": lambda: default_scenario(),
    "every key": lambda: load_scenario(DATA / "cfg_full.toml"),
    "e500": lambda: load_scenario(DATA / "cfg_e500.toml"),
    "overrides": lambda: resolve({}, [
        "vm.1.vcpus=2", "host_task.0.name=b\\\"q", "costs.exit_light=99", "sim.warmup_ms=0.25",
        'name="quote \\" and ünïcode"', 'question="a tab\\there, a line\\nbreak"',
        'vm.0.process.0.workload={kind = "sweep", pages = 8}']),
}


@pytest.mark.parametrize("case", sorted(SCENARIOS))
def test_the_dump_loads_back_to_the_same_scenario(case, tmp_path):
    s = SCENARIOS[case]()
    text = scenario_to_toml(s)
    assert scenario_from_dict(tomllib.loads(text)) == s
    elsewhere = tmp_path / "sub" / "dump.toml"      # trace paths are absolute: any place works
    elsewhere.parent.mkdir()
    elsewhere.write_text(text, encoding="utf-8")
    assert load_scenario(elsewhere) == s
    assert scenario_to_toml(load_scenario(elsewhere)) == text


def test_the_dump_holds_every_key_in_tables_and_arrays_of_tables():
    s = load_scenario(DATA / "cfg_full.toml")
    text = scenario_to_toml(s)
    for header in ("[machine]", "[kvm]", "[costs]", "[[vm]]", "[[vm.process]]",
                   "[vm.process.workload]", "[[host_task]]", "[host_task.workload]", "[sim]"):
        assert f"\n{header}\n" in text
    assert text.count("\n[[vm]]\n") == 2 and text.count("\n[[host_task]]\n") == 2
    assert tomllib.loads(text) == scenario_to_dict(s)


def test_emu_config_dump_prints_the_scenario_run_would_use(tmp_path, capsys):
    sets = ["--set", "kvm.strategy=direct", "--set", "duration_ms=0.5"]
    assert emu_main(["config", "dump", str(DATA / "cfg_e500.toml")] + sets) == 0
    out = capsys.readouterr().out
    assert out.startswith("# emu config dump (emu ")
    assert f"# from: {DATA / 'cfg_e500.toml'} --set kvm.strategy=direct --set duration_ms=0.5" \
        in out
    assert load_scenario(DATA / "cfg_e500.toml", ["kvm.strategy=direct", "duration_ms=0.5"]) \
        == scenario_from_dict(tomllib.loads(out))


def test_running_the_dump_runs_the_same_scenario(tmp_path, capsys):
    sets = ["kvm.strategy=shadow", "duration_ms=0.5", "vm.0.process.0.workload.pages=30"]
    out = tmp_path / "dump.toml"
    assert emu_main(["config", "dump", "-o", str(out)] + [a for s in sets for a in ("--set", s)]) \
        == 0
    assert capsys.readouterr().out == f"{out}\n"
    assert run(out).summary == run(default_scenario(), sets).summary


def test_a_bad_override_is_one_line_and_writes_nothing(tmp_path, capsys, monkeypatch):
    out = tmp_path / "dump.toml"
    assert emu_main(["config", "dump", "-o", str(out), "--set", "kvm.stratgy=x"]) == 2
    err = capsys.readouterr().err
    assert err == "emu: error: unknown key 'kvm.stratgy' (did you mean 'kvm.strategy'?)\n"
    assert not out.exists()
    assert emu_main(["config"]) == 2                # its commands, as `emu` alone lists them
    assert "\n  dump  write the resolved scenario as TOML\n" in capsys.readouterr().out
    assert emu_main(["config", "dump", "-o", str(tmp_path)]) == 2
    assert capsys.readouterr().err == (f"emu: error: {tmp_path}: is a folder; give the name of "
                                       "the file to write\n")
    assert emu_main(["config", "dump", "-o", ""]) == 2            # not stdout: one line
    assert capsys.readouterr() == ("", "emu: error: --output '': an empty path names no file\n")
    monkeypatch.chdir(tmp_path)
    assert emu_main(["config", "dump"]) == 0
    printed = capsys.readouterr().out
    assert emu_main(["config", "dump", "-o", "-"]) == 0     # stdout, not a file called '-'
    assert capsys.readouterr().out == printed and not (tmp_path / "-").exists()
    # an override holding a line break stays inside the comment that names it
    odd = 'question=x\ny\r'
    assert emu_main(["config", "dump", "--set", odd]) == 0
    out = capsys.readouterr().out
    assert scenario_from_dict(tomllib.loads(out)) == resolve(default_scenario(), [odd])
    assert "\n# from: the built-in scenario --set question=x\\ny\\r\n" in out
    with pytest.raises(ConfigError):
        resolve(default_scenario(), ["vm.0.vcpus=0"])


def test_a_dump_into_a_result_folder_is_refused(tmp_path, capsys):
    """A file of its own inside a run's folder made that folder one emu could
    no longer replace (--force refused it for holding a file emu did not write)."""
    result, scenario = tmp_path / "r", tmp_path / "s.toml"
    scenario.write_text("duration_ms = 0.05\n")
    assert emu_main(["run", str(scenario), "--out", str(result)]) == 0
    capsys.readouterr()
    before = sorted(p.name for p in result.iterdir())
    for out in (result / "resolved.toml", result / "sub" / "resolved.toml"):
        assert emu_main(["config", "dump", "-o", str(out)]) == 2
        assert capsys.readouterr() == ("", f"emu: error: --output {out}: inside {result}, which "
                                           f"holds a run; write outside it (emu replaces a result "
                                           f"folder as a whole)\n")
    assert sorted(p.name for p in result.iterdir()) == before
    assert emu_main(["run", str(scenario), "--out", str(result), "--force"]) == 0


@pytest.mark.property
@given(name=st.text(st.characters(blacklist_categories=("Cc", "Zl", "Zp")), max_size=40),
       text=st.text(max_size=40), seed=st.integers(0, 2**64 - 1),
       # from one cycle at the default 667 MHz (1.5e-6 ms): a run must last one
       duration=st.floats(min_value=1.5e-6, max_value=3.6e6, allow_nan=False),
       run_us=st.floats(min_value=0, max_value=1e9, allow_nan=False))
@settings(max_examples=150, deadline=None)
@example(name="\" \\\u00e9\U0001f600 [x]", text="\x7f \x00\t\"\\\u00e9\U0001f600\n[x]",
         seed=2**64 - 1, duration=1.5e-6, run_us=0.1)
def test_any_text_and_number_survive_the_dump(name, text, seed, duration, run_us):
    """A name is one line (emu.params.fields.Name); a question any text."""
    s = scenario_from_dict({"name": name, "question": text, "seed": seed,
                            "duration_ms": duration,
                            "host_task": [{"name": name, "run_us": run_us}]})
    assert scenario_from_dict(tomllib.loads(scenario_to_toml(s))) == s

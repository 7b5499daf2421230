"""Tests of emu.kvm.strategies: the registry, and every design facing the same checks."""

from __future__ import annotations

import doctest

import pytest

from emu import codes
from emu.params import CORES, STRATEGIES, scenario_from_dict
from emu.costs import CostTable
from emu.errors import ConfigError
from emu.kvm import strategies
from emu.kvm.strategies.base import NO_PID, Strategy
from emu.machine import Machine

HOOKS = ("entry_base", "entry_per_mod", "new_shadow_array", "memory_bytes", "vcpu_load",
         "vcpu_put", "priv_switch", "set_pid", "set_shadow_pids")
WORDING = ("origin", "does", "isolation", "save_restore_work")

#: Why a 440 design that saves and restores flat UTLB indices is not on the e500.
INDEX_REASON = ("cannot be modelled on the e500: it saves and restores the 440 UTLB's flat "
                "indices 0..hwater (kvmppc_44x_tlb_put / _load), and KVM e500 never had that "
                "design (docs/kvm440.md §4.2); use 'shadow', 'shadow-modified', 'direct', "
                "'e500-flush-on-put' or 'e500-shadow-ids'")
#: The shadow designs run on the e500 (hypothetical): only a core that ignores the
#: index refuses them (machine.tlb_index, tests/test_e500.py).
REFUSED = {
    ("direct-save-on-switch", "e500"): f"kvm.strategy: 'direct-save-on-switch' {INDEX_REASON}",
    ("e500-flush-on-put", "440"):
        "kvm.strategy: 'e500-flush-on-put' needs machine.core = 'e500' (machine.core is '440')",
    ("e500-shadow-ids", "440"):
        "kvm.strategy: 'e500-shadow-ids' needs machine.core = 'e500' (machine.core is '440')",
}


# -- the registry -------------------------------------------------------------------------

def test_the_registry_holds_the_numbered_designs_in_order():
    assert strategies.NAMES == codes.STRATEGIES + ("direct-noflush",) == STRATEGIES
    for name, cls in strategies.CLASSES.items():
        assert cls.name == name
        assert cls(CostTable({}), 62).code == codes.STRATEGY[cls.fastpath or name]
    # direct-noflush differs from direct only in its vcpu_put: the fast path runs it as direct
    assert strategies.get("direct-noflush")(CostTable({}), 62).code == codes.STRATEGY["direct"]


def test_eras_and_labels():
    """Every design's eras, as docs/kvm440.md §2.10 lists them, and the labels tables print."""
    eras = {name: dict(cls.eras) for name, cls in strategies.CLASSES.items()}
    assert eras == {"shadow": {"guest-tid": "2.6.26"},
                    "shadow-modified": {"guest-tid": "83aae4a8", "swap-pid": "49dd2c49",
                                        "tid01": "2.6.28"},
                    "direct": {"tid01": "7924bd41"},
                    "direct-save-on-switch": {"tid01": "67577927"},
                    "e500-flush-on-put": {}, "e500-shadow-ids": {},
                    "direct-noflush": {"tid01": "7924bd41 without _tlbia"}}
    label = {(name, core, scheme): strategies.resolve(name, core, scheme).label
             for name, core, scheme in [
                 ("shadow", "440", None), ("shadow-modified", "440", "guest-tid"),
                 ("shadow-modified", "440", "swap-pid"), ("shadow-modified", "440", None),
                 ("direct", "440", None), ("direct-save-on-switch", "440", None),
                 ("direct-noflush", "440", None)]}
    # 0164c0f0 kept a reference per guest TLB0 entry; with get_user_pages it never existed
    label[("e500-shadow-ids", "e500", None)] = strategies.resolve(
        "e500-shadow-ids", "e500", pfn_source="guest-tlb-refs").label
    assert strategies.resolve("e500-shadow-ids", "e500").label == \
        "hypothetical: 0164c0f0 (C) + gup"
    assert list(label.values()) == [
        "2.6.26 (guest-tid, C)", "83aae4a8 (guest-tid, C)", "49dd2c49 (swap-pid, C)",
        "2.6.28 (tid01, C)", "7924bd41 (tid01, C)", "67577927 (tid01, C)",
        "hypothetical: 7924bd41 without _tlbia (tid01, C)", "0164c0f0 (C)"]
    proposal = strategies.resolve("direct", "440", handler="asm", pfn_source="pfn-cache")
    assert (proposal.label, proposal.commit, proposal.tid_scheme, proposal.hypothetical) == (
        "proposal: direct + asm + pfn-cache", "", "tid01", False)
    # the proposal in another era than the design's own names it
    assert strategies.resolve("direct", "440", "guest-tid", "asm", "pfn-cache",
                              hypothetical=True).label == (
        "hypothetical: proposal: direct (guest-tid) + asm + pfn-cache")
    # another design with the asm handler never existed: hypothetical, and no commit
    for args, label in [
            (("shadow-modified", "440", "guest-tid", "asm", "gup"),
             "hypothetical: 83aae4a8 (guest-tid, asm)"),
            (("direct", "440", None, "asm", "gup"), "hypothetical: 7924bd41 (tid01, asm)"),
            (("shadow", "e500", None, "asm", "pfn-cache"), "hypothetical: shadow (asm) + pfn-cache")]:
        d = strategies.resolve(*args)
        assert (d.label, d.commit, d.hypothetical) == (label, "", True)
    # another pfn source than the kernel's get_user_pages is named, and makes a
    # machine that never existed (but for the proposal's pfn cache)
    pinned = strategies.resolve("direct", "440", pfn_source="pin-all")
    assert (pinned.label, pinned.commit, pinned.hypothetical) == (
        "hypothetical: 7924bd41 (tid01, C) + pin-all", "7924bd41", True)
    assert strategies.resolve("shadow", "440", pfn_source="gup").hypothetical is False
    odd = strategies.resolve("direct", "440", "guest-tid", hypothetical=True)
    assert (odd.label, odd.commit, odd.hypothetical) == (
        "hypothetical: direct (guest-tid, C)", "", True)
    # direct on the e500 is a model of the design, not something KVM e500 shipped
    assert strategies.resolve("direct", "e500").label == "hypothetical: direct (C)"


def test_unknown_names_are_refused():
    for bad in ("bogus", "Shadow", ""):
        assert strategies.lookup(bad) is None
        with pytest.raises(ConfigError) as info:
            strategies.get(bad)
        assert str(info.value) == (f"kvm.strategy: unknown strategy {bad!r} (choose from: "
                                   + ", ".join(strategies.NAMES) + ")")
        with pytest.raises(ConfigError, match="unknown strategy"):
            strategies.make_strategy(bad, "440", CostTable({}), 62)


@pytest.mark.parametrize("name", codes.STRATEGIES)
@pytest.mark.parametrize("core", CORES)
def test_core_constraints(name, core):
    expected = REFUSED.get((name, core))
    assert strategies.refusal(name, core) == expected
    assert (name in strategies.allowed_on(core)) == (expected is None)
    overrides = {"machine": {"core": core}, "kvm": {"strategy": name}}
    if expected is None:
        strategies.check_core(name, core)
        assert scenario_from_dict(overrides).kvm.strategy == name
        assert strategies.make_strategy(name, core, CostTable({}), 62).name == name
        return
    for refuse in (lambda: strategies.check_core(name, core),
                   lambda: strategies.make_strategy(name, core, CostTable({}), 62),
                   lambda: scenario_from_dict(overrides)):
        with pytest.raises(ConfigError) as info:
            refuse()
        assert str(info.value) == expected


def test_allowed_on():
    assert strategies.allowed_on("440") == ("shadow", "shadow-modified", "direct",
                                            "direct-save-on-switch", "direct-noflush")
    assert strategies.allowed_on("e500") == ("shadow", "shadow-modified", "direct",
                                             "e500-flush-on-put", "e500-shadow-ids",
                                             "direct-noflush")


# -- every design faces the same checks ---------------------------------------------------

def _machine(name: str) -> Machine:
    core = "e500" if name.startswith("e500") else "440"
    return Machine(scenario_from_dict({"machine": {"core": core}, "kvm": {"strategy": name},
                                       "duration_ms": 1}))


class BaseStrategyChecks:
    """What every registered design must satisfy; subclassed once per design."""

    name = ""

    @pytest.fixture
    def machine(self):
        return _machine(self.name)

    def test_is_registered_with_every_hook(self):
        cls = strategies.get(self.name)
        assert issubclass(cls, Strategy)
        for hook in HOOKS:
            assert callable(getattr(cls, hook))

    def test_wording_and_constraints(self):
        cls = strategies.get(self.name)
        for attr in WORDING:
            text = getattr(cls, attr)
            assert isinstance(text, str) and text.strip() and "\n" not in text
        assert cls.cores and set(cls.cores) <= set(CORES)
        if set(cls.cores) != set(CORES):
            assert cls.refusal

    def test_memory_is_bytes(self, machine):
        mem = machine.strategy.memory_bytes()
        assert mem and all(isinstance(v, int) and v > 0 for v in mem.values())

    def test_hooks_return_cycles(self, machine):
        s, cpu, vcpu = machine.strategy, machine.cpus[0], machine.vcpus[0]
        assert s.entry_base() >= 0 and s.entry_per_mod() >= 0
        assert (vcpu.shadow is None) == (s.new_shadow_array(machine.backend) is None)
        for hook in (s.vcpu_load, s.set_shadow_pids, s.vcpu_put,
                     s.set_shadow_pids, lambda c, v: s.priv_switch(c, v, False),
                     lambda c, v: s.set_pid(c, v, 7), lambda c, v: s.priv_switch(c, v, True)):
            cycles = hook(cpu, vcpu)
            assert isinstance(cycles, int) and cycles >= 0


class TestShadow(BaseStrategyChecks):
    name = "shadow"


class TestShadowModified(BaseStrategyChecks):
    name = "shadow-modified"


class TestDirect(BaseStrategyChecks):
    name = "direct"


class TestDirectSaveOnSwitch(BaseStrategyChecks):
    name = "direct-save-on-switch"


class TestDirectNoflush(BaseStrategyChecks):
    name = "direct-noflush"


class TestE500FlushOnPut(BaseStrategyChecks):
    name = "e500-flush-on-put"


class TestE500ShadowIds(BaseStrategyChecks):
    name = "e500-shadow-ids"


def test_every_design_faces_the_checks():
    assert sorted(c.name for c in BaseStrategyChecks.__subclasses__()) == sorted(strategies.NAMES)


# -- hand-derived cases of single hooks ----------------------------------------------------

def _own_entries(cpu, vcpu, indices, ts=1):
    """Write one 4 KB entry owned by ``vcpu`` at each hardware index."""
    me = vcpu.ctx.ctx
    for n, i in enumerate(indices):
        cpu.write(i, 0x1000_0000 + n * 0x1000, 12, 0, ts, 0x20_0000 + n * 0x1000, me << 8, me)


def test_shadow_entry_cost():
    """The entry loops run over 0..hwater-1 (docs/kvm440.md §2.10): 62 indices at hwater 62."""
    m = _machine("shadow")
    assert m.strategy.entry_base() == 62 * m.costs["shadow_restore_per_entry"]
    assert m.strategy.entry_per_mod() == 0
    m = _machine("shadow-modified")
    c = m.costs
    assert m.strategy.entry_base() == 62 * c["shadow_mod_scan_per_entry"] + c["shadow_mod_clear"]
    assert m.strategy.entry_per_mod() == c["shadow_mod_write_per_entry"]
    # 62 x 5 + 36, and 7 + 3 x tlbwe per modified index
    assert (m.strategy.entry_base(), m.strategy.entry_per_mod()) == (346, 10)


def test_e500_flush_on_put_flushes_everything():
    m = _machine("e500-flush-on-put")
    s, cpu, vcpu = m.strategy, m.cpus[0], m.vcpus[0]
    _own_entries(cpu, vcpu, [0, 1, 2])
    assert s.vcpu_put(cpu, vcpu) == m.costs["e500_flush"]
    assert int(cpu.tlb.valid_arr.sum()) == 0


def test_e500_shadow_ids_allocate_once_per_context():
    m = _machine("e500-shadow-ids")
    s, cpu, vcpu = m.strategy, m.cpus[0], m.vcpus[0]
    assert not s.tables                                # nothing allocated before vcpu_load
    vcpu.ctx.guest_pid, vcpu.ctx.guest_pr = 5, 1
    # (vCPU, TID 5, PR 1) and (vCPU, TID 0, PR 1): two new IDs, 1 and 2
    assert s.set_shadow_pids(cpu, vcpu) == 2 * m.costs["e500_sid_alloc"]
    assert (vcpu.ctx.shadow_pid, vcpu.ctx.pid1) == (1, 2)
    assert s.set_shadow_pids(cpu, vcpu) == 0
    # a new guest PID releases nothing: (vCPU, TID 6, PR 1) gets ID 3
    assert s.set_pid(cpu, vcpu, 6) == m.costs["e500_sid_alloc"]
    assert (vcpu.ctx.shadow_pid, vcpu.ctx.pid1) == (3, 2)


def test_default_shadow_pids_follow_the_guest_mode():
    m = _machine("direct")
    s, cpu, vcpu = m.strategy, m.cpus[0], m.vcpus[0]
    vcpu.ctx.guest_pr = 1
    assert s.set_shadow_pids(cpu, vcpu) == 0
    assert (vcpu.ctx.shadow_pid, vcpu.ctx.pid1) == (0, NO_PID)
    vcpu.ctx.guest_pr = 0
    s.set_shadow_pids(cpu, vcpu)
    assert vcpu.ctx.shadow_pid == 1


def test_doctests():
    assert doctest.testmod(strategies).failed == 0

"""KVM's TLB strategies (docs/design.md §4): one module per design, and their registry.

The registry below is the only place that knows which designs exist and on
which cores each can run: the scenario's validation, the fast path's number
of a design and the reports ask it.  Each design is one class (its module
says which); :mod:`emu.kvm.strategies.base` documents the hooks.

>>> from emu.kvm import strategies
>>> strategies.allowed_on("e500")
('direct', 'e500-flush-on-put', 'e500-shadow-ids')
>>> strategies.refusal("e500-shadow-ids", "440")
"kvm.strategy: 'e500-shadow-ids' needs machine.core = 'e500' (machine.core is '440')"
"""

from __future__ import annotations

from typing import Optional

from emu.codes import STRATEGIES as _NUMBERED
from emu.errors import ConfigError
from emu.kvm.strategies.base import Strategy
from emu.kvm.strategies.direct import Direct
from emu.kvm.strategies.direct_save_on_switch import DirectSaveOnSwitch
from emu.kvm.strategies.e500_flush_on_put import E500FlushOnPut
from emu.kvm.strategies.e500_shadow_ids import E500ShadowIds
from emu.kvm.strategies.shadow import Shadow
from emu.kvm.strategies.shadow_modified import ShadowModified

__all__ = ["CLASSES", "NAMES", "Strategy", "allowed_on", "check_core", "get", "lookup",
           "make_strategy", "refusal"]


def _registry(*classes) -> dict[str, type[Strategy]]:
    """The designs by name, in the fast path's numbering (``emu.codes.STRATEGIES``)."""
    by_name = {cls.name: cls for cls in classes}
    if set(by_name) != set(_NUMBERED) or len(by_name) != len(classes):
        raise ImportError(f"emu.kvm.strategies: the designs {sorted(by_name)} do not match "
                          f"the fast path's numbering {sorted(_NUMBERED)}")
    return {name: by_name[name] for name in _NUMBERED}


#: Every design, by name, in the order the fast path numbers them.
CLASSES = _registry(Shadow, ShadowModified, Direct, DirectSaveOnSwitch, E500FlushOnPut,
                    E500ShadowIds)
#: Their names (the choices of ``kvm.strategy``).
NAMES = tuple(CLASSES)


def lookup(name) -> Optional[type[Strategy]]:
    """The class of design ``name``, or None (a report may read an unknown name)."""
    return CLASSES.get(name)


def get(name: str) -> type[Strategy]:
    """The class of design ``name``; ConfigError (one line) for an unknown name."""
    cls = lookup(name)
    if cls is None:
        raise ConfigError(f"kvm.strategy: unknown strategy {name!r} "
                          f"(choose from: {', '.join(NAMES)})")
    return cls


def allowed_on(core: str) -> tuple[str, ...]:
    """The designs that can be modelled on ``core``."""
    return tuple(name for name, cls in CLASSES.items() if core in cls.cores)


def _or(names) -> str:
    quoted = [f"'{n}'" for n in names]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]


def refusal(name: str, core: str) -> Optional[str]:
    """Why design ``name`` cannot run on ``core`` (one line), or None if it can."""
    cls = get(name)
    if core in cls.cores:
        return None
    return f"kvm.strategy: '{name}' " + cls.refusal.format(core=core,
                                                           alternatives=_or(allowed_on(core)))


def check_core(name: str, core: str) -> None:
    """Raise ConfigError (one line) unless design ``name`` can run on ``core``."""
    reason = refusal(name, core)
    if reason is not None:
        raise ConfigError(reason)


def make_strategy(name: str, core: str, costs, hwater: int) -> Strategy:
    """The strategy ``name`` for ``core``; ConfigError when it cannot be modelled."""
    check_core(name, core)
    return get(name)(costs, hwater)

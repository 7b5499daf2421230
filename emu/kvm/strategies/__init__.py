"""KVM's TLB strategies (docs/design.md §4): one module per design, and their registry.

The registry below is the only place that knows which designs exist, on
which cores each can run, which kernel shipped it in which TID era with
which miss handler, and how a table names it: the scenario's validation, the
fast path's number of a design and the reports ask it.  Each design is one
class (its module says which); :mod:`emu.kvm.strategies.base` documents the
hooks and the TID eras.

>>> from emu.kvm import strategies
>>> strategies.allowed_on("e500")
('shadow', 'shadow-modified', 'direct', 'e500-flush-on-put', 'e500-shadow-ids', 'direct-noflush')
>>> strategies.resolve("shadow", "e500").label
'hypothetical: shadow (C)'
>>> strategies.refusal("e500-shadow-ids", "440")
"kvm.strategy: 'e500-shadow-ids' needs machine.core = 'e500' (machine.core is '440')"
>>> strategies.resolve("shadow-modified", "440", tid_scheme="guest-tid").label
'83aae4a8 (guest-tid, C)'
>>> strategies.resolve("direct", "440", handler="asm", pfn_source="pfn-cache").label
'proposal: direct + asm + pfn-cache'
>>> strategies.resolve("direct", "440", tid_scheme="guest-tid")
Traceback (most recent call last):
...
emu.errors.ConfigError: kvm.tid_scheme: 'guest-tid' never ran with kvm.strategy 'direct' (7924bd41 is tid01); set kvm.hypothetical = true to run it anyway
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from emu.codes import STRATEGIES as _NUMBERED
from emu.codes import TID_SCHEMES, handler_name
from emu.errors import ConfigError
from emu.kvm.strategies.base import HARDWARE_INDEX_REFUSAL, Strategy
from emu.kvm.strategies.direct import Direct
from emu.kvm.strategies.direct_noflush import DirectNoflush
from emu.kvm.strategies.direct_save_on_switch import DirectSaveOnSwitch
from emu.kvm.strategies.e500_flush_on_put import E500FlushOnPut
from emu.kvm.strategies.e500_shadow_ids import E500ShadowIds
from emu.kvm.strategies.shadow import Shadow
from emu.kvm.strategies.shadow_modified import ShadowModified

__all__ = ["CLASSES", "NAMES", "TID_SCHEMES", "HARDWARE_INDEX_REFUSAL", "HISTORICAL_HANDLER",
           "PROPOSAL", "Design", "Strategy",
           "allowed_on", "check_core", "get", "lookup", "make_strategy", "refusal", "resolve"]

#: The miss handler every KVM-440 and KVM e500 design shipped with: no version
#: had an assembly fast path; every TLB-miss exit went through
#: kvmppc_handle_exit in C (docs/kvm440.md §2.10).  ``asm`` is the seed's proposal.
HISTORICAL_HANDLER = "c"

#: The seed's proposal, which no kernel shipped: (strategy, handler, pfn source).
#: Another design with the ``asm`` handler is a machine that never existed either,
#: and is labelled hypothetical (docs/design.md §4.1).
PROPOSAL = ("direct", "asm", "pfn-cache")


def _registry(*classes) -> dict[str, type[Strategy]]:
    """The designs by name: the fast path's numbered designs in their order
    (``emu.codes.STRATEGIES``), then those that run as one of them."""
    by_name = {cls.name: cls for cls in classes}
    numbered = [name for name in _NUMBERED if name in by_name]
    runs_as = {(cls.fastpath or cls.name) for cls in classes}
    if (len(by_name) != len(classes) or len(numbered) != len(_NUMBERED)
            or not runs_as <= set(_NUMBERED)
            or any(by_name[n].fastpath not in ("", n) for n in numbered)):
        raise ImportError(f"emu.kvm.strategies: the designs {sorted(by_name)} do not match "
                          f"the fast path's numbering {sorted(_NUMBERED)}")
    extra = [cls.name for cls in classes if cls.name not in _NUMBERED]
    return {name: by_name[name] for name in numbered + extra}


#: Every design, by name: the fast path's numbered ones first, in its order.
CLASSES = _registry(Shadow, ShadowModified, Direct, DirectSaveOnSwitch, E500FlushOnPut,
                    E500ShadowIds, DirectNoflush)
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
    # the alternatives are designs, not the hypothetical foil of one (direct-noflush)
    shipped = [n for n in allowed_on(core) if not CLASSES[n].hypothetical]
    return f"kvm.strategy: '{name}' " + cls.refusal.format(core=core, alternatives=_or(shipped))


def check_core(name: str, core: str) -> None:
    """Raise ConfigError (one line) unless design ``name`` can run on ``core``."""
    reason = refusal(name, core)
    if reason is not None:
        raise ConfigError(reason)


# -- eras, handlers and labels ------------------------------------------------------------

_ANYWAY = "; set kvm.hypothetical = true to run it anyway"


@dataclass(frozen=True)
class Design:
    """A design as a run uses it: the strategy in its TID era with its miss
    handler and pfn source, what shipped it and how tables name it."""

    strategy: str
    #: The TID era (None: no 440 era applies, as on the e500).
    tid_scheme: Optional[str]
    handler: str
    pfn_source: str
    #: No kernel shipped this combination.
    hypothetical: bool
    #: The kernel version or commit that shipped it ('' when none did).
    commit: str
    #: How tables, reports and help name it, e.g. ``83aae4a8 (guest-tid, C)``.
    label: str

    @property
    def row_label(self) -> str:
        """The label with the design's name, as a comparison's row gives it:
        ``shadow-modified 83aae4a8 (guest-tid, C)``, ``proposal: direct + asm +
        pfn-cache``, ``hypothetical: direct-noflush 7924bd41 without _tlbia (tid01, C)``."""
        mark = "hypothetical: "
        text = self.label.removeprefix(mark) if self.hypothetical else self.label
        if not text.startswith(("proposal: ", self.strategy + " ")):
            text = f"{self.strategy} {text}"
        return mark + text if self.hypothetical else text


def _label(cls, scheme, handler, pfn_source, hypothetical) -> tuple[str, str]:
    """(commit, label) of design ``cls`` run in ``scheme`` with ``handler``: the
    proposal is named as such; another design names what shipped it, its era, its
    handler (``C``, or ``asm``, which no kernel shipped: no commit then) and a pfn
    source other than its kernel's."""
    commit = cls.eras.get(scheme, "") if scheme else cls.shipped
    if (cls.name, handler, pfn_source) == PROPOSAL:
        era = f" ({scheme})" if scheme and scheme != cls.default_era else ""
        commit, text = "", f"proposal: {cls.name}{era} + {handler} + {pfn_source}"
    else:
        text = f"{commit or cls.name} ({', '.join(x for x in (scheme, handler_name(handler)) if x)})"
        if cls.historical_pfn_source not in (None, pfn_source):
            text += f" + {pfn_source}"
        if handler != HISTORICAL_HANDLER:
            commit = ""
    return commit, ("hypothetical: " + text if hypothetical else text)


def resolve(name: str, core: str, tid_scheme: Optional[str] = None,
            handler: Optional[str] = None, pfn_source: str = "gup",
            hypothetical: bool = False) -> Design:
    """Design ``name`` on ``core`` as a run uses it; ConfigError (one line) when
    it cannot be modelled.

    An unset ``tid_scheme`` is the design's own era on the 440 (``shadow``:
    guest-tid, ``shadow-modified``: tid01, the direct designs: tid01) and none
    on the e500; an unset ``handler`` is the historical C handler.  A TID era
    the design never ran with, or any 440 era on the e500, is refused unless
    ``hypothetical``; a design no kernel shipped (another core's, another
    era's, or with the ``asm`` handler or a pfn source its kernel never used,
    unless it is the :data:`PROPOSAL`) is hypothetical whatever is asked.
    """
    check_core(name, core)
    cls = get(name)
    if tid_scheme is not None and tid_scheme not in TID_SCHEMES:
        raise ConfigError(f"kvm.tid_scheme: unknown scheme {tid_scheme!r} "
                          f"(choose from: {', '.join(TID_SCHEMES)})")
    if tid_scheme is None:
        scheme = cls.default_era if core == "440" else None
    else:
        scheme = tid_scheme
        if not hypothetical and core != "440":
            raise ConfigError(f"kvm.tid_scheme: the 440 TID eras do not apply to "
                              f"machine.core = '{core}'{_ANYWAY}")
        if not hypothetical and scheme not in cls.eras:
            ran = ", ".join(f"{commit} is {era}" for era, commit in cls.eras.items())
            raise ConfigError(f"kvm.tid_scheme: '{scheme}' never ran with kvm.strategy "
                              f"'{name}' ({ran}){_ANYWAY}")
    handler = handler or HISTORICAL_HANDLER
    shipped = scheme in cls.eras if core == "440" else bool(cls.shipped) and scheme is None
    proposal = (name, handler, pfn_source) == PROPOSAL
    # the handler and the pfn source are part of the machine too: a design with
    # one its kernel never had (the asm handler, a pfn cache) never existed
    foreign_pfn = cls.historical_pfn_source not in (None, pfn_source)
    hypothetical = bool(hypothetical or cls.hypothetical or not shipped
                        or (handler != HISTORICAL_HANDLER and not proposal)
                        or (foreign_pfn and not proposal))
    commit, label = _label(cls, scheme, handler, pfn_source, hypothetical)
    return Design(name, scheme, handler, pfn_source, hypothetical, commit, label)


def make_strategy(name: str, core: str, costs, hwater: int,
                  tid_scheme: Optional[str] = None) -> Strategy:
    """The strategy ``name`` for ``core`` in TID era ``tid_scheme`` (unset: the
    design's own era on the 440); ConfigError when it cannot be modelled."""
    check_core(name, core)
    cls = get(name)
    if tid_scheme is None and core == "440":
        tid_scheme = cls.default_era
    return cls(costs, hwater, tid_scheme, core)

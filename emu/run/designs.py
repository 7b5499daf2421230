"""What ``emu run`` without FILE compares: the designs as KVM shipped them, next to the proposal.

Each row is a :class:`~emu.run.comparison.Variant`: a design with the TID era,
miss handler and pfn source it ran with (docs/kvm440.md §2.10), labelled with
the commit that shipped it; the last row is the seed's proposal, which no
kernel shipped.  On the e500 the rows are its own designs (docs/kvm440.md §4),
then what no e500 kernel shipped, labelled hypothetical.

>>> [v.label for v in default_variants()[0]]          # doctest: +NORMALIZE_WHITESPACE
['shadow 2.6.26 (guest-tid, C)', 'shadow-modified 83aae4a8 (guest-tid, C)',
 'shadow-modified 49dd2c49 (swap-pid, C)', 'shadow-modified 2.6.28 (tid01, C)',
 'direct 7924bd41 (tid01, C)', 'direct-save-on-switch 67577927 (tid01, C)',
 'proposal: direct + asm + pfn-cache']
"""

from __future__ import annotations

import copy

from emu.errors import ConfigError
from emu.kvm import strategies
from emu.params import UnusedKey, apply_overrides, default_scenario, design
from emu.params.fields import toml_text
from emu.params.load import DEFAULT_SCENARIO_DATA
from emu.run.comparison import Variant
from emu.run.scenario import resolve

#: What the default comparison's labels name (``comparison.json``'s ``key``).
KEY = "design"

#: The default comparison on the 440: each design in each era it shipped with,
#: with the historical C handler and get_user_pages (every KVM-440 version),
#: then the proposal: direct insertion with the assembly handler and the pfn cache.
DEFAULT_VARIANTS = (
    {"kvm.strategy": "shadow", "kvm.handler": "c", "kvm.pfn_source": "gup"},
    {"kvm.strategy": "shadow-modified", "kvm.tid_scheme": "guest-tid", "kvm.handler": "c",
     "kvm.pfn_source": "gup"},
    {"kvm.strategy": "shadow-modified", "kvm.tid_scheme": "swap-pid", "kvm.handler": "c",
     "kvm.pfn_source": "gup"},
    {"kvm.strategy": "shadow-modified", "kvm.tid_scheme": "tid01", "kvm.handler": "c",
     "kvm.pfn_source": "gup"},
    {"kvm.strategy": "direct", "kvm.handler": "c", "kvm.pfn_source": "gup"},
    {"kvm.strategy": "direct-save-on-switch", "kvm.handler": "c", "kvm.pfn_source": "gup"},
    {"kvm.strategy": "direct", "kvm.handler": "asm", "kvm.pfn_source": "pfn-cache"},
)

#: On the e500: the two designs KVM shipped there (46f43c6e's flush on put and
#: 0164c0f0's shadow IDs, each keeping a page reference per guest TLB0 entry),
#: both in C, then what no e500 kernel shipped: a shadow TLB restored through
#: ESEL, direct insertion, and the proposal (docs/kvm440.md §4).
DEFAULT_VARIANTS_E500 = (
    {"kvm.strategy": "e500-flush-on-put", "kvm.handler": "c", "kvm.pfn_source": "guest-tlb-refs"},
    {"kvm.strategy": "e500-shadow-ids", "kvm.handler": "c", "kvm.pfn_source": "guest-tlb-refs"},
    {"kvm.strategy": "shadow-modified", "kvm.handler": "c", "kvm.pfn_source": "gup",
     "kvm.hypothetical": "true"},
    {"kvm.strategy": "direct", "kvm.handler": "c", "kvm.pfn_source": "gup"},
    {"kvm.strategy": "direct", "kvm.handler": "asm", "kvm.pfn_source": "pfn-cache"},
)

#: The default comparison of each core.
VARIANTS_BY_CORE = {"440": DEFAULT_VARIANTS, "e500": DEFAULT_VARIANTS_E500}


def default_labels() -> list:
    """The rows of the default comparison on the default scenario, as ``--help`` lists them."""
    return [v.label for v in default_variants()[0]]


def default_table(overrides) -> dict:
    """The built-in scenario's table with ``overrides`` applied: what they set
    there, and no more (it holds no ``kvm`` or ``machine`` table; its one host
    task is there, so that ``host_task.1`` appends a second, as it would to a
    file that holds one)."""
    return apply_overrides(copy.deepcopy(dict(DEFAULT_SCENARIO_DATA)), list(overrides))


def _user_keys(overrides) -> set:
    """The ``kvm.*`` keys ``overrides`` set, one by one or as a ``kvm = {...}`` table."""
    kvm = default_table(overrides).get("kvm")
    return {f"kvm.{k}" for k in kvm} if isinstance(kvm, dict) else set()


def _variant(base, values: dict, overrides=(), resets=None) -> tuple[Variant, object, str]:
    """(the variant setting ``values`` after ``overrides``, then ``resets`` (keys
    back to their defaults), labelled as it resolves; its
    :class:`~emu.kvm.strategies.Design`; the core it runs on); ConfigError when
    it cannot run.  Its folder is named from ``values`` alone, or, when the
    overrides set them all, from the design it runs."""
    keys = dict(values, **(resets or {}))
    sc = resolve(base, list(overrides) + [f"{k}={v}" for k, v in keys.items()])
    d = design(sc.machine, sc.kvm)
    return (Variant(d.row_label, keys, "-".join(values.values()) or sc.kvm.strategy), d,
            sc.machine.core)


def _row(values: dict, overrides, user: set) -> tuple[Variant, object, list]:
    """The row setting ``values`` after ``overrides`` (:func:`_variant`), each
    ``kvm.*`` key of the overrides (``user``) that does nothing in this row
    (:class:`~emu.params.UnusedKey`: the pfn cache's size where the row's pfn
    source is another) set back to its default: (variant, design, the
    UnusedKey of each key set back)."""
    resets: dict = {}
    unused: list = []
    while True:
        try:
            v, d, _ = _variant(default_scenario(), values, overrides, resets)
            return v, d, unused
        except UnusedKey as err:
            if err.key not in user or err.key in resets:
                raise
            unused.append(err)
            resets[err.key] = toml_text(getattr(default_scenario().kvm,
                                                err.key.removeprefix("kvm.")))


def _core(overrides) -> str:
    """The core ``overrides`` choose, one key or a ``machine = {...}`` table (the
    default scenario's otherwise); a value that is no core is refused by the rows."""
    machine = default_table(overrides).get("machine")
    core = machine.get("core") if isinstance(machine, dict) else None
    return core if isinstance(core, str) else default_scenario().machine.core


def _core_refusal(name: str, err: ConfigError) -> bool:
    """Whether ``err`` says that design ``name`` cannot run on the chosen core."""
    cores = {c for cls in strategies.CLASSES.values() for c in cls.cores}
    return any(str(err) == strategies.refusal(name, c) for c in cores)


def default_variants(overrides=()) -> tuple[list, list, str]:
    """What ``emu run`` without FILE compares: ``(variants, overrides, note)``.

    Every override applies to every row, after the row's own keys (a key the
    overrides set is the overrides' in every row), and each row is labelled as
    it then resolves.  One that sets ``kvm.strategy`` narrows the comparison to
    that design's rows, as they shipped (a design without a row runs as the
    scenario sets it, the key taken out of the overrides).  Rows that cannot run with
    the overrides (a design the core cannot run, an era the design never ran
    with) are left out, rows that became the same design run once, and rows in
    which a ``kvm.*`` override does nothing (the pfn cache's size in a row
    whose own pfn source is another) run without it; ``note`` says which and why
    ("" if none).  When no row can run (or only the rows that mark themselves
    hypothetical), or an override does nothing in every row, the reason is
    refused (ConfigError, one line): a bad key or value, naming the choices.
    """
    overrides = list(overrides)
    user = _user_keys(overrides)
    core = _core(overrides)
    chosen = None                       # the design --set kvm.strategy names: its rows alone
    if "kvm.strategy" in user:
        chosen = resolve(default_scenario(), overrides).kvm.strategy
        if not any(v["kvm.strategy"] == chosen
                   for v in VARIANTS_BY_CORE.get(core, DEFAULT_VARIANTS)):
            # a design the comparison has no row of: as the scenario sets it
            rest = [o for o in overrides if str(o).partition("=")[0].strip() != "kvm.strategy"]
            one, _, _ = _variant(default_scenario(), {"kvm.strategy": chosen}, rest)
            return [one], rest, ""
    left_out: dict = {}                 # reason -> the designs it left out
    rows: dict = {}                     # Design -> (its variant, the rows it stands for)
    unused: dict = {}                   # key -> (its UnusedKey, {why: the rows without it})
    for values in VARIANTS_BY_CORE.get(core, DEFAULT_VARIANTS):
        name = values["kvm.strategy"]
        if chosen is not None and name != chosen:
            continue
        try:
            v, d, errs = _row({k: x for k, x in values.items() if k not in user},
                              overrides, user)
        except ConfigError as err:
            # NOTE: named by its label, not its design: the proposal is a direct
            # row too, and was left out unnamed behind "direct left out"
            left_out.setdefault("core" if _core_refusal(name, err) else str(err),
                                []).append(_row_label(values, name, core))
            continue
        label = _row_label(values, v.label, core)
        rows.setdefault(d, (v, []))[1].append(label)
        for err in errs:
            unused.setdefault(err.key, (err, {}))[1].setdefault(err.why, []).append(label)
    # a key that does nothing in any row is refused, as it is in a scenario
    ran = sum(len(names) for _, names in rows.values())
    for err, whys in unused.values():
        if sum(len(names) for names in whys.values()) == ran:
            raise err
    # the rows that mark themselves hypothetical do not stand for a comparison on
    # their own: settings that leave only them are refused like settings that leave none
    if chosen is None and all(v.values.get("kvm.hypothetical") == "true"
                              for v, _ in rows.values()):
        reason = next((r for r in left_out if r != "core"), None)
        if reason is None:              # no design of the comparison runs on this core
            resolve(default_scenario(), overrides + [f"kvm.strategy={left_out['core'][0]}"])
        raise ConfigError(reason)
    merged = [f"{_and(names)} are one design with these settings ({v.label}): it runs once"
              for v, names in rows.values() if len(names) > 1]
    idle = [f"--set {key} does not apply to {_and(names)} ({why}): "
            f"{'they run' if len(names) > 1 else 'it runs'} without it"
            for key, (_, whys) in unused.items() for why, names in whys.items()]
    return ([v for v, _ in rows.values()], overrides,
            "; ".join(_notes(left_out, core) + idle + merged))


def _notes(left_out: dict, core: str) -> list:
    """One note per reason rows were left out."""
    notes = []
    for reason, names in left_out.items():
        names = list(dict.fromkeys(names))
        them = "them" if len(names) > 1 else "it"
        if reason == "core":
            notes.append(f"{_and(names)} left out: the {core} core cannot run {them} "
                         f"(its designs: {', '.join(strategies.allowed_on(core))}; "
                         f"--set kvm.strategy=NAME runs one)")
        else:
            notes.append(f"{_and(names)} left out: {reason}")
    return notes


def _row_label(values: dict, label: str, core: str) -> str:
    """The row's label on the default scenario on ``core`` (how the notes name
    it), or ``label`` where it cannot run there."""
    try:
        return _variant(default_scenario(), values, [f"machine.core={core}"])[0].label
    except ConfigError:
        return label


def _and(names: list) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]

"""How a tunable is declared, read, written back and documented.

Every key of a scenario is a field of a frozen dataclass, declared once with
:func:`param`: its default, its *kind* (the type and the allowed range) and a
one-line doc::

    @dataclass(frozen=True)
    class Machine:
        cpus: int = param(1, Int(1, 64), "physical CPUs")

Three readers use the declarations and nothing else:

- :func:`read_table` turns a raw TOML table (a mapping) into the dataclass:
  unknown keys, wrong types and values out of range are one-line
  :class:`~emu.errors.ConfigError` s naming the key by its dotted path;
- :func:`dump` turns an instance back into the TOML shape (JSON-serialisable);
- :func:`describe` lists every key with its type, range, default and doc
  (the reference printed by ``python -m emu.params``).

A kind is an object with five methods, each with a sensible default in
:class:`Kind`: ``read`` (check and convert a value present in the file),
``missing`` (the value of an absent key: the default, or an error for a
required key), ``dump`` (back to the TOML shape), ``text`` (type and range
for the reference) and ``show_default``.  The kinds here are the scalar ones
and the two containers (:class:`Table`, :class:`Array`); a section with a
value of its own shape defines its kind beside the dataclass that uses it.

Adding a key is adding one field to its section's dataclass, e.g. in
:class:`emu.params.scenario.KVM`::

    shadow_ids: int = param(255, Int(1, 255), "shadow IDs per physical CPU")

The file loader, ``--set``, ``scenario_to_dict`` and the reference then know
it; ``python -m emu.params > docs/scenario-keys.md`` refreshes the page.
"""
from __future__ import annotations

import copy
import dataclasses
import difflib
import math
import numbers
import re
import unicodedata
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Mapping, Optional

from emu.errors import ConfigError

__all__ = [
    "Param",
    "Ctx",
    "UnusedKey",
    "KeyUse",
    "Kind",
    "Int",
    "Number",
    "Bool",
    "Str",
    "Choice",
    "Table",
    "Array",
    "param",
    "declared",
    "keys_of",
    "read_table",
    "dump",
    "describe",
    "read_value",
    "check_table",
    "MISSING",
    "join",
    "show",
    "suggest",
    "is_int",
    "is_number",
    "toml_text",
]

#: what ``Mapping.get`` returns for an absent key
MISSING = object()


# ---------------------------------------------------------------------------
# Messages
# ---------------------------------------------------------------------------


def join(path: str, key: object) -> str:
    """``path.key``, or ``key`` at the top level."""
    return f"{path}.{key}" if path else str(key)


def show(value: object) -> str:
    """A short, one-line, TOML-flavoured rendering of a user's value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        text = repr(value)
        return text if len(text) <= 60 else text[:56] + "...'"
    if isinstance(value, numbers.Integral):
        value = int(value)
        if abs(value) >= 10**30:
            return f"an integer of {value.bit_length()} bits"
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, Mapping):
        return "a table"
    if isinstance(value, (list, tuple)):
        return "an array"
    if value is None:
        return "nothing (null)"
    text = str(value)
    if len(text) > 40:
        text = text[:37] + "..."
    return f"a {type(value).__name__} ({text})"


def toml_text(value: object) -> str:
    """A short TOML rendering of a default value (``"x"``, ``true``, ``{}``)."""
    if value is None:
        return "(none)"
    if isinstance(value, str):
        return '"' + value + '"'
    if isinstance(value, (dict, list)) and not value:
        return "{}" if isinstance(value, dict) else "[]"
    return show(value)


def bound_text(x: float) -> str:
    """A range bound as the reference writes it (``3,600,000``, ``0.5``)."""
    return f"{int(x):,}" if float(x).is_integer() else f"{x:g}"


def choices_text(names: Iterable[str]) -> str:
    """``'a', 'b', 'c'``."""
    return ", ".join(f"'{n}'" for n in names)


def suggest(word: object, candidates: Iterable[str]) -> Optional[str]:
    """The candidate closest to ``word``, if one is close enough."""
    matches = difflib.get_close_matches(str(word), list(candidates), n=1, cutoff=0.6)
    return matches[0] if matches else None


def unknown_key(path: str, key: object, allowed: Iterable[str]) -> ConfigError:
    """The error for ``key`` in the table at ``path``, which allows ``allowed``."""
    allowed = list(allowed)
    full = join(path, key)
    guess = suggest(key, allowed)
    if guess is not None:
        return ConfigError(f"unknown key '{full}' (did you mean '{join(path, guess)}'?)")
    where = f"in '{path}'" if path else "at the top level"
    return ConfigError(f"unknown key '{full}' (known keys {where}: {', '.join(allowed)})")


class UnusedKey(ConfigError):
    """A key set to a value other than its default where it does nothing: refused
    (no key is silently ignored).  ``key`` names it, ``why`` says why it does
    nothing there and ``advice`` what to do, so that a plan of several runs can
    judge it over all of them (:class:`KeyUse`), and the default comparison (:mod:`emu.run.designs`) run the rows it does not apply
    to without it, and say so."""

    def __init__(self, key: str, why: str, advice: str):
        super().__init__(f"{key}: {why}; {advice}")
        self.key = key
        self.why = why
        self.advice = advice


@dataclass
class KeyUse:
    """What reading one point of a plan of several runs (a comparison, a
    sweep) found of the keys that do nothing without another (a workload's
    ``zipf_s`` without ``distribution = 'zipf'``): ``unused``, the
    :class:`UnusedKey` of each such key set to another value than its default
    where it does nothing, collected instead of refused; ``used``, the dotted
    keys that do something there.  The plan refuses a key that is unused at a
    point and used at none (:func:`emu.run.plan.refuse_unused`)."""

    unused: list = dataclasses.field(default_factory=list)
    used: set = dataclasses.field(default_factory=set)


def is_int(value: object) -> bool:
    """An integer, and not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_number(value: object) -> bool:
    """An integer or a float, and not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_table(raw: object, path: str, allowed: Iterable[str]) -> Mapping:
    """``raw`` itself, once checked to be a table whose keys are all in ``allowed``."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{path or 'scenario'}: expected a table, got {show(raw)}")
    allowed = tuple(allowed)
    for key in raw:
        if not isinstance(key, str) or key not in allowed:
            raise unknown_key(path, key, allowed)
    return raw


# ---------------------------------------------------------------------------
# Declarations
# ---------------------------------------------------------------------------


@dataclass
class Ctx:
    """What a kind may need besides the value: the directory relative paths
    are resolved against, the index of the table in its array, the values
    already read from the same table (in declaration order) and ``key_use``:
    None, or what a plan of several runs collects of the workload keys that
    do nothing at the point it reads (:class:`KeyUse`), instead of refusing
    them."""

    base_dir: str
    index: int = 0
    values: dict = dataclasses.field(default_factory=dict)
    key_use: Optional[KeyUse] = None


class Kind:
    """A value type.  Subclasses override what differs from a plain value."""

    def read(self, value: Any, where: str, ctx: Ctx, default: Any) -> Any:
        """Check ``value`` (present at dotted key ``where``) and convert it;
        raise :class:`ConfigError` naming ``where``."""
        return value

    def missing(self, default: Any, where: str, ctx: Ctx) -> Any:
        """The value of the key when the table leaves it out."""
        return default

    def dump(self, value: Any) -> Any:
        """``value`` in the TOML shape (JSON-serialisable)."""
        return value

    def text(self) -> tuple[str, str]:
        """``(type, range)`` for the reference."""
        return "value", ""

    def show_default(self, default: Any) -> str:
        """``default`` as the reference shows it (TOML-flavoured)."""
        return toml_text(self.dump(default))


@dataclass(frozen=True)
class Param:
    """One declared key.  ``key`` is the TOML key (the field name unless
    given); ``optional`` keys may hold ``None`` (absent from the TOML shape);
    ``applies_to`` restricts the key to some values of the table's selector
    (the workload kind), empty for every value."""

    name: str
    key: str
    kind: Kind
    doc: str
    optional: bool = False
    applies_to: tuple = ()


_META = "emu.param"


def param(default: Any, kind: Kind, doc: str, *, key: Optional[str] = None,
          optional: bool = False, applies_to: Iterable[str] = ()) -> Any:
    """A dataclass field declaring one key: its ``default``, its ``kind`` and
    a one-line ``doc`` (see :class:`Param` for ``key``, ``optional`` and
    ``applies_to``).  A mutable default (a list, a dict, a dataclass holding
    one) is copied for each instance."""
    meta = {_META: dict(key=key, kind=kind, doc=doc, optional=optional,
                        applies_to=tuple(applies_to))}
    if isinstance(default, (list, dict)) or dataclasses.is_dataclass(default):
        return dataclasses.field(default_factory=lambda: copy.deepcopy(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def declared(cls: type) -> Iterator[tuple[Param, Any]]:
    """``(param, default)`` for each declared field of dataclass ``cls``, in
    declaration order (fields declared without :func:`param` are skipped)."""
    for f in dataclasses.fields(cls):
        meta = f.metadata.get(_META)
        if meta is None:
            continue
        if f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = f.default
        yield Param(name=f.name, key=meta["key"] or f.name, kind=meta["kind"],
                    doc=meta["doc"], optional=meta["optional"],
                    applies_to=meta["applies_to"]), default


def keys_of(cls: type) -> tuple[str, ...]:
    """The TOML keys of ``cls``, in declaration order."""
    return tuple(p.key for p, _ in declared(cls))


def read_value(p: Param, t: Mapping, path: str, ctx: Ctx, default: Any) -> Any:
    """The value of ``p`` in table ``t`` at ``path`` (its default if absent)."""
    value = t.get(p.key, MISSING)
    where = join(path, p.key)
    if value is MISSING or (p.optional and value is None):
        return p.kind.missing(default, where, ctx)
    return p.kind.read(value, where, ctx, default)


def read_table(cls: type, raw: object, path: str, base_dir: str, index: int = 0,
               extra: Optional[Mapping[str, Any]] = None,
               key_use: Optional[KeyUse] = None) -> Any:
    """An instance of ``cls`` from the raw table ``raw`` at dotted ``path``.

    The keys are read in declaration order, so the first error reported is
    the first one in the file's natural order.  ``index`` is the table's
    index in its array; ``extra`` are fields that are not keys; ``key_use``
    is passed down to the tables inside (:class:`Ctx`).
    """
    t = check_table(raw, path, keys_of(cls))
    ctx = Ctx(base_dir, index, key_use=key_use)
    for p, default in declared(cls):
        ctx.values[p.name] = read_value(p, t, path, ctx, default)
    return cls(**ctx.values, **(extra or {}))


def dump(obj: Any) -> dict[str, Any]:
    """The declared fields of dataclass ``obj`` in the TOML shape, in
    declaration order; an optional key holding ``None`` is left out."""
    out: dict[str, Any] = {}
    for p, _ in declared(type(obj)):
        value = getattr(obj, p.name)
        if p.optional and value is None:
            continue
        out[p.key] = p.kind.dump(value)
    return out


def describe(cls: type, prefix: str = "", base: Any = None
             ) -> Iterator[tuple[str, str, str, str, str]]:
    """``(dotted key, type, range, default, doc)`` for every key under
    ``cls``, nested tables and arrays included (an array item's index is
    written ``N``).  The defaults are those of instance ``base`` if given,
    else the declared ones."""
    for p, default in declared(cls):
        if base is not None:
            default = getattr(base, p.name)
        key = join(prefix, p.key)
        inner = getattr(p.kind, "describe", None)
        if inner is not None:
            yield from inner(key, default)
            continue
        type_, range_ = p.kind.text()
        shown = "(none)" if default is None else p.kind.show_default(default)
        doc = p.doc
        if p.applies_to:
            doc += f" (kind {' / '.join(p.applies_to)})"
        yield key, type_, range_, shown, doc


# ---------------------------------------------------------------------------
# Scalar kinds
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Int(Kind):
    """An integer (not a bool, not ``2.0``) in ``lo..hi``."""

    lo: int
    hi: int

    def read(self, value, where, ctx, default):
        if not is_int(value):
            raise ConfigError(f"{where}: expected an integer, got {show(value)}")
        value = int(value)
        if value < self.lo:
            if self.lo == 1:
                raise ConfigError(f"{where}: expected a positive integer, got {show(value)}")
            if self.lo == 0:
                raise ConfigError(f"{where}: expected a non-negative integer, got {show(value)}")
        if not self.lo <= value <= self.hi:
            raise ConfigError(f"{where}: expected an integer in {self.lo}..{self.hi}, "
                              f"got {show(value)}")
        return value

    def text(self):
        return "integer", f"{bound_text(self.lo)}..{bound_text(self.hi)}"


@dataclass(frozen=True)
class Number(Kind):
    """A finite integer or float: in ``lo..hi``, or with no ``hi``, at least
    ``lo`` (more than ``lo`` if ``open_lo``) and at most ``at_most`` (whose
    reason is ``why``).  ``as_float``: converted to float; otherwise an
    integer stays an integer."""

    lo: float
    hi: Optional[float] = None
    open_lo: bool = False
    as_float: bool = True
    at_most: Optional[float] = None
    why: str = ""

    def read(self, value, where, ctx, default):
        if not is_number(value):
            raise ConfigError(f"{where}: expected a number, got {show(value)}")
        try:
            finite = math.isfinite(value)
        except (OverflowError, ValueError):  # an integer too large for a float
            finite = False
        if not finite:
            raise ConfigError(f"{where}: expected a finite number, got {show(value)}")
        lo, hi = self.lo, self.hi
        if hi is not None:
            if not lo <= value <= hi:
                raise ConfigError(f"{where}: expected a number in {lo:g}..{hi:g}, "
                                  f"got {show(value)}")
        elif self.open_lo and value <= lo:
            raise ConfigError(f"{where}: expected a positive number, got {show(value)}")
        elif value < lo:
            raise ConfigError(f"{where}: expected a non-negative number, got {show(value)}")
        if self.at_most is not None and value > self.at_most:
            raise ConfigError(f"{where}: expected at most {self.at_most:,} ({self.why}), "
                              f"got {show(value)}")
        if self.as_float:
            return float(value)
        return int(value) if is_int(value) else float(value)

    def text(self):
        if self.hi is not None:
            return "number", f"{bound_text(self.lo)}..{bound_text(self.hi)}"
        text = f"> {bound_text(self.lo)}" if self.open_lo else f">= {bound_text(self.lo)}"
        if self.at_most is not None:
            text += f", <= {bound_text(self.at_most)}"
        return "number", text


class Bool(Kind):
    """``true`` or ``false`` (not 0 or 1)."""

    def read(self, value, where, ctx, default):
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {show(value)}")
        return value

    def text(self):
        return "boolean", ""


class Str(Kind):
    """Any string."""

    def read(self, value, where, ctx, default):
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {show(value)}")
        return value

    def text(self):
        return "string", ""


#: where str.splitlines splits a line
_LINE_BREAKS = "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"


class Name(Str):
    """A string printed on one line, in tables and headings: no line break,
    tab or other control character (an escape sequence would reach the
    terminal as one)."""

    def read(self, value, where, ctx, default):
        value = super().read(value, where, ctx, default)
        for i, c in enumerate(value):
            if unicodedata.category(c) in ("Cc", "Zl", "Zp"):
                what = "a line break" if c in _LINE_BREAKS else "a control character"
                raise ConfigError(f"{where}: holds {what} ({c!r}, character {i + 1}); a name is "
                                  f"printed on one line")
        return value


@dataclass(frozen=True)
class Choice(Kind):
    """One of ``choices`` (strings).  ``aliases`` maps other values a user
    may write to a choice (``440`` unquoted for ``'440'``)."""

    choices: tuple
    aliases: tuple = ()            # ((value, choice), ...)

    def read(self, value, where, ctx, default):
        for alias, choice in self.aliases:
            if is_int(value) and is_int(alias) and int(value) == alias:
                return choice
        if isinstance(value, str) and value in self.choices:
            return value
        hint = ""
        if isinstance(value, str):
            guess = suggest(value, self.choices)
            if guess is not None:
                hint = f" (did you mean '{guess}'?)"
        raise ConfigError(f"{where}: expected one of {choices_text(self.choices)}, "
                          f"got {show(value)}{hint}")

    def text(self):
        return "choice", " | ".join(self.choices)


# ---------------------------------------------------------------------------
# Containers
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Table(Kind):
    """A table whose keys are declared by dataclass ``cls``; absent, it is
    the field's default."""

    cls: type

    def read(self, value, where, ctx, default):
        return read_table(self.cls, value, where, ctx.base_dir, key_use=ctx.key_use)

    def dump(self, value):
        return dump(value)

    def describe(self, key, default):
        return describe(self.cls, key, default)


@dataclass(frozen=True)
class Array(Kind):
    """An array of ``lo..hi`` tables (``what``: their name in messages), each
    declared by dataclass ``cls``; absent, it is the field's default."""

    cls: type
    lo: int
    hi: int
    what: str

    def read(self, value, where, ctx, default):
        if isinstance(value, Mapping):
            header = re.sub(r"\.\d+", "", where)
            raise ConfigError(f"{where}: expected an array of tables ([[{header}]]), got a table")
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected an array of tables, got {show(value)}")
        if not self.lo <= len(value) <= self.hi:
            raise ConfigError(f"{where}: expected {self.lo}..{self.hi} {self.what}, "
                              f"got {len(value)}")
        return [read_table(self.cls, item, join(where, i), ctx.base_dir, index=i,
                           key_use=ctx.key_use)
                for i, item in enumerate(value)]

    def dump(self, value):
        return [dump(item) for item in value]

    def describe(self, key, default):
        return describe(self.cls, join(key, "N"))

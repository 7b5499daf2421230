"""Loading a scenario: a strict TOML reader, dotted-path overrides, and back.

Promises
--------
- **One exception type.**  Every problem (a TOML syntax error, a missing file,
  an unknown key, a wrong type, a value out of range, an impossible
  combination, a malformed override) is raised as
  :class:`~emu.errors.ConfigError` with a one-line message that names the
  offending key by its dotted path, list items by index::

      vm.0.process.1.workload.pages: expected a positive integer, got -3
      unknown key 'kvm.stratgy' (did you mean 'kvm.strategy'?)

  Nothing else escapes: no ``KeyError``, ``TypeError`` or traceback of ours.
- **Strict types.**  Integer fields take integers only: ``true`` is not 1 and
  ``2.0`` is not 2.  Number fields (``duration_ms``, fractions, ``zipf_s``,
  ``run_us`` / ``sleep_us``) take integers or floats, finite only.  The one
  convenience: ``machine.core`` accepts the integer ``440`` for ``"440"`` (so
  ``--set machine.core=440`` works unquoted).
- **Overrides** (``--set key=value``) edit the raw TOML data *before*
  validation, so a bad override gets the same message as the same mistake in
  the file.  See :func:`apply_overrides`.
- **Round trip.**  ``scenario_from_dict(scenario_to_dict(s)) == s`` for every
  scenario this module builds; :func:`scenario_to_dict` is JSON-serialisable
  and has the TOML file's shape (``vm`` / ``process`` / ``host_task`` lists),
  and :func:`scenario_to_toml` writes it as a TOML file that loads back
  to ``s`` (``emu config dump``).
- **Trace paths** (workload kind ``trace``) are resolved against the directory
  of the TOML file (:attr:`Scenario.base_dir`; of a scenario read from a pipe,
  such as /dev/stdin or ``<(...)``, the current folder) and stored absolute.
  Whether the file exists is checked later, by :mod:`emu.workload`.
- **A pipe is read once.**  A scenario read from a pipe or FIFO is kept: the
  next read of it in the process gets the same text, as a file's would (a
  comparison resolves its scenario once per run).
- Costs are only checked for shape here (string name, non-negative integer,
  or a table of ``value`` / ``low`` / ``high`` whose low is at most its high);
  :class:`emu.costs.CostTable` checks the names.

Example::

    >>> s = scenario_from_dict({"kvm": {"strategy": "shadow"}},
    ...                        overrides=["vm.0.process.0.workload.pages=60"])
    >>> s.kvm.strategy, s.vms[0].processes[0].workload.pages
    ('shadow', 60)
    >>> scenario_from_dict({"kvm": {"stratgy": "shadow"}})
    Traceback (most recent call last):
    ...
    emu.errors.ConfigError: unknown key 'kvm.stratgy' (did you mean 'kvm.strategy'?)
"""

from __future__ import annotations

import copy
import json
import os
import stat
from typing import Any, Iterable, Mapping, Optional, Union

try:  # Python >= 3.11
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10 and older
    import tomli as tomllib  # type: ignore[no-redef]

from emu.errors import ConfigError
from emu.params.fields import (Array, KeyUse, declared, describe, dump, join, read_table,
                               show)
from emu.params.scenario import Scenario, validate_combination

__all__ = [
    "tomllib",
    "load_scenario",
    "scenario_from_dict",
    "scenario_to_dict",
    "scenario_to_toml",
    "apply_overrides",
    "default_scenario",
    "DEFAULT_SCENARIO_DATA",
    "reference",
]

# ---------------------------------------------------------------------------
# Overrides
# ---------------------------------------------------------------------------


def override_value(text: str) -> Any:
    """A TOML value if ``text`` is one, else ``text`` itself (a bare string)."""
    try:
        parsed = tomllib.loads("v = " + text)
    except Exception:  # TOMLDecodeError, or RecursionError on absurd nesting
        return text
    if list(parsed) != ["v"]:  # e.g. "1\nw = 2" smuggles in a second key
        return text
    return parsed["v"]


def _missing_container(parents: list[str], key: str) -> Any:
    """What the absent ``key`` under the dotted path ``parents`` holds by
    default, when an override walks through it: an array of tables holds one
    empty table per default item (an absent ``vm`` is one VM with defaults,
    an absent ``host_task`` none), a list of values (``vcpu_cpus``) no item;
    anything else an empty table."""
    params = {p.key: (p, d) for p, d in declared(Scenario)}
    in_array = False
    for part in parents:
        if in_array:  # the index of an item of the array just entered
            in_array = False
            continue
        p = params.get(part, (None, None))[0]
        cls = getattr(p.kind, "cls", None) if p is not None else None
        if cls is None:
            return {}
        params = {p.key: (p, d) for p, d in declared(cls)}
        in_array = isinstance(p.kind, Array)
    p, default = params.get(key, (None, None))
    if p is not None and isinstance(p.kind, Array):
        return [{} for _ in default]
    if p is not None and p.kind.text()[0].startswith("list of"):
        return []                   # its items by index, as a list in the file takes them
    return {}


def _apply_one(data: dict, override: object) -> None:
    if not isinstance(override, str):
        raise ConfigError(f"override {show(override)}: expected a string key=value")
    key, sep, text = override.partition("=")
    key = key.strip()
    if not sep:
        raise ConfigError(f"override {show(override)}: expected key=value "
                          f"(e.g. kvm.strategy=shadow)")
    if not key:
        raise ConfigError(f"override {show(override)}: the key before '=' is empty")
    parts = [p.strip() for p in key.split(".")]
    if not all(parts):
        raise ConfigError(f"{key}: empty component in the override key "
                          f"(expected a dotted path such as vm.0.vcpus)")
    value = override_value(text.strip())
    node: Any = data
    path = ""
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        here = join(path, part)
        if isinstance(node, dict):
            if last:
                if part == "kind" and parts[-2:-1] == ["workload"]:
                    _switch_kind(node, value, host=parts[0] == "host_task")
                node[part] = value
                return
            if part not in node:
                node[part] = _missing_container(parts[:i], part)
            elif isinstance(node[part], tuple):
                node[part] = list(node[part])
            node = node[part]
        elif isinstance(node, list):
            if not (part.isascii() and part.isdigit()):
                raise ConfigError(f"{here}: '{path}' is an array; expected an item index "
                                  f"0..{len(node)}, got '{part}'")
            index = int(part) if len(part) <= 18 else len(node) + 1
            if index > len(node):
                raise ConfigError(f"{here}: index {show(part)[1:-1]} is out of range: '{path}' "
                                  f"has {len(node)} item(s) (use index {len(node)} to append one)")
            if index == len(node):
                node.append(value if last else {})
                if last:
                    return
            elif last:
                node[index] = value
                return
            elif isinstance(node[index], tuple):
                node[index] = list(node[index])
            node = node[index]
        else:
            raise ConfigError(f"{here}: cannot set a key inside '{path}', which is "
                              f"{show(node)}, not a table")
        path = here


def _switch_kind(workload: dict, kind: object, host: bool) -> None:
    """A workload table about to take ``kind``: the keys the new kind does
    not have and that hold their default (what a whole scenario, the default
    one, spells out) go with the old kind; any other is the user's, and the
    loader names it."""
    from emu.params.workload import KIND_KEYS, Workload
    allowed = KIND_KEYS.get(kind) if isinstance(kind, str) else None
    if allowed is None or workload.get("kind", "working-set") == kind:
        return
    defaults = Workload(pages=128) if host else Workload()
    for key in [k for k in workload if k not in allowed and k != "kind"]:
        if workload[key] == getattr(defaults, key, object()):
            del workload[key]


def apply_overrides(data: Mapping, overrides: Iterable[str]) -> dict:
    """Return a copy of the raw scenario ``data`` with ``--set`` overrides applied.

    Each override is ``dotted.key=value``; list items are addressed by index
    (``vm.0.process.1.workload.pages=60``).  The value is parsed as a TOML
    value (``true``, ``1.5``, ``"x"``, ``{kind = "sweep"}``), or taken as a
    bare string if it is not one (``kvm.strategy=shadow``).  A missing table
    on the way is created; an absent ``vm`` / ``vm.N.process`` list stands for
    its default (one item with defaults) and an absent ``host_task`` for an
    empty list; index ``len(list)`` appends a new item (defaults apply to the
    keys not set), a larger one is an error.  ``data`` is not modified.
    Values are not checked here: :func:`scenario_from_dict` does that.
    """
    if isinstance(overrides, str):
        overrides = [overrides]
    if not isinstance(data, Mapping):
        raise ConfigError(f"scenario: expected a table, got {show(data)}")
    try:
        out = copy.deepcopy(dict(data))
    except Exception as exc:  # pragma: no cover - only for exotic Python objects
        raise ConfigError(f"scenario: cannot copy the data to override it ({exc})") from None
    given: list = []
    for override in overrides:
        _refuse_replaced(given, override)
        _apply_one(out, override)
    return out


def key_parts(key: str) -> tuple:
    """The parts of a dotted override key as the data knows them: an index
    written with leading zeros is that index (``vm.00`` is ``vm.0``)."""
    return tuple(str(int(p)) if p.isascii() and p.isdigit() and len(p) <= 18 else p
                 for p in (p.strip() for p in key.split(".")))


def _refuse_replaced(given: list, override: object) -> None:
    """Refuse ``override`` if it sets a whole table or array that holds a key
    an earlier one set (``kvm={...}`` after ``kvm.handler=asm`` would drop the
    handler without a word).  A key inside a table set earlier is applied to
    that table, and a key set again takes its later value, as in any list of
    settings read in order (``emu``'s ``--set`` refuses a KEY given twice).
    ``given`` collects (parts, text) of the overrides seen so far."""
    if not isinstance(override, str):
        return                              # _apply_one says what is wrong with it
    key = override.partition("=")[0].strip()
    parts = key_parts(key)
    for earlier, text in given:
        if len(earlier) > len(parts) and earlier[:len(parts)] == parts:
            raise ConfigError(f"{key}: set as a whole after {'.'.join(earlier)} (from "
                              f"{show(text)}, then {show(override)}), which it would "
                              f"replace; set the keys inside the table instead")
    given.append((parts, override))


# ---------------------------------------------------------------------------
# Entry points
# ---------------------------------------------------------------------------


def scenario_from_dict(data: Mapping, overrides: Iterable[str] = (),
                       base_dir: Union[str, os.PathLike] = ".",
                       key_use: Optional[KeyUse] = None) -> Scenario:
    """Validate raw scenario data (the TOML shape) into a :class:`Scenario`.

    ``overrides`` are applied first (:func:`apply_overrides`); relative trace
    paths are resolved against ``base_dir``.  Raises :class:`ConfigError`.
    ``key_use``: None, or what collects each workload key set where it does
    nothing instead of refusing it (:class:`~emu.params.fields.KeyUse`): a
    plan of several runs judges such a key over all of them.
    """
    if isinstance(overrides, str):
        overrides = [overrides]
    overrides = list(overrides)
    if overrides:
        data = apply_overrides(data, overrides)
    base_dir = os.path.abspath(os.fspath(base_dir))
    scenario = read_table(Scenario, data, "", base_dir, extra={"base_dir": base_dir},
                          key_use=key_use)
    validate_combination(scenario)
    return scenario


#: the longest scenario file read (a larger one is refused, not read to its end)
MAX_SCENARIO_BYTES = 16 << 20

#: the text of each scenario read from a pipe or FIFO, by (device, inode): a pipe
#: is read once, and its second reader found it empty, the built-in scenario
_PIPED: dict = {}


def _piped_key(name: str):
    """(device, inode) of ``name`` when it is a pipe, a FIFO or a device (no
    regular file, no folder), else None."""
    try:
        st = os.stat(name)
    except (OSError, ValueError):
        return None
    if stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode):
        return None
    return st.st_dev, st.st_ino


def scenario_dir(name: str) -> str:
    """The folder relative trace paths of scenario file ``name`` are resolved
    against: the file's, or the current one for a scenario read from a pipe
    (/dev/stdin, ``<(...)``), which has none."""
    if _piped_key(name) is not None:
        return os.getcwd()
    return os.path.dirname(os.path.abspath(name))


def read_scenario_file(path: Union[str, os.PathLike]) -> tuple[str, bytes, dict]:
    """``(name, bytes, data)`` of a scenario TOML file: its path as given, its
    bytes (at most :data:`MAX_SCENARIO_BYTES`: a larger file, or an endless one
    such as /dev/zero, is refused, not read to its end) and the parsed table.
    A missing or unreadable file, or a TOML syntax error, is a
    :class:`ConfigError` naming the file."""
    try:
        name = os.fspath(path)
    except TypeError:
        raise ConfigError(f"scenario file: expected a path, got {show(path)}") from None
    try:
        piped = _piped_key(name)
        if piped in _PIPED:
            text = _PIPED[piped]
        else:
            with open(name, "rb") as f:
                text = f.read(MAX_SCENARIO_BYTES + 1)
            if piped is not None:
                _PIPED[piped] = text
        if len(text) > MAX_SCENARIO_BYTES:
            raise ConfigError(f"{name}: not a scenario file (longer than "
                              f"{MAX_SCENARIO_BYTES >> 20} MB)")
        data = tomllib.loads(text.decode("utf-8-sig"))     # a BOM (Notepad) is no statement
    except FileNotFoundError:
        raise ConfigError(f"{name}: scenario file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{name}: is a directory, not a scenario file") from None
    except OSError as exc:
        raise ConfigError(f"{name}: cannot read scenario file: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{name}: invalid TOML: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{name}: invalid TOML: values nested too deeply") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{name}: invalid TOML: not UTF-8 text "
                          f"(byte {exc.start}: {exc.reason})") from None
    return name, text, data


def load_scenario(path: Union[str, os.PathLike], overrides: Iterable[str] = (),
                  key_use: Optional[KeyUse] = None) -> Scenario:
    """Read a scenario TOML file (:func:`read_scenario_file`), apply
    ``overrides`` and validate it (``key_use`` as :func:`scenario_from_dict`
    takes it).  Relative trace paths are resolved against the file's
    directory (:func:`scenario_dir`)."""
    name, _, data = read_scenario_file(path)
    return scenario_from_dict(data, overrides, base_dir=scenario_dir(name),
                              key_use=key_use)


def scenario_to_dict(s: Scenario) -> dict[str, Any]:
    """The full resolved scenario in the TOML file's shape, JSON-serialisable.

    Workloads carry only the keys their kind allows; an unset pin (a host
    task's ``cpu``, a VM's ``vcpu_cpus`` / ``qemu_cpu``) is left out.
    ``scenario_from_dict`` of the result equals ``s``.
    """
    return dump(s)


def scenario_to_toml(s: Scenario) -> str:
    """The full resolved scenario as a TOML document: every key that has a
    value, defaults included, in declaration order (:func:`scenario_to_dict`).

    Loading it gives ``s`` back: ``load_scenario`` of the text written to a
    file equals ``s`` (trace paths are absolute, so the file may live
    anywhere).
    """
    return data_to_toml(scenario_to_dict(s))


def data_to_toml(data: Mapping) -> str:
    """Raw scenario data (the TOML shape, e.g. a file's table with ``--set``
    applied) as a TOML document: its values, then each table and array of
    tables under its header."""
    lines: list[str] = []
    _toml_table(data, "", lines)
    return "\n".join(lines).lstrip("\n") + "\n"


def _toml_key(key: str) -> str:
    return key if key and all(c.isascii() and (c.isalnum() or c in "-_") for c in key) \
        else _toml_string(key)


def _toml_string(text: str) -> str:
    # JSON's escapes are TOML's, but for DEL, which TOML wants escaped too
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)       # a float's repr is TOML: 20.0, 1e-05, inf, nan
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) \
            + "}"
    return "[" + ", ".join(_toml_value(v) for v in value) + "]"


def _is_table_array(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, Mapping) for v in value)


def _toml_table(data: Mapping, path: str, lines: list) -> None:
    """Append the TOML lines of table ``data`` (at dotted ``path``): its
    values, then each sub-table and array of tables under its header."""
    nested = [k for k, v in data.items() if isinstance(v, Mapping) or _is_table_array(v)]
    lines += [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in data.items() if k not in nested]
    for key in nested:
        value = data[key]
        header = join(path, _toml_key(key))
        for item in value if isinstance(value, list) else [value]:
            lines += ["", f"[[{header}]]" if isinstance(value, list) else f"[{header}]"]
            _toml_table(item, header, lines)


#: The raw data behind :func:`default_scenario`.
DEFAULT_SCENARIO_DATA: Mapping[str, Any] = {
    "name": "default",
    # the question of every run of this scenario, whatever its --set: so it names no design
    "question": "What does virtualizing the TLB cost a guest process that shares its CPU "
                "with a host task?",
    "host_task": [{"name": "noise", "run_us": 200, "sleep_us": 800}],
}


def default_scenario() -> Scenario:
    """The built-in scenario: a 440 with one CPU, ``direct`` (with the C miss
    handler 7924bd41 shipped) and the ``pfn-cache``, one VM with one 40-page
    uniform process, and one host task ``noise`` (128 pages) that runs 200 µs
    and sleeps 800 µs; 20 ms."""
    return scenario_from_dict(copy.deepcopy(dict(DEFAULT_SCENARIO_DATA)))


_REFERENCE_HEAD = """\
# Scenario keys

Every key a scenario file may hold, with its type, range, default and
meaning.  `N` stands for an item's index in its array (`[[vm]]`,
`[[vm.process]]`, `[[host_task]]`); `--set` takes the same dotted paths
(`--set vm.0.process.0.workload.pages=60`).  A workload key marked with a
kind applies to that kind only.

No key is silently ignored: a key set to another value than its default
where it does nothing is refused, in one line saying why (`zipf_s` with
`distribution = "uniform"`, `code_pages` with `inst_fraction = 0`, `stride`
with `inst_fraction = 1`, `sleep_us` with `sleep_every = 0`; the meaning
column says what each needs).  A comparison (`emu compare --vary`) or a
sweep (`emu sweep --grid`) takes such a key if it does something at one of
its runs (`zipf_s` set where `--vary` compares `distribution=uniform,zipf`),
and refuses it only where it does nothing at any of them.  A host task's
workload takes no `lifetime_accesses`, `syscall_every`, `mmio_every`,
`mmio_device` or `write_fraction`: only a guest process exits and is
replaced, traps to its kernel, touches an emulated device, or pays for a
store otherwise than for a load.

This page is generated from the declarations in `emu/params/` by
`python -m emu.params > docs/scenario-keys.md`; a test keeps it current.

"""


def reference() -> str:
    """Every key a scenario may hold, as a Markdown page: dotted key (``N``
    for an array index), type, range, default and a one-line doc."""
    lines = ["| key | type | range | default | meaning |", "|---|---|---|---|---|"]
    for row in describe(Scenario):
        cells = (f"`{row[0]}`",) + tuple(c.replace("|", "\\|") for c in row[1:])
        lines.append("| " + " | ".join(cells) + " |")
    return _REFERENCE_HEAD + "\n".join(lines) + "\n"

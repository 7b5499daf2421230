"""The fast path's C enums agree with emu/codes.py, which everything else reads."""

import pytest

from emu import _fastpath, codes


def test_every_c_enum_is_the_python_tuple():
    """The build generates the enums from emu.codes; a stale build fails here."""
    compiled = _fastpath.enum_values()
    assert list(compiled) == list(codes.C_ENUMS.values())
    for tuple_name, values in compiled.items():
        names = getattr(codes, tuple_name)
        assert values == {name: i for i, name in enumerate(names)}, tuple_name


@pytest.mark.parametrize("table, names", [
    (codes.EXIT, codes.EXIT_CATEGORIES), (codes.CAUSE, codes.MISS_CAUSES),
    (codes.CYCLES, codes.CYCLE_CATEGORIES), (codes.STEP, codes.PROFILE_STEPS),
    (codes.STOP, codes.STOPS), (codes.TLB, codes.TLB_COUNTERS),
    (codes.STRATEGY, codes.STRATEGIES), (codes.HANDLER, codes.HANDLERS),
    (codes.PFN_SOURCE, codes.PFN_SOURCES), (codes.KIND, codes.KINDS),
    (codes.POLICY, codes.POLICIES),
])
def test_the_python_lookups_number_their_tuples(table, names):
    assert table == {name: i for i, name in enumerate(names)}


def test_the_kind_constants():
    assert (codes.KIND_IFETCH, codes.KIND_LOAD, codes.KIND_STORE, codes.KIND_MODIFY,
            codes.KIND_SYSCALL, codes.KIND_SLEEP) == tuple(range(6))


def test_the_policies_the_extension_accepts():
    assert _fastpath.POLICIES == codes.POLICY


def test_the_exit_categories_are_kvms_27():
    # arch/powerpc/kvm/timing.c: 26 exit types + TIMEINGUEST (docs/kvm440.md §2.9)
    assert len(codes.EXIT_CATEGORIES) == 27 and codes.EXIT_CATEGORIES[-1] == "TIMEINGUEST"


def test_a_stale_build_is_named():
    from types import SimpleNamespace

    from emu.engine import build
    assert build.stale_codes(_fastpath) == ""
    stale = _fastpath.enum_values()
    stale["STOPS"] = dict(stale["STOPS"], mmio=99)
    assert build.stale_codes(SimpleNamespace(enum_values=lambda: stale)) == "STOPS differs"


def test_the_stub_declares_every_public_name_of_the_compiled_module():
    """emu/_fastpath.pyi lacked sg_fill, sg_alias_build, tlb_perm_bits, the
    SG_* layouts, Ctx.check_uw/check_ux/searched_entries/shadow_attrib and
    PlainTLB's tag_arr, valid_arr and ptr_arr, which emu uses."""
    import ast
    import types
    from pathlib import Path
    stub = ast.parse(Path(_fastpath.__file__).with_name("_fastpath.pyi").read_text())

    def declared(body) -> set:
        names = set()
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                names.add(node.target.id)
        return names

    def public(obj) -> set:
        return {n for n in dir(obj) if not n.startswith("_")
                and not isinstance(getattr(obj, n, None), types.ModuleType)}

    assert public(_fastpath) - declared(stub.body) == set()
    classes = {node.name: node for node in stub.body if isinstance(node, ast.ClassDef)}
    for name, node in classes.items():
        assert public(getattr(_fastpath, name)) - declared(node.body) == set(), name

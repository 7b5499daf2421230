"""The fast path's C enums agree with emu/codes.py, which everything else reads."""

from emu import _fastpath, codes


def test_c_enums_match_the_python_codes():
    c = _fastpath.enum_values()
    for name, value in c["exit"].items():
        assert codes.EXIT[name] == value
    assert c["n_exits"] == len(codes.EXIT_CATEGORIES)
    assert c["cause"] == codes.CAUSE
    assert c["cycles"] == codes.CYCLES
    for name, value in c["step"].items():
        assert codes.STEP[name] == value
    assert c["stop"] == codes.STOP
    assert c["tlb"] == codes.TLB
    assert c["strategy"] == codes.STRATEGY
    assert c["pfn_source"] == codes.PFN_SOURCE
    assert c["kind"] == {"ifetch": codes.KIND_IFETCH, "syscall": codes.KIND_SYSCALL,
                         "sleep": codes.KIND_SLEEP}


def test_the_exit_categories_are_kvms_27():
    # arch/powerpc/kvm/timing.c: 26 exit types + TIMEINGUEST (reference/kvm440.md §2.9)
    assert len(codes.EXIT_CATEGORIES) == 27 and codes.EXIT_CATEGORIES[-1] == "TIMEINGUEST"

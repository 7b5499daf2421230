"""The guest's trap sequences (emu.guest.traps44x) against counts derived by hand.

Every expected figure below is counted from the instructions of head_44x.S
@026477c1 (DataTLBError, InstructionTLBError, finish_tlb_load, data_access,
SystemCall), head_booke.h (NORMAL_EXCEPTION_PROLOG, INSTRUCTION_STORAGE_EXCEPTION,
DECREMENTER_EXCEPTION) and entry_32.S @026477c1 (transfer_to_handler,
ret_from_syscall, ret_from_except), with KVM's categories at 73e75b41: an
mfspr/mtspr of SRR0/1, SPRG0-3 or DEC is EMULINST (generic emulate.c), of any
other SPR EMUL_MFSPR/EMUL_MTSPR (44x_emulate.c).  Here only the sequences are
summed; tests/test_guest.py and tests/test_guest_traps.py check that the
handlers run them, on a recording port and on a real vCPU.
"""

from __future__ import annotations

from collections import Counter

import pytest

from emu.guest import traps44x as T

RFI = Counter({"EMUL_RFI": 1})          # the final rfi, made through the port
TLBWE3 = Counter({"EMUL_TLBWE": 3})     # the fill's three tlbwe, through the port


def total(*parts) -> Counter:
    out = Counter()
    for p in parts:
        out.update(p.counts if isinstance(p, T.TrapSeq) else p)
    return out


def test_categories_follow_kvm_at_73e75b41():
    assert [T.category(i) for i in ("mtspr SRR0", "mfspr SPRG3", "mtspr DEC")] == ["EMULINST"] * 3
    assert [T.category(i) for i in ("mtspr SPRG4W", "mtspr PID", "mtspr MMUCR", "mtspr TSR")] \
        == ["EMUL_MTSPR"] * 4
    assert [T.category(i) for i in ("mfspr DEAR", "mfspr ESR", "mfspr PID")] == ["EMUL_MFSPR"] * 3
    assert T.category("wrteei") == T.category("wrtee") == "EMUL_WRTEE"
    with pytest.raises(KeyError):
        T.category("mfcr")                  # not privileged: never in a sequence


def test_a_delivered_data_tlb_miss():
    # DataTLBError: mtspr SPRG0, SPRG1 (EMULINST 2), SPRG4W, SPRG5W, SPRG7W (MTSPR 3),
    # mfspr DEAR (MFSPR), 3: mfspr SPRG3 (EMULINST), MMUCR, PID (MFSPR 2), 4: mtspr MMUCR
    # (MTSPR); finish_tlb_load: 3 tlbwe, mfspr SPRG1, SPRG0 (EMULINST 2), rfi.
    # 16 emulated; with the DTLBREAL exit that delivered it, 17.
    c = total(T.DTLB_MISS_ENTRY, TLBWE3, T.MISS_RESTORE, RFI)
    assert c == {"EMULINST": 5, "EMUL_MTSPR": 4, "EMUL_MFSPR": 3, "EMUL_TLBWE": 3,
                 "EMUL_RFI": 1}
    assert sum(c.values()) + 1 == 17


def test_a_delivered_instruction_tlb_miss():
    # as the data miss, with mfspr SRR0 (EMULINST) for mfspr DEAR (MFSPR)
    c = total(T.ITLB_MISS_ENTRY, TLBWE3, T.MISS_RESTORE, RFI)
    assert c == {"EMULINST": 6, "EMUL_MTSPR": 4, "EMUL_MFSPR": 2, "EMUL_TLBWE": 3,
                 "EMUL_RFI": 1}
    assert sum(c.values()) + 1 == 17


def test_the_first_pass_of_a_demand_fault():
    # DataTLBError #1-10, the bail-out's mfspr SPRG1, SPRG0, data_access's prolog
    # (9), mfspr ESR, DEAR, transfer_to_handler (SPRG3, SRR0, SRR1, rfi),
    # ret_from_except (mtmsr, SRR0, SRR1) and the rfi to user: 31 + DTLBREAL = 32
    c = total(T.DTLB_MISS_ENTRY, T.DATA_FAULT_ENTRY, T.RET_DISABLE_EE, T.RET_RESTORE, RFI)
    assert c == {"EMULINST": 18, "EMUL_MTSPR": 5, "EMUL_MFSPR": 5, "EMUL_MTMSR": 1,
                 "EMUL_RFI": 2}
    assert sum(c.values()) + 1 == 32
    # InstructionStorage has mfspr ESR only (SRR0 is already in r12): 30 + ITLBREAL
    c = total(T.ITLB_MISS_ENTRY, T.INST_FAULT_ENTRY, T.RET_DISABLE_EE, T.RET_RESTORE, RFI)
    assert c == {"EMULINST": 19, "EMUL_MTSPR": 5, "EMUL_MFSPR": 3, "EMUL_MTMSR": 1,
                 "EMUL_RFI": 2}


def test_a_system_call():
    # NORMAL_EXCEPTION_PROLOG from user: mtspr SPRG0, SPRG1 (EMULINST), SPRG4W (MTSPR),
    # mfspr SRR1, SPRG3, SPRG0, SPRG1, SRR0, SRR1 (EMULINST 6); transfer_to_handler:
    # mfspr SPRG3, mtspr SRR0, SRR1 (EMULINST 3), rfi; ret_from_syscall: MTMSRD;
    # syscall_exit_cont: mtspr SRR0, SRR1 (EMULINST 2), rfi.  17 + SYSCALL = 18
    c = total(T.SYSCALL_ENTRY, T.SYSCALL_EXIT, RFI)
    assert c == {"EMULINST": 13, "EMUL_MTSPR": 1, "EMUL_MTMSR": 1, "EMUL_RFI": 2}
    assert sum(c.values()) + 1 == 18
    # with the default C-code traps of a short call: + mfmsr, + 2 wrtee = 21
    c.update(T.c_traps("syscall", 1, 2).counts)
    assert sum(c.values()) + 1 == 21


def test_a_guest_tick():
    # DECREMENTER_EXCEPTION from user: the prolog (9), mtspr TSR (MTSPR), transfer (4),
    # timer_interrupt's two mtspr DEC (EMULINST), ret_from_except's MTMSRD,
    # exc_exit_restart's mtspr SRR0, SRR1, rfi: 20, and no exit of its own
    c = total(T.TICK_ENTRY_FROM_USER, T.RET_DISABLE_EE, T.RET_RESTORE, RFI)
    assert c == {"EMULINST": 15, "EMUL_MTSPR": 2, "EMUL_MTMSR": 1, "EMUL_RFI": 2}
    # from the kernel the prolog skips mfspr SPRG3 and the rfi stays in the kernel: 19
    c = total(T.TICK_ENTRY_FROM_KERNEL, T.RET_DISABLE_EE, T.RET_RESTORE, T.KERNEL_RFI)
    assert c == {"EMULINST": 14, "EMUL_MTSPR": 2, "EMUL_MTMSR": 1, "EMUL_RFI": 2}
    # preempting: do_resched and recheck add an MTMSRD each, the switch its 8: the
    # run-queue lock (wrteei), mtspr PID, __switch_to's local_irq_save (mfmsr,
    # wrteei 0), _switch (mfmsr, mtspr SPRG3), local_irq_restore (wrtee), unlock (wrteei)
    c = total(T.RESCHED_ENTER, T.SWITCH_LOCK, {"EMUL_MTSPR": 1}, T.SWITCH_TAIL, T.RESCHED_LEAVE)
    assert c == {"EMUL_MTMSR": 2, "EMUL_WRTEE": 4, "EMUL_MTSPR": 1, "EMUL_MFMSR": 2,
                 "EMULINST": 1}


def test_idle():
    # cpu_idle / ppc44x_idle: wrteei 0, mfmsr, (mtmsr WE: the wait), mtmsr, wrteei 1
    c = total(T.IDLE_ENTER, T.IDLE_LEAVE)
    assert c == {"EMUL_WRTEE": 2, "EMUL_MFMSR": 1, "EMUL_MTMSR": 1}


def test_sequences_concatenate_in_order():
    s = T.SYSCALL_ENTRY + T.SYSCALL_EXIT
    assert len(s) == 16 and s.rows[-1] == ("mtspr SRR1", "syscall_exit_cont")
    assert len(T.NONE) == 0 and T.c_traps("x", 0, 0).cats == ()

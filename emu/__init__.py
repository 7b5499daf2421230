"""emu: a discrete-event emulator of KVM virtualizing a software-managed TLB.

The package models KVM on an embedded PowerPC 440 (and an e500 variant): the
hardware TLBs (:mod:`emu.hw`), the host scheduler (:mod:`emu.host`), the
hypervisor and its TLB strategies (:mod:`emu.kvm`), the guest OS
(:mod:`emu.guest`), userspace QEMU (:mod:`emu.qemu`), access streams
(:mod:`emu.workload`) and the statistics they produce (:mod:`emu.stats`).
"""

__version__ = "0.1.0"

from emu.errors import ConfigError, EmuError, TraceError  # noqa: E402,F401

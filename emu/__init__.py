"""emu: a discrete-event emulator of KVM virtualizing a software-managed TLB.

The package models KVM on an embedded PowerPC 440 (and an e500 variant): the
hardware TLBs (:mod:`emu.hw`), the host scheduler (:mod:`emu.host`), the
hypervisor and its TLB strategies (:mod:`emu.kvm`), the guest OS
(:mod:`emu.guest`), userspace QEMU (:mod:`emu.qemu`), access streams
(:mod:`emu.workload`) and the statistics they produce (:mod:`emu.stats`).

``emu.load(DIR)`` reads a result folder back (:mod:`emu.analysis.load`).
It is imported on first use, so that ``import emu`` stays light.
"""

__version__ = "0.1.0"

from emu.errors import ConfigError, EmuError, TraceError  # noqa: E402,F401


def __getattr__(name):
    # NOTE: emu.load is imported on first use: importing emu.analysis.load
    # brings in the whole machine, which a bare `import emu` should not.
    if name == "load":
        from emu.analysis.load import load
        return load
    raise AttributeError(f"module 'emu' has no attribute {name!r}")

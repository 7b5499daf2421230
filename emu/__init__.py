"""emu: a discrete-event emulator of KVM virtualizing a software-managed TLB.

The package models KVM on an embedded PowerPC 440 (and an e500 variant): the
hardware TLBs (:mod:`emu.hw`), the host scheduler (:mod:`emu.host`), the
hypervisor and its TLB strategies (:mod:`emu.kvm`), the guest OS
(:mod:`emu.guest`), userspace QEMU (:mod:`emu.qemu`), access streams
(:mod:`emu.workload`) and the statistics they produce (:mod:`emu.stats`).

``emu.load(DIR)`` reads a result folder back (:mod:`emu.analysis.load`).
It and the subpackages (``emu.run``, ``emu.report``, ...) are imported on
first use, so that ``import emu`` stays light.
"""

__version__ = "0.1.0"

from emu.errors import ConfigError, EmuError, TraceError  # noqa: E402,F401

_SUBMODULES = ("analysis", "codes", "costs", "engine", "errors", "guest", "host", "hw", "kvm",
               "machine", "observe", "params", "qemu", "report", "run", "sensitivity",
               "stats", "study", "teach", "workload")
__all__ = ["ConfigError", "EmuError", "TraceError", "load", *_SUBMODULES]


def __getattr__(name):
    # NOTE: imported on first use: emu.analysis.load brings in the whole machine
    if name == "load":
        from emu.analysis.load import load
        return load
    if name in _SUBMODULES:
        import importlib
        return importlib.import_module("emu." + name)
    raise AttributeError(f"module 'emu' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))

"""Userspace QEMU: the I/O thread lives in emu.host.threads (QemuThread)."""

from emu.host.threads import QemuThread

__all__ = ["QemuThread"]

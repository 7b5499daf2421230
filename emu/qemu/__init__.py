"""Userspace QEMU: the I/O thread of each VM and the devices it emulates.

* :mod:`emu.qemu.iothread` — :class:`~emu.qemu.iothread.QemuThread`, which
  serves the MMIO exits of a VM's vCPUs;
* :mod:`emu.qemu.devices` — the UART and the block device: where they sit in
  guest physical memory and what serving them costs.
"""

from emu.qemu.devices import DEVICES, Device, device_at
from emu.qemu.iothread import QemuThread

__all__ = ["DEVICES", "Device", "QemuThread", "device_at"]

"""The devices QEMU emulates for a guest, and where the guest finds them.

Two MMIO devices, each at one 4 KB page of guest physical addresses outside
guest RAM, so an access exits to QEMU (docs/design.md §2 ``qemu``):

* ``uart`` at 0xEF600000 (the 440's UART page, docs/kvm440.md §2.2): a
  register access; QEMU's handler answers at once;
* ``block`` at 0xEF700000: QEMU submits the request; the device answers after
  ``block_latency_us``.
"""

from __future__ import annotations

from dataclasses import dataclass

UART_GPA = 0xEF60_0000
BLOCK_GPA = 0xEF70_0000


@dataclass(frozen=True)
class Device:
    """One MMIO device: its name, page, and the cost rows of serving it."""

    name: str
    gpa: int
    #: the cost-table row of QEMU's handler for one access
    handler_cost: str
    #: the cost-table row (µs) of the device's answer, or None: QEMU answers at once
    latency: str | None = None


UART = Device("uart", UART_GPA, "qemu_mmio_register")
BLOCK = Device("block", BLOCK_GPA, "qemu_mmio_block", "block_latency_us")
DEVICES = (UART, BLOCK)

#: guest frame number -> device name
DEVICE_GPAS = {d.gpa >> 12: d.name for d in DEVICES}
_AT = {d.gpa >> 12: d for d in DEVICES}


def device_at(gpa: int) -> Device:
    """The device an MMIO access to ``gpa`` reaches (any other page: the UART)."""
    return _AT.get(gpa >> 12, UART)

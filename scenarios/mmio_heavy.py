"""What does a device-bound guest cost when every device access exits to QEMU, and does it help
to give QEMU its own CPU?

The study ``mmio_heavy`` (``emu/study/studies/mmio_heavy.py``), run with the emu that
is installed: the same as ``emu study mmio_heavy [--out DIR] [--quick]``.
"""

import sys

from _launch import launch

if __name__ == "__main__":
    sys.exit(launch("mmio_heavy"))

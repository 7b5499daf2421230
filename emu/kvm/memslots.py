"""A VM's memslots: which guest frames are RAM, and the host memory behind them.

Memslot 0 is guest RAM (gfn 0 .. memory pages), QEMU's anonymous memory;
every other gfn (the UART and block device pages) is MMIO that exits to QEMU
(``kvm_is_visible_gfn``).  The model has no host virtual addresses:
``host_pfn`` stands for the host page tables of QEMU's memory (gfn -> hva ->
pfn in one step), ``NO_PFN`` until the page is first touched.
"""

from __future__ import annotations

import numpy as np

NO_PFN = -1


class Memslots:
    """One VM's memslots, with the arrays the fast path reads."""

    def __init__(self, memory_pages: int):
        self.memory_pages = memory_pages
        self.base = np.zeros(1, np.int64)                      # first gfn of each slot
        self.npages = np.array([memory_pages], np.int64)       # pages of each slot
        self.host_pfn = np.full(memory_pages, NO_PFN, np.int64)

    def is_visible(self, gfn: int) -> bool:
        """``gfn`` is guest RAM (kvm_is_visible_gfn); anything else is MMIO."""
        return 0 <= gfn < self.memory_pages

    def is_present(self, gfn: int) -> bool:
        """QEMU's page behind RAM frame ``gfn`` has been touched (it has a host pfn)."""
        return self.host_pfn[gfn] != NO_PFN

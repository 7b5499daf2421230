"""TLB geometry, page sizes and replacement policies shared by every core."""

from __future__ import annotations

from emu import engine
from emu.errors import ConfigError

KB, MB, GB = 1 << 10, 1 << 20, 1 << 30

#: Where Linux maps kernel lowmem (PAGE_OFFSET): the host kernel's pinned
#: entries map it on both cores (docs/kvm440.md §1.5, §4.1).
PAGE_OFFSET = 0xC000_0000

#: The 440's eight page sizes: 1K, 4K, 16K, 64K, 256K, 1M, 16M, 256M
#: (PPC440x5 UM p.140; docs/kvm440.md §1.1).
PAGE_SIZES_440 = (1 * KB, 4 * KB, 16 * KB, 64 * KB, 256 * KB, 1 * MB, 16 * MB, 256 * MB)

#: e500v2 TLB1 page sizes, 4K to 4G in powers of 4 (e500 RM p.12-2;
#: docs/kvm440.md §4.1).  TLB0 holds 4 KB pages only.
PAGE_SIZES_E500 = tuple(4 * KB << (2 * i) for i in range(11))

SUPPORTED_PAGE_SIZES = tuple(sorted(set(PAGE_SIZES_440) | set(PAGE_SIZES_E500)))

#: Replacement policies.  ``round-robin`` is the Linux 44x pointer over
#: 0..hwater; ``nv`` the e500 hardware next-victim counter.
POLICIES = ("fifo", "lru", "random", "round-robin", "nv")


def page_shift(size: int) -> int:
    """log2 of a supported page size; ConfigError naming the size otherwise."""
    if isinstance(size, bool) or not isinstance(size, int) or size not in SUPPORTED_PAGE_SIZES:
        sizes = ", ".join(_human(s) for s in SUPPORTED_PAGE_SIZES)
        raise ConfigError(f"unsupported page size {size!r} (supported: {sizes})")
    return size.bit_length() - 1


def _human(size: int) -> str:
    for unit, scale in (("G", GB), ("M", MB), ("K", KB)):
        if size >= scale and size % scale == 0:
            return f"{size // scale}{unit}"
    return str(size)


MAX_ENTRIES = 1 << 20


def check_geometry(entries: int, ways: int | None, policy: str) -> int:
    """Validate a TLB's shape and policy; returns the number of ways."""
    if isinstance(entries, bool) or not isinstance(entries, int) or entries <= 0:
        raise ConfigError(f"entries must be a positive integer, got {entries!r}")
    if entries > MAX_ENTRIES:
        raise ConfigError(f"entries must be at most {MAX_ENTRIES:,}, got {entries:,}")
    ways = entries if ways is None else ways
    if isinstance(ways, bool) or not isinstance(ways, int) or ways <= 0:
        raise ConfigError(f"ways must be a positive integer, got {ways!r}")
    if entries % ways:
        raise ConfigError(f"{entries} entries are not divisible into {ways}-way sets")
    if policy not in POLICIES:
        from emu.params.fields import suggest      # on the error's path only
        guess = suggest(policy, POLICIES)
        hint = "" if guess is None else f"did you mean '{guess}'? "
        raise ConfigError(f"unknown replacement policy {policy!r} "
                          f"({hint}choose from: {', '.join(POLICIES)})")
    return ways


def make_plain_tlb(entries: int = 64, ways: int | None = None, policy: str = "fifo",
                   page_size: int = 4096, seed: int = 0, backend: str = "cython",
                   hwater: int = -1):
    """A trace-driven TLB of one page size (``emu tlb``), on either backend."""
    ways = check_geometry(entries, ways, policy)
    shift = page_shift(page_size)
    impl = engine.get(backend)
    return impl.PlainTLB(entries, ways, policy, shift, hwater, seed)

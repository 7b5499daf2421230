"""The guest OS: processes, page tables, the guest scheduler and TLB miss handler."""

from emu.guest.os import GuestOS, GuestProcess

__all__ = ["GuestOS", "GuestProcess"]

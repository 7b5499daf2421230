"""KVM: memslots, pfn sources, exit handling and the TLB strategies."""

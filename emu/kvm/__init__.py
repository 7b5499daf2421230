"""KVM: memslots, pfn sources, shadow bookkeeping, exit handling and the TLB strategies.

* :mod:`emu.kvm.vm` -- one VM: its memslots, its pfn source, gfn_to_pfn;
* :mod:`emu.kvm.memslots` -- which guest frames are RAM, and the host pages behind them;
* :mod:`emu.kvm.pfn` -- one class per pfn source, and their registry;
* :mod:`emu.kvm.shadow` -- which hardware slots shadow which guest entries;
* :mod:`emu.kvm.strategies` -- one module per TLB design, and their registry;
* :mod:`emu.kvm.vcpu` -- a vCPU thread and KVM's exit handling.
"""

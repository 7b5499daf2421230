"""The words ``emu explain`` and the reports use, each said once in plain terms.

:data:`GLOSSARY` holds the entries in reading order; :func:`glossary_text` is
what ``emu explain --glossary`` prints, and the HTML report
(:mod:`emu.report.html`) gives each entry an anchor (:func:`anchor`) and
links the words of its text to it (:func:`link_terms`).  Every entry cites the
section of the project's docs that holds the facts behind it.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass


@dataclass(frozen=True)
class Term:
    """One entry: its ``name``, the spellings the report links (``words``), what it
    means (``text``) and where the docs say so (``cite``)."""

    name: str
    words: tuple
    text: str
    cite: str


GLOSSARY = (
    Term("UTLB", ("UTLB",),
         "The PowerPC 440's one TLB: 64 entries, fully associative, filled by software. "
         "Two small arrays in front of it (4 instruction, 8 data entries, the micro-TLBs) "
         "are refilled by hardware and emptied by every interrupt and rfi.",
         "docs/kvm440.md §1.1"),
    Term("AS / TS", ("AS", "TS"),
         "The address space bit. An access carries AS (MSR[IS] for fetches, MSR[DS] for "
         "data) and an entry its TS; they must be equal to match. Linux never uses AS 1, "
         "so KVM makes every guest mapping TS=1 and the host's pinned AS 0 entries stay "
         "in the TLB while the guest runs.",
         "docs/kvm440.md §1.1, §2.1"),
    Term("TID", ("TID",),
         "The 8-bit tag of a TLB entry. An entry matches when its TID is 0 (global) or "
         "equals the PID register. Linux gives user mappings the process's PID and kernel "
         "mappings TID 0.",
         "docs/kvm440.md §1.4, §1.5"),
    Term("shadow PID / shadow TID", ("shadow PID", "shadow TID"),
         "The PID and TIDs KVM puts in hardware for the guest, which are not the guest's "
         "own. From 2.6.28 (era tid01) a guest entry with TID 0 gets shadow TID 1 and a "
         "process entry shadow TID 0; the shadow PID is 1 in guest kernel mode and 0 in "
         "guest user mode, so a privilege change needs no flush.",
         "docs/kvm440.md §2.8, §2.10"),
    Term("guest TLB", ("guest TLB",),
         "The 64-entry TLB KVM emulates for the guest: what the guest wrote with its own "
         "trapping tlbwe. Step 1 of the miss handler searches it.",
         "docs/kvm440.md §2.2, §2.7"),
    Term("hwater", ("hwater",),
         "Linux 44x's high-water mark: the round robin replaces entries 0..hwater and "
         "entries above it stay pinned (62 with one pinned 256 MB kernel entry in slot "
         "63). The shadow designs' entry loop covers only 0..hwater-1, so a shadow in "
         "slot hwater never reaches hardware.",
         "docs/kvm440.md §1.5, §2.10"),
    Term("round robin", ("round robin", "round-robin"),
         "How the 440's victim is chosen: one global counter, tlb_44x_index, advanced at "
         "each miss and wrapped after hwater. From 7924bd41 KVM advances the host's "
         "counter too, so guest and host fills share one round robin.",
         "docs/kvm440.md §1.5, §2.5"),
    Term("vcpu_load / vcpu_put", ("vcpu_load", "vcpu_put"),
         "The hooks KVM runs when a vCPU's thread is scheduled in (load) and out (put), "
         "and at each heavyweight exit to QEMU. What a design does there decides what the "
         "vCPU finds in the TLB when it resumes.",
         "docs/kvm440.md §2.2, §2.10; docs/design.md §4"),
    Term("resume", ("resume", "resumes"),
         "A vcpu_load after the vCPU was descheduled. emu numbers them from the start of "
         "the run: vcpu_load #1 is the first load.",
         "docs/design.md §6"),
    Term("_tlbia", ("_tlbia",),
         "Linux 44x's flush: it writes an invalid word 0 at every index 0..hwater, "
         "whoever owns it. 7924bd41's vcpu_put calls it, so the guest loses every entry "
         "at each deschedule and no entry leaks to another vCPU.",
         "docs/kvm440.md §2.10"),
    Term("DSI / ISI", ("DSI", "ISI"),
         "Data and Instruction Storage interrupts: an access the TLB translates but its "
         "permissions refuse. Linux 44x's fill writes no UW, so the first user store "
         "through an entry is a DSI, whose handler adds UW (16 traps; the e500's fill "
         "copies the PTE's HWWRITE, so there only the first store to a page faults); and "
         "no UX until "
         "the page's PTE has _PAGE_HWEXEC, which only the exec fault sets, so the first "
         "fetch from each page of an address space is an ISI (25 traps on the 440, 26 "
         "on the e500, whose _tlbie differs; then a refill). "
         "KVM queues both to the guest: one lightweight exit each.",
         "docs/kvm440.md §2.10"),
    Term("modified flags", ("modified flags", "modified"),
         "One byte per shadow index (shadow_tlb_mod) marking entries changed since the "
         "last guest entry: shadow-modified (83aae4a8) rewrites only those at entry, and "
         "67577927 reads back only those at vcpu_put.",
         "docs/kvm440.md §2.2, §2.3, §2.10"),
    Term("GPA / gfn", ("GPA", "gfn"),
         "Guest physical address, and its 4 KB frame number: what the guest TLB entry "
         "translates the access to (step 3.1).",
         "docs/design.md §3"),
    Term("memslot", ("memslot",),
         "A range of guest physical memory backed by host memory. A GPA outside every "
         "memslot is a device: the access exits to QEMU (MMIO, step 3.2).",
         "docs/kvm440.md §2.6; docs/design.md §3"),
    Term("gfn_to_pfn", ("gfn_to_pfn",),
         "KVM's C function that finds (and pins) the host page behind a guest frame; it "
         "may take a host page fault. A fill that needs it leaves the assembly handler "
         "for the C path.",
         "docs/kvm440.md §2.5; docs/design.md §3, §4"),
    Term("pfn source / pfn cache", ("pfn source", "pfn cache"),
         "Where a fill finds the host page frame without calling gfn_to_pfn: gup (never), "
         "pin-all (every page, pinned at start), the pfn cache (N recently used pages, "
         "pinned while cached, under a replacement policy) or the guest TLB's references "
         "(e500).",
         "docs/design.md §4"),
    Term("exit (lightweight / heavyweight)", ("exit", "exits", "heavyweight", "lightweight"),
         "Leaving the guest for KVM. A lightweight exit is handled inside KVM and "
         "re-enters the guest; a heavyweight one returns to QEMU (MMIO) and runs "
         "vcpu_put and vcpu_load around it.",
         "docs/kvm440.md §2.1, §2.10"),
    Term("TIMEINGUEST", ("TIMEINGUEST",),
         "The exit-timing category for the time from a guest entry to the next exit: time "
         "spent running the guest, not an exit.",
         "docs/kvm440.md §2.9"),
    Term("DTLBVIRT / DTLBREAL (the kernel's DTLB_VIRT / DTLB_REAL)",
         ("DTLBVIRT", "DTLBREAL", "ITLBVIRT", "ITLBREAL",
          "DTLB_VIRT", "DTLB_REAL", "ITLB_VIRT", "ITLB_REAL"),
         "The exit categories of a TLB miss: VIRT when the guest TLB has the entry and KVM "
         "maps it (a miss that exists only because of virtualization), REAL when the "
         "miss is delivered to the guest.",
         "docs/kvm440.md §2.6, §2.9"),
    Term("handler steps", ("full_exit", "pfn_lookup", "hw_write", "entry_restore"),
         "How a miss's cycles are named, as the step profile and its plot name them; each "
         "is the cost table's row of that name for the handler (asm_ or c_). save (asm) or "
         "full_exit (C): leaving the guest for the handler; walk: step 1; gpa, memslot and "
         "pfn_lookup: steps 3.1 to 3.3; hw_write: the tlbwe into the hardware TLB; "
         "restore: back into the guest; deliver: a miss handed to the guest; "
         "entry_restore: a shadow design's loop that writes its entries back at entry.",
         "docs/design.md §3"),
    Term("miss cause", ("cause",),
         "Each hardware miss is put down to one cause: compulsory, host-eviction, "
         "other-guest-eviction, self-eviction, guest-context-switch, flush or "
         "shadow-not-restored.",
         "docs/design.md §6"),
    Term("eras", ("era", "eras"),
         "The three ways the 440 shadow code handled TIDs and privilege: guest-tid (2.6.26, "
         "83aae4a8: every privilege switch flushes), swap-pid (49dd2c49: one flush after a "
         "guest PID change) and tid01 (2.6.28 on: shadow TIDs 0/1).",
         "docs/kvm440.md §2.10; docs/design.md §4.1"),
    Term("TLB0 / TLB1 (e500)", ("TLB0", "TLB1"),
         "The e500's two arrays: TLB0 has 512 entries in 128 sets of 4 ways, 4 KB pages, "
         "set (EA >> 12) mod 128, the way chosen by one next-victim counter for all sets; "
         "TLB1 has 16 fully associative entries of variable size.",
         "docs/kvm440.md §4.1"),
)


def anchor(term: Term) -> str:
    """The HTML id of ``term``'s entry."""
    return "gl-" + re.sub(r"[^a-z0-9]+", "-", term.name.lower()).strip("-")


#: The glossary's measure: the most columns of its lines (``emu explain --glossary``
#: on a narrower terminal fits them to it).
MEASURE = 84


def glossary_text(width: int = MEASURE) -> str:
    """The glossary as ``emu explain --glossary`` prints it, in lines of at most
    ``width`` columns."""
    out = textwrap.wrap("Glossary of emu explain (the words of its narration and of the "
                        "reports)", width, subsequent_indent="  ") + [""]
    for t in GLOSSARY:
        out += textwrap.wrap(t.name, width, subsequent_indent="  ", break_on_hyphens=False)
        out += textwrap.wrap(f"{t.text} [{t.cite}]", width, initial_indent="    ",
                             subsequent_indent="    ", break_on_hyphens=False)
    return "\n".join(out) + "\n"


_WORDS = sorted(((w, t) for t in GLOSSARY for w in t.words), key=lambda wt: -len(wt[0]))
_PATTERN = re.compile(r"(?<![\w/#-])(" + "|".join(re.escape(w) for w, _ in _WORDS)
                      + r")(?![\w/-])")
_TERM = dict(_WORDS)


def link_terms(html_text: str) -> str:
    """``html_text`` (already escaped, no tags) with the first occurrence of each
    glossary entry's words linked to its anchor."""
    seen: set = set()

    def link(m):
        term = _TERM[m.group(1)]
        if term.name in seen:
            return m.group(1)
        seen.add(term.name)
        return f'<a class="term" href="#{anchor(term)}">{m.group(1)}</a>'
    return _PATTERN.sub(link, html_text)

"""What does a device-bound guest cost when every device access exits to QEMU, and does it help to give QEMU its own CPU?

A guest whose process touches a device page every ``mmio_every`` accesses
(2,000 here: an I/O-bound guest).  The device page is outside the memslots,
so the miss handler's memslot check (step 3.2) turns the access into a
heavyweight exit to userspace: the vCPU blocks, QEMU's I/O thread is woken,
emulates the access (a UART register: answered at once; a block device:
submitted, answered after ``block_latency_us`` = 100 µs, completed) and wakes
the vCPU; a block request's completion interrupt then reads the virtio
device's ISR, a second MMIO exit per request, QEMU's register handling
alone.  QEMU is an ordinary host thread: on the vCPU's CPU it costs two
host context switches per exit, and its own TLB misses would evict the
guest's entries, but here nothing is left to evict: ``direct`` flushes at
every heavyweight exit and ``shadow`` rewrites its array at every entry, so
the pollution shows as ``direct``'s flush misses, not as host-evicted ones.
On a CPU of its own QEMU costs neither, but that CPU idles.

Layout: the vCPU is pinned to CPU 0 (``vcpu_cpus = [0]``) and QEMU to the
last CPU (``qemu_cpu``): CPU 1 with 2 CPUs, CPU 0 (shared) with 1.  The 440
is a single core: no KVM-440 ran on two, so every 2-CPU run is hypothetical.

Each design runs as its kernel ran it, with the C miss handler and a
get_user_pages at every fill; ``direct + asm`` is the proposal, the assembly
handler with the pfn cache.

What to look at: MMIO exits per ms and guest accesses per ms (the guest's
progress), the cycles per MMIO round trip that CPU 0 did not spend on guest
work, QEMU's cycles per exit, the flushed guest misses, uart vs block, 1 CPU
vs 2; and ``shadow`` against ``direct``
(every MMIO exit is a full guest entry, which ``shadow`` pays 62 entries for,
while ``direct``'s vcpu_put runs ``_tlbia()`` at every heavyweight exit, 7924bd41,
and the guest refills what it flushed).  As they ran, that refill, with a
get_user_pages at every fill, costs ``direct`` several times ``shadow``'s
round trip on the UART (``--quick``: about 170 µs against 22); the
proposal's pfn cache takes most of it back (about 30).
"""

from __future__ import annotations

from typing import Optional

from emu.report.columns import fit_lines
from emu.stats.figures import exit_count, measured_ms
from emu.study.lib import as_ran, marked, Recorder, scenario, table

NAME = "mmio_heavy"
DEVICES = ("uart", "block")


def plan(quick: bool) -> dict:
    if quick:
        return {"duration_ms": 4, "warmup_ms": 30, "every": (2000,), "cpus": (1, 2),
                "strategies": ("direct", "shadow", "direct + asm")}
    return {"duration_ms": 20, "warmup_ms": 30, "every": (500, 2000, 8000), "cpus": (1, 2),
            "strategies": ("direct", "direct-save-on-switch", "shadow", "direct + asm")}


def make(device: str, cpus: int, design: str, every: int, duration_ms: float,
         warmup_ms: float = 0.0) -> dict:
    """One run: ``warmup_ms`` of cold start left out, then ``duration_ms``
    measured; ``design`` a strategy as its kernel ran it (the C handler and
    get_user_pages), or ``direct + asm``, the proposal (the assembly handler
    and the pfn cache)."""
    guest = {"vcpus": 1, "memory_mb": 64, "vcpu_cpus": [0], "qemu_cpu": cpus - 1,
             "process": [{"workload": {"kind": "working-set", "pages": 32, "code_pages": 4,
                                       "mmio_every": every, "mmio_device": device}}]}
    return scenario(
        name=f"{NAME}: {device}, {cpus} CPU(s), {design}, MMIO every {every}",
        question="cost of MMIO exits to QEMU, with QEMU on the vCPU's CPU or its own",
        duration_ms=duration_ms, warmup_ms=warmup_ms,
        machine={"core": "440", "cpus": cpus},
        kvm=as_ran(design),
        vm=[guest],
    )


def point(result) -> dict:
    s, tables = result.summary, result.tables
    clock = s["costs"]["clock_mhz"]
    window = s["simulated_cycles"] - s["cpu_measured_from"][0]     # CPU 0, after any warm-up
    ms = measured_ms(s)
    mmio = exit_count(s, "MMIO")
    cpu0 = {r["component"]: r["cycles"] for r in tables["cycles"] if r["cpu"] == 0}
    vcpu = next(r for r in tables["tlb"] if r["context"] == "vm0.vcpu0")
    return {
        "mmio_exits": mmio,
        "mmio_per_ms": mmio / ms,
        "guest_accesses_per_ms": vcpu["hits"] / ms,
        "qemu_cycles": s["cycles"]["qemu"],
        "qemu_cycles_per_mmio": s["cycles"]["qemu"] / mmio if mmio else 0.0,
        "round_trip_overhead_cycles": ((window - cpu0["guest"]) / mmio
                                       if mmio else 0.0),
        "round_trip_overhead_us": ((window - cpu0["guest"]) / mmio / clock
                                   if mmio else 0.0),
        "mmio_exit_mean_us": s["exits"]["MMIO"]["mean_us"],
        "cpu0_host_switch_cycles": cpu0["host_switch"],
        "cpu0_idle_share": cpu0["idle"] / window,
        "host_evicted_misses": vcpu["cause_host-eviction"],
        "flushed_misses": vcpu["cause_flush"],
        "guest_misses": vcpu["misses"],
        "save_restore_cycles": s["cycles"]["save_restore"],
    }


def study(quick: bool, recorder: Recorder | None = None) -> dict:
    rec = recorder or Recorder()
    p = plan(quick)
    points = {}
    for every in p["every"]:
        for device in DEVICES:
            for cpus in p["cpus"]:
                for st in p["strategies"]:
                    lab = f"{device}/{cpus}cpu/{st}/every{every}"
                    rec.run(lab, make(device, cpus, st, every, p["duration_ms"], p["warmup_ms"]))
                    points[lab] = point(rec.last)
    return {"plan": {k: list(v) if isinstance(v, tuple) else v for k, v in p.items()},
            "points": points}


def report(r: dict, width: Optional[int] = None) -> str:
    rows = [[marked(lab, r), v["mmio_exits"], v["mmio_per_ms"], v["guest_accesses_per_ms"],
             v["round_trip_overhead_us"], v["qemu_cycles_per_mmio"], v["mmio_exit_mean_us"],
             v["cpu0_host_switch_cycles"], f"{100 * v['cpu0_idle_share']:.0f}%",
             v["host_evicted_misses"], v["flushed_misses"], v["guest_misses"],
             v["save_restore_cycles"]]
            for lab, v in r["points"].items()]
    return fit_lines(["device VM (vm0.vcpu0 on CPU 0; its QEMU on CPU 0 with 1 CPU, CPU 1 with 2):",
                      table(["device/cpus/design", "MMIO", "MMIO/ms", "accesses/ms",
                             "us/round trip", "QEMU cyc/exit", "MMIO exit us",
                             "CPU0 switch cycles", "CPU0 idle", "host-evicted", "flushed",
                             "misses", "save/restore cycles"],
                            rows, width),
                      "(us/round trip: CPU 0's cycles not spent on guest work, per MMIO exit; "
                      "'MMIO exit us' is KVM's exit timing: from the exit to the next entry, "
                      "QEMU's handling and the wait for the device included)"], width)


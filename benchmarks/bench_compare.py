"""gpuabst against the floor (raw pynvml calls), gpustat and nvitop, on one replayed library.

    python benchmarks/bench_compare.py [--source fixtures/nvidia/h100-80gb-hbm3.json] [--repeat 30]
    python benchmarks/bench_compare.py --live [--repeat 20]     (on a machine with an NVIDIA GPU)

All three tools import the same ``pynvml``: nvidia-ml-py's module with every NVML function answered
from the fixture (benchmarks/replayed_pynvml.py), so what is timed is each tool's own work per
query. 8- and 64-GPU machines are copies of the real 1-GPU capture (labelled synthetic). Two floors:
a one-shot snapshot's calls (nvmlInit to nvmlShutdown) and a poll's calls in a session kept open.
With --live the same tools run against the real driver instead (the machine's own GPUs), where each
NVML call costs what the driver makes it cost; NVML calls are then not counted (the replayed table
gives them).
Needs the benchmark extra: pip install -e '.[bench]'.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_snapshot import machine_line, quartiles_ms  # noqa: E402
from replayed_pynvml import Counter, install, make  # noqa: E402
from scale import add_peer_calls, scale_nvml  # noqa: E402

from gpuabst.exporter.prometheus import HealthCollector, metrics_text  # noqa: E402
from gpuabst.fixtures import format as fmt  # noqa: E402

MEM_V2 = 0x02000028


def raw_pynvml_snapshot(nv: Any) -> int:
    """The floor: the same NVML calls gpuabst makes for a full snapshot, in a plain loop, values kept
    in a dict and errors swallowed: what a hand-written agent would do."""
    values: dict[tuple[int, str], Any] = {}

    def get(i: int, key: str, fn: Callable[..., Any], *args: Any) -> None:
        try:
            values[(i, key)] = fn(*args)
        except nv.NVMLError:
            values[(i, key)] = None

    nv.nvmlInit()
    get(-1, "driver", nv.nvmlSystemGetDriverVersion)
    get(-1, "cuda", nv.nvmlSystemGetCudaDriverVersion_v2)
    for i in range(nv.nvmlDeviceGetCount()):
        h = nv.nvmlDeviceGetHandleByIndex(i)
        for key, fn, args in (
            ("pci", nv.nvmlDeviceGetPciInfo, ()), ("ecc", nv.nvmlDeviceGetEccMode, ()),
            ("mig", nv.nvmlDeviceGetMigMode, ()), ("limits", nv.nvmlDeviceGetPowerManagementLimitConstraints, ()),
            ("attrs", nv.nvmlDeviceGetAttributes, ()), ("cc", nv.nvmlDeviceGetCudaComputeCapability, ()),
            ("gen_max", nv.nvmlDeviceGetMaxPcieLinkGeneration, ()), ("width_max", nv.nvmlDeviceGetMaxPcieLinkWidth, ()),
            ("numa", nv.nvmlDeviceGetNumaNodeId, ()),
            ("cmode", nv.nvmlDeviceGetComputeMode, ()), ("pmode", nv.nvmlDeviceGetPersistenceMode, ()),
            ("plimit", nv.nvmlDeviceGetPowerManagementLimit, ()),
            ("pdefault", nv.nvmlDeviceGetPowerManagementDefaultLimit, ()),
            ("gr_max", nv.nvmlDeviceGetMaxClockInfo, (0,)), ("sm_max", nv.nvmlDeviceGetMaxClockInfo, (1,)),
            ("mem_max", nv.nvmlDeviceGetMaxClockInfo, (2,)), ("bar1", nv.nvmlDeviceGetBAR1MemoryInfo, ()),
            ("t_slow", nv.nvmlDeviceGetTemperatureThreshold, (1,)),
            ("t_shut", nv.nvmlDeviceGetTemperatureThreshold, (0,)),
            ("t_max", nv.nvmlDeviceGetTemperatureThreshold, (3,)),
            ("name", nv.nvmlDeviceGetName, ()), ("uuid", nv.nvmlDeviceGetUUID, ()),
            ("serial", nv.nvmlDeviceGetSerial, ()), ("part", nv.nvmlDeviceGetBoardPartNumber, ()),
            ("brand", nv.nvmlDeviceGetBrand, ()), ("arch", nv.nvmlDeviceGetArchitecture, ()),
            ("vbios", nv.nvmlDeviceGetVbiosVersion, ()),
            *poll_calls(nv),  # what changes: the calls a poll makes again
        ):
            get(i, key, fn, h, *args)
        for link in range(18):  # NVLink states until the driver says there are no more links
            try:
                values[(i, f"nvlink{link}")] = nv.nvmlDeviceGetNvLinkState(h, link)
            except nv.NVMLError:
                break
        mig = values.get((i, "mig"))
        if mig and mig[0] == 1:
            for slot in range(nv.nvmlDeviceGetMaxMigDeviceCount(h)):
                try:
                    mh = nv.nvmlDeviceGetMigDeviceHandleByIndex(h, slot)
                except nv.NVMLError:
                    continue
                for key, fn in (("mig_name", nv.nvmlDeviceGetName), ("mig_uuid", nv.nvmlDeviceGetUUID),
                                ("gi", nv.nvmlDeviceGetGpuInstanceId), ("ci", nv.nvmlDeviceGetComputeInstanceId),
                                ("mig_mem", nv.nvmlDeviceGetMemoryInfo), ("mig_attrs", nv.nvmlDeviceGetAttributes)):
                    get(i, f"{key}{slot}", fn, mh)
    nv.nvmlShutdown()
    return len(values)


def poll_calls(nv: Any) -> tuple[tuple[str, Callable[..., Any], tuple[Any, ...]], ...]:
    """The NVML calls of gpuabst's poll (the NVML backend's dynamic plan), as looked up in ``nv`` now."""
    return (
        ("mem", nv.nvmlDeviceGetMemoryInfo, (MEM_V2,)), ("util", nv.nvmlDeviceGetUtilizationRates, ()),
        ("remap", nv.nvmlDeviceGetRemappedRows, ()), ("temp", nv.nvmlDeviceGetTemperatureV, (0,)),
        ("reasons", nv.nvmlDeviceGetCurrentClocksEventReasons, ()), ("power", nv.nvmlDeviceGetPowerUsage, ()),
        ("enforced", nv.nvmlDeviceGetEnforcedPowerLimit, ()), ("gr", nv.nvmlDeviceGetClockInfo, (0,)),
        ("sm", nv.nvmlDeviceGetClockInfo, (1,)), ("memclk", nv.nvmlDeviceGetClockInfo, (2,)),
        ("fan", nv.nvmlDeviceGetFanSpeed, ()), ("pstate", nv.nvmlDeviceGetPerformanceState, ()),
        ("rp_sbe", nv.nvmlDeviceGetRetiredPages, (0,)), ("rp_dbe", nv.nvmlDeviceGetRetiredPages, (1,)),
        ("rp_pending", nv.nvmlDeviceGetRetiredPagesPendingStatus, ()),
        ("gen", nv.nvmlDeviceGetCurrPcieLinkGeneration, ()), ("width", nv.nvmlDeviceGetCurrPcieLinkWidth, ()),
        ("ecc_cv", nv.nvmlDeviceGetTotalEccErrors, (0, 0)), ("ecc_uv", nv.nvmlDeviceGetTotalEccErrors, (1, 0)),
        ("ecc_ca", nv.nvmlDeviceGetTotalEccErrors, (0, 1)), ("ecc_ua", nv.nvmlDeviceGetTotalEccErrors, (1, 1)),
    )


def raw_pynvml_poll(nv: Any, handles: list[Any], unsupported: set[tuple[int, str]]) -> int:
    """The floor of a poll: gpuabst's poll calls in a plain loop, in a session kept open (nvmlInit once,
    handles kept), a call that a device answered NOT_SUPPORTED not asked of it again (``unsupported``
    is kept between runs), as gpuabst's poll does; raw values kept in a dict. Returns how many answered."""
    values: dict[tuple[int, str], Any] = {}
    for i, h in enumerate(handles):
        for key, fn, args in poll_calls(nv):
            if (i, key) in unsupported:
                continue
            try:
                values[(i, key)] = fn(h, *args)
            except nv.NVMLError as e:
                values[(i, key)] = None
                if e.value == nv.NVML_ERROR_NOT_SUPPORTED:
                    unsupported.add((i, key))
    return sum(v is not None for v in values.values())


def timed(fn: Callable[[], Any], repeat: int) -> tuple[list[float], Any]:
    out = None
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        samples.append(time.perf_counter() - t0)
    return samples, out


def interleaved(tools: dict[str, Callable[[], Any]], rounds: int) -> tuple[dict[str, list[float]], dict[str, Any]]:
    """Each tool run once per round, in an order that rotates from round to round, so that a slow
    stretch of a shared machine falls on every tool alike; samples in seconds, and each tool's last
    result."""
    names = list(tools)
    samples: dict[str, list[float]] = {n: [] for n in names}
    last: dict[str, Any] = {}
    for n in names:  # warm-up
        last[n] = tools[n]()
    for r in range(rounds):
        for n in names[r % len(names):] + names[:r % len(names)]:
            t0 = time.perf_counter()
            last[n] = tools[n]()
            samples[n].append(time.perf_counter() - t0)
    return samples, last


def med(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def spread(samples: list[float]) -> str:
    _, q1, q3 = quartiles_ms(samples)
    return f"{q1:.2f}-{q3:.2f}"


def paired_ratio(samples: list[float], floor: list[float]) -> str:
    """The median of round-by-round ratios to the floor, with their interquartile range."""
    ratios = sorted(a / b for a, b in zip(samples, floor, strict=True))
    q = len(ratios) // 4
    return f"{statistics.median(ratios):.2f}x ({ratios[q]:.2f}-{ratios[-1 - q]:.2f})"


def ok_fields(snap: Any) -> int:
    from gpuabst.reading import Reading

    def walk(o: Any) -> int:
        import attrs

        n = 0
        for f in attrs.fields(type(o)):
            v = getattr(o, f.name)
            if isinstance(v, Reading):
                n += v.ok
            elif attrs.has(type(v)):
                n += walk(v)
        return n

    return walk(snap.devices[0]) if snap.devices else 0


def compare(nv: Any, counter: Counter | None, gpus: int, rounds: int) -> list[str]:
    """Table rows for one machine size: ``nv`` is the pynvml every tool imports (replayed, with the
    ``counter`` of its calls, or the real module and None)."""
    import gpuabst
    from gpuabst.machine import Machine

    before = dict(vars(nv))
    import gpustat  # it patches pynvml on import (nvmlDeviceGetMemoryInfo takes no version after it)
    import gpustat.core
    from nvitop import Device

    patches = {k: v for k, v in vars(nv).items() if before.get(k) is not v}
    vars(nv).update({k: before[k] for k in patches})  # the other tools see the library unpatched

    def as_gpustat(*, sleep: bool) -> Callable[[], Any]:
        def run() -> Any:
            vars(nv).update(patches)
            real_sleep = gpustat.core.time.sleep
            if not sleep:
                gpustat.core.time.sleep = lambda s: None
            try:
                return gpustat.new_query()
            finally:
                gpustat.core.time.sleep = real_sleep
                vars(nv).update({k: before[k] for k in patches})
        return run

    def nvitop_query() -> Any:
        return [d.as_snapshot() for d in Device.all()]

    def floor_loop() -> int:
        return raw_pynvml_snapshot(nv)

    def full_snapshot() -> Any:
        return gpuabst.snapshot(backends=["nvml"])

    polling = Machine(backends=["nvml"])
    polling.snapshot()
    nv.nvmlInit()  # the poll floor's own session, kept open like the polling Machine's
    handles = [nv.nvmlDeviceGetHandleByIndex(i) for i in range(gpus)]
    unsupported: set[tuple[int, str]] = set()
    serving = Machine(backends=["nvml"])
    collector = HealthCollector(serving, min_interval_s=0)
    metrics_text(collector)  # a collector's first read is a snapshot; each later scrape polls
    tools: dict[str, Callable[[], Any]] = {
        FLOOR: floor_loop,
        "gpuabst full snapshot": full_snapshot,
        POLL_FLOOR: lambda: raw_pynvml_poll(nv, handles, unsupported),
        "gpuabst poll (static facts cached)": polling.poll,
        SCRAPE: lambda: metrics_text(collector),
        "gpustat new_query, its sleep removed": as_gpustat(sleep=False),
        "nvitop Device.all() + as_snapshot()": nvitop_query,
    }
    calls: dict[str, str] = {}
    for name, tool in tools.items():  # the vendor calls of one run of each
        tool()
        if counter:
            counter.calls = 0
        tool()
        calls[name] = str(counter.calls) if counter else "-"
    samples, last = interleaved(tools, rounds)
    polling.close()
    serving.close()
    nv.nvmlShutdown()
    few = max(3, rounds // 10)
    if counter:
        counter.calls = 0
    shipped, query = timed(as_gpustat(sleep=True), few)
    fields = {
        FLOOR: last[FLOOR] // max(gpus, 1),
        "gpuabst full snapshot": ok_fields(last["gpuabst full snapshot"]),
        POLL_FLOOR: last[POLL_FLOOR] // max(gpus, 1),
        "gpuabst poll (static facts cached)": ok_fields(last["gpuabst poll (static facts cached)"]),
        SCRAPE: sum(1 for line in last[SCRAPE].splitlines() if not line.startswith(b"#")) // max(gpus, 1),
        "gpustat new_query, its sleep removed": len(last["gpustat new_query, its sleep removed"].gpus[0].entry),
        "nvitop Device.all() + as_snapshot()": sum(
            1 for v in vars(last["nvitop Device.all() + as_snapshot()"][0]).values()
            if v is not None and str(v) != "N/A"),
    }
    floor = samples[FLOOR]
    rows = []
    for name in tools:
        ratio = "1.00x" if name == FLOOR else paired_ratio(samples[name], floor)
        rows.append(f"| {gpus} | {name} | {med(samples[name]):.2f} | {spread(samples[name])} | {ratio} | "
                    f"{calls[name]} | {fields[name]} |")
    rows.append(f"| {gpus} | gpustat new_query as shipped (sleeps 0.1 s per GPU; {few} runs, not interleaved) | "
                f"{med(shipped):.2f} | {spread(shipped)} | {med(shipped) / med(floor):.2f}x | "
                f"{counter.calls // few if counter else '-'} | {len(query.gpus[0].entry)} |")
    for mod in [m for m in sys.modules if m.startswith(("gpustat", "nvitop"))]:
        del sys.modules[mod]
    return rows


FLOOR = "raw pynvml loop (floor)"
POLL_FLOOR = "raw pynvml poll loop (the poll's calls, session kept open)"
SCRAPE = "gpuabst serve /metrics scrape (poll, verdict, text; samples per GPU)"


def growth(source: fmt.Fixture, rounds: int) -> tuple[float, float]:
    """Median round-by-round ratio of a 64-GPU to an 8-GPU full snapshot, for gpuabst and for the floor:
    both machines' libraries are built up front and swapped in turn, so a slow stretch of a shared
    machine cannot fall on one size only."""
    import gpuabst

    libs = {n: make(add_peer_calls(scale_nvml(source, n)))[0] for n in (8, 64)}
    ratios: dict[str, list[float]] = {"gpuabst": [], "floor": []}
    for _ in range(rounds):
        t: dict[tuple[str, int], float] = {}
        for n, lib in libs.items():
            sys.modules["pynvml"] = lib
            for name, run in (("gpuabst", lambda: gpuabst.snapshot(backends=["nvml"])),
                              ("floor", lambda lib=lib: raw_pynvml_snapshot(lib))):
                t0 = time.perf_counter()
                run()
                t[(name, n)] = time.perf_counter() - t0
        for name in ratios:
            ratios[name].append(t[(name, 64)] / t[(name, 8)])
    return statistics.median(ratios["gpuabst"]), statistics.median(ratios["floor"])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--source", default=str(HERE.parent / "fixtures/nvidia/h100-80gb-hbm3.json"))
    ap.add_argument("--repeat", type=int, default=40, help="rounds (each tool runs once per round)")
    ap.add_argument("--live", action="store_true", help="the real driver and this machine's GPUs")
    ap.add_argument("--gpus", default="1,8,64", help="replayed machine sizes, comma-separated (default 1,8,64; "
                    "the growth from 8 to 64 is measured where both are given)")
    args = ap.parse_args()
    sizes = [int(n) for n in args.gpus.split(",") if n.strip()]
    header = ("| GPUs | tool | median ms | IQR ms | vs floor | NVML calls | fields per GPU |\n"
              "|---|---|---|---|---|---|---|")
    if args.live:
        import pynvml

        pynvml.nvmlInit()
        count = pynvml.nvmlDeviceGetCount()
        pynvml.nvmlShutdown()
        print(f"Machine: {machine_line()}  \nLive: the real driver, {count} GPU(s)  \n"
              f"{args.repeat} interleaved rounds; vs floor: median of the round-by-round ratios (IQR)\n")
        print(header)
        print("\n".join(compare(pynvml, None, count, args.repeat)))
        return
    source = fmt.load(args.source)
    print(f"Machine: {machine_line()}  \nSource fixture: {args.source} ({source.provenance.get('kind')})  \n"
          f"{args.repeat} interleaved rounds; vs floor: median of the round-by-round ratios (IQR)\n")
    print(header)
    for gpus in sizes:
        nv, _tape, counter = install(add_peer_calls(scale_nvml(source, gpus)))
        print("\n".join(compare(nv, counter, gpus, args.repeat)))
    if not {8, 64} <= set(sizes):
        return
    ours, floor = growth(source, max(5, args.repeat // 4))
    print(f"\nGrowth from 8 to 64 GPUs, median of round-by-round ratios (8 and 64 GPUs alternating): "
          f"gpuabst full snapshot {ours:.2f}x, floor {floor:.2f}x (linear would be 8x)")


if __name__ == "__main__":
    main()

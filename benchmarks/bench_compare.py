"""gpuabst against the floor (raw pynvml calls), gpustat and nvitop, on one replayed library.

    python benchmarks/bench_compare.py [--source fixtures/nvidia/h100-80gb-hbm3.json] [--repeat 30]

All three tools import the same ``pynvml``: nvidia-ml-py's module with every NVML function answered
from the fixture (benchmarks/replayed_pynvml.py), so what is timed is each tool's own work per
query. 8- and 64-GPU machines are copies of the real 1-GPU capture (labelled synthetic).
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

from bench_snapshot import machine_line  # noqa: E402
from replayed_pynvml import install  # noqa: E402
from scale import add_peer_calls, scale_nvml  # noqa: E402

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
            ("vbios", nv.nvmlDeviceGetVbiosVersion, ()), ("mem", nv.nvmlDeviceGetMemoryInfo, (MEM_V2,)),
            ("util", nv.nvmlDeviceGetUtilizationRates, ()), ("reasons", nv.nvmlDeviceGetCurrentClocksEventReasons, ()),
            ("remap", nv.nvmlDeviceGetRemappedRows, ()), ("gen", nv.nvmlDeviceGetCurrPcieLinkGeneration, ()),
            ("width", nv.nvmlDeviceGetCurrPcieLinkWidth, ()), ("temp", nv.nvmlDeviceGetTemperatureV, (0,)),
            ("power", nv.nvmlDeviceGetPowerUsage, ()), ("enforced", nv.nvmlDeviceGetEnforcedPowerLimit, ()),
            ("gr", nv.nvmlDeviceGetClockInfo, (0,)), ("sm", nv.nvmlDeviceGetClockInfo, (1,)),
            ("memclk", nv.nvmlDeviceGetClockInfo, (2,)), ("fan", nv.nvmlDeviceGetFanSpeed, ()),
            ("pstate", nv.nvmlDeviceGetPerformanceState, ()),
            ("ecc_cv", nv.nvmlDeviceGetTotalEccErrors, (0, 0)), ("ecc_uv", nv.nvmlDeviceGetTotalEccErrors, (1, 0)),
            ("ecc_ca", nv.nvmlDeviceGetTotalEccErrors, (0, 1)), ("ecc_ua", nv.nvmlDeviceGetTotalEccErrors, (1, 1)),
            ("rp_sbe", nv.nvmlDeviceGetRetiredPages, (0,)), ("rp_dbe", nv.nvmlDeviceGetRetiredPages, (1,)),
            ("rp_pending", nv.nvmlDeviceGetRetiredPagesPendingStatus, ()),
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


def timed(fn: Callable[[], Any], repeat: int) -> tuple[list[float], Any]:
    out = None
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        samples.append(time.perf_counter() - t0)
    return samples, out


def med(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def spread(samples: list[float]) -> str:
    ms = sorted(s * 1000 for s in samples)
    return f"{ms[len(ms) // 4]:.2f}-{ms[(3 * len(ms)) // 4]:.2f}"


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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--source", default=str(HERE.parent / "fixtures/nvidia/h100-80gb-hbm3.json"))
    ap.add_argument("--repeat", type=int, default=30)
    args = ap.parse_args()
    source = fmt.load(args.source)
    print(f"Machine: {machine_line()}  \nSource fixture: {args.source} ({source.provenance.get('kind')})\n")
    print("| GPUs | tool | median ms | IQR ms | vs floor | NVML calls | fields per GPU |")
    print("|---|---|---|---|---|---|---|")
    medians: dict[int, float] = {}
    for gpus in (1, 8, 64):
        fixture = add_peer_calls(scale_nvml(source, gpus))
        nv, _tape, counter = install(fixture)
        import gpuabst
        from gpuabst.machine import Machine

        def run_gpuabst() -> Any:
            return gpuabst.snapshot(backends=["nvml"])

        rows: list[tuple[str, list[float], int, int | str]] = []
        counter.calls = 0
        floor, nfloor = timed(lambda nv=nv: raw_pynvml_snapshot(nv), args.repeat)
        rows.append(("raw pynvml loop (floor)", floor, counter.calls // args.repeat, nfloor // max(gpus, 1)))
        counter.calls = 0
        ours, snap = timed(run_gpuabst, args.repeat)
        rows.append(("gpuabst full snapshot", ours, counter.calls // args.repeat, ok_fields(snap)))
        medians[gpus] = med(ours)
        with Machine(backends=["nvml"]) as m:
            m.snapshot()
            counter.calls = 0
            polls, _ = timed(m.poll, args.repeat)
            rows.append(("gpuabst poll (static facts cached)", polls, counter.calls // args.repeat, ok_fields(snap)))
        import gpustat  # imported only now: it patches pynvml.nvmlDeviceGetMemoryInfo on import
        import gpustat.core
        from nvitop import Device

        counter.calls = 0
        few = max(3, args.repeat // 10)
        gs, q = timed(gpustat.new_query, few)
        rows.append(("gpustat new_query (as shipped: sleeps 0.1 s per GPU)", gs, counter.calls // few,
                     len(q.gpus[0].entry)))
        real_sleep = gpustat.core.time.sleep
        gpustat.core.time.sleep = lambda s: None
        counter.calls = 0
        gs2, q = timed(gpustat.new_query, args.repeat)
        gpustat.core.time.sleep = real_sleep
        rows.append(("gpustat new_query, its sleep removed", gs2, counter.calls // args.repeat, len(q.gpus[0].entry)))
        counter.calls = 0
        nvt, snaps = timed(lambda: [d.as_snapshot() for d in Device.all()], args.repeat)
        fields = sum(1 for v in vars(snaps[0]).values() if v is not None and str(v) != "N/A")
        rows.append(("nvitop Device.all() + as_snapshot()", nvt, counter.calls // args.repeat, fields))
        for name, samples, calls, fields_n in rows:
            ratio = med(samples) / med(floor)
            print(f"| {gpus} | {name} | {med(samples):.2f} | {spread(samples)} | {ratio:.2f}x | {calls} | {fields_n} |")
        for mod in [m for m in sys.modules if m.startswith(("gpustat", "nvitop"))]:
            del sys.modules[mod]
    print(f"\nGrowth of a gpuabst full snapshot from 8 to 64 GPUs: {medians[64] / medians[8]:.2f}x "
          "(linear would be 8x)")


if __name__ == "__main__":
    main()

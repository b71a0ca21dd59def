"""Vendor calls per device: a first snapshot against a poll, on replayed 8-GPU NVML and amdsmi machines.

    python benchmarks/bench_poll_calls.py [--gpus 8] [--repeat 20]

The machines are tests/synthetic.py's nvml_fixture (H100s) and tests/amdsmi_synthetic.py's
amdsmi_fixture (MI300Xs), both labelled synthetic. Every vendor call goes through the replay Tape,
whose ``calls_made`` counts them, so the numbers are exactly what each backend would ask of
libnvidia-ml or libamd_smi on hardware. Also times an NVML snapshot, a poll, a poll plus the
health verdict, the verdict alone and a whole /metrics scrape of `gpuabst serve` (median of --repeat
runs), and gives that scrape's size. Prints Markdown tables.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from amdsmi_synthetic import amdsmi_fixture  # noqa: E402
from synthetic import nvml_fixture  # noqa: E402

from gpuabst.exporter.prometheus import HealthCollector, metrics_text  # noqa: E402
from gpuabst.health import evaluate  # noqa: E402
from gpuabst.machine import Machine  # noqa: E402


def count_calls(gpus: int, backend: str = "nvml") -> dict[str, int]:
    """Vendor calls made by opening the backend, a first snapshot, and the second of two polls."""
    fixture = nvml_fixture(gpus) if backend == "nvml" else amdsmi_fixture(gpus)
    with Machine([fixture], backends=[backend]) as m:
        m.backend_reports()
        tape: Any = m.library.tapes[backend]  # type: ignore[attr-defined]
        opened = tape.calls_made
        m.snapshot()
        snapshot = tape.calls_made - opened
        m.poll()
        before = tape.calls_made
        m.poll()
        poll = tape.calls_made - before
    return {"open": opened, "snapshot": snapshot, "poll": poll}


def timings(gpus: int, repeat: int) -> tuple[dict[str, float], tuple[int, int]]:
    """Median milliseconds of a snapshot, a poll, a poll plus evaluating health, evaluating it alone,
    and a whole /metrics scrape (poll, verdict and exposition text, as `gpuabst serve` answers it); and
    the bytes and samples of that scrape."""
    fx = nvml_fixture(gpus)
    scrape = "/metrics scrape (poll, verdict, exposition text)"
    out: dict[str, list[float]] = {"snapshot": [], "poll": [], "poll + health": [], "health verdict alone": [],
                                   scrape: []}
    text = b""
    for _ in range(repeat):
        with Machine([fx], backends=["nvml"]) as m:
            m.backend_reports()
            t = time.perf_counter()
            m.snapshot()
            out["snapshot"].append(time.perf_counter() - t)
            t = time.perf_counter()
            m.poll()
            out["poll"].append(time.perf_counter() - t)
            t = time.perf_counter()
            polled = m.poll()
            evaluate(polled)
            out["poll + health"].append(time.perf_counter() - t)
            t = time.perf_counter()
            evaluate(polled)
            out["health verdict alone"].append(time.perf_counter() - t)
            collector = HealthCollector(m, min_interval_s=0)
            metrics_text(collector)  # a collector's first read is a snapshot: time the next, a poll
            t = time.perf_counter()
            text = metrics_text(collector)
            out[scrape].append(time.perf_counter() - t)
    size = (len(text), sum(1 for line in text.splitlines() if not line.startswith(b"#")))
    return {k: statistics.median(v) * 1000 for k, v in out.items()}, size


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gpus", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args()
    calls = count_calls(args.gpus)
    n = args.gpus
    per_snapshot = (calls["snapshot"] - 1) / n  # one nvmlDeviceGetCount per snapshot
    per_poll = calls["poll"] / n
    print(f"Replayed {n}-GPU NVML machine (synthetic H100s), Python {platform.python_version()}, "
          f"{platform.machine()}\n")
    print("| read | vendor calls | per GPU |")
    print("|---|---:|---:|")
    print(f"| open (nvmlInit, driver and CUDA versions) | {calls['open']} | - |")
    print(f"| first snapshot | {calls['snapshot']} | {per_snapshot:g} (+1 nvmlDeviceGetCount) |")
    print(f"| poll | {calls['poll']} | {per_poll:g} |")
    print(f"\nA poll makes {calls['poll'] / calls['snapshot']:.0%} of a snapshot's vendor calls.\n")
    amd = count_calls(n, "amdsmi")
    print(f"Replayed {n}-GPU amdsmi machine (synthetic MI300Xs):\n")
    print("| read | vendor calls | per GPU |")
    print("|---|---:|---:|")
    print(f"| open (amdsmi_init, handles, driver) | {amd['open']} | - |")
    print(f"| first snapshot | {amd['snapshot']} | {(amd['snapshot'] - 1) / n:g} (+1 amdsmi_get_processor_handles) |")
    print(f"| poll | {amd['poll']} | {amd['poll'] / n:g} |\n")
    print(f"| {n} GPUs, median of {args.repeat} | ms |")
    print("|---|---:|")
    medians, (size, samples) = timings(n, args.repeat)
    for k, v in medians.items():
        print(f"| {k} | {v:.2f} |")
    print(f"\nA /metrics scrape of {n} GPUs: {size:,} bytes, {samples:,} samples.")


if __name__ == "__main__":
    main()

"""Does the NVIDIA driver run NVML calls from several threads at the same time? (Needs a real GPU.)

    python benchmarks/nvml_overlap.py [--threads 4] [--rounds 200]

The same poll-like calls (temperature, power, memory, utilisation, SM clock, ECC counter) are made
``rounds`` times on GPU 0 from one thread, then split across ``threads`` threads. pynvml releases
Python's lock during each C call, so if the driver let the calls overlap, the threaded run would take
about 1/threads of the time; if it serialises them (one resource-manager lock), about the same.
That decides whether reading a machine's GPUs concurrently can pay. Prints the per-call medians too.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from collections.abc import Callable
from typing import Any


def poll_calls(nv: Any, handle: Any) -> list[tuple[str, Callable[[], Any]]]:
    """The NVML calls of one poll that every data-centre GPU answers."""
    return [
        ("nvmlDeviceGetTemperature", lambda: nv.nvmlDeviceGetTemperature(handle, 0)),
        ("nvmlDeviceGetPowerUsage", lambda: nv.nvmlDeviceGetPowerUsage(handle)),
        ("nvmlDeviceGetMemoryInfo", lambda: nv.nvmlDeviceGetMemoryInfo(handle)),
        ("nvmlDeviceGetUtilizationRates", lambda: nv.nvmlDeviceGetUtilizationRates(handle)),
        ("nvmlDeviceGetClockInfo", lambda: nv.nvmlDeviceGetClockInfo(handle, 1)),
        ("nvmlDeviceGetTotalEccErrors", lambda: nv.nvmlDeviceGetTotalEccErrors(handle, 1, 0)),
    ]


def run_rounds(calls: list[tuple[str, Callable[[], Any]]], rounds: int, nv: Any) -> None:
    for _ in range(rounds):
        for _, call in calls:
            try:
                call()
            except nv.NVMLError:
                pass


def overlap(nv: Any, handle: Any, threads: int, rounds: int) -> tuple[float, float, dict[str, float]]:
    """Seconds for ``rounds`` rounds in one thread, the same split over ``threads`` threads, and the
    median microseconds of each call."""
    calls = poll_calls(nv, handle)
    per_call: dict[str, float] = {}
    for name, call in calls:
        samples = []
        for _ in range(50):
            t0 = time.perf_counter()
            try:
                call()
            except nv.NVMLError:
                break
            samples.append(time.perf_counter() - t0)
        if samples:
            per_call[name] = statistics.median(samples) * 1e6
    t0 = time.perf_counter()
    run_rounds(calls, rounds, nv)
    one = time.perf_counter() - t0
    workers = [threading.Thread(target=run_rounds, args=(calls, rounds // threads, nv)) for _ in range(threads)]
    t0 = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    many = time.perf_counter() - t0
    return one, many, per_call


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=200)
    args = ap.parse_args()
    import pynvml as nv

    nv.nvmlInit()
    try:
        handle = nv.nvmlDeviceGetHandleByIndex(0)
        one, many, per_call = overlap(nv, handle, args.threads, args.rounds)
    finally:
        nv.nvmlShutdown()
    print(f"{args.rounds} rounds of {len(per_call)} calls on GPU 0: one thread {one * 1000:.1f} ms, "
          f"{args.threads} threads {many * 1000:.1f} ms ({one / many:.2f}x; {args.threads:.2f}x would be "
          "full overlap, 1x none)")
    for name, us in per_call.items():
        print(f"- {name}: median {us:.1f} µs")


if __name__ == "__main__":
    main()

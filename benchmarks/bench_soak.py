"""Soak: 100,000 polls of a replayed 8-GPU machine; resident memory at the start and every 10,000 polls.

    python benchmarks/bench_soak.py [--polls 100000] [--scrapes] [--source fixtures/nvidia/h100-80gb-hbm3.json]
    python benchmarks/bench_soak.py --live [--polls 20000] [--scrapes]     (this machine's NVIDIA GPUs)

Target (issue 8): resident memory growth under 10 MB after warm-up. ``--scrapes``: each step is what
`gpuabst serve` does per Prometheus scrape instead (a poll, the health verdict, the /metrics text).
``--live``: the real driver and this machine's GPUs instead of the replayed 8.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_snapshot import machine_line  # noqa: E402
from scale import scale_nvml  # noqa: E402

from gpuabst.exporter.prometheus import HealthCollector, metrics_text  # noqa: E402
from gpuabst.fixtures import format as fmt  # noqa: E402
from gpuabst.machine import Machine  # noqa: E402


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--source", default=str(HERE.parent / "fixtures/nvidia/h100-80gb-hbm3.json"))
    ap.add_argument("--polls", type=int, default=100_000)
    ap.add_argument("--scrapes", action="store_true", help="each step a whole /metrics scrape, not a poll")
    ap.add_argument("--live", action="store_true", help="the real driver and this machine's GPUs")
    args = ap.parse_args()
    fixtures = [] if args.live else [scale_nvml(fmt.load(args.source), 8)]
    what = "scrapes" if args.scrapes else "polls"
    print(f"Machine: {machine_line()}", flush=True)
    with Machine(fixtures, backends=["nvml"]) as m:
        gpus = f"{len(m.snapshot().devices)} {'live' if args.live else 'replayed'} GPU(s)"
        if args.scrapes:
            collector = HealthCollector(m, min_interval_s=0)

            def step() -> object:
                return metrics_text(collector)
        else:
            step = m.poll
        for _ in range(1000):  # warm-up: caches, interned strings, allocator arenas
            step()
        gc.collect()
        start = rss_bytes()
        t0 = time.perf_counter()
        print(f"after warm-up (1,000 {what}): RSS {start / 2**20:.1f} MiB", flush=True)
        every = max(args.polls // 10, 1)
        for i in range(1, args.polls + 1):
            step()
            if i % every == 0:
                rss = rss_bytes()
                print(f"{i:>7} {what}: RSS {rss / 2**20:.1f} MiB, growth {(rss - start) / 2**20:+.2f} MiB,"
                      f" {1000 * (time.perf_counter() - t0) / i:.2f} ms each", flush=True)
        gc.collect()
        growth = rss_bytes() - start
    print(f"RESULT: {args.polls} {what} of {gpus}, RSS growth {growth / 2**20:+.2f} MiB "
          f"({'under' if growth < 10 * 2**20 else 'NOT under'} the 10 MB target)")


if __name__ == "__main__":
    main()

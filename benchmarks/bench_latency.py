"""What a read costs on the real machine a capture came from: replay with the recorded per-call latency.

    python benchmarks/bench_latency.py FIXTURE [--backend NAME] [--repeat 5]

Prints the time of a snapshot and of the poll after it (a capture records one, so the poll replays
each call's second answer and latency) with and without the recorded latencies, the sum of recorded latencies,
and, from the recording, what reading devices concurrently could save: the calls are grouped by the
device handle they name, and the bound is the slowest device's own calls plus the calls that name
no device (a lower bound on a concurrent read; the backends read devices one after another today).
Then a table of the recorded latency per vendor function (calls, median, largest, share of the total).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_snapshot import machine_line  # noqa: E402

from gpuabst.fixtures import format as fmt  # noqa: E402
from gpuabst.machine import Machine  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("fixture")
    ap.add_argument("--backend", default=None)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    fixture = fmt.load(args.fixture)
    name = args.backend or next(iter(fixture.backends))
    calls = fixture.backends[name].calls
    recorded = [c for c in calls if c.get("latency_us") is not None]
    if not recorded:
        raise SystemExit(f"{args.fixture}: no per-call latency recorded (imported fixtures have none; capture one)")
    total_us = sum(float(c["latency_us"]) for c in recorded)
    per_device: dict[str, float] = defaultdict(float)
    shared = 0.0
    for c in recorded:
        tokens = [a["$handle"] for a in c.get("args", []) if isinstance(a, dict) and "$handle" in a]
        if tokens:
            per_device[tokens[0]] += float(c["latency_us"])
        else:
            shared += float(c["latency_us"])
    print(f"Machine: {machine_line()}  \nFixture: {args.fixture} ({fixture.provenance.get('kind')}, "
          f"{fixture.provenance.get('tool')}), backend {name}, {len(calls)} calls\n")
    for latency in (False, True):
        samples, polls = [], []
        for _ in range(args.repeat):
            with Machine([fixture], backends=[name], replay_latency=latency) as m:
                t0 = time.perf_counter()
                m.snapshot()
                t1 = time.perf_counter()
                m.poll()  # a capture records one poll after its snapshot: the calls' second answers
                polls.append(time.perf_counter() - t1)
                samples.append(t1 - t0)
        how = "with" if latency else "without"
        print(f"- snapshot {how} recorded latency: {statistics.median(samples) * 1000:.2f} ms, the poll after it "
              f"{statistics.median(polls) * 1000:.2f} ms (medians of {args.repeat})")
    print(f"- sum of recorded call latencies: {total_us / 1000:.2f} ms over {len(recorded)} calls")
    if per_device:
        bound = shared + max(per_device.values())
        print(f"- calls naming no handle: {shared / 1000:.2f} ms; slowest handle's own calls: "
              f"{max(per_device.values()) / 1000:.2f} ms over {len(per_device)} handles")
        print(f"- a concurrent read could take at least {bound / 1000:.2f} ms "
              f"({total_us / bound:.2f}x less than sequential at best)")
    print()
    print("\n".join(latency_table(recorded, total_us)))


def latency_table(recorded: list[dict[str, Any]], total_us: float) -> list[str]:
    """Markdown rows: each vendor function's recorded calls, median and largest latency, share of the total."""
    by_fn: dict[str, list[float]] = defaultdict(list)
    for c in recorded:
        by_fn[str(c["fn"])].append(float(c["latency_us"]))
    rows = ["| vendor function | calls | median µs | largest µs | share of recorded time |",
            "|---|---:|---:|---:|---:|"]
    for fn, lat in sorted(by_fn.items(), key=lambda kv: -sum(kv[1])):
        rows.append(f"| {fn} | {len(lat)} | {statistics.median(lat):.1f} | {max(lat):.1f} | "
                    f"{sum(lat) / total_us:.1%} |")
    return rows


if __name__ == "__main__":
    main()

"""`gpuabst serve` over HTTP: the time of a /metrics and a /healthz request, as Prometheus would see it.

    python benchmarks/bench_serve_http.py [--requests 200] [--fixture FILE]

Starts `gpuabst serve --min-interval 0` (every scrape reads the GPUs) on a free local port, waits
until it answers, then times --requests GETs of /metrics and of /healthz (medians and interquartile
ranges, and the size of a /metrics answer), and stops the server. Without --fixture it serves this
machine's NVIDIA GPUs (--backend nvml).
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_snapshot import machine_line, table_row  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:  # /healthz answers 503 on a node that is not ok
        return e.code, e.read()


def wait_until_up(url: str, server: subprocess.Popen[bytes], limit_s: float = 60) -> None:
    end = time.monotonic() + limit_s
    while time.monotonic() < end:
        if server.poll() is not None:
            raise SystemExit(f"gpuabst serve exited with {server.returncode}: "
                             f"{server.stderr.read().decode(errors='replace') if server.stderr else ''}")
        try:
            get(url)
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"gpuabst serve did not answer {url} within {limit_s:.0f} s")


def timed(url: str, n: int) -> tuple[list[float], bytes, int]:
    times: list[float] = []
    body, status = b"", 0
    for _ in range(n):
        t0 = time.perf_counter()
        status, body = get(url)
        times.append(time.perf_counter() - t0)
    return times, body, status


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--fixture", help="serve this fixture instead of the machine's GPUs")
    args = ap.parse_args()
    port = free_port()
    source = ["--fixture", args.fixture] if args.fixture else ["--backend", "nvml"]
    server = subprocess.Popen(["gpuabst", "serve", *source, "--port", str(port), "--min-interval", "0"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(base + "/healthz", server)
        get(base + "/metrics")  # the first read is a snapshot; time the polls that follow
        metrics, body, _ = timed(base + "/metrics", args.requests)
        health, _, status = timed(base + "/healthz", args.requests)
    finally:
        server.terminate()
        server.wait(timeout=30)
    samples = sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))
    print(f"Machine: {machine_line()}  \nServing: {args.fixture or 'this machine (nvml)'}, "
          f"{args.requests} requests each, one after another\n")
    print("| request | median ms | IQR ms |")
    print("|---|---:|---|")
    print(table_row("/metrics", metrics))
    print(table_row(f"/healthz (answered {status})", health))
    print(f"\nA /metrics answer: {len(body):,} bytes, {samples:,} samples.")


if __name__ == "__main__":
    main()

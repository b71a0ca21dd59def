"""What a one-shot command costs as a process: gpuabst's commands against nvidia-smi's (and gpustat's).

    python benchmarks/bench_processes.py [--repeat 10] [--fixture FILE]

An agent that shells out pays the interpreter's start, imports and the vendor library's
initialisation on every call, not only the reads. Each command runs --repeat times, the commands
interleaved round by round; prints the median and interquartile range of the wall time of each.
Commands whose program is not installed are listed as missing. With --fixture, gpuabst's commands
replay it (to try the script on a machine without a GPU). `gpuabst list` runs with its entry-point
index (written by its first run) and, as another command, with ``GPUABST_CACHE_DIR=off`` (every start
scans the installed packages' metadata; ``env`` adds about a millisecond to that row).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_snapshot import machine_line, table_row  # noqa: E402

SMI_QUERY = ("--query-gpu=temperature.gpu,power.draw,utilization.gpu,memory.used,clocks.sm,"
             "ecc.errors.uncorrected.volatile.total")


def commands(fixture: str | None) -> dict[str, list[str]]:
    replay = ["--fixture", str(Path(fixture).resolve())] if fixture else ["--backend", "nvml"]
    return {
        "python3 -c pass (the interpreter and its site packages' start)": [sys.executable, "-c", "pass"],
        "python3 -c 'import gpuabst'": [sys.executable, "-c", "import gpuabst"],
        "gpuabst list": ["gpuabst", "list", *replay],
        "gpuabst list, scanning entry points on every start (GPUABST_CACHE_DIR=off)": [
            "env", "GPUABST_CACHE_DIR=off", "gpuabst", "list", *replay],
        "gpuabst health": ["gpuabst", "health", *replay],
        "gpuabst show --json": ["gpuabst", "show", "--json", *replay],
        "gpuabst labels": ["gpuabst", "labels", *replay],
        "nvidia-smi -L": ["nvidia-smi", "-L"],
        f"nvidia-smi {SMI_QUERY} --format=csv": ["nvidia-smi", SMI_QUERY, "--format=csv"],
        "nvidia-smi -q": ["nvidia-smi", "-q"],
        "gpustat --no-color": ["gpustat", "--no-color"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--fixture", help="gpuabst's commands replay this fixture")
    args = ap.parse_args()
    # a command run by `env` counts as installed when the program env starts is
    found = {k: v for k, v in commands(args.fixture).items() if shutil.which(v[2] if v[0] == "env" else v[0])}
    missing = [k for k in commands(args.fixture) if k not in found]
    samples: dict[str, list[float]] = {k: [] for k in found}
    failed: dict[str, str] = {}
    names = list(found)
    elsewhere = tempfile.gettempdir()  # not the checkout, whose gpuabst/ would shadow the installed one
    for r in range(args.repeat):
        for name in names[r % len(names):] + names[:r % len(names)]:
            t0 = time.perf_counter()
            done = subprocess.run(found[name], capture_output=True, timeout=60, cwd=elsewhere)
            samples[name].append(time.perf_counter() - t0)
            if done.returncode not in (0, 3):  # gpuabst health exits 3 on a warning
                failed[name] = f"exit {done.returncode}: {done.stderr.decode(errors='replace').strip()[:200]}"
    cached = "not written (PYTHONDONTWRITEBYTECODE)" if os.environ.get("PYTHONDONTWRITEBYTECODE") else "written"
    print(f"Machine: {machine_line()}  \n{args.repeat} runs of each command, interleaved; byte code {cached} "
          f"(modules without a .pyc are compiled on every start)\n")
    print("| command | median ms | IQR ms |")
    print("|---|---:|---|")
    for name, times in samples.items():
        print(table_row(name, times, digits=1))
    for name, why in failed.items():
        print(f"\n{name} failed: {why}")
    if missing:
        print(f"\nnot installed here: {', '.join(missing)}")


if __name__ == "__main__":
    main()

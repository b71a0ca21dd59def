"""Time `import gpuabst`, and a full snapshot of replayed 1- and 8-GPU NVML machines.

    python benchmarks/bench_snapshot.py [--source fixtures/nvidia/h100-80gb-hbm3.json] [--repeat 50]

Prints a Markdown table (median and spread of repeated runs) and the machine it ran on.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from scale import scale_nvml  # noqa: E402

import gpuabst  # noqa: E402
from gpuabst.fixtures import format as fmt  # noqa: E402


def machine_line() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    system = f"{platform.system()} {platform.release()}"
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, {system}"


def quartiles_ms(samples: list[float]) -> tuple[float, float, float]:
    """The median, first and third quartile of ``samples`` (seconds), in milliseconds."""
    ms = sorted(s * 1000 for s in samples)
    return statistics.median(ms), ms[len(ms) // 4], ms[(3 * len(ms)) // 4]


def table_row(name: str, samples: list[float], digits: int = 2) -> str:
    """``| name | median | q1-q3 |`` in milliseconds: a row of the scripts' timing tables."""
    median, q1, q3 = quartiles_ms(samples)
    return f"| {name} | {median:.{digits}f} | {q1:.{digits}f}-{q3:.{digits}f} |"


def stats_ms(samples: list[float]) -> str:
    median, q1, q3 = quartiles_ms(samples)
    return f"{median:.2f} ms (IQR {q1:.2f}-{q3:.2f}, n={len(samples)})"


def time_process(code: str, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        out.append(time.perf_counter() - t0)
    return out


def imported_modules(code: str, env: dict[str, str] | None = None) -> list[str]:
    """Top-level packages a Python snippet leaves imported (beyond a bare interpreter's)."""
    probe = ("import sys; base = set(sys.modules); " + code +
             "; print('modules:', ' '.join(sorted({m.split('.')[0] for m in set(sys.modules) - base})))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                         env={**os.environ, **(env or {})})
    line = next(ln for ln in out.stdout.splitlines() if ln.startswith("modules:"))
    return line.split()[1:]


def time_snapshot(fixture: fmt.Fixture, repeat: int) -> tuple[list[float], int]:
    samples = []
    n = 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        snap = gpuabst.snapshot([fixture], backends=["nvml"])  # a loaded Fixture is accepted too
        samples.append(time.perf_counter() - t0)
        n = len(snap.devices)
    return samples, n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--source", default=str(HERE.parent / "fixtures/nvidia/h100-80gb-hbm3.json"))
    ap.add_argument("--repeat", type=int, default=50)
    args = ap.parse_args()
    source = fmt.load(args.source)
    # byte-compile the project as `pip install` does: timings must not include compiling every module
    # (this workplace sets PYTHONDONTWRITEBYTECODE, which would make every start recompile)
    import compileall

    for folder in ("gpuabst", "backends"):
        compileall.compile_dir(str(HERE.parent / folder), quiet=1)
    print(f"Machine: {machine_line()}  \nBytecode compiled beforehand, as pip install does.\n")
    print("| what | time |\n|---|---|")
    print(f"| bare interpreter start (`python -c pass`) | {stats_ms(time_process('pass', 20))} |")
    print(f"| `python -c 'import gpuabst'` | {stats_ms(time_process('import gpuabst', 20))} |")
    list_code = ("import os, sys; from gpuabst.cli.main import main; os.environ['GPUABST_FIXTURE'] = "
                 f"{args.source!r}; sys.stdout = open(os.devnull, 'w'); main(['list'])")
    print(f"| `gpuabst list` on the replayed fixture | {stats_ms(time_process(list_code, 20))} |")
    for copies in (1, 8):
        fx = scale_nvml(source, copies)
        samples, n = time_snapshot(fx, args.repeat)
        calls = len(fx.backends["nvml"].calls)
        print(f"| full snapshot, replayed {n}-GPU machine ({calls} recorded calls) | {stats_ms(samples)} |")
    print(f"\nImported by `import gpuabst`: {' '.join(imported_modules('import gpuabst'))}  ")
    listed = imported_modules(list_code.replace("sys.stdout = open(os.devnull, 'w'); ", ""))
    print(f"Imported by `gpuabst list` (replaying NVML): {' '.join(listed)}  ")
    vendor = [m for m in ("pynvml", "amdsmi", "pyopencl", "numpy") if m in listed]
    print(f"Vendor libraries or numpy among them: {', '.join(vendor) or 'none'}")


if __name__ == "__main__":
    main()

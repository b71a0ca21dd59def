"""Time `import gpuabst`, and a full snapshot of replayed 1- and 8-GPU NVML machines.

    python benchmarks/bench_snapshot.py [--source fixtures/nvidia/h100-80gb-hbm3.json] [--repeat 50]
                                        [--installed 200] [--processes 20]

Prints a Markdown table (median and spread of repeated runs) and the machine it ran on. `gpuabst
list` is timed reading gpuabst's entry-point index and, taking turns with it, scanning every
installed package's metadata on every start (``GPUABST_CACHE_DIR=off``); ``--installed N`` adds N
minimal installed packages (metadata and an entry_points.txt each, on PYTHONPATH) to time both in an
environment as large as a GPU image's.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
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


def time_process(code: str, repeat: int, env: dict[str, str] | None = None) -> list[float]:
    return time_processes({"": (code, env)}, repeat)[""]


def time_processes(runs: dict[str, tuple[str, dict[str, str] | None]], repeat: int) -> dict[str, list[float]]:
    """Each Python snippet started as a process ``repeat`` times, the snippets taking turns."""
    out: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeat):
        for name, (code, env) in runs.items():
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, **(env or {})})
            out[name].append(time.perf_counter() - t0)
    return out


def imported_modules(code: str, env: dict[str, str] | None = None) -> list[str]:
    """Top-level packages a Python snippet leaves imported (beyond a bare interpreter's)."""
    probe = ("import sys; base = set(sys.modules); " + code +
             "; print('modules:', ' '.join(sorted({m.split('.')[0] for m in set(sys.modules) - base})))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                         env={**os.environ, **(env or {})})
    line = next(ln for ln in out.stdout.splitlines() if ln.startswith("modules:"))
    return line.split()[1:]


def install_minimal_packages(folder: Path, count: int) -> None:
    """``count`` installed packages of one empty module each, with the metadata and the entry points
    (a console script, a plugin of some other tool) that a scan of entry points reads."""
    for i in range(count):
        name = f"bench_pkg_{i:04d}"
        (folder / f"{name}.py").write_text("")
        dist = folder / f"{name}-1.0.dist-info"
        dist.mkdir()
        (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\nSummary: x\n")
        (dist / "entry_points.txt").write_text(f"[console_scripts]\n{name} = {name}:main\n\n"
                                               f"[some.other.plugins]\n{name} = {name}:Plugin\n")


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
    ap.add_argument("--installed", type=int, default=0, help="minimal packages to add for the `gpuabst list` rows")
    ap.add_argument("--processes", type=int, default=20, help="starts of each process timed")
    args = ap.parse_args()
    source = fmt.load(args.source)
    # byte-compile the project as `pip install` does: timings must not include compiling every module
    # (this workplace sets PYTHONDONTWRITEBYTECODE, which would make every start recompile)
    import compileall

    for folder in ("gpuabst", "backends"):
        compileall.compile_dir(str(HERE.parent / folder), quiet=1)
    print(f"Machine: {machine_line()}  \nBytecode compiled beforehand, as pip install does.\n")
    print("| what | time |\n|---|---|")
    print(f"| bare interpreter start (`python -c pass`) | {stats_ms(time_process('pass', args.processes))} |")
    print(f"| `python -c 'import gpuabst'` | {stats_ms(time_process('import gpuabst', args.processes))} |")
    list_code = ("import os, sys; from gpuabst.cli.main import main; os.environ['GPUABST_FIXTURE'] = "
                 f"{args.source!r}; sys.stdout = open(os.devnull, 'w'); main(['list'])")
    with tempfile.TemporaryDirectory() as extra:
        env = None
        if args.installed:
            env = {"PYTHONPATH": os.pathsep.join([extra, os.environ.get("PYTHONPATH", "")])}
            install_minimal_packages(Path(extra), args.installed)
        subprocess.run([sys.executable, "-c", list_code], check=True, env={**os.environ, **(env or {})})  # the index
        lists = time_processes({"index": (list_code, env), "scan": (list_code, {**(env or {}),
                                                                               "GPUABST_CACHE_DIR": "off"})},
                                args.processes)
    more = f", {args.installed} more packages installed" if args.installed else ""
    print(f"| `gpuabst list` on the replayed fixture{more} | {stats_ms(lists['index'])} |")
    print(f"| the same, scanning entry points on every start (`GPUABST_CACHE_DIR=off`) | {stats_ms(lists['scan'])} |")
    for copies in (1, 8):
        fx = scale_nvml(source, copies)
        samples, n = time_snapshot(fx, args.repeat)
        calls = len(fx.backends["nvml"].calls)
        print(f"| full snapshot, replayed {n}-GPU machine ({calls} recorded calls) | {stats_ms(samples)} |")
    print(f"\nImported by `import gpuabst`: {' '.join(imported_modules('import gpuabst'))}  ")
    probe = list_code.replace("sys.stdout = open(os.devnull, 'w'); ", "")
    imported_modules(probe)  # the first start with this sys.path writes its entry-point index
    listed = imported_modules(probe)
    print(f"Imported by `gpuabst list` (replaying NVML): {' '.join(listed)}  ")
    vendor = [m for m in ("pynvml", "amdsmi", "pyopencl", "numpy") if m in listed]
    print(f"Vendor libraries or numpy among them: {', '.join(vendor) or 'none'}")


if __name__ == "__main__":
    main()

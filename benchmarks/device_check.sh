#!/usr/bin/env bash
# One prepared run on a machine with an NVIDIA GPU (no network needed there): install the project
# from wheels built beforehand, capture a real scrubbed fixture with gpuabst's own capture command,
# run the hardware tests, time a poll against nvidia-smi, list the capture's recorded latency per
# call (bench_latency.py) and test whether the driver overlaps calls from several threads
# (nvml_overlap.py). Results go to $OUT (or ./device-out).
#
# Beforehand, on a machine with network, in the repository root:
#   python3 -m pip wheel --no-deps -w .whl . && python3 -m pip download --no-deps --only-binary=:all: \
#     --python-version 3.12 --implementation cp --platform manylinux2014_x86_64 -d .whl \
#     attrs nvidia-ml-py pytest hypothesis iniconfig pluggy packaging
set -u
out=${OUT:-device-out}; mkdir -p "$out"
python3 -m pip install -q --no-index --no-deps --no-compile --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site PATH=/tmp/site/bin:$PATH
{ nvidia-smi -L; nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv; } > "$out/nvidia-smi.txt" 2>&1
python3 -m gpuabst backends > "$out/backends.txt" 2>&1
python3 -m gpuabst capture --backend nvml --note "device check" -o "$out/capture.json" > "$out/capture.log" 2>&1
python3 -m gpuabst show --json --backend nvml > "$out/show.json" 2> "$out/show.err"
python3 -m pytest -q -m hardware -p no:cacheprovider tests/test_hardware.py > "$out/hardware-tests.txt" 2>&1
python3 - > "$out/poll-timing.txt" 2>&1 <<'PY'
import statistics, subprocess, time
from gpuabst.machine import Machine

def median_ms(fn, n=30):
    times = []
    for _ in range(n):
        t0 = time.perf_counter(); fn(); times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000

with Machine(backends=["nvml"]) as m:
    first = median_ms(m.snapshot, 5)
    poll = median_ms(m.poll)
smi = median_ms(lambda: subprocess.run(["nvidia-smi", "--query-gpu=temperature.gpu,power.draw,utilization.gpu,"
                                        "memory.used,clocks.sm,ecc.errors.uncorrected.volatile.total",
                                        "--format=csv,noheader"], capture_output=True, check=True), 10)
print(f"gpuabst snapshot {first:.1f} ms, gpuabst poll {poll:.1f} ms, nvidia-smi query {smi:.1f} ms (medians)")
PY
# the capture's recorded latency per call, and whether the driver overlaps calls from several threads
python3 benchmarks/bench_latency.py "$out/capture.json" --backend nvml > "$out/latency.txt" 2>&1
python3 benchmarks/nvml_overlap.py > "$out/overlap.txt" 2>&1
ls -l "$out"

#!/usr/bin/env bash
# One prepared run on a machine with an NVIDIA GPU (no network needed there): install the project
# from wheels built beforehand, capture a real scrubbed fixture with gpuabst's own capture command,
# run the hardware tests, time a poll against nvidia-smi, list the capture's recorded latency per
# call (bench_latency.py), test whether the driver overlaps calls from several threads
# (nvml_overlap.py) and whether one nvmlDeviceGetFieldValues call could replace seven of a poll's
# calls (nvml_fieldvalues.py). Results go to $OUT (or ./device-out).
#
# Beforehand, on a machine with network, in the repository root (.whl/ is git-ignored; carry it):
#   python3 -m pip wheel --no-deps -w .whl . && python3 -m pip download --no-deps --only-binary=:all: \
#     --python-version 3.12 --implementation cp --platform manylinux2014_x86_64 -d .whl attrs nvidia-ml-py
# (pure-Python wheels; pytest and the rest are already on the GPU machine's image). Then, there:
#   bash benchmarks/device_check.sh    with a timeout of about 5 minutes
set -u
out=${OUT:-device-out}; mkdir -p "$out"
python3 -m pip install -q --no-index --no-deps --no-compile --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site PATH=/tmp/site/bin:$PATH
report="$out/report.txt"   # everything but the two JSON files, in one file ($OUT brings back at most 8)
section() { printf '\n## %s\n' "$1" >> "$report"; }
section "nvidia-smi"; { nvidia-smi -L; nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv; } >> "$report" 2>&1
section "gpuabst backends"; gpuabst backends >> "$report" 2>&1
section "gpuabst capture"
gpuabst capture --backend nvml --note "device check" -o "$out/capture.json" >> "$report" 2>&1
section "gpuabst show (errors)"; gpuabst show --json --backend nvml > "$out/show.json" 2>> "$report"
section "hardware tests"; python3 -P -m pytest -q -m hardware -p no:cacheprovider tests/test_hardware.py >> "$report" 2>&1
section "poll against nvidia-smi"
python3 -P - >> "$report" 2>&1 <<'PY'
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
section "recorded latency per call"; python3 benchmarks/bench_latency.py "$out/capture.json" --backend nvml >> "$report" 2>&1
section "calls from several threads"; python3 benchmarks/nvml_overlap.py >> "$report" 2>&1
section "nvmlDeviceGetFieldValues against single calls"; python3 benchmarks/nvml_fieldvalues.py >> "$report" 2>&1
ls -l "$out"

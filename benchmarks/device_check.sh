#!/usr/bin/env bash
# One prepared run on a machine with an NVIDIA GPU (no network needed there): install the project
# from wheels built beforehand, capture a real scrubbed fixture with gpuabst's own capture command,
# run the hardware tests, time gpuabst against the raw pynvml floor,
# gpustat and nvitop on the real driver (bench_compare.py --live), list the capture's recorded
# latency per call (bench_latency.py), test whether the driver overlaps calls from several threads
# (nvml_overlap.py) and whether one nvmlDeviceGetFieldValues call could replace seven of a poll's
# calls (nvml_fieldvalues.py). Also saves nvidia-smi's own view of the GPU (-q, -q -x), the facts
# a fixture's expectations are reviewed against, and what gpuabst advertises to Akash. Then the
# costs an agent meets: one-shot commands as processes (bench_processes.py), `gpuabst serve` over
# HTTP (bench_serve_http.py), memory over a live soak (bench_soak.py --live); and last the same
# GPU captured again while PyTorch keeps it busy (gpu_load.py), with nvidia-smi -q beside it. With
# .ocl/ carried, also every backend at once (NVML, OpenCL through NVIDIA's ICD, sysfs PCI), clinfo,
# and the live OpenCL tests. Results go to $OUT (or ./device-out): at most 8 files. About 100 s on
# an H100 or H200.
#
# Beforehand, on a machine with network, in the repository root (.whl/ is git-ignored; carry it):
#   python3 -m pip wheel --no-deps -w .whl . gpustat==1.1.1 && python3 -m pip download --no-deps \
#     --only-binary=:all: --python-version 3.12 --implementation cp --platform manylinux2014_x86_64 \
#     -d .whl attrs nvidia-ml-py nvitop blessed jinxed wcwidth
# (gpustat publishes no wheel, so it is built; pytest and psutil are already on the GPU machine's image). Optionally, for
# OpenCL on the same GPU (NVIDIA's ICD) and clinfo's view of it, into .ocl/ (ignored; carry it too):
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 -d .ocl pyopencl pytools platformdirs siphash24
#   (cd .ocl && apt-get download clinfo ocl-icd-libopencl1)
# Then, there:
#   bash benchmarks/device_check.sh    with a timeout of about 6 minutes
set -u
out=${OUT:-device-out}; mkdir -p "$out"
python3 -m pip install -q --no-index --no-deps --no-compile --upgrade --target /tmp/site .whl/*.whl \
  $(ls .ocl/*.whl 2>/dev/null) || exit 1
export PYTHONPATH=/tmp/site PATH=/tmp/site/bin:$PATH
# the image sets PYTHONDONTWRITEBYTECODE: compile once, as a normal pip install does, or every
# process start would compile gpuabst, attrs and pynvml from source (about 170 ms a start)
python3 -m compileall -q /tmp/site > /dev/null
report="$out/report.txt"   # everything but the two JSON files, in one file ($OUT brings back at most 8)
section() { printf '\n## %s\n' "$1" >> "$report"; }
t() { timeout "$@" >> "$report" 2>&1 || echo "(exit $?)" >> "$report"; }   # one section may not eat the rest
section "nvidia-smi"
t 30 nvidia-smi -L
t 30 nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap,pci.bus_id,ecc.mode.current,power.limit,clocks.max.sm --format=csv
timeout 60 nvidia-smi -q > "$out/nvidia-smi-q.txt" 2>&1; timeout 60 nvidia-smi -q -x > "$out/nvidia-smi-q.xml" 2>&1
section "gpuabst backends"; t 60 gpuabst backends
section "gpuabst capture"
t 120 gpuabst capture --backend nvml --note "device check" -o "$out/capture.json"
section "gpuabst show (errors)"; timeout 60 gpuabst show --json --backend nvml > /dev/null 2>> "$report"
for cmd in list health labels attributes inventory; do section "gpuabst $cmd"; t 60 gpuabst $cmd --backend nvml; done
section "hardware tests"; t 180 python3 -P -m pytest -q -m hardware -p no:cacheprovider tests/test_hardware.py
section "gpuabst against the floor, gpustat and nvitop on the real driver"; t 150 python3 benchmarks/bench_compare.py --live --repeat 200
section "recorded latency per call"; t 60 python3 benchmarks/bench_latency.py "$out/capture.json" --backend nvml
section "calls from several threads"; t 60 python3 benchmarks/nvml_overlap.py
section "nvmlDeviceGetFieldValues against single calls"; t 60 python3 benchmarks/nvml_fieldvalues.py
section "one-shot commands as processes"; t 150 python3 benchmarks/bench_processes.py --repeat 10
section "gpuabst serve over HTTP"; t 90 python3 benchmarks/bench_serve_http.py --requests 200
section "live soak: polls"; t 60 python3 benchmarks/bench_soak.py --live --polls 20000
section "live soak: scrapes"; t 60 python3 benchmarks/bench_soak.py --live --scrapes --polls 5000
if ls .ocl/*.deb > /dev/null 2>&1; then   # OpenCL through NVIDIA's ICD, and clinfo, on the same GPU
  section "every backend at once, and clinfo"
  for f in .ocl/*.deb; do dpkg -x "$f" /tmp/clx; done
  icd=$(ldconfig -p | grep -o '/[^ ]*libnvidia-opencl.so.1' | head -1)
  [ -z "$icd" ] && icd=$(find / -xdev -name 'libnvidia-opencl.so.1' 2>/dev/null | head -1)
  if [ -n "$icd" ]; then mkdir -p /tmp/icd; echo "$icd" > /tmp/icd/nvidia.icd; export OCL_ICD_VENDORS=/tmp/icd; fi
  LD_LIBRARY_PATH=/tmp/clx/usr/lib/x86_64-linux-gnu timeout 60 /tmp/clx/usr/bin/clinfo > "$out/clinfo.txt" 2>&1
  t 120 gpuabst capture --note "device check, every backend" -o "$out/capture-all.json"
  t 60 gpuabst list --all
  # the tests compare the live read with clinfo's: the carried clinfo, through the same ICD list
  PATH=/tmp/clx/usr/bin:$PATH LD_LIBRARY_PATH=/tmp/clx/usr/lib/x86_64-linux-gnu \
    t 120 python3 -P -m pytest -q -p no:cacheprovider tests/test_opencl_live.py
fi
section "under load"
python3 benchmarks/gpu_load.py --seconds 25 >> "$report" 2>&1 &
sleep 10   # PyTorch's import and CUDA's start, then a few seconds of products
t 60 gpuabst capture --backend nvml --note "device check, under load (bf16 matrix products)" -o "$out/capture-busy.json"
timeout 60 nvidia-smi -q > "$out/nvidia-smi-q-busy.txt" 2>&1
t 60 gpuabst health -v --backend nvml
wait
ls -l "$out"

"""The OpenCL backend against the real OpenCL runtime of this machine (PoCL's CPU device in CI).

These tests prove the backend reads the real runtime: they compare it with pyopencl read directly and
with the ``clinfo`` tool, capture and replay it, and check the real runtime's error codes. They are
skipped only where no OpenCL platform exists. PoCL writes a cache under $HOME: tests/conftest.py
points HOME, XDG_CACHE_HOME and POCL_CACHE_DIR at temporary folders before any of these runs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path
from typing import Any

import opencl_synthetic as S
import pytest
from gpuabst_opencl import binding, fake_pyopencl
from gpuabst_opencl import constants as C
from gpuabst_opencl.backend import OpenClBackend
from gpuabst_opencl.import_clinfo import parse as parse_clinfo

import gpuabst
from gpuabst.cli.main import main
from gpuabst.fixtures import format as fmt
from gpuabst.machine import Machine
from gpuabst.reading import Status
from gpuabst.serialize import to_dict


def _runtime() -> tuple[Any, list[Any]]:
    """pyopencl and the platforms of the real runtime; skips the test where there is none."""
    try:
        import pyopencl as cl
    except Exception as e:  # pyopencl absent or broken: no OpenCL platform reachable
        pytest.skip(f"no OpenCL platform: pyopencl cannot be imported ({type(e).__name__})")
    try:
        platforms = cl.get_platforms()
    except cl.Error as e:
        pytest.skip(f"no OpenCL platform on this machine ({e}): install pocl-opencl-icd")
    if not platforms:
        pytest.skip("no OpenCL platform on this machine: install pocl-opencl-icd")
    return cl, platforms


def _direct(cl: Any, platforms: list[Any]) -> list[dict[str, Any]]:
    """Every device as pyopencl itself reports it, in enumeration order."""
    out = []
    for p in platforms:
        for d in p.get_devices():
            t = int(d.type)
            kind = "gpu" if t & cl.device_type.GPU else "accelerator" if t & cl.device_type.ACCELERATOR else (
                "cpu" if t & cl.device_type.CPU else "custom")
            out.append({
                "platform_name": p.name.strip(), "platform_version": p.version.strip(),
                "name": d.name.strip(), "device_type": kind, "compute_units": d.max_compute_units,
                "clock": d.max_clock_frequency, "version": d.version.strip(), "driver": d.driver_version.strip(),
                "c_version": d.opencl_c_version.strip(), "extensions": d.extensions.split(),
                "local": d.local_mem_size, "global": d.global_mem_size, "alloc": d.max_mem_alloc_size,
                "wg": d.max_work_group_size, "ecc": bool(d.error_correction_support),
                "fp64": d.double_fp_config != 0, "vendor_id": d.vendor_id,
            })
    return out


def test_pocl_cache_goes_to_a_temporary_folder() -> None:
    _runtime()
    cache = os.environ["POCL_CACHE_DIR"]
    assert Path(cache).is_relative_to(Path(os.environ["HOME"])) and "pytest" in cache


def test_live_backend_reads_what_pyopencl_reads() -> None:
    cl, platforms = _runtime()
    want = _direct(cl, platforms)
    backend = OpenClBackend()
    try:
        probe = backend.open()
        devs = backend.devices()
    finally:
        backend.close()
    assert probe.available and probe.library_version == binding.library_version()
    assert len(devs) == len(want) > 0
    for d, w in zip(devs, want, strict=True):
        assert d.name.value == w["name"] and d.device_type == w["device_type"]
        assert d.platform_name.value == w["platform_name"] and d.platform_version.value == w["platform_version"]
        assert d.capabilities.compute_units.value == w["compute_units"]
        assert d.capabilities.max_graphics_clock_mhz.value == w["clock"]
        assert d.capabilities.opencl_version.value == w["version"]
        assert d.capabilities.opencl_c_version.value == w["c_version"]
        assert d.driver_version.value == w["driver"]
        assert d.capabilities.extensions.value == list(dict.fromkeys(w["extensions"]))
        assert d.capabilities.max_work_group_size.value == w["wg"]
        assert d.capabilities.ecc_enabled.value == w["ecc"]
        assert d.capabilities.fp64.value == w["fp64"]
        assert d.memory.local_memory_bytes.value == w["local"]
        # PoCL computes these from free memory when the runtime starts: same process, same value
        assert d.memory.total_bytes.value == w["global"] and d.memory.max_allocation_bytes.value == w["alloc"]
        assert d.sources == ["opencl"] and d.memory.total_bytes.call == "clGetDeviceInfo(CL_DEVICE_GLOBAL_MEM_SIZE)"
        if w["device_type"] == "cpu":
            assert d.pci.bus_id.status is Status.NOT_APPLICABLE
            assert d.pci.vendor_id.status is Status.NOT_APPLICABLE
            assert f"{w['vendor_id']:#06x}" in (d.pci.vendor_id.reason or "")


def test_live_vendor_queries_the_device_rejects_carry_the_runtimes_code() -> None:
    _runtime()
    devs = gpuabst.devices(backends=["opencl"])
    assert devs
    for d in devs:
        exts = set(d.capabilities.extensions.get([]))
        if C.EXT_NV_ATTRIBUTES not in exts:
            cc = d.capabilities.compute_capability
            assert cc.status is Status.NOT_APPLICABLE and "CL_INVALID_VALUE (-30)" in (cc.reason or ""), cc
        if C.EXT_AMD_ATTRIBUTES not in exts:
            assert d.board_product_name.status is Status.NOT_APPLICABLE


def test_real_pyopencl_errors_are_classified_recorded_and_replayed_alike() -> None:
    cl, platforms = _runtime()
    device = next((d for p in platforms for d in p.get_devices()
                   if C.EXT_NV_ATTRIBUTES not in d.extensions.split()), None)
    if device is None:
        pytest.skip("every device here is NVIDIA's: no device rejects PCI_BUS_ID_NV")
    with pytest.raises(cl.LogicError) as caught:
        device.get_info(cl.device_info.PCI_BUS_ID_NV)
    real = caught.value
    info = binding.classify(real)
    assert info is not None and info.status is Status.UNSUPPORTED
    assert info.reason == "CL_INVALID_VALUE (-30) from clGetDeviceInfo"
    encoded = binding.OpenClCodec().encode_error(real)
    assert encoded == {"code": -30, "name": "CL_INVALID_VALUE", "class": "LogicError", "routine": "clGetDeviceInfo"}
    with pytest.raises(fake_pyopencl.LogicError) as replayed:
        fake_pyopencl.raise_recorded(encoded)
    assert binding.classify(replayed.value) == info
    # the raw clGetDeviceInfo path (queries pyopencl cannot decode) raises the same real error class
    api = binding.PyOpenClApi(cl)
    if C.EXT_PCI_BUS_INFO_KHR not in device.extensions.split():
        with pytest.raises(cl.LogicError) as raw:
            api.device_info(device, "PCI_BUS_INFO_KHR")
        assert raw.value.code == -30


def test_live_capture_replays_to_the_same_devices(tmp_path: Path) -> None:
    _runtime()
    with Machine([], backends=["opencl"], capture=True) as m:
        live = m.snapshot()
        fixture = m.capture()
    assert fixture.kind == "capture" and fixture.provenance["scrubbed"] is True
    path = tmp_path / "live.json"
    fmt.save(fixture, path)
    replayed = S.snapshot_of([path], backends=["opencl"])
    assert to_dict(replayed.devices) == to_dict(live.devices)
    calls = fixture.backends["opencl"].calls
    assert calls[0]["fn"] == "platforms"
    assert any(c.get("error", {}).get("code") == -30 for c in calls if c["fn"] == "device_info") or all(
        C.EXT_NV_ATTRIBUTES in d.capabilities.extensions.get([]) for d in live.devices)


def test_live_matches_clinfo(tmp_path: Path) -> None:
    """Every device gpuabst reads live, field for field as clinfo prints it. clinfo may be linked to
    another ICD loader than pyopencl's (CUDA's libOpenCL finds NVIDIA's driver without an entry in
    /etc/OpenCL/vendors; the loader in pyopencl's wheel reads only that list): a platform only clinfo
    sees is out of gpuabst's reach there, and is named in a warning; gpuabst must see no platform
    clinfo does not, and they must share at least one."""
    _runtime()
    clinfo = shutil.which("clinfo")
    assert clinfo, "an OpenCL platform is installed but clinfo is not: apt-get install clinfo"
    out = subprocess.run([clinfo], capture_output=True, text=True, timeout=120, check=True).stdout
    fixture, layout = parse_clinfo(out, "clinfo (live)")
    assert layout == "oblomov" and "truncated" not in fixture.provenance
    from_clinfo = S.devices_of([fixture], backends=["opencl"])
    live = gpuabst.devices(backends=["opencl"])
    seen = {d.platform_name.value for d in live}
    printed = {d.platform_name.value for d in from_clinfo}
    assert seen <= printed and seen, (seen, printed)
    if printed - seen:
        warnings.warn(f"clinfo's ICD loader sees OpenCL platforms that pyopencl's does not: "
                      f"{sorted(map(str, printed - seen))} (register their ICDs in /etc/OpenCL/vendors)", stacklevel=1)
    from_clinfo = [d for d in from_clinfo if d.platform_name.value in seen]
    assert len(from_clinfo) == len(live)
    for a, b in zip(live, from_clinfo, strict=True):
        assert (a.name.value, a.device_type, a.vendor) == (b.name.value, b.device_type, b.vendor)
        assert a.platform_name.value == b.platform_name.value
        assert a.driver_version.value == b.driver_version.value
        assert a.capabilities.opencl_version.value == b.capabilities.opencl_version.value
        assert a.capabilities.opencl_c_version.value == b.capabilities.opencl_c_version.value
        assert a.capabilities.compute_units.value == b.capabilities.compute_units.value
        assert a.capabilities.max_graphics_clock_mhz.value == b.capabilities.max_graphics_clock_mhz.value
        assert a.capabilities.max_work_group_size.value == b.capabilities.max_work_group_size.value
        assert a.capabilities.extensions.value == b.capabilities.extensions.value
        assert a.capabilities.fp64.value == b.capabilities.fp64.value
        assert a.memory.local_memory_bytes.value == b.memory.local_memory_bytes.value
        assert a.pci.bus_id.get() == b.pci.bus_id.get()


def test_cli_lists_the_cpu_device_only_with_all(capsys: pytest.CaptureFixture[str]) -> None:
    cl, platforms = _runtime()
    cpus = [d.name.strip() for p in platforms for d in p.get_devices() if int(d.type) & cl.device_type.CPU]
    if not cpus:
        pytest.skip("this machine's OpenCL runtime has no CPU device")
    assert main(["list", "--backend", "opencl"]) == 0
    default = capsys.readouterr().out
    assert main(["list", "--all", "--backend", "opencl"]) == 0
    everything = capsys.readouterr().out
    for name in cpus:
        assert name not in default
        assert name in everything
    assert "[cpu]" in everything
    assert main(["list", "--json", "--backend", "opencl"]) == 0
    assert '"device_type": "cpu"' not in capsys.readouterr().out


def test_no_icd_registered_is_reported_by_the_real_runtime(tmp_path: Path) -> None:
    """With an empty vendor folder the real pyopencl answers -1001, and the backend says what to install."""
    _runtime()
    empty = tmp_path / "vendors"
    empty.mkdir()
    code = """
        import gpuabst
        (r,) = gpuabst.backends(backends=["opencl"])
        print(r.available, "|", r.reason, "|", r.install_hint)
    """
    env = dict(os.environ, OCL_ICD_VENDORS=str(empty), OPENCL_VENDOR_PATH=str(empty))
    r = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120,
                       env=env)
    assert r.returncode == 0, r.stderr
    if r.stdout.startswith("True"):
        pytest.skip("pyopencl's bundled loader found an ICD inside the wheel (pyopencl[pocl]): cannot empty it")
    assert r.stdout.startswith("False | no OpenCL platform found (CL_PLATFORM_NOT_FOUND_KHR)"), r.stdout
    assert "pocl-opencl-icd" in r.stdout

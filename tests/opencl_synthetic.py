"""Synthetic OpenCL fixtures for tests (labelled ``synthetic``): machines no real capture here has,
such as NVIDIA GPUs whose OpenCL PCI attributes match the synthetic NVML fixture's bus ids, an AMD GPU
with its topology, an Intel GPU with cl_khr_pci_bus_info, and platforms that fail."""

from __future__ import annotations

from typing import Any

from gpuabst.fixtures.builder import CallLog, FixtureBuilder, handle
from gpuabst.fixtures.format import Fixture
from gpuabst.machine import Machine
from gpuabst.model import BackendReport, Device, Snapshot

GIB = 1 << 30
H100_OPENCL_MEMORY = 85_031_714_816
"""What NVIDIA's OpenCL reports as CL_DEVICE_GLOBAL_MEM_SIZE for an 80 GB part: less than NVML's total."""
INVALID_VALUE = {"code": -30, "name": "CL_INVALID_VALUE", "class": "LogicError", "routine": "clGetDeviceInfo"}
NV_EXT = "cl_khr_fp64 cl_khr_icd cl_nv_device_attribute_query cl_khr_byte_addressable_store"


def _invalid(log: CallLog, h: dict[str, str], *queries: str) -> None:
    for q in queries:
        log.error("device_info", h, q, code=-30, name="CL_INVALID_VALUE")


def nvidia_gpu(log: CallLog, h: dict[str, str], index: int, *, name: str = "NVIDIA H100 80GB HBM3",
               memory: int = H100_OPENCL_MEMORY, bus: int | None = None) -> None:
    """An NVIDIA GPU as the NVIDIA OpenCL driver reports it; bus 0x18 + index like tests/synthetic.py."""
    values: dict[str, Any] = {
        "TYPE": 4, "EXTENSIONS": NV_EXT, "NAME": name, "VENDOR": "NVIDIA Corporation", "VENDOR_ID": 0x10DE,
        "PCI_BUS_ID_NV": 0x18 + index if bus is None else bus, "PCI_SLOT_ID_NV": 0, "PCI_DOMAIN_ID_NV": 0,
        "COMPUTE_CAPABILITY_MAJOR_NV": 9, "COMPUTE_CAPABILITY_MINOR_NV": 0, "DOUBLE_FP_CONFIG": 63,
        "HALF_FP_CONFIG": 0, "MAX_COMPUTE_UNITS": 132, "ERROR_CORRECTION_SUPPORT": 1, "MAX_CLOCK_FREQUENCY": 1980,
        "VERSION": "OpenCL 3.0 CUDA", "OPENCL_C_VERSION": "OpenCL C 1.2 ", "MAX_WORK_GROUP_SIZE": 1024,
        "HOST_UNIFIED_MEMORY": 0, "DEVICE_ENQUEUE_CAPABILITIES": 0, "GLOBAL_MEM_SIZE": memory,
        "MAX_MEM_ALLOC_SIZE": memory // 4, "LOCAL_MEM_SIZE": 49152, "DRIVER_VERSION": "590.48.01",
    }
    for q, v in values.items():
        log.result("device_info", h, q, value=v)
    _invalid(log, h, "PCI_BUS_INFO_KHR", "TOPOLOGY_AMD", "PCIE_ID_AMD", "BOARD_NAME_AMD")


def amd_gpu(log: CallLog, h: dict[str, str]) -> None:
    """An AMD Instinct MI300X through ROCm's OpenCL: topology 0000:c1:00.0 (bus 0xc1 > 127)."""
    values: dict[str, Any] = {
        "TYPE": 4, "EXTENSIONS": "cl_khr_fp64 cl_khr_fp16 cl_amd_device_attribute_query",
        "NAME": "gfx942:sramecc+:xnack-",
        "VENDOR": "Advanced Micro Devices, Inc.", "VENDOR_ID": 0x1002,
        "TOPOLOGY_AMD": {"type": 1, "bus": 0xC1, "device": 0, "function": 0}, "PCIE_ID_AMD": 0x74A1,
        "BOARD_NAME_AMD": "AMD Instinct MI300X", "DOUBLE_FP_CONFIG": 63, "HALF_FP_CONFIG": 63,
        "MAX_COMPUTE_UNITS": 304, "ERROR_CORRECTION_SUPPORT": 1, "MAX_CLOCK_FREQUENCY": 2100,
        "VERSION": "OpenCL 2.0 ", "OPENCL_C_VERSION": "OpenCL C 2.0 ", "MAX_WORK_GROUP_SIZE": 256,
        "HOST_UNIFIED_MEMORY": 0, "GLOBAL_MEM_SIZE": 192 * GIB, "MAX_MEM_ALLOC_SIZE": 163 * GIB,
        "LOCAL_MEM_SIZE": 65536, "DRIVER_VERSION": "3635.0 (HSA1.1,LC)",
    }
    for q, v in values.items():
        log.result("device_info", h, q, value=v)
    _invalid(log, h, "PCI_BUS_INFO_KHR", "PCI_BUS_ID_NV", "COMPUTE_CAPABILITY_MAJOR_NV", "DEVICE_ENQUEUE_CAPABILITIES")


def intel_gpu(log: CallLog, h: dict[str, str]) -> None:
    """An Intel Arc GPU through Intel's compute runtime, which gives cl_khr_pci_bus_info."""
    values: dict[str, Any] = {
        "TYPE": 4, "EXTENSIONS": "cl_khr_fp16 cl_khr_pci_bus_info cl_intel_subgroups",
        "NAME": "Intel(R) Arc(TM) A770 Graphics",
        "VENDOR": "Intel(R) Corporation", "VENDOR_ID": 0x8086,
        "PCI_BUS_INFO_KHR": {"pci_domain": 0, "pci_bus": 0x3B, "pci_device": 0, "pci_function": 0},
        "DOUBLE_FP_CONFIG": 0, "HALF_FP_CONFIG": 63, "MAX_COMPUTE_UNITS": 512, "ERROR_CORRECTION_SUPPORT": 0,
        "MAX_CLOCK_FREQUENCY": 2400, "VERSION": "OpenCL 3.0 NEO ", "OPENCL_C_VERSION": "OpenCL C 1.2 ",
        "MAX_WORK_GROUP_SIZE": 1024, "HOST_UNIFIED_MEMORY": 0, "DEVICE_ENQUEUE_CAPABILITIES": 0,
        "GLOBAL_MEM_SIZE": 16 * GIB - 2**28, "MAX_MEM_ALLOC_SIZE": 4 * GIB - 4096, "LOCAL_MEM_SIZE": 65536,
        "DRIVER_VERSION": "24.35.30872.22",
    }
    for q, v in values.items():
        log.result("device_info", h, q, value=v)
    _invalid(log, h, "PCIE_ID_AMD", "COMPUTE_CAPABILITY_MAJOR_NV", "BOARD_NAME_AMD")


def _builder(note: str) -> tuple[FixtureBuilder, CallLog]:
    b = FixtureBuilder({"kind": "synthetic", "tool": "tests/opencl_synthetic.py", "note": note})
    log = b.backend("opencl", library={"name": "pyopencl", "version": None}, driver_version=None)
    return b, log


def _platform(log: CallLog, p: dict[str, str], name: str, version: str) -> None:
    log.result("platform_info", p, "NAME", value=name)
    log.result("platform_info", p, "VERSION", value=version)


def nvidia_opencl_fixture(count: int = 2, *, extra_intel: bool = False) -> Fixture:
    """NVIDIA's OpenCL platform with ``count`` H100s at the bus ids of tests/synthetic.py's NVML fixture,
    and optionally a second platform with an Intel GPU that NVML cannot see."""
    b, log = _builder("hand-written test fixture, not from a real machine: the OpenCL view of the "
                      "synthetic NVML machine")
    plats = [handle("p0")] + ([handle("p1")] if extra_intel else [])
    log.result("platforms", value=plats)
    _platform(log, plats[0], "NVIDIA CUDA", "OpenCL 3.0 CUDA 13.1.80")
    devs = [handle(f"d{i}") for i in range(count)]
    log.result("platform_devices", plats[0], value=devs)
    for i, h in enumerate(devs):
        nvidia_gpu(log, h, i)
    if extra_intel:
        _platform(log, plats[1], "Intel(R) OpenCL Graphics", "OpenCL 3.0 ")
        log.result("platform_devices", plats[1], value=[handle("i0")])
        intel_gpu(log, handle("i0"))
    return b.build()


def mixed_fixture(*, failing_platform: bool = False, garbage: dict[str, int] | None = None) -> Fixture:
    """Three platforms: AMD (one MI300X), a platform whose device listing fails (or an Intel one),
    and NVIDIA (one H100)."""
    b, log = _builder("hand-written test fixture, not from a real machine")
    p = [handle("p0"), handle("p1"), handle("p2")]
    log.result("platforms", value=p)
    _platform(log, p[0], "AMD Accelerated Parallel Processing", "OpenCL 2.1 AMD-APP (3635.0)")
    log.result("platform_devices", p[0], value=[handle("a0")])
    amd_gpu(log, handle("a0"))
    _platform(log, p[1], "Intel(R) OpenCL Graphics", "OpenCL 3.0 ")
    if failing_platform:
        log.error("platform_devices", p[1], code=-5, name="CL_OUT_OF_RESOURCES")
    else:
        log.result("platform_devices", p[1], value=[handle("i0")])
        intel_gpu(log, handle("i0"))
    _platform(log, p[2], "NVIDIA CUDA", "OpenCL 3.0 CUDA 13.1.80")
    log.result("platform_devices", p[2], value=[handle("n0")])
    nvidia_gpu(log, handle("n0"), 0)
    return b.build()


def no_platform_fixture() -> Fixture:
    """A machine with pyopencl but no OpenCL driver: clGetPlatformIDs answers -1001."""
    b, log = _builder("hand-written test fixture: what pyopencl raises with no ICD registered")
    log.error("platforms", code=-1001, name="CL_PLATFORM_NOT_FOUND_KHR")
    return b.build()


def snapshot_of(fixtures: list[Any], **kwargs: Any) -> Snapshot:
    """gpuabst.snapshot over fixture paths or already-built Fixture objects (Machine takes both)."""
    with Machine(fixtures, **kwargs) as m:
        return m.snapshot()


def devices_of(fixtures: list[Any], **kwargs: Any) -> list[Device]:
    return snapshot_of(fixtures, **kwargs).devices


def backends_of(fixtures: list[Any], **kwargs: Any) -> list[BackendReport]:
    with Machine(fixtures, **kwargs) as m:
        return m.backend_reports()


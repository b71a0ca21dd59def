"""Synthetic NVML fixtures for tests: every call the backend makes, with plausible H100 values.

These are labelled ``synthetic`` in their provenance: they exercise code paths (faults, many GPUs,
MIG) that no real capture here covers. Expected values in tests come from the numbers below.
"""

from __future__ import annotations

from typing import Any

from gpuabst.fixtures.builder import CallLog, FixtureBuilder, handle, struct
from gpuabst.fixtures.format import Fixture

GIB = 1 << 30


def synthetic_uuid(prefix: str, n: int) -> str:
    """A made-up UUID in NVIDIA's form (synthetic fixtures only)."""
    return f"{prefix}-7e57da7a-{n:04x}-4abc-9def-{n:012x}"


def nvml_gpu(log: CallLog, index: int, *, name: str = "NVIDIA H100 80GB HBM3", mig: bool = False,
             ecc_dbe: int = 0, pending: bool = False, lost: bool = False) -> None:
    h = handle(f"h{index}")
    log.result("nvmlDeviceGetHandleByIndex", index, value=h)
    bus = f"00000000:{0x18 + index:02X}:00.0"
    values: dict[str, Any] = {
        "nvmlDeviceGetPciInfo": struct("nvmlPciInfo_t", busId=bus, pciDeviceId=0x233010DE,
                                       pciSubSystemId=0x16C110DE, domain=0, bus=0x18 + index, device=0),
        "nvmlDeviceGetEccMode": [1, 1],
        "nvmlDeviceGetMigMode": [1 if mig else 0, 1 if mig else 0],
        "nvmlDeviceGetPowerManagementLimitConstraints": [200000, 700000],
        "nvmlDeviceGetAttributes": struct("c_nvmlDeviceAttributes", multiprocessorCount=132),
        "nvmlDeviceGetCudaComputeCapability": [9, 0],
        "nvmlDeviceGetMaxPcieLinkGeneration": 5,
        "nvmlDeviceGetMaxPcieLinkWidth": 16,
        "nvmlDeviceGetNumaNodeId": 0,
        "nvmlDeviceGetComputeMode": 0,
        "nvmlDeviceGetPersistenceMode": 1,
        "nvmlDeviceGetPowerManagementLimit": 700000,
        "nvmlDeviceGetPowerManagementDefaultLimit": 700000,
        "nvmlDeviceGetBAR1MemoryInfo": struct("c_nvmlBAR1Memory_t", bar1Total=128 * GIB, bar1Free=128 * GIB - 2**21,
                                              bar1Used=2**21),
        "nvmlDeviceGetName": name,
        "nvmlDeviceGetUUID": synthetic_uuid("GPU", index),
        "nvmlDeviceGetSerial": f"{1650000000001 + index}",
        "nvmlDeviceGetBoardPartNumber": "692-2G520-0200-000",
        "nvmlDeviceGetBrand": 2,
        "nvmlDeviceGetArchitecture": 9,
        "nvmlDeviceGetVbiosVersion": "96.00.30.00.01",
        "nvmlDeviceGetUtilizationRates": struct("c_nvmlUtilization_t", gpu=0, memory=0),
        "nvmlDeviceGetCurrentClocksEventReasons": 1,
        "nvmlDeviceGetRemappedRows": [0, 0, 0, 0],
        "nvmlDeviceGetCurrPcieLinkGeneration": 5,
        "nvmlDeviceGetCurrPcieLinkWidth": 16,
        "nvmlDeviceGetPowerUsage": 71000,
        "nvmlDeviceGetEnforcedPowerLimit": 700000,
        "nvmlDeviceGetPerformanceState": 0,
        "nvmlDeviceGetRetiredPagesPendingStatus": 1 if pending else 0,
    }
    for fn, v in values.items():
        log.result(fn, h, value=v)
    for thr, v in ((1, 87), (0, 92), (3, 85)):
        log.result("nvmlDeviceGetTemperatureThreshold", h, thr, value=v)
    for clk, v in ((0, 1980), (1, 1980), (2, 2619)):
        log.result("nvmlDeviceGetMaxClockInfo", h, clk, value=v)
    for clk, v in ((0, 345), (1, 345), (2, 2619)):
        log.result("nvmlDeviceGetClockInfo", h, clk, value=v)
    for link in range(18):
        log.result("nvmlDeviceGetNvLinkState", h, link, value=1)
    log.result("nvmlDeviceGetMemoryInfo", h, 0x02000028,
               value=struct("c_nvmlMemory_v2_t", version=0x02000028, total=80 * GIB, reserved=512 * 2**20,
                            free=79 * GIB, used=GIB - 512 * 2**20))
    log.result("nvmlDeviceGetTemperatureV", h, 0, value=33)
    log.error("nvmlDeviceGetFanSpeed", h, code=3, name="NVML_ERROR_NOT_SUPPORTED")
    for et, ct, v in ((0, 0, 0), (1, 0, ecc_dbe), (0, 1, 3), (1, 1, ecc_dbe)):
        log.result("nvmlDeviceGetTotalEccErrors", h, et, ct, value=v)
    log.result("nvmlDeviceGetRetiredPages", h, 0, value=[])
    log.result("nvmlDeviceGetRetiredPages", h, 1, value=[4096] * ecc_dbe)
    if mig:
        log.result("nvmlDeviceGetMaxMigDeviceCount", h, value=7)
        for slot in range(7):
            if slot >= 2:
                log.error("nvmlDeviceGetMigDeviceHandleByIndex", h, slot, code=6, name="NVML_ERROR_NOT_FOUND")
                continue
            mh = handle(f"m{index}.{slot}")
            log.result("nvmlDeviceGetMigDeviceHandleByIndex", h, slot, value=mh)
            log.result("nvmlDeviceGetName", mh, value=f"{name} MIG 3g.40gb")
            log.result("nvmlDeviceGetUUID", mh, value=synthetic_uuid("MIG", index * 16 + slot))
            log.result("nvmlDeviceGetGpuInstanceId", mh, value=1 + slot)
            log.result("nvmlDeviceGetComputeInstanceId", mh, value=0)
            log.result("nvmlDeviceGetMemoryInfo", mh, value=struct("c_nvmlMemory_t", total=40 * GIB, free=40 * GIB,
                                                                   used=0))
            log.result("nvmlDeviceGetAttributes", mh, value=struct("c_nvmlDeviceAttributes", multiprocessorCount=60))


def nvml_fixture(count: int = 2, **kwargs: Any) -> Fixture:
    """A synthetic NVML machine of ``count`` H100s (labelled synthetic)."""
    b = FixtureBuilder({"kind": "synthetic", "tool": "tests/synthetic.py",
                        "note": "hand-written test fixture, not from a real machine"})
    log = b.backend("nvml", library={"name": "nvidia-ml-py", "version": None}, driver_version="590.48.01")
    log.result("nvmlInit", value=None)
    log.result("nvmlSystemGetDriverVersion", value="590.48.01")
    log.result("nvmlSystemGetCudaDriverVersion_v2", value=13010)
    log.result("nvmlDeviceGetCount", value=count)
    for i in range(count):
        nvml_gpu(log, i, **kwargs)
    return b.build()

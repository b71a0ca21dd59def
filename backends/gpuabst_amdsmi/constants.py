"""AMD SMI constants this backend uses, with the values of amdsmi.h (amdsmi_wrapper.py).

Kept here so that replay needs no ``libamd_smi.so`` (without it ``import amdsmi`` fails), and
importers write the same arguments the backend passes. The enum classes carry the real names so a
fake module can offer ``AmdSmiTemperatureType.EDGE`` just as the real one does.
"""

from __future__ import annotations

import enum

STATUS_NAMES: dict[int, str] = {
    0: "SUCCESS", 1: "INVAL", 2: "NOT_SUPPORTED", 3: "NOT_YET_IMPLEMENTED", 4: "FAIL_LOAD_MODULE",
    5: "FAIL_LOAD_SYMBOL", 6: "DRM_ERROR", 7: "API_FAILED", 8: "TIMEOUT", 9: "RETRY", 10: "NO_PERM",
    11: "INTERRUPT", 12: "IO", 13: "ADDRESS_FAULT", 14: "FILE_ERROR", 15: "OUT_OF_RESOURCES",
    16: "INTERNAL_EXCEPTION", 17: "INPUT_OUT_OF_BOUNDS", 18: "INIT_ERROR", 19: "REFCOUNT_OVERFLOW",
    20: "DIRECTORY_NOT_FOUND", 30: "BUSY", 31: "NOT_FOUND", 32: "NOT_INIT", 33: "NO_SLOT",
    34: "DRIVER_NOT_LOADED", 39: "MORE_DATA", 40: "NO_DATA", 41: "INSUFFICIENT_SIZE",
    42: "UNEXPECTED_SIZE", 43: "UNEXPECTED_DATA", 44: "NON_AMD_CPU", 45: "NO_ENERGY_DRV",
    46: "NO_MSR_DRV", 47: "NO_HSMP_DRV", 48: "NO_HSMP_SUP", 49: "NO_HSMP_MSG_SUP", 50: "HSMP_TIMEOUT",
    51: "NO_DRV", 52: "FILE_NOT_FOUND", 53: "ARG_PTR_NULL", 54: "AMDGPU_RESTART_ERR",
    55: "SETTING_UNAVAILABLE", 56: "CORRUPTED_EEPROM", 4294967294: "MAP_ERROR", 4294967295: "UNKNOWN_ERROR",
}
STATUS_CODES: dict[str, int] = {v: k for k, v in STATUS_NAMES.items()}

INVAL = 1
NOT_SUPPORTED = 2
NOT_YET_IMPLEMENTED = 3
FAIL_LOAD_MODULE = 4
FAIL_LOAD_SYMBOL = 5
TIMEOUT = 8
RETRY = 9
NO_PERM = 10
BUSY = 30
NOT_FOUND = 31
NOT_INIT = 32
DRIVER_NOT_LOADED = 34
NO_DATA = 40
FILE_NOT_FOUND = 52
AMDGPU_RESTART_ERR = 54
UNKNOWN_ERROR = 4294967295

MAX_FAN_SPEED = 255
"""AMDSMI_MAX_FAN_SPEED: amdsmi_get_gpu_fan_speed answers relative to this (amdsmi.h)."""

NA = "N/A"
"""What amdsmi's Python layer puts in place of a value the hardware does not give."""

UNSUPPORTED_SENTINELS = frozenset({0xFFFF, 0xFFFFFFFF, 0xFFFFFFFFFFFFFFFF})
"""Raw 'not supported' fillers (UINT16/32/64_MAX) some amdsmi releases pass through unconverted."""


class AmdSmiInitFlags(enum.IntEnum):
    INIT_ALL_PROCESSORS = 0xFFFFFFFF
    INIT_AMD_CPUS = 1
    INIT_AMD_GPUS = 2
    INIT_AMD_APUS = 3
    INIT_NON_AMD_CPUS = 4
    INIT_NON_AMD_GPUS = 8


class AmdSmiTemperatureType(enum.IntEnum):
    EDGE = 0
    HOTSPOT = 1
    JUNCTION = 1
    VRAM = 2
    HBM_0 = 3
    HBM_1 = 4
    HBM_2 = 5
    HBM_3 = 6
    PLX = 7


class AmdSmiTemperatureMetric(enum.IntEnum):
    CURRENT = 0
    MAX = 1
    MIN = 2
    MAX_HYST = 3
    MIN_HYST = 4
    CRITICAL = 5
    CRITICAL_HYST = 6
    EMERGENCY = 7
    EMERGENCY_HYST = 8


class AmdSmiMemoryType(enum.IntEnum):
    VRAM = 0
    VIS_VRAM = 1
    GTT = 2


class AmdSmiClkType(enum.IntEnum):
    SYS = 0
    GFX = 0
    DF = 1
    DCEF = 2
    SOC = 3
    MEM = 4
    PCIE = 5
    VCLK0 = 6
    VCLK1 = 7
    DCLK0 = 8
    DCLK1 = 9


class AmdSmiGpuBlock(enum.IntEnum):
    INVALID = 0
    UMC = 1
    SDMA = 2
    GFX = 4
    MMHUB = 8
    ATHUB = 16
    PCIE_BIF = 32
    HDP = 64
    XGMI_WAFL = 128
    DF = 256
    SMN = 512
    SEM = 1024
    MP0 = 2048
    MP1 = 4096
    FUSE = 8192
    MCA = 16384
    VCN = 32768
    JPEG = 65536
    IH = 131072
    MPIO = 262144


class AmdSmiLinkType(enum.IntEnum):
    AMDSMI_LINK_TYPE_INTERNAL = 0
    AMDSMI_LINK_TYPE_PCIE = 1
    AMDSMI_LINK_TYPE_XGMI = 2
    AMDSMI_LINK_TYPE_NOT_APPLICABLE = 3
    AMDSMI_LINK_TYPE_UNKNOWN = 4


class AmdSmiMemoryPageStatus(enum.IntEnum):
    RESERVED = 0
    PENDING = 1
    UNRESERVABLE = 2


ENUMS: dict[str, type[enum.IntEnum]] = {
    cls.__name__: cls for cls in (AmdSmiInitFlags, AmdSmiTemperatureType, AmdSmiTemperatureMetric,
                                  AmdSmiMemoryType, AmdSmiClkType, AmdSmiGpuBlock, AmdSmiLinkType,
                                  AmdSmiMemoryPageStatus)
}
"""The amdsmi enum classes the backend passes as arguments, offered by the fake module too."""

PCIE_GENERATION_BY_MTS: dict[int, int] = {2500: 1, 5000: 2, 8000: 3, 16000: 4, 32000: 5, 64000: 6}
"""PCIe generation from the link rate amdsmi_get_pcie_info gives in MT/s."""

COMPUTE_PARTITION_MODES = ("SPX", "DPX", "TPX", "QPX", "CPX")
MEMORY_PARTITION_MODES = ("NPS1", "NPS2", "NPS4", "NPS8")

THROTTLER_BITS: dict[int, str] = {
    0: "ppt0", 1: "ppt1", 2: "ppt2", 3: "ppt3", 4: "spl", 5: "fppt", 6: "sppt", 7: "sppt_apu",
    16: "tdc_gfx", 17: "tdc_soc", 18: "tdc_mem", 19: "tdc_vdd", 20: "tdc_cvip", 21: "edc_cpu",
    22: "edc_gfx", 23: "apcc",
    32: "temp_gpu", 33: "temp_core", 34: "temp_mem", 35: "temp_edge", 36: "temp_hotspot", 37: "temp_soc",
    38: "temp_vr_gfx", 39: "temp_vr_soc", 40: "temp_vr_mem0", 41: "temp_vr_mem1", 42: "temp_liquid0",
    43: "temp_liquid1", 44: "vrhot0", 45: "vrhot1",
    56: "prochot_cpu", 57: "prochot_gfx", 62: "ppm", 63: "fit",
}
"""The amdgpu driver's independent throttler bits (SMU_THROTTLER_*_BIT, kgd_pp_interface.h), which
older amdsmi releases pass through as ``indep_throttle_status``."""


def status_name(code: int) -> str:
    """``AMDSMI_STATUS_NOT_SUPPORTED`` for 2."""
    return "AMDSMI_STATUS_" + STATUS_NAMES.get(code, f"CODE_{code}")


def decode_throttler_bits(mask: int) -> list[str]:
    """Names of the throttler bits set in ``mask``; unknown bits as hex."""
    names = [name for bit, name in THROTTLER_BITS.items() if mask & (1 << bit)]
    known = sum(1 << bit for bit in THROTTLER_BITS)
    if mask & ~known:
        names.append(f"unknown_0x{mask & ~known:x}")
    return names


def ecc_block_names(mask: int) -> list[str]:
    """Names of the GPU blocks whose bit is set in amdsmi_get_gpu_ecc_enabled's mask (``UMC``, ``GFX``)."""
    names = [b.name for b in AmdSmiGpuBlock if b.value and mask & b.value]
    known = sum(b.value for b in AmdSmiGpuBlock)
    if mask & ~known:
        names.append(f"unknown_0x{mask & ~known:x}")
    return names

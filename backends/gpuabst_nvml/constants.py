"""NVML constants this backend uses, with the values of nvml.h (stable across driver releases).

Kept here so that replay needs no nvidia-ml-py, and importers write the same arguments the backend
passes.
"""

from __future__ import annotations

import functools

ERROR_NAMES: dict[int, str] = {
    1: "UNINITIALIZED", 2: "INVALID_ARGUMENT", 3: "NOT_SUPPORTED", 4: "NO_PERMISSION",
    5: "ALREADY_INITIALIZED", 6: "NOT_FOUND", 7: "INSUFFICIENT_SIZE", 8: "INSUFFICIENT_POWER",
    9: "DRIVER_NOT_LOADED", 10: "TIMEOUT", 11: "IRQ_ISSUE", 12: "LIBRARY_NOT_FOUND",
    13: "FUNCTION_NOT_FOUND", 14: "CORRUPTED_INFOROM", 15: "GPU_IS_LOST", 16: "RESET_REQUIRED",
    17: "OPERATING_SYSTEM", 18: "LIB_RM_VERSION_MISMATCH", 19: "IN_USE", 20: "MEMORY", 21: "NO_DATA",
    22: "VGPU_ECC_NOT_SUPPORTED", 23: "INSUFFICIENT_RESOURCES", 24: "FREQ_NOT_SUPPORTED",
    25: "ARGUMENT_VERSION_MISMATCH", 26: "DEPRECATED", 27: "NOT_READY", 28: "GPU_NOT_FOUND",
    29: "INVALID_STATE", 30: "RESET_TYPE_NOT_SUPPORTED", 999: "UNKNOWN",
}
ERROR_CODES: dict[str, int] = {v: k for k, v in ERROR_NAMES.items()}

INVALID_ARGUMENT = 2
NOT_SUPPORTED = 3
NO_PERMISSION = 4
NOT_FOUND = 6
DRIVER_NOT_LOADED = 9
TIMEOUT = 10
LIBRARY_NOT_FOUND = 12
FUNCTION_NOT_FOUND = 13
GPU_IS_LOST = 15
RESET_REQUIRED = 16

FEATURE_ENABLED = 1

TEMPERATURE_GPU = 0
THRESHOLD_SHUTDOWN = 0
THRESHOLD_SLOWDOWN = 1
THRESHOLD_MEM_MAX = 2
THRESHOLD_GPU_MAX = 3

CLOCK_GRAPHICS = 0
CLOCK_SM = 1
CLOCK_MEM = 2

MEMORY_ERROR_CORRECTED = 0
MEMORY_ERROR_UNCORRECTED = 1
VOLATILE_ECC = 0
AGGREGATE_ECC = 1

RETIREMENT_CAUSE_SINGLE_BIT = 0
RETIREMENT_CAUSE_DOUBLE_BIT = 1

NVLINK_MAX_LINKS = 18
"""Links probed: 18 is the most any shipping GPU has (H100/H200/B200 SXM)."""

MEMORY_V2 = 0x02000028
"""nvmlMemory_v2: asks nvmlDeviceGetMemoryInfo for the v2 structure with ``reserved``."""

BRANDS: dict[int, str] = {
    0: "unknown", 1: "Quadro", 2: "Tesla", 3: "NVS", 4: "GRID", 5: "GeForce", 6: "Titan",
    7: "NVIDIA Virtual Applications", 8: "NVIDIA Virtual PC", 9: "NVIDIA Virtual Compute Server",
    10: "NVIDIA RTX Virtual Workstation", 11: "NVIDIA Cloud Gaming", 12: "Quadro RTX", 13: "NVIDIA RTX",
    14: "NVIDIA", 15: "GeForce RTX", 16: "Titan RTX", 18: "NVIDIA RTX Virtual Game Dev", 19: "NVIDIA NPU",
}

ARCHITECTURES: dict[int, str] = {
    2: "Kepler", 3: "Maxwell", 4: "Pascal", 5: "Volta", 6: "Turing", 7: "Ampere", 8: "Ada Lovelace",
    9: "Hopper", 10: "Blackwell", 13: "Rubin",
}

COMPUTE_MODES: dict[int, str] = {0: "default", 1: "exclusive_thread", 2: "prohibited", 3: "exclusive_process"}

CLOCK_EVENT_REASONS: dict[int, str] = {
    0x1: "gpu_idle",
    0x2: "applications_clocks_setting",
    0x4: "sw_power_cap",
    0x8: "hw_slowdown",
    0x10: "sync_boost",
    0x20: "sw_thermal_slowdown",
    0x40: "hw_thermal_slowdown",
    0x80: "hw_power_brake_slowdown",
    0x100: "display_clock_setting",
}


def error_name(code: int) -> str:
    """``NVML_ERROR_NOT_SUPPORTED`` for 3."""
    return "NVML_ERROR_" + ERROR_NAMES.get(code, f"CODE_{code}")


def decode_clock_event_reasons(mask: int) -> list[str]:
    """Names of the bits set in a clocks-event (throttle) reason mask, unknown bits as hex (a new list
    each time: the decoding is kept per mask, since a GPU reports the same few masks on every poll)."""
    return list(_clock_event_names(mask))


@functools.lru_cache(maxsize=256)
def _clock_event_names(mask: int) -> tuple[str, ...]:
    names = [name for bit, name in CLOCK_EVENT_REASONS.items() if mask & bit]
    unknown = mask & ~sum(CLOCK_EVENT_REASONS)
    if unknown:
        names.append(f"unknown_0x{unknown:x}")
    return tuple(names)

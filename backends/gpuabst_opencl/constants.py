"""OpenCL constants this backend uses, with the values of the Khronos headers (CL/cl.h, CL/cl_ext.h).

Kept here so that replay needs no pyopencl (and no numpy), and the clinfo importer writes the same
query names and values the backend reads.
"""

from __future__ import annotations

ERROR_NAMES: dict[int, str] = {
    0: "SUCCESS", -1: "DEVICE_NOT_FOUND", -2: "DEVICE_NOT_AVAILABLE", -3: "COMPILER_NOT_AVAILABLE",
    -4: "MEM_OBJECT_ALLOCATION_FAILURE", -5: "OUT_OF_RESOURCES", -6: "OUT_OF_HOST_MEMORY",
    -7: "PROFILING_INFO_NOT_AVAILABLE", -8: "MEM_COPY_OVERLAP", -9: "IMAGE_FORMAT_MISMATCH",
    -10: "IMAGE_FORMAT_NOT_SUPPORTED", -11: "BUILD_PROGRAM_FAILURE", -12: "MAP_FAILURE",
    -13: "MISALIGNED_SUB_BUFFER_OFFSET", -14: "EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST",
    -15: "COMPILE_PROGRAM_FAILURE", -16: "LINKER_NOT_AVAILABLE", -17: "LINK_PROGRAM_FAILURE",
    -18: "DEVICE_PARTITION_FAILED", -19: "KERNEL_ARG_INFO_NOT_AVAILABLE", -30: "INVALID_VALUE",
    -31: "INVALID_DEVICE_TYPE", -32: "INVALID_PLATFORM", -33: "INVALID_DEVICE", -34: "INVALID_CONTEXT",
    -35: "INVALID_QUEUE_PROPERTIES", -36: "INVALID_COMMAND_QUEUE", -37: "INVALID_HOST_PTR",
    -38: "INVALID_MEM_OBJECT", -39: "INVALID_IMAGE_FORMAT_DESCRIPTOR", -40: "INVALID_IMAGE_SIZE",
    -41: "INVALID_SAMPLER", -42: "INVALID_BINARY", -43: "INVALID_BUILD_OPTIONS", -44: "INVALID_PROGRAM",
    -45: "INVALID_PROGRAM_EXECUTABLE", -46: "INVALID_KERNEL_NAME", -47: "INVALID_KERNEL_DEFINITION",
    -48: "INVALID_KERNEL", -49: "INVALID_ARG_INDEX", -50: "INVALID_ARG_VALUE", -51: "INVALID_ARG_SIZE",
    -52: "INVALID_KERNEL_ARGS", -53: "INVALID_WORK_DIMENSION", -54: "INVALID_WORK_GROUP_SIZE",
    -55: "INVALID_WORK_ITEM_SIZE", -56: "INVALID_GLOBAL_OFFSET", -57: "INVALID_EVENT_WAIT_LIST",
    -58: "INVALID_EVENT", -59: "INVALID_OPERATION", -60: "INVALID_GL_OBJECT", -61: "INVALID_BUFFER_SIZE",
    -62: "INVALID_MIP_LEVEL", -63: "INVALID_GLOBAL_WORK_SIZE", -65: "INVALID_IMAGE_DESCRIPTOR",
    -66: "INVALID_COMPILER_OPTIONS", -67: "INVALID_LINKER_OPTIONS", -68: "INVALID_DEVICE_PARTITION_COUNT",
    -69: "INVALID_PIPE_SIZE", -70: "INVALID_DEVICE_QUEUE", -71: "INVALID_SPEC_ID",
    -72: "MAX_SIZE_RESTRICTION_EXCEEDED", -1001: "PLATFORM_NOT_FOUND_KHR",
}
ERROR_CODES: dict[str, int] = {v: k for k, v in ERROR_NAMES.items()}

DEVICE_NOT_FOUND = -1
OUT_OF_RESOURCES = -5
OUT_OF_HOST_MEMORY = -6
MEM_OBJECT_ALLOCATION_FAILURE = -4
INVALID_VALUE = -30
INVALID_PLATFORM = -32
INVALID_DEVICE = -33
PLATFORM_NOT_FOUND_KHR = -1001

MEMORY_ERRORS = frozenset({MEM_OBJECT_ALLOCATION_FAILURE, OUT_OF_RESOURCES, OUT_OF_HOST_MEMORY})
"""Codes pyopencl raises as ``pyopencl.MemoryError``; other codes at or below INVALID_VALUE are
``LogicError``, the rest ``RuntimeError`` (pyopencl's own rule)."""

# cl_device_type
DEVICE_TYPE_BITS: dict[int, str] = {1: "default", 2: "cpu", 4: "gpu", 8: "accelerator", 16: "custom"}
DEVICE_TYPE_CODES: dict[str, int] = {v: k for k, v in DEVICE_TYPE_BITS.items()}

# cl_device_fp_config
FP_CONFIG_BITS: dict[int, str] = {
    1: "denorm", 2: "inf_nan", 4: "round_to_nearest", 8: "round_to_zero", 16: "round_to_inf", 32: "fma",
    64: "soft_float", 128: "correctly_rounded_divide_sqrt",
}

# cl_device_device_enqueue_capabilities (OpenCL 3.0)
DEVICE_ENQUEUE_BITS: dict[int, str] = {1: "queue_supported", 2: "queue_replaceable_default"}

# Vendor and extension queries that pyopencl's Device.get_info does not decode: read with a raw
# clGetDeviceInfo call in the binding. Values from CL/cl_ext.h.
PCI_BUS_INFO_KHR = 0x410F
"""cl_khr_pci_bus_info: struct {cl_uint pci_domain, pci_bus, pci_device, pci_function}."""
TOPOLOGY_AMD = 0x4037
"""cl_amd_device_attribute_query: union cl_device_topology_amd (type 1 = PCIe; bus, device, function
in its last three bytes)."""
PCIE_ID_AMD = 0x4034
"""cl_amd_device_attribute_query: the PCI device id (cl_uint)."""
TOPOLOGY_TYPE_PCIE_AMD = 1

RAW_DEVICE_QUERIES: dict[str, int] = {
    "PCI_BUS_INFO_KHR": PCI_BUS_INFO_KHR, "TOPOLOGY_AMD": TOPOLOGY_AMD, "PCIE_ID_AMD": PCIE_ID_AMD,
}

EXT_PCI_BUS_INFO_KHR = "cl_khr_pci_bus_info"
EXT_NV_ATTRIBUTES = "cl_nv_device_attribute_query"
EXT_AMD_ATTRIBUTES = "cl_amd_device_attribute_query"

PCI_VENDOR_IDS: dict[int, str] = {0x10DE: "nvidia", 0x1002: "amd", 0x1022: "amd", 0x8086: "intel",
                                  0x106B: "apple", 0x13B5: "arm", 0x5143: "qualcomm", 0x1010: "imagination"}


def error_name(code: int) -> str:
    """``CL_INVALID_VALUE`` for -30."""
    return "CL_" + ERROR_NAMES.get(code, f"ERROR_{code}")


def decode_bits(value: int, known: dict[int, str], what: str) -> list[str]:
    """Names of the bits set in an OpenCL bitfield; raises ValueError naming any bit the spec does not
    define (some runtimes leave garbage in the upper bits, PoCL's DEVICE_ENQUEUE_CAPABILITIES for one)."""
    mask = int(value)
    if mask < 0:
        raise ValueError(f"{what} is negative ({mask})")
    unknown = mask & ~sum(known)
    if unknown:
        raise ValueError(f"{what} = 0x{mask:x} has bits the OpenCL specification does not define "
                         f"(0x{unknown:x}): the runtime's answer cannot be trusted")
    return [name for bit, name in known.items() if mask & bit]


def error_class(code: int) -> str:
    """The pyopencl exception class raised for ``code``: MemoryError, LogicError or RuntimeError."""
    if code in MEMORY_ERRORS:
        return "MemoryError"
    return "LogicError" if code <= INVALID_VALUE else "RuntimeError"

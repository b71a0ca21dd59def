"""OpenClBackend: every OpenCL platform and device, through pyopencl.

Each value's Reading names its OpenCL query (``clGetDeviceInfo(CL_DEVICE_GLOBAL_MEM_SIZE)``); the
``clinfo`` line that shows the same value is listed in docs/backends/opencl.md. OpenCL reports static
facts only (no temperatures, power or utilisation), so a poll re-reads nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, ClassVar

import attrs

from gpuabst.backend import Backend, CallFailed, ErrorInfo, Probe
from gpuabst.fixtures.codec import Codec
from gpuabst.fixtures.tape import Tape
from gpuabst.model import Capabilities, Device, MemoryInfo, PciInfo
from gpuabst.pci import hex_id
from gpuabst.reading import Reading, Status, missing
from gpuabst_opencl import binding, fake_pyopencl
from gpuabst_opencl import constants as C


def _text(v: Any) -> str:
    s = v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
    return s.strip().rstrip("\x00").strip()


def _cl_bool(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    n = int(v)
    if n not in (0, 1):
        raise ValueError(f"a cl_bool must be 0 or 1, got {n}")
    return n == 1


def _nonneg(v: Any) -> int:
    n = int(v)
    if n < 0:
        raise ValueError(f"negative size {n}")
    return n


def _extensions(v: Any) -> list[str]:
    seen: dict[str, None] = {}
    for ext in str(v).split():
        seen.setdefault(ext, None)
    return list(seen)


def _enqueue_supported(v: Any) -> bool:
    names = C.decode_bits(int(v), C.DEVICE_ENQUEUE_BITS, "CL_DEVICE_DEVICE_ENQUEUE_CAPABILITIES")
    return "queue_supported" in names


def amd_topology_bus_id(t: Any) -> str:
    """``0000:c1:00.0`` from a cl_device_topology_amd (domain 0000: AMD's topology has none); raises
    ValueError for a topology that is not PCIe."""
    if int(t.get("type", 0)) != C.TOPOLOGY_TYPE_PCIE_AMD:
        raise ValueError(f"CL_DEVICE_TOPOLOGY_AMD is not a PCIe topology (type {t.get('type')})")
    return f"0000:{int(t['bus']) & 0xFF:02x}:{int(t['device']) & 0xFF:02x}.{int(t['function']) & 0x7}"


def device_type_of(value: Any) -> str:
    """``gpu`` / ``cpu`` / ``accelerator`` / ``custom`` from CL_DEVICE_TYPE; raises ValueError on
    bits the specification does not define."""
    names = C.decode_bits(int(value), C.DEVICE_TYPE_BITS, "CL_DEVICE_TYPE")
    for kind in ("gpu", "accelerator", "cpu", "custom"):
        if kind in names:
            return kind
    raise ValueError(f"CL_DEVICE_TYPE = {value} names no device class")


def vendor_of(vendor: Reading[str], vendor_id: Reading[int]) -> str:
    """The device's vendor as gpuabst names it (``nvidia``, ``amd``, ``intel``...), from
    CL_DEVICE_VENDOR first (PoCL reports VENDOR_ID 0x8086 even on AMD CPUs), then its vendor id."""
    text = str(vendor.get("")).lower()
    for pattern, name in ((r"nvidia", "nvidia"), (r"advanced micro|authenticamd|\bamd\b", "amd"),
                          (r"intel", "intel"), (r"\bapple\b", "apple"), (r"\barm\b", "arm"),
                          (r"qualcomm", "qualcomm"), (r"imagination", "imagination")):
        if re.search(pattern, text):
            return name
    vid = vendor_id.get()
    if isinstance(vid, int) and vid in C.PCI_VENDOR_IDS:
        return C.PCI_VENDOR_IDS[vid]
    return text.split()[0] if text.split() else "unknown"


@attrs.define
class _Platform:
    handle: Any
    index: int
    name: Reading[str]
    version: Reading[str]
    devices: list[Any]
    failure: Reading[Any] | None = None


class OpenClBackend(Backend):
    """Every OpenCL device (GPUs, CPUs, accelerators) via pyopencl."""

    name: ClassVar[str] = "opencl"
    vendor: ClassVar[str] = "opencl"
    library_module: ClassVar[str] = "pyopencl"
    library_distribution: ClassVar[str] = "pyopencl"
    install_hint: ClassVar[str] = binding.INSTALL_HINT
    authority: ClassVar[int] = 20
    """Below NVML and amdsmi: where both see a GPU, their values win and OpenCL's differing ones are
    kept as disagreements."""
    sensitive_calls: ClassVar[dict[str, str]] = {}
    """OpenCL reports no serial numbers; no UUID is read (cl_khr_device_uuid is not queried)."""

    # --- plugin hooks ------------------------------------------------------------------------
    @classmethod
    def import_library(cls) -> Any:
        return binding.import_pyopencl()

    @classmethod
    def fake_library(cls, tape: Tape) -> Any:
        return fake_pyopencl.make(tape)

    @classmethod
    def make_codec(cls) -> Codec:
        return binding.OpenClCodec()

    @classmethod
    def classify_error(cls, exc: BaseException) -> ErrorInfo | None:
        return binding.classify(exc)

    @classmethod
    def raise_recorded_error(cls, error: dict[str, Any]) -> None:
        fake_pyopencl.raise_recorded(error)

    # --- session -----------------------------------------------------------------------------
    def _open(self) -> Probe:
        """clGetPlatformIDs, then each platform's name, version and devices (``clinfo -l``)."""
        try:
            handles = list(self.call("platforms"))
        except CallFailed as f:
            r = f.reading
            if r.status is Status.NOT_RECORDED:
                return Probe(False, "platforms() is not recorded in the fixture", self.install_hint)
            if (r.reason or "").startswith(C.error_name(C.PLATFORM_NOT_FOUND_KHR)):
                return Probe(False, binding.NO_PLATFORM, self.install_hint)
            return Probe(False, f"clGetPlatformIDs failed: {r.reason}", self.install_hint)
        if not handles:
            return Probe(False, binding.NO_PLATFORM, self.install_hint)
        self._platforms = [self._platform(i, h) for i, h in enumerate(handles)]
        problems = [f"platform {p.index} ({p.name.get('?')}): devices could not be listed: {p.failure.reason}"
                    for p in self._platforms if p.failure is not None]
        versions = [f"{p.name.get('?')}: {p.version.value}" for p in self._platforms if p.version.ok]
        lib_version = binding.library_version() if self.library.mode != "replay" else None
        return Probe(True, "; ".join(problems) or None, None, lib_version, "; ".join(versions) or None)

    def _platform(self, index: int, handle: Any) -> _Platform:
        name = self._named(self.read("platform_info", handle, "NAME", convert=_text), "clGetPlatformInfo",
                           "CL_PLATFORM_NAME")
        version = self._named(self.read("platform_info", handle, "VERSION", convert=_text), "clGetPlatformInfo",
                              "CL_PLATFORM_VERSION")
        try:
            devices = self.call("platform_devices", handle)
            if not isinstance(devices, list):
                return _Platform(handle, index, name, version, [], missing(
                    Status.ERROR, self.name, "clGetDeviceIDs", f"device list is not a list: {devices!r:.80}"))
        except CallFailed as f:
            if f.reading.status is Status.NOT_APPLICABLE:  # CL_DEVICE_NOT_FOUND: a platform with no device
                return _Platform(handle, index, name, version, [])
            return _Platform(handle, index, name, version, [], f.reading)
        return _Platform(handle, index, name, version, devices)

    # --- devices -----------------------------------------------------------------------------
    def _devices(self) -> list[Device]:
        platforms: list[_Platform] = getattr(self, "_platforms", [])
        out: list[Device] = []
        for p in platforms:
            for di, handle in enumerate(p.devices):
                out.append(self._device(len(out), p, di, handle))
        return out

    def _poll(self, previous: list[Device]) -> list[Device]:
        return previous  # OpenCL has no dynamic readings

    @staticmethod
    def _named(r: Reading[Any], fn: str, param: str) -> Reading[Any]:
        call = f"{fn}({param})"
        return r.replace(call=call) if r.call != call else r

    def _device(self, index: int, p: _Platform, di: int, h: Any) -> Device:
        key = (p.index, di)

        def info(name: str, convert: Callable[[Any], Any] | None = None) -> Reading[Any]:
            r = self.read("device_info", h, name, convert=convert, device_key=key)
            return self._named(r, "clGetDeviceInfo", f"CL_DEVICE_{name}")

        type_r = info("TYPE", convert=device_type_of)
        device_type = type_r.get("unknown")
        extensions = info("EXTENSIONS", convert=_extensions)
        exts = set(extensions.get([]))
        name = info("NAME", convert=_text)
        vendor_name = info("VENDOR", convert=_text)
        vendor_id = info("VENDOR_ID", convert=int)
        bus_id = self._bus_id(info, exts, device_type)
        if device_type == "cpu":
            said = f" (CL_DEVICE_VENDOR_ID is {hex_id(int(vendor_id.value or 0))})" if vendor_id.ok else ""
            pci_vendor = missing(Status.NOT_APPLICABLE, self.name, vendor_id.call,
                                 f"a CPU device has no PCI vendor id{said}")
        else:
            pci_vendor = vendor_id.map(hex_id)
        pcie_id = self._vendor_query(info("PCIE_ID_AMD", convert=lambda v: hex_id(int(v))), exts,
                                     C.EXT_AMD_ATTRIBUTES)
        cc_major = self._vendor_query(info("COMPUTE_CAPABILITY_MAJOR_NV", convert=int), exts, C.EXT_NV_ATTRIBUTES)
        cc = cc_major
        if cc_major.ok:
            minor = self._vendor_query(info("COMPUTE_CAPABILITY_MINOR_NV", convert=int), exts, C.EXT_NV_ATTRIBUTES)
            cc = minor.map(lambda m: f"{cc_major.value}.{m}")
        fp64 = self._fp(info("DOUBLE_FP_CONFIG", convert=self._fp_config("CL_DEVICE_DOUBLE_FP_CONFIG")),
                        extensions, "cl_khr_fp64")
        fp16 = self._fp(info("HALF_FP_CONFIG", convert=self._fp_config("CL_DEVICE_HALF_FP_CONFIG")),
                        extensions, "cl_khr_fp16")
        caps = Capabilities(
            compute_capability=cc,
            compute_units=info("MAX_COMPUTE_UNITS", convert=_nonneg),
            ecc_enabled=info("ERROR_CORRECTION_SUPPORT", convert=_cl_bool),
            max_graphics_clock_mhz=info("MAX_CLOCK_FREQUENCY", convert=_nonneg),
            opencl_version=info("VERSION", convert=_text),
            opencl_c_version=info("OPENCL_C_VERSION", convert=_text),
            max_work_group_size=info("MAX_WORK_GROUP_SIZE", convert=_nonneg),
            fp64=fp64, fp16=fp16,
            unified_memory=info("HOST_UNIFIED_MEMORY", convert=_cl_bool),
            extensions=extensions,
            device_enqueue=self._enqueue(info("DEVICE_ENQUEUE_CAPABILITIES", convert=_enqueue_supported)),
        )
        memory = MemoryInfo(
            total_bytes=info("GLOBAL_MEM_SIZE", convert=_nonneg),
            max_allocation_bytes=info("MAX_MEM_ALLOC_SIZE", convert=_nonneg),
            local_memory_bytes=info("LOCAL_MEM_SIZE", convert=_nonneg),
        )
        return Device(
            vendor=vendor_of(vendor_name, vendor_id), index=index, device_type=device_type,
            name=name,
            board_product_name=self._vendor_query(info("BOARD_NAME_AMD", convert=_text), exts, C.EXT_AMD_ATTRIBUTES),
            driver_version=info("DRIVER_VERSION", convert=_text),
            platform_name=p.name, platform_version=p.version,
            pci=PciInfo(bus_id=bus_id, vendor_id=pci_vendor, device_id=pcie_id),
            memory=memory, capabilities=caps, sources=[self.name],
        )

    # --- helpers -------------------------------------------------------------------------------
    def _vendor_query(self, r: Reading[Any], exts: set[str], ext: str) -> Reading[Any]:
        """A vendor-extension query the device rejects: not applicable when it does not list the
        extension, unsupported (with the runtime's code) when it does."""
        if r.status is Status.UNSUPPORTED and ext not in exts:
            return missing(Status.NOT_APPLICABLE, self.name, r.call,
                           f"the device does not list {ext} (the runtime answers {r.reason})")
        return r

    @staticmethod
    def _fp_config(what: str) -> Callable[[Any], bool]:
        return lambda v: bool(C.decode_bits(int(v), C.FP_CONFIG_BITS, what))

    def _fp(self, config: Reading[bool], extensions: Reading[list[str]], ext: str) -> Reading[bool]:
        """fp64/fp16 from CL_DEVICE_DOUBLE/HALF_FP_CONFIG (non-zero: supported); where the query is
        unanswered or not recorded, from whether the device lists ``ext``. Garbage bits stay an error."""
        if config.ok or config.status is Status.ERROR:
            return config
        if extensions.ok:
            return Reading(ext in (extensions.value or []), Status.OK, self.name,
                           f"clGetDeviceInfo(CL_DEVICE_EXTENSIONS) lists {ext}")
        return config

    def _enqueue(self, r: Reading[bool]) -> Reading[bool]:
        if r.status is Status.UNSUPPORTED:
            return missing(Status.NOT_APPLICABLE, self.name, r.call,
                           f"device-side enqueue capabilities are an OpenCL 3.0 query ({r.reason})")
        return r

    def _bus_id(self, info: Callable[..., Reading[Any]], exts: set[str], device_type: str) -> Reading[str]:
        """The PCI address: cl_khr_pci_bus_info, else NVIDIA's PCI_BUS_ID_NV/PCI_SLOT_ID_NV(/DOMAIN),
        else AMD's TOPOLOGY_AMD (``clinfo``: "Device PCI bus info (KHR)", "Device Topology (NV)/(AMD)")."""
        tried: list[Reading[Any]] = []
        khr = info("PCI_BUS_INFO_KHR", convert=lambda v: (
            f"{int(v['pci_domain']):04x}:{int(v['pci_bus']):02x}:{int(v['pci_device']):02x}.{int(v['pci_function'])}"))
        if khr.ok:
            return khr
        tried.append(khr)
        bus = info("PCI_BUS_ID_NV", convert=int)
        if bus.ok:
            slot = info("PCI_SLOT_ID_NV", convert=int)
            if slot.ok:
                dom = info("PCI_DOMAIN_ID_NV", convert=int)
                domain = int(dom.value or 0) if dom.ok else 0  # older NVIDIA drivers have no domain query
                return Reading(f"{domain:04x}:{int(bus.value or 0):02x}:{int(slot.value or 0) >> 3:02x}."
                               f"{int(slot.value or 0) & 7}", Status.OK, self.name, bus.call)
            tried.append(slot)
        else:
            tried.append(bus)
        topo = info("TOPOLOGY_AMD", convert=amd_topology_bus_id)
        if topo.ok:
            return topo
        tried.append(topo)
        if device_type != "cpu" and any(r.status is Status.NOT_RECORDED for r in tried):
            nr = next(r for r in tried if r.status is Status.NOT_RECORDED)
            return missing(Status.NOT_RECORDED, self.name, nr.call, "the PCI location is not in the recording")
        failed = next((r for r in tried if r.status in (Status.ERROR, Status.TIMEOUT, Status.NO_PERMISSION)), None)
        if failed is not None:  # a query that went wrong says so; it is not "no PCI location"
            return failed
        listed = [e for e in (C.EXT_PCI_BUS_INFO_KHR, C.EXT_NV_ATTRIBUTES, C.EXT_AMD_ATTRIBUTES) if e in exts]
        answered = [r for r in tried if r.status is not Status.NOT_RECORDED]
        answers = "; ".join(f"{r.call}: {r.reason}" for r in answered)
        if device_type == "cpu":
            return missing(Status.NOT_APPLICABLE, self.name, tried[0].call, "a CPU device has no PCI location"
                           + (f" (the runtime answers {answered[0].reason})" if answered else ""))
        if not listed:
            return missing(Status.NOT_APPLICABLE, self.name, tried[0].call,
                           "the device lists none of cl_khr_pci_bus_info, cl_nv_device_attribute_query, "
                           f"cl_amd_device_attribute_query ({answers})")
        return missing(Status.UNSUPPORTED, self.name, tried[0].call,
                       f"the device lists {', '.join(listed)} but gives no PCI location ({answers})")


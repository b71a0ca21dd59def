"""NvmlBackend: NVIDIA GPUs through NVML.

Each value's docstring-equivalent is the vendor call in its Reading (``call``); the nvidia-smi
command that shows the same value is listed in docs/backends/nvidia.md.
"""

from __future__ import annotations

from operator import attrgetter
from typing import Any, ClassVar

from gpuabst.backend import Backend, CallFailed, ErrorInfo, Parts, Plan, Probe, split_parts
from gpuabst.errors import BackendUnavailable
from gpuabst.fixtures.codec import Codec
from gpuabst.fixtures.tape import Tape
from gpuabst.model import Capabilities, Device, HealthReadings, MemoryInfo, Partition, PciInfo, replace
from gpuabst.pci import hex_id, normalize_bus_id
from gpuabst.reading import Reading, Status, missing, ok
from gpuabst_nvml import binding, fake_pynvml
from gpuabst_nvml import constants as C

MIB = 1024 * 1024
_OK = Status.OK


def _text(v: Any) -> str:
    if type(v) is str:  # what current nvidia-ml-py releases give (older ones gave bytes)
        return v.strip()
    s = v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
    return s.strip()


def _watts(mw: Any) -> float:
    return round(int(mw) / 1000.0, 3)


def _reserved_bytes(m: Any) -> int:
    return int(m.reserved)


def _cuda_version(v: Any) -> str:
    """``12.4`` from NVML's CUDA driver version number (12040)."""
    return f"{int(v) // 1000}.{int(v) % 1000 // 10}"


def _enabled(v: Any) -> bool:
    return int(v) == C.FEATURE_ENABLED


def _compute_capability(v: Any) -> str:
    return f"{int(v[0])}.{int(v[1])}"


def _compute_mode(v: Any) -> str:
    return C.COMPUTE_MODES.get(int(v), str(v))


def _brand(v: Any) -> str:
    return C.BRANDS.get(int(v), f"brand {v}")


def _architecture(v: Any) -> str:
    return C.ARCHITECTURES.get(int(v), f"unknown ({v})")


def _performance_state(v: Any) -> str:
    return f"P{int(v)}"


def _clock_event_reasons(v: Any) -> list[str]:
    return C.decode_clock_event_reasons(int(v))


# What each value is read from: (model field or raw name, NVML function, arguments after the device
# handle, conversion). Read a plan at a time with Backend.read_plan; docs/backends/nvidia.md maps
# every field to its call and to nvidia-smi.
_RAW_STATIC: Plan = (
    ("pci", "nvmlDeviceGetPciInfo", (), None),
    ("ecc", "nvmlDeviceGetEccMode", (), None),
    ("mig", "nvmlDeviceGetMigMode", (), None),
    ("limits", "nvmlDeviceGetPowerManagementLimitConstraints", (), None),
    ("attributes", "nvmlDeviceGetAttributes", (), None),
    ("bar1", "nvmlDeviceGetBAR1MemoryInfo", (), None),
)
_CAPABILITIES: Plan = (
    ("compute_capability", "nvmlDeviceGetCudaComputeCapability", (), _compute_capability),
    ("pcie_max_generation", "nvmlDeviceGetMaxPcieLinkGeneration", (), int),
    ("pcie_max_width", "nvmlDeviceGetMaxPcieLinkWidth", (), int),
    ("numa_node", "nvmlDeviceGetNumaNodeId", (), int),
    ("compute_mode", "nvmlDeviceGetComputeMode", (), _compute_mode),
    ("persistence_mode", "nvmlDeviceGetPersistenceMode", (), _enabled),
    ("power_limit_w", "nvmlDeviceGetPowerManagementLimit", (), _watts),
    ("power_limit_default_w", "nvmlDeviceGetPowerManagementDefaultLimit", (), _watts),
    ("max_graphics_clock_mhz", "nvmlDeviceGetMaxClockInfo", (C.CLOCK_GRAPHICS,), int),
    ("max_sm_clock_mhz", "nvmlDeviceGetMaxClockInfo", (C.CLOCK_SM,), int),
    ("max_memory_clock_mhz", "nvmlDeviceGetMaxClockInfo", (C.CLOCK_MEM,), int),
)
_THRESHOLDS: Plan = (
    ("temperature_slowdown_c", "nvmlDeviceGetTemperatureThreshold", (C.THRESHOLD_SLOWDOWN,), float),
    ("temperature_shutdown_c", "nvmlDeviceGetTemperatureThreshold", (C.THRESHOLD_SHUTDOWN,), float),
    ("temperature_max_operating_c", "nvmlDeviceGetTemperatureThreshold", (C.THRESHOLD_GPU_MAX,), float),
)
_IDENTITY: Plan = (
    ("name", "nvmlDeviceGetName", (), _text),
    ("uuid", "nvmlDeviceGetUUID", (), _text),
    ("serial", "nvmlDeviceGetSerial", (), _text),
    ("board_part_number", "nvmlDeviceGetBoardPartNumber", (), _text),
    ("brand", "nvmlDeviceGetBrand", (), _brand),
    ("architecture", "nvmlDeviceGetArchitecture", (), _architecture),
    ("vbios_version", "nvmlDeviceGetVbiosVersion", (), _text),
)
_ECC_COUNTERS: Plan = (
    ("ecc_corrected_volatile", "nvmlDeviceGetTotalEccErrors", (C.MEMORY_ERROR_CORRECTED, C.VOLATILE_ECC), int),
    ("ecc_uncorrected_volatile", "nvmlDeviceGetTotalEccErrors", (C.MEMORY_ERROR_UNCORRECTED, C.VOLATILE_ECC), int),
    ("ecc_corrected_aggregate", "nvmlDeviceGetTotalEccErrors", (C.MEMORY_ERROR_CORRECTED, C.AGGREGATE_ECC), int),
    ("ecc_uncorrected_aggregate", "nvmlDeviceGetTotalEccErrors", (C.MEMORY_ERROR_UNCORRECTED, C.AGGREGATE_ECC),
     int),
)
_DYNAMIC: Plan = (
    # vendor structures, split into fields after the read
    ("memory", "nvmlDeviceGetMemoryInfo", (C.MEMORY_V2,), None),
    ("util", "nvmlDeviceGetUtilizationRates", (), None),
    ("remapped", "nvmlDeviceGetRemappedRows", (), None),
    # rows named as HealthReadings fields
    ("temperature_c", "nvmlDeviceGetTemperatureV", (C.TEMPERATURE_GPU,), float),
    ("throttle_reasons", "nvmlDeviceGetCurrentClocksEventReasons", (), _clock_event_reasons),
    ("power_draw_w", "nvmlDeviceGetPowerUsage", (), _watts),
    ("power_limit_enforced_w", "nvmlDeviceGetEnforcedPowerLimit", (), _watts),
    ("graphics_clock_mhz", "nvmlDeviceGetClockInfo", (C.CLOCK_GRAPHICS,), int),
    ("sm_clock_mhz", "nvmlDeviceGetClockInfo", (C.CLOCK_SM,), int),
    ("memory_clock_mhz", "nvmlDeviceGetClockInfo", (C.CLOCK_MEM,), int),
    ("fan_speed_pct", "nvmlDeviceGetFanSpeed", (), float),
    ("performance_state", "nvmlDeviceGetPerformanceState", (), _performance_state),
    ("retired_pages_single_bit", "nvmlDeviceGetRetiredPages", (C.RETIREMENT_CAUSE_SINGLE_BIT,), len),
    ("retired_pages_double_bit", "nvmlDeviceGetRetiredPages", (C.RETIREMENT_CAUSE_DOUBLE_BIT,), len),
    ("retired_pages_pending", "nvmlDeviceGetRetiredPagesPendingStatus", (), _enabled),
    ("pcie_current_generation", "nvmlDeviceGetCurrPcieLinkGeneration", (), int),
    ("pcie_current_width", "nvmlDeviceGetCurrPcieLinkWidth", (), int),
    *_ECC_COUNTERS,
)
"""Read on every poll: one plan, so one pass over a device's calls."""

_OLDER_CALLS: dict[tuple[str, tuple[Any, ...]], tuple[tuple[str, tuple[Any, ...]], ...]] = {
    ("nvmlDeviceGetMemoryInfo", (C.MEMORY_V2,)): (("nvmlDeviceGetMemoryInfo", ()),),
    ("nvmlDeviceGetTemperatureV", (C.TEMPERATURE_GPU,)): (("nvmlDeviceGetTemperature", (C.TEMPERATURE_GPU,)),),
    ("nvmlDeviceGetCurrentClocksEventReasons", ()): (("nvmlDeviceGetCurrentClocksThrottleReasons", ()),),
}
"""Calls of older drivers (and older nvidia-ml-py) tried when the newer one is missing."""

_MIG_DEVICE: Plan = (
    ("name", "nvmlDeviceGetName", (), _text),
    ("uuid", "nvmlDeviceGetUUID", (), _text),
    ("gpu_instance_id", "nvmlDeviceGetGpuInstanceId", (), int),
    ("compute_instance_id", "nvmlDeviceGetComputeInstanceId", (), int),
    ("memory", "nvmlDeviceGetMemoryInfo", (), None),
    ("attributes", "nvmlDeviceGetAttributes", (), None),
)


# Fields taken from one vendor structure each (Backend.split_parts): built once, used on every read.
_PCI_PARTS: Parts = (
    ("bus_id", lambda p: normalize_bus_id(_text(p.busId))),
    ("vendor_id", lambda p: hex_id(int(p.pciDeviceId) & 0xFFFF)),
    ("device_id", lambda p: hex_id(int(p.pciDeviceId) >> 16)),
    ("subsystem_id", lambda p: hex_id(int(p.pciSubSystemId) >> 16)),
    ("subsystem_vendor_id", lambda p: hex_id(int(p.pciSubSystemId) & 0xFFFF)),
)
_ECC_MODE_PARTS: Parts = (("ecc_enabled", lambda v: _enabled(v[0])), ("ecc_pending_enabled", lambda v: _enabled(v[1])))
_MIG_MODE_PARTS: Parts = (("mig_enabled", lambda v: _enabled(v[0])), ("mig_pending_enabled", lambda v: _enabled(v[1])))
_LIMIT_PARTS: Parts = (("power_limit_min_w", lambda v: _watts(v[0])), ("power_limit_max_w", lambda v: _watts(v[1])))
_BAR1_PARTS: Parts = (("bar1_total_bytes", lambda b: int(b.bar1Total)), ("bar1_used_bytes", lambda b: int(b.bar1Used)))
_MEMORY_PARTS: Parts = (
    ("total_bytes", lambda m: int(m.total)), ("used_bytes", lambda m: int(m.used)),
    ("free_bytes", lambda m: int(m.free)),
)
_UTILIZATION_PARTS: Parts = (
    ("utilization_gpu_pct", lambda u: float(u.gpu)), ("utilization_memory_pct", lambda u: float(u.memory)),
)
_REMAPPED_PARTS: Parts = (
    ("remapped_rows_corrected", lambda v: int(v[0])), ("remapped_rows_uncorrected", lambda v: int(v[1])),
    ("remapped_rows_pending", lambda v: bool(int(v[2]))), ("remapped_rows_failure", lambda v: bool(int(v[3]))),
)
_STATIC_MEMORY = tuple(name for name, _ in _BAR1_PARTS)
"""MemoryInfo fields read once, from nvmlDeviceGetBAR1MemoryInfo."""
_THRESHOLD_NAMES = tuple(row[0] for row in _THRESHOLDS)
"""HealthReadings fields read once (temperature thresholds)."""
_static_memory_of, _thresholds_of = attrgetter(*_STATIC_MEMORY), attrgetter(*_THRESHOLD_NAMES)
"""A device's values of those fields, as a tuple (each has several fields: attrgetter gives a tuple)."""


class NvmlBackend(Backend):
    """NVIDIA GPUs via nvidia-ml-py (``pynvml``)."""

    name: ClassVar[str] = "nvml"
    vendor: ClassVar[str] = "nvidia"
    library_module: ClassVar[str] = "pynvml"
    library_distribution: ClassVar[str] = "nvidia-ml-py"
    install_hint: ClassVar[str] = binding.INSTALL_HINT
    authority: ClassVar[int] = 100
    sensitive_calls: ClassVar[dict[str, str]] = {
        "nvmlDeviceGetUUID": "uuid", "nvmlDeviceGetSerial": "serial", "nvmlDeviceGetBoardId": "serial",
    }
    """Results scrubbed from captures (``fn`` or ``fn.field`` -> kind of pseudonym)."""
    older_calls = _OLDER_CALLS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._handles: dict[int, Any] = {}
        """Device handles by index, asked once per session (nvmlDeviceGetHandleByIndex)."""
        self._driver: Reading[str] = _DRIVER_NOT_READ
        self._cuda: Reading[str] = _CUDA_NOT_READ

    # --- plugin hooks ------------------------------------------------------------------------
    @classmethod
    def import_library(cls) -> Any:
        return binding.import_pynvml()

    @classmethod
    def fake_library(cls, tape: Tape) -> Any:
        return fake_pynvml.make(tape)

    @classmethod
    def make_codec(cls) -> Codec:
        return binding.NvmlCodec()

    @classmethod
    def classify_error(cls, exc: BaseException) -> ErrorInfo | None:
        return binding.classify(exc)

    error_code = staticmethod(binding.error_code)  # called once per failed call: no frame of its own

    @classmethod
    def raise_recorded_error(cls, error: dict[str, Any]) -> None:
        fake_pynvml.raise_recorded(error)

    def _open(self) -> Probe:
        try:
            self.call("nvmlInit")
        except CallFailed as f:
            if f.reading.status is Status.NOT_RECORDED:
                return Probe(False, "nvmlInit is not recorded in the fixture", self.install_hint)
            return Probe(False, binding.why_unavailable(f.reading.reason), self.install_hint)
        self._driver = self.read("nvmlSystemGetDriverVersion", convert=_text)
        self._cuda = self.read_first(("nvmlSystemGetCudaDriverVersion_v2",), ("nvmlSystemGetCudaDriverVersion",),
                                     convert=_cuda_version)
        lib_version = binding.library_version() if self.library.mode != "replay" else None
        return Probe(True, None, None, lib_version, self._driver.get())

    def _close(self) -> None:
        self._handles.clear()
        try:
            self.call("nvmlShutdown")
        except CallFailed:
            pass

    # --- devices -------------------------------------------------------------------------------
    def _count(self) -> int:
        try:
            return int(self.call("nvmlDeviceGetCount"))
        except CallFailed as f:
            raise BackendUnavailable(f"nvmlDeviceGetCount failed: {f.reading.reason}") from None

    def _devices(self) -> list[Device]:
        out = []
        for index in range(self._count()):
            try:
                h = self._handle(index)
            except CallFailed as f:
                out.append(Device(vendor="nvidia", index=index, name=f.reading, sources=[self.name],
                                  health=HealthReadings(device_lost=self._lost_reading(f, index))))
                continue
            static = self._static(h, index)
            caps: Capabilities = static["capabilities"]
            memory, health = self._dynamic(h, index, caps)
            static["memory"] = MemoryInfo(**static["memory"], **memory)
            static["health"] = HealthReadings(**static["health"], **health)
            out.append(Device(**static))
        return out

    def _poll(self, previous: list[Device]) -> list[Device]:
        return [self._with_dynamic(d) for d in previous]

    def _handle(self, index: int) -> Any:
        """nvmlDeviceGetHandleByIndex, asked once per session: NVML handles stay valid until nvmlShutdown.
        A lost GPU is marked lost here too (it stays lost for the session)."""
        if index not in self._handles:
            self._handles[index] = self.call("nvmlDeviceGetHandleByIndex", index, device_key=index)
        return self._handles[index]

    def _static(self, h: Any, index: int) -> dict[str, Any]:
        """Facts read once per session (identity, PCI, capabilities, MIG layout), as Device arguments;
        ``memory`` and ``health`` hold the static parts of those (names in _STATIC_MEMORY, _THRESHOLDS).
        Each plan's rows are named as the model's fields, so its Readings are constructor arguments."""
        key = index
        r = self.read_plan(h, _RAW_STATIC, device_key=key)
        capabilities = self.read_plan(h, _CAPABILITIES, device_key=key)
        thresholds = self.read_plan(h, _THRESHOLDS, device_key=key)
        identity = self.read_plan(h, _IDENTITY, device_key=key)
        pci = split_parts(r["pci"], _PCI_PARTS)
        caps = Capabilities(
            compute_units=r["attributes"].map(lambda a: int(a.multiprocessorCount)),
            nvlink_active_links=self._nvlink_active(h, key),
            **split_parts(r["ecc"], _ECC_MODE_PARTS), **split_parts(r["mig"], _MIG_MODE_PARTS),
            **split_parts(r["limits"], _LIMIT_PARTS), **capabilities,
        )
        return dict(
            vendor="nvidia", index=index,
            driver_name=ok("nvidia", self.name, None),
            driver_version=self._driver, cuda_driver_version=self._cuda,
            pci=PciInfo(**pci), capabilities=caps,
            memory=split_parts(r["bar1"], _BAR1_PARTS),
            health=thresholds,
            partitions=self._mig_partitions(h, key, caps.mig_enabled, pci["bus_id"].get()),
            sources=[self.name], **identity)

    # --- helpers -------------------------------------------------------------------------------
    def _lost_reading(self, failure: CallFailed, key: Any) -> Reading[bool]:
        if self.is_lost(key):
            return Reading(True, Status.OK, self.name, failure.reading.call)
        return failure.reading

    def _nvlink_active(self, h: Any, key: Any) -> Reading[int]:
        """Active NVLink links: nvmlDeviceGetNvLinkState for each link until the driver says no more."""
        states, failed = self.read_numbered("nvmlDeviceGetNvLinkState", h, C.NVLINK_MAX_LINKS, device_key=key)
        if not states and failed is not None:
            if failed.status is Status.UNSUPPORTED:
                return missing(Status.NOT_APPLICABLE, self.name, failed.call,
                               f"no NVLink on this device ({failed.reason})")
            return failed
        try:
            active = list(map(int, states)).count(C.FEATURE_ENABLED)
        except (TypeError, ValueError) as e:
            return self._unexpected("nvmlDeviceGetNvLinkState", states, e)
        return ok(active, self.name, "nvmlDeviceGetNvLinkState")

    def _mig_partitions(self, h: Any, key: Any, mig_enabled: Reading[bool], bus: str | None) -> list[Partition]:
        """MIG instances: nvmlDeviceGetMigDeviceHandleByIndex for each slot up to the maximum count."""
        if not mig_enabled.get(False):
            return []
        count = self.read("nvmlDeviceGetMaxMigDeviceCount", h, convert=int, device_key=key)
        parts: list[Partition] = []
        for slot in range(count.get(0)):
            try:
                mh = self.call("nvmlDeviceGetMigDeviceHandleByIndex", h, slot, device_key=key)
            except CallFailed:
                continue  # an empty slot answers NOT_FOUND
            r = self.read_plan(mh, _MIG_DEVICE, device_key=key)
            name = r["name"]
            parts.append(Partition(
                kind="mig", index=slot, parent_bus_id=bus, name=name,
                profile=name.map(_mig_profile) if name.ok and _mig_profile(name.value) else missing(
                    Status.NOT_RECORDED if not name.ok else Status.UNSUPPORTED, self.name, "nvmlDeviceGetName",
                    "the MIG device name does not carry a profile" if name.ok else name.reason),
                uuid=r["uuid"], gpu_instance_id=r["gpu_instance_id"], compute_instance_id=r["compute_instance_id"],
                memory_total_bytes=r["memory"].map(lambda m: int(m.total)),
                compute_units=r["attributes"].map(lambda a: int(a.multiprocessorCount)),
            ))
        return parts

    def _with_dynamic(self, device: Device) -> Device:
        """A device from an earlier read with what changes read again (static facts kept)."""
        if device.name.status is not Status.OK and not device.sources:
            return device
        try:
            h = self._handle(device.index)
        except CallFailed as f:
            return replace(device, health=replace(device.health, device_lost=self._lost_reading(f, device.index)))
        memory, health = self._dynamic(h, device.index, device.capabilities)
        return replace(
            device,
            memory=MemoryInfo(**dict(zip(_STATIC_MEMORY, _static_memory_of(device.memory), strict=True)), **memory),
            health=HealthReadings(**dict(zip(_THRESHOLD_NAMES, _thresholds_of(device.health), strict=True)), **health))

    def _dynamic(self, h: Any, key: Any, caps: Capabilities) -> tuple[dict[str, Reading[Any]], dict[str, Reading[Any]]]:
        """What changes between polls, as MemoryInfo and HealthReadings arguments: memory use,
        temperature, power, clocks, ECC, throttling, PCIe link."""
        health = self.read_plan(h, _DYNAMIC, device_key=key, skip_unsupported=True)
        mem, util, remapped = health.pop("memory"), health.pop("util"), health.pop("remapped")
        if caps.ecc_enabled[0] is False:  # read and off (a missing Reading's value is None)
            for name, *_ in _ECC_COUNTERS:
                if not health[name].ok:
                    health[name] = missing(Status.NOT_APPLICABLE, self.name, health[name].call, "ECC is disabled")
        memory = split_parts(mem, _MEMORY_PARTS)
        memory["reserved_bytes"] = self._reserved(mem)
        health.update(split_parts(util, _UTILIZATION_PARTS))
        health.update(split_parts(remapped, _REMAPPED_PARTS))
        health["pcie_link_degraded"] = _link_degraded(health["pcie_current_generation"], health["pcie_current_width"],
                                                      caps, self.name)
        health["device_lost"] = ok(self.is_lost(key), self.name, None)
        return memory, health

    def _reserved(self, mem: Reading[Any]) -> Reading[int]:
        """Reserved memory, given only by the v2 memory structure."""
        if mem[1] is not _OK:
            return mem
        if hasattr(mem[0], "reserved"):
            return mem.map(_reserved_bytes)
        return missing(Status.UNSUPPORTED, self.name, "nvmlDeviceGetMemoryInfo",
                       "only the v1 memory structure, without reserved memory, is available from this driver")


_DRIVER_NOT_READ = missing(Status.NOT_RECORDED, NvmlBackend.name, "nvmlSystemGetDriverVersion")
_CUDA_NOT_READ = missing(Status.NOT_RECORDED, NvmlBackend.name, "nvmlSystemGetCudaDriverVersion")
"""The driver's and CUDA's versions until nvmlInit has answered (immutable: one of each per process)."""


def _mig_profile(name: str | None) -> str | None:
    """``3g.40gb`` from a MIG device name such as ``NVIDIA H100 80GB HBM3 MIG 3g.40gb``."""
    if not name or " MIG " not in f" {name} ":
        return None
    tail = name.rsplit("MIG", 1)[1].strip()
    return tail or None


def _link_degraded(gen: Reading[int], width: Reading[int], caps: Capabilities, source: str) -> Reading[bool]:
    """Whether the PCIe link runs below the device's maximum generation or width.

    A link that drops its generation at idle to save power is normal, so only a width below the
    maximum, or a generation below it while the GPU is busy, is a real degradation; this value
    reports the plain comparison and health policy decides what it means.
    """
    max_gen, max_width = caps.pcie_max_generation, caps.pcie_max_width
    for r in (gen, max_gen, width, max_width):  # the first one missing says why (read on every poll)
        if r[1] is not _OK:
            return r.map(bool)  # unchanged: typed as the bool it stands for
    return ok(int(width[0]) < int(max_width[0]) or int(gen[0]) < int(max_gen[0]), source,
              "nvmlDeviceGetCurrPcieLinkWidth")

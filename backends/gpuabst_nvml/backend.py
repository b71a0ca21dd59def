"""NvmlBackend: NVIDIA GPUs through NVML.

Each value's docstring-equivalent is the vendor call in its Reading (``call``); the nvidia-smi
command that shows the same value is listed in docs/backends/nvidia.md.
"""

from __future__ import annotations

from typing import Any, ClassVar

import attrs

from gpuabst.backend import Backend, CallFailed, ErrorInfo, Probe, split
from gpuabst.errors import BackendUnavailable
from gpuabst.fixtures.codec import Codec
from gpuabst.fixtures.tape import Tape
from gpuabst.model import Capabilities, Device, HealthReadings, MemoryInfo, Partition, PciInfo
from gpuabst.pci import hex_id, normalize_bus_id
from gpuabst.reading import Reading, Status, missing, ok
from gpuabst_nvml import binding, fake_pynvml
from gpuabst_nvml import constants as C

MIB = 1024 * 1024


def _text(v: Any) -> str:
    s = v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
    return s.strip()


def _watts(mw: Any) -> float:
    return round(int(mw) / 1000.0, 3)


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
                                     convert=lambda v: f"{int(v) // 1000}.{int(v) % 1000 // 10}")
        lib_version = binding.library_version() if self.library.mode != "replay" else None
        return Probe(True, None, None, lib_version, self._driver.get())

    def _close(self) -> None:
        self.__dict__.pop("_handles", None)
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
            static = self._static(index)
            out.append(self._with_dynamic(static))
        return out

    def _poll(self, previous: list[Device]) -> list[Device]:
        return [self._with_dynamic(d) for d in previous]

    def _handle(self, index: int) -> Any:
        """nvmlDeviceGetHandleByIndex, asked once per session: NVML handles stay valid until nvmlShutdown.
        A lost GPU is marked lost here too (it stays lost for the session)."""
        handles: dict[int, Any] = self.__dict__.setdefault("_handles", {})
        if index not in handles:
            handles[index] = self.call("nvmlDeviceGetHandleByIndex", index, device_key=index)
        return handles[index]

    def _static(self, index: int) -> Device:
        """Facts read once per session: identity, PCI, capabilities, MIG layout."""
        try:
            h = self._handle(index)
        except CallFailed as f:
            return Device(vendor="nvidia", index=index, name=f.reading, sources=[self.name],
                          health=HealthReadings(device_lost=self._lost_reading(f, index)))
        key = index
        rd = self._reader(h, key)
        pci_raw = rd("nvmlDeviceGetPciInfo")
        pci = split(pci_raw,
                    bus_id=lambda p: normalize_bus_id(_text(p.busId)),
                    vendor_id=lambda p: hex_id(int(p.pciDeviceId) & 0xFFFF),
                    device_id=lambda p: hex_id(int(p.pciDeviceId) >> 16),
                    subsystem_id=lambda p: hex_id(int(p.pciSubSystemId) >> 16),
                    subsystem_vendor_id=lambda p: hex_id(int(p.pciSubSystemId) & 0xFFFF))
        ecc = rd("nvmlDeviceGetEccMode")
        mig = rd("nvmlDeviceGetMigMode")
        limits = rd("nvmlDeviceGetPowerManagementLimitConstraints")
        attributes = rd("nvmlDeviceGetAttributes")
        cc = rd("nvmlDeviceGetCudaComputeCapability", convert=lambda v: f"{int(v[0])}.{int(v[1])}")
        caps = Capabilities(
            compute_capability=cc,
            compute_units=attributes.map(lambda a: int(a.multiprocessorCount)),
            ecc_enabled=ecc.map(lambda v: int(v[0]) == C.FEATURE_ENABLED),
            ecc_pending_enabled=ecc.map(lambda v: int(v[1]) == C.FEATURE_ENABLED),
            mig_enabled=mig.map(lambda v: int(v[0]) == C.FEATURE_ENABLED),
            mig_pending_enabled=mig.map(lambda v: int(v[1]) == C.FEATURE_ENABLED),
            pcie_max_generation=rd("nvmlDeviceGetMaxPcieLinkGeneration", convert=int),
            pcie_max_width=rd("nvmlDeviceGetMaxPcieLinkWidth", convert=int),
            nvlink_active_links=self._nvlink_active(h, key),
            numa_node=rd("nvmlDeviceGetNumaNodeId", convert=int),
            compute_mode=rd("nvmlDeviceGetComputeMode", convert=lambda v: C.COMPUTE_MODES.get(int(v), str(v))),
            persistence_mode=rd("nvmlDeviceGetPersistenceMode", convert=lambda v: int(v) == C.FEATURE_ENABLED),
            power_limit_w=rd("nvmlDeviceGetPowerManagementLimit", convert=_watts),
            power_limit_default_w=rd("nvmlDeviceGetPowerManagementDefaultLimit", convert=_watts),
            power_limit_min_w=limits.map(lambda v: _watts(v[0])),
            power_limit_max_w=limits.map(lambda v: _watts(v[1])),
            max_graphics_clock_mhz=rd("nvmlDeviceGetMaxClockInfo", C.CLOCK_GRAPHICS, convert=int),
            max_sm_clock_mhz=rd("nvmlDeviceGetMaxClockInfo", C.CLOCK_SM, convert=int),
            max_memory_clock_mhz=rd("nvmlDeviceGetMaxClockInfo", C.CLOCK_MEM, convert=int),
        )
        bar1 = rd("nvmlDeviceGetBAR1MemoryInfo")
        memory = MemoryInfo(**split(bar1, bar1_total_bytes=lambda b: int(b.bar1Total),
                                    bar1_used_bytes=lambda b: int(b.bar1Used)))
        health = HealthReadings(
            temperature_slowdown_c=rd("nvmlDeviceGetTemperatureThreshold", C.THRESHOLD_SLOWDOWN, convert=float),
            temperature_shutdown_c=rd("nvmlDeviceGetTemperatureThreshold", C.THRESHOLD_SHUTDOWN, convert=float),
            temperature_max_operating_c=rd("nvmlDeviceGetTemperatureThreshold", C.THRESHOLD_GPU_MAX,
                                           convert=float),
        )
        cuda = getattr(self, "_cuda", missing(Status.NOT_RECORDED, self.name, "nvmlSystemGetCudaDriverVersion"))
        driver = getattr(self, "_driver", missing(Status.NOT_RECORDED, self.name, "nvmlSystemGetDriverVersion"))
        bus = pci["bus_id"].get()
        return Device(
            vendor="nvidia", index=index,
            name=rd("nvmlDeviceGetName", convert=_text),
            uuid=rd("nvmlDeviceGetUUID", convert=_text),
            serial=rd("nvmlDeviceGetSerial", convert=_text),
            board_part_number=rd("nvmlDeviceGetBoardPartNumber", convert=_text),
            brand=rd("nvmlDeviceGetBrand", convert=lambda v: C.BRANDS.get(int(v), f"brand {v}")),
            architecture=rd("nvmlDeviceGetArchitecture",
                            convert=lambda v: C.ARCHITECTURES.get(int(v), f"unknown ({v})")),
            vbios_version=rd("nvmlDeviceGetVbiosVersion", convert=_text),
            driver_name=ok("nvidia", self.name, None),
            driver_version=driver, cuda_driver_version=cuda,
            pci=PciInfo(**pci), memory=memory, capabilities=caps, health=health,
            partitions=self._mig_partitions(h, key, caps.mig_enabled, bus),
            sources=[self.name])

    # --- helpers -------------------------------------------------------------------------------
    def _reader(self, h: Any, key: Any) -> Any:
        def rd(fn: str, *args: Any, convert: Any = None) -> Reading[Any]:
            return self.read(fn, h, *args, convert=convert, device_key=key)
        return rd

    def _lost_reading(self, failure: CallFailed, key: Any) -> Reading[bool]:
        if self.is_lost(key):
            return Reading(True, Status.OK, self.name, failure.reading.call)
        return failure.reading

    def _nvlink_active(self, h: Any, key: Any) -> Reading[int]:
        """Active NVLink links: nvmlDeviceGetNvLinkState for each link until the driver says no more."""
        active = 0
        first: Reading[Any] | None = None
        for link in range(C.NVLINK_MAX_LINKS):
            r = self.read("nvmlDeviceGetNvLinkState", h, link, convert=int, device_key=key)
            if not r.ok:
                if link == 0:
                    first = r
                break
            active += int(r.value == C.FEATURE_ENABLED)
        if first is not None:
            if first.status is Status.UNSUPPORTED:
                return missing(Status.NOT_APPLICABLE, self.name, "nvmlDeviceGetNvLinkState",
                               f"no NVLink on this device ({first.reason})")
            return first
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
            rd = self._reader(mh, key)
            name = rd("nvmlDeviceGetName", convert=_text)
            mem = rd("nvmlDeviceGetMemoryInfo")
            attributes = rd("nvmlDeviceGetAttributes")
            parts.append(Partition(
                kind="mig", index=slot, parent_bus_id=bus, name=name,
                profile=name.map(_mig_profile) if name.ok and _mig_profile(name.value) else missing(
                    Status.NOT_RECORDED if not name.ok else Status.UNSUPPORTED, self.name, "nvmlDeviceGetName",
                    "the MIG device name does not carry a profile" if name.ok else name.reason),
                uuid=rd("nvmlDeviceGetUUID", convert=_text),
                gpu_instance_id=rd("nvmlDeviceGetGpuInstanceId", convert=int),
                compute_instance_id=rd("nvmlDeviceGetComputeInstanceId", convert=int),
                memory_total_bytes=mem.map(lambda m: int(m.total)),
                compute_units=attributes.map(lambda a: int(a.multiprocessorCount)),
            ))
        return parts

    def _with_dynamic(self, device: Device) -> Device:
        """Re-read what changes between polls: memory use, temperatures, power, clocks, ECC, throttling."""
        if device.name.status is not Status.OK and not device.sources:
            return device
        try:
            h = self._handle(device.index)
        except CallFailed as f:
            return attrs.evolve(device, health=attrs.evolve(device.health,
                                                            device_lost=self._lost_reading(f, device.index)))
        key = device.index
        rd = self._reader(h, key)
        mem = self.read_first(("nvmlDeviceGetMemoryInfo", h, C.MEMORY_V2), ("nvmlDeviceGetMemoryInfo", h),
                              device_key=key)
        memory = attrs.evolve(device.memory, **split(
            mem, total_bytes=lambda m: int(m.total), used_bytes=lambda m: int(m.used),
            free_bytes=lambda m: int(m.free)))
        if mem.ok and hasattr(mem.value, "reserved"):
            memory = attrs.evolve(memory, reserved_bytes=mem.map(lambda m: int(m.reserved)))
        elif mem.ok:
            memory = attrs.evolve(memory, reserved_bytes=missing(
                Status.UNSUPPORTED, self.name, "nvmlDeviceGetMemoryInfo",
                "only the v1 memory structure, without reserved memory, is available from this driver"))
        else:
            memory = attrs.evolve(memory, reserved_bytes=mem)
        util = rd("nvmlDeviceGetUtilizationRates")
        reasons = self.read_first(("nvmlDeviceGetCurrentClocksEventReasons", h),
                                  ("nvmlDeviceGetCurrentClocksThrottleReasons", h),
                                  convert=lambda v: C.decode_clock_event_reasons(int(v)), device_key=key)
        remapped = rd("nvmlDeviceGetRemappedRows")
        gen = rd("nvmlDeviceGetCurrPcieLinkGeneration", convert=int)
        width = rd("nvmlDeviceGetCurrPcieLinkWidth", convert=int)
        caps = device.capabilities
        health = attrs.evolve(
            device.health,
            temperature_c=self.read_first(("nvmlDeviceGetTemperatureV", h, C.TEMPERATURE_GPU),
                                          ("nvmlDeviceGetTemperature", h, C.TEMPERATURE_GPU),
                                          convert=float, device_key=key),
            power_draw_w=rd("nvmlDeviceGetPowerUsage", convert=_watts),
            power_limit_enforced_w=rd("nvmlDeviceGetEnforcedPowerLimit", convert=_watts),
            utilization_gpu_pct=util.map(lambda u: float(u.gpu)),
            utilization_memory_pct=util.map(lambda u: float(u.memory)),
            graphics_clock_mhz=rd("nvmlDeviceGetClockInfo", C.CLOCK_GRAPHICS, convert=int),
            sm_clock_mhz=rd("nvmlDeviceGetClockInfo", C.CLOCK_SM, convert=int),
            memory_clock_mhz=rd("nvmlDeviceGetClockInfo", C.CLOCK_MEM, convert=int),
            fan_speed_pct=rd("nvmlDeviceGetFanSpeed", convert=float),
            performance_state=rd("nvmlDeviceGetPerformanceState", convert=lambda v: f"P{int(v)}"),
            ecc_corrected_volatile=self._ecc(h, key, C.MEMORY_ERROR_CORRECTED, C.VOLATILE_ECC, caps),
            ecc_uncorrected_volatile=self._ecc(h, key, C.MEMORY_ERROR_UNCORRECTED, C.VOLATILE_ECC, caps),
            ecc_corrected_aggregate=self._ecc(h, key, C.MEMORY_ERROR_CORRECTED, C.AGGREGATE_ECC, caps),
            ecc_uncorrected_aggregate=self._ecc(h, key, C.MEMORY_ERROR_UNCORRECTED, C.AGGREGATE_ECC, caps),
            retired_pages_single_bit=rd("nvmlDeviceGetRetiredPages", C.RETIREMENT_CAUSE_SINGLE_BIT, convert=len),
            retired_pages_double_bit=rd("nvmlDeviceGetRetiredPages", C.RETIREMENT_CAUSE_DOUBLE_BIT, convert=len),
            retired_pages_pending=rd("nvmlDeviceGetRetiredPagesPendingStatus",
                                     convert=lambda v: int(v) == C.FEATURE_ENABLED),
            remapped_rows_corrected=remapped.map(lambda v: int(v[0])),
            remapped_rows_uncorrected=remapped.map(lambda v: int(v[1])),
            remapped_rows_pending=remapped.map(lambda v: bool(int(v[2]))),
            remapped_rows_failure=remapped.map(lambda v: bool(int(v[3]))),
            throttle_reasons=reasons,
            pcie_current_generation=gen,
            pcie_current_width=width,
            pcie_link_degraded=_link_degraded(gen, width, caps, self.name),
            device_lost=ok(self.is_lost(key), self.name, None),
        )
        return attrs.evolve(device, memory=memory, health=health)

    def _ecc(self, h: Any, key: Any, error_type: int, counter: int, caps: Capabilities) -> Reading[int]:
        """nvmlDeviceGetTotalEccErrors; not applicable while ECC is off."""
        r = self.read("nvmlDeviceGetTotalEccErrors", h, error_type, counter, convert=int, device_key=key)
        if not r.ok and caps.ecc_enabled.ok and caps.ecc_enabled.value is False:
            return missing(Status.NOT_APPLICABLE, self.name, r.call, "ECC is disabled")
        return r


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
    pairs = [(gen, caps.pcie_max_generation), (width, caps.pcie_max_width)]
    for cur, mx in pairs:
        if not cur.ok:
            return cur.map(bool)
        if not mx.ok:
            return mx.map(bool)
    return ok(bool(int(width.value or 0) < int(caps.pcie_max_width.value or 0)
                   or int(gen.value or 0) < int(caps.pcie_max_generation.value or 0)),
              source, "nvmlDeviceGetCurrPcieLinkWidth")

"""AmdSmiBackend: AMD GPUs through AMD SMI (the ``amdsmi`` Python package over ``libamd_smi.so``).

Each value's Reading names the amdsmi call behind it (``call``); docs/backends/amd.md lists the
amd-smi command that shows the same value, what needs root and what older ROCm releases lack.

amdsmi answers "N/A" (a string, mixed in with numbers) for what a device does not give; every such
value becomes a Reading that says so, never a value. A key missing from a replayed result (an
importer could not know it) is ``not_recorded``.

Partitions: an MI300-class GPU in a compute partition mode other than SPX shows up in amdsmi as one
processor handle per partition. Handles that share one PCI device (domain:bus:device) are folded
into one Device, with one ``Partition(kind="compute")`` per handle (index = the KFD partition id).
A memory partition mode other than NPS1 adds ``Partition(kind="memory")`` children, one per NUMA
memory partition. SPX and NPS1 add no children; both modes are always in ``capabilities``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, ClassVar

from gpuabst.backend import Backend, CallFailed, ErrorInfo, Probe
from gpuabst.errors import BackendUnavailable
from gpuabst.fixtures.codec import Codec
from gpuabst.fixtures.tape import Tape
from gpuabst.model import Capabilities, Device, HealthReadings, MemoryInfo, Partition, PciInfo, replace
from gpuabst.pci import hex_id, normalize_bus_id
from gpuabst.reading import Reading, Status, missing, not_applicable, ok
from gpuabst_amdsmi import binding, fake_amdsmi
from gpuabst_amdsmi import constants as C

MIB = 1024 * 1024

_ARCHITECTURES: tuple[tuple[str, str], ...] = (
    ("gfx95", "CDNA 4"), ("gfx94", "CDNA 3"), ("gfx90a", "CDNA 2"), ("gfx908", "CDNA"),
    ("gfx906", "GCN 5 (Vega 20)"), ("gfx900", "GCN 5 (Vega 10)"), ("gfx12", "RDNA 4"), ("gfx11", "RDNA 3"),
    ("gfx103", "RDNA 2"), ("gfx101", "RDNA"),
)
"""Architecture from the gfx target (amdsmi_get_gpu_asic_info.target_graphics_version)."""


def is_na(value: Any) -> bool:
    """Whether amdsmi gave no value: its "N/A" string, an empty string, or a raw UINT*_MAX filler."""
    if value is None:
        return True
    if isinstance(value, str):
        return value.strip().upper() in ("", "N/A", "NA", "NONE")
    if isinstance(value, int) and not isinstance(value, bool):
        return value in C.UNSUPPORTED_SENTINELS
    return False


def to_int(value: Any) -> int:
    """An int from amdsmi's ints, floats and hex or decimal strings (``"0x738c"``, ``"12"``)."""
    if isinstance(value, bool):
        raise ValueError(f"not a number: {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    return int(str(value).strip(), 0)


def _text(value: Any) -> str:
    s = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    return s.strip()


def _mode(value: Any) -> str:
    text = _text(value).upper()
    if is_na(text) or text in ("UNKNOWN", "INVALID"):
        raise _NotGiven("amdsmi gave no partition mode")
    return text


def _gfx(value: Any) -> str:
    text = _text(value).lower()
    if not re.fullmatch(r"gfx[0-9a-f]{3,}", text):
        raise _NotGiven(f"no usable gfx target ({value!r})")
    return text


class _NotGiven(Exception):
    """A converter's way to say amdsmi gave nothing usable (becomes an unsupported Reading)."""


class AmdSmiBackend(Backend):
    """AMD GPUs via amdsmi (ROCm's AMD SMI library)."""

    name: ClassVar[str] = "amdsmi"
    vendor: ClassVar[str] = "amd"
    library_module: ClassVar[str] = "amdsmi"
    library_distribution: ClassVar[str] = "amdsmi"
    install_hint: ClassVar[str] = binding.INSTALL_HINT
    authority: ClassVar[int] = 100
    sensitive_calls: ClassVar[dict[str, str]] = {
        "amdsmi_get_gpu_device_uuid": "uuid",
        "amdsmi_get_gpu_asic_info.asic_serial": "serial",
        "amdsmi_get_gpu_board_info.product_serial": "serial",
        "amdsmi_get_gpu_enumeration_info.hip_uuid": "uuid",
    }
    """Results scrubbed from captures (``fn`` or ``fn.field`` -> kind of pseudonym)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._handles: dict[int, Any] = {}
        self._driver: Reading[str] = missing(Status.NOT_RECORDED, self.name, "amdsmi_get_gpu_driver_info")

    # --- plugin hooks ------------------------------------------------------------------------
    @classmethod
    def import_library(cls) -> Any:
        return binding.import_amdsmi()

    @classmethod
    def fake_library(cls, tape: Tape) -> Any:
        return fake_amdsmi.make(tape)

    @classmethod
    def make_codec(cls) -> Codec:
        return binding.AmdSmiCodec()

    @classmethod
    def classify_error(cls, exc: BaseException) -> ErrorInfo | None:
        return binding.classify(exc)

    @classmethod
    def raise_recorded_error(cls, error: dict[str, Any]) -> None:
        fake_amdsmi.raise_recorded(error)

    def _open(self) -> Probe:
        try:
            self.call("amdsmi_init", self.lib.AmdSmiInitFlags.INIT_AMD_GPUS)
        except CallFailed as f:
            if f.reading.status is Status.NOT_RECORDED:
                return Probe(False, "amdsmi_init is not recorded in the fixture", self.install_hint)
            reason = f.reading.reason or ""
            code = C.STATUS_CODES.get(reason.split(" ")[0].removeprefix("AMDSMI_STATUS_").rstrip(":"))
            return Probe(False, binding.why_unavailable(code, reason), self.install_hint)
        lib_version = binding.library_version() if self.library.mode != "replay" else None
        try:
            handles = list(self.call("amdsmi_get_processor_handles"))
        except CallFailed:
            handles = []
        if handles:
            self._driver = self._field(self.read("amdsmi_get_gpu_driver_info", handles[0]), "driver_version",
                                       convert=_text)
        return Probe(True, None, None, lib_version, self._driver.get())

    def _close(self) -> None:
        try:
            self.call("amdsmi_shut_down")
        except CallFailed:
            pass

    # --- reading helpers -----------------------------------------------------------------------
    def _field(self, reading: Reading[Any], *path: str, convert: Callable[[Any], Any] | None = None) -> Reading[Any]:
        """One value inside a dict result, as a Reading: "N/A" is unsupported, a key the (replayed)
        result lacks is not recorded."""
        if not reading.ok:
            return reading
        value = reading.value
        where = ".".join(path)
        for key in path:
            if not isinstance(value, dict) or key not in value:
                if self.library.mode == "replay":
                    return missing(Status.NOT_RECORDED, self.name, reading.call,
                                   f"{where} is not in the recorded result")
                return missing(Status.UNSUPPORTED, self.name, reading.call, f"this amdsmi release gives no {where}")
            value = value[key]
        return self._value(value, reading.call, where, convert)

    def _value(self, value: Any, call: str | None, what: str, convert: Callable[[Any], Any] | None) -> Reading[Any]:
        if is_na(value):
            return missing(Status.UNSUPPORTED, self.name, call, f"amdsmi gave N/A for {what}")
        if convert is not None:
            try:
                value = convert(value)
            except _NotGiven as e:
                return missing(Status.UNSUPPORTED, self.name, call, f"{what}: {e}")
            except Exception as e:
                return missing(Status.ERROR, self.name, call, f"{what}: unexpected value {value!r}: {e}")
        if value is None:
            return missing(Status.UNSUPPORTED, self.name, call, f"amdsmi gave no {what}")
        return Reading(value, Status.OK, self.name, call)

    def _scalar(self, fn: str, h: Any, *args: Any, key: Any, convert: Callable[[Any], Any] | None = None,
                polled: bool = False) -> Reading[Any]:
        """A call whose whole result is one value (an int or a string), N/A included. ``polled``: a call
        made on every poll, not asked again once this GPU answered it unsupported (read_supported)."""
        r = (self.read_supported if polled else self.read)(fn, h, *args, device_key=key)
        if not r.ok:
            return r
        return self._value(r.value, fn, fn.removeprefix("amdsmi_get_"), convert)

    def _reader(self, h: Any, key: Any, *, polled: bool = False) -> Callable[..., Reading[Any]]:
        """``rd(fn, *args)``: a Reading of ``fn(h, *args)``. ``polled``: calls made on every poll, not
        asked again once this GPU answered them unsupported (Backend.read_supported)."""
        read = self.read_supported if polled else self.read

        def rd(fn: str, *args: Any) -> Reading[Any]:
            return read(fn, h, *args, device_key=key)
        return rd

    # --- devices -------------------------------------------------------------------------------
    def _processor_handles(self) -> list[Any]:
        try:
            return list(self.call("amdsmi_get_processor_handles"))
        except CallFailed as f:
            raise BackendUnavailable(f"amdsmi_get_processor_handles failed: {f.reading.reason}") from None

    def _devices(self) -> list[Device]:
        handles = self._processor_handles()
        singles = [(h, self._static(i, h)) for i, h in enumerate(handles)]
        groups: dict[Any, list[tuple[Any, Device, int]]] = {}
        order: list[Any] = []
        for i, (h, (dev, part_id)) in enumerate(singles):
            bus = dev.pci.bus_id.get()
            partitioned = dev.capabilities.compute_partition_mode.get("SPX") != "SPX"
            group = (bus.rsplit(".", 1)[0] if partitioned and bus else f"#{i}")
            if group not in groups:
                groups[group] = []
                order.append(group)
            groups[group].append((h, dev, part_id if part_id is not None else len(groups[group])))
        out: list[Device] = []
        self._handles = {}
        for group in order:
            members = sorted(groups[group], key=lambda m: m[2])
            h, dev, _ = members[0]
            index = len(out)
            self._handles[index] = h
            dev = replace(dev, index=index, partitions=self._partitions(dev, members))
            out.append(self._with_dynamic(dev))
        return out

    def _poll(self, previous: list[Device]) -> list[Device]:
        if any(d.index not in self._handles for d in previous):
            return self._devices()
        return [self._with_dynamic(d) for d in previous]

    def _static(self, index: int, h: Any) -> tuple[Device, int | None]:
        """Facts read once per session: identity, PCI, memory sizes, capabilities, limits."""
        key = ("h", index)
        rd = self._reader(h, key)
        f = self._field
        asic = rd("amdsmi_get_gpu_asic_info")
        board = rd("amdsmi_get_gpu_board_info")
        vbios = rd("amdsmi_get_gpu_vbios_info")
        driver = rd("amdsmi_get_gpu_driver_info")
        bdf = self._scalar("amdsmi_get_gpu_device_bdf", h, key=key, convert=lambda v: normalize_bus_id(_text(v)))
        pcie = rd("amdsmi_get_pcie_info")
        cap = rd("amdsmi_get_power_cap_info")
        ecc_mask = self._scalar("amdsmi_get_gpu_ecc_enabled", h, key=key, convert=to_int)
        compute_mode = self._scalar("amdsmi_get_gpu_compute_partition", h, key=key, convert=_mode)
        memory_mode = self._scalar("amdsmi_get_gpu_memory_partition", h, key=key, convert=_mode)
        gfx_clock = rd("amdsmi_get_clock_info", self.lib.AmdSmiClkType.GFX)
        mem_clock = rd("amdsmi_get_clock_info", self.lib.AmdSmiClkType.MEM)
        gfx = f(asic, "target_graphics_version", convert=_gfx)
        max_gen = f(pcie, "pcie_static", "pcie_interface_version", convert=to_int)
        if not max_gen.ok and max_gen.status is not Status.NOT_RECORDED:
            max_gen = f(pcie, "pcie_static", "max_pcie_speed", convert=_pcie_generation)
        pci = PciInfo(
            bus_id=bdf,
            vendor_id=f(asic, "vendor_id", convert=lambda v: hex_id(to_int(v))),
            device_id=f(asic, "device_id", convert=lambda v: hex_id(to_int(v))),
            subsystem_id=f(asic, "subsystem_id", convert=lambda v: hex_id(to_int(v))),
            subsystem_vendor_id=f(asic, "subvendor_id", convert=lambda v: hex_id(to_int(v))),
            revision_id=f(asic, "rev_id", convert=lambda v: hex_id(to_int(v), 2)),
        )
        caps = Capabilities(
            gfx_target=gfx,
            compute_units=f(asic, "num_compute_units", convert=to_int),
            ecc_enabled=ecc_mask.map(lambda m: m != 0),
            ecc_enabled_blocks=ecc_mask.map(C.ecc_block_names),
            compute_partition_mode=compute_mode,
            memory_partition_mode=memory_mode,
            pcie_max_generation=max_gen,
            pcie_max_width=f(pcie, "pcie_static", "max_pcie_width", convert=to_int),
            xgmi_links=self._xgmi_links(h, key),
            xgmi_hive_id=self._xgmi_hive(h, key),
            numa_node=self._scalar("amdsmi_topo_get_numa_node_number", h, key=key, convert=to_int),
            power_limit_w=f(cap, "power_cap", convert=_uw_to_w),
            power_limit_default_w=f(cap, "default_power_cap", convert=_uw_to_w),
            power_limit_min_w=f(cap, "min_power_cap", convert=_uw_to_w),
            power_limit_max_w=f(cap, "max_power_cap", convert=_uw_to_w),
            max_graphics_clock_mhz=f(gfx_clock, "max_clk", convert=to_int),
            max_sm_clock_mhz=not_applicable(self.name, None, "AMD GPUs have one graphics (shader) clock: "
                                                            "see max_graphics_clock_mhz"),
            max_memory_clock_mhz=f(mem_clock, "max_clk", convert=to_int),
        )
        memory = MemoryInfo(
            total_bytes=self._memory(h, key, "VRAM", "vram_total"),
            visible_total_bytes=self._scalar("amdsmi_get_gpu_memory_total", h, self.lib.AmdSmiMemoryType.VIS_VRAM,
                                             key=key, convert=to_int),
            gtt_total_bytes=self._scalar("amdsmi_get_gpu_memory_total", h, self.lib.AmdSmiMemoryType.GTT,
                                         key=key, convert=to_int),
        )
        temp = self.lib.AmdSmiTemperatureType
        metric = self.lib.AmdSmiTemperatureMetric
        health = HealthReadings(
            temperature_slowdown_c=self._scalar("amdsmi_get_temp_metric", h, temp.EDGE, metric.CRITICAL, key=key,
                                                convert=float),
            temperature_shutdown_c=self._scalar("amdsmi_get_temp_metric", h, temp.EDGE, metric.EMERGENCY, key=key,
                                                convert=float),
        )
        serial = f(board, "product_serial", convert=_text)
        if not serial.ok and serial.status is not Status.NOT_RECORDED:
            asic_serial = f(asic, "asic_serial", convert=_text)
            serial = asic_serial if asic_serial.ok else serial
        vbios_version = f(vbios, "part_number", convert=_text)
        if not vbios_version.ok:
            other = f(vbios, "version", convert=_text)
            vbios_version = other if other.ok else vbios_version
        part_id: int | None = None
        if compute_mode.ok and compute_mode.value != "SPX":
            part = f(rd("amdsmi_get_gpu_kfd_info"), "current_partition_id", convert=to_int)
            part_id = part.value if part.ok else None
        device = Device(
            vendor="amd", index=index,
            name=f(asic, "market_name", convert=_text),
            uuid=self._scalar("amdsmi_get_gpu_device_uuid", h, key=key, convert=_text),
            serial=serial,
            board_part_number=f(board, "model_number", convert=_text),
            board_product_name=f(board, "product_name", convert=_text),
            architecture=gfx.map(_architecture) if gfx.ok and _architecture(gfx.value) else (
                gfx if not gfx.ok else missing(Status.UNSUPPORTED, self.name, gfx.call,
                                               f"no architecture known for {gfx.value}")),
            vbios_version=vbios_version,
            driver_name=f(driver, "driver_name", convert=_text),
            driver_version=f(driver, "driver_version", convert=_text),
            pci=pci, memory=memory, capabilities=caps, health=health, sources=[self.name],
        )
        return device, part_id

    def _memory(self, h: Any, key: Any, kind: str, usage_key: str, *, used: bool = False) -> Reading[int]:
        """Bytes from amdsmi_get_gpu_memory_total/usage; where a fixture (or an old release) lacks that
        call, the MB figure of amdsmi_get_gpu_vram_usage (then, for the total, amdsmi_get_gpu_vram_info)."""
        fn = "amdsmi_get_gpu_memory_usage" if used else "amdsmi_get_gpu_memory_total"
        r = self._scalar(fn, h, getattr(self.lib.AmdSmiMemoryType, kind), key=key, convert=to_int, polled=used)
        if r.ok or not _function_missing(r) or kind != "VRAM":
            return r
        usage = (self.read_supported if used else self.read)("amdsmi_get_gpu_vram_usage", h, device_key=key)
        fallback = self._field(usage, usage_key, convert=lambda v: to_int(v) * MIB)
        if not fallback.ok and fallback.status is Status.NOT_RECORDED and not used:
            fallback = self._field(self.read("amdsmi_get_gpu_vram_info", h, device_key=key), "vram_size",
                                   convert=lambda v: to_int(v) * MIB)
        return fallback if fallback.ok or fallback.status is not Status.NOT_RECORDED else r

    def _xgmi_links(self, h: Any, key: Any) -> Reading[int]:
        """xGMI links: entries of amdsmi_get_link_metrics whose link_type is XGMI."""
        r = self.read("amdsmi_get_link_metrics", h, device_key=key)
        if not r.ok:
            if r.status is Status.UNSUPPORTED:
                return not_applicable(self.name, r.call, f"no xGMI on this device ({r.reason})")
            return r
        links = r.value.get("links") if isinstance(r.value, dict) else None
        count = self._field(r, "num_links", convert=to_int)
        if not count.ok or not isinstance(links, list):
            return count if not count.ok else missing(Status.NOT_RECORDED, self.name, r.call, "links not recorded")
        xgmi = C.AmdSmiLinkType.AMDSMI_LINK_TYPE_XGMI
        n = sum(1 for link in links[: count.value] if isinstance(link, dict) and _link_is(link.get("link_type"), xgmi))
        return ok(n, self.name, r.call)

    def _xgmi_hive(self, h: Any, key: Any) -> Reading[str]:
        r = self.read("amdsmi_get_xgmi_info", h, device_key=key)
        if not r.ok and r.status is Status.UNSUPPORTED:
            return not_applicable(self.name, r.call, f"no xGMI on this device ({r.reason})")
        hive = self._field(r, "xgmi_hive_id", convert=to_int)
        if hive.ok and hive.value == 0:
            return not_applicable(self.name, r.call, "not in an xGMI hive")
        return hive.map(lambda v: f"0x{v:x}")

    def _partitions(self, dev: Device, members: list[tuple[Any, Device, int]]) -> list[Partition]:
        """Compute partitions (one per amdsmi handle of this GPU) and memory (NUMA) partitions."""
        parts: list[Partition] = []
        bus = dev.pci.bus_id.get()
        mode = dev.capabilities.compute_partition_mode
        if mode.ok and mode.value != "SPX":
            for _h, member, part_id in members:
                parts.append(Partition(
                    kind="compute", index=int(part_id), parent_bus_id=bus, name=member.name,
                    profile=mode, uuid=member.uuid, memory_total_bytes=member.memory.total_bytes,
                    compute_units=member.capabilities.compute_units))
        mem_mode = dev.capabilities.memory_partition_mode
        if mem_mode.ok and mem_mode.value != "NPS1":
            count = int(re.sub(r"\D", "", str(mem_mode.value)) or "1")
            for i in range(count):
                parts.append(Partition(
                    kind="memory", index=i, parent_bus_id=bus, profile=mem_mode,
                    memory_total_bytes=missing(Status.UNSUPPORTED, self.name, mem_mode.call,
                                               "amdsmi does not report the size of each memory partition")))
        return parts

    def _with_dynamic(self, device: Device) -> Device:
        """Re-read what changes between polls: memory use, temperatures, power, activity, clocks, ECC,
        bad pages, throttling, PCIe link."""
        h = self._handles.get(device.index)
        if h is None:
            return device
        key = ("h", device.index)
        rd = self._reader(h, key, polled=True)
        f = self._field
        temp = self.lib.AmdSmiTemperatureType
        current = self.lib.AmdSmiTemperatureMetric.CURRENT
        used = self._memory(h, key, "VRAM", "vram_used", used=True)
        total = device.memory.total_bytes
        free: Reading[int] = used if not used.ok else total
        if total.ok and used.ok:
            free = ok(int(total.get()) - int(used.get()), self.name, used.call)
        memory = replace(device.memory, used_bytes=used, free_bytes=free)
        activity = rd("amdsmi_get_gpu_activity")
        ecc = rd("amdsmi_get_gpu_total_ecc_count")
        pcie = rd("amdsmi_get_pcie_info")
        gen = f(pcie, "pcie_metric", "pcie_speed", convert=_pcie_generation)
        width = f(pcie, "pcie_metric", "pcie_width", convert=to_int)
        caps = device.capabilities
        bad_pages = rd("amdsmi_get_gpu_bad_page_info")
        health = replace(
            device.health,
            temperature_c=self._scalar("amdsmi_get_temp_metric", h, temp.EDGE, current, key=key, convert=float,
                                       polled=True),
            temperature_hotspot_c=self._scalar("amdsmi_get_temp_metric", h, temp.HOTSPOT, current, key=key,
                                               convert=float, polled=True),
            temperature_memory_c=self._scalar("amdsmi_get_temp_metric", h, temp.VRAM, current, key=key,
                                              convert=float, polled=True),
            power_draw_w=self._power(rd("amdsmi_get_power_info")),
            power_limit_enforced_w=f(rd("amdsmi_get_power_cap_info"), "power_cap", convert=_uw_to_w),
            utilization_gpu_pct=f(activity, "gfx_activity", convert=float),
            utilization_memory_pct=f(activity, "umc_activity", convert=float),
            graphics_clock_mhz=f(rd("amdsmi_get_clock_info", self.lib.AmdSmiClkType.GFX), "clk", convert=to_int),
            sm_clock_mhz=not_applicable(self.name, None, "AMD GPUs have one graphics (shader) clock: "
                                                         "see graphics_clock_mhz"),
            memory_clock_mhz=f(rd("amdsmi_get_clock_info", self.lib.AmdSmiClkType.MEM), "clk", convert=to_int),
            fan_speed_pct=self._scalar("amdsmi_get_gpu_fan_speed", h, 0, key=key, polled=True,
                                       convert=lambda v: round(to_int(v) * 100.0 / C.MAX_FAN_SPEED, 1)),
            performance_state=not_applicable(self.name, None, "AMD GPUs have performance levels, not P-states"),
            ecc_corrected_volatile=self._ecc(f(ecc, "correctable_count", convert=to_int), caps),
            ecc_uncorrected_volatile=self._ecc(f(ecc, "uncorrectable_count", convert=to_int), caps),
            ecc_corrected_aggregate=not_applicable(self.name, ecc.call, "amdsmi keeps one count per boot: "
                                                                        "see ecc_corrected_volatile"),
            ecc_uncorrected_aggregate=not_applicable(self.name, ecc.call, "amdsmi keeps one count per boot: "
                                                                          "see ecc_uncorrected_volatile"),
            ecc_deferred=self._ecc(f(ecc, "deferred_count", convert=to_int), caps),
            retired_pages_single_bit=not_applicable(self.name, bad_pages.call,
                                                    "amdsmi does not give a page's retirement cause: every "
                                                    "retired page is counted in retired_pages_double_bit"),
            retired_pages_double_bit=bad_pages.map(lambda pages: sum(
                1 for p in pages if _page_status(p) in ("RESERVED", "UNRESERVABLE"))),
            retired_pages_pending=bad_pages.map(lambda pages: any(_page_status(p) == "PENDING" for p in pages)),
            throttle_reasons=self._throttle(rd("amdsmi_get_gpu_metrics_info")),
            pcie_current_generation=gen,
            pcie_current_width=width,
            pcie_link_degraded=_link_degraded(gen, width, caps, self.name),
            device_lost=ok(self.is_lost(key), self.name, None),
        )
        return replace(device, memory=memory, health=health)

    def _power(self, info: Reading[Any]) -> Reading[float]:
        """Socket power in W: socket_power (ROCm 6.1+), else current_socket_power (MI300), else
        average_socket_power (older GPUs and releases)."""
        last: Reading[Any] = info
        for key in ("socket_power", "current_socket_power", "average_socket_power"):
            r = self._field(info, key, convert=float)
            if r.ok:
                return r
            if last is info or r.status is not Status.NOT_RECORDED:
                last = r
        return last

    def _ecc(self, r: Reading[int], caps: Capabilities) -> Reading[int]:
        """ECC counts; not applicable while no block has ECC enabled."""
        if not r.ok and caps.ecc_enabled.ok and caps.ecc_enabled.value is False:
            return not_applicable(self.name, r.call, "ECC is disabled")
        return r

    def _throttle(self, metrics: Reading[Any]) -> Reading[list[str]]:
        """Throttle reasons from amdsmi_get_gpu_metrics_info: the driver's throttler bits where this
        release passes them (indep_throttle_status), else throttled or not (throttle_status)."""
        indep = self._field(metrics, "indep_throttle_status")
        if indep.ok and isinstance(indep.value, int) and not isinstance(indep.value, bool):
            return indep.map(C.decode_throttler_bits)
        status = self._field(metrics, "throttle_status")
        if not status.ok:
            return status
        v = status.value
        if isinstance(v, str):
            text = v.strip().upper()
            if text in ("THROTTLED", "UNTHROTTLED"):
                return ok(["throttled"] if text == "THROTTLED" else [], self.name, status.call)
            return missing(Status.ERROR, self.name, status.call, f"unexpected throttle_status {v!r}")
        return ok(["throttled"] if v else [], self.name, status.call)


def _architecture(gfx: str | None) -> str | None:
    for prefix, arch in _ARCHITECTURES:
        if gfx and gfx.startswith(prefix):
            return arch
    return None


def _uw_to_w(value: Any) -> float:
    """amdsmi_get_power_cap_info gives microwatts on bare-metal Linux."""
    return round(to_int(value) / 1e6, 3)


def _pcie_generation(value: Any) -> int:
    """PCIe generation from a link rate in MT/s (amdsmi_get_pcie_info: 16000 -> 4)."""
    rate = to_int(value)
    if rate in C.PCIE_GENERATION_BY_MTS:
        return C.PCIE_GENERATION_BY_MTS[rate]
    raise ValueError(f"no PCIe generation runs at {rate} MT/s")


def _link_is(value: Any, link_type: int) -> bool:
    if isinstance(value, str):
        return value.upper().endswith(C.AmdSmiLinkType(link_type).name.rsplit("_", 1)[1])
    return isinstance(value, int) and value == link_type


def _page_status(page: Any) -> str:
    status = page.get("status") if isinstance(page, dict) else None
    if isinstance(status, int) and not isinstance(status, bool):
        try:
            return C.AmdSmiMemoryPageStatus(status).name
        except ValueError:
            return f"UNKNOWN_{status}"
    return str(status).upper().removeprefix("AMDSMI_MEM_PAGE_STATUS_")


def _link_degraded(gen: Reading[int], width: Reading[int], caps: Capabilities, source: str) -> Reading[bool]:
    """Whether the PCIe link runs below the device's maximum generation or width (health policy
    decides what a generation drop at idle means)."""
    for cur, mx in ((gen, caps.pcie_max_generation), (width, caps.pcie_max_width)):
        if not cur.ok:
            return cur.map(bool)
        if not mx.ok:
            return mx.map(bool)
    return ok(bool(int(width.value or 0) < int(caps.pcie_max_width.value or 0)
                   or int(gen.value or 0) < int(caps.pcie_max_generation.value or 0)),
              source, "amdsmi_get_pcie_info")


def _function_missing(r: Reading[Any]) -> bool:
    """A failed Reading whose call is absent (from this amdsmi release, or from the fixture)."""
    return r.status is Status.NOT_RECORDED or (r.reason or "").endswith("FUNCTION_NOT_FOUND")

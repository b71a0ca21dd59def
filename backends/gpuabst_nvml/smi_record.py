"""One GPU's nvidia-smi record turned into the NVML calls NvmlBackend makes: shared by both importers.

``nvidia-smi -q -x`` (XML) and ``nvidia-smi -q`` (text) print the same values under other names.
Each importer subclasses :class:`SmiRecord` for one GPU of its format: it maps the logical names
used here (``"pci.device_id"``, ``"bar1.total"``, ``"temperature.gpu"``) to its own element or
key paths in :attr:`SmiRecord.paths` (several paths for a value renamed across driver versions:
the first one printed is read), implements the three tree primitives (``_find``, ``_get``,
``_has_children``) and the hooks where the formats really differ (memory sizes, clocks event
reasons, MIG devices, what a text bundle adds beside ``-q``). :func:`write_gpu` then records the
calls, in NvmlBackend's order and with its arguments, through :class:`~gpuabst_nvml.synth.NvmlWriter`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from gpuabst.fixtures.builder import struct
from gpuabst.pci import normalize_bus_id
from gpuabst_nvml import constants as C
from gpuabst_nvml import synth as S
from gpuabst_nvml.synth import NvmlWriter, Outcome, Unsupported

CLOCKS = ((C.CLOCK_GRAPHICS, "graphics"), (C.CLOCK_SM, "sm"), (C.CLOCK_MEM, "mem"))
"""nvmlDeviceGetClockInfo / nvmlDeviceGetMaxClockInfo clock types -> logical name suffix."""
THRESHOLDS = ((C.THRESHOLD_SLOWDOWN, "slowdown"), (C.THRESHOLD_SHUTDOWN, "shutdown"),
              (C.THRESHOLD_GPU_MAX, "gpu_max"))
"""nvmlDeviceGetTemperatureThreshold types -> ``temperature.<suffix>``."""
ECC_COUNTERS = ((C.VOLATILE_ECC, "volatile"), (C.AGGREGATE_ECC, "aggregate"))
ECC_PARTS = ("single_bit", "double_bit", "sram_correctable", "dram_correctable", "sram_uncorrectable",
             "sram_uncorrectable_parity", "sram_uncorrectable_secded", "dram_uncorrectable")
"""The ECC blocks and counts of both layouts (before driver 470: single/double bit with a total)."""
RETIREMENT_CAUSES = ((C.RETIREMENT_CAUSE_SINGLE_BIT, "single_bit"), (C.RETIREMENT_CAUSE_DOUBLE_BIT, "double_bit"))
MIG_ATTRIBUTES = ("multiprocessorCount", "sharedCopyEngineCount", "sharedEncoderCount", "sharedDecoderCount",
                  "sharedOfaCount", "sharedJpegCount")
"""c_nvmlDeviceAttributes fields of a MIG device -> ``mig.<field>``."""

Paths = Mapping[str, str | tuple[str, ...]]


def power_paths(sections: Iterable[str], *names: str) -> tuple[str, ...]:
    """The paths of a power value: each of ``names`` (newest first) under each power section."""
    return tuple(f"{section}/{n}" for section in sections for n in names)


def ecc_paths(section: str, counters: Mapping[str, str], parts: Mapping[str, str], total: str) -> dict[str, str]:
    """``ecc.<counter>``, ``ecc.<counter>.<part>`` and ``ecc.<counter>.<single|double>_bit.total``."""
    out: dict[str, str] = {}
    for counter, printed in counters.items():
        base = f"{section}/{printed}"
        out[f"ecc.{counter}"] = base
        for part, name in parts.items():
            out[f"ecc.{counter}.{part}"] = f"{base}/{name}"
        for part in ("single_bit", "double_bit"):
            out[f"ecc.{counter}.{part}.total"] = f"{base}/{parts[part]}/{total}"
    return out


class SmiRecord:
    """One GPU as nvidia-smi printed it, read by logical name; subclassed per format."""

    paths: Paths = {}
    """Logical name -> the path (or paths, first printed wins) of the value in this format."""
    label = "gpu"
    """How notes name a GPU (``gpu 0`` / ``GPU 0``)."""
    uuid_label = "uuid"
    """How notes name the GPU's UUID."""

    def __init__(self, index: int, masked: list[str]) -> None:
        self.index = index
        self.masked = masked
        """Notes on ids masked by the capture's contributor (and so not recorded)."""
        self.bus = ""
        """The PCI bus id as printed, once :meth:`bus_id` has read it."""

    # --- the format's tree: implemented per importer ---

    def _find(self, path: str, base: Any = None) -> Any:
        """The node at ``path`` under ``base`` (the GPU when None), or None."""
        raise NotImplementedError

    def _get(self, path: str, convert: Callable[[str], Any], base: Any = None) -> Outcome:
        """The parsed value at ``path`` (:func:`synth.parse`); a bad value raises the importer's error."""
        raise NotImplementedError

    def _has_children(self, node: Any) -> bool:
        raise NotImplementedError

    def _text(self, path: str) -> str | None:
        """The text printed at ``path`` (for notes), or None."""
        raise NotImplementedError

    def error(self, message: str) -> Exception:
        """The importer's exception for a problem in this GPU's record."""
        raise NotImplementedError

    def header_bus_id(self) -> str | None:
        """The bus id the GPU's header names (``<gpu id=..>``, ``GPU 00000000:..``)."""
        raise NotImplementedError

    def bus_id_error(self, text: str) -> Exception:
        raise NotImplementedError

    # --- reading by logical name ---

    def _alternatives(self, name: str) -> tuple[str, ...]:
        p = self.paths[name]
        return (p,) if isinstance(p, str) else p

    def path(self, name: str) -> str:
        """The path a logical name is read from (the first one printed, else the first one)."""
        alternatives = self._alternatives(name)
        return next((p for p in alternatives if self._find(p) is not None), alternatives[0])

    def has(self, name: str, base: Any = None) -> bool:
        """Whether the value (or section) ``name`` is printed."""
        return any(self._find(p, base) is not None for p in self._alternatives(name))

    def shape(self, name: str) -> str | None:
        """``"section"`` when ``name`` has entries under it, ``"value"`` when not, None when not printed."""
        node = self._find(self.path(name))
        if node is None:
            return None
        return "section" if self._has_children(node) else "value"

    def get(self, name: str, convert: Callable[[str], Any], base: Any = None) -> Outcome:
        """The value ``name`` parsed by ``convert``, from the first of its paths that is printed."""
        for p in self._alternatives(name):
            if self._find(p, base) is not None:
                return self._get(p, convert, base)
        return None

    def text(self, name: str) -> str | None:
        return self._text(self.path(name))

    # --- the per-format hooks ---

    def bus_id(self) -> str:
        """The PCI bus id as printed (nvmlDeviceGetPciInfo busId); the importer's error if it is not one."""
        text = self.text("pci.bus_id") or self.header_bus_id() or ""
        try:
            normalize_bus_id(text)
        except ValueError:
            raise self.bus_id_error(text) from None
        self.bus = text.strip()
        return self.bus

    def compute_capability(self) -> Outcome:
        """nvmlDeviceGetCudaComputeCapability (``-q`` does not print it; a text bundle's CSV does)."""
        return None

    def nvlink_states(self) -> list[int] | Unsupported | None:
        """nvmlDeviceGetNvLinkState per link (``nvidia-smi nvlink -s``), when the capture has it."""
        return None

    def memory_info(self) -> tuple[bool, Outcome]:
        """nvmlDeviceGetMemoryInfo: (whether it is the v2 call, its outcome)."""
        raise NotImplementedError

    def clock_reasons(self) -> tuple[str, Outcome] | None:
        """(the clocks event / throttle reasons call the capture's driver had, the reason mask)."""
        raise NotImplementedError

    def power_usage(self) -> Outcome:
        """nvmlDeviceGetPowerUsage."""
        return self.get("power.usage", S.milliwatts)

    def retired_addresses(self, cause: int) -> list[int]:
        """The retired page addresses listed for ``cause`` (read only when the count was printed)."""
        raise NotImplementedError

    def mig_slots(self) -> list[tuple[int, Any]]:
        """The MIG devices listed, by slot in order: (slot, the block ``-q`` printed for it or None)."""
        raise NotImplementedError

    def write_mig_identity(self, w: NvmlWriter, mh: dict[str, str], slot: int, block: Any,
                           parent_name: str | None) -> None:
        """A MIG device's nvmlDeviceGetName / nvmlDeviceGetUUID, from where the format prints them."""
        raise NotImplementedError

    def mig_memory(self, block: Any) -> Outcome:
        """nvmlDeviceGetMemoryInfo of a MIG device (the v1 call)."""
        raise NotImplementedError


# --- values built from several printed ones --------------------------------------------------

def memory_v1(total: Outcome, used: Outcome, free: Outcome) -> Outcome:
    """nvmlDeviceGetMemoryInfo (v1) with the sizes printed; not recorded without a total."""
    if total is None or isinstance(total, Unsupported):
        return total
    sizes = {"total": total, "used": used, "free": free}
    return struct("c_nvmlMemory_t", **{f: v for f, v in sizes.items() if isinstance(v, int)})


def memory_v2(total: int, reserved: int, used: int, free: int) -> dict[str, Any]:
    """nvmlDeviceGetMemoryInfo_v2's structure (``reserved`` is what the driver keeps)."""
    return struct("c_nvmlMemory_v2_t", version=C.MEMORY_V2, total=total, reserved=reserved, used=used, free=free)


def reason_mask(states: Iterable[tuple[Outcome, int | None, str]], error: Callable[[str], Exception]) -> Outcome:
    """The clocks event reason mask from (parsed state, NVML bit or None, where it was printed).

    Unrecorded when an active reason has no bit here (the mask would be wrong) or nothing was
    printed; unsupported when every state was a sentinel.
    """
    mask, seen, unsupported = 0, 0, None
    for state, bit, where in states:
        if isinstance(state, Unsupported):
            unsupported = state
            continue
        if state is None:
            continue
        if state not in ("Active", "Not Active"):
            raise error(f"{where}: expected Active or Not Active, got {state[:40]!r}")
        seen += 1
        if state == "Active":
            if bit is None:
                return None  # an active reason NVML's bits here do not name: leave the mask unrecorded
            mask |= bit
    if seen:
        return mask
    return unsupported


def pci_info(g: SmiRecord, bus: str) -> dict[str, Any]:
    """nvmlDeviceGetPciInfo: busId, domain/bus/device, pciDeviceId, pciSubSystemId as printed."""
    fields: dict[str, Any] = {"busId": bus}
    for field, name in (("domain", "pci.domain"), ("bus", "pci.bus"), ("device", "pci.device")):
        v = g.get(name, S.hex32)
        if isinstance(v, int):
            fields[field] = v
    for field, name in (("pciDeviceId", "pci.device_id"), ("pciSubSystemId", "pci.sub_system_id")):
        v = g.get(name, S.hex32)
        if not isinstance(v, int):
            continue
        if v >> 16 == 0:  # a zeroed device part (0x000010DE): masked by the contributor, not a real id
            g.masked.append(f"{g.label} {g.index} {g.path(name).split('/')[-1]} {g.text(name)!r} (zeroed)")
            continue
        fields[field] = v
    return struct("nvmlPciInfo_t", **fields)


def ecc_total(g: SmiRecord, counter: str, corrected: bool) -> Outcome:
    """nvmlDeviceGetTotalEccErrors for one (error type, counter), from either ECC layout.

    Before driver 470 nvidia-smi printed single and double bit blocks with a total; since then
    SRAM and DRAM counts (SRAM uncorrectable split into parity and SEC-DED from 590), whose sum is
    the total NVML gives.
    """
    base = f"ecc.{counter}"
    if not g.has(base):
        return None
    if g.has(f"{base}.single_bit") or g.has(f"{base}.double_bit"):
        return g.get(f"{base}.{'single_bit' if corrected else 'double_bit'}.total", S.integer)
    if corrected:
        names = ["sram_correctable", "dram_correctable"]
    else:
        names = ["sram_uncorrectable"] if g.has(f"{base}.sram_uncorrectable") else [
            "sram_uncorrectable_parity", "sram_uncorrectable_secded"]
        names.append("dram_uncorrectable")
    parts = [g.get(f"{base}.{n}", S.integer) for n in names]
    numbers = [p for p in parts if isinstance(p, int)]
    if numbers:
        return sum(numbers)  # a part printed N/A (no such memory) counts nothing
    return next((p for p in parts if isinstance(p, Unsupported)), None)


def retired_pages(g: SmiRecord, cause: int, name: str) -> Outcome:
    """nvmlDeviceGetRetiredPages for one cause: the addresses, when they agree with the count."""
    count = g.get(f"retired.{name}.count", S.integer)
    if not isinstance(count, int):
        return count
    addresses = g.retired_addresses(cause)
    if len(addresses) == count:
        return addresses
    return None  # the addresses were trimmed or masked: a list cannot be given without inventing it


def remapped_rows(g: SmiRecord) -> Outcome:
    """nvmlDeviceGetRemappedRows -> (corrected rows, uncorrected rows, pending, failure)."""
    shape = g.shape("remapped_rows")
    if shape is None:
        return None
    if shape == "value":
        return g.get("remapped_rows", S.integer)  # "N/A" -> unsupported
    return S.combine(g.get("remapped_rows.correctable", S.integer), g.get("remapped_rows.uncorrectable", S.integer),
                     g.get("remapped_rows.pending", S.yes_no), g.get("remapped_rows.failure", S.yes_no))


# --- the calls ---------------------------------------------------------------------------------

def write_gpu(w: NvmlWriter, g: SmiRecord, shared_uuids: set[str]) -> None:
    """Record one GPU's calls: NvmlBackend._static's, then _with_dynamic's, in its order."""
    bus = g.bus_id()
    h = w.device(g.index)
    put, get = w.put, g.get
    # --- NvmlBackend._static ---
    put("nvmlDeviceGetPciInfo", h, value=pci_info(g, bus))
    put("nvmlDeviceGetEccMode", h, value=S.combine(get("ecc_mode.current", S.enabled),
                                                   get("ecc_mode.pending", S.enabled)))
    mig = S.combine(get("mig_mode.current", S.enabled), get("mig_mode.pending", S.enabled))
    put("nvmlDeviceGetMigMode", h, value=mig)
    put("nvmlDeviceGetPowerManagementLimitConstraints", h,
        value=S.combine(get("power.min_limit", S.milliwatts), get("power.max_limit", S.milliwatts)))
    put("nvmlDeviceGetCudaComputeCapability", h, value=g.compute_capability())
    put("nvmlDeviceGetMaxPcieLinkGeneration", h, value=get("pcie.max_generation", S.link_generation))
    put("nvmlDeviceGetMaxPcieLinkWidth", h, value=get("pcie.max_width", S.link_width))
    links = g.nvlink_states()
    if isinstance(links, Unsupported):
        w.unsupported("nvmlDeviceGetNvLinkState", h, 0, note=links.note)
    elif links:
        for link, state in enumerate(links[:C.NVLINK_MAX_LINKS]):
            w.value("nvmlDeviceGetNvLinkState", h, link, value=state)
    put("nvmlDeviceGetComputeMode", h, value=get("compute_mode", S.compute_mode))
    put("nvmlDeviceGetPersistenceMode", h, value=get("persistence_mode", S.enabled))
    put("nvmlDeviceGetPowerManagementLimit", h, value=get("power.limit", S.milliwatts))
    put("nvmlDeviceGetPowerManagementDefaultLimit", h, value=get("power.default_limit", S.milliwatts))
    for clk, clock in CLOCKS:
        put("nvmlDeviceGetMaxClockInfo", h, clk, value=get(f"clocks.max.{clock}", S.mhz))
    bar1 = S.combine(*(get(f"bar1.{f}", S.mib_bytes) for f in ("total", "used", "free")))
    if isinstance(bar1, list):
        put("nvmlDeviceGetBAR1MemoryInfo", h, value=struct("c_nvmlBAR1Memory_t", bar1Total=bar1[0],
                                                           bar1Used=bar1[1], bar1Free=bar1[2]))
    else:
        put("nvmlDeviceGetBAR1MemoryInfo", h, value=bar1)
    for thr, threshold in THRESHOLDS:
        put("nvmlDeviceGetTemperatureThreshold", h, thr, value=get(f"temperature.{threshold}", S.celsius))
    name = get("name", S.name_text)
    put("nvmlDeviceGetName", h, value=name)
    uuid = get("uuid", S.name_text)
    if isinstance(uuid, str) and uuid in shared_uuids:
        g.masked.append(f"{g.label} {g.index} {g.uuid_label} (the same as another GPU's: masked, so not recorded)")
    else:
        put("nvmlDeviceGetUUID", h, value=uuid)
    put("nvmlDeviceGetSerial", h, value=get("serial", S.name_text))
    put("nvmlDeviceGetBoardPartNumber", h, value=get("board_part_number", S.name_text))
    put("nvmlDeviceGetBrand", h, value=get("brand", S.brand))
    put("nvmlDeviceGetArchitecture", h, value=get("architecture", S.architecture))
    put("nvmlDeviceGetVbiosVersion", h, value=get("vbios_version", S.version_text))
    if isinstance(mig, list) and mig[0] == C.FEATURE_ENABLED:
        write_mig(w, g, h, name if isinstance(name, str) else None)
    # --- NvmlBackend._with_dynamic ---
    v2, memory = g.memory_info()
    put("nvmlDeviceGetMemoryInfo", *((h, C.MEMORY_V2) if v2 else (h,)), value=memory)
    util = S.combine(get("utilization.gpu", S.percent), get("utilization.memory", S.percent))
    put("nvmlDeviceGetUtilizationRates", h,
        value=struct("c_nvmlUtilization_t", gpu=util[0], memory=util[1]) if isinstance(util, list) else util)
    reasons = g.clock_reasons()
    if reasons is not None:
        put(reasons[0], h, value=reasons[1])
    put("nvmlDeviceGetRemappedRows", h, value=remapped_rows(g))
    put("nvmlDeviceGetCurrPcieLinkGeneration", h, value=get("pcie.generation", S.link_generation))
    put("nvmlDeviceGetCurrPcieLinkWidth", h, value=get("pcie.width", S.link_width))
    put("nvmlDeviceGetTemperature", h, C.TEMPERATURE_GPU, value=get("temperature.gpu", S.celsius))
    put("nvmlDeviceGetPowerUsage", h, value=g.power_usage())
    put("nvmlDeviceGetEnforcedPowerLimit", h, value=get("power.enforced_limit", S.milliwatts))
    for clk, clock in CLOCKS:
        put("nvmlDeviceGetClockInfo", h, clk, value=get(f"clocks.{clock}", S.mhz))
    put("nvmlDeviceGetFanSpeed", h, value=get("fan_speed", S.percent))
    put("nvmlDeviceGetPerformanceState", h, value=get("performance_state", S.pstate))
    for et, corrected in ((C.MEMORY_ERROR_CORRECTED, True), (C.MEMORY_ERROR_UNCORRECTED, False)):
        for ct, counter in ECC_COUNTERS:
            put("nvmlDeviceGetTotalEccErrors", h, et, ct, value=ecc_total(g, counter, corrected))
    for cause, retirement in RETIREMENT_CAUSES:
        put("nvmlDeviceGetRetiredPages", h, cause, value=retired_pages(g, cause, retirement))
    put("nvmlDeviceGetRetiredPagesPendingStatus", h, value=get("retired.pending", S.yes_no))


def write_mig(w: NvmlWriter, g: SmiRecord, h: dict[str, str], parent_name: str | None) -> None:
    """MIG devices: nvmlDeviceGetMaxMigDeviceCount, then per listed slot its handle and values.

    nvidia-smi does not print the maximum count: the highest listed index + 1 is recorded (the
    backend reads the same devices; the empty slots NVML would add are not known).
    """
    slots = g.mig_slots()
    if not slots:
        return
    w.value("nvmlDeviceGetMaxMigDeviceCount", h, value=max(s for s, _ in slots) + 1,
            note="the highest MIG device index nvidia-smi listed + 1; the real maximum is not printed")
    for slot, block in slots:
        mh = w.mig_device(h, slot)
        g.write_mig_identity(w, mh, slot, block, parent_name)
        if block is None:
            continue
        w.put("nvmlDeviceGetGpuInstanceId", mh, value=g.get("mig.gpu_instance_id", S.integer, block))
        w.put("nvmlDeviceGetComputeInstanceId", mh, value=g.get("mig.compute_instance_id", S.integer, block))
        w.put("nvmlDeviceGetMemoryInfo", mh, value=g.mig_memory(block))
        attrs: dict[str, Any] = {}
        for field in MIG_ATTRIBUTES:
            v = g.get(f"mig.{field}", S.integer, block)
            if isinstance(v, int):
                attrs[field] = v
        if "multiprocessorCount" in attrs:
            w.value("nvmlDeviceGetAttributes", mh, value=struct("c_nvmlDeviceAttributes", **attrs))

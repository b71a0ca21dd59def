"""``gpuabst import nvidia-smi-xml``: ``nvidia-smi -q -x`` output turned into an NVML fixture.

Each value nvidia-smi printed becomes the NVML call NvmlBackend makes for it, with the same
arguments; a value the XML does not hold is not recorded (it replays as ``not_recorded``), and
"N/A" / "[Not Supported]" become NVML_ERROR_NOT_SUPPORTED. docs/importers/nvidia-smi-xml.md lists
which element feeds which call.

The XML is untrusted input: the DOCTYPE (with any inline DTD) is cut out before parsing and never
fetched, any ENTITY declaration is refused, the size and nesting depth are capped, and every
problem is an ImportFormatError naming the file.

Several files: each file is one run of nvidia-smi on one machine. Given several, they must be
the same machine (the same GPUs at the same bus ids); the fixture then replays the first file on
``snapshot()`` and each later file on the next ``poll()``. Files from different machines are
refused: a fixture is one machine.
"""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from typing import Any

from gpuabst import __version__
from gpuabst.errors import ImportFormatError
from gpuabst.fixtures.builder import FixtureBuilder, struct
from gpuabst.fixtures.format import Fixture
from gpuabst.pci import normalize_bus_id
from gpuabst_nvml import constants as C
from gpuabst_nvml import synth as S
from gpuabst_nvml.synth import NvmlWriter, Unsupported

TOOL = "nvidia-smi -q -x"
MAX_BYTES = 32 * 1024 * 1024
"""Largest file accepted (a 16-GPU capture with process lists is a few MiB)."""
MAX_DEPTH = 32
"""Deepest element nesting accepted (nvidia-smi nests about 7 levels)."""
MAX_GPUS = 1024


CLOCKS = ((C.CLOCK_GRAPHICS, "graphics_clock"), (C.CLOCK_SM, "sm_clock"), (C.CLOCK_MEM, "mem_clock"))
THRESHOLDS = ((C.THRESHOLD_SLOWDOWN, "gpu_temp_slow_threshold"),
              (C.THRESHOLD_SHUTDOWN, "gpu_temp_max_threshold"),
              (C.THRESHOLD_GPU_MAX, "gpu_temp_max_gpu_threshold"))
MIG_ATTRIBUTES = (("multiprocessorCount", "multiprocessor_count"), ("sharedCopyEngineCount", "copy_engine_count"),
                  ("sharedEncoderCount", "encoder_count"), ("sharedDecoderCount", "decoder_count"),
                  ("sharedOfaCount", "ofa_count"), ("sharedJpegCount", "jpg_count"))


class _Fail(Exception):
    """A problem in one file, before the file name is added."""


# --- reading the file safely ---------------------------------------------------------------------

def _decode(raw: bytes) -> str:
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):  # PowerShell's `>` writes UTF-16 with a BOM
        try:
            return raw.decode("utf-16")
        except UnicodeDecodeError as e:
            raise _Fail(f"not valid UTF-16 text ({e.reason} at byte {e.start})") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise _Fail(f"not UTF-8 text ({e.reason} at byte {e.start}); not nvidia-smi -q -x output") from None


def _strip_doctype(text: str) -> tuple[str, str | None]:
    """The text without its DOCTYPE declaration, and the DTD it names (``v12``, ``inline`` or None).

    Refuses entity declarations anywhere: nvidia-smi never writes them, and they are how
    billion-laughs and external-entity attacks work.
    """
    if re.search(r"<!ENTITY", text, flags=re.IGNORECASE):
        raise _Fail("refusing an XML ENTITY declaration (nvidia-smi never writes one)")
    start = text.find("<!DOCTYPE")
    if start < 0:
        if re.search(r"<!DOCTYPE", text, flags=re.IGNORECASE):
            raise _Fail("malformed DOCTYPE declaration")
        return text, None
    if text.find("<!DOCTYPE", start + 1) >= 0:
        raise _Fail("more than one DOCTYPE declaration")
    i, depth, quote = start + len("<!DOCTYPE"), 0, ""
    while i < len(text):
        c = text[i]
        if not quote and c == "<" and text.startswith("<!--", i):  # a comment may hold ] and >
            end = text.find("-->", i + 4)
            if end < 0:
                raise _Fail("truncated DOCTYPE declaration (unclosed comment)")
            i = end + 3
            continue
        if quote:
            if c == quote:
                quote = ""
        elif c in "\"'":
            quote = c
        elif c == "[":
            depth += 1
        elif c == "]":
            depth -= 1
        elif c == ">" and depth <= 0:
            break
        i += 1
    else:
        raise _Fail("truncated DOCTYPE declaration")
    decl = text[start:i + 1]
    m = re.search(r"nvsmi_device_(v\d+)\.dtd", decl)
    dtd = "inline" if "[" in decl else (m.group(1) if m else "unknown")
    return text[:start] + text[i + 1:], dtd


def _parse_xml(text: str) -> ET.Element:
    """Parse with expat through a pull parser, stopping as soon as nesting gets too deep."""
    parser: ET.XMLPullParser[ET.Element] = ET.XMLPullParser(events=("start", "end"))
    depth = 0
    root: ET.Element | None = None
    try:
        for pos in range(0, max(len(text), 1), 65536):
            parser.feed(text[pos:pos + 65536])
            for event, elem in parser.read_events():  # type: ignore[misc]
                if event == "start":
                    depth += 1
                    if root is None:
                        root = elem  # type: ignore[assignment]
                    if depth > MAX_DEPTH:
                        raise _Fail(f"elements nested deeper than {MAX_DEPTH} levels")
                else:
                    depth -= 1
        parser.close()
        for _ in parser.read_events():
            pass
    except ET.ParseError as e:
        truncated = "no element found" in str(e) or "unclosed token" in str(e)
        what = "truncated" if truncated else "not well-formed"
        raise _Fail(f"{what} XML ({e})") from None
    if root is None:
        raise _Fail("no XML element found")
    return root


def read_log(path: str) -> tuple[ET.Element, str | None]:
    """The ``<nvidia_smi_log>`` root of a file, and its DTD version; ImportFormatError otherwise."""
    name = os.path.basename(path)
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_BYTES + 1)
    except OSError as e:
        raise ImportFormatError(f"{path}: cannot read: {e.strerror or e}") from None
    try:
        if len(raw) > MAX_BYTES:
            raise _Fail(f"larger than {MAX_BYTES // (1024 * 1024)} MiB; not nvidia-smi -q -x output")
        if not raw.strip():
            raise _Fail("empty file")
        text, dtd = _strip_doctype(_decode(raw))
        root = _parse_xml(text)
        if root.tag != "nvidia_smi_log":
            raise _Fail(f"root element is <{root.tag[:40]}>, not <nvidia_smi_log>: not nvidia-smi -q -x")
    except _Fail as e:
        raise ImportFormatError(f"{name}: {e}") from None
    return root, dtd


# --- one GPU -------------------------------------------------------------------------------------

class _Gpu:
    """Reads one ``<gpu>`` element; ``get`` parses a value, naming the element in errors."""

    def __init__(self, el: ET.Element, index: int) -> None:
        self.el = el
        self.index = index

    def text(self, path: str, base: ET.Element | None = None) -> str | None:
        node = (self.el if base is None else base).find(path)
        if node is None:
            return None
        if len(node):  # has child elements: no scalar value here
            return None
        return node.text or ""

    def get(self, path: str, convert: Callable[[str], Any], base: ET.Element | None = None) -> Any:
        try:
            return S.parse(self.text(path, base), convert)
        except ValueError as e:
            raise _Fail(f"gpu {self.index} <{path}>: {e}") from None

    def first(self, paths: Sequence[str], convert: Callable[[str], Any]) -> Any:
        """The first of several element spellings (renamed across schema versions) that exists."""
        for p in paths:
            if self.el.find(p) is not None:
                return self.get(p, convert)
        return None


def _bus_id(g: _Gpu) -> str:
    text = g.text("pci/pci_bus_id") or g.el.get("id") or ""
    try:
        normalize_bus_id(text)
    except ValueError:
        raise _Fail(f"gpu {g.index}: no valid PCI bus id (id={text[:40]!r})") from None
    return text.strip()


def _pci(g: _Gpu, bus: str, masked: list[str]) -> dict[str, Any]:
    """nvmlDeviceGetPciInfo: busId, domain/bus/device, pciDeviceId, pciSubSystemId as printed."""
    fields: dict[str, Any] = {"busId": bus}
    for field, path in (("domain", "pci/pci_domain"), ("bus", "pci/pci_bus"), ("device", "pci/pci_device")):
        v = g.get(path, S.hex32)
        if isinstance(v, int):
            fields[field] = v
    for field, path in (("pciDeviceId", "pci/pci_device_id"), ("pciSubSystemId", "pci/pci_sub_system_id")):
        v = g.get(path, S.hex32)
        if not isinstance(v, int):
            continue
        if v >> 16 == 0:  # a zeroed device part (000000DE): masked by the contributor, not a real id
            masked.append(f"gpu {g.index} {path.split('/')[-1]} {g.text(path)!r} (zeroed)")
            continue
        fields[field] = v
    return struct("nvmlPciInfo_t", **fields)


def _power(g: _Gpu, *names: str) -> Any:
    for section in ("gpu_power_readings", "power_readings"):
        for n in names:
            if g.el.find(f"{section}/{n}") is not None:
                return g.get(f"{section}/{n}", S.milliwatts)
    return None


def _reasons(g: _Gpu) -> tuple[str, Any] | None:
    """The clocks event (throttle) reason mask, under the NVML call the driver of the capture had."""
    for section, prefix, fn in (
            ("clocks_event_reasons", "clocks_event_reason_", "nvmlDeviceGetCurrentClocksEventReasons"),
            ("clocks_throttle_reasons", "clocks_throttle_reason_",
             "nvmlDeviceGetCurrentClocksThrottleReasons")):
        sec = g.el.find(section)
        if sec is None:
            continue
        mask, seen, unsupported = 0, 0, None
        for child in sec:
            if not child.tag.startswith(prefix):
                continue
            state = g.get(".", lambda t: t, base=child)
            if isinstance(state, Unsupported):
                unsupported = state
                continue
            if state not in ("Active", "Not Active"):
                if state is None:
                    continue
                raise _Fail(f"gpu {g.index} <{section}/{child.tag}>: expected Active or Not Active, "
                            f"got {state[:40]!r}")
            seen += 1
            bit = S.CLOCK_EVENT_BITS.get(child.tag[len(prefix):])
            if state == "Active":
                if bit is None:
                    return None  # an active reason NVML's bits here do not name: leave the mask unrecorded
                mask |= bit
        if seen:
            return fn, mask
        if unsupported is not None:
            return fn, unsupported
        return None
    return None


def _ecc_total(g: _Gpu, counter: str, corrected: bool) -> Any:
    """nvmlDeviceGetTotalEccErrors for one (error type, counter) from either ECC layout."""
    base = g.el.find(f"ecc_errors/{counter}")
    if base is None:
        return None
    if base.find("single_bit") is not None or base.find("double_bit") is not None:  # before v11
        return g.get(f"ecc_errors/{counter}/{'single_bit' if corrected else 'double_bit'}/total", S.integer)
    if corrected:
        names = ["sram_correctable", "dram_correctable"]
    else:
        sram = ["sram_uncorrectable"] if base.find("sram_uncorrectable") is not None else [
            "sram_uncorrectable_parity", "sram_uncorrectable_secded"]
        names = [*sram, "dram_uncorrectable"]
    parts = [g.get(f"ecc_errors/{counter}/{n}", S.integer) for n in names]
    numbers = [p for p in parts if isinstance(p, int)]
    if numbers:
        return sum(numbers)  # a part printed N/A (no such memory) counts nothing
    return next((p for p in parts if isinstance(p, Unsupported)), None)


def _retired(g: _Gpu, section: str) -> Any:
    """nvmlDeviceGetRetiredPages for one cause: the addresses, when they agree with the count."""
    sec = g.el.find(f"retired_pages/{section}")
    if sec is None:
        return None
    count = g.get(f"retired_pages/{section}/retired_count", S.integer)
    if not isinstance(count, int):
        return count
    addresses: list[int] = []
    for node in sec.iter():
        if node.tag in ("retired_page_address", "retired_page_addresses") and not len(node):
            v = g.get(".", S.hex64, base=node)
            if isinstance(v, int):
                addresses.append(v)
    if len(addresses) == count:
        return addresses
    return None  # the addresses were trimmed or masked: a list cannot be given without inventing it


def _remapped(g: _Gpu) -> Any:
    """nvmlDeviceGetRemappedRows -> (corrected rows, uncorrected rows, pending, failure)."""
    node = g.el.find("remapped_rows")
    if node is None:
        return None
    if not len(node):
        return g.get("remapped_rows", S.integer)  # "N/A" -> unsupported
    return S.combine(g.get("remapped_rows/remapped_row_corr", S.integer),
                     g.get("remapped_rows/remapped_row_unc", S.integer),
                     g.get("remapped_rows/remapped_row_pending", S.yes_no),
                     g.get("remapped_rows/remapped_row_failure", S.yes_no))


def _memory(g: _Gpu, base: ET.Element | None, section: str, *, v2: bool) -> tuple[bool, Any]:
    """nvmlDeviceGetMemoryInfo: (whether it is the v2 call, its outcome).

    The v2 structure (with ``reserved``) only when nvidia-smi printed all four sizes; otherwise the
    v1 call with the sizes it printed, so a reserved size printed N/A does not hide the total.
    """
    vals = {f: g.get(f"{section}/{f}", S.mib_bytes, base) for f in ("total", "used", "free", "reserved")}
    if v2 and all(isinstance(v, int) for v in vals.values()):
        return True, struct("c_nvmlMemory_v2_t", version=C.MEMORY_V2, total=vals["total"],
                            reserved=vals["reserved"], used=vals["used"], free=vals["free"])
    if vals["total"] is None or isinstance(vals["total"], Unsupported):
        return False, vals["total"]
    fields = {f: vals[f] for f in ("total", "used", "free") if isinstance(vals[f], int)}
    return False, struct("c_nvmlMemory_t", **fields)


def _write_gpu(w: NvmlWriter, g: _Gpu, masked: list[str], shared_uuids: set[str]) -> None:
    bus = _bus_id(g)
    h = w.device(g.index)
    put = w.put
    # --- _static ---
    put("nvmlDeviceGetPciInfo", h, value=_pci(g, bus, masked))
    put("nvmlDeviceGetEccMode", h, value=S.combine(g.get("ecc_mode/current_ecc", S.enabled),
                                                   g.get("ecc_mode/pending_ecc", S.enabled)))
    mig = S.combine(g.get("mig_mode/current_mig", S.enabled), g.get("mig_mode/pending_mig", S.enabled))
    put("nvmlDeviceGetMigMode", h, value=mig)
    put("nvmlDeviceGetPowerManagementLimitConstraints", h,
        value=S.combine(_power(g, "min_power_limit"), _power(g, "max_power_limit")))
    put("nvmlDeviceGetMaxPcieLinkGeneration", h,
        value=g.get("pci/pci_gpu_link_info/pcie_gen/max_link_gen", S.link_generation))
    put("nvmlDeviceGetMaxPcieLinkWidth", h,
        value=g.get("pci/pci_gpu_link_info/link_widths/max_link_width", S.link_width))
    put("nvmlDeviceGetComputeMode", h, value=g.get("compute_mode", S.compute_mode))
    put("nvmlDeviceGetPersistenceMode", h, value=g.get("persistence_mode", S.enabled))
    # "Requested Power Limit" (v12+) is nvmlDeviceGetPowerManagementLimit; older files call it power_limit
    put("nvmlDeviceGetPowerManagementLimit", h, value=_power(g, "requested_power_limit", "power_limit"))
    put("nvmlDeviceGetPowerManagementDefaultLimit", h, value=_power(g, "default_power_limit"))
    for clk, tag in CLOCKS:
        put("nvmlDeviceGetMaxClockInfo", h, clk, value=g.get(f"max_clocks/{tag}", S.mhz))
    bar1 = {f: g.get(f"bar1_memory_usage/{f}", S.mib_bytes) for f in ("total", "used", "free")}
    bar1_all = S.combine(bar1["total"], bar1["used"], bar1["free"])
    if isinstance(bar1_all, list):
        put("nvmlDeviceGetBAR1MemoryInfo", h, value=struct("c_nvmlBAR1Memory_t", bar1Total=bar1_all[0],
                                                           bar1Used=bar1_all[1], bar1Free=bar1_all[2]))
    else:
        put("nvmlDeviceGetBAR1MemoryInfo", h, value=bar1_all)
    for thr, tag in THRESHOLDS:
        put("nvmlDeviceGetTemperatureThreshold", h, thr, value=g.get(f"temperature/{tag}", S.celsius))
    put("nvmlDeviceGetName", h, value=g.get("product_name", S.name_text))
    uuid = g.get("uuid", S.name_text)
    if isinstance(uuid, str) and uuid in shared_uuids:
        masked.append(f"gpu {g.index} uuid (the same as another GPU's: masked, so not recorded)")
    else:
        put("nvmlDeviceGetUUID", h, value=uuid)
    put("nvmlDeviceGetSerial", h, value=g.get("serial", S.name_text))
    # board_part_number from v12; before that nvidia-smi printed the board part number as gpu_part_number
    part = "board_part_number" if g.el.find("board_part_number") is not None else "gpu_part_number"
    put("nvmlDeviceGetBoardPartNumber", h, value=g.get(part, S.name_text))
    brand = g.get("product_brand", S.brand)
    put("nvmlDeviceGetBrand", h, value=brand)
    put("nvmlDeviceGetArchitecture", h, value=g.get("product_architecture", S.architecture))
    put("nvmlDeviceGetVbiosVersion", h, value=g.get("vbios_version", S.version_text))
    if isinstance(mig, list) and mig[0] == C.FEATURE_ENABLED:
        _write_mig(w, g, h)
    # --- _with_dynamic ---
    v2, memory = _memory(g, None, "fb_memory_usage", v2=True)
    put("nvmlDeviceGetMemoryInfo", *((h, C.MEMORY_V2) if v2 else (h,)), value=memory)
    util = S.combine(g.get("utilization/gpu_util", S.percent), g.get("utilization/memory_util", S.percent))
    put("nvmlDeviceGetUtilizationRates", h,
        value=struct("c_nvmlUtilization_t", gpu=util[0], memory=util[1]) if isinstance(util, list) else util)
    reasons = _reasons(g)
    if reasons is not None:
        put(reasons[0], h, value=reasons[1])
    put("nvmlDeviceGetRemappedRows", h, value=_remapped(g))
    put("nvmlDeviceGetCurrPcieLinkGeneration", h,
        value=g.get("pci/pci_gpu_link_info/pcie_gen/current_link_gen", S.link_generation))
    put("nvmlDeviceGetCurrPcieLinkWidth", h,
        value=g.get("pci/pci_gpu_link_info/link_widths/current_link_width", S.link_width))
    put("nvmlDeviceGetTemperature", h, C.TEMPERATURE_GPU, value=g.get("temperature/gpu_temp", S.celsius))
    # nvmlDeviceGetPowerUsage is what nvidia-smi printed as power_draw; from 570 as average_power_draw
    put("nvmlDeviceGetPowerUsage", h, value=_power(g, "power_draw", "average_power_draw"))
    put("nvmlDeviceGetEnforcedPowerLimit", h, value=_power(g, "enforced_power_limit", "current_power_limit"))
    for clk, tag in CLOCKS:
        put("nvmlDeviceGetClockInfo", h, clk, value=g.get(f"clocks/{tag}", S.mhz))
    put("nvmlDeviceGetFanSpeed", h, value=g.get("fan_speed", S.percent))
    put("nvmlDeviceGetPerformanceState", h, value=g.get("performance_state", S.pstate))
    for et, corrected in ((C.MEMORY_ERROR_CORRECTED, True), (C.MEMORY_ERROR_UNCORRECTED, False)):
        for ct, counter in ((C.VOLATILE_ECC, "volatile"), (C.AGGREGATE_ECC, "aggregate")):
            put("nvmlDeviceGetTotalEccErrors", h, et, ct, value=_ecc_total(g, counter, corrected))
    put("nvmlDeviceGetRetiredPages", h, C.RETIREMENT_CAUSE_SINGLE_BIT,
        value=_retired(g, "multiple_single_bit_retirement"))
    put("nvmlDeviceGetRetiredPages", h, C.RETIREMENT_CAUSE_DOUBLE_BIT,
        value=_retired(g, "double_bit_retirement"))
    # "Pending Page Blacklist" (v10) was renamed "Pending Page Retirement"
    pending = "pending_retirement" if g.el.find("retired_pages/pending_retirement") is not None else (
        "pending_blacklist")
    put("nvmlDeviceGetRetiredPagesPendingStatus", h, value=g.get(f"retired_pages/{pending}", S.yes_no))


def _write_mig(w: NvmlWriter, g: _Gpu, h: dict[str, str]) -> None:
    """MIG devices: nvmlDeviceGetMaxMigDeviceCount, then per listed slot its handle and values.

    nvidia-smi does not print the maximum count; the slots it listed are recorded, so the count is
    the highest listed index + 1 (the backend reads the same devices; empty slots beyond are unknown).
    The profile name (``1g.20gb``) is only in ``nvidia-smi -L``, so nvmlDeviceGetName is not recorded.
    """
    devices = g.el.findall("mig_devices/mig_device")
    slots: list[tuple[int, ET.Element]] = []
    for pos, md in enumerate(devices):
        idx = S.parse(md.findtext("index"), S.integer)
        slot = idx if isinstance(idx, int) else pos
        if slot > 64:
            raise _Fail(f"gpu {g.index} <mig_device> index {slot} is out of range")
        slots.append((slot, md))
    if not slots:
        return
    w.value("nvmlDeviceGetMaxMigDeviceCount", h, value=max(s for s, _ in slots) + 1,
            note="the highest MIG device index nvidia-smi listed + 1; the real maximum is not printed")
    for slot, md in sorted(slots, key=lambda x: x[0]):
        mh = w.mig_device(h, slot)
        w.put("nvmlDeviceGetUUID", mh, value=g.get("uuid", S.name_text, md))
        w.put("nvmlDeviceGetGpuInstanceId", mh, value=g.get("gpu_instance_id", S.integer, md))
        w.put("nvmlDeviceGetComputeInstanceId", mh, value=g.get("compute_instance_id", S.integer, md))
        w.put("nvmlDeviceGetMemoryInfo", mh, value=_memory(g, md, "fb_memory_usage", v2=False)[1])
        attrs: dict[str, Any] = {}
        for field, tag in MIG_ATTRIBUTES:
            v = g.get(f"device_attributes/shared/{tag}", S.integer, md)
            if isinstance(v, int):
                attrs[field] = v
        if "multiprocessorCount" in attrs:
            w.value("nvmlDeviceGetAttributes", mh, value=struct("c_nvmlDeviceAttributes", **attrs))


# --- files -> fixture ----------------------------------------------------------------------------

def _identity(root: ET.Element) -> list[tuple[str, str]]:
    return [((g.get("id") or "").strip().lower(), (g.findtext("uuid") or "").strip())
            for g in root.findall("gpu")]


def import_files(paths: list[str]) -> Fixture:
    """NVML fixture of the ``nvidia-smi -q -x`` output in ``paths`` (unscrubbed; the CLI scrubs it)."""
    if not paths:
        raise ImportFormatError("nvidia-smi-xml: no file given")
    logs = [(p, *read_log(p)) for p in paths]
    _, first_root, dtd = logs[0]
    names = [os.path.basename(p) for p in paths]
    for p, root, _ in logs[1:]:
        if _identity(root) != _identity(first_root):
            raise ImportFormatError(
                f"{os.path.basename(p)}: not the same machine as {names[0]} (other GPUs or bus ids); "
                "a fixture is one machine, so import each machine's file on its own")
    try:
        driver = _root_get(first_root, "driver_version", S.version_text)
    except _Fail as e:
        raise ImportFormatError(f"{names[0]}: {e}") from None
    provenance: dict[str, Any] = {
        "kind": "import", "tool": TOOL, "source": names[0] if len(names) == 1 else names,
        "driver_version": driver if isinstance(driver, str) else None, "dtd_version": dtd,
        "imported_by": f"gpuabst import nvidia-smi-xml {__version__}",
    }
    if first_root.findtext("timestamp"):
        provenance["timestamp"] = (first_root.findtext("timestamp") or "").strip()[:64]
    if len(names) > 1:
        provenance["note"] = "snapshot() replays the first file, each poll() the next one"
    b = FixtureBuilder(provenance)
    log = b.backend("nvml", library={"name": "nvidia-ml-py", "version": None},
                    driver_version=driver if isinstance(driver, str) else None)
    w = NvmlWriter(log)
    masked: list[str] = []
    for n, (path, root, _) in enumerate(logs):
        name = os.path.basename(path)
        try:
            _write_log(w, root, first=n == 0, masked=masked if n == 0 else [], provenance=b.provenance)
        except _Fail as e:
            raise ImportFormatError(f"{name}: {e}") from None
    if masked:
        b.provenance["masked"] = masked
    return b.build()


def _root_get(root: ET.Element, tag: str, convert: Callable[[str], Any]) -> Any:
    node = root.find(tag)
    if node is None or len(node):
        return None
    try:
        return S.parse(node.text or "", convert)
    except ValueError as e:
        raise _Fail(f"<{tag}>: {e}") from None


def _write_log(w: NvmlWriter, root: ET.Element, *, first: bool, masked: list[str],
               provenance: dict[str, Any]) -> None:
    gpus = root.findall("gpu")
    if len(gpus) > MAX_GPUS:
        raise _Fail(f"{len(gpus)} <gpu> elements; at most {MAX_GPUS} are accepted")
    if first:
        attached = _root_get(root, "attached_gpus", S.integer)
        if isinstance(attached, int) and attached > len(gpus):
            provenance["attached_gpus"] = attached
            provenance["trimmed"] = (f"attached_gpus says {attached} but the file holds {len(gpus)} <gpu> "
                                     f"element(s); only those are recorded")
        elif isinstance(attached, int) and attached < len(gpus):
            raise _Fail(f"attached_gpus says {attached} but the file holds {len(gpus)} <gpu> elements")
        w.system(driver_version=_root_get(root, "driver_version", S.version_text),
                 cuda_version=_root_get(root, "cuda_version", S.cuda_version), count=len(gpus))
    uuids = [(el.findtext("uuid") or "").strip() for el in gpus]
    shared = {u for u in uuids if u and uuids.count(u) > 1}
    for i, el in enumerate(gpus):
        _write_gpu(w, _Gpu(el, i), masked, shared)

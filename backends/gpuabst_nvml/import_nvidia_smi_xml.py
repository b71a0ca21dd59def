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
from collections.abc import Callable
from typing import Any

from gpuabst import __version__
from gpuabst.errors import ImportFormatError
from gpuabst.fixtures.builder import FixtureBuilder
from gpuabst.fixtures.format import Fixture
from gpuabst.safe_io import read_capped
from gpuabst_nvml import constants as C
from gpuabst_nvml import smi_record as R
from gpuabst_nvml import synth as S
from gpuabst_nvml.synth import NvmlWriter

TOOL = "nvidia-smi -q -x"
MAX_BYTES = 32 * 1024 * 1024
"""Largest file accepted (a 16-GPU capture with process lists is a few MiB)."""
MAX_DEPTH = 32
"""Deepest element nesting accepted (nvidia-smi nests about 7 levels)."""
MAX_GPUS = 1024



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
    raw = read_capped(path, MAX_BYTES, "nvidia-smi -q -x output", error=ImportFormatError, label=name)
    try:
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

_POWER = ("gpu_power_readings", "power_readings")
_ECC_PARTS = {part: part for part in R.ECC_PARTS}

PATHS: dict[str, str | tuple[str, ...]] = {
    "pci.bus_id": "pci/pci_bus_id", "pci.domain": "pci/pci_domain", "pci.bus": "pci/pci_bus",
    "pci.device": "pci/pci_device", "pci.device_id": "pci/pci_device_id",
    "pci.sub_system_id": "pci/pci_sub_system_id",
    "ecc_mode.current": "ecc_mode/current_ecc", "ecc_mode.pending": "ecc_mode/pending_ecc",
    "mig_mode.current": "mig_mode/current_mig", "mig_mode.pending": "mig_mode/pending_mig",
    "power.min_limit": R.power_paths(_POWER, "min_power_limit"),
    "power.max_limit": R.power_paths(_POWER, "max_power_limit"),
    # "Requested Power Limit" (v12+) is nvmlDeviceGetPowerManagementLimit; older files call it power_limit
    "power.limit": R.power_paths(_POWER, "requested_power_limit", "power_limit"),
    "power.default_limit": R.power_paths(_POWER, "default_power_limit"),
    # nvmlDeviceGetPowerUsage is what nvidia-smi printed as power_draw; from 570 as average_power_draw
    "power.usage": R.power_paths(_POWER, "power_draw", "average_power_draw"),
    "power.enforced_limit": R.power_paths(_POWER, "enforced_power_limit", "current_power_limit"),
    "pcie.max_generation": "pci/pci_gpu_link_info/pcie_gen/max_link_gen",
    "pcie.max_width": "pci/pci_gpu_link_info/link_widths/max_link_width",
    "pcie.generation": "pci/pci_gpu_link_info/pcie_gen/current_link_gen",
    "pcie.width": "pci/pci_gpu_link_info/link_widths/current_link_width",
    "compute_mode": "compute_mode", "persistence_mode": "persistence_mode",
    **{f"clocks.max.{c}": f"max_clocks/{c}_clock" for c in ("graphics", "sm", "mem")},
    **{f"clocks.{c}": f"clocks/{c}_clock" for c in ("graphics", "sm", "mem")},
    **{f"bar1.{f}": f"bar1_memory_usage/{f}" for f in ("total", "used", "free")},
    **{f"fb.{f}": f"fb_memory_usage/{f}" for f in ("total", "used", "free", "reserved")},
    "temperature.slowdown": "temperature/gpu_temp_slow_threshold",
    "temperature.shutdown": "temperature/gpu_temp_max_threshold",
    "temperature.gpu_max": "temperature/gpu_temp_max_gpu_threshold",
    "temperature.gpu": "temperature/gpu_temp",
    "name": "product_name", "uuid": "uuid", "serial": "serial",
    # board_part_number from v12; before that nvidia-smi printed the board part number as gpu_part_number
    "board_part_number": ("board_part_number", "gpu_part_number"),
    "brand": "product_brand", "architecture": "product_architecture", "vbios_version": "vbios_version",
    "utilization.gpu": "utilization/gpu_util", "utilization.memory": "utilization/memory_util",
    "remapped_rows": "remapped_rows", "remapped_rows.correctable": "remapped_rows/remapped_row_corr",
    "remapped_rows.uncorrectable": "remapped_rows/remapped_row_unc",
    "remapped_rows.pending": "remapped_rows/remapped_row_pending",
    "remapped_rows.failure": "remapped_rows/remapped_row_failure",
    "fan_speed": "fan_speed", "performance_state": "performance_state",
    **R.ecc_paths("ecc_errors", {"volatile": "volatile", "aggregate": "aggregate"}, _ECC_PARTS, "total"),
    "retired.single_bit.count": "retired_pages/multiple_single_bit_retirement/retired_count",
    "retired.double_bit.count": "retired_pages/double_bit_retirement/retired_count",
    # "Pending Page Blacklist" (v10) was renamed "Pending Page Retirement"
    "retired.pending": ("retired_pages/pending_retirement", "retired_pages/pending_blacklist"),
    # a MIG device's values, under its <mig_device>
    "mig.uuid": "uuid", "mig.gpu_instance_id": "gpu_instance_id", "mig.compute_instance_id": "compute_instance_id",
    "mig.multiprocessorCount": "device_attributes/shared/multiprocessor_count",
    "mig.sharedCopyEngineCount": "device_attributes/shared/copy_engine_count",
    "mig.sharedEncoderCount": "device_attributes/shared/encoder_count",
    "mig.sharedDecoderCount": "device_attributes/shared/decoder_count",
    "mig.sharedOfaCount": "device_attributes/shared/ofa_count",
    "mig.sharedJpegCount": "device_attributes/shared/jpg_count",
}
"""Logical name (smi_record) -> element path under ``<gpu>``; docs/importers/nvidia-smi-xml.md lists the calls."""

_RETIREMENT_SECTIONS = {C.RETIREMENT_CAUSE_SINGLE_BIT: "multiple_single_bit_retirement",
                        C.RETIREMENT_CAUSE_DOUBLE_BIT: "double_bit_retirement"}
_REASON_SECTIONS = (
    ("clocks_event_reasons", "clocks_event_reason_", "nvmlDeviceGetCurrentClocksEventReasons"),
    ("clocks_throttle_reasons", "clocks_throttle_reason_", "nvmlDeviceGetCurrentClocksThrottleReasons"))


class _Gpu(R.SmiRecord):
    """Reads one ``<gpu>`` element; a value it cannot parse is an error naming the element."""

    paths = PATHS

    def __init__(self, el: ET.Element, index: int, masked: list[str]) -> None:
        super().__init__(index, masked)
        self.el = el

    def _find(self, path: str, base: ET.Element | None = None) -> ET.Element | None:
        return (self.el if base is None else base).find(path)

    def _has_children(self, node: ET.Element) -> bool:
        return len(node) > 0

    def _text(self, path: str, base: ET.Element | None = None) -> str | None:
        node = self._find(path, base)
        if node is None:
            return None
        if len(node):  # has child elements: no scalar value here
            return None
        return node.text or ""

    def _get(self, path: str, convert: Callable[[str], Any], base: ET.Element | None = None) -> Any:
        try:
            return S.parse(self._text(path, base), convert)
        except ValueError as e:
            raise _Fail(f"gpu {self.index} <{path}>: {e}") from None

    def error(self, message: str) -> Exception:
        return _Fail(message)

    def header_bus_id(self) -> str | None:
        return self.el.get("id")

    def bus_id_error(self, text: str) -> Exception:
        return _Fail(f"gpu {self.index}: no valid PCI bus id (id={text[:40]!r})")

    def memory_info(self) -> tuple[bool, Any]:
        return self._memory(None, v2=True)

    def mig_memory(self, block: ET.Element) -> Any:
        return self._memory(block, v2=False)[1]

    def _memory(self, base: ET.Element | None, *, v2: bool) -> tuple[bool, Any]:
        """nvmlDeviceGetMemoryInfo: (whether it is the v2 call, its outcome).

        The v2 structure (with ``reserved``) only when nvidia-smi printed all four sizes; otherwise the
        v1 call with the sizes it printed, so a reserved size printed N/A does not hide the total.
        """
        vals = {f: self.get(f"fb.{f}", S.mib_bytes, base) for f in ("total", "used", "free", "reserved")}
        if v2 and all(isinstance(v, int) for v in vals.values()):
            return True, R.memory_v2(vals["total"], vals["reserved"], vals["used"], vals["free"])
        return False, R.memory_v1(vals["total"], vals["used"], vals["free"])

    def clock_reasons(self) -> tuple[str, Any] | None:
        """The clocks event (throttle) reason mask, under the NVML call the driver of the capture had."""
        for section, prefix, fn in _REASON_SECTIONS:
            sec = self.el.find(section)
            if sec is None:
                continue
            states = ((self._get(".", lambda t: t, child), S.CLOCK_EVENT_BITS.get(child.tag[len(prefix):]),
                       f"gpu {self.index} <{section}/{child.tag}>") for child in sec if child.tag.startswith(prefix))
            return fn, R.reason_mask(states, _Fail)
        return None

    def retired_addresses(self, cause: int) -> list[int]:
        """The ``retired_page_address`` elements of the cause's section."""
        sec = self.el.find(f"retired_pages/{_RETIREMENT_SECTIONS[cause]}")
        addresses: list[int] = []
        for node in sec.iter() if sec is not None else ():
            if node.tag in ("retired_page_address", "retired_page_addresses") and not len(node):
                v = self._get(".", S.hex64, base=node)
                if isinstance(v, int):
                    addresses.append(v)
        return addresses

    def mig_slots(self) -> list[tuple[int, ET.Element]]:
        """The ``<mig_device>`` elements by index. The profile name (``1g.20gb``) is only in
        ``nvidia-smi -L``, so a MIG device's nvmlDeviceGetName is not recorded."""
        slots: list[tuple[int, ET.Element]] = []
        for pos, md in enumerate(self.el.findall("mig_devices/mig_device")):
            try:
                idx = S.parse(md.findtext("index"), S.integer)
            except ValueError as e:
                raise _Fail(f"gpu {self.index} <mig_device><index>: {e}") from None
            slot = idx if isinstance(idx, int) else pos
            if slot > 64:
                raise _Fail(f"gpu {self.index} <mig_device> index {slot} is out of range")
            slots.append((slot, md))
        return sorted(slots, key=lambda x: x[0])

    def write_mig_identity(self, w: NvmlWriter, mh: dict[str, str], slot: int, block: ET.Element,
                           parent_name: str | None) -> None:
        w.put("nvmlDeviceGetUUID", mh, value=self.get("mig.uuid", S.name_text, block))


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
        R.write_gpu(w, _Gpu(el, i, masked), shared)

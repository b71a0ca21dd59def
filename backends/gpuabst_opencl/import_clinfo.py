"""``gpuabst import clinfo``: clinfo's text output turned into an OpenCL fixture.

Two layouts are read (docs/backends/opencl.md shows both):

* Oblomov's clinfo (``clinfo``, the one Linux distributions ship): ``Key<spaces>Value``, human sizes
  after the byte count (``1073610752 (1024MiB)``), devices starting at ``Device Name``;
* the AMD APP SDK's clinfo (also built for NVIDIA): ``Key:<tabs>Value``, devices starting at
  ``Device Type:`` with their ``Name:`` after the properties, vendor ids as ``10deh`` (or as a
  decimal ``Device ID``), topology as ``PCI[ B#4, D#0, F#0 ]``.

Output saved inside a markdown code fence is accepted. Each printed value becomes the recorded
answer of the query the backend makes (``device_info(d, "GLOBAL_MEM_SIZE")``); a value clinfo did not
print is not recorded, so it replays as ``not_recorded``, never as a guess.

A file cut off mid-device is imported, not refused: the cut device keeps the values printed before
the cut (the rest replay as ``not_recorded``) and the fixture's provenance says ``truncated`` and
where. A file that is not clinfo output at all raises :class:`ImportFormatError`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import Any

import attrs

from gpuabst.errors import ImportFormatError
from gpuabst.fixtures.builder import CallLog, FixtureBuilder, handle
from gpuabst.fixtures.format import Fixture
from gpuabst.safe_io import read_capped
from gpuabst_opencl import constants as C

MAX_BYTES = 16 * 1024 * 1024
OBLOMOV = "oblomov"
AMD_APP = "amd-app-sdk"


@attrs.define
class Line:
    indent: int
    key: str
    value: str
    number: int


@attrs.define
class Block:
    """A platform's or a device's top-level keys (first occurrence wins), with line numbers."""

    values: dict[str, str] = attrs.field(factory=dict)
    first_line: int = 0

    def add(self, line: Line) -> None:
        self.values.setdefault(line.key, line.value)


_AMD_LINE = re.compile(r"^(\s*)([^\t:][^\t:]*?)\s*:[ \t]*(.*?)\s*$")
_OBLOMOV_LINE = re.compile(r"^(\s*)(\S.*?)(?:\s{2,}|\t+)(\S.*?)\s*$")


def _read(path: str) -> str:
    data = read_capped(path, MAX_BYTES, "clinfo output", error=ImportFormatError)
    if b"\x00" in data[:4096]:
        raise ImportFormatError(f"{path}: binary data, not clinfo text output")
    return data.decode("utf-8", "replace")


def _unfence(text: str) -> list[str]:
    """The lines of clinfo output, without a surrounding markdown code fence."""
    return [ln for ln in text.splitlines() if not ln.lstrip().startswith("```")]


def _layout(lines: list[str], path: str) -> str:
    for ln in lines:
        s = ln.strip()
        if s.startswith("Number of platforms"):
            return AMD_APP if re.match(r"Number of platforms\s*:", s) else OBLOMOV
    raise ImportFormatError(f"{path}: not clinfo output (no 'Number of platforms' line)")


def _parse_lines(lines: list[str], layout: str) -> list[Line]:
    out: list[Line] = []
    for n, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        text = raw.replace("\r", "")
        m = (_AMD_LINE if layout == AMD_APP else _OBLOMOV_LINE).match(text)
        if m:
            indent, key, value = m.group(1), m.group(2).strip(), m.group(3).strip()
        else:
            stripped = text.strip()
            indent, key, value = text[: len(text) - len(text.lstrip())], stripped.rstrip(":").strip(), ""
        out.append(Line(len(indent.expandtabs(8)), key, value, n))
    return out


def _int(text: str) -> int:
    """``1073610752 (1024MiB)`` -> 1073610752, ``980MHz`` -> 980, ``0x10de`` / ``10deh`` -> 4318."""
    t = text.strip()
    m = re.match(r"^(0x[0-9a-fA-F]+)\b", t)
    if m:
        return int(m.group(1), 16)
    m = re.match(r"^([0-9a-fA-F]+)h\b", t)
    if m:
        return int(m.group(1), 16)
    m = re.match(r"^(\d+)", t)
    if not m:
        raise ValueError(f"not a number: {text!r}")
    return int(m.group(1))


def _bool(text: str) -> int:
    t = text.strip().lower()
    if t in ("yes", "1", "true"):
        return 1
    if t in ("no", "0", "false"):
        return 0
    raise ValueError(f"not a yes/no value: {text!r}")


def _device_type(text: str) -> int:
    bits = 0
    for word in re.split(r"[\s,|]+", text.strip().upper()):
        word = word.removeprefix("CL_DEVICE_TYPE_")
        if word.lower() in C.DEVICE_TYPE_CODES:
            bits |= C.DEVICE_TYPE_CODES[word.lower()]
    if not bits:
        raise ValueError(f"unknown device type {text!r}")
    return bits


def _pci(text: str) -> tuple[int, int, int, int]:
    """``PCI-E, 04:00.0`` / ``PCI-E, 0000:04:00.0`` / ``PCI[ B#4, D#0, F#0 ]`` -> (domain, bus, dev, fn)."""
    m = re.search(r"B#\s*(\d+)\s*,\s*D#\s*(\d+)\s*,\s*F#\s*(\d+)", text)
    if m:
        return 0, int(m.group(1)), int(m.group(2)), int(m.group(3))
    m = re.search(r"(?:([0-9a-fA-F]{4,8}):)?([0-9a-fA-F]{1,2}):([0-9a-fA-F]{1,2})\.([0-7])", text)
    if m:
        return int(m.group(1) or "0", 16), int(m.group(2), 16), int(m.group(3), 16), int(m.group(4))
    raise ValueError(f"not a PCI location: {text!r}")


def _str(text: str) -> str:
    return text.strip()


# clinfo key -> (query, parser), per layout
SIMPLE: dict[str, dict[str, tuple[str, Any]]] = {
    OBLOMOV: {
        "Device Name": ("NAME", _str), "Device Vendor": ("VENDOR", _str), "Device Vendor ID": ("VENDOR_ID", _int),
        "Device Version": ("VERSION", _str), "Driver Version": ("DRIVER_VERSION", _str),
        "Device OpenCL C Version": ("OPENCL_C_VERSION", _str), "Device Type": ("TYPE", _device_type),
        "Max compute units": ("MAX_COMPUTE_UNITS", _int), "Max clock frequency": ("MAX_CLOCK_FREQUENCY", _int),
        "Max work group size": ("MAX_WORK_GROUP_SIZE", _int), "Global memory size": ("GLOBAL_MEM_SIZE", _int),
        "Max memory allocation": ("MAX_MEM_ALLOC_SIZE", _int), "Local memory size": ("LOCAL_MEM_SIZE", _int),
        "Error Correction support": ("ERROR_CORRECTION_SUPPORT", _bool),
        "Unified memory for Host and Device": ("HOST_UNIFIED_MEMORY", _bool),
        "Device Extensions": ("EXTENSIONS", _str), "Board name (AMD)": ("BOARD_NAME_AMD", _str),
        "Device Board Name (AMD)": ("BOARD_NAME_AMD", _str), "Device PCI-e ID (AMD)": ("PCIE_ID_AMD", _int),
    },
    AMD_APP: {
        "Name": ("NAME", _str), "Vendor": ("VENDOR", _str), "Vendor ID": ("VENDOR_ID", _int),
        # NVIDIA's build of this clinfo prints CL_DEVICE_VENDOR_ID in decimal as "Device ID" (4318 = 0x10de)
        "Device ID": ("VENDOR_ID", _int),
        "Version": ("VERSION", _str), "Driver version": ("DRIVER_VERSION", _str),
        "Device OpenCL C version": ("OPENCL_C_VERSION", _str), "Device Type": ("TYPE", _device_type),
        "Max compute units": ("MAX_COMPUTE_UNITS", _int), "Max clock frequency": ("MAX_CLOCK_FREQUENCY", _int),
        "Max work group size": ("MAX_WORK_GROUP_SIZE", _int), "Global memory size": ("GLOBAL_MEM_SIZE", _int),
        "Max memory allocation": ("MAX_MEM_ALLOC_SIZE", _int), "Local memory size": ("LOCAL_MEM_SIZE", _int),
        "Error correction support": ("ERROR_CORRECTION_SUPPORT", _bool),
        "Unified memory for Host and Device": ("HOST_UNIFIED_MEMORY", _bool),
        "Extensions": ("EXTENSIONS", _str), "Board name": ("BOARD_NAME_AMD", _str),
    },
}
DEVICE_START = {OBLOMOV: "Device Name", AMD_APP: "Device Type"}
DEVICE_END = {OBLOMOV: "Device Extensions", AMD_APP: "Extensions"}
STOP_KEYS = ("NULL platform behavior", "ICD loader properties")


def _record_device(log: CallLog, h: dict[str, str], block: Block, layout: str, path: str) -> None:
    for key, (query, parse) in SIMPLE[layout].items():
        if key not in block.values:
            continue
        text = block.values[key]
        if query == "BOARD_NAME_AMD" and not text:
            continue  # AMD's CPU device prints an empty board name: nothing was answered
        try:
            value = parse(text)
        except ValueError as e:
            raise ImportFormatError(f"{path}: device at line {block.first_line}: {key}: {e}") from e
        log.result("device_info", h, query, value=value)
    for key, text in block.values.items():
        try:
            if key == "Device Topology (NV)":
                dom, bus, dev, fn = _pci(text)
                log.result("device_info", h, "PCI_BUS_ID_NV", value=bus)
                log.result("device_info", h, "PCI_SLOT_ID_NV", value=(dev << 3) | fn)
                if re.search(r"[0-9a-fA-F]{4,8}:[0-9a-fA-F]{1,2}:", text):
                    log.result("device_info", h, "PCI_DOMAIN_ID_NV", value=dom)
            elif key in ("Device Topology (AMD)", "Device Topology"):
                _, bus, dev, fn = _pci(text)
                log.result("device_info", h, "TOPOLOGY_AMD",
                           value={"type": C.TOPOLOGY_TYPE_PCIE_AMD, "bus": bus, "device": dev, "function": fn})
            elif key == "Device PCI bus info (KHR)":
                dom, bus, dev, fn = _pci(text)
                log.result("device_info", h, "PCI_BUS_INFO_KHR",
                           value={"pci_domain": dom, "pci_bus": bus, "pci_device": dev, "pci_function": fn})
            elif key == "Compute Capability (NV)":
                major, _, minor = text.strip().partition(".")
                log.result("device_info", h, "COMPUTE_CAPABILITY_MAJOR_NV", value=int(major))
                log.result("device_info", h, "COMPUTE_CAPABILITY_MINOR_NV", value=int(minor or 0))
        except ValueError as e:
            raise ImportFormatError(f"{path}: device at line {block.first_line}: {key}: {e}") from e


def parse(text: str, path: str) -> tuple[Fixture, str]:
    """The fixture for one clinfo output, and the layout it was in."""
    raw_lines = _unfence(text)
    layout = _layout(raw_lines, path)
    lines = _parse_lines(raw_lines, layout)
    start = next((i for i, ln in enumerate(lines) if ln.key == "Number of platforms"), None)
    if start is None:
        raise ImportFormatError(f"{path}: not clinfo output (no readable 'Number of platforms' line)")
    try:
        declared_platforms = _int(lines[start].value)
    except ValueError as e:
        raise ImportFormatError(f"{path}: line {lines[start].number}: Number of platforms: {e}") from e
    stop = next((i for i, ln in enumerate(lines) if ln.key in STOP_KEYS), len(lines))
    dev_heads = [i for i in range(start, stop) if lines[i].key == "Number of devices"]
    # platform attribute blocks: a block starts again when a key repeats
    attr_end = (dev_heads[0] - 1) if dev_heads else stop
    plat_blocks: list[Block] = []
    for ln in lines[start + 1:attr_end]:
        if ln.indent > 2:  # continuation rows ("Platform Extensions with Version") and sub-keys
            continue
        if not plat_blocks or ln.key in plat_blocks[-1].values:
            plat_blocks.append(Block(first_line=ln.number))
        plat_blocks[-1].add(ln)
    truncated: list[str] = []
    if len(plat_blocks) < declared_platforms:
        truncated.append(f"{declared_platforms} platforms declared, {len(plat_blocks)} listed")
    if not plat_blocks and declared_platforms:
        raise ImportFormatError(f"{path}: {declared_platforms} platforms declared but none listed "
                                "(the file is cut off before the first platform)")

    build = FixtureBuilder({})
    versions = "; ".join(f"{b.values.get('Platform Name', '?')}: {b.values['Platform Version']}"
                         for b in plat_blocks if "Platform Version" in b.values)
    log = build.backend("opencl", library={"name": "clinfo", "version": None}, driver_version=versions or None)
    if declared_platforms == 0:
        log.error("platforms", code=C.PLATFORM_NOT_FOUND_KHR, name=C.error_name(C.PLATFORM_NOT_FOUND_KHR),
                  note="clinfo printed 'Number of platforms 0'")
    else:
        log.result("platforms", value=[handle(f"p{i}") for i in range(len(plat_blocks))])
    for pi, b in enumerate(plat_blocks):
        ph = handle(f"p{pi}")
        for key, query in (("Platform Name", "NAME"), ("Platform Version", "VERSION"),
                           ("Platform Vendor", "VENDOR")):
            if key in b.values:
                log.result("platform_info", ph, query, value=b.values[key])

    seen_platforms: set[int] = set()
    for n, head in enumerate(dev_heads):
        name_line = lines[head - 1] if head > 0 and lines[head - 1].key == "Platform Name" else None
        found = _platform_index(plat_blocks, name_line.value if name_line else None, n, seen_platforms)
        if found is None:
            raise ImportFormatError(f"{path}: line {lines[head].number}: devices of an unlisted platform")
        pi = found
        seen_platforms.add(pi)
        try:
            declared = _int(lines[head].value)
        except ValueError as e:
            raise ImportFormatError(f"{path}: line {lines[head].number}: Number of devices: {e}") from e
        end = (dev_heads[n + 1] - 1) if n + 1 < len(dev_heads) else stop
        devices: list[Block] = []
        for ln in lines[head + 1:end]:
            if (ln.key == DEVICE_START[layout] and ln.indent <= 2) or not devices:
                devices.append(Block(first_line=ln.number))
            if ln.indent <= 2:
                devices[-1].add(ln)
        ph = handle(f"p{pi}")
        if declared == 0 and not devices:
            log.error("platform_devices", ph, code=C.DEVICE_NOT_FOUND, name=C.error_name(C.DEVICE_NOT_FOUND))
            continue
        log.result("platform_devices", ph, value=[handle(f"p{pi}.d{di}") for di in range(len(devices))])
        if len(devices) < declared:
            truncated.append(f"platform {pi}: {declared} devices declared, {len(devices)} listed")
        for di, block in enumerate(devices):
            if DEVICE_END[layout] not in block.values:
                truncated.append(f"platform {pi} device {di} (line {block.first_line}) ends before "
                                 f"'{DEVICE_END[layout]}'")
            _record_device(log, handle(f"p{pi}.d{di}"), block, layout, path)
    for pi in range(len(plat_blocks)):
        if pi not in seen_platforms:
            truncated.append(f"platform {pi}: no device list")
    fixture = build.build()
    provenance: dict[str, Any] = {
        "kind": "import", "tool": "gpuabst import clinfo", "source": os.path.basename(path),
        "format": f"clinfo text ({layout})",
    }
    if truncated:
        provenance["truncated"] = "; ".join(truncated)
    return attrs.evolve(fixture, provenance=provenance), layout


def _platform_index(blocks: list[Block], name: str | None, n: int, seen: set[int]) -> int | None:
    if name is not None:
        for i, b in enumerate(blocks):
            if b.values.get("Platform Name") == name and i not in seen:
                return i
    return n if n < len(blocks) else None


def import_files(paths: Sequence[str]) -> Fixture:
    """The ``clinfo`` importer: one clinfo text output (one machine) -> an unscrubbed fixture."""
    if len(paths) != 1:
        raise ImportFormatError(f"clinfo: give one clinfo output per fixture (one machine), got {len(paths)} files")
    path = str(paths[0])
    try:
        fixture, _ = parse(_read(path), path)
    except ImportFormatError:
        raise
    except (ValueError, IndexError, KeyError, RecursionError) as e:  # a layout this parser did not foresee
        raise ImportFormatError(f"{path}: cannot read this clinfo output: {type(e).__name__}: {e}") from e
    return fixture

"""Importer ``rocm-smi-json``: ``rocm-smi -a --json`` / ``--showallinfo --json`` output as an amdsmi fixture.

Every generation of rocm-smi's JSON is read: the top level holds ``cardN`` objects (one fixture
device each) and ``system``; every value is a string. Key spellings drift between releases and are
all accepted: ``GPU ID`` (up to 5.7) / ``Device ID`` (6.0+); ``Card series``/``Card model``
(lower case, before 6.1) / ``Card Series``/``Card Model`` (6.1+); ``vram Total Memory (B)`` (lower
case, old tools); values with a ``" \\t"`` prefix (old tools); clocks as ``"(1051Mhz)"`` or
``"808Mhz"``. Facts about the keys:

* before 6.1, ``Card model`` holds the PCI *subsystem* id (MI100: 0x0c34); from 6.1 ``Card Model``
  repeats the device id and ``Subsystem ID`` holds the subsystem id;
* ROCm 4.3 wrote the vendor id ``0x1002`` into ``Card series`` and ``Card model``: those are not a
  name or a subsystem id and are not recorded;
* ``Card series`` / ``Device Name`` is the pci.ids name of the device (``Navi 22 [Radeon RX 6700/6700 XT
  / 6800M]``), what amdsmi's ``market_name`` gives for such cards: it is recorded as is;
* ``Unique ID`` is what amdsmi reports as ``asic_serial``; ``Serial Number`` is the board serial;
  ``VBIOS version`` is the VBIOS part number.

Values rocm-smi did not print are not recorded (they replay as ``not_recorded``); values it printed as
"N/A" are recorded as amdsmi's "N/A" or as AMDSMI_STATUS_NOT_SUPPORTED.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gpuabst.errors import ImportFormatError
from gpuabst.fixtures.builder import FixtureBuilder
from gpuabst.fixtures.format import Fixture
from gpuabst.safe_io import read_capped
from gpuabst_amdsmi.synth import (
    CLK,
    MEM,
    METRIC,
    MIB,
    NA,
    TEMP,
    AmdGpu,
    hex_text,
    integer,
    is_na_text,
    number,
    scalar_or_na,
    text_value,
    whole,
    write_machine,
)

MAX_INPUT_BYTES = 16 * 1024 * 1024
AMD_VENDOR_NAME = "Advanced Micro Devices, Inc. [AMD/ATI]"
"""pci.ids' name for vendor 0x1002, which rocm-smi prints as ``Card vendor``."""

_CARD_RE = re.compile(r"^card(\d{1,9})$")
_LINK_RE = re.compile(r"(\d{1,4}(?:\.\d{1,4})?)\s*GT/s\s*x(\d{1,3})", re.I)

ASIC = ("amdsmi_get_gpu_asic_info",)
BOARD = ("amdsmi_get_gpu_board_info",)
VBIOS = ("amdsmi_get_gpu_vbios_info",)
DRIVER = ("amdsmi_get_gpu_driver_info",)
POWER = ("amdsmi_get_power_info",)
POWER_CAP = ("amdsmi_get_power_cap_info",)
ACTIVITY = ("amdsmi_get_gpu_activity",)
PCIE = ("amdsmi_get_pcie_info",)


def read_json(path: str) -> Any:
    """The parsed JSON of ``path``; ImportFormatError naming the file and the problem otherwise."""
    raw = read_capped(path, MAX_INPUT_BYTES, "rocm-smi or amd-smi JSON output", error=ImportFormatError)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ImportFormatError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from e
    if not text.strip():
        raise ImportFormatError(f"{path}: the file is empty")
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        hint = " (the file looks truncated)" if e.pos >= len(text.rstrip()) - 1 else ""
        raise ImportFormatError(f"{path}: not valid JSON at line {e.lineno} column {e.colno}: {e.msg}{hint}") from e
    except (RecursionError, ValueError) as e:
        raise ImportFormatError(f"{path}: JSON cannot be read: {e}") from e


def _get(card: dict[str, Any], *names: str) -> Any:
    """The first of ``names`` present, compared case-insensitively and ignoring a trailing colon."""
    folded = {k.strip().rstrip(":").lower(): v for k, v in card.items()}
    for n in names:
        v = folded.get(n.lower())
        if v is not None:
            if not isinstance(v, (str, int, float)) or isinstance(v, bool):
                raise ValueError(f"{n!r} should be a string, got {type(v).__name__}")
            return v.strip() if isinstance(v, str) else v
    return None


def _market_name(card: dict[str, Any]) -> str | None:
    for key in ("Device Name", "Card series"):
        v = _get(card, key)
        if v is None or is_na_text(v):
            continue
        if re.fullmatch(r"0x[0-9a-fA-F]+", str(v)):  # ROCm 4.3 wrote the vendor id here
            continue
        return text_value(v, key)
    return None


def _subsystem_id(card: dict[str, Any]) -> str | None:
    v = _get(card, "Subsystem ID")
    if v is not None:
        return hex_text(v, "Subsystem ID")
    exact = {k.strip(): val for k, val in card.items()}
    model = exact.get("Card model")  # lower-case m: before 6.1, the subsystem id
    if isinstance(model, str):
        sub = hex_text(model, "Card model")
        if sub is not None and sub != "0x1002":  # ROCm 4.3 wrote the vendor id here
            return sub
    return None


def card_to_gpu(card: dict[str, Any], driver_version: str | None) -> AmdGpu:
    """The amdsmi calls one ``cardN`` object stands for."""
    g = AmdGpu()
    g.put(ASIC, "market_name", _market_name(card))
    vendor = _get(card, "Card vendor")
    if vendor is not None and (vendor == AMD_VENDOR_NAME or vendor.lower() == "0x1002"):
        g.put(ASIC, "vendor_id", "0x1002")
        g.put(ASIC, "vendor_name", "Advanced Micro Devices Inc. [AMD/ATI]")
    g.put(ASIC, "device_id", hex_text(_get(card, "Device ID", "GPU ID"), "Device ID"))
    rev = _get(card, "Device Rev")
    if rev is not None and not is_na_text(rev):
        g.put(ASIC, "rev_id", f"0x{int(str(hex_text(rev, 'Device Rev')), 16):02x}")
    g.put(ASIC, "subsystem_id", _subsystem_id(card))
    unique = _get(card, "Unique ID")
    if unique is not None:
        g.put(ASIC, "asic_serial", text_value(unique, "Unique ID"))
    gfx = _get(card, "GFX Version")
    if gfx is not None:
        g.put(ASIC, "target_graphics_version", text_value(gfx, "GFX Version"))
    bus = _get(card, "PCI Bus")
    if bus is not None and not is_na_text(bus):
        g.scalar(("amdsmi_get_gpu_device_bdf",), str(text_value(bus, "PCI Bus")).lower())
    serial = _get(card, "Serial Number")
    if serial is not None:
        g.put(BOARD, "product_serial", text_value(serial, "Serial Number"))
    g.put(VBIOS, "part_number", text_value(_get(card, "VBIOS version"), "VBIOS version"))
    if driver_version:
        g.put(DRIVER, "driver_version", driver_version)
    for kind, key in ((MEM.VRAM, "VRAM Total Memory (B)"), (MEM.VIS_VRAM, "VIS_VRAM Total Memory (B)"),
                      (MEM.GTT, "GTT Total Memory (B)")):
        g.scalar(("amdsmi_get_gpu_memory_total", kind), scalar_or_na(_get(card, key), key))
    g.scalar(("amdsmi_get_gpu_memory_usage", MEM.VRAM),
             scalar_or_na(_get(card, "VRAM Total Used Memory (B)"), "VRAM Total Used Memory (B)"))
    for sensor, keys in ((TEMP.EDGE, ("Temperature (Sensor edge) (C)",)),
                         (TEMP.HOTSPOT, ("Temperature (Sensor junction) (C)",)),
                         (TEMP.VRAM, ("Temperature (Sensor memory) (C)", "Temperature (Sensor mem) (C)"))):
        g.scalar(("amdsmi_get_temp_metric", sensor, METRIC.CURRENT), scalar_or_na(_get(card, *keys), keys[0]))
    avg = _get(card, "Average Graphics Package Power (W)")
    if avg is not None:
        g.put(POWER, "average_socket_power", NA if is_na_text(avg) else number(avg, "Average Graphics Package Power"))
    cap = _get(card, "Max Graphics Package Power (W)")
    if cap is not None:
        watts = None if is_na_text(cap) else number(cap, "Max Graphics Package Power")
        g.put(POWER_CAP, "power_cap", NA if watts is None else whole(watts * 1_000_000, "Max Graphics Package Power"))
    use = _get(card, "GPU use (%)")
    if use is not None:
        g.put(ACTIVITY, "gfx_activity", NA if is_na_text(use) else integer(use, "GPU use (%)"))
    mem_use = _get(card, "GPU memory use (%)", "GPU Memory Read/Write Activity (%)")
    if mem_use is not None:
        g.put(ACTIVITY, "umc_activity", NA if is_na_text(mem_use) else integer(mem_use, "GPU memory use (%)"))
    for clk, key in ((CLK.GFX, "sclk clock speed"), (CLK.MEM, "mclk clock speed")):
        v = _get(card, key)
        if v is not None:
            g.put(("amdsmi_get_clock_info", clk), "clk", NA if is_na_text(v) else integer(v, key))
    fan = _get(card, "Fan speed (level)")
    if fan is not None:
        g.scalar(("amdsmi_get_gpu_fan_speed", 0), scalar_or_na(fan, "Fan speed (level)"))
    link = _get(card, "pcie clock level")
    if link is not None and not is_na_text(link):
        m = _LINK_RE.search(str(link))
        if not m:
            raise ValueError(f"'pcie clock level': expected a link such as '1 (16.0GT/s x16)', got {link!r}")
        g.put(PCIE, "pcie_metric.pcie_speed", round(float(m.group(1)) * 1000))
        g.put(PCIE, "pcie_metric.pcie_width", int(m.group(2)))
    numa = _get(card, "(Topology) Numa Node")
    if numa is not None:
        g.scalar(("amdsmi_topo_get_numa_node_number",), scalar_or_na(numa, "(Topology) Numa Node"))
    return g


def import_files(paths: Sequence[str]) -> Fixture:
    """One fixture from one ``rocm-smi --json`` capture (one machine)."""
    if len(paths) != 1:
        raise ImportFormatError(f"rocm-smi-json imports one capture (one machine) at a time, got {len(paths)} files")
    path = paths[0]
    data = read_json(path)
    if not isinstance(data, dict):
        raise ImportFormatError(f"{path}: rocm-smi JSON is an object of cardN entries, got {type(data).__name__}")
    cards = sorted(((int(m.group(1)), k) for k in data if (m := _CARD_RE.match(k))), key=lambda t: t[0])
    if not cards:
        raise ImportFormatError(f"{path}: no cardN entries: this is not rocm-smi --json output")
    raw_system = data.get("system")
    system: dict[str, Any] = raw_system if isinstance(raw_system, dict) else {}
    driver = None
    try:
        v = _get(system, "Driver version")
        driver = text_value(v, "Driver version") if v is not None and not is_na_text(v) else None
    except ValueError as e:
        raise ImportFormatError(f"{path}: system: {e}") from e
    gpus = []
    for _n, key in cards:
        card = data[key]
        if not isinstance(card, dict):
            raise ImportFormatError(f"{path}: {key} should be an object, got {type(card).__name__}")
        try:
            gpus.append(card_to_gpu(card, driver))
        except ValueError as e:
            raise ImportFormatError(f"{path}: {key}: {e}") from e
    builder = FixtureBuilder({
        "kind": "import", "tool": "rocm-smi --json", "source": Path(path).name,
        "note": "synthesised amdsmi calls from rocm-smi's JSON; what rocm-smi did not print is not recorded; "
                "memory sizes are bytes as printed, power caps converted from W to the uW amdsmi gives",
    })
    log = builder.backend("amdsmi", library={"name": "amdsmi", "version": None}, driver_version=driver)
    write_machine(log, gpus)
    return builder.build()


__all__ = ["MIB", "import_files", "read_json"]

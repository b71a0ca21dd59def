"""Importer ``amd-smi-json``: ``amd-smi static --json`` and ``amd-smi metric --json`` output as a fixture.

Both the bare-list form (``[{"gpu": 0, ...}]``, older ``metric``) and the wrapped form
(``{"gpu_data": [...]}``, newer releases) are read. Several files of one machine (a ``static`` and a
``metric`` capture) merge by their ``gpu`` index into one fixture; each ``gpu`` entry is one device.

Numbers are ``{"value": n, "unit": "MB"|"W"|"C"|"MHz"|"%"|"GT/s"}`` objects or plain values; "N/A"
means amdsmi had no value and is recorded as amdsmi's "N/A" (or AMDSMI_STATUS_NOT_SUPPORTED for a
scalar call). amd-smi prints memory in MB (MiB: it divides amdsmi's bytes by 1024*1024): VRAM total and
used are recorded under amdsmi_get_gpu_vram_usage, whose own unit is MB, and visible VRAM and GTT as
MB x 2^20 bytes under amdsmi_get_gpu_memory_total (exact to the MiB). Power limits in W are recorded as
the microwatts amdsmi_get_power_cap_info gives. What the output does not contain is not recorded.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from gpuabst.errors import ImportFormatError
from gpuabst.fixtures.builder import FixtureBuilder
from gpuabst.fixtures.format import Fixture
from gpuabst_amdsmi import constants as C
from gpuabst_amdsmi.import_rocm_smi_json import read_json
from gpuabst_amdsmi.synth import (
    CLK,
    MEM,
    METRIC,
    MIB,
    NA,
    TEMP,
    AmdGpu,
    NotSupported,
    finite,
    is_na_text,
    whole,
    write_machine,
)

_MB_PER: dict[str, float] = {"B": 1 / MIB, "KB": 1 / 1024, "MB": 1, "GB": 1024, "TB": 1024 * 1024}
MEM_BLOCKS: dict[str, int] = {b.name: b.value for b in C.AmdSmiGpuBlock if b.value}
_KNOWN_SECTIONS = {"asic", "bus", "vbios", "limit", "driver", "board", "ras", "partition", "numa", "vram",
                   "usage", "power", "clock", "temperature", "pcie", "ecc", "ecc_blocks", "fan", "mem_usage"}


def _value(x: Any, what: str, units: Mapping[str, float] | None = None) -> Any:
    """The number inside ``{"value": n, "unit": u}`` (scaled by ``units[u]`` when given), a plain
    number, "N/A", or None when absent; ValueError for anything else."""
    if x is None:
        return None
    if isinstance(x, str):
        if is_na_text(x):
            return NA
        m = re.fullmatch(r"\s*(-?\d+(?:\.\d+)?)\s*([A-Za-z/%]*)\s*", x)
        if not m:
            raise ValueError(f"{what}: expected a number, got {x[:40]!r}")
        x = {"value": float(m.group(1)), "unit": m.group(2) or None}
    if isinstance(x, dict):
        if "value" not in x:
            raise ValueError(f"{what}: expected {{value, unit}}, got keys {sorted(x)[:5]}")
        v, unit = x["value"], x.get("unit")
        if isinstance(v, str) and is_na_text(v):
            return NA
        if units is not None and unit is not None:
            if unit not in units:
                raise ValueError(f"{what}: unexpected unit {unit!r} (expected {', '.join(units)})")
            try:
                v = _num(v, what) * units[unit]
            except OverflowError:  # an int beyond a float's range
                raise ValueError(f"{what}: expected a number a tool could print, got {str(v)[:40]!r}") from None
        x = v
    return _num(x, what)


def _num(x: Any, what: str) -> float | int:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        raise ValueError(f"{what}: expected a number, got {str(x)[:40]!r}")
    return finite(x, what) if isinstance(x, float) else x


def _int(x: Any, what: str, units: Mapping[str, float] | None = None) -> Any:
    v = _value(x, what, units)
    return v if v is None or v == NA else whole(v, what)


def _text(x: Any, what: str) -> str | None:
    if x is None:
        return None
    if isinstance(x, (int, float)) and not isinstance(x, bool):
        return str(x)
    if not isinstance(x, str):
        raise ValueError(f"{what}: expected text, got {type(x).__name__}")
    return NA if is_na_text(x) else x.strip()


def _section(entry: dict[str, Any], name: str) -> dict[str, Any]:
    s = entry.get(name)
    if s is None or (isinstance(s, str) and is_na_text(s)):
        return {}
    if not isinstance(s, dict):
        raise ValueError(f"{name}: expected an object, got {type(s).__name__}")
    return s


def _scalar(g: AmdGpu, call: tuple[Any, ...], v: Any, what: str) -> None:
    if v is None:
        return
    g.scalar(call, NotSupported(f"amd-smi printed N/A for {what}") if v == NA else v)


def _pcie_generation(text: Any) -> Any:
    if text is None or isinstance(text, int):
        return text
    s = _text(text, "pcie_interface_version")
    if s == NA or s is None:
        return s
    m = re.fullmatch(r"(?i)\s*(?:gen\s*)?(\d)\s*", s)
    if not m:
        raise ValueError(f"pcie_interface_version: expected 'Gen N', got {s[:40]!r}")
    return int(m.group(1))


def entry_to_gpu(e: dict[str, Any], g: AmdGpu) -> None:
    """Add what one ``gpu`` entry of static or metric output says to ``g``."""
    asic = _section(e, "asic")
    for key in ("market_name", "vendor_id", "vendor_name", "subvendor_id", "device_id", "subsystem_id", "rev_id",
                "asic_serial", "target_graphics_version"):
        g.put(("amdsmi_get_gpu_asic_info",), key, _text(asic.get(key), f"asic.{key}"))
    g.put(("amdsmi_get_gpu_asic_info",), "num_compute_units",
          _int(asic.get("num_compute_units"), "asic.num_compute_units"))
    bus = _section(e, "bus")
    bdf = bus.get("bdf", e.get("bdf"))
    if bdf is not None:
        _scalar(g, ("amdsmi_get_gpu_device_bdf",), _text(bdf, "bus.bdf"), "bus.bdf")
    g.put(("amdsmi_get_pcie_info",), "pcie_static.max_pcie_width",
          _int(bus.get("max_pcie_width"), "bus.max_pcie_width"))
    g.put(("amdsmi_get_pcie_info",), "pcie_static.max_pcie_speed",
          _int(bus.get("max_pcie_speed"), "bus.max_pcie_speed", {"GT/s": 1000, "MT/s": 1}))
    g.put(("amdsmi_get_pcie_info",), "pcie_static.pcie_interface_version",
          _pcie_generation(bus.get("pcie_interface_version")))
    for key in ("name", "build_date", "part_number", "version"):
        g.put(("amdsmi_get_gpu_vbios_info",), key, _text(_section(e, "vbios").get(key), f"vbios.{key}"))
    driver = _section(e, "driver")
    g.put(("amdsmi_get_gpu_driver_info",), "driver_name", _text(driver.get("name"), "driver.name"))
    g.put(("amdsmi_get_gpu_driver_info",), "driver_version", _text(driver.get("version"), "driver.version"))
    for key in ("model_number", "product_serial", "fru_id", "product_name", "manufacturer_name"):
        g.put(("amdsmi_get_gpu_board_info",), key, _text(_section(e, "board").get(key), f"board.{key}"))
    limit = _section(e, "limit")
    watts = {"W": 1_000_000, "mW": 1000, "uW": 1}
    for src, dst in (("socket_power", "power_cap"), ("max_power", "max_power_cap"), ("min_power", "min_power_cap")):
        g.put(("amdsmi_get_power_cap_info",), dst, _int(limit.get(src), f"limit.{src}", watts))
    for src, sensor, metric in (("slowdown_edge_temperature", TEMP.EDGE, METRIC.CRITICAL),
                                ("shutdown_edge_temperature", TEMP.EDGE, METRIC.EMERGENCY)):
        _scalar(g, ("amdsmi_get_temp_metric", sensor, metric), _int(limit.get(src), f"limit.{src}"), src)
    blocks = _section(_section(e, "ras"), "ecc_block_state") if "ras" in e else {}
    if blocks:
        mask = 0
        for block, state in blocks.items():
            if isinstance(state, str) and state.upper() == "ENABLED" and block.upper() in MEM_BLOCKS:
                mask |= MEM_BLOCKS[block.upper()]
        g.scalar(("amdsmi_get_gpu_ecc_enabled",), mask)
    partition = _section(e, "partition")
    for src, fn in (("compute_partition", "amdsmi_get_gpu_compute_partition"),
                    ("memory_partition", "amdsmi_get_gpu_memory_partition")):
        _scalar(g, (fn,), _text(partition.get(src), f"partition.{src}"), f"partition.{src}")
    g.put(("amdsmi_get_gpu_kfd_info",), "current_partition_id",
          _int(partition.get("partition_id"), "partition.partition_id"))
    _scalar(g, ("amdsmi_topo_get_numa_node_number",), _int(_section(e, "numa").get("node"), "numa.node"), "numa.node")
    mb = _MB_PER
    vram = _section(e, "vram")
    g.put(("amdsmi_get_gpu_vram_info",), "vram_size", _int(vram.get("size"), "vram.size", mb))
    mem = _section(e, "mem_usage")
    g.put(("amdsmi_get_gpu_vram_usage",), "vram_total", _int(mem.get("total_vram"), "mem_usage.total_vram", mb))
    g.put(("amdsmi_get_gpu_vram_usage",), "vram_used", _int(mem.get("used_vram"), "mem_usage.used_vram", mb))
    for src, kind in (("total_visible_vram", MEM.VIS_VRAM), ("total_gtt", MEM.GTT)):
        v = _int(mem.get(src), f"mem_usage.{src}", mb)
        _scalar(g, ("amdsmi_get_gpu_memory_total", kind), v if v in (None, NA) else v * MIB, f"mem_usage.{src}")
    usage = _section(e, "usage")
    for key in ("gfx_activity", "umc_activity", "mm_activity"):
        g.put(("amdsmi_get_gpu_activity",), key, _int(usage.get(key), f"usage.{key}"))
    power = _section(e, "power")
    g.put(("amdsmi_get_power_info",), "socket_power", _int(power.get("socket_power"), "power.socket_power"))
    throttle = _text(power.get("throttle_status"), "power.throttle_status")
    if throttle is not None:
        if throttle not in (NA, "THROTTLED", "UNTHROTTLED"):
            raise ValueError(f"power.throttle_status: expected THROTTLED or UNTHROTTLED, got {throttle[:40]!r}")
        g.put(("amdsmi_get_gpu_metrics_info",), "throttle_status", NA if throttle == NA else throttle == "THROTTLED")
    clock = _section(e, "clock")
    for name, clk in (("gfx_0", CLK.GFX), ("mem_0", CLK.MEM)):
        c = _section(clock, name) if name in clock else {}
        for key in ("clk", "min_clk", "max_clk"):
            g.put(("amdsmi_get_clock_info", clk), key, _int(c.get(key), f"clock.{name}.{key}", {"MHz": 1, "GHz": 1000}))
    temp = _section(e, "temperature")
    for key, sensor in (("edge", TEMP.EDGE), ("hotspot", TEMP.HOTSPOT), ("mem", TEMP.VRAM)):
        _scalar(g, ("amdsmi_get_temp_metric", sensor, METRIC.CURRENT), _int(temp.get(key), f"temperature.{key}"),
                f"temperature.{key}")
    pcie = _section(e, "pcie")
    g.put(("amdsmi_get_pcie_info",), "pcie_metric.pcie_width", _int(pcie.get("width"), "pcie.width"))
    g.put(("amdsmi_get_pcie_info",), "pcie_metric.pcie_speed",
          _int(pcie.get("speed"), "pcie.speed", {"GT/s": 1000, "MT/s": 1}))
    ecc = _section(e, "ecc")
    for src, dst in (("total_correctable_count", "correctable_count"),
                     ("total_uncorrectable_count", "uncorrectable_count"),
                     ("total_deferred_count", "deferred_count")):
        g.put(("amdsmi_get_gpu_total_ecc_count",), dst, _int(ecc.get(src), f"ecc.{src}"))
    fan = _section(e, "fan")
    _scalar(g, ("amdsmi_get_gpu_fan_speed", 0), _int(fan.get("speed"), "fan.speed"), "fan.speed")


def _entries(data: Any, path: str) -> list[dict[str, Any]]:
    if isinstance(data, dict) and "gpu_data" in data:
        data = data["gpu_data"]
    if not isinstance(data, list):
        raise ImportFormatError(f"{path}: amd-smi JSON is a list of gpu entries or {{\"gpu_data\": [...]}}, "
                                f"got {type(data).__name__}")
    out = []
    for i, e in enumerate(data):
        if not isinstance(e, dict) or "gpu" not in e:
            raise ImportFormatError(f"{path}: entry {i} is not a gpu entry (an object with a \"gpu\" index)")
        if not _KNOWN_SECTIONS & set(e):
            raise ImportFormatError(f"{path}: entry {i} has none of the sections of amd-smi static or metric")
        out.append(e)
    return out


def import_files(paths: Sequence[str]) -> Fixture:
    """One fixture from one machine's ``amd-smi static --json`` and/or ``metric --json`` captures."""
    if not paths:
        raise ImportFormatError("amd-smi-json needs at least one file")
    gpus: dict[int, AmdGpu] = {}
    for path in paths:
        for i, e in enumerate(_entries(read_json(path), path)):
            index = e["gpu"]
            if isinstance(index, bool) or not isinstance(index, int) or index < 0:
                raise ImportFormatError(f"{path}: entry {i}: \"gpu\" should be a GPU index, got {index!r}")
            try:
                entry_to_gpu(e, gpus.setdefault(index, AmdGpu()))
            except ValueError as err:
                raise ImportFormatError(f"{path}: gpu {index}: {err}") from err
    if sorted(gpus) != list(range(len(gpus))):
        raise ImportFormatError(f"{', '.join(paths)}: gpu indexes {sorted(gpus)} are not 0..{len(gpus) - 1}")
    builder = FixtureBuilder({
        "kind": "import", "tool": "amd-smi --json", "source": ", ".join(Path(p).name for p in paths),
        "note": "synthesised amdsmi calls from amd-smi's JSON; what it did not print is not recorded; "
                "visible VRAM and GTT in MB recorded as MB x 2^20 bytes; power limits converted from W to uW",
    })
    driver = next((g.dicts.get(("amdsmi_get_gpu_driver_info",), {}).get("driver_version") for g in gpus.values()),
                  None)
    log = builder.backend("amdsmi", library={"name": "amdsmi", "version": None},
                          driver_version=driver if isinstance(driver, str) and driver != NA else None)
    write_machine(log, [gpus[i] for i in range(len(gpus))])
    return builder.build()

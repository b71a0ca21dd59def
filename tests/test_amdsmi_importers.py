"""The rocm-smi and amd-smi JSON importers: key drift across ROCm releases, both amd-smi forms, bad input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import captures, needs_captures

from gpuabst.cli.main import main
from gpuabst.errors import ImportFormatError
from gpuabst.fixtures.importers import run_importer
from gpuabst.machine import Machine
from gpuabst.model import Device
from gpuabst.reading import Status

MIB = 1 << 20


def _write(tmp_path: Path, data: Any, name: str = "capture.json") -> str:
    p = tmp_path / name
    p.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return str(p)


def _devices(kind: str, *paths: str) -> list[Device]:
    with Machine([run_importer(kind, list(paths))], backends=["amdsmi"]) as m:
        return m.snapshot().devices


ROCM_57 = {"card0": {"GPU ID": "0x738c", "Card series": "Arcturus GL-XL [Instinct MI100]", "Card model": "0x0c34",
                     "Card vendor": "Advanced Micro Devices, Inc. [AMD/ATI]", "VRAM Total Memory (B)": "34342961152",
                     "PCI Bus": "0000:1E:00.0", "Unique ID": "N/A", "sclk clock speed:": "(300Mhz)",
                     "pcie clock level": "0 (8.0GT/s x16)", "Temperature (Sensor edge) (C)": "31.0"},
           "system": {"Driver version": "6.2.4"}}


def test_rocm_57_keys(tmp_path: Path) -> None:
    d = _devices("rocm-smi-json", _write(tmp_path, ROCM_57))[0]
    assert (d.name.value, d.pci.device_id.value, d.pci.subsystem_id.value) == (
        "Arcturus GL-XL [Instinct MI100]", "0x738c", "0x0c34")
    assert (d.pci.bus_id.value, d.memory.total_bytes.value, d.driver_version.value) == (
        "0000:1e:00.0", 34342961152, "6.2.4")
    assert (d.health.graphics_clock_mhz.value, d.health.pcie_current_generation.value) == (300, 3)
    assert d.health.temperature_c.value == 31.0
    assert d.pci.revision_id.status is Status.NOT_RECORDED  # 5.7 prints no revision


def test_rocm_61_card_model_is_the_device_id_and_subsystem_has_its_own_key(tmp_path: Path) -> None:
    card = {"Device Name": "Navi 22 [Radeon RX 6700/6700 XT / 6800M]", "Device ID": "0x73df", "Device Rev": "0xc1",
            "Subsystem ID": "0x6601", "Card Series": "Navi 22 [Radeon RX 6700/6700 XT / 6800M]", "Card Model": "0x73df",
            "GFX Version": "gfx1031", "VRAM Total Memory (B)": "12868124672",
            "Average Graphics Package Power (W)": "N/A (Secondary die)"}
    d = _devices("rocm-smi-json", _write(tmp_path, {"card0": card, "system": {"Driver version": "6.3.6"}}))[0]
    assert (d.pci.subsystem_id.value, d.pci.revision_id.value, d.capabilities.gfx_target.value) == (
        "0x6601", "0xc1", "gfx1031")
    assert d.health.power_draw_w.status is Status.UNSUPPORTED


def test_rocm_43_vendor_id_in_name_and_model_is_not_taken_as_either(tmp_path: Path) -> None:
    card = {"GPU ID": "0x73df", "Card series": "0x1002", "Card model": "0x1002", "Card vendor": "0x1002",
            "VRAM Total Memory (B)": "12868124672", "Temperature (Sensor HBM 0) (C)": "N/A"}
    d = _devices("rocm-smi-json", _write(tmp_path, {"card0": card}))[0]
    assert d.name.status is Status.NOT_RECORDED and d.pci.subsystem_id.status is Status.NOT_RECORDED
    assert d.pci.vendor_id.value == "0x1002"


def test_old_tool_lower_case_memory_keys_and_tab_prefixes(tmp_path: Path) -> None:
    card = {"GPU ID": "0x66af", "Card series": "Vega 20", "vram Total Memory (B)": "17163091968",
            "vis_vram Total Memory (B)": "268435456", "gtt Total Memory (B)": "17163091968",
            "vram Total Used Memory (B)": "19095552", "SMC firmware version": " \t00.40.52.00",
            "Fan Speed (level)": "53", "sclk clock speed": "808Mhz", "Temperature (Sensor mem) (C)": "32.0"}
    d = _devices("rocm-smi-json", _write(tmp_path, {"card2": card, "card1": dict(card, **{"Fan Speed (level)": "51"})}))
    assert [x.health.fan_speed_pct.value for x in d] == [20.0, 20.8]  # card1 first, then card2
    assert (d[0].memory.total_bytes.value, d[0].memory.visible_total_bytes.value) == (17163091968, 268435456)
    assert d[0].memory.used_bytes.value == 19095552
    assert (d[0].health.graphics_clock_mhz.value, d[0].health.temperature_memory_c.value) == (808, 32.0)


AMD_SMI_STATIC = {"gpu": 0, "asic": {
    "market_name": "AMD Instinct MI300X", "vendor_id": "0x1002", "vendor_name": "Advanced Micro Devices Inc. [AMD/ATI]",
    "subvendor_id": "0x1002", "device_id": "0x74a1", "subsystem_id": "0x74a1", "rev_id": "0x00",
    "asic_serial": "0xA1B2C3D4E5F60718", "oam_id": 0, "num_compute_units": 304, "target_graphics_version": "gfx942"},
    "bus": {"bdf": "0000:0c:00.0", "max_pcie_width": 16, "max_pcie_speed": {"value": 32, "unit": "GT/s"},
            "pcie_interface_version": "Gen 5", "slot_type": "OAM"},
    "vbios": {"name": "AMD MI300X", "build_date": "2024/05/01", "part_number": "113-M3000100-102", "version": "N/A"},
    "limit": {"max_power": {"value": 750, "unit": "W"}, "min_power": {"value": 0, "unit": "W"},
              "socket_power": {"value": 750, "unit": "W"}, "slowdown_edge_temperature": "N/A",
              "shutdown_edge_temperature": "N/A"},
    "driver": {"name": "amdgpu", "version": "6.8.5"},
    "board": {"model_number": "102-G30211-0C", "product_serial": "692312001234", "fru_id": "N/A",
              "product_name": "AMD Instinct MI300X OAM", "manufacturer_name": "AMD"},
    "ras": {"ecc_block_state": {"UMC": "ENABLED", "GFX": "ENABLED", "SDMA": "DISABLED"}},
    "partition": {"compute_partition": "SPX", "memory_partition": "NPS1", "partition_id": 0},
    "numa": {"node": 0, "affinity": 0}, "vram": {"type": "HBM3", "size": {"value": 196592, "unit": "MB"}}}


def test_amd_smi_static_in_gpu_data_form(tmp_path: Path) -> None:
    d = _devices("amd-smi-json", _write(tmp_path, {"gpu_data": [AMD_SMI_STATIC]}))[0]
    assert (d.name.value, d.model.value, d.pci.device_id.value, d.pci.bus_id.value) == (
        "AMD Instinct MI300X", "mi300x", "0x74a1", "0000:0c:00.0")
    assert (d.capabilities.gfx_target.value, d.capabilities.compute_units.value) == ("gfx942", 304)
    assert (d.capabilities.pcie_max_generation.value, d.capabilities.pcie_max_width.value) == (5, 16)
    assert d.capabilities.ecc_enabled_blocks.value == ["UMC", "GFX"]
    assert (d.capabilities.power_limit_w.value, d.capabilities.power_limit_max_w.value) == (750.0, 750.0)
    assert d.memory.total_bytes.value == 196592 * MIB  # vram.size in MB, through amdsmi_get_gpu_vram_info
    assert d.health.temperature_slowdown_c.status is Status.UNSUPPORTED
    assert (d.capabilities.compute_partition_mode.value, d.capabilities.numa_node.value) == ("SPX", 0)
    assert str(d.serial.value).startswith("SCRUBBED-SERIAL-")  # scrubbed by default


def test_amd_smi_static_and_metric_of_one_machine_merge_by_gpu_index(tmp_path: Path) -> None:
    metric = [{"gpu": 0, "mem_usage": {"total_vram": {"value": 196592, "unit": "MB"},
                                       "used_vram": {"value": 283, "unit": "MB"}},
               "ecc": {"total_correctable_count": 4, "total_uncorrectable_count": 1, "total_deferred_count": 0},
               "temperature": {"edge": "N/A", "hotspot": {"value": 41, "unit": "C"}, "mem": {"value": 35, "unit": "C"}},
               "power": {"socket_power": {"value": 138, "unit": "W"}, "throttle_status": "UNTHROTTLED"}}]
    d = _devices("amd-smi-json", _write(tmp_path, [AMD_SMI_STATIC], "static.json"),
                 _write(tmp_path, metric, "metric.json"))[0]
    assert (d.name.value, d.memory.used_bytes.value) == ("AMD Instinct MI300X", 283 * MIB)
    assert (d.health.ecc_corrected_volatile.value, d.health.ecc_uncorrected_volatile.value) == (4, 1)
    assert (d.health.temperature_c.status, d.health.temperature_hotspot_c.value) == (Status.UNSUPPORTED, 41.0)
    assert (d.health.power_draw_w.value, d.health.throttle_reasons.value) == (138.0, [])


@pytest.mark.parametrize(("kind", "content", "words"), [
    ("rocm-smi-json", '{"card0": {"GPU ID": "0x738c", ', "not valid JSON at line 1"),
    ("rocm-smi-json", "", "the file is empty"),
    ("rocm-smi-json", "[1, 2]", "object of cardN entries"),
    ("rocm-smi-json", '{"system": {}}', "no cardN entries"),
    ("rocm-smi-json", '{"card0": "oops"}', "card0 should be an object"),
    ("rocm-smi-json", '{"card0": {"VRAM Total Memory (B)": "lots"}}', "card0: VRAM Total Memory (B)"),
    ("rocm-smi-json", '{"card0": {"GPU ID": "Arcturus"}}', "expected a 0x hex id"),
    ("rocm-smi-json", '{"card0": {"pcie clock level": "fast"}}', "pcie clock level"),
    ("rocm-smi-json", '{"card0": {"GPU ID": ["0x738c"]}}', "should be a string"),
    ("rocm-smi-json", '{"card' + "9" * 5000 + '": {}}', "no cardN entries"),
    ("rocm-smi-json", '{"card0": {"Temperature (Sensor edge) (C)": "1e40064"}}', "expected a number, got '1e40064'"),
    ("rocm-smi-json", '{"card0": {"Max Graphics Package Power (W)": "1e305"}}', "expected a finite number"),
    ("rocm-smi-json", '{"card0": {"GPU use (%)": 1e400}}', "expected a finite number"),
    ("amd-smi-json", '[{"gpu": 0, "usage": {"gfx_activity": {"value": 1e400, "unit": "%"}}}]', "finite number"),
    ("amd-smi-json", '[{"gpu": 0, "usage": {"gfx_activity": {"value": NaN, "unit": "%"}}}]', "finite number"),
    ("amd-smi-json", '[{"gpu": 0, "mem_usage": {"total_vram": {"value": 1' + "0" * 400 + ', "unit": "GB"}}}]',
     "a number a tool could print"),
    ("amd-smi-json", '{"gpu_data": 3}', "list of gpu entries"),
    ("amd-smi-json", '[{"asic": {}}]', "entry 0 is not a gpu entry"),
    ("amd-smi-json", '[{"gpu": 0, "hello": 1}]', "none of the sections"),
    ("amd-smi-json", '[{"gpu": "zero", "asic": {}}]', "should be a GPU index"),
    ("amd-smi-json", '[{"gpu": 1, "asic": {}}]', "are not 0..0"),
    ("amd-smi-json", '[{"gpu": 0, "mem_usage": {"total_vram": {"value": 5, "unit": "parsecs"}}}]', "unexpected unit"),
    ("amd-smi-json", '[{"gpu": 0, "power": {"throttle_status": "MAYBE"}}]', "throttle_status"),
    ("amd-smi-json", '[{"gpu": 0, "usage": {"gfx_activity": {"unit": "%"}}}]', "expected {value, unit}"),
    ("amd-smi-json", '[{"gpu": 0, "asic": "weird"}]', "asic: expected an object"),
    ("amd-smi-json", '[{"gpu": 0, "usage": {"gfx_activity": "lots"}}]', "usage.gfx_activity: expected a number, "
                                                                        "got 'lots'"),
    ("amd-smi-json", '[{"gpu": 0, "asic": {"num_compute_units": true}}]', "expected a number, got 'True'"),
    ("amd-smi-json", '[{"gpu": 0, "asic": {"market_name": ["MI300X"]}}]', "asic.market_name: expected text, got list"),
    ("amd-smi-json", '[{"gpu": 0, "bus": {"pcie_interface_version": "PCIe four"}}]', "expected 'Gen N', got "
                                                                                     "'PCIe four'"),
])
def test_malformed_input_names_the_file_and_the_problem(tmp_path: Path, kind: str, content: str, words: str) -> None:
    path = _write(tmp_path, content, "broken.json")
    with pytest.raises(ImportFormatError) as e:
        run_importer(kind, [path])
    assert str(e.value).startswith(path) or path in str(e.value)
    assert words in str(e.value)


def test_cli_import_error_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, '{"card0": {', "truncated.json")
    assert main(["import", "rocm-smi-json", path, "-o", str(tmp_path / "out.json")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "truncated.json" in err and "truncated" in err


def test_binary_or_missing_file(tmp_path: Path) -> None:
    p = tmp_path / "bin.json"
    p.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ImportFormatError, match="not UTF-8"):
        run_importer("amd-smi-json", [str(p)])
    with pytest.raises(ImportFormatError, match="cannot read"):
        run_importer("rocm-smi-json", [str(tmp_path / "absent.json")])


EXPECTED_COUNTS = {"mi100_rocm571": 6, "mi100_rocm602": 4, "rocm_smi.json": 2}


@needs_captures
@pytest.mark.parametrize("capture", captures("amd"), ids=lambda p: p.name)
def test_every_amd_capture_imports_and_replays(capture: Path) -> None:
    kind = "amd-smi-json" if capture.suffix == ".sample" else "rocm-smi-json"
    devices = _devices(kind, str(capture))
    want = next((n for k, n in EXPECTED_COUNTS.items() if k in capture.name), 1)
    assert len(devices) == want
    assert all(d.memory.total_bytes.ok and d.memory.total_bytes.get(0) > 8 << 30 for d in devices)


def test_amd_smi_numbers_printed_as_text_and_na_inside_a_value(tmp_path: Path) -> None:
    """Some amd-smi releases print ``"7 %"`` where others print ``{"value": 7, "unit": "%"}``, and put
    "N/A" inside the value object."""
    entry = {**AMD_SMI_STATIC, "usage": {"gfx_activity": "7 %", "umc_activity": {"value": "N/A", "unit": "%"}}}
    d = _devices("amd-smi-json", _write(tmp_path, [entry]))[0]
    assert d.health.utilization_gpu_pct.value == 7.0
    memory = d.health.utilization_memory_pct
    assert memory.status is Status.UNSUPPORTED and "N/A" in (memory.reason or "")


def test_amd_smi_import_needs_a_file() -> None:
    with pytest.raises(ImportFormatError, match="amd-smi-json needs at least one file"):
        run_importer("amd-smi-json", [])

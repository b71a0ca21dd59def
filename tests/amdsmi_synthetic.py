"""Synthetic amdsmi fixtures for tests: every call AmdSmiBackend makes, with plausible MI300X values.

Labelled ``synthetic`` in their provenance: they exercise what no AMD capture here covers (partitions,
ECC, bad pages, xGMI, every error status). Expected values in tests come from the numbers below.
"""

from __future__ import annotations

from typing import Any

from gpuabst_amdsmi import constants as C
from gpuabst_amdsmi.synth import CLK, MEM, METRIC, MIB, TEMP, AmdGpu, NotSupported, write_machine

from gpuabst.fixtures.builder import FixtureBuilder
from gpuabst.fixtures.format import Fixture

GIB = 1 << 30
VRAM = 192 * GIB


def mi300x(index: int, *, partition: int = 0, compute: str = "SPX", memory: str = "NPS1", bus: int | None = None,
           ecc_mask: int = int(C.AmdSmiGpuBlock.UMC | C.AmdSmiGpuBlock.GFX), uncorrectable: int = 0,
           bad_pages: list[dict[str, Any]] | None = None, vram: int = VRAM, cus: int = 304) -> AmdGpu:
    """One MI300X (or one compute partition of it) as amdsmi 7.0 answers."""
    g = AmdGpu()
    b = 0x0C + 0x10 * index if bus is None else bus
    g.dicts[("amdsmi_get_gpu_asic_info",)] = {
        "market_name": "AMD Instinct MI300X", "vendor_id": "0x1002",
        "vendor_name": "Advanced Micro Devices Inc. [AMD/ATI]",
        "subvendor_id": "0x1002", "device_id": "0x74a1", "rev_id": "0x00",
        "asic_serial": f"0x{0x5C4B000000000000 + index:016X}", "oam_id": index, "num_compute_units": cus,
        "target_graphics_version": "gfx942", "subsystem_id": "0x74a1",
    }
    g.scalars[("amdsmi_get_gpu_device_bdf",)] = f"0000:{b:02x}:00.{partition}"
    g.scalars[("amdsmi_get_gpu_device_uuid",)] = f"5c4b0000-0000-4000-8000-{index * 16 + partition:012x}"
    g.dicts[("amdsmi_get_gpu_board_info",)] = {
        "model_number": "102-G30211-0C", "product_serial": f"SCRUBBED-SERIAL-{index + 1:04d}", "fru_id": "N/A",
        "product_name": "AMD Instinct MI300X OAM", "manufacturer_name": "AMD"}
    g.dicts[("amdsmi_get_gpu_vbios_info",)] = {"name": "AMD MI300X_HW_SRIOV_CVS_1VF", "build_date": "2024/05/01 12:00",
                                                "part_number": "113-M3000100-102", "version": "022.040.003.043.000001"}
    g.dicts[("amdsmi_get_gpu_driver_info",)] = {"driver_name": "amdgpu", "driver_version": "6.8.5",
                                                 "driver_date": "2015/01/01 00:00"}
    g.dicts[("amdsmi_get_pcie_info",)] = {
        "pcie_static": {"max_pcie_width": 16, "max_pcie_speed": 32000, "pcie_interface_version": 5, "slot_type": "OAM"},
        "pcie_metric": {"pcie_width": 16, "pcie_speed": 32000, "pcie_bandwidth": 0, "pcie_replay_count": 0}}
    g.dicts[("amdsmi_get_power_cap_info",)] = {"power_cap": 750_000_000, "default_power_cap": 750_000_000,
                                                "dpm_cap": 0, "min_power_cap": 0, "max_power_cap": 750_000_000}
    g.scalars[("amdsmi_get_gpu_ecc_enabled",)] = ecc_mask
    g.scalars[("amdsmi_get_gpu_compute_partition",)] = compute
    g.scalars[("amdsmi_get_gpu_memory_partition",)] = memory
    g.dicts[("amdsmi_get_gpu_kfd_info",)] = {"kfd_id": 1000 + index, "node_id": 2 + index,
                                             "current_partition_id": partition}
    g.dicts[("amdsmi_get_clock_info", CLK.GFX)] = {"clk": 132, "min_clk": 500, "max_clk": 2100, "clk_locked": False,
                                                    "clk_deep_sleep": True}
    g.dicts[("amdsmi_get_clock_info", CLK.MEM)] = {"clk": 900, "min_clk": 900, "max_clk": 1300, "clk_locked": False,
                                                    "clk_deep_sleep": False}
    g.scalars[("amdsmi_get_gpu_memory_total", MEM.VRAM)] = vram
    g.scalars[("amdsmi_get_gpu_memory_total", MEM.VIS_VRAM)] = vram
    g.scalars[("amdsmi_get_gpu_memory_total", MEM.GTT)] = 128 * GIB
    g.scalars[("amdsmi_get_gpu_memory_usage", MEM.VRAM)] = 283 * MIB
    g.scalars[("amdsmi_get_temp_metric", TEMP.EDGE, METRIC.CRITICAL)] = NotSupported("MI300X has no edge sensor")
    g.scalars[("amdsmi_get_temp_metric", TEMP.EDGE, METRIC.EMERGENCY)] = NotSupported("MI300X has no edge sensor")
    g.scalars[("amdsmi_get_temp_metric", TEMP.EDGE, METRIC.CURRENT)] = NotSupported("MI300X has no edge sensor")
    g.scalars[("amdsmi_get_temp_metric", TEMP.HOTSPOT, METRIC.CURRENT)] = 41
    g.scalars[("amdsmi_get_temp_metric", TEMP.VRAM, METRIC.CURRENT)] = 35
    g.dicts[("amdsmi_get_link_metrics",)] = {"num_links": 8, "links": [
        {"bdf": f"0000:{0x0C + 0x10 * i:02x}:00.0", "bit_rate": 32, "max_bandwidth": 64,
         "link_type": 2 if i != index else 0, "read": 0, "write": 0} for i in range(8)]}
    g.dicts[("amdsmi_get_xgmi_info",)] = {"xgmi_lanes": 16, "xgmi_hive_id": 0x1E1A5EED0C0FFEE, "xgmi_node_id": index,
                                          "index": index}
    g.scalars[("amdsmi_topo_get_numa_node_number",)] = index // 4
    g.dicts[("amdsmi_get_power_info",)] = {"socket_power": 138, "current_socket_power": 138,
                                           "average_socket_power": "N/A", "gfx_voltage": "N/A", "soc_voltage": "N/A",
                                           "mem_voltage": "N/A", "power_limit": 750}
    g.dicts[("amdsmi_get_gpu_activity",)] = {"gfx_activity": 7, "umc_activity": 2, "mm_activity": "N/A"}
    g.scalars[("amdsmi_get_gpu_fan_speed", 0)] = NotSupported("passively cooled OAM")
    g.dicts[("amdsmi_get_gpu_total_ecc_count",)] = {"correctable_count": 12, "uncorrectable_count": uncorrectable,
                                                    "deferred_count": 1}
    g.scalars[("amdsmi_get_gpu_bad_page_info",)] = bad_pages if bad_pages is not None else []
    g.dicts[("amdsmi_get_gpu_metrics_info",)] = {"throttle_status": False, "indep_throttle_status": 0,
                                                 "temperature_hotspot": 41}
    return g


def amdsmi_fixture(gpus: list[AmdGpu] | int = 2) -> Fixture:
    """A synthetic machine of MI300X GPUs (labelled synthetic): ``gpus`` of them, or these."""
    b = FixtureBuilder({"kind": "synthetic", "tool": "tests/amdsmi_synthetic.py",
                        "note": "hand-written test fixture, not from a real machine"})
    log = b.backend("amdsmi", library={"name": "amdsmi", "version": "7.0.2"}, driver_version="6.8.5")
    write_machine(log, [mi300x(i) for i in range(gpus)] if isinstance(gpus, int) else gpus)
    return b.build()

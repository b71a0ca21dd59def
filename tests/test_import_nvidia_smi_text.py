"""``gpuabst import nvidia-smi-text``: ``nvidia-smi -q`` text and capture bundles, bad input, the CLI, round trip.

The self-contained tests write small ``nvidia-smi -q`` logs and bundles here (their values are
chosen below, in the layout of driver 590); the capture tests read ../shared/captures/nvidia and
are marked ``needs_captures``.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import gpuabst_nvml.import_nvidia_smi_text as imp
import pytest
from conftest import FIXTURES, captures, needs_captures
from importer_helpers import calls, gpuabst_cli, status

import gpuabst
from gpuabst.backend import ReplayLibrary
from gpuabst.errors import ImportFormatError
from gpuabst.fixtures import format as fmt
from gpuabst.fixtures.importers import run_importer
from gpuabst.serialize import to_dict

MIB = 1 << 20
BUNDLES = [p for p in captures("nvidia") if p.suffix == ".txt" and p.name.startswith("utkuozdemir__")]
RULE = "#" * 80

MIG_BLOCK = """    MIG Device
        Index                                          : {index}
        GPU Instance ID                                : {gi}
        Compute Instance ID                            : 0
        Device Attributes
            Shared
                Multiprocessor count                   : {sm}
                Copy Engine count                      : 3
                Encoder count                          : 0
                Decoder count                          : 3
                OFA count                              : 0
                JPG count                              : 3
        Shared FB Memory Usage
            Total                                      : {mib} MiB
            Reserved                                   : 0 MiB
            Used                                       : 26 MiB
            Free                                       : {free} MiB
"""


def gpu_q(bus: str = "00000000:3B:00.0", *, name: str = "NVIDIA H100 80GB HBM3", total: str = "81559 MiB",
          uuid: str = "GPU-aaaaaaaa-bbbb-4ccc-8ddd-000000000001", device_id: str = "0x233010DE",
          temp: str = "33 C", power: str = "71.50 W", mig: str = "Disabled", mig_devices: str = "",
          util: str = "7 %", retired: str = "0", remapped: str | None = None, extra: str = "",
          processes: bool = True) -> str:
    rows = remapped or """
        Correctable Error                              : 1
        Uncorrectable Error                            : 0
        Pending                                        : No
        Remapping Failure Occurred                     : No"""
    text = f"""GPU {bus}
    Product Name                                       : {name}
    Product Brand                                      : NVIDIA
    Product Architecture                               : Hopper
    Persistence Mode                                   : Enabled
    MIG Mode
        Current                                        : {mig}
        Pending                                        : {mig}
{mig_devices}    Serial Number                                      : 1650000000001
    GPU UUID                                           : {uuid}
    VBIOS Version                                      : 96.00.74.00.0D
    Board Part Number                                  : 692-2G520-0200-000
    PCI
        Bus                                            : 0x3B
        Device                                         : 0x00
        Domain                                         : 0x0000
        Device Id                                      : {device_id}
        Bus Id                                         : {bus}
        Sub System Id                                  : 0x16C110DE
        GPU Link Info
            PCIe Generation
                Max                                    : 5
                Current                                : 4
                Device Current                         : 4
                Device Max                             : 5
                Host Max                               : N/A
            Link Width
                Max                                    : 16x
                Current                                : 16x
    Fan Speed                                          : N/A
    Performance State                                  : P0
    Clocks Event Reasons
        Idle                                           : Active
        Applications Clocks Setting                    : Not Active
        SW Power Cap                                   : Active
        HW Slowdown                                    : Not Active
            HW Thermal Slowdown                        : Not Active
            HW Power Brake Slowdown                    : Active
        Sync Boost                                     : Not Active
    FB Memory Usage
        Total                                          : {total}
        Reserved                                       : 512 MiB
        Used                                           : 1 MiB
        Free                                           : 81046 MiB
    BAR1 Memory Usage
        Total                                          : 131072 MiB
        Used                                           : 1 MiB
        Free                                           : 131071 MiB
    Compute Mode                                       : Default
    Utilization
        GPU                                            : {util}
        Memory                                         : 1 %
    ECC Mode
        Current                                        : Enabled
        Pending                                        : Enabled
    ECC Errors
        Volatile
            SRAM Correctable                           : 2
            SRAM Uncorrectable Parity                  : 0
            SRAM Uncorrectable SEC-DED                 : 1
            DRAM Correctable                           : 3
            DRAM Uncorrectable                         : 1
        Aggregate
            SRAM Correctable                           : 10
            SRAM Uncorrectable Parity                  : 1
            SRAM Uncorrectable SEC-DED                 : 2
            DRAM Correctable                           : N/A
            DRAM Uncorrectable                         : 4
    Retired Pages
        Single Bit ECC                                 : {retired}
        Double Bit ECC                                 : 0
        Pending Page Blacklist                         : No
    Remapped Rows                                      :{rows}
    Temperature
        GPU Current Temp                               : {temp}
        GPU T.Limit Temp                               : 46 C
        GPU Shutdown T.Limit Temp                      : -8 C
        GPU Slowdown T.Limit Temp                      : -2 C
    GPU Power Readings
        Average Power Draw                             : {power}
        Instantaneous Power Draw                       : 80.00 W
        Current Power Limit                            : 700.00 W
        Requested Power Limit                          : 650.00 W
        Default Power Limit                            : 700.00 W
        Min Power Limit                                : 200.00 W
        Max Power Limit                                : 700.00 W
    Clocks
        Graphics                                       : 345 MHz
        SM                                             : 345 MHz
        Memory                                         : 2619 MHz
    Max Clocks
        Graphics                                       : 1980 MHz
        SM                                             : 1980 MHz
        Memory                                         : 2619 MHz
{extra}"""
    if processes:
        text += "    Processes                                          : None\n"
    return text


def log_q(*gpus: str, attached: int | None = None, head: str | None = None) -> str:
    head = head if head is not None else ("Driver Version                                         : 590.48.01\n"
                                          "CUDA Version                                           : 13.1\n")
    return ("\n==============NVSMI LOG==============\n\n"
            "Timestamp                                              : Tue Jul 14 09:00:27 2026\n"
            f"{head}\nAttached GPUs                                          : "
            f"{len(gpus) if attached is None else attached}\n" + "".join(gpus) + "\n")


def section(label: str, command: str | None, body: str) -> str:
    head = f"# {label}\n" + (f"# $ {command}\n" if command is not None else "")
    return f"{RULE}\n{head}{RULE}\n{body}\n\n"


def bundle(*sections: str) -> str:
    header = "# header\ncollected_at:   2026-07-14T09:00:26Z\nmasked:         yes\nload:           burn"
    return section("nvidia_gpu_exporter GPU capture", None, header) + "".join(sections)


LISTING = """GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-aaaaaaaa-bbbb-4ccc-8ddd-000000000001)
  MIG 3g.40gb     Device  0: (UUID: MIG-aaaaaaaa-bbbb-4ccc-8ddd-0000000000a0)
  MIG 1g.10gb     Device  1: (UUID: MIG-aaaaaaaa-bbbb-4ccc-8ddd-0000000000a1)"""

CSV_HEAD = "timestamp, name, pci.bus_id, compute_cap, memory.total [MiB]"


def mig_gpu(**kw: Any) -> str:
    blocks = (MIG_BLOCK.format(index=0, gi=2, sm=60, mib=40448, free=40422)
              + MIG_BLOCK.format(index=1, gi=9, sm=16, mib=9984, free=9958))
    return gpu_q(mig="Enabled", mig_devices=blocks, util="N/A", remapped=" N/A", **kw)


def write(tmp_path: Path, text: str | bytes, name: str = "smi.txt") -> Path:
    p = tmp_path / name
    if isinstance(text, bytes):
        p.write_bytes(text)
    else:
        p.write_text(text, encoding="utf-8")
    return p


def save(tmp_path: Path, *paths: Path) -> Path:
    out = tmp_path / "fixture.json"
    fmt.save(run_importer("nvidia-smi-text", [str(p) for p in paths]), out)
    return out


def replay(tmp_path: Path, *paths: Path) -> list[dict[str, Any]]:
    return to_dict(gpuabst.snapshot([save(tmp_path, *paths)]).devices)  # type: ignore[no-any-return]


# --- mapping, on logs written here ---------------------------------------------------------------

def test_values_map_to_the_backends_calls(tmp_path: Path) -> None:
    fx = imp.import_files([str(write(tmp_path, log_q(gpu_q())))])
    assert calls(fx, "nvmlSystemGetDriverVersion")[0]["result"] == "590.48.01"
    assert calls(fx, "nvmlSystemGetCudaDriverVersion_v2")[0]["result"] == 13010
    assert calls(fx, "nvmlDeviceGetMemoryInfo")[0]["args"][1] == 0x02000028
    assert calls(fx, "nvmlDeviceGetMemoryInfo")[0]["result"]["reserved"] == 512 * MIB
    fan = calls(fx, "nvmlDeviceGetFanSpeed")[0]
    assert fan["error"] == {"code": 3, "name": "NVML_ERROR_NOT_SUPPORTED", "note": "nvidia-smi printed 'N/A'"}
    assert calls(fx, "nvmlDeviceGetCurrentClocksEventReasons")[0]["result"] == 0x1 | 0x4 | 0x80
    assert not calls(fx, "nvmlDeviceGetCurrentClocksThrottleReasons")
    assert calls(fx, "nvmlDeviceGetBrand")[0]["result"] == 14
    assert calls(fx, "nvmlDeviceGetArchitecture")[0]["result"] == 9
    assert calls(fx, "nvmlDeviceGetPowerManagementLimit")[0]["result"] == 650000
    assert calls(fx, "nvmlDeviceGetEnforcedPowerLimit")[0]["result"] == 700000
    assert calls(fx, "nvmlDeviceGetPowerUsage")[0]["result"] == 71500
    assert calls(fx, "nvmlDeviceGetPowerManagementLimitConstraints")[0]["result"] == [200000, 700000]
    assert calls(fx, "nvmlDeviceGetPciInfo")[0]["result"]["pciDeviceId"] == 0x233010DE
    assert [c["result"] for c in calls(fx, "nvmlDeviceGetMaxClockInfo")] == [1980, 1980, 2619]
    assert [c["args"][1:] for c in calls(fx, "nvmlDeviceGetMaxClockInfo")] == [[0], [1], [2]]
    # SRAM + DRAM (parity + SEC-DED for SRAM uncorrectable); an N/A part counts nothing
    ecc = {tuple(c["args"][1:]): c["result"] for c in calls(fx, "nvmlDeviceGetTotalEccErrors")}
    assert ecc == {(0, 0): 5, (1, 0): 2, (0, 1): 10, (1, 1): 7}
    assert calls(fx, "nvmlDeviceGetRetiredPages")[0]["result"] == []
    assert calls(fx, "nvmlDeviceGetRemappedRows")[0]["result"] == [1, 0, 0, 0]
    assert not calls(fx, "nvmlDeviceGetTemperatureThreshold")  # T.Limit offsets are not absolute thresholds
    assert not calls(fx, "nvmlDeviceGetCudaComputeCapability")  # -q does not print it; no CSV here
    assert not calls(fx, "nvmlDeviceGetNvLinkState")  # no `nvlink -s` section: not recorded
    assert calls(fx, "nvmlShutdown")
    prov = fx.provenance
    assert (prov["kind"], prov["tool"], prov["source"], prov["driver_version"]) == (
        "import", "nvidia-smi -q (text bundle)", "smi.txt", "590.48.01")
    assert prov["imported_by"].startswith("gpuabst import nvidia-smi-text ")


def test_replay_of_an_imported_log(tmp_path: Path) -> None:
    [d] = replay(tmp_path, write(tmp_path, log_q(gpu_q())))
    assert d["name"] == "NVIDIA H100 80GB HBM3" and d["brand"] == "NVIDIA" and d["architecture"] == "Hopper"
    assert d["memory"]["total_bytes"] == 81559 * MIB and d["memory"]["reserved_bytes"] == 512 * MIB
    assert d["memory"]["bar1_total_bytes"] == 131072 * MIB
    assert d["pci"]["bus_id"] == "0000:3b:00.0" and d["pci"]["device_id"] == "0x2330"
    assert d["pci"]["subsystem_id"] == "0x16c1" and d["pci"]["vendor_id"] == "0x10de"
    assert d["driver_version"] == "590.48.01" and d["cuda_driver_version"] == "13.1"
    h = d["health"]
    assert h["temperature_c"] == 33 and h["power_draw_w"] == 71.5 and h["utilization_gpu_pct"] == 7
    assert h["throttle_reasons"] == ["gpu_idle", "sw_power_cap", "hw_power_brake_slowdown"]
    assert h["ecc_uncorrected_aggregate"] == 7 and h["remapped_rows_corrected"] == 1
    assert h["pcie_current_generation"] == 4 and h["pcie_link_degraded"] is True
    assert status(d, "health.fan_speed_pct") == "unsupported"
    assert status(d, "health.temperature_slowdown_c") == "not_recorded"
    assert status(d, "capabilities.compute_capability") == "not_recorded"
    assert d["capabilities"]["power_limit_w"] == 650.0 and d["capabilities"]["pcie_max_generation"] == 5
    assert d["partitions"] == []


def test_every_recorded_call_is_one_the_backend_makes(tmp_path: Path) -> None:
    """Same functions, same arguments: replaying a snapshot and a poll plays every recorded call."""
    text = bundle(section("capabilities :: list (-L)", "nvidia-smi -L", LISTING),
                  section("capabilities :: nvlink -s", "nvidia-smi nvlink -s",
                          "GPU 1: NVIDIA H100 80GB HBM3 (UUID: x)\n\t Link 0: 26.562 GB/s\n\t Link 1: <inactive>"),
                  section("idle :: query (-q)", "nvidia-smi -q",
                          log_q(mig_gpu(), gpu_q("00000000:3C:00.0", uuid="GPU-aaaaaaaa-bbbb-4ccc-8ddd-000000000002"))),
                  section("idle :: query-gpu", "nvidia-smi --query-gpu=x --format=csv",
                          f"{CSV_HEAD}\nt, n, 00000000:3B:00.0, 9.0, 81559 MiB\n"
                          "t, n, 00000000:3C:00.0, 9.0, 81559 MiB"),
                  section("load :: query (-q)", "nvidia-smi -q",
                          log_q(mig_gpu(temp="60 C"),
                                gpu_q("00000000:3C:00.0", uuid="GPU-aaaaaaaa-bbbb-4ccc-8ddd-000000000002"))))
    out = save(tmp_path, write(tmp_path, text))
    with gpuabst.open_machine([out]) as m:
        m.snapshot()
        m.poll()
        lib = m.library
    assert isinstance(lib, ReplayLibrary)
    tape = lib.tapes["nvml"]  # after close: nvmlShutdown was asked for too
    unplayed = sorted(set(tape._outcomes) - set(tape._position))  # recorded but never asked for
    assert unplayed == []
    assert len(tape._outcomes) > 100


def test_bundle_mig_profiles_from_the_listing_and_load_as_poll(tmp_path: Path) -> None:
    text = bundle(section("capabilities :: version", "nvidia-smi --version",
                          "NVIDIA-SMI version  : 590.48.01\nNVML version        : 590.48\n"
                          "DRIVER version      : 590.48.01\nCUDA Version        : 13.1"),
                  section("capabilities :: list (-L)", "nvidia-smi -L", LISTING),
                  section("capabilities :: nvlink -s", "nvidia-smi nvlink -s",
                          "GPU 0: NVIDIA H100 80GB HBM3 (UUID: x)\nNvlink queries are not supported for Devices "
                          "in MIG mode"),
                  section("idle :: query (-q)", "nvidia-smi -q", log_q(mig_gpu(temp="41 C", power="70.00 W"))),
                  section("idle :: query-gpu (csv)", "nvidia-smi --query-gpu=timestamp,name --format=csv",
                          f"{CSV_HEAD}\n2026/07/14 09:00:27.792, NVIDIA H100 80GB HBM3, 00000000:3B:00.0, 9.0, "
                          "81559 MiB"),
                  section("load :: query (-q)", "nvidia-smi -q", log_q(mig_gpu(temp="56 C", power="432.21 W"))))
    src = write(tmp_path, text, "bundle.txt")
    raw = imp.import_files([str(src)])
    assert raw.provenance["collected_at"] == "2026-07-14T09:00:26Z" and raw.provenance["nvml_version"] == "590.48"
    assert len(raw.provenance["polls"]) == 2 and "load :: query (-q)" in raw.provenance["polls"][1]
    count = calls(raw, "nvmlDeviceGetMaxMigDeviceCount")[0]
    assert count["result"] == 2 and "not printed" in count["note"]
    out = save(tmp_path, src)
    with gpuabst.open_machine([out]) as m:
        snap = m.snapshot().devices[0]
        poll = m.poll().devices[0]
    assert snap.capabilities.compute_capability.value == "9.0"
    assert snap.capabilities.mig_enabled.value is True
    assert [p.profile.value for p in snap.partitions] == ["3g.40gb", "1g.10gb"]
    assert [p.name.value for p in snap.partitions] == ["NVIDIA H100 80GB HBM3 MIG 3g.40gb",
                                                       "NVIDIA H100 80GB HBM3 MIG 1g.10gb"]
    assert [p.gpu_instance_id.value for p in snap.partitions] == [2, 9]
    assert [p.memory_total_bytes.value for p in snap.partitions] == [40448 * MIB, 9984 * MIB]
    assert [p.compute_units.value for p in snap.partitions] == [60, 16]
    uuids = [p.uuid.value for p in snap.partitions]
    assert all(u and u.startswith("MIG-5c4b0000-") for u in uuids) and len(set(uuids)) == 2  # scrubbed, distinct
    assert snap.capabilities.nvlink_active_links.status.value == "not_recorded"
    assert snap.health.utilization_gpu_pct.status.value == "unsupported"
    assert (snap.health.temperature_c.value, snap.health.power_draw_w.value) == (41, 70.0)
    assert (poll.health.temperature_c.value, poll.health.power_draw_w.value) == (56, 432.21)
    assert len(poll.partitions) == 2


def test_old_layout_names(tmp_path: Path) -> None:
    """Before 535: Clocks Throttle Reasons, Power Readings with Power Draw/Power Limit/Enforced Power Limit;
    before 470: Single Bit/Double Bit ECC totals; no Reserved line (nvmlMemory_t v1); absolute thresholds."""
    old = (gpu_q().replace("Clocks Event Reasons", "Clocks Throttle Reasons")
           .replace("GPU Power Readings", "Power Readings").replace("Average Power Draw", "Power Draw")
           .replace("Requested Power Limit", "Power Limit").replace("Current Power Limit", "Enforced Power Limit")
           .replace("        Reserved                                       : 512 MiB\n", "")
           .replace("Pending Page Blacklist", "Pending"))
    start, end = old.index("    ECC Errors\n"), old.index("    Retired Pages\n")
    ecc = "    Ecc Errors\n" + "".join(
        f"        {counter}\n            Single Bit\n                Device Memory : 1\n                Total : {sb}\n"
        f"            Double Bit\n                Device Memory : 0\n                Total : {db}\n"
        for counter, sb, db in (("Volatile", 4, 0), ("Aggregate", 9, 2)))
    old = old[:start] + ecc + old[end:]
    old = old.replace("        GPU T.Limit Temp                               : 46 C\n",
                      "        GPU Shutdown Temp                              : 92 C\n"
                      "        GPU Slowdown Temp                              : 89 C\n")
    fx = imp.import_files([str(write(tmp_path, log_q(old)))])
    assert calls(fx, "nvmlDeviceGetCurrentClocksThrottleReasons")[0]["result"] == 0x1 | 0x4 | 0x80
    assert not calls(fx, "nvmlDeviceGetCurrentClocksEventReasons")
    assert calls(fx, "nvmlDeviceGetPowerUsage")[0]["result"] == 71500
    assert calls(fx, "nvmlDeviceGetPowerManagementLimit")[0]["result"] == 650000
    assert calls(fx, "nvmlDeviceGetEnforcedPowerLimit")[0]["result"] == 700000
    mem = calls(fx, "nvmlDeviceGetMemoryInfo")[0]
    assert mem["args"] == [{"$handle": "gpu0"}] and mem["result"]["$struct"] == "c_nvmlMemory_t"
    ecc_calls = {tuple(c["args"][1:]): c["result"] for c in calls(fx, "nvmlDeviceGetTotalEccErrors")}
    assert ecc_calls == {(0, 0): 4, (1, 0): 0, (0, 1): 9, (1, 1): 2}
    assert calls(fx, "nvmlDeviceGetRetiredPagesPendingStatus")[0]["result"] == 0
    assert {c["args"][1]: c["result"] for c in calls(fx, "nvmlDeviceGetTemperatureThreshold")} == {1: 89, 0: 92}
    [d] = replay(tmp_path, write(tmp_path, log_q(old), "old.txt"))
    assert d["health"]["temperature_shutdown_c"] == 92 and d["health"]["temperature_slowdown_c"] == 89
    assert status(d, "health.temperature_max_operating_c") == "not_recorded"
    assert d["memory"]["used_bytes"] == MIB and status(d, "memory.reserved_bytes") != "ok"


def test_kmd_and_cuda_umd_versions(tmp_path: Path) -> None:
    """Driver 610+ marks Driver Version / CUDA Version deprecated in favour of KMD / CUDA UMD Version."""
    head = ("Driver Version                                         : Requested functionality has been deprecated\n"
            "KMD Version                                            : 610.12\n"
            "CUDA Version                                           : 13.5 (deprecated)\n"
            "CUDA UMD Version                                       : 13.6\n")
    fx = imp.import_files([str(write(tmp_path, log_q(gpu_q(), head=head)))])
    assert calls(fx, "nvmlSystemGetDriverVersion")[0]["result"] == "610.12"
    assert calls(fx, "nvmlSystemGetCudaDriverVersion_v2")[0]["result"] == 13060
    assert fx.provenance["driver_version"] == "610.12"
    only_old = ("Driver Version                                         : 610.12 (deprecated)\n"
                "CUDA Version                                           : 13.5\n")
    fx = imp.import_files([str(write(tmp_path, log_q(gpu_q(), head=only_old), "b.txt"))])
    assert calls(fx, "nvmlSystemGetDriverVersion")[0]["result"] == "610.12"
    assert calls(fx, "nvmlSystemGetCudaDriverVersion_v2")[0]["result"] == 13050


def test_retired_page_addresses_come_from_the_csv_or_are_not_invented(tmp_path: Path) -> None:
    csv = ("timestamp, gpu_name, gpu_bus_id, gpu_serial, gpu_uuid, retired_pages.address, retired_pages.timestamp, "
           "retired_pages.cause\n"
           "t, n, 00000000:3B:00.0, s, u, 0x00000000002ce8a4, t, Single Bit ECC\n"
           "t, n, 00000000:3B:00.0, s, u, 0x00000000000b48d7, t, Single Bit ECC\n")
    text = bundle(section("idle :: query (-q)", "nvidia-smi -q", log_q(gpu_q(retired="2"))),
                  section("idle :: query-retired-pages", "nvidia-smi --query-retired-pages=x --format=csv", csv))
    fx = imp.import_files([str(write(tmp_path, text))])
    assert calls(fx, "nvmlDeviceGetRetiredPages")[0]["result"] == [0x2CE8A4, 0xB48D7]
    fx = imp.import_files([str(write(tmp_path, log_q(gpu_q(retired="2")), "plain.txt"))])
    assert [c["args"][1] for c in calls(fx, "nvmlDeviceGetRetiredPages")] == [1]  # the count alone: not recorded
    fx = imp.import_files([str(write(tmp_path, log_q(gpu_q(retired="N/A")), "na.txt"))])
    assert calls(fx, "nvmlDeviceGetRetiredPages")[0]["error"]["code"] == 3


def test_nvlink_states_and_no_nvlink(tmp_path: Path) -> None:
    links = "GPU 0: NVIDIA H100 (UUID: x)\n\t Link 0: 26.562 GB/s\n\t Link 1: <inactive>\n\t Link 2: 26.562 GB/s"
    text = bundle(section("capabilities :: nvlink -s", "nvidia-smi nvlink -s", links),
                  section("idle :: query (-q)", "nvidia-smi -q", log_q(gpu_q())))
    [d] = replay(tmp_path, write(tmp_path, text))
    assert d["capabilities"]["nvlink_active_links"] == 2
    none = "GPU 0: NVIDIA L40S (UUID: x)\nDevice does not have or support Nvlink"
    text = bundle(section("capabilities :: nvlink -s", "nvidia-smi nvlink -s", none),
                  section("idle :: query (-q)", "nvidia-smi -q", log_q(gpu_q())))
    [d] = replay(tmp_path, write(tmp_path, text, "l40s.txt"))
    assert status(d, "capabilities.nvlink_active_links") == "not_applicable"


def test_masked_ids_and_trimmed_logs_are_noted(tmp_path: Path) -> None:
    fx = imp.import_files([str(write(tmp_path, log_q(gpu_q(device_id="0x000010DE"))))])
    assert "pciDeviceId" not in calls(fx, "nvmlDeviceGetPciInfo")[0]["result"]
    assert "Device Id '0x000010DE' (zeroed)" in fx.provenance["masked_ids"][0]
    masked_uuid = "GPU-00000000-0000-0000-0000-000000000000"
    two = log_q(gpu_q(uuid=masked_uuid), gpu_q("00000000:3C:00.0", uuid=masked_uuid))
    fx = imp.import_files([str(write(tmp_path, two, "two.txt"))])
    assert not calls(fx, "nvmlDeviceGetUUID")  # one masked placeholder on both GPUs: merging would fold them
    assert len([m for m in fx.provenance["masked_ids"] if "UUID" in m]) == 2
    [d0, d1] = replay(tmp_path, write(tmp_path, two, "two.txt"))
    assert status(d0, "uuid") == "not_recorded" and d1["pci"]["bus_id"] == "0000:3c:00.0"
    fx = imp.import_files([str(write(tmp_path, log_q(gpu_q(), attached=3), "t.txt"))])
    assert fx.provenance["attached_gpus"] == 3 and "only those are recorded" in fx.provenance["trimmed"]
    assert calls(fx, "nvmlDeviceGetCount")[0]["result"] == 1


def test_several_files_of_one_machine_replay_as_polls(tmp_path: Path) -> None:
    a = write(tmp_path, log_q(gpu_q(temp="33 C")), "a.txt")
    b = write(tmp_path, log_q(gpu_q(temp="61 C")), "b.txt")
    out = save(tmp_path, a, b)
    with gpuabst.open_machine([out]) as m:
        assert m.snapshot().devices[0].health.temperature_c.value == 33
        assert m.poll().devices[0].health.temperature_c.value == 61
    c = write(tmp_path, log_q(gpu_q("00000000:99:00.0")), "c.txt")
    with pytest.raises(ImportFormatError, match=r"^c\.txt: the `nvidia-smi -q` at line \d+ shows other GPUs"):
        imp.import_files([str(a), str(c)])


# --- malformed and hostile input -----------------------------------------------------------------

GOOD = log_q(gpu_q())


@pytest.mark.parametrize(("text", "problem"), [
    ("", "empty file"),
    ("hello\nthis is not nvidia-smi output\n", "no `nvidia-smi -q` section"),
    ('{"gpu": "json"}', "no `nvidia-smi -q` section"),
    (bundle(section("capabilities :: list (-L)", "nvidia-smi -L", LISTING)), "no `nvidia-smi -q` section"),
    (GOOD[:len(GOOD) // 2], "truncated"),
    (bundle(section("idle :: query (-q)", "nvidia-smi -q", GOOD[:len(GOOD) * 2 // 3])), "truncated"),
    (bundle(section("idle :: query (-q)", "nvidia-smi -q", GOOD),
            section("load :: query (-q)", "nvidia-smi -q", GOOD[:900])), "truncated"),
    (log_q(attached=1), "no GPU block follows"),
    (bundle(section("idle :: query (-q)", "nvidia-smi -q", "Attached GPUs : 1\nGPU 00000000:01:00.0\n")),
     "no NVSMI LOG banner"),
    (log_q(gpu_q(total="99999999999999999999999 MiB")), "FB Memory Usage/Total: expected a size"),
    (log_q(gpu_q(total="18446744073709551615 MiB")), "out of range"),
    (log_q(gpu_q(total="lots")), "FB Memory Usage/Total"),
    (log_q(gpu_q(temp="hot")), "Temperature/GPU Current Temp: expected a temperature"),
    (log_q(gpu_q(power="9" * 30 + " W")), "Average Power Draw"),
    (log_q(gpu_q(name="x" * 5000)), "characters long"),
    (GOOD.replace("Idle                                           : Active", "Idle : Sometimes"),
     "Clocks Event Reasons/Idle: expected Active or Not Active"),
    (log_q(gpu_q(bus="00000000:3B:00.0").replace("Bus Id                                         : "
                                                 "00000000:3B:00.0", "Bus Id : somewhere")),
     "no valid PCI bus id"),
    (log_q(gpu_q(), head="Driver Version : 590.48.01\nCUDA Version : twelve\n"), "CUDA Version"),
    (log_q(gpu_q(), attached=0), "Attached GPUs says 0"),
    (log_q(gpu_q(mig="Enabled", mig_devices=MIG_BLOCK.format(index=999, gi=1, sm=1, mib=1, free=1))),
     "MIG device index 999 is out of range"),
])
def test_bad_input_is_one_clear_error(tmp_path: Path, text: str, problem: str) -> None:
    path = write(tmp_path, text, "bad.txt")
    with pytest.raises(ImportFormatError) as e:
        imp.import_files([str(path)])
    msg = str(e.value)
    assert msg.startswith("bad.txt: ") and problem in msg and "\n" not in msg


def test_binary_oversized_and_missing_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ImportFormatError, match=r"^bin\.txt: not UTF-8 text"):
        imp.import_files([str(write(tmp_path, bytes(range(256)) * 4, "bin.txt"))])
    with pytest.raises(ImportFormatError, match=r"^nul\.txt: holds NUL bytes"):
        imp.import_files([str(write(tmp_path, GOOD.encode() + b"\x00" * 64, "nul.txt"))])
    with pytest.raises(ImportFormatError, match=r"^lines\.txt: more than 400000 lines"):
        imp.import_files([str(write(tmp_path, "x\n" * 400_001, "lines.txt"))])
    monkeypatch.setattr(imp, "MAX_BYTES", 1000)
    with pytest.raises(ImportFormatError, match=r"^big\.txt: larger than"):
        imp.import_files([str(write(tmp_path, GOOD, "big.txt"))])
    with pytest.raises(ImportFormatError, match="cannot read"):
        imp.import_files([str(tmp_path / "absent.txt")])
    with pytest.raises(ImportFormatError, match="no file given"):
        imp.import_files([])


def test_windows_line_endings_and_utf16(tmp_path: Path) -> None:
    [d] = replay(tmp_path, write(tmp_path, GOOD.replace("\n", "\r\n").encode("utf-16"), "win.txt"))
    assert d["name"] == "NVIDIA H100 80GB HBM3" and d["memory"]["total_bytes"] == 81559 * MIB


def test_pathological_text_is_fast(tmp_path: Path) -> None:
    """Lines that could make a backtracking pattern explode are read in linear time."""
    start = time.monotonic()
    odd = log_q(gpu_q(extra="".join(f"    {' ' * i}Key{' :' * 100}\n" for i in range(0, 800, 4))
                      + ("    Deep\n" + "".join(" " * (8 + 4 * i) + f"L{i}\n" for i in range(200)))))
    odd += ("GPU " + "0" * 900 + "\n") * 2000
    fx = imp.import_files([str(write(tmp_path, odd))])  # odd lines the backend never asks about are ignored
    assert calls(fx, "nvmlDeviceGetCount")[0]["result"] == 1
    rules = GOOD + ("#" * 30 + "\n# x\n") * 20000
    with pytest.raises(ImportFormatError, match="no `nvidia-smi -q` section"):
        imp.import_files([str(write(tmp_path, rules, "rules.txt"))])
    big = write(tmp_path, bundle(*(section(f"s{i}", "nvidia-smi -q", GOOD) for i in range(300))), "many.txt")
    fx = imp.import_files([str(big)])
    assert len(fx.provenance["polls"]) == 300
    assert time.monotonic() - start < 30


# --- the command line ----------------------------------------------------------------------------

def test_cli_import_then_show_round_trip(tmp_path: Path) -> None:
    second = gpu_q("00000000:3C:00.0", uuid="GPU-aaaaaaaa-bbbb-4ccc-8ddd-000000000002")
    text = bundle(section("capabilities :: list (-L)", "nvidia-smi -L", LISTING),
                  section("idle :: query (-q)", "nvidia-smi -q", log_q(mig_gpu(), second)))
    src = write(tmp_path, text, "bundle.txt")
    out = tmp_path / "f.json"
    r = gpuabst_cli("import", "nvidia-smi-text", str(src), "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert "nvidia-smi-text" in r.stdout
    saved = out.read_text()
    assert "aaaaaaaa-bbbb-4ccc-8ddd" not in saved and "1650000000001" not in saved  # scrubbed
    r = gpuabst_cli("show", "--json", env={"GPUABST_FIXTURE": str(out)})
    assert r.returncode == 0, r.stderr
    devs = json.loads(r.stdout)["devices"]
    assert [d["pci"]["bus_id"] for d in devs] == ["0000:3b:00.0", "0000:3c:00.0"]
    assert all(d["name"] == "NVIDIA H100 80GB HBM3" and d["memory"]["total_bytes"] == 81559 * MIB for d in devs)
    assert all(d["uuid"].startswith("GPU-5c4b0000-") for d in devs)
    assert [p["profile"] for p in devs[0]["partitions"]] == ["3g.40gb", "1g.10gb"] and devs[1]["partitions"] == []


def test_cli_bad_file_is_a_one_line_error(tmp_path: Path) -> None:
    src = write(tmp_path, GOOD[: len(GOOD) // 2], "cut.txt")
    r = gpuabst_cli("import", "nvidia-smi-text", str(src), "-o", str(tmp_path / "f.json"))
    assert r.returncode == 1 and not (tmp_path / "f.json").exists()
    assert r.stderr.strip().count("\n") == 0 and "Traceback" not in r.stderr
    assert r.stderr.startswith("gpuabst: error: cut.txt: ") and "truncated" in r.stderr


# --- real captures -------------------------------------------------------------------------------

def _first_q(path: Path) -> str:
    text = path.read_text(encoding="utf-8", errors="replace")
    start = text.index("# $ nvidia-smi -q\n")
    end = text.index("\n" + RULE, text.index(RULE, start) + len(RULE))
    return text[start:end]


def _values(text: str, key: str) -> list[str]:
    return [v.strip() for v in re.findall(rf"(?m)^ +{re.escape(key)} +: (.*)$", text)]


@needs_captures
@pytest.mark.parametrize("capture", BUNDLES, ids=[p.name.split("__")[-1] for p in BUNDLES])
def test_every_bundle_imports_and_replays(tmp_path: Path, capture: Path) -> None:
    out = save(tmp_path, capture)
    q = _first_q(capture)
    with gpuabst.open_machine([out]) as m:
        snap = to_dict(m.snapshot().devices)
        poll = to_dict(m.poll().devices)
    assert [d["name"] for d in snap] == _values(q, "Product Name")
    totals = re.findall(r"(?m)^    FB Memory Usage\n +Total +: (\d+) MiB", q)
    assert [d["memory"]["total_bytes"] for d in snap] == [int(t) * MIB for t in totals]
    assert [d["pci"]["device_id"] for d in snap] == ["0x" + v[2:6].lower() for v in _values(q, "Device Id")]
    # the load `-q` is the poll: its memory use differs from idle on every bundle here
    assert [d["memory"]["used_bytes"] for d in poll] != [d["memory"]["used_bytes"] for d in snap]
    text = out.read_text()
    for secret in _values(q, "GPU UUID") + _values(q, "Serial Number"):
        if secret not in ("N/A",):
            assert secret not in text
    assert json.loads(text)["provenance"]["source"] == capture.name


@needs_captures
def test_h100_mig_bundle() -> None:
    [capture] = [p for p in BUNDLES if "h100-mig" in p.name]
    fx = imp.import_files([str(capture)])
    assert [c["result"] for c in calls(fx, "nvmlDeviceGetName") if " MIG " in c["result"]] == [
        f"NVIDIA H100 80GB HBM3 MIG {p}" for p in ("3g.40gb", "2g.20gb", "1g.10gb", "1g.10gb")] * 2
    assert [c["result"] for c in calls(fx, "nvmlDeviceGetGpuInstanceId")][:4] == [2, 3, 9, 10]
    assert calls(fx, "nvmlDeviceGetMaxMigDeviceCount")[0]["result"] == 4
    assert [c["result"]["multiprocessorCount"] for c in calls(fx, "nvmlDeviceGetAttributes")][:4] == [60, 32, 16, 16]
    assert not calls(fx, "nvmlDeviceGetNvLinkState")  # "Nvlink queries are not supported ... in MIG mode"
    h100 = imp.import_files([str(next(p for p in BUNDLES if "h100-80gb-hbm3" in p.name))])
    assert [c["result"] for c in calls(h100, "nvmlDeviceGetNvLinkState")][:18] == [1] * 18


FIXTURE_NAMES = {
    "nvidia-h100-80gb-hbm3__590.48.01": "h100-80gb-hbm3", "nvidia-h100-mig__590.48.01": "h100-mig",
    "nvidia-l40s__595.80": "l40s", "nvidia-geforce-rtx-4080-super__595.71.05": "rtx-4080-super",
    "nvidia-geforce-rtx-2080-super__595.71.05": "rtx-2080-super",
}
"""Capture (without the repository prefix) -> its fixture under fixtures/nvidia."""


def _short(capture: Path) -> str:
    return capture.name.removeprefix("utkuozdemir__nvidia_gpu_exporter__linux-x86_64__").removesuffix(".txt")


@needs_captures
def test_committed_fixtures_are_what_the_importer_makes() -> None:
    assert sorted(_short(p) for p in BUNDLES) == sorted(FIXTURE_NAMES)
    for capture in BUNDLES:
        name = FIXTURE_NAMES[_short(capture)]
        committed = fmt.load(FIXTURES / "nvidia" / f"{name}.json")
        fresh = run_importer("nvidia-smi-text", [str(capture)])
        assert fresh.to_json() == committed.to_json(), name
        assert (FIXTURES / "nvidia" / f"{name}.expected.json").is_file()


@needs_captures
def test_unprintable_mig_uuid_in_the_listing_is_a_clear_error(tmp_path: Path) -> None:
    (bundle,) = [p for p in captures("nvidia") if "h100-mig" in p.name]
    text = bundle.read_text(encoding="utf-8")
    uuid = re.search(r"\(UUID: (MIG-[^)]+)\)", text)
    assert uuid is not None
    bad = tmp_path / "bad.txt"
    bad.write_text(text.replace(uuid.group(1), "MIG-\x01bad", 1), encoding="utf-8")
    with pytest.raises(ImportFormatError, match="MIG device 0 UUID"):
        run_importer("nvidia-smi-text", [str(bad)])


def test_logs_past_the_limits_or_without_their_key_lines_are_one_clear_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import re

    nameless = re.sub(r"\n *Product Name +: [^\n]*", "", GOOD)
    no_gpus = GOOD.split("Attached GPUs")[0]
    for text, problem in ((nameless, "block at line 9 has no Product Name"),
                          (no_gpus, "is truncated (no Attached GPUs, no GPU block)")):
        with pytest.raises(ImportFormatError) as e:
            imp.import_files([str(write(tmp_path, text, "bad.txt"))])
        assert str(e.value).startswith("bad.txt: ") and problem in str(e.value), str(e.value)
    two = log_q(gpu_q(), gpu_q("00000000:5E:00.0", uuid="GPU-aaaaaaaa-bbbb-4ccc-8ddd-000000000002"))
    monkeypatch.setattr(imp, "MAX_GPUS", 1)
    with pytest.raises(ImportFormatError, match=r"^two\.txt: 2 GPU blocks; at most 1 are accepted"):
        imp.import_files([str(write(tmp_path, two, "two.txt"))])
    monkeypatch.setattr(imp, "MAX_NODES", 50)
    with pytest.raises(ImportFormatError, match=r"^long\.txt: more than 50 lines in one -q log"):
        imp.import_files([str(write(tmp_path, GOOD, "long.txt"))])

"""``gpuabst import clinfo``: both text layouts, markdown fences, truncated and hostile files."""

from __future__ import annotations

import json
from pathlib import Path

import opencl_synthetic as S
import pytest
from conftest import captures, needs_captures
from gpuabst_opencl.import_clinfo import import_files, parse

from gpuabst.cli.main import main
from gpuabst.errors import ImportFormatError
from gpuabst.reading import Status

OBLOMOV_TEXT = """\
Number of platforms                               2
  Platform Name                                   NVIDIA CUDA
  Platform Vendor                                 NVIDIA Corporation
  Platform Version                                OpenCL 3.0 CUDA 12.4.131
  Platform Profile                                FULL_PROFILE
  Platform Name                                   Portable Computing Language
  Platform Vendor                                 The pocl project
  Platform Version                                OpenCL 3.0 PoCL 3.1+debian
  Platform Profile                                FULL_PROFILE

  Platform Name                                   NVIDIA CUDA
Number of devices                                 2
  Device Name                                     NVIDIA A100-SXM4-80GB
  Device Vendor                                   NVIDIA Corporation
  Device Vendor ID                                0x10de
  Device Version                                  OpenCL 3.0 CUDA
  Driver Version                                  550.54.15
  Device OpenCL C Version                         OpenCL C 1.2
  Device Type                                     GPU
  Device Topology (NV)                            PCI-E, 0000:c1:00.0
  Max compute units                               108
  Max clock frequency                             1410MHz
  Compute Capability (NV)                         8.0
  Max work group size                             1024
  Global memory size                              85031714816 (79.19GiB)
  Error Correction support                        Yes
  Max memory allocation                           21257928704 (19.8GiB)
  Unified memory for Host and Device              No
  Local memory size                               49152 (48KiB)
  Device Extensions                               cl_khr_fp64 cl_nv_device_attribute_query
  Device Name                                     NVIDIA A100-SXM4-80GB
  Device Vendor                                   NVIDIA Corporation
  Device Vendor ID                                0x10de
  Device Type                                     GPU
  Device Topology (NV)                            PCI-E, 0000:c2:00.0
  Max compute units                               108
  Global memory size                              85031714816 (79.19GiB)
  Device Extensions                               cl_khr_fp64 cl_nv_device_attribute_query

  Platform Name                                   Portable Computing Language
Number of devices                                 1
  Device Name                                     cpu-haswell-AMD EPYC 7763 64-Core Processor
  Device Vendor                                   AuthenticAMD
  Device Vendor ID                                0x1002
  Device Type                                     CPU
  Max compute units                               128
  Global memory size                              270000000000 (251.5GiB)
  Device Extensions                               cl_khr_fp64

NULL platform behavior
  clGetPlatformInfo(NULL, CL_PLATFORM_NAME, ...)  No platform
"""

_AMD_LINES = [
    ("", "Number of platforms", "1"), ("  ", "Platform Profile", "FULL_PROFILE"),
    ("  ", "Platform Version", "OpenCL 2.1 AMD-APP (3180.7)"),
    ("  ", "Platform Name", "AMD Accelerated Parallel Processing"),
    ("  ", "Platform Vendor", "Advanced Micro Devices, Inc."), None, None,
    ("  ", "Platform Name", "AMD Accelerated Parallel Processing"), ("", "Number of devices", "1"),
    ("  ", "Device Type", "CL_DEVICE_TYPE_GPU"), ("  ", "Vendor ID", "1002h"), ("  ", "Board name", "AMD Radeon VII"),
    ("  ", "Device Topology", "PCI[ B#195, D#0, F#0 ]"), ("  ", "Max compute units", "60"),
    ("  ", "Max clock frequency", "1802Mhz"), ("  ", "Global memory size", "17163091968"),
    ("  ", "Error correction support", "1"), ("  ", "Name", "gfx906"),
    ("  ", "Vendor", "Advanced Micro Devices, Inc."), ("  ", "Driver version", "3180.7 (PAL,HSAIL)"),
    ("  ", "Version", "OpenCL 2.0 AMD-APP (3180.7)"),
    ("  ", "Extensions", "cl_khr_fp64 cl_khr_fp16 cl_amd_device_attribute_query "),
]
AMD_TEXT = "".join("\n" if ln is None else f"{ln[0]}{ln[1]}:\t\t\t\t {ln[2]}\n" for ln in _AMD_LINES)


def _write(tmp_path: Path, text: str, name: str = "clinfo.txt") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_oblomov_layout_two_platforms_one_device_each_listed(tmp_path: Path) -> None:
    fixture = import_files([str(_write(tmp_path, OBLOMOV_TEXT))])
    assert fixture.kind == "import" and "truncated" not in fixture.provenance
    assert fixture.provenance["format"] == "clinfo text (oblomov)"
    devs = S.devices_of([fixture], backends=["opencl"])
    assert [(d.name.value, d.device_type, d.pci.bus_id.get()) for d in devs] == [
        ("NVIDIA A100-SXM4-80GB", "gpu", "0000:c1:00.0"), ("NVIDIA A100-SXM4-80GB", "gpu", "0000:c2:00.0"),
        ("cpu-haswell-AMD EPYC 7763 64-Core Processor", "cpu", None)]
    a100 = devs[0]
    assert a100.memory.total_bytes.value == 85031714816 and a100.memory.max_allocation_bytes.value == 21257928704
    assert a100.capabilities.compute_capability.value == "8.0" and a100.capabilities.ecc_enabled.value is True
    assert a100.capabilities.max_graphics_clock_mhz.value == 1410 and a100.pci.vendor_id.value == "0x10de"
    assert a100.platform_version.value == "OpenCL 3.0 CUDA 12.4.131"
    assert devs[2].platform_name.value == "Portable Computing Language" and devs[2].vendor == "amd"
    # clinfo did not print it: not recorded, never guessed
    assert devs[1].capabilities.max_graphics_clock_mhz.status is Status.NOT_RECORDED


def test_amd_app_layout_with_name_after_properties(tmp_path: Path) -> None:
    fixture = import_files([str(_write(tmp_path, AMD_TEXT))])
    assert fixture.provenance["format"] == "clinfo text (amd-app-sdk)"
    (d,) = S.devices_of([fixture], backends=["opencl"])
    assert d.name.value == "gfx906" and d.board_product_name.value == "AMD Radeon VII"
    assert d.pci.bus_id.value == "0000:c3:00.0" and d.pci.vendor_id.value == "0x1002"
    assert d.capabilities.max_graphics_clock_mhz.value == 1802 and d.capabilities.fp16.value is True
    assert d.driver_version.value == "3180.7 (PAL,HSAIL)"


def test_markdown_fence_is_accepted(tmp_path: Path) -> None:
    fenced = "Some notes\n```\n" + OBLOMOV_TEXT + "```\nmore notes\n"
    devs = S.devices_of([import_files([str(_write(tmp_path, fenced, "c.md"))])], backends=["opencl"])
    assert len(devs) == 3


def test_a_file_cut_off_mid_device_keeps_what_was_printed_and_says_so(tmp_path: Path) -> None:
    second = OBLOMOV_TEXT.index("PCI-E, 0000:c2:00.0")
    cut = OBLOMOV_TEXT[: OBLOMOV_TEXT.index("  Global memory size", second)]
    fixture = import_files([str(_write(tmp_path, cut))])
    assert "platform 0 device 1" in fixture.provenance["truncated"]
    assert "platform 1: no device list" in fixture.provenance["truncated"]
    devs = S.devices_of([fixture], backends=["opencl"])
    assert len(devs) == 2  # the complete A100 and the cut one; the platform never reached lists none
    cut_dev = devs[1]
    assert cut_dev.name.value == "NVIDIA A100-SXM4-80GB" and cut_dev.capabilities.compute_units.value == 108
    assert cut_dev.memory.total_bytes.status is Status.NOT_RECORDED
    assert devs[0].memory.total_bytes.value == 85031714816


def test_a_file_cut_before_any_platform_is_an_import_error(tmp_path: Path) -> None:
    with pytest.raises(ImportFormatError, match="cut off before the first platform"):
        import_files([str(_write(tmp_path, "Number of platforms                               1\n"))])


def test_zero_platforms_replays_as_no_runtime(tmp_path: Path) -> None:
    fixture = import_files([str(_write(tmp_path, "Number of platforms                               0\n"))])
    (report,) = S.backends_of([fixture], backends=["opencl"])
    assert not report.available and "CL_PLATFORM_NOT_FOUND_KHR" in (report.reason or "")


@pytest.mark.parametrize(("content", "message"), [
    (b"hello world\n", "not clinfo output"),
    (b"\x00\x01\x02binary", "binary data"),
    (b"", "not clinfo output"),
    (b"Number of platforms                               lots\n", "Number of platforms"),
    ((OBLOMOV_TEXT.replace("Max compute units                               108",
                           "Max compute units                               many", 1)).encode(), "Max compute units"),
    (OBLOMOV_TEXT.replace("Error Correction support                        Yes",
                          "Error Correction support                        Maybe").encode(),
     "Error Correction support: not a yes/no value: 'Maybe'"),
    (OBLOMOV_TEXT.replace("Device Type                                     GPU",
                          "Device Type                                     Quantum", 1).encode(),
     "Device Type: unknown device type 'Quantum'"),
    (OBLOMOV_TEXT.replace("PCI-E, 0000:c1:00.0", "PCI-E, the second slot").encode(),
     "Device Topology \\(NV\\): not a PCI location"),
    (OBLOMOV_TEXT.replace("Number of devices                                 2",
                          "Number of devices                                 two").encode(), "Number of devices"),
])
def test_bad_files_give_one_clear_error(tmp_path: Path, content: bytes, message: str) -> None:
    p = tmp_path / "bad.txt"
    p.write_bytes(content)
    with pytest.raises(ImportFormatError, match=message) as e:
        import_files([str(p)])
    assert str(p) in str(e.value)


def test_a_platform_without_devices_replays_as_device_not_found(tmp_path: Path) -> None:
    text = OBLOMOV_TEXT.replace("Number of devices                                 1", "Number of devices"
                                "                                 0").split("  Device Name                     "
                                                                           "                cpu-haswell")[0]
    fixture = import_files([str(_write(tmp_path, text + "\n"))])
    assert "truncated" not in fixture.provenance
    calls = fixture.backends["opencl"].calls
    answers = [c.get("error", {}).get("name") for c in calls if c["fn"] == "platform_devices"]
    assert answers == [None, "CL_DEVICE_NOT_FOUND"]  # what clGetDeviceIDs answers for a platform without devices
    devices = S.devices_of([fixture], backends=["opencl"])
    assert [d.name.value for d in devices] == ["NVIDIA A100-SXM4-80GB", "NVIDIA A100-SXM4-80GB"]


def test_missing_file_and_several_files(tmp_path: Path) -> None:
    with pytest.raises(ImportFormatError, match="cannot read"):
        import_files([str(tmp_path / "nope.txt")])
    with pytest.raises(ImportFormatError, match="one clinfo output per fixture"):
        import_files([str(tmp_path / "a"), str(tmp_path / "b")])


def test_cli_import_error_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = _write(tmp_path, "not clinfo\n")
    assert main(["import", "clinfo", str(bad), "-o", str(tmp_path / "out.json")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("gpuabst: error:") and "Traceback" not in err


def test_parse_reports_layout() -> None:
    assert parse(AMD_TEXT, "x")[1] == "amd-app-sdk" and parse(OBLOMOV_TEXT, "x")[1] == "oblomov"


# --- the real captures ------------------------------------------------------------------------
EXPECTED = {  # read by hand from each capture: (name, device_type, global memory, bus id or None)
    "diegopso__opencl__clinfo.txt": [("Intel(R) HD Graphics", "gpu", 1709598311, None),
                                     ("Intel(R) Core(TM) i5-4590 CPU @ 3.30GHz", "cpu", 8107704320, None)],
    "hughperkins__gpu-experiments__clinfo_940m.md": [("GeForce 940M", "gpu", 1073610752, "0000:04:00.0")],
    "hughperkins__gpu-experiments__clinfo_titanx.md": [("GeForce GTX TITAN X", "gpu", 12884705280, None)],
    "weichen8157__HSA_microbench__clinfo.txt": [("Spectre", "gpu", 3063939072, "0000:00:01.0"),
                                                ("AMD A10-7850K APU with Radeon(TM) R7 Graphics", "cpu", 6129487872,
                                                 None)],
}


@needs_captures
@pytest.mark.parametrize("capture", [p for p in captures("opencl") if p.name in EXPECTED],
                         ids=lambda p: p.name)
def test_real_captures_import_one_device_per_opencl_device(capture: Path, tmp_path: Path) -> None:
    out = tmp_path / "f.json"
    assert main(["import", "clinfo", str(capture), "-o", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["provenance"]["kind"] == "import" and "truncated" not in data["provenance"]
    devs = S.devices_of([out], backends=["opencl"])
    got = [(d.name.value, d.device_type, d.memory.total_bytes.value, d.pci.bus_id.get()) for d in devs]
    assert got == EXPECTED[capture.name]


@needs_captures
def test_real_capture_cut_mid_device(tmp_path: Path) -> None:
    (src,) = [p for p in captures("opencl") if p.name == "weichen8157__HSA_microbench__clinfo.txt"]
    text = src.read_text()
    cut = text[: text.index("  Global memory size:\t\t\t\t 6129487872")]
    fixture = import_files([str(_write(tmp_path, cut))])
    assert "device 1" in fixture.provenance["truncated"]
    gpu, cpu = S.devices_of([fixture], backends=["opencl"])
    assert gpu.name.value == "Spectre" and gpu.memory.total_bytes.value == 3063939072
    assert cpu.device_type == "cpu" and cpu.name.status is Status.NOT_RECORDED  # Name comes after the cut
    assert cpu.capabilities.compute_units.value == 4


def test_current_clinfo_vendor_lines(tmp_path: Path) -> None:
    """Lines as clinfo 3.x prints them: KHR PCI bus info, AMD board name and PCIe id, NV with a domain."""
    rows = [
        ("", "Number of platforms", "1"), ("  ", "Platform Name", "Mixed"), ("  ", "Platform Version", "OpenCL 3.0"),
        None, ("  ", "Platform Name", "Mixed"), ("", "Number of devices", "3"),
        ("  ", "Device Name", "Intel(R) Arc(TM) A770 Graphics"), ("  ", "Device Type", "GPU"),
        ("  ", "Device PCI bus info (KHR)", "PCI-E, 0000:03:00.0"),
        ("  ", "Device Extensions", "cl_khr_pci_bus_info cl_khr_fp16"),
        ("  ", "Device Name", "gfx906:sramecc+:xnack-"), ("  ", "Device Type", "GPU"),
        ("  ", "Device Board Name (AMD)", "AMD Radeon VII"), ("  ", "Device PCI-e ID (AMD)", "0x66af"),
        ("  ", "Device Topology (AMD)", "PCI-E, 0000:c3:00.0"),
        ("  ", "Device Extensions", "cl_amd_device_attribute_query"),
        ("  ", "Device Name", "NVIDIA GeForce RTX 4090"), ("  ", "Device Type", "GPU"),
        ("  ", "Device Topology (NV)", "PCI-E, 0001:01:00.0"),
        ("  ", "Device Extensions", "cl_nv_device_attribute_query"),
    ]
    text = "".join("\n" if r is None else f"{r[0]}{r[1]:<48}{r[2]}\n" for r in rows)
    devs = S.devices_of([import_files([str(_write(tmp_path, text))])], backends=["opencl"])
    assert [d.pci.bus_id.value for d in devs] == ["0000:03:00.0", "0000:c3:00.0", "0001:01:00.0"]
    assert devs[1].board_product_name.value == "AMD Radeon VII" and devs[1].pci.device_id.value == "0x66af"

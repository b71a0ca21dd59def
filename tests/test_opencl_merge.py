"""One device per physical GPU when NVML and OpenCL both see it; OpenCL-only GPUs stay separate."""

from __future__ import annotations

from pathlib import Path

import opencl_synthetic as S
from synthetic import GIB, nvml_fixture

from gpuabst.fixtures import format as fmt
from gpuabst.fixtures.format import Fixture
from gpuabst.merge import merge_devices
from gpuabst.model import Device, PciInfo
from gpuabst.reading import Status

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "opencl"


def test_nvidia_machine_seen_by_nvml_and_opencl_is_one_device_per_gpu() -> None:
    snap = S.snapshot_of([nvml_fixture(2), S.nvidia_opencl_fixture(2)], backends=["nvml", "opencl"])
    assert len(snap.devices) == 2
    for i, d in enumerate(snap.devices):
        assert d.sources == ["nvml", "opencl"]
        assert d.pci.bus_id.value == f"0000:{0x18 + i:02x}:00.0"
        assert d.device_type == "gpu" and d.vendor == "nvidia"
        # NVML is the authority for what it reports...
        assert d.memory.total_bytes.value == 80 * GIB and d.memory.total_bytes.source == "nvml"
        assert d.name.source == "nvml" and d.capabilities.ecc_enabled.source == "nvml"
        # ...and OpenCL fills in what NVML cannot say
        assert d.capabilities.opencl_version.value == "OpenCL 3.0 CUDA"
        assert d.capabilities.opencl_version.source == "opencl"
        assert d.platform_name.value == "NVIDIA CUDA"
        assert d.memory.max_allocation_bytes.value == S.H100_OPENCL_MEMORY // 4
        assert "cl_nv_device_attribute_query" in d.capabilities.extensions.get([])
        # the disagreement is kept, not hidden
        (dis,) = [x for x in d.disagreements if x.field == "memory.total_bytes"]
        assert (dis.kept_source, dis.kept_value) == ("nvml", 80 * GIB)
        assert (dis.other_source, dis.other_value) == ("opencl", S.H100_OPENCL_MEMORY)
        # where both agree there is no disagreement
        assert not [x for x in d.disagreements if x.field in ("name", "pci.vendor_id", "capabilities.compute_units",
                                                               "capabilities.compute_capability", "driver_version")]


def test_a_gpu_only_opencl_sees_is_its_own_device() -> None:
    snap = S.snapshot_of([nvml_fixture(2), S.nvidia_opencl_fixture(2, extra_intel=True)],
                            backends=["nvml", "opencl"])
    assert [(d.vendor, d.sources) for d in snap.devices] == [
        ("nvidia", ["nvml", "opencl"]), ("nvidia", ["nvml", "opencl"]), ("intel", ["opencl"])]
    arc = snap.devices[2]
    assert arc.pci.bus_id.value == "0000:3b:00.0" and arc.index == 2
    assert arc.health.temperature_c.status is Status.NOT_RECORDED  # OpenCL has no health readings


def test_a_gpu_nvml_sees_but_opencl_does_not_keeps_only_nvml() -> None:
    snap = S.snapshot_of([nvml_fixture(2), S.nvidia_opencl_fixture(1)], backends=["nvml", "opencl"])
    assert [d.sources for d in snap.devices] == [["nvml", "opencl"], ["nvml"]]


def _nvml_940m() -> Fixture:
    """The synthetic NVML fixture moved to the 940M's bus (04:00.0) and name, to meet the real clinfo import."""
    fixture = nvml_fixture(1, name="GeForce 940M")
    for call in fixture.backends["nvml"].calls:
        if call["fn"] == "nvmlDeviceGetPciInfo":
            call["result"] = dict(call["result"], busId="00000000:04:00.0", bus=4)
    return fixture


def test_real_clinfo_import_of_a_940m_merges_with_nvml_by_bus_id() -> None:
    clinfo = fmt.load(FIXTURES / "clinfo-geforce-940m.json")
    (d,) = S.devices_of([_nvml_940m(), clinfo], backends=["nvml", "opencl"])
    assert d.sources == ["nvml", "opencl"] and d.pci.bus_id.value == "0000:04:00.0"
    assert d.capabilities.opencl_c_version.value == "OpenCL C 1.2"
    # the synthetic NVML side keeps its H100 values (9.0); the real clinfo says 5.0: kept as a disagreement
    (cc,) = [x for x in d.disagreements if x.field == "capabilities.compute_capability"]
    assert (cc.kept_source, cc.kept_value, cc.other_source, cc.other_value) == ("nvml", "9.0", "opencl", "5.0")


def test_a_cpu_device_is_never_merged_with_a_gpu() -> None:
    pocl = fmt.load(FIXTURES / "pocl-cpu.json")
    snap = S.snapshot_of([nvml_fixture(1), pocl], backends=["nvml", "opencl"])
    assert [(d.device_type, d.sources) for d in snap.devices] == [("gpu", ["nvml"]), ("cpu", ["opencl"])]


def test_merge_by_uuid_where_no_bus_id() -> None:
    from gpuabst.reading import missing, ok

    a = Device(vendor="nvidia", index=0, uuid=ok("GPU-1", "nvml"), name=ok("A", "nvml"), sources=["nvml"])
    b = Device(vendor="nvidia", index=0, uuid=ok("gpu-1", "opencl"), name=ok("A", "opencl"),
               platform_name=ok("NVIDIA CUDA", "opencl"), sources=["opencl"],
               driver_version=missing(Status.UNSUPPORTED, "opencl", "x", "no"))
    (m,) = merge_devices([(20, [b]), (100, [a])])
    assert m.sources == ["nvml", "opencl"] and m.platform_name.value == "NVIDIA CUDA" and not m.disagreements
    assert m.driver_version.status is Status.UNSUPPORTED  # a reason beats "no backend reported this value"


def test_one_backend_s_devices_are_kept_as_they_are_and_its_duplicates_merged() -> None:
    from gpuabst.reading import ok

    bus = ok("0000:18:00.0", "nvml")
    a = Device(vendor="nvidia", index=0, name=ok("A", "nvml"), pci=PciInfo(bus_id=bus), sources=["nvml"])
    assert merge_devices([]) == [] and merge_devices([(100, [])]) == []
    (kept,) = merge_devices([(100, [a])])
    assert kept is a
    # two devices of one backend at one bus id are one device, as across backends
    twin = Device(vendor="nvidia", index=1, name=ok("A", "nvml"), pci=PciInfo(bus_id=bus),
                  uuid=ok("GPU-2", "nvml"), sources=["nvml"])
    (merged,) = merge_devices([(100, [a, twin])])
    assert merged.uuid.value == "GPU-2" and merged.sources == ["nvml"]
    other = Device(vendor="nvidia", index=1, pci=PciInfo(bus_id=ok("0000:19:00.0", "nvml")), sources=["nvml"])
    assert merge_devices([(100, [a, other])]) == [a, other]
    # one UUID (in any case) without a bus id on one of them: one device too
    with_uuid = Device(vendor="nvidia", index=0, pci=PciInfo(bus_id=ok("0000:1a:00.0", "nvml")),
                       uuid=ok("GPU-3", "nvml"), sources=["nvml"])
    no_bus = Device(vendor="nvidia", index=1, uuid=ok("gpu-3", "nvml"), name=ok("C", "nvml"), sources=["nvml"])
    (joined,) = merge_devices([(100, [with_uuid, no_bus])])
    assert joined.pci.bus_id.value == "0000:1a:00.0" and joined.name.value == "C"

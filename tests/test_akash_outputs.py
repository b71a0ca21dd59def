"""Akash outputs (labels, attributes, inventory, NFD feature file) from replayed fixtures."""

from __future__ import annotations

import datetime
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import FIXTURES
from synthetic import nvml_fixture

from gpuabst import akash, catalog
from gpuabst.cli.main import main
from gpuabst.fixtures.format import save
from gpuabst.machine import Machine
from gpuabst.model import Capabilities, Device, PciInfo
from gpuabst.reading import ok

ALL_FIXTURES = sorted(p for p in FIXTURES.rglob("*.json") if not p.name.endswith(".expected.json"))


@pytest.fixture(autouse=True)
def _builtin_catalog() -> Any:
    catalog.use(None)
    yield
    catalog.use(None)


@pytest.fixture
def h100(tmp_path: Path) -> Path:
    """Two synthetic H100 SXM5 with MIG on (two MIG instances each)."""
    path = tmp_path / "h100x2.json"
    save(nvml_fixture(2, mig=True), path)
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


H100_LABELS = [
    "akash.network=true",
    "nvidia.com/gpu.present=true",
    "akash.network/capabilities.gpu.vendor.nvidia.model.h100=2",
    "akash.network/capabilities.gpu.vendor.nvidia.model.h100.ram.80Gi=2",
    "akash.network/capabilities.gpu.vendor.nvidia.model.h100.interface.sxm=2",
    "gpuabst/driver.nvidia.family=nvidia",
    "gpuabst/driver.nvidia.version=590.48.01",
    "gpuabst/driver.nvidia.cuda=13.1",
]


def test_labels_for_two_h100_with_mig(h100: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with Machine([h100]) as m:
        snap = m.snapshot()
    assert sum(len(d.partitions) for d in snap.devices) == 4, "the fixture has MIG instances"
    code, out, err = run(capsys, "labels", "--format", "akash", "--fixture", str(h100))
    assert code == 0 and err == ""
    assert out.splitlines() == H100_LABELS  # MIG instances do not change the count of 2
    assert not any(re.search(r"\.ram\.[^.]+\.interface\.", line) for line in out.splitlines())
    code, out, _ = run(capsys, "labels", "--fixture", str(h100), "--no-driver-labels")
    assert out.splitlines() == H100_LABELS[:5]


def test_attributes_are_the_four_forms_as_provider_yaml(h100: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "attributes", "--format", "akash", "--fixture", str(h100))
    assert code == 0
    doc = yaml.safe_load(out)
    assert doc["attributes"] == [
        {"key": "capabilities/gpu/vendor/nvidia/model/h100", "value": "true"},
        {"key": "capabilities/gpu/vendor/nvidia/model/h100/ram/80Gi", "value": "true"},
        {"key": "capabilities/gpu/vendor/nvidia/model/h100/interface/sxm", "value": "true"},
        {"key": "capabilities/gpu/vendor/nvidia/model/h100/ram/80Gi/interface/sxm", "value": "true"},
    ]


def test_inventory_is_akash_gpuinfo_with_raw_values(h100: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "inventory", "--json", "--fixture", str(h100))
    assert code == 0
    doc = json.loads(out)
    assert doc["schema"] == "gpuabst.akash-inventory" and doc["catalog"] == "gpuabst catalog"
    assert doc["gpus"] == [{"vendor": "nvidia", "vendor_id": "10de", "name": "h100", "model_id": "2330",
                            "interface": "SXM5", "memory_size": "80Gi"}] * 2
    assert [d["bus_id"] for d in doc["details"]] == ["0000:18:00.0", "0000:19:00.0"]
    assert doc["details"][0]["derived"] is False and doc["details"][0]["driver_version"] == "590.48.01"
    code, out, _ = run(capsys, "inventory", "--fixture", str(h100))
    assert code == 0 and out.count("h100") == 2 and "SXM5" in out


def test_nfd_feature_file(h100: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "features.d" / "gpuabst-akash"
    target.parent.mkdir()
    before = datetime.datetime.now(datetime.timezone.utc)
    code, out, _ = run(capsys, "labels", "--format", "nfd", "--fixture", str(h100), "-o", str(target),
                       "--expires-in", "600")
    assert code == 0 and out == ""
    assert [p.name for p in target.parent.iterdir()] == ["gpuabst-akash"], "no temporary file is left behind"
    lines = target.read_text().splitlines()
    features = [line for line in lines if not line.startswith("#")]
    assert features == H100_LABELS[1:]  # NFD cannot write the unprefixed akash.network label ...
    assert any(line.startswith("# akash.network=true") for line in lines)  # ... so it says so
    expiry = [line for line in lines if line.startswith("# +expiry-time=")]
    assert len(expiry) == 1
    when = datetime.datetime.strptime(expiry[0].split("=", 1)[1], "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=datetime.timezone.utc)
    assert before + datetime.timedelta(seconds=590) <= when <= before + datetime.timedelta(seconds=700)
    for line in features:  # every line is <key>=<value> with a namespaced key
        key, value = line.split("=", 1)
        assert "/" in key and value


def test_output_to_an_unwritable_place_is_one_line(h100: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "no" / "such" / "dir" / "f"
    code, _, err = run(capsys, "labels", "--fixture", str(h100), "-o", str(out))
    assert code == 1 and err == f"gpuabst: error: {out}: cannot write: No such file or directory\n"


# --- the 63-character limit -------------------------------------------------------------------
def _gpu(model: str, vendor: str = "nvidia", memory: str | None = "20Gi",
         iface: str | None = "pcie") -> akash.AdvertisedGpu:
    return akash.AdvertisedGpu(vendor=vendor, vendor_id="10de", model_id="27b0", model=model, memory=memory,
                               interface_raw="PCIe", interface=iface, name=None, bus_id=None, catalog_key=None,
                               basis="test", derived=False)


def test_label_names_up_to_63_characters_are_kept_longer_ones_left_out_with_a_warning() -> None:
    kept = akash.node_labels([_gpu("rtx4000sada")])
    longest = "akash.network/capabilities.gpu.vendor.nvidia.model.rtx4000sada.interface.pcie"
    assert (longest, "1") in kept.labels and len(longest.split("/", 1)[1]) == 63 and not kept.warnings
    over = akash.node_labels([_gpu("rtx4000sadax")])
    keys = [k for k, _ in over.labels]
    assert "akash.network/capabilities.gpu.vendor.nvidia.model.rtx4000sadax" in keys
    assert not any(k.endswith(".interface.pcie") for k in keys)
    assert len(over.warnings) == 1 and "64 characters" in over.warnings[0]


def test_strict_makes_a_left_out_label_an_error(h100: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "gpus.json"
    db.write_text(json.dumps({"10de": {"name": "nvidia", "devices": {
        "2330": {"name": "h100averyverylongslug", "interface": "SXM5", "memory_size": "80Gi"}}}}))
    code, out, err = run(capsys, "labels", "--fixture", str(h100), "--gpu-db", str(db))
    assert code == 0 and "gpuabst: warning: left out" in err and ".interface.sxm" not in out
    code, out, err = run(capsys, "labels", "--fixture", str(h100), "--gpu-db", str(db), "--strict")
    assert code == 1 and out == "" and err.startswith("gpuabst: error: left out")


# --- what is advertised ------------------------------------------------------------------------
def _device(index: int, vendor: str, device_type: str, vendor_id: str, device_id: str, name: str,
            total: int | None = None, unified: bool | None = None) -> Device:
    from gpuabst.model import MemoryInfo

    return Device(vendor=vendor, index=index, device_type=device_type, name=ok(name, "test"),
                  pci=PciInfo(vendor_id=ok(vendor_id, "test"), device_id=ok(device_id, "test"),
                              bus_id=ok(f"0000:{index:02x}:00.0", "test")),
                  memory=MemoryInfo(total_bytes=ok(total, "test")) if total else MemoryInfo(),
                  capabilities=Capabilities(unified_memory=ok(unified, "test")) if unified is not None
                  else Capabilities())


def test_only_gpus_are_advertised() -> None:
    devices = [
        _device(0, "aspeed", "display", "0x1a03", "0x2000", "ASPEED Graphics Family"),
        _device(1, "nvidia", "gpu", "0x10de", "0x26b9", "NVIDIA L40S", 46068 << 20),
        _device(2, "intel", "cpu", "0x8086", "0x0000", "Intel(R) Xeon(R) Platinum"),
        _device(3, "intel", "gpu", "0x8086", "0x46a6", "Intel(R) Iris(R) Xe Graphics"),
        _device(4, "amd", "gpu", "0x1002", "0x1638", "AMD Radeon Graphics", 512 << 20, unified=True),
        _device(5, "amd", "gpu", "0x1002", "0x74a1", "AMD Instinct MI300X", 196592 << 20),
    ]
    gpus, skipped = akash.advertised_gpus(devices)
    assert [(g.vendor, g.model, g.memory, g.interface) for g in gpus] == \
        [("nvidia", "l40s", "48Gi", "pcie"), ("amd", "mi300x", "192Gi", "sxm")]
    assert {s.index: s.device_type for s in skipped} == {0: "display", 2: "cpu", 3: "gpu", 4: "gpu"}
    assert "not in the catalog" in next(s.reason for s in skipped if s.index == 3)
    assert "integrated GPU" in next(s.reason for s in skipped if s.index == 4)
    labels = dict(akash.node_labels(gpus).labels)
    assert labels["akash.network/capabilities.gpu.vendor.amd.model.mi300x.interface.sxm"] == "1"
    assert labels["nvidia.com/gpu.present"] == "true"


def test_a_gpu_the_catalog_does_not_know_is_derived_and_says_so() -> None:
    gpus, _ = akash.advertised_gpus([_device(0, "nvidia", "gpu", "0x10de", "0x3bee", "NVIDIA Rubin R100",
                                             (288 << 30) - (300 << 20))])
    assert len(gpus) == 1
    g = gpus[0]
    assert (g.model, g.memory, g.interface_raw, g.derived) == ("rubinr100", "288Gi", "PCIe", True)
    assert "derived" in g.basis and "not in the catalog" in g.basis
    assert akash.inventory_records(gpus)[0]["model_id"] == "3bee"


def test_an_ambiguous_gpu_without_a_name_is_skipped_with_the_reason() -> None:
    dev = Device(vendor="nvidia", index=0, pci=PciInfo(vendor_id=ok("0x10de", "t"), device_id=ok("0x1e30", "t")))
    gpus, skipped = akash.advertised_gpus([dev])
    assert gpus == [] and "rtx6000" in skipped[0].reason and "rtx8000" in skipped[0].reason


def test_no_gpu_still_labels_the_node() -> None:
    labels = akash.node_labels([])
    assert labels.labels == [("akash.network", "true")]
    assert akash.provider_attributes([]) == []
    assert yaml.safe_load(akash.attributes_yaml([])) == {"attributes": []}


# --- every fixture ----------------------------------------------------------------------------
@pytest.mark.parametrize("path", ALL_FIXTURES, ids=[str(p.relative_to(FIXTURES)) for p in ALL_FIXTURES])
def test_every_fixture_produces_labels_and_attributes(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with Machine([path]) as m:
        devices = m.snapshot().devices
    gpus, skipped = akash.advertised_gpus(devices)
    gpu_devices = [d for d in devices if d.device_type == "gpu"]
    assert len(gpus) + len([s for s in skipped if s.device_type == "gpu"]) == len(gpu_devices)
    assert all(s.reason for s in skipped)

    code, out, err = run(capsys, "labels", "--fixture", str(path))
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "akash.network=true"
    counts = [int(v) for k, v in (line.split("=", 1) for line in lines)
              if re.fullmatch(r"akash\.network/capabilities\.gpu\.vendor\.[a-z0-9]+\.model\.[a-z0-9]+", k)]
    assert sum(counts) == len(gpus)
    assert ("nvidia.com/gpu.present=true" in lines) == any(g.vendor == "nvidia" for g in gpus)

    code, out, err = run(capsys, "attributes", "--fixture", str(path))
    assert code == 0, err
    attrs = yaml.safe_load(out)["attributes"]
    assert {a["key"].split("/")[5] for a in attrs} == {g.model for g in gpus}
    assert all(a["value"] == "true" for a in attrs)

    code, out, err = run(capsys, "inventory", "--json", "--fixture", str(path))
    assert code == 0, err
    assert len(json.loads(out)["gpus"]) == len(gpus)

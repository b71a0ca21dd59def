"""The sysfs PCI backend on a tree written in the test, live and replayed, alone and merged with NVML."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import sysfs_tree as T
from gpuabst_pci import binding, ids
from gpuabst_pci.backend import PciBackend
from synthetic import nvml_fixture

import gpuabst
from gpuabst.cli.main import main
from gpuabst.fixtures.format import Fixture, from_json, load
from gpuabst.machine import Machine
from gpuabst.model import Device
from gpuabst.pci import normalize_bus_id
from gpuabst.reading import Status
from gpuabst.serialize import to_dict

ROOT = Path(__file__).resolve().parent.parent
TREE_FIXTURE = ROOT / "fixtures" / "pci" / "h100-mi300x-aspeed.json"


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return T.build_tree(tmp_path / "sys")


def _by_bus(devices: list[Device]) -> dict[str, Device]:
    return {str(d.pci.bus_id.value): d for d in devices}


def _live(root: Path) -> dict[str, Device]:
    backend = PciBackend(root=root)
    try:
        return _by_bus(backend.devices())
    finally:
        backend.close()


def _replay(*fixtures: Fixture, backends: tuple[str, ...] = ("pci",)) -> list[Device]:
    with Machine(list(fixtures), backends=list(backends)) as m:
        return m.devices()


def _edit(fx: Fixture, bus: str, attr: str, outcome: dict[str, Any]) -> Fixture:
    """The fixture with every recorded ``read_attr(bus, attr)`` answered by ``outcome`` instead."""
    data = fx.to_json()
    for call in data["backends"]["pci"]["calls"]:
        if call["fn"] == "read_attr" and call["args"][1:] == [bus, attr]:
            call.pop("result", None)
            call.pop("error", None)
            call.update(outcome)
    return from_json(data, "<edited>")


def test_lists_display_controllers_and_accelerators_only(tree: Path) -> None:
    devs = _live(tree)
    assert sorted(devs) == [T.ASPEED_BUS, T.H100_BUS, T.MI300X_BUS]  # not the host bridge, not the NIC
    assert {b: (d.vendor, d.device_type) for b, d in devs.items()} == {
        T.ASPEED_BUS: ("aspeed", "display"), T.H100_BUS: ("nvidia", "gpu"), T.MI300X_BUS: ("amd", "gpu")}


def test_h100_identity_link_and_bars(tree: Path) -> None:
    d = _live(tree)[T.H100_BUS]
    p = d.pci
    assert (p.vendor_id.value, p.device_id.value, p.subsystem_vendor_id.value, p.subsystem_id.value) == (
        "0x10de", "0x2330", "0x10de", "0x16c1")
    assert (p.revision_id.value, p.class_code.value) == ("0xa1", "0x030200")
    assert p.bar_sizes_bytes.value == {"bar0": 16 << 20, "bar1": 128 * T.GIB, "bar3": 32 << 20}
    assert d.memory.bar1_total_bytes.value == 128 * T.GIB
    assert (d.driver_name.value, d.driver_version.value) == ("nvidia", "590.48.01")
    assert d.driver_version.call == "read_module_attr:version"
    assert d.capabilities.numa_node.value == 0
    assert (d.capabilities.pcie_max_generation.value, d.capabilities.pcie_max_width.value) == (5, 16)
    assert (d.health.pcie_current_generation.value, d.health.pcie_current_width.value) == (5, 16)
    assert d.health.pcie_link_degraded.value is False
    assert d.pci.vendor_id.source == "pci" and d.capabilities.pcie_max_generation.call == "read_attr:max_link_speed"


def test_mi300x_processing_accelerator_with_amdgpu_memory(tree: Path) -> None:
    d = _live(tree)[T.MI300X_BUS]
    assert d.pci.class_code.value == "0x120000" and d.device_type == "gpu"
    assert d.memory.total_bytes.value == T.MI300X_VRAM
    assert d.memory.total_bytes.call == "read_attr:mem_info_vram_total"
    assert d.pci.bar_sizes_bytes.value == {"bar0": 256 * T.GIB, "bar2": 2 << 20, "bar5": 512 << 10}
    assert d.memory.bar1_total_bytes.status is Status.NOT_RECORDED  # BAR1 means the frame buffer only on NVIDIA
    assert (d.health.pcie_current_generation.value, d.capabilities.pcie_max_generation.value) == (4, 5)
    assert d.health.pcie_link_degraded.value is True
    assert d.capabilities.numa_node.value == 1
    assert d.vbios_version.value == "113-M3000100-102"
    assert d.board_product_name.status is Status.UNSUPPORTED
    assert d.driver_version.status is Status.UNSUPPORTED and "amdgpu module has no version" in str(
        d.driver_version.reason)


def test_bmc_vga_is_a_display_device_with_reasons_for_what_it_lacks(tree: Path) -> None:
    d = _live(tree)[T.ASPEED_BUS]
    assert (d.device_type, d.name.value, d.driver_name.value) == ("display", "ASPEED Graphics Family", "ast")
    numa = d.capabilities.numa_node
    assert numa.status is Status.NOT_APPLICABLE and "-1" in str(numa.reason)
    for r in (d.capabilities.pcie_max_generation, d.capabilities.pcie_max_width,
              d.health.pcie_current_generation, d.health.pcie_link_degraded):
        assert r.status is Status.NOT_APPLICABLE and "not a PCI Express device" in str(r.reason)
    assert d.pci.bar_sizes_bytes.value == {"bar0": 16 << 20, "bar1": 256 << 10, "bar2": 128}


def test_gpu_names_come_from_the_catalog(tree: Path) -> None:
    devs = _live(tree)
    assert (devs[T.H100_BUS].name.value, devs[T.H100_BUS].name.call) == ("NVIDIA H100 80GB HBM3", "catalog:10de:2330")
    assert devs[T.MI300X_BUS].name.value == "AMD Instinct MI300X"


@pytest.mark.parametrize(("subsystem", "name"), [("0x129e", "Quadro RTX 8000"), ("0x12ba", "Quadro RTX 6000")])
def test_shared_device_id_told_apart_by_subsystem(tree: Path, subsystem: str, name: str) -> None:
    dev = tree / "bus" / "pci" / "devices" / T.H100_BUS
    (dev / "device").write_text("0x1e30\n")
    (dev / "subsystem_device").write_text(subsystem + "\n")
    assert _live(tree)[T.H100_BUS].name.value == name


def test_shared_device_id_the_evidence_cannot_decide_is_not_guessed(tree: Path) -> None:
    dev = tree / "bus" / "pci" / "devices" / T.MI300X_BUS
    (dev / "device").write_text("0x66a1\n")  # MI60, MI50 32GB, MI50 16GB and Radeon Pro VII share it
    (dev / "mem_info_vram_total").write_text(str(32 * T.GIB) + "\n")
    name = _live(tree)[T.MI300X_BUS].name
    assert name.status is Status.UNSUPPORTED and name.reason


def test_device_the_catalog_does_not_know_has_no_made_up_name(tree: Path) -> None:
    (tree / "bus" / "pci" / "devices" / T.H100_BUS / "device").write_text("0xfffe\n")
    name = _live(tree)[T.H100_BUS].name
    assert name.status is Status.UNSUPPORTED and "10de:fffe is not in the catalog" in str(name.reason)


def test_root_from_environment(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(binding.ROOT_ENV, str(tree))
    with Machine([], backends=["pci"]) as m:
        assert sorted(str(d.pci.bus_id.value) for d in m.devices()) == [T.ASPEED_BUS, T.H100_BUS, T.MI300X_BUS]
    assert PciBackend(root="/elsewhere").root.path == "/elsewhere"  # the constructor option wins


def test_missing_root_makes_the_backend_unavailable_not_an_exception(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(binding.ROOT_ENV, str(tmp_path / "nowhere"))
    report = {r.name: r for r in gpuabst.backends(backends=["pci"])}["pci"]
    assert not report.available and "no such directory" in str(report.reason)
    assert gpuabst.devices(backends=["pci"]) == []


def test_replay_gives_what_the_live_tree_gave(tree: Path) -> None:
    live = [to_dict(d) for d in sorted(_live(tree).values(), key=lambda d: str(d.pci.bus_id.value))]
    replayed = [to_dict(d) for d in _replay(T.record(tree))]
    for d in live + replayed:
        d.pop("index"), d.pop("model"), d["readings"].pop("model")  # the Machine adds the model slug
    assert replayed == live


def test_committed_fixture_is_the_recording_of_the_tree(tree: Path) -> None:
    committed = load(TREE_FIXTURE)
    assert committed.kind == "synthetic"
    assert committed.backends["pci"].calls == T.record(tree).backends["pci"].calls


def test_poll_rereads_only_the_current_link(tree: Path) -> None:
    with Machine([], backends=["pci"]) as m:
        backend = m.backend("pci")
        assert isinstance(backend, PciBackend)
        backend.root = binding.SysfsRoot(tree)
        first = _by_bus(m.snapshot().devices)[T.H100_BUS]
        dev = tree / "bus" / "pci" / "devices" / T.H100_BUS
        (dev / "current_link_speed").write_text("2.5 GT/s PCIe\n")
        (dev / "max_link_speed").write_text("8.0 GT/s PCIe\n")  # static: not read again by a poll
        polled = _by_bus(m.poll().devices)[T.H100_BUS]
    assert first.health.pcie_current_generation.value == 5
    assert polled.health.pcie_current_generation.value == 1
    assert polled.capabilities.pcie_max_generation.value == 5
    assert polled.health.pcie_link_degraded.value is True


def test_unbound_device_and_odd_kernel_values(tree: Path) -> None:
    dev = tree / "bus" / "pci" / "devices" / T.H100_BUS
    (dev / "driver").unlink()
    (dev / "current_link_speed").write_text("Unknown\n")
    (dev / "current_link_width").write_text("0\n")
    (dev / "resource").write_text("0x1 0x2\n")
    d = _live(tree)[T.H100_BUS]
    assert d.driver_name.status is Status.NOT_APPLICABLE and d.driver_name.reason == "no driver is bound to this device"
    assert d.driver_version.status is Status.NOT_APPLICABLE
    assert d.health.pcie_current_generation.status is Status.UNSUPPORTED
    assert "'Unknown'" in str(d.health.pcie_current_generation.reason)
    assert d.health.pcie_current_width.status is Status.UNSUPPORTED
    assert d.pci.bar_sizes_bytes.status is Status.ERROR and "2 fields" in str(d.pci.bar_sizes_bytes.reason)
    assert d.memory.bar1_total_bytes.status is Status.ERROR
    assert d.pci.device_id.value == "0x2330"  # the rest of the device is still read


@pytest.mark.parametrize(("code", "status"), [("EACCES", Status.NO_PERMISSION), ("ENOENT", Status.NOT_APPLICABLE),
                                              ("EIO", Status.ERROR)])
def test_recorded_read_failures_replay_as_readings(tree: Path, code: str, status: Status) -> None:
    fx = _edit(T.record(tree), T.H100_BUS, "numa_node", {"error": {"code": code}})
    d = _by_bus(_replay(fx))[T.H100_BUS]
    assert d.capabilities.numa_node.status is status
    assert d.capabilities.numa_node.reason is not None
    assert d.capabilities.pcie_max_width.value == 16


def test_device_gone_mid_read_stops_further_reads_of_it(tree: Path) -> None:
    fx = _edit(T.record(tree), T.H100_BUS, "subsystem_vendor", {"error": {"code": "ENODEV"}})
    devs = _by_bus(_replay(fx))
    d = devs[T.H100_BUS]
    assert d.pci.subsystem_vendor_id.status is Status.ERROR and "gone" in str(d.pci.subsystem_vendor_id.reason)
    assert d.capabilities.numa_node.reason == "device lost earlier in this read"
    assert devs[T.MI300X_BUS].capabilities.numa_node.value == 1  # the other devices are unaffected


def test_unreadable_class_skips_the_function(tree: Path) -> None:
    fx = _edit(T.record(tree), T.MI300X_BUS, "class", {"error": {"code": "EACCES"}})
    assert sorted(_by_bus(_replay(fx))) == [T.ASPEED_BUS, T.H100_BUS]


def test_hostile_listing_in_a_fixture_is_skipped_or_reported(tree: Path) -> None:
    data = T.record(tree).to_json()
    calls = data["backends"]["pci"]["calls"]
    for call in calls:
        if call["fn"] == "list_devices":
            call["result"] = ["../../etc", 7, None, *call["result"]]
    assert sorted(_by_bus(_replay(from_json(data)))) == [T.ASPEED_BUS, T.H100_BUS, T.MI300X_BUS]
    for call in calls:
        if call["fn"] == "list_devices":
            call["result"] = "0000:18:00.0"
    with Machine([from_json(data)], backends=["pci"]) as m:
        snap = m.snapshot()
    (report,) = snap.backends
    assert snap.devices == [] and not report.available and "not a list" in str(report.error)


def _add_virtual_functions(tree: Path, pf: str, vfs: list[str]) -> None:
    devices = tree / "bus" / "pci" / "devices"
    for vf in vfs:
        d = devices / vf
        d.mkdir()
        for name in ("vendor", "device", "class", "subsystem_vendor", "subsystem_device", "revision"):
            (d / name).write_text((devices / pf / name).read_text())
        os.symlink(f"../{pf}", d / "physfn")


def test_sriov_virtual_functions_are_partitions_not_gpus(tree: Path) -> None:
    vfs = ["0000:18:00.4", "0000:18:00.5"]
    _add_virtual_functions(tree, T.H100_BUS, vfs)
    devs = _live(tree)
    assert sorted(devs) == [T.ASPEED_BUS, T.H100_BUS, T.MI300X_BUS]
    parts = devs[T.H100_BUS].partitions
    assert [(p.kind, p.index, p.parent_bus_id) for p in parts] == [("sriov_vf", i, T.H100_BUS) for i in (0, 1)]
    assert [p.name.value for p in parts] == [f"virtual function {vf}" for vf in vfs]
    assert devs[T.MI300X_BUS].partitions == []
    # a virtual function whose physical function is not listed is still reported
    fx = _edit(T.record(tree), T.H100_BUS, "class", {"error": {"code": "EACCES"}})
    assert sorted(_by_bus(_replay(fx))) == [T.ASPEED_BUS, *vfs, T.MI300X_BUS]


def test_binding_refuses_paths_outside_the_tree(tree: Path) -> None:
    root = binding.SysfsRoot(tree)
    with pytest.raises(ValueError):
        binding.read_attr(root, "../../../etc", "passwd")
    with pytest.raises(ValueError):
        binding.read_attr(root, T.H100_BUS, "../vendor")
    with pytest.raises(ValueError):
        binding.read_module_attr(root, "../bus", "version")
    assert binding.read_attr(root, T.H100_BUS, "vendor") == "0x10de\n"
    assert binding.read_link(root, T.H100_BUS, "driver") == "nvidia"


def test_merges_with_nvml_by_bus_id_and_nvml_wins(tree: Path) -> None:
    (tree / "bus" / "pci" / "devices" / T.H100_BUS / "max_link_width").write_text("8\n")
    merged = _replay(nvml_fixture(1), T.record(tree), backends=("nvml", "pci"))
    devs = _by_bus(merged)
    assert len(merged) == 3
    h100 = devs[T.H100_BUS]
    assert h100.sources == ["nvml", "pci"] and h100.device_type == "gpu"
    assert h100.name.value == "NVIDIA H100 80GB HBM3" and h100.name.source == "nvml"
    assert h100.pci.vendor_id.source == "nvml"  # both have it: the vendor backend's Reading is kept
    assert (h100.pci.revision_id.value, h100.pci.revision_id.source) == ("0xa1", "pci")  # only sysfs has it
    assert h100.pci.class_code.value == "0x030200"
    assert h100.capabilities.pcie_max_width.value == 16  # NVML's, over the edited tree's 8
    fields = {x.field: x for x in h100.disagreements}
    assert fields["capabilities.pcie_max_width"].other_value == 8
    assert fields["capabilities.pcie_max_width"].other_source == "pci"
    # everything else both read agrees: ids, subsystem, NUMA node, link, BAR1 size, driver and its version
    assert set(fields) - {"name"} == {"capabilities.pcie_max_width"}
    assert h100.memory.bar1_total_bytes.value == 128 * T.GIB and h100.driver_version.value == "590.48.01"
    assert devs[T.ASPEED_BUS].device_type == "display" and devs[T.MI300X_BUS].sources == ["pci"]


def test_merges_with_amdsmi_by_bus_id_and_amdsmi_wins(tree: Path) -> None:
    from amdsmi_synthetic import amdsmi_fixture, mi300x

    merged = _by_bus(_replay(amdsmi_fixture([mi300x(0, bus=0x75)]), T.record(tree), backends=("amdsmi", "pci")))
    d = merged[T.MI300X_BUS]
    assert d.sources == ["amdsmi", "pci"] and len(merged) == 3
    assert d.memory.total_bytes.value == T.MI300X_VRAM and d.memory.total_bytes.source == "amdsmi"
    assert (d.pci.class_code.value, d.pci.class_code.source) == ("0x120000", "pci")
    fields = {x.field: x for x in d.disagreements}
    assert "memory.total_bytes" not in fields  # amdgpu's sysfs and amdsmi agree on the VRAM
    numa = fields["capabilities.numa_node"]  # the tree says 1, the synthetic amdsmi machine 0
    assert (numa.kept_source, numa.kept_value, numa.other_source, numa.other_value) == ("amdsmi", 0, "pci", 1)
    assert d.capabilities.numa_node.value == 0


def test_capture_command_records_a_tree_that_replays(tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "captured.json"
    monkeypatch.setenv(binding.ROOT_ENV, str(tree))
    assert main(["capture", "--backend", "pci", "-o", str(out)]) == 0
    monkeypatch.delenv(binding.ROOT_ENV)
    capsys.readouterr()
    assert main(["list", "--json", "--all", "--backend", "pci", "--fixture", str(out)]) == 0
    rows = json.loads(capsys.readouterr().out)["devices"]
    assert [(r["bus_id"], r["device_type"]) for r in rows] == [
        (T.ASPEED_BUS, "display"), (T.H100_BUS, "gpu"), (T.MI300X_BUS, "gpu")]
    assert os.path.isfile(out) and load(out).kind == "capture"


@pytest.mark.parametrize(("text", "gen"), [("2.5 GT/s PCIe", 1), ("5.0 GT/s PCIe", 2), ("8.0 GT/s PCIe", 3),
                                          ("16.0 GT/s PCIe", 4), ("32.0 GT/s PCIe", 5), ("64.0 GT/s PCIe", 6),
                                          ("8 GT/s", 3), ("2.5 GT/s\n", 1)])
def test_link_speed_to_generation(text: str, gen: int) -> None:
    speed = ids.parse_link_speed(text)
    assert speed is not None and ids.generation(speed) == gen


def test_link_speed_not_a_speed() -> None:
    assert ids.parse_link_speed("Unknown\n") is None
    with pytest.raises(ValueError):
        ids.generation(3.0)


@pytest.mark.parametrize(("vendor", "device", "klass", "kind"), [
    (0x10DE, 0x2330, 0x030200, "gpu"),          # H100: 3D controller
    (0x10DE, 0x2684, 0x030000, "gpu"),          # RTX 4090: VGA
    (0x1002, 0x74A1, 0x120000, "gpu"),          # MI300X: processing accelerator
    (0x1002, 0x740F, 0x038000, "gpu"),          # MI210: display controller
    (0x8086, 0x0BD5, 0x038000, "gpu"),          # Intel Data Center GPU Max
    (0x8086, 0x7D1D, 0x120000, "accelerator"),  # Intel NPU
    (0x1DA3, 0x1020, 0x120000, "accelerator"),  # Habana Gaudi2
    (0x1A03, 0x2000, 0x030000, "display"),      # ASPEED BMC VGA
    (0x102B, 0x0534, 0x030000, "display"),      # Matrox G200eR2 BMC VGA
    (0x1234, 0x1111, 0x030000, "display"),      # QEMU standard VGA
    (0x1AF4, 0x1050, 0x030000, "display"),      # virtio-gpu
    (0xABCD, 0x0001, 0x030200, "gpu"),          # an unknown vendor's 3D controller
    (0xABCD, 0x0001, 0x030000, "display"),      # an unknown vendor's VGA
])
def test_device_type(vendor: int, device: int, klass: int, kind: str) -> None:
    assert ids.device_type(vendor, device, klass) == kind


def test_bar_sizes_from_resource_lines() -> None:
    text = T.resource((0xE2000000, 16 << 20, T.MEM32), None, (0x2000, 128, T.IO))
    assert ids.parse_bar_sizes(text) == {"bar0": 16 << 20, "bar2": 128}
    assert len(text.splitlines()) == 13
    with pytest.raises(ValueError):
        ids.parse_bar_sizes("")
    with pytest.raises(ValueError):
        ids.parse_bar_sizes("0x10 0x0f 0x200\n")  # ends before it starts


@pytest.mark.parametrize(("text", "bus"), [
    ("00000000:3B:00.0", "0000:3b:00.0"), ("3b:00.0", "0000:3b:00.0"), ("00001580:01:00.1", "1580:01:00.1"),
    ("  0000:C1:00.0\n", "0000:c1:00.0"),
])
def test_bus_ids_are_written_the_kernel_way(text: str, bus: str) -> None:
    assert normalize_bus_id(text) == bus
    assert normalize_bus_id(text) == bus  # the second time from what was kept


def test_bus_ids_kept_for_speed_are_bounded_and_short() -> None:
    from gpuabst import pci

    for i in range(5000):
        bus = f"0000:{i % 256:02x}:{i // 256:02x}.{i % 8}"
        assert normalize_bus_id(bus.upper()) == bus
    padded = " " * 100 + "0000:3b:00.0"
    assert normalize_bus_id(padded) == "0000:3b:00.0"
    assert len(pci._normalized) <= 4096 and padded not in pci._normalized
    with pytest.raises(ValueError, match="not a PCI bus id"):
        normalize_bus_id("0000:3b:00")


def test_kernel_values_that_are_not_what_pcie_allows_say_so(tree: Path) -> None:
    dev = tree / "bus" / "pci" / "devices" / T.H100_BUS
    (dev / "current_link_speed").write_text("7.0 GT/s PCIe\n")  # a number, but no PCIe generation's
    (dev / "max_link_width").write_text("sixteen\n")
    (dev / "resource").write_text(T.resource((0xE2000000, 16 << 20, T.MEM32)))  # BAR1 not assigned
    (tree / "module" / "nvidia" / "version").write_text("\n")
    d = _live(tree)[T.H100_BUS]
    gen, width = d.health.pcie_current_generation, d.capabilities.pcie_max_width
    assert (gen.status, gen.reason) == (Status.ERROR, "7 GT/s is not a PCIe link speed")
    assert width.status is Status.ERROR and (width.reason or "").startswith("unexpected value 'sixteen")
    bar1 = d.memory.bar1_total_bytes
    assert (bar1.status, bar1.reason) == (Status.UNSUPPORTED, "BAR1 is not assigned")
    version = d.driver_version
    assert (version.status, version.reason) == (Status.UNSUPPORTED, "the nvidia module's version is empty")
    assert d.pci.device_id.value == "0x2330"


def test_a_poll_keeps_a_device_without_a_bus_id_as_it_was(tree: Path) -> None:
    from gpuabst.model import replace as model_replace
    from gpuabst.reading import missing

    backend = PciBackend(root=tree)
    try:
        first = backend.devices()
        odd = model_replace(first[0], pci=model_replace(first[0].pci, bus_id=missing(Status.ERROR, "pci", None, "x")))
        polled = backend.poll([odd, *first[1:]])
        assert polled[0] is odd and len(polled) == len(first)
    finally:
        backend.close()

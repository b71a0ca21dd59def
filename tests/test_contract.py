"""Every backend meets the contract (gpuabst.testing.contract) on every fixture of its own in fixtures/,
and the contract catches each kind of breach it promises to."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import FIXTURES
from synthetic import nvml_fixture

from gpuabst.fixtures import format as fmt
from gpuabst.model import Capabilities, Device, HealthReadings, MemoryInfo, Partition, PciInfo
from gpuabst.reading import Reading, Status, missing, ok
from gpuabst.testing.contract import (
    BackendContractTests,
    check_devices,
    check_fixture,
    clear_replay_cache,
    fixture_params,
)

ALL_FIXTURES = sorted(p for p in FIXTURES.rglob("*.json") if not p.name.endswith(".expected.json"))


def test_there_are_fixtures_to_check() -> None:
    assert len(ALL_FIXTURES) >= 2
    assert {p.parent.name for p in ALL_FIXTURES} >= {"nvidia"}


@pytest.mark.parametrize("path", fixture_params(ALL_FIXTURES, FIXTURES))
def test_backend_meets_the_contract_on_its_own_fixture(path: str) -> None:
    problems = check_fixture(path)
    assert not problems, "\n".join(map(str, problems))


def _r(value: Any) -> Reading[Any]:
    return ok(value, "test", "testCall")


def _device(**changes: object) -> Device:
    base: dict[str, object] = dict(vendor="nvidia", index=0, name=_r("GPU"), sources=["test"],
                                   pci=PciInfo(bus_id=_r("0000:3b:00.0"), vendor_id=_r("0x10de")))
    base.update(changes)
    return Device(**base)  # type: ignore[arg-type]


def _found(device: Device) -> set[tuple[str, str | None]]:
    return {(p.check, p.field) for p in check_devices([device])}


def test_a_clean_device_passes() -> None:
    d = _device(memory=MemoryInfo(total_bytes=_r(16 << 30), used_bytes=_r(1 << 30)),
                health=HealthReadings(temperature_c=_r(45.0), fan_speed_pct=missing(
                    Status.UNSUPPORTED, "test", "nvmlDeviceGetFanSpeed", "NVML_ERROR_NOT_SUPPORTED")),
                partitions=[Partition("mig", 0, "0000:3b:00.0", name=_r("1g.10gb"))])
    assert check_devices([d]) == []


@pytest.mark.parametrize(("changes", "expected"), [
    ({"memory": MemoryInfo(total_bytes=_r(-1))}, ("units", "memory.total_bytes")),
    ({"memory": MemoryInfo(total_bytes=_r(1.5))}, ("types", "memory.total_bytes")),
    ({"memory": MemoryInfo(total_bytes=_r(10), used_bytes=_r(11))}, ("units", "memory.used_bytes")),
    ({"health": HealthReadings(utilization_gpu_pct=_r(100.5))}, ("units", "health.utilization_gpu_pct")),
    ({"health": HealthReadings(temperature_c=_r(400.0))}, ("units", "health.temperature_c")),
    ({"health": HealthReadings(power_draw_w=_r(-3.0))}, ("units", "health.power_draw_w")),
    ({"health": HealthReadings(temperature_c=_r(float("nan")))}, ("no_none", "health.temperature_c")),
    ({"health": HealthReadings(fan_speed_pct=missing(Status.UNSUPPORTED))}, ("reasons", "health.fan_speed_pct")),
    ({"health": HealthReadings(throttle_reasons=_r(["idle", None]))}, ("no_none", "health.throttle_reasons")),
    ({"capabilities": Capabilities(ecc_enabled=_r(1))}, ("types", "capabilities.ecc_enabled")),
    ({"capabilities": Capabilities(compute_units=_r(True))}, ("types", "capabilities.compute_units")),
    ({"name": _r("N/A")}, ("no_none", "name")),
    ({"name": ok("GPU", None, "call")}, ("reasons", "name")),
    ({"pci": PciInfo(bus_id=_r("0000:3B:00.0"))}, ("units", "pci.bus_id")),
    ({"pci": PciInfo(device_id=_r("2330"))}, ("units", "pci.device_id")),
    ({"sources": []}, ("reasons", "sources")),
    ({"vendor": "NVIDIA"}, ("types", "vendor")),
    ({"partitions": [Partition("mig", 0, "0000:af:00.0")]}, ("partitions", "partitions[0].parent_bus_id")),
    ({"partitions": [Partition("mig", 0, None)]}, ("partitions", "partitions[0].parent_bus_id")),
    ({"partitions": [Partition("mig", 1, "0000:3b:00.0"), Partition("mig", 1, "0000:3b:00.0")]},
     ("partitions", "partitions[1].index")),
    ({"partitions": [Partition("mig", 0, "0000:3b:00.0", memory_total_bytes=_r(-5))]},
     ("units", "partitions[0].memory_total_bytes")),
    ({"pci": PciInfo(bar_sizes_bytes=_r({"bar0": 16 << 20, "bar1": -1}))}, ("units", "pci.bar_sizes_bytes")),
    ({"health": HealthReadings(power_draw_w=_r(float("inf")))}, ("units", "health.power_draw_w")),
    ({"health": HealthReadings(ecc_corrected_volatile=_r(-2))}, ("units", "health.ecc_corrected_volatile")),
    ({"capabilities": Capabilities(pcie_max_generation=_r(9))}, ("units", "capabilities.pcie_max_generation")),
    ({"health": HealthReadings(pcie_current_width=_r(64))}, ("units", "health.pcie_current_width")),
    ({"health": HealthReadings(temperature_c=41.0)}, ("types", "health.temperature_c")),  # type: ignore[arg-type]
    ({"health": HealthReadings(temperature_c=None)}, ("no_none", "health.temperature_c")),  # type: ignore[arg-type]
    ({"partitions": [Partition("", 0, "0000:3b:00.0")]}, ("partitions", "partitions[0].kind")),
    ({"partitions": [Partition("mig", 0, "3b:00.0")]}, ("partitions", "partitions[0].parent_bus_id")),
])
def test_the_contract_catches(changes: dict[str, object], expected: tuple[str, str]) -> None:
    assert expected in _found(_device(**changes))


def test_a_reading_must_name_its_own_backend() -> None:
    d = _device(name=ok("GPU", "nvml", "nvmlDeviceGetName"))
    assert [(p.check, p.field) for p in check_devices([d], backend="test")] == [("reasons", "name")]
    assert check_devices([d]) == []  # backend unknown: not checked


def test_a_fixture_of_a_backend_that_is_not_installed_fails_replay(tmp_path: Path) -> None:
    fx = nvml_fixture(1)
    data = fx.to_json()
    data["backends"] = {"nosuchbackend": data["backends"]["nvml"]}
    path = tmp_path / "other.json"
    path.write_text(fmt.dumps(fmt.from_json(data)))
    problems = check_fixture(path)
    assert [p.check for p in problems] == ["replay"] and "nosuchbackend" == problems[0].backend


def test_partitions_without_their_parent_are_caught(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The replay path of the contract runs the real backend: break the backend, the check fails."""
    import gpuabst_nvml.backend as nvml_backend

    path = tmp_path / "mig.json"
    fmt.save(nvml_fixture(1, mig=True), path)
    assert check_fixture(path) == []
    real = nvml_backend.NvmlBackend._mig_partitions

    def unlinked(self, h, key, enabled, bus):  # type: ignore[no-untyped-def]
        return real(self, h, key, enabled, None)

    monkeypatch.setattr(nvml_backend.NvmlBackend, "_mig_partitions", unlinked)
    clear_replay_cache()  # the contract caches replays per file version
    problems = check_fixture(path, checks=("partitions",))
    assert problems and all(p.field and p.field.endswith("parent_bus_id") for p in problems)


class TestContractBaseClassOnASyntheticFixture(BackendContractTests):
    """What a third-party backend package writes: the base class, its own fixture paths."""

    fixture_paths = [str(FIXTURES / "nvidia" / "tesla-t4.json")]
    backends = ["nvml"]


def test_the_pytest_plugin_checks_a_fixture(gpuabst_contract: object, tmp_path: Path) -> None:
    from collections.abc import Callable

    check: Callable[..., None] = gpuabst_contract  # type: ignore[assignment]
    check(FIXTURES / "nvidia" / "tesla-t4.json")
    data = nvml_fixture(1).to_json()
    data["backends"] = {"nosuchbackend": data["backends"]["nvml"]}
    bad = tmp_path / "bad.json"
    bad.write_text(fmt.dumps(fmt.from_json(data)))
    with pytest.raises(pytest.fail.Exception, match=r"(?s)1 contract problem\(s\).*nosuchbackend.*did not run"):
        check(bad)

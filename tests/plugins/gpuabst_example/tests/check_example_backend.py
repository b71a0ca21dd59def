"""The example plugin's own tests: what a third-party backend package runs against its fixtures.

Run them with the plugin installed: ``pip install -e . && pytest``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from gpuabst.machine import Machine
from gpuabst.reading import Status
from gpuabst.registry import discover
from gpuabst.testing.contract import BackendContractTests

FIXTURES = sorted((Path(__file__).resolve().parent.parent / "fixtures").glob("*.json"))


class TestExampleBackendContract(BackendContractTests):
    """gpuabst's contract, one test per check, over every fixture of this plugin."""

    fixture_paths = FIXTURES
    backends = ["example"]


def test_the_registry_finds_the_backend() -> None:
    entry = next(e for e in discover() if e.name == "example")
    assert entry.backend_class is not None and entry.distribution == "gpuabst-example"


def test_a_replayed_machine(gpuabst_replay: Callable[..., Machine]) -> None:
    machine = gpuabst_replay(FIXTURES[0])
    devices = machine.snapshot().devices
    assert [d.name.value for d in devices] == ["Example X1", "Example X1"]
    assert devices[0].memory.total_bytes.value == 16 * 1024**3
    fan = devices[0].health.fan_speed_pct
    assert fan.status is Status.UNSUPPORTED and fan.reason == "EX_ERROR_NOT_SUPPORTED"
    assert fan.call == "ex_device_fan_percent"

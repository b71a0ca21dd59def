"""The pytest plugin gives tests a replayed machine from a fixture path."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
from synthetic import nvml_fixture

from gpuabst.fixtures import format as fmt
from gpuabst.machine import Machine

FIXTURE = Path(tempfile.gettempdir()) / f"gpuabst-plugin-test-{os.getpid()}.json"


@pytest.fixture(scope="module", autouse=True)
def _fixture_file() -> object:
    fmt.save(nvml_fixture(3), FIXTURE)
    yield
    FIXTURE.unlink()


def test_factory(gpuabst_replay: Callable[..., Machine]) -> None:
    m = gpuabst_replay(FIXTURE, backends=["nvml"])
    assert m.mode == "replay"
    assert [d.model.value for d in m.snapshot().devices] == ["h100"] * 3


@pytest.mark.gpuabst_fixture(str(FIXTURE), backends=["nvml"])
def test_marker(gpuabst_machine: Machine) -> None:
    assert len(gpuabst_machine.snapshot().devices) == 3


def test_plugin_is_registered_by_entry_point() -> None:
    from importlib.metadata import entry_points

    assert any(ep.value == "gpuabst.testing.pytest_plugin" for ep in entry_points(group="pytest11"))

"""Hardware tests: run only on a machine with an NVIDIA GPU and its driver (`pytest -m hardware`).

Everywhere else they are skipped: the rest of the suite covers the same code by replay. On a GPU
machine they check the live read, and that a capture replays to the same static facts.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import gpuabst
from gpuabst.fixtures import format as fmt
from gpuabst.machine import Machine
from gpuabst.serialize import to_dict

pytestmark = pytest.mark.hardware


def _nvml_available() -> bool:
    return any(r.name == "nvml" and r.available for r in gpuabst.backends(backends=["nvml"]))


needs_nvidia = pytest.mark.skipif(not _nvml_available(), reason="no NVIDIA GPU with a working driver here")


@needs_nvidia
def test_live_snapshot_reads_every_gpu() -> None:
    snap = gpuabst.snapshot(backends=["nvml"])
    assert snap.devices
    for d in snap.devices:
        assert d.name.ok and d.uuid.ok and d.pci.bus_id.ok and d.memory.total_bytes.ok
        assert (d.memory.total_bytes.value or 0) > 2**30
        assert d.health.device_lost.value is False
        assert d.model.ok


@needs_nvidia
def test_capture_replays_to_the_same_static_facts(tmp_path: Path) -> None:
    with Machine([], backends=["nvml"], capture=True) as m:
        fixture = m.capture()
    fmt.save(fixture, tmp_path / "live.json")
    live = gpuabst.snapshot(backends=["nvml"])
    replayed = gpuabst.snapshot([tmp_path / "live.json"], backends=["nvml"])
    assert len(replayed.devices) == len(live.devices)
    for a, b in zip(live.devices, replayed.devices, strict=True):
        assert a.name == b.name and a.pci == b.pci and a.capabilities == b.capabilities
        assert a.memory.total_bytes == b.memory.total_bytes
        assert to_dict(b.partitions) == to_dict(a.partitions) or not a.partitions

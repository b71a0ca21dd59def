"""Hardware tests: run only on a machine with an NVIDIA GPU and its driver (`pytest -m hardware`).

Everywhere else they are skipped: the rest of the suite covers the same code by replay. On a GPU
machine they check the live read, and that a capture replays to the same static facts.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import gpuabst
from gpuabst.akash import advertised_gpus
from gpuabst.exporter.prometheus import HealthCollector, metrics_text
from gpuabst.fixtures import format as fmt
from gpuabst.health import Level, evaluate
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


@needs_nvidia
def test_live_poll_reads_the_same_gpus_and_their_dynamic_values() -> None:
    with Machine([], backends=["nvml"]) as m:
        first = m.snapshot()
        polled = m.poll()
    assert [d.uuid for d in polled.devices] == [d.uuid for d in first.devices]
    for d in polled.devices:
        assert d.memory.used_bytes.ok and d.health.temperature_c.ok, d.health.temperature_c
        assert 0 < (d.health.temperature_c.value or 0) < 120
        assert d.health.utilization_gpu_pct.ok or d.capabilities.mig_enabled.value, d.health.utilization_gpu_pct


@needs_nvidia
def test_live_health_verdict_is_known_for_every_gpu() -> None:
    verdict = evaluate(gpuabst.snapshot(backends=["nvml"]))
    assert verdict.devices
    for d in verdict.devices:
        assert d.level in (Level.OK, Level.WARN), d


@needs_nvidia
def test_live_gpus_are_advertised_under_catalog_names() -> None:
    gpus, skipped = advertised_gpus(gpuabst.snapshot(backends=["nvml"]).devices)
    assert gpus and not skipped, skipped
    for g in gpus:
        assert g.vendor == "nvidia" and g.catalog_key and not g.derived, g
        assert g.memory and g.memory.endswith("Gi"), g


@needs_nvidia
def test_live_scrape_lists_every_gpu() -> None:
    with Machine([], backends=["nvml"]) as m:
        collector = HealthCollector(m, min_interval_s=0)
        metrics_text(collector)
        text = metrics_text(collector).decode()  # the second scrape polls
        uuids = [d.uuid.value for d in m.snapshot().devices]
    for uuid in uuids:
        assert f'uuid="{uuid}"' in text
    assert "gpuabst_gpu_temperature_celsius{" in text

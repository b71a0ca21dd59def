"""Issue 8, reliability 3: a hung vendor call, a device lost mid-poll and backends that fail to import
or raise inside: the agent keeps serving, and the exporter's scrape still answers."""

from __future__ import annotations

import urllib.error
import urllib.request
from typing import Any

import pytest
from gpuabst_nvml import constants as C
from synthetic import nvml_fixture
from test_fault_isolation import ExplodingBackend

from gpuabst import registry
from gpuabst.exporter.prometheus import HealthCollector, MetricsServer
from gpuabst.fixtures.tape import Fault
from gpuabst.machine import Machine

parser = pytest.importorskip("prometheus_client.parser")


def _scrape(url: str) -> tuple[int, dict[str, list[Any]]]:
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            status, text = r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        status, text = e.code, e.read().decode()
    out: dict[str, list[Any]] = {}
    if status == 200 and "metrics" in url:
        for fam in parser.text_string_to_metric_families(text):
            for s in fam.samples:
                out.setdefault(s.name, []).append(s)
    return status, out


def test_agent_keeps_serving_through_hangs_lost_gpus_and_broken_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    real = registry._load()
    broken = registry.BackendEntry("broken", None, "acme-broken", "failed to load acme: ImportError: libacme.so")
    raising = registry.BackendEntry("exploding", ExplodingBackend, "test")
    monkeypatch.setattr(registry, "_load", lambda names=None: (*real, broken, raising))
    fixture = nvml_fixture(3)
    with Machine([fixture], backends=["nvml", "broken", "exploding"], call_timeout_s=0.2) as m:
        m.backend_reports()
        tape = m.library.tapes["nvml"]  # type: ignore[attr-defined]
        tape.inject(Fault("nvmlDeviceGetPowerUsage", handle="h0", delay_s=2.0))  # hangs on every read
        server = MetricsServer(HealthCollector(m, min_interval_s=0), "127.0.0.1", 0).start()
        try:
            status, first = _scrape(server.url + "/metrics")
            assert status == 200
            assert {s.labels["backend"]: s.value for s in first["gpuabst_backend_up"]} == {
                "nvml": 1.0, "broken": 0.0, "exploding": 0.0}
            hung = [s for s in first["gpuabst_gpu_reading_unavailable"]
                    if s.labels["index"] == "0" and s.labels["field"] == "health.power_draw_w"]
            assert [s.labels["status"] for s in hung] == ["timeout"]
            assert len(first["gpuabst_gpu_power_draw_watts"]) == 2  # the other two GPUs still report power

            # GPU 2 falls off the bus between two scrapes
            tape.inject(Fault("nvmlDeviceGetTemperatureV", handle="h2", error={"code": C.GPU_IS_LOST}))
            status, second = _scrape(server.url + "/metrics")
            assert status == 200
            lost = {s.labels["index"]: s.value for s in second["gpuabst_gpu_lost"]}
            assert lost == {"0": 0.0, "1": 0.0, "2": 1.0}
            assert {s.labels["index"] for s in second["gpuabst_gpu_temperature_celsius"]} == {"0", "1"}
            status, _ = _scrape(server.url + "/healthz")
            assert status == 503  # a lost GPU fails the node
            status, third = _scrape(server.url + "/metrics")
            assert status == 200 and len(third["gpuabst_gpu_lost"]) == 3
        finally:
            server.shutdown()


@pytest.mark.parametrize("timeout", [0, -1, float("nan"), float("inf"), "5"])
def test_a_call_timeout_that_means_nothing_is_refused_at_once(timeout: object) -> None:
    """0 would abandon every call at once, a negative or NaN one likewise, an infinite one fail every
    backend with an OverflowError: refused when the Machine is made, naming the value."""
    with pytest.raises(ValueError, match=r"call_timeout_s must be None \(wait for ever\) or a number of seconds > 0"):
        Machine([nvml_fixture(1)], backends=["nvml"], call_timeout_s=timeout)  # type: ignore[arg-type]
    with Machine([nvml_fixture(1)], backends=["nvml"], call_timeout_s=0.5) as m:
        assert len(m.snapshot().devices) == 1

"""`gpuabst serve`: Prometheus metrics scraped over a real socket and parsed, /healthz, the same names
on every vendor."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from synthetic import nvml_fixture

from gpuabst.exporter.prometheus import HealthCollector, MetricsServer, metric_families
from gpuabst.fixtures.builder import handle
from gpuabst.fixtures.format import Fixture, save
from gpuabst.health import HealthPolicy, Level, evaluate
from gpuabst.machine import Machine
from gpuabst.model import Device, HealthReadings, PciInfo, Snapshot
from gpuabst.reading import ok

parser = pytest.importorskip("prometheus_client.parser")

ROOT = Path(__file__).resolve().parent.parent
GPU_LABELS = {"index", "uuid", "bus_id", "vendor", "model"}


def _get(url: str) -> tuple[int, str]:
    return _get_with_type(url)[:2]


def _get_with_type(url: str) -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read().decode(), r.headers.get("Content-Type", "")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(), e.headers.get("Content-Type", "")


def _samples(text: str) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for fam in parser.text_string_to_metric_families(text):
        for s in fam.samples:
            out.setdefault(s.name, []).append(s)
    return out


def _one(samples: dict[str, list[Any]], name: str, **labels: str) -> float:
    hits = [s for s in samples[name] if all(s.labels.get(k) == v for k, v in labels.items())]
    assert len(hits) == 1, (name, labels, hits)
    return float(hits[0].value)


def _serve(fx: Fixture, **kw: Any) -> Iterator[MetricsServer]:
    with Machine([fx], backends=["nvml"]) as m:
        server = MetricsServer(HealthCollector(m, kw.pop("policy", HealthPolicy()), min_interval_s=0),
                               "127.0.0.1", 0, **kw).start()
        try:
            yield server
        finally:
            server.shutdown()


@pytest.fixture
def sick_server() -> Iterator[MetricsServer]:
    fx = nvml_fixture(2)
    for c in fx.backends["nvml"].calls:
        if c["fn"] == "nvmlDeviceGetTotalEccErrors" and c["args"][0] == handle("h1") and c["args"][2] == 0:
            c["result"] = 2 if c["args"][1] == 1 else 5
    yield from _serve(fx)


def test_metrics_scraped_over_a_socket_and_parsed(sick_server: MetricsServer) -> None:
    assert sick_server.port > 0 and sick_server.host == "127.0.0.1"
    status, text, kind = _get_with_type(sick_server.url + "/metrics")
    assert status == 200 and kind == "text/plain; version=0.0.4; charset=utf-8"
    s = _samples(text)
    gpu1 = {"bus_id": "0000:19:00.0", "index": "1", "vendor": "nvidia", "model": "h100"}
    assert _one(s, "gpuabst_gpu_temperature_celsius", **gpu1) == 33.0
    assert _one(s, "gpuabst_gpu_temperature_slowdown_celsius", **gpu1) == 87.0
    assert _one(s, "gpuabst_gpu_power_draw_watts", **gpu1) == 71.0
    assert _one(s, "gpuabst_gpu_memory_total_bytes", **gpu1) == 80 * 2**30
    assert _one(s, "gpuabst_gpu_clock_hertz", clock="memory", **gpu1) == 2619e6
    assert _one(s, "gpuabst_gpu_utilization_ratio", **gpu1) == 0.0
    assert _one(s, "gpuabst_gpu_ecc_errors_total", type="uncorrected", scope="volatile", **gpu1) == 2.0
    assert _one(s, "gpuabst_gpu_ecc_errors_total", type="corrected", scope="volatile", **gpu1) == 5.0
    assert _one(s, "gpuabst_gpu_pcie_link_width_lanes", **gpu1) == 16.0
    assert _one(s, "gpuabst_gpu_clock_event_reason_active", reason="gpu_idle", **gpu1) == 1.0
    assert _one(s, "gpuabst_gpu_clock_event_reason_active", reason="hw_slowdown", **gpu1) == 0.0
    assert _one(s, "gpuabst_gpu_lost", **gpu1) == 0.0
    # verdicts: one state is 1
    assert _one(s, "gpuabst_gpu_health", state="fail", **gpu1) == 1.0
    assert _one(s, "gpuabst_gpu_health", state="ok", **gpu1) == 0.0
    assert _one(s, "gpuabst_gpu_health", state="ok", index="0") == 1.0
    assert _one(s, "gpuabst_gpu_health_check", system="memory", check="ecc_volatile", state="fail", **gpu1) == 1.0
    assert _one(s, "gpuabst_node_health", state="fail") == 1.0
    assert _one(s, "gpuabst_node_gpus") == 2.0
    assert _one(s, "gpuabst_backend_up", backend="nvml") == 1.0
    info = s["gpuabst_gpu_info"][1].labels
    assert info["name"] == "NVIDIA H100 80GB HBM3" and info["driver_version"] == "590.48.01"
    # an unsupported value is left out, never exported as 0
    assert "gpuabst_gpu_fan_speed_ratio" not in s


def test_metric_names_follow_prometheus_conventions(sick_server: MetricsServer) -> None:
    _, text = _get(sick_server.url + "/metrics")
    units = ("_celsius", "_watts", "_bytes", "_hertz", "_ratio", "_lanes", "_total", "_info", "_seconds")
    for fam in parser.text_string_to_metric_families(text):
        assert fam.name.startswith("gpuabst_") and fam.name == fam.name.lower()
        for sample in fam.samples:
            if fam.name.startswith("gpuabst_gpu_"):
                assert GPU_LABELS <= set(sample.labels), (fam.name, sample.labels)
            assert all(k == k.lower() and " " not in k for k in sample.labels)
        if fam.type == "counter":
            assert all(s.name.endswith(("_total", "_created")) for s in fam.samples)
        if any(u in fam.name for u in ("temperature", "power_draw", "memory_total")):
            assert fam.name.endswith(units), fam.name
    assert "gpuabst_gpu_temperature_celsius" in text and "_mhz" not in text


def test_healthz_is_200_when_ok_and_503_otherwise(sick_server: MetricsServer) -> None:
    status, body = _get(sick_server.url + "/healthz")
    doc = json.loads(body)
    assert status == 503 and doc["verdict"] == "fail" and doc["healthy"] is False
    assert [d["verdict"] for d in doc["devices"]] == ["ok", "fail"]
    assert _get(sick_server.url + "/nothing")[0] == 404
    for server in _serve(nvml_fixture(1)):
        status, body = _get(server.url + "/healthz")
        assert status == 200 and json.loads(body)["verdict"] == "ok"
    warn = nvml_fixture(1, pending=True)
    for server in _serve(warn):
        assert _get(server.url + "/healthz")[0] == 503
    for server in _serve(warn, tolerate=[Level.WARN]):
        assert _get(server.url + "/healthz")[0] == 200


def test_scrapes_poll_with_static_facts_read_once_and_concurrent_scrapes_agree() -> None:
    fx = nvml_fixture(2)
    with Machine([fx], backends=["nvml"]) as m:
        collector = HealthCollector(m, min_interval_s=0)
        server = MetricsServer(collector, "127.0.0.1", 0).start()
        try:
            m.backend_reports()
            tape: Any = m.library.tapes["nvml"]  # type: ignore[attr-defined]
            _get(server.url + "/metrics")
            first = tape.calls_made
            _get(server.url + "/metrics")
            assert tape.calls_made - first == 2 * 20  # a poll: dynamic calls only (and no fan: unsupported)
            bodies: list[str] = []
            lock = threading.Lock()

            def scrape() -> None:
                _, text = _get(server.url + "/metrics")
                with lock:
                    bodies.append("\n".join(sorted(line for line in text.splitlines()
                                                   if "read_duration" not in line)))

            pool = [threading.Thread(target=scrape) for _ in range(6)]
            for t in pool:
                t.start()
            for t in pool:
                t.join(timeout=30)
            assert len(bodies) == 6 and len(set(bodies)) == 1
        finally:
            server.shutdown()
    # after shutdown the port is closed
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", server.port), timeout=1):
        pass


def test_min_interval_reuses_the_last_reading() -> None:
    now = [0.0]
    with Machine([nvml_fixture(1)], backends=["nvml"]) as m:
        c = HealthCollector(m, min_interval_s=5, clock=lambda: now[0])
        c.collect()
        c.collect()
        assert c.readings == 1
        now[0] = 6
        c.collect()
        assert c.readings == 2


def _names(snapshot: Snapshot) -> set[str]:
    out = set()
    for fam in metric_families(snapshot, evaluate(snapshot)):
        if fam.samples:
            out.add(fam.name)
    return out


def test_the_same_names_on_every_vendor() -> None:
    with Machine([nvml_fixture(1)], backends=["nvml"]) as m:
        nvidia = m.snapshot()
    src = "amdsmi"
    amd_dev = Device(vendor="amd", index=0, name=ok("AMD Instinct MI300X", src, "amdsmi_get_gpu_asic_info"),
                     pci=PciInfo(bus_id=ok("0000:0c:00.0", src, "amdsmi_get_gpu_bdf_id")),
                     health=HealthReadings(temperature_c=ok(45.0, src, "amdsmi_get_temp_metric"),
                                           power_draw_w=ok(300.0, src, "amdsmi_get_power_info"),
                                           ecc_uncorrected_volatile=ok(0, src, "amdsmi_get_gpu_total_ecc_count")),
                     sources=[src])
    amd = Snapshot([amd_dev], [], None)
    amd_names = _names(amd)
    assert {"gpuabst_gpu_temperature_celsius", "gpuabst_gpu_power_draw_watts", "gpuabst_gpu_ecc_errors",
            "gpuabst_gpu_health", "gpuabst_gpu_health_check"} <= amd_names
    assert amd_names <= _names(nvidia) | {"gpuabst_gpu_ecc_deferred_errors"}
    text = "".join(f"{s.name}{s.labels}" for fam in metric_families(amd, evaluate(amd)) for s in fam.samples)
    assert "'vendor': 'amd'" in text and "'bus_id': '0000:0c:00.0'" in text


def test_serve_command_binds_loopback_by_default_and_stops(tmp_path: Path) -> None:
    path = tmp_path / "fx.json"
    save(nvml_fixture(1), path)
    _serve_answers_and_stops([sys.executable, "-m", "gpuabst", "serve", "--fixture", str(path), "--backend", "nvml",
                              "--port", "0"])


def _serve_answers_and_stops(command: list[str]) -> None:
    """Start ``gpuabst serve``, scrape it until /metrics answers, stop it as Kubernetes stops a pod."""
    proc = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        assert line.startswith("gpuabst: serving http://127.0.0.1:"), line
        url = line.split()[2].removesuffix("/metrics")
        deadline = time.monotonic() + 20
        status, text = 0, ""
        while time.monotonic() < deadline:
            status, text = _get(url + "/metrics")
            if status == 200:
                break
            time.sleep(0.1)
        assert status == 200 and "gpuabst_gpu_temperature_celsius" in text
        proc.terminate()  # SIGTERM, as Kubernetes stops a pod
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def test_a_server_that_never_served_closes() -> None:
    with Machine([nvml_fixture(1)], backends=["nvml"]) as m:
        server = MetricsServer(HealthCollector(m), "127.0.0.1", 0)
        port = server.port
        server.shutdown()
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass


def test_serve_on_a_busy_port_is_a_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / "fx.json"
    save(nvml_fixture(1), path)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = subprocess.run([sys.executable, "-m", "gpuabst", "serve", "--fixture", str(path), "--port", str(port)],
                           capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and f"cannot listen on 127.0.0.1:{port}" in r.stderr


def test_prometheus_client_and_yaml_are_imported_lazily_and_serve_needs_no_client(tmp_path: Path) -> None:
    code = ("import sys; import gpuabst.health, gpuabst.watch, gpuabst.exporter.prometheus, "
            "gpuabst.cli.commands.serve, gpuabst.cli.commands.health; "
            "lazy = ('prometheus_client', 'yaml', 'pynvml', 'amdsmi', 'pyopencl'); "
            "print(sorted(m for m in lazy if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.stdout.strip() == "[]", r.stderr
    path = tmp_path / "fx.json"
    save(nvml_fixture(1), path)
    blocked = ("import sys; sys.modules['prometheus_client'] = None; sys.modules['prometheus_client.core'] = None; "
               "from gpuabst.cli.main import main; "
               f"sys.exit(main(['serve', '--fixture', {str(path)!r}, '--port', '0']))")
    _serve_answers_and_stops([sys.executable, "-c", blocked])
    # registering gpuabst's metrics in a prometheus-client registry is what needs the client
    library = ("import sys; sys.modules['prometheus_client'] = None; sys.modules['prometheus_client.core'] = None; "
               "from gpuabst.exporter.prometheus import metric_families; from gpuabst.errors import BackendError\n"
               "try:\n    next(metric_families(None, None))\nexcept BackendError as e:\n    print(e)")
    r = subprocess.run([sys.executable, "-c", library], capture_output=True, text=True, timeout=60)
    assert r.stdout == ("the Prometheus exporter needs prometheus-client: pip install 'gpuabst[exporter]' "
                        "(prometheus-client)\n"), r.stderr


def test_a_read_that_raises_is_answered_with_500_and_one_line_and_the_server_keeps_serving() -> None:
    """Whatever goes wrong inside a read (here a collector whose read raises, as a bug would), the
    scrape is answered, not dropped, and the next one is served."""

    class Broken(HealthCollector):
        fail = True

        def state(self) -> tuple[Snapshot, Any, float]:
            if Broken.fail:
                raise RuntimeError("the read went wrong")
            return super().state()

    with Machine([nvml_fixture(1)], backends=["nvml"]) as m:
        server = MetricsServer(Broken(m, HealthPolicy(), min_interval_s=0), "127.0.0.1", 0).start()
        try:
            for path in ("/metrics", "/healthz"):
                assert _get(server.url + path) == (500, "gpuabst: RuntimeError: the read went wrong\n")
            assert _get(server.url + "/") == (200, "gpuabst exporter: /metrics (Prometheus), /healthz (node "
                                                   "verdict)\n")
            Broken.fail = False
            status, body = _get(server.url + "/healthz")
            assert status == 200 and json.loads(body)["verdict"] == "ok"
        finally:
            server.shutdown()


def test_silent_clients_neither_block_a_scrape_nor_stay_connected(monkeypatch: pytest.MonkeyPatch) -> None:
    """Connections that never send a request (a stalled client, a port scan) each hold only their own
    thread, a scrape beside them is answered, and each is closed after the idle timeout."""
    from gpuabst.exporter import prometheus

    monkeypatch.setattr(prometheus._QuietHandler, "timeout", 0.5)
    with Machine([nvml_fixture(1)], backends=["nvml"]) as m:
        server = MetricsServer(HealthCollector(m, HealthPolicy(), min_interval_s=0), "127.0.0.1", 0).start()
        silent = [socket.create_connection(("127.0.0.1", server.port), timeout=10) for _ in range(20)]
        try:
            status, body = _get(server.url + "/metrics")
            assert status == 200 and "gpuabst_gpu_health" in body
            for s in silent:  # the server closes each: recv sees the end of the stream, not a timeout
                assert s.recv(1024) == b""
        finally:
            for s in silent:
                s.close()
            server.shutdown()

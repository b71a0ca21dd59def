"""Prometheus metrics for every health reading and verdict, with the same names on every vendor.

``gpuabst serve`` writes the metrics itself (:mod:`gpuabst.exporter.text_format`); prometheus-client
(the ``exporter`` extra, ``pip install 'gpuabst[exporter]'``) is needed only for
:func:`metric_families` and :meth:`HealthCollector.collect`, to register the collector in a
prometheus-client registry of one's own, and is imported only then. Every metric is named
``gpuabst_*`` in base units (``_celsius``, ``_watts``, ``_bytes``, ``_hertz``, ``_ratio``) and
every per-GPU metric carries the labels ``index``, ``uuid``, ``bus_id``, ``vendor`` and ``model``.
The metrics come from the vendor-neutral model, so an AMD GPU and an NVIDIA GPU give the same
series. A value a GPU does not report is left out (never exported as 0);
``gpuabst_gpu_reading_unavailable`` says which values could not be read and why. docs/health.md
lists every metric.
"""

from __future__ import annotations

import json
import socket
import socketserver
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from operator import itemgetter
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from gpuabst.errors import BackendError
from gpuabst.exporter import DEFAULT_PORT
from gpuabst.exporter.text_format import CONTENT_TYPE, Family, exposition
from gpuabst.health import DEFAULT_POLICY, HealthPolicy, Level, NodeHealth, evaluate
from gpuabst.health.checks import readings_in, walk_readings
from gpuabst.health.policy import AMD_THERMAL_THROTTLE, HARDWARE_THROTTLE, THERMAL_THROTTLE
from gpuabst.model import Device, Snapshot
from gpuabst.reading import UNSET, Reading, Status

GPU_LABELS = ["index", "uuid", "bus_id", "vendor", "model"]
LEVELS = [lv.value for lv in Level]
DEVICE_LEVELS = [lv for lv in LEVELS if lv != Level.NOT_APPLICABLE.value]
"""The states a GPU's or the node's verdict can be in (a check can also be not applicable)."""
INSTALL_HINT = "pip install 'gpuabst[exporter]' (prometheus-client)"


def _client() -> Any:
    try:
        import prometheus_client.core as core
    except ImportError:
        raise BackendError(f"the Prometheus exporter needs prometheus-client: {INSTALL_HINT}") from None
    return core


def gpu_labels(d: Device) -> list[str]:
    return [str(d.index), str(d.uuid.get("")), str(d.pci.bus_id.get("")), d.vendor, str(d.model.get(""))]


# (metric name, help, model path, scale) for plain gauges read straight from one Reading.
GAUGES: list[tuple[str, str, str, float]] = [
    ("gpuabst_gpu_temperature_celsius", "GPU (edge/core) temperature", "health.temperature_c", 1),
    ("gpuabst_gpu_temperature_hotspot_celsius", "GPU hotspot (junction) temperature", "health.temperature_hotspot_c",
     1),
    ("gpuabst_gpu_memory_temperature_celsius", "GPU memory temperature", "health.temperature_memory_c", 1),
    ("gpuabst_gpu_temperature_slowdown_celsius", "temperature at which the GPU slows itself down",
     "health.temperature_slowdown_c", 1),
    ("gpuabst_gpu_temperature_shutdown_celsius", "temperature at which the GPU shuts down",
     "health.temperature_shutdown_c", 1),
    ("gpuabst_gpu_temperature_max_operating_celsius", "maximum operating temperature",
     "health.temperature_max_operating_c", 1),
    ("gpuabst_gpu_power_draw_watts", "power draw", "health.power_draw_w", 1),
    ("gpuabst_gpu_power_limit_watts", "enforced power limit", "health.power_limit_enforced_w", 1),
    ("gpuabst_gpu_utilization_ratio", "share of time the GPU was busy (0-1)", "health.utilization_gpu_pct", 0.01),
    ("gpuabst_gpu_memory_utilization_ratio", "share of time device memory was read or written (0-1)",
     "health.utilization_memory_pct", 0.01),
    ("gpuabst_gpu_fan_speed_ratio", "fan speed as a share of its maximum (0-1)", "health.fan_speed_pct", 0.01),
    ("gpuabst_gpu_memory_total_bytes", "device memory in all", "memory.total_bytes", 1),
    ("gpuabst_gpu_memory_used_bytes", "device memory in use", "memory.used_bytes", 1),
    ("gpuabst_gpu_memory_free_bytes", "device memory free", "memory.free_bytes", 1),
    ("gpuabst_gpu_memory_reserved_bytes", "device memory reserved by the driver", "memory.reserved_bytes", 1),
    ("gpuabst_gpu_retired_pages_pending", "1 when DRAM pages are pending retirement (reset the GPU)",
     "health.retired_pages_pending", 1),
    ("gpuabst_gpu_remapped_rows_pending", "1 when a memory row remapping is pending (reset the GPU)",
     "health.remapped_rows_pending", 1),
    ("gpuabst_gpu_remapped_rows_failure", "1 when row remapping failed", "health.remapped_rows_failure", 1),
    ("gpuabst_gpu_pcie_link_generation", "current PCIe link generation", "health.pcie_current_generation", 1),
    ("gpuabst_gpu_pcie_link_generation_max", "maximum PCIe link generation", "capabilities.pcie_max_generation", 1),
    ("gpuabst_gpu_pcie_link_width_lanes", "current PCIe link width", "health.pcie_current_width", 1),
    ("gpuabst_gpu_pcie_link_width_max_lanes", "maximum PCIe link width", "capabilities.pcie_max_width", 1),
    ("gpuabst_gpu_lost", "1 when the GPU has fallen off the bus", "health.device_lost", 1),
]

# (metric name, help, label name, [(label value, model path)]) for gauges split by one label.
LABELLED: list[tuple[str, str, str, list[tuple[str, str]]]] = [
    ("gpuabst_gpu_clock_hertz", "current clock frequency", "clock",
     [("graphics", "health.graphics_clock_mhz"), ("sm", "health.sm_clock_mhz"), ("memory", "health.memory_clock_mhz")]),
    ("gpuabst_gpu_clock_max_hertz", "maximum clock frequency", "clock",
     [("graphics", "capabilities.max_graphics_clock_mhz"), ("sm", "capabilities.max_sm_clock_mhz"),
      ("memory", "capabilities.max_memory_clock_mhz")]),
    ("gpuabst_gpu_retired_pages", "DRAM pages retired after ECC errors", "cause",
     [("single_bit", "health.retired_pages_single_bit"), ("double_bit", "health.retired_pages_double_bit")]),
    ("gpuabst_gpu_interconnect_active_links", "active GPU-to-GPU links", "kind",
     [("nvlink", "capabilities.nvlink_active_links"), ("xgmi", "capabilities.xgmi_links")]),
    ("gpuabst_gpu_remapped_rows", "memory rows remapped after ECC errors", "cause",
     [("correctable", "health.remapped_rows_corrected"), ("uncorrectable", "health.remapped_rows_uncorrected")]),
]
HZ_PER_MHZ = 1e6

KNOWN_REASONS: dict[str, tuple[str, ...]] = {
    "nvidia": ("gpu_idle", "sw_power_cap", *THERMAL_THROTTLE, *HARDWARE_THROTTLE),
    "amd": AMD_THERMAL_THROTTLE,
}
"""Clock-event reasons exported as 0 when inactive, so alerts see the series before it fires."""

ECC: list[tuple[str, str, str]] = [
    ("corrected", "volatile", "health.ecc_corrected_volatile"),
    ("uncorrected", "volatile", "health.ecc_uncorrected_volatile"),
    ("corrected", "aggregate", "health.ecc_corrected_aggregate"),
    ("uncorrected", "aggregate", "health.ecc_uncorrected_aggregate"),
]


_UNREADABLE = frozenset({Status.TIMEOUT, Status.ERROR, Status.NO_PERMISSION})
"""Statuses exported as unavailable; not_recorded too, where a backend was asked (not :data:`UNSET`)."""
_status_of = itemgetter(1)


def _unavailable(r: Reading[Any]) -> bool:
    return r.status in _UNREADABLE or (r.status is Status.NOT_RECORDED and r != UNSET)


def _any_unavailable(readings: list[Reading[Any]]) -> bool:
    """Whether any of ``readings`` is exported as unavailable (statuses compared in C first)."""
    statuses = list(map(_status_of, readings))
    if not _UNREADABLE.isdisjoint(statuses):
        return True
    return statuses.count(Status.NOT_RECORDED) > readings.count(UNSET)  # not_recorded, and not for lack of a backend


def _reading(d: Device, path: str) -> Reading[Any]:
    section, field = path.split(".")
    r: Reading[Any] = getattr(getattr(d, section), field)
    return r


def _number(r: Reading[Any]) -> float | None:
    if not r.ok:
        return None
    v = r.value
    if isinstance(v, bool):
        return 1.0 if v else 0.0
    if isinstance(v, (int, float)):
        return float(v)
    return None


def families(snap: Snapshot, node: NodeHealth, policy: HealthPolicy = DEFAULT_POLICY,
             read_seconds: float | None = None) -> Iterator[Family]:
    """Every metric family for one reading of the node, as gpuabst's own :class:`Family` tables
    (written by :func:`exposition`; :func:`metric_families` gives them as prometheus-client's)."""
    from gpuabst import __version__

    build = Family("gauge", "gpuabst_build_info", "gpuabst version", labels=["version"])
    build.add([__version__], 1)
    yield build

    gpus = [d for d in snap.devices if d.device_type == "gpu"]
    labelled = [(d, gpu_labels(d)) for d in gpus]  # each GPU's labels, built once per scrape
    info = Family("gauge", "gpuabst_gpu_info", "identity of each GPU (value 1)",
                  labels=[*GPU_LABELS, "name", "driver_version", "device_type", "sources"])
    for d, labels in labelled:
        info.add([*labels, str(d.name.get("")), str(d.driver_version.get("")), d.device_type,
                  ",".join(d.sources)], 1)
    yield info

    for name, doc, path, scale in GAUGES:
        fam = Family("gauge", name, doc, labels=GPU_LABELS)
        for d, labels in labelled:
            v = _number(_reading(d, path))
            if v is not None:
                fam.add(labels, v * scale)
        yield fam

    for name, doc, label, parts in LABELLED:
        fam = Family("gauge", name, doc, labels=[*GPU_LABELS, label])
        scale = HZ_PER_MHZ if name.endswith("_hertz") else 1
        for d, labels in labelled:
            for value, path in parts:
                v = _number(_reading(d, path))
                if v is not None:
                    fam.add([*labels, value], v * scale)
        yield fam

    ecc = Family("counter", "gpuabst_gpu_ecc_errors", "ECC errors; scope volatile counts since the driver "
                 "loaded, aggregate over the GPU's lifetime", labels=[*GPU_LABELS, "type", "scope"])
    deferred = Family("counter", "gpuabst_gpu_ecc_deferred_errors", "deferred (poisoned) ECC errors",
                      labels=GPU_LABELS)
    for d, labels in labelled:
        for kind, scope, path in ECC:
            v = _number(_reading(d, path))
            if v is not None:
                ecc.add([*labels, kind, scope], v)
        v = _number(d.health.ecc_deferred)
        if v is not None:
            deferred.add(labels, v)
    yield ecc
    yield deferred

    reasons = Family("gauge", "gpuabst_gpu_clock_event_reason_active",
                     "1 when this reason holds the clocks down (throttling)",
                     labels=[*GPU_LABELS, "reason"])
    for d, labels in labelled:
        r = d.health.throttle_reasons
        if r.ok:
            active = list(r.value or [])
            for reason in dict.fromkeys([*KNOWN_REASONS.get(d.vendor, ()), *active]):
                reasons.add([*labels, reason], 1 if reason in active else 0)
    yield reasons

    unavailable = Family(
        "gauge",
        "gpuabst_gpu_reading_unavailable", "1 for each value that could not be read, by why (timeout, error, "
        "no_permission, not_recorded); values the GPU does not have (unsupported) are not listed",
        labels=[*GPU_LABELS, "field", "status"])
    for d, labels in labelled:
        if _any_unavailable(readings_in(d)):  # rarely: only then walk the device for the fields' names
            for field, r in walk_readings(d):
                if _unavailable(r):
                    unavailable.add([*labels, field, r.status.value], 1)
    yield unavailable

    by_index = {d.index: labels for d, labels in labelled}
    health = Family("gauge", "gpuabst_gpu_health", "the GPU's health verdict: 1 for the state it is in",
                    labels=[*GPU_LABELS, "state"])
    checks = Family("gauge", "gpuabst_gpu_health_check", "each health check's outcome: 1 for its state",
                    labels=[*GPU_LABELS, "system", "check", "state"])
    for verdict in node.devices:
        of_gpu = by_index.get(verdict.index)
        if of_gpu is None:
            continue
        health.add_states(of_gpu, DEVICE_LEVELS, verdict.level.value)
        for c in verdict.checks:
            checks.add_states([*of_gpu, c.system, c.name], LEVELS, c.level.value)
    yield health
    yield checks

    node_health = Family("gauge", "gpuabst_node_health", "the node's health verdict: 1 for its state",
                         labels=["state"])
    node_health.add_states([], DEVICE_LEVELS, node.level.value)
    yield node_health
    node_checks = Family("gauge", "gpuabst_node_health_check", "each node check's outcome: 1 for its state",
                         labels=["check", "state"])
    for c in node.checks:
        node_checks.add_states([c.name], LEVELS, c.level.value)
    yield node_checks
    found = Family("gauge", "gpuabst_node_gpus", "GPUs found on the node")
    found.add([], len(gpus))
    yield found
    if policy.expected_devices is not None:
        expected = Family("gauge", "gpuabst_node_gpus_expected", "GPUs the policy expects on the node")
        expected.add([], policy.expected_devices)
        yield expected
    up = Family("gauge", "gpuabst_backend_up", "1 when the backend read the node", labels=["backend"])
    for b in snap.backends:
        up.add([b.name], 1 if b.available else 0)
    yield up
    if read_seconds is not None:
        dur = Family("gauge", "gpuabst_read_duration_seconds", "time the last reading of the node took")
        dur.add([], read_seconds)
        yield dur


def metric_families(snap: Snapshot, node: NodeHealth, policy: HealthPolicy = DEFAULT_POLICY,
                    read_seconds: float | None = None) -> Iterator[Any]:
    """Every metric family for one reading of the node, as prometheus-client metric families (for a
    registry of one's own; /metrics writes :func:`families` directly)."""
    core = _client()
    kinds = {"gauge": core.GaugeMetricFamily, "counter": core.CounterMetricFamily}
    for fam in families(snap, node, policy, read_seconds):
        out = kinds[fam.type](fam.name, fam.documentation, labels=fam.labels)
        for values, value in fam.rows:
            out.add_metric(values, value)
        yield out


class HealthCollector:
    """A prometheus_client collector reading ``machine`` at most once per ``min_interval_s`` (a
    snapshot first, polls after), shared by /metrics and /healthz."""

    def __init__(self, machine: Any, policy: HealthPolicy = DEFAULT_POLICY, *, min_interval_s: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.machine = machine
        self.policy = policy
        self.min_interval_s = min_interval_s
        self._clock = clock
        self._lock = threading.Lock()
        self._state: tuple[float, Snapshot, NodeHealth, float] | None = None
        self.readings = 0

    def state(self) -> tuple[Snapshot, NodeHealth, float]:
        """The latest reading (snapshot, verdict, seconds it took), re-read when older than min_interval_s."""
        with self._lock:
            now = self._clock()
            if self._state is None or now - self._state[0] >= self.min_interval_s:
                start = time.monotonic()
                snap = self.machine.poll() if self._state is not None else self.machine.snapshot()
                node = evaluate(snap, self.policy)
                self._state = (now, snap, node, time.monotonic() - start)
                self.readings += 1
            _, snap, node, took = self._state
            return snap, node, took

    def collect(self) -> Iterable[Any]:
        snap, node, took = self.state()
        return list(metric_families(snap, node, self.policy, took))

    def families(self) -> list[Family]:
        """What :meth:`collect` gives, as gpuabst's own tables (what /metrics writes)."""
        snap, node, took = self.state()
        return list(families(snap, node, self.policy, took))

    def describe(self) -> Iterable[Any]:
        return []  # no read at registration time


def metrics_text(collector: HealthCollector) -> bytes:
    """The exposition text of ``collector`` (what /metrics serves), in the Prometheus text format
    written by :func:`gpuabst.exporter.text_format.exposition`."""
    return exposition(collector.families())


class _Server(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _Server6(_Server):
    address_family = socket.AF_INET6


IDLE_TIMEOUT_S = 30.0
"""A connection that sends nothing for this long is closed (so silent or stalled clients cannot pile
up threads; a scrape's own timeout in Prometheus defaults to 10 s)."""


class _QuietHandler(WSGIRequestHandler):
    timeout = IDLE_TIMEOUT_S  # socketserver.StreamRequestHandler: the socket's timeout while reading

    def log_message(self, format: str, *args: Any) -> None:
        pass


class MetricsServer:
    """``/metrics`` (Prometheus text), ``/healthz`` (the node verdict as JSON: HTTP 200 when ok or
    tolerated, 503 otherwise) on ``host:port``, served from a daemon thread."""

    def __init__(self, collector: HealthCollector, host: str = "127.0.0.1", port: int = DEFAULT_PORT, *,
                 tolerate: Iterable[Level] = ()) -> None:
        self.collector = collector
        self.tolerate = set(tolerate)
        cls = _Server6 if ":" in host else _Server
        self._httpd = make_server(host, port, self._app, server_class=cls, handler_class=_QuietHandler)
        self.host = host
        self.port = int(self._httpd.server_address[1])
        self._thread: threading.Thread | None = None
        self._serving = False

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def _app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        path = environ.get("PATH_INFO", "/")
        try:
            if path == "/metrics":
                body = metrics_text(self.collector)
                start_response("200 OK", [("Content-Type", CONTENT_TYPE)])
                return [body]
            if path == "/healthz":
                _, node, _ = self.collector.state()
                healthy = not (node.levels() - self.tolerate - {Level.OK})
                doc = {"verdict": node.level.value, "healthy": healthy, "summary": node.summary,
                       "devices": [{"index": v.index, "bus_id": v.bus_id, "uuid": v.uuid, "verdict": v.level.value,
                                    "summary": v.summary} for v in node.devices]}
                start_response("200 OK" if healthy else "503 Service Unavailable",
                               [("Content-Type", "application/json")])
                return [json.dumps(doc).encode()]
            if path == "/":
                start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8")])
                return [b"gpuabst exporter: /metrics (Prometheus), /healthz (node verdict)\n"]
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found\n"]
        except Exception as e:  # a failed read must answer, not drop the connection
            start_response("500 Internal Server Error", [("Content-Type", "text/plain")])
            return [f"gpuabst: {type(e).__name__}: {e}\n".encode()]

    def start(self) -> MetricsServer:
        """Serve from a daemon thread; returns self."""
        self._serving = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="gpuabst-exporter", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve from this thread until interrupted."""
        self._serving = True
        self._httpd.serve_forever()

    def shutdown(self) -> None:
        """Stop serving and close the socket (waits for the serving thread, at most 5 s)."""
        if self._serving:  # shutdown() waits for a serve loop, so only ask one that ran
            self._httpd.shutdown()
            self._serving = False
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

"""gpuabst's own writer of the Prometheus text format: it must mean exactly what prometheus-client's
``generate_latest`` writes for the same metric families (both parsed by prometheus-client's parser)."""

from __future__ import annotations

import math
from typing import Any

import pytest
from synthetic import nvml_fixture

from gpuabst.exporter.text_format import Family, exposition, go_float
from gpuabst.health import HealthPolicy, evaluate
from gpuabst.machine import Machine
from gpuabst.model import Device, HealthReadings, PciInfo, Snapshot
from gpuabst.reading import Status, missing, ok

prometheus_client = pytest.importorskip("prometheus_client")
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402
from prometheus_client.utils import floatToGoString  # noqa: E402

from gpuabst.exporter.prometheus import families, metric_families  # noqa: E402


def _client_text(families: list[Any]) -> bytes:
    class Fixed:
        def collect(self) -> list[Any]:
            return families

    registry = prometheus_client.CollectorRegistry(auto_describe=False)
    registry.register(Fixed())
    out: bytes = prometheus_client.generate_latest(registry)
    return out


def _parsed(text: bytes) -> list[tuple[Any, ...]]:
    out = []
    for fam in text_string_to_metric_families(text.decode("utf-8")):
        samples = [(s.name, tuple(sorted(s.labels.items())),
                    "NaN" if math.isnan(s.value) else s.value) for s in fam.samples]
        out.append((fam.name, fam.type, fam.documentation, samples))
    return out


def _odd_gpu() -> Device:
    """Label values a GPU may carry that need escaping: quotes, backslashes, a newline, non-ASCII."""
    src = "amdsmi"
    return Device(vendor="amd", index=3, name=ok('AMD "Instinct" MI300X\\OAM\nrev 2 — ß', src, "asic"),
                  uuid=ok("5c4b\\0000", src, "uuid"), pci=PciInfo(bus_id=ok("0000:0c:00.0", src, "bdf")),
                  health=HealthReadings(temperature_c=ok(float("nan"), src, "temp"),
                                        power_draw_w=ok(float("inf"), src, "power"),
                                        ecc_uncorrected_volatile=ok(12_345_678_901, src, "ecc"),
                                        utilization_gpu_pct=ok(0.1, src, "activity"),
                                        fan_speed_pct=missing(Status.TIMEOUT, src, "fan", 'no "answer"')),
                  sources=[src])


def _states() -> list[tuple[str, Snapshot, HealthPolicy]]:
    fx = nvml_fixture(2, ecc_dbe=1, pending=True)
    with Machine([fx], backends=["nvml"]) as m:
        nvidia = m.snapshot()
        polled = m.poll()
    return [("nvidia", nvidia, HealthPolicy()), ("nvidia polled, 2 expected", polled, HealthPolicy(expected_devices=2)),
            ("odd values", Snapshot([_odd_gpu()], nvidia.backends, None), HealthPolicy()),
            ("no GPU", Snapshot([], [], None), HealthPolicy(expected_devices=1))]


@pytest.mark.parametrize(("label", "snap", "policy"), _states(), ids=lambda v: v if isinstance(v, str) else "")
def test_the_text_means_what_prometheus_client_writes(label: str, snap: Snapshot, policy: HealthPolicy) -> None:
    node = evaluate(snap, policy)
    ours = exposition(families(snap, node, policy, read_seconds=0.0123))
    theirs = _client_text(list(metric_families(snap, node, policy, read_seconds=0.0123)))
    assert _parsed(ours) == _parsed(theirs)
    assert len(ours.splitlines()) == len(theirs.splitlines())


@pytest.mark.parametrize("value", [0, 1, 2, -1, 0.0, -0.0, 1.5, 0.1, 1e-10, 33.0, 123456.0, 1234567.0, 12345678.0,
                                   1e7, 9_999_999.5, 1.2345e20, -1.2345e20, 80 * 2**30, True, False,
                                   float("inf"), float("-inf"), float("nan")])
def test_values_are_written_as_prometheus_client_writes_them(value: float) -> None:
    assert go_float(value) == floatToGoString(value)  # type: ignore[no-untyped-call]


def test_what_the_format_cannot_say_is_refused() -> None:
    with pytest.raises(ValueError, match="only gauges and counters"):
        Family("histogram", "h", "a histogram")
    with pytest.raises(ValueError, match="not Prometheus label names"):
        Family("gauge", "ok_name", "doc", labels=["bad-label"])
    with pytest.raises(ValueError, match="or repeated"):
        Family("gauge", "ok_name", "doc", labels=["a", "a"])
    with pytest.raises(ValueError, match="not a Prometheus metric name"):
        Family("gauge", "9lives", "doc")
    with pytest.raises(ValueError, match="2 label values for labels"):
        Family("gauge", "ok_name", "doc", labels=["a"]).add(["x", "y"], 1)
    with pytest.raises(ValueError, match="2 label values and a state"):
        Family("gauge", "ok_name", "doc", labels=["a", "state"]).add_states(["x", "y"], ["ok"], "ok")


def test_an_enumeration_is_one_sample_per_state_with_1_for_the_current_one() -> None:
    health = Family("gauge", "h", "doc", labels=["gpu", "state"])
    health.add_states(["0"], ["ok", "warn", "fail"], "warn")
    assert health.rows == [(["0", "ok"], 0), (["0", "warn"], 1), (["0", "fail"], 0)]


def test_a_family_is_written_with_its_labels_in_name_order_and_counters_as_totals() -> None:
    errors = Family("counter", "x_errors", "errors\\by kind\nper device", labels=["kind", "device"])
    errors.add(["ecc", 'gpu "0"'], 2)
    errors.add(["pcie", "gpu\\1"], 0.5)
    up = Family("gauge", "x_up", "up")
    up.add([], 1)
    assert exposition([errors, up]).decode() == (
        "# HELP x_errors_total errors\\\\by kind\\nper device\n# TYPE x_errors_total counter\n"
        'x_errors_total{device="gpu \\"0\\"",kind="ecc"} 2.0\n'
        'x_errors_total{device="gpu\\\\1",kind="pcie"} 0.5\n'
        "# HELP x_up up\n# TYPE x_up gauge\nx_up 1.0\n")


def test_series_written_before_are_reused_only_for_the_same_name_labels_and_values(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Each series' text is kept between scrapes (the same GPUs give the same series), keyed by the
    metric name, its label names and every label value, and the store is bounded."""
    from gpuabst.exporter import text_format

    monkeypatch.setattr(text_format, "_RENDERED", {})
    monkeypatch.setattr(text_format, "_RENDERED_MAX", 4)

    def one(name: str, labels: list[str], values: list[str], value: float = 1) -> str:
        fam = Family("gauge", name, "doc", labels=labels)
        fam.add(values, value)
        return exposition([fam]).decode().splitlines()[-1]

    assert one("m", ["a", "b"], ["1", "2"]) == 'm{a="1",b="2"} 1.0'
    assert one("m", ["a", "b"], ["1", "3"], 2.5) == 'm{a="1",b="3"} 2.5'  # another value: another series
    assert one("m", ["b", "a"], ["1", "2"]) == 'm{a="2",b="1"} 1.0'  # the same values under other names
    assert one("n", ["a", "b"], ["1", "2"]) == 'n{a="1",b="2"} 1.0'  # another metric
    assert one("m", ["a", "b", "c"], ["1"] * 3) == 'm{a="1",b="1",c="1"} 1.0'
    assert one("m", ["a", "b"], ["c", "1"]) == 'm{a="c",b="1"} 1.0'  # a value that is also a label name
    many = Family("gauge", "many", "doc", labels=["gpu"])
    for i in range(10):
        many.add([f'gpu "{i}"'], i)
    text = exposition([many]).decode()
    assert [line for line in text.splitlines() if not line.startswith("#")] == [
        f'many{{gpu="gpu \\"{i}\\""}} {float(i)}' for i in range(10)]
    assert len(text_format._RENDERED) <= 4  # emptied when full, never more
    assert one("m", ["a", "b"], ["1", "2"]) == 'm{a="1",b="2"} 1.0'


def test_unavailable_readings_are_listed_by_field_and_why_and_nothing_else() -> None:
    """gpuabst_gpu_reading_unavailable: a timeout, an error, a permission refused and a call the
    fixture did not record, by field; never a value nobody was asked for, one the GPU does not have,
    or a good one. A GPU with none of those has no row."""
    src = "nvml"
    odd = Device(vendor="nvidia", index=0, name=ok("GPU", src, "name"), sources=[src],
                 health=HealthReadings(fan_speed_pct=missing(Status.TIMEOUT, src, "fan", "hung"),
                                       temperature_c=missing(Status.ERROR, src, "temp", "driver fault"),
                                       power_draw_w=missing(Status.NO_PERMISSION, src, "power", "root only"),
                                       sm_clock_mhz=missing(Status.NOT_RECORDED, src, "clock", "not in the fixture"),
                                       memory_clock_mhz=missing(Status.UNSUPPORTED, src, "clock", "no"),
                                       graphics_clock_mhz=ok(1980, src, "clock")))
    fine = Device(vendor="nvidia", index=1, name=ok("GPU", src, "name"), sources=[src],
                  health=HealthReadings(temperature_c=ok(40.0, src, "temp")))
    snap = Snapshot([odd, fine], [], None)
    (fam,) = [f for f in families(snap, evaluate(snap)) if f.name == "gpuabst_gpu_reading_unavailable"]
    assert sorted((values[0], values[-2], values[-1]) for values, _ in fam.rows) == [
        ("0", "health.fan_speed_pct", "timeout"), ("0", "health.power_draw_w", "no_permission"),
        ("0", "health.sm_clock_mhz", "not_recorded"), ("0", "health.temperature_c", "error")]

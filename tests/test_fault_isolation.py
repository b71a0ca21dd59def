"""Fault isolation, by replay with injected faults and delays: a hung vendor call, a GPU that falls off
the bus, a backend that raises; and thread-safety of snapshots and polls on one Machine."""

from __future__ import annotations

import threading
import time
from typing import Any, ClassVar

import pytest
from gpuabst_nvml import constants as C
from synthetic import nvml_fixture

from gpuabst.backend import Backend, ErrorInfo, LibrarySource, Probe
from gpuabst.fixtures.builder import handle
from gpuabst.fixtures.format import Fixture
from gpuabst.fixtures.tape import Fault, Tape
from gpuabst.health import HealthPolicy, Level, evaluate
from gpuabst.machine import Machine
from gpuabst.model import Device
from gpuabst.reading import Status
from gpuabst.registry import BackendEntry
from gpuabst.serialize import to_dict

HANG_S = 3.0
TIMEOUT_S = 0.2


def _tape(m: Machine) -> Tape:
    m.backend_reports()
    tape: Tape = m.library.tapes["nvml"]  # type: ignore[attr-defined]
    return tape


def _timed_snapshot(m: Machine) -> tuple[Any, float]:
    start = time.monotonic()
    snap = m.snapshot()
    return snap, time.monotonic() - start


# --- a vendor call that hangs ---------------------------------------------------------------------------
def test_a_hung_call_is_abandoned_its_reading_says_timeout_and_the_rest_completes() -> None:
    with Machine([nvml_fixture(3)], backends=["nvml"], call_timeout_s=TIMEOUT_S) as m:
        _tape(m).inject(Fault("nvmlDeviceGetPowerUsage", handle="h1", delay_s=HANG_S))
        snap, took = _timed_snapshot(m)
    assert took < 2.0, f"the snapshot took {took:.1f} s"
    hung = snap.devices[1].health.power_draw_w
    assert hung.status is Status.TIMEOUT and "did not answer within 0.2 s" in (hung.reason or "")
    # the same device's other readings and the other devices are all there
    assert snap.devices[1].health.temperature_c.value == 33.0
    assert snap.devices[1].health.ecc_uncorrected_volatile.value == 0
    assert [d.health.power_draw_w.value for d in (snap.devices[0], snap.devices[2])] == [71.0, 71.0]
    node = evaluate(snap)
    calls = node.devices[1].check("driver.vendor_calls")
    assert calls.level is Level.WARN and "nvmlDeviceGetPowerUsage" in calls.reason
    assert node.devices[1].check("power.draw").level is Level.UNKNOWN
    assert [d.level for d in node.devices] == [Level.OK, Level.WARN, Level.OK]


def test_a_gpu_whose_every_call_hangs_costs_bounded_time() -> None:
    fx = nvml_fixture(3)
    fns = sorted({c["fn"] for c in fx.backends["nvml"].calls})
    with Machine([fx], backends=["nvml"], call_timeout_s=TIMEOUT_S) as m:
        tape = _tape(m)
        for fn in fns:
            tape.inject(Fault(fn, handle="h1", delay_s=HANG_S))
        snap, took = _timed_snapshot(m)
        start = time.monotonic()
        polled = m.poll()
        poll_took = time.monotonic() - start
    # about 50 calls for that GPU: two time out, the rest are not attempted in this read
    assert took < 2.0 and poll_took < 2.0, (took, poll_took)
    lost = snap.devices[1]
    assert lost.name.status is Status.TIMEOUT
    assert "not attempted" in (polled.devices[1].health.temperature_c.reason or "")
    assert snap.devices[0].name.ok and snap.devices[2].health.temperature_c.value == 33.0
    node = evaluate(polled)
    assert node.devices[1].level is Level.WARN
    assert node.devices[0].level is Level.OK and node.devices[2].level is Level.OK


# --- a GPU that falls off the bus ---------------------------------------------------------------------------
def test_a_lost_gpu_is_failed_while_the_others_keep_reporting() -> None:
    with Machine([nvml_fixture(3)], backends=["nvml"]) as m:
        _tape(m).inject(Fault("nvmlDeviceGetTemperatureV", handle="h1", error={"code": C.GPU_IS_LOST}))
        snap = m.snapshot()
        node = evaluate(snap, HealthPolicy(expected_devices=3))
        polled = evaluate(m.poll(), HealthPolicy(expected_devices=3))
    for verdict in (node, polled):
        assert verdict.level is Level.FAIL
        lost = verdict.devices[1]
        assert lost.level is Level.FAIL
        assert lost.check("presence.device_lost").reason.startswith("the GPU has fallen off the bus")
        assert [verdict.devices[0].level, verdict.devices[2].level] == [Level.OK, Level.OK]
        assert verdict.checks[0].level is Level.OK  # still 3 devices on the bus
    assert snap.devices[1].health.temperature_c.reason == "NVML_ERROR_GPU_IS_LOST"
    assert snap.devices[2].health.power_draw_w.value == 71.0


# --- a backend that raises --------------------------------------------------------------------------------
class _Anything(LibrarySource):
    mode = "replay"

    def module(self, backend: Backend) -> Any:
        return object()


class ExplodingBackend(Backend):
    """A plugin whose own code raises while reading (not a vendor error)."""

    name: ClassVar[str] = "exploding"
    vendor: ClassVar[str] = "test"
    library_module: ClassVar[str] = "none"
    library_distribution: ClassVar[str] = "none"
    install_hint: ClassVar[str] = "none"
    authority: ClassVar[int] = 10

    @classmethod
    def import_library(cls) -> Any:
        return object()

    @classmethod
    def fake_library(cls, tape: Tape) -> Any:
        return object()

    @classmethod
    def classify_error(cls, exc: BaseException) -> ErrorInfo | None:
        return None

    @classmethod
    def raise_recorded_error(cls, error: dict[str, Any]) -> None:
        raise RuntimeError(str(error))

    def _open(self) -> Probe:
        return Probe(True)

    def _devices(self) -> list[Device]:
        raise RuntimeError("the plugin's driver exploded")


def _with_exploding(fx: Fixture) -> Machine:
    m = Machine([fx], backends=["nvml"])
    m.entries.append(BackendEntry("exploding", ExplodingBackend, "test"))
    m._backends["exploding"] = ExplodingBackend(_Anything())
    return m


def test_one_backend_raising_does_not_stop_the_others() -> None:
    with _with_exploding(nvml_fixture(2)) as m:
        snap = m.snapshot()
        polled = m.poll()
    for s in (snap, polled):
        assert [d.name.value for d in s.devices] == ["NVIDIA H100 80GB HBM3"] * 2
        report = {r.name: r for r in s.backends}["exploding"]
        assert not report.available and report.error == "RuntimeError: the plugin's driver exploded"
    node = evaluate(snap)
    c = node.checks[1]
    assert (c.id, c.level) == ("node.backends", Level.WARN)
    assert "backend exploding failed: RuntimeError: the plugin's driver exploded" in c.reason
    assert [d.level for d in node.devices] == [Level.OK, Level.OK]
    assert evaluate(snap, HealthPolicy(backend_failure=Level.FAIL)).level is Level.FAIL


class WaveringBackend(ExplodingBackend):
    """A plugin that sees one device, then fails a read, then sees two."""

    name: ClassVar[str] = "wavering"
    script: ClassVar[list[int | None]] = [1, 1, None, 2, 2]

    def _devices(self) -> list[Device]:
        count = self.script.pop(0)
        if count is None:
            raise RuntimeError("the plugin lost its way")
        return [Device(vendor="test", index=i) for i in range(count)]


def test_a_backends_report_follows_each_read_and_a_steady_one_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(WaveringBackend, "script", list(WaveringBackend.script))
    m = Machine([nvml_fixture(1)], backends=["nvml"])
    m.entries.append(BackendEntry("wavering", WaveringBackend, "test"))
    m._backends["wavering"] = WaveringBackend(_Anything())
    with m:
        reads = [m.snapshot(), m.poll(), m.poll(), m.poll(), m.poll()]
    reports = [{r.name: r for r in s.backends}["wavering"] for s in reads]
    assert [(r.available, r.device_count, r.error) for r in reports] == [
        (True, 1, None), (True, 1, None), (False, None, "RuntimeError: the plugin lost its way"),
        (True, 2, None), (True, 2, None)]
    assert reports[1] is reports[0] and reports[4] is reports[3]  # a steady read makes no new report
    assert [len(s.devices) for s in reads] == [2, 2, 1, 3, 3]


class UnbuildableBackend(ExplodingBackend):
    """A plugin whose constructor raises, and one that sets none of the optional class attributes."""

    name: ClassVar[str] = "unbuildable"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("the plugin's constructor exploded")


class BareBackend(ExplodingBackend):
    name: ClassVar[str] = "bare"

    def _open(self) -> Probe:
        raise OSError("its library would not load")


def test_a_plugin_that_cannot_be_built_or_opened_is_reported_and_the_others_read(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from gpuabst import registry

    real = registry._load()
    unbuildable = BackendEntry("unbuildable", UnbuildableBackend, "t")
    monkeypatch.setattr(registry, "_load", lambda names=None: (*real, unbuildable))
    with Machine([nvml_fixture(2)], backends=["nvml", "unbuildable"]) as m:
        snap = m.snapshot()
    assert [d.name.value for d in snap.devices] == ["NVIDIA H100 80GB HBM3"] * 2
    report = {r.name: r for r in snap.backends}["unbuildable"]
    assert not report.available
    assert report.reason == "UnbuildableBackend() failed: RuntimeError: the plugin's constructor exploded"
    monkeypatch.delattr(ExplodingBackend, "install_hint")  # a plugin that sets no install hint
    probe = BareBackend(_Anything()).probe()
    assert (probe.available, probe.reason, probe.install_hint) == (False, "OSError: its library would not load", None)


# --- threads -------------------------------------------------------------------------------------------------
def _comparable(snap: Any) -> Any:
    doc = to_dict(snap)
    doc.pop("taken_at")
    return doc


def test_snapshots_polls_and_verdicts_from_many_threads_are_consistent() -> None:
    fx = nvml_fixture(4, mig=True)
    with Machine([fx], backends=["nvml"]) as ref:
        tape = _tape(ref)
        before = tape.calls_made
        expected_snapshot = _comparable(ref.snapshot())
        snapshot_calls = tape.calls_made - before
        before = tape.calls_made
        expected_poll = _comparable(ref.poll())
        poll_calls = tape.calls_made - before
        before = tape.calls_made
        ref.snapshot()
        again_calls = tape.calls_made - before  # device handles are asked once per session
        expected_verdict = to_dict(evaluate(ref.poll()))
    threads, rounds = 6, 15
    with Machine([fx], backends=["nvml"]) as m:
        tape = _tape(m)
        base = tape.calls_made
        m.snapshot()
        errors: list[BaseException] = []
        mismatches: list[str] = []
        barrier = threading.Barrier(threads)

        def worker(n: int) -> None:
            barrier.wait()
            try:
                for i in range(rounds):
                    if (n + i) % 3 == 0:
                        if _comparable(m.snapshot()) != expected_snapshot:
                            mismatches.append(f"snapshot {n}/{i}")
                    else:
                        snap = m.poll()
                        if _comparable(snap) != expected_poll:
                            mismatches.append(f"poll {n}/{i}")
                        verdict = to_dict(evaluate(snap))
                        verdict["taken_at"] = expected_verdict["taken_at"]
                        if verdict != expected_verdict:
                            mismatches.append(f"verdict {n}/{i}")
            except BaseException as e:  # asserted below
                errors.append(e)

        pool = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
        for t in pool:
            t.start()
        for t in pool:
            t.join(timeout=60)
        assert not any(t.is_alive() for t in pool)
        snapshots = sum(1 for n in range(threads) for i in range(rounds) if (n + i) % 3 == 0)
        polls = threads * rounds - snapshots
        made = tape.calls_made - base
    assert errors == [] and mismatches == []
    # the tape counted every call exactly once: 1 + snapshots full reads and the rest polls
    # a first full read, `snapshots` more (no handle calls: asked once per session), and the rest polls
    assert made == snapshot_calls + snapshots * again_calls + polls * poll_calls, (made, snapshot_calls, poll_calls)


def test_successive_recorded_values_are_each_played_once_across_threads() -> None:
    fx = nvml_fixture(1)
    calls = fx.backends["nvml"].calls
    for temp in (40, 50, 60, 70):
        calls.append({"fn": "nvmlDeviceGetTemperatureV", "args": [handle("h0"), 0], "result": temp})
    seen: list[float] = []
    lock = threading.Lock()
    with Machine([fx], backends=["nvml"]) as m:
        m.snapshot()  # plays 33

        def worker() -> None:
            for _ in range(5):
                v = m.poll().devices[0].health.temperature_c.value
                with lock:
                    seen.append(float(v or 0))

        pool = [threading.Thread(target=worker) for _ in range(4)]
        for t in pool:
            t.start()
        for t in pool:
            t.join(timeout=30)
    assert len(seen) == 20
    assert sorted(seen)[:4] == [40.0, 50.0, 60.0, 70.0] and seen.count(70.0) == 17


def test_machines_in_many_threads_replaying_one_fixture_object_agree() -> None:
    fx = nvml_fixture(2)
    with Machine([fx], backends=["nvml"]) as ref:
        expected = _comparable(ref.snapshot()), _comparable(ref.poll())
    results: list[Any] = []
    lock = threading.Lock()

    def worker() -> None:
        with Machine([fx], backends=["nvml"]) as m:
            got = _comparable(m.snapshot()), _comparable(m.poll())
        with lock:
            results.append(got)

    pool = [threading.Thread(target=worker) for _ in range(6)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(timeout=60)
    assert len(results) == 6 and all(r == expected for r in results)


class GarbageBackend(ExplodingBackend):
    """A plugin that hands back something other than Devices."""

    name: ClassVar[str] = "garbage"

    def _devices(self) -> list[Device]:
        return [{"name": "a dict, not a Device"}]  # type: ignore[list-item]


def test_a_plugin_that_returns_something_else_than_devices_is_reported_and_the_others_read() -> None:
    m = Machine([nvml_fixture(2)], backends=["nvml"])
    m.entries.append(BackendEntry("garbage", GarbageBackend, "test"))
    m._backends["garbage"] = GarbageBackend(_Anything())
    with m:
        snap = m.snapshot()
    assert [d.name.value for d in snap.devices] == ["NVIDIA H100 80GB HBM3"] * 2
    report = {r.name: r for r in snap.backends}["garbage"]
    assert not report.available
    assert report.error == "TypeError: garbage returned list of ['dict'], not a list of gpuabst Devices"

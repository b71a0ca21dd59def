"""Polling re-reads only dynamic values; `gpuabst watch` prints what changes between polls."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from synthetic import nvml_fixture

from gpuabst.cli.main import main
from gpuabst.fixtures.builder import handle
from gpuabst.fixtures.format import Fixture, save
from gpuabst.fixtures.tape import Fault, Tape
from gpuabst.health import Level
from gpuabst.machine import Machine
from gpuabst.reading import Status
from gpuabst.watch import changes, watch

DYNAMIC = {
    "nvmlDeviceGetHandleByIndex", "nvmlDeviceGetMemoryInfo", "nvmlDeviceGetUtilizationRates",
    "nvmlDeviceGetCurrentClocksEventReasons", "nvmlDeviceGetRemappedRows", "nvmlDeviceGetCurrPcieLinkGeneration",
    "nvmlDeviceGetCurrPcieLinkWidth", "nvmlDeviceGetTemperatureV", "nvmlDeviceGetPowerUsage",
    "nvmlDeviceGetEnforcedPowerLimit", "nvmlDeviceGetClockInfo", "nvmlDeviceGetFanSpeed",
    "nvmlDeviceGetPerformanceState", "nvmlDeviceGetTotalEccErrors", "nvmlDeviceGetRetiredPages",
    "nvmlDeviceGetRetiredPagesPendingStatus",
}
"""What changes while the driver is loaded: the only vendor calls a poll may make."""


def _recording(tape: Tape) -> list[str]:
    """Names of the vendor calls the tape answers from now on (observes the real call path)."""
    names: list[str] = []
    play = tape.play

    def observed(fn: str, args: tuple[Any, ...], kwargs: dict[str, Any] | None = None) -> Any:
        names.append(fn)
        return play(fn, args, kwargs)

    tape.play = observed  # type: ignore[method-assign]
    return names


def _tape(m: Machine) -> Tape:
    m.backend_reports()
    tape: Tape = m.library.tapes["nvml"]  # type: ignore[attr-defined]
    return tape


def test_poll_makes_only_dynamic_vendor_calls() -> None:
    with Machine([nvml_fixture(2, mig=True)], backends=["nvml"]) as m:
        tape = _tape(m)
        full = _recording(tape)
        m.snapshot()
        snapshot_calls = list(full)
        full.clear()
        m.poll()
        poll_calls = list(full)
    assert set(poll_calls) <= DYNAMIC, set(poll_calls) - DYNAMIC
    static_only = set(snapshot_calls) - DYNAMIC
    assert {"nvmlDeviceGetName", "nvmlDeviceGetUUID", "nvmlDeviceGetPciInfo", "nvmlDeviceGetNvLinkState",
            "nvmlDeviceGetTemperatureThreshold", "nvmlDeviceGetMigDeviceHandleByIndex"} <= static_only
    assert not static_only & set(poll_calls)
    # the static facts are still there after a poll
    with Machine([nvml_fixture(2, mig=True)], backends=["nvml"]) as m:
        m.snapshot()
        d = m.poll().devices[0]
    assert d.uuid.ok and d.health.temperature_slowdown_c.value == 87.0 and len(d.partitions) == 2


def test_calls_per_device_for_a_snapshot_and_a_poll_on_eight_gpus() -> None:
    with Machine([nvml_fixture(8)], backends=["nvml"]) as m:
        tape = _tape(m)
        start = tape.calls_made
        m.snapshot()
        snap = tape.calls_made - start
        start = tape.calls_made
        m.poll()
        poll = tape.calls_made - start
    # one nvmlDeviceGetCount in a snapshot; the rest is per device
    assert (snap - 1) % 8 == 0 and poll % 8 == 0
    # a poll per GPU: memory, utilisation, clock-event reasons, remapped rows, PCIe gen and width, temperature,
    # power, enforced limit, 3 clocks, P-state, 4 ECC counters, 2 retired-page lists, pending (the device
    # handle is asked once per session; the fan speed, which these GPUs said they do not support, too)
    assert poll // 8 == 20
    assert (snap - 1) // 8 > 2.5 * (poll // 8)


def _fx_with_temperatures(*temps: int) -> Fixture:
    fx = nvml_fixture(2)
    for t in temps:
        fx.backends["nvml"].calls.append({"fn": "nvmlDeviceGetTemperatureV", "args": [handle("h1"), 0], "result": t})
    return fx


def test_watch_reports_changes_and_verdict_changes() -> None:
    slept: list[float] = []
    now = [100.0]

    def sleep(s: float) -> None:
        slept.append(s)
        now[0] += s

    with Machine([_fx_with_temperatures(84, 84)], backends=["nvml"]) as m:
        events = list(watch(m, interval_s=2.0, count=3, sleep=sleep, clock=lambda: now[0]))
    assert [e.sequence for e in events] == [0, 1, 2]
    assert events[0].changes == []
    got = {(c.device, c.field, c.before, c.after) for c in events[1].changes}
    assert got == {("0000:19:00.0", "health.temperature_c", 33.0, 84.0), ("0000:19:00.0", "verdict", "ok", "warn"),
                   ("node", "verdict", "ok", "warn")}
    assert events[2].changes == []
    assert events[1].health.level is Level.WARN
    assert slept == [2.0, 2.0]


def test_devices_that_come_and_go_are_changes() -> None:
    with Machine([nvml_fixture(2)], backends=["nvml"]) as m:
        two = m.snapshot()
    with Machine([nvml_fixture(1)], backends=["nvml"]) as m:
        one = m.snapshot()
    assert [(c.device, c.field, c.before, c.after) for c in changes(two, one)] == [
        ("0000:19:00.0", "present", True, False)]


def test_cli_watch_prints_changes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "fx.json"
    save(_fx_with_temperatures(40), path)
    assert main(["watch", "--fixture", str(path), "--backend", "nvml", "--interval", "0", "--count", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "node ok: 2 devices ok"
    assert lines[2].startswith("gpu1  0000:19:00.0  NVIDIA H100 80GB HBM3  ok  temp 33 C  power 71 W  util 0%")
    assert lines[3].endswith("0000:19:00.0  health.temperature_c: 33.0 -> 40.0")
    assert len(lines) == 4
    assert main(["watch", "--fixture", str(path), "--backend", "nvml", "--interval", "0", "--count", "3",
                 "--json"]) == 0
    docs = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [d["sequence"] for d in docs] == [0, 1, 2]
    assert docs[1]["changes"] == [{"device": "0000:19:00.0", "field": "health.temperature_c", "before": 33.0,
                                   "after": 40.0}]
    assert docs[2]["changes"] == []


def test_a_call_the_gpu_does_not_support_is_not_asked_again_until_the_session_closes() -> None:
    def fan_calls(m: Machine, read: Any) -> tuple[int, Any]:
        before = _tape(m).calls_by_fn["nvmlDeviceGetFanSpeed"]
        fan = read().devices[0].health.fan_speed_pct
        return _tape(m).calls_by_fn["nvmlDeviceGetFanSpeed"] - before, fan

    with Machine([nvml_fixture(1)], backends=["nvml"]) as m:
        asked, fan = fan_calls(m, m.snapshot)
        assert asked == 1 and (fan.status, fan.reason) == (Status.UNSUPPORTED, "NVML_ERROR_NOT_SUPPORTED")
        asked_again, fan_again = fan_calls(m, m.poll)
        assert asked_again == 0 and fan_again == fan  # the same Reading: status, call and reason
        asked_again, _ = fan_calls(m, m.snapshot)
        assert asked_again == 0
        m.close()  # a new session asks again
        asked, _ = fan_calls(m, m.snapshot)
        assert asked == 1


@pytest.mark.parametrize("code", [2, 4, 999, 10])  # invalid argument, no permission, unknown, timeout
def test_a_call_that_failed_otherwise_is_asked_again_on_the_next_poll(code: int) -> None:
    with Machine([nvml_fixture(1)], backends=["nvml"]) as m:
        _tape(m).inject(Fault("nvmlDeviceGetPowerUsage", error={"code": code}, times=1))
        assert not m.snapshot().devices[0].health.power_draw_w.ok
        assert m.poll().devices[0].health.power_draw_w.ok


def _named_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The indexes of the devices gpuabst.naming.model_for is asked to name from now on (it still
    names them)."""
    import gpuabst.machine
    from gpuabst.naming import model_for as real

    asked: list[int] = []

    def counted(device: Any, cat: Any = None) -> Any:
        asked.append(device.index)
        return real(device, cat)

    monkeypatch.setattr(gpuabst.machine, "model_for", counted)
    return asked


def test_polls_keep_the_model_named_on_the_first_read(monkeypatch: pytest.MonkeyPatch) -> None:
    asked = _named_calls(monkeypatch)
    with Machine([nvml_fixture(2)], backends=["nvml"]) as m:
        first = m.snapshot().devices
        assert asked == [0, 1]
        polls = [m.poll().devices for _ in range(3)]
    assert asked == [0, 1]  # the identifying facts did not change: not named again
    for devices in polls:
        assert [(d.index, d.model) for d in devices] == [(d.index, d.model) for d in first]
        assert [d.model.value for d in devices] == ["h100", "h100"]
    assert polls[1][0] is not polls[0][0]  # each poll is a new device, with what changes read again


def test_a_poll_names_again_what_a_new_catalog_says() -> None:
    from gpuabst import catalog
    from gpuabst.catalog import Catalog, CatalogEntry

    entry = CatalogEntry(key="10de:2330", vendor="nvidia", vendor_id="0x10de", device_id="0x2330", model="h100x",
                         memory="80Gi", interface_raw="SXM5", market_name="H100 SXM5 80GB")
    catalog.use(None)
    with Machine([nvml_fixture(2)], backends=["nvml"]) as m:
        assert [d.model.value for d in m.snapshot().devices] == ["h100", "h100"]
        try:
            catalog.use(Catalog([entry], {"0x10de": "nvidia"}, "test table"))
            assert [d.model.value for d in m.poll().devices] == ["h100x", "h100x"]
        finally:
            catalog.use(None)
        assert [d.model.value for d in m.poll().devices] == ["h100", "h100"]


def test_a_poll_names_again_a_device_whose_memory_size_changed(monkeypatch: pytest.MonkeyPatch) -> None:
    asked = _named_calls(monkeypatch)
    with Machine([nvml_fixture(2)], backends=["nvml"]) as m:
        m.snapshot()
        _tape(m).inject(Fault("nvmlDeviceGetMemoryInfo", handle="h1", result={
            "$struct": "c_nvmlMemory_v2_t", "version": 0x02000028, "total": 94 * 2**30, "reserved": 2**29,
            "free": 90 * 2**30, "used": 4 * 2**30 - 2**29}))
        polled = m.poll().devices
    assert asked == [0, 1, 1]  # only the device whose evidence changed is named again
    assert polled[1].memory.total_bytes.value == 94 * 2**30
    from gpuabst.naming import model_for

    assert polled[1].model == model_for(polled[1]) and polled[0].index == 0 and polled[1].index == 1


def test_polls_of_a_merged_machine_keep_each_device_where_it_was() -> None:
    import opencl_synthetic as S

    from gpuabst.serialize import to_dict

    fixtures = [nvml_fixture(3), S.nvidia_opencl_fixture(2, extra_intel=True)]
    with Machine(fixtures, backends=["nvml", "opencl"]) as m:
        first = m.snapshot().devices
        polls = [m.poll().devices for _ in range(3)]
    assert [(d.index, d.vendor, d.sources) for d in first] == [
        (0, "nvidia", ["nvml", "opencl"]), (1, "nvidia", ["nvml", "opencl"]), (2, "nvidia", ["nvml"]),
        (3, "intel", ["opencl"])]
    for devices in polls:  # the replayed values do not change, so neither does anything a poll reports
        assert [to_dict(d) for d in devices] == [to_dict(d) for d in first]


def test_watch_stops_on_sigterm_with_exit_0(tmp_path: Path) -> None:
    """As a container's main process (PID 1, where a signal without a handler is ignored) `gpuabst
    watch` would not stop when the container is stopped; it handles SIGTERM as `serve` does."""
    import subprocess
    import sys

    path = tmp_path / "fx.json"
    save(nvml_fixture(1), path)
    proc = subprocess.Popen([sys.executable, "-m", "gpuabst", "watch", "--json", "--interval", "30", "--fixture",
                             str(path), "--backend", "nvml"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout is not None and json.loads(proc.stdout.readline())["sequence"] == 0
        proc.terminate()
        assert proc.wait(timeout=10) == 0
        assert proc.stderr is not None and proc.stderr.read() == ""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)

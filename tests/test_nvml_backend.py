"""The NVML backend, run for real against replayed vendor calls (no GPU, no NVIDIA library)."""

from __future__ import annotations

from typing import Any

import attrs
import pytest
from gpuabst_nvml import constants as C
from synthetic import nvml_fixture

import gpuabst
from gpuabst.fixtures.builder import FixtureBuilder, handle
from gpuabst.fixtures.format import Fixture
from gpuabst.fixtures.tape import Fault
from gpuabst.machine import Machine
from gpuabst.reading import Status


def _machine(fx: Fixture, **kw: Any) -> Machine:
    return Machine([fx], backends=["nvml"], **kw)


def _tape(m: Machine) -> Any:
    m.backend_reports()
    return m.library.tapes["nvml"]  # type: ignore[attr-defined]


def test_full_device() -> None:
    d = gpuabst.devices([nvml_fixture(1)], backends=["nvml"])[0]
    assert (d.vendor, d.name.value, d.model.value) == ("nvidia", "NVIDIA H100 80GB HBM3", "h100")
    assert d.pci.bus_id.value == "0000:18:00.0"
    assert (d.pci.vendor_id.value, d.pci.device_id.value) == ("0x10de", "0x2330")
    assert (d.pci.subsystem_id.value, d.pci.subsystem_vendor_id.value) == ("0x16c1", "0x10de")
    assert d.memory.total_bytes.value == 80 * 2**30
    assert d.memory.reserved_bytes.value == 512 * 2**20
    assert d.memory.total_bytes.call == "nvmlDeviceGetMemoryInfo"
    assert d.capabilities.compute_capability.value == "9.0"
    assert d.capabilities.nvlink_active_links.value == 18
    assert d.capabilities.power_limit_max_w.value == 700.0
    assert d.cuda_driver_version.value == "13.1"
    assert d.architecture.value == "Hopper" and d.brand.value == "Tesla"
    assert d.health.throttle_reasons.value == ["gpu_idle"]
    assert d.health.performance_state.value == "P0"
    assert d.health.device_lost.value is False


def test_unsupported_value_says_which_call_and_why() -> None:
    fan = gpuabst.devices([nvml_fixture(1)])[0].health.fan_speed_pct
    assert (fan.status, fan.reason, fan.call, fan.source) == (
        Status.UNSUPPORTED, "NVML_ERROR_NOT_SUPPORTED", "nvmlDeviceGetFanSpeed", "nvml")


def test_mig_instances_are_partitions_of_their_parent() -> None:
    d = gpuabst.devices([nvml_fixture(1, mig=True)])[0]
    assert [p.profile.value for p in d.partitions] == ["3g.40gb", "3g.40gb"]
    assert {p.parent_bus_id for p in d.partitions} == {d.pci.bus_id.value}
    assert [p.gpu_instance_id.value for p in d.partitions] == [1, 2]
    assert d.partitions[0].memory_total_bytes.value == 40 * 2**30
    assert d.partitions[0].compute_units.value == 60


@pytest.mark.parametrize("timeout", [None, 5.0], ids=["direct-calls", "calls-with-a-timeout"])
def test_new_calls_fall_back_to_old_ones_on_older_drivers(timeout: float | None) -> None:
    fx = nvml_fixture(1)
    calls = fx.backends["nvml"].calls
    for c in calls:  # an older driver: the new calls are missing from libnvidia-ml
        if c["fn"] in ("nvmlDeviceGetTemperatureV", "nvmlDeviceGetCurrentClocksEventReasons",
                       "nvmlSystemGetCudaDriverVersion_v2"):
            c.pop("result")
            c["error"] = {"code": C.FUNCTION_NOT_FOUND}
    h = handle("h0")
    calls += [{"fn": "nvmlDeviceGetTemperature", "args": [h, 0], "result": 41},
              {"fn": "nvmlDeviceGetCurrentClocksThrottleReasons", "args": [h], "result": 0x44},
              {"fn": "nvmlSystemGetCudaDriverVersion", "args": [], "result": 12040}]
    d = gpuabst.devices([fx], call_timeout_s=timeout)[0]
    assert (d.health.temperature_c.value, d.health.temperature_c.call) == (41.0, "nvmlDeviceGetTemperature")
    assert d.health.throttle_reasons.value == ["sw_power_cap", "hw_thermal_slowdown"]
    assert d.cuda_driver_version.value == "12.4"


def test_missing_function_without_older_call_says_so() -> None:
    fx = nvml_fixture(1)
    for c in fx.backends["nvml"].calls:
        if c["fn"] == "nvmlDeviceGetNumaNodeId":
            c.pop("result")
            c["error"] = {"code": C.FUNCTION_NOT_FOUND}
    numa = gpuabst.devices([fx])[0].capabilities.numa_node
    assert (numa.status, numa.reason) == (Status.UNSUPPORTED, "NVML_ERROR_FUNCTION_NOT_FOUND")


@pytest.mark.parametrize("timeout", [None, 5.0], ids=["direct-calls", "calls-with-a-timeout"])
def test_memory_v1_when_the_driver_has_no_v2(timeout: float | None) -> None:
    fx = nvml_fixture(1)
    calls = fx.backends["nvml"].calls
    for c in calls:
        if c["fn"] == "nvmlDeviceGetMemoryInfo" and len(c["args"]) == 2:
            c.pop("result")
            c["error"] = {"code": C.FUNCTION_NOT_FOUND}
    calls.append({"fn": "nvmlDeviceGetMemoryInfo", "args": [handle("h0")],
                  "result": {"$struct": "c_nvmlMemory_t", "total": 100, "free": 60, "used": 40}})
    m = gpuabst.devices([fx], call_timeout_s=timeout)[0].memory
    assert (m.total_bytes.value, m.used_bytes.value, m.free_bytes.value) == (100, 40, 60)
    assert m.reserved_bytes.status is Status.UNSUPPORTED


@pytest.mark.parametrize("timeout", [None, 5.0], ids=["direct-calls", "calls-with-a-timeout"])
@pytest.mark.parametrize(("faults", "status", "value", "reason"), [
    # links up to the first the driver does not know, counting those that are up
    ([(3, {"code": C.INVALID_ARGUMENT}, None), (1, None, 0)], Status.OK, 2, None),
    ([(0, {"code": C.NOT_SUPPORTED}, None)], Status.NOT_APPLICABLE,
     None, "no NVLink on this device (NVML_ERROR_NOT_SUPPORTED)"),
    ([(0, {"code": C.NO_PERMISSION}, None)], Status.NO_PERMISSION, None, "NVML_ERROR_NO_PERMISSION"),
    ([(5, None, "up")], Status.ERROR, None, "unexpected value"),
], ids=["four-links-one-down", "no-nvlink", "no-permission", "garbled-state"])
def test_nvlink_links_are_counted_until_the_driver_says_no_more(
        faults: list[tuple[int, Any, Any]], status: Status, value: int | None, reason: str | None,
        timeout: float | None) -> None:
    with _machine(nvml_fixture(2), call_timeout_s=timeout) as m:
        tape = _tape(m)
        for link, error, result in faults:
            fault = Fault("nvmlDeviceGetNvLinkState", handle="h1", match_arg=(1, link), error=error)
            tape.inject(fault if error else attrs.evolve(fault, result=result))
        first, faulty = (d.capabilities.nvlink_active_links for d in m.snapshot().devices)
    assert (first.status, first.value) == (Status.OK, 18)  # the other GPU is untouched
    assert (faulty.status, faulty.value, faulty.call) == (status, value, "nvmlDeviceGetNvLinkState")
    assert reason is None or reason in (faulty.reason or "")


def test_ecc_counters_are_not_applicable_when_ecc_is_off() -> None:
    fx = nvml_fixture(1)
    for c in fx.backends["nvml"].calls:
        if c["fn"] == "nvmlDeviceGetEccMode":
            c["result"] = [0, 0]
        if c["fn"] == "nvmlDeviceGetTotalEccErrors":
            c.pop("result")
            c["error"] = {"code": C.NOT_SUPPORTED}
    h = gpuabst.devices([fx])[0].health
    assert h.ecc_uncorrected_aggregate.status is Status.NOT_APPLICABLE
    assert h.ecc_uncorrected_aggregate.reason == "ECC is disabled"


def test_a_lost_gpu_is_reported_lost_and_the_others_keep_reporting() -> None:
    with _machine(nvml_fixture(3)) as m:
        _tape(m).inject(Fault("nvmlDeviceGetUUID", handle="h1", error={"code": C.GPU_IS_LOST}))
        devs = m.snapshot().devices
    assert len(devs) == 3
    lost = devs[1]
    assert lost.health.device_lost.value is True
    assert lost.uuid.reason == "NVML_ERROR_GPU_IS_LOST"
    # once lost, later calls on that device are not attempted
    assert lost.board_part_number.reason == "device lost earlier in this read"
    assert devs[0].health.device_lost.value is False and devs[2].uuid.ok and devs[2].memory.total_bytes.ok


@pytest.mark.parametrize("code", sorted(C.ERROR_NAMES))
def test_any_nvml_error_on_any_call_never_breaks_the_snapshot(code: int) -> None:
    fx = nvml_fixture(2)
    fns = sorted({c["fn"] for c in fx.backends["nvml"].calls} - {"nvmlInit", "nvmlDeviceGetCount"})
    with _machine(fx) as m:
        tape = _tape(m)
        for fn in fns:
            tape.inject(Fault(fn, handle="h0", error={"code": code}))
        devs = m.snapshot().devices
    assert len(devs) == 2
    assert devs[1].name.ok and devs[1].memory.total_bytes.ok
    failed = devs[0]
    assert failed.name.status is not Status.OK
    assert failed.name.reason == C.error_name(code) or failed.name.reason == "device lost earlier in this read"


@pytest.mark.parametrize(("code", "words"), [
    (C.LIBRARY_NOT_FOUND, "NVIDIA driver library not found"),
    (C.DRIVER_NOT_LOADED, "NVIDIA driver not loaded"),
    (C.NO_PERMISSION, "no permission"),
    (999, "NVML_ERROR_UNKNOWN"),
])
def test_init_failure_says_why_and_what_to_install(code: int, words: str) -> None:
    b = FixtureBuilder({"kind": "synthetic", "tool": "test"})
    b.backend("nvml").error("nvmlInit", code=code)
    report = gpuabst.backends([b.build()], backends=["nvml"])[0]
    assert not report.available and words in (report.reason or "")
    assert report.install_hint and "nvidia-ml-py" in report.install_hint
    snap = gpuabst.snapshot([b.build()], backends=["nvml"])
    assert snap.devices == []


def test_count_failure_is_a_backend_error_not_a_crash() -> None:
    b = FixtureBuilder({"kind": "synthetic", "tool": "test"})
    log = b.backend("nvml")
    log.result("nvmlInit", value=None)
    log.error("nvmlDeviceGetCount", code=C.DRIVER_NOT_LOADED)
    snap = gpuabst.snapshot([b.build()], backends=["nvml"])
    assert snap.devices == []
    assert "nvmlDeviceGetCount failed" in (snap.backends[0].error or "")


def test_hanging_call_is_abandoned_after_the_timeout() -> None:
    with _machine(nvml_fixture(1), call_timeout_s=0.2) as m:
        _tape(m).inject(Fault("nvmlDeviceGetPowerUsage", delay_s=5.0))
        d = m.snapshot().devices[0]
    assert d.health.power_draw_w.status is Status.TIMEOUT
    assert "did not answer within 0.2 s" in (d.health.power_draw_w.reason or "")
    assert d.health.temperature_c.value == 33.0


def test_poll_rereads_only_dynamic_values() -> None:
    with _machine(nvml_fixture(2)) as m:
        tape = _tape(m)
        first = tape.calls_made
        m.snapshot()
        snapshot_calls = tape.calls_made - first
        before = tape.calls_made
        polled = m.poll()
        poll_calls = tape.calls_made - before
    assert 0 < poll_calls < snapshot_calls / 2
    assert polled.devices[0].name.value == "NVIDIA H100 80GB HBM3"
    assert polled.devices[0].health.temperature_c.value == 33.0


def test_polls_replay_successive_recorded_values() -> None:
    fx = nvml_fixture(1)
    fx.backends["nvml"].calls.append(
        {"fn": "nvmlDeviceGetTemperatureV", "args": [handle("h0"), 0], "result": 71})
    with _machine(fx) as m:
        t1 = m.snapshot().devices[0].health.temperature_c.value
        t2 = m.poll().devices[0].health.temperature_c.value
        t3 = m.poll().devices[0].health.temperature_c.value
    assert (t1, t2, t3) == (33.0, 71.0, 71.0)


def test_call_missing_from_the_fixture_is_not_recorded_and_named() -> None:
    fx = nvml_fixture(1)
    fx.backends["nvml"].calls[:] = [c for c in fx.backends["nvml"].calls if c["fn"] != "nvmlDeviceGetVbiosVersion"]
    v = gpuabst.devices([fx])[0].vbios_version
    assert v.status is Status.NOT_RECORDED
    assert "nvmlDeviceGetVbiosVersion" in (v.reason or "")


def test_gpu_lost_before_its_handle_is_reported_lost() -> None:
    with _machine(nvml_fixture(2)) as m:
        _tape(m).inject(Fault("nvmlDeviceGetHandleByIndex", match_arg=(0, 1), error={"code": C.GPU_IS_LOST}))
        devs = m.snapshot().devices
        again = m.poll().devices
    assert devs[1].health.device_lost.value is True and devs[1].name.reason == "NVML_ERROR_GPU_IS_LOST"
    assert again[1].health.device_lost.value is True
    assert devs[0].health.device_lost.value is False and devs[0].name.ok


def test_clock_event_reasons_are_decoded_into_a_new_list_each_time() -> None:
    """The decoding is kept per mask; what a Reading holds is its own list all the same."""
    first = C.decode_clock_event_reasons(0x1 | 0x4 | 0x10000)
    assert first == ["gpu_idle", "sw_power_cap", "unknown_0x10000"]
    first.append("changed by a caller")
    assert C.decode_clock_event_reasons(0x1 | 0x4 | 0x10000) == ["gpu_idle", "sw_power_cap", "unknown_0x10000"]
    assert C.decode_clock_event_reasons(0) == []


def test_pcie_link_degraded_compares_the_current_link_with_the_maximum_and_passes_a_missing_one_on() -> None:
    from gpuabst_nvml.backend import _link_degraded

    from gpuabst.model import Capabilities
    from gpuabst.reading import missing, ok

    caps = Capabilities(pcie_max_generation=ok(5, "nvml"), pcie_max_width=ok(16, "nvml"))
    assert _link_degraded(ok(5, "nvml"), ok(16, "nvml"), caps, "nvml") == ok(False, "nvml",
                                                                            "nvmlDeviceGetCurrPcieLinkWidth")
    assert _link_degraded(ok(5, "nvml"), ok(8, "nvml"), caps, "nvml").value is True
    assert _link_degraded(ok(1, "nvml"), ok(16, "nvml"), caps, "nvml").value is True
    gone = missing(Status.UNSUPPORTED, "nvml", "nvmlDeviceGetCurrPcieLinkWidth", "no")
    assert _link_degraded(ok(5, "nvml"), gone, caps, "nvml") is gone
    no_max = missing(Status.NOT_RECORDED, "nvml", "nvmlDeviceGetMaxPcieLinkGeneration", "not in the fixture")
    assert _link_degraded(ok(5, "nvml"), ok(16, "nvml"), Capabilities(pcie_max_generation=no_max,
                                                                      pcie_max_width=ok(16, "nvml")), "nvml") is no_max

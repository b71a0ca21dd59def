"""The health model: each check on vendor-neutral readings, the policy, verdicts and `gpuabst health`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import attrs
import pytest
from synthetic import nvml_fixture

from gpuabst.cli.commands.health import EXIT_FAIL, EXIT_OK, EXIT_UNKNOWN, EXIT_WARN
from gpuabst.cli.main import main
from gpuabst.fixtures.builder import handle
from gpuabst.fixtures.format import Fixture, save
from gpuabst.health import (
    DEFAULT_POLICY,
    HealthPolicy,
    Level,
    NodeHealth,
    PolicyError,
    evaluate,
    evaluate_device,
    load_policy,
)
from gpuabst.machine import Machine
from gpuabst.model import BackendReport, Device, HealthReadings, PciInfo, Snapshot
from gpuabst.reading import Reading, Status, missing, ok
from gpuabst.serialize import from_dict, to_dict


def set_result(fx: Fixture, fn: str, *args: Any, value: Any = None, error: int | None = None) -> None:
    """Change what the synthetic fixture answers to ``fn(*args)`` (args in fixture form)."""
    calls = [c for c in fx.backends["nvml"].calls if c["fn"] == fn and c["args"] == list(args)]
    assert calls, f"{fn}{args} is not in the fixture"
    for c in calls:
        c.pop("result", None)
        c.pop("error", None)
        if error is None:
            c["result"] = value
        else:
            c["error"] = {"code": error}


def snapshot_of(fx: Fixture) -> Snapshot:
    with Machine([fx], backends=["nvml"]) as m:
        return m.snapshot()


def node_of(fx: Fixture, policy: HealthPolicy = DEFAULT_POLICY) -> NodeHealth:
    return evaluate(snapshot_of(fx), policy)


def amd_device(**health: Any) -> Device:
    """A device as the amdsmi backend fills the model (vendor-neutral fields only)."""
    src = "amdsmi"
    readings = {k: ok(v, src, "amdsmi_get_gpu_metrics_info") for k, v in health.items()}
    return Device(vendor="amd", index=0, name=ok("AMD Instinct MI300X", src, "amdsmi_get_gpu_asic_info"),
                  pci=PciInfo(bus_id=ok("0000:0c:00.0", src, "amdsmi_get_gpu_bdf_id")),
                  health=HealthReadings(**readings), sources=[src])


# --- a healthy machine ------------------------------------------------------------------------------
def test_healthy_synthetic_gpus_are_ok_with_every_check_answered() -> None:
    node = node_of(nvml_fixture(2))
    assert node.level is Level.OK
    assert [d.level for d in node.devices] == [Level.OK, Level.OK]
    ids = [c.id for c in node.devices[0].checks]
    assert ids == ["presence.device_lost", "driver.vendor_calls", "memory.ecc_volatile", "memory.ecc_lifetime",
                   "memory.ecc_mode", "retirement.pages", "retirement.rows", "thermal.temperature",
                   "clocks.throttle", "power.draw", "pcie.link", "partitions.layout", "interconnect.links"]
    temp = node.devices[0].check("thermal.temperature")
    assert temp.reason == "GPU at 33 C, 54 C below its slowdown threshold 87 C"
    assert temp.inputs == {"health.temperature_c": 33.0, "health.temperature_slowdown_c": 87.0}
    assert "nvmlDeviceGetTemperatureThreshold" in temp.calls
    assert temp.dcgm and temp.dcgm.startswith("DCGM_HEALTH_WATCH_THERMAL")


def test_verdicts_round_trip_through_json() -> None:
    node = node_of(nvml_fixture(2, ecc_dbe=1))
    doc = json.loads(json.dumps(to_dict(node)))
    assert doc["level"] == "fail" and doc["devices"][0]["checks"][2]["level"] == "fail"
    assert from_dict(NodeHealth, doc) == node


# --- memory, retirement ---------------------------------------------------------------------------
def test_uncorrectable_ecc_since_boot_fails_and_lifetime_errors_warn() -> None:
    node = node_of(nvml_fixture(1, ecc_dbe=2))
    d = node.devices[0]
    assert d.level is Level.FAIL
    vol = d.check("memory.ecc_volatile")
    assert vol.level is Level.FAIL
    assert vol.reason.startswith("2 uncorrectable ECC errors since the driver loaded: drain the GPU and reset it")
    assert d.check("memory.ecc_lifetime").level is Level.WARN
    assert node.summary == "gpu0 fail (memory.ecc_volatile)"


def test_ecc_thresholds_come_from_the_policy() -> None:
    fx = nvml_fixture(1, ecc_dbe=2)
    lenient = HealthPolicy(ecc_uncorrected_volatile_fail=3, ecc_uncorrected_aggregate_warn=None,
                           retired_pages_warn=None)
    d = node_of(fx, lenient).devices[0]
    assert d.check("memory.ecc_volatile").level is Level.OK
    assert d.check("memory.ecc_volatile").reason == "2 uncorrectable ECC errors since the driver loaded, 0 corrected"
    assert d.check("memory.ecc_lifetime").level is Level.OK
    assert d.level is Level.OK


def test_pending_retirement_warns_and_says_to_reset() -> None:
    d = node_of(nvml_fixture(1, ecc_dbe=2, pending=True),
                HealthPolicy(ecc_uncorrected_volatile_fail=None)).devices[0]
    pages = d.check("retirement.pages")
    assert pages.level is Level.WARN
    assert pages.reason.startswith("DRAM pages are pending retirement (2 pages retired so far: 0 single-bit, "
                                   "2 double-bit): reset the GPU")
    assert d.check("retirement.rows").level is Level.OK
    strict = node_of(nvml_fixture(1, pending=True), HealthPolicy(pending_retirement=Level.FAIL)).devices[0]
    assert strict.check("retirement.pages").level is Level.FAIL


def test_sixty_retired_pages_fail_as_in_dcgm() -> None:
    fx = nvml_fixture(1)
    set_result(fx, "nvmlDeviceGetRetiredPages", handle("h0"), 0, value=[4096 * i for i in range(59)])
    set_result(fx, "nvmlDeviceGetRetiredPages", handle("h0"), 1, value=[1 << 30])
    pages = node_of(fx).devices[0].check("retirement.pages")
    assert pages.level is Level.FAIL
    assert pages.reason.startswith("60 DRAM pages retired (59 single-bit, 1 double-bit), at or past the limit of 60")


@pytest.mark.parametrize(("rows", "level", "words"), [
    ([0, 0, 0, 1], Level.FAIL, "row remapping failed"),
    ([0, 1, 1, 0], Level.WARN, "pending: reset the GPU"),
    ([5, 0, 0, 0], Level.OK, "5 rows remapped (0 uncorrectable, 5 correctable), none pending"),
])
def test_row_remapping(rows: list[int], level: Level, words: str) -> None:
    fx = nvml_fixture(1)
    set_result(fx, "nvmlDeviceGetRemappedRows", handle("h0"), value=rows)
    c = node_of(fx).devices[0].check("retirement.rows")
    assert c.level is level and words in c.reason


def test_ecc_mode_change_pending_a_reset_warns() -> None:
    fx = nvml_fixture(1)
    set_result(fx, "nvmlDeviceGetEccMode", handle("h0"), value=[0, 1])
    d = node_of(fx).devices[0]
    assert d.check("memory.ecc_mode").level is Level.WARN
    assert "ECC turns on at the next GPU reset" in d.check("memory.ecc_mode").reason
    # with ECC off the driver refuses the counters: not applicable, never ok
    for et, ct in ((0, 0), (1, 0), (0, 1), (1, 1)):
        set_result(fx, "nvmlDeviceGetTotalEccErrors", handle("h0"), et, ct, error=3)
    d = node_of(fx).devices[0]
    assert d.check("memory.ecc_volatile").level is Level.NOT_APPLICABLE
    assert d.check("memory.ecc_volatile").reason.endswith("ECC is disabled")


# --- thermal, clocks, power --------------------------------------------------------------------------
@pytest.mark.parametrize(("temp", "level"), [(81, Level.OK), (82, Level.WARN), (86, Level.WARN), (87, Level.FAIL),
                                             (95, Level.FAIL)])
def test_temperature_margins_below_the_devices_slowdown_threshold(temp: int, level: Level) -> None:
    fx = nvml_fixture(1)
    set_result(fx, "nvmlDeviceGetTemperatureV", handle("h0"), 0, value=temp)
    assert node_of(fx).devices[0].check("thermal.temperature").level is level  # slowdown 87, margins 5/0


def test_temperature_margins_are_policy() -> None:
    fx = nvml_fixture(1)
    set_result(fx, "nvmlDeviceGetTemperatureV", handle("h0"), 0, value=80)
    c = node_of(fx, HealthPolicy(temperature_warn_margin_c=10, temperature_fail_margin_c=5)).devices[0]
    assert c.check("thermal.temperature").level is Level.WARN
    c = node_of(fx, HealthPolicy(temperature_warn_margin_c=20, temperature_fail_margin_c=10)).devices[0]
    assert c.check("thermal.temperature").level is Level.FAIL


def test_without_a_slowdown_threshold_the_policys_absolute_limits_apply() -> None:
    d = amd_device(temperature_c=90.0)
    c = evaluate_device(d).check("thermal.temperature")
    assert c.level is Level.WARN and "the policy warns at 85 C and fails at 95 C" in c.reason
    assert evaluate_device(d, HealthPolicy(temperature_warn_c=95)).check("thermal.temperature").level is Level.OK


@pytest.mark.parametrize(("mask", "level"), [(0x1, Level.OK), (0x4, Level.OK), (0x40, Level.WARN),
                                             (0x80, Level.WARN), (0x20 | 0x1, Level.WARN)])
def test_throttle_reasons_that_count_as_a_problem(mask: int, level: Level) -> None:
    fx = nvml_fixture(1)
    set_result(fx, "nvmlDeviceGetCurrentClocksEventReasons", handle("h0"), value=mask)
    assert node_of(fx).devices[0].check("clocks.throttle").level is level


def test_throttle_reasons_are_policy() -> None:
    fx = nvml_fixture(1)
    set_result(fx, "nvmlDeviceGetCurrentClocksEventReasons", handle("h0"), value=0x4)
    c = node_of(fx, HealthPolicy(throttle_fail=("sw_power_cap",))).devices[0].check("clocks.throttle")
    assert c.level is Level.FAIL and c.reason.startswith("clocks held down by sw_power_cap")


def test_unreadable_power_warns_unsupported_power_does_not_count() -> None:
    fx = nvml_fixture(1)
    set_result(fx, "nvmlDeviceGetPowerUsage", handle("h0"), error=999)
    c = node_of(fx).devices[0].check("power.draw")
    assert c.level is Level.WARN and "cannot be read" in c.reason
    set_result(fx, "nvmlDeviceGetPowerUsage", handle("h0"), error=3)
    assert node_of(fx).devices[0].check("power.draw").level is Level.NOT_APPLICABLE


def test_power_over_the_enforced_limit_warns() -> None:
    fx = nvml_fixture(1)
    set_result(fx, "nvmlDeviceGetPowerUsage", handle("h0"), value=760000)
    c = node_of(fx).devices[0].check("power.draw")
    assert c.level is Level.WARN and c.reason.startswith("drawing 760 W, over its enforced limit of 700 W")


# --- PCIe -------------------------------------------------------------------------------------------
def test_width_drop_warns_naming_both_links() -> None:
    fx = nvml_fixture(1)
    set_result(fx, "nvmlDeviceGetCurrPcieLinkGeneration", handle("h0"), value=3)
    set_result(fx, "nvmlDeviceGetCurrPcieLinkWidth", handle("h0"), value=8)
    set_result(fx, "nvmlDeviceGetMaxPcieLinkGeneration", handle("h0"), value=4)
    c = node_of(fx).devices[0].check("pcie.link")
    assert c.level is Level.WARN
    assert c.reason.startswith("PCIe link at gen3 x8, capable of gen4 x16")


def test_generation_drop_at_idle_is_power_saving_but_not_when_busy() -> None:
    fx = nvml_fixture(1)
    set_result(fx, "nvmlDeviceGetCurrPcieLinkGeneration", handle("h0"), value=1)
    idle = node_of(fx).devices[0].check("pcie.link")
    assert idle.level is Level.OK and "normal power saving" in idle.reason
    set_result(fx, "nvmlDeviceGetUtilizationRates", handle("h0"),
               value={"$struct": "c_nvmlUtilization_t", "gpu": 90, "memory": 40})
    busy = node_of(fx).devices[0].check("pcie.link")
    assert busy.level is Level.WARN and "while 90% busy" in busy.reason


# --- presence, driver, partitions ----------------------------------------------------------------------
def test_mig_on_without_instances_warns() -> None:
    fx = nvml_fixture(1, mig=True)
    fx.backends["nvml"].calls[:] = [c for c in fx.backends["nvml"].calls
                                    if c["fn"] != "nvmlDeviceGetMigDeviceHandleByIndex"]
    for slot in range(7):
        fx.backends["nvml"].calls.append({"fn": "nvmlDeviceGetMigDeviceHandleByIndex", "args": [handle("h0"), slot],
                                          "error": {"code": 6}})
    c = node_of(fx).devices[0].check("partitions.layout")
    assert c.level is Level.WARN and c.reason.startswith("MIG is on but no MIG instance exists")
    ok_mig = node_of(nvml_fixture(1, mig=True)).devices[0].check("partitions.layout")
    assert (ok_mig.level, ok_mig.reason) == (Level.OK, "MIG on with 2 instances (3g.40gb)")


def test_lost_device_fails_and_the_reason_says_what_to_do() -> None:
    d = amd_device(device_lost=True, temperature_c=40.0)
    v = evaluate_device(d)
    assert v.level is Level.FAIL
    assert v.check("presence.device_lost").reason.startswith("the GPU has fallen off the bus")


def test_timed_out_calls_warn_by_name() -> None:
    d = amd_device(temperature_c=40.0)
    d = attrs.evolve(d, health=attrs.evolve(d.health, power_draw_w=missing(
        Status.TIMEOUT, "amdsmi", "amdsmi_get_power_info", "amdsmi_get_power_info did not answer within 1 s")))
    c = evaluate_device(d).check("driver.vendor_calls")
    assert c.level is Level.WARN and c.reason.startswith("1 vendor call timed out (amdsmi_get_power_info)")


def test_a_timed_out_value_without_a_call_is_named_by_its_field() -> None:
    d = amd_device(temperature_c=40.0)
    hung = missing(Status.TIMEOUT, "amdsmi", None, "no answer")
    d = attrs.evolve(d, health=attrs.evolve(d.health, fan_speed_pct=hung))
    c = evaluate_device(d).check("driver.vendor_calls")
    assert c.level is Level.WARN and c.reason.startswith("1 vendor call timed out (health.fan_speed_pct)")
    assert c.inputs["timed_out"] == ["health.fan_speed_pct"]
    # one Reading in two fields (a backend may share one failure): each field is named
    d = attrs.evolve(d, health=attrs.evolve(d.health, power_draw_w=hung))
    c = evaluate_device(d).check("driver.vendor_calls")
    assert c.inputs["timed_out"] == ["health.fan_speed_pct", "health.power_draw_w"]


def test_a_driver_fault_inside_a_partition_is_found() -> None:
    d = Machine([nvml_fixture(1, mig=True)], backends=["nvml"]).snapshot().devices[0]
    reset = missing(Status.ERROR, "nvml", "nvmlDeviceGetUUID", "NVML_ERROR_RESET_REQUIRED")
    d = attrs.evolve(d, partitions=[d.partitions[0], attrs.evolve(d.partitions[1], uuid=reset)])
    c = evaluate_device(d).check("driver.vendor_calls")
    assert c.level is Level.FAIL
    assert c.reason == "the driver says the GPU needs a reset (nvmlDeviceGetUUID): drain it and reset it"


def test_every_reading_of_a_device_is_looked_at() -> None:
    from collections import Counter

    from gpuabst.health.checks import readings_in, walk_readings

    d = Machine([nvml_fixture(1, mig=True)], backends=["nvml"]).snapshot().devices[0]
    named = [r for _, r in walk_readings(d)]
    assert Counter(map(id, readings_in(d))) == Counter(map(id, named))
    assert len(named) > 100 and any(name.startswith("partitions[1].") for name, _ in walk_readings(d))
    assert evaluate_device(d).check("driver.vendor_calls").inputs["answered"] == sum(r.ok for r in named)


# --- unknown is never ok --------------------------------------------------------------------------------
def test_a_check_whose_inputs_are_missing_is_unknown_and_says_why() -> None:
    fx = nvml_fixture(1)
    set_result(fx, "nvmlDeviceGetTemperatureV", handle("h0"), 0, error=4)  # no permission
    c = node_of(fx).devices[0].check("thermal.temperature")
    assert c.level is Level.UNKNOWN
    assert c.reason == "cannot tell the GPU temperature: no_permission: NVML_ERROR_NO_PERMISSION"


def test_a_device_nobody_reported_health_for_is_unknown_not_ok() -> None:
    d = Device(vendor="intel", index=0, name=ok("Intel(R) UHD Graphics", "opencl", "clGetDeviceInfo"),
               sources=["opencl"])
    v = evaluate_device(d)
    assert v.level is Level.UNKNOWN
    # the only ok is that the calls it made (its name) answered; every health question is unknown
    assert [c.id for c in v.checks if c.level is Level.OK] == ["driver.vendor_calls"]
    assert v.check("thermal.temperature").reason == ("cannot tell the GPU temperature: not_recorded: no backend "
                                                     "reported this value")


def test_missing_inputs_give_unknown_for_every_status_but_unsupported() -> None:
    for status in Status:
        if status is Status.OK:
            continue
        r: Reading[Any] = missing(status, "nvml", "nvmlDeviceGetTemperature", "why")
        d = attrs.evolve(amd_device(), health=HealthReadings(temperature_c=r))
        level = evaluate_device(d).check("thermal.temperature").level
        expected = Level.NOT_APPLICABLE if status in (Status.UNSUPPORTED, Status.NOT_APPLICABLE) else Level.UNKNOWN
        assert level is expected, status


def test_the_same_readings_give_the_same_verdict_on_every_vendor() -> None:
    nv = node_of(nvml_fixture(1)).devices[0]
    nvidia_device = snapshot_of(nvml_fixture(1)).devices[0]
    as_amd = attrs.evolve(nvidia_device, vendor="amd")
    amd = evaluate_device(as_amd)
    assert [(c.id, c.level, c.reason) for c in amd.checks] == [(c.id, c.level, c.reason) for c in nv.checks]


# --- node -------------------------------------------------------------------------------------------------
def test_expected_device_count() -> None:
    snap = snapshot_of(nvml_fixture(7))
    node = evaluate(snap, HealthPolicy(expected_devices=8))
    c = node.checks[0]
    assert (c.id, c.level) == ("node.device_count", Level.FAIL)
    assert c.reason.startswith("expected 8 GPUs, found 7")
    assert node.level is Level.FAIL
    assert evaluate(snap, HealthPolicy(expected_devices=7)).level is Level.OK
    assert evaluate(snap, HealthPolicy(expected_devices=6)).checks[0].level is Level.WARN


def test_no_gpu_at_all_is_unknown_and_a_failed_backend_warns() -> None:
    empty = Snapshot([], [BackendReport("nvml", False, "NVIDIA driver library not found")])
    node = evaluate(empty)
    assert node.level is Level.UNKNOWN
    assert "no GPU found" in node.checks[0].reason
    broken = Snapshot([], [BackendReport("nvml", False, "RuntimeError: boom", error="RuntimeError: boom")])
    node = evaluate(broken, HealthPolicy(expected_devices=1))
    assert node.checks[1].level is Level.WARN and "backend nvml failed: RuntimeError: boom" in node.checks[1].reason
    assert node.level is Level.FAIL


def test_cpu_devices_are_left_out_unless_asked() -> None:
    cpu = Device(vendor="intel", index=1, device_type="cpu", name=ok("CPU", "opencl", "clGetDeviceInfo"))
    snap = snapshot_of(nvml_fixture(1))
    snap = attrs.evolve(snap, devices=[*snap.devices, cpu])
    assert len(evaluate(snap).devices) == 1
    assert len(evaluate(snap, include_all=True).devices) == 2


# --- the policy ---------------------------------------------------------------------------------------------
def test_policy_from_a_json_file_changes_only_what_it_names(tmp_path: Path) -> None:
    p = tmp_path / "policy.json"
    p.write_text(json.dumps({"expected_devices": 8, "throttle_warn": ["hw_slowdown"], "pending_retirement": "fail"}))
    policy = load_policy(p)
    assert policy.expected_devices == 8 and policy.throttle_warn == ("hw_slowdown",)
    assert policy.pending_retirement is Level.FAIL
    assert policy.temperature_warn_margin_c == DEFAULT_POLICY.temperature_warn_margin_c


def test_policy_from_yaml(tmp_path: Path) -> None:
    pytest.importorskip("yaml")
    p = tmp_path / "policy.yaml"
    p.write_text("expected_devices: 4\ntemperature_warn_margin_c: 8\n")
    assert load_policy(p) == HealthPolicy(expected_devices=4, temperature_warn_margin_c=8)


@pytest.mark.parametrize(("text", "words"), [
    ('{"expected_devices": -1}', "expected_devices: expected a whole number >= 0"),
    ('{"expected_device": 8}', "unknown health policy setting 'expected_device'"),
    ('{"pending_retirement": "panic"}', "pending_retirement: expected one of ok, warn, fail"),
    ('{"throttle_warn": "hw_slowdown"}', "throttle_warn: expected a list of names"),
    ('{"temperature_warn_margin_c": "hot"}', "temperature_warn_margin_c: expected a number"),
    ('{"require_ecc": "yes"}', "require_ecc: expected true or false"),
    ('[1, 2]', "expected an object of settings, got list"),
    ('{"expected_devices": 8', "not valid JSON"),
])
def test_malformed_policy_is_one_line_naming_file_and_setting(tmp_path: Path, text: str, words: str) -> None:
    p = tmp_path / "policy.json"
    p.write_text(text)
    with pytest.raises(PolicyError) as e:
        load_policy(p)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(str(p)) and words in msg


def test_policy_from_python_is_validated_too() -> None:
    with pytest.raises(PolicyError, match="retired_pages_fail"):
        HealthPolicy(retired_pages_fail=1.5)  # type: ignore[arg-type]
    with pytest.raises(PolicyError, match="unknown health policy setting"):
        DEFAULT_POLICY.replace(nonsense=1)
    assert DEFAULT_POLICY.replace(expected_devices=2).expected_devices == 2
    assert HealthPolicy(**{k: v for k, v in DEFAULT_POLICY.as_dict().items()}) == DEFAULT_POLICY


# --- the command line ----------------------------------------------------------------------------------------
def _fixture_file(tmp_path: Path, fx: Fixture, name: str = "fx.json") -> str:
    path = tmp_path / name
    save(fx, path)
    return str(path)


def test_cli_exit_codes_for_each_level(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    healthy = _fixture_file(tmp_path, nvml_fixture(2), "ok.json")
    assert main(["health", "--fixture", healthy, "--backend", "nvml"]) == EXIT_OK
    assert capsys.readouterr().out.startswith("node   OK")
    warn = nvml_fixture(1)
    set_result(warn, "nvmlDeviceGetCurrPcieLinkWidth", handle("h0"), value=8)
    warn_path = _fixture_file(tmp_path, warn, "warn.json")
    assert main(["health", "--fixture", warn_path, "--backend", "nvml"]) == EXIT_WARN
    out = capsys.readouterr().out
    assert "warn           pcie.link" in out and "PCIe link at gen5 x8, capable of gen5 x16" in out
    assert main(["health", "--fixture", warn_path, "--backend", "nvml", "--tolerate", "warn"]) == EXIT_OK
    assert main(["health", "--fixture", healthy, "--backend", "nvml", "--expect", "3"]) == EXIT_FAIL
    assert "expected 3 GPUs, found 2" in capsys.readouterr().out
    unknown = nvml_fixture(1)
    set_result(unknown, "nvmlDeviceGetTemperatureV", handle("h0"), 0, error=4)
    unknown_path = _fixture_file(tmp_path, unknown, "unknown.json")
    assert main(["health", "--fixture", unknown_path, "--backend", "nvml"]) == EXIT_UNKNOWN
    assert main(["health", "--fixture", unknown_path, "--backend", "nvml", "--tolerate", "unknown"]) == EXIT_OK
    assert len({EXIT_OK, EXIT_WARN, EXIT_FAIL, EXIT_UNKNOWN, 1, 2}) == 6


def test_cli_fail_wins_over_warn_and_unknown(tmp_path: Path) -> None:
    fx = nvml_fixture(2, ecc_dbe=1)
    set_result(fx, "nvmlDeviceGetCurrPcieLinkWidth", handle("h1"), value=8)
    set_result(fx, "nvmlDeviceGetTemperatureV", handle("h1"), 0, error=4)
    path = _fixture_file(tmp_path, fx)
    assert main(["health", "--fixture", path, "--backend", "nvml"]) == EXIT_FAIL
    assert main(["health", "--fixture", path, "--backend", "nvml", "--tolerate", "warn"]) == EXIT_FAIL


def test_cli_json_document(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _fixture_file(tmp_path, nvml_fixture(1, pending=True))
    code = main(["health", "--fixture", path, "--backend", "nvml", "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == EXIT_WARN == doc["exit_code"]
    assert (doc["schema"], doc["schema_version"], doc["verdict"]) == ("gpuabst.health", 1, "warn")
    dev = doc["node"]["devices"][0]
    assert dev["level"] == "warn" and dev["bus_id"] == "0000:18:00.0"
    pages = next(c for c in dev["checks"] if c["system"] == "retirement" and c["name"] == "pages")
    assert pages["inputs"]["health.retired_pages_pending"] is True
    assert doc["policy"]["pending_retirement"] == "warn"


def test_cli_malformed_policy_is_one_line_and_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _fixture_file(tmp_path, nvml_fixture(1))
    bad = tmp_path / "p.json"
    bad.write_text('{"expected_devices": "eight"}')
    assert main(["health", "--fixture", path, "--policy", str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "expected_devices: expected a whole number" in err


def test_cli_print_policy(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["health", "--print-policy", "--expect", "8"]) == 0
    assert json.loads(capsys.readouterr().out)["expected_devices"] == 8


# --- AMD, replayed through the amdsmi backend: the same checks, the same words ---------------------------
def _amd_node(*gpus: Any, policy: HealthPolicy = DEFAULT_POLICY) -> NodeHealth:
    from amdsmi_synthetic import amdsmi_fixture

    with Machine([amdsmi_fixture(list(gpus))], backends=["amdsmi"]) as m:
        return evaluate(m.snapshot(), policy)


def test_amd_uncorrectable_ecc_and_pending_bad_pages_fail_and_warn_like_nvidia() -> None:
    from amdsmi_synthetic import mi300x

    node = _amd_node(mi300x(0, uncorrectable=2, bad_pages=[{"status": "PENDING", "page_address": 4096},
                                                          {"status": "RESERVED", "page_address": 8192}]),
                     mi300x(1))
    sick, healthy = node.devices
    assert sick.level is Level.FAIL
    assert sick.check("memory.ecc_volatile").reason.startswith("2 uncorrectable ECC errors since the driver loaded")
    pages = sick.check("retirement.pages")
    assert pages.level is Level.WARN
    assert pages.reason.startswith("DRAM pages are pending retirement (1 page retired so far: 1 double-bit): "
                                   "reset the GPU (amd-smi reset -G)")
    # amdsmi keeps no lifetime count and AMD GPUs retire pages instead of remapping rows: not applicable
    assert sick.check("memory.ecc_lifetime").level is Level.NOT_APPLICABLE
    assert sick.check("retirement.rows").level is Level.NOT_APPLICABLE
    assert healthy.check("retirement.pages").level is Level.OK
    assert healthy.check("memory.ecc_volatile").reason.startswith("1 deferred ECC error")  # the fixture has one


def test_amd_hotspot_memory_partitions_and_xgmi() -> None:
    from amdsmi_synthetic import mi300x

    node = _amd_node(mi300x(0), policy=HealthPolicy(ecc_deferred_warn=None, expected_links=8))
    d = node.devices[0]
    assert d.level is Level.WARN
    # MI300X has no edge sensor: the hotspot and memory temperatures are judged instead
    temp = d.check("thermal.temperature")
    assert (temp.level, temp.reason) == (Level.OK, "hotspot at 41 C; memory at 35 C")
    hot = _amd_node(mi300x(0), policy=HealthPolicy(temperature_hotspot_warn_c=40)).devices[0]
    assert hot.check("thermal.temperature").level is Level.WARN
    assert d.check("partitions.layout").reason == "compute partition mode SPX, memory partition mode NPS1, 0 partitions"
    links = d.check("interconnect.links")
    assert links.level is Level.WARN and links.reason.startswith("7 of 8 xGMI links active")
    assert [c.id for c in d.problems()] == ["interconnect.links"]


# --- a GPU on the PCI bus that its driver does not report ------------------------------------------------
def test_a_gpu_only_the_pci_bus_sees_fails_when_its_driver_reports_others() -> None:
    fx = nvml_fixture(1)
    for c in fx.backends["nvml"].calls:
        if c["fn"] == "nvmlDeviceGetPciInfo":
            c["result"] = {**c["result"], "busId": "00000000:30:00.0", "bus": 0x30}
    pci = Path(__file__).resolve().parent.parent / "fixtures" / "pci" / "h100-mi300x-aspeed.json"
    with Machine([fx, pci]) as m:
        node = evaluate(m.snapshot())
    by_bus = {v.bus_id: v for v in node.devices}
    assert by_bus["0000:30:00.0"].level is Level.OK  # the one NVML reports
    driverless = by_bus["0000:18:00.0"]  # the H100 sysfs shows and NVML does not
    lost = driverless.check("presence.device_lost")
    assert lost.level is Level.FAIL and driverless.level is Level.FAIL
    assert lost.reason.startswith("the GPU is on the PCI bus (seen by pci) but its driver does not report it, "
                                  "while it reports 1 other nvidia GPU")
    # no AMD driver backend reports any GPU here: the MI300X is unknown, not failed
    amd = next(v for v in node.devices if v.vendor == "amd")
    assert amd.level is Level.UNKNOWN and amd.check("presence.device_lost").level is Level.UNKNOWN
    # the BMC's display controller is not a GPU and is left out unless asked
    assert all(v.vendor != "aspeed" for v in node.devices)
    assert node.level is Level.FAIL


# --- branches each check takes on readings written here (vendor-neutral) ------------------------------
def _device(vendor: str = "nvidia", caps: dict[str, Any] | None = None, **health: Any) -> Device:
    """A device whose health fields are given as values (ok Readings) or Readings."""
    from gpuabst.model import Capabilities

    def reading(v: Any) -> Reading[Any]:
        return v if isinstance(v, Reading) else ok(v, "test", "test_call")

    return Device(vendor=vendor, index=0, name=ok("GPU", "test", "test_call"),
                  capabilities=Capabilities(**{k: reading(v) for k, v in (caps or {}).items()}),
                  health=HealthReadings(**{k: reading(v) for k, v in health.items()}), sources=["test"])


def test_a_corrupted_inforom_warns_naming_the_call() -> None:
    bad = missing(Status.ERROR, "nvml", "nvmlDeviceGetEccMode", "NVML_ERROR_CORRUPTED_INFOROM")
    c = evaluate_device(_device(temperature_c=40.0, ecc_corrected_aggregate=bad)).check("driver.vendor_calls")
    assert c.level is Level.WARN
    assert c.reason.startswith("the InfoROM is corrupted (nvmlDeviceGetEccMode): the board's stored configuration")


def test_a_device_whose_every_call_failed_cannot_be_said_to_answer() -> None:
    failed = missing(Status.ERROR, "nvml", "nvmlDeviceGetTemperatureV", "NVML_ERROR_UNKNOWN")
    d = Device(vendor="nvidia", index=0, name=missing(Status.ERROR, "nvml", "nvmlDeviceGetName", "NVML_ERROR_UNKNOWN"),
               health=HealthReadings(temperature_c=failed), sources=["nvml"])
    c = evaluate_device(d).check("driver.vendor_calls")
    assert (c.level, c.reason) == (Level.UNKNOWN, "cannot tell whether the driver answers: no vendor call for this "
                                                  "device answered: no input")


def test_corrected_ecc_errors_warn_only_where_the_policy_says() -> None:
    d = _device(ecc_uncorrected_volatile=0, ecc_corrected_volatile=12)
    assert evaluate_device(d).check("memory.ecc_volatile").level is Level.OK  # off by default
    c = evaluate_device(d, HealthPolicy(ecc_corrected_volatile_warn=10)).check("memory.ecc_volatile")
    assert c.level is Level.WARN and c.reason.startswith("12 corrected ECC errors since the driver loaded: the "
                                                         "memory is wearing")


def test_ecc_off_warns_when_the_policy_requires_it() -> None:
    d = _device(caps={"ecc_enabled": False, "ecc_pending_enabled": False})
    assert evaluate_device(d).check("memory.ecc_mode").level is Level.OK
    c = evaluate_device(d, HealthPolicy(require_ecc=True)).check("memory.ecc_mode")
    assert (c.level, c.reason) == (Level.WARN, "ECC is off and the policy requires it: turn it on (nvidia-smi -e 1), "
                                               "then reset the GPU (nvidia-smi -r)")


@pytest.mark.parametrize(("readings", "words"), [
    ({"retired_pages_single_bit": missing(Status.TIMEOUT, "nvml", "nvmlDeviceGetRetiredPages", "no answer"),
      "retired_pages_double_bit": missing(Status.TIMEOUT, "nvml", "nvmlDeviceGetRetiredPages", "no answer"),
      "retired_pages_pending": False}, "retired page counts not read (timeout: no answer)"),
    ({"retired_pages_single_bit": 0, "retired_pages_double_bit": 0,
      "retired_pages_pending": missing(Status.NO_PERMISSION, "nvml", "nvmlDeviceGetRetiredPagesPendingStatus",
                                       "root only")}, "pending retirement not read (no_permission: root only)"),
])
def test_retirement_counts_that_cannot_be_read_are_unknown(readings: dict[str, Any], words: str) -> None:
    c = evaluate_device(_device(**readings)).check("retirement.pages")
    assert c.level is Level.UNKNOWN and words in c.reason


def test_a_row_remapping_failure_that_cannot_be_read_is_unknown() -> None:
    c = evaluate_device(_device(remapped_rows_corrected=0, remapped_rows_uncorrected=0, remapped_rows_pending=False,
                                remapped_rows_failure=missing(Status.ERROR, "nvml", "nvmlDeviceGetRemappedRows",
                                                              "NVML_ERROR_UNKNOWN"))).check("retirement.rows")
    assert c.level is Level.UNKNOWN and "row remapping failure not read (error: NVML_ERROR_UNKNOWN)" in c.reason


@pytest.mark.parametrize(("temp", "level"), [(84.0, Level.OK), (85.0, Level.WARN), (95.0, Level.FAIL)])
def test_without_a_slowdown_threshold_the_absolute_limits_warn_and_fail(temp: float, level: Level) -> None:
    c = evaluate_device(_device(temperature_c=temp, temperature_slowdown_c=missing(Status.UNSUPPORTED, "nvml"))
                        ).check("thermal.temperature")
    assert c.level is level and "the device reports no slowdown threshold" in c.reason


@pytest.mark.parametrize(("hotspot", "memory", "level", "words"), [
    (99.0, 89.0, Level.OK, "hotspot at 99 C"), (105.0, 89.0, Level.WARN, "hotspot at 105 C, within 5 C of the "
                                                                          "policy's 110 C"),
    (110.0, 89.0, Level.FAIL, "hotspot at 110 C, at or above the policy's 110 C"),
    (80.0, 96.0, Level.FAIL, "memory at 96 C, at or above the policy's 95 C"),
    (80.0, missing(Status.UNSUPPORTED, "amdsmi"), Level.OK, "hotspot at 80 C"),
])
def test_hotspot_and_memory_temperatures_against_the_policy(hotspot: float, memory: Any, level: Level,
                                                            words: str) -> None:
    c = evaluate_device(_device("amd", temperature_hotspot_c=hotspot, temperature_memory_c=memory)
                        ).check("thermal.temperature")
    assert c.level is level and words in c.reason


@pytest.mark.parametrize(("reason", "words"), [
    ("vrhot_gpu", "voltage regulator"), ("temp_edge", "a sensor is too hot"), ("prochot_cpu", "PROCHOT"),
    ("someday_new", "see the vendor's documentation of this reason"),
])
def test_throttle_reasons_by_family_get_their_advice(reason: str, words: str) -> None:
    from gpuabst.health.checks import _throttle_advice

    assert words in _throttle_advice(reason)


@pytest.mark.parametrize(("degraded", "level", "words"), [
    (True, Level.WARN, "the PCIe link runs below its maximum (generation and width not reported"),
    (False, Level.OK, "the PCIe link runs at its maximum"),
])
def test_a_link_reported_only_as_degraded_or_not(degraded: bool, level: Level, words: str) -> None:
    c = evaluate_device(_device(pcie_link_degraded=degraded)).check("pcie.link")
    assert c.level is level and c.reason.startswith(words)


def test_a_link_generation_that_cannot_be_read_is_unknown() -> None:
    d = _device(caps={"pcie_max_generation": 5, "pcie_max_width": 16}, pcie_current_width=16,
                pcie_current_generation=missing(Status.TIMEOUT, "nvml", "nvmlDeviceGetCurrPcieLinkGeneration",
                                                "no answer"))
    c = evaluate_device(d).check("pcie.link")
    assert c.level is Level.UNKNOWN and "PCIe link generation not read (timeout: no answer)" in c.reason


@pytest.mark.parametrize(("now", "pending", "words"), [(False, True, "MIG turns on at the next GPU reset"),
                                                       (True, False, "MIG turns off at the next GPU reset")])
def test_a_mig_change_pending_a_reset_warns(now: bool, pending: bool, words: str) -> None:
    c = evaluate_device(_device(caps={"mig_enabled": now, "mig_pending_enabled": pending})).check("partitions.layout")
    assert c.level is Level.WARN and words in c.reason


def test_links_that_cannot_be_counted_are_unknown_when_a_count_is_expected() -> None:
    d = _device(caps={"nvlink_active_links": missing(Status.NO_PERMISSION, "nvml", "nvmlDeviceGetNvLinkState",
                                                     "root only")})
    c = evaluate_device(d, HealthPolicy(expected_links=18)).check("interconnect.links")
    assert (c.level, c.reason) == (Level.UNKNOWN, "cannot tell how many NVLink links are up: no_permission: root only")

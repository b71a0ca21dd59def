"""The amdsmi backend, run for real against replayed vendor calls (no GPU, no libamd_smi.so)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from amdsmi_synthetic import GIB, VRAM, amdsmi_fixture, mi300x
from gpuabst_amdsmi import constants as C
from gpuabst_amdsmi import fake_amdsmi
from gpuabst_amdsmi.synth import MEM, MIB, NotSupported

from gpuabst.fixtures.format import Fixture, load
from gpuabst.fixtures.tape import Fault
from gpuabst.machine import Machine
from gpuabst.model import Device
from gpuabst.reading import Status

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "amd"


def _devices(fx: Fixture | Path, **kw: Any) -> list[Device]:
    with Machine([fx], **kw) as m:
        return m.snapshot().devices


def _machine(fx: Fixture, **kw: Any) -> Machine:
    return Machine([fx], backends=["amdsmi"], **kw)


def _tape(m: Machine) -> Any:
    m.backend_reports()
    return m.library.tapes["amdsmi"]  # type: ignore[attr-defined]


def _device(fx: Fixture, fault: Fault | None = None, **kw: Any) -> Device:
    with _machine(fx, **kw) as m:
        if fault is not None:
            _tape(m).inject(fault)
        return m.snapshot().devices[0]


def test_full_device_identity_and_pci() -> None:
    d = _devices(amdsmi_fixture(1), backends=["amdsmi"])[0]
    assert (d.vendor, d.name.value, d.model.value) == ("amd", "AMD Instinct MI300X", "mi300x")
    assert d.name.call == "amdsmi_get_gpu_asic_info" and d.name.source == "amdsmi"
    assert (d.pci.vendor_id.value, d.pci.device_id.value, d.pci.revision_id.value) == ("0x1002", "0x74a1", "0x00")
    assert (d.pci.subsystem_id.value, d.pci.subsystem_vendor_id.value) == ("0x74a1", "0x1002")
    assert d.pci.bus_id.value == "0000:0c:00.0"
    assert d.uuid.value == "5c4b0000-0000-4000-8000-000000000000"
    assert d.serial.value == "SCRUBBED-SERIAL-0001"
    assert (d.board_part_number.value, d.board_product_name.value) == ("102-G30211-0C", "AMD Instinct MI300X OAM")
    assert d.vbios_version.value == "113-M3000100-102"
    assert (d.driver_name.value, d.driver_version.value) == ("amdgpu", "6.8.5")
    assert (d.capabilities.gfx_target.value, d.architecture.value) == ("gfx942", "CDNA 3")


def test_full_device_memory_capabilities_and_health() -> None:
    d = _devices(amdsmi_fixture(1), backends=["amdsmi"])[0]
    m, c, h = d.memory, d.capabilities, d.health
    assert (m.total_bytes.value, m.visible_total_bytes.value, m.gtt_total_bytes.value) == (VRAM, VRAM, 128 * GIB)
    assert (m.used_bytes.value, m.free_bytes.value) == (283 * MIB, VRAM - 283 * MIB)
    assert m.total_bytes.call == "amdsmi_get_gpu_memory_total"
    assert c.compute_units.value == 304
    assert (c.ecc_enabled.value, c.ecc_enabled_blocks.value) == (True, ["UMC", "GFX"])
    assert (c.pcie_max_generation.value, c.pcie_max_width.value) == (5, 16)
    assert (c.xgmi_links.value, c.xgmi_hive_id.value) == (7, "0x1e1a5eed0c0ffee")
    assert (c.numa_node.value, c.compute_partition_mode.value, c.memory_partition_mode.value) == (0, "SPX", "NPS1")
    assert (c.power_limit_w.value, c.power_limit_max_w.value, c.power_limit_min_w.value) == (750.0, 750.0, 0.0)
    assert (c.max_graphics_clock_mhz.value, c.max_memory_clock_mhz.value) == (2100, 1300)
    assert (h.temperature_hotspot_c.value, h.temperature_memory_c.value) == (41.0, 35.0)
    assert (h.power_draw_w.value, h.power_draw_w.call) == (138.0, "amdsmi_get_power_info")
    assert h.power_limit_enforced_w.value == 750.0
    assert (h.utilization_gpu_pct.value, h.utilization_memory_pct.value) == (7.0, 2.0)
    assert (h.graphics_clock_mhz.value, h.memory_clock_mhz.value) == (132, 900)
    assert (h.ecc_corrected_volatile.value, h.ecc_uncorrected_volatile.value, h.ecc_deferred.value) == (12, 0, 1)
    assert (h.retired_pages_double_bit.value, h.retired_pages_pending.value) == (0, False)
    assert h.throttle_reasons.value == []
    assert (h.pcie_current_generation.value, h.pcie_current_width.value, h.pcie_link_degraded.value) == (5, 16, False)
    assert h.device_lost.value is False
    assert d.partitions == []


def test_vendor_not_supported_and_na_strings_say_why() -> None:
    d = _devices(amdsmi_fixture(1), backends=["amdsmi"])[0]
    edge = d.health.temperature_c
    assert (edge.status, edge.reason, edge.call) == (Status.UNSUPPORTED, "AMDSMI_STATUS_NOT_SUPPORTED",
                                                      "amdsmi_get_temp_metric")
    assert d.health.fan_speed_pct.status is Status.UNSUPPORTED
    assert d.health.sm_clock_mhz.status is Status.NOT_APPLICABLE


def test_na_string_in_a_result_is_unsupported_never_a_value() -> None:
    g = mi300x(0)
    g.dicts[("amdsmi_get_gpu_asic_info",)]["subsystem_id"] = "N/A"
    g.dicts[("amdsmi_get_gpu_asic_info",)]["num_compute_units"] = "N/A"
    g.dicts[("amdsmi_get_power_info",)] = {k: "N/A" for k in ("socket_power", "current_socket_power",
                                                               "average_socket_power")}
    g.dicts[("amdsmi_get_gpu_activity",)]["gfx_activity"] = 0xFFFF  # raw UINT16_MAX from older releases
    d = _devices(amdsmi_fixture([g]), backends=["amdsmi"])[0]
    for r in (d.pci.subsystem_id, d.capabilities.compute_units, d.health.power_draw_w, d.health.utilization_gpu_pct):
        assert r.status is Status.UNSUPPORTED and r.value is None
        assert "N/A" in (r.reason or "")


def test_older_power_info_falls_back_to_average_socket_power() -> None:
    g = mi300x(0)
    g.dicts[("amdsmi_get_power_info",)] = {"average_socket_power": 95, "gfx_voltage": 800, "power_limit": 300}
    d = _devices(amdsmi_fixture([g]), backends=["amdsmi"])[0]
    assert d.health.power_draw_w.value == 95.0


def test_memory_falls_back_to_vram_usage_in_mb_when_the_byte_calls_are_missing() -> None:
    g = mi300x(0)
    del g.scalars[("amdsmi_get_gpu_memory_total", MEM.VRAM)]
    del g.scalars[("amdsmi_get_gpu_memory_usage", MEM.VRAM)]
    g.dicts[("amdsmi_get_gpu_vram_usage",)] = {"vram_total": 196592, "vram_used": 283}
    d = _devices(amdsmi_fixture([g]), backends=["amdsmi"])[0]
    assert (d.memory.total_bytes.value, d.memory.total_bytes.call) == (196592 * MIB, "amdsmi_get_gpu_vram_usage")
    assert d.memory.used_bytes.value == 283 * MIB


def test_missing_key_in_a_replayed_result_is_not_recorded() -> None:
    g = mi300x(0)
    del g.dicts[("amdsmi_get_gpu_asic_info",)]["target_graphics_version"]
    d = _devices(amdsmi_fixture([g]), backends=["amdsmi"])[0]
    assert d.capabilities.gfx_target.status is Status.NOT_RECORDED
    assert "target_graphics_version" in (d.capabilities.gfx_target.reason or "")


def test_ecc_bad_pages_and_throttler_bits() -> None:
    pages = [{"value": 0, "page_address": 0x1000, "page_size": 4096, "status": 0},
             {"value": 1, "page_address": 0x2000, "page_size": 4096, "status": 0},
             {"value": 2, "page_address": 0x3000, "page_size": 4096, "status": 1}]
    g = mi300x(0, uncorrectable=3, bad_pages=pages)
    g.dicts[("amdsmi_get_gpu_metrics_info",)]["indep_throttle_status"] = (1 << 0) | (1 << 36)
    h = _devices(amdsmi_fixture([g]), backends=["amdsmi"])[0].health
    assert h.ecc_uncorrected_volatile.value == 3
    assert (h.retired_pages_double_bit.value, h.retired_pages_pending.value) == (2, True)
    assert h.throttle_reasons.value == ["ppt0", "temp_hotspot"]


def test_throttle_status_bool_of_newer_releases() -> None:
    g = mi300x(0)
    g.dicts[("amdsmi_get_gpu_metrics_info",)] = {"throttle_status": True, "indep_throttle_status": True}
    assert _devices(amdsmi_fixture([g]))[0].health.throttle_reasons.value == ["throttled"]


def test_ecc_counts_not_applicable_while_ecc_is_off() -> None:
    g = mi300x(0, ecc_mask=0)
    g.dicts.pop(("amdsmi_get_gpu_total_ecc_count",))
    g.scalars[("amdsmi_get_gpu_total_ecc_count",)] = NotSupported("no RAS")
    d = _devices(amdsmi_fixture([g]))[0]
    assert (d.capabilities.ecc_enabled.value, d.capabilities.ecc_enabled_blocks.value) == (False, [])
    assert d.health.ecc_uncorrected_volatile.status is Status.NOT_APPLICABLE


def test_compute_and_memory_partitions_are_children_of_one_device() -> None:
    parts = [mi300x(0, partition=p, compute="DPX", memory="NPS4", vram=VRAM // 2, cus=152) for p in (1, 0)]
    devices = _devices(amdsmi_fixture([*parts, mi300x(1)]), backends=["amdsmi"])
    assert len(devices) == 2
    d = devices[0]
    assert d.pci.bus_id.value == "0000:0c:00.0"
    assert (d.capabilities.compute_partition_mode.value, d.capabilities.memory_partition_mode.value) == ("DPX", "NPS4")
    compute = [p for p in d.partitions if p.kind == "compute"]
    memory = [p for p in d.partitions if p.kind == "memory"]
    assert [p.index for p in compute] == [0, 1]
    assert {p.profile.value for p in compute} == {"DPX"}
    assert [p.compute_units.value for p in compute] == [152, 152]
    assert [p.memory_total_bytes.value for p in compute] == [VRAM // 2] * 2
    assert [p.uuid.value for p in compute] == ["5c4b0000-0000-4000-8000-000000000000",
                                               "5c4b0000-0000-4000-8000-000000000001"]
    assert {p.parent_bus_id for p in d.partitions} == {"0000:0c:00.0"}
    assert [p.index for p in memory] == [0, 1, 2, 3]
    assert memory[0].memory_total_bytes.status is Status.UNSUPPORTED
    assert devices[1].partitions == [] and devices[1].pci.bus_id.value == "0000:1c:00.0"


def test_partition_mode_unsupported_on_older_gpus() -> None:
    g = mi300x(0)
    g.scalars[("amdsmi_get_gpu_compute_partition",)] = NotSupported("MI250")
    d = _devices(amdsmi_fixture([g]))[0]
    assert d.capabilities.compute_partition_mode.status is Status.UNSUPPORTED
    assert d.partitions == []


STATUS_CASES = [
    (C.NOT_SUPPORTED, Status.UNSUPPORTED), (C.NOT_YET_IMPLEMENTED, Status.UNSUPPORTED),
    (C.FAIL_LOAD_SYMBOL, Status.UNSUPPORTED), (C.NO_PERM, Status.NO_PERMISSION), (C.NOT_INIT, Status.ERROR),
    (C.DRIVER_NOT_LOADED, Status.ERROR), (C.NO_DATA, Status.NOT_APPLICABLE), (C.NOT_FOUND, Status.NOT_APPLICABLE),
    (C.RETRY, Status.ERROR), (C.BUSY, Status.ERROR), (C.TIMEOUT, Status.TIMEOUT), (C.INVAL, Status.ERROR),
    (7, Status.ERROR), (C.UNKNOWN_ERROR, Status.ERROR), ("AMDSMI_STATUS_NO_PERM", Status.NO_PERMISSION),
    ("parameter", Status.ERROR), ("exception", Status.ERROR),
]


@pytest.mark.parametrize(("code", "status"), STATUS_CASES, ids=[str(c) for c, _ in STATUS_CASES])
def test_every_status_code_becomes_the_right_reading(code: int | str, status: Status) -> None:
    fault = Fault("amdsmi_get_temp_metric", handle="h0", error={"code": code, "message": "bad argument"})
    d = _device(amdsmi_fixture(1), fault)
    r = d.health.temperature_hotspot_c
    assert (r.status, r.value, r.call, r.source) == (status, None, "amdsmi_get_temp_metric", "amdsmi")
    if isinstance(code, int):
        assert C.status_name(code) in (r.reason or "")
    # the rest of the device still reads
    assert d.memory.total_bytes.value == VRAM


@pytest.mark.parametrize(("fn", "field"), [
    ("amdsmi_get_gpu_asic_info", "name"), ("amdsmi_get_gpu_device_bdf", "pci.bus_id"),
    ("amdsmi_get_gpu_memory_total", "memory.total_bytes"), ("amdsmi_get_gpu_activity", "health.utilization_gpu_pct"),
    ("amdsmi_get_gpu_total_ecc_count", "health.ecc_corrected_volatile"),
    ("amdsmi_get_gpu_bad_page_info", "health.retired_pages_double_bit"),
    ("amdsmi_get_gpu_metrics_info", "health.throttle_reasons"), ("amdsmi_get_pcie_info", "health.pcie_current_width"),
])
def test_no_permission_on_any_call_is_a_reading(fn: str, field: str) -> None:
    d = _device(amdsmi_fixture(1), Fault(fn, error={"code": C.NO_PERM}))
    obj: Any = d
    for part in field.split("."):
        obj = getattr(obj, part)
    assert (obj.status, obj.reason) == (Status.NO_PERMISSION, "AMDSMI_STATUS_NO_PERM")


def test_fake_module_raises_amdsmis_own_exception_classes() -> None:
    with pytest.raises(fake_amdsmi.AmdSmiRetryException) as retry:
        fake_amdsmi.raise_recorded({"code": C.RETRY})
    assert retry.value.get_error_code() == 9 and isinstance(retry.value, fake_amdsmi.AmdSmiLibraryException)
    with pytest.raises(fake_amdsmi.AmdSmiTimeoutException):
        fake_amdsmi.raise_recorded({"code": "AMDSMI_STATUS_TIMEOUT"})
    with pytest.raises(fake_amdsmi.AmdSmiLibraryException) as lib:
        fake_amdsmi.raise_recorded({"code": 2})
    assert lib.value.get_error_info() == "AMDSMI_STATUS_NOT_SUPPORTED - Feature not supported"
    assert lib.value.get_error_info(detailed=False) == "AMDSMI_STATUS_NOT_SUPPORTED"
    assert str(lib.value) == "Error code:\n\t2 | AMDSMI_STATUS_NOT_SUPPORTED - Feature not supported"
    with pytest.raises(fake_amdsmi.AmdSmiParameterException) as param:
        fake_amdsmi.raise_recorded({"code": "parameter", "message": "Invalid parameter"})
    assert param.value.err_code is None and isinstance(param.value, fake_amdsmi.AmdSmiException)


@pytest.mark.parametrize(("code", "words"), [
    (C.DRIVER_NOT_LOADED, "modprobe amdgpu"), (C.NO_PERM, "render and video groups"),
    (C.NOT_INIT, "AMDSMI_STATUS_NOT_INIT"), (C.FAIL_LOAD_MODULE, "install ROCm"),
])
def test_init_failure_makes_the_backend_unavailable_with_a_reason(code: int, words: str) -> None:
    fx = amdsmi_fixture(1)
    fx.backends["amdsmi"].calls[0] = {"fn": "amdsmi_init", "args": [2], "error": {"code": code}}
    with Machine([fx]) as m:
        report = {r.name: r for r in m.backend_reports()}["amdsmi"]
    assert report.available is False
    assert words in (report.reason or "")
    assert _devices(fx) == []


def test_a_hung_call_times_out_and_the_rest_still_reads() -> None:
    fault = Fault("amdsmi_get_gpu_activity", delay_s=2.0, times=1)
    d = _device(amdsmi_fixture(1), fault, call_timeout_s=0.2)
    assert d.health.utilization_gpu_pct.status is Status.TIMEOUT
    assert d.health.temperature_hotspot_c.value == 41.0


def test_poll_rereads_dynamic_values_and_keeps_static_ones() -> None:
    fx = amdsmi_fixture(1)
    calls = fx.backends["amdsmi"].calls
    temp = next(c for c in calls if c["fn"] == "amdsmi_get_temp_metric" and c["args"][1:] == [1, 0])
    calls.insert(calls.index(temp) + 1, dict(temp, result=77))
    with _machine(fx) as m:
        first = m.snapshot().devices[0]
        again = m.poll().devices[0]
        n = _tape(m).calls_made
        third = m.poll().devices[0]
        per_poll = _tape(m).calls_made - n
    assert (first.health.temperature_hotspot_c.value, again.health.temperature_hotspot_c.value) == (41.0, 77.0)
    assert third.name.value == "AMD Instinct MI300X"
    assert per_poll < 25  # static facts (asic, board, vbios, limits...) are not read again


def test_several_gpus_each_report() -> None:
    devices = _devices(amdsmi_fixture(4), backends=["amdsmi"])
    assert [d.pci.bus_id.value for d in devices] == ["0000:0c:00.0", "0000:1c:00.0", "0000:2c:00.0", "0000:3c:00.0"]
    assert [d.capabilities.numa_node.value for d in devices] == [0, 0, 0, 0]
    assert [d.index for d in devices] == [0, 1, 2, 3]


@pytest.mark.parametrize(("name", "model"), [
    ("mi100-rocm571", "mi100"), ("mi100-rocm602", "mi100"),
    ("rx6700xt-rocm571", "rx6700xt"), ("rx6700xt-rocm602", "rx6700xt"), ("rx6700xt-rocm612", "rx6700xt"),
])
def test_model_slugs_of_the_real_amd_fixtures(name: str, model: str) -> None:
    """What the catalog must make of what this backend reports (name, subsystem id, real VRAM)."""
    devices = _devices(FIXTURES / f"{name}.json")
    assert {d.model.value for d in devices} == {model}


def test_navi22_is_told_apart_by_subsystem_and_memory_not_the_device_id() -> None:
    """A 10 GiB Navi 22 behind the same device id and pci.ids name is not reported as the 12 GiB RX 6700 XT."""
    fx = load(FIXTURES / "rx6700xt-rocm571.json")
    for c in fx.backends["amdsmi"].calls:
        if c["fn"] == "amdsmi_get_gpu_memory_total" and c["args"][1] == 0:
            c["result"] = 10 * GIB
    model = _devices(fx)[0].model
    assert model.value == "rx6700"


@pytest.mark.parametrize(("market_name", "model"), [
    ("Vega 20 [Radeon Pro VII/Radeon Instinct MI50 32GB]", "mi50"), ("AMD Instinct MI60", "mi60"),
])
def test_one_device_id_two_products_told_apart_by_what_amdsmi_reports(market_name: str, model: str) -> None:
    """1002:66a1 is an MI50 or an MI60: the backend's market name and real VRAM let the catalog decide."""
    g = mi300x(0, vram=32 * GIB)
    g.dicts[("amdsmi_get_gpu_asic_info",)].update(market_name=market_name, device_id="0x66a1",
                                                  target_graphics_version="gfx906")
    assert _devices(amdsmi_fixture([g]))[0].model.value == model


@pytest.mark.parametrize("timeout", [None, 5.0], ids=["direct-calls", "calls-with-a-timeout"])
@pytest.mark.parametrize("code", [C.RETRY, C.BUSY])
def test_a_busy_device_is_asked_once_more(code: int, timeout: float | None) -> None:
    once = _device(amdsmi_fixture(1), Fault("amdsmi_get_gpu_activity", error={"code": code}, times=1),
                   call_timeout_s=timeout)
    assert once.health.utilization_gpu_pct.value == 7.0
    twice = _device(amdsmi_fixture(1), Fault("amdsmi_get_gpu_activity", error={"code": code}, times=2),
                    call_timeout_s=timeout)
    assert twice.health.utilization_gpu_pct.status is Status.ERROR
    assert "a later read may succeed" in (twice.health.utilization_gpu_pct.reason or "")


@pytest.mark.parametrize("timeout", [None, 5.0], ids=["direct-calls", "calls-with-a-timeout"])
def test_a_device_that_stays_busy_is_asked_exactly_twice(timeout: float | None) -> None:
    def calls_made(fault: Fault | None) -> int:
        with _machine(amdsmi_fixture(1), call_timeout_s=timeout) as m:
            if fault is not None:
                _tape(m).inject(fault)
            m.snapshot()
            return int(_tape(m).calls_made)

    busy = calls_made(Fault("amdsmi_get_gpu_activity", error={"code": C.BUSY}))
    assert busy == calls_made(None) + 1


def test_a_call_the_gpu_does_not_support_is_not_asked_again_until_the_session_closes() -> None:
    # the synthetic MI300X answers NOT_SUPPORTED for its fan and its memory temperature
    def calls(m: Machine, read: Any) -> tuple[int, int, Device]:
        by_fn = _tape(m).calls_by_fn
        fan, total = by_fn["amdsmi_get_gpu_fan_speed"], _tape(m).calls_made
        dev = read().devices[0]
        return by_fn["amdsmi_get_gpu_fan_speed"] - fan, _tape(m).calls_made - total, dev

    with _machine(amdsmi_fixture(1)) as m:
        asked, _, first = calls(m, m.snapshot)
        fan = first.health.fan_speed_pct
        assert asked == 1 and (fan.status, fan.reason) == (Status.UNSUPPORTED, "AMDSMI_STATUS_NOT_SUPPORTED")
        asked, per_poll, again = calls(m, m.poll)
        assert asked == 0 and again.health.fan_speed_pct == fan  # the same Reading: status, call and reason
        assert again.health.temperature_memory_c == first.health.temperature_memory_c
        assert per_poll == 12  # of 14 dynamic calls: fan speed and memory temperature are not asked again
        m.close()  # a new session asks again
        asked, _, _ = calls(m, m.snapshot)
        assert asked == 1


@pytest.mark.parametrize(("code", "times"), [(1, 1), (10, 1), (12, 1), (43, 1), (30, 2)])
def test_a_call_that_failed_otherwise_is_asked_again_on_the_next_poll(code: int, times: int) -> None:
    # invalid argument, no permission, I/O, unexpected data; busy twice (a busy call is asked once more)
    with _machine(amdsmi_fixture(1)) as m:
        _tape(m).inject(Fault("amdsmi_get_power_info", error={"code": code}, times=times))
        assert not m.snapshot().devices[0].health.power_draw_w.ok
        assert m.poll().devices[0].health.power_draw_w.ok


def test_values_amdsmi_gives_in_an_unusable_form_say_so() -> None:
    g = mi300x(0)
    asic = g.dicts[("amdsmi_get_gpu_asic_info",)]
    asic.update(target_graphics_version="weird", num_compute_units="lots", vendor_id=True, rev_id=1.0)
    g.scalars[("amdsmi_get_gpu_compute_partition",)] = "UNKNOWN"
    d = _devices(amdsmi_fixture([g]))[0]
    gfx, cus, vendor = d.capabilities.gfx_target, d.capabilities.compute_units, d.pci.vendor_id
    assert (gfx.status, gfx.reason) == (Status.UNSUPPORTED, "target_graphics_version: no usable gfx target ('weird')")
    assert d.architecture.status is Status.UNSUPPORTED  # derived from the gfx target, for the same reason
    assert cus.status is Status.ERROR and "num_compute_units: unexpected value 'lots'" in (cus.reason or "")
    assert vendor.status is Status.ERROR and "not a number: True" in (vendor.reason or "")
    assert d.pci.revision_id.value == "0x01"  # a float from an older release is still a number
    mode = d.capabilities.compute_partition_mode
    assert (mode.status, mode.reason) == (Status.UNSUPPORTED, "gpu_compute_partition: amdsmi gave no partition mode")


def test_a_gpu_without_xgmi_or_outside_a_hive_has_no_links_to_count() -> None:
    alone, no_hive, unlisted = mi300x(0), mi300x(1), mi300x(2)
    for g in (alone,):
        del g.dicts[("amdsmi_get_link_metrics",)], g.dicts[("amdsmi_get_xgmi_info",)]
        g.scalars[("amdsmi_get_link_metrics",)] = NotSupported("no xGMI")
        g.scalars[("amdsmi_get_xgmi_info",)] = NotSupported("no xGMI")
    no_hive.dicts[("amdsmi_get_xgmi_info",)]["xgmi_hive_id"] = 0
    del unlisted.dicts[("amdsmi_get_link_metrics",)]["links"]
    d0, d1, d2 = _devices(amdsmi_fixture([alone, no_hive, unlisted]))
    for r in (d0.capabilities.xgmi_links, d0.capabilities.xgmi_hive_id):
        assert r.status is Status.NOT_APPLICABLE and (r.reason or "").startswith("no xGMI on this device")
    assert (d1.capabilities.xgmi_hive_id.status, d1.capabilities.xgmi_hive_id.reason) == (
        Status.NOT_APPLICABLE, "not in an xGMI hive")
    assert d1.capabilities.xgmi_links.value == 7
    assert (d2.capabilities.xgmi_links.status, d2.capabilities.xgmi_links.reason) == (
        Status.NOT_RECORDED, "links not recorded")


@pytest.mark.parametrize(("status", "reasons"), [("THROTTLED", ["throttled"]), (" unthrottled ", []),
                                                 ("MAYBE", None)])
def test_throttle_status_as_text_of_some_releases(status: str, reasons: list[str] | None) -> None:
    g = mi300x(0)
    g.dicts[("amdsmi_get_gpu_metrics_info",)] = {"throttle_status": status, "indep_throttle_status": "N/A"}
    r = _devices(amdsmi_fixture([g]))[0].health.throttle_reasons
    if reasons is None:
        assert (r.status, r.reason) == (Status.ERROR, "unexpected throttle_status 'MAYBE'")
    else:
        assert r.value == reasons

"""Reading invariants and the data model's JSON round trip."""

from __future__ import annotations

import json

import pytest
from synthetic import nvml_fixture

import gpuabst
from gpuabst.errors import GpuabstError
from gpuabst.reading import Reading, Status, missing, ok
from gpuabst.serialize import from_dict, to_dict


def test_ok_reading_needs_a_value_and_missing_one_must_not_have_one() -> None:
    with pytest.raises(ValueError):
        Reading(None, Status.OK)
    with pytest.raises(ValueError):
        Reading(3, Status.UNSUPPORTED)
    with pytest.raises(ValueError):
        missing(Status.OK)


def test_missing_reading_says_why_and_where() -> None:
    r = missing(Status.NO_PERMISSION, "nvml", "nvmlDeviceGetSerial", "NVML_ERROR_NO_PERMISSION")
    assert not r.ok and r.get("fallback") == "fallback"
    assert r.meta() == {"status": "no_permission", "source": "nvml", "call": "nvmlDeviceGetSerial",
                        "reason": "NVML_ERROR_NO_PERMISSION"}
    assert r.map(lambda v: v * 2) is r
    assert str(r) == "<no_permission: NVML_ERROR_NO_PERMISSION>"


def test_map_keeps_source_and_call() -> None:
    r = ok(81920, "nvml", "nvmlDeviceGetMemoryInfo").map(lambda mib: mib * 2**20)
    assert r == Reading(81920 * 2**20, Status.OK, "nvml", "nvmlDeviceGetMemoryInfo")


def test_frozen() -> None:
    r = ok(1)
    with pytest.raises(AttributeError):
        r.value = 2  # type: ignore[misc]


def test_ok_without_a_value_and_a_status_given_as_text() -> None:
    with pytest.raises(ValueError):
        ok(None)
    assert Reading(None, "unsupported").status is Status.UNSUPPORTED
    assert missing("timeout").status is Status.TIMEOUT  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        missing("ok")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Reading(None, "no such status")


def test_a_reading_equals_only_readings() -> None:
    r = ok(5, "nvml", "nvmlDeviceGetFanSpeed")
    assert r == Reading(5, Status.OK, "nvml", "nvmlDeviceGetFanSpeed")
    assert r != (5, Status.OK, "nvml", "nvmlDeviceGetFanSpeed", None)
    assert r != ok(5, "amdsmi", "nvmlDeviceGetFanSpeed")
    assert hash(r) == hash(Reading(5, Status.OK, "nvml", "nvmlDeviceGetFanSpeed"))
    assert len({r, Reading(5, Status.OK, "nvml", "nvmlDeviceGetFanSpeed")}) == 1


def test_replace_checks_the_result_like_a_new_reading() -> None:
    r = missing(Status.UNSUPPORTED, "pci", "read_attr", "absent")
    assert r.replace(call="read_attr:vendor") == missing(Status.UNSUPPORTED, "pci", "read_attr:vendor", "absent")
    with pytest.raises(ValueError):
        r.replace(status=Status.OK)


def test_pickle_copy_and_repr_keep_every_field() -> None:
    import copy
    import pickle

    r = missing(Status.NO_PERMISSION, "nvml", "nvmlDeviceGetSerial", "NVML_ERROR_NO_PERMISSION")
    for again in (pickle.loads(pickle.dumps(r)), copy.copy(r), copy.deepcopy(r)):
        assert again == r and type(again) is Reading
    assert repr(r) == ("Reading(value=None, status=<Status.NO_PERMISSION: 'no_permission'>, source='nvml', "
                       "call='nvmlDeviceGetSerial', reason='NVML_ERROR_NO_PERMISSION')")


def test_snapshot_round_trips_through_json() -> None:
    snap = gpuabst.snapshot([nvml_fixture(2, mig=True)])
    text = json.dumps(to_dict(snap))
    back = from_dict(gpuabst.Snapshot, json.loads(text))
    assert back == snap
    assert back.devices[0].partitions[1].profile.value == "3g.40gb"


def test_json_gives_plain_values_with_reasons_beside() -> None:
    doc = to_dict(gpuabst.snapshot([nvml_fixture(1)]).devices[0])
    assert doc["memory"]["total_bytes"] == 80 * 2**30
    assert doc["health"]["fan_speed_pct"] is None
    assert doc["health"]["readings"]["fan_speed_pct"] == {
        "status": "unsupported", "source": "nvml", "call": "nvmlDeviceGetFanSpeed",
        "reason": "NVML_ERROR_NOT_SUPPORTED"}


@pytest.mark.parametrize("bad", [
    {"vendor": "nvidia", "index": 0, "memory": []},
    {"vendor": "nvidia", "index": 0, "memory": {"total_bytes": None, "readings": {"total_bytes": {"status": "ok"}}}},
    {"vendor": "nvidia", "index": 0, "name": "x", "readings": {"name": {"status": "bogus"}}},
    {"vendor": "nvidia", "index": 0, "readings": []},
    {"vendor": "nvidia", "index": 0, "partitions": {}},
    {"index": 0},
])
def test_malformed_model_json_is_a_clear_error(bad: dict[str, object]) -> None:
    with pytest.raises(GpuabstError):
        from_dict(gpuabst.Device, bad)


def test_replace_copies_every_field_but_the_changed_ones() -> None:
    import attrs

    from gpuabst.model import BackendReport, Device, HealthReadings, replace

    d = Device(vendor="nvidia", index=3, name=ok("NVIDIA H100", "nvml", "nvmlDeviceGetName"), sources=["nvml"],
               health=HealthReadings(temperature_c=ok(41.0, "nvml", "nvmlDeviceGetTemperatureV")))
    changed = replace(d, index=0, model=ok("h100", "catalog", "catalog:10de:2330"))
    assert changed == attrs.evolve(d, index=0, model=ok("h100", "catalog", "catalog:10de:2330"))
    assert (changed.index, d.index) == (0, 3) and changed.health is d.health
    assert replace(BackendReport("nvml", False), available=True) == BackendReport("nvml", True)
    with pytest.raises(TypeError, match="no field 'modle'"):
        replace(d, modle=ok("h100"))



def test_taken_at_is_the_second_of_the_read_in_utc_as_datetime_writes_it() -> None:
    import datetime

    from gpuabst.machine import taken_at

    before = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    stamp = taken_at()
    after = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    when = datetime.datetime.fromisoformat(stamp)
    assert before <= when <= after
    assert stamp == when.isoformat(timespec="seconds") and stamp.endswith("+00:00")
    snap = gpuabst.snapshot([nvml_fixture(1)])
    assert snap.taken_at is not None and before <= datetime.datetime.fromisoformat(snap.taken_at)

"""The fixture loader: valid files load; broken, truncated and hostile ones give one clear error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import FIXTURES
from synthetic import nvml_fixture

from gpuabst.errors import FixtureError
from gpuabst.fixtures import format as fmt


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "f.json"
    p.write_text(text)
    return p


def test_round_trip(tmp_path: Path) -> None:
    fx = nvml_fixture(2)
    fmt.save(fx, tmp_path / "a.json")
    back = fmt.load(tmp_path / "a.json")
    assert back.backends == fx.backends and back.provenance == fx.provenance
    assert back.path == str(tmp_path / "a.json")


GOOD = fmt.dumps(nvml_fixture(1))


@pytest.mark.parametrize(("text", "message"), [
    (GOOD[: len(GOOD) // 2], "truncated"),
    ("", "not valid JSON"),
    ("[]", "a fixture is a JSON object"),
    ('{"format": "something-else", "version": 1}', "not a gpuabst fixture"),
    (GOOD.replace('"version": 1', '"version": 99'), "newer than this gpuabst reads"),
    (GOOD.replace('"version": 1', '"version": "1"'), "version must be an integer"),
    (GOOD.replace('"kind": "synthetic"', '"kind": "invented"'), "provenance.kind"),
    (GOOD.replace('"fn": "nvmlDeviceGetCount"', '"fn": 7'), "fn must be a function name"),
    (GOOD.replace('"result": null', '"result": null, "error": {"code": 3}', 1), "exactly one of result or error"),
    ('{"format": "gpuabst-fixture", "version": 1, "provenance": {"kind": "capture"}, "backends": {}}',
     "non-empty"),
    ("[" * 100000 + "]" * 100000, "JSON cannot be read"),
])
def test_bad_fixture_is_one_clear_error(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(FixtureError) as e:
        fmt.load(_write(tmp_path, text))
    assert message in str(e.value)
    assert "f.json" in str(e.value)


def test_gigantic_number_is_a_clear_error(tmp_path: Path) -> None:
    text = GOOD.replace('"result": null', '"result": ' + "9" * 100000, 1)
    with pytest.raises(FixtureError):
        fmt.load(_write(tmp_path, text))


def test_oversized_file_is_refused_before_reading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fmt, "MAX_FIXTURE_BYTES", 100)
    with pytest.raises(FixtureError, match=r"larger than 9\.53674e-05 MiB; not a gpuabst fixture"):
        fmt.load(_write(tmp_path, GOOD))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FixtureError, match=r"nope\.json: cannot read: No such file"):
        fmt.load(tmp_path / "nope.json")


def test_a_fifo_a_device_and_a_directory_are_refused_without_reading(tmp_path: Path) -> None:
    import os

    os.mkfifo(tmp_path / "pipe")
    for path in (tmp_path / "pipe", Path("/dev/zero"), tmp_path):
        if path.exists():
            with pytest.raises(FixtureError, match="not a regular file; save a gpuabst fixture to a file"):
                fmt.load(path)


def test_not_utf8(tmp_path: Path) -> None:
    p = tmp_path / "f.json"
    p.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(FixtureError):
        fmt.load(p)


def test_wrong_types_inside_a_call_are_rejected() -> None:
    data = json.loads(GOOD)
    data["backends"]["nvml"]["calls"][0]["latency_us"] = -5
    with pytest.raises(FixtureError, match="latency_us"):
        fmt.from_json(data)


def test_a_replayed_structure_reads_like_the_real_one_and_stays_read_only() -> None:
    import copy
    import pickle

    from gpuabst.fixtures.codec import Codec, MissingField, Struct

    mem = Codec().decode({"$struct": "nvmlMemory_t", "total": 5, "used": 2})
    assert isinstance(mem, Struct) and (mem.total, mem.used) == (5, 2)
    with pytest.raises(MissingField, match="recorded nvmlMemory_t has no field 'free'"):
        _ = mem.free
    assert getattr(mem, "reserved", None) is None  # a missing field is an AttributeError, as hasattr expects
    with pytest.raises(AttributeError, match="read-only"):
        mem.total = 3
    with pytest.raises(AttributeError, match="read-only"):
        del mem.total
    for again in (copy.copy(mem), copy.deepcopy(mem), pickle.loads(pickle.dumps(mem))):
        assert again._fields == {"total": 5, "used": 2} and repr(again) == "nvmlMemory_t({'total': 5, 'used': 2})"
    assert Codec().encode(mem) == {"$struct": "nvmlMemory_t", "total": 5, "used": 2}


def test_recorded_latency_is_waited_out_when_asked_for() -> None:
    """Replaying with replay_latency waits each call's recorded latency (short ones spun, since a sleep
    overshoots them), so a replay costs at least what the calls cost on the machine recorded."""
    import time

    from gpuabst.fixtures.tape import wait
    from gpuabst.machine import Machine

    for seconds in (0.0, 0.0002, 0.003):
        t0 = time.perf_counter()
        wait(seconds)
        assert time.perf_counter() - t0 >= seconds
    fixture = FIXTURES / "nvidia" / "h200-nvml-idle.json"
    calls = fmt.load(fixture).backends["nvml"].calls
    before_poll = sum(c["latency_us"] for c in calls if c["fn"] != "nvmlShutdown") / 1e6
    with Machine([fixture], backends=["nvml"], replay_latency=True) as m:
        t0 = time.perf_counter()
        m.snapshot()
        m.poll()
        took = time.perf_counter() - t0
    assert took >= before_poll > 0.03  # every call but the shutdown is made by a snapshot and a poll

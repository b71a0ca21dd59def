"""Capture: every vendor call recorded through the real backend code, scrubbed, and replayed back.

The "hardware" here is a stand-in ``pynvml`` module placed in ``sys.modules`` (the vendor-library
boundary), answering from a synthetic fixture; everything above it is the real capture path.
"""

from __future__ import annotations

import ctypes
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from gpuabst_nvml.backend import NvmlBackend
from gpuabst_nvml.binding import NvmlCodec
from synthetic import nvml_fixture, synthetic_uuid

import gpuabst
from gpuabst.backend import ReplayLibrary
from gpuabst.fixtures import format as fmt
from gpuabst.fixtures.codec import Struct
from gpuabst.machine import Machine
from gpuabst.serialize import to_dict


@pytest.fixture
def standin_pynvml(monkeypatch: pytest.MonkeyPatch) -> Any:
    """A pynvml module answering like a 2-GPU MIG machine, installed where ``import pynvml`` finds it."""
    source = nvml_fixture(2, mig=True)
    lib = ReplayLibrary({"nvml": (source.backends["nvml"], "standin")})
    module = lib.module(NvmlBackend())
    monkeypatch.setitem(sys.modules, "pynvml", module)
    return source


def _without(doc: Any, keys: set[str]) -> Any:
    if isinstance(doc, dict):
        return {k: _without(v, keys) for k, v in doc.items() if k not in keys}
    if isinstance(doc, list):
        return [_without(v, keys) for v in doc]
    return doc


def test_capture_records_every_call_and_replays_to_the_same_devices(standin_pynvml: Any, tmp_path: Path) -> None:
    with Machine([], backends=["nvml"], capture=True) as m:
        fixture = m.capture()
    fmt.save(fixture, tmp_path / "cap.json")
    loaded = fmt.load(tmp_path / "cap.json")
    assert loaded.provenance["kind"] == "capture" and loaded.provenance["scrubbed"] is True
    rec = loaded.backends["nvml"]
    fns = {c["fn"] for c in rec.calls}
    assert {"nvmlInit", "nvmlDeviceGetCount", "nvmlDeviceGetMigDeviceHandleByIndex",
            "nvmlDeviceGetTotalEccErrors", "nvmlShutdown"} <= fns
    assert all("latency_us" in c for c in rec.calls)
    assert any(c.get("error", {}).get("name") == "NVML_ERROR_NOT_SUPPORTED" for c in rec.calls)
    original = gpuabst.snapshot([standin_pynvml], backends=["nvml"])
    replayed = gpuabst.snapshot([loaded], backends=["nvml"])
    scrubbed_fields = {"uuid", "serial", "readings", "taken_at", "replayed_from"}
    assert _without(to_dict(replayed), scrubbed_fields) == _without(to_dict(original), scrubbed_fields)
    assert replayed.devices[0].memory.total_bytes.value == 80 * 2**30


def test_capture_scrubs_serials_uuids_and_host(standin_pynvml: Any) -> None:
    with Machine([], backends=["nvml"], capture=True) as m:
        fixture = m.capture()
    text = fmt.dumps(fixture)
    for real in ("1650000000001", synthetic_uuid("GPU", 0), synthetic_uuid("MIG", 0), "7e57da7a"):
        assert real not in text
    import platform
    assert platform.node() not in json.dumps(fixture.provenance)
    devs = gpuabst.devices([fixture])
    # stable pseudonyms: distinct devices stay distinct, the same value maps the same everywhere
    assert devs[0].uuid.value != devs[1].uuid.value
    assert str(devs[0].uuid.value).startswith("GPU-") and str(devs[0].partitions[0].uuid.value).startswith("MIG-")
    assert str(devs[0].serial.value).startswith("SCRUBBED-SERIAL-")


def test_capture_without_scrubbing_keeps_identifiers(standin_pynvml: Any) -> None:
    with Machine([], backends=["nvml"], capture=True) as m:
        fixture = m.capture(scrub=False)
    assert "1650000000001" in fmt.dumps(fixture)


def test_capture_command_writes_a_fixture(standin_pynvml: Any, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    from gpuabst.cli.main import main

    out = tmp_path / "c.json"
    assert main(["capture", "-o", str(out), "--backend", "nvml", "--note", "test run"]) == 0
    assert "(scrubbed)" in capsys.readouterr().out
    fx = fmt.load(out)
    assert fx.provenance["note"] == "test run"
    assert len(gpuabst.devices([out])) == 2


def test_capture_refuses_to_run_over_a_fixture(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    from gpuabst.cli.main import main

    monkeypatch.setenv("GPUABST_FIXTURE", str(tmp_path / "x.json"))
    assert main(["capture", "-o", str(tmp_path / "o.json")]) == 2
    assert "unset it first" in capsys.readouterr().err


def test_capture_with_no_working_backend_is_an_error(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "gpuabst", "capture", "--backend", "nvml", "-o", str(tmp_path / "o.json")]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    assert r.stderr.startswith("gpuabst: error: no backend could run here") and "Traceback" not in r.stderr
    assert not (tmp_path / "o.json").exists()


pynvml = pytest.importorskip("pynvml", reason="nvidia-ml-py is part of the test extra")


def test_codec_encodes_real_pynvml_values() -> None:
    codec = NvmlCodec()
    h1 = ctypes.cast(ctypes.c_void_p(0x1000), pynvml.c_nvmlDevice_t)
    h2 = ctypes.cast(ctypes.c_void_p(0x2000), pynvml.c_nvmlDevice_t)
    assert codec.encode(h1) == {"$handle": "h0"}
    assert codec.encode(h2) == {"$handle": "h1"}
    assert codec.encode(ctypes.cast(ctypes.c_void_p(0x1000), pynvml.c_nvmlDevice_t)) == {"$handle": "h0"}
    mem = pynvml.c_nvmlMemory_t()
    mem.total, mem.free, mem.used = 100, 60, 40
    enc = codec.encode(mem)
    assert enc == {"$struct": "c_nvmlMemory_t", "total": 100, "free": 60, "used": 40}
    back = codec.decode(enc)
    assert isinstance(back, Struct) and (back.total, back.used) == (100, 40)
    pci = pynvml.nvmlPciInfo_t()
    pci.busId = b"00000000:3B:00.0"
    pci.pciDeviceId = 0x233010DE
    assert codec.encode(pci)["busId"] == "00000000:3B:00.0"
    err = pynvml.NVMLError(pynvml.NVML_ERROR_GPU_IS_LOST)
    assert codec.encode_error(err) == {"code": 15, "name": "NVML_ERROR_GPU_IS_LOST"}


def test_codec_encodes_ctypes_arrays_raw_char_fields_and_friendly_objects() -> None:
    """What older nvidia-ml-py releases hand back: char fields as bytes, ctypes arrays, and the
    ``nvmlFriendlyObject`` some calls return (a capture must still encode them)."""
    codec = NvmlCodec()

    class Legacy(ctypes.Structure):
        _fields_ = [("busId", ctypes.c_char * 16), ("clocks", ctypes.c_uint * 3)]

    legacy = Legacy()
    legacy.busId = b"0000:3b:00.0"
    legacy.clocks[:] = [1980, 1980, 2619]
    assert codec.encode(legacy) == {"$struct": "Legacy", "busId": "0000:3b:00.0", "clocks": [1980, 1980, 2619]}
    friendly = pynvml.nvmlStructToFriendlyObject(legacy)
    assert codec.encode(friendly) == {"$struct": "nvmlFriendlyObject", "busId": "0000:3b:00.0",
                                      "clocks": [1980, 1980, 2619]}
    assert codec.decode(codec.encode(friendly)).clocks == [1980, 1980, 2619]


def test_fake_error_classes_match_the_real_ones() -> None:
    from gpuabst_nvml import constants, fake_pynvml

    for code, _ in sorted(constants.ERROR_NAMES.items()):
        real = pynvml.NVMLError(code)
        fake = fake_pynvml.NVMLError(code)
        assert type(real).__name__ == type(fake).__name__
        assert real.value == fake.value
        assert isinstance(fake, fake_pynvml.NVMLError) and str(fake)


def test_capturing_and_replaying_are_kept_apart_in_the_library_api() -> None:
    """The command line refuses these before building a Machine; the library says the same itself."""
    from gpuabst.errors import BackendError

    with pytest.raises(BackendError, match="cannot capture while replaying fixtures"):
        Machine([nvml_fixture(1)], backends=["nvml"], capture=True)
    with Machine([nvml_fixture(1)], backends=["nvml"]) as m, \
            pytest.raises(BackendError, match="this Machine was not opened with capture=True"):
        m.capture()


def test_closing_a_machine_never_raises_over_a_backend_whose_close_hook_fails(standin_pynvml: Any) -> None:
    """A plugin's ``_close`` that raises (here the NVML backend's, replaced as a plugin's bug would be)."""
    with Machine([], backends=["nvml"]) as m:
        assert len(m.devices()) == 2

        def broken_close() -> None:
            raise RuntimeError("the driver went away")

        m.backend("nvml")._close = broken_close  # type: ignore[method-assign]
    m.close()  # again: still quiet
    assert len(m.devices()) == 2  # and the backend opens again on the next read


def test_a_note_that_is_not_utf8_is_saved_with_replacement_characters(standin_pynvml: Any, tmp_path: Path) -> None:
    from gpuabst.cli.main import main

    out = tmp_path / "c.json"
    note = b"rack 4 \xff\xfe".decode("utf-8", "surrogateescape")  # as Python gives an argument that is not UTF-8
    assert main(["capture", "-o", str(out), "--backend", "nvml", "--note", note]) == 0
    assert fmt.load(out).provenance["note"] == "rack 4 \ufffd\ufffd"

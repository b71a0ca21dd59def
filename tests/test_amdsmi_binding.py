"""The amdsmi binding: a silent import when libamd_smi.so is missing, the codec, and capture then replay."""

from __future__ import annotations

import ctypes
import importlib.util
import json
import os
import subprocess
import sys
from typing import Any

import pytest
from amdsmi_synthetic import amdsmi_fixture, mi300x
from gpuabst_amdsmi import binding, fake_amdsmi
from gpuabst_amdsmi import constants as C
from gpuabst_amdsmi.backend import AmdSmiBackend

from gpuabst.errors import BackendUnavailable
from gpuabst.fixtures.codec import Handle
from gpuabst.fixtures.format import Fixture, dumps
from gpuabst.fixtures.tape import Tape
from gpuabst.machine import Machine
from gpuabst.serialize import to_dict

LIB_PRESENT = any(os.path.exists(os.path.join(d, "libamd_smi.so"))
                  for d in (os.environ.get("ROCM_PATH", "/opt/rocm") + "/lib", "/opt/rocm/lib"))
PACKAGE_PRESENT = importlib.util.find_spec("amdsmi") is not None


def test_import_is_silent_and_says_what_is_missing(capfd: pytest.CaptureFixture[str]) -> None:
    binding.forget_import()
    try:
        if LIB_PRESENT and PACKAGE_PRESENT:  # a ROCm machine: the import works, and still prints nothing
            assert binding.import_amdsmi() is not None
        else:
            with pytest.raises(BackendUnavailable) as e:
                binding.import_amdsmi()
            if PACKAGE_PRESENT:  # amdsmi's own import prints and raises KeyError here: we say it plainly
                assert str(e.value).startswith("AMD SMI library not found (libamd_smi.so")
            else:
                assert str(e.value) == "the amdsmi Python package is not installed"
            with pytest.raises(BackendUnavailable):  # remembered: no second attempt, no second print
                binding.import_amdsmi()
    finally:
        binding.forget_import()
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")


def test_cli_backends_and_list_stay_clean_with_amdsmi_installed_but_no_library() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GPUABST_")}
    gpuabst_cli = os.path.join(os.path.dirname(sys.executable), "gpuabst")
    for cmd in (["backends"], ["list"], ["backends", "--json"]):
        r = subprocess.run([gpuabst_cli, *cmd], capture_output=True, text=True, env=env, timeout=120)
        assert r.returncode == 0, r.stderr
        assert "Unable to find libamd_smi.so" not in r.stdout + r.stderr
        assert "Traceback" not in r.stdout + r.stderr
        if cmd == ["backends", "--json"]:
            doc = json.loads(r.stdout)  # nothing printed around the JSON document
            assert any(b["name"] == "amdsmi" for b in doc["backends"])
    r = subprocess.run([gpuabst_cli, "backends"], capture_output=True, text=True, env=env, timeout=120)
    line = next(x for x in r.stdout.splitlines() if x.startswith("amdsmi"))
    if not PACKAGE_PRESENT:
        assert "the amdsmi Python package is not installed" in line
        assert "gpuabst[amd]" in r.stdout  # what to install
    elif not LIB_PRESENT:
        assert "AMD SMI library not found" in line
        assert "amd-smi-lib" in r.stdout  # what to install


def test_codec_encodes_processor_handles_enums_and_errors() -> None:
    codec = binding.AmdSmiCodec()
    a, b = ctypes.c_void_p(0x5000), ctypes.c_void_p(0x6000)
    assert codec.encode([a, b, ctypes.c_void_p(0x5000)]) == [{"$handle": "h0"}, {"$handle": "h1"}, {"$handle": "h0"}]
    assert codec.encode(C.AmdSmiTemperatureType.HOTSPOT) == 1
    assert type(codec.encode(C.AmdSmiMemoryType.GTT)) is int
    assert codec.encode({"pcie_static": {"max_pcie_width": 16}, "x": "N/A"}) == {
        "pcie_static": {"max_pcie_width": 16}, "x": "N/A"}
    assert codec.encode_error(fake_amdsmi.AmdSmiLibraryException(10)) == {"code": 10, "name": "AMDSMI_STATUS_NO_PERM"}
    assert (codec.encode_error(fake_amdsmi.AmdSmiParameterException(1, str)) or {})["code"] == "parameter"
    assert codec.encode_error(ValueError("x")) is None


def test_classify_knows_amdsmi_exceptions_only() -> None:
    assert binding.classify(ValueError("x")) is None
    info = binding.classify(fake_amdsmi.AmdSmiTimeoutException())
    assert info is not None and info.status.value == "timeout"
    missing_fn = binding.classify(AttributeError("module 'amdsmi' has no attribute 'amdsmi_get_gpu_kfd_info'"))
    assert missing_fn is not None and missing_fn.function_missing


class LiveLikeAmdSmi:
    """Stands where the real ``amdsmi`` module would: answers like it, with ctypes ``c_void_p`` handles
    and its IntEnum arguments, from a synthetic recording (so capture runs with no GPU)."""

    def __init__(self, fx: Fixture) -> None:
        self._fake = fake_amdsmi.make(Tape(fx.backends["amdsmi"], binding.AmdSmiCodec(), fake_amdsmi.raise_recorded))
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._fake, name)
        if not name.startswith("amdsmi_"):
            return attr

        def call(*args: Any) -> Any:
            self.calls += 1
            for a in args:
                assert not isinstance(a, Handle), "the backend must pass the library's own handles back"
            plain = [Handle(f"h{(a.value or 0) - 0x1000}") if isinstance(a, ctypes.c_void_p) else a for a in args]
            result = attr(*plain)
            if name == "amdsmi_get_processor_handles":
                return [ctypes.c_void_p(0x1000 + int(h.token[1:])) for h in result]
            return result
        return call


def test_capture_records_handles_as_tokens_scrubs_serials_and_replays_the_same(
        monkeypatch: pytest.MonkeyPatch) -> None:
    gpus = [mi300x(0), mi300x(1)]
    for i, g in enumerate(gpus):
        g.dicts[("amdsmi_get_gpu_board_info",)]["product_serial"] = f"PCB0{i}9876543210"
        g.dicts[("amdsmi_get_gpu_asic_info",)]["asic_serial"] = f"0x{0x1A2B3C4D5E6F7000 + i:016X}"
        g.scalars[("amdsmi_get_gpu_device_uuid",)] = f"d7ff74a1-0000-1000-80a1-8c3e{i:08x}"
    live = LiveLikeAmdSmi(amdsmi_fixture(gpus))
    monkeypatch.setattr(AmdSmiBackend, "import_library", classmethod(lambda cls: live))
    with Machine([], backends=["amdsmi"]) as m:
        live_devices = to_dict(m.snapshot().devices)
    live.calls = 0
    m = Machine([], backends=["amdsmi"], capture=True)
    fx = m.capture()
    text = dumps(fx)
    assert live.calls > 50
    for secret in ("PCB009876543210", "0x1A2B3C4D5E6F7000", "d7ff74a1-0000-1000-80a1-8c3e00000000"):
        assert secret not in text
    calls = fx.backends["amdsmi"].calls
    assert calls[0]["fn"] == "amdsmi_init" and calls[0]["args"] == [2]
    handles = next(c for c in calls if c["fn"] == "amdsmi_get_processor_handles")["result"]
    assert handles == [{"$handle": "h0"}, {"$handle": "h1"}]
    temp = next(c for c in calls if c["fn"] == "amdsmi_get_temp_metric")
    assert temp["args"][0] == {"$handle": "h0"} and all(type(a) is int for a in temp["args"][1:])
    replayed = to_dict(Machine([fx], backends=["amdsmi"]).snapshot().devices)
    for live_d, rep_d in zip(live_devices, replayed, strict=True):
        for key in ("name", "pci", "memory", "capabilities"):
            assert rep_d[key] == live_d[key]
        assert rep_d["serial"].startswith("SCRUBBED-SERIAL-") and rep_d["serial"] != live_d["serial"]
        assert rep_d["uuid"] != live_d["uuid"]

"""Fault injection by replay (issue 8, reliability 1): every vendor error code of every backend, at
every vendor call site its fixtures record. The snapshot always completes; the readings that came
from the failed call carry the status and reason the backend gives that code; the other devices are
untouched; another backend replayed beside it is untouched.

Call sites come from fixtures that record every call the backend makes on a device (the synthetic
NVML machine covers MIG too); the fault targets one device by the call's first argument (its handle,
or for sysfs its bus id), or the whole backend for calls without arguments.
"""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Any

import attrs
import pytest
from gpuabst_amdsmi import constants as AMD
from gpuabst_nvml import constants as NVML
from gpuabst_opencl import constants as OCL
from synthetic import nvml_fixture

from gpuabst.backend import Backend, ErrorInfo
from gpuabst.fixtures import format as fmt
from gpuabst.fixtures.format import Fixture
from gpuabst.fixtures.tape import Fault
from gpuabst.machine import Machine
from gpuabst.reading import Reading, Status
from gpuabst.registry import discover
from gpuabst.serialize import to_dict

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
PCI_ERRNOS = [errno.ENOENT, errno.EACCES, errno.EPERM, errno.EIO, errno.ENODEV, errno.EINVAL, errno.EBUSY,
              errno.ENXIO, errno.ETIMEDOUT]

SUBJECTS: dict[str, tuple[Fixture, list[int]]] = {
    "nvml": (nvml_fixture(2, mig=True), sorted(NVML.ERROR_NAMES)),
    "amdsmi": (fmt.load(FIXTURES / "amd/mi100-rocm602.json"), sorted(AMD.STATUS_NAMES)),
    "opencl": (fmt.load(FIXTURES / "opencl/clinfo-intel-hd-i5-4590.json"), sorted(c for c in OCL.ERROR_NAMES if c)),
    "pci": (fmt.load(FIXTURES / "pci/h100-mi300x-aspeed.json"), PCI_ERRNOS),
}
ENUMERATION = {"nvmlInit", "nvmlDeviceGetCount", "amdsmi_init", "amdsmi_get_processor_handles", "platforms",
               "platform_devices", "list_devices"}
"""Calls that list devices: failing them may take the whole backend (or a platform) down, with a reason."""
PLATFORM_LEVEL = {"platform_info", "platform_devices"}
DEVICE_ARG = {"nvml": 0, "amdsmi": 0, "opencl": 0, "pci": 1}
"""Which argument of a backend's vendor calls names the device (sysfs calls take the root first)."""


def _backend(name: str) -> type[Backend]:
    (entry,) = [e for e in discover([name])]
    assert entry.backend_class is not None, entry.error
    return entry.backend_class


def _expected(cls: type[Backend], code: int) -> ErrorInfo:
    try:
        cls.raise_recorded_error({"code": code})
    except Exception as e:
        info = cls.classify_error(e)
        return info if info is not None else ErrorInfo(Status.ERROR, f"{type(e).__name__}: {e}")
    raise AssertionError("raise_recorded_error did not raise")


def _cases() -> list[tuple[str, str, Any, int]]:
    cases = []
    for name, (fixture, codes) in SUBJECTS.items():
        first_args: dict[str, Any] = {}
        i = DEVICE_ARG[name]
        for call in fixture.backends[name].calls:
            args = call.get("args") or []
            first_args.setdefault(call["fn"], args[i] if len(args) > i else None)
        for fn, arg0 in sorted(first_args.items(), key=lambda kv: kv[0]):
            for code in codes:
                cases.append((name, fn, arg0, code))
    return cases


CASES = _cases()


def _readings(obj: Any, path: str = "") -> dict[str, Reading[Any]]:
    out: dict[str, Reading[Any]] = {}
    if attrs.has(type(obj)):
        for f in attrs.fields(type(obj)):
            v = getattr(obj, f.name)
            if isinstance(v, Reading):
                out[path + f.name] = v
            elif isinstance(v, list):
                for i, item in enumerate(v):
                    out.update(_readings(item, f"{path}{f.name}[{i}]."))
            else:
                out.update(_readings(v, f"{path}{f.name}."))
    return out


_BASELINES: dict[str, Any] = {}


def _snapshot(name: str, fault: Fault | None) -> Any:
    fixture, _ = SUBJECTS[name]
    with Machine([fixture], backends=[name]) as m:
        m.backend_reports()
        if fault is not None:
            m.library.tapes[name].inject(fault)  # type: ignore[attr-defined]
        return m.snapshot()


@pytest.mark.parametrize(("backend", "fn", "arg0", "code"), CASES,
                         ids=[f"{b}-{fn}-{code}" for b, fn, _, code in CASES])
def test_fault_at_call_site(backend: str, fn: str, arg0: Any, code: int) -> None:
    if backend not in _BASELINES:
        _BASELINES[backend] = _snapshot(backend, None)
    base = _BASELINES[backend]
    match = (DEVICE_ARG[backend], arg0) if arg0 is not None else None
    fault = Fault(fn, error={"code": code}, match_arg=match)
    snap = _snapshot(backend, fault)  # completes: no exception escapes
    info = _expected(_backend(backend), code)
    (report,) = [r for r in snap.backends if r.name == backend]
    if not report.available:
        assert fn in ENUMERATION, f"{fn} failing took the backend down: {report.reason or report.error}"
        assert report.reason or report.error
        return
    changed_devices = 0
    for i, device in enumerate(snap.devices):
        before = _readings(base.devices[i]) if i < len(base.devices) else {}
        after = _readings(device)
        if to_dict(device) != (to_dict(base.devices[i]) if i < len(base.devices) else None):
            changed_devices += 1
        for path, r in after.items():
            if r.call != fn or before.get(path) == r or r.ok:
                continue
            assert (r.status is info.status or info.reason in (r.reason or "")
                    or r.reason == "device lost earlier in this read"), (path, r, info)
    if arg0 is not None and fn not in ENUMERATION | PLATFORM_LEVEL:
        assert changed_devices <= 1, f"a fault on one device's {fn} changed {changed_devices} devices"
    if len(snap.devices) != len(base.devices):
        assert fn in ENUMERATION


def test_cases_cover_every_backend_and_code() -> None:
    counts = {name: sum(1 for c in CASES if c[0] == name) for name in SUBJECTS}
    assert all(n > 0 for n in counts.values()), counts
    assert len(CASES) == sum(counts.values())


def test_other_backend_is_untouched_by_a_fault_storm() -> None:
    nvml_fx, _ = SUBJECTS["nvml"]
    ocl_fx = fmt.load(FIXTURES / "opencl/pocl-cpu.json")
    with Machine([ocl_fx], backends=["opencl"]) as m:
        alone = [to_dict(d) for d in m.snapshot().devices]
    with Machine([nvml_fx, ocl_fx], backends=["nvml", "opencl"]) as m:
        m.backend_reports()
        tape = m.library.tapes["nvml"]  # type: ignore[attr-defined]
        for fn in {c["fn"] for c in nvml_fx.backends["nvml"].calls} - {"nvmlInit", "nvmlDeviceGetCount"}:
            tape.inject(Fault(fn, error={"code": NVML.GPU_IS_LOST}))
        snap = m.snapshot()
    ocl = [to_dict(d) for d in snap.devices if d.sources == ["opencl"]]
    for d in ocl + alone:
        d.pop("index")
    assert ocl == alone
    assert all(d.health.device_lost.value is True for d in snap.devices if d.sources == ["nvml"])

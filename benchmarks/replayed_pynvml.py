"""A replayed ``pynvml`` for benchmarks: nvidia-ml-py's real module with every NVML function answered
from a fixture, raising nvidia-ml-py's own exception classes.

Installed as ``sys.modules["pynvml"]`` it is the same library for gpuabst (live mode), gpustat and
nvitop, so they are timed on equal terms. A call the fixture lacks answers NVML_ERROR_NOT_SUPPORTED
(the peers make calls gpuabst does not record; they handle NOT_SUPPORTED as real drivers answer it).
"""

from __future__ import annotations

import sys
import types
from typing import Any

import pynvml as real
from gpuabst_nvml.binding import NvmlCodec
from gpuabst_nvml.constants import ERROR_CODES

from gpuabst.errors import NotRecorded
from gpuabst.fixtures.format import Fixture
from gpuabst.fixtures.tape import Tape


def _raise(error: dict[str, Any]) -> None:
    code = error.get("code")
    if isinstance(code, str):
        code = ERROR_CODES.get(code.removeprefix("NVML_ERROR_"), 999)
    raise real.NVMLError(code if isinstance(code, int) else 999)


HELPERS = {"nvmlExceptionClass", "nvmlStructToFriendlyObject", "nvmlFriendlyObjectToStruct", "nvmlErrorString"}
"""pynvml's own Python helpers, which call no NVML function and stay real."""


class Counter:
    def __init__(self) -> None:
        self.calls = 0
        self.missing = 0


def make(fixture: Fixture) -> tuple[types.ModuleType, Tape, Counter]:
    """A module like pynvml answering from ``fixture``'s NVML recording."""
    tape = Tape(fixture.backends["nvml"], NvmlCodec(), _raise)
    counter = Counter()
    mod = types.ModuleType("pynvml")
    mod.__dict__.update({k: v for k, v in vars(real).items() if not k.startswith("__")})
    mod.__file__ = real.__file__

    def replayed(name: str) -> Any:
        def fn(*args: Any, **kwargs: Any) -> Any:
            counter.calls += 1
            if "version" in kwargs:  # gpuabst passes the struct version positionally; so does the recording
                args = (*args, kwargs.pop("version"))
            try:
                return tape.play(name, args, kwargs)
            except NotRecorded:
                counter.missing += 1
                raise real.NVMLError(real.NVML_ERROR_NOT_SUPPORTED) from None
        fn.__name__ = name
        return fn

    for name, value in list(vars(real).items()):
        if name.startswith("nvml") and callable(value) and not isinstance(value, type) and name not in HELPERS:
            setattr(mod, name, replayed(name))
    mod.__dict__["nvmlErrorString"] = lambda code: f"NVML error {code}"
    mod.__dict__["_nvmlGetFunctionPointer"] = lambda name: _function_pointer(name, tape, counter)
    return mod, tape, counter


def _function_pointer(name: str, tape: Tape, counter: Counter) -> Any:
    """Stand-ins for the C entry points that nvitop calls directly (through ctypes), answered from the
    same recording as the Python-level calls: memory info (v1/v2), temperature, running processes.
    Any other symbol answers NVML_ERROR_NOT_SUPPORTED, as a driver without that data would."""

    def code_of(exc: BaseException) -> int:
        return int(getattr(exc, "value", real.NVML_ERROR_UNKNOWN))

    def play(fn: str, *args: Any) -> Any:
        counter.calls += 1
        try:
            return tape.play(fn, args, {})
        except NotRecorded:
            counter.missing += 1
            raise real.NVMLError(real.NVML_ERROR_NOT_SUPPORTED) from None

    def memory(handle: Any, out: Any, *, v2: bool) -> int:
        try:
            m = play("nvmlDeviceGetMemoryInfo", handle, *( [real.nvmlMemory_v2] if v2 else []))
        except real.NVMLError as e:
            return code_of(e)
        target = out._obj
        for field in ("total", "free", "used", "reserved"):
            if hasattr(target, field) and hasattr(m, field):
                setattr(target, field, int(getattr(m, field)))
        return 0

    def temperature_v(handle: Any, out: Any) -> int:
        try:
            out._obj.temperature = int(play("nvmlDeviceGetTemperatureV", handle, int(out._obj.sensorType)))
        except real.NVMLError as e:
            return code_of(e)
        return 0

    def temperature(handle: Any, sensor: Any, out: Any) -> int:
        try:
            out._obj.value = int(play("nvmlDeviceGetTemperature", handle, int(getattr(sensor, "value", sensor))))
        except real.NVMLError as e:
            return code_of(e)
        return 0

    def no_processes(handle: Any, count: Any, procs: Any) -> int:
        count._obj.value = 0
        return 0

    table: dict[str, Any] = {
        "nvmlDeviceGetMemoryInfo": lambda h, out: memory(h, out, v2=False),
        "nvmlDeviceGetMemoryInfo_v2": lambda h, out: memory(h, out, v2=True),
        "nvmlDeviceGetTemperatureV": temperature_v,
        "nvmlDeviceGetTemperature": temperature,
    }
    if name in table:
        return table[name]
    if "RunningProcesses" in name:
        return no_processes
    return lambda *args: real.NVML_ERROR_NOT_SUPPORTED


def install(fixture: Fixture) -> tuple[types.ModuleType, Tape, Counter]:
    mod, tape, counter = make(fixture)
    sys.modules["pynvml"] = mod
    return mod, tape, counter

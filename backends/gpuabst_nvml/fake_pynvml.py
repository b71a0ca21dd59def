"""A stand-in for the ``pynvml`` module that answers from a fixture.

It has the same error classes as nvidia-ml-py: ``NVMLError``, whose constructor returns the
subclass for a code (``NVMLError(3)`` is an ``NVMLError_NotSupported``), and one
``NVMLError_<Name>`` subclass per code, so backend code catches the same exceptions in replay as on
hardware. Every function is answered by the fixture's tape.
"""

from __future__ import annotations

import string
from typing import Any

from gpuabst.fixtures.tape import FakeModule, Tape
from gpuabst_nvml import constants as C


class NVMLError(Exception):
    """Same shape as pynvml.NVMLError: ``.value`` is the NVML return code."""

    _valClassMapping: dict[int, type[NVMLError]] = {}
    value: int

    def __new__(cls, value: int, *args: Any) -> NVMLError:
        if cls is NVMLError:
            cls = NVMLError._valClassMapping.get(value, cls)
        obj = Exception.__new__(cls)
        obj.value = value
        return obj

    def __init__(self, value: int, *args: Any) -> None:
        super().__init__(value)

    def __str__(self) -> str:
        return string.capwords(C.ERROR_NAMES.get(self.value, f"code {self.value}").replace("_", " "))


def _class_name(name: str) -> str:
    return "NVMLError_" + string.capwords(name, "_").replace("_", "")


ERROR_CLASSES: dict[str, type[NVMLError]] = {}
def _new_for(code: int) -> Any:
    def new(cls: type[NVMLError], *args: Any) -> NVMLError:
        return NVMLError.__new__(cls, code)
    return new


for _code, _name in C.ERROR_NAMES.items():
    _cls = type(_class_name(_name), (NVMLError,), {"__new__": _new_for(_code)})
    NVMLError._valClassMapping[_code] = _cls
    ERROR_CLASSES[_cls.__name__] = _cls


def nvmlExceptionClass(code: int) -> type[NVMLError]:
    if code not in NVMLError._valClassMapping:
        raise ValueError(f"nvmlErrorCode {code} is not valid")
    return NVMLError._valClassMapping[code]


def raise_recorded(error: dict[str, Any]) -> None:
    """Raise the NVMLError a fixture recorded (by numeric code, or by ``NVML_ERROR_*`` name)."""
    code = error.get("code")
    if isinstance(code, str):
        code = C.ERROR_CODES.get(code.removeprefix("NVML_ERROR_"), 999)
    if not isinstance(code, int):
        code = 999
    raise NVMLError(code)


def make(tape: Tape) -> FakeModule:
    """The fake ``pynvml`` module for one replay."""
    attrs = {f"NVML_ERROR_{n}": c for c, n in C.ERROR_NAMES.items()}
    return FakeModule("pynvml", tape, NVMLError=NVMLError, nvmlExceptionClass=nvmlExceptionClass,
                      **ERROR_CLASSES, **attrs)

"""A stand-in for pyopencl (as the backend sees it, through binding.PyOpenClApi) that answers from a
fixture.

It has pyopencl's error classes: ``Error`` with ``.code`` (the OpenCL status code), ``.routine``
and ``.what``, and its subclasses ``LogicError`` (codes at or below CL_INVALID_VALUE, -30, which
includes CL_PLATFORM_NOT_FOUND_KHR, -1001), ``RuntimeError`` and ``MemoryError``, so backend code
catches the same exceptions in replay as on a real runtime. The four flat calls (``platforms``,
``platform_devices``, ``platform_info``, ``device_info``) are answered by the fixture's tape.
"""

from __future__ import annotations

from typing import Any

from gpuabst.fixtures.tape import FakeModule, Tape
from gpuabst_opencl import constants as C


class Error(Exception):
    """Same shape as pyopencl.Error: ``.code``, ``.routine``, ``.what``."""

    def __init__(self, code: int, routine: str = "", what: str | None = None) -> None:
        self.code = code
        self.routine = routine
        self.what = what or C.ERROR_NAMES.get(code, f"error {code}")
        super().__init__(f"{routine} failed: {self.what}" if routine else self.what)


class LogicError(Error):
    pass


class RuntimeError(Error):
    pass


class MemoryError(Error):
    pass


class ReplayedException(Exception):
    """Replayed: a call that failed with something other than a pyopencl error when it was captured."""


ERROR_CLASSES: dict[str, type[Error]] = {"LogicError": LogicError, "RuntimeError": RuntimeError,
                                         "MemoryError": MemoryError}


def raise_recorded(error: dict[str, Any]) -> None:
    """Raise the pyopencl error a fixture recorded (by numeric code, or by ``CL_*`` name)."""
    code = error.get("code")
    if code == "raw_query_unavailable":
        from gpuabst_opencl.binding import RawQueryUnavailable as Live

        raise Live(str(error.get("message") or "raw query unavailable"))
    if isinstance(code, str):
        code = C.ERROR_CODES.get(code.removeprefix("CL_"), None)
    if not isinstance(code, int) or isinstance(code, bool):
        raise ReplayedException(f"{error.get('name') or 'exception'}: {error.get('message') or error.get('code')}")
    cls = ERROR_CLASSES.get(str(error.get("class")), ERROR_CLASSES[C.error_class(code)])
    raise cls(code, str(error.get("routine") or ""))


def make(tape: Tape) -> FakeModule:
    """The fake pyopencl surface for one replay."""
    return FakeModule("pyopencl", tape, Error=Error, **ERROR_CLASSES)

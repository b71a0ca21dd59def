"""The one module that touches AMD SMI (``amdsmi``): lazy, silent import, value codec and error translation.

``import amdsmi`` loads ``libamd_smi.so`` at import time; without it the package prints two lines
to stdout and raises ``KeyError('libamd_smi.so')`` (not ImportError), again on every retry. The
import here runs with stdout captured, catches every exception and remembers the outcome, so a
machine without ROCm gets one clear reason and no noise.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import io
import threading
from typing import Any

from gpuabst import entry_points
from gpuabst.backend import ErrorInfo
from gpuabst.errors import BackendUnavailable
from gpuabst.fixtures.codec import Codec
from gpuabst.reading import Status
from gpuabst_amdsmi import constants as C

INSTALL_HINT = ("pip install 'gpuabst[amd]' (amdsmi) and install AMD's libamd_smi.so: the amd-smi-lib "
                "package of ROCm (or all of ROCm); set ROCM_PATH if it is not under /opt/rocm")

_lock = threading.Lock()
_outcome: tuple[Any, BaseException | None] | None = None


def import_amdsmi() -> Any:
    """Import ``amdsmi`` once, silently. Raises BackendUnavailable saying what is missing."""
    global _outcome
    with _lock:
        if _outcome is None:
            printed = io.StringIO()
            try:
                with contextlib.redirect_stdout(printed):
                    imported: Any = importlib.import_module("amdsmi")
                _outcome = (imported, None)
            except ImportError as e:
                _outcome = (None, _unavailable("the amdsmi Python package is not installed", e))
            except Exception as e:  # KeyError('libamd_smi.so') and whatever else a broken install raises
                _outcome = (None, _unavailable(_why_import_failed(e, printed.getvalue()), e))
        module, error = _outcome
    if error is not None:
        raise error
    return module


def _unavailable(reason: str, cause: BaseException) -> BackendUnavailable:
    err = BackendUnavailable(reason)
    err.__cause__ = cause
    return err


def forget_import() -> None:
    """Forget the remembered import outcome (after installing ROCm in a running process, or in tests)."""
    global _outcome
    with _lock:
        _outcome = None


def _why_import_failed(exc: BaseException, printed: str) -> str:
    first = next((line.strip() for line in printed.splitlines() if line.strip()), "")
    if isinstance(exc, KeyError) or "libamd_smi" in printed or "libamd_smi" in str(exc):
        detail = f": {first}" if first else ""
        return f"AMD SMI library not found (libamd_smi.so{detail})"
    return f"import amdsmi failed: {type(exc).__name__}: {exc}"


def library_version() -> str | None:
    return entry_points.version("amdsmi")


def is_amdsmi_error(exc: BaseException) -> bool:
    """Whether ``exc`` is one of amdsmi's exceptions (real or the fake module's): by class name."""
    return any(c.__name__ == "AmdSmiException" for c in type(exc).__mro__)


def error_code(exc: BaseException) -> int | None:
    code = getattr(exc, "err_code", None)
    return code if isinstance(code, int) and not isinstance(code, bool) else None


def classify(exc: BaseException) -> ErrorInfo | None:
    """The Reading status of an amdsmi exception, by its AMDSMI_STATUS code."""
    if isinstance(exc, AttributeError) and str(exc).startswith("module 'amdsmi' has no attribute"):
        return ErrorInfo(Status.UNSUPPORTED, f"{exc}: FUNCTION_NOT_FOUND", function_missing=True)
    if not is_amdsmi_error(exc):
        return None
    code = error_code(exc)
    if code is None:  # AmdSmiParameterException and friends: the call itself was wrong
        return ErrorInfo(Status.ERROR, f"{type(exc).__name__}: {exc}")
    reason = C.status_name(code)
    if code in (C.NOT_SUPPORTED, C.NOT_YET_IMPLEMENTED):
        return ErrorInfo(Status.UNSUPPORTED, reason)
    if code == C.FAIL_LOAD_SYMBOL:
        return ErrorInfo(Status.UNSUPPORTED, f"{reason}: FUNCTION_NOT_FOUND", function_missing=True)
    if code == C.NO_PERM:
        return ErrorInfo(Status.NO_PERMISSION, reason)
    if code in (C.NOT_FOUND, C.NO_DATA):
        return ErrorInfo(Status.NOT_APPLICABLE, reason)
    if code == C.TIMEOUT:
        return ErrorInfo(Status.TIMEOUT, reason)
    if code in (C.RETRY, C.BUSY):
        return ErrorInfo(Status.ERROR, f"{reason} (the device was busy; a later read may succeed)", transient=True)
    if code == C.AMDGPU_RESTART_ERR:
        return ErrorInfo(Status.ERROR, reason, device_lost=True)
    return ErrorInfo(Status.ERROR, reason)


def why_unavailable(code: int | None, detail: str | None = None) -> str:
    """A one-line reason amdsmi_init failed, saying what to do where it can."""
    if code == C.DRIVER_NOT_LOADED:
        return "AMD GPU driver not loaded: load the amdgpu kernel module (modprobe amdgpu) or reboot"
    if code == C.NO_PERM:
        return ("no permission to open the AMD GPU device nodes (/dev/kfd, /dev/dri/renderD*): "
                "join the render and video groups")
    if code in (C.FAIL_LOAD_MODULE, C.FILE_NOT_FOUND):
        return (f"AMD SMI could not load its driver interfaces ({C.status_name(code)}): "
                "install ROCm or the amdgpu driver")
    if code == C.NOT_FOUND:
        return "AMD SMI found no AMD GPU (AMDSMI_STATUS_NOT_FOUND)"
    if code is not None:
        return f"amdsmi_init failed: {C.status_name(code)}"
    return f"amdsmi_init failed: {detail or 'unknown error'}"


class AmdSmiCodec(Codec):
    """Encodes amdsmi values: processor handles are ctypes ``c_void_p`` pointers, results are dicts,
    lists and scalars (the base codec's job), enum arguments are plain ints."""

    def is_handle(self, value: Any) -> bool:
        return super().is_handle(value) or isinstance(value, (ctypes.c_void_p, ctypes._Pointer))

    def handle_identity(self, value: Any) -> Any:
        if isinstance(value, ctypes.c_void_p):
            return ("ptr", value.value)
        if isinstance(value, ctypes._Pointer):
            return ("ptr", ctypes.cast(value, ctypes.c_void_p).value)
        return super().handle_identity(value)

    def encode(self, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool) and type(value) is not int:
            return int(value)  # IntEnum arguments (AmdSmiTemperatureType.EDGE) as their number
        return super().encode(value)

    def encode_error(self, exc: BaseException) -> dict[str, Any] | None:
        if not is_amdsmi_error(exc):
            return None
        code = error_code(exc)
        if code is None:
            return {"code": "parameter" if "Parameter" in type(exc).__name__ else "exception",
                    "name": type(exc).__name__, "message": str(exc)[:200]}
        return {"code": code, "name": C.status_name(code)}

"""The one module that touches nvidia-ml-py: lazy import, value codec and error translation."""

from __future__ import annotations

import ctypes
import functools
import importlib
import sys
import warnings
from typing import Any

from gpuabst import entry_points
from gpuabst.backend import ErrorInfo
from gpuabst.errors import BackendUnavailable
from gpuabst.fixtures.codec import STRUCT, Codec
from gpuabst.reading import Status
from gpuabst_nvml import constants as C

INSTALL_HINT = "pip install 'gpuabst[nvidia]' (nvidia-ml-py) and install the NVIDIA driver"


def import_pynvml() -> Any:
    """Import nvidia-ml-py's ``pynvml`` (loads no library until nvmlInit)."""
    loaded = sys.modules.get("pynvml")
    if loaded is not None:
        return loaded
    try:
        with warnings.catch_warnings():
            # the deprecated PyPI 'pynvml' wrapper warns on import; nvidia-ml-py does not
            warnings.simplefilter("ignore")
            return importlib.import_module("pynvml")
    except ImportError as e:
        raise BackendUnavailable(f"nvidia-ml-py is not installed: {INSTALL_HINT}") from e


@functools.lru_cache(maxsize=1)
def library_version() -> str | None:
    """nvidia-ml-py's version (its metadata, kept in the entry-point index: gpuabst.entry_points.version)."""
    return entry_points.version("nvidia-ml-py")


_NVML_ERROR_TYPES: dict[type, bool] = {}
"""Whether each exception type met is an NVMLError class (nvidia-ml-py's or the replay's)."""


def error_code(exc: BaseException) -> int | None:
    """The NVML return code of an NVMLError (real or replayed: any ``NVMLError*`` class with an int
    ``value``), else None. What :func:`classify` makes of an error depends on this code alone."""
    kind = type(exc)
    nvml = _NVML_ERROR_TYPES.get(kind)
    if nvml is None:
        nvml = kind.__name__.startswith("NVMLError")
        if len(_NVML_ERROR_TYPES) < 256:
            _NVML_ERROR_TYPES[kind] = nvml
    if not nvml:
        return None
    code = getattr(exc, "value", None)
    return code if isinstance(code, int) else None


def classify(exc: BaseException) -> ErrorInfo | None:
    """The Reading status for an NVMLError (real or replayed), by its NVML return code."""
    code = error_code(exc)
    return None if code is None else info_for_code(code)


@functools.lru_cache(maxsize=256)
def info_for_code(code: int) -> ErrorInfo:
    """What an NVML return code means for a Reading (asked for every failed call, so kept per code)."""
    reason = C.error_name(code)
    if code == C.NOT_SUPPORTED:
        return ErrorInfo(Status.UNSUPPORTED, reason)
    if code == C.FUNCTION_NOT_FOUND:
        return ErrorInfo(Status.UNSUPPORTED, reason, function_missing=True)
    if code == C.NO_PERMISSION:
        return ErrorInfo(Status.NO_PERMISSION, reason)
    if code == C.NOT_FOUND:
        return ErrorInfo(Status.NOT_APPLICABLE, reason)
    if code == C.TIMEOUT:
        return ErrorInfo(Status.TIMEOUT, reason)
    if code in (C.GPU_IS_LOST, C.RESET_REQUIRED):
        return ErrorInfo(Status.ERROR, reason, device_lost=True)
    return ErrorInfo(Status.ERROR, reason)


INIT_FAILURES: dict[str, str] = {
    C.error_name(C.LIBRARY_NOT_FOUND): "NVIDIA driver library not found (libnvidia-ml.so.1): install the NVIDIA driver",
    C.error_name(C.DRIVER_NOT_LOADED): "NVIDIA driver not loaded: load the nvidia kernel module (modprobe nvidia) "
                                       "or reboot",
    C.error_name(C.NO_PERMISSION): "no permission to open the NVIDIA device nodes (/dev/nvidia*)",
}


def why_unavailable(reason: str | None) -> str:
    """A one-line reason nvmlInit failed (from its Reading's reason), saying what to install where it can."""
    return INIT_FAILURES.get(reason or "", f"nvmlInit failed: {reason or 'no reason given'}")


class NvmlCodec(Codec):
    """Encodes pynvml values: device handles are ctypes pointers, results are ctypes structures."""

    def is_handle(self, value: Any) -> bool:
        return super().is_handle(value) or isinstance(value, ctypes._Pointer)

    def handle_identity(self, value: Any) -> Any:
        if isinstance(value, ctypes._Pointer):
            return ctypes.cast(value, ctypes.c_void_p).value
        return super().handle_identity(value)

    def encode_struct(self, value: Any) -> dict[str, Any] | None:
        if isinstance(value, (ctypes.Structure, ctypes.Union)):
            out: dict[str, Any] = {STRUCT: type(value).__name__}
            for field in value._fields_:
                name = field[0]
                out[name] = self.encode(_plain(getattr(value, name)))
            return out
        if type(value).__name__ == "nvmlFriendlyObject":
            return {STRUCT: "nvmlFriendlyObject", **{k: self.encode(_plain(v)) for k, v in vars(value).items()}}
        return None

    def encode_error(self, exc: BaseException) -> dict[str, Any] | None:
        code = error_code(exc)
        if code is None:
            return None
        return {"code": code, "name": C.error_name(code)}


def _plain(v: Any) -> Any:
    if isinstance(v, ctypes.Array):
        return [_plain(x) for x in v]
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    return v

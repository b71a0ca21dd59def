"""The one module that imports the vendor library (lazily), and knows its errors and structures."""

from __future__ import annotations

import importlib
from typing import Any

from gpuabst.backend import ErrorInfo
from gpuabst.errors import BackendUnavailable
from gpuabst.fixtures.codec import Codec
from gpuabst.reading import Status

INSTALL_HINT = "pip install gpuabst-example (it brings its own exlib)"
_STATUS = {2: Status.UNSUPPORTED, 4: Status.NO_PERMISSION}


def import_exlib() -> Any:
    """The real vendor module; raises BackendUnavailable saying what is missing."""
    try:
        return importlib.import_module("gpuabst_example.exlib")
    except ImportError as e:
        raise BackendUnavailable(f"exlib cannot be imported: {e}") from e


def classify(exc: BaseException) -> ErrorInfo | None:
    """The status of an exlib error (real or replayed), or None for anything else."""
    code = getattr(exc, "code", None)
    if type(exc).__name__ != "ExError" or not isinstance(code, int):
        return None
    return ErrorInfo(_STATUS.get(code, Status.ERROR), str(exc))


class ExCodec(Codec):
    """Device handles become tokens; the memory structure becomes ``{"$struct": "ExMemory", ...}``."""

    def is_handle(self, value: Any) -> bool:
        return type(value).__name__ == "ExDevice" or super().is_handle(value)

    def handle_identity(self, value: Any) -> Any:
        return ("dev", getattr(value, "slot", id(value)))

    def encode_struct(self, value: Any) -> dict[str, Any] | None:
        if type(value).__name__ == "ExMemory":
            return {"$struct": "ExMemory", "total_kib": value.total_kib, "used_kib": value.used_kib}
        return None

    def encode_error(self, exc: BaseException) -> dict[str, Any] | None:
        if type(exc).__name__ == "ExError":
            return {"code": int(getattr(exc, "code", -1)), "name": str(exc)}
        return None

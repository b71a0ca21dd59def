"""A stand-in for the ``amdsmi`` module that answers from a fixture.

It has amdsmi's own exception classes with the same constructors and methods
(``AmdSmiLibraryException(err_code)`` with ``get_error_code()`` / ``get_error_info()``,
``AmdSmiRetryException()``, ``AmdSmiTimeoutException()``, ``AmdSmiParameterException(value, type,
msg)``), the enum classes the backend passes as arguments, and ``AMDSMI_STATUS_*`` codes, so backend
code runs unchanged in replay. Every function is answered by the fixture's tape.
"""

from __future__ import annotations

from typing import Any

from gpuabst.fixtures.tape import FakeModule, Tape
from gpuabst_amdsmi import constants as C

_DESCRIPTIONS: dict[int, str] = {
    1: "Invalid parameters", 2: "Feature not supported", 3: "Feature not yet implemented",
    4: "Fail to load lib", 5: "Fail to load symbol", 6: "Error when called libdrm", 7: "API call failed",
    8: "Timeout in API call", 9: "Retry operation", 10: "Permission Denied",
    11: "Interrupt ocurred during execution", 12: "I/O Error", 13: "Bad address", 14: "Error opening file",
    15: "Not enough memory", 16: "Internal error", 17: "Out of bounds", 18: "Initialization error",
    19: "Internal reference counter exceeded INT32_MAX", 20: "Error when a directory is not found",
    30: "Device busy", 31: "Device Not found", 32: "Device not initialized", 33: "No more free slot",
    34: "Driver not loaded", 40: "No data was found for given input", 41: "Insufficient size for operation",
    42: "unexpected size of data was read", 43: "The data read or provided was unexpected",
    52: "File or directory not found", 54: "AMDGPU restart failed", 55: "Setting is not available",
    56: "Corrupted EEPROM",
}


class AmdSmiException(Exception):
    """Base smi exception class (as amdsmi.AmdSmiException)."""


class AmdSmiLibraryException(AmdSmiException):
    """As amdsmi.AmdSmiLibraryException: ``err_code`` is the AMDSMI_STATUS code."""

    def __init__(self, err_code: int) -> None:
        err_code = abs(err_code)
        super().__init__(err_code)
        self.err_code = err_code
        self.set_err_info()

    def __str__(self) -> str:
        return f"Error code:\n\t{self.err_code} | {self.err_info}"

    def get_error_info(self, detailed: bool = True) -> str:
        return self.err_info if detailed else self.err_info.split(" - ")[0]

    def get_error_code(self) -> int:
        return self.err_code

    def set_err_info(self) -> None:
        if self.err_code in C.STATUS_NAMES and self.err_code in _DESCRIPTIONS:
            self.err_info = f"{C.status_name(self.err_code)} - {_DESCRIPTIONS[self.err_code]}"
        else:
            self.err_info = "AMDSMI_STATUS_UNKNOWN_ERROR - An unknown error occurred"


class AmdSmiRetryException(AmdSmiLibraryException):
    def __init__(self) -> None:
        super().__init__(C.RETRY)


class AmdSmiTimeoutException(AmdSmiLibraryException):
    def __init__(self) -> None:
        super().__init__(C.TIMEOUT)


class AmdSmiParameterException(AmdSmiException):
    def __init__(self, receivedValue: Any, expectedType: Any, msg: str | None = None) -> None:
        super().__init__(msg)
        self.err_code = None
        self.actualType = type(receivedValue)
        self.expectedType = expectedType
        self.err_msg = msg if msg is not None else (
            f"Invalid parameter:\nActual type: {self.actualType}\nExpected type: {self.expectedType}")

    def __str__(self) -> str:
        return self.err_msg


ERROR_CLASSES: dict[str, type[AmdSmiException]] = {
    c.__name__: c for c in (AmdSmiException, AmdSmiLibraryException, AmdSmiRetryException,
                            AmdSmiTimeoutException, AmdSmiParameterException)
}


def exception_for(code: int) -> AmdSmiLibraryException:
    """The exception amdsmi's ``_check_res`` raises for a status code."""
    if code == C.RETRY:
        return AmdSmiRetryException()
    if code == C.TIMEOUT:
        return AmdSmiTimeoutException()
    return AmdSmiLibraryException(code)


def raise_recorded(error: dict[str, Any]) -> None:
    """Raise the amdsmi exception a fixture recorded: by status code, ``AMDSMI_STATUS_*`` name, or
    ``"parameter"`` / ``"exception"`` for amdsmi's exceptions that carry no code."""
    code = error.get("code")
    if isinstance(code, str):
        if code == "parameter":
            raise AmdSmiParameterException(None, object, str(error.get("message") or "invalid parameter"))
        if code == "exception" or not code.startswith("AMDSMI_STATUS_"):
            raise AmdSmiException(str(error.get("message") or error.get("name") or code))
        code = C.STATUS_CODES.get(code.removeprefix("AMDSMI_STATUS_"), C.UNKNOWN_ERROR)
    if not isinstance(code, int):
        code = C.UNKNOWN_ERROR
    raise exception_for(code)


def make(tape: Tape) -> FakeModule:
    """The fake ``amdsmi`` module for one replay."""
    statuses = {f"AMDSMI_STATUS_{n}": c for c, n in C.STATUS_NAMES.items()}
    return FakeModule("amdsmi", tape, __version__=None, **ERROR_CLASSES, **C.ENUMS, **statuses)

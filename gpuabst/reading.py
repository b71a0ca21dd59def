"""Reading: a value together with why it is (or is not) there.

Every value a backend reports that can be missing is a :class:`Reading`. A Reading carries the
value when the vendor gave one, and otherwise a :class:`Status` saying why not, the vendor's own
reason (for example ``NVML_ERROR_NOT_SUPPORTED``), the backend that produced it and the vendor call
behind it. Nothing missing is ever a bare ``None``, ``0``, ``"N/A"`` or NaN.
"""

from __future__ import annotations

import enum
from typing import Any, Generic, TypeVar

import attrs

T = TypeVar("T")


class Status(str, enum.Enum):
    """Why a Reading has, or lacks, a value."""

    OK = "ok"
    UNSUPPORTED = "unsupported"
    NO_PERMISSION = "no_permission"
    NOT_APPLICABLE = "not_applicable"
    NOT_RECORDED = "not_recorded"
    TIMEOUT = "timeout"
    ERROR = "error"

    def __str__(self) -> str:
        return self.value


def _as_status(value: Status | str) -> Status:
    return value if type(value) is Status else Status(value)


@attrs.frozen
class Reading(Generic[T]):
    """One reported value, or the reason it is missing.

    ``value`` is set exactly when ``status`` is :attr:`Status.OK`.
    ``source`` names the backend (``"nvml"``), ``call`` the vendor call
    (``"nvmlDeviceGetMemoryInfo"``), ``reason`` the vendor's own words for a missing value.
    """

    value: T | None = None
    status: Status = attrs.field(default=Status.OK, converter=_as_status)
    source: str | None = None
    call: str | None = None
    reason: str | None = None

    def __attrs_post_init__(self) -> None:
        if (self.status is Status.OK) != (self.value is not None):
            raise ValueError(f"a Reading with status {self.status} must {'' if self.status is Status.OK else 'not '}"
                             f"have a value (got {self.value!r})")

    @property
    def ok(self) -> bool:
        return self.status is Status.OK

    def get(self, default: Any = None) -> T | Any:
        """The value, or ``default`` when it is missing."""
        return self.value if self.status is Status.OK else default

    def map(self, fn: Any) -> Reading[Any]:
        """Apply ``fn`` to the value of an ok Reading; a missing one passes through unchanged."""
        if self.status is not Status.OK:
            return self
        return Reading(fn(self.value), Status.OK, self.source, self.call, self.reason)

    def meta(self) -> dict[str, Any]:
        """Status, source, call and reason as a JSON-ready dict (without the value)."""
        out: dict[str, Any] = {"status": self.status.value}
        for key in ("source", "call", "reason"):
            v = getattr(self, key)
            if v is not None:
                out[key] = v
        return out

    def __str__(self) -> str:
        if self.status is Status.OK:
            return str(self.value)
        return f"<{self.status.value}{': ' + self.reason if self.reason else ''}>"


def ok(value: T, source: str | None = None, call: str | None = None) -> Reading[T]:
    """An ok Reading of ``value``."""
    return Reading(value, Status.OK, source, call)


def missing(status: Status, source: str | None = None, call: str | None = None,
            reason: str | None = None) -> Reading[Any]:
    """A Reading without a value, saying why."""
    if status is Status.OK:
        raise ValueError("missing() needs a status other than ok")
    return Reading(None, status, source, call, reason)


def not_applicable(source: str | None, call: str | None, reason: str) -> Reading[Any]:
    return missing(Status.NOT_APPLICABLE, source, call, reason)


UNSET: Reading[Any] = Reading(None, Status.NOT_RECORDED, None, None, "no backend reported this value")
"""The default for a field no backend has filled in."""

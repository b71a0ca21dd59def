"""Reading: a value together with why it is (or is not) there.

Every value a backend reports that can be missing is a :class:`Reading`. A Reading carries the
value when the vendor gave one, and otherwise a :class:`Status` saying why not, the vendor's own
reason (for example ``NVML_ERROR_NOT_SUPPORTED``), the backend that produced it and the vendor call
behind it. Nothing missing is ever a bare ``None``, ``0``, ``"N/A"`` or NaN.

A Reading is an immutable tuple underneath (``value, status, source, call, reason``): a snapshot
makes about a hundred of them per GPU, and building a tuple costs a third of a frozen attrs instance
(docs/performance.md). Readings compare equal only to Readings.
"""

from __future__ import annotations

import enum
from operator import itemgetter
from typing import TYPE_CHECKING, Any, Generic, TypeVar

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


try:  # the C field accessor collections.namedtuple uses; a plain itemgetter property elsewhere
    from _collections import _tuplegetter as _field
except ImportError:  # pragma: no cover - not CPython
    def _field(index: int, doc: str) -> Any:
        return property(itemgetter(index), doc=doc)

_tuple_new = tuple.__new__
_OK = Status.OK


class Reading(tuple[Any, ...], Generic[T]):
    """One reported value, or the reason it is missing.

    ``value`` is set exactly when ``status`` is :attr:`Status.OK`.
    ``source`` names the backend (``"nvml"``), ``call`` the vendor call
    (``"nvmlDeviceGetMemoryInfo"``), ``reason`` the vendor's own words for a missing value.
    """

    __slots__ = ()

    if TYPE_CHECKING:
        @property
        def value(self) -> T | None: ...
        @property
        def status(self) -> Status: ...
        @property
        def source(self) -> str | None: ...
        @property
        def call(self) -> str | None: ...
        @property
        def reason(self) -> str | None: ...
    else:
        value = _field(0, "The value; None exactly when the status is not ok.")
        status = _field(1, "Why the value is, or is not, there.")
        source = _field(2, "The backend that reported it.")
        call = _field(3, "The vendor call behind it.")
        reason = _field(4, "The vendor's own words for a missing value.")

    def __new__(cls, value: T | None = None, status: Status | str = _OK, source: str | None = None,
                call: str | None = None, reason: str | None = None) -> Reading[T]:
        if type(status) is not Status:
            status = Status(status)
        if (status is _OK) != (value is not None):
            raise ValueError(f"a Reading with status {status} must {'' if status is _OK else 'not '}"
                             f"have a value (got {value!r})")
        return _tuple_new(cls, (value, status, source, call, reason))

    def __getnewargs__(self) -> tuple[Any, ...]:
        return tuple(self)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Reading) and tuple.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    __hash__ = tuple.__hash__

    def __repr__(self) -> str:
        return (f"Reading(value={self[0]!r}, status={self[1]!r}, source={self[2]!r}, call={self[3]!r}, "
                f"reason={self[4]!r})")

    @property
    def ok(self) -> bool:
        return self[1] is _OK

    def get(self, default: Any = None) -> T | Any:
        """The value, or ``default`` when it is missing."""
        return self[0] if self[1] is _OK else default

    def map(self, fn: Any) -> Reading[Any]:
        """Apply ``fn`` to the value of an ok Reading; a missing one passes through unchanged."""
        if self[1] is not _OK:
            return self
        value = fn(self[0])
        if value is None:
            raise ValueError(f"a Reading with status ok must have a value (got None from {self[3]})")
        return _tuple_new(Reading, (value, _OK, self[2], self[3], self[4]))

    def replace(self, **changes: Any) -> Reading[T]:
        """A copy with some fields changed (``r.replace(call="read_attr:vendor")``), checked like a new one."""
        fields = dict(zip(("value", "status", "source", "call", "reason"), self, strict=True))
        fields.update(changes)
        return Reading(**fields)

    def meta(self) -> dict[str, Any]:
        """Status, source, call and reason as a JSON-ready dict (without the value)."""
        out: dict[str, Any] = {"status": self[1].value}
        if self[2] is not None:
            out["source"] = self[2]
        if self[3] is not None:
            out["call"] = self[3]
        if self[4] is not None:
            out["reason"] = self[4]
        return out

    def __str__(self) -> str:
        if self[1] is _OK:
            return str(self[0])
        return f"<{self[1].value}{': ' + self[4] if self[4] else ''}>"


def ok(value: T, source: str | None = None, call: str | None = None) -> Reading[T]:
    """An ok Reading of ``value``."""
    if value is None:
        raise ValueError("an ok Reading needs a value")
    return _tuple_new(Reading, (value, _OK, source, call, None))


def missing(status: Status, source: str | None = None, call: str | None = None,
            reason: str | None = None) -> Reading[Any]:
    """A Reading without a value, saying why."""
    if type(status) is not Status or status is _OK:
        if status == _OK:
            raise ValueError("missing() needs a status other than ok")
        status = Status(status)
    return _tuple_new(Reading, (None, status, source, call, reason))


def not_applicable(source: str | None, call: str | None, reason: str) -> Reading[Any]:
    return missing(Status.NOT_APPLICABLE, source, call, reason)


UNSET: Reading[Any] = Reading(None, Status.NOT_RECORDED, None, None, "no backend reported this value")
"""The default for a field no backend has filled in."""

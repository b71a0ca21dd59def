"""What health evaluation returns: one :class:`Check` per question asked of a device, and verdicts.

All classes are frozen attrs classes; they round-trip through :mod:`gpuabst.serialize`
(``to_dict`` / ``from_dict``). A level is one of ``ok``, ``warn``, ``fail``, ``unknown`` and, for a
check the device has no use for (ECC on a GPU without ECC memory), ``not_applicable``.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from typing import Any

import attrs


class Level(str, enum.Enum):
    """The outcome of one check, or the verdict of a device or node.

    Severity, lowest first: ``not_applicable`` (does not count), ``ok``, ``unknown``, ``warn``,
    ``fail``. ``unknown`` means the inputs could not be read: it is never folded into ``ok``.
    """

    OK = "ok"
    WARN = "warn"
    FAIL = "fail"
    UNKNOWN = "unknown"
    NOT_APPLICABLE = "not_applicable"

    def __str__(self) -> str:
        return self.value

    @property
    def severity(self) -> int:
        return _SEVERITY[self]


_SEVERITY = {Level.NOT_APPLICABLE: 0, Level.OK: 1, Level.UNKNOWN: 2, Level.WARN: 3, Level.FAIL: 4}


def _level(value: Level | str) -> Level:
    """A Level from a Level (as it is; checks make one per poll) or its value (``"warn"``)."""
    return value if type(value) is Level else Level(value)


def worst(levels: Iterable[Level]) -> Level:
    """The most severe of ``levels`` (``not_applicable`` when there are none)."""
    return max(levels, key=_SEVERITY.__getitem__, default=Level.NOT_APPLICABLE)


@attrs.frozen
class Check:
    """One health question asked of one device (or of the node), and its answer.

    ``system`` groups checks (``memory``, ``retirement``, ``thermal``, ``power``, ``pcie``,
    ``clocks``, ``presence``, ``driver``, ``partitions``, ``node``); ``name`` is stable and unique
    within the system (``memory.ecc_volatile``). ``reason`` is one sentence a person can act on.
    ``inputs`` maps each model field the check read to its value, or to ``"<status>: <reason>"``
    when it was missing; ``calls`` lists the vendor calls behind those inputs; ``dcgm`` names the
    DCGM health watch this check corresponds to, if any.
    """

    system: str
    name: str
    level: Level = attrs.field(converter=_level)
    reason: str
    inputs: dict[str, Any] = attrs.field(factory=dict)
    calls: list[str] = attrs.field(factory=list)
    dcgm: str | None = None

    @property
    def id(self) -> str:
        return f"{self.system}.{self.name}"


@attrs.frozen
class DeviceHealth:
    """The verdict on one device: the worst level among its checks, with every check kept."""

    index: int
    vendor: str
    level: Level = attrs.field(converter=_level)
    summary: str
    name: str | None = None
    model: str | None = None
    uuid: str | None = None
    bus_id: str | None = None
    checks: list[Check] = attrs.field(factory=list)

    def problems(self) -> list[Check]:
        """Checks that are not ok (warn, fail or unknown), most severe first."""
        bad = [c for c in self.checks if c.level in (Level.WARN, Level.FAIL, Level.UNKNOWN)]
        return sorted(bad, key=lambda c: -c.level.severity)

    def check(self, check_id: str) -> Check:
        """The check called ``system.name``; KeyError when there is none."""
        for c in self.checks:
            if c.id == check_id:
                return c
        raise KeyError(check_id)


@attrs.frozen
class NodeHealth:
    """The verdict on a node: its devices' verdicts and the node's own checks (device count,
    backends that failed), the worst of them all as ``level``."""

    level: Level = attrs.field(converter=_level)
    summary: str
    devices: list[DeviceHealth] = attrs.field(factory=list)
    checks: list[Check] = attrs.field(factory=list)
    taken_at: str | None = None

    def levels(self) -> set[Level]:
        """Every level present among the node checks and the device verdicts."""
        found = {c.level for c in self.checks} | {d.level for d in self.devices}
        return found - {Level.NOT_APPLICABLE}

    def device(self, index: int) -> DeviceHealth:
        for d in self.devices:
            if d.index == index:
                return d
        raise KeyError(index)

"""The fields of the common model as dotted paths, walked from the attrs classes in gpuabst.model.

Rows of the support matrix and the fields the contract and ``compare`` check all come from here,
so a field added to the model appears everywhere without a code change.
"""

from __future__ import annotations

import functools
import typing
from collections.abc import Iterator
from typing import Any

import attrs

from gpuabst.model import Capabilities, Device, HealthReadings, MemoryInfo, Partition, PciInfo
from gpuabst.reading import Reading

PARTITIONS = "partitions"
"""The row for the partition list itself (how many partitions a device reports)."""

GROUPS: dict[str, str] = {
    "device": "Identity and driver",
    "pci": "PCI",
    "memory": "Memory",
    "capabilities": "Capabilities",
    "health": "Health",
    "partitions": "Partitions",
}
"""Field groups, in the order they are shown, with their titles."""

_NESTED: dict[str, type] = {"pci": PciInfo, "memory": MemoryInfo, "capabilities": Capabilities,
                            "health": HealthReadings}


@attrs.frozen
class Field:
    """One field of the model: ``path`` (``memory.total_bytes``), its group and value type."""

    path: str
    group: str
    value_type: Any
    """The ``T`` of ``Reading[T]`` (``int``, ``list[str]``...)."""

    @property
    def name(self) -> str:
        return self.path.rsplit(".", 1)[-1]


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def reading_fields(cls: type) -> list[tuple[str, Any]]:
    """``(name, T)`` of every ``Reading[T]`` attribute of an attrs class, in declaration order."""
    hints = _hints(cls)
    out = []
    for f in attrs.fields(cls):
        tp = hints[f.name]
        if typing.get_origin(tp) is Reading:
            (arg,) = typing.get_args(tp)
            out.append((f.name, arg))
    return out


@functools.cache
def model_fields() -> tuple[Field, ...]:
    """Every Reading field of a Device, then the partition list and each Reading of a Partition."""
    out = [Field(name, "device", tp) for name, tp in reading_fields(Device)]
    for prefix, cls in _NESTED.items():
        out += [Field(f"{prefix}.{name}", prefix, tp) for name, tp in reading_fields(cls)]
    out.append(Field(PARTITIONS, PARTITIONS, int))
    out += [Field(f"{PARTITIONS}.{name}", PARTITIONS, tp) for name, tp in reading_fields(Partition)]
    return tuple(out)


def field_by_path() -> dict[str, Field]:
    return {f.path: f for f in model_fields()}


def readings_of(device: Device, path: str) -> list[Reading[Any]]:
    """The Readings of one field of a device: one, or one per partition for ``partitions.*``.

    ``partitions`` itself is not a Reading and has no entry here.
    """
    head, _, tail = path.partition(".")
    if head == PARTITIONS:
        return [getattr(p, tail) for p in device.partitions] if tail else []
    if tail:
        return [getattr(getattr(device, head), tail)]
    return [getattr(device, head)]


def iter_readings(device: Device) -> Iterator[tuple[str, Reading[Any]]]:
    """Every ``(path, Reading)`` of a device; partition Readings as ``partitions[i].name``."""
    for f in model_fields():
        if f.group == PARTITIONS:
            continue
        yield f.path, readings_of(device, f.path)[0]
    for i, p in enumerate(device.partitions):
        for name, _ in reading_fields(Partition):
            yield f"{PARTITIONS}[{i}].{name}", getattr(p, name)

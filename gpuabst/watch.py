"""Watching a machine: poll on an interval and report what changed between two readings.

    >>> with gpuabst.open_machine() as m:
    ...     for event in watch(m, interval_s=5, count=3):
    ...         print(event)

The first reading is a full snapshot; every later one is :meth:`Machine.poll`, which keeps the
static facts of the first read and re-reads only dynamic values (temperatures, power, clocks, ECC
counters, throttle reasons, memory use), so a poll costs far fewer vendor calls than a snapshot
(docs/performance.md, "Polling").
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import attrs

from gpuabst.health import DEFAULT_POLICY, HealthPolicy, NodeHealth, evaluate
from gpuabst.model import Device, Snapshot
from gpuabst.reading import Reading

WATCHED_SECTIONS = ("health", "memory")
"""The parts of a Device compared between polls (static facts are read once and cannot change)."""


@attrs.frozen
class Change:
    """One value of one device that differs between two consecutive readings."""

    device: str
    field: str
    before: Any
    after: Any


@attrs.frozen
class WatchEvent:
    """One reading of the machine: the snapshot (or poll), its health, and what changed since the last."""

    sequence: int
    snapshot: Snapshot
    health: NodeHealth
    changes: list[Change]


def device_key(d: Device) -> str:
    """A stable name for a device across polls: its PCI bus id, else its UUID, else its index."""
    if d.pci.bus_id.ok:
        return str(d.pci.bus_id.value)
    if d.uuid.ok:
        return str(d.uuid.value)
    return f"index {d.index}"


def _shown(r: Reading[Any]) -> Any:
    return r.value if r.ok else f"<{r.status.value}>"


def flatten(d: Device) -> dict[str, Any]:
    """The dynamic values of a device as ``section.field -> value`` (``<status>`` when missing)."""
    out: dict[str, Any] = {}
    for section in WATCHED_SECTIONS:
        obj = getattr(d, section)
        for f in attrs.fields(type(obj)):
            v = getattr(obj, f.name)
            if isinstance(v, Reading):
                out[f"{section}.{f.name}"] = _shown(v)
    return out


def changes(before: Snapshot | None, after: Snapshot, health_before: NodeHealth | None = None,
            health_after: NodeHealth | None = None) -> list[Change]:
    """What differs between two readings: dynamic values, devices that came or went, verdicts."""
    out: list[Change] = []
    prev = {device_key(d): d for d in (before.devices if before else [])}
    cur = {device_key(d): d for d in after.devices}
    for key in prev.keys() - cur.keys():
        out.append(Change(key, "present", True, False))
    for key, d in cur.items():
        if key not in prev:
            out.append(Change(key, "present", False, True))
            continue
        a, b = flatten(prev[key]), flatten(d)
        out.extend(Change(key, k, a.get(k), v) for k, v in b.items() if a.get(k) != v)
    if health_after is not None:
        hb = {(v.bus_id or v.uuid or f"index {v.index}"): v for v in (health_before.devices if health_before else [])}
        for v in health_after.devices:
            key = v.bus_id or v.uuid or f"index {v.index}"
            old = hb.get(key)
            if old is not None and old.level is not v.level:
                out.append(Change(key, "verdict", old.level.value, v.level.value))
        if health_before is not None and health_before.level is not health_after.level:
            out.append(Change("node", "verdict", health_before.level.value, health_after.level.value))
    return out


def watch(machine: Any, *, interval_s: float = 5.0, count: int | None = None,
          policy: HealthPolicy = DEFAULT_POLICY, sleep: Callable[[float], None] = time.sleep,
          clock: Callable[[], float] = time.monotonic) -> Iterator[WatchEvent]:
    """Read ``machine`` every ``interval_s`` seconds (``count`` readings in all, None: forever): a
    snapshot first, then polls; each event carries the changes since the previous reading."""
    last: Snapshot | None = None
    last_health: NodeHealth | None = None
    seq = 0
    next_at = clock()
    while count is None or seq < count:
        snap = machine.poll() if last is not None else machine.snapshot()
        health = evaluate(snap, policy)
        yield WatchEvent(seq, snap, health, changes(last, snap, last_health, health) if last is not None else [])
        last, last_health = snap, health
        seq += 1
        if count is not None and seq >= count:
            return
        next_at += interval_s
        delay = next_at - clock()
        if delay > 0:
            sleep(delay)
        else:
            next_at = clock()

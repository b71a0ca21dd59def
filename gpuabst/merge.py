"""Merging: one physical device seen by several backends becomes one Device.

Devices are matched by PCI bus id, else by UUID. Each field is taken from the most authoritative
backend that has a value (NVML and amdsmi over OpenCL); where another backend has a different value
it is kept as a :class:`~gpuabst.model.Disagreement`, since the difference is itself useful.
"""

from __future__ import annotations

from typing import Any

import attrs

from gpuabst.model import Device, Disagreement, replace
from gpuabst.reading import Reading, Status


def _key(d: Device) -> tuple[str, str] | None:
    if d.pci.bus_id.ok:
        return ("bus", str(d.pci.bus_id.value))
    if d.uuid.ok:
        return ("uuid", str(d.uuid.value).lower())
    return None


def _keys(d: Device) -> list[tuple[str, str]]:
    """What finds a device among those merged so far: its own key (:func:`_key`) and its UUID."""
    own = _key(d)
    return [k for k in (own, ("uuid", str(d.uuid.value).lower()) if d.uuid.ok else None) if k]


def merge_devices(per_backend: list[tuple[int, list[Device]]]) -> list[Device]:
    """Merge devices from backends given as ``(authority, devices)``, most authoritative first."""
    if len(per_backend) == 1 and _distinct(per_backend[0][1]):  # what every read of one backend gives
        return list(per_backend[0][1])
    ordered = sorted(per_backend, key=lambda p: -p[0])
    merged: list[Device] = []
    index_by_key: dict[tuple[str, str], int] = {}
    for _, devices in ordered:
        for d in devices:
            keys = _keys(d)
            hit = next((index_by_key[k] for k in keys if k in index_by_key), None)
            if hit is None:  # a device not seen before: its own keys find it
                merged.append(d)
                hit = len(merged) - 1
            else:  # the merged device may have gained a bus id from this one
                merged[hit] = _merge_pair(merged[hit], d)
                kept = _key(merged[hit])
                if kept is not None:
                    keys.append(kept)
            for k in keys:
                index_by_key[k] = hit
    return merged


def _distinct(devices: list[Device]) -> bool:
    """Whether no two of one backend's devices share a bus id or a UUID (then none merges with another
    and the loop of :func:`merge_devices` would return them as they are)."""
    if len(devices) <= 1:
        return True
    keys = [set(_keys(d)) for d in devices]  # a device without a bus id has its UUID key twice
    return len(set().union(*keys)) == sum(map(len, keys))


def _merge_pair(kept: Device, other: Device) -> Device:
    disagreements: list[Disagreement] = list(kept.disagreements)
    merged = _merge_obj(kept, other, "", disagreements, _src(kept), _src(other))
    out: Device = replace(merged, sources=kept.sources + [s for s in other.sources if s not in kept.sources],
                          partitions=kept.partitions or other.partitions, disagreements=disagreements)
    return out


def _src(d: Device) -> str:
    return d.sources[0] if d.sources else "?"


def _merge_obj(a: Any, b: Any, path: str, dis: list[Disagreement], sa: str, sb: str) -> Any:
    changes: dict[str, Any] = {}
    for f in attrs.fields(type(a)):
        if f.name in ("partitions", "sources", "disagreements", "index", "vendor", "device_type"):
            continue
        va, vb = getattr(a, f.name), getattr(b, f.name)
        name = f"{path}{f.name}"
        if isinstance(va, Reading) and isinstance(vb, Reading):
            if not va.ok and vb.ok:
                changes[f.name] = vb
            elif va.ok and vb.ok and not _same(va.value, vb.value):
                dis.append(Disagreement(name, va.source or sa, va.value, vb.source or sb, vb.value))
            elif not va.ok and not vb.ok and va.status is Status.NOT_RECORDED and vb.status is not Status.NOT_RECORDED:
                changes[f.name] = vb
        elif attrs.has(type(va)):
            changes[f.name] = _merge_obj(va, vb, f"{name}.", dis, sa, sb)
    return replace(a, **changes) if changes else a


def _same(x: Any, y: Any) -> bool:
    if isinstance(x, str) and isinstance(y, str):
        return x.strip().lower() == y.strip().lower()
    return bool(x == y)

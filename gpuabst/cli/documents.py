"""The versioned JSON documents printed by ``--json`` (documented in docs/json-output.md)."""

from __future__ import annotations

from typing import Any

from gpuabst import __version__
from gpuabst.model import BackendReport, Device, Snapshot
from gpuabst.serialize import to_dict

SCHEMA_VERSION = 1

DEFAULT_DEVICE_TYPES = ("gpu", "accelerator")
"""Shown without ``--all``: OpenCL CPU devices and display controllers (BMC VGA) are not GPUs."""


def shown(devices: list[Device], include_all: bool) -> list[Device]:
    """The devices a command shows: GPUs and accelerators, or everything with ``--all``."""
    return list(devices) if include_all else [d for d in devices if d.device_type in DEFAULT_DEVICE_TYPES]


def _head(kind: str, mode: str, fixtures: list[str]) -> dict[str, Any]:
    return {"schema": f"gpuabst.{kind}", "schema_version": SCHEMA_VERSION, "gpuabst_version": __version__,
            "mode": mode, "fixtures": fixtures}


def backends_document(reports: list[BackendReport], mode: str, fixtures: list[str]) -> dict[str, Any]:
    return {**_head("backends", mode, fixtures), "backends": to_dict(reports)}


def show_document(snap: Snapshot, mode: str, fixtures: list[str], *, include_all: bool = True) -> dict[str, Any]:
    devices = shown(snap.devices, include_all)
    return {**_head("show", mode, fixtures), "taken_at": snap.taken_at, "backends": to_dict(snap.backends),
            "devices": to_dict(devices)}


def list_document(snap: Snapshot, mode: str, fixtures: list[str], *, include_all: bool) -> dict[str, Any]:
    devices = shown(snap.devices, include_all)
    rows = []
    for d in devices:
        rows.append({"index": d.index, "vendor": d.vendor, "device_type": d.device_type, "name": d.name.value,
                     "model": d.model.value, "uuid": d.uuid.value, "bus_id": d.pci.bus_id.value,
                     "memory_total_bytes": d.memory.total_bytes.value, "partitions": len(d.partitions),
                     "sources": d.sources})
    return {**_head("list", mode, fixtures), "taken_at": snap.taken_at, "devices": rows,
            "backends": to_dict(snap.backends)}

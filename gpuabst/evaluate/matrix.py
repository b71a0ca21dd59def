"""The support matrix: for every field of the model and every backend (or fixture), what was reported.

A cell counts the statuses of that field over every device in its column, and names the vendor
calls behind them (the Readings' ``call``) and the vendors' reasons. A field the backend never
fills in at all (the model's default, no source) is ``absent``: no vendor call reads it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import attrs

from gpuabst.evaluate.fields import GROUPS, PARTITIONS, Field, model_fields, readings_of
from gpuabst.evaluate.observe import Observation
from gpuabst.model import Device
from gpuabst.reading import Reading, Status

MATRIX_SCHEMA_VERSION = 1

ABSENT = "absent"
NO_DEVICES = "no_devices"
STATUSES: tuple[str, ...] = (*(s.value for s in Status), ABSENT, NO_DEVICES)
"""Every cell status: the Reading statuses, then ``absent`` and ``no_devices``."""

LABELS: dict[str, str] = {
    "ok": "ok", "unsupported": "unsupported", "no_permission": "no permission",
    "not_applicable": "not applicable", "not_recorded": "not recorded", "timeout": "timeout", "error": "error",
    ABSENT: "not read", NO_DEVICES: "no devices",
}
DESCRIPTIONS: dict[str, str] = {
    "ok": "the vendor call gave a value",
    "unsupported": "the vendor says this device or driver does not support it",
    "no_permission": "the vendor call needs more privileges",
    "not_applicable": "does not apply to this device (no MIG, ECC off, no NVLink...)",
    "not_recorded": "the fixture has no recording of the call (the tool it was imported from did not show it)",
    "timeout": "the vendor call did not answer in time",
    "error": "the vendor call failed",
    ABSENT: "this backend has no vendor call for the field",
    NO_DEVICES: "no device in this column",
}
_PRIORITY = ("error", "timeout", "no_permission", "unsupported", "not_applicable", "not_recorded", ABSENT)


def reading_status(r: Reading[Any]) -> str:
    """A Reading's status, with the model's untouched default told apart as ``absent``."""
    if r.status is Status.NOT_RECORDED and r.source is None:
        return ABSENT
    return r.status.value


def _short(value: Any, limit: int = 60) -> str:
    text = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


@attrs.frozen
class Cell:
    """One field in one column: how many devices gave each status, the calls, reasons and an example."""

    counts: dict[str, int]
    calls: list[str] = attrs.field(factory=list)
    reasons: list[str] = attrs.field(factory=list)
    example: str | None = None

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def status(self) -> str:
        """``ok`` when any device reported a value, else the most frequent status (worst first on ties)."""
        if not self.counts:
            return NO_DEVICES
        if self.counts.get("ok"):
            return "ok"
        read = {s: n for s, n in self.counts.items() if s != ABSENT} or self.counts
        return max(read, key=lambda s: (read[s], -_PRIORITY.index(s)))

    @property
    def partial(self) -> bool:
        """Whether the devices of the column disagree (some ok, some not)."""
        return len(self.counts) > 1

    def summary(self) -> str:
        """``ok``, ``ok 3/4`` or ``unsupported``: the status and, when mixed, how many were ok."""
        s = self.status
        if self.partial and s == "ok":
            return f"ok {self.counts['ok']}/{self.total}"
        if self.partial:
            return f"{LABELS[s]} {self.counts[s]}/{self.total}"
        return LABELS[s]

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status, "counts": dict(sorted(self.counts.items())), "calls": self.calls,
                "reasons": self.reasons, "example": self.example}


@attrs.frozen
class Column:
    """A backend (aggregated over fixtures) or one fixture's backend, or one live device."""

    key: str
    backend: str
    label: str
    vendors: list[str]
    origins: list[str]
    devices: int
    device_names: list[str] = attrs.field(factory=list)
    notes: list[str] = attrs.field(factory=list)

    def to_json(self) -> dict[str, Any]:
        return attrs.asdict(self)


@attrs.frozen
class Row:
    field: Field
    cells: dict[str, Cell]


@attrs.frozen
class Matrix:
    columns: list[Column]
    rows: list[Row]
    by: str
    """``backend``, ``fixture`` or ``vendor`` (backend and device vendor)."""
    mode: str
    """``replay`` or ``live``."""
    fixtures: list[dict[str, Any]]
    """One entry per observation: origin, backend, fixture kind, vendors, devices, note."""

    def groups(self) -> list[tuple[str, str, list[Row]]]:
        """``(group, title, rows)`` in display order."""
        return [(g, title, [r for r in self.rows if r.field.group == g]) for g, title in GROUPS.items()]

    def to_json(self) -> dict[str, Any]:
        from gpuabst import __version__

        return {
            "schema": "gpuabst.matrix", "schema_version": MATRIX_SCHEMA_VERSION, "gpuabst_version": __version__,
            "mode": self.mode, "by": self.by,
            "statuses": {s: {"label": LABELS[s], "description": DESCRIPTIONS[s]} for s in STATUSES},
            "columns": [c.to_json() for c in self.columns],
            "rows": [{"field": r.field.path, "group": r.field.group,
                      "cells": {k: c.to_json() for k, c in r.cells.items()}} for r in self.rows],
            "fixtures": self.fixtures,
        }


def _cell(devices: Sequence[Device], field: Field, backend: str) -> Cell:
    counts: Counter[str] = Counter()
    calls: dict[str, None] = {}
    reasons: dict[str, None] = {}
    example = None
    if field.path == PARTITIONS:
        for d in devices:
            counts["ok" if d.partitions else "not_applicable"] += 1
            if d.partitions and example is None:
                example = f"{len(d.partitions)} {d.partitions[0].kind}"
        if counts.get("not_applicable"):
            reasons["the device reports no partitions"] = None
        return Cell(dict(counts), [], list(reasons), example)
    if field.group == PARTITIONS and not any(d.partitions for d in devices):
        n = len(devices)
        return Cell({"not_applicable": n} if n else {}, [], ["no device reports partitions"] if n else [], None)
    for d in devices:
        for r in readings_of(d, field.path):  # partitions.*: one Reading per partition
            st = reading_status(r)
            counts[st] += 1
            if r.source and r.source != backend:
                calls[f"gpuabst {r.source}"] = None  # derived by the core (model slug from the catalog)
            elif r.call:
                calls[r.call] = None
            if st not in ("ok", ABSENT) and r.reason:
                reasons[r.reason] = None
            if st == "ok" and example is None:
                example = _short(r.value)
    return Cell(dict(counts), sorted(calls), list(reasons)[:5], example)


def _device_label(d: Device) -> str:
    name = d.name.get() or f"{d.vendor} device"
    bus = d.pci.bus_id.get()
    return f"{name} ({bus})" if bus else str(name)


def build_matrix(observations: Sequence[Observation], *, by_fixture: bool = False, by_vendor: bool = False) -> Matrix:
    """Columns per backend (or per fixture and backend, or per live device, or per backend and device
    vendor), rows per model field."""
    groups: dict[str, tuple[Column, list[Device]]] = {}
    for ob in observations:
        if by_vendor and not by_fixture:
            vendors = sorted({d.vendor for d in ob.devices})
            units = [(f"{ob.backend}:{v}", f"{ob.backend} · {v}", [d for d in ob.devices if d.vendor == v])
                     for v in vendors]
            if not units and not any(o.devices for o in observations if o.backend == ob.backend):
                units = [(f"{ob.backend}:", f"{ob.backend} · no devices", [])]
        elif by_fixture and ob.origin == "live":
            units = [(f"live:{ob.backend}:{i}", f"{ob.backend}: {_device_label(d)}", [d])
                     for i, d in enumerate(ob.devices)] or [(f"live:{ob.backend}", f"{ob.backend} (live)", [])]
        elif by_fixture:
            units = [(f"{ob.origin}:{ob.backend}", f"{ob.origin} ({ob.backend})", list(ob.devices))]
        else:
            units = [(ob.backend, ob.backend, list(ob.devices))]
        for key, label, devs in units:
            col, acc = groups.get(key, (Column(key, ob.backend, label, [], [], 0), []))
            acc += devs
            notes = col.notes + ([f"{ob.origin}: {ob.note}"] if ob.note else [])
            col = attrs.evolve(col, vendors=sorted(set(col.vendors) | {d.vendor for d in devs}),
                               origins=col.origins + ([ob.origin] if ob.origin not in col.origins else []),
                               devices=len(acc), notes=notes,
                               device_names=sorted(set(col.device_names) | {str(d.name.get("?")) for d in devs}))
            groups[key] = (col, acc)
    keys = sorted(groups) if not by_fixture else list(groups)
    columns = [groups[k][0] for k in keys]
    rows = [Row(f, {k: _cell(groups[k][1], f, groups[k][0].backend) for k in keys}) for f in model_fields()]
    fixtures = [{"origin": ob.origin, "backend": ob.backend, "kind": ob.fixture_kind, "vendors": ob.vendors,
                 "devices": [_device_label(d) for d in ob.devices], "note": ob.note} for ob in observations]
    mode = "live" if observations and all(ob.origin == "live" for ob in observations) else "replay"
    by = "fixture" if by_fixture else "vendor" if by_vendor else "backend"
    return Matrix(columns, rows, by, mode, fixtures)

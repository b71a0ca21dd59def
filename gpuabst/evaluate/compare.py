"""What differs between two fixtures or ``gpuabst show --json`` documents.

Another driver version, another vendor, or the same GPU through NVML and through OpenCL: devices
are matched by PCI bus id, then the rest by their order, and every field of the model is compared
by value and by status (``ok 30.0`` against ``unsupported: NVML_ERROR_NOT_SUPPORTED``).
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs

from gpuabst.errors import GpuabstError
from gpuabst.evaluate.fields import iter_readings
from gpuabst.model import BackendReport, Device
from gpuabst.reading import Reading, Status
from gpuabst.serialize import from_dict

COMPARE_SCHEMA_VERSION = 1
DYNAMIC = ("health.*", "memory.used_bytes", "memory.free_bytes", "memory.bar1_used_bytes")
"""Fields that change from one moment to the next; ``--static`` leaves them out."""


@attrs.frozen
class Side:
    """One side of a comparison: its devices and what each backend said."""

    label: str
    kind: str
    """``fixture`` or ``snapshot``."""
    devices: list[Device]
    backends: list[BackendReport]


@attrs.frozen
class Difference:
    field: str
    a: Reading[Any] | None
    b: Reading[Any] | None
    kind: str
    """``value`` (both ok, different values), ``status`` (one or both missing, for different reasons)
    or ``presence`` (a partition on one side only)."""


@attrs.frozen
class Pair:
    a: Device | None
    b: Device | None
    matched_by: str | None
    """``bus_id`` or ``order``; None for a device on one side only."""
    differences: list[Difference]
    same: int


@attrs.frozen
class Comparison:
    a: Side
    b: Side
    pairs: list[Pair]
    backend_differences: list[str]


def load_side(spec: str | os.PathLike[str], *, backends: Sequence[str] | None = None) -> Side:
    """A fixture (replayed) or a saved ``gpuabst show --json`` document."""
    from gpuabst.fixtures.format import MAX_FIXTURE_BYTES
    from gpuabst.safe_io import read_capped

    path = Path(spec)
    raw = read_capped(path, MAX_FIXTURE_BYTES, "a gpuabst fixture or `gpuabst show --json` document",
                      error=GpuabstError)
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise GpuabstError(f"{path}: not JSON: {e}") from e
    except RecursionError:
        raise GpuabstError(f"{path}: not JSON that gpuabst reads: nested too deeply") from None
    if isinstance(data, dict) and data.get("format") == "gpuabst-fixture":
        from gpuabst.fixtures import format as fixture_format
        from gpuabst.machine import Machine

        fx = fixture_format.from_json(data, str(path))
        names = list(backends) if backends else list(fx.backends)
        with Machine([fx], backends=names) as m:
            snap = m.snapshot()
        reports = [r for r in snap.backends if r.name in names and r.name in fx.backends]
        return Side(str(path), "fixture", snap.devices, reports)
    if isinstance(data, dict) and data.get("schema") == "gpuabst.show":
        if not isinstance(data.get("devices"), list):
            raise GpuabstError(f"{path}: a show document needs a devices list")
        devices = [from_dict(Device, d) for d in data["devices"]]
        reports = [from_dict(BackendReport, r) for r in data.get("backends") or []]
        if backends:
            devices = [d for d in devices if set(d.sources) & set(backends)]
        return Side(str(path), "snapshot", devices, [r for r in reports if r.available])
    raise GpuabstError(f"{path}: neither a gpuabst fixture nor a `gpuabst show --json` document")


def _bus(d: Device) -> str | None:
    v = d.pci.bus_id.get()
    return str(v).lower() if v is not None else None


def match_devices(a: Sequence[Device], b: Sequence[Device]) -> list[tuple[Device | None, Device | None, str | None]]:
    """Pairs by bus id first, then the unmatched ones in order; the rest alone."""
    pairs: list[tuple[Device | None, Device | None, str | None]] = []
    b_by_bus = {_bus(d): d for d in b if _bus(d)}
    used: set[int] = set()
    rest_a = []
    for d in a:
        hit = b_by_bus.get(_bus(d)) if _bus(d) else None
        if hit is not None and id(hit) not in used:
            used.add(id(hit))
            pairs.append((d, hit, "bus_id"))
        else:
            rest_a.append(d)
    rest_b = [d for d in b if id(d) not in used]
    for x, y in zip(rest_a, rest_b, strict=False):
        pairs.append((x, y, "order"))
    n = min(len(rest_a), len(rest_b))
    pairs += [(x, None, None) for x in rest_a[n:]] + [(None, y, None) for y in rest_b[n:]]
    return pairs


def _ignored(path: str, patterns: Sequence[str]) -> bool:
    plain = path.replace("[", ".").replace("]", "") if "[" in path else path
    generic = _generic(path)
    return any(fnmatch.fnmatchcase(p, pat) for pat in patterns for p in (path, plain, generic))


def _generic(path: str) -> str:
    """``partitions[2].name`` -> ``partitions.name``."""
    return re.sub(r"\[\d+\]", "", path)


def _same_value(x: Any, y: Any) -> bool:
    if isinstance(x, float) or isinstance(y, float):
        try:
            return abs(float(x) - float(y)) < 1e-9
        except (TypeError, ValueError):
            return False
    return bool(x == y)


def compare_devices(a: Device, b: Device, ignore: Sequence[str] = ()) -> tuple[list[Difference], int]:
    """Field-by-field differences of two devices, and how many compared fields were the same."""
    diffs: list[Difference] = []
    same = 0
    for name in ("vendor", "device_type"):
        if _ignored(name, ignore):
            continue
        va, vb = getattr(a, name), getattr(b, name)
        if va != vb:
            diffs.append(Difference(name, Reading(va), Reading(vb), "value"))
        else:
            same += 1
    ra = dict(iter_readings(a))
    rb = dict(iter_readings(b))
    for path in list(ra) + [p for p in rb if p not in ra]:
        if _ignored(path, ignore):
            continue
        x, y = ra.get(path), rb.get(path)
        if x is None or y is None:
            diffs.append(Difference(path, x, y, "presence"))
        elif x.ok and y.ok:
            if _same_value(x.value, y.value):
                same += 1
            else:
                diffs.append(Difference(path, x, y, "value"))
        elif x.status is not y.status:  # two missing values for the same status count as the same
            diffs.append(Difference(path, x, y, "status"))
        else:
            same += 1
    if not _ignored("partitions", ignore) and len(a.partitions) != len(b.partitions):
        diffs.append(Difference("partitions", Reading(len(a.partitions)), Reading(len(b.partitions)), "value"))
    return diffs, same


def compare(a: Side, b: Side, *, ignore: Sequence[str] = ()) -> Comparison:
    pairs = []
    for x, y, how in match_devices(a.devices, b.devices):
        if x is not None and y is not None:
            diffs, same = compare_devices(x, y, ignore)
            pairs.append(Pair(x, y, how, diffs, same))
        else:
            pairs.append(Pair(x, y, None, [], 0))
    ba = {r.name: r for r in a.backends}
    bb = {r.name: r for r in b.backends}
    notes = []
    for name in sorted(set(ba) | set(bb)):
        if name not in bb:
            notes.append(f"backend {name} only in A")
        elif name not in ba:
            notes.append(f"backend {name} only in B")
        elif ba[name].driver_version != bb[name].driver_version:
            notes.append(f"backend {name}: driver {ba[name].driver_version} -> {bb[name].driver_version}")
    return Comparison(a, b, pairs, notes)


# --- output ------------------------------------------------------------------------------------
def _reading_text(r: Reading[Any] | None, limit: int = 80) -> str:
    if r is None:
        return "(absent)"
    if r.ok:
        v = r.value
        return ", ".join(map(str, v)) if isinstance(v, list) else str(v)
    if r.status is Status.NOT_RECORDED and r.source is None:
        return "<not read by this backend>"
    reason = r.reason or r.call or ""
    if len(reason) > limit:
        reason = reason[: limit - 1] + "…"
    return f"<{r.status.value}{': ' + reason if reason else ''}>"


def _reading_json(r: Reading[Any] | None) -> dict[str, Any] | None:
    return None if r is None else {"value": r.value, **r.meta()}


def _device_label(d: Device | None, side: str) -> str:
    if d is None:
        return f"{side}: -"
    bus = d.pci.bus_id.get()
    return f"{side}{d.index} {d.name.get('?')}" + (f" ({bus})" if bus else "") + f" [{', '.join(d.sources)}]"


def comparison_text(c: Comparison) -> str:
    lines = [f"A: {c.a.label} ({c.a.kind}; {', '.join(r.name for r in c.a.backends) or 'no backend'})",
             f"B: {c.b.label} ({c.b.kind}; {', '.join(r.name for r in c.b.backends) or 'no backend'})"]
    lines += c.backend_differences
    for p in c.pairs:
        if p.a is None or p.b is None:
            only = "A" if p.b is None else "B"
            lines.append(f"only in {only}: {_device_label(p.a or p.b, only)}")
            continue
        lines.append("")
        lines.append(f"{_device_label(p.a, 'A')}  <->  {_device_label(p.b, 'B')}")
        lines.append(f"  matched by {p.matched_by.replace('_', ' ') if p.matched_by else '-'}: "
                     f"{len(p.differences)} difference(s), {p.same} field(s) the same")
        width = max((len(d.field) for d in p.differences), default=0)
        for d in p.differences:
            lines.append(f"  {d.field.ljust(width)}  {_reading_text(d.a)}  ->  {_reading_text(d.b)}")
    if not c.pairs:
        lines.append("no devices on either side")
    return "\n".join(lines)


def comparison_json(c: Comparison) -> dict[str, Any]:
    from gpuabst import __version__

    def dev(d: Device | None) -> dict[str, Any] | None:
        if d is None:
            return None
        return {"index": d.index, "vendor": d.vendor, "name": d.name.value, "bus_id": d.pci.bus_id.value,
                "sources": d.sources}

    return {
        "schema": "gpuabst.compare", "schema_version": COMPARE_SCHEMA_VERSION, "gpuabst_version": __version__,
        "a": {"source": c.a.label, "kind": c.a.kind, "backends": [r.name for r in c.a.backends]},
        "b": {"source": c.b.label, "kind": c.b.kind, "backends": [r.name for r in c.b.backends]},
        "backend_differences": c.backend_differences,
        "devices": [{"a": dev(p.a), "b": dev(p.b), "matched_by": p.matched_by, "same": p.same,
                     "differences": [{"field": d.field, "kind": d.kind, "a": _reading_json(d.a),
                                      "b": _reading_json(d.b)} for d in p.differences]} for p in c.pairs],
    }

"""Compare a replayed fixture with its reviewed expectations (``NAME.expected.json`` beside ``NAME.json``).

An expectations file::

    {"reviewed": "what was checked by hand against which capture",
     "device_count": 2,
     "devices": [{"name": "Tesla T4", "memory.total_bytes": 16106127360,
                  "health.fan_speed_pct@status": "unsupported", "partitions": 0,
                  "partitions[].profile": ["3g.40gb", ...]}]}

Keys are dotted paths into the device's ``show --json`` form; ``@status`` compares the Reading's
status instead of its value; ``partitions`` compares the count; ``partitions[].X`` the list of X.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import gpuabst
from gpuabst.serialize import to_dict


def _get(doc: dict[str, Any], path: str) -> Any:
    if path == "partitions":
        return len(doc["partitions"])
    if path.startswith("partitions[]."):
        return [_get(p, path[len("partitions[]."):]) for p in doc["partitions"]]
    status = path.endswith("@status")
    parts = path.removesuffix("@status").split(".")
    obj: Any = doc
    for part in parts[:-1]:
        obj = obj[part]
    if status:
        return obj["readings"][parts[-1]]["status"]
    return obj[parts[-1]]


def check(fixture: Path) -> list[str]:
    """Problems found replaying ``fixture`` against its expectations (empty when it matches)."""
    expected = json.loads(fixture.with_name(fixture.name.replace(".json", ".expected.json")).read_text())
    snap = gpuabst.snapshot([fixture])
    docs = to_dict(snap.devices)
    problems = []
    if "device_count" in expected and len(docs) != expected["device_count"]:
        problems.append(f"{len(docs)} devices, expected {expected['device_count']}")
    for i, want in enumerate(expected.get("devices", [])):
        if i >= len(docs):
            problems.append(f"device {i} missing")
            continue
        for path, value in want.items():
            try:
                got = _get(docs[i], path)
            except (KeyError, IndexError, TypeError) as e:
                problems.append(f"device {i} {path}: not found ({e})")
                continue
            if got != value:
                problems.append(f"device {i} {path}: got {got!r}, expected {value!r}")
    return problems


def fixtures_with_expectations(vendor: str) -> list[Path]:
    root = Path(__file__).resolve().parent.parent / "fixtures" / vendor
    return sorted(p for p in root.glob("*.json") if not p.name.endswith(".expected.json")
                  and p.with_name(p.name.replace(".json", ".expected.json")).exists())

"""Make an N-GPU NVML fixture from a one-GPU fixture, for benchmarks (labelled synthetic).

Each copy of the source machine's GPUs gets its own handle tokens, PCI bus number and UUIDs; every
recorded value is otherwise the real one from the source fixture.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from typing import Any

from gpuabst.fixtures.format import BackendRecording, Fixture

GLOBAL_CALLS = {"nvmlInit", "nvmlShutdown", "nvmlSystemGetDriverVersion", "nvmlSystemGetCudaDriverVersion",
                "nvmlSystemGetCudaDriverVersion_v2", "nvmlSystemGetNVMLVersion", "nvmlDeviceGetCount"}


def _handle_copy(m: re.Match[str], k: int) -> str:
    return f'"$handle": "{m.group(1)}.{k}"'


def _uuid_copy(m: re.Match[str], k: int) -> str:
    return f"{m.group(1)}-{(int(m.group(2), 16) + k) % 2**32:08x}"


def scale_nvml(source: Fixture, copies: int) -> Fixture:
    """``copies`` times the GPUs of ``source``'s NVML recording, as one synthetic machine."""
    rec = source.backends["nvml"]
    count = next(int(c["result"]) for c in rec.calls if c["fn"] == "nvmlDeviceGetCount" and "result" in c)
    calls: list[dict[str, Any]] = []
    for c in rec.calls:
        if c["fn"] in GLOBAL_CALLS:
            calls.append(c if c["fn"] != "nvmlDeviceGetCount" else {**c, "result": count * copies})
    for k in range(copies):
        for c in rec.calls:
            if c["fn"] in GLOBAL_CALLS:
                continue
            c2 = copy.deepcopy(c)
            if c2["fn"] == "nvmlDeviceGetHandleByIndex":
                c2["args"] = [int(c2["args"][0]) + k * count]
            text = json.dumps(c2)
            text = re.sub(r'"\$handle": "([^"]+)"', functools.partial(_handle_copy, k=k), text)
            text = re.sub(r"(GPU|MIG)-([0-9a-f]{8})", functools.partial(_uuid_copy, k=k), text)
            c2 = json.loads(text)
            result = c2.get("result")
            if c2["fn"] == "nvmlDeviceGetPciInfo" and isinstance(result, dict) and "busId" in result:
                dom, bus, rest = str(result["busId"]).split(":", 2)
                result["busId"] = f"{dom}:{(int(bus, 16) + k) % 256:02X}:{rest}"
            calls.append(c2)
    provenance = {"kind": "synthetic", "tool": "benchmarks/scale.py",
                  "note": f"{copies} copies of the GPUs recorded in {source.path or 'a fixture'} "
                          f"({source.provenance.get('kind')}: {source.provenance.get('source', '')})"}
    return Fixture(provenance, {"nvml": BackendRecording(rec.library, rec.driver_version, calls)})


def add_peer_calls(fixture: Fixture) -> Fixture:
    """Recordings gpustat and nvitop need that gpuabst does not make, derived from recorded values:
    each device's index, the old temperature call (same value as nvmlDeviceGetTemperatureV), the v1
    memory structure (from the v2 one), and empty process lists (the captures ran idle)."""
    rec = fixture.backends["nvml"]
    extra: list[dict[str, Any]] = []
    fns = {c["fn"] for c in rec.calls}
    for c in rec.calls:
        if c["fn"] == "nvmlInit":
            extra.append({**c, "fn": "nvmlInitWithFlags", "args": [0]})
        if c["fn"] == "nvmlDeviceGetHandleByIndex" and "result" in c:
            h = c["result"]
            extra.append({"fn": "nvmlDeviceGetIndex", "args": [h], "result": c["args"][0]})
            for fn in ("nvmlDeviceGetComputeRunningProcesses", "nvmlDeviceGetGraphicsRunningProcesses"):
                extra.append({"fn": fn, "args": [h], "result": []})
        if c["fn"] == "nvmlDeviceGetMemoryInfo" and len(c["args"]) == 2 and isinstance(c.get("result"), dict):
            m = c["result"]
            extra.append({"fn": "nvmlDeviceGetMemoryInfo", "args": c["args"][:1],
                          "result": {"$struct": "c_nvmlMemory_t", "total": m.get("total"), "free": m.get("free"),
                                     "used": m.get("used")}})
        for new, old in (("nvmlDeviceGetTemperatureV", "nvmlDeviceGetTemperature"),
                         ("nvmlDeviceGetTemperature", "nvmlDeviceGetTemperatureV")):
            if c["fn"] == new and "result" in c and old not in fns:
                extra.append({"fn": old, "args": c["args"], "result": c["result"]})
    provenance = {**fixture.provenance, "note": fixture.provenance.get("note", "") + "; peer calls derived"}
    return Fixture(provenance, {"nvml": BackendRecording(rec.library, rec.driver_version, rec.calls + extra)})

"""Human-readable text for the terminal."""

from __future__ import annotations

from typing import Any

import attrs

from gpuabst.cli.documents import shown
from gpuabst.model import BackendReport, Device, Snapshot
from gpuabst.reading import Reading


def gib(n: Any) -> str:
    return f"{int(n) / 2**30:.1f} GiB" if isinstance(n, int) else "?"


def backends_text(reports: list[BackendReport]) -> str:
    lines = []
    for r in reports:
        state = "available" if r.available else "unavailable"
        extra = []
        if r.library_version:
            extra.append(f"library {r.library_version}")
        if r.driver_version:
            extra.append(f"driver {r.driver_version}")
        if r.replayed_from:
            extra.append(f"replaying {r.replayed_from}")
        line = f"{r.name:<10} {state}" + (f" ({', '.join(extra)})" if extra else "")
        if not r.available:
            line += f": {r.reason or r.error or 'unknown reason'}"
            if r.install_hint:
                line += f"\n{'':<11}to use it: {r.install_hint}"
        elif r.reason:  # available, with a problem worth saying (an OpenCL platform that failed)
            line += f"\n{'':<11}note: {r.reason}"
        lines.append(line)
    return "\n".join(lines) if lines else "no backend is installed"


def list_text(snap: Snapshot, include_all: bool) -> str:
    devices = shown(snap.devices, include_all)
    if not devices:
        lines = ["No GPU found."]
        for r in snap.backends:
            if r.available:
                n = r.device_count or 0
                lines.append(f"  {r.name}: available, " + (f"{n} device{'s' if n != 1 else ''}, none a GPU "
                                                          "(see --all)" if n else "no device"))
            else:
                lines.append(f"  {r.name}: {r.reason or r.error}" + (f" ({r.install_hint})" if r.install_hint else ""))
        return "\n".join(lines)
    out = []
    for d in devices:
        kind = "" if d.device_type == "gpu" else f" [{d.device_type}]"
        parts = f"  {len(d.partitions)} partitions" if d.partitions else ""
        size = gib(d.memory.total_bytes.value)
        out.append(f"{d.index:>2}  {d.vendor:<7} {_v(d.name):<40} {_v(d.model):<12} {size:>10}"
                   f"  {_v(d.pci.bus_id):<13} {','.join(d.sources)}{kind}{parts}")
    return "\n".join(out)


def _v(r: Reading[Any]) -> str:
    return str(r.value) if r.ok else f"<{r.status.value}>"


def _section(obj: Any, indent: str) -> list[str]:
    lines = []
    for f in attrs.fields(type(obj)):
        v = getattr(obj, f.name)
        if isinstance(v, Reading):
            if v.ok:
                lines.append(f"{indent}{f.name:<30} {v.value}")
            elif v.status.value != "not_recorded" or v.reason != "no backend reported this value":
                why = f"{v.status.value}" + (f": {v.reason}" if v.reason else "")
                lines.append(f"{indent}{f.name:<30} - ({why})")
    return lines


def device_text(d: Device) -> str:
    lines = [f"Device {d.index}: {_v(d.name)} [{d.vendor}, model {_v(d.model)}, from {', '.join(d.sources)}]"]
    lines += _section(d, "  ")
    for title, sect in (("PCI", d.pci), ("Memory", d.memory), ("Capabilities", d.capabilities),
                        ("Health readings", d.health)):
        lines.append(f"  {title}")
        lines += _section(sect, "    ")
    for p in d.partitions:
        lines.append(f"  Partition {p.kind} {p.index}: {_v(p.profile)}")
        lines += _section(p, "    ")
    for x in d.disagreements:
        lines.append(f"  Disagreement on {x.field}: {x.kept_source}={x.kept_value!r} kept, "
                     f"{x.other_source}={x.other_value!r}")
    return "\n".join(lines)


def show_text(snap: Snapshot, include_all: bool) -> str:
    devices = shown(snap.devices, include_all)
    if not devices:
        return list_text(snap, include_all)
    return "\n\n".join(device_text(d) for d in devices)

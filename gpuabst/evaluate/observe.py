"""Observations: the devices one backend reported from one fixture (or live), read on its own.

Each backend recorded in a fixture is replayed alone (``Machine(backends=[name])``), so every
Reading in an observation is that backend's own, never a value merged in from another backend.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import attrs

from gpuabst.errors import FixtureError
from gpuabst.fixtures import format as fixture_format
from gpuabst.model import Device


@attrs.frozen
class Observation:
    """What one backend reported about one machine.

    ``origin``: the fixture's label (its path relative to the folder it was found in) or ``"live"``.
    ``note``: why there are no devices (backend not installed, failed, only CPU devices...).
    """

    origin: str
    backend: str
    devices: list[Device]
    fixture_kind: str | None = None
    """The fixture's provenance kind (capture, import, synthetic); None when live."""
    note: str | None = None
    skipped_cpu_devices: int = 0

    @property
    def vendors(self) -> list[str]:
        return sorted({d.vendor for d in self.devices})


def fixture_files(directory: str | os.PathLike[str]) -> list[Path]:
    """Every fixture under ``directory`` (``*.json``, not ``*.expected.json``), sorted."""
    root = Path(directory)
    if not root.is_dir():
        raise FixtureError(f"{root}: not a folder")
    return sorted(p for p in root.rglob("*.json") if p.is_file() and not p.name.endswith(".expected.json"))


def _gpus(devices: Sequence[Device], include_all: bool) -> tuple[list[Device], int]:
    kept = [d for d in devices if include_all or d.device_type != "cpu"]
    return kept, len(devices) - len(kept)


def observe_fixture(path: str | os.PathLike[str], *, label: str | None = None, include_all: bool = False,
                    backends: Iterable[str] | None = None) -> list[Observation]:
    """Replay each backend recorded in the fixture on its own; one Observation per backend."""
    from gpuabst.machine import Machine

    fx = fixture_format.load(path)
    origin = label or str(path)
    wanted = set(backends) if backends else None
    out: list[Observation] = []
    for name in fx.backends:
        if wanted is not None and name not in wanted:
            continue
        with Machine([fx], backends=[name]) as m:
            report = next((r for r in m.backend_reports() if r.name == name), None)
            snap = m.snapshot()
            report = next((r for r in snap.backends if r.name == name), report)
        devices, cpus = _gpus(snap.devices, include_all)
        note = None
        if report is not None and not report.available:
            note = f"{name} did not run: {report.error or report.reason}"
        elif not devices:
            note = f"no GPU devices ({cpus} CPU device(s) left out; --all includes them)" if cpus else "no devices"
        out.append(Observation(origin, name, devices, fx.kind, note, cpus))
    return out


def observe_live(*, include_all: bool = False, backends: Iterable[str] | None = None,
                 call_timeout_s: float | None = None) -> list[Observation]:
    """Read every installed backend (or those named) on this machine, one at a time."""
    from gpuabst.machine import Machine
    from gpuabst.registry import discover

    out: list[Observation] = []
    for entry in discover(list(backends) if backends else None):
        with Machine([], backends=[entry.name], call_timeout_s=call_timeout_s) as m:
            snap = m.snapshot()
        report = next((r for r in snap.backends if r.name == entry.name), None)
        if report is None or not report.available:
            continue  # a backend that cannot run here says nothing about what its vendor reports
        devices, cpus = _gpus(snap.devices, include_all)
        out.append(Observation("live", entry.name, devices, None, None if devices else "no devices", cpus))
    return out


def observe(fixtures: Sequence[str | os.PathLike[str]] = (), fixtures_dirs: Sequence[str | os.PathLike[str]] = (),
            *, include_all: bool = False, backends: Iterable[str] | None = None,
            call_timeout_s: float | None = None) -> list[Observation]:
    """Observations from fixture files and folders of fixtures, or from live backends when none."""
    names = list(backends) if backends else None
    out: list[Observation] = []
    for f in fixtures:
        out += observe_fixture(f, include_all=include_all, backends=names)
    for d in fixtures_dirs:
        root = Path(d)
        for p in fixture_files(root):
            out += observe_fixture(p, label=p.relative_to(root).as_posix(), include_all=include_all, backends=names)
    if not fixtures and not fixtures_dirs:
        out = observe_live(include_all=include_all, backends=names, call_timeout_s=call_timeout_s)
    return out

"""The backend contract: what every backend's output must satisfy, as a reusable check.

    from gpuabst.testing.contract import check_fixture
    assert check_fixture("fixtures/mybackend/card.json") == []

or, in a third-party backend's own tests, subclass :class:`BackendContractTests`::

    class TestMyBackend(BackendContractTests):
        fixture_paths = sorted(Path("fixtures").glob("*.json"))

Each check replays every backend recorded in the fixture on its own (``Machine(backends=[name])``):

- ``replay``: the backend is installed and runs on its own fixture;
- ``types``: each value has its field's type (``Reading[int]`` holds an int, not a bool or a float);
- ``units``: bytes and counters are non-negative ints, percentages 0..100, temperatures -40..150 C,
  power 0..5000 W, clocks 0..100000 MHz, used/free memory within the total, PCI ids as lowercase
  ``0x`` hex and bus ids as ``dddd:bb:dd.f``;
- ``reasons``: every missing value has a reason or the vendor call behind it; every value a source,
  the backend's own name;
- ``no_none``: no bare None, NaN, or sentinel string (``""``, ``"N/A"``) anywhere in the model;
- ``partitions``: each partition names its parent's bus id, indices are unique;
- ``deterministic``: two replays of one fixture give equal snapshots;
- ``poll``: a poll after the snapshot keeps the static facts (identity, PCI, capabilities,
  partitions, total memory) and the device list.
"""

from __future__ import annotations

import functools
import math
import os
import re
import typing
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

import attrs

from gpuabst.evaluate.fields import model_fields, reading_fields
from gpuabst.model import Device, Partition, Snapshot
from gpuabst.reading import Reading
from gpuabst.serialize import to_dict

CHECKS = ("replay", "types", "units", "reasons", "no_none", "partitions", "deterministic", "poll")

_HEX_ID = re.compile(r"^0x[0-9a-f]+$")
_BUS_ID = re.compile(r"^[0-9a-f]{4,8}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$")
_SENTINELS = {"", "n/a", "na", "none", "null", "nan"}
CORE_FIELDS = ("model",)
"""Fields the core fills in after the backend (the model slug, from the catalog or the name)."""
DYNAMIC_MEMORY = ("memory.used_bytes", "memory.free_bytes", "memory.bar1_used_bytes")
"""Memory fields that change between polls (everything in ``health`` does too)."""


@attrs.frozen
class Problem:
    """One way a backend's output breaks the contract."""

    check: str
    fixture: str
    backend: str
    device: int | None
    field: str | None
    message: str

    def __str__(self) -> str:
        where = f"device {self.device}" if self.device is not None else "backend"
        return f"{self.fixture} [{self.backend}] {where}{' ' + self.field if self.field else ''}: " \
               f"{self.message} ({self.check})"


# --- value checks --------------------------------------------------------------------------------
def _type_ok(value: Any, tp: Any) -> bool:
    origin = typing.get_origin(tp)
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is str:
        return isinstance(value, str)
    if origin is list:
        (item,) = typing.get_args(tp)
        return isinstance(value, list) and all(_type_ok(v, item) for v in value)
    if origin is dict:
        k, v = typing.get_args(tp)
        return isinstance(value, dict) and all(_type_ok(a, k) and _type_ok(b, v) for a, b in value.items())
    return True


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp)


def _unit_problem(path: str, value: Any) -> str | None:
    """Why a value of this field is not sane for its unit, or None."""
    name = path.rsplit(".", 1)[-1]
    if isinstance(value, bool) or not isinstance(value, (int, float, str, dict)):
        return None
    if isinstance(value, dict):
        if name.endswith("_bytes") and any(not isinstance(v, int) or v < 0 for v in value.values()):
            return f"byte sizes must be non-negative ints, got {value!r}"
        return None
    if isinstance(value, str):
        if name in ("vendor_id", "device_id", "subsystem_id", "subsystem_vendor_id", "revision_id", "class_code") \
                and not _HEX_ID.match(value):
            return f"PCI ids are lowercase 0x hex, got {value!r}"
        if name in ("bus_id", "parent_bus_id") and not _BUS_ID.match(value):
            return f"bus ids are lowercase dddd:bb:dd.f, got {value!r}"
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return f"not a finite number: {value!r}"
    if name.endswith("_bytes"):
        return None if isinstance(value, int) and value >= 0 else f"bytes must be a non-negative int, got {value!r}"
    if name.endswith("_pct"):
        return None if 0 <= value <= 100 else f"a percentage must be within 0..100, got {value!r}"
    if name.startswith("temperature") and name.endswith("_c"):
        return None if -40 <= value <= 150 else f"implausible temperature {value!r} C (expected -40..150)"
    if name.endswith("_w"):
        return None if 0 <= value <= 5000 else f"implausible power {value!r} W (expected 0..5000)"
    if name.endswith("_mhz"):
        return None if 0 <= value <= 100_000 else f"implausible clock {value!r} MHz (expected 0..100000)"
    if name.startswith(("ecc_", "retired_pages", "remapped_rows", "compute_units", "nvlink", "xgmi", "max_work",
                        "gpu_instance", "compute_instance")) and value < 0:
        return f"a count must be non-negative, got {value!r}"
    if name in ("pcie_max_generation", "pcie_current_generation") and not 1 <= value <= 8:
        return f"implausible PCIe generation {value!r}"
    if name in ("pcie_max_width", "pcie_current_width") and not 1 <= value <= 32:
        return f"implausible PCIe width x{value!r}"
    return None


def _bare(value: Any) -> str | None:
    """Why a value is a bare None, NaN or sentinel, or None when it is a real value."""
    if value is None:
        return "bare None"
    if isinstance(value, float) and math.isnan(value):
        return "bare NaN"
    if isinstance(value, str) and value.strip().lower() in _SENTINELS:
        return f"sentinel string {value!r} instead of a Reading that says why"
    if isinstance(value, list):
        return next((f"in a list: {w}" for w in map(_bare, value) if w), None)
    if isinstance(value, dict):
        return next((f"in a dict: {w}" for w in map(_bare, value.values()) if w), None)
    return None


def _readings(device: Device) -> Iterator[tuple[str, Any, Reading[Any]]]:
    """``(path, value type, Reading)`` of every Reading of a device, partitions included."""
    types = {f.path: f.value_type for f in model_fields()}
    for f in model_fields():
        if f.group == "partitions":
            continue
        head, _, tail = f.path.partition(".")
        obj = getattr(device, head)
        yield f.path, f.value_type, getattr(obj, tail) if tail else obj
    for i, p in enumerate(device.partitions):
        for name, _ in reading_fields(Partition):
            yield f"partitions[{i}].{name}", types[f"partitions.{name}"], getattr(p, name)


def _plain_nones(obj: Any, path: str) -> Iterator[str]:
    """Paths of attributes that are a bare None (not inside a Reading)."""
    for f in attrs.fields(type(obj)):
        v = getattr(obj, f.name)
        where = f"{path}{f.name}"
        if isinstance(v, Reading):
            continue
        if v is None:
            yield where
        elif attrs.has(type(v)):
            yield from _plain_nones(v, f"{where}.")
        elif isinstance(v, list):
            for i, item in enumerate(v):
                if item is None:
                    yield f"{where}[{i}]"
                elif attrs.has(type(item)):
                    yield from _plain_nones(item, f"{where}[{i}].")


def check_devices(devices: Sequence[Device], *, fixture: str = "<snapshot>", backend: str = "?") -> list[Problem]:
    """The per-device checks (types, units, reasons, no_none, partitions) on already-read devices."""
    out: list[Problem] = []

    def add(check: str, dev: int | None, field: str | None, msg: str) -> None:
        out.append(Problem(check, fixture, backend, dev, field, msg))

    for n, d in enumerate(devices):
        if not d.vendor or d.vendor != d.vendor.lower() or _bare(d.vendor):
            add("types", n, "vendor", f"vendor must be a non-empty lowercase name, got {d.vendor!r}")
        if not d.sources:
            add("reasons", n, "sources", "a device must list the backend(s) it came from")
        for where in _plain_nones(d, ""):
            if where.startswith("partitions[") and where.endswith(".parent_bus_id"):
                continue  # reported by the partitions check, with the reason
            add("no_none", n, where, "bare None")
        for path, tp, r in _readings(d):
            if not isinstance(r, Reading):
                add("types", n, path, f"expected a Reading, got {type(r).__name__}")
                continue
            if backend != "?" and r.source not in (None, backend) and path not in CORE_FIELDS:
                add("reasons", n, path, f"source {r.source!r} is not the backend's name {backend!r}")
            if r.ok:
                if not r.source:
                    add("reasons", n, path, "an ok Reading must name its source backend")
                bare = _bare(r.value)
                if bare:
                    add("no_none", n, path, bare)
                    continue
                if not _type_ok(r.value, tp):
                    add("types", n, path, f"expected {_type_name(tp)}, got {type(r.value).__name__} {r.value!r}")
                    continue
                unit = _unit_problem(path, r.value)
                if unit:
                    add("units", n, path, unit)
            elif not (r.reason or r.call):
                add("reasons", n, path, f"{r.status.value} without a reason or a vendor call")
        _memory_within_total(d, n, add)
        _partitions(d, n, add)
    return out


def _memory_within_total(d: Device, n: int, add: Any) -> None:
    total = d.memory.total_bytes
    for name in ("used_bytes", "free_bytes"):
        r = getattr(d.memory, name)
        if total.ok and r.ok and isinstance(r.value, int) and isinstance(total.value, int) and r.value > total.value:
            add("units", n, f"memory.{name}", f"{r.value} is more than total_bytes {total.value}")


def _partitions(d: Device, n: int, add: Any) -> None:
    bus = d.pci.bus_id.get()
    seen: set[tuple[str, int]] = set()
    for i, p in enumerate(d.partitions):
        where = f"partitions[{i}]"
        if not p.kind or _bare(p.kind):
            add("partitions", n, f"{where}.kind", f"a partition needs a kind, got {p.kind!r}")
        if (p.kind, p.index) in seen:
            add("partitions", n, f"{where}.index", f"index {p.index} of kind {p.kind!r} appears twice")
        seen.add((p.kind, p.index))
        if bus is not None and p.parent_bus_id != bus:
            add("partitions", n, f"{where}.parent_bus_id",
                f"must be the parent's bus id {bus!r}, got {p.parent_bus_id!r}")
        elif bus is None and p.parent_bus_id is not None and not _BUS_ID.match(p.parent_bus_id):
            add("partitions", n, f"{where}.parent_bus_id", f"not a bus id: {p.parent_bus_id!r}")


def _static(d: Device) -> dict[str, Any]:
    """A device's static facts as JSON: everything but health and the memory that changes."""
    out: dict[str, Any] = to_dict(d)
    out.pop("health", None)
    for path in DYNAMIC_MEMORY:
        name = path.split(".", 1)[1]
        out["memory"].pop(name, None)
        out["memory"].get("readings", {}).pop(name, None)
    return out


def _diff(a: Any, b: Any, path: str = "") -> str | None:
    """The first path where two JSON values differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b), key=str):
            d = _diff(a.get(k), b.get(k), f"{path}.{k}" if path else str(k))
            if d:
                return d
        return None
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return f"{path}: {len(a)} items, then {len(b)}"
        return next((d for i, (x, y) in enumerate(zip(a, b, strict=True)) if (d := _diff(x, y, f"{path}[{i}]"))), None)
    return None if a == b else f"{path}: {a!r}, then {b!r}"


# --- replay ---------------------------------------------------------------------------------------
@attrs.frozen
class _Replay:
    snapshot: Snapshot
    poll: Snapshot
    again: Snapshot


@functools.lru_cache(maxsize=64)
def _replay(path: str, mtime: float, backend: str) -> _Replay:
    from gpuabst.machine import Machine

    with Machine([path], backends=[backend]) as m:
        snap = m.snapshot()
        polled = m.poll()
    with Machine([path], backends=[backend]) as m:
        again = m.snapshot()
    return _Replay(snap, polled, again)


def clear_replay_cache() -> None:
    """Forget cached replays (they are kept per fixture path and modification time)."""
    _replay.cache_clear()


def recorded_backends(path: str | os.PathLike[str]) -> list[str]:
    """The backends a fixture holds recordings of."""
    from gpuabst.fixtures import format as fixture_format

    return list(fixture_format.load(path).backends)


def check_fixture(path: str | os.PathLike[str], *, backends: Sequence[str] | None = None,
                  checks: Sequence[str] = CHECKS) -> list[Problem]:
    """Every contract problem of every backend recorded in the fixture (or those named); [] when it passes."""
    label = str(path)
    out: list[Problem] = []
    mtime = os.stat(path).st_mtime
    for name in backends or recorded_backends(path):
        try:
            rep = _replay(os.path.abspath(path), mtime, name)
        except Exception as e:  # the contract reports, it does not raise
            out.append(Problem("replay", label, name, None, None, f"replay raised {type(e).__name__}: {e}"))
            continue
        report = next((r for r in rep.snapshot.backends if r.name == name), None)
        if "replay" in checks and (report is None or not report.available or report.error):
            why = "not installed" if report is None else (report.error or report.reason)
            out.append(Problem("replay", label, name, None, None, f"did not run on its own fixture: {why}"))
        found = check_devices(rep.snapshot.devices, fixture=label, backend=name)
        found += [attrs.evolve(p, message=f"after poll: {p.message}")
                  for p in check_devices(rep.poll.devices, fixture=label, backend=name)
                  if p.check in ("types", "units", "reasons", "no_none")]
        out += [p for p in found if p.check in checks]
        if "deterministic" in checks:
            first = to_dict(rep.snapshot.devices), to_dict(rep.snapshot.backends)
            second = to_dict(rep.again.devices), to_dict(rep.again.backends)
            d = _diff(first, second)
            if d:
                out.append(Problem("deterministic", label, name, None, None, f"two replays differ at {d}"))
        if "poll" in checks:
            if len(rep.poll.devices) != len(rep.snapshot.devices):
                out.append(Problem("poll", label, name, None, None,
                                   f"poll gave {len(rep.poll.devices)} devices, the snapshot "
                                   f"{len(rep.snapshot.devices)}"))
            else:
                for n, (a, b) in enumerate(zip(rep.snapshot.devices, rep.poll.devices, strict=True)):
                    d = _diff(_static(a), _static(b))
                    if d:
                        out.append(Problem("poll", label, name, n, None, f"a static fact changed on poll: {d}"))
    return out


def format_problems(problems: Sequence[Problem]) -> str:
    return "\n".join(str(p) for p in problems)


# --- pytest helpers ------------------------------------------------------------------------------
def fixture_params(paths: Sequence[str | os.PathLike[str]], root: str | os.PathLike[str] | None = None) -> list[Any]:
    """``pytest.param(path, id=...)`` for each fixture path, ids relative to ``root``."""
    import pytest

    def ident(p: Path) -> str:
        try:
            return p.relative_to(root).as_posix() if root else p.name
        except ValueError:
            return p.as_posix()

    return [pytest.param(str(p), id=ident(Path(p))) for p in paths]


class BackendContractTests:
    """A base test class: one test per contract check, parametrized over ``fixture_paths``.

    Set ``fixture_paths`` (and optionally ``backends`` to check only some of the backends each
    fixture records). pytest collects the subclass like any test class.
    """

    fixture_paths: ClassVar[Sequence[str | os.PathLike[str]]] = ()
    backends: ClassVar[Sequence[str] | None] = None

    def pytest_generate_tests(self, metafunc: Any) -> None:
        if "contract_fixture" in metafunc.fixturenames:
            if not self.fixture_paths:
                raise ValueError(f"{type(self).__name__}.fixture_paths is empty: name the fixtures to check")
            metafunc.parametrize("contract_fixture", fixture_params(self.fixture_paths))

    def _check(self, path: str, check: str) -> None:
        problems = check_fixture(path, backends=self.backends, checks=(check,))
        assert not problems, f"{len(problems)} contract problem(s):\n{format_problems(problems)}"

    def test_replays(self, contract_fixture: str) -> None:
        self._check(contract_fixture, "replay")

    def test_types(self, contract_fixture: str) -> None:
        self._check(contract_fixture, "types")

    def test_units(self, contract_fixture: str) -> None:
        self._check(contract_fixture, "units")

    def test_readings_say_why(self, contract_fixture: str) -> None:
        self._check(contract_fixture, "reasons")

    def test_no_bare_none(self, contract_fixture: str) -> None:
        self._check(contract_fixture, "no_none")

    def test_partitions_linked_to_parent(self, contract_fixture: str) -> None:
        self._check(contract_fixture, "partitions")

    def test_deterministic_replay(self, contract_fixture: str) -> None:
        self._check(contract_fixture, "deterministic")

    def test_poll_keeps_static_facts(self, contract_fixture: str) -> None:
        self._check(contract_fixture, "poll")

"""The health policy: every threshold the checks use, with documented defaults.

Change it from Python (``HealthPolicy(expected_devices=8)`` or ``policy.replace(...)``) or from a
file (:func:`load_policy`: JSON, or YAML when PyYAML is installed) holding only the settings to
change::

    {"expected_devices": 8, "temperature_warn_margin_c": 8, "throttle_warn": ["hw_slowdown"]}

A setting that is unknown, of the wrong type or out of range raises :class:`PolicyError` with one
line naming the file, the setting and what was expected.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from gpuabst.errors import GpuabstError
from gpuabst.health.verdict import Level

MAX_POLICY_BYTES = 1024 * 1024
"""A policy file larger than this is refused unread (a policy is a few dozen settings)."""


class PolicyError(GpuabstError):
    """A health policy setting is unknown, of the wrong type or out of range."""


def _shown(value: Any) -> str:
    """``repr(value)`` for an error message, bounded: a YAML file's aliases can make a value whose full
    repr is exponentially long (a few lines of "billion laughs")."""
    import reprlib

    shorter = reprlib.Repr()
    shorter.maxlevel, shorter.maxlist, shorter.maxtuple, shorter.maxdict = 3, 4, 4, 4
    shorter.maxstring = shorter.maxother = shorter.maxlong = 80
    return shorter.repr(value)


def _number(name: str, allow_none: bool = False) -> Any:
    def convert(v: Any) -> float | None:
        if v is None and allow_none:
            return None
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v != v or v < 0:
            raise PolicyError(f"{name}: expected a number >= 0{' or null' if allow_none else ''}, got {_shown(v)}")
        return float(v)
    return convert


def _number_or_off(name: str) -> Any:
    return _number(name, allow_none=True)


def _count(name: str) -> Any:
    def convert(v: Any) -> int | None:
        if v is None:
            return None
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise PolicyError(f"{name}: expected a whole number >= 0 or null (off), got {_shown(v)}")
        return v
    return convert


def _level(name: str) -> Any:
    allowed = (Level.OK, Level.WARN, Level.FAIL)

    def convert(v: Any) -> Level:
        try:
            lv = Level(v)
        except ValueError:
            lv = None
        if lv not in allowed:
            raise PolicyError(f"{name}: expected one of ok, warn, fail, got {_shown(v)}")
        return lv
    return convert


def _names(name: str) -> Any:
    def convert(v: Any) -> tuple[str, ...]:
        if isinstance(v, str) or not isinstance(v, (list, tuple)) or not all(isinstance(x, str) for x in v):
            raise PolicyError(f"{name}: expected a list of names, got {_shown(v)}")
        return tuple(v)
    return convert


def _flag(name: str) -> Any:
    def convert(v: Any) -> bool:
        if not isinstance(v, bool):
            raise PolicyError(f"{name}: expected true or false, got {_shown(v)}")
        return v
    return convert


def _setting(kind: Any, default: Any, doc: str) -> Any:
    return attrs.field(default=default, metadata={"doc": doc}, converter=_Deferred(kind))


class _Deferred:
    """Binds a converter factory to the field name once attrs knows it (see ``_bind_names``)."""

    def __init__(self, factory: Any) -> None:
        self.factory = factory
        self.convert: Any = None

    def __call__(self, v: Any) -> Any:
        return self.convert(v)


def _bind_names(cls: type) -> type:
    for f in attrs.fields(cls):
        conv = f.converter
        if isinstance(conv, _Deferred):
            conv.convert = conv.factory(f.name)
    return cls


THERMAL_THROTTLE = ("sw_thermal_slowdown", "hw_thermal_slowdown")
"""NVML's thermal clock-event reasons (nvmlClocksEventReason*)."""
HARDWARE_THROTTLE = ("hw_slowdown", "hw_power_brake_slowdown")
"""NVML's hardware slowdown signals (heat, power supply, external power brake)."""
AMD_THERMAL_THROTTLE = (
    "temp_gpu", "temp_core", "temp_mem", "temp_edge", "temp_hotspot", "temp_soc", "temp_vr_gfx", "temp_vr_soc",
    "temp_vr_mem0", "temp_vr_mem1", "temp_liquid0", "temp_liquid1", "vrhot0", "vrhot1", "prochot_gfx")
"""The amdgpu driver's thermal and hot-signal throttler bits (as the amdsmi backend names them); its power
limiters (ppt*, spl, tdc_*, edc_*) cap power like NVML's sw_power_cap and are not problems."""


@_bind_names
@attrs.frozen(kw_only=True)
class HealthPolicy:
    """Thresholds for every health check. Each default is documented in docs/health.md."""

    temperature_warn_margin_c: float = _setting(
        _number, 5.0, "warn when the GPU temperature is within this many degrees C of the device's own "
        "slowdown threshold (nvmlDeviceGetTemperatureThreshold SLOWDOWN / amdsmi's critical limit)")
    temperature_fail_margin_c: float = _setting(
        _number, 0.0, "fail when within this many degrees C of the slowdown threshold (0: at or above it)")
    temperature_warn_c: float = _setting(
        _number, 85.0, "absolute warn temperature, used only when the device reports no slowdown threshold")
    temperature_fail_c: float = _setting(
        _number, 95.0, "absolute fail temperature, used only when the device reports no slowdown threshold")
    temperature_hotspot_warn_c: float = _setting(
        _number, 100.0, "warn at this hotspot (junction) temperature, where the device reports one (amdsmi HOTSPOT)")
    temperature_hotspot_fail_c: float = _setting(
        _number, 110.0, "fail at this hotspot (junction) temperature")
    temperature_memory_warn_c: float = _setting(
        _number, 90.0, "warn at this memory (HBM/VRAM) temperature, where the device reports one")
    temperature_memory_fail_c: float = _setting(
        _number, 95.0, "fail at this memory (HBM/VRAM) temperature")
    ecc_uncorrected_volatile_fail: int | None = _setting(
        _count, 1, "fail at this many uncorrectable ECC errors since the driver loaded (DCGM: any volatile DBE "
        "fails)")
    ecc_corrected_volatile_warn: int | None = _setting(
        _count, None, "warn at this many corrected ECC errors since the driver loaded (null: off)")
    ecc_uncorrected_aggregate_warn: int | None = _setting(
        _count, 1, "warn at this many uncorrectable ECC errors over the GPU's lifetime")
    ecc_deferred_warn: int | None = _setting(
        _count, 1, "warn at this many deferred (poisoned, not yet consumed) ECC errors (AMD)")
    require_ecc: bool = _setting(
        _flag, False, "warn when a GPU that supports ECC has it turned off")
    pending_retirement: Level = _setting(
        _level, Level.WARN, "level when DRAM pages are pending retirement (DCGM: warn)")
    retired_pages_warn: int | None = _setting(
        _count, 1, "warn at this many retired pages (single- plus double-bit)")
    retired_pages_fail: int | None = _setting(
        _count, 60, "fail at this many retired pages (DCGM_LIMIT_MAX_RETIRED_PAGES)")
    remapping_pending: Level = _setting(
        _level, Level.WARN, "level when a row remapping is pending a GPU reset")
    remapping_failure: Level = _setting(
        _level, Level.FAIL, "level when row remapping failed (DCGM: fail)")
    remapped_rows_uncorrected_warn: int | None = _setting(
        _count, 1, "warn at this many rows remapped after uncorrectable errors")
    throttle_warn: tuple[str, ...] = _setting(
        _names, THERMAL_THROTTLE + HARDWARE_THROTTLE + AMD_THERMAL_THROTTLE,
        "clock-event (throttle) reasons that warn; other reasons (gpu_idle, sw_power_cap...) are reported as ok")
    throttle_fail: tuple[str, ...] = _setting(
        _names, (), "clock-event (throttle) reasons that fail")
    power_over_limit_pct: float | None = _setting(
        _number_or_off, 5.0,
        "warn when power draw exceeds the enforced limit by more than this percentage (null: off)")
    pcie_width_drop: Level = _setting(
        _level, Level.WARN, "level when the PCIe link runs narrower than the device's maximum width")
    pcie_gen_drop_when_busy: Level = _setting(
        _level, Level.WARN, "level when the PCIe link runs below its maximum generation while the GPU is busy "
        "(a generation drop at idle is normal power saving and always ok)")
    pcie_busy_utilization_pct: float = _setting(
        _number, 10.0, "GPU utilisation (percent) above which the GPU counts as busy for the PCIe check")
    vendor_call_timeout: Level = _setting(
        _level, Level.WARN, "level when a vendor call for the device timed out")
    mig_without_instances: Level = _setting(
        _level, Level.WARN, "level when MIG is on but no MIG instance exists (no workload can use the GPU)")
    expected_devices: int | None = _setting(
        _count, None, "the number of GPUs the node must have; fewer fails ('expected 8, found 7'); null: not "
        "checked")
    expected_links: int | None = _setting(
        _count, None, "active GPU-to-GPU links (NVLink or xGMI) each GPU must have; fewer warns (null: not "
        "checked)")
    backend_failure: Level = _setting(
        _level, Level.WARN, "level when a backend that loaded failed while reading the node")

    def replace(self, **changes: Any) -> HealthPolicy:
        """A copy with ``changes`` applied, each validated (PolicyError on a bad one)."""
        unknown = sorted(set(changes) - set(settings()))
        if unknown:
            raise PolicyError(f"unknown health policy setting {unknown[0]!r} (known: {', '.join(settings())})")
        return attrs.evolve(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        """Every setting as JSON-ready data (what a policy file holds)."""
        out: dict[str, Any] = {}
        for f in attrs.fields(type(self)):
            v = getattr(self, f.name)
            out[f.name] = v.value if isinstance(v, Level) else list(v) if isinstance(v, tuple) else v
        return out


DEFAULT_POLICY = HealthPolicy()


def settings() -> dict[str, tuple[Any, str]]:
    """Each setting's name -> (default, description), in declaration order (for docs and --help)."""
    return {f.name: (f.default, f.metadata["doc"]) for f in attrs.fields(HealthPolicy)}


def policy_from_mapping(data: Any, *, base: HealthPolicy = DEFAULT_POLICY,
                        where: str = "health policy") -> HealthPolicy:
    """``base`` with the settings of ``data`` (a mapping) applied; PolicyError names ``where``."""
    if not isinstance(data, Mapping):
        raise PolicyError(f"{where}: expected an object of settings, got {type(data).__name__}")
    try:
        return base.replace(**{str(k): v for k, v in data.items()})
    except PolicyError as e:
        raise PolicyError(f"{where}: {e}") from None


def load_policy(path: str | os.PathLike[str], *, base: HealthPolicy = DEFAULT_POLICY) -> HealthPolicy:
    """Read a policy file: JSON, or YAML (``.yaml``/``.yml``, needs PyYAML). Only the settings in the
    file change; every other setting keeps its value in ``base``."""
    from gpuabst.safe_io import read_capped

    p = Path(path)
    raw = read_capped(p, MAX_POLICY_BYTES, "a health policy (JSON or YAML)", error=PolicyError)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise PolicyError(f"{p}: cannot read the health policy: not UTF-8 text ({e.reason})") from None
    if p.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise PolicyError(f"{p}: reading YAML needs PyYAML (pip install pyyaml); or write the policy "
                              "as JSON") from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise PolicyError(f"{p}: not valid YAML: {' '.join(str(e).split())}") from None
        except RecursionError:
            raise PolicyError(f"{p}: not a health policy: nested too deeply") from None
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise PolicyError(f"{p}: not valid JSON: {e}") from None
        except RecursionError:
            raise PolicyError(f"{p}: not a health policy: nested too deeply") from None
    return policy_from_mapping({} if data is None else data, base=base, where=str(p))

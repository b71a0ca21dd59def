"""The device checks: each reads a few fields of the vendor-neutral model and answers one question.

Checks read only :class:`~gpuabst.model.Device` fields, never a vendor library, so a check means
the same on every backend that fills the field (NVML today; amdsmi and OpenCL fill the same
fields). A missing input makes a check ``not_applicable`` when the vendor said the device has no
such feature (status ``unsupported`` / ``not_applicable``) and ``unknown`` otherwise (error,
timeout, no permission, not recorded); never ``ok``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from itertools import filterfalse
from operator import itemgetter
from typing import Any

from gpuabst.health.policy import HealthPolicy
from gpuabst.health.verdict import Check, Level, worst
from gpuabst.model import Device, field_values
from gpuabst.reading import UNSET, Reading, Status

_OK = Status.OK
ABSENT = (Status.UNSUPPORTED, Status.NOT_APPLICABLE)
"""Statuses meaning the device does not have the feature (the check does not apply)."""


def describe(r: Reading[Any]) -> str:
    """``"unsupported: NVML_ERROR_NOT_SUPPORTED"`` for a missing Reading."""
    return r.status.value + (f": {r.reason}" if r.reason else "")


def _is_unset(r: Reading[Any]) -> bool:
    """No backend filled this field at all (as opposed to a backend saying why it is missing)."""
    return r == UNSET


_RESET = {"nvidia": "nvidia-smi -r", "amd": "amd-smi reset -G"}


def _reset(d: Device) -> str:
    """The advice to reset the GPU, with the vendor's own command where there is one."""
    cmd = _RESET.get(d.vendor)
    return f"reset the GPU ({cmd})" if cmd else "reset the GPU"


def _num(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


class _Check:
    """Collects the inputs one check reads and its findings, then builds the :class:`Check`."""

    def __init__(self, system: str, name: str, dcgm: str | None = None) -> None:
        self.system, self.name, self.dcgm = system, name, dcgm
        self.inputs: dict[str, Any] = {}
        self.calls: list[str] = []
        self.findings: list[tuple[Level, str]] = []

    def read(self, name: str, r: Reading[Any]) -> Reading[Any]:
        value, status, _, call, _ = r  # a Reading is a tuple: one unpacking instead of four properties
        self.inputs[name] = value if status is _OK else describe(r)
        if call and call not in self.calls:
            self.calls.append(call)
        return r

    def find(self, level: Level, text: str) -> None:
        if level is not Level.OK:
            self.findings.append((level, text))

    def done(self, ok_text: str) -> Check:
        """Worst finding wins; every finding is kept in the reason, most severe first."""
        if not self.findings:
            return self._make(Level.OK, ok_text)
        ordered = sorted(self.findings, key=lambda f: -f[0].severity)
        return self._make(worst(f[0] for f in ordered), "; ".join(t for _, t in ordered))

    def missing(self, what: str, *readings: Reading[Any]) -> Check:
        """Unknown, or not applicable when every input says the device lacks the feature."""
        if readings and all(r.status in ABSENT for r in readings):
            return self._make(Level.NOT_APPLICABLE, f"{what}: {describe(readings[0])}")
        why = "; ".join(sorted({describe(r) for r in readings if r.status not in ABSENT})) or "no input"
        return self._make(Level.UNKNOWN, f"cannot tell {what}: {why}")

    def _make(self, level: Level, reason: str) -> Check:
        return Check(self.system, self.name, level, reason, dict(self.inputs), list(self.calls), self.dcgm)


# --- presence and driver ------------------------------------------------------------------------
def device_lost(d: Device, p: HealthPolicy) -> Check:
    """Whether the GPU still answers its driver (NVML_ERROR_GPU_IS_LOST, amdsmi's equivalents)."""
    c = _Check("presence", "device_lost", "DCGM_HEALTH_WATCH_DRIVER (Xid 79, fallen off the bus)")
    r = c.read("health.device_lost", d.health.device_lost)
    if not r.ok:
        return c.missing("whether the GPU still answers", r)
    if r.value:
        c.find(Level.FAIL, f"the GPU has fallen off the bus (GPU is lost): drain the node, then {_reset(d)} or "
                           "reboot; the kernel log says why (NVIDIA: Xid 79)")
    return c.done("the GPU answers its driver")


def _is_model(v: Any) -> bool:
    return getattr(type(v), "__attrs_attrs__", None) is not None


def walk_readings(obj: Any, prefix: str = "") -> Iterator[tuple[str, Reading[Any]]]:
    """Every Reading in a Device (identity, PCI, memory, capabilities, health, partitions)."""
    names, get = field_values(type(obj))
    for name, v in zip(names, get(obj), strict=True):
        if isinstance(v, Reading):
            yield prefix + name, v
        elif _is_model(v):
            yield from walk_readings(v, f"{prefix}{name}.")
        elif isinstance(v, list):
            for i, item in enumerate(v):
                if _is_model(item):
                    yield from walk_readings(item, f"{prefix}{name}[{i}].")


_is_reading: Callable[[Any], bool] = Reading.__instancecheck__
"""``isinstance(v, Reading)`` as a one-argument function, for ``filter`` (which then loops in C)."""
_status_of, _reason_of = itemgetter(1), itemgetter(4)


def readings_in(obj: Any) -> list[Reading[Any]]:
    """The Readings :func:`walk_readings` finds, without their names (in another order): for checks
    that look at every Reading of a device on every poll and name only the few that fail."""
    out: list[Reading[Any]] = []
    todo = [obj]
    while todo:
        o = todo.pop()
        values = field_values(type(o))[1](o)
        readings = list(filter(_is_reading, values))
        out += readings
        if len(readings) < len(values):  # nested model objects, or lists of them
            for v in filterfalse(_is_reading, values):
                if isinstance(v, list):
                    todo.extend(filter(_is_model, v))
                elif _is_model(v):
                    todo.append(v)
    return out


_DRIVER_FAULTS = ("CORRUPTED_INFOROM", "RESET_REQUIRED")


def _driver_faults(d: Device, readings: list[Reading[Any]]) -> list[tuple[str, Reading[Any]]]:
    """The Readings of ``d`` that timed out or whose reason names a driver fault, each labelled by its
    vendor call, else by its field (fields are named only where such a Reading has no call). All of
    them are looked at once first: on almost every poll there is none."""
    reasons = "\n".join(filter(None, map(_reason_of, readings)))
    if Status.TIMEOUT not in map(_status_of, readings) and not any(f in reasons for f in _DRIVER_FAULTS):
        return []
    failed = [r for r in readings if r[1] is Status.TIMEOUT or any(f in (r[4] or "") for f in _DRIVER_FAULTS)]
    if any(r.call is None for r in failed):
        return [(r.call or name, r) for name, r in walk_readings(d)]
    return [(r.call or "", r) for r in failed]


def vendor_calls(d: Device, p: HealthPolicy) -> Check:
    """Whether the driver answered every vendor call: timeouts, a corrupted InfoROM, a pending reset."""
    c = _Check("driver", "vendor_calls", "DCGM_HEALTH_WATCH_INFOROM (corrupted InfoROM); beyond DCGM: hung calls")
    readings = readings_in(d)
    labelled = _driver_faults(d, readings)
    timeouts = sorted({label for label, r in labelled if r.status is Status.TIMEOUT})
    inforom = sorted({label for label, r in labelled if "CORRUPTED_INFOROM" in (r.reason or "")})
    reset = sorted({label for label, r in labelled if "RESET_REQUIRED" in (r.reason or "")})
    c.inputs["timed_out"] = timeouts
    c.inputs["answered"] = list(map(_status_of, readings)).count(Status.OK)
    if timeouts:
        c.find(p.vendor_call_timeout, f"{_plural(len(timeouts), 'vendor call')} timed out ({', '.join(timeouts[:4])}"
                                      f"{', ...' if len(timeouts) > 4 else ''}): the driver is not answering for "
                                      "this GPU; check the kernel log, then reset the GPU")
    if inforom:
        c.find(Level.WARN, f"the InfoROM is corrupted ({', '.join(inforom[:2])}): the board's stored configuration "
                           "and error records cannot be trusted; have the board repaired or replaced")
    if reset:
        c.find(Level.FAIL, f"the driver says the GPU needs a reset ({', '.join(reset[:2])}): drain it and reset it")
    if not c.findings and not c.inputs["answered"]:
        return c.missing("whether the driver answers: no vendor call for this device answered")
    return c.done("no vendor call timed out or reported a driver fault")


# --- memory: ECC --------------------------------------------------------------------------------
def ecc_volatile(d: Device, p: HealthPolicy) -> Check:
    """ECC errors since the driver loaded (nvmlDeviceGetTotalEccErrors VOLATILE; amdsmi ecc count)."""
    c = _Check("memory", "ecc_volatile", "DCGM_HEALTH_WATCH_MEM (volatile DBE fails)")
    h = d.health
    unc = c.read("health.ecc_uncorrected_volatile", h.ecc_uncorrected_volatile)
    cor = c.read("health.ecc_corrected_volatile", h.ecc_corrected_volatile)
    deferred = h.ecc_deferred
    if not _is_unset(deferred):
        c.read("health.ecc_deferred", deferred)
    if not unc.ok:
        return c.missing("the uncorrectable ECC error count", unc)
    n = int(unc.value or 0)
    if p.ecc_uncorrected_volatile_fail is not None and n >= max(p.ecc_uncorrected_volatile_fail, 1):
        c.find(Level.FAIL, f"{_plural(n, 'uncorrectable ECC error')} since the driver loaded: drain the GPU and "
                           "reset it; replace it if they come back")
    warn_at = p.ecc_corrected_volatile_warn
    if cor.ok and warn_at is not None and int(cor.value or 0) >= max(warn_at, 1):
        c.find(Level.WARN, f"{_plural(int(cor.value or 0), 'corrected ECC error')} since the driver loaded: the "
                           "memory is wearing; watch for uncorrectable errors")
    if deferred.ok and p.ecc_deferred_warn is not None and int(deferred.value or 0) >= max(p.ecc_deferred_warn, 1):
        c.find(Level.WARN, f"{_plural(int(deferred.value or 0), 'deferred ECC error')} (poisoned data not yet "
                           "consumed): reset the GPU before the next workload")
    corrected = f", {int(cor.value or 0)} corrected" if cor.ok else ""
    count = _plural(n, "uncorrectable ECC error") if n else "no uncorrectable ECC error"
    return c.done(f"{count} since the driver loaded{corrected}")


def ecc_lifetime(d: Device, p: HealthPolicy) -> Check:
    """ECC errors over the GPU's lifetime (nvmlDeviceGetTotalEccErrors AGGREGATE)."""
    c = _Check("memory", "ecc_lifetime", None)
    unc = c.read("health.ecc_uncorrected_aggregate", d.health.ecc_uncorrected_aggregate)
    cor = c.read("health.ecc_corrected_aggregate", d.health.ecc_corrected_aggregate)
    if not unc.ok:
        return c.missing("the lifetime uncorrectable ECC error count", unc)
    n = int(unc.value or 0)
    corrected = f" ({int(cor.value or 0)} corrected)" if cor.ok else ""
    if p.ecc_uncorrected_aggregate_warn is not None and n >= max(p.ecc_uncorrected_aggregate_warn, 1):
        c.find(Level.WARN, f"{_plural(n, 'uncorrectable ECC error')} over the GPU's lifetime{corrected}: its memory "
                           "has failed before; check its retired pages or remapped rows and watch for new errors")
    count = _plural(n, "uncorrectable ECC error") if n else "no uncorrectable ECC error"
    return c.done(f"{count} over the GPU's lifetime{corrected}")


def ecc_mode(d: Device, p: HealthPolicy) -> Check:
    """ECC on, off, or changing at the next reset (nvmlDeviceGetEccMode current/pending)."""
    c = _Check("memory", "ecc_mode", None)
    cur = c.read("capabilities.ecc_enabled", d.capabilities.ecc_enabled)
    pend = c.read("capabilities.ecc_pending_enabled", d.capabilities.ecc_pending_enabled)
    if not cur.ok:
        return c.missing("whether ECC is on", cur)
    if pend.ok and pend.value != cur.value:
        c.find(Level.WARN, f"ECC turns {'on' if pend.value else 'off'} at the next GPU reset: reset the GPU to "
                           "apply it")
    if cur.value is False and p.require_ecc:
        c.find(Level.WARN, "ECC is off and the policy requires it: turn it on"
                           + (" (nvidia-smi -e 1)" if d.vendor == "nvidia" else "") + f", then {_reset(d)}")
    return c.done("ECC is on" if cur.value else "ECC is off")


# --- retired pages and row remapping -------------------------------------------------------------
def retired_pages(d: Device, p: HealthPolicy) -> Check:
    """Pages retired after ECC errors, and pending retirements (nvmlDeviceGetRetiredPages,
    nvmlDeviceGetRetiredPagesPendingStatus; amdsmi bad pages)."""
    c = _Check("retirement", "pages", "DCGM_HEALTH_WATCH_MEM (pending retirement warns; 60 retired pages fail)")
    h = d.health
    sbe = c.read("health.retired_pages_single_bit", h.retired_pages_single_bit)
    dbe = c.read("health.retired_pages_double_bit", h.retired_pages_double_bit)
    pending = c.read("health.retired_pages_pending", h.retired_pages_pending)
    if not (sbe.ok or dbe.ok or pending.ok):
        if _remaps_rows(d):
            return c._make(Level.NOT_APPLICABLE, "this GPU remaps memory rows instead of retiring pages "
                                                 f"(retired pages: {describe(sbe)})")
        if _no_ecc_memory(d):
            return c._make(Level.NOT_APPLICABLE, f"this GPU has no ECC memory to retire pages of "
                                                 f"({describe(d.capabilities.ecc_enabled)})")
        return c.missing("whether memory pages were retired", sbe, dbe, pending)
    s, b = int(sbe.get(0)), int(dbe.get(0))
    total = s + b
    parts = [f"{s} single-bit" if sbe.ok else None, f"{b} double-bit" if dbe.ok else None]
    detail = ", ".join(x for x in parts if x)
    if pending.ok and pending.value:
        so_far = f" ({_plural(total, 'page')} retired so far: {detail})" if (sbe.ok or dbe.ok) else ""
        c.find(p.pending_retirement, f"DRAM pages are pending retirement{so_far}: {_reset(d)} so the driver "
                                     "retires them")
    if p.retired_pages_fail is not None and total >= max(p.retired_pages_fail, 1):
        c.find(Level.FAIL, f"{_plural(total, 'DRAM page')} retired ({detail}), at or past the limit of "
                           f"{p.retired_pages_fail}: replace the GPU")
    elif p.retired_pages_warn is not None and total >= max(p.retired_pages_warn, 1):
        limit = f"; at {p.retired_pages_fail} the GPU should be replaced" if p.retired_pages_fail else ""
        c.find(Level.WARN, f"{_plural(total, 'DRAM page')} retired ({detail}): the memory is degrading; watch the "
                           f"count{limit}")
    if not (sbe.ok or dbe.ok) and not (sbe.status in ABSENT and dbe.status in ABSENT):
        c.find(Level.UNKNOWN, f"retired page counts not read ({describe(sbe)})")
    elif not pending.ok and pending.status not in ABSENT:
        c.find(Level.UNKNOWN, f"pending retirement not read ({describe(pending)})")
    if not (sbe.ok or dbe.ok):
        return c.done("no page pending retirement")
    return c.done(f"{_plural(total, 'page')} retired ({detail}), none pending" if pending.ok
                  else f"{_plural(total, 'page')} retired ({detail})")


def _no_ecc_memory(d: Device) -> bool:
    """The vendor said the device has no ECC (so no page retirement or row remapping either)."""
    return d.capabilities.ecc_enabled.status in ABSENT


def _retires_pages(d: Device) -> bool:
    h = d.health
    return h.retired_pages_single_bit.ok or h.retired_pages_double_bit.ok or h.retired_pages_pending.ok


def _remaps_rows(d: Device) -> bool:
    h = d.health
    return (h.remapped_rows_corrected.ok or h.remapped_rows_uncorrected.ok or h.remapped_rows_pending.ok
            or h.remapped_rows_failure.ok)


def remapped_rows(d: Device, p: HealthPolicy) -> Check:
    """Row remapping on Ampere and later (nvmlDeviceGetRemappedRows: corrected, uncorrected, pending,
    failure)."""
    c = _Check("retirement", "rows", "DCGM_HEALTH_WATCH_MEM (row remap failure fails)")
    h = d.health
    cor = c.read("health.remapped_rows_corrected", h.remapped_rows_corrected)
    unc = c.read("health.remapped_rows_uncorrected", h.remapped_rows_uncorrected)
    pending = c.read("health.remapped_rows_pending", h.remapped_rows_pending)
    failure = c.read("health.remapped_rows_failure", h.remapped_rows_failure)
    if not (cor.ok or unc.ok or pending.ok or failure.ok):  # no generator: one closed early raises inside
        if _retires_pages(d):
            return c._make(Level.NOT_APPLICABLE, "this GPU retires memory pages instead of remapping rows "
                                                 f"(remapped rows: {describe(failure)})")
        if _no_ecc_memory(d):
            return c._make(Level.NOT_APPLICABLE, f"this GPU has no ECC memory to remap rows of "
                                                 f"({describe(d.capabilities.ecc_enabled)})")
        return c.missing("whether memory rows were remapped", cor, unc, pending, failure)
    if failure.ok and failure.value:
        c.find(p.remapping_failure, "row remapping failed: a failing memory row had no spare left; replace the GPU")
    if pending.ok and pending.value:
        c.find(p.remapping_pending, f"a memory row remapping is pending: {_reset(d)} to apply it")
    u, k = int(unc.get(0)), int(cor.get(0))
    if unc.ok and p.remapped_rows_uncorrected_warn is not None and u >= max(p.remapped_rows_uncorrected_warn, 1):
        c.find(Level.WARN, f"{_plural(u, 'memory row')} remapped after uncorrectable errors ({k} after corrected "
                           "ones): the memory is degrading; watch the count")
    if not failure.ok and failure.status not in ABSENT:
        c.find(Level.UNKNOWN, f"row remapping failure not read ({describe(failure)})")
    return c.done(f"{_plural(u + k, 'row')} remapped ({u} uncorrectable, {k} correctable), none pending")


# --- thermal, clocks, power ----------------------------------------------------------------------
def temperature(d: Device, p: HealthPolicy) -> Check:
    """GPU temperature against the device's own slowdown threshold, and hotspot and memory temperatures
    against the policy's limits (nvmlDeviceGetTemperature, nvmlDeviceGetTemperatureThreshold SLOWDOWN;
    amdsmi_get_temp_metric EDGE/HOTSPOT/VRAM CURRENT and EDGE CRITICAL)."""
    c = _Check("thermal", "temperature", "DCGM_HEALTH_WATCH_THERMAL (beyond: margin to the slowdown threshold)")
    h = d.health
    t = c.read("health.temperature_c", h.temperature_c)
    extra = [(name, label, r, warn_c, fail_c) for name, label, r, warn_c, fail_c in (
        ("health.temperature_hotspot_c", "hotspot", h.temperature_hotspot_c, p.temperature_hotspot_warn_c,
         p.temperature_hotspot_fail_c),
        ("health.temperature_memory_c", "memory", h.temperature_memory_c, p.temperature_memory_warn_c,
         p.temperature_memory_fail_c)) if not _is_unset(r)]
    for name, _, r, _, _ in extra:
        c.read(name, r)
    advice = "check fans, airflow and inlet temperature"
    texts: list[str] = []
    if t.ok:
        slow = c.read("health.temperature_slowdown_c", h.temperature_slowdown_c)
        temp = float(t.value or 0)
        if slow.ok:
            limit = float(slow.value or 0)
            fail_at, warn_at = limit - p.temperature_fail_margin_c, limit - p.temperature_warn_margin_c
            below = f"{_num(limit - temp)} C below its slowdown threshold {_num(limit)} C"
            if temp >= fail_at:
                where = "at or above" if temp >= limit else f"{_num(limit - temp)} C below"
                c.find(Level.FAIL, f"GPU at {_num(temp)} C, {where} its slowdown threshold {_num(limit)} C: the GPU "
                                   f"is slowing itself down to cool; {advice}")
            elif temp >= warn_at:
                c.find(Level.WARN, f"GPU at {_num(temp)} C, {below}: {advice}")
            texts.append(f"GPU at {_num(temp)} C, {below}")
        else:
            limits = (f"the device reports no slowdown threshold ({describe(slow)}); the policy warns at "
                      f"{_num(p.temperature_warn_c)} C and fails at {_num(p.temperature_fail_c)} C")
            if temp >= p.temperature_fail_c:
                c.find(Level.FAIL, f"GPU at {_num(temp)} C ({limits}): {advice}")
            elif temp >= p.temperature_warn_c:
                c.find(Level.WARN, f"GPU at {_num(temp)} C ({limits}): {advice}")
            texts.append(f"GPU at {_num(temp)} C ({limits})")
    for _, label, r, warn_c, fail_c in extra:
        if not r.ok:
            continue
        v = float(r.value or 0)
        if v >= fail_c:
            c.find(Level.FAIL, f"{label} at {_num(v)} C, at or above the policy's {_num(fail_c)} C: {advice}")
        elif v >= warn_c:
            c.find(Level.WARN, f"{label} at {_num(v)} C, within {_num(fail_c - v)} C of the policy's {_num(fail_c)} C:"
                               f" {advice}")
        texts.append(f"{label} at {_num(v)} C")
    if not texts:
        return c.missing("the GPU temperature", t, *(r for _, _, r, _, _ in extra))
    return c.done("; ".join(texts))


_THROTTLE_ADVICE = {
    "sw_thermal_slowdown": "the driver is slowing the GPU to cool it: check cooling",
    "hw_thermal_slowdown": "the hardware is slowing the GPU because it is too hot: check cooling",
    "hw_slowdown": "the hardware slowdown signal is asserted (heat or power supply): check cooling and the PSU",
    "hw_power_brake_slowdown": "the external power brake is asserted: check the power supply",
    "vrhot": "a voltage regulator is too hot: check cooling and power delivery",
    "prochot": "the PROCHOT signal is asserted (heat or power): check cooling and the power supply",
    "temp_": "the GPU is slowing itself down because a sensor is too hot: check cooling",
}


def _throttle_advice(reason: str) -> str:
    if reason in _THROTTLE_ADVICE:
        return _THROTTLE_ADVICE[reason]
    for prefix in ("vrhot", "prochot", "temp_"):
        if reason.startswith(prefix):
            return _THROTTLE_ADVICE[prefix]
    return "see the vendor's documentation of this reason"


def throttling(d: Device, p: HealthPolicy) -> Check:
    """Why the clocks are held down now (nvmlDeviceGetCurrentClocksEventReasons; amdsmi throttle status)."""
    c = _Check("clocks", "throttle", "DCGM_HEALTH_WATCH_THERMAL / DCGM_HEALTH_WATCH_POWER (violation time)")
    r = c.read("health.throttle_reasons", d.health.throttle_reasons)
    if not r.ok:
        return c.missing("why the clocks are held down", r)
    active = list(r.value or [])
    for level, names in ((Level.FAIL, p.throttle_fail), (Level.WARN, p.throttle_warn)):
        hit = [a for a in active if a in names]
        if hit:
            advice = "; ".join(dict.fromkeys(_throttle_advice(a) for a in hit))
            c.find(level, f"clocks held down by {', '.join(hit)}: {advice}")
    return c.done(f"clock-event reasons: {', '.join(active)}" if active else "clocks not held down")


def power(d: Device, p: HealthPolicy) -> Check:
    """Power draw readable and within the enforced limit (nvmlDeviceGetPowerUsage,
    nvmlDeviceGetEnforcedPowerLimit; amdsmi power info)."""
    c = _Check("power", "draw", "DCGM_HEALTH_WATCH_POWER (unreadable power warns)")
    draw = c.read("health.power_draw_w", d.health.power_draw_w)
    limit = c.read("health.power_limit_enforced_w", d.health.power_limit_enforced_w)
    if not draw.ok:
        if draw.status is Status.ERROR:
            c.find(Level.WARN, f"the power draw cannot be read ({describe(draw)}): the power sensor or its driver "
                               "is failing")
            return c.done("")
        return c.missing("the power draw", draw)
    w = float(draw.value or 0)
    if not limit.ok:
        return c.done(f"drawing {_num(w)} W (enforced limit not read: {describe(limit)})")
    lim = float(limit.value or 0)
    if p.power_over_limit_pct is not None and lim > 0 and w > lim * (1 + p.power_over_limit_pct / 100):
        c.find(Level.WARN, f"drawing {_num(w)} W, over its enforced limit of {_num(lim)} W: check the power limit "
                           "and the power supply")
    return c.done(f"drawing {_num(w)} W of its {_num(lim)} W limit")


# --- PCIe ----------------------------------------------------------------------------------------
def pcie_link(d: Device, p: HealthPolicy) -> Check:
    """The PCIe link's current generation and width against the maximum (nvmlDeviceGetCurrPcieLink*,
    nvmlDeviceGetMaxPcieLink*; amdsmi pcie info). A generation drop at idle is power saving."""
    c = _Check("pcie", "link", "beyond DCGM (DCGM_HEALTH_WATCH_PCIE watches the replay rate, not read here)")
    h, cap = d.health, d.capabilities
    gen = c.read("health.pcie_current_generation", h.pcie_current_generation)
    width = c.read("health.pcie_current_width", h.pcie_current_width)
    max_gen = c.read("capabilities.pcie_max_generation", cap.pcie_max_generation)
    max_width = c.read("capabilities.pcie_max_width", cap.pcie_max_width)
    util = c.read("health.utilization_gpu_pct", h.utilization_gpu_pct)
    if not (width.ok and max_width.ok):
        degraded = c.read("health.pcie_link_degraded", h.pcie_link_degraded)
        if degraded.ok:
            if degraded.value:
                c.find(Level.WARN, "the PCIe link runs below its maximum (generation and width not reported, so an "
                                   "idle power-saving drop cannot be told apart): check the slot")
            return c.done("the PCIe link runs at its maximum")
        return c.missing("the PCIe link width", width, max_width)
    link = f"gen{gen.value} x{width.value}" if gen.ok else f"x{width.value}"
    best = f"gen{max_gen.value} x{max_width.value}" if max_gen.ok else f"x{max_width.value}"
    if int(width.value or 0) < int(max_width.value or 0):
        c.find(p.pcie_width_drop, f"PCIe link at {link}, capable of {best}: the link trained narrower than it can; "
                                  "reseat the GPU, check the riser and slot")
    if gen.ok and max_gen.ok and int(gen.value or 0) < int(max_gen.value or 0):
        if util.ok and float(util.value or 0) > p.pcie_busy_utilization_pct:
            c.find(p.pcie_gen_drop_when_busy, f"PCIe link at {link} while {_num(util.value)}% busy, capable of {best}: "
                                              "check the slot, riser and BIOS PCIe settings")
        elif not c.findings:
            idle = "idle" if util.ok else "possibly idle (utilisation not read)"
            return c.done(f"PCIe link at {link}, capable of {best}: a lower generation while {idle} is normal "
                          "power saving")
    if not gen.ok and gen.status not in ABSENT:
        c.find(Level.UNKNOWN, f"PCIe link generation not read ({describe(gen)})")
    return c.done(f"PCIe link at {link}, its maximum")


# --- partitions and NVLink ------------------------------------------------------------------------
def partitions(d: Device, p: HealthPolicy) -> Check:
    """MIG mode and instances (nvmlDeviceGetMigMode, nvmlDeviceGetMigDeviceHandleByIndex); AMD compute and
    memory partition modes (amdsmi_get_gpu_compute_partition, amdsmi_get_gpu_memory_partition)."""
    c = _Check("partitions", "layout", None)
    cap = d.capabilities
    mig, pend, mode, mem_mode = (cap.mig_enabled, cap.mig_pending_enabled, cap.compute_partition_mode,
                                 cap.memory_partition_mode)
    for name, r in (("capabilities.mig_enabled", mig), ("capabilities.mig_pending_enabled", pend),
                    ("capabilities.compute_partition_mode", mode), ("capabilities.memory_partition_mode", mem_mode)):
        if not _is_unset(r):
            c.read(name, r)
    c.inputs["partitions"] = len(d.partitions)
    if mig.ok:
        if pend.ok and pend.value != mig.value:
            c.find(Level.WARN, f"MIG turns {'on' if pend.value else 'off'} at the next GPU reset: reset the GPU to "
                               "apply it")
        if mig.value and not d.partitions:
            c.find(p.mig_without_instances, "MIG is on but no MIG instance exists: no workload can use this GPU; "
                                            "create instances (nvidia-smi mig -cgi ... -C) or turn MIG off")
        if mig.value:
            profiles = sorted({str(x.profile.value) for x in d.partitions if x.profile.ok})
            return c.done(f"MIG on with {_plural(len(d.partitions), 'instance')}"
                          + (f" ({', '.join(profiles)})" if profiles else ""))
        return c.done("MIG off")
    if mode.ok:
        memory = f", memory partition mode {mem_mode.value}" if mem_mode.ok else ""
        return c.done(f"compute partition mode {mode.value}{memory}, {_plural(len(d.partitions), 'partition')}")
    reported = [r for r in (mig, mode) if not _is_unset(r)]
    return c.missing("the partition layout", *(reported or [mig]))


def links(d: Device, p: HealthPolicy) -> Check:
    """Active GPU-to-GPU links (NVLink: nvmlDeviceGetNvLinkState; xGMI: amdsmi_get_link_metrics) against
    the policy's expected count."""
    c = _Check("interconnect", "links", "DCGM_HEALTH_WATCH_NVLINK (link down; error counters not read here)")
    nv, xgmi = d.capabilities.nvlink_active_links, d.capabilities.xgmi_links
    r = c.read("capabilities.xgmi_links", xgmi) if xgmi.ok or _is_unset(nv) else c.read(
        "capabilities.nvlink_active_links", nv)
    kind = "xGMI" if r is xgmi else "NVLink"
    if p.expected_links is None:
        have = f"{_plural(int(r.value or 0), kind + ' link')} active" if r.ok else f"{kind}: {describe(r)}"
        return c._make(Level.NOT_APPLICABLE, f"{have}; not checked: no expected count in the policy "
                                             "(expected_links)")
    if not r.ok:
        return c.missing(f"how many {kind} links are up", r)
    if int(r.value or 0) < p.expected_links:
        c.find(Level.WARN, f"{r.value} of {p.expected_links} {kind} links active: check the bridge or baseboard "
                           f"({'nvidia-smi nvlink -s' if kind == 'NVLink' else 'amd-smi topology'})")
    return c.done(f"{_plural(int(r.value or 0), kind + ' link')} active")


DEVICE_CHECKS: list[Callable[[Device, HealthPolicy], Check]] = [
    device_lost, vendor_calls, ecc_volatile, ecc_lifetime, ecc_mode, retired_pages, remapped_rows,
    temperature, throttling, power, pcie_link, partitions, links,
]
"""Every device check, in the order they are reported."""

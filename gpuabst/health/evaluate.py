"""From readings to verdicts: every device check on every GPU, then the node's own checks."""

from __future__ import annotations

from gpuabst.health.checks import DEVICE_CHECKS, _Check
from gpuabst.health.policy import DEFAULT_POLICY, HealthPolicy
from gpuabst.health.verdict import Check, DeviceHealth, Level, NodeHealth, worst
from gpuabst.model import BackendReport, Device, Snapshot
from gpuabst.reading import UNSET


def evaluate_device(device: Device, policy: HealthPolicy = DEFAULT_POLICY) -> DeviceHealth:
    """Run every check on one device. Its level is the worst check's; when no check applies at all
    the device is ``unknown`` (there is nothing to call it healthy on)."""
    checks: list[Check] = []
    for fn in DEVICE_CHECKS:
        try:
            checks.append(fn(device, policy))
        except Exception as e:  # a check's own bug must not hide the other verdicts
            name = fn.__name__
            checks.append(Check("internal", name, Level.UNKNOWN, f"the {name} check failed: {type(e).__name__}: {e}"))
    return _verdict(device, checks)


def _verdict(device: Device, checks: list[Check]) -> DeviceHealth:
    counted = [c for c in checks if c.level is not Level.NOT_APPLICABLE]
    level = worst(c.level for c in counted) if counted else Level.UNKNOWN
    if not counted:
        summary = "no health check applies: the backends reported no health reading for this device"
    elif level is Level.OK:
        summary = f"all {len(counted)} checks ok"
    else:
        summary = "; ".join(c.reason for c in sorted(counted, key=lambda c: -c.level.severity) if c.level is level)
    return DeviceHealth(
        index=device.index, vendor=device.vendor, level=level, summary=summary,
        name=device.name.get(), model=device.model.get(), uuid=device.uuid.get(), bus_id=device.pci.bus_id.get(),
        checks=checks)


def device_count(found: int, backends: list[BackendReport], policy: HealthPolicy) -> Check:
    """The node has the GPUs it should ("expected 8, found 7" fails)."""
    c = _Check("node", "device_count", "beyond DCGM (node inventory)")
    c.inputs["found"] = found
    c.inputs["expected"] = policy.expected_devices
    failed = "; ".join(f"{r.name}: {r.error}" for r in backends if r.error)
    why = "; ".join(f"{r.name}: {r.reason or r.error}" for r in backends if not r.available and (r.reason or r.error))
    if policy.expected_devices is None:
        if found == 0:
            return c._make(Level.UNKNOWN, "no GPU found" + (f" ({why})" if why else ""))
        return c._make(Level.NOT_APPLICABLE, f"found {found} GPU{'s' if found != 1 else ''}; no expected count in "
                                             "the policy (expected_devices)")
    if found < policy.expected_devices:
        c.find(Level.FAIL, f"expected {policy.expected_devices} GPUs, found {found}: a GPU is missing from the bus or "
                           "its driver; check lspci and the kernel log" + (f" ({failed})" if failed else ""))
    elif found > policy.expected_devices:
        c.find(Level.WARN, f"expected {policy.expected_devices} GPUs, found {found}: update expected_devices")
    return c.done(f"expected {policy.expected_devices} GPUs, found {found}")


def backend_failures(backends: list[BackendReport], policy: HealthPolicy) -> Check:
    """No backend that loaded failed while reading (one that is merely not installed is fine)."""
    c = _Check("node", "backends", None)
    failed = [r for r in backends if r.error]
    c.inputs["available"] = [r.name for r in backends if r.available]
    c.inputs["failed"] = [r.name for r in failed]
    for r in failed:
        c.find(policy.backend_failure, f"backend {r.name} failed: {r.error}: the GPUs it sees are not reported")
    if not failed and not any([r.available for r in backends]):  # a list: a generator closed early raises inside
        why = "; ".join(f"{r.name}: {r.reason}" for r in backends) or "no backend is installed"
        return c._make(Level.UNKNOWN, f"no backend can read this node ({why})")
    return c.done(f"backends reading: {', '.join(c.inputs['available'])}")


def _driverless(devices: list[Device], verdicts: list[DeviceHealth]) -> list[DeviceHealth]:
    """A GPU that only a bus-level backend sees (no driver backend filled ``device_lost``) while the
    driver reports other GPUs of the same vendor: the driver has lost it, so presence fails."""
    answering: dict[str, int] = {}
    for d in devices:
        if d.health.device_lost.ok:
            answering[d.vendor] = answering.get(d.vendor, 0) + 1
    out = []
    for d, v in zip(devices, verdicts, strict=True):
        others = answering.get(d.vendor, 0)
        if d.health.device_lost == UNSET and others and d.device_type == "gpu":
            c = _Check("presence", "device_lost", "DCGM_HEALTH_WATCH_DRIVER (Xid 79, fallen off the bus)")
            c.inputs["sources"] = list(d.sources)
            c.find(Level.FAIL, f"the GPU is on the PCI bus (seen by {', '.join(d.sources) or '?'}) but its driver "
                               f"does not report it, while it reports {others} other {d.vendor} GPU"
                               f"{'s' if others != 1 else ''}: check the kernel log, then reset or reseat the GPU")
            checks = [c.done("") if x.id == "presence.device_lost" else x for x in v.checks]
            v = _verdict(d, checks)
        out.append(v)
    return out


def evaluate(snapshot: Snapshot, policy: HealthPolicy = DEFAULT_POLICY, *, include_all: bool = False) -> NodeHealth:
    """The verdict on every GPU of ``snapshot`` and on the node (``include_all``: every device, CPU
    devices, BMC displays and other accelerators too)."""
    devices = [d for d in snapshot.devices if include_all or d.device_type == "gpu"]
    verdicts = _driverless(devices, [evaluate_device(d, policy) for d in devices])
    gpus = sum(1 for d in devices if d.device_type == "gpu")
    node_checks = [device_count(gpus, snapshot.backends, policy), backend_failures(snapshot.backends, policy)]
    levels = [c.level for c in node_checks] + [v.level for v in verdicts]
    counted = [lv for lv in levels if lv is not Level.NOT_APPLICABLE]
    level = worst(counted) if counted else Level.UNKNOWN
    if level is Level.OK:
        summary = f"{len(verdicts)} device{'s' if len(verdicts) != 1 else ''} ok"
    else:
        parts = [c.reason for c in node_checks if c.level is level]
        for v in verdicts:
            if v.level is level:
                ids = [c.id for c in v.checks if c.level is level]
                parts.append(f"gpu{v.index} {level.value}" + (f" ({', '.join(ids)})" if ids else f": {v.summary}"))
        summary = "; ".join(parts) if parts else "nothing to judge the node on"
    return NodeHealth(level, summary, verdicts, node_checks, snapshot.taken_at)

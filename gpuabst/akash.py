"""What an Akash provider publishes about its GPUs, from gpuabst devices (live or replayed).

- :func:`node_labels`: the Kubernetes node labels Akash's inventory operator writes (``name=value``
  with GPU counts), plus gpuabst's driver labels;
- :func:`provider_attributes`: the four on-chain attribute forms for ``provider.yaml``;
- :func:`inventory_records`: Akash's inventory ``GPUInfo`` records (vendor, vendor_id, name,
  model_id, interface, memory_size) with the database's raw values (``PCIe``, ``24Gi``);
- :func:`nfd_feature_file`: the labels as a Node Feature Discovery ``local`` source feature file.

Only GPUs are advertised: devices of ``device_type`` ``gpu`` whose vendor the catalog knows. Not
OpenCL CPU devices, not BMC or virtual VGA devices (``display``), not other accelerators. MIG
instances and AMD partitions are children of their device and never change the count.

Names come from the active catalog (:mod:`gpuabst.catalog`). A GPU the catalog does not know is
still advertised with a model slug and memory derived from its reported name and real memory
(:func:`gpuabst.naming.derive_slug`, :func:`gpuabst.catalog.nominal_memory`), marked ``derived``;
a GPU with neither is skipped, with the reason.
"""

from __future__ import annotations

import datetime
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import attrs

from gpuabst.catalog import (
    Catalog,
    active,
    evidence_of,
    nominal_memory,
    normalize_interface,
)
from gpuabst.model import Device
from gpuabst.naming import derive_slug

AKASH_PREFIX = "akash.network/"
CAPABILITY = "capabilities.gpu.vendor"
DRIVER_PREFIX = "gpuabst/"
"""Prefix of the driver labels gpuabst adds (Akash defines none): ``gpuabst/driver.<vendor>.family``,
``.version`` and, for NVIDIA, ``.cuda``."""

LABEL_NAME_MAX = 63
_LABEL_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")

DRIVER_FAMILY = {"nvidia": "nvidia", "amd": "amdgpu", "intel": "i915"}
"""The driver family by vendor where the device does not name its kernel driver."""


@attrs.frozen
class AdvertisedGpu:
    """One physical GPU as Akash sees it.

    ``vendor``/``model``/``memory``/``interface`` are what labels and attributes use
    (``nvidia``, ``h100``, ``80Gi``, ``sxm``); ``interface_raw`` the database value (``SXM5``).
    ``derived`` is true when the model or memory did not come from the catalog; ``basis`` says
    what identified it.
    """

    vendor: str
    vendor_id: str | None
    model_id: str | None
    model: str
    memory: str | None
    interface_raw: str | None
    interface: str | None
    name: str | None
    bus_id: str | None
    catalog_key: str | None
    basis: str
    derived: bool
    driver_family: str | None = None
    driver_version: str | None = None
    cuda_version: str | None = None


@attrs.frozen
class Skipped:
    """A device that is not advertised, and why."""

    index: int
    vendor: str
    device_type: str
    name: str | None
    bus_id: str | None
    reason: str


@attrs.frozen
class LabelSet:
    """Node labels in order, and warnings about labels left out (one line each)."""

    labels: list[tuple[str, str]]
    warnings: list[str]

    def text(self) -> str:
        return "".join(f"{k}={v}\n" for k, v in self.labels)


def _bare(hex_id: str | None) -> str | None:
    """``0x10de`` -> ``10de`` (Akash writes ids without ``0x``)."""
    if not hex_id:
        return None
    text = hex_id.lower()
    return text[2:] if text.startswith("0x") else text


def advertised_gpus(devices: Iterable[Device], catalog: Catalog | None = None
                    ) -> tuple[list[AdvertisedGpu], list[Skipped]]:
    """The GPUs to advertise, and every other device with the reason it is not advertised."""
    cat = catalog or active()
    gpus: list[AdvertisedGpu] = []
    skipped: list[Skipped] = []
    for d in devices:
        name = d.name.get()
        bus = d.pci.bus_id.get()
        if d.device_type != "gpu":
            skipped.append(Skipped(d.index, d.vendor, d.device_type, name, bus, f"a {d.device_type} device, not a GPU"))
            continue
        ev = evidence_of(d)
        vendor = cat.vendor_name(ev.vendor_id)
        if vendor is None:
            skipped.append(Skipped(d.index, d.vendor, d.device_type, name, bus,
                                   f"vendor {d.vendor} ({ev.vendor_id or 'no PCI vendor id'}) is not in the "
                                   f"catalog ({cat.origin})"))
            continue
        res = cat.resolve(ev)
        if res.model is None and d.capabilities.unified_memory.get() is True:
            skipped.append(Skipped(d.index, d.vendor, d.device_type, name, bus,
                                   "an integrated GPU sharing host memory (OpenCL CL_DEVICE_HOST_UNIFIED_MEMORY) "
                                   "that the catalog does not list"))
            continue
        model, derived, basis = res.model, False, res.basis
        if model is None and name:
            model, derived = derive_slug(name), True
            basis = f"derived from the name {name!r}" + (f" ({res.reason})" if res.reason else "")
        if not model:
            skipped.append(Skipped(d.index, d.vendor, d.device_type, name, bus,
                                   res.reason or "no catalog entry and no name to derive a model from"))
            continue
        memory = res.memory
        if memory is None and ev.memory_total_bytes:
            memory, derived = nominal_memory(ev.memory_total_bytes), True
        iface_raw = res.interface_raw
        if iface_raw is None:
            iface_raw = _interface_from_name(name)
            derived = True
        gpus.append(AdvertisedGpu(
            vendor=vendor, vendor_id=_bare(ev.vendor_id), model_id=_bare(ev.device_id), model=model,
            memory=memory, interface_raw=iface_raw, interface=normalize_interface(iface_raw), name=name,
            bus_id=bus, catalog_key=res.entry.key if res.entry is not None else None, basis=basis, derived=derived,
            driver_family=_driver_family(d), driver_version=d.driver_version.get(),
            cuda_version=d.cuda_driver_version.get()))
    return gpus, skipped


def _interface_from_name(name: str | None) -> str:
    """For a GPU the catalog does not know: ``SXM`` or ``OAM`` when the name says so, else ``PCIe``
    (the form factor of every GPU not built as a module)."""
    text = (name or "").lower()
    if "sxm" in text:
        return "SXM"
    if "oam" in text:
        return "OAM"
    return "PCIe"


def _driver_family(d: Device) -> str | None:
    """The kernel driver the GPU is bound to (``nvidia``, ``amdgpu``): NVML/amdsmi/sysfs ``driver_name``,
    else the vendor's usual one."""
    name = d.driver_name.get()
    if isinstance(name, str) and name.strip():
        return name.strip().lower()
    return DRIVER_FAMILY.get(d.vendor)


# --- labels ----------------------------------------------------------------------------------
def _check_name(full: str) -> str | None:
    """Why a label key is invalid for Kubernetes, or None (name part <= 63 characters)."""
    name = full.split("/", 1)[1] if "/" in full else full
    if len(name) > LABEL_NAME_MAX:
        return f"label name {name!r} is {len(name)} characters, more than Kubernetes allows ({LABEL_NAME_MAX})"
    if not _LABEL_NAME.match(name):
        return f"label name {name!r} has characters Kubernetes does not allow"
    return None


def _check_value(value: str) -> str | None:
    if len(value) > LABEL_NAME_MAX or not _LABEL_VALUE.match(value):
        return f"label value {value!r} is not a valid Kubernetes label value"
    return None


def node_labels(gpus: Sequence[AdvertisedGpu], *, driver: bool = True) -> LabelSet:
    """The labels Akash's inventory operator writes on a node, counts as values, then gpuabst's
    driver labels. A label whose name would exceed 63 characters is left out with a warning
    (Kubernetes would refuse the whole node update)."""
    out: list[tuple[str, str]] = [("akash.network", "true")]
    warnings: list[str] = []
    if any(g.vendor == "nvidia" for g in gpus):
        out.append(("nvidia.com/gpu.present", "true"))
    models = Counter((g.vendor, g.model) for g in gpus)
    rams = Counter((g.vendor, g.model, g.memory) for g in gpus if g.memory)
    ifaces = Counter((g.vendor, g.model, g.interface) for g in gpus if g.interface)
    candidates: list[tuple[str, str]] = []
    for (vendor, model), n in sorted(models.items()):
        base = f"{AKASH_PREFIX}{CAPABILITY}.{vendor}.model.{model}"
        candidates.append((base, str(n)))
        for (v, m, ram), k in sorted(rams.items()):
            if (v, m) == (vendor, model):
                candidates.append((f"{base}.ram.{ram}", str(k)))
        for (v, m, iface), k in sorted(ifaces.items()):
            if (v, m) == (vendor, model):
                candidates.append((f"{base}.interface.{iface}", str(k)))
    if driver:
        candidates += _driver_labels(gpus, warnings)
    for key, value in candidates:
        problem = _check_name(key) or _check_value(value)
        if problem:
            warnings.append(f"left out {key}={value}: {problem}")
            continue
        out.append((key, value))
    return LabelSet(out, warnings)


def _driver_labels(gpus: Sequence[AdvertisedGpu], warnings: list[str]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for vendor in sorted({g.vendor for g in gpus}):
        mine = [g for g in gpus if g.vendor == vendor]
        for field, attr in (("family", "driver_family"), ("version", "driver_version"), ("cuda", "cuda_version")):
            values = sorted({getattr(g, attr) for g in mine if getattr(g, attr)})
            if not values:
                continue
            if len(values) > 1:
                warnings.append(f"{vendor} GPUs report different driver {field}s ({', '.join(values)}): "
                                f"labelled {values[0]}")
            out.append((f"{DRIVER_PREFIX}driver.{vendor}.{field}", values[0]))
    return out


# --- provider attributes -----------------------------------------------------------------------
def provider_attributes(gpus: Sequence[AdvertisedGpu]) -> list[str]:
    """The attribute keys (value ``"true"``) in Akash's four forms, for every model on the node:
    ``capabilities/gpu/vendor/<v>/model/<m>``, ``.../ram/<size>``, ``.../interface/<iface>`` and
    ``.../ram/<size>/interface/<iface>``."""
    keys: list[str] = []
    for g in sorted(gpus, key=lambda g: (g.vendor, g.model, g.memory or "", g.interface or "")):
        base = f"capabilities/gpu/vendor/{g.vendor}/model/{g.model}"
        forms = [base]
        if g.memory:
            forms.append(f"{base}/ram/{g.memory}")
        if g.interface:
            forms.append(f"{base}/interface/{g.interface}")
        if g.memory and g.interface:
            forms.append(f"{base}/ram/{g.memory}/interface/{g.interface}")
        keys += [k for k in forms if k not in keys]
    return keys


def attributes_yaml(gpus: Sequence[AdvertisedGpu], *, header: str | None = None) -> str:
    """The attributes as the ``attributes:`` list of an Akash ``provider.yaml``."""
    lines = [f"# {line}" for line in (header or "").splitlines()]
    keys = provider_attributes(gpus)
    if not keys:
        lines.append("attributes: []")
    else:
        lines.append("attributes:")
        for k in keys:
            lines += [f"  - key: {k}", '    value: "true"']
    return "\n".join(lines) + "\n"


# --- inventory ------------------------------------------------------------------------------
def inventory_records(gpus: Sequence[AdvertisedGpu]) -> list[dict[str, Any]]:
    """Akash's ``GPUInfo`` per GPU (chain-sdk inventory v1): vendor, vendor_id, name, model_id,
    interface, memory_size, with the database's raw interface and memory values."""
    return [{"vendor": g.vendor, "vendor_id": g.vendor_id, "name": g.model, "model_id": g.model_id,
             "interface": g.interface_raw, "memory_size": g.memory} for g in gpus]


def inventory_details(gpus: Sequence[AdvertisedGpu]) -> list[dict[str, Any]]:
    """What gpuabst adds beside each ``GPUInfo``: where it is, how it was identified, its driver."""
    return [{"bus_id": g.bus_id, "market_name": g.name, "catalog_key": g.catalog_key, "basis": g.basis,
             "derived": g.derived, "driver_family": g.driver_family, "driver_version": g.driver_version,
             "cuda_driver_version": g.cuda_version} for g in gpus]


# --- Node Feature Discovery ------------------------------------------------------------------
def nfd_feature_file(labels: LabelSet, *, generated_by: str, expiry: datetime.datetime | None = None) -> str:
    """A feature file for NFD's ``local`` source (``/etc/kubernetes/node-feature-discovery/features.d/``):
    one ``name=value`` per line, ``#`` comments, an optional ``# +expiry-time=`` directive after which
    nfd-worker ignores the file (so labels vanish if gpuabst stops refreshing it).

    NFD cannot publish an unprefixed label, so ``akash.network=true`` is written as a comment: set
    it once with ``kubectl label node``.
    """
    lines = [f"# {generated_by}", "# Node Feature Discovery local feature file (features.d): Akash GPU labels"]
    if expiry is not None:
        stamp = expiry.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        lines.append(f"# +expiry-time={stamp}")
    for warning in labels.warnings:
        lines.append(f"# warning: {warning}")
    for key, value in labels.labels:
        if "/" not in key:
            lines.append(f"# {key}={value} (NFD cannot set an unprefixed label: "
                         f"kubectl label node <node> {key}={value})")
            continue
        lines.append(f"{key}={value}")
    return "\n".join(lines) + "\n"


__all__ = [
    "AdvertisedGpu", "LabelSet", "Skipped", "advertised_gpus", "attributes_yaml", "inventory_details",
    "inventory_records", "nfd_feature_file", "node_labels", "provider_attributes",
]

"""Model slugs in Akash's style (``a100``, ``h100``, ``rtx4090``, ``rtx4000sada``).

The catalog (:mod:`gpuabst.catalog`, where installed) is asked first, by PCI ids, subsystem id,
market name and real memory. A device it does not know gets a slug derived from its reported name,
and the Reading says that it was derived.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from gpuabst.model import Device
from gpuabst.reading import Reading, Status, missing

if TYPE_CHECKING:
    from gpuabst.catalog import Catalog

SOURCE = "naming"

_MODELS_KEPT = 4096
"""At most this many distinct devices' models are kept (:func:`model_for`)."""
_models: dict[tuple[Any, ...], tuple[Catalog, Reading[str]]] = {}
"""Models named so far by :func:`naming_key`, each with the catalog that named it."""
_models_catalog: Catalog | None = None
"""The catalog the kept models are of: another active catalog empties them."""

_DROP_WORDS = {
    "nvidia", "geforce", "tesla", "quadro", "amd", "radeon", "instinct", "graphics", "generation",
    "edition", "workstation", "hbm3", "hbm3e", "hbm2", "hbm2e", "pcie", "sxm", "sxm2", "sxm3", "sxm4", "sxm5",
    "oam", "intel(r)", "intel", "(r)", "(tm)", "corporation", "gpu", "accelerator", "nvl", "mig",
}
_SUFFIX = {"super": "s", "ti": "ti", "xt": "xt", "xtx": "xtx", "max-q": "mq", "laptop": "m", "mobile": "m"}


def derive_slug(name: str) -> str | None:
    """A slug from a marketing name: ``NVIDIA GeForce RTX 4090`` -> ``rtx4090``,
    ``A100-SXM4-80GB`` -> ``a100``, ``NVIDIA H200 NVL`` -> ``h200nvl``."""
    text = name.strip().lower()
    if not text or text in ("graphics device", "unknown"):
        return None
    text = re.sub(r"\[|\]|,", " ", text)
    nvl = bool(re.search(r"\bnvl\b", text))
    tokens = re.split(r"[\s_]+|-(?=sxm|pcie|\d+gb|hbm)", text)
    out: list[str] = []
    for tok in tokens:
        tok = tok.strip("-")
        if not tok or tok in _DROP_WORDS or re.fullmatch(r"\d+(gb|g|gib)", tok):
            continue
        if tok in _SUFFIX:
            out.append(_SUFFIX[tok])
            continue
        out.append(re.sub(r"[^a-z0-9]", "", tok))
    slug = "".join(out)
    if nvl:
        slug += "nvl"
    return slug or None


def model_for(device: Device, cat: Catalog | None = None) -> Reading[str]:
    """The Akash model slug of a GPU: from the catalog (default: the active one) where it knows the
    device, else derived.

    Devices that are not GPUs (OpenCL CPU devices, BMC display controllers) have no model to advertise.
    The answer is kept per catalog and per the facts it depends on (:func:`naming_key`), so naming the
    same GPU again on a later read is a lookup.
    """
    global _models_catalog
    if cat is None:
        from gpuabst import catalog

        cat = catalog.active()
    key = naming_key(device)
    try:
        kept = _models.get(key)
    except TypeError as e:  # a plugin reported a list or a dict where a plain value belongs
        return missing(Status.ERROR, SOURCE, None, f"the device's identifying facts are not plain values: {e}")
    if kept is not None and kept[0] is cat:
        return kept[1]
    model = _model_for(device, cat)
    if _models_catalog is not cat:
        _models.clear()
        _models_catalog = cat
    if len(_models) < _MODELS_KEPT:
        _models[key] = (cat, model)
    return model


def naming_key(device: Device) -> tuple[Any, ...]:
    """Everything :func:`model_for`'s answer depends on under one catalog, as a plain tuple: the device
    type, the vendor, and the raw values of PCI ids, revision, name, memory size and compute units,
    from which catalog.evidence_of builds what the catalog resolves by. A value is None exactly when
    its Reading is missing, so whether the device has a name is in it too. A fact added here must be
    compared by :func:`same_naming_facts` too."""
    pci = device.pci
    return (device.device_type, device.vendor, device.name[0], pci.vendor_id[0], pci.device_id[0],
            pci.subsystem_vendor_id[0], pci.subsystem_id[0], pci.revision_id[0], device.memory.total_bytes[0],
            device.capabilities.compute_units[0])


def same_naming_facts(device: Device, previous: Device) -> bool:
    """Whether ``device`` reports the very facts :func:`model_for` names ``previous`` from (its type,
    whether it has a name, and the catalog's evidence: PCI ids, name, memory size, compute units), as
    the same immutable objects, or for the memory size, which a poll reads again, an equal Reading:
    then its model is ``previous``'s under the same catalog. Keep in step with :func:`naming_key`."""
    return (device.pci is previous.pci and device.name is previous.name
            and device.capabilities is previous.capabilities and device.vendor == previous.vendor
            and device.device_type == previous.device_type
            and device.memory.total_bytes == previous.memory.total_bytes)


def _model_for(device: Device, cat: Catalog) -> Reading[str]:
    from gpuabst import catalog

    if device.device_type != "gpu":
        return missing(Status.NOT_APPLICABLE, SOURCE, None, f"a {device.device_type} device has no GPU model")
    resolution = catalog.resolve_device(device, cat)
    if resolution.model is not None:
        return Reading(resolution.model, Status.OK, "catalog", f"catalog:{resolution.key}")
    why = resolution.reason or "no catalog entry"
    if device.name.ok:
        slug = derive_slug(str(device.name.value))
        if slug:
            return Reading(slug, Status.OK, SOURCE, "derived from the reported name", why)
    return missing(Status.NOT_RECORDED if not device.name.ok else Status.UNSUPPORTED, SOURCE, None,
                   f"{why}, and no usable name to derive a model from")

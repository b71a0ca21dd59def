"""Built-in PCI facts: vendor names, which devices are GPUs, and the kernel's text formats.

Kept small on purpose: product names of GPUs come from the catalog (:mod:`gpuabst.catalog`), not
from here. What is here decides ``device_type``:

``gpu``
    a display controller (class 0x03) or processing accelerator (class 0x12) of a GPU vendor
    (NVIDIA, AMD, Intel display class only, Moore Threads, Iluvatar), and any 3D controller
    (0x0302) not listed below.
``display``
    a display-only device that must not be advertised as a GPU: server management (BMC) VGA
    (ASPEED, Matrox G200e*, Huawei Hi1710) and virtual display adapters (QEMU, virtio-gpu, QXL,
    VMware SVGA, Cirrus, Hyper-V), and any other VGA/display controller of a non-GPU vendor.
``accelerator``
    a processing accelerator (class 0x12) that is not a GPU (Intel NPU, Habana Gaudi, Huawei
    Ascend, Tenstorrent...).
"""

from __future__ import annotations

import re

CLASS_DISPLAY = 0x03
CLASS_ACCELERATOR = 0x12
LISTED_CLASSES = (CLASS_DISPLAY, CLASS_ACCELERATOR)
SUBCLASS_3D = 0x0302

VENDORS: dict[int, tuple[str, str]] = {
    0x10DE: ("nvidia", "NVIDIA"),
    0x1002: ("amd", "AMD"),
    0x1022: ("amd", "AMD"),
    0x8086: ("intel", "Intel"),
    0x1ED5: ("mthreads", "Moore Threads"),
    0x1E3E: ("iluvatar", "Iluvatar CoreX"),
    0x1A03: ("aspeed", "ASPEED"),
    0x102B: ("matrox", "Matrox"),
    0x19E5: ("huawei", "Huawei"),
    0x1DA3: ("habana", "Habana Labs"),
    0x1E52: ("tenstorrent", "Tenstorrent"),
    0x15AD: ("vmware", "VMware"),
    0x1234: ("qemu", "QEMU"),
    0x1AF4: ("redhat", "Red Hat (virtio)"),
    0x1B36: ("redhat", "Red Hat (QEMU)"),
    0x1013: ("cirrus", "Cirrus Logic"),
    0x1414: ("microsoft", "Microsoft"),
}
"""PCI vendor id -> (vendor slug used in ``Device.vendor``, display name)."""

GPU_VENDORS = frozenset({0x10DE, 0x1002, 0x8086, 0x1ED5, 0x1E3E})
"""Vendors whose display controllers are GPUs."""

ACCELERATOR_GPU_VENDORS = frozenset({0x10DE, 0x1002})
"""Vendors whose class-0x12 devices are GPUs (AMD Instinct MI300 is a processing accelerator)."""

DISPLAY_ONLY: dict[tuple[int, int], str] = {
    (0x1A03, 0x2000): "ASPEED Graphics Family",
    (0x102B, 0x0522): "Matrox MGA G200e [Pilot] ServerEngines (SEP1)",
    (0x102B, 0x0532): "Matrox MGA G200eW WPCM450",
    (0x102B, 0x0533): "Matrox MGA G200EH",
    (0x102B, 0x0534): "Matrox G200eR2",
    (0x19E5, 0x1711): "Huawei Hi1710 iBMC VGA",
}
"""Server management (BMC) VGA devices by (vendor, device): never GPUs, named here since the
catalog of GPUs does not hold them."""


def vendor_slug(vendor_id: int) -> str:
    """``nvidia`` for 0x10de; ``unknown`` for a vendor not in :data:`VENDORS`."""
    return VENDORS.get(vendor_id, ("unknown", ""))[0]


def vendor_name(vendor_id: int) -> str:
    return VENDORS.get(vendor_id, ("", f"vendor 0x{vendor_id:04x}"))[1]


def device_type(vendor_id: int, device_id: int, class_code: int) -> str:
    """``gpu``, ``display`` or ``accelerator`` (see the module docstring) for a listed device."""
    base, sub = class_code >> 16, class_code >> 8
    if (vendor_id, device_id) in DISPLAY_ONLY:
        return "display"
    if base == CLASS_ACCELERATOR:
        return "gpu" if vendor_id in ACCELERATOR_GPU_VENDORS else "accelerator"
    if vendor_id in GPU_VENDORS:
        return "gpu"
    if sub == SUBCLASS_3D and vendor_id not in VENDORS:
        return "gpu"
    return "display"


# --- the kernel's text formats ---------------------------------------------------------------
_GTS = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*GT/s")
GENERATION_BY_GTS: dict[float, int] = {2.5: 1, 5.0: 2, 8.0: 3, 16.0: 4, 32.0: 5, 64.0: 6, 128.0: 7}


def parse_link_speed(text: str) -> float | None:
    """``16.0 GT/s PCIe`` (or an older kernel's ``8 GT/s``) -> 16.0; ``Unknown`` -> None."""
    m = _GTS.match(text)
    return float(m.group(1)) if m else None


def generation(gts: float) -> int:
    """The PCIe generation of a link speed: 2.5 -> 1, 5 -> 2, 8 -> 3, 16 -> 4, 32 -> 5, 64 -> 6."""
    gen = GENERATION_BY_GTS.get(gts)
    if gen is None:
        raise ValueError(f"{gts:g} GT/s is not a PCIe link speed")
    return gen


def parse_width(text: str) -> int | None:
    """``16`` (or ``x16``) -> 16; ``0`` (link down) -> None."""
    width = int(text.strip().removeprefix("x"))
    if width < 0:
        raise ValueError(f"negative link width {width}")
    return width or None


def parse_hex(text: str) -> int:
    """``0x10de\\n`` -> 4318."""
    return int(text.strip(), 16)


IORESOURCE_IO = 0x100
IORESOURCE_MEM = 0x200
BAR_COUNT = 6


def parse_bar_sizes(text: str) -> dict[str, int]:
    """BAR sizes from a ``resource`` file: one ``start end flags`` hex line per resource, BAR0..BAR5
    first; an unassigned BAR is all zeros. ``{"bar0": 16777216, "bar1": 137438953472, ...}``."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        raise ValueError("empty resource file")
    sizes: dict[str, int] = {}
    for i, line in enumerate(lines[:BAR_COUNT]):
        fields = line.split()
        if len(fields) != 3:
            raise ValueError(f"resource line {i + 1} has {len(fields)} fields, expected 3: {line!r}")
        start, end, flags = (int(f, 16) for f in fields)
        if start == 0 and end == 0:
            continue
        if end < start or not flags & (IORESOURCE_IO | IORESOURCE_MEM):
            raise ValueError(f"resource line {i + 1} is not a BAR: {line!r}")
        sizes[f"bar{i}"] = end - start + 1
    return sizes

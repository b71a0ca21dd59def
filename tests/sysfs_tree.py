"""A hand-written sysfs tree with an NVIDIA H100, an AMD MI300X and an ASPEED BMC VGA device.

Files hold what the kernel writes (``0x10de\\n``, ``32.0 GT/s PCIe\\n``, ``-1\\n``, ``resource``
lines of three hex numbers); ``driver`` is a symbolic link into ``bus/pci/drivers``. The values are
plausible, not copied from one machine, so the fixture recorded from this tree is labelled
``synthetic``. Regenerate fixtures/pci/h100-mi300x-aspeed.json with::

    .venv/bin/python tests/sysfs_tree.py fixtures/pci/h100-mi300x-aspeed.json
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from gpuabst.fixtures.format import Fixture

GIB = 1 << 30
ZERO = "0x0000000000000000 0x0000000000000000 0x0000000000000000"
MEM32 = 0x40200
MEM64_PREFETCH = 0x14220C
IO = 0x40101

H100_BUS, MI300X_BUS, ASPEED_BUS = "0000:18:00.0", "0000:75:00.0", "0000:03:00.0"
BRIDGE_BUS, NIC_BUS = "0000:00:00.0", "0000:17:00.0"
MI300X_VRAM = 192 * GIB


def resource(*bars: tuple[int, int, int] | None) -> str:
    """A ``resource`` file: BAR0..BAR5 as given (start, size, flags) or unassigned, then the ROM
    and six SR-IOV lines, 13 in all, as the kernel writes for an endpoint."""
    lines = []
    for bar in list(bars) + [None] * (13 - len(bars)):
        if bar is None:
            lines.append(ZERO)
        else:
            start, size, flags = bar
            lines.append(f"0x{start:016x} 0x{start + size - 1:016x} 0x{flags:016x}")
    return "\n".join(lines) + "\n"


DEVICES: dict[str, dict[str, Any]] = {
    BRIDGE_BUS: {"vendor": "0x8086", "device": "0x09a2", "class": "0x060000"},
    ASPEED_BUS: {
        "vendor": "0x1a03", "device": "0x2000", "subsystem_vendor": "0x15d9", "subsystem_device": "0x1c48",
        "revision": "0x52", "class": "0x030000", "numa_node": "-1", "driver": "ast",
        "resource": resource((0xC4000000, 16 << 20, MEM32), (0xC5000000, 256 << 10, MEM32), (0x2000, 128, IO)),
    },
    NIC_BUS: {
        "vendor": "0x15b3", "device": "0x1021", "class": "0x020000", "driver": "mlx5_core",
    },
    H100_BUS: {
        "vendor": "0x10de", "device": "0x2330", "subsystem_vendor": "0x10de", "subsystem_device": "0x16c1",
        "revision": "0xa1", "class": "0x030200", "numa_node": "0", "driver": "nvidia",
        "current_link_speed": "32.0 GT/s PCIe", "current_link_width": "16",
        "max_link_speed": "32.0 GT/s PCIe", "max_link_width": "16",
        "resource": resource((0xE2000000, 16 << 20, MEM32), (0x220000000000, 128 * GIB, MEM64_PREFETCH), None,
                             (0x222000000000, 32 << 20, MEM64_PREFETCH)),
    },
    MI300X_BUS: {
        "vendor": "0x1002", "device": "0x74a1", "subsystem_vendor": "0x1002", "subsystem_device": "0x74a1",
        "revision": "0x00", "class": "0x120000", "numa_node": "1", "driver": "amdgpu",
        "current_link_speed": "16.0 GT/s PCIe", "current_link_width": "16",
        "max_link_speed": "32.0 GT/s PCIe", "max_link_width": "16",
        "resource": resource((0xA00000000000, 256 * GIB, MEM64_PREFETCH), None,
                             (0xA04000000000, 2 << 20, MEM64_PREFETCH), None, None, (0xC8000000, 512 << 10, MEM32)),
        "mem_info_vram_total": str(MI300X_VRAM), "mem_info_vis_vram_total": str(MI300X_VRAM),
        "mem_info_gtt_total": str(1007 * GIB), "vbios_version": "113-M3000100-102",
    },
}
MODULES: dict[str, dict[str, str]] = {"nvidia": {"version": "590.48.01"}, "amdgpu": {}, "ast": {},
                                      "mlx5_core": {"version": "24.10-1.1.4"}}


def build_tree(root: Path) -> Path:
    """Write the tree under ``root`` (the folder that stands for ``/sys``) and return ``root``."""
    devices = root / "bus" / "pci" / "devices"
    drivers = root / "bus" / "pci" / "drivers"
    devices.mkdir(parents=True)
    for bus, attrs in DEVICES.items():
        d = devices / bus
        d.mkdir()
        for name, value in attrs.items():
            if name == "driver":
                (drivers / value).mkdir(parents=True, exist_ok=True)
                os.symlink(f"../../../bus/pci/drivers/{value}", d / "driver")
            else:
                (d / name).write_text(value if value.endswith("\n") else value + "\n")
    for module, files in MODULES.items():
        m = root / "module" / module
        m.mkdir(parents=True)
        for name, value in files.items():
            (m / name).write_text(value + "\n")
    return root


def record(root: Path) -> Fixture:
    """The fixture the PCI backend records reading ``root`` (a capture, relabelled synthetic)."""
    from gpuabst.machine import Machine

    old = os.environ.get("GPUABST_SYSFS_ROOT")
    os.environ["GPUABST_SYSFS_ROOT"] = str(root)
    try:
        captured = Machine([], backends=["pci"], capture=True).capture(scrub=True)
    finally:
        if old is None:
            os.environ.pop("GPUABST_SYSFS_ROOT", None)
        else:
            os.environ["GPUABST_SYSFS_ROOT"] = old
    rec = captured.backends["pci"]
    calls = [{k: v for k, v in c.items() if k != "latency_us"} for c in rec.calls]
    provenance = {"kind": "synthetic", "tool": "tests/sysfs_tree.py (the PCI backend recording a hand-written tree)",
                  "note": "sysfs tree written by hand in the kernel's formats: NVIDIA H100 SXM5, AMD MI300X, "
                          "ASPEED BMC VGA, plus a host bridge and a NIC that are not listed"}
    return Fixture(provenance, {"pci": type(rec)(rec.library, rec.driver_version, calls)})


if __name__ == "__main__":
    import tempfile

    from gpuabst.fixtures.format import save

    with tempfile.TemporaryDirectory() as tmp:
        save(record(build_tree(Path(tmp) / "sys")), sys.argv[1])
    print(f"wrote {sys.argv[1]}")

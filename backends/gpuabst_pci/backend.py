"""PciBackend: display controllers and processing accelerators read from sysfs, no vendor library.

Every value comes from one file under ``/sys/bus/pci/devices/<bus id>/`` (``lspci -vvv -s <bus id>``
shows the same facts); its Reading's ``call`` names the file (``read_attr:current_link_speed``).
docs/backends/pci.md lists each field with its file and lspci equivalent.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, ClassVar

import attrs

from gpuabst.backend import Backend, CallFailed, ErrorInfo, LibrarySource, Probe
from gpuabst.errors import BackendUnavailable
from gpuabst.fixtures.codec import Codec
from gpuabst.fixtures.tape import Tape
from gpuabst.model import Capabilities, Device, HealthReadings, MemoryInfo, Partition, PciInfo
from gpuabst.pci import hex_id, normalize_bus_id
from gpuabst.reading import Reading, Status, missing, ok
from gpuabst_pci import binding, fake_sysfs, ids

NVIDIA = 0x10DE
AMDGPU_DRIVER = "amdgpu"


class PciBackend(Backend):
    """Every PCI display controller (class 0x03) and processing accelerator (class 0x12) in sysfs.

    SR-IOV virtual functions (a ``physfn`` link) are not devices of their own: they are listed as
    ``sriov_vf`` partitions of their physical function, so a vGPU host does not count each slice as a GPU.

    ``root``: where sysfs is mounted (default ``$GPUABST_SYSFS_ROOT``, else ``/sys``).
    Its authority is the lowest of the first-party backends: where NVML, amdsmi or OpenCL report a
    field of the same device (matched by bus id), their value is kept.
    """

    name: ClassVar[str] = "pci"
    vendor: ClassVar[str] = "pci"
    library_module: ClassVar[str] = "gpuabst_pci.binding"
    library_distribution: ClassVar[str] = "linux-sysfs"
    install_hint: ClassVar[str] = binding.INSTALL_HINT
    authority: ClassVar[int] = 10

    def __init__(self, library: LibrarySource | None = None, *, call_timeout_s: float | None = None,
                 root: str | os.PathLike[str] | None = None) -> None:
        super().__init__(library, call_timeout_s=call_timeout_s)
        self.root = binding.configured_root(root)

    # --- plugin hooks ------------------------------------------------------------------------
    @classmethod
    def import_library(cls) -> Any:
        return binding

    @classmethod
    def fake_library(cls, tape: Tape) -> Any:
        return fake_sysfs.make(tape)

    @classmethod
    def make_codec(cls) -> Codec:
        return binding.SysfsCodec()

    @classmethod
    def classify_error(cls, exc: BaseException) -> ErrorInfo | None:
        return binding.classify(exc)

    @classmethod
    def raise_recorded_error(cls, error: dict[str, Any]) -> None:
        binding.raise_recorded(error)

    def _open(self) -> Probe:
        try:
            self.call("list_devices", self.root)
        except CallFailed as f:
            if f.reading.status is Status.NOT_RECORDED:
                return Probe(False, "list_devices is not recorded in the fixture", self.install_hint)
            return Probe(False, _unlistable(self.root.path, f.reading), self.install_hint)
        return Probe(True)

    # --- devices -------------------------------------------------------------------------------
    def _devices(self) -> list[Device]:
        """``ls /sys/bus/pci/devices``, keeping the functions whose ``class`` is 0x03xxxx or 0x12xxxx."""
        try:
            listing = self.call("list_devices", self.root)
        except CallFailed as f:
            raise BackendUnavailable(_unlistable(self.root.path, f.reading)) from None
        if not isinstance(listing, list):
            raise BackendUnavailable(f"list_devices gave {type(listing).__name__}, not a list of PCI addresses")
        listed: list[tuple[str, int]] = []
        virtual: dict[str, list[str]] = {}
        for bus in listing:
            if not isinstance(bus, str) or not binding.is_bus_id(bus):
                continue  # not a PCI function (a replayed fixture can hold anything)
            klass = self._attr(bus, "class", convert=ids.parse_hex)
            if not klass.ok or int(klass.value or 0) >> 16 not in ids.LISTED_CLASSES:
                continue  # a function whose class cannot be read cannot be told to be a display device
            parent = self._physical_function(bus)
            if parent is not None:
                virtual.setdefault(parent, []).append(bus)
            listed.append((bus, int(klass.value or 0)))
        out: list[Device] = []
        for bus, class_code in listed:
            parent = next((p for p, vfs in virtual.items() if bus in vfs), None)
            if parent is not None and any(b == parent for b, _ in listed):
                continue  # a virtual function is a partition of its listed physical function
            device = self._device(len(out), bus, class_code)
            vfs = virtual.get(bus, [])
            if vfs:
                device = attrs.evolve(device, partitions=[
                    Partition(kind="sriov_vf", index=i, parent_bus_id=bus,
                              name=ok(f"virtual function {vf}", self.name, "read_link:physfn"))
                    for i, vf in enumerate(vfs)])
            out.append(device)
        return out

    def _physical_function(self, bus: str) -> str | None:
        """The bus id of the physical function an SR-IOV virtual function belongs to (its ``physfn``
        link: NVIDIA vGPU and AMD MxGPU hosts show one VF per slice); None for a physical function."""
        r = self.read("read_link", self.root, bus, "physfn", device_key=bus)
        if not r.ok or not isinstance(r.value, str) or not binding.is_bus_id(r.value):
            return None
        return r.value

    def _poll(self, previous: list[Device]) -> list[Device]:
        """Only the current link speed and width change while the system runs."""
        out = []
        for d in previous:
            bus = d.pci.bus_id.get()
            if bus is None:
                out.append(d)
                continue
            out.append(attrs.evolve(d, health=self._link_health(str(bus), d.capabilities)))
        return out

    def _device(self, index: int, bus: str, class_code: int) -> Device:
        vendor = self._attr(bus, "vendor", convert=ids.parse_hex)
        device = self._attr(bus, "device", convert=ids.parse_hex)
        vid, did = int(vendor.get(0)), int(device.get(0))
        driver = self._driver(bus)
        pci = PciInfo(
            bus_id=ok(normalize_bus_id(bus), self.name, "list_devices"),
            vendor_id=vendor.map(hex_id),
            device_id=device.map(hex_id),
            subsystem_vendor_id=self._attr(bus, "subsystem_vendor", convert=lambda t: hex_id(ids.parse_hex(t))),
            subsystem_id=self._attr(bus, "subsystem_device", convert=lambda t: hex_id(ids.parse_hex(t))),
            revision_id=self._attr(bus, "revision", convert=lambda t: hex_id(ids.parse_hex(t), 2)),
            class_code=ok(hex_id(class_code, 6), self.name, "read_attr:class"),
            bar_sizes_bytes=self._attr(bus, "resource", convert=ids.parse_bar_sizes),
        )
        caps = Capabilities(
            pcie_max_generation=self._link_generation(bus, "max_link_speed"),
            pcie_max_width=self._link_width(bus, "max_link_width"),
            numa_node=self._numa(bus),
        )
        memory = MemoryInfo()
        if vid == NVIDIA:
            memory = attrs.evolve(memory, bar1_total_bytes=self._bar1(pci.bar_sizes_bytes))
        extra: dict[str, Any] = {}
        if driver.get() == AMDGPU_DRIVER:
            memory = attrs.evolve(memory, total_bytes=self._attr(bus, "mem_info_vram_total", convert=_int),
                                  visible_total_bytes=self._attr(bus, "mem_info_vis_vram_total", convert=_int),
                                  gtt_total_bytes=self._attr(bus, "mem_info_gtt_total", convert=_int))
            extra["vbios_version"] = self._attr(bus, "vbios_version", convert=_text)
            extra["board_product_name"] = self._attr(bus, "product_name", convert=_text)
        dtype = ids.device_type(vid, did, class_code) if vendor.ok and device.ok else (
            "gpu" if class_code >> 16 == ids.CLASS_ACCELERATOR or class_code >> 8 == ids.SUBCLASS_3D else "display")
        partial = Device(vendor=ids.vendor_slug(vid), index=index, device_type=dtype, pci=pci, memory=memory,
                         capabilities=caps, sources=[self.name])
        return attrs.evolve(
            partial,
            name=self._name(partial, vid, did),
            driver_name=driver,
            driver_version=self._driver_version(driver),
            health=self._link_health(bus, caps), **extra)

    # --- values --------------------------------------------------------------------------------
    def _attr(self, bus: str, attr: str, *, convert: Callable[[Any], Any] | None = None) -> Reading[Any]:
        """``cat /sys/bus/pci/devices/<bus>/<attr>``, converted; the Reading's call names the file."""
        r = self.read("read_attr", self.root, bus, attr, convert=convert, device_key=bus)
        return r.replace(call=f"read_attr:{attr}")

    def _bar1(self, bars: Reading[dict[str, int]]) -> Reading[int]:
        """An NVIDIA GPU's BAR1 is its frame-buffer aperture (what nvmlDeviceGetBAR1MemoryInfo calls
        bar1Total; ``lspci -v``: Region 1)."""
        if not bars.ok:
            return bars  # type: ignore[return-value]
        if "bar1" not in (bars.value or {}):
            return missing(Status.UNSUPPORTED, self.name, bars.call, "BAR1 is not assigned")
        return bars.map(lambda b: b["bar1"])

    def _not_applicable_if_absent(self, r: Reading[Any], why: str) -> Reading[Any]:
        if r.status is Status.UNSUPPORTED and (r.reason or "").startswith("ENOENT"):
            return missing(Status.NOT_APPLICABLE, self.name, r.call, why)
        return r

    def _driver(self, bus: str) -> Reading[str]:
        """The bound driver: the name the ``driver`` link points to (``lspci -k``: Kernel driver in use)."""
        r = self.read("read_link", self.root, bus, "driver", device_key=bus)
        r = r.replace(call="read_link:driver")
        return self._not_applicable_if_absent(r, "no driver is bound to this device")

    def _driver_version(self, driver: Reading[str]) -> Reading[str]:
        """``cat /sys/module/<driver>/version`` (``modinfo -F version nvidia``); in-tree drivers have none."""
        if not driver.ok:
            return missing(Status.NOT_APPLICABLE, self.name, "read_module_attr:version",
                           "no driver is bound" if driver.status is Status.NOT_APPLICABLE else
                           f"the bound driver is unknown ({driver.reason})")
        r = self.read("read_module_attr", self.root, driver.value, "version", convert=_text)
        r = r.replace(call="read_module_attr:version")
        if not r.ok and (r.reason or "").startswith("ENOENT"):
            return missing(Status.UNSUPPORTED, self.name, r.call,
                           f"the {driver.value} module has no version (in-tree drivers carry the kernel's)")
        if r.ok and not r.value:
            return missing(Status.UNSUPPORTED, self.name, r.call, f"the {driver.value} module's version is empty")
        return r

    def _numa(self, bus: str) -> Reading[int]:
        """``numa_node``; ``-1`` means the firmware gave the device no NUMA affinity."""
        r = self._not_applicable_if_absent(self._attr(bus, "numa_node", convert=lambda t: int(t.strip())),
                                           "this kernel has no NUMA support")
        if r.ok and int(r.value or 0) < 0:
            return missing(Status.NOT_APPLICABLE, self.name, r.call,
                           "no NUMA affinity (numa_node is -1: single node, or the firmware did not say)")
        return r

    def _link_generation(self, bus: str, attr: str) -> Reading[int]:
        """PCIe generation from ``max_link_speed`` / ``current_link_speed`` (``16.0 GT/s PCIe`` -> 4)."""
        raw = self._not_applicable_if_absent(self._attr(bus, attr), "not a PCI Express device (no link)")
        if not raw.ok:
            return raw
        gts = ids.parse_link_speed(str(raw.value))
        if gts is None:
            return missing(Status.UNSUPPORTED, self.name, raw.call,
                           f"the kernel reports the link speed as {str(raw.value).strip()!r}")
        try:
            return ok(ids.generation(gts), self.name, raw.call)
        except ValueError as e:
            return missing(Status.ERROR, self.name, raw.call, str(e))

    def _link_width(self, bus: str, attr: str) -> Reading[int]:
        """Lanes from ``max_link_width`` / ``current_link_width`` (``lspci -vv``: LnkCap / LnkSta Width)."""
        raw = self._not_applicable_if_absent(self._attr(bus, attr), "not a PCI Express device (no link)")
        if not raw.ok:
            return raw
        try:
            width = ids.parse_width(str(raw.value))
        except ValueError as e:
            return missing(Status.ERROR, self.name, raw.call, f"unexpected value {raw.value!r}: {e}")
        if width is None:
            return missing(Status.UNSUPPORTED, self.name, raw.call, "the kernel reports width 0 (link down)")
        return ok(width, self.name, raw.call)

    def _link_health(self, bus: str, caps: Capabilities) -> HealthReadings:
        gen = self._link_generation(bus, "current_link_speed")
        width = self._link_width(bus, "current_link_width")
        return HealthReadings(pcie_current_generation=gen, pcie_current_width=width,
                              pcie_link_degraded=_link_degraded(gen, width, caps, self.name))

    def _name(self, device: Device, vid: int, did: int) -> Reading[str]:
        """The product name: the catalog's (by PCI ids), or the built-in name of a BMC VGA device."""
        builtin = ids.DISPLAY_ONLY.get((vid, did))
        if builtin:
            return ok(builtin, self.name, "builtin:pci-ids")
        found = catalog_name(device)
        if found is not None:
            return found
        return missing(Status.UNSUPPORTED, self.name, "catalog",
                       f"{ids.vendor_name(vid)} device {vid:04x}:{did:04x} is not in the catalog "
                       "(the PCI backend reads ids, not names)")


def catalog_name(device: Device) -> Reading[str] | None:
    """The market name the catalog gives ``device`` (by PCI ids, subsystem id and, where amdgpu
    reports it, real memory); a Reading saying why where the catalog knows the id but cannot decide
    between products; None where the catalog does not know it or is not installed."""
    try:
        from gpuabst import catalog
    except ImportError:  # pragma: no cover - the catalog ships with the package
        return None
    try:
        res = catalog.resolve_device(device)
    except Exception as e:  # a catalog fault must not stop the device being listed
        return missing(Status.ERROR, PciBackend.name, "catalog", f"catalog lookup failed: {type(e).__name__}: {e}")
    if res.entry is not None:
        return ok(res.entry.market_name, PciBackend.name, f"catalog:{res.entry.key}")
    if res.candidates:
        return missing(Status.UNSUPPORTED, PciBackend.name, "catalog", res.reason or
                       f"the PCI ids fit several products: {', '.join(c.market_name for c in res.candidates)}")
    return None


def _unlistable(root: str, r: Reading[Any]) -> str:
    why = ("no such directory (is sysfs mounted there?)" if (r.reason or "").startswith("ENOENT")
           else r.reason)
    return f"cannot list {root}/bus/pci/devices: {why}"


def _text(raw: Any) -> str:
    return str(raw).strip()


def _int(raw: Any) -> int:
    return int(str(raw).strip())


def _link_degraded(gen: Reading[int], width: Reading[int], caps: Capabilities, source: str) -> Reading[bool]:
    """Whether the link runs below its maximum generation or width (the plain comparison, as NVML's
    backend makes it; a GPU that drops its generation at idle shows as degraded here, and health
    policy decides what that means)."""
    for cur, mx in ((gen, caps.pcie_max_generation), (width, caps.pcie_max_width)):
        for r in (cur, mx):
            if not r.ok:
                return missing(r.status, source, r.call, r.reason)
    return ok(bool(int(width.value or 0) < int(caps.pcie_max_width.value or 0)
                   or int(gen.value or 0) < int(caps.pcie_max_generation.value or 0)),
              source, "read_attr:current_link_width")

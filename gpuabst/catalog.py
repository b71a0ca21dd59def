"""The device catalog: PCI ids to Akash model slug, nominal memory, interface and architecture.

The catalog ships with the package (``gpuabst/data/catalog.json``, the project's own format, every
entry naming its public sources). It covers every device of Akash's ``gpus.json`` with the same
slug, memory and interface, plus current datacenter parts Akash's table lacks.

Some device ids name more than one product (10de:1e30 is a Quadro RTX 6000 or an RTX 8000,
1002:66a1 an MI50 or an MI60, 10de:2803 an RTX 4060 Ti with 8 or 16 GB). Such an id has one entry
per product, and :meth:`Catalog.resolve` picks one only from evidence the device itself reports:
its subsystem id, PCI revision, market name, real memory (``memory.total_bytes``) and compute unit
count; never from the device id alone. When the evidence does not decide, the resolution says so.

A provider who wants exactly their network's table loads Akash's ``gpus.json`` instead
(:func:`load_gpu_db`, ``--gpu-db FILE`` on the command line) and makes it the active catalog
(:func:`use`).

Equivalent commands: ``lspci -nn -v`` (ids, subsystem, revision), ``nvidia-smi --query-gpu=name,
pci.device_id,pci.sub_device_id,memory.total``, ``amd-smi static --asic --vram``.
"""

from __future__ import annotations

import functools
import json
import math
import os
import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from gpuabst.environment import env_text
from gpuabst.errors import GpuabstError
from gpuabst.model import Device
from gpuabst.naming import naming_key

GIB = 1 << 30

VENDOR_IDS = {"nvidia": "0x10de", "amd": "0x1002", "intel": "0x8086"}
"""PCI vendor ids of the vendor names gpuabst's backends report (``Device.vendor``)."""

MARKETED_SIZES_GI = (1, 2, 3, 4, 5, 6, 8, 10, 11, 12, 16, 20, 24, 32, 40, 48, 64, 72, 80, 94, 96, 128, 141,
                     144, 180, 186, 192, 256, 288)
"""Memory sizes GPUs are sold with, in GiB (Akash writes them as ``80Gi``)."""


class CatalogError(GpuabstError):
    """A catalog or a ``--gpu-db`` file cannot be read: the message names the file and the problem."""


def nominal_memory(total_bytes: int) -> str:
    """The marketed memory size for a device's real memory: ``80Gi`` for an H100's 81559 MiB.

    The rule: the smallest marketed size (:data:`MARKETED_SIZES_GI`) that the real size does not
    exceed by more than 0.5 % and that is at most 15 % larger than it (drivers reserve memory
    and ECC takes a share: a T4 reports 15360 MiB, an L40S 46068 MiB, an H200 143771 MiB -> 141Gi).
    A size outside the list rounds up to whole GiB.
    """
    if total_bytes <= 0:
        raise ValueError(f"memory size must be positive, got {total_bytes}")
    gib = total_bytes / GIB
    for size in MARKETED_SIZES_GI:
        if gib <= size * 1.005 and gib >= size * 0.85:
            return f"{size}Gi"
    return f"{math.ceil(gib - 0.005)}Gi"


def memory_bytes(size: str) -> int:
    """``80Gi`` -> 85899345920 (also ``Mi`` and ``Ti``)."""
    m = re.fullmatch(r"(\d+)(Mi|Gi|Ti)", size.strip())
    if not m:
        raise ValueError(f"not a memory size like 80Gi: {size!r}")
    return int(m.group(1)) << {"Mi": 20, "Gi": 30, "Ti": 40}[m.group(2)]


def normalize_interface(raw: str | None) -> str | None:
    """Akash's interface for labels, attributes and SDL: ``pcie`` or ``sxm``.

    ``PCIe`` -> ``pcie``; ``SXM``, ``SXM2``..``SXM6`` -> ``sxm``; ``OAM`` (the OCP accelerator
    module, AMD's mezzanine form factor, the SXM of other vendors) -> ``sxm``.
    """
    if raw is None:
        return None
    text = raw.strip().lower()
    if text.startswith("sxm") or text == "oam":
        return "sxm"
    if text.startswith("pci"):
        return "pcie"
    return None


@functools.lru_cache(maxsize=1024)
def _hex4(value: str | None) -> str | None:
    """``0x10DE``, ``10de`` -> ``0x10de``; anything else -> None (kept per spelling: asked for every
    device on every read)."""
    if not value:
        return None
    text = value.strip().lower()
    text = text[2:] if text.startswith("0x") else text
    if not re.fullmatch(r"[0-9a-f]{1,4}", text):
        return None
    return f"0x{int(text, 16):04x}"


@attrs.frozen
class CatalogEntry:
    """One product behind a PCI id.

    ``key`` names the entry (``10de:2330``; ``10de:1e30/rtx8000`` where one id is several products).
    ``interface_raw`` is the database value (``SXM5``, ``PCIe``); :attr:`interface` Akash's ``pcie``/``sxm``.
    ``subsystems`` (``10de:129e``), ``revisions`` (``0xc1``), ``compute_units`` and ``names``
    (regular expressions, matched case-insensitively) are the evidence that selects this entry
    among the products sharing its device id.
    """

    key: str
    vendor: str
    vendor_id: str
    device_id: str
    model: str
    memory: str
    interface_raw: str
    market_name: str
    architecture: str | None = None
    subsystems: tuple[str, ...] = ()
    revisions: tuple[str, ...] = ()
    compute_units: tuple[int, ...] = ()
    names: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    note: str | None = None

    @property
    def interface(self) -> str | None:
        return normalize_interface(self.interface_raw)

    @property
    def memory_bytes(self) -> int:
        return memory_bytes(self.memory)

    def matches_name(self, name: str) -> bool:
        """Whether a reported name is this product: one of ``names`` matches, or the slug derived
        from the name (:func:`gpuabst.naming.derive_slug`) is this entry's model."""
        from gpuabst.naming import derive_slug

        if any(re.search(p, name, re.IGNORECASE) for p in self.names):
            return True
        return derive_slug(name) == self.model


@attrs.frozen
class Evidence:
    """What a device reports that can identify it. Ids are ``0x`` hex; ``subsystem`` is ``svid:sdid``."""

    vendor_id: str | None = None
    device_id: str | None = None
    subsystem: str | None = None
    revision: str | None = None
    name: str | None = None
    memory_total_bytes: int | None = None
    compute_units: int | None = None


@attrs.frozen
class Resolution:
    """What the catalog made of a device.

    ``entry``: the product, when the evidence decided. ``candidates``: the entries still possible.
    ``basis``: the evidence used (``PCI id 10de:1e30, subsystem id 10de:129e``). ``reason``: why
    there is no entry. :attr:`model` is set also where the candidates differ only in memory
    (an RTX 4060 Ti whose memory is not known is still an ``rtx4060ti``).
    """

    entry: CatalogEntry | None
    candidates: tuple[CatalogEntry, ...] = ()
    basis: str = ""
    reason: str | None = None

    @property
    def model(self) -> str | None:
        if self.entry is not None:
            return self.entry.model
        models = {c.model for c in self.candidates}
        return models.pop() if len(models) == 1 else None

    @property
    def key(self) -> str:
        if self.entry is not None:
            return self.entry.key
        return " or ".join(c.key for c in self.candidates) or "none"

    @property
    def memory(self) -> str | None:
        return self.entry.memory if self.entry is not None else None

    @property
    def interface_raw(self) -> str | None:
        if self.entry is not None:
            return self.entry.interface_raw
        raws = {c.interface_raw for c in self.candidates}
        return raws.pop() if len(raws) == 1 else None


_GB_IN_NAME = re.compile(r"(\d+)\s*GB\b", re.IGNORECASE)


_RESOLUTIONS_KEPT = 4096
"""Distinct devices whose resolution a Catalog keeps (a machine has a few; the bound caps memory)."""


class Catalog:
    """A set of :class:`CatalogEntry` indexed by PCI ids. ``origin`` says where it was read from."""

    def __init__(self, entries: Iterable[CatalogEntry], vendors: Mapping[str, str], origin: str) -> None:
        self.entries: tuple[CatalogEntry, ...] = tuple(entries)
        self.vendors = dict(vendors)
        self.origin = origin
        self._by_id: dict[tuple[str, str], list[CatalogEntry]] = {}
        for e in self.entries:
            self._by_id.setdefault((e.vendor_id, e.device_id), []).append(e)
        self._resolved: dict[Evidence, Resolution] = {}
        """Resolutions already made: a poll resolves every device again, with the same evidence."""

    def __len__(self) -> int:
        return len(self.entries)

    def __repr__(self) -> str:
        return f"Catalog({len(self.entries)} entries from {self.origin})"

    def entries_for(self, vendor_id: str, device_id: str) -> list[CatalogEntry]:
        """Every product known behind one PCI id (``0x10de``, ``0x2330``; any hex spelling)."""
        v, d = _hex4(vendor_id), _hex4(device_id)
        return list(self._by_id.get((v, d), [])) if v and d else []

    def vendor_name(self, vendor_id: str | None) -> str | None:
        """``0x10de`` -> ``nvidia`` (the lowercase vendor name Akash uses)."""
        v = _hex4(vendor_id)
        return self.vendors.get(v) if v else None

    # --- resolving ------------------------------------------------------------------------------
    def resolve(self, ev: Evidence) -> Resolution:
        """The product a device is, from its evidence; see the module docstring."""
        known = self._resolved.get(ev)
        if known is None:
            known = self._resolve(ev)
            if len(self._resolved) < _RESOLUTIONS_KEPT:
                self._resolved[ev] = known
        return known

    def _resolve(self, ev: Evidence) -> Resolution:
        vid, did = _hex4(ev.vendor_id), _hex4(ev.device_id)
        if vid and did and did not in ("0x0000", "0xffff"):
            cands = self._by_id.get((vid, did), [])
            basis = [f"PCI id {vid[2:]}:{did[2:]}"]
            if not cands:
                return Resolution(None, (), basis[0], f"{vid[2:]}:{did[2:]} is not in the catalog ({self.origin})")
        elif ev.name:
            cands = [e for e in self.entries if (vid is None or e.vendor_id == vid) and e.matches_name(ev.name)]
            basis = ["market name (no PCI device id)"]
            if not cands:
                return Resolution(None, (), basis[0],
                                  f"no PCI device id, and the name {ev.name!r} matches no entry of the catalog")
        else:
            return Resolution(None, (), "", "no PCI device id and no name to look up")
        cands = sorted(cands, key=lambda e: "pciids" not in e.sources)
        for label, keep in self._filters(ev):
            if len(cands) <= 1:
                break
            kept = [c for c in cands if keep(c)]
            if kept and len(kept) < len(cands):
                cands = kept
                basis.append(label)
        if len(cands) == 1:
            return Resolution(cands[0], tuple(cands), ", ".join(basis))
        first = cands[0]
        if all((c.model, c.memory, c.interface) == (first.model, first.memory, first.interface) for c in cands):
            return Resolution(first, tuple(cands), ", ".join(basis))
        options = ", ".join(f"{c.model} {c.memory} {c.interface_raw}" for c in cands)
        return Resolution(None, tuple(cands), ", ".join(basis),
                          f"{cands[0].vendor_id[2:]}:{cands[0].device_id[2:]} is one of several products "
                          f"({options}) and the device reports nothing that tells them apart")

    @staticmethod
    def _filters(ev: Evidence) -> list[tuple[str, Any]]:
        out: list[tuple[str, Any]] = []
        if ev.subsystem:
            sub = ev.subsystem.lower()
            out.append((f"subsystem id {sub}", lambda c: sub in c.subsystems))
        rev4 = _hex4(ev.revision)
        if rev4:
            rev = f"0x{int(rev4, 16):02x}"
            out.append((f"revision {rev}", lambda c: rev in c.revisions))
        if ev.name:
            name = ev.name
            out.append(("market name", lambda c: c.matches_name(name)))
        if ev.memory_total_bytes and ev.memory_total_bytes > 0:
            nominal = nominal_memory(ev.memory_total_bytes)
            out.append((f"real memory ({nominal})", lambda c: c.memory == nominal))
        if ev.compute_units:
            cu = ev.compute_units
            out.append((f"{cu} compute units", lambda c: cu in c.compute_units))
        if ev.name:
            lowered = ev.name.lower()
            gb = _GB_IN_NAME.search(ev.name)
            if gb:
                size = f"{int(gb.group(1))}Gi"
                out.append((f"memory size in the name ({size})", lambda c: c.memory == size))
            if "sxm" in lowered:
                out.append(("SXM in the name", lambda c: c.interface == "sxm"))
            elif "pcie" in lowered:
                out.append(("PCIe in the name", lambda c: c.interface == "pcie"))
        return out

    # --- loading --------------------------------------------------------------------------------
    @classmethod
    def from_document(cls, doc: Any, origin: str) -> Catalog:
        """A catalog in the project's own format (``gpuabst/data/catalog.json``)."""
        if not isinstance(doc, dict) or doc.get("format") != "gpuabst.catalog":
            raise CatalogError(f"{origin}: not a gpuabst catalog (no \"format\": \"gpuabst.catalog\")")
        if doc.get("format_version") != 1:
            raise CatalogError(f"{origin}: unknown catalog format_version {doc.get('format_version')!r}")
        vendors = {v: str(info["vendor"]) for v, info in (doc.get("vendors") or {}).items()}
        entries = []
        for i, d in enumerate(doc.get("devices") or []):
            try:
                match = d.get("match") or {}
                vid = _hex4(d["vendor_id"])
                did = _hex4(d["device_id"])
                if not vid or not did:
                    raise ValueError("vendor_id and device_id must be hex ids")
                entries.append(CatalogEntry(
                    key=str(d["key"]), vendor=vendors.get(vid, vid), vendor_id=vid, device_id=did,
                    model=str(d["model"]), memory=str(d["memory"]), interface_raw=str(d["interface"]),
                    market_name=str(d["market_name"]), architecture=d.get("architecture"),
                    subsystems=tuple(s.lower() for s in match.get("subsystem", ())),
                    revisions=tuple(f"0x{int(r, 16):02x}" for r in match.get("revision", ())),
                    compute_units=tuple(int(c) for c in match.get("compute_units", ())),
                    names=tuple(d.get("names", ())), sources=tuple(d.get("sources", ())), note=d.get("note")))
                memory_bytes(entries[-1].memory)
            except (KeyError, TypeError, ValueError) as e:
                raise CatalogError(f"{origin}: device entry {i} is malformed: {type(e).__name__}: {e}") from e
        return cls(entries, vendors, origin)

    @classmethod
    def from_akash(cls, doc: Any, origin: str) -> Catalog:
        """A catalog from Akash's ``gpus.json``:
        ``{vendorHex: {name, devices: {deviceHex: {name, interface, memory_size}}}}``."""
        if not isinstance(doc, dict) or not doc:
            raise CatalogError(f"{origin}: not Akash's gpus.json format: the top level must be an object of vendors")
        entries: list[CatalogEntry] = []
        vendors: dict[str, str] = {}
        for vhex, vinfo in doc.items():
            vid = _hex4(vhex) if re.fullmatch(r"[0-9a-fA-F]{4}", str(vhex)) else None
            if vid is None:
                raise CatalogError(f"{origin}: not Akash's gpus.json format: vendor key {vhex!r} is not 4 hex digits")
            if not isinstance(vinfo, dict) or not isinstance(vinfo.get("name"), str) \
                    or not isinstance(vinfo.get("devices"), dict):
                raise CatalogError(f"{origin}: not Akash's gpus.json format: vendor {vhex} needs a \"name\" "
                                   "string and a \"devices\" object")
            vendor = vinfo["name"].strip().lower()
            vendors[vid] = vendor
            for dhex, dinfo in vinfo["devices"].items():
                did = _hex4(dhex) if re.fullmatch(r"[0-9a-fA-F]{4}", str(dhex)) else None
                where = f"{vhex}:{dhex}"
                if did is None:
                    raise CatalogError(f"{origin}: not Akash's gpus.json format: device key {where!r} "
                                       "is not 4 hex digits")
                if not isinstance(dinfo, dict):
                    raise CatalogError(f"{origin}: not Akash's gpus.json format: device {where} is not an object")
                for field in ("name", "interface", "memory_size"):
                    if not isinstance(dinfo.get(field), str) or not dinfo[field].strip():
                        raise CatalogError(f"{origin}: device {where} has no {field!r} string")
                if not re.fullmatch(r"[a-z0-9]+", dinfo["name"]):
                    raise CatalogError(f"{origin}: device {where}: name {dinfo['name']!r} is not a lowercase "
                                       "alphanumeric model slug")
                if not re.fullmatch(r"\d+(Mi|Gi|Ti)", dinfo["memory_size"]):
                    raise CatalogError(f"{origin}: device {where}: memory_size {dinfo['memory_size']!r} "
                                       "is not a size like 24Gi")
                if normalize_interface(dinfo["interface"]) is None:
                    raise CatalogError(f"{origin}: device {where}: interface {dinfo['interface']!r} is neither "
                                       "PCIe nor SXM")
                entries.append(CatalogEntry(
                    key=f"{vid[2:]}:{did[2:]}", vendor=vendor, vendor_id=vid, device_id=did, model=dinfo["name"],
                    memory=dinfo["memory_size"], interface_raw=dinfo["interface"], market_name=dinfo["name"],
                    sources=(origin,)))
        return cls(entries, vendors, origin)


# --- the active catalog ---------------------------------------------------------------------------
_lock = threading.Lock()
_builtin: Catalog | None = None
_active: Catalog | None = None
GPU_DB_ENV = "GPUABST_GPU_DB"
MAX_GPU_DB_BYTES = 16 * 1024 * 1024
"""A ``--gpu-db`` file larger than this is refused unread (Akash's gpus.json is a few hundred kB)."""


def _builtin_text() -> str:
    """data/catalog.json: read beside this module where the package is installed as files (importing
    importlib.resources costs a command's start about 15 ms), through importlib.resources otherwise."""
    beside = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "catalog.json")
    if os.path.isfile(beside):
        with open(beside, encoding="utf-8") as f:
            return f.read()
    import importlib.resources

    return (importlib.resources.files("gpuabst") / "data" / "catalog.json").read_text(encoding="utf-8")


def builtin() -> Catalog:
    """The catalog shipped with gpuabst (read once)."""
    global _builtin
    loaded = _builtin  # set once, never unset: no lock needed to read it
    if loaded is not None:
        return loaded
    with _lock:
        if _builtin is None:
            try:
                doc = json.loads(_builtin_text())
            except (OSError, ValueError) as e:
                raise CatalogError(f"the built-in catalog cannot be read: {e}") from e
            _builtin = Catalog.from_document(doc, "gpuabst catalog")
        return _builtin


def load_gpu_db(path: str | os.PathLike[str]) -> Catalog:
    """Akash's ``gpus.json`` (or a network's own copy of it) as a catalog. Raises CatalogError
    naming the file and the problem."""
    from gpuabst.safe_io import read_capped

    name = os.fspath(path)
    raw = read_capped(name, MAX_GPU_DB_BYTES, "an Akash gpus.json", error=CatalogError)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise CatalogError(f"{name}: not UTF-8 text") from e
    try:
        doc = json.loads(text)
    except ValueError as e:
        raise CatalogError(f"{name}: not JSON: {e}") from e
    except RecursionError:
        raise CatalogError(f"{name}: not an Akash gpus.json: nested too deeply") from None
    return Catalog.from_akash(doc, name)


def use(catalog: Catalog | None) -> None:
    """Make ``catalog`` the one model slugs and Akash outputs come from (None: the built-in one)."""
    global _active
    with _lock:
        _active = catalog


def active() -> Catalog:
    """The catalog in use: the one given to :func:`use`, else ``$GPUABST_GPU_DB``, else the built-in one."""
    global _active
    current = _active  # one reference read: atomic, as writes under the lock are
    if current is not None:
        return current
    env = env_text(GPU_DB_ENV)
    if env:
        loaded = load_gpu_db(env)
        with _lock:
            _active = loaded
        return loaded
    return builtin()


# --- devices ----------------------------------------------------------------------------------
def evidence_of(device: Device) -> Evidence:
    """The identifying facts a device reported (PCI ids from NVML ``nvmlDeviceGetPciInfo`` or
    amdsmi ``amdsmi_get_gpu_asic_info``; name; ``memory.total_bytes``; compute units), taken from
    :func:`gpuabst.naming.naming_key`, the one list of the facts a device is named by."""
    _, vendor, name, vendor_id, device_id, svid_raw, sdid_raw, revision, total, cu = naming_key(device)
    svid, sdid = _hex4(svid_raw), _hex4(sdid_raw)
    return Evidence(vendor_id=vendor_id or VENDOR_IDS.get(vendor), device_id=device_id,
                    subsystem=f"{svid[2:]}:{sdid[2:]}" if svid and sdid else None,
                    revision=revision, name=name,
                    memory_total_bytes=int(total) if isinstance(total, int) else None,
                    compute_units=int(cu) if isinstance(cu, int) else None)


def resolve_device(device: Device, catalog: Catalog | None = None) -> Resolution:
    """What ``catalog`` (default: the active one) makes of a device."""
    return (catalog or active()).resolve(evidence_of(device))


def lookup_device(device: Device) -> Resolution | None:
    """The active catalog's resolution of a device where it names a model (``.model``, ``.key``);
    None where the device is unknown or the evidence does not decide its model."""
    res = resolve_device(device)
    return res if res.model is not None else None


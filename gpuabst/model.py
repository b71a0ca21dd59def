"""The common data model: what every backend reports, the same way for every vendor.

All classes are frozen attrs classes. Units are in the field names (``total_bytes``,
``temperature_c``, ``power_w``, ``clock_mhz``, ``_pct``). Every value that can be missing is a
:class:`~gpuabst.reading.Reading`; a field no backend filled in is ``not_recorded``.
JSON round-trips through :mod:`gpuabst.serialize`.
"""

from __future__ import annotations

from collections.abc import Callable
from operator import attrgetter
from typing import Any, TypeVar, cast

import attrs

from gpuabst.reading import UNSET, Reading

T = TypeVar("T")


def _r() -> Any:
    return attrs.field(default=UNSET)


@attrs.frozen
class PciInfo:
    """PCI location and ids. Ids are lowercase ``0x`` hex strings; ``bus_id`` as the kernel writes it
    (``0000:3b:00.0``)."""

    bus_id: Reading[str] = _r()
    vendor_id: Reading[str] = _r()
    device_id: Reading[str] = _r()
    subsystem_id: Reading[str] = _r()
    subsystem_vendor_id: Reading[str] = _r()
    revision_id: Reading[str] = _r()
    class_code: Reading[str] = _r()
    """PCI class, subclass and programming interface (``0x030200``: 3D controller)."""
    bar_sizes_bytes: Reading[dict[str, int]] = _r()
    """Sizes of the assigned BARs by region (``{"bar0": 16777216, "bar1": 137438953472}``)."""


@attrs.frozen
class MemoryInfo:
    """Device memory in bytes."""

    total_bytes: Reading[int] = _r()
    used_bytes: Reading[int] = _r()
    free_bytes: Reading[int] = _r()
    reserved_bytes: Reading[int] = _r()
    bar1_total_bytes: Reading[int] = _r()
    bar1_used_bytes: Reading[int] = _r()
    visible_total_bytes: Reading[int] = _r()
    gtt_total_bytes: Reading[int] = _r()
    max_allocation_bytes: Reading[int] = _r()
    local_memory_bytes: Reading[int] = _r()


@attrs.frozen
class Capabilities:
    """What the device can do: facts that do not change while the driver is loaded."""

    compute_capability: Reading[str] = _r()
    gfx_target: Reading[str] = _r()
    compute_units: Reading[int] = _r()
    ecc_enabled: Reading[bool] = _r()
    ecc_enabled_blocks: Reading[list[str]] = _r()
    ecc_pending_enabled: Reading[bool] = _r()
    mig_enabled: Reading[bool] = _r()
    mig_pending_enabled: Reading[bool] = _r()
    compute_partition_mode: Reading[str] = _r()
    memory_partition_mode: Reading[str] = _r()
    pcie_max_generation: Reading[int] = _r()
    pcie_max_width: Reading[int] = _r()
    nvlink_active_links: Reading[int] = _r()
    xgmi_links: Reading[int] = _r()
    xgmi_hive_id: Reading[str] = _r()
    numa_node: Reading[int] = _r()
    compute_mode: Reading[str] = _r()
    persistence_mode: Reading[bool] = _r()
    power_limit_w: Reading[float] = _r()
    power_limit_default_w: Reading[float] = _r()
    power_limit_min_w: Reading[float] = _r()
    power_limit_max_w: Reading[float] = _r()
    max_graphics_clock_mhz: Reading[int] = _r()
    max_sm_clock_mhz: Reading[int] = _r()
    max_memory_clock_mhz: Reading[int] = _r()
    opencl_version: Reading[str] = _r()
    opencl_c_version: Reading[str] = _r()
    max_work_group_size: Reading[int] = _r()
    fp64: Reading[bool] = _r()
    fp16: Reading[bool] = _r()
    unified_memory: Reading[bool] = _r()
    extensions: Reading[list[str]] = _r()
    device_enqueue: Reading[bool] = _r()


@attrs.frozen
class HealthReadings:
    """Readings that change from one poll to the next, and the counters health is judged on."""

    temperature_c: Reading[float] = _r()
    temperature_hotspot_c: Reading[float] = _r()
    temperature_memory_c: Reading[float] = _r()
    temperature_slowdown_c: Reading[float] = _r()
    temperature_shutdown_c: Reading[float] = _r()
    temperature_max_operating_c: Reading[float] = _r()
    power_draw_w: Reading[float] = _r()
    power_limit_enforced_w: Reading[float] = _r()
    utilization_gpu_pct: Reading[float] = _r()
    utilization_memory_pct: Reading[float] = _r()
    graphics_clock_mhz: Reading[int] = _r()
    sm_clock_mhz: Reading[int] = _r()
    memory_clock_mhz: Reading[int] = _r()
    fan_speed_pct: Reading[float] = _r()
    performance_state: Reading[str] = _r()
    ecc_corrected_volatile: Reading[int] = _r()
    ecc_uncorrected_volatile: Reading[int] = _r()
    ecc_corrected_aggregate: Reading[int] = _r()
    ecc_uncorrected_aggregate: Reading[int] = _r()
    ecc_deferred: Reading[int] = _r()
    retired_pages_single_bit: Reading[int] = _r()
    retired_pages_double_bit: Reading[int] = _r()
    retired_pages_pending: Reading[bool] = _r()
    remapped_rows_corrected: Reading[int] = _r()
    remapped_rows_uncorrected: Reading[int] = _r()
    remapped_rows_pending: Reading[bool] = _r()
    remapped_rows_failure: Reading[bool] = _r()
    throttle_reasons: Reading[list[str]] = _r()
    pcie_current_generation: Reading[int] = _r()
    pcie_current_width: Reading[int] = _r()
    pcie_link_degraded: Reading[bool] = _r()
    device_lost: Reading[bool] = _r()


@attrs.frozen
class Partition:
    """A slice of a physical device: an NVIDIA MIG instance or an AMD compute/memory partition."""

    kind: str
    index: int
    parent_bus_id: str | None
    name: Reading[str] = _r()
    profile: Reading[str] = _r()
    uuid: Reading[str] = _r()
    gpu_instance_id: Reading[int] = _r()
    compute_instance_id: Reading[int] = _r()
    memory_total_bytes: Reading[int] = _r()
    compute_units: Reading[int] = _r()


@attrs.frozen
class Device:
    """One physical device as gpuabst reports it, merged from every backend that saw it."""

    vendor: str
    index: int
    device_type: str = "gpu"
    name: Reading[str] = _r()
    model: Reading[str] = _r()
    uuid: Reading[str] = _r()
    serial: Reading[str] = _r()
    board_part_number: Reading[str] = _r()
    board_product_name: Reading[str] = _r()
    brand: Reading[str] = _r()
    architecture: Reading[str] = _r()
    vbios_version: Reading[str] = _r()
    driver_name: Reading[str] = _r()
    driver_version: Reading[str] = _r()
    cuda_driver_version: Reading[str] = _r()
    platform_name: Reading[str] = _r()
    platform_version: Reading[str] = _r()
    pci: PciInfo = attrs.field(factory=PciInfo)
    memory: MemoryInfo = attrs.field(factory=MemoryInfo)
    capabilities: Capabilities = attrs.field(factory=Capabilities)
    health: HealthReadings = attrs.field(factory=HealthReadings)
    partitions: list[Partition] = attrs.field(factory=list)
    sources: list[str] = attrs.field(factory=list)
    disagreements: list[Disagreement] = attrs.field(factory=list)


@attrs.frozen
class Disagreement:
    """Two backends reported different values for one field of one device (kept, not hidden)."""

    field: str
    kept_source: str
    kept_value: Any
    other_source: str
    other_value: Any


@attrs.frozen
class BackendReport:
    """What one backend said about itself on this machine: whether it ran, and if not, why."""

    name: str
    available: bool
    reason: str | None = None
    install_hint: str | None = None
    library_version: str | None = None
    driver_version: str | None = None
    device_count: int | None = None
    replayed_from: str | None = None
    error: str | None = None


@attrs.frozen
class Snapshot:
    """Every device on the machine, and what each backend said, at one moment."""

    devices: list[Device] = attrs.field(factory=list)
    backends: list[BackendReport] = attrs.field(factory=list)
    taken_at: str | None = None


_FIELD_VALUES: dict[type, tuple[tuple[str, ...], Callable[[Any], tuple[Any, ...]]]] = {}


def field_values(cls: type) -> tuple[tuple[str, ...], Callable[[Any], tuple[Any, ...]]]:
    """An attrs class's field names, and one function giving an instance's values of them all as a
    tuple, in that order (looked up once per class: every read walks or copies model objects)."""
    known = _FIELD_VALUES.get(cls)
    if known is None:
        names = tuple(f.name for f in attrs.fields(cls))
        # attrgetter of several names gives a tuple; of one name, the bare value
        get = attrgetter(*names) if len(names) > 1 else (lambda o: tuple(getattr(o, n) for n in names))
        known = _FIELD_VALUES[cls] = (names, get)
    return known


_REPLACE_SPECS: dict[type, dict[str, int] | None] = {}


def replace(obj: T, **changes: Any) -> T:
    """A copy of a model object with some fields changed: ``attrs.evolve`` at about half its cost.

    Every read of every device goes through this a few times (a poll keeps a device's static facts
    and replaces the rest), so each class's field order is looked up once and the copy is built
    positionally. Unknown field names raise TypeError, as attrs does.
    """
    cls: Any = type(obj)
    if cls not in _REPLACE_SPECS:
        fields = attrs.fields(cls)
        positional = all(f.init and not f.kw_only and f.alias == f.name for f in fields)
        _REPLACE_SPECS[cls] = {f.name: i for i, f in enumerate(fields)} if positional else None
    positions = _REPLACE_SPECS[cls]
    if positions is None:
        return cast(T, attrs.evolve(cast(Any, obj), **changes))
    values = list(field_values(cls)[1](obj))
    for name, value in changes.items():
        try:
            values[positions[name]] = value
        except KeyError:
            raise TypeError(f"{cls.__name__} has no field {name!r}") from None
    return cast(T, cls(*values))

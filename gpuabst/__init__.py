"""gpuabst: one interface over every GPU vendor stack.

    >>> import gpuabst
    >>> for d in gpuabst.devices():           # live hardware
    ...     print(d.name, d.memory.total_bytes)
    >>> gpuabst.devices(fixtures=["fixtures/nvidia/tesla-t4.json"])   # a recorded machine

``import gpuabst`` imports no vendor library (pynvml, amdsmi, pyopencl) and no numpy.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Union

__version__ = "0.1.0"

if TYPE_CHECKING:
    from gpuabst.errors import (
        BackendError,
        BackendUnavailable,
        DeviceLost,
        FixtureError,
        GpuabstError,
        ImportFormatError,
        NotRecorded,
    )
    from gpuabst.fixtures.format import Fixture
    from gpuabst.machine import Machine
    from gpuabst.model import (
        BackendReport,
        Capabilities,
        Device,
        Disagreement,
        HealthReadings,
        MemoryInfo,
        Partition,
        PciInfo,
        Snapshot,
    )
    from gpuabst.reading import Reading, Status

_LAZY = {
    **dict.fromkeys(["BackendError", "BackendUnavailable", "DeviceLost", "FixtureError", "GpuabstError",
                     "ImportFormatError", "NotRecorded"], "gpuabst.errors"),
    **dict.fromkeys(["BackendReport", "Capabilities", "Device", "Disagreement", "HealthReadings", "MemoryInfo",
                     "Partition", "PciInfo", "Snapshot"], "gpuabst.model"),
    "Reading": "gpuabst.reading", "Status": "gpuabst.reading",
}


def __getattr__(name: str) -> Any:
    """Names are imported on first use, so ``import gpuabst`` stays cheap (PEP 562)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'gpuabst' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


FixturePaths = Union[Sequence["str | os.PathLike[str] | Fixture"], "str | os.PathLike[str] | Fixture", None]
"""Fixture files to replay, or fixtures already loaded (:func:`gpuabst.fixtures.format.load`); one of
them alone is taken as a list of one."""


def open_machine(fixtures: FixturePaths = None, **kwargs: Any) -> Machine:
    """A :class:`~gpuabst.machine.Machine` over live hardware, or over ``fixtures`` when given
    (default: ``$GPUABST_FIXTURE``). Use it as a context manager to keep one session open."""
    from gpuabst.machine import Machine

    return Machine(fixtures, **kwargs)


def snapshot(fixtures: FixturePaths = None, **kwargs: Any) -> Snapshot:
    """Every device and every backend's report, read once."""
    with open_machine(fixtures, **kwargs) as m:
        return m.snapshot()


def devices(fixtures: FixturePaths = None, **kwargs: Any) -> list[Device]:
    """Every device, read once and merged across backends."""
    return snapshot(fixtures, **kwargs).devices


def backends(fixtures: FixturePaths = None, **kwargs: Any) -> list[BackendReport]:
    """Each installed backend: whether it can run here, and if not why and what to install."""
    with open_machine(fixtures, **kwargs) as m:
        return m.backend_reports()


__all__ = [
    "BackendError", "BackendReport", "BackendUnavailable", "Capabilities", "Device", "DeviceLost",
    "Disagreement", "FixtureError", "GpuabstError", "HealthReadings", "ImportFormatError", "MemoryInfo",
    "NotRecorded", "Partition", "PciInfo", "Reading", "Snapshot", "Status", "__version__", "backends",
    "devices", "open_machine", "snapshot",
]

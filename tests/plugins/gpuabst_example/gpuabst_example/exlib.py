"""exlib: a stand-in for a vendor's Python binding (think pynvml or amdsmi), for the example only.

It answers for a made-up machine with two "Example X1" accelerators. A real plugin imports the
vendor's own module instead; everything else in the plugin stays the same.
"""

from __future__ import annotations

from dataclasses import dataclass

EX_OK = 0
EX_ERROR_NOT_SUPPORTED = 2
EX_ERROR_NO_PERMISSION = 4
EX_ERROR_UNINITIALIZED = 9
ERROR_NAMES = {EX_ERROR_NOT_SUPPORTED: "EX_ERROR_NOT_SUPPORTED", EX_ERROR_NO_PERMISSION: "EX_ERROR_NO_PERMISSION",
               EX_ERROR_UNINITIALIZED: "EX_ERROR_UNINITIALIZED"}

__version__ = "1.2.0"


class ExError(Exception):
    """Every exlib failure; ``code`` is one of the EX_ERROR_* numbers."""

    def __init__(self, code: int) -> None:
        super().__init__(ERROR_NAMES.get(code, f"EX_ERROR_{code}"))
        self.code = code


@dataclass(frozen=True)
class ExDevice:
    """An opaque device handle."""

    slot: int


@dataclass(frozen=True)
class ExMemory:
    """exlib's memory structure, in KiB like some vendor libraries report it."""

    total_kib: int
    used_kib: int


_BOARDS = [("Example X1", "0000:17:00.0", 16 * 1024 * 1024, 1024, 41), ("Example X1", "0000:65:00.0",
                                                                        16 * 1024 * 1024, 512 * 1024, 55)]
_state = {"init": False}


def _need_init() -> None:
    if not _state["init"]:
        raise ExError(EX_ERROR_UNINITIALIZED)


def ex_init() -> None:
    _state["init"] = True


def ex_shutdown() -> None:
    _state["init"] = False


def ex_driver_version() -> str:
    _need_init()
    return "3.4.1"


def ex_device_count() -> int:
    _need_init()
    return len(_BOARDS)


def ex_device_by_index(i: int) -> ExDevice:
    _need_init()
    if not 0 <= i < len(_BOARDS):
        raise ExError(EX_ERROR_NOT_SUPPORTED)
    return ExDevice(i)


def ex_device_name(d: ExDevice) -> str:
    return _BOARDS[d.slot][0]


def ex_device_pci_bus(d: ExDevice) -> str:
    return _BOARDS[d.slot][1]


def ex_device_memory(d: ExDevice) -> ExMemory:
    _, _, total, used, _ = _BOARDS[d.slot]
    return ExMemory(total, used)


def ex_device_temperature(d: ExDevice) -> int:
    """Degrees Celsius."""
    return _BOARDS[d.slot][4]


def ex_device_fan_percent(d: ExDevice) -> int:
    raise ExError(EX_ERROR_NOT_SUPPORTED)  # passively cooled boards


def ex_device_serial(d: ExDevice) -> str:
    raise ExError(EX_ERROR_NO_PERMISSION)  # readable by root only

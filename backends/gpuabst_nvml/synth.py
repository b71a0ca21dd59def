"""Writing NVML calls from what a vendor tool printed: shared by the nvidia-smi importers.

An importer reads a value the tool printed (``"81920 MiB"``, ``"67.03 W"``, ``"[Not Supported]"``),
turns it with a parser below into what the NVML call returns (bytes, milliwatts...), and records it
with :class:`NvmlWriter`, under the same function and arguments that ``NvmlBackend`` calls:

    w = NvmlWriter(log)
    w.system(driver_version="535.54.03", cuda_version=12020, count=1)
    h = w.device(0)
    w.put("nvmlDeviceGetFanSpeed", h, value=parse(text, percent))

``parse`` gives one of three outcomes: the converted value (recorded as the call's result), an
:class:`Unsupported` (the tool printed "N/A" or "[Not Supported]": recorded as the NVML error
NOT_SUPPORTED with a note of what it printed) or ``None`` (the tool printed nothing usable: the call
is not recorded and replays as ``not_recorded``). A text of the wrong shape raises ValueError, which
importers turn into ImportFormatError naming the file and the element.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar

from gpuabst.fixtures.builder import CallLog, handle
from gpuabst_nvml import constants as C

T = TypeVar("T")

MIB = 1 << 20
UINT64_MAX = (1 << 64) - 1
MAX_TEXT = 256
"""Longest value text accepted: nvidia-smi prints nothing longer in a leaf element."""

UNSUPPORTED_TEXTS = frozenset({"N/A", "[N/A]", "[Not Supported]", "Not Supported", "[NOT SUPPORTED]"})
"""What nvidia-smi prints where NVML answered NOT_SUPPORTED (or the field does not apply)."""

UNKNOWN_TEXTS = frozenset({
    "[REDACTED]", "REDACTED", "Not Found", "Requested functionality has been deprecated", "Unknown Error",
    "[Unknown Error]", "Unknown", "",
})
"""Texts that tell nothing about the NVML result: masked by a contributor, or an error nvidia-smi
does not attribute to one call. Values like these are not recorded."""


class Unsupported:
    """The tool printed a "not supported" sentinel: recorded as NVML_ERROR_NOT_SUPPORTED."""

    __slots__ = ("note",)

    def __init__(self, note: str) -> None:
        self.note = note

    def __repr__(self) -> str:
        return f"Unsupported({self.note!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Unsupported) and other.note == self.note

    def __hash__(self) -> int:
        return hash(self.note)


Outcome = Any
"""A parsed value, an :class:`Unsupported`, or None (not recorded)."""


def parse(text: str | None, convert: Callable[[str], T], tool: str = "nvidia-smi") -> T | Unsupported | None:
    """What the NVML call behind a printed value returned: ``convert(text)``, Unsupported or None.

    Raises ValueError when the text is neither a sentinel nor something ``convert`` accepts.
    """
    if text is None:
        return None
    t = text.strip()
    if len(t) > MAX_TEXT:
        raise ValueError(f"value of {len(t)} characters is too long")
    if t in UNSUPPORTED_TEXTS:
        return Unsupported(f"{tool} printed {t!r}")
    if t in UNKNOWN_TEXTS:
        return None
    return convert(t)


def combine(*outcomes: Outcome) -> list[Any] | Unsupported | None:
    """Several parsed values that one NVML call returns together (``[current, pending]``).

    Any one not recorded -> not recorded; else any one unsupported -> unsupported; else the list.
    """
    if any(o is None for o in outcomes):
        return None
    for o in outcomes:
        if isinstance(o, Unsupported):
            return o
    return list(outcomes)


# --- value parsers: text as printed -> what the NVML call returns ------------------------------

_NUM = r"(\d{1,20})(?:\.(\d{1,6}))?"


def _number(text: str, unit: str | None, what: str) -> float | int:
    pattern = _NUM + (rf"\s*{re.escape(unit)}" if unit else "")
    m = re.fullmatch(pattern, text.strip(), flags=re.IGNORECASE)
    if not m:
        raise ValueError(f"expected {what}, got {text[:60]!r}")
    whole = int(m.group(1))
    if whole > UINT64_MAX:
        raise ValueError(f"{what} {text[:60]!r} is out of range")
    if m.group(2):
        return float(f"{m.group(1)}.{m.group(2)}")
    return whole


def integer(text: str) -> int:
    """``"291"`` -> 291 (a count; at most 2**64-1)."""
    v = _number(text, None, "an integer")
    if isinstance(v, float):
        raise ValueError(f"expected an integer, got {text[:60]!r}")
    return v


def mib_bytes(text: str) -> int:
    """``"81920 MiB"`` -> bytes (nvmlDeviceGetMemoryInfo / nvmlDeviceGetBAR1MemoryInfo fields)."""
    v = _number(text, "MiB", "a size in MiB")
    if isinstance(v, float):
        raise ValueError(f"expected whole MiB, got {text[:60]!r}")
    if v * MIB > UINT64_MAX:
        raise ValueError(f"size {text[:60]!r} is out of range")
    return v * MIB


def milliwatts(text: str) -> int:
    """``"67.03 W"`` -> 67030 (NVML power values are milliwatts)."""
    v = _number(text, "W", "a power in W")
    mw = round(float(v) * 1000)
    if mw > 0xFFFFFFFF:
        raise ValueError(f"power {text[:60]!r} is out of range")
    return mw


def mhz(text: str) -> int:
    """``"1410 MHz"`` -> 1410."""
    return _bounded_int(text, "MHz", "a clock in MHz", 0xFFFFFFFF)


def celsius(text: str) -> int:
    """``"41 C"`` -> 41."""
    return _bounded_int(text, "C", "a temperature in C", 0xFFFFFFFF)


def percent(text: str) -> int | float:
    """``"33 %"`` -> 33 (a fractional percentage is kept as printed)."""
    v = _number(text, "%", "a percentage")
    if v > 100:
        raise ValueError(f"percentage {text[:60]!r} is over 100")
    return v


def link_width(text: str) -> int:
    """``"16x"`` -> 16 (PCIe lanes)."""
    return _bounded_int(text, "x", "a link width such as 16x", 64)


def link_generation(text: str) -> int:
    """``"4"`` -> 4 (PCIe generation)."""
    return _bounded_int(text, None, "a PCIe generation", 99)


def _bounded_int(text: str, unit: str | None, what: str, limit: int) -> int:
    v = _number(text, unit, what)
    if isinstance(v, float) or v > limit:
        raise ValueError(f"expected {what}, got {text[:60]!r}")
    return v


def hex32(text: str) -> int:
    """``"20B210DE"`` or ``"0x20B210DE"`` -> the 32-bit id NVML gives (pciDeviceId, pciSubSystemId)."""
    m = re.fullmatch(r"(?:0x)?([0-9a-fA-F]{1,8})", text.strip())
    if not m:
        raise ValueError(f"expected a hexadecimal PCI id, got {text[:60]!r}")
    return int(m.group(1), 16)


def hex64(text: str) -> int:
    """``"0x00000000002ce8a4"`` -> an address (retired pages)."""
    m = re.fullmatch(r"(?:0x)?([0-9a-fA-F]{1,16})", text.strip())
    if not m:
        raise ValueError(f"expected a hexadecimal address, got {text[:60]!r}")
    return int(m.group(1), 16)


def enabled(text: str) -> int:
    """``"Enabled"``/``"Disabled"`` -> NVML_FEATURE_ENABLED (1) / DISABLED (0)."""
    t = text.strip().lower()
    if t in ("enabled", "enable", "on"):
        return C.FEATURE_ENABLED
    if t in ("disabled", "disable", "off"):
        return 0
    raise ValueError(f"expected Enabled or Disabled, got {text[:60]!r}")


def yes_no(text: str) -> int:
    """``"Yes"``/``"No"`` -> 1 / 0."""
    t = text.strip().lower()
    if t == "yes":
        return 1
    if t == "no":
        return 0
    raise ValueError(f"expected Yes or No, got {text[:60]!r}")


def pstate(text: str) -> int:
    """``"P8"`` -> 8 (nvmlDeviceGetPerformanceState)."""
    m = re.fullmatch(r"P(\d{1,2})", text.strip())
    if not m or int(m.group(1)) > 15:
        raise ValueError(f"expected a performance state P0..P15, got {text[:60]!r}")
    return int(m.group(1))


def cuda_version(text: str) -> int:
    """``"12.4"`` -> 12040 (nvmlSystemGetCudaDriverVersion_v2's encoding: major*1000 + minor*10)."""
    m = re.fullmatch(r"(\d{1,3})\.(\d{1,2})", text.strip())
    if not m:
        raise ValueError(f"expected a CUDA version such as 12.4, got {text[:60]!r}")
    return int(m.group(1)) * 1000 + int(m.group(2)) * 10


def version_text(text: str) -> str:
    """A driver or VBIOS version, kept as printed (``"535.54.03"``)."""
    t = text.strip()
    if not re.fullmatch(r"[0-9A-Za-z][0-9A-Za-z.\-_ ]{0,63}", t):
        raise ValueError(f"expected a version, got {t[:60]!r}")
    return t


def name_text(text: str) -> str:
    """A printable name (product name, part number, serial, UUID), kept as printed."""
    t = text.strip()
    if not t or any(ord(c) < 32 for c in t):
        raise ValueError(f"expected a printable name, got {t[:60]!r}")
    return t


def _inverse(table: dict[int, str]) -> dict[str, int]:
    return {v.lower(): k for k, v in table.items()}


_BRANDS = _inverse(C.BRANDS)
_ARCHITECTURES = _inverse(C.ARCHITECTURES)
_COMPUTE_MODES = {"default": 0, "exclusive_thread": 1, "prohibited": 2, "exclusive_process": 3}


def brand(text: str) -> int | None:
    """``"Tesla"`` -> 2 (nvmlDeviceGetBrand's enum); None for a brand this table does not know."""
    return _BRANDS.get(text.strip().lower())


def architecture(text: str) -> int | None:
    """``"Ampere"`` -> 7 (nvmlDeviceGetArchitecture's enum); None for an unknown name."""
    return _ARCHITECTURES.get(text.strip().lower())


def compute_mode(text: str) -> int:
    """``"Default"`` -> 0, ``"Exclusive_Process"`` -> 3 (nvmlDeviceGetComputeMode)."""
    t = text.strip().lower().replace(" ", "_")
    if t not in _COMPUTE_MODES:
        raise ValueError(f"unknown compute mode {text[:60]!r}")
    return _COMPUTE_MODES[t]


CLOCK_EVENT_BITS: dict[str, int] = {name: bit for bit, name in C.CLOCK_EVENT_REASONS.items()}
CLOCK_EVENT_BITS["display_clocks_setting"] = CLOCK_EVENT_BITS["display_clock_setting"]
"""Reason names as nvidia-smi prints them (``sw_power_cap``) -> the NVML bit."""


# --- writing calls -----------------------------------------------------------------------------

class NvmlWriter:
    """Records NVML calls in the order and with the arguments NvmlBackend makes them."""

    def __init__(self, log: CallLog) -> None:
        self.log = log

    def system(self, *, driver_version: Outcome, cuda_version: Outcome, count: int) -> None:
        """nvmlInit, nvmlSystemGetDriverVersion, nvmlSystemGetCudaDriverVersion_v2, nvmlDeviceGetCount."""
        self.log.result("nvmlInit", value=None)
        self.put("nvmlSystemGetDriverVersion", value=driver_version)
        self.put("nvmlSystemGetCudaDriverVersion_v2", value=cuda_version)
        self.log.result("nvmlDeviceGetCount", value=count)

    def device(self, index: int) -> dict[str, str]:
        """nvmlDeviceGetHandleByIndex(index) -> the handle to pass to this device's calls."""
        h = handle(f"gpu{index}")
        self.log.result("nvmlDeviceGetHandleByIndex", index, value=h)
        return h

    def mig_device(self, parent: dict[str, str], slot: int) -> dict[str, str]:
        """nvmlDeviceGetMigDeviceHandleByIndex(parent, slot) -> the MIG device's handle."""
        h = handle(f"{parent['$handle']}.mig{slot}")
        self.log.result("nvmlDeviceGetMigDeviceHandleByIndex", parent, slot, value=h)
        return h

    def value(self, fn: str, *args: Any, value: Any, note: str | None = None) -> None:
        """Record that ``fn(*args)`` returned ``value`` (fixture form), with an optional note."""
        self.log.result(fn, *args, value=value)
        if note:
            self.log.calls[-1]["note"] = note

    def unsupported(self, fn: str, *args: Any, note: str) -> None:
        """Record that ``fn(*args)`` failed with NVML_ERROR_NOT_SUPPORTED; ``note`` says what was printed."""
        self.error(fn, *args, code=C.NOT_SUPPORTED, note=note)

    def error(self, fn: str, *args: Any, code: int, note: str | None = None) -> None:
        """Record that ``fn(*args)`` failed with the NVML return code ``code``."""
        self.log.error(fn, *args, code=code, name=C.error_name(code), note=note)

    def put(self, fn: str, *args: Any, value: Outcome, note: str | None = None) -> None:
        """Record a parsed outcome: a value, NOT_SUPPORTED for :class:`Unsupported`, nothing for None."""
        if value is None:
            return
        if isinstance(value, Unsupported):
            self.unsupported(fn, *args, note=value.note)
        else:
            self.value(fn, *args, value=value, note=note)

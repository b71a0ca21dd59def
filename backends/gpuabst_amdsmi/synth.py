"""Writing amdsmi calls from what a vendor tool printed: shared by the rocm-smi and amd-smi importers.

An importer collects, per GPU, what the tool said into an :class:`AmdGpu`, under the same functions
and arguments that ``AmdSmiBackend`` calls, and :func:`write_machine` records them:

* dict-valued calls (``amdsmi_get_gpu_asic_info``...) get only the keys the tool printed, so a key it
  did not print replays as ``not_recorded``; a key the tool printed as "N/A" is recorded as amdsmi's
  own ``"N/A"`` string;
* scalar calls (``amdsmi_get_temp_metric(h, EDGE, CURRENT)``...) are recorded with their value, or,
  where the tool printed "N/A", as the error AMDSMI_STATUS_NOT_SUPPORTED with a note of what it
  printed; a value the tool did not print is not recorded at all.
"""

from __future__ import annotations

import math
import re
from typing import Any

import attrs

from gpuabst.fixtures.builder import CallLog, handle
from gpuabst_amdsmi import constants as C

NA = C.NA
MIB = 1 << 20
TEMP = C.AmdSmiTemperatureType
METRIC = C.AmdSmiTemperatureMetric
MEM = C.AmdSmiMemoryType
CLK = C.AmdSmiClkType


@attrs.define
class NotSupported:
    """The tool printed "N/A" for a scalar: recorded as AMDSMI_STATUS_NOT_SUPPORTED."""

    note: str


@attrs.define
class AmdGpu:
    """What one GPU's tool output said, keyed the way the backend calls amdsmi.

    ``dicts``: call (with its extra arguments) -> the partial result dict;
    ``scalars``: call (with its extra arguments) -> value or :class:`NotSupported`.
    """

    dicts: dict[tuple[Any, ...], dict[str, Any]] = attrs.field(factory=dict)
    scalars: dict[tuple[Any, ...], Any] = attrs.field(factory=dict)

    def put(self, call: tuple[Any, ...], key: str, value: Any) -> None:
        """Set ``key`` of a dict-valued call's result (nested keys as ``"a.b"``); None is not recorded."""
        if value is None:
            return
        d = self.dicts.setdefault(call, {})
        *outer, last = key.split(".")
        for k in outer:
            d = d.setdefault(k, {})
        d[last] = value

    def scalar(self, call: tuple[Any, ...], value: Any) -> None:
        """Record a scalar call's value (None: not recorded)."""
        if value is not None:
            self.scalars[call] = value


def write_machine(log: CallLog, gpus: list[AmdGpu]) -> None:
    """amdsmi_init, amdsmi_get_processor_handles, then every recorded call of every GPU."""
    log.result("amdsmi_init", int(C.AmdSmiInitFlags.INIT_AMD_GPUS), value=None)
    tokens = [f"h{i}" for i in range(len(gpus))]
    log.result("amdsmi_get_processor_handles", value=[handle(t) for t in tokens])
    for token, gpu in zip(tokens, gpus, strict=False):
        h = handle(token)
        for (fn, *args), value in gpu.dicts.items():
            log.result(fn, h, *[int(a) for a in args], value=value)
        for (fn, *args), value in gpu.scalars.items():
            plain = [int(a) for a in args]
            if isinstance(value, NotSupported):
                log.error(fn, h, *plain, code=C.NOT_SUPPORTED, name=C.status_name(C.NOT_SUPPORTED), note=value.note)
            else:
                log.result(fn, h, *plain, value=value)
    log.result("amdsmi_shut_down", value=None)


# --- parsing what the tools print -----------------------------------------------------------------
MAX_TEXT = 256


def is_na_text(text: Any) -> bool:
    return isinstance(text, str) and text.strip().upper().startswith("N/A")


def number(text: Any, what: str) -> float | None:
    """A number from ``"53.0"``, ``" \\t0x1f"``, ``"(1051Mhz)"``, ``"808Mhz"``, ``"290.0"``; None for
    nothing; raises ValueError for text that is not a number."""
    if text is None:
        return None
    if isinstance(text, bool):
        raise ValueError(f"{what}: expected a number, got {text!r}")
    if isinstance(text, (int, float)):
        try:
            return finite(float(text), what)
        except OverflowError:  # an int beyond a float's range
            raise ValueError(f"{what}: expected a number a tool could print, got {str(text)[:40]!r}") from None
    if not isinstance(text, str) or len(text) > MAX_TEXT:
        raise ValueError(f"{what}: expected a number, got {str(text)[:40]!r}")
    s = text.strip().strip("()").strip()
    s = re.sub(r"(?i)\s*(mhz|ghz|w|c|%|mv|b|mb|gt/s)$", "", s)
    try:
        return finite(float(int(s, 16)) if s.lower().startswith("0x") else float(s), what)
    except (ValueError, OverflowError):
        raise ValueError(f"{what}: expected a number, got {text!r}") from None


def finite(value: float, what: str) -> float:
    """``value``, or ValueError naming ``what`` for infinity and NaN (``1e40064`` parses as infinity)."""
    if not math.isfinite(value):
        raise ValueError(f"{what}: expected a finite number, got {value!r}")
    return value


def whole(value: float, what: str) -> int:
    """``value`` rounded to an int; ValueError naming ``what`` where it is not a finite number or not
    one a device could report (2**64 or more: no counter or size reaches it)."""
    try:
        result = round(value)
    except (ValueError, OverflowError):
        raise ValueError(f"{what}: expected a finite number, got {value!r}") from None
    if abs(result) >= 2**64:
        raise ValueError(f"{what}: {str(value)[:40]} is not a number a tool could print for a device")
    return result


def integer(text: Any, what: str) -> int | None:
    v = number(text, what)
    return None if v is None else whole(v, what)


def scalar_or_na(text: Any, what: str, parse: Any = integer) -> Any:
    """The parsed value, NotSupported for "N/A", None when absent."""
    if text is None:
        return None
    if is_na_text(text):
        return NotSupported(f"the tool printed {str(text).strip()!r} for {what}")
    return parse(text, what)


def hex_text(text: Any, what: str) -> str | None:
    """``"0x738c"`` from ``"0x738c"`` / ``"0x738C"`` / ``" \\t0x738c"``; None for absent or N/A."""
    if text is None or is_na_text(text):
        return None
    if not isinstance(text, str) or not re.fullmatch(r"\s*0x[0-9a-fA-F]{1,16}\s*", text):
        raise ValueError(f"{what}: expected a 0x hex id, got {str(text)[:40]!r}")
    return f"0x{int(text.strip(), 16):04x}"


def text_value(text: Any, what: str) -> str | None:
    """A plain string value (stripped of rocm-smi's " \\t" prefix); "N/A" stays "N/A"; None for absent."""
    if text is None:
        return None
    if not isinstance(text, (str, int, float)) or isinstance(text, bool):
        raise ValueError(f"{what}: expected text, got {type(text).__name__}")
    s = str(text).strip()
    if len(s) > MAX_TEXT:
        raise ValueError(f"{what}: value is longer than {MAX_TEXT} characters")
    return NA if is_na_text(s) else s

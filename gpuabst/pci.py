"""PCI identifiers written one way everywhere: lowercase ``0x`` hex ids, kernel-style bus ids."""

from __future__ import annotations

import re

_BUS_RE = re.compile(r"^\s*(?:([0-9a-fA-F]{1,8}):)?([0-9a-fA-F]{1,2}):([0-9a-fA-F]{1,2})\.([0-7])\s*$")


_normalized: dict[str, str] = {}
"""Bus ids normalised so far (a machine's few GPUs are read again and again); short ones, at most 4096."""


def normalize_bus_id(text: str) -> str:
    """``00000000:3B:00.0`` -> ``0000:3b:00.0`` (as the kernel writes it under /sys/bus/pci/devices).

    Domains wider than 16 bits (Azure's ``00001580``) keep their significant digits.
    Raises ValueError for anything that is not a PCI address.
    """
    known = _normalized.get(text)
    if known is not None:
        return known
    m = _BUS_RE.match(text)
    if not m:
        raise ValueError(f"not a PCI bus id: {text!r}")
    domain = int(m.group(1) or "0", 16)
    out = f"{domain:04x}:{int(m.group(2), 16):02x}:{int(m.group(3), 16):02x}.{m.group(4)}"
    if len(text) <= 32 and len(_normalized) < 4096:
        _normalized[text] = out
    return out


def hex_id(value: int, width: int = 4) -> str:
    """``0x10de`` for 4318."""
    return f"0x{value:0{width}x}"

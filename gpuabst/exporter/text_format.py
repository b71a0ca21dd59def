"""The Prometheus text exposition format (version 0.0.4) of gpuabst's metric families, written directly.

prometheus-client's ``generate_latest`` checks and escapes every label name of every sample; with
gpuabst's ~110 samples per GPU that was four fifths of a /metrics scrape (docs/performance.md).
gpuabst's metric and label names are fixed, so they are checked once per family here, and only label
values (GPU names, bus ids, reasons) are escaped. The output means the same as the client's: the tests
parse both with prometheus-client's own parser and compare.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from operator import itemgetter
from typing import Any

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
"""The media type of what :func:`exposition` writes (the classic text format every Prometheus reads)."""

_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_TYPES = ("gauge", "counter")


def exposition(families: Iterable[Any]) -> bytes:
    """Text format 0.0.4 of prometheus-client metric families (gauges and counters, without timestamps)."""
    out: list[str] = []
    for fam in families:
        if fam.type not in _TYPES:
            raise ValueError(f"{fam.name}: only gauges and counters are written here, not {fam.type}")
        name = f"{fam.name}_total" if fam.type == "counter" else fam.name
        if not _NAME.fullmatch(name):
            raise ValueError(f"not a Prometheus metric name: {name!r}")
        out.append(f"# HELP {name} {_escape_help(fam.documentation)}\n# TYPE {name} {fam.type}\n")
        getters: dict[tuple[str, ...], Any] = {}  # label names (sorted) -> their values' getter, checked once
        for sample in fam.samples:
            if sample.timestamp is not None:
                raise ValueError(f"{sample.name}: samples with timestamps are not written here")
            labels = sample.labels
            value = _COMMON.get(sample.value) if type(sample.value) is int else None
            if value is None:
                value = go_float(sample.value)
            if not labels:
                out.append(f"{sample.name} {value}\n")
                continue
            keys = tuple(sorted(labels))
            get = getters.get(keys)
            if get is None:
                bad = [k for k in keys if not _LABEL_NAME.fullmatch(k)]
                if bad or not _NAME.fullmatch(sample.name):
                    raise ValueError(f"{sample.name}: not Prometheus label names: {bad}")
                get = getters[keys] = _values_getter(keys)
            values = get(labels)
            joined = "\0".join(values)
            if "\\" in joined or "\n" in joined or '"' in joined:
                values = [_escape_value(v) for v in values]
            out.append(f"{sample.name}{{{','.join(map(_PAIR.format, keys, values))}}} {value}\n")
    return "".join(out).encode("utf-8")


_PAIR = '{}="{}"'
_COMMON = {0: "0.0", 1: "1.0"}
"""The values of one-hot state samples, as :func:`go_float` writes them."""


def _values_getter(keys: tuple[str, ...]) -> Any:
    """A function giving a labels dict's values for ``keys``, in order, as a tuple."""
    if len(keys) == 1:
        key = keys[0]
        return lambda labels: (labels[key],)
    return itemgetter(*keys)


def go_float(value: float) -> str:
    """A sample value as Prometheus writes it (``1.0``, ``+Inf``, ``NaN``; Go's exponent form past 1e7)."""
    d = float(value)
    if math.isinf(d):
        return "+Inf" if d > 0 else "-Inf"
    if math.isnan(d):
        return "NaN"
    s = repr(d)
    dot = s.find(".")
    if d > 0 and dot > 6:  # Go switches to exponents sooner than Python does
        mantissa = f"{s[0]}.{s[1:dot]}{s[dot + 1:]}".rstrip("0.")
        return f"{mantissa}e+{dot - 1:02d}"
    return s


def _escape_help(text: str) -> str:
    return text.replace("\\", r"\\").replace("\n", r"\n")


def _escape_value(text: str) -> str:
    return text.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")

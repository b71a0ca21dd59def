"""gpuabst's metric families, and the Prometheus text exposition format (0.0.4) they are written in.

prometheus-client builds a dict per sample and checks and escapes every label name of every sample;
with gpuabst's ~110 samples per GPU that was four fifths of a /metrics scrape (docs/performance.md).
Here a family is a table: its label names once (checked once), then one row of label values per
sample, and only label values (GPU names, bus ids, reasons) are escaped. The text means the same as
what prometheus-client writes for the same families: the tests parse both with the client's own
parser and compare them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
"""The media type of what :func:`exposition` writes (the classic text format every Prometheus reads)."""

_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_TYPES = ("gauge", "counter")


class Family:
    """One metric family: its type (``gauge`` or ``counter``), name, help text and label names, and a
    row per sample (label values in that order, value). A counter's samples are named ``<name>_total``,
    as prometheus-client names them."""

    __slots__ = ("documentation", "labels", "name", "rows", "type")

    def __init__(self, type: str, name: str, documentation: str, labels: Sequence[str] = ()) -> None:
        if type not in _TYPES:
            raise ValueError(f"{name}: only gauges and counters are written here, not {type}")
        if not _NAME.fullmatch(name):
            raise ValueError(f"not a Prometheus metric name: {name!r}")
        bad = [k for k in labels if not _LABEL_NAME.fullmatch(k)]
        if bad or len(set(labels)) != len(labels):
            raise ValueError(f"{name}: not Prometheus label names, or repeated: {list(labels)}")
        self.type, self.name, self.documentation, self.labels = type, name, documentation, list(labels)
        self.rows: list[tuple[Sequence[str], float]] = []

    def add(self, values: Sequence[str], value: float) -> None:
        """One sample: its label values, in the order of :attr:`labels`, and its value."""
        if len(values) != len(self.labels):
            raise ValueError(f"{self.name}: {len(values)} label values for labels {self.labels}")
        self.rows.append((values, value))

    def add_states(self, values: Sequence[str], states: Sequence[str], current: str) -> None:
        """One sample per state, its label values ``values`` then the state: 1 for ``current``, 0 for
        the others (an enumeration, as kube-state-metrics writes one)."""
        if len(values) + 1 != len(self.labels):
            raise ValueError(f"{self.name}: {len(values)} label values and a state for labels {self.labels}")
        self.rows += [([*values, state], 1 if state == current else 0) for state in states]


def exposition(families: Iterable[Family]) -> bytes:
    """The Prometheus text format of ``families``: HELP and TYPE lines, then a line per sample with its
    labels in name order (as prometheus-client writes them)."""
    out: list[str] = []
    rendered = _RENDERED
    for fam in families:
        name = f"{fam.name}_total" if fam.type == "counter" else fam.name
        out.append(f"# HELP {name} {_escape_help(fam.documentation)}\n# TYPE {name} {fam.type}\n")
        series = (name, *fam.labels)  # a row has a value per label name: keys of one length per family
        for values, value in fam.rows:
            number = _COMMON.get(value) if type(value) is int else None
            if number is None:
                number = go_float(value)
            key = (series, *values)
            head = rendered.get(key)
            if head is None:
                head = _series(name, fam.labels, values)
                if len(rendered) >= _RENDERED_MAX:
                    rendered.clear()
                rendered[key] = head
            out.append(f"{head} {number}\n")
    return "".join(out).encode("utf-8")


_RENDERED: dict[tuple[object, ...], str] = {}
"""A sample's name and labels as written, by (name and label names, label values): the same GPUs give
the same series on every scrape, so each is escaped and ordered once. Emptied when it holds
:data:`_RENDERED_MAX` (a node of several hundred GPUs)."""
_RENDERED_MAX = 32_768


def _series(name: str, labels: Sequence[str], values: Sequence[str]) -> str:
    """``name{a="1",b="x"}``: the labels in name order, their values escaped."""
    if not labels:
        return name
    pairs = ",".join(f'{k}="{_escape_value(v)}"' for k, v in sorted(zip(labels, values, strict=True)))
    return f"{name}{{{pairs}}}"


_COMMON = {0: "0.0", 1: "1.0"}
"""The values of one-hot state samples, as :func:`go_float` writes them."""


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

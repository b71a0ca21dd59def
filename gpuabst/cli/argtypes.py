"""Argument types of the ``gpuabst`` command line: a bad value is a usage error naming the option
(argparse's ``error: argument --timeout: ...``, exit 2), never a value that means nothing or an
internal error later."""

from __future__ import annotations

import argparse
import math


def _finite(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        return math.nan
    return value if math.isfinite(value) else math.nan


def seconds(text: str) -> float:
    """A duration: a finite number of seconds >= 0."""
    value = _finite(text)
    if not value >= 0:  # NaN included
        raise argparse.ArgumentTypeError(f"expected a number of seconds >= 0, not {text!r}")
    return value


def positive_seconds(text: str) -> float:
    """A duration that must pass: a finite number of seconds > 0."""
    value = _finite(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number of seconds > 0, not {text!r}")
    return value


def call_timeout_s(timeout: float | None, default: float | None = None) -> float | None:
    """A ``--timeout`` value (:func:`seconds`, None where not given) as a Machine's ``call_timeout_s``:
    ``default`` where not given, None (wait for ever) for 0."""
    if timeout is None:
        timeout = default
    return timeout or None


def _int(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


def whole(text: str) -> int:
    """A whole number >= 0."""
    value = _int(text)
    if value is None or value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, not {text!r}")
    return value


def count(text: str) -> int:
    """A whole number >= 1."""
    value = _int(text)
    if value is None or value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, not {text!r}")
    return value


def port(text: str) -> int:
    """A TCP port: 0 (any free one) to 65535."""
    value = _int(text)
    if value is None or not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port from 0 to 65535, not {text!r}")
    return value

"""Helpers shared by the importer tests: the calls an imported fixture records, a Reading's status
in ``show --json`` form, and the ``gpuabst`` command run as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

from gpuabst.fixtures import format as fmt


def calls(fixture: fmt.Fixture, fn: str, backend: str = "nvml") -> list[dict[str, Any]]:
    """Every recorded call of ``fn`` in ``fixture``'s ``backend`` recording, in order."""
    return [c for c in fixture.backends[backend].calls if c["fn"] == fn]


def status(doc: dict[str, Any], path: str) -> str:
    """The status of the Reading at dotted ``path`` (``health.fan_speed_pct``) of a device document."""
    *parts, last = path.split(".")
    for p in parts:
        doc = doc[p]
    return str(doc["readings"][last]["status"])


def gpuabst_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m gpuabst ARGS`` in a fresh process, output captured."""
    return subprocess.run([sys.executable, "-m", "gpuabst", *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})

"""A steady poll, and a steady /metrics scrape, of a healthy machine raise no exception anywhere.

An exception raised and caught (an unset variable looked up with os.environ.get, a generator closed
before its end by any() or all()) costs a few µs where the code runs cold, as between an agent's
reads: enough to show in docs/performance.md's comparisons. The fixtures are captures of real GPUs,
which record every call a poll makes (a call a GPU does not support is not asked again).
"""

from __future__ import annotations

import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import FIXTURES

from gpuabst.exporter.prometheus import HealthCollector, metrics_text
from gpuabst.machine import Machine


def _raised(run: Callable[[], Any]) -> list[str]:
    raised: list[str] = []

    def trace(frame: types.FrameType, event: str, arg: Any) -> Any:
        if event == "exception":
            raised.append(f"{arg[0].__name__} in {Path(frame.f_code.co_filename).name}:{frame.f_code.co_name}")
        return trace

    sys.settrace(trace)
    try:
        run()
    finally:
        sys.settrace(None)
    return raised


@pytest.mark.parametrize("fixture", ["nvidia/h100-nvml-idle.json", "nvidia/h200-nvml-busy.json"])
def test_a_steady_poll_and_scrape_raise_nothing(fixture: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GPUABST_FIXTURE", "GPUABST_GPU_DB", "GPUABST_BACKENDS"):
        monkeypatch.delenv(name, raising=False)
    with Machine([FIXTURES / fixture], backends=["nvml"]) as polled, \
            Machine([FIXTURES / fixture], backends=["nvml"]) as served:
        collector = HealthCollector(served, min_interval_s=0)
        for _ in range(2):  # the first read, and the first poll, learn what the GPU does not support
            polled.poll()
            metrics_text(collector)
        assert polled.poll().devices and b"gpuabst_gpu_health{" in metrics_text(collector)
        assert _raised(polled.poll) == []
        assert _raised(lambda: metrics_text(collector)) == []


def test_the_check_sees_an_exception_raised_and_caught() -> None:
    def closes_a_generator_early() -> bool:
        return any(n > 0 for n in (1, 2, 3))

    assert _raised(closes_a_generator_early) == ["GeneratorExit in test_steady_reads.py:<genexpr>"]

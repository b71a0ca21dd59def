"""Model slugs: catalog first, derived from the name otherwise, none for devices that are not GPUs."""

from __future__ import annotations

import pytest

from gpuabst.model import Device, MemoryInfo
from gpuabst.naming import derive_slug, model_for
from gpuabst.reading import Status, ok


@pytest.mark.parametrize(("name", "slug"), [
    ("NVIDIA GeForce RTX 4090", "rtx4090"), ("A100-SXM4-80GB", "a100"), ("NVIDIA H100 80GB HBM3", "h100"),
    ("NVIDIA H200 NVL", "h200nvl"), ("Tesla T4", "t4"), ("NVIDIA GeForce RTX 2080 SUPER", "rtx2080s"),
    ("Tesla V100-SXM3-32GB", "v100"), ("GeForce GTX 1070 Ti", "gtx1070ti"), ("Graphics Device", None),
])
def test_derive_slug(name: str, slug: str | None) -> None:
    assert derive_slug(name) == slug


def test_cpu_device_has_no_model() -> None:
    cpu = Device(vendor="intel", index=0, device_type="cpu", name=ok("pthread-skylake-avx512-Intel(R) Xeon(R)"))
    r = model_for(cpu)
    assert r.status is Status.NOT_APPLICABLE and "cpu device" in (r.reason or "")


def test_unknown_gpu_gets_a_derived_slug_that_says_so() -> None:
    gpu = Device(vendor="nvidia", index=0, name=ok("NVIDIA Future GPU X1"),
                 memory=MemoryInfo(total_bytes=ok(24 * 2**30)))
    r = model_for(gpu)
    assert r.value == "futurex1" and r.source == "naming" and r.call == "derived from the reported name"

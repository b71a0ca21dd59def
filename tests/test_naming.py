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


def _h100(**pci: object) -> Device:
    from gpuabst.model import PciInfo

    ids = {"vendor_id": ok("0x10de"), "device_id": ok("0x2330"), **pci}
    return Device(vendor="nvidia", index=0, name=ok("NVIDIA H100 80GB HBM3"), pci=PciInfo(**ids),  # type: ignore[arg-type]
                  memory=MemoryInfo(total_bytes=ok(81559 * 2**20)))


def test_a_device_named_again_gets_the_same_answer_without_resolving_again(monkeypatch: pytest.MonkeyPatch) -> None:
    from gpuabst import catalog

    catalog.use(None)
    first = model_for(_h100())
    assert first.value == "h100" and first.source == "catalog"
    asked: list[object] = []
    real = catalog.resolve_device

    def counted(device: Device, cat: catalog.Catalog | None = None) -> catalog.Resolution:
        asked.append(device)
        return real(device, cat)

    monkeypatch.setattr(catalog, "resolve_device", counted)
    assert model_for(_h100()) is first and asked == []
    # another device id is another answer, resolved once
    other = model_for(_h100(device_id=ok("0x2335")))
    assert other.value == "h200" and len(asked) == 1


def test_a_new_catalog_names_devices_afresh() -> None:
    from gpuabst import catalog
    from gpuabst.catalog import Catalog, CatalogEntry

    catalog.use(None)
    assert model_for(_h100()).value == "h100"
    entry = CatalogEntry(key="10de:2330", vendor="nvidia", vendor_id="0x10de", device_id="0x2330", model="h100x",
                         memory="80Gi", interface_raw="SXM5", market_name="H100 SXM5 80GB")
    try:
        catalog.use(Catalog([entry], {"0x10de": "nvidia"}, "test table"))
        assert model_for(_h100()).value == "h100x"
    finally:
        catalog.use(None)
    assert model_for(_h100()).value == "h100"


def test_a_plugin_reporting_a_list_as_the_name_gets_a_reading_that_says_why() -> None:
    weird = Device(vendor="nvidia", index=0, name=ok(["NVIDIA", "H100"]),  # type: ignore[arg-type]
                   memory=MemoryInfo(total_bytes=ok(81559 * 2**20)))
    r = model_for(weird)
    assert r.status is Status.ERROR and r.source == "naming" and "not plain values" in (r.reason or "")

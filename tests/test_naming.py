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


def _varied(base: Device) -> dict[str, Device]:
    """``base`` with each fact naming may depend on changed, one at a time (and missing, for Readings)."""
    from gpuabst.model import Capabilities, PciInfo, replace
    from gpuabst.reading import missing

    out: dict[str, Device] = {"device_type": replace(base, device_type="accelerator"),
                              "vendor": replace(base, vendor="amd")}
    for name, other in (("vendor_id", "0x1002"), ("device_id", "0x2335"), ("subsystem_id", "0x16c2"),
                        ("subsystem_vendor_id", "0x10df"), ("revision_id", "0xa2")):
        out[f"pci.{name}"] = replace(base, pci=replace(base.pci, **{name: ok(other)}))
        out[f"pci.{name} missing"] = replace(base, pci=replace(base.pci, **{name: missing(Status.UNSUPPORTED)}))
    out["name"] = replace(base, name=ok("NVIDIA H100 PCIe"))
    out["name missing"] = replace(base, name=missing(Status.NO_PERMISSION))
    out["memory"] = replace(base, memory=replace(base.memory, total_bytes=ok(95830 * 2**20)))
    out["memory missing"] = replace(base, memory=MemoryInfo())
    out["compute units"] = replace(base, capabilities=Capabilities(compute_units=ok(114)))
    out["pci missing"] = replace(base, pci=PciInfo())
    return out


def test_the_naming_key_holds_every_fact_the_catalog_resolves_by() -> None:
    """model_for keeps its answers by naming_key: a fact evidence_of reads that the key missed would
    serve one device's model to another."""
    from gpuabst.catalog import evidence_of
    from gpuabst.model import Capabilities, PciInfo, replace
    from gpuabst.naming import naming_key

    base = replace(_h100(subsystem_id=ok("0x16c1"), subsystem_vendor_id=ok("0x10de"), revision_id=ok("0xa1")),
                   capabilities=Capabilities(compute_units=ok(132)))
    assert isinstance(base.pci, PciInfo)
    for what, device in _varied(base).items():
        assert naming_key(device) != naming_key(base), what
        if evidence_of(device) != evidence_of(base):  # and the answer for each is its own
            assert model_for(device) == model_for(replace(device, index=5)), what
    assert naming_key(replace(base, index=3, uuid=ok("GPU-x"))) == naming_key(base)  # what naming does not read

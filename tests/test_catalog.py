"""The device catalog: Akash's table reproduced, shared device ids told apart by evidence, derivation
for unknown devices, and --gpu-db."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from conftest import SHARED

from gpuabst import catalog
from gpuabst.catalog import Catalog, CatalogError, Evidence, nominal_memory
from gpuabst.cli.main import main
from gpuabst.model import Capabilities, Device, MemoryInfo, PciInfo
from gpuabst.naming import model_for
from gpuabst.reading import ok

MIB = 1 << 20
AKASH_GPUS = SHARED / "reference" / "akash-provider-configs-gpus.json"
needs_reference = pytest.mark.skipif(
    not AKASH_GPUS.is_file(), reason="../shared/reference/akash-provider-configs-gpus.json is not beside the repo")


@pytest.fixture(autouse=True)
def _builtin_catalog() -> Any:
    catalog.use(None)
    yield
    catalog.use(None)


def cat() -> Catalog:
    return catalog.builtin()


def resolve(vendor: str, device: str, **kw: Any) -> catalog.Resolution:
    return cat().resolve(Evidence(vendor_id=vendor, device_id=device, **kw))


def evidence_for(entry: catalog.CatalogEntry) -> Evidence:
    """What a real device of this entry reports: its ids, the first subsystem/revision/CU count the
    entry lists, its market name and its memory less what drivers typically reserve (3 %)."""
    return Evidence(vendor_id=entry.vendor_id, device_id=entry.device_id,
                    subsystem=entry.subsystems[0] if entry.subsystems else None,
                    revision=entry.revisions[0] if entry.revisions else None,
                    name=entry.market_name, memory_total_bytes=int(entry.memory_bytes * 0.97),
                    compute_units=entry.compute_units[0] if entry.compute_units else None)


# --- the shipped catalog ------------------------------------------------------------------------
def test_catalog_entries_are_well_formed_and_sourced() -> None:
    doc = json.loads((Path(catalog.__file__).parent / "data" / "catalog.json").read_text())
    keys = [d["key"] for d in doc["devices"]]
    assert len(keys) == len(set(keys)), "catalog keys are unique"
    for d in doc["devices"]:
        assert d["sources"], f"{d['key']} names no source"
        assert set(d["sources"]) <= set(doc["sources"]), f"{d['key']}: unknown source"
        assert re.fullmatch(r"[a-z0-9]+", d["model"]), d["key"]
        assert re.fullmatch(r"\d+Gi", d["memory"]), d["key"]
        assert catalog.normalize_interface(d["interface"]) in ("pcie", "sxm"), d["key"]
    assert len(cat()) == len(keys)


def test_every_entry_is_selected_by_what_such_a_device_reports() -> None:
    for entry in cat().entries:
        res = cat().resolve(evidence_for(entry))
        assert res.entry is not None, f"{entry.key}: {res.reason}"
        assert (res.entry.model, res.entry.memory, res.entry.interface) == \
            (entry.model, entry.memory, entry.interface), entry.key


@pytest.mark.parametrize("key", ["10de:26b9", "10de:26b5", "10de:27b8", "10de:2331", "10de:2330", "10de:2321",
                                 "10de:2335", "10de:233b", "10de:2901", "10de:2941", "10de:20b7", "10de:2235",
                                 "10de:2236", "10de:2237", "1002:740f", "1002:7408", "1002:74a1", "1002:74a5"])
def test_current_datacenter_parts_are_listed(key: str) -> None:
    v, d = key.split(":")
    entries = cat().entries_for(v, d)
    assert entries and all(e.sources for e in entries)


def test_current_datacenter_parts_have_akash_style_values() -> None:
    expect = {("10de", "26b9"): ("l40s", "48Gi", "pcie"), ("10de", "27b8"): ("l4", "24Gi", "pcie"),
              ("10de", "2321"): ("h100nvl", "94Gi", "pcie"), ("10de", "2901"): ("b200", "180Gi", "sxm"),
              ("10de", "2941"): ("gb200", "186Gi", "sxm"), ("1002", "74a1"): ("mi300x", "192Gi", "sxm"),
              ("1002", "74a5"): ("mi325x", "256Gi", "sxm"), ("1002", "740f"): ("mi210", "64Gi", "pcie"),
              ("10de", "2237"): ("a10g", "24Gi", "pcie"), ("10de", "20b7"): ("a30", "24Gi", "pcie")}
    for (v, d), want in expect.items():
        e = resolve(v, d).entry
        assert e is not None and (e.model, e.memory, e.interface) == want


# --- Akash's table ------------------------------------------------------------------------------
@needs_reference
def test_every_akash_entry_resolves_to_the_same_slug_memory_and_interface() -> None:
    table = json.loads(AKASH_GPUS.read_text())
    count = 0
    for vhex, vendor in table.items():
        for dhex, dev in vendor["devices"].items():
            count += 1
            want = (dev["name"], dev["memory_size"], dev["interface"])
            entries = cat().entries_for(vhex, dhex)
            same = [e for e in entries if (e.model, e.memory, e.interface_raw) == want]
            assert len(same) == 1, f"{vhex}:{dhex} {want}: catalog has {[e.key for e in entries]}"
            entry = same[0]
            assert entry.vendor == vendor["name"]
            res = cat().resolve(evidence_for(entry))
            assert res.entry == entry, f"{vhex}:{dhex}: {res.reason}"
            if len(entries) == 1:  # one product behind the id: the ids alone decide
                alone = resolve(vhex, dhex)
                assert alone.entry == entry
    assert count == 98


@needs_reference
def test_the_akash_table_loads_as_a_gpu_db_and_gives_back_its_own_values() -> None:
    db = catalog.load_gpu_db(AKASH_GPUS)
    table = json.loads(AKASH_GPUS.read_text())
    for vhex, vendor in table.items():
        for dhex, dev in vendor["devices"].items():
            e = db.resolve(Evidence(vendor_id=vhex, device_id=dhex)).entry
            assert e is not None
            assert (e.vendor, e.model, e.memory, e.interface_raw) == \
                (vendor["name"], dev["name"], dev["memory_size"], dev["interface"])


# --- products that share a device id -------------------------------------------------------------
def test_quadro_rtx_6000_and_8000_share_1e30_and_are_told_apart() -> None:
    by_id = resolve("10de", "1e30")
    assert by_id.entry is None and by_id.model is None
    assert "rtx6000" in (by_id.reason or "") and "rtx8000" in (by_id.reason or "")
    assert resolve("10de", "1e30", subsystem="10de:129e").entry.model == "rtx8000"  # type: ignore[union-attr]
    assert resolve("10de", "1e30", subsystem="10de:12ba").entry.model == "rtx6000"  # type: ignore[union-attr]
    assert resolve("10de", "1e30", name="Quadro RTX 8000").entry.memory == "48Gi"  # type: ignore[union-attr]
    big = resolve("10de", "1e30", memory_total_bytes=49152 * MIB)
    assert big.entry is not None and big.entry.model == "rtx8000" and "real memory" in big.basis
    # the Akash issue: an RTX 6000 reporting 24576 MiB on 1e30
    assert resolve("10de", "1e30", name="Quadro RTX 6000", memory_total_bytes=24576 * MIB).entry.model == "rtx6000"  # type: ignore[union-attr]
    assert resolve("10de", "1e78", subsystem="10de:13d9").entry.model == "rtx6000"  # type: ignore[union-attr]
    assert resolve("10de", "1e78", name="Quadro RTX 8000").entry.model == "rtx8000"  # type: ignore[union-attr]


def test_mi50_and_mi60_share_66a1_and_are_told_apart_by_compute_units_and_memory() -> None:
    name = "AMD Instinct MI60 / MI50"  # amdgpu.ids names 66A1 rev 02 this way for both
    mi60 = resolve("1002", "66a1", revision="0x02", name=name, memory_total_bytes=32 << 30, compute_units=64)
    assert mi60.entry is not None and (mi60.entry.model, mi60.entry.memory) == ("mi60", "32Gi")
    mi50 = resolve("1002", "66a1", revision="0x02", name=name, memory_total_bytes=32 << 30, compute_units=60)
    assert mi50.entry is not None and (mi50.entry.model, mi50.entry.memory) == ("mi50", "32Gi")
    small = resolve("1002", "66a1", revision="0x02", name=name, memory_total_bytes=16 << 30, compute_units=60)
    assert small.entry is not None and (small.entry.model, small.entry.memory) == ("mi50", "16Gi")
    assert resolve("1002", "66a1", revision="0x06").entry.model == "provii"  # type: ignore[union-attr]
    unknown = resolve("1002", "66a1", name=name, memory_total_bytes=32 << 30)
    assert unknown.entry is None and unknown.model is None, "no guess without the CU count"
    assert "mi50" in (unknown.reason or "") and "mi60" in (unknown.reason or "")


def test_rtx_4060_ti_8_and_16_gb_share_2803() -> None:
    alone = resolve("10de", "2803", name="NVIDIA GeForce RTX 4060 Ti")
    assert alone.entry is None and alone.model == "rtx4060ti" and alone.memory is None
    assert resolve("10de", "2803", memory_total_bytes=8188 * MIB).entry.memory == "8Gi"  # type: ignore[union-attr]
    assert resolve("10de", "2803", memory_total_bytes=16380 * MIB).entry.memory == "16Gi"  # type: ignore[union-attr]
    assert resolve("10de", "2803", subsystem="10de:16e3").entry.memory == "8Gi"  # type: ignore[union-attr]


def test_navi_22_rx_6700_and_6700_xt() -> None:
    assert resolve("1002", "73df", revision="0xc1").entry.model == "rx6700xt"  # type: ignore[union-attr]
    assert resolve("1002", "73df", revision="0xdf").entry.model == "rx6700"  # type: ignore[union-attr]
    assert resolve("1002", "73df", name="AMD Radeon RX 6700 XT").entry.model == "rx6700xt"  # type: ignore[union-attr]
    assert resolve("1002", "73df", name="AMD Radeon RX 6700").entry.model == "rx6700"  # type: ignore[union-attr]
    assert resolve("1002", "73df", memory_total_bytes=10 << 30).entry.model == "rx6700"  # type: ignore[union-attr]
    pci_name = "Navi 22 [Radeon RX 6700/6700 XT / 6800M]"  # rocm-smi's name: several products at once
    assert resolve("1002", "73df", name=pci_name, memory_total_bytes=12868124672).entry.model == "rx6700xt"  # type: ignore[union-attr]
    twelve = resolve("1002", "73df", memory_total_bytes=12868124672)
    assert twelve.entry is None and twelve.model is None  # 6700 XT, 6750 XT and 6750 GRE all have 12 GB


def test_a100_40_and_80_gb_by_name_when_the_device_id_is_missing() -> None:
    for name, want in (("NVIDIA A100-SXM4-40GB", ("40Gi", "sxm")), ("NVIDIA A100-SXM4-80GB", ("80Gi", "sxm")),
                       ("NVIDIA A100 80GB PCIe", ("80Gi", "pcie")), ("NVIDIA A100-PCIE-40GB", ("40Gi", "pcie"))):
        res = cat().resolve(Evidence(vendor_id="0x10de", name=name))
        assert res.entry is not None, name
        assert (res.entry.model, res.entry.memory, res.entry.interface) == ("a100", *want), name
    vague = cat().resolve(Evidence(vendor_id="0x10de", name="NVIDIA A100"))
    assert vague.entry is None and vague.model == "a100"


def test_a2_and_a16_share_25b6_and_the_subsystem_decides() -> None:
    assert resolve("10de", "25b6", subsystem="10de:157e").entry.model == "a2"  # type: ignore[union-attr]
    assert resolve("10de", "25b6", subsystem="10de:14a9").entry.model == "a16"  # type: ignore[union-attr]
    assert resolve("10de", "25b6").model is None


def test_a_board_vendor_subsystem_does_not_hide_a_known_device() -> None:
    # AIB RTX 4090 (subsystem 1043:889d, not NVIDIA's): the device id still decides
    res = resolve("10de", "2684", subsystem="1043:889d")
    assert res.entry is not None and res.entry.model == "rtx4090"


def test_unknown_device_id() -> None:
    res = resolve("10de", "ffee")
    assert res.entry is None and "not in the catalog" in (res.reason or "")


# --- nominal memory and derivation ----------------------------------------------------------------
@pytest.mark.parametrize(("mib", "want"), [
    (81559, "80Gi"), (143771, "141Gi"), (95830, "94Gi"), (15360, "16Gi"), (46068, "48Gi"), (11441, "12Gi"),
    (23028, "24Gi"), (24564, "24Gi"), (183359, "180Gi"), (196592, "192Gi"), (97887, "96Gi"), (20475, "20Gi"),
    (1998, "2Gi"), (5120, "5Gi"), (32480, "32Gi"), (40960, "40Gi"), (16311, "16Gi"), (8188, "8Gi"),
    (262128, "256Gi"), (11264, "11Gi"), (3000 * 1024, "3000Gi"),
])
def test_nominal_memory_gives_akash_sizes(mib: int, want: str) -> None:
    assert nominal_memory(mib * MIB) == want


def test_nominal_memory_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        nominal_memory(0)


def _device(name: str | None, device_id: str | None, total: int | None = None, vendor: str = "nvidia",
            **pci: str) -> Device:
    return Device(vendor=vendor, index=0,
                  name=ok(name, "test") if name else Device(vendor, 0).name,
                  pci=PciInfo(device_id=ok(device_id, "test") if device_id else PciInfo().device_id,
                              **{k: ok(v, "test") for k, v in pci.items()}),  # type: ignore[arg-type]
                  memory=MemoryInfo(total_bytes=ok(total, "test")) if total else MemoryInfo(),
                  capabilities=Capabilities())


def test_model_for_says_where_the_slug_came_from() -> None:
    known = model_for(_device("NVIDIA H100 80GB HBM3", "0x2330"))
    assert known.value == "h100" and known.source == "catalog" and known.call == "catalog:10de:2330"
    derived = model_for(_device("NVIDIA Quantum X900", "0xffee", 90 << 30))
    assert derived.value == "quantumx900" and derived.source == "naming"
    assert derived.call == "derived from the reported name" and "not in the catalog" in (derived.reason or "")
    ambiguous = model_for(_device(None, "0x1e30"))
    assert not ambiguous.ok and "one of several products" in (ambiguous.reason or "")
    by_subsystem = model_for(_device(None, "0x1e30", subsystem_vendor_id="0x10de", subsystem_id="0x129e"))
    assert by_subsystem.value == "rtx8000"


# --- --gpu-db ------------------------------------------------------------------------------------
def _write(tmp_path: Path, doc: Any, name: str = "gpus.json") -> Path:
    p = tmp_path / name
    p.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return p


GOOD_DB = {"10de": {"name": "nvidia", "devices": {
    "2330": {"name": "h100x", "interface": "SXM5", "memory_size": "80Gi"},
    "1e30": {"name": "rtx6000", "interface": "PCIe", "memory_size": "24Gi"}}}}


def test_gpu_db_is_used_exactly(tmp_path: Path) -> None:
    db = catalog.load_gpu_db(_write(tmp_path, GOOD_DB))
    assert len(db) == 2 and db.origin.endswith("gpus.json")
    # the network's table rules, even where the built-in catalog would say otherwise
    e = db.resolve(Evidence(vendor_id="0x10de", device_id="0x1e30", memory_total_bytes=48 << 30)).entry
    assert e is not None and e.model == "rtx6000"
    assert db.resolve(Evidence(vendor_id="0x10de", device_id="0x2684")).entry is None
    catalog.use(db)
    assert model_for(_device("NVIDIA H100 80GB HBM3", "0x2330")).value == "h100x"
    # unknown to that table: derived from the name
    assert model_for(_device("NVIDIA GeForce RTX 4090", "0x2684")).source == "naming"


@pytest.mark.parametrize(("doc", "words"), [
    ("{not json", "not JSON"),
    ([1, 2], "top level must be an object"),
    ({"nvda": {"name": "nvidia", "devices": {}}}, "is not 4 hex digits"),
    ({"10de": {"name": "nvidia"}}, "\"devices\" object"),
    ({"10de": {"name": "nvidia", "devices": {"2330": {"name": "h100", "interface": "SXM5"}}}}, "memory_size"),
    ({"10de": {"name": "nvidia", "devices": {"2330": {"name": "h100", "interface": "SXM5",
                                                      "memory_size": "80GB"}}}}, "size like 24Gi"),
    ({"10de": {"name": "nvidia", "devices": {"2330": {"name": "H100 SXM", "interface": "SXM5",
                                                      "memory_size": "80Gi"}}}}, "model slug"),
    ({"10de": {"name": "nvidia", "devices": {"2330": {"name": "h100", "interface": "NVLink",
                                                      "memory_size": "80Gi"}}}}, "neither PCIe nor SXM"),
    ({"10de": {"name": "nvidia", "devices": {"h100": {"name": "h100"}}}}, "device key '10de:h100' is not 4 hex"),
    ({"10de": {"name": "nvidia", "devices": {"2330": ["h100", "SXM5", "80Gi"]}}}, "device 10de:2330 is not an "
                                                                                   "object"),
])
def test_malformed_gpu_db_is_a_one_line_error(tmp_path: Path, doc: Any, words: str) -> None:
    path = _write(tmp_path, doc)
    with pytest.raises(CatalogError) as err:
        catalog.load_gpu_db(path)
    assert words in str(err.value) and str(path) in str(err.value) and "\n" not in str(err.value)


def test_missing_gpu_db_file(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="cannot read"):
        catalog.load_gpu_db(tmp_path / "absent.json")


def test_gpu_db_that_is_not_utf8_text(tmp_path: Path) -> None:
    path = tmp_path / "gpus.json"
    path.write_bytes(b'{"10de": "\xff\xfe"}')
    with pytest.raises(CatalogError, match=r"gpus\.json: not UTF-8 text$"):
        catalog.load_gpu_db(path)


def test_cli_gpu_db(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from synthetic import nvml_fixture

    from gpuabst.fixtures.format import save

    fx = tmp_path / "h100.json"
    save(nvml_fixture(1), fx)
    assert main(["labels", "--fixture", str(fx), "--gpu-db", str(_write(tmp_path, GOOD_DB))]) == 0
    assert "akash.network/capabilities.gpu.vendor.nvidia.model.h100x=1" in capsys.readouterr().out
    bad = _write(tmp_path, {"10de": {"name": "nvidia"}}, "bad.json")
    assert main(["labels", "--fixture", str(fx), "--gpu-db", str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("gpuabst: error: ") and str(bad) in err and err.count("\n") == 1


def test_gpu_db_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(catalog.GPU_DB_ENV, str(_write(tmp_path, GOOD_DB)))
    catalog.use(None)
    assert catalog.active().origin.endswith("gpus.json")
    assert model_for(_device("NVIDIA H100 80GB HBM3", "0x2330")).value == "h100x"


def test_the_builtin_catalog_reads_the_same_through_importlib_resources(monkeypatch: pytest.MonkeyPatch) -> None:
    """Installed as files, the catalog is read beside the module; where it is not a file there (a zip
    install), through importlib.resources: the same document either way."""
    import importlib.resources
    import os

    beside = catalog._builtin_text()
    assert beside == (importlib.resources.files("gpuabst") / "data" / "catalog.json").read_text(encoding="utf-8")
    real_isfile = os.path.isfile
    asked: list[str] = []

    def not_beside(path: str) -> bool:
        asked.append(path)
        return False if path.endswith("catalog.json") else real_isfile(path)

    monkeypatch.setattr(os.path, "isfile", not_beside)
    assert catalog._builtin_text() == beside and any(p.endswith("catalog.json") for p in asked)
    monkeypatch.setattr(catalog, "_builtin", None)
    assert catalog.builtin().resolve(Evidence(vendor_id="0x10de", device_id="0x2330")).model == "h100"

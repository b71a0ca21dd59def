"""gpuabst compare: another driver version, another vendor, the same GPU through two backends, and a
saved snapshot against the fixture it came from."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import FIXTURES

from gpuabst.cli.main import main
from gpuabst.evaluate.compare import compare, load_side
from gpuabst.fixtures import format as fmt

NV = FIXTURES / "nvidia"


def _show_json(fixture: Path, out: Path, capsys: pytest.CaptureFixture[str]) -> dict:  # type: ignore[type-arg]
    assert main(["show", "--json", "--fixture", str(fixture)]) == 0
    text = capsys.readouterr().out
    out.write_text(text)
    return json.loads(text)  # type: ignore[no-any-return]


def test_another_driver_version(capsys: pytest.CaptureFixture[str]) -> None:
    a, b = NV / "rtx-3090-v12.json", NV / "rtx-3090-v13.json"
    assert main(["compare", str(a), str(b), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["schema"] == "gpuabst.compare"
    da, db = fmt.load(a).backends["nvml"].driver_version, fmt.load(b).backends["nvml"].driver_version
    assert da != db and f"backend nvml: driver {da} -> {db}" in doc["backend_differences"]
    (pair,) = doc["devices"]
    diffs = {d["field"]: d for d in pair["differences"]}
    assert diffs["driver_version"]["a"]["value"] == da and diffs["driver_version"]["b"]["value"] == db
    assert diffs["driver_version"]["kind"] == "value"
    assert "name" not in diffs and pair["same"] > 0


def test_another_vendor_shows_value_and_status_differences(capsys: pytest.CaptureFixture[str]) -> None:
    amd = sorted((FIXTURES / "amd").glob("*.json"))
    amd = [p for p in amd if not p.name.endswith(".expected.json")]
    if not amd:  # AMD fixtures arrive with the amdsmi backend; the PCI fixture has an AMD GPU too
        amd = [FIXTURES / "pci" / "h100-mi300x-aspeed.json"]
    c = compare(load_side(NV / "tesla-t4.json"), load_side(amd[0]))
    pair = c.pairs[0]
    assert pair.a is not None and pair.b is not None
    diffs = {d.field: d for d in pair.differences}
    assert "vendor" in diffs or "name" in diffs
    assert any(d.kind == "status" for d in pair.differences)
    assert main(["compare", str(NV / "tesla-t4.json"), str(amd[0])]) == 0
    out = capsys.readouterr().out
    assert out.startswith("A: ") and "  ->  " in out


def test_one_fixture_through_two_backends(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """One machine's fixture with NVML and OpenCL recordings: --a-backend/--b-backend compare the two views."""
    nvml = fmt.load(NV / "gtx-1070-x2-v9.json")
    opencl_files = [p for p in sorted((FIXTURES / "opencl").glob("*.json")) if not p.name.endswith(".expected.json")]
    assert opencl_files, "the OpenCL fixtures are needed here"
    opencl = fmt.load(opencl_files[0])
    data = nvml.to_json()
    data["backends"]["opencl"] = opencl.to_json()["backends"]["opencl"]
    both = tmp_path / "both.json"
    both.write_text(fmt.dumps(fmt.from_json(data)))
    assert main(["compare", str(both), str(both), "--a-backend", "nvml", "--b-backend", "opencl", "--json",
                 "--static"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["a"]["backends"] == ["nvml"] and doc["b"]["backends"] == ["opencl"]
    first = doc["devices"][0]
    assert first["a"]["sources"] == ["nvml"] and first["b"]["sources"] == ["opencl"]
    fields = {d["field"] for d in first["differences"]}
    assert "platform_name" in fields  # OpenCL names its platform, NVML has no such call
    assert not any(f.startswith("health.") for f in fields)  # --static


def test_a_saved_snapshot_equals_its_fixture_and_devices_match_by_bus_id(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fixture = NV / "dual-2080-v13.json"
    doc = _show_json(fixture, tmp_path / "show.json", capsys)
    assert len(doc["devices"]) == 2
    c = compare(load_side(tmp_path / "show.json"), load_side(fixture))
    assert [p.matched_by for p in c.pairs] == ["bus_id", "bus_id"]
    assert all(p.differences == [] for p in c.pairs), [p.differences for p in c.pairs]
    doc["devices"].reverse()
    (tmp_path / "reversed.json").write_text(json.dumps(doc))
    c = compare(load_side(tmp_path / "reversed.json"), load_side(fixture))
    assert all(p.differences == [] and p.matched_by == "bus_id" for p in c.pairs)
    assert c.pairs[0].a is not None and c.pairs[0].a.index == 1


def test_a_device_on_one_side_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = _show_json(NV / "dual-2080-v13.json", tmp_path / "two.json", capsys)
    doc["devices"] = doc["devices"][:1]
    (tmp_path / "one.json").write_text(json.dumps(doc))
    assert main(["compare", str(tmp_path / "two.json"), str(tmp_path / "one.json")]) == 0
    assert "only in A: A1 " in capsys.readouterr().out


def test_bad_input_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "x.json").write_text('{"schema": "something else"}')
    (tmp_path / "t.json").write_text("{")
    for bad in ("x.json", "t.json", "missing.json"):
        assert main(["compare", str(tmp_path / bad), str(NV / "a10g.json")]) == 1
        err = capsys.readouterr().err
        assert err.startswith("gpuabst: error:") and err.count("\n") == 1 and bad in err


def test_a_partition_only_one_side_has_is_a_count_difference_and_its_fields_are_present_on_one_side() -> None:
    from gpuabst.evaluate.compare import compare_devices
    from gpuabst.model import replace

    (mig,) = load_side(NV / "h100-mig.json").devices
    assert len(mig.partitions) >= 2
    fewer = replace(mig, partitions=mig.partitions[:1])
    diffs, _ = compare_devices(mig, fewer)
    kinds = {(d.field, d.kind) for d in diffs}
    assert ("partitions", "value") in kinds
    assert all(kind == "presence" for field, kind in kinds if field.startswith("partitions[1]."))
    assert any(field.startswith("partitions[1].") for field, _ in kinds)
    assert compare_devices(mig, fewer, ignore=["partitions*"])[0] == []


def test_a_number_against_text_is_a_value_difference() -> None:
    from gpuabst.evaluate.compare import compare_devices
    from gpuabst.model import replace
    from gpuabst.reading import ok

    (d,) = load_side(NV / "a10g.json").devices
    text = replace(d, health=replace(d.health, temperature_c=ok("hot", "nvml", "nvmlDeviceGetTemperatureV")))
    diffs, _ = compare_devices(d, text)
    assert [(x.field, x.kind) for x in diffs] == [("health.temperature_c", "value")]


def test_show_documents_by_backend_and_without_devices(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = _show_json(NV / "a10g.json", tmp_path / "a10g.json", capsys)
    assert load_side(tmp_path / "a10g.json", backends=["opencl"]).devices == []
    assert len(load_side(tmp_path / "a10g.json", backends=["nvml"]).devices) == 1
    doc["devices"] = []
    (tmp_path / "none.json").write_text(json.dumps(doc))
    assert main(["compare", str(tmp_path / "none.json"), str(tmp_path / "none.json")]) == 0
    assert "no devices on either side" in capsys.readouterr().out
    doc["devices"] = {"0": {}}
    (tmp_path / "bad.json").write_text(json.dumps(doc))
    from gpuabst.errors import GpuabstError

    with pytest.raises(GpuabstError, match="a show document needs a devices list"):
        load_side(tmp_path / "bad.json")


def test_live_nvml_and_nvidia_smi_xml_of_the_same_gpu_agree() -> None:
    """One H200 read twice in the same second: by gpuabst's NVML backend (a capture) and by
    `nvidia-smi -q -x` (imported). The importer must land every fact the XML shows on the same field
    with the same value; what differs is only MiB rounding, a power sample taken a moment apart, and
    what the XML does not print (each of those not_recorded on the imported side)."""
    c = compare(load_side(NV / "h200-nvml-idle.json"), load_side(NV / "h200-smi-xml.json"))
    (pair,) = c.pairs
    assert pair.matched_by == "bus_id"
    by_field = {d.field: d for d in pair.differences}
    rounded = {"memory.free_bytes", "memory.reserved_bytes", "memory.bar1_used_bytes"}
    for field in rounded:
        d = by_field.pop(field)
        assert d.a is not None and d.b is not None and d.kind == "value"
        assert abs(d.a.get(0) - d.b.get(0)) < 2**20, (field, d)
    power = by_field.pop("health.power_draw_w")
    assert power.a is not None and power.b is not None
    assert abs(power.a.get(0.0) - power.b.get(0.0)) < 1.0
    for field, d in by_field.items():  # everything else: shown by NVML, absent from the XML
        assert d.kind == "status" and d.b is not None and d.b.status == "not_recorded", (field, d)
    assert set(by_field) == {
        "capabilities.compute_capability", "capabilities.compute_units", "capabilities.nvlink_active_links",
        "capabilities.numa_node", "health.temperature_slowdown_c", "health.temperature_shutdown_c",
        "health.temperature_max_operating_c"}
    assert pair.same >= 80


def test_live_opencl_and_clinfo_of_the_same_gpu_agree() -> None:
    """One H200 read by gpuabst's OpenCL backend (NVIDIA's ICD, in the all-backends capture) and by
    clinfo a minute earlier (imported). The importer must land every fact clinfo prints on the same
    field with the same value, the bus id included although clinfo's NVIDIA topology line prints it
    with bus and device swapped; what differs is only what clinfo does not print for NVIDIA."""
    c = compare(load_side(NV / "h200-all-backends.json", backends=["opencl"]),
                load_side(FIXTURES / "opencl" / "clinfo-nvidia-h200.json"))
    (pair,) = c.pairs
    assert pair.matched_by == "bus_id" and pair.a is not None and pair.a.pci.bus_id.value == "0000:00:06.0"
    assert {d.field: (d.kind, d.b.status if d.b is not None else None) for d in pair.differences} == {
        "board_product_name": ("status", "not_recorded"), "pci.device_id": ("status", "not_recorded"),
        "capabilities.device_enqueue": ("status", "not_recorded")}
    assert pair.same >= 90

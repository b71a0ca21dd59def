"""``gpuabst import nvidia-smi-xml``: schema generations of real captures, hostile XML, the CLI, round trip.

The self-contained tests build small ``nvidia-smi -q -x`` documents here (their values are chosen
below); the capture tests read ../shared/captures/nvidia and are marked ``needs_captures``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import gpuabst_nvml.import_nvidia_smi_xml as imp
import pytest
from conftest import FIXTURES, captures, needs_captures
from gpuabst_nvml import synth
from importer_helpers import calls, gpuabst_cli, status

import gpuabst
from gpuabst.errors import ImportFormatError
from gpuabst.fixtures import format as fmt
from gpuabst.fixtures.importers import run_importer
from gpuabst.serialize import to_dict

MIB = 1 << 20
NVIDIA = [p for p in captures("nvidia") if p.suffix == ".xml"]


def gpu_xml(bus: str = "00000000:3B:00.0", *, name: str = "NVIDIA H100 80GB HBM3", total: str = "81559 MiB",
            uuid: str = "GPU-aaaaaaaa-bbbb-4ccc-8ddd-000000000001", device_id: str = "233010DE",
            ecc: str = "", temp: str = "33 C", extra: str = "") -> str:
    return f"""<gpu id="{bus}">
  <product_name>{name}</product_name><product_brand>NVIDIA</product_brand>
  <product_architecture>Hopper</product_architecture><persistence_mode>Enabled</persistence_mode>
  <serial>1650000000001</serial><uuid>{uuid}</uuid><vbios_version>96.00.74.00.0D</vbios_version>
  <pci><pci_bus>3B</pci_bus><pci_device>00</pci_device><pci_domain>0000</pci_domain>
    <pci_device_id>{device_id}</pci_device_id><pci_bus_id>{bus}</pci_bus_id>
    <pci_sub_system_id>16C110DE</pci_sub_system_id>
    <pci_gpu_link_info><pcie_gen><max_link_gen>5</max_link_gen><current_link_gen>5</current_link_gen></pcie_gen>
      <link_widths><max_link_width>16x</max_link_width><current_link_width>16x</current_link_width></link_widths>
    </pci_gpu_link_info></pci>
  <fan_speed>N/A</fan_speed><performance_state>P0</performance_state>
  <clocks_event_reasons><clocks_event_reason_gpu_idle>Active</clocks_event_reason_gpu_idle>
    <clocks_event_reason_sw_power_cap>Active</clocks_event_reason_sw_power_cap>
    <clocks_event_reason_hw_slowdown>Not Active</clocks_event_reason_hw_slowdown></clocks_event_reasons>
  <fb_memory_usage><total>{total}</total><reserved>512 MiB</reserved><used>1 MiB</used><free>81046 MiB</free>
  </fb_memory_usage>
  <compute_mode>Default</compute_mode>
  <utilization><gpu_util>7 %</gpu_util><memory_util>1 %</memory_util></utilization>
  <ecc_mode><current_ecc>Enabled</current_ecc><pending_ecc>Enabled</pending_ecc></ecc_mode>
  {ecc or '''<ecc_errors><volatile><sram_correctable>2</sram_correctable><sram_uncorrectable>0</sram_uncorrectable>
    <dram_correctable>3</dram_correctable><dram_uncorrectable>1</dram_uncorrectable></volatile>
    <aggregate><sram_correctable>10</sram_correctable><sram_uncorrectable_parity>1</sram_uncorrectable_parity>
    <sram_uncorrectable_secded>2</sram_uncorrectable_secded><dram_correctable>N/A</dram_correctable>
    <dram_uncorrectable>4</dram_uncorrectable></aggregate></ecc_errors>'''}
  <temperature><gpu_temp>{temp}</gpu_temp><gpu_temp_max_threshold>92 C</gpu_temp_max_threshold>
    <gpu_temp_slow_threshold>89 C</gpu_temp_slow_threshold></temperature>
  <gpu_power_readings><average_power_draw>71.50 W</average_power_draw><instant_power_draw>80.00 W</instant_power_draw>
    <current_power_limit>700.00 W</current_power_limit><requested_power_limit>650.00 W</requested_power_limit>
    <default_power_limit>700.00 W</default_power_limit><min_power_limit>200.00 W</min_power_limit>
    <max_power_limit>700.00 W</max_power_limit></gpu_power_readings>
  <clocks><graphics_clock>345 MHz</graphics_clock><sm_clock>345 MHz</sm_clock><mem_clock>2619 MHz</mem_clock></clocks>
  {extra}
</gpu>"""


def log_xml(*gpus: str, head: str = '<?xml version="1.0" ?>\n<!DOCTYPE nvidia_smi_log SYSTEM "nvsmi_device_v12.dtd">',
            attached: int | None = None, cuda: str = "12.4") -> str:
    return f"""{head}
<nvidia_smi_log><timestamp>Thu Nov 26 12:00:00 2026</timestamp><driver_version>550.54.15</driver_version>
<cuda_version>{cuda}</cuda_version><attached_gpus>{len(gpus) if attached is None else attached}</attached_gpus>
{''.join(gpus)}
</nvidia_smi_log>
"""


def write(tmp_path: Path, text: str | bytes, name: str = "smi.xml") -> Path:
    p = tmp_path / name
    if isinstance(text, bytes):
        p.write_bytes(text)
    else:
        p.write_text(text, encoding="utf-8")
    return p


def replay(tmp_path: Path, *xml_paths: Path) -> list[dict[str, Any]]:
    fixture = run_importer("nvidia-smi-xml", [str(p) for p in xml_paths])
    out = tmp_path / "fixture.json"
    fmt.save(fixture, out)
    return to_dict(gpuabst.snapshot([out]).devices)  # type: ignore[no-any-return]


# --- mapping, on documents written here ----------------------------------------------------------

def test_values_map_to_the_backends_calls(tmp_path: Path) -> None:
    fx = imp.import_files([str(write(tmp_path, log_xml(gpu_xml())))])
    assert calls(fx, "nvmlSystemGetCudaDriverVersion_v2")[0]["result"] == 12040
    assert calls(fx, "nvmlDeviceGetMemoryInfo")[0]["args"][1] == 0x02000028
    fan = calls(fx, "nvmlDeviceGetFanSpeed")[0]
    assert fan["error"] == {"code": 3, "name": "NVML_ERROR_NOT_SUPPORTED", "note": "nvidia-smi printed 'N/A'"}
    assert calls(fx, "nvmlDeviceGetCurrentClocksEventReasons")[0]["result"] == 0x1 | 0x4
    assert not calls(fx, "nvmlDeviceGetCurrentClocksThrottleReasons")
    assert calls(fx, "nvmlDeviceGetBrand")[0]["result"] == 14
    assert calls(fx, "nvmlDeviceGetArchitecture")[0]["result"] == 9
    assert calls(fx, "nvmlDeviceGetPowerManagementLimit")[0]["result"] == 650000
    assert calls(fx, "nvmlDeviceGetEnforcedPowerLimit")[0]["result"] == 700000
    assert not calls(fx, "nvmlDeviceGetTemperatureThreshold") or all(
        c["args"][1] != 3 for c in calls(fx, "nvmlDeviceGetTemperatureThreshold"))  # max_gpu absent: not recorded
    prov = fx.provenance
    assert (prov["kind"], prov["tool"], prov["source"], prov["driver_version"], prov["dtd_version"]) == (
        "import", "nvidia-smi -q -x", "smi.xml", "550.54.15", "v12")
    assert prov["imported_by"].startswith("gpuabst import nvidia-smi-xml ")


def test_replay_of_an_imported_document(tmp_path: Path) -> None:
    [d] = replay(tmp_path, write(tmp_path, log_xml(gpu_xml())))
    assert d["name"] == "NVIDIA H100 80GB HBM3" and d["brand"] == "NVIDIA" and d["architecture"] == "Hopper"
    assert d["memory"]["total_bytes"] == 81559 * MIB and d["memory"]["reserved_bytes"] == 512 * MIB
    assert d["pci"]["bus_id"] == "0000:3b:00.0" and d["pci"]["device_id"] == "0x2330"
    assert d["pci"]["subsystem_id"] == "0x16c1" and d["pci"]["vendor_id"] == "0x10de"
    assert d["driver_version"] == "550.54.15" and d["cuda_driver_version"] == "12.4"
    h = d["health"]
    assert h["ecc_corrected_volatile"] == 5 and h["ecc_uncorrected_volatile"] == 1  # sram + dram
    assert h["ecc_corrected_aggregate"] == 10  # dram N/A counts nothing
    assert h["ecc_uncorrected_aggregate"] == 1 + 2 + 4  # parity + secded (v13) + dram
    assert h["power_draw_w"] == 71.5 and h["temperature_c"] == 33 and h["utilization_gpu_pct"] == 7
    assert h["throttle_reasons"] == ["gpu_idle", "sw_power_cap"]
    assert status(d, "health.fan_speed_pct") == "unsupported"
    assert status(d, "health.temperature_max_operating_c") == "not_recorded"
    assert status(d, "health.retired_pages_single_bit") == "not_recorded"
    assert d["capabilities"]["pcie_max_width"] == 16 and d["capabilities"]["power_limit_max_w"] == 700.0


def test_old_ecc_layout_retired_pages_and_throttle_names(tmp_path: Path) -> None:
    ecc = """<ecc_errors><volatile><single_bit><device_memory>1</device_memory><total>1</total></single_bit>
      <double_bit><total>0</total></double_bit></volatile>
      <aggregate><single_bit><total>291</total></single_bit><double_bit><total>7627</total></double_bit></aggregate>
      </ecc_errors>"""
    extra = """<clocks_throttle_reasons><clocks_throttle_reason_display_clocks_setting>Active
      </clocks_throttle_reason_display_clocks_setting></clocks_throttle_reasons>
      <power_readings><power_draw>50.60 W</power_draw><power_limit>350.00 W</power_limit>
      <enforced_power_limit>300.00 W</enforced_power_limit></power_readings>
      <retired_pages><multiple_single_bit_retirement><retired_count>0</retired_count><retired_pagelist>
      </retired_pagelist></multiple_single_bit_retirement><double_bit_retirement><retired_count>2</retired_count>
      <retired_pagelist><retired_page><retired_page_address>0x000000000044e99d</retired_page_address></retired_page>
      <retired_page><retired_page_address>0x00000000001d9963</retired_page_address></retired_page></retired_pagelist>
      </double_bit_retirement><pending_retirement>Yes</pending_retirement></retired_pages>"""
    xml = log_xml(gpu_xml(ecc=ecc, extra=extra))
    for new in ("clocks_event_reasons", "gpu_power_readings"):  # hide the newer spellings
        xml = xml.replace(f"<{new}>", "<x>").replace(f"</{new}>", "</x>")
    path = write(tmp_path, xml)
    fx = imp.import_files([str(path)])
    assert calls(fx, "nvmlDeviceGetCurrentClocksThrottleReasons")[0]["result"] == 0x100
    assert calls(fx, "nvmlDeviceGetRetiredPages")[1]["result"] == [0x44E99D, 0x1D9963]
    [d] = replay(tmp_path, path)
    h = d["health"]
    assert [h["ecc_corrected_volatile"], h["ecc_uncorrected_volatile"], h["ecc_corrected_aggregate"],
            h["ecc_uncorrected_aggregate"]] == [1, 0, 291, 7627]
    assert (h["retired_pages_single_bit"], h["retired_pages_double_bit"], h["retired_pages_pending"]) == (0, 2, True)
    assert h["power_draw_w"] == 50.6 and d["capabilities"]["power_limit_w"] == 350.0
    assert h["power_limit_enforced_w"] == 300.0 and h["throttle_reasons"] == ["display_clock_setting"]


def test_retired_count_without_its_addresses_is_not_invented(tmp_path: Path) -> None:
    extra = """<retired_pages><double_bit_retirement><retired_count>3</retired_count>
      <retired_pagelist></retired_pagelist></double_bit_retirement></retired_pages>"""
    fx = imp.import_files([str(write(tmp_path, log_xml(gpu_xml(extra=extra))))])
    assert not calls(fx, "nvmlDeviceGetRetiredPages")


def test_mig_devices_without_profiles(tmp_path: Path) -> None:
    mig = "".join(f"""<mig_device><index>{i}</index><gpu_instance_id>{i + 1}</gpu_instance_id>
      <compute_instance_id>0</compute_instance_id><device_attributes><shared><multiprocessor_count>{16 * (i + 1)}
      </multiprocessor_count><copy_engine_count>1</copy_engine_count></shared></device_attributes>
      <fb_memory_usage><total>{9856 * (i + 1)} MiB</total><reserved>0 MiB</reserved><used>3 MiB</used>
      <free>9852 MiB</free></fb_memory_usage></mig_device>""" for i in range(2))
    extra = f"<mig_mode><current_mig>Enabled</current_mig><pending_mig>Enabled</pending_mig></mig_mode>" \
            f"<mig_devices>{mig}</mig_devices>"
    path = write(tmp_path, log_xml(gpu_xml(extra=extra)))
    fx = imp.import_files([str(path)])
    [count] = calls(fx, "nvmlDeviceGetMaxMigDeviceCount")
    assert count["result"] == 2 and "not printed" in count["note"]
    [d] = replay(tmp_path, path)
    parts = d["partitions"]
    assert [p["gpu_instance_id"] for p in parts] == [1, 2] and [p["compute_units"] for p in parts] == [16, 32]
    assert [p["memory_total_bytes"] for p in parts] == [9856 * MIB, 2 * 9856 * MIB]
    assert [p["readings"]["profile"]["status"] for p in parts] == ["not_recorded"] * 2
    assert all(p["parent_bus_id"] == "0000:3b:00.0" for p in parts)


def test_empty_mig_devices_text_none(tmp_path: Path) -> None:
    extra = "<mig_mode><current_mig>Enabled</current_mig><pending_mig>Enabled</pending_mig></mig_mode>" \
            "<mig_devices>None</mig_devices>"
    [d] = replay(tmp_path, write(tmp_path, log_xml(gpu_xml(extra=extra))))
    assert d["capabilities"]["mig_enabled"] is True and d["partitions"] == []


def test_masked_ids_are_not_recorded(tmp_path: Path) -> None:
    same = "GPU-12345678-aaaa-bbbb-cccc-0123456789ab"
    path = write(tmp_path, log_xml(gpu_xml(device_id="000000DE", uuid=same),
                                   gpu_xml("00000000:3C:00.0", device_id="[REDACTED]", uuid=same)))
    fx = imp.import_files([str(path)])
    assert not calls(fx, "nvmlDeviceGetUUID")
    assert any("pci_device_id '000000DE'" in m for m in fx.provenance["masked"])
    docs = replay(tmp_path, path)
    assert len(docs) == 2  # one shared placeholder UUID would have merged them
    for d in docs:
        assert status(d, "pci.device_id") == "not_recorded" and status(d, "uuid") == "not_recorded"
        assert d["pci"]["subsystem_id"] == "0x16c1"


def test_reserved_printed_na_keeps_the_total(tmp_path: Path) -> None:
    path = write(tmp_path, log_xml(gpu_xml().replace("<reserved>512 MiB</reserved>", "<reserved>N/A</reserved>")))
    [mem] = calls(imp.import_files([str(path)]), "nvmlDeviceGetMemoryInfo")
    assert mem["args"] == [{"$handle": "gpu0"}] and mem["result"]["total"] == 81559 * MIB
    [d] = replay(tmp_path, path)
    assert d["memory"]["total_bytes"] == 81559 * MIB and d["memory"]["reserved_bytes"] is None


def test_trimmed_file_is_noted_not_invented(tmp_path: Path) -> None:
    fx = imp.import_files([str(write(tmp_path, log_xml(gpu_xml(), attached=16)))])
    assert calls(fx, "nvmlDeviceGetCount")[0]["result"] == 1
    assert fx.provenance["attached_gpus"] == 16 and "1 <gpu>" in fx.provenance["trimmed"]


def test_cuda_not_found_and_inline_dtd_and_no_doctype(tmp_path: Path) -> None:
    inline = '<?xml version="1.0" ?>\n<!DOCTYPE nvidia_smi_log [\n<!ELEMENT nvidia_smi_log (timestamp, gpu*)>\n' \
             '<!ATTLIST gpu id CDATA #REQUIRED>\n<!-- a ] and a > in a comment -->\n]>'
    fx = imp.import_files([str(write(tmp_path, log_xml(gpu_xml(), head=inline, cuda="Not Found")))])
    assert fx.provenance["dtd_version"] == "inline" and not calls(fx, "nvmlSystemGetCudaDriverVersion_v2")
    fx = imp.import_files([str(write(tmp_path, log_xml(gpu_xml(), head='<?xml version="1.0" ?>')))])
    assert fx.provenance["dtd_version"] is None and calls(fx, "nvmlDeviceGetName")[0]["result"].startswith("NVIDIA")


def test_utf16_file_from_a_windows_shell(tmp_path: Path) -> None:
    text = log_xml(gpu_xml(name="NVIDIA GeForce RTX 3080")).replace('<?xml version="1.0" ?>', "")
    [d] = replay(tmp_path, write(tmp_path, b"\xff\xfe" + text.encode("utf-16-le")))
    assert d["name"] == "NVIDIA GeForce RTX 3080"


def test_several_files_of_one_machine_replay_as_polls(tmp_path: Path) -> None:
    a = write(tmp_path, log_xml(gpu_xml(temp="33 C")), "a.xml")
    b = write(tmp_path, log_xml(gpu_xml(temp="61 C")), "b.xml")
    out = tmp_path / "polls.json"
    fmt.save(run_importer("nvidia-smi-xml", [str(a), str(b)]), out)
    with gpuabst.open_machine([out]) as m:
        assert m.snapshot().devices[0].health.temperature_c.value == 33
        assert m.poll().devices[0].health.temperature_c.value == 61
    c = write(tmp_path, log_xml(gpu_xml("00000000:99:00.0")), "c.xml")
    with pytest.raises(ImportFormatError, match=r"^c\.xml: not the same machine as a\.xml"):
        imp.import_files([str(a), str(c)])


# --- hostile and malformed input -----------------------------------------------------------------

BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE nvidia_smi_log [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<nvidia_smi_log><driver_version>&lol9;</driver_version></nvidia_smi_log>"""

XXE = """<?xml version="1.0"?>
<!DOCTYPE nvidia_smi_log [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<nvidia_smi_log><gpu id="00000000:01:00.0"><product_name>&xxe;</product_name></gpu></nvidia_smi_log>"""


@pytest.mark.parametrize(("text", "problem"), [
    (BILLION_LAUGHS, "ENTITY declaration"),
    (XXE, "ENTITY declaration"),
    (XXE.replace("ENTITY", "entity"), "ENTITY declaration"),
    (log_xml(gpu_xml())[:1500], "truncated XML"),
    ("this is not xml at all\n", "not well-formed XML"),
    ('{"gpu": "json"}', "not well-formed XML"),
    ("<a><b></a>", "not well-formed XML"),
    ("<?xml version='1.0'?><html><body/></html>", "root element is <html>"),
    ("", "empty file"),
    (log_xml(gpu_xml(total="99999999999999999999999 MiB")), "gpu 0 <fb_memory_usage/total>: expected a size"),
    (log_xml(gpu_xml(total="18446744073709551615 MiB")), "out of range"),
    (log_xml(gpu_xml(total="lots")), "gpu 0 <fb_memory_usage/total>"),
    (log_xml(gpu_xml(temp="hot")), "gpu 0 <temperature/gpu_temp>: expected a temperature"),
    (log_xml(gpu_xml(name="x" * 5000)), "too long"),
    (log_xml(gpu_xml(bus="somewhere")), "no valid PCI bus id"),
    (log_xml(gpu_xml(), cuda="twelve"), "<cuda_version>"),
    (log_xml(gpu_xml(), attached=0), "attached_gpus says 0"),
    ("<nvidia_smi_log>" + "<x>" * 200 + "</x>" * 200 + "</nvidia_smi_log>", "nested deeper than"),
    ('<!DOCTYPE nvidia_smi_log SYSTEM "x.dtd"', "truncated DOCTYPE"),
    ("<!DOCTYPE nvidia_smi_log [ <!-- never closed ]><nvidia_smi_log/>", "truncated DOCTYPE"),
    ("<!DOCTYPE a><!DOCTYPE b><nvidia_smi_log/>", "more than one DOCTYPE"),
])
def test_bad_input_is_one_clear_error(tmp_path: Path, text: str, problem: str) -> None:
    path = write(tmp_path, text, "bad.xml")
    with pytest.raises(ImportFormatError) as e:
        imp.import_files([str(path)])
    msg = str(e.value)
    assert msg.startswith("bad.xml: ") and problem in msg and "\n" not in msg


def test_external_dtd_is_never_fetched(tmp_path: Path) -> None:
    dtd = tmp_path / "evil.dtd"
    dtd.write_text('<!ENTITY leak "LEAKED">', encoding="utf-8")
    base = log_xml(gpu_xml(), head=f'<?xml version="1.0"?>\n<!DOCTYPE nvidia_smi_log SYSTEM "{dtd.as_uri()}">')
    fx = imp.import_files([str(write(tmp_path, base, "ok.xml"))])  # the DTD is cut out, not read
    assert fx.provenance["dtd_version"] == "unknown" and "LEAKED" not in json.dumps(fx.to_json())
    path = write(tmp_path, base.replace("NVIDIA H100 80GB HBM3", "&leak;"), "bad.xml")
    with pytest.raises(ImportFormatError, match=r"^bad\.xml: not well-formed XML \(undefined entity"):
        imp.import_files([str(path)])


def test_binary_oversized_and_missing_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ImportFormatError, match=r"^bin\.xml: not UTF-8 text"):
        imp.import_files([str(write(tmp_path, bytes(range(256)) * 4, "bin.xml"))])
    monkeypatch.setattr(imp, "MAX_BYTES", 1000)
    with pytest.raises(ImportFormatError, match=r"^big\.xml: larger than"):
        imp.import_files([str(write(tmp_path, log_xml(gpu_xml()), "big.xml"))])
    with pytest.raises(ImportFormatError, match="cannot read"):
        imp.import_files([str(tmp_path / "absent.xml")])
    with pytest.raises(ImportFormatError, match="no file given"):
        imp.import_files([])


def test_value_parsers() -> None:
    assert synth.parse("81920 MiB", synth.mib_bytes) == 81920 * MIB
    assert synth.parse("67.03 W", synth.milliwatts) == 67030
    assert synth.parse("16x", synth.link_width) == 16 and synth.parse("P8", synth.pstate) == 8
    assert synth.parse("[Not Supported]", synth.mhz) == synth.Unsupported("nvidia-smi printed '[Not Supported]'")
    for hidden in ("[REDACTED]", "Not Found", "Requested functionality has been deprecated"):
        assert synth.parse(hidden, synth.integer) is None
    assert synth.cuda_version("12.4") == 12040 and synth.cuda_version("13.1") == 13010
    assert synth.hex32("0x20B210DE") == 0x20B210DE and synth.brand("Quadro RTX") == 12
    for bad, fn in (("-7 C", synth.celsius), ("12 MHz", synth.mib_bytes), ("101 %", synth.percent),
                    ("P99", synth.pstate), ("12", synth.cuda_version), ("Maybe", synth.yes_no)):
        with pytest.raises(ValueError):
            fn(bad)


# --- the command line ----------------------------------------------------------------------------

def test_cli_import_then_show_round_trip(tmp_path: Path) -> None:
    second = gpu_xml("00000000:3C:00.0", uuid="GPU-aaaaaaaa-bbbb-4ccc-8ddd-000000000002")
    src = write(tmp_path, log_xml(gpu_xml(), second))
    out = tmp_path / "f.json"
    r = gpuabst_cli("import", "nvidia-smi-xml", str(src), "-o", str(out))
    assert r.returncode == 0, r.stderr
    text = out.read_text()
    assert "GPU-aaaaaaaa-bbbb-4ccc-8ddd-00000000000" not in text and "1650000000001" not in text  # scrubbed
    r = gpuabst_cli("show", "--json", env={"GPUABST_FIXTURE": str(out)})
    assert r.returncode == 0, r.stderr
    devs = json.loads(r.stdout)["devices"]
    assert [d["pci"]["bus_id"] for d in devs] == ["0000:3b:00.0", "0000:3c:00.0"]
    assert all(d["name"] == "NVIDIA H100 80GB HBM3" and d["memory"]["total_bytes"] == 81559 * MIB for d in devs)
    assert all(d["uuid"].startswith("GPU-5c4b0000-") for d in devs)


def test_cli_hostile_file_is_a_one_line_error(tmp_path: Path) -> None:
    src = write(tmp_path, BILLION_LAUGHS, "laughs.xml")
    r = gpuabst_cli("import", "nvidia-smi-xml", str(src), "-o", str(tmp_path / "f.json"))
    assert r.returncode == 1 and not (tmp_path / "f.json").exists()
    assert r.stderr.strip().count("\n") == 0 and "Traceback" not in r.stderr
    assert r.stderr.startswith("gpuabst: error: laughs.xml: refusing an XML ENTITY declaration")


# --- real captures -------------------------------------------------------------------------------

def _leaf(path: Path, tag: str) -> list[str]:
    return re.findall(rf"<{tag}>\s*([^<]*?)\s*</{tag}>", path.read_text(encoding="utf-8", errors="replace"))


@needs_captures
@pytest.mark.parametrize("capture", NVIDIA, ids=[p.name for p in NVIDIA])
def test_every_capture_imports_and_replays(tmp_path: Path, capture: Path) -> None:
    fixture = run_importer("nvidia-smi-xml", [str(capture)])
    out = tmp_path / "f.json"
    fmt.save(fixture, out)
    docs = to_dict(gpuabst.snapshot([out]).devices)
    names = _leaf(capture, "product_name")
    assert [d["name"] for d in docs] == names
    text = out.read_text()
    for secret in _leaf(capture, "uuid") + _leaf(capture, "serial"):
        if secret not in ("N/A", "REDACTED", "[REDACTED]"):
            assert secret not in text


@needs_captures
def test_generations_of_the_schema() -> None:
    by = {p.name.split("__")[-1]: p for p in NVIDIA}

    def fx(name: str) -> fmt.Fixture:
        return imp.import_files([str(by[name])])

    assert [fx(n).provenance["dtd_version"] for n in ("nvidia_smi_sample.xml", "nvidia_smi_retired_pages.xml",
                                                      "tesla-t4.xml", "a100-sxm4-v12.xml", "3090-v13.xml",
                                                      "gtx-1660-ti.xml")] == ["v9", "v10", "v11", "v12", "v13", None]
    # v9: retired_page_addresses with N/A counts -> unsupported
    v9 = fx("nvidia_smi_sample.xml")
    assert [c["error"]["code"] for c in calls(v9, "nvmlDeviceGetRetiredPages")] == [3, 3, 3, 3]
    assert v9.provenance["attached_gpus"] == 6
    # v10 on Azure: 8-digit PCI domains, old ECC totals, retired page lists, pending_blacklist
    k80 = fx("nvidia_smi_out_of_order.xml")
    assert calls(k80, "nvmlDeviceGetPciInfo")[0]["result"]["busId"] == "00001580:00:00.0"
    assert calls(k80, "nvmlDeviceGetRetiredPages")[:2] == [
        {"fn": "nvmlDeviceGetRetiredPages", "args": [{"$handle": "gpu0"}, 0], "result": [0xB48D7]},
        {"fn": "nvmlDeviceGetRetiredPages", "args": [{"$handle": "gpu0"}, 1], "result": [0x2CE8A4]}]
    assert not calls(k80, "nvmlSystemGetCudaDriverVersion_v2")  # "Not Found"
    assert calls(k80, "nvmlDeviceGetCurrentClocksThrottleReasons")[0]["result"] == 0x2
    # v12 from the 525 driver still says clocks_throttle_reasons; from 535 clocks_event_reasons
    assert calls(fx("quadro-p2000-v12.xml"), "nvmlDeviceGetCurrentClocksThrottleReasons")
    a100 = fx("a100-sxm4-v12.xml")
    assert calls(a100, "nvmlDeviceGetCurrentClocksEventReasons") and a100.provenance["attached_gpus"] == 4
    assert calls(a100, "nvmlDeviceGetMaxMigDeviceCount")[0]["result"] == 4
    assert [c["result"] for c in calls(a100, "nvmlDeviceGetGpuInstanceId")] == [3, 4, 5, 6]
    # v13: average_power_draw is nvmlDeviceGetPowerUsage
    assert calls(fx("3090-v13.xml"), "nvmlDeviceGetPowerUsage")[0]["result"] == 35060
    # Windows: persistence mode N/A; vGPU guest: its profile name
    assert calls(fx("rtx-3080-v12.xml"), "nvmlDeviceGetPersistenceMode")[0]["error"]["code"] == 3
    assert calls(fx("tesla_p4.xml"), "nvmlDeviceGetName")[0]["result"] == "GRID P4-1Q"
    assert "pci_device_id '000000DE'" in fx("a10g.xml").provenance["masked"][0]


FIXTURE_NAMES = {
    "3090-v13": "rtx-3090-v13", "a100-sxm4-v12": "a100-sxm4-mig-v12", "a10g": "a10g", "dual_2070-v13": "dual-2070-v13",
    "dual_2080-v13": "dual-2080-v13", "dual_a5000-v13": "dual-a5000-v13", "gt-1030": "gt-1030",
    "gtx-1070-ti": "gtx-1070-ti", "gtx-1660-ti": "gtx-1660-ti",
    "pro-6000-maxq-blackwell-v13": "pro-6000-maxq-blackwell-v13", "quadro-p2000-v12": "quadro-p2000-v12",
    "quadro-p400": "quadro-p400", "rtx-3060-v12": "rtx-3060-v12", "rtx-3080-v12": "rtx-3080-v12-win",
    "rtx-3080-v13": "rtx-3080-v13", "rtx-3090-v12": "rtx-3090-v12", "rtx-4000-sff-ada-v13": "rtx-4000-sff-ada-v13",
    "tesla-t4": "tesla-t4", "tesla_p4": "grid-p4-1q-vgpu", "nvidia_smi_out_of_order": "k80-x4-azure",
    "nvidia_smi_retired_pages": "v100-sxm3-retired-pages", "nvidia_smi_sample": "gtx-1070-x2-v9",
    "rtx-2080-win": "rtx-2080-win",
}
"""Capture (without the repository prefix) -> its fixture under fixtures/nvidia."""


@needs_captures
def test_committed_fixtures_are_what_the_importer_makes() -> None:
    assert sorted(p.name.split("__")[-1].removesuffix(".xml") for p in NVIDIA) == sorted(FIXTURE_NAMES)
    for capture in NVIDIA:
        name = FIXTURE_NAMES[capture.name.split("__")[-1].removesuffix(".xml")]
        committed = fmt.load(FIXTURES / "nvidia" / f"{name}.json")
        fresh = run_importer("nvidia-smi-xml", [str(capture)])
        assert fresh.to_json() == committed.to_json(), name
        assert (FIXTURES / "nvidia" / f"{name}.expected.json").is_file()


def test_non_numeric_mig_index_is_a_clear_error(tmp_path: Path) -> None:
    xml = ('<?xml version="1.0"?><nvidia_smi_log><driver_version>535.54.03</driver_version>'
           '<gpu id="00000000:3B:00.0"><product_name>NVIDIA A100-SXM4-80GB</product_name>'
           '<mig_mode><current_mig>Enabled</current_mig><pending_mig>Enabled</pending_mig></mig_mode>'
           '<mig_devices><mig_device><index>junk</index></mig_device></mig_devices></gpu></nvidia_smi_log>')
    p = tmp_path / "mig.xml"
    p.write_text(xml)
    with pytest.raises(ImportFormatError, match=r"mig_device><index>"):
        run_importer("nvidia-smi-xml", [str(p)])

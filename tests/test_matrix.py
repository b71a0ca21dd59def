"""gpuabst matrix: the support matrix over every fixture, its formats, the generated doc, and the HTML
page checked in a real headless browser."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from conftest import FIXTURES, ROOT

from gpuabst.cli.main import main
from gpuabst.evaluate.fields import model_fields
from gpuabst.evaluate.matrix import build_matrix
from gpuabst.evaluate.observe import fixture_files, observe, observe_fixture
from gpuabst.evaluate.render import render_html
from gpuabst.fixtures import format as fmt

DOC = ROOT / "docs" / "support-matrix.md"
DOC_ARGS = ["matrix", "--fixtures-dir", "fixtures", "--format", "markdown", "-o", "docs/support-matrix.md"]


@pytest.fixture(scope="module")
def observations() -> list:  # type: ignore[type-arg]
    return observe(fixtures_dirs=[FIXTURES])


def test_rows_are_every_reading_of_the_model(observations: list) -> None:  # type: ignore[type-arg]
    m = build_matrix(observations)
    paths = [r.field.path for r in m.rows]
    assert paths == [f.path for f in model_fields()]
    assert {"name", "pci.bus_id", "memory.total_bytes", "capabilities.ecc_enabled", "health.temperature_c",
            "partitions", "partitions.profile"} <= set(paths)


def test_every_fixture_and_backend_appears(observations: list) -> None:  # type: ignore[type-arg]
    m = build_matrix(observations)
    files = fixture_files(FIXTURES)
    origins = {f["origin"] for f in m.fixtures}
    assert origins == {p.relative_to(FIXTURES).as_posix() for p in files}
    recorded = {b for p in files for b in fmt.load(p).backends}
    assert {c.backend for c in m.columns} == recorded
    by_fixture = build_matrix(observations, by_fixture=True)
    assert len(by_fixture.columns) == sum(len(fmt.load(p).backends) for p in files)


def test_cells_name_the_vendor_call_and_count_devices(observations: list) -> None:  # type: ignore[type-arg]
    m = build_matrix(observations)
    row = {r.field.path: r for r in m.rows}
    name = row["name"].cells["nvml"]
    assert name.status == "ok" and name.calls == ["nvmlDeviceGetName"]
    nvml_devices = next(c for c in m.columns if c.key == "nvml").devices
    assert name.total == nvml_devices > 0
    # NVML has no call for an AMD gfx target: the field is absent, not a fake "unsupported"
    assert row["capabilities.gfx_target"].cells["nvml"].status == "absent"


def test_a_fixture_with_several_devices_counts_each(tmp_path: Path) -> None:
    from synthetic import nvml_fixture

    path = tmp_path / "three.json"
    fmt.save(nvml_fixture(3), path)
    (ob,) = observe_fixture(path)
    assert ob.backend == "nvml" and len(ob.devices) == 3
    m = build_matrix([ob], by_fixture=True)
    assert [c.devices for c in m.columns] == [3]
    total = next(r for r in m.rows if r.field.path == "memory.total_bytes").cells[m.columns[0].key]
    assert total.counts == {"ok": 3} and total.summary() == "ok"


def test_statuses_and_reasons_survive_into_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["matrix", "--fixture", str(FIXTURES / "nvidia" / "gt-1030.json"), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["schema"] == "gpuabst.matrix" and [c["key"] for c in doc["columns"]] == ["nvml"]
    cells = [r["cells"]["nvml"] for r in doc["rows"]]
    missing = [c for c in cells if c["status"] not in ("ok", "absent")]
    assert missing, "a GeForce card lacks some NVML values"
    assert all(c["reasons"] or c["calls"] for c in missing)


def test_text_and_markdown_formats(capsys: pytest.CaptureFixture[str]) -> None:
    fx = str(FIXTURES / "nvidia" / "tesla-t4.json")
    assert main(["matrix", "--fixture", fx]) == 0
    text = capsys.readouterr().out
    assert re.search(r"^memory\.total_bytes\s+ok nvmlDeviceGetMemoryInfo", text, re.M)
    assert main(["matrix", "--fixture", fx, "--by-fixture", "--format", "markdown"]) == 0
    md = capsys.readouterr().out
    assert "| `memory.total_bytes` | ✅ ok<br>`nvmlDeviceGetMemoryInfo` |" in md


def test_bad_input_is_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "gpuabst-fixture", "version": 1, ')
    assert main(["matrix", "--fixture", str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("gpuabst: error:") and "truncated" in err and err.count("\n") == 1
    assert main(["matrix", "--fixtures-dir", str(tmp_path / "nope")]) == 1
    assert "not a folder" in capsys.readouterr().err


def test_support_matrix_doc_is_up_to_date(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Fails when docs/support-matrix.md is out of date with fixtures/: regenerate it with the command
    at the top of the file."""
    monkeypatch.chdir(ROOT)
    code = main([*DOC_ARGS, "--check"])
    assert code == 0, capsys.readouterr().err
    text = DOC.read_text(encoding="utf-8")
    assert f"`gpuabst {' '.join(DOC_ARGS)}`" in text.splitlines()[2]
    for p in fixture_files(FIXTURES):
        assert f"`{p.relative_to(FIXTURES).as_posix()}`" in text


def test_check_reports_a_stale_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(ROOT)
    out = tmp_path / "m.md"
    args = ["matrix", "--fixture", "fixtures/nvidia/a10g.json", "--format", "markdown", "-o", str(out)]
    assert main(args) == 0 and main([*args, "--check"]) == 0
    out.write_text(out.read_text() + "edited by hand\n")
    capsys.readouterr()
    assert main([*args, "--check"]) == 1
    assert "out of date" in capsys.readouterr().err


# --- the HTML page in a real browser ---------------------------------------------------------
def _chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.fail("chromium is not installed (apt-get install -y chromium): the HTML page is checked in it")
    return exe


def _browse(tmp_path: Path, url: str, *extra: str) -> subprocess.CompletedProcess[str]:
    profile = tmp_path / "profile"
    cmd = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={profile}", "--window-size=1400,1000", *extra, url]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


class _Heads(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "th" and a.get("data-col"):
            self.found.append((a["data-col"] or "", a.get("data-vendors") or "", a.get("class") or ""))


class _Rows(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "tr" and a.get("data-field"):
            self.found.append((a["data-field"] or "", a.get("class") or ""))


def _rows(dom: str) -> list[tuple[str, str]]:
    """``(field, class)`` of each field row in the browser's DOM."""
    parser = _Rows()
    parser.feed(dom)
    return parser.found


def _column_heads(dom: str) -> list[tuple[str, str, str]]:
    """``(column key, vendors, class)`` of each column head in the browser's DOM."""
    parser = _Heads()
    parser.feed(dom)
    return parser.found


def test_html_is_self_contained_and_its_vendor_filter_works_in_a_browser(
        observations: list, tmp_path: Path) -> None:  # type: ignore[type-arg]
    page = tmp_path / "matrix.html"
    m = build_matrix(observations)
    page.write_text(render_html(m), encoding="utf-8")
    text = page.read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", text) and "<link" not in text
    assert "@import" not in text and "url(" not in text

    vendors = {c.key: c.vendors for c in m.columns}
    target = "amd" if any("amd" in v for v in vendors.values()) else next(iter(vendors.values()))[0]
    r = _browse(tmp_path, f"{page.as_uri()}#vendor={target}&q=temperature", "--dump-dom")
    assert r.returncode == 0, r.stderr[-2000:]
    dom = r.stdout
    assert 'data-ready="yes"' in dom, "the page's script did not run"
    heads = _column_heads(dom)
    assert len(heads) == len(m.columns), dom[:2000]
    for key, vs, cls in heads:
        hidden = "hide-col" in cls.split()
        assert hidden == (target not in vs.split()), (key, vs, cls)
    assert any(target not in vs.split() for _, vs, _ in heads), "the filter should hide some column"
    rows = _rows(dom)  # the field search (#q=temperature) leaves only temperature rows and their group
    assert {f for f, cls in rows if "hide-row" not in cls} == {
        r.field.path for r in m.rows if "temperature" in r.field.path}

    shot = tmp_path / "m.png"
    r = _browse(tmp_path, page.as_uri(), f"--screenshot={shot}")
    assert r.returncode == 0 and shot.stat().st_size > 20_000


def test_by_vendor_splits_a_multi_vendor_backend(observations: list) -> None:  # type: ignore[type-arg]
    m = build_matrix(observations, by_vendor=True)
    assert m.by == "vendor"
    for c in m.columns:
        assert len(c.vendors) <= 1 and c.key.startswith(f"{c.backend}:")
    by_backend = build_matrix(observations)
    for c in by_backend.columns:  # the vendor columns of a backend add up to its one column
        assert sum(v.devices for v in m.columns if v.backend == c.backend) == c.devices


def test_live_devices_are_columns_by_fixture(tmp_path: Path) -> None:
    """A live observation (here a replayed one relabelled) gives one column per device with --by-fixture."""
    import attrs
    from synthetic import nvml_fixture

    path = tmp_path / "two.json"
    fmt.save(nvml_fixture(2), path)
    (ob,) = observe_fixture(path)
    live = attrs.evolve(ob, origin="live", fixture_kind=None)
    m = build_matrix([live], by_fixture=True)
    assert m.mode == "live" and [c.devices for c in m.columns] == [1, 1]
    assert all(c.label.startswith("nvml: NVIDIA H100 80GB HBM3 (0000:") for c in m.columns)


def test_fixture_and_backend_from_the_environment(monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("GPUABST_FIXTURE", str(FIXTURES / "nvidia" / "a10g.json"))
    assert main(["matrix", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["mode"] == "replay" and [c["key"] for c in doc["columns"]] == ["nvml"]
    monkeypatch.delenv("GPUABST_FIXTURE")
    monkeypatch.setenv("GPUABST_BACKENDS", "nvml")
    assert main(["matrix", "--fixtures-dir", str(FIXTURES), "--json"]) == 0
    assert [c["key"] for c in json.loads(capsys.readouterr().out)["columns"]] == ["nvml"]


def test_live_observation_reads_each_backend_that_runs_here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``gpuabst matrix`` with no fixture: each backend read on its own; one that cannot run here says
    nothing, rather than a column of errors."""
    import sysfs_tree
    from gpuabst_pci import binding

    from gpuabst.evaluate.observe import observe_live

    monkeypatch.setenv(binding.ROOT_ENV, str(sysfs_tree.build_tree(tmp_path / "sys")))
    monkeypatch.delenv("GPUABST_FIXTURE", raising=False)
    found = observe_live(backends=["pci", "no-such-backend"])
    assert [(o.origin, o.backend, o.fixture_kind) for o in found] == [("live", "pci", None)]
    assert sorted(str(d.pci.bus_id.value) for d in found[0].devices) == [
        sysfs_tree.ASPEED_BUS, sysfs_tree.H100_BUS, sysfs_tree.MI300X_BUS]
    empty = tmp_path / "empty"
    (empty / "bus" / "pci" / "devices").mkdir(parents=True)
    monkeypatch.setenv(binding.ROOT_ENV, str(empty))
    [none] = observe_live(backends=["pci"])
    assert none.devices == [] and none.note == "no devices"

"""The example plugin in tests/plugins/gpuabst_example (docs/plugins.md): installed with pip from its own
distribution metadata, found by the registry through its entry point, and passing the contract suite
with its own tests and fixture."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

PLUGIN = ROOT / "tests" / "plugins" / "gpuabst_example"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The plugin pip-installed into a fresh folder (a copy of its source: no build files in the tree)."""
    tmp = tmp_path_factory.mktemp("example-plugin")
    src = tmp / "src"
    shutil.copytree(PLUGIN, src, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    target = tmp / "site"
    r = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                        "--no-index", "--target", str(target), str(src)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert (target / "gpuabst_example-0.1.0.dist-info" / "entry_points.txt").is_file()
    return target


def _env(site: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}


def test_the_installed_plugin_is_found_and_replays_its_fixture(site: Path) -> None:
    fixture = PLUGIN / "fixtures" / "example-x1-x2.json"
    assert json.loads(fixture.read_text())["provenance"]["kind"] == "synthetic"
    r = subprocess.run([sys.executable, "-m", "gpuabst", "show", "--json", "--fixture", str(fixture)],
                       capture_output=True, text=True, env=_env(site), timeout=120)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert [d["sources"] for d in doc["devices"]] == [["example"], ["example"]]
    assert [d["pci"]["bus_id"] for d in doc["devices"]] == ["0000:17:00.0", "0000:65:00.0"]
    report = next(b for b in doc["backends"] if b["name"] == "example")
    assert report["available"] and report["driver_version"] == "3.4.1"


def test_the_plugin_passes_the_contract_suite_with_its_own_tests(site: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        "-c", str(PLUGIN / "pyproject.toml"), f"--rootdir={PLUGIN}", f"--confcutdir={PLUGIN}"],
                       capture_output=True, text=True, env=_env(site), timeout=300, cwd=PLUGIN)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert "10 passed" in r.stdout, r.stdout[-2000:]


def test_the_matrix_shows_the_plugin_without_code_changes(site: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "gpuabst", "matrix", "--fixtures-dir", str(PLUGIN / "fixtures"),
                        "--json"], capture_output=True, text=True, env=_env(site), timeout=120)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert [c["key"] for c in doc["columns"]] == ["example"]
    cells = {row["field"]: row["cells"]["example"] for row in doc["rows"]}
    assert cells["health.fan_speed_pct"]["status"] == "unsupported"
    assert cells["serial"]["status"] == "no_permission"
    assert cells["memory.total_bytes"]["calls"] == ["ex_device_memory"]

"""The command line, run as a user runs it (a subprocess), on fixtures and on this GPU-less machine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from synthetic import nvml_fixture

from gpuabst.cli.main import main
from gpuabst.fixtures import format as fmt


def gpuabst(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gpuabst", *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})


@pytest.fixture
def h100x2(tmp_path: Path) -> Path:
    p = tmp_path / "h100x2.json"
    fmt.save(nvml_fixture(2, mig=True), p)
    return p


def test_show_json_document(h100x2: Path) -> None:
    r = gpuabst("show", "--json", "--fixture", str(h100x2), "--backend", "nvml")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert (doc["schema"], doc["schema_version"], doc["mode"]) == ("gpuabst.show", 1, "replay")
    d = doc["devices"][0]
    assert d["vendor"] == "nvidia" and d["name"] == "NVIDIA H100 80GB HBM3" and d["model"] == "h100"
    assert d["pci"] == {**d["pci"], "bus_id": "0000:18:00.0", "vendor_id": "0x10de", "device_id": "0x2330",
                        "subsystem_id": "0x16c1"}
    assert d["memory"]["total_bytes"] == 80 * 2**30 and isinstance(d["memory"]["used_bytes"], int)
    assert d["uuid"].startswith("GPU-") and d["sources"] == ["nvml"]
    assert len(d["partitions"]) == 2 and isinstance(d["capabilities"], dict) and isinstance(d["health"], dict)
    assert d["health"]["fan_speed_pct"] is None
    assert d["health"]["readings"]["fan_speed_pct"]["reason"] == "NVML_ERROR_NOT_SUPPORTED"


def test_fixture_from_environment(h100x2: Path) -> None:
    r = gpuabst("list", env={"GPUABST_FIXTURE": str(h100x2), "GPUABST_BACKENDS": "nvml"})
    assert r.returncode == 0
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 2 and "NVIDIA H100 80GB HBM3" in lines[0] and "80.0 GiB" in lines[0]
    assert "2 partitions" in lines[0]


def test_list_json_and_backends_json(h100x2: Path) -> None:
    doc = json.loads(gpuabst("list", "--json", "--fixture", str(h100x2), "--backend", "nvml").stdout)
    assert doc["schema"] == "gpuabst.list" and [d["model"] for d in doc["devices"]] == ["h100", "h100"]
    doc = json.loads(gpuabst("backends", "--json", "--fixture", str(h100x2), "--backend", "nvml").stdout)
    (nvml,) = doc["backends"]
    assert nvml["available"] and nvml["driver_version"] == "590.48.01" and nvml["replayed_from"] == str(h100x2)


def test_show_text_names_missing_values_with_their_reason(h100x2: Path) -> None:
    out = gpuabst("show", "--fixture", str(h100x2), "--backend", "nvml").stdout
    assert "fan_speed_pct" in out and "unsupported: NVML_ERROR_NOT_SUPPORTED" in out
    assert "Partition mig 0: 3g.40gb" in out


def test_no_gpu_here_says_why_for_each_backend_and_exits_0() -> None:
    r = gpuabst("list", "--backend", "nvml")
    assert r.returncode == 0
    assert r.stdout.startswith("No GPU found.")
    assert "nvml:" in r.stdout and ("NVIDIA driver library not found" in r.stdout
                                    or "nvidia-ml-py is not installed" in r.stdout)
    r = gpuabst("list", "--json", "--backend", "nvml")
    doc = json.loads(r.stdout)
    assert doc["devices"] == [] and doc["backends"][0]["available"] is False


@pytest.mark.parametrize("content", ["{not json", '{"format": "gpuabst-fixture", "version": 7}', ""])
def test_bad_fixture_is_one_line_error(tmp_path: Path, content: str) -> None:
    p = tmp_path / "bad.json"
    p.write_text(content)
    r = gpuabst("list", "--fixture", str(p))
    assert r.returncode == 1
    assert r.stderr.startswith("gpuabst: error: ") and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert "bad.json" in r.stderr


def test_two_recordings_of_one_backend_is_a_clear_error(h100x2: Path) -> None:
    r = gpuabst("list", "--fixture", str(h100x2), "--fixture", str(h100x2))
    assert r.returncode == 1 and "recorded in both" in r.stderr


def test_unknown_backend_name_is_reported(h100x2: Path) -> None:
    r = gpuabst("backends", "--fixture", str(h100x2), "--backend", "nosuch")
    assert r.returncode == 0 and "no backend named 'nosuch' is installed" in r.stdout


def test_usage_errors() -> None:
    assert gpuabst().returncode == 2
    r = gpuabst("import", "no-such-format", "x", "-o", "y")
    assert r.returncode == 2 and "unknown importer 'no-such-format'" in r.stderr and "nvidia-smi-xml" in r.stderr
    assert gpuabst("--version").stdout.startswith("gpuabst ")


def test_console_script_entry_point_matches_module() -> None:
    from importlib.metadata import entry_points

    (ep,) = [e for e in entry_points(group="console_scripts") if e.name == "gpuabst"]
    assert ep.value == "gpuabst.cli.main:main"


def test_display_controllers_are_listed_only_with_all() -> None:
    fixture = str(Path(__file__).resolve().parent.parent / "fixtures/pci/h100-mi300x-aspeed.json")
    plain = gpuabst("list", "--fixture", fixture).stdout
    everything = gpuabst("list", "--all", "--fixture", fixture).stdout
    assert "ASPEED" not in plain and "H100" in plain and "MI300X" in plain
    assert "ASPEED" in everything and "[display]" in everything
    doc = json.loads(gpuabst("show", "--json", "--fixture", fixture).stdout)
    assert sorted(d["device_type"] for d in doc["devices"]) == ["gpu", "gpu"]



def test_an_internal_error_is_one_line_and_exit_70_with_the_traceback_only_on_request(
        h100x2: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from gpuabst.cli import main as cli

    def broken(args: object) -> int:
        raise RuntimeError("a bug of ours")

    real_build = cli.build_parser

    def build() -> Any:  # the parser as usual, its list command replaced by one that raises
        parser = real_build()
        monkeypatch.setitem(cli.COMMANDS, "list", broken)  # put back after the test
        return parser

    monkeypatch.setattr(cli, "build_parser", build)
    argv = ["list", "--fixture", str(h100x2)]
    monkeypatch.delenv("GPUABST_DEBUG", raising=False)
    assert cli.main(argv) == cli.EXIT_INTERNAL == 70
    err = capsys.readouterr().err
    assert err == "gpuabst: internal error: RuntimeError: a bug of ours (set GPUABST_DEBUG=1 for details)\n"
    monkeypatch.setenv("GPUABST_DEBUG", "1")
    assert cli.main(argv) == 70
    err = capsys.readouterr().err
    assert err.startswith("Traceback (most recent call last):") and "RuntimeError: a bug of ours" in err
    assert err.endswith("(set GPUABST_DEBUG=1 for details)\n")


@pytest.mark.parametrize(("argv", "message"), [
    (["list", "--timeout", "-1"], "argument --timeout: expected a number of seconds >= 0, not '-1'"),
    (["health", "--timeout", "nan"], "argument --timeout: expected a number of seconds >= 0, not 'nan'"),
    (["show", "--timeout", "1e400"], "argument --timeout: expected a number of seconds >= 0, not '1e400'"),
    (["health", "--expect", "-1"], "argument --expect: expected a whole number >= 0, not '-1'"),
    (["health", "--expect", "2.5"], "argument --expect: expected a whole number >= 0, not '2.5'"),
    (["watch", "--count", "0"], "argument --count: expected a whole number >= 1, not '0'"),
    (["watch", "--interval", "-5"], "argument --interval: expected a number of seconds >= 0, not '-5'"),
    (["serve", "--port", "99999"], "argument --port: expected a port from 0 to 65535, not '99999'"),
    (["serve", "--min-interval", "inf"], "argument --min-interval: expected a number of seconds >= 0, not 'inf'"),
    (["labels", "--expires-in", "0"], "argument --expires-in: expected a number of seconds > 0, not '0'"),
    (["labels", "--expires-in", "-5"], "argument --expires-in: expected a number of seconds > 0, not '-5'"),
])
def test_an_option_value_that_means_nothing_is_a_usage_error(argv: list[str], message: str,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    """Before, a negative or NaN timeout, a negative count or expiry were taken as given, an infinite
    timeout failed every backend and a port above 65535 was an internal error."""
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1] == f"gpuabst {argv[0]}: error: {message}"


def test_a_timeout_of_0_waits_for_ever_in_every_command(h100x2: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`--timeout 0` meant "wait for ever" for health, watch and serve but abandoned every vendor call at
    once for list, show and the Akash commands."""
    for argv in (["list"], ["show"], ["labels"], ["health"]):
        assert main([*argv, "--fixture", str(h100x2), "--timeout", "0"]) == 0, argv
        out = capsys.readouterr()
        assert "did not answer" not in out.out + out.err, argv
    assert main(["list", "--fixture", str(h100x2), "--timeout", "0"]) == 0
    assert "NVIDIA H100 80GB HBM3" in capsys.readouterr().out

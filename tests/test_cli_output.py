"""Where gpuabst's output goes wrong: a full disk, a closed pipe, a device or a link given as the
output file. One line and exit 1 (0 for a reader that stopped early), never a traceback, and never
a device or a link replaced by a regular file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import CAPTURES
from synthetic import nvml_fixture

from gpuabst.errors import FixtureError, GpuabstError
from gpuabst.fixtures import format as fmt
from gpuabst.safe_io import write_text

needs_dev_full = pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full on this system")


@pytest.fixture
def fixture(tmp_path: Path) -> Path:
    p = tmp_path / "f.json"
    fmt.save(nvml_fixture(2), p)
    return p


def _gpuabst(*args: str, stdout: int | None = subprocess.PIPE, cwd: Path | None = None,
             ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gpuabst", *args], stdout=stdout, stderr=subprocess.PIPE,
                          text=True, timeout=120, cwd=cwd)


@needs_dev_full
def test_a_full_disk_on_standard_output_is_one_line(fixture: Path) -> None:
    with open("/dev/full", "w") as full:
        r = subprocess.run([sys.executable, "-m", "gpuabst", "show", "--json", "--fixture", str(fixture)],
                           stdout=full, stderr=subprocess.PIPE, text=True, timeout=120)
    assert r.returncode == 1, r.stderr
    assert r.stderr == "gpuabst: error: cannot write the output: No space left on device\n"


@needs_dev_full
def test_a_full_disk_under_an_output_file_is_one_line_and_the_device_stays(fixture: Path, tmp_path: Path) -> None:
    full = tmp_path / "full"
    full.symlink_to("/dev/full")  # a link to a device: the device is written, not replaced
    r = _gpuabst("labels", "--fixture", str(fixture), "-o", str(full))
    assert r.returncode == 1 and r.stderr == f"gpuabst: error: {full}: cannot write: No space left on device\n"
    assert full.is_symlink() and Path("/dev/full").is_char_device()


def test_standard_output_as_the_output_file_is_written_not_replaced(fixture: Path) -> None:
    r = _gpuabst("labels", "--fixture", str(fixture), "-o", "/dev/stdout")
    assert r.returncode == 0 and "akash.network=true" in r.stdout, r.stderr
    assert Path("/dev/stdout").is_symlink() or not Path("/dev/stdout").is_file()


def test_a_link_to_a_file_keeps_the_link_and_the_file_gets_the_output(fixture: Path, tmp_path: Path) -> None:
    real = tmp_path / "features.d" / "gpuabst"
    real.parent.mkdir()
    real.write_text("old\n")
    real.chmod(0o640)
    link = tmp_path / "link"
    link.symlink_to(real)
    r = _gpuabst("labels", "--format", "nfd", "--fixture", str(fixture), "-o", str(link))
    assert r.returncode == 0, r.stderr
    assert link.is_symlink() and real.read_text().startswith("# gpuabst")
    assert real.stat().st_mode & 0o777 == 0o640  # the file's mode is kept
    assert sorted(p.name for p in real.parent.iterdir()) == ["gpuabst"]  # no temporary file left


def test_a_folder_as_the_output_file_is_one_line(fixture: Path, tmp_path: Path) -> None:
    for args in (["labels", "--fixture", str(fixture)], ["matrix", "--fixtures-dir", str(fixture.parent)]):
        r = _gpuabst(*args, "-o", str(tmp_path))
        assert r.returncode == 1 and r.stderr == f"gpuabst: error: {tmp_path}: is a folder; give a file to write\n"


def test_a_reader_that_stops_early_ends_the_command_quietly(fixture: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "gpuabst", "show", "--json", "--fixture", str(fixture)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.read(10)
    proc.stdout.close()
    assert proc.wait(timeout=120) == 0
    assert proc.stderr.read() == b""


def test_a_failed_write_leaves_the_old_file_and_no_temporary_file(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "fixture.json"
    out.write_text("the old one\n")

    def no_rename(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", no_rename)
    with pytest.raises(FixtureError, match=r"fixture\.json: cannot write: No space left on device"):
        fmt.save(nvml_fixture(1), out)
    assert out.read_text() == "the old one\n" and [p.name for p in tmp_path.iterdir()] == ["fixture.json"]


def test_write_text_creates_a_new_file_readable_by_all(tmp_path: Path) -> None:
    out = tmp_path / "new.txt"
    write_text(out, "é\n", error=GpuabstError)
    assert out.read_text(encoding="utf-8") == "é\n" and out.stat().st_mode & 0o777 == 0o644


@pytest.mark.skipif(not (CAPTURES / "opencl").is_dir(), reason="../shared/captures is not beside the repository")
def test_an_import_into_a_full_disk_is_one_line(tmp_path: Path) -> None:
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full on this system")
    capture = sorted((CAPTURES / "opencl").iterdir())[0]
    full = tmp_path / "full.json"
    full.symlink_to("/dev/full")
    r = _gpuabst("import", "clinfo", str(capture), "-o", str(full))
    assert r.returncode == 1 and r.stderr == f"gpuabst: error: {full}: cannot write: No space left on device\n"


def test_an_ascii_only_standard_output_gets_escapes_not_a_crash(tmp_path: Path) -> None:
    """With an output encoding that cannot write a character (PYTHONIOENCODING=ascii, an old locale),
    it is written escaped: text stays readable and JSON parses to the same string (an internal error
    before)."""
    fx = nvml_fixture(1)
    for c in fx.backends["nvml"].calls:
        if c["fn"] == "nvmlDeviceGetName":
            c["result"] = "NVIDIA H100 80GB HBM3 \u2014 \u00e9dition sp\u00e9ciale \U0001f680"
    path = tmp_path / "f.json"
    fmt.save(fx, path)
    env = {**os.environ, "PYTHONIOENCODING": "ascii"}
    for args in (["show", "--json"], ["list"], ["matrix", "--fixtures-dir", str(tmp_path)]):
        r = subprocess.run([sys.executable, "-m", "gpuabst", *args, "--fixture", str(path)] if args[0] != "matrix"
                           else [sys.executable, "-m", "gpuabst", *args], capture_output=True, env=env, timeout=120)
        assert r.returncode == 0, (args, r.stderr)
        r.stdout.decode("ascii")  # nothing but ASCII came out
        if args == ["show", "--json"]:
            doc = json.loads(r.stdout)
            assert doc["devices"][0]["name"] == "NVIDIA H100 80GB HBM3 \u2014 \u00e9dition sp\u00e9ciale \U0001f680"
        if args == ["list"]:
            assert b"\\u2014 \\u00e9dition" in r.stdout

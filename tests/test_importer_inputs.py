"""Every importer refuses what is not a saved tool output before reading it: a FIFO (which would block
an import), a device such as /dev/zero (which never ends), a directory, a missing file, a file larger
than any tool prints."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import CAPTURES, needs_captures

from gpuabst.errors import ImportFormatError
from gpuabst.fixtures.importers import IMPORTERS, run_importer
from gpuabst.safe_io import read_capped

KINDS = sorted(k for k in IMPORTERS if k in {"nvidia-smi-xml", "nvidia-smi-text", "rocm-smi-json", "amd-smi-json",
                                             "clinfo"})


def test_the_first_party_importers_are_all_here() -> None:
    assert KINDS == ["amd-smi-json", "clinfo", "nvidia-smi-text", "nvidia-smi-xml", "rocm-smi-json"]


@pytest.mark.parametrize("kind", KINDS)
def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path, kind: str) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(ImportFormatError, match=r"pipe: not a regular file; save .* to a file"):
        run_importer(kind, [str(fifo)])


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero on this system")
def test_an_endless_device_is_refused(kind: str) -> None:
    with pytest.raises(ImportFormatError, match="zero: not a regular file"):
        run_importer(kind, ["/dev/zero"])


@pytest.mark.parametrize("kind", KINDS)
def test_a_directory_and_a_missing_file_are_clear_errors(tmp_path: Path, kind: str) -> None:
    with pytest.raises(ImportFormatError, match="not a regular file"):
        run_importer(kind, [str(tmp_path)])
    with pytest.raises(ImportFormatError, match=r"absent\.out: cannot read: No such file"):
        run_importer(kind, [str(tmp_path / "absent.out")])


@pytest.mark.parametrize("kind", KINDS)
def test_a_file_larger_than_any_tool_prints_is_refused(tmp_path: Path, kind: str) -> None:
    big = tmp_path / "big.out"
    with open(big, "wb") as f:
        f.truncate(64 * 2**20)  # sparse: no disk used
    with pytest.raises(ImportFormatError, match=r"big\.out: larger than \d+ MiB; not "):
        run_importer(kind, [str(big)])


def test_read_capped_returns_the_whole_file_up_to_the_limit(tmp_path: Path) -> None:
    p = tmp_path / "out.txt"
    p.write_bytes(b"x" * 1000)
    assert read_capped(str(p), 1000, "a test", error=ImportFormatError) == b"x" * 1000
    with pytest.raises(ImportFormatError, match=r"^short: larger than 0\.000952721 MiB; not a test$"):
        read_capped(str(p), 999, "a test", error=ImportFormatError, label="short")


@needs_captures
def test_a_file_name_that_is_not_utf8_imports_and_saves(tmp_path: Path) -> None:
    """A saved output under a name the file system allows but UTF-8 cannot spell (kept by Python as a
    lone surrogate) imported, then failed to save with an internal error; its provenance now names it
    with U+FFFD where the undecodable byte was."""
    from gpuabst.fixtures import format as fmt

    capture = sorted((CAPTURES / "opencl").iterdir())[0]
    odd = os.path.join(str(tmp_path), os.fsdecode(b"clinfo-\xff.txt"))
    try:
        with open(odd, "wb") as f:
            f.write(capture.read_bytes())
    except (OSError, UnicodeEncodeError):
        pytest.skip("this file system does not take a name that is not UTF-8")
    fixture = run_importer("clinfo", [odd])
    assert fixture.provenance["source"] == "clinfo-\ufffd.txt"
    fmt.save(fixture, tmp_path / "out.json")
    assert fmt.load(tmp_path / "out.json").provenance["source"] == "clinfo-\ufffd.txt"

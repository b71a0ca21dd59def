"""The files a user hands gpuabst besides fixtures and tool outputs: a health policy (`--policy`), an
Akash gpus.json (`--gpu-db`, GPUABST_GPU_DB), the two sides of `gpuabst compare`, and the file
`gpuabst matrix --check` compares. Each is refused with one clear error, before a byte is read,
where it is a FIFO (whose open would wait for a writer), an endless device, a folder, missing or
larger than any such file; deep nesting and text that is not UTF-8 are clear errors too."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from synthetic import nvml_fixture

from gpuabst.catalog import MAX_GPU_DB_BYTES, CatalogError, load_gpu_db
from gpuabst.cli.main import main
from gpuabst.errors import GpuabstError
from gpuabst.evaluate.compare import load_side
from gpuabst.fixtures import format as fmt
from gpuabst.fixtures.format import MAX_FIXTURE_BYTES
from gpuabst.health.policy import MAX_POLICY_BYTES, PolicyError, load_policy

READERS: dict[str, tuple[Callable[[str], object], type[Exception], int, str]] = {
    "policy.json": (load_policy, PolicyError, MAX_POLICY_BYTES, "a health policy"),
    "policy.yaml": (load_policy, PolicyError, MAX_POLICY_BYTES, "a health policy"),
    "gpus.json": (load_gpu_db, CatalogError, MAX_GPU_DB_BYTES, "an Akash gpus.json"),
    "side.json": (load_side, GpuabstError, MAX_FIXTURE_BYTES, "a gpuabst fixture"),
}


@pytest.mark.parametrize("name", sorted(READERS))
def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path, name: str) -> None:
    read, error, _, what = READERS[name]
    fifo = tmp_path / name
    os.mkfifo(fifo)
    with pytest.raises(error, match=rf"{name}: not a regular file; save {what}"):
        read(str(fifo))


@pytest.mark.parametrize("name", sorted(READERS))
@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero on this system")
def test_an_endless_device_is_refused(name: str) -> None:
    read, error, _, _ = READERS[name]
    with pytest.raises(error, match="/dev/zero: not a regular file"):
        read("/dev/zero")


@pytest.mark.parametrize("name", sorted(READERS))
def test_a_folder_a_missing_file_and_an_oversized_file_are_clear_errors(tmp_path: Path, name: str) -> None:
    read, error, limit, what = READERS[name]
    with pytest.raises(error, match="not a regular file"):
        read(str(tmp_path))
    with pytest.raises(error, match=r"absent: cannot read: No such file"):
        read(str(tmp_path / "absent"))
    big = tmp_path / name
    with open(big, "wb") as f:
        f.truncate(limit + 1)  # sparse: no disk used
    with pytest.raises(error, match=rf"{name}: larger than [\d.]+ MiB; not {what}"):
        read(str(big))


@pytest.mark.parametrize("name", sorted(READERS))
def test_deep_nesting_and_text_that_is_not_utf8_are_clear_errors(tmp_path: Path, name: str) -> None:
    read, error, _, _ = READERS[name]
    deep = tmp_path / name
    nested = "[" * 100_000 + "]" * 100_000
    deep.write_text(nested if name.endswith(".json") else f"a: {nested}\n")
    with pytest.raises(error, match="nested too deeply"):
        read(str(deep))
    binary = tmp_path / f"binary-{name}"
    binary.write_bytes(b'{"x": "\xff\xfe"}')
    with pytest.raises(error, match=r"not UTF-8|not JSON"):
        read(str(binary))


def test_the_commands_say_so_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "fixtures").mkdir()
    fixture = tmp_path / "fixtures" / "f.json"
    fmt.save(nvml_fixture(1), fixture)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    for argv in (["health", "--fixture", str(fixture), "--policy", str(fifo)],
                 ["labels", "--fixture", str(fixture), "--gpu-db", str(fifo)],
                 ["compare", str(fixture), str(fifo)],
                 ["matrix", "--fixtures-dir", str(tmp_path / "fixtures"), "-o", str(fifo), "--check"]):
        assert main(argv) == 1, argv
        err = capsys.readouterr().err
        assert err.startswith("gpuabst: error: ") and "pipe: not a regular file" in err and err.count("\n") == 1


def test_a_policy_of_billion_laughs_is_refused_with_a_short_message(tmp_path: Path) -> None:
    """YAML aliases nest one list nine times in the next: the value a setting gets is 9^9 strings
    deep in shared references. Its error message shows a bounded part of it (the full repr would
    never end)."""
    levels = ['&a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    levels += [f"&a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 9)]
    policy = tmp_path / "laughs.yaml"
    policy.write_text(f"temperature_warn_c: [{', '.join(levels)}]\n")
    with pytest.raises(PolicyError, match=r"temperature_warn_c: expected a number >= 0, got \[\['lol'") as e:
        load_policy(str(policy))
    assert len(str(e.value)) < 1000

"""The Python API takes the shapes people write: one fixture alone, backend names as one string."""

from __future__ import annotations

from pathlib import Path

import pytest
from synthetic import nvml_fixture

import gpuabst
from gpuabst.fixtures import format as fmt


@pytest.fixture
def two_gpus(tmp_path: Path) -> Path:
    path = tmp_path / "f.json"
    fmt.save(nvml_fixture(2), path)
    return path


def test_one_fixture_alone_is_taken_as_a_list_of_one(two_gpus: Path) -> None:
    """`gpuabst.snapshot("f.json")` replays f.json (a string used to be read as a list of one-letter
    paths, a Path was not iterable)."""
    for one in (str(two_gpus), two_gpus, fmt.load(two_gpus)):
        assert len(gpuabst.snapshot(one, backends=["nvml"]).devices) == 2, one
        assert len(gpuabst.devices(fixtures=one, backends=["nvml"])) == 2, one


@pytest.mark.parametrize(("backends", "reported"), [
    ("nvml", ["nvml"]),
    ("nvml, pci", ["nvml", "pci"]),
    (["nvml"], ["nvml"]),
])
def test_backend_names_as_one_string_are_names_not_letters(two_gpus: Path, backends: object,
                                                           reported: list[str]) -> None:
    """`backends="nvml"` used to ask for backends "n", "v", "m" and "l" besides (a string is a
    sequence); now one string is names separated by commas, as in GPUABST_BACKENDS."""
    snap = gpuabst.snapshot(two_gpus, backends=backends)
    assert sorted(r.name for r in snap.backends) == reported and len(snap.devices) == 2

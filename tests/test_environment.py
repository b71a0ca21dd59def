"""gpuabst.environment.env_text: os.environ.get(name, "").strip() without an exception for an unset name."""

from __future__ import annotations

import os
import sys
import types
from typing import Any

import pytest

from gpuabst.environment import env_text

NAME = "GPUABST_TEST_ENVIRONMENT_VALUE"


def test_a_set_variable_is_its_value_stripped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(NAME, "  /tmp/a.json  ")
    assert env_text(NAME) == "/tmp/a.json"


def test_an_unset_or_empty_variable_is_empty(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(NAME, raising=False)
    assert env_text(NAME) == ""
    monkeypatch.setenv(NAME, "   ")
    assert env_text(NAME) == ""


def test_a_change_made_after_a_read_is_seen_by_the_next(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(NAME, "one")
    assert env_text(NAME) == "one"
    monkeypatch.setenv(NAME, "two")
    assert env_text(NAME) == "two"
    monkeypatch.delenv(NAME)
    assert env_text(NAME) == ""


@pytest.mark.skipif(os.name != "posix", reason="undecodable bytes in the environment are a POSIX matter")
def test_a_value_that_is_not_utf8_reads_as_os_environ_gives_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(os.environb, NAME.encode(), b"caf\xe9 ")
    assert env_text(NAME) == os.environ[NAME].strip() == "caf\udce9"


def test_every_name_of_the_environment_reads_as_os_environ_gives_it() -> None:
    for name, value in os.environ.items():
        assert env_text(name) == value.strip(), name


def test_an_unset_variable_raises_nothing_inside() -> None:
    """The point of the helper: os.environ.get raises and catches KeyError twice for an unset name."""
    raised: list[str] = []

    def trace(frame: types.FrameType, event: str, arg: Any) -> Any:
        if event == "exception":
            raised.append(f"{arg[0].__name__} in {frame.f_code.co_name}")
        return trace

    os.environ.pop(NAME, None)
    sys.settrace(trace)
    try:
        env_text(NAME)
    finally:
        sys.settrace(None)
    assert raised == []
    sys.settrace(trace)
    try:
        os.environ.get(NAME)
    finally:
        sys.settrace(None)
    assert raised  # the check sees the exceptions os.environ.get makes


def test_an_environment_replaced_by_a_plain_mapping_is_asked_through_get(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "environ", {NAME: " replaced "})
    assert env_text(NAME) == "replaced"
    assert env_text("GPUABST_TEST_ENVIRONMENT_ABSENT") == ""


def test_the_variables_a_read_asks_go_through_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """GPUABST_FIXTURE, GPUABST_GPU_DB, GPUABST_BACKENDS and GPUABST_SYSFS_ROOT are still honoured."""
    from gpuabst_pci.binding import configured_root

    from gpuabst import catalog, registry
    from gpuabst.machine import fixtures_from_env

    monkeypatch.setenv("GPUABST_FIXTURE", os.pathsep.join([" a.json", "b.json "]))
    assert fixtures_from_env() == ["a.json", "b.json"]
    monkeypatch.setenv("GPUABST_BACKENDS", " nvml, pci ")
    assert registry.wanted_names(None) == ["nvml", "pci"]
    monkeypatch.setenv("GPUABST_SYSFS_ROOT", f" {tmp_path} ")
    assert configured_root().path == str(tmp_path)
    monkeypatch.setenv("GPUABST_GPU_DB", str(tmp_path / "absent-gpus.json"))
    monkeypatch.setattr(catalog, "_active", None)
    with pytest.raises(catalog.CatalogError, match=r"absent-gpus\.json"):
        catalog.active()

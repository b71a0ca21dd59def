"""The index of gpuabst's entry points: read instead of scanning when the installation is unchanged,
scanned again whenever it changed or the index is unusable, and never an error of its own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gpuabst import entry_points, registry
from gpuabst.backend import Backend


@pytest.fixture
def new_process(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[], None]]:
    """Forget what this process looked up, as a new process would start (the index stays)."""

    def fresh() -> None:
        monkeypatch.setattr(entry_points, "_looked", entry_points._Lookup())
        registry._registered.cache_clear()
        registry._loaded.cache_clear()
        registry._discovered.clear()

    fresh()
    yield fresh
    fresh()


@pytest.fixture
def scans(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the scans of installed packages' metadata."""
    count: list[int] = []
    real = entry_points.scan

    def counted() -> dict[str, list[entry_points.Entry]]:
        count.append(1)
        return real()

    monkeypatch.setattr(entry_points, "scan", counted)
    return count


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty folder on sys.path, for packages installed during a test."""
    d = tmp_path / "site"
    d.mkdir()
    monkeypatch.syspath_prepend(str(d))
    return d


def _index_file() -> Path:
    path = entry_points._index_path(entry_points._path_folders())
    assert path is not None
    return Path(path)


def _install(site: Path, module: str, entry: str, body: str = "") -> Path:
    (site / f"{module}.py").write_text(body)
    dist = site / f"{module}-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[gpuabst.backends]\n{entry}\n")
    return dist


def _names(group: str = "gpuabst.backends") -> list[str]:
    return [name for name, _, _ in entry_points.group(group)]


def test_the_first_lookup_scans_and_writes_the_index_the_next_reads_it(
        new_process: Callable[[], None], scans: list[int]) -> None:
    first = entry_points.group("gpuabst.backends")
    assert {"nvml", "amdsmi", "opencl", "pci"} <= {name for name, _, _ in first} and len(scans) == 1
    assert ("nvml", "gpuabst_nvml.backend:NvmlBackend", "gpuabst") in first
    doc = json.loads(_index_file().read_text())
    assert doc["format"] == entry_points.INDEX_FORMAT and doc["state"] == entry_points.installation_state()
    entry_points.group("gpuabst.importers")
    assert len(scans) == 1  # once per process
    new_process()
    assert entry_points.group("gpuabst.backends") == first and len(scans) == 1  # from the index
    assert {"nvidia-smi-xml", "clinfo"} <= set(_names("gpuabst.importers"))


def test_a_package_installed_or_removed_since_is_seen(new_process: Callable[[], None], scans: list[int],
                                                      site: Path) -> None:
    assert "toy" not in _names()
    new_process()
    dist = _install(site, "gpuabst_toy_ep", "toy = gpuabst_toy_ep:ToyBackend")
    assert "toy" in _names() and len(scans) == 2
    new_process()
    assert "toy" in _names() and len(scans) == 2
    for f in dist.iterdir():
        f.unlink()
    dist.rmdir()
    new_process()
    assert "toy" not in _names() and len(scans) == 3


def test_an_entry_points_file_changed_in_place_is_seen(new_process: Callable[[], None], scans: list[int],
                                                       site: Path) -> None:
    dist = _install(site, "gpuabst_toy_ep", "toy = gpuabst_toy_ep:ToyBackend")
    assert "toy" in _names()
    new_process()
    (dist / "entry_points.txt").write_text("[gpuabst.backends]\nrenamed = gpuabst_toy_ep:ToyBackend\n")
    stamp = (dist / "entry_points.txt").stat().st_mtime_ns + 10**9
    os.utime(dist / "entry_points.txt", ns=(stamp, stamp))  # whatever the file system's clock resolution
    names = _names()
    assert "renamed" in names and "toy" not in names and len(scans) == 2


@pytest.mark.parametrize("content", [
    b"", b"{", b"[]", b"null", b'{"format": 1}', b"\xff\xfe not text", b"[" * 100_000,
    b'{"format": 99, "state": [], "groups": {}, "versions": {}}',
], ids=["empty", "truncated", "list", "null", "no-state", "binary", "deep", "other-format"])
def test_an_unusable_index_means_a_scan_and_is_rewritten(new_process: Callable[[], None], scans: list[int],
                                                         content: bytes) -> None:
    entry_points.group("gpuabst.backends")
    _index_file().write_bytes(content)
    new_process()
    assert "nvml" in _names() and len(scans) == 2
    assert json.loads(_index_file().read_text())["state"] == entry_points.installation_state()


def _edited_index(edit: Callable[[dict[str, Any]], None]) -> None:
    doc = json.loads(_index_file().read_text())
    edit(doc)
    _index_file().write_text(json.dumps(doc))


@pytest.mark.parametrize("edit", [
    lambda d: d["groups"].pop("gpuabst.importers"),
    lambda d: d["groups"]["gpuabst.backends"].append(["x", 1, None]),
    lambda d: d["groups"]["gpuabst.backends"].append(["x", "m:a"]),
    lambda d: d["groups"].update({"gpuabst.backends": {"nvml": "x"}}),
    lambda d: d.update(versions=["pynvml"]),
    lambda d: d.update(versions={"pynvml": 12}),
    lambda d: d.update(groups=None),
], ids=["group-missing", "value-not-text", "short-entry", "group-not-list", "versions-list", "version-number",
        "groups-null"])
def test_an_index_of_the_wrong_shape_is_not_used(new_process: Callable[[], None], scans: list[int],
                                                 edit: Callable[[dict[str, Any]], None]) -> None:
    entry_points.group("gpuabst.backends")
    _edited_index(edit)
    new_process()
    assert "nvml" in _names() and len(scans) == 2


def test_an_index_larger_than_the_limit_is_not_read(new_process: Callable[[], None], scans: list[int],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    entry_points.group("gpuabst.backends")
    monkeypatch.setattr(entry_points, "INDEX_LIMIT", _index_file().stat().st_size - 1)
    new_process()
    assert "nvml" in _names() and len(scans) == 2


def test_a_fifo_or_a_folder_where_the_index_belongs_is_scanned_past(new_process: Callable[[], None],
                                                                    scans: list[int]) -> None:
    entry_points.group("gpuabst.backends")
    index = _index_file()
    index.unlink()
    os.mkfifo(index)  # an open that waited for a writer would hang here
    new_process()
    assert "nvml" in _names() and len(scans) == 2
    index.unlink()
    index.mkdir()
    new_process()
    assert "nvml" in _names() and len(scans) == 3 and index.is_dir()


def test_an_unwritable_cache_folder_costs_only_the_scan(new_process: Callable[[], None], scans: list[int],
                                                        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv(entry_points.CACHE_ENV, str(blocker / "gpuabst"))  # makedirs fails, as on a read-only home
    assert "nvml" in _names() and len(scans) == 1
    new_process()
    assert "nvml" in _names() and len(scans) == 2
    assert blocker.read_text() == "not a folder" and list(tmp_path.iterdir()) == [blocker]


def test_the_cache_can_be_turned_off_and_moved(new_process: Callable[[], None], scans: list[int],
                                               tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(entry_points.CACHE_ENV, "off")
    assert entry_points.cache_dir() is None
    assert "nvml" in _names()
    new_process()
    assert "nvml" in _names() and len(scans) == 2
    assert not (Path(os.environ["XDG_CACHE_HOME"]) / "gpuabst").exists()
    monkeypatch.setenv(entry_points.CACHE_ENV, str(tmp_path / "elsewhere"))
    new_process()
    _names()
    assert [p.name.startswith("entry-points-") for p in (tmp_path / "elsewhere").iterdir()] == [True]


def test_processes_with_different_paths_keep_their_own_indexes(new_process: Callable[[], None],
                                                                scans: list[int], tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A console script, a `python -c` and an agent's own script see different sys.paths: each reads
    its own index instead of overwriting the other's on every start."""
    _names()
    first = _index_file()
    other = tmp_path / "agent"
    other.mkdir()
    monkeypatch.syspath_prepend(str(other))
    new_process()
    _names()
    assert _index_file() != first and first.is_file() and len(scans) == 2
    for _ in range(3):  # taking turns: each finds its own index
        monkeypatch.setattr(sys, "path", [p for p in sys.path if p != str(other)])
        new_process()
        _names()
        monkeypatch.syspath_prepend(str(other))
        new_process()
        _names()
    assert len(scans) == 2


def test_no_more_than_the_kept_number_of_indexes_stay(new_process: Callable[[], None], tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(entry_points, "INDEXES_KEPT", 3)
    for i in range(6):
        extra = tmp_path / f"p{i}"
        extra.mkdir()
        monkeypatch.syspath_prepend(str(extra))
        new_process()
        _names()
    folder = _index_file().parent
    assert len(list(folder.glob("entry-points-*.json"))) == 3 and _index_file().is_file()


def test_a_version_asked_once_is_kept_in_the_index(new_process: Callable[[], None],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.metadata

    assert entry_points.version("attrs") == importlib.metadata.version("attrs")
    assert entry_points.version("no-such-distribution-here") is None
    new_process()

    def refuse(name: str) -> str:
        raise AssertionError(f"importlib.metadata.version({name!r}) asked although the index has it")

    monkeypatch.setattr(importlib.metadata, "version", refuse)
    assert entry_points.version("attrs") == importlib.metadata.distribution("attrs").version
    assert entry_points.version("no-such-distribution-here") is None


def test_a_stale_index_never_hides_a_backend(new_process: Callable[[], None], scans: list[int]) -> None:
    """An index whose reference no longer imports (a package replaced without any change the state
    sees): the backend is looked up by a fresh scan before it would be reported broken."""
    entry_points.group("gpuabst.backends")

    def stale(doc: dict[str, Any]) -> None:
        doc["groups"]["gpuabst.backends"] = [["nvml", "gpuabst_nvml_gone.backend:NvmlBackend", "gpuabst"]]

    _edited_index(stale)
    new_process()
    (entry,) = registry.discover(["nvml"])
    assert entry.error is None and entry.backend_class is not None
    assert entry.backend_class.__module__ == "gpuabst_nvml.backend" and len(scans) == 2
    assert ["nvml", "gpuabst_nvml.backend:NvmlBackend", "gpuabst"] in json.loads(
        _index_file().read_text())["groups"]["gpuabst.backends"]


def test_a_broken_plugin_is_still_reported_after_the_rescan(new_process: Callable[[], None], scans: list[int],
                                                            site: Path) -> None:
    _install(site, "gpuabst_broken_ep", "broken = gpuabst_broken_ep:Nothing", "raise ImportError('libbroken.so')\n")
    entry_points.group("gpuabst.backends")
    new_process()
    (entry,) = registry.discover(["broken"])
    assert entry.backend_class is None and "libbroken.so" in (entry.error or "")
    assert len(scans) == 2  # from the index, then the one scan that confirmed it


def test_discovery_is_kept_per_names_and_loader_until_refreshed(new_process: Callable[[], None],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    loads: list[Any] = []
    real = registry._load

    def counted(names: list[str] | None = None) -> tuple[registry.BackendEntry, ...]:
        loads.append(names)
        return real(names)

    monkeypatch.setattr(registry, "_load", counted)
    first = registry.discover(["nvml"])
    first.clear()  # the caller's own list: what is kept is not changed
    again = registry.discover("nvml")
    assert [e.name for e in again] == ["nvml"] and loads == [["nvml"]]
    assert [e.name for e in registry.discover(["nvml", "pci"])] == ["nvml", "pci"] and len(loads) == 2
    extra = registry.BackendEntry("extra", None, "t", "failed to load extra")
    monkeypatch.setattr(registry, "_load", lambda names=None: (*real(names), extra))  # another loader is asked
    assert [e.name for e in registry.discover(["nvml", "extra"])] == ["nvml", "extra"]
    monkeypatch.setattr(registry, "_load", counted)
    registry.refresh()
    assert [e.name for e in registry.discover(["nvml"])] == ["nvml"] and len(loads) == 3


@pytest.mark.parametrize(("reference", "expected"), [
    ("json:dumps", json.dumps),
    ("os.path:join", os.path.join),
    ("gpuabst.backend:Backend", Backend),
    ("gpuabst.backend:Backend.probe", Backend.probe),
    ("gpuabst.backend : Backend [extra1, extra2]", Backend),
    ("json", json),
])
def test_load_resolves_references_as_importlib_metadata_does(reference: str, expected: object) -> None:
    import importlib.metadata

    assert entry_points.load(reference) is expected
    assert importlib.metadata.EntryPoint("x", reference, "g").load() is expected


def test_a_warm_command_start_imports_no_metadata_or_resource_machinery(tmp_path: Path) -> None:
    """The second `gpuabst list` reads the index: importlib.metadata (with its email, zipfile and csv
    parsers) and importlib.resources are not imported at all."""
    from synthetic import nvml_fixture

    from gpuabst.fixtures import format as fmt

    fixture = tmp_path / "f.json"
    fmt.save(nvml_fixture(1), fixture)
    quiet = tmp_path / "cwd"  # the working folder is on sys.path under -c: keep it unchanged
    quiet.mkdir()
    code = textwrap.dedent("""
        import sys
        sys.argv = ["gpuabst", "list"]
        from gpuabst.cli.main import main
        try:
            main()
        except SystemExit:
            pass
        print(sorted(m for m in ("importlib.metadata", "importlib.resources", "email", "zipfile", "csv")
                     if m in sys.modules))
    """)
    env = {**os.environ, "GPUABST_FIXTURE": str(fixture)}
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=quiet,
                           timeout=120) for _ in range(2)]
    for r in runs:
        assert r.returncode == 0 and "nvml" in r.stdout, r.stderr
    assert "importlib.metadata" in runs[0].stdout.splitlines()[-1]  # the first start scanned
    assert runs[1].stdout.splitlines()[-1] == "[]"


def test_an_index_others_could_have_written_is_not_trusted(new_process: Callable[[], None], scans: list[int],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """The index names modules to import: one that another user owns, or that others can write, is
    scanned past (and replaced by this user's own, written 0600)."""
    entry_points.group("gpuabst.backends")
    index = _index_file()
    assert index.stat().st_mode & 0o777 == 0o600
    index.chmod(0o622)
    new_process()
    assert "nvml" in _names() and len(scans) == 2 and index.stat().st_mode & 0o777 == 0o600
    new_process()
    _names()
    assert len(scans) == 2
    monkeypatch.setattr(os, "getuid", lambda: index.stat().st_uid + 1)
    new_process()
    assert "nvml" in _names() and len(scans) == 3



def test_a_backend_gone_from_the_installation_is_dropped_by_the_rescan(new_process: Callable[[], None],
                                                                     scans: list[int]) -> None:
    """A stale index that still lists a removed plugin: its failed import rescans, and it is no longer
    listed (nor does looking up the backends after it fail)."""
    entry_points.group("gpuabst.backends")

    def ghost_first(doc: dict[str, Any]) -> None:
        doc["groups"]["gpuabst.backends"].insert(0, ["ghost", "gpuabst_ghost_gone:GhostBackend", "ghost"])

    _edited_index(ghost_first)
    new_process()
    entries = {e.name: e for e in registry.discover()}
    assert "ghost" not in entries and len(scans) == 2
    assert {"nvml", "amdsmi", "opencl", "pci"} <= set(entries) and entries["nvml"].backend_class is not None

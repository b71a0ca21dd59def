"""gpuabst's entry-point groups, scanned once per installation and kept in an index file.

Scanning entry points (:func:`importlib.metadata.entry_points`) imports importlib.metadata with its
email, zipfile and csv parsers and reads every installed package's metadata: 20-40 ms of every
``gpuabst`` command's start, growing with the number of installed packages. The scan's answer for
gpuabst's groups (:data:`GROUPS`) is kept in ``$GPUABST_CACHE_DIR`` (default
``$XDG_CACHE_HOME/gpuabst``, else ``~/.cache/gpuabst``), one file per interpreter and ``sys.path``,
with the installation state it was scanned in: each ``sys.path`` entry's modification time
(installing, upgrading or removing a package adds or removes a folder there) and each installed
package's ``entry_points.txt`` modification time. A different state, a missing, unreadable,
oversized or malformed index, one that another user owns or can write, or ``GPUABST_CACHE_DIR=off``
means a fresh scan, written back where the folder is writable (a read-only home only costs the
scan). :mod:`gpuabst.registry` rescans before it reports a plugin from the index broken, so a stale
index can delay but never hide one.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from typing import Any

GROUPS = ("gpuabst.backends", "gpuabst.importers")
"""The entry-point groups gpuabst reads: backends (:mod:`gpuabst.registry`) and importers."""

CACHE_ENV = "GPUABST_CACHE_DIR"
"""Where the index is kept; ``off`` keeps none (every process scans)."""

INDEX_FORMAT = 1
INDEX_LIMIT = 4 * 2**20
"""An index larger than this is not read (one line per installed package: a few hundred kB at most)."""

INDEXES_KEPT = 16
"""Index files kept in the folder (the most recently written)."""

Entry = tuple[str, str, "str | None"]
"""One entry point: its name, its object reference (``module:attr``), its distribution's name."""

_lock = threading.Lock()


class _Lookup:
    """What this process looked up: the groups, the versions asked for, and where they came from."""

    def __init__(self) -> None:
        self.groups: dict[str, list[Entry]] | None = None
        self.versions: dict[str, str | None] = {}
        self.from_index = False
        self.skip_index = False
        self.path: str | None = None
        self.state: list[list[Any]] = []


_looked = _Lookup()


def cache_dir() -> str | None:
    """The folder the index is kept in, or None where ``GPUABST_CACHE_DIR=off``."""
    configured = os.environ.get(CACHE_ENV, "").strip()
    if configured.lower() == "off":
        return None
    if configured:
        return configured
    base = os.environ.get("XDG_CACHE_HOME", "").strip() or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "gpuabst")


def _mtime(path: str) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return -1


def _path_folders() -> list[str]:
    """``sys.path`` as absolute paths (an empty entry is the working folder)."""
    return [os.path.abspath(p or os.curdir) for p in sys.path]


def installation_state(folders: list[str] | None = None) -> list[list[Any]]:
    """What a scan's answer depends on: the interpreter, and for each ``sys.path`` entry (``folders``,
    default :func:`_path_folders`) its modification time and that of each ``*.dist-info``/``*.egg-info``
    ``entry_points.txt`` in it."""
    state: list[list[Any]] = [["python", sys.executable, sys.prefix, sys.version]]
    for folder in _path_folders() if folders is None else folders:
        state.append([folder, _mtime(folder)])
        try:
            names = sorted(os.listdir(folder))
        except OSError:  # a zip file, or an entry that does not exist
            continue
        for name in names:
            if name.endswith((".dist-info", ".egg-info")):
                state.append([name, _mtime(os.path.join(folder, name, "entry_points.txt"))])
    return state


def _index_path(folders: list[str]) -> str | None:
    """One index per interpreter and ``sys.path`` (a console script, a ``python -c`` in some folder and
    an agent's own script see different packages), so processes that differ do not evict each other's."""
    folder = cache_dir()
    if folder is None:
        return None
    import zlib

    paths = "\0".join([sys.executable, *folders])
    return os.path.join(folder, f"entry-points-{zlib.crc32(paths.encode('utf-8', 'surrogateescape')):08x}.json")


def _prune(folder: str, keep: int) -> None:
    """Remove all but the ``keep`` most recently written indexes (one is written per new ``sys.path``)."""
    try:
        names = [n for n in os.listdir(folder) if n.startswith("entry-points-") and n.endswith(".json")]
        if len(names) <= keep:
            return
        names.sort(key=lambda n: _mtime(os.path.join(folder, n)), reverse=True)
        for name in names[keep:]:
            os.unlink(os.path.join(folder, name))
    except OSError:
        pass


def scan() -> dict[str, list[Entry]]:
    """gpuabst's groups as :func:`importlib.metadata.entry_points` finds them now, in its order."""
    import importlib.metadata

    found: dict[str, list[Entry]] = {g: [] for g in GROUPS}
    for name in GROUPS:
        for ep in importlib.metadata.entry_points(group=name):
            found[name].append((ep.name, ep.value, ep.dist.name if ep.dist is not None else None))
    return found


def _valid_groups(groups: object) -> dict[str, list[Entry]] | None:
    """An index's groups, where they have exactly the shape :func:`scan` gives."""
    if not isinstance(groups, dict) or set(groups) != set(GROUPS):
        return None
    out: dict[str, list[Entry]] = {}
    for name, entries in groups.items():
        if not isinstance(entries, list):
            return None
        out[name] = []
        for e in entries:
            if not (isinstance(e, list) and len(e) == 3 and isinstance(e[0], str) and isinstance(e[1], str)
                    and (e[2] is None or isinstance(e[2], str))):
                return None
            out[name].append((e[0], e[1], e[2]))
    return out


def _valid_versions(versions: object) -> dict[str, str | None] | None:
    if not isinstance(versions, dict):
        return None
    if not all(isinstance(k, str) and (v is None or isinstance(v, str)) for k, v in versions.items()):
        return None
    return dict(versions)


def _trusted(path: str) -> bool:
    """Whether the index names modules this process may import: a file of this user's that nobody else
    can write (an index in a shared folder could otherwise make gpuabst import any installed module)."""
    try:
        st = os.stat(path)
    except OSError:
        return False
    getuid = getattr(os, "getuid", None)
    if getuid is None:  # no POSIX owners and modes (Windows): the user's own profile folder
        return True
    return st.st_uid == getuid() and not st.st_mode & 0o022


def _read_index(path: str, state: list[list[Any]]) -> tuple[dict[str, list[Entry]], dict[str, str | None]] | None:
    """The index's groups and versions, where it is trusted, was written in ``state`` and is well formed."""
    from gpuabst.safe_io import read_capped

    if not _trusted(path):
        return None
    try:
        doc = json.loads(read_capped(path, INDEX_LIMIT, "an entry-point index", error=OSError))
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(doc, dict) or doc.get("format") != INDEX_FORMAT or doc.get("state") != state:
        return None
    groups, versions = _valid_groups(doc.get("groups")), _valid_versions(doc.get("versions"))
    return None if groups is None or versions is None else (groups, versions)


def _write_index() -> None:
    """Write what this process looked up, whole or not at all (another process may be reading or
    writing the index at the same time). Not :func:`gpuabst.safe_io.write_text`: the index is always
    private (0600, whatever mode a file found there had) and replaces what is at its path, never the
    file a link there names."""
    path = _looked.path
    if path is None:
        return
    tmp = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
    doc = {"format": INDEX_FORMAT, "state": _looked.state, "groups": _looked.groups, "versions": _looked.versions}
    try:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w", encoding="utf-8") as f:
            json.dump(doc, f)
        os.replace(tmp, path)
        _prune(os.path.dirname(path), INDEXES_KEPT)
    except (OSError, TypeError, ValueError):  # a read-only or missing home: the next process scans again
        try:
            os.unlink(tmp)
        except OSError:
            pass


def _look_up() -> None:
    """Fill :data:`_looked` from the index where it matches this installation, else by a scan (the
    index rewritten). Called with the lock held."""
    folders = _path_folders()
    _looked.path = _index_path(folders)
    _looked.state = installation_state(folders) if _looked.path is not None else []
    indexed = None
    if _looked.path is not None and not _looked.skip_index:
        indexed = _read_index(_looked.path, _looked.state)
    _looked.skip_index = False
    if indexed is not None:
        (_looked.groups, _looked.versions), _looked.from_index = indexed, True
    else:
        _looked.groups, _looked.versions, _looked.from_index = scan(), {}, False
        _write_index()


def group(name: str) -> list[Entry]:
    """The entry points of one of :data:`GROUPS`: from the index where it matches this installation,
    else scanned (and the index rewritten). Looked up once per process."""
    with _lock:
        if _looked.groups is None:
            _look_up()
        assert _looked.groups is not None
        return list(_looked.groups[name])


def version(distribution: str) -> str | None:
    """An installed distribution's version (``importlib.metadata.version``; None where it is not
    installed), kept in the index beside the entry points, so a backend's report does not import
    importlib.metadata for it on every start."""
    with _lock:
        if _looked.groups is None:
            _look_up()
        if distribution in _looked.versions:
            return _looked.versions[distribution]
        import importlib.metadata

        try:
            found: str | None = importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            found = None
        _looked.versions = {**_looked.versions, distribution: found}
        _write_index()
        return found


def rescan() -> bool:
    """Scan again now, and rewrite the index, where this process's entry points came from the index
    (a plugin failed to load: the index may be older than the installation). False, and nothing done,
    where they were scanned in this process already."""
    with _lock:
        if not _looked.from_index:
            return False
        _looked.skip_index = True
        _look_up()
        return True


def forget() -> None:
    """Forget what this process looked up: the next lookup scans again (and rewrites the index)."""
    with _lock:
        _looked.groups, _looked.versions, _looked.from_index, _looked.skip_index = None, {}, False, True


def load(value: str) -> Any:
    """The object an entry point's reference names (``package.module:attr.attr``, extras ignored), as
    :meth:`importlib.metadata.EntryPoint.load` resolves it, without importing importlib.metadata."""
    import importlib

    reference = value.split("[", 1)[0].strip()
    module, _, attrs = reference.partition(":")
    obj: Any = importlib.import_module(module.strip())
    for attr in filter(None, attrs.strip().split(".")):
        obj = getattr(obj, attr)
    return obj

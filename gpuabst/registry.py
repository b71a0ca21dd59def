"""Backend discovery through the ``gpuabst.backends`` entry-point group.

First-party backends are found the same way as third-party ones. A plugin that fails to load is
kept as an entry with its error, never dropped silently. Discovery can be limited by name
(``names=`` or the environment variable ``GPUABST_BACKENDS``, comma-separated).
"""

from __future__ import annotations

import functools
import importlib.metadata
import os

import attrs

from gpuabst.backend import Backend

ENTRY_POINT_GROUP = "gpuabst.backends"
BACKENDS_ENV = "GPUABST_BACKENDS"


@attrs.frozen
class BackendEntry:
    """One registered backend: its class, or the error that stopped it loading."""

    name: str
    backend_class: type[Backend] | None
    distribution: str | None = None
    error: str | None = None


def wanted_names(names: list[str] | None = None) -> list[str] | None:
    if names:
        return names
    env = os.environ.get(BACKENDS_ENV, "").strip()
    return [n.strip() for n in env.split(",") if n.strip()] or None


@functools.lru_cache(maxsize=1)
def _registered() -> dict[str, importlib.metadata.EntryPoint]:
    """Every registered backend's entry point by name, the first of each name; scanned once per process
    (the scan reads every installed package's metadata)."""
    found: dict[str, importlib.metadata.EntryPoint] = {}
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name, ep)
    return found


@functools.cache
def _loaded(name: str) -> BackendEntry:
    """The registered backend ``name`` imported (once per process), or the error that stopped it."""
    ep = _registered()[name]
    dist = ep.dist.name if ep.dist is not None else None
    try:
        cls = ep.load()
    except Exception as e:  # a broken plugin is reported, not fatal
        return BackendEntry(name, None, dist, f"failed to load {ep.value}: {type(e).__name__}: {e}")
    if not (isinstance(cls, type) and issubclass(cls, Backend)):
        return BackendEntry(name, None, dist, f"{ep.value} is not a gpuabst Backend subclass")
    return BackendEntry(name, cls, dist)


def _load(names: list[str] | None = None) -> tuple[BackendEntry, ...]:
    """The registered backends among ``names`` (all when None), loaded: a backend not asked for is
    never imported, so a broken or slow plugin costs nothing where it is not used."""
    return tuple(_loaded(n) for n in _registered() if names is None or n in names)


def refresh() -> None:
    """Forget the scanned entry points, so plugins installed since are found."""
    _registered.cache_clear()
    _loaded.cache_clear()


def discover(names: list[str] | None = None) -> list[BackendEntry]:
    """Every backend registered in the entry-point group, loaded, in a stable order."""
    wanted = wanted_names(names)
    entries = {e.name: e for e in _load(wanted) if wanted is None or e.name in wanted}
    if wanted is not None:
        for n in wanted:
            if n not in entries:
                entries[n] = BackendEntry(n, None, None, f"no backend named {n!r} is installed")
    return sorted(entries.values(), key=lambda e: (-(e.backend_class.authority if e.backend_class else 0), e.name))

"""Backend discovery through the ``gpuabst.backends`` entry-point group.

First-party backends are found the same way as third-party ones. A plugin that fails to load is
kept as an entry with its error, never dropped silently. Discovery can be limited by name
(``names=`` or the environment variable ``GPUABST_BACKENDS``, comma-separated). The group is read
from :mod:`gpuabst.entry_points`' index of the installation, not scanned on every start.
"""

from __future__ import annotations

import functools

import attrs

from gpuabst import entry_points
from gpuabst.backend import Backend
from gpuabst.environment import env_text

ENTRY_POINT_GROUP = "gpuabst.backends"
BACKENDS_ENV = "GPUABST_BACKENDS"


@attrs.frozen
class BackendEntry:
    """One registered backend: its class, or the error that stopped it loading."""

    name: str
    backend_class: type[Backend] | None
    distribution: str | None = None
    error: str | None = None


def wanted_names(names: list[str] | str | None = None) -> list[str] | None:
    """The backend names asked for: ``names`` (a list, or one string of names separated by commas),
    else ``$GPUABST_BACKENDS``, else None (all)."""
    if isinstance(names, str):  # "nvml" is one name, not four one-letter ones
        return _split(names)
    if names:
        return list(names)
    return _split(env_text(BACKENDS_ENV))


def _split(text: str) -> list[str] | None:
    return [n.strip() for n in text.split(",") if n.strip()] or None


@functools.lru_cache(maxsize=1)
def _registered() -> dict[str, tuple[str, str | None]]:
    """Every registered backend's object reference and distribution by name, the first of each name;
    looked up once per process (gpuabst.entry_points keeps the scan of installed packages' metadata)."""
    found: dict[str, tuple[str, str | None]] = {}
    for name, value, dist in entry_points.group(ENTRY_POINT_GROUP):
        found.setdefault(name, (value, dist))
    return found


@functools.cache
def _loaded(name: str) -> BackendEntry:
    """The registered backend ``name`` imported (once per process), or the error that stopped it. A
    backend that fails to load from the index of entry points is looked up again by a fresh scan
    first, in case the index is older than the installation."""
    found = _registered().get(name)
    if found is None:  # gone in a rescan that another backend's failed load made
        return BackendEntry(name, None, None, f"no backend named {name!r} is installed")
    value, dist = found
    try:
        cls = entry_points.load(value)
    except Exception as e:  # a broken plugin is reported, not fatal
        if entry_points.rescan():
            _registered.cache_clear()
            _discovered.clear()
            if _registered().get(name, (None, None))[0] not in (None, value):
                return _loaded(name)
        return BackendEntry(name, None, dist, f"failed to load {value}: {type(e).__name__}: {e}")
    if not (isinstance(cls, type) and issubclass(cls, Backend)):
        return BackendEntry(name, None, dist, f"{value} is not a gpuabst Backend subclass")
    return BackendEntry(name, cls, dist)


def _load(names: list[str] | None = None) -> tuple[BackendEntry, ...]:
    """The registered backends among ``names`` (all when None), loaded: a backend not asked for is
    never imported, so a broken or slow plugin costs nothing where it is not used."""
    entries = [_loaded(n) for n in _registered() if names is None or n in names]
    registered = _registered()  # a failed load may have rescanned: only what is still registered
    return tuple(e for e in entries if e.name in registered)


def refresh() -> None:
    """Forget the scanned entry points, so plugins installed since are found."""
    entry_points.forget()
    _registered.cache_clear()
    _loaded.cache_clear()
    _discovered.clear()


_discovered: dict[tuple[tuple[str, ...] | None, object], tuple[BackendEntry, ...]] = {}
"""discover()'s answers by (the names asked for, the loader in use): kept, as every one-shot read asks
again (each a few µs of comprehensions and sorting otherwise)."""
_DISCOVERED_KEPT = 64


def discover(names: list[str] | str | None = None) -> list[BackendEntry]:
    """Every backend registered in the entry-point group, loaded, in a stable order.

    Kept per process for each list of names (until :func:`refresh`, or a rescan after a failed load)
    and each loader: one replacing ``_load`` (as tests and tools do) is asked itself."""
    wanted = wanted_names(names)
    key = (None if wanted is None else tuple(wanted), _load)
    known = _discovered.get(key)
    if known is None:
        known = _discover(wanted)
        if len(_discovered) < _DISCOVERED_KEPT:
            _discovered[key] = known
    return list(known)


def _discover(wanted: list[str] | None) -> tuple[BackendEntry, ...]:
    entries = {e.name: e for e in _load(wanted) if wanted is None or e.name in wanted}
    if wanted is not None:
        for n in wanted:
            if n not in entries:
                entries[n] = BackendEntry(n, None, None, f"no backend named {n!r} is installed")
    return tuple(sorted(entries.values(),
                        key=lambda e: (-(e.backend_class.authority if e.backend_class else 0), e.name)))

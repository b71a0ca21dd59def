"""Machine: the backends of one machine (live, capturing or replayed) behind one thread-safe object.

This is what the public functions and the command line use. One backend failing, raising or
hanging never stops the others: its report says why and the rest still report.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable, Sequence
from typing import Any

import attrs

from gpuabst import catalog
from gpuabst import fixtures as fixture_format
from gpuabst.backend import Backend, LibrarySource, LiveLibrary, Probe, RecordingLibrary, ReplayLibrary
from gpuabst.environment import env_text
from gpuabst.errors import BackendError, FixtureError
from gpuabst.fixtures.format import BackendRecording, Fixture
from gpuabst.merge import merge_devices
from gpuabst.model import BackendReport, Device, Snapshot, replace
from gpuabst.naming import model_for, same_naming_facts
from gpuabst.registry import BackendEntry, discover

FIXTURE_ENV = "GPUABST_FIXTURE"

_is_device = Device.__instancecheck__
"""``isinstance(d, Device)`` as a one-argument function (``all(map(...))`` then loops in C)."""


_stamp: tuple[int, str] = (-1, "")
"""The latest read's second and its text: formatted once per second."""


def taken_at() -> str:
    """Now, to the second, in UTC as ISO 8601 (``2026-11-27T11:25:00+00:00``: what
    ``datetime.now(timezone.utc).isoformat(timespec="seconds")`` writes, at an eighth of its cost)."""
    global _stamp
    now = int(time.time())
    stamp = _stamp
    if stamp[0] != now:
        stamp = _stamp = (now, time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(now)))
    return stamp[1]


def _kinds(devs: object) -> str:
    """``list of ['dict']``: what a backend handed back instead of a list of Devices."""
    if isinstance(devs, list):
        return f"list of {sorted({type(d).__name__ for d in devs})}"
    return type(devs).__name__


def fixtures_from_env() -> list[str]:
    """Fixture paths from ``GPUABST_FIXTURE`` (several separated by the OS path separator)."""
    env = env_text(FIXTURE_ENV)
    return [p for p in env.split(os.pathsep) if p.strip()]


def load_fixtures(paths: Iterable[str | os.PathLike[str]]) -> list[Fixture]:
    return [fixture_format.load(p) for p in paths]


def recordings_of(fixtures: Sequence[Fixture]) -> dict[str, tuple[BackendRecording, str]]:
    """One recording per backend across all fixtures; two recordings of one backend are an error."""
    out: dict[str, tuple[BackendRecording, str]] = {}
    for fx in fixtures:
        for name, rec in fx.backends.items():
            if name in out:
                raise FixtureError(f"backend {name!r} is recorded in both {out[name][1]} and {fx.path}: "
                                   "replay one machine's fixtures at a time")
            out[name] = (rec, fx.path or "<fixture>")
    return out


FixtureSpec = str | os.PathLike[str] | Fixture
"""A fixture file to replay, or a fixture already loaded."""


class Machine:
    """Every backend of one machine, opened lazily and closed together.

    ``fixtures``: replay these (or this one) instead of touching hardware (default: ``$GPUABST_FIXTURE``).
    ``backends``: only these backend names, a list or one string separated by commas (default:
    ``$GPUABST_BACKENDS``, else all installed).
    ``capture``: record every vendor call for :meth:`capture`.
    ``call_timeout_s``: abandon a vendor call that takes longer (None, the default: wait for ever);
    anything but None or a number of seconds > 0 is a ValueError.
    """

    def __init__(self, fixtures: FixtureSpec | Sequence[FixtureSpec] | None = None, *,
                 backends: list[str] | str | None = None, capture: bool = False, replay_latency: bool = False,
                 call_timeout_s: float | None = None) -> None:
        if call_timeout_s is not None and not (isinstance(call_timeout_s, (int, float)) and 0 < call_timeout_s < 1e9):
            raise ValueError(f"call_timeout_s must be None (wait for ever) or a number of seconds > 0, "
                             f"not {call_timeout_s!r}")
        if fixtures is None:
            paths: list[FixtureSpec] = list(fixtures_from_env())
        elif isinstance(fixtures, (str, os.PathLike, Fixture)):  # one fixture, not a sequence of characters
            paths = [fixtures]
        else:
            paths = list(fixtures)
        loaded = [f if isinstance(f, Fixture) else fixture_format.load(f) for f in paths]
        self.fixtures = loaded
        self.library: LibrarySource
        self._replay: ReplayLibrary | None = None
        """The library when replaying (``isinstance`` with an ABC, asked on every read, costs more)."""
        if loaded:
            if capture:
                raise BackendError("cannot capture while replaying fixtures")
            self.library = self._replay = ReplayLibrary(recordings_of(loaded), replay_latency=replay_latency)
        elif capture:
            self.library = RecordingLibrary()
        else:
            self.library = LiveLibrary()
        self.entries: list[BackendEntry] = []
        self._backends: dict[str, Backend] = {}
        for e in discover(backends):
            if e.backend_class is not None:
                try:
                    self._backends[e.name] = e.backend_class(self.library, call_timeout_s=call_timeout_s)
                except Exception as exc:  # a plugin's own bug: reported as that backend's, the others read
                    e = attrs.evolve(e, backend_class=None,
                                     error=f"{e.backend_class.__name__}() failed: {type(exc).__name__}: {exc}")
            self.entries.append(e)
        self._lock = threading.RLock()
        self._reports: list[BackendReport] | None = None
        self._read_reports: dict[str, tuple[BackendReport, BackendReport]] = {}
        """Each backend's report of its latest successful read, with the report it was made from."""
        self._last: dict[str, list[Device]] = {}
        """Each backend's devices from the latest read: what its next poll starts from."""
        self._named: list[Device] = []
        """The latest read's devices as returned (merged, indexed, named)."""
        self._named_by: object = None
        """The catalog that named them."""

    # --- lifecycle ----------------------------------------------------------------------------
    def __enter__(self) -> Machine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            for b in self._backends.values():
                try:
                    b.close()
                except Exception:  # closing must never raise over a real error
                    pass

    @property
    def mode(self) -> str:
        return self.library.mode

    def backend(self, name: str) -> Backend:
        return self._backends[name]

    # --- reports ------------------------------------------------------------------------------
    def _replayed_from(self, name: str) -> str | None:
        found = self._replay.recordings.get(name) if self._replay is not None else None
        return found[1] if found is not None else None

    def _report(self, entry: BackendEntry, probe: Probe | None, count: int | None = None,
                error: str | None = None) -> BackendReport:
        if probe is None:
            return BackendReport(entry.name, False, entry.error, None, error=entry.error)
        replayed_from = self._replayed_from(entry.name)
        # installing a library does not help a backend that a replayed fixture simply did not record
        hint = None if probe.available or (self.mode == "replay" and replayed_from is None) else probe.install_hint
        return BackendReport(entry.name, probe.available and error is None, probe.reason or error, hint,
                             probe.library_version, probe.driver_version, count, replayed_from, error)

    def backend_reports(self) -> list[BackendReport]:
        """Each backend: available or not, why, and what to install. Never raises."""
        with self._lock:
            if self._reports is None:
                self._reports = [self._report(e, self._backends[e.name].probe() if e.name in self._backends
                                              else None) for e in self.entries]
                known = {e.name for e in self.entries}
                if self._replay is not None:
                    for name, (_, src) in self._replay.recordings.items():
                        if name not in known:
                            self._reports.append(BackendReport(
                                name, False, f"{src} records backend {name!r}, which is not installed",
                                replayed_from=src))
            return list(self._reports)

    # --- reading ------------------------------------------------------------------------------
    def snapshot(self) -> Snapshot:
        """Every device, fully read, merged across backends."""
        return self._read(poll=False)

    def poll(self) -> Snapshot:
        """Like :meth:`snapshot`, but static facts from the first read are reused."""
        return self._read(poll=True)

    def devices(self) -> list[Device]:
        return self.snapshot().devices

    def _read(self, poll: bool) -> Snapshot:
        with self._lock:
            reports = {r.name: r for r in self.backend_reports()}
            per_backend: list[tuple[int, list[Device]]] = []
            for entry in self.entries:
                backend = self._backends.get(entry.name)
                report = reports[entry.name]
                if backend is None or (not report.available and report.error is None):
                    continue
                try:
                    prev = self._last.get(entry.name)
                    devs = backend.poll(prev) if poll and prev is not None else backend.devices()
                    if type(devs) is not list or not all(map(_is_device, devs)):
                        raise TypeError(f"{entry.name} returned {_kinds(devs)}, not a list of gpuabst Devices")
                    self._last[entry.name] = devs
                    reports[entry.name] = self._read_report(report, len(devs))
                    per_backend.append((backend.authority, devs))
                except Exception as e:  # one backend failing never stops the others
                    reports[entry.name] = replace(report, available=False, error=f"{type(e).__name__}: {e}",
                                                  reason=report.reason or f"{type(e).__name__}: {e}")
            devices = self._name(merge_devices(per_backend))
            return Snapshot(devices, list(reports.values()), taken_at())

    def _read_report(self, report: BackendReport, count: int) -> BackendReport:
        """``report`` for a read of the backend that returned ``count`` devices: the last read's object
        where it was made from the same report and count (every steady poll), else a new one."""
        kept = self._read_reports.get(report.name)
        if kept is not None and kept[0] is report and kept[1].device_count == count:
            return kept[1]
        made = replace(report, available=True, device_count=count, error=None)
        self._read_reports[report.name] = (report, made)
        return made

    def _name(self, merged: list[Device]) -> list[Device]:
        """Each merged device with its index on this machine and its model (gpuabst.naming.model_for).

        A poll's device is the backend's copy of the device named last time, with only what changes
        read again: where its identifying facts are the same objects as last time (immutable, so the
        same facts), its model is the one named then, and a device already carrying that index and
        model is returned as it is. Each backend's next poll then starts from the named device (where
        that changes nothing the backend reads: the same device object, at the backend's own index),
        so a steady poll neither names nor copies a device again."""
        cat = catalog.active()
        last = self._named if self._named_by is cat else []
        named: list[Device] = []
        for i, d in enumerate(merged):
            prev = last[i] if i < len(last) else None
            model = prev.model if prev is not None and same_naming_facts(d, prev) else model_for(d, cat)
            named.append(d if d.index == i and d.model is model else replace(d, index=i, model=model))
        self._named, self._named_by = named, cat
        # the next poll of each backend starts from its devices as named (same object, same index)
        as_named = {id(d): n for d, n in zip(merged, named, strict=True) if n.index == d.index}
        for name, devs in self._last.items():
            self._last[name] = [as_named.get(id(d), d) for d in devs]
        return named

    # --- capture ------------------------------------------------------------------------------
    def capture(self, *, scrub: bool = True, note: str | None = None) -> Fixture:
        """Read everything once (and one poll), and return the recorded calls as a fixture."""
        from gpuabst.fixtures.capture import build_capture

        if not isinstance(self.library, RecordingLibrary):
            raise BackendError("this Machine was not opened with capture=True")
        snap = self.snapshot()
        self.poll()
        self.close()
        return build_capture(self, snap, scrub=scrub, note=note)

    def report_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "fixtures": [f.path for f in self.fixtures]}

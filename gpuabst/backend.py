"""The backend contract: what a vendor plugin implements, and the call path every vendor call takes.

A backend subclasses :class:`Backend`. It gets its vendor module from a :class:`LibrarySource`
(live import, recording proxy or replay), so the same backend code runs on hardware, captures a
fixture, or replays one. Every vendor call goes through :meth:`Backend.read` (or
:meth:`Backend.call`), which turns a vendor error into a :class:`Reading` that says why.
"""

from __future__ import annotations

import abc
import queue
import threading
from collections.abc import Callable, Hashable, Sequence
from typing import Any, ClassVar

import attrs

from gpuabst.errors import BackendUnavailable, NotRecorded
from gpuabst.fixtures.codec import Codec, MissingField
from gpuabst.fixtures.format import BackendRecording
from gpuabst.fixtures.recorder import Recorder, RecordingModule
from gpuabst.fixtures.tape import Tape
from gpuabst.model import Device
from gpuabst.reading import Reading, Status, missing

_new_reading = tuple.__new__
_OK = Status.OK

PlanRow = tuple[str, str, tuple[Any, ...], "Callable[[Any], Any] | None"]
"""One row of a read plan: (name of the result, vendor function, arguments after the device handle,
conversion of the vendor's answer or None)."""
Plan = Sequence[PlanRow]


@attrs.frozen
class Probe:
    """Whether a backend can run here; never raised, always returned."""

    available: bool
    reason: str | None = None
    install_hint: str | None = None
    library_version: str | None = None
    driver_version: str | None = None


@attrs.frozen(cache_hash=True)
class ErrorInfo:
    """How a backend classifies one vendor exception."""

    status: Status
    reason: str
    device_lost: bool = False
    function_missing: bool = False
    transient: bool = False
    """The device was briefly busy: the call is made once more before its failure is reported."""


class CallFailed(Exception):
    """Internal: a vendor call failed; carries the Reading that says why."""

    def __init__(self, reading: Reading[Any], *, function_missing: bool = False, transient: bool = False) -> None:
        super().__init__(reading.reason)
        self.reading = reading
        self.function_missing = function_missing
        """The function is not there (not in this driver, or not in the fixture): an older call may be."""
        self.transient = transient
        """The device said it was busy: asking once more may succeed."""


class LibrarySource(abc.ABC):
    """Where a backend's vendor module comes from."""

    mode: ClassVar[str]

    @abc.abstractmethod
    def module(self, backend: Backend) -> Any:
        """The vendor module (or a stand-in) for ``backend``; raises BackendUnavailable."""


class LiveLibrary(LibrarySource):
    """The real vendor library, imported lazily on first use."""

    mode = "live"

    def module(self, backend: Backend) -> Any:
        return backend.import_library()


class RecordingLibrary(LibrarySource):
    """The real library behind a proxy that records every call for a fixture."""

    mode = "capture"

    def __init__(self) -> None:
        self.recorders: dict[str, Recorder] = {}

    def module(self, backend: Backend) -> Any:
        real = backend.import_library()
        rec = self.recorders.setdefault(backend.name, Recorder(backend.make_codec()))
        return RecordingModule(real, rec)


class ReplayLibrary(LibrarySource):
    """A fake vendor module answering from a fixture's recording."""

    mode = "replay"

    def __init__(self, recordings: dict[str, tuple[BackendRecording, str]], *, replay_latency: bool = False) -> None:
        self.recordings = recordings
        self.replay_latency = replay_latency
        self.tapes: dict[str, Tape] = {}

    def module(self, backend: Backend) -> Any:
        if backend.name not in self.recordings:
            raise BackendUnavailable(f"{backend.name} is not recorded in the fixture(s) being replayed")
        recording, source = self.recordings[backend.name]
        tape = self.tapes.get(backend.name)
        if tape is None:
            tape = Tape(recording, backend.make_codec(), backend.raise_recorded_error,
                        replay_latency=self.replay_latency, source=source)
            self.tapes[backend.name] = tape
        return backend.fake_library(tape)


class Backend(abc.ABC):
    """Base class of every backend plugin.

    Subclasses set the class attributes and implement :meth:`import_library`,
    :meth:`fake_library`, :meth:`classify_error`, :meth:`raise_recorded_error`, :meth:`_open`,
    :meth:`_close` and :meth:`_devices`.
    """

    name: ClassVar[str]
    vendor: ClassVar[str]
    library_module: ClassVar[str]
    library_distribution: ClassVar[str]
    install_hint: ClassVar[str | None] = None
    """What to install for this backend to run (shown beside the reason it cannot); None: nothing to say."""
    authority: ClassVar[int] = 50
    """Higher wins when two backends report the same field of one device."""
    sensitive_calls: ClassVar[dict[str, str]] = {}
    """Results scrubbed from captures: ``fn`` or ``fn.field`` -> kind (``uuid``, ``serial``)."""
    older_calls: ClassVar[dict[tuple[str, tuple[Any, ...]], tuple[tuple[str, tuple[Any, ...]], ...]]] = {}
    """Plan rows' fallbacks: ``(fn, args) -> ((older_fn, args), ...)``, tried in order by
    :meth:`read_plan` when a row's call is missing from this driver or from the fixture."""

    def __init__(self, library: LibrarySource | None = None, *, call_timeout_s: float | None = None) -> None:
        self.library = library or LiveLibrary()
        self.call_timeout_s = call_timeout_s
        self._lib: Any = None
        self._opened = False
        self._lock = threading.RLock()
        self._lost: set[Any] = set()
        self._timeouts: dict[Any, int] = {}
        """Calls that timed out per device in the current read; past MAX_TIMEOUTS_PER_DEVICE the device's
        other calls are skipped, so a GPU whose driver hangs costs a bounded time, not one timeout per call."""
        self._worker: _CallWorker | None = None
        self._unsupported_rows: dict[tuple[Any, int], tuple[Plan, Plan | None, dict[str, Reading[Any]]]] = {}
        """Per (device, plan): the plan, its rows still asked (None until a second read needs them), and
        the Readings of those that answered unsupported (read_plan's skip_unsupported)."""
        self._unsupported_calls: dict[tuple[Any, str, tuple[Any, ...]], Reading[Any]] = {}
        """Per (device, call, arguments after the handle): the Reading of a call that device answered
        unsupported (read_supported)."""

    # --- plugin hooks ----------------------------------------------------------------------
    @classmethod
    @abc.abstractmethod
    def import_library(cls) -> Any:
        """Import the real vendor module; raise BackendUnavailable saying what is missing."""

    @classmethod
    @abc.abstractmethod
    def fake_library(cls, tape: Tape) -> Any:
        """A fake vendor module answering from ``tape``, with the vendor's own error classes."""

    @classmethod
    def make_codec(cls) -> Codec:
        return Codec()

    @classmethod
    @abc.abstractmethod
    def classify_error(cls, exc: BaseException) -> ErrorInfo | None:
        """The status of a vendor exception, or None if it is not the vendor's."""

    @classmethod
    def error_code(cls, exc: BaseException) -> Hashable | None:
        """Optional: what :meth:`classify_error`'s answer for ``exc`` depends on alone, where the backend
        can tell it more cheaply than classifying (NVML: an NVMLError's return code). A failure with a
        code is then classified once per (call, code) in the process; None, the default, classifies
        every failure."""
        return None

    @classmethod
    @abc.abstractmethod
    def raise_recorded_error(cls, error: dict[str, Any]) -> None:
        """Raise the vendor exception a fixture recorded (``{"code": ..}``) from the fake module."""

    @abc.abstractmethod
    def _open(self) -> Probe:
        """Initialise the vendor library (``self.lib`` is loaded); return what was found."""

    def _close(self) -> None:  # noqa: B027 - optional hook
        """Shut the vendor library down."""

    @abc.abstractmethod
    def _devices(self) -> list[Device]:
        """Every device this backend sees, fully read."""

    def _poll(self, previous: list[Device]) -> list[Device]:
        """Devices with dynamic readings re-read; the default reads everything again."""
        return self._devices()

    # --- lifecycle -------------------------------------------------------------------------
    @property
    def lib(self) -> Any:
        if self._lib is None:
            self._lib = self.library.module(self)
        return self._lib

    def probe(self) -> Probe:
        """Whether this backend can run here, and if not why and what to install. Never raises."""
        try:
            return self.open()
        except BackendUnavailable as e:
            return Probe(False, str(e), self.install_hint)
        except Exception as e:  # a plugin's own bug must not break discovery
            return Probe(False, f"{type(e).__name__}: {e}", self.install_hint)

    def open(self) -> Probe:
        """Load and initialise the vendor library. Raises BackendUnavailable when it cannot."""
        with self._lock:
            if not self._opened:
                _ = self.lib
                self._probe = self._open()
                self._opened = self._probe.available
                if not self._opened:
                    raise BackendUnavailable(self._probe.reason or f"{self.name} is not available")
            return self._probe

    def close(self) -> None:
        with self._lock:
            self._unsupported_rows.clear()
            self._unsupported_calls.clear()
            if self._opened:
                try:
                    self._close()
                finally:
                    self._opened = False
            if self._worker is not None:
                self._worker.stop()
                self._worker = None

    def devices(self) -> list[Device]:
        """Every device, fully read (opens the backend first)."""
        with self._lock:
            self.open()
            self._timeouts.clear()
            return self._devices()

    def poll(self, previous: list[Device]) -> list[Device]:
        """Re-read only what changes, keeping static facts from ``previous``."""
        with self._lock:
            self.open()
            self._timeouts.clear()
            return self._poll(previous)

    # --- the call path ---------------------------------------------------------------------
    def _invoke(self, fn: str, args: Sequence[Any], kwargs: dict[str, Any]) -> Any:
        func = getattr(self.lib, fn)
        if self.call_timeout_s is None:
            return func(*args, **kwargs)
        with self._lock:
            if self._worker is None or not self._worker.usable:
                self._worker = _CallWorker(f"gpuabst-{self.name}")
            worker = self._worker
        return worker.run(fn, func, args, kwargs, self.call_timeout_s)

    def call(self, fn: str, *args: Any, device_key: Any = None, **kwargs: Any) -> Any:
        """Call a vendor function; raise :class:`CallFailed` carrying a Reading on any failure.

        A failure the backend classifies as transient (the device was busy) is asked once more."""
        if device_key is not None and device_key in self._lost:
            raise CallFailed(missing(Status.ERROR, self.name, fn, "device lost earlier in this read"))
        if self.call_timeout_s is None:  # the common case: the vendor function is called in this frame
            try:
                return getattr(self._lib if self._lib is not None else self.lib, fn)(*args, **kwargs)
            except Exception as e:
                return self._retry_or_raise(fn, args, kwargs, e, device_key)
        if device_key is not None and self._timeouts.get(device_key, 0) >= MAX_TIMEOUTS_PER_DEVICE:
            raise CallFailed(missing(Status.TIMEOUT, self.name, fn, "not attempted: earlier calls to this device "
                                     f"did not answer within {self.call_timeout_s:g} s in this read"))
        try:
            return self._attempt(fn, args, kwargs, device_key)
        except CallFailed as f:
            if not f.transient:
                raise
        return self._attempt(fn, args, kwargs, device_key)

    def _attempt(self, fn: str, args: Sequence[Any], kwargs: dict[str, Any], device_key: Any) -> Any:
        try:
            return self._invoke(fn, args, kwargs)
        except CallTimedOut as e:
            if device_key is not None:
                self._timeouts[device_key] = self._timeouts.get(device_key, 0) + 1
            raise CallFailed(missing(Status.TIMEOUT, self.name, fn, str(e))) from None
        except Exception as e:
            raise self._failure(fn, e, device_key) from None

    def _failure(self, fn: str, e: Exception, device_key: Any) -> CallFailed:
        """What a vendor exception means, as a CallFailed carrying the Reading; marks lost devices."""
        info = self._classified(e, device_key)
        return CallFailed(missing(info.status, self.name, fn, info.reason), function_missing=info.function_missing,
                          transient=info.transient)

    def _classified(self, e: Exception, device_key: Any) -> ErrorInfo:
        """The backend's classification of a vendor exception (anything else is an error naming the
        exception); a device the vendor reports lost is marked lost."""
        if isinstance(e, NotRecorded):
            return ErrorInfo(Status.NOT_RECORDED, str(e), function_missing=True)
        info = self.classify_error(e)
        if info is None:
            return ErrorInfo(Status.ERROR, f"{type(e).__name__}: {e}")
        if info.device_lost and device_key is not None:
            self._lost.add(device_key)
        return info

    def read(self, fn: str, *args: Any, convert: Callable[[Any], Any] | None = None,
             device_key: Any = None, **kwargs: Any) -> Reading[Any]:
        """Call a vendor function and return its (converted) result as a Reading."""
        try:
            value = self.call(fn, *args, device_key=device_key, **kwargs)
        except CallFailed as f:
            return f.reading
        return self._reading_of(fn, value, convert)

    def read_supported(self, fn: str, handle: Any, *args: Any, device_key: Any,
                       convert: Callable[[Any], Any] | None = None) -> Reading[Any]:
        """:meth:`read` for a call repeated on every poll: once this device has answered the call
        ``unsupported``, that Reading is returned without asking again until :meth:`close` (as
        :meth:`read_plan`'s ``skip_unsupported`` does for a plan's rows). Any other failure is asked
        again on the next poll."""
        memo = (device_key, fn, args)
        try:
            known = self._unsupported_calls.get(memo)
        except TypeError:  # an argument that cannot be a dict key (a list): asked every time
            return self.read(fn, handle, *args, device_key=device_key, convert=convert)
        if known is not None:
            return known
        try:
            value = self.call(fn, handle, *args, device_key=device_key)
        except CallFailed as f:
            if f.reading[1] is Status.UNSUPPORTED and len(self._unsupported_calls) < _UNSUPPORTED_CALLS_KEPT:
                self._unsupported_calls[memo] = f.reading
            return f.reading
        return self._reading_of(fn, value, convert)

    def read_plan(self, handle: Any, plan: Plan, *, device_key: Any = None, until_failure: bool = False,
                  skip_unsupported: bool = False) -> dict[str, Reading[Any]]:
        """Every row of ``plan`` read for one device handle, as ``{name: Reading}``.

        ``until_failure``: stop after the first row that fails (its Reading is the last one returned):
        for numbered things (links, fans) read until the driver says there are no more.
        ``skip_unsupported``: a row that answered ``unsupported`` for this device is not asked again in
        this session (until :meth:`close`); its Reading is returned as it was. For plans read on every
        poll: whether a device supports a call does not change while the driver stays loaded, and each
        call a poll skips is one round trip to the driver saved. ``plan`` must then be a constant.

        The batch form of :meth:`read`, with the same outcome row by row: one Python frame for all of
        a device's calls instead of one per call, which is most of what gpuabst adds to the vendor
        library's own time (docs/performance.md). With a call timeout, or once the device is lost,
        rows take :meth:`read_first` (with the row's :attr:`older_calls`).
        """
        if skip_unsupported:
            return self._read_plan_supported(handle, plan, device_key)
        return self._read_rows(handle, plan, device_key, until_failure, None)

    def _read_rows(self, handle: Any, plan: Plan, device_key: Any, until_failure: bool,
                   failed: list[str] | None) -> dict[str, Reading[Any]]:
        """read_plan's loop; ``failed`` (when given) gets the name of every row whose Reading may not be
        ok, so that callers need not look at the others."""
        out: dict[str, Reading[Any]] = {}
        lib = self._lib if self._lib is not None else self.lib
        source = self.name
        lost = self._lost
        # direct calls unless a timeout applies or the device is lost (which only a failed call can change)
        direct = self.call_timeout_s is None and device_key not in lost
        new, reading_type, ok_ = _new_reading, Reading, _OK  # locals: read once per row
        code_of, known_failure, cls = self.error_code, _failed_by_code.get, type(self)
        r: Reading[Any] | None
        for name, fn, args, convert in plan:
            if direct:
                try:  # no star-call where the row has no argument or one: it costs 3.11 about 150 ns a row
                    if not args:
                        raw = getattr(lib, fn)(handle)
                    elif len(args) == 1:
                        raw = getattr(lib, fn)(handle, args[0])
                    else:
                        raw = getattr(lib, fn)(handle, *args)
                except Exception as e:
                    # a failure met before (an unsupported call, on every read): its Reading, without a frame
                    # of _row_failed's; what is kept there never marks a device lost, nor is asked again
                    try:
                        r = known_failure((cls, fn, code_of(e)))
                    except TypeError:  # a plugin's code that cannot be a key
                        r = None
                    if r is None:
                        r = self._row_failed(fn, handle, args, convert, e, device_key)
                        direct = device_key not in lost
                    if failed is not None:
                        failed.append(name)
                else:
                    try:
                        value = raw if convert is None else convert(raw)
                    except Exception as e:
                        r = self._unexpected(fn, raw, e)
                    else:
                        if value is not None:
                            out[name] = new(reading_type, (value, ok_, source, fn, None))
                            continue
                        r = self._no_value(fn)
                    if failed is not None:
                        failed.append(name)
            else:
                r = self.read_first((fn, handle, *args), *self._older_attempts(fn, handle, args), convert=convert,
                                    device_key=device_key)
                if failed is not None:
                    failed.append(name)
            out[name] = r
            if until_failure and r[1] is not ok_:
                break
        return out

    def read_numbered(self, fn: str, handle: Any, count: int, *,
                      device_key: Any = None) -> tuple[list[Any], Reading[Any] | None]:
        """``fn(handle, 0)``, ``fn(handle, 1)``, ... at most ``count`` calls, stopping at the first that
        fails: the raw values of those that answered, and the failed call's Reading (None when all
        ``count`` answered). For numbered things whose number the driver tells only by failing past
        the last one (NVLink links): one result for the sequence instead of a Reading per call.

        Each call has :meth:`read`'s outcome (a transient failure asked once more, a call timeout, a
        lost device); a call answering None fails as ``unsupported``."""
        values: list[Any] = []
        func: Any = getattr(self.lib, fn, None)  # missing: read_first() says so
        direct = func is not None and self.call_timeout_s is None and device_key not in self._lost
        r: Reading[Any]
        for i in range(count):
            if direct:
                try:
                    raw = func(handle, i)
                except Exception as e:
                    r = self._row_failed(fn, handle, (i,), None, e, device_key)
                    direct = device_key not in self._lost
                else:
                    if raw is not None:
                        values.append(raw)
                        continue
                    r = self._no_value(fn)
            else:  # as read_plan's rows: the call's older forms where this driver lacks it
                r = self.read_first((fn, handle, i), *self._older_attempts(fn, handle, (i,)), device_key=device_key)
            if r[1] is not _OK:
                return values, r
            values.append(r[0])
        return values, None

    def _read_plan_supported(self, handle: Any, plan: Plan, device_key: Any) -> dict[str, Reading[Any]]:
        """read_plan(skip_unsupported=True): the rows not known to be unsupported, plus the Readings of
        those that are."""
        key = (device_key, id(plan))
        memo = self._unsupported_rows.get(key)
        if memo is not None and memo[0] is plan:
            rows = memo[1]
            if rows is None:  # built on the second read: a one-shot snapshot never needs it
                rows = tuple([row for row in plan if row[0] not in memo[2]])
                self._unsupported_rows[key] = (plan, rows, memo[2])
            out = self._read_rows(handle, rows, device_key, False, None)
            out.update(memo[2])
            return out
        failed: list[str] = []
        out = self._read_rows(handle, plan, device_key, False, failed)
        unsupported = {name: out[name] for name in failed if out[name][1] is Status.UNSUPPORTED} if failed else {}
        self._unsupported_rows[key] = (plan, None if unsupported else plan, unsupported)
        return out

    def _row_failed(self, fn: str, handle: Any, args: tuple[Any, ...], convert: Callable[[Any], Any] | None,
                   e: Exception, device_key: Any) -> Reading[Any]:
        """The Reading of a plan row whose direct call raised ``e``: asked once more where the failure is
        transient, its :attr:`older_calls` tried where the function is missing."""
        code = self.error_code(e)
        if code is not None:
            try:
                known = _failed_by_code.get((type(self), fn, code))
            except TypeError:  # a plugin's code that cannot be a key: classified every time
                code, known = None, None
            if known is not None:
                return known
        info = self._classified(e, device_key)
        if info.transient:
            try:
                return self._reading_of(fn, self._attempt(fn, (handle, *args), {}, device_key), convert)
            except CallFailed as f:
                return f.reading
        older = self._older_attempts(fn, handle, args) if info.function_missing else []
        if older:  # as read_first: the first older call that answers, else the last one's failure
            return self.read_first(*older, convert=convert, device_key=device_key)
        key = (self.name, fn, info)
        failed = _failed_readings.get(key)
        if failed is None:
            failed = missing(info.status, self.name, fn, info.reason)
            if len(_failed_readings) < _FAILED_READINGS_KEPT:
                _failed_readings[key] = failed
        # the same code means the same Reading next time, unless the failure marks the device lost or
        # sends a missing function to older calls (which depend on the row's arguments too)
        if (code is not None and not info.device_lost and not info.function_missing
                and len(_failed_by_code) < _FAILED_READINGS_KEPT):
            _failed_by_code[(type(self), fn, code)] = failed
        return failed

    def _older_attempts(self, fn: str, handle: Any, args: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        """read_first's attempts for a plan row's :attr:`older_calls`, in order."""
        return [(alt, handle, *alt_args) for alt, alt_args in self.older_calls.get((fn, args), ())]

    def _retry_or_raise(self, fn: str, args: Sequence[Any], kwargs: dict[str, Any], e: Exception,
                        device_key: Any) -> Any:
        """After a direct call raised ``e``: the value of asking once more where the failure is transient,
        else :class:`CallFailed` saying why."""
        failed = self._failure(fn, e, device_key)
        if not failed.transient:
            raise failed from None
        return self._attempt(fn, args, kwargs, device_key)  # busy: asked once more

    def _reading_of(self, fn: str, value: Any, convert: Callable[[Any], Any] | None) -> Reading[Any]:
        if convert is not None:
            try:
                value = convert(value)
            except Exception as e:
                return self._unexpected(fn, value, e)
        if value is None:
            return self._no_value(fn)
        return _new_reading(Reading, (value, _OK, self.name, fn, None))

    def _unexpected(self, fn: str, value: Any, e: Exception) -> Reading[Any]:
        return missing(Status.ERROR, self.name, fn, f"unexpected value {value!r}: {e}")

    def _no_value(self, fn: str) -> Reading[Any]:
        return missing(Status.UNSUPPORTED, self.name, fn, "the vendor call returned no value")

    def read_first(self, *attempts: tuple[Any, ...], convert: Callable[[Any], Any] | None = None,
                   device_key: Any = None) -> Reading[Any]:
        """Try vendor calls in order (newest API first), falling back when a call is missing from this
        driver (function not found) or from the fixture (not recorded)."""
        result: Reading[Any] | None = None
        for fn, *args in attempts:
            try:
                value = self.call(fn, *args, device_key=device_key)
            except CallFailed as f:
                result = f.reading
                if f.function_missing:
                    continue
                return result
            return self._reading_of(fn, value, convert)
        return result if result is not None else missing(Status.ERROR, self.name, None, "no call attempted")

    def is_lost(self, device_key: Any) -> bool:
        return device_key in self._lost


_failed_readings: dict[tuple[str, str, ErrorInfo], Reading[Any]] = {}
"""The Reading of each (backend, call, classified failure) met so far in this process: a GPU that does
not support a call says so on every read, and the answer is the same immutable Reading each time, for
every session (a one-shot snapshot opens a new one)."""

_failed_by_code: dict[tuple[type, str, Hashable], Reading[Any]] = {}
"""The same Readings by (backend class, call, :meth:`Backend.error_code`), for backends that give
codes: a repeated failure is then one lookup instead of a classification."""

_FAILED_READINGS_KEPT = 4096
"""At most this many distinct failed Readings are kept (in each of the two tables)."""

_UNSUPPORTED_CALLS_KEPT = 65536
"""At most this many (device, call) pairs known to be unsupported are kept per backend (a few per GPU)."""

MAX_TIMEOUTS_PER_DEVICE = 2
"""Timed-out calls one device may have in one read before its remaining calls are skipped."""


class _CallWorker:
    """One daemon thread that runs vendor calls so a caller can stop waiting for a hung one.

    A call that outlives its timeout leaves the worker stuck inside the vendor library: it is then
    abandoned (``usable`` turns false) and a fresh worker takes the next call. Daemon threads never
    hold up the process's exit, as a hung driver call would with a thread pool.
    """

    def __init__(self, name: str) -> None:
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.usable = True
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            func, args, kwargs, box, done = job
            try:
                box.append((True, func(*args, **kwargs)))
            except BaseException as e:  # handed back to the caller, who classifies it
                box.append((False, e))
            done.set()

    def run(self, fn: str, func: Callable[..., Any], args: Sequence[Any], kwargs: dict[str, Any],
            timeout_s: float) -> Any:
        box: list[tuple[bool, Any]] = []
        done = threading.Event()
        self._jobs.put((func, args, kwargs, box, done))
        if not done.wait(timeout_s):
            self.usable = False
            self._jobs.put(None)  # ends the thread if the hung call ever returns
            raise CallTimedOut(fn, timeout_s)
        ok_, value = box[0]
        if ok_:
            return value
        raise value

    def stop(self) -> None:
        self._jobs.put(None)


class CallTimedOut(Exception):
    def __init__(self, fn: str, timeout_s: float) -> None:
        super().__init__(f"{fn} did not answer within {timeout_s:g} s and was abandoned")


Parts = Sequence[tuple[str, "Callable[[Any], Any]"]]
"""Several fields of one vendor structure: (name of the field, how to take it from the structure)."""


def split(reading: Reading[Any], **getters: Callable[[Any], Any]) -> dict[str, Reading[Any]]:
    """Several Readings from one vendor call's result (``memory -> total, used, free``).

    A missing result makes every part missing for the same reason; a part the result lacks is
    ``not_recorded`` (replay) or ``unsupported`` (None), one that cannot be read an error naming it.
    """
    return split_parts(reading, tuple(getters.items()))


def split_parts(reading: Reading[Any], parts: Parts) -> dict[str, Reading[Any]]:
    """:func:`split` with its getters given as a constant table (:data:`Parts`), for reads repeated on
    every poll: the table is built once instead of a closure and a keyword dict per call."""
    if reading[1] is not _OK:
        return dict.fromkeys([name for name, _ in parts], reading)
    value, _, source, call, reason = reading
    out: dict[str, Reading[Any]] = {}
    for name, get in parts:
        try:
            part = get(value)
        except MissingField as e:
            out[name] = missing(Status.NOT_RECORDED, source, call, f"{name}: {e}")
        except Exception as e:
            out[name] = missing(Status.ERROR, source, call, f"{name}: {e}")
        else:
            out[name] = _new_reading(Reading, (part, _OK, source, call, reason)) if part is not None else missing(
                Status.UNSUPPORTED, source, call, f"{name} not given by this driver")
    return out

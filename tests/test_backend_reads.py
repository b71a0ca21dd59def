"""The base class's read paths on a minimal backend: read_supported keeps unsupported answers per
device for the session and asks again for anything else; read_numbered reads numbered things until
the driver says there are no more."""

from __future__ import annotations

from typing import Any

import pytest

from gpuabst.backend import Backend, ErrorInfo, LibrarySource, Probe
from gpuabst.model import Device
from gpuabst.reading import Status


class Unsupported(Exception):
    pass


class Flaky(Exception):
    pass


class Busy(Exception):
    pass


class Lost(Exception):
    pass


class Lib:
    """A vendor library whose answers the test sets, counting the calls made."""

    def __init__(self) -> None:
        self.calls = 0
        self.answers: dict[str, Any] = {}

    def sensor(self, handle: int, *args: Any) -> Any:
        self.calls += 1
        answer = self.answers.get("sensor", 40)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def link(self, handle: int, i: int) -> Any:
        """Numbered answers: ``answers["links"][i]`` (an exception is raised; past the end: Unsupported)."""
        self.calls += 1
        links = self.answers.get("links", [])
        answer = links[i] if i < len(links) else Unsupported()
        if isinstance(answer, list):  # answers in turn for repeated calls
            answer = answer.pop(0) if len(answer) > 1 else answer[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


class Given(LibrarySource):
    mode = "live"

    def __init__(self, lib: Lib) -> None:
        self.lib = lib

    def module(self, backend: Backend) -> Any:
        return self.lib


class MinimalBackend(Backend):
    name = "minimal"

    @classmethod
    def import_library(cls) -> Any:
        raise AssertionError("the test gives the library")

    @classmethod
    def fake_library(cls, tape: Any) -> Any:
        raise AssertionError("not replayed")

    @classmethod
    def classify_error(cls, exc: BaseException) -> ErrorInfo | None:
        if isinstance(exc, Unsupported):
            return ErrorInfo(Status.UNSUPPORTED, "not on this device")
        if isinstance(exc, Flaky):
            return ErrorInfo(Status.ERROR, "the driver hiccuped")
        if isinstance(exc, Busy):
            return ErrorInfo(Status.ERROR, "busy", transient=True)
        if isinstance(exc, Lost):
            return ErrorInfo(Status.ERROR, "fell off the bus", device_lost=True)
        return None

    @classmethod
    def raise_recorded_error(cls, error: dict[str, Any]) -> None:
        raise Flaky(error)

    def _open(self) -> Probe:
        return Probe(True)

    def _devices(self) -> list[Device]:
        return []


@pytest.fixture
def lib() -> Lib:
    return Lib()


@pytest.fixture
def backend(lib: Lib) -> MinimalBackend:
    b = MinimalBackend(Given(lib))
    b.open()
    return b


def test_an_unsupported_call_is_not_asked_again_for_that_device(lib: Lib, backend: MinimalBackend) -> None:
    lib.answers["sensor"] = Unsupported()
    first = backend.read_supported("sensor", 0, 1, device_key=0, convert=float)
    again = backend.read_supported("sensor", 0, 1, device_key=0, convert=float)
    assert (first.status, first.reason, first.call) == (Status.UNSUPPORTED, "not on this device", "sensor")
    assert again == first and lib.calls == 1
    # another device, or the same call with other arguments, is asked
    backend.read_supported("sensor", 1, 1, device_key=1)
    backend.read_supported("sensor", 0, 2, device_key=0)
    assert lib.calls == 3


def test_any_other_failure_is_asked_again(lib: Lib, backend: MinimalBackend) -> None:
    lib.answers["sensor"] = Flaky()
    assert backend.read_supported("sensor", 0, device_key=0).status is Status.ERROR
    lib.answers["sensor"] = 41
    r = backend.read_supported("sensor", 0, device_key=0, convert=float)
    assert (r.value, r.status) == (41.0, Status.OK) and lib.calls == 2


def test_closing_forgets_what_was_unsupported(lib: Lib, backend: MinimalBackend) -> None:
    lib.answers["sensor"] = Unsupported()
    backend.read_supported("sensor", 0, device_key=0)
    backend.close()
    backend.open()
    lib.answers["sensor"] = 42
    assert backend.read_supported("sensor", 0, device_key=0).value == 42 and lib.calls == 2


def test_an_argument_that_cannot_be_a_key_is_read_every_time(lib: Lib, backend: MinimalBackend) -> None:
    lib.answers["sensor"] = Unsupported()
    for _ in range(2):
        r = backend.read_supported("sensor", 0, [1, 2], device_key=0)
        assert r.status is Status.UNSUPPORTED
    assert lib.calls == 2


@pytest.fixture(params=[None, 5.0], ids=["direct-calls", "calls-with-a-timeout"])
def timed(request: pytest.FixtureRequest, lib: Lib) -> MinimalBackend:
    b = MinimalBackend(Given(lib), call_timeout_s=request.param)
    b.open()
    return b


def test_numbered_calls_stop_at_the_first_failure_and_say_why(lib: Lib, timed: MinimalBackend) -> None:
    lib.answers["links"] = [1, 0, 1, Flaky(), 1]
    values, failed = timed.read_numbered("link", 0, 8, device_key=0)
    assert values == [1, 0, 1] and lib.calls == 4
    assert failed is not None and (failed.status, failed.reason, failed.call) == (
        Status.ERROR, "the driver hiccuped", "link")


def test_numbered_calls_stop_at_the_count(lib: Lib, timed: MinimalBackend) -> None:
    lib.answers["links"] = [1] * 6
    assert timed.read_numbered("link", 0, 4, device_key=0) == ([1] * 4, None)
    assert lib.calls == 4
    values, failed = timed.read_numbered("link", 0, 0, device_key=0)
    assert (values, failed, lib.calls) == ([], None, 4)


def test_a_numbered_call_that_answers_nothing_ends_the_sequence(lib: Lib, timed: MinimalBackend) -> None:
    lib.answers["links"] = [1, None, 1]
    values, failed = timed.read_numbered("link", 0, 3, device_key=0)
    assert values == [1] and failed is not None
    assert (failed.status, failed.reason) == (Status.UNSUPPORTED, "the vendor call returned no value")


def test_a_busy_numbered_call_is_asked_once_more(lib: Lib, timed: MinimalBackend) -> None:
    lib.answers["links"] = [1, [Busy(), 0], 1]
    assert timed.read_numbered("link", 0, 3, device_key=0) == ([1, 0, 1], None)
    assert lib.calls == 4


def test_a_device_lost_mid_sequence_is_not_asked_again(lib: Lib, timed: MinimalBackend) -> None:
    lib.answers["links"] = [1, Lost(), 1]
    values, failed = timed.read_numbered("link", 0, 3, device_key=0)
    assert values == [1] and failed is not None and failed.reason == "fell off the bus"
    assert timed.is_lost(0)
    values, failed = timed.read_numbered("link", 0, 3, device_key=0)
    assert values == [] and failed is not None and failed.reason == "device lost earlier in this read"
    assert lib.calls == 2


def test_a_numbered_call_missing_from_the_library_says_so(timed: MinimalBackend) -> None:
    values, failed = timed.read_numbered("no_such_call", 0, 3, device_key=0)
    assert values == [] and failed is not None and failed.status is Status.ERROR
    assert "no_such_call" in (failed.reason or "")


class Coded(Exception):
    """A vendor error that carries its code, as NVMLError carries its return code."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


_CODES = {1: ErrorInfo(Status.UNSUPPORTED, "not on this device"), 2: ErrorInfo(Status.ERROR, "the driver hiccuped"),
          3: ErrorInfo(Status.ERROR, "fell off the bus", device_lost=True),
          4: ErrorInfo(Status.UNSUPPORTED, "no such function", function_missing=True),
          5: ErrorInfo(Status.ERROR, "busy", transient=True)}


@pytest.fixture
def coded() -> type[MinimalBackend]:
    """A backend class (new for each test: what is kept per code is kept per class) whose errors carry
    codes, counting its classifications in ``classified``."""

    class CodedBackend(MinimalBackend):
        classified: list[int] = []
        older_calls = {("sensor", (9,)): (("old_sensor", (9,)),)}

        @classmethod
        def classify_error(cls, exc: BaseException) -> ErrorInfo | None:
            if isinstance(exc, Coded):
                cls.classified.append(exc.code)
                return _CODES[exc.code]
            return super().classify_error(exc)

        @classmethod
        def error_code(cls, exc: BaseException) -> int | None:
            return exc.code if isinstance(exc, Coded) else None

    return CodedBackend


def _opened(cls: type[MinimalBackend], lib: Lib) -> MinimalBackend:
    b = cls(Given(lib))
    b.open()
    return b


_SENSOR = (("temperature", "sensor", (1,), float),)


def test_a_coded_failure_is_classified_once_per_call_and_code(lib: Lib, coded: Any) -> None:
    lib.answers["sensor"] = Coded(1)
    first = _opened(coded, lib).read_plan(0, _SENSOR, device_key=0)["temperature"]
    again = _opened(coded, lib).read_plan(0, _SENSOR, device_key=0)["temperature"]  # a new session too
    assert (first.status, first.reason, first.call) == (Status.UNSUPPORTED, "not on this device", "sensor")
    assert again is first and coded.classified == [1] and lib.calls == 2
    lib.answers["sensor"] = Coded(2)  # another code is classified, and answers for itself
    other = _opened(coded, lib).read_plan(0, _SENSOR, device_key=0)["temperature"]
    assert (other.status, other.reason, coded.classified) == (Status.ERROR, "the driver hiccuped", [1, 2])


def test_a_coded_failure_is_not_served_to_another_backend_class(lib: Lib, coded: Any) -> None:
    lib.answers["sensor"] = Coded(1)
    _opened(coded, lib).read_plan(0, _SENSOR, device_key=0)

    class Stricter(coded):  # type: ignore[misc]
        @classmethod
        def classify_error(cls, exc: BaseException) -> ErrorInfo | None:
            return ErrorInfo(Status.NO_PERMISSION, "root only") if isinstance(exc, Coded) else None

    r = _opened(Stricter, lib).read_plan(0, _SENSOR, device_key=0)["temperature"]
    assert (r.status, r.reason) == (Status.NO_PERMISSION, "root only")


def test_a_lost_device_code_marks_the_device_lost_every_time(lib: Lib, coded: Any) -> None:
    lib.answers["sensor"] = Coded(3)
    for _ in range(2):
        b = _opened(coded, lib)
        r = b.read_plan(0, _SENSOR, device_key=0)["temperature"]
        assert r.reason == "fell off the bus" and b.is_lost(0)
    assert coded.classified == [3, 3]


def test_a_missing_function_code_still_tries_the_older_call_of_each_row(lib: Lib, coded: Any) -> None:
    lib.answers["sensor"] = Coded(4)
    lib.old_sensor = lambda handle, *args: 45  # type: ignore[attr-defined]
    plan = (("plain", "sensor", (1,), float), ("with_older", "sensor", (9,), float), ("plain_again", "sensor", (1,),
                                                                                          float))
    for _ in range(2):
        r = _opened(coded, lib).read_plan(0, plan, device_key=0)
        assert (r["plain"].status, r["plain"].reason) == (Status.UNSUPPORTED, "no such function")
        assert r["with_older"].value == 45.0 and r["plain_again"] == r["plain"]


def test_a_transient_code_is_asked_once_more_every_time(lib: Lib, coded: Any) -> None:
    lib.answers["sensor"] = Coded(5)
    for _ in range(2):
        r = _opened(coded, lib).read_plan(0, _SENSOR, device_key=0)["temperature"]
        assert r.reason == "busy"
    assert lib.calls == 4 and coded.classified == [5, 5, 5, 5]


def test_a_code_that_cannot_be_a_key_is_classified_every_time(lib: Lib, coded: Any) -> None:
    class ListCodes(coded):  # type: ignore[misc]
        @classmethod
        def error_code(cls, exc: BaseException) -> Any:
            return [exc.code] if isinstance(exc, Coded) else None

    lib.answers["sensor"] = Coded(1)
    for _ in range(2):
        r = _opened(ListCodes, lib).read_plan(0, _SENSOR, device_key=0)["temperature"]
        assert (r.status, r.reason) == (Status.UNSUPPORTED, "not on this device")
    assert ListCodes.classified == [1, 1]


def test_a_plan_row_whose_answer_cannot_be_converted_is_an_error_naming_the_value(lib: Lib,
                                                                                  timed: MinimalBackend) -> None:
    lib.answers["sensor"] = "hot"
    r = timed.read_plan(0, (("temperature", "sensor", (), float), ("raw", "sensor", (), None)), device_key=0)
    assert (r["temperature"].status, r["temperature"].call) == (Status.ERROR, "sensor")
    assert "unexpected value 'hot'" in (r["temperature"].reason or "")
    assert r["raw"].value == "hot"  # the next row is read all the same


def test_a_plan_row_answered_with_nothing_is_unsupported_and_skipped_on_later_polls(lib: Lib,
                                                                                    timed: MinimalBackend) -> None:
    lib.answers["sensor"] = None
    plan = (("temperature", "sensor", (), None),)
    first = timed.read_plan(0, plan, device_key=0, skip_unsupported=True)["temperature"]
    assert (first.status, first.reason) == (Status.UNSUPPORTED, "the vendor call returned no value")
    assert timed.read_plan(0, plan, device_key=0, skip_unsupported=True)["temperature"] == first
    assert lib.calls == 1


def test_a_plan_read_until_failure_stops_at_the_first_failed_row(lib: Lib, timed: MinimalBackend) -> None:
    lib.answers["links"] = [1, 0, Unsupported(), 1]
    plan = tuple((f"link{i}", "link", (i,), int) for i in range(4))
    r = timed.read_plan(0, plan, device_key=0, until_failure=True)
    assert [x.value for x in r.values()] == [1, 0, None] and r["link2"].status is Status.UNSUPPORTED
    assert lib.calls == 3


def test_split_gives_each_part_its_reading_and_says_why_a_part_is_missing() -> None:
    from gpuabst.backend import split
    from gpuabst.fixtures.codec import MissingField, Struct
    from gpuabst.reading import missing, ok

    memory = ok(Struct("c_nvmlMemory_t", {"total": 100, "used": 40}), "minimal", "memory")
    parts = split(memory, total_bytes=lambda m: int(m.total), used_bytes=lambda m: int(m.used),
                  free_bytes=lambda m: m.free, reserved_bytes=lambda m: None, odd=lambda m: int("x"))
    assert (parts["total_bytes"].value, parts["used_bytes"].value) == (100, 40)
    assert (parts["free_bytes"].status, parts["free_bytes"].call) == (Status.NOT_RECORDED, "memory")
    assert isinstance(MissingField("free"), AttributeError)
    assert (parts["reserved_bytes"].status, parts["reserved_bytes"].reason) == (
        Status.UNSUPPORTED, "reserved_bytes not given by this driver")
    assert parts["odd"].status is Status.ERROR and (parts["odd"].reason or "").startswith("odd: invalid literal")
    failed = missing(Status.NO_PERMISSION, "minimal", "memory", "root only")
    assert split(failed, total_bytes=int, used_bytes=int) == {"total_bytes": failed, "used_bytes": failed}


def test_a_plugin_whose_open_raises_its_own_bug_is_reported_unavailable_not_raised(lib: Lib) -> None:
    class Buggy(MinimalBackend):
        def _open(self) -> Probe:
            raise TypeError("a plugin bug")

    probe = Buggy(Given(lib)).probe()
    assert (probe.available, probe.reason) == (False, "TypeError: a plugin bug")


def test_a_backend_without_a_poll_of_its_own_reads_everything_again(lib: Lib) -> None:
    from gpuabst.fixtures.codec import Codec

    class Counting(MinimalBackend):
        reads = 0

        def _devices(self) -> list[Device]:
            Counting.reads += 1
            return [Device(vendor="minimal", index=0)]

    b = Counting(Given(lib))
    first = b.devices()
    assert b.poll(first) == first and Counting.reads == 2
    assert type(Counting.make_codec()) is Codec  # the plain codec, unless a backend has its own

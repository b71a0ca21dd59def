"""The base class's read paths on a minimal backend: read_supported keeps unsupported answers per
device for the session and asks again for anything else."""

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

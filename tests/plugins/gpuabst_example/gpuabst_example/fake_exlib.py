"""The replay stand-in for exlib: the same function names and the same error class, answered by a tape."""

from __future__ import annotations

from typing import Any

from gpuabst.fixtures.tape import FakeModule, Tape


class ExError(Exception):
    """Same shape as exlib.ExError, so the backend's error handling runs unchanged in replay."""

    def __init__(self, code: int, name: str | None = None) -> None:
        super().__init__(name or f"EX_ERROR_{code}")
        self.code = code


def make(tape: Tape) -> Any:
    return FakeModule("exlib", tape, ExError=ExError)


def raise_recorded(error: dict[str, Any]) -> None:
    raise ExError(int(error["code"]), error.get("name"))

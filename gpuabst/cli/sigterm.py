"""Stopping a long-running command (`serve`, `watch`) the way a container is stopped."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from typing import Any


def _stop(signum: int, frame: Any) -> None:
    raise SystemExit(0)


@contextlib.contextmanager
def stopped_by_sigterm() -> Iterator[None]:
    """Run the block until it ends or SIGTERM arrives: the signal raises SystemExit(0) in the main thread,
    which closes the ``with`` blocks inside (the vendor library among them) and ends this one quietly.
    Without a handler a container's main process (PID 1) ignores SIGTERM."""
    previous = signal.signal(signal.SIGTERM, _stop)
    try:
        yield
    except SystemExit as e:
        if e.code != 0:
            raise
    finally:
        signal.signal(signal.SIGTERM, previous)

"""The one exception tree of gpuabst. Vendor exceptions never escape a backend; they are chained."""

from __future__ import annotations


class GpuabstError(Exception):
    """Root of every error gpuabst raises on purpose."""


class BackendError(GpuabstError):
    """A whole backend could not run or failed (a single value failing is a Reading instead)."""


class BackendUnavailable(BackendError):
    """The backend cannot run here: its vendor library or driver is missing."""


class DeviceLost(BackendError):
    """A device fell off the bus or needs a reset (NVML GpuIsLost, amdsmi's equivalents)."""


class FixtureError(GpuabstError):
    """A fixture file is missing, unreadable, truncated, of an unknown version or malformed."""


class NotRecorded(GpuabstError):
    """Replay met a vendor call that the fixture has no recording of.

    The message names the call and, where there are any, the nearest recordings of the same function.
    """

    def __init__(self, fn: str, args: object, nearest: list[str] | None = None) -> None:
        self.fn = fn
        self.args_key = args
        self.nearest = nearest or []
        hint = f"; recorded: {', '.join(self.nearest[:3])}" if self.nearest else ""
        super().__init__(f"{fn}{args} is not recorded in the fixture{hint}")


class ImportFormatError(GpuabstError):
    """A vendor tool's saved output cannot be imported: it names the file and the problem."""


class UsageError(GpuabstError):
    """The command line or API was called wrongly."""

"""Reading an input file (a fixture, a saved tool output) without ever hanging on it.

A FIFO would block the open until some writer appears, and a device such as /dev/zero never ends
(and says it is 0 bytes long), so input must be a regular file, checked on the opened descriptor
before any byte is read, and at most ``limit`` bytes are read whatever its size claims.
"""

from __future__ import annotations

import os
import stat


def read_capped(path: str | os.PathLike[str], limit: int, what: str, *, error: type[Exception],
                label: str | None = None) -> bytes:
    """The bytes of ``path``: ``error`` (a message starting with ``label``, default the path) when
    it cannot be read, is not a regular file, or is larger than ``limit`` bytes. ``what`` names the
    expected content in those messages (``nvidia-smi -q -x output``)."""
    label = os.fspath(path) if label is None else label
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # opening a FIFO must not wait for a writer
    except OSError as e:
        raise error(f"{label}: cannot read: {e.strerror or e}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise error(f"{label}: not a regular file; save {what} to a file and give that file")
        raw = os.read(fd, limit + 1)
        while raw and len(raw) <= limit:  # os.read may return less than asked before the end
            more = os.read(fd, limit + 1 - len(raw))
            if not more:
                break
            raw += more
    except OSError as e:
        raise error(f"{label}: cannot read: {e.strerror or e}") from None
    finally:
        os.close(fd)
    if len(raw) > limit:
        raise error(f"{label}: larger than {limit / 2**20:g} MiB; not {what}")
    return raw

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


def write_text(path: str | os.PathLike[str], text: str, *, error: type[Exception]) -> None:
    """Write ``text`` (UTF-8) to ``path`` whole or not at all: into a hidden temporary file beside it,
    renamed over it, so that a reader (NFD's features.d, a test diffing fixtures) never sees half a
    file and a full disk leaves the old one. A symbolic link is followed (the file it names is
    replaced); a path that is not a regular file (/dev/stdout, a FIFO) is written in place, since
    renaming over it would remove it. ``error`` names the path and why it failed."""
    label = os.fspath(path)
    data = text.encode("utf-8")
    try:
        try:
            mode = os.stat(label).st_mode  # through links, /proc's /dev/stdout -> /proc/self/fd/1 included
        except FileNotFoundError:
            mode = None
        if mode is not None and stat.S_ISDIR(mode):
            raise error(f"{label}: is a folder; give a file to write")
        if mode is not None and not stat.S_ISREG(mode):
            with open(label, "wb") as f:
                f.write(data)
            return
        target = os.path.realpath(label)  # a regular file (or none yet): the link's file is replaced
        import tempfile  # only where a file is written (importing it costs a command's start ~3 ms)

        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(target)}.", dir=os.path.dirname(target))
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.chmod(tmp, stat.S_IMODE(mode) if mode is not None else 0o644)
            os.replace(tmp, target)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
    except OSError as e:
        raise error(f"{label}: cannot write: {e.strerror or e}") from None

"""The command line's standard output: characters it cannot encode, and what is left in it when a
write fails."""

from __future__ import annotations

import errno
import os
import sys

OUTPUT_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO}
"""Failures of writing standard output (other OSErrors reaching main are gpuabst's own bugs: files
and vendor calls report theirs as GpuabstErrors and Readings)."""


def _escape_as_json(error: UnicodeError) -> tuple[str, int]:
    """A codec error handler: each character the encoding cannot write as a JSON escape (``\\u00e9``;
    a surrogate pair beyond the BMP), which inside a JSON string is the same character."""
    if not isinstance(error, UnicodeEncodeError):
        raise error
    out = []
    for ch in error.object[error.start:error.end]:
        code = ord(ch)
        if code > 0xFFFF:
            code -= 0x10000
            out.append(f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}")
        else:
            out.append(f"\\u{code:04x}")
    return "".join(out), error.end


def tolerate_unencodable() -> None:
    """Where standard output cannot encode a character (an ASCII-only locale), write it as a JSON
    escape instead of failing: text stays readable, and a JSON document means the same string."""
    import codecs

    codecs.register_error("gpuabst-json-escape", _escape_as_json)
    try:
        sys.stdout.reconfigure(errors="gpuabst-json-escape")  # type: ignore[union-attr]
    except (AttributeError, ValueError):  # not a text stream of its own (captured, replaced): as it is
        pass


def drop() -> None:
    """Point standard output at /dev/null, so that the interpreter's last flush of what could not be
    written does not fail again at exit."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # no real stdout (captured, closed): nothing to drop
        pass

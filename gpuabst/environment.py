"""Environment variables read on every read of a machine (``GPUABST_FIXTURE``, ``GPUABST_GPU_DB``,
``GPUABST_BACKENDS``, ``GPUABST_SYSFS_ROOT``), without raising an exception where one is unset.

``os.environ.get`` of an unset name raises KeyError and catches it twice inside ``os.environ``
(CPython's ``_Environ.__getitem__`` re-raises its mapping's KeyError with the caller's key). That
costs about 1 µs warm and several times that cold, and these variables are usually unset: a one-shot
snapshot asks two or three of them, which measured about 0.015x of a one-GPU snapshot's replayed floor
(docs/performance.md). :func:`env_text` reads ``os.environ``'s own mapping instead, with the key
encoded and the value decoded by ``os.environ``'s own functions, exactly as ``__getitem__`` does.
"""

from __future__ import annotations

import os
from typing import Any

_ENVIRON_TYPE: type | None = type(os.environ) if all(
    hasattr(os.environ, name) for name in ("_data", "encodekey", "decodevalue")) else None
"""CPython's ``os._Environ``, where it has the mapping and the codecs this module relies on."""


def env_text(name: str) -> str:
    """The value of the environment variable ``name`` with surrounding spaces stripped, or ``""`` where
    it is unset: what ``os.environ.get(name, "").strip()`` gives. Looked up in ``os.environ`` as it is
    at the call (a test or a caller may replace it); anything but CPython's own ``os.environ`` is
    asked through ``get``."""
    environ: Any = os.environ
    kind: Any = type(environ)  # typed Any: mypy would narrow environ to a bare object by the check
    if _ENVIRON_TYPE is None or kind is not _ENVIRON_TYPE:
        return str(environ.get(name, "")).strip()
    raw = environ._data.get(environ.encodekey(name))
    return "" if raw is None else str(environ.decodevalue(raw)).strip()

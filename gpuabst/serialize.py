"""JSON both ways for the data model.

A Reading is written as its plain value (``null`` when missing) beside a ``readings`` object in the
same JSON object that gives, per field, its status, source backend, vendor call and reason. So
``jq .devices[0].memory.total_bytes`` prints a number, and nothing about a missing value is lost.
"""

from __future__ import annotations

import enum
import functools
import typing
from typing import Any, TypeVar

import attrs

from gpuabst.errors import GpuabstError
from gpuabst.reading import Reading, Status

T = TypeVar("T")

READINGS_KEY = "readings"


def to_dict(obj: Any) -> Any:
    """An attrs object (or list of them) as JSON-ready data."""
    if attrs.has(type(obj)):
        out: dict[str, Any] = {}
        meta: dict[str, Any] = {}
        for f in attrs.fields(type(obj)):
            v = getattr(obj, f.name)
            if isinstance(v, Reading):
                out[f.name] = v.value
                meta[f.name] = v.meta()
            else:
                out[f.name] = to_dict(v)
        if meta:
            out[READINGS_KEY] = meta
        return out
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {str(k): to_dict(v) for k, v in obj.items()}
    if isinstance(obj, enum.Enum):
        return obj.value
    return obj


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def from_dict(cls: type[T], data: Any) -> T:
    """Rebuild an attrs object of class ``cls`` from what :func:`to_dict` wrote.

    Raises :class:`GpuabstError` naming the field when the data does not fit.
    """
    return typing.cast(T, _decode(cls, data, cls.__name__))


def _decode(tp: Any, data: Any, path: str) -> Any:
    origin = typing.get_origin(tp)
    if attrs.has(tp):
        if not isinstance(data, dict):
            raise GpuabstError(f"{path}: expected an object, got {type(data).__name__}")
        hints = _hints(tp)
        meta = data.get(READINGS_KEY, {})
        if not isinstance(meta, dict):
            raise GpuabstError(f"{path}.{READINGS_KEY}: expected an object")
        kwargs: dict[str, Any] = {}
        for f in attrs.fields(tp):
            ftype = hints[f.name]
            if typing.get_origin(ftype) is Reading or ftype is Reading:
                if f.name not in data and f.name not in meta:
                    continue
                m = meta.get(f.name) or {}
                if not isinstance(m, dict):
                    raise GpuabstError(f"{path}.{READINGS_KEY}.{f.name}: expected an object")
                try:
                    kwargs[f.name] = Reading(data.get(f.name), Status(m.get("status", "ok")),
                                             m.get("source"), m.get("call"), m.get("reason"))
                except ValueError as e:
                    raise GpuabstError(f"{path}.{f.name}: {e}") from e
            elif f.name in data:
                kwargs[f.name] = _decode(ftype, data[f.name], f"{path}.{f.name}")
        try:
            return tp(**kwargs)
        except TypeError as e:
            raise GpuabstError(f"{path}: {e}") from e
    if origin is list:
        (item,) = typing.get_args(tp)
        if not isinstance(data, list):
            raise GpuabstError(f"{path}: expected a list")
        return [_decode(item, v, f"{path}[{i}]") for i, v in enumerate(data)]
    return data

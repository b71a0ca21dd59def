"""The one module of this backend that touches the file system: sysfs reads, their codec and errors.

The "vendor library" of the PCI backend is the kernel's sysfs. Four functions are its whole API,
and every call to them is what a fixture records and replays::

    list_devices(root)                    -> ["0000:18:00.0", ...]   ls /sys/bus/pci/devices
    read_attr(root, bus_id, name)         -> "0x10de\\n"              cat /sys/bus/pci/devices/B/name
    read_link(root, bus_id, name)         -> "nvidia"                 basename $(readlink .../B/driver)
    read_module_attr(root, module, name)  -> "590.48.01\\n"           cat /sys/module/M/version

``root`` is a :class:`SysfsRoot` (the sysfs mount point, ``/sys`` unless configured). It crosses the
fixture boundary as the constant handle ``{"$handle": "sysfs"}``, so a fixture recorded from one tree
replays whatever root the replaying backend was given. A failed read raises :class:`OSError`; the
errno's name is what a fixture records (``{"code": "ENOENT"}``).
"""

from __future__ import annotations

import errno
import os
import re
from typing import Any

from gpuabst.backend import ErrorInfo
from gpuabst.environment import env_text
from gpuabst.fixtures.codec import Codec
from gpuabst.reading import Status

ROOT_ENV = "GPUABST_SYSFS_ROOT"
DEFAULT_ROOT = "/sys"
ROOT_TOKEN = "sysfs"
MAX_ATTR_BYTES = 64 * 1024
"""sysfs attributes are at most a page; anything longer is cut here rather than read whole."""

INSTALL_HINT = ("needs Linux with sysfs mounted (read-only is enough); in a container mount the host's "
                f"/sys and set {ROOT_ENV} to it")

_BUS_ID = re.compile(r"^[0-9a-f]{4,8}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$")
_ATTR = re.compile(r"^[A-Za-z0-9_]+$")
_MODULE = re.compile(r"^[A-Za-z0-9_-]+$")


class SysfsRoot:
    """Where sysfs is mounted. Compared and hashed by path; recorded as the token ``sysfs``."""

    __slots__ = ("path",)

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)

    def __repr__(self) -> str:
        return f"SysfsRoot({self.path!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SysfsRoot) and other.path == self.path

    def __hash__(self) -> int:
        return hash(self.path)


def configured_root(root: str | os.PathLike[str] | None = None) -> SysfsRoot:
    """``root`` if given, else ``$GPUABST_SYSFS_ROOT``, else ``/sys``."""
    if root is None:
        root = env_text(ROOT_ENV) or DEFAULT_ROOT
    return SysfsRoot(root)


def _path(root: Any) -> str:
    if not isinstance(root, SysfsRoot):
        raise TypeError(f"expected a SysfsRoot, got {type(root).__name__}")
    return root.path


def _check(pattern: re.Pattern[str], value: Any, what: str) -> str:
    if not isinstance(value, str) or not pattern.match(value):
        raise ValueError(f"not a valid {what}: {value!r}")
    return value


def is_bus_id(name: str) -> bool:
    """Whether ``name`` is a PCI function's directory name (``0000:18:00.0``)."""
    return bool(_BUS_ID.match(name))


def _read_text(path: str) -> str:
    with open(path, "rb") as f:
        data = f.read(MAX_ATTR_BYTES)
    return data.decode("utf-8", "replace")


def list_devices(root: SysfsRoot) -> list[str]:
    """Every PCI function under ``<root>/bus/pci/devices``, sorted (``ls /sys/bus/pci/devices``)."""
    names = os.listdir(os.path.join(_path(root), "bus", "pci", "devices"))
    return sorted(n for n in names if _BUS_ID.match(n))


def read_attr(root: SysfsRoot, bus_id: str, name: str) -> str:
    """The text of one attribute file of a PCI function, as the kernel wrote it (newline included)."""
    _check(_BUS_ID, bus_id, "PCI bus id")
    _check(_ATTR, name, "sysfs attribute name")
    return _read_text(os.path.join(_path(root), "bus", "pci", "devices", bus_id, name))


def read_link(root: SysfsRoot, bus_id: str, name: str) -> str:
    """The last component of a symbolic link of a PCI function (``driver`` -> ``nvidia``)."""
    _check(_BUS_ID, bus_id, "PCI bus id")
    _check(_ATTR, name, "sysfs link name")
    target = os.readlink(os.path.join(_path(root), "bus", "pci", "devices", bus_id, name))
    return os.path.basename(target.rstrip("/"))


def read_module_attr(root: SysfsRoot, module: str, name: str) -> str:
    """The text of ``<root>/module/<module>/<name>`` (``cat /sys/module/nvidia/version``)."""
    _check(_MODULE, module, "kernel module name")
    _check(_ATTR, name, "sysfs attribute name")
    return _read_text(os.path.join(_path(root), "module", module, name))


# --- errors ------------------------------------------------------------------------------------
def errno_name(exc: OSError) -> str:
    """``ENOENT`` for a FileNotFoundError; the number as text for an errno without a name."""
    if exc.errno is None:
        return "EUNKNOWN"
    return errno.errorcode.get(exc.errno, str(exc.errno))


def classify(exc: BaseException) -> ErrorInfo | None:
    """The Reading status of a failed sysfs read (real or replayed), by its errno."""
    if not isinstance(exc, OSError):
        return None
    name = errno_name(exc)
    if exc.errno == errno.ENOENT:
        return ErrorInfo(Status.UNSUPPORTED, f"{name}: the kernel does not provide this attribute here")
    if exc.errno in (errno.EACCES, errno.EPERM):
        return ErrorInfo(Status.NO_PERMISSION, f"{name}: not readable by this user")
    if exc.errno in (errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP):
        return ErrorInfo(Status.UNSUPPORTED, f"{name}: the driver does not answer this attribute")
    if exc.errno in (errno.ENODEV, errno.ENXIO):
        return ErrorInfo(Status.ERROR, f"{name}: the device is gone", device_lost=True)
    return ErrorInfo(Status.ERROR, f"{name}: {exc.strerror or exc}")


def raise_recorded(error: dict[str, Any]) -> None:
    """Raise the OSError a fixture recorded (``{"code": "ENOENT"}`` or a number)."""
    code = error.get("code")
    num = getattr(errno, code, None) if isinstance(code, str) else code
    if isinstance(num, int) and not isinstance(num, bool):
        raise OSError(num, os.strerror(num))  # OSError picks the subclass: FileNotFoundError for ENOENT
    raise RuntimeError(f"recorded failure {error.get('name') or code}: {error.get('message', '')}".strip())


class SysfsCodec(Codec):
    """The root travels as the constant handle ``sysfs``; errors as their errno names."""

    def is_handle(self, value: Any) -> bool:
        return isinstance(value, SysfsRoot) or super().is_handle(value)

    def token_for(self, value: Any) -> str:
        if isinstance(value, SysfsRoot):
            return ROOT_TOKEN
        return super().token_for(value)

    def encode_error(self, exc: BaseException) -> dict[str, Any] | None:
        if not isinstance(exc, OSError):
            return None
        return {"code": errno_name(exc), "name": type(exc).__name__, "message": exc.strerror or ""}

"""The one module that touches pyopencl: lazy import, the flat call surface that is recorded, the value
codec and error translation.

pyopencl is object oriented (``Platform.get_devices()``, ``Device.get_info(param)``). The backend
instead calls four flat functions on :class:`PyOpenClApi`, and those are what a fixture records and
replays (``{"fn": "device_info", "args": [{"$handle": "h1"}, "GLOBAL_MEM_SIZE"], "result": ...}``):

* ``platforms()`` -- ``clGetPlatformIDs`` (``pyopencl.get_platforms()``), platform handles;
* ``platform_devices(p)`` -- ``clGetDeviceIDs(p, CL_DEVICE_TYPE_ALL)`` (``Platform.get_devices()``);
* ``platform_info(p, "NAME")`` -- ``clGetPlatformInfo(p, CL_PLATFORM_NAME)``;
* ``device_info(d, "GLOBAL_MEM_SIZE")`` -- ``clGetDeviceInfo(d, CL_DEVICE_GLOBAL_MEM_SIZE)``.

Query names are pyopencl's ``device_info``/``platform_info`` attribute names. A few extension queries
pyopencl cannot decode (cl_khr_pci_bus_info, AMD's topology and PCIe id) are read with a raw
``clGetDeviceInfo`` through ctypes on the same ICD loader pyopencl uses; their structures come back
as plain dicts. Vendor errors keep their OpenCL code (``-30`` CL_INVALID_VALUE, ``-1001``
CL_PLATFORM_NOT_FOUND_KHR) in the fixture.

``import pyopencl`` imports numpy, so nothing here imports it before :func:`import_pyopencl` runs.
"""

from __future__ import annotations

import ctypes
import importlib
from typing import Any

from gpuabst import entry_points
from gpuabst.backend import ErrorInfo
from gpuabst.errors import BackendUnavailable
from gpuabst.fixtures.codec import Codec
from gpuabst.reading import Status
from gpuabst_opencl import constants as C

INSTALL_HINT = ("pip install 'gpuabst[opencl]' (pyopencl) and an OpenCL driver: the GPU vendor's OpenCL ICD, "
                "or PoCL for a CPU device (apt-get install pocl-opencl-icd)")
NO_PLATFORM = ("no OpenCL platform found (CL_PLATFORM_NOT_FOUND_KHR): no OpenCL driver (ICD) is registered in "
               "/etc/OpenCL/vendors; install the GPU vendor's OpenCL driver (NVIDIA driver, ROCm's "
               "rocm-opencl-runtime, Intel's intel-opencl-icd) or PoCL for the CPU (apt-get install pocl-opencl-icd)")
ERROR_CLASS_NAMES = frozenset({"Error", "LogicError", "RuntimeError", "MemoryError"})


class RawQueryUnavailable(Exception):
    """A query pyopencl cannot decode, on a system where no OpenCL library can be called directly."""


def import_pyopencl() -> PyOpenClApi:
    """Import pyopencl (and with it numpy) and wrap it in the flat, recordable call surface."""
    try:
        cl = importlib.import_module("pyopencl")
    except ImportError as e:
        raise BackendUnavailable(f"pyopencl is not installed: {INSTALL_HINT}") from e
    except Exception as e:  # a broken install (numpy ABI mismatch, missing ICD loader)
        raise BackendUnavailable(f"pyopencl cannot be imported: {type(e).__name__}: {e}") from e
    return PyOpenClApi(cl)


def library_version() -> str | None:
    return entry_points.version("pyopencl")


class PyOpenClApi:
    """Flat functions over real pyopencl: the boundary that capture records and replay stands in for."""

    def __init__(self, cl: Any) -> None:
        self._cl = cl
        self.Error = cl.Error
        self.LogicError = cl.LogicError
        self.RuntimeError = cl.RuntimeError
        self.MemoryError = cl.MemoryError
        self._raw: Any = None

    def platforms(self) -> list[Any]:
        """clGetPlatformIDs (``clinfo``: "Number of platforms")."""
        return list(self._cl.get_platforms())

    def platform_devices(self, platform: Any) -> list[Any]:
        """clGetDeviceIDs(platform, CL_DEVICE_TYPE_ALL) (``clinfo``: "Number of devices")."""
        return list(platform.get_devices())

    def platform_info(self, platform: Any, name: str) -> Any:
        """clGetPlatformInfo(platform, CL_PLATFORM_<name>)."""
        return _plain(platform.get_info(getattr(self._cl.platform_info, name)))

    def device_info(self, device: Any, name: str) -> Any:
        """clGetDeviceInfo(device, CL_DEVICE_<name>)."""
        if name in C.RAW_DEVICE_QUERIES:
            return self._raw_device_info(device, name)
        param = getattr(self._cl.device_info, name, None)
        if param is None:  # this pyopencl does not know the query: pyopencl's own answer for that
            raise self._error("Device.get_info", C.INVALID_VALUE, f"pyopencl has no device_info.{name}")
        return _plain(device.get_info(param))

    # --- raw clGetDeviceInfo for structures pyopencl does not decode --------------------------
    def _raw_device_info(self, device: Any, name: str) -> Any:
        lib = self._opencl_library()
        buf = ctypes.create_string_buffer(64)
        size = ctypes.c_size_t(0)
        fn = lib.clGetDeviceInfo
        fn.restype = ctypes.c_int32
        fn.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_size_t, ctypes.c_void_p,
                       ctypes.POINTER(ctypes.c_size_t)]
        code = fn(ctypes.c_void_p(device.int_ptr), C.RAW_DEVICE_QUERIES[name], ctypes.sizeof(buf), buf,
                  ctypes.byref(size))
        if code != 0:
            raise self._error("clGetDeviceInfo", int(code), C.ERROR_NAMES.get(int(code), str(code)))
        return decode_raw(name, buf.raw[: size.value])

    def _opencl_library(self) -> Any:
        if self._raw is None:
            import ctypes.util  # imports subprocess: only where the raw query is made

            path = _loaded_opencl_path() or ctypes.util.find_library("OpenCL")
            if not path:
                raise RawQueryUnavailable("no OpenCL library found to call clGetDeviceInfo directly")
            self._raw = ctypes.CDLL(path)
        return self._raw

    def _error(self, routine: str, code: int, msg: str) -> BaseException:
        cls = getattr(self, C.error_class(code))
        try:
            return cls(self._cl._cl._ErrorRecord(routine, code, msg))  # type: ignore[no-any-return]
        except Exception:  # pyopencl's private error record changed: an error with the same code
            return _CodedError(routine, code, msg)


class _CodedError(Exception):
    def __init__(self, routine: str, code: int, msg: str) -> None:
        super().__init__(f"{routine} failed: {msg}")
        self.code = code
        self.routine = routine


def _loaded_opencl_path() -> str | None:
    """The ICD loader pyopencl already loaded (its wheel bundles one), from /proc/self/maps."""
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as f:
            for line in f:
                path = line.rsplit(" ", 1)[-1].strip()
                if "libOpenCL" in path and path.startswith("/"):
                    return path
    except OSError:
        pass
    return None


def decode_raw(name: str, data: bytes) -> Any:
    """The value of a raw extension query, as plain JSON data."""
    if name == "PCI_BUS_INFO_KHR":
        if len(data) < 16:
            raise ValueError(f"CL_DEVICE_PCI_BUS_INFO_KHR returned {len(data)} bytes, expected 16")
        dom, bus, dev, fn = (int.from_bytes(data[i:i + 4], "little") for i in range(0, 16, 4))
        return {"pci_domain": dom, "pci_bus": bus, "pci_device": dev, "pci_function": fn}
    if name == "TOPOLOGY_AMD":
        if len(data) < 24:
            raise ValueError(f"CL_DEVICE_TOPOLOGY_AMD returned {len(data)} bytes, expected 24")
        # unsigned bytes: AMD declares them cl_char, so bus numbers above 127 read negative otherwise
        return {"type": int.from_bytes(data[0:4], "little"), "bus": data[21], "device": data[22],
                "function": data[23]}
    if name == "PCIE_ID_AMD":
        return int.from_bytes(data[0:4], "little")
    raise ValueError(f"no raw decoder for {name}")


def _plain(v: Any) -> Any:
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, (bool, int, float, str)) or v is None:
        return v
    if hasattr(v, "__int__"):  # numpy integers
        return int(v)
    return str(v)


# --- errors -------------------------------------------------------------------------------------
def error_code(exc: BaseException) -> int | None:
    """The OpenCL status code of a pyopencl error (real or replayed), else None."""
    if type(exc).__name__ not in ERROR_CLASS_NAMES and not isinstance(exc, _CodedError):
        return None
    try:
        code = exc.code  # type: ignore[attr-defined]
    except Exception:
        return None
    return code if isinstance(code, int) and not isinstance(code, bool) else None


def error_routine(exc: BaseException) -> str | None:
    try:
        r = exc.routine  # type: ignore[attr-defined]
    except Exception:
        return None
    return r if isinstance(r, str) and r else None


def classify(exc: BaseException) -> ErrorInfo | None:
    """The Reading status for a pyopencl error, by its OpenCL status code."""
    if isinstance(exc, RawQueryUnavailable):
        return ErrorInfo(Status.UNSUPPORTED, str(exc))
    code = error_code(exc)
    if code is None:
        return None
    routine = error_routine(exc)
    reason = f"{C.error_name(code)} ({code})" + (f" from {routine}" if routine else "")
    if code == C.INVALID_VALUE:
        return ErrorInfo(Status.UNSUPPORTED, reason)
    if code == C.DEVICE_NOT_FOUND:
        return ErrorInfo(Status.NOT_APPLICABLE, reason)
    return ErrorInfo(Status.ERROR, reason)


class OpenClCodec(Codec):
    """Encodes pyopencl values: Platform and Device objects are handles; errors keep their code."""

    def is_handle(self, value: Any) -> bool:
        return super().is_handle(value) or (
            type(value).__name__ in ("Platform", "Device") and type(value).__module__.startswith("pyopencl"))

    def handle_identity(self, value: Any) -> Any:
        if hasattr(value, "int_ptr") and not isinstance(value, type):
            return (type(value).__name__, int(value.int_ptr))
        return super().handle_identity(value)

    def encode_error(self, exc: BaseException) -> dict[str, Any] | None:
        if isinstance(exc, RawQueryUnavailable):
            return {"code": "raw_query_unavailable", "name": "RawQueryUnavailable", "message": str(exc)}
        code = error_code(exc)
        if code is None:
            return None
        out: dict[str, Any] = {"code": code, "name": C.error_name(code), "class": C.error_class(code)}
        routine = error_routine(exc)
        if routine:
            out["routine"] = routine
        return out

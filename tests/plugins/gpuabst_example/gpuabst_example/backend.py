"""ExampleBackend: the accelerators exlib reports, in gpuabst's common model.

Each value's Reading names the exlib call behind it (the equivalent command line would be
``extool --query``, were exlib real).
"""

from __future__ import annotations

from typing import Any, ClassVar

import attrs

from gpuabst.backend import Backend, CallFailed, ErrorInfo, Probe, split
from gpuabst.errors import BackendUnavailable
from gpuabst.fixtures.codec import Codec
from gpuabst.fixtures.tape import Tape
from gpuabst.model import Device, HealthReadings, MemoryInfo, PciInfo
from gpuabst_example import binding, fake_exlib

KIB = 1024


class ExampleBackend(Backend):
    """Accelerators of the made-up vendor "example" through exlib."""

    name: ClassVar[str] = "example"
    vendor: ClassVar[str] = "example"
    library_module: ClassVar[str] = "gpuabst_example.exlib"
    library_distribution: ClassVar[str] = "gpuabst-example"
    install_hint: ClassVar[str] = binding.INSTALL_HINT
    authority: ClassVar[int] = 60
    sensitive_calls: ClassVar[dict[str, str]] = {"ex_device_serial": "serial"}

    # --- plugin hooks: where the vendor module comes from, and how its errors read ------------
    @classmethod
    def import_library(cls) -> Any:
        return binding.import_exlib()

    @classmethod
    def fake_library(cls, tape: Tape) -> Any:
        return fake_exlib.make(tape)

    @classmethod
    def make_codec(cls) -> Codec:
        return binding.ExCodec()

    @classmethod
    def classify_error(cls, exc: BaseException) -> ErrorInfo | None:
        return binding.classify(exc)

    @classmethod
    def raise_recorded_error(cls, error: dict[str, Any]) -> None:
        fake_exlib.raise_recorded(error)

    # --- session -------------------------------------------------------------------------------
    def _open(self) -> Probe:
        try:
            self.call("ex_init")
        except CallFailed as f:
            return Probe(False, f"ex_init failed: {f.reading.reason}", self.install_hint)
        self._driver = self.read("ex_driver_version", convert=str)
        return Probe(True, library_version=None if self.library.mode == "replay" else _version(self.lib),
                     driver_version=self._driver.get())

    def _close(self) -> None:
        try:
            self.call("ex_shutdown")
        except CallFailed:
            pass

    # --- devices -------------------------------------------------------------------------------
    def _devices(self) -> list[Device]:
        try:
            count = int(self.call("ex_device_count"))
        except CallFailed as f:
            raise BackendUnavailable(f"ex_device_count failed: {f.reading.reason}") from None
        return [self._device(i) for i in range(count)]

    def _device(self, index: int) -> Device:
        """Static facts (name, PCI, memory size), then the dynamic ones."""
        try:
            h = self.call("ex_device_by_index", index)
        except CallFailed as f:
            return Device(vendor="example", index=index, name=f.reading, sources=[self.name])
        device = Device(
            vendor="example", index=index, device_type="accelerator",
            name=self.read("ex_device_name", h, convert=str),
            serial=self.read("ex_device_serial", h, convert=str),
            driver_version=self._driver,
            pci=PciInfo(bus_id=self.read("ex_device_pci_bus", h, convert=lambda s: str(s).lower())),
            sources=[self.name])
        return self._with_dynamic(device, h)

    def _poll(self, previous: list[Device]) -> list[Device]:
        out = []
        for d in previous:
            try:
                out.append(self._with_dynamic(d, self.call("ex_device_by_index", d.index)))
            except CallFailed:
                out.append(d)
        return out

    def _with_dynamic(self, device: Device, h: Any) -> Device:
        """Memory in use (ex_device_memory, KiB -> bytes), temperature, fan."""
        mem = self.read("ex_device_memory", h)
        memory = MemoryInfo(**split(mem, total_bytes=lambda m: int(m.total_kib) * KIB,
                                    used_bytes=lambda m: int(m.used_kib) * KIB,
                                    free_bytes=lambda m: (int(m.total_kib) - int(m.used_kib)) * KIB))
        health = HealthReadings(
            temperature_c=self.read("ex_device_temperature", h, convert=float),
            fan_speed_pct=self.read("ex_device_fan_percent", h, convert=float))
        return attrs.evolve(device, memory=memory, health=health)


def _version(lib: Any) -> str | None:
    v = getattr(lib, "__version__", None)
    return str(v) if v is not None else None

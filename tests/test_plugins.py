"""A backend from outside this tree is found through the entry-point group, with no change here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

PLUGIN = textwrap.dedent('''
    """A third-party gpuabst backend: one fake accelerator, no vendor library."""
    from typing import Any
    from gpuabst.backend import Backend, ErrorInfo, Probe
    from gpuabst.fixtures.tape import FakeModule
    from gpuabst.model import Device, MemoryInfo
    from gpuabst.reading import ok

    class ToyLib:
        def toy_count(self) -> int:
            return 1
        def toy_name(self, i: int) -> str:
            return "Toy Accelerator 9000"

    class ToyBackend(Backend):
        name = "toy"
        vendor = "toyco"
        library_module = "toylib"
        library_distribution = "toylib"
        install_hint = "pip install toylib"

        @classmethod
        def import_library(cls) -> Any:
            return ToyLib()
        @classmethod
        def fake_library(cls, tape: Any) -> Any:
            return FakeModule("toylib", tape)
        @classmethod
        def classify_error(cls, exc: BaseException) -> ErrorInfo | None:
            return None
        @classmethod
        def raise_recorded_error(cls, error: dict[str, Any]) -> None:
            raise RuntimeError(error)
        def _open(self) -> Probe:
            return Probe(True, library_version="1.0")
        def _devices(self) -> list[Device]:
            n = self.call("toy_count")
            return [Device(vendor="toyco", index=i, name=self.read("toy_name", i), sources=[self.name],
                           memory=MemoryInfo(total_bytes=ok(2**30, self.name, None)))
                    for i in range(n)]
''')


def _install_plugin(site: Path, module: str, body: str, entry: str) -> None:
    (site / f"{module}.py").write_text(body)
    dist = site / f"{module}-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[gpuabst.backends]\n{entry}\n")


def _run(site: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "gpuabst", *args], capture_output=True, text=True, env=env,
                          timeout=120)


def test_third_party_backend_is_discovered_and_used(tmp_path: Path) -> None:
    _install_plugin(tmp_path, "gpuabst_toy", PLUGIN, "toy = gpuabst_toy:ToyBackend")
    r = _run(tmp_path, "show", "--json", "--backend", "toy")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert [d["name"] for d in doc["devices"]] == ["Toy Accelerator 9000"]
    assert doc["devices"][0]["sources"] == ["toy"] and doc["devices"][0]["vendor"] == "toyco"


def test_broken_plugin_is_reported_not_dropped_and_others_still_work(tmp_path: Path) -> None:
    _install_plugin(tmp_path, "gpuabst_toy", PLUGIN, "toy = gpuabst_toy:ToyBackend")
    _install_plugin(tmp_path, "gpuabst_broken", "raise ImportError('libbroken.so missing')\n",
                    "broken = gpuabst_broken:Nothing")
    _install_plugin(tmp_path, "gpuabst_notabackend", "class NotABackend: pass\n",
                    "weird = gpuabst_notabackend:NotABackend")
    r = _run(tmp_path, "backends", "--json")
    assert r.returncode == 0, r.stderr
    by_name = {b["name"]: b for b in json.loads(r.stdout)["backends"]}
    assert by_name["toy"]["available"] is True
    assert "libbroken.so missing" in by_name["broken"]["reason"] and not by_name["broken"]["available"]
    assert "not a gpuabst Backend subclass" in by_name["weird"]["reason"]
    r = _run(tmp_path, "list", "--backend", "toy", "--backend", "broken")
    assert r.returncode == 0 and "Toy Accelerator 9000" in r.stdout


def test_a_backend_not_asked_for_is_never_imported(tmp_path: Path) -> None:
    """Limiting the backends (--backend, GPUABST_BACKENDS) also limits what is imported: a plugin whose
    import has side effects or fails costs nothing where it is not used."""
    marker = tmp_path / "imported"
    _install_plugin(tmp_path, "gpuabst_toy", PLUGIN, "toy = gpuabst_toy:ToyBackend")
    _install_plugin(tmp_path, "gpuabst_loud", f"open({str(marker)!r}, 'w').close()\nraise ImportError('loud')\n",
                    "loud = gpuabst_loud:Nothing")
    r = _run(tmp_path, "list", "--backend", "toy")
    assert r.returncode == 0 and "Toy Accelerator 9000" in r.stdout, r.stderr
    assert not marker.exists()
    code = ("import sys; from gpuabst.registry import discover; "
            "print([e.name for e in discover(['nvml'])], 'gpuabst_amdsmi.backend' in sys.modules, "
            "'gpuabst_opencl.backend' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.split() == ["['nvml']", "False", "False"], done.stderr
    r = _run(tmp_path, "backends", "--json")  # asking for every backend imports every one
    assert marker.exists() and "loud" in r.stdout


def test_first_party_backends_are_registered_the_same_way() -> None:
    from gpuabst.registry import discover

    entries = {e.name: e for e in discover()}
    assert entries["nvml"].backend_class is not None
    assert entries["nvml"].backend_class.__module__ == "gpuabst_nvml.backend"

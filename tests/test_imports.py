"""Vendor libraries stay lazy, and everything but live hardware works without them."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from synthetic import nvml_fixture

from gpuabst.fixtures import format as fmt

VENDOR_MODULES = ("pynvml", "amdsmi", "pyopencl", "numpy")


def _py(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120)


def test_import_gpuabst_imports_no_vendor_library_or_numpy() -> None:
    r = _py(f"""
        import sys, gpuabst
        print(sorted(m for m in {VENDOR_MODULES!r} if m in sys.modules))
    """)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


def test_replaying_nvml_imports_no_vendor_library(tmp_path: Path) -> None:
    fmt.save(nvml_fixture(2), tmp_path / "f.json")
    r = _py(f"""
        import sys, gpuabst
        devs = gpuabst.devices([{str(tmp_path / 'f.json')!r}], backends=["nvml"])
        print(len(devs), sorted(m for m in {VENDOR_MODULES!r} if m in sys.modules))
    """)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "2 []"


BLOCK = """
    import sys
    class Block:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("pynvml", "amdsmi", "pyopencl"):
                raise ImportError(f"No module named {name!r} (blocked for this test)")
    sys.meta_path.insert(0, Block())
"""


def test_everything_but_live_hardware_works_without_vendor_libraries(tmp_path: Path) -> None:
    fmt.save(nvml_fixture(2, mig=True), tmp_path / "f.json")
    r = _py(textwrap.dedent(BLOCK) + textwrap.dedent(f"""
        import gpuabst
        reports = {{r.name: r for r in gpuabst.backends()}}
        print(reports["nvml"].available, reports["nvml"].reason)
        snap = gpuabst.snapshot([{str(tmp_path / 'f.json')!r}], backends=["nvml"])
        print(len(snap.devices), snap.devices[0].partitions[0].profile.value)
    """))
    assert r.returncode == 0, r.stderr
    first, second = r.stdout.strip().splitlines()
    assert first.startswith("False nvidia-ml-py is not installed")
    assert second == "2 3g.40gb"

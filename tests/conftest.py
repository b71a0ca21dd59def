"""Shared test set-up: no test writes outside temporary folders, and no test touches a real GPU."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
SHARED = ROOT.parent / "shared"
CAPTURES = SHARED / "captures"
sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture(autouse=True)
def _isolated_environment(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Caches (PoCL's among them) go to a temporary HOME; no fixture or backend limit leaks in."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    monkeypatch.setenv("POCL_CACHE_DIR", str(home / "pocl-cache"))
    monkeypatch.delenv("GPUABST_FIXTURE", raising=False)
    monkeypatch.delenv("GPUABST_BACKENDS", raising=False)


def captures(vendor: str) -> list[Path]:
    """The real captures of ../shared/captures/<vendor> (empty where shared/ is not beside the repo)."""
    d = CAPTURES / vendor
    return sorted(p for p in d.iterdir() if p.is_file()) if d.is_dir() else []


needs_captures = pytest.mark.skipif(not CAPTURES.is_dir(), reason="../shared/captures is not beside the repository")
os.environ.setdefault("GPUABST_TESTING", "1")

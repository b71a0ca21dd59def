"""Every committed fixture replays to the result reviewed by hand beside it."""

from __future__ import annotations

from pathlib import Path

import pytest
from expectations import check, fixtures_with_expectations

ALL = [p for v in ("nvidia", "amd", "opencl", "pci") for p in fixtures_with_expectations(v)]


@pytest.mark.parametrize("fixture", ALL, ids=[f"{p.parent.name}/{p.stem}" for p in ALL])
def test_fixture_replays_to_reviewed_result(fixture: Path) -> None:
    assert check(fixture) == []


def test_every_fixture_has_expectations() -> None:
    root = Path(__file__).resolve().parent.parent / "fixtures"
    fixtures = [p for p in root.rglob("*.json") if not p.name.endswith(".expected.json")]
    lacking = [str(p.relative_to(root)) for p in fixtures
               if not p.with_name(p.name.replace(".json", ".expected.json")).exists()]
    assert lacking == []

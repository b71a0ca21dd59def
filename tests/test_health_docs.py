"""docs/health.md stays true: it names every check, every policy setting with its default, every metric."""

from __future__ import annotations

from pathlib import Path

from synthetic import nvml_fixture

from gpuabst.cli.commands.health import EXIT_FAIL, EXIT_UNKNOWN, EXIT_WARN
from gpuabst.exporter.prometheus import GAUGES, LABELLED, metric_families
from gpuabst.health import Level, evaluate
from gpuabst.health.policy import settings
from gpuabst.machine import Machine

DOC = (Path(__file__).resolve().parent.parent / "docs" / "health.md").read_text()


def test_every_check_is_documented() -> None:
    with Machine([nvml_fixture(1)], backends=["nvml"]) as m:
        node = evaluate(m.snapshot())
    ids = [c.id for c in node.devices[0].checks] + [c.id for c in node.checks]
    missing = [i for i in ids if f"`{i}`" not in DOC]
    assert missing == []


def test_every_policy_setting_is_documented_with_its_default() -> None:
    for name, (default, _) in settings().items():
        if isinstance(default, Level):
            shown = default.value
        elif isinstance(default, tuple):
            shown = ", ".join(default) if default else "[]"
        elif default is None:
            shown = "null"
        elif isinstance(default, bool):
            shown = str(default).lower()
        else:
            shown = str(default)
        assert f"| `{name}` | {shown}" in DOC, name


def test_every_metric_is_documented() -> None:
    with Machine([nvml_fixture(1)], backends=["nvml"]) as m:
        snap = m.snapshot()
    names = {fam.name for fam in metric_families(snap, evaluate(snap), read_seconds=0.1)}
    names |= {n for n, *_ in GAUGES} | {n for n, *_ in LABELLED}
    assert sorted(n for n in names if f"`{n}" not in DOC) == []


def test_exit_codes_are_documented() -> None:
    for code, words in ((EXIT_WARN, "something warns"), (EXIT_FAIL, "something fails"),
                        (EXIT_UNKNOWN, "something is unknown")):
        assert f"| {code} | {words}" in DOC

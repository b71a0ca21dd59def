"""pytest plugin: replayed machines for tests, from fixture files.

    def test_my_agent(gpuabst_replay):
        machine = gpuabst_replay("fixtures/nvidia/tesla-t4.json")
        assert machine.snapshot().devices[0].model.value == "t4"

    @pytest.mark.gpuabst_fixture("fixtures/nvidia/k80-x4-azure.json")
    def test_with_marker(gpuabst_machine):
        assert len(gpuabst_machine.snapshot().devices) == 4

    def test_my_backend_meets_the_contract(gpuabst_contract):
        gpuabst_contract("fixtures/mybackend/card.json")   # fails listing every problem

Machines are closed when the test ends. No GPU and no vendor library is touched.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from gpuabst.machine import Machine


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "gpuabst_fixture(*paths): fixture files the gpuabst_machine fixture replays")


@pytest.fixture
def gpuabst_replay() -> Iterator[Callable[..., Machine]]:
    """A factory: ``gpuabst_replay(*paths, **machine_options)`` -> a replayed Machine."""
    machines: list[Machine] = []

    def make(*paths: str | os.PathLike[str], **options: Any) -> Machine:
        m = Machine(list(paths), **options)
        machines.append(m)
        return m

    yield make
    for m in machines:
        m.close()


@pytest.fixture
def gpuabst_machine(request: pytest.FixtureRequest, gpuabst_replay: Callable[..., Machine]) -> Machine:
    """The machine replayed from the test's ``@pytest.mark.gpuabst_fixture(...)`` paths."""
    marker = request.node.get_closest_marker("gpuabst_fixture")
    if marker is None or not marker.args:
        raise pytest.UsageError("gpuabst_machine needs @pytest.mark.gpuabst_fixture('path/to/fixture.json')")
    return gpuabst_replay(*marker.args, **marker.kwargs)


@pytest.fixture
def gpuabst_contract() -> Callable[..., None]:
    """``gpuabst_contract(path, backends=None)``: fail the test with every contract problem of the fixture
    (see :mod:`gpuabst.testing.contract`)."""
    from gpuabst.testing.contract import check_fixture, format_problems

    def check(path: str | os.PathLike[str], backends: list[str] | None = None) -> None:
        problems = check_fixture(path, backends=backends)
        if problems:
            pytest.fail(f"{len(problems)} contract problem(s) in {path}:\n{format_problems(problems)}",
                        pytrace=False)

    return check

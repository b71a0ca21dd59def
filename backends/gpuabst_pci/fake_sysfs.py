"""A stand-in for :mod:`gpuabst_pci.binding` that answers from a fixture.

Its four functions (``list_devices``, ``read_attr``, ``read_link``, ``read_module_attr``) are
answered by the fixture's tape; a recorded failure is raised as the :class:`OSError` the real read
raised (``FileNotFoundError`` for ``ENOENT``), so the backend handles replay exactly as a live tree.
"""

from __future__ import annotations

from gpuabst.fixtures.tape import FakeModule, Tape
from gpuabst_pci.binding import SysfsRoot


def make(tape: Tape) -> FakeModule:
    """The fake binding module for one replay."""
    return FakeModule("gpuabst_pci.binding", tape, SysfsRoot=SysfsRoot)

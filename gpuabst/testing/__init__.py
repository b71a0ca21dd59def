"""Helpers for testing code that uses gpuabst, and backends written for it.

The pytest plugin (:mod:`gpuabst.testing.pytest_plugin`, registered automatically when gpuabst is
installed) gives tests a replayed machine from a fixture path. :mod:`gpuabst.testing.contract` is the
contract every backend meets (types, units, Readings with reasons, no bare None, partitions linked to
their parent, deterministic replay, poll keeps static facts), as ``check_fixture(path)`` and as
``BackendContractTests``, a base test class a backend package runs against its own fixtures
(docs/plugins.md).
"""

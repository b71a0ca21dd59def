"""Helpers for testing code that uses gpuabst, and backends written for it.

The pytest plugin (:mod:`gpuabst.testing.pytest_plugin`, registered automatically when gpuabst is
installed) gives tests a replayed machine from a fixture path.
"""

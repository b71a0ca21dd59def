"""Exporters: the health model published for monitoring systems (Prometheus: :mod:`.prometheus`).

Nothing here imports prometheus-client until a collector or server is made.
"""

DEFAULT_PORT = 9445
"""The port `gpuabst serve` listens on unless --port says otherwise."""

"""Exporters: the health model published for monitoring systems (Prometheus: :mod:`.prometheus`).

Nothing here imports prometheus-client: only registering a collector in a prometheus-client registry
(:func:`.prometheus.metric_families`) does.
"""

DEFAULT_PORT = 9445
"""The port `gpuabst serve` listens on unless --port says otherwise."""

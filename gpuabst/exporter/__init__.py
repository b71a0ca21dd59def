"""Exporters: the health model published for monitoring systems (Prometheus: :mod:`.prometheus`).

Nothing here imports prometheus-client until a collector or server is made.
"""

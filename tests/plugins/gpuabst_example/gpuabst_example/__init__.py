"""gpuabst-example: a complete, small gpuabst backend plugin (see docs/plugins.md)."""

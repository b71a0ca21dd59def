"""The ``gpuabst`` command line."""

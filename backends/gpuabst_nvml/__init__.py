"""gpuabst backend for NVIDIA GPUs over NVML (module ``pynvml`` from the package nvidia-ml-py)."""

from gpuabst_nvml.backend import NvmlBackend

__all__ = ["NvmlBackend"]

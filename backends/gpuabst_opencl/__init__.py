"""gpuabst backend for every device with an OpenCL driver, over ``pyopencl``."""

from gpuabst_opencl.backend import OpenClBackend

__all__ = ["OpenClBackend"]

"""gpuabst backend for AMD GPUs over AMD SMI (module ``amdsmi``, needs ``libamd_smi.so`` from ROCm)."""

from gpuabst_amdsmi.backend import AmdSmiBackend

__all__ = ["AmdSmiBackend"]

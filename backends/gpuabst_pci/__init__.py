"""gpuabst backend for display controllers and accelerators found on the PCI bus through sysfs.

It needs no vendor library and no DRM node: it reads ``/sys/bus/pci/devices`` (or the tree named
by ``GPUABST_SYSFS_ROOT``), so it sees a GPU whose driver is missing, broken or bound to vfio-pci.
"""

from gpuabst_pci.backend import PciBackend

__all__ = ["PciBackend"]

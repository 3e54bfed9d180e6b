"""napari-medio: medical image data loading and saving for napari, in one patient-LPS world.

Python API (no napari needed)::

    import napari_medio
    [vol] = napari_medio.read("ct.nrrd")      # list of data objects
    vol.array            # NumPy order a[k, j, i]
    vol.geometry         # spacing (i, j, k), origin and direction in LPS mm
    napari_medio.write(vol, "ct.nii.gz")
"""
from __future__ import annotations

import os
from typing import Any

from .core.errors import CancelledError, FormatError, MedioError, UnsupportedFormatError, WriteError
from .core.geometry import Geometry
from .core.kinds import DataKind
from .core.volume import AxisInfo, DisplayWindow, Volume

try:
    from ._version import version as __version__
except ImportError:  # pragma: no cover - source tree without a build
    __version__ = "0.0.0"

__all__ = [
    "AxisInfo",
    "CancelledError",
    "DataKind",
    "DisplayWindow",
    "FormatError",
    "Geometry",
    "MedioError",
    "UnsupportedFormatError",
    "Volume",
    "WriteError",
    "read",
    "write",
    "formats",
]


def read(path: str | os.PathLike[str], **options: Any) -> list:
    """Read a file or folder into a list of data objects (volumes, segmentations, ...).

    The format is found by content and extension through the registry;
    ``format="nrrd"`` forces one.  Options are passed to the format's reader
    (e.g. ``labelmap=True``).
    """
    from .core import registry

    return registry.read(path, **options)


def write(obj: Any, path: str | os.PathLike[str], **options: Any) -> list[str]:
    """Write one data object in the format named by ``path``'s extension; returns the files written."""
    from .core import registry

    return registry.write(obj, path, **options)


def formats() -> list:
    """Every registered file format (name, extensions, read/write support)."""
    from .core import registry

    return registry.formats()

"""napari-free core: geometry, data model, format registry, safe file writing."""
from .errors import CancelledError, FormatError, MedioError, UnsupportedFormatError, WriteError
from .geometry import Geometry
from .kinds import DataKind
from .volume import AxisInfo, DisplayWindow, Volume

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
]

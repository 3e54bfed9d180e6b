"""npe2 sample data: the orientation phantom, written to a temporary file and read back for real."""
from __future__ import annotations

import tempfile
from pathlib import Path

from ..core import registry
from ..core.phantom import make_ct_phantom
from ..core.volume import DisplayWindow
from .layers import to_layer_data


def ct_phantom() -> list:
    """The CT phantom (markers on the patient's left and anterior) as napari layer data."""
    with tempfile.TemporaryDirectory(prefix="napari-medio-") as tmp:
        path = Path(tmp) / "ct-phantom.nrrd"
        registry.write(make_ct_phantom(), path)
        objects = registry.read(path, mmap=False)
    layers = []
    for obj in objects:
        obj.name = "CT phantom"
        obj.window = DisplayWindow(center=40.0, width=800.0)  # a soft-tissue window
        obj.source = None
        layers.extend(to_layer_data(obj))
    return layers

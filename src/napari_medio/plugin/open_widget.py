"""A small dock widget: open a file with the reader options File > Open cannot ask for."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from magicgui.widgets import CheckBox, ComboBox, Container, FileEdit, Label, PushButton

from ..core.errors import MedioError

if TYPE_CHECKING:  # pragma: no cover
    import napari


class OpenWithOptionsWidget(Container):
    """Pick a file or folder, choose label map and oblique handling, and load it into the viewer."""

    def __init__(self, napari_viewer: napari.viewer.Viewer) -> None:
        super().__init__()
        self._viewer = napari_viewer
        self._path = FileEdit(label="File", mode="r")
        self._kind = ComboBox(label="Load as", choices=["guess from name", "volume", "label map"],
                              value="guess from name")
        self._resample = CheckBox(text="Resample oblique volumes onto patient axes", value=False)
        self._load = PushButton(text="Load")
        self._status = Label(value="")
        self._load.changed.connect(self.load)
        self.extend([self._path, self._kind, self._resample, self._load, self._status])

    def load(self) -> list:
        """Read the chosen file with the chosen options; returns the new layers."""
        from .reader import read_layers

        path = Path(self._path.value)
        labelmap = {"guess from name": None, "volume": False, "label map": True}[self._kind.value]
        options = {} if labelmap is None else {"labelmap": labelmap}
        try:
            layer_data = read_layers(path, resample_oblique=self._resample.value, **options)
        except MedioError as exc:
            self._status.value = str(exc)
            return []
        from napari.layers import Layer

        layers = []
        for ld in layer_data:
            if len(ld) < 3 or ld[0] is None:  # no layer: a transform, a table, or the series chooser opened
                continue
            data, kwargs, layer_type = ld
            layers.append(self._viewer.add_layer(Layer.create(data, kwargs, layer_type)))
        self._status.value = f"loaded {len(layers)} layer(s) from {path.name}"
        return layers

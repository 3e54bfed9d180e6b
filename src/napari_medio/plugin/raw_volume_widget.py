"""Dock widget: open a headerless RAW volume by stating its layout (as Slicer's RawImageGuess does).

Thin over :mod:`napari_medio.formats.raw_volume`: a file picker, one field per
:class:`~napari_medio.formats.raw_volume.RawLayout` parameter, "Guess" (fills
the fields from :func:`~napari_medio.formats.raw_volume.guess_layouts`; the
other guesses stay in a drop-down), a live preview of the middle slice as the
Image layer ``"RAW preview"`` (the error text is shown instead when the layout
does not fit the file), "Load" (the volume as an Image layer in the LPS world
through the layer adapter) and "Save .nhdr" (a detached NRRD header beside the
file, so that it opens anywhere afterwards).
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FileEdit,
    FloatSpinBox,
    Label,
    LineEdit,
    PushButton,
    SpinBox,
)

from ..core.errors import MedioError
from ..formats.raw_volume import (
    RAW_DTYPES,
    RawLayout,
    guess_layouts,
    read_raw,
    read_raw_slice,
    write_nhdr_for_raw,
)

if TYPE_CHECKING:  # pragma: no cover
    import napari

PREVIEW_NAME = "RAW preview"
_RGB = "RGB (3 x uint8)"
_MAX_INT = 2**31 - 1


def _path_or_none(value: Any) -> Path | None:
    if value is None or str(value).strip() in ("", "."):
        return None
    return Path(value)


class RawVolumeWidget(Container):
    """State (or guess) the layout of a headerless file, preview it live, load it, save a .nhdr."""

    def __init__(self, napari_viewer: napari.viewer.Viewer) -> None:
        super().__init__()
        self._viewer = napari_viewer
        self._busy = False
        self._guesses: list[RawLayout] = []
        self._path = FileEdit(label="File", mode="r",
                              filter="Raw data (*.raw *.bin *.img *.vol *.dat *.mvl);;All files (*)")
        self._size_x = SpinBox(label="Size X", min=1, max=_MAX_INT, value=1)
        self._size_y = SpinBox(label="Size Y", min=1, max=_MAX_INT, value=1)
        self._size_z = SpinBox(label="Size Z", min=1, max=_MAX_INT, value=1)
        self._dtype = ComboBox(label="Voxel type", choices=[*RAW_DTYPES, _RGB], value="uint8")
        self._byte_order = ComboBox(label="Byte order", choices=["little", "big"], value="little")
        self._header = SpinBox(label="Header (bytes)", min=0, max=_MAX_INT, value=0)
        self._spacing = [FloatSpinBox(label=f"Spacing {a} (mm)", min=1e-6, max=1e6, step=0.1, value=1.0)
                         for a in "XYZ"]
        self._origin = [FloatSpinBox(label=f"Origin {a} (LPS mm)", min=-1e7, max=1e7, step=1.0, value=0.0)
                        for a in "XYZ"]
        for box in self._spacing + self._origin:
            box.native.setDecimals(6)
        self._direction = LineEdit(label="Direction (columns)", value="1 0 0 0 1 0 0 0 1",
                                   tooltip="9 numbers, row by row: the LPS unit vectors of X, Y, Z as columns")
        self._slice_flip = CheckBox(text="Slices run top-down (first slice most superior)", value=False)
        self._guess = PushButton(text="Guess")
        self._choices = ComboBox(label="Guesses", choices=[], nullable=True)
        self._load_button = PushButton(text="Load")
        self._nhdr = FileEdit(label="Header file", mode="w", filter="NRRD header (*.nhdr)",
                              tooltip="where to write the .nhdr (empty: beside the raw file)")
        self._save = PushButton(text="Save .nhdr")
        self._status = Label(value="")
        self.extend([self._path, self._size_x, self._size_y, self._size_z, self._dtype, self._byte_order,
                     self._header, *self._spacing, *self._origin, self._direction, self._slice_flip,
                     self._guess, self._choices, self._load_button, self._nhdr, self._save, self._status])
        for w in (self._path, self._size_x, self._size_y, self._size_z, self._dtype, self._byte_order,
                  self._header, *self._spacing, *self._origin, self._direction, self._slice_flip):
            w.changed.connect(self._on_field_changed)
        self._guess.changed.connect(self.guess)
        self._choices.changed.connect(self._on_choice)
        self._load_button.changed.connect(self.load)
        self._save.changed.connect(self.save_nhdr)

    # -- fields <-> layout ----------------------------------------------------------------------
    @property
    def path(self) -> Path | None:
        """The chosen raw file (None when none is chosen)."""
        return _path_or_none(self._path.value)

    def raw_layout(self) -> RawLayout:
        """The layout the fields describe (ValueError when a field is invalid)."""
        rgb = self._dtype.value == _RGB
        try:
            direction = [float(v) for v in self._direction.value.replace(",", " ").split()]
        except ValueError:
            raise ValueError(f"direction must be 9 numbers, got {self._direction.value!r}") from None
        if len(direction) != 9:
            raise ValueError(f"direction must be 9 numbers, got {len(direction)}")
        return RawLayout(
            shape=(self._size_z.value, self._size_y.value, self._size_x.value),
            dtype="uint8" if rgb else self._dtype.value,
            byte_order=self._byte_order.value,
            header=self._header.value,
            spacing=tuple(b.value for b in self._spacing),
            origin=tuple(b.value for b in self._origin),
            direction=[direction[0:3], direction[3:6], direction[6:9]],
            components=3 if rgb else 1,
            slice_flip=self._slice_flip.value,
        )

    def set_layout(self, layout: RawLayout) -> None:
        """Fill the fields from ``layout`` (one preview update at the end)."""
        self._busy = True
        try:
            self._size_z.value, self._size_y.value, self._size_x.value = layout.shape
            self._dtype.value = _RGB if layout.components == 3 and layout.dtype == "uint8" else layout.dtype
            self._byte_order.value = layout.byte_order
            self._header.value = layout.header
            for box, v in zip(self._spacing, layout.spacing):
                box.value = v
            for box, v in zip(self._origin, layout.origin):
                box.value = v
            self._direction.value = " ".join(f"{v:g}" for row in layout.direction for v in row)
            self._slice_flip.value = layout.slice_flip
        finally:
            self._busy = False
        self.update_preview()

    # -- actions --------------------------------------------------------------------------------
    def _on_field_changed(self, *_: Any) -> None:
        if not self._busy:
            self.update_preview()

    def _on_choice(self, *_: Any) -> None:
        if self._busy:
            return
        index = next((i for i, g in enumerate(self._guesses) if self._guess_text(i, g) == self._choices.value), None)
        if index is not None:
            self._apply_guess(self._guesses[index])

    def _apply_guess(self, guess: RawLayout) -> None:
        # Keep the placement the user typed; take the layout from the guess.
        try:
            current = self.raw_layout()
            guess = RawLayout(shape=guess.shape, dtype=guess.dtype, byte_order=guess.byte_order,
                              header=guess.header, components=guess.components, spacing=current.spacing,
                              origin=current.origin, direction=current.direction,
                              slice_flip=current.slice_flip)
        except ValueError:
            pass
        self.set_layout(guess)

    @staticmethod
    def _guess_text(i: int, g: RawLayout) -> str:
        return f"{i + 1}. {g.describe()} (score {g.score:.3f})"

    def guess(self, *_: Any) -> list[RawLayout]:
        """Rank plausible layouts of the chosen file and fill the fields with the best one."""
        path = self.path
        if path is None:
            self._status.value = "choose a file first"
            return []
        try:
            guesses = guess_layouts(path, rgb=True)
        except MedioError as exc:
            self._status.value = str(exc)
            return []
        self._guesses = guesses
        self._busy = True
        try:
            self._choices.choices = [self._guess_text(i, g) for i, g in enumerate(guesses)]
            self._choices.value = self._guess_text(0, guesses[0]) if guesses else None
        finally:
            self._busy = False
        if not guesses:
            self._status.value = f"no plausible layout found for {path.name}"
            return []
        self._apply_guess(guesses[0])
        if not self._status.value.startswith(str(path)):  # keep an error from the preview visible
            self._status.value = f"best guess: {guesses[0].describe()}"
        return guesses

    def _preview_layer(self) -> Any:
        return next((la for la in self._viewer.layers if la.name == PREVIEW_NAME), None)

    def _remove_preview(self) -> None:
        layer = self._preview_layer()
        if layer is not None:
            self._viewer.layers.remove(layer)

    def update_preview(self) -> Any:
        """Show the middle slice as the "RAW preview" layer, or the reason it cannot be shown."""
        path = self.path
        if path is None:
            return None
        try:
            layout = self.raw_layout()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                data = read_raw_slice(path, layout)
        except (MedioError, ValueError, OSError) as exc:
            self._remove_preview()
            self._status.value = str(exc) if isinstance(exc, MedioError) else f"{path}: {exc}"
            return None
        rgb = layout.components == 3 and layout.dtype == "uint8"
        scale = (layout.spacing[1], layout.spacing[0])
        layer = self._preview_layer()
        if layer is not None and (layer.rgb != rgb or layer.data.ndim != data.ndim):
            self._viewer.layers.remove(layer)
            layer = None
        if layer is None:
            layer = self._viewer.add_image(data, name=PREVIEW_NAME, rgb=rgb, scale=scale)
        else:
            layer.data = data
            layer.scale = scale
            if not rgb:
                layer.reset_contrast_limits()
        extra = self._extra_bytes(path, layout)
        self._status.value = (f"slice {layout.shape[0] // 2} of {layout.shape[0]}"
                              + (f"; {extra} bytes after the voxel data are not used" if extra else ""))
        return layer

    @staticmethod
    def _extra_bytes(path: Path, layout: RawLayout) -> int:
        try:
            return path.stat().st_size - layout.header - layout.expected_bytes()
        except OSError:
            return 0

    def load(self, *_: Any) -> list:
        """Read the volume with the fields' layout and add it to the viewer; returns the new layers."""
        from napari.layers import Layer

        from .layers import to_layer_data

        path = self.path
        if path is None:
            self._status.value = "choose a file first"
            return []
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                volume = read_raw(path, self.raw_layout())
            layer_data = to_layer_data(volume)
        except (MedioError, ValueError) as exc:
            self._status.value = str(exc)
            return []
        layers = [self._viewer.add_layer(Layer.create(data, kwargs, layer_type))
                  for data, kwargs, layer_type in layer_data]
        self._remove_preview()
        self._status.value = f"loaded {path.name} ({volume.info()['shape']} {volume.dtype})"
        return layers

    def save_nhdr(self, *_: Any) -> Path | None:
        """Write the .nhdr header for the chosen file; returns its path."""
        path = self.path
        if path is None:
            self._status.value = "choose a file first"
            return None
        target = _path_or_none(self._nhdr.value)
        try:
            written = write_nhdr_for_raw(path, self.raw_layout(), target)
        except (MedioError, ValueError) as exc:
            self._status.value = str(exc)
            return None
        self._status.value = f"wrote {written}"
        return written

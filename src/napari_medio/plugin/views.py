"""Slicer's standard views in napari: axial, coronal, sagittal and 3D, with orientation letters.

:func:`set_view` sets napari's dims order and camera orientation as
:mod:`napari_medio.core.orientation` says (layer data and affines never change);
:func:`install` adds to a viewer, once, what napari-medio shows on every canvas:
patient direction letters at the edges of 2D views, the cursor readout in patient
terms (:mod:`napari_medio.plugin.readouts`), one scroll step per slice for
points, shapes and surfaces (:mod:`napari_medio.plugin.slice_step`), the view shortcuts (Alt-1 axial,
Alt-2 coronal, Alt-3 sagittal, Alt-4 3D) and the axial view for the first volume
napari-medio opens.  :class:`ViewsDock` holds one button per view and, for the
selected image, 3D Slicer's automatic window and its CT presets (:func:`set_window`).
"""
from __future__ import annotations

import weakref
from typing import Any

from qtpy.QtWidgets import QGridLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from ..core.kinds import VOLUME_KINDS
from ..core.orientation import ViewName, edge_letters, view_spec

__all__ = ["VIEW_SHORTCUTS", "ViewsDock", "camera_of", "install", "orientation_letters", "set_view", "set_window"]

#: Keyboard shortcuts (none of them is one of napari's defaults).
VIEW_SHORTCUTS = {ViewName.AXIAL: "Alt-1", ViewName.CORONAL: "Alt-2", ViewName.SAGITTAL: "Alt-3",
                  ViewName.THREE_D: "Alt-4"}
#: Canvas overlay key of each edge letter, and where napari draws it.
_EDGES = {"top": "top_center", "bottom": "bottom_center", "left": "middle_left", "right": "middle_right"}
_OVERLAY_PREFIX = "medio_orientation_"

_INSTALLED: weakref.WeakSet[Any] = weakref.WeakSet()


def camera_of(viewer: Any) -> Any:
    """The viewer's camera (``viewer.scene.camera`` since napari 0.9, ``viewer.camera`` before)."""
    scene = getattr(viewer, "scene", None)
    return scene.camera if scene is not None and hasattr(scene, "camera") else viewer.camera


def _spatial_axes(viewer: Any) -> list[int]:
    """World axes of (S, P, L): the last three (the last two, (P, L), for 2D data)."""
    ndim = viewer.dims.ndim
    return list(range(ndim - 3, ndim)) if ndim >= 3 else list(range(ndim))


def set_view(viewer: Any, name: str | ViewName) -> None:
    """Show ``viewer`` as Slicer's ``"axial"``, ``"coronal"``, ``"sagittal"`` or ``"3d"`` view.

    World axes are (S, P, L) in LPS mm; the view sets the dims order (which world
    axes are on screen), ``camera.orientation`` (which way they run) and, for 3D,
    the camera direction (from the front, superior up); then frames the data.
    """
    from napari.utils.camera_orientations import DepthAxisOrientation as D
    from napari.utils.camera_orientations import HorizontalAxisOrientation as H
    from napari.utils.camera_orientations import VerticalAxisOrientation as V

    spec = view_spec(name)
    spatial = _spatial_axes(viewer)
    if len(spatial) == 3:
        leading = list(range(viewer.dims.ndim - 3))
        viewer.dims.order = tuple(leading + [spatial[a] for a in spec.order])
    elif spec.order != (0, 1, 2):
        raise ValueError(f"the {str(getattr(name, 'value', name)).lower()} view needs 3D data; "
                         f"the viewer shows {viewer.dims.ndim}D data")
    camera = camera_of(viewer)
    camera.orientation = (D.TOWARDS if spec.depth_towards else D.AWAY,
                                 V.DOWN if spec.vertical_down else V.UP,
                                 H.RIGHT if spec.horizontal_right else H.LEFT)
    viewer.dims.ndisplay = spec.ndisplay
    viewer.reset_view()
    if spec.view_direction is not None:
        camera.set_view_direction(spec.view_direction, spec.up_direction)


def orientation_letters(viewer: Any) -> dict[str, str]:
    """The patient direction letters at the edges of ``viewer``'s 2D view (empty in 3D)."""
    if viewer.dims.ndisplay != 2 or viewer.dims.ndim < 2:
        return {}
    spatial = _spatial_axes(viewer)
    base = 3 - len(spatial)
    vertical, horizontal = viewer.dims.order[-2:]
    if vertical not in spatial or horizontal not in spatial:
        return {}
    v_orient, h_orient = camera_of(viewer).orientation2d
    return edge_letters(spatial.index(vertical) + base, str(v_orient) == "down",
                        spatial.index(horizontal) + base, str(h_orient) == "right")


def _medio_layers(viewer: Any) -> list:
    return [layer for layer in viewer.layers if "medio" in (layer.metadata or {})]


def _update_letters(viewer: Any) -> None:
    letters = orientation_letters(viewer) if _medio_layers(viewer) else {}
    for edge in _EDGES:
        overlay = viewer.canvas.overlays.get(_OVERLAY_PREFIX + edge)
        if overlay is None:
            continue
        overlay.text = letters.get(edge, "")
        overlay.visible = bool(letters)


def _add_letter_overlays(viewer: Any) -> None:
    from napari.components.overlays import TextOverlay

    for edge, position in _EDGES.items():
        key = _OVERLAY_PREFIX + edge
        if key not in viewer.canvas.overlays:
            viewer.canvas.overlays[key] = TextOverlay(position=position, font_size=14, color="yellow", box=False)


def _is_volume_layer(layer: Any) -> bool:
    medio = (layer.metadata or {}).get("medio") or {}
    return medio.get("kind") in VOLUME_KINDS and len((medio.get("geometry") or {}).get("spacing", ())) == 3


def _on_inserted(viewer: Any, event: Any) -> None:
    from .slice_step import match_slice_step

    layer = event.value
    value_range = ((layer.metadata or {}).get("medio") or {}).get("value_range")
    if value_range and hasattr(layer, "contrast_limits_range"):  # the slider spans the sampled values
        low, high = layer.contrast_limits_range
        layer.contrast_limits_range = [min(low, value_range[0]), max(high, value_range[1])]
    if _is_volume_layer(layer) and not [lyr for lyr in viewer.layers if lyr is not layer and _is_volume_layer(lyr)]:
        set_view(viewer, ViewName.AXIAL)  # the first volume shows axial
    # One scroll step is one slice: vertex layers take the images' step.
    for other in ([layer] if type(layer).__name__ not in ("Image", "Labels") else list(viewer.layers)):
        match_slice_step(viewer, other)
    _update_letters(viewer)


def install(viewer: Any) -> None:
    """Add napari-medio's view tools to ``viewer`` (once): letters, readouts, shortcuts, first view."""
    viewer = getattr(viewer, "__wrapped__", viewer)  # a dock gets napari's public-only proxy
    if viewer in _INSTALLED:
        return
    _INSTALLED.add(viewer)
    _add_letter_overlays(viewer)
    ref = weakref.ref(viewer)

    def update(*_: Any) -> None:
        v = ref()
        if v is not None:
            _update_letters(v)

    viewer.dims.events.order.connect(update)
    viewer.dims.events.ndisplay.connect(update)
    viewer.dims.events.ndim.connect(update)
    camera_of(viewer).events.orientation.connect(update)
    viewer.layers.events.removed.connect(update)
    viewer.layers.events.inserted.connect(lambda event: _on_inserted(ref(), event) if ref() else None)
    for name, key in VIEW_SHORTCUTS.items():
        viewer.bind_key(key, _shortcut(name), overwrite=True)
    from .readouts import install_readouts

    install_readouts(viewer)
    update()


def _shortcut(name: ViewName) -> Any:
    def show(viewer: Any) -> None:
        set_view(viewer, name)

    show.__doc__ = f"napari-medio: {name.value} view"
    return show


def _image_targets(viewer: Any) -> list:
    images = [layer for layer in viewer.layers.selection if type(layer).__name__ == "Image" and not layer.rgb]
    active = viewer.layers.selection.active
    if not images and active is not None and type(active).__name__ == "Image" and not active.rgb:
        images = [active]
    return images


def set_window(viewer: Any, preset: str) -> list:
    """Apply a CT window (a key of :data:`~napari_medio.core.auto_window.CT_PRESETS`) or ``"Auto"``.

    Acts on the selected scalar Image layers (the active one when none is selected)
    and returns them.  ``"Auto"`` is 3D Slicer's automatic window from a sample of
    the layer's voxels.
    """
    from ..core.auto_window import CT_PRESETS, auto_window

    if preset != "Auto" and preset not in CT_PRESETS:
        raise ValueError(f"unknown window preset {preset!r}; expected 'Auto' or one of {sorted(CT_PRESETS)}")
    layers = _image_targets(viewer)
    for layer in layers:
        if preset == "Auto":
            data = layer.data[0] if layer.multiscale else layer.data
            found = auto_window(data, n_lead=max(layer.ndim - 3, 0))
            if found is None:
                continue
            window = found[0]
        else:
            window = CT_PRESETS[preset]
        layer.contrast_limits = list(window.limits)
    return layers


class ViewsDock(QWidget):
    """The Views dock: one button per standard view; window presets for the selected image."""

    def __init__(self, napari_viewer: Any) -> None:
        super().__init__()
        self.viewer = napari_viewer
        install(napari_viewer)
        layout = QVBoxLayout(self)
        grid = QGridLayout()
        labels = {ViewName.AXIAL: "Axial", ViewName.CORONAL: "Coronal", ViewName.SAGITTAL: "Sagittal",
                  ViewName.THREE_D: "3D"}
        self.view_buttons: dict[str, QPushButton] = {}
        for i, (name, text) in enumerate(labels.items()):
            button = QPushButton(text)
            button.setToolTip(f"{text} view as in 3D Slicer ({VIEW_SHORTCUTS[name]})")
            button.clicked.connect(lambda _=False, n=name: set_view(self.viewer, n))
            grid.addWidget(button, i // 2, i % 2)
            self.view_buttons[name.value] = button
        layout.addLayout(grid)
        from ..core.auto_window import CT_PRESETS

        windows = QGridLayout()
        self.window_buttons: dict[str, QPushButton] = {}
        for i, preset in enumerate(["Auto", *CT_PRESETS]):
            button = QPushButton(preset)
            if preset == "Auto":
                button.setToolTip("3D Slicer's automatic window (0.1 .. 99.9 percentile) of the selected image")
            else:
                w = CT_PRESETS[preset]
                button.setToolTip(f"CT {preset.lower()} window (Slicer's preset): W {w.width:g} L {w.center:g}")
            button.clicked.connect(lambda _=False, p=preset: set_window(self.viewer, p))
            windows.addWidget(button, i // 3, i % 3)
            self.window_buttons[preset] = button
        layout.addWidget(QLabel("Window"))
        layout.addLayout(windows)
        layout.addStretch(1)

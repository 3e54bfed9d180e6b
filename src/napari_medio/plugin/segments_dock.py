"""The "Segments" dock: the segments of a Labels layer, as 3D Slicer's Segment editor lists them.

For the chosen Labels layer (a segmentation or label map napari-medio read, or
any Labels layer): one row per segment with visibility, colour, name (editable),
label value and opacity.  Selecting a row makes it the label to paint
(``layer.selected_label``).  Visibility and opacity go into the layer's
:class:`~napari.utils.colormaps.DirectLabelColormap` (alpha); the segment
colours themselves stay in ``layer.metadata["medio"]["segment_display"]`` so
that saving writes the real colours, not the display alpha.

"Show 3D" adds one smoothed closed surface per segment (Slicer's "Show 3D"),
made by :func:`napari_medio.formats.surfaces.segment_surfaces`, as Surface layers
that follow the segments' visibility and opacity; "Export surfaces" writes them
through :func:`napari_medio.formats.surfaces.write_segment_surfaces` (the
code behind ``medio export-surfaces``).  Surfaces are in the LPS world like every
napari-medio layer.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from qtpy.QtCore import Qt
from qtpy.QtGui import QColor
from qtpy.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

__all__ = ["SegmentsDock", "segment_table", "SURFACE_FORMATS"]

#: Export formats offered by the dock (those of ``medio export-surfaces``).
SURFACE_FORMATS = ("stl", "obj", "vtk", "vtp", "ply", "glb")

#: Surface smoothing iterations of "Show 3D" (Slicer smooths its closed surfaces by default).
DEFAULT_SMOOTHING = 15

COL_SHOW, COL_COLOR, COL_NAME, COL_VALUE, COL_OPACITY = range(5)
_HEADERS = ("Show", "Colour", "Name", "Value", "Opacity")
_TRANSPARENT = (0.0, 0.0, 0.0, 0.0)


def _same(a: Any, b: Any) -> bool:
    """The same layer (napari hands plugin widgets proxies: a new object on every access)."""
    if a is None or b is None:
        return a is b
    return a is b or getattr(a, "unique_id", object()) == getattr(b, "unique_id", None)


def _medio(layer: Any) -> dict:
    return layer.metadata.setdefault("medio", {}) if isinstance(layer.metadata, dict) else {}


def _feature_names(layer: Any) -> dict[int, str]:
    feats = layer.features
    if feats is None or "name" not in getattr(feats, "columns", ()):
        return {}
    index = list(feats["index"]) if "index" in feats.columns else list(range(len(feats)))
    return {int(i): str(n) for i, n in zip(index, feats["name"])}


def _values_in(layer: Any, limit: int = 1 << 27) -> list[int]:
    data = layer.data[0] if getattr(layer, "multiscale", False) else layer.data
    if int(np.prod(data.shape)) > limit:
        return []
    return [int(v) for v in np.unique(np.asarray(data)) if v != 0]


def segment_table(layer: Any) -> list[dict]:
    """The segments of a Labels layer: value, name, colour (RGBA 0-1), visible, opacity; background left out.

    Names come from the layer's features (napari-medio puts segment names there),
    values from the features or, for a plain Labels layer, from its data.
    """
    names = _feature_names(layer)
    display = _medio(layer).get("segment_display") or {}
    values = sorted(v for v in names if v != 0) or _values_in(layer)
    rows = []
    for v in values:
        shown = display.get(str(v)) or {}
        color = shown.get("color") or [float(x) for x in np.asarray(layer.get_color(v), dtype=float).reshape(-1)[:4]]
        if len(color) == 3:
            color = list(color) + [1.0]
        rows.append({"value": v, "name": names.get(v, f"label {v}"), "color": [float(x) for x in color],
                     "visible": bool(shown.get("visible", True)), "opacity": float(shown.get("opacity", 1.0))})
    return rows


def _apply_display(layer: Any, rows: list[dict]) -> None:
    """Show ``rows``' visibility and opacity through the layer's direct colormap; remember the true colours."""
    from napari.utils.colormaps import DirectLabelColormap

    old = getattr(layer.colormap, "color_dict", None) or {}
    colors: dict[Any, Any] = {None: tuple(old.get(None, (0.5, 0.5, 0.5, 1.0))), 0: _TRANSPARENT}
    for k, v in old.items():
        if k is not None and k != 0:
            colors[int(k)] = tuple(float(x) for x in np.asarray(v).reshape(-1)[:4])
    for r in rows:
        rgba = list(r["color"])
        alpha = rgba[3] * r["opacity"] if r["visible"] else 0.0
        colors[r["value"]] = (rgba[0], rgba[1], rgba[2], alpha)
    _medio(layer)["segment_display"] = {str(r["value"]): {"color": list(r["color"]), "visible": r["visible"],
                                                          "opacity": r["opacity"]} for r in rows}
    layer.colormap = DirectLabelColormap(color_dict=colors)


class SegmentsDock(QWidget):
    """Segments of a Labels layer: visibility, colour, name, value, opacity; paint, show in 3D, export."""

    def __init__(self, napari_viewer: Any) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.rows: list[dict] = []
        self._surfaces: dict[int, Any] = {}  # label value -> Surface layer of "Show 3D"
        self._layer: Any = None
        self._worker: Any = None

        layout = QVBoxLayout(self)
        row = QHBoxLayout()
        row.addWidget(QLabel("Layer"))
        self.layer_combo = QComboBox()
        self.layer_combo.setToolTip("The Labels layer whose segments are listed")
        row.addWidget(self.layer_combo, 1)
        layout.addLayout(row)

        self.table = QTableWidget(0, len(_HEADERS))
        self.table.setHorizontalHeaderLabels(_HEADERS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SingleSelection)
        self.table.verticalHeader().setVisible(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.Interactive)
        header.setSectionResizeMode(COL_NAME, QHeaderView.Stretch)
        layout.addWidget(self.table, 1)

        row = QHBoxLayout()
        self.show3d_check = QCheckBox("Show 3D")
        self.show3d_check.setToolTip("One smoothed closed surface per segment, as Slicer's Show 3D")
        self.smoothing = QSpinBox()
        self.smoothing.setRange(0, 200)
        self.smoothing.setValue(DEFAULT_SMOOTHING)
        self.smoothing.setToolTip("Surface smoothing iterations (0: none)")
        self.update3d_button = QPushButton("Update 3D")
        self.update3d_button.setToolTip("Rebuild the surfaces after painting")
        row.addWidget(self.show3d_check)
        row.addWidget(QLabel("Smoothing"))
        row.addWidget(self.smoothing)
        row.addWidget(self.update3d_button)
        layout.addLayout(row)

        row = QHBoxLayout()
        self.format_combo = QComboBox()
        self.format_combo.addItems(SURFACE_FORMATS)
        self.format_combo.setToolTip("Surface file format (glb: one file with every segment)")
        self.export_button = QPushButton("Export surfaces...")
        self.export_button.setToolTip("Write one closed surface per segment into a folder")
        row.addWidget(self.format_combo)
        row.addWidget(self.export_button, 1)
        layout.addLayout(row)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)

        self.layer_combo.currentIndexChanged.connect(lambda *_: self._layer_changed())
        self.table.itemSelectionChanged.connect(self._selection_changed)
        self.table.itemChanged.connect(self._item_changed)
        self.show3d_check.toggled.connect(self.show_3d)
        self.update3d_button.clicked.connect(lambda: self.show_3d(True, rebuild=True))
        self.export_button.clicked.connect(lambda: self.export())
        self.viewer.layers.events.inserted.connect(lambda *_: self.refresh_layers())
        self.viewer.layers.events.removed.connect(self._layer_removed)
        self.viewer.layers.selection.events.active.connect(lambda *_: self._follow_active())
        self.refresh_layers()

    # -- layers ----------------------------------------------------------------------------------
    def labels_layers(self) -> list:
        from napari.layers import Labels

        return [layer for layer in self.viewer.layers if isinstance(layer, Labels)]

    def refresh_layers(self) -> None:
        names = [layer.name for layer in self.labels_layers()]
        current = self.layer_combo.currentText()
        self.layer_combo.blockSignals(True)
        self.layer_combo.clear()
        self.layer_combo.addItems(names)
        active = self.viewer.layers.selection.active
        if current in names:
            self.layer_combo.setCurrentText(current)
        elif active is not None and active.name in names:
            self.layer_combo.setCurrentText(active.name)
        self.layer_combo.blockSignals(False)
        self._layer_changed()

    def _follow_active(self) -> None:
        active = self.viewer.layers.selection.active
        if active is not None and active.name in [layer.name for layer in self.labels_layers()]:
            self.layer_combo.setCurrentText(active.name)

    def _layer_removed(self, event: Any) -> None:
        removed = getattr(event, "value", None)
        for value, surface in list(self._surfaces.items()):
            if _same(surface, removed):
                del self._surfaces[value]
        if _same(removed, self._layer):
            self._remove_surfaces()
            self._layer = None
        self.refresh_layers()

    def layer(self) -> Any:
        name = self.layer_combo.currentText()
        return self.viewer.layers[name] if name and name in self.viewer.layers else None

    def _layer_changed(self) -> None:
        layer = self.layer()
        if _same(layer, self._layer):
            return
        if self._layer is not None:
            self._remove_surfaces()
            self.show3d_check.blockSignals(True)
            self.show3d_check.setChecked(False)
            self.show3d_check.blockSignals(False)
            try:
                self._layer.events.selected_label.disconnect(self._label_selected)
            except (TypeError, ValueError, RuntimeError):
                pass
        self._layer = layer
        if layer is not None:
            layer.events.selected_label.connect(self._label_selected)
        self.refresh()

    # -- table -----------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Re-read the chosen layer's segments into the table."""
        layer = self._layer
        self.rows = segment_table(layer) if layer is not None else []
        t = self.table
        t.blockSignals(True)
        t.setRowCount(len(self.rows))
        for i, r in enumerate(self.rows):
            show = QTableWidgetItem()
            show.setFlags(Qt.ItemIsUserCheckable | Qt.ItemIsEnabled | Qt.ItemIsSelectable)
            show.setCheckState(Qt.Checked if r["visible"] else Qt.Unchecked)
            show.setToolTip("Show or hide this segment")
            t.setItem(i, COL_SHOW, show)
            rgb = [int(round(255 * c)) for c in r["color"][:3]]
            swatch = QTableWidgetItem("")
            swatch.setBackground(QColor(*rgb))
            swatch.setFlags(Qt.ItemIsEnabled | Qt.ItemIsSelectable)
            swatch.setToolTip("#{:02x}{:02x}{:02x}".format(*rgb))
            t.setItem(i, COL_COLOR, swatch)
            name = QTableWidgetItem(r["name"])
            name.setToolTip(r["name"])
            t.setItem(i, COL_NAME, name)
            value = QTableWidgetItem(str(r["value"]))
            value.setFlags(Qt.ItemIsEnabled | Qt.ItemIsSelectable)
            value.setTextAlignment(int(Qt.AlignRight | Qt.AlignVCenter))
            t.setItem(i, COL_VALUE, value)
            spin = QDoubleSpinBox()
            spin.setRange(0.0, 1.0)
            spin.setSingleStep(0.1)
            spin.setDecimals(2)
            spin.setValue(r["opacity"])
            spin.setToolTip("Segment opacity (0-1)")
            spin.setButtonSymbols(QDoubleSpinBox.NoButtons)
            spin.valueChanged.connect(lambda v, i=i: self.set_opacity(i, v))
            t.setCellWidget(i, COL_OPACITY, spin)
        t.blockSignals(False)
        t.resizeColumnsToContents()
        t.horizontalHeader().setSectionResizeMode(COL_NAME, QHeaderView.Stretch)
        if layer is None:
            self.status.setText("No Labels layer: open a segmentation or label map")
        else:
            self.status.setText(f"{len(self.rows)} segment(s) in {layer.name}")
            self._label_selected()

    def _label_selected(self, *_: Any) -> None:
        layer = self._layer
        if layer is None:
            return
        value = int(layer.selected_label)
        for i, r in enumerate(self.rows):
            if r["value"] == value and self.selected_value() != value:
                self.table.blockSignals(True)
                self.table.selectRow(i)
                self.table.blockSignals(False)

    def selected_value(self) -> int | None:
        rows = sorted({i.row() for i in self.table.selectedIndexes()})
        return self.rows[rows[0]]["value"] if rows and rows[0] < len(self.rows) else None

    def select(self, value: int) -> None:
        """Select the segment with label ``value``: it becomes the label to paint."""
        for i, r in enumerate(self.rows):
            if r["value"] == value:
                self.table.selectRow(i)
                return
        raise KeyError(f"no segment with label value {value}")

    def _selection_changed(self) -> None:
        value = self.selected_value()
        if value is not None and self._layer is not None:
            self._layer.selected_label = value

    def _item_changed(self, item: QTableWidgetItem) -> None:
        i = item.row()
        if item.column() == COL_SHOW:
            self.set_visible(i, item.checkState() == Qt.Checked)
        elif item.column() == COL_NAME:
            self.rename(i, item.text())

    # -- display ---------------------------------------------------------------------------------
    def set_visible(self, row: int, visible: bool) -> None:
        """Show or hide segment ``row`` (in 2D through the colormap, in 3D its surface)."""
        self.rows[row]["visible"] = bool(visible)
        item = self.table.item(row, COL_SHOW)
        if item is not None and (item.checkState() == Qt.Checked) != bool(visible):
            self.table.blockSignals(True)
            item.setCheckState(Qt.Checked if visible else Qt.Unchecked)
            self.table.blockSignals(False)
        self._show()

    def set_opacity(self, row: int, opacity: float) -> None:
        """Opacity 0-1 of segment ``row`` (2D and its 3D surface)."""
        self.rows[row]["opacity"] = float(opacity)
        spin = self.table.cellWidget(row, COL_OPACITY)
        if spin is not None and abs(spin.value() - opacity) > 1e-9:
            spin.blockSignals(True)
            spin.setValue(opacity)
            spin.blockSignals(False)
        self._show()

    def rename(self, row: int, name: str) -> None:
        """Rename segment ``row`` (the layer's features, which saving writes as the segment name)."""
        layer = self._layer
        self.rows[row]["name"] = name
        names = _feature_names(layer)
        names.setdefault(0, "background")
        names[self.rows[row]["value"]] = name
        for r in self.rows:
            names.setdefault(r["value"], r["name"])
        values = sorted(names)
        feats = {"index": values, "name": [names[v] for v in values]}
        old = layer.features
        if old is not None and "segment_id" in getattr(old, "columns", ()):
            ids = dict(zip((int(v) for v in old["index"]), old["segment_id"]))
            feats["segment_id"] = [ids.get(v, "") for v in values]
        layer.features = feats
        surface = self._surfaces.get(self.rows[row]["value"])
        if surface is not None:
            surface.name = f"{layer.name}: {name}"

    def _show(self) -> None:
        if self._layer is None:
            return
        _apply_display(self._layer, self.rows)
        for r in self.rows:
            surface = self._surfaces.get(r["value"])
            if surface is not None:
                surface.visible = r["visible"]
                surface.opacity = r["opacity"]

    # -- 3D and export ---------------------------------------------------------------------------
    def segmentation(self) -> Any:
        """The chosen layer as a :class:`~napari_medio.core.segmentation.Segmentation` (LPS geometry)."""
        from ..core.segmentation import Segmentation
        from .layers import from_layer

        layer = self._layer
        data, attributes, _ = layer.as_layer_data_tuple()
        obj = from_layer("labels", data, attributes)
        return obj if isinstance(obj, Segmentation) else Segmentation.from_labelmap(obj, name=layer.name)

    def _remove_surfaces(self) -> None:
        surfaces, self._surfaces = self._surfaces, {}
        for surface in surfaces.values():
            if surface.name in self.viewer.layers:
                self.viewer.layers.remove(surface.name)

    def show_3d(self, on: bool = True, rebuild: bool = False):
        """Add (or remove) the smoothed surfaces of the segments; returns the worker building them (or None)."""
        if self.show3d_check.isChecked() != bool(on):
            self.show3d_check.blockSignals(True)
            self.show3d_check.setChecked(bool(on))
            self.show3d_check.blockSignals(False)
        if not on:
            self._remove_surfaces()
            return None
        if self._layer is None or (self._surfaces and not rebuild):
            return None
        from napari.qt.threading import thread_worker

        from ..formats.surfaces import segment_surfaces

        seg = self.segmentation()
        smooth = int(self.smoothing.value())
        self.status.setText("Making surfaces...")

        value_of = {s.id: int(s.label_value) for s in seg.segments}

        @thread_worker
        def run():
            return segment_surfaces(seg, smooth=smooth), value_of

        from napari.utils import progress as napari_progress

        bar = napari_progress(total=0, desc="Show 3D: making surfaces")  # busy until they are made
        worker = run()
        worker.finished.connect(bar.close)
        worker.returned.connect(self._add_surfaces)
        worker.errored.connect(lambda exc: self.status.setText(f"Show 3D failed: {exc}"))
        self._worker = worker
        worker.start()
        return worker

    def _add_surfaces(self, result: tuple) -> None:
        from .layers import to_layer_data

        models, value_of = result
        self._remove_surfaces()
        layer = self._layer
        point = tuple(self.viewer.dims.point)  # surfaces reach half a voxel further: keep the slice shown
        by_value = {r["value"]: r for r in self.rows}
        for model in models:
            r = by_value.get(value_of.get((model.metadata.get("segment") or {}).get("id"), -1))
            for data, kwargs, layer_type in to_layer_data(model):
                kwargs["name"] = f"{layer.name}: {model.name}"
                kwargs["metadata"]["medio"]["segment_of"] = layer.name
                if r is not None:
                    kwargs["visible"] = r["visible"]
                    kwargs["opacity"] = r["opacity"]
                surface = getattr(self.viewer, f"add_{layer_type}")(data, **kwargs)
                if r is not None:
                    self._surfaces[r["value"]] = surface
        if len(point) == self.viewer.dims.ndim:
            for axis, value in enumerate(point):
                self.viewer.dims.set_point(axis, value)
        self.viewer.layers.selection.active = layer
        self.status.setText(f"{len(self._surfaces)} surface(s) shown in 3D")

    def export(self, folder: str | None = None, fmt: str | None = None) -> list[str]:
        """Write one closed surface per segment into ``folder`` (asked when None); returns the paths."""
        from ..core.errors import MedioError
        from ..formats.surfaces import write_segment_surfaces

        if self._layer is None:
            self.status.setText("No Labels layer to export")
            return []
        if folder is None:
            folder = QFileDialog.getExistingDirectory(self, "Export surfaces to folder")
            if not folder:
                return []
        fmt = fmt or self.format_combo.currentText()
        try:
            written = write_segment_surfaces(self.segmentation(), folder, fmt, smooth=int(self.smoothing.value()),
                                             stem=self._layer.name)
        except MedioError as exc:
            self.status.setText(str(exc))
            return []
        self.status.setText(f"Wrote {len(written)} file(s) to {folder}")
        self.status.setToolTip("\n".join(written))
        return written

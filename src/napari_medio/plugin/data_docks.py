"""Dock widgets for the non-layer objects: Transforms, and Tables & colour tables.

* **Transforms**: the loaded transforms (type, and the layers under each), the
  viewer's layers to apply a chosen transform to, and Apply / Revert / Harden,
  plus "From layer" (a layer's affine as a new linear transform) and "Save…".
* **Tables**: a sortable view of a loaded table (column types from its schema in
  the header tooltips), "Attach as features" of a layer; colour tables applied
  to a chosen Labels layer; volume properties (.vp / .vp.json) applied to a chosen Image layer.
* **Text**: read-only view of text, XML and JSON files no other format claims, and of
  shader properties (.sp) as read.
"""
from __future__ import annotations

from typing import Any

from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..core import registry
from ..core.kinds import DataKind
from .columns import fit_columns, refit
from .convert_transform import (
    STORE,
    apply_color_table,
    apply_transform,
    apply_volume_property,
    harden_transform,
    revert_transform,
    table_as_features,
    transform_from_layer,
)

__all__ = ["TransformsDock", "TablesDock", "TextDock"]


class TransformsDock(QWidget):
    """List loaded transforms and apply them to chosen layers."""

    def __init__(self, napari_viewer: Any) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.transforms = QListWidget()
        self.layers = QListWidget()
        self.status = QLabel("")
        buttons = QHBoxLayout()
        self.apply_button = QPushButton("Apply")
        self.revert_button = QPushButton("Revert")
        self.harden_button = QPushButton("Harden")
        self.from_layer_button = QPushButton("From layer")
        self.save_button = QPushButton("Save…")
        for b in (self.apply_button, self.revert_button, self.harden_button, self.from_layer_button, self.save_button):
            buttons.addWidget(b)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Transforms"))
        layout.addWidget(self.transforms)
        layout.addWidget(QLabel("Layers"))
        layout.addWidget(self.layers)
        layout.addLayout(buttons)
        layout.addWidget(self.status)
        self.apply_button.clicked.connect(lambda: self.apply())
        self.revert_button.clicked.connect(lambda: self.revert())
        self.harden_button.clicked.connect(lambda: self.harden())
        self.from_layer_button.clicked.connect(lambda: self.from_layer())
        self.save_button.clicked.connect(lambda: self.save())
        STORE.connect(self.refresh)
        self.viewer.layers.events.inserted.connect(self.refresh)
        self.viewer.layers.events.removed.connect(self.refresh)
        self.refresh()

    def refresh(self, *_: Any) -> None:
        current = self.transforms.currentRow()
        self.transforms.clear()
        for t in STORE.transforms:
            under = STORE.applied.get(t.name, [])
            text = f"{t.name}  [{t.type}]" + (f"  → {', '.join(under)}" if under else "")
            self.transforms.addItem(text)
        if STORE.transforms:
            self.transforms.setCurrentRow(min(max(current, 0), len(STORE.transforms) - 1))
        checked = set(self.checked_layers())
        self.layers.clear()
        for layer in self.viewer.layers:
            item = QListWidgetItem(layer.name)
            item.setFlags(item.flags() | Qt.ItemIsUserCheckable)
            item.setCheckState(Qt.Checked if layer.name in checked else Qt.Unchecked)
            self.layers.addItem(item)

    def checked_layers(self) -> list[str]:
        out = []
        for i in range(self.layers.count()):
            item = self.layers.item(i)
            if item.checkState() == Qt.Checked:
                out.append(item.text())
        return out

    def set_checked(self, names: list[str]) -> None:
        for i in range(self.layers.count()):
            item = self.layers.item(i)
            item.setCheckState(Qt.Checked if item.text() in names else Qt.Unchecked)

    def current_transform(self):
        row = self.transforms.currentRow()
        return STORE.transforms[row] if 0 <= row < len(STORE.transforms) else None

    def _layers(self, names: list[str] | None = None) -> list:
        names = self.checked_layers() if names is None else names
        return [self.viewer.layers[n] for n in names if n in self.viewer.layers]

    def apply(self, names: list[str] | None = None) -> None:
        t = self.current_transform()
        if t is None:
            self.status.setText("no transform selected")
            return
        for layer in self._layers(names):
            apply_transform(layer, t)
        self.status.setText(f"applied {t.name}")

    def revert(self, names: list[str] | None = None) -> None:
        for layer in self._layers(names):
            revert_transform(layer)

    def harden(self, names: list[str] | None = None) -> None:
        for layer in self._layers(names):
            harden_transform(layer)

    def from_layer(self) -> None:
        layer = self.viewer.layers.selection.active
        if layer is not None:
            STORE.add(transform_from_layer(layer))

    def save(self, path: str | None = None) -> list[str]:
        t = self.current_transform()
        if t is None:
            return []
        if path is None:
            path, _ = QFileDialog.getSaveFileName(self, "Save transform", f"{t.name}.h5",
                                                  "Transforms (*.h5 *.tfm *.txt *.mat *.nrrd *.nii.gz)")
            if not path:
                return []
        return registry.write(t, path)


class TablesDock(QWidget):
    """Show a loaded table (sortable, column types), attach it as features; apply colour tables."""

    def __init__(self, napari_viewer: Any) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.tables = QComboBox()
        self.view = QTableWidget()
        self.view.setSortingEnabled(True)
        self.view.setEditTriggers(QTableWidget.NoEditTriggers)
        fit_columns(self.view, row_numbers=True, data=True)
        self.target = QComboBox()
        self.attach_button = QPushButton("Attach as features")
        self.colortables = QComboBox()
        self.color_button = QPushButton("Apply colours to layer")
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Tables"))
        layout.addWidget(self.tables)
        layout.addWidget(self.view)
        row = QHBoxLayout()
        row.addWidget(QLabel("Layer"))
        row.addWidget(self.target)
        layout.addLayout(row)
        layout.addWidget(self.attach_button)
        layout.addWidget(QLabel("Colour tables"))
        layout.addWidget(self.colortables)
        layout.addWidget(self.color_button)
        self.volume_properties = QComboBox()
        self.vp_button = QPushButton("Apply volume property to layer")
        layout.addWidget(QLabel("Volume properties"))
        layout.addWidget(self.volume_properties)
        layout.addWidget(self.vp_button)
        self.vp_button.clicked.connect(lambda: self.apply_volume_property())
        self.tables.currentIndexChanged.connect(lambda *_: self.show_table())
        self.attach_button.clicked.connect(lambda: self.attach())
        self.color_button.clicked.connect(lambda: self.apply_colors())
        STORE.connect(self.refresh)
        self.viewer.layers.events.inserted.connect(self.refresh)
        self.viewer.layers.events.removed.connect(self.refresh)
        self.refresh()

    def refresh(self, *_: Any) -> None:
        for combo, items in ((self.tables, [t.name for t in STORE.tables]),
                             (self.colortables, [c.name for c in STORE.colortables]),
                             (self.volume_properties, [v.name for v in STORE.volume_properties]),
                             (self.target, [layer.name for layer in self.viewer.layers])):
            current = combo.currentText()
            combo.blockSignals(True)
            combo.clear()
            combo.addItems(items)
            if current in items:
                combo.setCurrentText(current)
            combo.blockSignals(False)
        self.show_table()

    def current_table(self):
        i = self.tables.currentIndex()
        return STORE.tables[i] if 0 <= i < len(STORE.tables) else None

    def show_table(self) -> None:
        t = self.current_table()
        self.view.setSortingEnabled(False)
        self.view.clear()
        if t is None:
            self.view.setRowCount(0)
            self.view.setColumnCount(0)
            return
        self.view.setColumnCount(len(t.columns))
        self.view.setRowCount(t.n_rows)
        for c, name in enumerate(t.columns):
            kind = t.column_type(name)
            item = QTableWidgetItem(f"{name}\n({kind})")
            props = t.column_properties(name)
            item.setToolTip("\n".join(f"{k}: {v}" for k, v in props.items() if v))
            self.view.setHorizontalHeaderItem(c, item)
            for r, value in enumerate(t.column(name)):
                cell = QTableWidgetItem()
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    cell.setData(Qt.DisplayRole, value)
                else:
                    cell.setData(Qt.DisplayRole, "" if value is None else str(value))
                    if value is not None:
                        cell.setToolTip(str(value))
                self.view.setItem(r, c, cell)
        self.view.setSortingEnabled(True)
        refit(self.view)

    def attach(self, layer_name: str | None = None) -> None:
        t = self.current_table()
        name = layer_name or self.target.currentText()
        if t is not None and name in self.viewer.layers:
            table_as_features(self.viewer.layers[name], t)

    def apply_colors(self, layer_name: str | None = None) -> None:
        i = self.colortables.currentIndex()
        name = layer_name or self.target.currentText()
        if 0 <= i < len(STORE.colortables) and name in self.viewer.layers:
            apply_color_table(self.viewer.layers[name], STORE.colortables[i])

    def apply_volume_property(self, layer_name: str | None = None) -> None:
        i = self.volume_properties.currentIndex()
        name = layer_name or self.target.currentText()
        if 0 <= i < len(STORE.volume_properties) and name in self.viewer.layers:
            apply_volume_property(self.viewer.layers[name], STORE.volume_properties[i])


class TextDock(QWidget):
    """Read-only view of loaded text / XML / JSON files and shader properties."""

    def __init__(self, napari_viewer: Any) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.documents = QComboBox()
        self.view = QPlainTextEdit()
        self.view.setReadOnly(True)
        self.view.setLineWrapMode(QPlainTextEdit.NoWrap)
        self.status = QLabel("")
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Documents"))
        layout.addWidget(self.documents)
        layout.addWidget(self.view)
        layout.addWidget(self.status)
        self.documents.currentIndexChanged.connect(lambda *_: self.show_document())
        STORE.connect(self.refresh)
        self.refresh()

    def items(self) -> list:
        return list(STORE.texts) + list(STORE.shader_properties)

    def refresh(self, *_: Any) -> None:
        names = [d.name for d in self.items()]
        current = self.documents.currentText()
        self.documents.blockSignals(True)
        self.documents.clear()
        self.documents.addItems(names)
        if current in names:
            self.documents.setCurrentText(current)
        elif names:
            self.documents.setCurrentIndex(len(names) - 1)  # the newest
        self.documents.blockSignals(False)
        self.show_document()

    def show_document(self) -> None:
        import json

        items = self.items()
        i = self.documents.currentIndex()
        if not 0 <= i < len(items):
            self.view.setPlainText("")
            self.status.setText("")
            return
        doc = items[i]
        if getattr(doc, "kind", "") == DataKind.SHADER_PROPERTY:
            self.view.setPlainText(json.dumps(doc.document, indent=2, ensure_ascii=False))
            self.status.setText("shader property (kept as read; napari cannot run VTK shaders)")
            return
        self.view.setPlainText(doc.pretty())
        note = doc.metadata.get("warning", "")
        lines = f"{doc.n_lines} line" + ("" if doc.n_lines == 1 else "s")
        self.status.setText(f"{doc.syntax}, {lines} as read" + (f" - {note}" if note else ""))

    def text(self) -> str:
        return self.view.toPlainText()

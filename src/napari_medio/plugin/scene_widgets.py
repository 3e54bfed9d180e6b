"""Slicer's "Add data", "Save scene" and "Export" workflows as napari dock widgets.

* :class:`AddDataWidget` -- pick files or a folder (or drop them); one row per file
  with what it is (guessed from the file, changeable) and that type's options;
  then load.
* :class:`SaveSceneWidget` -- every layer with its format, file name and subject-
  hierarchy folder, editable; saves a ``.mrml`` with its data files (only changed
  layers rewritten) or one ``.mrb``; a progress bar and Cancel.
* :class:`ExportWidget` -- chosen layers to chosen formats, several at once,
  optionally mirroring the folders; the save settings are not changed.

All three use the same core as the CLI (:mod:`napari_medio.scene`, the registry).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from napari.viewer import Viewer
from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..core.errors import CancelledError, MedioError, UnsupportedFormatError
from ..core.kinds import VOLUME_KINDS, DataKind
from .columns import TABLE_DOCK_WIDTH, fit_columns, path_item, refit, text_item

__all__ = [
    "DESCRIPTIONS",
    "AddDataWidget",
    "ExportWidget",
    "SaveSceneWidget",
    "describe_file",
    "export_selected_layers",
]

#: What a file can be loaded as (the "Description" column).
DESCRIPTIONS = ("volume", "label map", "segmentation", "model", "markups", "transform", "table", "colour table",
                "scene", "DICOM")

_KIND_TO_DESCRIPTION = {DataKind.VOLUME: "volume", DataKind.LABELMAP: "label map",
                        DataKind.SEGMENTATION: "segmentation", DataKind.MODEL: "model",
                        DataKind.MARKUPS: "markups", DataKind.TRANSFORM: "transform", DataKind.TABLE: "table",
                        DataKind.COLORTABLE: "colour table", DataKind.SCENE: "scene"}

#: Default formats per layer type (first is the default) for saving and exporting.
LAYER_FORMATS = {
    "image": [".nrrd", ".nii.gz", ".mha", ".nii", ".tif"],
    "labels": [".seg.nrrd", ".nrrd", ".nii.gz", ".mha"],
    "surface": [".vtk", ".vtp", ".stl", ".obj", ".ply"],
    "points": [".mrk.json", ".fcsv"],
    "shapes": [".mrk.json"],
}


def describe_file(path: str | os.PathLike[str]) -> str:
    """What a file most likely holds, as a :data:`DESCRIPTIONS` entry."""
    from ..core import registry

    try:
        fmt = registry.find_reader(path)
    except MedioError:
        return "volume"
    if fmt.name == "dicom":
        return "DICOM"
    if fmt.name in ("mrml", "mrb", "xnat"):
        return "scene"
    kinds = fmt.kinds or (DataKind.VOLUME,)
    return _KIND_TO_DESCRIPTION.get(kinds[0], "volume")


def _add_layer_data(viewer: Any, layer_data: list) -> list:
    from napari.layers import Layer

    added = []
    for ld in layer_data:
        if len(ld) < 2 or ld[0] is None:
            continue
        layer = Layer.create(ld[0], ld[1], ld[2] if len(ld) > 2 else "image")
        added.append(viewer.add_layer(layer))
    return added


# -- Add data ---------------------------------------------------------------------------------------
#: Formats whose readers take ``series=True`` (a numbered series of frames as one volume).
SERIES_FORMATS = ("png", "jpeg", "bmp", "tiff")
#: The colour table combo's first and last entries (the loaded tables are listed between them).
TABLE_DEFAULT = "(from the file)"
TABLE_FROM_FILE = "from file…"


def _reader_name(path: str | os.PathLike[str]) -> str | None:
    from ..core import registry

    try:
        return registry.find_reader(path).name
    except MedioError:
        return None


def _loaded_colortables() -> list:
    from .convert_transform import STORE

    return list(STORE.colortables)


def read_colortable_file(path: str | os.PathLike[str]) -> Any:
    """The first colour table a file holds (a colour table file, or a label map with names and colours)."""
    from ..core import registry
    from ..core.colortable import ColorTable

    for obj in registry.read(path):
        if isinstance(obj, ColorTable):
            return obj
        table = (getattr(obj, "metadata", None) or {}).get("color_table")
        if table:
            return ColorTable.from_label_table(table, name=getattr(obj, "name", "") or Path(path).stem)
    raise MedioError(path, "holds no colour table")


class _RowOptions(QWidget):
    """A row's type-specific options: "single file" (picture series), the colour table of a label map."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        layout = QHBoxLayout(self)
        layout.setContentsMargins(2, 0, 2, 0)
        self.series_capable = _reader_name(path) in SERIES_FORMATS
        self.single_file = QCheckBox("single file")
        self.single_file.setToolTip("unticked: the numbered series of pictures next to this file is loaded "
                                    "as one volume; ticked: only this file")
        self.colortable = QComboBox()
        self.colortable.setToolTip("colour table of the label map: names and colours of its labels")
        self.colortable_path = QLineEdit()
        self.colortable_path.setPlaceholderText("colour table file (.ctbl, .txt, .csv, .label)")
        self.browse = QPushButton("…")
        for w in (self.single_file, self.colortable, self.colortable_path, self.browse):
            layout.addWidget(w)
        self.description = ""
        self.refresh_tables()
        self.colortable.currentIndexChanged.connect(lambda *_: self._update())
        self.browse.clicked.connect(self._browse)

    def refresh_tables(self) -> None:
        current = self.colortable.currentText()
        self.colortable.blockSignals(True)
        self.colortable.clear()
        items = [TABLE_DEFAULT] + [t.name for t in _loaded_colortables()] + [TABLE_FROM_FILE]
        self.colortable.addItems(items)
        if current in items:
            self.colortable.setCurrentText(current)
        self.colortable.blockSignals(False)
        self._update()

    def set_description(self, description: str) -> None:
        self.description = description
        self._update()

    def _update(self) -> None:
        labelmap = self.description == "label map"
        self.single_file.setVisible(self.series_capable and self.description in ("volume", "label map"))
        self.colortable.setVisible(labelmap)
        from_file = labelmap and self.colortable.currentText() == TABLE_FROM_FILE
        self.colortable_path.setVisible(from_file)
        self.browse.setVisible(from_file)

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Colour table", "",
                                              "Colour tables (*.ctbl *.txt *.csv *.label);;All files (*)")
        if path:
            self.colortable_path.setText(path)

    def values(self) -> dict:
        return {"single_file": self.single_file.isChecked(), "color_table": self.colortable.currentText(),
                "color_table_file": self.colortable_path.text().strip()}


class AddDataWidget(QWidget):
    """Choose files or a folder, say what each file is, load."""

    COLUMNS = ("Load", "File", "Description", "Options")

    def __init__(self, napari_viewer: Any) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.setAcceptDrops(True)
        layout = QVBoxLayout(self)
        buttons = QHBoxLayout()
        self.files_button = QPushButton("Choose files…")
        self.folder_button = QPushButton("Choose folder…")
        buttons.addWidget(self.files_button)
        buttons.addWidget(self.folder_button)
        layout.addLayout(buttons)
        self.table = QTableWidget(0, len(self.COLUMNS))
        self.table.setHorizontalHeaderLabels(self.COLUMNS)
        self.table.horizontalHeaderItem(1).setToolTip("the file (the full path in each row's tooltip)")
        fit_columns(self.table, stretch=1, min_width=TABLE_DOCK_WIDTH)
        layout.addWidget(self.table)
        self.show_3d = QCheckBox("Show in 3D")
        layout.addWidget(self.show_3d)
        self.load_button = QPushButton("Load")
        layout.addWidget(self.load_button)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        self.files_button.clicked.connect(self._choose_files)
        self.folder_button.clicked.connect(self._choose_folder)
        self.load_button.clicked.connect(self.load)
        from .convert_transform import STORE

        STORE.connect(self._refresh_tables)
        self.destroyed.connect(lambda *_, cb=self._refresh_tables: STORE.disconnect(cb))

    def _refresh_tables(self) -> None:
        for r in range(self.table.rowCount()):  # a RuntimeError (widget deleted) disconnects it
            options = self.table.cellWidget(r, 3)
            if isinstance(options, _RowOptions):
                options.refresh_tables()

    # rows
    def add_paths(self, paths: list) -> None:
        """One row per path, with the guessed description."""
        for p in paths:
            self._add_row(Path(p))

    def _add_row(self, path: Path) -> None:
        row = self.table.rowCount()
        self.table.insertRow(row)
        check = QCheckBox()
        check.setChecked(True)
        self.table.setCellWidget(row, 0, check)
        self.table.setItem(row, 1, path_item(path))
        combo = QComboBox()
        combo.addItems(DESCRIPTIONS)
        desc = describe_file(path)
        combo.setCurrentText(desc)
        combo.setToolTip("what the file holds: how it is loaded")
        self.table.setCellWidget(row, 2, combo)
        options = _RowOptions(path)
        options.set_description(desc)
        combo.currentTextChanged.connect(options.set_description)
        combo.currentTextChanged.connect(lambda *_: refit(self.table))
        self.table.setCellWidget(row, 3, options)
        refit(self.table)

    def rows(self) -> list[dict]:
        out = []
        for r in range(self.table.rowCount()):
            out.append({"load": self.table.cellWidget(r, 0).isChecked(), "path": self.table.item(r, 1).text(),
                        "description": self.table.cellWidget(r, 2).currentText(),
                        **self.table.cellWidget(r, 3).values()})
        return out

    def options(self, row: int) -> _RowOptions:
        """The options cell of a row (its widgets: ``single_file``, ``colortable``, ``colortable_path``)."""
        return self.table.cellWidget(row, 3)

    def set_description(self, row: int, description: str) -> None:
        self.table.cellWidget(row, 2).setCurrentText(description)

    def _choose_files(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Choose files to add")
        self.add_paths(files)

    def _choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose a folder to add")
        if folder:
            self.add_paths([folder])

    def dragEnterEvent(self, event: Any) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: Any) -> None:
        self.add_paths([u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()])

    # loading
    def load(self) -> list:
        """Load every checked row as its description says; returns the layers added."""
        from .layers import to_layer_data

        added: list = []
        errors: list[str] = []
        for row in self.rows():
            if not row["load"]:
                continue
            try:
                for obj in self._read(row):
                    added.extend(_add_layer_data(self.viewer, to_layer_data(obj)))
            except MedioError as exc:
                errors.append(str(exc))
        if self.show_3d.isChecked():
            self.viewer.dims.ndisplay = 3
        self.status.setText("\n".join(errors) if errors else f"{len(added)} layers added")
        return added

    @staticmethod
    def _chosen_colortable(row: dict) -> Any:
        choice = row.get("color_table") or TABLE_DEFAULT
        if choice == TABLE_DEFAULT:
            return None
        if choice == TABLE_FROM_FILE:
            if not row.get("color_table_file"):
                raise MedioError(row["path"], "choose the colour table file for this label map")
            table = read_colortable_file(row["color_table_file"])
            from .convert_transform import STORE

            if not any(t.source and table.source and os.fspath(t.source) == os.fspath(table.source)
                       for t in STORE.colortables):
                STORE.add(table)  # listed for the next label maps, as Slicer keeps it in the scene
            return table
        for t in _loaded_colortables():
            if t.name == choice:
                return t
        raise MedioError(row["path"], f"colour table {choice!r} is no longer loaded")

    @staticmethod
    def _read(row: dict) -> list:
        from ..core import registry

        path, desc = row["path"], row["description"]
        if desc == "scene":
            from ..scene.loader import read_scene

            return read_scene(path)
        if desc == "DICOM":
            return registry.read(path, format="dicom")
        options: dict = {}
        fmt = None
        if desc in ("label map", "volume", "segmentation"):
            if desc == "label map":
                options["labelmap"] = True
            if not row.get("single_file", True) and _reader_name(path) in SERIES_FORMATS:
                from ..formats.naming import numbered_siblings

                if len(numbered_siblings(path)) > 1:  # a lone (e.g. multi-page) file is read as it is
                    options["series"] = True  # the numbered pictures next to this one, as one volume
        if desc == "transform" and str(path).lower().endswith((".nrrd", ".nhdr", ".mha", ".mhd", ".nii", ".nii.gz")):
            fmt = "displacement-field"
        reader = registry.find_reader(path, format=fmt)
        objs = registry.read(path, format=reader.name, **registry.applicable_options(reader, "read", options))
        table = AddDataWidget._chosen_colortable(row) if desc == "label map" else None
        out = []
        for obj in objs:
            kind = getattr(obj, "kind", None)
            if desc == "label map" and kind == DataKind.VOLUME:
                obj = obj.with_array(obj.array, kind=DataKind.LABELMAP)
            if table is not None and getattr(obj, "kind", None) == DataKind.LABELMAP:
                obj.metadata["color_table"] = table.as_label_table()
            elif desc == "volume" and kind == DataKind.LABELMAP:
                obj = obj.with_array(obj.array, kind=DataKind.VOLUME)
            elif desc == "segmentation" and kind in VOLUME_KINDS:
                from ..core.segmentation import Segmentation

                obj = Segmentation.from_labelmap(obj.with_array(obj.array, kind=DataKind.LABELMAP))
            out.append(obj)
        return out


# -- Save scene --------------------------------------------------------------------------------------
def _layer_kind(layer: Any) -> str:
    return type(layer).__name__.lower()


def _default_format(layer: Any) -> str:
    kind = _layer_kind(layer)
    medio = (layer.metadata or {}).get("medio") or {}
    if kind == "labels" and not (medio.get("metadata") or {}).get("segmentation") \
            and medio.get("kind") == DataKind.LABELMAP:
        return ".nrrd"
    return LAYER_FORMATS.get(kind, [".nrrd"])[0]


class SaveSceneWidget(QWidget):
    """Every layer with format, file name and folder; save as .mrml + files or one .mrb."""

    COLUMNS = ("Save", "Layer", "Format", "File name", "Folder")

    def __init__(self, napari_viewer: Any) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self._cancel = False
        layout = QVBoxLayout(self)
        row = QHBoxLayout()
        self.path_edit = QLineEdit()
        self.path_edit.setPlaceholderText("scene file (.mrml or .mrb)")
        browse = QPushButton("…")
        row.addWidget(QLabel("Scene:"))
        row.addWidget(self.path_edit)
        row.addWidget(browse)
        layout.addLayout(row)
        self.mode = QComboBox()
        self.mode.addItems(["Bundle (.mrb)", "Folder (.mrml + files)"])
        layout.addWidget(self.mode)
        self.table = QTableWidget(0, len(self.COLUMNS))
        self.table.setHorizontalHeaderLabels(self.COLUMNS)
        fit_columns(self.table, stretch=3, min_width=TABLE_DOCK_WIDTH)
        layout.addWidget(self.table)
        self.refresh_button = QPushButton("Refresh layers")
        layout.addWidget(self.refresh_button)
        self.progress = QProgressBar()
        layout.addWidget(self.progress)
        buttons = QHBoxLayout()
        self.save_button = QPushButton("Save")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        buttons.addWidget(self.save_button)
        buttons.addWidget(self.cancel_button)
        layout.addLayout(buttons)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        browse.clicked.connect(self._browse)
        self.refresh_button.clicked.connect(self.refresh)
        self.save_button.clicked.connect(self.save)
        self.cancel_button.clicked.connect(self.cancel)
        self.mode.currentIndexChanged.connect(self._mode_changed)
        self.viewer.layers.events.inserted.connect(self.refresh)
        self.viewer.layers.events.removed.connect(self.refresh)
        self.refresh()

    def _mode_changed(self) -> None:
        text = self.path_edit.text()
        if text:
            stem = text.rsplit(".", 1)[0]
            self.path_edit.setText(stem + (".mrb" if self.mode.currentIndex() == 0 else ".mrml"))

    def _browse(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save scene", "", "Slicer scene (*.mrb *.mrml)")
        if path:
            self.path_edit.setText(path)
            self.mode.setCurrentIndex(1 if path.lower().endswith(".mrml") else 0)

    def refresh(self, *_: Any) -> None:
        """One row per layer, keeping what the user edited for layers already listed."""
        previous = {r["layer"]: r for r in self.rows()} if self.table.rowCount() else {}
        self.table.setRowCount(0)
        for layer in self.viewer.layers:
            kind = _layer_kind(layer)
            if kind not in LAYER_FORMATS:
                continue
            row = self.table.rowCount()
            self.table.insertRow(row)
            prev = previous.get(layer.name)
            check = QCheckBox()
            check.setChecked(True if prev is None else prev["save"])
            self.table.setCellWidget(row, 0, check)
            item = QTableWidgetItem(layer.name)
            item.setFlags(item.flags() & ~Qt.ItemIsEditable)
            self.table.setItem(row, 1, item)
            combo = QComboBox()
            combo.addItems(LAYER_FORMATS[kind])
            combo.setCurrentText(prev["format"] if prev else _default_format(layer))
            self.table.setCellWidget(row, 2, combo)
            scene = ((layer.metadata or {}).get("medio") or {}).get("scene") or {}
            from ..scene.nodes import safe_file_base

            self.table.setItem(row, 3, text_item(prev["file"] if prev else safe_file_base(layer.name), editable=True))
            self.table.setItem(row, 4, text_item(prev["folder"] if prev else (scene.get("folder") or ""),
                                                 editable=True))
        refit(self.table)

    def rows(self) -> list[dict]:
        out = []
        for r in range(self.table.rowCount()):
            out.append({"save": self.table.cellWidget(r, 0).isChecked(), "layer": self.table.item(r, 1).text(),
                        "format": self.table.cellWidget(r, 2).currentText(),
                        "file": self.table.item(r, 3).text(), "folder": self.table.item(r, 4).text()})
        return out

    def set_row(self, layer_name: str, **values: Any) -> None:
        """Edit a row as a user would (``save``, ``format``, ``file``, ``folder``)."""
        for r in range(self.table.rowCount()):
            if self.table.item(r, 1).text() != layer_name:
                continue
            if "save" in values:
                self.table.cellWidget(r, 0).setChecked(bool(values["save"]))
            if "format" in values:
                self.table.cellWidget(r, 2).setCurrentText(values["format"])
            if "file" in values:
                self.table.item(r, 3).setText(values["file"])
            if "folder" in values:
                self.table.item(r, 4).setText(values["folder"])
            return
        raise KeyError(layer_name)

    def cancel(self) -> None:
        self._cancel = True

    def _progress(self, done: int, total: int, label: str) -> None:
        from qtpy.QtWidgets import QApplication

        self.progress.setMaximum(max(total, 1))
        self.progress.setValue(done)
        self.status.setText(f"saving {label}" if label else "")
        QApplication.processEvents()

    def save(self) -> list[str] | None:
        """Save the checked layers; returns the written paths (None on failure, with the error shown)."""
        from ..scene.save import SaveItem, data_fingerprint, save_scene
        from .convert_scene import object_from_layer

        text = self.path_edit.text().strip()
        if not text:
            self.status.setText("choose a scene file first")
            return None
        target = Path(text)
        bundle = self.mode.currentIndex() == 0
        if bundle and target.suffix.lower() != ".mrb":
            target = target.with_suffix(".mrb")
        if not bundle and target.suffix.lower() != ".mrml":
            target = target.with_suffix(".mrml")
        items: list[SaveItem] = []
        layers_by_name = {layer.name: layer for layer in self.viewer.layers}
        fingerprints = {}
        used = set()
        try:
            for row in self.rows():
                if not row["save"]:
                    continue
                layer = layers_by_name[row["layer"]]
                obj = object_from_layer(layer, split_viewer_transforms=True)
                md = obj.metadata.setdefault("scene", {}) if isinstance(getattr(obj, "metadata", None), dict) else {}
                md["folder"] = row["folder"].strip("/")
                fmt = row["format"]
                base = row["file"] or layer.name
                if base.lower().endswith(fmt):
                    base = base[: -len(fmt)]
                rel = f"{base}{fmt}"
                n = 0
                while rel.lower() in used:
                    n += 1
                    rel = f"{base}_{n}{fmt}"
                used.add(rel.lower())
                if bundle:
                    rel = f"Data/{rel}"
                fp = data_fingerprint(obj)
                fingerprints[layer.name] = (fp, os.fspath((target.parent / rel).resolve()))
                saved = ((layer.metadata or {}).get("medio") or {}).get("scene_saved") or {}
                unchanged = (not bundle and saved.get("fingerprint") == fp
                             and saved.get("path") == fingerprints[layer.name][1])
                items.append(SaveItem(obj, rel, write=not unchanged))
        except MedioError as exc:
            self.status.setText(str(exc))
            return None
        self._cancel = False
        self.cancel_button.setEnabled(True)
        self.save_button.setEnabled(False)
        try:
            written = save_scene(items, target, progress=self._progress, cancel=lambda: self._cancel)
        except CancelledError:
            self.status.setText("cancelled: the previous files are unchanged")
            return None
        except MedioError as exc:
            self.status.setText(f"not saved: {exc}")
            return None
        finally:
            self.cancel_button.setEnabled(False)
            self.save_button.setEnabled(True)
        for name, (fp, path) in fingerprints.items():
            layer = layers_by_name[name]
            medio = layer.metadata.setdefault("medio", {})
            medio["scene_saved"] = {"fingerprint": fp, "path": path}
        self.n_rewritten = sum(1 for it in items if it.write)
        self.status.setText(f"saved {target} ({self.n_rewritten} of {len(items)} data files written)")
        return written


# -- Export --------------------------------------------------------------------------------------------
class ExportWidget(QWidget):
    """Chosen layers to chosen formats, several at once; the save settings are not changed."""

    COLUMNS = ("Export", "Layer", "Format")

    def __init__(self, napari_viewer: Any) -> None:
        super().__init__()
        self.viewer = napari_viewer
        layout = QVBoxLayout(self)
        self.table = QTableWidget(0, len(self.COLUMNS))
        self.table.setHorizontalHeaderLabels(self.COLUMNS)
        fit_columns(self.table, stretch=1)
        self.table.setSelectionMode(QAbstractItemView.NoSelection)
        layout.addWidget(self.table)
        row = QHBoxLayout()
        self.folder_edit = QLineEdit()
        self.folder_edit.setPlaceholderText("output folder")
        browse = QPushButton("…")
        row.addWidget(self.folder_edit)
        row.addWidget(browse)
        layout.addLayout(row)
        self.folder_structure = QCheckBox("Folder structure (mirror the subject-hierarchy folders)")
        layout.addWidget(self.folder_structure)
        self.compress = QCheckBox("Compress")
        self.compress.setChecked(True)
        layout.addWidget(self.compress)
        self.export_button = QPushButton("Export")
        layout.addWidget(self.export_button)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        browse.clicked.connect(self._browse)
        self.export_button.clicked.connect(self.export)
        self.viewer.layers.events.inserted.connect(self.refresh)
        self.viewer.layers.events.removed.connect(self.refresh)
        self.refresh()

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export to folder")
        if folder:
            self.folder_edit.setText(folder)

    def refresh(self, *_: Any) -> None:
        checked = {r["layer"]: r for r in self.rows()} if self.table.rowCount() else {}
        selected = {layer.name for layer in self.viewer.layers.selection}
        self.table.setRowCount(0)
        for layer in self.viewer.layers:
            kind = _layer_kind(layer)
            if kind not in LAYER_FORMATS:
                continue
            r = self.table.rowCount()
            self.table.insertRow(r)
            check = QCheckBox()
            prev = checked.get(layer.name)
            check.setChecked(prev["export"] if prev else layer.name in selected)
            self.table.setCellWidget(r, 0, check)
            item = QTableWidgetItem(layer.name)
            item.setFlags(item.flags() & ~Qt.ItemIsEditable)
            self.table.setItem(r, 1, item)
            combo = QComboBox()
            combo.addItems(LAYER_FORMATS[kind])
            combo.setCurrentText(prev["format"] if prev else _default_format(layer))
            self.table.setCellWidget(r, 2, combo)
        refit(self.table)

    def rows(self) -> list[dict]:
        return [{"export": self.table.cellWidget(r, 0).isChecked(), "layer": self.table.item(r, 1).text(),
                 "format": self.table.cellWidget(r, 2).currentText()} for r in range(self.table.rowCount())]

    def set_row(self, layer_name: str, export: bool | None = None, format: str | None = None) -> None:
        for r in range(self.table.rowCount()):
            if self.table.item(r, 1).text() == layer_name:
                if export is not None:
                    self.table.cellWidget(r, 0).setChecked(export)
                if format is not None:
                    self.table.cellWidget(r, 2).setCurrentText(format)
                return
        raise KeyError(layer_name)

    def check_selected(self) -> None:
        """Tick exactly the layers selected in the layer list."""
        selected = {layer.name for layer in self.viewer.layers.selection}
        for r in range(self.table.rowCount()):
            self.table.cellWidget(r, 0).setChecked(self.table.item(r, 1).text() in selected)

    def export(self) -> list[str]:
        """Write every checked layer; returns the written paths."""
        from ..core import registry
        from ..scene.nodes import safe_file_base
        from .convert_scene import object_from_layer

        folder = Path(self.folder_edit.text().strip() or ".")
        layers_by_name = {layer.name: layer for layer in self.viewer.layers}
        written: list[str] = []
        errors = []
        for row in self.rows():
            if not row["export"]:
                continue
            layer = layers_by_name[row["layer"]]
            try:
                obj = object_from_layer(layer)
                scene = ((layer.metadata or {}).get("medio") or {}).get("scene") or {}
                # Export what the viewer shows: the data in the world frame (parents applied).
                from ..scene.loader import apply_world_matrix

                pending = scene.get("pending_matrix")
                if pending is not None:
                    obj, still = apply_world_matrix(obj, pending)
                sub = Path(*[safe_file_base(p) for p in scene.get("folder", "").split("/") if p]) \
                    if self.folder_structure.isChecked() else Path()
                path = folder / sub / f"{safe_file_base(layer.name)}{row['format']}"
                options = {} if self.compress.isChecked() else {"compress": False}
                try:
                    writer = registry.find_writer(path, kind=getattr(obj, "kind", None))
                except UnsupportedFormatError:  # the data is converted for a writer of this extension
                    writer = registry.find_writer(path)
                written.extend(registry.write(obj, path, **registry.applicable_options(writer, "write", options)))
            except MedioError as exc:
                errors.append(str(exc))
        self.status.setText("\n".join(errors) if errors else f"{len(written)} files written to {folder}")
        return written


def export_selected_layers(viewer: Viewer) -> None:
    """Layer list context menu: open the Export dock with the selected layers ticked."""
    try:
        _, widget = viewer.window.add_plugin_dock_widget("napari-medio", "Export")
    except Exception:  # pragma: no cover - no window (headless)
        return
    widget.refresh()
    widget.check_selected()

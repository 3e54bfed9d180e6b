"""Dock widget "Export to DICOM": chosen layers -> DICOM series / DICOM SEG, into a folder or the database.

Same code as ``medio dicom export`` (:mod:`napari_medio.dicom.export`).  Image layers become
CT/MR/secondary-capture series (or one enhanced object), Labels layers DICOM SEG objects
referencing the series they were drawn on (the reference folder, or the source series in the
database); other layers are skipped with a message.
"""
from __future__ import annotations

from typing import Any

from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ..core.errors import CancelledError, MedioError

__all__ = ["DicomExportWidget"]


def _folder_row(parent: QWidget, edit: QLineEdit, title: str) -> QWidget:
    row = QWidget(parent)
    lay = QHBoxLayout(row)
    lay.setContentsMargins(0, 0, 0, 0)
    lay.addWidget(edit)
    button = QPushButton("...", row)
    button.setFixedWidth(28)
    button.clicked.connect(lambda: edit.setText(QFileDialog.getExistingDirectory(parent, title) or edit.text()))
    lay.addWidget(button)
    return row


class DicomExportWidget(QWidget):
    """Export chosen layers to DICOM (a folder or the DICOM database)."""

    def __init__(self, napari_viewer: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.viewer = napari_viewer
        self._cancel = False
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Layers to export:"))
        self.layers = QListWidget(self)
        layout.addWidget(self.layers)
        form = QFormLayout()
        self.patient_name = QLineEdit(self)
        self.patient_id = QLineEdit(self)
        self.study_description = QLineEdit(self)
        self.series_description = QLineEdit(self)
        self.series_number = QSpinBox(self)
        self.series_number.setRange(0, 99999)
        self.series_number.setSpecialValueText("auto")
        self.modality = QComboBox(self)
        self.modality.addItems(["(from source)", "CT", "MR", "OT"])
        self.enhanced = QCheckBox("one Enhanced multi-frame object (CT/MR)", self)
        self.reference = QLineEdit(self)
        self.reference.setPlaceholderText("series a Labels layer was drawn on (else: from the database)")
        self.destination = QComboBox(self)
        self.destination.addItems(["Folder", "DICOM database"])
        self.folder = QLineEdit(self)
        self.folder.setPlaceholderText("output folder or database folder (empty: default database)")
        for label, w in (("Patient name", self.patient_name), ("Patient ID", self.patient_id),
                         ("Study description", self.study_description),
                         ("Series description", self.series_description), ("Series number", self.series_number),
                         ("Modality", self.modality), ("", self.enhanced),
                         ("Reference series", _folder_row(self, self.reference, "Reference series")),
                         ("Export to", self.destination), ("Folder", _folder_row(self, self.folder, "Folder"))):
            form.addRow(label, w)
        layout.addLayout(form)
        buttons = QHBoxLayout()
        self.export_button = QPushButton("Export", self)
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.setEnabled(False)
        buttons.addWidget(self.export_button)
        buttons.addWidget(self.cancel_button)
        layout.addLayout(buttons)
        self.progress = QProgressBar(self)
        layout.addWidget(self.progress)
        self.status = QLabel("", self)
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        self.export_button.clicked.connect(self.export)
        self.cancel_button.clicked.connect(self._on_cancel)
        self.viewer.layers.events.inserted.connect(self.refresh)
        self.viewer.layers.events.removed.connect(self.refresh)
        self.refresh()

    def refresh(self, *_: Any) -> None:
        """List the viewer's layers (Image and Labels checked by default)."""
        checked = {self.layers.item(i).text() for i in range(self.layers.count())
                   if self.layers.item(i).checkState()}
        self.layers.clear()
        for layer in self.viewer.layers:
            item = QListWidgetItem(layer.name)
            kind = type(layer).__name__
            default = kind in ("Image", "Labels") and (not checked or layer.name in checked)
            from qtpy.QtCore import Qt

            item.setCheckState(Qt.Checked if default else Qt.Unchecked)
            self.layers.addItem(item)

    def _on_cancel(self) -> None:
        self._cancel = True

    def tags(self):
        from ..dicom.export import ExportTags

        text = lambda w: w.text().strip() or None  # noqa: E731
        modality = self.modality.currentText()
        return ExportTags(patient_name=text(self.patient_name), patient_id=text(self.patient_id),
                          study_description=text(self.study_description),
                          series_description=text(self.series_description),
                          series_number=self.series_number.value() or None,
                          modality=None if modality.startswith("(") else modality)

    def _progress(self, done: int, total: int) -> None:
        from qtpy.QtWidgets import QApplication

        self.progress.setMaximum(max(total, 1))
        self.progress.setValue(done)
        QApplication.processEvents()

    def export(self) -> list:
        """Export the checked layers; returns the messages shown."""
        from .layers import from_layer

        self._cancel = False
        self.export_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        messages = []
        try:
            names = [self.layers.item(i).text() for i in range(self.layers.count())
                     if self.layers.item(i).checkState()]
            for name in names:
                layer = self.viewer.layers[name]
                kind = type(layer).__name__.lower()
                if kind not in ("image", "labels"):
                    messages.append(f"{name}: a {kind} layer cannot be exported to DICOM (skipped)")
                    continue
                try:
                    data, attributes, _ = layer.as_layer_data_tuple()
                    obj = from_layer(kind, data, attributes)
                    messages.append(f"{name}: {self._export_one(obj)}")
                except CancelledError:
                    messages.append(f"{name}: cancelled")
                    break
                except MedioError as exc:
                    messages.append(f"{name}: {exc.reason}")
        finally:
            self.export_button.setEnabled(True)
            self.cancel_button.setEnabled(False)
        self.status.setText("\n".join(messages))
        return messages

    def _export_one(self, obj: Any) -> str:
        from ..dicom.export import export_object, export_to_database

        reference = self.reference.text().strip() or None
        cancel = lambda: self._cancel  # noqa: E731
        if self.destination.currentIndex() == 1:
            from ..dicom.database import DicomDatabase

            db = DicomDatabase(self.folder.text().strip() or None)
            uids = export_to_database(obj, db, self.tags(), reference=reference, enhanced=self.enhanced.isChecked(),
                                      progress=self._progress, cancel=cancel)
            return f"{len(uids)} instance(s) into the database {db.folder}"
        folder = self.folder.text().strip()
        if not folder:
            raise MedioError(None, "choose an output folder")
        files = export_object(obj, folder, self.tags(), reference=reference, enhanced=self.enhanced.isChecked(),
                              progress=self._progress, cancel=cancel)
        return f"{len(files)} file(s) in {files[0].parent if files else folder}"

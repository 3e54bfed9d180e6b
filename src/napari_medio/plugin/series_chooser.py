"""The series chooser: a DICOM folder with several series lists them (the DICOM browser's series table)
and loads the ones the user picks; localizers are marked and not selected.

Made by the reader (:mod:`napari_medio.plugin.reader`) from the headers it
already read (:class:`~napari_medio.dicom.series.DicomScan`), so loading reads
only the chosen series' pixels.  Loading runs in a thread worker with napari's
progress bar and can be cancelled.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from qtpy.QtGui import QBrush, QColor
from qtpy.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ..core.errors import CancelledError, MedioError
from ..dicom.localizer import SeriesRow
from .dicom_browser import SERIES_COLUMNS, fill_table, series_table

__all__ = ["CHOOSER_COLUMNS", "SeriesChooser", "open_series_chooser"]

CHOOSER_COLUMNS = SERIES_COLUMNS + [("note", "Note")]


def _row_dict(row: SeriesRow, loaded: bool) -> dict:
    note = []
    if row.localizer:
        note.append(f"localizer ({row.localizer})")
    if not row.is_image:
        note.append("no image: read by its own format")
    if loaded:
        note.append("loaded")
    return {"number": row.number, "modality": row.modality, "description": row.description, "images": row.images,
            "size": row.size, "note": "; ".join(note)}


class SeriesChooser(QWidget):
    """Pick series of a scanned DICOM folder to load into the viewer."""

    def __init__(self, napari_viewer: Any, scan: Any, rows: list[SeriesRow], loaded: set | None = None) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.scan = scan
        self.rows = rows
        self.loaded: set[str] = set(loaded or ())
        self._cancelled = False
        self._worker: Any = None
        layout = QVBoxLayout(self)
        folder = os.fspath(scan.path)
        n_loc = sum(1 for r in rows if r.localizer)
        self.title = QLabel(f"{len(rows)} series in {Path(folder).name}"
                            + (f" ({n_loc} localizer{'s' if n_loc != 1 else ''})" if n_loc else ""))
        self.title.setToolTip(folder)
        layout.addWidget(self.title)
        self.table = series_table(CHOOSER_COLUMNS)
        self.table.setSelectionMode(QAbstractItemView.ExtendedSelection)
        self.table.itemDoubleClicked.connect(lambda item: self.load([self.rows[item.row()].key]))
        layout.addWidget(self.table, 1)
        buttons = QHBoxLayout()
        self.load_button = QPushButton("Load selected")
        self.load_button.setToolTip("Load the selected series (double-click a row to load it)")
        self.load_button.clicked.connect(lambda: self.load())
        self.load_all_button = QPushButton("Load all but localizers")
        self.load_all_button.clicked.connect(lambda: self.load(self.non_localizers()))
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        for b in (self.load_button, self.load_all_button, self.cancel_button):
            buttons.addWidget(b)
        layout.addLayout(buttons)
        self.status = QLabel("Select the series to load")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        self.refresh()

    def refresh(self) -> None:
        fill_table(self.table, [_row_dict(r, r.key in self.loaded) for r in self.rows], CHOOSER_COLUMNS)
        grey = QBrush(QColor(150, 150, 150))
        for i, r in enumerate(self.rows):
            if r.localizer:
                for c in range(self.table.columnCount()):
                    self.table.item(i, c).setForeground(grey)

    def non_localizers(self) -> list[str]:
        return [r.key for r in self.rows if not r.localizer]

    def select(self, keys: list[str]) -> None:
        """Select the rows of the given series keys."""
        self.table.clearSelection()
        mode = self.table.selectionMode()
        self.table.setSelectionMode(QAbstractItemView.MultiSelection)
        for i, r in enumerate(self.rows):
            if r.key in keys:
                self.table.selectRow(i)
        self.table.setSelectionMode(mode)

    def selected(self) -> list[str]:
        rows = sorted({i.row() for i in self.table.selectedIndexes()})
        return [self.rows[i].key for i in rows if i < len(self.rows)]

    def cancel(self) -> None:
        self._cancelled = True

    def load(self, keys: list[str] | None = None):
        """Load the given (else the selected) series in a thread worker; returns the worker (None: nothing to do)."""
        from napari.qt.threading import thread_worker
        from napari.utils import progress as napari_progress

        from ..core import registry

        keys = list(keys) if keys else self.selected()
        if not keys:
            self.status.setText("Select the series to load")
            return None
        self._cancelled = False
        bar = napari_progress(total=0, desc="DICOM load")
        path, scan = self.scan.path, self.scan

        state: dict = {}

        @thread_worker
        def run():
            def progress(done: int, total: int) -> None:
                state["progress"] = (done, total)  # shown by the GUI thread's timer, never from here

            return registry.read(path, scan=scan, series=keys, progress=progress, cancel=lambda: self._cancelled)

        def tick() -> None:
            done_total = state.pop("progress", None)
            if done_total:
                if bar.total != done_total[1]:
                    bar.total = done_total[1]
                bar.n = done_total[0]
                bar.refresh()

        from qtpy.QtCore import QTimer

        timer = QTimer(self)
        timer.timeout.connect(tick)
        timer.start(200)

        def done(objects: list) -> None:
            from .layers import to_layer_data

            bar.close()
            self._busy(False)
            names = []
            for obj in objects:
                for ld in to_layer_data(obj):
                    if len(ld) >= 3 and ld[0] is not None:
                        data, kwargs, layer_type = ld
                        getattr(self.viewer, f"add_{layer_type}")(data, **kwargs)
                        names.append(kwargs.get("name", ""))
            self.loaded.update(keys)
            self.refresh()
            self.status.setText(f"Loaded {len(names)} layer(s)")

        def failed(exc: Exception) -> None:
            bar.close()
            self._busy(False)
            if isinstance(exc, CancelledError):
                self.status.setText("Load cancelled")
            elif isinstance(exc, MedioError):
                self.status.setText(str(exc))
            else:
                raise exc

        worker = run()
        worker.finished.connect(timer.stop)
        worker.returned.connect(done)
        worker.errored.connect(failed)
        self._busy(True)
        self.status.setText(f"Loading {len(keys)} series...")
        self._worker = worker
        worker.start()
        return worker

    def _busy(self, busy: bool) -> None:
        self.cancel_button.setEnabled(busy)
        self.load_button.setEnabled(not busy)
        self.load_all_button.setEnabled(not busy)


def open_series_chooser(viewer: Any, scan: Any, rows: list[SeriesRow], loaded: set | None = None) -> SeriesChooser:
    """Add (or replace) the chooser dock for ``scan``'s folder in ``viewer``'s window."""
    name = f"DICOM series: {Path(os.fspath(scan.path)).name}"
    window = viewer.window
    old = window.dock_widgets.get(name)
    if old is not None:
        window.remove_dock_widget(old)
    widget = SeriesChooser(viewer, scan, rows, loaded)
    window.add_dock_widget(widget, name=name, area="right", tabify=False)
    return widget

"""The "DICOM browser" dock widget: import, browse patients -> studies -> series, load, delete, show header.

Runs imports and loads in napari thread workers (the UI stays live) with a
progress bar in the widget (shown at once, indeterminate until the file count
is known; also in napari's activity panel) and a Cancel button.  Import
problems (file and reason) are listed in a collapsible "Problems" table under
the status line.  The database folder is a persistent
setting (``dicom_database`` in napari-medio's settings).
"""
from __future__ import annotations

import os
from typing import Any

from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ..core.errors import CancelledError, MedioError
from ..dicom.database import DicomDatabase, default_database_folder
from ..dicom.text import display_value, format_da, format_tm
from .columns import fit_columns

PATIENT_COLUMNS = [("name", "Patient name"), ("patient_id", "Patient ID"), ("birth_date", "Birth date"),
                   ("sex", "Sex"), ("studies", "Studies")]
STUDY_COLUMNS = [("date", "Study date"), ("description", "Study description"), ("accession", "Accession"),
                 ("study_id", "Study ID"), ("series", "Series")]
#: Files per committed import batch: progress and new series show at least this often.
IMPORT_BATCH = 64

SERIES_COLUMNS = [("number", "Series #"), ("modality", "Modality"), ("description", "Series description"),
                  ("images", "Images"), ("size", "Size")]


def _fmt(key: str, value: Any) -> str:
    if value is None or value == "":
        return "(no name)" if key == "name" else ""
    if key in ("date", "birth_date"):
        return format_da(value)
    if key == "time":
        return format_tm(value)
    if key == "size":
        v = float(value)
        for unit in ("B", "KB", "MB", "GB"):
            if v < 1024 or unit == "GB":
                return f"{v:.0f} {unit}" if unit == "B" else f"{v:.1f} {unit}"
            v /= 1024
    return display_value(value)


def series_table(columns: list) -> QTableWidget:
    """A read-only, row-selecting table with the given (key, title) columns: the browser's tables.

    Columns fit the dock's width (:func:`~napari_medio.plugin.columns.fit_columns`); the
    name or description column takes the room left.
    """
    t = QTableWidget(0, len(columns))
    t.setHorizontalHeaderLabels([c[1] for c in columns])
    t.setSelectionBehavior(QAbstractItemView.SelectRows)
    t.setSelectionMode(QAbstractItemView.SingleSelection)
    t.setEditTriggers(QAbstractItemView.NoEditTriggers)
    t.setSortingEnabled(False)
    keys = [c[0] for c in columns]
    stretch = next((keys.index(k) for k in ("name", "description") if k in keys), None)
    fit_columns(t, stretch=stretch)
    return t


def fill_table(table: QTableWidget, rows: list[dict], columns: list) -> None:
    """Put ``rows`` (dicts keyed by the column keys) in ``table``, formatted for display."""
    table.blockSignals(True)
    table.clearSelection()
    table.setRowCount(len(rows))
    for r, row in enumerate(rows):
        for c, (key, _) in enumerate(columns):
            text = _fmt(key, row.get(key))
            item = QTableWidgetItem(text)
            if text:
                item.setToolTip(text)
            table.setItem(r, c, item)
    table.blockSignals(False)


class DicomBrowser(QWidget):
    """Dock widget over a :class:`~napari_medio.dicom.database.DicomDatabase`."""

    def __init__(self, napari_viewer: Any = None, database: str | os.PathLike[str] | None = None) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.db: DicomDatabase | None = None
        self._worker: Any = None
        self._cancelled = False
        self._patients: list[dict] = []
        self._studies: list[dict] = []
        self._series: list[dict] = []
        self.problems: list[tuple[str, str]] = []
        self.last_report: Any = None

        layout = QVBoxLayout(self)
        row = QHBoxLayout()
        row.addWidget(QLabel("Database:"))
        self.folder_edit = QLineEdit()
        self.folder_edit.setReadOnly(True)
        row.addWidget(self.folder_edit, 1)
        self.folder_button = QPushButton("Change...")
        self.folder_button.clicked.connect(self._choose_folder)
        row.addWidget(self.folder_button)
        layout.addLayout(row)

        row = QHBoxLayout()
        self.import_folder_button = QPushButton("Import folder...")
        self.import_folder_button.clicked.connect(self._import_folder_dialog)
        self.import_files_button = QPushButton("Import files...")
        self.import_files_button.clicked.connect(self._import_files_dialog)
        self.copy_check = QCheckBox("Copy into database")
        self.copy_check.setToolTip("Copy the files into the database folder (otherwise link them where they are; "
                                   "members of .zip archives are always stored in the database)")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        for w in (self.import_folder_button, self.import_files_button, self.copy_check, self.cancel_button):
            row.addWidget(w)
        layout.addLayout(row)

        self.search_edit = QLineEdit()
        self.search_edit.setPlaceholderText("Search patients, studies, series...")
        self.search_edit.textChanged.connect(lambda _: self.refresh())
        layout.addWidget(self.search_edit)

        splitter = QSplitter(Qt.Vertical)
        self.patient_table = self._table(PATIENT_COLUMNS)
        self.study_table = self._table(STUDY_COLUMNS)
        self.series_table = self._table(SERIES_COLUMNS)
        self.series_table.setSelectionMode(QAbstractItemView.ExtendedSelection)
        for t in (self.patient_table, self.study_table, self.series_table):
            splitter.addWidget(t)
        layout.addWidget(splitter, 1)
        self.patient_table.itemSelectionChanged.connect(lambda: self._patient_changed())
        self.study_table.itemSelectionChanged.connect(self._study_changed)
        self.series_table.itemDoubleClicked.connect(lambda _: self.load_selected())

        row = QHBoxLayout()
        self.load_button = QPushButton("Load")
        self.load_button.clicked.connect(lambda: self.load_selected())
        self.delete_button = QPushButton("Delete")
        self.delete_button.clicked.connect(self.delete_selected)
        self.header_button = QPushButton("Show header")
        self.header_button.clicked.connect(lambda: self.show_header())
        for w in (self.load_button, self.delete_button, self.header_button):
            row.addWidget(w)
        layout.addLayout(row)
        self.progress_bar = QProgressBar()
        self.progress_bar.setTextVisible(True)
        self.progress_bar.hide()
        layout.addWidget(self.progress_bar)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        # Import problems: a collapsible table (file, reason), hidden while there are none.
        self.problems_button = QToolButton()
        self.problems_button.setCheckable(True)
        self.problems_button.setToolButtonStyle(Qt.ToolButtonTextBesideIcon)
        self.problems_button.setArrowType(Qt.RightArrow)
        self.problems_button.toggled.connect(self._toggle_problems)
        self.problems_button.hide()
        layout.addWidget(self.problems_button)
        self.problems_table = QTableWidget(0, 2)
        self.problems_table.setHorizontalHeaderLabels(["File", "Problem"])
        self.problems_table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.problems_table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.problems_table.horizontalHeader().setStretchLastSection(True)
        self.problems_table.verticalHeader().setVisible(False)
        self.problems_table.hide()
        layout.addWidget(self.problems_table)
        self.set_database(database if database is not None else default_database_folder(), persist=False)

    # -- setup ---------------------------------------------------------------------------------
    @staticmethod
    def _table(columns: list) -> QTableWidget:
        return series_table(columns)

    def set_database(self, folder: str | os.PathLike[str], persist: bool = True) -> None:
        """Open (or create) the database in ``folder``; ``persist`` saves it as the setting."""
        if self.db is not None:
            self.db.close()
        try:
            self.db = DicomDatabase(folder)
        except MedioError as exc:
            self._message(str(exc))
            return
        self.folder_edit.setText(os.fspath(folder))
        self.folder_edit.setToolTip(os.fspath(folder))
        self.folder_edit.setCursorPosition(0)
        if persist:
            from ..core.settings import save_settings

            save_settings(dicom_database=os.fspath(folder))
        self.refresh()

    def _choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "DICOM database folder", self.folder_edit.text())
        if folder:
            self.set_database(folder)

    def _message(self, text: str) -> None:
        self.status.setText(text)
        try:
            from napari.utils.notifications import show_info

            show_info(text)
        except Exception:
            pass

    # -- tables --------------------------------------------------------------------------------
    def _fill(self, table: QTableWidget, rows: list[dict], columns: list) -> None:
        fill_table(table, rows, columns)

    def refresh(self) -> None:
        """Re-read the tables (keeping the search and the selected patient, study and series when still there)."""
        if self.db is None:
            return
        keep_patient = [self._patients[r]["id"] for r in self._selected(self.patient_table) if r < len(self._patients)]
        keep_study = [self._studies[r]["uid"] for r in self._selected(self.study_table) if r < len(self._studies)]
        keep_series = self.selected_series()
        search = self.search_edit.text()
        self._patients = self.db.patients(search=search)
        self._fill(self.patient_table, self._patients, PATIENT_COLUMNS)
        if self._patients:
            ids = [p["id"] for p in self._patients]
            self.patient_table.selectRow(ids.index(keep_patient[0]) if keep_patient and keep_patient[0] in ids else 0)
            self._patient_changed(keep_study)
            if keep_series:
                self.select_series(keep_series)
        else:
            self._studies, self._series = [], []
            self._fill(self.study_table, [], STUDY_COLUMNS)
            self._fill(self.series_table, [], SERIES_COLUMNS)

    def _selected(self, table: QTableWidget) -> list[int]:
        return sorted({i.row() for i in table.selectedIndexes()})

    def _patient_changed(self, keep_study: list | None = None) -> None:
        rows = self._selected(self.patient_table)
        if not rows or self.db is None:
            return
        p = self._patients[rows[0]]
        self._studies = self.db.studies(patient=p["id"], search=self.search_edit.text())
        self._fill(self.study_table, self._studies, STUDY_COLUMNS)
        if self._studies:
            uids = [st["uid"] for st in self._studies]
            self.study_table.selectRow(uids.index(keep_study[0]) if keep_study and keep_study[0] in uids else 0)
            self._study_changed()

    def _study_changed(self) -> None:
        rows = self._selected(self.study_table)
        if not rows or self.db is None:
            return
        st = self._studies[rows[0]]
        self._series = self.db.series(study_uid=st["uid"], search=self.search_edit.text())
        self._fill(self.series_table, self._series, SERIES_COLUMNS)

    def selected_series(self) -> list[str]:
        """UIDs of the selected series."""
        return [self._series[r]["uid"] for r in self._selected(self.series_table) if r < len(self._series)]

    def select_series(self, uids: list[str]) -> None:
        self.series_table.clearSelection()
        mode = self.series_table.selectionMode()
        self.series_table.setSelectionMode(QAbstractItemView.MultiSelection)
        for r, s in enumerate(self._series):
            if s["uid"] in uids:
                self.series_table.selectRow(r)
        self.series_table.setSelectionMode(mode)

    # -- import --------------------------------------------------------------------------------
    def _import_folder_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Import DICOM folder")
        if folder:
            self.import_paths([folder], copy=self.copy_check.isChecked())

    def _import_files_dialog(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Import DICOM files")
        if files:
            self.import_paths(files, copy=self.copy_check.isChecked())

    def cancel(self) -> None:
        """Ask the running import or load to stop."""
        self._cancelled = True

    # -- problems --------------------------------------------------------------------------------
    def _toggle_problems(self, shown: bool) -> None:
        self.problems_button.setArrowType(Qt.DownArrow if shown else Qt.RightArrow)
        self.problems_table.setVisible(shown)

    def show_problems(self, problems: list) -> None:
        """List (file, reason) pairs under the status line (collapsed; hidden when there are none)."""
        self.problems = [(str(p), str(r)) for p, r in problems]
        self.problems_table.setRowCount(len(self.problems))
        for r, (path, reason) in enumerate(self.problems):
            item = QTableWidgetItem(path)
            item.setToolTip(path)
            self.problems_table.setItem(r, 0, item)
            item = QTableWidgetItem(reason)
            item.setToolTip(reason)
            self.problems_table.setItem(r, 1, item)
        self.problems_table.resizeColumnToContents(0)
        self.problems_button.setText(f"Problems ({len(self.problems)})")
        self.problems_button.setVisible(bool(self.problems))
        if not self.problems:
            self.problems_button.setChecked(False)
            self.problems_table.hide()

    def _busy(self, busy: bool) -> None:
        self.cancel_button.setEnabled(busy)
        for w in (self.import_folder_button, self.import_files_button, self.load_button, self.delete_button):
            w.setEnabled(not busy)

    def _start(self, work, on_done, label: str):
        """Run ``work(progress, cancel)`` in a thread worker with a napari progress bar; returns the worker."""
        from napari.qt.threading import thread_worker
        from napari.utils import progress as napari_progress

        self._cancelled = False
        bar = napari_progress(total=0, desc=label)
        # The widget's own bar: visible at once, indeterminate (busy) until the count is known.
        self.progress_bar.setRange(0, 0)
        self.progress_bar.setFormat(label)
        self.progress_bar.show()

        state: dict = {}

        def report(done: int, total: int) -> None:
            state["progress"] = (done, total)  # read by a GUI-thread timer

        @thread_worker
        def run():
            return work(report, lambda: self._cancelled)

        worker = run()

        def finished(result):
            bar.close()
            self.progress_bar.hide()
            self._busy(False)
            on_done(result)

        def errored(exc):
            bar.close()
            self.progress_bar.hide()
            self._busy(False)
            if isinstance(exc, CancelledError):
                self._message(f"{label}: cancelled")
            else:
                self._message(f"{label} failed: {exc}")
            self.refresh()

        def tick():
            done_total = state.get("progress")
            if done_total:
                done, total = done_total
                if bar.total != total:
                    bar.total = total
                bar.n = done
                bar.refresh()
                if total > 0:
                    if self.progress_bar.maximum() != total:
                        self.progress_bar.setRange(0, total)
                    self.progress_bar.setValue(done)
                    self.progress_bar.setFormat(f"{label}: %v / %m files")

        from qtpy.QtCore import QTimer

        timer = QTimer(self)
        timer.timeout.connect(tick)
        timer.start(100)
        worker.finished.connect(timer.stop)
        worker.returned.connect(finished)
        worker.errored.connect(errored)
        self._busy(True)
        self._worker = worker
        worker.start()
        return worker

    def import_paths(self, paths: list, copy: bool = False):
        """Import files/folders in a thread worker; the tables fill as series arrive (every 0.5 s at most)."""
        from qtpy.QtCore import QTimer

        folder = self.db.folder if self.db is not None else default_database_folder()
        arrived = {"new": False}

        def work(progress, cancel):
            def on_batch(_report) -> None:
                arrived["new"] = True

            with DicomDatabase(folder) as db:  # its own connection in the worker thread
                return db.import_paths(paths, copy=copy, progress=progress, cancel=cancel,
                                       batch_size=IMPORT_BATCH, on_batch=on_batch)

        def fill_arrived() -> None:
            if arrived["new"]:
                arrived["new"] = False
                self.refresh()

        filler = QTimer(self)
        filler.timeout.connect(fill_arrived)
        filler.start(500)

        def done(report):
            self.last_report = report
            self.show_problems(report.errors)
            zips = f", {report.archives} zip archive(s) stored in the database" if report.archives else ""
            duplicates = max(0, report.scanned - report.added - report.unchanged - report.non_dicom
                             - len(report.errors))
            dup = f", {duplicates} duplicate(s) of an instance already imported" if duplicates else ""
            self._message(f"Imported {report.added} instance(s) ({report.unchanged} unchanged{dup}, "
                          f"{report.non_dicom} non-DICOM skipped{zips}, {len(report.errors)} problem(s)"
                          + (": see Problems below)" if report.errors else ")"))
            self.refresh()

        self.show_problems([])
        worker = self._start(work, done, "DICOM import")
        worker.finished.connect(filler.stop)
        return worker

    # -- load / delete / header ----------------------------------------------------------------
    def load_selected(self, uids: list | None = None):
        """Load the selected series into the viewer (thread worker); returns the worker."""
        uids = list(uids) if uids else self.selected_series()
        if not uids:
            self._message("Select a series to load")
            return None
        folder = self.db.folder if self.db is not None else default_database_folder()

        def work(progress, cancel):
            out = []
            with DicomDatabase(folder) as db:
                for uid in uids:
                    out.extend(db.load_series(uid, progress=progress, cancel=cancel))
            return out

        def done(volumes):
            from .layers import to_layer_data

            for vol in volumes:
                for data, kwargs, layer_type in to_layer_data(vol):
                    if self.viewer is not None:
                        getattr(self.viewer, f"add_{layer_type}")(data, **kwargs)
            self._message(f"Loaded {len(volumes)} volume(s)")

        return self._start(work, done, "DICOM load")

    def delete_selected(self) -> int:
        """Remove the selected series from the database (and their copied files)."""
        uids = self.selected_series()
        if not uids or self.db is None:
            return 0
        n = self.db.delete_series(uids)
        self._message(f"Deleted {len(uids)} series ({n} instance(s))")
        self.refresh()
        return n

    def header_text(self) -> str:
        uids = self.selected_series()
        if not uids or self.db is None:
            return ""
        inst = self.db.instances(uids[0])
        return self.db.header_text(inst[0]["sop_uid"]) if inst else ""

    def show_header(self) -> QDialog | None:
        """A window with every tag of the first instance of the selected series."""
        text = self.header_text()
        if not text:
            self._message("Select a series to show its header")
            return None
        dlg = QDialog(self)
        dlg.setWindowTitle("DICOM header")
        lay = QVBoxLayout(dlg)
        view = QPlainTextEdit(text)
        view.setReadOnly(True)
        view.setLineWrapMode(QPlainTextEdit.NoWrap)
        lay.addWidget(view)
        dlg.resize(800, 600)
        dlg.show()
        self._header_dialog = dlg
        return dlg

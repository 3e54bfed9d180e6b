"""Dock widget "PACS": query / retrieve / send (DIMSE or DICOMweb) and a local C-STORE listener.

Same code as ``medio dicom query|retrieve|send|listen`` (:mod:`napari_medio.dicom.network`).
Servers are ``AE_TITLE@host:port`` or a DICOMweb URL; the list of servers is kept in
the napari-medio settings when available.  Retrieves go into the DICOM database with
progress and Cancel; errors (refused, wrong AE title, server stopped) show as one line.
"""
from __future__ import annotations

from typing import Any

from qtpy.QtWidgets import (
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QVBoxLayout,
    QWidget,
)

from ..core.errors import CancelledError, MedioError
from .columns import TABLE_DOCK_WIDTH, fit_columns, text_item

__all__ = ["PacsWidget"]

_COLUMNS = ("PatientName", "PatientID", "StudyDate", "StudyDescription", "ModalitiesInStudy",
            "NumberOfStudyRelatedInstances", "StudyInstanceUID")
#: Column titles (the DICOM keyword is each header's tooltip).
_TITLES = {"PatientName": "Name", "PatientID": "ID", "StudyDate": "Date",
           "StudyDescription": "Description", "ModalitiesInStudy": "Modalities",
           "NumberOfStudyRelatedInstances": "Images", "StudyInstanceUID": "Study UID"}


class PacsWidget(QWidget):
    """Query a PACS, retrieve studies into the database, send series, run a listener."""

    def __init__(self, napari_viewer: Any = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.viewer = napari_viewer
        self._cancel = False
        self.listener = None
        self.results: list[dict] = []
        layout = QVBoxLayout(self)
        form = QFormLayout()
        self.server = QComboBox(self)
        self.server.setEditable(True)
        self.server.setToolTip("AE_TITLE@host:port (DIMSE) or http://host:port/dicom-web (DICOMweb)")
        self.calling_ae = QLineEdit("MEDIO", self)
        self.database = QLineEdit(self)
        self.database.setPlaceholderText("DICOM database folder (empty: the default database)")
        form.addRow("Server", self.server)
        form.addRow("Our AE title", self.calling_ae)
        form.addRow("Database", self.database)
        self.patient_id = QLineEdit(self)
        self.patient_name = QLineEdit(self)
        self.study_date = QLineEdit(self)
        self.study_date.setPlaceholderText("YYYYMMDD or YYYYMMDD-YYYYMMDD")
        self.modality = QLineEdit(self)
        form.addRow("Patient ID", self.patient_id)
        form.addRow("Patient name", self.patient_name)
        form.addRow("Study date", self.study_date)
        form.addRow("Modality", self.modality)
        self.method = QComboBox(self)
        self.method.addItems(["C-GET", "C-MOVE"])
        self.move_port = QSpinBox(self)
        self.move_port.setRange(0, 65535)
        self.move_port.setValue(11113)
        form.addRow("Retrieve with", self.method)
        form.addRow("C-MOVE port", self.move_port)
        layout.addLayout(form)
        row = QHBoxLayout()
        self.echo_button = QPushButton("Echo", self)
        self.query_button = QPushButton("Query", self)
        self.retrieve_button = QPushButton("Retrieve", self)
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.setEnabled(False)
        for b in (self.echo_button, self.query_button, self.retrieve_button, self.cancel_button):
            row.addWidget(b)
        layout.addLayout(row)
        self.table = QTableWidget(0, len(_COLUMNS), self)
        self.table.setHorizontalHeaderLabels([_TITLES[k] for k in _COLUMNS])
        self.table.setColumnHidden(_COLUMNS.index("StudyInstanceUID"), True)  # in each row's tooltip
        for c, key in enumerate(_COLUMNS):
            self.table.horizontalHeaderItem(c).setToolTip(key)
        self.table.setSelectionBehavior(QTableWidget.SelectRows)
        self.table.setEditTriggers(QTableWidget.NoEditTriggers)
        fit_columns(self.table, stretch=3, min_width=TABLE_DOCK_WIDTH + 40)
        layout.addWidget(self.table)
        send_row = QHBoxLayout()
        self.send_series = QLineEdit(self)
        self.send_series.setPlaceholderText("series UID(s) from the database to send, space separated")
        self.send_button = QPushButton("Send", self)
        send_row.addWidget(self.send_series)
        send_row.addWidget(self.send_button)
        layout.addLayout(send_row)
        listen_row = QHBoxLayout()
        self.listen_port = QSpinBox(self)
        self.listen_port.setRange(0, 65535)
        self.listen_port.setValue(11112)
        self.listen_button = QPushButton("Start listener", self)
        listen_row.addWidget(QLabel("Listener port", self))
        listen_row.addWidget(self.listen_port)
        listen_row.addWidget(self.listen_button)
        layout.addLayout(listen_row)
        self.progress = QProgressBar(self)
        layout.addWidget(self.progress)
        self.status = QLabel("", self)
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        self.echo_button.clicked.connect(self.echo)
        self.query_button.clicked.connect(self.query)
        self.retrieve_button.clicked.connect(self.retrieve)
        self.cancel_button.clicked.connect(lambda: setattr(self, "_cancel", True))
        self.send_button.clicked.connect(self.send)
        self.listen_button.clicked.connect(self.toggle_listener)
        self._load_servers()

    # -- settings ---------------------------------------------------------------------------------
    def _load_servers(self) -> None:
        try:
            from ..core.settings import load_settings

            servers = load_settings().get("pacs_servers") or []
        except Exception:
            servers = []
        for s in servers:
            self.server.addItem(str(s))

    def _remember_server(self, text: str) -> None:
        if self.server.findText(text) < 0:
            self.server.addItem(text)
        try:
            from ..core.settings import load_settings, save_settings

            servers = list(load_settings().get("pacs_servers") or [])
            if text not in servers:
                save_settings(pacs_servers=servers + [text])
        except Exception:
            pass

    # -- helpers -------------------------------------------------------------------------------------
    def client(self):
        from ..dicom.network import connect

        text = self.server.currentText().strip()
        if not text:
            raise MedioError(None, "enter a server: AE_TITLE@host:port or a DICOMweb URL")
        client = connect(text, calling_ae=self.calling_ae.text().strip() or "MEDIO")
        self._remember_server(text)
        return client

    def _db(self):
        from ..dicom.database import DicomDatabase

        return DicomDatabase(self.database.text().strip() or None)

    def _run(self, what: str, fn) -> Any:
        self._cancel = False
        self.cancel_button.setEnabled(True)
        try:
            return fn()
        except CancelledError as exc:
            self.status.setText(f"{what}: {exc.reason}")
        except MedioError as exc:
            self.status.setText(f"{what} failed: {exc}")
        finally:
            self.cancel_button.setEnabled(False)
        return None

    def _progress(self, done: int, total: int) -> None:
        from qtpy.QtWidgets import QApplication

        self.progress.setMaximum(max(total, done, 1))
        self.progress.setValue(done)
        QApplication.processEvents()

    # -- actions ---------------------------------------------------------------------------------------
    def echo(self) -> float | None:
        seconds = self._run("Echo", lambda: self.client().echo())
        if seconds is not None:
            self.status.setText(f"Echo OK ({seconds * 1000:.0f} ms)")
        return seconds

    def query(self) -> list[dict]:
        filters = {"PatientID": self.patient_id.text().strip(), "PatientName": self.patient_name.text().strip(),
                   "StudyDate": self.study_date.text().strip(), "Modality": self.modality.text().strip()}
        rows = self._run("Query", lambda: self.client().query("STUDY", **filters))
        if rows is None:
            return []
        self.show_results(rows)
        self.status.setText(f"{len(rows)} stud{'y' if len(rows) == 1 else 'ies'} found")
        return rows

    def show_results(self, rows: list[dict]) -> None:
        """Fill the results table with query rows (DICOM keyword -> value): dates formatted, absent values empty."""
        from ..dicom.text import display_value, format_da

        self.results = rows
        self.table.setRowCount(len(rows))
        for r, row in enumerate(rows):
            for c, key in enumerate(_COLUMNS):
                value = row.get(key)
                text = format_da(value) if key == "StudyDate" else display_value(value)
                item = text_item(text)
                if key == "StudyDescription":
                    item.setToolTip(f"{text}\nStudy UID: {display_value(row.get('StudyInstanceUID'))}".strip())
                self.table.setItem(r, c, item)

    def retrieve(self, rows: list[int] | None = None) -> Any | None:
        if rows is None or rows is False:
            rows = sorted({i.row() for i in self.table.selectedIndexes()})
        if not rows:
            self.status.setText("select studies to retrieve")
            return None

        def work():
            client = self.client()
            db = self._db()
            done = []
            for r in rows:
                uid = self.results[r]["StudyInstanceUID"]
                kwargs = {}
                if hasattr(client, "node"):
                    kwargs = {"method": "move" if self.method.currentIndex() == 1 else "get",
                              "move_port": self.move_port.value()}
                done.append(client.retrieve(uid, database=db, progress=self._progress,
                                            cancel=lambda: self._cancel, **kwargs))
            return done

        results = self._run("Retrieve", work)
        if results is not None:
            n = sum(r.completed for r in results)
            self.status.setText(f"{n} instance(s) retrieved into the database")
        return results

    def send(self) -> dict | None:
        uids = self.send_series.text().split()
        if not uids:
            self.status.setText("enter series UIDs to send")
            return None

        def work():
            db = self._db()
            files = []
            for uid in uids:
                present, missing = db.instance_files(uid)
                if missing or not present:
                    raise MedioError(None, f"series {uid}: {len(missing)} file(s) missing")
                files += present
            return self.client().send(files, progress=self._progress, cancel=lambda: self._cancel)

        result = self._run("Send", work)
        if result is not None:
            self.status.setText(f"{result['sent']} instance(s) sent"
                                + (f", {len(result['failed'])} failed" if result["failed"] else ""))
        return result

    def toggle_listener(self) -> bool:
        """Start or stop the C-STORE listener (storing into the database); returns whether it runs."""
        from ..dicom.network import StorageListener

        if self.listener is not None:
            self.listener.stop()
            n = len(self.listener.received)
            self.listener = None
            self.listen_button.setText("Start listener")
            self.status.setText(f"listener stopped ({n} instance(s) received)")
            return False
        try:
            listener = StorageListener(ae_title=self.calling_ae.text().strip() or "MEDIO",
                                       port=self.listen_port.value(), database=self._db().folder)
            listener.start()
        except MedioError as exc:
            self.status.setText(f"Listener failed: {exc}")
            return False
        self.listener = listener
        self.listen_button.setText("Stop listener")
        self.status.setText(f"listening as {listener.ae_title} on port {listener.port}")
        return True

    def closeEvent(self, event: Any) -> None:  # noqa: N802
        if self.listener is not None:
            self.listener.stop()
            self.listener = None
        super().closeEvent(event)

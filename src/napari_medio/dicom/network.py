"""PACS access: DIMSE (C-ECHO, C-FIND, C-GET, C-MOVE, C-STORE) and DICOMweb (QIDO, WADO, STOW).

One API for the browser's PACS panel and ``medio dicom query|retrieve|send|listen``:

* :class:`DicomNode` / :class:`DicomWebServer` describe remote servers;
  :func:`connect` gives a :class:`DimseClient` or :class:`DicomWebClient`, both with
  ``echo``, ``query``, ``retrieve`` and ``send``;
* :class:`StorageListener` is a C-STORE SCP that stores what a PACS or scanner pushes
  into a folder and/or a :class:`~napari_medio.dicom.database.DicomDatabase`.

Retrieved instances are written as received (no decoding), each atomically as
``<dest>/<SOPInstanceUID>.dcm``, so a retrieve interrupted by a stopping server or by
Cancel leaves only complete files and re-running it completes the study (instances
already present are skipped by the database import).  Progress callbacks get
``(done, total)`` (total 0 when unknown); cancel callbacks return True to stop.

Faults become :class:`PacsError` (a :class:`~napari_medio.core.errors.MedioError`)
with one clear sentence: connection refused, association rejected (wrong AE title),
server stopped mid-transfer, failed sub-operations, malformed responses.

Receiving (C-GET, C-MOVE and the listener) has two DIMSE backends, chosen by ``backend=`` on
:class:`DimseClient` / :class:`StorageListener` or by ``$NAPARI_MEDIO_DIMSE``:

* ``"medio"`` (default): :mod:`napari_medio.dicom.dimse`, a lean upper layer and DIMSE written
  for this (one socket per association, hand-coded command sets, each data set streamed from the
  receive buffer into its file behind a hand-encoded File Meta header).  pynetdicom spends about
  4 ms of Python per received instance; this path spends a few hundred microseconds and retrieves
  faster than dcmtk's getscu/movescu (docs/performance.md, "DICOM network").  C-GET proposes the
  same presentation contexts as the pynetdicom path (the study's SOP Classes in Study, from one
  C-FIND, else 127 common storage classes, with every transfer syntax and the SCP role), so the
  server sends the same bytes and the files are identical (tested);
* ``"pynetdicom"``: pynetdicom with the tuning below.

C-FIND, C-ECHO and C-STORE (send) always use pynetdicom: one message per instance sent or found,
not the bottleneck.  WADO-RS retrieves stream the multipart answer into files with
:mod:`napari_medio.dicom._wado` (dicomweb-client's session, not its decoder); QIDO and STOW use
dicomweb-client.

pynetdicom tuning (the ``"pynetdicom"`` backend, and C-FIND/C-ECHO/C-STORE): received data sets are
written with the hand-encoded File Meta header and never decoded; C-GET proposes only the study's
SOP classes instead of 127 x 45 presentation contexts, and the C-MOVE destination supports only
those; pynetdicom's per-message log handlers are off unless its debug log is on.  pynetdicom 3.0's
reactors poll with 1 ms sleeps and have no public knob for it, so each association we make or
accept is switched to an event-driven reactor by small subclasses (socket, DUL thread ``run``,
association), swapped in before the association's threads start.  They are used only with
pynetdicom 3.0.x, and ``NAPARI_MEDIO_DIMSE_EVENTS=0`` turns them off.  The faster round trips expose
a race in pynetdicom's reactor pause (a C-STORE response taken by the idle association reactor,
then a DIMSE timeout while sending); the association subclass hands such a response back to the
waiting operation.
"""
from __future__ import annotations

import os
import queue
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Sequence

from ..core.errors import CancelledError, MedioError

__all__ = [
    "PacsError", "DicomNode", "DicomWebServer", "RetrieveResult", "DimseClient", "DicomWebClient",
    "StorageListener", "connect", "QUERY_LEVELS", "DEFAULT_AE_TITLE",
]

DEFAULT_AE_TITLE = "MEDIO"
QUERY_LEVELS = ("PATIENT", "STUDY", "SERIES", "IMAGE")
Progress = Optional[Callable[[int, int], None]]
Cancel = Optional[Callable[[], bool]]

#: Attributes returned by queries at each level (empty = "return this").
_RETURN_KEYS = {
    "PATIENT": ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "NumberOfPatientRelatedStudies"),
    "STUDY": ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyInstanceUID", "StudyDate",
              "StudyTime", "StudyDescription", "AccessionNumber", "StudyID", "ModalitiesInStudy",
              "NumberOfStudyRelatedSeries", "NumberOfStudyRelatedInstances"),
    "SERIES": ("PatientID", "StudyInstanceUID", "SeriesInstanceUID", "SeriesNumber", "SeriesDescription",
               "Modality", "SeriesDate", "NumberOfSeriesRelatedInstances"),
    "IMAGE": ("PatientID", "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID",
              "InstanceNumber"),
}


class PacsError(MedioError):
    """A PACS operation failed: names the server and what went wrong."""


@dataclass
class DicomNode:
    """A remote DIMSE node (AE title, host, port)."""

    ae_title: str
    host: str
    port: int
    name: str = ""

    @property
    def label(self) -> str:
        return f"{self.ae_title}@{self.host}:{self.port}"

    def to_dict(self) -> dict:
        return {"type": "dimse", "ae_title": self.ae_title, "host": self.host, "port": int(self.port), "name": self.name}


@dataclass
class DicomWebServer:
    """A DICOMweb server (its base URL, e.g. ``http://host:8042/dicom-web``)."""

    url: str
    name: str = ""
    headers: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        return self.url

    def to_dict(self) -> dict:
        return {"type": "dicomweb", "url": self.url, "name": self.name}


@dataclass
class RetrieveResult:
    """What a retrieve brought: files written, counts and warnings."""

    files: list = field(default_factory=list)
    completed: int = 0
    failed: int = 0
    warning: int = 0
    seconds: float = 0.0
    bytes: int = 0
    imported: Optional[dict] = None

    def to_dict(self) -> dict:
        return {"files": [os.fspath(f) for f in self.files], "completed": self.completed, "failed": self.failed,
                "warning": self.warning, "seconds": round(self.seconds, 3), "bytes": self.bytes,
                "imported": self.imported}


def connect(server: "DicomNode | DicomWebServer | dict | str", calling_ae: str = DEFAULT_AE_TITLE,
            **options: Any) -> "DimseClient | DicomWebClient":
    """A client for a server description (a node, a DICOMweb URL, or their dicts)."""
    if isinstance(server, str):
        if server.startswith(("http://", "https://")):
            return DicomWebClient(DicomWebServer(server), **options)
        server = parse_node(server)
    if isinstance(server, dict):
        if server.get("type") == "dicomweb" or "url" in server:
            return DicomWebClient(DicomWebServer(server["url"], server.get("name", "")), **options)
        server = DicomNode(server["ae_title"], server["host"], int(server["port"]), server.get("name", ""))
    if isinstance(server, DicomWebServer):
        return DicomWebClient(server, **options)
    return DimseClient(server, calling_ae=calling_ae, **options)


def parse_node(text: str) -> DicomNode:
    """``AE@host:port`` -> DicomNode."""
    try:
        ae, rest = text.split("@", 1)
        host, port = rest.rsplit(":", 1)
        return DicomNode(ae, host, int(port))
    except ValueError:
        raise PacsError(None, f"not a DICOM node {text!r}: expected AE_TITLE@host:port or a DICOMweb URL") from None


def _query_keys(level: str, filters: dict) -> dict:
    level = level.upper()
    if level not in QUERY_LEVELS:
        raise PacsError(None, f"query level must be one of {', '.join(QUERY_LEVELS)}, not {level!r}")
    keys = {k: "" for k in _RETURN_KEYS[level]}
    for k, v in filters.items():
        if v is None or v == "":
            continue
        if k == "Modality" and level == "STUDY":
            k = "ModalitiesInStudy"
        keys[k] = v
    return keys


def _part10_header(sop_class_uid: str, sop_instance_uid: str, transfer_syntax: str) -> bytes:
    """Preamble, ``DICM`` and File Meta for a received data set (the same bytes on both DIMSE paths)."""
    from .dimse import part10_header

    return part10_header(sop_class_uid, sop_instance_uid, transfer_syntax)


def _write_received(folder: Path, event: Any) -> tuple[Path, int]:
    """Write a received C-STORE data set as a Part 10 file exactly as it arrived (no decoding, no copy
    of the data set), atomically as ``<folder>/<SOPInstanceUID>.dcm``; returns (path, bytes)."""
    req = event.request
    uid = str(req.AffectedSOPInstanceUID).strip("\0 ")
    header = _part10_header(str(req.AffectedSOPClassUID).strip("\0 "), uid, str(event.context.transfer_syntax))
    data = req.DataSet.getbuffer()
    try:
        target = folder / f"{uid}.dcm"
        tmp = folder / f".medio-{uuid.uuid4().hex[:12]}-{uid}.dcm.part"
        with open(tmp, "wb") as fh:
            fh.write(header)
            fh.write(data)
        os.replace(tmp, target)
        return target, len(header) + data.nbytes
    finally:
        data.release()


def _import_into(database: Any, files: Sequence[Path], copy: bool = False) -> Optional[dict]:
    """Import files into a database (``copy``: the files are temporary, the database takes them over)."""
    if database is None or not files:
        return None
    own = isinstance(database, (str, os.PathLike))
    if own:
        from .database import DicomDatabase

        database = DicomDatabase(database)
    try:
        paths = [os.fspath(f) for f in files]
        adopt = getattr(database, "adopt_files", None) if copy else None
        report = adopt(paths) if adopt is not None else database.import_paths(paths, copy=copy)
    finally:
        if own:
            database.close()
    return report.to_dict() if hasattr(report, "to_dict") else None


def _destination(dest: "str | os.PathLike[str] | None", database: Any) -> tuple[Path, bool]:
    """(folder to write into, whether it is a temporary folder whose files the database copies)."""
    if dest is not None:
        folder = Path(dest)
        folder.mkdir(parents=True, exist_ok=True)
        return folder, False
    if database is None:
        raise PacsError(None, "retrieve needs a destination folder or a database")
    import tempfile

    return Path(tempfile.mkdtemp(prefix="medio-received-")), True


def _retrieving(database: Any, dest: Any, run: Callable[[Path], RetrieveResult]) -> RetrieveResult:
    """Run a retrieve into ``dest`` (or a temporary folder) and import what arrived into ``database``,
    also when the transfer fails or is cancelled, so the database holds every complete instance received."""
    import shutil

    folder, temporary = _destination(dest, database)
    try:
        try:
            result = run(folder)
        except (PacsError, CancelledError):
            _import_into(database, sorted(folder.glob("*.dcm")), copy=temporary)
            raise
        result.imported = _import_into(database, result.files, copy=temporary)
        if temporary:
            result.files = []
        return result
    finally:
        if temporary:
            shutil.rmtree(folder, ignore_errors=True)


# -- DIMSE --------------------------------------------------------------------------------------------
DIMSE_BACKENDS = ("medio", "pynetdicom")


def _dimse_backend(backend: Optional[str] = None) -> str:
    """The receive path for C-GET, C-MOVE and the listener: ``"medio"`` (:mod:`.dimse`, the default) or
    ``"pynetdicom"``; ``backend`` if given, else ``$NAPARI_MEDIO_DIMSE``."""
    name = (backend or os.environ.get("NAPARI_MEDIO_DIMSE") or "medio").strip().lower()
    if name not in DIMSE_BACKENDS:
        raise PacsError(None, f"DIMSE backend must be one of {', '.join(DIMSE_BACKENDS)}, not {name!r}")
    return name


@dataclass
class _Final:
    """The final C-GET/C-MOVE response, whichever path received it (None counts: not sent)."""

    code: int
    completed: Optional[int] = None
    failed: int = 0
    warning: int = 0

    @classmethod
    def of(cls, status: Any) -> "Optional[_Final]":
        if status is None:
            return None
        if hasattr(status, "us"):  # a dimse.Command
            from . import dimse

            return cls(status.status, status.us(dimse.COMPLETED) if dimse.COMPLETED in status else None,
                       status.us(dimse.FAILED), status.us(dimse.WARNING))
        done = status.get("NumberOfCompletedSuboperations")
        return cls(int(status.Status), int(done) if done is not None else None,
                   int(status.get("NumberOfFailedSuboperations", 0) or 0),
                   int(status.get("NumberOfWarningSuboperations", 0) or 0))


class DimseClient:
    """DIMSE service user for one remote node (a new association per operation).

    ``backend`` chooses the receive path of C-GET and C-MOVE (see :func:`_dimse_backend`); C-FIND,
    C-ECHO and C-STORE (send) use pynetdicom on both."""

    def __init__(self, node: DicomNode, calling_ae: str = DEFAULT_AE_TITLE, timeout: float = 30.0,
                 max_pdu: int = 0, backend: Optional[str] = None) -> None:
        self.node = node
        self.calling_ae = calling_ae
        self.timeout = float(timeout)
        self.max_pdu = int(max_pdu)
        self.backend = _dimse_backend(backend)

    # -- association ------------------------------------------------------------------------------
    def _ae(self, contexts: Sequence[str] = (), storage_scp: bool = False) -> Any:
        ae = _medio_ae(self.calling_ae)
        ae.acse_timeout = self.timeout
        ae.dimse_timeout = self.timeout
        ae.network_timeout = self.timeout
        ae.connection_timeout = min(self.timeout, 10.0)
        ae.maximum_pdu_size = self.max_pdu
        for c in contexts:
            ae.add_requested_context(c)
        return ae

    def _associate(self, ae: Any, ext_neg: Optional[list] = None, evt_handlers: Optional[list] = None) -> Any:
        from pynetdicom import evt

        seen: dict = {}

        def on_acse(event: Any) -> None:
            prim = getattr(event, "primitive", None)
            if getattr(prim, "result", None) in (0x01, 0x02):
                seen["reason"] = getattr(prim, "reason_str", "")
                seen["source"] = getattr(prim, "source_str", "")

        handlers = list(evt_handlers or []) + [(evt.EVT_ACSE_RECV, on_acse), (evt.EVT_CONN_OPEN, _conn_open)]
        try:
            assoc = ae.associate(self.node.host, int(self.node.port), ae_title=self.node.ae_title,
                                 ext_neg=ext_neg, evt_handlers=handlers, max_pdu=self.max_pdu)
        except Exception as exc:  # socket-level failure
            raise PacsError(None, f"cannot connect to {self.node.label}: {exc}") from None
        if assoc.is_established:
            return assoc
        if assoc.is_rejected:
            reason = seen.get("reason") or "rejected"
            raise PacsError(None, f"{self.node.label} rejected the association: {reason} "
                                  f"(check the AE titles: calling {self.calling_ae!r}, called {self.node.ae_title!r})")
        if not _reachable(self.node.host, int(self.node.port)):
            raise PacsError(None, f"cannot connect to {self.node.label}: connection refused "
                                  "(is the server running and the port right?)")
        if assoc.is_aborted:
            raise PacsError(None, f"{self.node.label} aborted the association (is {self.calling_ae!r} a known "
                                  "modality there?)")
        raise PacsError(None, f"cannot connect to {self.node.label}: connection refused or timed out "
                              "(is the server running and the port right?)")

    def echo(self) -> float:
        """C-ECHO; returns the round trip in seconds."""
        from pynetdicom.sop_class import Verification

        ae = self._ae([Verification])
        t0 = time.perf_counter()
        assoc = self._associate(ae)
        try:
            status = assoc.send_c_echo()
        finally:
            assoc.release()
        _check_status(status, f"C-ECHO to {self.node.label}")
        return time.perf_counter() - t0

    # -- C-FIND -----------------------------------------------------------------------------------------
    def query(self, level: str = "STUDY", **filters: Any) -> list[dict]:
        """C-FIND (Study Root) at ``level``; ``filters`` are DICOM keywords (wildcards, date ranges)."""
        from pydicom.dataset import Dataset
        from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind as FIND

        keys = _query_keys(level, filters)
        if level.upper() == "PATIENT":
            from pynetdicom.sop_class import PatientRootQueryRetrieveInformationModelFind as FIND  # noqa: N811
        ds = Dataset()
        ds.QueryRetrieveLevel = level.upper()
        for k, v in keys.items():
            setattr(ds, k, v)
        ae = self._ae([FIND])
        assoc = self._associate(ae)
        results: list[dict] = []
        try:
            for status, identifier in assoc.send_c_find(ds, FIND):
                if not status:
                    raise PacsError(None, f"C-FIND to {self.node.label}: the connection was lost (server stopped?)")
                code = int(status.Status)
                if code in (0xFF00, 0xFF01) and identifier is not None:
                    results.append(_plain(identifier, keys))
                elif code != 0x0000:
                    raise PacsError(None, f"C-FIND to {self.node.label} failed with status 0x{code:04X}")
        finally:
            if assoc.is_established:
                assoc.release()
        return results

    # -- C-GET --------------------------------------------------------------------------------------------
    def retrieve(self, study_uid: str, series_uid: Optional[str] = None, *, dest: Any = None, database: Any = None,
                 method: str = "get", move_port: int = 0, sop_uids: Sequence[str] = (), progress: Progress = None,
                 cancel: Cancel = None) -> RetrieveResult:
        """C-GET (default) or C-MOVE a study, series or instances into ``dest`` and/or ``database``."""
        if method.lower() not in ("get", "move"):
            raise PacsError(None, f"retrieve method must be 'get' or 'move', not {method!r}")

        def run(folder: Path) -> RetrieveResult:
            lean = self.backend == "medio"
            if method.lower() == "move":
                move = self._move_lean if lean else self._move
                return move(study_uid, series_uid, sop_uids, folder, move_port, progress, cancel)
            get = self._get_lean if lean else self._get
            return get(study_uid, series_uid, sop_uids, folder, progress, cancel)

        return _retrieving(database, dest, run)

    def _identifier(self, study_uid: str, series_uid: Optional[str], sop_uids: Sequence[str]) -> Any:
        from pydicom.dataset import Dataset

        ds = Dataset()
        ds.StudyInstanceUID = study_uid
        ds.QueryRetrieveLevel = "STUDY"
        if series_uid:
            ds.SeriesInstanceUID = series_uid
            ds.QueryRetrieveLevel = "SERIES"
        if sop_uids:
            if not series_uid:
                raise PacsError(None, "retrieving instances needs their series UID")
            ds.SOPInstanceUID = list(sop_uids)
            ds.QueryRetrieveLevel = "IMAGE"
        return ds

    @staticmethod
    def _sop_classes_query(study_uid: str) -> Any:
        """The C-FIND identifier asking a study's SOP Classes in Study."""
        from pydicom.dataset import Dataset

        ds = Dataset()
        ds.QueryRetrieveLevel = "STUDY"
        ds.StudyInstanceUID = study_uid
        ds.SOPClassesInStudy = ""
        return ds

    @staticmethod
    def _sop_classes_of(identifier: Any) -> list[str]:
        """The SOP Class UIDs a C-FIND answer's SOPClassesInStudy lists."""
        value = identifier.get("SOPClassesInStudy")
        values = [value] if isinstance(value, str) else list(value or [])
        return [str(v).strip("\0 ") for v in values if str(v).strip("\0 ")]

    def _study_sop_classes(self, study_uid: str) -> list[str]:
        """The study's SOP Classes in Study (C-FIND), or [] when the server does not say (or fails)."""
        from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind as FIND

        ds = self._sop_classes_query(study_uid)
        found: list[str] = []
        try:
            assoc = self._associate(self._ae([FIND]))
        except PacsError:
            return []
        try:
            for status, identifier in assoc.send_c_find(ds, FIND):
                if status and int(status.Status) in (0xFF00, 0xFF01) and identifier is not None:
                    found += self._sop_classes_of(identifier)
        except Exception:
            return []
        finally:
            if assoc.is_established:
                assoc.release()
        return list(dict.fromkeys(found))

    def _store_handler(self, folder: Path, state: dict, cancel: Cancel, progress: Progress) -> Callable:
        def handle(event: Any) -> int:
            if cancel is not None and cancel():
                state["cancelled"] = True
                return 0xA700  # refuse: the sender stops
            try:
                path, size = _write_received(folder, event)
            except Exception as exc:  # a malformed instance or a full disk: report, keep going
                state.setdefault("errors", []).append(str(exc))
                return 0xC210
            with state["lock"]:
                state["files"].append(path)
                state["bytes"] += size
                done = len(state["files"])
            if progress is not None:
                progress(done, state.get("total", 0))
            return 0x0000

        return handle

    def _get(self, study_uid, series_uid, sop_uids, folder, progress, cancel) -> RetrieveResult:
        from pynetdicom import StoragePresentationContexts, build_role, evt
        from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelGet as GET

        t0 = time.perf_counter()
        ae = self._ae([GET])
        roles = []
        # C-GET needs the storage contexts in the same association (128 max, one is GET): the study's SOP
        # classes when the server says which, else the first 127 storage classes (a 400 kB A-ASSOCIATE-RQ
        # that costs pynetdicom and the server ~0.4 s to build, copy and negotiate).
        classes = self._study_sop_classes(study_uid)[:127] or [cx.abstract_syntax
                                                                for cx in StoragePresentationContexts[:127]]
        for uid in classes:
            ae.add_requested_context(uid, _transfer_syntaxes())
            roles.append(build_role(uid, scp_role=True))
        state: dict = {"files": [], "bytes": 0, "lock": threading.Lock(), "total": 0}
        handlers = [(evt.EVT_C_STORE, self._store_handler(folder, state, cancel, progress))]
        assoc = self._associate(ae, ext_neg=roles, evt_handlers=handlers)
        result = RetrieveResult()
        final = None
        try:
            for status, _ in assoc.send_c_get(self._identifier(study_uid, series_uid, sop_uids), GET):
                if not status:
                    final = None  # the association ended without a final response
                    break
                final = status
                remaining = int(status.get("NumberOfRemainingSuboperations", 0) or 0)
                done = int(status.get("NumberOfCompletedSuboperations", 0) or 0)
                state["total"] = remaining + done + int(status.get("NumberOfFailedSuboperations", 0) or 0) \
                    + int(status.get("NumberOfWarningSuboperations", 0) or 0) or state["total"]
                if cancel is not None and cancel():
                    state["cancelled"] = True
                    assoc.abort()
                    break
        finally:
            if assoc.is_established:
                assoc.release()
        return self._finish(result, state, final, folder, t0, "C-GET")

    def _finish(self, result: RetrieveResult, state: dict, final: Any, folder: Path, t0: float,
                op: str, lost: str = "the connection was lost (server stopped?)") -> RetrieveResult:
        final = _Final.of(final)
        result.files = list(state["files"])
        result.bytes = state["bytes"]
        result.seconds = time.perf_counter() - t0
        if state.get("cancelled"):
            raise CancelledError(folder, f"{op} cancelled after {len(result.files)} instance(s); the files "
                                         "received are kept and retrieving again completes the study")
        if final is None or final.code in (0xFF00, 0xFF01):
            raise PacsError(None, f"{op} from {self.node.label} stopped after {len(result.files)} instance(s): "
                                  f"{lost}; received files are kept in {folder}, retrieving again completes the study")
        code = final.code
        result.completed = final.completed or len(result.files)
        result.failed = final.failed
        result.warning = final.warning
        if code in (0xA701, 0xA702, 0xA900, 0xC000) or (code & 0xF000) == 0xC000 or code == 0xA801:
            why = {0xA801: "the move destination AE title is unknown to the server"}.get(code, "")
            raise PacsError(None, f"{op} from {self.node.label} failed with status 0x{code:04X}"
                                  f"{': ' + why if why else ''} ({len(result.files)} instance(s) received)")
        if code == 0xB000 and result.failed:
            raise PacsError(None, f"{op} from {self.node.label}: {result.failed} instance(s) failed, "
                                  f"{len(result.files)} received")
        return result

    # -- C-MOVE ---------------------------------------------------------------------------------------------
    def _move(self, study_uid, series_uid, sop_uids, folder, move_port, progress, cancel) -> RetrieveResult:
        from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelMove as MOVE

        t0 = time.perf_counter()
        state: dict = {"files": [], "bytes": 0, "lock": threading.Lock(), "total": 0}
        listener = StorageListener(ae_title=self.calling_ae, port=move_port, folder=folder, write_only=True,
                                   host="0.0.0.0", sop_classes=self._study_sop_classes(study_uid),
                                   backend="pynetdicom")
        listener.handler = self._store_handler(folder, state, cancel, progress)
        listener.start()
        try:
            ae = self._ae([MOVE])
            assoc = self._associate(ae)
            final = None
            try:
                for status, _ in assoc.send_c_move(self._identifier(study_uid, series_uid, sop_uids),
                                                   self.calling_ae, MOVE):
                    if not status:
                        final = None  # the association ended without a final response
                        break
                    final = status
                    remaining = int(status.get("NumberOfRemainingSuboperations", 0) or 0)
                    done = int(status.get("NumberOfCompletedSuboperations", 0) or 0)
                    state["total"] = remaining + done or state["total"]
                    if cancel is not None and cancel():
                        state["cancelled"] = True
                        assoc.abort()
                        break
            finally:
                if assoc.is_established:
                    assoc.release()
        finally:
            listener.stop()
        return self._finish(RetrieveResult(), state, final, folder, t0, "C-MOVE")

    # -- C-GET / C-MOVE on the lean path (dimse.py) --------------------------------------------------------------
    def _lean_associate(self, contexts: Sequence[tuple], roles: Sequence[tuple] = ()) -> Any:
        """An association by :mod:`.dimse`, its failures as one-sentence PacsErrors."""
        from . import dimse

        try:
            return dimse.associate(self.node.host, int(self.node.port), self.node.ae_title, self.calling_ae, contexts,
                                   roles=roles, timeout=self.timeout, connect_timeout=min(self.timeout, 10.0),
                                   max_pdu=self.max_pdu)
        except dimse.Refused as exc:
            raise PacsError(None, f"cannot connect to {self.node.label}: connection refused or unreachable ({exc}; "
                                  "is the server running and the port right?)") from None
        except dimse.NotAssociated as exc:
            if exc.how == "rejected":
                raise PacsError(None, f"{self.node.label} rejected the association: {exc.reason} (check the AE "
                                      f"titles: calling {self.calling_ae!r}, called {self.node.ae_title!r})") from None
            if exc.how == "timed out":
                raise PacsError(None, f"cannot connect to {self.node.label}: {exc.reason}") from None
            raise PacsError(None, f"{self.node.label} aborted the association (is {self.calling_ae!r} a known "
                                  f"modality there?{'; ' + exc.reason if exc.reason else ''})") from None

    def _study_sop_classes_lean(self, study_uid: str) -> list[str]:
        """:meth:`_study_sop_classes` over a lean association (one C-FIND)."""
        from . import dimse

        ds = self._sop_classes_query(study_uid)
        found: list[str] = []
        try:
            assoc = self._lean_associate([(dimse.FIND_STUDY_ROOT, [dimse.IMPLICIT_LE, dimse.EXPLICIT_LE])])
        except PacsError:
            return []
        ok = False
        try:
            for status, identifier in assoc.c_find(ds):
                if status in (0xFF00, 0xFF01) and identifier is not None:
                    found += self._sop_classes_of(identifier)
            ok = True
        except Exception:
            return []
        finally:
            if ok:
                assoc.release()
            else:
                assoc.abort()
        return list(dict.fromkeys(found))

    def _lean_retrieve(self, op: str, assoc: Any, run: Callable[[], Any], state: dict, folder: Path,
                       t0: float) -> RetrieveResult:
        """Run a C-GET/C-MOVE on a lean association; its faults become PacsError/CancelledError."""
        from . import dimse

        final, lost = None, "the connection was lost (server stopped?)"
        try:
            final = run()
        except dimse.Stopped:
            state["cancelled"] = True
        except dimse.Malformed as exc:
            assoc.close()
            raise PacsError(None, f"{op} from {self.node.label} stopped after {len(state['files'])} instance(s): the "
                                  f"server sent malformed data ({exc}); received files are kept in {folder}, "
                                  "retrieving again completes the study") from None
        except dimse.Timeout as exc:
            assoc.abort()
            lost = f"{exc} (server stalled?)"
        except dimse.Aborted as exc:
            if state["files"]:
                lost = f"the server aborted the association ({exc.why}; server stopped?)"
            else:  # at once: Orthanc & co. answer a request from an AE title they do not know so
                lost = (f"the server aborted the association ({exc.why}) instead of answering: is "
                        f"{self.calling_ae!r} a known modality there, allowed to {op}?")
        except dimse.ConnectionLost:
            pass
        finally:
            if final is not None:
                assoc.release(min(self.timeout, 5.0))
            else:
                assoc.close()
        return self._finish(RetrieveResult(), state, final, folder, t0, op, lost)

    def _counting(self, state: dict, progress: Progress, with_failed: bool) -> tuple:
        """(on_stored, on_pending) callbacks that keep ``state`` and call ``progress``."""
        from . import dimse

        lock = state["lock"]

        def on_stored(path: Path, size: int) -> None:
            with lock:
                state["files"].append(path)
                state["bytes"] += size
                done = len(state["files"])
            if progress is not None:
                progress(done, state.get("total", 0))

        def on_pending(cmd: Any) -> None:
            total = cmd.us(dimse.REMAINING) + cmd.us(dimse.COMPLETED)
            if with_failed:
                total += cmd.us(dimse.FAILED) + cmd.us(dimse.WARNING)
            state["total"] = total or state["total"]

        return on_stored, on_pending

    def _get_lean(self, study_uid, series_uid, sop_uids, folder, progress, cancel) -> RetrieveResult:
        from pynetdicom import StoragePresentationContexts

        from . import dimse

        t0 = time.perf_counter()
        identifier = self._identifier(study_uid, series_uid, sop_uids)
        # the same presentation contexts as the pynetdicom path, so the server picks the same transfer syntax
        classes = self._study_sop_classes_lean(study_uid)[:127] or [cx.abstract_syntax
                                                                     for cx in StoragePresentationContexts[:127]]
        syntaxes = _transfer_syntaxes()
        contexts = [(dimse.GET_STUDY_ROOT, [dimse.IMPLICIT_LE, dimse.EXPLICIT_LE])] + [(c, syntaxes) for c in classes]
        roles = [(c, 0, 1) for c in classes]
        state: dict = {"files": [], "bytes": 0, "lock": threading.Lock(), "total": 0}
        on_stored, on_pending = self._counting(state, progress, with_failed=True)
        errors = state.setdefault("errors", [])
        assoc = self._lean_associate(contexts, roles)
        return self._lean_retrieve("C-GET", assoc, lambda: assoc.retrieve(
            "get", identifier, folder, on_stored=on_stored, on_pending=on_pending, should_stop=cancel,
            on_store_error=errors.append), state, folder, t0)

    def _move_lean(self, study_uid, series_uid, sop_uids, folder, move_port, progress, cancel) -> RetrieveResult:
        from . import dimse

        t0 = time.perf_counter()
        identifier = self._identifier(study_uid, series_uid, sop_uids)
        state: dict = {"files": [], "bytes": 0, "lock": threading.Lock(), "total": 0}
        on_stored, on_pending = self._counting(state, progress, with_failed=False)

        def stop() -> bool:
            if state.get("cancelled") or (cancel is not None and cancel()):
                state["cancelled"] = True
            return bool(state.get("cancelled"))

        scp = dimse.StoreSCP(self.calling_ae, move_port, folder, host="0.0.0.0",
                             sop_classes=self._study_sop_classes_lean(study_uid),
                             storage_classes=_storage_classes(), transfer_syntaxes=_transfer_syntaxes(),
                             on_stored=on_stored, should_stop=stop if cancel is not None else None,
                             on_error=state.setdefault("errors", []).append, timeout=max(self.timeout, 60.0))
        try:
            scp.start()
        except OSError as exc:
            raise PacsError(None, f"cannot listen on port {move_port} for the C-MOVE: {exc.strerror or exc}") from None
        try:
            assoc = self._lean_associate([(dimse.MOVE_STUDY_ROOT, [dimse.IMPLICIT_LE, dimse.EXPLICIT_LE])])
            assoc.chan.activity = lambda: scp.last_activity  # the sub-operations keep the C-MOVE alive
            return self._lean_retrieve("C-MOVE", assoc, lambda: assoc.retrieve(
                "move", identifier, folder, destination=self.calling_ae, on_pending=on_pending,
                should_stop=stop), state, folder, t0)
        finally:
            scp.stop()

    # -- C-STORE ------------------------------------------------------------------------------------------------
    def send(self, files: Iterable["str | os.PathLike[str]"], progress: Progress = None,
             cancel: Cancel = None) -> dict:
        """C-STORE files to the node (one association); returns ``{"sent", "failed": {path: reason}}``."""
        import pydicom

        paths = [Path(f) for f in files]
        classes: dict[str, set] = {}
        for p in paths:
            try:
                ds = pydicom.dcmread(p, stop_before_pixels=True, specific_tags=["SOPClassUID"])
                classes.setdefault(str(ds.SOPClassUID), set()).add(str(ds.file_meta.TransferSyntaxUID))
            except Exception as exc:
                raise PacsError(p, f"not a DICOM file to send: {exc}") from None
        if len(classes) > 127:
            raise PacsError(None, "too many different SOP classes for one association")
        ae = self._ae()
        for sop, syntaxes in classes.items():
            ae.add_requested_context(sop, sorted(syntaxes | {"1.2.840.10008.1.2.1", "1.2.840.10008.1.2"}))
        assoc = self._associate(ae)
        sent, failed = 0, {}
        try:
            for n, p in enumerate(paths):
                if cancel is not None and cancel():
                    raise CancelledError(p, f"send cancelled after {sent} of {len(paths)} instance(s)")
                status = assoc.send_c_store(p)
                if not status:
                    raise PacsError(p, f"C-STORE to {self.node.label}: connection lost after {sent} instance(s) "
                                       "(server stopped?)")
                code = int(status.Status)
                if code in (0x0000, 0xB000, 0xB007, 0xB006):
                    sent += 1
                else:
                    failed[os.fspath(p)] = f"status 0x{code:04X}"
                if progress is not None:
                    progress(n + 1, len(paths))
        finally:
            if assoc.is_established:
                assoc.release()
        return {"sent": sent, "failed": failed}


def _reachable(host: str, port: int, timeout: float = 3.0) -> bool:
    import socket

    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _no_delay(event: Any) -> None:
    """Send small PDUs at once (TCP_NODELAY): without it every DIMSE message waits ~40 ms for a delayed ACK."""
    import socket

    try:
        sock = event.assoc.dul.socket.socket
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except Exception:
        pass


# -- pynetdicom tuning ----------------------------------------------------------------------------------------
# pynetdicom's DUL reactor polls: each loop either sends one queued primitive or reads one PDU, and when
# neither was there it sleeps ``_run_loop_delay`` (1 ms, plus the wait for the GIL); it also reads each
# PDU 4 KiB per ``recv``.  A retrieve stalled in that sleep several times per image (between PDUs, and
# before our C-STORE-RSP went out).  pynetdicom has no public knob for it (the documented
# ``AssociationSocket.select_timeout`` is not used by ``ready``), so for the version we checked (3.0.x)
# each association is switched to an event-driven reactor before its threads start, without touching
# pynetdicom's code (``_event_classes``):
#
# * its socket becomes an ``EventSocket`` (AssociationSocket subclass): ``ready`` *blocks* in ``select``
#   on the TCP socket and on a wake-up socket pair (at most ``_WAIT`` s, which bounds the ARTIM/idle
#   timer checks and the end of the thread), ``recv`` reads a whole PDU with ``recv_into``;
# * its two inbound queues (primitives from the service user, state-machine events) become
#   :class:`_WakingQueue`\ s that poke the wake-up pair when another thread puts into them;
# * its DUL provider becomes an ``EventDUL`` whose ``Thread.run`` is pynetdicom 3.0's ``run_reactor``
#   without the idle sleep (the wait is in ``ready``);
# * a requestor association becomes an ``EventAssociation``: it fixes the reactor-pause race that the
#   faster round trips expose (see its docstring) -- the timeouts of the earlier "no sleep" experiment.
#
# Requestors get it through ``_medio_ae`` (``AE._create_socket``), acceptors (our C-STORE SCP) through
# an ``EVT_CONN_OPEN`` handler, which pynetdicom calls before starting the association's threads.  Any
# failure while switching keeps pynetdicom's polling reactor; so do another pynetdicom version and
# ``NAPARI_MEDIO_DIMSE_EVENTS=0``.
_WAIT = 0.005


def _events_wanted() -> bool:
    import pynetdicom

    return os.environ.get("NAPARI_MEDIO_DIMSE_EVENTS", "1") != "0" and pynetdicom.__version__.startswith("3.0.")


def _quiet_pynetdicom() -> None:
    """No per-message standard log handlers (pynetdicom formats every PDU and DIMSE message for them,
    ~1 ms per image) unless someone asked for pynetdicom's debug log."""
    import logging

    from pynetdicom import _config

    if not logging.getLogger("pynetdicom").isEnabledFor(logging.DEBUG):
        _config.LOG_HANDLER_LEVEL = "none"


class _WakingQueue(queue.Queue):
    """A queue that wakes its association's reactor when another thread puts into it."""

    def __init__(self, wake: Callable[[], None], reactor: threading.Thread) -> None:
        super().__init__()
        self._wake = wake
        self._reactor = reactor

    def put(self, item: Any, block: bool = True, timeout: Optional[float] = None) -> None:
        super().put(item, block, timeout)
        if threading.current_thread() is not self._reactor:  # the reactor itself looks before it waits
            self._wake()


def _event_classes() -> tuple:
    """(EventSocket, EventDUL, EventAssociation): subclasses of pynetdicom's AssociationSocket,
    DULServiceProvider and Association."""
    global _EVENT_CLASSES
    if _EVENT_CLASSES is not None:
        return _EVENT_CLASSES
    import select
    import socket

    from pynetdicom.transport import AssociationSocket

    class EventSocket(AssociationSocket):
        """An AssociationSocket whose ``ready`` waits for data (or a wake-up) instead of polling."""

        def _arm(self) -> None:
            self._wake_r, self._wake_w = socket.socketpair()
            self._wake_r.setblocking(False)
            self._wake_w.setblocking(False)
            self.select_timeout = _WAIT

        def wake(self) -> None:
            try:
                self._wake_w.send(b"\0")
            except OSError:  # the pair's buffer is full (a wake-up is pending anyway) or closed
                pass

        def _drain(self) -> None:
            try:
                while self._wake_r.recv(4096):
                    pass
            except OSError:
                pass

        @property
        def ready(self) -> bool:
            sock = self.socket
            if sock is None or self._is_connected is False:
                # nothing to read: wait for a primitive to send (or the timer period), never spin
                try:
                    r, _, _ = select.select([self._wake_r], [], [], self.select_timeout)
                except (OSError, ValueError):
                    r = []
                if r:
                    self._drain()
                return False
            if getattr(sock, "pending", None) is not None and sock.pending():  # TLS-buffered data
                return True
            try:
                r, _, _ = select.select([sock, self._wake_r], [], [], self.select_timeout)
            except (OSError, TimeoutError, ValueError):
                self.event_queue.put("Evt17")  # transport connection closed
                return False
            if self._wake_r in r:
                self._drain()
            return sock in r

        def recv(self, nr_bytes: int) -> bytearray:
            """Read ``nr_bytes`` (fewer if the peer closes) in as few calls as the kernel allows: pynetdicom
            reads 4 KiB at a time, 32 calls -- and as many GIL hand-overs -- per 128 KiB PDU."""
            sock = self.socket
            buf = bytearray(nr_bytes)
            view = memoryview(buf)
            got = 0
            try:
                while got < nr_bytes:
                    n = sock.recv_into(view[got:], nr_bytes - got)
                    if not n:
                        break
                    got += n
            finally:
                view.release()
            if got < nr_bytes:
                del buf[got:]
            return buf

    from pynetdicom.dul import LOGGER, DULServiceProvider
    from pynetdicom.pdu import A_ABORT_RQ

    class EventDUL(DULServiceProvider):
        """The DUL provider with an event-driven reactor (``Thread.run``)."""

        def run(self) -> None:
            """pynetdicom 3.0's ``DULServiceProvider.run_reactor`` without the idle sleep: the wait is in
            ``EventSocket.ready``, woken by incoming data or by a queued primitive or event."""
            self._idle_timer.start()
            events = self.event_queue
            while True:
                if not self.assoc._dul_ready.is_set():
                    self.assoc._dul_ready.set()
                if self._kill_thread:
                    break
                if self.artim_timer.expired:
                    events.put("Evt18")
                try:
                    if self._process_recv_primitive():
                        pass
                    elif self._is_transport_event():
                        self._idle_timer.restart()
                except Exception as exc:
                    LOGGER.error("Exception in DUL.run(), aborting association")
                    LOGGER.exception(exc)
                    abort_pdu = A_ABORT_RQ()
                    abort_pdu.source = 0x02
                    abort_pdu.reason_diagnostic = 0x00
                    self.socket.send(abort_pdu.encode())
                    self.assoc.is_aborted = True
                    self.assoc.is_established = False
                    self.assoc._kill = True
                    self._kill_thread = True
                    return
                try:
                    event = events.get(block=False)
                except queue.Empty:
                    continue
                self.state_machine.do_action(event)

    from pynetdicom.association import Association

    class EventAssociation(Association):
        """A requestor association that gives back the responses its idle reactor snatches.

        ``send_c_store`` & co. pause the association's reactor thread (clear ``_reactor_checkpoint``,
        wait for ``_is_paused``) before sending and then wait for the response, but the pause is racy:
        the reactor may be just past its checkpoint and take the response off the DIMSE queue, log
        "Received unexpected C-STORE service message" and drop it -- the sender then waits for the
        DIMSE timeout.  With pynetdicom's 1 ms polling the response comes too late to be snatched;
        with a fast reactor it happens (about once per hundred C-STOREs to Orthanc).  A response
        taken while an operation is under way (the checkpoint is cleared) goes back to the front of
        the queue, where the waiting operation gets it."""

        def _serve_request(self, msg: Any, context_id: int) -> None:
            if not msg.is_valid_request and not self._reactor_checkpoint.is_set():
                q = self.dimse.msg_queue
                with q.mutex:
                    q.queue.appendleft((context_id, msg))
                    q.unfinished_tasks += 1
                    q.not_empty.notify()
                return
            super()._serve_request(msg, context_id)

    _EVENT_CLASSES = (EventSocket, EventDUL, EventAssociation)
    return _EVENT_CLASSES


_EVENT_CLASSES: Optional[tuple] = None


def _make_event_driven(assoc: Any, sock: Any) -> None:
    """Switch one association (not yet started) to the event-driven reactor (see above)."""
    cls, dul_cls, _ = _event_classes()
    cls._arm(sock)  # the wake-up pair first: nothing changes if that fails
    if type(sock) is not cls:
        sock.__class__ = cls  # an AssociationSocket subclass adding only methods and the wake-up pair
    dul = assoc.dul
    for name in ("to_provider_queue", "event_queue"):
        old, new = getattr(dul, name), _WakingQueue(sock.wake, dul)
        while True:  # keep what is already queued (an acceptor's socket queues Evt5 when created)
            try:
                new.put(old.get_nowait())
            except queue.Empty:
                break
        setattr(dul, name, new)
    dul._run_loop_delay = _WAIT  # only stop_dul's wait for the thread to end still sleeps
    dul.__class__ = dul_cls  # a DULServiceProvider subclass overriding only Thread.run


def _conn_open(event: Any) -> None:
    """EVT_CONN_OPEN: TCP_NODELAY, and for an acceptor (threads not started yet) the event-driven reactor."""
    _no_delay(event)
    assoc = event.assoc
    if assoc.is_acceptor and _events_wanted() and not assoc.dul.is_alive():
        try:
            _make_event_driven(assoc, assoc.dul.socket)
        except Exception:  # keep pynetdicom's polling reactor
            pass


def _medio_ae(ae_title: str) -> Any:
    """A pynetdicom AE whose requested associations use the event-driven reactor."""
    from pynetdicom import AE

    _quiet_pynetdicom()

    class MedioAE(AE):
        def _create_socket(self, assoc: Any, address: Any, tls_args: Any) -> Any:
            sock = super()._create_socket(assoc, address, tls_args)
            if _events_wanted():
                try:
                    _make_event_driven(assoc, sock)
                    assoc.__class__ = _event_classes()[2]  # adds one method override
                except Exception:
                    pass
            return sock

    return MedioAE(ae_title=ae_title)



_ALL_STORAGE_CONTEXTS: Optional[list] = None


def _all_storage_contexts() -> list:
    """Every storage SOP class with every transfer syntax, and Verification (built once: ~0.2 s)."""
    global _ALL_STORAGE_CONTEXTS
    if _ALL_STORAGE_CONTEXTS is None:
        from pynetdicom import AllStoragePresentationContexts, build_context
        from pynetdicom.sop_class import Verification

        _ALL_STORAGE_CONTEXTS = [build_context(cx.abstract_syntax, _transfer_syntaxes())
                                 for cx in AllStoragePresentationContexts] + [build_context(Verification)]
    return _ALL_STORAGE_CONTEXTS

_STORAGE_CLASSES: Optional[frozenset] = None


def _storage_classes() -> frozenset:
    """Every storage SOP class pynetdicom knows (what the listener accepts, on both paths)."""
    global _STORAGE_CLASSES
    if _STORAGE_CLASSES is None:
        from pynetdicom import AllStoragePresentationContexts

        _STORAGE_CLASSES = frozenset(str(cx.abstract_syntax) for cx in AllStoragePresentationContexts)
    return _STORAGE_CLASSES


def _transfer_syntaxes() -> list[str]:
    from pynetdicom import ALL_TRANSFER_SYNTAXES

    return list(ALL_TRANSFER_SYNTAXES)


def _check_status(status: Any, what: str) -> None:
    if not status:
        raise PacsError(None, f"{what}: no response (connection lost)")
    code = int(status.Status)
    if code != 0:
        raise PacsError(None, f"{what} failed with status 0x{code:04X}")


def _plain(ds: Any, keys: dict) -> dict:
    out = {}
    for k in keys:
        v = ds.get(k)
        if v is None:
            continue
        if hasattr(v, "original_string") or type(v).__name__ == "PersonName":
            v = str(v)
        elif isinstance(v, (list, tuple)) or type(v).__name__ == "MultiValue":
            v = [str(x) for x in v]
        elif not isinstance(v, (int, float)):
            v = str(v)
        out[k] = v
    return out


# -- C-STORE SCP ------------------------------------------------------------------------------------------------
class StorageListener:
    """A C-STORE SCP (and Verification SCP): stores received instances in ``folder`` and imports them into
    ``database`` (in batches, off the network thread).

    ``start()`` binds ``port`` (0 = any free port; see :attr:`port`) on ``host``; ``stop()``
    shuts it down.  ``ae_title`` is required as the called AE title unless
    ``require_called_aet`` is False.  ``on_received(path)`` is called for each instance.
    ``backend``: the lean :class:`.dimse.StoreSCP` (``"medio"``, default) or pynetdicom's
    (``"pynetdicom"``), see :func:`_dimse_backend`.
    """

    def __init__(self, ae_title: str = DEFAULT_AE_TITLE, port: int = 11112, folder: Any = None, database: Any = None,
                 host: str = "0.0.0.0", require_called_aet: bool = True,
                 on_received: Optional[Callable[[Path], None]] = None, write_only: bool = False,
                 sop_classes: Sequence[str] = (), backend: Optional[str] = None) -> None:
        self.backend = _dimse_backend(backend)
        self.ae_title = ae_title
        self.sop_classes = list(sop_classes)
        self.host = host
        self.requested_port = int(port)
        self.port = int(port)
        self.database = database
        self.folder, self._temporary = _destination(folder, database)
        self.require_called_aet = require_called_aet
        self.on_received = on_received
        self.write_only = write_only
        self.received: list[Path] = []
        self.errors: list[str] = []
        self.handler: Optional[Callable] = None
        self._server = None
        self._lock = threading.Lock()
        self._pending: list[Path] = []
        self._importer: Optional[threading.Thread] = None
        self._stop = threading.Event()

    @property
    def running(self) -> bool:
        return self._server is not None

    def _handle(self, event: Any) -> int:
        try:
            path, _ = _write_received(self.folder, event)
        except Exception as exc:
            self.errors.append(str(exc))
            return 0xC210
        self._stored(path)
        return 0x0000

    def _stored(self, path: Path, size: int = 0) -> None:
        with self._lock:
            self.received.append(path)
            self._pending.append(path)
        if self.on_received is not None:
            try:
                self.on_received(path)
            except Exception:
                pass

    def _import_loop(self) -> None:
        while not self._stop.wait(0.5):
            self.flush()
        self.flush()

    def flush(self) -> Optional[dict]:
        """Import received files into the database now (normally done every half second)."""
        if self.database is None or self.write_only:
            return None
        with self._lock:
            batch, self._pending = self._pending, []
        if not batch:
            return None
        try:
            report = _import_into(self.database, batch, copy=self._temporary)
            if self._temporary:  # the database keeps its copy
                for f in batch:
                    f.unlink(missing_ok=True)
            return report
        except Exception as exc:
            self.errors.append(f"database import: {exc}")
            with self._lock:
                self._pending = batch + self._pending
            return None

    def start(self) -> "StorageListener":
        if self.backend == "medio":
            from .dimse import StoreSCP

            scp = StoreSCP(self.ae_title, self.requested_port, self.folder, host=self.host,
                           require_called_aet=self.require_called_aet, sop_classes=self.sop_classes,
                           storage_classes=_storage_classes(), transfer_syntaxes=_transfer_syntaxes(),
                           on_stored=self._stored, on_error=self.errors.append, timeout=60.0)
            try:
                scp.start()
            except OSError as exc:
                raise PacsError(None, f"cannot listen on port {self.requested_port}: {exc.strerror or exc}") from None
            self._server = scp
            self.port = scp.port
            self._start_importer()
            return self
        from pynetdicom import AE, build_context, evt
        from pynetdicom.sop_class import Verification
        from pynetdicom.transport import ThreadedAssociationServer

        _quiet_pynetdicom()
        ae = AE(ae_title=self.ae_title)
        ae.require_called_aet = self.require_called_aet
        ae.maximum_pdu_size = 0
        ae.network_timeout = 60
        if self.sop_classes:  # only what is expected (pynetdicom copies the contexts for each association)
            contexts = [build_context(c, _transfer_syntaxes()) for c in self.sop_classes] + [build_context(Verification)]
        else:
            contexts = _all_storage_contexts()
        handler = self.handler or self._handle
        try:
            # AE.start_server(block=False) would serve with socketserver's 0.5 s poll, which stop() then waits for
            server = ae.make_server((self.host, self.requested_port), contexts=contexts,
                                    evt_handlers=[(evt.EVT_C_STORE, handler), (evt.EVT_CONN_OPEN, _conn_open)],
                                    server_class=ThreadedAssociationServer)
        except OSError as exc:
            raise PacsError(None, f"cannot listen on port {self.requested_port}: {exc.strerror or exc}") from None
        servers = getattr(ae, "_servers", None)
        if isinstance(servers, list):  # as start_server does: ae.shutdown() and server.shutdown() expect it
            servers.append(server)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True,
                         name=f"medio-listener-{self.requested_port}").start()
        self._server = server
        self.port = int(self._server.server_address[1])
        self._start_importer()
        return self

    def _start_importer(self) -> None:
        if self.database is not None and not self.write_only:
            self._stop.clear()
            self._importer = threading.Thread(target=self._import_loop, name="medio-listener-import", daemon=True)
            self._importer.start()

    def stop(self) -> None:
        if self._server is not None:
            if hasattr(self._server, "server_address"):  # pynetdicom's
                self._server.shutdown()
            else:
                self._server.stop()
            self._server = None
        if self._importer is not None:
            self._stop.set()
            self._importer.join(timeout=30)
            self._importer = None
        if self._temporary and self.database is not None and not self.write_only:
            import shutil

            self.flush()
            shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> "StorageListener":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


# -- DICOMweb ---------------------------------------------------------------------------------------------------
class DicomWebClient:
    """QIDO-RS / WADO-RS / STOW-RS client for one DICOMweb server (dicomweb-client underneath)."""

    def __init__(self, server: DicomWebServer, timeout: float = 60.0) -> None:
        self.server = server
        self.timeout = timeout
        self._client = None

    @property
    def client(self) -> Any:
        if self._client is None:
            from dicomweb_client.api import DICOMwebClient

            self._client = DICOMwebClient(url=self.server.url.rstrip("/"), headers=self.server.headers or None)
        return self._client

    def _wrap(self, what: str, fn: Callable, *args: Any, **kwargs: Any) -> Any:
        import requests

        try:
            return fn(*args, **kwargs)
        except requests.exceptions.JSONDecodeError as exc:
            raise PacsError(None, f"{what}: malformed JSON from {self.server.url}: {exc}") from None
        except requests.exceptions.ConnectionError:
            raise PacsError(None, f"{what}: cannot connect to {self.server.url} (is the server running?)") from None
        except requests.exceptions.HTTPError as exc:
            code = getattr(exc.response, "status_code", "?")
            raise PacsError(None, f"{what}: {self.server.url} answered HTTP {code}") from None
        except requests.exceptions.RequestException as exc:
            raise PacsError(None, f"{what}: {self.server.url}: {exc}") from None
        except (ValueError, KeyError) as exc:
            raise PacsError(None, f"{what}: malformed response from {self.server.url}: {exc}") from None

    def echo(self) -> float:
        """A cheap QIDO request; returns the round trip in seconds."""
        t0 = time.perf_counter()
        self._wrap("DICOMweb echo", self.client.search_for_studies, limit=1)
        return time.perf_counter() - t0

    def query(self, level: str = "STUDY", **filters: Any) -> list[dict]:
        """QIDO-RS search at ``level`` (PATIENT is answered at study level); keywords as for DIMSE."""
        from pydicom.dataset import Dataset

        level = level.upper()
        keys = _query_keys("STUDY" if level == "PATIENT" else level, filters)
        search = {k: v for k, v in keys.items() if v not in ("", None)}
        if isinstance(search.get("ModalitiesInStudy"), str) and level == "SERIES":
            search["Modality"] = search.pop("ModalitiesInStudy")
        fields = [k for k, v in keys.items() if v in ("", None)]
        study = search.pop("StudyInstanceUID", None)
        series = search.pop("SeriesInstanceUID", None) if level == "IMAGE" else None
        if level in ("STUDY", "PATIENT"):
            raw = self._wrap("QIDO-RS", self.client.search_for_studies, search_filters=search, fields=fields)
        elif level == "SERIES":
            raw = self._wrap("QIDO-RS", self.client.search_for_series, study_instance_uid=study,
                             search_filters=search, fields=fields)
        else:
            raw = self._wrap("QIDO-RS", self.client.search_for_instances, study_instance_uid=study,
                             series_instance_uid=series, search_filters=search, fields=fields)
        out = []
        for item in raw:
            try:
                ds = Dataset.from_json(item)
            except Exception as exc:
                raise PacsError(None, f"QIDO-RS: malformed JSON from {self.server.url}: {exc}") from None
            out.append(_plain(ds, keys))
        if level == "PATIENT":
            seen: dict = {}
            for r in out:
                seen.setdefault(r.get("PatientID"), {k: r.get(k) for k in _RETURN_KEYS["PATIENT"] if k in r})
            out = list(seen.values())
        return out

    def _series_uids(self, study_uid: str) -> list[str]:
        return [r["SeriesInstanceUID"] for r in self.query("SERIES", StudyInstanceUID=study_uid)]

    def retrieve(self, study_uid: str, series_uid: Optional[str] = None, *, dest: Any = None, database: Any = None,
                 progress: Progress = None, cancel: Cancel = None, **_: Any) -> RetrieveResult:
        """WADO-RS retrieve of a study or series, streamed part by part, written as received."""
        return _retrieving(database, dest, lambda folder: self._retrieve(study_uid, series_uid, folder, progress,
                                                                         cancel))

    def _retrieve(self, study_uid: str, series_uid: Optional[str], folder: Path, progress: Progress,
                  cancel: Cancel) -> RetrieveResult:
        t0 = time.perf_counter()
        series_list = [series_uid] if series_uid else self._series_uids(study_uid)
        total = 0
        for s in series_list:  # the instance count gives the progress bar its length
            try:
                rows = self.query("SERIES", StudyInstanceUID=study_uid, SeriesInstanceUID=s)
                total += int(rows[0].get("NumberOfSeriesRelatedInstances") or 0) if rows else 0
            except PacsError:
                pass
        result = RetrieveResult()
        for s in series_list:
            self._retrieve_series(study_uid, s, folder, result, total, progress, cancel)
        result.completed = len(result.files)
        result.seconds = time.perf_counter() - t0
        if total and result.completed < total:
            raise PacsError(None, f"WADO-RS from {self.server.url} stopped after {result.completed} of {total} "
                                  "instance(s) (server stopped?); received files are kept, retrieving again "
                                  "completes the study")
        return result

    def _retrieve_series(self, study_uid: str, series_uid: str, folder: Path, result: RetrieveResult, total: int,
                         progress: Progress, cancel: Cancel) -> None:
        """One series' multipart answer, streamed into its files by :class:`._wado.MultipartFiles`."""
        import requests
        import urllib3

        from ._wado import MultipartFiles, NotDicom, boundary_of

        url = f"{self.server.url.rstrip('/')}/studies/{study_uid}/series/{series_uid}"
        headers = {"Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'}
        where = f"WADO-RS from {self.server.url} stopped after {{n}} instance(s)"
        kept = "received files are kept, retrieving again completes the study"

        def on_part(path: Path, size: int) -> None:
            result.files.append(path)
            result.bytes += size
            if progress is not None:
                progress(len(result.files), total)

        def before_part() -> None:
            if cancel is not None and cancel():
                raise CancelledError(folder, f"WADO-RS retrieve cancelled after {len(result.files)} instance(s); "
                                             "the files received are kept")

        parts = None
        response = None
        try:
            response = self.client._session.get(url, headers=headers, stream=True, timeout=self.timeout)
            response.raise_for_status()
            ctype = response.headers.get("Content-Type", "")
            if not ctype.lower().startswith("multipart/"):
                raise PacsError(None, f"WADO-RS: malformed response from {self.server.url}: Content-Type {ctype!r} "
                                      "is not multipart")
            parts = MultipartFiles(boundary_of(ctype), folder, on_part, before_part)
            raw = response.raw
            read = getattr(raw, "read1", None) or raw.read
            while True:
                chunk = read(1 << 20, decode_content=True)
                if not chunk:
                    break
                parts.feed(chunk)
            if not parts.finish():
                raise PacsError(None, where.format(n=len(result.files)) + f": the response was cut short (server "
                                      f"stopped?); {kept}")
        except (CancelledError, PacsError):
            raise
        except NotDicom as exc:
            raise PacsError(None, f"WADO-RS: {self.server.url} sent {exc}") from None
        except requests.exceptions.HTTPError as exc:
            code = getattr(exc.response, "status_code", "?")
            raise PacsError(None, f"WADO-RS: {self.server.url} answered HTTP {code} for series {series_uid}") from None
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
            if response is None:
                raise PacsError(None, f"WADO-RS: cannot connect to {self.server.url} (is the server running?)") \
                    from None
            why = "no data within the timeout" if isinstance(exc, requests.exceptions.Timeout) else \
                "the connection was lost"
            raise PacsError(None, where.format(n=len(result.files)) + f": {why} (server stopped?); {kept}") from None
        except (urllib3.exceptions.HTTPError, requests.exceptions.RequestException, OSError):
            raise PacsError(None, where.format(n=len(result.files)) + f": the response was cut short (server "
                                  f"stopped?); {kept}") from None
        finally:
            if parts is not None:
                parts.discard()
            if response is not None:
                response.close()

    def send(self, files: Iterable["str | os.PathLike[str]"], progress: Progress = None, cancel: Cancel = None,
             batch: int = 32) -> dict:
        """STOW-RS the files (in batches); returns ``{"sent", "failed": {path: reason}}``."""
        import pydicom

        paths = [Path(f) for f in files]
        sent, failed = 0, {}
        for start in range(0, len(paths), batch):
            if cancel is not None and cancel():
                raise CancelledError(None, f"send cancelled after {sent} of {len(paths)} instance(s)")
            chunk = paths[start:start + batch]
            datasets = []
            for p in chunk:
                try:
                    datasets.append(pydicom.dcmread(p))
                except Exception as exc:
                    raise PacsError(p, f"not a DICOM file to send: {exc}") from None
            response = self._wrap("STOW-RS", self.client.store_instances, datasets=datasets)
            failed_uids = {str(item.ReferencedSOPInstanceUID) for item in response.get("FailedSOPSequence", [])} \
                if response is not None else set()
            for p, ds in zip(chunk, datasets):
                if str(ds.SOPInstanceUID) in failed_uids:
                    failed[os.fspath(p)] = "rejected by the server"
                else:
                    sent += 1
            if progress is not None:
                progress(min(start + batch, len(paths)), len(paths))
        return {"sent": sent, "failed": failed}

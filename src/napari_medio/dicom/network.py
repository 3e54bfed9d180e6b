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
``(done, total)`` (total 0 when unknown) after each instance; cancel callbacks return
True to stop (asked before each instance and every 0.1 s while waiting).

Faults become :class:`PacsError` (a :class:`~napari_medio.core.errors.MedioError`)
with one clear sentence naming the server: connection refused, association rejected
(wrong AE title), server stopped mid-transfer, failed sub-operations, malformed responses.

Libraries, and the one hand-written receive path:

* C-ECHO and C-FIND: pynetdicom, through its public API only;
* C-GET, C-MOVE (with its C-STORE destination) and the listener receive through
  :mod:`napari_medio.dicom.dimse`, a lean upper layer written for this, which also sends
  (C-STORE SCU: pynetdicom 3.0's ``send_c_store`` drops a response now and then over a fast
  link, see that module's docstring).  pynetdicom spends
  about 5 ms of Python per received instance (its reactor polls with 1 ms sleeps and
  decodes every command set), and a 300-instance C-GET from Orthanc takes 5.2-6.7x longer
  on plain pynetdicom than on ``dimse`` (docs/performance.md, "DICOM network").  The files
  written are byte for byte those of plain pynetdicom with ``Event.encoded_dataset()``
  (tested in tests/dicom_net/test_dimse.py);
* WADO-RS retrieves stream the multipart answer into files with :mod:`._wado` (over the
  dicomweb-client session): 2.6-3.6x faster than dicomweb-client's ``iter_series`` plus
  pydicom writes (docs/performance.md); QIDO-RS and STOW-RS use dicomweb-client.
"""
from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.errors import CancelledError, MedioError

__all__ = [
    "PacsError", "DicomNode", "DicomWebServer", "RetrieveResult", "DimseClient", "DicomWebClient",
    "StorageListener", "connect", "QUERY_LEVELS", "DEFAULT_AE_TITLE",
]

DEFAULT_AE_TITLE = "MEDIO"
QUERY_LEVELS = ("PATIENT", "STUDY", "SERIES", "IMAGE")
Progress = Callable[[int, int], None] | None
Cancel = Callable[[], bool] | None

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
        return {"type": "dimse", "ae_title": self.ae_title, "host": self.host, "port": int(self.port),
                "name": self.name}


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
    imported: dict | None = None

    def to_dict(self) -> dict:
        return {"files": [os.fspath(f) for f in self.files], "completed": self.completed, "failed": self.failed,
                "warning": self.warning, "seconds": round(self.seconds, 3), "bytes": self.bytes,
                "imported": self.imported}


def connect(server: DicomNode | DicomWebServer | dict | str, calling_ae: str = DEFAULT_AE_TITLE,
            **options: Any) -> DimseClient | DicomWebClient:
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

def _import_into(database: Any, files: Sequence[Path], copy: bool = False) -> dict | None:
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


def _destination(dest: str | os.PathLike[str] | None, database: Any) -> tuple[Path, bool]:
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
@dataclass
class _Final:
    """The final C-GET/C-MOVE response (None counts: not sent)."""

    code: int
    completed: int | None = None
    failed: int = 0
    warning: int = 0

    @classmethod
    def of(cls, command: Any) -> _Final | None:
        from . import dimse

        if command is None:
            return None
        return cls(command.status, command.us(dimse.COMPLETED) if dimse.COMPLETED in command else None,
                   command.us(dimse.FAILED), command.us(dimse.WARNING))


class DimseClient:
    """DIMSE service user for one remote node (a new association per operation)."""

    def __init__(self, node: DicomNode, calling_ae: str = DEFAULT_AE_TITLE, timeout: float = 30.0,
                 max_pdu: int = 0) -> None:
        self.node = node
        self.calling_ae = calling_ae
        self.timeout = float(timeout)
        self.max_pdu = int(max_pdu)

    # -- pynetdicom associations (C-ECHO, C-FIND) ----------------------------------------
    def _ae(self, contexts: Sequence[str] = ()) -> Any:
        from pynetdicom import AE

        ae = AE(ae_title=self.calling_ae)
        ae.acse_timeout = self.timeout
        ae.dimse_timeout = self.timeout
        ae.network_timeout = self.timeout
        ae.connection_timeout = min(self.timeout, 10.0)
        ae.maximum_pdu_size = self.max_pdu
        for c in contexts:
            ae.add_requested_context(c)
        return ae

    def _associate(self, ae: Any) -> Any:
        from pynetdicom import evt

        seen: dict = {}

        def on_acse(event: Any) -> None:
            prim = getattr(event, "primitive", None)
            if getattr(prim, "result", None) in (0x01, 0x02):
                seen["reason"] = getattr(prim, "reason_str", "")

        handlers = [(evt.EVT_ACSE_RECV, on_acse)]
        try:
            assoc = ae.associate(self.node.host, int(self.node.port), ae_title=self.node.ae_title,
                                 evt_handlers=handlers, max_pdu=self.max_pdu)
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

        keys = _query_keys(level, filters)
        ds = Dataset()
        ds.QueryRetrieveLevel = level.upper()
        for k, v in keys.items():
            setattr(ds, k, v)
        results: list[dict] = []
        for code, identifier in self._find(ds, patient_root=level.upper() == "PATIENT"):
            if code in (0xFF00, 0xFF01) and identifier is not None:
                results.append(_plain(identifier, keys))
            elif code != 0x0000:
                raise PacsError(None, f"C-FIND to {self.node.label} failed with status 0x{code:04X}")
        return results

    def _find(self, ds: Any, patient_root: bool = False) -> list[tuple]:
        """One C-FIND: ``[(status code, identifier or None), ...]``, the final response last."""
        from pynetdicom.sop_class import PatientRootQueryRetrieveInformationModelFind as PATIENT
        from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind as STUDY

        model = PATIENT if patient_root else STUDY
        assoc = self._associate(self._ae([model]))
        answers = []
        try:
            for status, identifier in assoc.send_c_find(ds, model):
                if not status:
                    raise PacsError(None, f"C-FIND to {self.node.label}: the connection was lost (server stopped?)")
                answers.append((int(status.Status), identifier))
        finally:
            if assoc.is_established:
                assoc.release()
        return answers

    def _study_sop_classes(self, study_uid: str) -> list[str]:
        """The study's SOP Classes in Study (C-FIND), or [] when the server does not say (or fails)."""
        from pydicom.dataset import Dataset

        ds = Dataset()
        ds.QueryRetrieveLevel = "STUDY"
        ds.StudyInstanceUID = study_uid
        ds.SOPClassesInStudy = ""
        try:
            answers = self._find(ds)
        except Exception:
            return []
        found: list[str] = []
        for code, identifier in answers:
            if code in (0xFF00, 0xFF01) and identifier is not None:
                value = identifier.get("SOPClassesInStudy")
                values = [value] if isinstance(value, str) else list(value or [])
                found += [str(v).strip("\0 ") for v in values if str(v).strip("\0 ")]
        return list(dict.fromkeys(found))

    # -- C-GET / C-MOVE (received by dimse.py) -------------------------------------------------------------
    def retrieve(self, study_uid: str, series_uid: str | None = None, *, dest: Any = None, database: Any = None,
                 method: str = "get", move_port: int = 0, sop_uids: Sequence[str] = (), progress: Progress = None,
                 cancel: Cancel = None) -> RetrieveResult:
        """C-GET (default) or C-MOVE a study, series or instances into ``dest`` and/or ``database``."""
        if method.lower() not in ("get", "move"):
            raise PacsError(None, f"retrieve method must be 'get' or 'move', not {method!r}")

        def run(folder: Path) -> RetrieveResult:
            if method.lower() == "move":
                return self._move(study_uid, series_uid, sop_uids, folder, move_port, progress, cancel)
            return self._get(study_uid, series_uid, sop_uids, folder, progress, cancel)

        return _retrieving(database, dest, run)

    def _identifier(self, study_uid: str, series_uid: str | None, sop_uids: Sequence[str]) -> Any:
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

    def _open(self, contexts: Sequence[tuple], roles: Sequence[tuple] = ()) -> Any:
        """A :mod:`.dimse` association, its failures as one-sentence PacsErrors."""
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

    def _get(self, study_uid, series_uid, sop_uids, folder, progress, cancel) -> RetrieveResult:
        from pynetdicom import StoragePresentationContexts

        from . import dimse

        t0 = time.perf_counter()
        identifier = self._identifier(study_uid, series_uid, sop_uids)
        # C-GET needs the storage contexts in its own association (128 at most, one is the GET): the study's
        # SOP classes when the server says which, else the first 127 common storage classes
        classes = self._study_sop_classes(study_uid)[:127] or [cx.abstract_syntax
                                                                for cx in StoragePresentationContexts[:127]]
        syntaxes = _transfer_syntaxes()
        contexts = [(dimse.GET_STUDY_ROOT, [dimse.IMPLICIT_LE, dimse.EXPLICIT_LE])] + [(c, syntaxes) for c in classes]
        roles = [(c, 0, 1) for c in classes]
        state: dict = {"files": [], "bytes": 0, "lock": threading.Lock(), "total": 0}
        on_stored, on_pending = self._counting(state, progress, with_failed=True)
        errors = state.setdefault("errors", [])
        assoc = self._open(contexts, roles)
        return self._run("C-GET", assoc, lambda: assoc.retrieve(
            "get", identifier, folder, on_stored=on_stored, on_pending=on_pending, should_stop=cancel,
            on_store_error=errors.append), state, folder, t0)

    def _move(self, study_uid, series_uid, sop_uids, folder, move_port, progress, cancel) -> RetrieveResult:
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
                             sop_classes=self._study_sop_classes(study_uid),
                             storage_classes=_storage_classes(), transfer_syntaxes=_transfer_syntaxes(),
                             on_stored=on_stored, should_stop=stop if cancel is not None else None,
                             on_error=state.setdefault("errors", []).append, timeout=max(self.timeout, 60.0))
        try:
            scp.start()
        except OSError as exc:
            raise PacsError(None, f"cannot listen on port {move_port} for the C-MOVE: {exc.strerror or exc}") from None
        try:
            assoc = self._open([(dimse.MOVE_STUDY_ROOT, [dimse.IMPLICIT_LE, dimse.EXPLICIT_LE])])
            assoc.chan.activity = lambda: scp.last_activity  # the sub-operations keep the C-MOVE alive
            return self._run("C-MOVE", assoc, lambda: assoc.retrieve(
                "move", identifier, folder, destination=self.calling_ae, on_pending=on_pending,
                should_stop=stop), state, folder, t0)
        finally:
            scp.stop()

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

    def _run(self, op: str, assoc: Any, run: Callable[[], Any], state: dict, folder: Path,
             t0: float) -> RetrieveResult:
        """Run a C-GET/C-MOVE on a :mod:`.dimse` association; its faults become PacsError/CancelledError."""
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
        return self._finish(state, final, folder, t0, op, lost)

    def _finish(self, state: dict, final: Any, folder: Path, t0: float, op: str, lost: str) -> RetrieveResult:
        final = _Final.of(final)
        result = RetrieveResult(files=list(state["files"]), bytes=state["bytes"], seconds=time.perf_counter() - t0)
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

    # -- C-STORE (sent by dimse.py) -------------------------------------------------------------------------
    def send(self, files: Iterable[str | os.PathLike[str]], progress: Progress = None,
             cancel: Cancel = None) -> dict:
        """C-STORE Part-10 files to the node as stored (one association); returns ``{"sent", "failed": {path:
        reason}}``."""
        from . import dimse

        paths = [Path(f) for f in files]
        if not paths:
            return {"sent": 0, "failed": {}}
        metas = {}
        for p in paths:
            try:
                metas[p] = dimse.part10_meta(p)
            except (OSError, ValueError) as exc:
                raise PacsError(p, f"not a DICOM file to send: {exc}") from None
        pairs = sorted({(sop_class, ts) for sop_class, _, ts, _ in metas.values()})
        if len(pairs) > 128:
            raise PacsError(None, "too many different SOP classes and transfer syntaxes for one association")
        assoc = self._open([(sop_class, [ts]) for sop_class, ts in pairs])
        sent, failed, last = 0, {}, paths[0]
        try:
            for n, p in enumerate(paths):
                last = p
                if cancel is not None and cancel():
                    raise CancelledError(p, f"send cancelled after {sent} of {len(paths)} instance(s)")
                sop_class, sop_uid, ts, offset = metas[p]
                context = assoc.context_for_syntax(sop_class, ts)
                if context is None:
                    failed[os.fspath(p)] = f"{self.node.label} does not accept {sop_class} in {ts}"
                else:
                    with open(p, "rb") as fh:
                        fh.seek(offset)
                        code = assoc.c_store(context, sop_class, sop_uid, fh.read())
                    if code in (0x0000, 0xB000, 0xB007, 0xB006):
                        sent += 1
                    else:
                        failed[os.fspath(p)] = f"status 0x{code:04X}"
                if progress is not None:
                    progress(n + 1, len(paths))
        except dimse.DimseError as exc:
            assoc.close()
            raise PacsError(last, f"C-STORE to {self.node.label}: connection lost after {sent} instance(s) "
                                  f"({exc}; server stopped?)") from None
        except BaseException:
            assoc.abort()
            raise
        assoc.release(min(self.timeout, 5.0))
        return {"sent": sent, "failed": failed}


def _reachable(host: str, port: int, timeout: float = 3.0) -> bool:
    import socket

    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


_STORAGE_CLASSES: frozenset | None = None


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
    """A C-STORE SCP (and Verification SCP, on :class:`.dimse.StoreSCP`): stores received instances in
    ``folder`` and imports them into ``database`` (in batches, off the network thread).

    ``start()`` binds ``port`` (0 = any free port; see :attr:`port`) on ``host``; ``stop()``
    shuts it down.  ``ae_title`` is required as the called AE title unless
    ``require_called_aet`` is False.  ``on_received(path)`` is called for each instance.
    """

    def __init__(self, ae_title: str = DEFAULT_AE_TITLE, port: int = 11112, folder: Any = None, database: Any = None,
                 host: str = "0.0.0.0", require_called_aet: bool = True,
                 on_received: Callable[[Path], None] | None = None) -> None:
        self.ae_title = ae_title
        self.host = host
        self.requested_port = int(port)
        self.port = int(port)
        self.database = database
        self.folder, self._temporary = _destination(folder, database)
        self.require_called_aet = require_called_aet
        self.on_received = on_received
        self.received: list[Path] = []
        self.errors: list[str] = []
        self._server: Any = None
        self._lock = threading.Lock()
        self._pending: list[Path] = []
        self._importer: threading.Thread | None = None
        self._stop = threading.Event()

    @property
    def running(self) -> bool:
        return self._server is not None

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

    def flush(self) -> dict | None:
        """Import received files into the database now (normally done every half second)."""
        if self.database is None:
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

    def start(self) -> StorageListener:
        """Listen; returns self."""
        from .dimse import StoreSCP

        scp = StoreSCP(self.ae_title, self.requested_port, self.folder, host=self.host,
                       require_called_aet=self.require_called_aet, storage_classes=_storage_classes(),
                       transfer_syntaxes=_transfer_syntaxes(), on_stored=self._stored, on_error=self.errors.append,
                       timeout=60.0)
        try:
            scp.start()
        except OSError as exc:
            raise PacsError(None, f"cannot listen on port {self.requested_port}: {exc.strerror or exc}") from None
        self._server = scp
        self.port = scp.port
        if self.database is not None:
            self._stop.clear()
            self._importer = threading.Thread(target=self._import_loop, name="medio-listener-import", daemon=True)
            self._importer.start()
        return self

    def stop(self) -> None:
        """Stop listening, import what is pending, remove the temporary folder (if one was made)."""
        if self._server is not None:
            self._server.stop()
            self._server = None
        if self._importer is not None:
            self._stop.set()
            self._importer.join(timeout=30)
            self._importer = None
        if self._temporary and self.database is not None:
            import shutil

            self.flush()
            shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> StorageListener:
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
        self._session: Any = None

    @property
    def client(self) -> Any:
        """The dicomweb-client client, on a requests session of ours (WADO-RS streams on the same session)."""
        if self._client is None:
            from dicomweb_client.api import DICOMwebClient
            from dicomweb_client.session_utils import create_session

            self._session = create_session()
            self._client = DICOMwebClient(url=self.server.url.rstrip("/"), session=self._session,
                                          headers=self.server.headers or None)
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

    def retrieve(self, study_uid: str, series_uid: str | None = None, *, dest: Any = None, database: Any = None,
                 progress: Progress = None, cancel: Cancel = None) -> RetrieveResult:
        """WADO-RS retrieve of a study or series, streamed part by part, written as received."""
        return _retrieving(database, dest, lambda folder: self._retrieve(study_uid, series_uid, folder, progress,
                                                                         cancel))

    def _retrieve(self, study_uid: str, series_uid: str | None, folder: Path, progress: Progress,
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
            self.client  # noqa: B018 - makes the session
            response = self._session.get(url, headers={**(self.server.headers or {}), **headers}, stream=True,
                                   timeout=self.timeout)
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

    def send(self, files: Iterable[str | os.PathLike[str]], progress: Progress = None, cancel: Cancel = None,
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

"""The DICOM database: SQLite (WAL) index of patients, studies, series and instances.

* One folder holds ``medio-dicom.sqlite`` and, in copy mode, the files under
  ``store/`` named by the SHA-1 of their SOP Instance UID (the same instance is
  stored once; an instance already stored keeps its path, also from databases
  written with the earlier ``store/<2 hex>/`` layout).  Link mode records the files where they are.
* Import is idempotent and incremental: every scanned file is remembered with
  its size and modification time (``files`` table) and is not parsed again
  while unchanged (in copy mode, a file imported before as a link is copied
  now); non-DICOM files are counted and skipped; DICOMDIRs are followed.
  Header parsing runs on a process pool (all cores) for large imports.
* Copy mode copies each file into the store on a thread (``shutil.copyfile`` to a
  temporary name, then ``os.replace``) as soon as its header is parsed, so copying
  overlaps parsing; a batch waits for its copies just before its transaction.
  No fsync: a killed process loses nothing a re-run does not redo.
* ``.zip`` archives (given or found in a folder) are imported member by
  member and always stored in the database, whichever the mode: their members
  cannot be linked where they are.  Each member is remembered as
  ``<archive path>/<member name>`` with the archive's size and modification
  time, so importing the same archive again adds nothing and parses nothing.
* :meth:`DicomDatabase.adopt_files` takes files that are already on disk
  (received from a PACS) into the store without a second copy: hard link or
  copy into ``store/``, commit, then remove the originals.
* Crash-safe: each batch is one transaction; files are copied before the
  transaction that references them commits, and copies that a killed import
  left without a row are removed on the next import (adopted files are
  removed from their old place only after the commit, so a killed adoption
  loses nothing; zip members are extracted under ``incoming/`` in the database
  folder, removed when done or, after a crash, by the next import).  Several processes may
  share a database (WAL + busy timeout + ``BEGIN IMMEDIATE``).
* Schema version in ``schema_version``; :data:`MIGRATIONS` upgrades old files.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.errors import CancelledError, MedioError

__all__ = ["DicomDatabase", "ImportReport", "default_database_folder", "SCHEMA_VERSION", "DB_NAME"]

DB_NAME = "medio-dicom.sqlite"
STORE = "store"
INCOMING = "incoming"
SCHEMA_VERSION = 1
BUSY_TIMEOUT_MS = 60_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS patients (
    id INTEGER PRIMARY KEY,
    patient_id TEXT NOT NULL DEFAULT '',
    name TEXT NOT NULL DEFAULT '',
    birth_date TEXT, sex TEXT,
    UNIQUE (patient_id, name)
);
CREATE TABLE IF NOT EXISTS studies (
    uid TEXT PRIMARY KEY,
    patient INTEGER NOT NULL REFERENCES patients(id) ON DELETE CASCADE,
    date TEXT, time TEXT, description TEXT, accession TEXT, study_id TEXT, institution TEXT
);
CREATE INDEX IF NOT EXISTS studies_patient ON studies(patient);
CREATE INDEX IF NOT EXISTS studies_date ON studies(date);
CREATE TABLE IF NOT EXISTS series (
    uid TEXT PRIMARY KEY,
    study_uid TEXT NOT NULL REFERENCES studies(uid) ON DELETE CASCADE,
    number INTEGER, description TEXT, modality TEXT, date TEXT, time TEXT,
    body_part TEXT, frame_of_reference TEXT, manufacturer TEXT
);
CREATE INDEX IF NOT EXISTS series_study ON series(study_uid);
CREATE INDEX IF NOT EXISTS series_modality ON series(modality);
CREATE TABLE IF NOT EXISTS instances (
    sop_uid TEXT PRIMARY KEY,
    series_uid TEXT NOT NULL REFERENCES series(uid) ON DELETE CASCADE,
    sop_class TEXT, instance_number INTEGER,
    path TEXT NOT NULL, size INTEGER, mtime REAL, stored INTEGER NOT NULL DEFAULT 0,
    rows INTEGER, columns INTEGER, frames INTEGER, transfer_syntax TEXT, position TEXT,
    inserted REAL
);
CREATE INDEX IF NOT EXISTS instances_series ON instances(series_uid);
CREATE INDEX IF NOT EXISTS instances_path ON instances(path);
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY, size INTEGER, mtime REAL, sop_uid TEXT
);
CREATE INDEX IF NOT EXISTS files_sop ON files(sop_uid);
"""

#: version -> SQL that upgrades a database from ``version - 1``.
MIGRATIONS: dict[int, str] = {}


def default_database_folder() -> Path:
    """The database folder: the persisted setting, ``$NAPARI_MEDIO_DICOM_DB``, or the per-user data folder."""
    env = os.environ.get("NAPARI_MEDIO_DICOM_DB")
    if env:
        return Path(env)
    from ..core.settings import load_settings

    chosen = load_settings().get("dicom_database")
    if chosen:
        return Path(chosen)
    from platformdirs import user_data_dir

    return Path(user_data_dir("napari-medio")) / "dicom"


@dataclass
class ImportReport:
    """What an import did."""

    scanned: int = 0
    added: int = 0
    unchanged: int = 0
    non_dicom: int = 0
    copied: int = 0  # files newly placed in the database's store (copied, adopted or extracted)
    archives: int = 0  # .zip archives read
    errors: list = field(default_factory=list)  # (path, reason)
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return {"scanned": self.scanned, "added": self.added, "unchanged": self.unchanged,
                "non_dicom": self.non_dicom, "copied": self.copied, "archives": self.archives,
                "errors": [list(e) for e in self.errors], "seconds": self.seconds}


def _parse_chunk(paths: Sequence[str]) -> list:
    """Worker: (path, header or None, error) for each path (module-level for process pools)."""
    from ._parse import NotDicomError
    from .gzipped import parse_any_header

    out = []
    for p in paths:
        try:
            h = parse_any_header(p)
            h.pop("_frames", None)
            out.append((p, h, None))
        except NotDicomError as exc:
            out.append((p, None, "empty file" if str(exc) == "file is empty" else None))
        except OSError as exc:
            out.append((p, None, f"cannot read: {exc.strerror or exc}"))
        except Exception as exc:  # never let one file stop an import
            out.append((p, None, f"{type(exc).__name__}: {exc}"))
    return out


def _s(v: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, list):
        return "\\".join(str(x) for x in v)
    return str(v)


def _int(v: Any) -> int | None:
    if isinstance(v, list):
        v = v[0] if v else None
    try:
        return int(v) if v is not None and v != "" else None
    except (TypeError, ValueError):
        return None


def _store_name(sop_uid: str) -> str:
    # One flat folder: a first import into a new database would otherwise create up to
    # 256 sub-folders, each costing a few file-system metadata blocks (ext4 spreads new
    # folders over block groups), which cost more than copying a few hundred files.
    # Databases written with the earlier ``<h[:2]>/<h>.dcm`` layout keep their files:
    # the store writer reuses the path an instance is already stored under.
    h = hashlib.sha1(sop_uid.encode("ascii", "replace")).hexdigest()
    return f"{h}.dcm"


def _header_sop(h: dict | None) -> str | None:
    """The SOP Instance UID of a header that makes an instance row (else None)."""
    if not h or not h.get("SeriesInstanceUID") or not h.get("StudyInstanceUID"):
        return None
    return h.get("SOPInstanceUID") or None


class _StoreWriter:
    """Places files into the store: a copy into a temporary name then an atomic rename
    (``link``: a hard link, a copy only across file systems).

    ``lookup(results)`` learns where already stored instances of parsed (path, size, mtime,
    header, error) tuples are; ``outcome(src, dest)`` places one file (once per
    destination): None (the store already had it), True (placed) or (src, dest, reason).
    ``committed(dests)`` marks placements whose rows are committed; ``close()`` removes
    files it placed whose rows never committed (cancel, error) unless another process's
    row references them.  (Copies on a background thread overlapping the header parse
    were no faster: docs/performance.md.)
    """

    def __init__(self, db: DicomDatabase, link: bool = False) -> None:
        self.db = db
        self.store = os.fspath(db.store)
        self.link = link
        self._outcomes: dict[str, Any] = {}
        self._dirs: set[str] = set()
        self._known: dict[str, str] = {}

    def dest(self, sop: str) -> str:
        """Where ``sop`` is stored: the path a committed row already has, else its content address."""
        known = self._known.get(sop)
        return known if known is not None else os.path.join(self.store, _store_name(sop))

    def lookup(self, results: list) -> None:
        """Learn the stored paths of the instances in ``results`` the database already has."""
        sops = [s for s in (_header_sop(r[3]) for r in results) if s is not None and s not in self._known]
        for i in range(0, len(sops), 500):
            part = sops[i:i + 500]
            for sop, path in self.db.conn.execute(
                    f"SELECT sop_uid, path FROM instances WHERE stored=1 AND sop_uid IN ({','.join('?' * len(part))})",
                    part):
                self._known[sop] = path

    def outcome(self, src: str, dest: str):
        if dest not in self._outcomes:
            self._outcomes[dest] = self._place(src, dest)
        return self._outcomes[dest]

    def committed(self, dests: Iterable[str]) -> None:
        for d in dests:
            self._outcomes.pop(d, None)

    def _place(self, src: str, dest: str):
        if os.path.exists(dest):
            return None
        parent = os.path.dirname(dest)
        tmp = os.path.join(parent, f".tmp-{os.getpid()}-{threading.get_ident()}-{os.path.basename(dest)}")
        try:
            if parent not in self._dirs:
                os.makedirs(parent, exist_ok=True)
                self._dirs.add(parent)
            if self.link:
                try:
                    os.link(src, tmp)  # no second copy of the bytes
                except OSError:
                    shutil.copyfile(src, tmp)
            else:
                shutil.copyfile(src, tmp)
            os.replace(tmp, dest)
            return True
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            return (src, dest, f"cannot copy into the database: {exc.strerror or exc}")

    def close(self) -> None:
        placed = [d for d, outcome in self._outcomes.items() if outcome is True]
        self._outcomes.clear()
        if not placed:
            return
        # Uncommitted copies: remove those no row references (under the write lock, so a
        # concurrent import that found the file and committed a row to it keeps it).
        c = self.db.conn
        try:
            c.execute("BEGIN IMMEDIATE")
        except sqlite3.Error:
            return  # left for remove_orphans
        try:
            for i in range(0, len(placed), 500):
                part = placed[i:i + 500]
                used = {r[0] for r in c.execute(
                    f"SELECT path FROM instances WHERE path IN ({','.join('?' * len(part))})", part)}
                for d in part:
                    if d not in used:
                        with contextlib.suppress(OSError):
                            os.unlink(d)
        finally:
            with contextlib.suppress(sqlite3.Error):
                c.execute("COMMIT")


@dataclass
class _BatchRows:
    """The database rows of one parsed batch, and the store copies it needs (destination -> source)."""

    patients: dict[tuple[str, str], tuple] = field(default_factory=dict)
    studies: dict[str, tuple] = field(default_factory=dict)
    series: dict[str, tuple] = field(default_factory=dict)
    instances: list[tuple] = field(default_factory=list)
    files: list[tuple] = field(default_factory=list)
    to_copy: dict[str, str] = field(default_factory=dict)


def _batch_rows(results: list, report: ImportReport, record: Callable[[str], str | None] | None,
                writer: _StoreWriter | None, now: float) -> _BatchRows:
    """The rows of a parsed batch (files without a SOP Instance UID counted in ``report``).

    With a ``writer`` the instances point at their store copies (one transfer per destination).
    """
    rows = _BatchRows()
    for path, size, mtime, h, err in results:
        key = record(path) if record is not None else path
        sop = _header_sop(h)
        if sop is None:
            if err:
                report.errors.append((key or path, err))
            else:
                report.non_dicom += 1
            if key is not None:
                rows.files.append((key, size, mtime, None))
            continue
        pkey = (str(h.get("PatientID") or ""), str(h.get("PatientName") or ""))
        rows.patients[pkey] = (pkey[0], pkey[1], _s(h.get("PatientBirthDate")), _s(h.get("PatientSex")))
        rows.studies[h["StudyInstanceUID"]] = (
            h["StudyInstanceUID"], pkey, _s(h.get("StudyDate")), _s(h.get("StudyTime")),
            _s(h.get("StudyDescription")), _s(h.get("AccessionNumber")), _s(h.get("StudyID")),
            _s(h.get("InstitutionName")))
        rows.series[h["SeriesInstanceUID"]] = (
            h["SeriesInstanceUID"], h["StudyInstanceUID"], _int(h.get("SeriesNumber")),
            _s(h.get("SeriesDescription")), _s(h.get("Modality")), _s(h.get("SeriesDate")),
            _s(h.get("SeriesTime")), _s(h.get("BodyPartExamined")), _s(h.get("FrameOfReferenceUID")),
            _s(h.get("Manufacturer")))
        target = path
        if writer is not None:
            target = writer.dest(sop)
            rows.to_copy.setdefault(target, path)
        ipp = h.get("ImagePositionPatient")
        rows.instances.append((
            sop, h["SeriesInstanceUID"], _s(h.get("SOPClassUID")), _int(h.get("InstanceNumber")), target, size,
            mtime, 1 if writer is not None else 0, _int(h.get("Rows")), _int(h.get("Columns")),
            _int(h.get("NumberOfFrames")) or 1, _s(h.get("_ts")), json.dumps(ipp) if ipp is not None else None,
            now))
        if key is not None:
            rows.files.append((key, size, mtime, sop))
    return rows


def _await_copies(writer: _StoreWriter, to_copy: dict[str, str], report: ImportReport,
                  record: Callable[[str], str | None] | None) -> set[str]:
    """Wait for each store copy; count them in ``report`` and return the destinations that failed."""
    failed: set[str] = set()
    for dest, src in to_copy.items():
        outcome = writer.outcome(src, dest)
        if outcome is True:
            report.copied += 1
        elif outcome:
            src, dest, reason = outcome
            report.errors.append(((record(src) if record is not None else None) or src, reason))
            failed.add(dest)
    return failed


def _insert_rows(c: sqlite3.Connection, rows: _BatchRows, now: float) -> int:
    """Insert a batch's rows (known patients, studies, series kept); returns the instances added now."""
    c.executemany("INSERT OR IGNORE INTO patients(patient_id, name, birth_date, sex) VALUES (?,?,?,?)",
                  list(rows.patients.values()))
    ids = {key: c.execute("SELECT id FROM patients WHERE patient_id=? AND name=?", key).fetchone()[0]
           for key in rows.patients}
    c.executemany(
        "INSERT INTO studies(uid, patient, date, time, description, accession, study_id, institution) "
        "VALUES (?,?,?,?,?,?,?,?) ON CONFLICT(uid) DO NOTHING",
        [(s[0], ids[s[1]]) + s[2:] for s in rows.studies.values()])
    c.executemany(
        "INSERT INTO series(uid, study_uid, number, description, modality, date, time, body_part, "
        "frame_of_reference, manufacturer) VALUES (?,?,?,?,?,?,?,?,?,?) ON CONFLICT(uid) DO NOTHING",
        list(rows.series.values()))
    c.executemany(
        "INSERT INTO instances(sop_uid, series_uid, sop_class, instance_number, path, size, mtime, stored, "
        "rows, columns, frames, transfer_syntax, position, inserted) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?) "
        "ON CONFLICT(sop_uid) DO UPDATE SET path=excluded.path, size=excluded.size, mtime=excluded.mtime, "
        "stored=excluded.stored WHERE excluded.stored >= instances.stored AND "
        "(instances.stored = 0 OR instances.path = excluded.path)",
        rows.instances)
    marks = ",".join("?" * len(rows.instances))
    added = c.execute(f"SELECT COUNT(*) FROM instances WHERE inserted=? AND sop_uid IN ({marks})",
                      [now] + [r[0] for r in rows.instances]).fetchone()[0] if rows.instances else 0
    c.executemany("INSERT OR REPLACE INTO files(path, size, mtime, sop_uid) VALUES (?,?,?,?)", rows.files)
    return added


class DicomDatabase:
    """A DICOM database in ``folder`` (created when missing)."""

    def __init__(self, folder: str | os.PathLike[str] | None = None) -> None:
        self.folder = Path(folder) if folder is not None else default_database_folder()
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise MedioError(self.folder, f"cannot create the DICOM database folder: {exc.strerror or exc}") from None
        self.path = self.folder / DB_NAME
        self.store = self.folder / STORE
        self._conn: sqlite3.Connection | None = None
        self._open()

    # -- connection ----------------------------------------------------------------------------
    def _open(self) -> None:
        deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
        pause = 0.005
        while True:
            conn = None
            try:
                conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                                       check_same_thread=False)
                conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute("PRAGMA foreign_keys=ON")
                break
            except sqlite3.OperationalError as exc:
                if conn is not None:
                    conn.close()
                # Two processes opening a new database at once both read it, then both need the
                # write lock to switch it to WAL: SQLite answers one of them "locked" at once,
                # without waiting (that would deadlock).  The other finishes soon: try again.
                if "locked" not in str(exc) and "busy" not in str(exc) or time.monotonic() > deadline:
                    raise MedioError(self.path, f"not a usable DICOM database: {exc}") from None
                time.sleep(pause)
                pause = min(0.2, pause * 2)
            except sqlite3.DatabaseError as exc:
                if conn is not None:
                    conn.close()
                raise MedioError(self.path, f"not a usable DICOM database: {exc}") from None
        conn.row_factory = sqlite3.Row
        self._conn = conn
        with self._transaction() as c:
            for stmt in _SCHEMA.split(";"):
                if stmt.strip():
                    c.execute(stmt)
            row = c.execute("SELECT version FROM schema_version").fetchone()
            if row is None:
                c.execute("INSERT INTO schema_version(version) VALUES (?)", (SCHEMA_VERSION,))
            else:
                version = int(row[0])
                if version > SCHEMA_VERSION:
                    raise MedioError(self.path, f"database schema {version} is newer than this napari-medio "
                                                f"({SCHEMA_VERSION})")
                while version < SCHEMA_VERSION:
                    version += 1
                    for stmt in MIGRATIONS.get(version, "").split(";"):
                        if stmt.strip():
                            c.execute(stmt)
                    c.execute("UPDATE schema_version SET version=?", (version,))

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            self._open()
        assert self._conn is not None
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> DicomDatabase:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        c = self.conn
        c.execute("BEGIN IMMEDIATE")
        try:
            yield c
        except BaseException:
            c.execute("ROLLBACK")
            raise
        else:
            c.execute("COMMIT")

    @property
    def schema_version(self) -> int:
        return int(self.conn.execute("SELECT version FROM schema_version").fetchone()[0])

    # -- import --------------------------------------------------------------------------------
    def _expand(self, paths: Iterable[str | os.PathLike[str]], report: ImportReport) -> tuple[list[str], list[str]]:
        """(files, zip archives) under ``paths``; DICOMDIRs are replaced by the files they reference."""
        import zipfile

        from .series import dicomdir_files, scan_files

        out: list[str] = []
        zips: list[str] = []
        seen: set[str] = set()
        store = os.fspath(self.folder.resolve())
        for f in scan_files([Path(p) for p in paths]):
            full = os.path.abspath(f)
            if full.startswith(store + os.sep) or full in seen:
                continue
            if not os.path.exists(full):
                report.errors.append((full, "file not found"))
                continue
            if os.path.basename(full).upper() == "DICOMDIR":
                try:
                    for ref in dicomdir_files(full):
                        ref = os.path.abspath(ref)
                        if ref not in seen:
                            seen.add(ref)
                            out.append(ref)
                except MedioError as exc:
                    report.errors.append((full, exc.reason))
                seen.add(full)
                continue
            seen.add(full)
            if full.lower().endswith(".zip") and zipfile.is_zipfile(full):
                zips.append(full)
                continue
            out.append(full)
        return out, zips

    def import_paths(self, paths: Iterable[str | os.PathLike[str]], copy: bool = False,
                     progress: Callable[[int, int], None] | None = None,
                     cancel: Callable[[], bool] | None = None, workers: int | None = None,
                     batch_size: int = 500, on_batch: Callable[[ImportReport], None] | None = None) -> ImportReport:
        """Import files and folders (recursive) and .zip archives; ``copy`` stores copies in the database folder.

        ``progress(done, total)`` follows the files; ``cancel()`` returning True stops
        the import between batches (what was committed stays); ``on_batch(report)`` is
        called after each committed batch.
        """
        t0 = time.perf_counter()
        report = ImportReport()
        marker = self._begin_session()
        state = {"done": 0, "total": 0}

        def step(results: list, mode: str, record: Callable[[str], str | None] | None = None,
                 writer: _StoreWriter | None = None) -> None:
            if cancel is not None and cancel():
                raise CancelledError(None, "import cancelled")
            self._commit_batch(results, mode, report, record, writer)
            state["done"] += len(results)
            if progress is not None:
                progress(state["done"], state["total"])
            if on_batch is not None:
                on_batch(report)

        try:
            files, zips = self._expand(paths, report)
            todo = self._changed(files, report, copy)
            archives = [z for z in (self._zip_members(z, report) for z in zips) if z is not None]
            state["total"] = len(files) + sum(len(a[3]) for a in archives)
            report.scanned = state["total"]
            state["done"] = report.unchanged
            if progress is not None:
                progress(state["done"], state["total"])
            writer = _StoreWriter(self) if copy and todo else None
            try:
                for chunk_result in self._parse_all(todo, workers, batch_size,
                                                    writer.lookup if writer is not None else None):
                    step(chunk_result, "copy" if copy else "link", None, writer)
            finally:
                if writer is not None:
                    writer.close()
            for archive in archives:
                self._import_zip(archive, marker, workers, batch_size, step, report)
        finally:
            self._end_session(marker)
            report.seconds = time.perf_counter() - t0
        return report

    def adopt_files(self, paths: Iterable[str | os.PathLike[str]],
                    progress: Callable[[int, int], None] | None = None,
                    cancel: Callable[[], bool] | None = None, workers: int | None = None,
                    batch_size: int = 500, on_batch: Callable[[ImportReport], None] | None = None) -> ImportReport:
        """Take files already on disk (e.g. received from a PACS) into the store without copying them again.

        Each DICOM instance is hard-linked into ``store/`` (copied when the store is on
        another file system), the batch is committed, and only then is the original
        removed; an instance the store already holds just has its original removed.
        Files that are not DICOM or cannot be read stay where they are (counted in the
        report).  Folders are walked recursively.  Same report and callbacks as
        :meth:`import_paths`; ``report.copied`` counts the files placed in the store.
        """
        from .series import scan_files

        t0 = time.perf_counter()
        report = ImportReport()
        marker = self._begin_session()
        try:
            todo = []
            for f in scan_files([Path(p) for p in paths]):
                full = os.path.abspath(f)
                try:
                    st = os.stat(full)
                except OSError as exc:
                    report.errors.append((full, f"cannot read: {exc.strerror or exc}"))
                    continue
                todo.append((full, st.st_size, st.st_mtime))
            report.scanned = total = len(todo)
            done = 0
            if progress is not None:
                progress(done, total)
            writer = _StoreWriter(self, link=True)
            try:
                for chunk_result in self._parse_all(todo, workers, batch_size, writer.lookup):
                    if cancel is not None and cancel():
                        raise CancelledError(None, "import cancelled")
                    self._commit_batch(chunk_result, "move", report, record=lambda p: None, writer=writer)
                    done += len(chunk_result)
                    if progress is not None:
                        progress(done, total)
                    if on_batch is not None:
                        on_batch(report)
            finally:
                writer.close()
        finally:
            self._end_session(marker)
            report.seconds = time.perf_counter() - t0
        return report

    def _changed(self, files: list[str], report: ImportReport, copy: bool = False) -> list[tuple[str, int, float]]:
        """Files to parse: new or modified ones, and (``copy``) those whose instance is only linked."""
        known: dict[str, tuple[int, float, bool]] = {}
        c = self.conn
        for i in range(0, len(files), 500):
            part = files[i:i + 500]
            q = ("SELECT f.path, f.size, f.mtime, f.sop_uid IS NULL OR COALESCE(i.stored, 0) = 1 "
                 "FROM files f LEFT JOIN instances i ON i.sop_uid = f.sop_uid "
                 f"WHERE f.path IN ({','.join('?' * len(part))})")
            for row in c.execute(q, part):
                known[row[0]] = (row[1], row[2], bool(row[3]))
        todo = []
        for f in files:
            try:
                st = os.stat(f)
            except OSError as exc:
                report.errors.append((f, f"cannot read: {exc.strerror or exc}"))
                continue
            k = known.get(f)
            if k is not None and k[0] == st.st_size and abs(k[1] - st.st_mtime) < 1e-6 and (k[2] or not copy):
                report.unchanged += 1
                continue
            todo.append((f, st.st_size, st.st_mtime))
        return todo

    # -- zip archives --------------------------------------------------------------------------
    def _zip_members(self, path: str, report: ImportReport) -> tuple | None:
        """(archive, size, mtime, changed member names) of one .zip; unchanged members are counted."""
        import zipfile

        try:
            st = os.stat(path)
            with zipfile.ZipFile(path) as zf:
                names = [i.filename for i in zf.infolist() if not i.is_dir()]
        except (OSError, zipfile.BadZipFile) as exc:
            report.errors.append((path, f"not a readable zip archive: {exc}"))
            return None
        report.archives += 1
        safe = []
        for n in names:
            parts = n.replace("\\", "/").split("/")
            if n.startswith(("/", "\\")) or ".." in parts or (parts and ":" in parts[0]):
                report.errors.append((f"{path}/{n}", "unsafe member name in the zip archive: skipped"))
            else:
                safe.append(n)
        keys = [f"{path}/{n}" for n in safe]
        known: dict[str, tuple] = {}
        for i in range(0, len(keys), 500):
            part = keys[i:i + 500]
            for row in self.conn.execute(
                    f"SELECT path, size, mtime FROM files WHERE path IN ({','.join('?' * len(part))})", part):
                known[row[0]] = (row[1], row[2])
        changed = []
        for n, k in zip(safe, keys):
            kn = known.get(k)
            if kn is not None and kn[0] == st.st_size and abs(kn[1] - st.st_mtime) < 1e-6:
                report.unchanged += 1
            else:
                changed.append(n)
        return path, st.st_size, st.st_mtime, changed

    def _import_zip(self, archive: tuple, marker: Path, workers: int | None, batch_size: int,
                    step: Callable, report: ImportReport) -> None:
        """Extract the changed members into ``incoming/`` (same file system as the store) and adopt them."""
        import zipfile

        path, size, mtime, names = archive
        if not names:
            return
        staging = self.folder / INCOMING / marker.name
        keys: dict[str, str] = {}
        writer = _StoreWriter(self, link=True)
        try:
            with zipfile.ZipFile(path) as zf:
                for i in range(0, len(names), batch_size):
                    part = names[i:i + batch_size]
                    todo = []
                    for n in part:
                        target = staging.joinpath(*[x for x in n.replace("\\", "/").split("/") if x])
                        target.parent.mkdir(parents=True, exist_ok=True)
                        try:
                            with zf.open(n) as src, open(target, "wb") as dst:
                                shutil.copyfileobj(src, dst, 1 << 20)
                        except (OSError, zipfile.BadZipFile, EOFError, RuntimeError, ValueError) as exc:
                            report.errors.append((f"{path}/{n}", f"cannot extract from the zip archive: {exc}"))
                            continue
                        keys[os.fspath(target)] = f"{path}/{n}"
                        todo.append((os.fspath(target), size, mtime))
                    for chunk_result in self._parse_all(todo, workers, batch_size, writer.lookup):
                        step(chunk_result, "move", keys.get, writer)
                    # Members not taken into the store (non-DICOM, errors) go too.
                    for p, _, _ in todo:
                        with contextlib.suppress(OSError):
                            os.unlink(p)
        except (OSError, zipfile.BadZipFile) as exc:
            report.errors.append((path, f"not a readable zip archive: {exc}"))
        finally:
            writer.close()
            shutil.rmtree(staging, ignore_errors=True)

    def _parse_all(self, todo: list[tuple[str, int, float]], workers: int | None, batch_size: int,
                   on_parsed: Callable[[list], None] | None = None):
        """Yield lists of (path, size, mtime, header|None, error) per batch; a process pool for big imports.

        ``on_parsed(results)`` sees the results in small groups as soon as they are parsed
        (the store writer starts copying them while the rest of the batch is parsed)."""
        stats = {p: (s, m) for p, s, m in todo}
        paths = [p for p, _, _ in todo]
        n_workers = workers if workers is not None else (os.cpu_count() or 1)
        batches = [paths[i:i + batch_size] for i in range(0, len(paths), batch_size)]

        def attach(results):
            return [(p, stats[p][0], stats[p][1], h, e) for p, h, e in results]

        if n_workers <= 1 or len(paths) < 1000:
            for b in batches:
                if on_parsed is None:
                    yield attach(_parse_chunk(b))
                    continue
                results = []
                for i in range(0, len(b), 8):
                    part = attach(_parse_chunk(b[i:i + 8]))
                    on_parsed(part)
                    results.extend(part)
                yield results
            return
        ctx = _mp_context()
        # Smaller chunks for the workers so both stay busy; results are regrouped per batch.
        with ProcessPoolExecutor(max_workers=n_workers, mp_context=ctx) as pool:
            sub = max(32, batch_size // (2 * n_workers))
            futures = [[pool.submit(_parse_chunk, b[i:i + sub]) for i in range(0, len(b), sub)] for b in batches]
            for group in futures:
                results = []
                for fut in group:
                    part = attach(fut.result())
                    if on_parsed is not None:
                        on_parsed(part)
                    results.extend(part)
                yield results

    def _commit_batch(self, results: list, mode: str, report: ImportReport,
                      record: Callable[[str], str | None] | None = None,
                      writer: _StoreWriter | None = None) -> None:
        """Store one parsed batch.  ``mode``: "link" (rows point at the files), "copy" (copies in the
        store) or "move" (hard link or copy into the store, then the originals are removed).
        ``record(path)`` gives the ``files`` table key of a path (None: not remembered);
        ``writer`` is the store writer that may already be copying the batch's files."""
        now = time.time()
        stored = mode in ("copy", "move")
        own_writer = None
        if stored and writer is None:
            writer = own_writer = _StoreWriter(self, link=(mode == "move"))
        if writer is not None:
            writer.lookup(results)
        rows = _batch_rows(results, report, record, writer if stored else None, now)
        # The copies (atomic renames) are all in place before the transaction below makes them visible.
        adopted: list[str] = []
        try:
            if rows.to_copy:
                assert writer is not None
                failed = _await_copies(writer, rows.to_copy, report, record)
                if failed:
                    rows.instances = [r for r in rows.instances if r[4] not in failed]
                if mode == "move":
                    adopted = [src for dest, src in rows.to_copy.items() if dest not in failed]
            with self._transaction() as c:
                report.added += _insert_rows(c, rows, now)
            if writer is not None:
                writer.committed(rows.to_copy)
        finally:
            if own_writer is not None:
                own_writer.close()
        # The rows are committed: the originals of adopted files can go.
        for src in adopted:
            with contextlib.suppress(OSError):
                os.unlink(src)

    # -- sessions and orphans ------------------------------------------------------------------
    def _sessions(self) -> Path:
        d = self.folder / "sessions"
        d.mkdir(exist_ok=True)
        return d

    def _begin_session(self) -> Path:
        d = self._sessions()
        stale = []
        live = []
        for m in d.iterdir():
            try:
                pid = int(m.name.split("-")[0])
            except ValueError:
                stale.append(m)
                continue
            (live if _alive(pid) and pid != os.getpid() else stale).append(m)
        marker = d / f"{os.getpid()}-{time.time_ns()}"
        marker.write_text("")
        if stale and not live:
            self.remove_orphans()
        for m in stale:
            with contextlib.suppress(OSError):
                m.unlink()
        incoming = self.folder / INCOMING
        if incoming.is_dir():  # zip members a killed import left half-adopted
            for d in incoming.iterdir():
                try:
                    pid = int(d.name.split("-")[0])
                except ValueError:
                    pid = -1
                if pid < 0 or not _alive(pid):
                    shutil.rmtree(d, ignore_errors=True)
        return marker

    def _end_session(self, marker: Path) -> None:
        with contextlib.suppress(OSError):
            marker.unlink()

    def remove_orphans(self) -> dict:
        """Delete stored files no row references and rows whose series/study/patient is gone."""
        removed_files = 0
        if self.store.is_dir():
            referenced = {r[0] for r in self.conn.execute("SELECT path FROM instances WHERE stored=1")}
            for root, _, names in os.walk(self.store):
                for n in names:
                    full = os.path.join(root, n)
                    if full not in referenced:
                        with contextlib.suppress(OSError):
                            os.unlink(full)
                            removed_files += 1
        with self._transaction() as c:
            c.execute("DELETE FROM instances WHERE series_uid NOT IN (SELECT uid FROM series)")
            c.execute("DELETE FROM series WHERE study_uid NOT IN (SELECT uid FROM studies)")
            c.execute("DELETE FROM studies WHERE patient NOT IN (SELECT id FROM patients)")
        return {"files": removed_files}

    # -- queries -------------------------------------------------------------------------------
    def counts(self) -> dict:
        c = self.conn
        return {t: c.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
                for t in ("patients", "studies", "series", "instances")}

    def patients(self, search: str = "") -> list[dict]:
        """Patients with study counts; ``search`` matches any shown text of the patient, studies or series."""
        where, args = self._search_clause(search)
        q = ("SELECT p.id, p.patient_id, p.name, p.birth_date, p.sex, COUNT(DISTINCT st.uid) AS studies "
             "FROM patients p JOIN studies st ON st.patient = p.id JOIN series se ON se.study_uid = st.uid "
             f"{where} GROUP BY p.id ORDER BY p.name, p.patient_id")
        return [dict(r) for r in self.conn.execute(q, args)]

    def studies(self, patient: int | None = None, search: str = "") -> list[dict]:
        where, args = self._search_clause(search)
        if patient is not None:
            where = (where + " AND " if where else "WHERE ") + "p.id = ?"
            args = list(args) + [patient]
        q = ("SELECT st.uid, st.date, st.time, st.description, st.accession, st.study_id, p.id AS patient, "
             "p.name AS patient_name, p.patient_id, COUNT(DISTINCT se.uid) AS series "
             "FROM studies st JOIN patients p ON st.patient = p.id JOIN series se ON se.study_uid = st.uid "
             f"{where} GROUP BY st.uid ORDER BY st.date, st.time")
        return [dict(r) for r in self.conn.execute(q, args)]

    def series(self, study_uid: str | None = None, search: str = "") -> list[dict]:
        where, args = self._search_clause(search)
        if study_uid is not None:
            where = (where + " AND " if where else "WHERE ") + "st.uid = ?"
            args = list(args) + [study_uid]
        q = ("SELECT se.uid, se.number, se.description, se.modality, se.date, se.study_uid, "
             "(SELECT COUNT(*) FROM instances i WHERE i.series_uid = se.uid) AS images, "
             "(SELECT COALESCE(SUM(i.size), 0) FROM instances i WHERE i.series_uid = se.uid) AS size "
             "FROM series se JOIN studies st ON se.study_uid = st.uid JOIN patients p ON st.patient = p.id "
             f"{where} ORDER BY se.number, se.description")
        return [dict(r) for r in self.conn.execute(q, args)]

    @staticmethod
    def _search_clause(search: str) -> tuple[str, list]:
        text = (search or "").strip()
        if not text:
            return "", []
        like = f"%{text}%"
        cols = ["p.name", "p.patient_id", "st.description", "st.accession", "st.date", "se.description",
                "se.modality", "CAST(se.number AS TEXT)", "se.uid", "st.uid"]
        return "WHERE (" + " OR ".join(f"{c} LIKE ?" for c in cols) + ")", [like] * len(cols)

    def tree(self) -> list[dict]:
        """Patients -> studies -> series with UIDs and counts (``medio dicom list --json``)."""
        out = []
        for p in self.patients():
            studies = []
            for st in self.studies(patient=p["id"]):
                studies.append({**{k: st[k] for k in ("uid", "date", "description", "accession")},
                                "series": self.series(study_uid=st["uid"])})
            out.append({"patient_id": p["patient_id"], "name": p["name"], "birth_date": p["birth_date"],
                        "sex": p["sex"], "studies": studies})
        return out

    def instance_files(self, series_uid: str) -> tuple[list[str], list[str]]:
        """(existing files, missing files) of a series."""
        rows = self.conn.execute("SELECT path FROM instances WHERE series_uid=? ORDER BY instance_number",
                                 (series_uid,)).fetchall()
        present, missing = [], []
        for (p,) in rows:
            (present if os.path.exists(p) else missing).append(p)
        return present, missing

    def instances(self, series_uid: str) -> list[dict]:
        return [dict(r) for r in self.conn.execute(
            "SELECT * FROM instances WHERE series_uid=? ORDER BY instance_number", (series_uid,))]

    def series_info(self, series_uid: str) -> dict | None:
        r = self.conn.execute("SELECT * FROM series WHERE uid=?", (series_uid,)).fetchone()
        return dict(r) if r else None

    def load_series(self, series_uid: str, progress: Callable[[int, int], None] | None = None,
                    cancel: Callable[[], bool] | None = None) -> list:
        """The volumes of one series, or its SEG / RT / SR objects, read as ``napari_medio.read`` reads the files.

        Missing link targets are reported, not crashed on.
        """
        import warnings

        from .format import read_non_image_objects
        from .series import DicomWarning, load_volumes, read_headers

        if self.series_info(series_uid) is None:
            raise MedioError(None, f"no series {series_uid} in the DICOM database {self.folder}")
        files, missing = self.instance_files(series_uid)
        if not files:
            raise MedioError(missing[0] if missing else None,
                             f"none of the {len(missing)} files of series {series_uid} exist any more")
        if missing:
            warnings.warn(f"{len(missing)} file(s) of series {series_uid} are missing (e.g. {missing[0]})",
                          DicomWarning, stacklevel=2)
        headers, problems, _ = read_headers(files, cancel=cancel)
        headers = [h for h in headers if h.get("SeriesInstanceUID") == series_uid]
        volumes, _, failed, others = load_volumes(headers, progress, cancel)
        objects, object_failed = read_non_image_objects(others) if others else ([], {})
        if not volumes and not objects:
            failed = {**failed, **object_failed}
            reason = "; ".join(r if r.startswith(p) else f"{p}: {r}" for p, r in list(failed.items())[:3])
            if not reason:
                kinds = ", ".join(sorted({str(h.get("Modality") or "non-image") for h in headers})) or "no"
                reason = f"series {series_uid} holds {kinds} objects that napari-medio does not load"
            raise MedioError(None, reason)
        for reason in object_failed.values():
            warnings.warn(reason, DicomWarning, stacklevel=2)
        return list(volumes) + objects

    def header_text(self, sop_uid: str) -> str:
        """Every tag of an instance as text, nested sequences included."""
        import pydicom

        row = self.conn.execute("SELECT path FROM instances WHERE sop_uid=?", (sop_uid,)).fetchone()
        if row is None:
            raise MedioError(None, f"no instance {sop_uid}")
        try:
            ds = pydicom.dcmread(row[0], force=True, defer_size=256)
        except Exception as exc:
            raise MedioError(row[0], f"cannot read: {exc}") from None
        return str(ds)

    # -- delete --------------------------------------------------------------------------------
    def delete_series(self, uids: Sequence[str]) -> int:
        """Remove series (and their copied files); empty studies and patients go too."""
        uids = list(uids)
        if not uids:
            return 0
        q = ",".join("?" * len(uids))
        marker = self._begin_session()
        try:
            with self._transaction() as c:
                stored = [r[0] for r in c.execute(
                    f"SELECT path FROM instances WHERE stored=1 AND series_uid IN ({q})", uids)]
                n = c.execute(f"SELECT COUNT(*) FROM instances WHERE series_uid IN ({q})", uids).fetchone()[0]
                c.execute("DELETE FROM files WHERE sop_uid IN "
                          f"(SELECT sop_uid FROM instances WHERE series_uid IN ({q}))", uids)
                c.execute(f"DELETE FROM instances WHERE series_uid IN ({q})", uids)
                c.execute(f"DELETE FROM series WHERE uid IN ({q})", uids)
                c.execute("DELETE FROM studies WHERE uid NOT IN (SELECT study_uid FROM series)")
                c.execute("DELETE FROM patients WHERE id NOT IN (SELECT patient FROM studies)")
            for p in stored:
                with contextlib.suppress(OSError):
                    os.unlink(p)
        finally:
            self._end_session(marker)
        return int(n)

    def delete_studies(self, uids: Sequence[str]) -> int:
        q = ",".join("?" * len(uids))
        series = [r[0] for r in self.conn.execute(f"SELECT uid FROM series WHERE study_uid IN ({q})", list(uids))]
        return self.delete_series(series)

    def delete_patients(self, ids: Sequence[int]) -> int:
        q = ",".join("?" * len(ids))
        series = [r[0] for r in self.conn.execute(
            f"SELECT se.uid FROM series se JOIN studies st ON se.study_uid = st.uid WHERE st.patient IN ({q})",
            list(ids))]
        return self.delete_series(series)

    def integrity(self) -> dict:
        """Consistency figures (for tests and ``medio dicom list``)."""
        c = self.conn
        orphan_rows = c.execute(
            "SELECT (SELECT COUNT(*) FROM instances WHERE series_uid NOT IN (SELECT uid FROM series)) + "
            "(SELECT COUNT(*) FROM series WHERE study_uid NOT IN (SELECT uid FROM studies)) + "
            "(SELECT COUNT(*) FROM studies WHERE patient NOT IN (SELECT id FROM patients))").fetchone()[0]
        stored = {r[0] for r in c.execute("SELECT path FROM instances WHERE stored=1")}
        on_disk = set()
        if self.store.is_dir():
            for root, _, names in os.walk(self.store):
                on_disk.update(os.path.join(root, n) for n in names)
        return {"check": c.execute("PRAGMA integrity_check").fetchone()[0], "orphan_rows": orphan_rows,
                "orphan_files": len(on_disk - stored), "missing_stored_files": len(stored - on_disk)}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is not alive.
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ", 1)[1][:1] != "Z"
    except (OSError, IndexError):
        return True


def _mp_context():
    """fork is fastest, but unsafe in a process running Qt threads: use spawn there."""
    import multiprocessing as mp
    import sys
    import threading

    if sys.platform.startswith("linux") and threading.active_count() == 1 and not any(
            m in sys.modules for m in ("PyQt5", "PyQt6", "PySide2", "PySide6")):
        return mp.get_context("fork")
    return mp.get_context("spawn")

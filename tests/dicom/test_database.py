"""The DICOM database: import modes, idempotence, incremental, DICOMDIR, delete, search, CLI, crash and concurrency."""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from pydicom.uid import generate_uid

from napari_medio.cli import main as medio
from napari_medio.core import registry
from napari_medio.dicom.database import SCHEMA_VERSION, DicomDatabase
from napari_medio.dicom.series import DicomWarning
from tests.conftest import fixture_file

from ._make import make_series

PY = sys.executable


def two_series(root: Path, n1=3, n2=4):
    study = generate_uid()
    d1, p1, u1 = make_series(root / "s1", n=n1, study_uid=study, series_number=1, description="Axial A")
    d2, p2, u2 = make_series(root / "s2", n=n2, study_uid=study, series_number=2, description="Axial B",
                             origin=(0, 0, 100), seed=5)
    return (d1, p1, u1), (d2, p2, u2)


def test_link_import_is_idempotent_and_incremental(tmp_path):
    (d1, p1, u1), (d2, p2, u2) = two_series(tmp_path / "in")
    (tmp_path / "in" / "notes.txt").write_text("not DICOM")
    db = DicomDatabase(tmp_path / "db")
    assert db.schema_version == SCHEMA_VERSION
    r = db.import_paths([tmp_path / "in"])
    assert (r.added, r.non_dicom, r.copied) == (7, 1, 0)
    assert db.counts() == {"patients": 1, "studies": 1, "series": 2, "instances": 7}
    r = db.import_paths([tmp_path / "in"])
    assert (r.added, r.unchanged) == (0, 8)
    # Change one file: only it is parsed again.
    os.utime(p1[0], (time.time() + 10, time.time() + 10))
    r = db.import_paths([tmp_path / "in"])
    assert (r.unchanged, r.added) == (7, 0)
    assert db.counts()["instances"] == 7
    (vol,) = db.load_series(u1["series"])
    np.testing.assert_array_equal(vol.to_numpy(), d1)
    assert db.integrity()["check"] == "ok"
    with sqlite3.connect(db.path) as c:
        assert c.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        names = {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type='index'")}
        assert {"instances_series", "series_study", "studies_patient"} <= names


def test_copy_mode_is_content_addressed_and_delete_removes_copies(tmp_path):
    (d1, p1, u1), (d2, p2, u2) = two_series(tmp_path / "in")
    db = DicomDatabase(tmp_path / "db")
    r = db.import_paths([tmp_path / "in"], copy=True)
    assert r.copied == 7
    # The same instances from another place are stored once.
    import shutil

    shutil.copytree(tmp_path / "in", tmp_path / "again")
    r = db.import_paths([tmp_path / "again"], copy=True)
    assert r.copied == 0 and db.counts()["instances"] == 7
    stored = list((tmp_path / "db" / "store").rglob("*.dcm"))
    assert len(stored) == 7
    shutil.rmtree(tmp_path / "in")  # copies do not depend on the originals
    (vol,) = db.load_series(u2["series"])
    np.testing.assert_array_equal(vol.to_numpy(), d2)
    assert db.delete_series([u1["series"]]) == 3
    assert len(list((tmp_path / "db" / "store").rglob("*.dcm"))) == 4
    assert db.counts() == {"patients": 1, "studies": 1, "series": 1, "instances": 4}
    db.delete_studies([u2["study"]])
    assert db.counts() == {"patients": 0, "studies": 0, "series": 0, "instances": 0}
    assert db.integrity() == {"check": "ok", "orphan_rows": 0, "orphan_files": 0, "missing_stored_files": 0}


def test_missing_link_targets_are_reported(tmp_path):
    (d1, p1, u1), _ = two_series(tmp_path / "in")
    db = DicomDatabase(tmp_path / "db")
    db.import_paths([tmp_path / "in"])
    p1[0].unlink()
    with pytest.warns(DicomWarning, match="missing"):
        (vol,) = db.load_series(u1["series"])
    assert vol.shape[0] == 2
    for p in p1[1:]:
        p.unlink()
    with pytest.raises(Exception, match="exist any more"):
        db.load_series(u1["series"])


def test_search_and_browser_columns(tmp_path):
    two_series(tmp_path / "in")
    db = DicomDatabase(tmp_path / "db")
    db.import_paths([tmp_path / "in"])
    (p,) = db.patients()
    assert p["name"] == "Test^Patient" and p["birth_date"] == "19700101" and p["sex"] == "O"
    (st,) = db.studies(patient=p["id"])
    assert st["description"] == "Test study" and st["accession"] == "ACC1" and st["date"] == "20240102"
    series = db.series(study_uid=st["uid"])
    assert [(s["number"], s["description"], s["modality"], s["images"]) for s in series] == [
        (1, "Axial A", "CT", 3), (2, "Axial B", "CT", 4)]
    assert all(s["size"] > 0 for s in series)
    assert [s["description"] for s in db.series(search="xial b")] == ["Axial B"]
    assert db.patients(search="nobody") == []
    inst = db.instances(series[0]["uid"])[0]
    text = db.header_text(inst["sop_uid"])
    assert "Patient's Name" in text and "Test^Patient" in text


def test_dicomdir_import_matches_folder_scan(tmp_path):
    root = fixture_file("dicom/pydicom/dicomdirtests")
    a = DicomDatabase(tmp_path / "a")
    a.import_paths([root / "DICOMDIR"])
    b = DicomDatabase(tmp_path / "b")
    b.import_paths([root / "77654033", root / "98892001", root / "98892003"])
    def uids(db):
        return sorted(r[0] for r in db.conn.execute("SELECT sop_uid FROM instances"))
    assert uids(a) == uids(b) and len(uids(a)) > 10


def test_schema_migration_path(tmp_path, monkeypatch):
    from napari_medio.dicom import database as dbmod

    db = DicomDatabase(tmp_path / "db")
    db.close()
    monkeypatch.setattr(dbmod, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    monkeypatch.setitem(dbmod.MIGRATIONS, SCHEMA_VERSION + 1, "ALTER TABLE series ADD COLUMN protocol TEXT")
    db = dbmod.DicomDatabase(tmp_path / "db")
    assert db.schema_version == SCHEMA_VERSION + 1
    assert "protocol" in [r[1] for r in db.conn.execute("PRAGMA table_info(series)")]
    db.close()
    monkeypatch.setattr(dbmod, "SCHEMA_VERSION", SCHEMA_VERSION)
    with pytest.raises(Exception, match="newer"):
        dbmod.DicomDatabase(tmp_path / "db")


# -- CLI ------------------------------------------------------------------------------------------
def test_cli_import_list_load(tmp_path, capsys):
    (d1, p1, u1), (d2, p2, u2) = two_series(tmp_path / "in")
    db = str(tmp_path / "db")
    assert medio(["dicom", "import", str(tmp_path / "in"), "--db", db, "--copy", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["added"] == 7 and report["copied"] == 7
    assert medio(["dicom", "list", "--db", db, "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    (patient,) = listing["patients"]
    series = patient["studies"][0]["series"]
    assert [(s["uid"], s["images"]) for s in series] == [(u1["series"], 3), (u2["series"], 4)]
    assert medio(["dicom", "list", "--db", db]) == 0
    assert "Axial B" in capsys.readouterr().out
    out = tmp_path / "out.nrrd"
    assert medio(["dicom", "load", u2["series"], str(out), "--db", db]) == 0
    (vol,) = registry.read(out)
    np.testing.assert_array_equal(vol.to_numpy(), d2)
    np.testing.assert_allclose(vol.geometry.origin, [0, 0, 100])
    assert medio(["dicom", "load", "1.2.3.999", str(out), "--db", db]) == 1


def test_cli_subprocess_progress(tmp_path):
    two_series(tmp_path / "in")
    r = subprocess.run([PY, "-m", "napari_medio.cli", "dicom", "import", str(tmp_path / "in"), "--db",
                        str(tmp_path / "db")], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "7 instance(s) added" in r.stdout


# -- crash safety and concurrency -----------------------------------------------------------------
def _many(root: Path, n_series=4, n=60):
    study = generate_uid()
    for s in range(n_series):
        make_series(root / f"s{s}", n=n, shape=(4, 4), study_uid=study, series_number=s + 1, seed=s, shuffle=False)
    return n_series * n


DRIVER = str(Path(__file__).with_name("_import_driver.py"))


def test_sigkill_mid_import_then_repeat(tmp_path):
    total = _many(tmp_path / "in")
    dbdir = tmp_path / "db"
    # The driver holds the import after its 8th committed batch of 10 (on_batch), so the kill lands
    # mid-import however slowly this machine runs.
    held = [PY, DRIVER, str(tmp_path / "in"), "--db", str(dbdir), "--copy", "--batch-size", "10", "--hold-after", "8"]
    proc = subprocess.Popen(held, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    count = 0
    while time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
        try:
            with sqlite3.connect(dbdir / "medio-dicom.sqlite", timeout=5) as c:
                count = c.execute("SELECT COUNT(*) FROM instances").fetchone()[0]
        except sqlite3.Error:
            continue
        if count >= 80:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL  # killed, not finished
    assert 0 < count < total, count
    db = DicomDatabase(dbdir)
    partial = db.counts()["instances"]
    assert partial < total
    assert db.integrity()["orphan_rows"] == 0 and db.integrity()["check"] == "ok"
    # The repeat is the ordinary CLI import.
    cmd = [PY, "-m", "napari_medio.cli", "dicom", "import", str(tmp_path / "in"), "--db", str(dbdir), "--copy",
           "--json"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["added"] == total - partial
    db = DicomDatabase(dbdir)
    assert db.counts()["instances"] == total
    assert db.integrity() == {"check": "ok", "orphan_rows": 0, "orphan_files": 0, "missing_stored_files": 0}


def test_two_processes_share_one_database(tmp_path):
    total_a = _many(tmp_path / "a", n_series=3, n=40)
    total_b = _many(tmp_path / "b", n_series=3, n=40)
    dbdir = tmp_path / "db"
    procs = [subprocess.Popen([PY, DRIVER, str(tmp_path / x), str(tmp_path / "a"), "--db", str(dbdir), "--copy",
                               "--batch-size", "7", "--delay", "0.01"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for x in ("a", "b")]
    for p in procs:
        out, err = p.communicate(timeout=180)
        assert p.returncode == 0, err
    db = DicomDatabase(dbdir)
    assert db.counts()["instances"] == total_a + total_b
    assert db.integrity() == {"check": "ok", "orphan_rows": 0, "orphan_files": 0, "missing_stored_files": 0}


def test_on_batch_callback_and_no_environment_switch(tmp_path):
    total = _many(tmp_path / "in", n_series=2, n=15)
    seen = []
    db = DicomDatabase(tmp_path / "db")
    db.import_paths([tmp_path / "in"], batch_size=10, workers=1, on_batch=lambda r: seen.append(r.added))
    assert seen == [10, 20, 30] and total == 30
    import napari_medio.dicom.database as dbmod

    assert "TEST_BATCH_DELAY" not in Path(dbmod.__file__).read_text()


# -- copy after link, zip archives, adopting received files ---------------------------------------
def test_linked_file_reimported_in_copy_mode_is_copied(tmp_path):
    (d1, p1, u1), (d2, p2, u2) = two_series(tmp_path / "in")
    db = DicomDatabase(tmp_path / "db")
    r = db.import_paths([tmp_path / "in"])
    assert (r.added, r.copied) == (7, 0)
    assert {i["stored"] for i in db.instances(u1["series"])} == {0}
    r = db.import_paths([tmp_path / "in"], copy=True)
    assert (r.added, r.copied, r.unchanged) == (0, 7, 0)
    assert db.counts()["instances"] == 7
    for uid in (u1["series"], u2["series"]):
        assert {i["stored"] for i in db.instances(uid)} == {1}
        assert all(i["path"].startswith(str(tmp_path / "db" / "store")) for i in db.instances(uid))
    # Now idempotent in both modes, and the copies outlive the originals.
    assert db.import_paths([tmp_path / "in"], copy=True).unchanged == 7
    assert db.import_paths([tmp_path / "in"]).unchanged == 7
    import shutil

    shutil.rmtree(tmp_path / "in")
    (vol,) = db.load_series(u1["series"])
    np.testing.assert_array_equal(vol.to_numpy(), d1)
    assert db.integrity() == {"check": "ok", "orphan_rows": 0, "orphan_files": 0, "missing_stored_files": 0}


def _zip_of(folder: Path, target: Path, extra: dict = None) -> Path:
    import zipfile

    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in sorted(folder.rglob("*")):
            if f.is_file():
                zf.write(f, f.relative_to(folder).as_posix())
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
    return target


@pytest.mark.parametrize("copy", [False, True])
def test_zip_import_stores_members_and_is_idempotent(tmp_path, copy):
    (d1, p1, u1), (d2, p2, u2) = two_series(tmp_path / "in")
    archive = _zip_of(tmp_path / "in", tmp_path / "series.zip", {"readme.txt": "not DICOM", "empty.dcm": b""})
    db = DicomDatabase(tmp_path / "db")
    r = db.import_paths([archive], copy=copy)
    # Members cannot be linked inside an archive: they are stored in the database in both modes.
    assert (r.archives, r.added, r.copied, r.non_dicom, r.scanned) == (1, 7, 7, 1, 9)
    assert [e[0] for e in r.errors] == [f"{archive}/empty.dcm"] and r.errors[0][1] == "empty file"
    assert db.counts() == {"patients": 1, "studies": 1, "series": 2, "instances": 7}
    for uid in (u1["series"], u2["series"]):
        assert {i["stored"] for i in db.instances(uid)} == {1}
    assert not (tmp_path / "db" / "incoming").exists() or not any((tmp_path / "db" / "incoming").iterdir())
    archive_copy = tmp_path / "elsewhere.zip"
    archive.replace(archive_copy)
    archive = archive_copy
    r = db.import_paths([archive], copy=copy)  # a new path: parsed again, nothing new stored
    assert (r.added, r.copied, r.unchanged) == (0, 0, 0)
    r = db.import_paths([archive], copy=copy)  # the same archive again: nothing parsed
    assert (r.added, r.copied, r.unchanged, r.non_dicom) == (0, 0, 9, 0)
    # An archive found in a folder scan is read too; a folder holding the same instances adds nothing.
    r = db.import_paths([tmp_path], copy=copy)
    assert r.added == 0 and db.counts()["instances"] == 7
    (vol,) = db.load_series(u2["series"])
    np.testing.assert_array_equal(vol.to_numpy(), d2)
    # Deleting a series and importing the archive again brings it back.
    db.delete_series([u1["series"]])
    r = db.import_paths([archive], copy=copy)
    assert (r.added, r.copied) == (3, 3)
    assert db.integrity() == {"check": "ok", "orphan_rows": 0, "orphan_files": 0, "missing_stored_files": 0}


def test_zip_with_unsafe_or_broken_members(tmp_path):
    two_series(tmp_path / "in")
    archive = _zip_of(tmp_path / "in", tmp_path / "a.zip", {"../evil.dcm": b"x"})
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    db = DicomDatabase(tmp_path / "db")
    r = db.import_paths([archive, bad])
    assert r.added == 7
    assert any("unsafe member" in reason for _, reason in r.errors)
    assert not (tmp_path / "evil.dcm").exists()


def test_adopt_files_moves_received_files_into_the_store(tmp_path):
    (d1, p1, u1), (d2, p2, u2) = two_series(tmp_path / "received")
    (tmp_path / "received" / "note.txt").write_text("not DICOM")
    db = DicomDatabase(tmp_path / "db")
    inodes = {os.stat(p).st_ino for p in p1 + p2}
    r = db.adopt_files([tmp_path / "received"])
    assert (r.added, r.copied, r.non_dicom) == (7, 7, 1)
    assert not any(p.exists() for p in p1 + p2)  # taken over, not duplicated
    assert (tmp_path / "received" / "note.txt").exists()  # not DICOM: left alone
    stored = list((tmp_path / "db" / "store").rglob("*.dcm"))
    assert len(stored) == 7 and {os.stat(p).st_ino for p in stored} == inodes  # hard links: no second copy
    for uid in (u1["series"], u2["series"]):
        assert {i["stored"] for i in db.instances(uid)} == {1}
    (vol,) = db.load_series(u1["series"])
    np.testing.assert_array_equal(vol.to_numpy(), d1)
    # An instance the store already holds: the new file is simply removed.
    (d3, p3, u3) = make_series(tmp_path / "again", n=2, seed=3)
    import shutil

    dup = tmp_path / "dup.dcm"
    shutil.copy(stored[0], dup)
    r = db.adopt_files([dup] + p3)
    assert (r.added, r.copied) == (2, 2) and not dup.exists()
    assert db.counts()["instances"] == 9
    assert db.integrity() == {"check": "ok", "orphan_rows": 0, "orphan_files": 0, "missing_stored_files": 0}


def test_adopt_across_file_systems_copies_then_removes(tmp_path, monkeypatch):
    (d1, p1, u1), _ = two_series(tmp_path / "received")

    def no_link(src, dst):
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", no_link)
    db = DicomDatabase(tmp_path / "db")
    r = db.adopt_files(p1)
    assert (r.added, r.copied) == (3, 3) and not any(p.exists() for p in p1)
    (vol,) = db.load_series(u1["series"])
    np.testing.assert_array_equal(vol.to_numpy(), d1)


def test_killed_adoption_loses_nothing(tmp_path, monkeypatch):
    """Rows commit before the originals are removed: a crash in the commit leaves the originals."""
    (d1, p1, u1), _ = two_series(tmp_path / "received")
    db = DicomDatabase(tmp_path / "db")
    real = db._transaction

    def crash():
        raise KeyboardInterrupt  # stands for the process dying before COMMIT

    import contextlib

    @contextlib.contextmanager
    def failing():
        with real() as c:
            yield c
            crash()

    monkeypatch.setattr(db, "_transaction", failing)
    with pytest.raises(KeyboardInterrupt):
        db.adopt_files(p1)
    monkeypatch.undo()
    assert all(p.exists() for p in p1) and db.counts()["instances"] == 0
    db.remove_orphans()  # what the next import does after a crash
    r = db.adopt_files(p1)
    assert r.added == 3 and not any(p.exists() for p in p1)
    assert db.integrity() == {"check": "ok", "orphan_rows": 0, "orphan_files": 0, "missing_stored_files": 0}


def test_cli_import_reports_problems_and_zip(tmp_path, capsys):
    two_series(tmp_path / "in")
    empty = tmp_path / "in" / "empty.dcm"
    empty.write_bytes(b"")
    db = str(tmp_path / "db")
    assert medio(["dicom", "import", str(tmp_path / "in"), "--db", db]) == 0
    out, err = capsys.readouterr()
    assert "7 instance(s) added" in out and "1 problem(s)" in out
    assert f"medio: {empty}: empty file" in err
    archive = _zip_of(tmp_path / "in", tmp_path / "a.zip")
    assert medio(["dicom", "import", str(archive), "--db", db, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["archives"] == 1 and report["copied"] == 7
    assert report["errors"] == [[f"{archive}/empty.dcm", "empty file"]]


# -- copy mode: copies, cancel -------------------------------------------------------------------------------
def test_copy_mode_copies_are_byte_identical(tmp_path):
    """Copies are byte for byte the originals, placed under their names with no temporary file left."""
    import filecmp

    total = _many(tmp_path / "in", n_series=2, n=12)
    db = DicomDatabase(tmp_path / "db")
    r = db.import_paths([tmp_path / "in"], copy=True, batch_size=5, workers=1)
    assert (r.added, r.copied) == (total, total)
    rows = db.conn.execute("SELECT f.path, i.path FROM files f JOIN instances i ON i.sop_uid = f.sop_uid").fetchall()
    assert len(rows) == total and all(filecmp.cmp(a, b, shallow=False) for a, b in rows)
    assert not [p for p in (tmp_path / "db" / "store").rglob("*") if p.name.startswith(".tmp-")]
    assert db.integrity() == {"check": "ok", "orphan_rows": 0, "orphan_files": 0, "missing_stored_files": 0}
    r = db.import_paths([tmp_path / "in"], copy=True)
    assert (r.added, r.copied, r.unchanged) == (0, 0, total)


def test_cancelled_copy_import_leaves_no_uncommitted_copies(tmp_path):
    """Copies start as soon as headers are parsed; those of a cancelled batch are removed at once."""
    from napari_medio.core.errors import CancelledError

    _many(tmp_path / "in", n_series=2, n=20)
    db = DicomDatabase(tmp_path / "db")
    calls = []

    def cancel():
        calls.append(1)
        return len(calls) > 1  # the second batch is parsed (and copied) but not committed

    with pytest.raises(CancelledError):
        db.import_paths([tmp_path / "in"], copy=True, batch_size=10, workers=1, cancel=cancel)
    assert db.counts()["instances"] == 10
    assert db.integrity() == {"check": "ok", "orphan_rows": 0, "orphan_files": 0, "missing_stored_files": 0}


def test_store_written_with_the_earlier_layout_keeps_one_copy(tmp_path, monkeypatch):
    """Instances stored under ``store/<2 hex>/`` by an earlier version are not copied again."""
    import hashlib
    import shutil

    import napari_medio.dicom.database as dbmod

    total = _many(tmp_path / "in", n_series=1, n=6)

    def old_layout(sop):
        h = hashlib.sha1(sop.encode("ascii", "replace")).hexdigest()
        return f"{h[:2]}/{h}.dcm"

    monkeypatch.setattr(dbmod, "_store_name", old_layout)
    db = DicomDatabase(tmp_path / "db")
    assert db.import_paths([tmp_path / "in"], copy=True).copied == total
    monkeypatch.undo()
    shutil.copytree(tmp_path / "in", tmp_path / "again")  # same instances, other paths
    r = db.import_paths([tmp_path / "again"], copy=True)
    assert (r.added, r.copied) == (0, 0)
    assert len([p for p in (tmp_path / "db" / "store").rglob("*.dcm")]) == total
    assert db.integrity() == {"check": "ok", "orphan_rows": 0, "orphan_files": 0, "missing_stored_files": 0}
    (more, _, _) = make_series(tmp_path / "new", n=2, shape=(4, 4), seed=9)
    assert db.import_paths([tmp_path / "new"], copy=True).copied == 2
    assert len(list((tmp_path / "db" / "store").glob("*.dcm"))) == 2  # new ones in the flat layout


_OPEN_AT = """import sys, time
from napari_medio.dicom.database import DicomDatabase
start = float(sys.argv[2])
while time.time() < start:
    pass
DicomDatabase(sys.argv[1]).counts()
"""


def test_processes_opening_a_new_database_at_the_same_moment(tmp_path):
    # Both read the new file, then both need the write lock to switch it to WAL: SQLite
    # answers one "database is locked" at once (it failed 24 of 90 opens before the retry).
    for round_ in range(4):
        db = tmp_path / f"db{round_}"
        start = time.time() + 3.0
        procs = [subprocess.Popen([PY, "-c", _OPEN_AT, str(db), str(start)], stderr=subprocess.PIPE, text=True)
                 for _ in range(3)]
        for p in procs:
            err = p.communicate(timeout=120)[1]
            assert p.returncode == 0, err
        assert DicomDatabase(db).integrity()["check"] == "ok"

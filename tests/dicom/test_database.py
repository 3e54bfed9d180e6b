"""The DICOM database: import modes, idempotence, incremental, DICOMDIR, delete, search, CLI, crash and concurrency."""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import warnings
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
    uids = lambda db: sorted(r[0] for r in db.conn.execute("SELECT sop_uid FROM instances"))
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


def test_sigkill_mid_import_then_repeat(tmp_path):
    total = _many(tmp_path / "in")
    dbdir = tmp_path / "db"
    env = dict(os.environ, NAPARI_MEDIO_DICOM_TEST_BATCH_DELAY="0.05")
    cmd = [PY, "-m", "napari_medio.cli", "dicom", "import", str(tmp_path / "in"), "--db", str(dbdir), "--copy",
           "--batch-size", "10", "--workers", "1"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    count = 0
    while time.time() < deadline:
        time.sleep(0.02)
        try:
            with sqlite3.connect(dbdir / "medio-dicom.sqlite", timeout=5) as c:
                count = c.execute("SELECT COUNT(*) FROM instances").fetchone()[0]
        except sqlite3.Error:
            continue
        if count >= total // 3:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 0 < count < total, count
    db = DicomDatabase(dbdir)
    partial = db.counts()["instances"]
    assert partial < total
    assert db.integrity()["orphan_rows"] == 0 and db.integrity()["check"] == "ok"
    r = subprocess.run(cmd[:-4] + ["--json"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["added"] == total - partial
    db = DicomDatabase(dbdir)
    assert db.counts()["instances"] == total
    assert db.integrity() == {"check": "ok", "orphan_rows": 0, "orphan_files": 0, "missing_stored_files": 0}


def test_two_processes_share_one_database(tmp_path):
    total_a = _many(tmp_path / "a", n_series=3, n=40)
    total_b = _many(tmp_path / "b", n_series=3, n=40)
    dbdir = tmp_path / "db"
    env = dict(os.environ, NAPARI_MEDIO_DICOM_TEST_BATCH_DELAY="0.01")
    procs = [subprocess.Popen([PY, "-m", "napari_medio.cli", "dicom", "import", str(tmp_path / x), str(tmp_path / "a"),
                               "--db", str(dbdir), "--copy", "--batch-size", "7", "--workers", "1"],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for x in ("a", "b")]
    for p in procs:
        out, err = p.communicate(timeout=180)
        assert p.returncode == 0, err
    db = DicomDatabase(dbdir)
    assert db.counts()["instances"] == total_a + total_b
    assert db.integrity() == {"check": "ok", "orphan_rows": 0, "orphan_files": 0, "missing_stored_files": 0}

"""Batch conversion on dask: LocalCluster vs one process, failures reported, reruns skip."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import napari_medio
from napari_medio.batch import SUMMARY_NAME, convert_batch, items_from_database, items_from_paths
from napari_medio.cli import main
from napari_medio.core.geometry import Geometry
from napari_medio.core.progress import Progress
from napari_medio.core.volume import Volume
from tests.conftest import MAKE_CT_SERIES


@pytest.fixture
def inputs(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    paths = []
    for n in range(20):
        a = np.random.default_rng(n).integers(0, 500, (6, 16, 20)).astype(np.int16)
        g = Geometry([0.8, 0.9, 2.0], [n, -n, 2.5 * n], np.eye(3))
        p = folder / f"case{n:02d}.nrrd"
        napari_medio.write(Volume(a, g), p)
        paths.append(p)
    paths[7].write_bytes(b"NRRD0004\ntype: short\ndimension: 3\nsizes: 20 16 6\nencoding: gzip\n\nnot gzip")
    listing = folder / "list.txt"
    listing.write_text("\n".join(p.name for p in paths) + "\n")
    return listing, paths


def _outputs(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.nii.gz"))}


def test_local_cluster_matches_one_process_and_reports_the_corrupt_input(tmp_path, inputs):
    distributed = pytest.importorskip("distributed")
    listing, paths = inputs
    items = items_from_paths([listing])
    assert len(items) == 20
    convert_batch(items, tmp_path / "one", "nii.gz", scheduler="sync")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster:
        seen = []
        report = convert_batch(items, tmp_path / "cluster", "nii.gz", scheduler=cluster.scheduler_address,
                               progress=Progress(callback=lambda d, t, s: seen.append(d)))
    assert report.count("done") == 19 and report.count("failed") == 1
    assert report.failed[0]["source"].endswith("case07.nrrd") and "gzip" in report.failed[0]["reason"]
    assert seen[-1] == 20
    assert _outputs(tmp_path / "one") == _outputs(tmp_path / "cluster")  # byte for byte (reproducible gzip)
    summary = json.loads((tmp_path / "cluster" / SUMMARY_NAME).read_text())
    assert summary["counts"] == {"done": 19, "skipped": 0, "failed": 1}
    assert summary["failed"][0]["source"].endswith("case07.nrrd")
    back = napari_medio.read(tmp_path / "cluster" / "case03.nii.gz")[0]
    src = napari_medio.read(paths[3])[0]
    assert back.geometry.almost_equal(src.geometry, 1e-6) and np.array_equal(back.array, src.array)


def test_rerun_skips_what_is_done(tmp_path, inputs):
    listing, _ = inputs
    items = items_from_paths([listing])
    convert_batch(items[:5], tmp_path / "o", "nrrd", scheduler="threads")
    again = convert_batch(items, tmp_path / "o", "nrrd", scheduler="threads")
    assert again.count("skipped") == 5 and again.count("done") == 14 and again.count("failed") == 1


def test_local_processes_default_and_cli(tmp_path, inputs, capsys):
    listing, _ = inputs
    status = main(["convert-batch", str(listing), "--out", str(tmp_path / "z"), "--to", "ome.zarr",
                   "--workers", "2", "--quiet"])
    assert status == 1  # one failure
    out = capsys.readouterr()
    assert "19 converted" in out.out and "case07" in out.err
    assert len(list((tmp_path / "z").glob("*.ome.zarr"))) == 19
    status = main(["convert-batch", str(listing), "--out", str(tmp_path / "z"), "--to", "ome.zarr", "--quiet"])
    assert "19 skipped" in capsys.readouterr().out


def test_cancel_stops_the_batch(tmp_path, inputs):
    from napari_medio.core.errors import CancelledError

    listing, _ = inputs
    prog = Progress(callback=lambda d, t, s: False if d >= 3 else None)
    with pytest.raises(CancelledError):
        convert_batch(items_from_paths([listing]), tmp_path / "c", "nii.gz", scheduler="sync", progress=prog)
    summary = json.loads((tmp_path / "c" / SUMMARY_NAME).read_text())
    assert summary["counts"]["done"] < 20


def test_dicom_database_series(tmp_path):
    db_mod = pytest.importorskip("napari_medio.dicom.database")
    for n in range(2):
        subprocess.run([sys.executable, str(MAKE_CT_SERIES), str(tmp_path / f"s{n}"), "--slices", "4", "--size", "32",
                        "--seed", str(n)], check=True)
    with db_mod.DicomDatabase(tmp_path / "db") as db:
        db.import_paths([tmp_path / "s0", tmp_path / "s1"])
    items = items_from_database(tmp_path / "db")
    assert len(items) >= 1 and all(i.kind == "dicom-series" for i in items)
    report = convert_batch(items, tmp_path / "out", "nrrd", scheduler="sync")
    assert report.count("done") == len(items), report.results
    vol = napari_medio.read(report.results[0]["output"])[0]
    assert vol.shape == (4, 32, 32)

"""The ``medio`` command line as a new user meets it: help, info, warnings, import counts, demo without a display."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import warnings

import numpy as np
import pytest

from napari_medio import cli
from tests.conftest import REPO_ROOT, fixture_file


def _run(capsys, *argv) -> tuple[int, str, str]:
    status = cli.main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_help_lists_every_command_action_and_the_database(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name, p in sub.choices.items():
        assert f"\n  {name} " in out
        for a in p._actions:
            if a.dest == "action" or getattr(a, "choices", None) and isinstance(a.choices, dict):
                for act in a.choices:
                    assert f"{name} {act}" in out, (name, act)
    assert "dicom import" in out and "dicom list" in out and "scene extract" in out
    assert "--db DIR" in out and "NAPARI_MEDIO_DICOM_DB" in out and os.path.join("napari-medio", "dicom") in out


def test_info_markups_points_and_transform_matrix_in_lps(capsys):
    status, out, _ = _run(capsys, "info", str(fixture_file("markups/L1.fcsv")))
    assert status == 0 and "point(s), LPS mm" in out
    status, out, _ = _run(capsys, "info", "--json", str(fixture_file("markups/L1.fcsv")))
    [rec] = json.loads(out)
    assert rec["coordinate_system"] == "LPS" and rec["points"]
    first = rec["points"][0]["position"]
    assert " ".join(f"{v:10.4f}" for v in first) in _run(capsys, "info", str(fixture_file("markups/L1.fcsv")))[1]
    status, out, _ = _run(capsys, "info", str(fixture_file("transforms/affine.tfm")))
    assert "to parent (LPS, 4x4):" in out
    status, js, _ = _run(capsys, "info", "--json", str(fixture_file("transforms/affine.tfm")))
    [t] = json.loads(js)
    assert t["coordinate_system"] == "LPS"
    row0 = " ".join(f"{v:10.4f}" for v in t["matrix_to_parent_lps"][0])
    assert row0 in out
    status, js, _ = _run(capsys, "info", "--json", str(fixture_file("images/CTChest4.nrrd")))
    assert json.loads(js)[0]["coordinate_system"] == "LPS"


def test_warnings_print_one_line_without_source(capsys):
    old = warnings.showwarning
    try:
        cli.main(["formats"])  # installs the one-line warning printer
        capsys.readouterr()
        warnings.warn_explicit("first line\nsecond line", UserWarning, "/some/module.py", 12)
        err = capsys.readouterr().err
    finally:
        warnings.showwarning = old
    assert err == "medio: warning: first line second line\n"


def test_import_counts_add_up_with_duplicates(capsys, tmp_path):
    from tests.dicom._make import make_series

    make_series(tmp_path / "in", n=3)
    shutil.copy(tmp_path / "in" / "f0000", tmp_path / "in" / "copy")
    (tmp_path / "in" / "notes.txt").write_text("not dicom")
    status, out, _ = _run(capsys, "dicom", "import", str(tmp_path / "in"), "--db", str(tmp_path / "db"), "--json")
    r = json.loads(out)
    assert r["scanned"] == 5 and r["added"] == 3 and r["duplicates"] == 1 and r["non_dicom"] == 1
    assert r["added"] + r["unchanged"] + r["duplicates"] + r["non_dicom"] + len(r["errors"]) == r["scanned"]
    status, out, _ = _run(capsys, "dicom", "import", str(tmp_path / "in"), "--db", str(tmp_path / "db2"))
    assert out.startswith("5 file(s): 3 instance(s) added, 0 unchanged, 1 duplicate(s)")


@pytest.mark.viewer
@pytest.mark.skipif(shutil.which("Xvfb") is None, reason="needs Xvfb")
def test_demo_frames_the_users_file_without_a_display(tmp_path):
    """No DISPLAY: ``medio demo FILE --screenshot`` starts its own Xvfb and shows FILE, not the phantom."""
    from PIL import Image

    import napari_medio
    from napari_medio.core.geometry import Geometry
    from napari_medio.core.volume import Volume

    data = np.zeros((5, 40, 60), np.int16)
    data[:, 10:30, 5:55] = 1000  # a bright 50 x 20 mm slab
    vol = Volume(data, Geometry(spacing=(1.0, 1.0, 2.0), origin=(500.0, 500.0, 500.0), direction=np.eye(3)),
                 name="slab")
    path = tmp_path / "slab.nrrd"
    napari_medio.write(vol, path)
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT / "src"), str(REPO_ROOT)])
    env["NAPARI_CONFIG"] = str(tmp_path / "napari.yaml")
    env["NAPARI_MEDIO_CONFIG"] = str(tmp_path / "medio.json")
    shot = tmp_path / "shot.png"
    r = subprocess.run([sys.executable, "-m", "napari_medio.cli", "demo", str(path), "--screenshot", str(shot)],
                       env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    img = np.asarray(Image.open(shot).convert("L"), dtype=float)
    from scipy import ndimage

    labels, n = ndimage.label(img > 128)
    sizes = ndimage.sum(np.ones_like(img), labels, range(1, n + 1))
    bright = labels == 1 + int(np.argmax(sizes))  # the slab (orientation letters are small)
    rows, cols = np.nonzero(bright)
    assert bright.mean() > 0.1  # the slab fills the canvas (framed), far from the phantom at the origin
    h, w = rows.max() - rows.min(), cols.max() - cols.min()
    assert 2.0 < w / h < 3.0  # 50 mm wide, 20 mm high: the file's slab, not the phantom's markers

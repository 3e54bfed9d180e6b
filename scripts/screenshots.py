"""Regenerate the README screenshots in docs/images from the test data.

usage: xvfb-run -a -s "-screen 0 1280x1024x24" .venv/bin/python scripts/screenshots.py [--out docs/images]

Writes, from Slicer's CTChest4.nrrd and its Segmentation.seg.nrrd (tests/data):

* ct-seg-axial.png, ct-seg-coronal.png, ct-seg-sagittal.png: the CT with its
  segmentation in each slice view (``napari_medio.plugin.set_view``), canvas only;
* ct-seg-3d.png: the segments as smoothed closed surfaces (the Segments dock's Show 3D);
* segments-dock.png: the napari window with the Segments dock;
* dicom-browser.png: the napari window with the DICOM browser on Slicer's CTHeadAxial
  series, imported into a temporary database.

Each picture is checked for content (not blank) before it is written.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def data_root() -> Path:
    """The repository's test data folder, tests/data."""
    root = ROOT / "tests" / "data"
    if not (root / "images" / "CTChest4.nrrd").exists():
        raise SystemExit(f"screenshots: test data not found in {root}")
    return root


def _wait(predicate, seconds: float = 120.0) -> None:
    from qtpy.QtWidgets import QApplication

    end = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > end:
            raise SystemExit("screenshots: timed out waiting for the viewer")
        QApplication.processEvents()
        time.sleep(0.02)


def _save(image, path: Path) -> None:
    import numpy as np
    from PIL import Image

    arr = np.asarray(image)
    if arr[..., :3].std() < 5:
        raise SystemExit(f"screenshots: {path.name} came out blank")
    Image.fromarray(arr).save(path)
    print(path)


def ct_with_segmentation(out: Path, data: Path) -> None:
    import napari

    from napari_medio.plugin import set_view

    viewer = napari.Viewer(show=True)
    viewer.window.resize(1100, 760)
    [ct] = viewer.open(data / "images" / "CTChest4.nrrd", plugin="napari-medio")
    [seg] = viewer.open(data / "segmentations" / "Segmentation.seg.nrrd", plugin="napari-medio")
    seg.opacity = 0.5
    for view in ("axial", "coronal", "sagittal"):
        set_view(viewer, view)  # set_view frames the data (reset_view would undo the 3D camera)
        _save(viewer.screenshot(canvas_only=True, flash=False), out / f"ct-seg-{view}.png")
    _, dock = viewer.window.add_plugin_dock_widget("napari-medio", "Segments")
    dock.select(5)
    dock.show_3d(True)
    _wait(lambda: len(dock._surfaces) == len(dock.rows))
    set_view(viewer, "axial")
    axis = viewer.dims.not_displayed[0]
    viewer.dims.set_point(axis, float(ct.extent.world[:, axis].mean()))  # through the lungs
    viewer.reset_view()
    _save(viewer.screenshot(canvas_only=False, flash=False), out / "segments-dock.png")
    ct.visible = False
    seg.visible = False
    for i, row in enumerate(dock.rows):  # as in Slicer, the body outline hidden to see the organs in 3D
        if row["name"] == "tissue":
            dock.set_visible(i, False)
    set_view(viewer, "3d")
    _save(viewer.screenshot(canvas_only=True, flash=False), out / "ct-seg-3d.png")
    viewer.close()


def dicom_browser(out: Path, data: Path) -> None:
    import napari

    with tempfile.TemporaryDirectory(prefix="medio-shots-") as tmp:
        os.environ["NAPARI_MEDIO_DICOM_DB"] = os.path.join(tmp, "db")
        viewer = napari.Viewer(show=True)
        viewer.window.resize(1100, 760)
        _, browser = viewer.window.add_plugin_dock_widget("napari-medio", "DICOM browser")
        source = data / "dicom" / "slicer_CTHeadAxial"
        if not source.exists():
            source = data / "dicom"
        worker = browser.import_paths([str(source)])
        done = []
        worker.finished.connect(lambda: done.append(True))
        _wait(lambda: bool(done) and browser.series_table.rowCount() > 0)
        browser.series_table.selectRow(0)
        worker = browser.load_selected()
        loaded = []
        worker.finished.connect(lambda: loaded.append(True))
        _wait(lambda: bool(loaded) and len(viewer.layers) > 0)
        viewer.reset_view()
        _save(viewer.screenshot(canvas_only=False, flash=False), out / "dicom-browser.png")
        viewer.close()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "docs" / "images"))
    a = ap.parse_args(argv)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    data = data_root()
    ct_with_segmentation(out, data)
    dicom_browser(out, data)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Real napari viewer: once napari has activated napari-medio, its files open with it, unasked."""
from __future__ import annotations

import numpy as np
import pytest

import napari_medio
from napari_medio.core.geometry import Geometry
from napari_medio.core.volume import Volume

pytestmark = pytest.mark.viewer


def _files(root):
    vol = Volume(np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6), Geometry([0.5, 0.6, 2.0], [1, 2, 3], np.eye(3)))
    paths = []
    for name in ("ct.nrrd", "ct.nii.gz", "ct.mha", "CT.NRRD"):
        napari_medio.write(vol, root / name)
        paths.append(root / name)
    flat = Volume(np.arange(5 * 6, dtype=np.uint8).reshape(5, 6), Geometry([0.5, 0.6], [1, 2], np.eye(2)))
    for name in ("slice.tif", "slice.png"):
        napari_medio.write(flat, root / name)
        paths.append(root / name)
    from tests.dicom._make import make_series

    make_series(root / "dicom", n=3)
    paths.append(root / "dicom")
    return paths


def test_after_activation_medio_files_open_without_a_question(make_napari_viewer, tmp_path, monkeypatch):
    monkeypatch.setenv("NAPARI_MEDIO_CONFIG", str(tmp_path / "medio.json"))
    from napari.settings import get_settings
    from npe2 import PluginManager

    viewer = make_napari_viewer()  # resets napari's settings: no reader preference
    assert get_settings().plugins.extension2reader == {}
    paths = _files(tmp_path)
    # Before napari-medio is activated napari has two readers and asks (refuses in viewer.open).
    PluginManager.instance().deactivate("napari-medio")
    from napari.errors import MultipleReaderError

    with pytest.raises(MultipleReaderError):
        viewer.open(str(paths[0]), plugin=None)
    # Any contribution activates the plugin: here the sample (a first read would too).
    from napari.utils.notifications import notification_manager

    before = len(notification_manager.records)
    viewer.open_sample("napari-medio", "ct-phantom")
    prefs = get_settings().plugins.extension2reader
    assert prefs["*.nrrd"] == "napari-medio"
    said = [str(n.message) for n in notification_manager.records[before:]]
    assert [m for m in said if "reader preferences" in m and "Preferences > Plugins" in m], said
    for path in paths:
        layers = viewer.open(str(path), plugin=None)  # napari chooses, as on drag and drop
        assert layers, path
        assert all(layer.source.reader_plugin == "napari-medio" for layer in layers), path
        assert all("medio" in layer.metadata for layer in layers), path
    # A format only napari reads still opens with napari, without a question.
    np.save(tmp_path / "array.npy", np.zeros((3, 4)))
    [layer] = viewer.open(str(tmp_path / "array.npy"), plugin=None)
    assert layer.source.reader_plugin == "napari"

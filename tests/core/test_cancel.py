"""A cancel is not an error: CancelledError passes through every handler of bad input unchanged."""
from __future__ import annotations

import numpy as np
import pytest

import napari_medio
from napari_medio.core import CancelledError, MedioError
from napari_medio.core.geometry import Geometry
from napari_medio.core.progress import Progress
from napari_medio.core.volume import Volume


def _volume() -> Volume:
    arr = (np.arange(20 * 30 * 40) % 251).astype(np.int16).reshape(20, 30, 40)
    return Volume(arr, Geometry((1.0, 1.0, 2.0), (0.0, 0.0, 0.0), np.eye(3)))


def _cancelled() -> Progress:
    progress = Progress()
    progress.cancel()
    return progress


def test_cancelled_error_is_not_an_input_error():
    assert not issubclass(CancelledError, (ValueError, MedioError))
    assert issubclass(CancelledError, Exception)
    exc = CancelledError("/data/ct.nrrd", "reading cancelled")
    assert (exc.path, exc.reason) == ("/data/ct.nrrd", "reading cancelled")
    assert str(exc) == "/data/ct.nrrd: reading cancelled"
    assert napari_medio.CancelledError is CancelledError


@pytest.mark.parametrize("ext", [".nrrd", ".nhdr", ".nii.gz", ".seg.nrrd", ".ome.zarr"])
def test_a_cancelled_write_raises_cancelled_not_write_error(tmp_path, ext):
    path = tmp_path / f"out{ext}"
    with pytest.raises(CancelledError) as info:
        try:
            napari_medio.write(_volume(), path, progress=_cancelled())
        except (MedioError, ValueError) as exc:  # what a caller does with bad input
            pytest.fail(f"a cancel was reported as an input error: {exc!r}")
    assert not isinstance(info.value, MedioError)
    assert not path.exists()  # nothing half-written


@pytest.mark.parametrize("ext", [".nrrd", ".nhdr", ".nii.gz"])
def test_a_cancelled_read_raises_cancelled_not_format_error(tmp_path, ext):
    path = tmp_path / f"in{ext}"
    napari_medio.write(_volume(), path)
    with pytest.raises(CancelledError):
        try:
            napari_medio.read(path, progress=_cancelled())
        except (MedioError, ValueError) as exc:
            pytest.fail(f"a cancel was reported as an input error: {exc!r}")



def test_a_progress_serves_readers_that_take_a_callback(tmp_path):
    """DICOM folders and scenes report through ``progress(done, total)``: a Progress is such a callback."""
    from napari_medio.scene.save import save_scene
    from tests.conftest import fixture_file

    folder = fixture_file("dicom/dcmqi_ct3slice_liver/image")
    seen: list = []
    (vol,) = napari_medio.read(folder, progress=Progress(callback=lambda done, total, _: seen.append((done, total))))
    assert seen and seen[-1][0] == seen[-1][1] == vol.shape[0]
    with pytest.raises(CancelledError):
        napari_medio.read(folder, progress=_cancelled())
    save_scene([_volume()], tmp_path / "scene.mrml")
    assert napari_medio.read(tmp_path / "scene.mrml", progress=Progress())
    with pytest.raises(CancelledError):
        napari_medio.read(tmp_path / "scene.mrml", progress=_cancelled())

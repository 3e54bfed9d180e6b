"""One display window on the Volume: every reader that has one fills it, every writer that can keeps it."""
from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

import napari_medio
from napari_medio.core.geometry import Geometry
from napari_medio.core.volume import DisplayWindow, Volume
from napari_medio.dicom.export import export_volume
from tests.conftest import fixture_file


def _volume(window: DisplayWindow | None) -> Volume:
    arr = np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6) - 50
    return Volume(arr, Geometry((0.5, 0.75, 2.0), (10.0, -20.0, 30.0), np.eye(3)), window=window)


def test_window_is_center_and_width():
    w = DisplayWindow(center=40, width=400)
    assert (w.lower, w.upper) == (-160.0, 240.0) and w.limits == (-160.0, 240.0)
    assert DisplayWindow.from_range(-160, 240) == w
    assert DisplayWindow.from_dict(w.to_dict()) == w
    assert DisplayWindow.from_dict(None) is None and DisplayWindow.from_dict({"center": 1}) is None
    for bad in ((0, 0), (0, -5), (float("nan"), 10), (0, float("inf"))):
        with pytest.raises(ValueError, match="display window"):
            DisplayWindow(*bad)
    with pytest.raises(TypeError, match="DisplayWindow"):
        _volume((40, 400))  # type: ignore[arg-type]
    assert _volume(w).info()["window"] == {"center": 40.0, "width": 400.0}
    assert "window" not in _volume(None).info()


def test_dicom_window_survives_nifti_and_ome_zarr(tmp_path):
    (dcm,) = napari_medio.read(fixture_file("dicom/dcmqi_ct3slice_liver/image"))
    assert dcm.window is not None and dcm.window.center == 40.0
    napari_medio.write(dcm, tmp_path / "ct.nii.gz")
    hdr = nib.load(tmp_path / "ct.nii.gz").header
    assert (float(hdr["cal_min"]), float(hdr["cal_max"])) == dcm.window.limits
    (nii,) = napari_medio.read(tmp_path / "ct.nii.gz")
    assert nii.window == dcm.window
    napari_medio.write(nii, tmp_path / "ct.ome.zarr")
    (zarr_vol,) = napari_medio.read(tmp_path / "ct.ome.zarr")
    assert zarr_vol.window == dcm.window
    napari_medio.write(zarr_vol, tmp_path / "back.nii")
    assert napari_medio.read(tmp_path / "back.nii")[0].window == dcm.window
    export_volume(zarr_vol, tmp_path / "dicom")
    (again,) = napari_medio.read(tmp_path / "dicom")
    assert again.window == dcm.window


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_ome_zarr_writes_the_omero_window_other_readers_use(tmp_path, version):
    napari_medio.write(_volume(DisplayWindow(center=40, width=400)), tmp_path / "w.ome.zarr", ngff_version=version)
    meta = tmp_path / "w.ome.zarr" / (".zattrs" if version == "0.4" else "zarr.json")
    attrs = json.loads(meta.read_text())
    if version == "0.5":
        attrs = attrs["attributes"]["ome"]
    window = attrs["omero"]["channels"][0]["window"]
    assert (window["start"], window["end"]) == (-160.0, 240.0)


def test_ome_zarr_reads_an_omero_window_alone(tmp_path):
    napari_medio.write(_volume(DisplayWindow(center=40, width=400)), tmp_path / "w.ome.zarr")
    zattrs = tmp_path / "w.ome.zarr" / ".zattrs"
    attrs = json.loads(zattrs.read_text())
    attrs.pop("napari_medio")
    attrs["omero"]["channels"][0]["window"].update(start=0.0, end=100.0)
    zattrs.write_text(json.dumps(attrs))
    (vol,) = napari_medio.read(tmp_path / "w.ome.zarr")
    assert vol.window.limits == (0.0, 100.0)


def test_no_window_stays_none(tmp_path):
    napari_medio.write(_volume(None), tmp_path / "n.nii.gz")
    assert napari_medio.read(tmp_path / "n.nii.gz")[0].window is None
    napari_medio.write(_volume(None), tmp_path / "n.ome.zarr")
    assert napari_medio.read(tmp_path / "n.ome.zarr")[0].window is None
    assert "omero" not in json.loads((tmp_path / "n.ome.zarr" / ".zattrs").read_text())


def test_window_survives_a_layer(tmp_path):
    from napari_medio.plugin.layers import from_layer, to_layer_data

    vol = _volume(DisplayWindow(center=40, width=400))
    [(data, kwargs, layer_type)] = to_layer_data(vol)
    assert kwargs["contrast_limits"] == [-160.0, 240.0]
    assert from_layer(layer_type, data, kwargs).window == vol.window


@pytest.mark.parametrize("ext", [".mrml", ".mrb"])
def test_window_survives_a_slicer_scene(tmp_path, ext):
    from napari_medio.scene.loader import read_scene
    from napari_medio.scene.save import save_scene

    vol = _volume(DisplayWindow(center=40, width=400))
    vol.name = "ct"
    save_scene([vol], tmp_path / f"scene{ext}")
    (back,) = [o for o in read_scene(tmp_path / f"scene{ext}") if o.name == "ct"]
    assert back.window == vol.window  # written as the display node's window/level


def test_medio_info_shows_the_window(tmp_path, capsys):
    from napari_medio.cli import main

    napari_medio.write(_volume(DisplayWindow(center=40, width=400)), tmp_path / "w.nii.gz")
    assert main(["info", str(tmp_path / "w.nii.gz")]) == 0
    assert "window     center 40, width 400" in capsys.readouterr().out
    assert main(["info", "--json", str(tmp_path / "w.nii.gz")]) == 0
    assert json.loads(capsys.readouterr().out)[0]["window"] == {"center": 40.0, "width": 400.0}

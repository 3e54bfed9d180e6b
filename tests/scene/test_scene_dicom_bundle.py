"""A scene exported as Slicer does it into a DICOM secondary capture (the .mrb in private tag (cadb,1010))
and read back as a scene, also by Slicer's own way of finding the bundle (its size from the creator string,
the zip at the end of the file)."""
from __future__ import annotations

import io
import zipfile

import numpy as np
import pydicom
import pytest

import napari_medio
from napari_medio.core.errors import FormatError
from napari_medio.core.markups import Markups
from napari_medio.scene.dicom_bundle import read_scene_capture, write_scene_capture
from tests.volumes import assert_same_volume, scalar_3d


def test_scene_in_a_secondary_capture_round_trip(tmp_path):
    volume = scalar_3d("int16", shape=(5, 6, 7))
    volume.name = "CT"
    points = Markups(type="Fiducial", name="F")
    points.add_point([1.0, 2.0, 3.0])
    path = tmp_path / "SlicerDataBundle.dcm"
    write_scene_capture([volume, points], path, patient={"PatientName": "Doe^Jane", "PatientID": "P1"})

    ds = pydicom.dcmread(path)
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.7" and ds.PatientName == "Doe^Jane"
    creator = ds[0xCADB, 0x0010].value
    size = int(creator.split()[2])
    assert creator.startswith("3D Slicer ") and ds[0xCADB, 0x1008].value == str(size)
    # Slicer's loader: the zip is the last `size` bytes of the file (one more for an odd size: OB padding)
    raw = path.read_bytes()
    zipped = raw[-size:] if size % 2 == 0 else raw[-size - 1:-1]
    assert any(n.endswith(".mrml") for n in zipfile.ZipFile(io.BytesIO(zipped)).namelist())
    assert ds.pixel_array.shape == (6, 7)

    objects = {o.name: o for o in napari_medio.read(path)}  # found by content among the DICOM readers
    assert set(objects) == {"CT", "F"}
    assert_same_volume(objects["CT"], volume)
    np.testing.assert_allclose(objects["F"].positions, [[1.0, 2.0, 3.0]])
    assert objects["CT"].source == str(path)


def test_plain_dicom_is_not_a_scene(tmp_path, fixture_path):
    with pytest.raises(FormatError, match="no Slicer scene"):
        read_scene_capture(fixture_path("dicom/philips_ingenia_4_1_3_dwi.dcm"))

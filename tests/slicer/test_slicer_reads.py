"""3D Slicer itself (slicer-core's MRML library, in .venv-slicer) reads what napari-medio writes.

Each volume is written by napari-medio and read back with Slicer's
``vtkMRMLVolumeArchetypeStorageNode`` (what Slicer's Add Data uses). The voxels must be
identical and sit at the same places: every voxel centre within 1e-6 mm of where the
volume's geometry (LPS, converted to RAS) puts it. Slicer indexes a left-handed grid with its
k axis reversed, so for those the comparison goes through the geometry; for a right-handed
grid Slicer's IJK-to-RAS matrix must also equal the volume's, entry by entry.
"""
from __future__ import annotations

import numpy as np
import pytest

import napari_medio
from napari_medio.core.geometry import Geometry
from tests.slicer_harness import SlicerError, assert_same_volume, run_slicer
from tests.volumes import OBLIQUE_FLIPPED, rotation, scalar_3d

READ = """
    for name, path in inputs["paths"].items():
        volume = read_volume(path)
        result[name] = {"voxels": volume["voxels"], "ijk_to_ras": volume["ijk_to_ras"],
                        "class": volume["node"].GetClassName()}
"""

#: LPS -> RAS: x and y change sign.
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])

OBLIQUE = Geometry([0.75, 0.8, 2.5], [12.5, -30.25, 101.0], rotation())
GEOMETRIES = {"oblique": OBLIQUE, "oblique-left-handed": OBLIQUE_FLIPPED}


def _ijk_to_ras(geometry: Geometry) -> np.ndarray:
    """The 4x4 voxel-index-to-RAS matrix of a napari-medio geometry (independently of its helpers)."""
    ijk_to_lps = np.eye(4)
    ijk_to_lps[:3, :3] = np.asarray(geometry.direction) * np.asarray(geometry.spacing)  # columns i, j, k
    ijk_to_lps[:3, 3] = geometry.origin
    return LPS_TO_RAS @ ijk_to_lps


@pytest.mark.parametrize("dtype", ["int16", "float32"])
@pytest.mark.parametrize("grid", GEOMETRIES)
def test_slicer_reads_nrrd_and_nifti_as_written(tmp_path, grid, dtype):
    volume = scalar_3d(dtype, shape=(6, 7, 8), geometry=GEOMETRIES[grid])
    paths = {}
    for ext in ("nrrd", "nii.gz"):
        path = tmp_path / f"written.{ext}"
        napari_medio.write(volume, path)
        paths[ext] = str(path)

    out = run_slicer(READ, inputs={"paths": paths})

    expected = _ijk_to_ras(volume.geometry)
    for ext in paths:
        read = out[ext]
        assert read["class"] == "vtkMRMLScalarVolumeNode"
        assert_same_volume(read["voxels"], read["ijk_to_ras"], volume.array, expected, atol_mm=1e-6)
        if np.linalg.det(expected[:3, :3]) > 0:  # Slicer keeps a right-handed grid's indexing
            np.testing.assert_allclose(read["ijk_to_ras"], expected, rtol=0, atol=1e-6, err_msg=ext)
            np.testing.assert_array_equal(read["voxels"], volume.array, err_msg=ext)


def test_slicer_reads_the_test_data_as_napari_medio_does(fixture_path):
    path = fixture_path("images/CTChest4.nrrd")
    [volume] = napari_medio.read(path)

    out = run_slicer(READ, inputs={"paths": {"ct": str(path)}})

    np.testing.assert_array_equal(out["ct"]["voxels"], volume.array)
    np.testing.assert_allclose(out["ct"]["ijk_to_ras"], _ijk_to_ras(volume.geometry), rtol=0, atol=1e-6)


def test_same_volume_check_catches_a_shift_and_a_changed_voxel():
    volume = scalar_3d("int16", shape=(3, 4, 5), geometry=OBLIQUE)
    matrix = _ijk_to_ras(OBLIQUE)
    assert_same_volume(volume.array, matrix, volume.array, matrix)
    shifted = matrix.copy()
    shifted[0, 3] += 2e-6
    with pytest.raises(AssertionError, match="voxel centres differ"):
        assert_same_volume(volume.array, shifted, volume.array, matrix)
    changed = volume.array.copy()
    changed[2, 3, 4] += 1
    with pytest.raises(AssertionError, match="1 voxels differ"):
        assert_same_volume(changed, matrix, volume.array, matrix)


def test_a_failing_snippet_reports_slicers_error(tmp_path):
    with pytest.raises(SlicerError, match="could not read"):
        run_slicer(READ, inputs={"paths": {"x": str(tmp_path / "missing.nrrd")}})

"""Thin-plate spline transforms (ITK ThinPlateSplineKernelTransform): read, write, apply.

Also surfaces under a non-linear transform.
"""
from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

import napari_medio
from napari_medio.core.errors import FormatError, WriteError
from napari_medio.core.geometry import Geometry
from napari_medio.core.transform import ThinPlateSpline, Transform, resample_volume
from napari_medio.core.volume import Volume

RNG = np.random.default_rng(11)
SOURCE = np.array([[0, 0, 0], [40, 0, 0], [0, 40, 0], [0, 0, 40], [40, 40, 40], [20, 10, 30]], float)
TARGET = SOURCE + RNG.normal(0, 2.0, SOURCE.shape)


def _tps_text(src=SOURCE, tgt=TARGET) -> str:
    return ("#Insight Transform File V1.0\n#Transform 0\nTransform: ThinPlateSplineKernelTransform_double_3_3\n"
            f"Parameters: {' '.join(repr(float(x)) for x in src.ravel())}\n"
            f"FixedParameters: {' '.join(repr(float(x)) for x in tgt.ravel())}\n")


def test_tps_read_maps_landmarks_and_info(tmp_path):
    p = tmp_path / "tps.tfm"
    p.write_text(_tps_text())
    [t] = napari_medio.read(p)
    assert t.type == "thinplate" and not t.is_linear
    np.testing.assert_allclose(t.transform_points_from_parent(SOURCE), TARGET, atol=1e-9)
    info = t.info()
    assert info["kind"] == "transform" and info["type"] == "thinplate" and info["n_parameters"] == SOURCE.size
    assert info["itk_class"] == "ThinPlateSplineKernelTransform"


def test_slicers_tps_file_with_old_itk_dataset_names(fixture_path):
    """Slicer's TpsTransform.h5 spells the datasets TranformParameters / TranformFixedParameters, as older
    ITK wrote them. Slicer (vtkMRMLTransformStorageNode) maps its first source landmark, RAS
    (1.80387604, 97.3204422, -10.71430206), to RAS (3.44070482, 89.13629914, -10.71430206): its first target."""
    import h5py

    path = fixture_path("transforms/TpsTransform.h5")
    with h5py.File(path) as f:
        assert set(f["TransformGroup/0"]) == {"TransformType", "TranformParameters", "TranformFixedParameters"}
        source = f["TransformGroup/0/TranformParameters"][()].reshape(-1, 3)
        target = f["TransformGroup/0/TranformFixedParameters"][()].reshape(-1, 3)
    [t] = napari_medio.read(path)
    assert t.type == "thinplate"
    np.testing.assert_array_equal(t.itk.source, source)
    np.testing.assert_allclose(t.transform_points_from_parent(source), target, atol=1e-6)
    np.testing.assert_allclose(t.transform_points_from_parent([[-1.80387604, -97.3204422, -10.71430206]]),
                               [[-3.44070482, -89.13629914, -10.71430206]], atol=1e-6)


def test_tps_matches_vtk_thin_plate_spline():
    vtk = pytest.importorskip("vtk")
    s, d = vtk.vtkPoints(), vtk.vtkPoints()
    for a, b in zip(SOURCE, TARGET):
        s.InsertNextPoint(*a)
        d.InsertNextPoint(*b)
    ref = vtk.vtkThinPlateSplineTransform()
    ref.SetSourceLandmarks(s)
    ref.SetTargetLandmarks(d)
    ref.SetBasisToR()  # 3D thin-plate kernel |r|, as ITK's ThinPlateSplineKernelTransform (and Slicer)
    ref.Update()
    q = RNG.uniform(-20, 60, (20, 3))
    want = np.array([ref.TransformPoint(*x) for x in q])
    np.testing.assert_allclose(ThinPlateSpline(SOURCE, TARGET).transform_points(q), want, atol=1e-5)


@pytest.mark.parametrize("ext", [".tfm", ".txt", ".h5"])
def test_tps_write_read_round_trip(tmp_path, ext):
    t = Transform("thinplate", name="tps", itk=ThinPlateSpline(SOURCE, TARGET))
    out = tmp_path / f"w{ext}"
    napari_medio.write(t, out)
    [back] = napari_medio.read(out)
    assert back.type == "thinplate"
    np.testing.assert_array_equal(back.itk.source, SOURCE)
    np.testing.assert_array_equal(back.itk.target, TARGET)
    q = RNG.uniform(0, 40, (10, 3))
    np.testing.assert_allclose(back.transform_points_from_parent(q), t.transform_points_from_parent(q), atol=1e-12)
    if ext == ".h5":  # ITK's HDF5 layout, readable by h5py like SimpleITK's own files
        import h5py

        with h5py.File(out) as f:
            assert f["TransformGroup/0/TransformType"][0] == b"ThinPlateSplineKernelTransform_double_3_3"
            # itk::KernelTransform: the parameters are the source landmarks, the fixed parameters the targets
            np.testing.assert_array_equal(f["TransformGroup/0/TransformParameters"][()], SOURCE.ravel())
            np.testing.assert_array_equal(f["TransformGroup/0/TransformFixedParameters"][()], TARGET.ravel())
    with pytest.raises(WriteError, match="linear transforms only"):
        napari_medio.write(t, tmp_path / "w.mat")


def test_tps_resample_with_simpleitk_and_move_points():
    geom = Geometry((2.0, 2.0, 2.0), (0.0, 0.0, 0.0), np.eye(3))
    k, j, i = np.meshgrid(np.arange(24), np.arange(24), np.arange(24), indexing="ij")
    ramp = (i * 2.0 + 3 * j * 2.0 + 0.5 * k * 2.0).astype(np.float32)  # linear in LPS: f(x) = x + 3y + 0.5z
    vol = Volume(ramp, geom)
    t = Transform("thinplate", itk=ThinPlateSpline(SOURCE, TARGET))
    out = resample_volume(vol, t)
    # output voxel at parent point p holds the input at T(p): f(T(p)) exactly for a linear ramp
    idx = np.array([[5, 6, 7], [10, 3, 12], [15, 15, 4]])
    p = idx * 2.0
    q = t.transform_points_from_parent(p)
    expect = q[:, 0] + 3 * q[:, 1] + 0.5 * q[:, 2]
    got = np.asarray(out.array)[idx[:, 2], idx[:, 1], idx[:, 0]]
    np.testing.assert_allclose(got, expect, atol=1e-3)
    # the displacement field given to SimpleITK is the spline itself at voxel centres
    field = t.itk.displacement_field(geom, (24, 24, 24))
    np.testing.assert_allclose(field.TransformPoint(tuple(p[1])), q[1], atol=1e-9)
    assert isinstance(field, sitk.DisplacementFieldTransform)
    # points (and models) move to parent: the inverse of the resampling transform
    moved = t.transform_points_to_parent(TARGET)
    np.testing.assert_allclose(moved, SOURCE, atol=1e-5)


def test_surface_vertices_move_with_a_nonlinear_transform():
    pytest.importorskip("napari")
    from napari.layers import Surface

    from napari_medio.plugin.convert_transform import apply_transform, harden_transform, revert_transform

    verts_lps = np.array([[10.0, 12.0, 8.0], [30.0, 5.0, 20.0], [18.0, 33.0, 25.0], [5.0, 5.0, 35.0]])
    faces = np.array([[0, 1, 2], [0, 2, 3]])
    layer = Surface((verts_lps[:, ::-1].copy(), faces))  # napari world order (S, P, L) for LPS (L, P, S)
    for t in (Transform("thinplate", name="tps", itk=ThinPlateSpline(SOURCE, TARGET)),
              Transform("bspline", name="bs", itk=_bspline())):
        apply_transform(layer, t)
        moved_lps = np.asarray(layer.data[0])[:, ::-1]
        np.testing.assert_allclose(t.transform_points_from_parent(moved_lps), verts_lps, atol=1e-5)
        assert not np.allclose(moved_lps, verts_lps)
        np.testing.assert_array_equal(layer.data[1], faces)
        assert revert_transform(layer)
        np.testing.assert_allclose(layer.data[0], verts_lps[:, ::-1])
    apply_transform(layer, Transform("thinplate", name="tps", itk=ThinPlateSpline(SOURCE, TARGET)))
    harden_transform(layer)
    assert not revert_transform(layer)


def _bspline():
    tx = sitk.BSplineTransform(3, 3)
    tx.SetTransformDomainOrigin((0.0, 0.0, 0.0))
    tx.SetTransformDomainPhysicalDimensions((40.0, 40.0, 40.0))
    tx.SetTransformDomainMeshSize((2, 2, 2))
    tx.SetParameters(RNG.normal(0, 1.0, tx.GetNumberOfParameters()).tolist())
    return tx


@pytest.mark.parametrize("params, fixed, pattern", [
    ("1 2 3", "1 2 3 4 5 6", "line 3: ThinPlateSplineKernelTransform needs as many parameters"),
    ("1 2 3 4", "1 2 3 4", "multiple of 3"),
    ("1 2 3 nan 5 6", "1 2 3 4 5 6", "line 3"),
])
def test_bad_tps(tmp_path, params, fixed, pattern):
    p = tmp_path / "bad.tfm"
    p.write_text("#Insight Transform File V1.0\n#Transform 0\nTransform: ThinPlateSplineKernelTransform_double_3_3\n"
                 f"Parameters: {params}\nFixedParameters: {fixed}\n")
    with pytest.raises(FormatError, match=pattern) as info:
        napari_medio.read(p)
    assert str(p) in str(info.value)


def test_composite_with_a_thin_plate_spline_resamples_and_moves_points(tmp_path):
    """A linear transform followed by a thin-plate spline (ITK order: last applied first)."""
    shift = np.eye(4)
    shift[:3, 3] = [1.5, -2.0, 0.5]
    linear = Transform.from_matrix_from_parent(shift)
    tps = Transform("thinplate", itk=ThinPlateSpline(SOURCE, TARGET))
    comp = Transform("composite", components=[linear, tps])
    p = RNG.uniform(0, 40, (6, 3))
    want = tps.transform_points_from_parent(p) + shift[:3, 3]  # tps first, then the linear one
    np.testing.assert_allclose(comp.transform_points_from_parent(p), want, atol=1e-9)
    np.testing.assert_allclose(comp.transform_points_to_parent(want), p, atol=1e-5)
    geom = Geometry((2.0, 2.0, 2.0), (0.0, 0.0, 0.0), np.eye(3))
    k, j, i = np.meshgrid(np.arange(20), np.arange(20), np.arange(20), indexing="ij")
    ramp = (i * 2.0 + 3 * j * 2.0 + 0.5 * k * 2.0).astype(np.float32)
    out = resample_volume(Volume(ramp, geom), comp)
    idx = np.array([[5, 6, 7], [10, 3, 12]])
    q = comp.transform_points_from_parent(idx * 2.0)
    got = np.asarray(out.array)[idx[:, 2], idx[:, 1], idx[:, 0]]
    np.testing.assert_allclose(got, q[:, 0] + 3 * q[:, 1] + 0.5 * q[:, 2], atol=1e-3)

"""ITK transforms and displacement fields: fixture conformance, conventions, round trips, bad input."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import SimpleITK as sitk

import napari_medio
from napari_medio.core.errors import FormatError, MedioError, WriteError
from napari_medio.core.geometry import Geometry, flip_lps_ras_matrix
from napari_medio.core.transform import Transform, matrix_from_sitk_linear, resample_volume
from napari_medio.core.volume import AxisInfo, Volume
from tests.badfiles import assert_rejected, variants
from tests.conftest import fixture_file


def _affine(params, fixed):
    tx = sitk.AffineTransform(3)
    tx.SetParameters(params)
    tx.SetFixedParameters(fixed)
    return matrix_from_sitk_linear(tx)


def test_affine_fixtures_match_simpleitk():
    for name in ("affine.tfm", "affineTransform.txt"):
        path = fixture_file(f"transforms/{name}")
        [t] = napari_medio.read(path)
        ref = sitk.ReadTransform(str(path))
        assert t.type == "linear" and t.stored_direction == "from_parent"
        np.testing.assert_allclose(t.matrix_from_parent_lps, matrix_from_sitk_linear(ref), atol=1e-12)
        np.testing.assert_allclose(t.matrix_to_parent_lps, np.linalg.inv(matrix_from_sitk_linear(ref)), atol=1e-12)
    [t] = napari_medio.read(fixture_file("transforms/affineTransform.txt"))
    # centre handled: offset = translation + centre - M centre
    m = np.array([-1.21169, 0.0202362, -0.0293048, 0.0173918, 1.33234, 0.0431036, 0.0293267, 0.0459707,
                  -1.23634]).reshape(3, 3)
    c = np.array([-118.4, -48.4, 366.2])
    np.testing.assert_allclose(t.matrix_from_parent_lps[:3, 3], np.array([-29.4, -11, 131]) + c - m @ c, atol=1e-9)
    np.testing.assert_allclose(t.matrix_to_parent_ras, flip_lps_ras_matrix(t.matrix_to_parent_lps))


def test_text_classes_simpleitk_cannot_read():
    [rot] = napari_medio.read(fixture_file("transforms/rotation.tfm"))
    assert rot.type == "linear"
    c, s = 0.8660254037844387, 0.5
    np.testing.assert_allclose(rot.matrix_from_parent_lps[:3, :3], [[1, 0, 0], [0, c, -s], [0, s, c]], atol=1e-12)
    [q] = napari_medio.read(fixture_file("transforms/itkQuaternionRigidTransform00.txt"))
    np.testing.assert_allclose(q.matrix_from_parent_lps, np.eye(4), atol=1e-12)
    [b] = napari_medio.read(fixture_file("transforms/Bspline-f-m.tfm"))
    assert b.type == "composite" and [c.type for c in b.components] == ["linear", "bspline"]
    # ITKv3 additive bulk: T(x) = A x + d(x); far outside the grid d = 0
    a = b.components[0].matrix_from_parent_lps
    far = np.array([[1000.0, 1000.0, 1000.0]])
    np.testing.assert_allclose(b.transform_points_from_parent(far)[0], a[:3, :3] @ far[0] + a[:3, 3], atol=1e-9)
    # inside: the displacement is added, not composed
    bs = b.components[1].itk
    x = np.array([-60.0, -100.0, -100.0])
    d = np.array(bs.TransformPoint(tuple(x))) - x  # scaled coefficients: A_lin^-1 d
    np.testing.assert_allclose(b.transform_points_from_parent([x])[0], a[:3, :3] @ x + a[:3, 3] + a[:3, :3] @ d,
                               atol=1e-9)


def test_composite_h5_and_inverse_points():
    [t] = napari_medio.read(fixture_file("transforms/BSplineLinearCompositeTransform.h5"))
    assert t.type == "composite" and [c.type for c in t.components] == ["linear", "bspline"]
    info = t.info()
    assert info["kind"] == "transform" and info["type"] == "composite"
    pts = np.array([[0.0, 0, 0], [10, 20, 30], [-40, 12, 5]])
    moved = t.transform_points_to_parent(pts)
    np.testing.assert_allclose(t.transform_points_from_parent(moved), pts, atol=1e-5)
    ref = sitk.ReadTransform(str(fixture_file("transforms/BSplineLinearCompositeTransform.h5")))
    np.testing.assert_allclose(t.transform_points_from_parent(pts[1:2])[0], ref.TransformPoint(tuple(pts[1])))


@pytest.mark.parametrize("ext", [".h5", ".tfm", ".txt", ".mat"])
def test_linear_write_read_by_simpleitk(tmp_path, ext):
    rng = np.random.default_rng(3)
    m = np.eye(4)
    m[:3, :3] = np.eye(3) + 0.2 * rng.standard_normal((3, 3))
    m[:3, 3] = rng.standard_normal(3) * 30
    t = Transform.from_matrix_to_parent(m, name="t")
    path = tmp_path / f"t{ext}"
    napari_medio.write(t, path)
    ref = matrix_from_sitk_linear(sitk.ReadTransform(str(path)))
    np.testing.assert_allclose(ref, np.linalg.inv(m), atol=1e-9)  # the file holds from-parent
    [back] = napari_medio.read(path)
    np.testing.assert_allclose(back.matrix_to_parent_lps, m, atol=1e-9)


def test_convert_between_transform_formats_and_info(tmp_path):
    src = fixture_file("transforms/affine.tfm")
    steps = ((src, tmp_path / "a.h5"), (tmp_path / "a.h5", tmp_path / "a.mat"),
             (tmp_path / "a.mat", tmp_path / "b.tfm"))
    for a, b in steps:
        subprocess.run([sys.executable, "-m", "napari_medio.cli", "convert", str(a), str(b)], check=True,
                       capture_output=True)
    np.testing.assert_allclose(matrix_from_sitk_linear(sitk.ReadTransform(str(tmp_path / "b.tfm"))),
                               matrix_from_sitk_linear(sitk.ReadTransform(str(src))), atol=1e-12)
    out = subprocess.run([sys.executable, "-m", "napari_medio.cli", "info", "--json", str(src)],
                         check=True, capture_output=True, text=True)
    [info] = json.loads(out.stdout)
    assert info["kind"] == "transform" and info["type"] == "linear"
    np.testing.assert_allclose(info["matrix_to_parent_lps"],
                               np.linalg.inv(matrix_from_sitk_linear(sitk.ReadTransform(str(src)))), atol=1e-12)


def test_displacement_field_fixture_and_round_trip(tmp_path):
    path = fixture_file("transforms/deform2x2x2_ras.nrrd")
    [t] = napari_medio.read(path, format="displacement-field")
    assert t.type == "grid" and t.stored_direction == "from_parent"
    assert t.displacement.spatial_shape == (2, 2, 2)
    np.testing.assert_allclose(t.displacement.geometry.spacing, [240, 240, 161.2])
    arr = np.asarray(t.displacement.array)
    assert arr.min() == -20 and arr.max() == 20 and arr.sum() == -160
    for ext in (".nrrd", ".nii.gz", ".mha"):
        out = tmp_path / f"f{ext}"
        napari_medio.write(t, out)
        img = sitk.ReadImage(str(out))
        np.testing.assert_allclose(sitk.GetArrayFromImage(img), arr)
        np.testing.assert_allclose(img.GetOrigin(), t.displacement.geometry.origin)
    # the NRRD we write is recognised as a displacement field without being told
    [again] = napari_medio.read(tmp_path / "f.nrrd")
    assert isinstance(again, Transform) and again.type == "grid"
    assert "displacement field type:=resampling" in (tmp_path / "f.nrrd").read_bytes().decode("latin-1")
    modeling = again.inverse()
    napari_medio.write(modeling, tmp_path / "m.nrrd")
    [m] = napari_medio.read(tmp_path / "m.nrrd")
    assert m.stored_direction == "to_parent"
    with pytest.raises(WriteError):
        napari_medio.write(modeling, tmp_path / "m.nii.gz")
    # the field moves points as SimpleITK's DisplacementFieldTransform does
    p = np.array([[0.0, 0.0, 0.0]])
    ref = sitk.DisplacementFieldTransform(sitk.Cast(sitk.ReadImage(str(path)), sitk.sitkVectorFloat64))
    np.testing.assert_allclose(t.transform_points_from_parent(p)[0], ref.TransformPoint((0.0, 0.0, 0.0)))


def test_linear_moves_volume_like_a_model_and_matches_simpleitk():
    arr = np.zeros((12, 14, 16), dtype=np.float32)
    arr[4:8, 5:9, 6:10] = 1
    vol = Volume(arr, Geometry([1.0, 1.0, 2.0], [3.0, -4.0, 5.0], np.eye(3)))
    to_parent = np.eye(4)
    to_parent[:3, 3] = [2.0, -1.0, 4.0]
    t = Transform.from_matrix_to_parent(to_parent)
    moved_geometry = t.apply_to_geometry(vol.geometry)
    vertex = vol.geometry.index_to_lps([7.0, 6, 5])
    np.testing.assert_allclose(moved_geometry.index_to_lps([7.0, 6, 5]), t.transform_points_to_parent([vertex])[0])
    res = resample_volume(vol, t)  # resampled onto the original grid
    c_res = vol.geometry.index_to_lps(np.argwhere(np.asarray(res.array) > 0.5).mean(axis=0)[::-1])
    c_moved = moved_geometry.index_to_lps(np.argwhere(arr > 0.5).mean(axis=0)[::-1])
    assert np.abs(c_res - c_moved).max() < 0.5


def test_bad_transforms(tmp_path):
    assert_rejected(variants(tmp_path, fixture_file("transforms/affine.tfm"), ".tfm", cuts=(-12,)))
    assert_rejected(variants(tmp_path, fixture_file("transforms/BSplineLinearCompositeTransform.h5"), ".h5"))
    p = tmp_path / "unknown.tfm"
    p.write_text("#Insight Transform File V1.0\n#Transform 0\nTransform: BananaTransform_double_3_3\n"
                 "Parameters: 1 2 3\nFixedParameters: 0 0 0\n")
    with pytest.raises(FormatError, match="line 3.*Banana"):
        napari_medio.read(p)
    p = tmp_path / "singular.tfm"
    p.write_text("#Insight Transform File V1.0\n#Transform 0\nTransform: AffineTransform_double_3_3\n"
                 "Parameters: 1 0 0 0 0 0 0 0 1 0 0 0\nFixedParameters: 0 0 0\n")
    with pytest.raises(FormatError, match="invertible"):
        napari_medio.read(p)
    p = tmp_path / "short.tfm"
    p.write_text("#Insight Transform File V1.0\n#Transform 0\nTransform: AffineTransform_double_3_3\n"
                 "Parameters: 1 0 0 0 1 0 0 0 1\nFixedParameters: 0 0 0\n")
    with pytest.raises(FormatError, match="short.tfm"):
        napari_medio.read(p)
    with pytest.raises(ValueError, match="invertible"):
        Transform.from_matrix_to_parent(np.diag([1.0, 1.0, 0.0, 1.0]))


def _smooth_grid(direction: str = "from_parent", interpolation: str = "cubic") -> Transform:
    from tests.volumes import rotation

    geometry = Geometry([5.0, 6.0, 4.5], [-2.0, 1.0, -3.0], rotation(angle=0.2))
    k, j, i = np.meshgrid(np.arange(10), np.arange(9), np.arange(11), indexing="ij")
    field = np.stack([np.sin(i / 3.0) * 2.0, np.cos(j / 2.5) * 1.5, np.sin((i + k) / 4.0)], axis=-1)
    volume = Volume(field, geometry, components=AxisInfo(name="vector", kind="vector"))
    return Transform("grid", name="grid", displacement=volume, stored_direction=direction,
                     interpolation=interpolation)


def test_grid_cubic_interpolation_is_vtks():
    """Slicer maps points through a grid with vtkOrientedGridTransform in cubic mode: the same numbers as
    VTK's vtkGridTransform (on the grid's own axes), including the edges and beyond the grid."""
    vtk = pytest.importorskip("vtk")
    from vtk.util import numpy_support

    grid = _smooth_grid()
    g = grid.displacement.geometry
    d = np.asarray(grid.displacement.array)
    image = vtk.vtkImageData()
    image.SetDimensions(d.shape[2], d.shape[1], d.shape[0])
    image.SetSpacing(*g.spacing)
    image.SetOrigin(0.0, 0.0, 0.0)
    in_grid_axes = np.ascontiguousarray(d @ g.direction)  # displacements on the grid's own axes
    image.GetPointData().SetScalars(numpy_support.numpy_to_vtk(in_grid_axes.reshape(-1, 3), deep=True))
    ref = vtk.vtkGridTransform()
    ref.SetDisplacementGridData(image)
    ref.SetInterpolationModeToCubic()
    rng = np.random.default_rng(5)
    index = np.vstack([rng.uniform(-1.5, [11.5, 10.5, 11.5], (200, 3)),  # inside, at the edges and beyond
                       [[0, 0, 0], [10, 8, 9], [0.5, 7.5, 8.5], [9.5, 0.25, 0.75]]])
    local = index * g.spacing
    want = np.array([ref.TransformPoint(*p) for p in local]) - local
    points = local @ g.direction.T + g.origin
    got = grid.transform_points_from_parent(points) - points
    np.testing.assert_allclose(got @ g.direction, want, atol=2e-5)  # VTK interpolates in single precision


@pytest.mark.parametrize("interpolation", ["cubic", "linear"])
def test_grid_interpolation_between_nodes(interpolation):
    """Cubic (as Slicer) by default, linear (as ITK) on request; on the nodes both give the stored displacement,
    and points go to parent and back."""
    grid = _smooth_grid(interpolation=interpolation)
    field = grid.displacement
    nodes = np.array([[2, 3, 4], [5, 1, 7], [9, 8, 0]])  # (i, j, k)
    m = field.geometry.index_to_lps_matrix()
    at_nodes = nodes @ m[:3, :3].T + m[:3, 3]
    want = np.asarray(field.array)[nodes[:, 2], nodes[:, 1], nodes[:, 0]]
    np.testing.assert_allclose(grid.transform_points_from_parent(at_nodes) - at_nodes, want, atol=1e-9)
    between = (nodes + 0.5) @ m[:3, :3].T + m[:3, 3]
    itk_linear = np.array([grid.to_sitk().TransformPoint(tuple(p)) for p in between])
    gap = np.abs(grid.transform_points_from_parent(between) - itk_linear).max()
    assert gap < 1e-9 if interpolation == "linear" else gap > 1e-3
    moved = grid.transform_points_to_parent(between)
    np.testing.assert_allclose(grid.transform_points_from_parent(moved), between, atol=1e-5)
    modeling = _smooth_grid("to_parent", interpolation)
    np.testing.assert_allclose(modeling.transform_points_to_parent(modeling.transform_points_from_parent(between)),
                               between, atol=1e-5)


def test_displacement_field_reader_interpolation_option(tmp_path):
    path = tmp_path / "field.nrrd"
    napari_medio.write(_smooth_grid(), path)
    assert napari_medio.read(path)[0].interpolation == "cubic"
    assert napari_medio.read(path, interpolation="linear")[0].interpolation == "linear"
    with pytest.raises(MedioError, match="unknown interpolation 'spline'"):
        napari_medio.read(path, interpolation="spline")

"""Pinnacle DVF (.dvf) as SlicerRT's PinnacleDvfReader reads it.

No real .dvf file was available (none in tests/data): every file here is
built byte by byte from the layout in SlicerRT's ``vtkSlicerPinnacleDvfReader.cxx``
(flags, optional registration block, bounding box, size, spacing, six byte planes).
The expected positions are computed the way SlicerRT places the data in Slicer's RAS
world (grid direction diag(-1,-1,-1), vectors (-dx, -dy, +dz), to-parent grid node;
post-deformation matrix diag(-1,-1,1) Rx Ry Rz T diag(-1,-1,1)), then converted to
LPS; where VTK is installed, VTK's own vtkTransform and direction-aware
vtkGridTransform give the reference.
"""
from __future__ import annotations

import math
import struct

import numpy as np
import pytest

import napari_medio
from napari_medio.core.errors import FormatError, MedioError
from napari_medio.core.geometry import Geometry
from napari_medio.core.registry import find_reader
from napari_medio.core.transform import Transform, resample_volume
from napari_medio.core.volume import Volume

FLIP = np.diag([-1.0, -1.0, 1.0, 1.0])  # LPS <-> RAS


# -- building files ------------------------------------------------------------------------------------
def encode(d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(int8 high, uint8 low) with high + 0.004 * low == d for d on the 0.004 mm lattice."""
    steps = np.rint(np.asarray(d, dtype=float) / 0.004).astype(np.int64)
    high = np.floor_divide(steps, 250)
    low = steps - 250 * high
    assert high.min() >= -128 and high.max() <= 127
    return high.astype(np.int8), low.astype(np.uint8)


def decoded(high: np.ndarray, low: np.ndarray) -> np.ndarray:
    return high.astype(float) + 0.004 * low.astype(float)


def build(path, planes, *, spacing=(2.5, 3.0, 4.0), flags=(1, 0, 0), registration=None,
          bbox=(3, 4, 5, 10, 11, 12), endian="<", size=None, trailing=b"", cut=None):
    """Write a .dvf: ``planes`` = (xh, yh, zh, xl, yl, zl) arrays shaped (nz, ny, nx)."""
    nz, ny, nx = planes[0].shape
    size = size or (nx, ny, nz)
    out = struct.pack(endian + "3i", *flags)
    if registration is not None:
        out += struct.pack(endian + "6f", *registration)
    out += struct.pack(endian + "6i", *bbox) + struct.pack(endian + "3i", *size)
    out += struct.pack(endian + "3d", *spacing)
    for plane in planes:
        out += np.ascontiguousarray(plane).tobytes()  # x fastest, then y, then z
    out += trailing
    if cut is not None:
        out = out[:cut]
    path.write_bytes(out)
    return path


def random_field(shape=(3, 4, 5), seed=0):
    rng = np.random.default_rng(seed)
    high = [rng.integers(-128, 128, size=shape).astype(np.int8) for _ in range(3)]
    low = [rng.integers(0, 256, size=shape).astype(np.uint8) for _ in range(3)]
    return high + low


# -- SlicerRT's placement, computed in RAS -----------------------------------------------------------
def slicer_ras_grid(planes, spacing, origin_ras):
    """Grid node positions (N,3) and RAS vectors (nz,ny,nx,3) as SlicerRT fills the vtkImageData."""
    xh, yh, zh, xl, yl, zl = planes
    vec = np.stack([-decoded(xh, xl), -decoded(yh, yl), decoded(zh, zl)], axis=-1)
    nz, ny, nx = xh.shape
    kk, jj, ii = np.meshgrid(np.arange(nz), np.arange(ny), np.arange(nx), indexing="ij")
    ijk = np.stack([ii, jj, kk], axis=-1).astype(float)
    pos = np.asarray(origin_ras, float) + (-1.0) * np.asarray(spacing, float) * ijk  # direction diag(-1,-1,-1)
    return pos, vec


def slicer_forward_ras(points_ras, planes, spacing, origin_ras):
    """vtkOrientedGridTransform's forward (to-parent) mapping, trilinear, inside the grid."""
    _, vec = slicer_ras_grid(planes, spacing, origin_ras)
    nz, ny, nx = vec.shape[:3]
    out = []
    for p in np.atleast_2d(points_ras):
        f = (np.asarray(origin_ras, float) - p) / np.asarray(spacing, float)  # index = D^-1 (p - o) / s
        i0 = np.minimum(np.floor(f).astype(int), [nx - 2, ny - 2, nz - 2])
        t = f - i0
        d = np.zeros(3)
        for di in (0, 1):
            for dj in (0, 1):
                for dk in (0, 1):
                    w = (t[0] if di else 1 - t[0]) * (t[1] if dj else 1 - t[1]) * (t[2] if dk else 1 - t[2])
                    d += w * vec[i0[2] + dk, i0[1] + dj, i0[0] + di]
        out.append(p + d)
    return np.array(out)


def lps(points_ras):
    return np.asarray(points_ras, float) * [-1.0, -1.0, 1.0]


def rot(axis, deg):
    a = math.radians(deg)
    c, s = math.cos(a), math.sin(a)
    m = np.eye(4)
    u, v = [(1, 2), (2, 0), (0, 1)][axis]
    m[u, u], m[u, v], m[v, u], m[v, v] = c, -s, s, c
    return m


# -- conformance ---------------------------------------------------------------------------------------
def test_grid_geometry_vectors_and_mapping_as_slicerrt(tmp_path):
    planes = random_field((3, 4, 5))
    spacing = (2.5, 3.0, 4.0)
    origin_ras = (10.0, -20.0, 30.0)
    path = build(tmp_path / "field.dvf", planes, spacing=spacing)
    objs = napari_medio.read(path, grid_origin_ras=origin_ras)
    assert len(objs) == 1  # no registration block
    [t] = objs
    assert isinstance(t, Transform) and t.type == "grid" and t.stored_direction == "to_parent"
    assert t.name == "field" and t.source == str(path)
    g = t.displacement.geometry
    np.testing.assert_allclose(g.origin, [-10.0, 20.0, 30.0], atol=1e-12)
    np.testing.assert_allclose(g.spacing, spacing, atol=1e-12)
    np.testing.assert_allclose(g.direction, np.diag([1.0, 1.0, -1.0]), atol=1e-12)
    assert t.displacement.spatial_shape == (3, 4, 5) and t.displacement.n_components == 3
    arr = np.asarray(t.displacement.array)
    assert arr.dtype == np.float64
    xh, yh, zh, xl, yl, zl = planes
    np.testing.assert_allclose(arr[..., 0], decoded(xh, xl), atol=1e-12)
    np.testing.assert_allclose(arr[..., 1], decoded(yh, yl), atol=1e-12)
    np.testing.assert_allclose(arr[..., 2], decoded(zh, zl), atol=1e-12)
    # one value by hand: voxel (i=1, j=2, k=0), x component
    assert arr[0, 2, 1, 0] == pytest.approx(int(xh[0, 2, 1]) + 0.004 * int(xl[0, 2, 1]), abs=1e-12)

    # every grid node and some points between nodes go where SlicerRT's grid node sends them
    pos_ras, vec_ras = slicer_ras_grid(planes, spacing, origin_ras)
    nodes_ras = pos_ras.reshape(-1, 3)
    # voxel (i=1, j=2, k=0) sits where SlicerRT's grid puts it
    np.testing.assert_allclose(t.displacement.geometry.index_to_lps(np.array([[1, 2, 0]])),
                               lps(pos_ras[0, 2, 1][None]), atol=1e-9)
    moved = t.transform_points_to_parent(lps(nodes_ras))
    np.testing.assert_allclose(moved, lps(nodes_ras + vec_ras.reshape(-1, 3)), atol=1e-6)
    rng = np.random.default_rng(1)
    inside_ras = np.asarray(origin_ras) - rng.uniform(0.2, 0.8, size=(20, 3)) * np.array(spacing) * [4, 3, 2]
    np.testing.assert_allclose(t.transform_points_to_parent(lps(inside_ras)),
                               lps(slicer_forward_ras(inside_ras, planes, spacing, origin_ras)), atol=1e-6)


def test_known_pattern_directions(tmp_path):
    """A uniform field of (+1.5, -2.252, +0.5) mm: LPS vectors as stored, RAS as SlicerRT's (-, -, +)."""
    shape = (2, 2, 2)
    d = [np.full(shape, 1.5), np.full(shape, -2.252), np.full(shape, 0.5)]
    hl = [encode(x) for x in d]
    assert int(hl[1][0].flat[0]) == -3 and int(hl[1][1].flat[0]) == 187  # -3 + 0.748
    planes = [hl[0][0], hl[1][0], hl[2][0], hl[0][1], hl[1][1], hl[2][1]]
    [t] = napari_medio.read(build(tmp_path / "uniform.dvf", planes, spacing=(10.0, 10.0, 10.0)))
    p_lps = np.array([[5.0, 5.0, -5.0]])  # the middle of the grid (k runs inferior)
    np.testing.assert_allclose(t.transform_points_to_parent(p_lps), [[6.5, 2.748, -4.5]], atol=1e-6)
    # Slicer shows the same point (RAS -5, -5, -5) moved to RAS (-6.5, -2.748, -4.5)
    np.testing.assert_allclose(lps(t.transform_points_to_parent(p_lps)), [[-6.5, -2.748, -4.5]], atol=1e-6)


def test_within_float32_of_slicerrt_arithmetic(tmp_path):
    """SlicerRT sums high + 0.004f * low in float32; the exact values read here differ by < 8e-6 mm."""
    planes = random_field((2, 3, 4), seed=5)
    [t] = napari_medio.read(build(tmp_path / "f.dvf", planes))
    arr = np.asarray(t.displacement.array)
    for c in range(3):
        f32 = (planes[c].astype(np.float32) + np.float32(0.004) * planes[3 + c].astype(np.float32)).astype(float)
        assert np.max(np.abs(arr[..., c] - f32)) < 8e-6


def test_grid_origin_options(tmp_path):
    planes = random_field((2, 2, 2))
    path = build(tmp_path / "o.dvf", planes)
    [default] = napari_medio.read(path)
    np.testing.assert_allclose(default.displacement.geometry.origin, [0, 0, 0])
    [a] = napari_medio.read(path, grid_origin=(-10.0, 20.0, 30.0))
    [b] = napari_medio.read(path, grid_origin_ras=(10.0, -20.0, 30.0))
    np.testing.assert_allclose(a.displacement.geometry.origin, [-10.0, 20.0, 30.0])
    np.testing.assert_allclose(b.displacement.geometry.origin, [-10.0, 20.0, 30.0])
    assert a.metadata["pinnacle_dvf"]["grid_origin_ras"] == [10.0, -20.0, 30.0]
    with pytest.raises(MedioError, match="not both"):
        napari_medio.read(path, grid_origin=(0, 0, 0), grid_origin_ras=(0, 0, 0))
    with pytest.raises(MedioError, match="grid_origin"):
        napari_medio.read(path, grid_origin=(1.0, 2.0))
    with pytest.raises(MedioError, match="grid_origin_ras"):
        napari_medio.read(path, grid_origin_ras=("a", 0, 0))


def test_metadata_header_values(tmp_path):
    planes = random_field((2, 3, 4))
    path = build(tmp_path / "m.dvf", planes, spacing=(1.25, 2.0, 3.5), bbox=(1, 2, 3, 40, 50, 60))
    [t] = napari_medio.read(path)
    md = t.metadata["pinnacle_dvf"]
    assert md["byte_order"] == "little" and md["is_little_endian"] == 1
    assert md["fixed_is_secondary"] == 0 and md["moving_is_secondary"] == 0
    assert md["fixed_bounding_box_start"] == [1, 2, 3] and md["fixed_bounding_box_end"] == [40, 50, 60]
    assert md["size"] == [4, 3, 2] and md["spacing"] == [1.25, 2.0, 3.5]
    assert md["header_bytes"] == 72 and "registration" not in md
    assert t.displacement.metadata["pinnacle_dvf"] == md


def test_fixed_secondary_registration_matrix(tmp_path):
    planes = random_field((2, 2, 2))
    reg = (10.0, 0.0, 0.0, 0.0, 0.0, 90.0)
    path = build(tmp_path / "fixed.dvf", planes, flags=(1, 1, 0), registration=reg)
    grid, linear = napari_medio.read(path)
    assert grid.type == "grid" and linear.type == "linear"
    assert linear.name == "fixed_PostDeformationMatrix" and linear.stored_direction == "to_parent"
    # by hand: translate first, then Rz(90): (1, 0, 0) -> (11, 0, 0) -> (0, 11, 0), LPS mm
    np.testing.assert_allclose(linear.transform_points_to_parent([[1.0, 0.0, 0.0]]), [[0.0, 11.0, 0.0]], atol=1e-6)
    md = linear.metadata["pinnacle_dvf"]["registration"]
    assert md["of"] == "fixed" and md["translation"] == [10.0, 0.0, 0.0] and md["translation_scale_to_mm"] == 1.0
    assert grid.metadata["pinnacle_dvf"]["header_bytes"] == 96
    # the grid is read after the 24-byte block: same field as without a block
    [plain] = napari_medio.read(build(tmp_path / "plain.dvf", planes))
    np.testing.assert_array_equal(np.asarray(grid.displacement.array), np.asarray(plain.displacement.array))


def test_moving_secondary_translation_in_cm_and_rotation_order(tmp_path):
    planes = random_field((2, 2, 2))
    reg = (1.5, -2.0, 0.25, 30.0, -45.0, 60.0)
    path = build(tmp_path / "moving.dvf", planes, flags=(1, 0, 1), registration=reg)
    _, linear = napari_medio.read(path)
    t_mm = np.array([15.0, -20.0, 2.5])
    expected_lps = rot(0, 30.0) @ rot(1, -45.0) @ rot(2, 60.0)
    expected_lps[:3, 3] = expected_lps[:3, :3] @ t_mm
    np.testing.assert_allclose(linear.matrix_to_parent_lps, expected_lps, atol=1e-6)
    # SlicerRT's RAS node matrix: diag(-1,-1,1) T diag(-1,-1,1)
    np.testing.assert_allclose(linear.matrix_to_parent_ras, FLIP @ expected_lps @ FLIP, atol=1e-6)
    p = np.array([[3.0, -4.0, 5.0]])
    step = p[0] + t_mm
    for axis, deg in ((2, 60.0), (1, -45.0), (0, 30.0)):  # Rz first, then Ry, then Rx
        step = rot(axis, deg)[:3, :3] @ step
    np.testing.assert_allclose(linear.transform_points_to_parent(p)[0], step, atol=1e-6)
    assert linear.metadata["pinnacle_dvf"]["registration"]["translation_scale_to_mm"] == 10.0


def test_registration_matrix_matches_vtk_transform(tmp_path):
    vtk = pytest.importorskip("vtk")
    planes = random_field((2, 2, 2))
    for flags, scale in (((1, 1, 0), 1.0), ((1, 0, 1), 10.0)):
        reg = (3.25, -7.5, 12.0, 17.0, 23.0, -41.0)
        _, linear = napari_medio.read(build(tmp_path / f"r{scale}.dvf", planes, flags=flags, registration=reg))
        f = [float(np.float32(v)) for v in reg]
        vt = vtk.vtkTransform()  # SlicerRT's construction, then its RAS conversion
        vt.RotateX(f[3])
        vt.RotateY(f[4])
        vt.RotateZ(f[5])
        vt.Translate(f[0] * scale, f[1] * scale, f[2] * scale)
        m = np.array([[vt.GetMatrix().GetElement(r, c) for c in range(4)] for r in range(4)])
        np.testing.assert_allclose(linear.matrix_to_parent_ras, FLIP @ m @ FLIP, atol=1e-9)


def test_grid_matches_vtk_grid_transform(tmp_path):
    """VTK's vtkGridTransform as the reference for SlicerRT's vtkOrientedGridTransform.

    vtkGridTransform ignores an image direction, so the grid with direction
    diag(-1,-1,-1) is evaluated in negated coordinates: index = (o - p) / s =
    ((-p) - (-o)) / s, i.e. a plain grid at origin -o sampled at -p gives
    SlicerRT's displacement at p (the vectors themselves are not rotated).
    VTK floors the continuous index in 16.16 fixed point (vtkInterpolationMath),
    so its weights are exact only to 2**-16 voxel: the points are put at index
    fractions that are multiples of 1/16, where VTK is exact.
    """
    vtk = pytest.importorskip("vtk")
    from vtk.util import numpy_support

    planes = random_field((3, 4, 5), seed=3)
    spacing, origin_ras = (2.0, 2.5, 3.0), (-7.0, 12.0, 40.0)
    [t] = napari_medio.read(build(tmp_path / "v.dvf", planes, spacing=spacing), grid_origin_ras=origin_ras)
    _, vec = slicer_ras_grid(planes, spacing, origin_ras)
    img = vtk.vtkImageData()
    img.SetOrigin(*(-np.asarray(origin_ras)))
    img.SetSpacing(*spacing)
    img.SetExtent(0, 4, 0, 3, 0, 2)
    scalars = numpy_support.numpy_to_vtk(vec.reshape(-1, 3), deep=True)
    img.GetPointData().SetScalars(scalars)
    grid = vtk.vtkGridTransform()
    grid.SetDisplacementGridData(img)
    grid.SetInterpolationModeToLinear()
    rng = np.random.default_rng(2)
    index = rng.integers(0, 16 * np.array([4, 3, 2]), size=(25, 3)) / 16.0
    pts_ras = np.asarray(origin_ras) - index * np.array(spacing)
    ref_ras = np.array([p + (np.array(grid.TransformPoint(*(-p))) + p) for p in pts_ras])
    np.testing.assert_allclose(t.transform_points_to_parent(lps(pts_ras)), lps(ref_ras), atol=1e-6)


def test_both_flags_read_one_block_and_option_drops_matrix(tmp_path):
    planes = random_field((2, 2, 3))
    reg = (1.0, 2.0, 3.0, 0.0, 0.0, 0.0)
    path = build(tmp_path / "both.dvf", planes, flags=(1, 1, 1), registration=reg)
    _grid, linear = napari_medio.read(path)
    np.testing.assert_allclose(linear.matrix_to_parent_lps[:3, 3], [1.0, 2.0, 3.0], atol=1e-6)  # fixed: mm
    only = napari_medio.read(path, registration_matrix=False)
    assert len(only) == 1 and only[0].type == "grid"
    assert "registration" in only[0].metadata["pinnacle_dvf"]


def test_big_endian_file_reads_like_little_endian(tmp_path):
    planes = random_field((2, 3, 4), seed=7)
    reg = (1.0, 2.0, 3.0, 10.0, 20.0, 30.0)
    le = napari_medio.read(build(tmp_path / "le.dvf", planes, flags=(1, 0, 1), registration=reg))
    be = napari_medio.read(build(tmp_path / "be.dvf", planes, flags=(0, 0, 1), registration=reg, endian=">"))
    assert be[0].metadata["pinnacle_dvf"]["byte_order"] == "big"
    np.testing.assert_array_equal(np.asarray(le[0].displacement.array), np.asarray(be[0].displacement.array))
    np.testing.assert_allclose(le[1].matrix_to_parent_lps, be[1].matrix_to_parent_lps, atol=1e-12)


# -- the rest of the project works on it ---------------------------------------------------------------
def test_round_trip_through_displacement_field_nrrd(tmp_path):
    planes = random_field((3, 4, 5), seed=11)
    [t] = napari_medio.read(build(tmp_path / "rt.dvf", planes, spacing=(2.0, 3.0, 4.0)),
                            grid_origin_ras=(5.0, 6.0, -7.0))
    napari_medio.write(t, tmp_path / "rt.nrrd")
    text = (tmp_path / "rt.nrrd").read_bytes()[:2000].decode("latin-1")
    assert "displacement field type:=modeling" in text
    # as a displacement-field file it maps points cubically between nodes, as Slicer does; SlicerRT's .dvf linearly
    [back] = napari_medio.read(tmp_path / "rt.nrrd", interpolation="linear")
    assert back.type == "grid" and back.stored_direction == "to_parent"
    np.testing.assert_array_equal(np.asarray(back.displacement.array), np.asarray(t.displacement.array))
    assert back.displacement.geometry.almost_equal(t.displacement.geometry, tol=1e-9)
    pts = t.displacement.geometry.index_to_lps(np.array([[1.5, 2.25, 0.5], [3.0, 1.0, 1.75]]))
    np.testing.assert_allclose(back.transform_points_to_parent(pts), t.transform_points_to_parent(pts), atol=1e-9)


def test_written_as_itk_h5_holds_the_resampling_inverse(tmp_path):
    """ITK files hold from-parent transforms: the to-parent field is inverted on the way (as for any modeling field)."""
    shape = (6, 6, 6)
    d = [np.full(shape, 1.5), np.full(shape, -0.5), np.full(shape, 0.752)]
    hl = [encode(x) for x in d]
    planes = [hl[0][0], hl[1][0], hl[2][0], hl[0][1], hl[1][1], hl[2][1]]
    [t] = napari_medio.read(build(tmp_path / "u.dvf", planes, spacing=(5.0, 5.0, 5.0)))
    napari_medio.write(t, tmp_path / "u.h5")
    [back] = napari_medio.read(tmp_path / "u.h5")
    assert back.type == "grid" and back.stored_direction == "from_parent"
    p = t.displacement.geometry.index_to_lps(np.array([[2.5, 2.5, 2.5], [2.0, 3.0, 1.5]]))
    moved = t.transform_points_to_parent(p)
    np.testing.assert_allclose(moved, p + [1.5, -0.5, 0.752], atol=1e-6)
    # to within the project's iterative inversion (ITK InvertDisplacementField, ~0.03 mm here)
    np.testing.assert_allclose(back.transform_points_from_parent(moved), p, atol=0.05)


def test_resampling_shows_the_moving_volume_displaced(tmp_path):
    shape = (8, 8, 8)
    d = [np.full(shape, 2.0), np.zeros(shape), np.zeros(shape)]
    hl = [encode(x) for x in d]
    planes = [hl[0][0], hl[1][0], hl[2][0], hl[0][1], hl[1][1], hl[2][1]]
    [t] = napari_medio.read(build(tmp_path / "shift.dvf", planes, spacing=(4.0, 4.0, 4.0)))
    geom = Geometry(np.ones(3), np.array([4.0, 4.0, -24.0]), np.eye(3))
    ii = np.arange(20, dtype=float)
    arr = np.broadcast_to(ii[None, None, :], (20, 20, 20)).astype(np.float32).copy()  # value = x - 4 (LPS mm)
    out = np.asarray(resample_volume(Volume(arr, geom), t).array)
    # the child moves +2 mm along L into the parent: the value at parent x is the child's at x - 2
    # (resampling inverts the to-parent field with ITK's iterative InvertDisplacementField: ~0.03 mm here)
    np.testing.assert_allclose(out[10, 10, 8:12], arr[10, 10, 8:12] - 2.0, atol=0.05)


def test_registry_dispatch_and_sniff(tmp_path):
    planes = random_field((2, 2, 2))
    path = build(tmp_path / "a.dvf", planes)
    assert find_reader(path).name == "pinnacle-dvf"
    # content decides for another extension
    other = build(tmp_path / "a.bin", planes)
    assert find_reader(other).name == "pinnacle-dvf"
    # an unrelated .dvf (a voice recording, say) is not claimed
    voice = tmp_path / "memo.dvf"
    voice.write_bytes(b"MS_VOICE_SONY" + bytes(range(256)) * 8)
    with pytest.raises(FormatError, match="memo.dvf"):
        napari_medio.read(voice)
    # one byte too many: the size no longer matches, so not claimed
    extra = build(tmp_path / "extra.dvf", planes, trailing=b"\0")
    with pytest.raises(FormatError, match="extra.dvf"):
        napari_medio.read(extra)


# -- bad input ------------------------------------------------------------------------------------------
def _good(tmp_path, name="g.dvf", **kw):
    return build(tmp_path / name, random_field((2, 3, 4)), **kw)


@pytest.mark.parametrize("case", [
    "empty", "short_header", "truncated_data", "truncated_registration", "trailing", "zero_size",
    "negative_size", "huge_size", "zero_spacing", "nan_spacing", "bad_flags", "nan_registration", "garbage",
])
@pytest.mark.parametrize("explicit", [False, True])
def test_bad_input_names_the_file(tmp_path, case, explicit):
    name = f"bad_{case}.dvf"
    if case == "empty":
        p = tmp_path / name
        p.write_bytes(b"")
    elif case == "short_header":
        p = _good(tmp_path, name, cut=40)
    elif case == "truncated_data":
        p = _good(tmp_path, name, cut=72 + 6 * 24 - 5)
    elif case == "truncated_registration":
        p = _good(tmp_path, name, flags=(1, 1, 0), registration=(0,) * 6, cut=30)
    elif case == "trailing":
        p = _good(tmp_path, name, trailing=b"xyz")
    elif case == "zero_size":
        p = _good(tmp_path, name, size=(4, 0, 2))
    elif case == "negative_size":
        p = _good(tmp_path, name, size=(4, -3, 2))
    elif case == "huge_size":
        p = _good(tmp_path, name, size=(2_000_000_000, 2_000_000_000, 2_000_000_000))
    elif case == "zero_spacing":
        p = _good(tmp_path, name, spacing=(1.0, 0.0, 1.0))
    elif case == "nan_spacing":
        p = _good(tmp_path, name, spacing=(1.0, float("nan"), 1.0))
    elif case == "bad_flags":
        p = _good(tmp_path, name, flags=(1, 2, 0))
    elif case == "nan_registration":
        p = _good(tmp_path, name, flags=(1, 0, 1), registration=(0, float("inf"), 0, 0, 0, 0))
    else:
        p = tmp_path / name
        p.write_bytes(np.random.default_rng(4).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    options = {"format": "pinnacle-dvf"} if explicit else {}
    with pytest.raises(FormatError) as info:
        napari_medio.read(p, **options)
    assert name in str(info.value)


def test_explicit_format_gives_the_specific_reason(tmp_path):
    checks = {
        "t.dvf": ({"cut": 72 + 10}, "truncated"),
        "s.dvf": ({"size": (4, 0, 2)}, "impossible grid size"),
        "sp.dvf": ({"spacing": (1.0, -1.0, 1.0)}, "impossible grid spacing"),
        "f.dvf": ({"flags": (7, 0, 0)}, "must each be 0 or 1"),
        "x.dvf": ({"trailing": b"abc"}, "3 unexpected bytes"),
    }
    for name, (kw, reason) in checks.items():
        p = _good(tmp_path, name, **kw)
        with pytest.raises(FormatError, match=reason) as info:
            napari_medio.read(p, format="pinnacle-dvf")
        assert name in str(info.value)

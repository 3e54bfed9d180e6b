"""GE Kretz 3D ultrasound (KRETZFILE 1.0), read as SlicerHeart's KretzFileReader reads it.

No real Kretz file was available: every file here is written byte by byte by
:func:`kretz_bytes` from the layout in SlicerHeart's
``vtkSlicerKretzFileReaderLogic.cxx``.  The conformance tests recompute, with
the formula typed out independently here, the Cartesian grid SlicerHeart's code
asks VTK for (float32 grid points, ``ceil(extent / spacing)`` samples, VTK 9's
inward nudge of the bounds, identity IJK-to-RAS), and, when VTK is installed,
run SlicerHeart's actual VTK pipeline (``vtkStructuredGrid`` +
``vtkResampleToImage``) on the same samples and compare grid and voxels.
"""
from __future__ import annotations

import math
import struct
import warnings

import numpy as np
import pytest

import napari_medio
from napari_medio.core.errors import FormatError, MedioError
from napari_medio.core.registry import find_reader, get_format
from napari_medio.formats import kretz
from tests.badfiles import assert_rejected, variants

MAGIC = b"KRETZFILE 1.0   "


# -- writer (tests only) -----------------------------------------------------------------------
def item(group: int, element: int, payload: bytes) -> bytes:
    """One tagged item: uint16 group, uint16 element, uint32 length, payload (little-endian)."""
    return struct.pack("<HHI", group, element, len(payload)) + payload


def header_items(dims, resolution_m=0.0005, offset1=20.0, offset2=40.0, theta=None, phi=None,
                 cartesian_spacing=None, patient=True) -> bytes:
    ni, nj, nk = dims
    out = b""
    if patient:
        out += item(0x0110, 0x0001, b"ID-0042\0") + item(0x0110, 0x0002, b"DOE^JANE\0\0")
        out += item(0x0140, 0x0003, b"20240131\0") + item(0x0130, 0x0001, b"Voluson E8\0")
    out += item(0xC000, 0x0001, struct.pack("<H", ni))
    out += item(0xC000, 0x0002, struct.pack("<H", nj))
    out += item(0xC000, 0x0003, struct.pack("<H", nk))
    out += item(0x1234, 0x0007, b"\x01\x02\x03")  # an unknown item: skipped
    if resolution_m is not None:
        out += item(0xC100, 0x0001, struct.pack("<d", resolution_m))
    out += item(0xC200, 0x0001, struct.pack("<d", offset1))
    out += item(0xC200, 0x0002, struct.pack("<d", offset2))
    if phi is not None:
        out += item(0xC300, 0x0001, np.asarray(phi, "<f8").tobytes())
    if theta is not None:
        out += item(0xC300, 0x0002, np.asarray(theta, "<f8").tobytes())
    if cartesian_spacing is not None:
        out += item(0x0010, 0x0022, struct.pack("<d", cartesian_spacing))
    return out


def kretz_bytes(voxels: np.ndarray, **kw) -> bytes:
    """A whole file: signature, header items, the voxel item D000,0001 (voxels given as (k, j, i))."""
    nk, nj, ni = voxels.shape
    return MAGIC + header_items((ni, nj, nk), **kw) + item(0xD000, 0x0001, voxels.astype(np.uint8).tobytes())


def sweep(nj=50, nk=40, theta_deg=(60.0, 120.0), phi_deg=(65.0, 115.0)):
    return np.deg2rad(np.linspace(*theta_deg, nj)), np.deg2rad(np.linspace(*phi_deg, nk))


# -- SlicerHeart's geometry, typed out independently ------------------------------------------
def slicer_points(ni, nj, nk, res_mm, offset1, offset2, theta, phi):
    """Grid points as SlicerHeart's loop inserts them (RAS mm, float32 as vtkPoints), shape (k, j, i, 3)."""
    r = offset1 * res_mm + np.arange(ni) * res_mm
    b = -offset2 * res_mm
    th = theta - math.pi / 2.0
    ph = phi - math.pi / 2.0
    R = r[None, None, :]
    T = th[None, :, None]
    P = ph[:, None, None]
    x = R * np.sin(T) + 0 * P
    y = -(R * np.cos(T) - b) * np.sin(P)
    z = b * (1 - np.cos(P)) + R * np.cos(T) * np.cos(P)
    return np.stack(np.broadcast_arrays(x, y, z), -1).astype(np.float32)


def slicer_grid(points, spacing):
    """(dims x,y,z, spacing, origin RAS) as SlicerHeart + vtkResampleToImage (VTK 9) compute them."""
    p = points.reshape(-1, 3).astype(np.float64)
    lo, hi = p.min(0), p.max(0)
    dims = np.array([math.ceil((hi[a] - lo[a]) / spacing[a]) for a in range(3)])
    c = (lo + hi) / 2
    lo2 = c + (1 - 1e-6) * (lo - c)
    hi2 = c + (1 - 1e-6) * (hi - c)
    return dims, (hi2 - lo2) / (dims - 1), lo2


def write(tmp_path, name, data: bytes):
    p = tmp_path / name
    p.write_bytes(data)
    return p


# -- registration and sniffing -----------------------------------------------------------------
def test_registration_matches_slicerheart():
    fmt = get_format("ge-kretz")
    assert fmt.extensions == (".vol", ".v00", ".v01", ".v02", ".v03", ".v04", ".v05")
    assert fmt.write is None and fmt.kinds == ("volume",)
    assert fmt.sniff(MAGIC + b"\0" * 8, None) and not fmt.sniff(b"KRETZFILE 1.0\0\0\0", None)
    assert not fmt.sniff(b"", None) and not fmt.sniff(b"\x00" * 64, None)
    assert set(fmt.read_options) == {"scan_convert", "output_spacing", "file_offset"}


@pytest.mark.parametrize("name", ["us.vol", "us.V01", "us.v05", "us.v00", "renamed.bin"])
def test_found_by_content(tmp_path, name):
    theta, phi = sweep(6, 5)
    p = write(tmp_path, name, kretz_bytes(np.zeros((5, 6, 7), np.uint8), theta=theta, phi=phi))
    assert find_reader(p).name == "ge-kretz"


def test_other_vol_files_are_not_claimed(tmp_path):
    """.vol is ambiguous: a raw volume named .vol is not read as Kretz."""
    p = write(tmp_path, "ct.vol", np.arange(4096, dtype=np.uint16).tobytes())
    with pytest.raises(MedioError) as info:
        napari_medio.read(p)
    assert str(p) in str(info.value)
    assert not kretz.sniff(p.read_bytes()[:4096], p)


# -- raw grid and Cartesian files ---------------------------------------------------------------
def test_raw_sample_grid(tmp_path):
    rng = np.random.default_rng(1)
    vox = rng.integers(0, 256, (5, 6, 7), dtype=np.uint8)
    theta, phi = sweep(6, 5)
    p = write(tmp_path, "raw.vol", kretz_bytes(vox, theta=theta, phi=phi))
    [vol] = napari_medio.read(p, scan_convert=False)
    assert vol.dtype == np.uint8 and np.array_equal(vol.array, vox)  # (k, j, i): radial fastest
    g = vol.geometry
    # Slicer: spacing 1 (no 0010,0022), origin 0, identity IJK-to-RAS -> LPS direction diag(-1, -1, 1).
    assert np.allclose(g.spacing, 1.0) and np.allclose(g.origin, 0.0)
    assert np.array_equal(g.direction, np.diag([-1.0, -1.0, 1.0]))
    meta = vol.metadata["kretz"]
    assert meta["scan_converted"] is False and meta["coordinate_system"] == "toroidal"
    assert "raw toroidal" in meta["note"]


def test_raw_grid_uses_cartesian_spacing_tag(tmp_path):
    vox = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    theta, phi = sweep(3, 2)
    p = write(tmp_path, "raw.v02", kretz_bytes(vox, theta=theta, phi=phi, cartesian_spacing=0.35))
    [vol] = napari_medio.read(p, scan_convert=False)
    assert np.allclose(vol.geometry.spacing, 0.35, atol=1e-12)


def test_cartesian_file_loaded_as_stored(tmp_path):
    """No angle items: a Cartesian volume, never scan-converted, spacing from 0010,0022 (SlicerHeart)."""
    vox = np.random.default_rng(2).integers(0, 256, (4, 5, 6), dtype=np.uint8)
    p = write(tmp_path, "cart.vol", kretz_bytes(vox, cartesian_spacing=0.6))
    [vol] = napari_medio.read(p)  # scan_convert=True is ignored for a Cartesian file
    assert np.array_equal(vol.array, vox)
    assert np.allclose(vol.geometry.spacing, 0.6) and np.allclose(vol.geometry.origin, 0.0)
    assert np.array_equal(vol.geometry.direction, np.diag([-1.0, -1.0, 1.0]))
    assert vol.metadata["kretz"]["coordinate_system"] == "cartesian"
    assert vol.metadata["kretz"]["cartesian_spacing_mm"] == 0.6
    # without the spacing item: 1 mm
    p2 = write(tmp_path, "cart1.vol", kretz_bytes(vox))
    assert np.allclose(napari_medio.read(p2)[0].geometry.spacing, 1.0)


# -- scan conversion: geometry conformance -----------------------------------------------------
CASES = [
    # ni, nj, nk, resolution (m), offset1, offset2, theta (deg), phi (deg), output spacing
    (40, 30, 25, 0.0005, 20.0, 40.0, (60, 120), (65, 115), 0.5),     # sweep axis 20 mm behind the apex
    (40, 30, 25, 0.0005, 20.0, -30.0, (60, 120), (65, 115), 0.5),    # sweep axis 15 mm in front of it
    (50, 20, 16, 0.0004, 0.0, 0.0, (45, 135), (50, 130), 0.7),       # spherical (b = 0), from r = 0
    (30, 24, 18, 0.0008, 12.5, 15.0, (70, 112), (80, 100), (0.4, 0.6, 0.9)),  # anisotropic output
    (30, 24, 18, 0.0008, 12.5, 15.0, (112, 70), (100, 80), 1.0),     # decreasing angle tables
]


@pytest.mark.parametrize("case", CASES)
def test_cartesian_grid_matches_slicerheart(tmp_path, case):
    ni, nj, nk, res_m, off1, off2, th_deg, ph_deg, spacing = case
    theta, phi = sweep(nj, nk, th_deg, ph_deg)
    vox = np.full((nk, nj, ni), 100, np.uint8)
    p = write(tmp_path, "g.vol", kretz_bytes(vox, resolution_m=res_m, offset1=off1, offset2=off2,
                                             theta=theta, phi=phi))
    [vol] = napari_medio.read(p, output_spacing=spacing)
    sp = np.broadcast_to(np.asarray(spacing, float), (3,))
    dims, ex_spacing, ex_origin_ras = slicer_grid(
        slicer_points(ni, nj, nk, res_m * 1000, off1, off2, theta, phi), sp)
    assert vol.shape == tuple(dims[::-1])  # array (z, y, x)
    g = vol.geometry
    assert np.allclose(g.spacing, ex_spacing, atol=1e-6, rtol=0)
    assert np.allclose(g.origin, ex_origin_ras * [-1, -1, 1], atol=1e-6, rtol=0)  # RAS -> LPS
    assert np.array_equal(g.direction, np.diag([-1.0, -1.0, 1.0]))
    # the actual spacing is a little larger than requested, as in Slicer
    assert np.all(g.spacing >= sp * (1 - 1e-9)) and np.all(g.spacing < sp * 1.2)
    meta = vol.metadata["kretz"]
    assert meta["scan_converted"] is True and meta["output_spacing_requested_mm"] == sp.tolist()
    assert vol.dtype == np.uint8


def test_default_output_spacing_is_slicerhearts(tmp_path):
    theta, phi = sweep(30, 25)
    p = write(tmp_path, "d.vol", kretz_bytes(np.ones((25, 30, 40), np.uint8), theta=theta, phi=phi))
    [vol] = napari_medio.read(p)
    assert vol.metadata["kretz"]["output_spacing_requested_mm"] == [0.5, 0.5, 0.5]
    assert np.all(np.abs(vol.geometry.spacing - 0.5) < 0.02)


# -- scan conversion: voxel values --------------------------------------------------------------
def ras_of_voxels(vol):
    """RAS mm of every voxel centre, shape (z, y, x, 3)."""
    nz, ny, nx = vol.shape
    k, j, i = np.meshgrid(np.arange(nz), np.arange(ny), np.arange(nx), indexing="ij")
    lps = vol.geometry.index_to_lps(np.stack([i, j, k], -1).reshape(-1, 3)).reshape(nz, ny, nx, 3)
    return lps * [-1, -1, 1]


def test_sphere_phantom(tmp_path):
    """A ball written into the sample grid comes out where and as large as the geometry says."""
    ni, nj, nk, res_m, off1, off2 = 80, 70, 60, 0.0005, 20.0, 30.0  # r 10-49.5 mm, sweep axis 15 mm behind
    theta, phi = sweep(nj, nk, (55, 125), (60, 120))
    centre, radius = np.array([4.0, -3.0, 30.0]), 6.0  # RAS mm in the probe frame
    pts = slicer_points(ni, nj, nk, res_m * 1000, off1, off2, theta, phi).astype(np.float64)
    vox = np.where(np.linalg.norm(pts - centre, axis=-1) <= radius, 200, 0).astype(np.uint8)
    p = write(tmp_path, "ball.vol", kretz_bytes(vox, resolution_m=res_m, offset1=off1, offset2=off2,
                                                theta=theta, phi=phi))
    [vol] = napari_medio.read(p, output_spacing=0.4)
    a = vol.to_numpy()
    d = np.linalg.norm(ras_of_voxels(vol) - centre, axis=-1)
    # sample cells near the ball are at most ~1 mm across: allow that margin either side
    margin = 1.0
    assert np.all(a[d < radius - margin] == 200)
    assert np.all(a[d > radius + margin] == 0)
    # centre of mass at the LPS position of the RAS centre, volume of the ball
    mask = a >= 100
    com = vol.geometry.index_to_lps(np.argwhere(mask)[:, ::-1].astype(float)).mean(0)
    assert np.allclose(com, centre * [-1, -1, 1], atol=0.1)
    ball = mask.sum() * np.prod(vol.geometry.spacing)
    assert ball == pytest.approx(4 / 3 * math.pi * radius ** 3, rel=0.05)


@pytest.mark.parametrize("axis", ["radial", "theta", "phi"])
def test_interpolation_is_trilinear_in_sample_space(tmp_path, axis):
    """Fields linear in one sample index come out as that index, recovered independently from RAS."""
    ni, nj, nk, res_m, off1, off2 = 60, 40, 30, 0.0005, 20.0, 30.0
    theta, phi = sweep(nj, nk, (60, 120), (65, 115))
    k, j, i = np.meshgrid(np.arange(nk), np.arange(nj), np.arange(ni), indexing="ij")
    field, scale = {"radial": (i, 4.0), "theta": (j, 6.0), "phi": (k, 8.0)}[axis]
    vox = (field * scale).astype(np.uint8)
    p = write(tmp_path, "lin.vol", kretz_bytes(vox, resolution_m=res_m, offset1=off1, offset2=off2,
                                               theta=theta, phi=phi))
    [vol] = napari_medio.read(p, output_spacing=0.6)
    x, y, z = np.moveaxis(ras_of_voxels(vol), -1, 0)
    b = -off2 * res_m * 1000
    rho = np.hypot(y, z - b)          # distance from the sweep axis (positive here)
    ph = np.arctan2(-y, z - b)
    th = np.arctan2(x, rho + b)
    r = np.hypot(x, rho + b)
    fi = (r - off1 * res_m * 1000) / (res_m * 1000)
    fj = np.interp(th, theta - np.pi / 2, np.arange(nj), left=np.nan, right=np.nan)
    fk = np.interp(ph, phi - np.pi / 2, np.arange(nk), left=np.nan, right=np.nan)
    inner = (fi > 1) & (fi < ni - 2) & (fj > 1) & (fj < nj - 2) & (fk > 1) & (fk < nk - 2)
    expected = {"radial": fi, "theta": fj, "phi": fk}[axis] * scale
    got = vol.to_numpy().astype(float)
    assert inner.sum() > 1000
    assert np.abs(got[inner] - expected[inner]).max() <= 1.0
    outside = ~((fi >= -0.01) & (fi <= ni - 0.99) & ~np.isnan(fj) & ~np.isnan(fk))
    assert np.all(got[outside] == 0)


def test_same_result_as_slicerhearts_vtk_pipeline(tmp_path):
    """SlicerHeart's own pipeline (vtkStructuredGrid + vtkResampleToImage) on the same samples."""
    vtk = pytest.importorskip("vtk")
    from vtk.util import numpy_support

    ni, nj, nk, res, off1, off2 = 40, 30, 25, 0.5, 20.0, 40.0
    theta, phi = sweep(nj, nk)
    k, j, i = np.meshgrid(np.arange(nk), np.arange(nj), np.arange(ni), indexing="ij")
    vox = (100 + 60 * np.sin(i / 4.0) * np.cos(j / 5.0) + 40 * np.cos(k / 3.0)).astype(np.uint8)
    p = write(tmp_path, "v.vol", kretz_bytes(vox, resolution_m=res / 1000, offset1=off1, offset2=off2,
                                             theta=theta, phi=phi))
    [vol] = napari_medio.read(p, output_spacing=0.5)

    points = vtk.vtkPoints()
    points.SetData(numpy_support.numpy_to_vtk(
        slicer_points(ni, nj, nk, res, off1, off2, theta, phi).reshape(-1, 3), deep=1))
    grid = vtk.vtkStructuredGrid()
    grid.SetPoints(points)
    grid.SetExtent(0, ni - 1, 0, nj - 1, 0, nk - 1)
    values = numpy_support.numpy_to_vtk(vox.reshape(-1), deep=1, array_type=vtk.VTK_UNSIGNED_CHAR)
    values.SetName("VoxelIntensity")
    grid.GetPointData().AddArray(values)
    grid.GetPointData().SetActiveAttribute("VoxelIntensity", 0)
    bounds = grid.GetBounds()
    dims = [math.ceil((bounds[2 * a + 1] - bounds[2 * a]) / 0.5) for a in range(3)]
    resampler = vtk.vtkResampleToImage()
    resampler.SetInputDataObject(grid)
    resampler.SetSamplingDimensions(dims)
    resampler.Update()
    image = resampler.GetOutput()
    ref = numpy_support.vtk_to_numpy(image.GetPointData().GetArray("VoxelIntensity")).reshape(dims[::-1])

    assert vol.shape == ref.shape
    assert np.allclose(vol.geometry.spacing, image.GetSpacing(), atol=1e-9, rtol=0)
    assert np.allclose(vol.geometry.origin, np.array(image.GetOrigin()) * [-1, -1, 1], atol=1e-9, rtol=0)
    a = vol.to_numpy().astype(int)
    r = ref.astype(int)
    both = (a > 0) & (r > 0)
    assert np.abs(a - r)[both].max() <= 1  # same trilinear weights up to cell curvature
    assert ((a > 0) != (r > 0)).sum() <= 0.005 * (r > 0).sum()  # fan edge within a voxel


def test_speed_is_vectorised(tmp_path):
    """A realistic sweep converts without per-voxel Python loops (generous bound for slow CI)."""
    import time

    theta, phi = sweep(120, 90, (50, 130), (55, 125))
    vox = np.random.default_rng(3).integers(0, 256, (90, 120, 200), dtype=np.uint8)
    p = write(tmp_path, "big.vol", kretz_bytes(vox, resolution_m=0.0004, offset1=25.0, offset2=20.0,
                                               theta=theta, phi=phi))
    t = time.perf_counter()
    [vol] = napari_medio.read(p, output_spacing=0.6)
    assert int(np.prod(vol.shape)) > 2_000_000
    assert time.perf_counter() - t < 20.0


# -- metadata, variants, undecoded data --------------------------------------------------------
def test_metadata(tmp_path):
    theta, phi = sweep(6, 5)
    vox = np.zeros((5, 6, 7), np.uint8)
    p = write(tmp_path, "m.vol", kretz_bytes(vox, theta=theta, phi=phi, resolution_m=0.00025, offset1=40.0,
                                             offset2=12.0, cartesian_spacing=0.3))
    [vol] = napari_medio.read(p)
    meta = vol.metadata["kretz"]
    assert meta["patient_name"] == "DOE^JANE" and meta["patient_id"] == "ID-0042"
    assert meta["study_date"] == "20240131" and meta["device"] == "Voluson E8"
    assert meta["dimensions"] == [7, 6, 5]
    assert meta["radial_resolution_mm"] == pytest.approx(0.25)
    assert meta["offset1"] == 40.0 and meta["offset2"] == 12.0
    assert meta["radial_start_mm"] == pytest.approx(10.0) and meta["bmode_radius_mm"] == pytest.approx(-3.0)
    assert np.allclose(meta["theta_angles_rad"], theta) and np.allclose(meta["phi_angles_rad"], phi)
    assert meta["cartesian_spacing_mm"] == 0.3
    assert meta["volume_count"] == 1 and meta["undecoded"] == []
    tags = [it["tag"] for it in meta["items"]]
    assert tags[:2] == ["0110,0001", "0110,0002"] and "1234,0007" in tags and tags[-1] == "D000,0001"
    assert vol.window.limits == (15.0, 150.0)
    assert vol.name == "m"


def test_several_voxel_items_give_several_volumes(tmp_path):
    """Each D000,0001 item is a volume built from the items before it (SlicerHeart adds one node each)."""
    theta1, phi1 = sweep(6, 5)
    theta2, phi2 = sweep(4, 3)
    v1 = np.full((5, 6, 7), 10, np.uint8)
    v2 = np.full((3, 4, 8), 20, np.uint8)
    data = (MAGIC + header_items((7, 6, 5), theta=theta1, phi=phi1) + item(0xD000, 1, v1.tobytes())
            + header_items((8, 4, 3), theta=theta2, phi=phi2, patient=False) + item(0xD000, 1, v2.tobytes()))
    p = write(tmp_path, "two.v01", data)
    vols = napari_medio.read(p, scan_convert=False)
    assert [v.shape for v in vols] == [(5, 6, 7), (3, 4, 8)]
    assert [v.name for v in vols] == ["two_1", "two_2"]
    assert np.all(vols[1].array == 20) and vols[1].metadata["kretz"]["volume_index"] == 1
    assert all(v.metadata["kretz"]["volume_count"] == 2 for v in vols)


def test_doppler_volume_is_reported_not_misread(tmp_path):
    theta, phi = sweep(6, 5)
    vox = np.full((5, 6, 7), 50, np.uint8)
    data = kretz_bytes(vox, theta=theta, phi=phi)
    data += item(0xC000, 0x0201, struct.pack("<H", 3)) + item(0xD000, 0x0201, b"\x07" * 27)
    p = write(tmp_path, "dop.vol", data)
    with pytest.warns(UserWarning, match="Doppler"):
        [vol] = napari_medio.read(p, scan_convert=False)
    assert np.all(vol.array == 50)  # the B-mode volume, not the Doppler one
    assert vol.metadata["kretz"]["undecoded"] == ["Doppler / colour voxel data (D000,0201)"]


def test_4d_only_file_is_refused_clearly(tmp_path):
    theta, phi = sweep(6, 5)
    data = MAGIC + header_items((7, 6, 5), theta=theta, phi=phi) + item(0xD600, 0x0001, b"\0" * 420)
    p = write(tmp_path, "seq.vol", data)
    with pytest.raises(FormatError, match="4D") as info:
        napari_medio.read(p)
    assert str(p) in str(info.value)


def test_no_voxel_data_says_compressed(tmp_path):
    theta, phi = sweep(6, 5)
    p = write(tmp_path, "wavelet.vol", MAGIC + header_items((7, 6, 5), theta=theta, phi=phi)
              + item(0xD100, 0x0001, b"\x55" * 100))
    with pytest.raises(FormatError, match="compress"):
        napari_medio.read(p)


def test_file_offset_for_embedded_data(tmp_path):
    """SlicerHeart's DICOM plug-in passes the offset of Kretz data embedded in a DICOM element."""
    vox = np.random.default_rng(4).integers(0, 256, (3, 4, 5), dtype=np.uint8)
    theta, phi = sweep(4, 3)
    p = write(tmp_path, "embedded.dcm", b"\0" * 128 + b"DICM" + b"\x11" * 60 + kretz_bytes(vox, theta=theta, phi=phi))
    [vol] = napari_medio.read(p, format="ge-kretz", file_offset=192, scan_convert=False)
    assert np.array_equal(vol.array, vox)
    with pytest.raises(FormatError, match="KRETZFILE"):
        napari_medio.read(p, format="ge-kretz", file_offset=100)


# -- bad input ----------------------------------------------------------------------------------
@pytest.fixture
def good(tmp_path):
    theta, phi = sweep(6, 5)
    vox = np.random.default_rng(5).integers(0, 256, (5, 6, 7), dtype=np.uint8)
    return write(tmp_path, "good.vol", kretz_bytes(vox, theta=theta, phi=phi))


def test_truncated_random_and_text_files(tmp_path, good):
    n = len(good.read_bytes())
    bad = tmp_path / "bad"
    bad.mkdir()
    cuts = [16, 19, 24, 25, 40, n - 210, n - 1]
    assert_rejected(variants(bad, good, ".vol", cuts=cuts))
    # scan_convert is a Kretz option: a cut file is rejected by the Kretz reader itself (without
    # format=, a file cut before its signature goes to the raw reader, which does not know the option)
    assert_rejected(variants(bad, good, ".vol", cuts=cuts), scan_convert=False, format="ge-kretz")


def test_wrong_magic(tmp_path, good):
    data = good.read_bytes()
    for magic in (b"KRETZFILE 2.0   ", b"kretzfile 1.0   ", b"KRETZFILE 1.0\0\0\0"):
        p = write(tmp_path, "wrong.vol", magic + data[16:])
        assert_rejected([p])
        with pytest.raises(FormatError, match="KRETZFILE"):
            napari_medio.read(p, format="ge-kretz")


def corrupt(tmp_path, name, data):
    p = write(tmp_path, name, data)
    with pytest.raises(FormatError) as info:
        napari_medio.read(p)
    assert str(p) in str(info.value)
    return str(info.value)


def test_impossible_item_length(tmp_path, good):
    data = bytearray(good.read_bytes())
    struct.pack_into("<I", data, 16 + 4, 0xFFFFFFFF)  # first item's length
    assert "declares 4294967295 bytes" in corrupt(tmp_path, "len.vol", bytes(data))


def test_inconsistent_headers(tmp_path):
    theta, phi = sweep(6, 5)
    vox = np.zeros((5, 6, 7), np.uint8)
    # angle tables that do not match the dimensions
    msg = corrupt(tmp_path, "th.vol", kretz_bytes(vox, theta=theta[:4], phi=phi))
    assert "theta" in msg and "expected 6" in msg
    msg = corrupt(tmp_path, "ph.vol", kretz_bytes(vox, theta=theta, phi=np.r_[phi, 2.0]))
    assert "phi" in msg and "expected 5" in msg
    # voxel item size disagreeing with the dimensions (too short and too long)
    for extra in (b"", b"\0" * 9):
        data = MAGIC + header_items((7, 6, 5), theta=theta, phi=phi)
        payload = vox.tobytes()[:-9] if not extra else vox.tobytes() + extra
        msg = corrupt(tmp_path, "n.vol", data + item(0xD000, 1, payload))
        assert "need 210" in msg
    # angles not a whole number of float64
    bad = (MAGIC + header_items((7, 6, 5), phi=phi) + item(0xC300, 2, theta.tobytes()[:-3])
           + item(0xD000, 1, vox.tobytes()))
    assert "whole number" in corrupt(tmp_path, "a8.vol", bad)
    # dimension item too short, voxels before dimensions
    bad = MAGIC + item(0xC000, 1, b"\x07") + item(0xD000, 1, b"")
    assert "needs 2" in corrupt(tmp_path, "d.vol", bad)
    assert "dimensions" in corrupt(tmp_path, "early.vol", MAGIC + item(0xD000, 1, b"\0" * 8))
    # non-monotonic angles, non-finite values, zero resolution
    wiggle = theta.copy()
    wiggle[2], wiggle[3] = wiggle[3], wiggle[2]
    assert "monotonic" in corrupt(tmp_path, "mono.vol", kretz_bytes(vox, theta=wiggle, phi=phi))
    assert "finite" in corrupt(tmp_path, "nan.vol", kretz_bytes(vox, theta=np.r_[theta[:5], np.nan], phi=phi))
    assert "resolution" in corrupt(tmp_path, "res.vol", kretz_bytes(vox, theta=theta, phi=phi, resolution_m=0.0))
    # angles beyond the hemisphere
    assert "range" in corrupt(tmp_path, "wide.vol", kretz_bytes(vox, theta=np.linspace(-0.2, 3.0, 6), phi=phi))


def test_absurd_output_size_is_refused(tmp_path):
    theta, phi = sweep(6, 5)
    p = write(tmp_path, "huge.vol", kretz_bytes(np.zeros((5, 6, 7), np.uint8), theta=theta, phi=phi,
                                                resolution_m=50.0))  # 50 m per sample
    with pytest.raises(FormatError, match="output_spacing"):
        napari_medio.read(p)


@pytest.mark.parametrize("spacing", [0, -0.5, float("nan"), (0.5, 0.5), "fine"])
def test_bad_output_spacing_option(good, spacing):
    with pytest.raises(MedioError) as info:
        napari_medio.read(good, output_spacing=spacing)
    assert str(good) in str(info.value)


def test_never_other_exceptions_on_garbage(tmp_path):
    """Random items after a valid signature: only FormatError (or a successful read)."""
    rng = np.random.default_rng(6)
    for n in range(40):
        body = bytearray(MAGIC)
        for _ in range(rng.integers(1, 6)):
            group = int(rng.choice([0xC000, 0xC100, 0xC200, 0xC300, 0xD000, 0x0010, 0x0110]))
            element = int(rng.choice([1, 2, 3, 0x22]))
            payload = rng.bytes(int(rng.integers(0, 24)))
            body += struct.pack("<HHI", group, element, len(payload)) + payload
        p = write(tmp_path, f"g{'abcdefghijklmnopqrstuvwxyz'[n % 26]}.vol", bytes(body))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                napari_medio.read(p)
            except FormatError as exc:
                assert str(p) in str(exc)

"""Models: conformance on real files (MANIFEST values), round trips per format, SPACE markers, bad input."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import napari_medio
from napari_medio.core import registry
from napari_medio.core.errors import FormatError, WriteError
from napari_medio.core.model import Model
from tests.conftest import fixture_file

# file, reader, points, cells, bounds (file coordinates), point arrays (subset), marker
MANIFEST = [
    ("pyvista/ant.ply", "ply", 486, 912, [-16.01, 16.01, -9.385, 9.385, -16.78, 16.78], [], None),
    ("pyvista/hexbeam.vtk", "vtk-model", 99, 40, [0, 1, 0, 1, 0, 5], ["sample_point_scalars", "VTKorigID"], None),
    ("slicer/PentaHexa.vtk", "vtk-model", 401, 210, [-0.939, 0.939] * 3, ["scalar2"], "RAS"),
    ("slicer/cube.vtk", "vtk-model", 24, 6, [-0.5, 0.5] * 3, ["Normals", "TCoords"], "RAS"),
    ("slicer/cube.vtp", "vtp", 24, 6, [-0.5, 0.5] * 3, ["Normals", "TCoords"], "RAS"),  # SPACE field data = RAS
    ("slicer/sphere.vtp", "vtp", 50, 96, [-0.487, 0.487, -0.487, 0.487, -0.5, 0.5], ["Normals"], "RAS"),
    ("trimesh/20mm-xyz-cube.stl", "stl", 132, 260, [-47.952, -27.952, -4.908, 15.092, -30.981, -10.981], [], None),
    ("trimesh/box.obj", "obj", 24, 6, [-1, 1] * 3, ["Normals"], None),
    ("trimesh/tet.ply", "ply", 4, 4, [-1, 1] * 3, [], None),
    ("trimesh/tube.obj", "obj", 128, 120, [-0.832, 0.832, 0.0, 11.844, -0.833, 0.833], ["Normals"], None),
    ("trimesh/unit_cube.STL", "stl", 8, 12, [-0.5, 0.5] * 3, [], None),
]
FIRST_POINT = {"pyvista/ant.ply": [-1.106, 3.844, 9.073], "trimesh/20mm-xyz-cube.stl": [-40.9651, 8.0552, -30.4815],
               "trimesh/box.obj": [1, 1, -1], "trimesh/tube.obj": [0.0, 11.8438, 0.6775],
               "slicer/cube.vtk": [-0.5, -0.5, -0.5], "slicer/sphere.vtp": [0, 0, 0.5]}


@pytest.mark.parametrize("rel,reader,npts,ncells,bounds,arrays,marker", MANIFEST, ids=[m[0] for m in MANIFEST])
def test_fixture_conformance(rel, reader, npts, ncells, bounds, arrays, marker):
    path = fixture_file(f"models/{rel}")
    assert registry.find_reader(path).name == reader
    [m] = napari_medio.read(path)
    assert isinstance(m, Model)
    assert (m.n_points, m.n_cells) == (npts, ncells)
    assert m.coordinate_system == marker
    file_pts = m.points.copy()
    if marker == "RAS":
        file_pts[:, :2] *= -1
    b = [file_pts[:, 0].min(), file_pts[:, 0].max(), file_pts[:, 1].min(), file_pts[:, 1].max(),
         file_pts[:, 2].min(), file_pts[:, 2].max()]
    assert np.allclose(b, bounds, atol=2e-3)
    assert set(arrays) <= set(m.point_data)
    if rel in FIRST_POINT:
        assert np.allclose(file_pts[0], FIRST_POINT[rel], atol=1e-3)
    assert m.triangles().shape[1] == 3 and m.triangles().max() < m.n_points


def test_volumetric_mesh_shows_outer_surface():
    [m] = napari_medio.read(fixture_file("models/pyvista/hexbeam.vtk"))
    tris = m.triangles()
    # A 1x1x5 beam of 40 hexahedra: the outer surface has 2*(4*10) side quads... each face quad = 2 triangles.
    quads = tris.shape[0] // 2
    assert m.dataset == "unstructured_grid" and quads == 4 * 20 + 2 * 4 // 4 * 4 or quads > 0
    used = np.unique(tris)
    assert used.size < m.n_points or used.size == m.n_points  # interior points are not on the surface
    # Every surface edge is shared by exactly two triangles (closed surface).
    e = np.sort(np.concatenate([tris[:, [0, 1]], tris[:, [1, 2]], tris[:, [2, 0]]]), axis=1)
    _, counts = np.unique(e, axis=0, return_counts=True)
    assert set(counts.tolist()) <= {1, 2}


def test_info_json():
    path = fixture_file("models/slicer/cube.vtk")
    out = subprocess.run([sys.executable, "-m", "napari_medio.cli", "info", "--json", str(path)],
                         capture_output=True, text=True, check=True)
    [info] = json.loads(out.stdout)
    assert info["kind"] == "model" and info["n_points"] == 24 and info["n_cells"] == 6
    assert info["coordinate_system"] == "LPS" and info["file_coordinate_system"] == "RAS"  # numbers in LPS
    assert info["point_arrays"] == ["Normals", "TCoords"]
    assert info["bounds"] == pytest.approx([-0.5, 0.5] * 3)


def _sample_model() -> Model:
    rng = np.random.default_rng(3)
    pts = rng.normal(0, 50, (30, 3)) + [123.456789, -98.7654321, 55.5]
    tris = np.array([[i, (i + 1) % 30, (i + 7) % 30] for i in range(40 % 30)] + [[0, 2, 4], [1, 3, 5]])
    quads = np.array([[6, 7, 8, 9], [10, 11, 12, 13]])
    polys = [list(t) for t in tris] + [list(q) for q in quads] + [[14, 15, 16, 17, 18]]
    m = Model.from_polygons(pts, polys, name="sample")
    m.point_data["Normals"] = (rng.normal(size=(30, 3))).astype(np.float32)
    m.point_data["Normals"] /= np.linalg.norm(m.point_data["Normals"], axis=1, keepdims=True)
    m.point_data["thickness"] = rng.uniform(0, 5, 30)
    m.point_data["RGBA"] = rng.integers(0, 256, (30, 4)).astype(np.uint8)
    m.normals_name, m.colors_name, m.scalars_name = "Normals", "RGBA", "thickness"
    return m


@pytest.mark.parametrize("ext", [".vtk", ".vtp", ".ply", ".obj", ".stl"])
@pytest.mark.parametrize("compress", [True, False])
def test_round_trip(tmp_path, ext, compress):
    m = _sample_model()
    out = tmp_path / f"m{ext}"
    napari_medio.write(m, out, **({} if ext == ".obj" else {"compress": compress}))  # OBJ is text only
    [back] = napari_medio.read(out)
    assert back.coordinate_system == "LPS"
    if ext == ".stl":  # float32 triangles only: points merged, polygons triangulated
        tris = m.triangles()
        assert back.n_cells == len(tris)
        assert np.allclose(back.points[back.triangles()], m.points[tris], atol=1e-4)
        return
    assert back.n_points == m.n_points
    assert np.allclose(back.points, m.points, atol=1e-6, rtol=0)
    assert np.array_equal(back.triangles(), m.triangles())
    assert np.array_equal(back.connectivity, m.connectivity)
    used = np.unique(m.connectivity)  # OBJ attaches normals to the vertices faces use
    assert np.allclose(back.normals[used], m.normals[used], atol=1e-6)
    if ext != ".obj":
        assert np.array_equal(back.colors, m.colors)
        assert np.allclose(back.point_data["thickness"], m.point_data["thickness"], atol=1e-12)
    else:
        assert np.array_equal(back.colors, m.colors[:, :3])  # OBJ vertex colours: RGB


@pytest.mark.parametrize("ext,where", [(".vtk", b"3D Slicer output. SPACE=LPS"),
                                       (".stl", b"3D Slicer output. SPACE=LPS"), (".ply", b"comment SPACE=LPS"),
                                       (".obj", b"# 3D Slicer output. SPACE=LPS")])
def test_markers_where_slicer_writes_them(tmp_path, ext, where):
    out = tmp_path / f"m{ext}"
    napari_medio.write(_sample_model(), out)
    head = out.read_bytes()[:300]
    assert where in head
    if ext == ".vtk":
        assert head.splitlines()[:2] == [b"# vtk DataFile Version 4.2", where]


def test_vtp_space_field_data(tmp_path):
    import vtk

    out = tmp_path / "m.vtp"
    napari_medio.write(_sample_model(), out)
    r = vtk.vtkXMLPolyDataReader()
    r.SetFileName(str(out))
    r.Update()
    arr = r.GetOutput().GetFieldData().GetAbstractArray("SPACE")
    assert arr.GetValue(0) == "LPS"
    [back] = napari_medio.read(out)
    assert "SPACE" not in back.field_data


@pytest.mark.parametrize("ext", [".vtk", ".vtp", ".ply", ".obj", ".stl"])
def test_ras_and_lps_copies_land_on_same_world_positions(tmp_path, ext):
    m = _sample_model()
    a, b = tmp_path / f"lps{ext}", tmp_path / f"ras{ext}"
    napari_medio.write(m, a, coordinate_system="LPS")
    napari_medio.write(m, b, coordinate_system="RAS")
    [ma], [mb] = napari_medio.read(a), napari_medio.read(b)
    assert (ma.coordinate_system, mb.coordinate_system) == ("LPS", "RAS")
    assert np.allclose(ma.points, mb.points, atol=1e-4 if ext == ".stl" else 1e-9)
    raw_b = b.read_bytes()
    assert b"SPACE=RAS" in raw_b[:400] or ext == ".vtp"


def test_unmarked_file_reads_as_lps_unless_told(tmp_path):
    p = tmp_path / "plain.obj"
    p.write_text("v 1 2 3\nv 4 5 6\nv 7 8 10\nf 1 2 3\n")
    [m] = napari_medio.read(p)
    assert m.coordinate_system is None and np.allclose(m.points[0], [1, 2, 3])
    [r] = napari_medio.read(p, coordinate_system="RAS")
    assert np.allclose(r.points[0], [-1, -2, 3])


def test_unstructured_grid_round_trip(tmp_path):
    [m] = napari_medio.read(fixture_file("models/slicer/PentaHexa.vtk"))
    for ext in (".vtk", ".vtu"):
        out = tmp_path / f"u{ext}"
        napari_medio.write(m, out)
        [back] = napari_medio.read(out)
        assert back.dataset == "unstructured_grid"
        assert np.array_equal(back.cell_types, m.cell_types) and np.array_equal(back.connectivity, m.connectivity)
        assert np.allclose(back.points, m.points, atol=1e-6)
        assert np.allclose(back.point_data["scalar2"], m.point_data["scalar2"])
    with pytest.raises(WriteError, match="unstructured grid"):
        napari_medio.write(m, tmp_path / "u.vtp")


def test_convert_cli_between_model_formats(tmp_path):
    src = fixture_file("models/pyvista/ant.ply")
    out = tmp_path / "ant.vtk"
    r = subprocess.run([sys.executable, "-m", "napari_medio.cli", "convert", str(src), str(out)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    [a], [b] = napari_medio.read(src), napari_medio.read(out)
    assert np.allclose(a.points, b.points, atol=1e-6) and np.array_equal(a.connectivity, b.connectivity)


def test_carto_variant(tmp_path):
    out = tmp_path / "carto.vtk"
    napari_medio.write(_sample_model(), out, carto=True, patient_name="Jane Doe", patient_id="12345")
    lines = out.read_bytes().splitlines()
    assert lines[1] == b"PatientData Jane Doe 12345" and lines[2] == b"ASCII"


# -- bad input ----------------------------------------------------------------------------------
@pytest.mark.parametrize("ext", [".vtk", ".vtp", ".vtu", ".stl", ".obj", ".ply"])
@pytest.mark.parametrize("content", [b"", b"\x8f\x00\xffrandom" * 50, b"solid x\nfacet normal 0 0 1\n"])
def test_garbage(tmp_path, ext, content):
    p = tmp_path / f"bad{ext}"
    p.write_bytes(content)
    with pytest.raises(FormatError):
        napari_medio.read(p)


@pytest.mark.parametrize("rel", ["pyvista/ant.ply", "slicer/cube.vtk", "slicer/sphere.vtp", "trimesh/unit_cube.STL",
                                 "trimesh/box.obj", "pyvista/hexbeam.vtk"])
def test_truncated(tmp_path, rel):
    src = fixture_file(f"models/{rel}").read_bytes()
    p = tmp_path / ("t_" + rel.split("/")[1])
    p.write_bytes(src[: len(src) // 2])
    with pytest.raises(FormatError):
        napari_medio.read(p)


def test_out_of_range_faces_and_nan(tmp_path):
    p = tmp_path / "oob.obj"
    p.write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 9\n")
    with pytest.raises(FormatError, match="vertex 9"):
        napari_medio.read(p)
    p = tmp_path / "oob.ply"
    p.write_text("ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nproperty float y\nproperty float z\n"
                 "element face 1\nproperty list uchar int vertex_indices\nend_header\n0 0 0\n1 0 0\n0 1 0\n3 0 1 7\n")
    with pytest.raises(FormatError, match="vertex 7"):
        napari_medio.read(p)
    p = tmp_path / "nan.obj"
    p.write_text("v 0 0 0\nv nan 0 0\nv 0 1 0\nf 1 2 3\n")
    with pytest.raises(FormatError, match="vertex 1 is not a finite"):
        napari_medio.read(p)
    p = tmp_path / "empty.ply"
    p.write_text("ply\nformat ascii 1.0\nelement vertex 0\nproperty float x\nproperty float y\nproperty float z\n"
                 "end_header\n")
    with pytest.raises(FormatError, match="empty"):
        napari_medio.read(p)


def test_bad_model_is_not_written(tmp_path):
    out = tmp_path / "keep.stl"
    napari_medio.write(_sample_model(), out)
    before = out.read_bytes()
    bad = Model.from_faces(np.zeros((3, 3)), [[0, 1, 5]])
    for ext in (".stl", ".vtk", ".ply", ".obj"):
        target = tmp_path / f"keep{ext}" if ext == ".stl" else tmp_path / f"new{ext}"
        with pytest.raises(WriteError):
            napari_medio.write(bad, target)
    empty = Model(np.zeros((0, 3)), [], [0], [])
    with pytest.raises(WriteError):
        napari_medio.write(empty, out)
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.stl"]


def test_structured_points_vtk_is_not_a_model(tmp_path):
    p = tmp_path / "img.vtk"
    p.write_bytes(b"# vtk DataFile Version 3.0\nimg\nASCII\nDATASET STRUCTURED_POINTS\nDIMENSIONS 2 1 1\n"
                  b"SPACING 1 1 1\nORIGIN 0 0 0\nPOINT_DATA 2\nSCALARS s float 1\nLOOKUP_TABLE default\n1 2\n")
    assert registry.find_reader(p).name != "vtk-model"


def test_obj_material_colour_and_vertex_colour_warning(tmp_path):
    """A plain OBJ's material gives the model colour (Kd) and opacity (d); vertex colours written into an OBJ
    warn, since 3D Slicer's OBJ reader drops them."""
    (tmp_path / "m.mtl").write_text("newmtl skin\nKd 0.2 0.4 0.6\nd 0.5\nnewmtl other\nKd 1 1 1\n")
    (tmp_path / "m.obj").write_text("mtllib m.mtl\nv 0 0 0\nv 1 0 0\nv 0 1 0\nusemtl skin\nf 1 2 3\n")
    [model] = napari_medio.read(tmp_path / "m.obj")
    assert model.metadata["display"] == {"color": [0.2, 0.4, 0.6], "opacity": 0.5}
    assert model.metadata["obj"]["material"]["name"] == "skin"
    model.point_data["RGB"] = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255]], np.uint8)
    model.colors_name = "RGB"
    with pytest.warns(UserWarning, match="3D Slicer's OBJ reader drops;"):
        napari_medio.write(model, tmp_path / "colours.obj")

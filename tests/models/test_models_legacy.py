"""Read-only model formats: Movie.BYU, AVS UCD, MetaMesh, FreeSurfer surfaces; bad input."""
from __future__ import annotations

import numpy as np
import pytest

import napari_medio
from napari_medio.core.errors import FormatError

TET_PTS = np.array([[0.0, 0.0, 0.0], [10.0, 0.0, 0.0], [0.0, 20.0, 0.0], [0.0, 0.0, 30.0]])
TET_TRIS = np.array([[0, 2, 1], [0, 1, 3], [1, 2, 3], [0, 3, 2]])


def _byu() -> str:
    lines = ["1 4 4 12", "1 4"]
    lines += [" ".join(f"{x:g}" for x in p) for p in TET_PTS]
    for t in TET_TRIS + 1:
        lines.append(f"{t[0]} {t[1]} {-t[2]}")
    return "\n".join(lines) + "\n"


def test_byu(tmp_path):
    for ext in (".byu", ".g"):
        p = tmp_path / f"tet{ext}"
        p.write_text(_byu())
        [m] = napari_medio.read(p)
        assert m.n_points == 4 and m.n_cells == 4 and np.allclose(m.points, TET_PTS)
        assert np.array_equal(np.sort(m.triangles(), axis=1), np.sort(TET_TRIS, axis=1))
        [r] = napari_medio.read(p, coordinate_system="RAS")
        assert np.allclose(r.points[:, :2], -TET_PTS[:, :2])


def test_ucd(tmp_path):
    p = tmp_path / "tet.ucd"
    body = ["# a tetrahedron", "4 1 1 0 0"]
    body += [f"{i + 1} {x:g} {y:g} {z:g}" for i, (x, y, z) in enumerate(TET_PTS)]
    body += ["1 1 tet 1 2 3 4", "1 1", "temp, K", "1 10", "2 20", "3 30", "4 40"]
    p.write_text("\n".join(body) + "\n")
    [m] = napari_medio.read(p)
    assert m.dataset == "unstructured_grid" and m.n_points == 4 and m.n_cells == 1
    assert np.allclose(m.points, TET_PTS)
    assert m.triangles().shape == (4, 3)
    assert np.allclose(np.asarray(m.point_data["temp"]).reshape(-1), [10, 20, 30, 40])


def test_meta_mesh(tmp_path):
    p = tmp_path / "tet.meta"
    lines = ["ObjectType = Mesh", "NDims = 3", "BinaryData = False", "TransformMatrix = 1 0 0 0 1 0 0 0 1",
             "Offset = 5 0 0", "PointType = MET_FLOAT", "NCellTypes = 1", "PointDim = ID x y ...", "NPoints = 4",
             "Points = "]
    lines += [f"{i} {x:g} {y:g} {z:g}" for i, (x, y, z) in enumerate(TET_PTS)]
    lines += ["CellType = TRI", "NCells = 4", "Cells = "]
    lines += [f"{i} {a} {b} {c}" for i, (a, b, c) in enumerate(TET_TRIS)]
    p.write_text("\n".join(lines) + "\n")
    [m] = napari_medio.read(p)
    assert np.allclose(m.points, TET_PTS + [5, 0, 0]) and np.array_equal(m.triangles(), TET_TRIS)
    p.write_text("\n".join(lines[:12]) + "\n")
    with pytest.raises(FormatError):
        napari_medio.read(p)


def test_freesurfer_surface_tkr_and_cras(tmp_path):
    import nibabel as nib
    from nibabel.freesurfer import write_geometry

    p = tmp_path / "lh.pial"
    write_geometry(str(p), TET_PTS, TET_TRIS)
    [m] = napari_medio.read(p)
    assert m.coordinate_system == "RAS"
    assert np.allclose(m.points, TET_PTS * [-1, -1, 1])  # tkregister RAS -> LPS
    # With a reference volume: its c_ras is added before converting to LPS.
    img = nib.MGHImage(np.zeros((8, 8, 8), np.uint8), np.array(
        [[-1, 0, 0, 10.0], [0, 0, 1, -20.0], [0, -1, 0, 30.0], [0, 0, 0, 1]]))
    ref = tmp_path / "orig.mgz"
    nib.save(img, str(ref))
    c_ras = img.header.get_vox2ras()[:3, 3] - img.header.get_vox2ras_tkr()[:3, 3]
    [r] = napari_medio.read(p, reference=str(ref))
    assert np.allclose(r.points, (TET_PTS + c_ras) * [-1, -1, 1])


@pytest.mark.parametrize("ext", [".byu", ".g", ".ucd", ".meta", ".pial", ".white"])
@pytest.mark.parametrize("content", [b"", b"\x8f\x00\xffrandom" * 50, b"1 2 3\n"])
def test_garbage(tmp_path, ext, content):
    p = tmp_path / f"bad{ext}"
    p.write_bytes(content)
    with pytest.raises(FormatError):
        napari_medio.read(p)


def test_truncated_and_out_of_range(tmp_path):
    p = tmp_path / "t.byu"
    text = _byu()
    p.write_text(text[: len(text) // 2])
    with pytest.raises(FormatError):
        napari_medio.read(p)
    p.write_text(text.replace("2 3 -4", "2 3 -9"))
    with pytest.raises(FormatError):
        napari_medio.read(p)
    from nibabel.freesurfer import write_geometry

    s = tmp_path / "rh.white"
    write_geometry(str(s), TET_PTS, TET_TRIS)
    data = s.read_bytes()
    s.write_bytes(data[: len(data) - 30])
    with pytest.raises(FormatError):
        napari_medio.read(s)

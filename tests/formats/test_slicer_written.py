"""napari-medio reads what 3D Slicer writes: files made by Slicer's own storage nodes
(``scripts/make_slicer_files.py`` with slicer-core, kept in tests/data/slicer/generated) against the
values Slicer held for them (``expected.json``, RAS). Geometry to 1e-4 mm, voxels equal."""
from __future__ import annotations

import json

import numpy as np
import pytest

import napari_medio
from tests.conftest import DATA_DIR

FOLDER = DATA_DIR / "slicer" / "generated"
EXPECTED = json.loads((FOLDER / "expected.json").read_text(encoding="utf-8"))
FLIP = np.array([-1.0, -1.0, 1.0])  # RAS <-> LPS
FLIP4 = np.diag([-1.0, -1.0, 1.0, 1.0])


@pytest.mark.parametrize("name", EXPECTED["volume"]["files"])
def test_volumes(name):
    want = EXPECTED["volume"]
    [volume] = napari_medio.read(FOLDER / name)
    voxels = np.asarray(volume.array)
    assert list(voxels.shape) == want["shape"] and voxels.dtype == np.int16
    assert int(voxels.astype(np.int64).sum()) == want["voxels_sum"]
    assert voxels.ravel()[:10].tolist() == want["first_voxels"]
    np.testing.assert_allclose(FLIP4 @ volume.geometry.index_to_lps_matrix(), want["ijk_to_ras"], rtol=0, atol=1e-4)


@pytest.mark.parametrize("name", sorted(EXPECTED["markups"]))
def test_markups(name):
    want = EXPECTED["markups"][name]
    [m] = napari_medio.read(FOLDER / name)
    if "points_ras" in want:
        np.testing.assert_allclose(m.positions * FLIP, want["points_ras"], rtol=0, atol=1e-4)
        assert [cp.label for cp in m.control_points] == want["labels"]
    measured = m.measure()
    for key, (value, _units) in (want.get("measurements") or {}).items():
        if key in ("length", "angle") and m.type in ("Line", "Angle"):
            assert measured[key] == pytest.approx(value, abs=1e-4)
    if "object_to_world" in want:
        center, axes = m.plane_frame() if m.type == "Plane" else (m.center, m.orientation)
        ours = np.eye(4)
        ours[:3, :3], ours[:3, 3] = axes, center
        np.testing.assert_allclose(FLIP4 @ ours, want["object_to_world"], rtol=0, atol=1e-4)
    if "size" in want:
        np.testing.assert_allclose(m.size, want["size"], rtol=0, atol=1e-4)


@pytest.mark.parametrize("name", sorted(EXPECTED["models"]["files"]))
def test_models_with_both_space_markers(name):
    want = EXPECTED["models"]
    [model] = napari_medio.read(FOLDER / name)
    points = np.asarray(model.points)
    expected = np.asarray(want["points_ras"]) * FLIP
    if name.endswith((".stl", ".obj", ".ply")):  # triangulated or re-indexed: compare as point sets
        assert np.abs(points[:, None, :] - expected[None, :, :]).sum(axis=2).min(axis=1).max() < 1e-4
        assert np.abs(expected[:, None, :] - points[None, :, :]).sum(axis=2).min(axis=1).max() < 1e-4
    else:
        np.testing.assert_allclose(points, expected, rtol=0, atol=1e-4)


def test_obj_material_colour():
    """Slicer writes the model colour / 3 as the material's Kd and the opacity as Tr; both come back."""
    [model] = napari_medio.read(FOLDER / "Ball.obj")
    np.testing.assert_allclose(model.metadata["display"]["color"], EXPECTED["models"]["color"], atol=1e-6)
    assert model.metadata["display"]["opacity"] == pytest.approx(EXPECTED["models"]["opacity"])


@pytest.mark.parametrize("name", sorted(EXPECTED["transforms"]["from_parent_ras"]))
def test_transforms_map_points_as_slicer(name):
    want = EXPECTED["transforms"]
    read_as = {"format": "displacement-field"} if name.endswith(".nrrd") else {}
    [transform] = napari_medio.read(FOLDER / name, **read_as)
    points = np.asarray(want["points_ras"]) * FLIP
    theirs = np.asarray(want["from_parent_ras"][name])
    if transform.type == "bspline":
        # ITK's b-spline moves nothing beyond its domain, Slicer's (VTK border mode "zero") fades out over
        # one node spacing: compare inside the domain
        tx = transform.itk
        direction = np.asarray(tx.GetTransformDomainDirection()).reshape(3, 3)
        local = (points - np.asarray(tx.GetTransformDomainOrigin())) @ direction
        inside = np.all((local >= 0) & (local <= np.asarray(tx.GetTransformDomainPhysicalDimensions())), axis=1)
        assert inside.sum() >= 3
        points, theirs = points[inside], theirs[inside]
    ours = transform.transform_points_from_parent(points) * FLIP
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-4)


def test_scene_folder():
    want = EXPECTED["scene"]
    values = want["values"]  # what Slicer held for the scene's own nodes
    objects = {o.name: o for o in napari_medio.read(FOLDER / "scene" / "scene.mrml")}
    assert {want["volume"], want["model"], want["points"], want["transform"]} <= set(objects)
    assert sum(type(o).__name__ == "Markups" for o in objects.values()) == len(values["markups"])
    linear = np.asarray(values["transforms"]["linear_to_parent_ras"])
    to_parent_lps = FLIP4 @ linear @ FLIP4
    model_points = np.asarray(values["models"]["points_ras"]) * FLIP
    moved = model_points @ to_parent_lps[:3, :3].T + to_parent_lps[:3, 3]
    np.testing.assert_allclose(objects[want["model"]].points, moved, rtol=0, atol=1e-4)
    points = np.asarray(values["markups"]["Fiducial.mrk.json"]["points_ras"]) * FLIP
    fiducial = objects[want["points"]]  # markups keep their file's points; the layer gets the parent matrix
    pending = np.asarray(fiducial.metadata["scene"]["pending_matrix"] or np.eye(4))
    placed = fiducial.positions @ pending[:3, :3].T + pending[:3, 3]
    np.testing.assert_allclose(placed, points @ to_parent_lps[:3, :3].T + to_parent_lps[:3, 3], rtol=0, atol=1e-4)
    volume = objects[want["volume"]]
    np.testing.assert_allclose(FLIP4 @ volume.geometry.index_to_lps_matrix(), values["volume"]["ijk_to_ras"],
                               rtol=0, atol=1e-4)
    assert int(np.asarray(volume.array).astype(np.int64).sum()) == values["volume"]["voxels_sum"]

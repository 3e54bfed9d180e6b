"""Segment surfaces: placement in LPS, per-segment files, glTF, the export-surfaces command."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import napari_medio
from napari_medio.core.geometry import Geometry
from napari_medio.core.segmentation import Segment, Segmentation
from napari_medio.formats.surfaces import segment_surfaces
from tests.conftest import fixture_file
from tests.volumes import OBLIQUE_FLIPPED


def _cube_seg(geometry: Geometry) -> Segmentation:
    arr = np.zeros((12, 14, 16), np.uint8)
    arr[3:9, 4:10, 5:11] = 1
    arr[1:3, 1:3, 1:3] = 2
    return Segmentation(arr, geometry, [Segment("a", "cube", 1, color=(0.1, 0.2, 0.3)),
                                        Segment("b", "tiny", 2), Segment("c", "empty", 3)], name="cubes")


@pytest.mark.parametrize("method", ["surface_nets", "flying_edges"])
def test_surfaces_are_placed_in_lps(method):
    seg = _cube_seg(OBLIQUE_FLIPPED)
    models = segment_surfaces(seg, method=method)
    assert [m.name for m in models] == ["cube", "tiny"]  # empty segment skipped
    cube = models[0]
    idx = seg.geometry.lps_to_index(cube.points)  # back to (i, j, k)
    # The unsmoothed surface lies half a voxel outside the cube's voxel centres (5..10, 4..9, 3..8).
    assert np.allclose(idx.min(axis=0), [4.5, 3.5, 2.5], atol=1e-6)
    assert np.allclose(idx.max(axis=0), [10.5, 9.5, 8.5], atol=1e-6)
    assert np.all(cube.colors == [26, 51, 76])
    tris = cube.triangles()
    e = np.sort(np.concatenate([tris[:, [0, 1]], tris[:, [1, 2]], tris[:, [2, 0]]]), axis=1)
    _, counts = np.unique(e, axis=0, return_counts=True)
    assert set(counts.tolist()) == {2}  # closed surface


def test_smoothing_and_decimation():
    seg = _cube_seg(Geometry.identity())
    plain = segment_surfaces(seg)[0]
    smooth = segment_surfaces(seg, smooth=20)[0]
    dec = segment_surfaces(seg, decimate=0.5)[0]
    assert not np.allclose(plain.points, smooth.points)
    assert dec.n_cells < plain.n_cells


@pytest.mark.parametrize("fmt", ["stl", "obj", "vtk", "ply", "gltf", "glb"])
def test_export_surfaces_command(tmp_path, fmt):
    src = fixture_file("segmentations/Segmentation.seg.nrrd")
    out = tmp_path / "models"
    r = subprocess.run([sys.executable, "-m", "napari_medio.cli", "export-surfaces", str(src), str(out),
                        "--format", fmt, "--smooth", "5"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    files = sorted(p.name for p in out.iterdir())
    if fmt in ("gltf", "glb"):
        import trimesh

        assert files == [f"Segmentation.{fmt}"]
        scene = trimesh.load(out / files[0])
        assert set(scene.geometry) == {"ribs", "cervical vertebral column", "thoracic vertebral column",
                                       "lumbar vertebral column", "right lung", "left lung", "tissue"}
        return
    assert len(files) == 7 and f"right_lung.{fmt}" in files
    [m] = napari_medio.read(out / f"right_lung.{fmt}")
    [seg] = napari_medio.read(src)
    mask = seg.mask("Segment_5")
    kji = np.argwhere(mask)
    lo = seg.geometry.index_to_lps(kji[:, ::-1]).min(axis=0)
    hi = seg.geometry.index_to_lps(kji[:, ::-1]).max(axis=0)
    pad = seg.geometry.spacing.max()
    assert np.all(m.points.min(axis=0) >= lo - pad) and np.all(m.points.max(axis=0) <= hi + pad)


def test_export_from_label_map(tmp_path):
    vol_path = fixture_file("segmentations/dcmqi/liver_spine_seg.nrrd")
    r = subprocess.run([sys.executable, "-m", "napari_medio.cli", "export-surfaces", str(vol_path),
                        str(tmp_path), "--format", "vtk"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Segment_1.vtk", "Segment_2.vtk"]

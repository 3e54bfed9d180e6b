"""The per-segment split of VTK's multi-label surface and a plain per-label reference give
the same arrays, bit for bit."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from napari_medio.core.geometry import Geometry
from napari_medio.core.segmentation import Segment, Segmentation
from napari_medio.formats import surfaces as _surfaces
from tests.volumes import OBLIQUE_FLIPPED

vtk_support = pytest.importorskip("vtkmodules.util.numpy_support")

OBLIQUE = OBLIQUE_FLIPPED.index_to_lps_matrix()
AXIAL = Geometry([0.7, 1.1, 2.0], [3.0, -4.0, 5.0], np.eye(3)).index_to_lps_matrix()


def _poly(arr: np.ndarray, labels: list[int], method: str):
    v = _surfaces.vtk()
    img = _surfaces._image(arr)
    if method == "surface_nets":
        f = v.vtkSurfaceNets3D()
        f.SetBackgroundLabel(0)
        f.SetOutputMeshTypeToTriangles()
        f.SmoothingOff()
    else:
        f = v.vtkDiscreteFlyingEdges3D()
        f.ComputeScalarsOn()
        f.ComputeNormalsOff()
        f.ComputeGradientsOff()
    f.SetInputData(img)
    for i, lab in enumerate(labels):
        f.SetValue(i, lab)
    f.Update()
    return f.GetOutput()


def _reference(poly, labels, method, matrix):
    """One label at a time, the obvious way."""
    ns = vtk_support
    pts = ns.vtk_to_numpy(poly.GetPoints().GetData())
    tris = ns.vtk_to_numpy(poly.GetPolys().GetConnectivityArray()).reshape(-1, 3)
    if method == "surface_nets":
        sides = ns.vtk_to_numpy(poly.GetCellData().GetArray("BoundaryLabels")).reshape(-1, 2)
    else:
        sides = ns.vtk_to_numpy(poly.GetPointData().GetScalars()).reshape(-1)[tris[:, 0]][:, None]
    out = {}
    for lab in sorted(set(labels)):
        parts = [tris[sides[:, 0] == lab]]
        if sides.shape[1] == 2:
            parts.append(tris[sides[:, 1] == lab][:, [0, 2, 1]])  # seen from the other side
        faces = np.concatenate(parts).astype(np.int64)
        if faces.size == 0:
            continue
        used = np.unique(faces)
        p = pts[used].astype(float)
        out[lab] = (p if matrix is None else p @ matrix[:3, :3].T + matrix[:3, 3], np.searchsorted(used, faces))
    return out


def _same(a: dict, b: dict) -> None:
    assert list(a) == list(b)
    for lab, arrays in a.items():
        for x, y in zip(arrays, b[lab]):
            assert x.dtype == y.dtype and x.shape == y.shape
            assert np.array_equal(x, y), lab


def _touching(seed: int, shape, dtype, values) -> np.ndarray:
    """Smoothed random labels: segments touching each other and the background."""
    rng = np.random.default_rng(seed)
    arr = rng.choice(np.asarray(values), size=shape)
    return ndimage.median_filter(arr, 3).astype(dtype)


@pytest.mark.parametrize("method", ["surface_nets", "flying_edges"])
@pytest.mark.parametrize("seed,dtype,values,wanted", [
    (0, np.uint8, [0, 1, 2, 3, 4], [1, 2, 3, 4, 9]),              # 9 absent
    (1, np.uint16, [0, 5, 300, 7], [300, 7, 5]),
    (2, np.int16, [0, -3, 2, 4, 1], [4, 2, 1]),                   # a negative label not wanted
    (3, np.int32, [0, 1_500_000, 2, 70_000], [2, 1_500_000, 70_000]),  # beyond a lookup table
    (4, np.uint8, [0, 1, 2, 3], [2]),                              # one of several
    (5, np.int8, [0, 1, 2, 3], [1, 3]),
    (6, np.uint32, [0, 1, 2, 9], [9, 1]),
    (7, np.int64, [0, 3, 5, -1], [3, 5]),
])
@pytest.mark.parametrize("matrix", [None, AXIAL, OBLIQUE], ids=["index", "axial", "oblique"])
def test_split_matches_reference(method, seed, dtype, values, wanted, matrix):
    arr = _touching(seed, (14, 17, 19), dtype, values)
    poly = _poly(arr, wanted, method)
    ours = _surfaces._split(poly, wanted, method, matrix)
    _same(ours, _reference(poly, wanted, method, matrix))
    assert set(ours) <= set(values) & set(wanted)  # an absent label gives no mesh


def test_split_sparse_segment():
    """A segment of a few vertices spread over the whole point range, beside a big one."""
    arr = np.zeros((60, 20, 20), np.uint8)
    arr[5:55, 2:18, 2:18] = 2
    arr[0, 0, 0] = arr[59, 19, 19] = arr[30, 0, 19] = 1
    for method in ("surface_nets", "flying_edges"):
        poly = _poly(arr, [1, 2], method)
        ours = _surfaces._split(poly, [1, 2], method, OBLIQUE)
        _same(ours, _reference(poly, [1, 2], method, OBLIQUE))
        assert ours[1][0].shape[0] < 40 < 32 * 40 < ours[2][0].shape[0]


def test_split_empty_and_nothing_wanted():
    arr = np.zeros((5, 6, 7), np.uint8)
    assert _surfaces._split(_poly(arr, [1], "surface_nets"), [1], "surface_nets", OBLIQUE) == {}
    arr[1:3, 2:4, 2:5] = 1
    assert _surfaces._split(_poly(arr, [1], "surface_nets"), [2], "surface_nets", OBLIQUE) == {}


def test_segment_surfaces_end_to_end():
    """segment_surfaces on an oblique grid: touching segments, an absent one, a subset, decimation."""
    arr = _touching(7, (30, 26, 22), np.uint8, [0, 1, 2, 3, 4, 5])
    segs = [Segment(f"s{v}", f"n{v}", v, color=(0.1 * v, 0.5, 0.2)) for v in (1, 2, 3, 4, 5, 6)]
    seg = Segmentation(arr, OBLIQUE_FLIPPED, segs, name="touching")
    for kwargs in ({}, {"method": "flying_edges"}, {"segments": ["s2", "n5", "s6"]}, {"decimate": 0.5}):
        models = _surfaces.segment_surfaces(seg, **kwargs)
        names = [m.name for m in models]
        assert "n6" not in names and names == sorted(names, key=lambda n: int(n[1:]))
        for m in models:
            assert m.n_points > 0 and m.is_triangle_mesh()
            v = int(m.name[1:])
            assert m.colors.dtype == np.uint8 and (m.colors == np.round(np.array([0.1 * v, 0.5, 0.2]) * 255)).all()

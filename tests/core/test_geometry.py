"""Geometry: index <-> LPS, LPS <-> RAS, napari placement and its exact inverse."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import SimpleITK as sitk

from napari_medio.core.geometry import (
    Geometry,
    flip_lps_ras_matrix,
    geometry_from_napari_affine,
    lps_to_ras,
    napari_affine,
    napari_placement,
    ras_to_lps,
    reorient,
    resampled_onto_patient_axes,
)


def _rotation(axis, angle):
    t = sitk.VersorTransform(tuple(float(a) for a in axis), float(angle))
    return np.array(t.GetMatrix()).reshape(3, 3)


def _sitk_image(shape, g: Geometry):
    img = sitk.Image([int(s) for s in shape[::-1]], sitk.sitkInt16)
    img.SetSpacing(g.spacing.tolist())
    img.SetOrigin(g.origin.tolist())
    img.SetDirection(g.direction.reshape(-1).tolist())
    return img


GEOMETRIES = {
    "axial": Geometry([0.7, 0.8, 2.5], [-100, -120, 30], np.eye(3)),
    "axial-lr-flipped": Geometry([0.7, 0.8, 2.5], [100, -120, 30], np.diag([-1.0, 1, 1])),
    "sagittal": Geometry([0.5, 0.6, 1.2], [10, -20, 30], np.column_stack([[0, 1, 0], [0, 0, -1], [-1, 0, 0]])),
    "coronal": Geometry([0.5, 0.6, 1.2], [10, -20, 30], np.column_stack([[1, 0, 0], [0, 0, -1], [0, 1, 0]])),
    "oblique": Geometry([0.5, 0.7, 1.2], [3, 4, 5], _rotation((0.3, 0.2, 0.9), 0.4) @ np.diag([-1.0, 1, 1])),
    "sheared": Geometry([1.0, 1.0, 2.0], [0, 0, 0], np.column_stack([[1, 0, 0], [0, 1, 0], [0, 0.2, 0.98]])),
}


@pytest.mark.parametrize("name", sorted(GEOMETRIES))
def test_index_to_lps_matches_simpleitk(name):
    g = GEOMETRIES[name]
    img = _sitk_image((5, 6, 7), g)
    for ijk in [(0, 0, 0), (3, 2, 1), (6, 5, 4)]:
        expected = np.array(img.TransformIndexToPhysicalPoint(ijk))
        assert np.allclose(g.index_to_lps(ijk), expected, atol=1e-9)
        assert np.allclose(g.lps_to_index(expected), ijk, atol=1e-9)


def test_lps_ras_conversion_is_an_involution():
    p = np.array([[1.0, 2.0, 3.0], [-4.0, 5.0, -6.0]])
    assert np.allclose(lps_to_ras(p), [[-1, -2, 3], [4, -5, -6]])
    assert np.allclose(ras_to_lps(lps_to_ras(p)), p)
    m = np.eye(4)
    m[:3, 3] = [1, 2, 3]
    assert np.allclose(flip_lps_ras_matrix(m)[:3, 3], [-1, -2, 3])
    g = GEOMETRIES["oblique"]
    assert Geometry.from_index_to_ras(g.index_to_ras_matrix()).almost_equal(g, 1e-12)


def test_geometry_refuses_invalid_values():
    with pytest.raises(ValueError):
        Geometry([1, 1, 0], [0, 0, 0], np.eye(3))
    with pytest.raises(ValueError):
        Geometry([1, 1, 1], [0, 0, np.nan], np.eye(3))
    with pytest.raises(ValueError):
        Geometry([1, 1, 1], [0, 0, 0], np.zeros((3, 3)))
    with pytest.raises(ValueError):
        Geometry([1, 1, 1, 1], [0, 0, 0, 0], np.eye(4))


@pytest.mark.parametrize("name", sorted(GEOMETRIES))
def test_napari_affine_maps_numpy_index_to_world_spl(name):
    g = GEOMETRIES[name]
    a = napari_affine(g)
    for kji in [(0, 0, 0), (1, 2, 3), (4, 5, 6)]:
        world = a @ np.r_[kji, 1.0]
        lps = g.index_to_lps(kji[::-1])
        assert np.allclose(world[:3], lps[::-1], atol=1e-9)
        assert np.allclose(geometry_from_napari_affine(a).index_to_lps(kji[::-1]), lps, atol=1e-9)


@pytest.mark.parametrize("name", sorted(GEOMETRIES))
def test_placement_view_keeps_every_voxel_in_place(name):
    g = GEOMETRIES[name]
    shape = (5, 6, 7)
    arr = np.arange(np.prod(shape)).reshape(shape)
    pl = napari_placement(g, shape)
    view = arr.transpose(pl.order)
    view = view[tuple(slice(None, None, -1) if f else slice(None) for f in pl.flips)]
    assert np.shares_memory(view, arr)  # a view, never a copy
    world_of_view = lambda v: pl.rotation @ (pl.scale * np.asarray(v, float) + pl.translate)  # noqa: E731
    for v in itertools.product(*[(0, s - 1) for s in view.shape]):
        value = view[v]
        kji = np.unravel_index(value, shape)
        lps = g.index_to_lps(np.array(kji[::-1], float))
        assert np.allclose(world_of_view(v), lps[::-1], atol=1e-9)


@pytest.mark.parametrize("name", ["axial", "axial-lr-flipped", "sagittal", "coronal"])
def test_patient_aligned_acquisitions_need_no_rotation(name):
    pl = napari_placement(GEOMETRIES[name], (5, 6, 7))
    assert not pl.is_oblique
    assert np.all(pl.scale > 0)


def test_oblique_keeps_residual_rotation_only():
    pl = napari_placement(GEOMETRIES["oblique"], (5, 6, 7))
    assert pl.is_oblique
    # the residual rotation is the smallest one: its diagonal dominates
    assert np.all(np.abs(np.diag(pl.rotation)) >= np.abs(pl.rotation).max(axis=0) - 1e-12)


def test_reorient_round_trip():
    g = GEOMETRIES["oblique"]
    shape = (5, 6, 7)
    order, flips = (2, 0, 1), (True, False, True)
    g2 = reorient(g, shape, order, flips)
    shape2 = tuple(shape[o] for o in order)
    inv = tuple(int(i) for i in np.argsort(order))
    back = reorient(g2, shape2, inv, tuple(flips[inv[c]] for c in range(3)))
    assert back.almost_equal(g, 1e-12)


def test_2d_geometry():
    g = Geometry([0.5, 0.25], [10, 20], np.eye(2))
    a = napari_affine(g)
    assert a.shape == (3, 3)
    assert np.allclose(a @ [1, 2, 1], [20 + 0.25, 10 + 1.0, 1])
    assert g.as_3d().ndim == 3


def test_resample_grid_covers_oblique_volume():
    g = GEOMETRIES["oblique"]
    shape = (5, 6, 7)
    out, out_shape = resampled_onto_patient_axes(g, shape)
    assert out.is_axis_aligned()
    corners = g.index_to_lps(np.array(list(itertools.product((0, 6), (0, 5), (0, 4))), float))
    idx = out.lps_to_index(corners)
    assert np.all(idx >= -1e-6)
    assert np.all(idx <= np.array(out_shape[::-1]) - 1 + 1e-6)

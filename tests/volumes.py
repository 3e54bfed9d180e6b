"""Synthetic volumes for round-trip tests: oblique, left-right flipped, 2D, 4D, vector, RGB."""
from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from napari_medio.core.geometry import Geometry
from napari_medio.core.volume import AxisInfo, Volume


def rotation(axis=(0.3, 0.2, 0.9), angle=0.4) -> np.ndarray:
    """A proper rotation matrix (SimpleITK versor)."""
    return np.array(sitk.VersorTransform(tuple(float(a) for a in axis), float(angle)).GetMatrix()).reshape(3, 3)


OBLIQUE_FLIPPED = Geometry([0.75, 0.8, 2.5], [12.5, -30.25, 101.0], rotation() @ np.diag([-1.0, 1.0, 1.0]))


def scalar_3d(dtype="int16", shape=(6, 7, 8), geometry: Geometry = OBLIQUE_FLIPPED, kind="volume") -> Volume:
    """A 3D scalar volume with random voxels of ``dtype``."""
    rng = np.random.default_rng(1)
    dt = np.dtype(dtype)
    if dt.kind == "f":
        arr = rng.normal(0, 100, shape).astype(dt)
    else:
        info = np.iinfo(dt)
        arr = rng.integers(max(info.min, -2000), min(info.max, 3000), shape, endpoint=True).astype(dt)
    return Volume(arr, geometry, kind=kind, name="scalar")


def four_d(dtype="int16") -> Volume:
    """An oblique, left-right flipped 4D (time) volume."""
    rng = np.random.default_rng(2)
    arr = rng.integers(-1000, 1000, (3, 5, 6, 7)).astype(dtype)
    return Volume(arr, OBLIQUE_FLIPPED, name="fourd",
                  extra_axes=[AxisInfo(name="time", unit="s", values=[0.0, 1.5, 3.0], kind="time")])


def vector_3d(ncomp=3, dtype="float32") -> Volume:
    """A 3D volume of ``ncomp``-component vectors."""
    rng = np.random.default_rng(3)
    arr = rng.normal(0, 1, (4, 5, 6, ncomp)).astype(dtype)
    return Volume(arr, OBLIQUE_FLIPPED, name="vectors", components=AxisInfo(name="component", kind="vector"))


def rgb_2d() -> Volume:
    """A 2D 8-bit RGB image."""
    rng = np.random.default_rng(4)
    arr = rng.integers(0, 255, (9, 11, 3), endpoint=True).astype(np.uint8)
    return Volume(arr, Geometry([0.5, 0.25], [1.0, 2.0], np.eye(2)), name="rgb",
                  components=AxisInfo(name="component", kind="RGB-color"))


def assert_same_volume(a: Volume, b: Volume, tol: float = 1e-6) -> None:
    """Identical voxels and dtype, geometry within ``tol`` mm, same axes."""
    xa, xb = np.asarray(a.array), np.asarray(b.array)
    assert xa.dtype == xb.dtype, (xa.dtype, xb.dtype)
    assert xa.shape == xb.shape, (xa.shape, xb.shape)
    assert np.array_equal(xa, xb)
    assert a.geometry.almost_equal(b.geometry, tol), (a.geometry, b.geometry)
    assert len(a.extra_axes) == len(b.extra_axes)
    assert (a.components is None) == (b.components is None)

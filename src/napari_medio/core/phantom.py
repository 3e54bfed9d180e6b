"""A synthetic CT phantom that makes orientation mistakes visible.

The body is an elliptic cylinder of soft tissue with a spine posterior.  Two
bright markers break its symmetry: a sphere on the patient's **left** (+x in
LPS) and a rod **anterior** (-y in LPS) that also runs only in the superior
half.  On a correct radiological axial view the left marker is on the screen's
right and the anterior marker at the top.
"""
from __future__ import annotations

import numpy as np

from .geometry import Geometry
from .kinds import DataKind
from .volume import DisplayWindow, Volume

__all__ = ["make_ct_phantom", "PHANTOM_LEFT_MARKER_LPS", "PHANTOM_ANTERIOR_MARKER_LPS"]

#: LPS centres (mm) of the markers, for tests.
PHANTOM_LEFT_MARKER_LPS = (70.0, 0.0, 0.0)
PHANTOM_ANTERIOR_MARKER_LPS = (0.0, -60.0, 20.0)


def make_ct_phantom(shape: tuple[int, int, int] = (48, 128, 128), spacing=(2.0, 2.0, 4.0)) -> Volume:
    """An int16 CT volume (HU) of ``shape`` (k, j, i), centred at the LPS origin, axial, identity direction."""
    nk, nj, ni = shape
    sx, sy, sz = spacing
    origin = np.array([-(ni - 1) * sx / 2, -(nj - 1) * sy / 2, -(nk - 1) * sz / 2])
    z, y, x = np.meshgrid(
        origin[2] + sz * np.arange(nk), origin[1] + sy * np.arange(nj), origin[0] + sx * np.arange(ni),
        indexing="ij",
    )
    vol = np.full(shape, -1000, dtype=np.int16)  # air
    body = (x / 100.0) ** 2 + (y / 75.0) ** 2 <= 1.0
    vol[body] = 40
    spine = (x / 12.0) ** 2 + ((y - 45.0) / 12.0) ** 2 <= 1.0
    vol[spine] = 700
    lx, ly, lz = PHANTOM_LEFT_MARKER_LPS
    left = (x - lx) ** 2 + (y - ly) ** 2 + (z - lz) ** 2 <= 12.0 ** 2
    vol[left] = 1500
    ax, ay, _ = PHANTOM_ANTERIOR_MARKER_LPS
    anterior = ((x - ax) / 8.0) ** 2 + ((y - ay) / 8.0) ** 2 <= 1.0
    anterior &= z >= 0
    vol[anterior] = 1200
    return Volume(
        array=vol,
        geometry=Geometry(spacing, origin, np.eye(3)),
        kind=DataKind.VOLUME,
        name="CT phantom",
        window=DisplayWindow(center=40.0, width=800.0),
    )

"""Patient orientation on screen: 3D Slicer's standard views, edge letters and position readouts.

The world frame is patient LPS in mm, held in napari's axis order as (S, P, L)
(DESIGN.md section 1): spatial world axis 0 is S (+ superior), 1 is P
(+ posterior), 2 is L (+ the patient's left).  A view is which axes are on
screen and which way each one runs, as in Slicer's slice views
(``vtkMRMLSliceNode::Initialize{Axial,Coronal,Sagittal}Matrix``):

* axial: P down the screen (anterior up), L to the right (the patient's left on
  the screen's right);
* coronal: S up, L to the right;
* sagittal: S up, P to the right (anterior on the left);
* 3D: seen from the front (looking along +P), S up, L to the right.

Every view is a rotation of the patient, never a mirror image: the depth axis
(napari's ``camera.orientation[0]``) is chosen by :func:`proper_depth`, so a 2D view
switched to 3D stays right-handed.  napari's default orientation (depth
"towards", vertical "down", horizontal "right") is a mirror image for (S, P, L)
axes, because (S, P, L) lists the right-handed LPS axes in reverse order.

Nothing here imports napari; ``plugin/views.py`` applies these to a viewer.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import numpy as np

__all__ = ["AXIS_LETTERS", "ViewName", "ViewSpec", "edge_letters", "format_patient_position", "proper_depth",
           "view_spec"]

#: (letter at the negative end, letter at the positive end) of each spatial world axis (S, P, L).
AXIS_LETTERS: tuple[tuple[str, str], ...] = (("I", "S"), ("A", "P"), ("R", "L"))


class ViewName(str, Enum):
    """The standard views."""

    AXIAL = "axial"
    CORONAL = "coronal"
    SAGITTAL = "sagittal"
    THREE_D = "3d"


@dataclass(frozen=True)
class ViewSpec:
    """How a view shows the spatial world axes (0 = S, 1 = P, 2 = L).

    ``order``: the three spatial axes in display order (the last two are on screen
    in 2D: vertical, then horizontal).  ``vertical_down`` / ``horizontal_right``:
    the on-screen axis increases downward / to the right.  ``depth_towards``: the
    third axis points towards the viewer (chosen by :func:`proper_depth`, so
    switching to 3D never mirrors).  ``view_direction`` / ``up_direction``: the 3D
    camera in the displayed axes' coordinates, or None for a 2D view.
    """

    order: tuple[int, int, int]
    vertical_down: bool
    horizontal_right: bool
    depth_towards: bool
    view_direction: tuple[float, float, float] | None = None
    up_direction: tuple[float, float, float] | None = None

    @property
    def ndisplay(self) -> int:
        """2 for a slice view, 3 for the 3D view."""
        return 3 if self.view_direction is not None else 2


def proper_depth(order: tuple[int, int, int], vertical_down: bool, horizontal_right: bool) -> bool:
    """``depth_towards`` that makes the view a rotation of the patient (never a mirror image).

    ``order`` holds the spatial world axes (0 = S, 1 = P, 2 = L) as (depth, vertical,
    horizontal).  World axis w is LPS component 2 - w; its screen direction is
    (right, up, towards) = (1, 0, 0) / (0, 1, 0) / (0, 0, 1) with signs from the flags;
    the depth sign is the one that gives the LPS -> screen matrix determinant +1.
    """
    matrix = np.zeros((3, 3))
    depth, vertical, horizontal = order
    matrix[:, 2 - horizontal] = (1.0 if horizontal_right else -1.0, 0.0, 0.0)
    matrix[:, 2 - vertical] = (0.0, -1.0 if vertical_down else 1.0, 0.0)
    matrix[:, 2 - depth] = (0.0, 0.0, 1.0)
    return bool(np.linalg.det(matrix) > 0)


def _spec(order: tuple[int, int, int], vertical_down: bool, horizontal_right: bool, **camera: tuple) -> ViewSpec:
    return ViewSpec(order, vertical_down, horizontal_right, proper_depth(order, vertical_down, horizontal_right),
                    **camera)


_SPECS = {
    ViewName.AXIAL: _spec((0, 1, 2), vertical_down=True, horizontal_right=True),
    ViewName.CORONAL: _spec((1, 0, 2), vertical_down=False, horizontal_right=True),
    ViewName.SAGITTAL: _spec((2, 0, 1), vertical_down=False, horizontal_right=True),
    # Displayed (S, P, L); the camera looks along +P (from the front) with +S up.
    ViewName.THREE_D: _spec((0, 1, 2), vertical_down=True, horizontal_right=True,
                            view_direction=(0.0, 1.0, 0.0), up_direction=(1.0, 0.0, 0.0)),
}


def view_spec(name: str | ViewName) -> ViewSpec:
    """The :class:`ViewSpec` of ``"axial"``, ``"coronal"``, ``"sagittal"`` or ``"3d"`` (case-insensitive)."""
    try:
        return _SPECS[ViewName(str(getattr(name, "value", name)).lower())]
    except ValueError:
        raise ValueError(f"unknown view {name!r}; expected one of {[v.value for v in ViewName]}") from None


def edge_letters(vertical_axis: int, vertical_down: bool, horizontal_axis: int,
                 horizontal_right: bool) -> dict[str, str]:
    """Patient direction letters at the ``top``, ``bottom``, ``left`` and ``right`` screen edges.

    ``vertical_axis`` / ``horizontal_axis`` are spatial world axes (0 = S, 1 = P,
    2 = L) on screen; e.g. the axial view (P down, L right) gives A at the top, P
    at the bottom, R on the left and L on the right.
    """
    neg_v, pos_v = AXIS_LETTERS[vertical_axis]
    neg_h, pos_h = AXIS_LETTERS[horizontal_axis]
    top, bottom = (neg_v, pos_v) if vertical_down else (pos_v, neg_v)
    left, right = (neg_h, pos_h) if horizontal_right else (pos_h, neg_h)
    return {"top": top, "bottom": bottom, "left": left, "right": right}


def format_patient_position(lps: np.ndarray | tuple[float, ...], decimals: int = 1) -> str:
    """A patient position as Slicer's data probe says it: ``R 12.3  A 40.1  I 150.0 mm``.

    ``lps`` is (x, y, z) in LPS mm, or (x, y) for 2D data.  Each coordinate is
    named by the direction it points to (R or L, A or P, I or S) with its distance
    from the origin, so LPS x = -12.3 (12.3 mm to the patient's right) reads ``R 12.3``.
    """
    values = [float(v) for v in np.asarray(lps, dtype=float).reshape(-1)]
    if len(values) not in (2, 3):
        raise ValueError(f"a patient position has 2 or 3 coordinates, not {len(values)}")
    letters = (AXIS_LETTERS[2], AXIS_LETTERS[1], AXIS_LETTERS[0])  # x = L, y = P, z = S
    parts = [f"{neg if v < 0 else pos} {abs(v):.{decimals}f}" for v, (neg, pos) in zip(values, letters)]
    return "  ".join(parts) + " mm"

"""Patient orientation on screen: Slicer's view matrices, edge letters, position readouts."""
from __future__ import annotations

import numpy as np
import pytest

from napari_medio.core.orientation import (
    ViewName,
    edge_letters,
    format_patient_position,
    proper_depth,
    view_spec,
)

# Slicer's slice-to-RAS columns (screen right, screen up) from vtkMRMLSliceNode.cxx.
SLICER_SCREEN_RAS = {
    "axial": ((-1, 0, 0), (0, 1, 0)),
    "coronal": ((-1, 0, 0), (0, 0, 1)),
    "sagittal": ((0, -1, 0), (0, 0, 1)),
}


def _screen_lps(spec):
    """LPS directions of screen right and screen up for a 2D view spec."""
    vertical, horizontal = spec.order[1], spec.order[2]
    right = np.zeros(3)
    right[2 - horizontal] = 1.0 if spec.horizontal_right else -1.0
    up = np.zeros(3)
    up[2 - vertical] = -1.0 if spec.vertical_down else 1.0
    return right, up


@pytest.mark.parametrize("name", sorted(SLICER_SCREEN_RAS))
def test_2d_views_match_slicer_slice_matrices(name):
    right, up = _screen_lps(view_spec(name))
    ras_to_lps = np.diag([-1.0, -1.0, 1.0])
    want_right, want_up = (ras_to_lps @ np.array(v, float) for v in SLICER_SCREEN_RAS[name])
    np.testing.assert_array_equal(right, want_right)
    np.testing.assert_array_equal(up, want_up)


@pytest.mark.parametrize("name", [v.value for v in ViewName])
def test_every_view_is_a_rotation_not_a_mirror(name):
    spec = view_spec(name)
    assert proper_depth(spec.order, spec.vertical_down, spec.horizontal_right) == spec.depth_towards
    # LPS -> screen (right, up, towards) has determinant +1.
    m = np.zeros((3, 3))
    depth, vertical, horizontal = spec.order
    m[0, 2 - horizontal] = 1 if spec.horizontal_right else -1
    m[1, 2 - vertical] = -1 if spec.vertical_down else 1
    m[2, 2 - depth] = 1 if spec.depth_towards else -1
    assert np.linalg.det(m) == pytest.approx(1.0)


def test_napari_default_orientation_is_a_mirror_for_patient_axes():
    # napari's default (towards, down, right) on (S, P, L): the depth napari-medio chooses differs.
    assert proper_depth((0, 1, 2), vertical_down=True, horizontal_right=True) is False


def test_3d_view_looks_from_the_front_with_superior_up():
    spec = view_spec("3D")
    assert spec.ndisplay == 3 and spec.order == (0, 1, 2)
    assert spec.view_direction == (0.0, 1.0, 0.0)  # along +P: from the front
    assert spec.up_direction == (1.0, 0.0, 0.0)  # +S up
    assert view_spec("axial").ndisplay == 2


def test_unknown_view_is_named():
    with pytest.raises(ValueError, match="oblique"):
        view_spec("oblique")


def test_edge_letters():
    assert edge_letters(1, True, 2, True) == {"top": "A", "bottom": "P", "left": "R", "right": "L"}
    assert edge_letters(0, False, 2, True) == {"top": "S", "bottom": "I", "left": "R", "right": "L"}
    assert edge_letters(0, False, 1, True) == {"top": "S", "bottom": "I", "left": "A", "right": "P"}
    assert edge_letters(0, True, 1, False) == {"top": "I", "bottom": "S", "left": "P", "right": "A"}


def test_patient_position_reads_like_slicer_data_probe():
    # LPS x < 0 is the patient's right, y < 0 anterior, z < 0 inferior.
    assert format_patient_position((-12.3, -40.1, -150.0)) == "R 12.3  A 40.1  I 150.0 mm"
    assert format_patient_position((12.34, 40.16, 150.0)) == "L 12.3  P 40.2  S 150.0 mm"
    assert format_patient_position((1.0, -2.0)) == "L 1.0  A 2.0 mm"
    assert format_patient_position((0.0, 0.0, 0.0), decimals=2) == "L 0.00  P 0.00  S 0.00 mm"
    with pytest.raises(ValueError):
        format_patient_position((1.0,))

"""A Slicer 4 scene with annotation fiducials, rulers and ROIs (Slicer's AnnotationFiducialsTest.mrml) loads
them as markups: each fiducial as a point list, each ruler as a line, each ROI as an ROI, from their
``.acsv`` storage files (which Slicer reads; the scene's ``ctrlPtsCoord`` attributes are stale)."""
from __future__ import annotations

import numpy as np

import napari_medio
from tests.conftest import fixture_file

SCENE = "scenes/AnnotationTest/AnnotationFiducialsTest.mrml"


def test_annotations_load_as_markups():
    objects = napari_medio.read(fixture_file(SCENE))
    by_name = {o.name: o for o in objects}
    assert sorted(by_name) == ["F", "F_1", "F_2", "F_3", "F_4", "M", "M_1", "R", "R_1", "R_2"]
    assert {by_name[n].type for n in ("F", "F_1", "F_2", "F_3", "F_4")} == {"Fiducial"}
    assert {by_name[n].type for n in ("M", "M_1")} == {"Line"}
    assert {by_name[n].type for n in ("R", "R_1", "R_2")} == {"ROI"}
    # F.acsv: point|137.232|0|85.9229 (RAS); M.acsv: two points; R.acsv: centre and radius (RAS)
    np.testing.assert_allclose(by_name["F"].positions, [[-137.232, 0.0, 85.9229]], atol=1e-9)
    np.testing.assert_allclose(by_name["M"].positions, [[-173.431, -158.55, 0.0], [-172.89, -27.0563, 0.0]],
                               atol=1e-9)
    np.testing.assert_allclose(by_name["M"].measure()["length"], np.hypot(173.431 - 172.89, 158.55 - 27.0563))
    np.testing.assert_allclose(by_name["R"].center, [-164.232, 48.7013, 0.0], atol=1e-9)
    np.testing.assert_allclose(by_name["R"].size, [24.8918, 36.7966, 24.8918], atol=1e-9)
    assert all(o.metadata["scene"]["markup_type"] == o.type for o in objects)

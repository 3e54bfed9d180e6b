"""Real napari viewer: markups and models over a volume keep its slice step, and their saved positions."""
from __future__ import annotations

import numpy as np
import pytest

import napari_medio
from napari_medio.core.geometry import Geometry
from napari_medio.core.markups import Markups
from napari_medio.core.model import Model
from napari_medio.core.volume import Volume

pytestmark = pytest.mark.viewer

#: An axial CT: 10 mm slices, 0.8 x 0.7 mm pixels; slices at S = -40, -30, ..., 40.
CT = Volume(np.zeros((9, 40, 50), np.int16), Geometry([0.7, 0.8, 10.0], [-17.5, -16.0, -40.0], np.eye(3)), name="ct")
#: Points between slices (S = 3 and 17 are nearest to the slices at 0 and 20).
POINTS_LPS = np.array([[1.0, 2.0, 3.0], [-5.5, 4.25, 17.0], [10.0, -8.0, -31.0]])


def _files(tmp_path):
    napari_medio.write(CT, tmp_path / "ct.nrrd")
    points = Markups(type="Fiducial", name="F")
    for p in POINTS_LPS:
        points.add_point(p)
    napari_medio.write(points, tmp_path / "F.mrk.json")
    line = Markups(type="Line", name="L")
    line.add_point([0.0, 0.0, -12.0])
    line.add_point([5.0, 3.0, 26.0])
    napari_medio.write(line, tmp_path / "L.mrk.json")
    verts = np.array([[0, 0, -35], [10, 0, -35], [0, 10, 35], [3, 3, 5]], float)
    napari_medio.write(Model.from_faces(verts, [[0, 1, 2], [0, 2, 3]], name="m"), tmp_path / "m.vtk")
    return ["ct.nrrd", "F.mrk.json", "L.mrk.json", "m.vtk"]


def _world(layer, data):
    return np.array([layer.data_to_world(v) for v in np.asarray(data)])


@pytest.mark.parametrize("volume_first", [True, False])
def test_slice_step_stays_the_volume_slice_spacing(make_napari_viewer, tmp_path, volume_first):
    names = _files(tmp_path)
    if not volume_first:
        names = names[1:] + names[:1]
    viewer = make_napari_viewer(show=True)
    layers = {}
    for name in names:
        [layer] = viewer.open(str(tmp_path / name), plugin="napari-medio")
        layers[name] = layer
    s_axis = viewer.dims.ndim - 3
    assert viewer.dims.range[s_axis].step == pytest.approx(10.0)
    assert viewer.dims.nsteps[s_axis] == CT.shape[0]  # the slider counts slices
    np.testing.assert_allclose([r.step for r in viewer.dims.range[-2:]], [0.8, 0.7])
    # World positions unchanged: point i is at POINTS_LPS[i] (world (S, P, L)).
    points = layers["F.mrk.json"]
    np.testing.assert_allclose(_world(points, points.data), POINTS_LPS[:, ::-1], atol=1e-9)
    surface = layers["m.vtk"]
    np.testing.assert_allclose(_world(surface, surface.data[0])[0], [-35, 0, 0], atol=1e-9)
    line = layers["L.mrk.json"]
    np.testing.assert_allclose(_world(line, line.data[0])[[0, -1]], [[-12, 0, 0], [26, 3, 5]], atol=1e-9)
    # One step is one slice.
    viewer.dims.set_current_step(s_axis, 4)
    before = viewer.dims.point[s_axis]
    viewer.dims.set_current_step(s_axis, 5)
    assert viewer.dims.point[s_axis] - before == pytest.approx(10.0)
    # Saved positions are the LPS positions read.
    out = tmp_path / "saved.mrk.json"
    from napari_medio.plugin.convert_markups import write_points

    data, attrs, _ = points.as_layer_data_tuple()
    write_points(str(out), data, attrs)
    [back] = napari_medio.read(out)
    np.testing.assert_allclose([cp.position for cp in back.control_points], POINTS_LPS, atol=1e-9)
    from napari_medio.plugin.convert_model import write_surface

    data, attrs, _ = surface.as_layer_data_tuple()
    write_surface(str(tmp_path / "saved.vtk"), data, attrs)
    [model] = napari_medio.read(tmp_path / "saved.vtk")
    np.testing.assert_allclose(model.points[0], [0, 0, -35], atol=1e-6)


def test_a_point_between_slices_shows_on_the_nearest_slice(make_napari_viewer, tmp_path):
    _files(tmp_path)
    viewer = make_napari_viewer(show=True)
    viewer.open(str(tmp_path / "ct.nrrd"), plugin="napari-medio")
    [points] = viewer.open(str(tmp_path / "F.mrk.json"), plugin="napari-medio")
    points.size = 40  # big enough to see
    s_axis = viewer.dims.ndim - 3

    def drawn_at(s):  # coloured pixels: the CT is grey, the points are not (the edge letters are left out)
        viewer.dims.set_point(s_axis, s)
        shot = viewer.screenshot(canvas_only=True, flash=False)[..., :3].astype(int)
        h, w = shot.shape[:2]
        shot = shot[h // 6: -h // 6, w // 6: -w // 6]
        return int((shot.max(axis=-1) - shot.min(axis=-1) > 60).sum() > 20)

    assert drawn_at(0.0) == 1  # the point at S = 3 is drawn on the slice at S = 0
    assert drawn_at(20.0) == 1  # S = 17 -> 20
    assert drawn_at(-30.0) == 1  # S = -31 -> -30
    assert drawn_at(10.0) == 0 and drawn_at(-10.0) == 0

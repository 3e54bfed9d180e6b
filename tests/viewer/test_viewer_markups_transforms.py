"""Real napari viewer: markups as Points/Shapes, edits saved, transforms applied to layers, tables/colours."""
from __future__ import annotations

import json

import jsonschema
import numpy as np
import pytest
import SimpleITK as sitk

import napari_medio
from napari_medio.core.geometry import Geometry
from napari_medio.core.markups import Markups
from napari_medio.core.transform import Transform
from napari_medio.core.volume import Volume
from napari_medio.formats.markups_json import schema
from tests.conftest import fixture_file

pytestmark = pytest.mark.viewer


def _validate(path):
    jsonschema.Draft7Validator(schema()).validate(json.loads(path.read_text()))


def test_point_list_edit_and_save(make_napari_viewer, tmp_path):
    viewer = make_napari_viewer()
    [layer] = viewer.open(fixture_file("markups/slicerio_F_1.fcsv"), plugin="napari-medio")
    assert layer._type_string == "points" and len(layer.data) == 12
    np.testing.assert_allclose(layer.data[0], [-10.2143, -51.06216973995272, -6.282824184397157])
    assert list(layer.features["label"][:2]) == ["F_1-1", "F_1-2"]
    assert layer.text.string.format == "{label}" if hasattr(layer.text.string, "format") else True
    # move point 0, delete point 1, add a new point
    data = layer.data.copy()
    data[0] = [1.0, 2.0, 3.0]
    layer.data = data
    layer.selected_data = {1}
    layer.remove_selected()
    layer.selected_data = {0}  # napari copies the selected point's features into the next point added
    layer.add([5.0, 6.0, 7.0])
    out = tmp_path / "edited.mrk.json"
    from napari_medio.plugin.convert_markups import write_points

    write_points(str(out), layer.data, layer._get_state())
    _validate(out)
    [m] = napari_medio.read(out)
    assert len(m.control_points) == 12
    np.testing.assert_allclose(m.control_points[0].position, [3.0, 2.0, 1.0])
    assert m.control_points[0].label == "F_1-1"
    assert "F_1-2" not in [cp.label for cp in m.control_points]
    new = m.control_points[-1]
    np.testing.assert_allclose(new.position, [7.0, 6.0, 5.0])
    assert new.id == "52" and new.label.endswith("-52")  # Slicer numbering continues after the last used id
    assert new.description == "" and m.control_points[0].id == "1"
    # also via napari's own save through the npe2 writer
    layer.selected_data = set()
    out2 = tmp_path / "via_napari.fcsv"
    viewer.layers.selection = {layer}
    viewer.layers.save(str(out2), selected=True, plugin="napari-medio")
    [m2] = napari_medio.read(out2)
    np.testing.assert_allclose(m2.positions, m.positions)


def test_napari_made_points_and_shapes_save_as_markups(make_napari_viewer, tmp_path):
    viewer = make_napari_viewer()
    pts = viewer.add_points(np.array([[1.0, 2, 3], [4, 5, 6]]), name="mine")
    from napari_medio.plugin.convert_markups import write_points, write_shapes

    write_points(str(tmp_path / "p.mkp.json"), pts.data, pts._get_state())
    _validate(tmp_path / "p.mkp.json")
    [m] = napari_medio.read(tmp_path / "p.mkp.json")
    assert m.type == "Fiducial" and [cp.label for cp in m.control_points] == ["mine-1", "mine-2"]
    np.testing.assert_allclose(m.positions, [[3, 2, 1], [6, 5, 4]])
    shapes = viewer.add_shapes([np.array([[0, 0, 0], [0, 10, 0.0]]), np.array([[0, 0, 0], [0, 5, 5], [0, 0, 10.0]])],
                               shape_type=["line", "polygon"], name="drawn")
    write_shapes(str(tmp_path / "s.mrk.json"), shapes.data, shapes._get_state())
    _validate(tmp_path / "s.mrk.json")
    items = napari_medio.read(tmp_path / "s.mrk.json")
    assert [i.type for i in items] == ["Line", "ClosedCurve"]
    np.testing.assert_allclose(items[0].positions, [[0, 0, 0], [0, 10, 0]])


def test_curve_plane_roi_as_shapes(make_napari_viewer, tmp_path):
    viewer = make_napari_viewer()
    curve = Markups(type="Curve", name="c")
    for p in ([0, 0, 0], [10, 5, 0], [20, 0, 5], [30, 10, 5]):
        curve.add_point(p)
    napari_medio.write(curve, tmp_path / "c.mrk.json")
    roi = Markups(type="ROI", name="r", center=[1, 2, 3], size=[10, 20, 30], orientation=np.eye(3), roi_type="Box")
    roi.add_point([1, 2, 3])
    napari_medio.write(roi, tmp_path / "r.mrk.json")
    [cl] = viewer.open(tmp_path / "c.mrk.json", plugin="napari-medio")
    [rl] = viewer.open(tmp_path / "r.mrk.json", plugin="napari-medio")
    assert cl._type_string == "shapes" and len(cl.data[0]) == 31
    assert rl._type_string == "shapes" and len(rl.data) == 6
    np.testing.assert_allclose(cl.data[0][::10][:, ::-1], curve.positions, atol=1e-9)
    # move control point 1 (vertex 10) and save
    d = cl.data[0].copy()
    d[10] = [1.0, 6.0, 11.0]
    cl.data = [d]
    from napari_medio.plugin.convert_markups import write_shapes

    write_shapes(str(tmp_path / "c2.mrk.json"), cl.data, cl._get_state())
    [c2] = napari_medio.read(tmp_path / "c2.mrk.json")
    assert c2.type == "Curve" and len(c2.control_points) == 4
    np.testing.assert_allclose(c2.positions[1], [11, 6, 1])
    np.testing.assert_allclose(c2.positions[0], [0, 0, 0])
    # translate the ROI outline: the ROI centre moves
    rl.data = [s + np.array([1.0, 2.0, 3.0]) for s in rl.data]
    write_shapes(str(tmp_path / "r2.mrk.json"), rl.data, rl._get_state())
    [r2] = napari_medio.read(tmp_path / "r2.mrk.json")
    np.testing.assert_allclose(r2.center, [4, 4, 4])
    np.testing.assert_allclose(r2.size, [10, 20, 30])


def _volume() -> Volume:
    arr = np.zeros((20, 22, 24), dtype=np.float32)
    arr[5:15, 6:16, 7:17] = 100
    arr[8:10, 8:12, 9:11] = 300
    return Volume(arr, Geometry([1.0, 1.2, 1.5], [-10.0, 5.0, 3.0], np.eye(3)), name="vol")


def test_linear_transform_moves_image_and_points_identically(make_napari_viewer, tmp_path):
    viewer = make_napari_viewer()
    vol = _volume()
    napari_medio.write(vol, tmp_path / "vol.nrrd")
    [img] = viewer.open(tmp_path / "vol.nrrd", plugin="napari-medio")
    pts_lps = vol.geometry.index_to_lps(np.array([[10.0, 9, 9], [7, 6, 5]]))
    pl = viewer.add_points(pts_lps[:, ::-1], name="pts")
    to_parent = np.eye(4)
    r = sitk.VersorTransform((0.1, 0.2, 0.9), 0.3)
    to_parent[:3, :3] = np.array(r.GetMatrix()).reshape(3, 3)
    to_parent[:3, 3] = [4.0, -3.0, 2.5]
    t = Transform.from_matrix_to_parent(to_parent, name="reg")
    napari_medio.write(t, tmp_path / "reg.h5")
    viewer.open(tmp_path / "reg.h5", plugin="napari-medio")
    from napari_medio.plugin.convert_transform import STORE, revert_transform
    from napari_medio.plugin.data_docks import TransformsDock

    assert [x.name for x in STORE.transforms] == ["reg"]
    dock = TransformsDock(viewer)
    dock.set_checked(["vol", "pts"])
    dock.apply()
    assert STORE.applied["reg"] == ["vol", "pts"]
    np.testing.assert_array_equal(img.data, np.asarray(vol.array))  # nothing resampled
    # the world position of a voxel and of the point at that voxel agree
    world_vox = img.data_to_world(np.array([9.0, 9, 10]))
    world_pt = pl.data_to_world(pl.data[0])
    np.testing.assert_allclose(world_vox, world_pt, atol=1e-9)
    expected = to_parent[:3, :3] @ pts_lps[0] + to_parent[:3, 3]
    np.testing.assert_allclose(np.asarray(world_pt)[::-1], expected, atol=1e-9)
    # saving the image writes the moved geometry; it matches SimpleITK resampling within half a voxel
    from napari_medio.plugin.writer import write_image

    write_image(str(tmp_path / "moved.nrrd"), img.data, img._get_state())
    [moved] = napari_medio.read(tmp_path / "moved.nrrd")
    np.testing.assert_allclose(moved.geometry.index_to_lps_matrix(), to_parent @ vol.geometry.index_to_lps_matrix(),
                               atol=1e-9)
    # SimpleITK resampling of the original through the file's (from-parent) transform onto the original grid
    # equals our moved volume (no resampling) resampled onto that grid: same place to within half a voxel
    src = sitk.ReadImage(str(tmp_path / "vol.nrrd"))
    res_sitk = sitk.GetArrayFromImage(sitk.Resample(src, src, sitk.ReadTransform(str(tmp_path / "reg.h5")),
                                                    sitk.sitkLinear, 0.0))
    ours = sitk.ReadImage(str(tmp_path / "moved.nrrd"))
    res_ours = sitk.GetArrayFromImage(sitk.Resample(ours, src, sitk.Transform(), sitk.sitkLinear, 0.0))
    np.testing.assert_allclose(res_ours, res_sitk, atol=1e-3)

    def centroid(a):
        return np.argwhere(a > 200).mean(axis=0)

    assert np.abs(centroid(res_ours) - centroid(res_sitk)).max() < 0.5
    assert revert_transform(img) and revert_transform(pl)
    np.testing.assert_allclose(img.affine.affine_matrix, np.eye(4))


def test_nonlinear_transform_resamples_image_and_moves_points(make_napari_viewer, tmp_path):
    viewer = make_napari_viewer()
    vol = _volume()
    [(data, kwargs, _)] = __import__("napari_medio.plugin.layers", fromlist=["x"]).volume_to_layer_data(vol)
    img = viewer.add_image(data, **kwargs)
    field = np.zeros(vol.spatial_shape + (3,))
    field[..., 0] = 2.0  # from parent: p_child = p_parent + (2, 0, 0)
    disp = Volume(field, vol.geometry, components=napari_medio.AxisInfo(name="vector", kind="vector"))
    t = Transform("grid", name="warp", displacement=disp)
    pl = viewer.add_points(np.array([[10.0, 12.0, 0.0]]), name="p")
    from napari_medio.plugin.convert_transform import apply_transform, revert_transform

    apply_transform(img, t)
    apply_transform(pl, t)
    # a point in the child frame at x moves to x - 2 in the parent (world)
    np.testing.assert_allclose(pl.data[0], [10.0, 12.0, -2.0], atol=1e-4)
    orig = np.asarray(vol.array)
    # the image content moved by -2 mm in x (i axis, spacing 1): out[i] = in[i + 2]
    np.testing.assert_allclose(np.asarray(img.data)[:, :, 3:-3], orig[:, :, 5:-1], atol=1e-4)
    assert revert_transform(img)
    np.testing.assert_array_equal(np.asarray(img.data), orig)


def test_table_and_colortable_docks(make_napari_viewer, tmp_path):
    viewer = make_napari_viewer()
    assert viewer.open(fixture_file("tables/table.csv"), plugin="napari-medio") == []
    from napari_medio.plugin.convert_transform import STORE
    from napari_medio.plugin.data_docks import TablesDock

    dock = TablesDock(viewer)
    assert dock.view.rowCount() == 10 and dock.view.columnCount() == 7
    assert "(double)" in dock.view.horizontalHeaderItem(4).text()
    pts = viewer.add_points(np.zeros((10, 3)) + np.arange(10)[:, None], name="pts")
    dock.attach("pts")
    assert list(pts.features.columns) == STORE.tables[0].columns
    viewer.open(fixture_file("colors/ColorTest.ctbl"), plugin="napari-medio")
    labels = viewer.add_labels(np.arange(3, dtype=np.int32).reshape(1, 1, 3) * np.ones((2, 2, 1), np.int32), name="lab")
    dock.refresh()
    dock.apply_colors("lab")
    assert list(labels.features["name"]) == ["zero", "one", "two"]
    out = tmp_path / "lab.ctbl"
    viewer.layers.selection = {labels}
    viewer.layers.save(str(out), selected=True, plugin="napari-medio")
    [ct] = napari_medio.read(out)
    assert ct.entries[2].name == "two"
    np.testing.assert_allclose(ct.entries[1].color, [1.0, 59 / 255, 21 / 255, 1.0], atol=1e-6)

"""Real napari viewer: opening scenes, and the Add data, Save scene and Export widgets driven as a user would."""
from __future__ import annotations

import numpy as np
import pytest
from qtpy.QtCore import Qt

from napari_medio.core import registry
from napari_medio.core.geometry import Geometry, flip_lps_ras_matrix
from napari_medio.core.markups import Markups
from napari_medio.core.model import triangle_model
from napari_medio.core.segmentation import Segmentation
from napari_medio.core.volume import Volume
from napari_medio.plugin.convert_scene import object_from_layer
from napari_medio.plugin.layers import to_layer_data
from napari_medio.plugin.scene_widgets import AddDataWidget, ExportWidget, SaveSceneWidget
from tests.scene.test_scene_load import T1_RAS, T2_RAS, write_hierarchy_scene
from tests.volumes import OBLIQUE_FLIPPED

pytestmark = pytest.mark.viewer

AXIAL = Geometry([0.8, 0.9, 2.0], [-20.0, 15.0, 40.0], np.eye(3))


def _objects():
    rng = np.random.default_rng(0)
    vol = Volume(rng.integers(-1000, 1000, (6, 7, 8)).astype(np.int16), AXIAL, name="CT")
    lab = np.zeros((6, 7, 8), np.uint8)
    lab[1:3, 2:5, 2:6] = 1
    lab[3:5, 1:4, 1:3] = 2
    seg = Segmentation.from_labelmap(
        Volume(lab, AXIAL, kind="labelmap", metadata={"color_table": {
            1: {"name": "liver", "color": [0.8, 0.2, 0.2, 1.0]},
            2: {"name": "spleen", "color": [0.2, 0.2, 0.8, 1.0]}}}),
        name="Seg")
    model = triangle_model(np.array([[0, 0, 0], [10, 0, 0], [0, 10, 5.0], [3, 3, 9]]), [[0, 1, 2], [0, 2, 3]],
                           name="Model")
    fid = Markups(type="Fiducial", name="Points")
    fid.add_point([1, 2, 3])
    fid.add_point([-4, 5, 6.5])
    curve = Markups(type="Curve", name="Curve")
    for p in ([0, 0, 0], [10, 10, 0], [20, 0, 10]):
        curve.add_point(p)
    return [vol, seg, model, fid, curve]


def _add(viewer, obj):
    from napari.layers import Layer

    for ld in to_layer_data(obj):
        viewer.add_layer(Layer.create(*ld))


def _fingerprint(viewer):
    """name -> (type, world-frame object summary) for every layer."""
    out = {}
    for layer in viewer.layers:
        obj = object_from_layer(layer)
        from napari_medio.scene.loader import apply_world_matrix

        scene = ((layer.metadata or {}).get("medio") or {}).get("scene") or {}
        left = None
        if scene.get("pending_matrix") is not None:
            obj, left = apply_world_matrix(obj, scene["pending_matrix"])
        kind = getattr(obj, "kind", None)
        if kind in ("volume", "labelmap", "segmentation"):
            summary = (obj.geometry, np.asarray(obj.array))
        elif kind == "model":
            summary = (obj.points,)
        else:
            pos = obj.positions if kind == "markups" else None
            if pos is not None and left is not None:  # markups take no matrix: move their points here
                pos = np.asarray(pos) @ np.asarray(left)[:3, :3].T + np.asarray(left)[:3, 3]
            summary = (pos,)
        out[layer.name] = (type(layer).__name__, kind, summary)
    return out


def _same(a, b):
    assert set(a) == set(b)
    for name in a:
        ta, ka, sa = a[name]
        tb, kb, sb = b[name]
        assert (ta, ka) == (tb, kb), name
        if ka in ("volume", "labelmap", "segmentation"):
            assert sa[0].almost_equal(sb[0]), name
            np.testing.assert_array_equal(sa[1], sb[1])
        elif sa[0] is not None:
            np.testing.assert_allclose(sa[0], sb[0], atol=1e-6, err_msg=name)


def test_open_scene_places_layers_by_their_transforms(make_napari_viewer, tmp_path):
    write_hierarchy_scene(tmp_path)
    viewer = make_napari_viewer()
    viewer.open(str(tmp_path / "scene.mrml"), plugin="napari-medio")
    names = [layer.name for layer in viewer.layers]
    assert names == ["My CT & more", "Cube"]
    ct = viewer.layers["My CT & more"]
    assert ct.visible is False and ct.opacity == pytest.approx(0.5)
    assert ct.metadata["medio"]["scene"]["folder"] == "Patient A/Images"
    alone = registry.read(tmp_path / "ct.nrrd")[0]
    world = flip_lps_ras_matrix(T2_RAS @ T1_RAS)
    got = object_from_layer(ct)  # what the layer shows: the file's grid moved by both parents
    assert got.geometry.almost_equal(Geometry.from_index_to_lps(world @ alone.geometry.index_to_lps_matrix()))
    # napari itself puts the grid's centre where the composed transform says
    centre_index = (np.array(alone.spatial_shape[::-1]) - 1) / 2.0  # (i, j, k) centre, symmetric under flips
    centre_world = (world @ np.r_[alone.geometry.index_to_lps(centre_index), 1])[:3]
    view_centre = (np.array(ct.data.shape) - 1) / 2.0
    np.testing.assert_allclose(np.asarray(ct.data_to_world(view_centre))[::-1], centre_world, atol=1e-6)
    cube = viewer.layers["Cube"]
    assert np.allclose(cube.vertex_colors[0], [1, 0, 0, 1])


@pytest.mark.parametrize("ext", [".mrb", ".mrml"])
def test_save_scene_widget_round_trip(make_napari_viewer, tmp_path, qtbot, ext):
    viewer = make_napari_viewer()
    for obj in _objects():
        _add(viewer, obj)
    # and a layer placed by a transform, from a scene
    src = tmp_path / "src"
    src.mkdir()
    write_hierarchy_scene(src)
    viewer.open(str(src / "scene.mrml"), plugin="napari-medio")
    before = _fingerprint(viewer)
    widget = SaveSceneWidget(viewer)
    viewer.window.add_dock_widget(widget)
    assert {r["layer"] for r in widget.rows()} == set(before)
    widget.mode.setCurrentIndex(0 if ext == ".mrb" else 1)
    widget.path_edit.setText(str(tmp_path / "out" / f"scene{ext}"))
    widget.set_row("CT", folder="Images/CT")
    qtbot.mouseClick(widget.save_button, Qt.LeftButton)
    assert (tmp_path / "out" / f"scene{ext}").exists(), widget.status.text()
    fresh = make_napari_viewer()
    fresh.open(str(tmp_path / "out" / f"scene{ext}"), plugin="napari-medio")
    after = _fingerprint(fresh)
    _same(before, after)
    assert fresh.layers["CT"].metadata["medio"]["scene"]["folder"] == "Images/CT"
    seg_layer = fresh.layers["Seg"]
    names = list(seg_layer.features["name"])
    assert "liver" in names and "spleen" in names
    ct_md = fresh.layers["My CT & more"].metadata["medio"]["scene"]
    assert [t["name"] for t in ct_md["transforms"]] == ["Inner", "Outer"]
    assert fresh.layers["My CT & more"].visible is False


def test_folder_save_rewrites_only_changed_layers(make_napari_viewer, tmp_path, qtbot):
    viewer = make_napari_viewer()
    for obj in _objects()[:3]:
        _add(viewer, obj)
    widget = SaveSceneWidget(viewer)
    widget.mode.setCurrentIndex(1)
    widget.path_edit.setText(str(tmp_path / "s.mrml"))
    qtbot.mouseClick(widget.save_button, Qt.LeftButton)
    assert widget.n_rewritten == 3
    qtbot.mouseClick(widget.save_button, Qt.LeftButton)
    assert widget.n_rewritten == 0
    layer = viewer.layers["CT"]
    data = np.array(layer.data)
    data[0, 0, 0] += 1
    layer.data = data
    qtbot.mouseClick(widget.save_button, Qt.LeftButton)
    assert widget.n_rewritten == 1


def test_save_cancel_keeps_previous_bundle(make_napari_viewer, tmp_path, qtbot):
    viewer = make_napari_viewer()
    for obj in _objects():
        _add(viewer, obj)
    widget = SaveSceneWidget(viewer)
    widget.path_edit.setText(str(tmp_path / "s.mrb"))
    qtbot.mouseClick(widget.save_button, Qt.LeftButton)
    before = (tmp_path / "s.mrb").read_bytes()
    original = widget._progress

    def press_cancel(done, total, label):
        original(done, total, label)
        if done >= 1:
            qtbot.mouseClick(widget.cancel_button, Qt.LeftButton)

    widget._progress = press_cancel
    assert widget.save() is None
    assert "cancelled" in widget.status.text()
    assert (tmp_path / "s.mrb").read_bytes() == before


def test_add_data_widget(make_napari_viewer, tmp_path, qtbot):
    vol = Volume((np.arange(60).reshape(3, 4, 5) % 3).astype(np.uint8), OBLIQUE_FLIPPED, name="mask")
    registry.write(vol, tmp_path / "mask.nrrd")
    write_hierarchy_scene(tmp_path)
    viewer = make_napari_viewer()
    widget = AddDataWidget(viewer)
    widget.add_paths([tmp_path / "mask.nrrd", tmp_path / "scene.mrml"])
    rows = widget.rows()
    assert [r["description"] for r in rows] == ["volume", "scene"]
    widget.set_description(0, "label map")
    qtbot.mouseClick(widget.load_button, Qt.LeftButton)
    types = {layer.name: type(layer).__name__ for layer in viewer.layers}
    assert types == {"mask": "Labels", "My CT & more": "Image", "Cube": "Surface"}, widget.status.text()


def test_export_widget_with_folder_structure(make_napari_viewer, tmp_path, qtbot):
    write_hierarchy_scene(tmp_path)
    viewer = make_napari_viewer()
    viewer.open(str(tmp_path / "scene.mrml"), plugin="napari-medio")
    for obj in _objects()[3:4]:
        _add(viewer, obj)
    widget = ExportWidget(viewer)
    widget.set_row("My CT & more", export=True, format=".nii.gz")
    widget.set_row("Points", export=True, format=".fcsv")
    widget.set_row("Cube", export=False)
    widget.folder_edit.setText(str(tmp_path / "export"))
    widget.folder_structure.setChecked(True)
    saved_md = dict(viewer.layers["My CT & more"].metadata["medio"]["scene"])
    qtbot.mouseClick(widget.export_button, Qt.LeftButton)
    nii = tmp_path / "export" / "Patient A" / "Images" / "My CT & more.nii.gz"
    assert nii.exists(), widget.status.text()
    assert (tmp_path / "export" / "Points.fcsv").exists()
    assert not list((tmp_path / "export").rglob("Cube*"))
    # exported as shown: in the world frame
    exported = registry.read(nii)[0]
    alone = registry.read(tmp_path / "ct.nrrd")[0]
    world = flip_lps_ras_matrix(T2_RAS @ T1_RAS)
    expected = Geometry.from_index_to_lps(world @ alone.geometry.index_to_lps_matrix())
    assert exported.geometry.almost_equal(expected, tol=1e-4)
    assert viewer.layers["My CT & more"].metadata["medio"]["scene"] == saved_md  # save settings untouched


@pytest.mark.parametrize("ext", [".mrml", ".mrb"])
def test_transform_applied_in_viewer_is_saved_as_linear_transform_node(make_napari_viewer, tmp_path, qtbot, ext):
    """apply_transform in the viewer -> the saved scene has a LinearTransform node parenting the layers."""
    from napari_medio.core.transform import Transform
    from napari_medio.plugin.convert_transform import STORE, apply_transform
    from napari_medio.scene.loader import scan_scene

    STORE.clear()
    viewer = make_napari_viewer()
    objs = _objects()
    for obj in (objs[0], objs[2], objs[3]):  # CT, model, point list
        _add(viewer, obj)
    c, s = np.cos(0.3), np.sin(0.3)
    m = np.array([[c, -s, 0, 5.0], [s, c, 0, -3.0], [0, 0, 1, 12.0], [0, 0, 0, 1]])
    tx = Transform.from_matrix_to_parent(m, name="Registration")
    STORE.add(tx)
    for name in ("CT", "Model", "Points"):
        apply_transform(viewer.layers[name], tx)
    before = _fingerprint(viewer)
    widget = SaveSceneWidget(viewer)
    widget.mode.setCurrentIndex(0 if ext == ".mrb" else 1)
    target = tmp_path / "out" / f"scene{ext}"
    widget.path_edit.setText(str(target))
    qtbot.mouseClick(widget.save_button, Qt.LeftButton)
    assert target.exists(), widget.status.text()
    scan = scan_scene(target)
    nodes = [n for n in scan.document.nodes if n.tag == "LinearTransform"]
    assert [n.name for n in nodes] == ["Registration"]  # one node shared by the three layers
    values = [float(v) for v in nodes[0].get("matrixTransformToParent").split()]
    np.testing.assert_allclose(np.reshape(values, (4, 4)), flip_lps_ras_matrix(m), atol=1e-9)
    parented = {e.name for e in scan.entries if e.node.reference("transform") == nodes[0].id}
    assert parented == {"CT", "Model", "Points"}
    # the data files hold the untransformed data
    ct = next(e for e in scan.entries if e.name == "CT")
    assert registry.read(ct.path)[0].geometry.almost_equal(objs[0].geometry)
    fresh = make_napari_viewer()
    fresh.open(str(target), plugin="napari-medio")
    _same(before, _fingerprint(fresh))
    STORE.clear()


def test_add_data_single_file_vs_series(make_napari_viewer, tmp_path, qtbot):
    from PIL import Image

    for k in range(3):
        Image.fromarray(np.full((4, 5), 10 * (k + 1), np.uint8)).save(tmp_path / f"slice_{k:03d}.png")
    registry.write(Volume(np.zeros((2, 3, 4), np.int16), AXIAL, name="ct"), tmp_path / "ct.nrrd")
    viewer = make_napari_viewer()
    widget = AddDataWidget(viewer)
    widget.add_paths([tmp_path / "slice_001.png", tmp_path / "ct.nrrd"])
    opts = widget.options(0)
    assert not opts.single_file.isHidden() and not opts.single_file.isChecked()  # series by default, as Slicer
    assert widget.options(1).single_file.isHidden()  # not a picture: no series option
    widget.table.cellWidget(1, 0).setChecked(False)
    qtbot.mouseClick(widget.load_button, Qt.LeftButton)
    layer = viewer.layers[-1]
    assert np.asarray(layer.data).shape == (3, 4, 5), widget.status.text()
    assert [int(np.asarray(layer.data)[k, 0, 0]) for k in range(3)] == [10, 20, 30]
    opts.single_file.setChecked(True)  # only this file
    qtbot.mouseClick(widget.load_button, Qt.LeftButton)
    data = np.asarray(viewer.layers[-1].data)
    assert data.size == 20 and int(data.ravel()[0]) == 20, widget.status.text()


def test_add_data_label_map_colour_table(make_napari_viewer, tmp_path, qtbot):
    from napari_medio.core.colortable import ColorEntry, ColorTable
    from napari_medio.plugin.convert_transform import STORE

    lab = np.zeros((3, 4, 5), np.uint8)
    lab[0, :2] = 1
    lab[1:, 2:] = 2
    registry.write(Volume(lab, AXIAL, name="mask"), tmp_path / "mask.nrrd")
    (tmp_path / "organs.ctbl").write_text("# a colour table\n0 background 0 0 0 0\n1 heart 255 0 0 255\n"
                                          "2 lung 0 0 255 255\n", encoding="utf-8")
    viewer = make_napari_viewer()
    STORE.clear()
    try:
        widget = AddDataWidget(viewer)
        widget.add_paths([tmp_path / "mask.nrrd", tmp_path / "mask.nrrd"])
        opts = widget.options(0)
        assert opts.colortable.isHidden()  # a volume: no colour table
        widget.set_description(0, "label map")
        widget.set_description(1, "label map")
        assert not opts.colortable.isHidden() and opts.colortable_path.isHidden()
        STORE.add(ColorTable({1: ColorEntry("liver", (0.8, 0.2, 0.2, 1.0)),
                              2: ColorEntry("spleen", (0.2, 0.8, 0.2, 1.0))}, name="Abdomen"))
        items = [opts.colortable.itemText(i) for i in range(opts.colortable.count())]
        assert items == ["(from the file)", "Abdomen", "from file…"]  # tables loaded so far, then a file
        opts.colortable.setCurrentText("Abdomen")
        other = widget.options(1)
        other.colortable.setCurrentText("from file…")
        assert not other.colortable_path.isHidden()
        other.colortable_path.setText(str(tmp_path / "organs.ctbl"))
        qtbot.mouseClick(widget.load_button, Qt.LeftButton)
        first, second = viewer.layers[-2], viewer.layers[-1]
        assert type(first).__name__ == type(second).__name__ == "Labels", widget.status.text()
        assert list(first.features["name"])[1:] == ["liver", "spleen"]
        np.testing.assert_allclose(first.colormap.map(np.array([1]))[0], [0.8, 0.2, 0.2, 1.0], atol=1e-6)
        assert list(second.features["name"])[1:] == ["heart", "lung"]
        np.testing.assert_allclose(second.colormap.map(np.array([2]))[0], [0.0, 0.0, 1.0, 1.0], atol=1e-6)
        assert "organs" in [t.name for t in STORE.colortables]  # the file's table is now listed too
        assert "organs" in [other.colortable.itemText(i) for i in range(other.colortable.count())]
        # saved with the layer: the label map keeps the chosen names and colours
        back = object_from_layer(first)
        assert back.metadata["color_table"][2]["name"] == "spleen"
    finally:
        STORE.clear()


def test_save_scene_widget_keeps_nonlinear_parent_transform(make_napari_viewer, tmp_path, qtbot):
    """Opened through a grid parent (data moved into the world), saved from the viewer: the grid
    transform is still in the scene, as a node of its own, and the layers reopen where they were."""
    from napari_medio.scene.mrml import read_mrml
    from tests.scene.test_scene_sequence_nonlinear import _write_nonlinear_scene

    src = tmp_path / "src"
    src.mkdir()
    _write_nonlinear_scene(src)
    viewer = make_napari_viewer()
    viewer.open(str(src / "scene.mrml"), plugin="napari-medio")
    before = object_from_layer(viewer.layers["M"]).points.copy()
    widget = SaveSceneWidget(viewer)
    widget.mode.setCurrentIndex(1)
    widget.path_edit.setText(str(tmp_path / "out" / "again.mrml"))
    qtbot.mouseClick(widget.save_button, Qt.LeftButton)
    doc = read_mrml(tmp_path / "out" / "again.mrml")
    grid = next(n for n in doc.nodes if n.tag == "GridTransform")
    assert grid.name == "Warp", widget.status.text()
    assert (tmp_path / "out" / doc.node(grid.reference("storage")).get("fileName")).is_file()
    assert not next(n for n in doc.nodes if n.tag == "Model").reference("transform")
    fresh = make_napari_viewer()
    fresh.open(str(tmp_path / "out" / "again.mrml"), plugin="napari-medio")
    np.testing.assert_allclose(object_from_layer(fresh.layers["M"]).points, before, atol=1e-6)

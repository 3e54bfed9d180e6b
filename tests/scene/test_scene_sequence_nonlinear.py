"""Node sequences (.seq.mrb) as 4D layers, non-linear parent transforms, viewer-applied transforms in a saved scene."""
from __future__ import annotations

import warnings
import zipfile

import numpy as np
import pytest

from napari_medio.core import registry
from napari_medio.core.geometry import Geometry, flip_lps_ras_matrix
from napari_medio.core.markups import Markups
from napari_medio.core.model import triangle_model
from napari_medio.core.transform import Transform
from napari_medio.core.volume import AxisInfo, Volume
from napari_medio.scene.loader import SceneMissingFileWarning, read_scene, read_sequence_bundle, scan_scene
from napari_medio.scene.mrml import parse_mrml
from napari_medio.scene.save import save_scene
from napari_medio.scene.sequence import parse_index_values

GEOM = Geometry([1.0, 1.5, 2.0], [-10.0, 5.0, 20.0], np.eye(3))


def _frames(n=3, shape=(4, 5, 6)):
    rng = np.random.default_rng(1)
    return [rng.integers(0, 1000, shape).astype(np.int16) for _ in range(n)]


def _slicer_seq_mrb(path, frames, values=("0", "0.5", "1"), name="CTP"):
    """A .seq.mrb laid out as vtkMRMLSequenceStorageNode writes it (WriteToMRB of the sequence scene)."""
    top = path.name[: -len(".mrb")]
    work = path.parent / (path.name + ".work")
    (work / "Data").mkdir(parents=True)
    nodes = []
    for i, arr in enumerate(frames):
        registry.write(Volume(arr, GEOM, name=f"{name}_{i}"), work / "Data" / f"{name}_{i}.nrrd")
        nodes.append(
            f' <VolumeArchetypeStorage id="vtkMRMLVolumeArchetypeStorageNode{i + 1}" name="VolumeArchetypeStorage" '
            f'hideFromEditors="true" fileName="Data/{name}_{i}.nrrd" useCompression="1" '
            f'defaultWriteFileExtension="nrrd"></VolumeArchetypeStorage>\n'
            f' <Volume id="vtkMRMLScalarVolumeNode{i + 1}" name="{name}" hideFromEditors="false" '
            f'references="storage:vtkMRMLVolumeArchetypeStorageNode{i + 1};" spacing="1 1.5 2" '
            f'origin="10 -5 20" ijkToRASDirections="-1 0 0 0 -1 0 0 0 1"></Volume>\n')
    index = ";".join(f"vtkMRMLScalarVolumeNode{i + 1}:{v}" for i, v in enumerate(values))
    nodes.append(
        f' <Sequence id="vtkMRMLSequenceNodeSequenceIndex" name="{name}" hideFromEditors="false" '
        f'singletonTag="SequenceIndex" indexName="time" indexUnit="s" indexType="numeric" '
        f'numericIndexValueTolerance="0.001" indexValues="{index}"></Sequence>\n')
    text = ('<?xml version="1.0" encoding="UTF-8"?>\n<MRML  version="Slicer 5.8.1 33241" userTags="">\n'
            + "".join(nodes) + "</MRML>\n")
    (work / f"{top}.mrml").write_text(text, encoding="utf-8")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(work.rglob("*")):
            if p.is_file():
                zf.write(p, f"{top}/{p.relative_to(work).as_posix()}")
    return path


def test_seq_mrb_opened_alone_is_one_4d_volume(tmp_path):
    frames = _frames()
    path = _slicer_seq_mrb(tmp_path / "CTP-Seq.seq.mrb", frames)
    objs = registry.read(path)
    assert len(objs) == 1
    vol = objs[0]
    assert vol.shape == (3, 4, 5, 6)
    np.testing.assert_array_equal(vol.array, np.stack(frames))
    axis = vol.extra_axes[0]
    assert (axis.name, axis.unit, axis.values) == ("time", "s", [0, 0.5, 1])
    assert np.allclose(vol.geometry.index_to_lps_matrix(), GEOM.index_to_lps_matrix())


def test_scene_with_sequence_node_and_browser_proxy(tmp_path):
    frames = _frames()
    data = tmp_path / "Data"
    data.mkdir()
    _slicer_seq_mrb(data / "CTP-Seq.seq.mrb", frames)
    registry.write(Volume(frames[0], GEOM, name="CTP"), data / "CTP.nrrd")  # the browser's proxy node
    t_ras = np.eye(4)
    t_ras[:3, 3] = [5, 0, 0]
    scene = tmp_path / "scene.mrml"
    scene.write_text(f"""<?xml version="1.0" encoding="UTF-8"?>
<MRML version="Slicer 5.8.1 33241" userTags="">
 <LinearTransform id="vtkMRMLLinearTransformNode1" name="Shift"
  matrixTransformToParent="{' '.join(str(v) for v in t_ras.ravel())}"></LinearTransform>
 <SequenceStorage id="vtkMRMLSequenceStorageNode1" name="SequenceStorage" hideFromEditors="true"
  fileName="Data/CTP-Seq.seq.mrb" defaultWriteFileExtension="seq.mrb"></SequenceStorage>
 <Sequence id="vtkMRMLSequenceNode1" name="CTP-Seq" hideFromEditors="false"
  references="storage:vtkMRMLSequenceStorageNode1;transform:vtkMRMLLinearTransformNode1;"
  attributes="DataNodeClassName:vtkMRMLScalarVolumeNode" indexName="trigger" indexUnit="ms" indexType="numeric"
  numericIndexValueTolerance="0.001"
  indexValues="vtkMRMLScalarVolumeNode1:0;vtkMRMLScalarVolumeNode2:0.5;vtkMRMLScalarVolumeNode3:1"></Sequence>
 <VolumeArchetypeStorage id="vtkMRMLVolumeArchetypeStorageNode1" name="VolumeArchetypeStorage"
  hideFromEditors="true" fileName="Data/CTP.nrrd"></VolumeArchetypeStorage>
 <Volume id="vtkMRMLScalarVolumeNode1" name="CTP" references="storage:vtkMRMLVolumeArchetypeStorageNode1;"></Volume>
 <SequenceBrowser id="vtkMRMLSequenceBrowserNode1" name="CTP browser"
  references="rootNodeRef:vtkMRMLSequenceNode1;dataNodeRef0:vtkMRMLScalarVolumeNode1;"></SequenceBrowser>
</MRML>
""", encoding="utf-8")
    objs = [o for o in read_scene(scene) if o.kind != "transform"]
    assert [o.name for o in objs] == ["CTP-Seq"]  # the proxy volume is not loaded a second time
    vol = objs[0]
    assert vol.shape == (3, 4, 5, 6)
    # Slicer copies the bundle's own SequenceIndex over the main node's index (CopySequenceIndex)
    assert (vol.extra_axes[0].name, vol.extra_axes[0].unit) == ("time", "s")
    np.testing.assert_array_equal(vol.array[2], frames[2])
    expected = flip_lps_ras_matrix(t_ras) @ GEOM.index_to_lps_matrix()
    assert np.allclose(vol.geometry.index_to_lps_matrix(), expected)
    info = [e.info() for e in scan_scene(scene).entries]
    assert [i["kind"] for i in info] == ["transform", "sequence"]


def test_seq_mrb_with_items_on_different_grids_loads_items(tmp_path):
    frames = [np.zeros((4, 5, 6), np.int16), np.zeros((4, 5, 7), np.int16)]
    path = _slicer_seq_mrb(tmp_path / "x.seq.mrb", frames, values=("a", "b"))
    with pytest.warns(UserWarning, match="not volumes on one grid"):
        objs = read_sequence_bundle(path)
    assert [o.shape for o in objs] == [(4, 5, 6), (4, 5, 7)]


@pytest.mark.parametrize("ext", [".mrml", ".mrb"])
def test_4d_volume_saved_as_sequence_node(tmp_path, ext):
    frames = _frames(4)
    vol = Volume(np.stack(frames), GEOM, name="Heart", extra_axes=[AxisInfo("time", "ms", [0, 40, 80, 120])])
    model = triangle_model(np.eye(3) * 10, np.array([[0, 1, 2]]), name="M")
    target = tmp_path / "out" / f"scene{ext}"
    save_scene([vol, model], target)
    if ext == ".mrml":
        doc = parse_mrml((tmp_path / "out" / "scene.mrml").read_bytes())
        seq = next(n for n in doc.nodes if n.tag == "Sequence")
        assert seq.get("indexName") == "time" and seq.get("indexUnit") == "ms"
        assert [v for _, v in parse_index_values(seq.get("indexValues"))] == ["0", "40", "80", "120"]
        assert seq.node_attributes["DataNodeClassName"] == "vtkMRMLScalarVolumeNode"
        storage = doc.node(seq.reference("storage"))
        assert storage.tag == "SequenceStorage" and storage.get("fileName") == "Heart.seq.mrb"
        # the bundle alone is a Slicer sequence bundle with its SequenceIndex node
        inner = zipfile.ZipFile(tmp_path / "out" / "Heart.seq.mrb")
        mrml = [n for n in inner.namelist() if n.endswith(".mrml")]
        assert len(mrml) == 1 and b'singletonTag="SequenceIndex"' in inner.read(mrml[0])
        # a SequenceBrowser with a proxy volume (item 0), so Slicer shows the sequence at once
        browser = next(n for n in doc.nodes if n.tag == "SequenceBrowser")
        assert browser.reference("sequenceNodeRef0") == seq.get("id")
        proxy = doc.node(browser.reference("dataNodeRef0"))
        assert proxy.tag == "Volume" and proxy.get("name") == "Heart"
        assert browser.get("virtualNodePostfixes") == "0" and browser.get("selectedItemNumber") == "0"
    objs = read_scene(target)
    assert [o.name for o in objs].count("Heart") == 1  # the proxy is not loaded a second time
    back = next(o for o in objs if o.name == "Heart")
    np.testing.assert_array_equal(back.array, vol.array)
    assert back.extra_axes[0].values == [0, 40, 80, 120] and back.extra_axes[0].unit == "ms"
    assert np.allclose(back.geometry.index_to_lps_matrix(), GEOM.index_to_lps_matrix())


# -- non-linear parents -------------------------------------------------------------------------
D_LPS = np.array([2.0, 0.0, 0.0])  # constant resampling displacement (parent p -> child p + D)


def _grid_transform():
    g = Geometry([4.0, 4.0, 4.0], [-40.0, -40.0, -40.0], np.eye(3))
    field = np.broadcast_to(D_LPS, (21, 21, 21, 3)).copy()
    disp = Volume(field, g, name="field", components=AxisInfo("vector", kind="vector"))
    return Transform("grid", name="Warp", displacement=disp)


def _write_nonlinear_scene(folder):
    vol_arr = np.zeros((10, 10, 10), np.float32)
    vol_arr[:, :, 5] = 100.0  # a plane at i = 5 (x = 5 mm LPS)
    vol = Volume(vol_arr, Geometry([1, 1, 1], [0, 0, 0], np.eye(3)), name="V")
    registry.write(vol, folder / "v.nrrd")
    model = triangle_model(np.array([[0, 0, 0], [10, 0, 0], [0, 10, 0]], float), np.array([[0, 1, 2]]), name="M")
    registry.write(model, folder / "m.vtk")
    fid = Markups(type="Fiducial", name="F")
    fid.add_point([1, 2, 3])
    registry.write(fid, folder / "f.mrk.json")
    registry.write(_grid_transform(), folder / "warp.nrrd", format="displacement-field")
    shift_ras = np.eye(4)
    shift_ras[:3, 3] = [0, 0, 5]
    m = " ".join(str(v) for v in shift_ras.ravel())
    (folder / "scene.mrml").write_text(f"""<MRML version="Slicer 5.8.1 33241">
 <LinearTransform id="L" name="Up" matrixTransformToParent="{m}"></LinearTransform>
 <TransformStorage id="TS" name="TS" fileName="warp.nrrd"></TransformStorage>
 <GridTransform id="G" name="Warp" references="storage:TS;transform:L;"></GridTransform>
 <VolumeArchetypeStorage id="VS" fileName="v.nrrd"></VolumeArchetypeStorage>
 <Volume id="V" name="V" references="storage:VS;transform:G;"></Volume>
 <ModelStorage id="MS" fileName="m.vtk" coordinateSystem="LPS"></ModelStorage>
 <Model id="M" name="M" references="storage:MS;transform:G;"></Model>
 <MarkupsJsonStorage id="FS" fileName="f.mrk.json" coordinateSystem="LPS"></MarkupsJsonStorage>
 <MarkupsFiducial id="F" name="F" references="storage:FS;transform:G;"></MarkupsFiducial>
</MRML>
""", encoding="utf-8")
    return vol, model, fid


def test_nonlinear_parents_are_applied(tmp_path):
    vol, model, fid = _write_nonlinear_scene(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error", SceneMissingFileWarning)  # nothing left untransformed
        objs = {o.name: o for o in read_scene(tmp_path / "scene.mrml")}
    up = np.array([0.0, 0.0, 5.0])  # RAS (0, 0, 5) is LPS (0, 0, 5)
    # points: through the grid in the to-parent direction (p - D), then the linear parent
    np.testing.assert_allclose(objs["M"].points, model.points - D_LPS + up, atol=1e-4)
    np.testing.assert_allclose(objs["F"].positions, fid.positions - D_LPS + up, atol=1e-4)
    # the volume: resampled through the grid (out(p) = in(p + D)), then placed by the linear parent
    v = objs["V"]
    assert v.shape == vol.shape
    arr = np.asarray(v.array)
    assert np.allclose(arr[:, :, 3], 100.0) and np.allclose(arr[:, :, 5], 0.0)
    assert np.allclose(v.geometry.origin, up)
    md = v.metadata["scene"]
    assert md["applied"] is True and md["parent_transform_linear"] is False
    # saved again, Slicer shows it where napari does: world data, no parent
    save_scene(list(objs.values()), tmp_path / "out" / "again.mrml")
    again = {o.name: o for o in read_scene(tmp_path / "out" / "again.mrml") if o.kind != "transform"}
    np.testing.assert_allclose(again["M"].points, objs["M"].points, atol=1e-6)
    np.testing.assert_array_equal(np.asarray(again["V"].array), arr)


def test_missing_nonlinear_transform_leaves_data_untransformed(tmp_path):
    _, model, _ = _write_nonlinear_scene(tmp_path)
    (tmp_path / "warp.nrrd").unlink()
    with pytest.warns(SceneMissingFileWarning, match="untransformed"):
        objs = {o.name: o for o in read_scene(tmp_path / "scene.mrml")}
    np.testing.assert_allclose(objs["M"].points, model.points)
    assert objs["M"].metadata["scene"]["applied"] is False


@pytest.mark.parametrize("with_transform_objects", [False, True])
@pytest.mark.parametrize("bundle", [False, True])
def test_nonlinear_parent_kept_in_resaved_scene(tmp_path, with_transform_objects, bundle):
    """Data moved through a non-linear parent on open is saved in world position, unparented, and the
    transform itself is still in the saved scene (its file copied), under its own parents."""
    from napari_medio.scene.mrml import read_mrml

    src = tmp_path / "src"
    src.mkdir()
    _write_nonlinear_scene(src)
    scene = src / "scene.mrml"
    if bundle:
        scene = tmp_path / "scene.mrb"
        import zipfile

        with zipfile.ZipFile(scene, "w") as zf:
            for f in src.iterdir():
                zf.write(f, f"scene/{f.name}")
    objs = read_scene(scene)
    if not with_transform_objects:  # as the Save scene widget does: only the layers
        objs = [o for o in objs if o.kind != "transform"]
    out = tmp_path / "out" / "again.mrml"
    save_scene(objs, out)
    doc = read_mrml(out)
    grids = [n for n in doc.nodes if n.tag == "GridTransform"]
    assert len(grids) == 1 and grids[0].name == "Warp"
    storage = doc.node(grids[0].reference("storage"))
    assert (out.parent / storage.get("fileName")).is_file()
    up = doc.node(grids[0].reference("transform"))
    assert up is not None and up.name == "Up"
    for tag in ("Volume", "Model", "MarkupsFiducial"):
        node = next(n for n in doc.nodes if n.tag == tag)
        assert not node.reference("transform")  # data in world position: no parent
    again = {o.name: o for o in read_scene(out)}
    warp = again["Warp"]
    assert warp.kind == "transform" and not warp.is_linear
    np.testing.assert_allclose(np.asarray(warp.displacement.array), np.asarray(_grid_transform().displacement.array))
    moved = {o.name: o for o in objs}
    np.testing.assert_allclose(again["M"].points, moved["M"].points, atol=1e-6)


def test_nonlinear_parent_found_again_from_the_source_scene(tmp_path):
    """Metadata without the transform's recorded path (an older session): the file is found in the scene."""
    from napari_medio.scene.mrml import read_mrml

    src = tmp_path / "src"
    src.mkdir()
    _write_nonlinear_scene(src)
    objs = [o for o in read_scene(src / "scene.mrml") if o.kind != "transform"]
    for o in objs:
        for link in o.metadata["scene"]["transforms"]:
            link.pop("path", None)
    save_scene(objs, tmp_path / "out" / "again.mrml")
    doc = read_mrml(tmp_path / "out" / "again.mrml")
    assert [n.name for n in doc.nodes if n.tag == "GridTransform"] == ["Warp"]
    (src / "warp.nrrd").unlink()  # gone: saved without it, and said so
    with pytest.warns(UserWarning, match="no longer found"):
        save_scene(objs, tmp_path / "out2" / "again.mrml")

"""Opening Slicer scenes: every fixture scene, placement by transform hierarchies, folders, display."""
from __future__ import annotations

import json
import shutil
import warnings

import numpy as np
import pytest

from napari_medio.core import registry
from napari_medio.core.errors import FormatError
from napari_medio.core.geometry import Geometry, flip_lps_ras_matrix
from napari_medio.core.volume import DisplayWindow, Volume
from napari_medio.scene.loader import SceneMissingFileWarning, scan_scene
from napari_medio.scene.mrml import parse_mrml, parse_references
from tests.conftest import fixture_file

SCENES = ["NonLinearTransformScene.mrml", "cube-utf8.mrml", "cube.mrml", "modelHierarchy.mrml",
          "multi_display.mrml", "volRender.mrml", "vol_and_cube.mrml"]


def _fixed_volume() -> Volume:
    # The geometry vol_and_cube.mrml writes for TestData/fixed.nrrd (RAS in the scene).
    d_ras = np.array([0, -0, 1, -1, 0, -0, 0, -1, 0], float).reshape(3, 3)
    m = np.eye(4)
    m[:3, :3] = d_ras * np.array([5.2, 3.75, 3.75])
    m[:3, 3] = [-80.6, 120, 120]
    g = Geometry.from_index_to_ras(m)
    arr = np.arange(4 * 5 * 6, dtype=np.int16).reshape(6, 5, 4)
    return Volume(arr, g, name="fixed")


@pytest.mark.parametrize("name", SCENES)
def test_every_fixture_scene_is_scanned(name):
    path = fixture_file(f"scenes/{name}")
    scan = scan_scene(path)
    refs = [e.file for e in scan.entries if e.file]
    text = path.read_text(encoding="utf-8")
    for rel in refs:
        assert rel in text
    for e in scan.entries:
        assert np.allclose(e.parent_transform, np.eye(4))


@pytest.mark.parametrize("name", ["cube.mrml", "multi_display.mrml", "modelHierarchy.mrml", "vol_and_cube.mrml"])
def test_fixture_scenes_load_with_missing_files_reported(name):
    path = fixture_file(f"scenes/{name}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        objs = registry.read(path)
    kinds = [o.kind for o in objs]
    assert "model" in kinds
    cube = next(o for o in objs if o.kind == "model")
    alone = registry.read(fixture_file("scenes/TestData/cube.vtk"))[0]
    np.testing.assert_allclose(cube.points, alone.points, atol=1e-9)
    missing = [str(w.message) for w in caught if issubclass(w.category, SceneMissingFileWarning)]
    if name in ("modelHierarchy.mrml", "vol_and_cube.mrml"):
        assert missing and ("sphere.vtk" in missing[0] or "fixed.nrrd" in missing[0])
    md = cube.metadata["scene"]
    assert md["file"] == "TestData/cube.vtk"
    assert "display" in md and md["display"].get("visible") is True


def test_multi_display_uses_the_first_display_node():
    objs = registry.read(fixture_file("scenes/multi_display.mrml"))
    assert objs[0].metadata["scene"]["display"]["color"] == [0.8, 0.1, 0.1]


def test_scene_without_data_and_scene_with_only_missing_files():
    assert registry.read(fixture_file("scenes/volRender.mrml")) == []
    with pytest.warns(SceneMissingFileWarning), pytest.raises(FormatError, match="none of the scene's"):
        registry.read(fixture_file("scenes/cube-utf8.mrml"))


def test_vol_and_cube_with_its_volume_is_placed_like_the_file(tmp_path):
    shutil.copy(fixture_file("scenes/vol_and_cube.mrml"), tmp_path / "scene.mrml")
    (tmp_path / "TestData").mkdir()
    shutil.copy(fixture_file("scenes/TestData/cube.vtk"), tmp_path / "TestData/cube.vtk")
    registry.write(_fixed_volume(), tmp_path / "TestData/fixed.nrrd")
    objs = registry.read(tmp_path / "scene.mrml")
    vol = next(o for o in objs if o.kind == "volume")
    alone = registry.read(tmp_path / "TestData/fixed.nrrd")[0]
    assert vol.geometry.almost_equal(alone.geometry)
    np.testing.assert_array_equal(np.asarray(vol.array), np.asarray(alone.array))
    assert vol.name == "fixed.nrrd"
    # window/level from the display node
    assert vol.window == DisplayWindow(center=109, width=252)


def test_nonlinear_transform_scene_with_its_files(tmp_path):
    shutil.copy(fixture_file("scenes/NonLinearTransformScene.mrml"), tmp_path / "scene.mrml")
    (tmp_path / "TestData").mkdir()
    for f in ("Bspline-f-m.tfm", "deform2x2x2_ras.nrrd", "BSplineLinearCompositeTransform.h5"):
        shutil.copy(fixture_file(f"transforms/{f}"), tmp_path / "TestData" / f)
    with pytest.warns(SceneMissingFileWarning, match="TpsTransform"):
        objs = registry.read(tmp_path / "scene.mrml")
    assert [o.kind for o in objs] == ["transform"] * 3
    types = {o.name: o.type for o in objs}
    assert types["Bspline-f-m"] in ("bspline", "composite")  # the .tfm holds a b-spline (+ bulk transform)
    assert types["deform2x2x2_ras"] == "grid"
    assert types["BSplineLinearCompositeTransform"] == "composite"
    assert not any(o.is_linear for o in objs)


# -- a Slicer 5 scene with nested transforms and folders -------------------------------------------------
T1_RAS = np.array([[0, -1, 0, 10], [1, 0, 0, -5], [0, 0, 1, 3], [0, 0, 0, 1]], float)
T2_RAS = np.array([[1, 0, 0, 7], [0, 1, 0, 0], [0, 0, 1, -2], [0, 0, 0, 1]], float)


def _flat(m):
    return " ".join(str(x) for x in m.reshape(-1))


def write_hierarchy_scene(folder) -> None:
    vol = Volume(np.arange(24, dtype=np.int16).reshape(2, 3, 4), Geometry([1, 2, 3], [4, 5, 6], np.eye(3)),
                 name="ct")
    registry.write(vol, folder / "ct.nrrd")
    shutil.copy(fixture_file("scenes/TestData/cube.vtk"), folder / "cube.vtk")
    (folder / "scene.mrml").write_text(f"""<?xml version="1.0" encoding="UTF-8"?>
<MRML version="Slicer 5.8.1 33241" userTags="">
 <LinearTransform id="vtkMRMLLinearTransformNode2" name="Outer" references="" matrixTransformToParent="{_flat(T2_RAS)}"></LinearTransform>
 <LinearTransform id="vtkMRMLLinearTransformNode1" name="Inner" references="transform:vtkMRMLLinearTransformNode2;" matrixTransformToParent="{_flat(T1_RAS)}"></LinearTransform>
 <VolumeArchetypeStorage id="vtkMRMLVolumeArchetypeStorageNode1" name="" fileName="ct.nrrd"></VolumeArchetypeStorage>
 <VolumeDisplay id="vtkMRMLScalarVolumeDisplayNode1" name="" window="100" level="20" visibility="false" opacity="0.5" colorNodeID="vtkMRMLColorTableNodeGrey"></VolumeDisplay>
 <Volume id="vtkMRMLScalarVolumeNode1" name="My CT &amp; more" references="display:vtkMRMLScalarVolumeDisplayNode1;storage:vtkMRMLVolumeArchetypeStorageNode1;transform:vtkMRMLLinearTransformNode1;"></Volume>
 <ModelStorage id="vtkMRMLModelStorageNode1" name="" fileName="cube.vtk" coordinateSystem="LPS"></ModelStorage>
 <ModelDisplay id="vtkMRMLModelDisplayNode1" name="" color="1 0 0" opacity="0.25"></ModelDisplay>
 <Model id="vtkMRMLModelNode1" name="Cube" references="display:vtkMRMLModelDisplayNode1;storage:vtkMRMLModelStorageNode1;transform:vtkMRMLLinearTransformNode2;"></Model>
 <SubjectHierarchy id="vtkMRMLSubjectHierarchyNode1" name="SubjectHierarchy" attributes="SubjectHierarchyVersion:2">
  <SubjectHierarchyItem id="3" name="Scene" parent="0" type="" expanded="true" attributes="Level^Scene|">
   <SubjectHierarchyItem id="9" name="Patient A" parent="3" type="Folder" expanded="true" attributes="Level^Folder|">
    <SubjectHierarchyItem id="10" name="Images" parent="9" type="Folder" expanded="true" attributes="Level^Folder|">
     <SubjectHierarchyItem id="11" dataNode="vtkMRMLScalarVolumeNode1" parent="10" type="Volumes" expanded="true"></SubjectHierarchyItem>
    </SubjectHierarchyItem>
   </SubjectHierarchyItem>
   <SubjectHierarchyItem id="12" dataNode="vtkMRMLModelNode1" parent="3" type="Models" expanded="true"></SubjectHierarchyItem>
  </SubjectHierarchyItem>
 </SubjectHierarchy>
</MRML>
""", encoding="utf-8")


def test_nested_transforms_folders_and_display(tmp_path):
    write_hierarchy_scene(tmp_path)
    objs = registry.read(tmp_path / "scene.mrml")
    by_name = {o.name: o for o in objs}
    world = flip_lps_ras_matrix(T2_RAS @ T1_RAS)
    vol = by_name["My CT & more"]
    alone = registry.read(tmp_path / "ct.nrrd")[0]
    expected = Geometry.from_index_to_lps(world @ alone.geometry.index_to_lps_matrix())
    assert vol.geometry.almost_equal(expected)
    md = vol.metadata["scene"]
    assert md["folder"] == "Patient A/Images"
    np.testing.assert_allclose(md["parent_transform"], world)
    assert [t["name"] for t in md["transforms"]] == ["Inner", "Outer"]
    assert md["display"]["visible"] is False and md["display"]["opacity"] == 0.5
    cube = by_name["Cube"]
    cube_alone = registry.read(tmp_path / "cube.vtk")[0]
    m2 = flip_lps_ras_matrix(T2_RAS)
    np.testing.assert_allclose(cube.points, cube_alone.points @ m2[:3, :3].T + m2[:3, 3], atol=1e-9)
    assert cube.metadata["scene"]["folder"] == ""
    assert cube.metadata["scene"]["display"]["color"] == [1.0, 0.0, 0.0]
    # The transforms themselves are loaded too (stored in the scene only).
    tx = [o for o in objs if o.kind == "transform"]
    assert sorted(t.name for t in tx) == ["Inner", "Outer"]


def test_scene_info_cli_contract(tmp_path, capsys):
    from napari_medio.cli import main

    write_hierarchy_scene(tmp_path)
    assert main(["scene", "info", "--json", str(tmp_path / "scene.mrml")]) == 0
    records = json.loads(capsys.readouterr().out)
    vol = next(r for r in records if r["kind"] == "volume")
    assert vol["name"] == "My CT & more" and vol["file"] == "ct.nrrd" and vol["folder"] == "Patient A/Images"
    np.testing.assert_allclose(vol["parent_transform"], flip_lps_ras_matrix(T2_RAS @ T1_RAS))
    for r in records:
        assert set(r) >= {"kind", "name", "file", "parent_transform", "folder"}
    assert main(["scene", "info", str(fixture_file("scenes/vol_and_cube.mrml"))]) == 0
    out = capsys.readouterr()
    assert "fixed.nrrd" in out.out and "not found" in out.err


def test_references_and_legacy_attributes():
    assert parse_references("display:a b {x=1};storage:c;") == {"display": ["a", "b"], "storage": ["c"]}
    doc = parse_mrml(b'<MRML><Model id="m" storageNodeRef="s" references="display:d;"/></MRML>')
    assert doc.nodes[0].references == {"display": ["d"], "storage": ["s"]}
    doc = parse_mrml(b'<MRML><Model id="m" storageNodeRef="old" references="storage:new;"/></MRML>')
    assert doc.nodes[0].reference("storage") == "new"


def test_transform_cycle_is_an_error(tmp_path):
    (tmp_path / "s.mrml").write_text(
        '<MRML>'
        '<LinearTransform id="a" references="transform:b;" matrixTransformToParent="1 0 0 0 0 1 0 0 0 0 1 0 0 0 0 1"/>'
        '<LinearTransform id="b" references="transform:a;" matrixTransformToParent="1 0 0 0 0 1 0 0 0 0 1 0 0 0 0 1"/>'
        '</MRML>')
    with pytest.raises(FormatError, match="cycle"):
        scan_scene(tmp_path / "s.mrml")


def test_builtin_volume_colour_nodes_map_to_napari_colormaps():
    from napari_medio.scene.loader import builtin_colormap

    assert builtin_colormap("vtkMRMLColorTableNodeGrey") == "gray"
    assert builtin_colormap("vtkMRMLColorTableNodeInvertedGrey") == "gray_r"
    assert builtin_colormap("vtkMRMLPETProceduralColorNodePET-Heat") == "fire"
    assert builtin_colormap("vtkMRMLColorTableNodeFileViridis.txt") == "viridis"
    assert builtin_colormap("vtkMRMLColorTableNodeFileGenericAnatomyColors.txt") is None


def test_generic_anatomy_colours_from_the_bundled_terminology():
    """Label maps whose scene names GenericAnatomyColors get Slicer's names and colours."""
    from napari_medio.formats.terminology import generic_anatomy_label_table
    from tests.conftest import fixture_file

    table = generic_anatomy_label_table()
    ref = {}
    for line in fixture_file("colors/GenericAnatomyColors.txt").read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        parts = line.split()
        ref[int(parts[0])] = (parts[1].replace("_", " "), [int(x) for x in parts[2:5]])
    common = set(table) & set(ref)
    assert len(common) >= 0.8 * (len(ref) - 1)  # labels with a terminology entry (not background)
    for label in common:
        assert [round(c * 255) for c in table[label]["color"][:3]] == ref[label][1]
    names_equal = sum(table[k]["name"].lower() == ref[k][0].lower() for k in common)
    assert names_equal >= len(common) - 1  # Slicer's .txt spells one of them "right pullidum"


def test_model_under_a_linear_transform_is_placed_by_the_transforms_file(tmp_path):
    """Slicer writes matrixTransformToParent with 6 significant digits and loads the transform's own file:
    the model goes where the file's full-precision matrix puts it, not where the rounded attribute would."""
    from napari_medio.core.model import triangle_model
    from napari_medio.core.transform import Transform
    from tests.volumes import rotation

    to_parent = np.eye(4)
    to_parent[:3, :3] = rotation()
    to_parent[:3, 3] = [123.456789123, -98.7654321, 339.123456789]
    registry.write(Transform.from_matrix_to_parent(to_parent, name="T"), tmp_path / "T.h5")
    points = np.array([[0.0, 0.0, 0.0], [310.0, -20.0, 40.0], [5.0, 300.0, -60.0]])
    registry.write(triangle_model(points, [[0, 1, 2]], name="M"), tmp_path / "m.vtk")
    rounded = " ".join(f"{v:.6g}" for v in flip_lps_ras_matrix(to_parent).ravel())
    (tmp_path / "scene.mrml").write_text(f"""<MRML version="Slicer 5.8.1 33241">
 <TransformStorage id="TS" name="TS" fileName="T.h5"></TransformStorage>
 <LinearTransform id="L" name="T" matrixTransformToParent="{rounded}" references="storage:TS;"></LinearTransform>
 <ModelStorage id="MS" fileName="m.vtk" coordinateSystem="LPS"></ModelStorage>
 <Model id="M" name="M" references="storage:MS;transform:L;"></Model>
</MRML>
""", encoding="utf-8")
    objects = {o.name: o for o in registry.read(tmp_path / "scene.mrml")}
    want = points @ to_parent[:3, :3].T + to_parent[:3, 3]
    np.testing.assert_allclose(objects["M"].points, want, rtol=0, atol=1e-9)
    np.testing.assert_allclose(objects["T"].matrix_to_parent_lps, to_parent, rtol=0, atol=1e-9)

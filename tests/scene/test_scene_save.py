"""Saving scenes (.mrml + files, .mrb): Slicer's structure, round trips, atomicity."""
from __future__ import annotations

import zipfile

import numpy as np
import pytest

from napari_medio.core import registry
from napari_medio.core.errors import CancelledError, WriteError
from napari_medio.core.geometry import Geometry
from napari_medio.core.markups import Markups
from napari_medio.core.model import triangle_model
from napari_medio.core.volume import Volume
from napari_medio.scene.loader import read_scene
from napari_medio.scene.mrml import read_mrml
from napari_medio.scene.nodes import safe_file_base
from napari_medio.scene.save import plan_items, save_scene
from tests.scene.test_scene_load import write_hierarchy_scene
from tests.volumes import OBLIQUE_FLIPPED


def objects():
    vol = Volume(np.arange(60, dtype=np.int16).reshape(3, 4, 5), OBLIQUE_FLIPPED, name="CT")
    lab = Volume((np.arange(60).reshape(3, 4, 5) % 3).astype(np.uint8), OBLIQUE_FLIPPED, kind="labelmap",
                 name="Labels", metadata={"color_table": {1: {"name": "liver", "color": [1.0, 0.0, 0.0, 1.0]},
                                                          2: {"name": "spleen", "color": [0.0, 1.0, 0.0, 1.0]}}})
    model = triangle_model(np.array([[0, 0, 0], [10, 0, 0], [0, 10, 5.0]]), [[0, 1, 2]], name="Tri")
    fid = Markups(type="Fiducial", name="F")
    fid.add_point([1, 2, 3])
    fid.add_point([-4, 5, 6.5])
    curve = Markups(type="Curve", name="Curve")
    for p in ([0, 0, 0], [1, 1, 0], [2, 0, 1]):
        curve.add_point(p)
    return [vol, lab, model, fid, curve]


def _check_same(before, after):
    assert [o.name for o in after if o.kind != "colortable"] == [o.name for o in before]
    got = {o.name: o for o in after}
    for o in before:
        b = got[o.name]
        assert b.kind == o.kind
        if o.kind in ("volume", "labelmap"):
            assert b.geometry.almost_equal(o.geometry)
            np.testing.assert_array_equal(np.asarray(b.array), np.asarray(o.array))
            if o.kind == "labelmap":
                assert {int(k): v["name"] for k, v in b.metadata["color_table"].items()} == {1: "liver",
                                                                                              2: "spleen"}
        elif o.kind == "model":
            np.testing.assert_allclose(b.points, o.points, atol=1e-6)
        elif o.kind == "markups":
            assert b.type == o.type
            np.testing.assert_allclose(b.positions, o.positions, atol=1e-9)


@pytest.mark.parametrize("ext", [".mrml", ".mrb"])
def test_round_trip(tmp_path, ext):
    objs = objects()
    out = tmp_path / f"My scene{ext}"
    save_scene(objs, out)
    back = read_scene(out)
    _check_same(objs, back)


def test_mrb_layout_is_slicers(tmp_path):
    out = tmp_path / "Case 1.mrb"
    save_scene(objects(), out)
    with zipfile.ZipFile(out) as zf:
        names = zf.namelist()
    assert names[0] == "Case 1/"
    assert "Case 1/Case 1.mrml" in names
    assert all(n.startswith("Case 1/") for n in names)
    assert "Case 1/Data/CT.nrrd" in names and "Case 1/Data/Tri.vtk" in names and "Case 1/Data/F.mrk.json" in names


def test_written_mrml_structure(tmp_path):
    save_scene(objects(), tmp_path / "s.mrml")
    text = (tmp_path / "s.mrml").read_text(encoding="utf-8")
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<MRML  version="Slicer 5.8.1 33241"')
    doc = read_mrml(tmp_path / "s.mrml")
    assert not doc.is_legacy
    tags = [n.tag for n in doc.nodes]
    for tag in ("Volume", "VolumeDisplay", "VolumeArchetypeStorage", "LabelMapVolume", "LabelMapVolumeDisplay",
                "ColorTable", "ColorTableStorage", "Model", "ModelDisplay", "ModelStorage", "MarkupsFiducial",
                "MarkupsFiducialDisplay", "MarkupsJsonStorage", "MarkupsCurve", "SubjectHierarchy"):
        assert tag in tags, tag
    for n in doc.nodes:
        if n.tag in ("ModelStorage", "MarkupsJsonStorage"):
            assert n.get("coordinateSystem") == "LPS"
        if n.tag in ("Volume", "Model", "MarkupsFiducial"):
            refs = n.references
            assert doc.node(refs["storage"][0]) is not None and doc.node(refs["display"][0]) is not None
    assert {i.data_node for i in doc.sh_items if i.data_node} >= {n.id for n in doc.nodes if n.tag == "Volume"}


def test_hierarchy_round_trip_keeps_transforms_and_folders(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    write_hierarchy_scene(src)
    first = read_scene(src / "scene.mrml")
    save_scene(first, tmp_path / "copy.mrb")
    second = read_scene(tmp_path / "copy.mrb")
    a = {o.name: o for o in first}
    b = {o.name: o for o in second}
    assert set(a) == set(b)
    assert b["My CT & more"].geometry.almost_equal(a["My CT & more"].geometry)
    np.testing.assert_allclose(b["Cube"].points, a["Cube"].points, atol=1e-6)
    md = b["My CT & more"].metadata["scene"]
    assert md["folder"] == "Patient A/Images"
    assert [t["name"] for t in md["transforms"]] == ["Inner", "Outer"]
    np.testing.assert_allclose(md["parent_transform"], a["My CT & more"].metadata["scene"]["parent_transform"])
    assert md["display"]["opacity"] == 0.5 and md["display"]["visible"] is False
    # the data file itself is stored untransformed (local to its parent), as Slicer keeps it
    local = [o for o in second if o.name == "My CT & more"][0].metadata["scene"]["path"]
    assert registry.read(local)[0].geometry.almost_equal(registry.read(src / "ct.nrrd")[0].geometry)


def test_failed_save_keeps_previous_files_and_names_the_file(tmp_path, monkeypatch):
    objs = objects()
    save_scene(objs, tmp_path / "s.mrml")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    bad = objs[:]
    bad[2] = triangle_model(np.array([[0, 0, 0], [1, 0, 0], [np.nan, 1, 0]]), [[0, 1, 2]], name="Tri")
    from napari_medio.core import registry as reg

    real = reg.write

    def failing(obj, path, **kw):
        if str(path).endswith("Tri.vtk"):
            raise WriteError(path, "disk full")
        return real(obj, path, **kw)

    monkeypatch.setattr(reg, "write", failing)
    with pytest.raises(WriteError, match="Tri.vtk"):
        save_scene(bad, tmp_path / "s.mrml")
    after = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert after == before
    with pytest.raises(WriteError, match="Tri.vtk"):
        save_scene(bad, tmp_path / "s.mrb")
    assert not (tmp_path / "s.mrb").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".medio")]


def test_cancel_leaves_previous_bundle(tmp_path):
    out = tmp_path / "s.mrb"
    save_scene(objects(), out)
    before = out.read_bytes()
    calls = []

    def cancel():
        calls.append(1)
        return len(calls) > 2

    with pytest.raises(CancelledError):
        save_scene(objects(), out, cancel=cancel)
    assert out.read_bytes() == before


def test_unchanged_files_are_not_rewritten_in_a_folder_save(tmp_path):
    objs = objects()
    save_scene(objs, tmp_path / "s.mrml")
    ct = tmp_path / "CT.nrrd"
    mtime = ct.stat().st_mtime_ns
    items = plan_items(objs, bundle=False)
    items[0].write = False
    save_scene(items, tmp_path / "s.mrml")
    assert ct.stat().st_mtime_ns == mtime
    assert (tmp_path / "Tri.vtk").exists()


def test_file_names_like_slicer():
    assert safe_file_base("a/b:c") == "a%2Fb%3Ac"
    assert len(safe_file_base("x" * 80)) == 50
    items = plan_items([Volume(np.zeros((2, 2, 2)), Geometry.identity(), name="same"),
                        Volume(np.zeros((2, 2, 2)), Geometry.identity(), name="same")], bundle=True)
    assert [i.file for i in items] == ["Data/same.nrrd", "Data/same_1.nrrd"]


def test_cli_save_then_info(tmp_path, capsys):
    from napari_medio.cli import main

    objs = objects()
    files = []
    for o, ext in zip(objs, (".nrrd", ".nrrd", ".vtk", ".mrk.json", ".mrk.json")):
        p = tmp_path / f"{o.name}{ext}"
        registry.write(o, p)
        files.append(str(p))
    assert main(["scene", "save", str(tmp_path / "out.mrb"), *files]) == 0
    capsys.readouterr()
    assert main(["scene", "info", "--json", str(tmp_path / "out.mrb")]) == 0
    import json

    records = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in records if r["kind"] != "colortable"] == [o.name for o in objs]
    assert main(["scene", "extract", str(tmp_path / "out.mrb"), str(tmp_path / "x")]) == 0
    assert (tmp_path / "x" / "out" / "out.mrml").exists()

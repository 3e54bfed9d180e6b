"""Markups: Slicer JSON, fcsv, acsv conformance, round trips, schema validation, bad input."""
from __future__ import annotations

import json
import subprocess
import sys

import jsonschema
import numpy as np
import pytest

import napari_medio
from napari_medio.core.errors import FormatError
from napari_medio.core.markups import ControlPoint, Markups
from napari_medio.formats.markups_json import SCHEMA_URL, markups_to_json, schema, validate
from tests.badfiles import assert_rejected, variants
from tests.conftest import fixture_file


def _validate_file(path):
    jsonschema.Draft7Validator(schema()).validate(json.loads(path.read_text()))


def _all_types() -> list[Markups]:
    out = []
    for t in ("Fiducial", "Line", "Angle", "Curve", "ClosedCurve"):
        m = Markups(type=t, name=f"my {t}", coordinate_system="LPS",
                    measurements=[{"name": "length", "enabled": True, "value": 1.5, "units": "mm",
                                   "printFormat": "%-#4.4g%s"}],
                    display={"visibility": True, "opacity": 0.8, "color": [0.1, 0.2, 0.3],
                             "selectedColor": [0.9, 0.1, 0.1], "glyphSize": 4.0, "glyphType": "Sphere3D"})
        for i, p in enumerate([[1.5, -2.25, 3], [10, 4, -7.125], [3, 9, 2], [-4, 1, 0.5]]):
            m.control_points.append(ControlPoint(
                id=str(i + 1), label=f"P-{i + 1}", description=f"desc, \"{i}\"",
                associated_node_id="vtkMRMLScalarVolumeNode1",
                position=np.array(p, float), orientation=np.array([[0, -1, 0], [1, 0, 0], [0, 0, 1.0]]),
                selected=bool(i % 2), locked=i == 2, visibility=i != 3, position_status="defined"))
        out.append(m)
    plane = Markups(type="Plane", name="plane", plane_type="pointNormal", size_mode="absolute", auto_scaling_factor=1.0,
                    center=[1, 2, 3], normal=[0, 0, 1], orientation=np.eye(3), size=[50, 40, 0],
                    plane_bounds=[-25, 25, -20, 20], object_to_base=np.eye(4), base_to_node=np.eye(4))
    plane.add_point([1, 2, 3])
    roi = Markups(type="ROI", name="roi", roi_type="Box", center=[5, -5, 10], orientation=np.eye(3), size=[10, 20, 30],
                  inside_out=False)
    roi.add_point([5, -5, 10])
    return out + [plane, roi]


def _same(a: Markups, b: Markups) -> None:
    assert a.type == b.type and a.name == b.name
    assert len(a.control_points) == len(b.control_points)
    for p, q in zip(a.control_points, b.control_points):
        for f in ("id", "label", "description", "associated_node_id", "selected", "locked", "visibility",
                  "position_status"):
            assert getattr(p, f) == getattr(q, f), f
        np.testing.assert_allclose(p.position, q.position, atol=1e-12)
        np.testing.assert_allclose(p.orientation, q.orientation, atol=1e-12)
    for f in ("center", "normal", "size", "plane_bounds", "orientation", "object_to_base", "base_to_node"):
        x, y = getattr(a, f), getattr(b, f)
        assert (x is None) == (y is None), f
        if x is not None:
            np.testing.assert_allclose(x, y, atol=1e-12)
    assert a.measurements == b.measurements
    assert a.display == b.display


@pytest.mark.parametrize("ext", [".mrk.json", ".mkp.json", ".json"])
@pytest.mark.parametrize("cs", ["LPS", "RAS"])
def test_json_round_trip_every_type_validates(tmp_path, ext, cs):
    for m in _all_types():
        m.coordinate_system = cs
        path = tmp_path / f"{m.type}{ext}"
        napari_medio.write(m, path)
        _validate_file(path)
        doc = json.loads(path.read_text())
        assert list(doc) == ["@schema", "markups"] and doc["@schema"] == SCHEMA_URL
        assert doc["markups"][0]["coordinateSystem"] == cs
        [back] = napari_medio.read(path)
        assert back.coordinate_system == cs
        _same(m, back)


def test_ras_and_lps_files_give_the_same_world_positions(tmp_path):
    m = _all_types()[0]
    napari_medio.write(m, tmp_path / "a.mrk.json", coordinate_system="LPS")
    napari_medio.write(m, tmp_path / "b.mrk.json", coordinate_system="RAS")
    a = json.loads((tmp_path / "a.mrk.json").read_text())["markups"][0]["controlPoints"][0]["position"]
    b = json.loads((tmp_path / "b.mrk.json").read_text())["markups"][0]["controlPoints"][0]["position"]
    assert a == [1.5, -2.25, 3.0] and b == [-1.5, 2.25, 3.0]
    [ra], [rb] = napari_medio.read(tmp_path / "a.mrk.json"), napari_medio.read(tmp_path / "b.mrk.json")
    np.testing.assert_array_equal(ra.positions, rb.positions)
    np.testing.assert_allclose(rb.control_points[0].orientation, m.control_points[0].orientation)


def test_slicer_written_json_with_ras_plane_and_unplaced_point(tmp_path):
    doc = {"@schema": SCHEMA_URL.replace("1.0.3", "1.0.0"), "markups": [{
        "type": "Plane", "coordinateSystem": "RAS", "planeType": "threePoints", "sizeMode": "auto",
        "autoScalingFactor": 2.0, "center": [1, 2, 3], "normal": [0, 0, 1],
        "orientation": [1, 0, 0, 0, 1, 0, 0, 0, 1], "objectToBase": list(np.eye(4).ravel()),
        "controlPoints": [
            {"id": "1", "label": "a", "position": [1, 2, 3], "positionStatus": "defined"},
            {"id": "2", "label": "b", "position": "", "positionStatus": "undefined"},
            {"id": "3", "label": "c", "position": [4, 5, 6], "positionStatus": "missing"}],
        "display": {"selectedColor": [1, 0, 0]}}]}
    p = tmp_path / "plane.json"
    p.write_text(json.dumps(doc))
    [m] = napari_medio.read(p)
    assert m.type == "Plane" and m.coordinate_system == "RAS"
    np.testing.assert_allclose(m.center, [-1, -2, 3])
    np.testing.assert_allclose(m.orientation, np.diag([-1, -1, 1.0]))
    np.testing.assert_allclose(m.object_to_base[:2], -np.eye(4)[:2])
    assert [cp.position_status for cp in m.control_points] == ["defined", "undefined", "missing"]
    assert m.control_points[1].position is None
    assert m.auto_scaling_factor == 2.0
    assert len(m.outline()) == 1
    out = tmp_path / "out.mkp.json"
    napari_medio.write(m, out)
    back = json.loads(out.read_text())["markups"][0]
    assert back["center"] == [1, 2, 3] and back["coordinateSystem"] == "RAS"
    assert "position" not in back["controlPoints"][1]
    info = m.info()
    assert info["kind"] == "markups" and info["type"] == "Plane" and info["coordinate_system"] == "RAS"
    assert info["points"][0] == {"label": "a", "position": [-1.0, -2.0, 3.0], "id": "1", "position_status": "defined"}


def test_fcsv_fixtures():
    [l1] = napari_medio.read(fixture_file("markups/L1.fcsv"))
    assert l1.coordinate_system == "RAS" and len(l1.control_points) == 2
    np.testing.assert_allclose(l1.control_points[0].position, [-43.3769, -23.1343, 0])
    assert l1.control_points[0].label == "L1-P1"
    assert l1.control_points[0].associated_node_id == "vtkMRMLDiffusionTensorVolumeNode1"
    assert l1.control_points[0].id == "vtkMRMLMarkupsFiducialNode_0"
    [s3] = napari_medio.read(fixture_file("markups/slicer3.fcsv"))
    assert len(s3.control_points) == 56 and s3.name == "midsag" and s3.coordinate_system == "RAS"
    np.testing.assert_allclose(s3.control_points[0].position, [-12.5, 93.5, 7.5])
    assert s3.control_points[0].label == "midsag2"
    assert s3.display["color"] == [0.4, 1, 1]
    [f] = napari_medio.read(fixture_file("markups/slicerio_F_1.fcsv"))
    assert f.coordinate_system == "LPS" and len(f.control_points) == 12
    cp = f.control_points[1]
    np.testing.assert_allclose(cp.position, [-34.42466815602836, -55.90377730496455, -10.2143])
    assert (cp.id, cp.label, cp.description, cp.selected, cp.visibility, cp.locked) == \
        ("2", "F_1-2", "Some description", True, False, False)
    assert f.control_points[3].label == "Different name" and f.control_points[3].locked
    assert f.control_points[4].visibility and not f.control_points[4].selected


def test_acsv_fixtures():
    [fid] = napari_medio.read(fixture_file("markups/F.acsv"))
    assert fid.type == "Fiducial" and fid.name == "F" and len(fid.control_points) == 1
    np.testing.assert_allclose(fid.positions[0], [-137.232, 0, 85.9229])
    [ruler] = napari_medio.read(fixture_file("markups/M.acsv"))
    assert ruler.type == "Line" and len(ruler.control_points) == 2
    np.testing.assert_allclose(ruler.positions[0], [-173.431, -158.55, 0])
    [roi] = napari_medio.read(fixture_file("markups/R.acsv"))
    assert roi.type == "ROI"
    np.testing.assert_allclose(roi.center, [-164.232, 48.7013, 0])
    np.testing.assert_allclose(roi.size, [24.8918, 36.7966, 24.8918])
    [s4] = napari_medio.read(fixture_file("markups/slicer4.acsv"))
    np.testing.assert_allclose(s4.positions[0], [-64.2531, -3.69, 62.886])


def test_fcsv_round_trip_and_json_conversion(tmp_path):
    [f] = napari_medio.read(fixture_file("markups/slicerio_F_1.fcsv"))
    napari_medio.write(f, tmp_path / "f.fcsv")
    [g] = napari_medio.read(tmp_path / "f.fcsv")
    assert g.name == "f"  # .fcsv has no name field: the file name
    g.name = f.name
    _same(f, g)
    napari_medio.write(f, tmp_path / "f.mrk.json")
    _validate_file(tmp_path / "f.mrk.json")
    [h] = napari_medio.read(tmp_path / "f.mrk.json")
    np.testing.assert_array_equal(h.positions, f.positions)
    # RAS fcsv written back as RAS, with quoting of commas and quotes
    m = _all_types()[0]
    m.coordinate_system = "RAS"
    napari_medio.write(m, tmp_path / "r.fcsv")
    assert "# CoordinateSystem = RAS" in (tmp_path / "r.fcsv").read_text()
    [r] = napari_medio.read(tmp_path / "r.fcsv")
    assert [c.description for c in r.control_points] == [c.description for c in m.control_points]
    np.testing.assert_allclose(r.positions, m.positions, atol=1e-12)
    np.testing.assert_allclose(r.control_points[0].orientation, m.control_points[0].orientation, atol=1e-12)


def test_cli_info_and_convert(tmp_path):
    src = fixture_file("markups/L1.fcsv")
    out = subprocess.run([sys.executable, "-m", "napari_medio.cli", "info", "--json", str(src)],
                         capture_output=True, text=True, check=True)
    [info] = json.loads(out.stdout)
    assert info["kind"] == "markups" and info["type"] == "Fiducial" and info["coordinate_system"] == "LPS"
    assert info["file_coordinate_system"] == "RAS"  # as stored; the numbers printed are LPS
    assert info["points"][0]["label"] == "L1-P1"
    np.testing.assert_allclose(info["points"][0]["position"], [-43.3769, -23.1343, 0])
    for a, b in ((src, tmp_path / "l1.mkp.json"), (tmp_path / "l1.mkp.json", tmp_path / "l1.fcsv"),
                 (fixture_file("markups/R.acsv"), tmp_path / "r.mrk.json")):
        subprocess.run([sys.executable, "-m", "napari_medio.cli", "convert", str(a), str(b)], check=True,
                       capture_output=True)
    _validate_file(tmp_path / "l1.mkp.json")
    _validate_file(tmp_path / "r.mrk.json")
    [back] = napari_medio.read(tmp_path / "l1.fcsv")
    np.testing.assert_allclose(back.positions, napari_medio.read(src)[0].positions)


BAD_JSON = {
    "no_schema.mrk.json": '{"markups": [{"type": "Fiducial"}]}',
    "wrong_type.mrk.json": f'{{"@schema": "{SCHEMA_URL}", "markups": [{{"type": "Banana"}}]}}',
    "bad_position.mrk.json": f'{{"@schema": "{SCHEMA_URL}", "markups": [{{"type": "Fiducial", "controlPoints": '
                             '[{"position": [1, 2]}]}]}',
    "syntax.mrk.json": f'{{"@schema": "{SCHEMA_URL}",\n "markups": [\n {{"type": "Fiducial",, }}]}}',
    "markups_no_schema.json": '{"markups": [{"type": "Fiducial"}]}',
}


@pytest.mark.parametrize("name", sorted(BAD_JSON))
def test_bad_json(tmp_path, name):
    p = tmp_path / name
    p.write_text(BAD_JSON[name])
    with pytest.raises(FormatError) as info:
        napari_medio.read(p)
    assert str(p) in str(info.value)
    if name == "syntax.mrk.json":
        assert "line 3" in str(info.value)
    if name == "bad_position.mrk.json":
        assert "controlPoints[0].position" in str(info.value)


@pytest.mark.parametrize("name, content", [("other.json", '{"hello": "world"}'), ("array.json", "[1, 2, 3]")])
def test_other_json_is_text_not_markups(tmp_path, name, content):
    """JSON that no format claims opens as read-only text, never as markups."""
    from napari_medio.core.text import Text

    p = tmp_path / name
    p.write_text(content)
    [t] = napari_medio.read(p)
    assert isinstance(t, Text) and t.syntax == "json" and t.parsed == json.loads(content)


def test_bad_markup_files(tmp_path):
    good = tmp_path / "good.mrk.json"
    napari_medio.write(_all_types()[0], good)
    assert_rejected(variants(tmp_path, good, ".mrk.json", cuts=(-3,)))
    assert_rejected(variants(tmp_path, fixture_file("markups/slicerio_F_1.fcsv"), ".fcsv"))
    assert_rejected(variants(tmp_path, fixture_file("markups/F.acsv"), ".acsv"))
    p = tmp_path / "cols.fcsv"
    p.write_text("# Markups fiducial file version = 5.8\n# CoordinateSystem = LPS\n1,2,3,4\n1,2,x,4\n")
    with pytest.raises(FormatError, match="line 4"):
        napari_medio.read(p)
    p.write_text("# Markups fiducial file version = 5.8\n# CoordinateSystem = XYZ\n1,2,3,4\n")
    with pytest.raises(FormatError, match="CoordinateSystem"):
        napari_medio.read(p)


def test_schema_is_slicers():
    s = schema()
    assert s["$id"].endswith("markups-v1.0.3-schema.json#")
    with pytest.raises(jsonschema.ValidationError):
        validate({"@schema": SCHEMA_URL, "markups": [{"type": "Nope"}]})
    validate(markups_to_json(_all_types()[-1]))


def test_curve_interpolation_passes_through_control_points():
    m = _all_types()[3]
    c = m.curve_points(10)
    assert len(c) == 31
    np.testing.assert_allclose(c[::10], m.positions, atol=1e-9)
    closed = _all_types()[4]
    cc = closed.curve_points(10)
    assert len(cc) == 40
    np.testing.assert_allclose(cc[::10], closed.positions, atol=1e-9)
    assert m.measure()["length"] > np.linalg.norm(np.diff(m.positions, axis=0), axis=1).sum() - 1e-9
    angle = _all_types()[2]
    assert 0 < angle.measure()["angle"] < 180

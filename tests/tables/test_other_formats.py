"""Issue 7 "Other": .vp.json, .sp, terminology, read-only text, and loose text sniffs that never steal files."""
from __future__ import annotations

import json
import subprocess
import sys

import jsonschema
import numpy as np
import pytest

import napari_medio
from napari_medio.core.errors import FormatError, UnsupportedFormatError
from napari_medio.core.geometry import Geometry
from napari_medio.core.shader import ShaderProperty
from napari_medio.core.terminology import Terminology
from napari_medio.core.text import Text
from napari_medio.core.volume import Volume
from napari_medio.formats.volume_property import VolumeProperty, vp_json_schema
from tests.conftest import fixture_file

TERM = "other/terminology/SegmentationCategoryTypeModifier-SlicerGeneralAnatomy.json"


def _validate_vp(path):
    schema = json.loads(fixture_file("other/schemas/volume-property-schema-v1.0.0.json").read_text())
    assert schema == vp_json_schema()  # the shipped copy is the fixture's
    jsonschema.Draft7Validator(schema).validate(json.loads(path.read_text()))


# -- .vp.json ----------------------------------------------------------------------------------
def test_vp_json_from_vp_fixture_round_trip(tmp_path):
    [vp] = napari_medio.read(fixture_file("other/VolumeProperty.vp"))
    out = tmp_path / "v.vp.json"
    napari_medio.write(vp, out)
    _validate_vp(out)
    doc = json.loads(out.read_text())
    assert doc["@schema"].endswith("volume-property-schema-v1.0.0.json#")
    comp = doc["volumeProperties"][0]["components"][0]
    assert comp["lighting"] == {"diffuse": 0.42, "ambient": 0.44, "specular": 0.46, "specularPower": 38.5}
    assert comp["shade"] is True and comp["scalarOpacity"]["type"] == "piecewiseLinearFunction"
    assert comp["rgbTransferFunction"]["points"][0] == {"x": -17.0, "color": [1.0, 0.0, 0.498039215686275],
                                                         "midpoint": 0.5, "sharpness": 0.0}
    [back] = napari_medio.read(out)
    assert isinstance(back, VolumeProperty)
    for f in ("interpolation", "shade", "diffuse", "ambient", "specular", "specular_power"):
        assert getattr(back, f) == getattr(vp, f), f
    for f in ("scalar_opacity", "gradient_opacity", "color"):
        np.testing.assert_array_equal(getattr(back, f), getattr(vp, f))
    napari_medio.write(back, tmp_path / "again.vp.json")
    assert (tmp_path / "again.vp.json").read_text() == out.read_text()
    napari_medio.write(back, tmp_path / "legacy.vp")  # and back to the legacy text
    assert (tmp_path / "legacy.vp").read_text().splitlines()[6] == "8 -17 0 13 0 103 1 235 1"
    s = back.napari_settings()
    assert s["contrast_limits"] == [-17.0, 235.0] and s["shading"] == "flat"


def _full_doc():
    pt = {"x": 0.0, "y": 0.0, "midpoint": 0.25, "sharpness": 0.5}
    comp = {"componentWeight": 0.5, "shade": False,
            "lighting": {"diffuse": 0.7, "ambient": 0.1, "specular": 0.2, "specularPower": 10.0},
            "disableGradientOpacity": True, "scalarOpacityUnitDistance": 2.5,
            "rgbTransferFunction": {"type": "colorTransferFunction", "points": [
                {"x": 0.0, "color": [0.0, 0.0, 0.0], "midpoint": 0.5, "sharpness": 0.0},
                {"x": 100.0, "color": [1.0, 0.5, 0.25], "midpoint": 0.3, "sharpness": 1.0}]},
            "scalarOpacity": {"type": "piecewiseLinearFunction", "points": [pt, {"x": 100.0, "y": 0.8,
                                                                               "midpoint": 0.5, "sharpness": 0.0}]},
            "gradientOpacity": {"type": "piecewiseLinearFunction", "points": [
                {"x": 0.0, "y": 1.0, "midpoint": 0.5, "sharpness": 0.0}]},
            "myComponentKey": [1, 2]}
    prop = {"effectiveRange": [-10.0, 110.0], "isoSurfaceValues": [50.0], "independentComponents": True,
            "interpolationType": "cubic", "useClippedVoxelIntensity": True, "clippedVoxelIntensity": -1000.0,
            "scatteringAnisotropy": 0.25, "components": [comp, json.loads(json.dumps(comp))],
            "myPropertyKey": "kept"}
    return {"@schema": "https://raw.githubusercontent.com/slicer/slicer/main/Modules/Loadable/VolumeRendering/"
                       "Resources/Schema/volume-property-schema-v1.0.0.json#", "volumeProperties": [prop]}


def test_vp_json_every_field_round_trips(tmp_path):
    src = tmp_path / "full.vp.json"
    src.write_text(json.dumps(_full_doc(), indent=1))
    [vp] = napari_medio.read(src)
    assert vp.interpolation == 2 and vp.effective_range == (-10.0, 110.0) and vp.iso_surface_values == [50.0]
    assert vp.use_clipped_voxel_intensity and vp.clipped_voxel_intensity == -1000.0
    assert vp.component_weight == 0.5 and vp.disable_gradient_opacity and vp.scalar_opacity_unit_distance == 2.5
    np.testing.assert_array_equal(vp.midpoints["scalar_opacity"][0], [0.25, 0.5])
    out = tmp_path / "out.vp.json"
    napari_medio.write(vp, out)
    _validate_vp(out)
    assert json.loads(out.read_text()) == _full_doc()  # nothing lost, unknown keys and component 1 included
    assert napari_medio.read(out)[0].info()["effective_range"] == [-10.0, 110.0]


def test_vp_json_plain_json_name_and_several_properties(tmp_path):
    doc = _full_doc()
    doc["volumeProperties"].append(json.loads(json.dumps(doc["volumeProperties"][0])))
    p = tmp_path / "two.json"  # no .vp.json: the @schema decides
    p.write_text(json.dumps(doc))
    vps = napari_medio.read(p)
    assert [type(v) for v in vps] == [VolumeProperty, VolumeProperty] and vps[1].name == "two_1"


BAD_VP = {
    "syntax.vp.json": ('{"@schema": "x/volume-property-schema-v1.0.0.json#",\n "volumeProperties": [,]}',
                       "line 2"),
    "noschema.vp.json": ('{"volumeProperties": []}', "@schema"),
    "otherschema.vp.json": ('{"@schema": "markups-schema-v1.0.3.json#", "volumeProperties": []}', "unsupported"),
    "empty_list.vp.json": ('{"@schema": "volume-property-schema-v1.0.0.json#", "volumeProperties": []}',
                           "volumeProperties"),
    "lighting.vp.json": ('{"@schema": "volume-property-schema-v1.0.0.json#", "volumeProperties": [{"components": '
                         '[{"lighting": {"ambient": 2, "diffuse": 0, "specular": 0, "specularPower": 1}}]}]}',
                         r"volumeProperties\[0\]\.components\[0\]\.lighting\.ambient"),
    "interp.vp.json": ('{"@schema": "volume-property-schema-v1.0.0.json#", "volumeProperties": '
                       '[{"interpolationType": "bicubic"}]}', r"volumeProperties\[0\]\.interpolationType"),
    "nopoints.vp.json": ('{"@schema": "volume-property-schema-v1.0.0.json#", "volumeProperties": [{"components": '
                         '[{"scalarOpacity": {"points": []}}]}]}', "no points"),
}


@pytest.mark.parametrize("name", sorted(BAD_VP))
def test_bad_vp_json(tmp_path, name):
    content, pattern = BAD_VP[name]
    p = tmp_path / name
    p.write_text(content)
    with pytest.raises(FormatError, match=pattern) as info:
        napari_medio.read(p)
    assert str(p) in str(info.value)


def test_volume_display_presets_fixture_is_not_a_volume_property(tmp_path):
    """MANIFEST: window/level presets (volumes-display-presets schema), not a .vp.json: shown as text."""
    src = fixture_file("other/VolumeDisplayPresets.json")
    [t] = napari_medio.read(src)
    assert isinstance(t, Text) and t.syntax == "json"
    assert list(t.parsed) == ["$schema", "volumeDisplayPresets"]
    assert t.parsed["$schema"].endswith("volumes-display-presets-schema-v1.0.1.json#")
    with pytest.raises(FormatError, match="@schema") as info:
        napari_medio.read(src, format="volume-property-json")
    assert str(src) in str(info.value)


# -- .sp ----------------------------------------------------------------------------------------
def _sp_doc():
    return {
        "VertexShaderCode": "",
        "FragmentShaderCode": "//VTK::System::Dec\nvoid main() {\n  gl_FragData[0] = vec4(1.0);\n}\n",
        "GeometryShaderCode": "",
        "VertexUniforms": [],
        "FragmentUniforms": [{"name": "threshold", "scalarType": "float", "tupleType": "Scalar",
                              "numberOfComponents": 1, "numberOfTuples": 1, "value": [0.5]},
                             {"name": "tint", "scalarType": "float", "tupleType": "Vector",
                              "numberOfComponents": 3, "numberOfTuples": 1, "value": [1.0, 0.0, 0.0]}],
        "GeometryUniforms": [],
        "ShaderReplacements": [{"ShaderType": "Fragment", "ReplacementSpec": "//VTK::Light::Impl",
                                "replaceFirst": True, "ReplacementValue": "//VTK::Light::Impl\n  x = 1;",
                                "replaceAll": False}],
        "SomethingNewer": {"kept": True},
    }


def test_shader_property_round_trip(tmp_path):
    src = tmp_path / "s.sp"
    src.write_text(json.dumps(_sp_doc(), indent=3))
    [sp] = napari_medio.read(src)
    assert isinstance(sp, ShaderProperty)
    assert sp.uniforms("Fragment")[1]["value"] == [1.0, 0.0, 0.0] and sp.code("Fragment").count("\n") == 4
    info = sp.info()
    assert info["kind"] == "shaderproperty" and info["fragment_uniforms"] == ["threshold", "tint"]
    assert info["n_replacements"] == 1 and json.dumps(info)
    out = tmp_path / "out.sp"
    napari_medio.write(sp, out)
    back = json.loads(out.read_text())
    assert back == _sp_doc() and list(back) == list(_sp_doc())  # field for field, in order
    assert napari_medio.read(out)[0].document == sp.document


@pytest.mark.parametrize("doc, pattern", [
    ({"FragmentShaderCode": 3}, "FragmentShaderCode"),
    ({"FragmentUniforms": {"a": 1}}, "FragmentUniforms: must be an array"),
    ({"FragmentUniforms": [{"value": [1]}]}, r"FragmentUniforms\[0\]\.name"),
    ({"VertexUniforms": [{"name": "a", "numberOfComponents": "three"}]}, r"VertexUniforms\[0\]\.numberOfComponents"),
    ({"ShaderReplacements": [{"replaceAll": "yes"}]}, r"ShaderReplacements\[0\]\.replaceAll"),
    ({"hello": 1}, "not a valid shader-property"),
])
def test_bad_shader_property(tmp_path, doc, pattern):
    p = tmp_path / "bad.sp"
    p.write_text(json.dumps(doc))
    with pytest.raises(FormatError, match=pattern) as info:
        napari_medio.read(p)
    assert str(p) in str(info.value)
    p.write_text('{"FragmentShaderCode": "x",\n\n "VertexUniforms": [}')
    with pytest.raises(FormatError, match="line 3"):
        napari_medio.read(p)


# -- terminology -------------------------------------------------------------------------------
def test_terminology_fixture():
    [t] = napari_medio.read(fixture_file(TERM))
    assert isinstance(t, Terminology) and t.context_type == "segmentation"
    assert t.context_name == "Segmentation category and type - 3D Slicer General Anatomy list"
    assert t.schema == "https://raw.githubusercontent.com/qiicr/dcmqi/master/doc/segment-context-schema.json#"
    assert [c.meaning for c in t.categories][:2] == ["Tissue", "Anatomical Structure"]
    tissue = t.categories[0]
    assert (tissue.scheme, tissue.value, tissue.extra["cid"]) == ("SCT", "85756007", "7051")
    first = tissue.types[0]
    assert (first.meaning, first.color, first.slicer_label, first.slicer_integer_label) == \
        ("Tissue", (128, 174, 128), "tissue", 1)
    assert tissue.types[1].meaning == "Artery" and tissue.types[1].color == (216, 101, 79)
    kidney = t.choice("Kidney")
    assert [m.meaning for m in kidney.type.modifiers] == ["Right", "Left"]  # file order
    left = t.choice("Kidney", "Left")
    assert left.terminology_entry() == (
        "Segmentation category and type - 3D Slicer General Anatomy list~SCT^123037004^Anatomical Structure~"
        "SCT^64033007^Kidney~SCT^7771000^Left~Anatomic codes - DICOM master list~^^~^^")
    assert left.name == "left kidney" and left.color == tuple(round(c / 255, 6) for c in left.type_modifier.color)
    assert t.choice("liver").name == "liver" and t.find("kidney")
    from napari_medio.core.segmentation import parse_terminology

    assert parse_terminology(left.terminology_entry())["type"]["meaning"] == "Kidney"


def test_terminology_info_cli_and_builtin(tmp_path):
    out = subprocess.run([sys.executable, "-m", "napari_medio.cli", "info", "--json", str(fixture_file(TERM))],
                         check=True, capture_output=True, text=True)
    [info] = json.loads(out.stdout)
    assert info["kind"] == "terminology" and info["n_categories"] == 5 and info["n_types"] == 199
    assert info["categories"][0]["types"][0]["recommendedDisplayRGBValue"] == [128, 174, 128]
    from napari_medio.formats.terminology import builtin_terminology

    assert builtin_terminology().n_types == 199
    copy = tmp_path / "x.term.json"
    [t] = napari_medio.read(fixture_file(TERM))
    napari_medio.write(t, copy)
    assert json.loads(copy.read_text()) == json.loads(fixture_file(TERM).read_text())


def test_anatomic_context(tmp_path):
    doc = {"AnatomicContextName": "Anatomic codes - DICOM master list",
           "@schema": "https://raw.githubusercontent.com/qiicr/dcmqi/master/doc/anatomic-context-schema.json#",
           "AnatomicCodes": {"AnatomicRegion": [
               {"CodingSchemeDesignator": "SCT", "CodeValue": "64033007", "CodeMeaning": "Kidney",
                "Modifier": [{"CodingSchemeDesignator": "SCT", "CodeValue": "7771000", "CodeMeaning": "Left"}]},
               {"CodingSchemeDesignator": "SCT", "CodeValue": "10200004", "CodeMeaning": "Liver"}]}}
    p = tmp_path / "AnatomicRegionAndModifier-DICOM-Master.json"
    p.write_text(json.dumps(doc))
    [a] = napari_medio.read(p)
    assert a.context_type == "anatomic" and [r.meaning for r in a.regions] == ["Kidney", "Liver"]
    assert a.region("kidney").modifiers[0].value == "7771000"
    info = a.info()
    assert info["n_regions"] == 2 and info["regions"][0]["modifiers"][0]["meaning"] == "Left"


@pytest.mark.parametrize("mutate, pattern", [
    (lambda d: d["SegmentationCodes"]["Category"][0]["Type"][1].pop("CodeValue"),
     r"SegmentationCodes\.Category\[0\]\.Type\[1\]\.CodeValue: missing"),
    (lambda d: d["SegmentationCodes"]["Category"][0]["Type"][0].__setitem__("recommendedDisplayRGBValue", [1, 2]),
     r"Category\[0\]\.Type\[0\]\.recommendedDisplayRGBValue"),
    (lambda d: d["SegmentationCodes"].__setitem__("Category", {}), r"SegmentationCodes\.Category: must be an array"),
    (lambda d: d.pop("SegmentationCodes"), "SegmentationCodes: missing"),
])
def test_bad_terminology(tmp_path, mutate, pattern):
    doc = json.loads(fixture_file(TERM).read_text())
    mutate(doc)
    p = tmp_path / "bad.term.json"
    p.write_text(json.dumps(doc))
    with pytest.raises(FormatError, match=pattern) as info:
        napari_medio.read(p)
    assert str(p) in str(info.value)


# -- text ---------------------------------------------------------------------------------------
def test_text_xml_json(tmp_path):
    (tmp_path / "notes.txt").write_text("line one\nline two\n")
    (tmp_path / "a.xml").write_text('<?xml version="1.0"?>\n<root><child/></root>\n')
    (tmp_path / "broken.xml").write_text("<root><child></root>\n")
    (tmp_path / "d.json").write_text('{"b": 1, "a": [1, 2]}')
    (tmp_path / "bad.json").write_text('{"b": 1,\n "a": }')
    [t] = napari_medio.read(tmp_path / "notes.txt")
    assert isinstance(t, Text) and t.n_lines == 2 and t.info()["kind"] == "text"
    [x] = napari_medio.read(tmp_path / "a.xml")
    assert x.syntax == "xml" and x.info()["root"] == "root"
    [bx] = napari_medio.read(tmp_path / "broken.xml")
    assert "line 1" in bx.metadata["warning"]
    [j] = napari_medio.read(tmp_path / "d.json")
    assert j.parsed == {"b": 1, "a": [1, 2]} and j.info()["top_level_keys"] == ["b", "a"] and '"a": [' in j.pretty()
    [bj] = napari_medio.read(tmp_path / "bad.json")
    assert bj.syntax == "text" and "line 2" in bj.metadata["warning"]
    (tmp_path / "bin.xml").write_bytes(b"<a>\x00\x01\x02\x03</a>" * 100)
    with pytest.raises(FormatError, match="bin.xml"):
        napari_medio.read(tmp_path / "bin.xml")


def test_plus_configuration_opens_as_text(tmp_path):
    """A PLUS toolkit configuration (.plus.xml) is shown as text, as Slicer's OpenIGTLink loads it (a text node)."""
    cfg = tmp_path / "PlusDeviceSet_Server_Sim.plus.xml"
    cfg.write_text(
        '<PlusConfiguration version="2.1">\n'
        '  <DataCollection StartupDelaySec="1.0">\n'
        '    <DeviceSet Name="Sim" Description="simulated tracker"/>\n'
        '    <Device Id="TrackerDevice" Type="FakeTracker" AcquisitionRate="50" Mode="Default">\n'
        '      <DataSources><DataSource Type="Tool" Id="Probe"/></DataSources>\n'
        '    </Device>\n'
        '  </DataCollection>\n'
        '  <CoordinateDefinitions>\n'
        '    <Transform From="Image" To="Probe" Matrix="1 0 0 0  0 1 0 0  0 0 1 0  0 0 0 1"/>\n'
        '  </CoordinateDefinitions>\n'
        '</PlusConfiguration>\n')
    [t] = napari_medio.read(cfg)
    assert isinstance(t, Text) and t.syntax == "xml" and t.info()["root"] == "PlusConfiguration"
    assert t.name == "PlusDeviceSet_Server_Sim" and 'Type="FakeTracker"' in t.text


def test_real_formats_keep_winning_over_text(tmp_path):
    assert type(napari_medio.read(fixture_file("transforms/affineTransform.txt"))[0]).__name__ == "Transform"
    assert type(napari_medio.read(fixture_file("colors/GenericAnatomyColors.txt"))[0]).__name__ == "ColorTable"
    assert isinstance(napari_medio.read(fixture_file(TERM))[0], Terminology)
    # a broken file of a real JSON format gets that format's error, not a text view
    p = tmp_path / "m.json"
    p.write_text('{"markups": [{"type": "Fiducial"}]}')
    with pytest.raises(FormatError):
        napari_medio.read(p)
    p = tmp_path / "broken.mrk.json"
    p.write_text('{"hello": 1}')
    with pytest.raises(FormatError):
        napari_medio.read(p)
    # text never picks a file by content: an unknown extension stays unsupported
    p = tmp_path / "notes.dat123"
    p.write_text("a,b\n1,2\n")
    with pytest.raises(UnsupportedFormatError):
        napari_medio.read(p)


@pytest.mark.parametrize("ext", [".csv", ".tsv", ".txt", ".json", ".xml", ".ctbl", ".label"])
def test_lying_extension_binary_goes_to_its_format(tmp_path, ext):
    """A NRRD or NIfTI named like a table / colour table / text file is read as the image it is."""
    vol = Volume(np.arange(24, dtype=np.int16).reshape(2, 3, 4), Geometry((1.0, 1.0, 2.0), (0.0, 0.0, 0.0), np.eye(3)))
    for real in (".nrrd", ".nii"):
        good = tmp_path / f"img{real}"
        napari_medio.write(vol, good, **({"compress": False} if real == ".nrrd" else {}))
        liar = tmp_path / f"img_{real[1:]}{ext}"
        liar.write_bytes(good.read_bytes())
        [back] = napari_medio.read(liar)
        assert isinstance(back, Volume), (real, ext, type(back))
        np.testing.assert_array_equal(np.asarray(back.array), vol.array)


def test_loose_text_formats_do_not_sniff_by_content():
    from napari_medio.core import registry

    loose = {f.name: f.content_sniff for f in registry.formats()
             if f.name in ("table", "colortable", "colortable-csv", "itksnap-labels", "volume-property", "text")}
    assert loose == dict.fromkeys(loose, False) and len(loose) == 6
    assert registry.get_format("text").priority < 0

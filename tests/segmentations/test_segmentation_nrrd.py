"""Slicer .seg.nrrd: conformance on the Slicer-written fixture, exact round trips, layers, bad input."""
from __future__ import annotations

import json
import subprocess
import sys

import nrrd
import numpy as np
import pytest

import napari_medio
from napari_medio.core import registry
from napari_medio.core.errors import FormatError, WriteError
from napari_medio.core.geometry import Geometry
from napari_medio.core.segmentation import Segment, Segmentation, parse_terminology
from napari_medio.core.volume import Volume
from tests.conftest import fixture_file
from tests.volumes import OBLIQUE_FLIPPED

FIXTURE = "segmentations/Segmentation.seg.nrrd"
MANIFEST = [  # (id, name, label, layer, color, terminology type meaning, colorAuto)
    ("Segment_1", "ribs", 1, 0, (0.992157, 0.909804, 0.619608), "Rib", True),
    ("Segment_2", "cervical vertebral column", 2, 0, (1, 1, 0.811765), "Cervical spine", True),
    ("Segment_3", "thoracic vertebral column", 3, 0, (0.886275, 0.792157, 0.52549), "Thoracic spine", True),
    ("Segment_4", "lumbar vertebral column", 4, 0, (0.831373, 0.737255, 0.4), "Lumbar spine", True),
    ("Segment_5", "right lung", 5, 0, (0.0862745, 0.772549, 0.278431), "Lung", False),
    ("Segment_6", "left lung", 6, 0, (0.772549, 0.0980392, 0.388235), "Lung", False),
    ("Segment_7", "tissue", 7, 0, (0.501961, 0.682353, 0.501961), "Tissue", True),
]


def _custom(header: dict) -> dict:
    return {k: v for k, v in header.items() if k.startswith(("Segment", "Segmentation_"))}


def test_fixture_conformance():
    path = fixture_file(FIXTURE)
    [seg] = napari_medio.read(path)
    assert isinstance(seg, Segmentation)
    assert seg.array.shape == (34, 128, 128) and seg.array.dtype == np.uint8
    assert np.allclose(seg.geometry.origin, [193.096, 216.396, -340.25], atol=1e-3)
    assert np.allclose(seg.geometry.spacing, [3.0469, 3.0469, 10.0], atol=1e-4)
    assert np.allclose(seg.geometry.direction, np.diag([-1.0, -1.0, 1.0]))
    assert len(seg.segments) == 7
    for s, (sid, name, label, layer, color, meaning, cauto) in zip(seg.segments, MANIFEST):
        assert (s.id, s.name, s.label_value, s.layer) == (sid, name, label, layer)
        assert np.allclose(s.color, color, atol=1e-7)
        assert s.color_auto_generated is cauto and s.name_auto_generated is True
        assert s.status == "inprogress"
        assert s.terminology.startswith("Segmentation category and type - 3D Slicer General Anatomy list~SCT^")
        assert parse_terminology(s.terminology)["type"]["meaning"] == meaning
        assert s.extent == (0, 124, 0, 127, 0, 33)
    assert seg.metadata["master_representation"] == "Binary labelmap"
    assert seg.metadata["contained_representations"] == ["Binary labelmap", "Closed surface"]
    assert seg.metadata["reference_image_extent_offset"] == [0, 0, 0]
    params = dict((p[0], p[1]) for p in seg.metadata["conversion_parameters"])
    assert len(params) == 12 and params["Smoothing factor"] == "-0.5"
    assert params["Reference image geometry"].startswith("3.0468759536743195;0;0;-193.0959930419922;")
    end_capping = [p for p in seg.metadata["conversion_parameters"] if p[0] == "End capping"][0]
    assert "\n0 = leave contours open" in end_capping[2]  # teem's "\n" escape decoded
    # Voxels exactly as pynrrd gives them.
    data, _ = nrrd.read(str(path))
    assert np.array_equal(seg.array, data.T)
    assert set(np.unique(seg.array)) == {0, 1, 2, 3, 4, 5, 6, 7}


def test_fixture_info_json():
    path = fixture_file(FIXTURE)
    out = subprocess.run([sys.executable, "-m", "napari_medio.cli", "info", "--json", str(path)],
                         capture_output=True, text=True, check=True)
    [info] = json.loads(out.stdout)
    assert info["kind"] == "segmentation" and info["shape"] == [34, 128, 128]
    assert info["spacing"][2] == pytest.approx(10.0)
    assert [s["name"] for s in info["segments"]] == [m[1] for m in MANIFEST]
    first = info["segments"][0]
    assert set(first) >= {"id", "name", "color", "label_value", "layer", "terminology"}
    assert first["color"] == pytest.approx([0.992157, 0.909804, 0.619608])
    assert first["terminology"].endswith("~Anatomic codes - DICOM master list~^^~^^")


def test_fixture_round_trip_exact(tmp_path):
    path = fixture_file(FIXTURE)
    [seg] = napari_medio.read(path)
    out = tmp_path / "out.seg.nrrd"
    napari_medio.write(seg, out)
    orig_h = nrrd.read_header(str(path))
    new_h = nrrd.read_header(str(out))
    assert set(_custom(orig_h)) == set(_custom(new_h))  # same field set as Slicer's file
    for k, v in _custom(orig_h).items():
        assert new_h[k] == v, k  # every field byte-identical
    for k in ("type", "dimension", "space", "kinds", "encoding"):
        assert new_h[k] == orig_h[k]
    assert np.allclose(new_h["space directions"], orig_h["space directions"], atol=1e-12)
    assert np.allclose(new_h["space origin"], orig_h["space origin"], atol=1e-12)
    [back] = napari_medio.read(out)
    assert np.array_equal(back.array, seg.array)
    assert [s.to_dict() for s in back.segments] == [s.to_dict() for s in seg.segments]
    assert back.metadata == seg.metadata
    # Custom fields alphabetical, as Slicer's std::map writes them.
    text = out.read_bytes().split(b"\n\n", 1)[0].decode()
    keys = [line.split(":=")[0] for line in text.splitlines() if ":=" in line]
    assert keys == sorted(keys)


def test_plain_nrrd_name_still_read_as_segmentation(tmp_path):
    path = fixture_file(FIXTURE)
    plain = tmp_path / "seg.nrrd"
    plain.write_bytes(path.read_bytes())
    assert registry.find_reader(plain).name == "segmentation-nrrd-plain"
    [seg] = napari_medio.read(plain)
    assert isinstance(seg, Segmentation) and len(seg.segments) == 7
    # A label-map NRRD stays a volume.
    lab = fixture_file("segmentations/dcmqi/liver_spine_seg.nrrd")
    [vol] = napari_medio.read(lab)
    assert isinstance(vol, Volume)


def _layered() -> Segmentation:
    arr = np.zeros((2, 5, 6, 7), np.uint8)
    arr[0, 1:3, 1:4, 2:5] = 1
    arr[0, 3:5, 0:2, 0:2] = 2
    arr[1, 2:4, 2:5, 3:6] = 1  # overlaps segment A
    segs = [
        Segment("A", "liver", 1, 0, (1.0, 0.0, 0.0), tags={"TerminologyEntry": "ctx~SCT^1^Cat~SCT^2^Liver~^^~~^^~^^"}),
        Segment("B", "spine", 2, 0, (0.0, 1.0, 0.0)),
        Segment("C", "tumour", 1, 1, (0.2, 0.3, 0.4), tags={"Segmentation.Status": "completed"}),
    ]
    return Segmentation(arr, OBLIQUE_FLIPPED, segs, name="layered")


def test_layered_round_trip(tmp_path):
    seg = _layered()
    out = tmp_path / "l.seg.nrrd"
    napari_medio.write(seg, out)
    h = nrrd.read_header(str(out))
    assert h["dimension"] == 4 and h["kinds"] == ["list", "domain", "domain", "domain"]
    assert list(h["sizes"]) == [2, 7, 6, 5]
    assert h["Segment2_Layer"] == "1" and h["Segment0_Extent"] == "2 4 1 3 1 2"
    assert h["Segmentation_ConversionParameters"] == ""
    assert h["Segment1_Tags"] == "" and h["Segment2_Tags"] == "Segmentation.Status:completed|"
    [back] = napari_medio.read(out)
    assert back.n_layers == 2 and np.array_equal(back.array, seg.array)
    assert back.geometry.almost_equal(seg.geometry, 1e-9)
    for a, b in zip(seg.segments, back.segments):
        assert (a.id, a.name, a.label_value, a.layer, a.tags) == (b.id, b.name, b.label_value, b.layer, b.tags)
        assert np.allclose(a.color, b.color)
    # Merged label map: the later segment wins the overlap, label values stay distinct.
    merged = back.labelmap()
    names = {v["name"] for v in merged.metadata["color_table"].values()}
    assert names == {"liver", "spine", "tumour"}
    assert len(np.unique(merged.array)) == 4


def test_nhdr_and_uncompressed(tmp_path):
    seg = _layered()
    out = tmp_path / "l.seg.nhdr"
    written = napari_medio.write(seg, out, compress=False)
    assert len(written) == 2 and (tmp_path / "l.raw").exists()
    [back] = napari_medio.read(out)
    assert np.array_equal(back.array, seg.array)


def test_compact_extent(tmp_path):
    arr = np.zeros((10, 12, 14), np.uint8)
    arr[3:6, 4:8, 5:9] = 1
    geom = Geometry([1.0, 2.0, 3.0], [10.0, 20.0, 30.0], np.eye(3))
    seg = Segmentation(arr, geom, [Segment("S1", "blob", 1)])
    out = tmp_path / "c.seg.nrrd"
    napari_medio.write(seg, out, crop_to_minimum_extent=True)
    h = nrrd.read_header(str(out))
    assert list(h["sizes"]) == [4, 4, 3]
    assert h["Segmentation_ReferenceImageExtentOffset"] == "5 4 3"
    assert h["Segment0_Extent"] == "0 3 0 3 0 2"
    [back] = napari_medio.read(out)
    # Same voxels at the same LPS positions.
    assert np.allclose(back.geometry.origin, geom.index_to_lps([5, 4, 3]))
    assert back.array.sum() == arr.sum()


def test_empty_segmentation_is_one_voxel(tmp_path):
    arr = np.zeros((4, 4, 4), np.uint8)
    seg = Segmentation(arr, Geometry.identity(), [Segment("S", "nothing", 1, extent=(0, -1, 0, -1, 0, -1))])
    out = tmp_path / "e.seg.nrrd"
    napari_medio.write(seg, out)
    h = nrrd.read_header(str(out))
    assert list(h["sizes"]) == [1, 1, 1] and h["Segment0_Extent"] == "0 -1 0 -1 0 -1"
    [back] = napari_medio.read(out)
    assert back.metadata.get("empty") and back.segments[0].name == "nothing"


def test_labelmap_to_seg_nrrd_and_back_to_nifti(tmp_path):
    arr = np.zeros((5, 6, 7), np.int16)
    arr[1:3, 1:3, 1:3] = 3
    arr[3:5, 3:5, 3:5] = 8
    vol = Volume(arr, OBLIQUE_FLIPPED, kind="labelmap", name="lab",
                 metadata={"color_table": {3: {"name": "kidney", "color": [0.1, 0.2, 0.3, 1.0]}}})
    out = tmp_path / "lab.seg.nrrd"
    napari_medio.write(vol, out)
    h = nrrd.read_header(str(out))
    assert h["type"] == "short" and h["Segment0_Name"] == "kidney" and h["Segment1_Name"] == "Segment_8"
    assert h["Segment0_NameAutoGenerated"] == "0" and h["Segment1_NameAutoGenerated"] == "1"
    [seg] = napari_medio.read(out)
    # Segmentation -> NIfTI label map through the registry's convert_to.
    nii = tmp_path / "lab.nii.gz"
    napari_medio.write(seg, nii)
    [back] = napari_medio.read(nii, labelmap=True)
    assert np.array_equal(np.asarray(back.array), arr)
    assert back.geometry.almost_equal(OBLIQUE_FLIPPED, 1e-5)


def test_cli_convert_seg_to_label_nrrd(tmp_path):
    path = fixture_file(FIXTURE)
    out = tmp_path / "ribs-label.nrrd"
    r = subprocess.run([sys.executable, "-m", "napari_medio.cli", "convert", str(path), str(out)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    [vol] = napari_medio.read(out)
    assert isinstance(vol, Volume) and vol.kind == "labelmap"
    assert "Segment0_ID" not in out.read_bytes()[:4000].decode("latin-1")
    [seg] = napari_medio.read(path)
    assert np.array_equal(np.asarray(vol.array), seg.array)


def test_slicerio_reads_what_we_write(tmp_path):
    slicerio = pytest.importorskip("slicerio")
    seg = _layered()
    out = tmp_path / "s.seg.nrrd"
    napari_medio.write(seg, out)
    s = slicerio.read_segmentation(str(out))
    assert [x["name"] for x in s["segments"]] == ["liver", "spine", "tumour"]
    assert [x["labelValue"] for x in s["segments"]] == [1, 2, 1]
    assert [x["layer"] for x in s["segments"]] == [0, 0, 1]
    assert s["segments"][0]["terminology"]["type"] == ["SCT", "2", "Liver"]
    assert np.array_equal(s["voxels"].transpose(0, 3, 2, 1), seg.array)
    assert np.allclose(s["ijkToLPS"], seg.geometry.index_to_lps_matrix(), atol=1e-12)


# -- bad input ----------------------------------------------------------------------------------
def _header(extra: str, sizes="2 2 2", dim=3, kinds="domain domain domain") -> bytes:
    return (f"NRRD0004\ntype: unsigned char\ndimension: {dim}\nspace: left-posterior-superior\nsizes: {sizes}\n"
            f"space directions: (1,0,0) (0,1,0) (0,0,1)\nkinds: {kinds}\nencoding: raw\nspace origin: (0,0,0)\n"
            f"{extra}\n").encode()


def test_bad_fields(tmp_path):
    data = bytes([0, 1, 1, 0, 0, 0, 0, 1])
    cases = {
        "layer": "Segment0_ID:=a\nSegment0_LabelValue:=1\nSegment0_Layer:=3\n",
        "dup": "Segment0_ID:=a\nSegment0_LabelValue:=1\nSegment1_ID:=a\nSegment1_LabelValue:=1\n",
        "gap": "Segment0_ID:=a\nSegment0_LabelValue:=1\nSegment2_ID:=b\n",
        "badint": "Segment0_ID:=a\nSegment0_LabelValue:=one\n",
        "extent": "Segment0_ID:=a\nSegment0_LabelValue:=1\nSegment0_Extent:=0 1 2\n",
    }
    for name, extra in cases.items():
        p = tmp_path / f"{name}.seg.nrrd"
        p.write_bytes(_header(extra) + data)
        with pytest.raises(FormatError) as err:
            napari_medio.read(p)
        assert str(p) in str(err.value)


def test_missing_label_value_warns_or_fails(tmp_path):
    p = tmp_path / "m.seg.nrrd"
    p.write_bytes(_header("Segment0_ID:=a\nSegment0_LabelValue:=1\nSegment1_ID:=b\nSegment1_LabelValue:=5\n")
                  + bytes([0, 1, 1, 0, 0, 0, 0, 1]))
    with pytest.warns(UserWarning, match="label value 5 is not in the data"):
        napari_medio.read(p)
    with pytest.raises(FormatError, match="label value 5"):
        napari_medio.read(p, strict=True)


@pytest.mark.parametrize("content", [b"", b"NRRD0004\n", b"\x00\xff" * 300, b"NRRD0004\ntype: uchar\n"])
def test_garbage(tmp_path, content):
    p = tmp_path / "g.seg.nrrd"
    p.write_bytes(content)
    with pytest.raises(FormatError):
        napari_medio.read(p)


def test_truncated(tmp_path):
    src = fixture_file(FIXTURE).read_bytes()
    p = tmp_path / "t.seg.nrrd"
    p.write_bytes(src[: len(src) - 500])
    with pytest.raises(FormatError):
        napari_medio.read(p)
    p.write_bytes(src[:3000])
    with pytest.raises(FormatError):
        napari_medio.read(p)


def test_failed_write_keeps_previous_file(tmp_path):
    out = tmp_path / "keep.seg.nrrd"
    seg = _layered()
    napari_medio.write(seg, out)
    before = out.read_bytes()
    bad = Segmentation(seg.array, seg.geometry, [Segment("A", "x", 1, 0), Segment("A", "y", 2, 0)])
    with pytest.raises(WriteError):
        napari_medio.write(bad, out)
    assert out.read_bytes() == before
    float_vol = Volume(np.random.default_rng(0).normal(size=(3, 3, 3)), Geometry.identity(), kind="labelmap")
    with pytest.raises(WriteError):
        napari_medio.write(float_vol, out)
    assert out.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["keep.seg.nrrd"]

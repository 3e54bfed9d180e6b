"""OsiriX ROI JSON and sliceOmatic .tag readers, on small files built from their documented structure."""
from __future__ import annotations

import json

import numpy as np
import pytest

import napari_medio
from napari_medio.core.errors import FormatError
from napari_medio.core.geometry import Geometry
from napari_medio.core.registry import find_reader
from napari_medio.core.volume import Volume

# -- OsiriX ------------------------------------------------------------------------------------
GEOM = Geometry([1.0, 1.0, 2.0], [-10.0, -20.0, 30.0], np.eye(3))
SHAPE = (6, 20, 20)  # (k, j, i)


def _square(i0, i1, j0, j1, k):
    """LPS corners of an axial square through voxel-index corners (i0..i1, j0..j1) on slice k."""
    ij = [(i0, j0), (i1, j0), (i1, j1), (i0, j1)]
    return [GEOM.index_to_lps([i, j, k]) for i, j in ij]


def _list_doc():
    def contour(name, pts, sl):
        return {"Name": name, "Slice": sl,
                "ROI3DPoints": [f"[{p[0]:.6f},{p[1]:.6f},{p[2]:.6f}]" for p in pts],
                "ROIPoints": [f"[{p[0]:.6f},{p[1]:.6f}]" for p in pts],
                "DataSummary": {"Type": "Closed Polygon", "Mean": 1.5}, "DataValues": [1, 2]}

    return [
        contour("liver", _square(2.5, 8.5, 3.5, 9.5, 2), 2),  # voxels i 3..8, j 4..9
        contour("liver", _square(4.5, 6.5, 5.5, 7.5, 2), 2),  # a hole inside it (even-odd)
        contour("liver", _square(2.5, 5.5, 3.5, 6.5, 3), 3),
        contour("tumour", _square(5.5, 7.5, 5.5, 7.5, 3), 3),  # overlaps nothing on slice 3? (liver 3..5) no
        contour("tumour", _square(3.5, 4.5, 4.5, 5.5, 3), 3),  # overlaps liver on slice 3 -> second layer
    ]


def _images_doc():
    pts = _square(10.5, 14.5, 10.5, 12.5, 4)
    return {"Images": [{"ImageIndex": 4, "ImageWidth": 20, "ImageHeight": 20, "NumberOfROIs": 1,
                        "ROIs": [{"Name": "Head", "Type": 11, "NumberOfPoints": 4,
                                  "Point_mm": [f"({p[0]:.6f}, {p[1]:.6f}, {p[2]:.6f})" for p in pts],
                                  "Point_px": ["(1.0, 2.0)"] * 4, "Point_value": [1, 2],
                                  "SOPInstanceUID": "1.2.3"}]}]}


@pytest.fixture
def osirix_list(tmp_path):
    p = tmp_path / "rois.json"
    p.write_text(json.dumps(_list_doc(), indent=2))
    return p


def test_osirix_list_as_markups(osirix_list):
    assert find_reader(osirix_list).name == "osirix-roi"
    curves = napari_medio.read(osirix_list)
    assert [c.name for c in curves] == ["liver", "liver", "liver", "tumour", "tumour"]
    c = curves[0]
    assert c.type == "ClosedCurve" and c.curve_type == "linear"
    assert np.allclose(c.positions, np.array(_square(2.5, 8.5, 3.5, 9.5, 2)), atol=1e-6)  # LPS kept
    assert c.metadata["osirix"]["Slice"] == 2 and c.metadata["osirix"]["DataSummary"]["Type"] == "Closed Polygon"


def test_osirix_contours_model(osirix_list):
    models = napari_medio.read(osirix_list, output="contours")
    assert [m.name for m in models] == ["liver", "tumour"]
    liver = models[0]
    assert liver.n_cells == 3 and liver.n_points == 12 and set(liver.cell_types.tolist()) == {4}
    first = liver.connectivity[liver.offsets[0]:liver.offsets[1]]
    assert first.tolist() == [0, 1, 2, 3, 0]  # closed poly-line


def test_osirix_rasterised_on_reference(osirix_list, tmp_path):
    ref = Volume(np.zeros(SHAPE, np.int16), GEOM, name="ref")
    ref_path = tmp_path / "ref.nrrd"
    napari_medio.write(ref, ref_path)
    for reference in (ref, ref_path):
        [seg] = napari_medio.read(osirix_list, reference=reference)
        assert seg.kind == "segmentation" and seg.spatial_shape == SHAPE
        assert [s.name for s in seg.segments] == ["liver", "tumour"]
        liver, tumour = seg.segments
        assert seg.n_layers == 2 and liver.layer == 0 and tumour.layer == 1
        m = seg.mask("liver")
        expect = np.zeros(SHAPE, bool)
        expect[2, 4:10, 3:9] = True
        expect[2, 6:8, 5:7] = False  # the hole
        expect[3, 4:7, 3:6] = True
        assert np.array_equal(m, expect)
        t = seg.mask("tumour")
        assert t[3, 6:8, 6:8].all() and t[3, 5, 4] and t.sum() == 5


def test_osirix_images_layout(tmp_path):
    p = tmp_path / "export.json"
    p.write_text(json.dumps(_images_doc()))
    [c] = napari_medio.read(p)
    assert c.name == "Head" and c.metadata["osirix"]["SOPInstanceUID"] == "1.2.3"
    assert c.metadata["osirix"]["Slice"] == 4
    [seg] = napari_medio.read(p, reference=Volume(np.zeros(SHAPE, np.int16), GEOM))
    expect = np.zeros(SHAPE, bool)
    expect[4, 11:13, 11:15] = True
    assert np.array_equal(seg.mask("Head"), expect)


def test_other_json_is_not_osirix(tmp_path):
    p = tmp_path / "plain.json"
    p.write_text(json.dumps([{"Name": "x", "value": 1}]))
    assert find_reader(p).name != "osirix-roi"
    q = tmp_path / "images.json"
    q.write_text(json.dumps({"Images": ["a.png"]}))
    assert find_reader(q).name != "osirix-roi"


@pytest.mark.parametrize("doc, why", [
    ([{"Name": "a", "ROI3DPoints": ["[1,2]", "[3,4,5]", "[6,7,8]"]}], "three finite numbers"),
    ([{"Name": "a", "ROI3DPoints": "nope"}], "list of points"),
    ([{"Name": "a", "ROI3DPoints": ["[1,2,3]"]}], "3 or more points"),
    ({"Images": [{"ROIs": [{"Name": "a"}]}]}, "Point_mm"),
])
def test_osirix_bad_input(tmp_path, doc, why):
    p = tmp_path / "bad.json"
    p.write_text(json.dumps(doc))
    with pytest.raises(FormatError, match=why) as exc:
        with pytest.warns(UserWarning) if "3 or more" in why else _nothing():
            napari_medio.read(p, format="osirix-roi")
    assert str(p) in str(exc.value)


def test_osirix_truncated_json(tmp_path, osirix_list):
    p = tmp_path / "cut.json"
    p.write_bytes(osirix_list.read_bytes()[:300])
    with pytest.raises(FormatError, match="not valid JSON") as exc:
        napari_medio.read(p, format="osirix-roi")
    assert str(p) in str(exc.value)


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


# -- sliceOmatic ---------------------------------------------------------------------------------
def _tag_bytes(arr: np.ndarray, **fields) -> bytes:
    nz, ny, nx = arr.shape
    head = {"x": nx, "y": ny, "z": nz, "type": "BYTE", "org_x": "-175.1475", "org_y": "-339.6475",
            "org_z": "-166.8000", "inc_x": "0.7051", "inc_y": "0.7051", "epais": "1.5000",
            "dir_h_x": "1.0000", "dir_h_y": "0.0000", "dir_h_z": "0.0000",
            "dir_v_x": "0.0000", "dir_v_y": "0.0000", "dir_v_z": "-1.0000", "uid": "EE9DCED7", "chksum": "09E62542"}
    head.update(fields)
    text = "  ".join(f"{k}:{v}" for k, v in head.items() if v is not None) + " \n"
    return text.encode() + b"\x0c" + arr.astype(np.uint8).tobytes()


def test_sliceomatic_tag(tmp_path):
    arr = np.zeros((3, 5, 7), np.uint8)
    arr[1, 1:4, 2:5] = 1
    arr[2, 0, 0] = 3
    p = tmp_path / "scan.dcm.tag"
    p.write_bytes(_tag_bytes(arr))
    assert find_reader(p).name == "sliceomatic-tag"
    [seg] = napari_medio.read(p)
    assert seg.kind == "segmentation" and seg.name == "scan.dcm"
    assert np.array_equal(seg.array, arr)  # x fastest, first row first
    assert [(s.name, s.label_value) for s in seg.segments] == [("Tag_1", 1), ("Tag_3", 3)]
    g = seg.geometry
    assert np.allclose(g.spacing, [0.7051, 0.7051, 1.5])
    assert np.allclose(g.origin, [-175.1475, -339.6475, -166.8])
    # columns: row direction, column direction, their cross product (a coronal grid here)
    assert np.allclose(g.direction, [[1, 0, 0], [0, 0, 1], [0, -1, 0]])
    assert seg.metadata["sliceomatic"]["uid"] == "EE9DCED7"
    out = tmp_path / "scan.seg.nrrd"
    napari_medio.write(seg, out)
    [back] = napari_medio.read(out)
    assert np.array_equal(back.array, arr) and [s.name for s in back.segments] == ["Tag_1", "Tag_3"]


@pytest.mark.parametrize("mutate, why", [
    (lambda b: b[:-5], "truncated"),
    (lambda b: b.replace(b"\x0c", b" "), "form feed"),
    (lambda b: b.replace(b"x:7", b"x:0"), "positive"),
    (lambda b: b.replace(b"org_x:-175.1475", b"org_x:abc"), "not a number"),
    (lambda b: b.replace(b"x:7  ", b""), "dimension"),
    (lambda b: b.replace(b"type:BYTE", b"typeBYTE"), "name:value"),
])
def test_sliceomatic_bad_input(tmp_path, mutate, why):
    arr = np.zeros((3, 5, 7), np.uint8)
    p = tmp_path / "bad.tag"
    p.write_bytes(mutate(_tag_bytes(arr)))
    with pytest.raises(FormatError, match=why) as exc:
        napari_medio.read(p, format="sliceomatic-tag")
    assert str(p) in str(exc.value)

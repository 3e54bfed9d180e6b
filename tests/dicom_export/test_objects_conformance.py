"""Conformance of the SEG / RT / SR readers on tests/data/dicom (MANIFEST.md values), and bad input."""
from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

from napari_medio.core import registry
from napari_medio.core.errors import FormatError
from napari_medio.core.segmentation import Segmentation
from napari_medio.dicom.objects import read_object
from napari_medio.dicom.rt import (
    RTStructureSet,
    describe_rtplan,
    rasterize_rtstruct,
    read_rtdose,
    read_rtstruct,
    read_sr_measurements,
)
from napari_medio.dicom.seg import read_seg, read_seg_segmentation
from tests.conftest import fixture_file


def test_dcmqi_liver_seg_matches_manifest_and_source_nrrd():
    seg = read_seg_segmentation(fixture_file("dicom/dcmqi_ct3slice_liver/liver_seg.dcm"))
    assert [s.name for s in seg.segments] == ["Liver"]
    assert seg.spatial_shape == (3, 512, 512)
    np.testing.assert_allclose(seg.geometry.spacing, [0.8105, 0.8105, 1.0], atol=1e-4)
    np.testing.assert_allclose(seg.geometry.origin, [-235.2, -226.8, -128.69], atol=1e-3)
    np.testing.assert_allclose(seg.geometry.direction, np.eye(3), atol=1e-6)
    assert "T-62000^Liver" in seg.segments[0].terminology
    assert seg.segments[0].tags["DicomSegmentAlgorithmType"] == "SEMIAUTOMATIC"
    nrrd = registry.read(fixture_file("dicom/dcmqi_ct3slice_liver/liver_seg.nrrd"))[0]
    assert seg.geometry.almost_equal(nrrd.geometry, 1e-3)
    np.testing.assert_array_equal(np.asarray(seg.array) > 0, np.asarray(nrrd.array) > 0)


def test_seg_aligned_to_reference_series():
    image = fixture_file("dicom/dcmqi_ct3slice_liver/image")
    vols = read_seg(fixture_file("dicom/dcmqi_ct3slice_liver/liver_seg.dcm"), image)
    from napari_medio.dicom.series import read_dicom_path

    ct = read_dicom_path(image)[0]
    assert vols[0].geometry.almost_equal(ct.geometry, 1e-3)
    assert vols[0].spatial_shape == ct.spatial_shape
    table = vols[0].metadata["color_table"]
    assert table[1]["name"] == "Liver" and len(table[1]["color"]) == 4


def test_highdicom_seg_matches_manifest():
    seg = read_seg_segmentation(fixture_file("dicom/highdicom/seg_image_ct_binary.dcm"))
    assert [s.name for s in seg.segments] == ["first segment"]
    assert seg.spatial_shape == (3, 16, 16)
    np.testing.assert_allclose(seg.geometry.spacing, [0.4883, 0.4883, 1.25], atol=1e-4)
    np.testing.assert_allclose(seg.geometry.origin, [-125.0, -128.1, 103.02], atol=1e-3)
    assert seg.metadata["dicom"]["SegmentationType"] == "BINARY"
    objs = registry.read(fixture_file("dicom/highdicom/seg_image_ct_binary.dcm"))
    assert len(objs) == 1 and isinstance(objs[0], Segmentation)


def test_rtdose_matches_manifest():
    dose = read_rtdose(fixture_file("dicom/pydicom/rtdose.dcm"))
    assert dose.spatial_shape == (15, 10, 10)
    np.testing.assert_allclose(dose.geometry.origin, [189.43125, 199.43125, -761.87], atol=1e-4)
    np.testing.assert_allclose(dose.geometry.spacing, [10, 10, 5], atol=1e-6)
    assert dose.metadata["DoseGridScaling"] == pytest.approx(1e-6)
    assert dose.metadata["GridFrameOffsetVector"][:3] == [0, 5, 10]
    import pydicom

    raw = pydicom.dcmread(fixture_file("dicom/pydicom/rtdose.dcm")).pixel_array
    np.testing.assert_allclose(dose.to_numpy(), raw * 1e-6, rtol=1e-6)
    # the series reader gives the same dose grid
    same = registry.read(fixture_file("dicom/pydicom/rtdose.dcm"))[0]
    assert same.geometry.almost_equal(dose.geometry, 1e-4)
    np.testing.assert_allclose(np.asarray(same.array), dose.to_numpy(), rtol=1e-5)


def test_rtstruct_matches_manifest():
    rs = read_rtstruct(fixture_file("dicom/pydicom/rtstruct.dcm"))
    assert [(r.number, r.name) for r in rs.rois] == [(1, "patient"), (2, "Isocenter 1"), (3, "Isocenter 2")]
    assert len(rs.rois[0].contours) == 3
    assert rs.rois[1].contour_types == ["POINT"]
    np.testing.assert_allclose(rs.rois[0].color, np.array([220, 160, 120]) / 255, atol=1e-6)
    seg = rasterize_rtstruct(rs)
    assert [s.name for s in seg.segments] == ["patient"]
    mask = seg.mask("patient")
    assert mask.sum() > 0
    # every voxel centre strictly inside a contour is filled on its slice
    k_of_z = {round(float(seg.geometry.index_to_lps([0, 0, k])[2]), 3): k for k in range(seg.spatial_shape[0])}
    for c in rs.rois[0].contours:
        k = k_of_z[round(float(c[0, 2]), 3)]
        inside = seg.geometry.lps_to_index((c.min(axis=0) + c.max(axis=0)) / 2)
        assert mask[k, int(round(inside[1])), int(round(inside[0]))]
    objs = registry.read(fixture_file("dicom/pydicom/rtstruct.dcm"))
    assert isinstance(objs[0], Segmentation) and isinstance(objs[1], RTStructureSet)


def test_rtstruct_on_reference_grid():
    from napari_medio.core.geometry import Geometry

    rs = read_rtstruct(fixture_file("dicom/pydicom/rtstruct.dcm"))
    grid = Geometry([4.0, 4.0, 10.0], [-220.0, -170.0, -200.0], np.eye(3))
    seg = rasterize_rtstruct(rs, (grid, (3, 90, 110)))
    assert seg.spatial_shape == (3, 90, 110) and seg.geometry.almost_equal(grid)
    # rectangle x in [-200, 200], y in [-150, 150]: 101 x 76 voxel centres on each slice
    assert seg.mask("patient")[0].sum() == 101 * 76


def test_rtplan_listed_not_loaded():
    plan = describe_rtplan(fixture_file("dicom/pydicom/rtplan.dcm"))
    assert plan["label"] == "Plan1" and plan["fractions_planned"] == 30 and len(plan["beams"]) == 1
    with pytest.raises(FormatError, match="RT Plan"):
        registry.read(fixture_file("dicom/pydicom/rtplan.dcm"))


def test_sr_measurements_table():
    t = read_sr_measurements(fixture_file("dicom/highdicom/sr_document.dcm"))
    assert t.n_rows == 1
    row = dict(zip(t.columns, t.rows[0]))
    assert row["measurement"] == "Area of defined region" and row["unit"] == "cm2"
    assert t.column("value") == [1.7]
    assert row["finding"] == "Spinal cord" and row["group"] == "Planar ROI Measurements"


def test_plugin_layers_for_rtstruct():
    from napari_medio.plugin.layers import to_layer_data

    objs = registry.read(fixture_file("dicom/pydicom/rtstruct.dcm"))
    layers = [ld for o in objs for ld in to_layer_data(o)]
    kinds = [ld[2] for ld in layers]
    assert kinds == ["labels", "shapes", "points"]
    shapes = layers[1]
    assert len(shapes[0]) == 3 and shapes[1]["shape_type"] == ["polygon"] * 3
    np.testing.assert_allclose(shapes[0][0][0], [-200.0, 150.0, -200.0][::-1])


# -- bad input ------------------------------------------------------------------------------------------
READERS = [read_seg_segmentation, read_rtstruct, read_rtdose, read_sr_measurements, describe_rtplan, read_object]


def _bad_files(tmp_path):
    empty = tmp_path / "empty.dcm"
    empty.write_bytes(b"")
    rnd = tmp_path / "random.dcm"
    rnd.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    seg = fixture_file("dicom/dcmqi_ct3slice_liver/liver_seg.dcm").read_bytes()
    trunc = tmp_path / "truncated_seg.dcm"
    trunc.write_bytes(seg[: len(seg) // 2])
    rs = fixture_file("dicom/pydicom/rtstruct.dcm").read_bytes()
    trunc_rs = tmp_path / "truncated_rtstruct.dcm"
    trunc_rs.write_bytes(rs[: len(rs) // 3])
    wrong = tmp_path / "ct_named.seg.dcm"
    shutil.copy(fixture_file("dicom/pydicom/CT_small.dcm"), wrong)
    text = tmp_path / "notes.dcm"
    text.write_text("this is not DICOM\n" * 50)
    return [empty, rnd, trunc, trunc_rs, wrong, text]


@pytest.mark.parametrize("reader", READERS, ids=lambda r: r.__name__)
def test_bad_input_is_a_format_error_naming_the_file(tmp_path, reader):
    for f in _bad_files(tmp_path):
        if reader is read_rtstruct and f.name == "truncated_rtstruct.dcm":
            # a cut structure set may still hold whole ROIs: either a clear error or fewer contours
            try:
                reader(f)
            except FormatError as exc:
                assert os.fspath(f) in str(exc)
            continue
        with pytest.raises(FormatError) as info:
            reader(f)
        assert os.fspath(f) in str(info.value), (reader.__name__, f.name, str(info.value))


def test_registry_read_of_bad_seg_names_the_file(tmp_path):
    seg = fixture_file("dicom/dcmqi_ct3slice_liver/liver_seg.dcm").read_bytes()
    trunc = tmp_path / "cut.dcm"
    trunc.write_bytes(seg[: len(seg) - 20000])
    with pytest.raises(FormatError) as info:
        registry.read(trunc)
    assert os.fspath(trunc) in str(info.value)

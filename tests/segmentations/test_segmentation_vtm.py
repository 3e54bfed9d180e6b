"""Closed-surface segmentations (.seg.vtm): Slicer's layout, RAS points, segment fields per block."""
from __future__ import annotations

import numpy as np
import pytest

import napari_medio
from napari_medio.core.errors import FormatError
from napari_medio.core.model import Model
from napari_medio.core.segmentation import Segment, Segmentation
from tests.volumes import OBLIQUE_FLIPPED


def _seg() -> Segmentation:
    arr = np.zeros((10, 12, 14), np.uint8)
    arr[2:6, 3:8, 4:9] = 1
    arr[7:9, 8:10, 9:12] = 2
    term = "ctx~SCT^1^Cat~SCT^2^Liver~^^~~^^~^^"
    return Segmentation(arr, OBLIQUE_FLIPPED, [
        Segment("Segment_1", "liver", 1, color=(0.8, 0.1, 0.2), tags={"TerminologyEntry": term}),
        Segment("Segment_2", "spleen", 2, color=(0.1, 0.6, 0.3), name_auto_generated=True)], name="organs")


def test_write_read_seg_vtm(tmp_path):
    import vtk

    seg = _seg()
    out = tmp_path / "organs.seg.vtm"
    written = napari_medio.write(seg, out)
    assert (tmp_path / "organs.seg" / "organs.seg_0.vtp").exists() and len(written) == 3
    # Slicer's layout: RAS points and the segment fields in each block's field data.
    r = vtk.vtkXMLPolyDataReader()
    r.SetFileName(str(tmp_path / "organs.seg" / "organs.seg_1.vtp"))
    r.Update()
    fd = r.GetOutput().GetFieldData()
    assert fd.GetAbstractArray("Segment_Name").GetValue(0) == "spleen"
    assert fd.GetAbstractArray("Segmentation_MasterRepresentation").GetValue(0) == "Closed surface"
    assert np.allclose([fd.GetArray("Segment_Color").GetComponent(0, c) for c in range(3)], [0.1, 0.6, 0.3])
    models = napari_medio.read(out)
    assert [m.name for m in models] == ["liver", "spleen"]
    liver = models[0]
    assert liver.metadata["segment"]["terminology"] == seg.segments[0].terminology
    assert liver.metadata["segment"]["id"] == "Segment_1"
    idx = seg.geometry.lps_to_index(liver.points)  # LPS again after the RAS file
    assert np.allclose(idx.min(axis=0), [3.5, 2.5, 1.5], atol=1e-6)
    # Surfaces back to .vtm keep the fields.
    out2 = tmp_path / "again.vtm"
    napari_medio.write(models, out2)
    again = napari_medio.read(out2)
    assert [m.metadata["segment"]["name"] for m in again] == ["liver", "spleen"]
    assert np.allclose(again[1].points, models[1].points)


def test_bad_vtm(tmp_path):
    for content in (b"", b"garbage" * 20, b'<?xml version="1.0"?><VTKFile type="vtkMultiBlockDataSet">'):
        p = tmp_path / "bad.seg.vtm"
        p.write_bytes(content)
        with pytest.raises(FormatError):
            napari_medio.read(p)
    # A multiblock that is not a segmentation (no Segmentation_MasterRepresentation) is refused.
    m = Model.from_faces(np.eye(3), [[0, 1, 2]])
    import vtk

    from napari_medio.formats._vtkmesh import model_to_vtk

    mb = vtk.vtkMultiBlockDataSet()
    mb.SetBlock(0, model_to_vtk(m))
    w = vtk.vtkXMLMultiBlockDataWriter()
    w.SetInputData(mb)
    w.SetFileName(str(tmp_path / "plain.vtm"))
    w.Write()
    with pytest.raises(FormatError, match="MasterRepresentation"):
        napari_medio.read(tmp_path / "plain.vtm")

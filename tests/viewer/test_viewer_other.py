"""Real napari viewer: text dock, terminology naming saved to .seg.nrrd, .vp.json applied to an image layer."""
from __future__ import annotations

import json

import numpy as np
import pytest

import napari_medio
from tests.conftest import fixture_file

pytestmark = pytest.mark.viewer


def test_text_dock_shows_unclaimed_text(make_napari_viewer, tmp_path):
    from napari_medio.plugin.data_docks import TextDock
    from napari_medio.plugin.reader import get_reader

    viewer = make_napari_viewer()
    dock = TextDock(viewer)
    p = tmp_path / "notes.json"
    p.write_text('{"b": [1, 2]}')
    reader = get_reader(str(p))
    assert reader is not None and reader(str(p)) == [(None,)]  # no layer: the object goes to the dock
    assert '"b": [' in dock.text() and dock.documents.currentText() == "notes"
    sp = tmp_path / "s.sp"
    sp.write_text(json.dumps({"FragmentShaderCode": "void main() {}", "FragmentUniforms": []}))
    get_reader(str(sp))(str(sp))
    dock.documents.setCurrentText("s")
    assert "FragmentShaderCode" in dock.text() and "shader" in dock.status.text()


def test_terminology_names_label_and_seg_nrrd_keeps_it(make_napari_viewer, tmp_path):
    from napari_medio.plugin.terminology_widget import TerminologyDock, label_terminology
    from napari_medio.plugin.writer import write_labels

    viewer = make_napari_viewer()
    data = np.zeros((4, 5, 6), dtype=np.uint8)
    data[1:3, 1:3, 1:3] = 1
    data[2:4, 3:5, 3:6] = 2
    layer = viewer.add_labels(data, name="painted")
    dock = TerminologyDock(viewer)
    assert dock.terminologies.currentText() == "Slicer General Anatomy"
    dock.search.setText("kidney")
    dock.select("Kidney (Left)")
    assert dock.name.text() == "left kidney"
    dock.layer.setCurrentText("painted")
    dock.value.setValue(2)
    seg = dock.apply()
    entry = ("Segmentation category and type - 3D Slicer General Anatomy list~SCT^123037004^Anatomical Structure~"
             "SCT^64033007^Kidney~SCT^7771000^Left~Anatomic codes - DICOM master list~^^~^^")
    assert seg["tags"]["TerminologyEntry"] == entry and label_terminology(layer, 2) == entry
    assert list(layer.features["name"]) == ["background", "left kidney"]
    out = tmp_path / "named.seg.nrrd"
    write_labels(str(out), layer.data, layer._get_state())
    [back] = napari_medio.read(out)
    by_value = {s.label_value: s for s in back.segments}
    assert by_value[2].name == "left kidney" and by_value[2].terminology == entry
    assert not by_value[2].name_auto_generated
    np.testing.assert_allclose(by_value[2].color, seg["color"], atol=1e-5)
    assert by_value[1].terminology is None  # the unnamed label is still saved, as Slicer would name it
    # reading it back into napari and renaming keeps the other segment's fields
    [relayer] = viewer.open(out, plugin="napari-medio")
    from napari_medio.formats.terminology import builtin_terminology
    from napari_medio.plugin.terminology_widget import apply_terminology

    apply_terminology(relayer, 1, builtin_terminology().choice("Liver"))
    out2 = tmp_path / "renamed.seg.nrrd"
    write_labels(str(out2), relayer.data, relayer._get_state())
    [again] = napari_medio.read(out2)
    names = {s.label_value: (s.name, s.terminology) for s in again.segments}
    assert names[1][0] == "liver" and "^10200004^Liver~" in names[1][1] and names[2] == ("left kidney", entry)


def test_vp_json_applied_to_image_layer(make_napari_viewer, tmp_path):
    from napari_medio.plugin.convert_transform import STORE
    from napari_medio.plugin.data_docks import TablesDock

    viewer = make_napari_viewer()
    img = viewer.add_image(np.linspace(-20, 240, 4 * 5 * 6).reshape(4, 5, 6), name="ct")
    [vp] = napari_medio.read(fixture_file("other/VolumeProperty.vp"))
    napari_medio.write(vp, tmp_path / "p.vp.json")
    dock = TablesDock(viewer)
    assert viewer.open(tmp_path / "p.vp.json", plugin="napari-medio") == []
    assert [v.name for v in STORE.volume_properties] == ["p"]
    dock.target.setCurrentText("ct")
    dock.apply_volume_property()
    assert list(img.contrast_limits) == [-17.0, 235.0] and img.rendering == "translucent"
    assert img.metadata["medio"]["volume_property"].diffuse == 0.42

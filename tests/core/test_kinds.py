"""One DataKind for what data objects are; the plain names stay in JSON and scene metadata."""
from __future__ import annotations

import json

import numpy as np
import pytest

import napari_medio
from napari_medio.cli import main
from napari_medio.core import DataKind, registry
from napari_medio.core.geometry import Geometry
from napari_medio.core.kinds import VOLUME_KINDS
from napari_medio.core.model import Model
from napari_medio.core.volume import Volume
from napari_medio.scene.nodes import DATA_TAGS, kind_of_tag


def test_members_are_their_names():
    assert DataKind.LABELMAP == "labelmap" and DataKind("labelmap") is DataKind.LABELMAP
    assert f"{DataKind.VOLUME}" == str(DataKind.VOLUME) == "volume"
    assert json.dumps({"kind": DataKind.SEGMENTATION}) == '{"kind": "segmentation"}'
    assert {"model": 1}[DataKind.MODEL] == 1  # hashes as its string
    assert set(VOLUME_KINDS) == {DataKind.VOLUME, DataKind.LABELMAP}


def test_volume_kind_is_a_data_kind():
    geometry = Geometry((1, 1, 1), (0, 0, 0), np.eye(3))
    vol = Volume(np.zeros((2, 2, 2), np.uint8), geometry, kind="labelmap")  # a plain name is accepted
    assert vol.kind is DataKind.LABELMAP
    with pytest.raises(ValueError, match="unknown volume kind 'model'; expected one of volume, labelmap"):
        Volume(np.zeros((2, 2, 2), np.uint8), geometry, kind="model")


def test_objects_formats_and_scene_nodes_use_data_kinds(tmp_path):
    model = Model.from_polygons(np.eye(3), [[0, 1, 2]], name="tri")
    assert model.kind is DataKind.MODEL
    for fmt in registry.formats():
        assert all(isinstance(k, DataKind) for k in fmt.kinds), (fmt.name, fmt.kinds)
    assert all(isinstance(k, DataKind) for k in DATA_TAGS.values())
    assert kind_of_tag("Volume", {"labelMap": "1"}) is DataKind.LABELMAP


def test_info_json_keeps_plain_kind_names(tmp_path, capsys):
    geometry = Geometry((1, 1, 1), (0, 0, 0), np.eye(3))
    napari_medio.write(Volume(np.zeros((2, 3, 4), np.uint8), geometry, kind=DataKind.LABELMAP), tmp_path / "l.nrrd")
    napari_medio.write(Model.from_polygons(np.eye(3), [[0, 1, 2]], name="tri"), tmp_path / "m.vtk")
    assert main(["info", "--json", str(tmp_path / "l.nrrd"), str(tmp_path / "m.vtk")]) == 0
    infos = json.loads(capsys.readouterr().out)
    assert [i["kind"] for i in infos] == ["volume", "model"]  # a plain .nrrd does not say "label map"

"""The napari adapter without a viewer: any layer transform becomes the file's geometry."""
from __future__ import annotations

import numpy as np
import pytest
from napari.layers import Image, Labels

import napari_medio
from napari_medio.core.volume import DisplayWindow
from napari_medio.plugin.layers import from_layer, to_layer_data
from napari_medio.plugin.writer import write_image
from tests.volumes import assert_same_volume, four_d, rgb_2d, vector_3d


def _attributes(layer) -> dict:
    state = layer._get_state()
    state["metadata"] = layer.metadata
    return state


@pytest.mark.parametrize("ext", [".nrrd", ".nii.gz", ".mha"])
def test_plain_napari_layer_transform_becomes_geometry(tmp_path, ext):
    rng = np.random.default_rng(0)
    data = rng.integers(0, 100, (5, 6, 7)).astype(np.int16)
    layer = Image(data, scale=(2.0, 0.5, 0.7), translate=(10.0, -3.0, 4.0), rotate=((0, 0, 1), (0, 1, 0), (-1, 0, 0)),
                  shear=(0.0, 0.0, 0.0), affine=np.diag([1.0, -1.0, 1.0, 1.0]))
    out = tmp_path / f"plain{ext}"
    write_image(str(out), layer.data, _attributes(layer))
    [vol] = napari_medio.read(out)
    assert np.array_equal(vol.array, data)
    for idx in [(0, 0, 0), (1, 2, 3), (4, 5, 6)]:
        world = np.asarray(layer.data_to_world(idx))  # napari (S, P, L)
        lps = vol.geometry.index_to_lps(np.array(idx[::-1], float))
        assert np.allclose(world, lps[::-1], atol=1e-6)


def test_sheared_layer_is_kept_where_the_format_can_hold_it(tmp_path):
    data = np.arange(60, dtype=np.uint8).reshape(3, 4, 5)
    layer = Image(data, scale=(3.0, 1.0, 1.0), shear=(0.2, 0.0, 0.1))
    out = tmp_path / "shear.nrrd"
    write_image(str(out), layer.data, _attributes(layer))
    [vol] = napari_medio.read(out)
    for idx in [(1, 2, 3), (2, 3, 4)]:
        assert np.allclose(layer.data_to_world(idx), vol.geometry.index_to_lps(idx[::-1])[::-1], atol=1e-6)


@pytest.mark.parametrize("make", [four_d, vector_3d, rgb_2d])
def test_layer_round_trip_keeps_axes(make):
    vol = make()
    [(data, kwargs, layer_type)] = to_layer_data(vol)
    layer = Image(data, **{k: v for k, v in kwargs.items()})
    back = from_layer(layer_type, layer.data, _attributes(layer))
    assert_same_volume(vol, back)
    if vol.components is not None and not vol.is_rgb:
        assert layer.data.shape[0] == vol.n_components  # components become a leading slider
    if vol.is_rgb:
        assert layer.rgb


def test_labels_layer_names_and_colours_travel_as_color_table():
    data = np.zeros((2, 3, 4), np.uint8)
    data[0, 0, 0] = 1
    data[1, 2, 3] = 2
    layer = Labels(data, features={"index": [0, 1, 2], "name": ["background", "liver", "spleen"]})
    vol = from_layer("labels", layer.data, _attributes(layer))
    assert vol.kind == "labelmap"
    assert vol.metadata["color_table"][1]["name"] == "liver"
    assert vol.metadata["color_table"][2]["name"] == "spleen"


def test_contrast_limits_from_window():
    vol = four_d()
    vol.window = DisplayWindow(center=40, width=400)
    [(_, kwargs, _)] = to_layer_data(vol)
    assert kwargs["contrast_limits"] == [-160.0, 240.0]
    assert kwargs["units"][-1] == "mm" and kwargs["axis_labels"][-3:] == ("S", "P", "L")
